# Type stubs for the compiled core (see _core.pyx). Arrays are float32 or
# float64, C-contiguous, all of one dtype; fastrnn.functional validates them.
from typing import Optional

import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.floating]

def select_isa(request: Optional[str] = ...) -> str: ...
def active_isa() -> str: ...
def forward(cell: str, x: _F, w_ih: _F, w_hh: _F, b_ih: _F, b_hh: _F, h0: _F,
            c0: Optional[_F], out: _F, hn: _F, cn: Optional[_F], ws: Optional[_F]) -> None: ...
def backward(cell: str, x: _F, w_ih: _F, w_hh: _F, b_ih: _F, b_hh: _F, h0: _F,
             c0: Optional[_F], out: _F, ws: Optional[_F], d_out: _F, d_hn: _F,
             d_cn: Optional[_F], dx: _F, dw_ih: _F, dw_hh: _F, db_ih: _F, db_hh: _F,
             dh0: _F, dc0: Optional[_F]) -> None: ...
def step(cell: str, x: _F, w_ih: _F, w_hh: _F, b_ih: _F, b_hh: _F, h: _F,
         c: Optional[_F], h_out: _F, c_out: Optional[_F]) -> None: ...
def _activation(name: str, x: _F, y: _F) -> None: ...
