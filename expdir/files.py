"""Writing the experiment directory safely, and small helpers both sides share.

Every contract file is written atomically: a temporary file (or folder) beside the target, then
a rename, so a crash or a full disk never leaves half a file where a whole one was.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0644) through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN/inf are refused: JSON has none)."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it once the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with its usage errors as one line ``error: ...`` on stderr (exit code 2), like
    every other user error of the ``tunecast`` commands."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"error: {self.prog}: {text} (see `{self.prog} --help`)\n")


LOCK_FILE = ".tunecast.lock"


class ExperimentInUse(RuntimeError):
    """Another process holds the experiment's lock (a search or a resume is writing it)."""


@contextlib.contextmanager
def experiment_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the experiment ``folder`` for the block: one writer at a time.

    ``flock`` on ``<folder>/.tunecast.lock``, taken without waiting. The OS releases it when the
    holder exits in any way (a killed process leaves no stale lock); on NFS, Linux maps it onto
    a POSIX lock that every client sees. The file keeps the holder's pid and host, for the error.

    Raises:
        ExperimentInUse: another process holds it; nothing was written.
    """
    import fcntl  # POSIX only: imported here so that the report reads experiments anywhere

    path = folder / LOCK_FILE
    # read-only: flock needs none, and a file open for writing would block a read-only remount
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise ExperimentInUse(
                f"experiment '{folder}' is in use by {holder}: one search or resume at a time; wait "
                "for it to end, or use another --name"
            ) from None
        path.write_text(f"tunecast pid {os.getpid()} on {platform.node()}\n", encoding="utf-8")
        yield
    finally:
        os.close(fd)  # releases the lock


def one_line(error: BaseException | str | None, limit: int = 500) -> str:
    """The last meaningful line of an error (Ray wraps a trial's exception in a traceback)."""
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~")) and ":" in line:
            return line[:limit]
    return (lines[-1] if lines else type(error).__name__)[:limit]


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Python's version and each installed distribution's ("not installed" when absent)."""
    out = {"python": platform.python_version()}
    for dist in packages:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
