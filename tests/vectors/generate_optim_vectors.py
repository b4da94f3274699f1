"""Generate tests/vectors/optim/*.npz: torch.optim's optimizers run in float64.

What this is: for each optimizer and several hyperparameter settings (chosen
to reach every branch: momentum, dampening, Nesterov, weight decay, Adagrad's
lr_decay and initial accumulator, RMSprop centered with momentum, Adam/AdamW
with amsgrad), torch (``foreach=False``, CPU, float64) takes 20 steps on
three small parameters with a fixed sequence of random gradients; at step
SKIP_STEP parameter "b" has no gradient (``p.grad = None``), so its step
count falls behind the others'. Each file holds the initial parameters, the
gradients of every step (has_grad marks the skipped step), torch's final
parameters and final per-parameter state, and the hyperparameters as JSON.
tests/test_optim.py replays them. What this is not: a test of torch.

Run from the repository root (needs torch):  python tests/vectors/generate_optim_vectors.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

OUT_DIR = Path(__file__).parent / "optim"
STEPS = 20
SKIP_STEP = 7
SHAPES = {"w": (4, 3), "b": (4,), "u": (2, 3, 2)}

# (file stem, torch.optim class name, hyperparameters)
CONFIGS = [
    ("sgd_plain", "SGD", dict(lr=0.1)),
    ("sgd_momentum", "SGD", dict(lr=0.05, momentum=0.9)),
    ("sgd_momentum_dampening_wd", "SGD", dict(lr=0.05, momentum=0.8, dampening=0.4,
                                               weight_decay=0.02)),
    ("sgd_nesterov_wd", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("adagrad_default", "Adagrad", dict()),
    ("adagrad_decay_init_wd", "Adagrad", dict(lr=0.1, lr_decay=0.05,
                                              initial_accumulator_value=0.3,
                                              weight_decay=0.01, eps=1e-6)),
    ("rmsprop_default", "RMSprop", dict()),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.005, alpha=0.9, momentum=0.7)),
    ("rmsprop_centered_momentum_wd", "RMSprop", dict(lr=0.005, alpha=0.95, eps=1e-6,
                                                     momentum=0.5, centered=True,
                                                     weight_decay=0.05)),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True)),
    ("adam_default", "Adam", dict()),
    ("adam_amsgrad", "Adam", dict(lr=0.01, amsgrad=True)),
    ("adam_betas_eps_wd_amsgrad", "Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                               weight_decay=0.05, amsgrad=True)),
    ("adamw_default", "AdamW", dict()),
    ("adamw_wd_amsgrad", "AdamW", dict(lr=0.01, betas=(0.85, 0.995), weight_decay=0.1,
                                       amsgrad=True)),
]


def generate(optimizer: str, hyper: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    initial = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = {k: rng.standard_normal((STEPS,) + s) for k, s in SHAPES.items()}
    has_grad = {k: np.ones(STEPS, bool) for k in SHAPES}
    has_grad["b"][SKIP_STEP] = False
    tensors = {k: torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True)
               for k, a in initial.items()}
    opt = getattr(torch.optim, optimizer)(list(tensors.values()), foreach=False, **hyper)
    for t in range(STEPS):
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k][t]) if has_grad[k][t] else None
        opt.step()
    out = {"optimizer": np.array(optimizer), "hyperparameters": np.array(json.dumps(hyper)),
           "steps": np.array(STEPS)}
    for k in SHAPES:
        out[f"initial/{k}"] = initial[k]
        out[f"grads/{k}"] = grads[k]
        out[f"has_grad/{k}"] = has_grad[k]
        out[f"final/{k}"] = tensors[k].detach().numpy().copy()
        for sk, sv in opt.state[tensors[k]].items():
            value = sv.detach().numpy().copy() if torch.is_tensor(sv) else np.asarray(sv)
            if sk == "step":  # torch keeps a float tensor; the count is an integer
                value = np.array(int(value))
            out[f"state/{k}/{sk}"] = value
    return out


def main() -> None:
    OUT_DIR.mkdir(exist_ok=True)
    for old in OUT_DIR.glob("*.npz"):
        old.unlink()
    for seed, (stem, optimizer, hyper) in enumerate(CONFIGS):
        np.savez_compressed(OUT_DIR / f"{stem}.npz", **generate(optimizer, hyper, seed))
    total = sum(p.stat().st_size for p in OUT_DIR.glob("*.npz"))
    print(f"wrote {len(CONFIGS)} files, {total:,} bytes, to {OUT_DIR}")


if __name__ == "__main__":
    main()
