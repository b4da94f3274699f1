"""The benchmark matrix behind ``fastrnn bench``: fastrnn vs torch, all in one run.

    fastrnn bench                               # the whole matrix (minutes)
    fastrnn bench --quick                       # tiny + small shapes, 3 rounds
    fastrnn bench --shapes medium --cells lstm --modes train --threads 1

What it measures. Every cell of the matrix (shape x cell x mode x dtype x
thread count) times each contender on the same problem, in this process:

* shapes (B, T, I, H): tiny (1, 256, 8, 32), small (16, 128, 64, 128),
  medium (32, 100, 256, 512), large (64, 64, 1024, 1024);
* cells: rnn_tanh (Elman, torch.nn.RNN), lstm, gru;
* modes: "inference" (forward only: ``training=False`` / ``torch.no_grad``)
  and "train" (one training step: forward plus full BPTT backward of a fixed
  ``d_output``, gradients for the weights, biases *and* the input x; torch:
  ``module(x)[0].backward(d_output)`` with ``x.requires_grad``);
* dtypes: by default float32 at every shape plus float64 at the small shape
  only (``--dtypes`` replaces that with the given list at every shape);
* threads: 1 and 2 (``fastrnn.set_num_threads`` and ``torch.set_num_threads``
  together; NumPy's BLAS stays on one thread, through threadpoolctl when it
  is installed, see thread_counts; the previous counts are restored
  afterwards).

Contenders: fastrnn[c] always (when the compiled core loads) and torch (when
it imports; its module gets the very same parameters, in the same dtype),
with fastrnn[numba] and fastrnn[numpy] beside them at the tiny and small
shapes only by default (they take seconds to minutes at the larger ones;
``--all-backends`` times them everywhere, ``--backends`` names the fastrnn
backends explicitly).

How it times. After one warm-up call per contender (numba compiles there,
buffers get touched, thread pools start), the contenders take turns,
round-robin, for ``--repeat`` rounds, each round starting one contender
further along, so that machine noise and slow drifts fall on all of them
alike. A sample is one call, or for calls under 10 ms enough back-to-back
calls to fill 10 ms (timer resolution and call jitter would dominate
otherwise); the samples are recorded as seconds per call. In multi-thread
cells every sample starts after 20 ms of idle time (SETTLE_S), so that a
thread pool the previous contender left spinning does not take the cores
this one needs. Reported per
contender: median, min and max, achieved GFLOP/s, and "x torch" = torch's
median / the contender's median (> 1: faster than torch).

FLOP convention (stated once, used everywhere): a forward pass costs
``2 * T * B * (I + H) * G * H`` floating-point operations, G = 1 / 4 / 3 gates
for rnn_tanh / lstm / gru: the two matrix products x W_ih^T and h W_hh^T per
step; the elementwise gate arithmetic is ignored. A training step counts
3 x forward: the forward products, the products of the gate gradients with
the weights (dx, dh) and the weight-gradient products (dW_ih, dW_hh).
GFLOP/s is that count over the median time, for every contender alike.

Also measured in the same run: the machine's single-thread SGEMM rate
(torch.mm, else numpy.matmul with its BLAS pinned to one thread, on square
float32 n = 1024, median of 5) against which every large-shape row is shown
as a percentage; and the streaming single step (LSTM, I = H = 32, batch 1,
float32, one thread): microseconds per call from Python of the fastest
single-step API fastrnn has (an ``LSTM.stream()`` object when the layer has
one, else ``functional.step``), beside torch.nn.LSTMCell under no_grad.

The output: one header line (fastrnn version and ISA, torch version, CPU,
logical CPUs, date), a GitHub-markdown table of every row, and a "targets"
table checking fastrnn[c]'s one-thread float32 ratios (TRAIN_TARGETS; an
inference row must reach its shape and cell's training goal), the large
shapes' share of SGEMM, the two-thread scaling (medians) and the streaming
step against the project's goals (only targets whose data this run measured
appear). Everything also
goes to a JSON file (raw samples included) and, when matplotlib is
installed, a bar chart; both are written atomically (a temporary file in
the same directory, then ``os.replace``), so an interrupted run never leaves
a half-written file. Ctrl-C stops after the current call, prints and saves
what was measured (a matrix cell interrupted midway is dropped) and exits
with status 130.

What it is not: not a statistical study (medians of a handful of samples on
whatever else the machine is doing; compare ratios within one run, not
across machines or runs), not a test of correctness (see tests/ and
``fastrnn check``), and not the min-char-rnn workload, which is
``fastrnn bench minchar`` (fastrnn.bench_minchar).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import fastrnn
from fastrnn import functional as F
from fastrnn.backends import BACKENDS

# ---------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Shape:
    """One problem size: batch B, sequence length T, input size I, hidden size H."""

    name: str
    B: int
    T: int
    I: int  # noqa: E741 - the conventional name
    H: int

    def describe(self) -> str:
        return f"{self.name} (B={self.B}, T={self.T}, I={self.I}, H={self.H})"


SHAPES: Dict[str, Shape] = {s.name: s for s in (
    Shape("tiny", 1, 256, 8, 32),
    Shape("small", 16, 128, 64, 128),
    Shape("medium", 32, 100, 256, 512),
    Shape("large", 64, 64, 1024, 1024),
)}
CELLS: Tuple[str, ...] = ("rnn_tanh", "lstm", "gru")
GATES: Dict[str, int] = {"rnn_tanh": 1, "lstm": 4, "gru": 3}
MODES: Tuple[str, ...] = ("inference", "train")
DTYPES: Tuple[str, ...] = ("float32", "float64")
DEFAULT_THREADS: Tuple[int, ...] = (1, 2)
DEFAULT_REPEAT = 5
QUICK_SHAPES: Tuple[str, ...] = ("tiny", "small")
QUICK_REPEAT = 3
# The default dtypes: float32 at every shape; float64 only where it is cheap
# (the large shape in float64 would double the memory and the run time).
FLOAT64_SHAPES: Tuple[str, ...] = ("small",)
# numba and numpy take seconds to minutes per call at the larger shapes.
SLOW_BACKEND_SHAPES: Tuple[str, ...] = ("tiny", "small")
DEFAULT_JSON = "fastrnn-bench.json"
DEFAULT_PNG = "fastrnn-bench.png"

TORCH = "torch"


def fastrnn_label(backend: str) -> str:
    return f"fastrnn[{backend}]"


# --------------------------------------------------------------- the targets

# The project's goals, as "x torch" at one thread, float32, training step.
# Inference must reach at least the training ratio of the same shape and cell.
TRAIN_TARGETS: Dict[str, Dict[str, float]] = {
    "lstm": {"tiny": 3.0, "small": 1.2, "medium": 1.0, "large": 1.0},
    "gru": {"tiny": 10.0, "small": 3.0, "medium": 1.2, "large": 1.0},
    "rnn_tanh": {"tiny": 10.0, "small": 3.0, "medium": 1.2, "large": 1.0},
}
SGEMM_SHARE_TARGET = 0.75  # large shapes, one thread, of the single-thread SGEMM rate
SGEMM_SHARE_SHAPES: Tuple[str, ...] = ("large",)
TWO_THREAD_TARGET = 1.7  # 2-thread speed over 1-thread speed, fastrnn[c]
TWO_THREAD_SHAPES: Tuple[str, ...] = ("medium", "large")
STREAM_TARGET_US = 2.0  # streaming LSTM step, microseconds per call

# ------------------------------------------------------------ timing knobs

MIN_SAMPLE_S = 0.010  # a sample lasts at least this long (several calls when they are short)
MAX_CALLS_PER_SAMPLE = 10_000
SIZING_CALL_LIMIT_S = 1.0  # warm-ups longer than this are not followed by a sizing call
# Idle time before each sample of a multi-thread cell: the contender that ran
# just before may leave its pool spinning (torch's OpenMP threads spin for a
# few ms after a parallel region, fastrnn's workers for 0.1 ms), and a
# spinning thread holds the core the next contender's second thread needs.
# Measured on 2 cores (small LSTM training step, fastrnn 2 threads right
# after torch 2 threads): 14.0 ms with no pause, 10.5 after 2 ms, 8.5 after
# 10 ms, the same as with no torch around.
SETTLE_S = 0.020
SGEMM_N = 1024
SGEMM_SAMPLES = 5
STREAM_I, STREAM_H = 32, 32
STREAM_CALLS = 2000
STREAM_SAMPLES = 7


# ------------------------------------------------------------ the problems

@dataclass
class Problem:
    """One layer's parameters, an input and a fixed upstream gradient."""

    cell: str
    shape: Shape
    dtype: np.dtype
    x: np.ndarray  # (T, B, I)
    weight_ih: np.ndarray  # (G*H, I), PyTorch's layout
    weight_hh: np.ndarray  # (G*H, H)
    bias_ih: np.ndarray  # (G*H,)
    bias_hh: np.ndarray
    d_output: np.ndarray  # (T, B, H)

    @property
    def params(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


def make_problem(cell: str, shape: Shape, dtype: Any = np.float32, seed: int = 0) -> Problem:
    """A random layer with PyTorch's initialisation U(-1/sqrt(H), 1/sqrt(H)),
    a standard-normal input and upstream gradient; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    G, H, I = GATES[cell], shape.H, shape.I
    k = 1.0 / math.sqrt(H)

    def uniform(*size: int) -> np.ndarray:
        return rng.uniform(-k, k, size).astype(dtype)

    def normal(*size: int) -> np.ndarray:
        return rng.standard_normal(size, dtype=np.float32).astype(dtype, copy=False)

    return Problem(cell, shape, dtype, x=normal(shape.T, shape.B, I),
                   weight_ih=uniform(G * H, I), weight_hh=uniform(G * H, H),
                   bias_ih=uniform(G * H), bias_hh=uniform(G * H),
                   d_output=normal(shape.T, shape.B, H))


def forward_flops(shape: Shape, cell: str) -> int:
    """2*T*B*(I+H)*G*H: the two matrix products of a forward pass (see the module docstring)."""
    return 2 * shape.T * shape.B * (shape.I + shape.H) * GATES[cell] * shape.H


def step_flops(shape: Shape, cell: str, mode: str) -> int:
    """FLOPs of one call in ``mode``: a forward pass, or 3x that for a training step."""
    return forward_flops(shape, cell) * (3 if mode == "train" else 1)


def fastrnn_callable(problem: Problem, backend: str, mode: str) -> Callable[[], object]:
    """One inference forward, or one training step (forward + full backward), on fastrnn."""
    cell, x, params, d_out = problem.cell, problem.x, problem.params, problem.d_output
    if mode == "inference":
        return lambda: F.forward(cell, x, *params, backend=backend)

    def train_step() -> F.Gradients:
        return F.backward(F.forward(cell, x, *params, backend=backend, training=True), d_out)
    return train_step


def torch_module(problem: Problem, torch: Any) -> Any:
    """torch.nn.RNN / LSTM / GRU holding a copy of the problem's parameters, in its dtype."""
    I, H = problem.shape.I, problem.shape.H
    module = {"rnn_tanh": lambda: torch.nn.RNN(I, H, nonlinearity="tanh"),
              "lstm": lambda: torch.nn.LSTM(I, H),
              "gru": lambda: torch.nn.GRU(I, H)}[problem.cell]()
    module = module.to(torch.float64 if problem.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for name, p in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           problem.params):
            getattr(module, name).copy_(torch.from_numpy(p))
    return module


def torch_callable(problem: Problem, mode: str, torch: Any,
                   module: Any = None) -> Callable[[], object]:
    """The torch peer of :func:`fastrnn_callable` (same parameters, input, d_output)."""
    module = torch_module(problem, torch) if module is None else module
    if mode == "inference":
        x = torch.from_numpy(problem.x)

        def infer() -> Any:
            with torch.no_grad():
                return module(x)
        return infer
    x = torch.from_numpy(problem.x).requires_grad_(True)  # dx is computed, as fastrnn does
    d_out = torch.from_numpy(problem.d_output)

    def train_step() -> None:
        # Fresh gradients each call: accumulating into old ones would add work fastrnn does not do.
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].backward(d_out)
    return train_step


# --------------------------------------------------------------- threads

@contextlib.contextmanager
def thread_counts(n: int, torch: Any = None) -> Iterator[None]:
    """Run the body with ``n`` threads for fastrnn's C core and torch, and NumPy's
    BLAS pinned to one; restore the previous counts afterwards, also on Ctrl-C.

    NumPy's BLAS stays at one thread at every thread count: OpenBLAS's idle
    workers spin for about 0.1 s after each call (seen in perf as
    blas_thread_server), so with two of them the numpy contender would hold
    the second core through the next contender's sample (a fastrnn call
    that never uses a second thread, tiny LSTM inference, took 1.5x as long
    right after it). The numpy backend's two-thread rows therefore show it
    on one BLAS thread."""
    previous_fastrnn = fastrnn.get_num_threads()
    previous_torch = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # NumPy's BLAS keeps its own count; only the numpy backend notices
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        try:
            fastrnn.set_num_threads(n)
            if torch is not None:
                torch.set_num_threads(n)
            yield
        finally:
            fastrnn.set_num_threads(previous_fastrnn)
            if torch is not None:
                torch.set_num_threads(previous_torch)


# ----------------------------------------------------------------- timing

def warm_up(fn: Callable[[], object]) -> int:
    """Call ``fn`` once (numba compiles, buffers are touched, thread pools start) and
    return how many back-to-back calls make one sample of at least MIN_SAMPLE_S."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first >= SIZING_CALL_LIMIT_S:
        return 1  # a long call is a sample on its own (or it compiled; either way, no second call)
    t0 = time.perf_counter()
    fn()  # the first call may include one-time costs: size the samples by a second one
    second = max(time.perf_counter() - t0, 1e-9)
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(MIN_SAMPLE_S / second)))


def time_round_robin(calls: Mapping[str, Callable[[], object]], repeat: int,
                     calls_per_sample: Mapping[str, int],
                     settle_s: float = 0.0) -> Dict[str, List[float]]:
    """``repeat`` samples of seconds per call for every contender, taken in rounds.

    Each round times every contender once, starting one contender further
    along than the previous round, so that drifts (clock frequency, other
    load) and any after-effect of the contender that ran just before
    (caches, turbo headroom) are shared out evenly. ``settle_s`` of idle
    time precede every sample (SETTLE_S for multi-thread cells).
    """
    names = list(calls)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeat):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            fn, n = calls[name], calls_per_sample[name]
            if settle_s > 0:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return samples


# ---------------------------------------------------------------- results

@dataclass
class Result:
    """One contender in one matrix cell."""

    shape: str
    B: int
    T: int
    I: int  # noqa: E741
    H: int
    cell: str
    mode: str
    dtype: str
    threads: int
    contender: str
    flops: int
    calls_per_sample: int
    samples_s: List[float]
    median_s: float
    min_s: float
    max_s: float
    gflops: float
    x_torch: Optional[float] = None  # torch's median / this median; None without torch
    pct_of_sgemm: Optional[float] = None  # large shapes: gflops / the SGEMM rate, in percent

    @property
    def key(self) -> Tuple[str, str, str, str, int, str]:
        return (self.shape, self.cell, self.mode, self.dtype, self.threads, self.contender)


@dataclass
class Plan:
    """What to measure: the selected slice of the matrix and the contenders."""

    shapes: List[Shape]
    cells: List[str] = field(default_factory=lambda: list(CELLS))
    modes: List[str] = field(default_factory=lambda: list(MODES))
    threads: List[int] = field(default_factory=lambda: list(DEFAULT_THREADS))
    dtypes: Optional[List[str]] = None  # None: float32 everywhere + float64 at FLOAT64_SHAPES
    repeat: int = DEFAULT_REPEAT
    backends: Optional[List[str]] = None  # None: c everywhere, numba/numpy at SLOW_BACKEND_SHAPES
    all_backends: bool = False
    torch: bool = True

    def dtypes_at(self, shape: Shape) -> List[str]:
        if self.dtypes is not None:
            return list(self.dtypes)
        return ["float32", "float64"] if shape.name in FLOAT64_SHAPES else ["float32"]

    def backends_at(self, shape: Shape) -> List[str]:
        available = fastrnn.available_backends()
        if self.backends is not None:
            return [b for b in self.backends if b in available]
        if self.all_backends or shape.name in SLOW_BACKEND_SHAPES:
            return available
        return [b for b in available if b == "c"]

    def size(self) -> int:
        """The number of matrix cells (shape x cell x mode x dtype x threads) planned."""
        return sum(len(self.cells) * len(self.modes) * len(self.threads) * len(self.dtypes_at(s))
                   for s in self.shapes)


def summarize(problem: Problem, mode: str, threads: int, contender: str, samples: List[float],
              calls_per_sample: int) -> Result:
    shape = problem.shape
    flops = step_flops(shape, problem.cell, mode)
    median = statistics.median(samples)
    return Result(shape=shape.name, B=shape.B, T=shape.T, I=shape.I, H=shape.H, cell=problem.cell,
                  mode=mode, dtype=problem.dtype.name, threads=threads, contender=contender,
                  flops=flops, calls_per_sample=calls_per_sample, samples_s=list(samples),
                  median_s=median, min_s=min(samples), max_s=max(samples),
                  gflops=flops / median / 1e9)


def contender_order(backends: Sequence[str], with_torch: bool) -> List[Tuple[str, Optional[str]]]:
    """(label, fastrnn backend or None for torch) in report order: fastrnn[c], torch,
    then the other backends (numba, numpy)."""
    ordered = [(fastrnn_label(b), b) for b in BACKENDS if b in backends]
    if with_torch:
        ordered.insert(1 if "c" in backends else 0, (TORCH, None))
    return ordered


def measure_matrix_cell(problem: Problem, mode: str, threads: int, backends: Sequence[str],
                        torch: Any, repeat: int, sgemm_gflops: Optional[float]) -> List[Result]:
    """Time every contender on one (shape, cell, mode, dtype, threads) cell, interleaved."""
    with thread_counts(threads, torch):
        calls: Dict[str, Callable[[], object]] = {}
        for label, backend in contender_order(backends, torch is not None):
            calls[label] = (torch_callable(problem, mode, torch) if backend is None else
                            fastrnn_callable(problem, backend, mode))
        per_sample = {name: warm_up(fn) for name, fn in calls.items()}
        samples = time_round_robin(calls, repeat, per_sample,
                                   settle_s=SETTLE_S if threads > 1 else 0.0)
    results = [summarize(problem, mode, threads, name, samples[name], per_sample[name])
               for name in calls]
    torch_median = next((r.median_s for r in results if r.contender == TORCH), None)
    for r in results:
        if torch_median is not None:
            r.x_torch = torch_median / r.median_s
        if sgemm_gflops and r.shape in SGEMM_SHARE_SHAPES:
            r.pct_of_sgemm = 100.0 * r.gflops / sgemm_gflops
    return results


def run_matrix(plan: Plan, torch: Any, sgemm_gflops: Optional[float]) -> Iterator[List[Result]]:
    """Measure the plan's matrix cells in order; yields each cell's results when it is done."""
    for shape in plan.shapes:
        backends = plan.backends_at(shape)
        if not backends and torch is None:
            continue
        for cell in plan.cells:
            for dtype in plan.dtypes_at(shape):
                problem = make_problem(cell, shape, dtype)
                for mode in plan.modes:
                    for threads in plan.threads:
                        results = measure_matrix_cell(problem, mode, threads, backends, torch,
                                                      plan.repeat, sgemm_gflops)
                        # The torch module and fastrnn's workspaces of this cell are garbage
                        # now: free them before the next cell allocates its own.
                        gc.collect()
                        yield results
                del problem
                gc.collect()


# ---------------------------------------------------- SGEMM and streaming

def measure_sgemm(torch: Any = None, n: int = SGEMM_N,
                  samples: int = SGEMM_SAMPLES) -> Dict[str, Any]:
    """The single-thread float32 GEMM rate: square n x n products, median of ``samples``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        library = "torch.mm"

        def product() -> Any:
            return torch.mm(ta, tb)
    else:
        library = "numpy.matmul"

        def product() -> Any:
            return a @ b
    with thread_counts(1, torch):  # also pins NumPy's BLAS, when threadpoolctl is there
        product()
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            product()
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"library": library, "n": n, "threads": 1, "samples_s": times, "median_s": median,
            "gflops": 2.0 * n ** 3 / median / 1e9}


def fastrnn_stream_step() -> Tuple[str, Callable[[], object]]:
    """(name, one-step callable) for the fastest single-step API fastrnn has: a
    ``LSTM(...).stream(batch=1)`` object if the layer has one (state kept inside,
    updated in place), else ``functional.step`` carrying (h, c) from call to call."""
    backend = "c" if "c" in fastrnn.available_backends() else None
    layer = fastrnn.LSTM(STREAM_I, STREAM_H, dtype=np.float32, seed=0, backend=backend)
    x = np.random.default_rng(1).standard_normal((1, STREAM_I), dtype=np.float32)
    if hasattr(layer, "stream"):
        stream = layer.stream(batch=1)
        return "fastrnn.LSTM.stream", lambda: stream(x)
    params = (layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh)
    state = [np.zeros((1, STREAM_H), np.float32), np.zeros((1, STREAM_H), np.float32)]

    def step() -> None:
        state[0], state[1] = F.step("lstm", x, *params, state[0], state[1], backend=backend)
    return "fastrnn.functional.step", step


def torch_stream_step(torch: Any) -> Callable[[], object]:
    """torch.nn.LSTMCell on the same step, under no_grad, carrying (h, c)."""
    cell = torch.nn.LSTMCell(STREAM_I, STREAM_H)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, STREAM_I), dtype=np.float32))
    state = [torch.zeros(1, STREAM_H), torch.zeros(1, STREAM_H)]

    def step() -> None:
        with torch.no_grad():
            state[0], state[1] = cell(x, (state[0], state[1]))
    return step


def measure_stream(torch: Any = None) -> Dict[str, Any]:
    """Microseconds per call of one streaming LSTM step, fastrnn and torch interleaved."""
    api, step = fastrnn_stream_step()
    calls: Dict[str, Callable[[], object]] = {"fastrnn": step}
    if torch is not None:
        calls[TORCH] = torch_stream_step(torch)
    with thread_counts(1, torch):
        for fn in calls.values():
            for _ in range(100):  # warm-up
                fn()
        samples = time_round_robin(calls, STREAM_SAMPLES, {name: STREAM_CALLS for name in calls})
    out: Dict[str, Any] = {"cell": "lstm", "I": STREAM_I, "H": STREAM_H, "batch": 1,
                           "dtype": "float32", "threads": 1, "calls_per_sample": STREAM_CALLS}
    for name, s in samples.items():
        us = [t * 1e6 for t in s]
        out[name] = {"api": api if name == "fastrnn" else "torch.nn.LSTMCell",
                     "us_per_call": statistics.median(us), "min_us": min(us), "max_us": max(us),
                     "samples_us": us}
    return out


# ---------------------------------------------------------------- targets

def _target(name: str, shape: str, measured: float, op: str, threshold: float,
            unit: str = "") -> Dict[str, Any]:
    met = measured >= threshold if op == ">=" else measured < threshold
    return {"target": name, "shape": shape, "measured": measured, "op": op,
            "threshold": threshold, "unit": unit, "met": bool(met)}


def evaluate_targets(results: Sequence[Result], stream: Optional[Mapping[str, Any]],
                     sgemm_gflops: Optional[float]) -> List[Dict[str, Any]]:
    """Check the measured numbers against the project's goals; a target appears
    only when everything it needs was measured in this run."""
    by_key = {r.key: r for r in results}
    c = fastrnn_label("c")
    targets: List[Dict[str, Any]] = []
    for cell, per_shape in TRAIN_TARGETS.items():
        for mode in MODES:
            for shape, goal in per_shape.items():
                r = by_key.get((shape, cell, mode, "float32", 1, c))
                if r is not None and r.x_torch is not None:
                    targets.append(_target(f"{cell} {mode} x torch (1 thread, float32)", shape,
                                           r.x_torch, ">=", goal, "x"))
    for cell in CELLS:
        for mode in MODES:
            for shape in SGEMM_SHARE_SHAPES:
                r = by_key.get((shape, cell, mode, "float32", 1, c))
                if r is not None and sgemm_gflops:
                    targets.append(_target(f"{cell} {mode} GFLOP/s share of 1-thread SGEMM", shape,
                                           100.0 * r.gflops / sgemm_gflops, ">=",
                                           100.0 * SGEMM_SHARE_TARGET, "%"))
    for cell in CELLS:
        for mode in MODES:
            for shape in TWO_THREAD_SHAPES:
                one = by_key.get((shape, cell, mode, "float32", 1, c))
                two = by_key.get((shape, cell, mode, "float32", 2, c))
                if one is not None and two is not None:
                    targets.append(_target(f"{cell} {mode} 2-thread speed-up (float32)", shape,
                                           one.median_s / two.median_s, ">=", TWO_THREAD_TARGET,
                                           "x"))
    if stream and "fastrnn" in stream:
        targets.append(_target(f"streaming LSTM step ({stream['fastrnn']['api']})", "-",
                               stream["fastrnn"]["us_per_call"], "<", STREAM_TARGET_US, " µs"))
    return targets


# ----------------------------------------------------------------- output

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


THREAD_ENV_VARS: Tuple[str, ...] = ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                    "OPENBLAS_NUM_THREADS")


def thread_env_warnings(threads: Sequence[int]) -> List[str]:
    """Notes on thread-count variables below the counts asked for: the libraries size
    their pools from them at start-up, and torch in particular runs its multi-thread
    timings far slower than normal when OMP_NUM_THREADS is lower than its thread count."""
    notes = []
    for name in THREAD_ENV_VARS[1:]:  # FASTRNN_NUM_THREADS only sets a default we override
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and any(t > int(value) for t in threads):
            notes.append(f"note: {name}={value} is set, below --threads {max(threads)}: "
                         "libraries size their thread pools from it at start-up, so the "
                         "multi-thread rows (torch's especially) may not be representative")
    return notes


def machine_facts(torch: Any) -> Dict[str, Any]:
    return {
        "fastrnn": fastrnn.__version__,
        "isa": fastrnn.cpu_isa() or None,
        "torch": getattr(torch, "__version__", None),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "fastrnn_default_threads": fastrnn.get_num_threads(),
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "env": {name: os.environ[name] for name in THREAD_ENV_VARS if name in os.environ},
    }


def header_line(m: Mapping[str, Any]) -> str:
    torch = f"torch {m['torch']}" if m["torch"] else "torch not used"
    return (f"fastrnn {m['fastrnn']} (ISA {m['isa'] or 'n/a: no compiled core'}), {torch}, "
            f"{m['cpu']}, {m['logical_cpus']} logical CPUs, {m['date']}")


def _num(value: float) -> str:
    """Three significant digits or so, without an exponent."""
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.2g}"


def _ms(seconds: float) -> str:
    return _num(seconds * 1e3)


# (title, width, right-aligned): fixed widths, so rows can be printed as they are measured.
TABLE_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("shape", 6, False), ("cell", 8, False), ("mode", 9, False), ("dtype", 7, False),
    ("threads", 7, True), ("contender", 14, False), ("median ms", 9, True),
    ("min–max ms", 13, True), ("GFLOP/s", 16, True), ("× torch", 7, True))


def _markdown_row(cells: Sequence[str], columns: Sequence[Tuple[str, int, bool]]) -> str:
    return "| " + " | ".join(c.rjust(w) if right else c.ljust(w)
                             for c, (_, w, right) in zip(cells, columns)) + " |"


def _markdown_rule(columns: Sequence[Tuple[str, int, bool]]) -> str:
    return "|" + "|".join("-" * (w + 1) + ":" if right else "-" * (w + 2)
                          for _, w, right in columns) + "|"


def table_header() -> List[str]:
    return [_markdown_row([t for t, _, _ in TABLE_COLUMNS], TABLE_COLUMNS),
            _markdown_rule(TABLE_COLUMNS)]


def table_row(r: Result) -> str:
    gflops = _num(r.gflops) + (f" ({r.pct_of_sgemm:.0f}% SGEMM)" if r.pct_of_sgemm is not None else "")
    return _markdown_row([r.shape, r.cell, r.mode, r.dtype, str(r.threads), r.contender,
                          _ms(r.median_s), f"{_ms(r.min_s)}–{_ms(r.max_s)}", gflops,
                          "–" if r.x_torch is None else f"{r.x_torch:.2f}"], TABLE_COLUMNS)


TARGET_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("target", 50, False), ("shape", 6, False), ("measured", 9, True), ("goal", 9, True),
    ("status", 7, False))


def targets_table(targets: Sequence[Mapping[str, Any]]) -> List[str]:
    lines = [_markdown_row([t for t, _, _ in TARGET_COLUMNS], TARGET_COLUMNS),
             _markdown_rule(TARGET_COLUMNS)]
    for t in targets:
        unit = t["unit"]
        measured = f"{_num(t['measured'])}{unit}" if unit != "x" else f"{t['measured']:.2f}x"
        goal = f"{'≥' if t['op'] == '>=' else '<'} {t['threshold']:g}{unit}"
        lines.append(_markdown_row([t["target"], t["shape"], measured, goal,
                                    "met" if t["met"] else "not met"], TARGET_COLUMNS))
    return lines


def stream_lines(stream: Mapping[str, Any]) -> List[str]:
    cols = (("streaming step: LSTM I=32 H=32, batch 1, float32, 1 thread", 60, False),
            ("µs per call", 11, True), ("min–max µs", 11, True))
    lines = [_markdown_row([c for c, _, _ in cols], cols), _markdown_rule(cols)]
    for name in ("fastrnn", TORCH):
        if name in stream:
            s = stream[name]
            lines.append(_markdown_row([s["api"], f"{s['us_per_call']:.2f}",
                                        f"{s['min_us']:.2f}–{s['max_us']:.2f}"], cols))
    return lines


def write_atomically(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> None:
    """Write ``path`` through a temporary file in its directory and os.replace, so
    that readers (and an interrupted run) see the old file or the whole new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    def dump(f: IO[str]) -> None:
        json.dump(document, f, indent=1)
        f.write("\n")
    write_atomically(path, dump)


def write_chart(path: Path, results: Sequence[Result]) -> str:
    """A log-scale bar chart of fastrnn[c]'s "x torch" at 1 thread, float32, per
    (shape, cell, mode); returns the line to print (what was written, or why not)."""
    rows = [r for r in results if r.contender == fastrnn_label("c") and r.threads == 1
            and r.dtype == "float32" and r.x_torch is not None]
    if not rows:
        return "chart skipped: no fastrnn[c] vs torch ratio at 1 thread, float32 in this run"
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed, and no GUI backend surprises
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed"
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(rows) + 2.0), 4.8))
    try:
        positions = list(range(len(rows)))
        ax.bar(positions, [r.x_torch for r in rows],
               color=["tab:green" if r.x_torch >= 1 else "tab:red" for r in rows])
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(positions)
        ax.set_xticklabels([f"{r.shape} {r.cell} {r.mode}" for r in rows], rotation=60,
                           ha="right", fontsize=8)
        ax.set_ylabel("× torch (torch time / fastrnn[c] time)")
        ax.set_title(f"fastrnn[c] vs torch, 1 thread, float32 ({cpu_model()})", fontsize=9)
        fig.tight_layout()
        write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=120), binary=True)
    finally:
        plt.close(fig)
    return f"chart: {path}"


# ------------------------------------------------------------------- run

def import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def run_and_report(plan: Plan, *, torch: Any = None, json_path: Optional[Path] = None,
                   png_path: Optional[Path] = None) -> int:
    """Measure ``plan``, printing as it goes; write the JSON and chart. Returns the
    exit status: 0, or 130 when Ctrl-C stopped the measurements."""
    machine = machine_facts(torch)
    print(header_line(machine))
    print("shapes: " + ", ".join(s.describe() for s in plan.shapes)
          + f"; {plan.size()} matrix cells, {plan.repeat} round{'s' * (plan.repeat != 1)} "
          "each after a warm-up; "
          "x torch = torch time / contender time (> 1: faster than torch); "
          "FLOPs: forward 2*T*B*(I+H)*G*H, train step 3x forward", flush=True)
    for note in thread_env_warnings(plan.threads):
        print(note, flush=True)
    document: Dict[str, Any] = {"machine": machine, "plan": _plan_facts(plan),
                                "sgemm_gflops": None, "sgemm": None, "results": [],
                                "stream": None, "targets": [], "interrupted": False}
    results: List[Result] = []
    interrupted = False
    try:
        document["sgemm"] = measure_sgemm(torch)
        document["sgemm_gflops"] = document["sgemm"]["gflops"]
        print(f"\nsingle-thread SGEMM ({document['sgemm']['library']}, float32, n={SGEMM_N}): "
              f"{document['sgemm_gflops']:.1f} GFLOP/s", flush=True)
        document["stream"] = measure_stream(torch)
        print("\n" + "\n".join(stream_lines(document["stream"])) + "\n", flush=True)
        print("\n".join(table_header()), flush=True)
        for cell_results in run_matrix(plan, torch, document["sgemm_gflops"]):
            results.extend(cell_results)
            for r in cell_results:
                print(table_row(r), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: {len(results)} rows measured before Ctrl-C are kept; "
              "the matrix cell in progress is dropped", flush=True)
    document["results"] = [asdict(r) for r in results]
    document["targets"] = evaluate_targets(results, document["stream"], document["sgemm_gflops"])
    document["interrupted"] = interrupted
    if document["targets"]:
        print("\ntargets (fastrnn[c]; only those measured in this run):")
        print("\n".join(targets_table(document["targets"])))
    else:
        print("\ntargets: none measurable in this run")
    status = 130 if interrupted else 0
    try:
        if json_path is not None:
            write_json(json_path, document)
            print(f"\nresults: {json_path}")
        if png_path is not None:
            print("chart skipped: interrupted" if interrupted else write_chart(png_path, results))
    except OSError as exc:
        print(f"fastrnn bench: error: cannot write {exc.filename or ''}: {exc.strerror or exc}",
              file=sys.stderr)
        return status or 1
    return status


def _plan_facts(plan: Plan) -> Dict[str, Any]:
    return {"shapes": [asdict(s) for s in plan.shapes], "cells": plan.cells, "modes": plan.modes,
            "threads": plan.threads,
            "dtypes": {s.name: plan.dtypes_at(s) for s in plan.shapes},
            "contenders": {s.name: [label for label, _ in contender_order(plan.backends_at(s),
                                                                          plan.torch)]
                           for s in plan.shapes},
            "repeat": plan.repeat, "min_sample_s": MIN_SAMPLE_S}


# ------------------------------------------------------------------- CLI

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _unique(values: Sequence[Any]) -> List[Any]:
    return list(dict.fromkeys(values))


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0],
        epilog="Shapes (B, T, I, H): " + ", ".join(f"{s.name} ({s.B}, {s.T}, {s.I}, {s.H})"
                                                   for s in SHAPES.values())
               + ". The min-char-rnn workload: 'fastrnn bench minchar --help'. Exit status: "
                 "0, 130 after Ctrl-C (what was measured is printed and saved), 2 for bad "
                 "arguments.")
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=None,
                    help="(default: all; --quick: tiny small)")
    ap.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--threads", nargs="+", type=_positive_int, default=list(DEFAULT_THREADS),
                    help="thread counts for fastrnn and torch alike (default: 1 2)")
    ap.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=None,
                    help="dtypes at every shape (default: float32 at every shape, plus "
                         f"float64 at {', '.join(FLOAT64_SHAPES)} only)")
    ap.add_argument("--repeat", type=_positive_int, default=None,
                    help=f"timed rounds per matrix cell (default: {DEFAULT_REPEAT}; "
                         f"--quick: {QUICK_REPEAT})")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=None,
                       help="fastrnn backends to time, at every shape (default: c everywhere, "
                            f"numba and numpy at {' and '.join(SLOW_BACKEND_SHAPES)} only)")
    which.add_argument("--all-backends", action="store_true",
                       help="every available fastrnn backend at every shape (slow)")
    ap.add_argument("--no-torch", action="store_true", help="do not import or time torch")
    ap.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                    help=f"results file ({DEFAULT_JSON}; '' for none)")
    ap.add_argument("--no-json", action="store_true", help="write no results file")
    ap.add_argument("--png", default=DEFAULT_PNG, metavar="PATH",
                    help=f"bar chart, when matplotlib is installed ({DEFAULT_PNG}; '' for none)")
    ap.add_argument("--no-png", action="store_true", help="draw no chart")
    ap.add_argument("--quick", action="store_true",
                    help=f"shapes {' '.join(QUICK_SHAPES)} and {QUICK_REPEAT} rounds (explicit "
                         "--shapes / --repeat still win): a smoke run")
    return ap


def _output_path(ap: argparse.ArgumentParser, option: str, value: str, disabled: bool) -> Optional[Path]:
    """The path to write, None when disabled; refuses up front (exit 2) a path that
    could not be written at the end of a long run."""
    if disabled or not value:
        return None
    path = Path(value)
    if path.is_dir():
        ap.error(f"{option} {value} is a directory")
    parent = path.parent
    if not parent.is_dir():
        ap.error(f"{option}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        ap.error(f"{option}: directory {parent} is not writable")
    return path


def plan_from_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    shape_names = args.shapes if args.shapes is not None else (
        list(QUICK_SHAPES) if args.quick else list(SHAPES))
    repeat = args.repeat if args.repeat is not None else (QUICK_REPEAT if args.quick else DEFAULT_REPEAT)
    if args.backends is not None:
        available = fastrnn.available_backends()
        missing = [b for b in args.backends if b not in available]
        if missing:
            ap.error(f"--backends: {', '.join(missing)} not available here "
                     f"(available: {', '.join(available)})")
    return Plan(shapes=[SHAPES[n] for n in _unique(shape_names)], cells=_unique(args.cells),
                modes=_unique(args.modes), threads=_unique(args.threads),
                dtypes=None if args.dtypes is None else _unique(args.dtypes), repeat=repeat,
                backends=None if args.backends is None else _unique(args.backends),
                all_backends=args.all_backends, torch=not args.no_torch)


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``fastrnn bench``: parse ``argv``, run the matrix, return the exit status."""
    ap = build_parser(prog)
    args = ap.parse_args(argv)
    plan = plan_from_args(ap, args)
    json_path = _output_path(ap, "--json", args.json, args.no_json)
    png_path = _output_path(ap, "--png", args.png, args.no_png)
    torch = import_torch() if plan.torch else None
    if torch is None:
        plan.torch = False
    return run_and_report(plan, torch=torch, json_path=json_path, png_path=png_path)


if __name__ == "__main__":
    sys.exit(main())
