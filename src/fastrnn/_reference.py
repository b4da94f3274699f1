"""Hand-derived reference data, shared by the tests and ``fastrnn check``.

Kept in the package (not in tests/) so that the installed self-check and
the test-suite compare against the very same numbers, worked by hand and
written down once. Nothing here is computed by fastrnn.

The slide walk-through: a 3x9 weight W acts on concat(x_t, h_{t-1}) with
x_t in R^6 and h in R^3, ReLU, no bias, h0 = 0. PyTorch's split of W is
W_ih = W[:, :6], W_hh = W[:, 6:]. By hand:

  t=1: x=[0,1,0,1,0,1]            -> W_ih x = [3, 1, 5],              h = [3, 1, 5]
  t=2: x=[0,2,1,3,0,0], h=[3,1,5]  -> [5, 4, 6] + W_hh h = [3, 9, 6]   h = [8, 9, 12]
  t=3: x=[1,1,2,1,0,0], h=[8,9,12] -> [3, 0, 6] + [8, 29, 16]          h = [11, 29, 22]

Backward of the loss sum(h_3): every pre-activation is positive, so ReLU
passes gradients unchanged; with W_hh^T rows [1,1,2], [0,1,0], [0,1,0]:

  dL/dh_3 = 1                     -> G3 = [1, 1, 1]
  dL/dh_2 = W_hh^T G3 = [4, 1, 1] -> G2 = [4, 1, 1]
  dL/dh_1 = W_hh^T G2 = [7, 1, 1] -> G1 = [7, 1, 1]
  dL/dh_0 = W_hh^T G1 = [10, 1, 1]

All values are small integers, exact in float32 and float64.
"""
WALKTHROUGH_X = ((0, 1, 0, 1, 0, 1), (0, 2, 1, 3, 0, 0), (1, 1, 2, 1, 0, 0))
WALKTHROUGH_W = ((1, 1, 0, 1, 0, 1, 1, 0, 0),
                 (0, 0, 0, 0, 1, 1, 1, 1, 1),
                 (2, 1, 1, 1, 2, 3, 2, 0, 0))
WALKTHROUGH_H = ((3, 1, 5), (8, 9, 12), (11, 29, 22))       # h_1, h_2, h_3
WALKTHROUGH_GATE_GRADS = ((7, 1, 1), (4, 1, 1), (1, 1, 1))  # G_1, G_2, G_3
WALKTHROUGH_DH0 = (10, 1, 1)
