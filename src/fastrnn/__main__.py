"""The ``fastrnn`` command (also ``python -m fastrnn``).

``fastrnn train [TEXT]`` trains a character-level language model
(fastrnn.charlm) on a text file, or without one on the embedded corpus (the
project's own docs and sources), with a progress bar, periodic samples and
checkpoints; ``fastrnn sample MODEL`` generates text from a saved model.
``fastrnn bench`` runs the benchmark matrix: fastrnn vs torch over shapes,
cells, training / inference, thread counts and dtypes, with a targets table
and a JSON file (fastrnn.bench); ``fastrnn bench minchar`` times the
min-char-rnn workload against its NumPy original (fastrnn.bench.minchar).
``fastrnn check`` (the default) runs the slide walk-through with hand-derived
numbers on every available backend and a float64 finite-difference gradient
check of each cell. ``fastrnn info`` prints the version, backends, the C
kernels' ISA and every cell with its update (fastrnn.cells).

Every expected failure ends with a one-line message on stderr and exit
status 2, never a traceback: bad arguments, unreadable or invalid text and
model files, sizes that cannot fit in memory (refused before allocating where
they can be computed, with the option and the memory it would need), running
out of memory anyway, failing to write a checkpoint (the previous one stays
as it was), and training that diverges (a non-finite loss or gradient: the
last good checkpoint is kept, nothing is saved after it). A second Ctrl-C
aborts with status 130; ``fastrnn bench`` exits 130 after a Ctrl-C, having
printed and saved what it measured.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np

import fastrnn
from fastrnn import _reference as ref
from fastrnn import cells
from fastrnn import functional as F


def _info() -> int:
    print(f"fastrnn {fastrnn.__version__}")
    print(f"backends available: {', '.join(fastrnn.available_backends())}")
    print(f"C kernels ISA: {fastrnn.cpu_isa() or '(compiled core not available)'}")
    if fastrnn.cpu_isa():
        print("C kernels subnormals: " + ("flushed to zero" if fastrnn.get_flush_subnormals()
                                          else "kept (IEEE)") + " (FASTRNN_SUBNORMALS)")
    return 0


def _info_cells() -> None:
    """Every cell the package describes (fastrnn.cells), with its update."""
    print("cells:")
    for c in cells.CELLS.values():
        print(f"  {c.name:12s} {c.gates} gate{'s' if c.gates > 1 else ''} "
              f"({', '.join(c.gate_names)}): {c.equations}")


def _finite_difference_error(cell: str, backend: str) -> float:
    """Max relative error of backward vs central differences, float64."""
    rng = np.random.default_rng(7)
    T, B, I, H = 4, 2, 3, 5
    p = [rng.uniform(-0.5, 0.5, s) for s in cells.get(cell).parameter_shapes(I, H).values()]
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, H))

    def loss(w_hh):
        r = F.forward(cell, x, p[0], w_hh, p[2], p[3], backend=backend)
        return float(np.sum(r.output * d_out))

    res = F.forward(cell, x, *p, backend=backend, training=True)
    grad = F.backward(res, d_out).weight_hh
    fd = np.empty_like(grad)
    eps = 1e-6
    for idx in np.ndindex(grad.shape):
        w_plus, w_minus = p[1].copy(), p[1].copy()
        w_plus[idx] += eps
        w_minus[idx] -= eps
        fd[idx] = (loss(w_plus) - loss(w_minus)) / (2 * eps)
    return float(np.max(np.abs(grad - fd)) / np.max(np.abs(fd)))


def _check() -> int:
    _info()
    ok = True
    print("\nslide walk-through (ReLU, 3 steps, hand-derived h):")
    for backend in fastrnn.available_backends():
        for dtype in (np.float32, np.float64):
            x = np.array(ref.WALKTHROUGH_X, dtype)[:, None, :]
            w = np.array(ref.WALKTHROUGH_W, dtype)
            r = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend)
            good = np.array_equal(r.output[:, 0], ref.WALKTHROUGH_H)
            ok &= good
            print(f"  {backend:6s} {np.dtype(dtype).name:8s} h = {r.output[:, 0].astype(int).tolist()}"
                  f"  {'ok' if good else 'MISMATCH'}")
    print("\nfloat64 weight_hh gradient vs central finite differences (max relative error):")
    for backend in fastrnn.available_backends():
        t0 = time.perf_counter()
        errs = {cell: _finite_difference_error(cell, backend) for cell in fastrnn.CELLS}
        ok &= all(e < 1e-6 for e in errs.values())
        print(f"  {backend:6s} " + "  ".join(f"{c} {e:.1e}" for c, e in errs.items())
              + f"  ({time.perf_counter() - t0:.1f} s)")
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


# ------------------------------------------------------------------ train

# The defaults of `fastrnn train`, measured on the 2-core development VM: GRU-128
# over 32 streams of 50-character windows runs at 80,000-90,000 characters/s on
# the C backend; the training loss on the embedded corpus falls from
# ln(95) = 4.55 to about 1.7-1.9 nats/char in 10 s, 1.2 in 30 s and 1.0 in 60 s,
# and the samples look like code and prose from about 20 s on. Compared in
# 60 s runs (loss on a held-out tenth of the corpus at 10 / 30 / 60 s):
# GRU-128 batch 32 1.80 / 1.55 / 1.58 (best early; it starts to overfit the
# 250 KB corpus), GRU-256 2.23 / 1.58 / 1.45 (3x slower per character),
# LSTM-128 2.12 / 1.61 / 1.50, GRU-128 batch 64 2.18 / 1.63 / 1.57.
TRAIN_DEFAULTS = {"cell": "gru", "hidden": 128, "batch": 32, "window": 50, "lr": 3e-3,
                  "clip": 5.0, "dtype": "float32"}
DEFAULT_SECONDS = 60.0
DEFAULT_CHECKPOINT = "fastrnn-charlm.frnn"


class _UsageError(Exception):
    """A bad argument or file, or a run that cannot go on: reported in one
    line, exit status 2."""


_OPTION_OF = {"hidden_size": "--hidden", "batch": "--batch", "window": "--window", "lr": "--lr",
              "clip": "--clip", "dtype": "--dtype", "cell": "--cell", "seed": "--seed"}


def _with_option_names(message: str) -> str:
    """The library's message for a constructor argument, with the argument
    named as the command-line option that set it."""
    message = message.replace("hidden_size", "--hidden").replace("leak_rate", "--leak-rate")
    return re.sub(r"^(batch|window|lr|clip|dtype|cell|seed)\b", lambda m: _OPTION_OF[m.group(1)], message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no details)"


class _Bar:
    """A one-line progress bar: tqdm's when installed, else a small built-in one
    (redrawn in place with '\\r' on a terminal, a line every few seconds otherwise)."""

    def __init__(self, total: float, unit: str):
        self.total, self.unit, self.last_line = total, unit, 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self.tqdm = None
        else:
            self.tqdm = tqdm(total=round(total), unit=unit, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]")
        self.tty = sys.stdout.isatty()

    def update(self, done: float, loss: float, rate: float) -> None:
        if self.tqdm is not None:
            self.tqdm.n = min(round(done), self.tqdm.total)
            self.tqdm.set_postfix_str(f"loss {loss:.3f}, {rate:,.0f} chars/s")
            return
        frac = min(done / self.total, 1.0) if self.total else 1.0
        width = 24
        line = (f"[{'#' * int(frac * width):<{width}}] {done:,.0f}/{self.total:,.0f} {self.unit}"
                f"  loss {loss:.3f}  {rate:,.0f} chars/s")
        if self.tty:
            cols = shutil.get_terminal_size((80, 20)).columns
            sys.stdout.write("\r" + line[:cols - 1].ljust(cols - 1))
            sys.stdout.flush()
        elif time.monotonic() - self.last_line >= 5 or frac >= 1:
            self.last_line = time.monotonic()
            print(line, flush=True)

    def write(self, text: str) -> None:
        """Print ``text`` above the bar."""
        if self.tqdm is not None:
            self.tqdm.write(text)
        elif self.tty:
            cols = shutil.get_terminal_size((80, 20)).columns
            sys.stdout.write("\r" + " " * (cols - 1) + "\r" + text + "\n")
            sys.stdout.flush()
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
        elif self.tty:
            sys.stdout.write("\n")
            sys.stdout.flush()


class _Smoothed:
    """Exponential moving average with bias correction (the first value is exact)."""

    def __init__(self, decay: float = 0.9):
        self.decay, self.value, self.weight = decay, 0.0, 0.0

    def add(self, x: float) -> float:
        self.value = self.decay * self.value + (1 - self.decay) * x
        self.weight = self.decay * self.weight + (1 - self.decay)
        return self.value / self.weight


class _StopOnInterrupt:
    """While active, the first Ctrl-C (SIGINT) only sets ``requested`` (training
    stops after the current chunk and the checkpoint is saved); a second one
    raises KeyboardInterrupt as usual. Inactive outside the main thread."""

    def __init__(self):
        self.requested, self.previous = False, None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave SIGINT alone
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _read_text(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise _UsageError(f"{path} is a directory, not a text file") from None
    except UnicodeDecodeError as exc:
        raise _UsageError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(text) < 2:
        raise _UsageError(f"{path} has {len(text)} characters; training needs more text")
    return text


def _check_writable(path: Path, what: str = "checkpoint") -> None:
    """Before training: a file the run will write can be written (what: how
    the message names it)."""
    if path.is_symlink():  # written through (CharLM.save): the target's directory matters
        path = Path(os.path.realpath(path))
    parent = path.parent
    if path.is_dir():
        raise _UsageError(f"{what} {path} is a directory")
    if not parent.is_dir():
        raise _UsageError(f"{what} directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise _UsageError(f"{what} directory {parent} is not writable")


def _model_for(args, text: str, source: str):
    """A fresh model, or the --resume one (checked against the text and options)."""
    from fastrnn.charlm import CharLM, ModelFileError, Vocab

    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        try:
            lm = CharLM.load(args.resume)
        except ModelFileError as exc:
            raise _UsageError(str(exc)) from None
        saved = {"cell": lm.cell, "hidden": lm.hidden_size, "batch": lm.batch,
                 "window": lm.window, "dtype": lm.dtype.name}
        for name, value in given.items():
            if name in saved and value != saved[name]:
                raise _UsageError(f"--{name} {value} does not match {args.resume} "
                                  f"({name} {saved[name]}); leave it out to continue the model")
        leak_rate = getattr(args, "leak_rate", None)
        saved_rate = lm.descriptor.hyperparameter_values.get("leak_rate")
        if leak_rate is not None and leak_rate != saved_rate:
            raise _UsageError(f"--leak-rate {leak_rate:g} does not match {args.resume} ("
                              + (f"leak rate {saved_rate:g}" if saved_rate is not None
                                 else f"a {lm.cell} model, which has no leak rate")
                              + "); leave it out to continue the model")
        # the learning rate and clipping may change between runs
        lm.lr, lm.clip = given.get("lr", lm.lr), given.get("clip", lm.clip)
        try:
            lm.vocab.encode(text)
        except ValueError as exc:
            raise _UsageError(f"cannot continue {args.resume} on {source}: {exc}; "
                              "a model only trains on text in its vocabulary") from None
        return lm
    o = {**TRAIN_DEFAULTS, **given}
    if isinstance(o["batch"], int) and o["batch"] > 0 and (len(text) - 1) // o["batch"] < 1:
        # before building the model: its state is batch x hidden
        raise _UsageError(f"{source} has {len(text):,} characters, too few for {o['batch']:,} "
                          f"streams (--batch)")
    try:
        cell = o["cell"]
        if getattr(args, "leak_rate", None) is not None:
            if "leak_rate" not in cells.get(cell).hyperparameter_values:
                raise _UsageError(f"--leak-rate is a leak rate, which --cell {cell} does not "
                                  f"have (--cell leaky has)")
            cell = cells.get(cell).with_hyperparameters(leak_rate=args.leak_rate)
        return CharLM(Vocab.from_text(text), cell, o["hidden"], dtype=o["dtype"],
                      seed=args.seed, batch=o["batch"], window=o["window"], lr=o["lr"],
                      clip=o["clip"])
    except (TypeError, ValueError, MemoryError) as exc:
        raise _UsageError(_with_option_names(str(exc))) from None


def _save(lm, checkpoint: Path, saved: dict) -> None:
    """Save a checkpoint; a failure (disk full, permissions...) is one line."""
    try:
        lm.save(checkpoint)
    except OSError as exc:
        raise _UsageError(f"cannot write checkpoint {checkpoint}: {exc.strerror or exc}; "
                          + ("the previous one is as it was" if saved["chars"] is not None or
                             checkpoint.exists() else "nothing was saved")) from None
    saved["chars"] = lm.chars_total


def _require_matplotlib(option: str) -> None:
    """Before any work: an option that draws needs the plot extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise _UsageError(f"{option} needs matplotlib: pip install 'fastrnn[plot]'") from None


def _save_loss_plot(path: Path, history, uniform: float, title: str) -> None:
    """The run's loss curve as a PNG, written atomically (a failed write leaves
    any previous file as it was). history: (seconds, chars trained, smoothed
    loss) per chunk; uniform: the loss of guessing every character alike."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import numpy as np
    from fastrnn._atomic import write_atomically

    seconds, chars, loss = (np.array(column, float) for column in zip(*history))
    millions = chars / 1e6
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(millions, loss, color="tab:blue", label="training loss (moving average)")
    ax.axhline(uniform, color="gray", linestyle="--",
               label=f"guessing every character alike (ln V = {uniform:.2f})")
    ax.set_xlabel("characters trained on (millions)")
    ax.set_ylabel("cross-entropy, nats per character")
    ax.set_ylim(0, uniform * 1.3)  # room for the legend above the dashed line
    ax.set_title(f"{title}\n{chars[-1]:,.0f} characters in {seconds[-1]:.1f} s", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))
    except OSError as exc:
        raise _UsageError(f"cannot write --plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _train(args) -> int:
    from fastrnn import charlm
    from fastrnn.charlm import default_corpus
    from fastrnn.training import TrainingDivergedError

    for name in ("seconds", "temperature"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _UsageError(f"--{name} must be > 0 and finite")
    for name in ("sample_every", "checkpoint_every", "sample_chars"):
        if not getattr(args, name) >= 0:
            raise _UsageError(f"--{name.replace('_', '-')} must be >= 0")
    if args.chars is not None and args.chars < 1:
        raise _UsageError("--chars must be >= 1")
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        _require_matplotlib("--plot")
        _check_writable(plot, "--plot")
    try:  # the final sample is twice --sample-chars
        charlm._require_memory(charlm._sample_bytes(2 * args.sample_chars),
                               f"--sample-chars {args.sample_chars:,} (the final sample is twice that)")
    except MemoryError as exc:
        raise _UsageError(str(exc)) from None
    for name in ("lr", "clip"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _UsageError(f"--{name} must be a finite number > 0")
    try:
        backend = fastrnn.backends.resolve_backend(args.backend)
    except (ImportError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    text, source = (_read_text(args.text), args.text) if args.text else (
        default_corpus(), "the embedded corpus (fastrnn's own docs and sources)")
    lm = _model_for(args, text, source)
    if (len(text) - 1) // lm.batch < 1:
        raise _UsageError(f"{source} has {len(text)} characters, too few for {lm.batch} "
                          f"streams (--batch)")
    checkpoint = Path(args.checkpoint or args.resume or DEFAULT_CHECKPOINT)
    _check_writable(checkpoint)
    seconds = args.seconds if args.seconds is not None else (None if args.chars else DEFAULT_SECONDS)
    if args.prime is None:
        prime = charlm.prose_prime(text)
    else:
        prime = args.prime
        try:
            lm.vocab.encode(prime)
        except ValueError as exc:
            raise _UsageError(f"--prime: {exc}") from None
    uniform = math.log(len(lm.vocab))

    print(f"training on {source}: {len(text):,} characters, {len(lm.vocab)} distinct")
    print(f"model: {lm.descriptor.label}, hidden {lm.hidden_size}, {lm.theta.size:,} parameters, "
          f"{lm.dtype.name}; "
          f"batch {lm.batch} x window {lm.window}, Adam lr {lm.lr:g}, clip norm {lm.clip:g}; "
          f"backend {backend}")
    if args.resume:
        print(f"resuming {args.resume}: {lm.chars_total:,} characters trained so far")
    budget = " or ".join(x for x in (f"{seconds:g} s" if seconds else "",
                                     f"{args.chars:,} characters" if args.chars else "") if x)
    print(f"stops after {budget} (Ctrl-C stops early and still saves); "
          f"checkpoint: {checkpoint}", flush=True)
    if args.sample_chars and args.sample_every:
        # what a newcomer needs to read the output: what the samples are, and
        # what the loss means
        print(f"the model learns to predict the next character; every {args.sample_every:g} s it "
              f"writes {args.sample_chars} of its own, continuing "
              + (f'"{prime}"' if prime else "a new line")
              + f". The loss is in nats per character: guessing all {len(lm.vocab)} alike "
              f"scores ln {len(lm.vocab)} = {uniform:.2f}, and it falls as the model learns"
              + ("" if args.text or args.resume else
                 " (with the defaults, to about 1.2 in a minute on 2 cores)"), flush=True)
    print(flush=True)

    by_time = seconds is not None
    bar = _Bar(seconds if by_time else args.chars, "s" if by_time else "chars")
    smoothed, last = _Smoothed(), {"sample": 0.0, "checkpoint": 0.0, "loss": float("nan")}
    saved = {"chars": None}  # chars_total at the last checkpoint this run wrote

    def sample_or_why_not(chars: int) -> str:
        # a sample that cannot be drawn (an rnn_relu state overflowing) must
        # not end a run whose training is fine: say why instead
        try:
            return prime + lm.sample(chars, temperature=args.temperature, seed=args.seed,
                                     prime=prime, backend=backend)
        except ValueError as exc:
            return f"(no sample: {exc})"

    def show_sample(seconds_in: float) -> None:
        snippet = sample_or_why_not(args.sample_chars)
        bar.write(f"--- sample at {seconds_in:5.1f} s, loss {last['loss']:.3f} nats/char ---\n"
                  f"{snippet}\n")

    history = []  # (seconds, chars trained in this run, smoothed loss) per chunk, for --plot
    if args.sample_chars and args.sample_every and not args.resume:
        # the same prime and seed as every later sample: the difference is what was learnt
        print(f"--- sample before training (random characters) ---\n"
              f"{sample_or_why_not(args.sample_chars)}\n", flush=True)

    with _StopOnInterrupt() as stop:
        def on_chunk(p) -> bool:
            last["loss"] = smoothed.add(p.loss)
            history.append((p.seconds, p.chars, last["loss"]))
            bar.update(p.seconds if by_time else p.chars, last["loss"], p.chars / max(p.seconds, 1e-9))
            if args.sample_every and p.seconds - last["sample"] >= args.sample_every:
                last["sample"] = p.seconds
                show_sample(p.seconds)
            if args.checkpoint_every and p.seconds - last["checkpoint"] >= args.checkpoint_every:
                last["checkpoint"] = p.seconds
                _save(lm, checkpoint, saved)
            return not stop.requested

        t0 = time.perf_counter()
        try:
            lm.train(text, chars=args.chars, seconds=seconds, callback=on_chunk, backend=backend)
        except TrainingDivergedError as exc:
            # nothing is saved after this: the file at the checkpoint path stays the last good one
            if saved["chars"] is not None:
                kept = (f"kept the last good checkpoint {checkpoint} "
                        f"({saved['chars']:,} characters trained)")
            elif checkpoint.exists():
                kept = f"{checkpoint} was left as it was"
            else:
                kept = "no checkpoint was saved"
            raise _UsageError(f"{exc}; {kept}; try a lower --lr or --clip") from None
        finally:
            bar.close()
        elapsed = time.perf_counter() - t0
        _save(lm, checkpoint, saved)
        print(f"\n{'interrupted' if stop.requested else 'done'} after {elapsed:.1f} s: "
              f"{lm.chars_total:,} characters trained in total, loss {last['loss']:.3f} nats/char")
        print(f"saved {checkpoint} (continue: fastrnn train --resume {checkpoint}; "
              f"generate: fastrnn sample {checkpoint})\n", flush=True)
        if args.sample_chars:
            print(f"--- sample at the end, loss {last['loss']:.3f} nats/char ---\n"
                  f"{sample_or_why_not(2 * args.sample_chars)}\n")
        if plot is not None and history:
            _save_loss_plot(plot, history, uniform,
                            f"fastrnn train: {lm.descriptor.label}-{lm.hidden_size} on "
                            f"{'the embedded corpus' if not args.text else Path(args.text).name}, "
                            f"{lm.dtype.name}, batch {lm.batch} x window {lm.window}")
            print(f"loss curve saved to {plot}")
    return 0


def _sample(args) -> int:
    from fastrnn.charlm import CharLM, ModelFileError

    if args.chars < 0:
        raise _UsageError("--chars must be >= 0")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise _UsageError("--temperature must be > 0 and finite")
    if args.seed is not None and args.seed < 0:
        raise _UsageError("--seed must be >= 0")
    try:
        backend = fastrnn.backends.resolve_backend(args.backend)
    except (ImportError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    try:
        lm = CharLM.load(args.model)
    except ModelFileError as exc:
        raise _UsageError(str(exc)) from None
    try:
        text = lm.sample(args.chars, temperature=args.temperature, seed=args.seed, prime=args.prime,
                         backend=backend)
    except ValueError as exc:
        raise _UsageError(f"--prime: {exc}" if "vocabulary" in str(exc) else str(exc)) from None
    except MemoryError as exc:
        raise _UsageError(re.sub(r"^n = ", "--chars ", str(exc))) from None
    print(args.prime + text)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastrnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="{train,sample,bench,check,info}")
    d = TRAIN_DEFAULTS
    backends = ("auto",) + tuple(fastrnn.backends.BACKENDS)
    t = sub.add_parser(
        "train", help="train a character-level language model",
        description="Train a character-level language model (fastrnn.charlm) with a progress "
                    "bar and periodic samples; save it at the end, every --checkpoint-every "
                    "seconds, and on Ctrl-C (a second Ctrl-C aborts).",
        epilog="Without --resume the model options default to the values shown; with --resume "
               "they come from the checkpoint (--lr and --clip may change, the others must "
               "match). Exit status: 0 when training ends (also by Ctrl-C) and the checkpoint "
               "is saved; 2, with one line on stderr, for bad arguments or files, sizes that "
               "do not fit in memory, a checkpoint that cannot be written (the previous one "
               "stays) or training that diverges (nothing is saved after the last good "
               "checkpoint); 130 after a second Ctrl-C.")
    t.add_argument("text", nargs="?", help="UTF-8 text file (default: the embedded corpus)")
    t.add_argument("--cell", default=None, choices=fastrnn.CELLS, help=f"({d['cell']})")
    t.add_argument("--leak-rate", type=float, default=None,
                   help="the leaky cell's leak rate a in (0, 1] (1.0); --cell leaky only")
    t.add_argument("--hidden", type=int, default=None, help=f"hidden units ({d['hidden']})")
    t.add_argument("--batch", type=int, default=None, help=f"parallel streams ({d['batch']})")
    t.add_argument("--window", type=int, default=None,
                   help=f"TBPTT window in characters ({d['window']})")
    t.add_argument("--lr", type=float, default=None, help=f"Adam learning rate ({d['lr']:g})")
    t.add_argument("--clip", type=float, default=None, help=f"gradient norm clip ({d['clip']:g})")
    t.add_argument("--dtype", default=None, choices=("float32", "float64"), help=f"({d['dtype']})")
    t.add_argument("--backend", default=None, choices=backends,
                   help="(default: FASTRNN_BACKEND, else auto)")
    t.add_argument("--seconds", type=float, default=None,
                   help=f"stop after this many seconds ({DEFAULT_SECONDS:g}, or none with --chars)")
    t.add_argument("--chars", type=int, default=None, help="stop after this many characters")
    t.add_argument("--sample-every", type=float, default=10.0,
                   help="seconds between samples, 0 for none (10)")
    t.add_argument("--sample-chars", type=int, default=200, help="characters per sample (200)")
    t.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0.7)")
    t.add_argument("--prime", default=None,
                   help="text the samples continue (default: the first words of a line of "
                        "prose in the training text)")
    t.add_argument("--plot", default=None, metavar="FILE.png",
                   help="save the run's loss curve (needs the plot extra: pip install "
                        "'fastrnn[plot]')")
    t.add_argument("--checkpoint", default=None,
                   help=f"model file to write (the --resume file, else {DEFAULT_CHECKPOINT})")
    t.add_argument("--checkpoint-every", type=float, default=30.0,
                   help="seconds between checkpoints, 0 for only at the end (30)")
    t.add_argument("--resume", default=None, metavar="PATH", help="continue training this model file")
    t.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (0)")
    s = sub.add_parser("sample", help="generate text from a saved model",
                       description="Generate text from a model saved by 'fastrnn train'.")
    s.add_argument("model")
    s.add_argument("--chars", type=int, default=500, help="characters to generate (500)")
    s.add_argument("--temperature", type=float, default=0.7, help="(0.7)")
    s.add_argument("--seed", type=int, default=None, help="(default: a fresh one each run)")
    s.add_argument("--prime", default="", help="text to start from (printed first)")
    s.add_argument("--backend", default=None, choices=backends)
    sub.add_parser("bench", help="benchmark matrix, fastrnn vs torch (fastrnn bench --help); "
                                 "'fastrnn bench minchar': the min-char-rnn workload; "
                                 "'fastrnn bench subnormal': a decaying state's step",
                   add_help=False)
    sub.add_parser("check", help="hand-derived and finite-difference self-checks (default)")
    sub.add_parser("info", help="version, backends, ISA")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        # `bench` (and `bench minchar`) has its own parsers: fastrnn.bench.cli's main
        if argv[:1] == ["bench"]:
            from fastrnn.bench import main as bench_main
            return bench_main(argv[1:], prog="fastrnn bench")
        args = _parser().parse_args(argv)
        try:
            if args.command == "train":
                return _train(args)
            if args.command == "sample":
                return _sample(args)
            if args.command == "info":  # check prints _info too, not the cells
                status = _info()
                _info_cells()
                return status
            return _check()
        except _UsageError as exc:
            print(f"fastrnn {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        # the backstops: what the checks above did not foresee still ends in
        # one line, never a traceback (bugs included: the message says what)
        except MemoryError as exc:
            print(f"fastrnn {args.command}: error: out of memory: {_one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"fastrnn {args.command}: error: {_one_line(exc.strerror or exc)}{where}",
                  file=sys.stderr)
            return 2
        except (ValueError, TypeError, FloatingPointError) as exc:  # ModelFileError, divergence
            print(f"fastrnn {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("\nfastrnn: aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fastrnn sample m | head`: stop quietly, like other commands
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
