"""The slide walk-through, worked by hand (fastrnn/_reference.py has the
derivation and the numbers, which `fastrnn check` reads too).

All values are small integers, so every backend must reproduce them exactly
in both dtypes.
"""
import numpy as np

from fastrnn import _reference as ref
from fastrnn import functional as F

X = np.array(ref.WALKTHROUGH_X)
W = np.array(ref.WALKTHROUGH_W)
EXPECTED_H = np.array(ref.WALKTHROUGH_H)


def test_walkthrough_forward_exact(backend, dtype):
    x = X[:, None, :].astype(dtype)
    w = W.astype(dtype)
    res = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend)
    np.testing.assert_array_equal(res.output[:, 0], EXPECTED_H)
    np.testing.assert_array_equal(res.h_n[0], EXPECTED_H[-1])


def test_walkthrough_backward_by_hand(backend, dtype):
    """Loss = sum(h_3): the gate gradients G_t and dL/dh_0 as worked by hand
    in fastrnn/_reference.py; then dW_hh = sum_t G_t h_{t-1}^T,
    dW_ih = sum_t G_t x_t^T and dx_t = G_t W_ih."""
    x = X[:, None, :].astype(dtype)
    w = W.astype(dtype)
    res = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend, training=True)
    grads = F.backward(res, d_h_n=np.ones((1, 3), dtype))
    G = np.array(ref.WALKTHROUGH_GATE_GRADS)  # G_1, G_2, G_3
    h_prev = np.concatenate([np.zeros((1, 3), int), EXPECTED_H[:-1]])
    np.testing.assert_array_equal(grads.h0[0], ref.WALKTHROUGH_DH0)
    np.testing.assert_array_equal(grads.weight_hh, sum(np.outer(G[t], h_prev[t]) for t in range(3)))
    np.testing.assert_array_equal(grads.weight_ih, sum(np.outer(G[t], X[t]) for t in range(3)))
    np.testing.assert_array_equal(grads.x[:, 0], G @ W[:, :6])
