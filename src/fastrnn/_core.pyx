# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastrnn._core - the thin Cython layer over the C kernels in csrc/.

It turns typed, C-contiguous memoryviews into pointers and calls the kernel
with the GIL released. The fused type `real` guarantees that every array of
a call has one dtype, float32 or float64.

It is also the last line of defence: fastrnn._validate and
fastrnn.training check the user's arguments first and explain them in the
user's terms, but these functions can be called directly, so each one
checks every array it is handed against the sizes it passes to C (the shape
of each, None only where the contract allows it, no output overlapping
another array; the trainer also its configuration and the indices it will
look up) and raises ValueError / TypeError naming the argument. That is one
pass of integer comparisons (and, for the trainer's index arrays, one pass
over them); nothing is copied. What C reports (csrc/include/fastrnn.h)
becomes MemoryError for sizes that cannot be allocated.

It knows no cell by name: every cell fact (its C code, gates, workspace,
cell state) comes from its descriptor in fastrnn.cells, and each entry point
is one C call per dtype with a frnn_cell_desc built from it.

Functions follow the backend contract in docs/ARCHITECTURE.md.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t
from ._cfastrnn cimport *

from fastrnn import cells as _cells

ctypedef fused real:
    float
    double

#: The C core's enum values (csrc/include/fastrnn.h), read from the header at
#: compile time: what fastrnn.cells' codes and fastrnn.training's head /
#: clip / optimizer codes must equal (tests/test_c_cells.py checks them).
C_ENUMS = {
    "FRNN_CELL_RNN_TANH": FRNN_CELL_RNN_TANH, "FRNN_CELL_RNN_RELU": FRNN_CELL_RNN_RELU,
    "FRNN_CELL_RNN_SIGMOID": FRNN_CELL_RNN_SIGMOID, "FRNN_CELL_LSTM": FRNN_CELL_LSTM,
    "FRNN_CELL_GRU": FRNN_CELL_GRU, "FRNN_CELL_GRU_ORIGINAL": FRNN_CELL_GRU_ORIGINAL,
    "FRNN_CELL_LEAKY": FRNN_CELL_LEAKY,
    "FRNN_HEAD_SOFTMAX_CE": FRNN_HEAD_SOFTMAX_CE, "FRNN_HEAD_SIGMOID_BCE": FRNN_HEAD_SIGMOID_BCE,
    "FRNN_HEAD_MSE": FRNN_HEAD_MSE, "FRNN_HEAD_SIGMOID_MSE": FRNN_HEAD_SIGMOID_MSE,
    "FRNN_CLIP_NONE": FRNN_CLIP_NONE, "FRNN_CLIP_VALUE": FRNN_CLIP_VALUE,
    "FRNN_CLIP_NORM": FRNN_CLIP_NORM,
    "FRNN_OPT_NONE": FRNN_OPT_NONE, "FRNN_OPT_SGD": FRNN_OPT_SGD,
    "FRNN_OPT_ADAGRAD": FRNN_OPT_ADAGRAD, "FRNN_OPT_RMSPROP": FRNN_OPT_RMSPROP,
    "FRNN_OPT_ADAM": FRNN_OPT_ADAM,
}


def _enum_values(prefix):
    return tuple(sorted(v for k, v in C_ENUMS.items() if k.startswith(prefix)))


_CELL_CODES = _enum_values("FRNN_CELL_")
_HEAD_CODES = _enum_values("FRNN_HEAD_")
_CLIP_CODES = _enum_values("FRNN_CLIP_")
_OPT_CODES = _enum_values("FRNN_OPT_")


def cell_shape(code):
    """``(gates, workspace, has_cell_state)`` of the C core's cell ``code``
    (frnn_cell_shape), for checking fastrnn.cells' descriptors against C;
    ValueError for a code the C core does not know."""
    import operator
    code = operator.index(code)
    cdef frnn_cell_desc desc
    cdef frnn_int gates = 0, workspace = 0
    cdef int has_cell_state = 0
    if not -2 ** 31 <= code < 2 ** 31:
        raise ValueError(f"the C core has no cell with code {code}")
    desc.type = <frnn_cell_type><int>code
    desc.hidden_size = 1
    if frnn_cell_shape(&desc, &gates, &workspace, &has_cell_state) != FRNN_OK:
        raise ValueError(f"the C core has no cell with code {code}")
    return gates, workspace, bool(has_cell_state)


def select_isa(request=None):
    """Choose the kernel table ("auto", "baseline", "avx2", "avx512"); returns
    the ISA in use (an ISA the CPU or build lacks falls back to baseline)."""
    cdef bytes req = (request or "auto").encode("ascii")
    return frnn_select_isa(req).decode("ascii")


def active_isa():
    """The ISA whose kernel table is in use."""
    return frnn_active_isa().decode("ascii")


def set_num_threads(int n):
    """Threads the kernels may use (fastrnn.set_num_threads validates n)."""
    frnn_set_num_threads(n)


def get_num_threads():
    """Threads the kernels may use."""
    return frnn_get_num_threads()


def release_scratch():
    """Free the scratch memory the kernels keep for the calling thread."""
    frnn_release_scratch()


def _set_thread_min_flops(double flops):
    """The work threshold of a threaded job (< 0: the default; 0: thread everything)."""
    frnn_set_thread_min_flops(flops)


def set_flush_subnormals(bint flush):
    """Whether the compute calls below run with flush-to-zero and
    denormals-are-zero (frnn_set_flush_subnormals; fastrnn.subnormals
    validates and documents it)."""
    frnn_set_flush_subnormals(flush)


def get_flush_subnormals():
    """Whether the compute calls flush subnormals (the policy; see
    can_flush_subnormals for whether this build and CPU can)."""
    return bool(frnn_get_flush_subnormals())


def can_flush_subnormals():
    """Whether this build can set the flush (x86 MXCSR, aarch64 FPCR)."""
    return bool(frnn_fpenv_can_flush())


def _fp_control_word():
    """Tests: the calling thread's x86 MXCSR / aarch64 FPCR (0 elsewhere)."""
    return frnn_fpenv_read()


def _set_fp_control_word(value):
    """Tests: write the calling thread's control word; only the flush bits
    and status flags may differ from the current word (ValueError else)."""
    if frnn_fpenv_write(<uint64_t>value) != 0:
        raise ValueError(f"value must differ from the current control word "
                         f"{frnn_fpenv_read():#x} only in the flush and status bits, "
                         f"got {value:#x}")


cdef int _raise(int rc, str func, str sizes) except -1:
    """The exception for a C result other than FRNN_OK (callers test rc first,
    so that the message is only formatted on failure); sizes describes the
    call ("T=.., B=..")."""
    if rc == FRNN_ERR_TOO_LARGE:
        raise MemoryError(f"fastrnn: the working memory of this call ({sizes}) does not fit "
                          f"in memory")
    if rc == FRNN_ERR_NOMEM:
        raise MemoryError(f"fastrnn: the C kernel could not allocate its scratch memory "
                          f"({sizes})")
    if rc == FRNN_ERR_UNSUPPORTED:
        raise ValueError(f"fastrnn._core.{func}: the C kernel rejected these sizes or this "
                         f"configuration ({sizes})")
    raise RuntimeError(f"fastrnn._core.{func}: unexpected result {rc} from the C kernel")


# ---- argument checks: integer comparisons, messages built only on failure --

cdef object _cell(str func, object cell):
    """fastrnn.cells' descriptor of ``cell`` (a name or a Cell)."""
    try:
        return _cells.get(cell)
    except ValueError:
        raise ValueError(f"fastrnn._core.{func}: cell must be one of {_cells.NAMES}, "
                         f"got {cell!r}") from None


cdef inline frnn_cell_desc _desc(object cell, Py_ssize_t H):
    cdef frnn_cell_desc desc
    desc.type = <frnn_cell_type><int>cell.code
    desc.hidden_size = H
    # the leaky cell's rate (1.0, unread, for every other cell); C refuses
    # a rate outside (0, 1] whoever built the Cell
    desc.leak_rate = _leak_rate(cell)
    return desc


cdef inline double _leak_rate(object cell) except? -1.0:
    return float(dict(cell.hyperparameters).get("leak_rate", 1.0))


cdef int _sizes(str func, Py_ssize_t T, Py_ssize_t B, Py_ssize_t In, Py_ssize_t H) except -1:
    """The sizes C is given must be >= 1 (the functional layer handles the
    empty problems T = 0 and B = 0 itself)."""
    if T < 1 or B < 1 or In < 1 or H < 1:
        raise ValueError(f"fastrnn._core.{func}: T, B, input_size and hidden_size must all "
                         f"be >= 1, got T={T}, B={B}, input_size={In}, hidden_size={H}")
    return 0


cdef int _shape3(str func, str name, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                 Py_ssize_t ea, Py_ssize_t eb, Py_ssize_t ec, str meaning) except -1:
    if a != ea or b != eb or c != ec:
        raise ValueError(f"fastrnn._core.{func}: {name} must have shape {meaning} = "
                         f"({ea}, {eb}, {ec}), got ({a}, {b}, {c})")
    return 0


cdef int _shape2(str func, str name, Py_ssize_t a, Py_ssize_t b,
                 Py_ssize_t ea, Py_ssize_t eb, str meaning) except -1:
    if a != ea or b != eb:
        raise ValueError(f"fastrnn._core.{func}: {name} must have shape {meaning} = "
                         f"({ea}, {eb}), got ({a}, {b})")
    return 0


cdef int _shape1(str func, str name, Py_ssize_t a, Py_ssize_t ea, str meaning) except -1:
    if a != ea:
        raise ValueError(f"fastrnn._core.{func}: {name} must have shape {meaning} = "
                         f"({ea},), got ({a},)")
    return 0


cdef int _parameter_shapes(str func, Py_ssize_t GH, Py_ssize_t In, Py_ssize_t H,
                           Py_ssize_t B, str state, const Py_ssize_t *w_ih,
                           const Py_ssize_t *w_hh, Py_ssize_t b_ih, Py_ssize_t b_hh,
                           const Py_ssize_t *h) except -1:
    """The shapes forward, backward and step share: the parameters and the
    (initial) hidden state, named ``state``."""
    _shape2(func, "w_ih", w_ih[0], w_ih[1], GH, In, "(G*H, input_size)")
    _shape2(func, "w_hh", w_hh[0], w_hh[1], GH, H, "(G*H, H)")
    _shape1(func, "b_ih", b_ih, GH, "(G*H,)")
    _shape1(func, "b_hh", b_hh, GH, "(G*H,)")
    _shape2(func, state, h[0], h[1], B, H, "(B, H)")
    return 0


cdef int _required(str func, str name, bint missing, str cell) except -1:
    if missing:
        raise ValueError(f"fastrnn._core.{func}: {name} is required for cell {cell!r} "
                         f"(None given)")
    return 0


cdef int _absent(str func, str name, bint given, str cell) except -1:
    if given:
        raise ValueError(f"fastrnn._core.{func}: {name} must be None for cell {cell!r} "
                         f"(it has no cell state)")
    return 0


cdef int _cell_state(str func, str name, bint has_c, bint missing, const Py_ssize_t *shape,
                     Py_ssize_t B, Py_ssize_t H, str cell) except -1:
    """A cell-state argument (c0, cn, d_cn, dc0, c, c_out): required, of shape
    (B, H), for a cell with a cell state; None for any other. ``shape``: the
    memoryview's, read only when it is not None (``missing``)."""
    if has_c:
        _required(func, name, missing, cell)
        _shape2(func, name, shape[0], shape[1], B, H, "(B, H)")
    else:
        _absent(func, name, not missing, cell)
    return 0


cdef struct _Spans:
    # the memory of a call's arrays (at most 24): [start, start + size)
    # bytes, elements of `align` bytes; the first n_out are written by the
    # kernel
    int n, n_out
    const char *start[24]
    Py_ssize_t size[24]
    Py_ssize_t align[24]
    # output alias_out[i] may be exactly the array alias_in[i] (step's update
    # in place); -1: unused
    int alias_out[2]
    int alias_in[2]


cdef inline void _add(_Spans *s, const void *start, Py_ssize_t size, Py_ssize_t align) noexcept:
    s.start[s.n] = <const char *>start
    s.size[s.n] = size
    s.align[s.n] = align
    s.n += 1


cdef int _check_memory(str func, _Spans *s, tuple names) except -1:
    """Every array must be aligned to its element size (a C pointer to a
    misaligned float is undefined behaviour, and vectorised code may assume
    the alignment; NumPy can make such arrays, e.g. with np.frombuffer at an
    offset), and no output may share memory with any other array of the
    call: the kernels write outputs while they still read everything else,
    so an overlap would silently corrupt the result. O(outputs x arrays)."""
    cdef int i, j, a
    cdef bint allowed
    for i in range(s.n):
        if s.size[i] != 0 and <size_t>s.start[i] % <size_t>s.align[i] != 0:
            raise ValueError(f"fastrnn._core.{func}: {names[i]} is not aligned to its "
                             f"{s.align[i]}-byte elements; pass an aligned copy "
                             f"(numpy.require(a, requirements='CA'))")
    for i in range(s.n_out):
        if s.size[i] == 0:
            continue
        for j in range(s.n):
            if j == i or s.size[j] == 0:
                continue
            if s.start[i] < s.start[j] + s.size[j] and s.start[j] < s.start[i] + s.size[i]:
                allowed = False
                for a in range(2):
                    if (s.alias_out[a] == i and s.alias_in[a] == j and s.start[i] == s.start[j]
                            and s.size[i] == s.size[j]):
                        allowed = True
                if not allowed:
                    raise ValueError(f"fastrnn._core.{func}: {names[i]} must not overlap "
                                     f"{names[j]} (outputs are written in place)")
    return 0


cdef inline _Spans _spans(int n_out) noexcept:
    cdef _Spans s
    s.n = 0
    s.n_out = n_out
    s.alias_out[0] = s.alias_out[1] = -1
    s.alias_in[0] = s.alias_in[1] = -1
    return s


cdef const int64_t *_lengths(str func, const int64_t[::1] lengths, Py_ssize_t T,
                             Py_ssize_t B) except? NULL:
    """The lengths for C: NULL when there are none or all are T (the plain
    entry point: the same results, without the gathers), else checked, (B,)
    in [0, T]. An input only: no float output can overlap an int64 array
    that the caller passed for this alone."""
    if lengths is None:
        return NULL
    if lengths.shape[0] != B:
        raise ValueError(f"fastrnn._core.{func}: lengths must have shape ({B},), got "
                         f"({lengths.shape[0]},)")
    cdef Py_ssize_t b
    cdef bint all_full = True
    for b in range(B):
        if lengths[b] < 0 or lengths[b] > T:
            raise ValueError(f"fastrnn._core.{func}: lengths[{b}] = {lengths[b]} is outside "
                             f"[0, T={T}]")
        if lengths[b] != T:
            all_full = False
    return NULL if all_full else &lengths[0]


def forward(object cell,
            const real[:, :, ::1] x not None, const real[:, ::1] w_ih not None,
            const real[:, ::1] w_hh not None, const real[::1] b_ih not None,
            const real[::1] b_hh not None, const real[:, ::1] h0 not None,
            const real[:, ::1] c0,
            real[:, :, ::1] out not None, real[:, ::1] hn not None, real[:, ::1] cn,
            real[:, :, ::1] ws, const int64_t[::1] lengths=None):
    """The forward of the backend contract: out, hn (cn) and, when ws is not
    None, the workspace (T, B, W) are overwritten. cell: a name or a
    fastrnn.cells.Cell; c0 / cn: cells with a cell state only. lengths:
    None, or each row's steps (B,) in [0, T] (frnn_layer_forward_lengths)."""
    c = _cell("forward", cell)
    cdef str name = c.name
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], In = x.shape[2], H = w_hh.shape[1]
    cdef Py_ssize_t GH = c.gates * H, W = c.workspace * H
    cdef bint has_c = c.has_cell_state
    _sizes("forward", T, B, In, H)
    _parameter_shapes("forward", GH, In, H, B, "h0", w_ih.shape, w_hh.shape, b_ih.shape[0],
                      b_hh.shape[0], h0.shape)
    _shape3("forward", "out", out.shape[0], out.shape[1], out.shape[2], T, B, H, "(T, B, H)")
    _shape2("forward", "hn", hn.shape[0], hn.shape[1], B, H, "(B, H)")
    _cell_state("forward", "c0", has_c, c0 is None, c0.shape, B, H, name)
    _cell_state("forward", "cn", has_c, cn is None, cn.shape, B, H, name)
    if ws is not None:
        _shape3("forward", "ws", ws.shape[0], ws.shape[1], ws.shape[2], T, B, W, "(T, B, W)")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(4)
    _add(&s, &out[0, 0, 0], T * B * H * r, r)
    _add(&s, &hn[0, 0], B * H * r, r)
    _add(&s, &cn[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _add(&s, &ws[0, 0, 0] if ws is not None else NULL, T * B * W * r if ws is not None else 0, r)
    _add(&s, &x[0, 0, 0], T * B * In * r, r)
    _add(&s, &w_ih[0, 0], GH * In * r, r)
    _add(&s, &w_hh[0, 0], GH * H * r, r)
    _add(&s, &b_ih[0], GH * r, r)
    _add(&s, &b_hh[0], GH * r, r)
    _add(&s, &h0[0, 0], B * H * r, r)
    _add(&s, &c0[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _check_memory("forward", &s, ("out", "hn", "cn", "ws", "x", "w_ih", "w_hh", "b_ih", "b_hh",
                              "h0", "c0"))
    cdef const int64_t *lengthsp = _lengths("forward", lengths, T, B)

    cdef frnn_cell_desc desc = _desc(c, H)
    cdef const real *c0p = &c0[0, 0] if has_c else NULL
    cdef real *cnp = &cn[0, 0] if has_c else NULL
    cdef real *wsp = &ws[0, 0, 0] if ws is not None and W > 0 else NULL
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            if lengthsp != NULL:
                rc = frnn_layer_forward_lengths_f32(&desc, T, B, In, lengthsp, &x[0, 0, 0],
                                                    &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0],
                                                    &h0[0, 0], c0p, &out[0, 0, 0], &hn[0, 0], cnp,
                                                    wsp)
            else:
                rc = frnn_layer_forward_f32(&desc, T, B, In, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                            &b_ih[0], &b_hh[0], &h0[0, 0], c0p, &out[0, 0, 0],
                                            &hn[0, 0], cnp, wsp)
        else:
            if lengthsp != NULL:
                rc = frnn_layer_forward_lengths_f64(&desc, T, B, In, lengthsp, &x[0, 0, 0],
                                                    &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0],
                                                    &h0[0, 0], c0p, &out[0, 0, 0], &hn[0, 0], cnp,
                                                    wsp)
            else:
                rc = frnn_layer_forward_f64(&desc, T, B, In, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                            &b_ih[0], &b_hh[0], &h0[0, 0], c0p, &out[0, 0, 0],
                                            &hn[0, 0], cnp, wsp)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "forward", f"T={T}, B={B}, input_size={In}, H={H}")


def backward(object cell,
             const real[:, :, ::1] x not None, const real[:, ::1] w_ih not None,
             const real[:, ::1] w_hh not None, const real[::1] b_ih not None,
             const real[::1] b_hh not None, const real[:, ::1] h0 not None,
             const real[:, ::1] c0,
             const real[:, :, ::1] out not None, const real[:, :, ::1] ws,
             const real[:, :, ::1] d_out not None, const real[:, ::1] d_hn not None,
             const real[:, ::1] d_cn,
             real[:, :, ::1] dx not None, real[:, ::1] dw_ih not None,
             real[:, ::1] dw_hh not None, real[::1] db_ih not None, real[::1] db_hh not None,
             real[:, ::1] dh0 not None, real[:, ::1] dc0,
             const int64_t[::1] lengths=None):
    """BPTT of the backend contract: every gradient output is overwritten.
    ws is the workspace forward filled (T, B, W); it may be None only for the
    cells without one (W = 0). c0, d_cn, dc0: cells with a cell state only.
    lengths: those forward ran with, or None."""
    # b_ih / b_hh are part of the contract but not needed: every cell's
    # backward reads the biases' effect from the saved workspace or outputs.
    c = _cell("backward", cell)
    cdef str name = c.name
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], In = x.shape[2], H = w_hh.shape[1]
    cdef Py_ssize_t GH = c.gates * H, W = c.workspace * H
    cdef bint has_c = c.has_cell_state
    _sizes("backward", T, B, In, H)
    _parameter_shapes("backward", GH, In, H, B, "h0", w_ih.shape, w_hh.shape, b_ih.shape[0],
                      b_hh.shape[0], h0.shape)
    _shape3("backward", "out", out.shape[0], out.shape[1], out.shape[2], T, B, H, "(T, B, H)")
    if W > 0:
        _required("backward", "ws", ws is None, name)
    if ws is not None:
        _shape3("backward", "ws", ws.shape[0], ws.shape[1], ws.shape[2], T, B, W, "(T, B, W)")
    _shape3("backward", "d_out", d_out.shape[0], d_out.shape[1], d_out.shape[2], T, B, H,
            "(T, B, H)")
    _shape2("backward", "d_hn", d_hn.shape[0], d_hn.shape[1], B, H, "(B, H)")
    _shape3("backward", "dx", dx.shape[0], dx.shape[1], dx.shape[2], T, B, In,
            "(T, B, input_size)")
    _shape2("backward", "dw_ih", dw_ih.shape[0], dw_ih.shape[1], GH, In, "(G*H, input_size)")
    _shape2("backward", "dw_hh", dw_hh.shape[0], dw_hh.shape[1], GH, H, "(G*H, H)")
    _shape1("backward", "db_ih", db_ih.shape[0], GH, "(G*H,)")
    _shape1("backward", "db_hh", db_hh.shape[0], GH, "(G*H,)")
    _shape2("backward", "dh0", dh0.shape[0], dh0.shape[1], B, H, "(B, H)")
    _cell_state("backward", "c0", has_c, c0 is None, c0.shape, B, H, name)
    _cell_state("backward", "d_cn", has_c, d_cn is None, d_cn.shape, B, H, name)
    _cell_state("backward", "dc0", has_c, dc0 is None, dc0.shape, B, H, name)
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(7)
    _add(&s, &dx[0, 0, 0], T * B * In * r, r)
    _add(&s, &dw_ih[0, 0], GH * In * r, r)
    _add(&s, &dw_hh[0, 0], GH * H * r, r)
    _add(&s, &db_ih[0], GH * r, r)
    _add(&s, &db_hh[0], GH * r, r)
    _add(&s, &dh0[0, 0], B * H * r, r)
    _add(&s, &dc0[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _add(&s, &x[0, 0, 0], T * B * In * r, r)
    _add(&s, &w_ih[0, 0], GH * In * r, r)
    _add(&s, &w_hh[0, 0], GH * H * r, r)
    _add(&s, &h0[0, 0], B * H * r, r)
    _add(&s, &c0[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _add(&s, &out[0, 0, 0], T * B * H * r, r)
    _add(&s, &ws[0, 0, 0] if ws is not None else NULL, T * B * W * r if ws is not None else 0, r)
    _add(&s, &d_out[0, 0, 0], T * B * H * r, r)
    _add(&s, &d_hn[0, 0], B * H * r, r)
    _add(&s, &d_cn[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _check_memory("backward", &s, ("dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dc0", "x",
                               "w_ih", "w_hh", "h0", "c0", "out", "ws", "d_out", "d_hn", "d_cn"))
    cdef const int64_t *lengthsp = _lengths("backward", lengths, T, B)

    cdef frnn_cell_desc desc = _desc(c, H)
    cdef const real *wsp = &ws[0, 0, 0] if ws is not None and W > 0 else NULL
    cdef const real *c0p = &c0[0, 0] if has_c else NULL
    cdef const real *d_cnp = &d_cn[0, 0] if has_c else NULL
    cdef real *dc0p = &dc0[0, 0] if has_c else NULL
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            if lengthsp != NULL:
                rc = frnn_layer_backward_lengths_f32(&desc, T, B, In, lengthsp, &x[0, 0, 0],
                                                     &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], c0p,
                                                     &out[0, 0, 0], wsp, &d_out[0, 0, 0],
                                                     &d_hn[0, 0], d_cnp, &dx[0, 0, 0],
                                                     &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0],
                                                     &db_hh[0], &dh0[0, 0], dc0p)
            else:
                rc = frnn_layer_backward_f32(&desc, T, B, In, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                             &h0[0, 0], c0p, &out[0, 0, 0], wsp, &d_out[0, 0, 0],
                                             &d_hn[0, 0], d_cnp, &dx[0, 0, 0], &dw_ih[0, 0],
                                             &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0], dc0p)
        else:
            if lengthsp != NULL:
                rc = frnn_layer_backward_lengths_f64(&desc, T, B, In, lengthsp, &x[0, 0, 0],
                                                     &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], c0p,
                                                     &out[0, 0, 0], wsp, &d_out[0, 0, 0],
                                                     &d_hn[0, 0], d_cnp, &dx[0, 0, 0],
                                                     &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0],
                                                     &db_hh[0], &dh0[0, 0], dc0p)
            else:
                rc = frnn_layer_backward_f64(&desc, T, B, In, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                             &h0[0, 0], c0p, &out[0, 0, 0], wsp, &d_out[0, 0, 0],
                                             &d_hn[0, 0], d_cnp, &dx[0, 0, 0], &dw_ih[0, 0],
                                             &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0], dc0p)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "backward", f"T={T}, B={B}, input_size={In}, H={H}")


cdef object _projected_cell(str func, object cell):
    """The cell of a projected layer: the LSTM (frnn_layer_*_proj)."""
    c = _cell(func, cell)
    if c.code != FRNN_CELL_LSTM:
        raise ValueError(f"fastrnn._core.{func}: a projection (w_hr) needs the LSTM cell, "
                         f"got {c.label!r}")
    return c


def forward_proj(object cell,
                 const real[:, :, ::1] x not None, const real[:, ::1] w_ih not None,
                 const real[:, ::1] w_hh not None, const real[:, ::1] w_hr not None,
                 const real[::1] b_ih not None, const real[::1] b_hh not None,
                 const real[:, ::1] h0 not None, const real[:, ::1] c0 not None,
                 real[:, :, ::1] out not None, real[:, ::1] hn not None,
                 real[:, ::1] cn not None, real[:, :, ::1] ws):
    """forward of an LSTM with a projection (torch.nn.LSTM(proj_size=P)),
    frnn_layer_forward_proj: w_hh (4H, P), w_hr (P, H), h0 / hn (B, P), out
    (T, B, P), c0 / cn (B, H), ws (T, B, 5H) or None (inference)."""
    c = _projected_cell("forward_proj", cell)
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], In = x.shape[2]
    cdef Py_ssize_t H = w_hr.shape[1], P = w_hr.shape[0]
    cdef Py_ssize_t GH = c.gates * H, W = c.workspace * H
    _sizes("forward_proj", T, B, In, H)
    if P < 1:
        raise ValueError(f"fastrnn._core.forward_proj: w_hr must have shape (P, H) with P >= 1, "
                         f"got ({P}, {H})")
    _parameter_shapes("forward_proj", GH, In, P, B, "h0", w_ih.shape, w_hh.shape, b_ih.shape[0],
                      b_hh.shape[0], h0.shape)
    _shape3("forward_proj", "out", out.shape[0], out.shape[1], out.shape[2], T, B, P,
            "(T, B, P)")
    _shape2("forward_proj", "hn", hn.shape[0], hn.shape[1], B, P, "(B, P)")
    _shape2("forward_proj", "c0", c0.shape[0], c0.shape[1], B, H, "(B, H)")
    _shape2("forward_proj", "cn", cn.shape[0], cn.shape[1], B, H, "(B, H)")
    if ws is not None:
        _shape3("forward_proj", "ws", ws.shape[0], ws.shape[1], ws.shape[2], T, B, W,
                "(T, B, W)")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(4)
    _add(&s, &out[0, 0, 0], T * B * P * r, r)
    _add(&s, &hn[0, 0], B * P * r, r)
    _add(&s, &cn[0, 0], B * H * r, r)
    _add(&s, &ws[0, 0, 0] if ws is not None else NULL, T * B * W * r if ws is not None else 0, r)
    _add(&s, &x[0, 0, 0], T * B * In * r, r)
    _add(&s, &w_ih[0, 0], GH * In * r, r)
    _add(&s, &w_hh[0, 0], GH * P * r, r)
    _add(&s, &w_hr[0, 0], P * H * r, r)
    _add(&s, &b_ih[0], GH * r, r)
    _add(&s, &b_hh[0], GH * r, r)
    _add(&s, &h0[0, 0], B * P * r, r)
    _add(&s, &c0[0, 0], B * H * r, r)
    _check_memory("forward_proj", &s, ("out", "hn", "cn", "ws", "x", "w_ih", "w_hh", "w_hr",
                                       "b_ih", "b_hh", "h0", "c0"))
    cdef frnn_cell_desc desc = _desc(c, H)
    cdef real *wsp = &ws[0, 0, 0] if ws is not None else NULL
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_layer_forward_proj_f32(&desc, T, B, In, P, &x[0, 0, 0], &w_ih[0, 0],
                                             &w_hh[0, 0], &w_hr[0, 0], &b_ih[0], &b_hh[0],
                                             &h0[0, 0], &c0[0, 0], &out[0, 0, 0], &hn[0, 0],
                                             &cn[0, 0], wsp)
        else:
            rc = frnn_layer_forward_proj_f64(&desc, T, B, In, P, &x[0, 0, 0], &w_ih[0, 0],
                                             &w_hh[0, 0], &w_hr[0, 0], &b_ih[0], &b_hh[0],
                                             &h0[0, 0], &c0[0, 0], &out[0, 0, 0], &hn[0, 0],
                                             &cn[0, 0], wsp)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "forward_proj", f"T={T}, B={B}, input_size={In}, H={H}, P={P}")


def backward_proj(object cell,
                  const real[:, :, ::1] x not None, const real[:, ::1] w_ih not None,
                  const real[:, ::1] w_hh not None, const real[:, ::1] w_hr not None,
                  const real[:, ::1] h0 not None, const real[:, ::1] c0 not None,
                  const real[:, :, ::1] out not None, const real[:, :, ::1] ws not None,
                  const real[:, :, ::1] d_out not None, const real[:, ::1] d_hn not None,
                  const real[:, ::1] d_cn not None,
                  real[:, :, ::1] dx not None, real[:, ::1] dw_ih not None,
                  real[:, ::1] dw_hh not None, real[:, ::1] dw_hr not None,
                  real[::1] db_ih not None, real[::1] db_hh not None,
                  real[:, ::1] dh0 not None, real[:, ::1] dc0 not None):
    """BPTT of an LSTM with a projection, frnn_layer_backward_proj: shapes
    as forward_proj's; every gradient output (dw_hr (P, H) included) is
    overwritten."""
    c = _projected_cell("backward_proj", cell)
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], In = x.shape[2]
    cdef Py_ssize_t H = w_hr.shape[1], P = w_hr.shape[0]
    cdef Py_ssize_t GH = c.gates * H, W = c.workspace * H
    cdef str f = "backward_proj"
    _sizes(f, T, B, In, H)
    if P < 1:
        raise ValueError(f"fastrnn._core.backward_proj: w_hr must have shape (P, H) with "
                         f"P >= 1, got ({P}, {H})")
    _parameter_shapes(f, GH, In, P, B, "h0", w_ih.shape, w_hh.shape, GH, GH, h0.shape)
    _shape2(f, "c0", c0.shape[0], c0.shape[1], B, H, "(B, H)")
    _shape3(f, "out", out.shape[0], out.shape[1], out.shape[2], T, B, P, "(T, B, P)")
    _shape3(f, "ws", ws.shape[0], ws.shape[1], ws.shape[2], T, B, W, "(T, B, W)")
    _shape3(f, "d_out", d_out.shape[0], d_out.shape[1], d_out.shape[2], T, B, P, "(T, B, P)")
    _shape2(f, "d_hn", d_hn.shape[0], d_hn.shape[1], B, P, "(B, P)")
    _shape2(f, "d_cn", d_cn.shape[0], d_cn.shape[1], B, H, "(B, H)")
    _shape3(f, "dx", dx.shape[0], dx.shape[1], dx.shape[2], T, B, In, "(T, B, input_size)")
    _shape2(f, "dw_ih", dw_ih.shape[0], dw_ih.shape[1], GH, In, "(G*H, input_size)")
    _shape2(f, "dw_hh", dw_hh.shape[0], dw_hh.shape[1], GH, P, "(G*H, P)")
    _shape2(f, "dw_hr", dw_hr.shape[0], dw_hr.shape[1], P, H, "(P, H)")
    _shape1(f, "db_ih", db_ih.shape[0], GH, "(G*H,)")
    _shape1(f, "db_hh", db_hh.shape[0], GH, "(G*H,)")
    _shape2(f, "dh0", dh0.shape[0], dh0.shape[1], B, P, "(B, P)")
    _shape2(f, "dc0", dc0.shape[0], dc0.shape[1], B, H, "(B, H)")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(8)
    _add(&s, &dx[0, 0, 0], T * B * In * r, r)
    _add(&s, &dw_ih[0, 0], GH * In * r, r)
    _add(&s, &dw_hh[0, 0], GH * P * r, r)
    _add(&s, &dw_hr[0, 0], P * H * r, r)
    _add(&s, &db_ih[0], GH * r, r)
    _add(&s, &db_hh[0], GH * r, r)
    _add(&s, &dh0[0, 0], B * P * r, r)
    _add(&s, &dc0[0, 0], B * H * r, r)
    _add(&s, &x[0, 0, 0], T * B * In * r, r)
    _add(&s, &w_ih[0, 0], GH * In * r, r)
    _add(&s, &w_hh[0, 0], GH * P * r, r)
    _add(&s, &w_hr[0, 0], P * H * r, r)
    _add(&s, &h0[0, 0], B * P * r, r)
    _add(&s, &c0[0, 0], B * H * r, r)
    _add(&s, &out[0, 0, 0], T * B * P * r, r)
    _add(&s, &ws[0, 0, 0], T * B * W * r, r)
    _add(&s, &d_out[0, 0, 0], T * B * P * r, r)
    _add(&s, &d_hn[0, 0], B * P * r, r)
    _add(&s, &d_cn[0, 0], B * H * r, r)
    _check_memory(f, &s, ("dx", "dw_ih", "dw_hh", "dw_hr", "db_ih", "db_hh", "dh0", "dc0", "x",
                          "w_ih", "w_hh", "w_hr", "h0", "c0", "out", "ws", "d_out", "d_hn",
                          "d_cn"))
    cdef frnn_cell_desc desc = _desc(c, H)
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_layer_backward_proj_f32(&desc, T, B, In, P, &x[0, 0, 0], &w_ih[0, 0],
                                              &w_hh[0, 0], &w_hr[0, 0], &h0[0, 0], &c0[0, 0],
                                              &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0],
                                              &d_hn[0, 0], &d_cn[0, 0], &dx[0, 0, 0],
                                              &dw_ih[0, 0], &dw_hh[0, 0], &dw_hr[0, 0],
                                              &db_ih[0], &db_hh[0], &dh0[0, 0], &dc0[0, 0])
        else:
            rc = frnn_layer_backward_proj_f64(&desc, T, B, In, P, &x[0, 0, 0], &w_ih[0, 0],
                                              &w_hh[0, 0], &w_hr[0, 0], &h0[0, 0], &c0[0, 0],
                                              &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0],
                                              &d_hn[0, 0], &d_cn[0, 0], &dx[0, 0, 0],
                                              &dw_ih[0, 0], &dw_hh[0, 0], &dw_hr[0, 0],
                                              &db_ih[0], &db_hh[0], &dh0[0, 0], &dc0[0, 0])
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "backward_proj", f"T={T}, B={B}, input_size={In}, H={H}, P={P}")


def step(object cell,
         const real[:, ::1] x not None, const real[:, ::1] w_ih not None,
         const real[:, ::1] w_hh not None, const real[::1] b_ih not None,
         const real[::1] b_hh not None, const real[:, ::1] h not None, const real[:, ::1] c,
         real[:, ::1] h_out not None, real[:, ::1] c_out):
    """One time step of the backend contract. h_out may be h itself and c_out
    c itself (updated in place); c, c_out: cells with a cell state only."""
    cell_ = _cell("step", cell)
    cdef str name = cell_.name
    cdef Py_ssize_t B = x.shape[0], In = x.shape[1], H = w_hh.shape[1], GH = cell_.gates * H
    cdef bint has_c = cell_.has_cell_state
    _sizes("step", 1, B, In, H)
    _parameter_shapes("step", GH, In, H, B, "h", w_ih.shape, w_hh.shape, b_ih.shape[0],
                      b_hh.shape[0], h.shape)
    _shape2("step", "h_out", h_out.shape[0], h_out.shape[1], B, H, "(B, H)")
    _cell_state("step", "c", has_c, c is None, c.shape, B, H, name)
    _cell_state("step", "c_out", has_c, c_out is None, c_out.shape, B, H, name)
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(2)
    _add(&s, &h_out[0, 0], B * H * r, r)
    _add(&s, &c_out[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    _add(&s, &x[0, 0], B * In * r, r)
    _add(&s, &w_ih[0, 0], GH * In * r, r)
    _add(&s, &w_hh[0, 0], GH * H * r, r)
    _add(&s, &b_ih[0], GH * r, r)
    _add(&s, &b_hh[0], GH * r, r)
    _add(&s, &h[0, 0], B * H * r, r)
    _add(&s, &c[0, 0] if has_c else NULL, B * H * r if has_c else 0, r)
    s.alias_out[0], s.alias_in[0] = 0, 7  # h_out is h
    s.alias_out[1], s.alias_in[1] = 1, 8  # c_out is c
    _check_memory("step", &s, ("h_out", "c_out", "x", "w_ih", "w_hh", "b_ih", "b_hh", "h", "c"))

    cdef frnn_cell_desc desc = _desc(cell_, H)
    cdef const real *cp = &c[0, 0] if has_c else NULL
    cdef real *c_outp = &c_out[0, 0] if has_c else NULL
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_layer_step_f32(&desc, B, In, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0],
                                     &b_hh[0], &h[0, 0], cp, &h_out[0, 0], c_outp)
        else:
            rc = frnn_layer_step_f64(&desc, B, In, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0],
                                     &b_hh[0], &h[0, 0], cp, &h_out[0, 0], c_outp)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "step", f"B={B}, input_size={In}, H={H}")


cdef extern from "kernels_export.h" nogil:
    void frnn_activation_f32(int which, frnn_int n, const float *x, float *y)
    void frnn_activation_f64(int which, frnn_int n, const double *x, double *y)
    double frnn_fma_peak_f32(frnn_int rounds, float *sink)
    double frnn_fma_peak_f64(frnn_int rounds, double *sink)


def _activation(str name, const real[::1] x not None, real[::1] y not None):
    """Test hook: y = sigmoid(x), tanh(x) or exp(x) (for x <= 0: the softmax
    head's kernel) through the active ISA's kernel, in the caller's
    floating-point mode (no subnormal flush: tests see the kernel's own
    arithmetic, subnormal tails included)."""
    names = {"sigmoid": 0, "tanh": 1, "exp": 2}
    if name not in names:
        raise ValueError(f"name must be one of {tuple(names)}, got {name!r}")
    cdef int which = names[name]
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y must have the same length")
    if x.shape[0] == 0:
        return
    with nogil:
        if real is float:
            frnn_activation_f32(which, x.shape[0], &x[0], &y[0])
        else:
            frnn_activation_f64(which, x.shape[0], &x[0], &y[0])


def _fma_peak(str dtype, frnn_int rounds):
    """Benchmark hook: ``rounds`` rounds of the active ISA's FMA peak loop
    (csrc/kernels/peak.c: independent multiply-add chains on the table's
    vectors, no memory traffic) in ``dtype`` ("float32" or "float64").
    Returns (floating-point operations done, checksum); the caller times the
    call, which runs without the GIL."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    cdef double flops
    cdef float sink32 = 0
    cdef double sink64 = 0
    cdef bint single = dtype == "float32"
    with nogil:
        if single:
            flops = frnn_fma_peak_f32(rounds, &sink32)
        else:
            flops = frnn_fma_peak_f64(rounds, &sink64)
    return flops, (<double>sink32 if single else sink64)


_INT64_MAX = 2 ** 63 - 1


cdef int _config_code(object config, str key, tuple codes, str enum, str meaning) except? -1:
    """config.<key>, an int that must be one of the C enum's values."""
    value = getattr(config, key)
    if isinstance(value, bool) or not isinstance(value, int) or value not in codes:
        raise ValueError(f"fastrnn._core.train: config.{key} must be one of the C core's "
                         f"{enum} values {codes} (the {meaning}), got {value!r}")
    return value


cdef object _checked_int(object value, str label, object low):
    """value as a Python int in [low, 2**63); TypeError / ValueError naming
    it otherwise (never a silent wrap into int64)."""
    import operator
    if isinstance(value, bool):
        raise TypeError(f"fastrnn._core.train: {label} must be an integer, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"fastrnn._core.train: {label} must be an integer, got "
                        f"{type(value).__name__}") from None
    if not low <= value <= _INT64_MAX:
        raise ValueError(f"fastrnn._core.train: {label} must be in [{low}, 2**63), got {value}")
    return value


cdef object _config_int(object config, str key, object low):
    return _checked_int(getattr(config, key), f"config.{key}", low)


cdef int _length(str name, Py_ssize_t got, object want, str meaning) except -1:
    if got != want:
        raise ValueError(f"fastrnn._core.train: {name} must have {meaning} = {want} "
                         f"elements, got {got}")
    return 0


cdef int _unused(str func, str name, Py_ssize_t size, str why) except -1:
    if size != 0:
        raise ValueError(f"fastrnn._core.{func}: {name} must be empty {why}, got {size} "
                         f"elements")
    return 0


cdef int _sequence_arrays(str func, const frnn_train_config *cfg, object cell, object head,
                          Py_ssize_t windows, const Py_ssize_t *x, const Py_ssize_t *idx,
                          Py_ssize_t target_idx, Py_ssize_t target, const Py_ssize_t *h,
                          const Py_ssize_t *c, Py_ssize_t losses,
                          const Py_ssize_t *resets) except -1:
    """The shapes of a sequence trainer's data (x or idx, the targets, h, c,
    losses, resets: NULL when not given) against its configuration: one check,
    one set of messages, for train and TrainGradients alike. The arrays a
    configuration does not use must be empty."""
    T, B, In, H, O = cfg.T, cfg.B, cfg.In, cfg.H, cfg.O
    if cfg.index_input:
        _shape2(func, "idx", idx[0], idx[1], T, B, "(T, B)")
        _unused(func, "x", x[0] * x[1] * x[2], "for index input")
    else:
        _shape3(func, "x", x[0], x[1], x[2], T, B, In, "(T, B, In)")
        _unused(func, "idx", idx[0] * idx[1], "for dense input")
    rows = B if cfg.many_to_one else T * B
    if cfg.head == FRNN_HEAD_SOFTMAX_CE:
        _shape1(func, "target_idx", target_idx, rows, "(B,)" if cfg.many_to_one else "(T*B,)")
        _unused(func, "target", target, "for head 'softmax_ce'")
    else:
        _shape1(func, "target", target, rows * O, "(B*O,)" if cfg.many_to_one else "(T*B*O,)")
        _unused(func, "target_idx", target_idx, f"for head {head!r}")
    _shape2(func, "h", h[0], h[1], B, H, "(B, H)")
    if cell.has_cell_state:
        _shape2(func, "c", c[0], c[1], B, H, "(B, H)")
    else:
        _unused(func, "c", c[0] * c[1], f"for cell {cell.name!r}")
    if resets != NULL:
        _shape2(func, "resets", resets[0], resets[1], T, B, "(T, B)")
    if losses < windows:
        raise ValueError(f"fastrnn._core.{func}: losses must have room for every window: "
                         f"{windows} elements, got {losses}")
    return 0


cdef int _indices_in_range(str name, const int64_t *a, Py_ssize_t n, int64_t limit,
                           str meaning) except -1:
    cdef Py_ssize_t i, bad = -1
    with nogil:
        for i in range(n):
            if a[i] < 0 or a[i] >= limit:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"fastrnn._core.train: {name} must hold indices in [0, {meaning}) = "
                         f"[0, {limit}), got {a[bad]} at flat position {bad}")
    return 0


cdef int _check_windows(object config, object windows, object T, object k1,
                        object depth) except -1:
    if config.windows != windows:
        raise ValueError(f"fastrnn._core.train: config.windows must be the number of windows "
                         f"{windows} for T={T}, " + (f"depth={depth}" if depth >= 0 else
                                                     f"k1={k1}") + f", got {config.windows!r}")
    return 0


cdef tuple _train_config(object config, frnn_train_config *cfg):
    """Fill *cfg from a TrainerConfig (``train``'s docstring says what it
    holds), checking every field and their consistency (codes, sizes,
    parameters; not config.windows: _check_windows). Returns ``(cell, uses_m, uses_v, P, windows, T,
    B, In, H, O, k1, k2, depth)``: the cell's descriptor, whether the
    optimizer reads m / v, the layout's size, the number of windows and the
    sizes, as Python ints (the callers' products of them cannot overflow)."""
    cell = _cell("train", config.cell)
    if cell.code not in _CELL_CODES:
        raise ValueError(f"fastrnn._core.train: config.cell {cell.name!r} has code "
                         f"{cell.code!r}, not one of the C core's FRNN_CELL_* values "
                         f"{_CELL_CODES}")
    cfg.cell = <frnn_cell_type><int>cell.code
    cfg.leak_rate = _leak_rate(cell)
    T, B = _config_int(config, "T", 1), _config_int(config, "B", 1)
    In, H = _config_int(config, "In", 1), _config_int(config, "H", 1)
    O = _config_int(config, "O", 1)
    k1, k2 = _config_int(config, "k1", 1), _config_int(config, "k2", 1)
    depth = _config_int(config, "depth", -1)
    if depth < 0 and k2 < k1:
        raise ValueError(f"fastrnn._core.train: TBPTT needs k1 <= k2, got k1={k1}, k2={k2}")
    cfg.T, cfg.B, cfg.In, cfg.H, cfg.O = T, B, In, H, O
    cfg.k1, cfg.k2, cfg.depth = k1, k2, depth
    cfg.has_bias, cfg.has_head_bias = bool(config.has_bias), bool(config.has_head_bias)
    # a config without has_bias_hh (an older TrainerConfig) has both biases
    cfg.no_bias_hh = cfg.has_bias and not bool(getattr(config, "has_bias_hh", True))
    cfg.index_input, cfg.many_to_one = bool(config.index_input), bool(config.many_to_one)
    cfg.reduce_mean = bool(config.reduce_mean)
    head = config.head
    cfg.head = <frnn_head>_config_code(config, "head_code", _HEAD_CODES, "FRNN_HEAD_*",
                                       f"head {head!r}")
    cfg.clip = <frnn_clip>_config_code(config, "clip_code", _CLIP_CODES, "FRNN_CLIP_*",
                                       f"clip {config.clip!r}")
    cfg.clip_value = config.clip_value
    opt = config.optimizer
    cfg.opt = <frnn_optimizer>_config_code(config, "optimizer_code", _OPT_CODES, "FRNN_OPT_*",
                                           f"optimizer {opt!r}")
    cfg.lr, cfg.momentum, cfg.alpha = config.lr, config.momentum, config.alpha
    cfg.beta1, cfg.beta2, cfg.eps = config.beta1, config.beta2, config.eps
    cfg.nesterov = bool(config.nesterov)
    uses_m, uses_v = bool(config.uses_m), bool(config.uses_v)
    GH = cell.gates * H
    P = (GH * In + GH * H + (0 if not cfg.has_bias else GH if cfg.no_bias_hh else 2 * GH) + O * H
         + (O if cfg.has_head_bias else 0))
    if config.parameters != P:
        raise ValueError(f"fastrnn._core.train: config.parameters must be the layout's size "
                         f"P = {P} for these sizes, got {config.parameters!r}")
    windows = 1 if depth >= 0 else -(-T // k1)
    return cell, uses_m, uses_v, P, windows, T, B, In, H, O, k1, k2, depth


def train(object config, real[::1] theta not None, real[::1] grad not None,
          real[::1] m not None, real[::1] v not None, object step,
          const real[:, :, ::1] x not None, const int64_t[:, ::1] idx not None,
          const int64_t[::1] target_idx not None, const real[::1] target not None,
          real[:, ::1] h not None, real[:, ::1] c not None, double[::1] losses not None,
          const uint8_t[:, ::1] resets=None):
    """The sequence trainer (frnn_train_*).

    config: a fastrnn.training.TrainerConfig (any object with its
    attributes: cell, T, B, In, H, O, has_bias, has_bias_hh, has_head_bias, index_input,
    many_to_one, reduce_mean, head, head_code, k1, k2, depth, clip,
    clip_code, clip_value, optimizer, optimizer_code, lr, momentum, alpha,
    beta1, beta2, eps, nesterov, uses_m, uses_v, windows, parameters); the
    codes must be the C core's enum values (C_ENUMS) and the sizes, windows
    and parameters consistent with each other.

    Arrays that a configuration does not use are passed empty (never None),
    so the fused type always resolves: x (T, B, In) or idx (T, B);
    target_idx (T*B,) (or (B,) many-to-one) for softmax_ce, else target
    (T*B*O,) (or (B*O,)); m, v (P,) where the optimizer uses them; c (B, H)
    for cells with a cell state only. resets: None, or (T, B) uint8 (a bool
    array's ``.view(np.uint8)``), nonzero where the state entering step t of
    row b is zero (docs/TRAINING.md).

    Returns ``(step, stopped)``: the new optimizer step count, and None, or
    the index of the window whose loss or gradient was not finite, which
    stopped the run before its update (docs/TRAINING.md: theta, m, v, step
    and grad as the previous window left them, h and c as passed in)."""
    cdef frnn_train_config cfg
    cell, uses_m, uses_v, P, windows, T, B, In, H, O, k1, k2, depth = _train_config(config, &cfg)
    head, opt = config.head, config.optimizer
    is_softmax = cfg.head == FRNN_HEAD_SOFTMAX_CE
    _length("theta", theta.shape[0], P, "the layout's size P")
    _length("grad", grad.shape[0], P, "the layout's size P")
    if uses_m or m.shape[0]:
        _length("m", m.shape[0], P, f"P (optimizer {opt!r})")
    if uses_v or v.shape[0]:
        _length("v", v.shape[0], P, f"P (optimizer {opt!r})")
    cdef const Py_ssize_t *resets_shape = resets.shape if resets is not None else NULL
    _sequence_arrays("train", &cfg, cell, head, windows, x.shape, idx.shape,
                     target_idx.shape[0], target.shape[0], h.shape, c.shape, losses.shape[0],
                     resets_shape)
    rows = B if cfg.many_to_one else T * B
    _check_windows(config, windows, T, k1, depth)
    step = _checked_int(step, "step", 0)
    if cfg.opt != FRNN_OPT_NONE and step > _INT64_MAX - windows:
        raise ValueError(f"fastrnn._core.train: step must be at most 2**63 - 1 - windows = "
                         f"{_INT64_MAX - windows} so that each of the {windows} windows can "
                         f"count its update, got {step}")
    cdef int64_t step_count = step

    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(7)
    _add(&s, &theta[0], P * r, r)
    _add(&s, &grad[0], P * r, r)
    _add(&s, &m[0], P * r if uses_m else 0, r)
    _add(&s, &v[0], P * r if uses_v else 0, r)
    _add(&s, &h[0, 0], B * H * r, r)
    _add(&s, &c[0, 0], c.shape[0] * c.shape[1] * r, r)
    _add(&s, &losses[0], losses.shape[0] * sizeof(double), sizeof(double))
    _add(&s, &x[0, 0, 0], x.shape[0] * x.shape[1] * x.shape[2] * r, r)
    _add(&s, &idx[0, 0], idx.shape[0] * idx.shape[1] * sizeof(int64_t), sizeof(int64_t))
    _add(&s, &target_idx[0], target_idx.shape[0] * sizeof(int64_t), sizeof(int64_t))
    _add(&s, &target[0], target.shape[0] * r, r)
    cdef const uint8_t *rp = &resets[0, 0] if resets is not None else NULL
    _add(&s, rp, resets.shape[0] * resets.shape[1] if resets is not None else 0, 1)
    _check_memory("train", &s, ("theta", "grad", "m", "v", "h", "c", "losses", "x", "idx",
                            "target_idx", "target", "resets"))
    if cfg.index_input:
        _indices_in_range("idx", &idx[0, 0], T * B, In, "In")
    if is_softmax:
        _indices_in_range("target_idx", &target_idx[0], rows, O, "O")

    cdef const real *xp = &x[0, 0, 0] if x.shape[0] > 0 else NULL
    cdef const int64_t *ip = &idx[0, 0] if idx.shape[0] > 0 else NULL
    cdef const int64_t *tip = &target_idx[0] if target_idx.shape[0] > 0 else NULL
    cdef const real *tvp = &target[0] if target.shape[0] > 0 else NULL
    cdef real *cp = &c[0, 0] if c.shape[0] > 0 else NULL
    cdef real *mp = &m[0] if m.shape[0] > 0 else NULL
    cdef real *vp = &v[0] if v.shape[0] > 0 else NULL
    cdef int64_t stopped = -1
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_train_f32(&cfg, &theta[0], &grad[0], mp, vp, &step_count, xp, ip, tip,
                                tvp, rp, &h[0, 0], cp, &losses[0], &stopped)
        else:
            rc = frnn_train_f64(&cfg, &theta[0], &grad[0], mp, vp, &step_count, xp, ip, tip,
                                tvp, rp, &h[0, 0], cp, &losses[0], &stopped)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK and rc != FRNN_ERR_NONFINITE:
        _raise(rc, "train", f"T={T}, B={B}, In={In}, H={H}, O={O}, "
                            + (f"depth={depth}" if depth >= 0 else f"k1={k1}, k2={k2}"))
    return step_count, (stopped if rc == FRNN_ERR_NONFINITE else None)


cdef class TrainGradients:
    """The gradients-only sequence trainer (frnn_train_grads_*) for one
    configuration, checked once.

    ``TrainGradients(config, dtype)``: ``config`` a TrainerConfig without
    optimizer (``train``'s docstring lists what it holds), ``dtype``
    float32 or float64. The configuration is checked and converted here,
    once; each call checks only the arrays it is handed (shapes, dtype, C
    order, alignment, overlap, indices), so that fastrnn.dropin can keep one
    per problem and call it per window for little more than the kernel.

    ``g(weights, grads, x, idx, target_idx, target, h, c, losses, resets=None)``
    with ``weights`` and ``grads`` 6-tuples in the layout's order:
    weight_ih (GH, In), weight_hh (GH, H), bias_ih (GH,), bias_hh (GH,),
    weight_hy (O, H), bias_y (O,), each C-contiguous and aligned, a bias the
    layout lacks as an empty array. The weights are read where they are (no
    flat copy; the caller must not change them during the call); the grads
    are overwritten with the sum over windows of the clipped window
    gradients - frnn_train's ``grad`` without optimizer, bit for bit. x,
    idx, target_idx, target, h, c, losses, resets as ``train``'s (unused
    ones empty). Returns None, or the index of the window whose loss or
    gradient was not finite (the grads then hold the sum of the windows
    before it, h and c are as passed in). The GIL is released during the
    computation.

    Thread safety: the object holds only its checked configuration, never
    changed after construction, and the C trainer's working memory belongs
    to the calling thread (runtime/scratch.c), so several threads may call
    one object at once, each with arrays of its own.
    """

    cdef frnn_train_config _cfg
    cdef bint _f64, _softmax
    cdef object _cell, _GH, _T, _B, _In, _H, _O, _windows
    cdef object _n_b_ih, _n_b_hh, _n_b_y
    cdef readonly object config
    """The TrainerConfig it was built from."""
    cdef readonly object dtype
    """numpy.float32 or numpy.float64 as a numpy.dtype."""

    def __cinit__(self, config, dtype):
        import numpy as np
        cell, _, _, _, windows, T, B, In, H, O, k1, _, depth = _train_config(config, &self._cfg)
        _check_windows(config, windows, T, k1, depth)
        if self._cfg.opt != FRNN_OPT_NONE:
            raise ValueError(f"fastrnn._core.TrainGradients: config.optimizer must be None "
                             f"(gradients only), got {config.optimizer!r}")
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"fastrnn._core.TrainGradients: dtype must be float32 or float64, "
                            f"got {dt}")
        self.config, self.dtype, self._f64 = config, dt, dt == np.float64
        self._cell = cell
        self._softmax = self._cfg.head == FRNN_HEAD_SOFTMAX_CE
        GH = cell.gates * H
        self._GH, self._T, self._B, self._In, self._H, self._O = GH, T, B, In, H, O
        self._windows = windows
        self._n_b_ih = GH if self._cfg.has_bias else 0
        self._n_b_hh = GH if self._cfg.has_bias and not self._cfg.no_bias_hh else 0
        self._n_b_y = O if self._cfg.has_head_bias else 0

    def __call__(self, tuple weights not None, tuple grads not None, x, idx, target_idx,
                 target, h, c, losses, resets=None):
        if len(weights) != 6 or len(grads) != 6:
            raise ValueError(f"fastrnn._core.TrainGradients: weights and grads must be "
                             f"6-tuples (weight_ih, weight_hh, bias_ih, bias_hh, weight_hy, "
                             f"bias_y), got {len(weights)} and {len(grads)} arrays")
        for name, a in zip(("x", "idx", "target_idx", "target", "h", "c", "losses"),
                           (x, idx, target_idx, target, h, c, losses)):
            if a is None:
                raise TypeError(f"fastrnn._core.TrainGradients: {name} must be an array "
                                f"(empty where unused), got None")
        for a in weights + grads:
            if a is None:
                raise TypeError("fastrnn._core.TrainGradients: weights and grads must be "
                                "arrays (empty for a bias the layout lacks), got None")
        if self._f64:
            return _train_grads[double](self, weights[0], weights[1], weights[2], weights[3],
                                        weights[4], weights[5], grads[0], grads[1], grads[2],
                                        grads[3], grads[4], grads[5], x, idx, target_idx,
                                        target, h, c, losses, resets)
        return _train_grads[float](self, weights[0], weights[1], weights[2], weights[3],
                                   weights[4], weights[5], grads[0], grads[1], grads[2],
                                   grads[3], grads[4], grads[5], x, idx, target_idx, target,
                                   h, c, losses, resets)

    def __reduce__(self):
        raise TypeError("fastrnn._core.TrainGradients cannot be pickled; build it again "
                        "from its TrainerConfig")

    def __repr__(self):
        return (f"fastrnn._core.TrainGradients(T={self._T}, B={self._B}, In={self._In}, "
                f"H={self._H}, O={self._O}, dtype={self.dtype.name})")


cdef object _train_grads(TrainGradients g, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
                         const real[::1] b_ih, const real[::1] b_hh, const real[:, ::1] w_hy,
                         const real[::1] b_y, real[:, ::1] g_w_ih, real[:, ::1] g_w_hh,
                         real[::1] g_b_ih, real[::1] g_b_hh, real[:, ::1] g_w_hy,
                         real[::1] g_b_y, const real[:, :, ::1] x, const int64_t[:, ::1] idx,
                         const int64_t[::1] target_idx, const real[::1] target,
                         real[:, ::1] h, real[:, ::1] c, double[::1] losses,
                         const uint8_t[:, ::1] resets):
    """TrainGradients.__call__ for one dtype: the arrays against the checked
    configuration, then one C call without the GIL."""
    cdef str f = "TrainGradients"
    GH, T, B, In, H, O = g._GH, g._T, g._B, g._In, g._H, g._O
    _shape2(f, "weight_ih", w_ih.shape[0], w_ih.shape[1], GH, In, "(G*H, In)")
    _shape2(f, "weight_hh", w_hh.shape[0], w_hh.shape[1], GH, H, "(G*H, H)")
    _shape1(f, "bias_ih", b_ih.shape[0], g._n_b_ih, "(G*H,) or, without it, (0,)")
    _shape1(f, "bias_hh", b_hh.shape[0], g._n_b_hh, "(G*H,) or, without it, (0,)")
    _shape2(f, "weight_hy", w_hy.shape[0], w_hy.shape[1], O, H, "(O, H)")
    _shape1(f, "bias_y", b_y.shape[0], g._n_b_y, "(O,) or, without it, (0,)")
    _shape2(f, "grad weight_ih", g_w_ih.shape[0], g_w_ih.shape[1], GH, In, "(G*H, In)")
    _shape2(f, "grad weight_hh", g_w_hh.shape[0], g_w_hh.shape[1], GH, H, "(G*H, H)")
    _shape1(f, "grad bias_ih", g_b_ih.shape[0], g._n_b_ih, "(G*H,) or, without it, (0,)")
    _shape1(f, "grad bias_hh", g_b_hh.shape[0], g._n_b_hh, "(G*H,) or, without it, (0,)")
    _shape2(f, "grad weight_hy", g_w_hy.shape[0], g_w_hy.shape[1], O, H, "(O, H)")
    _shape1(f, "grad bias_y", g_b_y.shape[0], g._n_b_y, "(O,) or, without it, (0,)")
    cdef const Py_ssize_t *resets_shape = resets.shape if resets is not None else NULL
    _sequence_arrays(f, &g._cfg, g._cell, g.config.head, g._windows, x.shape, idx.shape,
                     target_idx.shape[0], target.shape[0], h.shape, c.shape, losses.shape[0],
                     resets_shape)

    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(9)
    _add(&s, &g_w_ih[0, 0], g_w_ih.shape[0] * g_w_ih.shape[1] * r, r)
    _add(&s, &g_w_hh[0, 0], g_w_hh.shape[0] * g_w_hh.shape[1] * r, r)
    _add(&s, &g_b_ih[0], g_b_ih.shape[0] * r, r)
    _add(&s, &g_b_hh[0], g_b_hh.shape[0] * r, r)
    _add(&s, &g_w_hy[0, 0], g_w_hy.shape[0] * g_w_hy.shape[1] * r, r)
    _add(&s, &g_b_y[0], g_b_y.shape[0] * r, r)
    _add(&s, &h[0, 0], h.shape[0] * h.shape[1] * r, r)
    _add(&s, &c[0, 0], c.shape[0] * c.shape[1] * r, r)
    _add(&s, &losses[0], losses.shape[0] * sizeof(double), sizeof(double))
    _add(&s, &w_ih[0, 0], w_ih.shape[0] * w_ih.shape[1] * r, r)
    _add(&s, &w_hh[0, 0], w_hh.shape[0] * w_hh.shape[1] * r, r)
    _add(&s, &b_ih[0], b_ih.shape[0] * r, r)
    _add(&s, &b_hh[0], b_hh.shape[0] * r, r)
    _add(&s, &w_hy[0, 0], w_hy.shape[0] * w_hy.shape[1] * r, r)
    _add(&s, &b_y[0], b_y.shape[0] * r, r)
    _add(&s, &x[0, 0, 0], x.shape[0] * x.shape[1] * x.shape[2] * r, r)
    _add(&s, &idx[0, 0], idx.shape[0] * idx.shape[1] * sizeof(int64_t), sizeof(int64_t))
    _add(&s, &target_idx[0], target_idx.shape[0] * sizeof(int64_t), sizeof(int64_t))
    _add(&s, &target[0], target.shape[0] * r, r)
    cdef const uint8_t *rp = &resets[0, 0] if resets is not None else NULL
    _add(&s, rp, resets.shape[0] * resets.shape[1] if resets is not None else 0, 1)
    _check_memory(f, &s, ("grad weight_ih", "grad weight_hh", "grad bias_ih", "grad bias_hh",
                          "grad weight_hy", "grad bias_y", "h", "c", "losses", "weight_ih",
                          "weight_hh", "bias_ih", "bias_hh", "weight_hy", "bias_y", "x", "idx",
                          "target_idx", "target", "resets"))
    if g._cfg.index_input:
        _indices_in_range("idx", &idx[0, 0], idx.shape[0] * idx.shape[1], g._cfg.In, "In")
    if g._softmax:
        _indices_in_range("target_idx", &target_idx[0], target_idx.shape[0], g._cfg.O, "O")

    # absent arrays as NULL (an empty memoryview's data pointer is not one)
    cdef const real *bihp = &b_ih[0] if b_ih.shape[0] > 0 else NULL
    cdef const real *bhhp = &b_hh[0] if b_hh.shape[0] > 0 else NULL
    cdef const real *byp = &b_y[0] if b_y.shape[0] > 0 else NULL
    cdef real *gbihp = &g_b_ih[0] if g_b_ih.shape[0] > 0 else NULL
    cdef real *gbhhp = &g_b_hh[0] if g_b_hh.shape[0] > 0 else NULL
    cdef real *gbyp = &g_b_y[0] if g_b_y.shape[0] > 0 else NULL
    cdef const real *xp = &x[0, 0, 0] if x.shape[0] > 0 else NULL
    cdef const int64_t *ip = &idx[0, 0] if idx.shape[0] > 0 else NULL
    cdef const int64_t *tip = &target_idx[0] if target_idx.shape[0] > 0 else NULL
    cdef const real *tvp = &target[0] if target.shape[0] > 0 else NULL
    cdef real *cp = &c[0, 0] if c.shape[0] > 0 else NULL
    cdef const frnn_train_config *cfgp = &g._cfg
    cdef int64_t stopped = -1
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_train_grads_f32(cfgp, &w_ih[0, 0], &w_hh[0, 0], bihp, bhhp,
                                      &w_hy[0, 0], byp, &g_w_ih[0, 0], &g_w_hh[0, 0], gbihp,
                                      gbhhp, &g_w_hy[0, 0], gbyp, xp, ip, tip, tvp, rp,
                                      &h[0, 0], cp, &losses[0], &stopped)
        else:
            rc = frnn_train_grads_f64(cfgp, &w_ih[0, 0], &w_hh[0, 0], bihp, bhhp,
                                      &w_hy[0, 0], byp, &g_w_ih[0, 0], &g_w_hh[0, 0], gbihp,
                                      gbhhp, &g_w_hy[0, 0], gbyp, xp, ip, tip, tvp, rp,
                                      &h[0, 0], cp, &losses[0], &stopped)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK and rc != FRNN_ERR_NONFINITE:
        _raise(rc, f, f"T={T}, B={B}, In={In}, H={H}, O={O}")
    return stopped if rc == FRNN_ERR_NONFINITE else None


# ---- streaming (stream.c) -------------------------------------------------

from cpython.buffer cimport PyBuffer_Release, PyBuffer_IsContiguous, PyBUF_RECORDS_RO
from cpython.exc cimport PyErr_Clear

cdef extern from "Python.h":
    # PyObject_GetBuffer without Cython's `except -1`: the fast path tests
    # the result itself and hands every failure to the slow path.
    int _get_buffer "PyObject_GetBuffer"(object obj, Py_buffer *view, int flags)
from libc.stdint cimport uintptr_t
from libc.string cimport strcmp


cdef class Stream:
    """A prepared single-step recurrent layer on the C kernels (stream.c).

    ``Stream(cell, weight_ih, weight_hh, bias_ih, bias_hh, batch, h0, c0)``
    packs the weights once (they are copied: later changes to the arrays
    passed in are not seen) and owns the state arrays ``h`` (and ``c`` for a
    cell with a cell state), [batch, hidden_size], starting at h0 / c0 or
    zeros. Build it through ``layer.stream()`` or ``fastrnn.stream.create()``;
    this constructor checks its arguments by the same rules
    (fastrnn._validate) and adds the C stream's own size bound (2**24).

    ``s(x)`` / ``s.step(x)``: x [batch, input_size], C-contiguous, of the
    stream's dtype (never converted). Advances the state in place and returns
    ``s.h`` itself - the same array object every call, overwritten by the next
    step; copy it to keep it. The GIL is released during the computation.

    The weights stay packed for the kernel table (ISA) that was active when
    the stream was created; ``isa`` names it, and the stream keeps using it
    even if ``select_isa`` picks another later.

    Not thread-safe: use one stream per thread. Stepping one stream from two
    threads at once raises RuntimeError rather than corrupting memory.
    """

    cdef void *_s
    cdef bint _f64, _has_c, _busy
    cdef Py_ssize_t _B, _In, _H, _isz
    cdef const char *_fmt
    cdef object _h, _c, _hmv, _cmv
    cdef char *_hp
    cdef char *_cp
    cdef readonly str cell
    """The cell's name (one of fastrnn.cells.NAMES)."""
    cdef readonly object descriptor
    """The fastrnn.cells.Cell it runs, hyperparameters (a leak rate) included."""
    cdef readonly str isa
    """The kernel table (ISA) the weights were packed for and every step uses."""
    cdef readonly object dtype
    """numpy.float32 or numpy.float64 as a numpy.dtype."""

    def __cinit__(self, cell, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                  Py_ssize_t batch=1, h0=None, c0=None):
        # The package's own rules and messages (fastrnn._validate, which
        # fastrnn.stream.create has applied already); here they make the
        # arrays what C needs: C-contiguous, aligned, one dtype, absent
        # biases as zeros, absent states as zeros.
        import numpy as np
        from fastrnn import _validate
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        p = _validate.layer_parameters(cell, weight_ih, weight_hh, bias_ih, bias_hh)
        c = p.cell
        In, H, dtype = p.input_size, p.hidden_size, p.dtype
        # stream.c's bound on each size (it keeps every product far from
        # overflowing); beyond it frnn_stream_create refuses
        if max(batch, In, H) > 2 ** 24:
            raise ValueError(f"a stream's batch, input_size and hidden_size must each be at "
                             f"most 2**24, got batch={batch}, input_size={In}, "
                             f"hidden_size={H}")
        h_init = _validate.state(c, "h0", h0, batch, H, dtype, dtype_of="weight_hh")
        c_init = _validate.state(c, "c0", c0, batch, H, dtype, cell_state=True,
                                 dtype_of="weight_hh")
        w_ih, w_hh, b_ih, b_hh = p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh
        self.cell, self.descriptor, self.dtype = c.name, c, dtype
        self._f64 = dtype == np.float64
        self._has_c = c.has_cell_state
        self._B, self._In, self._H = batch, In, H
        self._isz = dtype.itemsize
        self._fmt = b"d" if self._f64 else b"f"
        # the stream's own state arrays (copies: the caller's h0 / c0 are not
        # updated)
        self._h = np.array(h_init, dtype, order="C", copy=True)
        self._c = np.array(c_init, dtype, order="C", copy=True) if self._has_c else None
        # Typed views of the state, held for the stream's life: the buffer
        # exports keep the arrays' memory where the cached pointers say.
        cdef float[:, ::1] hf, cf
        cdef double[:, ::1] hd, cd
        cdef frnn_cell_desc desc = _desc(c, H)
        if self._f64:
            hd = self._h
            self._hmv, self._hp = hd, <char *>&hd[0, 0]
            if self._has_c:
                cd = self._c
                self._cmv, self._cp = cd, <char *>&cd[0, 0]
            self._s = _create_f64(&desc, batch, In, w_ih, w_hh, b_ih, b_hh)
        else:
            hf = self._h
            self._hmv, self._hp = hf, <char *>&hf[0, 0]
            if self._has_c:
                cf = self._c
                self._cmv, self._cp = cf, <char *>&cf[0, 0]
            self._s = _create_f32(&desc, batch, In, w_ih, w_hh, b_ih, b_hh)
        if self._s == NULL:
            raise MemoryError("fastrnn: could not allocate the stream")
        self.isa = active_isa()

    def __dealloc__(self):
        if self._s != NULL:
            if self._f64:
                frnn_stream_destroy_f64(<frnn_stream_f64 *>self._s)
            else:
                frnn_stream_destroy_f32(<frnn_stream_f32 *>self._s)
            self._s = NULL

    cdef object _step(self, object x):
        cdef Py_buffer view
        cdef int rc
        cdef const char *xp
        cdef Py_ssize_t n
        cdef uint64_t fp_saved
        if self._busy:
            raise RuntimeError("this stream is being stepped in another thread; a stream is "
                               "not thread-safe: use one stream per thread")
        if _get_buffer(x, &view, PyBUF_RECORDS_RO) == -1:
            PyErr_Clear()
            return self._slow_step(x)
        # fast path: exactly the stream's dtype, shape, C order, aligned
        xp = <const char *>view.buf
        n = self._B * self._H * self._isz
        if (view.ndim != 2 or view.shape[0] != self._B or view.shape[1] != self._In
                or view.itemsize != self._isz or view.format == NULL
                or strcmp(view.format, self._fmt) != 0
                or not PyBuffer_IsContiguous(&view, b'C')
                or (<uintptr_t>xp) % self._isz != 0
                or (xp < self._hp + n and self._hp < xp + self._B * self._In * self._isz)
                or (self._has_c and xp < self._cp + n
                    and self._cp < xp + self._B * self._In * self._isz)):
            PyBuffer_Release(&view)
            return self._slow_step(x)
        self._busy = True
        with nogil:
            fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
            if self._f64:
                rc = frnn_stream_step_f64(<frnn_stream_f64 *>self._s, <const double *>xp,
                                          <double *>self._hp, <double *>self._cp)
            else:
                rc = frnn_stream_step_f32(<frnn_stream_f32 *>self._s, <const float *>xp,
                                          <float *>self._hp, <float *>self._cp)
            frnn_fpenv_leave(fp_saved)
        self._busy = False
        PyBuffer_Release(&view)
        if rc != FRNN_OK:
            raise RuntimeError(f"fastrnn: frnn_stream_step failed ({rc})")
        return self._h

    cdef object _slow_step(self, object x):
        """Anything the fast path declined: explain it, or (for an input of
        the right dtype that overlaps the state, or a buffer with another
        spelling of the same format) step on a private copy."""
        import numpy as np
        from fastrnn.stream import check_input  # the rules and messages of every stream
        a = check_input(x, self.dtype, self._B, self._In)
        # right dtype, shape and order: unaligned, overlapping the state, or
        # a format spelt differently (e.g. "<f"); a fresh copy takes the fast path
        return self._step(np.array(a, order="C", copy=True))

    def __call__(self, x):
        """Advance one step with input x [batch, input_size]; returns h (see step)."""
        return self._step(x)

    def step(self, x):
        """Advance one step with input x [batch, input_size], in place.

        Returns ``self.h``: the same array every call, overwritten by the next
        step (copy it to keep it). For LSTM the new cell state is ``self.c``.
        """
        return self._step(x)

    @property
    def batch(self):
        """Rows stepped together."""
        return self._B

    @property
    def input_size(self):
        return self._In

    @property
    def hidden_size(self):
        return self._H

    @property
    def backend(self):
        return "c"

    @property
    def h(self):
        """The hidden state [batch, hidden_size]: the array every step updates
        in place and returns. Assigning copies values into it."""
        return self._h

    @h.setter
    def h(self, value):
        self._set_state("h", self._h, value)

    @property
    def c(self):
        """The cell state [batch, hidden_size], updated in place (None for
        cells without one). Assigning copies values into it."""
        return self._c

    @c.setter
    def c(self, value):
        if not self._has_c:
            raise ValueError(f"c is only meaningful for a cell with a cell state, not "
                             f"{self.cell!r}")
        self._set_state("c", self._c, value)

    cdef _set_state(self, str name, object dst, object value):
        import numpy as np
        a = np.asarray(value)
        if a.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype} (the stream's dtype), "
                            f"got {a.dtype}")
        if a.shape != (self._B, self._H):
            raise ValueError(f"{name} must have shape (batch, hidden_size) = "
                             f"({self._B}, {self._H}), got {a.shape}")
        dst[...] = a

    def reset(self, h=None, c=None):
        """Set the state to h / c ([batch, hidden_size]), zeros where None."""
        if c is not None and not self._has_c:
            raise ValueError(f"c is only meaningful for a cell with a cell state, not "
                             f"{self.cell!r}")
        if h is None:
            self._h[...] = 0
        else:
            self.h = h
        if self._has_c:
            if c is None:
                self._c[...] = 0
            else:
                self.c = c

    def __reduce__(self):
        raise TypeError("a fastrnn stream cannot be pickled; pickle the layer and call "
                        "layer.stream() again")

    def __repr__(self):
        return (f"fastrnn._core.Stream({self.descriptor.label!r}, batch={self._B}, "
                f"input_size={self._In}, "
                f"hidden_size={self._H}, dtype={self.dtype.name}, isa={self.isa!r})")


cdef void *_create_f32(const frnn_cell_desc *desc, frnn_int B, frnn_int In,
                       const float[:, ::1] w_ih, const float[:, ::1] w_hh, const float[::1] b_ih,
                       const float[::1] b_hh):
    cdef void *s
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        s = frnn_stream_create_f32(desc, B, In, &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0])
        frnn_fpenv_leave(fp_saved)
    return s


cdef void *_create_f64(const frnn_cell_desc *desc, frnn_int B, frnn_int In,
                       const double[:, ::1] w_ih, const double[:, ::1] w_hh,
                       const double[::1] b_ih, const double[::1] b_hh):
    cdef void *s
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        s = frnn_stream_create_f64(desc, B, In, &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0])
        frnn_fpenv_leave(fp_saved)
    return s


# ---- torch.optim's updates over one flat array (layer/optimizers.c) ----------
#
# fastrnn.optim's C path: one call per parameter and step, on the caller's
# arrays (flattened views: nothing is copied or reallocated). param and the
# state buffers are updated in place; grad is read only. Every array must be
# 1-D, C-contiguous, of param's dtype (the fused `real`: float32 and float64
# arrays are never mixed, and nothing is cast) and param's length, aligned,
# and no written array may overlap another; param and the buffers must be
# writable. A buffer the hyperparameters do not use may be None (and is then
# not checked). Hyperparameters are torch.optim's (fastrnn.optim checks them
# and explains them first); the C core refuses values outside torch's ranges
# with a ValueError here.

cdef int _optim_buffer(str func, str name, object buf, Py_ssize_t size, Py_ssize_t n,
                       bint needed, str why) except -1:
    """A state buffer: required (not None) when ``needed``, and of param's
    length whenever given and needed."""
    if not needed:
        return 0
    if buf is None:
        raise ValueError(f"fastrnn._core.{func}: {name} is required {why} (None given)")
    if size != n:
        raise ValueError(f"fastrnn._core.{func}: {name} must have param's length {n}, "
                         f"got {size}")
    return 0


cdef inline real *_optional(real[::1] buf, bint used) noexcept:
    """The data pointer of a used, non-empty buffer; NULL otherwise."""
    if not used or buf is None or buf.shape[0] == 0:
        return NULL
    return &buf[0]


cdef int _optim_arrays(str func, object param, tuple names, tuple arrays) except -1:
    """param must be a 1-D float32 or float64 array and every other array
    given 1-D of its dtype: a TypeError (dtype) or ValueError (dimensions)
    naming the first that is not (the fused implementations would only say
    that no signature matches)."""
    dtype = getattr(param, "dtype", None)
    if dtype is None or dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise TypeError(f"fastrnn._core.{func}: param must be a float32 or float64 array, got "
                        f"{getattr(param, 'dtype', type(param).__name__)}")
    for name, a in zip(("param",) + names, (param,) + arrays):
        if a is None:
            continue
        if getattr(a, "dtype", None) != dtype:
            raise TypeError(f"fastrnn._core.{func}: {name} must have param's dtype {dtype}, "
                            f"got {getattr(a, 'dtype', type(a).__name__)} (nothing is cast)")
        if getattr(a, "ndim", None) != 1:
            raise ValueError(f"fastrnn._core.{func}: {name} must be 1-D (a flat view of the "
                             f"array), got {getattr(a, 'ndim', '?')} dimensions")
    return 0


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
             first_step):
    """torch.optim.SGD's update of one parameter (frnn_sgd_step).
    momentum_buffer: used when momentum != 0 (else may be None); first_step:
    it has no value yet (it is then written from the gradient, not read)."""
    _optim_arrays("sgd_step", param, ("grad", "momentum_buffer"), (grad, momentum_buffer))
    _sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
              first_step)


def adagrad_step(param, grad, sum, step, lr, lr_decay, weight_decay, eps):
    """torch.optim.Adagrad's update of one parameter (frnn_adagrad_step);
    step: its update count including this one, >= 1."""
    _optim_arrays("adagrad_step", param, ("grad", "sum"), (grad, sum))
    _adagrad_step(param, grad, sum, step, lr, lr_decay, weight_decay, eps)


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                 weight_decay, momentum, centered):
    """torch.optim.RMSprop's update of one parameter (frnn_rmsprop_step).
    momentum_buffer: used when momentum > 0; grad_avg: when centered (else
    either may be None)."""
    _optim_arrays("rmsprop_step", param, ("grad", "square_avg", "momentum_buffer", "grad_avg"),
                  (grad, square_avg, momentum_buffer, grad_avg))
    _rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                  weight_decay, momentum, centered)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled_weight_decay):
    """torch.optim.Adam's (decoupled_weight_decay: AdamW's) update of one
    parameter (frnn_adam_step); step: its update count including this one,
    >= 1; max_exp_avg_sq: used when amsgrad (else may be None)."""
    _optim_arrays("adam_step", param, ("grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
                  (grad, exp_avg, exp_avg_sq, max_exp_avg_sq))
    _adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
               weight_decay, amsgrad, decoupled_weight_decay)


def _sgd_step(real[::1] param not None, const real[::1] grad not None,
             real[::1] momentum_buffer, double lr, double momentum, double dampening,
             double weight_decay, bint nesterov, bint first_step):
    """sgd_step's fused implementation (arguments: sgd_step)."""
    cdef Py_ssize_t n = param.shape[0]
    cdef bint has_momentum = momentum != 0
    _shape1("sgd_step", "grad", grad.shape[0], n, "(param's length,)")
    _optim_buffer("sgd_step", "momentum_buffer", momentum_buffer,
                  momentum_buffer.shape[0] if momentum_buffer is not None else 0, n,
                  has_momentum, "when momentum != 0")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(2)
    cdef real *buf = _optional(momentum_buffer, has_momentum)
    _add(&s, &param[0] if n else NULL, n * r, r)
    _add(&s, buf, n * r if buf != NULL else 0, r)
    _add(&s, &grad[0] if n else NULL, n * r, r)
    _check_memory("sgd_step", &s, ("param", "momentum_buffer", "grad"))
    cdef frnn_sgd_hyper h
    h.lr, h.momentum, h.dampening, h.weight_decay = lr, momentum, dampening, weight_decay
    h.nesterov = nesterov
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_sgd_step_f32(&h, n, &param[0] if n else NULL, &grad[0] if n else NULL,
                                   buf, first_step)
        else:
            rc = frnn_sgd_step_f64(&h, n, &param[0] if n else NULL, &grad[0] if n else NULL,
                                   buf, first_step)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "sgd_step", f"n={n}, lr={lr}, momentum={momentum}, dampening={dampening}, "
                               f"weight_decay={weight_decay}, nesterov={bool(nesterov)}")


def _adagrad_step(real[::1] param not None, const real[::1] grad not None,
                 real[::1] sum not None, int64_t step, double lr, double lr_decay,
                 double weight_decay, double eps):
    """adagrad_step's fused implementation."""
    cdef Py_ssize_t n = param.shape[0]
    _shape1("adagrad_step", "grad", grad.shape[0], n, "(param's length,)")
    _shape1("adagrad_step", "sum", sum.shape[0], n, "(param's length,)")
    if step < 1:
        raise ValueError(f"fastrnn._core.adagrad_step: step must be >= 1 (the count including "
                         f"this update), got {step}")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(2)
    _add(&s, &param[0] if n else NULL, n * r, r)
    _add(&s, &sum[0] if n else NULL, n * r, r)
    _add(&s, &grad[0] if n else NULL, n * r, r)
    _check_memory("adagrad_step", &s, ("param", "sum", "grad"))
    cdef frnn_adagrad_hyper h
    h.lr, h.lr_decay, h.weight_decay, h.eps = lr, lr_decay, weight_decay, eps
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_adagrad_step_f32(&h, n, step, &param[0] if n else NULL,
                                       &grad[0] if n else NULL, &sum[0] if n else NULL)
        else:
            rc = frnn_adagrad_step_f64(&h, n, step, &param[0] if n else NULL,
                                       &grad[0] if n else NULL, &sum[0] if n else NULL)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "adagrad_step", f"n={n}, lr={lr}, lr_decay={lr_decay}, "
                                   f"weight_decay={weight_decay}, eps={eps}")


def _rmsprop_step(real[::1] param not None, const real[::1] grad not None,
                 real[::1] square_avg not None, real[::1] momentum_buffer,
                 real[::1] grad_avg, double lr, double alpha, double eps, double weight_decay,
                 double momentum, bint centered):
    """rmsprop_step's fused implementation."""
    cdef Py_ssize_t n = param.shape[0]
    cdef bint has_momentum = momentum > 0
    _shape1("rmsprop_step", "grad", grad.shape[0], n, "(param's length,)")
    _shape1("rmsprop_step", "square_avg", square_avg.shape[0], n, "(param's length,)")
    _optim_buffer("rmsprop_step", "momentum_buffer", momentum_buffer,
                  momentum_buffer.shape[0] if momentum_buffer is not None else 0, n,
                  has_momentum, "when momentum > 0")
    _optim_buffer("rmsprop_step", "grad_avg", grad_avg,
                  grad_avg.shape[0] if grad_avg is not None else 0, n, centered,
                  "when centered")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(4)
    cdef real *buf = _optional(momentum_buffer, has_momentum)
    cdef real *avg = _optional(grad_avg, centered)
    _add(&s, &param[0] if n else NULL, n * r, r)
    _add(&s, &square_avg[0] if n else NULL, n * r, r)
    _add(&s, buf, n * r if buf != NULL else 0, r)
    _add(&s, avg, n * r if avg != NULL else 0, r)
    _add(&s, &grad[0] if n else NULL, n * r, r)
    _check_memory("rmsprop_step", &s, ("param", "square_avg", "momentum_buffer", "grad_avg",
                                       "grad"))
    cdef frnn_rmsprop_hyper h
    h.lr, h.alpha, h.eps, h.weight_decay, h.momentum = lr, alpha, eps, weight_decay, momentum
    h.centered = centered
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_rmsprop_step_f32(&h, n, &param[0] if n else NULL, &grad[0] if n else NULL,
                                       &square_avg[0] if n else NULL, buf, avg)
        else:
            rc = frnn_rmsprop_step_f64(&h, n, &param[0] if n else NULL, &grad[0] if n else NULL,
                                       &square_avg[0] if n else NULL, buf, avg)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "rmsprop_step", f"n={n}, lr={lr}, alpha={alpha}, eps={eps}, "
                                   f"weight_decay={weight_decay}, momentum={momentum}")


def _adam_step(real[::1] param not None, const real[::1] grad not None,
              real[::1] exp_avg not None, real[::1] exp_avg_sq not None,
              real[::1] max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2,
              double eps, double weight_decay, bint amsgrad, bint decoupled_weight_decay):
    """adam_step's fused implementation."""
    cdef Py_ssize_t n = param.shape[0]
    _shape1("adam_step", "grad", grad.shape[0], n, "(param's length,)")
    _shape1("adam_step", "exp_avg", exp_avg.shape[0], n, "(param's length,)")
    _shape1("adam_step", "exp_avg_sq", exp_avg_sq.shape[0], n, "(param's length,)")
    _optim_buffer("adam_step", "max_exp_avg_sq", max_exp_avg_sq,
                  max_exp_avg_sq.shape[0] if max_exp_avg_sq is not None else 0, n, amsgrad,
                  "when amsgrad")
    if step < 1:
        raise ValueError(f"fastrnn._core.adam_step: step must be >= 1 (the count including "
                         f"this update), got {step}")
    cdef Py_ssize_t r = sizeof(real)
    cdef _Spans s = _spans(4)
    cdef real *vmax = _optional(max_exp_avg_sq, amsgrad)
    _add(&s, &param[0] if n else NULL, n * r, r)
    _add(&s, &exp_avg[0] if n else NULL, n * r, r)
    _add(&s, &exp_avg_sq[0] if n else NULL, n * r, r)
    _add(&s, vmax, n * r if vmax != NULL else 0, r)
    _add(&s, &grad[0] if n else NULL, n * r, r)
    _check_memory("adam_step", &s, ("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                                    "grad"))
    cdef frnn_adam_hyper h
    h.lr, h.beta1, h.beta2, h.eps, h.weight_decay = lr, beta1, beta2, eps, weight_decay
    h.amsgrad, h.decoupled_weight_decay = amsgrad, decoupled_weight_decay
    cdef int rc
    cdef uint64_t fp_saved
    with nogil:
        fp_saved = frnn_fpenv_enter()  # flush subnormals (runtime/fpenv.c)
        if real is float:
            rc = frnn_adam_step_f32(&h, n, step, &param[0] if n else NULL,
                                    &grad[0] if n else NULL, &exp_avg[0] if n else NULL,
                                    &exp_avg_sq[0] if n else NULL, vmax)
        else:
            rc = frnn_adam_step_f64(&h, n, step, &param[0] if n else NULL,
                                    &grad[0] if n else NULL, &exp_avg[0] if n else NULL,
                                    &exp_avg_sq[0] if n else NULL, vmax)
        frnn_fpenv_leave(fp_saved)
    if rc != FRNN_OK:
        _raise(rc, "adam_step", f"n={n}, lr={lr}, betas=({beta1}, {beta2}), eps={eps}, "
                                f"weight_decay={weight_decay}")
