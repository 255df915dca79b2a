# The skdl_window struct of _window.h and how a kernel fills it from the
# geometry tuple skdl._ops.Window.kernel_args() gives (rank, then input,
# output, size, stride, leading padding and dilation, 3 ints each).

cdef extern from "_window.h" nogil:
    ctypedef struct skdl_window:
        int rank
        int input[3]
        int output[3]
        int size[3]
        int stride[3]
        int pad[3]
        int dilation[3]
        int extent[3]
    void skdl_window_finish(skdl_window* w)
    Py_ssize_t skdl_volume(const int* v)


cdef inline int fill_window(skdl_window* w, tuple geometry) except -1:
    """Fills ``w`` from ``geometry`` (Window.kernel_args()), or raises a
    ValueError if it is not 19 ints."""
    cdef int a
    if len(geometry) != 19:
        raise ValueError(f"a window's geometry is 19 ints, got {geometry!r}")
    w.rank = geometry[0]
    for a in range(3):
        w.input[a] = geometry[1 + a]
        w.output[a] = geometry[4 + a]
        w.size[a] = geometry[7 + a]
        w.stride[a] = geometry[10 + a]
        w.pad[a] = geometry[13 + a]
        w.dilation[a] = geometry[16 + a]
    skdl_window_finish(w)
    return 0
