"""An Elman RNN learns 8-bit binary addition (trask's binary adder) with fastrnn.training.

What it is: the classic demonstration that a recurrent network can learn an
algorithm with a carry. Two 8-bit numbers are fed one bit pair per step,
least significant bit first; after each step the network outputs one bit of
the sum, so it has to keep the carry in its state. The network is the one of
the tutorial (seed 004): a sigmoid Elman RNN with 16 hidden units and no
biases, a sigmoid output with squared error (fastrnn.training's
``sigmoid_mse`` head), plain SGD with learning rate 0.1 and the weights
drawn from U(-1, 1), one update per sum (batch 1).

The training sums are drawn from all pairs 0..255 and added mod 256 (the
ninth bit is dropped); they are concatenated into one long stream that
``fit_sequence`` trains through window by window, one 8-step window per sum,
with ``resets=`` zeroing the state where each sum starts, so the sums do not
see each other. After every ``--report-every`` sums it prints a worked sum,
as the tutorial does. Finally every one of the 256 x 256 pairs is added by
the trained weights (loaded into a fastrnn.RNN layer, the head applied with
NumPy), and the last line is ``exact: F``, the fraction of sums whose eight
bits are all right.

What it is not: a study of generalisation (the test pairs include the
training pairs: 10000 draws cover about 14% of the 65536), nor trask's code
(there is no hand-written backpropagation here: the C trainer does it).

Takes about 1 s on a 2-core machine (training itself about 0.05 s).

    python examples/binary_adder.py [--sums 10000] [--dtype float64] [--plot FILE.png]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import fastrnn
from fastrnn import training

SEED = 0
BITS = 8
HIDDEN = 16
LEARNING_RATE = 0.1


def bits_of(numbers) -> np.ndarray:
    """numbers (...,) -> their BITS bits, least significant first: (..., BITS)."""
    return (np.asarray(numbers)[..., None] >> np.arange(BITS)) & 1


def number_of(bits) -> np.ndarray:
    """The inverse of bits_of: (..., BITS) bits, least significant first -> (...,)."""
    return (np.asarray(bits).astype(np.int64) << np.arange(BITS)).sum(axis=-1)


def as_sequences(a, b, dtype) -> np.ndarray:
    """Pairs (a, b) as (BITS, len(a), 2) inputs: step t holds bit t of a and of b."""
    return np.stack([bits_of(a), bits_of(b)], axis=-1).transpose(1, 0, 2).astype(dtype)


LAYOUT = training.Layout("rnn_sigmoid", input_size=2, hidden_size=HIDDEN, output_size=1,
                         bias=False, head_bias=False)
SPEC = training.TrainSpec(LAYOUT, head="sigmoid_mse", k1=BITS,
                          optimizer=training.SGD(lr=LEARNING_RATE))


def train_on(theta, a, b, state):
    """One SGD update per sum (a[i] + b[i]) mod 256, in order; returns the
    loss of each sum (0.5 * the squared error summed over its bits)."""
    n = len(a)
    # the sums one after another in a single row of batch 1: (n * BITS, 1, 2)
    inputs = as_sequences(a, b, theta.dtype).transpose(1, 0, 2).reshape(n * BITS, 1, 2)
    targets = bits_of((a + b) % 256).reshape(n * BITS, 1, 1).astype(theta.dtype)
    starts = np.zeros((n * BITS, 1), bool)
    starts[::BITS] = True  # each sum starts from a zero state
    return training.fit_sequence(SPEC, theta, inputs, targets, state=state, resets=starts).losses


def add(theta, a, b) -> np.ndarray:
    """The trained network's (a + b) mod 256 for arrays of pairs."""
    weights = LAYOUT.views(theta)
    rnn = fastrnn.RNN(2, HIDDEN, nonlinearity="sigmoid", bias=False, dtype=theta.dtype)
    rnn.load_state_dict({"weight_ih": weights["weight_ih"], "weight_hh": weights["weight_hh"]})
    hidden = rnn.forward(as_sequences(a, b, theta.dtype)).output  # (BITS, n, HIDDEN)
    logits = hidden @ weights["weight_hy"].T  # (BITS, n, 1): the output's pre-sigmoid
    return number_of((logits[..., 0] > 0).T)  # sigmoid > 0.5 is a 1


def save_plot(path: str, losses, window: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(window, len(losses) + 1), smooth)
    ax.set_xlabel("sums trained on (one SGD update each)")
    ax.set_ylabel(f"0.5 x squared error per sum (mean of the last {window})")
    ax.set_yscale("log")
    ax.set_title("16-unit sigmoid RNN learning 8-bit addition")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sums", type=int, default=10000,
                        help="training sums (one SGD update each), as the tutorial's iterations")
    parser.add_argument("--report-every", type=int, default=1000,
                        help="print a worked sum after this many training sums")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save the learning curve (needs the 'plot' extra: matplotlib)")
    args = parser.parse_args(argv)
    if args.sums < 1 or args.report_every < 1:
        parser.error("--sums and --report-every must be >= 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrnn[plot]'")

    rng = np.random.default_rng(SEED)
    theta = rng.uniform(-1.0, 1.0, LAYOUT.size).astype(args.dtype)  # the tutorial's init
    state = training.OptimizerState.zeros_like(theta)
    a = rng.integers(0, 256, args.sums)
    b = rng.integers(0, 256, args.sums)
    print(f"sigmoid Elman RNN, {HIDDEN} hidden units, sigmoid_mse head, SGD lr {LEARNING_RATE}, "
          f"{args.sums} sums, {args.dtype}; bits printed most significant first")
    losses = []
    for start in range(0, args.sums, args.report_every):
        chunk = slice(start, min(start + args.report_every, args.sums))
        losses.extend(train_on(theta, a[chunk], b[chunk], state))
        x, y = a[chunk.stop - 1], b[chunk.stop - 1]  # the last sum trained on
        got = int(add(theta, x[None], y[None])[0])
        want = (x + y) % 256
        print(f"after {chunk.stop:5d} sums: error {np.mean(losses[-100:]):.4f}  "
              f"{bits_of(got)[::-1].tolist()} {x} + {y} = {got} "
              f"({'right' if got == want else f'wrong, {want}'})")
    every_a, every_b = (grid.ravel() for grid in np.meshgrid(np.arange(256), np.arange(256)))
    exact = np.mean(add(theta, every_a, every_b) == (every_a + every_b) % 256)
    if args.plot:
        save_plot(args.plot, np.asarray(losses), window=min(100, len(losses)))
        print(f"learning curve saved to {args.plot}")
    print(f"exact: {exact:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
