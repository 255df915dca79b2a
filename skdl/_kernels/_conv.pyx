"""2-D convolution kernels (1-D convolutions are the case height 1).

Layout: inputs (n, C, H, W), kernels (F, C, kh, kw), outputs (n, F, OH, OW).
Each sample is unfolded (im2col) into a per-thread scratch buffer of shape
(C*kh*kw, OH*OW), packed into column panels and multiplied by the kernel with
skdl's own matrix product (``_rowgemm.h``; faster than OpenBLAS here, since it
is also compiled for AVX-512), every call of one shape: a sample's output
never depends on the rest of its batch or on the thread count. ``prange``
runs over the samples.

Weight gradients are summed over fixed chunks of ``CHUNK`` samples into
per-chunk buffers, which are then added in chunk order, so the result is the
same for any number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._activations cimport LINEAR, forward_row
from ._rowgemm cimport pack_b, packed_size, rowgemm

# Samples per chunk of a weight-gradient sum.
cdef int CHUNK = 8
CHUNK_ = CHUNK


cdef inline void _valid_range(int out_size, int in_size, int stride, int offset,
                              int* lo, int* hi) noexcept nogil:
    """Outputs o in [lo, hi) read inside the input: 0 <= o*stride + offset < in_size."""
    cdef int first = 0, last
    if offset < 0:
        first = (-offset + stride - 1) // stride
    last = (in_size - 1 - offset) // stride + 1 if in_size - 1 - offset >= 0 else 0
    lo[0] = min(first, out_size)
    hi[0] = max(lo[0], min(last, out_size))


cdef void _im2col(const floating* x, int C, int H, int W, int kh, int kw,
                  int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW,
                  floating* cols) noexcept nogil:
    """cols[(c, i, j), (oh, ow)] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] or 0."""
    cdef int c, i, j, oh, ow, ih, lo, hi, oh_lo, oh_hi, offset
    cdef Py_ssize_t P = <Py_ssize_t> OH * OW
    cdef floating* row
    cdef floating* out
    cdef const floating* src
    cdef const floating* plane
    for c in range(C):
        plane = x + <Py_ssize_t> c * H * W
        for i in range(kh):
            _valid_range(OH, H, sh, i * dh - ph, &oh_lo, &oh_hi)
            for j in range(kw):
                row = cols + ((<Py_ssize_t> c * kh + i) * kw + j) * P
                offset = j * dw - pw
                _valid_range(OW, W, sw, offset, &lo, &hi)
                memset(row, 0, <Py_ssize_t> oh_lo * OW * sizeof(floating))
                memset(row + <Py_ssize_t> oh_hi * OW, 0,
                       <Py_ssize_t> (OH - oh_hi) * OW * sizeof(floating))
                for oh in range(oh_lo, oh_hi):
                    ih = oh * sh - ph + i * dh
                    out = row + <Py_ssize_t> oh * OW
                    src = plane + <Py_ssize_t> ih * W + offset
                    for ow in range(lo):
                        out[ow] = 0
                    if sw == 1:
                        memcpy(out + lo, src + lo, (hi - lo) * sizeof(floating))
                    else:
                        for ow in range(lo, hi):
                            out[ow] = src[<Py_ssize_t> ow * sw]
                    for ow in range(hi, OW):
                        out[ow] = 0


cdef void _col2im(const floating* cols, int C, int H, int W, int kh, int kw,
                  int sh, int sw, int ph, int pw, int dh, int dw, int OH, int OW,
                  floating* x) noexcept nogil:
    """x = 0, then x[c, ih, iw] += cols[(c, i, j), (oh, ow)]: the adjoint of _im2col."""
    cdef int c, i, j, oh, ow, ih, lo, hi, oh_lo, oh_hi, offset
    cdef Py_ssize_t P = <Py_ssize_t> OH * OW
    cdef const floating* row
    cdef const floating* src
    cdef floating* dst
    cdef floating* plane
    memset(x, 0, <Py_ssize_t> C * H * W * sizeof(floating))
    for c in range(C):
        plane = x + <Py_ssize_t> c * H * W
        for i in range(kh):
            _valid_range(OH, H, sh, i * dh - ph, &oh_lo, &oh_hi)
            for j in range(kw):
                row = cols + ((<Py_ssize_t> c * kh + i) * kw + j) * P
                offset = j * dw - pw
                _valid_range(OW, W, sw, offset, &lo, &hi)
                for oh in range(oh_lo, oh_hi):
                    ih = oh * sh - ph + i * dh
                    src = row + <Py_ssize_t> oh * OW
                    dst = plane + <Py_ssize_t> ih * W + offset
                    if sw == 1:
                        for ow in range(lo, hi):
                            dst[ow] += src[ow]
                    else:
                        for ow in range(lo, hi):
                            dst[<Py_ssize_t> ow * sw] += src[ow]


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


cdef floating* _packed_scratch(int n_threads, size_t size, floating* kind) except NULL:
    """Per-thread buffers for packed matrices, ``size`` elements each."""
    cdef floating* buf = <floating*> malloc(max(<size_t> 1, n_threads * size)
                                            * sizeof(floating))
    if buf == NULL:
        raise MemoryError("cannot allocate the convolution's packing buffers")
    return buf


def conv2d_forward(const floating[:, :, :, ::1] X, const floating[:, :, :, ::1] K,
                   const floating[::1] bias, floating[:, :, :, ::1] Y,
                   floating[:, ::1] cols, int sh, int sw, int ph, int pw,
                   int dh, int dw, int activation, double alpha, int n_threads):
    """Y = f(conv(X, K) + bias).

    Parameters
    ----------
    X : (n, C, H, W) input
    K : (F, C, kh, kw) kernel
    bias : (F,) or None
    Y : (n, F, OH, OW) output
    cols : (n_threads, C*kh*kw*OH*OW) scratch
    sh, sw, ph, pw, dh, dw : strides, leading paddings, dilations
    activation, alpha : fused activation (kind from _activations.pxd)
    n_threads : int
    """
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int F = K.shape[0], kh = K.shape[2], kw = K.shape[3]
    cdef int OH = Y.shape[2], OW = Y.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW
    cdef int i, f, t
    cdef floating* out
    cdef const floating* bias_ptr = NULL
    cdef size_t psize = packed_size(CK, P, <floating*> NULL)
    cdef floating* packed
    if bias is not None:
        bias_ptr = &bias[0]
    if n == 0:
        return
    packed = _packed_scratch(n_threads, psize, <floating*> NULL)
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for i in prange(n, schedule='static'):
                _im2col(&X[i, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                        OH, OW, &cols[t, 0])
                pack_b(CK, P, &cols[t, 0], P, 1, <floating> 1.0, packed + t * psize)
                out = &Y[i, 0, 0, 0]
                # (F, P) = (F, CK) @ (CK, P)
                rowgemm(F, P, CK, &K[0, 0, 0, 0], CK, packed + t * psize, out, P,
                        False)
                for f in range(F):
                    if bias_ptr != NULL:
                        _add_scalar(out + <Py_ssize_t> f * P, bias_ptr[f], P)
                    if activation != LINEAR:
                        forward_row(activation, alpha, out + <Py_ssize_t> f * P,
                                    out + <Py_ssize_t> f * P, P)
    finally:
        free(packed)


cdef inline void _add_scalar(floating* row, floating value, int m) noexcept nogil:
    cdef int j
    for j in range(m):
        row[j] += value


def conv2d_backward_input(const floating[:, :, :, ::1] dY,
                          const floating[:, ::1] KT, floating[:, :, :, ::1] dX,
                          floating[:, ::1] cols, int kh, int kw, int sh, int sw,
                          int ph, int pw, int dh, int dw, int n_threads):
    """dX = the input gradient of the convolution, sample by sample.

    Parameters
    ----------
    dY : (n, F, OH, OW)
    KT : (C*kh*kw, F), the kernel reshaped to (F, C*kh*kw) and transposed
    dX : (n, C, H, W) output
    cols : (n_threads, C*kh*kw*OH*OW) scratch
    """
    cdef int n = dX.shape[0], C = dX.shape[1], H = dX.shape[2], W = dX.shape[3]
    cdef int F = KT.shape[1]
    cdef int OH = dY.shape[2], OW = dY.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW
    cdef int i, t
    cdef size_t psize = packed_size(F, P, <floating*> NULL)
    cdef floating* packed
    if n == 0:
        return
    packed = _packed_scratch(n_threads, psize, <floating*> NULL)
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for i in prange(n, schedule='static'):
                # (CK, P) = (CK, F) @ (F, P)
                pack_b(F, P, &dY[i, 0, 0, 0], P, 1, <floating> 1.0, packed + t * psize)
                rowgemm(CK, P, F, &KT[0, 0], F, packed + t * psize, &cols[t, 0], P,
                        False)
                _col2im(&cols[t, 0], C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW,
                        &dX[i, 0, 0, 0])
    finally:
        free(packed)


def conv2d_backward_params(const floating[:, :, :, ::1] X,
                           const floating[:, :, :, ::1] dY, const double[::1] weights,
                           double scale, floating[:, :, :, ::1] dK, floating[::1] db,
                           floating[:, ::1] cols, floating[:, ::1] partial_dK,
                           double[:, ::1] partial_db, int sh, int sw, int ph, int pw,
                           int dh, int dw, int n_threads):
    """dK = scale * sum_i w_i dY_i @ im2col(X_i).T; db = scale * sum_i w_i sum(dY_i).

    Parameters
    ----------
    X : (n, C, H, W)
    dY : (n, F, OH, OW), per-sample output gradients
    weights : (n,) float64 sample weights, or None for ones
    scale : float
    dK : (F, C, kh, kw) output
    db : (F,) output, or None
    cols : (n_threads, C*kh*kw*OH*OW) scratch
    partial_dK : (n_chunks, C*kh*kw*F) scratch, n_chunks = ceil(n / CHUNK); each
        chunk's sum is kept transposed, (C*kh*kw, F)
    partial_db : (n_chunks, F) float64 scratch
    """
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int F = dK.shape[0], kh = dK.shape[2], kw = dK.shape[3]
    cdef int OH = dY.shape[2], OW = dY.shape[3]
    cdef int CK = C * kh * kw, P = OH * OW
    cdef int n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int c, i, f, t, first, kk
    cdef Py_ssize_t e, size = <Py_ssize_t> F * CK
    cdef size_t psize = packed_size(P, F, <floating*> NULL)
    cdef floating* packed
    cdef double w, acc
    cdef floating* total = &dK[0, 0, 0, 0]
    cdef const double* w_ptr = NULL
    if weights is not None:
        w_ptr = &weights[0]
    if n == 0:
        dK[...] = 0
        if db is not None:
            db[...] = 0
        return
    packed = _packed_scratch(n_threads, psize, <floating*> NULL)
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for c in prange(n_chunks, schedule='static'):
                for f in range(F):
                    partial_db[c, f] = 0.0
                first = 1
                for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
                    w = 1.0 if w_ptr == NULL else w_ptr[i]
                    _im2col(&X[i, 0, 0, 0], C, H, W, kh, kw, sh, sw, ph, pw, dh, dw,
                            OH, OW, &cols[t, 0])
                    # (CK, F) += (CK, P) @ (w * (F, P)).T
                    pack_b(P, F, &dY[i, 0, 0, 0], 1, P, <floating> w,
                           packed + t * psize)
                    rowgemm(CK, F, P, &cols[t, 0], P, packed + t * psize,
                            &partial_dK[c, 0], F, not first)
                    first = 0
                    for f in range(F):
                        partial_db[c, f] += w * _plane_sum(&dY[i, f, 0, 0], P)
    finally:
        free(packed)
    # Chunks are added in order: the same sums whatever the thread count.
    with nogil:
        for f in range(F):
            for kk in range(CK):
                e = <Py_ssize_t> kk * F + f
                acc = partial_dK[0, e]
                for c in range(1, n_chunks):
                    acc = acc + partial_dK[c, e]
                total[<Py_ssize_t> f * CK + kk] = <floating> (scale * acc)
    if db is not None:
        for f in range(F):
            acc = 0.0
            for c in range(n_chunks):
                acc = acc + partial_db[c, f]
            db[f] = <floating> (scale * acc)
