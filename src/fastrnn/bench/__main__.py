"""``python -m fastrnn.bench [options]``: the same as ``fastrnn bench [options]``."""
import sys

from .cli import main

sys.exit(main(prog="python -m fastrnn.bench"))
