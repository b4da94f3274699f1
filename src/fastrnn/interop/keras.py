"""Keras 3 recurrent weights into fastrnn layers and back.

What it is: the conversion of Keras's ``LSTM``, ``GRU`` (``reset_after=True``,
and ``reset_after=False``, the original GRU), ``SimpleRNN``
(tanh / relu / sigmoid), a ``Sequential`` stack of them and the
``Bidirectional`` wrapper (``merge_mode="concat"``) into
``fastrnn.LSTM / GRU / RNN`` with ``num_layers`` / ``bidirectional`` and
torch's parameter names, from a Keras layer object (:func:`from_keras`) or
from its ``get_weights()`` list (:func:`from_keras_weights`), and back into
``set_weights`` lists (:func:`to_keras_weights`) or built Keras objects
(:func:`to_keras`); plus :func:`lengths_from_mask` and :func:`reverse_time`,
which map Keras's masks and ``go_backwards`` onto fastrnn's ``lengths``.

What it deliberately is not: a Keras runtime. Nothing here runs Keras;
``keras`` is imported only by the functions that take or build Keras objects
(it is an optional dependency). Training-time settings that do not change a
trained layer's outputs (``dropout``, ``recurrent_dropout``, regularizers,
constraints, initializers, ``unit_forget_bias``, ``stateful``, ``unroll``)
are not carried over; the fastrnn layer has ``dropout=0``.

Layouts (H = units, I = input features; Keras multiplies ``x @ kernel``,
torch ``W_ih @ x``, so every matrix is transposed):

=============  ==============================  ==============================
Keras          weights (``get_weights()``)     fastrnn / torch
=============  ==============================  ==============================
LSTM           kernel (I, 4H), recurrent       weight_ih (4H, I), weight_hh
               kernel (H, 4H), bias (4H,);     (4H, H), bias_ih = bias,
               gates i, f, c, o                bias_hh = 0; gates i, f, g, o
GRU,           kernel (I, 3H), recurrent       weight_ih (3H, I), weight_hh
reset_after=   kernel (H, 3H), bias (2, 3H)    (3H, H), bias_ih = bias[0],
True           (input, recurrent); gates       bias_hh = bias[1]; gates
               z, r, h                         r, z, n (blocks permuted)
GRU,           as above, bias (3H,)            GRU(reset_after=False):
reset_after=                                   bias_ih = bias, bias_hh = 0
False
SimpleRNN      kernel (I, H), recurrent        RNN(nonlinearity=activation):
               kernel (H, H), bias (H,)        bias_ih = bias, bias_hh = 0
=============  ==============================  ==============================

Keras's LSTM and SimpleRNN (and GRU without reset_after) have one bias per
gate where torch has two that always add up (``b_ih + b_hh``), so an import
puts Keras's bias in ``bias_ih`` and zeros in ``bias_hh``, and an export
writes their sum (an import followed by an export gives Keras's arrays back
bit for bit; an export followed by an import gives the same layer with the
two biases folded into ``bias_ih``). The GRU with ``reset_after=True`` has
both biases, since its reset gate multiplies ``W_hn h + b_hn`` alone: those
two map one to one. ``use_bias=False`` is ``bias=False``.

The equations agree exactly: Keras's GRU is ``h_t = z h_{t-1} + (1 - z) hh``
with ``hh = tanh(x W_h + b_h + r (h U_h + b_hh))``, torch's
``h_t = (1 - z) n + z h_{t-1}`` with the same ``n``; Keras's LSTM with its
default ``activation="tanh"`` and ``recurrent_activation="sigmoid"`` (the
Keras 3 defaults; Keras 2 defaulted to ``hard_sigmoid``) is torch's LSTM.
Any other activation is refused by name.

Masks, ``go_backwards`` and where the semantics differ. Keras masks steps;
fastrnn takes per-row ``lengths`` (torch's packed sequences). A mask whose
every row is a run of True followed by False (trailing padding, what
``Masking`` on end-padded sequences gives) is ``lengths_from_mask(mask)``;
any other mask (a gap in the middle, leading padding) has no lengths and is
refused. With such a mask:

* the final states (``return_state``) agree: both are each row's state after
  its last valid step;
* the outputs agree on the valid steps only: past a row's length a plain
  Keras layer repeats its last valid output (Keras carries the state and the
  output through masked steps) where fastrnn writes zeros
  (``Bidirectional`` with ``return_sequences=True`` writes zeros too);
* ``Bidirectional``'s backward layer reads the whole padded sequence
  reversed, skipping the leading masked steps with its initial state, which
  is exactly fastrnn's reverse direction, started at each row's last valid
  step: the two agree on the valid steps and the final states.

A lone layer with ``go_backwards=True`` reads its input from the end and
returns its outputs in that reversed order (Keras does not turn them back).
fastrnn has no such one-direction layer; ``from_keras(layer,
reverse_input=True)`` converts its weights into an ordinary layer, which
computes the Keras layer's results when it is run on ``reverse_time(x)``:
without a mask its outputs are the Keras outputs; with lengths L (from
``lengths_from_mask``) on ``reverse_time(x, L)`` its output step j is the
Keras output at step T - L + j (Keras runs the padding first, holding its
initial state), and the final states agree.

Shapes at the boundary: Keras is batch-major, so :func:`from_keras` returns
a ``batch_first=True`` layer (x (batch, T, features), lengths (batch,)),
which takes the very arrays the Keras layer does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .. import _validate as v
from .. import cells
from .. import layers as _layers

__all__ = ["from_keras", "from_keras_weights", "to_keras_weights", "to_keras",
           "lengths_from_mask", "reverse_time"]

# Keras's recurrent layers by class name: the fastrnn layer class (a
# Cell.layer value) and Keras's gate blocks in the order of its kernel's
# columns, named as torch names them (Keras's LSTM "c" is torch's "g", its GRU
# "h" torch's "n"). The permutation between the two orders comes from the
# cell descriptor's gate_names, never from a cell name.
_KERAS_GATES = {
    "LSTM": ("LSTM", ("i", "f", "g", "o")),
    "GRU": ("GRU", ("z", "r", "n")),
    "SimpleRNN": ("RNN", ("h",)),
}
_LAYER_CLASSES = {"RNN": _layers.RNN, "LSTM": _layers.LSTM, "GRU": _layers.GRU}
# the activations each Keras layer must have to be the fastrnn cell
_ELMAN_ACTIVATIONS = tuple(c.nonlinearity for c in cells.CELLS.values() if c.layer == "RNN")


@dataclass(frozen=True)
class _KerasConfig:
    """What identifies one Keras recurrent layer's math (not its sizes)."""

    kind: str                       # "LSTM", "GRU" or "SimpleRNN"
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"   # LSTM / GRU only
    use_bias: bool = True
    reset_after: bool = True                # GRU only

    def check(self) -> None:
        """Refuse, by argument name, what no fastrnn cell computes."""
        if self.kind not in _KERAS_GATES:
            raise ValueError(f"layer must be a Keras LSTM, GRU or SimpleRNN, got {self.kind!r}")
        if self.kind == "SimpleRNN":
            if self.activation not in _ELMAN_ACTIVATIONS:
                raise ValueError(f"activation must be one of {_ELMAN_ACTIVATIONS} for a "
                                 f"SimpleRNN (fastrnn.RNN's nonlinearity), got "
                                 f"{self.activation!r}")
            return
        if self.activation != "tanh":
            raise ValueError(f"activation must be 'tanh' for a Keras {self.kind} (fastrnn's "
                             f"{self.kind} computes tanh), got {self.activation!r}")
        if self.recurrent_activation != "sigmoid":
            raise ValueError(f"recurrent_activation must be 'sigmoid' for a Keras {self.kind} "
                             f"(fastrnn's gates are logistic sigmoids; Keras 2's default "
                             f"'hard_sigmoid' differs), got {self.recurrent_activation!r}")

    @property
    def cell(self) -> cells.Cell:
        """The fastrnn cell: its layer class, the Elman cells' nonlinearity
        and, where descriptors carry it (``layer_options``), the GRU's
        reset_after (descriptors without it are the reset_after=True form)."""
        layer = _KERAS_GATES[self.kind][0]
        for spec in cells.CELLS.values():
            options = dict(getattr(spec, "layer_options", ()))
            if spec.layer == layer and (layer != "RNN" or spec.nonlinearity == self.activation) \
                    and (layer != "GRU" or options.get("reset_after", True) == self.reset_after):
                return spec
        if layer == "GRU":  # this fastrnn has one GRU: the shapes and gates are the same
            return next(spec for spec in cells.CELLS.values() if spec.layer == layer)
        raise AssertionError(f"no fastrnn cell for a Keras {self.kind}")  # unreachable

    @property
    def two_biases(self) -> bool:
        """Keras keeps both biases (GRU reset_after=True): bias (2, 3H)."""
        return self.kind == "GRU" and self.reset_after

    def permutation(self) -> List[int]:
        """perm[k]: the Keras gate block that torch's block k is."""
        keras_order = _KERAS_GATES[self.kind][1]
        return [keras_order.index(name) for name in self.cell.gate_names]


# -- conversion of one layer and direction ------------------------------------
def _blocks(a: np.ndarray, perm: Sequence[int], H: int, axis: int) -> np.ndarray:
    """a's gate blocks of width H along axis, in the order perm."""
    return np.concatenate([np.take(a, np.arange(g * H, (g + 1) * H), axis=axis) for g in perm],
                          axis=axis)


def _keras_to_torch(cfg: _KerasConfig, arrays: list, where: str, input_size: int,
                    hidden_size: int, dtype: np.dtype) -> dict:
    """One Keras layer's [kernel, recurrent_kernel, (bias)] as torch's four
    arrays (bias_ih / bias_hh absent without a bias), shapes checked."""
    G, H = cfg.cell.gates, hidden_size
    names = ["kernel", "recurrent_kernel"] + (["bias"] if cfg.use_bias else [])
    bias_shape = (2, G * H) if cfg.two_biases else (G * H,)
    want = {"kernel": (input_size, G * H), "recurrent_kernel": (H, G * H), "bias": bias_shape}
    for name, a in zip(names, arrays):
        if a.shape != want[name]:
            raise ValueError(f"{where} {name} must have shape {want[name]} (a Keras "
                             f"{cfg.kind} with input size {input_size} and units {H}), "
                             f"got {a.shape}")
    perm = cfg.permutation()
    out = {"weight_ih": np.ascontiguousarray(_blocks(arrays[0], perm, H, 1).T, dtype),
           "weight_hh": np.ascontiguousarray(_blocks(arrays[1], perm, H, 1).T, dtype)}
    if cfg.use_bias:
        bias = arrays[2]
        if cfg.two_biases:
            out["bias_ih"] = np.ascontiguousarray(_blocks(bias[0], perm, H, 0), dtype)
            out["bias_hh"] = np.ascontiguousarray(_blocks(bias[1], perm, H, 0), dtype)
        else:  # one Keras bias: all of it in bias_ih (b_ih + b_hh is what the cell adds)
            out["bias_ih"] = np.ascontiguousarray(_blocks(bias, perm, H, 0), dtype)
            out["bias_hh"] = np.zeros(G * H, dtype)
    return out


def _torch_to_keras(cfg: _KerasConfig, params: dict, H: int) -> list:
    """torch's arrays of one layer and direction as Keras's weight list."""
    perm = cfg.permutation()
    inverse = [perm.index(k) for k in range(len(perm))]  # Keras block j is torch block inverse[j]
    w = [np.ascontiguousarray(_blocks(params["weight_ih"], inverse, H, 0).T),
         np.ascontiguousarray(_blocks(params["weight_hh"], inverse, H, 0).T)]
    if cfg.use_bias:
        b_ih, b_hh = params["bias_ih"], params["bias_hh"]
        if cfg.two_biases:
            w.append(np.stack([_blocks(b_ih, inverse, H, 0), _blocks(b_hh, inverse, H, 0)]))
        else:  # Keras has the one bias the cell adds: b_ih + b_hh
            w.append(_blocks(b_ih + b_hh, inverse, H, 0))
    return w


# -- weight lists -------------------------------------------------------------
def _as_weight_arrays(weights, dtype) -> tuple:
    """weights as a list of floating NumPy arrays of one dtype, and that dtype
    (``dtype`` if given: an explicit conversion the caller asked for)."""
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of arrays (a Keras layer's get_weights()), "
                        f"got {type(weights).__name__}")
    arrays = []
    for i, w in enumerate(weights):
        if hasattr(w, "detach"):  # a torch tensor (Keras's torch backend variables)
            w = w.detach().cpu().numpy()
        a = np.asarray(w)
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"weights[{i}] must be float32 or float64, got {a.dtype}")
        arrays.append(a)
    if dtype is None:
        found = {a.dtype for a in arrays}
        if len(found) > 1:
            raise TypeError(f"weights must all have one dtype, got {sorted(map(str, found))}; "
                            f"pass dtype= to convert them")
        dtype = found.pop() if found else np.dtype(np.float32)
    else:
        dtype = v.float_dtype("dtype", dtype)
    return arrays, dtype


def _build_layer(cfg: _KerasConfig, per_direction: list, num_layers: int, bidirectional: bool,
                 dtype: np.dtype, batch_first: bool, backend: Optional[str]):
    """The fastrnn layer holding per_direction[l*D + d] (torch's arrays)."""
    D = 2 if bidirectional else 1
    first = per_direction[0]
    input_size, hidden_size = first["weight_ih"].shape[1], first["weight_hh"].shape[1]
    kwargs = {}
    cls = _LAYER_CLASSES[cfg.cell.layer]
    if cls is _layers.RNN:
        kwargs["nonlinearity"] = cfg.cell.nonlinearity
    if cfg.kind == "GRU" and not cfg.reset_after:  # the original GRU (Cho et al. 2014)
        kwargs["reset_after"] = False
    layer = cls(input_size, hidden_size, num_layers=num_layers, bias=cfg.use_bias,
                batch_first=batch_first, bidirectional=bidirectional, dtype=dtype,
                backend=backend, seed=0, **kwargs)
    state = {}
    for l in range(num_layers):
        for d in range(D):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            for name, a in per_direction[l * D + d].items():
                state[name + sfx] = a
    layer.load_state_dict(state)
    return layer


def from_keras_weights(layer: str, weights, *, activation: str = "tanh",
                       recurrent_activation: str = "sigmoid", use_bias: bool = True,
                       reset_after: bool = True, num_layers: int = 1,
                       bidirectional: bool = False, dtype=None, batch_first: bool = True,
                       backend: Optional[str] = None):
    """A fastrnn layer from Keras weight arrays, in ``get_weights()`` order.

    layer: the Keras class, ``"LSTM"``, ``"GRU"`` or ``"SimpleRNN"``;
    activation / recurrent_activation / use_bias / reset_after: the Keras
    layer's arguments (checked: see the module docstring). weights: for one
    layer ``[kernel, recurrent_kernel, bias]`` (no bias with
    ``use_bias=False``); for ``bidirectional=True`` the forward layer's then
    the backward layer's (``Bidirectional.get_weights()``); for
    ``num_layers > 1`` one layer's after another
    (``Sequential.get_weights()``). Sizes come from the arrays. dtype: the
    arrays' (float32 / float64) when None, else they are converted to it.
    Returns ``fastrnn.LSTM / GRU / RNN`` (batch_first by default, as Keras).
    """
    cfg = _KerasConfig(layer if isinstance(layer, str) else repr(layer), activation,
                       recurrent_activation, v.boolean("use_bias", use_bias),
                       v.boolean("reset_after", reset_after))
    cfg.check()
    num_layers = v.integer("num_layers", num_layers, 1)
    bidirectional = v.boolean("bidirectional", bidirectional)
    batch_first = v.boolean("batch_first", batch_first)
    arrays, dtype = _as_weight_arrays(weights, dtype)
    D = 2 if bidirectional else 1
    per = 3 if cfg.use_bias else 2
    if len(arrays) != num_layers * D * per:
        raise ValueError(
            f"weights must hold {num_layers * D * per} arrays for a Keras {cfg.kind} with "
            f"num_layers={num_layers}, bidirectional={bidirectional}, use_bias={cfg.use_bias} "
            f"({per} per layer and direction: kernel, recurrent_kernel"
            f"{', bias' if cfg.use_bias else ''}), got {len(arrays)}")
    for i, a in enumerate(arrays):
        if a.ndim not in (1, 2):
            raise ValueError(f"weights[{i}] must be a matrix or a bias vector, got shape {a.shape}")
    G = cfg.cell.gates
    recurrent = arrays[1]
    if recurrent.ndim != 2 or recurrent.shape[1] != G * recurrent.shape[0]:
        raise ValueError(f"weights[1] (recurrent_kernel) must have shape (units, {G} * units) "
                         f"for a Keras {cfg.kind}, got {recurrent.shape}")
    H = recurrent.shape[0]
    if arrays[0].ndim != 2:
        raise ValueError(f"weights[0] (kernel) must have shape (input_size, {G * H}), got "
                         f"{arrays[0].shape}")
    per_direction = []
    for l in range(num_layers):
        input_size = arrays[0].shape[0] if l == 0 else D * H
        for d in range(D):
            k = (l * D + d) * per
            where = f"weights[{k}:{k + per}] (layer {l}" + (", backward" if d else "") + ")"
            per_direction.append(_keras_to_torch(cfg, arrays[k:k + per], where, input_size, H,
                                                 dtype))
    return _build_layer(cfg, per_direction, num_layers, bidirectional, dtype, batch_first,
                        backend)


# -- Keras objects ------------------------------------------------------------
def _keras():
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - only without the optional dependency
        raise ImportError("this function needs Keras 3 (pip install keras)") from exc
    return keras


def _activation_name(keras, layer, config: dict, name: str) -> str:
    """The name of a layer's activation, which must be Keras's own function:
    a custom function serialises to its __name__ (a user's ``def tanh``
    would pass a check of the config alone), so the cell's callable is
    compared with the built-in of that name."""
    value = config.get(name)
    try:
        builtin = keras.activations.get(value) if isinstance(value, str) else None
    except (ValueError, TypeError):
        builtin = None
    if builtin is None or getattr(layer.cell, name, None) is not builtin:
        raise ValueError(f"{name} must be one of Keras's built-in activations (keras."
                         f"activations), got a custom one: {value!r}")
    return value


def _layer_config(keras, layer, where: str) -> _KerasConfig:
    """The math-defining config of one built Keras recurrent layer."""
    for kind in _KERAS_GATES:
        if isinstance(layer, getattr(keras.layers, kind)):
            break
    else:
        raise ValueError(f"{where} must be a Keras LSTM, GRU or SimpleRNN (or a Bidirectional "
                         f"or Sequential of them), got {type(layer).__name__}")
    config = layer.get_config()
    cfg = _KerasConfig(kind, _activation_name(keras, layer, config, "activation"),
                       _activation_name(keras, layer, config, "recurrent_activation")
                       if kind != "SimpleRNN" else "sigmoid", bool(config["use_bias"]),
                       bool(config.get("reset_after", True)))
    try:
        cfg.check()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not layer.built:
        raise ValueError(f"{where} has no weights yet: build it (call it on an input or "
                         f"layer.build((None, None, features))) first")
    return cfg


def _unpack_keras(keras, obj, reverse_input: bool):
    """(config, num_layers, bidirectional, flat weight list) of a Keras object."""
    if isinstance(obj, keras.layers.Bidirectional):
        return _unpack_bidirectional(keras, obj, "layer")
    if isinstance(obj, keras.Sequential):
        stack = [l for l in obj.layers if not isinstance(l, keras.layers.Masking)]
        if not stack:
            raise ValueError("layer is a Sequential without recurrent layers")
        found, weights = [], []
        for i, sub in enumerate(stack):
            where = f"layer.layers[{obj.layers.index(sub)}]"
            if isinstance(sub, keras.layers.Bidirectional):
                cfg, _, bidi, w = _unpack_bidirectional(keras, sub, where)
                units = sub.forward_layer.units
            else:
                cfg, bidi, w, units = _layer_config(keras, sub, where), False, sub.get_weights(), \
                    getattr(sub, "units", None)
                if sub.go_backwards:
                    raise ValueError(f"{where} has go_backwards=True: a stack of fastrnn "
                                     f"layers runs every layer forward in time (a reversed "
                                     f"layer inside a stack has no fastrnn equivalent)")
            inner = sub.forward_layer if bidi else sub
            if i < len(stack) - 1 and not inner.return_sequences:
                raise ValueError(f"{where} must have return_sequences=True: the next layer of "
                                 f"the stack reads its whole output sequence")
            found.append((cfg, bidi, units))
            weights += w
        if any(f != found[0] for f in found):
            seen = [(c.kind, units, c.activation, c.use_bias, bidi) for c, bidi, units in found]
            raise ValueError(f"layer's recurrent layers must all be alike (one class, units, "
                             f"activations, bias, Bidirectional or not) to be one fastrnn "
                             f"stack, got (class, units, activation, use_bias, "
                             f"bidirectional) = {seen}")
        return found[0][0], len(stack), found[0][1], weights
    cfg = _layer_config(keras, obj, "layer")
    if obj.go_backwards and not reverse_input:
        raise ValueError("layer has go_backwards=True: it reads its input from the end, which "
                         "a one-direction fastrnn layer does not; pass reverse_input=True and "
                         "run the result on reverse_time(x, lengths) (see the module "
                         "docstring), or wrap the layer's pair in Bidirectional")
    return cfg, 1, False, obj.get_weights()


def _unpack_bidirectional(keras, obj, where):
    if obj.merge_mode != "concat":
        raise ValueError(f"{where}.merge_mode must be 'concat' (fastrnn's bidirectional "
                         f"output is the two directions side by side), got {obj.merge_mode!r}")
    fw = _layer_config(keras, obj.forward_layer, f"{where}.forward_layer")
    bw = _layer_config(keras, obj.backward_layer, f"{where}.backward_layer")
    if fw != bw or obj.forward_layer.units != obj.backward_layer.units:
        raise ValueError(f"{where}'s forward_layer and backward_layer must be alike (class, "
                         f"units, activations, bias) to be one fastrnn bidirectional layer")
    if obj.forward_layer.go_backwards or not obj.backward_layer.go_backwards:
        raise ValueError(f"{where}.forward_layer must run forward and its backward_layer "
                         f"backward (go_backwards=True)")
    return fw, 1, True, obj.get_weights()


def from_keras(layer, *, dtype=None, batch_first: bool = True, reverse_input: bool = False,
               backend: Optional[str] = None):
    """A fastrnn layer computing what a built Keras recurrent layer computes.

    layer: a Keras ``LSTM``, ``GRU`` or ``SimpleRNN``; a ``Bidirectional`` of
    one (merge_mode "concat"); or a ``Sequential`` of alike ones (every layer
    but the last with ``return_sequences=True``; ``Masking`` layers are
    skipped: turn the mask into lengths with :func:`lengths_from_mask`).
    dtype: the weights' (float32 / float64) when None, else converted to it.
    reverse_input: accept a lone layer with ``go_backwards=True`` (run the
    result on :func:`reverse_time` of the input). Returns ``fastrnn.LSTM /
    GRU / RNN`` with ``num_layers`` and ``bidirectional``, batch_first as
    Keras by default.
    """
    keras = _keras()
    cfg, num_layers, bidirectional, weights = _unpack_keras(keras, layer,
                                                            v.boolean("reverse_input",
                                                                      reverse_input))
    return from_keras_weights(cfg.kind, list(weights), activation=cfg.activation,
                              recurrent_activation=cfg.recurrent_activation,
                              use_bias=cfg.use_bias, reset_after=cfg.reset_after,
                              num_layers=num_layers, bidirectional=bidirectional, dtype=dtype,
                              batch_first=batch_first, backend=backend)


def _fastrnn_config(layer) -> _KerasConfig:
    if not isinstance(layer, tuple(_LAYER_CLASSES.values())):
        raise TypeError(f"layer must be a fastrnn.RNN, LSTM or GRU, got {type(layer).__name__}")
    spec = cells.get(layer.cell)
    kind = next(k for k, (cls, _) in _KERAS_GATES.items() if cls == spec.layer)
    reset_after = bool(getattr(layer, "reset_after", True))
    cfg = _KerasConfig(kind, spec.nonlinearity or "tanh", "sigmoid", bool(layer.bias),
                       reset_after)
    cfg.check()
    return cfg


def to_keras_weights(layer) -> list:
    """A fastrnn layer's parameters as Keras's ``set_weights`` list.

    The order is ``get_weights()``'s of the Keras equivalent: per layer (a
    ``Sequential``'s order) and per direction (``Bidirectional``'s: forward,
    then backward), ``[kernel, recurrent_kernel, bias]`` (no bias for a
    ``bias=False`` layer); LSTM / SimpleRNN biases are ``bias_ih + bias_hh``.
    New arrays in the layer's dtype.
    """
    cfg = _fastrnn_config(layer)
    params, H = layer.named_parameters(), layer.hidden_size
    out = []
    for l in range(layer.num_layers):
        for d in range(layer.num_directions):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            one = {n: params[n + sfx] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                   if n + sfx in params}
            out += _torch_to_keras(cfg, one, H)
    return out


def to_keras(layer, *, return_sequences: bool = True, return_state: bool = False):
    """A built Keras object with a fastrnn layer's weights: a ``LSTM`` /
    ``GRU`` / ``SimpleRNN`` for a one-layer, one-direction layer, a
    ``Bidirectional`` (concat) for a bidirectional one, a ``Sequential`` of
    them for a stack (the last layer with ``return_sequences``; return_state
    is refused for a stack, which Sequential cannot return). Keras's dtype is
    the layer's. The Keras object is batch-major, whatever the layer's
    batch_first."""
    keras = _keras()
    cfg = _fastrnn_config(layer)
    return_sequences = v.boolean("return_sequences", return_sequences)
    return_state = v.boolean("return_state", return_state)
    if layer.num_layers > 1 and return_state:
        raise ValueError("return_state=True cannot be given to a stack: a Keras Sequential "
                         "returns one output (convert a one-layer layer to have the states)")
    dtype, H, I = layer.dtype.name, layer.hidden_size, layer.input_size
    options = {"use_bias": cfg.use_bias, "dtype": dtype, "activation": cfg.activation}
    if cfg.kind != "SimpleRNN":
        options["recurrent_activation"] = cfg.recurrent_activation
    if cfg.kind == "GRU":
        options["reset_after"] = cfg.reset_after

    def one(sequences):
        make = getattr(keras.layers, cfg.kind)
        inner = make(H, return_sequences=sequences, return_state=return_state, **options)
        if layer.bidirectional:
            return keras.layers.Bidirectional(inner, merge_mode="concat", dtype=dtype)
        return inner

    weights = to_keras_weights(layer)
    if layer.num_layers == 1:
        out = one(return_sequences)
        out.build((None, None, I))
    else:
        out = keras.Sequential([keras.Input((None, I), dtype=dtype)] + [
            one(return_sequences or l < layer.num_layers - 1) for l in range(layer.num_layers)])
    out.set_weights(weights)
    return out


# -- masks and reversed inputs --------------------------------------------------
def lengths_from_mask(mask) -> np.ndarray:
    """Per-row lengths (int64, (batch,)) of a Keras mask (batch, T) that is
    trailing padding: each row True (1) for its first L steps, False after.
    Any other mask has no lengths: ValueError naming the first such row.
    ``Masking(mask_value)`` on x is ``np.any(x != mask_value, axis=-1)``."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must have shape (batch, T), got {m.shape}")
    if m.dtype != np.bool_:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("mask must be boolean (or 0 / 1), got other values")
        m = m.astype(bool)
    lengths = m.sum(axis=1).astype(np.int64)
    trailing = np.arange(m.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((m != trailing).any(axis=1))
    if bad.size:
        raise ValueError(f"mask row {bad[0]} is not trailing padding (True for the first steps, "
                         f"False after): {m[bad[0]].astype(int).tolist()}; fastrnn's lengths "
                         f"cannot express a mask with gaps or leading padding")
    return lengths


def reverse_time(x, lengths=None, *, batch_first: bool = True) -> np.ndarray:
    """x with each row's valid steps in reverse order (all T steps without
    lengths; with them row b's first lengths[b] steps, the padding left where
    it is): the input on which a layer from ``from_keras(...,
    reverse_input=True)`` computes what the Keras ``go_backwards`` layer does.
    x: (batch, T, features) (batch_first) or (T, batch, features)."""
    batch_first = v.boolean("batch_first", batch_first)
    x = np.asarray(x)
    if x.ndim != 3:
        layout = "(batch, T, features)" if batch_first else "(T, batch, features)"
        raise ValueError(f"x must have shape {layout}, got {x.shape}")
    tm = x.transpose(1, 0, 2) if batch_first else x
    T, B = tm.shape[0], tm.shape[1]
    lengths = v.lengths(lengths, B, T)
    out = _layers._reverse_in_time(tm, lengths)
    return np.ascontiguousarray(out.transpose(1, 0, 2) if batch_first else out)
