"""Layer objects with torch.nn's contract: RNN, LSTM, GRU, LeakyRNN, stacked and bidirectional.

``fastrnn.RNN / LSTM / GRU(input_size, hidden_size, num_layers=1, ...,
bidirectional=False)`` hold their parameters as NumPy arrays under
torch.nn's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), laid out
and initialised as torch's, and run on :mod:`fastrnn.functional`, one call
per layer and direction. They are containers, not an autograd system:
``forward(..., training=True)`` keeps what ``backward`` needs, and the
gradients come back as a :class:`LayerGradients` whose ``params`` are keyed
by the same names, ready for :mod:`fastrnn.optim`.

Shapes (torch's): x is (T, B, I), (B, T, I) with ``batch_first``, or
unbatched (T, I); a state is (num_layers * D, B, H) (unbatched:
(num_layers * D, H)) with D = 2 for a bidirectional layer; the output is
(T, B, D * H), the directions side by side (forward first).

The one-layer, one-direction layer keeps the API it had before stacking:
``layer.weight_ih`` and the other short names, an initial state of shape
(B, H) with a final state of that shape, ``layer.step`` and
``layer.stream``. Passing a 3-D state (1, B, H) gives torch's shapes.

Streaming: ``layer.stream(batch=1, h0=None, c0=None)`` (one-layer,
one-direction layers) returns a :class:`fastrnn.stream.Stream` for
step-by-step inference: ``s = lstm.stream()`` then ``h = s(x_t)`` for each
x_t of shape (batch, input_size). The stream owns the state (``s.h``, and
``s.c`` for LSTM), updates it in place and returns ``s.h`` itself every
call. The weights are copied (on the C backend, packed) when the stream is
created, so later changes to the layer's parameters are not seen by an
existing stream. On the C backend a step costs about a microsecond for a
small layer, against several for :meth:`step`, which validates every
argument on every call; see :mod:`fastrnn.stream`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _validate as v
from . import cells
from . import functional as F
from . import stream as _stream

__all__ = ["RNN", "LSTM", "GRU", "LeakyRNN", "LayerResult", "LayerGradients"]

_SHORT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


@dataclass
class _StackSaved:
    """What a stacked / bidirectional backward needs from forward."""

    runs: list            # runs[l][d]: the ForwardResult (training=True) of layer l, direction d
    masks: list           # masks[l]: the dropout mask applied to layer l's input (None: none)
    lengths: Optional[np.ndarray]
    layout: tuple         # (T, B, batch_first, unbatched, dtype)


@dataclass
class LayerResult(F.ForwardResult):
    """What :meth:`RNN.forward` (and LSTM's, GRU's) returns for a stacked,
    bidirectional, batch-first or unbatched call, or one given a 3-D state:
    ``output`` (T, B, D*H) (batch-first / unbatched as x), ``h_n`` and, for
    LSTM, ``c_n`` (num_layers*D, B, H) (unbatched: (num_layers*D, H)), and
    ``saved`` for backward when forward ran with ``training=True``.
    ``dropout_masks[l]`` is the mask forward multiplied layer l's input by
    (0 or 1/(1-p) per element; None for layer 0 and without dropout)."""

    dropout_masks: list = field(default_factory=list)


@dataclass
class LayerGradients:
    """Gradients from a layer's :meth:`backward`.

    x: the gradient of the input, in its shape; h0 / c0: of the initial state,
    in the shape of the state passed (torch's (num_layers*D, B, H) when none
    was; c0 None except for LSTM); params: from torch's parameter names
    (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...) to arrays, the layer's
    named_parameters() order. A one-layer, one-direction layer's gradients
    also answer to the short names ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh`` (None for an absent bias).
    """

    x: np.ndarray
    h0: np.ndarray
    c0: Optional[np.ndarray]
    params: dict

    def _short(self, name):
        if "weight_hh_l1" in self.params or "weight_hh_l0_reverse" in self.params:
            raise AttributeError(f"{name} names a one-layer, one-direction layer's gradient; "
                                 f"this layer has several: use params['{name}_l0'] and the like")
        return self.params.get(f"{name}_l0")

    weight_ih = property(lambda self: self._short("weight_ih"))
    weight_hh = property(lambda self: self._short("weight_hh"))
    bias_ih = property(lambda self: self._short("bias_ih"))
    bias_hh = property(lambda self: self._short("bias_hh"))
    weight_hr = property(lambda self: self._short("weight_hr"))  # LSTM with proj_size only


def _reverse_in_time(a: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """a (T, B, C) with each row's valid steps in reverse order: what the
    reverse direction reads. Without lengths the whole window reverses; with
    them row b's steps 0 .. L_b-1 reverse among themselves and the padding
    stays where it is, so a row starts at its own last valid step. Its own
    inverse, so the same call maps the reverse run's outputs back."""
    T, B = a.shape[0], a.shape[1]
    if lengths is None:
        return np.ascontiguousarray(a[::-1])
    t = np.arange(T)[:, None]
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return a[source, np.arange(B)[None, :]]


class _Recurrent:
    cell: str = ""  # a name in fastrnn.cells.CELLS: the layer's shapes and math
    proj_size: int = 0  # LSTM's projection of h (0: none); see LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, dtype=np.float32, seed: Optional[int] = None,
                 backend: Optional[str] = None):
        input_size = v.integer("input_size", input_size, 1)
        hidden_size = v.integer("hidden_size", hidden_size, 1)
        num_layers = v.integer("num_layers", num_layers, 1)
        bias = v.boolean("bias", bias)
        batch_first = v.boolean("batch_first", batch_first)
        dropout = v.real_number("dropout", dropout, 0.0, 1.0)
        bidirectional = v.boolean("bidirectional", bidirectional)
        dtype = v.float_dtype("dtype", dtype)
        seed = v.seed("seed", seed)
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout > 0 acts between stacked layers only; with num_layers=1 it "
                          "has no effect (as in torch.nn)", UserWarning, stacklevel=3)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.dtype, self.backend = dtype, backend
        spec = self.descriptor
        GH, H = spec.gate_rows(hidden_size), hidden_size
        R = self.proj_size or H  # the width of h: what W_hh multiplies and the layer outputs
        # sizes no array can have are refused before anything is drawn
        widest = max(input_size, self.num_directions * R) if num_layers > 1 else input_size
        v.element_count(f"weight_ih ({GH}, input_size={widest})", GH, widest)
        v.element_count(f"weight_hh ({GH}, {'proj_size' if self.proj_size else 'hidden_size'}"
                        f"={R})", GH, R)
        # PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), drawn
        # in torch's parameter order (one layer and direction after another;
        # a projection's weight_hr (P, H) after the biases).
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(H)
        params = {}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.num_directions * R
            for direction in range(self.num_directions):
                s = _suffix(layer, direction)
                params["weight_ih" + s] = rng.uniform(-k, k, (GH, layer_input)).astype(dtype)
                params["weight_hh" + s] = rng.uniform(-k, k, (GH, R)).astype(dtype)
                if bias:
                    params["bias_ih" + s] = rng.uniform(-k, k, GH).astype(dtype)
                    params["bias_hh" + s] = rng.uniform(-k, k, GH).astype(dtype)
                if self.proj_size:
                    params["weight_hr" + s] = rng.uniform(-k, k, (R, H)).astype(dtype)
        object.__setattr__(self, "_params", params)
        # dropout masks: the layer's own seeded stream, apart from the init's
        self._dropout_rng = np.random.default_rng(None if seed is None else [seed, 1])

    @property
    def descriptor(self) -> cells.Cell:
        """The fastrnn.cells.Cell this layer runs, hyperparameters included
        (LeakyRNN's leak rate): what every call hands the functional API."""
        return cells.get(self.cell)

    # -- parameters --------------------------------------------------------
    @property
    def _single(self) -> bool:
        """One layer, one direction: the layer that has the short names."""
        return self.num_layers == 1 and not self.bidirectional

    def __getattr__(self, name):  # only for names not found the usual way
        params = self.__dict__.get("_params")
        if params is not None:
            if name in params:
                return params[name]
            if name in _SHORT_NAMES and self.__dict__.get("num_layers") == 1 and \
                    not self.__dict__.get("bidirectional"):
                return params.get(name + "_l0")  # None for an absent bias
            if name in _SHORT_NAMES:
                raise AttributeError(f"{type(self).__name__} with num_layers="
                                     f"{self.num_layers}, bidirectional={self.bidirectional} "
                                     f"has no {name}: its parameters are {name}_l0 and the like")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is not None:
            key = name + "_l0" if name in _SHORT_NAMES and self._single else name
            if key in params:
                params[key] = value
                return
            if name in _SHORT_NAMES and self._single and value is None:
                return  # a bias-free layer's absent bias stays absent
        object.__setattr__(self, name, value)

    def named_parameters(self) -> dict:
        """The parameters by torch.nn name, in torch's order (a new dict of the
        layer's own arrays: changing an array in place changes the layer)."""
        return dict(self._params)

    def parameters(self) -> dict:
        """A one-layer, one-direction layer's parameters by their short names
        (weight_ih, weight_hh and the biases it has): the arrays the
        functional API takes. Any layer: :meth:`named_parameters`."""
        if not self._single:
            raise ValueError(f"parameters() names one layer's parameters by their short names; "
                             f"this layer has {self.num_layers} layer(s) and "
                             f"{self.num_directions} direction(s): use named_parameters()")
        return {n: self._params[n + "_l0"] for n in _SHORT_NAMES if n + "_l0" in self._params}

    def state_dict(self) -> dict:
        """The parameters under torch.nn's keys (``weight_ih_l0``, ...)."""
        return dict(self._params)

    def load_state_dict(self, state: dict) -> None:
        """Load torch.nn's keys (a one-layer, one-direction layer also takes
        the short names, ``weight_ih`` ...). Values may be arrays, array-likes
        or torch tensors; they are converted to this layer's dtype (an
        explicit, requested conversion) and shape-checked. Every parameter
        must be present, and no other key (as torch's strict loading); the
        layer is changed only when everything is valid."""
        state = dict(state)
        loaded = {}
        for key, current in self._params.items():
            short = key[:-3] if self._single and key.endswith("_l0") else None
            source = key if key in state else short if short in state else None
            if source is None:
                raise KeyError(f"state is missing {key}")
            value = state.pop(source)
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            try:
                value = np.array(value, dtype=self.dtype, order="C")
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{source} must be an array of numbers: {exc}") from None
            if value.shape != current.shape:
                raise ValueError(f"{source} must have shape {current.shape}, got {value.shape}")
            loaded[key] = value
        if state:
            raise KeyError(f"state has keys this layer does not: {sorted(state)} (its "
                           f"parameters are {list(self._params)})")
        self._params.update(loaded)

    @classmethod
    def from_torch(cls, module, *, dtype=None, backend: Optional[str] = None):
        """Build from a torch.nn.RNN / LSTM / GRU (any number of layers and
        directions, batch_first or not), with its parameters and dropout."""
        kwargs = {}
        if cls is RNN:  # the Elman layer's cell is its nonlinearity's
            kwargs["nonlinearity"] = module.nonlinearity
        if getattr(module, "proj_size", 0):
            kwargs["proj_size"] = module.proj_size
        if dtype is None:
            dtype = np.float64 if str(module.weight_hh_l0.dtype) == "torch.float64" else np.float32
        with warnings.catch_warnings():  # torch warned already about dropout on one layer
            warnings.simplefilter("ignore", UserWarning)
            layer = cls(module.input_size, module.hidden_size, num_layers=module.num_layers,
                        bias=module.bias, batch_first=module.batch_first,
                        dropout=float(module.dropout), bidirectional=module.bidirectional,
                        dtype=dtype, backend=backend, **kwargs)
        layer.load_state_dict(module.state_dict())
        return layer

    # -- computation -------------------------------------------------------
    def _layer_params(self, layer: int, direction: int) -> tuple:
        s = _suffix(layer, direction)
        p = self._params
        return (p["weight_ih" + s], p["weight_hh" + s], p.get("bias_ih" + s),
                p.get("bias_hh" + s))

    def _weight_hr(self, layer: int, direction: int) -> Optional[np.ndarray]:
        """The projection of layer, direction (None without proj_size)."""
        return self._params.get("weight_hr" + _suffix(layer, direction))

    def _no_projection(self, what: str) -> None:
        if self.proj_size:
            raise NotImplementedError(f"{what} of an LSTM with proj_size > 0 is not implemented "
                                      f"yet (forward / backward over a window are)")

    def _is_legacy_call(self, x, h0) -> bool:
        """The one-layer, one-direction call of before stacking: time-major 3-D
        x and a (B, H) state or none; it returns (B, H) final states."""
        return (self._single and not self.batch_first and getattr(x, "ndim", 3) == 3
                and (h0 is None or getattr(h0, "ndim", 2) == 2))

    def forward(self, x, hx=None, c0=None, *, h0=None, lengths=None, training: bool = False,
                out: Optional[np.ndarray] = None):
        """Run the layer over a sequence.

        x: (T, B, input_size), (B, T, input_size) with batch_first, or
        unbatched (T, input_size). hx: the initial state, h0, or for LSTM the
        pair (h0, c0) (c0 may also be passed on its own), each (num_layers*D,
        B, hidden_size) ((num_layers*D, hidden_size) unbatched); zeros if
        None (h0= is the same as hx=). lengths: optional per-row lengths (B,), 0 <= length <= T, in any
        order, with the semantics of torch's pack_padded_sequence(...,
        enforce_sorted=False): outputs past a row's length are 0, h_n / c_n
        are each row's state after its last valid step, and the reverse
        direction starts at each row's last valid step. training: keep what
        :meth:`backward` needs, and apply dropout between layers.

        Returns output (T, B, D*hidden_size) (batch-first / unbatched as x),
        h_n, c_n (LSTM; else None) and ``saved``. A one-layer, one-direction
        layer given a 2-D (B, H) state or none returns (B, H) states, as
        before stacking (a :class:`~fastrnn.functional.ForwardResult`, and
        ``out`` may be a caller-provided (T, B, H) output array); otherwise a
        :class:`LayerResult` in torch's shapes.
        """
        spec = self.descriptor
        if h0 is not None:  # the keyword before hx existed
            if hx is not None:
                raise ValueError("pass the initial state as hx or as h0, not both")
            hx = h0
        if isinstance(hx, tuple):
            if not spec.has_cell_state:
                raise TypeError(f"hx must be an array for {type(self).__name__} (a tuple "
                                f"(h0, c0) is LSTM's), got a tuple")
            if len(hx) != 2 or c0 is not None:
                raise ValueError("hx must be h0 or the pair (h0, c0), and c0 not given twice")
            hx, c0 = hx
        training = v.boolean("training", training)
        if self._is_legacy_call(x, hx) and (c0 is None or getattr(c0, "ndim", 2) == 2):
            return F.forward(self.descriptor, x, *self._layer_params(0, 0), hx, c0,
                             backend=self.backend, training=training, out=out, lengths=lengths,
                             weight_hr=self._weight_hr(0, 0))
        if out is not None:
            raise ValueError("out= is only taken by a one-layer, one-direction layer called "
                             "with time-major x and a (batch, hidden_size) state or none")
        return self._forward_stack(spec, x, hx, c0, lengths, training)

    __call__ = forward

    def _forward_stack(self, spec, x, h0, c0, lengths, training):
        x = v.as_input("x", x, np.ndim(x) if np.ndim(x) in (2, 3) else 3, self.dtype, "the layer")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x must have input_size = {self.input_size} features in its last "
                             f"dimension, got shape {x.shape if not self.batch_first else (B, T, I)}")
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        R = self.proj_size or H  # h's width
        h0 = self._stacked_state("h0", h0, LD, B, unbatched, self.proj_size or None)
        c0 = self._stacked_state("c0", c0, LD, B, unbatched) if spec.has_cell_state else \
            self._no_cell_state("c0", c0)
        lengths = v.lengths(lengths, B, T) if not (self.batch_first and lengths is not None) \
            else self._lengths_batch_first(lengths, B, T)
        h_n = np.empty((LD, B, R), self.dtype)
        c_n = np.empty((LD, B, H), self.dtype) if spec.has_cell_state else None
        runs, masks, layer_input = [], [], x
        for layer in range(self.num_layers):
            mask = None
            if layer > 0 and training and self.dropout > 0:
                keep = self._dropout_rng.random(layer_input.shape) >= self.dropout
                mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)
                layer_input = layer_input * mask
            masks.append(mask)
            outputs, layer_runs = [], []
            for direction in range(self.num_directions):
                i = layer * self.num_directions + direction
                seq = layer_input if direction == 0 else _reverse_in_time(layer_input, lengths)
                run = F.forward(self.descriptor, seq, *self._layer_params(layer, direction), h0[i],
                                None if c0 is None else c0[i], backend=self.backend,
                                training=training, lengths=lengths,
                                weight_hr=self._weight_hr(layer, direction))
                outputs.append(run.output if direction == 0
                               else _reverse_in_time(run.output, lengths))
                h_n[i] = run.h_n
                if c_n is not None:
                    c_n[i] = run.c_n
                layer_runs.append(run if training else None)
            runs.append(layer_runs)
            layer_input = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
        output = self._to_user_layout(layer_input, unbatched)
        saved = _StackSaved(runs, masks, lengths, (T, B, self.batch_first, unbatched,
                                                   self.dtype)) if training else None
        if unbatched:
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return LayerResult(output, h_n, c_n, saved, masks)

    def _to_user_layout(self, a, unbatched):
        if unbatched:
            return a[:, 0]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _from_user_layout(self, name, a, T, B, C, unbatched):
        """An upstream gradient in x's layout, as the time-major (T, B, C)."""
        if unbatched:
            return v.upstream(name, a, (T, C), "(T, D*hidden_size) (unbatched)",
                              self.dtype)[:, None, :]
        if self.batch_first:
            a = v.upstream(name, a, (B, T, C), "(batch, T, D*hidden_size) (batch_first)",
                           self.dtype)
            return np.ascontiguousarray(a.transpose(1, 0, 2))
        return v.upstream(name, a, (T, B, C), "(T, batch, D*hidden_size)", self.dtype)

    def _lengths_batch_first(self, lengths, B, T):
        try:
            return v.lengths(lengths, B, T)
        except ValueError as exc:  # say which layout the sizes were read from
            raise ValueError(f"{exc} (batch_first=True: x is (batch, T, input_size))") from None

    def _stacked_state(self, name, value, LD, B, unbatched, width=None):
        """h0 / c0 of a stack: (num_layers*D, B, H) (unbatched (num_layers*D,
        H)), zeros for None; returned as (LD, B, H). width: H unless told
        (an h of a layer with proj_size: P, named so in messages)."""
        H = self.hidden_size if width is None else width
        if value is None:
            return np.zeros((LD, B, H), self.dtype)
        want = (LD, H) if unbatched else (LD, B, H)
        arr = v.as_input(name, value, len(want), self.dtype, "the layer")
        size = "hidden_size" if width is None else "proj_size"
        v.expect_shape(name, arr, want, "(num_layers*num_directions, "
                       + (f"{size}) (unbatched)" if unbatched else f"batch, {size})"))
        return arr[:, None, :] if unbatched else arr

    def _no_cell_state(self, name, value):
        if value is not None:
            raise ValueError(f"{name} is only meaningful for LSTM, not {type(self).__name__}")
        return None

    def backward(self, result, d_output=None, d_h_n=None, d_c_n=None) -> LayerGradients:
        """Gradients of a forward(..., training=True) run.

        d_output: the gradient of the loss w.r.t. ``result.output`` (its shape);
        d_h_n, d_c_n: w.r.t. ``result.h_n`` / ``result.c_n`` (their shapes).
        None is zero. Returns :class:`LayerGradients` (x, h0, c0 and params by
        torch name); BPTT runs through every layer and direction, each layer's
        input gradient feeding the layer below (through its dropout mask), one
        functional backward call per layer and direction. With lengths,
        d_output past a row's length is ignored and d_h_n enters each row at
        its last valid step (see :func:`fastrnn.functional.backward`).
        """
        if isinstance(result, LayerResult) or isinstance(getattr(result, "saved", None),
                                                         _StackSaved):
            return self._backward_stack(result, d_output, d_h_n, d_c_n)
        g = F.backward(result, d_output, d_h_n, d_c_n)
        params = {"weight_ih_l0": g.weight_ih, "weight_hh_l0": g.weight_hh}
        if g.bias_ih is not None:
            params["bias_ih_l0"] = g.bias_ih
        if g.bias_hh is not None:
            params["bias_hh_l0"] = g.bias_hh
        if g.weight_hr is not None:
            params["weight_hr_l0"] = g.weight_hr
        return LayerGradients(g.x, g.h0, g.c0, params)

    def _backward_stack(self, result, d_output, d_h_n, d_c_n) -> LayerGradients:
        s = result.saved
        if s is None:
            raise ValueError("backward needs the result of forward(..., training=True)")
        if not isinstance(s, _StackSaved) or len(s.runs) != self.num_layers or \
                any(len(r) != self.num_directions for r in s.runs):
            raise ValueError("result must come from this layer's forward(..., training=True)")
        T, B, _, unbatched, dtype = s.layout
        spec = self.descriptor
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        R = self.proj_size or H  # h's width
        d_layer = self._from_user_layout("d_output", d_output, T, B, D * R, unbatched)
        d_h = self._stacked_state("d_h_n", d_h_n, L * D, B, unbatched, self.proj_size or None)
        d_c = self._stacked_state("d_c_n", d_c_n, L * D, B, unbatched) if \
            spec.has_cell_state else self._no_cell_state("d_c_n", d_c_n)
        dh0 = np.empty((L * D, B, R), dtype)
        dc0 = np.empty((L * D, B, H), dtype) if spec.has_cell_state else None
        grads = {}
        for layer in range(L - 1, -1, -1):
            d_input = None
            for direction in range(D):
                i = layer * D + direction
                d_out = d_layer[:, :, direction * R:(direction + 1) * R]
                if direction == 1:
                    d_out = _reverse_in_time(d_out, s.lengths)
                g = F.backward(s.runs[layer][direction], d_out, d_h[i],
                               None if d_c is None else d_c[i])
                dx = g.x if direction == 0 else _reverse_in_time(g.x, s.lengths)
                d_input = dx if d_input is None else d_input + dx
                dh0[i] = g.h0
                if dc0 is not None:
                    dc0[i] = g.c0
                sfx = _suffix(layer, direction)
                grads["weight_ih" + sfx], grads["weight_hh" + sfx] = g.weight_ih, g.weight_hh
                if g.bias_ih is not None:
                    grads["bias_ih" + sfx] = g.bias_ih
                if g.bias_hh is not None:
                    grads["bias_hh" + sfx] = g.bias_hh
                if g.weight_hr is not None:
                    grads["weight_hr" + sfx] = g.weight_hr
            if s.masks[layer] is not None:
                d_input = d_input * s.masks[layer]
            d_layer = d_input
        params = {name: grads[name] for name in self._params}  # torch's order
        dx = self._to_user_layout(d_layer, unbatched)
        if unbatched:
            dh0 = dh0[:, 0]
            dc0 = None if dc0 is None else dc0[:, 0]
        return LayerGradients(dx, dh0, dc0, params)

    def step(self, x, h=None, c=None, *, h_out=None, c_out=None):
        """One time step: x (B, input_size) -> new h (or (h, c) for LSTM).

        One-layer, one-direction layer: h, c (B, hidden_size), and h_out /
        c_out may be the very arrays h / c (update in place). A stack (one
        direction): h, c (num_layers, B, hidden_size), each layer's new state
        feeding the next; returns new arrays. A bidirectional layer cannot
        step: its reverse direction needs the whole sequence. Not for an
        LSTM with proj_size (NotImplementedError).
        """
        self._no_projection("step()")
        if self._single:
            return F.step(self.descriptor, x, *self._layer_params(0, 0), h, c, backend=self.backend,
                          h_out=h_out, c_out=c_out)
        if self.bidirectional:
            raise ValueError("a bidirectional layer cannot be stepped: its reverse direction "
                             "reads the sequence from its end (run forward over the window)")
        if h_out is not None or c_out is not None:
            raise ValueError("h_out / c_out are only taken by a one-layer layer's step")
        spec = self.descriptor
        x = v.as_input("x", x, 2, self.dtype, "the layer")
        B = x.shape[0]
        h = self._stacked_state("h", h, self.num_layers, B, False)
        c = self._stacked_state("c", c, self.num_layers, B, False) if spec.has_cell_state \
            else self._no_cell_state("c", c)
        new_h = np.empty_like(h)
        new_c = np.empty_like(c) if c is not None else None
        layer_input = x
        for layer in range(self.num_layers):
            r = F.step(self.descriptor, layer_input, *self._layer_params(layer, 0), h[layer],
                       None if c is None else c[layer], backend=self.backend)
            if spec.has_cell_state:
                new_h[layer], new_c[layer] = r
            else:
                new_h[layer] = r
            layer_input = new_h[layer]
        return (new_h, new_c) if spec.has_cell_state else new_h

    def stream(self, batch: int = 1, h0=None, c0=None) -> _stream.Stream:
        """A :class:`fastrnn.stream.Stream` stepping this one-layer,
        one-direction layer one input at a time.

        batch: rows per step; h0, c0: (batch, hidden_size) initial state,
        zeros if None (c0: LSTM only). ``s(x)`` with x (batch, input_size)
        advances the state in place and returns ``s.h`` (the same array every
        call); ``s.c`` holds the LSTM cell state. The parameters are copied
        now: later changes to this layer are not seen by the stream. On the
        C backend the weights are packed once and a step costs about a
        microsecond; on numba / numpy the same interface runs through
        :func:`fastrnn.functional.step`. A stacked layer steps with
        :meth:`step`.
        """
        self._no_projection("stream()")
        if not self._single:
            raise ValueError("stream() runs a one-layer, one-direction layer; step a stack with "
                             "step(x, h) (h: (num_layers, batch, hidden_size))")
        return _stream.create(self.descriptor, *self._layer_params(0, 0), batch=batch, h0=h0, c0=c0,
                              backend=self.backend)

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name)!r}" for name, default in (
            ("num_layers", 1), ("batch_first", False), ("dropout", 0.0),
            ("bidirectional", False), ("proj_size", 0), ("reset_after", True),
            ("leak_rate", 1.0))
            if getattr(self, name, default) != default)
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, "
                f"bias={self.bias}, dtype={self.dtype.name})")


class _HiddenStateOnly(_Recurrent):
    """A layer whose cell carries h alone (no c): the signatures without c."""

    def forward(self, x, hx=None, *, h0=None, lengths=None, training: bool = False, out=None):
        return super().forward(x, hx, None, h0=h0, lengths=lengths, training=training, out=out)

    __call__ = forward
    forward.__doc__ = _Recurrent.forward.__doc__

    def step(self, x, h=None, *, h_out=None):
        return super().step(x, h, None, h_out=h_out)

    step.__doc__ = _Recurrent.step.__doc__

    def stream(self, batch: int = 1, h0=None) -> _stream.Stream:
        return super().stream(batch, h0, None)

    stream.__doc__ = _Recurrent.stream.__doc__


class RNN(_HiddenStateOnly):
    """Elman RNN, per layer and direction: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, *, dtype, seed,
    backend), as torch.nn.RNN; nonlinearity: "tanh", "relu" or "sigmoid"
    (which torch lacks).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", *args, **kwargs):
        if isinstance(num_layers, str):  # RNN(I, H, "relu"): the order before stacking
            warnings.warn("RNN(input_size, hidden_size, nonlinearity) is the order before "
                          "num_layers existed; pass nonlinearity= by keyword (torch.nn's "
                          "order is input_size, hidden_size, num_layers, nonlinearity)",
                          FutureWarning, stacklevel=2)
            num_layers, nonlinearity = 1, num_layers
        elman = {c.nonlinearity: c.name for c in cells.CELLS.values() if c.layer == "RNN"}
        if nonlinearity not in elman:
            raise ValueError(f"nonlinearity must be one of {tuple(elman)}, got {nonlinearity!r}")
        self.__dict__["nonlinearity"] = nonlinearity
        self.__dict__["cell"] = elman[nonlinearity]
        super().__init__(input_size, hidden_size, num_layers, *args, **kwargs)


class LSTM(_Recurrent):
    """LSTM, per layer and direction, with PyTorch's gate order i, f, g, o:

        [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        i, f, o = sigmoid(.), g = tanh(.), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)

    forward takes hx = (h0, c0); step returns (h, c).

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, *, dtype, seed, backend),
    as torch.nn.LSTM. proj_size = P in [1, hidden_size) projects h:
    h_t = W_hr (o tanh(c_t)), with weight_hr_l{k}[_reverse] (P, H) after
    each layer's biases, weight_hh (4H, P), h0 / h_n (num_layers*D, B, P),
    the output D*P wide, c0 / c_n H wide. With proj_size, forward and
    backward run (not yet with lengths, step or stream: NotImplementedError).
    """

    cell = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, **kwargs):
        proj_size = v.integer("proj_size", proj_size, 0)
        if proj_size and isinstance(hidden_size, int) and not isinstance(hidden_size, bool) \
                and proj_size >= hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size (as torch.nn.LSTM), "
                             f"got proj_size={proj_size}, hidden_size={hidden_size}")
        self.__dict__["proj_size"] = proj_size
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)


class GRU(_HiddenStateOnly):
    """GRU, per layer and direction, with PyTorch's gate order r, z, n and
    parameter shapes. reset_after=True (the default) is PyTorch's form, the
    reset gate applied to W_hn h + b_hn:

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h

    reset_after=False is the original GRU of Cho et al. 2014 (Keras's
    reset_after=False, oneDNN's default), r applied to h before W_hn:

        n = tanh(W_in x + b_in + W_hn (r h) + b_hn)

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, reset_after=True, *, dtype, seed, backend).
    """

    cell = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, reset_after: bool = True, **kwargs):
        reset_after = v.boolean("reset_after", reset_after)
        forms = {dict(c.layer_options).get("reset_after"): c.name
                 for c in cells.CELLS.values() if c.layer == "GRU"}
        self.__dict__["reset_after"] = reset_after
        self.__dict__["cell"] = forms[reset_after]
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)


class LeakyRNN(_HiddenStateOnly):
    """Leaky-integrator RNN (leaky tanh units, as in echo-state networks, but
    trainable), per layer and direction, with leak rate a in (0, 1]:

        u_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        h_t = (1 - a) h_{t-1} + a u_t

    a = 1 is RNN(nonlinearity="tanh") exactly; a small a makes each unit a
    slow low-pass filter of its input. One gate: torch.nn.RNN's parameter
    names and shapes (weight_ih_l0 (H, I), weight_hh_l0 (H, H), bias_ih_l0,
    bias_hh_l0 (H,), ``_reverse`` for the backward direction), initialised
    as torch's. The rate is a hyperparameter, not a parameter: it is not in
    state_dict() (torch's contract: parameters only), is not trained, and is
    the same for every layer and direction.

    LeakyRNN(input_size, hidden_size, leak_rate=1.0, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, *, dtype, seed,
    backend); leak_rate: a finite real number in (0, 1] (ValueError naming
    it otherwise). torch.nn has no such layer (no from_torch).
    """

    def __init__(self, input_size: int, hidden_size: int, leak_rate: float = 1.0,
                 num_layers: int = 1, bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, **kwargs):
        descriptor = cells.get("leaky").with_hyperparameters(leak_rate=leak_rate)
        self.__dict__["cell"] = descriptor.name
        self.__dict__["_descriptor"] = descriptor
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, **kwargs)

    @property
    def descriptor(self) -> cells.Cell:
        return self.__dict__["_descriptor"]

    @property
    def leak_rate(self) -> float:
        """a, fixed at construction (a new rate is a new layer: the C streams
        and saved results already made hold the old one)."""
        return self.descriptor.hyperparameter("leak_rate")

    @classmethod
    def from_torch(cls, module, *, dtype=None, backend=None):
        raise TypeError("torch.nn has no leaky-integrator layer to convert from; build a "
                        "LeakyRNN and load_state_dict() a torch.nn.RNN's parameters instead")
