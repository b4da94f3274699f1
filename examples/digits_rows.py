"""Classify handwritten digits by reading each image one row per step with a fastrnn LSTM (or GRU).

What it is: many-to-one sequence classification with fastrnn's layers, as a
user writes it by hand: a recurrent layer (fastrnn.LSTM, or fastrnn.GRU with
``--cell gru``) reads an image's rows as a sequence (one row of pixels per
step), a fastrnn.nn.Linear head maps its last hidden state to ten logits,
fastrnn.nn.cross_entropy gives the loss and its gradient, layer.backward
takes it back through time (d_h_n only: no other step has a loss) and
fastrnn.optim.Adam updates both. The last line is ``accuracy: A``, the
fraction of the held-out test images classified right.

Data: MNIST cannot be downloaded here, so by default it runs on
scikit-learn's bundled 8 x 8 digits (sklearn.datasets.load_digits: 1797
images, a fixed 80/20 split; scikit-learn is needed for this). With
``--mnist DIR`` it reads MNIST's own IDX files from DIR instead
(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte, each optionally .gz): 28 steps of 28 pixels.

What it is not: a tuned MNIST model (no augmentation, no schedule), nor a
data-downloading tool: the IDX files must already be on disk.

Takes about 7 s on a 2-core machine on the 8 x 8 digits (float32, either cell).

    python examples/digits_rows.py [--cell lstm|gru] [--epochs 40] [--mnist DIR] [--plot FILE.png]
"""
from __future__ import annotations

import argparse
import gzip
import pathlib
import sys

import numpy as np

import fastrnn
from fastrnn.nn import Linear, cross_entropy
from fastrnn.optim import Adam

SEED = 0
IDX_TYPES = {0x08: np.uint8}  # MNIST's files are all unsigned bytes


def read_idx(path) -> np.ndarray:
    """One IDX file (MNIST's format; gzip if the name ends in .gz) as an array.

    The format: two zero bytes, a type byte (0x08: unsigned bytes), a byte
    giving the number of dimensions, each dimension as a big-endian uint32,
    then the data. Raises ValueError naming the file when it is not that
    (a wrong magic, an unsupported type, too few or too many data bytes).
    """
    path = pathlib.Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (it must start with two zero bytes)")
    if raw[2] not in IDX_TYPES:
        raise ValueError(f"{path}: IDX data type 0x{raw[2]:02x} is not supported "
                         f"(only 0x08, unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions "
                         f"need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes in all), "
                         f"the file has {len(raw)} bytes")
    return np.frombuffer(raw, IDX_TYPES[raw[2]], offset=header).reshape(shape)


def _idx_file(directory: pathlib.Path, name: str) -> pathlib.Path:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{directory}: no {name} or {name}.gz (MNIST's IDX files)")


def load_mnist(directory, dtype):
    """MNIST's train and test splits from its IDX files: images (N, 28, 28)
    scaled to [0, 1] in dtype, labels (N,) int64."""
    directory = pathlib.Path(directory)
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(_idx_file(directory, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_idx_file(directory, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{directory}: {prefix} images {images.shape} and labels "
                             f"{labels.shape} do not match (want (N, rows, cols) and (N,))")
        splits += [(images / 255.0).astype(dtype), labels.astype(np.int64)]
    return tuple(splits)


def load_small_digits(dtype):
    """scikit-learn's 8 x 8 digits, pixels scaled to [0, 1], split 80/20 by a
    seeded permutation: x_train, y_train, x_test, y_test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(dtype)  # its pixels are 0..16
    order = np.random.default_rng(SEED).permutation(len(images))
    cut = int(0.8 * len(images))
    train, test = order[:cut], order[cut:]
    return images[train], digits.target[train], images[test], digits.target[test]


class RowClassifier:
    """A recurrent layer over the rows, a linear head on its last state."""

    def __init__(self, cell: str, rows_width: int, hidden: int, classes: int, dtype):
        layer = {"lstm": fastrnn.LSTM, "gru": fastrnn.GRU}[cell]
        self.rnn = layer(rows_width, hidden, dtype=dtype, seed=SEED)
        self.head = Linear(hidden, classes, dtype=dtype, seed=SEED + 1)

    def parameters(self) -> dict:
        """Every trained array under one name space (the head's prefixed)."""
        params = self.rnn.named_parameters()
        params.update({f"head.{name}": p for name, p in self.head.named_parameters().items()})
        return params

    def logits(self, images, training=False):
        # images (B, rows, width) -> steps (rows, B, width): one row per step
        result = self.rnn.forward(np.ascontiguousarray(images.transpose(1, 0, 2)),
                                  training=training)
        return self.head.forward(result.h_n), result

    def gradients(self, images, labels):
        """The batch's mean cross-entropy and its gradient for every parameter."""
        logits, result = self.logits(images, training=True)
        loss, d_logits = cross_entropy(logits, labels)
        head = self.head.backward(result.h_n, d_logits)
        rnn = self.rnn.backward(result, d_h_n=head.x)  # only the last state has a loss
        grads = dict(rnn.params)
        grads.update({f"head.{name}": g for name, g in head.params.items()})
        return float(loss), grads

    def accuracy(self, images, labels) -> float:
        return float(np.mean(self.logits(images)[0].argmax(axis=1) == labels))


def save_plot(path: str, losses, accuracies) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(losses) + 1)
    fig, loss_axis = plt.subplots(figsize=(6, 4))
    loss_axis.plot(epochs, losses, color="tab:blue")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training cross-entropy (epoch mean)", color="tab:blue")
    accuracy_axis = loss_axis.twinx()
    accuracy_axis.plot(epochs, accuracies, color="tab:orange")
    accuracy_axis.set_ylabel("test accuracy", color="tab:orange")
    accuracy_axis.set_ylim(0, 1)
    loss_axis.set_title("digits read one row per step")
    loss_axis.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="images per Adam step")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--mnist", metavar="DIR",
                        help="read MNIST's IDX files from DIR instead of the 8 x 8 digits")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save the learning curve (needs the 'plot' extra: matplotlib)")
    args = parser.parse_args(argv)
    if min(args.hidden, args.epochs, args.batch) < 1:
        parser.error("--hidden, --epochs and --batch must be >= 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrnn[plot]'")
    dtype = np.dtype(args.dtype)
    if args.mnist:
        try:
            x_train, y_train, x_test, y_test = load_mnist(args.mnist, dtype)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
        source = f"MNIST from {args.mnist}"
    else:
        try:
            x_train, y_train, x_test, y_test = load_small_digits(dtype)
        except ImportError:
            parser.error("the 8 x 8 digits need scikit-learn (pip install scikit-learn), "
                         "or give MNIST's IDX files with --mnist DIR")
        source = "scikit-learn's 8 x 8 digits"
    rows, width = x_train.shape[1:]
    print(f"{source}: {len(x_train)} training and {len(x_test)} test images, "
          f"{rows} steps of {width} pixels")

    model = RowClassifier(args.cell, width, args.hidden, 10, dtype)
    optimizer = Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(SEED)
    losses, accuracies = [], []
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        batch_losses = []
        for start in range(0, len(order), args.batch):
            batch = order[start:start + args.batch]
            loss, grads = model.gradients(x_train[batch], y_train[batch])
            optimizer.step(grads)
            batch_losses.append(loss)
        losses.append(float(np.mean(batch_losses)))
        accuracies.append(model.accuracy(x_test, y_test))
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}: loss {losses[-1]:.4f}, test accuracy {accuracies[-1]:.4f}")
    if args.plot:
        save_plot(args.plot, losses, accuracies)
        print(f"learning curve saved to {args.plot}")
    print(f"accuracy: {accuracies[-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
