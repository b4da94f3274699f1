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
    _simulate_missing(monkeypatch, "c", "numba")
    with pytest.warns(RuntimeWarning, match="slow NumPy reference backend"):
        assert fastrnn.resolve_backend("auto") == "numpy"
    with pytest.raises(fastrnn.BackendUnavailableError, match="simulated"):
        fastrnn.resolve_backend("c")


def _simulate_missing(monkeypatch, *names):
    """Make backends ``names`` fail to load, as without the core or numba."""
    for name in names:
        entry = backends.REGISTRY[name]
        for module in {entry.module, entry.trainer} - {None}:
            monkeypatch.setitem(backends._import_errors, module, f"{name}: ImportError: simulated")
            monkeypatch.delitem(backends._loaded, module, raising=False)


def test_every_feature_goes_through_the_registry(monkeypatch):
    """A backend that lacks a feature says so, naming both, when asked for
    it by name; auto skips it. The registry is patched, so this holds for
    whatever backends exist: one loses "train", and no backend has "lengths"
    yet."""
    from fastrnn import training as tr
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    first = fastrnn.available_backends()[0]
    entry = backends.REGISTRY[first]
    monkeypatch.setitem(backends.REGISTRY, first, backends.Backend(
        entry.name, entry.module, None, entry.features - {"train"}))
    with pytest.raises(backends.BackendFeatureError,
                       match=f"backend '{first}' does not implement 'train' \\(backends that do: "):
        fastrnn.resolve_backend(first, "train")
    assert fastrnn.resolve_backend("auto", "train") != first
    assert first not in tr.available_trainers()
    assert fastrnn.resolve_backend("auto", "forward") == first  # its other features stay
    spec = tr.TrainSpec(tr.Layout("rnn_tanh", 2, 3, 2), head="mse", k1=2,
                        optimizer=tr.SGD(0.1))
    theta = spec.layout.init(np.float64, seed=0)
    x, y = np.zeros((4, 1, 2)), np.zeros((4, 1, 2))
    with pytest.raises(NotImplementedError, match=f"'{first}' does not implement 'train'"):
        tr.fit_sequence(spec, theta, x, y, backend=first)
    tr.fit_sequence(spec, theta, x, y)  # auto: the next backend with a trainer
    with pytest.raises(ValueError, match="feature must be one of"):
        fastrnn.resolve_backend("numpy", "fly")


def test_lengths_is_a_feature_of_the_backends_that_have_it(monkeypatch):
    """Per-row lengths: only the backends declaring "lengths" take them
    (and auto picks one, warning when only the slow NumPy reference has it)."""
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    able = [b for b in backends.BACKENDS if "lengths" in backends.features(b)]
    assert able and fastrnn.available_backends("lengths") == [
        b for b in fastrnn.available_backends() if b in able]
    for name in fastrnn.available_backends():
        if name in able:
            assert fastrnn.resolve_backend(name, "lengths") == name
        else:
            with pytest.raises(backends.BackendFeatureError,
                               match=f"backend '{name}' does not implement 'lengths' "
                                     f"\\(backends that do: {', '.join(able)}\\)"):
                fastrnn.resolve_backend(name, "lengths")
    lacking = [b for b in fastrnn.available_backends() if b not in able]
    if lacking and able == ["numpy"]:
        with pytest.warns(RuntimeWarning, match="no faster backend implements 'lengths' yet "
                                                f"\\({', '.join(lacking)} lack it\\)") as rec:
            fastrnn.forward("gru", np.zeros((2, 1, 3)), np.zeros((6, 3)), np.zeros((6, 2)),
                            lengths=[1])
        assert rec[0].filename == __file__  # the warning points at the caller's line
    for entry in list(backends.REGISTRY.values()):  # a registry where no backend has it
        monkeypatch.setitem(backends.REGISTRY, entry.name, backends.Backend(
            entry.name, entry.module, entry.trainer, entry.features - {"lengths"}))
    with pytest.raises(backends.BackendFeatureError, match="no fastrnn backend implements 'lengths'"):
        fastrnn.resolve_backend("auto", "lengths")


def test_streams_come_from_the_registry(backend):
    """A backend with its own streams (create_stream) gives those; the
    others the generic PyStream over their step."""
    from fastrnn import stream
    module = backends.get_backend(backend, "stream")
    s = stream.create("gru", np.zeros((6, 3)), np.zeros((6, 2)), backend=backend)
    if hasattr(module, "create_stream"):
        assert not isinstance(s, stream.PyStream) and s.backend == backend
    else:
        assert isinstance(s, stream.PyStream) and s.backend == backend


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
