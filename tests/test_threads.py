"""Threads: the setting, its defaults, threadpoolctl, and results that do not
depend on the thread count.

The C kernels split a time step over blocks of hidden units and the
products around the time loop over blocks of rows. Every output element is
computed by the same operations whatever the split, so the threaded results
must be *bitwise* equal to the one-thread results, on every ISA path; they
are also checked against the NumPy reference at the usual tolerance. The
work threshold is lowered to 0 so that the small shapes of a test take the
threaded path (tasks exist only where H spans several panels, so the
shapes below have H > 64).
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn import threads

from conftest import TOLERANCE, rel_err

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(),
                                reason="the C backend is not built")

from fastrnn.cells import CELLS


@pytest.fixture(params=["auto", "baseline"])
def isa(request):
    from fastrnn.backends import c
    before = c.active_isa()
    yield c.select_isa(request.param)
    c.select_isa(before)


def _train(cell, dtype, T, B, In, H, seed=0):
    rng = np.random.default_rng(seed)
    G = CELLS[cell].gates
    params = [rng.uniform(-0.3, 0.3, s).astype(dtype)
              for s in ((G * H, In), (G * H, H), (G * H,), (G * H,))]
    x = rng.standard_normal((T, B, In)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    c0 = rng.standard_normal((B, H)).astype(dtype) if cell == "lstm" else None
    d_out = rng.standard_normal((T, B, H)).astype(dtype)

    def run(backend):
        res = F.forward(cell, x, *params, h0=h0, c0=c0, backend=backend, training=True)
        g = F.backward(res, d_out)
        arrays = [res.output, res.h_n, g.x, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, g.h0]
        if cell == "lstm":
            arrays += [res.c_n, g.c0]
        return arrays
    return run


# H = 100 and 130 are not multiples of any panel width; T * B >= 64 splits
# the products around the loop into row blocks.
SHAPES = [(7, 5, 3, 100), (40, 5, 70, 130), (3, 1, 2, 257)]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}_B{}_I{}_H{}".format(*s))
def test_threaded_results_equal_one_thread_bitwise(cell, shape, dtype, isa, thread_settings):
    run = _train(cell, dtype, *shape)
    fastrnn.set_num_threads(1)
    one = run("c")
    fastrnn.set_num_threads(2)
    threads._set_min_flops(0.0)
    two = run("c")
    for a, b in zip(one, two):
        assert np.array_equal(a, b)
    reference = run("numpy")
    errors = [rel_err(b, r) for b, r in zip(two, reference)]
    print(f"{cell} {np.dtype(dtype).name} {isa}: max rel err vs numpy {max(errors):.2e}")
    assert max(errors) <= TOLERANCE[np.dtype(dtype)]


def test_more_threads_than_tasks_and_cpus(thread_settings):
    run = _train("gru", np.float64, 5, 3, 4, 70)
    fastrnn.set_num_threads(1)
    one = run("c")
    fastrnn.set_num_threads(7)  # > 2 CPUs here and > the 5 panels of H = 70
    threads._set_min_flops(0.0)
    assert all(np.array_equal(a, b) for a, b in zip(one, run("c")))


def test_set_and_get(thread_settings):
    fastrnn.set_num_threads(3)
    assert fastrnn.get_num_threads() == 3
    fastrnn.set_num_threads(1)
    assert fastrnn.get_num_threads() == 1


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                        ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_set_num_threads_rejects(bad, error, thread_settings):
    with pytest.raises(error, match="set_num_threads: n must be an int >= 1"):
        fastrnn.set_num_threads(bad)


@pytest.mark.parametrize("env, expected", [
    ({"FASTRNN_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, 3),
    ({"OMP_NUM_THREADS": "5"}, 5),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # OpenMP's nested form: the outer level
    ({"FASTRNN_NUM_THREADS": "zero", "OMP_NUM_THREADS": "2"}, 2),  # unusable: next one
])
def test_default_from_environment(env, expected, monkeypatch):
    for name in ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert threads.default_num_threads() == expected


def test_default_without_environment_is_the_usable_cpus(monkeypatch):
    for name in ("FASTRNN_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: None)
    assert threads.default_num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: 0.5)  # half a CPU: one thread
    assert threads.default_num_threads() == 1


def test_default_applied_at_import():
    env = dict(os.environ, FASTRNN_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", "import fastrnn; print(fastrnn.get_num_threads())"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "3", out.stderr


def test_threadpoolctl_limits_fastrnn(thread_settings):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fastrnn.set_num_threads(2)
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "fastrnn"]
    assert len(info) == 1 and info[0]["num_threads"] == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="fastrnn"):
        assert fastrnn.get_num_threads() == 1
    assert fastrnn.get_num_threads() == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_runs_threaded_kernels():
    """A child forked after the pool started has no workers; it must make new
    ones, not wait forever for the parent's."""
    code = (
        "import os, sys, numpy as np, fastrnn\n"
        "from fastrnn import functional as F, threads\n"
        "fastrnn.set_num_threads(2); threads._set_min_flops(0.0)\n"
        "H = 130; rng = np.random.default_rng(0)\n"
        "p = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in ((3*H, 4), (3*H, H), (3*H,), (3*H,))]\n"
        "x = rng.standard_normal((6, 2, 4)).astype(np.float32)\n"
        "ref = F.forward('gru', x, *p, backend='c').output\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    out = F.forward('gru', x, *p, backend='c').output\n"
        "    os._exit(0 if np.array_equal(out, ref) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_scratch_kept_between_calls_gives_the_same_results(thread_settings):
    """Whole-window calls reuse the calling thread's scratch block (scratch.c):
    a call after a larger and a smaller one, after release_memory(), and in
    another Python thread must equal a fresh process's first call."""
    import threading
    small = _train("lstm", np.float64, 6, 3, 5, 70, seed=1)
    large = _train("gru", np.float64, 30, 8, 40, 130, seed=2)
    first = small("c")
    large("c")
    assert all(np.array_equal(a, b) for a, b in zip(first, small("c")))
    fastrnn.release_memory()
    fastrnn.release_memory()  # twice: nothing left to free is fine
    assert all(np.array_equal(a, b) for a, b in zip(first, small("c")))
    results = []
    worker = threading.Thread(target=lambda: results.append(small("c")))
    worker.start()
    worker.join()
    assert all(np.array_equal(a, b) for a, b in zip(first, results[0]))
