"""The reaper on real processes: it kills this user's processes whose raylet is gone, leaves those
whose raylet runs, and its watcher reaps when the driver vanishes but not after a clean release.
(The end-to-end case, a SIGKILLed search, is tests/search/test_resume.py::test_sigkill_then_resume.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from tunecast.search import reaper

pytestmark = pytest.mark.skipif(not psutil.LINUX, reason="the reaper works on Linux only")

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


# Ray's agents rename themselves, which zeroes the start of their environ block (psutil's
# environ() then reads it as empty): the same, done by hand, to the block's first entry
BLANKED = [sys.executable, "-c", "import ctypes, time; env = ctypes.POINTER(ctypes.c_void_p).in_dll("
           "ctypes.CDLL(None), 'environ'); ctypes.memset(env[0], 0, len(ctypes.string_at(env[0]))); "
           "time.sleep(60)"]


def sleeper(raylet_pid: int, command: list[str] = SLEEP) -> subprocess.Popen:
    env = {"TUNECAST_FIRST": "x", **os.environ, "RAY_RAYLET_PID": str(raylet_pid)}
    return subprocess.Popen(command, env=env)


def gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_reap_kills_orphans_and_spares_processes_whose_raylet_runs():
    raylet = subprocess.Popen([*SLEEP, "raylet"])  # a live process named like a raylet
    orphan, agent, kept = sleeper(gone_pid()), sleeper(gone_pid(), BLANKED), sleeper(raylet.pid)
    try:
        deadline = time.monotonic() + 20  # the agent's interpreter starts and blanks its environ
        while psutil.Process(agent.pid).environ() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not psutil.Process(agent.pid).environ()  # what psutil alone would miss
        found = {p.pid for p in reaper.orphans()}
        assert {orphan.pid, agent.pid} <= found and not {kept.pid, os.getpid()} & found
        reaper.reap()  # (a concurrent search's reaper may be quicker: no count asserted)
        assert orphan.wait(timeout=10) == -9 and agent.wait(timeout=10) == -9  # SIGKILL
        assert kept.poll() is None and raylet.poll() is None
    finally:
        for process in (raylet, orphan, agent, kept):
            process.kill()
            process.wait()


def test_watcher_reaps_when_the_driver_vanishes_and_not_after_release():
    watcher = reaper.watch_driver()
    assert watcher is not None and watcher.stdin is not None
    orphan = sleeper(gone_pid())
    try:
        watcher.stdin.close()  # the driver died without a word
        assert orphan.wait(timeout=20) == -9
    finally:
        for process in (watcher, orphan):
            process.kill()
            process.wait()

    watcher = reaper.watch_driver()
    started = time.monotonic()
    reaper.release(watcher)  # a clean shut-down: the watcher leaves at once, without its 15 s of reaping
    assert watcher is not None and watcher.returncode == 0 and time.monotonic() - started < 10
