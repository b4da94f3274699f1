"""pytest-benchmark workloads (run: ``pytest bench/``; not part of the test suite).

One forward + full BPTT per (cell, backend) at the compare.py default size,
plus torch's CPU module as a peer when torch is installed. Compare within
one run: ``pytest bench/ --benchmark-group-by=param:cell``.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

T, B, I, H = 100, 16, 64, 128
CELLS = ["rnn_tanh", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "lstm": 4, "gru": 3}


def problem(cell, dtype=np.float32):
    rng = np.random.default_rng(0)
    G, k = GATES[cell], 1 / np.sqrt(H)
    params = [rng.uniform(-k, k, s).astype(dtype) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    x = rng.standard_normal((T, B, I)).astype(dtype)
    d_out = rng.standard_normal((T, B, H)).astype(dtype)
    return x, params, d_out


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", [b for b in fastrnn.available_backends()])
def test_train_step(benchmark, cell, backend):
    x, params, d_out = problem(cell)

    def run():
        res = F.forward(cell, x, *params, backend=backend, training=True)
        return F.backward(res, d_out)

    benchmark(run)


@pytest.mark.parametrize("cell", CELLS)
def test_train_step_torch(benchmark, cell):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    x, params, d_out = problem(cell)
    module = {"rnn_tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H)
    with torch.no_grad():
        for name, p in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), params):
            getattr(module, name).copy_(torch.from_numpy(p))
    xt, dt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(d_out)

    def run():
        module.zero_grad(set_to_none=True)
        module(xt)[0].backward(dt)

    benchmark(run)
