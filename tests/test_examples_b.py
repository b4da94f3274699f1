"""The examples stacked_bidirectional, rnnlm_truncated and addition_seq2seq (issue 14).

Each runs as a user runs it (a subprocess on the default backend) and its
headline figure, the last line ``name: value``, is held to the bound the
issue sets; small helpers of the scripts are checked on hand-made cases.
What this is not: a test of the layers themselves (tests/test_layers.py and
friends do that).
"""
import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _module(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name, figure, *args, timeout=600):
    """Run examples/NAME.py; return its stdout lines and the value on its last line."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    match = re.fullmatch(rf"{figure}: (\d+(?:\.\d*)?(?:e-?\d+)?)", lines[-1])
    assert match, f"the last line is not '{figure}: <value>': {lines[-1]!r}"
    return lines, float(match.group(1))


# ------------------------------------------------------ stacked_bidirectional

def test_unique_token_tags_on_a_hand_made_sequence():
    example = _module("stacked_bidirectional")
    x, tags, lengths = example.make_sequences(200, np.random.default_rng(0))
    for row in range(200):
        n = lengths[row]
        symbols = x[row, :n].argmax(axis=1)
        expected = [int(list(symbols).count(s) == 1) for s in symbols]
        assert list(tags[row, :n]) == expected
        assert (tags[row, n:] == example.IGNORE).all() and not x[row, n:].any()


@pytest.mark.slow
def test_stacked_bidirectional_tags_held_out_sequences():
    """About 15 s. The commoner tag alone scores about 0.62 on the held-out
    steps (the script prints it), so 0.95 needs the tagger to have learnt
    both directions' evidence."""
    lines, value = _run("stacked_bidirectional", "accuracy")
    baseline = float(re.search(r"commoner tag scores (\d\.\d+)", "\n".join(lines)).group(1))
    assert baseline < 0.7
    assert value >= 0.95


# ------------------------------------------------------------ rnnlm_truncated

def test_rnnlm_vocabulary_is_capped_with_an_unknown_token():
    example = _module("rnnlm_truncated")
    corpus = [["a", "b", "a", "c"], ["a", "b", "d"]]
    index, encoded = example.encode(corpus, 5)  # START, END, UNKNOWN + the 2 commonest
    assert len(index) == 5 and {"a", "b"} <= set(index) and "c" not in index
    s, e, u = index[example.START], index[example.END], index[example.UNKNOWN]
    assert encoded[0] == [s, index["a"], index["b"], index["a"], u, e]
    x, y, resets = example.streams(encoded, 1)
    np.testing.assert_array_equal(x[1:, 0], y[:-1, 0])  # the targets are the next token
    assert list(np.nonzero(resets[:, 0])[0]) == [0, 6]  # a reset at each sentence start


def test_rnnlm_sentences_drop_code_and_tables():
    example = _module("rnnlm_truncated")
    text = "# Title\n\nOne short sentence here. And another one!\n\n```\ncode line here\n```\n" \
           "| a | table | row |\n"
    assert example.sentences(text) == [["one", "short", "sentence", "here", "."],
                                       ["and", "another", "one", "!"]]


# The bound is after / before <= 0.5; before training the model is
# near uniform over the vocabulary (perplexity ~ its size), so the ratio
# alone is met by learning word frequencies. The test also asks for a
# held-out perplexity below the unigram model's, which only a model using
# the context reaches (the example: 94 against 210 from a checkout).
@pytest.mark.parametrize("source", ["auto", "package"])
def test_rnnlm_halves_perplexity_and_beats_unigram(source):
    lines, ratio = _run("rnnlm_truncated", "perplexity_ratio", "--source", source)
    text = "\n".join(lines)
    unigram = float(re.search(r"unigram frequencies: ([\d.]+)", text).group(1))
    after = float(re.search(r"perplexity after training: ([\d.]+)", text).group(1))
    assert ratio <= 0.5
    assert after < 0.9 * unigram
    if source == "package":
        assert "embedded corpus" in text
