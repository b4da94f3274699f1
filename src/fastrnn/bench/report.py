"""What ``fastrnn bench`` prints and saves, and the goals it checks the numbers against.

The header line (machine facts), the GitHub-markdown tables (the matrix
rows, the layer workloads' rows and their cost of lengths, the model
workloads' rows (torch.nn vs converted), the streaming
step, the targets), the targets themselves
(TRAIN_TARGETS and the SGEMM-share, FMA-peak-share, two-thread, streaming and
stacked-layer goals), the
JSON document's plan section, and the two files: the JSON results and the
bar chart, both written atomically (fastrnn._atomic). Column widths are
fixed, so that rows can be printed as they are measured.

What it is not: no measuring (fastrnn.bench.timing) and no argument
parsing (fastrnn.bench.cli); matplotlib is imported only to draw the chart.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import fastrnn
from fastrnn import cells
from fastrnn._atomic import write_atomically

from . import models, peers, stacked
from .models import ModelRow
from .stacked import LayerRow
from .timing import (MIN_SAMPLE_S, MODES, SGEMM_SHARE_SHAPES, STREAM_CELL, Plan, Result,
                     contender_order, fastrnn_label)

# --------------------------------------------------------------- the targets

# The project's goals, as "x torch" at one thread, float32, training step.
# Inference must reach at least the training ratio of the same shape and cell.
TRAIN_TARGETS: Dict[str, Dict[str, float]] = {
    "lstm": {"tiny": 3.0, "small": 1.2, "medium": 1.0, "large": 1.0},
    "gru": {"tiny": 10.0, "small": 3.0, "medium": 1.2, "large": 1.0},
    "rnn_tanh": {"tiny": 10.0, "small": 3.0, "medium": 1.2, "large": 1.0},
}
SGEMM_SHARE_TARGET = 0.75  # large shapes, one thread, of the single-thread SGEMM rate
PEAK_SHARE_TARGET = 0.85  # large shapes, training step, one thread, of the one-core FMA peak
TWO_THREAD_TARGET = 1.7  # 2-thread speed over 1-thread speed, fastrnn[c]
TWO_THREAD_SHAPES: Tuple[str, ...] = ("medium", "large")
STREAM_TARGET_US = 2.0  # streaming step (STREAM_CELL), microseconds per call


def _target(name: str, shape: str, measured: float, op: str, threshold: float,
            unit: str = "") -> Dict[str, Any]:
    met = measured >= threshold if op == ">=" else measured < threshold
    return {"target": name, "shape": shape, "measured": measured, "op": op,
            "threshold": threshold, "unit": unit, "met": bool(met)}


def evaluate_targets(results: Sequence[Result], stream: Optional[Mapping[str, Any]],
                     sgemm_gflops: Optional[float],
                     peak_gflops: Optional[Mapping[str, float]] = None) -> List[Dict[str, Any]]:
    """Check the measured numbers against the project's goals; a target appears
    only when everything it needs was measured in this run (``peak_gflops``: the
    FMA peak per dtype, peak_rates)."""
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
    for cell in cells.NAMES:
        for mode in MODES:
            for shape in SGEMM_SHARE_SHAPES:
                r = by_key.get((shape, cell, mode, "float32", 1, c))
                if r is not None and sgemm_gflops:
                    targets.append(_target(f"{cell} {mode} GFLOP/s share of 1-thread SGEMM", shape,
                                           100.0 * r.gflops / sgemm_gflops, ">=",
                                           100.0 * SGEMM_SHARE_TARGET, "%"))
    peak = (peak_gflops or {}).get("float32")
    for cell in cells.NAMES:
        for shape in SGEMM_SHARE_SHAPES:
            r = by_key.get((shape, cell, "train", "float32", 1, c))
            if r is not None and peak:
                targets.append(_target(f"{cell} train GFLOP/s share of the FMA peak", shape,
                                       100.0 * r.gflops / peak, ">=",
                                       100.0 * PEAK_SHARE_TARGET, "%"))
    for cell in cells.NAMES:
        for mode in MODES:
            for shape in TWO_THREAD_SHAPES:
                one = by_key.get((shape, cell, mode, "float32", 1, c))
                two = by_key.get((shape, cell, mode, "float32", 2, c))
                if one is not None and two is not None:
                    targets.append(_target(f"{cell} {mode} 2-thread speed-up (float32)", shape,
                                           one.median_s / two.median_s, ">=", TWO_THREAD_TARGET,
                                           "x"))
    if stream and "fastrnn" in stream:
        layer = cells.get(stream.get("cell", STREAM_CELL)).layer
        targets.append(_target(f"streaming {layer} step ({stream['fastrnn']['api']})", "-",
                               stream["fastrnn"]["us_per_call"], "<", STREAM_TARGET_US, " µs"))
    return targets


# Issue 15: the stacked workload's training step (2 layers, bidirectional,
# lengths U[T/4, T]), fastrnn[c] over torch's pack_padded_sequence path.
STACKED_PACKED_TARGET = 2.0
STACKED_TARGET_WORKLOADS: Tuple[str, ...] = ("stacked",)


def layer_targets(rows: Sequence[LayerRow]) -> List[Dict[str, Any]]:
    """The layer workloads' goals (STACKED_PACKED_TARGET), for the rows measured
    (the workload's name is in the target's: it does not fit the shape column)."""
    c = fastrnn_label("c")
    return [_target(f"{r.cell} {r.mode} x torch packed ({r.workload}, lengths)", "-",
                    r.x_packed, ">=", STACKED_PACKED_TARGET, "x")
            for r in rows
            if r.workload in STACKED_TARGET_WORKLOADS and r.mode == "train" and r.threads == 1
            and r.dtype == "float32" and r.contender == c and r.x_packed is not None]


# ------------------------------------------------------------ the machine

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


def peak_rates(peak: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """{dtype: GFLOP/s} from timing.measure_fma_peak's result (empty for None)."""
    return {k: v["gflops"] for k, v in (peak or {}).items() if isinstance(v, Mapping)}


def peak_line(peak: Optional[Mapping[str, Any]], sgemm: Optional[Mapping[str, Any]]) -> str:
    """The header's FMA-peak line, with the SGEMM rate as a share of it."""
    if not peak:
        return "one-core FMA peak: not measured (no compiled core)"
    rates = peak_rates(peak)
    text = (f"one-core FMA peak ({peak['isa']} kernels: independent multiply-add chains in "
            "registers, csrc/kernels/peak.c): "
            + ", ".join(f"{dtype} {gflops:.1f} GFLOP/s" for dtype, gflops in rates.items()))
    if sgemm and rates.get("float32"):
        text += (f"; the SGEMM above is {100.0 * sgemm['gflops'] / rates['float32']:.0f}% of "
                 "the float32 peak")
    return text


def plan_facts(plan: Plan) -> Dict[str, Any]:
    """The JSON document's "plan": what was asked for, per shape where it varies."""
    return {"shapes": [asdict(s) for s in plan.shapes], "cells": plan.cells, "modes": plan.modes,
            "threads": plan.threads,
            "dtypes": {s.name: plan.dtypes_at(s) for s in plan.shapes},
            "contenders": {s.name: [label for label, _ in contender_order(plan.backends_at(s),
                                                                          plan.torch)]
                           for s in plan.shapes},
            "workloads": [dict(asdict(w), cells=stacked.cells_for(plan, w),
                               modes=stacked.modes_for(plan, w),
                               backends=stacked.backends_for(plan, w))
                          for w in plan.workloads],
            "layer_dtypes": stacked.dtypes_for(plan),
            "models": [dict(asdict(w), cells=models.cells_for(plan, w))
                       for w in plan.models] if models.runs_for(plan) else [],
            "model_dtypes": models.dtypes_for(plan),
            "repeat": plan.repeat, "min_sample_s": MIN_SAMPLE_S}


# ----------------------------------------------------------------- tables

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
    ("min–max ms", 13, True), ("GFLOP/s", 28, True), ("× torch", 7, True))


def _markdown_row(values: Sequence[str], columns: Sequence[Tuple[str, int, bool]]) -> str:
    return "| " + " | ".join(v.rjust(w) if right else v.ljust(w)
                             for v, (_, w, right) in zip(values, columns)) + " |"


def _markdown_rule(columns: Sequence[Tuple[str, int, bool]]) -> str:
    return "|" + "|".join("-" * (w + 1) + ":" if right else "-" * (w + 2)
                          for _, w, right in columns) + "|"


def _markdown_head(columns: Sequence[Tuple[str, int, bool]]) -> List[str]:
    return [_markdown_row([title for title, _, _ in columns], columns), _markdown_rule(columns)]


def table_columns(cell_names: Sequence[str]) -> Tuple[Tuple[str, int, bool], ...]:
    """TABLE_COLUMNS with the "cell" column widened to the longest of ``cell_names``
    (rnn_sigmoid), so that the rows of a plan line up; the default cells fit as it is."""
    width = max([len(name) for name in cell_names], default=0)
    return tuple((title, max(w, width) if title == "cell" else w, right)
                 for title, w, right in TABLE_COLUMNS)


def table_header(columns: Sequence[Tuple[str, int, bool]] = TABLE_COLUMNS) -> List[str]:
    return _markdown_head(columns)


def table_row(r: Result, columns: Sequence[Tuple[str, int, bool]] = TABLE_COLUMNS) -> str:
    shares = ([f"{r.pct_of_peak:.0f}% peak"] if r.pct_of_peak is not None else []) + (
        [f"{r.pct_of_sgemm:.0f}% SGEMM"] if r.pct_of_sgemm is not None else [])
    gflops = _num(r.gflops) + (f" ({', '.join(shares)})" if shares else "")
    return _markdown_row([r.shape, r.cell, r.mode, r.dtype, str(r.threads), r.contender,
                          _ms(r.median_s), f"{_ms(r.min_s)}–{_ms(r.max_s)}", gflops,
                          "–" if r.x_torch is None else f"{r.x_torch:.2f}"], columns)


# The layer workloads' table (fastrnn.bench.stacked): its own first column, so that
# it never reads as part of the matrix table above it.
LAYER_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("workload", 18, False), ("cell", 8, False), ("mode", 9, False), ("dtype", 7, False),
    ("threads", 7, True), ("lengths", 17, False), ("contender", 20, False),
    ("median ms", 9, True), ("min–max ms", 13, True), ("GFLOP/s", 7, True),
    ("× packed", 8, True), ("× padded", 8, True))


def layer_table_header(cell_names: Sequence[str] = ()) -> List[str]:
    return _markdown_head(_widened_cells(LAYER_COLUMNS, cell_names))


def _widened_cells(columns: Sequence[Tuple[str, int, bool]],
                   cell_names: Sequence[str]) -> Tuple[Tuple[str, int, bool], ...]:
    width = max([len(name) for name in cell_names], default=0)
    return tuple((title, max(w, width) if title == "cell" else w, right)
                 for title, w, right in columns)


def layer_table_row(r: LayerRow, cell_names: Sequence[str] = ()) -> str:
    def ratio(x: Optional[float]) -> str:
        return "–" if x is None else f"{x:.2f}"
    return _markdown_row([r.workload, r.cell, r.mode, r.dtype, str(r.threads), r.lengths,
                          r.contender, _ms(r.median_s), f"{_ms(r.min_s)}–{_ms(r.max_s)}",
                          _num(r.gflops), ratio(r.x_packed), ratio(r.x_padded)],
                         _widened_cells(LAYER_COLUMNS, cell_names))


# The model workloads' table (fastrnn.bench.models): torch.nn's model against
# the same model converted; "× torch" as in the matrix (> 1: converted faster).
MODEL_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("model", 20, False), ("cell", 8, False), ("mode", 5, False), ("dtype", 7, False),
    ("threads", 7, True), ("lengths", 9, False), ("contender", 21, False),
    ("median ms", 9, True), ("min–max ms", 13, True), ("tokens/s", 9, True),
    ("× torch", 7, True))


def model_table_header(cell_names: Sequence[str] = ()) -> List[str]:
    return _markdown_head(_widened_cells(MODEL_COLUMNS, cell_names))


def model_table_row(r: ModelRow, cell_names: Sequence[str] = ()) -> str:
    return _markdown_row([r.workload, r.cell, r.mode, r.dtype, str(r.threads), r.lengths,
                          r.contender, _ms(r.median_s), f"{_ms(r.min_s)}–{_ms(r.max_s)}",
                          _num(r.tokens_per_s), "–" if r.x_torch is None else f"{r.x_torch:.2f}"],
                         _widened_cells(MODEL_COLUMNS, cell_names))


LENGTHS_COST_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("cost of lengths", 48, False), ("contender", 20, False), ("lengths", 17, False),
    ("median ms", 9, True), ("full lengths", 17, False), ("full ms", 9, True),
    ("share", 5, True), ("valid steps", 11, True))


def lengths_cost_table(costs: Sequence[Mapping[str, Any]]) -> List[str]:
    """Each length set's median as a share of the full set's (same contender,
    same run), beside its share of the valid steps (what the time would be if
    it followed them exactly)."""
    lines = _markdown_head(LENGTHS_COST_COLUMNS)
    for c in costs:
        what = (f"{c['workload']} {c['cell']} {c['mode']}, {c['dtype']}, "
                f"{c['threads']} thread{'s' * (c['threads'] != 1)}")
        lines.append(_markdown_row([what, c["contender"], c["lengths"], _ms(c["median_s"]),
                                    c["full"], _ms(c["full_median_s"]),
                                    f"{100 * c['share']:.0f}%",
                                    f"{100 * c['valid_share']:.0f}%"], LENGTHS_COST_COLUMNS))
    return lines


TARGET_COLUMNS: Tuple[Tuple[str, int, bool], ...] = (
    ("target", 50, False), ("shape", 6, False), ("measured", 9, True), ("goal", 9, True),
    ("status", 7, False))


def targets_table(targets: Sequence[Mapping[str, Any]]) -> List[str]:
    lines = _markdown_head(TARGET_COLUMNS)
    for t in targets:
        unit = t["unit"]
        measured = f"{_num(t['measured'])}{unit}" if unit != "x" else f"{t['measured']:.2f}x"
        goal = f"{'≥' if t['op'] == '>=' else '<'} {t['threshold']:g}{unit}"
        lines.append(_markdown_row([t["target"], t["shape"], measured, goal,
                                    "met" if t["met"] else "not met"], TARGET_COLUMNS))
    return lines


def stream_lines(stream: Mapping[str, Any]) -> List[str]:
    title = (f"streaming step: {cells.get(stream['cell']).layer} I={stream['I']} "
             f"H={stream['H']}, batch {stream['batch']}, {stream['dtype']}, "
             f"{stream['threads']} thread{'s' * (stream['threads'] != 1)}")
    cols = ((title, 60, False), ("µs per call", 11, True), ("min–max µs", 11, True))
    lines = _markdown_head(cols)
    for name in ("fastrnn", peers.TORCH):
        if name in stream:
            s = stream[name]
            lines.append(_markdown_row([s["api"], f"{s['us_per_call']:.2f}",
                                        f"{s['min_us']:.2f}–{s['max_us']:.2f}"], cols))
    return lines


# ------------------------------------------------------------------ files

def write_json(path: Path, document: Mapping[str, Any]) -> None:
    def dump(f: IO[str]) -> None:
        json.dump(document, f, indent=1)
        f.write("\n")
    write_atomically(path, dump, encoding="utf-8")


def write_chart(path: Path, results: Sequence[Result]) -> str:
    """A log-scale bar chart of fastrnn[c]'s "x torch" at 1 thread, float32, per
    (shape, cell, mode) of the matrix (the layer workloads are not drawn: their
    ratios are against two different torch paths); returns the line to print
    (what was written, or why not)."""
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
        write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
    return f"chart: {path}"
