# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastrnn._core - the thin Cython layer over the C kernels in csrc/.

It turns typed, C-contiguous memoryviews into pointers and calls the kernel
with the GIL released. It deliberately checks nothing but what the C code
cannot survive (shape agreement is the job of fastrnn._validate, which runs
before any backend); the fused type `real` guarantees that every array of a
call has one dtype, float32 or float64.

Functions follow the backend contract in docs/ARCHITECTURE.md.
"""
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
