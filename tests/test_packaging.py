"""The sdist and the wheel other projects depend on, built and checked offline.

One module-scoped build (about a minute on 2 cores): the sdist is built from
a copy of the working tree with typical strays planted in it (a CMake build
folder, Python and Numba caches, test scratch, an in-place extension, a new
csrc/ subfolder), unpacked into an empty folder and built into a wheel there
with pip, without build isolation and without an index, so it can only use
its own files. Then: what each archive holds, the wheel's metadata, the
extension's shared-library dependencies (the manylinux rule: libc, libm and
pthreads, nothing else), and a forward through the installed wheel in a
separate interpreter that sees neither the working tree nor an editable
install.

Deliberately not here: the cibuildwheel matrix (pyproject's
[tool.cibuildwheel] runs on CI runners of every platform), auditwheel repair,
and anything that needs the network (build isolation fetches the build
requirements). Needs the build requirements in this environment
(``pip install ".[test]"`` installs them), cmake and a C compiler; skips,
saying which, without them. ``-m "not slow"`` deselects it.
"""
from __future__ import annotations

import email.parser
import importlib.machinery
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Top-level folders of a working tree that are never copied for the sdist
# build: version control and local build/virtual-environment trees (large,
# and a fresh build/ stray is planted below anyway).
NOT_COPIED = {".git", "build", "dist", ".venv", "venv", "_skbuild", ".tox", ".nox"}

# Strays a working tree collects, planted into the copy the sdist is built
# from; none of them may reach the sdist. Path -> contents.
STRAYS = {
    # a CMake build folder: an unanchored include rule "csrc" matches the
    # csrc/ folders CMake makes under CMakeFiles/ and ships object files
    "build/editable/CMakeFiles/frnn.dir/csrc/gemm.c.o": "object file",
    "build/editable/CMakeCache.txt": "cache",
    "src/fastrnn/__pycache__/functional.cpython-311.pyc": "bytecode",
    "src/fastrnn/backends/__pycache__/numba_loops._dot-120.py311.nbi": "numba index",
    "src/fastrnn/backends/__pycache__/numba_loops._dot-120.py311.1.nbc": "numba code",
    "src/fastrnn/_core.cpython-311-x86_64-linux-gnu.so": "an in-place build of the extension",
    ".hypothesis/examples/0/1": "hypothesis database",
    "tests/.benchmarks/Linux-CPython-3.11-64bit/0001.json": "pytest-benchmark",
    "tests/.pytest_cache/v/cache/lastfailed": "{}",
    "tests/__pycache__/conftest.cpython-311-pytest-8.0.0.pyc": "bytecode",
    "fastrnn-charlm.frnn": "a checkpoint `fastrnn train` writes",
    "fastrnn-bench.json": "what `fastrnn bench` writes",
}
# ... and one that must: csrc/ may gain subfolders (include/, cells/, ...)
NEW_CSRC_SUBFOLDER_FILE = "csrc/planted_subfolder/deeper/planted_header.h"

# Path components and file suffixes that mark a build output or a cache.
FORBIDDEN_COMPONENTS = {"build", ".git", "__pycache__", ".hypothesis", ".pytest_cache",
                        ".benchmarks", "CMakeFiles"}
FORBIDDEN_SUFFIXES = {".pyc", ".pyo", ".nbi", ".nbc", ".so", ".pyd", ".o", ".obj", ".a"}

# The manylinux policies allow these (and a few more system libraries this
# extension has no business needing): no libgomp, libstdc++, libgcc_s.
ALLOWED_NEEDED = {"libc.so.6", "libm.so.6", "libpthread.so.0"}

BUILD_TIMEOUT_S = 900


def _missing_build_tools() -> list:
    missing = [name for name in ("scikit_build_core", "Cython")
               if importlib.util.find_spec(name) is None]
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if not any(shutil.which(cc) for cc in (os.environ.get("CC", "cc"), "cc", "gcc", "clang")):
        missing.append("a C compiler")
    return missing


def _run(cmd, *, cwd, env=None, what: str) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
                    f"--- last output ---\n{proc.stdout[-6000:]}")
    return proc.stdout


def _offline_env(**extra) -> dict:
    """This environment, with pip kept off every index and find-links folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PYTHONPATH")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _copy_working_tree(dest: Path) -> None:
    def ignore(folder, names):
        return [n for n in names if n in NOT_COPIED] if Path(folder) == PROJECT_ROOT else []
    shutil.copytree(PROJECT_ROOT, dest, ignore=ignore, symlinks=True)
    for rel, text in {**STRAYS, NEW_CSRC_SUBFOLDER_FILE: "/* planted by test_packaging */\n"}.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)


def _unpack(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.9.17 / 3.10.12 / 3.11.4: the archive is our own
            tar.extractall(dest)
    (root,) = dest.iterdir()
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist, the folder it was unpacked into, the wheel built there,
    the CMake build folder and the wheel installed into a target folder."""
    missing = _missing_build_tools()
    if missing:
        pytest.skip(f"building the package needs {', '.join(missing)} "
                    f"(pip install \".[test]\" installs the Python ones)")
    tmp = tmp_path_factory.mktemp("packaging")
    copy, sdist_dir, unpacked_parent = tmp / "working-tree", tmp / "sdist", tmp / "unpacked"
    wheel_dir, cmake_build_dir, target = tmp / "wheel", tmp / "cmake-build", tmp / "installed"
    for d in (sdist_dir, unpacked_parent, wheel_dir):
        d.mkdir()
    _copy_working_tree(copy)

    # the PEP 517 hook pip and `python -m build` call, without needing `build`
    _run([sys.executable, "-c",
          "import sys; from scikit_build_core.build import build_sdist; build_sdist(sys.argv[1])",
          sdist_dir], cwd=copy, env=_offline_env(), what="building the sdist")
    (sdist,) = sdist_dir.glob("*.tar.gz")
    source = _unpack(sdist, unpacked_parent)

    # caches in the unpacked tree, as after running the tests there: the
    # wheel must leave them out (wheel.exclude)
    for rel in ("src/fastrnn/__pycache__/layers.cpython-311.pyc",
                "src/fastrnn/backends/__pycache__/numba_loops._dot-120.py311.nbi"):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text("cache")

    _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation",
          "--no-index", "-w", wheel_dir, "-C", f"build-dir={cmake_build_dir}"],
         cwd=tmp, env=_offline_env(), what="building the wheel from the unpacked sdist")
    (wheel,) = wheel_dir.glob("*.whl")
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
          "--target", target, wheel],
         cwd=tmp, env=_offline_env(), what="installing the wheel into a target folder")
    return dict(sdist=sdist, source=source, wheel=wheel, cmake_build_dir=cmake_build_dir,
                target=target, tmp=tmp)


def _sdist_members(sdist: Path) -> dict:
    """Member path below the sdist's top folder -> size, files only."""
    with tarfile.open(sdist) as tar:
        members = {}
        for m in tar.getmembers():
            top, _, rel = m.name.partition("/")
            assert top == sdist.name[:-len(".tar.gz")], f"member {m.name!r} outside {top!r}"
            if m.isfile():
                members[rel] = m.size
        return members


def _wheel_names(wheel: Path) -> set:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if not n.endswith("/")}


def _forbidden(names) -> list:
    return sorted(n for n in names
                  if FORBIDDEN_COMPONENTS.intersection(PurePosixPath(n).parts)
                  or PurePosixPath(n).suffix in FORBIDDEN_SUFFIXES)


def _package_files(tree: Path, suffix: str) -> set:
    """Paths (relative to src/) of the package's files with ``suffix``, caches excluded."""
    src = tree / "src"
    return {p.relative_to(src).as_posix() for p in (src / "fastrnn").rglob(f"*{suffix}")
            if "__pycache__" not in p.parts}


def test_sdist_has_everything_a_build_from_it_needs(built):
    members = _sdist_members(built["sdist"])
    required = {"PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md",
                "src/fastrnn/_core.pyx", "src/fastrnn/_cfastrnn.pxd", "src/fastrnn/py.typed",
                "src/fastrnn/corpus/fastrnn.txt", NEW_CSRC_SUBFOLDER_FILE,
                "examples/echo_state.py"}  # tests/test_reservoir.py runs it
    if (PROJECT_ROOT / "LICENSE").exists():
        required.add("LICENSE")
    # every C source and header of the working tree, whatever folder it is in
    csrc = PROJECT_ROOT / "csrc"
    required |= {p.relative_to(PROJECT_ROOT).as_posix() for p in csrc.rglob("*")
                 if p.is_file() and p.suffix in (".c", ".h")}
    required |= {f"src/{rel}" for rel in _package_files(PROJECT_ROOT, ".py")}
    missing = sorted(required - members.keys())
    assert not missing, f"the sdist lacks {missing}"
    assert members["src/fastrnn/corpus/fastrnn.txt"] > 0


def test_sdist_leaves_out_build_outputs_caches_and_scratch(built):
    members = _sdist_members(built["sdist"])
    shipped_strays = sorted(set(STRAYS) & members.keys())
    assert not shipped_strays, f"strays of the working tree in the sdist: {shipped_strays}"
    assert not _forbidden(members), f"build outputs / caches in the sdist: {_forbidden(members)}"


def test_wheel_holds_the_package_and_nothing_else(built):
    names = _wheel_names(built["wheel"])
    extensions = [n for n in names if n.startswith("fastrnn/_core.")
                  and any(n.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)]
    assert len(extensions) == 1, f"expected one compiled fastrnn/_core, got {extensions}"
    assert extensions[0] == "fastrnn/_core" + importlib.machinery.EXTENSION_SUFFIXES[0], \
        f"{extensions[0]} is not for this interpreter"
    sources = _package_files(built["source"], ".py")
    assert "fastrnn/__init__.py" in sources and "fastrnn/backends/c.py" in sources
    missing = sorted(sources - names)
    assert not missing, f"the wheel lacks package modules {missing}"
    for required in ("fastrnn/py.typed", "fastrnn/_core.pyi", "fastrnn/corpus/fastrnn.txt"):
        assert required in names, f"the wheel lacks {required}"
    with zipfile.ZipFile(built["wheel"]) as zf:
        corpus = zf.read("fastrnn/corpus/fastrnn.txt")
    assert corpus == (built["source"] / "src/fastrnn/corpus/fastrnn.txt").read_bytes()
    outside = sorted(n for n in names if not n.startswith(("fastrnn/", "fastrnn-")))
    assert not outside, f"files outside the package in the wheel: {outside}"
    stray = sorted(n for n in names if n.startswith(("tests/", "csrc/")) or "conftest" in n
                   or n.endswith((".c", ".h")))
    stray += [n for n in _forbidden(names) if n not in extensions]
    assert not stray, f"tests, C sources or caches in the wheel: {stray}"


def _version_in_init(init_py: str) -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', init_py, re.MULTILINE)
    assert match, "fastrnn/__init__.py defines no __version__"
    return match.group(1)


def test_wheel_metadata_names_the_package_its_version_and_numpy(built):
    wheel = built["wheel"]
    with zipfile.ZipFile(wheel) as zf:
        info = {n.split("/", 1)[1]: zf.read(n).decode()
                for n in zf.namelist() if n.startswith("fastrnn-") and ".dist-info/" in n}
        init_version = _version_in_init(zf.read("fastrnn/__init__.py").decode())
    meta = email.parser.Parser().parsestr(info["METADATA"])
    assert meta["Name"] == "fastrnn"
    # three independent statements of the version must agree: the METADATA
    # (from pyproject), fastrnn.__version__ and the archives' names
    assert meta["Version"] == init_version, (meta["Version"], init_version)
    assert built["sdist"].name == f"fastrnn-{init_version}.tar.gz"
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.startswith(f"fastrnn-{init_version}-{tag}-{tag}-"), wheel.name
    requires = meta.get_all("Requires-Dist") or []
    assert any(re.fullmatch(r"numpy\s*>=\s*[\d.]+", r) for r in requires), \
        f"no unconditional numpy requirement in {requires}"
    assert meta["Requires-Python"] == ">=3.9"
    assert "Root-Is-Purelib: false" in info["WHEEL"]
    assert re.search(r"^fastrnn\s*=\s*fastrnn\.__main__:main$", info["entry_points.txt"],
                     re.MULTILINE), info["entry_points.txt"]


def _needed_libraries(path: Path) -> list:
    """DT_NEEDED entries of an ELF file, by readelf or pyelftools (skips without both)."""
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", str(path)], stdout=subprocess.PIPE,
                             check=True, text=True).stdout
        return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    if importlib.util.find_spec("elftools") is not None:
        from elftools.elf.elffile import ELFFile
        with open(path, "rb") as f:
            dynamic = ELFFile(f).get_section_by_name(".dynamic")
            return [t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    pytest.skip("neither readelf (binutils) nor pyelftools is installed to read the "
                "extension's dynamic section")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF / manylinux is Linux's")
def test_extension_needs_only_libc_libm_and_pthreads(built):
    extension = built["target"] / "fastrnn" / ("_core" + importlib.machinery.EXTENSION_SUFFIXES[0])
    needed = _needed_libraries(extension)
    assert "libc.so.6" in needed, f"not a dynamically linked glibc extension? NEEDED={needed}"
    assert set(needed) <= ALLOWED_NEEDED, \
        f"the extension needs {sorted(set(needed) - ALLOWED_NEEDED)} beyond libc/libm/pthreads"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux is Linux's")
@pytest.mark.skipif(importlib.util.find_spec("auditwheel") is None,
                    reason="auditwheel is not installed (pip install auditwheel)")
def test_auditwheel_finds_a_manylinux_tag(built):
    out = _run([sys.executable, "-m", "auditwheel", "show", built["wheel"]], cwd=built["tmp"],
               what="auditwheel show")
    # auditwheel wraps its lines; compare with the whitespace normalised
    verdict = " ".join(out.split())
    assert re.search(r'is consistent with the following platform tag: "manylinux_\d+_\d+_',
                     verdict), out


def test_wheel_built_from_the_unpacked_sdist_alone(built):
    """CMake configured the unpacked sdist, not the working tree."""
    cache = (built["cmake_build_dir"] / "CMakeCache.txt").read_text()
    home = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache, re.MULTILINE).group(1)
    assert Path(home).resolve() == built["source"].resolve()
    if not str(built["tmp"]).startswith(str(PROJECT_ROOT)):  # (a --basetemp inside the repo)
        assert str(PROJECT_ROOT) not in cache, "the build refers to the working tree"


# The walk-through of tests/test_walkthrough.py (a ReLU RNN with small integer
# weights, worked by hand: every value is exact in both dtypes) and an LSTM
# with zero weights and biases, where every gate is sigmoid(0) = 1/2 and the
# candidate tanh(0) = 0, so from c0 = 1: c_t = 2^-t and h_t = tanh(c_t) / 2.
INSTALLED_CHECK = textwrap.dedent("""
    import json
    import numpy as np
    import fastrnn, fastrnn._core
    from fastrnn import functional as F

    X = np.array([[0, 1, 0, 1, 0, 1], [0, 2, 1, 3, 0, 0], [1, 1, 2, 1, 0, 0]])
    W = np.array([[1, 1, 0, 1, 0, 1, 1, 0, 0],
                  [0, 0, 0, 0, 1, 1, 1, 1, 1],
                  [2, 1, 1, 1, 2, 3, 2, 0, 0]])
    report = dict(package=fastrnn.__file__, core=fastrnn._core.__file__,
                  backends=fastrnn.available_backends(), isa=fastrnn.cpu_isa(),
                  relu={}, lstm={})
    for dtype in (np.float32, np.float64):
        w = W.astype(dtype)
        res = F.forward("rnn_relu", X[:, None, :].astype(dtype), w[:, :6], w[:, 6:], backend="c")
        report["relu"][np.dtype(dtype).name] = res.output[:, 0].tolist()
        T, B, I, H = 3, 2, 2, 3
        res = F.forward("lstm", np.ones((T, B, I), dtype), np.zeros((4 * H, I), dtype),
                        np.zeros((4 * H, H), dtype), c0=np.ones((B, H), dtype), backend="c")
        report["lstm"][np.dtype(dtype).name] = dict(output=res.output.tolist(),
                                                    c_n=res.c_n.tolist())
    print(json.dumps(report))
""")


def test_installed_wheel_runs_a_forward_by_itself(built):
    import numpy

    target = built["target"].resolve()
    run_dir = built["tmp"] / "run"
    run_dir.mkdir()
    # -S: no site-packages processing, so neither an editable install's
    # import hook and .pth entries nor another installed fastrnn can answer
    # `import fastrnn`; the path is the installed wheel, then numpy's folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=os.pathsep.join([str(target), str(Path(numpy.__file__).parents[1])]),
               PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    out = _run([sys.executable, "-S", "-c", INSTALLED_CHECK], cwd=run_dir, env=env,
               what="a forward through the installed wheel")
    report = json.loads(out.strip().splitlines()[-1])

    assert Path(report["package"]).resolve() == target / "fastrnn" / "__init__.py"
    assert Path(report["core"]).parent.resolve() == target / "fastrnn"
    assert "c" in report["backends"], report["backends"]
    assert report["isa"] in ("baseline", "avx2", "avx512"), report["isa"]
    expected_relu = [[3, 1, 5], [8, 9, 12], [11, 29, 22]]
    for dtype, tolerance in (("float32", 1e-6), ("float64", 1e-14)):
        assert report["relu"][dtype] == expected_relu, (dtype, report["relu"][dtype])
        lstm = report["lstm"][dtype]
        for t, h_t in enumerate(lstm["output"], start=1):
            want = 0.5 * math.tanh(2.0 ** -t)
            for row in h_t:
                assert row == pytest.approx([want] * 3, rel=tolerance), (dtype, t, row)
        for row in lstm["c_n"]:
            assert row == pytest.approx([2.0 ** -3] * 3, rel=tolerance), (dtype, row)
