"""Data-parallel training of fastrnn.torch modules under PyTorch's DDP
(skipped when torch or its distributed package is missing).

Two processes (the spawn start method) on loopback, gloo backend, each with
half of a batch, train a model built from fastrnn.torch modules (a 2-layer
bidirectional LSTM over padded input and a GRU over a PackedSequence, a
linear head) under torch.nn.parallel.DistributedDataParallel. DDP averages
the gradients of the two halves; the expected values are the single-process
gradients over the whole batch, computed here by torch.nn's own modules
from the same initial weights (float64 to 1e-10, float32 to 1e-5 relative),
and likewise the parameters after three SGD steps. A free port is chosen,
every collective has a timeout and the processes are killed past a
deadline, so the test can fail but never hang. Not here: several machines
(README: torchrun).
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import socket

import pytest

from conftest import rel_err

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)
if "c" not in __import__("fastrnn").available_backends():
    pytest.skip("fastrnn.torch runs the compiled core, which is not built here",
                allow_module_level=True)

WORLD = 2
BATCH = 6       # split 3 + 3
STEPS = 3
DEADLINE = 240  # seconds for both processes, start-up (imports) included


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = torch.nn.GRU(3, 4)
        self.head = torch.nn.Linear(10 + 4, 2)

    def forward(self, x, lengths):
        out, _ = self.lstm(x)
        packed = torch.nn.utils.rnn.pack_padded_sequence(x.transpose(0, 1), lengths,
                                                         enforce_sorted=False)
        _, h_n = self.gru(packed)
        return self.head(torch.cat([out.mean(1), h_n[0]], 1))


def make_problem(dtype):
    """The model's initial weights (torch.nn modules) and the whole batch."""
    torch.manual_seed(31)
    model = Model().to(dtype)
    x = torch.randn(BATCH, 7, 3, dtype=dtype)
    lengths = torch.tensor([7, 3, 5, 1, 7, 2])
    y = torch.randn(BATCH, 2, dtype=dtype)
    return model, x, lengths, y


def train(model, x, lengths, y):
    """STEPS of SGD on the mean squared error; the first step's gradients
    and the final parameters."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = None
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x, lengths), y)
        loss.backward()
        if step == 0:
            first = [p.grad.detach().clone() for p in model.parameters()]
        optimizer.step()
    return first, [p.detach().clone() for p in model.parameters()]


def _worker(rank, port, out_dir):
    import fastrnn
    import fastrnn.torch as ft
    torch.set_num_threads(1)
    fastrnn.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        results = {}
        for dtype in (torch.float64, torch.float32):
            model, x, lengths, y = make_problem(dtype)
            ft.convert(model)
            assert type(model.lstm) is ft.LSTM and type(model.gru) is ft.GRU
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
            results[str(dtype)] = train(ddp, x[half], lengths[half], y[half])
        if rank == 0:
            torch.save(results, os.path.join(out_dir, "ddp.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_single_process(tmp_path):
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    workers = [context.Process(target=_worker, args=(rank, port, str(tmp_path)))
               for rank in range(WORLD)]
    for w in workers:
        w.start()
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=DEADLINE)
    try:
        for w in workers:
            w.join(max(1.0, (deadline - datetime.datetime.now()).total_seconds()))
    finally:
        hung = [w for w in workers if w.is_alive()]
        for w in hung:
            w.kill()
            w.join(10)
    assert not hung, f"DDP workers still running after {DEADLINE} s (killed)"
    assert [w.exitcode for w in workers] == [0] * WORLD
    results = torch.load(tmp_path / "ddp.pt")
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        model, x, lengths, y = make_problem(dtype)  # torch.nn's modules, whole batch
        want_grads, want_params = train(model, x, lengths, y)
        got_grads, got_params = results[str(dtype)]
        errors = [rel_err(got.numpy(), want.numpy())
                  for got, want in zip(got_grads + got_params, want_grads + want_params)]
        print(f"[ddp {dtype}] {WORLD} processes x {BATCH // WORLD} rows vs one process x {BATCH}: "
              f"max rel err of the averaged gradients {max(errors[:len(got_grads)]):.1e}, of the "
              f"parameters after {STEPS} SGD steps {max(errors[len(got_grads):]):.1e}")
        assert max(errors) <= tol
