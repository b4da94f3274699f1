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

    train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets=None)

with ``config`` a :class:`TrainerConfig` (the TrainSpec converted once for
this sequence, lengths clamped), ``theta``/``grad``/``m``/``v`` flat arrays
(grad is overwritten; with ``spec.optimizer is None`` it receives the sum over
windows of the clipped window gradients and theta is left unchanged),
``step`` the optimizer's update count so far, ``inputs`` the dense
``(T, B, I)`` float array or the ``(T, B)`` int64 index array, ``targets`` as
TRAINING.md says, ``h``/``c`` the ``(B, H)`` state updated in place to the
final state (``c`` None unless LSTM), ``losses`` a float64 array with room for
:meth:`TrainSpec.num_updates` entries, ``resets`` None or a C-contiguous
``(T, B)`` bool array with at least one True (the state entering step t of
row b is zero, and no gradient flows through it). It returns ``(step, stopped)``: the new
step count, and None, or the index of the first window whose loss or
unclipped gradient was not finite. A trainer stops before that window's
update: theta, m, v and the step count stay as after the window before it,
``grad`` as it was then, ``h``/``c`` as passed in, and ``losses[stopped]``
holds the window's loss; :func:`fit_sequence` turns that into
:class:`TrainingDivergedError`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from . import _validate as v
from . import cells
from .backends import available_backends, get_backend

__all__ = ["Layout", "SGD", "Adagrad", "RMSprop", "Adam", "Clip", "TrainSpec",
           "TrainerConfig", "OptimizerState", "FitResult", "TrainingDivergedError", "fit_sequence",
           "sequence_gradients", "available_trainers", "HEADS", "REDUCTIONS"]

# The codes of the heads, clips and optimizers in the C core (frnn_head,
# frnn_clip, frnn_optimizer in csrc/include/fastrnn.h), which the Numba
# trainer uses too; TrainerConfig carries them, and a test checks them
# against the C header's values.
HEAD_CODES = {"softmax_ce": 0, "sigmoid_bce": 1, "mse": 2, "sigmoid_mse": 3}
CLIP_CODES = {"none": 0, "value": 1, "norm": 2}
OPTIMIZER_CODES = {None: 0, "sgd": 1, "adagrad": 2, "rmsprop": 3, "adam": 4}
HEADS = tuple(HEAD_CODES)
REDUCTIONS = ("sum", "mean")
MAX_STEP = 2**62  # the largest optimizer step count a state may hold


class TrainingDivergedError(FloatingPointError):
    """A window's loss or gradient was not finite, so training stopped before
    applying it.

    ``window`` is the window's index within the call, ``first_step`` and
    ``last_step`` the steps [first_step, last_step) of the call's sequence it
    covers, ``loss`` its loss (may be finite when only the gradient was not),
    ``updates`` the number of updates the call applied before it. theta and
    the optimizer state are left as after the last good window, the state
    arrays passed as h0 / c0 are untouched, so the caller can lower the
    learning rate, clip harder, or restore a checkpoint and go on.
    """

    def __init__(self, window: int, first_step: int, last_step: int, loss: float, updates: int):
        self.window, self.first_step, self.last_step = window, first_step, last_step
        self.loss, self.updates = loss, updates
        what = "loss" if not math.isfinite(loss) else "gradient"
        super().__init__(
            f"the {what} of window {window} (steps {first_step}-{last_step - 1}) is not finite "
            f"(loss {loss}); training stopped before that window's update, after {updates} "
            f"good update(s): theta and the optimizer state are as after the last good window")


def _check_fields(obj, **rules) -> None:
    """Validate and normalise a frozen dataclass's fields: name -> checker."""
    for name, check in rules.items():
        object.__setattr__(obj, name, check(f"{type(obj).__name__}.{name}", getattr(obj, name)))


@dataclass(frozen=True)
class Layout:
    """Where each parameter lives in the flat vector ``theta`` (TRAINING.md)."""

    # a name, or a fastrnn.cells.Cell carrying hyperparameters (the leaky
    # cell's leak_rate: cells.get("leaky").with_hyperparameters(leak_rate=0.3));
    # a name trains the cell's defaults
    cell: Union[str, cells.Cell]
    input_size: int  # I, or the vocabulary size V for index input
    hidden_size: int
    output_size: int
    # True: bias_ih and bias_hh (torch's two); "ih": bias_ih alone (one
    # recurrent bias, as Keras and min-char-rnn have: each of torch's two
    # would take its own optimizer step, moving their sum twice as far);
    # False: none
    bias: Union[bool, str] = True
    head_bias: bool = True  # bias_y

    def __post_init__(self):
        spec = cells.get(self.cell)
        positive = lambda name, value: v.integer(name, value, 1)  # noqa: E731
        _check_fields(self, input_size=positive, hidden_size=positive, output_size=positive,
                      bias=_bias_choice, head_bias=v.boolean)
        v.element_count(f"theta of Layout({spec.label!r}, input_size={self.input_size}, "
                        f"hidden_size={self.hidden_size}, output_size={self.output_size})",
                        self.size)

    @property
    def has_bias_ih(self) -> bool:
        """Whether theta holds bias_ih (bias True or "ih")."""
        return self.bias is not False

    @property
    def has_bias_hh(self) -> bool:
        """Whether theta holds bias_hh (bias True only)."""
        return self.bias is True

    @property
    def spec(self) -> cells.Cell:
        """The cell's descriptor (fastrnn.cells)."""
        return cells.get(self.cell)

    @property
    def gates(self) -> int:
        return self.spec.gates

    def shapes(self) -> dict:
        GH, H, I, O = self.gates * self.hidden_size, self.hidden_size, self.input_size, self.output_size
        shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H)}
        if self.has_bias_ih:
            shapes["bias_ih"] = (GH,)
        if self.has_bias_hh:
            shapes["bias_hh"] = (GH,)
        shapes["weight_hy"] = (O, H)
        if self.head_bias:
            shapes["bias_y"] = (O,)
        return shapes

    def offsets(self) -> dict:
        """name -> (start, stop) in theta."""
        out, pos = {}, 0
        for name, shape in self.shapes().items():
            n = math.prod(shape)  # Python ints: np.prod wraps around in int64
            out[name] = (pos, pos + n)
            pos += n
        return out

    @functools.cached_property
    def size(self) -> int:
        """Elements of theta (computed once: every training call asks)."""
        return sum(math.prod(s) for s in self.shapes().values())

    def views(self, theta: np.ndarray) -> dict:
        """name -> view of theta with the parameter's shape (writes go to theta)."""
        if theta.shape != (self.size,):
            raise ValueError(f"theta must have shape ({self.size},), got {theta.shape}")
        shapes = self.shapes()
        return {n: theta[a:b].reshape(shapes[n]) for n, (a, b) in self.offsets().items()}

    def init(self, dtype=np.float32, seed: Optional[int] = None) -> np.ndarray:
        """A fresh theta, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) like torch.nn."""
        rng = np.random.default_rng(v.seed("seed", seed))
        k = 1.0 / np.sqrt(self.hidden_size)
        return rng.uniform(-k, k, self.size).astype(dtype)


def _bias_choice(name, value):
    """Layout.bias: True (bias_ih and bias_hh), "ih" (bias_ih alone) or False."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value == "ih":
        return value
    raise (ValueError if isinstance(value, str) else TypeError)(
        f"{name} must be True (bias_ih and bias_hh), \"ih\" (bias_ih alone) or False (no "
        f"recurrent bias), got {type(value).__name__} {value!r}")


# -- optimizers and clipping (hyperparameters only; state is OptimizerState) --

# Every hyperparameter is checked where it is constructed: a NaN learning
# rate or beta1 = 1 (Adam's bias correction divides by 1 - beta1^t = 0) would
# otherwise surface as NaN parameters many windows later.
def _lr(name, value):
    return v.real_number(name, value, 0.0, low_open=True)


def _eps(name, value):
    return v.real_number(name, value, 0.0, low_open=True)


def _decay(name, value):
    """A decay rate (momentum, alpha, beta): in [0, 1)."""
    return v.real_number(name, value, 0.0, 1.0)


@dataclass(frozen=True)
class SGD:
    """p -= lr * g; with momentum mu: m = mu m + g, p -= lr m (Nesterov:
    p -= lr (g + mu m)), as torch.optim.SGD without dampening. lr > 0,
    momentum in [0, 1), nesterov needs momentum > 0."""
    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    kind = "sgd"
    uses_v = False

    @property
    def uses_m(self) -> bool:
        """Whether the update reads and writes OptimizerState.m (the momentum buffer)."""
        return self.momentum != 0

    def __post_init__(self):
        _check_fields(self, lr=_lr, momentum=_decay, nesterov=v.boolean)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD.nesterov needs momentum > 0")


@dataclass(frozen=True)
class Adagrad:
    """min-char-rnn's Adagrad: m += g^2; p -= lr g / sqrt(m + eps). lr > 0, eps > 0."""
    lr: float
    eps: float = 1e-8
    kind = "adagrad"
    uses_m, uses_v = True, False  # m: the sum of squared gradients

    def __post_init__(self):
        _check_fields(self, lr=_lr, eps=_eps)


@dataclass(frozen=True)
class RMSprop:
    """v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps). lr > 0,
    alpha in [0, 1), eps > 0."""
    lr: float
    alpha: float = 0.99
    eps: float = 1e-8
    kind = "rmsprop"
    uses_m, uses_v = False, True  # v: the running mean of squared gradients

    def __post_init__(self):
        _check_fields(self, lr=_lr, alpha=_decay, eps=_eps)


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction, as torch.optim.Adam. lr > 0, beta1 and beta2
    in [0, 1), eps > 0."""
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    kind = "adam"
    uses_m, uses_v = True, True

    def __post_init__(self):
        _check_fields(self, lr=_lr, beta1=_decay, beta2=_decay, eps=_eps)


Optimizer = Union[SGD, Adagrad, RMSprop, Adam]


@dataclass(frozen=True)
class Clip:
    """Gradient clipping: kind "none", "value" (elementwise to [-value, value])
    or "norm" (global L2 norm to at most value)."""
    kind: str = "none"
    value: float = 0.0

    def __post_init__(self):
        if self.kind not in CLIP_CODES:
            raise ValueError(f"clip kind must be 'none', 'value' or 'norm', got {self.kind!r}")
        if self.kind == "none":
            _check_fields(self, value=lambda name, x: v.real_number(name, x, -math.inf))
        else:
            _check_fields(self, value=lambda name, x: v.real_number(name, x, 0.0, low_open=True))


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
        if not isinstance(self.layout, Layout):
            raise TypeError(f"TrainSpec.layout must be a Layout, got {type(self.layout).__name__}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        _check_fields(self, index_input=v.boolean, many_to_one=v.boolean,
                      k1=lambda name, x: v.integer(name, x, 1))
        if self.k2 is not None:
            _check_fields(self, k2=lambda name, x: v.integer(name, x, 1))
        if self.depth is not None:
            # any depth >= T - 1 is full BPTT; fit_sequence clamps it to T - 1
            _check_fields(self, depth=lambda name, x: v.integer(name, x, 0))
        elif not self.k1 <= self.window:
            raise ValueError(f"TBPTT needs 1 <= k1 <= k2, got k1={self.k1}, k2={self.k2}")
        if not isinstance(self.clip, Clip):
            raise TypeError(f"TrainSpec.clip must be a Clip, got {type(self.clip).__name__}")
        if self.optimizer is not None and not isinstance(self.optimizer, (SGD, Adagrad, RMSprop, Adam)):
            raise TypeError(f"TrainSpec.optimizer must be SGD, Adagrad, RMSprop, Adam or None, "
                            f"got {type(self.optimizer).__name__}")

    @property
    def window(self) -> int:
        """k2: the longest window backpropagated through."""
        return self.k1 if self.k2 is None else self.k2

    def num_updates(self, T: int) -> int:
        """Windows (losses) of a sequence of T steps."""
        if T == 0:
            return 0
        if self.depth is not None:
            return 1
        return -(-T // self.k1)

    def window_steps(self, n: int, T: int) -> tuple:
        """Steps [first, last) of window n of a sequence of T steps."""
        if self.depth is not None:
            return 0, T
        last = min((n + 1) * self.k1, T)
        return max(0, last - self.window), last

    def for_length(self, T: int) -> "TrainSpec":
        """This spec for a sequence of T >= 1 steps, with every length
        clamped to what T can use - the same windows and gradients, and sizes
        the trainers' 64-bit arithmetic holds: a depth beyond T - 1 (the
        whole sequence) becomes T - 1, k1 and k2 beyond T become T."""
        changes = {}
        if self.depth is not None and self.depth > T - 1:
            changes["depth"] = T - 1
        if self.k1 > T:
            changes["k1"] = T
        if self.k2 is not None and self.k2 > T:
            changes["k2"] = T
        return dataclasses.replace(self, **changes) if changes else self


    def trainer_config(self, T: int, B: int) -> "TrainerConfig":
        """This spec for a sequence of T >= 1 steps of B rows, as every
        trainer receives it (lengths clamped: :meth:`for_length`)."""
        spec = self.for_length(T)
        lay, opt = spec.layout, spec.optimizer
        hyper = lambda name: float(getattr(opt, name, 0.0))  # noqa: E731 (0: unused)
        return TrainerConfig(
            layout=lay, cell=lay.spec, T=T, B=B, In=lay.input_size, H=lay.hidden_size,
            O=lay.output_size, has_bias=lay.has_bias_ih, has_bias_hh=lay.has_bias_hh,
            has_head_bias=lay.head_bias,
            index_input=spec.index_input, many_to_one=spec.many_to_one,
            reduce_mean=spec.reduction == "mean", head=spec.head, head_code=HEAD_CODES[spec.head],
            k1=spec.k1, k2=spec.window, depth=-1 if spec.depth is None else spec.depth,
            clip=spec.clip.kind, clip_code=CLIP_CODES[spec.clip.kind],
            clip_value=float(spec.clip.value), optimizer=None if opt is None else opt.kind,
            optimizer_code=OPTIMIZER_CODES[None if opt is None else opt.kind],
            lr=hyper("lr"), momentum=hyper("momentum"), alpha=hyper("alpha"),
            beta1=hyper("beta1"), beta2=hyper("beta2"), eps=hyper("eps"),
            nesterov=bool(getattr(opt, "nesterov", False)),
            uses_m=bool(opt is not None and opt.uses_m),
            uses_v=bool(opt is not None and opt.uses_v),
            windows=spec.num_updates(T), parameters=lay.size)


@dataclass(frozen=True)
class TrainerConfig:
    """A TrainSpec for one sequence, converted once into what every trainer
    receives: sizes, flags, codes and hyperparameters as plain typed fields
    (the C trainer copies them into its ``frnn_train_config`` struct).

    Made by :meth:`TrainSpec.trainer_config`; lengths are already clamped
    to the sequence (k1, k2 <= T, depth <= T - 1). ``depth`` is -1 for
    TBPTT(k1, k2). Hyperparameters an optimizer does not have are 0.0;
    ``uses_m`` / ``uses_v`` say which OptimizerState arrays it updates.
    """

    layout: Layout
    cell: cells.Cell
    T: int
    B: int
    In: int  # input size, or the vocabulary size for index input
    H: int
    O: int
    has_bias: bool     # bias_ih in theta
    has_bias_hh: bool  # bias_hh in theta too (False with has_bias: Layout(bias="ih"))
    has_head_bias: bool
    index_input: bool
    many_to_one: bool
    reduce_mean: bool
    head: str
    head_code: int
    k1: int
    k2: int
    depth: int
    clip: str
    clip_code: int
    clip_value: float
    optimizer: Optional[str]
    optimizer_code: int
    lr: float
    momentum: float
    alpha: float
    beta1: float
    beta2: float
    eps: float
    nesterov: bool
    uses_m: bool
    uses_v: bool
    windows: int     # losses the run writes: ceil(T / k1), or 1 by depth
    parameters: int  # P, the length of theta


@dataclass
class OptimizerState:
    """m, v (flat, like theta) and the number of updates taken.

    m and v are updated in place by :func:`fit_sequence`, so they must be
    distinct, writable, C-contiguous float arrays of one dtype and shape that
    share no memory with each other (nor, checked when training, with theta).
    """

    m: np.ndarray
    v: np.ndarray
    step: int = 0

    def __post_init__(self):
        for name in ("m", "v"):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype not in v.FLOAT_DTYPES:
                raise TypeError(f"OptimizerState.{name} must be a float32 or float64 numpy "
                                f"array, got {_describe(arr)}")
            if arr.ndim != 1:
                raise ValueError(f"OptimizerState.{name} must be 1-D (flat, like theta), got "
                                 f"shape {arr.shape}")
            if not (arr.flags.c_contiguous and arr.flags.aligned and arr.flags.writeable):
                raise ValueError(f"OptimizerState.{name} must be C-contiguous, aligned and "
                                 "writable (it is updated in place)")
        if self.m.dtype != self.v.dtype:
            raise TypeError(f"OptimizerState.m and .v must have one dtype, got {self.m.dtype} "
                            f"and {self.v.dtype}")
        if self.m.shape != self.v.shape:
            raise ValueError(f"OptimizerState.m and .v must have one shape, got {self.m.shape} "
                             f"and {self.v.shape}")
        if self.m.size and np.may_share_memory(self.m, self.v):
            raise ValueError("OptimizerState.m and .v share memory: each needs its own array")
        # far below 2**63, so that step + updates never wraps in the trainers
        self.step = v.integer("OptimizerState.step", self.step, 0, MAX_STEP)

    @classmethod
    def zeros_like(cls, theta: np.ndarray) -> "OptimizerState":
        return cls(np.zeros_like(theta), np.zeros_like(theta), 0)


@dataclass
class FitResult:
    losses: np.ndarray          # float64, one per update (window)
    h_n: np.ndarray
    c_n: Optional[np.ndarray]
    grad: np.ndarray            # last window's clipped gradient (or the sum, without optimizer)


def available_trainers() -> list:
    """The available backends (fastrnn.available_backends()) that have a
    sequence trainer, in the same order."""
    return available_backends("train")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _check_indices(name: str, value, ndim: int, meaning: str) -> np.ndarray:
    """An integer index array of rank ndim as C-contiguous int64."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer {meaning} indices, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of {meaning} indices, got shape "
                         f"{arr.shape}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds indices beyond int64")
    return np.require(arr, np.int64, requirements="CA")


def _check_arrays(spec: TrainSpec, theta, inputs, targets, h0, c0, *, updates_theta=True):
    if not isinstance(spec, TrainSpec):
        raise TypeError(f"spec must be a TrainSpec, got {type(spec).__name__}")
    lay = spec.layout
    # theta is updated in place: anything np.asarray would copy (a list, a
    # tuple) would be trained and thrown away, so only an ndarray will do
    if not isinstance(theta, np.ndarray) or theta.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"theta must be a float32 or float64 numpy array (it is updated in "
                        f"place), got {_describe(theta)}")
    if theta.shape != (lay.size,):
        raise ValueError(f"theta must have shape (layout.size,) = ({lay.size},), got {theta.shape}")
    if not (theta.flags.c_contiguous and theta.flags.aligned and theta.flags.writeable):
        if updates_theta:
            raise ValueError("theta must be C-contiguous, aligned and writable (it is updated "
                             "in place)")
        theta = theta.copy()  # only read; the trainers take one writable layout
    dtype = theta.dtype
    if spec.index_input:
        inputs = _check_indices("inputs", inputs, 2, "(T, batch)")
        if inputs.size and (inputs.min() < 0 or inputs.max() >= lay.input_size):
            raise ValueError(f"inputs must be indices in [0, {lay.input_size})")
        T, B = inputs.shape
    else:
        inputs = v.as_input("inputs", inputs, 3, dtype, dtype_of="theta")
        T, B, I = inputs.shape
        if I != lay.input_size:
            raise ValueError(f"inputs must have shape (T, batch, {lay.input_size}), got {inputs.shape}")
    O = lay.output_size
    if spec.head == "softmax_ce":
        tshape = (B,) if spec.many_to_one else (T, B)
        targets = _check_indices("targets", targets, len(tshape), "class")
        if targets.shape != tshape:
            raise ValueError(f"targets must have shape {tshape}, got {targets.shape}")
        if targets.size and (targets.min() < 0 or targets.max() >= O):
            raise ValueError(f"targets must be class indices in [0, {O})")
    else:
        tshape = (B, O) if spec.many_to_one else (T, B, O)
        targets = v.as_input("targets", targets, len(tshape), dtype, dtype_of="theta")
        v.expect_shape("targets", targets, tshape, "(batch, O)" if spec.many_to_one else "(T, batch, O)")
    H = lay.hidden_size
    h = v.state(lay.cell, "h0", h0, B, H, dtype, dtype_of="theta")
    if h0 is not None:
        h = h.copy()  # updated in place to the final state
    c = v.state(lay.cell, "c0", c0, B, H, dtype, cell_state=True, dtype_of="theta")
    if c is not None and c0 is not None:
        c = c.copy()  # updated in place to the final state
    for name, arr in (("inputs", inputs), ("targets", targets)):
        if np.may_share_memory(theta, arr):
            raise ValueError(f"{name} shares memory with theta, which is updated in place")
    return theta, inputs, targets, h, c, T, B


def _check_state(state: OptimizerState, theta: np.ndarray, inputs, targets) -> None:
    if not isinstance(state, OptimizerState):
        raise TypeError(f"state must be an OptimizerState, got {type(state).__name__}")
    for name in ("m", "v"):
        arr = getattr(state, name)
        if arr.shape != theta.shape or arr.dtype != theta.dtype:
            raise ValueError(f"state.{name} must be a {theta.dtype} array of theta's shape "
                             f"{theta.shape}, got {arr.dtype}{arr.shape}")
        for other_name, other in (("theta", theta), ("inputs", inputs), ("targets", targets)):
            if np.may_share_memory(arr, other):
                raise ValueError(f"state.{name} shares memory with {other_name}: the optimizer "
                                 "state needs arrays of its own")
    if np.may_share_memory(state.m, state.v):  # replaced after construction
        raise ValueError("state.m and state.v share memory: each needs its own array")


def _check_resets(resets, T: int, B: int, theta: np.ndarray):
    """resets: None, or a (T, B) bool array -> None when no entry is True
    (the plain path), else a C-contiguous bool array."""
    if resets is None:
        return None
    arr = np.asarray(resets)
    if arr.dtype != np.bool_:
        raise TypeError(f"resets must be a bool array of shape (T, batch) = ({T}, {B}) (True "
                        f"where the state entering step t of row b is reset to zero), got dtype "
                        f"{arr.dtype}")
    if arr.shape != (T, B):
        raise ValueError(f"resets must have shape (T, batch) = ({T}, {B}), got {arr.shape}")
    if np.may_share_memory(arr, theta):
        raise ValueError("resets shares memory with theta, which is updated in place")
    return np.ascontiguousarray(arr) if arr.any() else None


@functools.lru_cache(maxsize=256)
def _cached_trainer_config(spec: "TrainSpec", T: int, B: int) -> TrainerConfig:
    return spec.trainer_config(T, B)


def trainer_config_of(spec: "TrainSpec", T: int, B: int) -> TrainerConfig:
    """``spec.trainer_config(T, B)``, made once per (spec, T, B) and reused:
    the conversion costs more than a small window's kernel. TrainSpec and
    everything in it are frozen (hashable, compared by value) and the config
    depends on nothing else, so a cached one is always the one a fresh call
    would make; lru_cache is safe to call from several threads."""
    try:
        return _cached_trainer_config(spec, T, B)
    except TypeError:  # an unhashable field (a subclass's): convert every time
        return spec.trainer_config(T, B)


def diverged_error(spec: "TrainSpec", stopped: int, T: int, losses: np.ndarray, step: int,
                   new_step: int) -> TrainingDivergedError:
    """The TrainingDivergedError for a trainer that stopped at window
    ``stopped`` of a T-step sequence, having counted ``step`` -> ``new_step``
    updates (``error.step`` is the new count)."""
    first, last = spec.window_steps(stopped, T)
    error = TrainingDivergedError(stopped, first, last, float(losses[stopped]),
                                  int(new_step) - step)
    error.step = int(new_step)
    return error


def _run_trainer(spec, backend, theta, grad, m, v, step, inputs, targets, h, c, losses, T,
                 resets=None):
    """Call the backend's trainer; raise TrainingDivergedError if it stopped.
    Returns the new step count (also when raising: it is on the error)."""
    config = trainer_config_of(spec, T, h.shape[0])
    new_step, stopped = get_backend(backend, "train").train(config, theta, grad, m, v, step,
                                                           inputs, targets, h, c, losses,
                                                           resets=resets)
    if stopped is not None:
        raise diverged_error(spec, stopped, T, losses, step, new_step)
    return int(new_step)


def fit_sequence(spec: TrainSpec, theta: np.ndarray, inputs, targets, *, h0=None, c0=None,
                 state: Optional[OptimizerState] = None, resets=None,
                 backend: Optional[str] = None) -> FitResult:
    """Train ``theta`` (in place) over one sequence, window by window.

    inputs: (T, B, I) float, or (T, B) int64 indices if spec.index_input.
    targets: see docs/TRAINING.md. state: optimizer state, created (zeros)
    if None and updated in place otherwise, so successive calls continue.
    resets: None or a (T, B) bool array: where ``resets[t, b]`` is True, row b
    starts a new document at step t - the state entering step t (h, and c for
    LSTM) is zero, not the previous step's (nor h0 / the carried state at a
    window's start), and no gradient flows through it into earlier steps:
    ``h_{t-1} <- (1 - resets[t]) h_{t-1}`` before step t.
    Returns FitResult(losses per window, h_n, c_n, grad). Raises
    :class:`TrainingDivergedError` at the first window whose loss or
    gradient is not finite, with theta and ``state`` as after the window
    before it (docs/TRAINING.md).
    """
    theta, inputs, targets, h, c, T, B = _check_arrays(spec, theta, inputs, targets, h0, c0)
    if spec.optimizer is None:
        raise ValueError("fit_sequence needs spec.optimizer; use sequence_gradients for gradients only")
    resets = _check_resets(resets, T, B, theta)
    if state is None:
        state = OptimizerState.zeros_like(theta)
    _check_state(state, theta, inputs, targets)
    grad = np.zeros_like(theta)
    losses = np.zeros(spec.num_updates(T), np.float64)
    if T and B:
        try:
            state.step = _run_trainer(spec, backend, theta, grad, state.m, state.v,
                                      state.step, inputs, targets, h, c, losses, T, resets)
        except TrainingDivergedError as exc:
            state.step = exc.step
            raise
    return FitResult(losses, h, c, grad)


def sequence_gradients(spec: TrainSpec, theta: np.ndarray, inputs, targets, *, h0=None, c0=None,
                       resets=None, backend: Optional[str] = None) -> FitResult:
    """The truncated-BPTT gradient of the whole sequence's loss, no update.

    ``result.grad`` is the sum over windows of each window's clipped gradient
    (for one window: its clipped gradient); ``result.losses`` the window losses.
    theta is only read (a read-only or non-contiguous one is copied).
    resets: as :func:`fit_sequence`'s (state resets at document boundaries).
    Raises :class:`TrainingDivergedError` at the first window whose loss or
    gradient is not finite.
    """
    theta, inputs, targets, h, c, T, B = _check_arrays(spec, theta, inputs, targets, h0, c0,
                                                       updates_theta=False)
    if spec.optimizer is not None:
        raise ValueError("sequence_gradients takes a spec without optimizer")
    resets = _check_resets(resets, T, B, theta)
    grad = np.zeros_like(theta)
    losses = np.zeros(spec.num_updates(T), np.float64)
    if T and B:
        dummy = np.zeros(0, theta.dtype)
        _run_trainer(spec, backend, theta, grad, dummy, dummy, 0, inputs, targets,
                     h, c, losses, T, resets)
    return FitResult(losses, h, c, grad)
