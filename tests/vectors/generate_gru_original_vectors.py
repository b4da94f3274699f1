"""Write the reference vectors of the original GRU (cell "gru_original").

    python tests/vectors/generate_gru_original_vectors.py   (needs torch; tests do not)

The original GRU of Cho et al. 2014 (Keras's reset_after=False, oneDNN's
default) applies the reset gate to h before the recurrent product of n:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + W_hn (r h) + b_hn)
    h' = (1 - z) n + z h

torch.nn has no such module, so the reference is that recurrence written
out in a few float64 torch ops (below, independent of fastrnn's code), with
PyTorch's parameter shapes and gate order r, z, n; a row stops updating after
its length (masks), which is the semantics of torch's packed path. Its
gradients come from autograd and are checked against central finite
differences before anything is written (the checks of the other
generators, which this script reuses).

It writes only gru_original files, the same families as the other cells
and with the seeds they would have as the sixth cell: the plain cases of
generate_vectors.py (tests/vectors/), the per-row length cases of
generate_length_vectors.py (tests/vectors/lengths/), the stacked /
bidirectional / batch-first / unbatched layers of generate_layer_vectors.py
(tests/vectors/layers/, composed layer by layer and direction by direction
from the one-layer recurrence, as those files are for the sigmoid RNN), and
two sequence-trainer runs of generate_training_vectors.py
(tests/vectors/training/: TBPTT(k1 < k2) with an optimizer, and per-output
depth), its torch.nn.GRU replaced by the recurrence above. It does not
touch the other cells' files. Seeded: re-running reproduces them.
"""
from __future__ import annotations

import torch

# (this script's folder is on sys.path when it runs)
import generate_layer_vectors as layer_vectors  # noqa: E402
import generate_length_vectors as length_vectors  # noqa: E402
import generate_training_vectors as training_vectors  # noqa: E402
import generate_vectors as plain_vectors  # noqa: E402
import numpy as np  # noqa: E402

CELL = "gru_original"
# its place among the cells (after rnn_tanh, rnn_relu, rnn_sigmoid, lstm,
# gru): the seed offset each generator gives its c-th cell
CELL_INDEX = 5


def gru_original_masked(t, lengths, has_bias):
    """output, h_n, None of the original GRU over torch tensors t (x [T, B,
    I], the weights, optional biases, h0 [B, H]); row b updates for its first
    lengths[b] steps only and outputs 0 after them."""
    x, h = t["x"], t["h0"]
    T, B = x.shape[:2]
    H = t["weight_hh"].shape[1]
    W_ir, W_iz, W_in = t["weight_ih"].split(H)
    W_hr, W_hz, W_hn = t["weight_hh"].split(H)
    if has_bias:
        b_ir, b_iz, b_in = t["bias_ih"].split(H)
        b_hr, b_hz, b_hn = t["bias_hh"].split(H)
    else:
        b_ir = b_iz = b_in = b_hr = b_hz = b_hn = torch.zeros(H, dtype=torch.float64)
    lengths = torch.tensor(lengths if lengths is not None else (T,) * B)
    outs = []
    for step in range(T):
        x_t = x[step]
        r = torch.sigmoid(x_t @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x_t @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = torch.tanh(x_t @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h_new = (1 - z) * n + z * h
        valid = (lengths > step)[:, None]
        h = torch.where(valid, h_new, h)
        outs.append(torch.where(valid, h, torch.zeros_like(h)))
    return torch.stack(outs), h, None


def _plain_forward(cell, t, has_bias):
    assert cell == CELL
    return gru_original_masked(t, None, has_bias)


def _length_forward(cell, t, lengths, has_bias):
    assert cell == CELL
    return gru_original_masked(t, lengths, has_bias)


# generate_training_vectors.CASES' format; seeds follow that script's (100 + i)
TRAINING_CASES = {
    "gru_original_tbptt_3_5_mse_mean_adam_clipnorm": (
        CELL, 13, 2, 4, 5, 3, False, "mse", "mean", False, ("tbptt", 3, 5),
        ("norm", 0.5), ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
    "gru_original_depth_2_softmax_grad": (
        CELL, 9, 2, 5, 4, 5, True, "softmax_ce", "sum", False, ("depth", 2),
        ("value", 0.2), None),
}


class OriginalGRUModel(training_vectors.Model):
    """generate_training_vectors.Model with the original GRU as its layer:
    torch.nn.GRU's parameter names, shapes and initialisation, this script's
    recurrence."""

    def __init__(self, cell, I, H, O):
        assert cell == CELL
        torch.nn.Module.__init__(self)
        self.cell, self.H = cell, H
        k = 1 / np.sqrt(H)
        self.rnn = torch.nn.Module()
        for name, shape in (("weight_ih_l0", (3 * H, I)), ("weight_hh_l0", (3 * H, H)),
                            ("bias_ih_l0", (3 * H,)), ("bias_hh_l0", (3 * H,))):
            self.rnn.register_parameter(name, torch.nn.Parameter(
                torch.empty(shape, dtype=torch.float64).uniform_(-k, k)))
        self.head = torch.nn.Linear(H, O, dtype=torch.float64)

    def run(self, x, state):
        r = self.rnn
        t = {"x": x, "h0": state, "weight_ih": r.weight_ih_l0, "weight_hh": r.weight_hh_l0,
             "bias_ih": r.bias_ih_l0, "bias_hh": r.bias_hh_l0}
        out, h, _ = gru_original_masked(t, None, True)
        return out, h


def install_reference() -> None:
    """Make the other generators' drivers run this cell: its gate count for
    their draws, and this recurrence where they would call torch.nn."""
    plain_vectors.GATES[CELL] = 3
    plain_vectors.torch_forward = _plain_forward
    length_vectors.torch_forward = _length_forward
    layer_vectors.one_layer_forward = _length_forward
    assert CELL not in layer_vectors.TORCH_NN_CELLS  # composed, never torch.nn's
    training_vectors.Model = OriginalGRUModel


def main() -> None:
    torch.manual_seed(0)
    install_reference()
    written = 0
    c = CELL_INDEX
    for s, (T, B, I, H, has_bias, has_h0) in enumerate(plain_vectors.SHAPES):
        written += plain_vectors.save_case(
            plain_vectors.HERE / plain_vectors.file_name(CELL, T, B, I, H, has_bias, has_h0),
            plain_vectors.make_case(1000 * c + s, CELL, T, B, I, H, has_bias, has_h0))
    length_vectors.HERE.mkdir(exist_ok=True)
    for s, (T, B, I, H, has_bias, has_h0, lengths) in enumerate(length_vectors.CASES):
        written += length_vectors.save_case(
            length_vectors.HERE / length_vectors.file_name(CELL, T, B, I, H, has_bias, has_h0),
            length_vectors.make_case(5000 + 1000 * c + s, CELL, T, B, I, H, has_bias, has_h0,
                                     lengths))
    layer_vectors.HERE.mkdir(exist_ok=True)
    for s, config in enumerate(layer_vectors.CONFIGS):
        cfg = layer_vectors.full_config(CELL, config)
        written += layer_vectors.save_case(
            layer_vectors.HERE / layer_vectors.file_name(cfg),
            layer_vectors.informative_case(20000 + 1000 * c + 20 * s, cfg))
    training_vectors.HERE.mkdir(exist_ok=True)
    first = len(training_vectors.CASES)  # the seeds after the other cells' cases
    for i, (name, case) in enumerate(TRAINING_CASES.items()):
        record = training_vectors.make_case(100 + first + i, name, case)
        assert bool(record["clipped"]) == (case[11][0] != "none"), name  # a clip that binds
        path = training_vectors.HERE / f"{name}.npz"
        np.savez_compressed(path, **record)
        written += path.stat().st_size
        print(f"wrote {path.name}  losses {np.round(record['losses'], 4).tolist()}")
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
