"""The compiled backend: fastrnn._core (C kernels, GIL released).

The contract's functions map one to one onto _core's (which check every
array against the sizes they pass to C); this module picks the GEMM ISA
once, at import, from FASTRNN_ISA (``auto`` by default, ``baseline`` forces
the portable kernels, which the tests use) and maps a TrainSpec onto the C
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
active_isa = _core.active_isa
select_isa = _core.select_isa


def train(spec, theta, grad, m, v, step, inputs, targets, h, c, losses):
    """The training contract of fastrnn.training on the C trainer (train.c).

    Returns ``(step, stopped)``: the new optimizer step count, and None or the
    index of the window whose loss or gradient was not finite; that window
    stopped the run before its update, leaving theta, m, v, step and grad as
    the previous window left them and h, c as passed in (docs/TRAINING.md).
    """
    import numpy as np

    T, B = inputs.shape[:2]
    # lengths beyond T clamped (the same gradients) so they fit the C
    # integers; fit_sequence did this already, train.c does it again
    spec = spec.for_length(T)
    lay, dtype = spec.layout, theta.dtype
    opt = spec.optimizer
    depth = -1 if spec.depth is None else spec.depth
    k1, k2 = spec.k1, spec.window
    config = dict(
        cell=lay.cell, T=T, B=B, In=lay.input_size, H=lay.hidden_size, O=lay.output_size,
        has_bias=lay.bias, has_head_bias=lay.head_bias, index_input=spec.index_input,
        many_to_one=spec.many_to_one, reduce_mean=spec.reduction == "mean", head=spec.head,
        k1=k1, k2=k2, depth=depth,
        clip=spec.clip.kind, clip_value=float(spec.clip.value),
        opt=None if opt is None else opt.kind, lr=float(getattr(opt, "lr", 0.0)),
        momentum=float(getattr(opt, "momentum", 0.0)), alpha=float(getattr(opt, "alpha", 0.0)),
        beta1=float(getattr(opt, "beta1", 0.0)), beta2=float(getattr(opt, "beta2", 0.0)),
        eps=float(getattr(opt, "eps", 0.0)), nesterov=bool(getattr(opt, "nesterov", False)),
    )
    empty3 = np.zeros((0, 0, 0), dtype)
    empty_i2 = np.zeros((0, 0), np.int64)
    x = empty3 if spec.index_input else inputs
    idx = inputs if spec.index_input else empty_i2
    if spec.head == "softmax_ce":
        target_idx, target = targets.reshape(-1), np.zeros(0, dtype)
    else:
        target_idx, target = np.zeros(0, np.int64), targets.reshape(-1)
    c_arr = c if c is not None else np.zeros((0, 0), dtype)
    m = m if m.size else np.zeros(0, dtype)
    v = v if v.size else np.zeros(0, dtype)
    return _core.train(config, theta, grad, m, v, int(step), x, idx, target_idx, target, h,
                       c_arr, losses)
