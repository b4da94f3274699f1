"""Whole layers (stacked, bidirectional, lengths, batch-first, unbatched) against PyTorch.

Replays tests/vectors/layers/*.npz (written by
tests/vectors/generate_layer_vectors.py from torch float64 autograd) through
``fastrnn.RNN / LSTM / GRU(..., num_layers, bidirectional, batch_first)``
with ``load_state_dict`` under torch's names, on every backend in both
dtypes: output, h_n, c_n and the gradients of x, h0, c0 and every parameter.
Backends without the "lengths" feature skip the cases with lengths.

With torch installed, two more checks: the stored files are recomputed in
torch by a different route from the generator's (each row alone through an
unpacked torch.nn module, the batch axis and a row of length 0 assembled
here), and ``test_live_against_torch`` runs fresh seeded random
configurations through fastrnn and torch side by side. Not here: dropout
(its masks are tested with the layer classes), the single-layer functional
API (test_vectors.py, test_lengths.py), bad input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import cells
from fastrnn.backends import features

from conftest import TOLERANCE, rel_err, vector_cell

VECTOR_DIR = Path(__file__).parent / "vectors" / "layers"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))
TORCH_NN_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # torch.nn has no sigmoid RNN


def load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def config_of(v: dict) -> dict:
    """A vector file's configuration (the generator's flags) as Python values."""
    return {"cell": str(v["cell"]), "num_layers": int(v["num_layers"]),
            "bidirectional": bool(v["bidirectional"]), "batch_first": bool(v["batch_first"]),
            "bias": bool(v["has_bias"]), "unbatched": bool(v["unbatched"]),
            "has_hx": bool(v["has_hx"]), "input_size": v["x"].shape[-1],
            "hidden_size": v["weight_hh_l0"].shape[1],
            "lengths": v["lengths"] if "lengths" in v else None,
            # the cell's own settings the file records (the leaky cell's leak_rate),
            # which are its layer class's arguments of the same names
            "hyperparameters": vector_cell(v).hyperparameter_values}


def param_names(cfg: dict) -> list:
    """torch.nn's parameter names for the configuration, in torch's order."""
    kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if cfg["bias"] else ())
    return [f"{kind}_l{layer}" + ("_reverse" if d else "")
            for layer in range(cfg["num_layers"]) for d in range(1 + cfg["bidirectional"])
            for kind in kinds]


def legacy_state_shape(cfg: dict) -> bool:
    """The one case where fastrnn's h_n (and the state gradients) may keep the
    single-layer API's 2-D shape: one layer, one direction, and no 3-D hx
    passed (none, or an unbatched one)."""
    return (cfg["num_layers"] == 1 and not cfg["bidirectional"]
            and (not cfg["has_hx"] or cfg["unbatched"]))


# -- running fastrnn -----------------------------------------------------------------

def build_layer(cfg: dict, params: dict, dtype, backend):
    spec = cells.get(cfg["cell"])
    options = dict(num_layers=cfg["num_layers"], bias=cfg["bias"],
                   batch_first=cfg["batch_first"], dropout=0.0,
                   bidirectional=cfg["bidirectional"], dtype=dtype, backend=backend,
                   **spec.layer_arguments, **cfg.get("hyperparameters", {}))
    layer = getattr(fastrnn, spec.layer)(cfg["input_size"], cfg["hidden_size"], **options)
    layer.load_state_dict({name: params[name].astype(dtype) for name in param_names(cfg)})
    return layer


def run_fastrnn(cfg: dict, arrays: dict, dtype, backend):
    """forward(training=True) + backward of the layer on ``arrays`` (the
    vector files' keys): (result, grads)."""
    cast = lambda k: arrays[k].astype(dtype)  # noqa: E731
    layer = build_layer(cfg, arrays, dtype, backend)
    hx = None
    if cfg["has_hx"]:
        hx = (cast("h0"), cast("c0")) if cfg["cell"] == "lstm" else cast("h0")
    result = layer.forward(cast("x"), hx, lengths=cfg["lengths"], training=True)
    upstream = {"d_output": cast("d_output"), "d_h_n": cast("d_h_n")}
    if cfg["cell"] == "lstm":
        upstream["d_c_n"] = cast("d_c_n")
    if legacy_state_shape(cfg):  # d_h_n / d_c_n in the shape forward gave h_n / c_n
        for name in ("d_h_n", "d_c_n"):
            if name in upstream:
                upstream[name] = np.reshape(upstream[name], np.shape(result.h_n))
    grads = layer.backward(result, **upstream)
    return result, grads


def mismatches(cfg: dict, want: dict, result, grads, tol: float) -> list:
    """One line per array of ``want`` (output, h_n, c_n, grad_*) that fastrnn
    gets wrong: its name and the max difference."""
    legacy = legacy_state_shape(cfg)
    got = {"output": result.output, "h_n": result.h_n, "grad_x": grads.x,
           "grad_h0": grads.h0}
    if cfg["cell"] == "lstm":
        got.update(c_n=result.c_n, grad_c0=grads.c0)
    problems = []
    if cfg["cell"] != "lstm" and result.c_n is not None:
        problems.append("c_n: expected None for a cell without a cell state")
    if not cfg["has_hx"]:
        # hx was not passed: a gradient for it is optional, checked if given
        for name in ("grad_h0", "grad_c0"):
            if name in got and got[name] is None:
                del got[name]
    params = dict(grads.params)
    if set(params) != set(param_names(cfg)):
        problems.append(f"grads.params: keys {sorted(params)}, expected {param_names(cfg)}")
    got.update({f"grad_{n}": params[n] for n in param_names(cfg) if n in params})
    for name, array in got.items():
        expected = want[name]
        if array is None:
            problems.append(f"{name}: None, expected shape {expected.shape}")
            continue
        array = np.asarray(array)
        if legacy and name in ("h_n", "c_n", "grad_h0", "grad_c0") and array.size == expected.size:
            array = np.reshape(array, expected.shape)
        if array.shape != expected.shape:
            problems.append(f"{name}: shape {array.shape}, expected {expected.shape}")
            continue
        error = rel_err(array, expected)
        if not error <= tol:  # also catches NaN
            difference = np.max(np.abs(array.astype(np.float64) - expected))
            problems.append(f"{name}: max |difference| {difference:.3e}, relative error "
                            f"{error:.3e} > {tol:.0e}")
    return problems


def skip_without_lengths(cfg: dict, backend: str) -> None:
    if cfg["lengths"] is not None and "lengths" not in features(backend):
        pytest.skip(f"backend {backend} lacks the 'lengths' feature")


# -- the stored vectors --------------------------------------------------------------

def test_vector_files_cover_the_configurations():
    configs = [config_of(load(p)) for p in VECTOR_FILES]
    assert {c["cell"] for c in configs} == set(fastrnn.CELLS)
    for cell in fastrnn.CELLS:
        mine = [c for c in configs if c["cell"] == cell]
        wanted = {
            "num_layers 2": any(c["num_layers"] == 2 for c in mine),
            "num_layers 3": any(c["num_layers"] == 3 for c in mine),
            "bidirectional, 1 layer": any(c["bidirectional"] and c["num_layers"] == 1
                                          for c in mine),
            "bidirectional, 2 layers": any(c["bidirectional"] and c["num_layers"] == 2
                                           for c in mine),
            "lengths": any(c["lengths"] is not None and not c["bidirectional"] for c in mine),
            "lengths, bidirectional": any(c["lengths"] is not None and c["bidirectional"]
                                          for c in mine),
            "batch_first": any(c["batch_first"] for c in mine),
            "unbatched": any(c["unbatched"] for c in mine),
            "bias=False": any(not c["bias"] for c in mine),
            "hx given": any(c["has_hx"] for c in mine),
            "hx None": any(not c["has_hx"] for c in mine),
        }
        missing = [k for k, present in wanted.items() if not present]
        assert not missing, f"{cell}: no vector file with {missing}"
        with_lengths = [c for c in mine if c["lengths"] is not None]
        assert any(not np.all(np.diff(c["lengths"]) <= 0) for c in with_lengths), \
            f"{cell}: no unsorted lengths"
        assert all(0 in c["lengths"] for c in with_lengths), f"{cell}: a lengths case lacks a 0"


def test_vector_lengths_include_full_rows():
    for path in VECTOR_FILES:
        v = load(path)
        if "lengths" in v:
            T = v["x"].shape[1] if bool(v["batch_first"]) else v["x"].shape[0]
            assert v["lengths"].max() == T, f"{path.name}: no row of length T={T}"
            assert v["lengths"].dtype == np.int64


def test_vector_folder_stays_small():
    # about 100 KB per cell (ten configurations each); the bound grows with
    # the cells, not with the files one cell writes
    total = sum(p.stat().st_size for p in VECTOR_FILES)
    assert total < 110_000 * len(fastrnn.CELLS), f"tests/vectors/layers holds {total:,} bytes"


def test_no_expected_array_is_all_zero():
    """An all-zero expectation (a dead ReLU layer) could not catch an error."""
    for path in VECTOR_FILES:
        v = load(path)
        dead = [k for k in v
                if k.startswith(("grad_", "output", "h_n", "c_n")) and not np.any(v[k])]
        assert not dead, f"{path.name}: {dead} all zero"


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_layer_matches_torch_vectors(path, backend, dtype):
    v = load(path)
    cfg = config_of(v)
    skip_without_lengths(cfg, backend)
    result, grads = run_fastrnn(cfg, v, dtype, backend)
    problems = mismatches(cfg, v, result, grads, TOLERANCE[dtype])
    assert not problems, f"{path.stem} [{backend}/{dtype.name}]: " + "; ".join(problems)


# -- torch itself ---------------------------------------------------------------------

def torch_reference(cfg: dict, arrays: dict) -> dict:
    """output, h_n, c_n and every gradient by torch float64 autograd, each row
    run alone through an unpacked torch.nn module over its valid steps (a row
    of length 0: output 0, h_n = h0), the rows then stacked: the
    pack_padded_sequence semantics by another route. Keys as the vector files'."""
    torch = pytest.importorskip("torch")
    cell, L, D = cfg["cell"], cfg["num_layers"], 1 + cfg["bidirectional"]
    lstm = cell == "lstm"
    H = cfg["hidden_size"]
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    options = dict(num_layers=L, bias=cfg["bias"], bidirectional=cfg["bidirectional"],
                   dtype=torch.float64)
    if module_class is torch.nn.RNN:
        options["nonlinearity"] = cell[4:]
    module = module_class(cfg["input_size"], H, **options)
    module.load_state_dict({n: torch.tensor(arrays[n]) for n in param_names(cfg)})
    leaf = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
    x = leaf(arrays["x"])
    state_shape = arrays["d_h_n"].shape
    h0 = leaf(arrays["h0"] if cfg["has_hx"] else np.zeros(state_shape))
    c0 = leaf(arrays["c0"] if cfg["has_hx"] else np.zeros(state_shape)) if lstm else None
    # everything time-major and batched from here on, through torch ops
    x_tb = x[:, None] if cfg["unbatched"] else (x.transpose(0, 1) if cfg["batch_first"] else x)
    h0_b = h0[:, None] if cfg["unbatched"] else h0
    c0_b = (c0[:, None] if cfg["unbatched"] else c0) if lstm else None
    T, B = x_tb.shape[:2]
    lengths = [T] * B if cfg["lengths"] is None else [int(n) for n in cfg["lengths"]]
    outs, h_ns, c_ns = [], [], []
    for b in range(B):
        n = lengths[b]
        if n == 0:
            outs.append(torch.zeros((T, D * H), dtype=torch.float64))
            h_ns.append(h0_b[:, b])
            c_ns.append(c0_b[:, b] if lstm else None)
            continue
        state = ((h0_b[:, b:b + 1], c0_b[:, b:b + 1]) if lstm else h0_b[:, b:b + 1])
        out, final = module(x_tb[:n, b:b + 1], state)
        outs.append(torch.cat([out[:, 0], torch.zeros((T - n, D * H), dtype=torch.float64)]))
        h_ns.append((final[0] if lstm else final)[:, 0])
        c_ns.append(final[1][:, 0] if lstm else None)
    out, h_n = torch.stack(outs, dim=1), torch.stack(h_ns, dim=1)
    c_n = torch.stack(c_ns, dim=1) if lstm else None
    if cfg["unbatched"]:
        out, h_n = out[:, 0], h_n[:, 0]
        c_n = c_n[:, 0] if lstm else None
    elif cfg["batch_first"]:
        out = out.transpose(0, 1)
    d = {k: torch.tensor(arrays[k]) for k in ("d_output", "d_h_n", "d_c_n") if k in arrays}
    loss = (out * d["d_output"]).sum() + (h_n * d["d_h_n"]).sum()
    if lstm:
        loss = loss + (c_n * d["d_c_n"]).sum()
    loss.backward()
    ref = {"output": out.detach().numpy(), "h_n": h_n.detach().numpy(),
           "grad_x": x.grad.numpy(), "grad_h0": h0.grad.numpy()}
    if lstm:
        ref.update(c_n=c_n.detach().numpy(), grad_c0=c0.grad.numpy())
    named = dict(module.named_parameters())
    ref.update({f"grad_{n}": named[n].grad.numpy() for n in param_names(cfg)})
    return ref


# by the cell's whole name: "gru_original_T..." is not torch.nn's "gru_T..."
TORCH_FILES = [p for p in VECTOR_FILES
               if p.name.startswith(tuple(c + "_T" for c in TORCH_NN_CELLS))]


@pytest.mark.parametrize("path", TORCH_FILES, ids=[p.stem for p in TORCH_FILES])
def test_vector_files_agree_with_torch(path):
    """The stored results are torch's (recomputed here row by row, unpacked)."""
    v = load(path)
    ref = torch_reference(config_of(v), v)
    for name, want in ref.items():
        assert v[name].shape == want.shape, f"{path.stem} {name}: shape {v[name].shape}"
        error = rel_err(v[name], want)
        assert error <= 1e-12, f"{path.stem} {name}: relative error {error:.3e} against torch"


def random_configuration(rng: np.random.Generator, cell: str, use_lengths: bool) -> tuple:
    """A small random layer configuration and its arrays (the vector files' keys)."""
    T, B, I, H = (int(n) for n in rng.integers(1, [8, 6, 6, 6]))
    unbatched = not use_lengths and bool(rng.random() < 0.25)
    B = 1 if unbatched else B
    cfg = {"cell": cell, "num_layers": int(rng.integers(1, 4)),
           "bidirectional": bool(rng.random() < 0.5),
           "batch_first": not unbatched and bool(rng.random() < 0.5),
           "bias": bool(rng.random() < 0.75), "unbatched": unbatched,
           "has_hx": bool(rng.random() < 0.5), "input_size": I, "hidden_size": H,
           "lengths": rng.integers(0, T + 1, B) if use_lengths else None}
    L, D, G = cfg["num_layers"], 1 + cfg["bidirectional"], cells.get(cell).gates
    k = 1 / np.sqrt(H)
    arrays = {}
    for name in param_names(cfg):
        layer = int(name.split("_l")[1].split("_")[0])
        width = I if layer == 0 else D * H
        shape = {"weight_ih": (G * H, width), "weight_hh": (G * H, H)}.get(name[:9], (G * H,))
        arrays[name] = rng.uniform(-k, k, shape)
    batch = () if unbatched else (B,)
    time_batch = (B, T) if cfg["batch_first"] else (T,) + batch
    arrays["x"] = rng.standard_normal(time_batch + (I,))
    arrays["d_output"] = rng.standard_normal(time_batch + (D * H,))
    for name in ("h0", "d_h_n") + (("c0", "d_c_n") if cell == "lstm" else ()):
        arrays[name] = rng.normal(0, 0.5 if name in ("h0", "c0") else 1.0, (L * D,) + batch + (H,))
    return cfg, arrays


@pytest.mark.parametrize("cell", TORCH_NN_CELLS)
@pytest.mark.parametrize("draw", range(4))
def test_live_against_torch(cell, draw, backend):
    """Fresh random configurations, float64: fastrnn against torch autograd
    (every other draw with lengths, the rest of each configuration random)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(1100 + 10 * TORCH_NN_CELLS.index(cell) + draw)
    cfg, arrays = random_configuration(rng, cell, use_lengths=draw % 2 == 0)
    skip_without_lengths(cfg, backend)
    ref = torch_reference(cfg, arrays)
    result, grads = run_fastrnn(cfg, arrays, np.dtype(np.float64), backend)
    problems = mismatches(cfg, ref, result, grads, TOLERANCE[np.dtype(np.float64)])
    shown = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in cfg.items()}
    assert not problems, f"{shown} [{backend}]: " + "; ".join(problems)
