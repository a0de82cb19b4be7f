"""A real search over a panel of many series, run as a user runs it: ``tunecast search`` on a
long-format CSV with Nixtla's column names, in a subprocess with a user's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expdir import contract as c
from model.metrics import all_metrics, naive_forecast, seasonal_naive_forecast

pytestmark = pytest.mark.slow
TUNECAST = str(Path(sys.executable).parent / "tunecast")
SERIES = {"A": (120, 0.0, 1.0), "B": (90, 1000.0, 100.0), "C": (160, -5.0, 0.01), "D": (30, 3.0, 1.0)}
SEASON, HORIZON = 7, 2
CONFIG = """\
space: {hidden_size: 8, num_layers: 1, window: {low: 8, high: 12}, batch_size: 32}
"""


def tunecast(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a subprocess with a user's environment (no Ray variables set by the suite)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    return subprocess.run([TUNECAST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=400)


def _panel_csv(path: Path) -> None:
    """Four series of different lengths, starts and scales, rows shuffled; D is too short for
    --min-length 60."""
    parts = []
    for sid, (n, level, amplitude) in SERIES.items():
        t = np.arange(n)
        noise = np.random.default_rng(ord(sid)).standard_normal(n)
        y = level + amplitude * (np.sin(2 * np.pi * t / SEASON) + 0.3 * noise)
        ds = pd.date_range(f"2020-0{ord(sid) - 64}-01", periods=n, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y": y}))
    pd.concat(parts).sample(frac=1.0, random_state=0).to_csv(path, index=False)


def _expected(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """What model.metrics gives on one series alone for the forecasts in its predictions.csv rows."""
    y = rows["y_true"].to_numpy(np.float64)
    test = rows[rows["y_pred"].notna()]
    positions = np.stack([g["index"].to_numpy(int) for _, g in test.groupby("block")])  # (K, H)
    y_pred = np.stack([g["y_pred"].to_numpy() for _, g in test.groupby("block")])
    insample = y[rows["split"].isin(["train", "val"]).to_numpy()]
    forecasts = {"model": y_pred, "naive": naive_forecast(y, positions),
                 "seasonal_naive": seasonal_naive_forecast(y, positions, SEASON)}
    truth = y[positions].ravel()
    return {name: all_metrics(truth, f.ravel(), insample, SEASON) for name, f in forecasts.items()}


def test_a_panel_search_writes_the_contract_files_and_per_series_metrics(tmp_path):
    _panel_csv(tmp_path / "panel.csv")
    (tmp_path / "c.yaml").write_text(CONFIG)
    done = tunecast("search", "--data", "panel.csv", "--season-length", str(SEASON),
                    "--horizon", str(HORIZON), "--min-length", "60", "--trials", "2", "--max-epochs", "2",
                    "--scheduler", "fifo",
                    "--config", "c.yaml", "--storage", "runs", "--name", "p", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "panel: 3 series in column 'unique_id'" in out
    assert "dropped 1 series shorter than --min-length 60" in out
    assert "test over 3 series: mean MASE" in out and "forecast/: not written" in out
    exp = tmp_path / "runs" / "p"

    run = json.loads((exp / c.RUN_FILE).read_text())
    assert run["status"] == "completed"
    assert {k: run["data"][k] for k in ("n_series", "n_dropped", "id_column", "time_column")} == \
        {"n_series": 3, "n_dropped": 1, "id_column": "unique_id", "time_column": "ds"}
    assert run["config"]["data"]["id_column"] == "unique_id"  # a resume reads it back as a panel
    trials = pd.read_csv(exp / c.TRIALS_FILE)
    history = pd.read_csv(exp / c.HISTORY_FILE)
    assert len(trials) == 2 and (trials["status"] == "completed").all()
    assert len(history) == trials["epochs_run"].sum() == 4  # one row per trial and epoch
    assert run["selection"]["val_loss"]["seasonal_naive"] is not None  # the panel's baselines took part

    best = c.BestRecord.from_dict(json.loads((exp / c.BEST_DIR / c.METRICS_FILE).read_text()))
    assert best.scores.n_series == 3 and best.scores.horizon == HORIZON
    assert best.val_loss == pytest.approx(trials["best_val_loss"].min())
    predictions = pd.read_csv(exp / c.BEST_DIR / c.PREDICTIONS_FILE, dtype={"unique_id": str})
    assert list(predictions.columns) == list(c.PANEL_PREDICTION_COLUMNS)
    assert sorted(predictions["unique_id"].unique()) == ["A", "B", "C"] and len(predictions) == 120 + 90 + 160
    for folder in (c.BEST_DIR, c.ENSEMBLE_DIR):
        if folder == c.ENSEMBLE_DIR and not (exp / folder).exists():
            continue
        per_series = pd.read_csv(exp / folder / c.PER_SERIES_FILE, dtype={"unique_id": str})
        predictions = pd.read_csv(exp / folder / c.PREDICTIONS_FILE, dtype={"unique_id": str})
        assert list(per_series.columns) == list(c.PER_SERIES_COLUMNS) and list(per_series["unique_id"]) == \
            ["A", "B", "C"]
        for _, row in per_series.iterrows():
            expected = _expected(predictions[predictions["unique_id"] == row["unique_id"]])
            for name, values in expected.items():
                for metric, value in values.items():
                    assert row[f"{name}_{metric}"] == pytest.approx(value, rel=1e-9), (folder, name, metric)
        test = json.loads((exp / folder / c.METRICS_FILE).read_text())["test"]
        assert test["model"]["mase"] == pytest.approx(per_series["model_mase"].mean())
        assert test["model"]["mase_ratio"] == pytest.approx(
            (per_series["model_mase"] / per_series["seasonal_naive_mase"]).mean())
    assert not (exp / c.FORECAST_DIR).exists()

    report = (exp / c.REPORT_FILE).read_text()
    assert "Per series: the best trial against the baselines" in report
    assert "mean MASE ratio to seasonal-naive" in report and "The worst series by MASE ratio" in report

    refused = tunecast("forecast", str(exp), cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and "searched 3 series" in \
        refused.stderr and len(refused.stderr.splitlines()) == 1
