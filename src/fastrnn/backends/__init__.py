"""The backend registry: which backends exist, what each can do, which one runs.

A backend implements some of these *features* (docs/ARCHITECTURE.md has
each contract):

* ``forward``, ``backward``, ``step`` - one layer over a window, its BPTT, one
  time step (the module in ``Backend.module``);
* ``stream`` - step-by-step inference with prepared weights: a backend whose
  module defines ``create_stream`` has its own (the C core packs the weights
  once); any backend with ``step`` gets the generic
  :class:`fastrnn.stream.PyStream`;
* ``train`` - the sequence trainer of fastrnn.training (``Backend.trainer``);
* ``lengths`` - per-row sequence lengths (``lengths=`` of forward / backward),
  PyTorch's packed-sequence semantics at the cost of the valid steps;
* ``projection`` - the LSTM with a projection of h (torch.nn.LSTM(proj_size)):
  the module's ``forward_proj`` / ``backward_proj``.

Three backends exist:

* ``"c"`` - the compiled core (fastrnn._core), GIL released around each call;
* ``"numba"`` - explicit ``@njit(cache=True)`` loops mirroring the C kernels
  (needs the optional ``numba`` package);
* ``"numpy"`` - the readable reference, always available.

Selection, in order: an explicit ``backend=`` argument, else the
``FASTRNN_BACKEND`` environment variable, else ``"auto"``, which takes the
first backend, in the order above, that loads and has the feature asked
for (and warns when that is the slow NumPy reference). A backend named
explicitly that lacks the feature is a :class:`BackendFeatureError` naming
both, never a silent substitute.
"""
from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Optional

__all__ = ["BACKENDS", "FEATURES", "Backend", "BackendUnavailableError", "BackendFeatureError",
           "available_backends", "resolve_backend", "get_backend", "select", "features"]

FEATURES = ("forward", "backward", "step", "stream", "train", "lengths", "projection")


@dataclass(frozen=True)
class Backend:
    """One backend: its modules and the features it implements."""

    name: str
    module: str             # forward / backward / step (and create_stream, if it has one)
    trainer: Optional[str]  # the module with train(config, ...), None without "train"
    features: frozenset


_LAYER = frozenset({"forward", "backward", "step", "stream"})
REGISTRY = {b.name: b for b in (
    Backend("c", "fastrnn.backends.c", "fastrnn.backends.c",
            _LAYER | {"train", "lengths", "projection"}),
    Backend("numba", "fastrnn.backends.numba_loops", "fastrnn.backends.numba_train",
            _LAYER | {"train", "lengths", "projection"}),
    Backend("numpy", "fastrnn.backends.numpy_ref", "fastrnn.backends.numpy_train",
            _LAYER | {"train", "lengths", "projection"}),
)}
#: The backends, fastest first: the order "auto" tries them in.
BACKENDS = tuple(REGISTRY)

_loaded: dict = {}
_import_errors: dict = {}


class BackendUnavailableError(ImportError):
    """The requested backend cannot be loaded on this installation."""


class BackendFeatureError(NotImplementedError):
    """The requested backend loads but does not implement the feature asked for."""


def _load(module_name: str, backend: str) -> Optional[ModuleType]:
    """The module, or None (the reason kept for messages) if an optional
    dependency or the compiled core is missing. Any other import failure is
    a bug and surfaces."""
    if module_name in _loaded:
        return _loaded[module_name]
    if module_name in _import_errors:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        _import_errors[module_name] = f"{backend}: {type(exc).__name__}: {exc}"
        return None
    _loaded[module_name] = module
    return module


def _loads(backend: Backend) -> bool:
    return _load(backend.module, backend.name) is not None and (
        backend.trainer is None or _load(backend.trainer, backend.name) is not None)


def _check_feature(feature: str) -> None:
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")


def features(backend: str) -> frozenset:
    """The features backend ``backend`` implements (whether or not it loads here)."""
    if backend not in REGISTRY:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return REGISTRY[backend].features


def available_backends(feature: Optional[str] = None) -> list:
    """Names of the backends that load on this installation (and implement
    ``feature``, if given), fastest first."""
    if feature is not None:
        _check_feature(feature)
    return [b.name for b in REGISTRY.values()
            if (feature is None or feature in b.features) and _loads(b)]


def resolve_backend(backend: Optional[str] = None, feature: str = "forward") -> str:
    """The concrete backend name for ``backend`` (None / "auto" / a name) and
    the feature the caller needs (see the module docstring)."""
    return _resolve(backend, feature)


def _resolve(backend: Optional[str], feature: str) -> str:
    """resolve_backend, for it and select: a warning names their caller's
    caller (the user's line), four frames up from here."""
    _check_feature(feature)
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a str (one of {('auto',) + BACKENDS}) or None, "
                        f"got {type(backend).__name__}")
    name = backend if backend is not None else os.environ.get("FASTRNN_BACKEND", "auto")
    name = name.strip().lower()
    if name == "auto":
        lacking = []  # faster backends that load but lack the feature
        for candidate in REGISTRY.values():
            if not _loads(candidate):
                continue
            if feature not in candidate.features:
                lacking.append(candidate.name)
                continue
            if candidate.name == "numpy":
                reason = (f"no faster backend implements {feature!r} yet ({', '.join(lacking)} "
                          f"lack it)" if lacking else
                          f"neither the compiled core nor numba is available "
                          f"({'; '.join(_import_errors.values())})")
                warnings.warn(f"fastrnn: {reason}; using the slow NumPy reference backend",
                              RuntimeWarning, stacklevel=4)
            return candidate.name
        raise BackendFeatureError(f"no fastrnn backend implements {feature!r} yet")
    if name not in REGISTRY:
        raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")
    entry = REGISTRY[name]
    if not _loads(entry):
        reasons = [_import_errors[m] for m in (entry.module, entry.trainer) if m in _import_errors]
        raise BackendUnavailableError(
            f"fastrnn backend {name!r} is not available: {'; '.join(reasons)}")
    if feature not in entry.features:
        able = [b.name for b in REGISTRY.values() if feature in b.features]
        raise BackendFeatureError(
            f"backend {name!r} does not implement {feature!r}"
            + (f" (backends that do: {', '.join(able)})" if able else " (no backend does yet)"))
    return name


def select(backend: Optional[str] = None, feature: str = "forward") -> tuple:
    """``(name, module)``: resolve_backend's name and the module that
    implements ``feature`` there (the trainer module for "train", the layer
    module otherwise), resolved once."""
    name = _resolve(backend, feature)
    entry = REGISTRY[name]
    return name, _loaded[entry.trainer if feature == "train" else entry.module]


def get_backend(backend: Optional[str] = None, feature: str = "forward") -> ModuleType:
    """The module that implements ``feature`` on ``backend`` (see :func:`select`)."""
    return select(backend, feature)[1]
