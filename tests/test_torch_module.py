"""fastrnn.torch against torch.nn itself (skipped when torch is not installed).

Every expected value comes from torch: the same module run by torch.nn
(the same parameters, the same input, the same upstream gradients), float64
finite differences (torch.autograd.gradcheck), or torch's own fallback. What
is checked: outputs, final states and every gradient (input, h0 / c0, every
parameter) on a seeded grid of configurations (every cell the C core has,
the LSTM with proj_size among them, 1 to 3 layers, both directions, batch_first, unbatched, PackedSequence
sorted and not, with and without bias and initial state, float32 and
float64), dropout (the same masks as torch's for the same seed), a training
loop's loss curve, convert() on two small models, the fallbacks and their
warnings, torch's errors on bad input, and that no backward workspace is kept
when no gradient is needed. Not here: torch.compile (test_torch_compile.py)
and DistributedDataParallel (test_torch_ddp.py).
"""
from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import TOLERANCE, rel_err

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastrnn.torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

if "c" not in __import__("fastrnn").available_backends():
    pytest.skip("fastrnn.torch runs the compiled core, which is not built here",
                allow_module_level=True)

DTYPES = {"float32": torch.float32, "float64": torch.float64}
CELLS = {  # the torch.nn module for each cell of the C core
    "rnn_tanh": lambda *a, **k: torch.nn.RNN(*a, nonlinearity="tanh", **k),
    "rnn_relu": lambda *a, **k: torch.nn.RNN(*a, nonlinearity="relu", **k),
    "lstm": torch.nn.LSTM,
    "gru": torch.nn.GRU,
    # the C core's projected LSTM (frnn_layer_*_proj); problem() picks P < H
    "lstm_proj": lambda *a, proj_size=2, **k: torch.nn.LSTM(*a, proj_size=proj_size, **k),
}
# (num_layers, bidirectional, batch_first, input, bias, initial state given)
CONFIGS = [
    (1, False, False, "padded", True, False),
    (2, True, False, "packed_sorted", True, True),
    (3, True, True, "padded", False, True),
    (2, False, True, "packed_unsorted", True, False),
    (1, True, False, "unbatched", True, True),
    (3, False, False, "packed_unsorted", False, True),
    (2, True, True, "packed_unsorted", True, True),
]


def tolerance(dtype) -> float:
    return TOLERANCE[np.dtype(str(dtype).removeprefix("torch."))]


def pair(make, dtype):
    """A torch.nn module and a fastrnn.torch one with the same parameters."""
    reference = make().to(dtype)
    converted = ft.convert(copy.deepcopy(reference))
    return reference, converted


def run(module, inputs, state, grads_out):
    """Forward + backward of sum(output * g) + sum(state_n * g_state):
    returns every result and gradient as a list of arrays."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    state = None if state is None else [s.detach().clone().requires_grad_() for s in state]
    x, make_input = inputs[0], grads_out["make_input"]
    hx = None if state is None else tuple(state) if len(state) == 2 else state[0]
    module.zero_grad()
    output, hidden = module(make_input(x), hx)
    out_data = output.data if hasattr(output, "batch_sizes") else output
    hidden = hidden if isinstance(hidden, tuple) else (hidden,)
    loss = (out_data * grads_out["output"]).sum()
    for h, g in zip(hidden, grads_out["state"]):
        loss = loss + (h * g).sum()
    loss.backward()
    results = [out_data, *hidden, x.grad]
    if state is not None:
        results += [s.grad for s in state]
    results += [p.grad for p in module.parameters()]
    return [r.detach().numpy() for r in results]


def problem(cell, config, dtype, seed):
    """Random sizes, input, initial state and upstream gradients for one config."""
    L, bidirectional, batch_first, kind, bias, with_state = config
    rng = torch.Generator().manual_seed(seed)
    T, B, I, H = (int(v) for v in torch.randint(1, 7, (4,), generator=rng))
    T, B = T + 1, B + 1  # packed rows need T >= 1; a batch of one is in the grid too (B + 1 >= 2)
    options = {}
    if cell == "lstm_proj":  # 1 <= proj_size < hidden_size
        H = H + 1
        options["proj_size"] = 1 + seed % (H - 1)
    R = options.get("proj_size", H)  # h's width
    if kind == "unbatched":
        B = 1
    D = 2 if bidirectional else 1
    lengths = None
    if kind.startswith("packed"):
        lengths = torch.randint(1, T + 1, (B,), generator=rng)
        lengths[0] = T  # the padded length is the longest row's
        if kind == "packed_sorted":
            lengths = lengths.sort(descending=True).values
    shape = (T, I) if kind == "unbatched" else (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, generator=rng, dtype=dtype)
    state_shapes = [(L * D, width) if kind == "unbatched" else (L * D, B, width)
                    for width in ((R, H) if cell.startswith("lstm") else (H,))]
    state = [torch.randn(shape_, generator=rng, dtype=dtype) for shape_ in state_shapes] \
        if with_state else None
    if lengths is not None:
        def make_input(t):
            return pack_padded_sequence(t, lengths, batch_first=batch_first,
                                        enforce_sorted=kind == "packed_sorted")
        rows = int(lengths.sum())
        g_output = torch.randn((rows, D * R), generator=rng, dtype=dtype)
    else:
        def make_input(t):
            return t
        out_shape = shape[:-1] + (D * R,)
        g_output = torch.randn(out_shape, generator=rng, dtype=dtype)
    g_state = [torch.randn(shape_, generator=rng, dtype=dtype) for shape_ in state_shapes]

    def make():
        return CELLS[cell](I, H, num_layers=L, bias=bias, batch_first=batch_first,
                           bidirectional=bidirectional, **options)
    return make, [x], state, dict(make_input=make_input, output=g_output, state=g_state)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("cell", list(CELLS))
def test_equals_torch(cell, config, dtype):
    dtype = DTYPES[dtype]
    seed = CONFIGS.index(config) * 10 + list(CELLS).index(cell)
    make, inputs, state, grads_out = problem(cell, config, dtype, seed)
    torch.manual_seed(seed)
    reference, converted = pair(make, dtype)
    want = run(reference, inputs, state, grads_out)
    got = run(converted, inputs, state, grads_out)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert rel_err(g, w) <= tolerance(dtype), f"result {i}: {rel_err(g, w):.3g}"


@settings(derandomize=True, database=None, deadline=None, max_examples=30,
          suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.sampled_from(list(CELLS)), layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(),
       kind=st.sampled_from(["padded", "packed_sorted", "packed_unsorted", "unbatched"]),
       bias=st.booleans(), with_state=st.booleans(), dtype=st.sampled_from(list(DTYPES)),
       seed=st.integers(0, 2**31 - 1))
def test_random_configurations_equal_torch(cell, layers, bidirectional, batch_first, kind, bias,
                                           with_state, dtype, seed):
    """The grid above, drawn at random (hypothesis, derandomized: the same
    30 configurations every run)."""
    dtype = DTYPES[dtype]
    config = (layers, bidirectional, batch_first, kind, bias, with_state)
    make, inputs, state, grads_out = problem(cell, config, dtype, seed)
    torch.manual_seed(seed)
    reference, converted = pair(make, dtype)
    want = run(reference, inputs, state, grads_out)
    got = run(converted, inputs, state, grads_out)
    for i, (g, w) in enumerate(zip(got, want)):
        assert rel_err(g, w) <= tolerance(dtype), f"result {i}: {rel_err(g, w):.3g}"


@pytest.mark.parametrize("cell", list(CELLS))
def test_operator_path_equals_torch(cell, monkeypatch):
    """The torch.library operator pair (what torch.compile traces) gives
    torch's results too, run eagerly."""
    monkeypatch.setattr(ft, "_use_operator", True)
    for config in (CONFIGS[2], CONFIGS[6]):
        make, inputs, state, grads_out = problem(cell, config, torch.float64, 7)
        reference, converted = pair(make, torch.float64)
        want = run(reference, inputs, state, grads_out)
        got = run(converted, inputs, state, grads_out)
        for g, w in zip(got, want):
            assert rel_err(g, w) <= 1e-10


def test_operators_pass_opcheck():
    """torch.library.opcheck: schema, fake (shape) implementation and the
    registered autograd formula of the operator pair are consistent."""
    gen = torch.Generator().manual_seed(3)
    T, B, I, H = 4, 3, 5, 6
    for cell, gates, has_c in (("lstm", 4, True), ("gru", 3, False), ("rnn_tanh", 1, False)):
        args = (cell, torch.randn(T, B, I, generator=gen, dtype=torch.float64,
                                  requires_grad=True),
                torch.randn(B, H, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(B, H, generator=gen, dtype=torch.float64, requires_grad=True)
                if has_c else None,
                torch.randn(gates * H, I, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(gates * H, H, generator=gen, dtype=torch.float64,
                            requires_grad=True),
                torch.randn(gates * H, generator=gen, dtype=torch.float64, requires_grad=True),
                None, None, torch.tensor([4, 2, 1]), True)
        torch.library.opcheck(ft.recurrent_forward, args,
                              test_utils=("test_schema", "test_faketensor",
                                          "test_autograd_registration"))
    P = 2  # the projected LSTM: h0 (B, P), weight_hh (4H, P), weight_hr (P, H)
    for lengths in (None, torch.tensor([4, 2, 1])):
        args = ("lstm", torch.randn(T, B, I, generator=gen, dtype=torch.float64,
                                    requires_grad=True),
                torch.randn(B, P, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(B, H, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(4 * H, I, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(4 * H, P, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(4 * H, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(4 * H, generator=gen, dtype=torch.float64, requires_grad=True),
                torch.randn(P, H, generator=gen, dtype=torch.float64, requires_grad=True),
                lengths, True)
        torch.library.opcheck(ft.recurrent_forward, args,
                              test_utils=("test_schema", "test_faketensor",
                                          "test_autograd_registration"))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu", "lstm_proj"])
def test_gradcheck_float64(cell):
    """Finite differences of the whole module (input, state and every
    parameter) agree with its gradients: torch.autograd.gradcheck."""
    torch.manual_seed(11)
    module = ft.convert(CELLS[cell](3, 4, num_layers=2, bidirectional=True).double())
    names = [n for n, _ in module.named_parameters()]
    lengths = torch.tensor([2, 5, 3])
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    widths = {"lstm": (4, 4), "lstm_proj": (2, 4)}.get(cell, (4,))  # h (proj_size 2), c
    states = [torch.randn(4, 3, width, dtype=torch.float64, requires_grad=True)
              for width in widths]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def f(x, *rest):
        s, p = rest[:len(states)], rest[len(states):]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, hidden = torch.func.functional_call(
            module, dict(zip(names, p)), (packed, tuple(s) if len(s) == 2 else s[0]))
        hidden = hidden if isinstance(hidden, tuple) else (hidden,)
        return (out.data, *hidden)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ft.FallbackWarning)  # the C core must have run
        assert torch.autograd.gradcheck(f, (x, *states, *params), eps=1e-6, atol=1e-7,
                                        rtol=1e-6)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_dropout_masks_are_torchs(cell, packed):
    """Training with dropout between layers: for the same torch.manual_seed
    the masks are the ones torch.nn draws, so outputs and gradients equal
    the torch module's; eval mode drops nothing (equal to torch's eval)."""
    torch.manual_seed(5)
    reference, converted = pair(lambda: CELLS[cell](4, 5, num_layers=3, bidirectional=True,
                                                     dropout=0.4), torch.float64)
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    lengths = torch.tensor([3, 6, 2])
    results = []
    for module in (reference, converted):
        for training in (True, False):
            module.train(training)
            torch.manual_seed(17)
            xx = x.clone().requires_grad_()
            inp = pack_padded_sequence(xx, lengths, enforce_sorted=False) if packed else xx
            out, _ = module(inp)
            out = out.data if packed else out
            module.zero_grad()
            (out * out).sum().backward()
            results.append([out.detach(), xx.grad] + [p.grad for p in module.parameters()])
    for got, want in zip(results[2:], results[:2]):
        for g, w in zip(got, want):
            assert rel_err(g.numpy(), w.numpy()) <= 1e-10
    # and dropout did act in training: train and eval outputs differ
    assert rel_err(results[2][0].numpy(), results[3][0].numpy()) > 1e-3


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_loss_curve_equals_torch(cell, dtype):
    """A torch optimizer and loss over 15 steps: the converted model's loss
    curve is the torch model's, from the same initial weights."""
    dtype = DTYPES[dtype]
    torch.manual_seed(2)

    def make():
        return torch.nn.ModuleDict({"rnn": CELLS[cell](3, 8, num_layers=2, batch_first=True),
                                    "head": torch.nn.Linear(8, 2)}).to(dtype)
    reference = make()
    converted = ft.convert(copy.deepcopy(reference))
    x = torch.randn(4, 7, 3, dtype=dtype)
    y = torch.randn(4, 7, 2, dtype=dtype)
    curves = []
    for model in (reference, converted):
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        losses = []
        for _ in range(15):
            optimizer.zero_grad()
            out, _ = model["rnn"](x)
            loss = torch.nn.functional.mse_loss(model["head"](out), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves.append(np.array(losses))
    assert curves[0][-1] < 0.9 * curves[0][0]  # it did learn something
    assert rel_err(curves[1], curves[0]) <= tolerance(dtype)


class EmbeddingLM(torch.nn.Module):
    """embedding -> 2-layer LSTM -> linear, torch's word-LM shape in small."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 6)
        self.lstm = torch.nn.LSTM(6, 8, num_layers=2)
        self.decoder = torch.nn.Linear(8, 20)

    def forward(self, tokens, state=None):
        out, state = self.lstm(self.embed(tokens), state)
        return self.decoder(out), state


class PackedGRUClassifier(torch.nn.Module):
    """a bidirectional GRU over packed sequences, its final states classified."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(5, 7, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Sequential(torch.nn.Linear(14, 3))

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        return self.head(torch.cat([h_n[-2], h_n[-1]], 1))


def _outputs_and_grads(model, *args):
    model.zero_grad()
    out = model(*args)
    out = out[0] if isinstance(out, tuple) else out
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return [out.detach().clone()] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("model_kind", ["lm", "classifier"])
def test_convert_keeps_parameters_and_results(model_kind):
    torch.manual_seed(4)
    if model_kind == "lm":
        model = EmbeddingLM().double()
        args = (torch.randint(0, 20, (9, 3)),)
    else:
        model = PackedGRUClassifier().double()
        args = (torch.randn(4, 6, 5, dtype=torch.float64), torch.tensor([6, 2, 4, 1]))
    before = _outputs_and_grads(model, *args)
    params = list(model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rnn = model.lstm if model_kind == "lm" else model.gru
    assert ft.convert(model) is model
    assert type(rnn) is (ft.LSTM if model_kind == "lm" else ft.GRU)
    assert isinstance(rnn, torch.nn.RNNBase)
    assert all(a is b for a, b in zip(model.parameters(), params))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ft.FallbackWarning)
        after = _outputs_and_grads(model, *args)
    for got, want in zip(after, before):
        assert rel_err(got.numpy(), want.numpy()) <= 1e-10
    # the optimizer made before conversion still updates the module's weights
    weight = rnn.weight_hh_l0.detach().clone()
    optimizer.step()
    assert rel_err(rnn.weight_hh_l0.detach().numpy(),
                   (weight - 0.1 * rnn.weight_hh_l0.grad).numpy()) <= 1e-12
    assert torch.any(rnn.weight_hh_l0 != weight)


def test_convert_leaves_subclasses_and_other_modules():
    class MyLSTM(torch.nn.LSTM):
        pass
    model = torch.nn.Sequential(MyLSTM(2, 3), torch.nn.Linear(3, 3))
    ft.convert(model)
    assert type(model[0]) is MyLSTM and type(model[1]) is torch.nn.Linear
    lone = torch.nn.GRU(2, 3)
    assert ft.convert(lone) is lone and type(lone) is ft.GRU
    with pytest.raises(TypeError, match="torch.nn.Module"):
        ft.convert("not a model")


def test_classes_have_torchs_constructor_parameters_and_repr():
    for ours, theirs, kwargs in ((ft.LSTM, torch.nn.LSTM, dict(num_layers=2, dropout=0.1)),
                                 (ft.GRU, torch.nn.GRU, dict(bidirectional=True, bias=False)),
                                 (ft.RNN, torch.nn.RNN, dict(nonlinearity="relu",
                                                             batch_first=True))):
        torch.manual_seed(0)
        a = ours(3, 4, **kwargs)
        torch.manual_seed(0)
        b = theirs(3, 4, **kwargs)
        assert repr(a) == repr(b)
        assert list(a.state_dict()) == list(b.state_dict())
        for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
            assert na == nb and torch.equal(pa, pb) and isinstance(pa, torch.nn.Parameter)
        a.flatten_parameters()
        a.load_state_dict(b.state_dict())


@pytest.fixture
def fresh_warnings(monkeypatch):
    """A process that has warned about no reason yet."""
    monkeypatch.setattr(ft, "_warned", set())


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, ft.FallbackWarning)]


@pytest.mark.parametrize("case", ["bfloat16", "float16", "meta", "empty_batch", "no_core",
                                  "proj_size_no_core"])
def test_fallbacks_warn_once_and_give_torchs_answer(case, fresh_warnings, monkeypatch):
    torch.manual_seed(8)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(case, torch.float32)
    kwargs = dict(proj_size=2, num_layers=2, bidirectional=True) if case.startswith("proj") \
        else {}
    reference = torch.nn.LSTM(3, 4, **kwargs).to(dtype)
    converted = ft.convert(copy.deepcopy(reference))
    B = 0 if case == "empty_batch" else 2
    x = torch.randn(5, B, 3).to(dtype)
    if case == "meta":
        reference, converted, x = reference.to("meta"), converted.to("meta"), x.to("meta")
    if case.endswith("no_core"):
        monkeypatch.setattr(ft, "_core", None)
        monkeypatch.setattr(ft, "_core_missing", "the compiled core is not available (test)")
    reason = {"bfloat16": "bfloat16", "float16": "float16", "meta": "meta",
              "empty_batch": "empty", "no_core": "compiled core",
              "proj_size_no_core": "compiled core"}[case]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = [converted(x) for _ in range(3)]
    fallback = _fallback_warnings(record)
    assert len(fallback) == 1 and reason in str(fallback[0].message)
    want, (h_want, c_want) = reference(x)
    for out, (h, c) in got:
        assert out.shape == want.shape and h.shape == h_want.shape and c.shape == c_want.shape
        if case != "meta":
            assert torch.equal(out, want) and torch.equal(h, h_want) and torch.equal(c, c_want)


def test_fallback_with_grad_gives_torchs_gradients(fresh_warnings, monkeypatch):
    """A fallback (here: no compiled core) runs torch's computation,
    gradients included, a projection's too."""
    torch.manual_seed(9)
    reference = torch.nn.LSTM(3, 5, proj_size=2).double()
    converted = ft.convert(copy.deepcopy(reference))
    monkeypatch.setattr(ft, "_core", None)
    monkeypatch.setattr(ft, "_core_missing", "the compiled core is not available (test)")
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    grads = []
    with pytest.warns(ft.FallbackWarning, match="compiled core"):
        for module in (reference, converted):
            out, _ = module(x)
            out.sum().backward()
            grads.append([p.grad for p in module.parameters()])
    for g, w in zip(*grads):
        assert torch.equal(g, w)


def test_function_transforms_fall_back_to_torch(fresh_warnings):
    """Forward-mode AD and torch.func.grad run torch's computation (the C
    core has no forward-mode formula; functorch wraps the tensors)."""
    torch.manual_seed(10)
    reference = torch.nn.GRU(3, 4, num_layers=2).double()
    converted = ft.convert(copy.deepcopy(reference))
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    tangents = []
    with pytest.warns(ft.FallbackWarning, match="forward-mode AD"):
        with torch.autograd.forward_ad.dual_level():
            for module in (reference, converted):
                dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
                out, _ = module(dual)
                tangents.append(torch.autograd.forward_ad.unpack_dual(out).tangent)
    assert torch.equal(tangents[0], tangents[1])
    with pytest.warns(ft.FallbackWarning, match="torch.func"):
        grads = [torch.func.grad(lambda t, m=module: m(t)[0].sum())(x)
                 for module in (reference, converted)]
    assert torch.equal(grads[0], grads[1])


def test_autocast_falls_back_to_torch(fresh_warnings):
    torch.manual_seed(12)
    reference = torch.nn.GRU(3, 4)  # (torch's LSTM fails under bfloat16 autocast on some CPUs)
    converted = ft.convert(copy.deepcopy(reference))
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, _ = reference(x)
        with pytest.warns(ft.FallbackWarning, match="autocast"):
            got, _ = converted(x)
    assert got.dtype == want.dtype and torch.equal(got, want)


def test_mixed_parameter_dtypes_fall_back_to_torchs_error(fresh_warnings):
    module = ft.GRU(3, 4)
    module.weight_hh_l0.data = module.weight_hh_l0.data.double()
    reference = copy.deepcopy(module)
    reference.__class__ = torch.nn.GRU
    with pytest.raises(RuntimeError) as want:
        reference(torch.randn(5, 2, 3))
    with pytest.warns(ft.FallbackWarning, match="mixed dtypes"):
        with pytest.raises(RuntimeError) as got:
            module(torch.randn(5, 2, 3))
    assert str(got.value) == str(want.value)


BAD_INPUTS = {
    "input dtype": lambda m, H: m(torch.randn(5, 2, 3, dtype=torch.float64)),
    "input size": lambda m, H: m(torch.randn(5, 2, 4)),
    "4-D input": lambda m, H: m(torch.randn(5, 2, 3, 1)),
    "h0 shape": lambda m, H: m(torch.randn(5, 2, 3), torch.zeros(1, 3, H)),
    "h0 rank": lambda m, H: m(torch.randn(5, 2, 3), torch.zeros(2, H)),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("cell", ["gru", "rnn_tanh"])
def test_bad_input_raises_torchs_error(cell, case):
    torch.manual_seed(0)
    reference = CELLS[cell](3, 4)
    converted = ft.convert(copy.deepcopy(reference))
    with pytest.raises(Exception) as want:
        BAD_INPUTS[case](reference, 4)
    with pytest.raises(type(want.value)) as got:
        BAD_INPUTS[case](converted, 4)
    assert str(got.value) == str(want.value)


def test_input_on_another_device_raises_torchs_error(fresh_warnings):
    """A CPU module given a tensor on another device (meta: every build has
    it) runs torch's forward, which raises its own error."""
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 4)
    converted = ft.convert(copy.deepcopy(reference))
    x = torch.randn(5, 2, 3, device="meta")
    with pytest.raises(RuntimeError) as want:
        reference(x)
    with pytest.warns(ft.FallbackWarning, match="meta"):
        with pytest.raises(RuntimeError) as got:
            converted(x)
    assert str(got.value) == str(want.value)


def test_bad_lstm_states_raise_torchs_errors():
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 4, num_layers=2)
    converted = ft.convert(copy.deepcopy(reference))
    x = torch.randn(5, 2, 3)
    for hx in ((torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)),
               (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)),
               (torch.zeros(2, 2, 4), torch.zeros(2, 4))):
        with pytest.raises(RuntimeError) as want:
            reference(x, hx)
        with pytest.raises(RuntimeError) as got:
            converted(x, hx)
        assert str(got.value) == str(want.value)


def test_clearer_errors_where_torchs_are_obscure():
    lstm, gru = ft.LSTM(3, 4), ft.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match=r"pair \(h0, c0\)"):
        lstm(x, torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="hx must be a tensor"):
        gru(x, (torch.zeros(1, 2, 4),))
    with pytest.raises(RuntimeError, match="h0 has dtype torch.float64"):
        gru(x, torch.zeros(1, 2, 4, dtype=torch.float64))
    packed = pack_padded_sequence(x, torch.tensor([5, 3]), enforce_sorted=False)
    for h0 in (torch.zeros(1, 3, 4), torch.zeros(1, 1, 4)):  # torch: drops a row / index error
        with pytest.raises(RuntimeError, match="PackedSequence's batch is 2"):
            gru(packed, h0)


class _RecordingCore:
    """fastrnn's C backend, recording whether each forward kept a workspace."""

    def __init__(self, core):
        self.core, self.kept = core, []

    def forward(self, *args, **kwargs):
        self.kept.append(args[11] is not None)
        return self.core.forward(*args, **kwargs)

    def backward(self, *args, **kwargs):
        return self.core.backward(*args, **kwargs)


def test_workspace_only_when_a_gradient_is_needed(monkeypatch):
    recording = _RecordingCore(ft._core)
    monkeypatch.setattr(ft, "_core", recording)
    lstm = ft.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        lstm(x)
    lstm.eval()
    with torch.inference_mode():
        lstm(x)
    for p in lstm.parameters():
        p.requires_grad_(False)
    lstm(x)                              # nothing requires grad
    assert recording.kept == [False] * 6
    lstm(x.requires_grad_())[0].sum().backward()
    assert recording.kept[6:] == [True, True]
    assert x.grad is not None and lstm.weight_hh_l0.grad is None


def test_parameters_are_read_in_place():
    """The C core reads the parameters' own storage (NumPy views, no copies)."""
    gru = ft.GRU(3, 4)
    view = ft._array(gru.weight_hh_l0)
    assert np.shares_memory(view, gru.weight_hh_l0.detach().numpy())
    with torch.no_grad():
        gru.weight_hh_l0.zero_()
    assert not view.any()


@pytest.mark.parametrize("path", ["function", "operator"])
def test_double_backward_is_refused_clearly(path, monkeypatch):
    """create_graph=True through a layer is an error at that backward (a
    graph-less gradient added to one with a graph would be silently wrong)."""
    monkeypatch.setattr(ft, "_use_operator", path == "operator")
    gru = ft.GRU(2, 3).double()
    x = torch.randn(4, 1, 2, dtype=torch.float64, requires_grad=True)
    out, _ = gru(x)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(out.sum() + (x * x).sum(), x, create_graph=True)


def test_jit_trace_records_the_operator():
    """torch.jit.trace records the registered operator, so the traced module
    computes (and differentiates) new inputs, not constants of the trace."""
    torch.manual_seed(13)
    reference = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    converted = ft.convert(copy.deepcopy(reference))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation and tracer warnings
        traced = torch.jit.trace(converted, torch.randn(5, 2, 3, dtype=torch.float64))
    assert "fastrnn::recurrent_forward" in str(traced.graph)
    results = []
    for module in (reference, traced):
        x = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        x.requires_grad_()
        out, (h_n, c_n) = module(x)
        (out.sum() + h_n.sum() + c_n.sum()).backward()
        results.append([out.detach(), h_n.detach(), c_n.detach(), x.grad])
    for got, want in zip(results[1], results[0]):
        assert rel_err(got.numpy(), want.numpy()) <= 1e-10


def test_import_fastrnn_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import fastrnn, numpy as np\n"
            "fastrnn.LSTM(2, 3)(np.zeros((4, 1, 2), np.float32))\n"
            "try:\n    import fastrnn.torch\nexcept ImportError:\n    print('no torch')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no torch"
