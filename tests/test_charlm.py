"""fastrnn.charlm: vocabulary, training, sampling and the model file format."""
from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import pytest

from fastrnn import charlm
from fastrnn import functional as F
from fastrnn.charlm import CharLM, ModelFileError, Vocab

TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def small_lm(cell="gru", **kw):
    kw.setdefault("batch", 4)
    kw.setdefault("window", 10)
    kw.setdefault("lr", 1e-2)
    return CharLM(Vocab.from_text(TEXT), cell, 16, seed=0, **kw)


def test_vocab_round_trip_and_errors():
    v = Vocab.from_text("hello world")
    assert v.chars == tuple(sorted(set("hello world"))) and len(v) == 8
    ids = v.encode("hold the door"[:4])
    assert ids.dtype == np.int64 and v.decode(ids) == "hold"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        v.encode("zoo")
    with pytest.raises(ValueError, match="empty"):
        Vocab.from_text("")
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["a", "a"])
    with pytest.raises(ValueError, match=r"indices must be in \[0, 8\)"):
        v.decode([8])
    assert Vocab.from_json(v.to_json()) == v and "h" in v and "z" not in v


def test_vocab_encodes_any_unicode_text_like_a_dictionary_lookup():
    text = "na\u00efve caf\u00e9 \u2014 \U0001f600 \t tabs\n" * 3
    v = Vocab.from_text(text)
    assert v.chars == tuple(sorted(set(text)))
    expected = np.array([v.chars.index(ch) for ch in text])
    np.testing.assert_array_equal(v.encode(text), expected)
    assert v.decode(v.encode(text)) == text
    assert v.encode(text, np.uint8).dtype == np.uint8 and v.encode("").size == 0
    # an order that is not sorted still maps each character to its position
    w = Vocab(["b", "a", "\u00e9"])
    np.testing.assert_array_equal(w.encode("ab\u00e9"), [1, 0, 2])
    with pytest.raises(ValueError, match="'x' is not in the vocabulary .*position 3"):
        w.encode("abax")


def test_the_embedded_corpus_is_the_projects_own_text():
    text = charlm.default_corpus()
    assert 100_000 <= len(text) <= 300_000 and text.isascii()
    assert text.startswith("==> README.md <==\n") and "==> docs/TRAINING.md <==" in text
    assert "bench_minchar.py <==" not in text  # its baseline ports someone else's code
    assert len(Vocab.from_text(text)) <= 96


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_training_lowers_the_held_out_loss(cell):
    lm = small_lm(cell)
    held_out = "the dog sat on the mat. the cat sat on the log. "
    before = lm.loss(held_out)
    assert before == pytest.approx(np.log(len(lm.vocab)), rel=0.1)  # an untrained model is near uniform
    losses = lm.train(TEXT, chars=30_000)
    after = lm.loss(held_out)
    print(f"\n{cell}: held-out loss {before:.3f} -> {after:.3f} nats/char; chunks {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert after < 0.5 * before and losses[-1] < losses[0]
    assert lm.chars_total >= 30_000


def greedy(lm, prime, n):
    """Argmax decoding the slow way: the whole prefix through functional.forward each time."""
    P = lm.layout.views(lm.theta)
    ids = list(lm.vocab.encode(prime))
    for _ in range(n):
        x = np.eye(len(lm.vocab), dtype=lm.dtype)[ids][:, None, :]
        res = F.forward(lm.cell, x, P["weight_ih"], P["weight_hh"], P["bias_ih"], P["bias_hh"])
        ids.append(int(np.argmax(P["weight_hy"].astype(np.float64) @ res.output[-1, 0] + P["bias_y"])))
    return lm.vocab.decode(ids[len(prime):])


@pytest.fixture(scope="module")
def trained():
    lm = small_lm()
    lm.train(TEXT, chars=30_000)
    return lm


def test_sampling_is_seeded(trained):
    lm = trained
    a, b = lm.sample(60, seed=5), lm.sample(60, seed=5)
    assert a == b and len(a) == 60 and set(a) <= set(lm.vocab.chars)
    assert lm.sample(60, seed=6) != a
    assert lm.sample(0, seed=1) == ""
    # without a prime it starts after a newline (the corpus has none: a seeded draw)
    assert lm.sample(30, seed=5, prime="t") != lm.sample(30, seed=5, prime="s")


def test_near_zero_temperature_is_the_argmax_path(trained):
    lm = trained
    expected = greedy(lm, "the ", 40)
    for t in (1e-3, 1e-300):
        for seed in range(3):
            assert lm.sample(40, temperature=t, seed=seed, prime="the ") == expected
    # and a high temperature is not
    assert lm.sample(40, temperature=3.0, seed=0, prime="the ") != expected


def test_sampling_starts_after_a_newline_without_a_prime():
    text = "ab\nba\n" * 50
    lm = CharLM(Vocab.from_text(text), "lstm", 8, batch=2, window=5)
    lm.train(text, chars=500)
    assert lm.sample(20, seed=3) == lm.sample(20, seed=3, prime="\n")


@pytest.mark.parametrize("bad, error, message", [
    (dict(n=-1), ValueError, "n must be a non-negative integer"),
    (dict(n=2.5), ValueError, "n must be a non-negative integer"),
    (dict(n=5, temperature=0), ValueError, "temperature must be > 0"),
    (dict(n=5, temperature=-1.0), ValueError, "temperature must be > 0"),
    (dict(n=5, prime="XYZ"), ValueError, "'X' is not in the vocabulary"),
])
def test_sampling_rejects_bad_arguments(trained, bad, error, message):
    n = bad.pop("n")
    with pytest.raises(error, match=message):
        trained.sample(n, **bad)


def test_save_load_round_trip_and_resume_equals_uninterrupted(tmp_path):
    lm = small_lm("lstm")
    lm.train(TEXT, chars=2_000)
    path = lm.save(tmp_path / "m.frnn")
    loaded = CharLM.load(path)
    for name, arr in lm._arrays():
        np.testing.assert_array_equal(dict(loaded._arrays())[name], arr, err_msg=name)
    assert (loaded.opt.step, loaded.chars_total, loaded.position) == (lm.opt.step, lm.chars_total, lm.position)
    assert loaded.vocab == lm.vocab and loaded.cell == "lstm" and loaded.dtype == lm.dtype
    assert (loaded.batch, loaded.window, loaded.lr, loaded.clip) == (lm.batch, lm.window, lm.lr, lm.clip)
    # continuing the loaded copy equals training without the interruption
    # (the same chunks, one pass's wrap-around included, in one call)
    loaded.train(TEXT, chars=2_000)
    uninterrupted = small_lm("lstm")
    uninterrupted.train(TEXT, chars=loaded.chars_total)
    for name, arr in uninterrupted._arrays():
        np.testing.assert_array_equal(dict(loaded._arrays())[name], arr, err_msg=name)
    assert (loaded.opt.step, loaded.chars_total) == (uninterrupted.opt.step, uninterrupted.chars_total)


def test_training_on_indices_equals_training_on_the_text():
    a, b = small_lm(), small_lm()
    la = a.train(TEXT, chars=3_000)
    lb = b.train(a.vocab.encode(TEXT), chars=3_000)
    assert la == lb
    np.testing.assert_array_equal(a.theta, b.theta)


def test_training_is_chunked_and_reports_progress():
    lm = small_lm()  # batch 4 x window 10, 4 windows per chunk = 160 characters a chunk
    seen = []
    losses = lm.train(TEXT, chars=1_000, callback=seen.append)
    # 6 whole chunks, then the 40 characters (one window) still needed of the 1,000
    assert len(seen) == len(losses) == 7
    assert [p.chars for p in seen] == [160, 320, 480, 640, 800, 960, 1000]
    assert seen[-1].chars_total == lm.chars_total == 1000 and seen[-1].step == lm.opt.step == 25
    # the callback returning False stops after that chunk
    assert len(lm.train(TEXT, chars=10_000, callback=lambda p: p.chars < 320)) == 2
    # without a budget: one pass's worth; the streams wrap around with a fresh state
    L = (len(TEXT) - 1) // 4
    before = lm.chars_total
    lm.train(TEXT)
    assert lm.chars_total - before >= 4 * L


def test_the_result_does_not_depend_on_how_training_is_split():
    # 1,920 characters: 4 streams of L = 479 steps, so every pass ends in a
    # 9-step window; 3 passes and a bit, split in different ways
    for chunk_windows, calls in [(1, [6_000]), (7, [6_000]), (4, [130, 2_000, 3_870]),
                                 (2, [1_916, 1_916, 2_168])]:
        lm = small_lm("lstm")
        for chars in calls:
            lm.train(TEXT, chars=chars, chunk_windows=chunk_windows)
        ref = small_lm("lstm")
        ref.train(TEXT, chars=lm.chars_total)
        assert ref.chars_total == lm.chars_total > 6_000 and ref.position == lm.position
        np.testing.assert_array_equal(lm.theta, ref.theta, err_msg=str((chunk_windows, calls)))
        np.testing.assert_array_equal(lm.c, ref.c)


def test_float64_models_keep_their_dtype(tmp_path):
    lm = small_lm(dtype=np.float64)
    lm.train(TEXT, chars=1_000)
    loaded = CharLM.load(lm.save(tmp_path / "m.frnn"))
    assert loaded.theta.dtype == np.float64
    np.testing.assert_array_equal(loaded.theta, lm.theta)


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    lm = small_lm()
    path = lm.save(tmp_path / "m.frnn")
    good = path.read_bytes()
    lm.train(TEXT, chars=1_000)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(charlm.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        lm.save(path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.frnn"]  # no temporary file left behind


class FailingWrites:
    """A file object that writes ``allow`` bytes and then raises ``failure``
    (a full disk, or Ctrl-C in the middle of a save)."""

    def __init__(self, f, allow, failure):
        self.f, self.allow, self.failure = f, allow, failure

    def write(self, data):
        if self.allow <= 0:
            raise self.failure(28, "No space left on device") if self.failure is OSError \
                else self.failure()
        self.allow -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("failure", [OSError, KeyboardInterrupt])
def test_a_save_failing_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch, failure):
    lm = small_lm()
    path = lm.save(tmp_path / "m.frnn")
    good = path.read_bytes()
    lm.train(TEXT, chars=1_000)
    real_fdopen, opened = os.fdopen, []

    def fdopen(fd, *args, **kw):
        opened.append(FailingWrites(real_fdopen(fd, *args, **kw), len(good) // 2, failure))
        return opened[-1]
    monkeypatch.setattr(charlm.os, "fdopen", fdopen)
    with pytest.raises(failure):
        lm.save(path)
    assert opened and opened[0].allow <= 0  # it did write part of a file, then failed
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.frnn"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(CharLM.load(lm.save(path)).theta, lm.theta)  # a retry works


def test_saved_files_get_ordinary_permissions(tmp_path):
    if not hasattr(os, "fchmod"):
        pytest.skip("no POSIX permissions here")
    path = small_lm().save(tmp_path / "m.frnn")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def corrupt_variants(data: bytes):
    yield "truncated", data[:len(data) // 2], "truncated|checksum"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    yield "bit flip", bytes(flipped), "checksum mismatch"
    yield "foreign", b"PK\x03\x04" + data[4:], "not a fastrnn character model"
    yield "empty", b"", "not a fastrnn character model"
    newer = bytearray(data)
    struct.pack_into("<I", newer, len(charlm.MAGIC), charlm.FORMAT_VERSION + 1)
    yield "newer version", bytes(newer), "newer than this fastrnn"
    # a well-formed checksum over a header that lies about the arrays
    prefix = struct.Struct("<15sIQ")
    _, version, hlen = prefix.unpack_from(data)
    header = data[prefix.size:prefix.size + hlen].replace(b'"hidden_size": 16', b'"hidden_size": 17')
    body = prefix.pack(charlm.MAGIC, version, len(header)) + header + data[prefix.size + hlen:-32]
    yield "inconsistent header", body + hashlib.sha256(body).digest(), "malformed model file"
    header = data[prefix.size:prefix.size + hlen].replace(b'"<f4"', b'"<f8"', 1)
    body = prefix.pack(charlm.MAGIC, version, len(header)) + header + data[prefix.size + hlen:-32]
    yield "array dtype", body + hashlib.sha256(body).digest(), "array theta has dtype <f8"
    yield "magic only", data[:len(charlm.MAGIC) + 2], "truncated"
    yield "checksum cut", data[:-1], "checksum mismatch"


@pytest.mark.parametrize("case", ["truncated", "bit flip", "foreign", "empty", "newer version",
                                  "inconsistent header", "array dtype", "magic only",
                                  "checksum cut"])
def test_load_rejects_damaged_files(tmp_path, case):
    good = small_lm().save(tmp_path / "good.frnn").read_bytes()
    (_, data, message), = [v for v in corrupt_variants(good) if v[0] == case]
    bad = tmp_path / "bad.frnn"
    bad.write_bytes(data)
    with pytest.raises(ModelFileError, match=message) as info:
        CharLM.load(bad)
    assert str(bad) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        CharLM.load(tmp_path / "nope.frnn")


def test_bad_arguments():
    v = Vocab.from_text(TEXT)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        CharLM(v, "gru", 0)
    with pytest.raises(ValueError, match="cell"):
        CharLM(v, "transformer", 8)
    with pytest.raises(TypeError, match="float32 or float64"):
        CharLM(v, "gru", 8, dtype=np.int32)
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        CharLM(v, "gru", 8, batch=0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        CharLM(v, "gru", 8, lr=float("nan"))
    with pytest.raises(TypeError, match="vocab must be a Vocab"):
        CharLM("abc", "gru", 8)
    lm = small_lm()
    with pytest.raises(ValueError, match="too short for 4 streams"):
        lm.train("the")
    with pytest.raises(ValueError, match="empty text"):
        lm.train("")
    with pytest.raises(ValueError, match="'q' is not in the vocabulary"):
        lm.train("the cat sat on the quilt")
    with pytest.raises(ValueError, match=r"text indices must be in \[0, "):
        lm.train(np.full(100, len(v)))
    with pytest.raises(ValueError, match="chars must be a positive integer"):
        lm.train(TEXT, chars=0)
    with pytest.raises(ValueError, match="seconds must be a number > 0"):
        lm.train(TEXT, seconds=-1)
    assert lm.chars_total == 0 and lm.opt.step == 0  # nothing was trained by the failures
