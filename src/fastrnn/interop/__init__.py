"""Other frameworks' recurrent weights, to and from fastrnn's layers.

One module per framework (today :mod:`fastrnn.interop.keras`). Each converts
weights only - layouts, gate orders, biases - and checks that the other
framework's layer computes what the fastrnn layer does; none of them runs the
other framework's code or imports it before it is asked to (the frameworks are
optional dependencies, never fastrnn's).
"""
__all__ = ["keras"]
