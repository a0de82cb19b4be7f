"""Ray processes left behind by a killed search (local mode), and their removal.

A search that runs Ray in-process starts a GCS, a raylet, and under the raylet two agents and
the trial workers. When its driver is killed with SIGKILL, the GCS and the raylet go with it,
but the agents and the workers are re-parented to PID 1 and live on for minutes. Each of them
carries its raylet's PID in ``RAY_RAYLET_PID``; one whose raylet is gone is an orphan whatever
cluster it came from, so removing it cannot hurt a Ray that is still running.

:func:`reap` kills such orphans of this user (Linux, via /proc; elsewhere it does nothing).
``tunecast search`` calls it before it starts Ray, and leaves a small watcher process
(:func:`watch_driver`) that calls it when the driver is gone, however it ended.
Standard library only: the watcher must start fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")
DONE = b"done"


def _environ(pid: str) -> dict[str, str]:
    try:
        raw = (PROC / pid / "environ").read_bytes()
    except OSError:  # gone, or another user's
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _is_raylet(pid: str) -> bool:
    try:
        return b"raylet" in (PROC / pid / "cmdline").read_bytes()
    except OSError:
        return False


def orphans() -> list[int]:
    """PIDs of this user's Ray processes whose raylet no longer exists."""
    if not PROC.is_dir():
        return []
    uid, me, found = os.getuid(), os.getpid(), []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        raylet = _environ(entry.name).get("RAY_RAYLET_PID", "")
        if raylet.isdigit() and not _is_raylet(raylet):
            found.append(int(entry.name))
    return found


def reap() -> int:
    """Kill the orphaned Ray processes of this user; how many were killed."""
    killed = 0
    for pid in orphans():
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def _watch(settle_s: float = 15.0) -> None:
    """Block until the driver closes our stdin. A driver that shut Ray down says so first;
    one that was killed says nothing: then reap for a while (its raylet may take a moment to
    go, and the workers become orphans only then)."""
    if sys.stdin.buffer.read() == DONE:
        return
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        reap()
        time.sleep(0.5)


def watch_driver() -> subprocess.Popen | None:
    """Start the watcher: a process in its own session (a Ctrl-C or a kill of the driver's
    group does not reach it) whose stdin is a pipe only this process holds."""
    if not PROC.is_dir():
        return None
    return subprocess.Popen(
        [sys.executable, "-c", "from search.reaper import _watch; _watch()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def release(watcher: subprocess.Popen | None) -> None:
    """Ray was shut down cleanly: the watcher can go without reaping."""
    if watcher is None or watcher.stdin is None:
        return
    try:
        watcher.stdin.write(DONE)
        watcher.stdin.close()
        watcher.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
