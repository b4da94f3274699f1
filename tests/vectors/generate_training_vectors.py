"""Write the PyTorch reference vectors for the sequence trainers (docs/TRAINING.md).

    python tests/vectors/generate_training_vectors.py    (needs torch; tests do not)

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

# name: (cell, T, B, I, H, O, index, head, reduction, many_to_one, scheme, clip, optimizer)
#   scheme: ("tbptt", k1, k2) or ("depth", k); clip: (kind, value); optimizer: (kind, {...}) or None
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
}


class Model(torch.nn.Module):
    def __init__(self, cell, I, H, O):
        super().__init__()
        self.cell, self.H = cell, H
        kw = dict(batch_first=False, dtype=torch.float64)
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
        else:
            self.rnn = torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw)
        self.head = torch.nn.Linear(H, O, dtype=torch.float64)

    def flat_parameters(self):
        r = self.rnn
        return [r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0,
                self.head.weight, self.head.bias]  # training.Layout's order

    def run(self, x, state):
        """Outputs (L, B, H) and final state of the layer over x from state."""
        if self.cell == "rnn_sigmoid":
            r, h, outs = self.rnn, state, []
            for x_t in x:
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


def train_tbptt(model, spec, x, y, state0):
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
                out, state = model.run(x[a:b], state)
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


def train_depth(model, spec, x, y, state0):
    """Every output from its own detached state k steps back; one update."""
    T, K = x.shape[0], spec["depth"]
    params = model.flat_parameters()
    with torch.no_grad():  # the states the forward passes through, s_0 = state0
        states, state = [state0], state0
        for t in range(T):
            _, state = model.run(x[t:t + 1], state)
            states.append(state)
    steps = [T - 1] if spec["many_to_one"] else list(range(T))
    terms = len(steps) * x.shape[1] * (1 if spec["head"] == "softmax_ce" else model.head.out_features)
    scale = 1.0 / terms if spec["reduction"] == "mean" else 1.0
    for p in params:
        p.grad = None
    total = 0.0
    for t in steps:
        s = max(0, t - K)
        out, _ = model.run(x[s:t + 1], detach(states[s]))
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
    (cell, T, B, I, H, O, index, head, reduction, m2o, scheme, clip, optimizer) = case
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Model(cell, I, H, O)
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.flat_parameters()]).numpy().copy()
    inputs = rng.integers(0, I, (T, B)) if index else rng.standard_normal((T, B, I))
    if head == "softmax_ce":
        targets = rng.integers(0, O, (B,) if m2o else (T, B))
    elif head == "sigmoid_bce":
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

    x = tF.one_hot(torch.from_numpy(inputs), I).double() if index else torch.from_numpy(inputs)
    y = torch.from_numpy(targets)
    state0 = (torch.from_numpy(h0), torch.from_numpy(c0)) if cell == "lstm" else torch.from_numpy(h0)
    train = train_depth if scheme[0] == "depth" else train_tbptt
    losses, final, grad, clipped = train(model, spec, x, y, state0)
    theta = torch.cat([p.detach().reshape(-1) for p in model.flat_parameters()]).numpy()

    record = dict(spec=np.array(json.dumps(spec)), theta0=theta0, inputs=inputs, targets=targets,
                  h0=h0, losses=losses, theta=theta, grad=grad,
                  clipped=np.array(clipped))
    if cell == "lstm":
        record.update(c0=c0, h_n=final[0].numpy(), c_n=final[1].numpy())
    else:
        record["h_n"] = final.numpy()
    return record


def main() -> None:
    HERE.mkdir(exist_ok=True)
    written = 0
    for i, (name, case) in enumerate(CASES.items()):
        record = make_case(100 + i, name, case)
        path = HERE / f"{name}.npz"
        np.savez_compressed(path, **record)
        written += path.stat().st_size
        print(f"wrote {path.relative_to(HERE.parent.parent.parent)}  losses {np.round(record['losses'], 4).tolist()}")
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
