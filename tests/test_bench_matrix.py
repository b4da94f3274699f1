"""fastrnn.bench (``fastrnn bench``): the pieces, and the run in-process.

The end-to-end command-line runs are in test_cli.py. Timings here are never
compared with anything: these tests check what is measured, how it is
reported and saved, not how fast anything is.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import time
import types
from unittest import mock

import numpy as np
import pytest

import fastrnn
from fastrnn.bench import cli, peers, report, timing

HAVE_C = "c" in fastrnn.available_backends()


def test_flop_count_matches_a_hand_computed_number():
    # small LSTM: 2 * T 128 * B 16 * (I 64 + H 128) * G 4 * H 128
    assert timing.forward_flops(timing.SHAPES["small"], "lstm") == 402_653_184
    assert timing.step_flops(timing.SHAPES["small"], "lstm", "inference") == 402_653_184
    assert timing.step_flops(timing.SHAPES["small"], "lstm", "train") == 1_207_959_552
    # tiny Elman: 2 * 256 * 1 * (8 + 32) * 1 * 32
    assert timing.step_flops(timing.SHAPES["tiny"], "rnn_tanh", "inference") == 655_360
    # large LSTM, the rows shown as a share of the FMA peak: per step x_t W_ih^T is
    # 64 x 1024 x 4096 multiply-adds and h W_hh^T the same, 2 FLOPs each, 64 steps:
    # 2 * 64 * (2 * 64 * 1024 * 4096) = 2**36; training adds dx, dh, dW_ih, dW_hh,
    # four more products of the same pair of sizes: 3 * 2**36
    assert timing.step_flops(timing.SHAPES["large"], "lstm", "inference") == 68_719_476_736
    assert timing.step_flops(timing.SHAPES["large"], "lstm", "train") == 206_158_430_208
    # medium GRU: 2 * 100 * 32 * (256 + 512) * 3 * 512
    assert timing.step_flops(timing.SHAPES["medium"], "gru", "inference") == 7_549_747_200


# (lanes, chains) of the FMA peak loop per ISA, float32: the ISA's vector
# register width in floats (SSE2 4, AVX2 8, AVX-512 16) and csrc/kernels/peak.c's
# chain count; float64 has half the lanes.
PEAK_LOOP = {"baseline": (4, 12), "avx2": (8, 12), "avx512": (16, 24)}


@pytest.mark.skipif(not HAVE_C, reason="the compiled core is not available")
@pytest.mark.parametrize("dtype, lane_divisor", [("float32", 1), ("float64", 2)])
def test_fma_peak_loop_counts_its_operations_and_computes(dtype, lane_divisor):
    from fastrnn import _core
    lanes, chains = PEAK_LOOP[fastrnn.cpu_isa()]
    lanes //= lane_divisor
    flops, checksum = _core._fma_peak(dtype, 1000)
    assert flops == 2 * lanes * chains * 1000  # one multiply-add per lane, chain and round
    # every chain runs x -> x / 2 + 1 from x0 = c + 1/4; its distance from the fixed
    # point 2 halves each round, so after 1000 rounds every lane is 2 exactly
    assert checksum == 2.0 * lanes * chains
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        _core._fma_peak(dtype, 0)
    with pytest.raises(ValueError, match="dtype must be"):
        _core._fma_peak("float16", 10)


@pytest.mark.skipif(not HAVE_C, reason="the compiled core is not available")
def test_fma_peak_is_measured_for_both_dtypes():
    peak = timing.measure_fma_peak()
    assert peak["isa"] == fastrnn.cpu_isa()
    rates = report.peak_rates(peak)
    assert set(rates) == {"float32", "float64"} and all(r > 0 for r in rates.values())
    assert all(len(peak[d]["samples_gflops"]) == timing.PEAK_SAMPLES for d in rates)
    line = report.peak_line(peak, {"gflops": rates["float32"] / 2})
    assert line.startswith(f"one-core FMA peak ({fastrnn.cpu_isa()} kernels")
    assert line.endswith("the SGEMM above is 50% of the float32 peak")


def test_large_rows_show_their_share_of_the_peak():
    r = _result("large", "lstm", "train", 1, "fastrnn[c]", 2.0, gflops=80.0)
    r.pct_of_peak, r.pct_of_sgemm = 80.0, 95.0
    cells = [c.strip() for c in report.table_row(r).strip("|").split("|")]
    assert cells[8] == "80.0 (80% peak, 95% SGEMM)"
    got = {t["target"]: (t["measured"], t["met"])
           for t in report.evaluate_targets([r], None, None, {"float32": 100.0})}
    assert got == {"lstm train GFLOP/s share of the FMA peak": (80.0, False)}


def test_the_matrix_is_the_documented_one():
    assert {n: (s.B, s.T, s.I, s.H) for n, s in timing.SHAPES.items()} == {
        "tiny": (1, 256, 8, 32), "small": (16, 128, 64, 128), "medium": (32, 100, 256, 512),
        "large": (64, 64, 1024, 1024)}
    plan = timing.Plan(shapes=list(timing.SHAPES.values()))
    assert [plan.dtypes_at(s) for s in plan.shapes] == [
        ["float32"], ["float32", "float64"], ["float32"], ["float32"]]
    # 4 shapes x 3 cells x 2 modes x 2 thread counts, + float64 at small
    assert plan.size() == (4 + 1) * 3 * 2 * 2
    available = fastrnn.available_backends()
    assert plan.backends_at(timing.SHAPES["small"]) == available
    assert plan.backends_at(timing.SHAPES["large"]) == [b for b in available if b == "c"]
    assert timing.Plan(shapes=[], all_backends=True).backends_at(timing.SHAPES["large"]) == available
    assert timing.Plan(shapes=[], backends=["numpy"]).backends_at(timing.SHAPES["large"]) == ["numpy"]


@pytest.mark.parametrize("cell, G", [("rnn_tanh", 1), ("rnn_sigmoid", 1), ("lstm", 4), ("gru", 3)])
def test_problem_has_pytorch_layout_and_is_deterministic(cell, G):
    shape = timing.SHAPES["tiny"]
    p = timing.make_problem(cell, shape, np.float64)
    assert p.x.shape == (256, 1, 8) and p.d_output.shape == (256, 1, 32)
    assert [a.shape for a in p.params] == [(G * 32, 8), (G * 32, 32), (G * 32,), (G * 32,)]
    assert all(a.dtype == np.float64 for a in (p.x, p.d_output, *p.params))
    assert np.array_equal(timing.make_problem(cell, shape, np.float64).weight_hh, p.weight_hh)


def test_round_robin_rotates_the_starting_contender():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in "abc"}
    samples = timing.time_round_robin(calls, 3, {"a": 1, "b": 2, "c": 1})
    assert order == ["a", "b", "b", "c", "b", "b", "c", "a", "c", "a", "b", "b"]
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for v in samples.values() for t in v)


def test_warm_up_sizes_samples():
    assert timing.warm_up(lambda: time.sleep(2 * timing.MIN_SAMPLE_S)) == 1
    n = timing.warm_up(lambda: None)
    assert 1 < n <= timing.MAX_CALLS_PER_SAMPLE


def _result(shape, cell, mode, threads, contender, median, x_torch=None, gflops=1.0):
    s = timing.SHAPES[shape]
    return timing.Result(shape=shape, B=s.B, T=s.T, I=s.I, H=s.H, cell=cell, mode=mode,
                     dtype="float32", threads=threads, contender=contender, flops=1,
                     calls_per_sample=1, samples_s=[median], median_s=median, min_s=median,
                     max_s=median, gflops=gflops, x_torch=x_torch)


def test_targets_met_not_met_and_only_what_was_measured():
    c = "fastrnn[c]"
    results = [
        _result("tiny", "lstm", "train", 1, c, 1.0, x_torch=3.5),
        _result("tiny", "lstm", "inference", 1, c, 1.0, x_torch=2.9),  # goal: the train goal, 3
        _result("tiny", "gru", "train", 2, c, 1.0, x_torch=50.0),  # 2 threads: not a ratio target
        _result("medium", "gru", "train", 1, c, 2.0, x_torch=1.3),
        _result("medium", "gru", "train", 2, c, 1.0, x_torch=1.3),  # 2.0x with 2 threads
        _result("large", "rnn_tanh", "train", 1, c, 1.0, x_torch=None, gflops=70.0),
        _result("large", "rnn_tanh", "train", 2, c, 0.7),  # 1.43x: not met
    ]
    stream = {"fastrnn": {"api": "x", "us_per_call": 2.5}}
    got = {(t["target"], t["shape"]): (round(t["measured"], 3), t["met"])
           for t in report.evaluate_targets(results, stream, sgemm_gflops=100.0)}
    assert got == {
        ("lstm train x torch (1 thread, float32)", "tiny"): (3.5, True),
        ("lstm inference x torch (1 thread, float32)", "tiny"): (2.9, False),
        ("gru train x torch (1 thread, float32)", "medium"): (1.3, True),
        ("rnn_tanh train GFLOP/s share of 1-thread SGEMM", "large"): (70.0, False),
        ("gru train 2-thread speed-up (float32)", "medium"): (2.0, True),
        ("rnn_tanh train 2-thread speed-up (float32)", "large"): (1.429, False),
        ("streaming LSTM step (x)", "-"): (2.5, False),
    }
    assert report.evaluate_targets([], None, None) == []


def _layer_row(workload, cell, mode, threads, contender, x_packed, dtype="float32"):
    from fastrnn.bench.stacked import LayerRow
    return LayerRow(workload=workload, num_layers=2, directions=2, B=32, T=100, I=256, H=256,
                    lengths="U[25,100]", valid_steps=2000, cell=cell, mode=mode, dtype=dtype,
                    threads=threads, contender=contender, flops=1, calls_per_sample=1,
                    samples_s=[1.0], median_s=1.0, min_s=1.0, max_s=1.0, gflops=1.0,
                    x_packed=x_packed)


def test_the_stacked_layer_target_is_the_training_step_over_torch_packed():
    c = "fastrnn[c]"
    rows = [_layer_row("stacked", "lstm", "train", 1, c, 2.5),
            _layer_row("stacked", "gru", "train", 1, c, 1.9),
            _layer_row("stacked", "gru", "inference", 1, c, 1.4),  # no goal for inference
            _layer_row("stacked", "gru", "train", 2, c, 3.0),  # nor at 2 threads
            _layer_row("stacked", "lstm", "train", 1, "torch packed", 1.0),
            _layer_row("stacked-small", "lstm", "train", 1, c, 5.0),  # the smoke sizes
            _layer_row("stacked", "lstm", "train", 1, c, 9.0, dtype="float64")]
    got = [(t["target"], t["shape"], round(t["measured"], 3), t["met"])
           for t in report.layer_targets(rows)]
    name = "{} train x torch packed (stacked, lengths)"
    assert got == [(name.format("lstm"), "-", 2.5, True), (name.format("gru"), "-", 1.9, False)]
    assert all(len(line) == len(report.targets_table([])[0])
               for line in report.targets_table(report.layer_targets(rows)))  # fits the columns
    assert report.layer_targets([]) == []


def test_json_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text('{"old": true}\n', encoding="utf-8")

    def dump_then_fail(obj, fp, **kwargs):
        fp.write('{"results": [')  # half a document, then the failure
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(json, "dump", dump_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        report.write_json(path, {"results": [1, 2, 3]})
    assert path.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]

    monkeypatch.undo()
    report.write_json(path, {"results": [1, 2, 3]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"results": [1, 2, 3]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_ctrl_c_keeps_what_was_measured_and_exits_130(tmp_path, monkeypatch, capsys):
    real = timing.measure_matrix_cell
    calls = []

    def interrupted_on_the_second_cell(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(timing, "measure_matrix_cell", interrupted_on_the_second_cell)
    path = tmp_path / "out.json"
    path.write_text("previous run\n", encoding="utf-8")
    threads_before = fastrnn.get_num_threads()
    rc = cli.main(["--shapes", "tiny", "--cells", "gru", "--modes", "inference", "train",
                  "--threads", "1", "--repeat", "1", "--backends", "numpy", "--no-torch",
                  "--json", str(path), "--png", str(tmp_path / "chart.png")])
    out = capsys.readouterr().out
    assert rc == 130
    assert "interrupted: 1 rows measured" in out and "chart skipped: interrupted" in out
    assert "| tiny   | gru      | inference | float32 |       1 | fastrnn[numpy]" in out
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["interrupted"] is True
    assert [(r["mode"], r["contender"]) for r in doc["results"]] == [("inference", "fastrnn[numpy]")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert fastrnn.get_num_threads() == threads_before


def test_json_and_png_can_be_disabled(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["--shapes", "tiny", "--cells", "rnn_tanh", "--modes", "inference",
                  "--threads", "1", "--repeat", "1", "--backends", "numpy", "--no-torch",
                  "--json", "", "--no-png"])
    assert rc == 0
    assert list(tmp_path.iterdir()) == []
    assert "results:" not in capsys.readouterr().out


def test_bench_help_names_the_minchar_workload(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"], prog="fastrnn bench")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: fastrnn bench" in out and "fastrnn bench minchar" in out and "--quick" in out


# ---------------------------------------------------------------- the chart

def _ratio_rows():
    return [_result("tiny", cell, "train", 1, "fastrnn[c]", 1.0, x_torch=x)
            for cell, x in (("lstm", 4.0), ("gru", 0.5))]


def test_chart_is_skipped_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "c.png"
    assert report.write_chart(path, _ratio_rows()) == "chart skipped: matplotlib is not installed"
    assert not path.exists()
    assert report.write_chart(path, []).startswith("chart skipped: no fastrnn[c] vs torch ratio")


def test_chart_is_drawn_and_saved_atomically(tmp_path, monkeypatch):
    fig, ax = mock.MagicMock(), mock.MagicMock()
    fig.savefig.side_effect = lambda f, **kw: f.write(b"\x89PNG fake")
    pyplot = types.ModuleType("matplotlib.pyplot")
    pyplot.subplots = mock.Mock(return_value=(fig, ax))
    pyplot.close = mock.Mock()
    matplotlib = types.ModuleType("matplotlib")
    matplotlib.use = mock.Mock()
    matplotlib.pyplot = pyplot
    monkeypatch.setitem(sys.modules, "matplotlib", matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    path = tmp_path / "c.png"
    assert report.write_chart(path, _ratio_rows()) == f"chart: {path}"
    assert path.read_bytes() == b"\x89PNG fake"
    matplotlib.use.assert_called_once_with("Agg")
    assert ax.bar.call_args.args[1] == [4.0, 0.5]
    ax.set_yscale.assert_called_once_with("log")
    pyplot.close.assert_called_once_with(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


# ---------------------------------------------------------------- with torch

@pytest.mark.skipif(not HAVE_C, reason="the compiled core is not available")
def test_tiny_shape_against_torch(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    before = (fastrnn.get_num_threads(), torch.get_num_threads())
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "tiny", "--cells", "lstm", "--modes", "inference", "--threads", "1",
                  "--repeat", "1", "--backends", "c", "--json", str(path), "--no-png"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"torch {torch.__version__}" in out.splitlines()[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| tiny")]
    assert [r[5] for r in rows] == ["fastrnn[c]", "torch"]
    ratios = {r[5]: float(r[9]) for r in rows}
    assert ratios["torch"] == 1.0 and ratios["fastrnn[c]"] > 0
    doc = json.loads(path.read_text(encoding="utf-8"))
    c, t = doc["results"]
    assert c["x_torch"] == pytest.approx(t["median_s"] / c["median_s"])
    assert doc["sgemm"]["library"] == "torch.mm" and doc["stream"]["torch"]["us_per_call"] > 0
    assert doc["fma_peak"]["float32"]["gflops"] > 0 and doc["fma_peak"]["float64"]["gflops"] > 0
    assert any(line.startswith("one-core FMA peak (") for line in out.splitlines())
    assert [x["target"] for x in doc["targets"]][0] == "lstm inference x torch (1 thread, float32)"
    assert "| lstm inference x torch (1 thread, float32)" in out
    assert (fastrnn.get_num_threads(), torch.get_num_threads()) == before


@pytest.mark.parametrize("cell, torch_class", [("rnn_tanh", "RNN"), ("rnn_relu", "RNN"),
                                               ("lstm", "LSTM"), ("gru", "GRU")])
def test_torch_peer_holds_the_same_parameters(cell, torch_class):
    torch = pytest.importorskip("torch")
    problem = timing.make_problem(cell, timing.SHAPES["tiny"], np.float64)
    module = peers.torch_module(problem, torch)
    assert type(module) is getattr(torch.nn, torch_class)
    assert module.weight_hh_l0.dtype == torch.float64
    assert np.array_equal(module.weight_ih_l0.detach().numpy(), problem.weight_ih)
    assert np.array_equal(module.bias_hh_l0.detach().numpy(), problem.bias_hh)
    ours = fastrnn.functional.forward(cell, problem.x, *problem.params, backend="numpy").output
    with torch.no_grad():
        theirs = module(torch.from_numpy(problem.x))[0].numpy()
    assert np.max(np.abs(ours - theirs)) < 1e-10


def test_a_cell_torch_cannot_run_is_timed_without_it(capsys):
    # torch.nn.RNN has no sigmoid nonlinearity: fastrnn's rows stand alone, no "x torch"
    torch = pytest.importorskip("torch")
    assert not peers.torch_can_run("rnn_sigmoid")
    assert all(peers.torch_can_run(c) for c in ("rnn_tanh", "rnn_relu", "lstm", "gru"))
    rc = cli.main(["--shapes", "tiny", "--cells", "rnn_sigmoid", "--modes", "inference",
                   "--threads", "1", "--repeat", "1", "--backends", "numpy", "--no-json",
                   "--no-png"])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out.splitlines()[0]  # torch is still the stream's peer
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| tiny")]
    assert [(r[1], r[5], r[9]) for r in rows] == [("rnn_sigmoid", "fastrnn[numpy]", "–")]
    table = [line for line in out.splitlines() if line.startswith("| shape") or line.startswith("| tiny")]
    assert len({len(line) for line in table}) == 1  # the longer cell name widens its column


@pytest.mark.parametrize("cell, api", [("lstm", "torch.nn.LSTMCell"), ("gru", "torch.nn.GRUCell"),
                                       ("rnn_relu", "torch.nn.RNNCell")])
def test_torch_stream_step_carries_its_state(cell, api):
    torch = pytest.importorskip("torch")
    x = timing.stream_input()
    torch.manual_seed(0)
    name, step = peers.torch_stream_step(torch, cell, x, 4)
    assert name == api
    torch.manual_seed(0)  # the same initial weights for the reference cell
    kwargs = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    reference = getattr(torch.nn, api.rsplit(".", 1)[1])(x.shape[1], 4, **kwargs)
    state = None
    with torch.no_grad():
        for _ in range(3):  # three steps, each from the state the previous one left
            h = step()
            state = reference(torch.from_numpy(x), state)
    expected = state[0] if isinstance(state, tuple) else state
    assert torch.equal(h, expected)


def test_minchar_is_a_subcommand_of_the_bench(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["minchar", "--help"], prog="fastrnn bench")
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: fastrnn bench minchar")


def test_thread_variables_below_the_asked_counts_are_noted(monkeypatch):
    for name in report.THREAD_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert report.thread_env_warnings([1, 2]) == []
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert report.thread_env_warnings([1]) == []
    (note,) = report.thread_env_warnings([1, 2])
    assert note.startswith("note: OMP_NUM_THREADS=1 is set, below --threads 2")
    assert report.machine_facts(None)["env"] == {"OMP_NUM_THREADS": "1"}


def test_round_robin_settles_before_every_sample(monkeypatch):
    slept = []
    monkeypatch.setattr(timing.time, "sleep", lambda s: slept.append(s))
    timing.time_round_robin({"a": lambda: None, "b": lambda: None}, 3, {"a": 1, "b": 1}, settle_s=0.02)
    assert slept == [0.02] * 6
    slept.clear()
    timing.time_round_robin({"a": lambda: None}, 2, {"a": 1})
    assert slept == []


# ------------------------------------------------- the layer workloads (issue 11)

from fastrnn.bench import stacked  # noqa: E402 - the section's own import


def _tiny_workload(**changes):
    fields = dict(name="t", B=2, T=4, I=3, H=2, num_layers=2, bidirectional=True,
                  length_sets=(stacked.UNIFORM_QUARTER_TO_T,), cells=("lstm",),
                  modes=("inference", "train"),
                  torch_paths=(stacked.TORCH_PACKED, stacked.TORCH_PADDED), slow_backends=True)
    fields.update(changes)
    return stacked.LayerWorkload(**fields)


def test_layer_workloads_are_the_issues():
    s, cost = stacked.WORKLOADS["stacked"], stacked.WORKLOADS["lengths-cost"]
    assert (s.B, s.T, s.I, s.H, s.num_layers, s.bidirectional) == (32, 100, 256, 256, 2, True)
    assert s.cells == ("lstm", "gru") and s.modes == ("inference", "train")
    assert s.torch_paths == ("torch packed", "torch padded (wrong)")
    assert (cost.B, cost.T, cost.I, cost.H, cost.num_layers, cost.bidirectional) == (
        32, 100, 256, 256, 1, False)
    assert cost.cells == ("lstm",) and cost.modes == ("train",)
    assert stacked.DEFAULT_WORKLOADS == ("stacked", "lengths-cost")
    assert all(stacked.WORKLOADS[n].slow_backends for n in stacked.QUICK_WORKLOADS)


def test_length_sets():
    uniform = stacked.lengths_for(stacked.UNIFORM_QUARTER_TO_T, 32, 100)
    assert uniform.dtype == np.int64 and uniform.shape == (32,)
    assert uniform.min() >= 25 and uniform.max() <= 100 and len(set(uniform.tolist())) > 5
    assert np.array_equal(stacked.lengths_for(stacked.UNIFORM_QUARTER_TO_T, 32, 100), uniform)
    assert stacked.lengths_for(stacked.ALL_T, 3, 7).tolist() == [7, 7, 7]
    assert stacked.lengths_for(stacked.HALF_T_HALF_TENTH, 4, 100).tolist() == [100, 10, 100, 10]
    mixed = stacked.lengths_for(stacked.HALF_T_HALF_TENTH, 32, 100)
    assert mixed.sum() / (32 * 100) == pytest.approx(0.55)  # the issue's expected cost
    assert stacked.length_label(stacked.UNIFORM_QUARTER_TO_T, 100) == "U[25,100]"
    with pytest.raises(ValueError, match="length_set must be one of"):
        stacked.lengths_for("some", 2, 3)


def test_layer_flops_count_the_valid_steps_of_every_layer_and_direction():
    w = _tiny_workload()
    lengths = np.array([4, 1])  # 5 valid steps
    # LSTM G*H = 8; layer 0: 2*5*(I 3 + H 2)*8 = 400, layer 1: 2*5*(D*H 4 + 2)*8 = 480; x 2 directions
    assert stacked.layer_forward_flops(w, "lstm", lengths) == 1760
    assert stacked.layer_step_flops(w, "lstm", lengths, "train") == 5280
    # one layer, one direction, GRU (G*H = 6): 2*5*(3+2)*6
    one = _tiny_workload(num_layers=1, bidirectional=False)
    assert stacked.layer_step_flops(one, "gru", lengths, "inference") == 300


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_packed_peer_computes_what_fastrnn_does_and_padded_does_not(cell):
    torch = pytest.importorskip("torch")
    problem = stacked.make_layer_problem(_tiny_workload(B=5, T=6, cells=(cell,)), cell, np.float64)
    lengths = problem.lengths[stacked.UNIFORM_QUARTER_TO_T]
    assert lengths.min() < 6  # some rows end early: packed and padded differ
    module = peers.torch_layer_module(problem, torch)
    assert type(module) is getattr(torch.nn, cell.upper())
    assert (module.num_layers, module.bidirectional) == (2, True)
    packed = peers.torch_packed_callable(problem, lengths, "inference", torch, module)().numpy()
    padded = peers.torch_padded_callable(problem, "inference", torch, module)().numpy()
    backends = fastrnn.available_backends("lengths")
    for backend in backends:
        ours = stacked.fastrnn_layer_callable(problem, backend, "inference",
                                              stacked.UNIFORM_QUARTER_TO_T)().output
        assert np.max(np.abs(ours - packed)) < 1e-10, backend
    assert np.max(np.abs(padded - packed)) > 1e-3  # the padded path's result is another one
    # the training steps: the same weight gradients (d_output past a row's length is ignored)
    peers.torch_packed_callable(problem, lengths, "train", torch, module)()
    layer = stacked.fastrnn_layer(problem, backends[0])
    grads = layer.backward(layer(problem.x, lengths=lengths, training=True), problem.d_output)
    for name, p in module.named_parameters():
        assert np.max(np.abs(grads.params[name] - p.grad.numpy())) < 1e-10, name


def test_layer_backends_are_those_with_lengths_narrowed_as_the_matrix():
    capable = fastrnn.available_backends("lengths")
    full, small = stacked.WORKLOADS["stacked"], stacked.WORKLOADS["stacked-small"]
    plan = timing.Plan(shapes=[])
    assert stacked.backends_for(plan, small) == capable
    assert stacked.backends_for(plan, full) == [b for b in capable if b != "numpy"]
    assert stacked.backends_for(timing.Plan(shapes=[], all_backends=True), full) == capable
    assert stacked.backends_for(timing.Plan(shapes=[], backends=list(fastrnn.available_backends())),
                                full) == capable


def test_plan_takes_the_workloads_from_shapes_and_quick():
    ap = cli.build_parser()

    def plan(*argv):
        return cli.plan_from_args(ap, ap.parse_args(list(argv)))
    default = plan()
    assert [w.name for w in default.workloads] == ["stacked", "lengths-cost"]
    assert [s.name for s in default.shapes] == list(timing.SHAPES)
    assert default.layer_cells is None and default.layer_modes is None
    assert default.cells == list(timing.DEFAULT_CELLS) and default.modes == list(timing.MODES)
    quick = plan("--quick")
    assert [w.name for w in quick.workloads] == ["stacked-small", "lengths-cost-small"]
    assert [s.name for s in quick.shapes] == ["tiny", "small"] and quick.repeat == timing.QUICK_REPEAT
    assert plan("--shapes", "tiny").workloads == []
    only = plan("--shapes", "stacked", "--cells", "gru", "--modes", "inference", "--threads", "1")
    assert only.shapes == [] and [w.name for w in only.workloads] == ["stacked"]
    assert stacked.cells_for(only, only.workloads[0]) == ["gru"]
    assert stacked.modes_for(only, only.workloads[0]) == ["inference"]
    assert stacked.layer_plan_size(only) == 1
    # stacked: 2 cells x 2 modes, lengths-cost: 1 x 1; float32 only; 2 thread counts
    assert stacked.layer_plan_size(default) == (4 + 1) * 2
    assert stacked.dtypes_for(plan("--dtypes", "float64")) == ["float64"]


def _layer_rows(out):
    """The layer table's rows (the cost-of-lengths table below it has 8 columns, not 12)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| stacked-small") or line.startswith("| lengths-cost-small")]
    return [r for r in rows if len(r) == len(report.LAYER_COLUMNS)]


@pytest.mark.skipif(not HAVE_C, reason="the compiled core is not available")
def test_layer_rows_appear_run_and_report_ratios(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    before = (fastrnn.get_num_threads(), torch.get_num_threads())
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "stacked-small", "lengths-cost-small", "--repeat", "1",
                   "--threads", "1", "--json", str(path), "--no-png"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| shape  | cell" not in out  # no matrix shape asked for: no matrix table
    assert "layer workloads: stacked-small (2 layers, bidirectional, B=8, T=20" in out
    rows = _layer_rows(out)
    ours = [f"fastrnn[{b}]" for b in fastrnn.available_backends("lengths")]
    contenders = [ours[0], "torch packed", "torch padded (wrong)"] + ours[1:]
    stacked_rows = [r for r in rows if r[0] == "stacked-small"]
    assert [(r[1], r[2], r[6]) for r in stacked_rows] == [
        (cell, mode, c) for cell in ("lstm", "gru") for mode in ("inference", "train")
        for c in contenders]
    for r in stacked_rows:
        x_packed, x_padded = float(r[10]), float(r[11])
        assert x_packed > 0 and x_padded > 0 and r[5] == "U[5,20]"
        if r[6] == "torch packed":
            assert x_packed == 1.0
        if r[6] == "torch padded (wrong)":
            assert x_padded == 1.0
    cost_rows = [r for r in rows if r[0] == "lengths-cost-small"]
    assert [(r[1], r[2], r[5], r[6]) for r in cost_rows] == [
        ("lstm", "train", lengths, c) for lengths in ("all 40", "half 40, half 4")
        for c in [ours[0], "torch packed"] + ours[1:]]
    assert all(r[11] == "–" and float(r[10]) > 0 for r in cost_rows)  # no padded path here
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["results"] == [] and len(doc["layers"]) == len(rows)
    by = {(r["workload"], r["cell"], r["mode"], r["lengths"], r["contender"]): r
          for r in doc["layers"]}
    c = by[("stacked-small", "gru", "train", "U[5,20]", "fastrnn[c]")]
    t = by[("stacked-small", "gru", "train", "U[5,20]", "torch packed")]
    assert c["x_packed"] == pytest.approx(t["median_s"] / c["median_s"])
    assert c["valid_steps"] == int(stacked.lengths_for(stacked.UNIFORM_QUARTER_TO_T, 8, 20).sum())
    assert c["num_layers"] == 2 and c["directions"] == 2
    costs = {x["contender"]: x for x in doc["lengths_cost"]}
    assert set(costs) == {ours[0], "torch packed", *ours[1:]}
    for x in costs.values():
        assert x["valid_share"] == pytest.approx(0.55) and x["share"] > 0
        assert (x["full"], x["lengths"]) == ("all 40", "half 40, half 4")
        assert x["share"] == pytest.approx(x["median_s"] / x["full_median_s"])
    assert "| lengths-cost-small lstm train, float32, 1 thread" in out
    assert [w["name"] for w in doc["plan"]["workloads"]] == ["stacked-small", "lengths-cost-small"]
    assert (fastrnn.get_num_threads(), torch.get_num_threads()) == before


def test_layer_rows_without_torch_have_no_ratios(capsys):
    rc = cli.main(["--shapes", "stacked-small", "--cells", "gru", "--modes", "train",
                   "--threads", "1", "--repeat", "1", "--backends", "numpy", "--no-torch",
                   "--no-json", "--no-png"])
    assert rc == 0
    rows = _layer_rows(capsys.readouterr().out)
    assert [(r[1], r[2], r[6], r[10], r[11]) for r in rows] == [
        ("gru", "train", "fastrnn[numpy]", "–", "–")]


def test_ctrl_c_in_the_layer_workloads_keeps_their_rows(tmp_path, monkeypatch, capsys):
    real = stacked.measure_layer_cell
    calls = []

    def interrupted_on_the_second_cell(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(stacked, "measure_layer_cell", interrupted_on_the_second_cell)
    path = tmp_path / "out.json"
    rc = cli.main(["--shapes", "stacked-small", "--cells", "lstm", "--threads", "1",
                   "--repeat", "1", "--backends", "numpy", "--no-torch", "--json", str(path),
                   "--no-png"])
    assert rc == 130
    assert "interrupted:" in capsys.readouterr().out
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["interrupted"] is True
    assert [(r["mode"], r["contender"]) for r in doc["layers"]] == [("inference", "fastrnn[numpy]")]
