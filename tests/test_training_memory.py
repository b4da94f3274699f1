"""Peak working memory of the C trainer does not grow with the sequence.

Each size runs in a fresh interpreter that measures its peak resident set
(ru_maxrss) just before and just after one fit_sequence call over T
characters; the increase is the trainer's working memory (the inputs and
targets exist before the first reading). Windows of 25 steps bound it, so
T = 100 000 must cost about what T = 1 000 costs. The margin (4 MiB) absorbs
allocator noise; an O(T) workspace would need T * B * G * H * 8 bytes =
~200 MiB here for the LSTM.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import fastrnn

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(), reason="no compiled core")

CHILD = r"""
import json, resource, sys
import numpy as np
from fastrnn import training as tr
T = int(sys.argv[1])
lay = tr.Layout("lstm", 32, 64, 32)
spec = tr.TrainSpec(lay, index_input=True, k1=25, clip=tr.Clip("value", 5.0), optimizer=tr.Adagrad(0.1))
rng = np.random.default_rng(0)
theta = lay.init(np.float64, seed=0)
inputs = rng.integers(0, 32, (T, 1))
targets = rng.integers(0, 32, (T, 1))
state = tr.OptimizerState.zeros_like(theta)
# warm-up on a short sequence: imports, first allocations
tr.fit_sequence(spec, theta, inputs[:50], targets[:50], state=state, backend="c")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = tr.fit_sequence(spec, theta, inputs, targets, state=state, backend="c")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kib": after - before, "windows": len(res.losses)}))
"""


def peak_increase_kib(T: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(T)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_peak_memory_is_independent_of_sequence_length():
    short, long = peak_increase_kib(1_000), peak_increase_kib(100_000)
    print(f"\npeak RSS increase: T=1000 -> {short['kib']} KiB, T=100000 -> {long['kib']} KiB")
    assert long["windows"] == 4000 and short["windows"] == 40
    assert long["kib"] <= short["kib"] + 4096
