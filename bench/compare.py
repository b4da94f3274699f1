"""Compare fastrnn's backends with PyTorch's CPU modules at one custom size, in one run.

    python bench/compare.py                # all cells, T=100 B=16 I=64 H=128
    python bench/compare.py --cells lstm --T 200 --B 1 --H 100 --dtype float64

A thin front end to fastrnn.bench (``fastrnn bench``), which owns the
problems, the torch peers, the interleaved timing and the report: this
script only puts one shape of your choosing in place of the fixed matrix
shapes, with every available backend at it. Use ``fastrnn bench`` for the
standard matrix, the targets and the JSON file.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import fastrnn
from fastrnn import cells
from fastrnn.bench import peers, timing
from fastrnn.bench.cli import run_and_report


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=list(timing.DEFAULT_CELLS),
                    choices=list(cells.NAMES))
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--dtype", default="float32", choices=list(timing.DTYPES))
    ap.add_argument("--modes", nargs="+", default=list(timing.MODES), choices=list(timing.MODES))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", nargs="+", type=int, default=[1],
                    help="thread counts for fastrnn and torch alike (1)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the slow NumPy reference")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    if min(args.T, args.B, args.I, args.H, args.repeat, *args.threads) < 1:
        ap.error("--T, --B, --I, --H, --repeat and --threads must be >= 1")
    backends = [b for b in fastrnn.available_backends() if not (args.no_numpy and b == "numpy")]
    plan = timing.Plan(shapes=[timing.Shape("custom", args.B, args.T, args.I, args.H)],
                       cells=args.cells, modes=args.modes, threads=args.threads,
                       dtypes=[args.dtype], repeat=args.repeat, backends=backends,
                       torch=not args.no_torch)
    torch = peers.import_torch() if plan.torch else None
    plan.torch = torch is not None
    return run_and_report(plan, torch=torch)


if __name__ == "__main__":
    sys.exit(main())
