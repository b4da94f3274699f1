"""A word-level RNN language model on fastrnn's own docs, trained with per-output truncation depth.

What it is: wildml's RNNLM tutorial (an Elman tanh RNN over words, trained
with ``bptt_truncate``: the loss at each step backpropagates through at most
``depth`` earlier steps) on fastrnn.training: ``TrainSpec(depth=...)`` with
index input, a softmax cross-entropy head and Adam. Like wildml it wraps each
sentence in start and end tokens, keeps the most frequent words and maps the
rest to an unknown token, and has no biases (its U, V, W alone).

The corpus is fastrnn's documentation: README.md and docs/*.md next to the
package when it runs from a source checkout; otherwise (an installed wheel
ships no docs) the Markdown files inside the corpus the package embeds
(fastrnn/corpus/fastrnn.txt, read through importlib.resources: the opening
part of each of the same files, made by tools/make_corpus.py; about a
quarter of the words, all within the vocabulary cap), and it says which it
used.
Code blocks and table rows are dropped: the prose is the language modelled.
Every tenth sentence is held out. The sentences are concatenated into a few
parallel streams with a state reset at every sentence start (``resets=``), so
no sentence sees the one before it, and each call of fit_sequence over the
next chunk of the streams is one update.

It prints the held-out perplexity (exp of the mean cross-entropy per
predicted word) before training and after each epoch, a unigram model's for
comparison, and ends with ``perplexity_ratio: <after / before>``.

What it deliberately is not: a good language model (a few thousand
sentences of one project's docs) or wildml's exact recipe (wildml uses SGD
over one sentence at a time and an 8000-word vocabulary; Adam over batched
streams trains in seconds here).

    python examples/rnnlm_truncated.py [--epochs 10] [--depth 4] [--plot curve.png]

Run time: about 5 s on the 2-core development machine (default settings;
from a checkout, held-out perplexity 1003 -> 94, ratio 0.094; with
``--source package`` 800 -> 179, ratio 0.224).
"""
from __future__ import annotations

import argparse
import collections
import math
import pathlib
import re
import sys
import time

import numpy as np

import fastrnn
from fastrnn import training
from fastrnn.charlm import default_corpus

SEED = 1
START, END, UNKNOWN = "<s>", "</s>", "<unk>"


def markdown_sources(source: str = "auto"):
    """(description, [Markdown text]) of the docs: the checkout's files or the
    embedded corpus's copies. source: "auto", "checkout" or "package"."""
    root = pathlib.Path(fastrnn.__file__).resolve().parents[2]  # src/fastrnn/.. /..
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    if source != "package" and all(f.is_file() for f in files[:1]) and len(files) > 1:
        return f"{len(files)} Markdown files in {root}", [f.read_text("utf-8") for f in files]
    if source == "checkout":
        raise SystemExit(f"no README.md and docs/*.md next to the package ({root})")
    # the embedded corpus is files concatenated under "==> path <==" headers
    parts = re.split(r"^==> (.+?) <==$", default_corpus(), flags=re.M)
    texts = {name: body for name, body in zip(parts[1::2], parts[2::2]) if name.endswith(".md")}
    return (f"the Markdown files of the package's embedded corpus ({', '.join(texts)})",
            list(texts.values()))


def sentences(markdown: str):
    """Lower-cased word lists of the prose sentences (code blocks, table rows
    and headings dropped)."""
    prose, in_code = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code or line.lstrip().startswith(("|", "#", "    ")):
            prose.append("")
            continue
        prose.append(line)
    result = []
    for paragraph in re.split(r"\n\s*\n", "\n".join(prose)):
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
            words = re.findall(r"[a-z]+(?:'[a-z]+)?|\d+|[(),;:.!?=+\-*/<>]", sentence.lower())
            if len(words) >= 3:
                result.append(words)
    return result


def encode(corpus, vocabulary_size: int):
    """Word -> index over the most frequent words (START, END and UNKNOWN
    included), and each sentence as [START] words [END] in indices."""
    counts = collections.Counter(word for sentence in corpus for word in sentence)
    kept = [word for word, _ in counts.most_common(vocabulary_size - 3)]
    index = {word: i for i, word in enumerate([START, END, UNKNOWN, *kept])}
    unknown = index[UNKNOWN]
    return index, [[index[START], *(index.get(w, unknown) for w in s), index[END]]
                   for s in corpus]


def streams(encoded, rows: int):
    """The sentences laid end to end and cut into ``rows`` equal streams,
    time-major: inputs (T, rows) int64, targets (the next word) and resets
    (True at every sentence start)."""
    flat = np.concatenate([np.asarray(s, np.int64) for s in encoded])
    starts = np.zeros(flat.size, bool)
    starts[np.cumsum([0] + [len(s) for s in encoded[:-1]])] = True
    steps = (flat.size - 1) // rows
    cut = lambda a: np.ascontiguousarray(a[:rows * steps].reshape(rows, steps).T)  # noqa: E731
    # the targets are the next word, except that a sentence's END has no successor to predict
    # within its own sentence: the next stream position is the next sentence's START, which the
    # reset separates from it; it is kept as a target (predicting where a sentence begins)
    return cut(flat[:-1]), cut(flat[1:]), cut(starts[:-1])


def perplexity(layout, theta, inputs, targets, resets) -> float:
    """exp(mean cross-entropy per predicted word) over the whole streams."""
    spec = training.TrainSpec(layout, index_input=True, k1=inputs.shape[0], reduction="sum")
    result = training.sequence_gradients(spec, theta, inputs, targets, resets=resets)
    return math.exp(float(result.losses.sum()) / targets.size)


def unigram_perplexity(train_targets, targets, vocabulary_size) -> float:
    """The perplexity of word frequencies alone (add-one smoothed): what a
    model that ignores the context scores."""
    counts = np.bincount(train_targets.ravel(), minlength=vocabulary_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return math.exp(-log_p[targets.ravel()].mean())


def save_plot(path, epochs, perplexities, unigram):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, perplexities, marker="o", label="RNN LM (held out)")
    ax.axhline(unigram, color="gray", linestyle="--", label="unigram frequencies")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0: before training)")
    ax.set_ylabel("held-out perplexity (log scale)")
    ax.set_title("word-level RNN LM on fastrnn's docs, per-output depth")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10,
                        help="passes over the training streams (held-out perplexity is "
                             "lowest near 10; more overfits this small corpus)")
    parser.add_argument("--depth", type=int, default=4,
                        help="per-output truncation depth (wildml's bptt_truncate, default 4)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units")
    parser.add_argument("--vocabulary", type=int, default=1000,
                        help="words kept, the start, end and unknown tokens included")
    parser.add_argument("--rows", type=int, default=16, help="parallel streams (the batch)")
    parser.add_argument("--chunk", type=int, default=32, help="steps per update")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate")
    parser.add_argument("--source", choices=("auto", "checkout", "package"), default="auto",
                        help="the docs: next to the package, the embedded corpus, or the first "
                             "found (default)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--plot", metavar="FILE.png", help="save the learning curve")
    args = parser.parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'fastrnn[plot]'")
    dtype = np.dtype(args.dtype)

    where, texts = markdown_sources(args.source)
    corpus = [s for text in texts for s in sentences(text)]
    index, encoded = encode(corpus, args.vocabulary)
    V = len(index)
    train_sentences = [s for i, s in enumerate(encoded) if i % 10]
    test_sentences = encoded[::10]
    x, y, resets = streams(train_sentences, args.rows)
    test = streams(test_sentences, 1)
    unknown_share = np.mean(np.concatenate(encoded) == index[UNKNOWN])
    print(f"corpus: {where}")
    print(f"{len(corpus)} sentences, {sum(map(len, corpus))} words; vocabulary {V} "
          f"({unknown_share:.1%} of the tokens unknown); train {len(train_sentences)} "
          f"sentences, held out {len(test_sentences)}")

    layout = training.Layout("rnn_tanh", V, args.hidden, V, bias=False, head_bias=False)
    theta = layout.init(dtype, seed=SEED)
    spec = training.TrainSpec(layout, index_input=True, depth=args.depth, reduction="mean",
                              clip=training.Clip("norm", 5.0),
                              optimizer=training.Adam(args.lr))
    unigram = unigram_perplexity(y, test[1], V)
    before = perplexity(layout, theta, *test)
    print(f"held-out perplexity before training: {before:.1f} (unigram frequencies: "
          f"{unigram:.1f})")
    state, curve, start = training.OptimizerState.zeros_like(theta), [before], time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        h = np.zeros((args.rows, args.hidden), dtype)
        for first in range(0, x.shape[0], args.chunk):
            chunk = slice(first, first + args.chunk)
            # one update per call; the state carries on (detached) into the next chunk
            h = training.fit_sequence(spec, theta, x[chunk], y[chunk], h0=h, state=state,
                                      resets=np.ascontiguousarray(resets[chunk])).h_n
        curve.append(perplexity(layout, theta, *test))
        print(f"epoch {epoch:3d}  held-out perplexity {curve[-1]:8.1f}  "
              f"({time.perf_counter() - start:.0f} s)")
    after = curve[-1]
    print(f"held-out perplexity after training: {after:.1f}")
    if args.plot:
        save_plot(args.plot, range(len(curve)), curve, unigram)
        print(f"learning curve saved to {args.plot}")
    print(f"perplexity_ratio: {after / before:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
