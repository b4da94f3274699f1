"""The `fastrnn` command, run as a user runs it: `python -m fastrnn ...` in a subprocess."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastrnn.charlm import CharLM

TEXT = "the cat sat on the mat. the dog sat on the log. " * 30


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_train_sample_resume(tmp_path, corpus):
    model = tmp_path / "m.frnn"
    r = run("train", corpus, "--chars", 4000, "--hidden", 16, "--batch", 4, "--window", 10,
            "--checkpoint", model, "--sample-every", 1000, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "training on " + str(corpus) in r.stdout and f"saved {model}" in r.stdout
    first = CharLM.load(model)
    assert first.chars_total >= 4000 and first.hidden_size == 16

    r = run("sample", model, "--chars", 30, "--seed", 1, "--prime", "the ", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.rstrip("\n")
    assert out.startswith("the ") and len(out) == 34 and set(out) <= set(TEXT)
    assert run("sample", model, "--chars", 30, "--seed", 1, "--prime", "the ", cwd=tmp_path).stdout == r.stdout

    r = run("train", corpus, "--resume", model, "--chars", 2000, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert CharLM.load(model).chars_total >= first.chars_total + 2000


def test_train_without_arguments_uses_the_embedded_corpus(tmp_path):
    r = run("train", "--chars", 3200, "--hidden", 8, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "the embedded corpus" in r.stdout
    assert (tmp_path / "fastrnn-charlm.frnn").exists()


@pytest.mark.parametrize("args, message", [
    (("train", "missing.txt"), "no such file: missing.txt"),
    (("train", "--seconds", "-1"), "--seconds must be > 0"),
    (("train", "--batch", "0"), "batch must be a positive integer"),
    (("sample", "missing.frnn"), "cannot read"),
    (("sample", "corpus.txt"), "not a fastrnn character model"),
    (("train", "corpus.txt", "--resume", "corpus.txt"), "not a fastrnn character model"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, corpus, args, message):
    r = run(*args, cwd=corpus.parent)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resume_on_text_outside_the_vocabulary(tmp_path, corpus):
    model = tmp_path / "m.frnn"
    assert run("train", corpus, "--chars", 500, "--hidden", 8, "--batch", 2, "--checkpoint", model,
               cwd=tmp_path).returncode == 0
    other = tmp_path / "other.txt"
    other.write_text("Zebras! " * 20, encoding="utf-8")
    r = run("train", other, "--resume", model, cwd=tmp_path)
    assert r.returncode == 2 and "not in the vocabulary" in r.stderr


def test_argparse_errors_exit_2(tmp_path):
    r = run("train", "--cell", "transformer", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bench_runs_the_min_char_workload(tmp_path):
    r = run("bench", "--chars", 100, "--repeat", 1, "--dtype", "float64", "--backends", "numpy",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "numpy original" in r.stdout and "fastrnn[numpy]" in r.stdout


def test_info_and_help(tmp_path):
    assert "backends available" in run("info", cwd=tmp_path).stdout
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "sample", "bench", "check"))
