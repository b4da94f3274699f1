"""The benchmark matrix behind ``fastrnn bench``: fastrnn vs torch, all in one run.

    fastrnn bench                               # the whole matrix (minutes)
    fastrnn bench --quick                       # tiny + small shapes, 3 rounds
    fastrnn bench --shapes medium --cells lstm --modes train --threads 1
    fastrnn bench --shapes stacked lengths-cost # the layer workloads only
    fastrnn bench --shapes word-lm gru-classifier  # torch models, before / after convert()

What it measures. Every cell of the matrix (shape x cell x mode x dtype x
thread count) times each contender on the same problem, in this process:

* shapes (B, T, I, H): tiny (1, 256, 8, 32), small (16, 128, 64, 128),
  medium (32, 100, 256, 512), large (64, 64, 1024, 1024);
* cells: rnn_tanh (Elman, torch.nn.RNN), lstm, gru (DEFAULT_CELLS;
  ``--cells`` takes any cell of fastrnn.cells, each built from its
  descriptor; a cell torch.nn has no module for is timed without torch);
* modes: "inference" (forward only: ``training=False`` / ``torch.no_grad``)
  and "train" (one training step: forward plus full BPTT backward of a fixed
  ``d_output``, gradients for the weights, biases *and* the input x; torch:
  ``module(x)[0].backward(d_output)`` with ``x.requires_grad``);
* dtypes: by default float32 at every shape plus float64 at the small shape
  only (``--dtypes`` replaces that with the given list at every shape);
* threads: 1 and 2 (``fastrnn.set_num_threads`` and ``torch.set_num_threads``
  together; NumPy's BLAS stays on one thread, through threadpoolctl when it
  is installed, see timing.thread_counts; the previous counts are restored
  afterwards).

Contenders: fastrnn[c] always (when the compiled core loads) and torch (when
it imports; its module gets the very same parameters, in the same dtype),
with fastrnn[numba] and fastrnn[numpy] beside them at the tiny and small
shapes only by default (they take seconds to minutes at the larger ones;
``--all-backends`` times them everywhere, ``--backends`` names the fastrnn
backends explicitly).

How it times. After one warm-up call per contender (numba compiles there,
buffers get touched, thread pools start), the contenders take turns,
round-robin, for ``--repeat`` rounds, each round starting one contender
further along, so that machine noise and slow drifts fall on all of them
alike. A sample is one call, or for calls under 10 ms enough back-to-back
calls to fill 10 ms (timer resolution and call jitter would dominate
otherwise); the samples are recorded as seconds per call. In multi-thread
cells every sample starts after 20 ms of idle time (timing.SETTLE_S), so that a
thread pool the previous contender left spinning does not take the cores
this one needs. Reported per
contender: median, min and max, achieved GFLOP/s, and "x torch" = torch's
median / the contender's median (> 1: faster than torch).

FLOP convention (stated once, used everywhere): a forward pass costs
``2 * T * B * (I + H) * G * H`` floating-point operations, G = ``Cell.gates``
(1 / 4 / 3 for rnn_tanh / lstm / gru): the two matrix products x W_ih^T and h W_hh^T per
step; the elementwise gate arithmetic is ignored. A training step counts
3 x forward: the forward products, the products of the gate gradients with
the weights (dx, dh) and the weight-gradient products (dW_ih, dW_hh).
GFLOP/s is that count over the median time, for every contender alike.

Layer workloads (fastrnn.bench.stacked), after the matrix in the same
run, in a table of their own: whole layers with per-row lengths, on the
fastrnn backends with the "lengths" feature (numpy at the "-small" sizes
only, unless ``--all-backends`` / ``--backends``), against torch's
``pack_padded_sequence(..., enforce_sorted=False)`` path ("torch packed",
the same result) and torch's module on the padded input without lengths
("torch padded (wrong)": a different result past each row's length, timed
as the shortcut people take). "stacked": a 2-layer bidirectional LSTM and
GRU, B=32, T=100, I=H=256, lengths uniform in [T/4, T] (seeded), float32,
inference and a training step; "lengths-cost": a 1-layer LSTM training
step with half the rows at T and half at T/10 against all rows at T,
interleaved in the same rounds, followed by a "cost of lengths" table (each
contender's time on the short set as a share of its time on the full one,
beside the share of valid steps, 55 %). ``--quick`` runs their "-small"
versions; ``--shapes`` names them like shapes; ``--cells``, ``--modes``,
``--dtypes``, ``--threads``, ``--repeat`` and the backend options apply as
to the matrix (the workloads' own cells and modes, and float32, when those
are not given). Their rows go to the JSON's "layers" and "lengths_cost".

Model workloads (fastrnn.bench.models), after the layer workloads in a
table of their own: whole PyTorch models' training steps (torch loss,
backward, torch optimizer step) with torch.nn's modules ("torch.nn") and
a copy from the same initial weights after ``fastrnn.torch.convert()``
("fastrnn.torch.convert"), interleaved in the same rounds, "x torch" as
in the matrix. "word-lm": PyTorch's word_language_model example, medium
configuration (embedding of 10 000 words -> 2-layer LSTM or GRU, 650 units,
dropout 0.5 -> linear over the 10 000 words; batch 20, 35 steps,
cross-entropy, clip 0.25, SGD lr 20); "gru-classifier": a 2-layer
bidirectional GRU over packed sequences (B=32, T=100, I=H=128, lengths
uniform in [T/4, T]) with a linear head over 10 classes on the final
states, SGD. Before timing, both copies take two steps from the same
weights and dropout seed and their losses must agree (float32: 1e-4
relative), else the run stops with status 1. Skipped with a message
without torch or the compiled core. Their rows go to the JSON's "models".

Also measured in the same run: the machine's single-thread SGEMM rate
(torch.mm, else numpy.matmul with its BLAS pinned to one thread, on square
float32 n = 1024, median of 5) against which every large-shape row is shown
as a percentage; one core's FMA peak for the active ISA, float32 and
float64 (timing.measure_fma_peak: the C core's loop of independent
multiply-add chains in registers, csrc/kernels/peak.c, dispatched like
every kernel, so ``FASTRNN_ISA`` moves it too), printed beside the SGEMM
rate and as each large-shape row's "% peak" (training steps and inference,
against the row's dtype: the physical limit a GEMM-bound step can approach,
where the SGEMM share only compares with another library); and the streaming single step (LSTM, I = H = 32, batch 1,
float32, one thread): microseconds per call from Python of the fastest
single-step API fastrnn has (an ``LSTM.stream()`` object when the layer has
one, else ``functional.step``), beside torch.nn.LSTMCell under no_grad.

The output: one header line (fastrnn version and ISA, torch version, CPU,
logical CPUs, date), a GitHub-markdown table of every row, and a "targets"
table checking fastrnn[c]'s one-thread float32 ratios (report.TRAIN_TARGETS; an
inference row must reach its shape and cell's training goal), the large
shapes' share of SGEMM and (training steps) of the FMA peak, the two-thread scaling (medians) and the streaming
step against the project's goals (only targets whose data this run measured
appear). Everything also
goes to a JSON file (raw samples included) and, when matplotlib is
installed, a bar chart; both are written atomically (a temporary file in
the same directory, then ``os.replace``), so an interrupted run never leaves
a half-written file. Ctrl-C stops after the current call, prints and saves
what was measured (a matrix cell interrupted midway is dropped) and exits
with status 130.

What it is not: not a statistical study (medians of a handful of samples on
whatever else the machine is doing; compare ratios within one run, not
across machines or runs), not a test of correctness (see tests/ and
``fastrnn check``), and not the min-char-rnn workload, which is
``fastrnn bench minchar`` (fastrnn.bench.minchar), nor the subnormal
workload, ``fastrnn bench subnormal`` (fastrnn.bench.subnormal).

The modules, one job each:

* fastrnn.bench.timing: the matrix (SHAPES, DEFAULT_CELLS, MODES, ...), the
  problems, the FLOP counts, the warm-up and round-robin timing, the run over
  a Plan that yields Result rows, the SGEMM rate, the FMA peak and the streaming step;
* fastrnn.bench.peers: everything torch-specific (import, modules built from
  the cell descriptors, callables, the packed and padded paths, thread count);
* fastrnn.bench.stacked: the layer workloads (stacked, bidirectional, with
  lengths) and the cost of lengths;
* fastrnn.bench.models: the model workloads (torch models before and after
  fastrnn.torch.convert);
* fastrnn.bench.report: the targets, the tables, the JSON and the chart
  (written through fastrnn._atomic);
* fastrnn.bench.cli: the options and :func:`main`, and :func:`run_and_report`;
* fastrnn.bench.minchar: the min-char-rnn workload;
* fastrnn.bench.subnormal: a training step whose state decays through the
  subnormals, with and without the flush (fastrnn.subnormals).

Entry points: ``fastrnn bench [...]`` and ``python -m fastrnn.bench [...]``
(both :func:`main`), :func:`run_and_report` for a :class:`Plan` built in code
(bench/compare.py does), and the pieces above for bench/test_bench.py's
pytest-benchmark runs.
"""
from __future__ import annotations

from .cli import main, run_and_report
from .timing import DEFAULT_CELLS, MODES, SHAPES, Plan, Result, Shape

__all__ = ["main", "run_and_report", "Plan", "Result", "Shape", "SHAPES", "DEFAULT_CELLS",
           "MODES"]
