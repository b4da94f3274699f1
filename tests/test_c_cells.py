"""The C core's cells agree with fastrnn.cells, the package's vocabulary.

fastrnn.cells describes every cell once (its C code, gates, workspace, cell
state); the C core has its own registry (csrc/cells/registry.h) and enum
(csrc/include/fastrnn.h). These must not drift apart: a code that means
another cell in C, or a workspace width C sizes differently, would run the
wrong kernels on the right-looking arrays. _core.C_ENUMS is read from the
header at compile time and _core.cell_shape asks C's registry, so both
sides are compared here, not restated.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import cells

pytestmark = pytest.mark.skipif("c" not in fastrnn.available_backends(),
                                reason="no compiled core")

if "c" in fastrnn.available_backends():
    from fastrnn import _core


@pytest.mark.parametrize("name", cells.NAMES)
def test_every_cell_code_is_the_c_enum_of_its_name(name):
    assert cells.CELLS[name].code == _core.C_ENUMS["FRNN_CELL_" + name.upper()]


def test_the_c_core_has_no_cell_the_package_does_not_describe():
    c_codes = {v for k, v in _core.C_ENUMS.items() if k.startswith("FRNN_CELL_")}
    assert c_codes == {cells.CELLS[name].code for name in cells.NAMES}


@pytest.mark.parametrize("name", cells.NAMES)
def test_c_registry_shape_matches_the_descriptor(name):
    cell = cells.CELLS[name]
    assert _core.cell_shape(cell.code) == (cell.gates, cell.workspace, cell.has_cell_state)


# len(NAMES): the first code past the last cell
@pytest.mark.parametrize("code", [-1, len(cells.NAMES), 99, 2 ** 40])
def test_unknown_codes_have_no_shape(code):
    with pytest.raises(ValueError, match=f"no cell with code {code}"):
        _core.cell_shape(code)


def test_enum_groups_are_distinct_and_dense():
    """Each group of codes is 0..n-1, as the trainer's range checks assume."""
    for prefix in ("FRNN_CELL_", "FRNN_HEAD_", "FRNN_CLIP_", "FRNN_OPT_"):
        values = sorted(v for k, v in _core.C_ENUMS.items() if k.startswith(prefix))
        assert values == list(range(len(values))), prefix
    assert _core.C_ENUMS["FRNN_OPT_NONE"] == 0 and _core.C_ENUMS["FRNN_CLIP_NONE"] == 0


@pytest.mark.parametrize("name", cells.NAMES)
def test_a_cell_descriptor_runs_like_its_name(name):
    """_core's calls take a Cell as well as its name: the same kernels run."""
    cell = cells.CELLS[name]
    rng = np.random.default_rng(3)
    T, B, In, H = 3, 2, 4, 5
    GH, W = cell.gates * H, cell.workspace * H
    a = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    x, w_ih, w_hh, b_ih, b_hh, h0 = a(T, B, In), a(GH, In), a(GH, H), a(GH), a(GH), a(B, H)
    c0 = a(B, H) if cell.has_cell_state else None
    results = []
    for which in (name, cell):
        out, hn = np.zeros((T, B, H)), np.zeros((B, H))
        cn = np.zeros((B, H)) if cell.has_cell_state else None
        ws = np.zeros((T, B, W))
        _core.forward(which, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws)
        results.append((out, hn, cn, ws))
    for got, want in zip(results[0], results[1]):
        if want is not None:
            np.testing.assert_array_equal(got, want)
    assert np.abs(results[0][0]).sum() > 0  # it ran


@pytest.mark.parametrize("table,prefix", [("HEAD_CODES", "FRNN_HEAD_"),
                                          ("CLIP_CODES", "FRNN_CLIP_"),
                                          ("OPTIMIZER_CODES", "FRNN_OPT_")])
def test_trainer_codes_are_the_c_enums(table, prefix):
    """fastrnn.training's head / clip / optimizer codes, which TrainerConfig
    hands to the C trainer, are fastrnn.h's, name for name and none missing."""
    training = pytest.importorskip("fastrnn.training")
    codes = getattr(training, table, None)
    if codes is None:
        pytest.skip(f"fastrnn.training has no {table}")
    got = {prefix + ("NONE" if k is None else k.upper()): v for k, v in codes.items()}
    want = {k: v for k, v in _core.C_ENUMS.items() if k.startswith(prefix)}
    assert got == want
