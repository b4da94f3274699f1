"""The ``fastrnn`` command (also ``python -m fastrnn``).

``fastrnn check`` (the default) runs the slide walk-through with hand-derived
numbers on every available backend and a float64 finite-difference gradient
check of each cell, printing what it compared and the errors it found.
``fastrnn info`` prints the version, backends and the C kernels' ISA.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastrnn
from fastrnn import functional as F


def _info() -> int:
    print(f"fastrnn {fastrnn.__version__}")
    print(f"backends available: {', '.join(fastrnn.available_backends())}")
    print(f"C kernels ISA: {fastrnn.cpu_isa() or '(compiled core not available)'}")
    return 0


# The concat(x, h) walk-through: a 3x9 weight acting on [x_t (6), h_{t-1} (3)],
# ReLU, no bias, h0 = 0. Worked by hand: h = [3,1,5], [8,9,12], [11,29,22].
WALKTHROUGH_X = np.array([[0, 1, 0, 1, 0, 1], [0, 2, 1, 3, 0, 0], [1, 1, 2, 1, 0, 0]])
WALKTHROUGH_W = np.array([[1, 1, 0, 1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1],
                          [2, 1, 1, 1, 2, 3, 2, 0, 0]])
WALKTHROUGH_H = np.array([[3, 1, 5], [8, 9, 12], [11, 29, 22]])


def _finite_difference_error(cell: str, backend: str) -> float:
    """Max relative error of backward vs central differences, float64."""
    rng = np.random.default_rng(7)
    T, B, I, H = 4, 2, 3, 5
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    p = [rng.uniform(-0.5, 0.5, s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, H))

    def loss(w_hh):
        r = F.forward(cell, x, p[0], w_hh, p[2], p[3], backend=backend)
        return float(np.sum(r.output * d_out))

    res = F.forward(cell, x, *p, backend=backend, training=True)
    grad = F.backward(res, d_out).weight_hh
    fd = np.empty_like(grad)
    eps = 1e-6
    for idx in np.ndindex(grad.shape):
        w_plus, w_minus = p[1].copy(), p[1].copy()
        w_plus[idx] += eps
        w_minus[idx] -= eps
        fd[idx] = (loss(w_plus) - loss(w_minus)) / (2 * eps)
    return float(np.max(np.abs(grad - fd)) / np.max(np.abs(fd)))


def _check() -> int:
    _info()
    ok = True
    print("\nslide walk-through (ReLU, 3 steps, hand-derived h):")
    for backend in fastrnn.available_backends():
        for dtype in (np.float32, np.float64):
            x = WALKTHROUGH_X[:, None, :].astype(dtype)
            w = WALKTHROUGH_W.astype(dtype)
            r = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend)
            good = np.array_equal(r.output[:, 0], WALKTHROUGH_H)
            ok &= good
            print(f"  {backend:6s} {np.dtype(dtype).name:8s} h = {r.output[:, 0].astype(int).tolist()}"
                  f"  {'ok' if good else 'MISMATCH'}")
    print("\nfloat64 weight_hh gradient vs central finite differences (max relative error):")
    for backend in fastrnn.available_backends():
        t0 = time.perf_counter()
        errs = {cell: _finite_difference_error(cell, backend) for cell in fastrnn.CELLS}
        ok &= all(e < 1e-6 for e in errs.values())
        print(f"  {backend:6s} " + "  ".join(f"{c} {e:.1e}" for c, e in errs.items())
              + f"  ({time.perf_counter() - t0:.1f} s)")
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastrnn", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="check", choices=("check", "info"))
    args = parser.parse_args(argv)
    return _check() if args.command == "check" else _info()


if __name__ == "__main__":
    sys.exit(main())
