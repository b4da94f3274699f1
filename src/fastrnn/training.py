"""Training over whole sequences: truncated BPTT, fused heads, clipping, optimizers.

The semantics are defined in docs/TRAINING.md; this module holds the shared
description of a training problem (what every backend's ``train`` receives),
argument checking, and the public entry points:

* :func:`fit_sequence` - train over a sequence window by window (TBPTT(k1, k2),
  windowed = TBPTT(w, w), or per-output depth k), updating ``theta`` in place
  and returning the per-window losses and the final state;
* :func:`sequence_gradients` - the same truncated gradient without any update
  (the building block of the min-char-rnn / wildml drop-ins).

Parameters live in one flat vector (see :class:`Layout`), so that clipping and
the optimizers are operations on flat arrays and a backend's ``train`` needs
no knowledge of which parameter is which beyond the offsets.

Backend contract (docs/TRAINING.md): a training backend module exposes

    train(spec, theta, grad, m, v, step, inputs, targets, h, c, losses) -> int

with ``spec`` a :class:`TrainSpec`, ``theta``/``grad``/``m``/``v`` flat arrays
(grad is overwritten; with ``spec.optimizer is None`` it receives the sum over
windows of the clipped window gradients and theta is left unchanged),
``step`` the optimizer's update count so far, ``inputs`` the dense
``(T, B, I)`` float array or the ``(T, B)`` int64 index array, ``targets`` as
TRAINING.md says, ``h``/``c`` the ``(B, H)`` state updated in place to the
final state (``c`` None unless LSTM), ``losses`` a float64 array with room for
:meth:`TrainSpec.num_updates` entries. It returns the new step count.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from . import _validate as v
from .backends import available_backends, resolve_backend

__all__ = ["Layout", "SGD", "Adagrad", "RMSprop", "Adam", "Clip", "TrainSpec",
           "OptimizerState", "FitResult", "fit_sequence", "sequence_gradients",
           "available_trainers", "HEADS", "REDUCTIONS"]

HEADS = ("softmax_ce", "sigmoid_bce", "mse")
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Layout:
    """Where each parameter lives in the flat vector ``theta`` (TRAINING.md)."""

    cell: str
    input_size: int  # I, or the vocabulary size V for index input
    hidden_size: int
    output_size: int
    bias: bool = True       # bias_ih and bias_hh
    head_bias: bool = True  # bias_y

    def __post_init__(self):
        v.check_cell(self.cell)
        for name in ("input_size", "hidden_size", "output_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def gates(self) -> int:
        return v.GATES[self.cell]

    def shapes(self) -> dict:
        GH, H, I, O = self.gates * self.hidden_size, self.hidden_size, self.input_size, self.output_size
        shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H)}
        if self.bias:
            shapes.update(bias_ih=(GH,), bias_hh=(GH,))
        shapes["weight_hy"] = (O, H)
        if self.head_bias:
            shapes["bias_y"] = (O,)
        return shapes

    def offsets(self) -> dict:
        """name -> (start, stop) in theta."""
        out, pos = {}, 0
        for name, shape in self.shapes().items():
            n = int(np.prod(shape))
            out[name] = (pos, pos + n)
            pos += n
        return out

    @property
    def size(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes().values())

    def views(self, theta: np.ndarray) -> dict:
        """name -> view of theta with the parameter's shape (writes go to theta)."""
        if theta.shape != (self.size,):
            raise ValueError(f"theta must have shape ({self.size},), got {theta.shape}")
        shapes = self.shapes()
        return {n: theta[a:b].reshape(shapes[n]) for n, (a, b) in self.offsets().items()}

    def init(self, dtype=np.float32, seed: Optional[int] = None) -> np.ndarray:
        """A fresh theta, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) like torch.nn."""
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(self.hidden_size)
        return rng.uniform(-k, k, self.size).astype(dtype)


# -- optimizers and clipping (hyperparameters only; state is OptimizerState) --

@dataclass(frozen=True)
class SGD:
    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    kind = "sgd"


@dataclass(frozen=True)
class Adagrad:
    """min-char-rnn's Adagrad: m += g^2; p -= lr g / sqrt(m + eps)."""
    lr: float
    eps: float = 1e-8
    kind = "adagrad"


@dataclass(frozen=True)
class RMSprop:
    lr: float
    alpha: float = 0.99
    eps: float = 1e-8
    kind = "rmsprop"


@dataclass(frozen=True)
class Adam:
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    kind = "adam"


Optimizer = Union[SGD, Adagrad, RMSprop, Adam]


@dataclass(frozen=True)
class Clip:
    """Gradient clipping: kind "none", "value" (elementwise to [-value, value])
    or "norm" (global L2 norm to at most value)."""
    kind: str = "none"
    value: float = 0.0

    def __post_init__(self):
        if self.kind not in ("none", "value", "norm"):
            raise ValueError(f"clip kind must be 'none', 'value' or 'norm', got {self.kind!r}")
        if self.kind != "none" and not self.value > 0:
            raise ValueError(f"clip value must be > 0, got {self.value}")


@dataclass(frozen=True)
class TrainSpec:
    """Everything about a training run except the arrays."""

    layout: Layout
    head: str = "softmax_ce"
    index_input: bool = False
    many_to_one: bool = False
    reduction: str = "sum"
    k1: int = 25
    k2: Optional[int] = None          # None: k2 = k1 (windowed)
    depth: Optional[int] = None       # per-output depth k; replaces k1/k2
    clip: Clip = field(default_factory=Clip)
    optimizer: Optional[Optimizer] = None  # None: gradients only

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.depth is not None:
            if int(self.depth) < 0:
                raise ValueError(f"depth must be >= 0, got {self.depth}")
        else:
            k2 = self.k1 if self.k2 is None else self.k2
            if not 1 <= int(self.k1) <= int(k2):
                raise ValueError(f"TBPTT needs 1 <= k1 <= k2, got k1={self.k1}, k2={self.k2}")

    @property
    def window(self) -> int:
        """k2: the longest window backpropagated through."""
        return self.k1 if self.k2 is None else self.k2

    def num_updates(self, T: int) -> int:
        if T == 0:
            return 0
        if self.depth is not None:
            return 1
        return -(-T // self.k1)


@dataclass
class OptimizerState:
    """m, v (flat, like theta) and the number of updates taken."""

    m: np.ndarray
    v: np.ndarray
    step: int = 0

    @classmethod
    def zeros_like(cls, theta: np.ndarray) -> "OptimizerState":
        return cls(np.zeros_like(theta), np.zeros_like(theta), 0)


@dataclass
class FitResult:
    losses: np.ndarray          # float64, one per update (window)
    h_n: np.ndarray
    c_n: Optional[np.ndarray]
    grad: np.ndarray            # last window's clipped gradient (or the sum, without optimizer)


_TRAINERS = {"c": "fastrnn.backends.c", "numpy": "fastrnn.backends.numpy_train",
             "numba": "fastrnn.backends.numba_train"}


def _trainer(backend: Optional[str]):
    name = resolve_backend(backend)
    module = None
    try:
        module = importlib.import_module(_TRAINERS[name])
    except ModuleNotFoundError as exc:
        # an optional dependency (numba) or the module itself missing is a
        # fallback; any other import failure is a bug and must surface
        if exc.name not in ("numba", _TRAINERS[name]):
            raise
    if module is None or not hasattr(module, "train"):
        if backend not in (None, "auto"):
            raise NotImplementedError(f"backend {name!r} has no sequence trainer yet")
        module = importlib.import_module(_TRAINERS["numpy"])
    return module


def available_trainers() -> list:
    """The available backends (fastrnn.available_backends()) that have a
    sequence trainer, in the same order."""
    names = []
    for name in available_backends():
        try:
            _trainer(name)
        except NotImplementedError:
            continue
        names.append(name)
    return names


def _check_arrays(spec: TrainSpec, theta, inputs, targets, h0, c0):
    lay = spec.layout
    theta = np.asarray(theta)
    if not isinstance(theta, np.ndarray) or theta.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"theta must be a float32 or float64 array, got dtype {theta.dtype}")
    if theta.shape != (lay.size,):
        raise ValueError(f"theta must have shape (layout.size,) = ({lay.size},), got {theta.shape}")
    if not (theta.flags.c_contiguous and theta.flags.writeable):
        raise ValueError("theta must be C-contiguous and writable (it is updated in place)")
    dtype = theta.dtype
    inputs = np.asarray(inputs)
    if spec.index_input:
        if inputs.dtype.kind not in "iu" or inputs.ndim != 2:
            raise TypeError(f"inputs must be an integer (T, batch) index array, got "
                            f"dtype {inputs.dtype}, shape {inputs.shape}")
        inputs = np.ascontiguousarray(inputs, dtype=np.int64)
        if inputs.size and (inputs.min() < 0 or inputs.max() >= lay.input_size):
            raise ValueError(f"inputs must be indices in [0, {lay.input_size})")
        T, B = inputs.shape
    else:
        inputs = v.as_input("inputs", inputs, 3, dtype)
        T, B, I = inputs.shape
        if I != lay.input_size:
            raise ValueError(f"inputs must have shape (T, batch, {lay.input_size}), got {inputs.shape}")
    O = lay.output_size
    if spec.head == "softmax_ce":
        tshape = (B,) if spec.many_to_one else (T, B)
        targets = np.asarray(targets)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"softmax_ce targets must be integer class indices, got dtype {targets.dtype}")
        if targets.shape != tshape:
            raise ValueError(f"targets must have shape {tshape}, got {targets.shape}")
        targets = np.ascontiguousarray(targets, dtype=np.int64)
        if targets.size and (targets.min() < 0 or targets.max() >= O):
            raise ValueError(f"targets must be class indices in [0, {O})")
    else:
        tshape = (B, O) if spec.many_to_one else (T, B, O)
        targets = v.as_input("targets", targets, len(tshape), dtype)
        v.expect_shape("targets", targets, tshape, "(batch, O)" if spec.many_to_one else "(T, batch, O)")
    H = lay.hidden_size
    h = np.zeros((B, H), dtype) if h0 is None else v.as_input("h0", h0, 2, dtype).copy()
    v.expect_shape("h0", h, (B, H), "(batch, hidden_size)")
    c = None
    if lay.cell == "lstm":
        c = np.zeros((B, H), dtype) if c0 is None else v.as_input("c0", c0, 2, dtype).copy()
        v.expect_shape("c0", c, (B, H), "(batch, hidden_size)")
    elif c0 is not None:
        raise ValueError(f"c0 is only meaningful for cell 'lstm', not {lay.cell!r}")
    return theta, inputs, targets, h, c, T, B


def fit_sequence(spec: TrainSpec, theta: np.ndarray, inputs, targets, *, h0=None, c0=None,
                 state: Optional[OptimizerState] = None,
                 backend: Optional[str] = None) -> FitResult:
    """Train ``theta`` (in place) over one sequence, window by window.

    inputs: (T, B, I) float, or (T, B) int64 indices if spec.index_input.
    targets: see docs/TRAINING.md. state: optimizer state, created (zeros)
    if None and updated in place otherwise, so successive calls continue.
    Returns FitResult(losses per window, h_n, c_n, grad).
    """
    if spec.optimizer is None:
        raise ValueError("fit_sequence needs spec.optimizer; use sequence_gradients for gradients only")
    theta, inputs, targets, h, c, T, B = _check_arrays(spec, theta, inputs, targets, h0, c0)
    if state is None:
        state = OptimizerState.zeros_like(theta)
    for name in ("m", "v"):
        arr = getattr(state, name)
        if arr.shape != theta.shape or arr.dtype != theta.dtype or not arr.flags.c_contiguous:
            raise ValueError(f"state.{name} must be a C-contiguous {theta.dtype} array of shape {theta.shape}")
    grad = np.zeros_like(theta)
    losses = np.zeros(spec.num_updates(T), np.float64)
    if T and B:
        state.step = int(_trainer(backend).train(spec, theta, grad, state.m, state.v, state.step,
                                                 inputs, targets, h, c, losses))
    return FitResult(losses, h, c, grad)


def sequence_gradients(spec: TrainSpec, theta: np.ndarray, inputs, targets, *, h0=None, c0=None,
                       backend: Optional[str] = None) -> FitResult:
    """The truncated-BPTT gradient of the whole sequence's loss, no update.

    ``result.grad`` is the sum over windows of each window's clipped gradient
    (for one window: its clipped gradient); ``result.losses`` the window losses.
    """
    if spec.optimizer is not None:
        raise ValueError("sequence_gradients takes a spec without optimizer")
    theta, inputs, targets, h, c, T, B = _check_arrays(spec, theta, inputs, targets, h0, c0)
    grad = np.zeros_like(theta)
    losses = np.zeros(spec.num_updates(T), np.float64)
    if T and B:
        dummy = np.zeros(0, theta.dtype)
        _trainer(backend).train(spec, theta, grad, dummy, dummy, 0, inputs, targets, h, c, losses)
    return FitResult(losses, h, c, grad)
