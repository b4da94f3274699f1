"""The compiled backend: fastrnn._core (C kernels, GIL released).

The contract's functions map one to one onto _core's (which check every
array against the sizes they pass to C); this module picks the GEMM ISA
once, at import, from FASTRNN_ISA (``auto`` by default, ``baseline`` forces
the portable kernels, which the tests use) and hands the TrainerConfig to the C
trainer's configuration. It is not where arguments are explained to users:
fastrnn.functional and fastrnn.training do that first.
"""
from __future__ import annotations

import os

from .. import _core

ISA = _core.select_isa(os.environ.get("FASTRNN_ISA", "auto"))

forward = _core.forward
backward = _core.backward
step = _core.step
forward_proj = _core.forward_proj
backward_proj = _core.backward_proj
active_isa = _core.active_isa
select_isa = _core.select_isa


def create_stream(cell, weight_ih, weight_hh, bias_ih, bias_hh, batch, h0, c0):
    """The C core's own stream (fastrnn.stream.create has validated the
    arguments): the weights packed once for the active kernel table."""
    return _core.Stream(cell, weight_ih, weight_hh, bias_ih, bias_hh, batch, h0, c0)


def train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets=None):
    """The training contract of fastrnn.training on the C trainer (train.c).

    Returns ``(step, stopped)``: the new optimizer step count, and None or the
    index of the window whose loss or gradient was not finite; that window
    stopped the run before its update, leaving theta, m, v, step and grad as
    the previous window left them and h, c as passed in (docs/TRAINING.md).
    """
    import numpy as np

    dtype = theta.dtype
    empty3 = np.zeros((0, 0, 0), dtype)
    empty_i2 = np.zeros((0, 0), np.int64)
    x = empty3 if config.index_input else inputs
    idx = inputs if config.index_input else empty_i2
    if config.head == "softmax_ce":
        target_idx, target = targets.reshape(-1), np.zeros(0, dtype)
    else:
        target_idx, target = np.zeros(0, np.int64), targets.reshape(-1)
    c_arr = c if c is not None else np.zeros((0, 0), dtype)
    m = m if m.size else np.zeros(0, dtype)
    v = v if v.size else np.zeros(0, dtype)
    return _core.train(config, theta, grad, m, v, int(step), x, idx, target_idx, target, h,
                       c_arr, losses, None if resets is None else resets.view(np.uint8))
