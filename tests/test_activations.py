"""Accuracy of the C kernels' vectorised sigmoid and tanh, in ulps.

The reference is libm (NumPy's tanh/exp) evaluated in float64, which is
within one ulp of the truth; for float32 it is rounded once to float32, so
it is the correctly rounded float32 result in all but rare ties. Each ISA's
kernels this CPU can run are checked over a dense grid, tiny arguments
(where 1 - 2/(e^2x + 1) would lose everything to cancellation), the
saturation region, and IEEE specials.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(), reason="no compiled core")

MAX_ULP = 4


def grid(dtype):
    dense = np.linspace(-30, 30, 200_001)
    tiny = np.geomspace(1e-30 if dtype == np.float32 else 1e-300, 1e-2, 2_001)
    return np.concatenate([dense, tiny, -tiny, [0.0, -0.0]]).astype(dtype)


def reference(name, x):
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        ref = np.tanh(x64) if name == "tanh" else 1 / (1 + np.exp(-x64))
    if x.dtype == np.float64:
        # float64 sigmoid: 1/(1+exp(-x)) in float64 is itself ~1-2 ulp; for
        # x < 0 use the form without the large-ish cancellation-free path.
        if name == "sigmoid":
            e = np.exp(-np.abs(x64))
            ref = np.where(x64 >= 0, 1 / (1 + e), e / (1 + e))
    return ref.astype(x.dtype)


@pytest.fixture(params=["baseline", "avx2", "avx512"])
def isa(request):
    from fastrnn.backends import c
    before = c.active_isa()
    if c.select_isa(request.param) != request.param:
        c.select_isa(before)
        pytest.skip(f"no {request.param} kernels on this CPU or build")
    yield request.param
    c.select_isa(before)


def run(name, x):
    from fastrnn import _core
    y = np.empty_like(x)
    _core._activation(name, x, y)
    return y


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_ulp_error_against_libm(name, dtype, isa):
    x = grid(dtype)
    got, want = run(name, x), reference(name, x)
    # sigmoid far left: the kernel clamps exp's argument to stay normal, so
    # results below the smallest normal are only close in absolute terms.
    normal = np.abs(want) >= np.finfo(dtype).tiny
    assert np.all(np.abs(got[~normal] - want[~normal]) <= 2 * np.finfo(dtype).tiny)
    ulps = np.abs(got[normal] - want[normal]) / np.spacing(np.abs(want[normal]))
    worst = int(np.argmax(ulps))
    print(f"\n{name} {dtype.name} {isa}: max {ulps[worst]:.2f} ulp at x={x[normal][worst]!r}")
    assert ulps[worst] <= MAX_ULP


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_specials(name, dtype, isa):
    x = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30, 0.0, -0.0], dtype)
    got = run(name, x)
    if name == "tanh":
        expected = [1, -1, np.nan, 1, -1, 0, 0]
    else:
        expected = [1, 0, np.nan, 1, 0, 0.5, 0.5]
    np.testing.assert_allclose(got, np.array(expected, dtype), atol=2 * np.finfo(dtype).tiny)
    if name == "tanh":
        assert np.signbit(got[6]), "tanh(-0.0) must be -0.0"
