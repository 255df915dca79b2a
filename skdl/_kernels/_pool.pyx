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
                       MAXPOOL2D_FORWARD, note_thread)
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


cdef int _check(skdl_window* w, tuple geometry, Py_ssize_t in_size,
                Py_ssize_t out_size) except -1:
    """Fills ``w`` and checks it matches the planes' sizes (a ValueError, not
    memory read out of bounds, if a caller passes other arrays)."""
    fill_window(w, geometry)
    if skdl_volume(w.input) != in_size or skdl_volume(w.output) != out_size:
        raise ValueError(f"the window {geometry} does not fit planes of {in_size} "
                         f"inputs and {out_size} outputs")
    return 0


# Each kernel runs its loop of _pool_loops.h over blocks of PLANE_BLOCK planes
# spread over the threads (the planes are independent: any split gives the
# same result). The loops are compiled apart from these prange bodies
# (SKDL_NOINLINE), which keeps them as fast as the 2-D loops were.


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
    cdef Py_ssize_t planes = <Py_ssize_t> X.shape[0] * X.shape[1], block, p0, p1
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef bint plain_2x2
    cdef int t = 0
    _check(&w, geometry, X.shape[2], Y.shape[2])
    # Every window whole inside the input, no padding: the 2x2 loop.
    plain_2x2 = skdl_plain_2x2(&w)
    if planes == 0 or Y.shape[2] == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(MAXPOOL2D_FORWARD, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            if plain_2x2:
                skdl_max_2x2_planes(&w, &X[0, 0, 0], &Y[0, 0, 0], &argmax[0, 0, 0], p0, p1)
            else:
                skdl_max_pool(&w, &X[0, 0, 0], &Y[0, 0, 0], &argmax[0, 0, 0], p0, p1)


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
    cdef Py_ssize_t planes = <Py_ssize_t> dX.shape[0] * dX.shape[1], block, p0, p1
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef Py_ssize_t in_size = dX.shape[2], out_size = dY.shape[2]
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
            skdl_max_unpool(&dY[0, 0, 0], &argmax[0, 0, 0], &dX[0, 0, 0], in_size,
                            out_size, p0, p1)


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
    cdef skdl_window w
    cdef Py_ssize_t planes = <Py_ssize_t> X.shape[0] * X.shape[1], block, p0, p1
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef int t = 0
    _check(&w, geometry, X.shape[2], Y.shape[2])
    if planes == 0 or Y.shape[2] == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(AVGPOOL2D_FORWARD, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            skdl_avg_pool(&w, &X[0, 0, 0], &Y[0, 0, 0], p0, p1)


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
    cdef skdl_window w
    cdef Py_ssize_t planes = <Py_ssize_t> dX.shape[0] * dX.shape[1], block, p0, p1
    cdef Py_ssize_t n_blocks = (planes + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef int t = 0
    _check(&w, geometry, dX.shape[2], dY.shape[2])
    if planes == 0 or dX.shape[2] == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for block in prange(n_blocks, schedule='static'):
            note_thread(AVGPOOL2D_BACKWARD, t)
            p0 = block * PLANE_BLOCK
            p1 = min(p0 + PLANE_BLOCK, planes)
            skdl_avg_unpool(&w, &dY[0, 0, 0], &dX[0, 0, 0], p0, p1)
