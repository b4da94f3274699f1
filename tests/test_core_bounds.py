"""The compiled core's own defences: sizes, shapes, overlaps, non-finite windows.

fastrnn.functional and fastrnn.training check a user's arguments first, but
fastrnn._core can be called directly and the C entry points are exported,
so each layer must hold on its own:

* the C entry points (called here through ctypes, bypassing _core) reject
  sizes < 1 and size products that overflow (FRNN_ERR_UNSUPPORTED /
  FRNN_ERR_TOO_LARGE) before they read or write anything, and the trainer
  clamps depth to T - 1 and k1, k2 to T itself;
* fastrnn._core checks every array against the sizes it passes to C and
  raises ValueError naming the argument (what used to read past a replaced
  ``result.output`` and die with SIGSEGV);
* the C trainer stops at a window whose loss or unclipped gradient is not
  finite, leaving theta, m, v, step, grad, h and c exactly as a run over the
  good windows alone leaves them (docs/TRAINING.md).

The calls that used to kill the interpreter run in a subprocess, so a
regression fails one test instead of the whole session.
"""
from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import fastrnn
from fastrnn import training as tr

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(),
                                reason="no compiled core")

if "c" in fastrnn.available_backends():
    from fastrnn import _core
    from fastrnn.backends import c as c_backend

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3, "gru_original": 3,
         "leaky": 1}
WS = {"rnn_tanh": 0, "rnn_relu": 0, "rnn_sigmoid": 0, "lstm": 5, "gru": 4, "gru_original": 4,
      "leaky": 1}
CELLS = tuple(GATES)
# fastrnn.h
FRNN_OK, FRNN_ERR_UNSUPPORTED, FRNN_ERR_TOO_LARGE = 0, 2, 3


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (same environment: under .ci/sanitize
    the child is sanitized too)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


# ---- _core.forward / backward / step: every array against the sizes ------

def layer_arrays(cell, dtype, T=3, B=2, In=4, H=5, seed=0):
    """A consistent set of arrays for _core.forward / backward / step."""
    rng = np.random.default_rng(seed)
    G, W = GATES[cell], WS[cell] * H
    lstm = cell == "lstm"

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return dict(
        x=a(T, B, In), w_ih=a(G * H, In) * 0.3, w_hh=a(G * H, H) * 0.3, b_ih=a(G * H),
        b_hh=a(G * H), h0=a(B, H), c0=a(B, H) if lstm else None,
        out=np.zeros((T, B, H), dtype), hn=np.zeros((B, H), dtype),
        cn=np.zeros((B, H), dtype) if lstm else None, ws=np.zeros((T, B, W), dtype),
        d_out=a(T, B, H), d_hn=a(B, H), d_cn=a(B, H) if lstm else None,
        dx=np.zeros((T, B, In), dtype), dw_ih=np.zeros((G * H, In), dtype),
        dw_hh=np.zeros((G * H, H), dtype), db_ih=np.zeros(G * H, dtype),
        db_hh=np.zeros(G * H, dtype), dh0=np.zeros((B, H), dtype),
        dc0=np.zeros((B, H), dtype) if lstm else None,
        xs=a(B, In), h=a(B, H), c=a(B, H) if lstm else None,
        h_out=np.zeros((B, H), dtype), c_out=np.zeros((B, H), dtype) if lstm else None,
    )


FORWARD = ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "out", "hn", "cn", "ws")
BACKWARD = ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "out", "ws", "d_out", "d_hn",
            "d_cn", "dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dc0")
STEP = ("xs", "w_ih", "w_hh", "b_ih", "b_hh", "h", "c", "h_out", "c_out")


def call(fn, cell, arrays, names):
    return fn(cell, *(arrays[n] for n in names))


def grown(a, axis):
    """a with dimension `axis` one longer: same dtype, rank and order."""
    shape = list(a.shape)
    shape[axis] += 1
    return np.zeros(shape, a.dtype)


# The arrays whose shape _core derives the sizes from (x: T, B, In; w_hh: H)
# are checked against each other through the others, so growing them is
# caught as a mismatch of some other argument; every other array must be
# rejected under its own name.
SIZE_SOURCES = {"x", "xs", "w_hh"}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("fn_name,names", [("forward", FORWARD), ("backward", BACKWARD),
                                           ("step", STEP)])
def test_every_mismatched_array_is_rejected_by_name(cell, fn_name, names):
    fn = getattr(_core, fn_name)
    base = layer_arrays(cell, np.float64)
    call(fn, cell, base, names)  # the consistent call runs
    for name in names:
        if base[name] is None:
            continue
        for axis in (0, -1):
            arrays = dict(base, **{name: grown(base[name], axis)})
            match = None if name in SIZE_SOURCES else rf"\b{name} must have shape"
            with pytest.raises(ValueError, match=match):
                call(fn, cell, arrays, names)


@pytest.mark.parametrize("cell", CELLS)
def test_lstm_state_is_required_and_others_have_none(cell):
    arrays = layer_arrays(cell, np.float32)
    if cell == "lstm":
        for name in ("c0", "cn"):
            with pytest.raises(ValueError, match=f"{name} is required"):
                call(_core.forward, cell, dict(arrays, **{name: None}), FORWARD)
        for name in ("c0", "d_cn", "dc0", "ws"):
            with pytest.raises(ValueError, match=f"{name} is required"):
                call(_core.backward, cell, dict(arrays, **{name: None}), BACKWARD)
    else:
        state = np.zeros_like(arrays["h0"])
        for name in ("c0", "cn"):
            with pytest.raises(ValueError, match=f"{name} must be None"):
                call(_core.forward, cell, dict(arrays, **{name: state}), FORWARD)
        with pytest.raises(ValueError, match="c must be None"):
            call(_core.step, cell, dict(arrays, c=state.copy()), STEP)
    if WS[cell]:  # LSTM checked above
        with pytest.raises(ValueError, match="ws is required"):
            call(_core.backward, cell, dict(arrays, ws=None), BACKWARD)


@pytest.mark.parametrize("fn_name", ["forward", "backward", "step"])
def test_zero_sizes_are_rejected(fn_name):
    """T = 0 and B = 0 are the functional layer's business; C is never
    given them (its forward would copy h_n from out[T - 1])."""
    names = {"forward": FORWARD, "backward": BACKWARD, "step": STEP}[fn_name]
    arrays = layer_arrays("gru", np.float64, T=1, B=1)
    empty = {k: (None if a is None else np.zeros((0,) + a.shape[1:], a.dtype))
             if k in ("x", "xs", "out", "ws", "d_out", "dx") else a for k, a in arrays.items()}
    with pytest.raises(ValueError, match="must all be >= 1|must have shape"):
        call(getattr(_core, fn_name), "gru", empty, names)


def test_unknown_cell_and_missing_arrays():
    arrays = layer_arrays("rnn_tanh", np.float64)
    with pytest.raises(ValueError, match="cell must be one of"):
        call(_core.forward, "lstmm", arrays, FORWARD)
    with pytest.raises(TypeError):
        call(_core.forward, "rnn_tanh", dict(arrays, out=None), FORWARD)


def test_outputs_may_not_overlap_other_arrays():
    arrays = layer_arrays("rnn_tanh", np.float64, In=5, H=5)  # x and out: the same shape
    with pytest.raises(ValueError, match="out must not overlap x"):
        call(_core.forward, "rnn_tanh", dict(arrays, out=arrays["x"]), FORWARD)
    with pytest.raises(ValueError, match="hn must not overlap h0"):
        call(_core.forward, "rnn_tanh", dict(arrays, hn=arrays["h0"]), FORWARD)
    with pytest.raises(ValueError, match="dh0 must not overlap d_hn"):
        call(_core.backward, "rnn_tanh", dict(arrays, dh0=arrays["d_hn"]), BACKWARD)
    # step: h_out may be h itself (the update in place) but not part of it
    B, H = arrays["h"].shape
    wide = np.zeros((B + 1, H))
    wide[1:] = arrays["h"]
    with pytest.raises(ValueError, match="h_out must not overlap h"):
        call(_core.step, "rnn_tanh", dict(arrays, h=wide[1:], h_out=wide[:-1]), STEP)
    fresh = dict(arrays, h_out=np.zeros((B, H)))
    call(_core.step, "rnn_tanh", fresh, STEP)
    in_place = dict(arrays, h=arrays["h"].copy())
    in_place["h_out"] = in_place["h"]
    call(_core.step, "rnn_tanh", in_place, STEP)
    np.testing.assert_array_equal(in_place["h"], fresh["h_out"])


def unaligned(a):
    """a's values, C-contiguous, one byte off its dtype's alignment."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    b = np.frombuffer(buf.data, a.dtype, a.size, offset=1).reshape(a.shape)
    b[...] = a
    assert not b.flags.aligned and b.flags.c_contiguous
    return b


@pytest.mark.parametrize("fn_name,name", [("forward", "x"), ("forward", "out"),
                                          ("backward", "d_out"), ("backward", "dw_hh"),
                                          ("step", "h")])
def test_misaligned_arrays_are_rejected(fn_name, name):
    """A float pointer that is not aligned to its size is undefined behaviour
    in C (UBSan reported it from the GEMM kernels, given such an x)."""
    names = {"forward": FORWARD, "backward": BACKWARD, "step": STEP}[fn_name]
    arrays = layer_arrays("lstm", np.float32)
    arrays[name] = unaligned(arrays[name])
    with pytest.raises(ValueError, match=f"{name} is not aligned to its 4-byte elements"):
        call(getattr(_core, fn_name), "lstm", arrays, names)
    config, targs = core_train_args(head="softmax_ce", index_input=True)
    targs["idx"] = unaligned(targs["idx"])
    with pytest.raises(ValueError, match="idx is not aligned to its 8-byte elements"):
        core_train(config, targs)


def test_stream_sizes_beyond_the_c_bound_are_a_value_error():
    w_ih, w_hh = np.zeros((3, 2), np.float32), np.zeros((3, 1), np.float32)
    with pytest.raises(ValueError, match=r"at most 2\*\*24, got batch=16777217"):
        _core.Stream("gru", w_ih, w_hh, batch=2 ** 24 + 1)
    _core.Stream("gru", w_ih, w_hh, batch=3)  # within it: fine


def test_replaced_output_at_a_large_size_is_rejected_in_a_child():
    """The reported crash: result.output replaced by an array of another
    shape made the C backward read past it (SIGSEGV at T, B, H = 1000, 64,
    256)."""
    proc = run_child("""
        import numpy as np
        from fastrnn import _core
        T, B, I, H = 1000, 64, 8, 256
        f = np.float32
        z = lambda *s: np.zeros(s, f)
        try:
            _core.backward("rnn_tanh", z(T, B, I), z(H, I), z(H, H), z(H), z(H), z(B, H), None,
                           z(1, 1, H), None, z(T, B, H), z(B, H), None, z(T, B, I), z(H, I),
                           z(H, H), z(H), z(H), z(B, H), None)
        except ValueError as e:
            print("ValueError:", e)
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ValueError: fastrnn._core.backward: out must have shape (T, B, H) = (1000, 64, 256)" \
        in proc.stdout


# ---- the C entry points themselves (ctypes: no Cython checks in between) --

class TrainConfig(ctypes.Structure):
    """frnn_train_config (fastrnn.h); enums are ints."""
    _fields_ = [("cell", ctypes.c_int), ("T", ctypes.c_int64), ("B", ctypes.c_int64),
                ("In", ctypes.c_int64), ("H", ctypes.c_int64), ("O", ctypes.c_int64),
                ("has_bias", ctypes.c_int), ("has_head_bias", ctypes.c_int),
                ("index_input", ctypes.c_int), ("many_to_one", ctypes.c_int),
                ("reduce_mean", ctypes.c_int), ("head", ctypes.c_int),
                ("k1", ctypes.c_int64), ("k2", ctypes.c_int64), ("depth", ctypes.c_int64),
                ("clip", ctypes.c_int), ("clip_value", ctypes.c_double), ("opt", ctypes.c_int),
                ("lr", ctypes.c_double), ("momentum", ctypes.c_double),
                ("alpha", ctypes.c_double), ("beta1", ctypes.c_double),
                ("beta2", ctypes.c_double), ("eps", ctypes.c_double),
                ("nesterov", ctypes.c_int), ("no_bias_hh", ctypes.c_int),
                ("leak_rate", ctypes.c_double)]


class CellDesc(ctypes.Structure):
    """frnn_cell_desc (fastrnn.h)."""
    _fields_ = [("type", ctypes.c_int), ("hidden_size", ctypes.c_int64),
                ("leak_rate", ctypes.c_double)]

    def __init__(self, type, hidden_size, leak_rate=1.0):  # 1.0: the leaky cell's default
        super().__init__(type, hidden_size, leak_rate)


@pytest.fixture(scope="module")
def lib():
    library = ctypes.CDLL(_core.__file__)
    for name in ("frnn_train_f64", "frnn_layer_forward_f64", "frnn_layer_backward_f64",
                 "frnn_layer_step_f64"):
        if not hasattr(library, name):
            pytest.skip(f"the extension does not export {name}")
    P = ctypes.POINTER
    dp, ip, desc = P(ctypes.c_double), P(ctypes.c_int64), P(CellDesc)
    u8 = P(ctypes.c_uint8)
    library.frnn_train_f64.argtypes = [P(TrainConfig), dp, dp, dp, dp, ip, dp, ip, ip, dp, u8,
                                       dp, dp, dp, ip]
    library.frnn_layer_forward_f64.argtypes = [desc] + [ctypes.c_int64] * 3 + [dp] * 11
    library.frnn_layer_backward_f64.argtypes = [desc] + [ctypes.c_int64] * 3 + [dp] * 17
    library.frnn_layer_step_f64.argtypes = [desc] + [ctypes.c_int64] * 2 + [dp] * 9
    return library


def ptr(a):
    if a is None:
        return None
    ctype = ctypes.c_int64 if a.dtype == np.int64 else ctypes.c_double
    return a.ctypes.data_as(ctypes.POINTER(ctype))


class TinyTrain:
    """A valid float64 TBPTT configuration and its arrays: mse head, SGD."""

    def __init__(self, T=6, B=2, In=3, H=4, O=2, cell=0):
        self.cfg = TrainConfig(cell=cell, T=T, B=B, In=In, H=H, O=O, has_bias=1,
                               has_head_bias=1, head=2, k1=2, k2=3, depth=-1, clip=0, opt=1,
                               lr=0.1)
        G = 4 if cell == 3 else 3 if cell == 4 else 1
        P = G * H * In + G * H * H + 2 * G * H + O * H + O
        rng = np.random.default_rng(1)
        self.theta = rng.uniform(-0.5, 0.5, P)
        self.grad, self.m, self.v = np.zeros(P), np.zeros(P), np.zeros(P)
        self.step = np.zeros(1, np.int64)
        self.x = rng.standard_normal((T, B, In))
        self.target = rng.standard_normal((T, B, O))
        self.h, self.c = rng.standard_normal((B, H)), rng.standard_normal((B, H))
        self.losses = np.zeros(T)
        self.stopped = np.zeros(1, np.int64)
        self.idx = np.zeros((T, B), np.int64)
        self.target_idx = np.zeros(T * B, np.int64)

    def run(self, lib, x=True, idx=False, target_idx=False):
        return lib.frnn_train_f64(ctypes.byref(self.cfg), ptr(self.theta), ptr(self.grad),
                                  ptr(self.m), ptr(self.v), ptr(self.step),
                                  ptr(self.x) if x else None, ptr(self.idx) if idx else None,
                                  ptr(self.target_idx) if target_idx else None,
                                  ptr(self.target), None, ptr(self.h), ptr(self.c),
                                  ptr(self.losses), ptr(self.stopped))

    def snapshot(self):
        return [a.copy() for a in (self.theta, self.grad, self.m, self.h, self.losses, self.step)]


@pytest.mark.parametrize("field,value,expected", [
    ("depth", 2 ** 61, None),  # clamped to T - 1: runs (it used to overflow (depth+1)*B)
    ("k2", 2 ** 62, None),     # clamped to T (t_prev + k1 and t - k2 stay small)
    ("depth", -2, FRNN_ERR_UNSUPPORTED),
    ("k1", 0, FRNN_ERR_UNSUPPORTED),
    ("k2", 1, FRNN_ERR_UNSUPPORTED),  # k2 < k1 = 2
    ("T", 0, FRNN_ERR_UNSUPPORTED),
    ("B", -1, FRNN_ERR_UNSUPPORTED),
    ("H", -(2 ** 62), FRNN_ERR_UNSUPPORTED),
    ("head", 4, FRNN_ERR_UNSUPPORTED),  # one past FRNN_HEAD_SIGMOID_MSE
    ("opt", 9, FRNN_ERR_UNSUPPORTED),
    ("T", 2 ** 62, FRNN_ERR_TOO_LARGE),  # T * B overflows
    ("H", 2 ** 61, FRNN_ERR_TOO_LARGE),  # G * H, H * H overflow
    ("In", 2 ** 62, FRNN_ERR_TOO_LARGE),
    ("O", 2 ** 62, FRNN_ERR_TOO_LARGE),
])
def test_c_trainer_checks_its_configuration(lib, field, value, expected):
    """Tiny arrays, impossible sizes: the C trainer must refuse before it
    touches them (ASan, under .ci/sanitize, would catch a single access)."""
    t = TinyTrain()
    setattr(t.cfg, field, value)
    before = t.snapshot()
    rc = t.run(lib)
    if expected is None:
        assert rc == FRNN_OK and t.stopped[0] == -1
        ref = TinyTrain()
        if field == "depth":
            ref.cfg.depth = ref.cfg.T - 1
        else:
            ref.cfg.k2 = ref.cfg.T
        assert ref.run(lib) == FRNN_OK
        for got, want in zip(t.snapshot(), ref.snapshot()):
            np.testing.assert_array_equal(got, want)
        return
    assert rc == expected
    for got, want in zip(t.snapshot(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("step,expected", [(2 ** 63 - 1, FRNN_ERR_UNSUPPORTED),
                                           (2 ** 63 - 3, FRNN_ERR_UNSUPPORTED),  # 3 windows
                                           (-1, FRNN_ERR_UNSUPPORTED),
                                           (2 ** 63 - 4, FRNN_OK)])
def test_c_trainer_step_count_cannot_overflow(lib, step, expected):
    """*step += 1 per window was a signed overflow (UBSan) from 2**63 - 1."""
    t = TinyTrain()
    t.step[0] = step
    before = t.snapshot()
    assert t.run(lib) == expected
    if expected == FRNN_OK:
        assert t.step[0] == 2 ** 63 - 1
    else:
        for got, want in zip(t.snapshot(), before):
            np.testing.assert_array_equal(got, want)


def test_c_trainer_checks_indices_and_needed_arrays(lib):
    t = TinyTrain()
    t.cfg.index_input = 1
    t.idx[2, 1] = t.cfg.In  # one past the vocabulary: a write outside dW_ih
    assert t.run(lib, x=False, idx=True) == FRNN_ERR_UNSUPPORTED
    t.idx[2, 1] = -1
    assert t.run(lib, x=False, idx=True) == FRNN_ERR_UNSUPPORTED
    t.idx[2, 1] = 0
    assert t.run(lib, x=False, idx=True) == FRNN_OK
    s = TinyTrain()
    s.cfg.head = 0  # softmax_ce: class targets in [0, O)
    s.target_idx[5] = s.cfg.O
    assert s.run(lib, target_idx=True) == FRNN_ERR_UNSUPPORTED
    s.target_idx[5] = 1
    assert s.run(lib, target_idx=True) == FRNN_OK
    assert s.run(lib, target_idx=False) == FRNN_ERR_UNSUPPORTED  # NULL targets
    lstm = TinyTrain(cell=3)
    assert lstm.run(lib) == FRNN_OK
    assert lib.frnn_train_f64(ctypes.byref(lstm.cfg), ptr(lstm.theta), ptr(lstm.grad), None,
                              None, ptr(lstm.step), ptr(lstm.x), None, None, ptr(lstm.target),
                              None, ptr(lstm.h), None, ptr(lstm.losses), None) == FRNN_ERR_UNSUPPORTED


@pytest.mark.parametrize("T,B,In,H,expected", [
    (2 ** 40, 2 ** 40, 1, 1, FRNN_ERR_TOO_LARGE),
    (1, 1, 2 ** 62, 1, FRNN_ERR_TOO_LARGE),
    (1, 1, 1, 2 ** 62, FRNN_ERR_TOO_LARGE),
    (1, 2 ** 31, 1, 2 ** 31, FRNN_ERR_TOO_LARGE),
    (0, 1, 1, 1, FRNN_ERR_UNSUPPORTED),
    (1, -5, 1, 1, FRNN_ERR_UNSUPPORTED),
    (1, 1, 1, 0, FRNN_ERR_UNSUPPORTED),
])
def test_c_layer_entry_points_check_their_sizes(lib, T, B, In, H, expected):
    """Every layer entry point refuses sizes < 1 and size products that
    overflow, before touching its (here: one-element) arrays."""
    one = [np.zeros(1) for _ in range(17)]
    rnn, lstm, gru, gru_original = (ctypes.byref(CellDesc(code, H)) for code in (0, 3, 4, 5))
    assert lib.frnn_layer_forward_f64(rnn, T, B, In, *map(ptr, one[:11])) == expected
    assert lib.frnn_layer_backward_f64(lstm, T, B, In, *map(ptr, one)) == expected
    assert lib.frnn_layer_forward_f64(gru_original, T, B, In, *map(ptr, one[:11])) == expected
    assert lib.frnn_layer_backward_f64(gru_original, T, B, In, *map(ptr, one)) == expected
    if T == 1:
        assert lib.frnn_layer_step_f64(gru, B, In, *map(ptr, one[:9])) == expected
        assert lib.frnn_layer_step_f64(gru_original, B, In, *map(ptr, one[:9])) == expected
    assert all(a[0] == 0 for a in one)


def test_c_layer_entry_points_refuse_unknown_cells_and_missing_arrays(lib):
    """An unknown cell type, or NULL for an array the cell needs (LSTM: its
    cell state; GRU: its workspace in backward), is FRNN_ERR_UNSUPPORTED
    before anything is touched; an Elman cell's c0 / cn / ws may be NULL."""
    T, B, In, H = 2, 1, 1, 1
    one = [np.zeros(4) for _ in range(17)]
    args = list(map(ptr, one))
    for code in (len(GATES), -1, 1000):  # len(GATES): the first code past the last cell
        desc = ctypes.byref(CellDesc(code, H))
        assert lib.frnn_layer_forward_f64(desc, T, B, In, *args[:11]) == FRNN_ERR_UNSUPPORTED
        assert lib.frnn_layer_backward_f64(desc, T, B, In, *args) == FRNN_ERR_UNSUPPORTED
        assert lib.frnn_layer_step_f64(desc, B, In, *args[:9]) == FRNN_ERR_UNSUPPORTED
    assert lib.frnn_layer_forward_f64(None, T, B, In, *args[:11]) == FRNN_ERR_UNSUPPORTED
    lstm = ctypes.byref(CellDesc(3, H))
    no_c0 = args[:6] + [None] + args[7:11]  # forward: c0 is argument 6 after the sizes
    assert lib.frnn_layer_forward_f64(lstm, T, B, In, *no_c0) == FRNN_ERR_UNSUPPORTED
    no_ws = args[:6] + [None] + args[7:]  # backward: ws is argument 6
    for gru_code in (4, 5):  # gru, gru_original: both save a workspace
        gru = ctypes.byref(CellDesc(gru_code, H))
        assert lib.frnn_layer_backward_f64(gru, T, B, In, *no_ws) == FRNN_ERR_UNSUPPORTED
    no_c = args[:6] + [None] + args[7:9]  # step: c is argument 6
    assert lib.frnn_layer_step_f64(lstm, B, In, *no_c) == FRNN_ERR_UNSUPPORTED
    # the leaky cell (code 6) refuses a leak rate that is not a finite number in (0, 1]
    for rate in (0.0, -0.25, 1.5, float("nan"), float("inf")):
        desc = ctypes.byref(CellDesc(6, H, rate))
        assert lib.frnn_layer_forward_f64(desc, T, B, In, *args[:11]) == FRNN_ERR_UNSUPPORTED
        assert lib.frnn_layer_backward_f64(desc, T, B, In, *args) == FRNN_ERR_UNSUPPORTED
        assert lib.frnn_layer_step_f64(desc, B, In, *args[:9]) == FRNN_ERR_UNSUPPORTED
    assert all((a == 0).all() for a in one)
    rnn = ctypes.byref(CellDesc(0, H))
    elman = args[:6] + [None, args[7], args[8], None, None]
    assert lib.frnn_layer_forward_f64(rnn, T, B, In, *elman) == FRNN_OK


# ---- _core.train: the configuration and every array against it ----------

# fastrnn.h's enum values, written out here (tests/test_c_cells.py checks
# _core.C_ENUMS against fastrnn's own codes)
HEAD_CODES = {"softmax_ce": 0, "sigmoid_bce": 1, "mse": 2, "sigmoid_mse": 3}
CLIP_CODES = {"none": 0, "value": 1, "norm": 2}
OPT_CODES = {None: 0, "sgd": 1, "adagrad": 2, "rmsprop": 3, "adam": 4}


def trainer_config(cell, T, B, In, H, O, head, opt, depth, k1, k2, clip, index_input=False,
                   many_to_one=False, momentum=0.9):
    """What _core.train reads: the attributes of fastrnn.training.TrainerConfig,
    as a plain namespace (the test builds them independently of training.py)."""
    from fastrnn import cells
    G = GATES[cell]
    return types.SimpleNamespace(
        cell=cells.get(cell), T=T, B=B, In=In, H=H, O=O, has_bias=True, has_head_bias=True,
        index_input=index_input, many_to_one=many_to_one, reduce_mean=False, head=head,
        head_code=HEAD_CODES[head], k1=k1, k2=k2, depth=depth, clip=clip,
        clip_code=CLIP_CODES[clip], clip_value=1.0, optimizer=opt, optimizer_code=OPT_CODES[opt],
        lr=0.05, momentum=momentum, alpha=0.99, beta1=0.9, beta2=0.999, eps=1e-8,
        nesterov=False, uses_m=(opt == "sgd" and momentum != 0) or opt in ("adagrad", "adam"),
        uses_v=opt in ("rmsprop", "adam"), windows=1 if depth >= 0 else -(-T // k1),
        parameters=G * H * (In + H + 2) + O * (H + 1))


def with_changes(config, **changes):
    """A copy of a namespace config with some attributes replaced (T also
    updates windows)."""
    new = types.SimpleNamespace(**vars(config))
    for key, value in changes.items():
        setattr(new, key, value)
    if "T" in changes and "windows" not in changes and isinstance(new.T, int) and new.T > 0:
        new.windows = 1 if new.depth >= 0 else -(-new.T // new.k1)
    return new


def core_train_args(cell="gru", head="mse", dtype=np.float64, T=7, B=2, In=3, H=4, O=3,
                    index_input=False, opt="adam", depth=-1, k1=2, k2=3, clip="norm", seed=0):
    rng = np.random.default_rng(seed)
    lay = tr.Layout(cell, In, H, O)
    config = trainer_config(cell, T, B, In, H, O, head, opt, depth, k1, k2, clip, index_input)
    theta = lay.init(dtype, seed=seed)
    P = theta.size
    arrays = dict(
        theta=theta, grad=np.zeros(P, dtype), m=np.zeros(P, dtype), v=np.zeros(P, dtype),
        step=0,
        x=np.zeros((0, 0, 0), dtype) if index_input else rng.standard_normal((T, B, In)).astype(dtype),
        idx=rng.integers(0, In, (T, B)) if index_input else np.zeros((0, 0), np.int64),
        target_idx=rng.integers(0, O, T * B) if head == "softmax_ce" else np.zeros(0, np.int64),
        target=np.zeros(0, dtype) if head == "softmax_ce" else rng.standard_normal(T * B * O).astype(dtype),
        h=(0.5 * rng.standard_normal((B, H))).astype(dtype),
        c=(0.5 * rng.standard_normal((B, H))).astype(dtype) if cell == "lstm" else np.zeros((0, 0), dtype),
        losses=np.zeros(T),
    )
    return config, arrays


TRAIN_ORDER = ("theta", "grad", "m", "v", "step", "x", "idx", "target_idx", "target", "h", "c",
               "losses")


def core_train(config, arrays):
    return _core.train(config, *(arrays[k] for k in TRAIN_ORDER))


@pytest.mark.parametrize("key,value,error,match", [
    ("T", 2 ** 62, ValueError, r"x must have shape \(T, B, In\)"),
    ("T", 2 ** 64, ValueError, r"config\.T must be in \[1, 2\*\*63\)"),
    ("B", 0, ValueError, r"config\.B must be in"),
    ("H", 5, ValueError, r"config\.parameters must be the layout's size P = "),
    ("parameters", 7, ValueError, r"config\.parameters must be the layout's size P = "),
    ("depth", -2, ValueError, r"config\.depth must be in \[-1, 2\*\*63\)"),
    ("depth", 2 ** 63, ValueError, r"config\.depth"),
    ("k1", 0, ValueError, r"config\.k1"),
    ("k2", 1, ValueError, r"k1 <= k2"),
    ("k1", 2.0, TypeError, r"config\.k1 must be an integer"),
    ("windows", 3, ValueError, r"config\.windows must be the number of windows 4"),
    ("cell", "lstmm", ValueError, r"cell must be one of"),
    ("head_code", 4, ValueError, r"config\.head_code must be one of the C core's FRNN_HEAD_"),
    ("head_code", True, ValueError, r"config\.head_code must be one of"),
    ("clip_code", -1, ValueError, r"config\.clip_code must be one of the C core's FRNN_CLIP_"),
    ("optimizer_code", 5, ValueError, r"config\.optimizer_code must be one of the C core's"),
    ("optimizer_code", "adam", ValueError, r"config\.optimizer_code must be one of"),
])
def test_core_train_checks_the_configuration(key, value, error, match):
    config, arrays = core_train_args()
    setattr(config, key, value)
    with pytest.raises(error, match=match):
        core_train(config, arrays)


def test_core_train_checks_that_the_optimizer_state_it_uses_is_given():
    """uses_m / uses_v say which of m and v the optimizer reads: an empty m
    for Adam is refused by name, and an SGD without momentum needs none."""
    config, arrays = core_train_args(opt="sgd")
    config = with_changes(config, momentum=0.0, uses_m=False)
    empty = np.zeros(0)
    assert core_train(config, dict(arrays, m=empty, v=empty)) == (4, None)
    config, arrays = core_train_args(opt="adam")
    with pytest.raises(ValueError, match=r"m must have P \(optimizer 'adam'\)"):
        core_train(config, dict(arrays, m=empty))


@pytest.mark.parametrize("name,bad,match", [
    ("theta", lambda a: a[:-1], r"theta must have the layout's size P"),
    ("grad", lambda a: np.zeros(a.size + 1, a.dtype), r"grad must have"),
    ("m", lambda a: np.zeros(0, a.dtype), r"m must have P \(optimizer 'adam'\)"),
    ("v", lambda a: a[:3].copy(), r"v must have P"),
    ("x", lambda a: a[:, :1].copy(), r"x must have shape \(T, B, In\)"),
    ("target", lambda a: a[:-1], r"target must have shape \(T\*B\*O,\)"),
    ("target_idx", lambda a: np.zeros(3, np.int64), r"target_idx must be empty"),
    ("h", lambda a: a[:1].copy(), r"h must have shape \(B, H\)"),
    ("c", lambda a: np.zeros((2, 4), a.dtype), r"c must be empty for cell 'gru'"),
    ("losses", lambda a: a[:3], r"losses must have room for every window: 4"),
])
def test_core_train_checks_every_array(name, bad, match):
    config, arrays = core_train_args()
    arrays[name] = bad(arrays[name])
    with pytest.raises(ValueError, match=match):
        core_train(config, arrays)


@pytest.mark.parametrize("step,error", [(2 ** 63 - 1, ValueError), (2 ** 63, ValueError),
                                        (-1, ValueError), (1.5, TypeError)])
def test_core_train_checks_the_step_count(step, error):
    config, arrays = core_train_args()  # adam, 4 windows
    arrays["step"] = step
    with pytest.raises(error, match="step must be"):
        core_train(config, arrays)
    arrays["step"] = 2 ** 63 - 5
    assert core_train(config, arrays) == (2 ** 63 - 1, None)


def test_core_train_checks_indices_and_overlaps():
    config, arrays = core_train_args(head="softmax_ce", index_input=True)
    core_train(config, dict(arrays, theta=arrays["theta"].copy()))
    bad = dict(arrays, idx=arrays["idx"].copy())
    bad["idx"][3, 1] = config.In
    with pytest.raises(ValueError, match=r"idx must hold indices in \[0, In\) = \[0, 3\), got 3"):
        core_train(config, bad)
    bad = dict(arrays, target_idx=arrays["target_idx"].copy())
    bad["target_idx"][0] = -1
    with pytest.raises(ValueError, match=r"target_idx must hold indices in \[0, O\)"):
        core_train(config, bad)
    with pytest.raises(ValueError, match="theta must not overlap grad"):
        core_train(config, dict(arrays, grad=arrays["theta"]))
    with pytest.raises(ValueError, match="m must not overlap v"):
        core_train(config, dict(arrays, v=arrays["m"]))
    config, arrays = core_train_args(T=1, B=2, H=3, O=3, k1=1, k2=1)  # target: B * H values
    with pytest.raises(ValueError, match="h must not overlap target"):
        core_train(config, dict(arrays, h=arrays["target"].reshape(2, 3)))


def test_huge_depth_is_the_whole_sequence_in_every_layer():
    """TrainSpec(depth=2**61) used to reach frnn_train, whose (depth+1)*B
    age rows overflowed: SIGSEGV. depth >= T - 1 is the gradient of T - 1,
    through _core.train, the backend and the public API alike (the child
    process keeps a regression from taking the test session with it)."""
    proc = run_child("""
        import numpy as np
        from fastrnn import _core, training as tr
        from fastrnn.backends import c

        lay = tr.Layout("lstm", 3, 4, 2)
        x = np.random.default_rng(0).standard_normal((5, 2, 3))
        y = np.random.default_rng(1).standard_normal((5, 2, 2))

        def public(depth):
            spec = tr.TrainSpec(lay, head="mse", depth=depth)
            return tr.sequence_gradients(spec, lay.init(np.float64, seed=0), x, y, backend="c").grad

        def backend(depth):
            spec = tr.TrainSpec(lay, head="mse", depth=depth, optimizer=tr.SGD(lr=0.1))
            theta, grad, h, c_ = lay.init(np.float64, seed=0), np.zeros(lay.size), np.zeros((2, 4)), np.zeros((2, 4))
            out = c.train(spec.trainer_config(5, 2), theta, grad, np.zeros(0), np.zeros(0), 0, x,
                          y, h, c_, np.zeros(1))
            return theta, grad, out

        want = public(4)
        np.testing.assert_array_equal(public(2 ** 61), want)
        np.testing.assert_array_equal(public(10 ** 30), want)
        t1, g1, out1 = backend(4)
        t2, g2, out2 = backend(2 ** 61)
        assert out1 == out2 == (1, None), (out1, out2)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(g1, g2)
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.parametrize("k1,k2", [(2 ** 70, 2 ** 70), (7, 2 ** 64), (2 ** 40, 2 ** 41)])
def test_huge_k1_k2_are_the_whole_sequence(k1, k2):
    """k1, k2 >= T are TBPTT(T, T): one window, whatever their size."""
    lay = tr.Layout("rnn_tanh", 3, 4, 2)
    x = np.random.default_rng(0).standard_normal((7, 2, 3))
    y = np.random.default_rng(1).standard_normal((7, 2, 2))

    def grad(k1, k2):
        spec = tr.TrainSpec(lay, head="mse", k1=k1, k2=k2)
        return tr.sequence_gradients(spec, lay.init(np.float64, seed=0), x, y, backend="c")

    want, got = grad(7, 7), grad(k1, k2)
    np.testing.assert_array_equal(got.grad, want.grad)
    np.testing.assert_array_equal(got.losses, want.losses)


# ---- the C trainer stops at a non-finite window ---------------------------

def train_prefix(config, arrays, steps):
    """The reference: the same run over only the first `steps` steps (a
    multiple of k1, so its windows are the full run's first ones)."""
    cfg = with_changes(config, T=steps)
    B, O = arrays["h"].shape[0], config.O
    ref = {k: (a.copy() if isinstance(a, np.ndarray) else a) for k, a in arrays.items()}
    if config.index_input:
        ref["idx"] = ref["idx"][:steps].copy()
    else:
        ref["x"] = ref["x"][:steps].copy()
    if config.head == "softmax_ce":
        ref["target_idx"] = ref["target_idx"][:steps * B].copy()
    else:
        ref["target"] = ref["target"][:steps * B * O].copy()
    new_step, stopped = core_train(cfg, ref)
    assert stopped is None
    ref["step"] = new_step
    return ref


def assert_stopped_like_prefix(config, arrays, poison, window, opt_used=True):
    """Run with the poison applied; the run must stop at `window` and leave
    everything as the good windows alone leave it."""
    k1 = config.k1
    ref = train_prefix(config, arrays, window * k1) if window else None
    run = {k: (a.copy() if isinstance(a, np.ndarray) else a) for k, a in arrays.items()}
    poison(run)
    h_in, c_in = run["h"].copy(), run["c"].copy()
    new_step, stopped = core_train(config, run)
    assert stopped == window
    np.testing.assert_array_equal(run["h"], h_in)  # the state as passed in
    np.testing.assert_array_equal(run["c"], c_in)
    if ref is None:  # stopped at the first window: nothing applied
        np.testing.assert_array_equal(run["theta"], arrays["theta"])
        np.testing.assert_array_equal(run["m"], arrays["m"])
        np.testing.assert_array_equal(run["v"], arrays["v"])
        np.testing.assert_array_equal(run["grad"], np.zeros_like(run["grad"]))
        assert new_step == arrays["step"]
        return run
    assert new_step == ref["step"]
    for name in ("theta", "m", "v", "grad"):
        np.testing.assert_array_equal(run[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(run["losses"][:window], ref["losses"][:window])
    if not opt_used:
        assert new_step == arrays["step"]
    return run


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru", "gru_original"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", None])
def test_nan_target_stops_at_its_window(cell, dtype, opt, isa):
    T, k1, k2 = 12, 3, 5  # windows end at 3, 6, 9, 12; step 7's loss is window 2's
    config, arrays = core_train_args(cell=cell, dtype=dtype, T=T, k1=k1, k2=k2, opt=opt)
    arrays["step"] = 3 if opt else 0  # a run that continues: bias corrections differ
    B, O = arrays["h"].shape[0], config.O

    def poison(run):
        run["target"] = run["target"].copy()
        run["target"][(7 * B + 1) * O + 2] = np.nan

    run = assert_stopped_like_prefix(config, arrays, poison, 2, opt_used=opt is not None)
    assert np.isnan(run["losses"][2])


def test_stop_at_the_first_window_changes_nothing():
    config, arrays = core_train_args(cell="lstm", head="softmax_ce", index_input=True, opt="sgd")
    G, H, In = 4, config.H, config.In
    arrays["theta"][G * H * In + 3] = np.nan  # a weight of W_hh: step 0 already reads it
    run = assert_stopped_like_prefix(config, arrays, lambda run: None, 0)
    assert np.isnan(run["losses"][0])


def test_infinite_gradient_with_a_finite_loss_stops():
    """float32: the loss is summed in float64 and stays finite, the gradient
    2 (z - y) overflows float32: the gradient check, not the loss check,
    must catch it."""
    T, k1 = 8, 2
    config, arrays = core_train_args(cell="gru", dtype=np.float32, T=T, k1=k1, k2=k1, opt="rmsprop",
                                     clip="value")
    B, O = arrays["h"].shape[0], config.O

    def poison(run):
        run["target"] = run["target"].copy()
        run["target"][(5 * B) * O] = 3e38  # step 5: window 2

    run = assert_stopped_like_prefix(config, arrays, poison, 2)
    assert np.isfinite(run["losses"][2]) and run["losses"][2] > 1e70


def test_per_output_depth_and_many_to_one_stop_too():
    config, arrays = core_train_args(cell="rnn_relu", T=6, depth=2, opt="adagrad")
    B, O = arrays["h"].shape[0], config.O

    def poison_depth(run):
        run["target"] = run["target"].copy()
        run["target"][3 * B * O] = np.nan

    assert_stopped_like_prefix(config, arrays, poison_depth, 0)
    # many-to-one: only the last window has a loss; earlier ones pass
    config, arrays = core_train_args(cell="gru", T=6, k1=2, k2=2, opt="sgd")
    config.many_to_one = True
    arrays["target"] = arrays["target"][:B * O].copy()
    arrays["target"][1] = np.nan
    h_in = arrays["h"].copy()
    new_step, stopped = core_train(config, arrays)
    assert (new_step, stopped) == (0, 2)
    np.testing.assert_array_equal(arrays["h"], h_in)
    assert arrays["losses"][0] == arrays["losses"][1] == 0 and np.isnan(arrays["losses"][2])


@pytest.mark.parametrize("windows", ["depth", "one", "many_to_one"])
@pytest.mark.parametrize("index_input", [False, True], ids=["dense", "index"])
@pytest.mark.parametrize("clip", ["none", "value"])
def test_a_lone_gradient_window_that_stops_leaves_grad_zero(windows, index_input, clip):
    """Gradients only, from a single window (per-output depth, T <= k1, or
    many-to-one): the C core forms that window's gradient in grad itself, so
    when the window is refused grad must still end as the sum over no
    windows, zeros, although the head has already written into it. A
    non-zero grad on entry is overwritten, as by a run that completes."""
    T = 6
    shape = dict(depth=2) if windows == "depth" else dict(k1=T, k2=T) if windows == "one" \
        else dict(k1=2, k2=2)
    config, arrays = core_train_args(cell="rnn_tanh", T=T, opt=None, clip=clip,
                                     index_input=index_input, **shape)
    B, O = arrays["h"].shape[0], config.O
    arrays["grad"][:] = 7.0
    finished = {k: (a.copy() if isinstance(a, np.ndarray) else a) for k, a in arrays.items()}
    if windows == "many_to_one":
        config.many_to_one = True
        arrays["target"] = arrays["target"][:B * O].copy()
        finished["target"] = arrays["target"].copy()
        arrays["target"][1] = np.nan
    else:
        arrays["target"][(3 * B + 1) * O] = np.nan
    assert core_train(config, finished) == (0, None)
    assert np.all(finished["grad"] != 7.0) and np.all(np.isfinite(finished["grad"]))
    new_step, stopped = core_train(config, arrays)
    assert (new_step, stopped) == (0, 2 if windows == "many_to_one" else 0)
    np.testing.assert_array_equal(arrays["grad"], np.zeros_like(arrays["grad"]))


def test_finite_run_reports_no_stop_and_the_backend_returns_the_pair():
    config, arrays = core_train_args()
    assert core_train(config, arrays) == (4, None)
    lay = tr.Layout("gru", 3, 4, 3)
    spec = tr.TrainSpec(lay, head="mse", k1=2, k2=3, optimizer=tr.Adam(lr=0.01))
    theta = lay.init(np.float64, seed=0)
    x = np.ones((5, 1, 3))
    y = np.zeros((5, 1, 3))
    y[3, 0, 1] = np.nan
    out = c_backend.train(spec.trainer_config(5, 1), theta, np.zeros_like(theta),
                          np.zeros_like(theta), np.zeros_like(theta), 0, x, y, np.zeros((1, 4)),
                          None, np.zeros(3))
    assert out == (1, 1)


def test_core_stream_checks_its_arguments_by_the_package_rules():
    """_core.Stream called directly applies fastrnn._validate's rules (and
    messages), not a copy of its own."""
    w_ih, w_hh = np.zeros((9, 2)), np.zeros((9, 3))
    with pytest.raises(ValueError, match="cell must be one of"):
        _core.Stream("lstmm", w_ih, w_hh)
    with pytest.raises(ValueError, match="weight_hh must have shape"):
        _core.Stream("lstm", w_ih, w_hh)  # 9 rows: not 4 * 3
    with pytest.raises(TypeError, match="weight_ih has dtype float32"):
        _core.Stream("gru", w_ih.astype(np.float32), w_hh)
    with pytest.raises(ValueError, match="c0 is only meaningful for a cell with a cell state"):
        _core.Stream("gru", w_ih, w_hh, c0=np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(batch, hidden_size\)"):
        _core.Stream("gru", w_ih, w_hh, batch=2, h0=np.zeros((1, 3)))
    h0 = np.full((2, 3), 0.5)
    s = _core.Stream("gru", w_ih, w_hh, batch=2, h0=h0)
    np.testing.assert_array_equal(s.h, h0)
    assert s.h is not h0 and s.c is None and s.cell == "gru"


# ---- per-row lengths: _core's checks, and C's own --------------------------

@pytest.mark.parametrize("fn_name,names", [("forward", FORWARD), ("backward", BACKWARD)])
@pytest.mark.parametrize("lengths, words", [
    (np.array([1, 2, 3], np.int64), r"lengths must have shape \(2,\)"),
    (np.array([4, 1], np.int64), r"lengths\[0\] = 4 is outside \[0, T=3\]"),
    (np.array([1, -1], np.int64), r"lengths\[1\] = -1 is outside"),
])
def test_core_checks_lengths(fn_name, names, lengths, words):
    arrays = layer_arrays("lstm", np.float64)
    with pytest.raises(ValueError, match=words):
        getattr(_core, fn_name)("lstm", *(arrays[n] for n in names), lengths=lengths)
    with pytest.raises((TypeError, ValueError)):  # int32 is not the contract's int64
        getattr(_core, fn_name)("lstm", *(arrays[n] for n in names),
                                lengths=np.array([1, 2], np.int32))


def test_c_lengths_entry_points_refuse_lengths_out_of_range_untouched(lib):
    """Called directly, frnn_layer_forward_lengths checks every length before
    it writes anything (fastrnn.h: FRNN_ERR_UNSUPPORTED, outputs untouched)."""
    P = ctypes.POINTER
    dp, ip, desc = P(ctypes.c_double), P(ctypes.c_int64), P(CellDesc)
    fn = lib.frnn_layer_forward_lengths_f64
    fn.argtypes = [desc] + [ctypes.c_int64] * 3 + [ip] + [dp] * 11
    a = layer_arrays("gru", np.float64)
    d = CellDesc(4, 5)  # FRNN_CELL_GRU
    a["out"][...] = 7.0
    for bad in ([4, 1], [-1, 2]):
        lengths = np.array(bad, np.int64)
        rc = fn(ctypes.byref(d), 3, 2, 4, ptr(lengths),
                *(ptr(a[n]) for n in FORWARD))
        assert rc == FRNN_ERR_UNSUPPORTED
        assert np.all(a["out"] == 7.0)
    rc = fn(ctypes.byref(d), 3, 2, 4, ptr(np.array([3, 0], np.int64)),
            *(ptr(a[n]) for n in FORWARD))
    assert rc == FRNN_OK and np.all(a["out"][:, 1] == 0) and np.all(a["hn"][1] == a["h0"][1])


def test_core_train_checks_resets():
    """resets: (T, B) uint8 or None; a wrong shape or dtype never reaches C,
    and one that overlaps an output is refused."""
    config, arrays = core_train_args()  # T = 7, B = 2
    args = [arrays[k] for k in TRAIN_ORDER]
    with pytest.raises(ValueError, match=r"resets must have shape \(T, B\) = \(7, 2\), got \(2, 7\)"):
        _core.train(config, *args, resets=np.zeros((2, 7), np.uint8))
    with pytest.raises(ValueError, match="Buffer dtype mismatch"):
        _core.train(config, *args, resets=np.zeros((7, 2), np.int64))
    theta_bytes = arrays["theta"].view(np.uint8)[:14].reshape(7, 2)
    with pytest.raises(ValueError, match="theta must not overlap resets"):
        _core.train(config, *args, resets=theta_bytes)
    resets = np.zeros((7, 2), np.uint8)
    resets[3, 1] = 1
    step, stopped = _core.train(config, *args, resets=resets)
    assert stopped is None and step == config.windows
