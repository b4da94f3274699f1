"""Write the reference vectors of the leaky-integrator cell (cell "leaky").

    python tests/vectors/generate_leaky_vectors.py   (needs torch; tests do not)

The leaky integrator, with leak rate a in (0, 1] (a = 1: the Elman tanh cell):

    u_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    h_t = (1 - a) h_{t-1} + a u_t

torch.nn has no such module, so the reference is that recurrence written out
in a few float64 torch ops (below, independent of fastrnn's code), with
torch.nn.RNN's parameter shapes; a row stops updating after its length
(masks), which is the semantics of torch's packed path. Its gradients come
from autograd and are checked against central finite differences before
anything is written (the checks of the other generators, which this script
reuses, as generate_gru_original_vectors.py does).

Each file holds its rate under the key ``leak_rate`` (the training files in
their JSON spec), and its name ends in ``_leak<100 a>`` (``_leak030`` for a =
0.3), so that one shape at two rates makes two files. Rates: the plain and the
length cases of generate_vectors.py / generate_length_vectors.py at a = 0.3
and a = 1.0 each; the stacked / bidirectional / batch-first / unbatched
layers of generate_layer_vectors.py (composed layer by layer and direction by
direction from the one-layer recurrence) alternately at 0.3 and 0.7; two
sequence-trainer runs of generate_training_vectors.py (TBPTT(k1 < k2) with
an optimizer at 0.3, per-output depth at 0.6). Seeds: those the other
generators would give a seventh cell, plus an offset per rate. It does not
touch the other cells' files. Seeded: re-running reproduces them.
"""
from __future__ import annotations

import json

import torch

# (this script's folder is on sys.path when it runs)
import generate_layer_vectors as layer_vectors  # noqa: E402
import generate_length_vectors as length_vectors  # noqa: E402
import generate_training_vectors as training_vectors  # noqa: E402
import generate_vectors as plain_vectors  # noqa: E402
import numpy as np  # noqa: E402

CELL = "leaky"
# its place among the cells (after rnn_tanh, rnn_relu, rnn_sigmoid, lstm,
# gru, gru_original): the seed offset each generator gives its c-th cell
CELL_INDEX = 6
PLAIN_RATES = (0.3, 1.0)
LAYER_RATES = (0.3, 0.7)  # alternately, config by config
# The rate the drivers' forward calls run: they pass the cell's name only.
_rate = [1.0]


def leaky_masked(t, lengths, has_bias):
    """output, h_n, None of the leaky cell at rate _rate[0] over torch tensors
    t (x [T, B, I], the weights, optional biases, h0 [B, H]); row b updates
    for its first lengths[b] steps only and outputs 0 after them."""
    a = _rate[0]
    x, h = t["x"], t["h0"]
    T, B = x.shape[:2]
    H = t["weight_hh"].shape[1]
    zero = torch.zeros(H, dtype=torch.float64)
    b_ih, b_hh = (t["bias_ih"], t["bias_hh"]) if has_bias else (zero, zero)
    lengths = torch.tensor(lengths if lengths is not None else (T,) * B)
    outs = []
    for step in range(T):
        u = torch.tanh(x[step] @ t["weight_ih"].T + b_ih + h @ t["weight_hh"].T + b_hh)
        valid = (lengths > step)[:, None]
        h = torch.where(valid, (1 - a) * h + a * u, h)
        outs.append(torch.where(valid, h, torch.zeros_like(h)))
    return torch.stack(outs), h, None


def _plain_forward(cell, t, has_bias):
    assert cell == CELL
    return leaky_masked(t, None, has_bias)


def _length_forward(cell, t, lengths, has_bias):
    assert cell == CELL
    return leaky_masked(t, lengths, has_bias)


# generate_training_vectors.CASES' format, and each case's rate
TRAINING_CASES = {
    "leaky_tbptt_3_5_mse_mean_adam_clipnorm": (
        CELL, 13, 2, 4, 5, 3, False, "mse", "mean", False, ("tbptt", 3, 5),
        ("norm", 0.5), ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})),
    "leaky_depth_2_softmax_grad": (
        CELL, 9, 2, 5, 4, 5, True, "softmax_ce", "sum", False, ("depth", 2),
        ("value", 0.2), None),
}
TRAINING_RATES = {"leaky_tbptt_3_5_mse_mean_adam_clipnorm": 0.3,
                  "leaky_depth_2_softmax_grad": 0.6}


class LeakyModel(training_vectors.Model):
    """generate_training_vectors.Model with the leaky cell as its layer:
    torch.nn.RNN's parameter names, shapes and initialisation, this script's
    recurrence at rate _rate[0]."""

    def __init__(self, cell, I, H, O, bias=True, head_bias=True):
        assert cell == CELL and bias is True and head_bias is True
        torch.nn.Module.__init__(self)
        self.cell, self.H, self.bias = cell, H, bias
        k = 1 / np.sqrt(H)
        self.rnn = torch.nn.Module()
        for name, shape in (("weight_ih_l0", (H, I)), ("weight_hh_l0", (H, H)),
                            ("bias_ih_l0", (H,)), ("bias_hh_l0", (H,))):
            self.rnn.register_parameter(name, torch.nn.Parameter(
                torch.empty(shape, dtype=torch.float64).uniform_(-k, k)))
        self.head = torch.nn.Linear(H, O, dtype=torch.float64)

    def run(self, x, state, resets=None):
        assert resets is None
        r = self.rnn
        t = {"x": x, "h0": state, "weight_ih": r.weight_ih_l0, "weight_hh": r.weight_hh_l0,
             "bias_ih": r.bias_ih_l0, "bias_hh": r.bias_hh_l0}
        out, h, _ = leaky_masked(t, None, True)
        return out, h


def install_reference() -> None:
    """Make the other generators' drivers run this cell: its gate count for
    their draws, and this recurrence where they would call torch.nn."""
    plain_vectors.GATES[CELL] = 1
    plain_vectors.torch_forward = _plain_forward
    length_vectors.torch_forward = _length_forward
    layer_vectors.one_layer_forward = _length_forward
    assert CELL not in layer_vectors.TORCH_NN_CELLS  # composed, never torch.nn's
    training_vectors.Model = LeakyModel


def rate_suffix(rate: float) -> str:
    return f"_leak{round(100 * rate):03d}"


def with_rate(path, rate):
    return path.with_name(path.stem + rate_suffix(rate) + path.suffix)


def main() -> None:
    torch.manual_seed(0)
    install_reference()
    written = 0
    c = CELL_INDEX
    for r, rate in enumerate(PLAIN_RATES):
        _rate[0] = rate
        for s, (T, B, I, H, has_bias, has_h0) in enumerate(plain_vectors.SHAPES):
            record = plain_vectors.make_case(1000 * c + 100 * r + s, CELL, T, B, I, H,
                                             has_bias, has_h0)
            record["leak_rate"] = np.array(rate)
            written += plain_vectors.save_case(with_rate(
                plain_vectors.HERE / plain_vectors.file_name(CELL, T, B, I, H, has_bias, has_h0),
                rate), record)
    length_vectors.HERE.mkdir(exist_ok=True)
    for r, rate in enumerate(PLAIN_RATES):
        _rate[0] = rate
        for s, (T, B, I, H, has_bias, has_h0, lengths) in enumerate(length_vectors.CASES):
            record = length_vectors.make_case(5000 + 1000 * c + 100 * r + s, CELL, T, B, I, H,
                                              has_bias, has_h0, lengths)
            record["leak_rate"] = np.array(rate)
            written += length_vectors.save_case(with_rate(
                length_vectors.HERE / length_vectors.file_name(CELL, T, B, I, H, has_bias,
                                                               has_h0), rate), record)
    layer_vectors.HERE.mkdir(exist_ok=True)
    for s, config in enumerate(layer_vectors.CONFIGS):
        rate = _rate[0] = LAYER_RATES[s % len(LAYER_RATES)]
        cfg = layer_vectors.full_config(CELL, config)
        record = layer_vectors.informative_case(20000 + 1000 * c + 20 * s, cfg)
        record["leak_rate"] = np.array(rate)
        written += layer_vectors.save_case(
            with_rate(layer_vectors.HERE / layer_vectors.file_name(cfg), rate), record)
    training_vectors.HERE.mkdir(exist_ok=True)
    # the seeds after the other cells' cases and the original GRU's two
    first = len(training_vectors.CASES) + 2
    for i, (name, case) in enumerate(TRAINING_CASES.items()):
        rate = _rate[0] = TRAINING_RATES[name]
        record = training_vectors.make_case(100 + first + i, name, case)
        assert bool(record["clipped"]) == (case[11][0] != "none"), name  # a clip that binds
        spec = json.loads(str(record["spec"]))
        spec["leak_rate"] = rate
        record["spec"] = np.array(json.dumps(spec))
        path = training_vectors.HERE / f"{name}.npz"
        np.savez_compressed(path, **record)
        written += path.stat().st_size
        print(f"wrote {path.name}  losses {np.round(record['losses'], 4).tolist()}")
    print(f"{written / 1024:.1f} KiB in total")


if __name__ == "__main__":
    main()
