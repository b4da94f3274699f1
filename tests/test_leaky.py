"""The leaky-integrator cell ("leaky") and the hyperparameter plumbing it needs.

    u_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)
    h_t = (1 - a) h_(t-1) + a u_t,   a = leak_rate in (0, 1]

What this file checks: Cell.with_hyperparameters / hyperparameter (the
validated copy, refusals naming leak_rate and its range), the C core's own
refusal of a bad rate in frnn_cell_desc, forward / backward / step / lengths
of every backend and dtype against the recurrence written out in float64
torch ops with autograd (independent of fastrnn, here in the test: torch has
no leaky cell), that a = 1 gives rnn_tanh's results, and that a rate
reaches every backend (a = 0.3 differs from a = 1). The stored vectors of
tests/vectors/ (generate_leaky_vectors.py) run through the shared vector
tests; not here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import fastrnn
from fastrnn import cells
from fastrnn import functional as F

from conftest import TOLERANCE, rel_err

torch = pytest.importorskip("torch")

RATES = (0.3, 1.0)


def leaky(rate):
    return cells.get("leaky").with_hyperparameters(leak_rate=rate)


# -- the descriptor and its hyperparameters ----------------------------------

def test_descriptor_is_the_agreed_interface():
    c = cells.get("leaky")
    assert (c.name, c.code, c.gates, c.gate_names, c.has_cell_state) == (
        "leaky", 6, 1, ("h",), False)
    assert (c.workspace, c.workspace_names) == (1, ("u",))
    assert c.hyperparameters == (("leak_rate", 1.0),)
    assert c.hyperparameter("leak_rate") == 1.0
    assert c.layer == "LeakyRNN"


def test_with_hyperparameters_returns_a_validated_copy():
    default = cells.get("leaky")
    c = default.with_hyperparameters(leak_rate=0.25)
    assert c.hyperparameter("leak_rate") == 0.25
    assert c.hyperparameter_values == {"leak_rate": 0.25}
    assert default.hyperparameter("leak_rate") == 1.0  # the registry keeps the default
    assert cells.CELLS["leaky"].hyperparameter("leak_rate") == 1.0
    assert c != default and c.name == default.name
    assert cells.get(c) is c  # a Cell passes through get() unchanged
    assert c.with_hyperparameters(leak_rate=1) == default  # an int in range is a real number
    assert c.label == "leaky(leak_rate=0.25)" and default.label == "leaky"


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.1, math.nan, math.inf, True, False, "0.3",
                                 None, [0.3]])
def test_bad_leak_rates_are_refused_naming_the_argument_and_range(bad):
    with pytest.raises(ValueError, match=r"leak_rate must be a finite real number in \(0, 1\]") \
            as info:
        cells.get("leaky").with_hyperparameters(leak_rate=bad)
    # no number at all: also the TypeError the package raises for a wrong type
    wrong_type = isinstance(bad, (bool, str, list, type(None)))
    assert isinstance(info.value, TypeError) == wrong_type


def test_unknown_hyperparameters_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"no hyperparameter 'alpha'.*\('leak_rate',\)"):
        cells.get("leaky").with_hyperparameters(alpha=0.3)
    with pytest.raises(ValueError, match="cell 'lstm' has no hyperparameter 'leak_rate'"):
        cells.get("lstm").with_hyperparameters(leak_rate=0.3)
    with pytest.raises(ValueError, match="no hyperparameter 'leak_rate'"):
        cells.get("gru").hyperparameter("leak_rate")


@pytest.mark.skipif("c" not in fastrnn.available_backends(), reason="no compiled core")
@pytest.mark.parametrize("rate", [0.0, -0.5, 1.0000001, math.nan, math.inf])
def test_the_c_core_refuses_a_bad_rate_in_its_descriptor(rate):
    """A Cell built around with_hyperparameters' check (dataclasses.replace)
    still cannot run the C core with a rate outside (0, 1]: the core refuses
    it (FRNN_ERR_UNSUPPORTED), the layer raises, nothing is computed."""
    import dataclasses

    from fastrnn import _core
    bad = dataclasses.replace(cells.get("leaky"), hyperparameters=(("leak_rate", rate),))
    x, w_ih, w_hh, b, h0 = (np.zeros(s) for s in ((2, 1, 3), (4, 3), (4, 4), (4,), (1, 4)))
    out, hn = np.full((2, 1, 4), 7.0), np.full((1, 4), 7.0)
    with pytest.raises(Exception):
        _core.forward(bad, x, w_ih, w_hh, b, b, h0, None, out, hn, None, None)
    assert (out == 7.0).all() and (hn == 7.0).all()


# -- the math, against float64 torch autograd -----------------------------------

def torch_leaky(x, w_ih, w_hh, b_ih, b_hh, h0, rate, lengths=None):
    """The recurrence in float64 torch ops; a row stops updating after its
    length and outputs 0 (torch's packed semantics). Returns output, h_n and
    the leaf tensors (for their .grad)."""
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in (x, w_ih, w_hh, b_ih, b_hh, h0)]
    X, W_ih, W_hh, B_ih, B_hh, h = leaves
    T, B = x.shape[:2]
    lengths = torch.tensor(lengths if lengths is not None else (T,) * B)
    outs = []
    for t in range(T):
        u = torch.tanh(X[t] @ W_ih.T + B_ih + h @ W_hh.T + B_hh)
        valid = (lengths > t)[:, None]
        h = torch.where(valid, (1 - rate) * h + rate * u, h)
        outs.append(torch.where(valid, h, torch.zeros_like(h)))
    return torch.stack(outs), h, leaves


def problem(seed, T=6, B=3, I=4, H=5):
    rng = np.random.default_rng(seed)
    return dict(x=rng.standard_normal((T, B, I)), w_ih=rng.standard_normal((H, I)) * 0.6,
                w_hh=rng.standard_normal((H, H)) * 0.6, b_ih=rng.standard_normal(H) * 0.2,
                b_hh=rng.standard_normal(H) * 0.2, h0=rng.standard_normal((B, H)),
                d_out=rng.standard_normal((T, B, H)), d_hn=rng.standard_normal((B, H)))


def reference(p, rate, lengths=None):
    out, hn, leaves = torch_leaky(p["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["h0"],
                                  rate, lengths)
    ((out * torch.tensor(p["d_out"])).sum() + (hn * torch.tensor(p["d_hn"])).sum()).backward()
    return out.detach().numpy(), hn.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


def test_the_reference_gradient_matches_finite_differences():
    """The torch recurrence above is itself checked once: central float64
    differences of its loss w.r.t. a few entries of every argument."""
    p = problem(7, T=4, B=2, I=3, H=3)
    rate = 0.3
    _, _, grads = reference(p, rate)
    names = ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0")

    def loss(q):
        out, hn, _ = torch_leaky(q["x"], q["w_ih"], q["w_hh"], q["b_ih"], q["b_hh"], q["h0"], rate)
        return float((out.detach().numpy() * q["d_out"]).sum()
                     + (hn.detach().numpy() * q["d_hn"]).sum())

    eps = 1e-6
    for name, grad in zip(names, grads):
        for flat in range(0, p[name].size, max(1, p[name].size // 4)):
            idx = np.unravel_index(flat, p[name].shape)
            plus, minus = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd = (loss(plus) - loss(minus)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 1e-7 * max(1.0, abs(fd)), (name, idx, fd, grad[idx])


def _run(p, cell, dtype, backend, lengths=None):
    c = {k: v.astype(dtype) for k, v in p.items()}
    res = F.forward(cell, c["x"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], c["h0"],
                    backend=backend, training=True, lengths=lengths)
    g = F.backward(res, c["d_out"], c["d_hn"])
    return res, g


def _assert_matches(res, g, ref, dtype, what):
    out, hn, grads = ref
    assert res.output.dtype == dtype and g.weight_hh.dtype == dtype  # never silently cast
    errors = {"output": rel_err(res.output, out), "h_n": rel_err(res.h_n, hn)}
    for name, got, want in zip(("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0"),
                               (g.x, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh, g.h0), grads):
        errors[name] = rel_err(got, want)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], (what, worst, errors[worst])


@pytest.mark.parametrize("rate", RATES)
def test_forward_backward_match_torch(rate, engine, dtype):
    p = problem(1)
    _assert_matches(*_run(p, leaky(rate), dtype, engine), reference(p, rate), dtype, rate)


@pytest.mark.parametrize("rate", RATES)
def test_lengths_match_torch(rate, backend, dtype):
    p = problem(2, T=7, B=4)
    lengths = np.array([7, 3, 0, 5])
    p["d_out"] = p["d_out"] * (np.arange(7)[:, None] < lengths)[:, :, None]  # ignored past a length
    _assert_matches(*_run(p, leaky(rate), dtype, backend, lengths), reference(p, rate, lengths),
                    dtype, rate)


@pytest.mark.parametrize("rate", RATES)
def test_step_and_stream_match_torch(rate, backend, dtype):
    p = problem(3, T=4)
    out, _, _ = reference(p, rate)
    c = {k: v.astype(dtype) for k, v in p.items()}
    h = c["h0"].copy()
    for t in range(4):  # h_out aliasing h: the update in place
        F.step(leaky(rate), c["x"][t], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], h,
               backend=backend, h_out=h)
        assert rel_err(h, out[t]) <= TOLERANCE[np.dtype(dtype)]
    from fastrnn import stream as streams
    s = streams.create(leaky(rate), c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], batch=3,
                       h0=c["h0"], backend=backend)
    for t in range(4):
        h = s(c["x"][t])
        h = h[0] if isinstance(h, tuple) else h
        assert rel_err(h, out[t]) <= TOLERANCE[np.dtype(dtype)]


def test_rate_one_is_the_elman_tanh_cell(engine, dtype):
    """a = 1 gives rnn_tanh's outputs and gradients, to rounding."""
    p = problem(4)
    res_l, g_l = _run(p, "leaky", dtype, engine)  # by name: the default rate 1.0
    res_t, g_t = _run(p, "rnn_tanh", dtype, engine)
    tol = TOLERANCE[np.dtype(dtype)]
    for got, want in ((res_l.output, res_t.output), (res_l.h_n, res_t.h_n), (g_l.x, g_t.x),
                      (g_l.weight_ih, g_t.weight_ih), (g_l.weight_hh, g_t.weight_hh),
                      (g_l.bias_ih, g_t.bias_ih), (g_l.bias_hh, g_t.bias_hh), (g_l.h0, g_t.h0)):
        assert rel_err(got, want) <= tol


def test_the_rate_reaches_the_backend(backend):
    """A rate below 1 changes the result (the rate is not dropped on the way
    to the kernels), and the saved result carries it to backward."""
    p = problem(5)
    slow, _ = _run(p, leaky(0.3), np.float64, backend)
    fast, _ = _run(p, "leaky", np.float64, backend)
    assert rel_err(slow.output, fast.output) > 1e-2
    assert slow.saved.cell.hyperparameter("leak_rate") == 0.3


# -- the layer class -------------------------------------------------------------

def test_leaky_rnn_layer_runs_its_rate_with_torch_names(backend, dtype):
    p = problem(6)
    layer = fastrnn.LeakyRNN(4, 5, 0.3, dtype=dtype, backend=backend)
    assert layer.leak_rate == 0.3 and layer.descriptor == leaky(0.3) and layer.cell == "leaky"
    assert list(layer.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                        "bias_hh_l0"]
    layer.load_state_dict({"weight_ih_l0": p["w_ih"], "weight_hh_l0": p["w_hh"],
                           "bias_ih_l0": p["b_ih"], "bias_hh_l0": p["b_hh"]})
    res = layer(p["x"].astype(dtype), p["h0"].astype(dtype), training=True)
    g = layer.backward(res, p["d_out"].astype(dtype), p["d_hn"].astype(dtype))
    out, hn, grads = reference(p, 0.3)
    tol = TOLERANCE[np.dtype(dtype)]
    assert rel_err(res.output, out) <= tol and rel_err(res.h_n, hn) <= tol
    assert rel_err(g.params["weight_hh_l0"], grads[2]) <= tol
    s = layer.stream(batch=3, h0=p["h0"].astype(dtype))
    assert rel_err(s(p["x"][0].astype(dtype)), out[0]) <= tol


def test_leaky_rnn_layer_at_rate_one_is_the_tanh_rnn():
    elman = fastrnn.RNN(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    layer = fastrnn.LeakyRNN(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.testing.assert_allclose(layer(x).output, elman(x).output, rtol=0, atol=1e-14)


def test_leaky_rnn_layer_repr_and_fixed_rate():
    layer = fastrnn.LeakyRNN(3, 4, leak_rate=0.25, num_layers=2)
    assert "leak_rate=0.25" in repr(layer) and "num_layers=2" in repr(layer)
    assert "leak_rate" not in repr(fastrnn.LeakyRNN(3, 4))
    with pytest.raises(AttributeError):
        layer.leak_rate = 0.5  # a new rate is a new layer
    with pytest.raises(TypeError, match="no leaky-integrator layer"):
        fastrnn.LeakyRNN.from_torch(torch.nn.RNN(3, 4))


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, math.nan, True, "0.3"])
def test_leaky_rnn_layer_refuses_bad_rates(bad):
    with pytest.raises(ValueError, match=r"leak_rate must be a finite real number in \(0, 1\]"):
        fastrnn.LeakyRNN(3, 4, leak_rate=bad)


# -- what stores a cell: training, CharLM files ------------------------------------

def test_a_layout_trains_its_rate(trainer):
    """fit_sequence with Layout(Cell at a = 0.3) is not fit_sequence at a = 1
    (the rate reaches every trainer); the stored vectors check the values."""
    from fastrnn import training as tr
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 2, 3)), rng.standard_normal((8, 2, 2))
    losses = []
    for cell in (leaky(0.3), "leaky"):
        spec = tr.TrainSpec(tr.Layout(cell, 3, 4, 2), head="mse", k1=4, k2=4,
                            optimizer=tr.SGD(0.1))
        theta = spec.layout.init(np.float64, seed=0)
        losses.append(tr.fit_sequence(spec, theta, x, y, backend=trainer).losses)
    assert not np.allclose(losses[0], losses[1])
    assert tr.Layout(leaky(0.3), 3, 4, 2).spec.hyperparameter("leak_rate") == 0.3


def test_charlm_saves_and_loads_its_rate(tmp_path):
    from fastrnn.charlm import CharLM, ModelFileError, Vocab
    text = "the cat sat on the mat. " * 20
    lm = CharLM(Vocab.from_text(text), leaky(0.4), 8, seed=0, batch=2, window=5)
    assert lm.cell == "leaky" and lm.descriptor.hyperparameter("leak_rate") == 0.4
    assert "leaky(leak_rate=0.4)" in repr(lm)
    lm.train(text, chars=100)
    loaded = CharLM.load(lm.save(tmp_path / "m.frnn"))
    assert loaded.descriptor == lm.descriptor
    assert loaded.loss(text[:50]) == pytest.approx(lm.loss(text[:50]), rel=1e-12)
    for bad in ({"leak_rate": 1.5}, {"alpha": 0.5}, [0.4]):
        lm._header = lambda bad=bad: {**CharLM._header(lm), "hyperparameters": bad}
        lm.save(tmp_path / "bad.frnn")
        with pytest.raises(ModelFileError, match="hyperparameters"):
            CharLM.load(tmp_path / "bad.frnn")


def test_the_command_line_trains_and_resumes_a_rate(tmp_path):
    import subprocess
    import sys

    from fastrnn.charlm import CharLM
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    model = tmp_path / "m.frnn"

    def run(*args):
        argv = ["train", corpus, "--chars", 300, "--hidden", 8, "--batch", 2, "--window", 5,
                "--checkpoint", model, "--sample-every", 0, *args]
        return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, argv)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    r = run("--cell", "leaky", "--leak-rate", 0.4)
    assert r.returncode == 0, r.stderr
    assert CharLM.load(model).descriptor == leaky(0.4)
    assert run("--resume", model).returncode == 0  # the rate comes from the file
    assert CharLM.load(model).descriptor == leaky(0.4)
    r = run("--resume", model, "--leak-rate", 0.5)
    assert r.returncode == 2 and "--leak-rate 0.5 does not match" in r.stderr
    r = run("--cell", "gru", "--leak-rate", 0.5)
    assert r.returncode == 2 and "--cell gru does not have (--cell leaky has)" in r.stderr
    r = run("--cell", "leaky", "--leak-rate", 1.5)
    assert r.returncode == 2 and "--leak-rate must be a finite real number in (0, 1]" in r.stderr
