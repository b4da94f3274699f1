"""Every sequence trainer against PyTorch: tests/vectors/training/*.npz.

The files come from tests/vectors/generate_training_vectors.py: torch.nn
modules trained in float64 with ``detach`` between windows, torch's loss
functions, clip_grad_value_ / clip_grad_norm_ and torch.optim (min-char-rnn's
Adagrad written out), covering windowed training, TBPTT(k1, k2) with
k1 < k2, per-output depth, every head (sigmoid_mse: 0.5 * mse_loss of
torch.sigmoid), both reductions, many-to-one, gradients-only runs, one
recurrent bias (torch's bias_hh held at zero and untrained), no biases, and
per-row state resets (the torch model multiplies the state entering step t
by 1 - resets[t], one step at a time). Each backend's trainer, in float32 and float64, must
reproduce the per-window losses, the final parameters, the final state and
the returned gradient (max|diff| / max|ref| per array: 1e-10 in float64,
1e-4 in float32).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import training as tr

from conftest import TOLERANCE, rel_err, vector_cell

VECTOR_DIR = Path(__file__).parent / "vectors" / "training"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.npz"))


def load(path):
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    return json.loads(str(data.pop("spec"))), data


def build_spec(s):
    # files written before issue 12 have neither key: torch's two biases and a head bias
    layout = tr.Layout(vector_cell(s), s["input_size"], s["hidden_size"], s["output_size"],
                       bias=s.get("bias", True), head_bias=s.get("head_bias", True))
    opt = None
    if s["optimizer"] is not None:
        kind, hp = s["optimizer"]
        opt = {"sgd": tr.SGD, "adagrad": tr.Adagrad, "rmsprop": tr.RMSprop, "adam": tr.Adam}[kind](**hp)
    scheme = dict(depth=s["depth"]) if s["depth"] is not None else dict(k1=s["k1"], k2=s["k2"])
    return tr.TrainSpec(layout, head=s["head"], index_input=s["index_input"], many_to_one=s["many_to_one"],
                        reduction=s["reduction"], clip=tr.Clip(*s["clip"]), optimizer=opt, **scheme)


def test_the_vectors_cover_every_scheme_head_and_optimizer():
    specs = [load(p)[0] for p in VECTOR_FILES]
    assert len(specs) >= 10
    assert {s["cell"] for s in specs} == set(fastrnn.CELLS)  # every cell trains
    assert {s["head"] for s in specs} == set(tr.HEADS)
    assert {s["reduction"] for s in specs} == set(tr.REDUCTIONS)
    assert {s["optimizer"][0] for s in specs if s["optimizer"]} == {"sgd", "adagrad", "rmsprop", "adam"}
    assert any(s["depth"] is not None for s in specs)
    assert any(s["k1"] is not None and s["k1"] < s["k2"] for s in specs)  # true TBPTT(k1, k2)
    assert any(s["k1"] is not None and s["k1"] == s["k2"] for s in specs)  # windowed
    assert any(s["many_to_one"] for s in specs) and any(s["optimizer"] is None for s in specs)
    assert {s["clip"][0] for s in specs} == {"none", "value", "norm"}
    # one recurrent bias (Layout(bias="ih")) by window, by depth, with and without optimizer,
    # and a layer without biases (trask's adder)
    one_bias = [s for s in specs if s.get("bias") == "ih"]
    assert {s["cell"] for s in one_bias} >= {"rnn_tanh", "gru", "lstm"}
    assert any(s["depth"] is not None for s in one_bias) and any(s["k1"] for s in one_bias)
    assert any(s.get("bias") is False and s.get("head_bias") is False for s in specs)
    assert {s["reduction"] for s in specs if s["head"] == "sigmoid_mse"} == set(tr.REDUCTIONS)
    # state resets: by window (a reset at a window's first step too, i.e. of the
    # carried state) and by depth, LSTM's c with its h, many-to-one
    with_resets = {p.stem: load(p) for p in VECTOR_FILES if "resets" in load(p)[1]}
    assert {s["cell"] for s, _ in with_resets.values()} >= {"lstm", "gru", "rnn_tanh"}
    assert any(s["depth"] is not None for s, _ in with_resets.values())
    assert any(s["many_to_one"] for s, _ in with_resets.values())

    def later_window_starts(s, T):
        spec = build_spec(s)
        return sorted({spec.window_steps(n, T)[0] for n in range(spec.num_updates(T))} - {0})

    assert any(v["resets"][later_window_starts(s, v["resets"].shape[0])].any()
               for s, v in with_resets.values() if s["k1"] is not None)
    for path in VECTOR_FILES:  # a clip that never binds would test nothing
        s, v = load(path)
        assert bool(v["clipped"]) == (s["clip"][0] != "none"), path.stem


def prepare(path, dtype):
    """A vector file's spec, the expected values, and the run's arguments in
    ``dtype``: (spec, v, theta, inputs, targets, h0, c0)."""
    s, v = load(path)
    spec = build_spec(s)
    theta = v["theta0"].astype(dtype)
    inputs = v["inputs"] if spec.index_input else v["inputs"].astype(dtype)
    targets = v["targets"] if v["targets"].dtype.kind == "i" else v["targets"].astype(dtype)
    c0 = v["c0"].astype(dtype) if "c0" in v else None
    return spec, v, theta, inputs, targets, v["h0"].astype(dtype), c0


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_trainer_matches_torch(path, trainer, dtype):
    spec, v, theta, inputs, targets, h0, c0 = prepare(path, dtype)
    resets = v.get("resets")  # (T, B) bool, in the files with state resets
    if spec.optimizer is None:
        res = tr.sequence_gradients(spec, theta, inputs, targets, h0=h0, c0=c0, resets=resets,
                                    backend=trainer)
        np.testing.assert_array_equal(theta, v["theta0"].astype(dtype))
    else:
        res = tr.fit_sequence(spec, theta, inputs, targets, h0=h0, c0=c0, resets=resets,
                              backend=trainer)
    errors = {"losses": rel_err(res.losses, v["losses"]), "theta": rel_err(theta, v["theta"]),
              "h_n": rel_err(res.h_n, v["h_n"]), "grad": rel_err(res.grad, v["grad"])}
    if "c_n" in v:
        errors["c_n"] = rel_err(res.c_n, v["c_n"])
    print(f"\n[{trainer}/{np.dtype(dtype).name}] {path.stem}: "
          + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: {errors[worst]:.3e}"
