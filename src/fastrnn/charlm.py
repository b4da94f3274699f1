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
any change an older reader would misread. The checksum only detects damage:
anyone can edit a file and reseal it, so a reader also validates the header
against an explicit schema before building anything from it (see
:meth:`CharLM.load`), and every array must be finite.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import struct
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from . import __version__
from . import functional as F
from . import training as tr
from . import _validate as _v
from ._atomic import write_atomically
from . import cells
from ._validate import CELLS

__all__ = ["Vocab", "CharLM", "ModelFileError", "TrainProgress", "default_corpus", "prose_prime",
           "FORMAT_VERSION"]

MAGIC = b"FASTRNN-CHARLM\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<15sIQ")  # magic, version, header length
_DIGEST = 32
_FLOAT_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_ENCODE_SLICE = 1 << 20  # characters encoded at a time (bounds the temporaries)

TextLike = Union[str, np.ndarray, Sequence[int]]


class ModelFileError(ValueError):
    """A model file that cannot be loaded: missing, corrupt, truncated, foreign,
    written by a newer fastrnn, or with a header that breaks the schema. The
    message names the file and the problem (and the header field, if any)."""


def default_corpus() -> str:
    """The text ``fastrnn train`` uses without a file: the project's own README,
    docs and sources (written by tools/make_corpus.py), shipped in the package."""
    return resources.files("fastrnn").joinpath("corpus", "fastrnn.txt").read_text(encoding="ascii")


# ------------------------------------------------------ scalar arguments
# fastrnn._validate's checks: TypeError for the wrong type (bools are not
# numbers here), ValueError for a value out of range, both naming the argument.

# A line of prose: a capitalised word, then at least three lower-case words
# (a code line rarely reads so; a markdown rule or table row never does).
_PROSE_LINE = re.compile(r"^([ \t]*)([A-Z][a-z]+(?: [a-z]+){3,})", re.M)


def prose_prime(text: str, words: int = 3) -> str:
    """The first ``words`` words (and the space after them) of the first line
    of prose in ``text``, to start samples from: "Three backends do ". "" if
    the text has no such line.

    Why: a sample that starts after a newline continues whatever lines most
    often follow one, and in a corpus of docs and sources those are code,
    comment rules and table rows; started inside a sentence, the model shows
    what it has learnt of words. A line of prose here is a capitalised word
    and at least three lower-case ones; lines at the margin are preferred to
    indented ones (docstrings, comments).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = _positive_int("words", words)
    found = [(m.group(1), m.group(2)) for m in _PROSE_LINE.finditer(text)]
    line = next((line for indent, line in found if not indent), found[0][1] if found else None)
    return "" if line is None else " ".join(line.split(" ")[:words]) + " "


def _positive_int(name: str, value, minimum: int = 1) -> int:
    return _v.integer(name, value, minimum)


def _positive_real(name: str, value) -> float:
    return _v.real_number(name, value, 0.0, low_open=True)


# ------------------------------------------------------ memory and sizes

def _machine_memory() -> Optional[int]:
    """The most memory this process could ever get, in bytes: the physical
    memory, or the cgroup's limit when that is lower; None where unknown.
    Sizes above it are impossible, so they are refused before allocating."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None
    for cgroup_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(cgroup_file, "rb") as f:
                text = f.read(64).strip()
        except OSError:
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit if limit > 0 else None


def _format_bytes(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:,} bytes" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _require_memory(nbytes: int, what: str) -> None:
    """MemoryError naming ``what`` if ``nbytes`` exceed this machine's memory
    (O(1); the allocation itself stays the final judge below that bound)."""
    limit = _machine_memory()
    if limit is not None and nbytes > limit:
        raise MemoryError(f"{what} would need {_format_bytes(nbytes)} of memory, more than this "
                          f"machine has ({_format_bytes(limit)})")


def _sample_bytes(n: int) -> int:
    """Memory :meth:`CharLM.sample` needs for ``n`` characters: the drawn
    indices (int32), their code points while decoding, the str (<= 4 bytes each)."""
    return 12 * n


def _parameter_count(cell: str, vocab_size: int, hidden_size: int) -> int:
    """Layout(cell, V, H, V).size in exact integer arithmetic: G*H*(V + H + 2)
    for the layer, V*(H + 1) for the head. Computed here, not with numpy,
    because a size from a user or a file may exceed int64."""
    return (cells.get(cell).gates * hidden_size * (vocab_size + hidden_size + 2)
            + vocab_size * (hidden_size + 1))


# ---------------------------------------------- the model file's header
#
# The header is checked against this schema before anything is built from
# it. The checksum proves nothing about intent (anyone can reseal an edited
# file), so every value is treated as hostile: JSON is parsed with NaN,
# Infinity and overflowing numbers turned into markers instead of floats,
# duplicate keys refused, the nesting bounded before the (recursive) parser
# runs, and the sizes checked against the bytes the file actually holds
# before any array is allocated.

_MAX_HEADER_BYTES = 1 << 25   # 32 MiB: a vocabulary of every Unicode character needs ~18 MB
_MAX_HEADER_DEPTH = 4         # {"arrays": [{"shape": [...]}]}
_MAX_VOCAB = 0x110000         # every Unicode code point
_MAX_COUNT = 1 << 62          # counters and sizes: safe in int64 arithmetic, beyond any real run
_ARRAY_NAMES = ("theta", "opt_m", "opt_v", "h", "c")
_ESCAPE = re.compile(rb"\\.", re.S)
_STRING_WITHOUT_ESCAPES = re.compile(rb'"[^"]*"')
_INNERMOST_GROUP = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")
_BRACKET = re.compile(rb"[\[\]{}]")


class _Refused:
    """A JSON number the parser would not turn into a Python number (NaN,
    Infinity, -Infinity, a float that overflows, an integer beyond int64):
    kept as a marker so that the schema reports the field it was found in."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _Refused(text)


def _parse_int(text: str):
    # 19 digits hold every int64; longer ones are out of range for any field
    # (and Python's int() would spend quadratic time on a million digits)
    return int(text) if len(text.lstrip("-")) <= 19 else _Refused(text)


def _object_without_duplicates(pairs) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"header field {key!r} appears twice")
        obj[key] = value
    return obj


def _check_nesting(raw: bytes, limit: int, what: str) -> None:
    """ValueError unless ``raw``'s brackets nest at most ``limit`` deep.

    Linear and non-recursive, so it runs before json (whose C scanner
    recurses per level and ends in RecursionError). Escapes are removed
    first, which leaves strings as plain quote pairs, then strings (brackets
    inside them do not count); text after an unterminated string is part of
    that string. ``limit`` passes then remove innermost groups: any bracket
    left over nests deeper (or does not balance). Only the text before the
    first JSON syntax error matters (json stops there), and up to that point
    these rules are exactly JSON's."""
    skeleton = _STRING_WITHOUT_ESCAPES.sub(b"", _ESCAPE.sub(b"", raw))
    skeleton = skeleton.split(b'"', 1)[0]
    for _ in range(limit):
        skeleton = _INNERMOST_GROUP.sub(b"", skeleton)
    if _BRACKET.search(skeleton):
        raise ValueError(f"{what}'s brackets nest deeper than {limit} level"
                         f"{'s' if limit != 1 else ''} or do not balance")


def _parse_json(raw: Union[bytes, str], max_depth: int, what: str = "the header"):
    """Strict JSON: bounded nesting, no duplicate keys, non-finite numbers as
    :class:`_Refused` markers. ``raw`` is ASCII bytes (a model header) or a
    str. ValueError on any failure."""
    if isinstance(raw, str):
        text = raw
        # quotes, backslashes and brackets are ASCII, and UTF-8 never uses
        # ASCII bytes inside a multi-byte character: the scan sees JSON's structure
        _check_nesting(raw.encode("utf-8", "surrogatepass"), max_depth, what)
    else:
        _check_nesting(raw, max_depth, what)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not ASCII (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=_parse_float, parse_int=_parse_int,
                          parse_constant=_Refused, object_pairs_hook=_object_without_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # not reachable after _check_nesting; kept as the backstop
        raise ValueError(f"{what} nests too deeply") from None


def _field_error(field: str, expected: str, value) -> ValueError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ValueError(f"header field {field!r} must be {expected}, got {type(value).__name__} {shown}"
                      if not isinstance(value, _Refused) else
                      f"header field {field!r} must be {expected}, got {value.text}")


def _header_int(header: dict, field: str, low: int, high: int = _MAX_COUNT) -> int:
    value = header[field]
    if type(value) is not int or not low <= value <= high:  # bools and floats are not ints
        raise _field_error(field, f"an integer >= {low}" + (f" and <= {high}" if high < _MAX_COUNT
                                                              else " (and <= 2**62)"), value)
    return value


def _header_real(header: dict, field: str) -> float:
    value = header[field]
    if type(value) not in (int, float) or not (math.isfinite(value) and value > 0):
        raise _field_error(field, "a finite number > 0", value)
    return float(value)


def _header_choice(header: dict, field: str, choices) -> str:
    value = header[field]
    if type(value) is not str or value not in choices:
        raise _field_error(field, "one of " + ", ".join(map(repr, choices)), value)
    return value


_HEADER_REQUIRED = frozenset({"format", "version", "vocab", "cell", "hidden_size", "dtype", "batch",
                              "window", "lr", "clip", "optimizer_step", "chars_total", "position",
                              "arrays"})
# absent from the first version-1 files; "hyperparameters": the cell's own
# settings ({"leak_rate": 0.3}), written for the cells that have any
_HEADER_OPTIONAL = frozenset({"fastrnn", "optimizer", "hyperparameters"})


def _check_header(header, version: int) -> dict:
    """The header as plain validated values, or ValueError naming the field.
    Exact key set; every value of the right type (ints are ints, not bools or
    floats; strings are strings), finite, in range."""
    if type(header) is not dict:
        raise ValueError(f"the header must be a JSON object, got {type(header).__name__}")
    keys = set(header)
    if keys - _HEADER_REQUIRED - _HEADER_OPTIONAL:
        raise ValueError(f"unexpected header field(s) {sorted(keys - _HEADER_REQUIRED - _HEADER_OPTIONAL)}")
    if _HEADER_REQUIRED - keys:
        raise ValueError(f"missing header field(s) {sorted(_HEADER_REQUIRED - keys)}")
    _header_choice(header, "format", ("fastrnn-charlm",))
    if _header_int(header, "version", 1, FORMAT_VERSION) != version:
        raise ValueError(f"header field 'version' is {header['version']}, but the file's prefix "
                         f"says {version}")
    if "fastrnn" in header and (type(header["fastrnn"]) is not str or len(header["fastrnn"]) > 100):
        raise _field_error("fastrnn", "the writer's version string", header["fastrnn"])
    if "optimizer" in header:
        _header_choice(header, "optimizer", ("adam",))
    chars = header["vocab"]
    if type(chars) is not list or not 1 <= len(chars) <= _MAX_VOCAB:
        raise _field_error("vocab", f"a list of 1 to {_MAX_VOCAB:,} characters", chars)
    for i, ch in enumerate(chars):
        if type(ch) is not str or len(ch) != 1:
            raise _field_error(f"vocab[{i}]", "a string of one character", ch)
    out = {
        "vocab": chars, "cell": _header_choice(header, "cell", CELLS),
        "dtype": _FLOAT_DTYPES[_header_choice(header, "dtype", tuple(_FLOAT_DTYPES))],
        "hidden_size": _header_int(header, "hidden_size", 1),
        "batch": _header_int(header, "batch", 1), "window": _header_int(header, "window", 1),
        "lr": _header_real(header, "lr"), "clip": _header_real(header, "clip"),
        "optimizer_step": _header_int(header, "optimizer_step", 0),
        "chars_total": _header_int(header, "chars_total", 0),
        "position": _header_int(header, "position", 0),
    }
    descriptor = cells.get(out["cell"])
    if "hyperparameters" in header:
        values = header["hyperparameters"]
        if type(values) is not dict:
            raise _field_error("hyperparameters", "an object of the cell's hyperparameters",
                               values)
        try:  # names the cell has, values in their ranges (leak_rate: (0, 1])
            descriptor = descriptor.with_hyperparameters(**values)
        except ValueError as exc:
            raise ValueError(f"header field 'hyperparameters': {exc}") from None
    out["descriptor"] = descriptor
    arrays = header["arrays"]
    if type(arrays) is not list or not 1 <= len(arrays) <= len(_ARRAY_NAMES):
        raise _field_error("arrays", f"a list of 1 to {len(_ARRAY_NAMES)} array descriptions", arrays)
    out["arrays"] = []
    for i, spec in enumerate(arrays):
        field = f"arrays[{i}]"
        if type(spec) is not dict or set(spec) != {"name", "dtype", "shape"}:
            raise _field_error(field, "an object with exactly the keys name, dtype, shape", spec)
        if type(spec["name"]) is not str or spec["name"] not in _ARRAY_NAMES:
            raise _field_error(field + ".name", "one of " + ", ".join(_ARRAY_NAMES), spec["name"])
        if type(spec["dtype"]) is not str:
            raise _field_error(field + ".dtype", "a dtype string such as '<f4'", spec["dtype"])
        shape = spec["shape"]
        if type(shape) is not list or len(shape) > 2 or \
                any(type(n) is not int or not 0 <= n <= _MAX_COUNT for n in shape):
            raise _field_error(field + ".shape", "a list of at most 2 non-negative integers", shape)
        out["arrays"].append((spec["name"], spec["dtype"], tuple(shape)))
    return out


class Vocab:
    """The characters of a text, in sorted order; a character's index is its position.

    Serialisable as its list of characters (:meth:`to_json` / :meth:`from_json`;
    :meth:`CharLM.save` stores it the same way).
    """

    def __init__(self, chars: Sequence[str]):
        try:
            chars = list(chars)
        except TypeError:
            raise TypeError(f"chars must be a sequence of single characters, got "
                            f"{type(chars).__name__}") from None
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        for i, ch in enumerate(chars):
            if not isinstance(ch, str):
                raise TypeError(f"a vocabulary is a sequence of single characters: chars[{i}] "
                                f"is {type(ch).__name__} {ch!r}")
            if len(ch) != 1:
                raise ValueError(f"a vocabulary is a sequence of single characters: chars[{i}] "
                                 f"is {ch!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be distinct")
        self.chars = tuple(chars)
        self._set = frozenset(self.chars)
        # vectorised encoding: code points sorted, and the index each maps to
        codes = np.array([ord(ch) for ch in self.chars], np.uint32)
        order = np.argsort(codes, kind="stable")
        self._codes, self._ids = codes[order], order.astype(np.int64)
        self._code_of = codes.astype("<u4")  # index -> code point (decode)

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
        """The vocabulary of :meth:`to_json`'s output (ValueError for anything else)."""
        if not isinstance(data, str):
            raise TypeError(f"data must be a str, got {type(data).__name__}")
        chars = _parse_json(data, 1, "the vocabulary's JSON")
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
        """The indices of ``text``'s characters (int64 unless ``dtype``, an
        integer dtype that can hold every index, says otherwise); ValueError
        naming the first character not in the vocabulary."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        given = dtype
        try:
            dtype = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "iu":
            raise TypeError(f"dtype must be an integer dtype, got {given!r}")
        if np.iinfo(dtype).max < len(self) - 1:  # would wrap silently
            raise ValueError(f"dtype {dtype} cannot hold the indices of {len(self)} characters "
                             f"(up to {len(self) - 1})")
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
        """The text of a sequence of indices (vectorised: about 4 bytes of
        temporary memory per character besides the result)."""
        ids = np.asarray(ids)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"indices must be in [0, {len(self)})")
        if not ids.size:
            return ""
        return self._code_of[ids.ravel()].tobytes().decode("utf-32-le", "surrogatepass")


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
        lr, clip, seed = _positive_real("lr", lr), _positive_real("clip", clip), _v.seed("seed", seed)
        dtype = _v.float_dtype("dtype", dtype)
        self.vocab = vocab
        spec = cells.get(cell)
        # impossible sizes are refused before allocating, naming the argument:
        # theta and Adam's m and v, plus the float64 draw of the initialisation
        params = _parameter_count(cell, len(vocab), hidden_size)
        params_bytes = params * (3 * dtype.itemsize + 8)
        _require_memory(params_bytes, f"hidden_size {hidden_size:,} ({params:,} parameters of a "
                                      f"{cell} over {len(vocab)} characters, with Adam's state)")
        _require_memory(params_bytes + batch * hidden_size * dtype.itemsize * len(spec.state_names),
                        f"batch {batch:,} (the state of {batch:,} streams of {hidden_size:,} "
                        f"units, with the parameters)")
        # the descriptor, not its name: a cell's hyperparameters (the leaky
        # cell's leak_rate) train, run and are saved with it
        self.layout = tr.Layout(spec, len(vocab), hidden_size, len(vocab))
        self.dtype = dtype
        self.batch, self.window, self.lr, self.clip = batch, window, lr, clip
        self.theta = self.layout.init(dtype, seed=seed)
        self.opt = tr.OptimizerState.zeros_like(self.theta)
        self.chars_total = 0
        self.position = 0  # the streams' next step (see train)
        self.h = np.zeros((batch, hidden_size), dtype)
        self.c = np.zeros_like(self.h) if spec.has_cell_state else None

    @property
    def cell(self) -> str:
        """The cell's name (its hyperparameters: :attr:`descriptor`)."""
        return self.layout.spec.name

    @property
    def descriptor(self) -> cells.Cell:
        """The fastrnn.cells.Cell the model runs, hyperparameters included."""
        return self.layout.spec

    @property
    def hidden_size(self) -> int:
        return self.layout.hidden_size

    def __repr__(self) -> str:
        return (f"CharLM({self.descriptor.label}, hidden {self.hidden_size}, "
                f"{len(self.vocab)} characters, "
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

        If a window's loss or gradient is not finite, training stops with
        :class:`fastrnn.training.TrainingDivergedError` (a FloatingPointError)
        and the whole model - theta, the optimizer state, the streams' state,
        their position and ``chars_total`` - is as it was at the end of the
        last good chunk (theta and the optimizer state are restored from a
        copy taken before each chunk, about 3 * theta.size numbers, small next
        to a chunk's work), so it holds only finite numbers, is consistent,
        and can be saved or trained on with a lower ``lr``. The error's message names the steps of the
        streams where it happened; besides the trainer's attributes
        (``window``, ``first_step``, ``last_step`` within the chunk, ``loss``)
        it carries ``stream_steps`` = (first, last): those steps of the
        streams' pass, i.e. characters ``b*L + first`` to ``b*L + last - 1``
        of the text for stream b, with ``stream_length`` = L.
        """
        ids = self._ids(text)
        if chars is not None:
            chars = _positive_int("chars", chars)
        if seconds is not None:
            seconds = _positive_real("seconds", seconds)
        chunk_windows = _positive_int("chunk_windows", chunk_windows)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
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
        backup = [np.empty_like(a) for a in (self.theta, self.opt.m, self.opt.v)]
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
            for kept, live in zip(backup, (self.theta, self.opt.m, self.opt.v)):
                np.copyto(kept, live)
            step_before = self.opt.step
            try:
                res = tr.fit_sequence(spec, self.theta, ids[cols].astype(np.int64),
                                      ids[cols + 1].astype(np.int64), h0=self.h, c0=self.c,
                                      state=self.opt, backend=backend)
            except tr.TrainingDivergedError as exc:
                # back to the end of the last good chunk, where h, c and the
                # counters still are (fit_sequence does not touch h0/c0)
                for kept, live in zip(backup, (self.theta, self.opt.m, self.opt.v)):
                    np.copyto(live, kept)
                self.opt.step = step_before
                first, last = self.position + exc.first_step, self.position + exc.last_step
                exc.stream_steps, exc.stream_length = (first, last), L
                exc.args = (f"training diverged at steps {first:,}-{last - 1:,} of the {B} "
                            f"streams of {L:,} steps (text characters {first:,}-{last - 1:,} of "
                            f"stream 0, b*{L:,} later for stream b), after {self.chars_total:,} "
                            f"characters trained in total: {exc}",)
                raise
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

    def _check_finite(self, purpose: str) -> None:
        """One pass over theta: a model with NaN or inf parameters would give
        garbage (a NaN distribution draws arbitrary characters)."""
        if not np.isfinite(self.theta).all():
            raise ValueError(f"cannot {purpose}: the model's parameters (theta) hold non-finite "
                             f"values (NaN or inf)")

    def _views(self):
        P = self.layout.views(self.theta)
        return (P["weight_ih"], P["weight_hh"], P["bias_ih"], P["bias_hh"],
                P["weight_hy"].astype(np.float64), P["bias_y"].astype(np.float64))

    def loss(self, text: str, backend: Optional[str] = None) -> float:
        """Mean cross-entropy (nats per character) of predicting each character
        of ``text`` from the ones before it, starting from a zero state.

        ValueError if the parameters are not finite, or if the loss is not
        (an unbounded ``rnn_relu`` state can overflow with finite weights)."""
        ids = self.vocab.encode(text)
        if ids.size < 2:
            raise ValueError("loss needs at least two characters")
        self._check_finite("compute a loss")
        w_ih, w_hh, b_ih, b_hh, w_hy, b_y = self._views()
        V = len(self.vocab)
        h = np.zeros((1, self.hidden_size), self.dtype)
        c = np.zeros_like(h) if cells.get(self.cell).has_cell_state else None
        # bounded memory for long texts: blocks of one-hot rows of about 2^22 elements
        total, block = 0.0, max(1, min(4096, (1 << 22) // V))
        for start in range(0, ids.size - 1, block):
            chunk = ids[start:min(start + block, ids.size - 1)]
            x = np.zeros((chunk.size, 1, V), self.dtype)
            x[np.arange(chunk.size), 0, chunk] = 1
            res = F.forward(self.descriptor, x, w_ih, w_hh, b_ih, b_hh, h, c, backend=backend)
            h, c = res.h_n, res.c_n
            with np.errstate(over="ignore", invalid="ignore"):  # the total is checked below
                z = res.output[:, 0].astype(np.float64) @ w_hy.T + b_y
                zmax = z.max(axis=1)
                logz = np.log(np.exp(z - zmax[:, None]).sum(axis=1)) + zmax
                nxt = ids[start + 1:start + 1 + chunk.size]
                total += float(np.sum(logz - z[np.arange(chunk.size), nxt]))
        if not math.isfinite(total):
            raise ValueError(f"the loss is not finite ({total}): the model's hidden state or "
                             "logits overflowed")
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

        ValueError if the parameters are not finite (checked once, before the
        first step), or if the distribution stopped being finite along the
        way (an unbounded ``rnn_relu`` state can overflow with finite
        weights; the normalisers are summed as the steps go and checked once
        at the end). MemoryError, before sampling, if ``n`` characters cannot
        fit in this machine's memory (about 12 bytes each).
        """
        n = _positive_int("n", n, minimum=0)
        temperature, seed = _positive_real("temperature", temperature), _v.seed("seed", seed)
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        _require_memory(_sample_bytes(n), f"n = {n:,} characters")
        prime_ids = self.vocab.encode(prime)
        self._check_finite("sample")
        rng = np.random.default_rng(seed)
        w_ih, w_hh, b_ih, b_hh, w_hy, b_y = self._views()
        V = len(self.vocab)
        h = np.zeros((1, self.hidden_size), self.dtype)
        c = np.zeros_like(h) if cells.get(self.cell).has_cell_state else None
        x = np.zeros((1, V), self.dtype)

        def advance(idx: int) -> None:
            nonlocal h, c
            x[...] = 0
            x[0, idx] = 1
            out = F.step(self.descriptor, x, w_ih, w_hh, b_ih, b_hh, h, c, backend=backend)
            h, c = out if c is not None else (out, None)

        if not prime_ids.size:
            prime_ids = (self.vocab.encode("\n") if "\n" in self.vocab
                         else np.array([rng.integers(V)], np.int64))
        for idx in prime_ids.tolist():
            advance(idx)
        out = np.empty(n, np.int32)  # V <= 0x110000 fits
        mass = 0.0  # sum of the normalisers: in [n, n*V] when every step was finite
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            for i in range(n):
                z = w_hy @ h[0].astype(np.float64) + b_y
                p = np.exp((z - z.max()) / temperature)  # <= 1, the max is exactly 1
                cum = np.cumsum(p)
                mass += cum[-1]
                out[i] = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), V - 1)
                advance(int(out[i]))
        if not math.isfinite(mass):
            raise ValueError("sampling produced non-finite logits: the model's hidden state "
                             "overflowed, so the text drawn would be arbitrary")
        return self.vocab.decode(out)

    # ----------------------------------------------------------- save/load

    def _arrays(self) -> list:
        arrays = [("theta", self.theta), ("opt_m", self.opt.m), ("opt_v", self.opt.v), ("h", self.h)]
        if self.c is not None:
            arrays.append(("c", self.c))
        return arrays

    def _header(self) -> dict:
        header = {
            "format": "fastrnn-charlm", "version": FORMAT_VERSION, "fastrnn": __version__,
            "vocab": list(self.vocab.chars), "cell": self.cell, "hidden_size": self.hidden_size,
            "dtype": self.dtype.name, "batch": self.batch, "window": self.window,
            "optimizer": "adam", "lr": self.lr, "optimizer_step": int(self.opt.step),
            "clip": self.clip,
            "chars_total": int(self.chars_total), "position": int(self.position),
            "arrays": [{"name": n, "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape)}
                       for n, a in self._arrays()],
        }
        if self.descriptor.hyperparameters:  # only cells that have any (files stay readable
            header["hyperparameters"] = self.descriptor.hyperparameter_values  # as before)
        return header

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the model to ``path`` atomically and return ``path``.

        The file is written to a temporary file in the same directory, flushed
        and fsync'ed, then renamed over ``path`` (and the directory fsync'ed
        where the platform allows): a save that fails or is interrupted,
        even by SIGKILL or a power cut, leaves any previous file at ``path``
        as it was. If ``path`` is a symbolic link, the file it points to is
        written that way (temporary file in the target's directory, renamed
        over the target) and the link stays.

        Temporary files: ``.<name>.<pid>.<random>.tmp`` beside the target.
        One that fails or is interrupted by an exception is removed at once.
        One left behind by a process that was killed is removed by the next
        save to the same path, under this rule: a save holds an exclusive
        advisory lock (flock) on its temporary file from creating it until
        it has been renamed, and the kernel drops a lock when its process
        dies however it dies; so a temporary file of this path that can be
        locked belongs to no save in progress (in this or any other process
        on the machine) and is deleted, and one that cannot be locked is left
        alone. (A writer that finds its new file deleted between creating and
        locking it, the one moment it is unlocked, starts another.) Where
        locks are not available the rule degrades to leaving files alone.

        Non-finite numbers are refused: ValueError, before anything is
        written, if theta, the optimizer state or the streams' state hold NaN
        or inf, so every model file on disk is a usable model (training that
        diverges never gets its last state saved over a good checkpoint).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        path = Path(path)
        arrays = self._arrays()
        for name, array in arrays:  # one pass each, cheap next to writing them
            if not np.isfinite(array).all():
                raise ValueError(f"refusing to save {path}: {name} holds non-finite values "
                                 "(NaN or inf); a model file must be usable")
        blob = json.dumps(self._header(), ensure_ascii=True).encode("ascii")
        # written straight from the arrays' memory (no copy of the model)
        chunks = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)), blob]
        chunks += [memoryview(np.ascontiguousarray(a, a.dtype.newbyteorder("<"))).cast("B")
                   for _, a in arrays]

        def write_model(f) -> None:
            digest = hashlib.sha256()
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
            f.write(digest.digest())
        return write_atomically(path, write_model)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "CharLM":
        """Read a model written by :meth:`save`.

        Raises :class:`ModelFileError` (naming the file) if it cannot be read,
        is not a regular file, is not a fastrnn character model, is truncated
        or damaged (checksum), was written by a newer fastrnn (format
        version), or breaks the header's schema: exactly the known fields,
        each of its JSON type (integers are integers, not booleans or
        floats), finite (NaN and Infinity are refused by the parser),
        nesting at most 4 deep (checked before parsing), at most 32 MiB of
        header and 1,114,112 characters of vocabulary, array shapes that
        agree with the model and add up to exactly the bytes the file holds
        (so nothing is allocated beyond what the file contains), and arrays
        of finite numbers. The message names the field. MemoryError if the
        file is larger than this machine's memory.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        path = Path(path)
        try:
            # non-blocking open, then fstat: a FIFO or a device could block or never end
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise ModelFileError(f"{path}: not a regular file")
                _require_memory(info.st_size, f"loading {path} ({info.st_size:,} bytes)")
                data = f.read()
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
        view = memoryview(data)  # slices of it copy nothing
        body, digest = view[:-_DIGEST], view[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise ModelFileError(f"{path}: checksum mismatch: the file is corrupt or truncated")
        if hlen > _MAX_HEADER_BYTES:
            raise ModelFileError(f"{path}: malformed model file: a header of {hlen:,} bytes is "
                                 f"longer than any model's (at most {_MAX_HEADER_BYTES:,})")
        try:
            header = _check_header(_parse_json(bytes(body[_PREFIX.size:_PREFIX.size + hlen]),
                                               _MAX_HEADER_DEPTH), version)
            return cls._from_parts(header, body, _PREFIX.size + hlen)
        except ValueError as exc:
            raise ModelFileError(f"{path}: malformed model file: {exc}") from exc

    @classmethod
    def _from_parts(cls, header: dict, body: memoryview, offset: int) -> "CharLM":
        """The model of a header checked by :func:`_check_header`; ValueError
        for arrays that do not match it."""
        dtype, cell = header["dtype"], header["cell"]
        V, H, batch = len(header["vocab"]), header["hidden_size"], header["batch"]
        size = _parameter_count(cell, V, H)  # exact integers: any size is safe to compare
        expected = {"theta": (size,), "opt_m": (size,), "opt_v": (size,), "h": (batch, H)}
        if cells.get(cell).has_cell_state:
            expected["c"] = (batch, H)
        need = sum(math.prod(shape) for shape in expected.values()) * dtype.itemsize
        if need != len(body) - offset:
            raise ValueError(f"the header describes a {cell} model (hidden_size {H:,}, {V:,} "
                             f"characters, batch {batch:,}) of {need:,} bytes of arrays, but the "
                             f"file holds {len(body) - offset:,}")
        # from here on every size is bounded by the file's length
        names = [name for name, _, _ in header["arrays"]]
        if sorted(names) != sorted(expected):
            raise ValueError(f"header field 'arrays': arrays {names} do not match the model's "
                             f"{sorted(expected)}")
        vocab = Vocab(header["vocab"])
        layout = tr.Layout(header["descriptor"], V, H, V)
        arrays = {}
        for name, dtype_str, shape in header["arrays"]:
            if shape != expected[name]:
                raise ValueError(f"header field 'arrays': array {name} has shape {shape}, "
                                 f"expected {expected[name]}")
            if dtype_str != dtype.str:
                raise ValueError(f"header field 'arrays': array {name} has dtype {dtype_str}, "
                                 f"expected {dtype.str}")
            count = math.prod(shape)
            array = np.frombuffer(body, dtype, count, offset).reshape(shape)
            if not np.isfinite(array).all():
                raise ValueError(f"array {name} holds non-finite values (NaN or inf)")
            arrays[name] = array.astype(dtype.newbyteorder("="))
            offset += count * dtype.itemsize
        # validate the scalars through the constructor, at hidden size 1 and
        # batch 1 (no large random initialisation: the arrays come from the file)
        lm = cls(vocab, cell, 1, dtype=dtype.name, seed=0, batch=1,
                 window=header["window"], lr=header["lr"], clip=header["clip"])
        lm.layout, lm.batch = layout, batch
        lm.theta, lm.h, lm.c = arrays["theta"], arrays["h"], arrays.get("c")
        lm.opt = tr.OptimizerState(arrays["opt_m"], arrays["opt_v"], header["optimizer_step"])
        lm.chars_total, lm.position = header["chars_total"], header["position"]
        return lm
