"""Model files survive SIGKILL: CharLM.save and `fastrnn train` checkpoints.

A process is killed with SIGKILL (no handler, no cleanup: what the OOM
killer, `kill -9` or a power cut does to a writer) at seeded random moments
spread over its saves; after every kill the file at the path must load as a
complete model (the previous file or the new one, never a damaged one), and
the next successful save must leave no temporary file in the directory
(CharLM.save removes those of killed saves). Processes are started with
subprocess, never forked. The model is ~5.6 MB so that a save (~25 ms here)
is hit mid-write often; each test prints how many kills found a temporary
file, i.e. landed mid-write.

What this is not: a power-cut test (the page cache survives a SIGKILL; the
fsync calls that make the rename durable are only read, not exercised).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastrnn.charlm import CharLM, Vocab

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40
HIDDEN = 384  # gru: 466,190 parameters, x3 (theta, Adam's m and v) in float32 = 5.6 MB

# The child of the CharLM.save test: loads the model, says so, then saves it
# over and over with a new counter each time until it is killed.
SAVER = """
import sys
from fastrnn.charlm import CharLM
path, base = sys.argv[1], int(sys.argv[2])
lm = CharLM.load(path)
print("ready", flush=True)
k = 0
while True:
    lm.chars_total = base + k
    lm.save(path)
    k += 1
"""


def temporaries(directory, name):
    """Files a save to ``directory/name`` may leave: dot-name-anything-.tmp."""
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def start(args, cwd):
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, prefix: str) -> None:
    for line in proc.stdout:
        if line.startswith(prefix):
            return
    proc.wait(timeout=30)
    raise AssertionError(f"the child exited ({proc.returncode}) before {prefix!r}: "
                         f"{proc.stderr.read()}")


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: its pid and its locks are gone
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the child ended before it was killed"


def test_charlm_save_survives_sigkill_at_random_moments(tmp_path):
    rng = np.random.default_rng(20240901)
    path = tmp_path / "m.frnn"
    lm = CharLM(Vocab.from_text(TEXT), "gru", HIDDEN, batch=2, window=10, seed=0)
    lm.chars_total = 0
    lm.save(path)
    t0 = time.perf_counter()
    for _ in range(3):
        lm.save(path)
    save_seconds = (time.perf_counter() - t0) / 3
    kills, mid_write, child_files = 30, 0, 0
    for i in range(kills):
        base = 1_000_000 * (i + 1)  # child i writes base, base + 1, ...
        proc = start(["-c", SAVER, str(path), str(base)], tmp_path)
        try:
            wait_for_line(proc, "ready")
            # spread over about three of the child's saves (it saves back to back)
            time.sleep(rng.uniform(0, 3 * save_seconds))
        finally:
            kill(proc)
        left = temporaries(tmp_path, path.name)
        mid_write += bool(left)
        loaded = CharLM.load(path)  # complete: the checksum and the schema hold
        np.testing.assert_array_equal(loaded.theta, lm.theta)
        assert loaded.chars_total == lm.chars_total or base <= loaded.chars_total < base + 1_000_000
        child_files += loaded.chars_total != lm.chars_total
        lm.chars_total = loaded.chars_total + 1
        lm.save(path)  # the next save removes what the killed one left
        assert temporaries(tmp_path, path.name) == [], f"kill {i}: {left}"
        assert CharLM.load(path).chars_total == lm.chars_total
    print(f"\nCharLM.save: {kills} SIGKILLs survived (save {save_seconds * 1e3:.0f} ms); "
          f"{mid_write} landed mid-write (a temporary file was left), {child_files} left a "
          f"file the killed child had completed")
    assert mid_write >= 3, "too few kills landed mid-write to test anything"


def test_fastrnn_train_checkpoints_survive_sigkill(tmp_path):
    rng = np.random.default_rng(7)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    path = tmp_path / "ck.frnn"
    # window 2: a chunk trains in a few ms, so most of the run is checkpointing
    CharLM(Vocab.from_text(TEXT), "gru", HIDDEN, batch=2, window=2, seed=0).save(path)
    args = ["-m", "fastrnn", "train", str(corpus), "--resume", str(path), "--seconds", "60",
            "--checkpoint-every", "1e-9", "--sample-every", "0", "--sample-chars", "0"]
    kills, mid_write, advanced, chars = 8, 0, 0, 0
    for i in range(kills):
        proc = start(args, tmp_path)
        try:
            wait_for_line(proc, "stops after")  # printed just before training starts
            time.sleep(rng.uniform(0.05, 1.0))
        finally:
            kill(proc)
        left = temporaries(tmp_path, path.name)
        mid_write += bool(left)
        loaded = CharLM.load(path)  # complete, or this raises
        assert loaded.chars_total >= chars, "a checkpoint went back in time"
        advanced += loaded.chars_total > chars
        chars = loaded.chars_total
        loaded.save(path)  # the next save removes what the killed run left
        assert temporaries(tmp_path, path.name) == [], f"kill {i}: {left}"
    print(f"\nfastrnn train: {kills} SIGKILLs survived; {mid_write} landed mid-write, "
          f"{advanced} after new checkpoints; {chars:,} characters trained in the end")
    assert advanced >= 1, "the runs never wrote a checkpoint before they were killed"
