"""Honest selection: the search scores naive and seasonal-naive on validation beside its trials,
forecasts with whichever has the lowest validation loss, and says so when a baseline wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from expdir.contract import BASELINES


def test_a_trained_model_that_wins_on_validation_is_chosen(ensemble_search):
    """Ten epochs of alike networks on the sine beat naive at every validation origin."""
    _, outcome = ensemble_search
    run = json.loads((outcome.path / "tunecast.json").read_text())
    selection = run["selection"]
    assert selection["chosen"] in ("best", "ensemble")
    losses = selection["val_loss"]
    assert losses["best"] == outcome.best.val_loss
    score = selection["score"]  # the mean over the search's own and the earlier origins
    assert len(selection["earlier_origins"]["best"]) == 2
    assert selection["chosen"] == min(score, key=score.__getitem__)
    assert score["naive"] > min(v for k, v in score.items() if k in ("best", "ensemble"))
    forecast = json.loads((outcome.path / "forecast" / "metrics.json").read_text())
    assert forecast["chosen"] == selection["chosen"]


def test_when_no_trained_model_beats_naive_the_search_forecasts_with_naive_and_says_so(tmp_path):
    """A random walk, where the last value is the best forecast, and two 2-epoch trials."""
    walk = 50 + np.cumsum(np.random.default_rng(3).standard_normal(300))
    pd.DataFrame({"y": walk}).to_csv(tmp_path / "walk.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "search", "--data", str(tmp_path / "walk.csv"), "--trials", "2",
         "--max-epochs", "2", "--storage", str(tmp_path / "runs"), "--name", "walk", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    exp = tmp_path / "runs" / "walk"
    selection = json.loads((exp / "tunecast.json").read_text())["selection"]
    assert selection["chosen"] in BASELINES
    score = selection["score"]  # the mean over the search's own and the earlier origins
    assert score[selection["chosen"]] < score["best"]
    last = done.stdout.strip().splitlines()[-5:]  # the CLI's last lines say so
    assert any(line.startswith("chosen on validation: ") and "No trained model beat" in line for line in last)
    forecast = json.loads((exp / "forecast" / "metrics.json").read_text())
    assert forecast["chosen"] == selection["chosen"] and forecast["trial_ids"] == []
    future = pd.read_csv(exp / "forecast" / "forecast.csv")
    assert abs(future["forecast"].iloc[0] - walk[-1]) < 1e-4  # naive: the last value
    assert (exp / "best" / "metrics.json").exists()  # the trained models' results stay visible
    report = (exp / "report.html").read_text()
    assert "No trained model beat" in report
