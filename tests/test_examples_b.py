"""The examples stacked_bidirectional, rnnlm_truncated and addition_seq2seq (issue 14).

Each runs as a user runs it (a subprocess on the default backend) and its
headline figure, the last line ``name: value``, is held to the bound the
issue sets; small helpers of the scripts are checked on hand-made cases.
What this is not: a test of the layers themselves (tests/test_layers.py and
friends do that).
"""
import re

import numpy as np
import pytest

from examples_support import (assert_plot_refused, assert_png_if_plotted, load_example,
                              plot_args, run_example, run_without_matplotlib)


# ------------------------------------------------------ stacked_bidirectional

def test_unique_token_tags_on_a_hand_made_sequence():
    example = load_example("stacked_bidirectional")
    x, tags, lengths = example.make_sequences(200, np.random.default_rng(0))
    for row in range(200):
        n = lengths[row]
        symbols = x[row, :n].argmax(axis=1)
        expected = [int(list(symbols).count(s) == 1) for s in symbols]
        assert list(tags[row, :n]) == expected
        assert (tags[row, n:] == example.IGNORE).all() and not x[row, n:].any()


@pytest.mark.slow
def test_stacked_bidirectional_tags_held_out_sequences(tmp_path):
    """About 15 s. The commoner tag alone scores about 0.62 on the held-out
    steps (the script prints it), so 0.95 needs the tagger to have learnt
    both directions' evidence."""
    args, plot = plot_args(tmp_path)
    lines, value = run_example("stacked_bidirectional", "accuracy", *args)
    assert_png_if_plotted(args, plot)
    baseline = float(re.search(r"commoner tag scores (\d\.\d+)", "\n".join(lines)).group(1))
    assert baseline < 0.7
    assert value >= 0.95


# ------------------------------------------------------------ rnnlm_truncated

def test_rnnlm_vocabulary_is_capped_with_an_unknown_token():
    example = load_example("rnnlm_truncated")
    corpus = [["a", "b", "a", "c"], ["a", "b", "d"]]
    index, encoded = example.encode(corpus, 5)  # START, END, UNKNOWN + the 2 commonest
    assert len(index) == 5 and {"a", "b"} <= set(index) and "c" not in index
    s, e, u = index[example.START], index[example.END], index[example.UNKNOWN]
    assert encoded[0] == [s, index["a"], index["b"], index["a"], u, e]
    x, y, resets = example.streams(encoded, 1)
    np.testing.assert_array_equal(x[1:, 0], y[:-1, 0])  # the targets are the next token
    assert list(np.nonzero(resets[:, 0])[0]) == [0, 6]  # a reset at each sentence start


def test_rnnlm_sentences_drop_code_and_tables():
    example = load_example("rnnlm_truncated")
    text = "# Title\n\nOne short sentence here. And another one!\n\n```\ncode line here\n```\n" \
           "| a | table | row |\n"
    assert example.sentences(text) == [["one", "short", "sentence", "here", "."],
                                       ["and", "another", "one", "!"]]


# The bound is after / before <= 0.5; before training the model is
# near uniform over the vocabulary (perplexity ~ its size), so the ratio
# alone is met by learning word frequencies. The test also asks for a
# held-out perplexity below the unigram model's, which only a model using
# the context reaches (the example: 94 against 210 from a checkout).
@pytest.mark.slow  # about 5 s each
@pytest.mark.parametrize("source", ["auto", "package"])
def test_rnnlm_halves_perplexity_and_beats_unigram(source, tmp_path):
    args, plot = plot_args(tmp_path)
    lines, ratio = run_example("rnnlm_truncated", "perplexity_ratio", "--source", source, *args)
    assert_png_if_plotted(args, plot)
    text = "\n".join(lines)
    unigram = float(re.search(r"unigram frequencies: ([\d.]+)", text).group(1))
    after = float(re.search(r"perplexity after training: ([\d.]+)", text).group(1))
    assert ratio <= 0.5
    assert after < 0.9 * unigram
    if source == "package":
        assert "embedded corpus" in text


# ----------------------------------------------------------- addition_seq2seq

def test_addition_questions_and_answers_are_encoded_as_keras_does():
    example = load_example("addition_seq2seq")
    pairs = example.make_pairs(300, 3, np.random.default_rng(0))
    assert len(set(pairs)) == 300 and all(0 <= a < 1000 and 0 <= b < 1000 for a, b in pairs)
    x, y, questions = example.encode([(535, 61)], 3, True, np.float32)
    assert questions == [" 16+535"] and x.shape == (7, 1, 12) and x.dtype == np.float32
    assert "".join(example.CHARS[i] for i in x[:, 0].argmax(axis=1)) == " 16+535"
    assert "".join(example.CHARS[i] for i in y[:, 0]) == "596 "


# The test's configuration: 2-digit questions (8000 of the 10,000 distinct
# pairs train, 1000 held out), 64 units, 20 epochs: about 15 s. It scored
# 1.000 here (>= 0.99 from epoch 9 on), and 0.999 with teacher forcing
# (which learns more slowly: the decoder leans on the true previous
# character while training and must answer from its own at test time;
# 0.943 over 12 epochs). The bound, 0.95 for both, leaves room for another
# machine's rounding yet fails a model that carries nothing from encoder to
# decoder: that one answers only from character frequencies, right on about
# 1% of the held-out questions.
SMALL_ADDITION = ("--digits", "2", "--train", "8000", "--test", "1000", "--epochs", "20",
                  "--hidden", "64", "--batch", "32", "--lr", "5e-3")


@pytest.mark.slow
def test_addition_small_configuration_answers_held_out_questions(tmp_path):
    args, plot = plot_args(tmp_path)
    lines, value = run_example("addition_seq2seq", "accuracy", *SMALL_ADDITION, *args)
    assert_png_if_plotted(args, plot)
    assert value >= 0.95
    assert sum(line.lstrip().startswith("Q (as read)") for line in lines) == 6  # worked questions


@pytest.mark.slow
def test_addition_with_teacher_forcing_learns_too():
    lines, value = run_example("addition_seq2seq", "accuracy", *SMALL_ADDITION, "--teacher-forcing")
    assert "teacher forcing" in lines[0]
    assert value >= 0.95


@pytest.mark.parametrize("name", ["stacked_bidirectional", "rnnlm_truncated", "addition_seq2seq"])
def test_plot_without_matplotlib_names_the_extra(name, tmp_path):
    """--plot fails at once, before training, with one line naming the extra."""
    plot = tmp_path / "curve.png"
    assert_plot_refused(run_without_matplotlib(name, "--plot", plot, timeout=60), plot)
