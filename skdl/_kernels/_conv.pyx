"""2-D convolution kernels (1-D convolutions are the case height 1).

Layout: inputs (n, C, H, W), kernels (F, C, kh, kw), outputs (n, F, OH, OW).
Samples are unfolded into a per-thread scratch buffer G samples at a time
(G = 1 for large images, more for small ones so the products are not tiny)
and multiplied with skdl's own matrix product (``_rowgemm.h``; faster than
OpenBLAS here, since it is also compiled for AVX-512), in one of two layouts
chosen by the channel count (``PATCH_ROWS_MIN_CHANNELS``):

- planes (few channels): one row per kernel tap (c, i, j) over the group's
  output positions, (C*kh*kw, G*OH*OW), packed into column panels; the
  kernel is the row operand.
- channels-last (many channels): one row per output position holding its
  window in (i, j, c) order, (G*OH*OW, kh*kw*C), built from a (H, W, C) copy
  of the sample by contiguous runs of kw*C values; the kernel, packed once
  per call, is the column operand.

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

# Samples per chunk of a weight-gradient sum.
cdef int CHUNK = 8
CHUNK_ = CHUNK
# Output positions per matrix product, when images are small enough to group.
cdef int GROUP_COLUMNS = 256


cdef extern from "_im2col.h" nogil:
    int skdl_padded_extent(int size, int lead, int out, int stride, int k, int dilation)
    void skdl_im2col_float(const float* x, int C, int H, int W, int kh, int kw,
                           int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                           int OW, float* cols, Py_ssize_t ld, float* padded, int PH,
                           int PW)
    void skdl_im2col_double(const double* x, int C, int H, int W, int kh, int kw,
                            int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                            int OW, double* cols, Py_ssize_t ld, double* padded,
                            int PH, int PW)
    void skdl_col2im_float(const float* cols, Py_ssize_t ld, int C, int H, int W,
                           int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                           int dw, int OH, int OW, float* x, float* padded, int PH,
                           int PW)
    void skdl_col2im_double(const double* cols, Py_ssize_t ld, int C, int H, int W,
                            int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                            int dw, int OH, int OW, double* x, double* padded,
                            int PH, int PW)
    void skdl_scaled_copy_float(float* dst, const float* src, float w, int m)
    void skdl_scaled_copy_double(double* dst, const double* src, double w, int m)
    void skdl_patches_float(const float* x, int C, int H, int W, int kh, int kw,
                            int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                            int OW, float* cols, Py_ssize_t ld, float* xp, int PH,
                            int PW)
    void skdl_patches_double(const double* x, int C, int H, int W, int kh, int kw,
                             int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                             int OW, double* cols, Py_ssize_t ld, double* xp, int PH,
                             int PW)
    void skdl_patches_adjoint_float(float* cols, Py_ssize_t ld, int C, int H, int W,
                                    int kh, int kw, int sh, int sw, int ph, int pw,
                                    int dh, int dw, int OH, int OW, float* x,
                                    float* xp, int PH, int PW)
    void skdl_patches_adjoint_double(double* cols, Py_ssize_t ld, int C, int H,
                                     int W, int kh, int kw, int sh, int sw, int ph,
                                     int pw, int dh, int dw, int OH, int OW,
                                     double* x, double* xp, int PH, int PW)


cdef inline void _im2col(const floating* x, int C, int H, int W, int kh, int kw,
                         int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                         int OW, floating* cols, Py_ssize_t ld, floating* padded,
                         int PH, int PW) noexcept nogil:
    """Unfold one sample (see _im2col.h); padded: a (PH, PW) scratch plane."""
    if floating is float:
        skdl_im2col_float(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, cols,
                          ld, padded, PH, PW)
    else:
        skdl_im2col_double(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, cols,
                           ld, padded, PH, PW)


cdef inline void _col2im(const floating* cols, Py_ssize_t ld, int C, int H, int W,
                         int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                         int dw, int OH, int OW, floating* x, floating* padded,
                         int PH, int PW) noexcept nogil:
    """The adjoint of _im2col into one sample's x (overwritten)."""
    if floating is float:
        skdl_col2im_float(cols, ld, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW,
                          x, padded, PH, PW)
    else:
        skdl_col2im_double(cols, ld, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW,
                           x, padded, PH, PW)


cdef inline void _patches(const floating* x, int C, int H, int W, int kh, int kw,
                          int sh, int sw, int ph, int pw, int dh, int dw, int OH,
                          int OW, floating* cols, Py_ssize_t ld, floating* xp,
                          int PH, int PW) noexcept nogil:
    """Unfold one sample channels-last (see _im2col.h): OH*OW rows of cols;
    xp: a (PH, PW, C) scratch plane."""
    if floating is float:
        skdl_patches_float(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, cols,
                           ld, xp, PH, PW)
    else:
        skdl_patches_double(x, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, cols,
                            ld, xp, PH, PW)


cdef inline void _patches_adjoint(floating* cols, Py_ssize_t ld, int C, int H, int W,
                                  int kh, int kw, int sh, int sw, int ph, int pw,
                                  int dh, int dw, int OH, int OW, floating* x,
                                  floating* xp, int PH, int PW) noexcept nogil:
    """The adjoint of _patches into one sample's x (overwritten)."""
    if floating is float:
        skdl_patches_adjoint_float(cols, ld, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                                   OH, OW, x, xp, PH, PW)
    else:
        skdl_patches_adjoint_double(cols, ld, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                                    OH, OW, x, xp, PH, PW)


cdef inline void _scaled_copy(floating* dst, const floating* src, floating w,
                              int m) noexcept nogil:
    """dst[0:m] = w * src[0:m]; the two do not overlap."""
    if floating is float:
        skdl_scaled_copy_float(dst, src, w, m)
    else:
        skdl_scaled_copy_double(dst, src, w, m)


cdef inline void _kernel_hwc(const floating* K, int F, int C, int kh, int kw,
                             floating* out) noexcept nogil:
    """out (F, kh*kw*C) = K (F, C, kh, kw) with each filter in (i, j, c) order."""
    cdef int f, c, i, S = kh * kw
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


cdef floating* _scratch(int n_threads, size_t size, floating* kind) except NULL:
    """Per-thread buffers of ``size`` elements each (kind: a NULL of the type)."""
    cdef floating* buf = <floating*> malloc(max(<size_t> 1, n_threads * size)
                                            * sizeof(floating))
    if buf == NULL:
        raise MemoryError("cannot allocate the convolution's scratch buffers")
    return buf


# Inputs with at least this many channels are unfolded channels-last (one
# row per output position: runs of kw*C contiguous values, and the kernel is
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


def conv2d_forward(const floating[:, :, :, ::1] X, const floating[:, :, :, ::1] K,
                   const floating[::1] bias, floating[:, :, :, ::1] Y,
                   int sh, int sw, int ph, int pw, int dh, int dw, int activation,
                   double alpha, int n_threads):
    """Y = f(conv(X, K) + bias).

    Parameters
    ----------
    X : (n, C, H, W) input
    K : (F, C, kh, kw) kernel
    bias : (F,) or None
    Y : (n, F, OH, OW) output
    sh, sw, ph, pw, dh, dw : strides, leading paddings, dilations
    activation, alpha : fused activation (kind from _activations.pxd)
    n_threads : int
    """
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int F = K.shape[0], kh = K.shape[2], kw = K.shape[3]
    cdef int OH = Y.shape[2], OW = Y.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW
    cdef int G = _group_size(P, n)
    cdef int n_groups = (n + G - 1) // G
    cdef int g, s, s0, gs, f, t = 0, p, cols_n
    cdef bint rows = _patch_rows(C)
    cdef size_t cols_size = <size_t> CK * G * P, out_size = <size_t> F * G * P
    cdef size_t psize = packed_size(CK, F if rows else G * P, sizeof(floating))
    cdef int PH = skdl_padded_extent(H, ph, OH, sh, kh, dh)
    cdef int PW = skdl_padded_extent(W, pw, OW, sw, kw, dw)
    cdef size_t plane = <size_t> PH * PW * (C if rows else 1)
    cdef size_t per_thread = cols_size + (0 if rows else psize) + out_size + plane
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
    if n == 0:
        return
    # Channels-last: the kernel, packed once, is shared by the threads.
    buf = _scratch(1, n_threads * per_thread + (psize + <size_t> F * CK if rows else 0),
                   <floating*> NULL)
    shared = buf + n_threads * per_thread
    try:
        if rows:
            with nogil:
                _kernel_hwc(&K[0, 0, 0, 0], F, C, kh, kw, shared + psize)
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
                        _patches(&X[s0 + s, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw,
                                 dh, dw, OH, OW, cols + <Py_ssize_t> s * P * CK, CK,
                                 padded, PH, PW)
                    rowgemm(cols_n, F, CK, cols, CK, shared, tmp, F, False)
                    for s in range(gs):
                        row = &Y[s0 + s, 0, 0, 0]
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
                    _im2col(&X[s0 + s, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw, dh,
                            dw, OH, OW, cols + s * P, cols_n, padded, PH, PW)
                pack_b(CK, cols_n, cols, cols_n, 1, <floating> 1.0, packed)
                # (F, gs*P) = (F, CK) @ (CK, gs*P); one sample writes in place.
                if gs == 1:
                    tmp = &Y[s0, 0, 0, 0]
                rowgemm(F, cols_n, CK, &K[0, 0, 0, 0], CK, packed, tmp, cols_n, False)
                for f in range(F):
                    row = tmp + <Py_ssize_t> f * cols_n
                    if bias_ptr != NULL:
                        _add_scalar(row, bias_ptr[f], cols_n)
                    if activation != LINEAR:
                        forward_row(activation, alpha, row, row, cols_n)
                    if gs > 1:
                        for s in range(gs):
                            memcpy(&Y[s0 + s, f, 0, 0], row + s * P, P * sizeof(floating))
    finally:
        free(buf)


cdef inline void _add_scalar(floating* row, floating value, int m) noexcept nogil:
    cdef int j
    for j in range(m):
        row[j] += value


def conv2d_backward_input(const floating[:, :, :, ::1] dY,
                          const floating[:, :, :, ::1] K, floating[:, :, :, ::1] dX,
                          int sh, int sw, int ph, int pw, int dh, int dw,
                          int n_threads):
    """dX = the input gradient of the convolution, a group of samples at a time.

    Parameters
    ----------
    dY : (n, F, OH, OW)
    K : (F, C, kh, kw) kernel
    dX : (n, C, H, W) output
    """
    cdef int n = dX.shape[0], C = dX.shape[1], H = dX.shape[2], W = dX.shape[3]
    cdef int F = K.shape[0], kh = K.shape[2], kw = K.shape[3]
    cdef int OH = dY.shape[2], OW = dY.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW
    cdef int G = _group_size(P, n)
    cdef int n_groups = (n + G - 1) // G
    cdef int g, s, s0, gs, f, t = 0, p, cols_n
    cdef bint rows = _patch_rows(C)
    cdef size_t cols_size = <size_t> CK * G * P, dy_size = <size_t> F * G * P
    # Channels-last: (F, CK) packed once for all threads; otherwise the group's
    # dY is packed by its thread.
    cdef size_t psize = packed_size(F, CK if rows else G * P, sizeof(floating))
    cdef int PH = skdl_padded_extent(H, ph, OH, sh, kh, dh)
    cdef int PW = skdl_padded_extent(W, pw, OW, sw, kw, dw)
    cdef size_t plane = <size_t> PH * PW * (C if rows else 1)
    cdef size_t per_thread = cols_size + (0 if rows else psize) + dy_size + plane
    cdef size_t shared_size = (psize + <size_t> F * CK) if rows else <size_t> F * CK
    cdef floating* buf
    cdef floating* shared
    cdef floating* packed
    cdef floating* dyg
    cdef floating* cols
    cdef floating* padded
    cdef const floating* src
    if n == 0:
        return
    buf = _scratch(1, n_threads * per_thread + shared_size, <floating*> NULL)
    shared = buf + n_threads * per_thread
    try:
        with nogil:
            if rows:
                _kernel_hwc(&K[0, 0, 0, 0], F, C, kh, kw, shared + psize)
                pack_b(F, CK, shared + psize, CK, 1, <floating> 1.0, shared)
            else:  # K transposed: (CK, F)
                src = &K[0, 0, 0, 0]
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
                        src = &dY[s0 + s, 0, 0, 0]
                        for f in range(F):
                            for p in range(P):
                                dyg[(s * P + p) * F + f] = src[f * P + p]
                    rowgemm(cols_n, CK, F, dyg, F, shared, cols, CK, False)
                    for s in range(gs):
                        _patches_adjoint(cols + <Py_ssize_t> s * P * CK, CK, C, H, W, kh,
                                         kw, sh, sw, ph, pw, dh, dw, OH, OW,
                                         &dX[s0 + s, 0, 0, 0], padded, PH, PW)
                    continue
                packed = padded + plane
                # dY of the group as one (F, gs*P) matrix.
                src = &dY[s0, 0, 0, 0]
                if gs > 1:
                    for s in range(gs):
                        for f in range(F):
                            memcpy(dyg + <Py_ssize_t> f * cols_n + s * P, &dY[s0 + s, f, 0, 0],
                                   P * sizeof(floating))
                    src = dyg
                # (CK, gs*P) = (CK, F) @ (F, gs*P)
                pack_b(F, cols_n, src, cols_n, 1, <floating> 1.0, packed)
                rowgemm(CK, cols_n, F, shared, F, packed, cols, cols_n, False)
                for s in range(gs):
                    _col2im(cols + s * P, cols_n, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                            OH, OW, &dX[s0 + s, 0, 0, 0], padded, PH, PW)
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


def conv2d_backward_params(const floating[:, :, :, ::1] X,
                           const floating[:, :, :, ::1] dY, const double[::1] weights,
                           double scale, floating[:, :, :, ::1] dK, floating[::1] db,
                           floating[:, ::1] partial_dK, double[:, ::1] partial_db,
                           int sh, int sw, int ph, int pw, int dh, int dw, int n_threads):
    """dK = scale * sum_i w_i dY_i @ im2col(X_i).T; db = scale * sum_i w_i sum(dY_i).

    Parameters
    ----------
    X : (n, C, H, W)
    dY : (n, F, OH, OW), per-sample output gradients
    weights : (n,) float64 sample weights, or None for ones
    scale : float
    dK : (F, C, kh, kw) output
    db : (F,) output, or None
    partial_dK : (n_chunks, C*kh*kw*F) scratch, n_chunks = ceil(n / CHUNK); each
        chunk's sum is kept as (F, kh*kw*C) for inputs unfolded channels-last,
        transposed, (C*kh*kw, F), otherwise
    partial_db : (n_chunks, F) float64 scratch
    """
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int F = dK.shape[0], kh = dK.shape[2], kw = dK.shape[3]
    cdef int OH = dY.shape[2], OW = dY.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW, S = kh * kw
    cdef int n_chunks = (n + CHUNK - 1) // CHUNK
    # Groups inside a chunk: their size depends on the shapes only.
    cdef int G = _group_size(P, CHUNK)
    cdef int c, i, f, t = 0, p, first, kk, g0, gi, gs, s, cols_n, chunk_end
    cdef bint rows = _patch_rows(C)
    cdef Py_ssize_t e, size = <Py_ssize_t> F * CK
    cdef size_t cols_size = <size_t> CK * G * P
    cdef size_t psize = packed_size(G * P, CK if rows else F, sizeof(floating))
    cdef int PH = skdl_padded_extent(H, ph, OH, sh, kh, dh)
    cdef int PW = skdl_padded_extent(W, pw, OW, sw, kw, dw)
    cdef size_t plane = <size_t> PH * PW * (C if rows else 1)
    cdef size_t dy_size = <size_t> F * G * P if rows else 0
    cdef size_t per_thread = cols_size + psize + plane + dy_size
    cdef double w, acc
    cdef double* sums
    cdef floating* total = &dK[0, 0, 0, 0]
    cdef floating* buf
    cdef floating* packed
    cdef floating* cols
    cdef floating* padded
    cdef floating* dyg
    cdef const double* w_ptr = NULL
    if weights is not None:
        w_ptr = &weights[0]
    if n == 0:
        dK[...] = 0
        if db is not None:
            db[...] = 0
        return
    buf = _scratch(n_threads, per_thread, <floating*> NULL)
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
                        w = 1.0 if w_ptr == NULL else w_ptr[i]
                        for f in range(F):
                            partial_db[c, f] += w * _plane_sum(&dY[i, f, 0, 0], P)
                        if rows:
                            # Windows as rows s*P.. of (gs*P, CK); w * dY_i as
                            # columns s*P.. of (F, gs*P).
                            _patches(&X[i, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw,
                                     dh, dw, OH, OW, cols + <Py_ssize_t> s * P * CK, CK,
                                     padded, PH, PW)
                            for f in range(F):
                                _scaled_copy(dyg + f * cols_n + s * P, &dY[i, f, 0, 0],
                                             <floating> w, P)
                            continue
                        _im2col(&X[i, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                                OH, OW, cols + s * P, cols_n, padded, PH, PW)
                        # Rows s*P .. of (gs*P, F): w * dY_i transposed.
                        pack_b_rows(P, F, &dY[i, 0, 0, 0], 1, P, <floating> w, packed,
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
