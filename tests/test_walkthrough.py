"""The slide walk-through, worked by hand.

A 3x9 weight W acts on concat(x_t, h_{t-1}) with x_t in R^6 and h in R^3,
ReLU, no bias, h0 = 0. By hand:
  t=1: x=[0,1,0,1,0,1]           -> W[:, :6] x = [3, 1, 5],       h = [3, 1, 5]
  t=2: x=[0,2,1,3,0,0], h=[3,1,5] -> [5, 4, 6] + [3, 9, 6]       = [8, 9, 12]
  t=3: x=[1,1,2,1,0,0], h=[8,9,12] -> [3, 0, 6] + [8, 29, 16]    = [11, 29, 22]
All values are small integers, so every backend must reproduce them exactly
in both dtypes. PyTorch's split of W is W_ih = W[:, :6], W_hh = W[:, 6:].
"""
import numpy as np

from fastrnn import functional as F

X = np.array([[0, 1, 0, 1, 0, 1], [0, 2, 1, 3, 0, 0], [1, 1, 2, 1, 0, 0]])
W = np.array([[1, 1, 0, 1, 0, 1, 1, 0, 0],
              [0, 0, 0, 0, 1, 1, 1, 1, 1],
              [2, 1, 1, 1, 2, 3, 2, 0, 0]])
EXPECTED_H = np.array([[3, 1, 5], [8, 9, 12], [11, 29, 22]])


def test_walkthrough_forward_exact(backend, dtype):
    x = X[:, None, :].astype(dtype)
    w = W.astype(dtype)
    res = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend)
    np.testing.assert_array_equal(res.output[:, 0], EXPECTED_H)
    np.testing.assert_array_equal(res.h_n[0], EXPECTED_H[-1])


def test_walkthrough_backward_by_hand(backend, dtype):
    """Loss = sum(h_3). Every pre-activation is positive, so ReLU passes
    gradients unchanged and, by hand:
      dL/dh_3 = 1                         -> G3 = [1, 1, 1]
      dL/dh_2 = W_hh^T G3 = [4, 1, 1]     -> G2 = [4, 1, 1]
      dL/dh_1 = W_hh^T G2 = [7, 1, 1]     -> G1 = [7, 1, 1]
      dL/dh_0 = W_hh^T G1 = [10, 1, 1]
    with W_hh = W[:, 6:] = [[1,0,0],[1,1,1],[2,0,0]], so W_hh^T has rows
    [1,1,2], [0,1,0], [0,1,0].
    dW_hh = sum_t G_t h_{t-1}^T; dW_ih = sum_t G_t x_t^T.
    """
    x = X[:, None, :].astype(dtype)
    w = W.astype(dtype)
    res = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend, training=True)
    grads = F.backward(res, d_h_n=np.ones((1, 3), dtype))
    G = np.array([[7, 1, 1], [4, 1, 1], [1, 1, 1]])  # G_1, G_2, G_3
    h_prev = np.array([[0, 0, 0], [3, 1, 5], [8, 9, 12]])
    np.testing.assert_array_equal(grads.h0[0], [10, 1, 1])
    np.testing.assert_array_equal(grads.weight_hh, sum(np.outer(G[t], h_prev[t]) for t in range(3)))
    np.testing.assert_array_equal(grads.weight_ih, sum(np.outer(G[t], X[t]) for t in range(3)))
    np.testing.assert_array_equal(grads.x[:, 0], G @ W[:, :6])
