"""``fastrnn bench``'s layer workloads: whole torch.nn-style layers with per-row lengths.

The matrix (fastrnn.bench.timing) times one layer in one direction over
equal-length sequences. The workloads here time what models run: a
:class:`fastrnn.LSTM` / ``GRU`` / ``RNN`` with several layers, both
directions and a ``lengths`` array, on every fastrnn backend that has the
"lengths" feature (``fastrnn.backends.available_backends("lengths")``; the
NumPy reference only at the small sizes unless asked for), against two torch paths on the same parameters, input and d_output:

* "torch packed": ``pack_padded_sequence(x, lengths, enforce_sorted=False)``,
  the module on the packed sequence, ``pad_packed_sequence`` back to T
  steps; the result fastrnn computes (equal within float32 rounding);
* "torch padded (wrong)": the module on the padded x without lengths, what
  people do to avoid packing. It computes a different result (every row
  runs all T steps, so h_n and the reverse direction are wrong past a row's
  length); it is timed as the shortcut's price, not as an equal.

Workloads (WORKLOADS; ``fastrnn bench --shapes NAME`` picks them, the
default run takes "stacked" and "lengths-cost", ``--quick`` their "-small"
versions):

* "stacked": 2 layers, bidirectional, B=32, T=100, I=H=256, lengths uniform
  in [T/4, T] (seeded); LSTM and GRU, inference and one training step;
* "lengths-cost": the cost of lengths, a 1-layer LSTM training step (B=32,
  T=100, I=H=256) with half the rows at T and half at T/10 against all rows
  at T, all four (fastrnn[c] and torch packed, each on both length sets)
  interleaved in the same rounds. The valid steps are 55 % of the full
  ones, so a loop that shrinks with the rows costs about 55 %.

A training step is ``forward(x, lengths=..., training=True)`` plus
``backward(result, d_output)`` (dx included, no optimizer); torch's is
``loss = (out * d_out).sum(); loss.backward()`` with the module's and x's
gradients cleared first. FLOPs count the valid steps only (sum of the
lengths), per layer and direction ``2 * valid * (I_layer + H) * G * H``,
train 3x; the padded path is credited with the same count although it
computes B*T steps, so its GFLOP/s is useful work per second. "x packed" /
"x padded" are the torch path's median over the contender's, within the
same length set and the same run (> 1: faster than that torch path).

What it is not: not the single-layer matrix (fastrnn.bench.timing), no
printing (fastrnn.bench.report) and nothing torch-specific beyond the
callables of fastrnn.bench.peers.
"""
from __future__ import annotations

import gc
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import fastrnn
from fastrnn import cells
from fastrnn.backends import BACKENDS

from . import peers
from .timing import SETTLE_S, fastrnn_label, thread_counts, time_round_robin, warm_up

if TYPE_CHECKING:
    from .timing import Plan

#: The torch contenders' labels (the padded one says that its result differs).
TORCH_PACKED = "torch packed"
TORCH_PADDED = "torch padded (wrong)"
# Length sets, by name: how each row's length is drawn (see lengths_for).
UNIFORM_QUARTER_TO_T = "uniform"  # seeded, uniform integers in [T/4, T]
ALL_T = "all-T"
HALF_T_HALF_TENTH = "half-T/10"  # rows alternate T, T/10 (any order: the core sorts)
LENGTHS_SEED = 0


@dataclass(frozen=True)
class LayerWorkload:
    """One layer workload: the layer's sizes and stacking, the length sets timed
    side by side, and what runs by default."""

    name: str
    B: int
    T: int
    I: int  # noqa: E741 - the conventional name
    H: int
    num_layers: int
    bidirectional: bool
    length_sets: Tuple[str, ...]
    cells: Tuple[str, ...]  # without an explicit --cells
    modes: Tuple[str, ...]  # without an explicit --modes
    torch_paths: Tuple[str, ...]  # TORCH_PACKED, TORCH_PADDED
    slow_backends: bool  # SLOW_AT_FULL_SIZE's backends too by default (small sizes only)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def describe(self) -> str:
        layers = f"{self.num_layers} layer{'s' * (self.num_layers != 1)}" + (
            ", bidirectional" if self.bidirectional else "")
        return (f"{self.name} ({layers}, B={self.B}, T={self.T}, I={self.I}, H={self.H}, "
                f"lengths {' vs '.join(length_label(s, self.T) for s in self.length_sets)})")


_STACKED = dict(num_layers=2, bidirectional=True, length_sets=(UNIFORM_QUARTER_TO_T,),
                cells=("lstm", "gru"), modes=("inference", "train"),
                torch_paths=(TORCH_PACKED, TORCH_PADDED))
_COST = dict(num_layers=1, bidirectional=False, length_sets=(ALL_T, HALF_T_HALF_TENTH),
             cells=("lstm",), modes=("train",), torch_paths=(TORCH_PACKED,))
WORKLOADS: Dict[str, LayerWorkload] = {w.name: w for w in (
    LayerWorkload("stacked", 32, 100, 256, 256, slow_backends=False, **_STACKED),
    LayerWorkload("lengths-cost", 32, 100, 256, 256, slow_backends=False, **_COST),
    # --quick's versions: the same structure at sizes that take milliseconds.
    LayerWorkload("stacked-small", 8, 20, 32, 32, slow_backends=True, **_STACKED),
    LayerWorkload("lengths-cost-small", 8, 40, 32, 32, slow_backends=True, **_COST),
)}
DEFAULT_WORKLOADS: Tuple[str, ...] = ("stacked", "lengths-cost")
QUICK_WORKLOADS: Tuple[str, ...] = ("stacked-small", "lengths-cost-small")
DEFAULT_DTYPES: Tuple[str, ...] = ("float32",)  # the rows; --dtypes replaces it


def lengths_for(length_set: str, B: int, T: int) -> np.ndarray:
    """The (B,) int64 lengths of a length set; deterministic (LENGTHS_SEED)."""
    if length_set == UNIFORM_QUARTER_TO_T:
        rng = np.random.default_rng(LENGTHS_SEED)
        return rng.integers(T // 4, T, size=B, endpoint=True).astype(np.int64)
    if length_set == ALL_T:
        return np.full(B, T, np.int64)
    if length_set == HALF_T_HALF_TENTH:
        return np.where(np.arange(B) % 2 == 0, T, max(1, T // 10)).astype(np.int64)
    raise ValueError(f"length_set must be one of {UNIFORM_QUARTER_TO_T!r}, {ALL_T!r}, "
                     f"{HALF_T_HALF_TENTH!r}, got {length_set!r}")


def length_label(length_set: str, T: int) -> str:
    """The table's words for a length set at sequence length T."""
    return {UNIFORM_QUARTER_TO_T: f"U[{T // 4},{T}]", ALL_T: f"all {T}",
            HALF_T_HALF_TENTH: f"half {T}, half {max(1, T // 10)}"}[length_set]


# ------------------------------------------------------------- the problems

@dataclass
class LayerProblem:
    """A layer's parameters (torch's names), an input, a d_output and the length sets."""

    workload: LayerWorkload
    cell: str
    dtype: np.dtype
    params: Dict[str, np.ndarray]  # torch.nn's names and layout, every layer and direction
    x: np.ndarray  # (T, B, I)
    d_output: np.ndarray  # (T, B, D*H)
    lengths: Dict[str, np.ndarray] = field(default_factory=dict)  # length set -> (B,)


def _layer_kwargs(workload: LayerWorkload, cell: str, dtype: np.dtype) -> Dict[str, Any]:
    # what selects the cell in its layer class (nonlinearity, reset_after); a
    # cell's hyperparameters (the leaky cell's rate) keep their defaults: the
    # cost of a step does not depend on them
    descriptor = cells.get(cell)
    return dict(num_layers=workload.num_layers, bidirectional=workload.bidirectional,
                dtype=dtype, **descriptor.layer_arguments)


def make_layer_problem(workload: LayerWorkload, cell: str, dtype: Any = np.float32,
                       seed: int = 0) -> LayerProblem:
    """torch's initialisation (the fastrnn layer's own, from ``seed``), a
    standard-normal x and d_output, and every length set; deterministic."""
    dtype = np.dtype(dtype)
    layer = getattr(fastrnn, cells.get(cell).layer)(
        workload.I, workload.H, seed=seed, backend="numpy", **_layer_kwargs(workload, cell, dtype))
    rng = np.random.default_rng(seed + 1)

    def normal(*size: int) -> np.ndarray:
        return rng.standard_normal(size, dtype=np.float32).astype(dtype, copy=False)

    W = workload
    return LayerProblem(W, cell, dtype, params=dict(layer.state_dict()),
                        x=normal(W.T, W.B, W.I), d_output=normal(W.T, W.B, W.directions * W.H),
                        lengths={s: lengths_for(s, W.B, W.T) for s in W.length_sets})


def layer_forward_flops(workload: LayerWorkload, cell: str, lengths: np.ndarray) -> int:
    """The two products of every layer and direction over the valid steps:
    sum over layers and directions of 2 * sum(lengths) * (I_layer + H) * G * H."""
    W, GH = workload, cells.get(cell).gate_rows(workload.H)
    valid = int(np.sum(lengths))
    per_direction = sum(2 * valid * ((W.I if layer == 0 else W.directions * W.H) + W.H) * GH
                        for layer in range(W.num_layers))
    return per_direction * W.directions


def layer_step_flops(workload: LayerWorkload, cell: str, lengths: np.ndarray, mode: str) -> int:
    return layer_forward_flops(workload, cell, lengths) * (3 if mode == "train" else 1)


def fastrnn_layer(problem: LayerProblem, backend: str) -> Any:
    """The fastrnn layer object of the problem (its parameters) on ``backend``."""
    W = problem.workload
    layer = getattr(fastrnn, cells.get(problem.cell).layer)(
        W.I, W.H, seed=0, backend=backend, **_layer_kwargs(W, problem.cell, problem.dtype))
    layer.load_state_dict(problem.params)
    return layer


def fastrnn_layer_callable(problem: LayerProblem, backend: str, mode: str,
                           length_set: str) -> Callable[[], object]:
    """An inference forward with lengths, or a training step (forward with
    training=True + backward of the fixed d_output), on a fastrnn layer."""
    layer, x, d_out = fastrnn_layer(problem, backend), problem.x, problem.d_output
    lengths = problem.lengths[length_set]
    if mode == "inference":
        return lambda: layer(x, lengths=lengths)
    return lambda: layer.backward(layer(x, lengths=lengths, training=True), d_out)


# ---------------------------------------------------------------- the rows

@dataclass
class LayerRow:
    """One contender on one (workload, cell, mode, dtype, threads, length set):
    a row of the layer table and of the JSON "layers"."""

    workload: str
    num_layers: int
    directions: int
    B: int
    T: int
    I: int  # noqa: E741
    H: int
    lengths: str  # the length set's label, e.g. "U[25,100]"
    valid_steps: int  # sum of the lengths
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
    x_packed: Optional[float] = None  # torch packed's median / this median (same length set)
    x_padded: Optional[float] = None  # torch padded's median / this median


# Left out of the full-size workloads unless asked for (--backends, --all-backends):
# the NumPy reference takes about 4.5 s per stacked LSTM call (inference or
# training step) on the development VM, 8 layer cells x 7 calls would add
# four minutes; numba takes 0.5 s / 1.7 s, about torch packed's time.
SLOW_AT_FULL_SIZE: Tuple[str, ...] = ("numpy",)


def backends_for(plan: "Plan", workload: LayerWorkload) -> List[str]:
    """The fastrnn backends timed on ``workload``: those with the "lengths"
    feature (the registry decides), narrowed by --backends, and at full
    sizes without SLOW_AT_FULL_SIZE unless --all-backends."""
    capable = fastrnn.available_backends("lengths")
    if plan.backends is not None:
        return [b for b in plan.backends if b in capable]
    if plan.all_backends or workload.slow_backends:
        return capable
    return [b for b in capable if b not in SLOW_AT_FULL_SIZE]


def cells_for(plan: "Plan", workload: LayerWorkload) -> List[str]:
    return list(plan.layer_cells) if plan.layer_cells is not None else list(workload.cells)


def modes_for(plan: "Plan", workload: LayerWorkload) -> List[str]:
    return list(plan.layer_modes) if plan.layer_modes is not None else list(workload.modes)


def dtypes_for(plan: "Plan") -> List[str]:
    return list(plan.dtypes) if plan.dtypes is not None else list(DEFAULT_DTYPES)


def layer_plan_size(plan: "Plan") -> int:
    """The layer cells (workload x cell x mode x dtype x threads) planned."""
    return sum(len(cells_for(plan, w)) * len(modes_for(plan, w)) * len(dtypes_for(plan))
               * len(plan.threads) for w in plan.workloads)


def layer_contenders(backends: Sequence[str],
                     torch_paths: Sequence[str]) -> List[Tuple[str, Optional[str]]]:
    """(label, backend or None for a torch path) in report order: fastrnn[c],
    the torch paths, then the other backends."""
    ordered: List[Tuple[str, Optional[str]]] = [(fastrnn_label(b), b) for b in BACKENDS
                                                if b in backends]
    at = 1 if "c" in backends else 0
    ordered[at:at] = [(path, None) for path in torch_paths]
    return ordered


def measure_layer_cell(problem: LayerProblem, mode: str, threads: int, backends: Sequence[str],
                       torch: Any, repeat: int) -> List[LayerRow]:
    """Time every contender on every length set of one layer cell, all in the
    same interleaved rounds (the length sets side by side: the cost-of-lengths
    comparison is within one run)."""
    W = problem.workload
    torch_paths = W.torch_paths if torch is not None and peers.torch_can_run(problem.cell) else ()
    contenders = layer_contenders(backends, torch_paths)
    with thread_counts(threads, torch):
        module = peers.torch_layer_module(problem, torch) if torch_paths else None
        calls: Dict[str, Callable[[], object]] = {}
        for length_set in W.length_sets:
            for label, backend in contenders:
                key = f"{label} @ {length_set}"
                if backend is not None:
                    calls[key] = fastrnn_layer_callable(problem, backend, mode, length_set)
                elif label == TORCH_PACKED:
                    calls[key] = peers.torch_packed_callable(
                        problem, problem.lengths[length_set], mode, torch, module)
                else:
                    calls[key] = peers.torch_padded_callable(problem, mode, torch, module)
        per_sample = {name: warm_up(fn) for name, fn in calls.items()}
        samples = time_round_robin(calls, repeat, per_sample,
                                   settle_s=SETTLE_S if threads > 1 else 0.0)
    rows: List[LayerRow] = []
    for length_set in W.length_sets:
        lengths = problem.lengths[length_set]
        flops = layer_step_flops(W, problem.cell, lengths, mode)
        medians = {label: statistics.median(samples[f"{label} @ {length_set}"])
                   for label, _ in contenders}
        for label, _ in contenders:
            key = f"{label} @ {length_set}"
            s, median = samples[key], medians[label]
            rows.append(LayerRow(
                workload=W.name, num_layers=W.num_layers, directions=W.directions, B=W.B, T=W.T,
                I=W.I, H=W.H, lengths=length_label(length_set, W.T),
                valid_steps=int(lengths.sum()), cell=problem.cell, mode=mode,
                dtype=problem.dtype.name, threads=threads, contender=label, flops=flops,
                calls_per_sample=per_sample[key],
                samples_s=list(s), median_s=median, min_s=min(s), max_s=max(s),
                gflops=flops / median / 1e9,
                x_packed=medians[TORCH_PACKED] / median if TORCH_PACKED in medians else None,
                x_padded=medians[TORCH_PADDED] / median if TORCH_PADDED in medians else None))
    return rows


def run_layers(plan: "Plan", torch: Any) -> Iterator[List[LayerRow]]:
    """Measure the plan's layer workloads in order; yields each layer cell's rows."""
    for workload in plan.workloads:
        backends = backends_for(plan, workload)
        if not backends and torch is None:
            continue
        for cell in cells_for(plan, workload):
            for dtype in dtypes_for(plan):
                problem = make_layer_problem(workload, cell, dtype)
                for mode in modes_for(plan, workload):
                    for threads in plan.threads:
                        rows = measure_layer_cell(problem, mode, threads, backends, torch,
                                                  plan.repeat)
                        gc.collect()  # this cell's layers, module and workspaces are garbage
                        yield rows
                del problem
                gc.collect()


# ------------------------------------------------------- the cost of lengths

def lengths_cost(rows: Sequence[LayerRow]) -> List[Dict[str, Any]]:
    """For every (workload, cell, mode, dtype, threads, contender) timed on
    several length sets: each set's median as a share of the first set's
    (the full one), beside the share of valid steps (what a loop that
    shrinks with the rows would cost)."""
    groups: Dict[Tuple[Any, ...], List[LayerRow]] = {}
    for r in rows:
        groups.setdefault((r.workload, r.cell, r.mode, r.dtype, r.threads, r.contender),
                          []).append(r)
    out = []
    for (workload, cell, mode, dtype, threads, contender), group in groups.items():
        if len(group) < 2:
            continue
        full = group[0]
        for r in group[1:]:
            out.append({"workload": workload, "cell": cell, "mode": mode, "dtype": dtype,
                        "threads": threads, "contender": contender, "full": full.lengths,
                        "lengths": r.lengths, "full_median_s": full.median_s,
                        "median_s": r.median_s, "share": r.median_s / full.median_s,
                        "valid_share": r.valid_steps / full.valid_steps})
    return out
