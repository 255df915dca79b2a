"""Max and average pooling over windows of 1, 2 or 3 spatial axes.

Layout (n, C, prod(spatial)) -> (n, C, prod(out)): the op passes each
sample's spatial axes flattened (a free view) and the geometry as one
``skdl_window`` (``_window.h``), which the loops of ``_pool_loops.h`` take.
``prange`` runs over blocks of the n*C planes (a plane: one channel of one
sample). Windows may overlap (stride smaller than the pool) and may reach
into leading and trailing padding, which never wins a max and is not counted
in an average.
Max pooling records the flat input position of each window's maximum for the
backward pass; backward adds into the input gradient plane by plane, so
overlapping windows are summed in a fixed order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from ._openmp cimport (AVGPOOL2D_BACKWARD, AVGPOOL2D_FORWARD, MAXPOOL2D_BACKWARD,
                       MAXPOOL2D_FORWARD, Kernel, note_thread)
from ._window cimport fill_window, skdl_volume, skdl_window


cdef extern from "_pool_loops.h" nogil:
    # One declaration per helper: the header picks the float or double
    # version from the pointers' type (_generic.h).
    bint skdl_plain_2x2(const skdl_window* w)
    void skdl_max_pool(const skdl_window* w, const void* x, void* y, int* arg,
                       Py_ssize_t p0, Py_ssize_t p1)
    void skdl_max_2x2_planes(const skdl_window* w, const void* x, void* y, int* arg,
                             Py_ssize_t p0, Py_ssize_t p1)
    void skdl_max_unpool(const void* dy, const int* arg, void* dx, Py_ssize_t in_size,
                         Py_ssize_t out_size, Py_ssize_t p0, Py_ssize_t p1)
    void skdl_avg_pool(const skdl_window* w, const void* x, void* y, Py_ssize_t p0,
                       Py_ssize_t p1)
    void skdl_avg_unpool(const skdl_window* w, const void* dy, void* dx, Py_ssize_t p0,
                         Py_ssize_t p1)


# Planes per prange task, looped over in C: one prange iteration and call
# per plane cost as much as a 4x4 plane's four outputs.
cdef int PLANE_BLOCK = 64


cdef enum PoolLoop:
    MAX_PLANES
    MAX_2X2_PLANES
    MAX_UNPOOL
    AVG_PLANES
    AVG_UNPOOL


cdef int _check(skdl_window* w, tuple geometry, Py_ssize_t in_size,
                Py_ssize_t out_size) except -1:
    """Fills ``w`` and checks it matches the planes' sizes (a ValueError, not
    memory read out of bounds, if a caller passes other arrays)."""
    fill_window(w, geometry)
    if skdl_volume(w.input) != in_size or skdl_volume(w.output) != out_size:
        raise ValueError(f"the window {geometry} does not fit planes of {in_size} "
                         f"inputs and {out_size} outputs")
    return 0


cdef void _run(PoolLoop loop, Kernel kernel, const skdl_window* w, const floating* src,
               floating* dst, int* arg, Py_ssize_t planes, Py_ssize_t in_size,
               Py_ssize_t out_size, int n_threads) noexcept nogil:
    """One loop of _pool_loops.h over the ``planes`` planes of src into dst,
    in blocks of PLANE_BLOCK planes spread over the threads (each block's
    planes are independent: any split gives the same result)."""
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK, block, p0, p1
    cdef int t = 0
    with parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(kernel, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            if loop == MAX_2X2_PLANES:
                skdl_max_2x2_planes(w, src, dst, arg, p0, p1)
            elif loop == MAX_PLANES:
                skdl_max_pool(w, src, dst, arg, p0, p1)
            elif loop == MAX_UNPOOL:
                skdl_max_unpool(src, arg, dst, in_size, out_size, p0, p1)
            elif loop == AVG_PLANES:
                skdl_avg_pool(w, src, dst, p0, p1)
            else:
                skdl_avg_unpool(w, src, dst, p0, p1)


def maxpool2d_forward(const floating[:, :, ::1] X, floating[:, :, ::1] Y,
                      int[:, :, ::1] argmax, tuple geometry, int n_threads):
    """Y = window maxima of X; argmax = flat position of each in its plane.

    Parameters
    ----------
    X : (n, C, prod(spatial))
    Y : (n, C, prod(out)) output
    argmax : (n, C, prod(out)) int32 output, C-order positions in a plane
    geometry : tuple, ``Window.kernel_args()``
    n_threads : int
    """
    cdef skdl_window w
    _check(&w, geometry, X.shape[2], Y.shape[2])
    if X.shape[0] * X.shape[1] == 0 or Y.shape[2] == 0:
        return
    with nogil:
        # Every window whole inside the input, no padding: the 2x2 loop.
        _run(MAX_2X2_PLANES if skdl_plain_2x2(&w) else MAX_PLANES, MAXPOOL2D_FORWARD, &w,
             &X[0, 0, 0], &Y[0, 0, 0], &argmax[0, 0, 0], X.shape[0] * X.shape[1],
             X.shape[2], Y.shape[2], n_threads)


def maxpool2d_backward(const floating[:, :, ::1] dY, const int[:, :, ::1] argmax,
                       floating[:, :, ::1] dX, int n_threads):
    """dX[argmax] += dY: the gradient goes to each window's maximum.

    Parameters
    ----------
    dY : (n, C, prod(out))
    argmax : (n, C, prod(out)) int32, from the forward pass
    dX : (n, C, prod(spatial)) output
    n_threads : int
    """
    if dX.shape[0] * dX.shape[1] == 0 or dX.shape[2] == 0:
        return
    if dY.shape[2] == 0:
        dX[...] = 0
        return
    with nogil:
        _run(MAX_UNPOOL, MAXPOOL2D_BACKWARD, NULL, &dY[0, 0, 0], &dX[0, 0, 0],
             <int*> &argmax[0, 0, 0], dX.shape[0] * dX.shape[1], dX.shape[2],
             dY.shape[2], n_threads)


def avgpool2d_forward(const floating[:, :, ::1] X, floating[:, :, ::1] Y,
                      tuple geometry, int n_threads):
    """Y = window means of X over the window's positions inside the input.

    Parameters
    ----------
    X : (n, C, prod(spatial))
    Y : (n, C, prod(out)) output
    geometry : tuple, ``Window.kernel_args()``
    n_threads : int
    """
    _average(AVG_PLANES, X, Y, X.shape[2], Y.shape[2], geometry, n_threads)


def avgpool2d_backward(const floating[:, :, ::1] dY, floating[:, :, ::1] dX,
                       tuple geometry, int n_threads):
    """dX = the adjoint of avgpool2d_forward.

    Parameters
    ----------
    dY : (n, C, prod(out))
    dX : (n, C, prod(spatial)) output
    geometry : tuple, ``Window.kernel_args()``
    n_threads : int
    """
    _average(AVG_UNPOOL, dY, dX, dX.shape[2], dY.shape[2], geometry, n_threads)


cdef int _average(PoolLoop loop, const floating[:, :, ::1] src, floating[:, :, ::1] dst,
                  Py_ssize_t in_size, Py_ssize_t out_size, tuple geometry,
                  int n_threads) except -1:
    """Average pooling (AVG_PLANES: src the input, dst the output) or its
    adjoint (AVG_UNPOOL: src the output gradient, dst the input's)."""
    cdef skdl_window w
    _check(&w, geometry, in_size, out_size)
    if src.shape[0] * src.shape[1] == 0 or dst.shape[2] == 0:
        return 0
    with nogil:
        _run(loop, AVGPOOL2D_FORWARD if loop == AVG_PLANES else AVGPOOL2D_BACKWARD, &w,
             &src[0, 0, 0], &dst[0, 0, 0], NULL, src.shape[0] * src.shape[1], in_size,
             out_size, n_threads)
    return 0
