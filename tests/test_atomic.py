"""fastrnn._atomic.write_atomically: the three kinds of content, permissions, links.

Its crash safety (SIGKILL mid-write, full disks, Ctrl-C, stale temporary
files, symlink chains and loops) is tested through its first user,
CharLM.save, in test_charlm.py and test_crash_safety.py; this file covers
what those do not: str and bytes content, text callables, bad arguments,
and a second user (the benchmark's JSON) writing through a link.
"""
from __future__ import annotations

import json
import os
import stat

import pytest

from fastrnn._atomic import write_atomically
from fastrnn.bench import report


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_bytes_str_and_callables_are_written(tmp_path):
    path = tmp_path / "f"
    assert write_atomically(path, b"\x00\xffbytes") == path
    assert path.read_bytes() == b"\x00\xffbytes"
    write_atomically(str(path), "héllo\n")  # a str is UTF-8 text unless told otherwise
    assert path.read_bytes() == "héllo\n".encode("utf-8")
    write_atomically(path, "héllo", encoding="latin-1")
    assert path.read_bytes() == b"h\xe9llo"
    write_atomically(path, lambda f: f.write(b"binary callable"))
    assert path.read_bytes() == b"binary callable"
    write_atomically(path, lambda f: f.write("text callable é"), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "text callable é"
    assert _names(tmp_path) == ["f"]


def test_a_failing_callable_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"ne")
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == ["f"]


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "f"
    with pytest.raises(TypeError, match="content must be bytes, str or a callable"):
        write_atomically(path, 42)
    with pytest.raises(TypeError, match="encoding must be None for bytes content"):
        write_atomically(path, b"x", encoding="utf-8")
    assert _names(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no POSIX permissions here")
def test_permissions_are_those_of_the_replaced_file_or_a_plain_open(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    new = tmp_path / "new"
    write_atomically(new, b"x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    private = tmp_path / "private"
    private.write_bytes(b"old")
    private.chmod(0o600)
    write_atomically(private, b"new")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_the_bench_json_is_written_through_a_symlink(tmp_path):
    results, links = tmp_path / "results", tmp_path / "links"
    results.mkdir()
    links.mkdir()
    (links / "bench.json").symlink_to(results / "run.json")  # dangling: the target is created
    report.write_json(links / "bench.json", {"results": [1, 2]})
    assert (links / "bench.json").is_symlink()
    assert json.loads((results / "run.json").read_text(encoding="utf-8")) == {"results": [1, 2]}
    assert _names(results) == ["run.json"] and _names(links) == ["bench.json"]
