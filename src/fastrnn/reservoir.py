"""Reservoir computing: echo-state networks with reservoirpy's vocabulary.

What this is: a fixed random recurrent layer (the *reservoir*) run by the
leaky-integrator cell's forward, and a linear readout (:class:`Ridge`)
fitted in closed form on the reservoir's states. The names, defaults and
semantics are those of reservoirpy 0.4 (``Reservoir``, ``Ridge``, ``ESN``,
``units``, ``lr``, ``sr``, ``input_scaling``, ``rc_connectivity``,
``input_connectivity``, ``bias``, ``ridge``, ``warmup``), so a reservoirpy
configuration carries over unchanged. What it deliberately is not: a
reservoirpy clone. There is no node graph, no feedback or input-to-readout
edge, no online learning, no per-unit leak rates, no multi-series batches
and no initializer objects; the readout is not trained through the
reservoir (nothing here calls backward).

The equations, for an input series u_1 .. u_T of ``features`` values and a
state s of ``units`` values (s_0 = the carried state, zeros after
:meth:`Reservoir.reset`)::

    s_t = (1 - lr) s_(t-1) + lr tanh(W_in u_t + W s_(t-1) + b)      reservoir
    y_t = W_out^T s_t + b_out                                         readout

with W (units, units) sparse random N(0, 1) weights rescaled so that its
spectral radius max |eig(W)| is ``sr``; W_in (units, features) sparse random
+-1 weights times ``input_scaling``; b the constant (or per-unit) ``bias``.
That is the leaky-integrator cell ``fastrnn.cells.get("leaky")`` with leak
rate a = lr, weight_ih = W_in, weight_hh = W, bias_ih = b, no bias_hh.

The readout fit (ridge regression with an unpenalised intercept, as
reservoirpy's ``Ridge``): over the states S (n, units) and targets Y
(n, outputs) left after dropping the first ``warmup`` steps, with means
s_mean, y_mean and the centred S_c = S - s_mean, Y_c = Y - y_mean::

    (S_c^T S_c + ridge I) W_out = S_c^T Y_c,     b_out = y_mean - s_mean W_out

solved by scipy.linalg.solve (a Cholesky factorisation: the matrix is
symmetric positive definite whenever ridge > 0). Without ``fit_bias`` the
same equations hold with s_mean = y_mean = 0.

Dense weights, by choice: the generated W and W_in are drawn sparse
(scipy.sparse) and then materialised as dense arrays, because the C forward
multiplies dense PyTorch-layout matrices (a cache-blocked GEMM beats a
sparse product at the sizes reservoirs are used at). The cost is units**2
elements of memory (2000 units: 32 MB in float64) and, once per reservoir,
an O(units**3) dense eigenvalue computation for the spectral radius (about a
second at 1000 units, a minute near 5000): this module is meant for
reservoirs up to a few thousand units. Beyond that, a sparse product and an
Arnoldi estimate of the spectral radius would be needed, which it does not
have.

float32 and float64: every array of a reservoir has its ``dtype`` (inputs of
another dtype are a TypeError, never a cast). The weights are drawn and
rescaled in float64 and then rounded once to ``dtype``, so the same seed
gives the same weights, to float32 rounding, in both. A Ridge fit
accumulates and solves in float64 whatever the dtype (as fastrnn.nn's
reductions accumulate in float64: the normal equations of correlated states
need more than float32's 7 digits) and rounds W_out and b_out once to the
dtype of its states; its predictions are computed in that dtype.

NRMSE (:func:`nrmse`) is reservoirpy's ``observables.nrmse`` with its default
normalisation: the RMSE divided by the peak-to-peak range of the targets.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import numpy as np

try:
    import scipy.linalg
    import scipy.sparse
except ImportError as exc:  # scipy is an optional dependency of fastrnn
    raise ImportError("fastrnn.reservoir needs scipy (the sparse weight generation and the "
                      "readout's solve): pip install 'fastrnn[reservoir]' or scipy") from exc

from . import _validate as v
from . import cells, functional

__all__ = ["Reservoir", "Ridge", "ESN", "nrmse", "spectral_radius"]


# ---------------------------------------------------------------- arguments

def _connectivity(name: str, value) -> float:
    """A density in (0, 1]: the fraction of a matrix's entries that are non-zero."""
    return v.real_number(name, value, 0.0, 1.0, low_open=True, high_open=False)


def _scale_or_vector(name: str, value, length_name: str):
    """A finite real number (kept as a float) or a 1-D float64 array of finite
    values (its length is checked once the size it must match is known)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return v.real_number(name, value, -math.inf)
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a 1-D array of shape ({length_name},), "
                        f"got {type(value).__name__}") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a number or a 1-D array of shape ({length_name},) "
                         f"of finite values, got shape {arr.shape}")
    return arr


def _vector_length(name: str, value, length: int, length_name: str) -> None:
    if isinstance(value, np.ndarray) and value.shape != (length,):
        raise ValueError(f"{name} must have shape ({length_name},) = ({length},), got "
                         f"{value.shape}")


def _given_matrix(name: str, value, dtype: np.dtype) -> np.ndarray:
    """A user-given weight matrix (dense or scipy.sparse), as a dense
    C-contiguous array of exactly ``dtype``."""
    if scipy.sparse.issparse(value):
        value = value.toarray()
    arr = v.as_input(name, value, 2)
    if arr.dtype != dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but the reservoir's dtype is {dtype}; "
                        f"fastrnn does not mix dtypes: pass dtype=np.{arr.dtype} or convert "
                        f"with .astype(np.{dtype})")
    return arr


def _generators(seed):
    """Two independent generators (W's, then W_in's) from ``seed``: None, an
    integer >= 0 or a numpy Generator. W's stream does not depend on the
    input width, so the same seed gives the same W whatever the input."""
    if isinstance(seed, np.random.Generator):
        sequence = np.random.SeedSequence(int(seed.integers(0, 2**63)))
    else:
        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be None, an integer >= 0 or a numpy.random.Generator, "
                            f"got {type(seed).__name__} {seed!r}")
        sequence = np.random.SeedSequence(v.seed("seed", seed))
    return [np.random.default_rng(child) for child in sequence.spawn(2)]


# ------------------------------------------------------------ weight drawing

def _sparse_random(rng: np.random.Generator, rows: int, cols: int, density: float,
                   draw_values) -> "scipy.sparse.csr_array":
    """A (rows, cols) sparse matrix with round(density * rows * cols) non-zero
    entries (at least one) at distinct uniformly drawn positions, their values
    from ``draw_values(count)``."""
    size = v.element_count(f"a ({rows}, {cols}) weight matrix", rows, cols)
    count = max(1, round(density * size))
    positions = rng.choice(size, size=count, replace=False)
    row_index, col_index = np.unravel_index(positions, (rows, cols))
    return scipy.sparse.coo_array((draw_values(count), (row_index, col_index)),
                                  shape=(rows, cols)).tocsr()


def spectral_radius(matrix) -> float:
    """max |eigenvalue| of a square matrix (dense or scipy.sparse), from
    LAPACK's full eigenvalue decomposition in float64 (numpy.linalg.eigvals)."""
    if scipy.sparse.issparse(matrix):
        matrix = matrix.toarray()
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def _recurrent_weights(rng, units: int, sr: float, connectivity: float) -> np.ndarray:
    """W: sparse N(0, 1) draws with density ``connectivity``, rescaled to
    spectral radius ``sr``, materialised dense (float64)."""
    drawn = _sparse_random(rng, units, units, connectivity, rng.standard_normal)
    dense = v.allocate(f"the dense recurrent weights W ({units}, {units})", (units, units),
                       np.float64)
    drawn.toarray(out=dense)
    radius = spectral_radius(dense)
    if radius < 1e-12:  # e.g. a strictly triangular draw: nothing to rescale
        raise ValueError(
            f"rc_connectivity={connectivity!r} with units={units} drew a recurrent matrix "
            f"with {drawn.nnz} non-zero entries and spectral radius {radius:g}, which no "
            f"factor can scale to sr={sr!r}: raise rc_connectivity or units (or use another "
            f"seed)")
    dense *= sr / radius
    return dense


def _input_weights(rng, units: int, features: int, connectivity: float,
                   input_scaling) -> np.ndarray:
    """W_in: sparse +-1 draws (each sign with probability 1/2) with density
    ``connectivity``, column j times input_scaling (or input_scaling[j]),
    materialised dense (float64)."""
    drawn = _sparse_random(rng, units, features, connectivity,
                           lambda count: rng.choice(np.array([1.0, -1.0]), size=count))
    dense = v.allocate(f"the dense input weights Win ({units}, {features})",
                       (units, features), np.float64)
    drawn.toarray(out=dense)
    dense *= input_scaling  # a float, or (features,) broadcast along the columns
    return dense


# ---------------------------------------------------------- the recurrence

def _run_reservoir(x: np.ndarray, Win: np.ndarray, W: np.ndarray, bias: np.ndarray,
                   lr: float, state: np.ndarray, backend: Optional[str]):
    """The one place the reservoir steps: states (T, units) and the last state.

    s_t = (1 - lr) s_(t-1) + lr tanh(Win u_t + bias + W s_(t-1)), from s_0 =
    ``state``, is the leaky-integrator cell's forward over a batch of one:
    weight_ih = Win, weight_hh = W, bias_ih = bias, no bias_hh, leak rate lr.
    functional.forward checks every array (shape, dtype) once more.
    """
    cell = cells.get("leaky").with_hyperparameters(leak_rate=lr)
    result = functional.forward(cell, x[:, None, :], Win, W, bias, None, h0=state[None, :],
                                backend=backend)
    return result.output[:, 0, :], result.h_n[0]


# ----------------------------------------------------------------- classes

class Reservoir:
    """A pool of leaky-integrator tanh units with fixed random weights.

    ``s_t = (1 - lr) s_(t-1) + lr tanh(Win u_t + W s_(t-1) + bias)``
    (module docstring). Parameters, as reservoirpy 0.4's ``Reservoir``:

    units: the number of units (may be omitted when ``W`` is given).
    lr: leak rate, in (0, 1] (1: no leak, the Elman tanh cell). Default 1.0.
        A scalar only (reservoirpy also takes one per unit).
    sr: spectral radius of W, >= 0. Default 1.0.
    input_scaling: a factor on W_in, or one per input feature (features,).
        Default 1.0.
    input_connectivity: density of W_in, in (0, 1]. Default 0.1.
    rc_connectivity: density of W, in (0, 1]. Default 0.1.
    bias: added to every unit's pre-activation: a number or (units,)
        values (converted to ``dtype`` as a number would be). Default 0.0.
    activation: "tanh", the only one the leaky cell has.
    input_dim: the input width; inferred from the first ``run`` if None.
    W, Win: given weight matrices, dense or scipy.sparse, (units, units) and
        (units, input_dim), of dtype ``dtype``; ``sr`` / ``rc_connectivity``
        (for W) and ``input_scaling`` / ``input_connectivity`` (for Win) are
        then ignored, as in reservoirpy.
    dtype: np.float64 (default) or np.float32.
    seed: None (fresh entropy), an integer >= 0 or a numpy Generator; the same
        integer gives the same weights.
    backend: the fastrnn backend that runs the cell (None: the default one,
        the C core when it is built).

    W is drawn when the reservoir is made and Win when its input width is
    known. ``state`` (units,) is carried from one :meth:`run` to the next
    until :meth:`reset`.
    """

    def __init__(self, units: Optional[int] = None, lr: float = 1.0, sr: float = 1.0,
                 input_scaling: Union[float, np.ndarray] = 1.0,
                 input_connectivity: float = 0.1, rc_connectivity: float = 0.1,
                 bias: Union[float, np.ndarray] = 0.0, activation: str = "tanh",
                 input_dim: Optional[int] = None, W=None, Win=None,
                 dtype=np.float64, seed=None, backend: Optional[str] = None):
        self.dtype = v.float_dtype("dtype", dtype)
        self.lr = v.real_number("lr", lr, 0.0, 1.0, low_open=True, high_open=False)
        self.sr = v.real_number("sr", sr, 0.0)
        self.input_connectivity = _connectivity("input_connectivity", input_connectivity)
        self.rc_connectivity = _connectivity("rc_connectivity", rc_connectivity)
        self.input_scaling = _scale_or_vector("input_scaling", input_scaling, "input_dim")
        if activation != "tanh":
            raise ValueError(f"activation must be 'tanh' (the leaky-integrator cell's), got "
                             f"{activation!r}")
        self.activation = activation
        self.backend = backend
        self._w_rng, self._win_rng = _generators(seed)

        if W is not None:
            W = _given_matrix("W", W, self.dtype)
            if W.shape[0] != W.shape[1]:
                raise ValueError(f"W must be square (units, units), got shape {W.shape}")
            if units is not None and v.integer("units", units, 1) != W.shape[0]:
                raise ValueError(f"units={units} but W has shape {W.shape}")
            units = W.shape[0]
        elif units is None:
            raise TypeError("units is required unless W is given")
        self.units = v.integer("units", units, 1)

        bias = _scale_or_vector("bias", bias, "units")
        _vector_length("bias", bias, self.units, "units")
        self.bias = np.ascontiguousarray(np.broadcast_to(bias, (self.units,)), dtype=self.dtype)

        self.input_dim = None if input_dim is None else v.integer("input_dim", input_dim, 1)
        if Win is not None:
            Win = _given_matrix("Win", Win, self.dtype)
            if Win.shape[0] != self.units or (self.input_dim is not None
                                              and Win.shape[1] != self.input_dim):
                expected = (self.units, "input_dim" if self.input_dim is None else self.input_dim)
                raise ValueError(f"Win must have shape (units, input_dim) = {expected}, got "
                                 f"{Win.shape}")
            if Win.shape[1] < 1:
                raise ValueError(f"Win must have at least one column, got shape {Win.shape}")
            self.input_dim = Win.shape[1]
        elif self.input_dim is not None:
            _vector_length("input_scaling", self.input_scaling, self.input_dim, "input_dim")

        # every argument is checked: draw what was not given (W now, Win once
        # the input width is known)
        if W is None:
            W = _recurrent_weights(self._w_rng, self.units, self.sr,
                                   self.rc_connectivity).astype(self.dtype, copy=False)
        self.W = W
        self.Win = Win
        if Win is None and self.input_dim is not None:
            self._draw_input_weights()
        self.state = np.zeros(self.units, self.dtype)

    def _draw_input_weights(self) -> None:
        _vector_length("input_scaling", self.input_scaling, self.input_dim, "input_dim")
        self.Win = _input_weights(self._win_rng, self.units, self.input_dim,
                                  self.input_connectivity,
                                  self.input_scaling).astype(self.dtype, copy=False)

    def _check_series(self, x) -> np.ndarray:
        x = v.as_input("x", x, 2, self.dtype, dtype_of="the reservoir (its dtype argument)")
        if x.shape[1] < 1 or (self.input_dim is not None and x.shape[1] != self.input_dim):
            width = "input_dim >= 1" if self.input_dim is None else self.input_dim
            raise ValueError(f"x must have shape (timesteps, {width}), got {x.shape}")
        return x

    def run(self, x) -> np.ndarray:
        """The states (timesteps, units) after each step of the series x
        (timesteps, input_dim), from the carried state, which becomes the
        last one."""
        x = self._check_series(x)
        if self.Win is None:
            self.input_dim = x.shape[1]
            self._draw_input_weights()
        states, self.state = _run_reservoir(x, self.Win, self.W, self.bias, self.lr,
                                            self.state, self.backend)
        return states

    def reset(self) -> np.ndarray:
        """Set the state back to zeros; returns the state it had."""
        previous, self.state = self.state, np.zeros(self.units, self.dtype)
        return previous

    def __repr__(self) -> str:
        return (f"Reservoir(units={self.units}, lr={self.lr}, sr={self.sr}, "
                f"input_dim={self.input_dim}, dtype={self.dtype})")


def _check_fit_lengths(x: np.ndarray, y: np.ndarray, warmup) -> int:
    """x (timesteps, features) and y (timesteps, outputs) pair up, and
    ``warmup`` leaves at least one timestep; returns warmup."""
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have as many timesteps as x ({x.shape[0]}), got shape "
                         f"{y.shape}")
    if x.shape[1] < 1 or y.shape[1] < 1:
        raise ValueError(f"x and y need at least one column, got shapes {x.shape} and "
                         f"{y.shape}")
    warmup = v.integer("warmup", warmup, 0)
    if warmup >= x.shape[0]:
        raise ValueError(f"warmup must be smaller than the number of timesteps "
                         f"({x.shape[0]}), got {warmup}")
    return warmup


class Ridge:
    """A linear readout fitted by ridge (Tikhonov) regression in closed form.

    ``y = x W_out + b_out``; :meth:`fit` solves
    ``(X_c^T X_c + ridge I) W_out = X_c^T Y_c`` over centred data and sets
    ``b_out = mean(Y) - mean(X) W_out`` (the intercept is not penalised), as
    reservoirpy 0.4's ``Ridge``. ``Wout`` is (features, outputs), ``bias``
    (outputs,), of the dtype of the data fitted on; both None until fitted.
    The fit itself runs in float64 (module docstring).

    ridge: the L2 penalty, >= 0 (0: least squares, which needs X_c^T X_c to
        be positive definite). Default 0.0.
    fit_bias: learn b_out (True, default) or fix it at zero.
    """

    def __init__(self, ridge: float = 0.0, fit_bias: bool = True):
        self.ridge = v.real_number("ridge", ridge, 0.0)
        self.fit_bias = v.boolean("fit_bias", fit_bias)
        self.Wout: Optional[np.ndarray] = None
        self.bias: Optional[np.ndarray] = None

    def fit(self, x, y, warmup: int = 0) -> "Ridge":
        """Fit on x (timesteps, features) and targets y (timesteps, outputs)
        of the same dtype, dropping their first ``warmup`` steps."""
        x = v.as_input("x", x, 2)
        y = v.as_input("y", y, 2, x.dtype)
        warmup = _check_fit_lengths(x, y, warmup)
        dtype = x.dtype
        # float64 whatever the dtype (as fastrnn.nn's reductions): the normal
        # equations of correlated states square their condition number, which
        # float32's 7 digits cannot hold at the usual ridge (1e-6 .. 1e-9)
        x, y = x[warmup:].astype(np.float64, copy=False), y[warmup:].astype(np.float64, copy=False)
        if self.fit_bias:
            x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
            x, y = x - x_mean, y - y_mean
        gram = x.T @ x
        gram[np.diag_indices_from(gram)] += self.ridge
        try:
            # assume_a="pos": Cholesky; the Gram matrix plus ridge I is SPD for ridge > 0
            Wout = scipy.linalg.solve(gram, x.T @ y, assume_a="pos")
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"the readout's normal equations are singular ({exc}): the states are "
                f"linearly dependent over these timesteps; use a ridge > 0 or a larger one "
                f"(got {self.ridge})"
            ) from None
        bias = (y_mean - x_mean @ Wout) if self.fit_bias else np.zeros(y.shape[1])
        self.Wout = np.ascontiguousarray(Wout, dtype=dtype)  # rounded once, documented
        self.bias = bias.astype(dtype)
        return self

    def run(self, x) -> np.ndarray:
        """The predictions x W_out + b_out, (timesteps, outputs)."""
        if self.Wout is None:
            raise RuntimeError("this Ridge is not fitted yet: call fit(x, y) before run / "
                               "predict")
        x = v.as_input("x", x, 2, self.Wout.dtype, dtype_of="the fitted Wout")
        if x.shape[1] != self.Wout.shape[0]:
            raise ValueError(f"x must have shape (timesteps, {self.Wout.shape[0]}) (the "
                             f"features it was fitted on), got {x.shape}")
        return x @ self.Wout + self.bias

    predict = run


_RESERVOIR_ARGUMENTS = ("units", "lr", "sr", "input_scaling", "input_connectivity",
                        "rc_connectivity", "bias", "activation", "input_dim", "W", "Win",
                        "dtype", "seed", "backend")
_READOUT_ARGUMENTS = ("ridge", "fit_bias")


class ESN:
    """An echo-state network: a :class:`Reservoir` feeding a :class:`Ridge`.

    ``ESN(reservoir, readout)`` or, as reservoirpy's ``ESN``, one set of
    keyword arguments for both (``ESN(units=100, lr=0.3, sr=1.25,
    ridge=1e-6, seed=0)``). :meth:`fit` runs the reservoir over x from its
    carried state (as reservoirpy's does: no reset) and fits the readout on
    the states and y past ``warmup``; :meth:`run` continues from the state
    the reservoir was left in.
    """

    def __init__(self, reservoir: Optional[Reservoir] = None, readout: Optional[Ridge] = None,
                 **kwargs):
        unknown = sorted(set(kwargs) - set(_RESERVOIR_ARGUMENTS) - set(_READOUT_ARGUMENTS))
        if unknown:
            raise TypeError(f"ESN got unexpected keyword arguments {unknown}: it takes a "
                            f"Reservoir's {_RESERVOIR_ARGUMENTS} and a Ridge's "
                            f"{_READOUT_ARGUMENTS}")
        reservoir_kwargs = {k: kwargs[k] for k in _RESERVOIR_ARGUMENTS if k in kwargs}
        readout_kwargs = {k: kwargs[k] for k in _READOUT_ARGUMENTS if k in kwargs}
        if reservoir is None:
            reservoir = Reservoir(**reservoir_kwargs)
        elif reservoir_kwargs:
            raise TypeError(f"pass either reservoir= or its arguments, not both (got "
                            f"{sorted(reservoir_kwargs)})")
        if readout is None:
            readout = Ridge(**readout_kwargs)
        elif readout_kwargs:
            raise TypeError(f"pass either readout= or its arguments, not both (got "
                            f"{sorted(readout_kwargs)})")
        if not isinstance(reservoir, Reservoir):
            raise TypeError(f"reservoir must be a fastrnn.reservoir.Reservoir, got "
                            f"{type(reservoir).__name__}")
        if not isinstance(readout, Ridge):
            raise TypeError(f"readout must be a fastrnn.reservoir.Ridge, got "
                            f"{type(readout).__name__}")
        self.reservoir, self.readout = reservoir, readout

    def fit(self, x, y, warmup: int = 0) -> "ESN":
        """Run the reservoir over x (timesteps, input_dim), then fit the
        readout on its states and y (timesteps, outputs) past ``warmup``."""
        # everything checked before the reservoir runs: a refused fit leaves
        # the carried state as it was
        x = self.reservoir._check_series(x)
        y = v.as_input("y", y, 2, self.reservoir.dtype,
                       dtype_of="the reservoir (its dtype argument)")
        _check_fit_lengths(x, y, warmup)
        states = self.reservoir.run(x)
        self.readout.fit(states, y, warmup=warmup)
        return self

    def run(self, x) -> np.ndarray:
        """The readout's predictions (timesteps, outputs) for the series x."""
        return self.readout.run(self.reservoir.run(x))

    predict = run

    def reset(self) -> np.ndarray:
        """Reset the reservoir's state to zeros; returns the state it had."""
        return self.reservoir.reset()


def nrmse(y_true, y_pred) -> float:
    """sqrt(mean((y_true - y_pred)**2)) / (max(y_true) - min(y_true)), over
    all elements: reservoirpy's observables.nrmse with its default
    normalisation ("minmax", the peak-to-peak range of the targets)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must have the same non-empty shape, got "
                         f"{y_true.shape} and {y_pred.shape}")
    rmse = math.sqrt(float(np.mean((y_true - y_pred) ** 2)))
    return rmse / float(np.ptp(y_true))
