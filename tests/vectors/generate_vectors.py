"""Write the PyTorch reference vectors the test suite checks every backend against.

    python tests/vectors/generate_vectors.py        (needs torch; tests do not)

For each cell and a handful of odd shapes it builds the layer in PyTorch
float64 - torch.nn.RNN (tanh, relu), torch.nn.LSTM, torch.nn.GRU, and for the
sigmoid RNN, which torch.nn lacks, the recurrence spelled out in torch ops -
runs it forward, backpropagates the scalar

    L = <output, d_output> + <h_n, d_h_n> (+ <c_n, d_c_n> for LSTM)

with autograd, and stores inputs, outputs and every gradient in one small
compressed .npz per case. Using the torch.nn modules (with their parameters
set by name) makes the files an independent check of PyTorch's weight layout
and gate order as well as of the arithmetic.

Before writing anything, each case is checked against central finite
differences in float64, so a broken generator cannot produce files.
Everything is seeded: re-running reproduces the same arrays. The format is
described in README.md beside this script.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3}

# (T, B, I, H, has_bias, has_h0) - T = 1, B = 1, H = 1 included; every cell
# gets a bias-free case and cases without an initial state.
SHAPES = [
    (1, 1, 1, 1, True, True),
    (1, 3, 2, 5, True, False),
    (2, 1, 3, 4, False, True),
    (5, 3, 4, 7, True, True),
    (9, 2, 5, 3, True, False),
    (6, 4, 3, 8, False, False),
]


def file_name(cell, T, B, I, H, has_bias, has_h0):
    return (f"{cell}_T{T}_B{B}_I{I}_H{H}" + ("" if has_bias else "_nobias")
            + ("" if has_h0 else "_noh0") + ".npz")


def draw_case(seed, cell, T, B, I, H, has_bias, has_h0):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    k = 1.0 if H == 1 else 1.0 / np.sqrt(H)
    a = {"x": rng.standard_normal((T, B, I)),
         "weight_ih": rng.uniform(-k, k, (G * H, I)),
         "weight_hh": rng.uniform(-k, k, (G * H, H))}
    if has_bias:
        a["bias_ih"] = rng.uniform(-k, k, G * H)
        a["bias_hh"] = rng.uniform(-k, k, G * H)
    a["h0"] = rng.normal(0, 0.5, (B, H)) if has_h0 else np.zeros((B, H))
    if cell == "lstm":
        a["c0"] = rng.normal(0, 0.5, (B, H)) if has_h0 else np.zeros((B, H))
    a["d_output"] = rng.standard_normal((T, B, H))
    a["d_h_n"] = rng.standard_normal((B, H))
    if cell == "lstm":
        a["d_c_n"] = rng.standard_normal((B, H))
    return a


def torch_module(cell, I, H, has_bias, **options):
    """The float64 torch.nn module computing ``cell`` (not rnn_sigmoid: torch
    lacks it); ``options`` (num_layers, bidirectional, batch_first) go to it."""
    if cell == "lstm":
        return torch.nn.LSTM(I, H, bias=has_bias, dtype=torch.float64, **options)
    if cell == "gru":
        return torch.nn.GRU(I, H, bias=has_bias, dtype=torch.float64, **options)
    return torch.nn.RNN(I, H, nonlinearity=cell[4:], bias=has_bias, dtype=torch.float64,
                        **options)


def torch_forward(cell, t, has_bias):
    """output, h_n, c_n (None unless LSTM) from torch tensors t."""
    I, H = t["weight_ih"].shape[1], t["weight_hh"].shape[1]
    if cell == "rnn_sigmoid":
        h, outs = t["h0"], []
        for x_t in t["x"]:
            pre = x_t @ t["weight_ih"].T + h @ t["weight_hh"].T
            if has_bias:
                pre = pre + t["bias_ih"] + t["bias_hh"]
            h = torch.sigmoid(pre)
            outs.append(h)
        return torch.stack(outs), h, None
    module = torch_module(cell, I, H, has_bias)
    # Functional call with our tensors as the module's parameters, so that
    # autograd reaches them directly.
    params = {f"{n}_l0": t[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if n in t}
    state = (t["h0"][None], t["c0"][None]) if cell == "lstm" else t["h0"][None]
    out, final = torch.func.functional_call(module, params, (t["x"], state))
    if cell == "lstm":
        return out, final[0][0], final[1][0]
    return out, final[0], None


def loss_and_outputs(cell, arrays, has_bias, requires_grad):
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=requires_grad and not k.startswith("d_"))
         for k, v in arrays.items()}
    out, h_n, c_n = torch_forward(cell, t, has_bias)
    loss = (out * t["d_output"]).sum() + (h_n * t["d_h_n"]).sum()
    if c_n is not None:
        loss = loss + (c_n * t["d_c_n"]).sum()
    return loss, t, out, h_n, c_n


def finite_difference_check(cell, arrays, grads, loss, names=("x", "weight_hh", "h0")):
    """Central differences on a few entries of each of ``names`` (x, weight_hh
    and h0 unless told) against ``grads``; loss(arrays) is the case's scalar
    loss (torch, float64)."""
    eps = 1e-6
    rng = np.random.default_rng(0)
    for name in names:
        for _ in range(4):
            idx = tuple(int(rng.integers(n)) for n in arrays[name].shape)
            plus = {k: v.copy() for k, v in arrays.items()}
            minus = {k: v.copy() for k, v in arrays.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            with torch.no_grad():
                numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = grads[name][idx]
            scale = max(1.0, np.max(np.abs(grads[name])))
            assert abs(numeric - analytic) <= 1e-6 * scale, (cell, name, idx, numeric, analytic)


def make_case(seed, cell, T, B, I, H, has_bias, has_h0):
    arrays = draw_case(seed, cell, T, B, I, H, has_bias, has_h0)
    loss, t, out, h_n, c_n = loss_and_outputs(cell, arrays, has_bias, True)
    loss.backward()
    grads = {k: t[k].grad.numpy() for k in t if not k.startswith("d_")}
    finite_difference_check(cell, arrays, grads,
                            lambda a: loss_and_outputs(cell, a, has_bias, False)[0].item())

    return case_record(cell, arrays, has_bias, has_h0, out, h_n, c_n, grads)


def case_record(cell, arrays, has_bias, has_h0, out, h_n, c_n, grads, **extra):
    """What a case's .npz holds (README's keys): the flags, ``extra``, the
    inputs (h0 / c0 only when given), the torch outputs and the gradients."""
    record = {"cell": np.array(cell), "has_bias": np.array(has_bias),
              "has_h0": np.array(has_h0), **extra}
    for k, v in arrays.items():
        if k in ("h0", "c0") and not has_h0:
            continue  # absent: the backends start from zeros
        record[k] = v
    record["output"] = out.detach().numpy()
    record["h_n"] = h_n.detach().numpy()
    if c_n is not None:
        record["c_n"] = c_n.detach().numpy()
    for k, g in grads.items():
        record[f"grad_{k}"] = g
    return record


def save_case(path, record) -> int:
    """Write one case's record; returns the file's size in bytes."""
    np.savez_compressed(path, **record)
    print(f"wrote {path.name}")
    return path.stat().st_size


def main() -> None:
    torch.manual_seed(0)
    written = 0
    for c, cell in enumerate(GATES):
        for s, (T, B, I, H, has_bias, has_h0) in enumerate(SHAPES):
            written += save_case(HERE / file_name(cell, T, B, I, H, has_bias, has_h0),
                                 make_case(1000 * c + s, cell, T, B, I, H, has_bias, has_h0))
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
