"""Subnormal numbers in the C kernels: flushed to zero by default.

A state or gradient that decays geometrically (a contracting recurrence, a
vanishing gradient, an optimizer moment of a parameter that gets no
gradient) passes through the subnormal range (float32 below ~1.18e-38,
float64 below ~2.2e-308). On many x86 cores each multiply or FMA that reads
or produces a subnormal needs a microcode assist of ~100 cycles, and such a
step runs 10-25x slower. So every compute call of the C backend runs with
flush-to-zero and denormals-are-zero set on its threads (x86 MXCSR FTZ and
DAZ, aarch64 FPCR FZ), and restores the calling thread's own mode when it
returns, errors included (csrc/runtime/fpenv.c). What that means for
results: inside those calls, a result whose magnitude is below the smallest
normal number ``tiny`` becomes (signed) 0 and a subnormal input reads as 0.
An operation whose operands and result are normal gives bit for bit the
IEEE result, so the two modes differ only downstream of an intermediate
that fell below ``tiny``, by less than ``tiny`` absolutely at that operation
(torch keeps subnormals, so a comparison with it differs there; the tests'
tolerances are relative to the largest value and never see it).

``FASTRNN_SUBNORMALS=keep`` in the environment (read at import; the default
is ``flush``) or ``set_flush_subnormals(False)`` leaves the caller's mode
alone instead: the kernels then compute with IEEE subnormals (unless the
caller itself flushes, e.g. after ``torch.set_flush_denormal(True)``). The
numba and NumPy backends always compute in the caller's mode. Not here: the
mode of code outside fastrnn's C calls, which is never changed.
"""
from __future__ import annotations

import os
import warnings

try:
    from . import _core
except ImportError:  # no compiled core: nothing to flush
    _core = None

_ENV = "FASTRNN_SUBNORMALS"
_POLICIES = {"flush": True, "keep": False}


def set_flush_subnormals(flush: bool) -> None:
    """Flush subnormals to zero inside the C kernels' calls (True, the
    default) or compute in the caller's mode, IEEE subnormals (False).

    Process-wide; do not call it while another thread is inside a fastrnn
    call. A no-op without the compiled core.
    """
    if not isinstance(flush, bool):
        raise TypeError(f"set_flush_subnormals: flush must be a bool, got {flush!r}")
    if _core is not None:
        _core.set_flush_subnormals(flush)


def get_flush_subnormals() -> bool:
    """Whether the C kernels' calls flush subnormals: the policy, and this
    build able to (x86-64 or aarch64); False without the compiled core."""
    return _core is not None and _core.get_flush_subnormals() and _core.can_flush_subnormals()


def _policy_from_environment() -> None:
    value = os.environ.get(_ENV, "").strip().lower()
    if not value:
        return
    if value not in _POLICIES:
        warnings.warn(f"fastrnn: {_ENV} must be one of {tuple(_POLICIES)}, got {value!r}; "
                      f"flushing subnormals (the default)", RuntimeWarning, stacklevel=2)
        return
    set_flush_subnormals(_POLICIES[value])


_policy_from_environment()
