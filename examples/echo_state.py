"""One-step-ahead prediction of the Mackey-Glass series with a fastrnn echo-state network.

What it is: a self-contained example of fastrnn.reservoir. It integrates the
Mackey-Glass delay equation in code (mackey_glass below), trains an ESN
(a Reservoir run by the C leaky-integrator forward, a Ridge readout) on the
first part of the series and predicts the rest one step ahead, prints a
short report and ends with the line ``nrmse: <value>``. With
``--compare-reservoirpy`` it runs reservoirpy's own ESN on the same data with
the same hyperparameters and prints both NRMSE figures and both run times.
What it is not: a benchmark harness (one run, one wall-clock figure each) or
a hyperparameter search. The two ESNs draw their random weights each from
its own generator, so one seed's NRMSE agree in size, not in digits; the
comparison therefore also runs fastrnn on reservoirpy's own weights (the
same states, so the same NRMSE to rounding) and both libraries over
``--seeds`` seeds (the median and range of each, a fairer figure than one draw).

    python examples/echo_state.py [--compare-reservoirpy [--seeds 10]] [--dtype float32]
                                  [--repeats 3] [--plot FILE.png]

An ESN has no learning curve (its readout is one ridge solve), so --plot
draws what it learnt instead: the test series and the one-step predictions,
with their error.

Timings: fit+predict wall clock after the weights are drawn, the best of
``--repeats`` fresh runs each. On a small machine shared with other work,
NumPy's BLAS threads (which spin after each call) compete with fastrnn's
kernel threads and with each other; OPENBLAS_NUM_THREADS=1 gives steadier
figures for both libraries.

NRMSE is reservoirpy's observables.nrmse with its default normalisation: the
RMSE over the test steps divided by the peak-to-peak range of the targets.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastrnn
from fastrnn.reservoir import ESN, nrmse

# The task and the ESN's hyperparameters, shared by both libraries.
SAMPLES = 2000  # series length, one sample per time unit
TRAIN = 1500  # the first TRAIN one-step pairs train, the rest test
WARMUP = 100  # reservoir steps whose states the readout ignores (the washout)
HYPERPARAMETERS = dict(units=300, lr=0.3, sr=1.25, input_scaling=1.0, rc_connectivity=0.1,
                       input_connectivity=0.2, bias=0.0)
RIDGE = 1e-6
SEED = 42


def mackey_glass(samples: int, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                 n: float = 10.0, x0: float = 1.2, dt: float = 0.1, sample_step: float = 1.0,
                 transient: float = 500.0) -> np.ndarray:
    """The Mackey-Glass series dx/dt = beta x(t - tau) / (1 + x(t - tau)**n) - gamma x(t).

    Integration: classical fourth-order Runge-Kutta with step ``dt`` on the
    constant history x(t) = x0 for -tau <= t <= 0 (tau / dt must be an
    integer). A stage's delayed value x(t - tau + dt / 2) falls between two
    grid points and is their mean (linear interpolation), so the scheme is
    second order in dt overall; while t <= tau the delayed value is the
    constant history and the step is exact fourth-order RK. The first
    ``transient`` time units are dropped, then ``samples`` values are
    returned, one every ``sample_step`` time units (float64, shape
    (samples,)). tau = 17 with the standard beta = 0.2, gamma = 0.1, n = 10
    gives the usual mildly chaotic series.
    """
    delay_steps = round(tau / dt)
    stride = round(sample_step / dt)
    if abs(delay_steps * dt - tau) > 1e-9 * tau or abs(stride * dt - sample_step) > 1e-9:
        raise ValueError(f"tau ({tau}) and sample_step ({sample_step}) must be multiples of "
                         f"dt ({dt})")
    first = round(transient / dt)
    steps = first + (samples - 1) * stride
    grid = np.empty(delay_steps + 1 + steps)  # grid[i] = x((i - delay_steps) dt)
    grid[:delay_steps + 1] = x0

    def slope(x, delayed):
        return beta * delayed / (1.0 + delayed ** n) - gamma * x

    for i in range(delay_steps, delay_steps + steps):
        x = grid[i]
        before, after = grid[i - delay_steps], grid[i - delay_steps + 1]
        halfway = 0.5 * (before + after)
        k1 = slope(x, before)
        k2 = slope(x + 0.5 * dt * k1, halfway)
        k3 = slope(x + 0.5 * dt * k2, halfway)
        k4 = slope(x + dt * k3, after)
        grid[i + 1] = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return grid[delay_steps + first::stride][:samples].copy()


def task(dtype):
    """The one-step pairs (u_t, u_(t+1)) of the series scaled to [-1, 1],
    split into train and test: x_train, y_train, x_test, y_test."""
    series = mackey_glass(SAMPLES)
    scaled = 2.0 * (series - series.min()) / (series.max() - series.min()) - 1.0
    x, y = scaled[:-1, None].astype(dtype), scaled[1:, None].astype(dtype)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def run_fastrnn(x_train, y_train, x_test, dtype, backend):
    model = ESN(**HYPERPARAMETERS, ridge=RIDGE, seed=SEED, dtype=dtype, input_dim=1,
                backend=backend)  # input_dim: draw every weight before the clock starts
    start = time.perf_counter()
    model.fit(x_train, y_train, warmup=WARMUP)
    y_pred = model.run(x_test)  # continues from the state training left
    return y_pred, time.perf_counter() - start


def run_reservoirpy(x_train, y_train, x_test, seed=SEED):
    from reservoirpy.nodes import Reservoir, Ridge

    reservoir = Reservoir(**HYPERPARAMETERS, seed=seed)
    model = reservoir >> Ridge(ridge=RIDGE)
    model.initialize(x_train[:1], y_train[:1])  # draws its weights before the clock starts
    start = time.perf_counter()
    model.fit(x_train, y_train, warmup=WARMUP)
    y_pred = model.run(x_test)
    return y_pred, time.perf_counter() - start


def fastrnn_on_reservoirpy_weights(x_train, y_train, x_test):
    """fastrnn's ESN on the W, Win and bias reservoirpy draws from SEED: the
    same reservoir, so the same predictions (to rounding) as reservoirpy's."""
    from reservoirpy.nodes import Reservoir as ReservoirpyReservoir

    from fastrnn.reservoir import Reservoir, Ridge

    theirs = ReservoirpyReservoir(**HYPERPARAMETERS, seed=SEED)
    theirs.initialize(x_train[:1])
    ours = Reservoir(W=theirs.W, Win=theirs.Win, bias=theirs.bias, lr=HYPERPARAMETERS["lr"])
    model = ESN(ours, Ridge(ridge=RIDGE))
    model.fit(x_train, y_train, warmup=WARMUP)
    return model.run(x_test)


def nrmse_over_seeds(seeds, x_train, y_train, x_test, y_test, dtype, backend):
    """The NRMSE of each library's ESN drawn from seeds 0 .. seeds - 1."""
    ours, theirs = [], []
    for seed in range(seeds):
        model = ESN(**HYPERPARAMETERS, ridge=RIDGE, seed=seed, dtype=dtype, backend=backend)
        model.fit(x_train, y_train, warmup=WARMUP)
        ours.append(nrmse(y_test, model.run(x_test)))
        theirs.append(nrmse(y_test, run_reservoirpy(x_train, y_train, x_test, seed)[0]))
    return np.array(ours), np.array(theirs)


def spread(values) -> str:
    return (f"median {np.median(values):.3g}, range [{values.min():.3g}, "
            f"{values.max():.3g}]")


def best_of(repeats, run, *args):
    """The predictions and the shortest fit+predict wall clock of ``repeats``
    runs, each on a freshly made model (same seed, so the same predictions):
    on a shared machine the minimum is the least disturbed figure."""
    y_pred, seconds = run(*args)
    for _ in range(repeats - 1):
        seconds = min(seconds, run(*args)[1])
    return y_pred, seconds


def save_plot(path: str, y_test, y_pred, error: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(len(y_test))
    fig, (series, residual) = plt.subplots(2, 1, figsize=(6.5, 4.5), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 1]})
    series.plot(steps, y_test[:, 0], color="black", linewidth=1.5, label="Mackey-Glass (test)")
    series.plot(steps, y_pred[:, 0], color="tab:orange", linewidth=1, linestyle="--",
                label="ESN, one step ahead")
    series.set_ylabel("series (scaled to [-1, 1])")
    series.set_title(f"echo-state network on Mackey-Glass, NRMSE {error:.2g}")
    series.legend(loc="lower right", fontsize=8)
    series.grid(True, alpha=0.3)
    residual.plot(steps, y_pred[:, 0] - y_test[:, 0], color="tab:red", linewidth=0.8)
    residual.set_ylabel("error")
    residual.set_xlabel("test step (time units after training)")
    residual.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare-reservoirpy", action="store_true",
                        help="also run reservoirpy's ESN on the same task (needs reservoirpy)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--backend", default=None,
                        help="fastrnn backend for the reservoir (default: the C core)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="time fit+predict this many times each, report the shortest")
    parser.add_argument("--seeds", type=int, default=10,
                        help="with --compare-reservoirpy: both libraries' NRMSE over this many "
                             "seeds (0 skips it)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save the test series and the predictions (needs the 'plot' "
                             "extra: matplotlib)")
    args = parser.parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrnn[plot]'")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.seeds < 0:
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    dtype = np.dtype(args.dtype)

    x_train, y_train, x_test, y_test = task(dtype)
    print(f"Mackey-Glass tau=17 (beta 0.2, gamma 0.1, n 10; RK4 dt 0.1, one sample per time "
          f"unit): {SAMPLES} samples scaled to [-1, 1]")
    print(f"one step ahead: train {len(x_train)} steps (washout {WARMUP}), test {len(x_test)}")
    print("ESN: " + ", ".join(f"{k}={v}" for k, v in HYPERPARAMETERS.items())
          + f", ridge={RIDGE}, seed={SEED}, {dtype}")
    if args.compare_reservoirpy and dtype != np.float64:
        parser.error("--compare-reservoirpy runs in float64 (reservoirpy's default)")
    y_pred, seconds = best_of(args.repeats, run_fastrnn, x_train, y_train, x_test, dtype,
                              args.backend)
    error = nrmse(y_test, y_pred)
    print(f"fastrnn {fastrnn.__version__}: fit+predict {seconds:.4f} s (best of "
          f"{args.repeats}), nrmse {error:.6g}")
    if args.compare_reservoirpy:
        import reservoirpy
        rpy_pred, rpy_seconds = best_of(args.repeats, run_reservoirpy, x_train, y_train,
                                        x_test)
        print(f"reservoirpy {reservoirpy.__version__}: fit+predict {rpy_seconds:.4f} s (best "
              f"of {args.repeats}), nrmse {nrmse(y_test, rpy_pred):.6g} (its own weights "
              f"from seed {SEED})")
        print(f"fit+predict time ratio reservoirpy / fastrnn: {rpy_seconds / seconds:.2f}")
        same = fastrnn_on_reservoirpy_weights(x_train, y_train, x_test)
        print(f"fastrnn on reservoirpy's weights (seed {SEED}): nrmse {nrmse(y_test, same):.6g}, "
              f"predictions within {np.max(np.abs(same - rpy_pred)):.1e} of reservoirpy's")
        if args.seeds:
            ours, theirs = nrmse_over_seeds(args.seeds, x_train, y_train, x_test, y_test, dtype,
                                            args.backend)
            print(f"nrmse over seeds 0..{args.seeds - 1}: fastrnn {spread(ours)}; "
                  f"reservoirpy {spread(theirs)}")
    if args.plot:
        save_plot(args.plot, y_test, y_pred, error)
        print(f"predictions plotted in {args.plot}")
    print(f"nrmse: {error:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
