"""fastrnn.charlm: vocabulary, training, sampling and the model file format."""
from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import pytest

from fastrnn import charlm
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


def test_the_embedded_corpus_is_the_projects_own_text():
    text = charlm.default_corpus()
    assert len(text) > 50_000 and text.isascii()
    assert "==> README.md <==" in text and "fastrnn" in text


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


def test_sampling_is_seeded_and_follows_the_temperature():
    lm = small_lm()
    lm.train(TEXT, chars=30_000)
    a, b = lm.sample(60, seed=5), lm.sample(60, seed=5)
    assert a == b and len(a) == 60 and set(a) <= set(lm.vocab.chars)
    assert lm.sample(60, seed=6) != a
    # near-zero temperature is the argmax path: any seed gives the same text
    cold = {lm.sample(40, temperature=1e-4, seed=s, prime="the ") for s in range(3)}
    assert len(cold) == 1
    with pytest.raises(ValueError, match="temperature must be > 0"):
        lm.sample(5, temperature=0)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        lm.sample(5, prime="XYZ")


def test_save_load_round_trip_and_resume_equals_uninterrupted(tmp_path):
    lm = small_lm("lstm")
    lm.train(TEXT, chars=2_000)
    path = lm.save(tmp_path / "m.frnn")
    loaded = CharLM.load(path)
    for name, arr in lm._arrays():
        np.testing.assert_array_equal(dict(loaded._arrays())[name], arr, err_msg=name)
    assert (loaded.opt.step, loaded.chars_total, loaded.position) == (lm.opt.step, lm.chars_total, lm.position)
    assert loaded.vocab == lm.vocab and loaded.cell == "lstm" and loaded.dtype == lm.dtype
    # continuing the loaded copy equals continuing the original
    lm.train(TEXT, chars=2_000)
    loaded.train(TEXT, chars=2_000)
    np.testing.assert_array_equal(loaded.theta, lm.theta)
    np.testing.assert_array_equal(loaded.h, lm.h)


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


@pytest.mark.parametrize("case", ["truncated", "bit flip", "foreign", "empty", "newer version",
                                  "inconsistent header"])
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
    with pytest.raises(ValueError, match="too short for 4 streams"):
        small_lm().train("the")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        small_lm().train("the cat sat on the quilt")
