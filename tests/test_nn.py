"""fastrnn.nn: Linear and the losses against PyTorch, finite differences and bad input.

Four independent references: the stored PyTorch float64 autograd vectors in
tests/vectors/nn/ (written by tests/vectors/generate_nn_vectors.py; replayed
in float64 to 1e-10 and float32 to 1e-4, normwise), a live cross-check
against torch on fresh random shapes (skipped without torch), central finite
differences in float64 (no torch), and statistics of the initialisation.
Errors are conftest.rel_err's: max|got - want| / max|want|.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from fastrnn import nn

from conftest import DTYPES, TOLERANCE, rel_err

VECTOR_DIR = Path(__file__).parent / "vectors" / "nn"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))
REDUCTIONS = ("mean", "sum", "none")


def load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def cast(value, dtype):
    return np.asarray(value, dtype=dtype)


def call_loss(kind: str, case: dict, dtype):
    """Run the fastrnn loss a stored case describes, inputs cast to ``dtype``."""
    reduction = str(case["reduction"])
    logits = cast(case["input"], dtype)
    if kind == "cross_entropy":
        return nn.cross_entropy(logits, case["target"], reduction=reduction,
                                ignore_index=int(case["ignore_index"]),
                                label_smoothing=float(case["label_smoothing"]))
    target = cast(case["target"], dtype)
    if kind == "bce_with_logits":
        pos_weight = cast(case["pos_weight"], dtype) if "pos_weight" in case else None
        return nn.binary_cross_entropy_with_logits(logits, target, reduction=reduction,
                                                   pos_weight=pos_weight)
    assert kind == "mse", kind
    return nn.mse_loss(logits, target, reduction=reduction)


def check_loss(loss, grad, want_loss, want_grad, reduction, dtype, what):
    tol = TOLERANCE[np.dtype(dtype)]
    assert grad.dtype == np.dtype(dtype) and grad.shape == want_grad.shape
    err_grad = rel_err(grad, want_grad)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == np.dtype(dtype)
        err_loss = rel_err(loss, want_loss)
    else:
        assert type(loss) is float
        want = float(want_loss)
        if math.isnan(want):
            assert math.isnan(loss), f"{what}: torch gives nan, got {loss}"
            err_loss = 0.0
        else:
            err_loss = abs(loss - want) / (abs(want) if want else 1.0)
    print(f"{what}: loss {err_loss:.2e} grad {err_grad:.2e}")
    assert err_loss <= tol and err_grad <= tol, (what, err_loss, err_grad)
    return max(err_loss, err_grad)


# -- stored PyTorch vectors ---------------------------------------------------

def test_the_vectors_cover_every_case():
    names = [p.stem for p in VECTOR_FILES]
    kinds = [str(load(p)["kind"]) for p in VECTOR_FILES]
    for kind in ("cross_entropy", "bce_with_logits", "mse"):
        reductions = {str(load(p)["reduction"]) for p, k in zip(VECTOR_FILES, kinds) if k == kind}
        assert reductions == set(REDUCTIONS), (kind, reductions)
    linear = [load(p) for p, k in zip(VECTOR_FILES, kinds) if k == "linear"]
    assert {c["x"].ndim for c in linear} == {1, 2, 3}
    assert {c["x"].ndim for c in linear if "bias" not in c} == {1, 2, 3}
    for marker in ("all_ignored", "ignored", "extreme", "pos_weight", "smoothing", "unbatched",
                   "ignore2", "d3x2"):
        assert any(marker in n for n in names), marker
    total = sum(p.stat().st_size for p in VECTOR_FILES)
    assert total < 200_000, f"tests/vectors/nn holds {total:,} bytes"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_stored_vector(path, dtype):
    case = load(path)
    kind = str(case["kind"])
    tol = TOLERANCE[np.dtype(dtype)]
    if kind == "linear":
        O, I = case["weight"].shape
        layer = nn.Linear(I, O, bias="bias" in case, dtype=dtype, seed=0)
        layer.load_state_dict({k: case[k] for k in ("weight", "bias") if k in case})
        x, d_output = cast(case["x"], dtype), cast(case["d_output"], dtype)
        y = layer(x)
        grads = layer.backward(x, d_output)
        assert y.dtype == np.dtype(dtype) and grads.x.dtype == np.dtype(dtype)
        pairs = [("y", y, case["y"]), ("dx", grads.x, case["dx"]),
                 ("dweight", grads.params["weight"], case["dweight"])]
        if "bias" in case:
            pairs.append(("dbias", grads.params["bias"], case["dbias"]))
        else:
            assert set(grads.params) == {"weight"}
        for name, got, want in pairs:
            err = rel_err(got, want)
            print(f"{path.stem} {name}: {err:.2e}")
            assert err <= tol, (name, err)
        return
    loss, grad = call_loss(kind, case, dtype)
    check_loss(loss, grad, case["loss"], case["grad"], str(case["reduction"]), dtype, path.stem)


def test_all_ignored_mean_is_nan_with_a_zero_gradient_as_torch():
    # pinned here as well as in the vectors: the one case where the loss is not finite
    logits = np.arange(12.0).reshape(4, 3)
    loss, grad = nn.cross_entropy(logits, np.full(4, -100))
    assert math.isnan(loss) and np.array_equal(grad, np.zeros_like(logits))
    loss, grad = nn.cross_entropy(logits, np.full(4, 7), ignore_index=7, reduction="sum")
    assert loss == 0.0 and not grad.any()


# -- live torch ---------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_live_against_torch(seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1000 + seed)
    lead = tuple(int(d) for d in rng.integers(1, 5, rng.integers(0, 3)))
    I, O, C = (int(d) for d in rng.integers(1, 9, 3))
    has_bias = bool(seed % 2)
    module = torch.nn.Linear(I, O, bias=has_bias, dtype=torch.float64)
    x = rng.standard_normal(lead + (I,))
    d_output = rng.standard_normal(lead + (O,))
    xt = torch.tensor(x, requires_grad=True)
    yt = module(xt)
    yt.backward(torch.tensor(d_output))
    N = int(rng.integers(1, 7))
    logits = rng.standard_normal((N, C)) * 4
    target = rng.integers(0, C, N)
    target[rng.uniform(size=N) < 0.3] = -100
    eps = float(rng.choice([0.0, 0.2]))
    y01 = rng.uniform(size=(N, C))
    pos_weight = rng.uniform(0.1, 3, C)
    for dtype in DTYPES:
        tol = TOLERANCE[np.dtype(dtype)]
        layer = nn.Linear.from_torch(module, dtype=dtype)
        assert rel_err(layer(cast(x, dtype)), yt.detach().numpy()) <= tol
        grads = layer.backward(cast(x, dtype), cast(d_output, dtype))
        assert rel_err(grads.x, xt.grad.numpy()) <= tol
        assert rel_err(grads.params["weight"], module.weight.grad.numpy()) <= tol
        if has_bias:
            assert rel_err(grads.params["bias"], module.bias.grad.numpy()) <= tol
        for reduction in REDUCTIONS:
            cases = [
                (nn.cross_entropy(cast(logits, dtype), target, reduction=reduction,
                                  label_smoothing=eps),
                 lambda z: F.cross_entropy(z, torch.tensor(target), reduction=reduction,
                                           label_smoothing=eps)),
                (nn.binary_cross_entropy_with_logits(cast(logits, dtype), cast(y01, dtype),
                                                     reduction=reduction,
                                                     pos_weight=cast(pos_weight, dtype)),
                 lambda z: F.binary_cross_entropy_with_logits(
                     z, torch.tensor(y01), reduction=reduction,
                     pos_weight=torch.tensor(pos_weight))),
                (nn.mse_loss(cast(logits, dtype), cast(y01, dtype), reduction=reduction),
                 lambda z: F.mse_loss(z, torch.tensor(y01), reduction=reduction)),
            ]
            for (loss, grad), reference in cases:
                z = torch.tensor(logits, requires_grad=True)
                want = reference(z)
                want.sum().backward()
                check_loss(loss, grad, want.detach().numpy(), z.grad.numpy(), reduction, dtype,
                           f"live seed {seed} {reduction}")


# -- float64 finite differences (no torch) ------------------------------------

def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        up = f(x)
        x[index] = saved - h
        down = f(x)
        x[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad


def total(loss) -> float:
    return float(np.sum(loss))


FD_TOL = 1e-7  # central differences at h=1e-6 on O(1) losses: truncation ~1e-10, rounding ~1e-9


LOSS_CASES = {
    "ce_ignored": (lambda z, r: nn.cross_entropy(z, np.array([2, -100, 0, 1, 3]), reduction=r),
                   (5, 4)),
    "ce_smoothing": (lambda z, r: nn.cross_entropy(z, np.array([2, 0, 0, 1, 3]), reduction=r,
                                                   ignore_index=0, label_smoothing=0.3), (5, 4)),
    "ce_unbatched": (lambda z, r: nn.cross_entropy(z, np.array(4), reduction=r), (6,)),
    "ce_spatial": (lambda z, r: nn.cross_entropy(z, np.array([[0, 2, 1], [1, 1, -100]]),
                                                 reduction=r), (2, 3, 3)),
    "bce": (lambda z, r: nn.binary_cross_entropy_with_logits(
        z, np.linspace(0, 1, 12).reshape(3, 4), reduction=r), (3, 4)),
    "bce_pos_weight": (lambda z, r: nn.binary_cross_entropy_with_logits(
        z, np.linspace(0, 1, 12).reshape(3, 4), reduction=r,
        pos_weight=np.array([0.5, 1.0, 2.0, 3.5])), (3, 4)),
    "mse": (lambda z, r: nn.mse_loss(z, np.linspace(-1, 1, 12).reshape(2, 3, 2), reduction=r),
            (2, 3, 2)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_loss_gradient_finite_differences(name, reduction):
    fn, shape = LOSS_CASES[name]
    z = np.random.default_rng(7).standard_normal(shape) * 2
    _, grad = fn(z, reduction)
    numeric = central_difference(lambda a: total(fn(a, reduction)[0]), z.copy())
    err = rel_err(grad, numeric)
    print(f"{name} {reduction}: {err:.2e}")
    assert err <= FD_TOL


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(), (4,), (3, 2)], ids=lambda s: f"{len(s) + 1}d")
def test_linear_backward_finite_differences(lead, bias):
    rng = np.random.default_rng(len(lead))
    layer = nn.Linear(5, 3, bias=bias, dtype=np.float64, seed=1)
    x = rng.standard_normal(lead + (5,))
    g = rng.standard_normal(lead + (3,))
    grads = layer.backward(x, g)

    def objective_of(name):
        def objective(value):
            if name == "x":
                return float(np.sum(layer(value) * g))
            saved = getattr(layer, name).copy()
            getattr(layer, name)[...] = value
            result = float(np.sum(layer(x) * g))
            getattr(layer, name)[...] = saved
            return result
        return objective

    assert rel_err(grads.x, central_difference(objective_of("x"), x.copy())) <= FD_TOL
    for name in ("weight", "bias") if bias else ("weight",):
        numeric = central_difference(objective_of(name), getattr(layer, name).copy())
        assert rel_err(grads.params[name], numeric) <= FD_TOL, name
    assert set(grads.params) == ({"weight", "bias"} if bias else {"weight"})


# -- numerics and edge cases ------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_extreme_logits_stay_finite(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 50.0]], dtype)
    loss, grad = nn.cross_entropy(z, np.array([1, 1]))
    # row 0: -log softmax picks -1e4 - 1e4 -> 2e4; row 1: the right class wins -> 0
    assert math.isclose(loss, 1e4, rel_tol=1e-6) and np.isfinite(grad).all()
    loss, grad = nn.binary_cross_entropy_with_logits(z, np.ones_like(z), reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert math.isclose(float(loss[0, 1]), 1e4, rel_tol=1e-6) and loss[0, 0] == 0


def test_empty_batches_follow_torch():
    loss, grad = nn.cross_entropy(np.zeros((0, 3)), np.zeros(0, np.int64))
    assert math.isnan(loss) and grad.shape == (0, 3)
    assert nn.mse_loss(np.zeros(0), np.zeros(0), reduction="sum")[0] == 0.0
    assert math.isnan(nn.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0))[0])
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    grads = layer.backward(np.zeros((0, 3)), np.zeros((0, 2)))
    assert not grads.params["weight"].any() and not grads.params["bias"].any()


def test_float32_sum_accumulates_in_float64():
    x = np.full(1_000_003, 0.1, np.float32)
    loss, _ = nn.mse_loss(x, np.zeros_like(x), reduction="sum")
    want = 1_000_003 * float(np.float32(0.1) * np.float32(0.1))
    assert abs(loss - want) / want < 1e-12


def test_non_contiguous_inputs_are_accepted():
    z = np.random.default_rng(3).standard_normal((4, 6))
    view = z[:, ::2]
    assert np.array_equal(nn.cross_entropy(view, np.array([0, 1, 2, 0]))[1],
                          nn.cross_entropy(view.copy(), np.array([0, 1, 2, 0]))[1])
    layer = nn.Linear(4, 2, dtype=np.float64, seed=0)
    assert np.array_equal(layer(z.T[:, :4]), layer(np.ascontiguousarray(z.T[:, :4])))


# -- Linear: initialisation, parameters, torch interop ----------------------

def test_linear_init_is_torch_uniform_bound():
    layer = nn.Linear(400, 60, dtype=np.float64, seed=11)
    bound = 1 / math.sqrt(400)
    w = layer.weight
    assert w.shape == (60, 400) and layer.bias.shape == (60,)
    assert np.abs(w).max() <= bound and np.abs(layer.bias).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # 24,000 draws reach the edge
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02  # U(-b, b) has std b/sqrt(3)
    wide = nn.Linear(3, 5000, dtype=np.float64, seed=12)  # the bias's bound is in_features' too
    assert np.abs(wide.bias).max() <= 1 / math.sqrt(3) < np.abs(wide.bias).max() / 0.999
    assert abs(wide.bias.std() / (1 / math.sqrt(9)) - 1) < 0.05


def test_linear_seed_reproducible_and_dtype():
    a = nn.Linear(7, 3, seed=5)
    b = nn.Linear(7, 3, seed=5)
    c = nn.Linear(7, 3, seed=6)
    d = nn.Linear(7, 3, seed=5, dtype=np.float64)
    assert a.weight.dtype == np.float32 and d.weight.dtype == np.float64
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, c.weight)
    # drawn in float64, then cast: the float32 layer is the float64 one rounded
    assert np.array_equal(a.weight, d.weight.astype(np.float32))
    assert np.array_equal(a.bias, d.bias.astype(np.float32))
    assert nn.Linear(7, 3, bias=False, seed=5).bias is None
    assert np.array_equal(nn.Linear(7, 3, bias=False, seed=5).weight, a.weight)


def test_linear_forward_shapes_and_equation():
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    layer.load_state_dict({"weight": [[1, 2, 3], [0, -1, 0.5]], "bias": [10, 20]})
    assert np.array_equal(layer(np.array([1.0, 1.0, 2.0])), [10 + 9, 20 + 0])
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 3))
    y = layer(x)
    assert y.shape == (2, 3, 4, 2)
    assert np.allclose(y[1, 2, 3], layer.weight @ x[1, 2, 3] + layer.bias, rtol=0, atol=1e-13)


def test_named_parameters_are_the_layer_arrays():
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    params = layer.named_parameters()
    assert list(params) == ["weight", "bias"]
    assert params["weight"] is layer.weight and params["bias"] is layer.bias
    before = layer(np.ones(3))
    params["bias"] -= 1.0  # an optimizer's in-place update
    assert np.allclose(layer(np.ones(3)), before - 1.0)
    layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.ones(2)})
    assert params["weight"] is layer.weight and not params["weight"].any()  # still linked
    assert list(nn.Linear(3, 2, bias=False).named_parameters()) == ["weight"]


def test_state_dict_round_trip_and_keys():
    a = nn.Linear(4, 3, seed=1)
    state = a.state_dict()
    assert list(state) == ["weight", "bias"]
    state["weight"][0, 0] = 99  # a copy: the layer is not changed through it
    assert a.weight[0, 0] != 99
    b = nn.Linear(4, 3, seed=2)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a(np.ones(4, np.float32)), b(np.ones(4, np.float32)))
    # integer array-likes and float64 into a float32 layer: converted explicitly
    b.load_state_dict({"weight": np.arange(12).reshape(3, 4), "bias": [0.5, 1.5, 2.5]})
    assert b.weight.dtype == np.float32 and b.weight[2, 3] == 11 and b.bias[1] == 1.5
    assert list(nn.Linear(4, 3, bias=False).state_dict()) == ["weight"]


def test_load_state_dict_rejects_and_writes_nothing():
    layer = nn.Linear(4, 3, dtype=np.float64, seed=1)
    weight = layer.weight.copy()
    with pytest.raises(ValueError, match=r"state\['bias'\] must have shape \(3,\)"):
        layer.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(4)})
    assert np.array_equal(layer.weight, weight)  # the valid weight was not written either
    with pytest.raises(ValueError, match=r"state\['weight'\] must have shape \(3, 4\)"):
        layer.load_state_dict({"weight": np.zeros((4, 3)), "bias": np.zeros(3)})
    with pytest.raises(KeyError, match="missing"):
        layer.load_state_dict({"weight": np.zeros((3, 4))})
    with pytest.raises(KeyError, match="unexpected"):
        layer.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(3), "extra": 1})
    layer.load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(3), "extra": 1},
                          strict=False)
    with pytest.raises(KeyError, match="no bias"):
        nn.Linear(4, 3, bias=False).load_state_dict({"weight": np.zeros((3, 4)),
                                                     "bias": np.zeros(3)})
    with pytest.raises(TypeError, match=r"state\['weight'\] must be a real numeric array"):
        layer.load_state_dict({"weight": np.zeros((3, 4), bool), "bias": np.zeros(3)})
    with pytest.raises(TypeError, match="state must be a dict"):
        layer.load_state_dict([("weight", np.zeros((3, 4)))])


@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_and_torch_state_dict(bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Linear(5, 4, bias=bias, dtype=torch.float64)
    layer = nn.Linear.from_torch(module)
    assert layer.dtype == np.float64 and (layer.bias is not None) == bias
    x = np.random.default_rng(0).standard_normal((3, 5))
    assert rel_err(layer(x), module(torch.tensor(x)).detach().numpy()) <= 1e-14
    assert list(layer.state_dict()) == list(module.state_dict())  # torch's keys, in order
    as_float32 = nn.Linear.from_torch(copy.deepcopy(module).float())  # .float() is in place
    assert as_float32.dtype == np.float32
    assert np.array_equal(as_float32.weight, layer.weight.astype(np.float32))
    other = nn.Linear(5, 4, bias=bias, seed=3)
    other.load_state_dict(module.state_dict())  # torch tensors in
    assert np.array_equal(other.weight, module.weight.detach().numpy().astype(np.float32))
    # and back: torch accepts fastrnn's state_dict
    module2 = torch.nn.Linear(5, 4, bias=bias, dtype=torch.float64)
    module2.load_state_dict({k: torch.tensor(a) for k, a in layer.state_dict().items()})
    assert torch.equal(module2.weight, module.weight)
    with pytest.raises(TypeError, match="module must be a torch.nn.Linear"):
        nn.Linear.from_torch(torch.nn.ReLU())


def test_repr():
    assert repr(nn.Linear(3, 4)) == \
        "Linear(in_features=3, out_features=4, bias=True, dtype=float32)"
    assert repr(nn.Linear(1, 2, bias=False, dtype=np.float64)) == \
        "Linear(in_features=1, out_features=2, bias=False, dtype=float64)"


# -- bad input --------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(in_features=0, out_features=2), ValueError, "in_features must be a positive integer"),
    (dict(in_features=2.0, out_features=2), TypeError, "in_features must be a positive integer"),
    (dict(in_features=True, out_features=2), TypeError, "in_features"),
    (dict(in_features=2, out_features=-1), ValueError, "out_features must be a positive"),
    (dict(in_features=2, out_features=2, bias=1), TypeError, "bias must be a bool"),
    (dict(in_features=2, out_features=2, dtype=np.float16), TypeError, "dtype must be float32"),
    (dict(in_features=2, out_features=2, dtype="int32"), TypeError, "dtype must be float32"),
    (dict(in_features=2, out_features=2, dtype="nonsense"), TypeError, "dtype must be float32"),
    (dict(in_features=2, out_features=2, seed=-1), ValueError, "seed must be an integer >= 0"),
    (dict(in_features=2, out_features=2, seed=1.5), TypeError, "seed"),
    (dict(in_features=2**40, out_features=2**40), ValueError, "weight .* elements"),
])
def test_linear_constructor_rejects(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        nn.Linear(**kwargs)


def test_linear_forward_backward_reject():
    layer = nn.Linear(3, 2, seed=0)  # float32
    good = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError,
                       match=r"x must have shape \(\.\.\., in_features\) = \(\.\.\., 3\)"):
        layer(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="x must have shape"):
        layer(np.float32(1.0))
    with pytest.raises(TypeError, match="x has dtype float64 but the layer"):
        layer(np.ones((4, 3)))
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        layer(np.ones((4, 3), np.int32))
    with pytest.raises(TypeError, match="x is required"):
        layer(None)
    with pytest.raises(ValueError, match=r"d_output must have shape .* = \(4, 2\)"):
        layer.backward(good, np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="d_output has dtype float64"):
        layer.backward(good, np.ones((4, 2)))
    with pytest.raises(ValueError, match="x must have shape"):
        layer.backward(np.ones((4, 5), np.float32), np.ones((4, 2), np.float32))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError,
     "target must be an integer array.*probability targets"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([True, False])), TypeError,
     "target must be an integer array"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError,
     r"target must have logits' shape without the class dimension, \(2,\)"),
    (lambda: nn.cross_entropy(np.zeros((2, 3, 4)), np.array([0, 1])), ValueError,
     r"\(2, 4\)"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError,
     r"target values must be in \[0, 3\).*ignore_index=-100, got 3"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])), ValueError,
     r"target values must be in \[0, 3\)"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg"), ValueError,
     "reduction must be one of"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=1.0), TypeError,
     "ignore_index must be an integer"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5),
     ValueError, r"label_smoothing must be a finite number in \[0, 1\]"),
    (lambda: nn.cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1])), TypeError,
     "logits must be a float32 or float64 array"),
    (lambda: nn.cross_entropy(np.float64(1.0), np.array(0)), ValueError, "logits must be"),
    (lambda: nn.cross_entropy(np.zeros((2, 0)), np.array([0, 1])), ValueError,
     "at least one class"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3, np.float32)),
     TypeError, "target has dtype float32 but logits has dtype float64"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(4)), ValueError,
     r"target must have the shape of logits, \(3,\)"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)),
                                                 pos_weight=np.ones(2)), ValueError,
     r"pos_weight must broadcast to logits' shape \(2, 3\)"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3),
                                                 pos_weight=np.ones((2, 3))), ValueError,
     "pos_weight must broadcast"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3),
                                                 pos_weight=np.ones(3, np.float32)), TypeError,
     "pos_weight has dtype float32"),
    (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3), reduction=None),
     ValueError, "reduction must be one of"),
    (lambda: nn.mse_loss(np.zeros(3, np.float32), np.zeros(3)), TypeError,
     "target has dtype float64 but input has dtype float32"),
    (lambda: nn.mse_loss(np.zeros((3, 1)), np.zeros(3)), ValueError,
     "target must have the shape of input"),
    (lambda: nn.mse_loss(np.zeros(3), np.zeros(3), reduction="Mean"), ValueError,
     "reduction must be one of"),
    (lambda: nn.mse_loss([[1.0], [2.0, 3.0]], np.zeros(2)), TypeError,
     "input must be a float32 or float64 array"),
    (lambda: nn.mse_loss(None, np.zeros(2)), TypeError, "input is required"),
])
def test_losses_reject(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
