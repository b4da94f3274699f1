"""pytest-benchmark workloads (run: ``pytest bench/``; not part of the test suite).

* ``test_matrix_fastrnn`` / ``test_matrix_torch``: fastrnn[c] and torch's CPU
  module on the shapes of ``fastrnn bench`` (fastrnn.bench), per
  cell and mode (inference, or one training step), float32, one thread.
  Shapes above "small" run only with ``FASTRNN_BENCH_ALL=1`` so that a plain
  ``pytest bench/`` stays quick.
* ``test_train_step`` / ``test_train_step_torch``: one training step per
  (cell, backend) at bench/compare.py's default size, every backend.
* ``test_layer_fastrnn`` / ``test_layer_torch``: ``fastrnn bench``'s layer
  workloads (fastrnn.bench.stacked: 2-layer bidirectional LSTM / GRU with
  lengths) on fastrnn[c] and on torch's packed and padded paths, one thread;
  "stacked-small" only unless ``FASTRNN_BENCH_ALL=1`` adds "stacked".

The problems, the torch peers and the FLOP convention are fastrnn.bench's
(one implementation). Compare within one run, e.g.
``pytest bench/ --benchmark-group-by=param:shape,param:cell,param:mode``.
For the interleaved comparison with ratios and targets, use ``fastrnn bench``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import fastrnn
from fastrnn.bench import peers, stacked, timing

ALL_SHAPES = os.environ.get("FASTRNN_BENCH_ALL") == "1"
QUICK_SHAPES = ("tiny", "small")
COMPARE_SHAPE = timing.Shape("compare", B=16, T=100, I=64, H=128)  # bench/compare.py's default


def _shape_params():
    return [pytest.param(name, id=name, marks=[] if ALL_SHAPES or name in QUICK_SHAPES else
                         [pytest.mark.skip(reason="set FASTRNN_BENCH_ALL=1 for shapes above small")])
            for name in timing.SHAPES]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def one_thread(request):
    """fastrnn (and torch, when imported) on one thread; previous counts restored."""
    torch = request.getfixturevalue("torch") if "torch" in request.fixturenames else None
    with timing.thread_counts(1, torch):
        yield


def _flops_info(benchmark, shape: timing.Shape, cell: str, mode: str) -> None:
    benchmark.extra_info["flops"] = timing.step_flops(shape, cell, mode)
    benchmark.extra_info["shape"] = [shape.B, shape.T, shape.I, shape.H]


@pytest.mark.parametrize("mode", timing.MODES)
@pytest.mark.parametrize("cell", timing.DEFAULT_CELLS)
@pytest.mark.parametrize("shape", _shape_params())
def test_matrix_fastrnn(benchmark, one_thread, shape, cell, mode):
    if "c" not in fastrnn.available_backends():
        pytest.skip("the compiled core is not available")
    problem = timing.make_problem(cell, timing.SHAPES[shape], np.float32)
    _flops_info(benchmark, problem.shape, cell, mode)
    benchmark(timing.fastrnn_callable(problem, "c", mode))


@pytest.mark.parametrize("mode", timing.MODES)
@pytest.mark.parametrize("cell", timing.DEFAULT_CELLS)
@pytest.mark.parametrize("shape", _shape_params())
def test_matrix_torch(benchmark, torch, one_thread, shape, cell, mode):
    problem = timing.make_problem(cell, timing.SHAPES[shape], np.float32)
    _flops_info(benchmark, problem.shape, cell, mode)
    benchmark(peers.torch_callable(problem, mode, torch))


@pytest.mark.parametrize("cell", timing.DEFAULT_CELLS)
@pytest.mark.parametrize("backend", fastrnn.available_backends())
def test_train_step(benchmark, one_thread, cell, backend):
    problem = timing.make_problem(cell, COMPARE_SHAPE, np.float32)
    benchmark(timing.fastrnn_callable(problem, backend, "train"))


@pytest.mark.parametrize("cell", timing.DEFAULT_CELLS)
def test_train_step_torch(benchmark, torch, one_thread, cell):
    problem = timing.make_problem(cell, COMPARE_SHAPE, np.float32)
    benchmark(peers.torch_callable(problem, "train", torch))


def _workload_params():
    return [pytest.param(name, id=name, marks=[] if ALL_SHAPES or name.endswith("-small") else
                         [pytest.mark.skip(reason="set FASTRNN_BENCH_ALL=1 for full-size workloads")])
            for name in ("stacked-small", "stacked")]


@pytest.mark.parametrize("mode", timing.MODES)
@pytest.mark.parametrize("cell", stacked.WORKLOADS["stacked"].cells)
@pytest.mark.parametrize("workload", _workload_params())
def test_layer_fastrnn(benchmark, one_thread, workload, cell, mode):
    if "c" not in fastrnn.available_backends("lengths"):
        pytest.skip("the compiled core (with lengths) is not available")
    problem = stacked.make_layer_problem(stacked.WORKLOADS[workload], cell, np.float32)
    benchmark(stacked.fastrnn_layer_callable(problem, "c", mode, stacked.UNIFORM_QUARTER_TO_T))


@pytest.mark.parametrize("path", [stacked.TORCH_PACKED, stacked.TORCH_PADDED])
@pytest.mark.parametrize("mode", timing.MODES)
@pytest.mark.parametrize("cell", stacked.WORKLOADS["stacked"].cells)
@pytest.mark.parametrize("workload", _workload_params())
def test_layer_torch(benchmark, torch, one_thread, workload, cell, mode, path):
    problem = stacked.make_layer_problem(stacked.WORKLOADS[workload], cell, np.float32)
    module = peers.torch_layer_module(problem, torch)
    lengths = problem.lengths[stacked.UNIFORM_QUARTER_TO_T]
    benchmark(peers.torch_packed_callable(problem, lengths, mode, torch, module)
              if path == stacked.TORCH_PACKED else
              peers.torch_padded_callable(problem, mode, torch, module))
