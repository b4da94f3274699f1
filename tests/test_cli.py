"""The `fastrnn` command, run as a user runs it: `python -m fastrnn ...` in a subprocess."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

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
    assert "the embedded corpus" in r.stdout and "model: gru, hidden 8" in r.stdout
    assert "batch 32 x window 50, Adam lr 0.003, clip norm 5" in r.stdout  # the defaults
    lm = CharLM.load(tmp_path / "fastrnn-charlm.frnn")
    assert len(lm.vocab) > 80 and lm.chars_total == 3200  # whole windows: 2 x 32 x 50


def test_train_in_process_with_main(tmp_path, corpus, capsys):
    from fastrnn.__main__ import main
    model = tmp_path / "m.frnn"
    assert main(["train", corpus, "--chars", 800, "--hidden", 8, "--batch", 4, "--window", 10,
                 "--checkpoint", model, "--sample-every", 1e-9, "--sample-chars", 20]) == 0
    out = capsys.readouterr().out
    assert out.count("--- ") >= 2 and "nats/char ---" in out  # periodic samples
    assert main(["sample", model, "--chars", 5, "--seed", 0]) == 0
    assert main(["train", "missing.txt"]) == 2
    assert capsys.readouterr().err.strip() == "fastrnn train: error: no such file: missing.txt"


@pytest.mark.parametrize("args, message", [
    (("train", "missing.txt"), "no such file: missing.txt"),
    (("train", "--seconds", "-1"), "--seconds must be > 0 and finite"),
    (("train", "--seconds", "inf"), "--seconds must be > 0 and finite"),
    (("train", "corpus.txt", "--seed", "-1", "--chars", "10"), "--seed must be an integer >= 0, got -1"),
    (("sample", "missing.frnn", "--seed", "-1"), "--seed must be >= 0"),
    (("train", "--batch", "0"), "batch must be a positive integer"),
    (("sample", "missing.frnn"), "cannot read"),
    (("sample", "corpus.txt"), "not a fastrnn character model"),
    (("train", "corpus.txt", "--resume", "corpus.txt"), "not a fastrnn character model"),
    (("train", "corpus.txt", "--hidden", "0"), "--hidden must be a positive integer"),
    (("train", "corpus.txt", "--lr", "nan"), "--lr must be a finite number > 0"),
    (("train", "corpus.txt", "--chars", "0"), "--chars must be >= 1"),
    (("train", "corpus.txt", "--sample-chars", "-1"), "--sample-chars must be >= 0"),
    (("train", "corpus.txt", "--checkpoint", "no/such/dir/m.frnn"), "directory no/such/dir does not exist"),
    (("train", "."), "is a directory"),
    (("sample", "missing.frnn", "--temperature", "0"), "--temperature must be > 0 and finite"),
    (("sample", "missing.frnn", "--temperature", "inf"), "--temperature must be > 0 and finite"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, corpus, args, message):
    r = run(*args, cwd=corpus.parent)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resume_checks_vocabulary_and_options(tmp_path, corpus):
    model = tmp_path / "m.frnn"
    assert run("train", corpus, "--chars", 500, "--hidden", 8, "--batch", 2, "--checkpoint", model,
               cwd=tmp_path).returncode == 0
    before = model.read_bytes()
    other = tmp_path / "other.txt"
    other.write_text("Zebras! " * 20, encoding="utf-8")
    r = run("train", other, "--resume", model, cwd=tmp_path)
    assert r.returncode == 2 and "'Z' is not in the vocabulary" in r.stderr
    r = run("train", corpus, "--resume", model, "--hidden", 16, cwd=tmp_path)
    assert r.returncode == 2 and "--hidden 16 does not match" in r.stderr
    assert model.read_bytes() == before  # refused runs leave the model alone
    r = run("sample", model, "--prime", "Zebra", cwd=tmp_path)
    assert r.returncode == 2 and "--prime" in r.stderr and "'Z'" in r.stderr
    # the learning rate may change on resume
    r = run("train", corpus, "--resume", model, "--lr", "1e-4", "--chars", 100, cwd=tmp_path)
    assert r.returncode == 0 and "lr 0.0001" in r.stdout
    assert CharLM.load(model).lr == 1e-4


def test_ctrl_c_stops_training_and_saves(tmp_path, corpus):
    model = tmp_path / "m.frnn"
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "train", str(corpus), "--seconds", "120",
                          "--hidden", "16", "--batch", "4", "--checkpoint", str(model),
                          "--checkpoint-every", "0", "--sample-every", "0"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:  # training starts after this line
            if line.startswith("stops after"):
                break
        time.sleep(1.0)
        assert not model.exists() and p.poll() is None
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert time.monotonic() - t0 < 30
    assert p.returncode == 0, err
    assert "Traceback" not in err and "interrupted after" in out and f"saved {model}" in out
    assert CharLM.load(model).chars_total > 0


def test_argparse_errors_exit_2(tmp_path):
    r = run("train", "--cell", "transformer", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bench_minchar_runs_the_min_char_workload(tmp_path):
    r = run("bench", "minchar", "--chars", 100, "--repeat", 1, "--dtype", "float64",
            "--backends", "numpy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "min-char-rnn workload" in r.stdout
    assert "numpy original" in r.stdout and "fastrnn[numpy]" in r.stdout
    assert not (tmp_path / "fastrnn-bench.json").exists()  # the matrix did not run


def test_bench_dropin_times_the_drop_ins_against_the_tutorials(tmp_path):
    r = run("bench", "dropin", "--repeat", 1, "--calls", 1, "--dtype", "float64",
            "--backends", "numpy", "--workloads", "min_char_rnn_loss", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("min_char_rnn_loss")]
    assert [row[3] for row in rows] == ["tutorial", "dropin", "sequence_gradients", "kernel"]
    assert rows[0][5] == "-" and all(float(row[5]) > 0 for row in rows[1:])
    assert not (tmp_path / "fastrnn-bench.json").exists()  # the matrix did not run


def _markdown_rows(stdout: str, first_column: str) -> list:
    """The body rows of the markdown table whose header starts with ``first_column``."""
    rows, inside = [], False
    for line in stdout.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == first_column:
                inside = True
            elif inside and not set(cells[0]) <= {"-", ":"}:
                rows.append(cells)
        elif inside:
            break
    return rows


def test_bench_quick_matrix_table_and_json(tmp_path):
    import json

    import fastrnn

    r = run("bench", "--quick", "--repeat", 1, "--threads", 1, "--cells", "gru", "--modes",
            "inference", "--no-torch", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    header = r.stdout.splitlines()[0]
    assert header.startswith(f"fastrnn {fastrnn.__version__}") and "logical CPUs" in header
    rows = _markdown_rows(r.stdout, "shape")
    contenders = [f"fastrnn[{b}]" for b in fastrnn.available_backends()]  # all: tiny and small
    # float32 at tiny and small, float64 at small only (the documented default)
    expected = {(shape, dtype, c) for shape, dtype in
                (("tiny", "float32"), ("small", "float32"), ("small", "float64"))
                for c in contenders}
    assert {(row[0], row[3], row[5]) for row in rows} == expected and len(rows) == len(expected)
    assert all(row[1] == "gru" and row[2] == "inference" and row[4] == "1" for row in rows)
    assert all(row[9] == "–" for row in rows)  # no torch, no ratio
    assert "torch" not in {row[5] for row in rows}

    doc = json.loads((tmp_path / "fastrnn-bench.json").read_text(encoding="utf-8"))
    assert set(doc) >= {"machine", "sgemm_gflops", "results", "stream", "targets"}
    assert doc["machine"]["fastrnn"] == fastrnn.__version__ and doc["sgemm_gflops"] > 0
    assert len(doc["results"]) == len(rows)
    for res in doc["results"]:
        assert len(res["samples_s"]) == 1 and all(t > 0 for t in res["samples_s"])
        assert 0 < res["min_s"] <= res["median_s"] <= res["max_s"]
        assert res["gflops"] > 0 and res["x_torch"] is None
    assert doc["stream"]["fastrnn"]["us_per_call"] > 0 and "torch" not in doc["stream"]
    api = doc["stream"]["fastrnn"]["api"]
    assert [t["target"] for t in doc["targets"]] == [f"streaming LSTM step ({api})"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("args, message", [
    (("--shapes", "bogus"), "argument --shapes: invalid choice: 'bogus'"),
    (("--threads", "0"), "argument --threads: must be >= 1"),
    (("--repeat", "x"), "argument --repeat: not an integer"),
    (("--backends", "c", "--all-backends"), "not allowed with argument"),
    (("--json", "no/such/dir/out.json"), "--json: directory no/such/dir does not exist"),
])
def test_bench_bad_arguments_exit_2(tmp_path, args, message):
    r = run("bench", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("usage: fastrnn bench")
    assert not (tmp_path / "fastrnn-bench.json").exists()


def test_info_and_help(tmp_path):
    info = run("info", cwd=tmp_path).stdout
    assert "backends available" in info
    # one line per cell, with PyTorch's gate order (torch.nn's documentation)
    for name, gates in (("rnn_tanh", "h"), ("lstm", "i, f, g, o"), ("gru", "r, z, n")):
        assert re.search(rf"^  {name} +\d gates? \({gates}\): ", info, re.M), info
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "sample", "bench", "check"))


# ------------------------------------------- every expected failure: one line, exit 2

def one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for fragment in fragments:
        assert fragment in r.stderr, r.stderr


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from fastrnn.charlm import Vocab
    path = tmp_path_factory.mktemp("model") / "m.frnn"
    CharLM(Vocab.from_text(TEXT), "gru", 8, batch=2, window=5).save(path)
    return path


@pytest.mark.parametrize("args, fragments", [
    (("train", "--hidden", "100000000", "--chars", "100"),
     ("--hidden 100,000,000 (30,000,", "parameters of a gru over", "would need", "of memory, more than")),
    (("train", "--batch", "1000000000"), ("too few for 1,000,000,000 streams (--batch)",)),
    (("train", "--sample-chars", "10000000000000"), ("--sample-chars 10,000,000,000,000", "would need")),
    (("sample", "MODEL", "--chars", "1000000000000000"),
     ("--chars 1,000,000,000,000,000 characters would need", "of memory")),
], ids=["train --hidden", "train --batch", "train --sample-chars", "sample --chars"])
def test_impossible_sizes_exit_2_naming_the_option(tmp_path, small_model, args, fragments):
    r = run(*[small_model if a == "MODEL" else a for a in args], cwd=tmp_path)
    one_line_error(r, *fragments)
    assert not (tmp_path / "fastrnn-charlm.frnn").exists()


def resealed_model(source, path, edit):
    """A copy of ``source`` with its JSON header text edited and the checksum
    recomputed (anyone can reseal a file)."""
    import hashlib
    import struct
    prefix = struct.Struct("<15sIQ")
    data = source.read_bytes()
    magic, version, hlen = prefix.unpack_from(data)
    header = edit(data[prefix.size:prefix.size + hlen].decode("ascii")).encode("ascii")
    body = prefix.pack(magic, version, len(header)) + header + data[prefix.size + hlen:-32]
    path.write_bytes(body + hashlib.sha256(body).digest())
    return path


@pytest.mark.parametrize("edit, fragment", [
    (lambda h: h.replace('"lr": ', '"lr": Infinity, "x": ', 1).replace(', "x": 0.003', ""),
     "header field 'lr' must be a finite number > 0, got Infinity"),
    (lambda h: h.replace('"vocab": [', '"vocab": ' + "[" * 100_000 + "]" * 99_999 + ", [", 1),
     "brackets nest deeper than 4 levels"),
    (lambda h: h.replace('"position": 0', '"position": 1e400', 1), "header field 'position'"),
], ids=["lr Infinity", "vocab 100000 deep", "position 1e400"])
@pytest.mark.parametrize("command", ["sample", "resume"])
def test_resealed_bad_headers_exit_2_naming_the_field(tmp_path, corpus, small_model, edit, fragment,
                                                      command):
    bad = resealed_model(small_model, tmp_path / "bad.frnn", edit)
    before = bad.read_bytes()
    r = run(*(("sample", bad) if command == "sample" else ("train", corpus, "--resume", bad)),
            cwd=tmp_path)
    one_line_error(r, f"{bad}: malformed model file", fragment)
    assert bad.read_bytes() == before


def diverging_model(path):
    """float64, head weights of +-1e308: the logits overflow, so the first
    window's loss is inf (every parameter is finite: the file saves)."""
    import numpy as np
    from fastrnn.charlm import Vocab
    lm = CharLM(Vocab.from_text(TEXT), "gru", 8, batch=2, window=5, dtype="float64")
    P = lm.layout.views(lm.theta)
    P["weight_hy"][...] = 1e308 * np.sign(np.random.default_rng(1).standard_normal(P["weight_hy"].shape))
    return lm.save(path)


def test_training_that_diverges_exits_2_and_saves_nothing(tmp_path, corpus):
    import fastrnn
    if "numba" not in fastrnn.available_backends():
        pytest.skip("the numba trainer is not available")
    model = diverging_model(tmp_path / "m.frnn")
    before = model.read_bytes()
    # numba: a trainer that detects divergence (the C one: pending in train.c)
    # and trains quietly (numpy's reference prints overflow RuntimeWarnings)
    r = run("train", corpus, "--resume", model, "--chars", 400, "--backend", "numba",
            "--sample-every", 0, cwd=tmp_path)
    one_line_error(r, "fastrnn train: error: training diverged at steps 0-4 of the 2 streams",
                   "is not finite", f"{model} was left as it was", "try a lower --lr")
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "m.frnn"]


def test_divergence_after_checkpoints_keeps_the_last_good_one(tmp_path, corpus, monkeypatch, capsys):
    from fastrnn import charlm, training
    from fastrnn.__main__ import main
    real_fit, calls = training.fit_sequence, []

    def fit_diverging_in_the_fourth_chunk(spec, theta, inputs, targets, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise training.TrainingDivergedError(1, 10, 20, float("nan"), 1)
        return real_fit(spec, theta, inputs, targets, **kw)
    monkeypatch.setattr(charlm.tr, "fit_sequence", fit_diverging_in_the_fourth_chunk)
    model = tmp_path / "m.frnn"
    code = main(["train", corpus, "--chars", 4000, "--hidden", 8, "--batch", 4, "--window", 10,
                 "--checkpoint", model, "--checkpoint-every", 1e-9, "--sample-every", 0])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    # three good chunks of 4 windows x 10 steps x 4 streams, each checkpointed
    assert f"kept the last good checkpoint {model} (480 characters trained)" in err
    assert "training diverged at steps 130-139 of the 4 streams" in err
    assert CharLM.load(model).chars_total == 480


def test_a_checkpoint_that_cannot_be_written_exits_2(tmp_path, corpus, monkeypatch, capsys):
    from fastrnn import charlm
    from fastrnn.__main__ import main

    def disk_full(self, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(charlm.CharLM, "save", disk_full)
    model = tmp_path / "m.frnn"
    code = main(["train", corpus, "--chars", 400, "--hidden", 8, "--batch", 4, "--window", 10,
                 "--checkpoint", model, "--sample-every", 0])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        f"fastrnn train: error: cannot write checkpoint {model}: No space left on device; "
        "nothing was saved"]


@pytest.mark.parametrize("failure, code, message", [
    (MemoryError("Unable to allocate 3.1 GiB"), 2, "fastrnn train: error: out of memory: Unable to allocate 3.1 GiB"),
    (OSError(5, "Input/output error"), 2, "fastrnn train: error: Input/output error"),
    (ValueError("a bad\nvalue"), 2, "fastrnn train: error: a bad value"),
    (TypeError("a bad type"), 2, "fastrnn train: error: a bad type"),
    (FloatingPointError("not finite"), 2, "fastrnn train: error: not finite"),
    (KeyboardInterrupt(), 130, "fastrnn: aborted"),  # a second Ctrl-C
], ids=["MemoryError", "OSError", "ValueError", "TypeError", "FloatingPointError", "KeyboardInterrupt"])
def test_unforeseen_failures_are_one_line_too(tmp_path, corpus, monkeypatch, capsys, failure, code,
                                              message):
    from fastrnn import charlm
    from fastrnn.__main__ import main

    def train(self, *args, **kw):
        raise failure
    monkeypatch.setattr(charlm.CharLM, "train", train)
    assert main(["train", corpus, "--hidden", 8, "--batch", 4, "--checkpoint",
                 tmp_path / "m.frnn"]) == code
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [message]


def test_train_help_documents_the_exit_statuses(tmp_path):
    r = run("train", "--help", cwd=tmp_path)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    assert "2, with one line on stderr, for bad arguments or files, sizes that do not fit in " \
           "memory, a checkpoint that cannot be written (the previous one stays) or training " \
           "that diverges" in text and "130 after a second Ctrl-C" in text and "1 if" not in text


def test_a_sample_that_overflows_does_not_end_training(tmp_path, corpus):
    from fastrnn.charlm import Vocab
    # rnn_relu with finite weights whose state grows 16x a step: a 200-character
    # sample overflows (and is refused), while training on 5-step windows does not
    lm = CharLM(Vocab.from_text(TEXT), "rnn_relu", 4, batch=2, window=5)
    P = lm.layout.views(lm.theta)
    P["weight_hh"][...], P["bias_hh"][...] = 4.0, 1.0
    model = lm.save(tmp_path / "m.frnn")
    r = run("train", corpus, "--resume", model, "--chars", 20, "--sample-every", 1e-9,
            "--sample-chars", 200, "--lr", 1e-9, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(no sample: sampling produced non-finite logits" in r.stdout and f"saved {model}" in r.stdout
    assert CharLM.load(model).chars_total == 20


# ----------------------------------------------- what a new user sees (issue 14)

PROSE = "The cat sat on the mat.\nThe dog sat on the log.\n" * 60


def _samples(stdout: str) -> dict:
    """Each sample printed by `fastrnn train`, by its header's label."""
    parts = re.split(r"^--- (sample [^\n]*?)(?:, loss [\d.]+ nats/char)? ---\n", stdout, flags=re.M)
    return {label: body.split("\n\n")[0] for label, body in zip(parts[1::2], parts[2::2])}


def test_prose_prime_takes_the_first_line_of_prose():
    from fastrnn.charlm import default_corpus, prose_prime
    text = ("| a | b |\n|---|---|\n# Heading here\n    Indented prose line comes first\n"
            "x = f(y)\nMarginal prose line comes second\n")
    assert prose_prime(text) == "Marginal prose line "  # the margin beats the indented line
    assert prose_prime(text, words=1) == "Marginal "
    assert prose_prime("    Only an indented line of prose\n") == "Only an indented "
    assert prose_prime("|---|---|\nx = 1\n--------\n") == ""  # no prose: samples start a line
    prime = prose_prime(default_corpus())
    assert re.fullmatch(r"[A-Z][a-z]+ [a-z]+ [a-z]+ ", prime)
    assert re.search("^" + re.escape(prime), default_corpus(), flags=re.M)
    with pytest.raises(TypeError, match="text must be a str"):
        prose_prime(b"The cat sat on the mat")


def test_train_samples_show_learning_from_one_prime(tmp_path):
    """Every sample continues the same line of prose: before training it is
    random characters, at the end it is mostly the text's own words."""
    corpus = tmp_path / "prose.txt"
    corpus.write_text(PROSE, encoding="utf-8")
    r = run("train", corpus, "--chars", 24000, "--hidden", 32, "--batch", 4, "--window", 20,
            "--lr", 0.01, "--checkpoint", tmp_path / "m.frnn", "--sample-every", 1e-9,
            "--sample-chars", 60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'continuing "The cat sat "' in r.stdout and "guessing all 16 alike scores ln 16 = 2.77" in r.stdout
    samples = _samples(r.stdout)
    assert {"sample before training (random characters)", "sample at the end"} <= set(samples)
    assert len(samples) >= 3  # periodic ones between
    assert all(s.startswith("The cat sat ") for s in samples.values()), samples
    known = set(re.findall(r"[A-Za-z]+", PROSE))

    def share_of_known_words(sample):
        words = re.findall(r"[A-Za-z]+", sample[len("The cat sat "):])
        return sum(w in known for w in words) / max(len(words), 1)

    before = share_of_known_words(samples["sample before training (random characters)"])
    after = share_of_known_words(samples["sample at the end"])
    print(f"share of the text's words: before training {before:.2f}, at the end {after:.2f}")
    assert before < 0.3 and after > 0.8


def test_train_plot_saves_the_loss_curve(tmp_path, corpus):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    r = run("train", corpus, "--chars", 2000, "--hidden", 8, "--batch", 4, "--window", 10,
            "--checkpoint", tmp_path / "m.frnn", "--sample-every", 0, "--plot", plot, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"loss curve saved to {plot}" in r.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_plot_without_matplotlib_is_one_line_before_training(tmp_path, corpus):
    # None in sys.modules makes `import matplotlib` raise ImportError, as if absent
    code = ("import sys; sys.modules['matplotlib'] = None; from fastrnn.__main__ import main; "
            f"sys.exit(main(['train', {str(corpus)!r}, '--chars', '800', '--plot', 'loss.png']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == ("fastrnn train: error: --plot needs matplotlib: "
                                "pip install 'fastrnn[plot]'")
    assert r.stdout == "" and not (tmp_path / "fastrnn-charlm.frnn").exists()


@pytest.mark.parametrize("args, message", [
    (("--plot", "no/such/dir/loss.png"), "--plot directory no/such/dir does not exist"),
    (("--prime", "Zebra"), "--prime: "),
])
def test_train_plot_and_prime_arguments_are_checked_first(tmp_path, corpus, args, message):
    if args[0] == "--plot":
        pytest.importorskip("matplotlib")
    r = run("train", corpus, "--chars", 800, *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "fastrnn-charlm.frnn").exists()
