"""Experiments on object storage (``s3://``, ``gs://``, any URI pyarrow's file systems open).

Ray Tune writes its state and checkpoints to the URI itself. The contract files are written to a
local working copy and copied up whole (one PUT per object, a folder cleared first), so no reader
sees half a file; reading an experiment back copies them down. Credentials come each store's
standard way (S3: the AWS variables or config, ``AWS_ENDPOINT_URL``). pyarrow is imported only
when a URI is used, so ``expdir`` stays importable without it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from tunecast.expdir import contract as c

# what an experiment's contract consists of: copied up after the search writes it, down to read it
CONTRACT_FILES = (c.RUN_FILE, c.TRIALS_FILE, c.HISTORY_FILE, c.IMPORTANCE_FILE, c.REPORT_FILE, c.STUDY_FILE,
                  c.DATA_FILE)
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
