"""Write fastrnn's embedded default training corpus: the project's own text.

    python tools/make_corpus.py

`fastrnn train` with no file trains a character-level model on
src/fastrnn/corpus/fastrnn.txt. The corpus must ship in the package and must
not be third-party text, so it is this project's own prose and code: the
README, the docs and the Python and C sources, each under a one-line
heading, in a fixed order. The output is deterministic (same files, same
bytes) and plain ASCII (other characters are dropped, so the vocabulary stays
small). It is a snapshot: re-run this when the sources change a lot.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "fastrnn" / "corpus" / "fastrnn.txt"
SOURCES = ["README.md", "docs/*.md", "src/fastrnn/*.py", "src/fastrnn/backends/*.py",
           "csrc/*.h", "csrc/*.c"]


def corpus_files() -> list:
    files = []
    for pattern in SOURCES:
        files.extend(sorted(ROOT.glob(pattern)))
    return files


def main() -> None:
    parts = []
    for path in corpus_files():
        text = path.read_text(encoding="utf-8")
        text = "".join(ch for ch in text if ch == "\n" or 32 <= ord(ch) < 127)
        parts.append(f"==> {path.relative_to(ROOT).as_posix()} <==\n{text.rstrip()}\n")
    OUT.write_text("\n".join(parts), encoding="ascii")
    print(f"wrote {OUT.relative_to(ROOT)}: {OUT.stat().st_size / 1024:.0f} KiB from {len(parts)} files")


if __name__ == "__main__":
    main()
