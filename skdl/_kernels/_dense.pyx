"""Matrix-product kernels for dense layers.

Row-wise products (forward pass, input gradient) use skdl's own register-tile
kernel (``_rowgemm.h``), not BLAS: every output element is accumulated in the
same order whatever its row's position, so a sample's output never depends on
which other samples share its batch, on its position in it, or on the thread
count. (OpenBLAS's sgemm rounds a row differently by its position inside a
tile on some CPUs.) The rows are cut into panels of ``panel_rows`` rows, shared
out by ``prange``; bias and activation are applied to a panel while it is hot.

Reductions over the batch (weight gradients, A.T @ B) use a register-tile
kernel of their own (``_gemmtn.h``) that reads A and B in place. A tall batch
is summed in fixed chunks of rows (threads take whole chunks, then the
partials are added in chunk order); a short one computes each element as
``_rowgemm.h`` would from A.T, threads splitting the output. The chunks depend
on the shapes only, so the result is the same for any thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc

from ._activations cimport LINEAR, forward_row
from ._openmp cimport (CSC_WEIGHT_GRADIENT, CSR_ROWS_PRODUCT, GEMM_TN, ROWWISE_GEMM,
                       WEIGHTED_COLUMN_SUM, note_thread)
from ._rowgemm cimport pack_b, packed_size, rowgemm


# Most rows per panel of a row-wise product: a multiple of the kernel's row
# tile (6) whose rows of A stay in L2 while the panel is computed.
cdef int MAX_PANEL_ROWS = 120
# Columns per block of a column sum (the size of its stack accumulator).
cdef enum:
    SUM_BLOCK = 64


cdef void _panel_product(int start, int rows, int k, int p,
                         const floating* a, const floating* packed,
                         const floating* bias, int activation, double alpha,
                         floating* c) noexcept nogil:
    """C[start:start+rows] = f(A[start:start+rows] @ B + bias), B packed."""
    cdef int i, j
    cdef floating* row
    rowgemm(rows, p, k, a + <Py_ssize_t> start * k, k, packed,
            c + <Py_ssize_t> start * p, p, False)
    for i in range(start, start + rows):
        row = c + <Py_ssize_t> i * p
        if bias != NULL:
            for j in range(p):
                row[j] += bias[j]
        if activation != LINEAR:
            forward_row(activation, alpha, row, row, p)


def rowwise_gemm(const floating[:, ::1] A, const floating[:, ::1] B,
                 floating[:, ::1] C, bint trans_b, int n_threads,
                 const floating[::1] bias=None,
                 int activation=0, double alpha=0.0):
    """C = f(A @ op(B) + bias), each row computed the same way wherever it is.

    Parameters
    ----------
    A : (n, k) array
    B : (k, p) array, or (p, k) when ``trans_b``
    C : (n, p) output array
    trans_b : bool
    n_threads : int
    bias : (p,) array or None
    activation : int, activation kind (see _activations.pxd); 0 is linear
    alpha : float, parameter of the activation
    """
    cdef int n = A.shape[0]
    cdef int k = A.shape[1]
    cdef int p = C.shape[1]
    cdef int panel_rows, n_panels, i, start, rows, t = 0
    cdef Py_ssize_t s_k = p if not trans_b else 1
    cdef Py_ssize_t s_n = 1 if not trans_b else k
    cdef const floating* bias_ptr = NULL
    cdef const floating* a_ptr = NULL
    cdef const floating* b_ptr = NULL
    cdef floating* packed
    if n == 0 or p == 0:
        return
    if k > 0:  # with no columns there is no first element to point at
        a_ptr = &A[0, 0]
        b_ptr = &B[0, 0]
    if bias is not None:
        bias_ptr = &bias[0]
    # Enough panels for every thread; rows are computed the same way whatever
    # the panel size, so it may depend on the thread count.
    panel_rows = min(MAX_PANEL_ROWS, (n + n_threads - 1) // max(n_threads, 1))
    panel_rows = max(6, (panel_rows + 5) // 6 * 6)
    n_panels = (n + panel_rows - 1) // panel_rows
    packed = <floating*> malloc(max(<size_t> 1, packed_size(k, p, sizeof(floating)))
                                * sizeof(floating))
    if packed == NULL:
        raise MemoryError(f"cannot allocate the packed ({k}, {p}) weights")
    try:
        with nogil:
            pack_b(k, p, b_ptr, s_k, s_n, <floating> 1.0, packed)
            with parallel(num_threads=n_threads):
                t = threadid()
                for i in prange(n_panels, schedule='static'):
                    note_thread(ROWWISE_GEMM, t)
                    start = i * panel_rows
                    rows = min(panel_rows, n - start)
                    _panel_product(start, rows, k, p, a_ptr, packed, bias_ptr,
                                   activation, alpha, &C[0, 0])
    finally:
        free(packed)


cdef extern from "_gemmtn.h" nogil:
    # Rows r0..r1-1, columns c0..c1-1 of R = alpha * S.T @ V for S (n, ns) and
    # V (n, nv) with row strides lds, ldv; R[i, j] at out[i * rs + j * cs].
    void gemm_tn_block "skdl_gemm_tn"(int n, const void* s, Py_ssize_t lds,
                                      const void* v, Py_ssize_t ldv, void* out,
                                      Py_ssize_t rs, Py_ssize_t cs, double alpha,
                                      int r0, int r1, int c0, int c1)
    # Elements per vector of the kernel version in use.
    int gemm_tn_vector_width "skdl_gemm_tn_vector_width"(size_t itemsize)


# gemm_tn's tiles are rows of the result by one or two vectors of its columns
# (short edges of rows cost nothing extra, columns are padded to whole
# vectors). Its operand of few columns is better as the broadcast one: a
# regression output's (4096, 64) x (4096, 1) as C.T = dY.T @ X fills vectors
# with X's 64 columns instead of 1 of a vector's 16 lanes (float32, one thread,
# 0.084 ms -> 0.009), a 10-class output layer's (4096, 64) x (4096, 10) 0.094
# -> 0.069. Writing C.T goes element by element, so the transposed way must
# save a fifth of the work: (64, 2048) x (64, 44) stays as written (0.165 ms;
# 0.187 transposed).
cdef int ORIENTATION = -1  # -1 chosen by the shapes, 0 as written, 1 transposed


cdef inline Py_ssize_t _tile_cost(Py_ssize_t rows, Py_ssize_t cols, int width) noexcept nogil:
    """Multiply-add slots of a result of rows x cols, in vectors of `width`
    columns (edges padded)."""
    return rows * ((cols + width - 1) // width * width)


# gemm_tn's chunked sum over a tall batch: at least MIN_CHUNK_ROWS rows per
# chunk (each chunk adds a partial result to write and sum: about 7% more
# work than one chunk at 256 rows of (4096, 64) x (4096, 64), 2-3% at 512),
# at most MAX_CHUNKS equal chunks (enough to share among threads) in whole
# blocks of 64 rows (the kernel's SKDL_TN_KC), and the partials of all chunks
# within CHUNK_SCRATCH bytes. It depends on the shapes only, never on the
# thread count, so the order of the additions is fixed.
cdef int MIN_CHUNK_ROWS = 512
cdef int MAX_CHUNKS = 16
cdef Py_ssize_t CHUNK_SCRATCH = 4 << 20


cdef inline int _chunk_rows(Py_ssize_t n, Py_ssize_t p, Py_ssize_t q,
                            size_t itemsize) noexcept nogil:
    """Rows per chunk of gemm_tn's sum over the batch, 0 for a single chunk."""
    cdef Py_ssize_t per_chunk = max(<Py_ssize_t> 1, p * q * <Py_ssize_t> itemsize)
    cdef Py_ssize_t n_chunks = min(n // MIN_CHUNK_ROWS, <Py_ssize_t> MAX_CHUNKS,
                                   CHUNK_SCRATCH // per_chunk)
    cdef Py_ssize_t chunk
    if n_chunks < 2:
        return 0
    chunk = ((n + n_chunks - 1) // n_chunks + 63) // 64 * 64
    if (n + chunk - 1) // chunk < 2:
        return 0
    return <int> chunk


def gemm_tn_chunks(Py_ssize_t n, Py_ssize_t p, Py_ssize_t q, size_t itemsize):
    """(rows per chunk, number of chunks) of gemm_tn's sum over n rows for a
    (p, q) result of `itemsize`-byte elements; (n, 1) when it runs as a single
    chunk (threads then split C). For tests and benchmarks."""
    cdef int chunk = _chunk_rows(n, p, q, itemsize)
    if chunk == 0:
        return n, 1
    return chunk, (n + chunk - 1) // chunk


cdef void _sum_chunks(const floating* partials, int n_chunks, Py_ssize_t size,
                      int r, int j0, int width, int nv, double alpha,
                      floating* out, Py_ssize_t rs, Py_ssize_t cs) noexcept nogil:
    """out's elements of R[r, j0:j0+width] = alpha * the sum of the chunks'
    partials R_c[r, j0:j0+width], added in chunk order, in float64."""
    cdef double acc[SUM_BLOCK]
    cdef int c, j
    cdef const floating* row
    for j in range(width):
        acc[j] = 0.0
    for c in range(n_chunks):
        row = partials + c * size + <Py_ssize_t> r * nv + j0
        for j in range(width):
            acc[j] += row[j]
    for j in range(width):
        out[<Py_ssize_t> r * rs + <Py_ssize_t> (j0 + j) * cs] = <floating> (alpha * acc[j])


def gemm_tn(double alpha, const floating[:, ::1] A, const floating[:, ::1] B,
            floating[:, ::1] C, int n_threads):
    """C = alpha * A.T @ B, a sum over the rows of A and B in a fixed order.

    A register-tile kernel (``_gemmtn.h``) reads rows of A and B where they
    are, with no transpose or packing pass. The order of the additions depends
    on the shapes only, so the result does not depend on the thread count:

    * a tall batch (``gemm_tn_chunks``: two to 16 chunks of 512 rows or
      more) is cut into fixed chunks of rows; threads take whole chunks in
      order (``static``: a thread reads the rows the row-parallel ops before
      it wrote from its core, instead of streaming all rows of A and B), each
      chunk's partial product goes to its own slot of a scratch array, and the
      partials are then added in chunk order, in float64, and scaled by alpha;
    * otherwise each element is the chain of multiply-adds over k = 0..n-1
      that ``rowwise_gemm`` computes from A.T (the same bits), and threads
      take blocks of C.

    (Replaces a BLAS call: OpenBLAS's idle threads spin and take a core from
    ours.)

    Parameters
    ----------
    alpha : float
    A : (n, p) array
    B : (n, q) array
    C : (p, q) output array
    n_threads : int
    """
    cdef int n = A.shape[0]
    cdef int p = A.shape[1]
    cdef int q = B.shape[1]
    cdef int width, ns, nv, unit, n_units, n_parts, part, r0, r1, c0, c1, t = 0
    cdef int chunk, n_chunks, c, k0, n_blocks, b, r, j0
    cdef bint transposed, by_rows
    cdef const floating* s
    cdef const floating* v
    cdef floating* partials
    cdef Py_ssize_t rs, cs, size
    if p == 0 or q == 0:
        return
    if n == 0:
        C[:, :] = 0
        return
    width = gemm_tn_vector_width(sizeof(floating))
    transposed = ORIENTATION == 1 or (
        ORIENTATION == -1 and 5 * _tile_cost(q, p, width) < 4 * _tile_cost(p, q, width))
    if transposed:  # C.T = B.T @ A
        s, v, ns, nv, rs, cs = &B[0, 0], &A[0, 0], q, p, 1, q
    else:
        s, v, ns, nv, rs, cs = &A[0, 0], &B[0, 0], p, q, q, 1
    n_threads = max(n_threads, 1)
    chunk = _chunk_rows(n, p, q, sizeof(floating))
    if chunk > 0:
        n_chunks = (n + chunk - 1) // chunk
        size = <Py_ssize_t> ns * nv
        # Each partial is R itself (rows ns, columns nv): whole-vector stores
        # in the tiles; only the final sum writes C.T when transposed.
        partials = <floating*> malloc(<size_t> n_chunks * size * sizeof(floating))
        if partials == NULL:
            raise MemoryError(f"cannot allocate {n_chunks} partial ({ns}, {nv}) results")
        n_blocks = (nv + SUM_BLOCK - 1) // SUM_BLOCK
        try:
            with nogil:
                with parallel(num_threads=min(n_threads, n_chunks)):
                    t = threadid()
                    for c in prange(n_chunks, schedule='static'):
                        note_thread(GEMM_TN, t)
                        k0 = c * chunk
                        gemm_tn_block(min(chunk, n - k0), s + <Py_ssize_t> k0 * ns, ns,
                                      v + <Py_ssize_t> k0 * nv, nv, partials + c * size,
                                      nv, 1, 1.0, 0, ns, 0, nv)
                with parallel(num_threads=min(n_threads, ns * n_blocks)):
                    t = threadid()
                    for b in prange(ns * n_blocks, schedule='static'):
                        note_thread(GEMM_TN, t)
                        r = b // n_blocks
                        j0 = (b % n_blocks) * SUM_BLOCK
                        _sum_chunks(partials, n_chunks, size, r, j0,
                                    min(<int> SUM_BLOCK, nv - j0), nv, alpha,
                                    &C[0, 0], rs, cs)
        finally:
            free(partials)
        return
    # One chunk. Blocks of whole tiles: of rows (each reads its columns of S
    # and all of V) when there are two units of 8 for each thread, else of
    # panels of columns where there is one for each thread (C.T (10, 64) of a
    # 10-class layer: rows 8 + 2 left one thread all the work of reading A).
    by_rows = True
    unit = 8
    n_units = (ns + unit - 1) // unit
    if n_units < 2 * n_threads and (nv + 2 * width - 1) // (2 * width) >= n_threads:
        by_rows = False
        unit = 2 * width
        n_units = (nv + unit - 1) // unit
    n_parts = min(n_threads, n_units)
    with nogil, parallel(num_threads=n_parts):
        t = threadid()
        for part in prange(n_parts, schedule='static'):
            note_thread(GEMM_TN, t)
            r0, r1, c0, c1 = 0, ns, 0, nv
            if by_rows:
                r0 = min(ns, part * n_units // n_parts * unit)
                r1 = min(ns, (part + 1) * n_units // n_parts * unit)
            else:
                c0 = min(nv, part * n_units // n_parts * unit)
                c1 = min(nv, (part + 1) * n_units // n_parts * unit)
            gemm_tn_block(n, s, ns, v, nv, &C[0, 0], rs, cs, alpha, r0, r1, c0, c1)


def gemm_tn_orientation(int value=-2):
    """gemm_tn's choice of orientation: -1 by the shapes (the default), 0 always
    as written, 1 always C.T = B.T @ A; a value >= -1 sets it (for tests: both
    ways must give the same bits)."""
    global ORIENTATION
    if value >= -1:
        ORIENTATION = value
    return ORIENTATION


cdef void _column_sum_rows(const floating* a, const double* w, int r0, int r1, int p,
                           int j0, int width, double* acc) noexcept nogil:
    """acc[j] = sum_r w[r] * A[r, j0 + j] over rows r0..r1-1 in order, float64."""
    cdef int r, j
    cdef double wr = 1.0
    cdef const floating* row
    for j in range(width):
        acc[j] = 0.0
    for r in range(r0, r1):
        if w != NULL:
            wr = w[r]
        row = a + <Py_ssize_t> r * p + j0
        for j in range(width):
            acc[j] += wr * row[j]


cdef void _column_sum_block(const floating* a, const double* w, int n, int p,
                            int j0, int width, double alpha,
                            floating* out) noexcept nogil:
    cdef double acc[SUM_BLOCK]
    cdef int j
    _column_sum_rows(a, w, 0, n, p, j0, width, acc)
    for j in range(width):
        out[j0 + j] = <floating> (alpha * acc[j])


def weighted_column_sum(const floating[:, ::1] A, const double[::1] weights,
                        double alpha, floating[::1] out, int n_threads):
    """out[j] = alpha * sum_r weights[r] * A[r, j], accumulated in float64.

    A tall A is summed in the chunks of rows gemm_tn uses (fixed by the
    shapes), threads taking whole chunks in order, the chunks' float64
    partials then added in chunk order: a bias gradient of 64 columns (one
    block) still splits over threads, each reading the rows it wrote. A short
    one is summed in row order, threads taking blocks of columns. Either way
    the result does not depend on the thread count.

    Parameters
    ----------
    A : (n, p) array
    weights : (n,) float64 array, or None for all ones
    alpha : float
    out : (p,) output array
    n_threads : int
    """
    cdef int n = A.shape[0]
    cdef int p = A.shape[1]
    cdef int n_blocks = (p + SUM_BLOCK - 1) // SUM_BLOCK
    cdef int b, j0, c, j, r0, t = 0
    cdef int chunk = _chunk_rows(n, 1, p, sizeof(double))
    cdef int n_chunks
    cdef double total
    cdef double* partials
    cdef const double* w = NULL
    if weights is not None:
        w = &weights[0]
    if n == 0:
        out[:] = 0
        return
    if p == 0:
        return
    if chunk == 0:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for b in prange(n_blocks, schedule='static'):
                note_thread(WEIGHTED_COLUMN_SUM, t)
                j0 = b * SUM_BLOCK
                _column_sum_block(&A[0, 0], w, n, p, j0, min(<int> SUM_BLOCK, p - j0),
                                  alpha, &out[0])
        return
    n_chunks = (n + chunk - 1) // chunk
    partials = <double*> malloc(<size_t> n_chunks * p * sizeof(double))
    if partials == NULL:
        raise MemoryError(f"cannot allocate {n_chunks} partial sums of {p} columns")
    try:
        with nogil:
            # Units in chunk order (all blocks of chunk 0 first): a static
            # share gives each thread consecutive rows.
            with parallel(num_threads=min(max(n_threads, 1), n_chunks * n_blocks)):
                t = threadid()
                for b in prange(n_chunks * n_blocks, schedule='static'):
                    note_thread(WEIGHTED_COLUMN_SUM, t)
                    c = b // n_blocks
                    j0 = (b % n_blocks) * SUM_BLOCK
                    r0 = c * chunk
                    _column_sum_rows(&A[0, 0], w, r0, min(n, r0 + chunk), p, j0,
                                     min(<int> SUM_BLOCK, p - j0),
                                     partials + <Py_ssize_t> c * p + j0)
            for j in range(p):
                total = 0.0
                for c in range(n_chunks):
                    total = total + partials[<Py_ssize_t> c * p + j]
                out[j] = <floating> (alpha * total)
    finally:
        free(partials)



# -- sparse input (a first Dense layer on scipy CSR/CSC data) ---------------

def csr_rows_product(const floating[::1] data, const Py_ssize_t[::1] indices,
                     const Py_ssize_t[::1] indptr, const floating[:, ::1] W,
                     floating[:, ::1] C, int n_threads,
                     const floating[::1] bias=None, int activation=0,
                     double alpha=0.0):
    """C = f(X @ W + bias) for X in CSR form, touching only its stored values.

    Each row is summed over its stored entries in their order, by one thread,
    so a row's output does not depend on the other rows or the thread count.

    Parameters
    ----------
    data, indices, indptr : the CSR arrays of X, shape (n, k)
    W : (k, p) array
    C : (n, p) output array
    n_threads : int
    bias : (p,) array or None
    activation : int
        Code of the activation (``_activations.pxd``).
    alpha : float
        Parameter of the activation.
    """
    cdef int n = C.shape[0]
    cdef int p = C.shape[1]
    cdef int r, c, t = 0
    cdef Py_ssize_t j
    cdef floating v
    cdef floating* row
    cdef const floating* w_row
    cdef const floating* b = NULL
    if n == 0 or p == 0:
        return
    if bias is not None:
        b = &bias[0]
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for r in prange(n, schedule='static'):
            note_thread(CSR_ROWS_PRODUCT, t)
            row = &C[r, 0]
            for c in range(p):
                row[c] = 0
            for j in range(indptr[r], indptr[r + 1]):
                v = data[j]
                w_row = &W[indices[j], 0]
                for c in range(p):
                    row[c] += v * w_row[c]
            if b != NULL:
                for c in range(p):
                    row[c] += b[c]
            if activation != LINEAR:
                forward_row(activation, alpha, row, row, p)


def csc_weight_gradient(double alpha, const floating[::1] data,
                        const Py_ssize_t[::1] indices, const Py_ssize_t[::1] indptr,
                        const floating[:, ::1] dY, const double[::1] weights,
                        floating[:, ::1] dW, int n_threads):
    """dW = alpha * X.T @ (w * dY) for X in CSC form, accumulated in float64.

    Threads take X's columns (dW's rows); each sums its column's stored
    entries in row order, so the result does not depend on the thread count.

    Parameters
    ----------
    alpha : float
    data, indices, indptr : the CSC arrays of X, shape (n, k), row indices
        sorted within each column
    dY : (n, p) array
    weights : (n,) float64 array, or None for all ones
    dW : (k, p) output array
    n_threads : int
    """
    cdef int k = dW.shape[0]
    cdef int p = dW.shape[1]
    cdef int col, c, t = 0
    cdef Py_ssize_t j
    cdef double v
    cdef double* scratch
    cdef double* acc
    cdef const floating* dy_row
    cdef const double* w = NULL
    if k == 0 or p == 0:
        return
    if weights is not None:
        w = &weights[0]
    # One float64 row accumulator per thread, allocated before the region.
    scratch = <double*> malloc(<size_t> n_threads * p * sizeof(double))
    if scratch == NULL:
        raise MemoryError(f"cannot allocate {n_threads} weight-gradient rows of {p}")
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for col in prange(k, schedule='static'):
                note_thread(CSC_WEIGHT_GRADIENT, t)
                acc = scratch + <Py_ssize_t> t * p
                for c in range(p):
                    acc[c] = 0.0
                for j in range(indptr[col], indptr[col + 1]):
                    v = data[j]
                    if w != NULL:
                        v = v * w[indices[j]]
                    dy_row = &dY[indices[j], 0]
                    for c in range(p):
                        acc[c] += v * dy_row[c]
                for c in range(p):
                    dW[col, c] = <floating> (alpha * acc[c])
    finally:
        free(scratch)


include "_gemm_level.pxi"

