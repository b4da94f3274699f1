"""torch.optim's optimizers and torch.nn.utils' gradient clipping over NumPy arrays.

What this is: ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam`` and ``AdamW`` with
torch 2.13's argument names, defaults and update formulas (its single-tensor,
``foreach=False`` path, ``maximize=False``), updating a dict of float32 or
float64 arrays in place, plus ``clip_grad_norm_`` and ``clip_grad_value_``::

    opt = fastrnn.optim.Adam(model.named_parameters(), lr=1e-3)
    total_norm = fastrnn.optim.clip_grad_norm_(grads.params, max_norm=1.0)
    opt.step(grads.params)

What this deliberately is not: there are no parameter groups (one set of
hyperparameters for every parameter; assign ``opt.lr`` for a schedule), no
``zero_grad`` (gradients are passed to ``step``), no sparse, complex,
``maximize``, ``capturable``, ``differentiable`` or ``fused`` variants. It
does not use the sequence trainer's optimizer kernels (csrc/kernels/optim.c,
min-char-rnn's formulas: e.g. Adagrad's eps inside the square root, no weight
decay or dampening), which are not torch's.

Two implementations of every update, with the same results bit for bit:

* the C core's kernels (csrc/kernels/torch_optim.c through
  ``fastrnn._core.sgd_step`` / ``adagrad_step`` / ``rmsprop_step`` /
  ``adam_step``): one vectorised pass per parameter, GIL released, no
  temporaries, the arrays updated in place. Used when the compiled core
  loads (and has them) and the parameter, its gradient and its state
  buffers are C-contiguous, aligned, writable (the gradient need not be)
  and do not overlap;
* NumPy, below: the readable reference, and the fallback for everything else
  (a strided gradient, no compiled core).

``opt.kernels`` chooses per optimizer: ``"auto"`` (the default: as just
said, parameter by parameter), ``"c"`` (the C kernels or an error saying why
not: ``BackendUnavailableError`` without them, ValueError for an array they
cannot take) or ``"numpy"`` (always NumPy: for tests and comparisons).
:func:`c_kernels_available` says whether the C kernels can run here.

Arithmetic is done in the parameters' dtype, as torch does for a float32 or
float64 tensor: a Python-float hyperparameter (or a combination of them such
as Adam's ``lr / (1 - beta1**t)``, computed in double as torch computes it) is
rounded to that dtype and combined with whole arrays; state (moment buffers)
has the parameters' dtype. float64 results agree with torch.optim to ~1e-15
relative over 20 steps; float32 results to float32 rounding (torch's CPU
kernels use fused multiply-adds where NumPy rounds twice).

Notation, per parameter ``p`` with gradient ``g`` at step ``t`` (the step
counts that parameter's updates: a step where it has no gradient skips it, as
torch skips ``p.grad is None``), ``lambda`` = weight_decay, ``lr`` = lr.
Operations on arrays are elementwise.

SGD(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)::

    g <- g + lambda * p                               (if lambda != 0)
    if momentum != 0:
        b <- g                                        (first step)
        b <- momentum * b + (1 - dampening) * g       (later steps)
        g <- g + momentum * b   if nesterov   else   g <- b
    p <- p - lr * g

Adagrad(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)::

    g <- g + lambda * p                               (if lambda != 0)
    clr = lr / (1 + (t - 1) * lr_decay)
    s <- s + g * g                                    (s starts at initial_accumulator_value)
    p <- p - clr * g / (sqrt(s) + eps)

RMSprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)::

    g <- g + lambda * p                               (if lambda != 0)
    v <- alpha * v + (1 - alpha) * g * g              (v starts at 0)
    if centered:
        a <- a + (1 - alpha) * (g - a)                (running mean of g, starts at 0)
        d = sqrt(v - a * a) + eps
    else:
        d = sqrt(v) + eps
    if momentum > 0:
        b <- momentum * b + g / d                     (b starts at 0)
        p <- p - lr * b
    else:
        p <- p - lr * g / d

Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False) and
AdamW(..., weight_decay=1e-2, ...), which differ only in the weight decay::

    Adam:  g <- g + lambda * p                        (if lambda != 0; L2 penalty)
    AdamW: p <- p * (1 - lr * lambda)                 (decoupled weight decay)
    m <- m + (1 - beta1) * (g - m)                    (m, v start at 0)
    v <- beta2 * v + (1 - beta2) * g * g
    v_max <- max(v_max, v); u = v_max   if amsgrad   else   u = v
    p <- p - (lr / (1 - beta1**t)) * m / (sqrt(u) / sqrt(1 - beta2**t) + eps)

(``x + w * (y - x)`` is torch's ``lerp``, evaluated as ``y - (y - x) * (1 - w)``
when ``w >= 0.5``, as torch does.)

clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False)::

    N = || (||g_1||, ..., ||g_k||) ||                 (the norm over all arrays together)
    g_i <- g_i * min(1, max_norm / (N + 1e-6))        returns N

clip_grad_value_(grads, clip_value)::

    g_i <- clip(g_i, -clip_value, clip_value)
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Dict, Tuple, Union

import numpy as np

from . import _validate as v

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
           "clip_grad_norm_", "clip_grad_value_", "NonFiniteNormError", "KERNELS",
           "c_kernels_available"]

#: The values of ``Optimizer.kernels`` (see the module docstring).
KERNELS = ("auto", "c", "numpy")

ParamsLike = Union[Mapping, Iterable]


class NonFiniteNormError(ValueError, RuntimeError):
    """clip_grad_norm_'s total norm is NaN or inf with error_if_nonfinite=True.

    A ValueError (fastrnn's rule for bad values) and a RuntimeError (what
    torch raises), so either ``except`` clause catches it."""


# -- the C core's kernels ----------------------------------------------------------

_CORE_FUNCTIONS = ("sgd_step", "adagrad_step", "rmsprop_step", "adam_step")
_core_cache: list = []  # [(module or None, why not)] once looked up


def _compiled_core():
    """(fastrnn._core, "") when the C core loads and has the optimizer kernels,
    else (None, the reason). Looked up once, through the backend registry:
    importing the "c" backend selects the kernel ISA (FASTRNN_ISA) first."""
    if not _core_cache:
        from . import backends
        try:
            backends.get_backend("c", "forward")
        except ImportError as exc:  # BackendUnavailableError: no compiled core here
            _core_cache.append((None, str(exc)))
        else:
            from . import _core
            missing = [f for f in _CORE_FUNCTIONS if not hasattr(_core, f)]
            _core_cache.append((None, f"the installed compiled core predates the optimizer "
                                      f"kernels (it lacks {', '.join(missing)}); rebuild it")
                               if missing else (_core, ""))
    return _core_cache[0]


def c_kernels_available() -> bool:
    """Whether the C core's optimizer kernels can run here (the compiled core
    loads and has them); ``opt.kernels = "c"`` needs them."""
    return _compiled_core()[0] is not None


def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (never a copy: the kernels write
    through it into the caller's array)."""
    return a.reshape(-1)


# -- parameters and gradients --------------------------------------------------

def _parameter_dict(params: ParamsLike) -> Dict[str, np.ndarray]:
    """Check ``params`` (a dict name -> array, or an iterable of (name, array)
    pairs) and return a dict of the same arrays (references: updated in place)."""
    if isinstance(params, np.ndarray) or isinstance(params, (str, bytes)):
        raise TypeError("params must be a dict name -> array or an iterable of (name, array) "
                        f"pairs, got {type(params).__name__}")
    if isinstance(params, Mapping):
        pairs = list(params.items())
    else:
        try:
            pairs = list(params)
        except TypeError:
            raise TypeError("params must be a dict name -> array or an iterable of (name, array) "
                            f"pairs, got {type(params).__name__}") from None
    result: Dict[str, np.ndarray] = {}
    dtype = first = None
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError("params must be a dict name -> array or an iterable of (name, array) "
                            f"pairs; got an element {type(pair).__name__} {pair!r:.60}")
        name, arr = pair
        if not isinstance(name, str):
            raise TypeError(f"params: parameter names must be str, got {type(name).__name__} "
                            f"{name!r}")
        if name in result:
            raise ValueError(f"params: parameter {name!r} appears more than once")
        dtype, first = _one_float_dtype(f"params[{name!r}]", arr, "updated in place", dtype,
                                        first, "parameters")
        if not (arr.flags.c_contiguous and arr.flags.aligned):
            raise ValueError(f"params[{name!r}] must be C-contiguous and aligned (it is updated "
                             "in place)")
        if not arr.flags.writeable:
            raise ValueError(f"params[{name!r}] is read-only (it is updated in place)")
        for other_name, other in result.items():
            if np.may_share_memory(arr, other):
                raise ValueError(f"params[{name!r}] overlaps params[{other_name!r}]; each "
                                 "parameter must be its own array")
        result[name] = arr
    if not result:
        raise ValueError("params is empty: an optimizer needs at least one parameter")
    return result


def _gradient_arrays(grads, what: str = "grads"):
    """(names, arrays) of a dict, a single array, or an iterable of arrays of
    gradients, all one float dtype, writable (clipping works in place)."""
    if isinstance(grads, np.ndarray):
        items = [(f"{what}", grads)]
    elif isinstance(grads, Mapping):
        items = [(f"{what}[{k!r}]", g) for k, g in grads.items()]
    elif isinstance(grads, (str, bytes)) or not isinstance(grads, Iterable):
        raise TypeError(f"{what} must be a dict of arrays, an array or an iterable of arrays, "
                        f"got {type(grads).__name__}")
    else:
        items = [(f"{what}[{i}]", g) for i, g in enumerate(grads)]
    dtype = first = None
    for label, g in items:
        dtype, first = _one_float_dtype(label, g, "modified in place", dtype, first, "gradients")
        if not g.flags.writeable:
            raise ValueError(f"{label} is read-only (clipping modifies it in place)")
    return [g for _, g in items], dtype


# -- clipping -------------------------------------------------------------------

def _norm_type(value) -> float:
    if isinstance(value, str) and value.strip().lower() == "inf":
        return math.inf
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    try:
        return v.real_number("norm_type", value, 0.0, low_open=True)
    except ValueError:
        raise ValueError(f"norm_type must be a finite number > 0 or inf, got {value!r}") from None


def _vector_norm(x: np.ndarray, norm_type: float, dtype) -> Any:
    """torch.linalg.vector_norm of a flattened array, in ``dtype``."""
    if x.size == 0:
        return dtype.type(0)
    a = np.abs(x.ravel())
    if norm_type == math.inf:
        return a.max()
    if norm_type == 2.0:
        return np.sqrt(np.dot(a, a))
    if norm_type == 1.0:
        return a.sum(dtype=dtype)
    p = dtype.type(norm_type)
    return np.power(np.power(a, p).sum(dtype=dtype), dtype.type(1.0) / p)


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite: bool = False):
    """Scale gradients in place so that their total norm is at most ``max_norm``,
    as torch.nn.utils.clip_grad_norm_.

    grads: a dict of gradient arrays (e.g. ``backward(...).params``), one array,
    or an iterable of arrays, all one float dtype. The total norm is the
    ``norm_type`` norm of the vector of each array's norm (= the norm of all
    entries together); every array is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))`` in its dtype. ``norm_type`` may be
    ``inf`` (``math.inf`` or ``"inf"``: the largest absolute entry).
    Returns the total norm before clipping, as a NumPy scalar of the gradients'
    dtype (0 for no gradients). A NaN or inf total norm raises
    :class:`NonFiniteNormError` when ``error_if_nonfinite`` (nothing is
    modified); otherwise the gradients are scaled by the resulting NaN/0, as torch.
    """
    max_norm = v.real_number("max_norm", max_norm, 0.0)
    norm_type = _norm_type(norm_type)
    error_if_nonfinite = v.boolean("error_if_nonfinite", error_if_nonfinite)
    arrays, dtype = _gradient_arrays(grads)
    if not arrays:
        return np.float64(0.0) if dtype is None else dtype.type(0)
    norms = np.array([_vector_norm(g, norm_type, dtype) for g in arrays], dtype=dtype)
    total_norm = _vector_norm(norms, norm_type, dtype)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise NonFiniteNormError(
            f"the total norm of order {norm_type} of the gradients is non-finite "
            f"({total_norm}), so it cannot be clipped; pass error_if_nonfinite=False to "
            "scale by it anyway")
    # torch: clip_coef = max_norm / (total_norm + 1e-6); clamp(max=1.0); always multiply
    clip_coef = dtype.type(max_norm) / (total_norm + dtype.type(1e-6))
    clip_coef = np.minimum(clip_coef, dtype.type(1.0))  # NaN propagates, as torch.clamp
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN, as torch, without a warning
        for g in arrays:
            np.multiply(g, clip_coef, out=g)
    return total_norm


def clip_grad_value_(grads, clip_value) -> None:
    """Clip every gradient entry to [-clip_value, clip_value] in place, as
    torch.nn.utils.clip_grad_value_ (NaN entries stay NaN). ``grads`` as for
    :func:`clip_grad_norm_`; clip_value a finite number >= 0."""
    clip_value = v.real_number("clip_value", clip_value, 0.0)
    arrays, dtype = _gradient_arrays(grads)
    if not arrays:
        return None
    c = dtype.type(clip_value)
    for g in arrays:
        np.clip(g, -c, c, out=g)
    return None


# -- the optimizers ----------------------------------------------------------------

# The updates below are written with out= into one scratch array per step so
# that a step allocates two temporaries rather than one per operation; each
# keeps torch's order of operations (a * b and a + b are commutative in IEEE
# arithmetic, so operands may swap, but nothing is reassociated).

def _lerp_(x: np.ndarray, end: np.ndarray, weight, scratch: np.ndarray) -> None:
    """x <- torch.lerp(x, end, weight) in place, scalar weight in x's dtype;
    scratch: an array of x's shape and dtype, overwritten."""
    np.subtract(end, x, out=scratch)
    if abs(weight) < 0.5:  # x + weight * (end - x)
        scratch *= weight
        x += scratch
    else:  # end - (end - x) * (1 - weight)
        scratch *= x.dtype.type(1) - weight
        np.subtract(end, scratch, out=x)


def _with_weight_decay(g: np.ndarray, p: np.ndarray, weight_decay, t) -> np.ndarray:
    """torch's grad.add(param, alpha=weight_decay): a new array, g untouched."""
    if weight_decay == 0:
        return g
    out = np.multiply(p, t(weight_decay))
    out += g
    return out


class Optimizer:
    """Base class: a set of named parameter arrays, one set of hyperparameters,
    per-parameter state, and torch's step / state_dict / load_state_dict.

    Attributes: ``params`` (the dict of parameter arrays, updated in place by
    :meth:`step`), ``defaults`` (the hyperparameters, a dict: read it, don't
    write it; assign ``lr`` through the attribute ``opt.lr``), ``state``
    (name -> dict of that parameter's state; empty until its first gradient),
    ``dtype``.
    """

    #: hyperparameter names, in signature order
    _hyperparameter_names: Tuple[str, ...] = ()
    _kernels = "auto"

    def __init__(self, params: ParamsLike, **hyperparameters):
        self.params = _parameter_dict(params)
        self.dtype = next(iter(self.params.values())).dtype
        self.defaults = self._validate_hyperparameters(hyperparameters)
        self.state: Dict[str, Dict[str, Any]] = {name: {} for name in self.params}

    # subclasses: hyperparameter checking, state layout and the update
    @classmethod
    def _validate_hyperparameters(cls, hp: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def _state_keys(self) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
        """(scalar keys, array keys) of one parameter's state once it exists."""
        raise NotImplementedError

    def _update(self, p: np.ndarray, g: np.ndarray, state: Dict[str, Any]) -> None:
        """The update on NumPy."""
        raise NotImplementedError

    def _update_c(self, core, p: np.ndarray, g: np.ndarray, state: Dict[str, Any]) -> None:
        """The same update through the C core's kernel (arrays checked by
        :meth:`_kernel_obstacle`; state buffers it creates are NumPy arrays)."""
        raise NotImplementedError

    @property
    def kernels(self) -> str:
        """Which implementation :meth:`step` uses: ``"auto"`` (default: the C
        core's kernels for every parameter whose arrays they can take,
        NumPy for the others), ``"c"`` (the C kernels, else an error) or
        ``"numpy"``. Results are the same bit for bit; assignable at any
        time. Assigning ``"c"`` where the kernels are missing raises
        :class:`fastrnn.backends.BackendUnavailableError`."""
        return self._kernels

    @kernels.setter
    def kernels(self, value) -> None:
        if not isinstance(value, str):
            raise TypeError(f"kernels must be a str, one of {KERNELS}, got "
                            f"{type(value).__name__} {value!r}")
        if value not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {value!r}")
        if value == "c":
            core, why = _compiled_core()
            if core is None:
                from .backends import BackendUnavailableError
                raise BackendUnavailableError(f"kernels='c': the C core's optimizer kernels are "
                                              f"not available: {why}")
        self._kernels = value

    def _kernel_obstacle(self, name: str, p: np.ndarray, g: np.ndarray,
                         state: Dict[str, Any]):
        """None if the C kernels can update parameter ``name`` in place, else
        why not (a sentence). They need the parameter and its existing state
        buffers C-contiguous, aligned, writable, of its shape and dtype, the
        gradient C-contiguous and aligned, and none of them overlapping."""
        if not (p.flags.c_contiguous and p.flags.aligned and p.flags.writeable):
            return f"params[{name!r}] is not C-contiguous, aligned and writable"
        if not (g.flags.c_contiguous and g.flags.aligned):
            return f"grads[{name!r}] is not C-contiguous and aligned"
        arrays = [(f"params[{name!r}]", p), (f"grads[{name!r}]", g)]
        for key in self._state_keys()[1]:
            buf = state.get(key)
            if buf is None:
                continue  # created by the update, C-contiguous
            label = f"state[{name!r}][{key!r}]"
            if not (isinstance(buf, np.ndarray) and buf.dtype == p.dtype and
                    buf.shape == p.shape):
                return f"{label} is not an array of params[{name!r}]'s shape and dtype"
            if not (buf.flags.c_contiguous and buf.flags.aligned and buf.flags.writeable):
                return f"{label} is not C-contiguous, aligned and writable"
            for other_label, other in arrays:
                if np.may_share_memory(buf, other):
                    return f"{label} overlaps {other_label}"
            arrays.append((label, buf))
        return None

    @property
    def lr(self) -> float:
        """The learning rate (assignable, e.g. for a schedule; checked as in the
        constructor)."""
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value) -> None:
        self.defaults["lr"] = v.real_number("lr", value, 0.0)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={self.defaults[k]!r}" for k in self._hyperparameter_names)
        return (f"{type(self).__name__}({len(self.params)} parameters, dtype={self.dtype}, "
                f"{hp})")

    def _check_grads(self, grads) -> Dict[str, np.ndarray]:
        if not isinstance(grads, Mapping):
            raise TypeError(f"grads must be a dict parameter name -> gradient array, got "
                            f"{type(grads).__name__}")
        for name in grads:
            if name not in self.params:
                known = ", ".join(repr(n) for n in self.params)
                raise ValueError(f"grads[{name!r}]: no parameter of that name (the parameters "
                               f"are {known})")
        checked = {}
        for name, p in self.params.items():  # the parameters' order, whatever the dict's
            if name not in grads or grads[name] is None:
                continue  # no gradient this step: skipped, as torch skips p.grad is None
            g = grads[name]
            _check_like(f"grads[{name!r}]", g, name, p)
            if np.may_share_memory(g, p):
                raise ValueError(f"grads[{name!r}] overlaps params[{name!r}]")
            checked[name] = g
        return checked

    def step(self, grads: Mapping) -> None:
        """One update of every parameter that has a gradient in ``grads`` (a dict
        name -> array of the parameter's shape and dtype; a missing name, or
        None, skips that parameter this step). The parameters are updated in
        place; ``grads`` is not modified. Every gradient is checked before any
        parameter changes."""
        checked = self._check_grads(grads)
        core = None if self._kernels == "numpy" else _compiled_core()[0]
        plan = []  # (name, gradient, use the C kernel), decided before any update
        for name, g in checked.items():
            use_c = False
            if core is not None:
                why = self._kernel_obstacle(name, self.params[name], g, self.state[name])
                if why is not None and self._kernels == "c":
                    raise ValueError(f"kernels='c': the C kernels cannot update this "
                                     f"parameter in place: {why}")
                use_c = why is None
            plan.append((name, g, use_c))
        for name, g, use_c in plan:
            if use_c:
                self._update_c(core, self.params[name], g, self.state[name])
            else:
                self._update(self.params[name], g, self.state[name])

    # -- checkpoints --
    def state_dict(self) -> Dict[str, Any]:
        """A checkpoint: ``{"optimizer": class name, "hyperparameters": {...},
        "state": {name: {"step": int, buffer name: array copy, ...}}}`` with
        only parameters that have state. Plain Python and NumPy values (e.g.
        for np.savez after flattening, or pickle); the arrays are copies."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": dict(self.defaults),
            "state": {name: {k: (val.copy() if isinstance(val, np.ndarray) else val)
                             for k, val in st.items()}
                      for name, st in self.state.items() if st},
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a :meth:`state_dict` (hyperparameters and state, copied in).
        Checks the optimizer class, the hyperparameters (as the constructor
        does), the parameter names, each state entry's keys, and each buffer's
        shape and dtype against the parameter's; on an error nothing changes."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        missing = {"optimizer", "hyperparameters", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict lacks {sorted(missing)}; expected the keys "
                             "'optimizer', 'hyperparameters' and 'state'")
        if state_dict["optimizer"] != type(self).__name__:
            raise ValueError(f"state_dict['optimizer'] is {state_dict['optimizer']!r}, but this "
                             f"optimizer is {type(self).__name__!r}")
        hp = state_dict["hyperparameters"]
        if not isinstance(hp, Mapping) or set(hp) != set(self._hyperparameter_names):
            raise ValueError(f"state_dict['hyperparameters'] must have exactly the keys "
                             f"{list(self._hyperparameter_names)}, got "
                             f"{sorted(hp) if isinstance(hp, Mapping) else type(hp).__name__}")
        hp = self._validate_hyperparameters(dict(hp))
        saved_defaults, self.defaults = self.defaults, hp  # _state_keys reads defaults
        try:
            scalar_keys, array_keys = self._state_keys()
        finally:
            self.defaults = saved_defaults
        states = state_dict["state"]
        if not isinstance(states, Mapping):
            raise TypeError(f"state_dict['state'] must be a dict, got {type(states).__name__}")
        new_state: Dict[str, Dict[str, Any]] = {name: {} for name in self.params}
        for name, st in states.items():
            where = f"state_dict['state'][{name!r}]"
            if name not in self.params:
                raise ValueError(f"{where}: no parameter of that name in this optimizer "
                                 f"(its parameters are {list(self.params)})")
            if not isinstance(st, Mapping):
                raise TypeError(f"{where} must be a dict, got {type(st).__name__}")
            if set(st) != set(scalar_keys) | set(array_keys):
                raise ValueError(f"{where} must have the keys "
                                 f"{sorted(set(scalar_keys) | set(array_keys))} for these "
                                 f"hyperparameters, got {sorted(st)}")
            p = self.params[name]
            entry = {}
            for k in scalar_keys:  # the step count
                entry[k] = v.integer(f"{where}[{k!r}]", st[k], 0)
            for k in array_keys:
                arr = st[k]
                _check_like(f"{where}[{k!r}]", arr, name, p)
                entry[k] = np.array(arr, order="C", copy=True)
            new_state[name] = entry
        self.defaults = hp
        self.state = new_state
        self._after_load()

    def _count_step(self, p: np.ndarray, state: Dict[str, Any]) -> None:
        """A parameter's state at its gradient: created at the first one (step
        0, zero buffers in C order, as torch does lazily), then this step
        counted."""
        if not state:
            state["step"] = 0
            for k in self._state_keys()[1]:
                state[k] = np.zeros(p.shape, self.dtype)
        state["step"] += 1

    def _after_load(self) -> None:
        """Hook: state that exists from construction (Adagrad's) is recreated."""


def _one_float_dtype(label: str, arr, why: str, dtype, first, role: str):
    """``arr`` (named ``label``) must be a float32 / float64 ndarray with the
    dtype of the first of its kind (``first``, of ``dtype``; both None for
    the first). Returns the (dtype, first) to check the next one against."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{label} must be a numpy.ndarray ({why}), got {type(arr).__name__}")
    if arr.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"{label} must be float32 or float64, got dtype {arr.dtype}")
    if dtype is None:
        return arr.dtype, label
    if arr.dtype != dtype:
        raise TypeError(f"{label} has dtype {arr.dtype} but {first} has dtype {dtype}; all "
                        f"{role} must have one dtype")
    return dtype, first


def _check_like(what: str, arr, name: str, p: np.ndarray) -> None:
    """``arr`` (a gradient or a state buffer, named ``what``) must be an
    ndarray of the dtype and shape of parameter ``name``."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != p.dtype:
        raise TypeError(f"{what} has dtype {arr.dtype} but the parameters have dtype "
                        f"{p.dtype}; fastrnn does not mix dtypes")
    if arr.shape != p.shape:
        raise ValueError(f"{what} must have the shape of params[{name!r}] = {p.shape}, got "
                         f"{arr.shape}")


def _check_lr(hp):
    return v.real_number("lr", hp["lr"], 0.0)


def _check_nonnegative(hp, name):
    return v.real_number(name, hp[name], 0.0)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening,
    Nesterov momentum and (L2) weight decay, as torch.optim.SGD (see the module
    docstring for the update). State: ``momentum_buffer`` when momentum != 0."""

    _hyperparameter_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params: ParamsLike, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    @classmethod
    def _validate_hyperparameters(cls, hp):
        out = {"lr": _check_lr(hp), "momentum": _check_nonnegative(hp, "momentum"),
               # torch does not check dampening; outside [0, 1] (1 - dampening) would
               # flip or amplify the gradient, never what is meant
               "dampening": v.real_number("dampening", hp["dampening"], 0.0, 1.0,
                                          high_open=False),
               "weight_decay": _check_nonnegative(hp, "weight_decay"),
               "nesterov": v.boolean("nesterov", hp["nesterov"])}
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0 (got "
                             f"momentum={out['momentum']!r}, dampening={out['dampening']!r})")
        return out

    def _state_keys(self):
        return (), (("momentum_buffer",) if self.defaults["momentum"] != 0 else ())

    def _update(self, p, g, state):
        hp, t = self.defaults, self.dtype.type
        g = _with_weight_decay(g, p, hp["weight_decay"], t)
        momentum = hp["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, order="C", copy=True)
            else:
                buf *= t(momentum)
                buf += t(1 - hp["dampening"]) * g
            g = g + t(momentum) * buf if hp["nesterov"] else buf
        p -= t(hp["lr"]) * g

    def _update_c(self, core, p, g, state):
        hp = self.defaults
        buf, first_step = None, False
        if hp["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # torch: buf = clone(grad), which the kernel writes
                buf = state["momentum_buffer"] = np.empty(p.shape, self.dtype)
                first_step = True
            buf = _flat(buf)
        core.sgd_step(_flat(p), _flat(g), buf, hp["lr"], hp["momentum"], hp["dampening"],
                      hp["weight_decay"], hp["nesterov"], first_step)


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad (see the module docstring). State, created
    with the optimizer for every parameter: ``step`` and ``sum``."""

    _hyperparameter_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                             "eps")

    def __init__(self, params: ParamsLike, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)
        self._after_load()

    @classmethod
    def _validate_hyperparameters(cls, hp):
        return {"lr": _check_lr(hp), "lr_decay": _check_nonnegative(hp, "lr_decay"),
                "weight_decay": _check_nonnegative(hp, "weight_decay"),
                "initial_accumulator_value": _check_nonnegative(hp, "initial_accumulator_value"),
                "eps": _check_nonnegative(hp, "eps")}

    def _after_load(self):
        # torch creates Adagrad's state in the constructor (and after loading a
        # state without it): step 0, sum = initial_accumulator_value
        for name, p in self.params.items():
            if not self.state[name]:
                self.state[name] = {"step": 0, "sum": np.full(
                    p.shape, self.defaults["initial_accumulator_value"], dtype=self.dtype)}

    def _state_keys(self):
        return ("step",), ("sum",)

    def _update(self, p, g, state):
        hp, t = self.defaults, self.dtype.type
        state["step"] += 1
        step = state["step"]
        g = _with_weight_decay(g, p, hp["weight_decay"], t)
        clr = hp["lr"] / (1 + (step - 1) * hp["lr_decay"])  # in double, as torch
        s = state["sum"]
        # out=: for a 0-d parameter NumPy would return a scalar, which the
        # out= below cannot take
        scratch = np.multiply(g, g, out=np.empty(p.shape, self.dtype))
        s += scratch
        std = np.sqrt(s)
        std += t(hp["eps"])
        np.multiply(g, t(-clr), out=scratch)  # p + (-clr * g) / std
        scratch /= std
        p += scratch

    def _update_c(self, core, p, g, state):
        hp = self.defaults
        state["step"] += 1
        core.adagrad_step(_flat(p), _flat(g), _flat(state["sum"]), state["step"], hp["lr"],
                          hp["lr_decay"], hp["weight_decay"], hp["eps"])


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop (see the module docstring). State: ``step``,
    ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered)."""

    _hyperparameter_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params: ParamsLike, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
                 momentum=0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    @classmethod
    def _validate_hyperparameters(cls, hp):
        # torch only checks alpha >= 0; alpha > 1 makes (1 - alpha) negative and the
        # mean square negative (sqrt of it NaN), so it is refused here
        return {"lr": _check_lr(hp),
                "alpha": v.real_number("alpha", hp["alpha"], 0.0, 1.0, high_open=False),
                "eps": _check_nonnegative(hp, "eps"),
                "weight_decay": _check_nonnegative(hp, "weight_decay"),
                "momentum": _check_nonnegative(hp, "momentum"),
                "centered": v.boolean("centered", hp["centered"])}

    def _state_keys(self):
        arrays = ("square_avg",)
        if self.defaults["momentum"] > 0:
            arrays += ("momentum_buffer",)
        if self.defaults["centered"]:
            arrays += ("grad_avg",)
        return ("step",), arrays

    def _update(self, p, g, state):
        hp, t = self.defaults, self.dtype.type
        self._count_step(p, state)
        g = _with_weight_decay(g, p, hp["weight_decay"], t)
        alpha = hp["alpha"]
        square_avg = state["square_avg"]
        square_avg *= t(alpha)
        # addcmul: ((1 - alpha) * g) * g; out=, as in Adagrad, for 0-d parameters
        scratch = np.multiply(g, t(1 - alpha), out=np.empty(p.shape, self.dtype))
        scratch *= g
        square_avg += scratch
        if hp["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, g, t(1 - alpha), scratch)
            # addcmul(grad_avg, grad_avg, value=-1): v + (-a) * a, which is v - a * a
            avg = np.multiply(grad_avg, grad_avg, out=np.empty(p.shape, self.dtype))
            np.subtract(square_avg, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(square_avg)
        avg += t(hp["eps"])
        if hp["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= t(hp["momentum"])
            np.divide(g, avg, out=scratch)
            buf += scratch
            np.multiply(buf, t(hp["lr"]), out=scratch)
            p -= scratch
        else:
            np.multiply(g, t(-hp["lr"]), out=scratch)  # p + (-lr * g) / avg
            scratch /= avg
            p += scratch

    def _update_c(self, core, p, g, state):
        hp = self.defaults
        self._count_step(p, state)
        buf, grad_avg = state.get("momentum_buffer"), state.get("grad_avg")
        core.rmsprop_step(_flat(p), _flat(g), _flat(state["square_avg"]),
                          None if buf is None else _flat(buf),
                          None if grad_avg is None else _flat(grad_avg), hp["lr"], hp["alpha"],
                          hp["eps"], hp["weight_decay"], hp["momentum"], hp["centered"])


def _check_betas(hp):
    betas = hp["betas"]
    if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got "
                        f"{betas!r}")
    return (v.real_number("betas[0]", betas[0], 0.0, 1.0),
            v.real_number("betas[1]", betas[1], 0.0, 1.0))


class Adam(Optimizer):
    """Adam as torch.optim.Adam (L2 weight decay added to the gradient; see the
    module docstring). State: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``."""

    _hyperparameter_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled_weight_decay = False

    def __init__(self, params: ParamsLike, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    @classmethod
    def _validate_hyperparameters(cls, hp):
        return {"lr": _check_lr(hp), "betas": _check_betas(hp),
                "eps": _check_nonnegative(hp, "eps"),
                "weight_decay": _check_nonnegative(hp, "weight_decay"),
                "amsgrad": v.boolean("amsgrad", hp["amsgrad"])}

    def _state_keys(self):
        arrays = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.defaults["amsgrad"]
                                              else ())
        return ("step",), arrays

    def _update(self, p, g, state):
        hp, t = self.defaults, self.dtype.type
        self._count_step(p, state)
        lr, (beta1, beta2), wd = hp["lr"], hp["betas"], hp["weight_decay"]
        if wd != 0:
            if self._decoupled_weight_decay:
                p *= t(1 - lr * wd)
            else:
                g = _with_weight_decay(g, p, wd, t)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        scratch = np.empty_like(p)
        _lerp_(exp_avg, g, t(1 - beta1), scratch)
        exp_avg_sq *= t(beta2)
        np.multiply(g, t(1 - beta2), out=scratch)  # addcmul: ((1 - beta2) * g) * g
        scratch *= g
        exp_avg_sq += scratch
        step = float(state["step"])  # torch keeps the step as a float tensor
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        if hp["amsgrad"]:
            max_sq = state["max_exp_avg_sq"]
            np.maximum(max_sq, exp_avg_sq, out=max_sq)
            denom = np.sqrt(max_sq)
        else:
            denom = np.sqrt(exp_avg_sq)
        denom /= t(bias_correction2_sqrt)
        denom += t(hp["eps"])
        np.multiply(exp_avg, t(-step_size), out=scratch)  # p + (-step_size * m) / denom
        scratch /= denom
        p += scratch

    def _update_c(self, core, p, g, state):
        hp = self.defaults
        self._count_step(p, state)
        beta1, beta2 = hp["betas"]
        max_sq = state.get("max_exp_avg_sq")
        core.adam_step(_flat(p), _flat(g), _flat(state["exp_avg"]), _flat(state["exp_avg_sq"]),
                       None if max_sq is None else _flat(max_sq), state["step"], hp["lr"],
                       beta1, beta2, hp["eps"], hp["weight_decay"], hp["amsgrad"],
                       self._decoupled_weight_decay)


class AdamW(Adam):
    """AdamW as torch.optim.AdamW: Adam with decoupled weight decay
    ``p <- p * (1 - lr * weight_decay)`` before the moment update (default
    weight_decay 1e-2). State as :class:`Adam`."""

    _decoupled_weight_decay = True

    def __init__(self, params: ParamsLike, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
