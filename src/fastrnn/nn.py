"""A dense layer and the training losses, on NumPy arrays, with torch.nn's contract.

``Linear`` is torch.nn.Linear (parameters ``weight`` (out, in) and ``bias``
(out,), torch's initialisation, any leading dimensions) with an explicit
``backward``; ``cross_entropy``, ``binary_cross_entropy_with_logits`` and
``mse_loss`` are torch.nn.functional's, each returning ``(loss, grad)``: the
loss and its gradient with respect to the input. Together with the recurrent
layers and fastrnn.optim they are what a classifier or an encoder-decoder
needs to train without another framework.

What this module deliberately is not: an autograd system (``backward`` is
called by hand, with the input kept by the caller), a compiled kernel (NumPy's
BLAS matmul already is one), or the whole of torch.nn.functional: class
weights (``weight=``), probability targets for cross_entropy and broadcasting
targets are not implemented; each is refused with a clear error rather than
silently computed differently.

Numerics: everything runs in the input's dtype (float32 stays float32, never
silently cast), except that the reductions accumulate in float64, so a mean
or sum over many elements loses no more than one rounding to the input
dtype; the returned float loss is that float64 number. Log-softmax subtracts
each row's maximum and the binary loss uses the stable form
max(z, 0) - z*y + log1p(exp(-|z|)), so logits of +-100 (or more) give finite
losses and gradients in both dtypes.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from . import _validate as v

__all__ = ["Linear", "LinearGradients", "cross_entropy", "binary_cross_entropy_with_logits",
           "mse_loss"]

REDUCTIONS = ("mean", "sum", "none")


def _dtype(value) -> np.dtype:
    """A layer's dtype argument: float32 or float64, nothing else."""
    return v.float_dtype("dtype", value)


def _float_array(name: str, value, dtype: Optional[np.dtype] = None,
                 dtype_of: str = "x") -> np.ndarray:
    """A float32/float64 array of any rank (as_input's rules: no silent cast,
    non-contiguous copied); ``dtype`` that of ``dtype_of`` if given."""
    if value is None:
        raise TypeError(f"{name} is required")
    try:
        ndim = np.ndim(value)
    except (ValueError, TypeError):
        ndim = 0  # ragged nested lists: as_input's conversion says why
    return v.as_input(name, value, ndim, dtype, dtype_of)


def _reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _sum64(values: np.ndarray) -> float:
    """A sum accumulated in float64 (see the module docstring)."""
    return float(np.sum(values, dtype=np.float64))


# -- Linear -------------------------------------------------------------------

class LinearGradients(NamedTuple):
    """What :meth:`Linear.backward` returns.

    x: dL/dx, the shape of the forward input. params: ``{"weight": dL/dW,
    "bias": dL/db}`` under torch's names ("bias" absent for ``bias=False``),
    ready for ``optimizer.step(grads.params)``.
    """

    x: np.ndarray
    params: dict


class Linear:
    """torch.nn.Linear on NumPy arrays: y = x W^T + b.

    Parameters: ``weight`` (out_features, in_features) and ``bias``
    (out_features,) (None with ``bias=False``), laid out as torch's. Their
    initialisation is torch's: kaiming_uniform(a=sqrt(5)) for the weight,
    which is U(-1/sqrt(in_features), 1/sqrt(in_features)), and the same
    bound for the bias; drawn in float64 from ``np.random.default_rng(seed)``
    (weight first, then bias) and cast to ``dtype``, as fastrnn's recurrent
    layers do. The values are not torch's (a different generator); the
    distribution is.

    ``forward(x)``: x (..., in_features) -> (..., out_features), any number
    of leading dimensions (at least one dimension in all), like torch.
    ``backward(x, d_output)``, with G = d_output flattened to (M, out) and X
    = x flattened to (M, in) over the leading dimensions::

        dL/dx = G W            (x's shape)
        dL/dW = G^T X          (out, in)
        dL/db = sum_m G[m]     (out,)

    Not an autograd module: the caller keeps ``x`` for ``backward``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, seed: Optional[int] = None):
        in_features = v.integer("in_features", in_features, 1)
        out_features = v.integer("out_features", out_features, 1)
        bias = v.boolean("bias", bias)
        dtype = _dtype(dtype)
        seed = v.seed("seed", seed)
        # sizes no array can have are refused before anything is drawn
        v.element_count(f"weight ({out_features}, {in_features})", out_features, in_features)
        self.in_features, self.out_features, self.dtype = in_features, out_features, dtype
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform(a=sqrt(5)) reduces to this
        self.weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.bias = rng.uniform(-bound, bound, out_features).astype(dtype) if bias else None

    # -- parameters ------------------------------------------------------------
    def named_parameters(self) -> dict:
        """``{"weight": ..., "bias": ...}`` ("bias" absent when there is none):
        the layer's own arrays, so an optimizer that updates them in place
        updates the layer."""
        params = {"weight": self.weight}
        if self.bias is not None:
            params["bias"] = self.bias
        return params

    def state_dict(self) -> dict:
        """torch.nn.Linear's keys ("weight", "bias") -> copies of the arrays."""
        return {name: array.copy() for name, array in self.named_parameters().items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Load torch's keys; values are arrays, array-likes or torch tensors.

        Every value is shape-checked and converted to this layer's dtype (an
        explicit, requested conversion; integer values are accepted, booleans,
        complex and non-numeric values are not). Nothing is written unless
        every value is valid; the values are copied into the existing arrays,
        so references from named_parameters() (an optimizer's) stay valid.
        strict: unexpected keys are a KeyError, as in torch.
        """
        if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
            raise TypeError(f"state must be a dict (a state_dict), got {type(state).__name__}")
        strict = v.boolean("strict", strict)
        current = self.named_parameters()
        missing = [name for name in current if name not in state]
        if missing:
            raise KeyError(f"state is missing {missing} (expected keys {list(current)})")
        unexpected = [key for key in state.keys() if key not in current]
        if strict and unexpected:
            why = "; this layer has no bias" if "bias" in unexpected else ""
            raise KeyError(f"state has unexpected keys {unexpected} (expected keys "
                           f"{list(current)}{why})")
        converted = {}
        for name, target in current.items():
            value = state[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            try:
                array = np.asarray(value)
            except (ValueError, TypeError) as exc:
                raise TypeError(f"state[{name!r}] must be a numeric array: {exc}") from None
            if array.dtype.kind not in "iuf":
                raise TypeError(f"state[{name!r}] must be a real numeric array, got dtype "
                                f"{array.dtype}")
            if array.shape != target.shape:
                raise ValueError(f"state[{name!r}] must have shape {target.shape}, got "
                                 f"{array.shape}")
            converted[name] = array.astype(self.dtype, copy=False)
        for name, array in converted.items():
            np.copyto(current[name], array)

    @classmethod
    def from_torch(cls, module, *, dtype=None) -> "Linear":
        """A Linear with a torch.nn.Linear's sizes and parameters; dtype:
        the module's (float64 stays float64, anything else becomes float32)
        unless given."""
        for attr in ("in_features", "out_features", "weight"):
            if not hasattr(module, attr):
                raise TypeError(f"module must be a torch.nn.Linear, got {type(module).__name__} "
                                f"(no attribute {attr!r})")
        if dtype is None:
            dtype = np.float64 if str(module.weight.dtype) == "torch.float64" else np.float32
        layer = cls(module.in_features, module.out_features, bias=module.bias is not None,
                    dtype=dtype, seed=0)
        layer.load_state_dict(module.state_dict())
        return layer

    # -- computation -------------------------------------------------------------
    def _input(self, x) -> np.ndarray:
        x = _float_array("x", x, self.dtype, "the layer")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., in_features) = (..., {self.in_features}), "
                             f"got {x.shape}")
        return x

    def forward(self, x) -> np.ndarray:
        """x (..., in_features) -> y = x W^T + b, shape (..., out_features)."""
        x = self._input(x)
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias
        return y

    __call__ = forward

    def backward(self, x, d_output) -> LinearGradients:
        """Gradients for the input ``x`` of a forward call and the upstream
        gradient ``d_output`` = dL/dy (x's leading shape, out_features):
        ``.x`` = d_output W, ``.params["weight"]`` = sum over every leading
        index of d_output^T x, ``.params["bias"]`` = the sum of d_output."""
        x = self._input(x)
        d_output = _float_array("d_output", d_output, self.dtype, "the layer")
        expected = x.shape[:-1] + (self.out_features,)
        if d_output.shape != expected:
            raise ValueError(f"d_output must have shape x.shape[:-1] + (out_features,) = "
                             f"{expected}, got {d_output.shape}")
        dx = d_output @ self.weight
        g2 = d_output.reshape(-1, self.out_features)
        params = {"weight": g2.T @ x.reshape(-1, self.in_features)}
        if self.bias is not None:
            params["bias"] = g2.sum(axis=0)
        return LinearGradients(dx, params)

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.dtype.name})")


# -- losses -------------------------------------------------------------------

def _matching_target(name: str, target, input_: np.ndarray, input_name: str) -> np.ndarray:
    target = _float_array(name, target, input_.dtype, input_name)
    if target.shape != input_.shape:
        raise ValueError(f"{name} must have the shape of {input_name}, {input_.shape}, got "
                         f"{target.shape} (targets are not broadcast)")
    return target


def cross_entropy(logits, target, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """torch.nn.functional.cross_entropy with class-index targets: (loss, grad).

    logits: (N, C), unbatched (C,), or (N, C, d1, ...) as torch (the class
    dimension second); target: integers of logits' shape without the class
    dimension ((N,), (), (N, d1, ...)), each in [0, C) or equal to
    ``ignore_index``. With p = softmax(z) along the classes (computed as
    exp(z - max z - log sum exp(z - max z))) and q the target distribution,
    q = (1 - eps) onehot(t) + eps / C for label_smoothing = eps, each
    non-ignored entry's loss is::

        l = -sum_c q_c log p_c                (= -log p_t when eps = 0)
        dl/dz = p - q

    Ignored entries have l = 0 and gradient 0. reduction "mean": the sum
    over the non-ignored entries divided by their count (nan when every
    entry is ignored or there is none, with a zero gradient, as torch);
    "sum": the sum; both return the loss as a float accumulated in float64.
    "none": the loss per entry as an array of target's shape in logits'
    dtype, and the gradient of its sum. grad has logits' shape and dtype.
    """
    reduction = _reduction(reduction)
    z = _float_array("logits", logits, dtype_of="logits")
    if z.ndim == 0:
        raise ValueError(f"logits must be (N, C), (C,) or (N, C, d1, ...), got shape {z.shape}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer, got {type(ignore_index).__name__} "
                        f"{ignore_index!r}")
    ignore_index = int(ignore_index)
    eps = v.real_number("label_smoothing", label_smoothing, 0.0, 1.0, high_open=False)
    try:
        t = np.asarray(target)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"target must be an integer array of class indices: {exc}") from None
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices, got dtype {t.dtype}"
                        + (" (probability targets are not supported)" if t.dtype.kind == "f"
                           else ""))
    class_axis = 0 if z.ndim == 1 else 1
    C = z.shape[class_axis]
    if C < 1:
        raise ValueError(f"logits must have at least one class, got shape {z.shape}")
    expected = z.shape[:class_axis] + z.shape[class_axis + 1:]
    if t.shape != expected:
        raise ValueError(f"target must have logits' shape without the class dimension, "
                         f"{expected}, got {t.shape}")
    # class last, entries flattened: (M, C) rows
    rows = np.moveaxis(z, class_axis, -1).reshape(-1, C)
    t_flat = t.reshape(-1).astype(np.int64)
    valid = t_flat != ignore_index
    bad = valid & ((t_flat < 0) | (t_flat >= C))
    if bad.any():
        raise ValueError(f"target values must be in [0, {C}) (C = logits' classes) or equal to "
                         f"ignore_index={ignore_index}, got {t_flat[bad][0]}")
    shifted = rows - rows.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_norm
    safe_t = np.where(valid, t_flat, 0)
    index = np.arange(rows.shape[0])
    per_entry = -log_p[index, safe_t]
    if eps:
        per_entry = (1.0 - eps) * per_entry - (eps / C) * log_p.sum(axis=1)
    per_entry = np.where(valid, per_entry, 0).astype(z.dtype, copy=False)
    grad_rows = np.exp(log_p)
    if eps:
        grad_rows -= eps / C
    grad_rows[index, safe_t] -= 1.0 - eps
    grad_rows *= valid[:, None]
    count = int(valid.sum())
    if reduction == "mean":
        loss = _sum64(per_entry) / count if count else math.nan
        if count:
            grad_rows *= z.dtype.type(1.0 / count)
    elif reduction == "sum":
        loss = _sum64(per_entry)
    else:
        loss = per_entry.reshape(t.shape)
    moved_shape = z.shape[:class_axis] + z.shape[class_axis + 1:] + (C,)
    grad = np.ascontiguousarray(np.moveaxis(grad_rows.reshape(moved_shape), -1, class_axis))
    return loss, grad.astype(z.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, target, *, reduction: str = "mean",
                                     pos_weight=None):
    """torch.nn.functional.binary_cross_entropy_with_logits: (loss, grad).

    logits z and target y: float arrays of one shape and dtype (y usually in
    [0, 1]; not checked, as torch). With w = pos_weight (broadcast against
    z's trailing dimensions, as torch; 1 if None) and l_w = 1 + (w - 1) y,
    each element's loss and gradient are::

        l     = (1 - y) z + l_w softplus(-z),
                softplus(-z) = max(-z, 0) + log1p(exp(-|z|))   (stable)
        dl/dz = (1 - y) - l_w sigmoid(-z)        (= sigmoid(z) - y for w = 1)

    reduction "mean" (over all elements; nan for none, as torch), "sum"
    (float, accumulated in float64) or "none" (array of z's shape and dtype,
    with grad the gradient of its sum). grad: z's shape and dtype. torch's
    ``weight=`` argument is not implemented.
    """
    reduction = _reduction(reduction)
    z = _float_array("logits", logits, dtype_of="logits")
    y = _matching_target("target", target, z, "logits")
    if pos_weight is not None:
        w = _float_array("pos_weight", pos_weight, z.dtype, "logits")
        try:
            shape = np.broadcast_shapes(w.shape, z.shape)
        except ValueError:
            shape = None
        if shape != z.shape:
            raise ValueError(f"pos_weight must broadcast to logits' shape {z.shape} (e.g. shape "
                             f"({z.shape[-1] if z.ndim else 1},), one per class), got {w.shape}")
    one = z.dtype.type(1)
    exp_neg_abs = np.exp(-np.abs(z))
    softplus_neg = np.maximum(-z, 0) + np.log1p(exp_neg_abs)
    # sigmoid(-z) without overflow: exp(-|z|) / (1 + exp(-|z|)) on the side where it is small
    sigmoid_neg = np.where(z >= 0, exp_neg_abs, one) / (one + exp_neg_abs)
    if pos_weight is None:
        per_element = (one - y) * z + softplus_neg
        grad = (one - y) - sigmoid_neg
    else:
        log_weight = one + (w - one) * y
        per_element = (one - y) * z + log_weight * softplus_neg
        grad = (one - y) - log_weight * sigmoid_neg
    return _reduce(per_element, grad, reduction)


def mse_loss(input, target, *, reduction: str = "mean"):
    """torch.nn.functional.mse_loss: (loss, grad).

    input x and target y: float arrays of one shape and dtype (no
    broadcasting; torch only warns). Each element: l = (x - y)^2, dl/dx =
    2 (x - y). reduction "mean" (over all elements; nan for none, as torch),
    "sum" (float, accumulated in float64) or "none" (array of x's shape and
    dtype, with grad the gradient of its sum). grad: x's shape and dtype.
    """
    reduction = _reduction(reduction)
    x = _float_array("input", input, dtype_of="input")
    y = _matching_target("target", target, x, "input")
    diff = x - y
    return _reduce(diff * diff, diff * x.dtype.type(2), reduction)


def _reduce(per_element: np.ndarray, grad: np.ndarray, reduction: str):
    """Apply the reduction to an elementwise loss and its elementwise gradient."""
    if reduction == "none":
        return per_element, grad
    if reduction == "sum":
        return _sum64(per_element), grad
    n = per_element.size
    if n == 0:
        return math.nan, grad
    return _sum64(per_element) / n, grad * grad.dtype.type(1.0 / n)
