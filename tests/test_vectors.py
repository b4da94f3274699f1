"""Every backend x dtype against the PyTorch float64 autograd vectors.

The .npz files in tests/vectors/ come from tests/vectors/generate_vectors.py
(torch.nn.RNN / LSTM / GRU, and explicit torch ops for the sigmoid RNN), so
they check PyTorch's layout and gate order as well as the math. Each test
prints the max relative error per array, like llm.c's gradient checks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

from conftest import TOLERANCE, rel_err, vector_cell

VECTOR_DIR = Path(__file__).parent / "vectors"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))
GRAD_NAMES = ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")


def load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_every_cell_has_vectors():
    cells = [str(load(p)["cell"]) for p in VECTOR_FILES]
    for cell in fastrnn.CELLS:
        assert cells.count(cell) >= 5, f"expected >= 5 vector files for {cell}, found {cells.count(cell)}"
    names = [p.name for p in VECTOR_FILES]
    assert any("_T1_" in n for n in names) and any("nobias" in n for n in names)
    assert any("noh0" in n for n in names)


def run_vector(v: dict, backend: str, dtype):
    cell = str(v["cell"])
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    res = F.forward(vector_cell(v), cast("x"), cast("weight_ih"), cast("weight_hh"),
                    cast("bias_ih"), cast("bias_hh"), cast("h0"), cast("c0"), backend=backend,
                    training=True)
    grads = F.backward(res, cast("d_output"), cast("d_h_n"), cast("d_c_n"))
    return res, grads


def vector_errors(v: dict, res, grads) -> dict:
    """The relative error of every output and gradient the vector file has
    (asserting that those it lacks are None)."""
    pairs = [("output", res.output), ("h_n", res.h_n)]
    if "c_n" in v:
        pairs.append(("c_n", res.c_n))
    for name in GRAD_NAMES:
        got = getattr(grads, name)
        if f"grad_{name}" in v:
            pairs.append((f"grad_{name}", got))
        else:
            assert got is None, f"grad {name} should be None for this layer"
    return {name: rel_err(got, v[name]) for name, got in pairs}


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_forward_backward_match_torch(path, engine, dtype):
    v = load(path)
    res, grads = run_vector(v, engine, dtype)
    errors = vector_errors(v, res, grads)
    label = f"c-{fastrnn.cpu_isa()}" if engine == "c" else engine
    print(f"\n{path.stem} [{label}/{dtype.name}] " +
          " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[dtype], f"{worst}: relative error {errors[worst]:.3e}"


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_step_by_step_matches_torch_output(path, backend, dtype):
    """Streaming: T calls of step reproduce the whole-sequence outputs."""
    v = load(path)
    cell = str(v["cell"])
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    params = [cast(k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    h, c = cast("h0"), cast("c0")
    if h is None:
        h = np.zeros(v["h_n"].shape, dtype)
        c = np.zeros(v["h_n"].shape, dtype) if cell == "lstm" else None
    x = cast("x")
    outputs = []
    for t in range(x.shape[0]):
        if cell == "lstm":
            h, c = F.step(vector_cell(v), x[t], *params, h, c, backend=backend)
        else:
            h = F.step(vector_cell(v), x[t], *params, h, backend=backend)
        outputs.append(h)
    err = rel_err(np.stack(outputs), v["output"])
    if cell == "lstm":
        err = max(err, rel_err(c, v["c_n"]))
    assert err <= TOLERANCE[dtype], f"relative error {err:.3e}"
