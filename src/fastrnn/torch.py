"""fastrnn.torch: torch.nn.RNN / LSTM / GRU that run on fastrnn's C core.

What it is: ``fastrnn.torch.RNN``, ``LSTM`` and ``GRU`` are torch.nn
modules (derived from ``torch.nn.RNNBase``, with the rest of torch.nn.RNN /
LSTM / GRU taken verbatim). They keep torch's constructor, parameters (the
same ``nn.Parameter`` objects under the same names, so ``state_dict``,
optimizers, ``repr`` and ``flatten_parameters`` are torch's own), forward
signature and outputs (a tensor or a ``PackedSequence`` in and out, ``h0``
or ``(h0, c0)``, ``batch_first``, unbatched input, dropout between layers in
training), and replace only the computation: each layer and direction is one
call of the C core (fastrnn.backends.c) on the tensors' own CPU buffers
(NumPy views of the storage: contiguous time-major input, states and the
parameters are read in place; batch-first input is transposed and packed
input padded, one copy each), and its gradient is one C call of full BPTT.
Eagerly that pair runs as a ``torch.autograd.Function``; the same two
functions are registered through ``torch.library`` as the operators
``torch.ops.fastrnn.recurrent_forward`` / ``recurrent_backward`` with fake
(shape) implementations and their autograd formula, which is what
``torch.compile(fullgraph=True)`` records: one node per layer and direction.
Stacks, directions, dropout and PackedSequence handling are ordinary torch
operations around them (so autograd differentiates those for free), in the
order torch's own RNN runs them: the dropout masks are drawn from torch's
default generator exactly as torch.nn draws them, so ``torch.manual_seed``
gives the same masks as the torch module. Nothing is kept for backward when
no input of a layer requires grad (``no_grad``, inference, frozen weights).

``convert(model)`` turns every torch.nn.RNN / LSTM / GRU inside a model into
these classes in place (the same module objects, the same parameters).

Equations (per layer and direction; torch's gate orders i, f, g, o and r, z, n)::

    Elman:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM:   [i f g o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
            i, f, o = sigmoid(.), g = tanh(.), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
            (proj_size = P: h_t = W_hr (o tanh(c_t)), h P wide, c H wide)
    GRU:    r, z = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
            n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h_t = (1 - z) n + z h_{t-1}

What it deliberately is not: a second implementation of torch's semantics.
Whatever the C core cannot run - tensors on another device than the CPU,
dtypes other than float32 / float64, parameters of mixed dtypes, autocast, forward-mode AD,
``torch.func`` batching (vmap), empty sequences or batches, or the compiled
core missing - runs torch's own computation (``torch.nn.LSTM.forward`` and
the like) after one :class:`FallbackWarning` per reason per process, so the
answer is always torch's. Bad input (another dtype than the module's, wrong
state shapes, a PackedSequence whose batch does not match ``h0``) raises
the error torch raises, or a clearer one. Not supported at all:
differentiating twice (a backward with ``create_graph=True`` through a
fastrnn layer raises a RuntimeError rather than return a gradient without
its second-order part), ``torch.jit.script`` and ``torch.fx.symbolic_trace``
(which would trace into the forward's checks; torch.nn's RNNs are leaves to
it). ``torch.jit.trace`` and ``torch.export`` record the operator, so a
traced or exported module computes its new inputs.

This file needs torch >= 2.4 (``pip install "fastrnn[torch]"``); ``import
fastrnn`` never imports it.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from fastrnn import cells as _cells

if not hasattr(torch.library, "register_autograd"):  # torch.library.custom_op & co: 2.4
    raise ImportError(f"fastrnn.torch needs torch >= 2.4 (torch.library.custom_op and "
                      f"register_autograd); this is torch {torch.__version__}")

__all__ = ["RNN", "LSTM", "GRU", "convert", "FallbackWarning"]


class FallbackWarning(UserWarning):
    """A fastrnn.torch module ran torch's own computation (the message says why)."""


_warned: set = set()  # the reasons already warned about in this process


def _warn_once(reason: str) -> None:
    if reason in _warned:
        return
    _warned.add(reason)
    warnings.warn(f"fastrnn.torch: running torch's own computation: {reason} (warned once per "
                  f"reason)", FallbackWarning, stacklevel=5)  # the line calling the module


def _load_core():
    """The C backend module, or the reason it cannot be loaded."""
    try:
        from fastrnn.backends import c
    except ImportError as exc:
        return None, f"the compiled core is not available ({type(exc).__name__}: {exc})"
    return c, None


_core, _core_missing = _load_core()


# -- the operators -----------------------------------------------------------
# One layer, one direction, time-major x (T, B, I); the workspace forward
# keeps for backward is an output of the forward operator (empty when
# keep_workspace is False: inference keeps nothing), so that the pair is
# functional, as torch.library and torch.compile require.

def _array(t: Optional[Tensor]):
    """A NumPy view of a CPU tensor's buffer (a copy only if it is not contiguous)."""
    if t is None:
        return None
    if t.requires_grad:
        t = t.detach()
    return (t if t.is_contiguous() else t.contiguous()).numpy()


_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def _empty(shape, dtype):
    """(tensor, its NumPy view): a new buffer for the C core to write and
    for torch to return (allocated by NumPy: a third of torch.empty's
    overhead plus .numpy()'s, which counts at batch 1)."""
    array = np.empty(shape, _NUMPY_DTYPE[dtype])
    return torch.from_numpy(array), array


def _widths(weight_hh: Tensor, weight_hr: Optional[Tensor]) -> tuple[int, int]:
    """(H, R): the hidden size (the cell state's width) and h's, which is the
    projection's P for an LSTM with proj_size (weight_hr (P, H)), else H."""
    if weight_hr is None:
        return weight_hh.shape[1], weight_hh.shape[1]
    return weight_hr.shape[1], weight_hr.shape[0]


def _forward_impl(cell: str, x: Tensor, h0: Tensor, c0: Optional[Tensor], weight_ih: Tensor,
                  weight_hh: Tensor, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
                  weight_hr: Optional[Tensor], lengths: Optional[Tensor], keep_workspace: bool
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One layer and direction on the C core: (output (T, B, R), h_n (B, R),
    c_n (B, H) for LSTM else empty, workspace (T, B, W) when keep_workspace
    else empty), R = H, or P for an LSTM with a projection weight_hr (P, H)
    (torch's weight_hr_l{k}; None without). lengths: int64 (B,) per-row
    lengths or None; with them the output is 0 past each row's length and
    h_n is the state after each row's last step (torch's packed semantics)."""
    spec = _cells.get(cell)
    T, B, _ = x.shape
    H, R = _widths(weight_hh, weight_hr)
    dtype = x.dtype
    output, output_a = _empty((T, B, R), dtype)
    h_n, h_n_a = _empty((B, R), dtype)
    c_n, c_n_a = _empty((B, H) if spec.has_cell_state else (0,), dtype)
    workspace, workspace_a = _empty((T, B, spec.workspace_width(H)) if keep_workspace else (0,),
                                    dtype)
    if bias_ih is None or bias_hh is None:
        zeros = np.zeros(spec.gate_rows(H), _NUMPY_DTYPE[dtype])
    if weight_hr is not None:
        args = (_array(x), _array(weight_ih), _array(weight_hh), _array(weight_hr),
                zeros if bias_ih is None else _array(bias_ih),
                zeros if bias_hh is None else _array(bias_hh), _array(h0), _array(c0),
                output_a, h_n_a, c_n_a, workspace_a if keep_workspace else None)
        lengths_a = _array(lengths)
        if lengths_a is None or int(lengths_a.min()) == T:
            _core.forward_proj(cell, *args)
        else:  # no fused lengths path for projections: one C call per distinct length
            from fastrnn.functional import forward_proj_lengths
            forward_proj_lengths(_core, spec, *args, lengths_a)
        return output, h_n, c_n, workspace
    _core.forward(cell, _array(x), _array(weight_ih), _array(weight_hh),
                  zeros if bias_ih is None else _array(bias_ih),
                  zeros if bias_hh is None else _array(bias_hh), _array(h0), _array(c0),
                  output_a, h_n_a, c_n_a if spec.has_cell_state else None,
                  workspace_a if keep_workspace else None, lengths=_array(lengths))
    return output, h_n, c_n, workspace


def _backward_impl(cell: str, x: Tensor, h0: Tensor, c0: Optional[Tensor], weight_ih: Tensor,
                   weight_hh: Tensor, weight_hr: Optional[Tensor], lengths: Optional[Tensor],
                   output: Tensor, workspace: Tensor, d_output: Tensor, d_h_n: Tensor,
                   d_c_n: Optional[Tensor]
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """BPTT of :func:`_forward_impl` (which ran with keep_workspace): (dx,
    dh0, dc0 (empty without a cell state), dweight_ih, dweight_hh, dbias_ih,
    dbias_hh, dweight_hr (empty without a projection)); the bias gradients
    are formed whether or not the layer has biases (the caller drops those
    of absent ones)."""
    spec = _cells.get(cell)
    H, _ = _widths(weight_hh, weight_hr)
    GH = spec.gate_rows(H)
    dtype = x.dtype
    dx, dx_a = _empty(tuple(x.shape), dtype)
    dh0, dh0_a = _empty(tuple(h0.shape), dtype)
    dc0, dc0_a = _empty(tuple(c0.shape) if spec.has_cell_state else (0,), dtype)
    dw_ih, dw_ih_a = _empty(tuple(weight_ih.shape), dtype)
    dw_hh, dw_hh_a = _empty(tuple(weight_hh.shape), dtype)
    db_ih, db_ih_a = _empty((GH,), dtype)
    db_hh, db_hh_a = _empty((GH,), dtype)
    dw_hr, dw_hr_a = _empty(tuple(weight_hr.shape) if weight_hr is not None else (0,), dtype)
    if weight_hr is not None:
        args = (_array(x), _array(weight_ih), _array(weight_hh), _array(weight_hr), _array(h0),
                _array(c0), _array(output), _array(workspace), _array(d_output), _array(d_h_n),
                _array(d_c_n), dx_a, dw_ih_a, dw_hh_a, dw_hr_a, db_ih_a, db_hh_a, dh0_a, dc0_a)
        lengths_a = _array(lengths)
        if lengths_a is None or int(lengths_a.min()) == x.shape[0]:
            _core.backward_proj(cell, *args)
        else:
            from fastrnn.functional import backward_proj_lengths
            backward_proj_lengths(_core, cell, *args, lengths_a)
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr
    zeros = np.zeros(GH, _NUMPY_DTYPE[dtype])  # part of the contract, unread: no bias needed
    _core.backward(cell, _array(x), _array(weight_ih), _array(weight_hh), zeros, zeros,
                   _array(h0), _array(c0), _array(output),
                   _array(workspace) if spec.workspace_width(H) else None, _array(d_output),
                   _array(d_h_n), _array(d_c_n), dx_a, dw_ih_a, dw_hh_a, db_ih_a, db_hh_a,
                   dh0_a, dc0_a if spec.has_cell_state else None, lengths=_array(lengths))
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr


def _zeros_for_absent(output, h0, c0, d_output, d_h_n, d_c_n):
    """Upstream gradients autograd left out (outputs the loss does not use) as zeros."""
    return (torch.zeros_like(output) if d_output is None else d_output,
            torch.zeros_like(h0) if d_h_n is None else d_h_n,
            None if c0 is None else torch.zeros_like(c0) if d_c_n is None else d_c_n)


def _no_workspace():
    return RuntimeError("fastrnn.torch: a recurrent layer is being differentiated that kept no "
                        "workspace (no input required grad when it ran)")


def _twice():
    # The backward is not itself differentiable. Refused at once rather
    # than returning a gradient without a graph: added to another term that
    # has one, it would silently drop this layer's second-order part.
    return RuntimeError("fastrnn.torch: a backward with create_graph=True (higher-order "
                        "gradients) through a fastrnn recurrent layer is not supported; "
                        "use torch.nn's module for it")


class _Recurrent(torch.autograd.Function):
    """Eager autograd for one layer and direction: :func:`_forward_impl` and
    its BPTT, without the dispatcher round trips of the registered operator
    (about 0.1 ms a call); torch.compile traces the operator instead."""

    @staticmethod
    def forward(ctx, cell, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, lengths,
                keep_workspace):
        output, h_n, c_n, workspace = _forward_impl(cell, x, h0, c0, weight_ih, weight_hh,
                                                    bias_ih, bias_hh, weight_hr, lengths,
                                                    keep_workspace)
        ctx.mark_non_differentiable(workspace)
        ctx.cell, ctx.keep_workspace = cell, keep_workspace
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, weight_hr, lengths, output,
                              workspace)
        return output, h_n, c_n, workspace

    @staticmethod
    def backward(ctx, d_output, d_h_n, d_c_n, _d_workspace):
        return _input_grads(_backward_impl, ctx, d_output, d_h_n, d_c_n)


def _input_grads(backward, ctx, d_output, d_h_n, d_c_n):
    """The gradients of the forward's inputs, in its argument order (None
    for the cell name, absent biases / c0 / projection, lengths, the flag),
    from ``backward``: _backward_impl eagerly, its registered operator
    recurrent_backward under torch.compile (the same computation)."""
    if not ctx.keep_workspace:
        raise _no_workspace()
    if torch.is_grad_enabled():
        raise _twice()
    x, h0, c0, weight_ih, weight_hh, weight_hr, lengths, output, workspace = ctx.saved_tensors
    d_output, d_h_n, d_c_n = _zeros_for_absent(output, h0, c0, d_output, d_h_n, d_c_n)
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr = backward(
        ctx.cell, x, h0, c0, weight_ih, weight_hh, weight_hr, lengths, output, workspace,
        d_output, d_h_n, d_c_n)
    return (None, dx, dh0, dc0 if c0 is not None else None, dw_ih, dw_hh,
            db_ih if ctx.has_bias[0] else None, db_hh if ctx.has_bias[1] else None,
            dw_hr if weight_hr is not None else None, None, None)


# The same two functions as torch.library operators, for torch.compile:
# Dynamo records torch.ops.fastrnn.recurrent_forward as one node (shapes from
# the fake implementations) and AOTAutograd traces its registered gradient,
# recurrent_backward, into the backward graph.
recurrent_forward = torch.library.custom_op("fastrnn::recurrent_forward",
                                            mutates_args=())(_forward_impl)
recurrent_backward = torch.library.custom_op("fastrnn::recurrent_backward",
                                             mutates_args=())(_backward_impl)


@recurrent_forward.register_fake
def _recurrent_forward_shapes(cell, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                              lengths, keep_workspace):
    spec = _cells.get(cell)
    T, B, _ = x.shape
    H, R = _widths(weight_hh, weight_hr)
    return (x.new_empty((T, B, R)), x.new_empty((B, R)),
            x.new_empty((B, H) if spec.has_cell_state else (0,)),
            x.new_empty((T, B, spec.workspace_width(H)) if keep_workspace else (0,)))


@recurrent_backward.register_fake
def _recurrent_backward_shapes(cell, x, h0, c0, weight_ih, weight_hh, weight_hr, lengths, output,
                               workspace, d_output, d_h_n, d_c_n):
    spec = _cells.get(cell)
    GH = spec.gate_rows(_widths(weight_hh, weight_hr)[0])
    return (x.new_empty(x.shape), x.new_empty(h0.shape),
            x.new_empty(c0.shape if spec.has_cell_state else (0,)),
            x.new_empty(weight_ih.shape), x.new_empty(weight_hh.shape), x.new_empty((GH,)),
            x.new_empty((GH,)), x.new_empty(weight_hr.shape if weight_hr is not None else (0,)))


def _setup_context(ctx, inputs, output):
    (cell, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, lengths,
     keep_workspace) = inputs
    out, _, _, workspace = output
    ctx.cell, ctx.keep_workspace = cell, keep_workspace
    ctx.has_bias = (bias_ih is not None, bias_hh is not None)
    ctx.save_for_backward(x, h0, c0, weight_ih, weight_hh, weight_hr, lengths, out, workspace)


def _recurrent_forward_grad(ctx, d_output, d_h_n, d_c_n, _d_workspace):
    return _input_grads(recurrent_backward, ctx, d_output, d_h_n, d_c_n)


recurrent_forward.register_autograd(_recurrent_forward_grad, setup_context=_setup_context)


def _run_layer(*args):
    """One layer and direction: the operator under torch.compile (one graph
    node) and torch.jit.trace (one recorded call: the NumPy views would
    otherwise be traced as constants), the autograd.Function in eager mode
    (the same computation)."""
    if torch.jit.is_tracing():  # a traced graph may be differentiated later: keep it
        return recurrent_forward(*args[:-1], True)
    if _use_operator or torch.compiler.is_compiling():
        return recurrent_forward(*args)
    if not args[-1]:  # keep_workspace False: nothing to differentiate, no autograd node
        return _forward_impl(*args)
    return _Recurrent.apply(*args)


_use_operator = False  # tests set it to run eager calls through the operator


# -- the modules -------------------------------------------------------------

def _cell_computing(layer: str, **arguments) -> str:
    """The fastrnn cell that computes torch.nn's ``layer`` class called with
    ``arguments``, found through the cell descriptors (fastrnn.cells): the
    one of that layer class selected by those arguments, with no
    hyperparameters of its own (torch's modules have none)."""
    found = [c.name for c in _cells.CELLS.values()
             if c.layer == layer and c.layer_arguments == arguments and not c.hyperparameters]
    if len(found) != 1:
        raise RuntimeError(f"fastrnn.cells describes {len(found)} cells computing torch.nn."
                           f"{layer}({arguments}); expected one")
    return found[0]


#: torch.nn.RNNBase.mode -> the fastrnn cell computing it
_CELL_OF_MODE = {"RNN_TANH": _cell_computing("RNN", nonlinearity="tanh"),
                 "RNN_RELU": _cell_computing("RNN", nonlinearity="relu"),
                 "LSTM": _cell_computing("LSTM"),
                 "GRU": _cell_computing("GRU", reset_after=True)}  # torch's GRU form


def _reversed_in_time(a: Tensor, source: Optional[Tensor]) -> Tensor:
    """a (T, B, C) with each row's valid steps in reverse order (the reverse
    direction's input; its own inverse, so it maps the outputs back too).
    source: None (the whole window reverses) or (T, B, 1) int64, row b's step
    t reading step L_b - 1 - t inside its length and t (padding) past it."""
    if source is None:
        return a.flip(0)
    return a.gather(0, source.expand(-1, -1, a.shape[2]))


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class _FastrnnBase:
    """The forward shared by RNN, LSTM and GRU (mixed into torch.nn's classes,
    which hold every parameter and attribute: this class adds none, which is
    what lets :func:`convert` change a module's class in place)."""

    _torch_class: type  # the torch.nn class whose forward is the fallback

    # -- when torch's own computation runs ---------------------------------
    def _fallback_reason(self, input, hx) -> Optional[str]:
        """Why the C core cannot run this call (None: it can). Input that is
        merely wrong is not a reason: the checks of the fast path raise
        torch's errors for it."""
        if _core is None:
            return _core_missing
        data = input.data if isinstance(input, PackedSequence) else input
        if not isinstance(data, Tensor):
            return None  # the fast path's checks raise torch's error
        states = () if hx is None else tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        weights = [w for w in self._flat_weights if w is not None]
        tensors = [data, *[s for s in states if isinstance(s, Tensor)], *weights]
        compiling = torch.compiler.is_compiling()
        for t in tensors:
            if t.device.type != "cpu":
                return f"tensors on {t.device.type} (the C core runs on the CPU)"
            # Dynamo cannot trace this check (nor needs it: it traces no wrappers)
            if not compiling and torch._C._functorch.is_functorch_wrapped_tensor(t):
                return "torch.func transforms (vmap / grad wrappers)"
        weight_dtypes = {w.dtype for w in weights}
        if len(weight_dtypes) > 1:
            return (f"parameters of mixed dtypes ({', '.join(sorted(map(str, weight_dtypes)))})")
        dtype = weights[0].dtype
        if dtype not in (torch.float32, torch.float64):
            return f"dtype {dtype} (the C core computes in float32 and float64)"
        if torch.is_autocast_enabled("cpu"):
            return "autocast is enabled"
        if not compiling and torch.autograd.forward_ad._current_level >= 0 and any(
                torch.autograd.forward_ad.unpack_dual(t).tangent is not None for t in tensors):
            return "forward-mode AD (dual tensors)"
        if isinstance(input, PackedSequence):
            if data.shape[0] == 0:
                return "an empty PackedSequence"
        elif data.dim() in (2, 3):
            steps = data.shape[1 if self.batch_first and data.dim() == 3 else 0]
            rows = 1 if data.dim() == 2 else data.shape[0 if self.batch_first else 1]
            if steps == 0 or rows == 0:
                return "an empty sequence or batch"
        return None

    def forward(self, input, hx=None):
        self._update_flat_weights()
        reason = self._fallback_reason(input, hx)
        if reason is not None:
            _warn_once(reason)
            return self._torch_class.forward(self, input, hx)
        return self._fastrnn_forward(input, hx)

    # -- the C core's path ---------------------------------------------------
    def _fastrnn_forward(self, input, hx):
        has_c = self.mode == "LSTM"
        name = type(self).__name__
        D = 2 if self.bidirectional else 1
        LD, H = self.num_layers * D, self.hidden_size
        R = self.proj_size if getattr(self, "proj_size", 0) > 0 else H  # h's width
        packed = isinstance(input, PackedSequence)
        if has_c and hx is not None:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{name}: hx must be the pair (h0, c0), got {type(hx).__name__}")
            if not all(isinstance(s, Tensor) for s in hx):
                raise TypeError(f"{name}: hx must be the pair of tensors (h0, c0)")
        elif hx is not None and not isinstance(hx, Tensor):
            raise TypeError(f"{name}: hx must be a tensor (h0), got {type(hx).__name__}")
        unbatched = False
        if packed:
            x, batch_sizes, sorted_indices, unsorted_indices = input
            T, B = batch_sizes.shape[0], int(batch_sizes[0])
            if hx is not None:
                # a state whose batch is not the packed batch: torch's
                # permutation would index past it or silently drop rows
                for k, s in enumerate(hx if has_c else (hx,)):
                    if s.dim() != 3 or s.shape[1] != B:
                        what = f"hidden[{k}]" if has_c else "hidden"
                        raise RuntimeError(
                            f"Expected {what} size {(LD, B, H if k == 1 else R)}, "
                            f"got {list(s.shape)}: the PackedSequence's batch is {B}")
                hx = self.permute_hidden(hx, sorted_indices)
        else:
            x, batch_sizes, sorted_indices, unsorted_indices = input, None, None, None
            if x.dim() not in (2, 3):  # torch's messages, word for word
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.dim()}D"
                                 f"{' tensor' if name == 'RNN' else ''} instead")
            unbatched = x.dim() == 2
            if unbatched:
                x = x.unsqueeze(0 if self.batch_first else 1)
            states = () if hx is None else hx if has_c else (hx,)
            want = 2 if unbatched else 3
            if any(s.dim() != want for s in states):
                kind = "unbatched 2-D" if unbatched else "batched 3-D"
                if has_c:
                    raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D "
                                       f"but got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got "
                                   f"{hx.dim()}-D tensor")
            if unbatched and hx is not None:
                hx = tuple(s.unsqueeze(1) for s in hx) if has_c else hx.unsqueeze(1)
            B = x.shape[0 if self.batch_first else 1]
        if hx is None:
            zeros = torch.zeros(LD, B, R, dtype=x.dtype, device=x.device)
            hx = (zeros, torch.zeros(LD, B, H, dtype=x.dtype, device=x.device)) if has_c \
                else zeros
        self.check_forward_args(x, hx, batch_sizes)  # torch's own shape and dtype checks
        h0, c0 = hx if has_c else (hx, None)
        for label, s in (("h0", h0), ("c0", c0)):
            if s is not None and s.dtype != x.dtype:
                raise RuntimeError(f"{name}: {label} has dtype {s.dtype} but the input "
                                   f"{x.dtype}: the state must have the input's dtype")

        if packed:  # the packed rows, time-major, into a padded (T, B, I) batch
            rows = torch.arange(B)
            valid = rows[None, :] < batch_sizes[:, None]                  # (T, B)
            where = valid.reshape(-1).nonzero().squeeze(1)                # packed order
            lengths = valid.sum(0)                                        # int64 (B,)
            x_tm = x.new_zeros((T * B, x.shape[1])).index_copy(0, where, x).view(T, B, -1)
            steps = torch.arange(T)[:, None]
            source = torch.where(steps < lengths[None, :], lengths[None, :] - 1 - steps,
                                 steps).unsqueeze(2) if D == 2 else None
        else:
            where = lengths = source = None
            x_tm = x.transpose(0, 1) if self.batch_first else x
            T = x_tm.shape[0]

        output, h_n, c_n = self._run_layers(x_tm, h0, c0, lengths, source, where)

        if packed:
            data = output.reshape(T * B, -1).index_select(0, where)
            hidden = (h_n, c_n) if has_c else h_n
            return (PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices),
                    self.permute_hidden(hidden, unsorted_indices))
        if self.batch_first:
            output = output.transpose(0, 1)
        if unbatched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if has_c else None
        return output, ((h_n, c_n) if has_c else h_n)

    def _run_layers(self, x, h0, c0, lengths, source, where):
        """x (T, B, I) time-major -> output (T, B, D*R), h_n (LD, B, R), c_n
        (LD, B, H), R = proj_size or H (the next layer reads D*R features):
        each layer and direction one operator call; the reverse direction on
        its input reversed within each row's length; dropout on each layer's
        output but the last's, in training, drawn as torch's RNN draws it (on
        the packed rows for packed input)."""
        cell = _CELL_OF_MODE[self.mode]
        D = 2 if self.bidirectional else 1
        projected = getattr(self, "proj_size", 0) > 0
        # torch's _flat_weights order per layer and direction: weight_ih,
        # weight_hh, bias_ih, bias_hh (with bias), weight_hr (with proj_size)
        per_direction = (4 if self.bias else 2) + (1 if projected else 0)
        weights = self._flat_weights
        T, B = x.shape[0], x.shape[1]
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0:
                if where is None:
                    layer_input = torch.nn.functional.dropout(layer_input, self.dropout, True)
                else:
                    dropped = torch.nn.functional.dropout(
                        layer_input.reshape(T * B, -1).index_select(0, where), self.dropout, True)
                    layer_input = layer_input.new_zeros((T * B, layer_input.shape[2])) \
                        .index_copy(0, where, dropped).view(T, B, -1)
            outputs = []
            for direction in range(D):
                i = layer * D + direction
                w = weights[i * per_direction:(i + 1) * per_direction]
                w_ih, w_hh = w[0], w[1]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                w_hr = w[-1] if projected else None
                seq = layer_input if direction == 0 else _reversed_in_time(layer_input, source)
                h_i = h0[i]
                c_i = None if c0 is None else c0[i]
                keep = _needs_grad(seq, h_i, c_i, w_ih, w_hh, b_ih, b_hh, w_hr)
                out, hn, cn, _ = _run_layer(cell, seq, h_i, c_i, w_ih, w_hh, b_ih, b_hh, w_hr,
                                            lengths, keep)
                outputs.append(out if direction == 0 else _reversed_in_time(out, source))
                h_n.append(hn)
                c_n.append(cn)
            layer_input = outputs[0] if D == 1 else torch.cat(outputs, 2)
        if len(h_n) == 1:  # one layer, one direction: a view, not a copy
            return layer_input, h_n[0][None], None if c0 is None else c_n[0][None]
        return (layer_input, torch.stack(h_n),
                torch.stack(c_n) if c0 is not None else None)


# The classes derive from torch.nn.RNNBase, not from torch.nn.RNN / LSTM /
# GRU: torch.compile refuses to trace any instance of those three (Dynamo's
# "Attempted to wrap RNN, GRU, or LSTM", short of a global experimental
# flag), which would break the graph at the layer whatever its forward
# does. They take the rest of torch's class verbatim: the constructor's
# argument handling, LSTM's state checks and permutation, and its forward
# for the fallback.

class RNN(_FastrnnBase, torch.nn.RNNBase):
    """torch.nn.RNN (nonlinearity "tanh" or "relu") on fastrnn's C core: the
    same constructor, parameters and forward; see the module docstring.
    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    _torch_class = torch.nn.RNN

    def __init__(self, *args, **kwargs):  # torch.nn.RNN.__init__'s handling, verbatim
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' "
                             f"or 'relu'.")
        torch.nn.RNNBase.__init__(self, mode, *args, **kwargs)


class LSTM(_FastrnnBase, torch.nn.RNNBase):
    """torch.nn.LSTM on fastrnn's C core: the same constructor, parameters
    and forward; see the module docstring. With proj_size = P > 0 each
    layer and direction runs the C core's projected LSTM
    (frnn_layer_*_proj: h_t = W_hr (o tanh(c_t)), weight_hr_l{k} (P, H)),
    which oneDNN has no path for in PyTorch; packed input there is one C
    call per distinct length."""

    _torch_class = torch.nn.LSTM
    get_expected_cell_size = torch.nn.LSTM.get_expected_cell_size
    check_forward_args = torch.nn.LSTM.check_forward_args
    permute_hidden = torch.nn.LSTM.permute_hidden

    def __init__(self, *args, **kwargs):
        torch.nn.RNNBase.__init__(self, "LSTM", *args, **kwargs)


class GRU(_FastrnnBase, torch.nn.RNNBase):
    """torch.nn.GRU (torch's form: r applied to W_hn h + b_hn) on fastrnn's C
    core: the same constructor, parameters and forward; see the module
    docstring."""

    _torch_class = torch.nn.GRU

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        torch.nn.RNNBase.__init__(self, "GRU", *args, **kwargs)


_CONVERSIONS = {torch.nn.RNN: RNN, torch.nn.LSTM: LSTM, torch.nn.GRU: GRU}


def convert(model: torch.nn.Module) -> torch.nn.Module:
    """Make every torch.nn.RNN / LSTM / GRU in ``model`` (the model itself
    included, children at any depth) run on fastrnn's C core, in place, and
    return the model.

    The modules stay the very same objects: only their class changes, to
    fastrnn.torch's RNN / LSTM / GRU. Those derive from torch.nn.RNNBase,
    not from torch.nn.LSTM and the like (torch.compile refuses to trace
    those), so ``isinstance(m, torch.nn.RNNBase)`` holds and
    ``isinstance(m, torch.nn.LSTM)`` no longer does. Their parameters are the same ``nn.Parameter`` objects, so
    an optimizer built before the conversion keeps updating them, and their
    hooks, buffers, training flag and device stay as they are. Only exact
    torch.nn.RNN / LSTM / GRU instances are converted: a subclass of them
    (which may override forward) is left alone. A call the C core cannot run
    (see the module docstring) runs torch's own computation with a
    :class:`FallbackWarning`, so converting never changes an answer.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for module in model.modules():
        target = _CONVERSIONS.get(type(module))
        if target is not None:
            module.__class__ = target
    return model
