"""What ``fastrnn bench`` measures and how: the matrix, the problems, the timing loop.

The matrix (shapes, cells, modes, dtypes, thread counts), the problem of
one matrix cell (random parameters in PyTorch's layout, an input and an
upstream gradient), the FLOP convention, the fastrnn contenders' callables,
the warm-up and the interleaved round-robin timing, and the run over a
:class:`Plan` that yields :class:`Result` rows; also the machine's
single-thread SGEMM rate, the one-core FMA peak and the streaming single step. The conventions are
stated in the package docstring (fastrnn.bench).

What it is not: no printing and no files (fastrnn.bench.report), nothing
torch-specific (fastrnn.bench.peers builds the torch side; it is passed
around as the ``torch`` module, None when torch is not used).
"""
from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import fastrnn
from fastrnn import cells
from fastrnn import functional as F
from fastrnn.backends import BACKENDS

from . import peers

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
# The cells timed unless --cells says otherwise: one Elman cell (rnn_relu and
# rnn_sigmoid cost the same as rnn_tanh: the same two products, one
# elementwise activation), the LSTM and the GRU. Any cell of fastrnn.cells
# can be asked for.
DEFAULT_CELLS: Tuple[str, ...] = ("rnn_tanh", "lstm", "gru")
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


def fastrnn_label(backend: str) -> str:
    return f"fastrnn[{backend}]"


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
# The FMA peak loop (measure_fma_peak): a short calibration call, then PEAK_SAMPLES
# samples of about PEAK_SAMPLE_S each, of which the fastest counts. Short samples:
# on a shared machine (two cores, four busy processes: the peak read 58 GFLOP/s as
# the median of five 50 ms samples, 94 on an idle one) some of them still fall
# between two preemptions.
PEAK_CALIBRATION_ROUNDS = 200_000
PEAK_SAMPLE_S = 0.002
PEAK_SAMPLES = 25
# The streaming single step: the cell the project's streaming goal is about.
STREAM_CELL = "lstm"
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
    GH, H, I = cells.get(cell).gate_rows(shape.H), shape.H, shape.I
    k = 1.0 / math.sqrt(H)

    def uniform(*size: int) -> np.ndarray:
        return rng.uniform(-k, k, size).astype(dtype)

    def normal(*size: int) -> np.ndarray:
        return rng.standard_normal(size, dtype=np.float32).astype(dtype, copy=False)

    return Problem(cell, shape, dtype, x=normal(shape.T, shape.B, I),
                   weight_ih=uniform(GH, I), weight_hh=uniform(GH, H),
                   bias_ih=uniform(GH), bias_hh=uniform(GH),
                   d_output=normal(shape.T, shape.B, H))


def forward_flops(shape: Shape, cell: str) -> int:
    """2*T*B*(I+H)*G*H: the two matrix products of a forward pass (see fastrnn.bench).

    Per time step the gates' pre-activations are x_t W_ih^T, a (B, I) by
    (I, G*H) product (B*I*G*H multiply-adds), and h_{t-1} W_hh^T, (B, H) by
    (H, G*H) (B*H*G*H multiply-adds); a multiply-add counts 2 operations, as
    the FMA peak counts it, and the elementwise gate arithmetic (a few
    operations per unit, against I + H multiply-adds) is left out. Summed
    over T steps: 2*T*B*(I+H)*G*H. The large LSTM (B = T = 64, I = H = 1024,
    G = 4): 2 * 64 * 64 * 2048 * 4096 = 2**36 = 68.7 GFLOP."""
    return 2 * shape.T * shape.B * (shape.I + shape.H) * cells.get(cell).gate_rows(shape.H)


def step_flops(shape: Shape, cell: str, mode: str) -> int:
    """FLOPs of one call in ``mode``: a forward pass, or 3x that for a training step.

    A training step is the forward's two products plus, in backward, two
    products of the same size with the gate gradients G (T*B, G*H): the
    ones through the weights, dx = G W_ih and dh_{t-1} = G_t W_hh, and the
    weight gradients dW_ih = G^T x and dW_hh = sum_t G_t^T h_{t-1}. Each of
    the four has the forward's multiply-add count, in pairs: (dx, dW_ih)
    have x W_ih^T's, (dh, dW_hh) have h W_hh^T's, so backward = 2 x forward
    and the step = 3 x forward (the large LSTM: 3 * 2**36 = 206.2 GFLOP)."""
    return forward_flops(shape, cell) * (3 if mode == "train" else 1)


def fastrnn_callable(problem: Problem, backend: str, mode: str) -> Callable[[], object]:
    """One inference forward, or one training step (forward + full backward), on fastrnn."""
    cell, x, params, d_out = problem.cell, problem.x, problem.params, problem.d_output
    if mode == "inference":
        return lambda: F.forward(cell, x, *params, backend=backend)

    def train_step() -> F.Gradients:
        return F.backward(F.forward(cell, x, *params, backend=backend, training=True), d_out)
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
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # NumPy's BLAS keeps its own count; only the numpy backend notices
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        try:
            fastrnn.set_num_threads(n)
            with peers.torch_threads(torch, n):
                yield
        finally:
            fastrnn.set_num_threads(previous_fastrnn)


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
    """One contender in one matrix cell (a row of the table and of the JSON "results")."""

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
    pct_of_peak: Optional[float] = None  # large shapes: gflops / this dtype's FMA peak, in percent

    @property
    def key(self) -> Tuple[str, str, str, str, int, str]:
        return (self.shape, self.cell, self.mode, self.dtype, self.threads, self.contender)


# Rows shown as a share of the single-thread SGEMM rate (Result.pct_of_sgemm) and of
# the one-core FMA peak (Result.pct_of_peak).
SGEMM_SHARE_SHAPES: Tuple[str, ...] = ("large",)


@dataclass
class Plan:
    """What to measure: the selected slice of the matrix and the contenders."""

    shapes: List[Shape]
    cells: List[str] = field(default_factory=lambda: list(DEFAULT_CELLS))
    modes: List[str] = field(default_factory=lambda: list(MODES))
    threads: List[int] = field(default_factory=lambda: list(DEFAULT_THREADS))
    dtypes: Optional[List[str]] = None  # None: float32 everywhere + float64 at FLOAT64_SHAPES
    repeat: int = DEFAULT_REPEAT
    backends: Optional[List[str]] = None  # None: c everywhere, numba/numpy at SLOW_BACKEND_SHAPES
    all_backends: bool = False
    torch: bool = True
    # The layer workloads (fastrnn.bench.stacked.WORKLOADS values) timed after the
    # matrix; none unless asked for (``fastrnn bench`` asks for its defaults).
    workloads: List[Any] = field(default_factory=list)
    layer_cells: Optional[List[str]] = None  # None: each workload's own cells
    layer_modes: Optional[List[str]] = None  # None: each workload's own modes
    # The model workloads (fastrnn.bench.models.WORKLOADS values: torch models before
    # and after fastrnn.torch.convert) timed after the layer workloads; the same
    # layer_cells / layer_modes narrow them.
    models: List[Any] = field(default_factory=list)

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
        ordered.insert(1 if "c" in backends else 0, (peers.TORCH, None))
    return ordered


def measure_matrix_cell(problem: Problem, mode: str, threads: int, backends: Sequence[str],
                        torch: Any, repeat: int, sgemm_gflops: Optional[float],
                        peak_gflops: Optional[Mapping[str, float]] = None) -> List[Result]:
    """Time every contender on one (shape, cell, mode, dtype, threads) cell, interleaved.
    ``peak_gflops``: the FMA peak per dtype name (measure_fma_peak), for the large
    shapes' share of it; None or a missing dtype: no share."""
    peer = torch if torch is not None and peers.torch_can_run(problem.cell) else None
    with thread_counts(threads, torch):
        calls: Dict[str, Callable[[], object]] = {}
        for label, backend in contender_order(backends, peer is not None):
            calls[label] = (peers.torch_callable(problem, mode, peer) if backend is None else
                            fastrnn_callable(problem, backend, mode))
        per_sample = {name: warm_up(fn) for name, fn in calls.items()}
        samples = time_round_robin(calls, repeat, per_sample,
                                   settle_s=SETTLE_S if threads > 1 else 0.0)
    results = [summarize(problem, mode, threads, name, samples[name], per_sample[name])
               for name in calls]
    torch_median = next((r.median_s for r in results if r.contender == peers.TORCH), None)
    for r in results:
        if torch_median is not None:
            r.x_torch = torch_median / r.median_s
        if sgemm_gflops and r.shape in SGEMM_SHARE_SHAPES:
            r.pct_of_sgemm = 100.0 * r.gflops / sgemm_gflops
        peak = (peak_gflops or {}).get(r.dtype)
        if peak and r.shape in SGEMM_SHARE_SHAPES:
            r.pct_of_peak = 100.0 * r.gflops / peak
    return results


def run_matrix(plan: Plan, torch: Any, sgemm_gflops: Optional[float],
               peak_gflops: Optional[Mapping[str, float]] = None) -> Iterator[List[Result]]:
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
                                                      plan.repeat, sgemm_gflops, peak_gflops)
                        # The torch module and fastrnn's workspaces of this cell are garbage
                        # now: free them before the next cell allocates its own.
                        gc.collect()
                        yield results
                del problem
                gc.collect()


# ---------------------------------------------------- SGEMM and streaming

def measure_sgemm(torch: Any = None, n: int = SGEMM_N,
                  samples: int = SGEMM_SAMPLES) -> Dict[str, Any]:
    """The single-thread float32 GEMM rate: square n x n products, median of ``samples``
    (torch.mm when torch is used, else numpy.matmul)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if torch is not None:
        library, product = "torch.mm", peers.torch_matmul(torch, a, b)
    else:
        library, product = "numpy.matmul", lambda: a @ b
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


def fma_peak_rate(dtype: str, samples: int = PEAK_SAMPLES,
                  sample_s: float = PEAK_SAMPLE_S) -> Dict[str, Any]:
    """One core's floating-point ceiling in ``dtype`` for the active ISA: the C
    core's FMA peak loop (csrc/kernels/peak.c, through fastrnn._core._fma_peak),
    the best GFLOP/s of ``samples`` calls of about ``sample_s`` seconds each (a
    ceiling is what the core can do: other load only ever slows a sample down,
    so the fastest one is the least disturbed, unlike the medians of the rows).

    The loop keeps 12 independent vectors of accumulators (24 on AVX-512)
    in registers and gives each one multiply-add per round, with no loads
    or stores: enough chains to cover the FMA latency times the FMA pipes,
    so that only the FMA units bound it. Its FLOP count is the C loop's
    own, 2 x lanes x chains x rounds (a multiply-add is 2 operations, as in
    the matrix's FLOP convention): a GEMM's inner loop can approach this
    figure and not pass it. It runs on the calling thread (one core)
    whatever fastrnn's thread count."""
    from fastrnn import _core  # callers check that the compiled core loads

    flops, _ = _core._fma_peak(dtype, PEAK_CALIBRATION_ROUNDS)  # warm-up, and the clock ramps
    t0 = time.perf_counter()
    _core._fma_peak(dtype, PEAK_CALIBRATION_ROUNDS)
    per_round = max(time.perf_counter() - t0, 1e-9) / PEAK_CALIBRATION_ROUNDS
    rounds = max(1, int(sample_s / per_round))
    rates = []
    for _ in range(samples):
        t0 = time.perf_counter()
        flops, _ = _core._fma_peak(dtype, rounds)
        rates.append(flops / max(time.perf_counter() - t0, 1e-9) / 1e9)
    return {"dtype": dtype, "rounds": rounds, "flops_per_call": flops, "samples_gflops": rates,
            "gflops": max(rates)}


def measure_fma_peak(dtypes: Sequence[str] = DTYPES) -> Optional[Dict[str, Any]]:
    """The FMA peak (fma_peak_rate) of the active ISA in each of ``dtypes``, keyed by
    dtype name, plus "isa"; None when the compiled core does not load."""
    if "c" not in fastrnn.available_backends():
        return None
    out: Dict[str, Any] = {"isa": fastrnn.cpu_isa(), "threads": 1}
    for dtype in dtypes:
        out[dtype] = fma_peak_rate(dtype)
    return out


def stream_input() -> np.ndarray:
    """The streaming step's input, (1, STREAM_I) float32, the same for every contender."""
    return np.random.default_rng(1).standard_normal((1, STREAM_I), dtype=np.float32)


def fastrnn_stream_step() -> Tuple[str, Callable[[], object]]:
    """(name, one-step callable) for the fastest single-step API fastrnn has: a
    ``<layer>(...).stream(batch=1)`` object (state kept inside, updated in place)."""
    backend = "c" if "c" in fastrnn.available_backends() else None
    descriptor = cells.get(STREAM_CELL)
    layer = getattr(fastrnn, descriptor.layer)(STREAM_I, STREAM_H, dtype=np.float32, seed=0,
                                               backend=backend, **descriptor.layer_arguments)
    x = stream_input()
    stream = layer.stream(batch=1)
    return f"fastrnn.{descriptor.layer}.stream", lambda: stream(x)


def measure_stream(torch: Any = None) -> Dict[str, Any]:
    """Microseconds per call of one streaming step (STREAM_CELL), fastrnn and torch interleaved."""
    api, step = fastrnn_stream_step()
    calls: Dict[str, Callable[[], object]] = {"fastrnn": step}
    apis = {"fastrnn": api}
    if torch is not None:
        apis[peers.TORCH], calls[peers.TORCH] = peers.torch_stream_step(
            torch, STREAM_CELL, stream_input(), STREAM_H)
    with thread_counts(1, torch):
        for fn in calls.values():
            for _ in range(100):  # warm-up
                fn()
        samples = time_round_robin(calls, STREAM_SAMPLES, {name: STREAM_CALLS for name in calls})
    out: Dict[str, Any] = {"cell": STREAM_CELL, "I": STREAM_I, "H": STREAM_H, "batch": 1,
                           "dtype": "float32", "threads": 1, "calls_per_sample": STREAM_CALLS}
    for name, s in samples.items():
        us = [t * 1e6 for t in s]
        out[name] = {"api": apis[name], "us_per_call": statistics.median(us), "min_us": min(us),
                     "max_us": max(us), "samples_us": us}
    return out
