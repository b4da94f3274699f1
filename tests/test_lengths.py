"""Per-row sequence lengths for one layer (the "lengths" feature).

Replays the PyTorch packed-path vectors of tests/vectors/lengths/ (written
by generate_length_vectors.py) on every backend whose registry features
include "lengths", in both dtypes; checks that lengths all equal to T change
nothing (bitwise), that a row's results do not depend on the other rows'
lengths, float64 finite differences with a row of length 0, the empty
problems, and the errors for bad lengths and for backends without the
feature. Not here: stacked / bidirectional layers (the layer classes).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn.backends import BACKENDS, BackendFeatureError, features

from conftest import TOLERANCE, rel_err, vector_cell
from test_vectors import vector_errors

VECTOR_DIR = Path(__file__).parent / "vectors" / "lengths"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))
GRAD_NAMES = ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")
LENGTH_BACKENDS = [b for b in BACKENDS if "lengths" in features(b)]


def load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(params=[pytest.param(b, id=f"lengths-{b}") for b in LENGTH_BACKENDS])
def length_backend(request):
    if request.param not in fastrnn.available_backends():
        pytest.skip(f"backend {request.param} not available")
    return request.param


def random_layer(cell, T, B, I, H, dtype=np.float64, seed=0, with_state=True):
    rng = np.random.default_rng(seed)
    G = fastrnn.cells.get(cell).gates
    k = 1 / np.sqrt(H)
    p = {"x": rng.standard_normal((T, B, I)),
         "weight_ih": rng.uniform(-k, k, (G * H, I)), "weight_hh": rng.uniform(-k, k, (G * H, H)),
         "bias_ih": rng.uniform(-k, k, G * H), "bias_hh": rng.uniform(-k, k, G * H),
         "h0": rng.normal(0, 0.5, (B, H)) if with_state else None,
         "c0": rng.normal(0, 0.5, (B, H)) if with_state and cell == "lstm" else None,
         "d_output": rng.standard_normal((T, B, H)), "d_h_n": rng.standard_normal((B, H)),
         "d_c_n": rng.standard_normal((B, H)) if cell == "lstm" else None}
    return {k: None if a is None else a.astype(dtype) for k, a in p.items()}


def run(cell, p, lengths, backend):
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True, lengths=lengths)
    return res, F.backward(res, p["d_output"], p["d_h_n"], p["d_c_n"])


def results(cell, res, grads):
    """Every array a forward + backward returns, by name."""
    out = {"output": res.output, "h_n": res.h_n, "ws": res.saved.workspace}
    if cell == "lstm":
        out.update(c_n=res.c_n, grad_c0=grads.c0)
    out.update({f"grad_{n}": getattr(grads, n) for n in GRAD_NAMES[:-1]})
    return out


def test_vector_files_cover_every_cell_and_edge():
    assert len(VECTOR_FILES) >= 10
    by_cell = {}
    for path in VECTOR_FILES:
        v = load(path)
        by_cell.setdefault(str(v["cell"]), []).append(v)
    assert set(by_cell) == set(fastrnn.CELLS)
    for cell, vs in by_cell.items():
        assert any("h0" in v for v in vs) and any("h0" not in v for v in vs), cell
        for v in vs:
            lengths, T, B = v["lengths"], v["x"].shape[0], v["x"].shape[1]
            assert B >= 4 and 0 in lengths and T in lengths, cell
            assert np.any(np.diff(lengths) > 0), f"{cell}: lengths should be unsorted"


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_lengths_match_torch_packed_path(path, length_backend, dtype):
    v = load(path)
    cell = str(v["cell"])
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    res = F.forward(vector_cell(v), cast("x"), cast("weight_ih"), cast("weight_hh"),
                    cast("bias_ih"), cast("bias_hh"), cast("h0"), cast("c0"),
                    backend=length_backend, training=True, lengths=v["lengths"])
    grads = F.backward(res, cast("d_output"), cast("d_h_n"), cast("d_c_n"))
    errors = vector_errors(v, res, grads)
    print(f"\n{path.stem} [{length_backend}/{dtype.name}] "
          + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[dtype], f"{worst}: relative error {errors[worst]:.3e}"
    # the semantics, exactly: zeros past each length, the workspace finite
    T = v["x"].shape[0]
    past = np.arange(T)[:, None] >= v["lengths"][None, :]
    assert not res.output[past].any() and not grads.x[past].any()
    assert np.all(np.isfinite(res.saved.workspace))


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_lengths_all_T_are_bitwise_lengths_none(cell, length_backend, dtype):
    T, B = 5, 4
    p = random_layer(cell, T, B, 3, 4, dtype, seed=1)
    plain = results(cell, *run(cell, p, None, length_backend))
    full = results(cell, *run(cell, p, [T] * B, length_backend))
    for name, want in plain.items():
        assert np.array_equal(full[name], want), name


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_a_row_does_not_depend_on_the_other_rows_lengths(cell, length_backend):
    T, B, row = 7, 5, 2
    p = random_layer(cell, T, B, 3, 4, seed=2)
    first = run(cell, p, [7, 1, 4, 0, 6], length_backend)
    second = run(cell, p, [2, 7, 4, 5, 0], length_backend)  # row 2 keeps its length 4
    (res_a, g_a), (res_b, g_b) = first, second
    pairs = {"output": (res_a.output[:, row], res_b.output[:, row]),
             "h_n": (res_a.h_n[row], res_b.h_n[row]), "grad_x": (g_a.x[:, row], g_b.x[:, row]),
             "grad_h0": (g_a.h0[row], g_b.h0[row])}
    if cell == "lstm":
        pairs.update(c_n=(res_a.c_n[row], res_b.c_n[row]), grad_c0=(g_a.c0[row], g_b.c0[row]))
    for name, (a, b) in pairs.items():
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14, err_msg=name)
    # and row 2 alone (a batch of one, its first 4 steps, no lengths) gives the same
    alone = F.forward(cell, p["x"][:4, row:row + 1], p["weight_ih"], p["weight_hh"],
                      p["bias_ih"], p["bias_hh"], p["h0"][row:row + 1],
                      None if p["c0"] is None else p["c0"][row:row + 1], backend=length_backend)
    np.testing.assert_allclose(res_a.h_n[row], alone.h_n[0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(res_a.output[:4, row], alone.output[:, 0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_finite_differences_with_a_row_of_length_zero(cell, length_backend):
    T, B, I, H = 4, 4, 2, 3
    lengths = [2, 0, 4, 1]
    p = random_layer(cell, T, B, I, H, seed=3)
    _, grads = run(cell, p, lengths, length_backend)

    def loss(q):
        res = F.forward(cell, q["x"], q["weight_ih"], q["weight_hh"], q["bias_ih"], q["bias_hh"],
                        q["h0"], q["c0"], backend=length_backend, lengths=lengths)
        total = np.sum(res.output * p["d_output"]) + np.sum(res.h_n * p["d_h_n"])
        return total + (np.sum(res.c_n * p["d_c_n"]) if cell == "lstm" else 0.0)

    names = ["x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0"] + (
        ["c0"] if cell == "lstm" else [])
    eps = 1e-6
    for name in names:
        analytic = getattr(grads, name)
        numeric = np.empty_like(analytic)
        for idx in np.ndindex(analytic.shape):
            plus = dict(p, **{name: p[name].copy()})
            minus = dict(p, **{name: p[name].copy()})
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        assert rel_err(analytic, numeric) <= 1e-7, name
    # the row of length 0: d_h_n straight to h0, nothing into x
    assert np.array_equal(grads.h0[1], p["d_h_n"][1])
    if cell == "lstm":
        assert np.array_equal(grads.c0[1], p["d_c_n"][1])
    assert not grads.x[:, 1].any()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_length_zero_rows_and_all_zero(cell, length_backend):
    T, B = 3, 4
    p = random_layer(cell, T, B, 2, 3, seed=4)
    res, grads = run(cell, p, [0, 0, 0, 0], length_backend)
    assert not res.output.any()
    assert np.array_equal(res.h_n, p["h0"]) and np.array_equal(grads.h0, p["d_h_n"])
    for g in (grads.x, grads.weight_ih, grads.weight_hh, grads.bias_ih, grads.bias_hh):
        assert not g.any()
    if cell == "lstm":
        assert np.array_equal(res.c_n, p["c0"]) and np.array_equal(grads.c0, p["d_c_n"])


@pytest.mark.parametrize("T, B", [(0, 3), (4, 0)])
def test_empty_problems_with_lengths(T, B, length_backend):
    p = random_layer("lstm", T, B, 2, 3, seed=5)
    res, grads = run("lstm", p, np.zeros(B, np.int64), length_backend)
    assert res.output.shape == (T, B, 3) and np.array_equal(res.h_n, p["h0"])
    assert np.array_equal(grads.h0, p["d_h_n"]) and not grads.weight_hh.any()


def test_lengths_are_copied_and_may_be_any_integer_type(length_backend):
    p = random_layer("gru", 5, 4, 2, 3, seed=6)
    lengths = np.array([5, 2, 0, 3], np.uint8)
    res_a, g_a = run("gru", p, lengths, length_backend)
    lengths[:] = 5  # changing the caller's array after forward must not reach backward
    g_again = F.backward(res_a, p["d_output"], p["d_h_n"])
    assert np.array_equal(g_again.x, g_a.x)
    res_b, g_b = run("gru", p, [5, 2, 0, 3], length_backend)
    assert np.array_equal(res_b.output, res_a.output) and np.array_equal(g_b.weight_hh,
                                                                         g_a.weight_hh)


@pytest.mark.parametrize("bad, error, words", [
    ([1, 2, 3], ValueError, "shape (batch,) = (4,)"),
    ([[1, 2, 3, 4]], ValueError, "shape (batch,) = (4,)"),
    (3, ValueError, "shape (batch,) = (4,)"),
    ([1, 2, -1, 4], ValueError, "[0, T] = [0, 5]"),
    ([1, 2, 6, 4], ValueError, "lengths[2] = 6"),
    ([1.0, 2.0, 3.0, 4.0], TypeError, "integer"),
    (np.array([1.5, 2, 3, 4]), TypeError, "never rounded"),
    ([True, False, True, True], TypeError, "integer"),
    (["1", "2", "3", "4"], TypeError, "integer"),
])
def test_bad_lengths_are_clear_errors(bad, error, words):
    p = random_layer("rnn_tanh", 5, 4, 2, 3)
    with pytest.raises(error, match="lengths") as info:
        F.forward("rnn_tanh", p["x"], p["weight_ih"], p["weight_hh"], backend="numpy",
                  lengths=bad)
    assert words in str(info.value)


def test_backends_without_the_feature_refuse_lengths(monkeypatch):
    """A backend whose registry entry lacks "lengths" is never handed them:
    naming it is a BackendFeatureError for forward and for backward. (Every
    backend has the feature today, so one entry is stripped of it here.)"""
    from fastrnn import backends
    lacking = "numpy"
    entry = backends.REGISTRY[lacking]
    p = random_layer("lstm", 3, 4, 2, 3)
    res = F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], backend=lacking,
                    training=True, lengths=[1, 2, 3, 0])
    monkeypatch.setitem(backends.REGISTRY, lacking, backends.Backend(
        entry.name, entry.module, entry.trainer, entry.features - {"lengths"}))
    with pytest.raises(BackendFeatureError, match=f"'{lacking}'.*'lengths'"):
        F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], backend=lacking,
                  lengths=[1, 2, 3, 0])
    # a lengths forward is differentiated only by a backend with the feature, too
    with pytest.raises(BackendFeatureError, match="'lengths'"):
        F.backward(res, backend=lacking)


def test_auto_picks_a_backend_with_lengths():
    p = random_layer("gru", 3, 4, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "auto" warns when it falls to numpy
        res = F.forward("gru", p["x"], p["weight_ih"], p["weight_hh"], backend="auto",
                        training=True, lengths=[3, 1, 0, 2])
    assert res.saved.backend in LENGTH_BACKENDS


def test_saved_lengths_replaced_after_forward_is_refused(length_backend):
    p = random_layer("rnn_tanh", 3, 4, 2, 3)
    res = F.forward("rnn_tanh", p["x"], p["weight_ih"], p["weight_hh"], backend=length_backend,
                    training=True, lengths=[3, 1, 0, 2])
    res.saved.lengths = np.array([3, 1, 9, 2])
    with pytest.raises(ValueError, match="saved.lengths"):
        F.backward(res)
