"""A character-level language model on fastrnn's sequence trainer.

The first application of :mod:`fastrnn.training`: a vocabulary of characters,
one recurrent layer (Elman RNN, LSTM or GRU) with index input (an embedding
lookup, never a one-hot product) and a softmax head, trained with TBPTT over
``batch`` parallel streams of the text, and sampled with a temperature and a
seed. Models are saved in a versioned binary format, written atomically and
verified on load.

    lm = CharLM(Vocab.from_text(text), cell="gru", hidden_size=128, seed=0)
    lm.train(text, seconds=30)               # or chars=..., callback=...
    print(lm.sample(200, temperature=0.8, seed=1))
    lm.save("model.frnn"); lm = CharLM.load("model.frnn")

What it is not: a general model zoo (one layer, one head), a tokenizer (one
token per character), or a data loader (the text is held in memory).

File format (version 1), all integers little-endian:

    magic      15 bytes  b"FASTRNN-CHARLM\\0"
    version    uint32
    hlen       uint64    length of the header
    header     hlen bytes of UTF-8 JSON: vocabulary, model, hyper-parameters,
               counters, and the list of arrays (name, dtype, shape) in order
    arrays     their raw little-endian C-order bytes, back to back
    checksum   32 bytes  SHA-256 of everything above

No pickle anywhere: loading a file never runs code from it.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import functional as F
from . import training as tr

__all__ = ["Vocab", "CharLM", "ModelFileError", "TrainProgress", "default_corpus",
           "FORMAT_VERSION"]

MAGIC = b"FASTRNN-CHARLM\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<15sIQ")  # magic, version, header length
_DIGEST = 32


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupt, truncated, foreign or too new."""


def default_corpus() -> str:
    """The text `fastrnn train` uses without a file: the project's own README,
    docs and sources (tools/make_corpus.py), shipped inside the package."""
    return resources.files("fastrnn").joinpath("corpus", "fastrnn.txt").read_text(encoding="ascii")


class Vocab:
    """The characters of a text, in sorted order; index = position."""

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in chars):
            raise ValueError("a vocabulary is a sequence of single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be distinct")
        self.chars = tuple(chars)
        self._index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        if not isinstance(text, str) or not text:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters)"

    def encode(self, text: str) -> np.ndarray:
        """int64 indices of ``text``; ValueError naming the first unknown character."""
        try:
            return np.fromiter((self._index[ch] for ch in text), np.int64, len(text))
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary "
                             f"({len(self)} characters)") from None

    def decode(self, ids) -> str:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"indices must be in [0, {len(self)})")
        return "".join(self.chars[i] for i in ids.tolist())


@dataclass
class TrainProgress:
    """What :meth:`CharLM.train` reports after every chunk."""

    loss: float          # mean cross-entropy of the chunk, nats per character
    chars: int           # characters trained on in this call so far
    seconds: float       # wall time of this call so far
    chars_total: int     # over the model's life (survives save/load)


class CharLM:
    """A one-layer character-level language model and its training state.

    ``theta`` is the flat parameter vector of :class:`fastrnn.training.Layout`
    (weight_ih is the (G*H, V) embedding, looked up by index), trained with
    Adam and gradient-norm clipping by TBPTT over ``batch`` streams of
    ``window``-step windows. The optimizer state, the streams' hidden state and
    their position in the text are part of the model, so that training resumes
    exactly where it stopped (also across save/load).
    """

    def __init__(self, vocab: Vocab, cell: str = "gru", hidden_size: int = 128, *,
                 dtype=np.float32, seed: Optional[int] = 0, batch: int = 32, window: int = 50,
                 lr: float = 3e-3, clip: float = 5.0):
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab, got {type(vocab).__name__}")
        for name, value in (("hidden_size", hidden_size), ("batch", batch), ("window", window)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not lr > 0 or not clip > 0:
            raise ValueError(f"lr and clip must be > 0, got lr={lr}, clip={clip}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.vocab = vocab
        self.layout = tr.Layout(cell, len(vocab), int(hidden_size), len(vocab))
        self.dtype = dtype
        self.batch, self.window, self.lr, self.clip = int(batch), int(window), float(lr), float(clip)
        self.theta = self.layout.init(dtype, seed=seed)
        self.opt = tr.OptimizerState.zeros_like(self.theta)
        self.chars_total = 0
        self.position = 0  # next step of the streams (see _streams)
        self.h = np.zeros((self.batch, self.layout.hidden_size), dtype)
        self.c = np.zeros_like(self.h) if cell == "lstm" else None

    # ------------------------------------------------------------ training

    @property
    def cell(self) -> str:
        return self.layout.cell

    @property
    def hidden_size(self) -> int:
        return self.layout.hidden_size

    def spec(self) -> tr.TrainSpec:
        return tr.TrainSpec(self.layout, head="softmax_ce", index_input=True, reduction="mean",
                            k1=self.window, clip=tr.Clip("norm", self.clip),
                            optimizer=tr.Adam(self.lr))

    def _streams(self, ids: np.ndarray):
        """(inputs, targets) of shape (L, batch): stream b reads ids[b*L : (b+1)*L + 1]."""
        L = (ids.size - 1) // self.batch
        if L < 1:
            raise ValueError(f"the text is too short for {self.batch} streams: "
                             f"need at least {self.batch + 1} characters, got {ids.size}")
        starts = np.arange(self.batch) * L
        cols = starts[None, :] + np.arange(L)[:, None]
        return ids[cols], ids[cols + 1]

    def train(self, text: Union[str, np.ndarray], *, chars: Optional[int] = None,
              seconds: Optional[float] = None, chunk_windows: int = 4,
              callback: Optional[Callable[[TrainProgress], Optional[bool]]] = None,
              backend: Optional[str] = None) -> list:
        """Train on ``text`` (a string in the vocabulary, or its int64 indices)
        until ``chars`` characters or ``seconds`` have passed (whichever comes
        first; with neither, one pass over the text).

        The text is cut into ``batch`` streams; every ``chunk_windows``
        windows are one call into the backend's trainer, after which
        ``callback(TrainProgress)`` runs (returning False stops training).
        At the end of the streams the state resets and the next pass starts.
        Returns the mean loss of every chunk.
        """
        ids = self.vocab.encode(text) if isinstance(text, str) else np.asarray(text, np.int64)
        if ids.ndim != 1:
            raise ValueError(f"text indices must be 1-D, got shape {ids.shape}")
        inputs, targets = self._streams(ids)
        L = inputs.shape[0]
        if chars is None and seconds is None:
            chars = L * self.batch
        spec, step = self.spec(), self.window * int(chunk_windows)
        t0, done, losses = time.perf_counter(), 0, []
        while True:
            if self.position >= L:  # a new pass: fresh state
                self.position = 0
                self.h[...] = 0
                if self.c is not None:
                    self.c[...] = 0
            end = min(self.position + step, L)
            res = tr.fit_sequence(spec, self.theta, inputs[self.position:end],
                                  targets[self.position:end], h0=self.h, c0=self.c,
                                  state=self.opt, backend=backend)
            self.h, self.c = res.h_n, res.c_n
            steps = end - self.position
            self.position = end
            done += steps * self.batch
            self.chars_total += steps * self.batch
            # per-window means -> the chunk's mean per character (the last
            # window of the streams may be shorter)
            widths = np.full(res.losses.size, self.window)
            widths[-1] = steps - self.window * (res.losses.size - 1)
            losses.append(float(np.average(res.losses, weights=widths)))
            elapsed = time.perf_counter() - t0
            if callback is not None and callback(TrainProgress(losses[-1], done, elapsed,
                                                               self.chars_total)) is False:
                break
            if (chars is not None and done >= chars) or (seconds is not None and elapsed >= seconds):
                break
        return losses

    # ----------------------------------------------------------- inference

    def loss(self, text: str, backend: Optional[str] = None) -> float:
        """Mean cross-entropy (nats per character) of predicting each
        character of ``text`` from the ones before it, from a zero state."""
        ids = self.vocab.encode(text)
        if ids.size < 2:
            raise ValueError("loss needs at least two characters")
        P = self.layout.views(self.theta)
        h = np.zeros((1, self.hidden_size), self.dtype)
        c = np.zeros_like(h) if self.cell == "lstm" else None
        total = 0.0
        for start in range(0, ids.size - 1, 4096):  # bounded memory for long texts
            chunk = ids[start:min(start + 4096, ids.size - 1)]
            x = np.zeros((chunk.size, 1, len(self.vocab)), self.dtype)
            x[np.arange(chunk.size), 0, chunk] = 1
            res = F.forward(self.cell, x, P["weight_ih"], P["weight_hh"], P["bias_ih"],
                            P["bias_hh"], h, c, backend=backend)
            h, c = res.h_n, res.c_n
            z = res.output[:, 0].astype(np.float64) @ P["weight_hy"].T.astype(np.float64) + P["bias_y"]
            zmax = z.max(axis=1, keepdims=True)
            logz = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
            nxt = ids[start + 1:start + 1 + chunk.size]
            total += float(np.sum(logz - z[np.arange(chunk.size), nxt]))
        return total / (ids.size - 1)

    def sample(self, n: int, *, temperature: float = 1.0, seed: Optional[int] = None,
               prime: str = "", backend: Optional[str] = None) -> str:
        """``n`` characters drawn one at a time after ``prime`` (which must be
        in the vocabulary; not included in the result). ``temperature`` > 0
        sharpens (< 1) or flattens (> 1) the distribution; the same seed gives
        the same text."""
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        rng = np.random.default_rng(seed)
        P = self.layout.views(self.theta)
        V, H = len(self.vocab), self.hidden_size
        h = np.zeros((1, H), self.dtype)
        c = np.zeros_like(h) if self.cell == "lstm" else None
        x = np.zeros((1, V), self.dtype)
        w_hy, b_y = P["weight_hy"].astype(np.float64), P["bias_y"].astype(np.float64)

        def advance(idx):
            nonlocal h, c
            x[...] = 0
            x[0, idx] = 1
            out = F.step(self.cell, x, P["weight_ih"], P["weight_hh"], P["bias_ih"], P["bias_hh"],
                         h, c, backend=backend)
            h, c = out if self.cell == "lstm" else (out, None)

        prime_ids = self.vocab.encode(prime)
        for idx in prime_ids:
            advance(idx)
        last = int(prime_ids[-1]) if prime_ids.size else int(rng.integers(V))
        if not prime_ids.size:
            advance(last)
        out = []
        for _ in range(int(n)):
            z = (w_hy @ h[0].astype(np.float64) + b_y) / temperature
            p = np.exp(z - z.max())
            p /= p.sum()
            last = int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), V - 1))
            out.append(last)
            advance(last)
        return self.vocab.decode(out)

    # ----------------------------------------------------------- save/load

    def _arrays(self) -> list:
        arrays = [("theta", self.theta), ("opt_m", self.opt.m), ("opt_v", self.opt.v), ("h", self.h)]
        if self.c is not None:
            arrays.append(("c", self.c))
        return arrays

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the model to ``path`` atomically: a temporary file in the same
        directory, flushed and fsync'ed, then renamed over ``path``. An
        interrupted save leaves any previous file at ``path`` intact."""
        path = Path(path)
        arrays = self._arrays()
        header = {
            "format": "fastrnn-charlm", "version": FORMAT_VERSION,
            "vocab": list(self.vocab.chars), "cell": self.cell, "hidden_size": self.hidden_size,
            "dtype": self.dtype.name, "batch": self.batch, "window": self.window, "lr": self.lr,
            "clip": self.clip, "optimizer_step": int(self.opt.step),
            "chars_total": int(self.chars_total), "position": int(self.position),
            "arrays": [{"name": n, "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape)}
                       for n, a in arrays],
        }
        blob = json.dumps(header, ensure_ascii=True).encode("ascii")
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            if hasattr(os, "fchmod"):  # mkstemp's 0600 -> what a plain open() would give
                os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                for chunk in [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)), blob] + [
                        np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes() for _, a in arrays]:
                    f.write(chunk)
                    digest.update(chunk)
                f.write(digest.digest())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_directory(path.parent)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "CharLM":
        """Read a model written by :meth:`save`; ModelFileError if the file is
        not one, is damaged or truncated, or comes from a newer fastrnn."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        if len(data) < _PREFIX.size or not data.startswith(MAGIC):
            raise ModelFileError(f"{path}: not a fastrnn character model (bad magic bytes)")
        _, version, hlen = _PREFIX.unpack_from(data)
        if version > FORMAT_VERSION:
            raise ModelFileError(f"{path}: format version {version} is newer than this fastrnn "
                                 f"reads ({FORMAT_VERSION}); upgrade fastrnn")
        if version < 1:
            raise ModelFileError(f"{path}: invalid format version {version}")
        if len(data) < _PREFIX.size + hlen + _DIGEST:
            raise ModelFileError(f"{path}: truncated ({len(data)} bytes)")
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise ModelFileError(f"{path}: checksum mismatch: the file is corrupt or truncated")
        try:
            header = json.loads(body[_PREFIX.size:_PREFIX.size + hlen].decode("ascii"))
            lm = cls(Vocab(header["vocab"]), header["cell"], header["hidden_size"],
                     dtype=header["dtype"], seed=None, batch=header["batch"],
                     window=header["window"], lr=header["lr"], clip=header["clip"])
            offset = _PREFIX.size + hlen
            arrays = {}
            for spec in header["arrays"]:
                dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
                size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
                if offset + size > len(body):
                    raise ValueError(f"array {spec['name']} runs past the end of the data")
                arrays[spec["name"]] = np.frombuffer(body, dtype, int(np.prod(shape)), offset) \
                    .reshape(shape).astype(lm.dtype)
                offset += size
            if offset != len(body):
                raise ValueError("unexpected bytes after the arrays")
            expected = dict(lm._arrays())
            if set(arrays) != set(expected):
                raise ValueError(f"arrays {sorted(arrays)} do not match the model's {sorted(expected)}")
            for name, arr in arrays.items():
                if arr.shape != expected[name].shape:
                    raise ValueError(f"array {name} has shape {arr.shape}, expected {expected[name].shape}")
            lm.theta, lm.h, lm.c = arrays["theta"], arrays["h"], arrays.get("c")
            lm.opt = tr.OptimizerState(arrays["opt_m"], arrays["opt_v"], int(header["optimizer_step"]))
            lm.chars_total, lm.position = int(header["chars_total"]), int(header["position"])
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path}: malformed model file: {exc}") from exc
        return lm


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
