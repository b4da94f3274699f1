"""Compare fastrnn's backends with PyTorch's CPU modules, in one run.

    python bench/compare.py                # all cells, default sizes
    python bench/compare.py --cells lstm --T 200 --B 1 --H 100 --dtype float64

For each cell it times one forward + full BPTT backward (training) and one
forward alone (inference) per contender, takes the median of --repeat runs,
and prints the time and the ratio to the C backend. torch runs with
--torch-threads threads (1 by default: the C kernels are single-threaded, so
one thread compares like with like). Timings are wall-clock on whatever else
the machine is doing: compare ratios within one run, not across machines.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastrnn
from fastrnn import functional as F

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3}


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (numba compiles here)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fastrnn_fns(cell, backend, x, params, d_out):
    def train():
        res = F.forward(cell, x, *params, backend=backend, training=True)
        F.backward(res, d_out)

    def infer():
        F.forward(cell, x, *params, backend=backend)
    return train, infer


def torch_fns(cell, x, params, d_out):
    import torch
    I, H = x.shape[2], params[1].shape[1]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    if cell == "lstm":
        module = torch.nn.LSTM(I, H)
    elif cell == "gru":
        module = torch.nn.GRU(I, H)
    elif cell in ("rnn_tanh", "rnn_relu"):
        module = torch.nn.RNN(I, H, nonlinearity=cell[4:])
    else:
        return None
    module = module.to(dtype)
    with torch.no_grad():
        for name, p in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), params):
            getattr(module, name).copy_(torch.from_numpy(p))
    xt = torch.from_numpy(x).requires_grad_(True)
    dt = torch.from_numpy(d_out)

    def train():
        module.zero_grad(set_to_none=True)
        out = module(xt)[0]
        out.backward(dt)

    def infer():
        with torch.no_grad():
            module(xt)
    return train, infer


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=["rnn_tanh", "lstm", "gru"], choices=list(GATES))
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--no-numpy", action="store_true", help="skip the slow NumPy reference")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    contenders = [b for b in fastrnn.available_backends() if not (args.no_numpy and b == "numpy")]
    try:
        import torch
        torch.set_num_threads(args.torch_threads)
        torch_label = f"torch {torch.__version__} ({args.torch_threads} thr)"
    except ImportError:
        torch = None
    print(f"fastrnn {fastrnn.__version__} (C ISA {fastrnn.cpu_isa() or 'n/a'}), T={args.T} "
          f"B={args.B} I={args.I} H={args.H} {dtype.name}, median of {args.repeat}")
    print(f"{'cell':12s} {'contender':26s} {'train ms':>10s} {'x C':>7s} {'infer ms':>10s} {'x C':>7s}")
    for cell in args.cells:
        G, H, I = GATES[cell], args.H, args.I
        k = 1 / np.sqrt(H)
        params = [rng.uniform(-k, k, s).astype(dtype) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
        x = rng.standard_normal((args.T, args.B, I)).astype(dtype)
        d_out = rng.standard_normal((args.T, args.B, H)).astype(dtype)
        rows = [(f"fastrnn[{b}]", fastrnn_fns(cell, b, x, params, d_out)) for b in contenders]
        if torch is not None:
            fns = torch_fns(cell, x, params, d_out)
            if fns is not None:
                rows.append((torch_label, fns))
        base = None
        for label, (train, infer) in rows:
            tt, ti = median_time(train, args.repeat), median_time(infer, args.repeat)
            if base is None:
                base = (tt, ti)
            print(f"{cell:12s} {label:26s} {tt * 1e3:10.2f} {tt / base[0]:7.2f} "
                  f"{ti * 1e3:10.2f} {ti / base[1]:7.2f}")


if __name__ == "__main__":
    main()
