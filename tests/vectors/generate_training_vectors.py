"""Write the PyTorch reference vectors for the sequence trainers (docs/TRAINING.md).

    python tests/vectors/generate_training_vectors.py [case ...] [--out DIR]
                                                       (needs torch; tests do not)

Each case trains a torch float64 model - torch.nn.RNN / LSTM / GRU (the
sigmoid RNN, which torch.nn lacks, written in torch ops) plus a
torch.nn.Linear head - over one short sequence the way TRAINING.md defines,
using torch's own machinery wherever it has one:

* TBPTT(k1, k2) and windowed training: for every update n the window
  [s_n, t_n) is run from the carried state *detached* (``.detach()``), the
  loss is torch.nn.functional.cross_entropy / binary_cross_entropy_with_logits
  / mse_loss of the last t_n - t_{n-1} outputs, ``loss.backward()``, then
  torch.nn.utils.clip_grad_value_ / clip_grad_norm_, then the optimizer's
  ``step()`` (torch.optim.SGD, RMSprop, Adam; min-char-rnn's Adagrad, which
  torch.optim does not have, written out). The window's forward is run in two
  pieces, split at s_{n+1}, so the state carried to the next window is
  read off it rather than recomputed.
* Per-output depth k: every output t's loss is backpropagated from its own
  detached state at max(0, t-k) (the O(T k) brute force wildml's nested
  loop computes), the gradients accumulate in ``.grad``, then one update.
* Index input is a one-hot float input to the torch module (the product a
  lookup replaces), so the files also check the lookup and the scatter-add.

Stored per case (one small .npz in tests/vectors/training/): the spec, the
initial flat theta in training.Layout order, inputs, targets, h0 (c0), and
the expected per-window losses, final theta, final state and returned
gradient, and whether clipping changed any window's gradient (the cases are
sized so that every clip they name does). Every draw is seeded: re-running reproduces the same arrays.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as tF

HERE = Path(__file__).resolve().parent / "training"
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3}

# name: (cell, T, B, I, H, O, index, head, reduction, many_to_one, scheme, clip, optimizer[, extra])
#   scheme: ("tbptt", k1, k2) or ("depth", k); clip: (kind, value); optimizer: (kind, {...}) or None
#   extra (later cases only; absent = the defaults, so the earlier files' specs stay as
#   they were written): {"bias": True | "ih" | False, "head_bias": bool,
#   "resets": fraction of (t, b) state resets}
CASES = {
    "minchar_rnn_tanh_windowed_adagrad": (
        "rnn_tanh", 17, 2, 7, 6, 7, True, "softmax_ce", "sum", False, ("tbptt", 5, 5),
        ("value", 1.0), ("adagrad", {"lr": 0.1, "eps": 1e-8})),
    "lstm_tbptt_3_7_mse_mean_adam_clipnorm": (
        "lstm", 16, 3, 4, 5, 3, False, "mse", "mean", False, ("tbptt", 3, 7),
        ("norm", 0.5), ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
    "gru_tbptt_4_6_softmax_mean_nesterov": (
        "gru", 15, 2, 6, 5, 6, True, "softmax_ce", "mean", False, ("tbptt", 4, 6),
        ("none", 0.0), ("sgd", {"lr": 0.5, "momentum": 0.9, "nesterov": True})),
    "rnn_relu_windowed_bce_sum_rmsprop": (
        "rnn_relu", 12, 2, 3, 4, 3, False, "sigmoid_bce", "sum", False, ("tbptt", 4, 4),
        ("value", 0.3), ("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8})),
    "rnn_sigmoid_many_to_one_mse_sgd": (
        "rnn_sigmoid", 10, 3, 3, 4, 2, False, "mse", "sum", True, ("tbptt", 3, 3),
        ("none", 0.0), ("sgd", {"lr": 0.1, "momentum": 0.0, "nesterov": False})),
    "lstm_many_to_one_softmax_tbptt_2_5_momentum": (
        "lstm", 9, 2, 5, 4, 5, True, "softmax_ce", "sum", True, ("tbptt", 2, 5),
        ("norm", 1.0), ("sgd", {"lr": 0.1, "momentum": 0.5, "nesterov": False})),
    "gru_depth_2_softmax_grad": (
        "gru", 9, 2, 5, 4, 5, True, "softmax_ce", "sum", False, ("depth", 2),
        ("none", 0.0), None),
    "lstm_depth_3_mse_mean_adam": (
        "lstm", 8, 2, 3, 4, 2, False, "mse", "mean", False, ("depth", 3),
        ("none", 0.0), ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
    "wildml_rnn_tanh_depth_4_grad": (
        "rnn_tanh", 12, 1, 8, 6, 8, True, "softmax_ce", "sum", False, ("depth", 4),
        ("none", 0.0), None),
    "rnn_tanh_tbptt_grad_sum_over_windows": (
        "rnn_tanh", 11, 2, 4, 3, 4, True, "softmax_ce", "sum", False, ("tbptt", 4, 4),
        ("value", 1.0), None),
    # issue 12: the sigmoid output with squared error (trask's binary adder: a
    # sigmoid RNN without biases, 0.5 (y - sigmoid(z))^2, plain SGD) ...
    "trask_rnn_sigmoid_sigmoid_mse_sgd_nobias": (
        "rnn_sigmoid", 8, 3, 2, 6, 1, False, "sigmoid_mse", "sum", False, ("tbptt", 8, 8),
        ("none", 0.0), ("sgd", {"lr": 0.5, "momentum": 0.0, "nesterov": False}),
        {"bias": False, "head_bias": False}),
    "gru_tbptt_3_5_sigmoid_mse_mean_adam_clipnorm": (
        "gru", 13, 2, 3, 4, 3, False, "sigmoid_mse", "mean", False, ("tbptt", 3, 5),
        ("norm", 0.05), ("adam", {"lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
    "lstm_depth_2_sigmoid_mse_grad": (
        "lstm", 7, 2, 3, 4, 2, False, "sigmoid_mse", "sum", False, ("depth", 2),
        ("none", 0.0), None),
    # ... one recurrent bias (bias_ih alone: Keras, min-char-rnn) ...
    "minchar_rnn_tanh_one_bias_windowed_adagrad": (
        "rnn_tanh", 17, 2, 7, 6, 7, True, "softmax_ce", "sum", False, ("tbptt", 5, 5),
        ("value", 1.0), ("adagrad", {"lr": 0.1, "eps": 1e-8}), {"bias": "ih"}),
    "gru_one_bias_tbptt_2_4_mse_rmsprop": (
        "gru", 11, 2, 3, 4, 2, False, "mse", "sum", False, ("tbptt", 2, 4),
        ("value", 0.5), ("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}), {"bias": "ih"}),
    "lstm_one_bias_depth_2_bce_grad": (
        "lstm", 8, 2, 3, 4, 2, False, "sigmoid_bce", "mean", False, ("depth", 2),
        ("none", 0.0), None, {"bias": "ih"}),
    # ... and per-row state resets (document boundaries inside a stream:
    # the state entering a reset step is zero and no gradient flows past it)
    "lstm_resets_tbptt_3_5_mse_adam": (
        "lstm", 14, 3, 3, 4, 2, False, "mse", "sum", False, ("tbptt", 3, 5),
        ("none", 0.0), ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
        {"resets": 0.2}),
    "gru_resets_depth_2_softmax_grad": (
        "gru", 10, 3, 5, 4, 5, True, "softmax_ce", "sum", False, ("depth", 2),
        ("none", 0.0), None, {"resets": 0.25}),
    "minchar_rnn_tanh_one_bias_resets_windowed_adagrad": (
        "rnn_tanh", 17, 2, 7, 6, 7, True, "softmax_ce", "sum", False, ("tbptt", 5, 5),
        ("value", 1.0), ("adagrad", {"lr": 0.1, "eps": 1e-8}), {"bias": "ih", "resets": 0.15}),
    "rnn_relu_resets_many_to_one_sigmoid_mse_sgd": (
        "rnn_relu", 9, 4, 3, 5, 2, False, "sigmoid_mse", "mean", True, ("tbptt", 3, 4),
        ("none", 0.0), ("sgd", {"lr": 0.5, "momentum": 0.9, "nesterov": False}), {"resets": 0.3}),
    "lstm_resets_depth_3_bce_mean_rmsprop": (
        "lstm", 9, 3, 3, 4, 2, False, "sigmoid_bce", "mean", False, ("depth", 3),
        ("norm", 0.01), ("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}), {"resets": 0.25}),
}


class Model(torch.nn.Module):
    def __init__(self, cell, I, H, O, bias=True, head_bias=True):
        super().__init__()
        self.cell, self.H, self.bias = cell, H, bias
        kw = dict(batch_first=False, dtype=torch.float64, bias=bias is not False)
        if cell == "lstm":
            self.rnn = torch.nn.LSTM(I, H, **kw)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(I, H, **kw)
        elif cell == "rnn_sigmoid":  # torch.nn has no sigmoid RNN: the same parameters, by hand
            k = 1 / np.sqrt(H)
            self.rnn = torch.nn.Module()
            for name, shape in (("weight_ih_l0", (H, I)), ("weight_hh_l0", (H, H)),
                                ("bias_ih_l0", (H,)), ("bias_hh_l0", (H,))):
                self.rnn.register_parameter(name, torch.nn.Parameter(
                    torch.empty(shape, dtype=torch.float64).uniform_(-k, k)))
                if bias is False and name.startswith("bias"):
                    self.rnn.get_parameter(name).requires_grad_(False).data.zero_()
        else:
            self.rnn = torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw)
        if bias == "ih":  # one recurrent bias: torch's bias_hh held at zero, never trained
            self.rnn.bias_hh_l0.requires_grad_(False)
            self.rnn.bias_hh_l0.data.zero_()
        self.head = torch.nn.Linear(H, O, bias=head_bias, dtype=torch.float64)

    def flat_parameters(self):
        r = self.rnn
        params = [r.weight_ih_l0, r.weight_hh_l0]
        if self.bias is not False:
            params.append(r.bias_ih_l0)
        if self.bias is True:
            params.append(r.bias_hh_l0)
        params.append(self.head.weight)
        if self.head.bias is not None:
            params.append(self.head.bias)
        return params  # training.Layout's order

    def run(self, x, state, resets=None):
        """Outputs (L, B, H) and final state of the layer over x from state;
        with resets (L, B) the state entering step t of row b is multiplied by
        1 - resets[t, b] (a document boundary: zero state, no gradient past it),
        so the layer runs one step at a time."""
        if resets is not None:
            outs = []
            for t in range(x.shape[0]):
                keep = (1 - resets[t].to(torch.float64))[:, None]
                state = tuple(s * keep for s in state) if isinstance(state, tuple) else state * keep
                out, state = self.run(x[t:t + 1], state)
                outs.append(out)
            return torch.cat(outs), state
        if self.cell == "rnn_sigmoid":
            r, h, outs = self.rnn, state, []
            for x_t in x:  # (biases held at zero when absent)
                h = torch.sigmoid(x_t @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
                outs.append(h)
            return torch.stack(outs), h
        if self.cell == "lstm":
            out, (h, c) = self.rnn(x, (state[0][None], state[1][None]))
            return out, (h[0], c[0])
        out, h = self.rnn(x, state[None])
        return out, h[0]


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def head_loss(head, reduction, z, y):
    """The reduced loss of logits z (..., O) against targets y, torch's own functions."""
    if head == "softmax_ce":
        return tF.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction=reduction)
    if head == "sigmoid_bce":
        return tF.binary_cross_entropy_with_logits(z, y, reduction=reduction)
    if head == "sigmoid_mse":  # 0.5 (y - sigmoid(z))^2, summed or averaged over elements
        return 0.5 * tF.mse_loss(torch.sigmoid(z), y, reduction=reduction)
    return tF.mse_loss(z, y, reduction=reduction)


class MinCharAdagrad:
    """min-char-rnn's Adagrad (torch.optim.Adagrad puts eps outside the root)."""

    def __init__(self, params, lr, eps):
        self.params, self.lr, self.eps = list(params), lr, eps
        self.mem = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, m in zip(self.params, self.mem):
            m += p.grad * p.grad
            p -= self.lr * p.grad / torch.sqrt(m + self.eps)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def make_optimizer(params, optimizer):
    kind, hp = optimizer
    if kind == "adagrad":
        return MinCharAdagrad(params, hp["lr"], hp["eps"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], nesterov=hp["nesterov"])
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"])
    return torch.optim.Adam(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])


def clip_(params, clip):
    """Clip the gradients in place; True if the clip changed them."""
    kind, value = clip
    raw = torch.cat([p.grad.reshape(-1) for p in params])
    if kind == "value":
        torch.nn.utils.clip_grad_value_(params, value)
    elif kind == "norm":
        torch.nn.utils.clip_grad_norm_(params, value)
    return not torch.equal(raw, torch.cat([p.grad.reshape(-1) for p in params]))


def flat_grad(params):
    return torch.cat([p.grad.reshape(-1) for p in params]).detach().numpy().copy()


def train_tbptt(model, spec, x, y, state0, resets=None):
    cell, T, k1, k2 = spec["cell"], x.shape[0], spec["k1"], spec["k2"]
    params = model.flat_parameters()
    opt = None if spec["optimizer"] is None else make_optimizer(params, spec["optimizer"])
    grad_sum = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    carried, losses, last_grad, final = state0, [], None, None
    clipped = False
    t_prev = 0
    while t_prev < T:
        t = min(t_prev + k1, T)
        s = max(0, t - k2)
        s_next = max(0, min(t + k1, T) - k2)
        split = min(max(s_next - s, 0), t - s)
        start = detach(carried)
        pieces, state = [], start
        for a, b in ((s, s + split), (s + split, t)):
            if b > a:
                out, state = model.run(x[a:b], state, None if resets is None else resets[a:b])
                pieces.append(out)
                if a == s and b == s + split:
                    at_split = state
        out = torch.cat(pieces)
        loss_value = 0.0
        if not spec["many_to_one"] or t == T:
            if spec["many_to_one"]:
                z, yy = model.head(out[-1]), y
            else:
                z, yy = model.head(out[t_prev - s:]), y[t_prev:t]
            loss = head_loss(spec["head"], spec["reduction"], z, yy)
            for p in params:
                p.grad = None
            loss.backward()
            clipped |= clip_(params, spec["clip"])
            last_grad = flat_grad(params)
            if opt is None:
                grad_sum += torch.from_numpy(last_grad)
            else:
                opt.step()
            loss_value = loss.item()
        losses.append(loss_value)
        if t == T:
            final = detach(state)
        elif s_next > s:
            carried = at_split
        t_prev = t
    grad = grad_sum.numpy() if opt is None else last_grad
    return np.array(losses), final, grad, clipped


def train_depth(model, spec, x, y, state0, resets=None):
    """Every output from its own detached state k steps back; one update."""
    piece = (lambda a, b: None) if resets is None else (lambda a, b: resets[a:b])  # noqa: E731
    T, K = x.shape[0], spec["depth"]
    params = model.flat_parameters()
    with torch.no_grad():  # the states the forward passes through, s_0 = state0
        states, state = [state0], state0
        for t in range(T):
            _, state = model.run(x[t:t + 1], state, piece(t, t + 1))
            states.append(state)
    steps = [T - 1] if spec["many_to_one"] else list(range(T))
    terms = len(steps) * x.shape[1] * (1 if spec["head"] == "softmax_ce" else model.head.out_features)
    scale = 1.0 / terms if spec["reduction"] == "mean" else 1.0
    for p in params:
        p.grad = None
    total = 0.0
    for t in steps:
        s = max(0, t - K)
        out, _ = model.run(x[s:t + 1], detach(states[s]), piece(s, t + 1))
        z = model.head(out[-1])
        yy = y if spec["many_to_one"] else y[t]
        loss = head_loss(spec["head"], "sum", z, yy) * scale
        loss.backward()
        total += loss.item()
    clipped = clip_(params, spec["clip"])
    grad = flat_grad(params)
    if spec["optimizer"] is not None:
        make_optimizer(params, spec["optimizer"]).step()
    return np.array([total]), detach(states[T]), grad, clipped


def make_case(seed, name, case):
    (cell, T, B, I, H, O, index, head, reduction, m2o, scheme, clip, optimizer), extra = \
        case[:13], (case[13] if len(case) > 13 else {})
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Model(cell, I, H, O, extra.get("bias", True), extra.get("head_bias", True))
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.flat_parameters()]).numpy().copy()
    inputs = rng.integers(0, I, (T, B)) if index else rng.standard_normal((T, B, I))
    if head == "softmax_ce":
        targets = rng.integers(0, O, (B,) if m2o else (T, B))
    elif head in ("sigmoid_bce", "sigmoid_mse"):
        targets = rng.uniform(0, 1, (B, O) if m2o else (T, B, O))
    else:
        targets = rng.standard_normal((B, O) if m2o else (T, B, O))
    h0 = 0.5 * rng.standard_normal((B, H))
    c0 = 0.5 * rng.standard_normal((B, H)) if cell == "lstm" else None
    spec = dict(cell=cell, input_size=I, hidden_size=H, output_size=O, index_input=index,
                head=head, reduction=reduction, many_to_one=m2o, clip=list(clip),
                optimizer=None if optimizer is None else [optimizer[0], optimizer[1]],
                k1=scheme[1] if scheme[0] == "tbptt" else None,
                k2=scheme[2] if scheme[0] == "tbptt" else None,
                depth=scheme[1] if scheme[0] == "depth" else None)
    resets = None
    if "resets" in extra:  # drawn after everything else: the earlier draws stay as they were
        resets = rng.uniform(0, 1, (T, B)) < extra["resets"]
    spec.update((k, extra[k]) for k in ("bias", "head_bias") if k in extra)

    x = tF.one_hot(torch.from_numpy(inputs), I).double() if index else torch.from_numpy(inputs)
    y = torch.from_numpy(targets)
    state0 = (torch.from_numpy(h0), torch.from_numpy(c0)) if cell == "lstm" else torch.from_numpy(h0)
    train = train_depth if scheme[0] == "depth" else train_tbptt
    losses, final, grad, clipped = train(model, spec, x, y, state0,
                                         None if resets is None else torch.from_numpy(resets))
    theta = torch.cat([p.detach().reshape(-1) for p in model.flat_parameters()]).numpy()

    record = dict(spec=np.array(json.dumps(spec)), theta0=theta0, inputs=inputs, targets=targets,
                  h0=h0, losses=losses, theta=theta, grad=grad,
                  clipped=np.array(clipped))
    if resets is not None:
        record["resets"] = resets
    if cell == "lstm":
        record.update(c0=c0, h_n=final[0].numpy(), c_n=final[1].numpy())
    else:
        record["h_n"] = final.numpy()
    return record


def main(argv=None) -> None:
    """Write every case, or only those named on the command line (a case's
    seed is its position in CASES either way); --out DIR writes elsewhere
    (to compare a regeneration with the stored files)."""
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="cases to write (default: all)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {sorted(unknown)}")
    args.out.mkdir(exist_ok=True)
    written = 0
    for i, (name, case) in enumerate(CASES.items()):
        if args.names and name not in args.names:
            continue
        record = make_case(100 + i, name, case)
        path = args.out / f"{name}.npz"
        np.savez_compressed(path, **record)
        written += path.stat().st_size
        print(f"wrote {path}  losses {np.round(record['losses'], 4).tolist()}")
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
