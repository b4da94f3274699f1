"""How the tests run the scripts in examples/: as a user runs them.

Shared by tests/test_examples_a.py, test_examples_b.py, test_reservoir.py
(echo_state) and whatever example test comes next: load an example as a
module (to test its helpers), run it in a subprocess and read the
``name: value`` figure it must print last, give it ``--plot`` where
matplotlib is installed and check the PNG, and run it with matplotlib
hidden. What it is not: a place for assertions about any one example.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_example(name: str):
    """examples/NAME.py imported as a module (its main() not run)."""
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(name: str, figure: str, *args, timeout: float = 600):
    """Run examples/NAME.py with ``args``; returns its stdout lines and the
    value of the ``figure: value`` line it must print last."""
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    match = re.fullmatch(rf"{figure}: (\d+(?:\.\d*)?(?:e-?\d+)?)", lines[-1])
    assert match, f"the last line is not '{figure}: <value>': {lines[-1]!r}"
    return lines, float(match.group(1))


def plot_args(tmp_path) -> tuple:
    """(["--plot", FILE] where matplotlib is installed, else [], FILE)."""
    plot = pathlib.Path(tmp_path) / "curve.png"
    return (("--plot", str(plot)) if importlib.util.find_spec("matplotlib") else ()), plot


def assert_png_if_plotted(args, plot) -> None:
    if args:
        assert plot.read_bytes()[:8] == PNG_SIGNATURE, f"{plot} is not a PNG"


def run_without_matplotlib(name: str, *args, timeout: float = 120):
    """Run examples/NAME.py with ``args`` where ``import matplotlib`` fails
    (None in sys.modules raises ImportError, as if it were not installed)."""
    script = str(EXAMPLES / f"{name}.py")
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; "
            f"sys.argv = {[script, *map(str, args)]!r}; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


def assert_plot_refused(done, plot) -> None:
    """--plot without matplotlib: exit 2 before any work, one line naming the extra."""
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(
        "--plot needs matplotlib: pip install 'fastrnn[plot]'"), done.stderr
    assert not pathlib.Path(plot).exists()
