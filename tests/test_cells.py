"""The cell descriptors (fastrnn.cells) against independent facts, and the
rule that nothing else in the package compares cell names.

The gate counts, gate order and parameter shapes are PyTorch's, read from
torch.nn's own modules when torch is installed and from its documentation
otherwise; the workspace layout is docs/ARCHITECTURE.md's, checked against
what each backend's forward actually writes.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fastrnn
from fastrnn import cells
from fastrnn import functional as F

PACKAGE = Path(fastrnn.__file__).parent

# torch.nn's documentation: weight_ih_l0 is (G*hidden_size, input_size) with
# RNN G = 1, LSTM (W_ii|W_if|W_ig|W_io) G = 4, GRU (W_ir|W_iz|W_in) G = 3; the
# original GRU (Cho et al. 2014) has GRU's parameters, in torch's layout; the
# leaky integrator has torch.nn.RNN's (one gate).
DOCUMENTED = {"rnn_tanh": (1, "h"), "rnn_relu": (1, "h"), "rnn_sigmoid": (1, "h"),
              "lstm": (4, "ifgo"), "gru": (3, "rzn"), "gru_original": (3, "rzn"),
              "leaky": (1, "h")}
# How fastrnn's layer classes name each cell (docs: layers.py, README).
LAYER_CALLS = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
               "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
               "rnn_sigmoid": ("RNN", {"nonlinearity": "sigmoid"}),
               "lstm": ("LSTM", {}), "gru": ("GRU", {"reset_after": True}),
               "gru_original": ("GRU", {"reset_after": False}),
               "leaky": ("LeakyRNN", {})}
# torch.nn's module with the same parameter shapes, where torch has no such layer
TORCH_SHAPES_OF = {"LeakyRNN": "RNN"}


def test_every_cell_is_described_once_with_its_documented_gates():
    assert cells.NAMES == fastrnn.CELLS == tuple(DOCUMENTED)
    codes = [c.code for c in cells.CELLS.values()]
    assert sorted(codes) == list(range(len(codes)))  # the C enum: dense, no duplicates
    for name, (gates, order) in DOCUMENTED.items():
        c = cells.get(name)
        assert c.name == name and c.gates == gates and "".join(c.gate_names) == order
        assert c.gate_rows(7) == gates * 7
        assert c.parameter_shapes(3, 7) == {"weight_ih": (gates * 7, 3),
                                            "weight_hh": (gates * 7, 7),
                                            "bias_ih": (gates * 7,), "bias_hh": (gates * 7,)}
        assert c.state_names == (("h", "c") if name == "lstm" else ("h",))
        assert len(c.workspace_names) == c.workspace
    assert cells.get(cells.CELLS["gru"]) is cells.CELLS["gru"]
    for bad in ("LSTM", "lstm ", None, ["lstm"], 3):
        with pytest.raises(ValueError, match=r"cell must be one of \('rnn_tanh'"):
            cells.get(bad)


def test_layer_classes_match_torch():
    torch = pytest.importorskip("torch")
    for name, c in cells.CELLS.items():
        kwargs = {"nonlinearity": c.nonlinearity} if c.nonlinearity else {}
        if c.nonlinearity == "sigmoid":  # torch.nn.RNN has tanh and relu only
            kwargs = {"nonlinearity": "tanh"}
        module = getattr(torch.nn, TORCH_SHAPES_OF.get(c.layer, c.layer))(3, 5, **kwargs)
        assert tuple(module.weight_ih_l0.shape) == c.parameter_shapes(3, 5)["weight_ih"], name
        layer, arguments = LAYER_CALLS[name]
        assert (c.layer, c.layer_arguments) == (layer, arguments)
        ours = getattr(fastrnn, layer)(3, 5, **arguments)
        assert ours.cell == name
    assert fastrnn.GRU(3, 5).cell == "gru"  # torch's form is the default


@pytest.mark.parametrize("cell", cells.NAMES)
def test_workspace_layout_is_what_forward_writes(cell, backend):
    """The workspace width is the descriptor's, and its named blocks hold
    what ARCHITECTURE.md says: LSTM's c block is c_t (the last one c_n), the
    gates after their nonlinearities lie in (0, 1) or (-1, 1)."""
    c = cells.get(cell)
    rng = np.random.default_rng(3)
    T, B, I, H = 3, 2, 4, 5
    p = [rng.uniform(-0.5, 0.5, s) for s in c.parameter_shapes(I, H).values()]
    res = F.forward(cell, rng.standard_normal((T, B, I)), *p, backend=backend, training=True)
    ws = res.saved.workspace
    assert ws.shape == (T, B, c.workspace_width(H))
    blocks = {n: ws[..., k * H:(k + 1) * H] for k, n in enumerate(c.workspace_names)}
    for gate in set(blocks) & {"i", "f", "o", "r", "z"}:
        assert np.all((blocks[gate] > 0) & (blocks[gate] < 1)), gate
    for gate in set(blocks) & {"g", "n", "u"}:  # tanh's outputs
        assert np.all(np.abs(blocks[gate]) < 1), gate
    if c.has_cell_state:
        np.testing.assert_array_equal(blocks["c"][-1], res.c_n)
    else:
        assert res.c_n is None


# A comparison with a cell's name: == "lstm", != 'gru', in ("rnn_tanh", ...).
_NAME = "|".join(re.escape(n) for n in cells.NAMES)
_BRANCH = re.compile(rf"""(==|!=|\bin)\s*[(\[{{]?\s*["']({_NAME})["']""")
# Where a cell's name may be compared: its descriptor, and the math itself
# (each backend's gate equations differ per cell by nature).
_MATH = {"cells.py", "backends/numpy_ref.py", "backends/numba_loops.py",
         "backends/numba_train.py"}


def test_no_cell_name_branch_outside_the_descriptor_and_the_math():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.pyx")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in _MATH:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _BRANCH.search(code):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "compare cell names through fastrnn.cells instead:\n" + "\n".join(offenders)


def test_the_branch_rule_can_fail():
    assert _BRANCH.search('if cell == "lstm":') and _BRANCH.search("x if c != 'gru' else y")
    assert _BRANCH.search('if cell in ("rnn_tanh", "rnn_relu"):')
    assert not _BRANCH.search('Layout("rnn_tanh", V, H, O)')
