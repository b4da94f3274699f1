"""Dump every result the vector tests compute, for a bitwise before/after check.

A refactor that must not change numerics (issue 10) is checked by running
this on the old and the new build and comparing the two files bit for bit:

    python tools/dump_outputs.py dump before.npz     # on the old build
    python tools/dump_outputs.py dump after.npz      # on the new build
    python tools/dump_outputs.py compare before.npz after.npz

It runs, through the public API only (so that it runs unchanged on both),
every tests/vectors/*.npz case (forward + backward, step by step, a stream)
and every tests/vectors/training/*.npz case (the sequence trainers), on
every backend, both dtypes and, for C, every kernel table this CPU has; and
a few larger random layers on one and on two threads with the work
threshold at zero, so that the threaded splits (row and column blocks,
packed panels) are exercised too. Not a test: the tests compare against
PyTorch with tolerances; this compares a build with another build exactly.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import fastrnn
from fastrnn import functional as F
from fastrnn import stream as S
from fastrnn import training as tr

ROOT = Path(__file__).resolve().parent.parent
VECTORS = sorted((ROOT / "tests" / "vectors").glob("*.npz"))
TRAINING = sorted((ROOT / "tests" / "vectors" / "training").glob("*.npz"))
ISAS = ("baseline", "avx2", "avx512")


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _engines():
    """(label, backend, isa) for every backend and C kernel table available."""
    out = []
    available = fastrnn.available_backends()
    if "c" in available:
        from fastrnn.backends import c
        before = c.active_isa()
        for isa in ISAS:
            if c.select_isa(isa) == isa:
                out.append((f"c-{isa}", "c", isa))
        c.select_isa(before)
    out += [(name, name, None) for name in ("numba", "numpy") if name in available]
    return out


def _layer_case(v, dtype, backend, store, key):
    cell = str(v["cell"])
    cast = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    res = F.forward(cell, cast("x"), cast("weight_ih"), cast("weight_hh"), cast("bias_ih"),
                    cast("bias_hh"), cast("h0"), cast("c0"), backend=backend, training=True)
    g = F.backward(res, cast("d_output"), cast("d_h_n"), cast("d_c_n"))
    for name, arr in (("output", res.output), ("h_n", res.h_n), ("c_n", res.c_n),
                      ("workspace", res.saved.workspace), ("dx", g.x),
                      ("dw_ih", g.weight_ih), ("dw_hh", g.weight_hh), ("db_ih", g.bias_ih),
                      ("db_hh", g.bias_hh), ("dh0", g.h0), ("dc0", g.c0)):
        if arr is not None:
            store[f"{key}/{name}"] = arr.copy()
    params = [cast(k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    x = cast("x")
    B, H = res.h_n.shape
    h = cast("h0") if "h0" in v else np.zeros((B, H), dtype)
    c = (cast("c0") if "c0" in v else np.zeros((B, H), dtype)) if res.c_n is not None else None
    steps = []
    for t in range(x.shape[0]):
        r = F.step(cell, x[t], *params, h, c, backend=backend)
        h, c = r if c is not None else (r, None)
        steps.append(h.copy())
    store[f"{key}/step"] = np.stack(steps)
    s = S.create(cell, *params, batch=B, h0=cast("h0"), c0=cast("c0"), backend=backend)
    store[f"{key}/stream"] = np.stack([s(np.ascontiguousarray(x[t])).copy()
                                       for t in range(x.shape[0])])


def _training_case(path, dtype, backend, store, key):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_training_vectors import prepare
    spec, _, theta, inputs, targets, h0, c0 = prepare(path, dtype)
    run = tr.sequence_gradients if spec.optimizer is None else tr.fit_sequence
    res = run(spec, theta, inputs, targets, h0=h0, c0=c0, backend=backend)
    store[f"{key}/theta"] = theta.copy()
    store[f"{key}/losses"] = np.asarray(res.losses).copy()
    store[f"{key}/grad"] = res.grad.copy()
    store[f"{key}/h_n"] = res.h_n.copy()
    if res.c_n is not None:
        store[f"{key}/c_n"] = res.c_n.copy()


def _random_case(cell, dtype, backend, threads, store, key):
    rng = np.random.default_rng(7)
    # restated, not fastrnn.cells: this runs on builds from before that module
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    T, B, I, H = 7, 29, 37, 53  # row counts off every tile height, H off every panel
    k = 1 / np.sqrt(H)
    arr = lambda *shape: rng.uniform(-k, k, shape).astype(dtype)  # noqa: E731
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih, w_hh, b_ih, b_hh = arr(G * H, I), arr(G * H, H), arr(G * H), arr(G * H)
    h0 = arr(B, H)
    c0 = arr(B, H) if cell == "lstm" else None
    fastrnn.set_num_threads(threads)
    from fastrnn import threads as th
    th._set_min_flops(0 if threads > 1 else -1)
    try:
        res = F.forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, backend=backend, training=True)
        d = rng.standard_normal((T, B, H)).astype(dtype)
        g = F.backward(res, d, d[-1], d[0] if cell == "lstm" else None)
    finally:
        th._set_min_flops(-1)
        fastrnn.set_num_threads(1)
    for name, a in (("output", res.output), ("h_n", res.h_n), ("c_n", res.c_n), ("dx", g.x),
                    ("dw_ih", g.weight_ih), ("dw_hh", g.weight_hh), ("db_ih", g.bias_ih),
                    ("db_hh", g.bias_hh), ("dh0", g.h0), ("dc0", g.c0)):
        if a is not None:
            store[f"{key}/{name}"] = a.copy()


def dump(out_path):
    store = {}
    engines = _engines()
    for label, backend, isa in engines:
        if isa is not None:
            from fastrnn.backends import c
            c.select_isa(isa)
        for dtype in (np.float32, np.float64):
            dn = np.dtype(dtype).name
            for path in VECTORS:
                _layer_case(_load(path), dtype, backend, store, f"layer/{path.stem}/{label}/{dn}")
            if backend in tr.available_trainers():
                for path in TRAINING:
                    _training_case(path, dtype, backend, store, f"train/{path.stem}/{label}/{dn}")
            for cell in fastrnn.CELLS:
                for threads in ((1, 2) if backend == "c" else (1,)):
                    _random_case(cell, dtype, backend, threads, store,
                                 f"random/{cell}/{label}/{dn}/threads{threads}")
    if any(isa for _, _, isa in engines):
        from fastrnn.backends import c
        c.select_isa("auto")
    np.savez_compressed(out_path, **store)
    print(f"{out_path}: {len(store)} arrays from {[e[0] for e in engines]}")


def compare(a_path, b_path):
    with np.load(a_path) as a, np.load(b_path) as b:
        keys_a, keys_b = set(a.files), set(b.files)
        differ = [k for k in sorted(keys_a & keys_b)
                  if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
                  or a[k].tobytes() != b[k].tobytes()]
        report = {"arrays_compared": len(keys_a & keys_b), "bitwise_different": len(differ),
                  "only_in_first": len(keys_a - keys_b), "only_in_second": len(keys_b - keys_a),
                  "elements_compared": int(sum(a[k].size for k in keys_a & keys_b))}
    print(json.dumps(report, indent=1))
    for k in differ[:20]:
        print("differs:", k)
    return 1 if differ or keys_a != keys_b else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
