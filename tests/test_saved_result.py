"""backward reads what forward saved by forward's sizes, so it must refuse a
result whose arrays were replaced (issue 9).

fastrnn 0.1.0 trusted ``result.output``: replaced by an array of another
shape, the C backward read past it (SIGSEGV at T, B, H = 1000, 64, 256; NaN
gradients at smaller sizes), and the NumPy backend accepted a float32 output
on a float64 run. The large case is run in a subprocess so that a regression
fails the test instead of killing the run.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastrnn import functional as F

from conftest import random_problem


def _trained(cell, backend, dtype=np.float64, T=4, B=2, I=3, H=5):
    p = random_problem(cell, T, B, I, H, dtype)
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True)
    return p, res


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("replacement", [
    pytest.param(lambda out: out[:, :1].copy(), id="smaller"),
    pytest.param(lambda out: np.zeros((out.shape[0] * 4,) + out.shape[1:]), id="larger"),
    pytest.param(lambda out: out.astype(np.float32), id="float32"),
    pytest.param(lambda out: out.copy(), id="same-shape-copy"),
])
def test_replaced_output_is_refused(backend, cell, replacement):
    p, res = _trained(cell, backend)
    res.output = replacement(res.output)
    with pytest.raises(ValueError, match="result.output is not the array forward returned"):
        F.backward(res, p["d_output"], backend=backend)


@pytest.mark.parametrize("name,replacement", [
    ("workspace", lambda a: a[:1].copy()),
    ("x", lambda a: a[:, :1].copy()),
    ("h0", lambda a: a.astype(np.float32)),
    ("weight_hh", lambda a: np.asfortranarray(a)),
    ("bias_ih", lambda a: None),
])
def test_changed_saved_arrays_are_refused(backend, name, replacement):
    p, res = _trained("lstm", backend)
    setattr(res.saved, name, replacement(getattr(res.saved, name)))
    with pytest.raises(ValueError, match=f"result.saved.{name}"):
        F.backward(res, p["d_output"], backend=backend)


def test_untouched_result_still_differentiates(backend):
    """The checks do not reject the ordinary path (including a caller's out=)."""
    p = random_problem("gru", 3, 2, 3, 4, np.float64)
    out = np.empty((3, 2, 4))
    res = F.forward("gru", p["x"], p["weight_ih"], p["weight_hh"], out=out, backend=backend,
                    training=True)
    assert res.output is out
    g = F.backward(res, p["d_output"], backend=backend)
    assert g.x.shape == (3, 2, 3) and np.all(np.isfinite(g.weight_hh))


def test_large_replaced_output_fails_cleanly_in_c():
    """0.1.0: SIGSEGV. Now: a ValueError, in a child process so a crash shows."""
    code = textwrap.dedent("""
        import numpy as np
        from fastrnn import functional as F
        T, B, I, H = 1000, 64, 8, 256
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I), dtype=np.float32)
        w_ih = rng.uniform(-0.05, 0.05, (H, I)).astype(np.float32)
        w_hh = rng.uniform(-0.05, 0.05, (H, H)).astype(np.float32)
        res = F.forward("rnn_tanh", x, w_ih, w_hh, backend="c", training=True)
        res.output = np.zeros((1, 1, H), np.float32)
        try:
            F.backward(res, np.ones((T, B, H), np.float32), backend="c")
        except ValueError as exc:
            print("refused:", exc)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused: result.output is not the array forward returned" in run.stdout
