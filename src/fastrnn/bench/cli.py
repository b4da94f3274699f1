"""The ``fastrnn bench`` command: its arguments, and the run that prints and saves as it goes.

:func:`main` parses the options into a :class:`~fastrnn.bench.timing.Plan`
(or hands ``minchar ...`` to fastrnn.bench.minchar, ``subnormal ...`` to
fastrnn.bench.subnormal, ``dropin ...`` to fastrnn.bench.dropin), refuses up front an
output path that could not be written at the end of a long run, and calls
:func:`run_and_report`, which bench/compare.py also uses with a plan of its
own. Exit status: 0, 130 after Ctrl-C (what was measured is printed and
saved), 1 when a results file cannot be written or a converted model's
loss is not torch's (fastrnn.bench.models; the rows before are saved), 2
for bad arguments.

What it is not: the measuring (fastrnn.bench.timing) or the formatting
(fastrnn.bench.report); this module only puts them in order.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import fastrnn
from fastrnn import cells
from fastrnn.backends import BACKENDS

from . import dropin, minchar, models, peers, report, stacked, subnormal
from .timing import (DEFAULT_CELLS, DEFAULT_REPEAT, DEFAULT_THREADS, DTYPES, FLOAT64_SHAPES,
                     MODES, QUICK_REPEAT, QUICK_SHAPES, SGEMM_N, SHAPES, SLOW_BACKEND_SHAPES,
                     Plan, Result, measure_fma_peak, measure_sgemm, measure_stream, run_matrix)

DEFAULT_JSON = "fastrnn-bench.json"
DEFAULT_PNG = "fastrnn-bench.png"


def run_and_report(plan: Plan, *, torch: Any = None, json_path: Optional[Path] = None,
                   png_path: Optional[Path] = None) -> int:
    """Measure ``plan``, printing as it goes; write the JSON and chart. Returns the
    exit status: 0, or 130 when Ctrl-C stopped the measurements."""
    machine = report.machine_facts(torch)
    print(report.header_line(machine))
    rounds = f"{plan.repeat} round{'s' * (plan.repeat != 1)} each after a warm-up"
    if plan.shapes or not (plan.workloads or plan.models):
        print("shapes: " + ", ".join(s.describe() for s in plan.shapes)
              + f"; {plan.size()} matrix cells, {rounds}; "
              "x torch = torch time / contender time (> 1: faster than torch); "
              "FLOPs: forward 2*T*B*(I+H)*G*H, train step 3x forward", flush=True)
    if plan.workloads:
        print("layer workloads: " + "; ".join(w.describe() for w in plan.workloads)
              + f"; {stacked.layer_plan_size(plan)} layer cells, {rounds}; "
              "x packed / x padded = torch "
              "packed / padded time over the contender's, same lengths; torch padded ignores "
              "the lengths (a different result past each row's length); FLOPs over the valid "
              "steps only", flush=True)
    model_skip = None
    if plan.models:
        model_skip = models.skip_reason(torch) or (
            None if models.runs_for(plan) else "--modes has no 'train' (they are training steps)")
        if model_skip is None:
            print("model workloads: " + "; ".join(w.describe() for w in plan.models)
                  + f"; {models.model_plan_size(plan)} model cells, {rounds}; torch.nn's model "
                  "vs a copy from the same initial weights after fastrnn.torch.convert(), "
                  "whose losses must equal torch's first; x torch = torch.nn time / "
                  "converted time (> 1: converted faster)", flush=True)
        else:
            print(f"model workloads skipped ({', '.join(w.name for w in plan.models)}): "
                  f"{model_skip}", flush=True)
    for note in report.thread_env_warnings(plan.threads):
        print(note, flush=True)
    document: Dict[str, Any] = {"machine": machine, "plan": report.plan_facts(plan),
                                "sgemm_gflops": None, "sgemm": None, "fma_peak": None,
                                "results": [],
                                "layers": [], "lengths_cost": [], "models": [],
                                "models_skipped": model_skip,
                                "stream": None, "targets": [], "interrupted": False}
    results: List[Result] = []
    layer_rows: List[stacked.LayerRow] = []
    model_rows: List[models.ModelRow] = []
    interrupted = False
    mismatch: Optional[str] = None
    try:
        document["sgemm"] = measure_sgemm(torch)
        document["sgemm_gflops"] = document["sgemm"]["gflops"]
        print(f"\nsingle-thread SGEMM ({document['sgemm']['library']}, float32, n={SGEMM_N}): "
              f"{document['sgemm_gflops']:.1f} GFLOP/s", flush=True)
        document["fma_peak"] = measure_fma_peak()
        print(report.peak_line(document["fma_peak"], document["sgemm"]), flush=True)
        document["stream"] = measure_stream(torch)
        print("\n" + "\n".join(report.stream_lines(document["stream"])) + "\n", flush=True)
        if plan.shapes:
            columns = report.table_columns(plan.cells)
            print("\n".join(report.table_header(columns)), flush=True)
            for cell_results in run_matrix(plan, torch, document["sgemm_gflops"],
                                           report.peak_rates(document["fma_peak"])):
                results.extend(cell_results)
                for r in cell_results:
                    print(report.table_row(r, columns), flush=True)
        if plan.workloads:
            layer_cells = sorted({c for w in plan.workloads for c in stacked.cells_for(plan, w)})
            print("\n" + "\n".join(report.layer_table_header(layer_cells)), flush=True)
            for cell_rows in stacked.run_layers(plan, torch):
                layer_rows.extend(cell_rows)
                for row in cell_rows:
                    print(report.layer_table_row(row, layer_cells), flush=True)
        if plan.models and model_skip is None:
            model_cells = sorted({c for w in plan.models for c in models.cells_for(plan, w)})
            print("\n" + "\n".join(report.model_table_header(model_cells)), flush=True)
            for cell_rows in models.run_models(plan, torch):
                model_rows.extend(cell_rows)
                for row in cell_rows:
                    print(report.model_table_row(row, model_cells), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        measured = len(results) + len(layer_rows) + len(model_rows)
        print(f"\ninterrupted: {measured} rows measured before Ctrl-C are kept; the matrix "
              "(or layer, or model) cell in progress is dropped", flush=True)
    except models.ModelMismatch as exc:  # a wrong answer's speed means nothing: stop, keep the rest
        mismatch = str(exc)
        print(f"fastrnn bench: error: model workload stopped: {mismatch}", file=sys.stderr,
              flush=True)
    document["results"] = [asdict(r) for r in results]
    document["layers"] = [asdict(r) for r in layer_rows]
    document["models"] = [asdict(r) for r in model_rows]
    document["lengths_cost"] = stacked.lengths_cost(layer_rows)
    if document["lengths_cost"]:
        print("\n" + "\n".join(report.lengths_cost_table(document["lengths_cost"])))
    document["targets"] = report.evaluate_targets(results, document["stream"],
                                                  document["sgemm_gflops"],
                                                  report.peak_rates(document["fma_peak"]))
    document["targets"] += report.layer_targets(layer_rows)
    document["interrupted"] = interrupted
    document["model_mismatch"] = mismatch
    if document["targets"]:
        print("\ntargets (fastrnn[c]; only those measured in this run):")
        print("\n".join(report.targets_table(document["targets"])))
    else:
        print("\ntargets: none measurable in this run")
    status = 130 if interrupted else 1 if mismatch else 0
    try:
        if json_path is not None:
            report.write_json(json_path, document)
            print(f"\nresults: {json_path}")
        if png_path is not None:
            print("chart skipped: interrupted" if interrupted else
                  report.write_chart(png_path, results))
    except OSError as exc:
        print(f"fastrnn bench: error: cannot write {exc.filename or ''}: {exc.strerror or exc}",
              file=sys.stderr)
        return status or 1
    return status


# ------------------------------------------------------------------- arguments

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


# --quick's matrix shapes, layer and model workloads; the default run's.
_QUICK_NAMES = QUICK_SHAPES + stacked.QUICK_WORKLOADS + models.QUICK_WORKLOADS
_DEFAULT_NAMES = tuple(SHAPES) + stacked.DEFAULT_WORKLOADS + models.DEFAULT_WORKLOADS


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    from fastrnn import bench  # the package docstring's first line is the description
    ap = argparse.ArgumentParser(
        prog=prog, description=bench.__doc__.split("\n\n")[0],
        epilog="Shapes (B, T, I, H): " + ", ".join(f"{s.name} ({s.B}, {s.T}, {s.I}, {s.H})"
                                                   for s in SHAPES.values())
               + ". Layer workloads (fastrnn.bench.stacked): "
               + "; ".join(w.describe() for w in stacked.WORKLOADS.values())
               + ". Model workloads (fastrnn.bench.models, torch.nn vs fastrnn.torch.convert): "
               + "; ".join(w.describe() for w in models.WORKLOADS.values())
               + ". The min-char-rnn workload: 'fastrnn bench minchar --help'; a step whose "
                 "state decays through the subnormals: 'fastrnn bench subnormal --help'; the "
                 "drop-ins per call: 'fastrnn bench dropin --help'. Exit status: "
                 "0, 130 after Ctrl-C (what was measured is printed and saved), 1 when a "
                 "converted model's loss is not torch's, 2 for bad arguments.")
    ap.add_argument("--shapes", nargs="+",
                    choices=list(SHAPES) + list(stacked.WORKLOADS) + list(models.WORKLOADS),
                    default=None,
                    help="matrix shapes, layer and model workloads (default: all shapes and "
                         f"{' '.join(stacked.DEFAULT_WORKLOADS + models.DEFAULT_WORKLOADS)}; "
                         f"--quick: {' '.join(_QUICK_NAMES)})")
    ap.add_argument("--cells", nargs="+", choices=list(cells.NAMES), default=None,
                    help=f"(default: {' '.join(DEFAULT_CELLS)}; the layer and model "
                         "workloads: their own, e.g. lstm gru for stacked and word-lm; the "
                         "model workloads take those torch.nn has a module for)")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=None,
                    help="(default: both; lengths-cost: train; the model workloads: "
                         "train only, left out without it)")
    ap.add_argument("--threads", nargs="+", type=_positive_int, default=list(DEFAULT_THREADS),
                    help="thread counts for fastrnn and torch alike (default: 1 2)")
    ap.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=None,
                    help="dtypes at every shape (default: float32 at every shape, plus "
                         f"float64 at {', '.join(FLOAT64_SHAPES)} only; the layer and model "
                         "workloads: float32)")
    ap.add_argument("--repeat", type=_positive_int, default=None,
                    help=f"timed rounds per matrix cell (default: {DEFAULT_REPEAT}; "
                         f"--quick: {QUICK_REPEAT})")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=None,
                       help="fastrnn backends to time, at every shape (default: c everywhere, "
                            f"numba and numpy at {' and '.join(SLOW_BACKEND_SHAPES)} only; the "
                            "layer workloads: those with lengths, numpy at the -small ones "
                            "only)")
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
                    help=f"shapes {' '.join(_QUICK_NAMES)} and "
                         f"{QUICK_REPEAT} rounds (explicit --shapes / --repeat still win): "
                         "a smoke run")
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
    names = _unique(args.shapes if args.shapes is not None else (
        list(_QUICK_NAMES) if args.quick else list(_DEFAULT_NAMES)))
    repeat = args.repeat if args.repeat is not None else (QUICK_REPEAT if args.quick else DEFAULT_REPEAT)
    if args.backends is not None:
        available = fastrnn.available_backends()
        missing = [b for b in args.backends if b not in available]
        if missing:
            ap.error(f"--backends: {', '.join(missing)} not available here "
                     f"(available: {', '.join(available)})")
    return Plan(shapes=[SHAPES[n] for n in names if n in SHAPES],
                cells=_unique(args.cells or DEFAULT_CELLS), modes=_unique(args.modes or MODES),
                workloads=[stacked.WORKLOADS[n] for n in names if n in stacked.WORKLOADS],
                models=[models.WORKLOADS[n] for n in names if n in models.WORKLOADS],
                layer_cells=None if args.cells is None else _unique(args.cells),
                layer_modes=None if args.modes is None else _unique(args.modes),
                threads=_unique(args.threads),
                dtypes=None if args.dtypes is None else _unique(args.dtypes), repeat=repeat,
                backends=None if args.backends is None else _unique(args.backends),
                all_backends=args.all_backends, torch=not args.no_torch)


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``fastrnn bench [options]``: parse ``argv``, run the matrix, return the exit
    status; ``fastrnn bench minchar [options]``: the min-char-rnn workload, ``fastrnn bench
    subnormal [options]``: the subnormal workload, ``fastrnn bench dropin [options]``: the
    drop-ins per call against the tutorials (status 0 for these three)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    workloads = {"minchar": minchar, "subnormal": subnormal, "dropin": dropin}
    if argv[:1] and argv[0] in workloads:  # each has its own options and parser
        workloads[argv[0]].main(argv[1:], prog=None if prog is None else f"{prog} {argv[0]}")
        return 0
    ap = build_parser(prog)
    args = ap.parse_args(argv)
    plan = plan_from_args(ap, args)
    json_path = _output_path(ap, "--json", args.json, args.no_json)
    png_path = _output_path(ap, "--png", args.png, args.no_png)
    torch = peers.import_torch() if plan.torch else None
    if torch is None:
        plan.torch = False
    return run_and_report(plan, torch=torch, json_path=json_path, png_path=png_path)
