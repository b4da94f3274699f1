"""fastrnn.optim against torch.optim and torch.nn.utils' clipping.

Stored vectors (tests/vectors/optim/*.npz, from generate_optim_vectors.py:
torch float64, 20 steps, a parameter skipped at one step) are replayed in
float64 and float32; a live cross-check runs random configurations against
torch in both dtypes when torch is installed; both on each implementation
of the updates (opt.kernels: the NumPy path and the C core's kernels,
skipped where the compiled core lacks them), which must also agree bit for
bit with each other on every kernel table (ISA) of this CPU, update the
caller's arrays in place, and fall back (or, with kernels="c", refuse)
where the kernels cannot take an array; clipping is checked against
hand-derived numbers and live torch; state_dict round-trips bitwise; bad
input gets a ValueError/TypeError naming the argument. Errors are normwise
(conftest.rel_err: max|diff| / max|ref| per array).
"""
from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fastrnn import optim

from conftest import c_kernels, rel_err

VECTOR_DIR = Path(__file__).parent / "vectors" / "optim"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))
OPTIMIZERS = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")

# Replaying torch's float64 run in float32: the stored inputs are rounded to
# float32 and every step rounds; measured max normwise error over all files
# 7.4e-7 on the final parameters and state (adamw_default), so the project's
# float32 bound of 1e-4 is kept.
STORED_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
# The same replay measured on the displacement final - initial, which small
# learning rates make ~1e-2 of the parameters' scale (so an error in the
# update hides less in it): float64 measured <= 6e-15. In float32 each step
# rounds p (|p| ~ 2, half an ulp 1.2e-7), which over 20 steps is ~2.4e-6
# against a displacement of ~2e-2 for adamw_default (lr 1e-3): measured
# 1.9e-4 there, <= 2.4e-5 elsewhere; bound 1e-3.
DISPLACEMENT_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-3}
# Live, torch float32 against ours float32 (same inputs, same dtype): only the
# order of roundings differs (torch's CPU kernels fuse multiply-adds);
# measured <= 2.9e-7 over the seeds below (float64: <= 3.5e-16), bound 1e-5.
LIVE_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def load_vector(path):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    names = sorted({k.split("/")[1] for k in data if k.startswith("initial/")})
    state = {n: {k.split("/")[2]: data[k] for k in data if k.startswith(f"state/{n}/")}
             for n in names}
    return (str(data["optimizer"]), json.loads(str(data["hyperparameters"])), names, data,
            state)


def make(optimizer, params, hyper, kernels="auto"):
    hyper = dict(hyper)
    if "betas" in hyper:
        hyper["betas"] = tuple(hyper["betas"])
    opt = getattr(optim, optimizer)(params, **hyper)
    opt.kernels = kernels
    return opt


# the two implementations of every update: opt.kernels = "numpy" / "c"
KERNEL_PATHS = ("numpy", "c")


@pytest.fixture(params=KERNEL_PATHS)
def kernels(request):
    """Each implementation; "c" is skipped where the compiled core lacks the
    optimizer kernels (with kernels="c" a step can never silently fall back
    to NumPy: it raises instead)."""
    if request.param == "c" and not optim.c_kernels_available():
        pytest.skip("the compiled core's optimizer kernels are not available")
    return request.param


def test_vector_files_cover_every_optimizer():
    assert len(VECTOR_FILES) >= 10
    seen = {load_vector(p)[0] for p in VECTOR_FILES}
    assert seen == set(OPTIMIZERS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_stored_vectors(path, dtype, kernels):
    optimizer, hyper, names, data, want_state = load_vector(path)
    dtype = np.dtype(dtype)
    params = {n: data[f"initial/{n}"].astype(dtype) for n in names}
    opt = make(optimizer, params, hyper, kernels)
    steps = int(data["steps"])
    for t in range(steps):
        grads = {n: data[f"grads/{n}"][t].astype(dtype) for n in names
                 if data[f"has_grad/{n}"][t]}
        opt.step(grads)
    assert any(not data[f"has_grad/{n}"].all() for n in names), "no skipped step in the file"
    tol = STORED_TOLERANCE[dtype]
    errors = {}
    for n in names:
        assert params[n].dtype == dtype
        errors[f"param {n}"] = rel_err(params[n], data[f"final/{n}"])
        displacement = rel_err(params[n].astype(np.float64) - data[f"initial/{n}"].astype(dtype),
                               data[f"final/{n}"] - data[f"initial/{n}"])
        assert displacement <= DISPLACEMENT_TOLERANCE[dtype], (n, displacement)
        assert set(opt.state[n]) == set(want_state[n]), n
        for k, want in want_state[n].items():
            got = opt.state[n][k]
            if k == "step":
                assert got == int(want), f"{n} step {got} != {int(want)}"
            else:
                assert got.dtype == dtype, (n, k)
                errors[f"{n}.{k}"] = rel_err(got, want)
    worst = max(errors, key=errors.get)
    print(f"{path.stem} {dtype}: max rel err {errors[worst]:.2e} ({worst})")
    assert errors[worst] <= tol, errors


# -- live torch -------------------------------------------------------------------

def random_config(rng, name):
    wd = float(rng.choice([0.0, 0.0, 0.03, 0.2]))
    if name == "SGD":
        momentum = float(rng.choice([0.0, 0.5, 0.9]))
        nesterov = bool(momentum > 0 and rng.random() < 0.5)
        dampening = 0.0 if nesterov else float(rng.choice([0.0, 0.3]))
        return name, dict(lr=float(rng.uniform(0.01, 0.2)), momentum=momentum,
                          dampening=dampening, weight_decay=wd, nesterov=nesterov)
    if name == "Adagrad":
        return name, dict(lr=float(rng.uniform(0.01, 0.2)), lr_decay=float(rng.choice([0, 0.1])),
                          weight_decay=wd,
                          initial_accumulator_value=float(rng.choice([0.0, 0.5])),
                          eps=float(rng.choice([1e-10, 1e-4])))
    if name == "RMSprop":
        return name, dict(lr=float(rng.uniform(0.001, 0.02)), alpha=float(rng.choice([0.9, 0.99])),
                          eps=float(rng.choice([1e-8, 1e-4])), weight_decay=wd,
                          momentum=float(rng.choice([0.0, 0.6])), centered=bool(rng.random() < .5))
    return name, dict(lr=float(rng.uniform(0.001, 0.05)),
                      betas=(float(rng.choice([0.5, 0.9])), float(rng.choice([0.9, 0.999]))),
                      eps=float(rng.choice([1e-8, 1e-5])), weight_decay=wd,
                      amsgrad=bool(rng.random() < 0.5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(20))
def test_live_torch(seed, dtype, kernels):
    torch = pytest.importorskip("torch")
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(1000 + seed)
    name, hyper = random_config(rng, OPTIMIZERS[seed % len(OPTIMIZERS)])
    shapes = [(int(rng.integers(1, 5)), int(rng.integers(1, 5))), (int(rng.integers(1, 7)),)]
    params = {f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    tensors = {k: torch.tensor(a.copy(), requires_grad=True) for k, a in params.items()}
    reference = getattr(torch.optim, name)(list(tensors.values()), foreach=False, **hyper)
    opt = make(name, params, hyper, kernels)
    for _ in range(20):
        grads = {k: rng.standard_normal(a.shape).astype(dtype) for k, a in params.items()
                 if rng.random() < 0.85}
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k].copy()) if k in grads else None
        reference.step()
        opt.step(grads)
    tol = LIVE_TOLERANCE[dtype]
    for k, t in tensors.items():
        assert rel_err(params[k], t.detach().numpy()) <= tol, (name, hyper, k)
        torch_state = reference.state.get(t, {})
        assert set(opt.state[k]) == set(torch_state), (name, hyper, k)
        for sk, sv in torch_state.items():
            if sk == "step":
                assert opt.state[k][sk] == int(sv.item())
            else:
                assert rel_err(opt.state[k][sk], sv.numpy()) <= tol, (name, hyper, k, sk)


# torch 2.13's defaults, as its signatures and documentation give them
DOCUMENTED_DEFAULTS = {
    "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False),
    "Adagrad": dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                    eps=1e-10),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                    centered=False),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False),
    "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
}


def test_defaults_documented():
    for name, want in DOCUMENTED_DEFAULTS.items():
        ours = {k: p.default for k, p in inspect.signature(getattr(optim, name)).parameters.items()
                if k != "params"}
        assert ours == want, name
        assert getattr(optim, name)({"p": np.zeros(2)}).defaults == want, name


def test_defaults_match_torch_signatures():
    torch = pytest.importorskip("torch")
    for name, want in DOCUMENTED_DEFAULTS.items():
        sig = inspect.signature(getattr(torch.optim, name)).parameters
        for k, value in want.items():
            assert sig[k].default == value, (name, k)


# -- clipping -----------------------------------------------------------------------

def hand_grads(dtype=np.float64):
    # entries 3, 4, 12 (and zeros): 2-norm 13, 1-norm 19, inf-norm 12
    return {"a": np.array([3.0, -4.0], dtype), "b": np.array([[0.0, 12.0], [0.0, 0.0]], dtype)}


@pytest.mark.parametrize("norm_type,total", [(2.0, 13.0), (1, 19.0), (math.inf, 12.0),
                                             ("inf", 12.0), (3.0, (27 + 64 + 1728) ** (1 / 3))])
def test_clip_grad_norm_hand(norm_type, total):
    grads = hand_grads()
    got = optim.clip_grad_norm_(grads, max_norm=2.5, norm_type=norm_type)
    assert got.dtype == np.float64
    assert abs(float(got) - total) <= 1e-12 * total
    coef = 2.5 / (total + 1e-6)
    np.testing.assert_allclose(grads["a"], [3 * coef, -4 * coef], rtol=1e-14)
    np.testing.assert_allclose(grads["b"], [[0, 12 * coef], [0, 0]], rtol=1e-14)


def test_clip_grad_norm_below_max_is_unchanged():
    grads = hand_grads(np.float32)
    before = {k: g.copy() for k, g in grads.items()}
    total = optim.clip_grad_norm_(grads, max_norm=13.0 + 1e-3)
    assert total.dtype == np.float32 and float(total) == 13.0
    for k in grads:
        assert np.array_equal(grads[k], before[k])


def test_clip_grad_norm_nonfinite():
    grads = {"a": np.array([1.0, np.inf]), "b": np.array([2.0])}
    before = {k: g.copy() for k, g in grads.items()}
    with pytest.raises(ValueError, match="non-finite") as info:
        optim.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    assert isinstance(info.value, RuntimeError)  # what torch raises
    for k in grads:
        assert np.array_equal(grads[k], before[k])
    # without the flag: as torch, scaled by max_norm / inf = 0 (inf * 0 = NaN)
    total = optim.clip_grad_norm_(grads, 1.0)
    assert total == np.inf
    assert np.isnan(grads["a"][1]) and grads["a"][0] == 0 and grads["b"][0] == 0
    nan_grads = {"a": np.array([np.nan, 1.0])}
    assert np.isnan(optim.clip_grad_norm_(nan_grads, 1.0))
    assert np.isnan(nan_grads["a"]).all()


def test_clip_grad_norm_empty_and_single_array():
    assert float(optim.clip_grad_norm_({}, 1.0)) == 0.0
    g = np.array([6.0, 8.0])
    assert float(optim.clip_grad_norm_(g, 5.0)) == 10.0
    np.testing.assert_allclose(g, [6 * 5 / (10 + 1e-6), 8 * 5 / (10 + 1e-6)], rtol=1e-14)


def test_clip_grad_value_hand():
    grads = hand_grads()
    grads["c"] = np.array([np.nan, -0.5])
    assert optim.clip_grad_value_(grads, 3.5) is None
    assert grads["a"].tolist() == [3.0, -3.5]
    assert grads["b"].tolist() == [[0.0, 3.5], [0.0, 0.0]]
    assert np.isnan(grads["c"][0]) and grads["c"][1] == -0.5


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.3, 1e3])
def test_clip_live_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    grads = {"w": rng.standard_normal((5, 4)).astype(dtype),
             "b": rng.standard_normal(7).astype(dtype), "s": rng.standard_normal(()).astype(dtype)}
    grads = {k: np.ascontiguousarray(g) for k, g in grads.items()}
    tensors = [torch.tensor(g.copy()) for g in grads.values()]
    for t in tensors:
        t.requires_grad_(True)
        t.grad = t.detach().clone()
    want = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type, foreach=False)
    got = optim.clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert abs(float(got) - float(want)) <= tol * float(want)
    for g, t in zip(grads.values(), tensors):
        assert rel_err(g, t.grad.numpy()) <= tol
    for t in tensors:
        t.grad = t.detach().clone()
    torch.nn.utils.clip_grad_value_(tensors, 0.5)
    grads = {k: np.array(t.detach().numpy()) for k, t in zip(grads, tensors)}
    optim.clip_grad_value_(grads, 0.5)
    for g, t in zip(grads.values(), tensors):
        assert np.array_equal(g, t.grad.numpy())


# -- state_dict ---------------------------------------------------------------------

ROUND_TRIP_CONFIGS = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2)),
    ("RMSprop", dict(momentum=0.5, centered=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
]


def gradient_sequence(shapes, dtype, steps, seed):
    rng = np.random.default_rng(seed)
    seq = []
    for t in range(steps):
        seq.append({k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()
                    if not (k == "b" and t in (3, 14))})
    return seq


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,hyper", ROUND_TRIP_CONFIGS,
                         ids=[f"{n}{i}" for i, (n, _) in enumerate(ROUND_TRIP_CONFIGS)])
def test_state_dict_round_trip_bitwise(name, hyper, dtype, kernels):
    shapes = {"w": (3, 4), "b": (4,)}
    rng = np.random.default_rng(3)
    initial = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    seq = gradient_sequence(shapes, dtype, 20, 4)

    straight = {k: a.copy() for k, a in initial.items()}
    opt = make(name, straight, hyper, kernels)
    for g in seq:
        opt.step(g)

    first = {k: a.copy() for k, a in initial.items()}
    opt1 = make(name, first, hyper, kernels)
    for g in seq[:10]:
        opt1.step(g)
    saved = opt1.state_dict()
    for st in saved["state"].values():  # the checkpoint is a copy, not a view of live state
        for val in st.values():
            if isinstance(val, np.ndarray):
                assert not any(np.may_share_memory(val, x) for s in opt1.state.values()
                               for x in s.values() if isinstance(x, np.ndarray))
    resumed = {k: a.copy() for k, a in first.items()}
    # a fresh optimizer made with other hyperparameters: load must restore them
    opt2 = getattr(optim, name)(resumed)
    opt2.kernels = kernels
    opt2.load_state_dict(saved)
    assert opt2.defaults == opt1.defaults
    for g in seq[10:]:
        opt2.step(g)
    for k in shapes:
        assert np.array_equal(resumed[k], straight[k]), k
        assert set(opt2.state[k]) == set(opt.state[k])
        for sk, val in opt.state[k].items():
            assert np.array_equal(opt2.state[k][sk], val), (k, sk)


def test_load_state_dict_checks_and_is_atomic():
    params = {"w": np.zeros((2, 3)), "b": np.zeros(3)}
    opt = optim.Adam(params, amsgrad=True)
    opt.step({"w": np.ones((2, 3)), "b": np.ones(3)})
    good = opt.state_dict()

    def variant(change):
        sd = opt.state_dict()
        change(sd)
        return sd

    before = opt.state_dict()
    bad = [
        (variant(lambda sd: sd.update(optimizer="SGD")), ValueError, "optimizer"),
        (variant(lambda sd: sd["state"].update(x=sd["state"]["w"])), ValueError, "'x'"),
        (variant(lambda sd: sd["state"]["w"].update(exp_avg=np.zeros(6))), ValueError,
         r"exp_avg.*shape"),
        (variant(lambda sd: sd["state"]["w"].update(exp_avg=np.zeros((2, 3), np.float32))),
         TypeError, r"exp_avg.*dtype"),
        (variant(lambda sd: sd["state"]["w"].pop("max_exp_avg_sq")), ValueError, "keys"),
        (variant(lambda sd: sd["hyperparameters"].update(amsgrad=False)), ValueError, "keys"),
        (variant(lambda sd: sd["hyperparameters"].update(lr=-1.0)), ValueError, "lr"),
        (variant(lambda sd: sd["hyperparameters"].pop("eps")), ValueError, "hyperparameters"),
        (variant(lambda sd: sd["state"]["b"].update(step=1.5)), TypeError, "step"),
        (variant(lambda sd: sd.pop("state")), ValueError, "state"),
        ([good], TypeError, "state_dict"),
    ]
    for sd, exc, match in bad:
        with pytest.raises(exc, match=match):
            opt.load_state_dict(sd)
        after = opt.state_dict()
        assert after["hyperparameters"] == before["hyperparameters"]
        for k in before["state"]:
            for sk, val in before["state"][k].items():
                assert np.array_equal(after["state"][k][sk], val)


def test_adagrad_state_exists_from_construction():
    opt = optim.Adagrad({"w": np.zeros(3)}, initial_accumulator_value=0.25)
    assert opt.state["w"]["step"] == 0
    assert opt.state["w"]["sum"].tolist() == [0.25] * 3
    assert opt.state_dict()["state"]["w"]["step"] == 0


# -- the C kernels and the NumPy path ------------------------------------------------

# Every branch of every kernel: each optional term on and off, both sides of
# torch.lerp's weight 0.5 (Adam's 1 - beta1, RMSprop's 1 - alpha), and
# the first SGD momentum step (buffer created from the gradient).
KERNEL_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.2, nesterov=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3,
                     eps=1e-4)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.6)),
    ("RMSprop", dict(lr=0.01, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, betas=(0.4, 0.5), eps=1e-5)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.2, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.0)),
]


def run_steps(name, hyper, dtype, kernels, steps=12, seed=5):
    """(params, optimizer) after ``steps`` steps on fixed random data, with a
    gradient that is strided (a view) at one step and missing at another.
    Shapes include a 0-d parameter and one longer than any vector width."""
    shapes = {"w": (7, 9), "b": (37,), "s": ()}
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(sh).astype(dtype) for k, sh in shapes.items()}
    opt = make(name, params, hyper, kernels)
    for t in range(steps):
        grads = {k: rng.standard_normal(sh).astype(dtype) for k, sh in shapes.items()
                 if not (k == "b" and t == 4)}
        grads["s"] = np.asarray(grads["s"])
        opt.step(grads)
    return params, opt


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,hyper", KERNEL_CONFIGS,
                         ids=[f"{n}{i}" for i, (n, _) in enumerate(KERNEL_CONFIGS)])
def test_c_kernels_equal_numpy_bitwise(name, hyper, dtype, isa):
    # Bitwise, not to a tolerance: the kernels do torch's (and the NumPy
    # path's) IEEE operations in the same order, with no fused multiply-adds
    # (-ffp-contract=off); vector and scalar divide / sqrt round alike, so
    # every ISA's table gives the same bits.
    if not optim.c_kernels_available():
        pytest.skip("the compiled core's optimizer kernels are not available")
    want, want_opt = run_steps(name, hyper, dtype, "numpy")
    got, got_opt = run_steps(name, hyper, dtype, "c")
    for k in want:
        assert np.array_equal(got[k], want[k]), (isa, k)
        assert set(got_opt.state[k]) == set(want_opt.state[k]), k
        for sk, val in want_opt.state[k].items():
            assert np.array_equal(got_opt.state[k][sk], val), (isa, k, sk)
    assert not np.array_equal(got["w"], run_steps(name, hyper, dtype, "numpy", steps=11)[0]["w"])


@pytest.mark.parametrize("name,hyper", KERNEL_CONFIGS,
                         ids=[f"{n}{i}" for i, (n, _) in enumerate(KERNEL_CONFIGS)])
def test_c_kernels_update_the_callers_arrays_in_place(name, hyper):
    if not optim.c_kernels_available():
        pytest.skip("the compiled core's optimizer kernels are not available")
    rng = np.random.default_rng(8)
    w = rng.standard_normal((5, 6)).astype(np.float32)
    initial = w.copy()
    address = w.__array_interface__["data"][0]
    opt = make(name, {"w": w}, hyper, "c")
    opt.step({"w": rng.standard_normal((5, 6)).astype(np.float32)})
    buffers = {k: (b, b.__array_interface__["data"][0]) for k, b in opt.state["w"].items()
               if isinstance(b, np.ndarray)}
    for _ in range(3):
        opt.step({"w": rng.standard_normal((5, 6)).astype(np.float32)})
    assert opt.params["w"] is w and w.__array_interface__["data"][0] == address
    assert w.shape == (5, 6) and w.dtype == np.float32 and w.flags.c_contiguous
    assert not np.array_equal(w, initial)  # it moved, in the caller's array
    for k, (buf, buf_address) in buffers.items():  # state buffers: the same NumPy arrays
        assert opt.state["w"][k] is buf and buf.__array_interface__["data"][0] == buf_address
        assert type(buf) is np.ndarray and buf.shape == (5, 6) and buf.dtype == np.float32


def test_auto_falls_back_to_numpy_for_arrays_the_kernels_cannot_take():
    if not optim.c_kernels_available():
        pytest.skip("the compiled core's optimizer kernels are not available")
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((4, 10))
    strided = wide[:, ::2]  # (4, 5), not C-contiguous
    results = {}
    for kernels in ("auto", "numpy"):
        w = np.linspace(-1, 1, 20).reshape(4, 5)
        opt = make("Adam", {"w": w}, dict(lr=0.1), kernels)
        opt.step({"w": strided})
        opt.step({"w": np.ascontiguousarray(strided)})
        results[kernels] = w
    assert np.array_equal(results["auto"], results["numpy"])

    # kernels="c" says why instead, before anything changes
    w = np.zeros((4, 5))
    opt = make("Adam", {"w": w}, dict(lr=0.1), "c")
    with pytest.raises(ValueError, match=r"kernels='c'.*grads\['w'\] is not C-contiguous"):
        opt.step({"w": strided})
    assert not w.any() and opt.state["w"] == {}
    opt.step({"w": np.ones((4, 5))})
    opt.state["w"]["exp_avg"] = np.asfortranarray(np.zeros((5, 4)).T)  # replaced by the user
    with pytest.raises(ValueError, match=r"state\['w'\]\['exp_avg'\] is not C-contiguous"):
        opt.step({"w": np.ones((4, 5))})
    opt.state["w"]["exp_avg"] = opt.state["w"]["exp_avg_sq"]
    with pytest.raises(ValueError, match=r"state\['w'\]\['exp_avg_sq'\] overlaps"):
        opt.step({"w": np.ones((4, 5))})
    opt.kernels = "auto"  # the NumPy path takes what the kernels refuse
    opt.state["w"]["exp_avg"] = np.asfortranarray(np.zeros((5, 4)).T)
    opt.step({"w": np.ones((4, 5))})
    assert opt.state["w"]["step"] == 2
    w.flags.writeable = False
    opt.kernels = "c"
    with pytest.raises(ValueError, match=r"params\['w'\] is not C-contiguous, aligned and "
                                         r"writable"):
        opt.step({"w": np.ones((4, 5))})


def test_kernels_attribute(monkeypatch):
    opt = optim.SGD({"w": np.ones(3)}, lr=0.5)
    assert opt.kernels == "auto" and optim.KERNELS == ("auto", "c", "numpy")
    for bad, exc in (("C", ValueError), ("numba", ValueError), (None, TypeError),
                     (1, TypeError)):
        with pytest.raises(exc, match="kernels must be"):
            opt.kernels = bad
    assert opt.kernels == "auto"
    # without the compiled kernels: "c" is refused, "auto" is NumPy
    monkeypatch.setattr(optim, "_core_cache", [(None, "no compiled core in this test")])
    assert not optim.c_kernels_available()
    from fastrnn.backends import BackendUnavailableError
    with pytest.raises(BackendUnavailableError, match="no compiled core in this test"):
        opt.kernels = "c"
    opt.step({"w": np.ones(3)})
    assert opt.params["w"].tolist() == [0.5] * 3


def test_core_optimizer_entry_points_check_arguments():
    if not optim.c_kernels_available():
        pytest.skip("the compiled core's optimizer kernels are not available")
    from fastrnn import _core

    def arrays(n=4, dtype=np.float64):
        return [np.ones(n, dtype) for _ in range(5)]

    p, g, m, v, vmax = arrays()
    adam = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
                decoupled_weight_decay=False)
    _core.adam_step(p, g, m, v, None, step=1, **adam)  # max_exp_avg_sq unused: None
    assert not np.array_equal(p, np.ones(4))
    bad = [
        (lambda: _core.adam_step(p, g[:3], m, v, None, 1, **adam), ValueError, "grad"),
        (lambda: _core.adam_step(p, g, m, v[:2], None, 1, **adam), ValueError, "exp_avg_sq"),
        (lambda: _core.adam_step(p, g, m, v, None, 1, **{**adam, "amsgrad": True}), ValueError,
         "max_exp_avg_sq is required"),
        (lambda: _core.adam_step(p, g, m, v, vmax[:1], 1, **{**adam, "amsgrad": True}),
         ValueError, "max_exp_avg_sq must have param's length"),
        (lambda: _core.adam_step(p, g, m, v, None, 0, **adam), ValueError, "step must be >= 1"),
        (lambda: _core.adam_step(p, g, m, m, None, 1, **adam), ValueError,
         "exp_avg must not overlap exp_avg_sq"),
        (lambda: _core.adam_step(p, p, m, v, None, 1, **adam), ValueError,
         "param must not overlap grad"),
        (lambda: _core.adam_step(p, g.astype(np.float32), m, v, None, 1, **adam), TypeError,
         "grad must have param's dtype float64, got float32"),
        (lambda: _core.adam_step(p.astype(np.int64), g, m, v, None, 1, **adam), TypeError,
         "param must be a float32 or float64 array"),
        (lambda: _core.adam_step(p, g, m, v, None, 1, **{**adam, "lr": -1.0}), ValueError,
         "rejected"),
        (lambda: _core.adam_step(p, g, m, v, None, 1, **{**adam, "beta2": 1.0}), ValueError,
         "rejected"),
        (lambda: _core.sgd_step(p, g, None, 0.1, 0.9, 0.0, 0.0, False, True), ValueError,
         "momentum_buffer is required"),
        (lambda: _core.sgd_step(p, g, m, math.nan, 0.0, 0.0, 0.0, False, False), ValueError,
         "rejected"),
        (lambda: _core.sgd_step(p, g, m, 0.1, 0.0, 0.0, 0.0, True, False), ValueError,
         "rejected"),  # nesterov without momentum
        (lambda: _core.adagrad_step(p, g, m, 0, 0.1, 0.0, 0.0, 1e-10), ValueError, "step"),
        (lambda: _core.adagrad_step(p, g, m[:3], 1, 0.1, 0.0, 0.0, 1e-10), ValueError, "sum"),
        (lambda: _core.rmsprop_step(p, g, m, None, None, 0.1, 0.99, 1e-8, 0.0, 0.0, True),
         ValueError, "grad_avg is required"),
        (lambda: _core.rmsprop_step(p, g, m, None, None, 0.1, 1.5, 1e-8, 0.0, 0.0, False),
         ValueError, "rejected"),
        (lambda: _core.adam_step(np.ones((2, 2)), g, m, v, None, 1, **adam), ValueError,
         "param must be 1-D"),
    ]
    for call, exc, match in bad:
        before = [a.copy() for a in (p, g, m, v, vmax)]
        with pytest.raises(exc, match=match):
            call()
        for a, b in zip((p, g, m, v, vmax), before):  # nothing written
            assert np.array_equal(a, b, equal_nan=True)
    read_only = np.ones(4)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.sgd_step(read_only, g, None, 0.1, 0.0, 0.0, 0.0, False, False)
    _core.sgd_step(p, read_only, None, 0.1, 0.0, 0.0, 0.0, False, False)  # grad may be
    empty = np.zeros(0)
    _core.adam_step(empty, empty.copy(), empty.copy(), empty.copy(), None, 1, **adam)


# -- behaviour -------------------------------------------------------------------------

def test_params_from_named_pairs_and_grads_untouched():
    w, b = np.ones((2, 2)), np.ones(2)
    opt = optim.SGD(iter([("w", w), ("b", b)]), lr=0.5, weight_decay=1.0, momentum=0.5)
    g = {"w": np.full((2, 2), 2.0), "b": np.full(2, 2.0)}
    opt.step(g)
    assert g["w"].tolist() == [[2.0, 2.0], [2.0, 2.0]]  # weight decay did not write into g
    assert w.tolist() == [[-0.5, -0.5], [-0.5, -0.5]]  # 1 - 0.5 * (2 + 1 * 1)
    assert opt.params["w"] is w


def test_missing_gradient_skips_parameter():
    w, b = np.ones(2), np.ones(2)
    opt = optim.Adam({"w": w, "b": b}, lr=0.1)
    opt.step({"w": np.ones(2)})
    assert b.tolist() == [1.0, 1.0] and opt.state["b"] == {}
    opt.step({"w": np.ones(2), "b": None})
    assert opt.state["w"]["step"] == 2 and opt.state["b"] == {}
    # Adam's first step moves each entry by lr (m / sqrt(v) = 1)
    assert abs(w[0] - (1 - 0.1 - 0.1)) < 1e-6


def test_lr_assignment():
    w = np.zeros(2)
    opt = optim.SGD({"w": w}, lr=0.1)
    opt.lr = 0.5
    opt.step({"w": np.ones(2)})
    assert w.tolist() == [-0.5, -0.5]
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1


# -- bad input ----------------------------------------------------------------------------

BAD_HYPERPARAMETERS = [
    ("SGD", dict(lr=-0.1), ValueError, "lr"),
    ("SGD", dict(lr=math.nan), ValueError, "lr"),
    ("SGD", dict(lr="0.1"), TypeError, "lr"),
    ("SGD", dict(momentum=-0.5), ValueError, "momentum"),
    ("SGD", dict(dampening=1.5), ValueError, "dampening"),
    ("SGD", dict(weight_decay=-1e-3), ValueError, "weight_decay"),
    ("SGD", dict(nesterov=1), TypeError, "nesterov"),
    ("SGD", dict(nesterov=True), ValueError, "nesterov.*momentum"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov.*dampening"),
    ("Adagrad", dict(lr=-1.0), ValueError, "lr"),
    ("Adagrad", dict(lr_decay=-0.1), ValueError, "lr_decay"),
    ("Adagrad", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    ("Adagrad", dict(eps=-1e-10), ValueError, "eps"),
    ("RMSprop", dict(lr=-1.0), ValueError, "lr"),
    ("RMSprop", dict(alpha=-0.1), ValueError, "alpha"),
    ("RMSprop", dict(alpha=1.5), ValueError, "alpha"),
    ("RMSprop", dict(eps=-1.0), ValueError, "eps"),
    ("RMSprop", dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ("RMSprop", dict(momentum=-1.0), ValueError, "momentum"),
    ("RMSprop", dict(centered="yes"), TypeError, "centered"),
    ("Adam", dict(lr=-1.0), ValueError, "lr"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    ("Adam", dict(betas=0.9), TypeError, "betas"),
    ("Adam", dict(betas=(0.9, 0.99, 0.9)), TypeError, "betas"),
    ("Adam", dict(eps=-1.0), ValueError, "eps"),
    ("Adam", dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ("Adam", dict(amsgrad=None), TypeError, "amsgrad"),
    ("AdamW", dict(weight_decay=-0.01), ValueError, "weight_decay"),
    ("AdamW", dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
]


@pytest.mark.parametrize("name,kw,exc,match", BAD_HYPERPARAMETERS,
                         ids=[f"{n}-{'-'.join(k)}{i}" for i, (n, k, _, _) in
                              enumerate(BAD_HYPERPARAMETERS)])
def test_bad_hyperparameters(name, kw, exc, match):
    with pytest.raises(exc, match=match):
        getattr(optim, name)({"w": np.zeros(2)}, **kw)


def test_edge_hyperparameters_accepted():
    optim.SGD({"w": np.zeros(2)}, lr=0, momentum=0.9, nesterov=True)
    optim.RMSprop({"w": np.zeros(2)}, alpha=1.0, eps=0)
    optim.Adam({"w": np.zeros(2)}, betas=[0.0, 0.0])


BAD_PARAMS = [
    ({}, ValueError, "empty"),
    (np.zeros(3), TypeError, "params"),
    ([np.zeros(3)], TypeError, "params"),
    ({"w": [0.0, 1.0]}, TypeError, r"params\['w'\].*ndarray"),
    ({"w": np.zeros(3, np.int64)}, TypeError, r"params\['w'\].*float32 or float64"),
    ({"w": np.zeros(3), "b": np.zeros(3, np.float32)}, TypeError, r"params\['b'\].*one dtype"),
    ({"w": np.zeros((3, 4))[:, ::2]}, ValueError, r"params\['w'\].*C-contiguous"),
    ({1: np.zeros(3)}, TypeError, "names must be str"),
    ([("w", np.zeros(3)), ("w", np.zeros(3))], ValueError, "more than once"),
]


@pytest.mark.parametrize("params,exc,match", BAD_PARAMS,
                         ids=[str(i) for i in range(len(BAD_PARAMS))])
def test_bad_params(params, exc, match):
    with pytest.raises(exc, match=match):
        optim.Adam(params)


def test_bad_params_read_only_and_shared():
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.SGD({"w": ro})
    base = np.zeros(6)
    with pytest.raises(ValueError, match="overlaps"):
        optim.SGD({"a": base[:3], "b": base[2:5]})


@pytest.mark.parametrize("grads,exc,match", [
    ({"x": np.zeros(3)}, ValueError, r"grads\['x'\]"),
    ({"w": np.zeros(4)}, ValueError, r"grads\['w'\].*shape"),
    ({"w": np.zeros((3, 1))}, ValueError, r"grads\['w'\].*shape"),
    ({"w": np.zeros(3, np.float32)}, TypeError, r"grads\['w'\].*dtype"),
    ({"w": [0.0, 0.0, 0.0]}, TypeError, r"grads\['w'\].*ndarray"),
    ([np.zeros(3)], TypeError, "grads must be a dict"),
])
def test_bad_grads_change_nothing(grads, exc, match):
    w, b = np.ones(3), np.ones(2)
    opt = optim.SGD({"w": w, "b": b}, lr=0.1, momentum=0.9)
    full = {"b": np.ones(2)}
    if isinstance(grads, dict):
        full.update(grads)
    else:
        full = grads
    with pytest.raises(exc, match=match):
        opt.step(full)
    assert w.tolist() == [1.0] * 3 and b.tolist() == [1.0] * 2 and opt.state["b"] == {}


@pytest.mark.parametrize("call,exc,match", [
    (lambda g: optim.clip_grad_norm_(g, -1.0), ValueError, "max_norm"),
    (lambda g: optim.clip_grad_norm_(g, 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda g: optim.clip_grad_norm_(g, 1.0, norm_type=-math.inf), ValueError, "norm_type"),
    (lambda g: optim.clip_grad_norm_(g, 1.0, error_if_nonfinite=1), TypeError,
     "error_if_nonfinite"),
    (lambda g: optim.clip_grad_norm_({**g, "c": np.zeros(2, np.float32)}, 1.0), TypeError,
     r"grads\['c'\].*dtype"),
    (lambda g: optim.clip_grad_norm_({"a": [1.0]}, 1.0), TypeError, r"grads\['a'\]"),
    (lambda g: optim.clip_grad_norm_("ab", 1.0), TypeError, "grads"),
    (lambda g: optim.clip_grad_value_(g, -0.1), ValueError, "clip_value"),
    (lambda g: optim.clip_grad_value_(g, math.inf), ValueError, "clip_value"),
    (lambda g: optim.clip_grad_value_({"a": np.zeros(2, np.int32)}, 1.0), TypeError,
     r"grads\['a'\]"),
])
def test_bad_clip_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call(hand_grads())


def test_clip_read_only_gradient():
    g = np.ones(2)
    g.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.clip_grad_value_({"g": g}, 0.5)
