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

import numpy as np

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


# The arrays a configuration does not use, passed empty (the trainer never
# writes a size-0 array, so one set per dtype serves every call and thread).
_EMPTY = {np.dtype(dt): (np.zeros(0, dt), np.zeros((0, 0), dt), np.zeros((0, 0, 0), dt))
          for dt in (np.float32, np.float64)}
_EMPTY_I1, _EMPTY_I2 = np.zeros(0, np.int64), np.zeros((0, 0), np.int64)


def train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets=None):
    """The training contract of fastrnn.training on the C trainer (train.c).

    Returns ``(step, stopped)``: the new optimizer step count, and None or the
    index of the window whose loss or gradient was not finite; that window
    stopped the run before its update, leaving theta, m, v, step and grad as
    the previous window left them and h, c as passed in (docs/TRAINING.md).
    """
    empty1, empty2, empty3 = _EMPTY[theta.dtype]
    x = empty3 if config.index_input else inputs
    idx = inputs if config.index_input else _EMPTY_I2
    if config.head == "softmax_ce":
        target_idx, target = targets.reshape(-1), empty1
    else:
        target_idx, target = _EMPTY_I1, targets.reshape(-1)
    c_arr = c if c is not None else empty2
    m = m if m.size else empty1
    v = v if v.size else empty1
    return _core.train(config, theta, grad, m, v, int(step), x, idx, target_idx, target, h,
                       c_arr, losses, None if resets is None else resets.view(np.uint8))
