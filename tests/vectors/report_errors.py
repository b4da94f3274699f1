"""Print each backend's max relative error per vector file, both dtypes.

    python tests/vectors/report_errors.py

Relative error is normwise per array, max|got - want| / max|want|, and the
figure per file is the worst over every array it holds (outputs, final
states and all gradients). For the C backend the active kernel table is used
(set FASTRNN_ISA to pick another). This prints what tests/test_vectors.py
asserts, as one table.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import fastrnn
from fastrnn import functional as F

HERE = Path(__file__).resolve().parent
GRADS = ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")


def rel_err(got, want):
    scale = np.max(np.abs(want))
    diff = np.max(np.abs(np.asarray(got, np.float64) - want))
    return diff / scale if scale > 0 else diff


def worst_error(v, backend, dtype):
    cell = str(v["cell"])
    get = lambda k: v[k].astype(dtype) if k in v else None  # noqa: E731
    res = F.forward(cell, get("x"), get("weight_ih"), get("weight_hh"), get("bias_ih"),
                    get("bias_hh"), get("h0"), get("c0"), backend=backend, training=True)
    grads = F.backward(res, get("d_output"), get("d_h_n"), get("d_c_n"))
    pairs = [(res.output, v["output"]), (res.h_n, v["h_n"])]
    if "c_n" in v:
        pairs.append((res.c_n, v["c_n"]))
    pairs += [(getattr(grads, n), v[f"grad_{n}"]) for n in GRADS if f"grad_{n}" in v]
    return max(rel_err(g, w) for g, w in pairs)


def main() -> int:
    backends = fastrnn.available_backends()
    cols = [(b, d) for b in backends for d in (np.float32, np.float64)]
    print(f"C kernels: {fastrnn.cpu_isa()}")
    print(f"{'vector file':36s}" + "".join(f"{b + '/' + np.dtype(d).name[5:]:>12s}" for b, d in cols))
    worst = {c: 0.0 for c in cols}
    for path in sorted(HERE.glob("*.npz")):
        with np.load(path) as z:
            v = {k: z[k] for k in z.files}
        errs = [worst_error(v, b, d) for b, d in cols]
        for c, e in zip(cols, errs):
            worst[c] = max(worst[c], e)
        print(f"{path.stem:36s}" + "".join(f"{e:12.1e}" for e in errs))
    print(f"{'worst':36s}" + "".join(f"{worst[c]:12.1e}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
