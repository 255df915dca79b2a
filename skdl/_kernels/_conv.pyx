"""Convolution kernels over 1, 2 or 3 spatial axes.

Layout: inputs (n, C, prod(spatial)), kernels (F, C, prod(window)), outputs
(n, F, prod(out)): the op passes each sample's spatial axes flattened (a free
view) and the geometry as one ``skdl_window`` (``_window.h``), which the
unfolding helpers of ``_im2col.h`` take; they loop over three axes, the last
one innermost, so a signal, an image and a volume share every loop.
Samples are unfolded into a per-thread scratch buffer G samples at a time
(G = 1 for large inputs, more for small ones so the products are not tiny)
and multiplied with skdl's own matrix product (``_rowgemm.h``; faster than
OpenBLAS here, since it is also compiled for AVX-512), in one of two layouts
chosen by the channel count (``PATCH_ROWS_MIN_CHANNELS``):

- planes (few channels): one row per kernel tap (c, k) over the group's
  output positions, (C*S, G*P) with S window taps and P output positions,
  packed into column panels; the kernel is the row operand.
- channels-last (many channels): one row per output position holding its
  window in (k, c) order, (G*P, S*C), built from a channels-last copy of the
  sample by contiguous runs of (last-axis taps)*C values; the kernel, packed
  once per call, is the column operand.

The matrix product computes each output element the same way whichever rows
or columns sit beside it, so a sample's output never depends on the rest of
its batch or on the thread count. ``prange`` runs over the groups.

Weight gradients are summed over fixed chunks of ``CHUNK`` samples into
per-chunk buffers, which are then added in chunk order, so the result is the
same for any number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ._activations cimport LINEAR, forward_row
from ._openmp cimport (CONV2D_BACKWARD_INPUT, CONV2D_BACKWARD_PARAMS, CONV2D_FORWARD,
                       note_thread)
from ._rowgemm cimport pack_b, pack_b_rows, packed_size, rowgemm
from ._window cimport fill_window, skdl_volume, skdl_window

# Samples per chunk of a weight-gradient sum.
cdef int CHUNK = 8
CHUNK_ = CHUNK
# Output positions per matrix product, when images are small enough to group.
cdef int GROUP_COLUMNS = 256


cdef extern from "_im2col.h" nogil:
    # One declaration per helper: the header picks the float or double
    # version from the pointers' type (_generic.h).
    void skdl_im2col(const skdl_window* w, const void* x, int C, void* cols,
                     Py_ssize_t ld, void* padded)
    void skdl_col2im(const skdl_window* w, const void* cols, Py_ssize_t ld, int C,
                     void* x, void* padded)
    void skdl_patches(const skdl_window* w, const void* x, int C, void* cols,
                      Py_ssize_t ld, void* xp)
    void skdl_patches_adjoint(const skdl_window* w, void* cols, Py_ssize_t ld, int C,
                              void* x, void* xp)
    void skdl_scaled_copy(void* dst, const void* src, double w, int m)


cdef inline void _kernel_hwc(const floating* K, int F, int C, int S,
                             floating* out) noexcept nogil:
    """out (F, S*C) = K (F, C, S) with each filter's S window taps before its
    channels (channels-last order)."""
    cdef int f, c, i
    for f in range(F):
        for c in range(C):
            for i in range(S):
                out[(<Py_ssize_t> f * S + i) * C + c] = K[(<Py_ssize_t> f * C + c) * S + i]


cdef inline double _plane_sum(const floating* x, int m) noexcept nogil:
    """Sum of x[0:m] in float64 through 8 interleaved partial sums, added in a
    fixed order: one running sum would wait on every addition's latency."""
    cdef double part[8]
    cdef int j, lane
    cdef int whole = m - m % 8
    for lane in range(8):
        part[lane] = 0.0
    for j in range(0, whole, 8):
        for lane in range(8):
            part[lane] += x[j + lane]
    for j in range(whole, m):
        part[j - whole] += x[j]
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))


cdef void* _scratch_bytes(size_t size) except NULL:
    """``size`` bytes of scratch buffers (at least one), or a MemoryError."""
    cdef void* buf = malloc(max(<size_t> 1, size))
    if buf == NULL:
        raise MemoryError("cannot allocate the convolution's scratch buffers")
    return buf


cdef int _window(skdl_window* w, tuple geometry, Py_ssize_t in_size,
                 Py_ssize_t size, Py_ssize_t out_size) except -1:
    """Fills ``w`` and checks it fits the arrays' flattened spatial sizes (a
    ValueError, not memory read out of bounds, if a caller passes others)."""
    fill_window(w, geometry)
    if (skdl_volume(w.input) != in_size or skdl_volume(w.size) != size
            or skdl_volume(w.output) != out_size):
        raise ValueError(f"the window {geometry} does not fit inputs of {in_size}, "
                         f"kernels of {size} and outputs of {out_size} positions")
    return 0


# Inputs with at least this many channels are unfolded channels-last (one
# row per output position: runs of k*C contiguous values, and the kernel is
# the small packed operand); fewer channels are unfolded one plane at a time
# (one row per kernel tap). Measured on 3x3 kernels, batch 64: channels-last
# is 1.2-1.6x faster from 16 channels (4x4 to 13x13 images), up to 2x slower
# below 8 (short copies; fewer than 32 filters half fill its panels).
cdef int PATCH_ROWS_MIN_CHANNELS = 16


cdef inline bint _patch_rows(int C) noexcept nogil:
    return C >= PATCH_ROWS_MIN_CHANNELS


def patch_rows_min_channels(int value=-1):
    """The channel count from which inputs are unfolded channels-last; a value
    >= 1 sets it (for tests: both layouts must give the same results)."""
    global PATCH_ROWS_MIN_CHANNELS
    if value >= 1:
        PATCH_ROWS_MIN_CHANNELS = value
    return PATCH_ROWS_MIN_CHANNELS


cdef inline int _group_size(int P, int limit) noexcept nogil:
    """Samples per matrix product: about GROUP_COLUMNS output positions, so
    small images still fill the kernel's panels; at most ``limit``."""
    return max(1, min(limit, GROUP_COLUMNS // P))


def conv2d_forward(const floating[:, :, ::1] X, const floating[:, :, ::1] K,
                   const floating[::1] bias, floating[:, :, ::1] Y, tuple geometry,
                   int activation, double alpha, int n_threads):
    """Y = f(conv(X, K) + bias).

    Parameters
    ----------
    X : (n, C, prod(spatial)) input
    K : (F, C, prod(window)) kernel
    bias : (F,) or None
    Y : (n, F, prod(out)) output
    geometry : tuple, ``Window.kernel_args()`` (1 to 3 spatial axes)
    activation, alpha : fused activation (kind from _activations.pxd)
    n_threads : int
    """
    cdef skdl_window w
    cdef int n = X.shape[0], C = X.shape[1], F = K.shape[0]
    cdef int S = K.shape[2], P = Y.shape[2], CK = C * S
    cdef int G = _group_size(P, n)
    cdef int n_groups = (n + G - 1) // G
    cdef int g, s, s0, gs, f, t = 0, p, cols_n
    cdef bint rows = _patch_rows(C)
    cdef size_t cols_size = <size_t> CK * G * P, out_size = <size_t> F * G * P
    cdef size_t psize = packed_size(CK, F if rows else G * P, sizeof(floating))
    cdef size_t plane, per_thread
    cdef floating* buf
    cdef floating* shared
    cdef floating* packed
    cdef floating* tmp
    cdef floating* cols
    cdef floating* padded
    cdef floating* row
    cdef const floating* bias_ptr = NULL
    if bias is not None:
        bias_ptr = &bias[0]
    _window(&w, geometry, X.shape[2], S, P)
    if n == 0:
        return
    # The zero-padded copy of a sample (channels-last) or of one channel.
    plane = <size_t> skdl_volume(w.extent) * (C if rows else 1)
    per_thread = cols_size + (0 if rows else psize) + out_size + plane
    # Channels-last: the kernel, packed once, is shared by the threads.
    buf = <floating*> _scratch_bytes(
        (n_threads * per_thread + (psize + <size_t> F * CK if rows else 0))
        * sizeof(floating))
    shared = buf + n_threads * per_thread
    try:
        if rows:
            with nogil:
                _kernel_hwc(&K[0, 0, 0], F, C, S, shared + psize)
                pack_b(CK, F, shared + psize, 1, CK, <floating> 1.0, shared)
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for g in prange(n_groups, schedule='static'):
                note_thread(CONV2D_FORWARD, t)
                s0 = g * G
                gs = min(G, n - s0)
                cols_n = gs * P
                tmp = buf + t * per_thread
                cols = tmp + out_size
                padded = cols + cols_size
                if rows:
                    # (gs*P, F) = (gs*P, CK) @ (CK, F), then each sample's
                    # (P, F) block transposed into Y with the bias.
                    for s in range(gs):
                        skdl_patches(&w, &X[s0 + s, 0, 0], C,
                                     cols + <Py_ssize_t> s * P * CK, CK, padded)
                    rowgemm(cols_n, F, CK, cols, CK, shared, tmp, F, False)
                    for s in range(gs):
                        row = &Y[s0 + s, 0, 0]
                        for f in range(F):
                            for p in range(P):
                                row[f * P + p] = tmp[(s * P + p) * F + f] + (
                                    bias_ptr[f] if bias_ptr != NULL else 0)
                        if activation != LINEAR:
                            forward_row(activation, alpha, row, row, F * P)
                    continue
                packed = padded + plane
                # Columns (sample, position) of the group side by side.
                for s in range(gs):
                    skdl_im2col(&w, &X[s0 + s, 0, 0], C, cols + s * P, cols_n, padded)
                pack_b(CK, cols_n, cols, cols_n, 1, <floating> 1.0, packed)
                # (F, gs*P) = (F, CK) @ (CK, gs*P); one sample writes in place.
                if gs == 1:
                    tmp = &Y[s0, 0, 0]
                rowgemm(F, cols_n, CK, &K[0, 0, 0], CK, packed, tmp, cols_n, False)
                for f in range(F):
                    row = tmp + <Py_ssize_t> f * cols_n
                    if bias_ptr != NULL:
                        _add_scalar(row, bias_ptr[f], cols_n)
                    if activation != LINEAR:
                        forward_row(activation, alpha, row, row, cols_n)
                    if gs > 1:
                        for s in range(gs):
                            memcpy(&Y[s0 + s, f, 0], row + s * P, P * sizeof(floating))
    finally:
        free(buf)


cdef inline void _add_scalar(floating* row, floating value, int m) noexcept nogil:
    cdef int j
    for j in range(m):
        row[j] += value


def conv2d_backward_input(const floating[:, :, ::1] dY, const floating[:, :, ::1] K,
                          floating[:, :, ::1] dX, tuple geometry, int n_threads):
    """dX = the input gradient of the convolution, a group of samples at a time.

    Parameters
    ----------
    dY : (n, F, prod(out))
    K : (F, C, prod(window)) kernel
    dX : (n, C, prod(spatial)) output
    geometry : tuple, ``Window.kernel_args()``
    n_threads : int
    """
    cdef skdl_window w
    cdef int n = dX.shape[0], C = dX.shape[1], F = K.shape[0]
    cdef int S = K.shape[2], P = dY.shape[2], CK = C * S
    cdef int G = _group_size(P, n)
    cdef int n_groups = (n + G - 1) // G
    cdef int g, s, s0, gs, f, t = 0, p, cols_n
    cdef bint rows = _patch_rows(C)
    cdef size_t cols_size = <size_t> CK * G * P, dy_size = <size_t> F * G * P
    # Channels-last: (F, CK) packed once for all threads; otherwise the group's
    # dY is packed by its thread.
    cdef size_t psize = packed_size(F, CK if rows else G * P, sizeof(floating))
    cdef size_t plane, per_thread
    cdef size_t shared_size = (psize + <size_t> F * CK) if rows else <size_t> F * CK
    cdef floating* buf
    cdef floating* shared
    cdef floating* packed
    cdef floating* dyg
    cdef floating* cols
    cdef floating* padded
    cdef const floating* src
    _window(&w, geometry, dX.shape[2], S, P)
    if n == 0:
        return
    plane = <size_t> skdl_volume(w.extent) * (C if rows else 1)
    per_thread = cols_size + (0 if rows else psize) + dy_size + plane
    buf = <floating*> _scratch_bytes((n_threads * per_thread + shared_size)
                                     * sizeof(floating))
    shared = buf + n_threads * per_thread
    try:
        with nogil:
            if rows:
                _kernel_hwc(&K[0, 0, 0], F, C, S, shared + psize)
                pack_b(F, CK, shared + psize, CK, 1, <floating> 1.0, shared)
            else:  # K transposed: (CK, F)
                src = &K[0, 0, 0]
                for f in range(F):
                    for p in range(CK):
                        shared[<Py_ssize_t> p * F + f] = src[<Py_ssize_t> f * CK + p]
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for g in prange(n_groups, schedule='static'):
                note_thread(CONV2D_BACKWARD_INPUT, t)
                s0 = g * G
                gs = min(G, n - s0)
                cols_n = gs * P
                dyg = buf + t * per_thread
                cols = dyg + dy_size
                padded = cols + cols_size
                if rows:
                    # dY of the group as (gs*P, F) rows, then
                    # (gs*P, CK) = (gs*P, F) @ (F, CK): each row one window.
                    for s in range(gs):
                        src = &dY[s0 + s, 0, 0]
                        for f in range(F):
                            for p in range(P):
                                dyg[(s * P + p) * F + f] = src[f * P + p]
                    rowgemm(cols_n, CK, F, dyg, F, shared, cols, CK, False)
                    for s in range(gs):
                        skdl_patches_adjoint(&w, cols + <Py_ssize_t> s * P * CK, CK, C,
                                             &dX[s0 + s, 0, 0], padded)
                    continue
                packed = padded + plane
                # dY of the group as one (F, gs*P) matrix.
                src = &dY[s0, 0, 0]
                if gs > 1:
                    for s in range(gs):
                        for f in range(F):
                            memcpy(dyg + <Py_ssize_t> f * cols_n + s * P, &dY[s0 + s, f, 0],
                                   P * sizeof(floating))
                    src = dyg
                # (CK, gs*P) = (CK, F) @ (F, gs*P)
                pack_b(F, cols_n, src, cols_n, 1, <floating> 1.0, packed)
                rowgemm(CK, cols_n, F, shared, F, packed, cols, cols_n, False)
                for s in range(gs):
                    skdl_col2im(&w, cols + s * P, cols_n, C, &dX[s0 + s, 0, 0], padded)
    finally:
        free(buf)


cdef inline void _sum_chunks(const floating* partial, int n_chunks, Py_ssize_t size,
                             double* sums) noexcept nogil:
    """sums[e] = partial[0, e] + partial[1, e] + ... in float64, in chunk order
    (row by row, so the additions vectorize)."""
    cdef Py_ssize_t e
    cdef int c
    cdef const floating* row
    for e in range(size):
        sums[e] = partial[e]
    for c in range(1, n_chunks):
        row = partial + c * size
        for e in range(size):
            sums[e] = sums[e] + row[e]


def conv2d_backward_params(const floating[:, :, ::1] X, const floating[:, :, ::1] dY,
                           const double[::1] weights, double scale,
                           floating[:, :, ::1] dK, floating[::1] db,
                           floating[:, ::1] partial_dK, double[:, ::1] partial_db,
                           tuple geometry, int n_threads):
    """dK = scale * sum_i w_i dY_i @ im2col(X_i).T; db = scale * sum_i w_i sum(dY_i).

    Parameters
    ----------
    X : (n, C, prod(spatial))
    dY : (n, F, prod(out)), per-sample output gradients
    weights : (n,) float64 sample weights, or None for ones
    scale : float
    dK : (F, C, prod(window)) output
    db : (F,) output, or None
    partial_dK : (n_chunks, C*S*F) scratch, S = prod(window), n_chunks =
        ceil(n / CHUNK); each chunk's sum is kept as (F, S*C) for inputs
        unfolded channels-last, transposed, (C*S, F), otherwise
    partial_db : (n_chunks, F) float64 scratch
    geometry : tuple, ``Window.kernel_args()``
    n_threads : int
    """
    cdef skdl_window w
    cdef int n = X.shape[0], C = X.shape[1], F = dK.shape[0]
    cdef int S = dK.shape[2], P = dY.shape[2], CK = C * S
    cdef int n_chunks = (n + CHUNK - 1) // CHUNK
    # Groups inside a chunk: their size depends on the shapes only.
    cdef int G = _group_size(P, CHUNK)
    cdef int c, i, f, t = 0, p, first, kk, g0, gi, gs, s, cols_n, chunk_end
    cdef bint rows = _patch_rows(C)
    cdef Py_ssize_t e, size = <Py_ssize_t> F * CK
    cdef size_t cols_size = <size_t> CK * G * P
    cdef size_t psize = packed_size(G * P, CK if rows else F, sizeof(floating))
    cdef size_t dy_size = <size_t> F * G * P if rows else 0
    cdef size_t plane, per_thread
    cdef double wi, acc
    cdef double* sums
    cdef floating* total = &dK[0, 0, 0]
    cdef floating* buf
    cdef floating* packed
    cdef floating* cols
    cdef floating* padded
    cdef floating* dyg
    cdef const double* w_ptr = NULL
    if weights is not None:
        w_ptr = &weights[0]
    _window(&w, geometry, X.shape[2], S, P)
    if n == 0:
        dK[...] = 0
        if db is not None:
            db[...] = 0
        return
    plane = <size_t> skdl_volume(w.extent) * (C if rows else 1)
    per_thread = cols_size + psize + plane + dy_size
    buf = <floating*> _scratch_bytes(n_threads * per_thread * sizeof(floating))
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for c in prange(n_chunks, schedule='static'):
                note_thread(CONV2D_BACKWARD_PARAMS, t)
                packed = buf + t * per_thread
                cols = packed + psize
                padded = cols + cols_size
                dyg = padded + plane
                for f in range(F):
                    partial_db[c, f] = 0.0
                first = 1
                chunk_end = min(n, (c + 1) * CHUNK)
                for gi in range((chunk_end - c * CHUNK + G - 1) // G):
                    g0 = c * CHUNK + gi * G
                    gs = min(G, chunk_end - g0)
                    cols_n = gs * P
                    for s in range(gs):
                        i = g0 + s
                        wi = 1.0 if w_ptr == NULL else w_ptr[i]
                        for f in range(F):
                            partial_db[c, f] += wi * _plane_sum(&dY[i, f, 0], P)
                        if rows:
                            # Windows as rows s*P.. of (gs*P, CK); w * dY_i as
                            # columns s*P.. of (F, gs*P).
                            skdl_patches(&w, &X[i, 0, 0], C, cols + <Py_ssize_t> s * P * CK,
                                         CK, padded)
                            for f in range(F):
                                skdl_scaled_copy(dyg + f * cols_n + s * P, &dY[i, f, 0],
                                                 <floating> wi, P)
                            continue
                        skdl_im2col(&w, &X[i, 0, 0], C, cols + s * P, cols_n, padded)
                        # Rows s*P .. of (gs*P, F): w * dY_i transposed.
                        pack_b_rows(P, F, &dY[i, 0, 0], 1, P, <floating> wi, packed,
                                    cols_n, s * P)
                    if rows:
                        # (F, CK) += (F, gs*P) @ (gs*P, CK)
                        pack_b(cols_n, CK, cols, CK, 1, <floating> 1.0, packed)
                        rowgemm(F, CK, cols_n, dyg, cols_n, packed, &partial_dK[c, 0],
                                CK, not first)
                    else:
                        # (CK, F) += (CK, gs*P) @ (gs*P, F)
                        rowgemm(CK, F, cols_n, cols, cols_n, packed, &partial_dK[c, 0],
                                F, not first)
                    first = 0
    finally:
        free(buf)
    # Chunks are added in order: the same sums whatever the thread count.
    sums = <double*> malloc(max(<size_t> 1, <size_t> size * sizeof(double)))
    if sums == NULL:
        raise MemoryError()
    try:
        with nogil:
            _sum_chunks(&partial_dK[0, 0], n_chunks, size, sums)
            for f in range(F):
                for i in range(C):
                    for p in range(S):
                        kk = i * S + p  # (c, i, j) in dK: (i, j, c) if channels-last
                        e = (<Py_ssize_t> f * CK + p * C + i) if rows else (<Py_ssize_t> kk * F + f)
                        total[<Py_ssize_t> f * CK + kk] = <floating> (scale * sums[e])
    finally:
        free(sums)
    if db is not None:
        for f in range(F):
            acc = 0.0
            for c in range(n_chunks):
                acc = acc + partial_db[c, f]
            db[f] = <floating> (scale * acc)


include "_gemm_level.pxi"
