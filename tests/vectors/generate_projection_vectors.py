"""Write the reference vectors of the LSTM with a projection (proj_size).

    python tests/vectors/generate_projection_vectors.py     (needs torch; tests do not)

For a handful of shapes (T, B, I, H, P) it builds torch.nn.LSTM(I, H,
proj_size=P) in float64, sets its parameters by name (weight_ih_l0 (4H, I),
weight_hh_l0 (4H, P), weight_hr_l0 (P, H), the biases), runs it forward from
(h0 (B, P), c0 (B, H)), backpropagates the scalar

    L = <output, d_output> + <h_n, d_h_n> + <c_n, d_c_n>

with autograd and stores inputs, outputs and every gradient in one small
compressed .npz per case under projection/. Before writing, each case is
checked against central finite differences in float64 (weight_hr, weight_hh,
x, h0, c0), so a broken generator cannot produce files. Seeded: re-running
reproduces the same arrays. ``layers_*.npz``: whole torch.nn.LSTM(...,
proj_size=P) modules (stacked, bidirectional, batch_first, lengths, no
biases, no hx), every parameter under torch's name (weight_hr_l1_reverse
...), with the flags num_layers, bidirectional, batch_first, has_bias,
has_hx, proj_size, hidden_size; checked by finite differences on x, h0, c0
and every weight_hr. Cases with per-row lengths (``_lengths``) run
torch's packed path (pack_padded_sequence(..., enforce_sorted=False); a row
of length 0 is assembled in torch ops: output 0, h_n = h0, c_n = c0) and
store ``lengths`` (int64 (B,)). Keys: the inputs (h0 / c0 absent when the case
has no initial state), "output", "h_n", "c_n", "grad_<name>" for x, the
weights, the biases (when the case has them), h0 and c0, and the flags
"has_bias", "has_h0".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent / "projection"

# (T, B, I, H, P, has_bias, has_h0): P = 1, P = H - 1, T = 1, B = 1 included
SHAPES = [
    (1, 1, 1, 2, 1, True, True),
    (1, 3, 2, 5, 3, True, False),
    (2, 1, 3, 4, 2, False, True),
    (5, 3, 4, 7, 4, True, True),
    (9, 2, 5, 3, 2, True, False),
    (6, 4, 3, 8, 5, False, False),
]

# per-row lengths (torch's packed path, pack_padded_sequence(...,
# enforce_sorted=False)): unsorted, ties, rows of length 0 and T
LENGTH_CASES = [
    ((5, 4, 3, 6, 2, True, True), (3, 5, 0, 3)),
    ((7, 5, 2, 5, 3, True, False), (1, 7, 4, 7, 2)),
    ((4, 3, 4, 4, 1, False, True), (4, 0, 2)),
]

PARAMETERS = ("weight_ih", "weight_hh", "weight_hr", "bias_ih", "bias_hh")

# whole layers (layers_*.npz): torch.nn.LSTM(proj_size=P) stacked,
# bidirectional, batch_first, with lengths, without biases or hx
LAYER_CONFIGS = [
    dict(T=5, B=3, I=3, H=4, P=2, num_layers=2),
    dict(T=4, B=2, I=2, H=3, P=1, num_layers=3, has_hx=False),
    dict(T=5, B=3, I=2, H=5, P=3, bidirectional=True, bias=False),
    dict(T=4, B=3, I=3, H=4, P=2, num_layers=2, bidirectional=True, batch_first=True),
    dict(T=6, B=4, I=2, H=4, P=3, num_layers=2, bidirectional=True, lengths=(3, 6, 0, 5)),
    dict(T=5, B=3, I=3, H=3, P=2, batch_first=True, lengths=(5, 2, 4), has_hx=False),
]


def file_name(T, B, I, H, P, has_bias, has_h0, lengths=None):
    return (f"lstm_T{T}_B{B}_I{I}_H{H}_P{P}" + ("" if has_bias else "_nobias")
            + ("" if has_h0 else "_noh0") + ("" if lengths is None else "_lengths") + ".npz")


def draw_case(seed, T, B, I, H, P, has_bias, has_h0):
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)
    a = {"x": rng.standard_normal((T, B, I)),
         "weight_ih": rng.uniform(-k, k, (4 * H, I)),
         "weight_hh": rng.uniform(-k, k, (4 * H, P)),
         "weight_hr": rng.uniform(-k, k, (P, H))}
    if has_bias:
        a["bias_ih"] = rng.uniform(-k, k, 4 * H)
        a["bias_hh"] = rng.uniform(-k, k, 4 * H)
    a["h0"] = rng.normal(0, 0.5, (B, P)) if has_h0 else np.zeros((B, P))
    a["c0"] = rng.normal(0, 0.5, (B, H)) if has_h0 else np.zeros((B, H))
    a["d_output"] = rng.standard_normal((T, B, P))
    a["d_h_n"] = rng.standard_normal((B, P))
    a["d_c_n"] = rng.standard_normal((B, H))
    return a


def torch_packed(module, params, x, h0, c0, lengths):
    """torch's packed path over the rows of nonzero length; a row of length
    0 is assembled in torch ops (output 0, its state h0 / c0), since
    pack_padded_sequence refuses it."""
    T, B = x.shape[0], x.shape[1]
    keep = [b for b in range(B) if lengths[b] > 0]
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x[:, keep], torch.tensor([lengths[b] for b in keep]), enforce_sorted=False)
    out_p, (h_p, c_p) = torch.func.functional_call(
        module, params, (packed, (h0[keep][None], c0[keep][None])))
    out_k, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=T)
    out = torch.zeros((T, B, out_k.shape[2]), dtype=x.dtype)
    out = out.index_copy(1, torch.tensor(keep), out_k)
    h_n = h0.index_copy(0, torch.tensor(keep), h_p[0])
    c_n = c0.index_copy(0, torch.tensor(keep), c_p[0])
    return out, h_n, c_n


def loss_and_outputs(arrays, has_bias, requires_grad, lengths=None):
    t = {k: torch.tensor(v, dtype=torch.float64,
                         requires_grad=requires_grad and not k.startswith("d_"))
         for k, v in arrays.items()}
    I, H = t["weight_ih"].shape[1], t["weight_hr"].shape[1]
    P = t["weight_hr"].shape[0]
    module = torch.nn.LSTM(I, H, bias=has_bias, proj_size=P, dtype=torch.float64)
    params = {f"{n}_l0": t[n] for n in PARAMETERS if n in t}
    if lengths is None:
        out, (h_n, c_n) = torch.func.functional_call(module, params,
                                                     (t["x"], (t["h0"][None], t["c0"][None])))
        h_n, c_n = h_n[0], c_n[0]
    else:
        out, h_n, c_n = torch_packed(module, params, t["x"], t["h0"], t["c0"], lengths)
    loss = (out * t["d_output"]).sum() + (h_n * t["d_h_n"]).sum() + (c_n * t["d_c_n"]).sum()
    return loss, t, out, h_n, c_n


def finite_difference_check(arrays, grads, has_bias, lengths=None):
    eps = 1e-6
    rng = np.random.default_rng(0)
    for name in ("weight_hr", "weight_hh", "x", "h0", "c0"):
        for _ in range(4):
            idx = tuple(int(rng.integers(n)) for n in arrays[name].shape)
            plus = {k: v.copy() for k, v in arrays.items()}
            minus = {k: v.copy() for k, v in arrays.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            with torch.no_grad():
                up = loss_and_outputs(plus, has_bias, False, lengths)[0].item()
                down = loss_and_outputs(minus, has_bias, False, lengths)[0].item()
                numeric = (up - down) / (2 * eps)
            analytic = grads[name][idx]
            scale = max(1.0, np.max(np.abs(grads[name])))
            assert abs(numeric - analytic) <= 1e-6 * scale, (name, idx, numeric, analytic)


def make_case(seed, T, B, I, H, P, has_bias, has_h0, lengths=None):
    arrays = draw_case(seed, T, B, I, H, P, has_bias, has_h0)
    loss, t, out, h_n, c_n = loss_and_outputs(arrays, has_bias, True, lengths)
    loss.backward()
    grads = {k: t[k].grad.numpy() for k in t if not k.startswith("d_")}
    finite_difference_check(arrays, grads, has_bias, lengths)
    record = {"has_bias": np.array(has_bias), "has_h0": np.array(has_h0)}
    if lengths is not None:
        record["lengths"] = np.array(lengths, np.int64)
    for k, v in arrays.items():
        if k in ("h0", "c0") and not has_h0:
            continue
        record[k] = v
    record.update(output=out.detach().numpy(), h_n=h_n.detach().numpy(),
                  c_n=c_n.detach().numpy())
    for k, g in grads.items():
        record[f"grad_{k}"] = g
    return record


def layer_file_name(cfg):
    return ("layers_" + f"L{cfg.get('num_layers', 1)}_T{cfg['T']}_B{cfg['B']}_H{cfg['H']}"
            f"_P{cfg['P']}" + ("_bi" if cfg.get("bidirectional") else "")
            + ("_bf" if cfg.get("batch_first") else "") + ("" if cfg.get("bias", True) else
                                                           "_nobias")
            + ("" if cfg.get("has_hx", True) else "_nohx")
            + ("_lengths" if "lengths" in cfg else "") + ".npz")


def layer_module(cfg):
    return torch.nn.LSTM(cfg["I"], cfg["H"], num_layers=cfg.get("num_layers", 1),
                         bias=cfg.get("bias", True), batch_first=cfg.get("batch_first", False),
                         bidirectional=cfg.get("bidirectional", False), proj_size=cfg["P"],
                         dtype=torch.float64)


def draw_layer_case(seed, cfg):
    rng = np.random.default_rng(seed)
    T, B, H, P = cfg["T"], cfg["B"], cfg["H"], cfg["P"]
    LD = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    D = 2 if cfg.get("bidirectional") else 1
    k = 1.0 / np.sqrt(H)
    a = {name: rng.uniform(-k, k, tuple(p.shape))
         for name, p in layer_module(cfg).named_parameters()}
    bf = cfg.get("batch_first", False)
    a["x"] = rng.standard_normal((B, T, cfg["I"]) if bf else (T, B, cfg["I"]))
    has_hx = cfg.get("has_hx", True)
    a["h0"] = rng.normal(0, 0.5, (LD, B, P)) if has_hx else np.zeros((LD, B, P))
    a["c0"] = rng.normal(0, 0.5, (LD, B, H)) if has_hx else np.zeros((LD, B, H))
    a["d_output"] = rng.standard_normal((B, T, D * P) if bf else (T, B, D * P))
    a["d_h_n"] = rng.standard_normal((LD, B, P))
    a["d_c_n"] = rng.standard_normal((LD, B, H))
    return a


def layer_loss(cfg, arrays, requires_grad):
    t = {k: torch.tensor(v, dtype=torch.float64,
                         requires_grad=requires_grad and not k.startswith("d_"))
         for k, v in arrays.items()}
    module = layer_module(cfg)
    params = {n: t[n] for n, _ in module.named_parameters()}
    lengths = cfg.get("lengths")
    bf = cfg.get("batch_first", False)
    if lengths is None:
        out, (h_n, c_n) = torch.func.functional_call(module, params, (t["x"], (t["h0"], t["c0"])))
    else:  # torch's packed path over the rows of nonzero length (see torch_packed)
        B = cfg["B"]
        keep = torch.tensor([b for b in range(B) if lengths[b] > 0])
        x_keep = t["x"][keep] if bf else t["x"][:, keep]
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x_keep, torch.tensor([lengths[b] for b in keep.tolist()]), batch_first=bf,
            enforce_sorted=False)
        out_p, (h_p, c_p) = torch.func.functional_call(
            module, params, (packed, (t["h0"][:, keep], t["c0"][:, keep])))
        out_k, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=bf,
                                                          total_length=cfg["T"])
        shape = list(out_k.shape)
        shape[0 if bf else 1] = B
        out = torch.zeros(shape, dtype=torch.float64).index_copy(0 if bf else 1, keep, out_k)
        h_n = t["h0"].index_copy(1, keep, h_p)
        c_n = t["c0"].index_copy(1, keep, c_p)
    loss = (out * t["d_output"]).sum() + (h_n * t["d_h_n"]).sum() + (c_n * t["d_c_n"]).sum()
    return loss, t, out, h_n, c_n


def make_layer_case(seed, cfg):
    arrays = draw_layer_case(seed, cfg)
    loss, t, out, h_n, c_n = layer_loss(cfg, arrays, True)
    loss.backward()
    grads = {k: t[k].grad.numpy() for k in t if not k.startswith("d_")}
    eps, rng = 1e-6, np.random.default_rng(0)
    for name in [n for n in arrays if n.startswith("weight_hr")] + ["x", "h0", "c0"]:
        for _ in range(3):
            idx = tuple(int(rng.integers(n)) for n in arrays[name].shape)
            plus = {k: v.copy() for k, v in arrays.items()}
            minus = {k: v.copy() for k, v in arrays.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            with torch.no_grad():
                numeric = (layer_loss(cfg, plus, False)[0].item()
                           - layer_loss(cfg, minus, False)[0].item()) / (2 * eps)
            scale = max(1.0, np.max(np.abs(grads[name])))
            assert abs(numeric - grads[name][idx]) <= 1e-6 * scale, (cfg, name, idx)
    record = {"num_layers": np.array(cfg.get("num_layers", 1)),
              "bidirectional": np.array(cfg.get("bidirectional", False)),
              "batch_first": np.array(cfg.get("batch_first", False)),
              "has_bias": np.array(cfg.get("bias", True)),
              "has_hx": np.array(cfg.get("has_hx", True)), "proj_size": np.array(cfg["P"]),
              "hidden_size": np.array(cfg["H"])}
    if "lengths" in cfg:
        record["lengths"] = np.array(cfg["lengths"], np.int64)
    for k, v in arrays.items():
        if k in ("h0", "c0") and not cfg.get("has_hx", True):
            continue
        record[k] = v
    record.update(output=out.detach().numpy(), h_n=h_n.detach().numpy(),
                  c_n=c_n.detach().numpy())
    for k, g in grads.items():
        record[f"grad_{k}"] = g
    return record


def main():
    HERE.mkdir(exist_ok=True)
    for seed, shape in enumerate(SHAPES):
        np.savez_compressed(HERE / file_name(*shape), **make_case(1300 + seed, *shape))
        print("wrote", file_name(*shape))
    for seed, (shape, lengths) in enumerate(LENGTH_CASES):
        name = file_name(*shape, lengths=lengths)
        np.savez_compressed(HERE / name, **make_case(1400 + seed, *shape, lengths=lengths))
        print("wrote", name)
    for seed, cfg in enumerate(LAYER_CONFIGS):
        name = layer_file_name(cfg)
        np.savez_compressed(HERE / name, **make_layer_case(1500 + seed, cfg))
        print("wrote", name)


if __name__ == "__main__":
    main()
