"""How many threads the C kernels use: the setting, its default, threadpoolctl.

The C backend threads one time step over blocks of hidden units (and the
large products around the time loop over column panels), only where a step
has enough work to pay for the hand-off; results are the same for every
thread count. The count is process-wide:

* ``fastrnn.set_num_threads(n)`` / ``fastrnn.get_num_threads()``;
* at import, the default is ``FASTRNN_NUM_THREADS``, else ``OMP_NUM_THREADS``
  (the usual knob for "how many threads may a numerical library use"), else
  the CPUs this process may actually run on (affinity mask and cgroup CPU
  quota, as in a container), see :func:`default_num_threads`;
* ``threadpoolctl.threadpool_limits(n)`` limits fastrnn too: a controller
  with ``user_api="fastrnn"`` is registered when threadpoolctl is installed.

The pool is plain POSIX threads, not OpenMP, so it is safe to ``fork`` while
no kernel is running (the child starts without workers and makes new ones on
demand); prefer the ``spawn`` start method in any case, as other libraries
loaded beside fastrnn (OpenMP runtimes in torch or a BLAS) are not fork-safe.

This module holds no state of its own: the count lives in the C core.
"""
from __future__ import annotations

import math
import numbers
import os

__all__ = ["set_num_threads", "get_num_threads", "default_num_threads"]

try:  # the count lives in the C core; without it the setting is kept here, unused
    from . import _core
except ImportError:  # pragma: no cover - source checkout without a build
    _core = None
_fallback_count = 1


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 cpu.max, v1 cfs), or None if unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota_us = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period_us = int(f.read())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def _env_count(name: str) -> int | None:
    value = os.environ.get(name, "").split(",")[0].strip()  # OMP allows "4,2" (nesting)
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 1 else None


def default_num_threads() -> int:
    """The thread count fastrnn starts with.

    ``FASTRNN_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the number of
    CPUs this process may use: its affinity mask, capped by the cgroup CPU
    quota rounded up (a container given 1.5 CPUs gets 2 threads).
    """
    for name in ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _env_count(name)
        if n is not None:
            return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def set_num_threads(n: int) -> None:
    """Let the C kernels use up to ``n`` threads (``n >= 1``) from now on.

    Process-wide; do not call it while another thread is inside a fastrnn
    call. One thread runs everything on the calling thread.
    """
    global _fallback_count
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n}")
    n = min(int(n), 1024)  # more threads than this would only be a mistake
    if _core is not None:
        _core.set_num_threads(n)
    _fallback_count = n


def get_num_threads() -> int:
    """The number of threads the C kernels may use."""
    return _core.get_num_threads() if _core is not None else _fallback_count


def _set_min_flops(flops: float) -> None:
    """Tests only: the work threshold below which a job runs on one thread
    (0 threads everything, so small test shapes take the threaded path;
    a negative value restores the default)."""
    if _core is not None:
        _core._set_thread_min_flops(float(flops))


def _register_threadpoolctl() -> None:
    """Make threadpoolctl's threadpool_limits / threadpool_info see fastrnn."""
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register") or _core is None:  # register() came in 3.5
        return

    class FastrnnController(threadpoolctl.LibController):
        user_api = "fastrnn"
        internal_api = "fastrnn"
        # The extension module's file is _core.<tag>.so; check_symbols keeps
        # other packages' _core modules out.
        filename_prefixes = ("_core",)
        check_symbols = ("frnn_get_num_threads",)

        def get_num_threads(self):
            return get_num_threads()

        def set_num_threads(self, num_threads):
            set_num_threads(int(num_threads))

        def get_version(self):
            from . import __version__
            return __version__

    threadpoolctl.register(FastrnnController)


set_num_threads(default_num_threads())
_register_threadpoolctl()
