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
