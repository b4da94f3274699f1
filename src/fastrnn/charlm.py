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
token per character), or a data loader (the text is held in memory, one or
two bytes per character once encoded).

File format (version 1), all integers little-endian:

    magic      15 bytes  b"FASTRNN-CHARLM\\0"
    version    uint32
    hlen       uint64    length of the header
    header     hlen bytes of ASCII JSON: vocabulary, model, hyper-parameters,
               counters, and the list of arrays (name, dtype, shape) in order
    arrays     their raw little-endian C-order bytes, back to back
    checksum   32 bytes  SHA-256 of everything above

No pickle anywhere: loading a file never runs code from it. A reader refuses
a version newer than its own (FORMAT_VERSION); a new version is needed for
any change an older reader would misread.
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
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from . import __version__
from . import functional as F
from . import training as tr

__all__ = ["Vocab", "CharLM", "ModelFileError", "TrainProgress", "default_corpus",
           "FORMAT_VERSION"]

MAGIC = b"FASTRNN-CHARLM\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<15sIQ")  # magic, version, header length
_DIGEST = 32
_FLOAT_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_ENCODE_SLICE = 1 << 20  # characters encoded at a time (bounds the temporaries)

TextLike = Union[str, np.ndarray, Sequence[int]]


class ModelFileError(ValueError):
    """A model file that cannot be loaded: missing, corrupt, truncated, foreign
    or written by a newer fastrnn. The message names the file and the problem."""


def default_corpus() -> str:
    """The text ``fastrnn train`` uses without a file: the project's own README,
    docs and sources (written by tools/make_corpus.py), shipped in the package."""
    return resources.files("fastrnn").joinpath("corpus", "fastrnn.txt").read_text(encoding="ascii")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Vocab:
    """The characters of a text, in sorted order; a character's index is its position.

    Serialisable as its list of characters (:meth:`to_json` / :meth:`from_json`;
    :meth:`CharLM.save` stores it the same way).
    """

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in chars):
            raise ValueError("a vocabulary is a sequence of single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be distinct")
        self.chars = tuple(chars)
        self._set = frozenset(self.chars)
        # vectorised encoding: code points sorted, and the index each maps to
        codes = np.array([ord(ch) for ch in self.chars], np.uint32)
        order = np.argsort(codes, kind="stable")
        self._codes, self._ids = codes[order], order.astype(np.int64)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        """The sorted distinct characters of ``text`` (which must not be empty)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(sorted(set(text)))

    def to_json(self) -> str:
        return json.dumps(list(self.chars), ensure_ascii=True)

    @classmethod
    def from_json(cls, data: str) -> "Vocab":
        chars = json.loads(data)
        if not isinstance(chars, list):
            raise ValueError("a serialised vocabulary is a JSON list of characters")
        return cls(chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch) -> bool:
        return ch in self._set

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters)"

    def encode(self, text: str, dtype=np.int64) -> np.ndarray:
        """The indices of ``text``'s characters (int64 unless ``dtype`` says
        otherwise); ValueError naming the first character not in the vocabulary."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        out = np.empty(len(text), dtype)
        for start in range(0, len(text), _ENCODE_SLICE):
            part = text[start:start + _ENCODE_SLICE]
            cps = np.frombuffer(part.encode("utf-32-le", "surrogatepass"), "<u4")
            pos = np.minimum(np.searchsorted(self._codes, cps), len(self._codes) - 1)
            known = self._codes[pos] == cps
            if not known.all():
                i = int(np.argmin(known))
                raise ValueError(f"character {part[i]!r} is not in the vocabulary "
                                 f"({len(self)} characters; first at position {start + i})")
            out[start:start + len(part)] = self._ids[pos]
        return out

    def decode(self, ids) -> str:
        """The text of a sequence of indices."""
        ids = np.asarray(ids)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"indices must be in [0, {len(self)})")
        return "".join(self.chars[i] for i in ids.ravel().tolist())


@dataclass
class TrainProgress:
    """What :meth:`CharLM.train` reports to its callback after every chunk."""

    loss: float          # mean cross-entropy of the chunk, nats per character
    chars: int           # characters trained on in this call so far
    seconds: float       # wall time of this call so far
    chars_total: int     # over the model's life (survives save/load)
    step: int            # optimizer updates over the model's life


class CharLM:
    """A one-layer character-level language model and its training state.

    ``theta`` is the flat parameter vector of :class:`fastrnn.training.Layout`
    (weight_ih is the (G*H, V) embedding, looked up by index; the head maps
    the hidden state to V logits), trained with Adam(``lr``) and global
    gradient-norm clipping at ``clip`` by TBPTT over ``batch`` streams of
    ``window``-step windows, mean cross-entropy per window. The optimizer
    state, the streams' hidden state and their position in the text are part
    of the model, so training resumes exactly where it stopped, also across
    :meth:`save` / :meth:`load`.
    """

    def __init__(self, vocab: Vocab, cell: str = "gru", hidden_size: int = 128, *,
                 dtype=np.float32, seed: Optional[int] = 0, batch: int = 32, window: int = 50,
                 lr: float = 3e-3, clip: float = 5.0):
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab, got {type(vocab).__name__}")
        hidden_size = _positive_int("hidden_size", hidden_size)
        batch, window = _positive_int("batch", batch), _positive_int("window", window)
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if not (isinstance(clip, (int, float)) and np.isfinite(clip) and clip > 0):
            raise ValueError(f"clip must be a finite number > 0, got {clip!r}")
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.vocab = vocab
        self.layout = tr.Layout(cell, len(vocab), hidden_size, len(vocab))
        self.dtype = dtype
        self.batch, self.window, self.lr, self.clip = batch, window, float(lr), float(clip)
        self.theta = self.layout.init(dtype, seed=seed)
        self.opt = tr.OptimizerState.zeros_like(self.theta)
        self.chars_total = 0
        self.position = 0  # the streams' next step (see train)
        self.h = np.zeros((batch, hidden_size), dtype)
        self.c = np.zeros_like(self.h) if cell == "lstm" else None

    @property
    def cell(self) -> str:
        return self.layout.cell

    @property
    def hidden_size(self) -> int:
        return self.layout.hidden_size

    def __repr__(self) -> str:
        return (f"CharLM({self.cell}, hidden {self.hidden_size}, {len(self.vocab)} characters, "
                f"{self.dtype.name}, {self.chars_total:,} characters trained)")

    def spec(self) -> tr.TrainSpec:
        """The training problem handed to :func:`fastrnn.training.fit_sequence`."""
        return tr.TrainSpec(self.layout, head="softmax_ce", index_input=True, reduction="mean",
                            k1=self.window, clip=tr.Clip("norm", self.clip),
                            optimizer=tr.Adam(self.lr))

    # ------------------------------------------------------------ training

    def _ids(self, text: TextLike) -> np.ndarray:
        """The text as compact indices (uint8/uint16/int32: memory ~ the text's)."""
        V = len(self.vocab)
        compact = np.uint8 if V <= 1 << 8 else np.uint16 if V <= 1 << 16 else np.int32
        if isinstance(text, str):
            if not text:
                raise ValueError("cannot train on empty text")
            return self.vocab.encode(text, compact)
        ids = np.asarray(text)
        if ids.dtype.kind not in "iu" or ids.ndim != 1:
            raise TypeError(f"text must be a str or a 1-D integer index array, got dtype "
                            f"{ids.dtype}, shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"text indices must be in [0, {V})")
        return ids.astype(compact)

    def train(self, text: TextLike, *, chars: Optional[int] = None,
              seconds: Optional[float] = None, chunk_windows: int = 4,
              callback: Optional[Callable[[TrainProgress], Optional[bool]]] = None,
              backend: Optional[str] = None) -> List[float]:
        """Train on ``text`` (a str in the vocabulary, or its indices) until
        ``chars`` characters have been trained on (rounded up to whole
        windows of the ``batch`` streams) or ``seconds`` have passed (checked
        after each chunk), whichever comes first; with neither, one pass's
        worth of characters (batch * L).

        The text of N characters is cut into ``batch`` streams of
        L = (N - 1) // batch steps; stream b reads characters
        [b*L, (b+1)*L] (inputs and next-character targets). Every
        ``chunk_windows`` windows of the streams are one call into the
        trainer (the state and optimizer carried over), after which
        ``callback(TrainProgress)`` runs; returning False stops training.
        Memory is bounded by a chunk, not the text. When the streams end,
        the state resets to zero and the next pass starts from the top.
        Chunks hold whole windows (a pass's last, shorter window is a chunk
        of its own), so the result does not depend on how training is split
        into calls, chunks or interruptions: the windows are always the same.
        Returns the mean loss (nats/char) of every chunk.
        """
        ids = self._ids(text)
        if chars is not None:
            chars = _positive_int("chars", chars)
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
        chunk_windows = _positive_int("chunk_windows", chunk_windows)
        B = self.batch
        L = (ids.size - 1) // B
        if L < 1:
            raise ValueError(f"the text is too short for {B} streams (batch): need at least "
                             f"{B + 1} characters, got {ids.size}")
        if chars is None and seconds is None:
            chars = L * B
        starts = (np.arange(B, dtype=np.int64) * L)[None, :]
        full = L - L % self.window  # steps in whole windows
        spec, step = self.spec(), self.window * chunk_windows
        t0, done, losses = time.perf_counter(), 0, []
        while True:
            if self.position >= L:  # a new pass: fresh state
                self.position = 0
                self.h[...] = 0
                if self.c is not None:
                    self.c[...] = 0
            end = min(self.position + step, L)
            if self.position < full:  # the pass's last, partial window is a call of its own
                end = min(end, full)
            if chars is not None:  # no further than the budget needs, in whole windows
                need = -(-(chars - done) // B)
                end = min(end, self.position + self.window * -(-need // self.window))
            cols = np.arange(self.position, end, dtype=np.int64)[:, None] + starts
            res = tr.fit_sequence(spec, self.theta, ids[cols].astype(np.int64),
                                  ids[cols + 1].astype(np.int64), h0=self.h, c0=self.c,
                                  state=self.opt, backend=backend)
            steps = end - self.position
            self.h, self.c, self.position = res.h_n, res.c_n, end
            done += steps * B
            self.chars_total += steps * B
            # per-window means -> the chunk's mean per character (the last
            # window of the streams may be shorter)
            widths = np.full(res.losses.size, self.window)
            widths[-1] = steps - self.window * (res.losses.size - 1)
            losses.append(float(np.average(res.losses, weights=widths)))
            elapsed = time.perf_counter() - t0
            if callback is not None and callback(TrainProgress(
                    losses[-1], done, elapsed, self.chars_total, self.opt.step)) is False:
                break
            if (chars is not None and done >= chars) or (seconds is not None and elapsed >= seconds):
                break
        return losses

    # ----------------------------------------------------------- inference

    def _views(self):
        P = self.layout.views(self.theta)
        return (P["weight_ih"], P["weight_hh"], P["bias_ih"], P["bias_hh"],
                P["weight_hy"].astype(np.float64), P["bias_y"].astype(np.float64))

    def loss(self, text: str, backend: Optional[str] = None) -> float:
        """Mean cross-entropy (nats per character) of predicting each character
        of ``text`` from the ones before it, starting from a zero state."""
        ids = self.vocab.encode(text)
        if ids.size < 2:
            raise ValueError("loss needs at least two characters")
        w_ih, w_hh, b_ih, b_hh, w_hy, b_y = self._views()
        V = len(self.vocab)
        h = np.zeros((1, self.hidden_size), self.dtype)
        c = np.zeros_like(h) if self.cell == "lstm" else None
        total, block = 0.0, 4096  # bounded memory for long texts
        for start in range(0, ids.size - 1, block):
            chunk = ids[start:min(start + block, ids.size - 1)]
            x = np.zeros((chunk.size, 1, V), self.dtype)
            x[np.arange(chunk.size), 0, chunk] = 1
            res = F.forward(self.cell, x, w_ih, w_hh, b_ih, b_hh, h, c, backend=backend)
            h, c = res.h_n, res.c_n
            z = res.output[:, 0].astype(np.float64) @ w_hy.T + b_y
            zmax = z.max(axis=1)
            logz = np.log(np.exp(z - zmax[:, None]).sum(axis=1)) + zmax
            nxt = ids[start + 1:start + 1 + chunk.size]
            total += float(np.sum(logz - z[np.arange(chunk.size), nxt]))
        return total / (ids.size - 1)

    def sample(self, n: int, *, temperature: float = 1.0, seed: Optional[int] = None,
               prime: str = "", backend: Optional[str] = None) -> str:
        """``n`` characters drawn one at a time, each fed back as the next input.

        The model first reads ``prime`` (characters in the vocabulary; not part
        of the result) from a zero state; without one it starts after a newline
        (or, if the vocabulary has none, after a character drawn with the seed).
        ``temperature`` > 0 divides the logits: < 1 sharpens, > 1 flattens, and
        as it goes to 0 the draw becomes the argmax. The same seed gives the
        same text (None: fresh entropy). One step at a time through
        :func:`fastrnn.functional.step`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        prime_ids = self.vocab.encode(prime)
        rng = np.random.default_rng(seed)
        w_ih, w_hh, b_ih, b_hh, w_hy, b_y = self._views()
        V = len(self.vocab)
        h = np.zeros((1, self.hidden_size), self.dtype)
        c = np.zeros_like(h) if self.cell == "lstm" else None
        x = np.zeros((1, V), self.dtype)

        def advance(idx: int) -> None:
            nonlocal h, c
            x[...] = 0
            x[0, idx] = 1
            out = F.step(self.cell, x, w_ih, w_hh, b_ih, b_hh, h, c, backend=backend)
            h, c = out if self.cell == "lstm" else (out, None)

        if not prime_ids.size:
            prime_ids = (self.vocab.encode("\n") if "\n" in self.vocab
                         else np.array([rng.integers(V)], np.int64))
        for idx in prime_ids.tolist():
            advance(idx)
        out = np.empty(n, np.int64)
        with np.errstate(over="ignore", under="ignore"):
            for i in range(n):
                z = w_hy @ h[0].astype(np.float64) + b_y
                p = np.exp((z - z.max()) / temperature)  # <= 1, the max is exactly 1
                cum = np.cumsum(p)
                out[i] = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), V - 1)
                advance(int(out[i]))
        return self.vocab.decode(out)

    # ----------------------------------------------------------- save/load

    def _arrays(self) -> list:
        arrays = [("theta", self.theta), ("opt_m", self.opt.m), ("opt_v", self.opt.v), ("h", self.h)]
        if self.c is not None:
            arrays.append(("c", self.c))
        return arrays

    def _header(self) -> dict:
        return {
            "format": "fastrnn-charlm", "version": FORMAT_VERSION, "fastrnn": __version__,
            "vocab": list(self.vocab.chars), "cell": self.cell, "hidden_size": self.hidden_size,
            "dtype": self.dtype.name, "batch": self.batch, "window": self.window,
            "optimizer": "adam", "lr": self.lr, "optimizer_step": int(self.opt.step),
            "clip": self.clip,
            "chars_total": int(self.chars_total), "position": int(self.position),
            "arrays": [{"name": n, "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape)}
                       for n, a in self._arrays()],
        }

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the model to ``path`` atomically and return the path.

        The file is written to a temporary file in the same directory, flushed
        and fsync'ed, then renamed over ``path`` (and the directory fsync'ed
        where the platform allows): a save that fails or is interrupted leaves
        any previous file at ``path`` as it was, and no temporary file.
        """
        path = Path(path)
        blob = json.dumps(self._header(), ensure_ascii=True).encode("ascii")
        chunks = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)), blob]
        chunks += [np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
                   for _, a in self._arrays()]
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            if hasattr(os, "fchmod"):  # mkstemp's 0600 -> what a plain open() would give
                os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
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
        """Read a model written by :meth:`save`.

        Raises :class:`ModelFileError` (naming the file) if it cannot be read,
        is not a fastrnn character model, is truncated or damaged (checksum),
        was written by a newer fastrnn (format version), or is inconsistent.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        if not data:
            raise ModelFileError(f"{path}: empty file, not a fastrnn character model")
        if not data[:len(MAGIC)] == MAGIC[:len(data)]:
            raise ModelFileError(f"{path}: not a fastrnn character model (bad magic bytes)")
        if len(data) < _PREFIX.size:
            raise ModelFileError(f"{path}: truncated ({len(data)} bytes)")
        _, version, hlen = _PREFIX.unpack_from(data)
        if version > FORMAT_VERSION:
            raise ModelFileError(f"{path}: format version {version} is newer than this fastrnn "
                                 f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade fastrnn")
        if version < 1:
            raise ModelFileError(f"{path}: invalid format version {version}")
        if len(data) < _PREFIX.size + hlen + _DIGEST:
            raise ModelFileError(f"{path}: truncated ({len(data)} bytes)")
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise ModelFileError(f"{path}: checksum mismatch: the file is corrupt or truncated")
        try:
            return cls._from_parts(json.loads(body[_PREFIX.size:_PREFIX.size + hlen].decode("ascii")),
                                   body, _PREFIX.size + hlen)
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path}: malformed model file: {exc}") from exc

    @classmethod
    def _from_parts(cls, header: dict, body: bytes, offset: int) -> "CharLM":
        if not isinstance(header, dict) or header.get("format") != "fastrnn-charlm":
            raise ValueError("the header is not a fastrnn-charlm header")
        dtype = _FLOAT_DTYPES.get(header["dtype"])
        if dtype is None:
            raise ValueError(f"dtype must be float32 or float64, got {header['dtype']!r}")
        vocab = Vocab(header["vocab"])
        V, H = len(vocab), _positive_int("hidden_size", header["hidden_size"])
        batch = _positive_int("batch", header["batch"])
        layout = tr.Layout(header["cell"], V, H, V)
        expected = {"theta": (layout.size,), "opt_m": (layout.size,), "opt_v": (layout.size,),
                    "h": (batch, H)}
        if layout.cell == "lstm":
            expected["c"] = (batch, H)
        arrays = {}
        for spec in header["arrays"]:
            name, shape = spec["name"], tuple(spec["shape"])
            if name not in expected or name in arrays:
                raise ValueError(f"unexpected array {name!r}")
            if shape != expected[name]:
                raise ValueError(f"array {name} has shape {shape}, expected {expected[name]}")
            if np.dtype(spec["dtype"]) != dtype:
                raise ValueError(f"array {name} has dtype {spec['dtype']}, expected {dtype.str}")
            count = int(np.prod(shape, dtype=np.int64))
            if offset + count * dtype.itemsize > len(body):
                raise ValueError(f"array {name} runs past the end of the data")
            arrays[name] = np.frombuffer(body, dtype, count, offset).reshape(shape) \
                .astype(dtype.newbyteorder("="))
            offset += count * dtype.itemsize
        if offset != len(body):
            raise ValueError("unexpected bytes after the arrays")
        if set(arrays) != set(expected):
            raise ValueError(f"arrays {sorted(arrays)} do not match the model's {sorted(expected)}")
        if header.get("optimizer", "adam") != "adam":
            raise ValueError(f"unsupported optimizer {header['optimizer']!r}")
        # validate the scalars through the constructor, at hidden size 1 and
        # batch 1 (no large random initialisation: the arrays come from the file)
        lm = cls(vocab, layout.cell, 1, dtype=dtype.name, seed=0, batch=1,
                 window=header["window"], lr=header["lr"], clip=header["clip"])
        lm.layout, lm.batch = layout, batch
        lm.theta, lm.h, lm.c = arrays["theta"], arrays["h"], arrays.get("c")
        lm.opt = tr.OptimizerState(arrays["opt_m"], arrays["opt_v"], int(header["optimizer_step"]))
        lm.chars_total, lm.position = int(header["chars_total"]), int(header["position"])
        if lm.chars_total < 0 or lm.position < 0 or lm.opt.step < 0:
            raise ValueError("negative counters")
        return lm


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
