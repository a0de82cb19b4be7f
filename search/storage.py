"""Storage faults while a search runs: a full disk, a read-only or vanished mount.

A failed write can leave Ray's state files cut short, or whole but of different moments, and
trials' ``error.pkl`` empty; a resume then fails or starts from nothing. Three parts, none of
which changes what Ray writes:

- :class:`StorageWatch`, beside ``Tuner.fit``: snapshots Ray's state files into
  ``.tunecast-state/`` whenever all parse and none changed since the last look, and stops the
  search as Ctrl-C does when the storage vanishes, turns read-only or runs low.
- :func:`fault_of`: what surfaces in the driver becomes a :class:`StorageFault` (exit 74).
- :func:`repair`, before ``Tuner.restore``: Ray's state goes back to the last snapshot and
  unreadable ``error.pkl`` files go, so trials the fault hit resume from their checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import pickletools
import re
import shutil
import signal
import threading
from pathlib import Path

from tunecast.expdir.contract import STUDY_FILE
from tunecast.expdir.files import LOCK_FILE
from tunecast.model.checkpoint import WEIGHTS_FILE

BACKUP_DIR = ".tunecast-state"
FAULT_MARKER = ".tunecast-storage-fault"
STATE_PATTERNS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl", "tuner.pkl")
STORAGE_ERRNOS = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.ENODEV,
}
# pyarrow (Ray's file copies) and Ray's wrapped trial errors carry the errno only in the text
_ERRNO_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)
_FAULT_TEXT = ("No space left on device", "Read-only file system", "Disk quota exceeded", "Stale file handle")
MIN_FREE_BYTES = 256 * 1024
# what Ray raises reading back a file it wrote on failing storage
READ_BACK_ERRORS = (OSError, EOFError, ValueError, pickle.UnpicklingError)


def _tune_error() -> type[Exception]:
    """Ray Tune's wrapper of an error its controller hit (e.g. the Optuna searcher writing its
    journal on a read-only disk): the cause is only in its text."""
    from ray.tune.error import TuneError

    return TuneError


def driver_errors() -> tuple[type[BaseException], ...]:
    """What ``Tuner.fit`` raises in the driver when the storage fails under it."""
    return (*READ_BACK_ERRORS, _tune_error())
EXIT_CODE = 74  # EX_IOERR (sysexits.h): the storage failed; the experiment can be resumed


class StorageFault(Exception):
    """The experiment's storage failed mid-search. The message is the CLI's one line."""


def storage_error(error: BaseException | str | None) -> str | None:
    """The reason if ``error`` (an exception, its causes, or a trial's error text) is a storage
    fault, else None."""
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.errno in STORAGE_ERRNOS:
            return os.strerror(item.errno)
        text = str(item)
        for match in _ERRNO_TEXT.finditer(text):
            if int(match.group(1)) in STORAGE_ERRNOS:
                return os.strerror(int(match.group(1)))
        for phrase in _FAULT_TEXT:
            if phrase in text:
                return phrase
        if isinstance(item, BaseException):
            stack += [item.__cause__, item.__context__, getattr(item, "cause", None)]
    return None


def parses(file: Path) -> bool:
    """True if ``file`` is whole: valid JSON, or a pickle stream that reaches STOP (Ray's
    ``search_gen_state-*.json`` is a pickle despite its name)."""
    try:
        data = file.read_bytes()
    except OSError:
        return False
    if not data.startswith(b"\x80"):
        try:
            json.loads(data)
            return True
        except ValueError:
            return False
    # no public Ray check of its files; pickle.load would import, construct, and reject a whole error.pkl
    try:
        return any(op.name == "STOP" for op, _, _ in pickletools.genops(io.BytesIO(data)))
    except (ValueError, EOFError):
        return False


def _state_files(folder: Path) -> list[Path]:
    return sorted(f for pattern in STATE_PATTERNS for f in folder.glob(pattern) if f.is_file())


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


Stamps = dict[str, tuple[int, int]]


def _stamps(files: list[Path]) -> Stamps:
    return {f.name: (f.stat().st_size, f.stat().st_mtime_ns) for f in files}


def backup(folder: Path, seen: dict[str, Stamps], settled: bool = False) -> None:
    """Snapshot Ray's state files into ``folder/.tunecast-state/`` when every one parses and none
    changed since the last look (``seen``: the stamps between calls; ``settled``: no need to
    wait). Built aside and swapped in, so a failed copy leaves the previous snapshot."""
    try:
        files = _state_files(folder)
        stamps = _stamps(files)
        stable = bool(files) and (settled or stamps == seen.get("last")) and stamps != seen.get("saved")
        seen["last"] = stamps
        if not stable or not all(parses(f) for f in files):
            return
        store, tmp, old = (folder / BACKUP_DIR, folder / f"{BACKUP_DIR}.tmp", folder / f"{BACKUP_DIR}.old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for file in files:
            shutil.copyfile(file, tmp / file.name)
        if _stamps(files) != stamps:  # Ray wrote meanwhile: try again next time
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(old, ignore_errors=True)
        if store.exists():
            store.rename(old)
        tmp.rename(store)
        shutil.rmtree(old, ignore_errors=True)
        seen["saved"] = stamps
    except OSError:
        shutil.rmtree(folder / f"{BACKUP_DIR}.tmp", ignore_errors=True)


def mark_fault(folder: Path) -> None:
    """Leave a marker that the storage failed: the next resume starts from the last snapshot."""
    with contextlib.suppress(OSError):
        (folder / FAULT_MARKER).touch()


def repair(folder: Path) -> bool:
    """Before a resume: if the last run hit a storage fault (its marker) or a state file does not
    parse, put Ray's state back to the last whole snapshot (files Ray wrote after it are set
    aside as ``*.damaged``), and remove trial ``error.pkl`` files that cannot be read.
    True if the fault hit trials: those are resumed, not left failed."""
    snapshot = next((d for d in (folder / BACKUP_DIR, folder / f"{BACKUP_DIR}.old") if d.is_dir()), None)
    faulted = (folder / FAULT_MARKER).exists()
    live = _state_files(folder)
    if snapshot is not None and (faulted or not all(parses(f) for f in live)):
        keep = {f.name for f in snapshot.iterdir() if parses(f)}
        for file in live:
            if file.name not in keep:
                file.replace(file.with_name(file.name + ".damaged"))
        for name in keep:
            _copy_atomic(snapshot / name, folder / name)
        rewind_journal(folder)
    else:
        for file in live:
            if not parses(file):
                file.replace(file.with_name(file.name + ".damaged"))
    hit = faulted
    repair_journal(folder / STUDY_FILE)
    for error_file in folder.glob("*/error.pkl"):
        if not parses(error_file):
            error_file.unlink()
            hit = True
    (folder / FAULT_MARKER).unlink(missing_ok=True)
    return restore_checkpoints(folder) > 0 or hit


def restore_checkpoints(folder: Path) -> int:
    """Give every trial the checkpoint Ray's newest experiment state names, when Ray deleted it.

    Ray deletes a replaced checkpoint at once but names the new one only at its next snapshot;
    a search stopped in between fails that trial on resume. Checkpoints are saved only on
    improvement, so the newest one left takes the missing name. Returns how many moved;
    anything unexpected leaves the folder alone."""
    states = sorted(folder.glob("experiment_state-*.json"))  # Ray resumes from the newest name
    try:
        from ray.tune.experiment.trial import Trial

        with states[-1].open() as fh:
            trial_data = json.load(fh)["trial_data"]
        named = []
        for json_state, run_metadata in trial_data:
            trial = Trial.from_json_state(json_state, stub=True)
            trial.restore_run_metadata(run_metadata)
            if trial.checkpoint is not None and trial.storage is not None and trial.storage.trial_dir_name:
                named.append(folder / trial.storage.trial_dir_name / Path(trial.checkpoint.path).name)
    except Exception:  # no state, another Ray: nothing to put back
        return 0
    moved = 0
    for wanted in named:
        if wanted.exists():
            continue
        left = sorted(f for f in wanted.parent.glob("checkpoint_*") if (f / WEIGHTS_FILE).is_file())
        if left:
            left[-1].rename(wanted)
            moved += 1
    return moved


def rewind_journal(folder: Path) -> None:
    """After Ray's state went back to a snapshot: cut the Optuna journal back to the length the
    snapshot's searcher recorded (``EpochOptunaSearch.save``); later records contradict the
    restored state and Optuna refuses the replay. Anything unexpected leaves it as it is."""
    journal = folder / STUDY_FILE
    states = sorted(folder.glob("searcher-state-*.pkl"))
    if not journal.is_file() or not states:
        return
    try:
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch()
        searcher.restore(str(states[-1]))
        end = int(vars(searcher)["journal_bytes"])  # set by EpochOptunaSearch.save
    except Exception:  # another searcher, a state saved before the length was: nothing to rewind by
        return
    if 0 < end < journal.stat().st_size:
        with journal.open("r+b") as fh:
            fh.truncate(end)


def repair_journal(file: Path) -> int:
    """Make the Optuna journal replayable after a failed write: each line is split into its
    records (each starts with ``{"op_code"``) and the whole ones are kept, one per line.
    Returns how many fragments were dropped (0: the file was left untouched)."""
    try:
        raw = file.read_bytes()
    except OSError:
        return 0
    kept, dropped = [], 0
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            json.loads(line)
            kept.append(line)
            continue
        except ValueError:
            pass
        for part in re.split(rb'(?=\{"op_code")', line):
            try:
                json.loads(part)
                kept.append(part)
            except ValueError:
                dropped += bool(part.strip())
    if (dropped == 0 and raw.endswith(b"\n")) or not raw:
        return 0
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_bytes(b"".join(line + b"\n" for line in kept))
    os.replace(tmp, file)
    return dropped


def problem(folder: Path, lock: tuple[int, int] | None) -> str | None:
    """What is wrong with the storage under ``folder`` now, or None. ``lock`` is the (device,
    inode) of the lock file this run holds: another one, or none, means the mount went away."""
    try:
        if lock is not None:
            stat = os.stat(folder / LOCK_FILE)
            if (stat.st_dev, stat.st_ino) != lock:
                return f"the storage under '{folder.parent}' was replaced (unmounted?)"
        fs = os.statvfs(folder)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return f"the storage under '{folder.parent}' vanished (unmounted?)"
        return exc.strerror or str(exc)
    if fs.f_flag & os.ST_RDONLY:
        return "Read-only file system"
    if fs.f_bavail * fs.f_frsize < MIN_FREE_BYTES:
        return f"No space left on device ({fs.f_bavail * fs.f_frsize // 1024} KB free)"
    return None


def lock_identity(folder: Path) -> tuple[int, int]:
    stat = os.stat(folder / LOCK_FILE)
    return stat.st_dev, stat.st_ino


class StorageWatch:
    """Beside ``Tuner.fit``: keep the last good copy of Ray's state, and stop the search (as
    Ctrl-C does) when the storage fails. ``fault`` holds the reason afterwards."""

    def __init__(self, folder: Path, period_s: float = 0.5, active: bool = True) -> None:
        self.folder = folder
        self.active = active  # off for object storage: nothing local to watch
        self.period_s = period_s
        self.fault: str | None = None
        self._lock = lock_identity(folder)
        self._stop = threading.Event()
        self._seen: dict[str, Stamps] = {}
        self._thread = threading.Thread(target=self._run, name="tunecast-storage-watch", daemon=True)

    def __enter__(self) -> StorageWatch:
        if self.active:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        self._stop.set()
        self._thread.join()
        if self.fault is None:  # Tune has saved its final state: snapshot it
            backup(self.folder, self._seen, settled=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            reason = problem(self.folder, self._lock)
            if reason is not None:
                self.fault = reason
                mark_fault(self.folder)
                os.kill(os.getpid(), signal.SIGINT)  # Tune's handler: stop, save, return
                return
            backup(self.folder, self._seen)


def fault_of(exc: BaseException, folder: Path, lock: tuple[int, int] | None = None) -> StorageFault | None:
    """A :class:`StorageFault` if ``exc`` came from the storage: a storage errno, or Ray failing
    to read back what it wrote (an empty or cut-short file) while the storage is unwell."""
    reason = storage_error(exc)
    if reason is None and isinstance(exc, driver_errors()):
        reason = problem(folder, lock)
        if reason is None and isinstance(exc, EOFError | json.JSONDecodeError | pickle.UnpicklingError):
            reason = f"a file Ray wrote is cut short ({type(exc).__name__})"
    return None if reason is None else fault(folder, reason)


def fault(folder: Path, reason: str) -> StorageFault:
    mark_fault(folder)
    return StorageFault(
        f"the storage of '{folder}' failed during the search: {reason}; once it is fixed (space "
        f"freed, mounted read-write), continue with: tunecast search --resume {folder}"
    )
