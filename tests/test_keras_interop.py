"""fastrnn.interop.keras against Keras 3 itself (on its torch backend).

Every expected value comes from a real Keras layer run on the same input:
weights drawn at random are loaded into Keras and converted into fastrnn
(from the layer object and from its get_weights() list), or drawn by a
fastrnn layer and exported into a fresh Keras layer, and the outputs and
final states must agree on every backend and dtype. Round trips of the
weights are bitwise. Not here: Keras training (the conversion is of trained
weights) and GRU reset_after=False's numbers until fastrnn.GRU has it (the
test skips on that condition, and a second one checks the clear error).
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

import fastrnn  # noqa: E402
from fastrnn.interop import keras as fk  # noqa: E402

from conftest import rel_err  # noqa: E402

# Keras 3.15's variables and tensors call np.array(x, copy=False) on NumPy 2
# and warn on every get_weights(); theirs to fix, noise here
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

if keras.backend.backend() != "torch":  # pragma: no cover - KERAS_BACKEND set elsewhere
    pytest.skip(f"these tests run Keras on torch, not {keras.backend.backend()}",
                allow_module_level=True)

# the brief's bounds: Keras and fastrnn compute the same sums in another order
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
I, H, T, B = 4, 5, 7, 3

# (Keras class, its keyword arguments, the fastrnn class it becomes)
KINDS = {
    "lstm": ("LSTM", {}, fastrnn.LSTM),
    "gru": ("GRU", {}, fastrnn.GRU),
    "simple_tanh": ("SimpleRNN", {"activation": "tanh"}, fastrnn.RNN),
    "simple_relu": ("SimpleRNN", {"activation": "relu"}, fastrnn.RNN),
    "simple_sigmoid": ("SimpleRNN", {"activation": "sigmoid"}, fastrnn.RNN),
}


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _keras_layer(kind, dtype, *, seed=0, build=True, **extra):
    name, kwargs, _ = KINDS[kind]
    layer = getattr(keras.layers, name)(H, return_sequences=True, return_state=True,
                                        dtype=np.dtype(dtype).name, **kwargs, **extra)
    if build:
        layer.build((None, None, I))
        _randomise(layer, seed)
    return layer


def _randomise(keras_obj, seed):
    """Random weights of every array's shape and dtype: Keras's defaults
    (zero biases, an orthogonal recurrent kernel) would hide a bias or gate
    block put in the wrong place."""
    rng = np.random.default_rng(seed)
    keras_obj.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(w.dtype)
                           for w in keras_obj.get_weights()])


def _x(dtype, seed=1, batch=B, steps=T):
    return np.random.default_rng(seed).standard_normal((batch, steps, I)).astype(dtype)


def _states(keras_out):
    """Keras's [output, h, (c)] of return_state=True as numpy arrays."""
    return [_np(o) for o in keras_out]


def _tol(kind, dtype, generic=False):
    """The bound against Keras. On any backend but TensorFlow, Keras 3's type
    promotion turns float64 into float32 (keras.src.backend.common.dtypes:
    BIT64_TO_BIT32_DTYPE, "to be aligned with JAX's default"), so every
    keras.ops product of two float64 arrays is computed in float32. Keras's
    generic recurrent loop is made of those: it runs every SimpleRNN, the
    LSTM / GRU with a mask and the GRU with reset_after=False (generic=True),
    which are therefore float32-exact in Keras itself. Only the unmasked LSTM
    / GRU (reset_after=True), which Keras hands to its torch backend's own
    loop, stays float64, and only there is Keras a float64 reference. The
    float64 SimpleRNN is held to 1e-10 against a NumPy float64 restatement of
    Keras's equations instead (test_simple_rnn_float64_against_kerass_equations),
    and fastrnn's float64 lengths path against torch's packed sequences
    (tests/test_lengths.py)."""
    if np.dtype(dtype) == np.float64 and (generic or KINDS[kind][0] == "SimpleRNN"):
        return TOL[np.dtype(np.float32)]
    return TOL[np.dtype(dtype)]


def _assert_close(got, want, dtype, what, kind="lstm", generic=False):
    err = rel_err(got, want)
    assert err <= _tol(kind, dtype, generic), f"{what}: relative error {err:.2e}"


def _compare_single(fl, keras_out, x, dtype, kind, generic=False):
    """A one-layer, one-direction fastrnn layer against Keras's [output, h, (c)]."""
    res = fl(x)
    out, *state = keras_out
    _assert_close(res.output, out, dtype, "output", kind, generic)
    _assert_close(res.h_n[0], state[0], dtype, "h_n", kind, generic)
    if len(state) == 2:
        _assert_close(res.c_n[0], state[1], dtype, "c_n", kind, generic)
    return res


# -- Keras into fastrnn, fastrnn into Keras -----------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_keras_layer_converts_to_a_fastrnn_layer_with_its_outputs(kind, dtype, backend):
    kl = _keras_layer(kind, dtype)
    x = _x(dtype)
    want = _states(kl(x))
    fl = fk.from_keras(kl, backend=backend)
    assert type(fl) is KINDS[kind][2] and fl.dtype == dtype and fl.batch_first
    assert fl.hidden_size == H and fl.input_size == I
    _compare_single(fl, want, x, dtype, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_weight_list_converts_like_the_layer(kind, dtype):
    kl = _keras_layer(kind, dtype, seed=5)
    name, kwargs, _ = KINDS[kind]
    fl = fk.from_keras_weights(name, kl.get_weights(), **kwargs)
    from_object = fk.from_keras(kl)
    for key, value in from_object.named_parameters().items():
        assert np.array_equal(fl.named_parameters()[key], value), key
    x = _x(dtype, seed=2)
    _compare_single(fl, _states(kl(x)), x, dtype, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_fastrnn_layer_exports_into_keras_with_its_outputs(kind, dtype, backend):
    # fastrnn's own init draws bias_hh != 0: the export must fold it into Keras's bias
    name, kwargs, cls = KINDS[kind]
    extra = {"nonlinearity": kwargs["activation"]} if cls is fastrnn.RNN else {}
    fl = cls(I, H, dtype=dtype, seed=11, batch_first=True, backend=backend, **extra)
    assert np.abs(fl.bias_hh).min() > 0
    kl = _keras_layer(kind, dtype, build=False)
    kl.build((None, None, I))
    kl.set_weights(fk.to_keras_weights(fl))
    x = _x(dtype, seed=3)
    _compare_single(fl, _states(kl(x)), x, dtype, kind)
    # to_keras builds the same thing itself
    built = fk.to_keras(fl, return_state=True)
    assert type(built).__name__ == name
    for got, want in zip(_states(built(x)), _states(kl(x))):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trips_are_bitwise(kind, dtype):
    kl = _keras_layer(kind, dtype, seed=7)
    original = kl.get_weights()
    back = fk.to_keras_weights(fk.from_keras(kl))
    assert len(back) == len(original)
    for got, want in zip(back, original):
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    # fastrnn -> Keras -> fastrnn: the matrices bitwise; Keras's single bias is
    # bias_ih + bias_hh of the original, all of it in bias_ih (GRU: both kept)
    name, kwargs, cls = KINDS[kind]
    extra = {"nonlinearity": kwargs["activation"]} if cls is fastrnn.RNN else {}
    fl = cls(I, H, dtype=dtype, seed=4, **extra)
    again = fk.from_keras_weights(name, fk.to_keras_weights(fl), **kwargs)
    for key in ("weight_ih", "weight_hh"):
        assert np.array_equal(getattr(again, key), getattr(fl, key)), key
    if cls is fastrnn.GRU:
        assert np.array_equal(again.bias_ih, fl.bias_ih)
        assert np.array_equal(again.bias_hh, fl.bias_hh)
    else:
        assert np.array_equal(again.bias_ih, fl.bias_ih + fl.bias_hh)
        assert np.array_equal(again.bias_hh, np.zeros_like(fl.bias_hh))


@pytest.mark.parametrize("kind", ["simple_tanh", "simple_relu", "simple_sigmoid"])
def test_simple_rnn_float64_against_kerass_equations(kind, backend):
    # Keras's own float64 SimpleRNN is float32-exact (see _tol): restate its
    # cell, h = act(x @ kernel + bias + h @ recurrent_kernel), in float64, in
    # Keras's layout, with the Keras layer's weights
    kl = _keras_layer(kind, np.float64, seed=14)
    kernel, recurrent, bias = kl.get_weights()
    act = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0),
           "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}[KINDS[kind][1]["activation"]]
    x = _x(np.float64, seed=15)
    h, outputs = np.zeros((B, H)), []
    for t in range(T):
        h = act(x[:, t] @ kernel + bias + h @ recurrent)
        outputs.append(h)
    want = np.stack(outputs, axis=1)
    res = fk.from_keras(kl, backend=backend)(x)
    assert rel_err(res.output, want) <= 1e-10 and rel_err(res.h_n[0], h) <= 1e-10
    # and Keras itself agrees to float32's precision
    assert rel_err(_np(kl(x)[0]), want) <= 1e-5


def test_gate_blocks_land_where_the_docs_say():
    # hand-made kernels: Keras block j holds the value j + 1 in every entry
    def kernel(rows, gates):
        return np.repeat(np.arange(1.0, gates + 1), H)[None, :].repeat(rows, 0)
    # GRU: Keras z, r, h -> torch r, z, n; biases (2, 3H) input then recurrent
    gru = fk.from_keras_weights("GRU", [kernel(I, 3), kernel(H, 3),
                                        np.stack([np.repeat([1.0, 2, 3], H),
                                                  np.repeat([10.0, 20, 30], H)])])
    assert gru.weight_ih[:, 0].tolist() == [2.0] * H + [1.0] * H + [3.0] * H
    assert gru.weight_hh[:, 0].tolist() == [2.0] * H + [1.0] * H + [3.0] * H
    assert gru.bias_hh.tolist() == [20.0] * H + [10.0] * H + [30.0] * H
    # LSTM: Keras i, f, c, o is torch's i, f, g, o; the one bias goes to bias_ih
    lstm = fk.from_keras_weights("LSTM", [kernel(I, 4), kernel(H, 4), np.repeat([1.0, 2, 3, 4], H)])
    assert lstm.weight_ih[:, 0].tolist() == [1.0] * H + [2.0] * H + [3.0] * H + [4.0] * H
    assert lstm.bias_ih.tolist() == [1.0] * H + [2.0] * H + [3.0] * H + [4.0] * H
    assert not lstm.bias_hh.any()
    # a kernel column is a torch row: weight_ih[j, i] = kernel[i, j]
    k = np.arange(I * H, dtype=np.float64).reshape(I, H)
    rnn = fk.from_keras_weights("SimpleRNN", [k, np.eye(H), np.zeros(H)])
    assert np.array_equal(rnn.weight_ih, k.T)


def test_without_bias(dtype):
    kl = _keras_layer("gru", dtype, use_bias=False)
    assert len(kl.get_weights()) == 2
    fl = fk.from_keras(kl)
    assert not fl.bias and fl.bias_ih is None
    x = _x(dtype)
    _compare_single(fl, _states(kl(x)), x, dtype, "gru")
    assert len(fk.to_keras_weights(fl)) == 2


def test_dtype_is_converted_only_when_asked():
    kl = _keras_layer("lstm", np.float32)
    assert fk.from_keras(kl).dtype == np.float32
    wide = fk.from_keras(kl, dtype=np.float64)
    assert wide.dtype == np.float64
    assert np.array_equal(wide.weight_hh, fk.from_keras(kl).weight_hh.astype(np.float64))


def test_time_major_layer_on_request():
    kl = _keras_layer("lstm", np.float64)
    x = _x(np.float64)
    fl = fk.from_keras(kl, batch_first=False)
    res = fl(np.ascontiguousarray(x.transpose(1, 0, 2)))
    _assert_close(res.output.transpose(1, 0, 2), _np(kl(x)[0]), np.float64, "output")


# -- stacks and Bidirectional -------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_relu"])
def test_sequential_stack_is_a_stacked_layer(kind, dtype, backend):
    name, kwargs, cls = KINDS[kind]
    make = getattr(keras.layers, name)
    model = keras.Sequential([keras.Input((None, I), dtype=np.dtype(dtype).name)] +
                             [make(H, return_sequences=True, dtype=np.dtype(dtype).name, **kwargs)
                              for _ in range(3)])
    _randomise(model, 2)
    x = _x(dtype, seed=4)
    fl = fk.from_keras(model, backend=backend)
    assert type(fl) is cls and fl.num_layers == 3 and not fl.bidirectional
    _assert_close(fl(x).output, _np(model(x)), dtype, "output", kind)
    # and back: the flat list is Sequential's get_weights() order
    for got, want in zip(fk.to_keras_weights(fl), model.get_weights()):
        assert np.array_equal(got, want)
    rebuilt = fk.to_keras(fl)
    assert np.array_equal(_np(rebuilt(x)), _np(model(x)))


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_is_a_bidirectional_layer(kind, dtype, backend):
    name, kwargs, cls = KINDS[kind]
    inner = getattr(keras.layers, name)(H, return_sequences=True, return_state=True,
                                        dtype=np.dtype(dtype).name, **kwargs)
    bi = keras.layers.Bidirectional(inner, dtype=np.dtype(dtype).name)
    bi.build((None, None, I))
    _randomise(bi, 3)
    x = _x(dtype, seed=5)
    out, *states = _states(bi(x))
    fl = fk.from_keras(bi, backend=backend)
    assert type(fl) is cls and fl.bidirectional and fl.num_layers == 1
    res = fl(x)
    _assert_close(res.output, out, dtype, "output", kind)
    # Keras: [output, forward h, (forward c), backward h, (backward c)]
    per = len(states) // 2
    _assert_close(res.h_n[0], states[0], dtype, "forward h_n", kind)
    _assert_close(res.h_n[1], states[per], dtype, "backward h_n", kind)
    if per == 2:
        _assert_close(res.c_n[0], states[1], dtype, "forward c_n", kind)
        _assert_close(res.c_n[1], states[3], dtype, "backward c_n", kind)
    for got, want in zip(fk.to_keras_weights(fl), bi.get_weights()):
        assert np.array_equal(got, want)
    rebuilt = fk.to_keras(fl, return_state=True)
    assert type(rebuilt).__name__ == "Bidirectional"
    for got, want in zip(_states(rebuilt(x)), [out] + states):
        assert np.array_equal(got, want)


def test_stack_of_bidirectional_layers_with_a_mask(dtype):
    model = keras.Sequential([keras.Input((None, I), dtype=np.dtype(dtype).name),
                              keras.layers.Masking(0.0)] +
                             [keras.layers.Bidirectional(keras.layers.LSTM(
                                 H, return_sequences=True, dtype=np.dtype(dtype).name),
                                 dtype=np.dtype(dtype).name) for _ in range(2)])
    _randomise(model, 8)
    x = _x(dtype, seed=6)
    lengths = np.array([7, 2, 4])
    for b, L in enumerate(lengths):
        x[b, L:] = 0.0  # Masking(0.0) masks these steps
    fl = fk.from_keras(model)
    assert fl.num_layers == 2 and fl.bidirectional
    mask = np.any(x != 0.0, axis=-1)
    assert np.array_equal(fk.lengths_from_mask(mask), lengths)
    res = fl(x, lengths=fk.lengths_from_mask(mask))
    want = _np(model(x))
    for b, L in enumerate(lengths):
        _assert_close(res.output[b, :L], want[b, :L], dtype, f"row {b}'s valid steps", generic=True)


# -- masks and go_backwards ------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_trailing_padding_mask_is_lengths(kind, dtype, backend):
    kl = _keras_layer(kind, dtype, seed=9)
    x = _x(dtype, seed=7, batch=4)
    lengths = np.array([7, 3, 1, 5])
    mask = np.arange(T)[None, :] < lengths[:, None]
    out, *state = _states(kl(x, mask=mask))
    fl = fk.from_keras(kl, backend=backend)
    res = fl(x, lengths=fk.lengths_from_mask(mask))
    # final states agree; outputs on the valid steps only
    _assert_close(res.h_n[0], state[0], dtype, "h_n", kind, generic=True)
    if len(state) == 2:
        _assert_close(res.c_n[0], state[1], dtype, "c_n", kind, generic=True)
    for b, L in enumerate(lengths):
        _assert_close(res.output[b, :L], out[b, :L], dtype, f"row {b}'s valid steps", kind,
                      generic=True)
        # where they differ (documented): Keras repeats the last valid output,
        # fastrnn writes zeros
        assert not res.output[b, L:].any()
        assert np.array_equal(out[b, L:], np.repeat(out[b, L - 1:L], T - L, axis=0))


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_tanh"])
def test_bidirectional_with_a_mask(kind, dtype):
    name, kwargs, _ = KINDS[kind]
    bi = keras.layers.Bidirectional(getattr(keras.layers, name)(
        H, return_sequences=True, return_state=True, dtype=np.dtype(dtype).name, **kwargs),
        dtype=np.dtype(dtype).name)
    bi.build((None, None, I))
    _randomise(bi, 10)
    x = _x(dtype, seed=8, batch=4)
    lengths = np.array([2, 7, 0, 4])
    mask = np.arange(T)[None, :] < lengths[:, None]
    out, *states = _states(bi(x, mask=mask))
    res = fk.from_keras(bi)(x, lengths=fk.lengths_from_mask(mask))
    per = len(states) // 2  # an all-masked row (length 0) keeps its zero initial state
    _assert_close(res.h_n[0], states[0], dtype, "forward h_n", kind, generic=True)
    _assert_close(res.h_n[1], states[per], dtype, "backward h_n", kind, generic=True)
    for b, L in enumerate(lengths):
        _assert_close(res.output[b, :L], out[b, :L], dtype, f"row {b}'s valid steps", kind,
                      generic=True)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_sigmoid"])
def test_go_backwards_runs_on_the_reversed_input(kind, dtype):
    kl = _keras_layer(kind, dtype, seed=12, go_backwards=True)
    with pytest.raises(ValueError, match="go_backwards"):
        fk.from_keras(kl)
    fl = fk.from_keras(kl, reverse_input=True)
    x = _x(dtype, seed=9, batch=4)
    _compare_single(fl, _states(kl(x)), fk.reverse_time(x), dtype, kind)
    # with a mask: fastrnn's step j is Keras's step T - L + j; final states agree
    lengths = np.array([7, 3, 1, 5])
    mask = np.arange(T)[None, :] < lengths[:, None]
    out, *state = _states(kl(x, mask=mask))
    res = fl(fk.reverse_time(x, lengths), lengths=lengths)
    _assert_close(res.h_n[0], state[0], dtype, "h_n", kind, generic=True)
    for b, L in enumerate(lengths):
        _assert_close(res.output[b, :L], out[b, T - L:], dtype, f"row {b}'s valid steps",
                      kind, generic=True)


def test_reverse_time_reverses_each_rows_valid_steps():
    x = np.arange(2 * 4 * 1, dtype=np.float64).reshape(2, 4, 1)  # rows [0 1 2 3], [4 5 6 7]
    assert fk.reverse_time(x)[:, :, 0].tolist() == [[3, 2, 1, 0], [7, 6, 5, 4]]
    assert fk.reverse_time(x, [2, 4])[:, :, 0].tolist() == [[1, 0, 2, 3], [7, 6, 5, 4]]
    tm = np.ascontiguousarray(x.transpose(1, 0, 2))
    assert fk.reverse_time(tm, [2, 4], batch_first=False)[:, :, 0].T.tolist() == \
        [[1, 0, 2, 3], [7, 6, 5, 4]]


def test_lengths_from_mask_takes_trailing_padding_only():
    assert fk.lengths_from_mask([[1, 1, 0], [0, 0, 0], [1, 1, 1]]).tolist() == [2, 0, 3]
    assert fk.lengths_from_mask(np.array([[True, False]])).dtype == np.int64
    with pytest.raises(ValueError, match="mask row 1 is not trailing padding"):
        fk.lengths_from_mask([[1, 0, 0], [1, 0, 1]])  # a gap
    with pytest.raises(ValueError, match="mask row 0 is not trailing padding"):
        fk.lengths_from_mask([[0, 1, 1]])  # leading padding
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, T\)"):
        fk.lengths_from_mask([1, 1, 0])
    with pytest.raises(ValueError, match="mask must be boolean"):
        fk.lengths_from_mask([[1, 2]])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, T, features\)"):
        fk.reverse_time(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="lengths"):
        fk.reverse_time(np.zeros((2, 3, 1)), [4, 1])  # longer than T = 3


# -- GRU reset_after=False (the original GRU: fastrnn.GRU(..., reset_after=False)) --

def test_reset_after_false_converts_both_ways(dtype):
    kl = _keras_layer("gru", dtype, reset_after=False, seed=13)
    x = _x(dtype, seed=10)
    fl = fk.from_keras(kl)
    assert not fl.reset_after and not fl.bias_hh.any()
    _compare_single(fl, _states(kl(x)), x, dtype, "gru", generic=True)
    for got, want in zip(fk.to_keras_weights(fl), kl.get_weights()):
        assert np.array_equal(got, want)
    own = fastrnn.GRU(I, H, reset_after=False, batch_first=True, dtype=dtype, seed=2)
    built = fk.to_keras(own, return_state=True)
    assert built.reset_after is False
    _compare_single(own, _states(built(x)), x, dtype, "gru", generic=True)


# -- bad input ----------------------------------------------------------------------
def test_wrong_weight_lists_are_refused_by_name():
    kl = _keras_layer("lstm", np.float32)
    w = kl.get_weights()
    with pytest.raises(ValueError, match="weights must hold 3 arrays .* got 2"):
        fk.from_keras_weights("LSTM", w[:2])
    with pytest.raises(ValueError, match="weights must hold 6 arrays"):
        fk.from_keras_weights("LSTM", w, bidirectional=True)
    with pytest.raises(ValueError, match="bias must have shape"):
        fk.from_keras_weights("LSTM", [w[0], w[1], w[2][:-1]])
    with pytest.raises(ValueError, match="recurrent_kernel.*shape"):
        fk.from_keras_weights("GRU", w)  # an LSTM's (H, 4H) is no GRU's (H, 3H)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 15\)"):
        fk.from_keras_weights("GRU", _keras_layer("gru", np.float32, reset_after=False)
                              .get_weights())
    # layer 1 of a stack reads layer 0's output: its kernel must be (H, 4H)
    with pytest.raises(ValueError, match=r"layer 1\) kernel must have shape \(5, 20\)"):
        fk.from_keras_weights("LSTM", w + w, num_layers=2)  # w's kernel is (I=4, 20)
    with pytest.raises(TypeError, match=r"weights\[0\] must be float32 or float64, got int64"):
        fk.from_keras_weights("LSTM", [w[0].astype(np.int64), w[1], w[2]])
    with pytest.raises(TypeError, match="weights must all have one dtype"):
        fk.from_keras_weights("LSTM", [w[0].astype(np.float64), w[1], w[2]])
    with pytest.raises(TypeError, match="weights must be a list of arrays"):
        fk.from_keras_weights("LSTM", w[0])
    with pytest.raises(ValueError, match="layer must be a Keras LSTM, GRU or SimpleRNN"):
        fk.from_keras_weights("ConvLSTM2D", w)


@pytest.mark.parametrize("name,kwargs,argument", [
    ("SimpleRNN", {"activation": "selu"}, "activation"),
    ("LSTM", {"activation": "relu"}, "activation"),
    ("GRU", {"recurrent_activation": "hard_sigmoid"}, "recurrent_activation"),
    ("LSTM", {"recurrent_activation": "tanh"}, "recurrent_activation"),
])
def test_unsupported_activations_are_refused_by_name(name, kwargs, argument):
    layer = getattr(keras.layers, name)(H, **kwargs)
    layer.build((None, None, I))
    with pytest.raises(ValueError, match=f"{argument} must be"):
        fk.from_keras(layer)
    with pytest.raises(ValueError, match=f"{argument} must be"):
        fk.from_keras_weights(name, layer.get_weights(), **kwargs)


def test_unsupported_keras_objects_are_refused():
    def tanh(z):  # a custom function, whatever its name, is not Keras's tanh
        return z

    custom = keras.layers.SimpleRNN(H, activation=tanh)
    custom.build((None, None, I))
    with pytest.raises(ValueError, match="activation must be one of Keras's built-in activations"):
        fk.from_keras(custom)
    summed = keras.layers.Bidirectional(keras.layers.LSTM(H), merge_mode="sum")
    summed.build((None, None, I))
    with pytest.raises(ValueError, match="merge_mode must be 'concat'.*'sum'"):
        fk.from_keras(summed)
    with pytest.raises(ValueError, match="has no weights yet"):
        fk.from_keras(keras.layers.LSTM(H))
    with pytest.raises(ValueError, match="must be a Keras LSTM, GRU or SimpleRNN"):
        fk.from_keras(keras.layers.Dense(3))
    mixed = keras.Sequential([keras.Input((None, I)), keras.layers.LSTM(H, return_sequences=True),
                              keras.layers.GRU(H)])
    with pytest.raises(ValueError, match="must all be alike"):
        fk.from_keras(mixed)
    widths = keras.Sequential([keras.Input((None, I)), keras.layers.GRU(H, return_sequences=True),
                               keras.layers.GRU(H + 1)])
    with pytest.raises(ValueError, match="must all be alike"):
        fk.from_keras(widths)
    dense = keras.Sequential([keras.Input((None, I)), keras.layers.GRU(H, return_sequences=True),
                              keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"layer.layers\[1\] must be a Keras LSTM"):
        fk.from_keras(dense)
    backwards = keras.Sequential([keras.Input((None, I)),
                                  keras.layers.GRU(H, return_sequences=True, go_backwards=True)])
    with pytest.raises(ValueError, match="go_backwards=True"):
        fk.from_keras(backwards)
    with pytest.raises(TypeError, match="layer must be a fastrnn.RNN, LSTM or GRU"):
        fk.to_keras_weights(keras.layers.LSTM(H))
    with pytest.raises(ValueError, match="return_state=True cannot be given to a stack"):
        fk.to_keras(fastrnn.LSTM(I, H, num_layers=2), return_state=True)

