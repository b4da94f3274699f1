"""Write tests/vectors/nn/*.npz: PyTorch float64 autograd references for fastrnn.nn.

Run from anywhere (needs torch; the tests only need NumPy):

    python tests/vectors/generate_nn_vectors.py

Every draw is seeded, so re-running reproduces the same arrays. One .npz per
case. Keys (float64 unless noted):

* Linear (kind "linear"): x (..., I), weight (O, I), bias (O,) [absent for
  bias=False], d_output (..., O); y = torch.nn.Linear's output, dx, dweight,
  dbias [absent for bias=False] from y.backward(d_output).
* Losses (kind "cross_entropy", "bce_with_logits", "mse"): input, target
  (int64 for cross_entropy), reduction (str), and where used ignore_index
  (int64), label_smoothing, pos_weight; loss (a 0-d array for "mean"/"sum",
  the per-entry array for "none") and grad = d(loss.sum())/d(input).

This script is not imported by the tests and is not a test itself: the
tests replay the files (tests/test_nn.py) and check the same functions
against finite differences independently of torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUT_DIR = Path(__file__).parent / "nn"


def save(name: str, **arrays) -> None:
    np.savez_compressed(OUT_DIR / f"{name}.npz", **arrays)


def linear_case(name: str, x_shape: tuple, in_features: int, out_features: int, bias: bool,
                seed: int) -> None:
    torch.manual_seed(seed)
    layer = torch.nn.Linear(in_features, out_features, bias=bias, dtype=torch.float64)
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    d_output = torch.randn(y.shape, dtype=torch.float64)
    y.backward(d_output)
    arrays = dict(kind=np.array("linear"), x=x.detach().numpy(),
                  weight=layer.weight.detach().numpy(), d_output=d_output.numpy(),
                  y=y.detach().numpy(), dx=x.grad.numpy(), dweight=layer.weight.grad.numpy())
    if bias:
        arrays.update(bias=layer.bias.detach().numpy(), dbias=layer.bias.grad.numpy())
    save(name, **arrays)


def _loss_arrays(loss: torch.Tensor, z: torch.Tensor, reduction: str) -> dict:
    loss.sum().backward()  # "none": the gradient of the sum, as fastrnn.nn returns
    return dict(reduction=np.array(reduction), loss=loss.detach().numpy(), grad=z.grad.numpy())


def cross_entropy_case(name: str, logits: np.ndarray, target: np.ndarray, reduction: str, *,
                       ignore_index: int = -100, label_smoothing: float = 0.0) -> None:
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(z, torch.tensor(target, dtype=torch.int64), ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)
    save(name, kind=np.array("cross_entropy"), input=logits, target=target.astype(np.int64),
         ignore_index=np.array(ignore_index, np.int64),
         label_smoothing=np.array(label_smoothing), **_loss_arrays(loss, z, reduction))


def bce_case(name: str, logits: np.ndarray, target: np.ndarray, reduction: str,
             pos_weight: np.ndarray | None = None) -> None:
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(
        z, torch.tensor(target), reduction=reduction,
        pos_weight=None if pos_weight is None else torch.tensor(pos_weight))
    extra = {} if pos_weight is None else {"pos_weight": pos_weight}
    save(name, kind=np.array("bce_with_logits"), input=logits, target=target,
         **extra, **_loss_arrays(loss, z, reduction))


def mse_case(name: str, x: np.ndarray, target: np.ndarray, reduction: str) -> None:
    z = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = F.mse_loss(z, torch.tensor(target), reduction=reduction)
    save(name, kind=np.array("mse"), input=x, target=target, **_loss_arrays(loss, z, reduction))


def main() -> None:
    OUT_DIR.mkdir(exist_ok=True)
    for old in OUT_DIR.glob("*.npz"):
        old.unlink()
    # Linear: 1-, 2- and 3-D inputs, bias on and off, the 1x1 corner
    linear_case("linear_1d_I3_O4", (3,), 3, 4, True, 1)
    linear_case("linear_1d_I5_O2_nobias", (5,), 5, 2, False, 2)
    linear_case("linear_2d_B5_I3_O4", (5, 3), 3, 4, True, 3)
    linear_case("linear_2d_B4_I6_O3_nobias", (4, 6), 6, 3, False, 4)
    linear_case("linear_2d_B1_I1_O1", (1, 1), 1, 1, True, 5)
    linear_case("linear_3d_T4_B2_I5_O3", (4, 2, 5), 5, 3, True, 6)
    linear_case("linear_3d_T3_B2_I4_O6_nobias", (3, 2, 4), 4, 6, False, 7)

    rng = np.random.default_rng(2026)
    reductions = ("mean", "sum", "none")
    # cross_entropy
    logits = rng.standard_normal((6, 5)) * 2
    with_ignored = np.array([1, -100, 4, 0, -100, 2])
    all_ignored = np.full(6, -100)
    extreme = rng.choice([-100.0, 100.0], (4, 3))
    extreme_target = np.array([0, 1, 2, 1])
    unbatched = rng.standard_normal(7)
    spatial = rng.standard_normal((2, 4, 3, 2))
    spatial_target = rng.integers(0, 4, (2, 3, 2))
    spatial_target[0, 1, 0] = -100
    for r in reductions:
        cross_entropy_case(f"ce_N6_C5_ignored_{r}", logits, with_ignored, r)
        cross_entropy_case(f"ce_N6_C5_all_ignored_{r}", logits, all_ignored, r)
        cross_entropy_case(f"ce_N4_C3_extreme_{r}", extreme, extreme_target, r)
        cross_entropy_case(f"ce_unbatched_C7_{r}", unbatched, np.array(3), r)
        cross_entropy_case(f"ce_N2_C4_d3x2_{r}", spatial, spatial_target, r)
        cross_entropy_case(f"ce_N6_C5_smoothing_{r}", logits, with_ignored, r,
                           label_smoothing=0.1)
    cross_entropy_case("ce_N6_C5_ignore2_mean", logits, np.array([2, 2, 4, 0, 1, 2]), "mean",
                       ignore_index=2)
    cross_entropy_case("ce_N6_C5_ignore2_smoothing_mean", logits, np.array([2, 2, 4, 0, 1, 2]),
                       "mean", ignore_index=2, label_smoothing=0.25)
    # binary_cross_entropy_with_logits
    z = rng.standard_normal((5, 4)) * 3
    y = rng.uniform(0, 1, (5, 4))
    y_binary = rng.integers(0, 2, (5, 4)).astype(np.float64)
    pos_weight = rng.uniform(0.2, 4.0, 4)
    z_extreme = rng.choice([-100.0, 100.0], (3, 4))
    y_extreme = rng.integers(0, 2, (3, 4)).astype(np.float64)
    for r in reductions:
        bce_case(f"bce_N5_C4_{r}", z, y, r)
        bce_case(f"bce_N5_C4_pos_weight_{r}", z, y_binary, r, pos_weight)
        bce_case(f"bce_N3_C4_extreme_{r}", z_extreme, y_extreme, r)
        bce_case(f"bce_N3_C4_extreme_pos_weight_{r}", z_extreme, y_extreme, r, pos_weight)
    bce_case("bce_3d_pos_weight_full_mean", rng.standard_normal((2, 3, 4)),
             rng.uniform(0, 1, (2, 3, 4)), "mean", rng.uniform(0.5, 2.0, (3, 4)))
    # mse_loss
    x = rng.standard_normal((4, 3, 2))
    t = rng.standard_normal((4, 3, 2))
    for r in reductions:
        mse_case(f"mse_4x3x2_{r}", x, t, r)
    mse_case("mse_1d_mean", rng.standard_normal(9), rng.standard_normal(9), "mean")


if __name__ == "__main__":
    main()
