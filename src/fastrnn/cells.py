"""The cell vocabulary: what each recurrent cell is, written once.

Every other part of the package - argument validation, the layer classes,
the three backends and their trainers, the C core's cell codes, the
benchmark and the ``fastrnn`` command - asks a :class:`Cell` here instead of
comparing cell names. A cell's *math* (its gate equations, forward and
backward) lives with each backend (csrc/cells/, backends/numba_loops.py,
backends/numpy_ref.py); everything else about it is on its descriptor.

Shapes, with H = hidden_size, I = input_size and G = ``cell.gates``, follow
PyTorch: weight_ih [G*H, I], weight_hh [G*H, H], bias_ih, bias_hh [G*H],
gates stacked in ``cell.gate_names`` order. The training workspace a
forward saves for backward is [T, B, ``cell.workspace`` * H], its blocks in
``cell.workspace_names`` order (docs/ARCHITECTURE.md).

How to add a cell: docs/ARCHITECTURE.md, "How to add a cell".

This module is deliberately plain data: no NumPy, no backend imports, so
that anything (the Cython layer included) can import it first.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Dict, Mapping, Optional, Tuple

__all__ = ["Cell", "CELLS", "NAMES", "get", "HyperparameterTypeError"]


class HyperparameterTypeError(TypeError, ValueError):
    """A hyperparameter of the wrong type (a bool, a string, None): a
    TypeError as for every other argument of the package, and a ValueError,
    which is what a refused hyperparameter value is (leak_rate's contract)."""


@dataclass(frozen=True)
class Cell:
    """One recurrent cell (see the module docstring for the shapes).

    name: the cell's name everywhere ("lstm"): the ``cell`` argument of the
        functional API, training layouts, saved models and the CLI.
    code: its ``frnn_cell_type`` in the C core (csrc/include/fastrnn.h), which the
        Numba backend uses too; tests check the two agree.
    gates: G, the gate blocks of weight_ih / weight_hh / the biases.
    gate_names: the blocks of a gate row in order (PyTorch's order).
    workspace: per hidden unit, the width of what a training forward saves
        for backward (W = workspace * H; 0 when the outputs suffice).
    workspace_names: those blocks, in order.
    has_cell_state: carries a cell state ``c`` besides ``h`` (LSTM): c0 / c_n
        / d_c_n / dc0 exist only for such cells.
    separate_hidden_grad: the gradients w.r.t. the input-side and the
        hidden-side pre-activations differ (GRU: the reset gate scales the
        hidden side of n), so backward keeps both.
    layer: the fastrnn / torch.nn layer class that runs it ("RNN", "LSTM",
        "GRU"), with ``nonlinearity`` its argument for the Elman cells.
    layer_options: (argument, value) pairs that select this cell among those
        of its ``layer`` class: the GRUs' ``reset_after`` (True: PyTorch's
        form, r applied after W_hn; False: the original of Cho et al. 2014).
    hyperparameters: (name, value) pairs of the cell's own settings beyond
        the weights: the leaky cell's ("leak_rate", a). The CELLS entry holds
        the defaults; ``with_hyperparameters`` gives a copy holding others,
        which every backend, the trainer and the layers then run (the C
        core gets them in its ``frnn_cell_desc``).
    equations: the cell's update, written out (``fastrnn info`` prints it).
    """

    name: str
    code: int
    gates: int
    gate_names: Tuple[str, ...]
    workspace: int
    workspace_names: Tuple[str, ...]
    has_cell_state: bool
    separate_hidden_grad: bool
    layer: str
    nonlinearity: Optional[str] = None
    layer_options: Tuple[Tuple[str, object], ...] = ()
    hyperparameters: Tuple[Tuple[str, float], ...] = ()
    equations: str = ""

    def with_hyperparameters(self, **values) -> "Cell":
        """A copy of this cell holding ``values`` for some of its
        hyperparameters (the others keep this cell's values), each checked:
        ValueError for a name the cell does not have, or a value outside its
        range (leak_rate: a finite real number in (0, 1]; NaN refused), and
        HyperparameterTypeError (a TypeError and a ValueError) for a value
        that is no real number (bools and strings included)."""
        known = dict(self.hyperparameters)
        for name, value in values.items():
            if name not in known:
                raise ValueError(
                    f"cell {self.name!r} has no hyperparameter {name!r}; its hyperparameters "
                    f"are {tuple(known) or 'none'}")
            known[name] = _check_hyperparameter(name, value)
        return replace(self, hyperparameters=tuple(known.items()))

    def hyperparameter(self, name: str) -> float:
        """The value of hyperparameter ``name`` (ValueError naming the cell's
        hyperparameters if it has no such one)."""
        known = dict(self.hyperparameters)
        if name not in known:
            raise ValueError(f"cell {self.name!r} has no hyperparameter {name!r}; its "
                             f"hyperparameters are {tuple(known) or 'none'}")
        return known[name]

    @property
    def hyperparameter_values(self) -> Dict[str, float]:
        """The hyperparameters as a new dict ({} for most cells)."""
        return dict(self.hyperparameters)

    @property
    def label(self) -> str:
        """The name, with the hyperparameters where they differ from the
        registered defaults: "leaky(leak_rate=0.3)"; for messages and reprs."""
        default = CELLS.get(self.name)
        if default is None or self.hyperparameters == default.hyperparameters:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters) + ")"

    def gate_rows(self, hidden_size: int) -> int:
        """G * H: the rows of weight_ih and weight_hh, the length of a bias."""
        return self.gates * hidden_size

    def workspace_width(self, hidden_size: int) -> int:
        """W: the last dimension of the training workspace [T, B, W]."""
        return self.workspace * hidden_size

    @property
    def layer_arguments(self) -> Dict[str, object]:
        """The keyword arguments of ``layer`` that select this cell: the Elman
        cells' nonlinearity, the GRUs' reset_after (``layer_options``)."""
        arguments: Dict[str, object] = dict(self.layer_options)
        if self.nonlinearity is not None:
            arguments["nonlinearity"] = self.nonlinearity
        return arguments

    @property
    def state_names(self) -> Tuple[str, ...]:
        """The recurrent state a step carries: ("h",) or ("h", "c")."""
        return ("h", "c") if self.has_cell_state else ("h",)

    def parameter_shapes(self, input_size: int, hidden_size: int) -> Dict[str, tuple]:
        """PyTorch's parameter names and shapes for one layer of this cell."""
        GH = self.gate_rows(hidden_size)
        return {"weight_ih": (GH, input_size), "weight_hh": (GH, hidden_size),
                "bias_ih": (GH,), "bias_hh": (GH,)}

    def __str__(self) -> str:
        return self.name


_ELMAN = "h_t = {act}(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)"

# Each hyperparameter's range, (low, high] (open below, closed above).
_HYPERPARAMETER_RANGES: Dict[str, Tuple[float, float]] = {"leak_rate": (0.0, 1.0)}


def _check_hyperparameter(name: str, value) -> float:
    """``value`` as a float if it is a finite real number in the range of
    ``name`` (bools are not numbers), else ValueError saying what was expected."""
    low, high = _HYPERPARAMETER_RANGES[name]
    what = f"a finite real number in ({low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise HyperparameterTypeError(
            f"{name} must be {what}, got {type(value).__name__} {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float range (10**400)
        x = math.inf
    if not (math.isfinite(x) and low < x <= high):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return x

CELLS: Dict[str, Cell] = {c.name: c for c in (
    Cell("rnn_tanh", 0, 1, ("h",), 0, (), False, False, "RNN", "tanh",
         equations=_ELMAN.format(act="tanh")),
    Cell("rnn_relu", 1, 1, ("h",), 0, (), False, False, "RNN", "relu",
         equations=_ELMAN.format(act="relu")),
    Cell("rnn_sigmoid", 2, 1, ("h",), 0, (), False, False, "RNN", "sigmoid",
         equations=_ELMAN.format(act="sigmoid")),
    Cell("lstm", 3, 4, ("i", "f", "g", "o"), 5, ("i", "f", "g", "o", "c"), True, False, "LSTM",
         equations="[i f g o] = x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh; "
                   "i, f, o = sigmoid(.), g = tanh(.); c_t = f c_(t-1) + i g; "
                   "h_t = o tanh(c_t)"),
    Cell("gru", 4, 3, ("r", "z", "n"), 4, ("r", "z", "n", "hn"), False, True, "GRU",
         layer_options=(("reset_after", True),),
         equations="r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); "
                   "z = sigmoid(W_iz x + b_iz + W_hz h + b_hz); "
                   "n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h_t = (1 - z) n + z h_(t-1)"),
    # The original GRU (Cho et al. 2014, Keras reset_after=False, oneDNN's
    # default): r scales h before W_hn. Its gate gradients are the same on
    # the input and the hidden side (separate_hidden_grad False); W_hn's
    # gradient reads the workspace's rh = r h_(t-1) instead of h_(t-1).
    Cell("gru_original", 5, 3, ("r", "z", "n"), 4, ("r", "z", "n", "rh"), False, False, "GRU",
         layer_options=(("reset_after", False),),
         equations="r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); "
                   "z = sigmoid(W_iz x + b_iz + W_hz h + b_hz); "
                   "n = tanh(W_in x + b_in + W_hn (r h) + b_hn); h_t = (1 - z) n + z h_(t-1)"),
    # The leaky integrator (echo-state networks' leaky neurons, trainable
    # here): a = leak_rate in (0, 1], a = 1 being rnn_tanh. The backward
    # needs tanh's output u_t, which h_t is not when a < 1, so it is saved.
    Cell("leaky", 6, 1, ("h",), 1, ("u",), False, False, "LeakyRNN",
         hyperparameters=(("leak_rate", 1.0),),
         equations="u_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh); "
                   "h_t = (1 - a) h_(t-1) + a u_t, a = leak_rate in (0, 1]"),
)}

#: Every cell's name, in the order of the C core's codes.
NAMES: Tuple[str, ...] = tuple(CELLS)


def get(cell) -> Cell:
    """The descriptor for ``cell`` (a name or a Cell); ValueError naming the
    known cells for anything else."""
    if isinstance(cell, Cell):
        return cell
    try:
        return CELLS[cell]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        raise ValueError(f"cell must be one of {NAMES}, got {cell!r}") from None

