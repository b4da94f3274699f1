"""Backend registry and selection.

A backend is a module with ``forward``, ``backward`` and ``step`` following
the contract in docs/ARCHITECTURE.md. Three exist:

* ``"c"`` - the compiled core (fastrnn._core), GIL released around each call;
* ``"numba"`` - explicit ``@njit(cache=True)`` loops mirroring the C kernels
  (needs the optional ``numba`` package);
* ``"numpy"`` - the readable reference, always available.

Selection, in order: an explicit ``backend=`` argument, else the
``FASTRNN_BACKEND`` environment variable, else ``"auto"``, which takes the
first available of c, numba, numpy and warns when it has to fall back to
numpy.
"""
from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

BACKENDS = ("c", "numba", "numpy")
_MODULES = {"c": "fastrnn.backends.c", "numba": "fastrnn.backends.numba_loops",
            "numpy": "fastrnn.backends.numpy_ref"}
_loaded: dict[str, ModuleType] = {}
_import_errors: dict[str, str] = {}


class BackendUnavailableError(ImportError):
    """The requested backend cannot be loaded on this installation."""


def _try_load(name: str) -> ModuleType | None:
    if name in _loaded:
        return _loaded[name]
    if name in _import_errors:
        return None
    try:
        module = importlib.import_module(_MODULES[name])
    except ImportError as exc:
        _import_errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = module
    return module


def available_backends() -> list[str]:
    """Names of the backends that load on this installation, fastest first."""
    return [name for name in BACKENDS if _try_load(name) is not None]


def resolve_backend(backend: str | None = None) -> str:
    """The concrete backend name for ``backend`` (None / "auto" / a name)."""
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a str (one of {('auto',) + BACKENDS}) or None, "
                        f"got {type(backend).__name__}")
    name = backend if backend is not None else os.environ.get("FASTRNN_BACKEND", "auto")
    name = name.strip().lower()
    if name == "auto":
        for candidate in BACKENDS:
            if _try_load(candidate) is not None:
                if candidate == "numpy":
                    warnings.warn(
                        "fastrnn: neither the compiled core nor numba is available "
                        f"({'; '.join(_import_errors.values())}); using the slow NumPy "
                        "reference backend",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return candidate
        raise BackendUnavailableError("no fastrnn backend could be loaded")  # numpy always loads
    if name not in _MODULES:
        raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")
    if _try_load(name) is None:
        raise BackendUnavailableError(
            f"fastrnn backend {name!r} is not available: {_import_errors[name]}"
        )
    return name


def get_backend(backend: str | None = None) -> ModuleType:
    """The backend module for ``backend`` (see resolve_backend)."""
    return _loaded[resolve_backend(backend)]
