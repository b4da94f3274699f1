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
    import numpy as np

    fraction_correct = _example_module("sigmoid_neuron").fraction_correct
    next_bits = np.array([0, 0, 1, 0])
    assert fraction_correct(np.array([0.29, 0.0, 0.91, 0.1]), next_bits) == 1.0
    assert fraction_correct(np.array([0.31, 0.0, 0.89, 0.1]), next_bits) == 0.5
