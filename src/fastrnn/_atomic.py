"""Atomic file writes: readers see the old file or the whole new one, never part.

One helper, :func:`write_atomically`, for every file fastrnn writes that a
crash must not damage: model files (fastrnn.charlm) and the benchmark's
results and chart (fastrnn.bench.report). The content goes to a temporary
file beside the target, is flushed and fsync'ed, then renamed over the
target with ``os.replace`` (and the directory fsync'ed where the platform
allows), so a write that fails or is interrupted, even by SIGKILL or a power
cut, leaves any previous file as it was.

Symbolic links are written through: when ``path`` is a link, the file it
points to is replaced (the temporary file goes in *that* file's directory,
so the rename stays on one file system) and the link stays a link.

Temporary files are named ``.<name>.<pid>.<random>.tmp``. One that fails or
is interrupted by an exception is removed at once. One left behind by a
process that was killed is removed by the next write to the same path, under
this rule: a write holds an exclusive advisory lock (flock) on its temporary
file from creating it until it has been renamed, and the kernel drops a lock
when its process dies however it dies; so a temporary file of this path that
can be locked belongs to no write in progress (in this or any other process
on the machine) and is deleted, and one that cannot be locked is left alone.
(A writer that finds its new file deleted between creating and locking it,
the one moment it is unlocked, starts another.) Where locks are not
available the rule degrades to leaving such files alone.

What it is not: a lock on the target (two concurrent writers of one path
both succeed, the last rename wins), or a way to append or edit a file in
place.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Optional, Union

try:  # advisory locks mark a write in progress (see the module docstring); POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there
    fcntl = None

__all__ = ["write_atomically"]

Content = Union[bytes, bytearray, memoryview, str, Callable[[IO[Any]], None]]


def write_atomically(path: Union[str, os.PathLike], content: Content, *,
                     encoding: Optional[str] = None) -> Path:
    """Replace the file at ``path`` with ``content``, atomically; returns ``Path(path)``.

    content: bytes-like (written as it is); a str (written as text in
        ``encoding``, UTF-8 by default); or a callable that is given the open
        temporary file and writes to it (a binary file when ``encoding`` is
        None, else a text file in that encoding), for content too large to
        build in memory first. Whatever the callable raises propagates, after
        the temporary file is removed.

    The new file gets the permissions of the file it replaces, or those a
    plain ``open()`` would give a new one (0666 less the umask), not
    ``mkstemp``'s 0600. OSError (ELOOP) for a symbolic link loop, before
    anything is written.
    """
    if isinstance(content, (str, bytes, bytearray, memoryview)):
        if isinstance(content, str):
            encoding = encoding or "utf-8"
        elif encoding is not None:
            raise TypeError(f"encoding must be None for bytes content, got {encoding!r}")
        data = content

        def write(f: IO[Any]) -> None:
            f.write(data)
    elif callable(content):
        write = content
    else:
        raise TypeError("content must be bytes, str or a callable taking the open file, "
                        f"got {type(content).__name__}")
    target = _resolved_target(Path(path))
    _remove_stale_temporaries(target)
    fd, tmp = _locked_temporary(target)
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 -> what a plain open() would give
            os.fchmod(fd, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())
        mode = {"mode": "wb"} if encoding is None else {"mode": "w", "encoding": encoding}
        with os.fdopen(fd, **mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, target)  # while still locked: never unlocked under its name
        if fcntl is None:
            os.replace(tmp, target)  # Windows cannot rename an open file
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(target.parent)
    return Path(path)


def _resolved_target(path: Path) -> Path:
    """The file a write to ``path`` replaces: ``path`` with every symbolic link
    resolved (so that a link is written through, not replaced)."""
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath stops at a loop
        raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
    return target


def _temporary_pattern(target: Path) -> "re.Pattern":
    # ours: .<name>.<pid>.<8 random>.tmp; before the pid was added: .<name>.<8 random>.tmp
    return re.compile(re.escape(f".{target.name}.") + r"(?:[0-9]+\.)?[a-z0-9_]{8}\.tmp")


def _locked_temporary(target: Path):
    """A new temporary file beside ``target``, open and exclusively locked:
    (fd, name)."""
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=target.parent)
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner holds it (microseconds)
        except OSError:  # a file system without locks: writes work, cleaning does not
            return fd, tmp
        try:
            mine, named = os.fstat(fd), os.stat(tmp)
            if (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino):
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)  # a concurrent write's cleaning deleted it before we locked it
    raise OSError(errno.EAGAIN, "could not create a temporary file that stays", str(target.parent))


def _remove_stale_temporaries(target: Path) -> None:
    """Delete the temporary files of earlier writes to ``target`` that were
    killed mid-write (the rule is in the module docstring). Best effort: a
    failure here never fails the write."""
    pattern = _temporary_pattern(target)
    try:
        entries = [e for e in os.scandir(target.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if fcntl is None:
                os.unlink(entry.path)  # fails while another process has it open
                continue
            fd = os.open(entry.path, os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a write in progress
            held, named = os.fstat(fd), os.lstat(entry.path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the lock


def _umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: set a common value for the instant
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
