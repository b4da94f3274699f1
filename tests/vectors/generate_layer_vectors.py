"""Write the PyTorch reference vectors for whole layers: stacked, bidirectional,
variable-length, batch-first and unbatched.

    python tests/vectors/generate_layer_vectors.py     (needs torch; tests do not)

For each cell and a handful of small configurations (num_layers 1-3, one or
two directions, per-row lengths with rows of length 0 and T, batch_first,
unbatched (T, I) input, with and without biases and initial states) it runs
the layer through PyTorch float64 autograd and backpropagates

    L = <output, d_output> + <h_n, d_h_n> (+ <c_n, d_c_n> for LSTM)

with every upstream gradient random everywhere (past a row's length too).

The reference for rnn_tanh / rnn_relu / lstm / gru is the torch.nn module
itself (num_layers, bidirectional, batch_first set, parameters by torch
name), on ``pack_padded_sequence(..., enforce_sorted=False)`` /
``pad_packed_sequence(..., total_length=T)`` when there are lengths. torch
refuses a row of length 0, so such rows are left out of the packed batch and
assembled in torch ops as the semantics say: output 0 and h_n = h0 for every
layer and direction, so autograd passes d_h_n to h0's gradient.

torch.nn has no sigmoid RNN, so rnn_sigmoid is composed layer by layer and
direction by direction from generate_length_vectors.py's one-layer
reference (the masked recurrence; the reverse direction runs each row's
valid prefix reversed, so it starts at the row's last valid step). The same
composition is run for every other cell too and must equal torch.nn's
stacked module to 1e-12, which is what vouches for the sigmoid files.

Before a case is written its gradients are checked against central finite
differences (a few entries of x, h0, c0 and every parameter). Draws reuse
generate_vectors.draw_case, one draw per layer and direction. Seeded:
re-running reproduces the files. Not a test itself; tests/test_layer_vectors.py
replays the files. Format: README.md beside this script.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# (this script's folder is on sys.path when it runs)
from generate_vectors import (GATES, case_record, draw_case,  # noqa: E402
                              finite_difference_check, save_case, torch_module)
from generate_length_vectors import torch_forward as one_layer_forward  # noqa: E402

HERE = Path(__file__).resolve().parent / "layers"
TORCH_NN_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
BATCHED = ("x", "h0", "c0", "d_output", "d_h_n", "d_c_n")  # the arrays with a batch axis

# One configuration per dict; every cell gets every one. B is 1 when
# unbatched (the draws are made with B = 1, then the batch axis dropped).
CONFIGS = [
    dict(T=5, B=3, I=3, H=3, num_layers=2),
    dict(T=4, B=2, I=2, H=2, num_layers=3, has_hx=False),
    dict(T=5, B=3, I=2, H=3, bidirectional=True, bias=False),
    dict(T=4, B=3, I=3, H=2, num_layers=2, bidirectional=True, batch_first=True, has_hx=False),
    dict(T=7, B=5, I=2, H=3, num_layers=2, lengths=(3, 7, 0, 1, 5)),
    dict(T=6, B=4, I=2, H=2, num_layers=2, bidirectional=True, batch_first=True,
         lengths=(6, 0, 2, 4)),
    dict(T=6, B=3, I=3, H=2, has_hx=False, bias=False, lengths=(4, 6, 0)),
    dict(T=5, B=1, I=3, H=3, num_layers=2, bidirectional=True, unbatched=True),
    dict(T=3, B=1, I=2, H=2, unbatched=True, has_hx=False, bias=False),
    dict(T=1, B=1, I=1, H=1, num_layers=2, bidirectional=True),
]
DEFAULTS = dict(num_layers=1, bidirectional=False, batch_first=False, bias=True,
                unbatched=False, has_hx=True, lengths=None)


def full_config(cell, config):
    return {"cell": cell, **DEFAULTS, **config}


def file_name(cfg):
    return (f"{cfg['cell']}_T{cfg['T']}_B{cfg['B']}_I{cfg['I']}_H{cfg['H']}_L{cfg['num_layers']}"
            + ("_bi" if cfg["bidirectional"] else "") + ("_bf" if cfg["batch_first"] else "")
            + ("_unbatched" if cfg["unbatched"] else "") + ("" if cfg["bias"] else "_nobias")
            + ("" if cfg["has_hx"] else "_nohx") + ("_lengths" if cfg["lengths"] else "")
            + ".npz")


def directions(cfg):
    return 2 if cfg["bidirectional"] else 1


def suffix(layer, direction):
    """torch's parameter-name suffix: _l1, _l1_reverse, ..."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def param_names(cfg):
    """Every parameter's torch name, in torch.nn's order."""
    kinds = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if cfg["bias"] else ())
    return [kind + suffix(layer, d) for layer in range(cfg["num_layers"])
            for d in range(directions(cfg)) for kind in kinds]


def draw_layer_case(seed, cfg):
    """Inputs, parameters and upstream gradients under torch's names and shapes.

    One generate_vectors.draw_case per layer and direction (seed + 2 * layer
    + direction), with that layer's input width: its weights and biases, its
    slice of h0 / c0 / d_h_n / d_c_n; x comes from layer 0's forward draw and
    d_output from the top layer's directions side by side.
    """
    cell, T, B, I, H = cfg["cell"], cfg["T"], cfg["B"], cfg["I"], cfg["H"]
    L, D = cfg["num_layers"], directions(cfg)
    draws = {(layer, d): draw_case(seed + 2 * layer + d, cell, T, B, I if layer == 0 else D * H,
                                   H, cfg["bias"], cfg["has_hx"])
             for layer in range(L) for d in range(D)}
    arrays = {"x": draws[0, 0]["x"]}
    for (layer, d), draw in draws.items():
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if kind in draw:
                arrays[kind + suffix(layer, d)] = draw[kind]
    state_names = ("h0", "c0") if cell == "lstm" else ("h0",)
    for name in state_names:
        arrays[name] = np.stack([draws[key][name] for key in sorted(draws)])  # torch: layer * D + d
    arrays["d_output"] = np.concatenate([draws[L - 1, d]["d_output"] for d in range(D)], axis=-1)
    for name in ("d_h_n", "d_c_n") if cell == "lstm" else ("d_h_n",):
        arrays[name] = np.stack([draws[key][name] for key in sorted(draws)])
    if cfg["unbatched"]:  # drop the batch axis: (T, 1, .) -> (T, .), (L*D, 1, H) -> (L*D, H)
        assert B == 1 and cfg["lengths"] is None, "unbatched: B = 1 and no lengths (torch has none)"
        arrays = {k: a[:, 0] if k in BATCHED else a for k, a in arrays.items()}
    if cfg["batch_first"]:
        arrays["x"] = np.ascontiguousarray(arrays["x"].transpose(1, 0, 2))
        arrays["d_output"] = np.ascontiguousarray(arrays["d_output"].transpose(1, 0, 2))
    return arrays


def torch_nn_forward(cfg, t):
    """output, h_n, c_n from torch.nn's stacked module (packed path with lengths)."""
    cell, T, L, D, H = cfg["cell"], cfg["T"], cfg["num_layers"], directions(cfg), cfg["H"]
    module = torch_module(cell, cfg["I"], H, cfg["bias"], num_layers=L,
                          bidirectional=cfg["bidirectional"], batch_first=cfg["batch_first"])
    params = {name: t[name] for name in param_names(cfg)}
    lstm = cell == "lstm"
    if cfg["lengths"] is None:
        out, final = torch.func.functional_call(
            module, params, (t["x"], (t["h0"], t["c0"]) if lstm else t["h0"]))
        return (out,) + (tuple(final) if lstm else (final, None))
    lengths = torch.tensor(cfg["lengths"])
    B = len(cfg["lengths"])
    batch_axis = 0 if cfg["batch_first"] else 1
    rows = torch.tensor([b for b in range(B) if cfg["lengths"][b] > 0], dtype=torch.long)
    out = torch.zeros(t["x"].shape[:2] + (D * H,), dtype=torch.float64)
    h_n = t["h0"].clone()  # a row of length 0 keeps its initial state, every layer and direction
    c_n = t["c0"].clone() if lstm else None
    if len(rows):
        packed = pack_padded_sequence(t["x"].index_select(batch_axis, rows), lengths[rows],
                                      batch_first=cfg["batch_first"], enforce_sorted=False)
        state = ((t["h0"][:, rows], t["c0"][:, rows]) if lstm else t["h0"][:, rows])
        packed_out, final = torch.func.functional_call(module, params, (packed, state))
        padded, _ = pad_packed_sequence(packed_out, batch_first=cfg["batch_first"],
                                        total_length=T)
        where = (rows,) if cfg["batch_first"] else (torch.arange(T)[:, None], rows[None, :])
        out = out.index_put(where, padded)
        state_rows = (torch.arange(L * D)[:, None], rows[None, :])
        if lstm:
            h_n = h_n.index_put(state_rows, final[0])
            c_n = c_n.index_put(state_rows, final[1])
        else:
            h_n = h_n.index_put(state_rows, final)
    return out, h_n, c_n


def composed_forward(cfg, t):
    """output, h_n, c_n composed from one-layer, one-direction references."""
    cell, T, L, D = cfg["cell"], cfg["T"], cfg["num_layers"], directions(cfg)
    lstm = cell == "lstm"
    x, h0 = t["x"], t["h0"]
    c0 = t["c0"] if lstm else None
    if cfg["unbatched"]:
        x, h0 = x[:, None], h0[:, None]
        c0 = c0[:, None] if lstm else None
    elif cfg["batch_first"]:
        x = x.transpose(0, 1)
    B = x.shape[1]
    lengths = cfg["lengths"] if cfg["lengths"] is not None else (T,) * B
    # time index of the reverse direction: row b's valid prefix reversed
    # (t -> length - 1 - t); past the length the identity (those steps are masked)
    reverse = torch.tensor([[lengths[b] - 1 - step if step < lengths[b] else step
                             for b in range(B)] for step in range(T)], dtype=torch.long)
    batch = torch.arange(B)[None, :]
    layer_input, h_n, c_n = x, [], []
    for layer in range(L):
        outputs = []
        for d in range(D):
            name = suffix(layer, d)
            one = {kind: t[kind + name] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                   if kind + name in t}
            one["x"] = layer_input[reverse, batch] if d else layer_input
            one["h0"] = h0[layer * D + d]
            if lstm:
                one["c0"] = c0[layer * D + d]
            out, h_last, c_last = one_layer_forward(cell, one, lengths, cfg["bias"])
            outputs.append(out[reverse, batch] if d else out)
            h_n.append(h_last)
            c_n.append(c_last)
        layer_input = torch.cat(outputs, dim=-1)
    out, h_n = layer_input, torch.stack(h_n)
    c_n = torch.stack(c_n) if lstm else None
    if cfg["unbatched"]:
        out, h_n = out[:, 0], h_n[:, 0]
        c_n = c_n[:, 0] if lstm else None
    elif cfg["batch_first"]:
        out = out.transpose(0, 1)
    return out, h_n, c_n


def loss_and_outputs(cfg, arrays, forward, requires_grad):
    t = {k: torch.tensor(a, dtype=torch.float64,
                         requires_grad=requires_grad and not k.startswith("d_"))
         for k, a in arrays.items()}
    out, h_n, c_n = forward(cfg, t)
    loss = (out * t["d_output"]).sum() + (h_n * t["d_h_n"]).sum()
    if c_n is not None:
        loss = loss + (c_n * t["d_c_n"]).sum()
    return loss, t, out, h_n, c_n


def run_reference(cfg, arrays, forward):
    """(output, h_n, c_n, grads) of ``forward`` by float64 autograd."""
    loss, t, out, h_n, c_n = loss_and_outputs(cfg, arrays, forward, True)
    loss.backward()
    grads = {k: t[k].grad.numpy() for k in t if not k.startswith("d_")}
    return out, h_n, c_n, grads


def assert_close(name, got, want, tol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    scale = max(np.max(np.abs(want)), 1e-300) if want.size else 1.0
    err = np.max(np.abs(got - want)) / scale if want.size else 0.0
    assert err <= tol, f"{name}: composition differs from torch.nn by {err:.2e} (relative)"


def make_case(seed, cfg):
    arrays = draw_layer_case(seed, cfg)
    composed = run_reference(cfg, arrays, composed_forward)
    if cfg["cell"] in TORCH_NN_CELLS:
        out, h_n, c_n, grads = run_reference(cfg, arrays, torch_nn_forward)
        # the composition that stands in for torch.nn for rnn_sigmoid must
        # agree with torch.nn's stacked module on every other cell
        label = file_name(cfg)
        for name, want, got in zip(("output", "h_n", "c_n"), (out, h_n, c_n), composed[:3]):
            if want is not None:
                assert_close(f"{label} {name}", got.detach().numpy(), want.detach().numpy())
        for name in grads:
            assert_close(f"{label} grad_{name}", composed[3][name], grads[name])
    else:
        out, h_n, c_n, grads = composed
    forward = torch_nn_forward if cfg["cell"] in TORCH_NN_CELLS else composed_forward
    checked = ["x", "h0"] + (["c0"] if cfg["cell"] == "lstm" else []) + param_names(cfg)
    finite_difference_check(file_name(cfg), arrays, grads,
                            lambda a: loss_and_outputs(cfg, a, forward, False)[0].item(),
                            names=checked)
    extra = dict(num_layers=np.array(cfg["num_layers"]),
                 bidirectional=np.array(cfg["bidirectional"]),
                 batch_first=np.array(cfg["batch_first"]), unbatched=np.array(cfg["unbatched"]),
                 has_hx=np.array(cfg["has_hx"]))
    if cfg["lengths"] is not None:
        extra["lengths"] = np.array(cfg["lengths"], dtype=np.int64)
    return case_record(cfg["cell"], arrays, cfg["bias"], cfg["has_hx"], out, h_n, c_n, grads,
                       **extra)


def informative_case(seed, cfg, attempts=20):
    """make_case at the first of seed, seed + 7919, ... whose results and
    gradients are none of them all zero: with ReLU a small draw can leave a
    whole layer dead, and an all-zero expected gradient cannot catch an error."""
    for attempt in range(attempts):
        record = make_case(seed + 7919 * attempt, cfg)
        dead = [k for k, a in record.items()
                if k.startswith(("grad_", "output", "h_n", "c_n")) and not np.any(a)]
        if not dead:
            return record
    raise RuntimeError(f"{file_name(cfg)}: every draw left {dead} all zero")


def main() -> None:
    torch.manual_seed(0)
    HERE.mkdir(exist_ok=True)
    written = 0
    for c, cell in enumerate(GATES):
        for s, config in enumerate(CONFIGS):
            cfg = full_config(cell, config)
            written += save_case(HERE / file_name(cfg),
                                 informative_case(20000 + 1000 * c + 20 * s, cfg))
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
