"""Write fastrnn's embedded default training corpus: the project's own text.

    python tools/make_corpus.py            # rewrite src/fastrnn/corpus/fastrnn.txt
    python tools/make_corpus.py --check    # exit 1 if the file is not what it would write

`fastrnn train` with no file trains a character-level model on
src/fastrnn/corpus/fastrnn.txt (read by fastrnn.charlm.default_corpus). The
corpus ships in the package and must not be third-party text, so it is this
project's own prose and code: the README, the docs and the Python and C
sources, each under a one-line heading, in a fixed order. Left out:
bench/minchar.py, whose NumPy baseline is a port of min-char-rnn's training
loop (someone else's code), and generated or binary files.

The output is deterministic (same files, same bytes) and plain ASCII (other
characters are dropped, so the vocabulary stays small, about 95 characters),
and at most MAX_CHARS long: files are taken in order, and the one that
crosses the limit is cut at a line boundary (the rest left out), so the
corpus stays in the 100-300 KB range as the project grows. It is a snapshot:
re-run this when the sources change a lot.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "fastrnn" / "corpus" / "fastrnn.txt"
SOURCES = ["README.md", "docs/*.md", "src/fastrnn/*.py", "src/fastrnn/backends/*.py",
           "src/fastrnn/bench/*.py", "csrc/**/*.h", "csrc/**/*.c"]
EXCLUDE = {"src/fastrnn/bench/minchar.py"}  # ports third-party code (min-char-rnn's loop)
MAX_CHARS = 300_000


def corpus_files() -> list:
    files = []
    for pattern in SOURCES:
        files.extend(p for p in sorted(ROOT.glob(pattern))
                     if p.relative_to(ROOT).as_posix() not in EXCLUDE)
    return files


def build() -> tuple:
    """(corpus text, names of the files in it, names left out for size)."""
    parts, used, left_out, size = [], [], [], 0
    for path in corpus_files():
        name = path.relative_to(ROOT).as_posix()
        if size >= MAX_CHARS:
            left_out.append(name)
            continue
        text = path.read_text(encoding="utf-8")
        text = "".join(ch for ch in text if ch == "\n" or 32 <= ord(ch) < 127)
        part = f"==> {name} <==\n{text.rstrip()}\n"
        room = MAX_CHARS - size - (1 if parts else 0)  # parts are joined by blank lines
        if len(part) > room:
            part = part[:part.rfind("\n", 0, room) + 1]  # whole lines only
            if part.count("\n") < 2:  # not even one line after the heading fits
                left_out.append(name)
                size = MAX_CHARS
                continue
            size = MAX_CHARS
        else:
            size += len(part) + (1 if parts else 0)
        parts.append(part)
        used.append(name)
    return "\n".join(parts), used, left_out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only compare with the file on disk (exit 1 if it differs)")
    args = ap.parse_args(argv)
    text, used, left_out = build()
    assert text.isascii() and len(text) <= MAX_CHARS
    if args.check:
        current = OUT.read_text(encoding="ascii") if OUT.exists() else None
        print(f"{OUT.relative_to(ROOT)} is {'up to date' if current == text else 'OUT OF DATE'}")
        return 0 if current == text else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(text.encode("ascii"))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(text) / 1024:.0f} KiB from {len(used)} files"
          + (f" (left out for size: {', '.join(left_out)})" if left_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
