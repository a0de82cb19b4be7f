"""Ray processes left behind by a killed search (local mode), and their removal.

A SIGKILLed driver takes the GCS and raylet with it, but Ray's agents and workers live on,
re-parented to PID 1. Each carries its raylet's PID in ``RAY_RAYLET_PID``: one whose raylet is
gone is an orphan, so removing it cannot hurt a running Ray. :func:`reap` kills this user's
orphans (Linux only), before Ray starts and from a watcher process (:func:`watch_driver`) once
the driver is gone. Standard library and psutil only: the watcher must start fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

DONE = b"done"
RAYLET_PID = re.compile(rb"(?:^|\0)RAY_RAYLET_PID=(\d+)\0")


def _is_raylet(pid: int) -> bool:
    try:
        return any("raylet" in arg for arg in psutil.Process(pid).cmdline())
    except psutil.Error:  # gone
        return False


def _raylet_pid(pid: int) -> int | None:
    """RAY_RAYLET_PID, read from the raw environ block: Ray's agents rename themselves, which
    zeroes the start of that block, and psutil's ``environ()`` stops at the first empty entry."""
    try:
        found = RAYLET_PID.search(Path(f"/proc/{pid}/environ").read_bytes())
    except OSError:  # gone, or another user's
        return None
    return int(found[1]) if found else None


def orphans() -> list[psutil.Process]:
    """This user's Ray processes whose raylet no longer exists."""
    if not psutil.LINUX:
        return []
    me, uid = os.getpid(), os.getuid()
    mine = (p for p in psutil.process_iter(["uids"])
            if p.pid != me and p.info["uids"] is not None and p.info["uids"].effective == uid)
    return [p for p in mine if (raylet := _raylet_pid(p.pid)) is not None and not _is_raylet(raylet)]


def reap() -> int:
    """Kill the orphaned Ray processes of this user; how many were killed."""
    killed = 0
    for proc in orphans():
        with contextlib.suppress(psutil.Error):
            proc.kill()  # SIGKILL, unless the PID now belongs to another process
            killed += 1
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
    if not psutil.LINUX:
        return None
    return subprocess.Popen(
        [sys.executable, "-c", "from tunecast.search.reaper import _watch; _watch()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def release(watcher: subprocess.Popen | None) -> None:
    """Ray was shut down cleanly: the watcher can go without reaping."""
    if watcher is None or watcher.stdin is None:
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        watcher.stdin.write(DONE)
        watcher.stdin.close()
        watcher.wait(timeout=5)
