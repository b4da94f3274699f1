"""The LSTM with a projection (torch.nn.LSTM(proj_size=P)) on every backend
with the "projection" feature, against torch's float64 autograd vectors
(tests/vectors/projection/, written by generate_projection_vectors.py) and
float64 finite differences of the backends' own forward: the functional
layer (with and without per-row lengths) and fastrnn.LSTM(..., proj_size)
(stacked, bidirectional, batch_first, lengths); the backends without the
feature refuse it by name; bad arguments are explained.

Not here: fastrnn.torch (test_torch_module.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn.backends import BackendFeatureError, features

from conftest import TOLERANCE, rel_err

VECTOR_DIR = Path(__file__).parent / "vectors" / "projection"
VECTOR_FILES = sorted(VECTOR_DIR.glob("lstm_*.npz"))  # one layer, one direction
LAYER_FILES = sorted(VECTOR_DIR.glob("layers_*.npz"))  # whole torch.nn.LSTM(proj_size) modules
GRAD_NAMES = ("x", "weight_ih", "weight_hh", "weight_hr", "bias_ih", "bias_hh", "h0", "c0")


def load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def run(v, backend, dtype):
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    res = F.forward("lstm", cast("x"), cast("weight_ih"), cast("weight_hh"), cast("bias_ih"),
                    cast("bias_hh"), cast("h0"), cast("c0"), backend=backend, training=True,
                    weight_hr=cast("weight_hr"), lengths=v.get("lengths"))
    return res, F.backward(res, cast("d_output"), cast("d_h_n"), cast("d_c_n"))


def needs_projection(backend):
    if "projection" not in features(backend):
        pytest.skip(f"backend {backend} has no 'projection' (test_backends_without_it_say_so)")


def test_vectors_cover_the_edge_shapes():
    names = [p.name for p in VECTOR_FILES]
    assert len(names) >= 5
    assert any("_P1" in n for n in names) and any("_T1_" in n for n in names)
    assert any("nobias" in n for n in names) and any("noh0" in n for n in names)
    with_lengths = [load(p)["lengths"] for p in VECTOR_FILES if "_lengths" in p.name]
    assert len(with_lengths) >= 3
    assert any((L == 0).any() for L in with_lengths)  # a row of length 0
    assert any((np.diff(L) > 0).any() for L in with_lengths)  # unsorted


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_forward_backward_match_torch(path, engine, dtype):
    needs_projection(engine)
    v = load(path)
    res, grads = run(v, engine, dtype)
    assert res.output.dtype == dtype and grads.weight_hr.dtype == dtype
    errors = {"output": rel_err(res.output, v["output"]), "h_n": rel_err(res.h_n, v["h_n"]),
              "c_n": rel_err(res.c_n, v["c_n"])}
    for name in GRAD_NAMES:
        got = getattr(grads, name)
        if f"grad_{name}" in v:
            errors[f"grad_{name}"] = rel_err(got, v[f"grad_{name}"])
        else:
            assert got is None, f"grad {name} should be None for this layer"
    print(f"\n{path.stem} [{engine}/{dtype.name}] "
          + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[dtype], f"{worst}: relative error {errors[worst]:.3e}"


def _random_problem(T, B, I, H, P, seed):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    return dict(x=rng.standard_normal((T, B, I)), weight_ih=rng.uniform(-k, k, (4 * H, I)),
                weight_hh=rng.uniform(-k, k, (4 * H, P)), weight_hr=rng.uniform(-k, k, (P, H)),
                bias_ih=rng.uniform(-k, k, 4 * H), bias_hh=rng.uniform(-k, k, 4 * H),
                h0=0.5 * rng.standard_normal((B, P)), c0=0.5 * rng.standard_normal((B, H)),
                d_output=rng.standard_normal((T, B, P)), d_h_n=rng.standard_normal((B, P)),
                d_c_n=rng.standard_normal((B, H)))


def test_gradients_match_finite_differences(backend):
    """Wider than the vectors (H = 19, P = 6: several panels of the C
    kernels' packing), against central differences of the same backend's
    float64 forward: L = <out, d_out> + <h_n, d_h_n> + <c_n, d_c_n>."""
    needs_projection(backend)
    a = _random_problem(7, 3, 5, 19, 6, seed=13)
    names = ("x", "weight_ih", "weight_hh", "weight_hr", "bias_ih", "bias_hh", "h0", "c0")

    def loss(arrays):
        r = F.forward("lstm", *(arrays[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih",
                                                    "bias_hh", "h0", "c0")),
                      backend=backend, weight_hr=arrays["weight_hr"])
        return float((r.output * a["d_output"]).sum() + (r.h_n * a["d_h_n"]).sum()
                     + (r.c_n * a["d_c_n"]).sum())

    res = F.forward("lstm", *(a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                             "h0", "c0")),
                    backend=backend, training=True, weight_hr=a["weight_hr"])
    grads = F.backward(res, a["d_output"], a["d_h_n"], a["d_c_n"])
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in names:
        analytic = getattr(grads, name)
        for _ in range(5):
            idx = tuple(int(rng.integers(n)) for n in a[name].shape)
            plus = {k: v.copy() for k, v in a.items()}
            minus = {k: v.copy() for k, v in a.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            scale = max(1.0, float(np.max(np.abs(analytic))))
            assert abs(numeric - analytic[idx]) <= 1e-6 * scale, (name, idx, numeric,
                                                                   analytic[idx])


def test_backends_agree_on_a_larger_problem(dtype):
    """C and the NumPy reference on one problem bigger than the vectors
    (T = 23, H = 37, P = 11; float64 to 1e-10, float32 to 1e-4)."""
    if "c" not in fastrnn.available_backends():
        pytest.skip("backend c not available")
    a = {k: v.astype(dtype) for k, v in _random_problem(23, 5, 9, 37, 11, seed=4).items()}
    out = {}
    for backend in ("c", "numpy"):
        res = F.forward("lstm", *(a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih",
                                                 "bias_hh", "h0", "c0")),
                        backend=backend, training=True, weight_hr=a["weight_hr"])
        g = F.backward(res, a["d_output"], a["d_h_n"], a["d_c_n"])
        out[backend] = [res.output, res.h_n, res.c_n] + [getattr(g, n) for n in GRAD_NAMES]
    for got, want in zip(out["c"], out["numpy"]):
        assert rel_err(got, want) <= TOLERANCE[dtype]


def test_inference_forward_equals_training_forward(backend):
    needs_projection(backend)
    a = _random_problem(4, 2, 3, 6, 2, seed=5)
    args = [a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")]
    r1 = F.forward("lstm", *args, backend=backend, weight_hr=a["weight_hr"])
    r2 = F.forward("lstm", *args, backend=backend, training=True, weight_hr=a["weight_hr"])
    np.testing.assert_array_equal(r1.output, r2.output)
    np.testing.assert_array_equal(r1.c_n, r2.c_n)


def test_empty_problems():
    a = _random_problem(3, 2, 3, 5, 2, seed=6)
    x = np.zeros((0, 2, 3))
    res = F.forward("lstm", x, a["weight_ih"], a["weight_hh"], None, None, a["h0"], a["c0"],
                    training=True, weight_hr=a["weight_hr"])
    assert res.output.shape == (0, 2, 2)
    np.testing.assert_array_equal(res.h_n, a["h0"])
    np.testing.assert_array_equal(res.c_n, a["c0"])
    g = F.backward(res, None, a["d_h_n"], a["d_c_n"])
    np.testing.assert_array_equal(g.weight_hr, np.zeros((2, 5)))
    np.testing.assert_array_equal(g.h0, a["d_h_n"])
    for T, B, lengths in ((0, 2, [0, 0]), (3, 0, [])):  # with lengths too
        res = F.forward("lstm", np.zeros((T, B, 3)), a["weight_ih"], a["weight_hh"],
                        weight_hr=a["weight_hr"], lengths=lengths, training=True)
        assert res.output.shape == (T, B, 2) and res.c_n.shape == (B, 5)
        assert F.backward(res).weight_hr.shape == (2, 5)


def test_backends_without_it_say_so(monkeypatch):
    """A backend that does not declare "projection" is refused by name (the
    registry rewritten so that only NumPy has it)."""
    from fastrnn import backends
    a = _random_problem(2, 1, 3, 4, 2, seed=7)
    args = [a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")]
    for entry in list(backends.REGISTRY.values()):
        if entry.name != "numpy":
            monkeypatch.setitem(backends.REGISTRY, entry.name, backends.Backend(
                entry.name, entry.module, entry.trainer, entry.features - {"projection"}))
    for backend in [b for b in fastrnn.available_backends() if b != "numpy"]:
        with pytest.raises(BackendFeatureError,
                           match=f"backend '{backend}' does not implement 'projection'"):
            F.forward("lstm", *args, backend=backend, weight_hr=a["weight_hr"])
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    with pytest.warns(RuntimeWarning):  # auto takes the one that has it, and says it is slow
        res = F.forward("lstm", *args, weight_hr=a["weight_hr"], training=True)
    assert res.saved.backend == "numpy"


def test_bad_arguments_are_explained():
    a = _random_problem(2, 1, 3, 4, 2, seed=8)
    args = [a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")]
    with pytest.raises(ValueError, match="weight_hh"):  # (4H, H), not (4H, P)
        F.forward("lstm", a["x"], a["weight_ih"], np.zeros((16, 4)), weight_hr=a["weight_hr"])
    with pytest.raises(ValueError, match="h0"):  # h0 is P wide
        F.forward("lstm", *args[:5], np.zeros((1, 4)), a["c0"], weight_hr=a["weight_hr"])
    with pytest.raises(ValueError, match="c0"):  # c0 is H wide
        F.forward("lstm", *args[:6], np.zeros((1, 2)), weight_hr=a["weight_hr"])
    with pytest.raises(ValueError, match="weight_hr"):
        F.forward("lstm", *args, weight_hr=np.zeros((2, 3)))
    with pytest.raises(TypeError, match="weight_hr"):
        F.forward("lstm", *args, weight_hr=a["weight_hr"].astype(np.float32))
    with pytest.raises(ValueError, match="only for the LSTM"):
        F.forward("gru", a["x"], np.zeros((12, 3)), np.zeros((12, 2)),
                  weight_hr=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="lengths"):
        F.forward("lstm", *args, weight_hr=a["weight_hr"], lengths=[3])


def test_lengths_all_T_are_the_plain_call_bitwise(backend):
    needs_projection(backend)
    a = _random_problem(5, 3, 4, 6, 2, seed=10)
    args = [a[n] for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")]
    runs = [F.forward("lstm", *args, backend=backend, training=True, weight_hr=a["weight_hr"],
                      lengths=lengths) for lengths in (None, [5, 5, 5])]
    grads = [F.backward(r, a["d_output"], a["d_h_n"], a["d_c_n"]) for r in runs]
    for name in ("output", "h_n", "c_n"):
        np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name))
    for name in GRAD_NAMES:
        np.testing.assert_array_equal(getattr(grads[0], name), getattr(grads[1], name))


def test_core_refuses_what_c_cannot_take():
    if "c" not in fastrnn.available_backends():
        pytest.skip("backend c not available")
    from fastrnn import _core
    a = _random_problem(2, 1, 3, 4, 2, seed=9)
    out, hn, cn = np.empty((2, 1, 2)), np.empty((1, 2)), np.empty((1, 4))
    args = (a["x"], a["weight_ih"], a["weight_hh"], a["weight_hr"], a["bias_ih"], a["bias_hh"],
            a["h0"], a["c0"], out, hn, cn, None)
    _core.forward_proj("lstm", *args)
    np.testing.assert_allclose(out, F.forward("lstm", *(a[n] for n in (
        "x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")), backend="numpy",
        weight_hr=a["weight_hr"]).output, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="needs the LSTM"):
        _core.forward_proj("gru", *args)
    with pytest.raises(ValueError, match="out"):
        _core.forward_proj("lstm", *args[:8], np.empty((2, 1, 4)), hn, cn, None)
    with pytest.raises(ValueError, match="must not overlap"):
        _core.forward_proj("lstm", *args[:8], out, out[0], cn, None)


# ---- the C entry points themselves (ctypes: no Cython checks in between) --

@pytest.fixture(scope="module")
def lib():
    if "c" not in fastrnn.available_backends():
        pytest.skip("backend c not available")
    import ctypes

    from fastrnn import _core
    from test_core_bounds import CellDesc
    library = ctypes.CDLL(_core.__file__)
    if not hasattr(library, "frnn_layer_forward_proj_f64"):
        pytest.skip("the extension does not export frnn_layer_forward_proj_f64")
    dp, desc = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(CellDesc)
    library.frnn_layer_forward_proj_f64.argtypes = [desc] + [ctypes.c_int64] * 4 + [dp] * 12
    library.frnn_layer_backward_proj_f64.argtypes = [desc] + [ctypes.c_int64] * 4 + [dp] * 19
    return library


@pytest.mark.parametrize("T,B,In,H,P", [
    (2 ** 40, 2 ** 40, 1, 1, 1), (1, 1, 1, 1, 2 ** 62), (1, 2 ** 31, 1, 1, 2 ** 31),
    (1, 1, 1, 2 ** 31, 2 ** 31), (1, 1, 2 ** 62, 1, 1)])
def test_c_refuses_size_products_that_overflow(lib, T, B, In, H, P):
    from test_core_bounds import FRNN_ERR_TOO_LARGE, CellDesc, ptr
    one = [np.zeros(1) for _ in range(19)]
    import ctypes
    lstm = ctypes.byref(CellDesc(3, H))
    assert lib.frnn_layer_forward_proj_f64(lstm, T, B, In, P, *map(ptr, one[:12])) \
        == FRNN_ERR_TOO_LARGE
    assert lib.frnn_layer_backward_proj_f64(lstm, T, B, In, P, *map(ptr, one)) \
        == FRNN_ERR_TOO_LARGE
    assert all(a[0] == 0 for a in one)


def test_c_refuses_other_cells_small_sizes_and_missing_arrays(lib):
    import ctypes

    from test_core_bounds import FRNN_ERR_UNSUPPORTED, FRNN_OK, CellDesc, ptr
    T, B, In, H, P = 2, 1, 1, 2, 1
    arrays = [np.zeros(64) for _ in range(19)]
    args = list(map(ptr, arrays))
    fwd, bwd = lib.frnn_layer_forward_proj_f64, lib.frnn_layer_backward_proj_f64
    for code in (0, 4, 5, 6, 1000):  # rnn_tanh, gru, gru_original, leaky, unknown
        desc = ctypes.byref(CellDesc(code, H))
        assert fwd(desc, T, B, In, P, *args[:12]) == FRNN_ERR_UNSUPPORTED
        assert bwd(desc, T, B, In, P, *args) == FRNN_ERR_UNSUPPORTED
    lstm = ctypes.byref(CellDesc(3, H))
    assert fwd(None, T, B, In, P, *args[:12]) == FRNN_ERR_UNSUPPORTED
    for sizes in ((0, B, In, P), (T, 0, In, P), (T, B, 0, P), (T, B, In, 0), (T, B, In, -3)):
        assert fwd(lstm, *sizes, *args[:12]) == FRNN_ERR_UNSUPPORTED
        assert bwd(lstm, *sizes, *args) == FRNN_ERR_UNSUPPORTED
    for i in range(11):  # every array forward reads or writes but ws
        missing = args[:i] + [None] + args[i + 1:12]
        assert fwd(lstm, T, B, In, P, *missing) == FRNN_ERR_UNSUPPORTED, i
    for i in range(19):  # every one backward takes, ws included
        missing = args[:i] + [None] + args[i + 1:]
        assert bwd(lstm, T, B, In, P, *missing) == FRNN_ERR_UNSUPPORTED, i
    assert all((a == 0).all() for a in arrays)
    assert fwd(lstm, T, B, In, P, *args[:11], None) == FRNN_OK  # ws NULL: inference


# ---- fastrnn.LSTM(..., proj_size=P): whole layers --------------------------

def _layer_from_vector(v, dtype, backend):
    layer = fastrnn.LSTM(v["x"].shape[-1], int(v["hidden_size"]),
                         num_layers=int(v["num_layers"]), bias=bool(v["has_bias"]),
                         batch_first=bool(v["batch_first"]),
                         bidirectional=bool(v["bidirectional"]), proj_size=int(v["proj_size"]),
                         dtype=dtype, backend=backend)
    layer.load_state_dict({n: v[n] for n in layer.named_parameters()})
    return layer


def test_layer_vectors_cover_the_configurations():
    vs = [load(p) for p in LAYER_FILES]
    assert any(int(v["num_layers"]) == 3 for v in vs)
    assert any(bool(v["bidirectional"]) and "lengths" in v for v in vs)
    assert any(bool(v["batch_first"]) for v in vs) and any(not bool(v["has_bias"]) for v in vs)
    assert any(not bool(v["has_hx"]) for v in vs)


@pytest.mark.parametrize("path", LAYER_FILES, ids=[p.stem for p in LAYER_FILES])
def test_layers_match_torch(path, backend, dtype):
    needs_projection(backend)
    v = load(path)
    layer = _layer_from_vector(v, dtype, backend)
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    hx = (cast("h0"), cast("c0")) if bool(v["has_hx"]) else None
    res = layer.forward(cast("x"), hx, training=True, lengths=v.get("lengths"))
    g = layer.backward(res, cast("d_output"), cast("d_h_n"), cast("d_c_n"))
    assert list(g.params) == list(layer.named_parameters())  # torch's order, weight_hr included
    errors = {"output": rel_err(res.output, v["output"]), "h_n": rel_err(res.h_n, v["h_n"]),
              "c_n": rel_err(res.c_n, v["c_n"]), "grad_x": rel_err(g.x, v["grad_x"]),
              "grad_h0": rel_err(g.h0, v["grad_h0"]), "grad_c0": rel_err(g.c0, v["grad_c0"])}
    for name in layer.named_parameters():
        errors[f"grad_{name}"] = rel_err(g.params[name], v[f"grad_{name}"])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[dtype], f"{worst}: relative error {errors[worst]:.3e}"


def test_layer_parameters_follow_torch():
    layer = fastrnn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    shapes = {n: a.shape for n, a in layer.named_parameters().items()}
    assert shapes["weight_hh_l0"] == (20, 2) and shapes["weight_hr_l0"] == (2, 5)
    assert shapes["weight_ih_l1"] == (20, 4)  # the layer below's D * P outputs
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                "weight_hr_l0"]
    assert "proj_size=2" in repr(layer)
    single = fastrnn.LSTM(3, 5, proj_size=2, seed=0)
    assert single.weight_hr is single.named_parameters()["weight_hr_l0"]
    assert fastrnn.LSTM(3, 5).weight_hr is None


def test_from_torch_takes_proj_size():
    torch = pytest.importorskip("torch")
    module = torch.nn.LSTM(3, 6, num_layers=2, proj_size=4, bidirectional=True,
                           dtype=torch.float64)
    layer = fastrnn.LSTM.from_torch(module)
    assert layer.proj_size == 4 and layer.dtype == np.float64
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, (h_n, c_n) = module(x)
    res = layer.forward(x.numpy())
    assert rel_err(res.output, out.detach().numpy()) <= 1e-10
    assert res.h_n.shape == (4, 2, 4) and res.c_n.shape == (4, 2, 6)


def test_layer_refuses_what_it_does_not_run():
    with pytest.raises(ValueError, match="proj_size must be smaller than hidden_size"):
        fastrnn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size"):
        fastrnn.LSTM(3, 4, proj_size=-1)
    layer = fastrnn.LSTM(3, 4, proj_size=2)
    with pytest.raises(NotImplementedError, match="proj_size"):
        layer.step(np.zeros((1, 3), np.float32))
    with pytest.raises(NotImplementedError, match="proj_size"):
        layer.stream()
    with pytest.raises(ValueError, match="proj_size"):  # h0 is P wide
        layer.forward(np.zeros((2, 1, 3), np.float32),
                      (np.zeros((1, 1, 4), np.float32), np.zeros((1, 1, 4), np.float32)))
