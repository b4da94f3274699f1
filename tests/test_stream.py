"""Streams (fastrnn.stream, layer.stream()): stepping one input at a time.

A stream stepped T times must reproduce functional.forward over the same
sequence (every output row, h_n, c_n) and the PyTorch vectors, on every
backend and, for C, on every kernel table this CPU has - including a stream
whose weights were packed for one table while another became active.
"""
from __future__ import annotations

import gc
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn import stream as S

from conftest import TOLERANCE, random_problem, rel_err, vector_cell

HAVE_C = "c" in fastrnn.available_backends()
needs_c = pytest.mark.skipif(not HAVE_C, reason="no compiled core")
VECTOR_FILES = sorted((Path(__file__).parent / "vectors").glob("*.npz"))
PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
def _layer(cell, I, H, dtype, backend, seed=0, bias=True):
    spec = fastrnn.cells.get(cell)
    return getattr(fastrnn, spec.layer)(I, H, dtype=dtype, seed=seed, bias=bias, backend=backend,
                                        **spec.layer_arguments)


def _run(s, x):
    """Step s over x (T, B, I); the outputs of every step, copied."""
    return np.stack([s(np.ascontiguousarray(x[t])).copy() for t in range(x.shape[0])])


def _check(cell, dtype, got_out, s, want_out, want_h, want_c):
    errs = {"output": rel_err(got_out, want_out), "h_n": rel_err(s.h, want_h)}
    if cell == "lstm":
        errs["c_n"] = rel_err(s.c, want_c)
    else:
        assert s.c is None
    worst = max(errs, key=errs.get)
    assert errs[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: relative error {errs[worst]:.3e}"


# -- equivalence with forward ------------------------------------------------------------------

@pytest.mark.parametrize("cell", fastrnn.CELLS)
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("I,H", [(5, 7), (32, 32), (3, 20)])
def test_stream_matches_forward(cell, B, I, H, dtype, engine):
    p = random_problem(cell, 6, B, I, H, dtype, seed=B + H)
    layer = _layer(cell, I, H, dtype, engine, seed=I)
    want = layer.forward(p["x"], p["h0"], p["c0"]) if cell == "lstm" else \
        layer.forward(p["x"], p["h0"])
    s = layer.stream(B, p["h0"], p["c0"]) if cell == "lstm" else layer.stream(B, p["h0"])
    assert isinstance(s, S.Stream)
    assert s.backend == engine
    if engine == "c":
        assert isinstance(s, fastrnn._core.Stream) and s.isa == fastrnn.cpu_isa()
    else:
        assert isinstance(s, S.PyStream)
    assert (s.cell, s.batch, s.input_size, s.hidden_size, s.dtype) == (cell, B, I, H, dtype)
    got = _run(s, p["x"])
    _check(cell, dtype, got, s, want.output, want.h_n, want.c_n)


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_stream_from_zero_state_without_bias(cell, dtype, backend):
    p = random_problem(cell, 5, 2, 4, 6, dtype, seed=3, bias=False)
    want = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], backend=backend)
    s = S.create(cell, p["weight_ih"], p["weight_hh"], batch=2, backend=backend)
    np.testing.assert_array_equal(s.h, 0)
    _check(cell, dtype, _run(s, p["x"]), s, want.output, want.h_n, want.c_n)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_stream_matches_torch_vectors(path, engine, dtype):
    with np.load(path) as z:
        v = {k: z[k] for k in z.files}
    cell = str(v["cell"])
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    x = cast("x")
    s = S.create(vector_cell(v), *(cast(k) for k in PARAMS), batch=x.shape[1], h0=cast("h0"),
                 c0=cast("c0"), backend=engine)
    got = _run(s, x)
    _check(cell, dtype, got, s, v["output"], v["h_n"], v.get("c_n"))


# -- the kernel table a stream was packed for ----------------------------------------------------

def _c_isas():
    from fastrnn.backends import c
    before, found = c.active_isa(), []
    for isa in ("baseline", "avx2", "avx512"):
        if c.select_isa(isa) == isa:
            found.append(isa)
    c.select_isa(before)
    return found


@needs_c
@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_stream_survives_isa_switch(cell, dtype):
    """Weights packed for one kernel table stay correct after select_isa picks
    another (the stream keeps its own table); every pair of tables."""
    from fastrnn.backends import c
    isas = _c_isas()
    before = c.active_isa()
    p = random_problem(cell, 7, 3, 9, 21, dtype, seed=11)
    want = F.forward(cell, p["x"], *(p[k] for k in PARAMS), p["h0"], p["c0"], backend="numpy")
    try:
        for packed in isas:
            for running in isas:
                assert c.select_isa(packed) == packed
                s = S.create(cell, *(p[k] for k in PARAMS), batch=3, h0=p["h0"], c0=p["c0"],
                             backend="c")
                assert s.isa == packed
                c.select_isa(running)
                got = _run(s, p["x"])
                _check(cell, dtype, got, s, want.output, want.h_n, want.c_n)
    finally:
        c.select_isa(before)
    assert c.active_isa() == before


# -- state, identity, copies ------------------------------------------------------------------------

def test_returns_the_same_state_array(backend, dtype):
    lstm = fastrnn.LSTM(4, 3, dtype=dtype, seed=1, backend=backend)
    s = lstm.stream(2)
    x = np.ones((2, 4), dtype)
    h1 = s(x)
    assert h1 is s.h and s.step(x) is h1 and s(x) is s.h
    want = lstm.forward(np.ones((3, 2, 4), dtype))
    assert rel_err(s.h, want.h_n) <= TOLERANCE[dtype]
    assert rel_err(s.c, want.c_n) <= TOLERANCE[dtype]
    # writable in place, and reset
    c_obj = s.c
    s.h[...] = 0
    s.c[...] = 0
    np.testing.assert_allclose(s(x), lstm.step(x)[0], rtol=TOLERANCE[dtype])
    s.reset()
    assert s.h is h1 and s.c is c_obj
    np.testing.assert_array_equal(s.h, 0)
    np.testing.assert_array_equal(s.c, 0)
    h0 = np.full((2, 3), 0.25, dtype)
    s.reset(h0, -h0)
    np.testing.assert_array_equal(s.h, h0)
    np.testing.assert_array_equal(s.c, -h0)
    s.h = 2 * h0  # assignment copies into the same array
    assert s.h is h1
    np.testing.assert_array_equal(h1, 2 * h0)


def test_weights_are_copied(backend, dtype):
    gru = fastrnn.GRU(3, 4, dtype=dtype, seed=2, backend=backend)
    x = np.random.default_rng(0).standard_normal((5, 1, 3)).astype(dtype)
    s = gru.stream()
    gru.weight_hh[...] = 0
    gru.weight_ih *= 3
    gru.bias_hh[...] = 1
    got = _run(s, x)
    ref = fastrnn.GRU(3, 4, dtype=dtype, seed=2, backend=backend)(x)
    assert rel_err(got, ref.output) <= TOLERANCE[dtype]


def test_input_may_be_the_state(backend, dtype):
    """x overlapping the state (feeding h back in) is read before h changes."""
    rnn = fastrnn.RNN(5, 5, dtype=dtype, seed=4, backend=backend)
    s1, s2 = rnn.stream(2, np.full((2, 5), 0.3, dtype)), rnn.stream(2, np.full((2, 5), 0.3, dtype))
    for _ in range(4):
        s1(s1.h)
        s2(s2.h.copy())
    np.testing.assert_array_equal(s1.h, s2.h)


@needs_c
def test_c_stream_accepts_other_buffers_of_the_right_type():
    lstm = fastrnn.LSTM(3, 2, dtype=np.float64, seed=0, backend="c")
    a, b = lstm.stream(), lstm.stream()
    x = [[0.5, -1.0, 2.0]]
    np.testing.assert_array_equal(a(x), b(np.array(x)))                  # a list, as float64
    np.testing.assert_array_equal(a(memoryview(np.array(x))), b(np.array(x)))
    raw = np.zeros(8 * 3 + 1, np.uint8)[1:].view(np.float64).reshape(1, 3)  # unaligned
    raw[...] = x
    np.testing.assert_array_equal(a(raw), b(np.array(x)))


# -- bad arguments --------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_bad_x(cell, backend, dtype):
    s = _layer(cell, 4, 3, dtype, backend).stream(2)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match=r"x must have shape \(batch, input_size\) = \(2, 4\), "
                                         r"got \(1, 4\)"):
        s(np.zeros((1, 4), dtype))
    with pytest.raises(ValueError, match=r"x must have shape .*got \(2, 4, 1\)"):
        s(np.zeros((2, 4, 1), dtype))
    with pytest.raises(ValueError, match=r"x must have shape .*got \(8,\)"):
        s.step(np.zeros(8, dtype))
    with pytest.raises(TypeError, match=f"x must have dtype {np.dtype(dtype)}.*got {np.dtype(other)}"):
        s(np.zeros((2, 4), other))
    with pytest.raises(TypeError, match="x must have dtype .*got int64"):
        s(np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        s(np.zeros((4, 2), dtype).T)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        s(np.zeros((2, 8), dtype)[:, ::2])
    with pytest.raises((TypeError, ValueError), match="x must"):
        s(None)
    # nothing above touched the state
    np.testing.assert_array_equal(s.h, 0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bad_creation_arguments(cell, backend, dtype):
    layer = _layer(cell, 4, 3, dtype, backend)
    for batch in (0, -2):
        with pytest.raises(ValueError, match="batch must be a positive integer"):
            layer.stream(batch)
    for batch in (1.5, "2", True):
        with pytest.raises(TypeError, match="batch must be a positive integer"):
            layer.stream(batch)
    with pytest.raises(ValueError, match=r"h0 must have shape \(batch, hidden_size\) = \(2, 3\)"):
        layer.stream(2, np.zeros((1, 3), dtype))
    with pytest.raises(ValueError, match="h0 must be a 2-D array"):
        layer.stream(1, np.zeros(3, dtype))
    with pytest.raises(TypeError, match="h0 has dtype"):
        layer.stream(1, np.zeros((1, 3), np.float64 if dtype == np.float32 else np.float32))
    if cell == "lstm":
        with pytest.raises(ValueError, match=r"c0 must have shape"):
            layer.stream(2, None, np.zeros((2, 4), dtype))
    else:
        with pytest.raises(ValueError, match="c0 is only meaningful"):
            S.create(cell, *layer.parameters().values(), c0=np.zeros((1, 3), dtype),
                     backend=backend)
    s = layer.stream(2)
    with pytest.raises(ValueError, match=r"h must have shape"):
        s.h = np.zeros((3, 3), dtype)
    with pytest.raises(ValueError, match=r"h must have shape"):
        s.reset(np.zeros((2, 2), dtype))
    if cell != "lstm":
        with pytest.raises(ValueError, match="c is only meaningful"):
            s.reset(c=np.zeros((2, 3), dtype))
    with pytest.raises(ValueError, match="cell must be one of"):
        S.create("lstmx", *layer.parameters().values(), backend=backend)
    with pytest.raises(ValueError, match="weight_hh must have shape"):
        S.create("gru" if cell == "lstm" else "lstm", *layer.parameters().values(),
                 backend=backend)


@needs_c
def test_c_stream_is_not_picklable():
    s = fastrnn.GRU(2, 2, seed=0, backend="c").stream()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)


# -- lifetime and threads ---------------------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@needs_c
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_streams_do_not_leak():
    # ~70 KB of packed weights per stream: 10 000 leaked streams would be ~700 MB
    lstm = fastrnn.LSTM(32, 64, seed=0, backend="c")
    x = np.ones((1, 32), np.float32)
    for _ in range(500):
        lstm.stream()(x)
    gc.collect()
    before = _rss_bytes()
    for _ in range(10_000):
        s = lstm.stream()
        s(x)
        del s
    gc.collect()
    grown = _rss_bytes() - before
    assert grown < 8 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over 10 000 streams"


@needs_c
def test_one_stream_per_thread_runs_concurrently():
    lstm = fastrnn.LSTM(8, 16, seed=0, backend="c")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((200, 2, 8)).astype(np.float32) for _ in range(4)]
    want = [lstm(x).output for x in xs]
    got = [None] * 4

    def work(i):
        got[i] = _run(lstm.stream(2), xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        assert rel_err(g, w) <= TOLERANCE[np.dtype(np.float32)]


@needs_c
def test_one_stream_shared_by_two_threads_does_not_crash():
    """Not supported (results are unspecified), but it must not crash: a step
    that finds the stream busy raises RuntimeError."""
    s = fastrnn.GRU(64, 64, seed=0, backend="c").stream(4)
    x = np.ones((4, 64), np.float32)
    errors = []

    def work():
        for _ in range(3000):
            try:
                s(x)
            except RuntimeError as exc:
                assert "not thread-safe" in str(exc)
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.all(np.isfinite(s.h))
