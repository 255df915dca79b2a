"""2-D max and average pooling (1-D pooling is the case height 1).

Layout (n, C, H, W) -> (n, C, OH, OW); ``prange`` over the n*C planes (max
pooling: over blocks of planes). Windows may overlap (stride smaller than the
pool) and may reach into leading and trailing padding, which never wins a max
and is not counted in an average.
Max pooling records the flat input position of each window's maximum for the
backward pass; backward adds into the input gradient plane by plane, so
overlapping windows are summed in a fixed order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memset

from ._openmp cimport (AVGPOOL2D_BACKWARD, AVGPOOL2D_FORWARD, MAXPOOL2D_BACKWARD,
                       MAXPOOL2D_FORWARD, note_thread)


# Input positions [lo, hi) of output o's window, clipped to the input. Two
# functions assigned directly, not one writing through pointers: variables
# assigned in a prange body are what Cython makes private to each thread.
cdef inline int _window_lo(int o, int stride, int pad) noexcept nogil:
    return max(o * stride - pad, 0)


cdef inline int _window_hi(int o, int stride, int pad, int size, int in_size) noexcept nogil:
    return min(o * stride - pad + size, in_size)


cdef void _max_plane(const floating* x, int H, int W, floating* y, int* arg,
                     int OH, int OW, int kh, int kw, int sh, int sw,
                     int ph, int pw) noexcept nogil:
    cdef int oh, ow, ih, iw, h0, h1, w0, w1, best, take
    cdef floating best_value, value
    cdef const floating* row
    for oh in range(OH):
        h0 = _window_lo(oh, sh, ph)
        h1 = _window_hi(oh, sh, ph, kh, H)
        for ow in range(OW):
            w0 = _window_lo(ow, sw, pw)
            w1 = _window_hi(ow, sw, pw, kw, W)
            best = h0 * W + w0
            best_value = x[best]
            for ih in range(h0, h1):
                row = x + <Py_ssize_t> ih * W
                for iw in range(w0, w1):
                    value = row[iw]
                    # The index chosen through a mask, not a branch (GCC makes a
                    # select into a branch here): random data mispredicts.
                    take = -(value > best_value)
                    best = (best & ~take) | ((ih * W + iw) & take)
                    best_value = value if value > best_value else best_value
            y[<Py_ssize_t> oh * OW + ow] = best_value
            arg[<Py_ssize_t> oh * OW + ow] = best


cdef extern from "_pool_loops.h" nogil:
    void skdl_max_2x2_planes_float(const float* x, int W, Py_ssize_t in_size, float* y,
                                   int* arg, int OH, int OW, Py_ssize_t out_size,
                                   Py_ssize_t p0, Py_ssize_t p1)
    void skdl_max_2x2_planes_double(const double* x, int W, Py_ssize_t in_size,
                                    double* y, int* arg, int OH, int OW,
                                    Py_ssize_t out_size, Py_ssize_t p0, Py_ssize_t p1)
    void skdl_max_unpool_float(const float* dy, const int* arg, float* dx,
                               Py_ssize_t in_size, Py_ssize_t out_size, Py_ssize_t p0,
                               Py_ssize_t p1)
    void skdl_max_unpool_double(const double* dy, const int* arg, double* dx,
                                Py_ssize_t in_size, Py_ssize_t out_size, Py_ssize_t p0,
                                Py_ssize_t p1)


# Planes per prange task of max pooling, looped over in C: one prange
# iteration and call per plane cost as much as a 4x4 plane's four outputs.
cdef int PLANE_BLOCK = 64


cdef inline void _max_planes_2x2(const floating* x, int W, Py_ssize_t in_size,
                                 floating* y, int* arg, int OH, int OW,
                                 Py_ssize_t out_size, Py_ssize_t p0,
                                 Py_ssize_t p1) noexcept nogil:
    if floating is float:
        skdl_max_2x2_planes_float(x, W, in_size, y, arg, OH, OW, out_size, p0, p1)
    else:
        skdl_max_2x2_planes_double(x, W, in_size, y, arg, OH, OW, out_size, p0, p1)


cdef inline void _max_unpool(const floating* dy, const int* arg, floating* dx,
                             Py_ssize_t in_size, Py_ssize_t out_size, Py_ssize_t p0,
                             Py_ssize_t p1) noexcept nogil:
    if floating is float:
        skdl_max_unpool_float(dy, arg, dx, in_size, out_size, p0, p1)
    else:
        skdl_max_unpool_double(dy, arg, dx, in_size, out_size, p0, p1)


def maxpool2d_forward(const floating[:, :, :, ::1] X, floating[:, :, :, ::1] Y,
                      int[:, :, :, ::1] argmax, int kh, int kw, int sh, int sw,
                      int ph, int pw, int n_threads):
    """Y = window maxima of X; argmax = flat (ih * W + iw) position of each.

    Parameters
    ----------
    X : (n, C, H, W)
    Y : (n, C, OH, OW) output
    argmax : (n, C, OH, OW) int32 output
    kh, kw, sh, sw, ph, pw : pool size, strides, leading paddings
    n_threads : int
    """
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int OH = Y.shape[2], OW = Y.shape[3]
    cdef Py_ssize_t planes = <Py_ssize_t> n * C, block, p0, p1, plane
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef Py_ssize_t in_size = <Py_ssize_t> H * W, out_size = <Py_ssize_t> OH * OW
    # Every window whole inside the input: no padding on either side.
    cdef bint plain_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0
                           and pw == 0 and 2 * OH <= H and 2 * OW <= W)
    cdef int t = 0
    if planes == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(MAXPOOL2D_FORWARD, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            if plain_2x2:
                _max_planes_2x2(&X[0, 0, 0, 0], W, in_size, &Y[0, 0, 0, 0],
                                &argmax[0, 0, 0, 0], OH, OW, out_size, p0, p1)
            else:
                for plane in range(p0, p1):
                    _max_plane(&X[0, 0, 0, 0] + plane * in_size, H, W,
                               &Y[0, 0, 0, 0] + plane * out_size,
                               &argmax[0, 0, 0, 0] + plane * out_size,
                               OH, OW, kh, kw, sh, sw, ph, pw)


def maxpool2d_backward(const floating[:, :, :, ::1] dY, const int[:, :, :, ::1] argmax,
                       floating[:, :, :, ::1] dX, int n_threads):
    """dX[argmax] += dY: the gradient goes to each window's maximum."""
    cdef Py_ssize_t planes = <Py_ssize_t> dX.shape[0] * dX.shape[1], block, p0, p1
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef Py_ssize_t in_size = <Py_ssize_t> dX.shape[2] * dX.shape[3]
    cdef Py_ssize_t out_size = <Py_ssize_t> dY.shape[2] * dY.shape[3]
    cdef int t = 0
    if planes == 0 or in_size == 0:
        return
    if out_size == 0:
        dX[...] = 0
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(MAXPOOL2D_BACKWARD, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            _max_unpool(&dY[0, 0, 0, 0], &argmax[0, 0, 0, 0], &dX[0, 0, 0, 0],
                        in_size, out_size, p0, p1)


def avgpool2d_forward(const floating[:, :, :, ::1] X, floating[:, :, :, ::1] Y,
                      int kh, int kw, int sh, int sw, int ph, int pw, int n_threads):
    """Y = window means of X over the window's positions inside the input."""
    cdef int n = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3]
    cdef int OH = Y.shape[2], OW = Y.shape[3]
    cdef int plane, i, c, oh, ow, ih, iw, h0, h1, w0, w1, t = 0
    cdef double acc
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for plane in prange(n * C, schedule='static'):
            note_thread(AVGPOOL2D_FORWARD, t)
            i = plane // C
            c = plane % C
            for oh in range(OH):
                h0 = _window_lo(oh, sh, ph)
                h1 = _window_hi(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w0 = _window_lo(ow, sw, pw)
                    w1 = _window_hi(ow, sw, pw, kw, W)
                    acc = 0.0
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            acc = acc + X[i, c, ih, iw]
                    Y[i, c, oh, ow] = <floating> (acc / ((h1 - h0) * (w1 - w0)))


def avgpool2d_backward(const floating[:, :, :, ::1] dY, floating[:, :, :, ::1] dX,
                       int kh, int kw, int sh, int sw, int ph, int pw, int n_threads):
    """dX = the adjoint of avgpool2d_forward."""
    cdef int n = dX.shape[0], C = dX.shape[1], H = dX.shape[2], W = dX.shape[3]
    cdef int OH = dY.shape[2], OW = dY.shape[3]
    cdef int plane, i, c, oh, ow, ih, iw, h0, w0, h1, w1, t = 0
    cdef floating share
    cdef floating* out
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for plane in prange(n * C, schedule='static'):
            note_thread(AVGPOOL2D_BACKWARD, t)
            i = plane // C
            c = plane % C
            out = &dX[i, c, 0, 0]
            memset(out, 0, <Py_ssize_t> H * W * sizeof(floating))
            for oh in range(OH):
                h0 = _window_lo(oh, sh, ph)
                h1 = _window_hi(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w0 = _window_lo(ow, sw, pw)
                    w1 = _window_hi(ow, sw, pw, kw, W)
                    share = dY[i, c, oh, ow] / ((h1 - h0) * (w1 - w0))
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            out[ih * W + iw] += share
