"""Bad input beyond the table: properties the bad-input matrix does not state.

The tabular cases (wrong rank, shape, dtype, type; non-contiguous, read-only
and aliased arrays; T = 0 and B = 0; caller-provided outputs; unknown cells;
states given to cells that have none) live in test_bad_input_matrix.py,
generated from one description of every public entry point. What stays here
is what a table row cannot say: which rows and steps a NaN may reach, that
saturating gates stay finite, and that a caller's output array is the one
returned.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

from conftest import random_problem


def test_caller_output_array_is_the_result(backend):
    p = random_problem("lstm", 3, 2, 4, 5, np.float64)
    buf = np.empty((3, 2, 5))
    res = F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    backend=backend, out=buf)
    assert res.output is buf


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_nan_propagates_instead_of_crashing(cell, backend):
    p = random_problem(cell, 4, 2, 3, 4, np.float64)
    p["x"][1, 0, 2] = np.nan
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True)
    assert np.isfinite(res.output[0]).all()          # before the NaN: untouched
    assert np.isnan(res.output[1, 0]).any()          # the batch row that saw it
    assert np.isfinite(res.output[:, 1]).all()       # the other batch row: untouched
    grads = F.backward(res, p["d_output"])
    assert np.isnan(grads.weight_ih).any()


def test_finite_results_are_unaffected_by_large_inputs(backend):
    """Saturating gates must give saturated, finite values, not NaN/inf."""
    p = random_problem("lstm", 3, 2, 3, 4, np.float32)
    p["x"] *= 1e30
    res = F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"],
                    p["bias_hh"], backend=backend)
    assert np.isfinite(res.output).all() and np.abs(res.output).max() <= 1
