"""The ``fastrnn`` command (also ``python -m fastrnn``).

``fastrnn train [TEXT]`` trains a character-level language model
(fastrnn.charlm) on a text file, or without one on the embedded corpus (the
project's own docs and sources), with a progress bar, periodic samples and
checkpoints; ``fastrnn sample MODEL`` generates text from a saved model.
``fastrnn bench`` times the min-char-rnn workload against its NumPy original
(fastrnn.bench_minchar). ``fastrnn check`` (the default) runs the slide
walk-through with hand-derived numbers on every available backend and a
float64 finite-difference gradient check of each cell. ``fastrnn info``
prints the version, backends and the C kernels' ISA.

Bad arguments or files end with a one-line message and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import fastrnn
from fastrnn import functional as F


def _info() -> int:
    print(f"fastrnn {fastrnn.__version__}")
    print(f"backends available: {', '.join(fastrnn.available_backends())}")
    print(f"C kernels ISA: {fastrnn.cpu_isa() or '(compiled core not available)'}")
    return 0


# The concat(x, h) walk-through: a 3x9 weight acting on [x_t (6), h_{t-1} (3)],
# ReLU, no bias, h0 = 0. Worked by hand: h = [3,1,5], [8,9,12], [11,29,22].
WALKTHROUGH_X = np.array([[0, 1, 0, 1, 0, 1], [0, 2, 1, 3, 0, 0], [1, 1, 2, 1, 0, 0]])
WALKTHROUGH_W = np.array([[1, 1, 0, 1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1],
                          [2, 1, 1, 1, 2, 3, 2, 0, 0]])
WALKTHROUGH_H = np.array([[3, 1, 5], [8, 9, 12], [11, 29, 22]])


def _finite_difference_error(cell: str, backend: str) -> float:
    """Max relative error of backward vs central differences, float64."""
    rng = np.random.default_rng(7)
    T, B, I, H = 4, 2, 3, 5
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    p = [rng.uniform(-0.5, 0.5, s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
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
            x = WALKTHROUGH_X[:, None, :].astype(dtype)
            w = WALKTHROUGH_W.astype(dtype)
            r = F.forward("rnn_relu", x, w[:, :6], w[:, 6:], backend=backend)
            good = np.array_equal(r.output[:, 0], WALKTHROUGH_H)
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

class _Bar:
    """A one-line progress bar: tqdm's when installed, else a small built-in one
    (redrawn in place on a terminal, a line every few seconds otherwise)."""

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


class _UsageError(Exception):
    """A bad argument or file: reported in one line, exit status 2."""


def _read_text(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _UsageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(f"cannot read {path} as UTF-8 text: {exc}") from None
    if len(text) < 2:
        raise _UsageError(f"{path} has {len(text)} characters; training needs more text")
    return text


def _train(args) -> int:
    from fastrnn.charlm import CharLM, ModelFileError, Vocab, default_corpus

    text, source = (_read_text(args.text), args.text) if args.text else (
        default_corpus(), "the embedded corpus (fastrnn's own docs and sources)")
    for name in ("seconds", "sample_every", "checkpoint_every", "temperature"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            raise _UsageError(f"--{name.replace('_', '-')} must be > 0")
    if args.chars is not None and args.chars < 1:
        raise _UsageError("--chars must be >= 1")
    if args.resume:
        try:
            lm = CharLM.load(args.resume)
        except ModelFileError as exc:
            raise _UsageError(str(exc)) from None
        try:
            lm.vocab.encode(text)
        except ValueError as exc:
            raise _UsageError(f"cannot continue {args.resume} on {source}: {exc}") from None
    else:
        try:
            lm = CharLM(Vocab.from_text(text), args.cell, args.hidden, dtype=args.dtype,
                        seed=args.seed, batch=args.batch, window=args.window, lr=args.lr,
                        clip=args.clip)
        except (TypeError, ValueError) as exc:
            raise _UsageError(str(exc)) from None
    if (len(text) - 1) // lm.batch < 1:
        raise _UsageError(f"{source} is too short for {lm.batch} streams (--batch)")
    seconds = args.seconds if args.seconds is not None else (None if args.chars else 60.0)
    checkpoint = Path(args.checkpoint or args.resume or "fastrnn-charlm.frnn")
    backend = fastrnn.backends.resolve_backend(args.backend)

    print(f"training on {source}: {len(text):,} characters, {len(lm.vocab)} distinct")
    print(f"model: {lm.cell}, hidden {lm.hidden_size}, {lm.theta.size:,} parameters, {lm.dtype.name}; "
          f"batch {lm.batch} x window {lm.window}, Adam lr {lm.lr}, clip {lm.clip}; backend {backend}")
    if args.resume:
        print(f"resuming {args.resume}: {lm.chars_total:,} characters trained so far")
    budget = " and ".join(x for x in (f"{seconds:g} s" if seconds else "",
                                      f"{args.chars:,} characters" if args.chars else "") if x)
    print(f"stops after {budget} (Ctrl-C stops early and still saves); checkpoint: {checkpoint}\n",
          flush=True)

    by_time = seconds is not None
    bar = _Bar(seconds if by_time else args.chars, "s" if by_time else "chars")
    marks = {"sample": args.sample_every, "checkpoint": args.checkpoint_every}
    state = {"sample": 0.0, "checkpoint": 0.0}

    def on_chunk(p) -> None:
        bar.update(p.seconds if by_time else p.chars, p.loss, p.chars / max(p.seconds, 1e-9))
        if p.seconds - state["sample"] >= marks["sample"]:
            state["sample"] = p.seconds
            snippet = lm.sample(args.sample_chars, temperature=args.temperature, seed=args.seed,
                                backend=args.backend)
            bar.write(f"--- {p.seconds:5.1f} s, loss {p.loss:.3f} nats/char ---\n{snippet}\n")
        if p.seconds - state["checkpoint"] >= marks["checkpoint"]:
            state["checkpoint"] = p.seconds
            lm.save(checkpoint)

    interrupted = False
    t0 = time.perf_counter()
    try:
        losses = lm.train(text, chars=args.chars, seconds=seconds, callback=on_chunk,
                          backend=args.backend)
    except KeyboardInterrupt:
        interrupted, losses = True, []
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    lm.save(checkpoint)
    final = f"{losses[-1]:.3f} nats/char" if losses else "n/a"
    print(f"\n{'interrupted' if interrupted else 'done'} after {elapsed:.1f} s: "
          f"{lm.chars_total:,} characters trained in total, last loss {final}")
    print(f"saved {checkpoint} (continue: fastrnn train --resume {checkpoint}; "
          f"generate: fastrnn sample {checkpoint})\n")
    print(lm.sample(args.sample_chars * 2, temperature=args.temperature, seed=args.seed,
                    backend=args.backend))
    return 0


def _sample(args) -> int:
    from fastrnn.charlm import CharLM, ModelFileError

    try:
        lm = CharLM.load(args.model)
    except ModelFileError as exc:
        raise _UsageError(str(exc)) from None
    if args.chars < 0:
        raise _UsageError("--chars must be >= 0")
    if not args.temperature > 0:
        raise _UsageError("--temperature must be > 0")
    try:
        text = lm.sample(args.chars, temperature=args.temperature, seed=args.seed, prime=args.prime,
                         backend=args.backend)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    print(args.prime + text)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastrnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="{train,sample,bench,check,info}")
    t = sub.add_parser("train", help="train a character-level language model",
                       description="Train a character-level language model (fastrnn.charlm).")
    t.add_argument("text", nargs="?", help="UTF-8 text file (default: the embedded corpus)")
    t.add_argument("--cell", default="gru", choices=fastrnn.CELLS)
    t.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    t.add_argument("--batch", type=int, default=32, help="parallel streams (default 32)")
    t.add_argument("--window", type=int, default=50, help="TBPTT window in characters (default 50)")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    t.add_argument("--clip", type=float, default=5.0, help="gradient norm clip (default 5)")
    t.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    t.add_argument("--backend", default=None, choices=("auto",) + tuple(fastrnn.backends.BACKENDS))
    t.add_argument("--seconds", type=float, default=None,
                   help="stop after this many seconds (default 60, or none with --chars)")
    t.add_argument("--chars", type=int, default=None, help="stop after this many characters")
    t.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples (10)")
    t.add_argument("--sample-chars", type=int, default=200, help="characters per sample (200)")
    t.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0.7)")
    t.add_argument("--checkpoint", default=None,
                   help="model file to write (default: the --resume file, else fastrnn-charlm.frnn)")
    t.add_argument("--checkpoint-every", type=float, default=30.0, help="seconds between checkpoints (30)")
    t.add_argument("--resume", default=None, help="continue training this model file")
    t.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (0)")
    s = sub.add_parser("sample", help="generate text from a saved model",
                       description="Generate text from a model saved by 'fastrnn train'.")
    s.add_argument("model")
    s.add_argument("--chars", type=int, default=500)
    s.add_argument("--temperature", type=float, default=0.7)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--prime", default="", help="text to start from (printed first)")
    s.add_argument("--backend", default=None, choices=("auto",) + tuple(fastrnn.backends.BACKENDS))
    sub.add_parser("bench", help="min-char-rnn workload: fastrnn vs the NumPy original "
                                 "(fastrnn bench --help)", add_help=False)
    sub.add_parser("check", help="hand-derived and finite-difference self-checks (default)")
    sub.add_parser("info", help="version, backends, ISA")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options: bench_minchar's parser
        from fastrnn.bench_minchar import main as bench_main
        bench_main(argv[1:], prog="fastrnn bench")
        return 0
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "sample":
            return _sample(args)
        return _info() if args.command == "info" else _check()
    except _UsageError as exc:
        print(f"fastrnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fastrnn sample m | head`: stop quietly, like other commands
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
