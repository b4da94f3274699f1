"""Shared fixtures: every backend x dtype runs the same tests.

Errors are measured normwise: max|got - want| / max|want| per array, which is
what "relative error" means in every assertion and printout here (an
elementwise ratio is meaningless for entries that are zero in the reference).
"""
from __future__ import annotations

import contextlib
import os
import tempfile

# hypothesis caches in .hypothesis/ of the working directory even with no
# example database; before any test module imports it, send that elsewhere
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "fastrnn-hypothesis"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastrnn
from fastrnn.backends import BACKENDS

# DEVELOPERS.md: float64 <= 1e-10 relative, float32 <= 1e-4 relative.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
DTYPES = (np.float32, np.float64)


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if want.size == 0:
        return 0.0
    scale = np.max(np.abs(want))
    diff = np.max(np.abs(got - want))
    return float(diff / scale) if scale > 0 else float(diff)


def vector_cell(v: dict):
    """The fastrnn.cells.Cell a stored vector file ran: its ``cell`` name,
    with the hyperparameters the file records (the leaky cell's
    ``leak_rate``; generate_leaky_vectors.py), else the cell's defaults."""
    spec = fastrnn.cells.get(str(v["cell"]))
    values = {name: float(v[name]) for name, _ in spec.hyperparameters if name in v}
    return spec.with_hyperparameters(**values) if values else spec


def _backend_params():
    available = fastrnn.available_backends()
    params = []
    for name in BACKENDS:
        marks = [] if name in available else [pytest.mark.skip(reason=f"backend {name} not available")]
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    return request.param


def _trainer_params():
    from fastrnn import training as tr
    available = tr.available_trainers()
    return [pytest.param(name, id=name, marks=[] if name in available else
                         [pytest.mark.skip(reason=f"backend {name} has no sequence trainer here")])
            for name in BACKENDS]


@pytest.fixture(params=_trainer_params())
def trainer(request):
    """Every backend with a sequence trainer (fastrnn.training.available_trainers)."""
    return request.param


@pytest.fixture
def thread_settings():
    """Restore the thread count and the work threshold after a test that sets them."""
    from fastrnn import threads
    before = fastrnn.get_num_threads()
    yield
    fastrnn.set_num_threads(before)
    threads._set_min_flops(-1.0)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


def random_problem(cell, T, B, I, H, dtype, seed=0, bias=True):
    """A random layer + inputs + upstream gradients as a dict of arrays."""
    rng = np.random.default_rng(seed)
    spec = fastrnn.cells.get(cell)
    G = spec.gates
    k = 1 / np.sqrt(H)
    p = dict(
        x=rng.standard_normal((T, B, I)),
        weight_ih=rng.uniform(-k, k, (G * H, I)),
        weight_hh=rng.uniform(-k, k, (G * H, H)),
        bias_ih=rng.uniform(-k, k, G * H) if bias else None,
        bias_hh=rng.uniform(-k, k, G * H) if bias else None,
        h0=0.5 * rng.standard_normal((B, H)),
        c0=0.5 * rng.standard_normal((B, H)) if spec.has_cell_state else None,
        d_output=rng.standard_normal((T, B, H)),
        d_h_n=rng.standard_normal((B, H)),
        d_c_n=rng.standard_normal((B, H)) if spec.has_cell_state else None,
    )
    return {k_: (None if a is None else a.astype(dtype)) for k_, a in p.items()}


ISAS = ("baseline", "avx2", "avx512")
ENGINES = [("c", isa) for isa in ISAS] + [("numba", None), ("numpy", None)]


@contextlib.contextmanager
def c_kernels(isa):
    """The C backend on kernel table ``isa`` for the duration (skips the test
    if this CPU or build has none), the previous table restored afterwards."""
    if "c" not in fastrnn.available_backends():
        pytest.skip("backend c not available")
    from fastrnn.backends import c
    before = c.active_isa()
    if c.select_isa(isa) != isa:
        c.select_isa(before)
        pytest.skip(f"this CPU or build has no {isa} kernels")
    try:
        yield isa
    finally:
        c.select_isa(before)


@pytest.fixture(params=ENGINES, ids=lambda e: e[0] if e[1] is None else f"c-{e[1]}")
def engine(request):
    """Every backend; for C, every kernel table this CPU supports (the
    dispatched one and those it would fall back to; FASTRNN_ISA does the
    same per process), restored afterwards. Yields the backend name."""
    name, isa = request.param
    if name not in fastrnn.available_backends():
        pytest.skip(f"backend {name} not available")
    if isa is None:
        yield name
        return
    with c_kernels(isa):
        yield name


@pytest.fixture(params=ISAS)
def isa(request):
    """Every kernel table of the C backend this CPU has (see c_kernels)."""
    with c_kernels(request.param):
        yield request.param

