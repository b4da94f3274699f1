"""fastrnn.bench.models (``fastrnn bench --shapes word-lm gru-classifier``): torch models
before and after fastrnn.torch.convert, in the bench.

What is checked: the workloads are the issue's sizes and are selected like
the layer workloads; the two contenders are a pure torch.nn model and a
converted copy of it from the same weights, whose losses over two training
steps are torch's own (the expected values come from the torch.nn copy,
run by torch); the check before timing stops a run whose converted model
computes something else or falls back to torch; the rows print, carry
their ratios and land in the JSON; without torch the workloads are skipped
with a message. Timings are never compared with anything, and only the
"-small" sizes run (each test takes about a second).
"""
from __future__ import annotations

import json
import warnings

import pytest

import fastrnn
from fastrnn.bench import cli, models, report

HAVE_C = "c" in fastrnn.available_backends()
needs_core = pytest.mark.skipif(not HAVE_C, reason="fastrnn.torch runs the compiled core")


@pytest.fixture
def torch():
    module = pytest.importorskip("torch")
    pytest.importorskip("fastrnn.torch")
    return module


def test_model_workloads_are_the_issues():
    lm, gru = models.WORKLOADS["word-lm"], models.WORKLOADS["gru-classifier"]
    # PyTorch's word_language_model, "medium": emsize = nhid = 650, 2 layers, dropout
    # 0.5, batch 20, bptt 35, lr 20, clip 0.25; a 10 000-word vocabulary (the issue's)
    assert (lm.kind, lm.vocab, lm.I, lm.H, lm.num_layers, lm.bidirectional) == (
        models.WORD_LM, 10_000, 650, 650, 2, False)
    assert (lm.B, lm.T, lm.dropout, lm.lr, lm.clip, lm.cells) == (
        20, 35, 0.5, 20.0, 0.25, ("lstm", "gru"))
    assert (gru.kind, gru.B, gru.T, gru.I, gru.H, gru.num_layers, gru.bidirectional) == (
        models.CLASSIFIER, 32, 100, 128, 128, 2, True)
    assert (gru.classes, gru.dropout, gru.cells) == (10, 0.0, ("gru",))
    assert models.DEFAULT_WORKLOADS == ("word-lm", "gru-classifier")
    assert models.QUICK_WORKLOADS == ("word-lm-small", "gru-classifier-small")
    for small, full in zip(models.QUICK_WORKLOADS, models.DEFAULT_WORKLOADS):
        s, f = models.WORKLOADS[small], models.WORKLOADS[full]
        assert (s.kind, s.num_layers, s.bidirectional, s.cells) == (
            f.kind, f.num_layers, f.bidirectional, f.cells)


def test_plan_takes_the_model_workloads_from_shapes_and_quick():
    ap = cli.build_parser()

    def plan(*argv):
        return cli.plan_from_args(ap, ap.parse_args(list(argv)))
    default = plan()
    assert [w.name for w in default.models] == ["word-lm", "gru-classifier"]
    assert [w.name for w in default.workloads] == ["stacked", "lengths-cost"]
    # word-lm: lstm and gru, gru-classifier: gru; float32; 2 thread counts
    assert models.model_plan_size(default) == (2 + 1) * 2
    assert [w.name for w in plan("--quick").models] == ["word-lm-small", "gru-classifier-small"]
    assert plan("--shapes", "tiny", "stacked").models == []
    only = plan("--shapes", "word-lm", "--cells", "gru", "--threads", "1")
    assert only.shapes == [] and only.workloads == [] and [w.name for w in only.models] == [
        "word-lm"]
    assert models.cells_for(only, only.models[0]) == ["gru"] and models.model_plan_size(only) == 1
    # a cell torch.nn has no module for is left out (rnn_sigmoid), the rest kept
    picky = plan("--shapes", "gru-classifier", "--cells", "rnn_sigmoid", "lstm")
    assert models.cells_for(picky, picky.models[0]) == ["lstm"]
    inference = plan("--shapes", "word-lm", "--modes", "inference")
    assert not models.runs_for(inference) and models.model_plan_size(inference) == 0
    assert models.dtypes_for(plan("--dtypes", "float64")) == ["float64"]


@needs_core
@pytest.mark.parametrize("name, cell", [("word-lm-small", "lstm"), ("word-lm-small", "gru"),
                                        ("gru-classifier-small", "gru")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_converted_copy_gives_torchs_losses(torch, name, cell, dtype):
    import fastrnn.torch as ft
    W = models.WORKLOADS[name]
    problem = models.make_model_problem(W, cell, dtype, torch)
    reference, converted = problem.models[models.TORCH_NN], problem.models[models.CONVERTED]
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    # the reference is torch.nn's own module, the other a converted copy (not the same
    # parameters: each has its optimizer), both from the same weights
    assert type(reference.rnn) is layer and type(converted.rnn) is getattr(ft, layer.__name__)
    assert (reference.rnn.num_layers, reference.rnn.bidirectional) == (2, W.bidirectional)
    ref_params, conv_params = dict(reference.named_parameters()), dict(converted.named_parameters())
    assert ref_params.keys() == conv_params.keys()
    for key, p in ref_params.items():
        assert p is not conv_params[key] and torch.equal(p, conv_params[key])
        assert p.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    steps = {label: models.training_step(problem, label, torch) for label in models.CONTENDERS}
    losses = models.check_losses(steps, dtype, torch)
    tolerance = 1e-10 if dtype == "float64" else 1e-4
    for a, b in zip(losses[models.TORCH_NN], losses[models.CONVERTED]):
        assert b == pytest.approx(a, rel=tolerance)
    assert len(losses[models.TORCH_NN]) == models.CHECK_STEPS == 2
    # the second step's loss follows the first step's SGD update: it must have moved
    assert losses[models.TORCH_NN][1] != losses[models.TORCH_NN][0]
    if W.kind == models.WORD_LM:
        assert problem.tokens_per_step == W.B * W.T
    else:
        assert problem.tokens_per_step == int(problem.lengths.sum()) < W.B * W.T


@needs_core
def test_the_check_before_timing_catches_a_different_loss_and_a_fallback(torch):
    problem = models.make_model_problem(models.WORKLOADS["gru-classifier-small"], "gru",
                                        "float32", torch)
    with torch.no_grad():  # a converted model that computes something else
        problem.models[models.CONVERTED].rnn.bias_ih_l1_reverse += 1.0
    steps = {label: models.training_step(problem, label, torch) for label in models.CONTENDERS}
    with pytest.raises(models.ModelMismatch, match="is not torch.nn's"):
        models.check_losses(steps, "float32", torch)
    from fastrnn.torch import FallbackWarning

    def falls_back():
        warnings.warn("some reason", FallbackWarning)
        return 1.0
    with pytest.raises(models.ModelMismatch, match="ran torch's own computation: some reason"):
        models.check_losses({models.TORCH_NN: lambda: 1.0, models.CONVERTED: falls_back},
                            "float32", torch)


def _model_rows(out):
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| word-lm-small") or line.startswith("| gru-classifier-small")]
    return [r for r in rows if len(r) == len(report.MODEL_COLUMNS)]


@needs_core
def test_model_rows_appear_with_ratios_and_land_in_the_json(torch, tmp_path, capsys):
    before = (fastrnn.get_num_threads(), torch.get_num_threads())
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "word-lm-small", "gru-classifier-small", "--repeat", "1",
                   "--threads", "1", "2", "--json", str(path), "--no-png"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| shape  | cell" not in out and "| workload" not in out  # no matrix, no layers
    assert "model workloads: word-lm-small (embedding 50 words -> 16, 2 layers" in out
    rows = _model_rows(out)
    assert [(r[0], r[1], r[4], r[6]) for r in rows] == [
        (name, cell, threads, contender)
        for name, cell in (("word-lm-small", "lstm"), ("word-lm-small", "gru"),
                           ("gru-classifier-small", "gru"))
        for threads in ("1", "2") for contender in (models.TORCH_NN, models.CONVERTED)]
    for r in rows:
        assert (r[2], r[3]) == ("train", "float32")
        assert r[5] == ("all 8" if r[0] == "word-lm-small" else "U[5,20]")
        assert float(r[10]) > 0 and float(r[9]) > 0
        if r[6] == models.TORCH_NN:
            assert r[10] == "1.00"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["results"] == [] and doc["layers"] == [] and len(doc["models"]) == len(rows)
    assert doc["models_skipped"] is None and doc["model_mismatch"] is None
    by = {(r["workload"], r["cell"], r["threads"], r["contender"]): r for r in doc["models"]}
    for (name, cell, threads, contender), r in by.items():
        t = by[(name, cell, threads, models.TORCH_NN)]
        assert r["x_torch"] == pytest.approx(t["median_s"] / r["median_s"])
        assert r["tokens_per_s"] == pytest.approx(r["tokens_per_step"] / r["median_s"])
        assert len(r["samples_s"]) == 1 and r["min_s"] <= r["median_s"] <= r["max_s"]
        for a, b in zip(r["loss_torch"], r["loss_converted"]):
            assert b == pytest.approx(a, rel=1e-4)
    assert by[("word-lm-small", "gru", 1, models.CONVERTED)]["tokens_per_step"] == 4 * 8
    assert [w["name"] for w in doc["plan"]["models"]] == ["word-lm-small", "gru-classifier-small"]
    assert (fastrnn.get_num_threads(), torch.get_num_threads()) == before


def test_model_workloads_are_skipped_with_a_message_without_torch(tmp_path, capsys):
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "word-lm-small", "gru-classifier-small", "--no-torch",
                   "--json", str(path), "--no-png"])
    out = capsys.readouterr().out
    assert rc == 0
    message = "torch is not installed or --no-torch was given"
    assert f"model workloads skipped (word-lm-small, gru-classifier-small): {message}" in out
    assert not _model_rows(out)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["models"] == [] and doc["models_skipped"] == message


def test_model_workloads_are_skipped_when_modes_has_no_train(capsys):
    rc = cli.main(["--shapes", "word-lm-small", "--modes", "inference", "--no-json",
                   "--no-png"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "model workloads skipped (word-lm-small): " in out and not _model_rows(out)


@needs_core
def test_a_mismatch_stops_the_run_with_status_1_and_keeps_the_file(torch, tmp_path, capsys,
                                                                   monkeypatch):
    real = models.make_model_problem

    def a_wrong_conversion(*args, **kwargs):
        problem = real(*args, **kwargs)
        with torch.no_grad():
            # one word's bias (the same shift on every bias would leave the softmax as it is)
            problem.models[models.CONVERTED].decoder.bias[0] += 1.0
        return problem
    monkeypatch.setattr(models, "make_model_problem", a_wrong_conversion)
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "word-lm-small", "--cells", "gru", "--threads", "1",
                   "--repeat", "1", "--json", str(path), "--no-png"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "error: model workload stopped: step 1: the converted model's loss" in captured.err
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["models"] == [] and "is not torch.nn's" in doc["model_mismatch"]
