# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastrnn._core - the thin Cython layer over the C kernels in csrc/.

It turns typed, C-contiguous memoryviews into pointers and calls the kernel
with the GIL released. It deliberately checks nothing but what the C code
cannot survive (shape agreement is the job of fastrnn._validate, which runs
before any backend); the fused type `real` guarantees that every array of a
call has one dtype, float32 or float64.

Functions follow the backend contract in docs/ARCHITECTURE.md.
"""
from libc.stdint cimport int64_t
from ._cfastrnn cimport *

ctypedef fused real:
    float
    double

_ACTIVATIONS = {"rnn_tanh": FRNN_ACT_TANH, "rnn_relu": FRNN_ACT_RELU,
                "rnn_sigmoid": FRNN_ACT_SIGMOID}


def select_isa(request=None):
    """Choose the GEMM kernels ("auto", "baseline", "avx2"); returns the ISA in use."""
    cdef bytes req = (request or "auto").encode("ascii")
    return frnn_select_isa(req).decode("ascii")


def active_isa():
    """The ISA whose GEMM kernels are in use."""
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


cdef inline int _check(int rc) except -1:
    if rc == FRNN_ERR_NOMEM:
        raise MemoryError("fastrnn: the C kernel could not allocate its scratch memory")
    return 0


def forward(str cell,
            const real[:, :, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
            const real[::1] b_ih, const real[::1] b_hh,
            const real[:, ::1] h0, const real[:, ::1] c0,
            real[:, :, ::1] out, real[:, ::1] hn, real[:, ::1] cn, real[:, :, ::1] ws):
    cdef frnn_int T = x.shape[0], B = x.shape[1], In = x.shape[2], H = h0.shape[1]
    cdef const real *c0p = NULL
    cdef real *cnp = NULL
    cdef real *wsp = NULL
    cdef int rc = 0
    cdef frnn_activation act = FRNN_ACT_TANH
    if c0 is not None:
        c0p = &c0[0, 0]
    if cn is not None:
        cnp = &cn[0, 0]
    if ws is not None and ws.shape[2] > 0:
        wsp = &ws[0, 0, 0]
    if cell == "lstm":
        with nogil:
            if real is float:
                rc = frnn_lstm_forward_f32(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], c0p, &out[0, 0, 0], &hn[0, 0], cnp, wsp)
            else:
                rc = frnn_lstm_forward_f64(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], c0p, &out[0, 0, 0], &hn[0, 0], cnp, wsp)
    elif cell == "gru":
        with nogil:
            if real is float:
                rc = frnn_gru_forward_f32(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], &out[0, 0, 0], &hn[0, 0], wsp)
            else:
                rc = frnn_gru_forward_f64(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], &out[0, 0, 0], &hn[0, 0], wsp)
    else:
        act = _ACTIVATIONS[cell]
        with nogil:
            if real is float:
                rc = frnn_rnn_forward_f32(act, T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], &out[0, 0, 0], &hn[0, 0])
            else:
                rc = frnn_rnn_forward_f64(act, T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h0[0, 0], &out[0, 0, 0], &hn[0, 0])
    _check(rc)


def backward(str cell,
             const real[:, :, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
             const real[::1] b_ih, const real[::1] b_hh,
             const real[:, ::1] h0, const real[:, ::1] c0,
             const real[:, :, ::1] out, const real[:, :, ::1] ws,
             const real[:, :, ::1] d_out, const real[:, ::1] d_hn, const real[:, ::1] d_cn,
             real[:, :, ::1] dx, real[:, ::1] dw_ih, real[:, ::1] dw_hh,
             real[::1] db_ih, real[::1] db_hh, real[:, ::1] dh0, real[:, ::1] dc0):
    # b_ih / b_hh are part of the contract but not needed: every cell's
    # backward reads the biases' effect from the saved workspace or outputs.
    cdef frnn_int T = x.shape[0], B = x.shape[1], In = x.shape[2], H = h0.shape[1]
    cdef int rc = 0
    cdef frnn_activation act = FRNN_ACT_TANH
    if cell == "lstm":
        with nogil:
            if real is float:
                rc = frnn_lstm_backward_f32(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &c0[0, 0], &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &d_cn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0], &dc0[0, 0])
            else:
                rc = frnn_lstm_backward_f64(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &c0[0, 0], &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &d_cn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0], &dc0[0, 0])
    elif cell == "gru":
        with nogil:
            if real is float:
                rc = frnn_gru_backward_f32(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0])
            else:
                rc = frnn_gru_backward_f64(T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &out[0, 0, 0], &ws[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0])
    else:
        act = _ACTIVATIONS[cell]
        with nogil:
            if real is float:
                rc = frnn_rnn_backward_f32(act, T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &out[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0])
            else:
                rc = frnn_rnn_backward_f64(act, T, B, In, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &h0[0, 0], &out[0, 0, 0], &d_out[0, 0, 0], &d_hn[0, 0], &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0], &dh0[0, 0])
    _check(rc)


def step(str cell,
         const real[:, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
         const real[::1] b_ih, const real[::1] b_hh,
         const real[:, ::1] h, const real[:, ::1] c,
         real[:, ::1] h_out, real[:, ::1] c_out):
    cdef frnn_int B = x.shape[0], In = x.shape[1], H = h.shape[1]
    cdef int rc = 0
    cdef frnn_activation act = FRNN_ACT_TANH
    if cell == "lstm":
        with nogil:
            if real is float:
                rc = frnn_lstm_step_f32(B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &c[0, 0], &h_out[0, 0], &c_out[0, 0])
            else:
                rc = frnn_lstm_step_f64(B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &c[0, 0], &h_out[0, 0], &c_out[0, 0])
    elif cell == "gru":
        with nogil:
            if real is float:
                rc = frnn_gru_step_f32(B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &h_out[0, 0])
            else:
                rc = frnn_gru_step_f64(B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &h_out[0, 0])
    else:
        act = _ACTIVATIONS[cell]
        with nogil:
            if real is float:
                rc = frnn_rnn_step_f32(act, B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &h_out[0, 0])
            else:
                rc = frnn_rnn_step_f64(act, B, In, H, &x[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], &h[0, 0], &h_out[0, 0])
    _check(rc)


cdef extern from "kernels_export.h" nogil:
    void frnn_activation_f32(int which, frnn_int n, const float *x, float *y)
    void frnn_activation_f64(int which, frnn_int n, const double *x, double *y)


def _activation(str name, const real[::1] x, real[::1] y):
    """Test hook: y = sigmoid(x) or tanh(x) through the active ISA's kernel."""
    cdef int which = {"sigmoid": 0, "tanh": 1}[name]
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y must have the same length")
    if x.shape[0] == 0:
        return
    with nogil:
        if real is float:
            frnn_activation_f32(which, x.shape[0], &x[0], &y[0])
        else:
            frnn_activation_f64(which, x.shape[0], &x[0], &y[0])


_CELL_TYPES = {"rnn_tanh": 0, "rnn_relu": 1, "rnn_sigmoid": 2, "lstm": 3, "gru": 4}
_HEADS = {"softmax_ce": 0, "sigmoid_bce": 1, "mse": 2}
_CLIPS = {"none": 0, "value": 1, "norm": 2}
_OPTS = {None: 0, "sgd": 1, "adagrad": 2, "rmsprop": 3, "adam": 4}


cdef inline real *_ptr1(real[::1] a) noexcept:
    return &a[0] if a.shape[0] > 0 else NULL


def train(dict config, real[::1] theta, real[::1] grad, real[::1] m, real[::1] v, int64_t step,
          const real[:, :, ::1] x, const int64_t[:, ::1] idx, const int64_t[::1] target_idx,
          const real[::1] target, real[:, ::1] h, real[:, ::1] c, double[::1] losses):
    """The sequence trainer (frnn_train_*). Arrays that a configuration does
    not use are passed empty (never None), so the fused type always resolves.
    Returns the new optimizer step count."""
    cdef frnn_train_config cfg
    cfg.cell = <frnn_cell_type>_CELL_TYPES[config["cell"]]
    cfg.T, cfg.B, cfg.In = config["T"], config["B"], config["In"]
    cfg.H, cfg.O = config["H"], config["O"]
    cfg.has_bias, cfg.has_head_bias = config["has_bias"], config["has_head_bias"]
    cfg.index_input, cfg.many_to_one = config["index_input"], config["many_to_one"]
    cfg.reduce_mean = config["reduce_mean"]
    cfg.head = <frnn_head>_HEADS[config["head"]]
    cfg.k1, cfg.k2 = config["k1"], config["k2"]
    cfg.depth = config["depth"]
    cfg.clip = <frnn_clip>_CLIPS[config["clip"]]
    cfg.clip_value = config["clip_value"]
    cfg.opt = <frnn_optimizer>_OPTS[config["opt"]]
    cfg.lr, cfg.momentum, cfg.alpha = config["lr"], config["momentum"], config["alpha"]
    cfg.beta1, cfg.beta2, cfg.eps = config["beta1"], config["beta2"], config["eps"]
    cfg.nesterov = config["nesterov"]
    if cfg.depth < 0 and losses.shape[0] < (cfg.T + cfg.k1 - 1) // cfg.k1 or losses.shape[0] < 1:
        raise ValueError("losses has no room for every window")
    cdef const real *xp = &x[0, 0, 0] if x.shape[0] > 0 else NULL
    cdef const int64_t *ip = &idx[0, 0] if idx.shape[0] > 0 else NULL
    cdef const int64_t *tip = &target_idx[0] if target_idx.shape[0] > 0 else NULL
    cdef const real *tvp = &target[0] if target.shape[0] > 0 else NULL
    cdef real *cp = &c[0, 0] if c.shape[0] > 0 else NULL
    cdef real *mp = _ptr1(m)
    cdef real *vp = _ptr1(v)
    cdef int rc
    with nogil:
        if real is float:
            rc = frnn_train_f32(&cfg, &theta[0], &grad[0], mp, vp, &step, xp, ip, tip, tvp, &h[0, 0], cp, &losses[0])
        else:
            rc = frnn_train_f64(&cfg, &theta[0], &grad[0], mp, vp, &step, xp, ip, tip, tvp, &h[0, 0], cp, &losses[0])
    if rc == FRNN_ERR_UNSUPPORTED:
        raise ValueError("the C trainer does not support this configuration")
    _check(rc)
    return step


# ---- streaming (stream.c) -------------------------------------------------

from cpython.buffer cimport PyBuffer_Release, PyBuffer_IsContiguous, PyBUF_RECORDS_RO
from cpython.exc cimport PyErr_Clear

cdef extern from "Python.h":
    # PyObject_GetBuffer without Cython's `except -1`: the fast path tests
    # the result itself and hands every failure to the slow path.
    int _get_buffer "PyObject_GetBuffer"(object obj, Py_buffer *view, int flags)
from libc.stdint cimport uintptr_t
from libc.string cimport strcmp

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3}


cdef class Stream:
    """A prepared single-step recurrent layer on the C kernels (stream.c).

    ``Stream(cell, weight_ih, weight_hh, bias_ih, bias_hh, batch, h0, c0)``
    packs the weights once (they are copied: later changes to the arrays
    passed in are not seen) and owns the state arrays ``h`` (and ``c`` for
    LSTM), [batch, hidden_size], starting at h0 / c0 or zeros. Build it
    through ``layer.stream()`` or ``fastrnn.stream.create()``, which validate
    their arguments; this constructor checks only what the C code needs.

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
    cdef bint _f64, _lstm, _busy
    cdef Py_ssize_t _B, _In, _H, _isz
    cdef const char *_fmt
    cdef object _h, _c, _hmv, _cmv
    cdef char *_hp
    cdef char *_cp
    cdef readonly str cell
    """The cell: "rnn_tanh", "rnn_relu", "rnn_sigmoid", "lstm" or "gru"."""
    cdef readonly str isa
    """The kernel table (ISA) the weights were packed for and every step uses."""
    cdef readonly object dtype
    """numpy.float32 or numpy.float64 as a numpy.dtype."""

    def __cinit__(self, str cell, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                  Py_ssize_t batch=1, h0=None, c0=None):
        import numpy as np
        if cell not in _GATES:
            raise ValueError(f"cell must be one of {tuple(_GATES)}, got {cell!r}")
        w_ih = np.ascontiguousarray(weight_ih)
        if w_ih.dtype not in (np.float32, np.float64):
            raise TypeError(f"weight_ih must be float32 or float64, got {w_ih.dtype}")
        dtype = w_ih.dtype
        w_hh = np.ascontiguousarray(weight_hh)
        if w_ih.ndim != 2 or w_hh.ndim != 2:
            raise ValueError("weight_ih and weight_hh must be 2-D")
        G = _GATES[cell]
        GH, H = w_hh.shape[0], w_hh.shape[1]
        In = w_ih.shape[1]
        if H < 1 or In < 1 or GH != G * H or w_ih.shape[0] != GH:
            raise ValueError(f"weight_ih {w_ih.shape} / weight_hh {w_hh.shape} do not fit cell {cell!r}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        b = []
        for name, a in (("weight_hh", w_hh), ("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if a is None:
                b.append(np.zeros(GH, dtype))
                continue
            a = np.ascontiguousarray(a)
            if a.dtype != dtype:
                raise TypeError(f"{name} has dtype {a.dtype}, weight_ih {dtype}")
            b.append(a)
        w_hh, b_ih, b_hh = b
        if b_ih.shape != (GH,) or b_hh.shape != (GH,):
            raise ValueError(f"bias_ih and bias_hh must have shape ({GH},)")
        self.cell, self.dtype = cell, dtype
        self._f64 = dtype == np.float64
        self._lstm = cell == "lstm"
        self._B, self._In, self._H = batch, In, H
        self._isz = dtype.itemsize
        self._fmt = b"d" if self._f64 else b"f"
        self._h = np.zeros((batch, H), dtype)
        self._c = np.zeros((batch, H), dtype) if self._lstm else None
        if h0 is not None:
            self.h = h0
        if c0 is not None:
            if not self._lstm:
                raise ValueError(f"c0 is only meaningful for cell 'lstm', not {cell!r}")
            self.c = c0
        # Typed views of the state, held for the stream's life: the buffer
        # exports keep the arrays' memory where the cached pointers say.
        cdef float[:, ::1] hf, cf
        cdef double[:, ::1] hd, cd
        cdef int ct = _CELL_TYPES[cell]
        if self._f64:
            hd = self._h
            self._hmv, self._hp = hd, <char *>&hd[0, 0]
            if self._lstm:
                cd = self._c
                self._cmv, self._cp = cd, <char *>&cd[0, 0]
            self._s = _create_f64(ct, batch, In, H, w_ih, w_hh, b_ih, b_hh)
        else:
            hf = self._h
            self._hmv, self._hp = hf, <char *>&hf[0, 0]
            if self._lstm:
                cf = self._c
                self._cmv, self._cp = cf, <char *>&cf[0, 0]
            self._s = _create_f32(ct, batch, In, H, w_ih, w_hh, b_ih, b_hh)
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
                or (self._lstm and xp < self._cp + n and self._cp < xp + self._B * self._In * self._isz)):
            PyBuffer_Release(&view)
            return self._slow_step(x)
        self._busy = True
        with nogil:
            if self._f64:
                rc = frnn_stream_step_f64(<frnn_stream_f64 *>self._s, <const double *>xp,
                                          <double *>self._hp, <double *>self._cp)
            else:
                rc = frnn_stream_step_f32(<frnn_stream_f32 *>self._s, <const float *>xp,
                                          <float *>self._hp, <float *>self._cp)
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
        """The LSTM cell state [batch, hidden_size], updated in place (None
        for other cells). Assigning copies values into it."""
        return self._c

    @c.setter
    def c(self, value):
        if not self._lstm:
            raise ValueError(f"c is only meaningful for cell 'lstm', not {self.cell!r}")
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
        if c is not None and not self._lstm:
            raise ValueError(f"c is only meaningful for cell 'lstm', not {self.cell!r}")
        if h is None:
            self._h[...] = 0
        else:
            self.h = h
        if self._lstm:
            if c is None:
                self._c[...] = 0
            else:
                self.c = c

    def __reduce__(self):
        raise TypeError("a fastrnn stream cannot be pickled; pickle the layer and call "
                        "layer.stream() again")

    def __repr__(self):
        return (f"fastrnn._core.Stream({self.cell!r}, batch={self._B}, input_size={self._In}, "
                f"hidden_size={self._H}, dtype={self.dtype.name}, isa={self.isa!r})")


cdef void *_create_f32(int ct, frnn_int B, frnn_int In, frnn_int H, const float[:, ::1] w_ih,
                       const float[:, ::1] w_hh, const float[::1] b_ih, const float[::1] b_hh):
    cdef void *s
    with nogil:
        s = frnn_stream_create_f32(ct, B, In, H, &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0])
    return s


cdef void *_create_f64(int ct, frnn_int B, frnn_int In, frnn_int H, const double[:, ::1] w_ih,
                       const double[:, ::1] w_hh, const double[::1] b_ih, const double[::1] b_hh):
    cdef void *s
    with nogil:
        s = frnn_stream_create_f64(ct, B, In, H, &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0])
    return s
