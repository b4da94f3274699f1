"""fastrnn: Elman RNN, LSTM, GRU and leaky-integrator RNN forward and BPTT with a compiled C core.

Quick tour::

    import numpy as np, fastrnn
    lstm = fastrnn.LSTM(input_size=8, hidden_size=32, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((50, 4, 8), dtype=np.float32)
    res = lstm(x, training=True)                # res.output (50, 4, 32), res.h_n, res.c_n
    grads = lstm.backward(res, d_output=np.ones_like(res.output))
    grads.weight_hh.shape                       # (128, 32), PyTorch layout
    gru = fastrnn.GRU(8, 32, num_layers=2, bidirectional=True, seed=0)
    res = gru(x, lengths=[50, 9, 30, 0], training=True)  # output (50, 4, 64), h_n (4, 4, 32)
    grads = gru.backward(res, np.ones_like(res.output))  # grads.params["weight_hh_l1_reverse"]

See fastrnn.functional for the array-level API and docs/ARCHITECTURE.md for
how the layers fit together.
"""
from . import cells
from ._validate import CELLS
from .backends import (BackendFeatureError, BackendUnavailableError, available_backends,
                       resolve_backend)
from .functional import ForwardResult, Gradients, backward, forward, step
from .layers import GRU, LSTM, RNN, LayerGradients, LayerResult, LeakyRNN
from . import nn, optim
from .nn import Linear

__version__ = "0.1.0"

from .threads import get_num_threads, set_num_threads  # noqa: E402 (needs __version__)
from .subnormals import get_flush_subnormals, set_flush_subnormals  # noqa: E402

__all__ = [
    "CELLS", "RNN", "LSTM", "GRU", "LeakyRNN", "LayerResult", "LayerGradients", "forward",
    "backward", "step", "ForwardResult",
    "Gradients", "available_backends", "resolve_backend", "BackendUnavailableError",
    "BackendFeatureError", "cells", "nn", "optim", "Linear",
    "cpu_isa", "set_num_threads", "get_num_threads", "release_memory", "__version__",
    "set_flush_subnormals", "get_flush_subnormals",
]


def cpu_isa() -> str:
    """The instruction set of the C backend's kernel table ("avx512", "avx2" or
    "baseline"), or "" without the compiled core."""
    try:
        from .backends import c
    except ImportError:
        return ""
    return c.active_isa()


def release_memory() -> None:
    """Free the working memory the C kernels keep for the calling thread.

    A whole-window forward or backward keeps its scratch block (the packed
    weights, the gate gradients of every step: tens of MB for a large layer)
    for the thread's next call, because fresh pages from the OS cost about a
    tenth of a large training step. A thread's block is freed when the thread
    ends; call this to free the current thread's block sooner. A no-op
    without the C backend.
    """
    try:
        from . import _core
    except ImportError:
        return
    _core.release_scratch()

