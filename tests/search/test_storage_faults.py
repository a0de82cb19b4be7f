"""Storage that fails under a running search: a full disk, a read-only remount, a vanished mount.

Each case runs the real CLI in a subprocess with its storage on a real mount the test makes
(a small tmpfs, or a bind mount), breaks the mount once the first trial has checkpointed, and
checks what a user sees: one ``error:`` line naming the fault, exit 74, and after the fault is
fixed a ``--resume`` that ends with exactly N trials, those finished before the fault kept.
Mounting needs root (CI runs as root); elsewhere these tests skip.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import SMALL_SPACE, TRIALS_ONLY_ARGS
from tests.tables import read_table

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

TRIALS = 4


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    try:
        sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tunecast-test", str(where))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def search(storage: Path, tmp_path: Path) -> subprocess.Popen:
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"space": SMALL_SPACE}))
    cmd = [
        sys.executable, "-m", "tunecast", "search", "--data", "sine", "--trials", str(TRIALS), "--config",
        str(config), "--max-epochs", "25", "--scheduler", "fifo", "--max-concurrent", "1",
        "--storage", str(storage), "--name", "exp", "--quiet", "--no-report", *TRIALS_ONLY_ARGS,
    ]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(exp: Path, driver: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(exp.glob("train_trial_*/checkpoint_*/model.pt")):
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "no trial checkpointed in time"
        time.sleep(0.2)


def fill(folder: Path) -> Path:
    """Write a ballast file until the file system is full."""
    ballast = folder / "ballast"
    with ballast.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def read_only(disk: Path, timeout: float = 30) -> None:
    """Remount read-only; the kernel refuses while a file is open for writing, so retry."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode:
        assert time.monotonic() < deadline, "could not remount read-only"
        time.sleep(0.05)


def ended_with_fault(driver: subprocess.Popen, phrase: str) -> None:
    _, err = driver.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert driver.returncode == 74, err[-3000:]
    assert lines[-1].startswith("error: the storage of ") and phrase in lines[-1], lines[-1]
    assert "--resume" in lines[-1]
    assert "search/run.py" not in err  # no traceback of ours


def resumes_to_n_trials(exp: Path, tmp_path: Path, before: set[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "search", "--resume", str(exp), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trials = read_table(exp / "trials.csv")
    assert len(trials) == TRIALS
    assert set(trials["status"]) == {"completed"}, trials[["trial_id", "status", "error"]]
    assert before <= set(trials["trial_id"])  # trials finished before the fault are kept


def finished(exp: Path) -> set[str]:
    """Trials whose last report says they finished (read from Ray's per-trial results)."""
    done = set()
    for result in exp.glob("train_trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows and rows[-1].get("last_epoch") == 1:
            done.add(rows[-1]["trial_id"])
    return done


def test_disk_full_then_resume(tmp_path):
    with tmpfs(tmp_path / "disk", "24m") as disk:
        driver = search(disk, tmp_path)
        exp = disk / "exp"
        wait_for_checkpoint(exp, driver)
        ballast = fill(disk)
        ended_with_fault(driver, "No space left on device")
        before = finished(exp)
        ballast.unlink()
        resumes_to_n_trials(exp, tmp_path, before)


def test_read_only_then_resume(tmp_path):
    with tmpfs(tmp_path / "disk", "64m") as disk:
        driver = search(disk, tmp_path)
        exp = disk / "exp"
        wait_for_checkpoint(exp, driver)
        read_only(disk)
        ended_with_fault(driver, "Read-only file system")
        before = finished(exp)
        sh("mount", "-o", "remount,rw", str(disk))
        resumes_to_n_trials(exp, tmp_path, before)


def test_vanished_mount_then_resume(tmp_path):
    """The storage is a bind mount of a real folder; it is unmounted mid-run, then mounted again."""
    real, mount = tmp_path / "real", tmp_path / "mnt"
    real.mkdir()
    mount.mkdir()
    try:
        sh("mount", "--bind", str(real), str(mount))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot bind-mount here: {exc}")
    try:
        driver = search(mount, tmp_path)
        exp = mount / "exp"
        wait_for_checkpoint(exp, driver)
        sh("umount", "-l", str(mount))
        ended_with_fault(driver, "vanished")
        sh("mount", "--bind", str(real), str(mount))
        resumes_to_n_trials(exp, tmp_path, finished(exp))
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
