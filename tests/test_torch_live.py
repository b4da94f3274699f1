"""Live cross-check against PyTorch (skipped when torch is not installed).

Fresh random shapes (not the stored vectors) through torch.nn modules in
float64 autograd, plus conversion of a torch module with from_torch.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn

from conftest import TOLERANCE, rel_err

torch = pytest.importorskip("torch")

MODULES = {
    "rnn_tanh": lambda I, H, bias: torch.nn.RNN(I, H, nonlinearity="tanh", bias=bias),
    "rnn_relu": lambda I, H, bias: torch.nn.RNN(I, H, nonlinearity="relu", bias=bias),
    "lstm": lambda I, H, bias: torch.nn.LSTM(I, H, bias=bias),
    "gru": lambda I, H, bias: torch.nn.GRU(I, H, bias=bias),
}
LAYERS = {"rnn_tanh": fastrnn.RNN, "rnn_relu": fastrnn.RNN, "lstm": fastrnn.LSTM,
          "gru": fastrnn.GRU}


@pytest.mark.parametrize("cell", sorted(MODULES))
@pytest.mark.parametrize("shape", [(11, 3, 6, 10), (3, 5, 17, 2)], ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_live_against_torch(cell, shape, bias, backend, dtype):
    T, B, I, H = shape
    torch.manual_seed(sum(shape))
    module = MODULES[cell](I, H, bias).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    d_out = torch.randn(T, B, H, dtype=torch.float64)
    d_h = torch.randn(1, B, H, dtype=torch.float64)
    d_c = torch.randn(1, B, H, dtype=torch.float64)
    if cell == "lstm":
        out, (hn, cn) = module(x, (h0, c0))
        loss = (out * d_out).sum() + (hn * d_h).sum() + (cn * d_c).sum()
    else:
        out, hn = module(x, h0)
        loss = (out * d_out).sum() + (hn * d_h).sum()
    loss.backward()

    cls = LAYERS[cell]
    layer = cls.from_torch(module, dtype=dtype, backend=backend)
    assert layer.cell == cell
    args = (x.detach().numpy().astype(dtype), h0.detach().numpy()[0].astype(dtype))
    if cell == "lstm":
        res = layer(*args, c0.detach().numpy()[0].astype(dtype), training=True)
        grads = layer.backward(res, d_out.numpy().astype(dtype), d_h.numpy()[0].astype(dtype),
                               d_c.numpy()[0].astype(dtype))
    else:
        res = layer(*args, training=True)
        grads = layer.backward(res, d_out.numpy().astype(dtype), d_h.numpy()[0].astype(dtype))
    pairs = [(res.output, out.detach().numpy()), (res.h_n, hn.detach().numpy()[0]), (grads.x, x.grad.numpy()),
             (grads.weight_ih, module.weight_ih_l0.grad.numpy()),
             (grads.weight_hh, module.weight_hh_l0.grad.numpy()), (grads.h0, h0.grad.numpy()[0])]
    if bias:
        pairs += [(grads.bias_ih, module.bias_ih_l0.grad.numpy()),
                  (grads.bias_hh, module.bias_hh_l0.grad.numpy())]
    else:
        assert grads.bias_ih is None and grads.bias_hh is None
    if cell == "lstm":
        pairs += [(res.c_n, cn.detach().numpy()[0]), (grads.c0, c0.grad.numpy()[0])]
    worst = max(rel_err(a, b) for a, b in pairs)
    assert worst <= TOLERANCE[dtype], f"relative error {worst:.3e}"


def test_state_dict_round_trip_through_torch():
    module = torch.nn.GRU(4, 6).double()
    layer = fastrnn.GRU(4, 6, dtype=np.float64)
    layer.load_state_dict(module.state_dict())
    module2 = torch.nn.GRU(4, 6).double()
    module2.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    for k, v in module.state_dict().items():
        assert torch.equal(v, module2.state_dict()[k])


def test_from_torch_takes_stacked_bidirectional_batch_first_modules():
    """Every layer and direction, batch_first and dropout come across, and
    the layer computes what the module does (dropout off: inference)."""
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True,
                          dropout=0.25).double().eval()
    layer = fastrnn.GRU.from_torch(module)
    assert (layer.num_layers, layer.bidirectional, layer.batch_first, layer.dropout) == \
        (2, True, True, 0.25)
    assert list(layer.named_parameters()) == [n for n, _ in module.named_parameters()]
    x = np.random.default_rng(0).standard_normal((5, 6, 3))
    with torch.no_grad():
        want, want_h = module(torch.from_numpy(x))
    got = layer(x)
    assert rel_err(got.output, want.numpy()) <= 1e-12
    assert rel_err(got.h_n, want_h.numpy()) <= 1e-12
    projected = torch.nn.LSTM(3, 4, proj_size=2, num_layers=2).double().eval()
    layer = fastrnn.LSTM.from_torch(projected)  # test_projection.py checks it to the vectors
    assert layer.proj_size == 2
    assert list(layer.named_parameters()) == [n for n, _ in projected.named_parameters()]
    with torch.no_grad():
        want, (want_h, want_c) = projected(torch.from_numpy(x[:, :, :3].copy()))
    got = layer(x[:, :, :3].copy())
    assert rel_err(got.output, want.numpy()) <= 1e-12
    assert rel_err(got.h_n, want_h.numpy()) <= 1e-12 and rel_err(got.c_n, want_c.numpy()) <= 1e-12
