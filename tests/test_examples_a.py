"""The tutorial examples examples/sigmoid_neuron.py, binary_adder.py and
digits_rows.py, each run as a user runs it (a subprocess) and held to the
headline figure issue 14 demands of it on its last line.

What this is not: a test of the layers, losses or optimizers themselves
(their own tests do that); only of whether each example's application
learns what it claims to, and of the helpers an example defines.
"""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from examples_support import (EXAMPLES, assert_plot_refused, assert_png_if_plotted,
                              load_example, plot_args, run_example, run_without_matplotlib)


# ------------------------------------------------------------ sigmoid_neuron
def test_sigmoid_neuron_predicts_every_step_on_the_right_side(tmp_path):
    args, plot = plot_args(tmp_path)
    lines, correct = run_example("sigmoid_neuron", "correct", *args, timeout=60)
    assert correct == 1.0
    rows = [line.split() for line in lines if re.fullmatch(r"\s*[01]\s+[01]\s+\d\.\d+", line)]
    assert len(rows) == 8  # one row per predicted step of 001001001
    assert_png_if_plotted(args, plot)


def test_sigmoid_neuron_untrained_is_not_counted_correct():
    # the figure can fail: after one pass the neuron has learnt nothing
    _, correct = run_example("sigmoid_neuron", "correct", "--passes", "1", timeout=60)
    assert correct < 1.0


def test_sigmoid_neuron_fraction_correct_uses_both_thresholds():
    fraction_correct = load_example("sigmoid_neuron").fraction_correct
    next_bits = np.array([0, 0, 1, 0])
    assert fraction_correct(np.array([0.29, 0.0, 0.91, 0.1]), next_bits) == 1.0
    assert fraction_correct(np.array([0.31, 0.0, 0.89, 0.1]), next_bits) == 0.5


# -------------------------------------------------------------- binary_adder
def test_binary_adder_adds_every_pair_exactly(tmp_path):
    args, plot = plot_args(tmp_path)
    lines, exact = run_example("binary_adder", "exact", *args, timeout=120)
    assert exact == 1.0
    worked = [line for line in lines if re.search(r"\d+ \+ \d+ = \d+", line)]
    assert len(worked) == 10 and worked[-1].endswith("(right)")
    assert_png_if_plotted(args, plot)


def test_binary_adder_barely_trained_is_not_exact():
    # the figure can fail: 300 updates are far too few to learn the carry
    _, exact = run_example("binary_adder", "exact", "--sums", "300", "--report-every", "100",
                           timeout=120)
    assert exact < 0.1


def test_binary_adder_bits_are_least_significant_first():
    adder = load_example("binary_adder")
    assert adder.bits_of(6).tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    numbers = np.arange(256)
    assert (adder.number_of(adder.bits_of(numbers)) == numbers).all()
    x = adder.as_sequences(np.array([1, 2]), np.array([3, 0]), np.float32)
    assert x.shape == (8, 2, 2) and x.dtype == np.float32
    assert x[0].tolist() == [[1, 1], [0, 0]] and x[1].tolist() == [[0, 1], [1, 0]]


# --------------------------------------------------------------- digits_rows
def _write_idx(path, array, *, type_byte=0x08):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, type_byte, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    if str(path).endswith(".gz"):
        import gzip
        data = gzip.compress(data)
    pathlib.Path(path).write_bytes(data)


def _write_tiny_mnist(directory, n=12, side=6):
    rng = np.random.default_rng(0)
    for prefix, gz in (("train", ""), ("t10k", ".gz")):  # one split plain, one gzipped
        _write_idx(directory / f"{prefix}-images-idx3-ubyte{gz}",
                   rng.integers(0, 256, (n, side, side)))
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte{gz}", rng.integers(0, 10, n))


@pytest.mark.slow
def test_digits_rows_classifies_the_small_digits(tmp_path):
    pytest.importorskip("sklearn")
    args, plot = plot_args(tmp_path)
    lines, accuracy = run_example("digits_rows", "accuracy", *args, timeout=300)
    assert accuracy >= 0.95
    assert lines[0].startswith("scikit-learn's 8 x 8 digits: 1437 training and 360 test")
    assert_png_if_plotted(args, plot)


@pytest.mark.slow
def test_digits_rows_gru_classifies_the_small_digits():
    pytest.importorskip("sklearn")
    _, accuracy = run_example("digits_rows", "accuracy", "--cell", "gru", timeout=300)
    assert accuracy >= 0.95


def test_digits_rows_one_epoch_is_not_enough():
    # the figure can fail: one epoch of a smaller model is well short of 0.95
    pytest.importorskip("sklearn")
    _, accuracy = run_example("digits_rows", "accuracy", "--epochs", "1", "--hidden", "8")
    assert accuracy < 0.95


def test_read_idx_round_trips_plain_and_gzipped_files(tmp_path):
    read_idx = load_example("digits_rows").read_idx
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    _write_idx(tmp_path / "images", images)
    _write_idx(tmp_path / "labels.gz", [7, 1, 255])
    assert read_idx(tmp_path / "images").tolist() == images.tolist()
    labels = read_idx(tmp_path / "labels.gz")
    assert labels.dtype == np.uint8 and labels.tolist() == [7, 1, 255]


def test_read_idx_rejects_malformed_files_naming_them(tmp_path):
    read_idx = load_example("digits_rows").read_idx
    _write_idx(tmp_path / "good", np.zeros((3, 2, 2)))
    good = (tmp_path / "good").read_bytes()
    cases = {
        "truncated": (good[:-1], r"says shape \(3, 2, 2\) \(28 bytes in all\), the file has 27"),
        "extra": (good + b"\0", "the file has 29 bytes"),
        "not_idx": (b"\x01" + good[1:], "not an IDX file"),
        "short_header": (good[:9], "truncated IDX header"),
        "float_type": (good[:2] + b"\x0d" + good[3:], "type 0x0d is not supported"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=message) as raised:
            read_idx(tmp_path / name)
        assert name in str(raised.value)


def test_load_mnist_reads_a_directory_of_idx_files(tmp_path):
    load_mnist = load_example("digits_rows").load_mnist
    _write_tiny_mnist(tmp_path)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path, np.float64)
    assert x_train.shape == x_test.shape == (12, 6, 6) and x_train.dtype == np.float64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert y_train.dtype == np.int64 and y_test.shape == (12,)


def test_digits_rows_runs_on_idx_files_and_reports_a_bad_one(tmp_path):
    _write_tiny_mnist(tmp_path)
    lines, accuracy = run_example("digits_rows", "accuracy", "--mnist", tmp_path, "--epochs", 2)
    assert lines[0].startswith(f"MNIST from {tmp_path}: 12 training and 12 test images, "
                               "6 steps of 6 pixels")
    assert 0.0 <= accuracy <= 1.0
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])  # a truncated download
    done = subprocess.run([sys.executable, str(EXAMPLES / "digits_rows.py"), "--mnist",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{labels}: IDX header says shape (12,)" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr


# ------------------------------------------------------- --plot without matplotlib
@pytest.mark.parametrize("name", ["sigmoid_neuron", "binary_adder", "digits_rows"])
def test_plot_without_matplotlib_is_a_one_line_error_naming_the_extra(name, tmp_path):
    # the example must say so before training
    plot = tmp_path / "curve.png"
    assert_plot_refused(run_without_matplotlib(name, "--plot", plot, timeout=60), plot)
