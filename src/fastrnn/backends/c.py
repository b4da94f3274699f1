"""The compiled backend: fastrnn._core (C kernels, GIL released).

The contract's functions map one to one onto _core's; this module only picks
the GEMM ISA once, at import, from FASTRNN_ISA (``auto`` by default,
``baseline`` forces the portable kernels, which the tests use).
"""
from __future__ import annotations

import os

from .. import _core

ISA = _core.select_isa(os.environ.get("FASTRNN_ISA", "auto"))

forward = _core.forward
backward = _core.backward
step = _core.step
active_isa = _core.active_isa
select_isa = _core.select_isa
