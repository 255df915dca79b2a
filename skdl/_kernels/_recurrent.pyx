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
SimpleRNN (a), GRU (r, z, n), LSTM (i, f, g, o). Each cell is a layout
(gate count, where h @ U goes, which arrays it keeps) and two per-sample step
functions, chosen once per call: the time loops are the same for every cell.

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

# The cells the time loops know, by the code the ops pass. Each is its
# layout (LAYOUTS) and its two step functions (picked once at the top of
# recurrent_forward and recurrent_backward); the loops do not test the cell.
cdef enum:
    SIMPLE = 0
    GRU = 1
    LSTM = 2
    N_CELLS = 3

CELL_CODES = {"simple": SIMPLE, "gru": GRU, "lstm": LSTM}

# Where a step's h_{s-1} @ U goes.
cdef enum:
    ONTO_STATE = 0  # onto the input projection, in the next state H (SimpleRNN)
    ONTO_GATES = 1  # onto the input projection, in the gates (LSTM)
    APART = 2       # alone, into a scratch block (GRU: its candidate multiplies
                    # part of it by the reset gate); the step reads XW in place


cdef struct CellLayout:
    int gates           # G: gate blocks of u values each
    int hu_into         # ONTO_STATE, ONTO_GATES or APART
    bint cell_state     # keeps C (LSTM)
    bint gate_arrays    # keeps gates and extra (GRU, LSTM)
    bint recurrent_side  # its recurrent side's gradient differs from the input
                         # side's (dGh) and part of dh_{s-1} bypasses U for
                         # every sample (GRU)


cdef CellLayout[N_CELLS] LAYOUTS
LAYOUTS[SIMPLE] = CellLayout(gates=1, hu_into=ONTO_STATE, cell_state=False,
                             gate_arrays=False, recurrent_side=False)
LAYOUTS[GRU] = CellLayout(gates=3, hu_into=APART, cell_state=False, gate_arrays=True,
                          recurrent_side=True)
LAYOUTS[LSTM] = CellLayout(gates=4, hu_into=ONTO_GATES, cell_state=True, gate_arrays=True,
                           recurrent_side=False)


def cell_layout(int cell):
    """The time loops' description of a cell (for the registry's tests).

    Returns
    -------
    dict: gates (int), hu_into ('state', 'gates' or 'apart'), cell_state,
    gate_arrays, recurrent_side (bool)
    """
    cdef CellLayout layout = _layout(cell, True, True, True)
    return {"gates": layout.gates,
            "hu_into": ("state", "gates", "apart")[layout.hu_into],
            "cell_state": bool(layout.cell_state),
            "gate_arrays": bool(layout.gate_arrays),
            "recurrent_side": bool(layout.recurrent_side)}


cdef CellLayout _layout(int cell, bint has_c, bint has_gates, bint has_extra) except *:
    """The cell's layout, after checking the state arrays it keeps were given."""
    if not 0 <= cell < N_CELLS:
        raise ValueError(f"unknown cell code {cell}; the kernel knows {CELL_CODES}")
    cdef CellLayout layout = LAYOUTS[cell]
    return layout


cdef void* _alloc_bytes(size_t size) except NULL:
    cdef void* buf = malloc(max(<size_t> 1, size))
    if buf == NULL:
        raise MemoryError("cannot allocate the recurrent kernel's scratch buffers")
    return buf


cdef inline int _block_rows(int n, int n_threads) noexcept nogil:
    """Rows per block: one equal block per thread (rows are computed the same
    way however they are grouped)."""
    return max(1, (n + n_threads - 1) // n_threads)


# _cells.h: each helper once for float and double (SKDL_BY_TYPE picks the
# version from a pointer's type; the C compiler checks the real prototypes).
cdef extern from "_cells.h" nogil:
    void skdl_add3(int m, const void* a, const void* b, const void* c, void* out)
    void skdl_lstm_state(int u, const void* gi, const void* gf, const void* gg,
                         const void* c_prev, void* c)
    void skdl_mul(int m, const void* a, const void* b, void* out)
    void skdl_lstm_back_h(int u, const void* dh, const void* go, const void* ac,
                          void* dac, void* do_)
    void skdl_lstm_back_c(int u, void* dc, const void* dc_h, const void* gi,
                          const void* gf, const void* gg, const void* c_prev,
                          void* di, void* df, void* dg)
    void skdl_gru_candidate(int u, const void* xw_n, const void* r_n, const void* bh_n,
                            const void* gr, void* gn, void* hu_n)
    void skdl_gru_state(int u, const void* gz, const void* gn, const void* h_prev,
                        void* h)
    void skdl_gru_back_h(int u, const void* dh, const void* gz, const void* gn,
                         const void* h_prev, void* dn, void* dz, void* dh_direct)
    void skdl_gru_back_n(int u, const void* da_n, const void* gr, const void* hu_n,
                         void* dgh_n, void* dr)


# Forward steps: one sample, one step, all with one signature.
#   xw: the input projection (read by APART cells; the others find it, with
#       h_prev @ U added, in h or gates)
#   r: h_prev @ U (APART cells), before the recurrent bias bh (or NULL)
#   gates (G*u), extra (u), c, c_prev: NULL when the cell keeps none
#   h: the new state (ONTO_STATE cells: holds xw + h_prev @ U on entry)
cdef void _simple_forward(int act, double alpha, int ract, int u, const floating* xw,
                          const floating* r, const floating* bh, const floating* h_prev,
                          const floating* c_prev, floating* gates, floating* extra,
                          floating* h, floating* c) noexcept nogil:
    forward_row(act, alpha, h, h, u)


cdef void _lstm_forward(int act, double alpha, int ract, int u, const floating* xw,
                        const floating* r, const floating* bh, const floating* h_prev,
                        const floating* c_prev, floating* gates, floating* extra,
                        floating* h, floating* c) noexcept nogil:
    # gates hold xw + h_prev @ U on entry; (i, f, g, o) after their activations
    # on exit; extra = act(c).
    forward_row(ract, 0.0, gates, gates, 2 * u)                # i, f
    forward_row(act, alpha, gates + 2 * u, gates + 2 * u, u)   # g
    forward_row(ract, 0.0, gates + 3 * u, gates + 3 * u, u)    # o
    skdl_lstm_state(u, gates, gates + u, gates + 2 * u, c_prev, c)
    forward_row(act, alpha, c, extra, u)                       # extra = act(c)
    skdl_mul(u, gates + 3 * u, extra, h)


cdef void _gru_forward(int act, double alpha, int ract, int u, const floating* xw,
                       const floating* r, const floating* bh, const floating* h_prev,
                       const floating* c_prev, floating* gates, floating* extra,
                       floating* h, floating* c) noexcept nogil:
    # Reset-after: n = act(xw_n + r * (h U_n + b_hn)); extra = h U_n + b_hn.
    skdl_add3(2 * u, xw, r, bh, gates)
    forward_row(ract, 0.0, gates, gates, 2 * u)                # r, z
    skdl_gru_candidate(u, xw + 2 * u, r + 2 * u, bh + 2 * u if bh != NULL else NULL,
                       gates, gates + 2 * u, extra)
    forward_row(act, alpha, gates + 2 * u, gates + 2 * u, u)
    skdl_gru_state(u, gates + u, gates + 2 * u, h_prev, h)


# Backward steps: the gate gradients of one sample at one step.
#   dh: gradient reaching h_s; dc (cell state): gradient reaching c_s,
#       replaced by the one for c_{s-1}
#   dgx: input side; dgh: recurrent side (the same pointer as dgx unless the
#       layout has a recurrent side); dh_direct (recurrent side only): the part
#       of dh_{s-1} that does not go through U; tmp: 6*u scratch
cdef void _simple_backward(int act, double alpha, int ract, int u, const floating* dh,
                           floating* dc, const floating* h, const floating* h_prev,
                           const floating* c_prev, const floating* gates,
                           const floating* extra, floating* dgx, floating* dgh,
                           floating* dh_direct, floating* tmp) noexcept nogil:
    backward_row(act, alpha, h, dh, dgx, u)


cdef void _lstm_backward(int act, double alpha, int ract, int u, const floating* dh,
                         floating* dc, const floating* h, const floating* h_prev,
                         const floating* c_prev, const floating* gates,
                         const floating* extra, floating* dgx, floating* dgh,
                         floating* dh_direct, floating* tmp) noexcept nogil:
    # gates = (i, f, g, o); extra = act(c); h = o * act(c).
    cdef floating* dpost = tmp          # gradients after the activations, 4u
    cdef floating* dac = tmp + 4 * u    # of act(c), u
    cdef floating* dch = tmp + 5 * u    # of c through h, u
    skdl_lstm_back_h(u, dh, gates + 3 * u, extra, dac, dpost + 3 * u)
    backward_row(act, alpha, extra, dac, dch, u)
    skdl_lstm_back_c(u, dc, dch, gates, gates + u, gates + 2 * u, c_prev,
                     dpost, dpost + u, dpost + 2 * u)
    backward_row(ract, 0.0, gates, dpost, dgx, 2 * u)
    backward_row(act, alpha, gates + 2 * u, dpost + 2 * u, dgx + 2 * u, u)
    backward_row(ract, 0.0, gates + 3 * u, dpost + 3 * u, dgx + 3 * u, u)


cdef void _gru_backward(int act, double alpha, int ract, int u, const floating* dh,
                        floating* dc, const floating* h, const floating* h_prev,
                        const floating* c_prev, const floating* gates,
                        const floating* extra, floating* dgx, floating* dgh,
                        floating* dh_direct, floating* tmp) noexcept nogil:
    # gates = (r, z, n); extra = h_prev @ U_n + b_hn.
    cdef floating* dpost = tmp          # gradients after the activations, 3u
    skdl_gru_back_h(u, dh, gates + u, gates + 2 * u, h_prev, dpost, dpost + u, dh_direct)
    backward_row(act, alpha, gates + 2 * u, dpost, dgx + 2 * u, u)        # d a_n
    skdl_gru_back_n(u, dgx + 2 * u, gates, extra, dgh + 2 * u, dpost + 2 * u)
    backward_row(ract, 0.0, gates + u, dpost + u, dgx + u, u)             # d a_z
    backward_row(ract, 0.0, gates, dpost + 2 * u, dgx, u)                 # d a_r
    memcpy(dgh, dgx, 2 * u * sizeof(floating))


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
                      int n_threads, const floating[:, ::1] H0=None,
                      const floating[:, ::1] C0=None):
    """Run the cell over every step.

    Parameters
    ----------
    cell : int, a code of CELL_CODES
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
    C : (n, T+1, u) or (n, 2, u) cell states (layout's cell_state), or None
    gates : (n, T, G*u) gate values after their activations (layout's
        gate_arrays), or (n, 1, G*u) rewritten at every step (inference), or None
    extra : (n, T, u) or (n, 1, u): act(c) (LSTM), h @ U_n + b_hn (GRU), or None
    n_threads : int
    H0 : (n, u) initial state written to H[:, 0], or None for zeros
    C0 : (n, u) initial cell state written to C[:, 0] (cell_state layouts),
        or None for zeros
    """
    cdef CellLayout layout = _layout(cell, C is not None, gates is not None,
                                     extra is not None)
    cdef bint has_h0 = H0 is not None, has_c0 = C0 is not None
    cdef void (*step)(int, double, int, int, const floating*, const floating*,
                      const floating*, const floating*, const floating*, floating*,
                      floating*, floating*, floating*) noexcept nogil
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
    # Each step's products go to `dst` (rows ld apart): h @ U onto the input
    # projection (copied or projected there first), or, apart, alone into the
    # thread's r. dst = (start of the block's rows) + ((s + shift) % dlen) * dstep.
    cdef bint apart = layout.hu_into == APART
    cdef bint copy_xw
    cdef floating* dst_base = NULL
    cdef floating* dst0
    cdef floating* dst
    cdef Py_ssize_t ld = Gu, dstep = 0
    cdef int shift = 0, dlen = 1
    if n == 0:
        return
    if cell == SIMPLE:
        step = _simple_forward
    elif cell == GRU:
        step = _gru_forward
    else:
        step = _lstm_forward
    if layout.hu_into == ONTO_STATE:
        dst_base, ld, shift, dlen, dstep = &H[0, 0, 0], hT * u, 1, hT, u
    elif layout.hu_into == ONTO_GATES:
        dst_base, ld, shift, dlen, dstep = &gates[0, 0, 0], gT * Gu, 0, gT, Gu
    # LSTM training passes the gates array as XW: the projections are
    # already where h @ U is added.
    copy_xw = has_xw and not apart and not (
        has_gates and gT == T and &gates[0, 0, 0] == &XW[0, 0, 0])
    if bh is not None:
        bh_ptr = &bh[0]
    if not has_xw and b is not None:
        bias_ptr = &b[0]
    # Per thread: h @ U (apart) and the step's projections, rb x G*u each.
    packed = <floating*> _alloc_bytes(
        (psize + wsize + <size_t> 2 * n_threads * rb * Gu) * sizeof(floating))
    packed_w = packed + psize
    scratch = packed_w + wsize
    try:
        with nogil:
            pack_b(u, Gu, &U[0, 0], Gu, 1, <floating> 1.0, packed)
            if not has_xw:
                pack_b(k, Gu, &W[0, 0], Gu, 1, <floating> 1.0, packed_w)
            for i in range(n):
                if has_h0:
                    memcpy(&H[i, 0, 0], &H0[i, 0], u * sizeof(floating))
                else:
                    memset(&H[i, 0, 0], 0, u * sizeof(floating))
                if has_c and has_c0:
                    memcpy(&C[i, 0, 0], &C0[i, 0], u * sizeof(floating))
                elif has_c:
                    memset(&C[i, 0, 0], 0, u * sizeof(floating))
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for blk in prange(n_blocks, schedule='static'):
                note_thread(RECURRENT_FORWARD, t)
                i0 = blk * rb
                rows = min(rb, n - i0)
                r = scratch + <Py_ssize_t> 2 * t * rb * Gu
                xw_rows = r + <Py_ssize_t> rb * Gu
                dst0 = r if apart else dst_base + i0 * ld
                for s in range(T):
                    dst = dst0 + ((s + shift) % dlen) * dstep
                    if not has_xw:
                        _project(rows, Gu, k, &X[i0, s, 0], T * k, packed_w, bias_ptr,
                                 xw_rows if apart else dst, Gu if apart else ld)
                    elif copy_xw:
                        for i in range(rows):
                            memcpy(dst + i * ld, &XW[i0 + i, s, 0], Gu * sizeof(floating))
                    rowgemm(rows, Gu, u, &H[i0, s % hT, 0], hT * u, packed, dst, ld,
                            not apart)
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
                        step(act, alpha, ract, u, xw_i, r + <Py_ssize_t> (i - i0) * Gu,
                             bh_ptr, &H[i, s % hT, 0], c_prev, g_ptr, e_ptr,
                             &H[i, (s + 1) % hT, 0], c_now)
    finally:
        free(packed)


def recurrent_backward(int cell, int act, double alpha, int ract,
                       const floating[:, :, ::1] dY, const floating[:, ::1] U,
                       const unsigned char[:, ::1] mask,
                       const floating[:, :, ::1] H, const floating[:, :, ::1] C,
                       const floating[:, :, ::1] gates, const floating[:, :, ::1] extra,
                       floating[:, :, ::1] dGx, floating[:, :, ::1] dGh, int n_threads,
                       const floating[:, ::1] dCT=None, floating[:, ::1] dH0=None,
                       floating[:, ::1] dC0=None):
    """Backpropagation through time.

    Parameters
    ----------
    cell : int, a code of CELL_CODES
    dY : (n, T, u) gradient of the loss for each step's output h_s, or
        (n, 1, u) for the last step's only
    U, mask, H, C, gates, extra : as in :func:`recurrent_forward`
    dGx : (n, T, G*u) output: gradients of the gates' pre-activations, input
        side (for W, the input bias and the input)
    dGh : (n, T, G*u) output, cells whose layout has a recurrent side (GRU:
        for U and the recurrent bias); None for the others, whose two sides
        are equal
    n_threads : int
    dCT : (n, u) gradient of the loss for the last cell state C[:, T]
        (cell_state layouts: an LSTM whose final cell state is an output),
        or None for none
    dH0, dC0 : (n, u) outputs, or None: gradients for the initial state
        H[:, 0] and cell state C[:, 0] (what the loop carries past step 0)
    """
    cdef CellLayout layout = _layout(cell, C is not None, gates is not None,
                                     extra is not None)
    cdef void (*step)(int, double, int, int, const floating*, floating*, const floating*,
                      const floating*, const floating*, const floating*,
                      const floating*, floating*, floating*, floating*,
                      floating*) noexcept nogil
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
    # The recurrent side's gradients (for U and dh_{s-1}): their own array,
    # or the input side's.
    cdef bint own_side = layout.recurrent_side
    cdef floating[:, :, ::1] dGr = dGh if own_side else dGx
    cdef bint has_c = C is not None, has_gates = gates is not None
    cdef bint has_extra = extra is not None
    cdef bint has_dct = dCT is not None, has_dh0 = dH0 is not None
    cdef bint has_dc0 = dC0 is not None
    if (has_dct or has_dc0) and not layout.cell_state:
        raise ValueError("dCT and dC0 are for cells with a cell state")
    if own_side != (dGh is not None):
        raise ValueError("dGh must be given exactly for cells with a recurrent side")
    if n == 0:
        return
    if cell == SIMPLE:
        step = _simple_backward
    elif cell == GRU:
        step = _gru_backward
    else:
        step = _lstm_backward
    packed = <floating*> _alloc_bytes((psize + n_threads * per_thread) * sizeof(floating))
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
                if has_dct:
                    for i in range(rows):
                        memcpy(dc + i * u, &dCT[i0 + i, 0], u * sizeof(floating))
                else:
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
                        gh_ptr = &dGr[i, s, 0]
                        if has_mask and mask[i, s] == 0:
                            memset(&dGx[i, s, 0], 0, Gu * sizeof(floating))
                            if own_side:
                                memset(gh_ptr, 0, Gu * sizeof(floating))
                            # The state was carried: its gradient passes through.
                            memcpy(direct + k, cur + k, u * sizeof(floating))
                            masked_rows = masked_rows + 1
                            continue
                        c_prev = &C[i, s, 0] if has_c else NULL
                        g_ptr = &gates[i, s, 0] if has_gates else NULL
                        e_ptr = &extra[i, s, 0] if has_extra else NULL
                        step(act, alpha, ract, u, cur + k, dc + k, &H[i, s + 1, 0],
                             &H[i, s, 0], c_prev, g_ptr, e_ptr, &dGx[i, s, 0], gh_ptr,
                             direct + k, tmp)
                    # dh_{s-1} = dG_h @ U.T + the direct part: the pass-through
                    # of masked rows, and with a recurrent side every row's
                    # (GRU's z * dh).
                    rowgemm(rows, u, Gu, &dGr[i0, s, 0], T * Gu, packed, dh_next, u, False)
                    if own_side:
                        for k in range(rows * u):
                            dh_next[k] = dh_next[k] + direct[k]
                    elif masked_rows:
                        for i in range(i0, i0 + rows):
                            if mask[i, s] == 0:
                                k = (i - i0) * u
                                for j in range(u):
                                    dh_next[k + j] = dh_next[k + j] + direct[k + j]
                # After step 0, dh_next and dc are the initial states' gradients.
                if has_dh0:
                    for i in range(rows):
                        memcpy(&dH0[i0 + i, 0], dh_next + i * u, u * sizeof(floating))
                if has_dc0:
                    for i in range(rows):
                        memcpy(&dC0[i0 + i, 0], dc + i * u, u * sizeof(floating))
    finally:
        free(packed)


include "_gemm_level.pxi"
