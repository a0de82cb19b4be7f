"""A panel search interrupted with Ctrl-C and resumed: the resume reads the panel back from the
experiment (id column, dropped series), keeps the finished trials and ends with N of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from tests.search.test_panel_search import CONFIG, SEASON, TUNECAST, panel_csv, tunecast
from tests.search.test_resume import finished_trials
from tests.tables import read_table
from tunecast.expdir import contract as c

pytestmark = pytest.mark.slow
TRIALS = 3


def test_a_panel_search_interrupted_then_resumed(tmp_path):
    panel_csv(tmp_path / "panel.csv")
    (tmp_path / "c.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    driver = subprocess.Popen(
        [TUNECAST, "search", "--data", "panel.csv", "--season-length", str(SEASON), "--min-length", "60",
         "--trials", str(TRIALS), "--max-epochs", "15", "--scheduler", "fifo", "--max-concurrent", "1",
         "--config", "c.yaml", "--storage", "runs", "--name", "p", "--no-report", "--no-forecast"],
        cwd=tmp_path, env=env, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    exp = tmp_path / "runs" / "p"
    deadline = time.time() + 240
    while time.time() < deadline and not finished_trials(exp):
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-3000:]
    before = read_table(exp / c.TRIALS_FILE)
    done_before = set(before.loc[before["status"] == "completed", "trial_id"])
    assert 1 <= len(done_before) < TRIALS

    resumed = tunecast("search", "--resume", str(exp), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "panel: 3 series in column 'unique_id'" in resumed.stdout  # read back as a panel
    trials = read_table(exp / c.TRIALS_FILE)
    assert len(trials) == TRIALS and (trials["status"] == "completed").all()
    assert done_before <= set(trials["trial_id"])
    per_series = pd.read_csv(exp / c.BEST_DIR / c.PER_SERIES_FILE, dtype={"unique_id": str})
    assert list(per_series["unique_id"]) == ["A", "B", "C"]  # D stays dropped (--min-length 60)
    run = json.loads((exp / c.RUN_FILE).read_text())
    assert run["status"] == "completed" and len(run["resumed_at"]) == 1
    assert run["data"]["n_series"] == 3 and run["data"]["n_dropped"] == 1
