"""Peak working memory of every sequence trainer does not grow with the sequence.

Each size runs in a fresh interpreter that measures its peak resident set
(VmHWM on Linux) just before and just after one fit_sequence call over T
characters; the increase is the trainer's working memory (the inputs and
targets exist before the first reading). Windows of 25 steps bound it, so
T = 100 000 must cost about what T = 1 000 costs. The margin (4 MiB) absorbs
allocator noise; an O(T) workspace would need T * B * G * H * 8 bytes =
~200 MiB here for the LSTM. As a control, the same run with one window over
20 000 steps must show its O(T) workspace in the same measurement.
"""
from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np
from fastrnn import training as tr

def peak_kib():
    # VmHWM belongs to this process's own address space. ru_maxrss does not
    # do here: Linux carries it across exec from the forking parent, so a
    # child of a large pytest process would start at the parent's peak.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
T, k1, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lay = tr.Layout("lstm", 32, 64, 32)
spec = tr.TrainSpec(lay, index_input=True, k1=k1, clip=tr.Clip("value", 5.0), optimizer=tr.Adagrad(0.1))
rng = np.random.default_rng(0)
theta = lay.init(np.float64, seed=0)
inputs = rng.integers(0, 32, (T, 1))
targets = rng.integers(0, 32, (T, 1))
state = tr.OptimizerState.zeros_like(theta)
# warm-up on a short sequence: imports, first allocations
tr.fit_sequence(spec, theta, inputs[:50], targets[:50], state=state, backend=backend)
before = peak_kib()
res = tr.fit_sequence(spec, theta, inputs, targets, state=state, backend=backend)
after = peak_kib()
print(json.dumps({"kib": after - before, "windows": len(res.losses)}))
"""


def peak_increase_kib(T: int, backend: str, k1: int = 25) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(T), str(k1), backend], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_peak_memory_is_independent_of_sequence_length(trainer):
    backend = trainer
    short, long = peak_increase_kib(1_000, backend), peak_increase_kib(100_000, backend)
    print(f"\n[{backend}] peak RSS increase: T=1000 -> {short['kib']} KiB, T=100000 -> {long['kib']} KiB")
    assert long["windows"] == 4000 and short["windows"] == 40
    assert long["kib"] <= short["kib"] + 4096
    # The control: one window over 20 000 steps must show up, or the
    # measurement above could not have seen an O(T) workspace either.
    whole = peak_increase_kib(20_000, backend, k1=20_000)
    gates_kib = 20_000 * 4 * 64 * 8 // 1024  # the (T, B, 4H) float64 gate gradients alone
    print(f"[{backend}] control, one 20000-step window: {whole['kib']} KiB (gate gradients alone: {gates_kib} KiB)")
    assert whole["windows"] == 1 and whole["kib"] >= gates_kib
