"""torch.compile of models converted by fastrnn.torch (skipped without torch).

What it checks: a converted model compiles with fullgraph=True (no graph
break: Dynamo records each layer and direction as one
torch.ops.fastrnn.recurrent_forward node) and gives the outputs and
gradients of the torch model it was converted from, through AOTAutograd
(aot_eager: the registered autograd formula traced into the backward
graph) and through the default inductor backend, and that torch.export
records the same operator. Expected values come from
the unconverted torch.nn model. Not here: PackedSequence input under
compile (its sizes are data-dependent; torch.nn's own RNNs do not compile
at all) and the eager paths (test_torch_module.py).
"""
from __future__ import annotations

import copy

import pytest

from conftest import rel_err

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastrnn.torch")

if "c" not in __import__("fastrnn").available_backends():
    pytest.skip("fastrnn.torch runs the compiled core, which is not built here",
                allow_module_level=True)


class Tagger(torch.nn.Module):
    """a stacked bidirectional recurrent layer and a linear head per step."""

    def __init__(self, kind):
        super().__init__()
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN,
               "lstm_proj": torch.nn.LSTM}[kind]
        options = dict(proj_size=3) if kind == "lstm_proj" else {}  # h 3 wide, c 5 wide
        self.rnn = rnn(3, 5, num_layers=2, bidirectional=True, batch_first=True, **options)
        self.head = torch.nn.Linear(6 if options else 10, 2)

    def forward(self, x, h0):
        out, state = self.rnn(x, h0)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(out).sum(1) + h_n.sum(0)[:, :2]


def _results(model, x, h0):
    model.zero_grad()
    x = x.clone().requires_grad_()
    h0 = tuple(h.clone().requires_grad_() for h in h0) if isinstance(h0, tuple) else \
        h0.clone().requires_grad_()
    y = model(x, h0)
    (y * torch.tensor([1.0, -2.0], dtype=y.dtype)).sum().backward()
    grads = [x.grad] + ([h.grad for h in h0] if isinstance(h0, tuple) else [h0.grad])
    return [y.detach()] + grads + [p.grad for p in model.parameters()]


def _check(kind, backend, dtype, tol):
    torch.manual_seed(21)
    reference = Tagger(kind).to(dtype)
    converted = ft.convert(copy.deepcopy(reference))
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm.code)
        return torch._dynamo.backends.registry.lookup_backend(backend)(gm, example_inputs)

    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True, backend=recording)
    x = torch.randn(4, 6, 3, dtype=dtype)
    h0 = torch.randn(4, 4, 3 if kind == "lstm_proj" else 5, dtype=dtype)
    if kind.startswith("lstm"):
        h0 = (h0, torch.randn(4, 4, 5, dtype=dtype))
    want = _results(reference, x, h0)
    worst = 0.0
    for _ in range(2):  # the second call runs the cached graph
        got = _results(compiled, x, h0)
        for i, (g, w) in enumerate(zip(got, want)):
            error = rel_err(g.numpy(), w.numpy())
            worst = max(worst, error)
            assert error <= tol, f"result {i}"
    print(f"[compile {kind} {backend} {dtype}] graphs: {len(graphs)}, fastrnn operator "
          f"mentions: {graphs[0].count('fastrnn') if graphs else 0}, max rel err vs torch.nn "
          f"(output, input/state/parameter gradients): {worst:.1e}")
    assert len(graphs) == 1 and graphs[0].count("fastrnn") >= 4  # 2 layers x 2 directions
    with torch.no_grad():  # inference: a graph that keeps no workspace
        assert rel_err(compiled(x, h0).numpy(), want[0].numpy()) <= tol


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "lstm_proj"])
def test_compiles_fullgraph_aot_eager(kind):
    _check(kind, "aot_eager", torch.float64, 1e-10)


@pytest.mark.slow
def test_compiles_fullgraph_inductor():
    """The default backend (inductor), float32: about half a minute to compile on 2 cores."""
    _check("lstm", "inductor", torch.float32, 1e-4)


def test_torch_export_records_the_operator():
    """torch.export (Dynamo underneath) gives a program whose graph holds
    the operator and which computes new inputs as the torch model does."""
    torch.manual_seed(22)
    reference = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    converted = ft.convert(copy.deepcopy(reference))
    program = torch.export.export(converted, (torch.randn(5, 2, 3, dtype=torch.float64),))
    targets = [str(node.target) for node in program.graph.nodes]
    assert sum("fastrnn.recurrent_forward" in t for t in targets) == 4
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for got, want in zip(program.module()(x), reference(x)):
        assert rel_err(got.detach().numpy(), want.detach().numpy()) <= 1e-10
