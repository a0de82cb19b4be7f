"""SIGTERM (kill, a pod's shutdown, `ray job stop`'s default) interrupts a search as Ctrl-C does:
Tune saves its state, the experiment is ``interrupted`` and resumable, the exit code is 130."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import SMALL_SPACE
from tests.search.test_resume import finished_trials
from tests.tables import read_table
from tunecast.search.signals import INTERRUPTED_EXIT_CODE

pytestmark = pytest.mark.slow


def test_sigterm_interrupts_the_search_which_exits_130(tmp_path):
    (tmp_path / "small.yaml").write_text(yaml.safe_dump({"space": SMALL_SPACE}))
    exp = tmp_path / "runs" / "terminated"
    cmd = [sys.executable, "-m", "tunecast", "search", "--data", "sine", "--trials", "4", "--config",
           str(tmp_path / "small.yaml"), "--max-epochs", "12", "--scheduler", "fifo", "--max-concurrent", "1",
           "--storage", str(tmp_path / "runs"), "--name", exp.name, "--quiet", "--no-report"]
    driver = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not finished_trials(exp):
            assert time.time() < deadline and driver.poll() is None, "the search ended before SIGTERM"
            time.sleep(0.5)
        driver.send_signal(signal.SIGTERM)  # to the driver alone, as `kill PID` sends it
        out, err = driver.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what Ray left of the driver's session
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == INTERRUPTED_EXIT_CODE == 130, err[-3000:]
    assert "search interrupted" in out and f"resume with: tunecast search --resume {exp}" in out
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "interrupted" and state["ended_at"] is None
    trials = read_table(exp / "trials.csv")
    assert 1 <= (trials["status"] == "completed").sum() < 4
