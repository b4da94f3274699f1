"""``fastrnn bench``'s model workloads: whole PyTorch models' training steps, torch.nn vs converted.

The matrix (fastrnn.bench.timing) and the layer workloads
(fastrnn.bench.stacked) time fastrnn's own API. The workloads here time
what issue 13 promises PyTorch users: a torch model built from torch.nn's
modules, trained with a torch loss and optimizer, before and after
``fastrnn.torch.convert(model)``. Two copies of the model from the same
initial weights (``copy.deepcopy`` of one seeded model; one copy converted)
take their training steps interleaved, round-robin, in the same rounds as
every other row (timing.time_round_robin), at each thread count
(``torch.set_num_threads`` and ``fastrnn.set_num_threads`` together,
timing.thread_counts).

Workloads (WORKLOADS; ``fastrnn bench --shapes NAME`` picks them, the
default run takes "word-lm" and "gru-classifier", ``--quick`` their
"-small" versions):

* "word-lm": PyTorch's word_language_model example in its "medium"
  configuration: embedding of V = 10 000 words into 650, a 2-layer LSTM or
  GRU with 650 units (dropout 0.5 on the embedding, between the layers and
  on the output, as the example), a linear decoder over the 10 000 words;
  batch 20, 35 steps (bptt), cross-entropy over all 700 next-word targets,
  ``clip_grad_norm_(0.25)`` and an SGD step with lr 20; the hidden state is
  carried from step to step, detached (the example's ``repackage_hidden``);
* "gru-classifier": a sequence classifier over packed sequences: a 2-layer
  bidirectional GRU, B = 32, T = 100, I = H = 128, lengths uniform in
  [T/4, T] (seeded, fastrnn.bench.stacked.lengths_for), the batch packed
  with ``pack_padded_sequence(..., enforce_sorted=False)`` in every step (a
  model packs each batch), a linear head over 10 classes on the last
  layer's final states of both directions (h_n[-2], h_n[-1]),
  cross-entropy and an SGD step with lr 0.1; no dropout.

A step is ``optimizer.zero_grad(); loss = ...; loss.backward();
optimizer.step()`` on a fixed batch of seeded random tokens / features and
labels (the cost of a step does not depend on the values). Before anything
is timed, both copies take the same two steps from the same weights (and
the same ``torch.manual_seed`` for the dropout masks, which fastrnn.torch
draws as torch.nn does): their losses must agree to LOSS_RTOL (float32) /
1e-10 (float64), else the run stops with an error: a speed-up of a model
that computes something else means nothing. The second loss depends on the
first step's gradients through the SGD update, so the check covers the
backward pass too. A FallbackWarning from fastrnn.torch in those steps (the
converted model would be running torch's own computation) also stops it.
Those losses go to the JSON rows ("loss_torch", "loss_converted").

Reported per contender: median, min and max seconds per step, tokens per
second (B * T for the language model; the sum of the lengths, the valid
steps, for the classifier) and "x torch" = the torch.nn model's median /
this median (> 1: the converted model is faster). Only training steps are
timed (``--modes`` without "train" leaves these workloads out); the
default dtype is float32 (``--dtypes`` replaces it); ``--cells`` replaces
a workload's cells with those given that torch.nn has a module for.

What it is not: not the layer or matrix workloads (no fastrnn API other
than ``convert``), not a measure of convergence (two steps are compared,
then the copies drift apart with their dropout masks), no printing
(fastrnn.bench.report). Needs torch and the compiled core: without
either, the workloads are skipped with a message (skip_reason).
"""
from __future__ import annotations

import copy
import gc
import importlib
import statistics
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

import fastrnn

from . import peers
from .stacked import UNIFORM_QUARTER_TO_T, length_label, lengths_for
from .timing import SETTLE_S, thread_counts, time_round_robin, warm_up

if TYPE_CHECKING:
    from .timing import Plan

#: The contenders' labels: the torch.nn model, and the same model after convert().
TORCH_NN = "torch.nn"
CONVERTED = "fastrnn.torch.convert"
CONTENDERS: Tuple[str, ...] = (TORCH_NN, CONVERTED)
WORD_LM, CLASSIFIER = "word-lm", "classifier"
# The losses of the converted model against the torch.nn model's, relative.
LOSS_RTOL = {"float32": 1e-4, "float64": 1e-10}
CHECK_STEPS = 2
MODEL_SEED = 0


@dataclass(frozen=True)
class ModelWorkload:
    """One model workload: the model kind, its sizes and its training settings."""

    name: str
    kind: str  # WORD_LM or CLASSIFIER
    B: int
    T: int
    I: int  # noqa: E741 - embedding size (WORD_LM) or feature size (CLASSIFIER)
    H: int
    num_layers: int
    bidirectional: bool
    vocab: int  # WORD_LM: words in and out; CLASSIFIER: 0
    classes: int  # CLASSIFIER: the head's classes; WORD_LM: 0
    dropout: float
    lr: float
    clip: Optional[float]  # clip_grad_norm_'s max norm, None: no clipping
    cells: Tuple[str, ...]  # without an explicit --cells

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def describe(self) -> str:
        layers = f"{self.num_layers} layer{'s' * (self.num_layers != 1)}" + (
            ", bidirectional" if self.bidirectional else "")
        if self.kind == WORD_LM:
            return (f"{self.name} (embedding {self.vocab} words -> {self.I}, {layers}, "
                    f"H={self.H}, linear -> {self.vocab}; B={self.B}, T={self.T}, dropout "
                    f"{self.dropout:g}, clip {self.clip:g}, SGD lr {self.lr:g})")
        return (f"{self.name} ({layers}, B={self.B}, T={self.T}, I={self.I}, H={self.H}, "
                f"packed lengths {length_label(UNIFORM_QUARTER_TO_T, self.T)}, linear head on "
                f"the final states -> {self.classes} classes; SGD lr {self.lr:g})")


_LM = dict(kind=WORD_LM, num_layers=2, bidirectional=False, classes=0, dropout=0.5, lr=20.0,
           clip=0.25, cells=("lstm", "gru"))
_CLASSIFIER = dict(kind=CLASSIFIER, num_layers=2, bidirectional=True, vocab=0, classes=10,
                   dropout=0.0, lr=0.1, clip=None, cells=("gru",))
WORKLOADS: Dict[str, ModelWorkload] = {w.name: w for w in (
    ModelWorkload("word-lm", B=20, T=35, I=650, H=650, vocab=10_000, **_LM),
    ModelWorkload("gru-classifier", B=32, T=100, I=128, H=128, **_CLASSIFIER),
    # --quick's versions: the same models at sizes that take milliseconds.
    ModelWorkload("word-lm-small", B=4, T=8, I=16, H=16, vocab=50, **_LM),
    ModelWorkload("gru-classifier-small", B=8, T=20, I=16, H=16, **_CLASSIFIER),
)}
DEFAULT_WORKLOADS: Tuple[str, ...] = ("word-lm", "gru-classifier")
QUICK_WORKLOADS: Tuple[str, ...] = ("word-lm-small", "gru-classifier-small")
DEFAULT_DTYPES: Tuple[str, ...] = ("float32",)
MODE = "train"  # the only mode these workloads have


def skip_reason(torch: Any) -> Optional[str]:
    """Why the model workloads cannot run here (None: they can)."""
    if torch is None:
        return "torch is not installed or --no-torch was given"
    if "c" not in fastrnn.available_backends():
        return "fastrnn's compiled core is not available (convert() would run torch's own code)"
    try:
        importlib.import_module("fastrnn.torch")  # what convert() needs (torch >= 2.4)
    except ImportError as exc:
        return f"fastrnn.torch cannot be imported ({exc})"
    return None


def cells_for(plan: "Plan", workload: ModelWorkload) -> List[str]:
    """The workload's cells, or --cells' cells that torch.nn has a module for."""
    if plan.layer_cells is None:
        return list(workload.cells)
    return [c for c in plan.layer_cells if peers.torch_can_run(c)]


def dtypes_for(plan: "Plan") -> List[str]:
    return list(plan.dtypes) if plan.dtypes is not None else list(DEFAULT_DTYPES)


def runs_for(plan: "Plan") -> bool:
    """Whether --modes lets the model workloads (training steps only) run."""
    return plan.layer_modes is None or MODE in plan.layer_modes


def model_plan_size(plan: "Plan") -> int:
    """The model cells (workload x cell x dtype x threads) planned."""
    if not runs_for(plan):
        return 0
    return sum(len(cells_for(plan, w)) * len(dtypes_for(plan)) * len(plan.threads)
               for w in plan.models)


# ------------------------------------------------------------- the models

def _recurrent_module(torch: Any, cell: str, input_size: int, W: ModelWorkload) -> Any:
    return peers._torch_layer(torch, cell, input_size, W.H, num_layers=W.num_layers,
                              bidirectional=W.bidirectional,
                              dropout=W.dropout if W.num_layers > 1 else 0.0)


def build_model(workload: ModelWorkload, cell: str, dtype: str, torch: Any) -> Any:
    """The torch.nn model of ``workload`` with ``cell``'s recurrent module, its
    weights torch's initialisation after ``torch.manual_seed(MODEL_SEED)``."""
    nn, W = torch.nn, workload
    torch.manual_seed(MODEL_SEED)
    if W.kind == WORD_LM:
        class WordLanguageModel(nn.Module):
            """The word_language_model example's RNNModel (untied)."""

            def __init__(self) -> None:
                super().__init__()
                self.drop = nn.Dropout(W.dropout)
                self.encoder = nn.Embedding(W.vocab, W.I)
                self.rnn = _recurrent_module(torch, cell, W.I, W)
                self.decoder = nn.Linear(W.H, W.vocab)
                # the example's init_weights: U(-0.1, 0.1) embedding and decoder, zero bias
                nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
                nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
                nn.init.zeros_(self.decoder.bias)

            def forward(self, tokens: Any, hidden: Any) -> Tuple[Any, Any]:
                output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
                return self.decoder(self.drop(output)).view(-1, W.vocab), hidden
        model: Any = WordLanguageModel()
    else:
        class PackedClassifier(nn.Module):
            """A recurrent encoder over a PackedSequence, a linear head on its final states."""

            def __init__(self) -> None:
                super().__init__()
                self.rnn = _recurrent_module(torch, cell, W.I, W)
                self.head = nn.Linear(W.directions * W.H, W.classes)

            def forward(self, packed: Any) -> Any:
                _, h_n = self.rnn(packed)
                h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
                last = h_n[-W.directions:]  # the last layer, every direction
                return self.head(torch.cat(list(last), dim=1))
        model = PackedClassifier()
    return model.to(torch.float64 if dtype == "float64" else torch.float32)


@dataclass
class ModelProblem:
    """A workload's two model copies (same initial weights) and its fixed batch."""

    workload: ModelWorkload
    cell: str
    dtype: str
    models: Dict[str, Any]  # contender label -> model
    inputs: Any  # tokens (T, B) int64, or features (T, B, I)
    targets: Any  # next tokens (T*B,), or labels (B,)
    lengths: Optional[np.ndarray]  # CLASSIFIER: (B,) int64

    @property
    def tokens_per_step(self) -> int:
        W = self.workload
        return W.B * W.T if self.lengths is None else int(self.lengths.sum())


def make_model_problem(workload: ModelWorkload, cell: str, dtype: str, torch: Any) -> ModelProblem:
    """The torch.nn model and a deep copy of it converted with fastrnn.torch.convert,
    and a seeded random batch."""
    import fastrnn.torch as fastrnn_torch
    W = workload
    reference = build_model(W, cell, dtype, torch)
    converted = fastrnn_torch.convert(copy.deepcopy(reference))
    rng = np.random.default_rng(MODEL_SEED + 1)
    if W.kind == WORD_LM:
        tokens = torch.from_numpy(rng.integers(0, W.vocab, size=(W.T + 1, W.B)))
        inputs, targets, lengths = tokens[:-1].contiguous(), tokens[1:].reshape(-1), None
    else:
        features = rng.standard_normal((W.T, W.B, W.I), dtype=np.float32)
        inputs = torch.from_numpy(features).to(next(reference.parameters()).dtype)
        targets = torch.from_numpy(rng.integers(0, W.classes, size=W.B))
        lengths = lengths_for(UNIFORM_QUARTER_TO_T, W.B, W.T)
    return ModelProblem(W, cell, dtype, {TORCH_NN: reference, CONVERTED: converted},
                        inputs, targets, lengths)


def training_step(problem: ModelProblem, label: str, torch: Any) -> Callable[[], float]:
    """One training step of the contender's model on the fixed batch; returns the loss.
    The word LM's hidden state is carried from call to call, detached (the
    example's repackage_hidden); it starts at zeros (None)."""
    W, model = problem.workload, problem.models[label]
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=W.lr)
    criterion = torch.nn.CrossEntropyLoss()
    inputs, targets = problem.inputs, problem.targets
    if W.kind == WORD_LM:
        hidden: List[Any] = [None]

        def detached(h: Any) -> Any:
            return tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()

        def lm_step() -> float:
            optimizer.zero_grad(set_to_none=True)
            logits, h = model(inputs, hidden[0])
            hidden[0] = detached(h)
            loss = criterion(logits, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), W.clip)
            optimizer.step()
            return loss.item()
        return lm_step
    from torch.nn.utils.rnn import pack_padded_sequence
    t_lengths = torch.from_numpy(problem.lengths)

    def classifier_step() -> float:
        optimizer.zero_grad(set_to_none=True)
        packed = pack_padded_sequence(inputs, t_lengths, enforce_sorted=False)
        loss = criterion(model(packed), targets)
        loss.backward()
        optimizer.step()
        return loss.item()
    return classifier_step


class ModelMismatch(RuntimeError):
    """The converted model's loss is not the torch.nn model's (or it fell back to torch)."""


def check_losses(steps: Dict[str, Callable[[], float]], dtype: str,
                 torch: Any) -> Dict[str, List[float]]:
    """CHECK_STEPS steps of each contender from the same weights and dropout seed:
    their losses, which must agree to LOSS_RTOL[dtype] (else ModelMismatch).
    Also raises ModelMismatch when fastrnn.torch warns that it fell back (it warns
    once per reason per process: in a ``fastrnn bench`` process, the first time;
    the equal losses alone would not show a fallback, torch's answer being torch's)."""
    from fastrnn.torch import FallbackWarning
    losses: Dict[str, List[float]] = {label: [] for label in steps}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        for k in range(CHECK_STEPS):
            for label, step in steps.items():
                torch.manual_seed(MODEL_SEED + 100 + k)  # the same dropout masks for both
                try:
                    losses[label].append(step())
                except FallbackWarning as exc:
                    raise ModelMismatch(f"{label}: the converted model ran torch's own "
                                        f"computation: {exc}") from None
    ref, ours = losses[TORCH_NN], losses[CONVERTED]
    rtol = LOSS_RTOL[dtype]
    for k, (a, b) in enumerate(zip(ref, ours)):
        if not abs(a - b) <= rtol * abs(a):
            raise ModelMismatch(f"step {k + 1}: the converted model's loss {b!r} is not "
                                f"torch.nn's {a!r} (relative tolerance {rtol:g})")
    return losses


# ---------------------------------------------------------------- the rows

@dataclass
class ModelRow:
    """One contender on one (workload, cell, dtype, threads): a row of the model
    table and of the JSON "models"."""

    workload: str
    kind: str
    B: int
    T: int
    I: int  # noqa: E741
    H: int
    num_layers: int
    directions: int
    vocab: int
    classes: int
    lengths: str  # "all 35", or the packed length set's label
    tokens_per_step: int
    cell: str
    mode: str
    dtype: str
    threads: int
    contender: str
    calls_per_sample: int
    samples_s: List[float]
    median_s: float
    min_s: float
    max_s: float
    tokens_per_s: float
    loss_torch: List[float]  # the check steps' losses, torch.nn model
    loss_converted: List[float]  # the same steps, converted model
    x_torch: Optional[float] = None  # the torch.nn model's median / this median


def measure_model_cell(workload: ModelWorkload, cell: str, dtype: str, threads: int,
                       torch: Any, repeat: int) -> List[ModelRow]:
    """Check, then time both contenders on one (workload, cell, dtype, threads),
    interleaved; a fresh pair of models (same initial weights) per cell."""
    with thread_counts(threads, torch):
        problem = make_model_problem(workload, cell, dtype, torch)
        steps = {label: training_step(problem, label, torch) for label in CONTENDERS}
        losses = check_losses(steps, dtype, torch)
        per_sample = {name: warm_up(fn) for name, fn in steps.items()}
        samples = time_round_robin(steps, repeat, per_sample,
                                   settle_s=SETTLE_S if threads > 1 else 0.0)
    W = workload
    medians = {label: statistics.median(samples[label]) for label in CONTENDERS}
    lengths = (f"all {W.T}" if problem.lengths is None
               else length_label(UNIFORM_QUARTER_TO_T, W.T))
    rows = []
    for label in CONTENDERS:
        s, median = samples[label], medians[label]
        rows.append(ModelRow(
            workload=W.name, kind=W.kind, B=W.B, T=W.T, I=W.I, H=W.H,
            num_layers=W.num_layers, directions=W.directions, vocab=W.vocab,
            classes=W.classes, lengths=lengths, tokens_per_step=problem.tokens_per_step,
            cell=cell, mode=MODE, dtype=dtype, threads=threads, contender=label,
            calls_per_sample=per_sample[label], samples_s=list(s), median_s=median,
            min_s=min(s), max_s=max(s), tokens_per_s=problem.tokens_per_step / median,
            loss_torch=losses[TORCH_NN], loss_converted=losses[CONVERTED],
            x_torch=medians[TORCH_NN] / median))
    return rows


def run_models(plan: "Plan", torch: Any) -> Iterator[List[ModelRow]]:
    """Measure the plan's model workloads in order; yields each model cell's rows.
    Nothing when skip_reason(torch) or --modes leaves them out (the caller says so)."""
    if skip_reason(torch) is not None or not runs_for(plan):
        return
    for workload in plan.models:
        for cell in cells_for(plan, workload):
            for dtype in dtypes_for(plan):
                for threads in plan.threads:
                    rows = measure_model_cell(workload, cell, dtype, threads, torch,
                                              plan.repeat)
                    gc.collect()  # this cell's models, optimizers and activations are garbage
                    yield rows
