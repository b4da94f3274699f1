"""One sigmoid neuron fed back on itself learns to predict the sequence 001001001.

What it is: the smallest recurrent network there is, trained with fastrnn's
layer API the way a user would. The neuron is fastrnn.RNN with one unit and
nonlinearity="sigmoid" (the rnn_sigmoid cell) and no head: its output is the
prediction of the next bit,

    n_t = sigmoid(w_c x_t + w_p n_(t-1) + w_b),    n_(-1) = 0,

where w_c is weight_ih, w_p is weight_hh and w_b is bias_ih (bias_hh is held
at zero so that the neuron has a single bias, as the formula does). It reads
the bits one at a time and, after each, predicts the next; the loss is the
cross-entropy of those predictions summed over the steps, its gradient taken
by BPTT through the whole sequence (layer.backward) and applied by plain
gradient descent (fastrnn.optim.SGD), one step per pass over the sequence.

After training it prints each input bit beside the bit that follows and the
neuron's prediction of it, then ``correct: F``: the fraction of steps
predicted on the right side (above 0.9 where the next bit is 1, below 0.3
where it is 0). One neuron can do this because its own output remembers how
far it is into the pattern: just after a 1 it is near 0, after one 0 about
0.17, and a large w_p turns that 0.17 into a confident 1 after the second 0.

What it is not: a general sequence predictor (one unit, one fixed pattern,
no held-out data), nor a copy of any tutorial's code (whose per-step weight
updates are replaced here by one full-sequence gradient per pass).

Takes about 1.5 s on a 2-core machine (up to 4 s while it is busy; most of it the
Python calls of the 3000 passes).

    python examples/sigmoid_neuron.py [--passes 3000] [--lr 0.5] [--plot FILE.png]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import fastrnn

SEED = 0
PATTERN = "001001001"


def train(bits: np.ndarray, passes: int, lr: float, seed: int = SEED):
    """Fit the neuron to predict bits[t + 1] from bits[:t + 1]; returns the
    neuron, its final predictions (T - 1,) and the loss of every pass."""
    x = bits[:-1].reshape(-1, 1, 1)  # (T - 1, batch 1, one input)
    y = bits[1:].reshape(-1, 1, 1)  # the bit after each input
    neuron = fastrnn.RNN(1, 1, nonlinearity="sigmoid", dtype=np.float64, seed=seed)
    neuron.bias_hh[...] = 0.0  # one bias (w_b = bias_ih): bias_hh is not trained
    trained = {name: p for name, p in neuron.named_parameters().items() if name != "bias_hh_l0"}
    optimizer = fastrnn.optim.SGD(trained, lr=lr)
    losses = []
    for _ in range(passes):
        result = neuron.forward(x, training=True)
        n = result.output
        losses.append(float(-(y * np.log(n) + (1 - y) * np.log(1 - n)).sum()))
        # dJ/dn of the cross-entropy; the sigmoid's derivative n (1 - n),
        # applied by backward, turns it into the tutorial's delta n - y
        d_output = (n - y) / (n * (1 - n))
        grads = neuron.backward(result, d_output)
        optimizer.step({name: grads.params[name] for name in trained})
    predictions = neuron.forward(x).output.ravel()
    return neuron, predictions, losses


def fraction_correct(predictions: np.ndarray, next_bits: np.ndarray) -> float:
    """Steps predicted on the right side: > 0.9 before a 1, < 0.3 before a 0."""
    right = np.where(next_bits == 1, predictions > 0.9, predictions < 0.3)
    return float(right.mean())


def save_plot(path: str, losses) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("pass over the sequence (one SGD step each)")
    ax.set_ylabel("cross-entropy, summed over the steps")
    ax.set_yscale("log")
    ax.set_title(f"one sigmoid neuron learning {PATTERN}")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=3000,
                        help="passes over the sequence, one gradient step each")
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save the learning curve (needs the 'plot' extra: matplotlib)")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error(f"--passes must be >= 1, got {args.passes}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrnn[plot]'")

    bits = np.array([int(b) for b in PATTERN], np.float64)
    neuron, predictions, losses = train(bits, args.passes, args.lr)
    print(f"sequence {PATTERN}, {args.passes} passes of SGD (lr {args.lr}): "
          f"cross-entropy {losses[0]:.3f} -> {losses[-1]:.3f}")
    print(f"w_c = {neuron.weight_ih.item():.3f}, w_p = {neuron.weight_hh.item():.3f}, "
          f"w_b = {neuron.bias_ih.item():.3f}")
    print("input  next  prediction")
    for bit, following, p in zip(bits[:-1], bits[1:], predictions):
        print(f"{int(bit):5d} {int(following):5d}  {p:.4f}")
    if args.plot:
        save_plot(args.plot, losses)
        print(f"learning curve saved to {args.plot}")
    print(f"correct: {fraction_correct(predictions, bits[1:]):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
