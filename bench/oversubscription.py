"""Two threads on a shared machine: fastrnn with the other cores kept busy.

    python bench/oversubscription.py                 # medium shape, LSTM/GRU/Elman
    python bench/oversubscription.py --shape large --repeat 3

Starts one busy-looping process per CPU but one (``spawn``, not ``fork``:
see docs/ARCHITECTURE.md, "Threads"), then times one training step
(forward + full BPTT) of the C backend with 1 and with 2 threads,
interleaved, and prints the medians and their ratio. The issue's bar: with
the other core busy, two threads must never take more than 1.5x the
one-thread time. The same measurement without the hogs is printed first
for reference. Timings are wall-clock; compare ratios within one run.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

import fastrnn
from fastrnn import cells
from fastrnn import functional as F
from fastrnn.bench import DEFAULT_CELLS

SHAPES = {"small": (16, 128, 64, 128), "medium": (32, 100, 256, 512), "large": (64, 64, 1024, 1024)}


def _hog(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _training_step(cell: str, B: int, T: int, In: int, H: int):
    rng = np.random.default_rng(0)
    k = 1 / np.sqrt(H)
    params = [rng.uniform(-k, k, s).astype(np.float32)
              for s in cells.get(cell).parameter_shapes(In, H).values()]
    x = rng.standard_normal((T, B, In)).astype(np.float32)
    d_out = rng.standard_normal((T, B, H)).astype(np.float32)

    def run() -> None:
        F.backward(F.forward(cell, x, *params, backend="c", training=True), d_out)
    return run


def _interleaved_medians(run, thread_counts, repeat: int) -> dict:
    times = {n: [] for n in thread_counts}
    for n in thread_counts:  # warm-up: workers started, pages touched
        fastrnn.set_num_threads(n)
        run()
    for _ in range(repeat):
        for n in thread_counts:
            fastrnn.set_num_threads(n)
            t0 = time.perf_counter()
            run()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(ts) for n, ts in times.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="medium")
    ap.add_argument("--cells", nargs="+", choices=cells.NAMES, default=list(DEFAULT_CELLS))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    B, T, In, H = SHAPES[args.shape]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = fastrnn.get_num_threads()
    print(f"fastrnn {fastrnn.__version__} ({fastrnn.cpu_isa()}), {cpus} CPUs, shape {args.shape} "
          f"(B={B}, T={T}, I={In}, H={H}), float32 training step, median of {args.repeat}")
    print(f"{'cell':9s} {'load':>12s} {'1 thread ms':>12s} {'2 threads ms':>13s} {'2 thr / 1 thr':>14s}")
    ctx = mp.get_context("spawn")
    try:
        for cell in args.cells:
            run = _training_step(cell, B, T, In, H)
            for hogs in (0, max(1, cpus - 1)):
                stop = ctx.Event()
                procs = [ctx.Process(target=_hog, args=(stop,), daemon=True) for _ in range(hogs)]
                for p in procs:
                    p.start()
                try:
                    if hogs:
                        time.sleep(0.5)  # let the hogs get going
                    med = _interleaved_medians(run, (1, 2), args.repeat)
                finally:
                    stop.set()
                    for p in procs:
                        p.join()
                load = f"{hogs} busy" if hogs else "idle"
                print(f"{cell:9s} {load:>12s} {med[1] * 1e3:12.1f} {med[2] * 1e3:13.1f} "
                      f"{med[2] / med[1]:14.2f}", flush=True)
    finally:
        fastrnn.set_num_threads(before)


if __name__ == "__main__":
    main()
