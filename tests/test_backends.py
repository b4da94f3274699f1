"""Backend selection, the ISA override, and the GIL being released."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import fastrnn
from fastrnn import backends


def test_numpy_is_always_available():
    assert "numpy" in fastrnn.available_backends()


def test_explicit_env_and_auto_selection(monkeypatch):
    available = fastrnn.available_backends()
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    assert fastrnn.resolve_backend() == available[0]
    monkeypatch.setenv("FASTRNN_BACKEND", "numpy")
    assert fastrnn.resolve_backend() == "numpy"
    assert fastrnn.resolve_backend("NumPy") == "numpy"   # explicit beats env, any case
    with pytest.raises(ValueError, match="backend must be one of"):
        fastrnn.resolve_backend("cuda")


def test_auto_warns_only_when_falling_back_to_numpy(monkeypatch):
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastrnn.resolve_backend("auto") in fastrnn.available_backends()
    for name in ("c", "numba"):
        monkeypatch.setitem(backends._import_errors, name, "ImportError: simulated")
        monkeypatch.delitem(backends._loaded, name, raising=False)
    with pytest.warns(RuntimeWarning, match="slow NumPy reference backend"):
        assert fastrnn.resolve_backend("auto") == "numpy"
    with pytest.raises(fastrnn.BackendUnavailableError, match="simulated"):
        fastrnn.resolve_backend("c")


def _run(code: str, **env) -> str:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=full_env, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif("c" not in fastrnn.available_backends(), reason="no compiled core")
def test_fastrnn_isa_env_forces_baseline():
    assert _run("import fastrnn; print(fastrnn.cpu_isa())", FASTRNN_ISA="baseline") == "baseline"
    auto = _run("import fastrnn; print(fastrnn.cpu_isa())", FASTRNN_ISA="auto")
    assert auto in ("baseline", "avx2", "avx512")
    # an ISA the build or CPU lacks falls back to baseline rather than crashing
    assert _run("import fastrnn; print(fastrnn.cpu_isa())", FASTRNN_ISA="sve9") == "baseline"


@pytest.mark.skipif("c" not in fastrnn.available_backends(), reason="no compiled core")
def test_c_kernels_release_the_gil():
    """While a long C forward runs in a thread, this thread keeps running
    Python. With the GIL held it could only run between kernel calls, of
    which there is exactly one."""
    rng = np.random.default_rng(0)
    layer = fastrnn.LSTM(64, 256, dtype=np.float64, backend="c", seed=0)
    x = rng.standard_normal((400, 16, 64))
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        layer(x)
        done.set()

    thread = threading.Thread(target=work)
    ticks_while_running = 0
    thread.start()
    started.wait()
    while not done.is_set():
        ticks_while_running += 1
    thread.join()
    assert ticks_while_running > 1000
