"""The subnormal workload: a training step whose state decays through the subnormals.

    fastrnn bench subnormal                      # Elman tanh and LSTM, B=32 T=100 I=H=256
    fastrnn bench subnormal --cells lstm --repeat 9

On many x86 cores every multiply or FMA that reads or produces a subnormal
number needs a microcode assist (~100 cycles), so a recurrence whose state
decays geometrically toward zero can make a step 10-25x slower. The C
kernels flush subnormals to zero for the duration of each call
(fastrnn.subnormals); this workload shows what that buys.

For each cell, two problems of the same shape (float32, one training step:
forward with the workspace plus full backward, the C backend):

* "normal": the matrix's problem (fastrnn.bench.timing.make_problem);
* "decaying": x = 0, W_ih = 0, W_hh = rho * Q (Q a seeded random orthogonal
  matrix, rho = 0.9; LSTM: each gate's block, rho = 0.2, and the forget
  gate's bias set so that f = 0.9 while i = o = 0.5), h_0 (and c_0) of magnitude about 2^-127, and an
  upstream gradient of the same magnitude: with IEEE arithmetic the state
  and the gradients stay in the subnormal range for the whole window (the
  fraction of subnormal outputs is printed, measured with the flush off).

Each problem runs with the flush (the default) and without
(``set_flush_subnormals(False)``), the four contenders interleaved in the
same rounds (fastrnn.bench.timing.time_round_robin); a row's ratio is its
median over the normal problem's median with the same setting. Target
(issue 15): a decaying step with the flush costs <= 1.2x a normal step.
How large the penalty without the flush is depends on the core (Intel
cores assist on subnormal operands and results; recent AMD cores far less).

Not here: torch (its CPU kernels keep subnormals unless
torch.set_flush_denormal(True)), other backends (numba and NumPy never
flush), the matrix (fastrnn.bench.timing).
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

import fastrnn
from fastrnn import cells
from fastrnn import functional as F

from .timing import Shape, make_problem, thread_counts, time_round_robin, warm_up

DEFAULT_SHAPE = Shape("subnormal", 32, 100, 256, 256)
DEFAULT_CELLS = ("rnn_tanh", "lstm")
DEFAULT_REPEAT = 7
#: The spectral radius of the decaying problem's W_hh, and the LSTM's forget
#: gate: the state shrinks by about this per step, so over T = 100 steps from
#: 2^-127 it stays within the subnormals (2^-126 .. 2^-149 in float32).
DECAY = 0.9
START = 2.0 ** -127


@dataclass
class SubnormalRow:
    cell: str
    problem: str  # "normal" or "decaying"
    flush: bool
    median_s: float
    min_s: float
    vs_normal: float  # this median / the normal problem's median, same flush setting
    subnormal_fraction: Optional[float]  # of the forward output, IEEE run; normal rows: None


def decaying_problem(cell: str, shape: Shape, seed: int = 0):
    """The decaying problem's arrays (x, w_ih, w_hh, b_ih, b_hh, h0, c0, d_out),
    float32; see the module docstring."""
    rng = np.random.default_rng(seed)
    spec = cells.get(cell)
    H, G = shape.H, spec.gates
    w_hh = np.empty((G * H, H))
    # A cell state (the LSTM's) linearises to c_t = (f + i * o * W_g) c_{t-1}:
    # with f = DECAY and i = o = 0.5 the W_hh blocks must be smaller
    # (radius 0.2: at most 0.95 per step) for the state to shrink.
    radius = 0.2 if spec.has_cell_state else DECAY
    for g in range(G):
        q, _ = np.linalg.qr(rng.standard_normal((H, H)))
        w_hh[g * H:(g + 1) * H] = radius * q
    b = np.zeros(G * H)
    if spec.has_cell_state and "f" in spec.gate_names:  # f = sigmoid(b_f) = DECAY
        f = spec.gate_names.index("f")
        b[f * H:(f + 1) * H] = np.log(DECAY / (1 - DECAY))

    def tiny(*size):
        return START * rng.uniform(0.5, 1.0, size) * rng.choice([-1.0, 1.0], size)
    f32 = np.float32
    return dict(x=np.zeros((shape.T, shape.B, shape.I), f32),
                weight_ih=np.zeros((G * H, shape.I), f32), weight_hh=w_hh.astype(f32),
                bias_ih=b.astype(f32), bias_hh=np.zeros(G * H, f32),
                h0=tiny(shape.B, H).astype(f32),
                c0=tiny(shape.B, H).astype(f32) if spec.has_cell_state else None,
                d_output=tiny(shape.T, shape.B, H).astype(f32))


def normal_problem(cell: str, shape: Shape, seed: int = 0):
    p = make_problem(cell, shape, np.float32, seed)
    return dict(x=p.x, weight_ih=p.weight_ih, weight_hh=p.weight_hh, bias_ih=p.bias_ih,
                bias_hh=p.bias_hh, h0=None, c0=None, d_output=p.d_output)


def _train_step(cell: str, arrays: Dict[str, np.ndarray], flush: bool):
    a = arrays

    def step():
        fastrnn.set_flush_subnormals(flush)
        res = F.forward(cell, a["x"], a["weight_ih"], a["weight_hh"], a["bias_ih"],
                        a["bias_hh"], a["h0"], a["c0"], backend="c", training=True)
        return F.backward(res, a["d_output"])
    return step


def subnormal_fraction(cell: str, arrays: Dict[str, np.ndarray]) -> float:
    """The share of the forward output that is subnormal with IEEE arithmetic."""
    before = fastrnn.get_flush_subnormals()
    fastrnn.set_flush_subnormals(False)
    try:
        a = arrays
        out = F.forward(cell, a["x"], a["weight_ih"], a["weight_hh"], a["bias_ih"],
                        a["bias_hh"], a["h0"], a["c0"], backend="c").output
    finally:
        fastrnn.set_flush_subnormals(before)
    mag = np.abs(out)
    return float(np.mean((mag > 0) & (mag < np.finfo(np.float32).tiny)))


def run(cells_: Sequence[str] = DEFAULT_CELLS, shape: Shape = DEFAULT_SHAPE,
        repeat: int = DEFAULT_REPEAT, threads: int = 1) -> List[SubnormalRow]:
    """Measure every cell's four contenders; returns the rows (normal first)."""
    rows: List[SubnormalRow] = []
    before = fastrnn.get_flush_subnormals()
    try:
        with thread_counts(threads):
            for cell in cells_:
                problems = {"normal": normal_problem(cell, shape),
                            "decaying": decaying_problem(cell, shape)}
                fraction = subnormal_fraction(cell, problems["decaying"])
                calls = {(p, flush): _train_step(cell, problems[p], flush)
                         for p in problems for flush in (True, False)}
                per_sample = {k: warm_up(fn) for k, fn in calls.items()}
                samples = time_round_robin(calls, repeat, per_sample)
                for (p, flush), s in samples.items():
                    median = statistics.median(s)
                    normal = statistics.median(samples[("normal", flush)])
                    rows.append(SubnormalRow(cell, p, flush, median, min(s), median / normal,
                                             fraction if p == "decaying" else None))
    finally:
        fastrnn.set_flush_subnormals(before)
    rows.sort(key=lambda r: (r.cell, r.problem != "normal", not r.flush))
    return rows


def format_rows(rows: Sequence[SubnormalRow], shape: Shape) -> List[str]:
    lines = [f"subnormal workload: one training step, float32, C backend "
             f"({fastrnn.cpu_isa()}), B={shape.B} T={shape.T} I={shape.I} H={shape.H}; "
             f"x normal = median / the normal problem's, same flush setting "
             f"(target <= 1.2 with the flush)",
             f"{'cell':<9} {'problem':<9} {'flush':<6} {'median ms':>10} {'min ms':>8} "
             f"{'x normal':>9} {'subnormal out':>14}"]
    for r in rows:
        frac = "" if r.subnormal_fraction is None else f"{100 * r.subnormal_fraction:.1f} %"
        lines.append(f"{r.cell:<9} {r.problem:<9} {'on' if r.flush else 'off':<6} "
                     f"{1e3 * r.median_s:>10.2f} {1e3 * r.min_s:>8.2f} {r.vs_normal:>9.2f} "
                     f"{frac:>14}")
    return lines


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", choices=list(cells.NAMES), default=list(DEFAULT_CELLS))
    ap.add_argument("--shape", nargs=4, type=int, metavar=("B", "T", "I", "H"),
                    default=[DEFAULT_SHAPE.B, DEFAULT_SHAPE.T, DEFAULT_SHAPE.I, DEFAULT_SHAPE.H])
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if min(args.shape) < 1 or args.repeat < 1 or args.threads < 1:
        ap.error("--shape, --repeat and --threads take integers >= 1")
    if "c" not in fastrnn.available_backends():
        ap.error("the subnormal workload times the C backend, which is not built here")
    shape = Shape("subnormal", *args.shape)
    rows = run(args.cells, shape, args.repeat, args.threads)
    print("\n".join(format_rows(rows, shape)))


if __name__ == "__main__":
    main()
