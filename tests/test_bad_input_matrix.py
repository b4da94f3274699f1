"""The bad-input matrix: every public entry point x every category of bad input.

What this is: one table, ENTRIES, describing each public entry point (how to
build a valid call, what the call returns, and what kind each argument is:
a float array read, a float array written, an index array, a size, a
hyperparameter, a flag, a choice among names, an object), and one set of
RULES saying what each category of bad input means for each kind of
argument and what must then happen. Every test id is generated from those
two; nothing is written out case by case except the few entry-specific
cases (zero sizes, aliasing, overflow, tampered files) each entry lists in
its ``extras``.

The categories: wrong_rank, wrong_shape, wrong_dtype, nonfinite,
noncontig, readonly, aliasing, zero_sizes, overflow, wrong_types, and
out_of_range (a value of the right type outside its domain). The expected
outcome of every case is one of:

* ``Raises``: TypeError (wrong Python type or dtype), ValueError (wrong
  value, shape, rank, aliasing, range, non-finite hyperparameter),
  MemoryError or ValueError (sizes that cannot exist), and the message
  names the argument (a regex per argument);
* ``Same``: a documented acceptance (src/fastrnn/_validate.py): the result
  equals, bit for bit, that of the valid call (or of a stated equivalent
  call: a copy instead of an alias, depth T-1 instead of 2**63);
* ``Propagates``: NaN/inf in a data array propagate as IEEE says, or, for
  the trainers (docs/TRAINING.md, "A window that is not finite"), stop
  training with TrainingDivergedError before the window they reach, every
  array argument left as it was when no update was applied. On the
  compiled backends the outcome must be the NumPy reference backend's: the
  same stop (window, updates), or outputs whose non-finite pattern equals
  the reference's element for element, finite elements within the project
  tolerance. On the NumPy backend itself an injected NaN must reach an
  output (or stop a trainer);
* ``Check``: a stated property of the result (empty outputs with the state
  passed through for T = 0 or B = 0).

What this is not: a test of numerical correctness on valid input (see
test_vectors.py, test_training_*.py), nor of every message's wording.

Cases the library does not meet yet are listed by id in PENDING and run as
strict xfails (delete an id once its fix lands: the case then XPASSes and
fails until it is deleted); UNSAFE ids (a subset) would corrupt memory or
crash the interpreter today and are not run at all while pending.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

import fastrnn
from fastrnn import charlm as lm_mod
from fastrnn import dropin
from fastrnn import functional as F
from fastrnn import stream as stream_mod
from fastrnn import training as tr

from conftest import TOLERANCE, random_problem, rel_err

# Ids of cases the library does not meet yet (see the module docstring),
# grouped by what goes wrong today. Delete an id when its fix lands. (Empty:
# every case the matrix found is met.)
PENDING: set = set()

# The PENDING ids that must not run today: they read or write out of bounds.
UNSAFE: set = set()


# --------------------------------------------------------------------------
# expected outcomes

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
OTHER_FLOAT = {F32: F64, F64: F32}
BACKENDS = ("c", "numba", "numpy")
COMPILED = ("c", "numba")


@dataclass(frozen=True)
class Ctx:
    """What a valid call is built for: a backend, a dtype, a scratch folder."""

    backend: Optional[str]
    dtype: Optional[np.dtype]
    tmp: Optional[Path] = None


@dataclass(frozen=True)
class Raises:
    """The call raises one of ``types`` and the message matches ``match``."""

    types: tuple
    match: str


@dataclass(frozen=True)
class Same:
    """The call returns what the valid call returns (after ``alt``, if given:
    the documented equivalent, e.g. a copy where the case passes an alias)."""

    alt: Optional[Callable] = None


@dataclass(frozen=True)
class Propagates:
    """Non-finite input propagates (or stops a trainer): see the module docstring."""


@dataclass(frozen=True)
class Check:
    """``fn(outputs, kwargs)`` asserts a stated property of the result."""

    fn: Callable
    what: str


@dataclass(frozen=True)
class RaisesOr:
    """Either ``raises``, or the call succeeds with the outcome ``otherwise``
    (both are documented as acceptable)."""

    raises: Raises
    otherwise: Any


def raises(types, match):
    return Raises(types if isinstance(types, tuple) else (types,), match)


TYPE = TypeError
VALUE = ValueError
NO_MEMORY = (MemoryError, ValueError)
CHOICE = (TypeError, ValueError)  # a choice given a non-string: either is clear


# --------------------------------------------------------------------------
# the table's vocabulary: arguments and entry points


@dataclass
class Arg:
    """One argument of an entry point.

    kind: "in" (float array, read), "out" (float array the caller provides
    and the call writes), "inout" (float array updated in place), "index"
    (integer index array), "saved" (an array inside a ForwardResult),
    "size" (an integer), "hyper" (a real hyperparameter), "flag" (a bool),
    "choice" (one of some names), "dtype" (a dtype argument), "object"
    (anything else). ``label``: regex the message must match (default: the
    name as a word). The other fields refine what a category means here.
    """

    name: str
    kind: str
    label: Optional[str] = None
    optional: bool = False            # None is a valid value
    shape_axis: int = -1              # the axis wrong_shape grows by one
    shape_label: Optional[str] = None  # who a shape mismatch may name
    dtype_label: Optional[str] = None  # who a float32/float64 mix may name
    lists: bool = True                # nested lists are arrays (np.asarray)
    contiguous: bool = False          # must already be C-contiguous (no copy)
    low: Optional[int] = None         # index arrays: valid values in [low, high)
    high: Optional[int] = None
    minimum: int = 1                  # sizes
    bad: tuple = ()                   # out-of-range values of the right type
    overflow: tuple = ()              # (value, expectation) pairs, sizes
    objects: tuple = ("abc", 5)       # wrong-type values of an "object"
    skip: tuple = ()                  # categories that mean nothing for this argument
    nan_index: int = 0                # the flat element nonfinite cases overwrite

    def __post_init__(self):
        if self.label is None:
            self.label = rf"\b{re.escape(self.name)}\b"
        self.shape_label = self.shape_label or self.label
        self.dtype_label = self.dtype_label or self.label


@dataclass
class Entry:
    """A public entry point: ``valid(ctx)`` gives the keyword arguments of a
    valid call (fresh arrays each time, deterministic), ``call(kw)`` runs it
    and returns what to compare (arrays, numbers, strings)."""

    name: str
    valid: Callable[[Ctx], dict]
    call: Callable[[dict], tuple]
    args: tuple
    backends: tuple = (None,)
    dtypes: tuple = (None,)
    extras: Callable[[Ctx], list] = lambda ctx: []
    needs_tmp: bool = False
    diverges: bool = False  # a trainer: NaN stops it with TrainingDivergedError
    only: Optional[tuple] = None  # run just these categories (the rest is covered elsewhere)


def put(name, make):
    """A mutation: kw[name] = make(kw[name]) (``name`` may be "a.b.c")."""
    def mutate(kw):
        if "." not in name:
            kw[name] = make(kw[name])
            return
        head, *path, last = name.split(".")
        obj = kw[head]
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, make(getattr(obj, last)))
    return mutate


def const(value):
    return lambda _old: value


# --------------------------------------------------------------------------
# array transformations used by the rules


def grow(axis):
    """One more element along ``axis`` (a copy of the first slice, or zeros)."""
    def make(a):
        a = np.asarray(a)
        if a.shape[axis] == 0:
            shape = list(a.shape)
            shape[axis] = 1
            return np.zeros(shape, a.dtype)
        return np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis)
    return make


def _long_axis(a):
    sizes = [i for i, n in enumerate(a.shape) if n > 1]
    return sizes[-1] if sizes else None


def strided(a):
    """Same values, every other element of a buffer twice as long (not
    C-contiguous: the stride along the last axis of length > 1 doubles)."""
    a = np.asarray(a)
    axis = _long_axis(a)
    shape = list(a.shape)
    shape[axis] *= 2
    big = np.zeros(shape, a.dtype)
    index = [slice(None)] * a.ndim
    index[axis] = slice(None, None, 2)
    big[tuple(index)] = a
    return big[tuple(index)]


def reversed_view(a):
    """Same values, a negative stride along the last axis of length > 1."""
    a = np.asarray(a)
    axis = _long_axis(a)
    return np.flip(np.flip(a, axis).copy(), axis)


def unaligned(a):
    """Same values, C-contiguous, at an address one byte off the dtype's alignment."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    b = np.frombuffer(buf.data, a.dtype, a.size, offset=1).reshape(a.shape)
    b[...] = a
    return b


def byteswapped(a):
    """Same values in the non-native byte order (dtype '>f8' on x86)."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder("S"))


def read_only(a):
    b = np.array(a, copy=True)
    b.flags.writeable = False
    return b


def with_value(value, index=0):
    def make(a):
        b = np.array(a, copy=True)
        b.flat[index] = value
        return b
    return make


def as_float_list(a):
    return np.asarray(a).tolist()


def as_int_list(a):
    return (np.asarray(a) * 10).astype(np.int64).tolist()


# --------------------------------------------------------------------------
# the rules: what each category means for each kind of argument

# Categories whose outcome does not depend on the dtype: checked before any
# arithmetic, by code that never looks at the dtype. They run in float64 only.
DTYPE_FREE = ("wrong_rank", "wrong_shape", "out_of_range")
# Categories that reach the backends' arithmetic or their copies of the input.
BACKEND_BOUND = ("nonfinite", "noncontig", "readonly", "aliasing", "zero_sizes")
#
# Each rule yields (category, variant, mutation, expectation).


def _nonfinite(arg, ctx):
    for variant, value in (("nan", np.nan), ("inf", np.inf)):
        mutate = put(arg.name, with_value(value, arg.nan_index))
        if ctx.backend in COMPILED:
            yield "nonfinite", variant, mutate, Propagates()
        elif value is np.nan:  # the reference backend (or no backend): NaN must show
            yield "nonfinite", variant, mutate, Propagates()


def rules_float_array(arg: Arg, ctx: Ctx):
    """"in", "out", "inout": float arrays."""
    L = arg.label
    written = arg.kind in ("out", "inout")
    yield "wrong_rank", "plus", put(arg.name, lambda a: np.asarray(a)[None]), raises(VALUE, L)
    yield "wrong_rank", "minus", put(arg.name, lambda a: np.asarray(np.asarray(a)[0])), raises(VALUE, L)
    yield "wrong_shape", "grow", put(arg.name, grow(arg.shape_axis)), raises(VALUE, arg.shape_label)
    if ctx.dtype is not None:
        other = OTHER_FLOAT[ctx.dtype]
        yield ("wrong_dtype", other.name, put(arg.name, lambda a: np.asarray(a).astype(other)),
               raises(TYPE, arg.dtype_label))
    for bad in (np.int64, np.int32, np.float16, np.complex128, np.bool_):
        make = lambda a, bad=bad: (np.asarray(a) * 10).astype(bad)  # noqa: E731
        yield "wrong_dtype", np.dtype(bad).name, put(arg.name, make), raises(TYPE, L)
    if arg.kind == "out":  # fully overwritten: what it held does not matter
        yield "nonfinite", "nan-prefilled", put(arg.name, lambda a: np.full_like(a, np.nan)), Same()
    else:
        yield from _nonfinite(arg, ctx)
    for variant, make in (("strided", strided), ("reversed", reversed_view)):
        expect = raises(VALUE, L) if (written or arg.contiguous) else Same()
        yield "noncontig", variant, put(arg.name, make), expect
    # contiguous but misaligned: copied, or (written arrays) refused or written correctly
    yield ("noncontig", "unaligned", put(arg.name, unaligned),
           RaisesOr(raises(VALUE, L), Same()) if written else Same())
    if ctx.dtype is not None and not written:  # float64 all the same: refused or converted
        yield ("wrong_dtype", "byteswapped", put(arg.name, byteswapped),
               RaisesOr(raises(TYPE, L), Same()))
    yield "readonly", "readonly", put(arg.name, read_only), raises(VALUE, L) if written else Same()
    yield "wrong_types", "str", put(arg.name, const("abc")), raises(TYPE, L)
    yield "wrong_types", "dict", put(arg.name, const({})), raises(TYPE, L)
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(TYPE, L)
    lists = arg.lists and not written
    # a list of floats is a float64 array: the same call in float64, a dtype mix in float32
    yield ("wrong_types", "float-list", put(arg.name, as_float_list),
           Same() if lists and ctx.dtype == F64 else raises(TYPE, arg.dtype_label if lists else L))
    yield "wrong_types", "int-list", put(arg.name, as_int_list), raises(TYPE, L)


def rules_index(arg: Arg, ctx: Ctx):
    L = arg.label
    yield "wrong_rank", "plus", put(arg.name, lambda a: np.asarray(a)[None]), raises(VALUE, L)
    yield "wrong_rank", "minus", put(arg.name, lambda a: np.asarray(np.asarray(a)[0])), raises(VALUE, L)
    yield "wrong_shape", "grow", put(arg.name, grow(arg.shape_axis)), raises(VALUE, arg.shape_label)
    yield "wrong_dtype", "float64", put(arg.name, lambda a: np.asarray(a).astype(np.float64)), raises(TYPE, L)
    yield "wrong_dtype", "bool", put(arg.name, lambda a: np.asarray(a) > 0), raises(TYPE, L)
    yield "wrong_dtype", "int32-accepted", put(arg.name, lambda a: np.asarray(a).astype(np.int32)), Same()
    yield "out_of_range", "below", put(arg.name, with_value(arg.low - 1)), raises(VALUE, L)
    yield "out_of_range", "above", put(arg.name, with_value(arg.high)), raises(VALUE, L)
    yield ("overflow", "uint64-max",
           put(arg.name, lambda a: with_value(np.iinfo(np.uint64).max)(np.asarray(a).astype(np.uint64))),
           raises(VALUE, L))
    yield "noncontig", "strided", put(arg.name, strided), Same()
    yield "noncontig", "reversed", put(arg.name, reversed_view), Same()
    yield "readonly", "readonly", put(arg.name, read_only), Same()
    yield "wrong_types", "str", put(arg.name, const("abc")), raises(TYPE, L)
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(TYPE, L)
    yield "wrong_types", "int-list", put(arg.name, lambda a: np.asarray(a).tolist()), Same()


def rules_saved(arg: Arg, ctx: Ctx):
    """An array inside a ForwardResult replaced behind backward's back."""
    L = arg.label
    yield "wrong_rank", "plus", put(arg.name, lambda a: a[None]), raises(VALUE, L)
    yield "wrong_shape", "grow", put(arg.name, grow(-1)), raises(VALUE, L)
    yield ("wrong_dtype", OTHER_FLOAT[ctx.dtype].name,
           put(arg.name, lambda a: a.astype(OTHER_FLOAT[ctx.dtype])), raises(VALUE, L))


def rules_size(arg: Arg, ctx: Ctx):
    L = arg.label
    if arg.minimum >= 1:
        yield "zero_sizes", "0", put(arg.name, const(0)), raises(VALUE, L)
    below = sorted({arg.minimum - 1, -1} - {0} if arg.minimum >= 1 else {arg.minimum - 1})
    for value in below:
        yield "out_of_range", str(value), put(arg.name, const(value)), raises(VALUE, L)
    for value in arg.bad:
        yield "out_of_range", str(value), put(arg.name, const(value)), raises(VALUE, L)
    for value, expect in arg.overflow:
        yield "overflow", _power(value), put(arg.name, const(value)), expect
    yield "wrong_types", "float", put(arg.name, const(2.5)), raises(TYPE, L)
    yield "wrong_types", "str", put(arg.name, const("4")), raises(TYPE, L)
    yield "wrong_types", "bool", put(arg.name, const(True)), raises(TYPE, L)
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(TYPE, L)
    yield "wrong_types", "np.int64-accepted", put(arg.name, lambda v: np.int64(v)), Same()


def rules_hyper(arg: Arg, ctx: Ctx):
    L = arg.label
    for variant, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        yield "nonfinite", variant, put(arg.name, const(value)), raises(VALUE, L)
    for value in arg.bad:
        yield "out_of_range", str(value), put(arg.name, const(value)), raises(VALUE, L)
    yield "overflow", "10**400", put(arg.name, const(10 ** 400)), raises(VALUE, L)
    yield "wrong_types", "str", put(arg.name, const("0.1")), raises(TYPE, L)
    yield "wrong_types", "bool", put(arg.name, const(True)), raises(TYPE, L)
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(TYPE, L)


def rules_flag(arg: Arg, ctx: Ctx):
    # "no" is truthy: accepting it would silently mean True
    yield "wrong_types", "str", put(arg.name, const("no")), raises(TYPE, arg.label)


def rules_choice(arg: Arg, ctx: Ctx):
    yield "out_of_range", "unknown", put(arg.name, const("nope")), raises(VALUE, arg.label)
    yield "wrong_types", "int", put(arg.name, const(5)), raises(CHOICE, arg.label)
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(CHOICE, arg.label)


def rules_dtype(arg: Arg, ctx: Ctx):
    for bad in ("int64", "float16", "complex128"):
        yield "wrong_dtype", bad, put(arg.name, const(np.dtype(bad))), raises(TYPE, arg.label)
    yield "wrong_types", "unknown-name", put(arg.name, const("banana")), raises(TYPE, arg.label)
    yield "wrong_types", "int", put(arg.name, const(5)), raises(TYPE, arg.label)


def rules_object(arg: Arg, ctx: Ctx):
    for value in arg.objects:
        yield ("wrong_types", type(value).__name__, put(arg.name, const(value)),
               raises(TYPE, arg.label))
    if not arg.optional:
        yield "wrong_types", "None", put(arg.name, const(None)), raises(TYPE, arg.label)


RULES = {"in": rules_float_array, "out": rules_float_array, "inout": rules_float_array,
         "index": rules_index, "saved": rules_saved, "size": rules_size, "hyper": rules_hyper,
         "flag": rules_flag, "choice": rules_choice, "dtype": rules_dtype,
         "object": rules_object}


def _power(value):
    for base in (2, 10):
        for k in range(1, 500):
            if value == base ** k:
                return f"{base}**{k}"
            if value == base ** k - 1:
                return f"{base}**{k}-1"
    return str(value)


# --------------------------------------------------------------------------
# the entries: fastrnn.functional

T_, B_, I_, H_ = 3, 2, 3, 4  # small and all different, so no swap goes unseen
CELL_CASES = fastrnn.CELLS
# rnn_tanh and rnn_sigmoid are checked exactly like rnn_relu (one code path
# for the Elman cells); only their arithmetic differs
_ELMAN_ONLY = {"rnn_tanh": BACKEND_BOUND, "rnn_sigmoid": BACKEND_BOUND}


def _problem(cell, ctx, T=T_, B=B_, I=I_, H=H_):
    return random_problem(cell, T, B, I, H, ctx.dtype, seed=1)


def _float_args(cell, names_in=("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh")):
    """x and the parameters, with what a shape mismatch of each is allowed to name."""
    args = []
    for name in names_in:
        if name == "x":  # x is what the others are checked against
            args.append(Arg("x", "in", shape_label=r"\bx\b|weight_ih"))
        elif name in ("bias_ih", "bias_hh"):
            args.append(Arg(name, "in", optional=True))
        else:
            args.append(Arg(name, "in"))
    return args


def _state_args(cell, names=("h0", "c0")):
    return [Arg(n, "in", optional=True) for n in names if n[0] == "h" or cell == "lstm"]


def forward_entry(cell):
    def valid(ctx):
        p = _problem(cell, ctx)
        kw = dict(cell=cell, x=p["x"], weight_ih=p["weight_ih"], weight_hh=p["weight_hh"],
                  bias_ih=p["bias_ih"], bias_hh=p["bias_hh"], h0=p["h0"],
                  out=np.zeros((T_, B_, H_), ctx.dtype), backend=ctx.backend, training=True)
        if cell == "lstm":
            kw["c0"] = p["c0"]
        return kw

    def call(kw):
        r = F.forward(**kw)
        return r.output, r.h_n, r.c_n

    def extras(ctx):
        dt = ctx.dtype
        G = fastrnn.cells.get(cell).gates
        out = []

        def t_zero(kw):
            kw["x"] = kw["x"][:0]
            kw["out"] = np.zeros((0, B_, H_), dt)

        def b_zero(kw):
            kw["x"] = kw["x"][:, :0]
            kw["h0"] = kw["h0"][:0]
            kw["out"] = np.zeros((T_, 0, H_), dt)
            if "c0" in kw:
                kw["c0"] = kw["c0"][:0]

        def state_through(outs, kw):
            output, h_n, c_n = outs
            assert output.shape[0] * output.shape[1] == 0
            np.testing.assert_array_equal(h_n, kw["h0"])
            if cell == "lstm":
                np.testing.assert_array_equal(c_n, kw["c0"])

        out.append(("zero_sizes", "T=0", t_zero, Check(state_through, "h_n = h0")))
        out.append(("zero_sizes", "B=0", b_zero, Check(state_through, "empty outputs")))

        def i_zero(kw):
            kw["x"] = np.zeros((T_, B_, 0), dt)
            kw["weight_ih"] = np.zeros((G * H_, 0), dt)

        def h_zero(kw):
            kw.update(weight_ih=np.zeros((0, I_), dt), weight_hh=np.zeros((0, 0), dt),
                      bias_ih=None, bias_hh=None, h0=None, out=None)
            kw.pop("c0", None)

        out.append(("zero_sizes", "I=0", i_zero, raises(VALUE, r"input_size|\bx\b")))
        out.append(("zero_sizes", "H=0", h_zero, raises(VALUE, r"weight_hh")))

        def shared(kw, first, second):
            """kw[second] rewritten to share memory with kw[first] (last element)."""
            a, b = kw[first], kw[second]
            buf = np.zeros(a.size + b.size - 1, dt)
            buf[:a.size] = a.ravel()
            kw[first] = buf[:a.size].reshape(a.shape)
            kw[second] = buf[a.size - 1:].reshape(b.shape)

        for other in ("x", "weight_hh", "h0"):
            out.append(("aliasing", f"out-overlaps-{other}",
                        lambda kw, o=other: shared(kw, o, "out"), raises(VALUE, r"\bout\b")))

        def h0_view_of_x(kw):
            kw["h0"] = kw["x"].reshape(-1)[:B_ * H_].reshape(B_, H_)

        out.append(("aliasing", "h0-is-a-view-of-x", h0_view_of_x,
                    Same(alt=lambda kw: (h0_view_of_x(kw), kw.update(h0=kw["h0"].copy())))))

        def huge_x(kw):
            kw.update(x=np.broadcast_to(np.zeros((), dt), (2 ** 20, 2 ** 20, I_)), out=None,
                      h0=None)
            kw.pop("c0", None)

        out.append(("overflow", "x-2**40-rows", huge_x, raises(NO_MEMORY, r"\bx\b")))
        if cell != "lstm":
            out.append(("wrong_types", "c0-for-non-lstm",
                        lambda kw: kw.update(c0=np.zeros((B_, H_), dt)), raises(VALUE, r"\bc0\b")))
        return out

    args = ([Arg("cell", "choice")] + _float_args(cell) + _state_args(cell)
            + [Arg("out", "out", optional=True), Arg("backend", "choice", optional=True),
               Arg("training", "flag")])
    return Entry(f"forward.{cell}", valid, call, tuple(args), BACKENDS, (F32, F64), extras,
                 only=_ELMAN_ONLY.get(cell))


SAVED_FIELDS = ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0", "workspace")


def backward_entry(cell):
    def valid(ctx):
        p = _problem(cell, ctx)
        res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                        p["h0"], p["c0"], backend=ctx.backend, training=True)
        kw = dict(result=res, d_output=p["d_output"], d_h_n=p["d_h_n"], backend=ctx.backend)
        if cell == "lstm":
            kw["d_c_n"] = p["d_c_n"]
        return kw

    def call(kw):
        g = F.backward(**kw)
        return g.x, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, g.h0, g.c0

    def extras(ctx):
        dt = ctx.dtype
        out = []

        def sized(T, B):
            def mutate(kw):
                p = _problem(cell, ctx, T=T, B=B)
                kw["result"] = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"],
                                         p["bias_ih"], p["bias_hh"], p["h0"], p["c0"],
                                         backend=ctx.backend, training=True)
                kw["d_output"] = p["d_output"]
                kw["d_h_n"] = p["d_h_n"]
                if cell == "lstm":
                    kw["d_c_n"] = p["d_c_n"]
            return mutate

        def state_through(outs, kw):
            dx, dwih, dwhh, dbih, dbhh, dh0, dc0 = outs
            assert dx.shape == kw["result"].saved.x.shape
            for g in (dwih, dwhh, dbih, dbhh):
                assert g.shape[0] == fastrnn.cells.get(cell).gates * H_ and not g.any()
            np.testing.assert_array_equal(dh0, kw["d_h_n"])
            if cell == "lstm":
                np.testing.assert_array_equal(dc0, kw["d_c_n"])

        out.append(("zero_sizes", "T=0", sized(0, B_), Check(state_through, "d h0 = d_h_n")))
        out.append(("zero_sizes", "B=0", sized(T_, 0), Check(state_through, "zero gradients")))
        def inference_result(kw):
            p = _problem(cell, ctx)
            kw["result"] = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"],
                                     backend=ctx.backend, training=False)

        out.append(("wrong_types", "result-of-inference", inference_result,
                    raises(VALUE, r"training=True")))
        other_cell = CELL_CASES[(CELL_CASES.index(cell) + 1) % len(CELL_CASES)]
        out.append(("wrong_types", f"result.saved.cell-{other_cell}",
                    lambda kw: setattr(kw["result"].saved, "cell", other_cell),
                    raises(VALUE, r"saved|result|cell")))
        out.append(("aliasing", "d_output-is-result.output",
                    lambda kw: kw.update(d_output=kw["result"].output),
                    Same(alt=lambda kw: kw.update(d_output=kw["result"].output.copy()))))
        out.append(("aliasing", "d_h_n-is-result.h_n",
                    lambda kw: kw.update(d_h_n=kw["result"].h_n),
                    Same(alt=lambda kw: kw.update(d_h_n=kw["result"].h_n.copy()))))
        if cell != "lstm":
            out.append(("wrong_types", "d_c_n-for-non-lstm",
                        lambda kw: kw.update(d_c_n=np.zeros((B_, H_), dt)), raises(VALUE, r"d_c_n")))
        return out

    saved = [Arg("result.output", "saved", label=r"output|result")]
    for name in SAVED_FIELDS:
        if name == "c0" and cell != "lstm":
            continue
        saved.append(Arg(f"result.saved.{name}", "saved", label=rf"\b{name}\b|saved|result"))
    # ReLU passes no gradient through a unit that is off (as in PyTorch), so
    # an injected NaN must sit where the forward's unit is on to show
    nan_at = {"d_output": 0, "d_h_n": 0}
    if cell == "rnn_relu":
        p = _problem(cell, Ctx("numpy", F64))
        out = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                        p["h0"], backend="numpy").output
        nan_at = {"d_output": int(np.argmax(out)), "d_h_n": int(np.argmax(out[-1]))}
        assert out.flat[nan_at["d_output"]] > 0 and out[-1].flat[nan_at["d_h_n"]] > 0
    args = ([Arg("result", "object")]
            + [Arg(n, "in", optional=True, nan_index=nan_at[n]) for n in ("d_output", "d_h_n")]
            + ([Arg("d_c_n", "in", optional=True)] if cell == "lstm" else [])
            + [Arg("backend", "choice", optional=True)] + saved)
    return Entry(f"backward.{cell}", valid, call, tuple(args), BACKENDS, (F32, F64), extras,
                 only=_ELMAN_ONLY.get(cell))


def _step_extras(cell, ctx, state=("h", "c"), outs=("h_out", "c_out"), has_x_weights=True):
    dt = ctx.dtype
    h, c = state
    h_out, c_out = outs
    out = []

    def b_zero(kw):
        kw["x"] = kw["x"][:0]
        kw[h] = kw[h][:0]
        kw[h_out] = np.zeros((0, H_), dt)
        if cell == "lstm":
            kw[c] = kw[c][:0]
            kw[c_out] = np.zeros((0, H_), dt)

    def empty(outs_, kw):
        for a in (outs_ if cell == "lstm" else (outs_,)):
            assert a.shape == (0, H_)

    out.append(("zero_sizes", "B=0", b_zero, Check(empty, "(0, H) state")))
    out.append(("aliasing", f"{h_out}-is-{h}", lambda kw: kw.update({h_out: kw[h]}), Same()))
    if cell == "lstm":
        out.append(("aliasing", f"{c_out}-is-{c}", lambda kw: kw.update({c_out: kw[c]}), Same()))
        out.append(("aliasing", f"{h_out}-is-{c}", lambda kw: kw.update({h_out: kw[c]}),
                    raises(VALUE, rf"\b{h_out}\b")))
        out.append(("aliasing", f"{c_out}-is-{h}", lambda kw: kw.update({c_out: kw[h]}),
                    raises(VALUE, rf"\b{c_out}\b")))
        out.append(("aliasing", f"{c_out}-is-{h_out}", lambda kw: kw.update({c_out: kw[h_out]}),
                    raises(VALUE, rf"\b{c_out}\b")))

    def out_overlaps_x(kw):
        x = kw["x"]
        buf = np.zeros(x.size + B_ * H_ - 1, dt)
        buf[:x.size] = x.ravel()
        kw["x"] = buf[:x.size].reshape(x.shape)
        kw[h_out] = buf[x.size - 1:].reshape(B_, H_)

    out.append(("aliasing", f"{h_out}-overlaps-x", out_overlaps_x, raises(VALUE, rf"\b{h_out}\b")))
    if has_x_weights:
        out.append(("aliasing", f"{h_out}-is-in-weight_hh",
                    lambda kw: kw.update({h_out: kw["weight_hh"][:B_]}) if kw["weight_hh"].shape[0] >= B_
                    else None, raises(VALUE, rf"\b{h_out}\b")))
        G = fastrnn.cells.get(cell).gates
        out.append(("zero_sizes", "I=0", lambda kw: kw.update(
            x=np.zeros((B_, 0), dt), weight_ih=np.zeros((G * H_, 0), dt)),
            raises(VALUE, r"input_size|\bx\b")))
    out.append(("overflow", "x-2**50-rows", lambda kw: kw.update(
        x=np.broadcast_to(np.zeros((), dt), (2 ** 50, I_)), **{h: None, h_out: None},
        **({c: None, c_out: None} if cell == "lstm" else {})), raises(NO_MEMORY, r"\bx\b")))
    if cell != "lstm":
        out.append(("wrong_types", f"{c}-for-non-lstm",
                    lambda kw: kw.update({c: np.zeros((B_, H_), dt)}), raises(VALUE, rf"\b{c}\b")))
        out.append(("wrong_types", f"{c_out}-for-non-lstm",
                    lambda kw: kw.update({c_out: np.zeros((B_, H_), dt)}),
                    raises(VALUE, rf"\b{c_out}\b")))
    return out


def step_entry(cell):
    def valid(ctx):
        p = _problem(cell, ctx, T=1)
        kw = dict(cell=cell, x=p["x"][0].copy(), weight_ih=p["weight_ih"], weight_hh=p["weight_hh"],
                  bias_ih=p["bias_ih"], bias_hh=p["bias_hh"], h=p["h0"],
                  h_out=np.zeros((B_, H_), ctx.dtype), backend=ctx.backend)
        if cell == "lstm":
            kw.update(c=p["c0"], c_out=np.zeros((B_, H_), ctx.dtype))
        return kw

    def call(kw):
        r = F.step(**kw)
        return tuple(a.copy() for a in r) if cell == "lstm" else (r.copy(),)

    def extras(ctx):
        cases = _step_extras(cell, ctx)
        # Check functions above take the raw result; adapt for this call's tuple
        return [(cat, var, mut, Check(lambda o, kw, fn=e.fn: fn(o if cell == "lstm" else o[0], kw),
                                      e.what) if isinstance(e, Check) else e)
                for cat, var, mut, e in cases]

    args = ([Arg("cell", "choice")] + _float_args(cell)
            + [Arg(n, "in", optional=True) for n in ("h", "c") if n == "h" or cell == "lstm"]
            + [Arg(n, "out", optional=True) for n in ("h_out", "c_out") if n == "h_out" or cell == "lstm"]
            + [Arg("backend", "choice", optional=True)])
    for a in args:
        if a.name == "x":
            a.shape_label = r"\bx\b|weight_ih"
    return Entry(f"step.{cell}", valid, call, tuple(args), BACKENDS, (F32, F64), extras)


# --------------------------------------------------------------------------
# the entries: fastrnn.stream


def _stream_problem(cell, ctx):
    # input_size == hidden_size, so an input can be a view of the state
    return _problem(cell, ctx, T=1, I=H_)


def stream_create_entry(cell):
    def valid(ctx):
        p = _stream_problem(cell, ctx)
        kw = dict(cell=cell, weight_ih=p["weight_ih"], weight_hh=p["weight_hh"],
                  bias_ih=p["bias_ih"], bias_hh=p["bias_hh"], batch=B_, h0=p["h0"],
                  backend=ctx.backend, _x=p["x"][0].copy())
        if cell == "lstm":
            kw["c0"] = p["c0"]
        return kw

    def call(kw):
        kw = dict(kw)
        x = kw.pop("_x")
        s = stream_mod.create(**kw)
        h = s(x).copy()
        return h, None if s.c is None else s.c.copy()

    def extras(ctx):
        G = fastrnn.cells.get(cell).gates
        out = [("zero_sizes", "I=0", lambda kw: kw.update(weight_ih=np.zeros((G * H_, 0), ctx.dtype)),
                raises(VALUE, r"weight_ih"))]
        if cell != "lstm":
            out.append(("wrong_types", "c0-for-non-lstm",
                        lambda kw: kw.update(c0=np.zeros((B_, H_), ctx.dtype)), raises(VALUE, r"\bc0\b")))
        return out

    args = ([Arg("cell", "choice"), Arg("weight_ih", "in", shape_axis=0),
             Arg("weight_hh", "in", dtype_label=r"weight_hh|weight_ih"),
             Arg("bias_ih", "in", optional=True), Arg("bias_hh", "in", optional=True),
             Arg("batch", "size", overflow=((2 ** 62, raises(NO_MEMORY, r"\bbatch\b")),))]
            + _state_args(cell) + [Arg("backend", "choice", optional=True)])
    return Entry(f"stream.create.{cell}", valid, call, tuple(args), BACKENDS, (F32, F64), extras)


def _stream(cell, ctx):
    p = _stream_problem(cell, ctx)
    s = stream_mod.create(cell, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                          batch=B_, h0=p["h0"], c0=p["c0"], backend=ctx.backend)
    return s, p


def _stream_state(s):
    return s.h.copy(), None if s.c is None else s.c.copy()


def stream_step_entry(cell):
    def valid(ctx):
        s, p = _stream(cell, ctx)
        return dict(stream=s, x=p["x"][0].copy())

    def call(kw):
        kw["stream"](kw["x"])
        return _stream_state(kw["stream"])

    def extras(ctx):
        out = [("aliasing", "x-is-stream.h", lambda kw: kw.update(x=kw["stream"].h),
                Same(alt=lambda kw: kw.update(x=kw["stream"].h.copy()))),
               ("zero_sizes", "B=0", lambda kw: kw.update(x=kw["x"][:0]), raises(VALUE, r"\bx\b"))]
        if cell == "lstm":
            out.append(("aliasing", "x-is-stream.c", lambda kw: kw.update(x=kw["stream"].c),
                        Same(alt=lambda kw: kw.update(x=kw["stream"].c.copy()))))
        return out

    # a stream never copies its input: non-contiguous x is a ValueError (stream.py)
    return Entry(f"stream.step.{cell}", valid, call, (Arg("x", "in", contiguous=True),),
                 BACKENDS, (F32, F64), extras)


def stream_setter_entry(cell, attr):
    def valid(ctx):
        s, p = _stream(cell, ctx)
        rng = np.random.default_rng(7)
        return dict(stream=s, value=rng.standard_normal((B_, H_)).astype(ctx.dtype),
                    _x=p["x"][0].copy())

    def call(kw):
        s = kw["stream"]
        setattr(s, attr, kw["value"])
        before = _stream_state(s)
        s(kw["_x"])
        return before + _stream_state(s)

    return Entry(f"stream.{attr}=.{cell}", valid, call, (Arg("value", "in", label=rf"\b{attr}\b"),),
                 BACKENDS, (F32, F64))


def stream_reset_entry(cell):
    def valid(ctx):
        s, p = _stream(cell, ctx)
        rng = np.random.default_rng(8)
        kw = dict(stream=s, h=rng.standard_normal((B_, H_)).astype(ctx.dtype), _x=p["x"][0].copy())
        if cell == "lstm":
            kw["c"] = rng.standard_normal((B_, H_)).astype(ctx.dtype)
        return kw

    def call(kw):
        s = kw["stream"]
        s.reset(**{k: v for k, v in kw.items() if k in ("h", "c")})
        before = _stream_state(s)
        s(kw["_x"])
        return before + _stream_state(s)

    def extras(ctx):
        if cell == "lstm":
            return []
        return [("wrong_types", "c-for-non-lstm",
                 lambda kw: kw.update(c=np.zeros((B_, H_), ctx.dtype)), raises(VALUE, r"\bc\b")),
                ("wrong_types", "stream.c=-for-non-lstm",
                 lambda kw: setattr(kw["stream"], "c", np.zeros((B_, H_), ctx.dtype)),
                 raises(VALUE, r"\bc\b"))]

    args = [Arg(n, "in", optional=True) for n in ("h", "c") if n == "h" or cell == "lstm"]
    return Entry(f"stream.reset.{cell}", valid, call, tuple(args), BACKENDS, (F32, F64), extras)


# --------------------------------------------------------------------------
# the entries: fastrnn.RNN / LSTM / GRU

LAYERS = {"RNN": (fastrnn.RNN, "rnn_tanh"), "LSTM": (fastrnn.LSTM, "lstm"), "GRU": (fastrnn.GRU, "gru"),
          "LeakyRNN": (fastrnn.LeakyRNN, "leaky")}


def _layer(kind, ctx):
    cls, _ = LAYERS[kind]
    return cls(I_, H_, dtype=ctx.dtype, seed=3, backend=ctx.backend)


def layer_ctor_entry(kind):
    cls, cell = LAYERS[kind]

    def valid(ctx):
        kw = dict(input_size=I_, hidden_size=H_, bias=True, dtype=ctx.dtype, seed=3,
                  backend=ctx.backend, _x=_problem(cell, ctx)["x"])
        if kind == "RNN":
            kw["nonlinearity"] = "tanh"
        if kind == "GRU":
            kw["reset_after"] = True
        if kind == "LeakyRNN":
            kw["leak_rate"] = 0.5
        return kw

    def call(kw):
        kw = dict(kw)
        x = kw.pop("_x")
        layer = cls(**kw)
        r = layer(x)
        return r.output, r.h_n, r.c_n

    huge = ((2 ** 62, raises(NO_MEMORY, r"\b(input|hidden)_size\b")),)
    args = [Arg("input_size", "size", overflow=huge), Arg("hidden_size", "size", overflow=huge),
            Arg("bias", "flag"), Arg("dtype", "dtype"),
            Arg("seed", "object", optional=True, objects=("abc",)),
            Arg("backend", "choice", optional=True)]
    if kind == "RNN":
        args.append(Arg("nonlinearity", "choice"))
    if kind == "GRU":
        args.append(Arg("reset_after", "flag"))
    if kind == "LeakyRNN":  # (0, 1]: 0 and above 1 are out of range
        args.append(Arg("leak_rate", "hyper", bad=(0.0, -0.1, 1.5)))
    return Entry(f"{kind}()", valid, call, tuple(args), BACKENDS, (F32, F64))


def layer_call_entry(kind):
    cls, cell = LAYERS[kind]

    def valid(ctx):
        p = _problem(cell, ctx)
        kw = dict(layer=_layer(kind, ctx), x=p["x"], h0=p["h0"], training=True,
                  out=np.zeros((T_, B_, H_), ctx.dtype))
        if cell == "lstm":
            kw["c0"] = p["c0"]
        return kw

    def call(kw):
        kw = dict(kw)
        r = kw.pop("layer")(**kw)
        return r.output, r.h_n, r.c_n

    # a state with one more dimension is torch's (num_layers*D, B, H), valid
    # for a layer: tests/test_stacked_layers.py checks the layer's state ranks
    states = [Arg(n, "in", optional=True, skip=("wrong_rank",)) for n in ("h0", "c0")
              if n[0] == "h" or cell == "lstm"]
    args = ([Arg("x", "in", shape_label=r"\bx\b|weight_ih")] + states
            + [Arg("out", "out", optional=True), Arg("training", "flag")])
    return Entry(f"{kind}.__call__", valid, call, tuple(args), BACKENDS, (F32,))


def layer_backward_entry(kind):
    cls, cell = LAYERS[kind]

    def valid(ctx):
        p = _problem(cell, ctx)
        layer = _layer(kind, ctx)
        kw = dict(layer=layer, result=layer(p["x"], p["h0"], *([p["c0"]] if cell == "lstm" else []),
                                           training=True),
                  d_output=p["d_output"], d_h_n=p["d_h_n"])
        if cell == "lstm":
            kw["d_c_n"] = p["d_c_n"]
        return kw

    def call(kw):
        kw = dict(kw)
        g = kw.pop("layer").backward(**kw)
        return g.x, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, g.h0, g.c0

    args = ([Arg("result", "object")]
            + [Arg(n, "in", optional=True) for n in ("d_output", "d_h_n", "d_c_n")
               if n != "d_c_n" or cell == "lstm"])
    return Entry(f"{kind}.backward", valid, call, tuple(args), BACKENDS, (F32,))


def layer_step_entry(kind):
    cls, cell = LAYERS[kind]

    def valid(ctx):
        p = _problem(cell, ctx, T=1)
        kw = dict(layer=_layer(kind, ctx), x=p["x"][0].copy(), h=p["h0"],
                  h_out=np.zeros((B_, H_), ctx.dtype))
        if cell == "lstm":
            kw.update(c=p["c0"], c_out=np.zeros((B_, H_), ctx.dtype))
        return kw

    def call(kw):
        kw = dict(kw)
        r = kw.pop("layer").step(**kw)
        return tuple(a.copy() for a in r) if cell == "lstm" else (r.copy(),)

    args = ([Arg("x", "in", shape_label=r"\bx\b|weight_ih")]
            + [Arg(n, "in", optional=True) for n in ("h", "c") if n == "h" or cell == "lstm"]
            + [Arg(n, "out", optional=True) for n in ("h_out", "c_out") if n == "h_out" or cell == "lstm"])
    return Entry(f"{kind}.step", valid, call, tuple(args), BACKENDS, (F32,))


def layer_stream_entry(kind):
    cls, cell = LAYERS[kind]

    def valid(ctx):
        p = _problem(cell, ctx, T=1)
        kw = dict(layer=_layer(kind, ctx), batch=B_, h0=p["h0"], _x=p["x"][0].copy())
        if cell == "lstm":
            kw["c0"] = p["c0"]
        return kw

    def call(kw):
        kw = dict(kw)
        layer, x = kw.pop("layer"), kw.pop("_x")
        s = layer.stream(**kw)
        return (s(x).copy(),) + _stream_state(s)

    args = ([Arg("batch", "size", overflow=((2 ** 62, raises(NO_MEMORY, r"\bbatch\b")),))]
            + _state_args(cell))
    return Entry(f"{kind}.stream", valid, call, tuple(args), BACKENDS, (F32,))


# --------------------------------------------------------------------------
# the entries: fastrnn.training

def _ctor_entry(name, make, valid_kw, args):
    def call(kw):
        obj = make(**kw)
        return tuple(np.asarray(float(getattr(obj, a.name))) for a in args if a.kind == "hyper")
    return Entry(name, lambda ctx: dict(valid_kw), call, tuple(args))


def optimizer_entries():
    lr = Arg("lr", "hyper", bad=(0.0, -1.0))
    eps = Arg("eps", "hyper", bad=(0.0, -1e-8))

    def beta(name, bad=(-0.1, 1.0, 1.5)):
        return Arg(name, "hyper", bad=bad)

    return [
        _ctor_entry("SGD", tr.SGD, dict(lr=0.1, momentum=0.9, nesterov=False),
                    [lr, beta("momentum"), Arg("nesterov", "flag")]),
        _ctor_entry("Adagrad", tr.Adagrad, dict(lr=0.1, eps=1e-8), [lr, eps]),
        _ctor_entry("RMSprop", tr.RMSprop, dict(lr=0.01, alpha=0.99, eps=1e-8),
                    [lr, beta("alpha", bad=(-0.1, 1.5)), eps]),
        _ctor_entry("Adam", tr.Adam, dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
                    [lr, beta("beta1"), beta("beta2"), eps]),
        _ctor_entry("Clip", tr.Clip, dict(kind="norm", value=1.0),
                    [Arg("kind", "choice"), Arg("value", "hyper", bad=(0.0, -1.0))]),
    ]


def layout_entry():
    def call(kw):
        lay = tr.Layout(**kw)
        return lay.init(np.float64, seed=0), np.asarray(lay.size)

    huge = lambda n: ((2 ** 62, raises(NO_MEMORY, rf"\b{n}\b")), (2 ** 64, raises(NO_MEMORY, rf"\b{n}\b")))
    args = (Arg("cell", "choice"),
            *(Arg(n, "size", overflow=huge(n)) for n in ("input_size", "hidden_size", "output_size")),
            # bias: True, "ih" (bias_ih alone) or False - a choice, not a flag
            Arg("bias", "choice"), Arg("head_bias", "flag"))
    return Entry("Layout", lambda ctx: dict(cell="gru", input_size=5, hidden_size=4, output_size=5,
                                            bias=True, head_bias=True), call, args)


TT, TB = 5, 2  # training problems: T steps, B streams


def _dense(ctx, cell="lstm", I=3, H=4, O=2, head="mse", many_to_one=False):
    rng = np.random.default_rng(5)
    dt = ctx.dtype or F64
    inputs = rng.standard_normal((TT, TB, I)).astype(dt)
    if head == "softmax_ce":
        targets = rng.integers(0, O, (TB,) if many_to_one else (TT, TB))
    else:
        shape = (TB, O) if many_to_one else (TT, TB, O)
        targets = rng.random(shape).astype(dt)
    h0 = (0.5 * rng.standard_normal((TB, H))).astype(dt)
    c0 = (0.5 * rng.standard_normal((TB, H))).astype(dt) if cell == "lstm" else None
    return inputs, targets, h0, c0


def _index(ctx, V=5, O=5, H=4):
    rng = np.random.default_rng(6)
    inputs = rng.integers(0, V, (TT, TB))
    inputs[0, 0] = 0  # theta's first element (weight_ih[0, 0]) is looked up
    targets = rng.integers(0, O, (TT, TB))
    h0 = (0.5 * rng.standard_normal((TB, H))).astype(ctx.dtype or F64)
    return inputs, targets, h0


def _fit_outputs(r, theta, state=None, step0=0):
    outs = (r.losses, r.h_n, r.c_n, r.grad, np.array(theta, copy=True))
    if state is not None:  # the updates taken (the count itself differs between cases)
        outs += (state.m.copy(), state.v.copy(), np.asarray(int(state.step) - int(step0)))
    return outs


def trainspec_entry(mode):
    """TrainSpec, constructed and used (a bad value may be refused at
    construction or, for absurd sizes, clamped at fit time)."""
    if mode == "tbptt":
        lay = tr.Layout("lstm", 3, 4, 2)
        base = dict(layout=lay, head="mse", index_input=False, many_to_one=False,
                    reduction="mean", k1=2, k2=3, clip=tr.Clip("norm", 1.0), optimizer=tr.SGD(0.1))
    else:
        lay = tr.Layout("gru", 5, 4, 5)
        base = dict(layout=lay, head="softmax_ce", index_input=True, reduction="sum", depth=2,
                    optimizer=None)

    def valid(ctx):
        return dict(base, _backend=ctx.backend)

    def call(kw):
        kw = dict(kw)
        backend = kw.pop("_backend")
        spec = tr.TrainSpec(**kw)
        ctx = Ctx(backend, F64)
        theta = lay.init(np.float64, seed=0)
        if mode == "tbptt":
            inputs, targets, h0, c0 = _dense(ctx)
            r = tr.fit_sequence(spec, theta, inputs, targets, h0=h0, c0=c0, backend=backend)
        else:
            inputs, targets, h0 = _index(ctx)
            r = tr.sequence_gradients(spec, theta, inputs, targets, h0=h0, backend=backend)
        return _fit_outputs(r, theta)

    def extras(ctx):
        if mode != "tbptt":
            return []
        # k1 >= T is one window over the whole sequence: what k1 = T gives, or refused
        return [("overflow", f"k1-{_power(v)}-k2-None", lambda kw, v=v: kw.update(k1=v, k2=None),
                 RaisesOr(raises(VALUE, r"\bk1\b"), Same(alt=lambda kw: kw.update(k1=TT, k2=None))))
                for v in (2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64)]

    if mode == "tbptt":
        args = (Arg("layout", "object"), Arg("head", "choice"), Arg("index_input", "flag"),
                Arg("many_to_one", "flag"), Arg("reduction", "choice"),
                Arg("k1", "size", overflow=tuple((v, raises(VALUE, r"\bk1\b")) for v in
                                                 (2 ** 62, 2 ** 63, 2 ** 64))),
                Arg("k2", "size", optional=True, bad=(1,), overflow=tuple(
                    (v, RaisesOr(raises(VALUE, r"\bk2\b"), Same(alt=put("k2", const(TT)))))
                    for v in (2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64))),
                Arg("clip", "object"), Arg("optimizer", "object", optional=True))
    else:
        args = (Arg("depth", "size", minimum=0, optional=True, overflow=tuple(
            (v, RaisesOr(raises(VALUE, r"\bdepth\b"), Same(alt=put("depth", const(TT - 1)))))
            for v in (2 ** 61, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64))),)
    return Entry(f"TrainSpec.{mode}", valid, call, args, BACKENDS, extras=extras)


def optimizer_state_entry():
    lay = tr.Layout("gru", 5, 4, 5)
    spec = tr.TrainSpec(lay, index_input=True, k1=2, optimizer=tr.Adam(0.01))

    def valid(ctx):
        rng = np.random.default_rng(9)
        theta = lay.init(ctx.dtype, seed=0)
        return dict(m=(0.01 * rng.standard_normal(lay.size)).astype(ctx.dtype),
                    v=(0.01 * rng.random(lay.size)).astype(ctx.dtype), step=3, _theta=theta,
                    _backend=ctx.backend)

    def call(kw):
        state = tr.OptimizerState(kw["m"], kw["v"], kw["step"])
        inputs, targets, h0 = _index(Ctx(None, kw["_theta"].dtype))
        r = tr.fit_sequence(spec, kw["_theta"], inputs, targets, h0=h0, state=state,
                            backend=kw["_backend"])
        return _fit_outputs(r, kw["_theta"], state, kw["step"])

    def overlapping(kw):  # m and v: two views of one buffer, one element apart
        buffer = np.concatenate([kw["m"], kw["v"][-1:]])
        kw.update(m=buffer[:-1], v=buffer[1:])

    def extras(ctx):
        return [("aliasing", "m-is-v", lambda kw: kw.update(v=kw["m"]), raises(VALUE, r"\bm\b|\bv\b")),
                ("aliasing", "m-is-theta", lambda kw: kw.update(m=kw["_theta"]), raises(VALUE, r"\bm\b")),
                ("aliasing", "v-is-theta", lambda kw: kw.update(v=kw["_theta"]), raises(VALUE, r"\bv\b")),
                ("aliasing", "v-overlaps-m", overlapping, raises(VALUE, r"\bm\b|\bv\b"))]

    # Adam's bias corrections 1 - beta**step are exactly 1 from step 2**40 on,
    # so any larger step must give what step 2**40 gives (or be refused)
    big_step = tuple((v, RaisesOr(raises(VALUE, r"\bstep\b"), Same(alt=put("step", const(2 ** 40)))))
                     for v in (2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64))
    # NaN in the last element (bias_y): the update puts it into theta's head
    # bias, which every later window reads
    args = (Arg("m", "inout", label=r"\bm\b", nan_index=-1),
            Arg("v", "inout", label=r"\bv\b", nan_index=-1),
            Arg("step", "size", minimum=0, overflow=big_step))
    return Entry("OptimizerState", valid, call, args, BACKENDS, (F32, F64), extras, diverges=True)


def fit_entry(variant):
    """fit_sequence / sequence_gradients on three problems."""
    if variant == "fit.dense":
        lay = tr.Layout("lstm", 3, 4, 2)
        spec = tr.TrainSpec(lay, head="mse", reduction="mean", k1=2, k2=3,
                            clip=tr.Clip("norm", 1.0), optimizer=tr.Adam(0.01))
        fn, cell = tr.fit_sequence, "lstm"
    elif variant == "fit.index":
        lay = tr.Layout("gru", 5, 4, 5)
        spec = tr.TrainSpec(lay, index_input=True, k1=2, clip=tr.Clip("value", 1.0),
                            optimizer=tr.SGD(0.1, momentum=0.9))
        fn, cell = tr.fit_sequence, "gru"
    elif variant == "gradients.index":
        lay = tr.Layout("rnn_tanh", 5, 4, 5)
        spec = tr.TrainSpec(lay, index_input=True, depth=2)
        fn, cell = tr.sequence_gradients, "rnn_tanh"
    else:  # gradients.dense: many-to-one, sigmoid_bce
        lay = tr.Layout("lstm", 3, 4, 2)
        spec = tr.TrainSpec(lay, head="sigmoid_bce", many_to_one=True, reduction="mean", k1=2)
        fn, cell = tr.sequence_gradients, "lstm"
    dense = variant.endswith("dense")
    updates = fn is tr.fit_sequence

    def valid(ctx):
        kw = dict(spec=spec, theta=lay.init(ctx.dtype, seed=0), backend=ctx.backend)
        if dense:
            kw["inputs"], kw["targets"], kw["h0"], c0 = _dense(
                ctx, head=spec.head, many_to_one=spec.many_to_one)
            kw["c0"] = c0
        else:
            kw["inputs"], kw["targets"], kw["h0"] = _index(ctx)
        if updates:
            kw["state"] = tr.OptimizerState.zeros_like(kw["theta"])
        return kw

    def call(kw):
        r = fn(**kw)
        return _fit_outputs(r, kw["theta"], kw.get("state"))

    def extras(ctx):
        dt = ctx.dtype
        out = []

        def t_zero(kw):
            kw["inputs"] = kw["inputs"][:0]
            if not spec.many_to_one:
                kw["targets"] = kw["targets"][:0]

        def b_zero(kw):
            kw["inputs"] = kw["inputs"][:, :0]
            kw["targets"] = kw["targets"][:0] if spec.many_to_one else kw["targets"][:, :0]
            kw["h0"] = kw["h0"][:0]
            if kw.get("c0") is not None:
                kw["c0"] = kw["c0"][:0]

        theta0 = lay.init(dt, seed=0)

        def nothing_learnt(outs, kw):
            losses, h_n, c_n, grad, theta = outs[:5]
            np.testing.assert_array_equal(theta, theta0)
            assert not grad.any() and not losses.any()
            np.testing.assert_array_equal(h_n, kw["h0"])
            if c_n is not None:
                np.testing.assert_array_equal(c_n, kw["c0"])

        out.append(("zero_sizes", "T=0", t_zero, Check(nothing_learnt, "theta and state unchanged")))
        out.append(("zero_sizes", "B=0", b_zero, Check(nothing_learnt, "theta unchanged")))
        if updates and dense:
            out.append(("aliasing", "inputs-in-theta", lambda kw: kw.update(
                inputs=kw["theta"][:kw["inputs"].size].reshape(kw["inputs"].shape)),
                raises(VALUE, r"\binputs\b")))
            out.append(("aliasing", "targets-in-theta", lambda kw: kw.update(
                targets=kw["theta"][:kw["targets"].size].reshape(kw["targets"].shape)),
                raises(VALUE, r"\btargets\b")))
        if updates:
            def h0_in_theta(kw):
                kw["h0"] = kw["theta"][:kw["h0"].size].reshape(kw["h0"].shape)

            # h0 is read once, before theta changes: an alias reads what a copy would
            out.append(("aliasing", "h0-in-theta", h0_in_theta, Same(
                alt=lambda kw: (h0_in_theta(kw), kw.update(h0=kw["h0"].copy())))))
            out.append(("aliasing", "state.m-is-theta", lambda kw: kw.update(
                state=tr.OptimizerState(kw["theta"], np.zeros_like(kw["theta"]))),
                raises(VALUE, r"\bm\b|state")))
        if dense:  # (an index array this size would take hours to range-check)
            huge = np.broadcast_to(np.zeros((), dt), (2 ** 40, 2 ** 10, lay.input_size))
            out.append(("overflow", "inputs-2**50-rows", lambda kw: kw.update(
                inputs=huge, h0=None, c0=None), raises(NO_MEMORY, r"\binputs\b|\btargets\b")))
        if not dense:
            def huge_vocabulary(kw):
                big = tr.Layout(cell, 2 ** 62, lay.hidden_size, lay.output_size)
                kw["spec"] = dataclasses.replace(spec, layout=big)
                kw["theta"] = big.init(dt, seed=0)  # must refuse: 2**64 weights do not exist
                if "state" in kw:
                    kw["state"] = tr.OptimizerState.zeros_like(kw["theta"])

            out.append(("overflow", "layout-input_size-2**62", huge_vocabulary,
                        raises(NO_MEMORY, r"\binput_size\b")))
        if cell != "lstm":
            out.append(("wrong_types", "c0-for-non-lstm",
                        lambda kw: kw.update(c0=np.zeros((TB, 4), dt)), raises(VALUE, r"\bc0\b")))
        return out

    theta_kind = "inout" if updates else "in"
    args = [Arg("spec", "object"), Arg("theta", theta_kind, lists=False),
            Arg("h0", "in", optional=True), Arg("backend", "choice", optional=True)]
    if cell == "lstm":
        args.append(Arg("c0", "in", optional=True))
    if dense:
        args.append(Arg("inputs", "in", shape_label=r"\binputs\b|targets|h0"))
    else:
        args.append(Arg("inputs", "index", low=0, high=lay.input_size,
                        shape_label=r"\binputs\b|targets|h0"))
    if spec.head == "softmax_ce":
        args.append(Arg("targets", "index", low=0, high=lay.output_size))
    else:
        args.append(Arg("targets", "in"))
    if updates:
        args.append(Arg("state", "object", optional=True))
    return Entry(variant, valid, call, tuple(args), BACKENDS, (F32, F64), extras, diverges=True)


# --------------------------------------------------------------------------
# the entries: fastrnn.dropin

DV, DH = 5, 4  # vocabulary, hidden size


def min_char_entry():
    def valid(ctx):
        rng = np.random.default_rng(11)
        dt = ctx.dtype
        return dict(inputs=np.array([0, 2, 1, 4]), targets=np.array([2, 1, 4, 3]),
                    hprev=(0.5 * rng.standard_normal((DH, 1))).astype(dt),
                    Wxh=(0.3 * rng.standard_normal((DH, DV))).astype(dt),
                    Whh=(0.3 * rng.standard_normal((DH, DH))).astype(dt),
                    Why=(0.3 * rng.standard_normal((DV, DH))).astype(dt),
                    bh=(0.1 * rng.standard_normal((DH, 1))).astype(dt),
                    by=(0.1 * rng.standard_normal((DV, 1))).astype(dt), backend=ctx.backend)

    def call(kw):
        return dropin.min_char_rnn_loss(**kw)

    def empty(outs, kw):
        loss, *grads, hlast = outs
        assert loss == 0.0 and not any(g.any() for g in grads)
        np.testing.assert_array_equal(hlast, kw["hprev"])

    def extras(ctx):
        return [("zero_sizes", "T=0", lambda kw: kw.update(inputs=[], targets=[]),
                 Check(empty, "zero loss and gradients, hlast = hprev"))]

    seq = r"\binputs\b|\btargets\b"
    args = (Arg("inputs", "index", low=0, high=DV, shape_label=seq),
            Arg("targets", "index", low=0, high=DV, shape_label=seq),
            Arg("hprev", "in", lists=False, shape_axis=0),
            Arg("Wxh", "in", lists=False, shape_axis=0, shape_label=r"\bWxh\b|\bWhh\b|\bbh\b|hprev"),
            Arg("Whh", "in", lists=False), Arg("Why", "in", lists=False),
            Arg("bh", "in", lists=False, shape_axis=0), Arg("by", "in", lists=False, shape_axis=0),
            Arg("backend", "choice", optional=True))
    return Entry("dropin.min_char_rnn_loss", valid, call, args, BACKENDS, (F32, F64), extras,
                 diverges=True)


def wildml_entry():
    def valid(ctx):
        rng = np.random.default_rng(12)
        dt = ctx.dtype
        return dict(x=np.array([0, 3, 1, 2, 4]), y=np.array([3, 1, 2, 4, 0]),
                    U=(0.3 * rng.standard_normal((DH, DV))).astype(dt),
                    V=(0.3 * rng.standard_normal((DV, DH))).astype(dt),
                    W=(0.3 * rng.standard_normal((DH, DH))).astype(dt), bptt_truncate=2,
                    backend=ctx.backend)

    def call(kw):
        return dropin.wildml_bptt(**kw)

    def extras(ctx):
        return [("zero_sizes", "T=0", lambda kw: kw.update(x=[], y=[]),
                 Check(lambda outs, kw: [not g.any() for g in outs] == [True] * 3, "zero gradients"))]

    # documented: a bptt_truncate of T - 1 or more is full BPTT
    full = tuple((v, Same(alt=put("bptt_truncate", const(4)))) for v in (2 ** 62, 2 ** 63, 2 ** 64))
    seq = r"\bx\b|\by\b"
    args = (Arg("x", "index", low=0, high=DV, shape_label=seq),
            Arg("y", "index", low=0, high=DV, shape_label=seq),
            Arg("U", "in", lists=False, shape_axis=0, shape_label=r"\bU\b|\bW\b|\bV\b"),
            Arg("V", "in", lists=False), Arg("W", "in", lists=False),
            Arg("bptt_truncate", "size", minimum=0, overflow=full),
            Arg("backend", "choice", optional=True))
    return Entry("dropin.wildml_bptt", valid, call, args, BACKENDS, (F32, F64), extras,
                 diverges=True)


# --------------------------------------------------------------------------
# the entries: fastrnn.charlm

TEXT = "the cat sat on the mat. " * 3
CHARS = sorted(set(TEXT))


def _lm(ctx, **kw):
    args = dict(cell="gru", hidden_size=4, dtype=ctx.dtype, seed=0, batch=2, window=4)
    args.update(kw)
    return lm_mod.CharLM(lm_mod.Vocab(CHARS), **args)


class Hang(Exception):
    """Raised by a callback that has been called more often than any
    finite budget in the case needs: the call would have run forever."""


def _bomb(limit=6):
    calls = []

    def callback(progress):
        calls.append(progress)
        if len(calls) > limit:
            raise Hang(f"still training after {limit} chunks")
    return callback


def vocab_entries():
    big = [chr(0x100 + i) for i in range(300)]  # more characters than uint8 holds
    return [
        Entry("Vocab()", lambda ctx: dict(chars=list("abc")),
              lambda kw: (np.array(lm_mod.Vocab(**kw).chars),),
              (Arg("chars", "object", objects=(5,)),),
              extras=lambda ctx: [
                  ("zero_sizes", "empty", lambda kw: kw.update(chars=[]), raises(VALUE, r"vocabulary")),
                  ("out_of_range", "two-letter", lambda kw: kw.update(chars=["ab"]),
                   raises(VALUE, r"single characters")),
                  ("out_of_range", "duplicate", lambda kw: kw.update(chars=["a", "a"]),
                   raises(VALUE, r"distinct")),
                  ("wrong_types", "int-elements", lambda kw: kw.update(chars=[1, 2]),
                   raises(TYPE, r"character")),
                  ("wrong_types", "str-accepted", lambda kw: kw.update(chars="abc"), Same())]),
        Entry("Vocab.from_text", lambda ctx: dict(text="abca"),
              lambda kw: (np.array(lm_mod.Vocab.from_text(**kw).chars),),
              (Arg("text", "object", objects=(5, b"abc")),),
              extras=lambda ctx: [("zero_sizes", "empty", lambda kw: kw.update(text=""),
                                   raises(VALUE, r"empty"))]),
        Entry("Vocab.encode", lambda ctx: dict(text="".join(big[:3]) + big[-1], dtype=np.int64),
              lambda kw: (lm_mod.Vocab(big).encode(**kw),),
              (Arg("text", "object", objects=(5, b"abc")), Arg("dtype", "object", objects=("banana",))),
              extras=lambda ctx: [
                  ("zero_sizes", "empty", lambda kw: kw.update(text=""),
                   Check(lambda outs, kw: outs[0].shape == (0,), "an empty array")),
                  ("out_of_range", "unknown-char", lambda kw: kw.update(text="a"),
                   raises(VALUE, r"not in the vocabulary")),
                  ("wrong_dtype", "float32", lambda kw: kw.update(dtype=np.float32), raises(TYPE, r"dtype")),
                  ("overflow", "uint8-for-300-chars", lambda kw: kw.update(dtype=np.uint8),
                   raises(VALUE, r"dtype"))]),
        Entry("Vocab.decode", lambda ctx: dict(ids=np.array([0, 2, 1])),
              lambda kw: (lm_mod.Vocab(list("abc")).decode(**kw),),
              # any length and shape is a text (decode ravels)
              (Arg("ids", "index", low=0, high=3, label=r"indices|\bids\b",
                   skip=("wrong_rank", "wrong_shape")),),
              extras=lambda ctx: [("zero_sizes", "empty", lambda kw: kw.update(ids=[]),
                                   Check(lambda outs, kw: outs[0] == "", "the empty text"))]),
    ]


def charlm_ctor_entry():
    def valid(ctx):
        return dict(vocab=lm_mod.Vocab(CHARS), cell="gru", hidden_size=4, dtype=ctx.dtype, seed=0,
                    batch=2, window=4, lr=3e-3, clip=5.0)

    def call(kw):
        lm = lm_mod.CharLM(**kw)
        return lm.theta, lm.h

    huge = lambda n: ((2 ** 40, raises(NO_MEMORY, rf"\b{n}\b")), (2 ** 62, raises(NO_MEMORY, rf"\b{n}\b")))
    args = (Arg("vocab", "object"), Arg("cell", "choice"),
            Arg("hidden_size", "size", overflow=huge("hidden_size")),
            Arg("batch", "size", overflow=huge("batch")), Arg("window", "size"),
            Arg("dtype", "dtype"), Arg("seed", "object", optional=True, objects=("abc",)),
            Arg("lr", "hyper", bad=(0.0, -1.0)), Arg("clip", "hyper", bad=(0.0, -1.0)))
    return Entry("CharLM()", valid, call, args, (None,), (F32, F64))


def _lm_state(lm):
    return lm.theta.copy(), lm.opt.m.copy(), lm.opt.v.copy(), lm.h.copy(), np.asarray(lm.chars_total)


def charlm_train_entry():
    def valid(ctx):
        return dict(lm=_lm(ctx), text=TEXT, chars=16, seconds=None, chunk_windows=1, callback=None,
                    backend=ctx.backend)

    def call(kw):
        kw = dict(kw)
        lm = kw.pop("lm")
        lm.train(**kw)
        return _lm_state(lm)

    def extras(ctx):
        ids = np.array([CHARS.index(ch) for ch in TEXT])
        return [
            ("zero_sizes", "empty-text", lambda kw: kw.update(text=""), raises(VALUE, r"text")),
            ("zero_sizes", "text-shorter-than-batch", lambda kw: kw.update(text="th"),
             raises(VALUE, r"text")),
            ("out_of_range", "unknown-char", lambda kw: kw.update(text="xyz"),
             raises(VALUE, r"vocabulary")),
            ("wrong_types", "index-array-accepted", lambda kw: kw.update(text=ids), Same()),
            ("wrong_dtype", "float-index-array", lambda kw: kw.update(text=ids.astype(float)),
             raises(TYPE, r"\btext\b")),
            ("out_of_range", "index-array-above", lambda kw: kw.update(text=ids + 100),
             raises(VALUE, r"\btext\b")),
            # no budget but infinite seconds: must be refused, not run forever
            ("nonfinite", "seconds-inf-no-chars", lambda kw: kw.update(
                chars=None, seconds=np.inf, callback=_bomb()), raises(VALUE, r"\bseconds\b")),
        ]

    # documented: the result does not depend on how training is cut into chunks
    args = (Arg("text", "object", objects=(5, b"the cat")),
            Arg("chars", "size", optional=True),
            Arg("seconds", "hyper", optional=True, bad=(0.0, -1.0)),
            Arg("chunk_windows", "size", overflow=tuple(
                (v, RaisesOr(raises(VALUE, r"chunk_windows"), Same())) for v in (2 ** 62, 2 ** 64))),
            Arg("callback", "object", optional=True, objects=(5,)),
            Arg("backend", "choice", optional=True))
    return Entry("CharLM.train", valid, call, args, BACKENDS, (F32, F64), extras)


def _poison_theta(value):
    def mutate(kw):
        kw["lm"].theta[0] = value
    return mutate


def charlm_loss_entry():
    def valid(ctx):
        return dict(lm=_lm(ctx), text=TEXT[:10], backend=ctx.backend)

    def call(kw):
        kw = dict(kw)
        return (np.asarray(kw.pop("lm").loss(**kw)),)

    def extras(ctx):
        return [("zero_sizes", "one-char", lambda kw: kw.update(text="t"), raises(VALUE, r"character")),
                ("out_of_range", "unknown-char", lambda kw: kw.update(text="xyz"),
                 raises(VALUE, r"vocabulary")),
                ("nonfinite", "theta-nan", _poison_theta(np.nan), raises(VALUE, r"theta|parameters")),
                ("nonfinite", "theta-inf", _poison_theta(np.inf), raises(VALUE, r"theta|parameters"))]

    args = (Arg("text", "object", objects=(5, b"the")), Arg("backend", "choice", optional=True))
    return Entry("CharLM.loss", valid, call, args, BACKENDS, (F32, F64), extras)


def charlm_sample_entry():
    def valid(ctx):
        return dict(lm=_lm(ctx), n=6, temperature=0.8, seed=1, prime="the", backend=ctx.backend)

    def call(kw):
        kw = dict(kw)
        return (kw.pop("lm").sample(**kw),)

    def extras(ctx):
        return [("out_of_range", "prime-unknown-char", lambda kw: kw.update(prime="xyz"),
                 raises(VALUE, r"vocabulary")),
                ("nonfinite", "theta-nan", _poison_theta(np.nan), raises(VALUE, r"theta|parameters")),
                ("nonfinite", "theta-inf", _poison_theta(np.inf), raises(VALUE, r"theta|parameters")),
                ("zero_sizes", "n=0", lambda kw: kw.update(n=0),
                 Check(lambda outs, kw: outs[0] == "", "the empty text"))]

    args = (Arg("n", "size", minimum=0, overflow=((2 ** 62, raises(NO_MEMORY, r"\bn\b")),)),
            Arg("temperature", "hyper", bad=(0.0, -1.0)),
            Arg("seed", "object", optional=True, objects=("abc",)),
            Arg("prime", "object", objects=(5,)), Arg("backend", "choice", optional=True))
    return Entry("CharLM.sample", valid, call, args, BACKENDS, (F32, F64), extras)


# The model file format, restated from charlm.py's docstring: a prefix
# (magic 15 bytes, version uint32, header length uint64, little-endian), the
# ASCII JSON header, the arrays, and the SHA-256 of everything before it.
PREFIX = struct.Struct("<15sIQ")


def _reseal(path: Path, edit: Callable[[str], str]) -> None:
    """Rewrite the header of the model file at ``path`` with ``edit`` and
    recompute its length and checksum, so that only the header is bad."""
    data = path.read_bytes()
    magic, version, hlen = PREFIX.unpack_from(data)
    header = data[PREFIX.size:PREFIX.size + hlen].decode("ascii")
    arrays = data[PREFIX.size + hlen:-32]
    new = edit(header).encode("ascii")
    body = PREFIX.pack(magic, version, len(new)) + new + arrays
    path.write_bytes(body + hashlib.sha256(body).digest())


def _set_field(key, value):
    def edit(text):
        header = json.loads(text)
        header[key] = value
        return json.dumps(header)  # allow_nan: float("inf") is written Infinity
    return edit


def _deep(key, depth=100_000):
    def edit(text):
        header = json.loads(text)
        header[key] = "__DEEP__"
        return json.dumps(header).replace('"__DEEP__"', "[" * depth + "]" * depth)
    return edit


def _huge_batch(text):
    header = json.loads(text)
    header["batch"] = 2 ** 62
    for spec in header["arrays"]:
        if spec["name"] in ("h", "c"):
            spec["shape"] = [2 ** 62, spec["shape"][1]]  # 2**64 elements: int64 wraps to 0
    return json.dumps(header)


def charlm_load_entry():
    def valid(ctx):
        path = ctx.tmp / "model.frnn"
        _lm(ctx).save(path)
        return dict(path=path)

    def call(kw):
        lm = lm_mod.CharLM.load(**kw)
        return _lm_state(lm)

    bad_file = raises(lm_mod.ModelFileError, r"model\.frnn")

    def edited(edit):
        return lambda kw: _reseal(kw["path"], edit)

    def extras(ctx):
        cases = [("zero_sizes", "empty-file", lambda kw: kw["path"].write_bytes(b""), bad_file),
                 ("overflow", "header-huge-batch", edited(_huge_batch), bad_file),
                 ("overflow", "header-deep-nesting", edited(_deep("vocab")), bad_file),
                 ("overflow", "header-deep-unknown-key", edited(_deep("comment")), bad_file)]
        for key in ("lr", "clip", "window", "hidden_size", "chars_total", "position", "optimizer_step"):
            for variant, value in (("Infinity", np.inf), ("NaN", np.nan)):
                cases.append(("nonfinite", f"header-{key}-{variant}", edited(_set_field(key, value)),
                              bad_file))
        for key in ("chars_total", "position", "optimizer_step"):
            cases.append(("overflow", f"header-{key}-2**64", edited(_set_field(key, 2 ** 64)), bad_file))
            cases.append(("out_of_range", f"header-{key}-negative", edited(_set_field(key, -1)),
                          bad_file))
            cases.append(("wrong_types", f"header-{key}-float", edited(_set_field(key, 2.5)), bad_file))
        return cases

    return Entry("CharLM.load", valid, call, (Arg("path", "object", objects=(5,)),), (None,), (F32, F64),
                 extras, needs_tmp=True)


# --------------------------------------------------------------------------
# the entries: process-wide settings

def set_num_threads_entry():
    def call(kw):
        before = fastrnn.get_num_threads()
        try:
            fastrnn.set_num_threads(**kw)
            return (np.asarray(fastrnn.get_num_threads()),)
        finally:
            fastrnn.set_num_threads(before)

    capped = Check(lambda outs, kw: 1 <= int(outs[0]) <= 1024, "a count the machine can run")
    arg = Arg("n", "size", overflow=tuple((v, RaisesOr(raises(VALUE, r"\bn\b"), capped))
                                          for v in (2 ** 62, 2 ** 64)))
    return Entry("set_num_threads", lambda ctx: dict(n=2), call, (arg,))


def resolve_backend_entry():
    return Entry("resolve_backend", lambda ctx: dict(backend="numpy"),
                 lambda kw: (fastrnn.resolve_backend(**kw),),
                 (Arg("backend", "choice", optional=True),),
                 extras=lambda ctx: [("out_of_range", "empty", lambda kw: kw.update(backend=""),
                                      raises(VALUE, r"backend"))])


# --------------------------------------------------------------------------
# the table

ENTRIES = (
    [forward_entry(c) for c in CELL_CASES]
    + [backward_entry(c) for c in CELL_CASES]
    + [step_entry(c) for c in ("rnn_relu", "lstm", "gru")]
    + [stream_create_entry(c) for c in ("rnn_relu", "lstm", "gru")]
    + [stream_step_entry(c) for c in ("rnn_sigmoid", "lstm", "gru")]
    + [stream_setter_entry("lstm", "h"), stream_setter_entry("lstm", "c"),
       stream_setter_entry("gru", "h")]
    + [stream_reset_entry(c) for c in ("lstm", "gru")]
    + [f(k) for k in LAYERS for f in (layer_ctor_entry, layer_call_entry, layer_backward_entry,
                                       layer_step_entry, layer_stream_entry)]
    + optimizer_entries() + [layout_entry(), trainspec_entry("tbptt"), trainspec_entry("depth"),
                             optimizer_state_entry()]
    + [fit_entry(v) for v in ("fit.dense", "fit.index", "gradients.index", "gradients.dense")]
    + [min_char_entry(), wildml_entry()]
    + vocab_entries() + [charlm_ctor_entry(), charlm_train_entry(), charlm_loss_entry(),
                         charlm_sample_entry(), charlm_load_entry()]
    + [set_num_threads_entry(), resolve_backend_entry()]
)


@dataclass(frozen=True)
class Case:
    id: str
    entry: Entry
    ctx: Ctx
    mutate: Callable
    expect: Any


NON_FLOAT = ("int64", "int32", "float16", "complex128", "bool")


def _dtype_free(category, variant):
    if category == "wrong_dtype":  # a non-float array is refused whatever the call's dtype
        return variant.rsplit("-", 1)[-1] in NON_FLOAT
    return category in DTYPE_FREE or (category == "wrong_types" and variant != "float-list")


def _cases():
    cases = []
    for entry in ENTRIES:
        for backend in entry.backends:
            for dtype in entry.dtypes:
                ctx = Ctx(backend, dtype)
                prefix = "-".join(p for p in (entry.name, backend, dtype and dtype.name) if p)
                generated = [(c, v, f"{arg.name}-{c}-{v}", m, e) for arg in entry.args
                             for c, v, m, e in RULES[arg.kind](arg, ctx) if c not in arg.skip]
                generated += [(c, v, f"{c}-{v}", m, e) for c, v, m, e in entry.extras(ctx)]
                for category, variant, name, mutate, expect in generated:
                    if entry.only is not None and category not in entry.only:
                        continue
                    if dtype == F32 and F64 in entry.dtypes and _dtype_free(category, variant):
                        continue
                    cases.append(Case(f"{prefix}-{name}", entry, ctx, mutate, expect))
    assert len({c.id for c in cases}) == len(cases), "two cases share an id"
    return cases


CASES = _cases()


def _param(case):
    marks = []
    if case.id in PENDING:
        marks.append(pytest.mark.xfail(strict=True, run=case.id not in UNSAFE,
                                       reason="pending: the library does not meet this case yet"))
    if case.ctx.backend is not None and case.ctx.backend not in fastrnn.available_backends():
        marks.append(pytest.mark.skip(reason=f"backend {case.ctx.backend} not available"))
    return pytest.param(case, id=case.id, marks=marks)


# --------------------------------------------------------------------------
# running a case

def _run(case, ctx, mutate, seen=None):
    """Build the valid call, apply ``mutate``, run it; returns (outputs, kw).
    ``seen`` (a list) receives (kw, copies of its arrays) before the call."""
    kw = case.entry.valid(ctx)
    if mutate is not None:
        mutate(kw)
    if seen is not None:
        seen.append((kw, {k: np.array(a, copy=True) for k, a in kw.items()
                          if isinstance(a, np.ndarray)}))
    outs = case.entry.call(kw)
    if not isinstance(outs, tuple):
        outs = (outs,)
    return [np.array(o, copy=True) if isinstance(o, np.ndarray) else
            (np.asarray(o) if isinstance(o, (float, int, np.number)) else o) for o in outs], kw


def _assert_same(got, want, exact=True, tol=None):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None or isinstance(w, str):
            assert g == w, f"{g!r} != {w!r}"
            continue
        assert g.shape == w.shape and g.dtype == w.dtype, f"{g.shape} {g.dtype} != {w.shape} {w.dtype}"
        if exact:
            np.testing.assert_array_equal(g, w)
            continue
        for test in (np.isnan, np.isposinf, np.isneginf):
            np.testing.assert_array_equal(test(g), test(w), err_msg=f"non-finite pattern ({test.__name__})")
        finite = np.isfinite(w)
        if finite.any():
            assert rel_err(g[finite], w[finite]) <= tol


def _has_nan(outs):
    return any(isinstance(o, np.ndarray) and o.dtype.kind in "fc" and np.isnan(o).any() for o in outs)


def _outcome(case, ctx):
    """(outputs, None), or (None, the TrainingDivergedError that stopped the
    call); a stop that applied no update must have left every array argument
    as it was (docs/TRAINING.md)."""
    seen = []
    try:
        return _run(case, ctx, case.mutate, seen)[0], None
    except tr.TrainingDivergedError as stop:
        if stop.updates == 0:
            kw, before = seen[0]
            for name, value in before.items():
                np.testing.assert_array_equal(kw[name], value, err_msg=f"{name} changed")
        return None, stop


def _check_raises(expect: Raises, exc: BaseException):
    assert isinstance(exc, expect.types), (
        f"expected {'/'.join(t.__name__ for t in expect.types)}, got {type(exc).__name__}: {exc}")
    assert re.search(expect.match, str(exc)), (
        f"{type(exc).__name__} message does not name {expect.match!r}: {exc}")


def _check(case, ctx, expect):
    if isinstance(expect, RaisesOr):
        try:
            _run(case, ctx, case.mutate)
        except expect.raises.types as exc:
            _check_raises(expect.raises, exc)
            return
        _check(case, ctx, expect.otherwise)
    elif isinstance(expect, Raises):
        try:
            _run(case, ctx, case.mutate)
        except Hang as exc:
            pytest.fail(f"expected {expect}, but the call would not return ({exc})")
        except Exception as exc:  # noqa: BLE001 - the type is what is being checked
            _check_raises(expect, exc)
            return
        pytest.fail(f"expected {'/'.join(t.__name__ for t in expect.types)} naming "
                    f"{expect.match!r}, but the call returned")
    elif isinstance(expect, Same):
        got, _ = _run(case, ctx, case.mutate)
        want, _ = _run(case, ctx, expect.alt)
        _assert_same(got, want)
    elif isinstance(expect, Propagates):
        got, stop = _outcome(case, ctx)
        if ctx.backend in COMPILED:
            want, want_stop = _outcome(case, Ctx("numpy", ctx.dtype, ctx.tmp))
            if stop or want_stop:
                assert type(stop) is type(want_stop), (
                    f"this backend: {stop!r}; the NumPy reference: {want_stop!r}")
                assert (stop.window, stop.updates) == (want_stop.window, want_stop.updates), (
                    f"this backend: {stop}; the NumPy reference: {want_stop}")
            else:
                _assert_same(got, want, exact=False, tol=TOLERANCE[ctx.dtype])
        elif case.entry.diverges:
            assert stop is not None, "a trainer given NaN did not stop"
        else:
            assert _has_nan(got), "an injected NaN reached no output"
    elif isinstance(expect, Check):
        outs, kw = _run(case, ctx, case.mutate)
        result = expect.fn(outs, kw)
        assert result is None or result, f"expected {expect.what}"
    else:  # pragma: no cover
        raise AssertionError(f"unknown expectation {expect!r}")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_matrix(case, request):
    ctx = case.ctx
    if case.entry.needs_tmp:
        ctx = Ctx(ctx.backend, ctx.dtype, request.getfixturevalue("tmp_path"))
    with np.errstate(all="ignore"):  # NaN/inf cases compute with NaN/inf on purpose
        if case.id not in PENDING:
            _check(case, ctx, case.expect)
            return
        # A pending case's failure is expected (strict xfail). It is re-raised
        # bare, from a hidden frame, because pytest formats an xfail's
        # traceback like a failure's, re-parsing this large file for every
        # frame (about a second per case).
        __tracebackhide__ = True
        try:
            _check(case, ctx, case.expect)
        except (Exception, pytest.fail.Exception) as exc:
            raise AssertionError(f"pending: {type(exc).__name__}: {exc}") from None


def test_pending_ids_exist():
    """Every PENDING / UNSAFE id names a generated case (no stale entries)."""
    ids = {c.id for c in CASES} | STANDALONE
    assert not (PENDING - ids), sorted(PENDING - ids)
    assert not (UNSAFE - ids), sorted(UNSAFE - ids)


# --------------------------------------------------------------------------
# beyond the table

STANDALONE = {"backward-tampered-output-large-subprocess",
              "layout-size-overflow-subprocess-c", "layout-size-overflow-subprocess-numba"}


def _pending(case_id):
    if case_id in PENDING:
        return pytest.mark.xfail(strict=True, reason="pending: the library does not meet this yet")
    return lambda f: f


@_pending("backward-tampered-output-large-subprocess")
@pytest.mark.parametrize("backend", ["c"])
def test_backward_with_a_replaced_large_output_raises(backend):
    """result.output swapped for a tiny array at a size where reading past it
    leaves the heap: a ValueError, not a crash (run in a child process, so
    that a crash fails this test instead of ending the session)."""
    if backend not in fastrnn.available_backends():
        pytest.skip(f"backend {backend} not available")
    script = textwrap.dedent(f"""
        import numpy as np
        from fastrnn import functional as F
        T, B, I, H = 256, 64, 8, 256
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        w_ih = rng.standard_normal((4 * H, I)).astype(np.float32) * 0.1
        w_hh = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.1
        res = F.forward("lstm", x, w_ih, w_hh, training=True, backend={backend!r})
        res.output = np.zeros((1, 1, 1), np.float32)
        try:
            F.backward(res, d_output=None)
        except ValueError as exc:
            print("ValueError:", exc)
        else:
            print("returned")
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, f"the child died with code {child.returncode}: {child.stderr[-500:]}"
    assert child.stdout.startswith("ValueError:") and "output" in child.stdout, child.stdout


def _layout_overflow_marks(backend):
    case_id = f"layout-size-overflow-subprocess-{backend}"
    if case_id in PENDING:
        return [pytest.mark.xfail(strict=True, reason="pending: the library does not meet this yet")]
    return []


@pytest.mark.parametrize("backend", [pytest.param(b, marks=_layout_overflow_marks(b), id=b)
                                     for b in COMPILED])
def test_a_layout_too_large_to_exist_is_refused_not_a_crash(backend):
    """A vocabulary of 2**62 makes weight_ih 2**64+ elements: Layout must say
    so (or init/fit_sequence refuse it), never hand a trainer a theta whose
    size wrapped around int64 (run in a child process: the trainer then
    indexes theta out of bounds)."""
    if backend not in fastrnn.available_backends():
        pytest.skip(f"backend {backend} not available")
    script = textwrap.dedent(f"""
        import numpy as np
        from fastrnn import training as tr
        try:
            lay = tr.Layout("rnn_tanh", 2 ** 62, 4, 5)
            theta = lay.init(np.float64, seed=0)
            spec = tr.TrainSpec(lay, index_input=True, k1=2, optimizer=tr.SGD(0.1))
            inputs = np.array([[0, 1], [2 ** 40, 5], [7, 2 ** 61]])
            tr.fit_sequence(spec, theta, inputs, np.zeros((3, 2), np.int64), backend={backend!r})
        except (ValueError, MemoryError) as exc:
            print(type(exc).__name__ + ":", exc)
        else:
            print("returned")
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, f"the child died with code {child.returncode}: {child.stderr[-500:]}"
    assert re.match(r"(ValueError|MemoryError):.*\binput_size\b", child.stdout), child.stdout
