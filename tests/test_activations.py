"""Accuracy of the C kernels' vectorised sigmoid, tanh and exp, in ulps.

The reference is libm (NumPy's tanh/exp) evaluated in float64, which is
within one ulp of the truth; for float32 it is rounded once to float32, so
it is the correctly rounded float32 result in all but rare ties. Each ISA's
kernels this CPU can run are checked over a dense grid, tiny arguments
(where 1 - 2/(e^2x + 1) would lose everything to cancellation), the
saturation region, and IEEE specials.

Far left, exp(x) and sigmoid(x) ~ exp(x) leave the normal numbers (below
about -87.3 in float32, -708.4 in float64): there they must fall through
the subnormals to 0 like the true value, monotonically, instead of stopping
at the smallest normal (~1e-38 / ~1e-308) as they once did. The reference
there is math.exp in float64 for float32 (the true value to 1e-16 relative)
and NumPy's exp in long double for float64 (x86's 80-bit format reaches
1e-4951).
"""
from __future__ import annotations

import math

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


def run(name, x):
    from fastrnn import _core
    y = np.empty_like(x)
    _core._activation(name, x, y)
    return y


def every_float32(lo, hi):
    """Every float32 in [lo, hi], lo < hi < 0, ascending."""
    a, b = np.float32(hi).view(np.int32), np.float32(lo).view(np.int32)  # negative: reversed
    return np.arange(a, b + 1, dtype=np.int32).view(np.float32)[::-1].copy()


def exact(name, x):
    """exp(x) or sigmoid(x), x < 0, well beyond the precision of x.dtype: in
    float64 for float32 x (math.exp per element), in long double for float64
    x; returned in that precision."""
    if x.dtype == np.float32:
        e = np.array([math.exp(float(v)) for v in x])
    else:
        if np.finfo(np.longdouble).minexp >= np.finfo(np.float64).minexp:
            pytest.skip("long double has no wider exponent range than double here")
        e = np.exp(x.astype(np.longdouble))
    return e if name == "exp" else e / (1 + e)


# The subnormal tails: from well below the point where the true value is
# half the least subnormal (it must round to 0) to where it is normal again.
TAIL = {np.dtype(np.float32): (-105.0, -86.0), np.dtype(np.float64): (-746.5, -707.0)}


def tail_grid(dtype):
    lo, hi = TAIL[np.dtype(dtype)]
    if np.dtype(dtype) == np.float32:
        return every_float32(lo, hi)  # about 2.5 million values
    return np.linspace(lo, hi, 400_001)


@pytest.mark.parametrize("name", ["exp", "sigmoid"])
def test_far_left_falls_through_the_subnormals(name, dtype, isa):
    """The smallest normal is not a floor: results follow the true value
    down through the subnormals, within one unit of the subnormal spacing
    (the spacing there is that of the smallest normals, so this is the
    normal range's ulp bound), to 0 once it is below half the least
    subnormal. Subsampled for the per-element float64 reference."""
    x = tail_grid(dtype)[::7].copy()
    got, want = run(name, x), exact(name, x)
    unit = np.finfo(dtype).smallest_subnormal
    tiny = np.finfo(dtype).tiny
    sub = want < tiny
    assert sub.sum() > 0.4 * x.size
    err = np.abs(got[sub].astype(want.dtype) - want[sub]) / unit
    worst = int(np.argmax(err))
    print(f"\n{name} {dtype.name} {isa}: subnormal results within {float(err[worst]):.3f} "
          f"of the spacing (worst at x={x[sub][worst]!r})")
    assert err[worst] <= 1.0
    # where the truth is well below half the least subnormal, 0 exactly
    assert np.all(got[want < unit / 4] == 0)
    assert np.all(got[x < TAIL[dtype][0] + 0.5] == 0)
    # just above the boundary the old kernels returned ~tiny: now far below it
    probe = np.array([TAIL[dtype][1] - 10], dtype)
    assert 0 < run(name, probe)[0] < tiny / 1000


@pytest.mark.parametrize("name", ["exp", "sigmoid"])
def test_far_left_is_monotone(name, dtype, isa):
    """Non-decreasing across the whole tail, including the step from the
    normal numbers into the subnormals (float32: every representable value)."""
    x = tail_grid(dtype)
    y = run(name, x)
    steps = np.diff(y)
    assert np.all(steps >= 0), f"decreases at x = {x[:-1][steps < 0][:5]}"
    assert y[0] == 0 and y[-1] >= np.finfo(dtype).tiny


def test_exp_kernel_over_its_whole_range(dtype, isa):
    """The softmax head's exp(x), x <= 0, against the reference over the
    normal range (the same ulp bound as sigmoid and tanh) and at the ends."""
    lo = -87.0 if dtype == np.float32 else -708.0
    x = np.concatenate([np.linspace(lo, 0, 200_001), -np.geomspace(1e-30, 1, 2_001)]).astype(dtype)
    got = run("exp", x)
    with np.errstate(under="ignore"):
        want = np.exp(x.astype(np.float64)).astype(dtype)
    ulps = np.abs(got - want) / np.spacing(want)
    assert ulps.max() <= MAX_ULP
    ends = run("exp", np.array([0.0, -0.0, -np.inf, np.nan, -1e30], dtype))
    assert ends[0] == 1 and ends[1] == 1 and ends[2] == 0 and np.isnan(ends[3]) and ends[4] == 0


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_ulp_error_against_libm(name, dtype, isa):
    x = grid(dtype)
    got, want = run(name, x), reference(name, x)
    # results below the smallest normal (none on this grid's range; the
    # subnormal tail has tests of its own below) are bounded absolutely
    normal = np.abs(want) >= np.finfo(dtype).tiny
    assert np.all(np.abs(got[~normal] - want[~normal]) <= np.finfo(dtype).smallest_subnormal)
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
