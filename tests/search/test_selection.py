"""Honest selection: the search scores naive and seasonal-naive on validation beside its trials,
forecasts with whichever has the lowest validation loss, and says so when a baseline wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tunecast.expdir import contract as c
from tunecast.expdir.contract import BASELINES


def test_a_trained_model_that_wins_on_validation_is_chosen(ensemble_search):
    """Ten epochs of alike networks on the sine beat naive at every validation origin."""
    _, outcome = ensemble_search
    run = json.loads((outcome.path / "tunecast.json").read_text())
    selection = run["selection"]
    assert selection["chosen"] in ("ensemble", "combined")  # beside an ensemble, no best trial
    losses = selection["val_loss"]
    assert losses["best"] == outcome.best.val_loss  # recorded, not compared
    assert selection["compared"] == ["ensemble", "combined", "naive", "seasonal_naive"]
    score = selection["score"]  # the mean over the search's own and the earlier origins
    assert "best" not in score and "ensemble" in score
    assert len(selection["earlier_origins"]["best"]) == 2
    assert selection["chosen"] == min(score, key=score.__getitem__)
    assert score["naive"] > min(v for k, v in score.items() if k in ("ensemble", "combined"))
    forecast = json.loads((outcome.path / "forecast" / "metrics.json").read_text())
    assert forecast["chosen"] == selection["chosen"]


def test_the_combination_is_the_ensemble_with_autoets_and_autoarima_fitted_on_the_training_part(
        ensemble_search):
    """combined/: its validation loss and test forecasts, recomputed here from the ensemble's
    networks and statsforecast's models fitted on the training part only, each a third."""
    from statsforecast.models import AutoARIMA, AutoETS

    from tunecast.model import checkpoint
    from tunecast.model.data import load
    from tunecast.model.evaluate import val_forecast, val_positions

    config, outcome = ensemble_search
    exp = outcome.path
    record = c.CombinedRecord.from_dict(json.loads((exp / c.COMBINED_DIR / c.METRICS_FILE).read_text()))
    assert outcome.ensemble is not None and outcome.combined == record
    assert record.networks == tuple(m.trial_id for m in outcome.ensemble.members)
    data = load(config.data)
    y = data.values[:, 0].astype(np.float64)
    assert record.fit_end == data.n_train
    val = []
    for trial_id in record.networks:
        model, info = checkpoint.load(exp / c.ENSEMBLE_DIR / c.MEMBERS_DIR / trial_id)
        val.append(val_forecast(model, data, info.config))
    positions = val_positions(data, 1, info.config.max_val_windows)[:, 0]  # sine: horizon 1
    np.testing.assert_allclose((y[positions] - data.mean[0]) / data.std[0], val[0][1][:, 0], atol=1e-5)
    test = pd.read_csv(exp / c.ENSEMBLE_DIR / c.PREDICTIONS_FILE)
    test = test[test["split"] == "test"]
    mean, std = float(data.mean[0]), float(data.std[0])
    stat_val, stat_test = [], []
    for model in (AutoETS(season_length=1), AutoARIMA(season_length=1)):
        model.fit(y[: data.n_train])
        stat_val.append([model.forward(y[:o], h=1)["mean"][0] for o in positions])
        stat_test.append([model.forward(y[:o], h=1)["mean"][0] for o in test["index"]])
    networks = np.mean([p for p, _ in val], axis=0)[:, 0]
    ets, arima = ((np.array(s) - mean) / std for s in stat_val)
    combined_val = (networks + ets + arima) / 3
    assert record.val_loss == pytest.approx(float(np.mean(np.abs(combined_val - val[0][1][:, 0]))), rel=1e-5)
    combined_test = (test["y_pred"].to_numpy() + np.array(stat_test[0]) + np.array(stat_test[1])) / 3
    written = pd.read_csv(exp / c.COMBINED_DIR / c.PREDICTIONS_FILE)
    np.testing.assert_allclose(written[written["split"] == "test"]["y_pred"], combined_test, rtol=1e-6)
    assert record.scores.test["model"]["mae"] == pytest.approx(
        float(np.mean(np.abs(combined_test - test["y_true"]))), rel=1e-6)
    selection = json.loads((exp / c.RUN_FILE).read_text())["selection"]
    assert selection["val_loss"]["combined"] == pytest.approx(record.val_loss)
    assert len(selection["earlier_origins"]["combined"]) == 2


def test_when_no_trained_model_beats_naive_the_search_forecasts_with_naive_and_says_so(tmp_path):
    """A random walk, where the last value is the best forecast, and two 2-epoch trials."""
    walk = 50 + np.cumsum(np.random.default_rng(3).standard_normal(300))
    pd.DataFrame({"y": walk}).to_csv(tmp_path / "walk.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "search", "--data", str(tmp_path / "walk.csv"), "--trials", "2",
         "--max-epochs", "2", "--storage", str(tmp_path / "runs"), "--name", "walk", "--quiet",
         "--no-combine"],  # the networks alone; with AutoARIMA, which is naive on a walk, it may win
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    exp = tmp_path / "runs" / "walk"
    selection = json.loads((exp / "tunecast.json").read_text())["selection"]
    assert selection["chosen"] in BASELINES
    assert selection["val_loss"]["combined"] is None and not (exp / c.COMBINED_DIR).exists()
    score = selection["score"]  # the mean over the search's own and the earlier origins
    assert score[selection["chosen"]] < min(score[k] for k in ("ensemble", "best") if k in score)
    assert "best" not in selection["compared"] or "ensemble" not in score  # beside an ensemble
    last = done.stdout.strip().splitlines()[-5:]  # the CLI's last lines say so
    assert any(line.startswith("chosen on validation: ") and "No trained model beat" in line for line in last)
    forecast = json.loads((exp / "forecast" / "metrics.json").read_text())
    assert forecast["chosen"] == selection["chosen"] and forecast["trial_ids"] == []
    future = pd.read_csv(exp / "forecast" / "forecast.csv")
    assert abs(future["forecast"].iloc[0] - walk[-1]) < 1e-4  # naive: the last value
    assert (exp / "best" / "metrics.json").exists()  # the trained models' results stay visible
    report = (exp / "report.html").read_text()
    assert "No trained model beat" in report


def test_a_statistical_model_that_fails_leaves_the_combination_out_not_the_search(tmp_path, monkeypatch,
                                                                                   capsys):
    """statsforecast raising while the finished search scores the combination (here AutoARIMA's
    forward, as a broken numba cache would): a one-line warning, no combined/, and the search
    completes and chooses among the rest."""
    from statsforecast.models import AutoARIMA

    from tests.conftest import small_search

    def broken(self, *args, **kwargs):
        raise RuntimeError("cannot cache function 'arima_forward'")

    monkeypatch.setattr(AutoARIMA, "forward", broken)
    _, outcome = small_search(tmp_path, "broken", trials=2)
    assert outcome.status == "completed" and outcome.combined is None
    assert not (outcome.path / c.COMBINED_DIR).exists()
    run = json.loads((outcome.path / c.RUN_FILE).read_text())
    assert run["selection"]["val_loss"]["combined"] is None and run["selection"]["chosen"] != "combined"
    warning = [line for line in capsys.readouterr().err.splitlines() if "combination" in line]
    assert warning == ["warning: the networks' combination with AutoETS and AutoARIMA is left out (a "
                       "statistical model could not forecast (RuntimeError: cannot cache function "
                       "'arima_forward'))"]
