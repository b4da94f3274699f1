"""The benchmark's peer: PyTorch's CPU modules on the very problems fastrnn runs.

Everything torch-specific in fastrnn.bench is here: importing it (it is
optional), building the torch.nn module of a cell from its descriptor
(``Cell.layer`` is the torch.nn class name, ``Cell.nonlinearity`` its
argument) holding a copy of the problem's parameters, the inference and
training-step callables, the single-step cell, the GEMM used as the machine's
reference rate, and torch's thread count; for the layer workloads
(fastrnn.bench.stacked) the stacked / bidirectional module and its packed
and padded callables. Nothing here times or prints
anything (fastrnn.bench.timing does), and torch is never imported at module
level: a caller passes the module :func:`import_torch` returned.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Tuple

import numpy as np

from fastrnn import cells

if TYPE_CHECKING:  # the types only: timing and stacked import this module
    from fastrnn.bench.stacked import LayerProblem
    from fastrnn.bench.timing import Problem

#: The peer's contender label in tables and JSON.
TORCH = "torch"
# torch.nn.RNN / RNNCell accept only these; fastrnn's other Elman cells
# (rnn_sigmoid) have no torch peer.
TORCH_NONLINEARITIES = ("tanh", "relu")
# The layer options torch.nn's modules have: its GRU is the reset_after=True form.
TORCH_LAYER_OPTIONS = {("reset_after", True)}
# The layer classes torch.nn has a module of that name for (not LeakyRNN).
TORCH_LAYERS = ("RNN", "LSTM", "GRU")


def import_torch() -> Any:
    """The torch module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_can_run(cell: str) -> bool:
    """Whether torch.nn has a module computing ``cell`` (else it is timed without a peer):
    not the sigmoid RNN, nor the original GRU (torch's GRU is reset_after=True only), nor
    the leaky integrator (no torch.nn layer)."""
    descriptor = cells.get(cell)
    return (descriptor.layer in TORCH_LAYERS
            and (descriptor.nonlinearity is None or descriptor.nonlinearity in TORCH_NONLINEARITIES)
            and set(descriptor.layer_options) <= TORCH_LAYER_OPTIONS)


def _torch_layer(torch: Any, cell: str, input_size: int, hidden_size: int,
                 suffix: str = "", **stacking: Any) -> Any:
    """torch.nn.<layer><suffix>(input_size, hidden_size[, nonlinearity], **stacking) for
    ``cell``: suffix "" gives the sequence module (torch.nn.LSTM), "Cell" the single
    step; ``stacking``: num_layers= / bidirectional= of a sequence module."""
    descriptor = cells.get(cell)
    extra = {"nonlinearity": descriptor.nonlinearity} if descriptor.nonlinearity else {}
    return getattr(torch.nn, descriptor.layer + suffix)(input_size, hidden_size, **extra,
                                                        **stacking)


def torch_module(problem: "Problem", torch: Any) -> Any:
    """torch.nn.RNN / LSTM / GRU holding a copy of the problem's parameters, in its dtype."""
    module = _torch_layer(torch, problem.cell, problem.shape.I, problem.shape.H)
    module = module.to(torch.float64 if problem.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for name, p in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           problem.params):
            getattr(module, name).copy_(torch.from_numpy(p))
    return module


def torch_callable(problem: "Problem", mode: str, torch: Any,
                   module: Any = None) -> Callable[[], object]:
    """The torch peer of :func:`fastrnn.bench.timing.fastrnn_callable` (same
    parameters, input, d_output): a no_grad forward, or a training step
    ``module(x)[0].backward(d_output)`` with ``x.requires_grad``."""
    module = torch_module(problem, torch) if module is None else module
    if mode == "inference":
        x = torch.from_numpy(problem.x)

        def infer() -> Any:
            with torch.no_grad():
                return module(x)
        return infer
    x = torch.from_numpy(problem.x).requires_grad_(True)  # dx is computed, as fastrnn does
    d_out = torch.from_numpy(problem.d_output)

    def train_step() -> None:
        # Fresh gradients each call: accumulating into old ones would add work fastrnn does not do.
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].backward(d_out)
    return train_step


def torch_layer_module(problem: "LayerProblem", torch: Any) -> Any:
    """torch.nn.RNN / LSTM / GRU with the workload's layers and directions,
    holding a copy of the problem's parameters (torch's names), in its dtype."""
    W = problem.workload
    module = _torch_layer(torch, problem.cell, W.I, W.H, num_layers=W.num_layers,
                          bidirectional=W.bidirectional)
    module = module.to(torch.float64 if problem.dtype == np.float64 else torch.float32)
    module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(p))
                            for name, p in problem.params.items()})
    return module


def torch_packed_callable(problem: "LayerProblem", lengths: np.ndarray, mode: str, torch: Any,
                          module: Any) -> Callable[[], object]:
    """torch's lengths path, packing included in every call (a model packs each
    batch): ``pack_padded_sequence(x, lengths, enforce_sorted=False)``, the
    module, ``pad_packed_sequence`` back to T steps; inference under no_grad,
    a training step ``loss = (out * d_out).sum(); loss.backward()`` with fresh
    gradients (x.requires_grad: dx is computed, as fastrnn does)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    T = problem.x.shape[0]
    t_lengths = torch.from_numpy(np.asarray(lengths, np.int64))  # CPU int64, as torch asks

    def run(x: Any) -> Any:
        packed = pack_padded_sequence(x, t_lengths, enforce_sorted=False)
        out, _ = pad_packed_sequence(module(packed)[0], total_length=T)
        return out
    if mode == "inference":
        x = torch.from_numpy(problem.x)

        def infer() -> Any:
            with torch.no_grad():
                return run(x)
        return infer
    x = torch.from_numpy(problem.x).requires_grad_(True)
    d_out = torch.from_numpy(problem.d_output)

    def train_step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        loss = (run(x) * d_out).sum()
        loss.backward()
    return train_step


def torch_padded_callable(problem: "LayerProblem", mode: str, torch: Any,
                          module: Any) -> Callable[[], object]:
    """The module on the padded x with no lengths at all (every row runs all T
    steps: a different result past each row's length, timed as the shortcut
    people take to avoid packing); inference under no_grad, or the training
    step of :func:`torch_packed_callable`."""
    if mode == "inference":
        x = torch.from_numpy(problem.x)

        def infer() -> Any:
            with torch.no_grad():
                return module(x)[0]
        return infer
    x = torch.from_numpy(problem.x).requires_grad_(True)
    d_out = torch.from_numpy(problem.d_output)

    def train_step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        loss = (module(x)[0] * d_out).sum()
        loss.backward()
    return train_step


def torch_stream_step(torch: Any, cell: str, x: np.ndarray,
                      hidden_size: int) -> Tuple[str, Callable[[], object]]:
    """(name, one-step callable) for torch.nn.<layer>Cell on one step of ``x``
    (batch, input_size), under no_grad, carrying its state from call to call;
    a call returns the new h."""
    descriptor = cells.get(cell)
    step_module = _torch_layer(torch, cell, x.shape[1], hidden_size, suffix="Cell")
    tx = torch.from_numpy(x)
    state = [torch.zeros(x.shape[0], hidden_size) for _ in descriptor.state_names]
    # The branch is taken here, once, so that the timed call does no more than torch's own.
    if descriptor.has_cell_state:
        def step() -> Any:
            with torch.no_grad():
                state[0], state[1] = step_module(tx, (state[0], state[1]))
            return state[0]
    else:
        def step() -> Any:
            with torch.no_grad():
                state[0] = step_module(tx, state[0])
            return state[0]
    return f"torch.nn.{descriptor.layer}Cell", step


def torch_matmul(torch: Any, a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    """``torch.mm`` of the two arrays (the reference GEMM rate's product)."""
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.mm(ta, tb)


@contextlib.contextmanager
def torch_threads(torch: Any, n: int) -> Iterator[None]:
    """Run the body with torch on ``n`` threads (nothing when ``torch`` is None);
    the previous count is restored afterwards, also on Ctrl-C."""
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(previous)
