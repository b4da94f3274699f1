"""Subnormals: the C kernels flush them to zero for the duration of a call.

What is checked (fastrnn/subnormals.py, csrc/runtime/fpenv.c):
* the calling thread's control word (x86 MXCSR / aarch64 FPCR) is the
  caller's again after every kind of call: forward, backward, a stream step,
  the trainer (also when it stops at a non-finite window) and an optimizer
  step, whatever the caller had set (flush bits on or off, status flags);
* the drop-ins' gradients-only trainer flushes too (a decaying state is 0
  with the flush and its exact subnormal value without);
* a state that decays into the subnormal range is 0 from the first step
  whose exact value is below the smallest normal number, on every ISA path
  and with two threads forced (the pool's workers take the caller's mode:
  were they computing with subnormals, their units would not be 0), and
  keeps its exact IEEE value with the flush off (and on the numba / NumPy
  backends, which never flush);
* threaded results stay bitwise the one-thread results on such a problem.

The expected values are hand-derived: an Elman ReLU layer with
W_hh = I / 2, W_ih = 0, no bias and x = 0 gives h_t = h_0 / 2^(t+1)
exactly (halving a power of two is exact, down to the least subnormal
2^-149 / 2^-1074; half of that is a tie that rounds to even, 0).
Not here: the speed (fastrnn bench subnormal).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn import threads
from fastrnn import training as tr

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(),
                                reason="the C backend is not built")

core = pytest.importorskip("fastrnn._core")
needs_flush = pytest.mark.skipif(not core.can_flush_subnormals(),
                                 reason="this build cannot set flush-to-zero (not x86 / aarch64)")

# x86 MXCSR FTZ | DAZ and its status flags; aarch64 FPCR FZ (no flags there).
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
FLUSH_BITS = 0x8040 if X86 else 1 << 24
STATUS_BITS = 0x3F if X86 else 0
# The exponent of h_0: the state crosses into the subnormals after a few steps
# and reaches 0 (in IEEE arithmetic) within T = 40.
START_EXPONENT = {np.float32: -120, np.float64: -1016}
T_DECAY = 40


@pytest.fixture
def flush_policy():
    """Restore the flush policy after a test."""
    before = core.get_flush_subnormals()
    yield
    core.set_flush_subnormals(before)


def _decaying_layer(dtype, B=3, H=8):
    """The halving ReLU layer and its x = 0 input (see the module docstring)."""
    x = np.zeros((T_DECAY, B, 2), dtype)
    w_ih = np.zeros((H, 2), dtype)
    w_hh = (0.5 * np.eye(H)).astype(dtype)
    # rows start at 2^e, 2^(e+1), 2^(e+2): each crosses at its own step
    e = START_EXPONENT[dtype]
    h0 = np.ldexp(np.ones((B, H)), e + np.arange(B)[:, None]).astype(dtype)
    return x, w_ih, w_hh, h0


def _expected(dtype, h0, flushed):
    """h_t = h_0 / 2^(t+1), (T, B, H): exact powers of two, 0 below the least
    subnormal; with the flush, 0 from the first value below the smallest normal."""
    t = np.arange(T_DECAY)[:, None, None]
    exponent = np.log2(h0.astype(np.float64))[None] - (t + 1)
    info = np.finfo(dtype)
    least = np.log2(float(info.tiny)) if flushed else np.log2(float(info.smallest_subnormal))
    want = np.where(exponent >= least, np.exp2(np.maximum(exponent, -1074.0)), 0.0)
    return want.astype(dtype)


def _forward(dtype, backend="c", B=3, H=8):
    x, w_ih, w_hh, h0 = _decaying_layer(dtype, B, H)
    res = F.forward("rnn_relu", x, w_ih, w_hh, h0=h0, backend=backend)
    return res.output, h0


@needs_flush
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_decaying_state_is_zero_below_the_smallest_normal(isa, dtype, flush_policy):
    core.set_flush_subnormals(True)
    out, h0 = _forward(dtype)
    want = _expected(dtype, h0, flushed=True)
    np.testing.assert_array_equal(out, want)
    # the problem does reach the subnormals: IEEE arithmetic gives some
    assert np.any((_expected(dtype, h0, flushed=False) != 0) & (want == 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_without_the_flush_the_state_keeps_its_subnormal_values(engine, dtype, flush_policy):
    core.set_flush_subnormals(False)
    out, h0 = _forward(dtype, backend=engine)
    want = _expected(dtype, h0, flushed=False)
    np.testing.assert_array_equal(out, want)
    assert np.any((want != 0) & (np.abs(want) < np.finfo(dtype).tiny))


@needs_flush
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_workers_take_the_callers_mode(isa, dtype, flush_policy, thread_settings):
    """Two threads forced on a layer wide enough for many blocks per step,
    the policy switched off, on and off again: every unit, whichever thread
    computed it, follows the caller's mode of that call. (Workers inherit
    the mode of the thread that starts them, so only a switch in both
    directions shows a worker that keeps a mode of its own.)"""
    B, H = 4, 192
    x, w_ih, w_hh, h0 = _decaying_layer(dtype, B, H)
    fastrnn.set_num_threads(2)
    threads._set_min_flops(0.0)
    for flush in (False, True, False, True):
        core.set_flush_subnormals(flush)
        out = F.forward("rnn_relu", x, w_ih, w_hh, h0=h0, backend="c").output
        np.testing.assert_array_equal(out, _expected(dtype, h0, flushed=flush),
                                      err_msg=f"flush={flush}")


@needs_flush
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_stay_bitwise_with_the_flush(isa, dtype, flush_policy, thread_settings):
    """Forward and backward of the decaying layer are bitwise the one-thread
    results with two threads (and differ from the IEEE results: the flushed
    steps pass no gradient through the ReLU)."""
    B, H = 4, 192
    x, w_ih, w_hh, h0 = _decaying_layer(dtype, B, H)
    d_out = np.random.default_rng(0).standard_normal((T_DECAY, B, H)).astype(dtype)
    runs = []
    for n, flush in ((1, False), (1, True), (2, True)):
        core.set_flush_subnormals(flush)
        fastrnn.set_num_threads(n)
        threads._set_min_flops(0.0 if n > 1 else -1.0)
        res = F.forward("rnn_relu", x, w_ih, w_hh, h0=h0, backend="c", training=True)
        grads = F.backward(res, d_out)
        runs.append((res.output, grads.weight_hh, grads.h0))
    ieee, runs = runs[0], runs[1:]
    assert np.any(ieee[1] != runs[0][1])
    for one, two in zip(*runs):
        assert one.tobytes() == two.tobytes()


@needs_flush
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("flush", [True, False], ids=["flush", "keep"])
def test_the_drop_ins_follow_the_policy(dtype, flush, flush_policy):
    """The drop-ins' gradients-only trainer (_core.TrainGradients) is a
    compute call like the others. min-char-rnn's model with W_xh = 0,
    W_hh = I / 2 and no biases halves a tiny state each step, and tanh(x)
    rounds to x there (x^3 / 3 is far below half an ulp of x), so
    h_T = h_0 / 2^T exactly: a subnormal without the flush, 0 with it."""
    from fastrnn import dropin
    H, V, T = 8, 5, 25
    h0 = np.full((H, 1), np.ldexp(1.0, START_EXPONENT[dtype]), dtype)
    zeros = np.zeros
    core.set_flush_subnormals(flush)
    h_last = dropin.min_char_rnn_loss([0] * T, [1] * T, h0, zeros((H, V), dtype),
                                      (0.5 * np.eye(H)).astype(dtype), zeros((V, H), dtype),
                                      zeros((H, 1), dtype), zeros((V, 1), dtype),
                                      backend="c")[-1]
    exact = np.ldexp(1.0, START_EXPONENT[dtype] - T)
    assert 0 < exact < np.finfo(dtype).tiny  # the problem does reach the subnormals
    np.testing.assert_array_equal(h_last, np.full((H, 1), 0.0 if flush else exact, dtype))


def _calls(dtype):
    """One of each kind of call the C backend makes (each returns nothing)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 3)).astype(dtype)
    w_ih = rng.uniform(-0.5, 0.5, (16, 3)).astype(dtype)
    w_hh = rng.uniform(-0.5, 0.5, (16, 4)).astype(dtype)

    def layer():
        res = F.forward("lstm", x, w_ih, w_hh, backend="c", training=True,
                        lengths=[5, 3])
        F.backward(res, np.ones_like(res.output))

    def stream():
        s = fastrnn.LSTM(3, 4, dtype=dtype, seed=0, backend="c").stream(batch=2)
        s.step(x[0])

    lay = tr.Layout("gru", 3, 4, 3)
    y = rng.integers(0, 3, (6, 2))
    xs = rng.standard_normal((6, 2, 3)).astype(dtype)

    def trainer():
        theta = lay.init(dtype, seed=0)
        tr.fit_sequence(tr.TrainSpec(lay, k1=3, optimizer=tr.Adam(1e-2)), theta, xs, y,
                        backend="c")

    def trainer_stopped():  # an error exit of the C trainer: a non-finite window
        theta = lay.init(dtype, seed=0)
        bad = xs.copy()
        bad[4, 0, 0] = np.nan
        with pytest.raises(tr.TrainingDivergedError):
            tr.fit_sequence(tr.TrainSpec(lay, k1=3, optimizer=tr.SGD(0.1)), theta, bad, y,
                            backend="c")

    def optimizer():
        p = rng.standard_normal(10).astype(dtype)
        g = rng.standard_normal(10).astype(dtype)
        core._adam_step(p, g, np.zeros_like(p), np.zeros_like(p), None, 1, 1e-3, 0.9, 0.999,
                        1e-8, 0.0, False, False)

    return {"layer": layer, "stream": stream, "trainer": trainer,
            "trainer_stopped": trainer_stopped, "optimizer": optimizer}


@pytest.mark.parametrize("kind", ["layer", "stream", "trainer", "trainer_stopped",
                                  "optimizer"])
@pytest.mark.parametrize("caller_flush", [False, True], ids=["caller-ieee", "caller-flushes"])
@pytest.mark.parametrize("policy", [True, False], ids=["flush", "keep"])
def test_the_callers_control_word_is_restored(kind, caller_flush, policy, flush_policy):
    core.set_flush_subnormals(policy)
    call = _calls(np.float32)[kind]
    original = core._fp_control_word()
    word = (original & ~FLUSH_BITS) | (FLUSH_BITS if caller_flush else 0)
    # Only the control bits are compared: the status flags (x86) are also
    # raised and cleared by the NumPy work around the C call.
    control = ~STATUS_BITS
    try:
        core._set_fp_control_word(word)
        assert core._fp_control_word() & control == word & control
        call()
        after = core._fp_control_word()
    finally:
        core._set_fp_control_word(original)
    assert after & control == word & control, (
        f"control word {after:#x} after the call, {word:#x} before")


def test_the_policy_setting_and_its_checks(flush_policy):
    fastrnn.set_flush_subnormals(False)
    assert fastrnn.get_flush_subnormals() is False
    fastrnn.set_flush_subnormals(True)
    assert fastrnn.get_flush_subnormals() is core.can_flush_subnormals()
    with pytest.raises(TypeError, match="flush must be a bool, got 1"):
        fastrnn.set_flush_subnormals(1)
    with pytest.raises(ValueError, match="only in the flush and status bits"):
        core._set_fp_control_word(core._fp_control_word() ^ 0x6000)  # the rounding mode


@pytest.mark.parametrize("value, want, warns", [("keep", False, False), ("flush", True, False),
                                                ("sometimes", True, True)])
def test_the_environment_variable(value, want, warns):
    code = "import fastrnn; print(fastrnn._core.get_flush_subnormals())"
    env = dict(os.environ, FASTRNN_SUBNORMALS=value, PYTHONWARNINGS="always")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == str(want)
    assert ("FASTRNN_SUBNORMALS must be one of ('flush', 'keep'), got 'sometimes'"
            in run.stderr) is warns


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_the_benchmarks_decaying_problem_stays_subnormal(cell):
    """fastrnn bench subnormal's decaying problem does what its row claims:
    with IEEE arithmetic the whole forward output is subnormal (the timing
    itself is not tested)."""
    from fastrnn.bench import subnormal
    from fastrnn.bench.timing import Shape
    shape = subnormal.DEFAULT_SHAPE
    arrays = subnormal.decaying_problem(cell, Shape("smaller", 4, shape.T, 64, 64))
    assert subnormal.subnormal_fraction(cell, arrays) > 0.99


def test_the_benchmark_runs_and_restores_the_policy(flush_policy):
    from fastrnn.bench import subnormal
    from fastrnn.bench.timing import Shape
    core.set_flush_subnormals(True)
    shape = Shape("subnormal", 2, 8, 4, 8)
    rows = subnormal.run(["rnn_tanh"], shape, repeat=1)
    assert [(r.problem, r.flush) for r in rows] == [("normal", True), ("normal", False),
                                                    ("decaying", True), ("decaying", False)]
    assert all(r.median_s > 0 for r in rows) and rows[0].vs_normal == 1.0
    assert core.get_flush_subnormals() is True
    assert len(subnormal.format_rows(rows, shape)) == 2 + len(rows)
