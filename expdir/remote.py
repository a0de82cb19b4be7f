"""Experiments on object storage (``s3://``, ``gs://``, any URI pyarrow's file systems open).

Ray Tune writes its own state and the trials' checkpoints to the URI itself. The contract files
(``tunecast.json``, ``trials.csv``, ``best/`` ...) are written to a local working copy first,
exactly as for a local experiment, and copied up whole: each object is replaced in one PUT, and
a folder (``best/``) is cleared before its new files go up, so no reader sees half a file.
Reading one back (``tunecast report URI``, ``--resume URI``) copies the contract files down.

Credentials and endpoints come the standard way of each store (for S3: the AWS environment
variables or config files, ``AWS_ENDPOINT_URL`` for an S3-compatible server). pyarrow is
imported only here and only when a URI is used, so ``expdir`` stays importable without it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from expdir import contract as c

# what an experiment's contract consists of: copied up after the search writes it, down to read it
CONTRACT_FILES = (c.RUN_FILE, c.TRIALS_FILE, c.HISTORY_FILE, c.IMPORTANCE_FILE, c.REPORT_FILE, c.STUDY_FILE)
CONTRACT_DIRS = (c.BEST_DIR, c.ENSEMBLE_DIR, c.COMBINED_DIR, c.FORECAST_DIR)


class RemoteError(OSError):
    """The store could not be reached or refused an operation; the message is one line."""


def is_uri(text: str | Path | None) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local path)."""
    return isinstance(text, str) and "://" in text and not text.startswith("file://")


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def _open(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, TypeError) as exc:
        raise RemoteError(f"cannot open '{uri}': {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def working_copy(uri: str) -> Path:
    """The local folder that mirrors the experiment at ``uri`` (same name, so Ray and the
    report see the experiment's name): under the temp dir, one per URI."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "tunecast-remote" / digest / uri.rstrip("/").rsplit("/", 1)[-1]


def exists(uri: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = _open(uri)
    try:
        return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)
    except OSError as exc:
        raise RemoteError(f"cannot read '{uri}': {_reason(exc)}") from None


def check_writable(uri: str) -> None:
    """Write and delete a marker under ``uri``: a missing bucket, bad credentials or an endpoint
    that does not answer is one line before the search starts, not a failure at its end."""
    fs, path = _open(uri)
    marker = f"{path.rstrip('/')}/.tunecast-write-check"
    try:
        with fs.open_output_stream(marker) as out:
            out.write(b"ok")
        fs.delete_file(marker)
    except OSError as exc:
        raise RemoteError(f"cannot write to '{uri}': {_reason(exc)}") from None


def _copy(source: str, target: str, source_fs: Any, target_fs: Any) -> None:
    import pyarrow.fs as pafs

    kind = source_fs.get_file_info(source).type
    if kind == pafs.FileType.Directory and target_fs.get_file_info(target).type == pafs.FileType.Directory:
        target_fs.delete_dir_contents(target)  # no file of the folder's previous version stays
    if kind == pafs.FileType.Directory:
        target_fs.create_dir(target, recursive=True)
    if kind in (pafs.FileType.File, pafs.FileType.Directory):
        pafs.copy_files(source, target, source_filesystem=source_fs, destination_filesystem=target_fs)


def upload(local: Path, uri: str, names: tuple[str, ...] | None = None) -> None:
    """Copy the contract files of ``local`` (or just ``names``) up to ``uri``."""
    import pyarrow.fs as pafs

    fs, root = _open(uri)
    try:
        for name in names or (*CONTRACT_FILES, *CONTRACT_DIRS):
            _copy(str(local / name), f"{root.rstrip('/')}/{name}", pafs.LocalFileSystem(), fs)
    except OSError as exc:
        raise RemoteError(f"cannot write to '{uri}': {_reason(exc)}") from None


def download(uri: str, local: Path) -> Path:
    """Copy the contract files at ``uri`` into ``local``, replacing the ones there; a file the
    store lacks is left as it is (e.g. a study the driver wrote before it was killed); returns
    ``local``."""
    import shutil

    import pyarrow.fs as pafs

    fs, root = _open(uri)
    local.mkdir(parents=True, exist_ok=True)
    try:
        for name in (*CONTRACT_FILES, *CONTRACT_DIRS):
            source, target = f"{root.rstrip('/')}/{name}", local / name
            if fs.get_file_info(source).type == pafs.FileType.NotFound:
                continue
            if target.is_dir():
                shutil.rmtree(target)
            target.unlink(missing_ok=True)
            _copy(source, str(target), fs, pafs.LocalFileSystem())
    except OSError as exc:
        raise RemoteError(f"cannot read '{uri}': {_reason(exc)}") from None
    return local
