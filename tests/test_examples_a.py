"""The tutorial examples examples/sigmoid_neuron.py, binary_adder.py and
digits_rows.py, each run as a user runs it (a subprocess) and held to the
headline figure issue 14 demands of it on its last line.

What this is not: a test of the layers, losses or optimizers themselves
(their own tests do that); only of whether each example's application
learns what it claims to, and of the helpers an example defines.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _example_module(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name, *args, figure, timeout=300):
    """Run examples/NAME.py; returns its output lines and the value of the
    ``figure: value`` it must print last."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    match = re.fullmatch(rf"{figure}: (\d+(?:\.\d*)?)", lines[-1])
    assert match, f"the last line is not '{figure}: <value>': {lines[-1]!r}"
    return lines, float(match.group(1))


def _has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


# ------------------------------------------------------------ sigmoid_neuron
def test_sigmoid_neuron_predicts_every_step_on_the_right_side(tmp_path):
    plot = tmp_path / "curve.png"
    args = ("--plot", str(plot)) if _has_matplotlib() else ()
    lines, correct = _run("sigmoid_neuron", *args, figure="correct", timeout=60)
    assert correct == 1.0
    rows = [line.split() for line in lines if re.fullmatch(r"\s*[01]\s+[01]\s+\d\.\d+", line)]
    assert len(rows) == 8  # one row per predicted step of 001001001
    if args:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sigmoid_neuron_untrained_is_not_counted_correct():
    # the figure can fail: after one pass the neuron has learnt nothing
    _, correct = _run("sigmoid_neuron", "--passes", "1", figure="correct", timeout=60)
    assert correct < 1.0


def test_sigmoid_neuron_fraction_correct_uses_both_thresholds():
    fraction_correct = _example_module("sigmoid_neuron").fraction_correct
    next_bits = np.array([0, 0, 1, 0])
    assert fraction_correct(np.array([0.29, 0.0, 0.91, 0.1]), next_bits) == 1.0
    assert fraction_correct(np.array([0.31, 0.0, 0.89, 0.1]), next_bits) == 0.5


# -------------------------------------------------------------- binary_adder
def test_binary_adder_adds_every_pair_exactly(tmp_path):
    plot = tmp_path / "curve.png"
    args = ("--plot", str(plot)) if _has_matplotlib() else ()
    lines, exact = _run("binary_adder", *args, figure="exact", timeout=120)
    assert exact == 1.0
    worked = [line for line in lines if re.search(r"\d+ \+ \d+ = \d+", line)]
    assert len(worked) == 10 and worked[-1].endswith("(right)")
    if args:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_binary_adder_barely_trained_is_not_exact():
    # the figure can fail: 300 updates are far too few to learn the carry
    _, exact = _run("binary_adder", "--sums", "300", "--report-every", "100", figure="exact",
                    timeout=120)
    assert exact < 0.1


def test_binary_adder_bits_are_least_significant_first():
    adder = _example_module("binary_adder")
    assert adder.bits_of(6).tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    numbers = np.arange(256)
    assert (adder.number_of(adder.bits_of(numbers)) == numbers).all()
    x = adder.as_sequences(np.array([1, 2]), np.array([3, 0]), np.float32)
    assert x.shape == (8, 2, 2) and x.dtype == np.float32
    assert x[0].tolist() == [[1, 1], [0, 0]] and x[1].tolist() == [[0, 1], [1, 0]]
