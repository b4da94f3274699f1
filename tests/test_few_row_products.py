"""The C kernels' paths for products with few rows, against the NumPy backend.

gemm.c runs products of few rows (a drop-in's window: d_out = dz W_hy, a
short layer's dx = G W_ih) through its unblocked path, one packed panel at
a time, and packs transposed views (W_hh^T, W_ih^T, W_hy^T) through
in-register transposes with element-wise tails. The vector files are too
small to reach full panels (inputs of at most 5 features), so these cases
are sized for them: rows on both sides of 32 and of the tile heights,
widths with full panels and a ragged edge on every ISA's panel width, and a
head wider than one k-block (KC = 256) so that a product accumulates over
k-blocks. One more case runs the opposite end: a layer whose packed W_hh^T
(12-32 MB) is beyond SPREAD_PREFETCH_BYTES, where all row tiles share the
next panel's prefetch. The reference is the NumPy backend in float64,
which shares no code with the C kernels.
"""
import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn import training as tr

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(),
                                reason="backend c not available")

GATES = {"rnn_tanh": 1, "lstm": 4, "gru": 3}
TOL = {np.float32: 1e-4, np.float64: 1e-10}


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("cell", sorted(GATES))
@pytest.mark.parametrize("T,B,I,H", [
    (1, 1, 16, 16),     # one row: the batch-1 step, one full panel
    (5, 5, 37, 21),     # 25 rows, in place; widths with ragged edges
    (4, 8, 64, 100),    # 32 rows: the last in-place size; H = 100 as min-char-rnn
    (11, 3, 33, 40),    # 33 rows: packed again
], ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_short_layer_forward_and_backward(cell, T, B, I, H, dtype, isa):
    errs = layer_errors(cell, T, B, I, H, dtype, ("x", "weight_ih", "weight_hh", "bias_ih",
                                                  "bias_hh"))
    print(cell, (T, B, I, H), dtype.__name__, isa, {k: f"{v:.1e}" for k, v in errs.items()})
    assert max(errs.values()) <= TOL[dtype], errs


def layer_errors(cell, T, B, I, H, dtype, gradients):
    """Relative errors of the C backend's output and the named gradients of
    one layer in dtype, against the NumPy backend in float64 (random
    weights at the layout's scale, seeded by the sizes)."""
    rng = np.random.default_rng(T * 1000 + B * 100 + I + H)
    G = GATES[cell]
    x = rng.standard_normal((T, B, I))
    w_ih = rng.standard_normal((G * H, I)) / np.sqrt(I)
    w_hh = rng.standard_normal((G * H, H)) / np.sqrt(H)
    b_ih, b_hh = rng.standard_normal(G * H) * 0.1, rng.standard_normal(G * H) * 0.1
    d_out = rng.standard_normal((T, B, H))
    ref = F.forward(cell, x, w_ih, w_hh, b_ih, b_hh, backend="numpy", training=True)
    ref_g = F.backward(ref, d_out)
    args = [a.astype(dtype) for a in (x, w_ih, w_hh, b_ih, b_hh)]
    res = F.forward(cell, *args, backend="c", training=True)
    g = F.backward(res, d_out.astype(dtype))
    errs = {"output": rel_err(res.output, ref.output)}
    for name in gradients:
        errs[name] = rel_err(getattr(g, name), getattr(ref_g, name))
    return errs


@pytest.mark.parametrize("O,H,T", [(300, 40, 20), (520, 100, 25), (17, 16, 32)],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_window_with_a_wide_head(O, H, T, dtype, isa):
    """One window of the sequence trainer, batch 1: the head's d_out = dz W_hy
    has T <= 32 rows and K = O, beyond one k-block for O = 300 and 520."""
    rng = np.random.default_rng(O + H + T)
    V = 23
    layout = tr.Layout("rnn_tanh", V, H, O, bias=True, head_bias=True)
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum", k1=T,
                        clip=tr.Clip("value", 5.0), optimizer=None)
    theta = layout.init(np.float64, seed=O)
    inputs = rng.integers(0, V, (T, 1))
    targets = rng.integers(0, O, (T, 1))
    ref = tr.sequence_gradients(spec, theta, inputs, targets, backend="numpy")
    got = tr.sequence_gradients(spec, theta.astype(dtype), inputs, targets, backend="c")
    err_grad = rel_err(got.grad, ref.grad)
    err_loss = abs(float(got.losses[0]) - float(ref.losses[0])) / abs(float(ref.losses[0]))
    print((O, H, T), dtype.__name__, isa, f"grad {err_grad:.1e} loss {err_loss:.1e}")
    assert err_grad <= TOL[dtype] and err_loss <= TOL[dtype]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_layer_whose_weights_leave_the_caches(cell, dtype, isa):
    """W_hh^T packed beyond SPREAD_PREFETCH_BYTES (8 MB: 12-32 MB here), where
    every full row tile of a step's product prefetches its share of the next
    panel: 17 rows are two or four full tiles and an edge on every ISA. The
    prefetch moves no values, so this holds the path to the same numbers."""
    T, B, I, H = 2, 17, 8, 1024
    threads = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)  # one task a step: the whole W_hh^T in one product
    try:
        errs = layer_errors(cell, T, B, I, H, dtype, ("x", "weight_hh", "bias_hh"))
    finally:
        fastrnn.set_num_threads(threads)
    print(cell, dtype.__name__, isa, {k: f"{v:.1e}" for k, v in errs.items()})
    assert max(errs.values()) <= TOL[dtype], errs
