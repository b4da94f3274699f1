"""Write the PyTorch reference vectors for per-row sequence lengths (one layer).

    python tests/vectors/generate_length_vectors.py     (needs torch; tests do not)

For each cell, a few batches whose rows have different lengths - unsorted,
with rows of length 0 and of length T, with and without an initial state -
run through PyTorch float64 autograd along the packed path:
torch.nn.RNN (tanh, relu) / LSTM / GRU on
``pack_padded_sequence(x, lengths, enforce_sorted=False)``, then
``pad_packed_sequence(..., total_length=T)``. torch refuses a row of length
0, so those rows are left out of the packed batch and assembled in torch ops
as the semantics say (output 0, h_n = h0, so autograd passes d_h_n to h0).
The sigmoid RNN, which torch.nn lacks, is the padded recurrence written with
masks (torch.where) in torch ops. The loss is

    L = <output, d_output> + <h_n, d_h_n> (+ <c_n, d_c_n> for LSTM)

with d_output random everywhere, past a row's length too, so the files also
check that those entries are ignored. Each case is checked against central
finite differences before it is written. Seeded: re-running reproduces the
files. Format: that of generate_vectors.py plus ``lengths`` (int64, (B,)).
Not a test itself; tests/test_lengths.py replays the files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HERE = Path(__file__).resolve().parent / "lengths"
# the same draws, checks and files as the equal-length vectors (every case here has H > 1)
# (this script's folder is on sys.path when it runs)
from generate_vectors import (GATES, case_record, draw_case,  # noqa: E402
                              finite_difference_check, save_case, torch_module)

# (T, B, I, H, has_bias, has_h0, lengths): unsorted, 0 and T present in
# each, ties in the last (the stable order of enforce_sorted=False matters).
CASES = [
    (6, 5, 3, 4, True, True, (3, 6, 0, 1, 6)),
    (7, 4, 2, 3, True, False, (2, 7, 5, 0)),
    (5, 6, 3, 2, False, False, (5, 1, 3, 3, 0, 4)),
]


def file_name(cell, T, B, I, H, has_bias, has_h0):
    return (f"{cell}_T{T}_B{B}_I{I}_H{H}" + ("" if has_bias else "_nobias")
            + ("" if has_h0 else "_noh0") + "_lengths.npz")


def sigmoid_rnn_masked(t, lengths, has_bias):
    """The padded recurrence with masks: a row stops updating after its length."""
    T = t["x"].shape[0]
    h, outs = t["h0"], []
    for step in range(T):
        pre = t["x"][step] @ t["weight_ih"].T + h @ t["weight_hh"].T
        if has_bias:
            pre = pre + t["bias_ih"] + t["bias_hh"]
        valid = (lengths > step)[:, None]
        h = torch.where(valid, torch.sigmoid(pre), h)
        outs.append(torch.where(valid, h, torch.zeros_like(h)))
    return torch.stack(outs), h, None


def torch_forward(cell, t, lengths, has_bias):
    """output, h_n, c_n (None unless LSTM) through torch's packed path."""
    if cell == "rnn_sigmoid":
        return sigmoid_rnn_masked(t, torch.tensor(lengths), has_bias)
    T, B = t["x"].shape[:2]
    I, H = t["weight_ih"].shape[1], t["weight_hh"].shape[1]
    module = torch_module(cell, I, H, has_bias)
    params = {f"{n}_l0": t[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if n in t}
    rows = torch.tensor([b for b in range(B) if lengths[b] > 0], dtype=torch.long)
    out = torch.zeros((T, B, H), dtype=torch.float64)
    h_n = t["h0"].clone()  # a row of length 0 keeps its initial state
    c_n = t["c0"].clone() if cell == "lstm" else None
    if len(rows):
        packed = pack_padded_sequence(t["x"][:, rows], torch.tensor(lengths)[rows],
                                      enforce_sorted=False)
        state = ((t["h0"][rows][None], t["c0"][rows][None]) if cell == "lstm"
                 else t["h0"][rows][None])
        packed_out, final = torch.func.functional_call(module, params, (packed, state))
        padded, _ = pad_packed_sequence(packed_out, total_length=T)
        out = out.index_put((torch.arange(T)[:, None], rows[None, :]), padded)
        if cell == "lstm":
            h_n = h_n.index_put((rows,), final[0][0])
            c_n = c_n.index_put((rows,), final[1][0])
        else:
            h_n = h_n.index_put((rows,), final[0])
    return out, h_n, c_n


def loss_and_outputs(cell, arrays, lengths, has_bias, requires_grad):
    t = {k: torch.tensor(v, dtype=torch.float64,
                         requires_grad=requires_grad and not k.startswith("d_"))
         for k, v in arrays.items()}
    out, h_n, c_n = torch_forward(cell, t, lengths, has_bias)
    loss = (out * t["d_output"]).sum() + (h_n * t["d_h_n"]).sum()
    if c_n is not None:
        loss = loss + (c_n * t["d_c_n"]).sum()
    return loss, t, out, h_n, c_n


def make_case(seed, cell, T, B, I, H, has_bias, has_h0, lengths):
    arrays = draw_case(seed, cell, T, B, I, H, has_bias, has_h0)
    loss, t, out, h_n, c_n = loss_and_outputs(cell, arrays, lengths, has_bias, True)
    loss.backward()
    grads = {k: t[k].grad.numpy() for k in t if not k.startswith("d_")}
    finite_difference_check(cell, arrays, grads, lambda a: loss_and_outputs(
        cell, a, lengths, has_bias, False)[0].item())

    return case_record(cell, arrays, has_bias, has_h0, out, h_n, c_n, grads,
                       lengths=np.array(lengths, dtype=np.int64))


def main() -> None:
    torch.manual_seed(0)
    HERE.mkdir(exist_ok=True)
    written = 0
    for c, cell in enumerate(GATES):
        for s, (T, B, I, H, has_bias, has_h0, lengths) in enumerate(CASES):
            written += save_case(HERE / file_name(cell, T, B, I, H, has_bias, has_h0),
                                 make_case(5000 + 1000 * c + s, cell, T, B, I, H, has_bias,
                                           has_h0, lengths))
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
