"""float64 gradients of every backend against central finite differences.

The loss is L = <output, d_output> + <h_n, d_h_n> (+ <c_n, d_c_n>), whose
gradient is exactly what backward returns. Central differences with
eps = 1e-6 carry truncation error O(eps^2 * f''') plus rounding
O(1e-16 / eps) ~ 1e-10 per entry, so the tolerance here is 1e-6 relative,
not the 1e-10 used against the PyTorch vectors: the looser bound is the
finite-difference method's, not the kernels'.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

from conftest import random_problem, rel_err

FD_TOL = 1e-6
EPS = 1e-6


def loss(cell, p, backend):
    r = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                  p["h0"], p["c0"], backend=backend)
    total = np.sum(r.output * p["d_output"]) + np.sum(r.h_n * p["d_h_n"])
    if cell == "lstm":
        total += np.sum(r.c_n * p["d_c_n"])
    return float(total)


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_gradients_match_central_differences(cell, backend):
    p = random_problem(cell, T=4, B=2, I=3, H=3, dtype=np.float64, seed=11)
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True)
    grads = F.backward(res, p["d_output"], p["d_h_n"], p["d_c_n"])
    names = ["x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0"] + (["c0"] if cell == "lstm" else [])
    report = []
    for name in names:
        analytic = getattr(grads, name)
        numeric = np.empty_like(analytic)
        base = p[name]
        for idx in np.ndindex(base.shape):
            saved = base[idx]
            base[idx] = saved + EPS
            up = loss(cell, p, backend)
            base[idx] = saved - EPS
            down = loss(cell, p, backend)
            base[idx] = saved
            numeric[idx] = (up - down) / (2 * EPS)
        err = rel_err(analytic, numeric)
        report.append(f"{name}={err:.1e}")
        assert err <= FD_TOL, f"{cell}/{backend} d{name}: relative error {err:.3e}"
    print(f"\n{cell}/{backend} finite differences: " + " ".join(report))
