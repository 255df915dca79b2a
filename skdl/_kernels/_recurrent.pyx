"""Time loops of the recurrent layers: SimpleRNN, GRU (reset-after) and LSTM.

The input projection of every step (x_t @ W + b) is one matrix product done
by the caller before the loop; here each step multiplies the previous hidden
state by the recurrent kernel U and applies the gate arithmetic. A sample's
recurrence never touches another sample, so the batch is cut into row blocks,
one per thread, each running the whole time loop on its own (no barrier per
step). The per-step product uses skdl's row-invariant kernel: a sample's
result does not depend on its batch or on the thread count.

Arrays are in processing order (a layer that reads its sequence backwards
flips it first). Gate blocks along the last axis:
SimpleRNN (a), GRU (r, z, n), LSTM (i, f, g, o).

Masked steps (mask[i, s] == 0) leave the state unchanged: h_s = h_{s-1} (and
c_s = c_{s-1}); backward passes their gradient straight through and gives
their gates none.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._activations cimport backward_row, forward_row
from ._openmp cimport RECURRENT_BACKWARD, RECURRENT_FORWARD, note_thread
from ._rowgemm cimport pack_b, packed_size, rowgemm

cdef enum:
    SIMPLE = 0
    GRU = 1
    LSTM = 2

CELLS = {"simple": SIMPLE, "gru": GRU, "lstm": LSTM}
GATES = {"simple": 1, "gru": 3, "lstm": 4}


cdef floating* _alloc(size_t count, floating* kind) except NULL:
    cdef floating* buf = <floating*> malloc(max(<size_t> 1, count) * sizeof(floating))
    if buf == NULL:
        raise MemoryError("cannot allocate the recurrent kernel's scratch buffers")
    return buf


cdef inline int _block_rows(int n, int n_threads) noexcept nogil:
    """Rows per block: one equal block per thread (rows are computed the same
    way however they are grouped)."""
    return max(1, (n + n_threads - 1) // n_threads)


cdef extern from "_cells.h" nogil:
    void skdl_add3_float(int m, const float* a, const float* b, const float* c, float* out)
    void skdl_add3_double(int m, const double* a, const double* b, const double* c,
                          double* out)
    void skdl_lstm_state_float(int u, const float* gi, const float* gf, const float* gg,
                               const float* c_prev, float* c)
    void skdl_lstm_state_double(int u, const double* gi, const double* gf,
                                const double* gg, const double* c_prev, double* c)
    void skdl_mul_float(int m, const float* a, const float* b, float* out)
    void skdl_mul_double(int m, const double* a, const double* b, double* out)
    void skdl_lstm_back_h_float(int u, const float* dh, const float* go,
                                const float* ac, float* dac, float* do_)
    void skdl_lstm_back_h_double(int u, const double* dh, const double* go,
                                 const double* ac, double* dac, double* do_)
    void skdl_lstm_back_c_float(int u, float* dc, const float* dc_h, const float* gi,
                                const float* gf, const float* gg, const float* c_prev,
                                float* di, float* df, float* dg)
    void skdl_lstm_back_c_double(int u, double* dc, const double* dc_h, const double* gi,
                                 const double* gf, const double* gg, const double* c_prev,
                                 double* di, double* df, double* dg)
    void skdl_gru_candidate_float(int u, const float* xw_n, const float* r_n,
                                  const float* bh_n, const float* gr, float* gn,
                                  float* hu_n)
    void skdl_gru_candidate_double(int u, const double* xw_n, const double* r_n,
                                   const double* bh_n, const double* gr, double* gn,
                                   double* hu_n)
    void skdl_gru_state_float(int u, const float* gz, const float* gn,
                              const float* h_prev, float* h)
    void skdl_gru_state_double(int u, const double* gz, const double* gn,
                               const double* h_prev, double* h)
    void skdl_gru_back_h_float(int u, const float* dh, const float* gz, const float* gn,
                               const float* h_prev, float* dn, float* dz,
                               float* dh_direct)
    void skdl_gru_back_h_double(int u, const double* dh, const double* gz,
                                const double* gn, const double* h_prev, double* dn,
                                double* dz, double* dh_direct)
    void skdl_gru_back_n_float(int u, const float* da_n, const float* gr,
                               const float* hu_n, float* dgh_n, float* dr)
    void skdl_gru_back_n_double(int u, const double* da_n, const double* gr,
                                const double* hu_n, double* dgh_n, double* dr)


cdef inline void _add3(int m, const floating* a, const floating* b, const floating* c,
                       floating* out) noexcept nogil:
    if floating is float:
        skdl_add3_float(m, a, b, c, out)
    else:
        skdl_add3_double(m, a, b, c, out)


cdef void _cell_forward(int cell, int act, double alpha, int ract, int u,
                        const floating* xw, const floating* r, const floating* bh,
                        const floating* h_prev, const floating* c_prev,
                        floating* gates, floating* extra, floating* h,
                        floating* c) noexcept nogil:
    """One sample, one step.

    SimpleRNN: h holds xw + h_prev @ U already; LSTM: gates does. GRU: r is
    h_prev @ U (before the recurrent bias).
    """
    if cell == SIMPLE:
        forward_row(act, alpha, h, h, u)
    elif cell == LSTM:
        forward_row(ract, 0.0, gates, gates, 2 * u)                # i, f
        forward_row(act, alpha, gates + 2 * u, gates + 2 * u, u)   # g
        forward_row(ract, 0.0, gates + 3 * u, gates + 3 * u, u)    # o
        if floating is float:
            skdl_lstm_state_float(u, gates, gates + u, gates + 2 * u, c_prev, c)
        else:
            skdl_lstm_state_double(u, gates, gates + u, gates + 2 * u, c_prev, c)
        forward_row(act, alpha, c, extra, u)                       # extra = act(c)
        if floating is float:
            skdl_mul_float(u, gates + 3 * u, extra, h)
        else:
            skdl_mul_double(u, gates + 3 * u, extra, h)
    else:  # GRU, reset-after: n = act(xw_n + r * (h U_n + b_hn))
        _add3(2 * u, xw, r, bh, gates)
        forward_row(ract, 0.0, gates, gates, 2 * u)                # r, z
        if floating is float:
            skdl_gru_candidate_float(u, xw + 2 * u, r + 2 * u,
                                     bh + 2 * u if bh != NULL else NULL, gates,
                                     gates + 2 * u, extra)
        else:
            skdl_gru_candidate_double(u, xw + 2 * u, r + 2 * u,
                                      bh + 2 * u if bh != NULL else NULL, gates,
                                      gates + 2 * u, extra)
        forward_row(act, alpha, gates + 2 * u, gates + 2 * u, u)
        if floating is float:
            skdl_gru_state_float(u, gates + u, gates + 2 * u, h_prev, h)
        else:
            skdl_gru_state_double(u, gates + u, gates + 2 * u, h_prev, h)


cdef inline void _project(int rows, int Gu, int k, const floating* x, Py_ssize_t ldx,
                         const floating* packed_w, const floating* bias, floating* dst,
                         Py_ssize_t ldd) noexcept nogil:
    """dst rows = x rows @ W + bias, as the dense kernel computes them."""
    cdef int i, j
    rowgemm(rows, Gu, k, x, ldx, packed_w, dst, ldd, False)
    if bias != NULL:
        for i in range(rows):
            for j in range(Gu):
                dst[i * ldd + j] += bias[j]


def recurrent_forward(int cell, int act, double alpha, int ract,
                      const floating[:, ::1] U,
                      const floating[:, :, ::1] XW, const floating[:, :, ::1] X,
                      const floating[:, ::1] W, const floating[::1] b,
                      const floating[::1] bh, const unsigned char[:, ::1] mask,
                      floating[:, :, ::1] H, floating[:, :, ::1] C,
                      floating[:, :, ::1] gates, floating[:, :, ::1] extra,
                      int n_threads):
    """Run the cell over every step.

    Parameters
    ----------
    cell : SIMPLE, GRU or LSTM
    act, ract : activation kinds (see _activations.pxd) of the candidate /
        output and of the gates; alpha is act's parameter
    U : (u, G*u) recurrent kernel (first: its dtype picks the version)
    XW : (n, T, G*u) input projections, input bias included; or None, and
        then X (n, T, k), W (k, G*u) and b (G*u,) or None: each step's
        projection is computed when it is needed (inference: no (n, T, G*u)
        array), the same way the dense kernel computes XW
    bh : (G*u,) recurrent bias (GRU) or None
    mask : (n, T) uint8, 0 for a skipped step, or None
    H : (n, T+1, u) output; H[:, 0] is the initial state (zeros), H[:, s+1]
        the state after step s. Or (n, 2, u), used in turn (step s reads
        H[:, s % 2], writes H[:, (s+1) % 2]): inference that needs only the
        last state keeps two.
    C : (n, T+1, u) or (n, 2, u) cell states (LSTM), or None
    gates : (n, T, G*u) gate values after their activations (GRU, LSTM), or
        (n, 1, G*u) rewritten at every step (inference), or None
    extra : (n, T, u) or (n, 1, u): act(c) (LSTM), h @ U_n + b_hn (GRU), or None
    n_threads : int
    """
    cdef bint has_xw = XW is not None
    cdef int n = H.shape[0], u = U.shape[0], Gu = U.shape[1]
    cdef int T = XW.shape[1] if has_xw else X.shape[1]
    cdef int k = 0 if has_xw else X.shape[2]
    cdef int rb = _block_rows(n, n_threads)
    cdef int n_blocks = (n + rb - 1) // rb
    cdef int blk, i, i0, rows, s, t = 0
    cdef size_t psize = packed_size(u, Gu, sizeof(floating))
    cdef size_t wsize = 0 if has_xw else packed_size(k, Gu, sizeof(floating))
    cdef floating* packed
    cdef floating* packed_w
    cdef floating* scratch
    cdef floating* r
    cdef floating* xw_rows
    cdef const floating* xw_i
    cdef const floating* bias_ptr = NULL
    cdef const floating* bh_ptr = NULL
    cdef floating* c_prev
    cdef floating* c_now
    cdef floating* g_ptr
    cdef floating* e_ptr
    cdef bint has_mask = mask is not None
    cdef bint has_c = C is not None, has_gates = gates is not None
    cdef bint has_extra = extra is not None
    # Index s of the time axis of each array is s % its length (see above).
    cdef int hT = H.shape[1]
    cdef int cT = C.shape[1] if has_c else 1
    cdef int gT = gates.shape[1] if has_gates else 1
    cdef int eT = extra.shape[1] if has_extra else 1
    cdef bint xw_in_gates
    if n == 0:
        return
    # LSTM training passes the gates array as XW: the projections are
    # already where h @ U is added.
    xw_in_gates = has_xw and has_gates and gT == T and &gates[0, 0, 0] == &XW[0, 0, 0]
    if bh is not None:
        bh_ptr = &bh[0]
    if not has_xw and b is not None:
        bias_ptr = &b[0]
    # Per thread: h @ U (GRU) and the step's projections, rb x G*u each.
    packed = _alloc(psize + wsize + <size_t> 2 * n_threads * rb * Gu, <floating*> NULL)
    packed_w = packed + psize
    scratch = packed_w + wsize
    try:
        with nogil:
            pack_b(u, Gu, &U[0, 0], Gu, 1, <floating> 1.0, packed)
            if not has_xw:
                pack_b(k, Gu, &W[0, 0], Gu, 1, <floating> 1.0, packed_w)
            for i in range(n):
                memset(&H[i, 0, 0], 0, u * sizeof(floating))
                if has_c:
                    memset(&C[i, 0, 0], 0, u * sizeof(floating))
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for blk in prange(n_blocks, schedule='static'):
                note_thread(RECURRENT_FORWARD, t)
                i0 = blk * rb
                rows = min(rb, n - i0)
                r = scratch + <Py_ssize_t> 2 * t * rb * Gu
                xw_rows = r + <Py_ssize_t> rb * Gu
                for s in range(T):
                    # SimpleRNN and LSTM add h @ U straight onto the input
                    # projections, in H or the gates; GRU keeps h @ U apart
                    # (its candidate multiplies part of it by the reset gate).
                    if cell == SIMPLE:
                        if has_xw:
                            for i in range(i0, i0 + rows):
                                memcpy(&H[i, (s + 1) % hT, 0], &XW[i, s, 0],
                                       u * sizeof(floating))
                        else:
                            _project(rows, Gu, k, &X[i0, s, 0], T * k, packed_w, bias_ptr,
                                     &H[i0, (s + 1) % hT, 0], hT * u)
                        rowgemm(rows, u, u, &H[i0, s % hT, 0], hT * u, packed,
                                &H[i0, (s + 1) % hT, 0], hT * u, True)
                    elif cell == LSTM:
                        if not has_xw:
                            _project(rows, Gu, k, &X[i0, s, 0], T * k, packed_w, bias_ptr,
                                     &gates[i0, s % gT, 0], gT * Gu)
                        elif not xw_in_gates:
                            for i in range(i0, i0 + rows):
                                memcpy(&gates[i, s % gT, 0], &XW[i, s, 0],
                                       Gu * sizeof(floating))
                        rowgemm(rows, Gu, u, &H[i0, s % hT, 0], hT * u, packed,
                                &gates[i0, s % gT, 0], gT * Gu, True)
                    else:
                        if not has_xw:
                            _project(rows, Gu, k, &X[i0, s, 0], T * k, packed_w, bias_ptr,
                                     xw_rows, Gu)
                        rowgemm(rows, Gu, u, &H[i0, s % hT, 0], hT * u, packed, r, Gu,
                                False)
                    for i in range(i0, i0 + rows):
                        c_prev = NULL
                        c_now = NULL
                        g_ptr = NULL
                        e_ptr = NULL
                        if has_c:
                            c_prev = &C[i, s % cT, 0]
                            c_now = &C[i, (s + 1) % cT, 0]
                        if has_gates:
                            g_ptr = &gates[i, s % gT, 0]
                        if has_extra:
                            e_ptr = &extra[i, s % eT, 0]
                        if has_mask and mask[i, s] == 0:
                            memcpy(&H[i, (s + 1) % hT, 0], &H[i, s % hT, 0],
                                   u * sizeof(floating))
                            if c_now != NULL:
                                memcpy(c_now, c_prev, u * sizeof(floating))
                            if g_ptr != NULL:
                                memset(g_ptr, 0, Gu * sizeof(floating))
                            if e_ptr != NULL:
                                memset(e_ptr, 0, u * sizeof(floating))
                            continue
                        if has_xw:
                            xw_i = &XW[i, s, 0]
                        else:
                            xw_i = xw_rows + <Py_ssize_t> (i - i0) * Gu
                        _cell_forward(cell, act, alpha, ract, u, xw_i,
                                      r + <Py_ssize_t> (i - i0) * Gu, bh_ptr,
                                      &H[i, s % hT, 0], c_prev, g_ptr, e_ptr,
                                      &H[i, (s + 1) % hT, 0], c_now)
    finally:
        free(packed)


cdef void _cell_backward(int cell, int act, double alpha, int ract, int u,
                         const floating* dh, floating* dc, const floating* h,
                         const floating* h_prev, const floating* c_prev,
                         const floating* gates, const floating* extra,
                         floating* dgx, floating* dgh, floating* dh_direct,
                         floating* tmp) noexcept nogil:
    """Gate gradients of one sample at one step.

    dh: gradient reaching h_s; dc (LSTM): gradient reaching c_s, replaced by
    the one for c_{s-1}. Writes dgx (input side) and dgh (recurrent side,
    GRU only: elsewhere dgh is dgx), and, GRU only, dh_direct: the part of
    dh_{s-1} that does not go through U (z * dh). tmp: 6*u scratch.
    """
    cdef floating* dpost = tmp          # gradients after the activations, 4u
    cdef floating* dac = tmp + 4 * u    # of act(c), u
    cdef floating* dch = tmp + 5 * u    # of c through h, u
    if cell == SIMPLE:
        backward_row(act, alpha, h, dh, dgx, u)
    elif cell == LSTM:
        # gates = (i, f, g, o); extra = act(c); h = o * act(c).
        if floating is float:
            skdl_lstm_back_h_float(u, dh, gates + 3 * u, extra, dac, dpost + 3 * u)
        else:
            skdl_lstm_back_h_double(u, dh, gates + 3 * u, extra, dac, dpost + 3 * u)
        backward_row(act, alpha, extra, dac, dch, u)
        if floating is float:
            skdl_lstm_back_c_float(u, dc, dch, gates, gates + u, gates + 2 * u, c_prev,
                                   dpost, dpost + u, dpost + 2 * u)
        else:
            skdl_lstm_back_c_double(u, dc, dch, gates, gates + u, gates + 2 * u, c_prev,
                                    dpost, dpost + u, dpost + 2 * u)
        backward_row(ract, 0.0, gates, dpost, dgx, 2 * u)
        backward_row(act, alpha, gates + 2 * u, dpost + 2 * u, dgx + 2 * u, u)
        backward_row(ract, 0.0, gates + 3 * u, dpost + 3 * u, dgx + 3 * u, u)
    else:  # GRU: gates = (r, z, n); extra = h_prev @ U_n + b_hn
        if floating is float:
            skdl_gru_back_h_float(u, dh, gates + u, gates + 2 * u, h_prev, dpost,
                                  dpost + u, dh_direct)
        else:
            skdl_gru_back_h_double(u, dh, gates + u, gates + 2 * u, h_prev, dpost,
                                   dpost + u, dh_direct)
        backward_row(act, alpha, gates + 2 * u, dpost, dgx + 2 * u, u)        # d a_n
        if floating is float:
            skdl_gru_back_n_float(u, dgx + 2 * u, gates, extra, dgh + 2 * u, dpost + 2 * u)
        else:
            skdl_gru_back_n_double(u, dgx + 2 * u, gates, extra, dgh + 2 * u,
                                   dpost + 2 * u)
        backward_row(ract, 0.0, gates + u, dpost + u, dgx + u, u)             # d a_z
        backward_row(ract, 0.0, gates, dpost + 2 * u, dgx, u)                 # d a_r
        memcpy(dgh, dgx, 2 * u * sizeof(floating))


def recurrent_backward(int cell, int act, double alpha, int ract,
                       const floating[:, :, ::1] dY, const floating[:, ::1] U,
                       const unsigned char[:, ::1] mask,
                       const floating[:, :, ::1] H, const floating[:, :, ::1] C,
                       const floating[:, :, ::1] gates, const floating[:, :, ::1] extra,
                       floating[:, :, ::1] dGx, floating[:, :, ::1] dGh, int n_threads):
    """Backpropagation through time.

    Parameters
    ----------
    dY : (n, T, u) gradient of the loss for each step's output h_s, or
        (n, 1, u) for the last step's only
    U, mask, H, C, gates, extra : as in :func:`recurrent_forward`
    dGx : (n, T, G*u) output: gradients of the gates' pre-activations, input
        side (for W, the input bias and the input)
    dGh : (n, T, G*u) output, GRU only (recurrent side, for U and the
        recurrent bias); None for the other cells, whose two sides are equal
    n_threads : int
    """
    cdef int n = dY.shape[0], T = dGx.shape[1], dT = dY.shape[1], u = dY.shape[2]
    cdef int Gu = dGx.shape[2], masked_rows
    cdef bint step_dy
    cdef floating* cur
    cdef int rb = _block_rows(n, n_threads)
    cdef int n_blocks = (n + rb - 1) // rb
    cdef int b, i, i0, rows, s, t = 0, j, k
    cdef size_t psize = packed_size(Gu, u, sizeof(floating))
    # Per thread: dh, dh_next, dc, dh_direct (rb * u each) and tmp (6 * u).
    cdef size_t per_thread = <size_t> 4 * rb * u + 6 * u
    cdef floating* packed
    cdef floating* base
    cdef floating* dh
    cdef floating* dh_next
    cdef floating* dc
    cdef floating* direct
    cdef floating* tmp
    cdef floating* gh_ptr
    cdef const floating* c_prev
    cdef const floating* g_ptr
    cdef const floating* e_ptr
    cdef bint has_mask = mask is not None
    cdef bint is_gru = cell == GRU
    cdef bint has_c = C is not None, has_gates = gates is not None
    cdef bint has_extra = extra is not None
    if n == 0:
        return
    packed = _alloc(psize + n_threads * per_thread, <floating*> NULL)
    try:
        with nogil:
            # dh_{s-1} = dG_h @ U.T: pack U.T, (G*u, u), from U (u, G*u).
            pack_b(Gu, u, &U[0, 0], 1, Gu, <floating> 1.0, packed)
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for b in prange(n_blocks, schedule='static'):
                note_thread(RECURRENT_BACKWARD, t)
                i0 = b * rb
                rows = min(rb, n - i0)
                base = packed + psize + t * per_thread
                dh = base
                dh_next = dh + rb * u
                dc = dh_next + rb * u
                direct = dc + rb * u
                tmp = direct + rb * u
                memset(dh_next, 0, rows * u * sizeof(floating))
                memset(dc, 0, rows * u * sizeof(floating))
                for s in range(T - 1, -1, -1):
                    # dh = the output's gradient at this step + what came back
                    # from step s+1; without an output gradient, dh_next itself.
                    step_dy = dT == T or s == T - 1
                    cur = dh if step_dy else dh_next
                    masked_rows = 0
                    for i in range(i0, i0 + rows):
                        k = (i - i0) * u
                        if step_dy:
                            for j in range(u):
                                dh[k + j] = dY[i, s if dT == T else 0, j] + dh_next[k + j]
                        gh_ptr = &dGh[i, s, 0] if is_gru else &dGx[i, s, 0]
                        if has_mask and mask[i, s] == 0:
                            memset(&dGx[i, s, 0], 0, Gu * sizeof(floating))
                            if is_gru:
                                memset(gh_ptr, 0, Gu * sizeof(floating))
                            # The state was carried: its gradient passes through.
                            memcpy(direct + k, cur + k, u * sizeof(floating))
                            masked_rows = masked_rows + 1
                            continue
                        c_prev = &C[i, s, 0] if has_c else NULL
                        g_ptr = &gates[i, s, 0] if has_gates else NULL
                        e_ptr = &extra[i, s, 0] if has_extra else NULL
                        _cell_backward(cell, act, alpha, ract, u, cur + k, dc + k,
                                       &H[i, s + 1, 0], &H[i, s, 0], c_prev, g_ptr,
                                       e_ptr, &dGx[i, s, 0], gh_ptr, direct + k, tmp)
                    # dh_{s-1} = dG_h @ U.T + the direct part (GRU's z * dh and
                    # the pass-through of masked rows).
                    if is_gru:
                        rowgemm(rows, u, Gu, &dGh[i0, s, 0], T * Gu, packed, dh_next, u,
                                False)
                        for k in range(rows * u):
                            dh_next[k] = dh_next[k] + direct[k]
                    else:
                        rowgemm(rows, u, Gu, &dGx[i0, s, 0], T * Gu, packed, dh_next, u,
                                False)
                        if masked_rows:
                            for i in range(i0, i0 + rows):
                                if mask[i, s] == 0:
                                    k = (i - i0) * u
                                    for j in range(u):
                                        dh_next[k + j] = dh_next[k + j] + direct[k + j]
    finally:
        free(packed)


include "_gemm_level.pxi"
