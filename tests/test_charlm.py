"""fastrnn.charlm: vocabulary, training, sampling and the model file format."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fastrnn import charlm
from fastrnn import functional as F
from fastrnn import training as tr
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
    with pytest.raises(TypeError, match=r"chars must be a sequence of single characters, got NoneType"):
        Vocab(None)
    with pytest.raises(TypeError, match=r"chars\[1\] is int 2"):
        Vocab(["a", 2])
    with pytest.raises(ValueError, match=r"chars\[0\] is 'ab'"):
        Vocab(["ab"])
    for dtype in (np.float32, None, "banana"):
        with pytest.raises(TypeError, match="dtype must be an integer dtype"):
            v.encode("hello", dtype)
    big = Vocab([chr(0x100 + i) for i in range(300)])
    with pytest.raises(ValueError, match="dtype uint8 cannot hold the indices of 300 characters"):
        big.encode(chr(0x100 + 299), np.uint8)  # would have wrapped to 43
    assert big.encode(chr(0x100 + 299), np.uint16)[0] == 299
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
    # the min-char-rnn benchmark's baseline ports someone else's code
    assert "bench_minchar.py <==" not in text and "bench/minchar.py <==" not in text
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
    (dict(n=-1), ValueError, "n must be an integer >= 0, got -1"),
    (dict(n=2.5), TypeError, "n must be an integer >= 0, got float 2.5"),
    (dict(n=True), TypeError, "n must be an integer >= 0, got bool True"),
    (dict(n=5, temperature=0), ValueError, "temperature must be a finite number > 0, got 0"),
    (dict(n=5, temperature=-1.0), ValueError, "temperature must be a finite number > 0"),
    (dict(n=5, temperature=float("inf")), ValueError, "temperature must be a finite number > 0, got inf"),
    (dict(n=5, temperature=10 ** 400), ValueError, "temperature must be a finite number > 0, got 1000"),
    (dict(n=5, temperature="hot"), TypeError, "temperature must be a finite number > 0, got str 'hot'"),
    (dict(n=5, temperature=True), TypeError, "temperature must be a finite number > 0, got bool"),
    (dict(n=5, seed="abc"), TypeError, "seed must be an integer >= 0, got str 'abc'"),
    (dict(n=5, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    (dict(n=5, prime="XYZ"), ValueError, "'X' is not in the vocabulary"),
    (dict(n=5, prime=5), TypeError, "prime must be a str"),
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
    for name in ("hidden_size", "batch", "window"):
        for value in (8.0, "8", True, None):
            with pytest.raises(TypeError, match=f"{name} must be a positive integer, got {type(value).__name__}"):
                CharLM(v, **{"cell": "gru", "hidden_size": 8, name: value})
    for name in ("lr", "clip"):
        for value, error in (("0.1", TypeError), (None, TypeError), (True, TypeError),
                             (10 ** 400, ValueError), (float("inf"), ValueError), (0.0, ValueError)):
            with pytest.raises(error, match=f"{name} must be a finite number > 0"):
                CharLM(v, "gru", 8, **{name: value})
    with pytest.raises(TypeError, match="seed must be an integer >= 0, got str"):
        CharLM(v, "gru", 8, seed="abc")
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
    with pytest.raises(ValueError, match="seconds must be a finite number > 0"):
        lm.train(TEXT, seconds=-1)
    for seconds in (float("inf"), 10 ** 400):  # with no chars budget inf would never end
        with pytest.raises(ValueError, match="seconds must be a finite number > 0"):
            lm.train(TEXT, seconds=seconds)
    with pytest.raises(TypeError, match="seconds must be a finite number > 0, got str"):
        lm.train(TEXT, seconds="10")
    for name in ("chars", "chunk_windows"):
        for value in (10.0, "10", True):
            with pytest.raises(TypeError, match=f"{name} must be a positive integer, got {type(value).__name__}"):
                lm.train(TEXT, **{name: value})
    with pytest.raises(TypeError, match="callback must be callable or None, got int"):
        lm.train(TEXT, chars=100, callback=5)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        CharLM.load(5)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got NoneType"):
        lm.save(None)
    assert lm.chars_total == 0 and lm.opt.step == 0  # nothing was trained by the failures


# ------------------------------------------- the header's schema (issue 9)
#
# Every file below carries a correct checksum: anyone can reseal an edited
# file, so the checksum proves nothing and the header itself is validated.

PREFIX = struct.Struct("<15sIQ")


def file_parts(data: bytes):
    """(version, header dict, array bytes) of a model file."""
    _, version, hlen = PREFIX.unpack_from(data)
    return version, json.loads(data[PREFIX.size:PREFIX.size + hlen]), data[PREFIX.size + hlen:-32]


def resealed(header: bytes, arrays: bytes, version: int = 1) -> bytes:
    body = PREFIX.pack(charlm.MAGIC, version, len(header)) + header + arrays
    return body + hashlib.sha256(body).digest()


def edited(data: bytes, edit) -> bytes:
    """The file with its header dict passed through ``edit`` (which returns a
    dict, serialised with Python's json, NaN/Infinity included, or raw bytes)."""
    version, header, arrays = file_parts(data)
    new = edit(header)
    return resealed(new if isinstance(new, bytes) else json.dumps(new).encode("ascii"), arrays, version)


def with_field(name, value):
    return lambda h: {**h, name: value}


def raw_replace(old: str, new: str):
    def edit(h):
        raw = json.dumps(h)
        assert old in raw
        return raw.replace(old, new, 1).encode("ascii")
    return edit


def without(name):
    return lambda h: {k: v for k, v in h.items() if k != name}


def huge_but_consistent(h):
    """hidden_size 2**20 with array shapes that agree with it: the arrays
    would need ~40 TB; the file holds a few KB."""
    H, V = 2 ** 20, len(h["vocab"])
    size = 3 * H * (V + H + 2) + V * (H + 1)  # gru: Layout.size, derived by hand
    arrays = [{**a, "shape": [size] if a["name"] != "h" else [h["batch"], H]} for a in h["arrays"]]
    return {**h, "hidden_size": H, "arrays": arrays}


def first_array(**changes):
    return lambda h: {**h, "arrays": [{**h["arrays"][0], **changes}] + h["arrays"][1:]}


SCHEMA_CASES = {
    # non-finite and overflowing numbers: refused by the parser, named by the schema
    "lr Infinity": (with_field("lr", float("inf")), r"header field 'lr' must be a finite number > 0, got Infinity"),
    "lr NaN": (with_field("lr", float("nan")), r"header field 'lr' .* got NaN"),
    "clip -Infinity": (with_field("clip", float("-inf")), r"header field 'clip' .* got -Infinity"),
    "position 1e400": (raw_replace('"position": 0', '"position": 1e400'), r"header field 'position' .* got 1e400"),
    "window 1e400": (raw_replace('"window": 10', '"window": 1e400'), r"header field 'window'"),
    "chars_total 10**30": (with_field("chars_total", 10 ** 30), r"header field 'chars_total' must be an integer"),
    "optimizer_step -1": (with_field("optimizer_step", -1), r"header field 'optimizer_step' must be an integer >= 0"),
    # types: ints are ints, strings are strings
    "batch 4.0": (with_field("batch", 4.0), r"header field 'batch' must be an integer >= 1 .* got float 4.0"),
    "window true": (with_field("window", True), r"header field 'window' must be an integer .* got bool True"),
    "hidden_size '16'": (with_field("hidden_size", "16"), r"header field 'hidden_size' .* got str '16'"),
    "lr '0.01'": (with_field("lr", "0.01"), r"header field 'lr' must be a finite number"),
    "cell 3": (with_field("cell", 3), r"header field 'cell' must be one of 'rnn_tanh'"),
    "dtype list": (with_field("dtype", ["float32"]), r"header field 'dtype' must be one of 'float32', 'float64'"),
    "format": (with_field("format", "fastrnn-other"), r"header field 'format' must be one of 'fastrnn-charlm'"),
    "fastrnn 1": (with_field("fastrnn", 1), r"header field 'fastrnn'"),
    "optimizer sgd": (with_field("optimizer", "sgd"), r"header field 'optimizer' must be one of 'adam'"),
    "version 2 in a version-1 file": (with_field("version", 2), r"header field 'version'"),
    "vocab entry 5": (lambda h: {**h, "vocab": [5] + h["vocab"][1:]}, r"header field 'vocab\[0\]' must be a string of one character"),
    "vocab entry 'ab'": (lambda h: {**h, "vocab": h["vocab"][:-1] + ["ab"]}, r"header field 'vocab\[\d+\]'"),
    "vocab empty": (with_field("vocab", []), r"header field 'vocab' must be a list of 1 to 1,114,112"),
    "vocab not a list": (with_field("vocab", "abc"), r"header field 'vocab'"),
    "array with an extra key": (first_array(offset=0), r"header field 'arrays\[0\]' must be an object with exactly"),
    "array shape float": (first_array(shape=[1.5]), r"header field 'arrays\[0\].shape'"),
    "array name": (first_array(name="bias"), r"header field 'arrays\[0\].name'"),
    "array dtype 4": (first_array(dtype=4), r"header field 'arrays\[0\].dtype'"),
    "header a list": (lambda h: b"[]", r"the header must be a JSON object"),
    # the exact key set
    "unknown field": (with_field("extra", 1), r"unexpected header field\(s\) \['extra'\]"),
    "missing field": (without("clip"), r"missing header field\(s\) \['clip'\]"),
    "duplicate field": (raw_replace('"lr": ', '"lr": 1.0, "lr": '), r"header field 'lr' appears twice"),
    # nesting, checked before the recursive parser runs (it ended in RecursionError)
    "vocab 100000 deep": (raw_replace('"vocab": [', '"vocab": ' + "[" * 100_000 + "]" * 99_999 + ", ["),
                          r"nest deeper than 4 levels"),
    "shape 5 deep": (first_array(shape=[[[1]]]), r"nest deeper than 4 levels"),
    # sizes: checked against the bytes the file holds before anything is allocated
    "hidden_size 2**20": (huge_but_consistent, r"hidden_size 1,048,576, .* of 39,\d{3},\d{3},\d{3},\d{3} bytes of arrays, but the file holds"),
    "shape beyond 2**62": (first_array(shape=[2 ** 70]), r"header field 'arrays\[0\].shape' .* got list \[1180591620717411303424\]"),
    "hidden_size 17": (with_field("hidden_size", 17), r"of arrays, but the file holds"),
    "not JSON": (lambda h: b'{"format" 1}', r"the header is not valid JSON"),
    "unbalanced": (lambda h: b'{"format": [1}', r"nest deeper than 4 levels or do not balance"),
    "not ASCII": (lambda h: json.dumps(h).encode("ascii").replace(b'"gru"', b'"gr\xc3\xbc"'), r"the header is not ASCII"),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_load_validates_the_header_against_the_schema(tmp_path, case):
    good = small_lm().save(tmp_path / "good.frnn").read_bytes()
    edit, message = SCHEMA_CASES[case]
    bad = tmp_path / "bad.frnn"
    bad.write_bytes(edited(good, edit))
    with pytest.raises(ModelFileError, match=message) as info:  # nothing else escapes
        CharLM.load(bad)
    assert str(info.value).startswith(f"{bad}: malformed model file: ")


def test_load_refuses_a_header_longer_than_any_model_has(tmp_path):
    good = small_lm().save(tmp_path / "good.frnn").read_bytes()
    bad = tmp_path / "bad.frnn"
    # valid JSON (trailing whitespace) that the old reader parsed whatever its length
    bad.write_bytes(edited(good, lambda h: json.dumps(h).encode("ascii") + b" " * (33 << 20)))
    with pytest.raises(ModelFileError, match=r"a header of 34,6\d\d,\d\d\d bytes is longer than any model's"):
        CharLM.load(bad)


def test_load_refuses_non_finite_arrays(tmp_path):
    lm = small_lm()
    good = lm.save(tmp_path / "good.frnn").read_bytes()
    version, header, arrays = file_parts(good)
    nan = np.array([np.nan], "<f4").tobytes()
    bad = tmp_path / "bad.frnn"
    bad.write_bytes(resealed(json.dumps(header).encode("ascii"), nan + arrays[4:], version))
    with pytest.raises(ModelFileError, match="array theta holds non-finite values"):
        CharLM.load(bad)


def test_brackets_quotes_and_backslashes_in_the_vocabulary_are_not_structure(tmp_path):
    text = ('[[[[{{{{ "quoted" \\back\\slash\\ }}}}]]]] \\" \\\\" ' * 20) + "\u00e9\U0001f600"
    lm = CharLM(Vocab.from_text(text), "gru", 8, batch=2, window=5)
    lm.train(text, chars=200)
    loaded = CharLM.load(lm.save(tmp_path / "m.frnn"))
    assert loaded.vocab == lm.vocab and loaded.chars_total == lm.chars_total
    np.testing.assert_array_equal(loaded.theta, lm.theta)


def test_load_refuses_what_is_not_a_regular_file(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "fifo.frnn"
    os.mkfifo(fifo)  # reading it would block until a writer came (forever)
    with pytest.raises(ModelFileError, match="not a regular file"):
        CharLM.load(fifo)


def test_vocab_from_json_is_bounded_too():
    with pytest.raises(ValueError, match="nest deeper than 1 level"):
        Vocab.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocab.from_json('["a" "b"]')
    assert Vocab.from_json('["[", "]", "\\"", "\\\\"]').chars == ("[", "]", '"', "\\")


# --------------------------------------------- sizes refused before allocating

@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_size=100_000_000), r"hidden_size 100,000,000 \(30,000,0\d\d,\d\d\d,\d\d\d,\d\d\d parameters"),
    (dict(hidden_size=10 ** 30), r"hidden_size 1,000,000,000,000,000,000,000,000,000,000"),
    (dict(hidden_size=8, batch=10 ** 12), r"batch 1,000,000,000,000 \(the state of"),
])
def test_impossible_model_sizes_are_a_memory_error_naming_the_argument(kwargs, message):
    v = Vocab.from_text(TEXT)
    H = kwargs.pop("hidden_size")
    with pytest.raises(MemoryError, match=message + r".* would need .* of memory, more than this machine has"):
        CharLM(v, "gru", H, **kwargs)


def test_sampling_more_than_memory_holds_is_a_memory_error(trained):
    with pytest.raises(MemoryError, match=r"n = 1,000,000,000,000,000 characters would need"):
        trained.sample(10 ** 15, seed=0)


# ---------------------------------------------------- non-finite numbers

def with_parameter(lm, name, index, value):
    lm.layout.views(lm.theta)[name][index] = value
    return lm


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_sampling_and_loss_refuse_non_finite_parameters(value):
    lm = with_parameter(small_lm(), "weight_hy", (0, 0), value)
    with pytest.raises(ValueError, match=r"cannot sample: the model's parameters \(theta\) hold non-finite"):
        lm.sample(20, seed=0)
    with pytest.raises(ValueError, match=r"cannot compute a loss: the model's parameters \(theta\) hold non-finite"):
        lm.loss("the cat sat")


def overflowing_relu_lm():
    """Finite weights whose rnn_relu state grows 16x per step: after ~40
    steps it overflows float32, and the distribution becomes NaN."""
    lm = CharLM(Vocab.from_text(TEXT), "rnn_relu", 4, batch=2, window=5)
    P = lm.layout.views(lm.theta)
    P["weight_hh"][...] = 4.0  # each unit gets 4 x the sum of the 4 units
    P["bias_hh"][...] = 1.0
    return lm


def test_sampling_whose_state_overflows_is_an_error_not_text():
    lm = overflowing_relu_lm()
    assert len(lm.sample(5, seed=0)) == 5  # short: still finite
    with pytest.raises(ValueError, match="sampling produced non-finite logits"):
        lm.sample(200, seed=0)


def test_a_loss_whose_state_overflows_is_an_error_not_nan():
    lm = overflowing_relu_lm()
    assert np.isfinite(lm.loss(TEXT[:6]))
    with pytest.raises(ValueError, match="the loss is not finite"):
        lm.loss(TEXT[:200])


@pytest.mark.parametrize("array", ["theta", "opt_v", "h"])
def test_save_refuses_non_finite_numbers_and_writes_nothing(tmp_path, array):
    lm = small_lm()
    path = lm.save(tmp_path / "m.frnn")
    good = path.read_bytes()
    dict(lm._arrays())[array].reshape(-1)[3] = np.nan
    with pytest.raises(ValueError, match=f"refusing to save .*m.frnn: {array} holds non-finite values"):
        lm.save(path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["m.frnn"]


def diverging_lm():
    """float64, head weights of +-1e308: the logits overflow to inf, so the
    first window's loss is not finite (theta itself is finite)."""
    lm = small_lm(dtype=np.float64)
    P = lm.layout.views(lm.theta)
    P["weight_hy"][...] = 1e308 * np.sign(np.random.default_rng(1).standard_normal(P["weight_hy"].shape))
    return lm


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the trainer's, on purpose
def test_training_that_diverges_raises_and_leaves_the_model_as_it_was(tmp_path):
    lm = diverging_lm()
    before = {name: a.copy() for name, a in lm._arrays()}
    with pytest.raises(tr.TrainingDivergedError) as info:
        lm.train(TEXT, chars=400, backend="numpy")  # this trainer detects it (C: pending)
    exc = info.value
    assert isinstance(exc, FloatingPointError) and not np.isfinite(exc.loss)
    # the first window: stream steps [0, 10) of streams of (1920 - 1) // 4 steps
    assert exc.stream_steps == (exc.first_step, exc.last_step) == (0, 10) and exc.stream_length == 479
    assert "training diverged at steps 0-9 of the 4 streams of 479 steps" in str(exc)
    assert (lm.position, lm.chars_total, lm.opt.step) == (0, 0, 0)
    for name, a in lm._arrays():  # no good window: nothing moved
        np.testing.assert_array_equal(a, before[name], err_msg=name)
    # every number is still finite, so the model saves (and loads) as it is
    np.testing.assert_array_equal(CharLM.load(lm.save(tmp_path / "m.frnn")).theta, lm.theta)


def test_divergence_after_good_chunks_keeps_the_last_good_chunks_state(monkeypatch):
    lm = small_lm()  # 4 windows of 10 steps a chunk
    real_fit, calls, seen = tr.fit_sequence, [], []

    def fit_diverging_in_the_third_chunk(spec, theta, inputs, targets, **kw):
        calls.append(inputs.shape)
        if len(calls) == 3:  # as fit_sequence does: windows 0-1 applied, window 2 bad
            real_fit(spec, theta, inputs[:20], targets[:20], **kw)
            raise tr.TrainingDivergedError(2, 20, 30, float("inf"), 2)
        return real_fit(spec, theta, inputs, targets, **kw)
    monkeypatch.setattr(charlm.tr, "fit_sequence", fit_diverging_in_the_third_chunk)

    def record(progress):
        seen.append((progress.chars_total, lm.position, lm.h.copy(), lm.theta.copy(),
                     lm.opt.m.copy(), lm.opt.v.copy(), lm.opt.step))
    with pytest.raises(tr.TrainingDivergedError) as info:
        lm.train(TEXT, chars=10_000, callback=record)
    assert len(seen) == 2 and seen[-1][:2] == (320, 80)  # two good chunks of 4 x 10 steps x 4 streams
    assert (lm.chars_total, lm.position) == (320, 80)
    np.testing.assert_array_equal(lm.h, seen[-1][2])
    # the third chunk's two good windows are undone too: theta matches h again
    assert not np.array_equal(lm.theta, seen[0][3])
    np.testing.assert_array_equal(lm.theta, seen[-1][3])
    np.testing.assert_array_equal(lm.opt.m, seen[-1][4])
    np.testing.assert_array_equal(lm.opt.v, seen[-1][5])
    assert lm.opt.step == seen[-1][6] == 8
    assert info.value.stream_steps == (100, 110) and info.value.window == 2
    assert "training diverged at steps 100-109 of the 4 streams of 479 steps" in str(info.value)
    assert "after 320 characters trained in total" in str(info.value)


# ------------------------------------------------------------------ saves

def test_a_save_removes_temporary_files_of_killed_saves_but_not_live_ones(tmp_path):
    import subprocess
    import sys
    pytest.importorskip("fcntl")  # the rule is POSIX advisory locks (CharLM.save)
    lm = small_lm()
    path = lm.save(tmp_path / "m.frnn")
    # left by killed saves: this version's name (a pid that cannot be running,
    # and no lock held) and the name fastrnn used before it put the pid in
    stale = [tmp_path / ".m.frnn.4194999.k2j4h_8x.tmp", tmp_path / ".m.frnn.abcdefgh.tmp"]
    unrelated = [tmp_path / ".m.frnn.notes", tmp_path / ".other.frnn.1.abcdefgh.tmp",
                 tmp_path / "m.frnn.bak", tmp_path / ".m.frnn.12.abcdefgh.tmp.keep"]
    for p in stale + unrelated:
        p.write_bytes(b"partial")
    # a save in progress in another live process holds its temporary file locked
    live = tmp_path / f".m.frnn.{os.getpid() + 1}.live0000.tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'wb'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(live)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lm.train(TEXT, chars=200)
        lm.save(path)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(["m.frnn", live.name] + [p.name for p in unrelated])
    finally:
        holder.kill()
        holder.wait()
    assert CharLM.load(path).chars_total == lm.chars_total
    lm.save(path)  # its writer is gone now: the next save removes it
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.frnn"] + [p.name for p in unrelated])


def test_a_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path, monkeypatch):
    models, links = tmp_path / "models", tmp_path / "links"
    models.mkdir()
    links.mkdir()
    lm = small_lm()
    target = lm.save(models / "real.frnn")
    (links / "hop.frnn").symlink_to(os.path.join("..", "models", "real.frnn"))  # relative
    (links / "m.frnn").symlink_to(links / "hop.frnn")  # a chain of two links
    lm.train(TEXT, chars=400)
    real_mkstemp, dirs = tempfile.mkstemp, []

    def mkstemp(*args, **kw):
        dirs.append(Path(kw["dir"]))
        return real_mkstemp(*args, **kw)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)  # wherever the save calls it from
    assert lm.save(links / "m.frnn") == links / "m.frnn"
    assert (links / "m.frnn").is_symlink() and (links / "hop.frnn").is_symlink()
    assert dirs == [models.resolve()]  # the temporary file went beside the target: same file system
    assert CharLM.load(target).chars_total == lm.chars_total == CharLM.load(links / "m.frnn").chars_total
    assert sorted(p.name for p in models.iterdir()) == ["real.frnn"]
    assert sorted(p.name for p in links.iterdir()) == ["hop.frnn", "m.frnn"]


def test_a_save_through_a_dangling_symlink_creates_its_target(tmp_path):
    (tmp_path / "m.frnn").symlink_to("new.frnn")
    lm = small_lm()
    lm.save(tmp_path / "m.frnn")
    assert (tmp_path / "m.frnn").is_symlink() and (tmp_path / "new.frnn").is_file()
    assert CharLM.load(tmp_path / "new.frnn").vocab == lm.vocab


def test_a_save_to_a_symlink_loop_fails_and_writes_nothing(tmp_path):
    (tmp_path / "a.frnn").symlink_to("b.frnn")
    (tmp_path / "b.frnn").symlink_to("a.frnn")
    with pytest.raises(OSError) as info:
        small_lm().save(tmp_path / "a.frnn")
    assert info.value.errno == errno.ELOOP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.frnn", "b.frnn"]
    assert (tmp_path / "a.frnn").is_symlink()


def json_depth(value) -> int:
    """Nesting depth of a JSON value, by recursion over the Python value (the
    reference for the linear bracket scan)."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def test_the_nesting_scan_agrees_with_the_depth_of_any_json_value():
    from hypothesis import given, settings, strategies as st
    # strings full of what could confuse a scan: quotes, backslashes, brackets
    text = st.text(alphabet=st.sampled_from('[]{}"\\\\/ ab\u00e9\U0001f600\n'), max_size=8)
    values = st.recursive(st.none() | st.booleans() | st.integers() | text,
                          lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(text, inner, max_size=4), max_leaves=20)

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(values, st.integers(0, 6), st.booleans())
    def check(value, limit, ascii_only):
        raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
        if json_depth(value) > limit:
            with pytest.raises(ValueError, match=f"nest deeper than {limit} level"):
                charlm._check_nesting(raw, limit, "the header")
        else:
            charlm._check_nesting(raw, limit, "the header")
    check()
