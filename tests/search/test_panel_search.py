"""A real search over a panel of many series, run as a user runs it: ``tunecast search`` on a
long-format CSV with Nixtla's column names, then ``tunecast forecast`` on it, in subprocesses with a
user's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tables import choosing, read_table
from tunecast.expdir import contract as c
from tunecast.model.metrics import all_metrics, naive_forecast, seasonal_naive_forecast

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


def panel_csv(path: Path) -> None:
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


def test_a_panel_search_writes_the_contract_files_and_per_series_metrics(tmp_path, monkeypatch):
    panel_csv(tmp_path / "panel.csv")
    (tmp_path / "c.yaml").write_text(CONFIG)
    done = tunecast("search", "--data", "panel.csv", "--season-length", str(SEASON),
                    "--horizon", str(HORIZON), "--min-length", "60", "--trials", "2", "--max-epochs", "2",
                    "--scheduler", "fifo",
                    "--config", "c.yaml", "--storage", "runs", "--name", "p", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "panel: 3 series in column 'unique_id'" in out
    assert "dropped 1 series shorter than --min-length 60" in out
    assert "test over 3 series: mean MASE" in out and "forecast/: 3 series, 2 steps each" in out
    exp = tmp_path / "runs" / "p"

    run = json.loads((exp / c.RUN_FILE).read_text())
    assert run["status"] == "completed"
    assert {k: run["data"][k] for k in ("n_series", "n_dropped", "id_column", "time_column")} == \
        {"n_series": 3, "n_dropped": 1, "id_column": "unique_id", "time_column": "ds"}
    assert run["config"]["data"]["id_column"] == "unique_id"  # a resume reads it back as a panel
    trials = read_table(exp / c.TRIALS_FILE)
    history = read_table(exp / c.HISTORY_FILE)
    assert len(trials) == 2 and (trials["status"] == "completed").all()
    assert len(history) == trials["epochs_run"].sum() == 4  # one row per trial and epoch
    assert run["selection"]["val_loss"]["seasonal_naive"] is not None  # the panel's baselines took part
    # no combination with statistical models for a panel (combine is on by default)
    assert run["config"]["combine"] is True and run["selection"]["val_loss"]["combined"] is None
    assert not (exp / c.COMBINED_DIR).exists()

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
    record = c.ForecastRecord.from_dict(json.loads((exp / c.FORECAST_DIR / c.METRICS_FILE).read_text()))
    assert record.chosen == run["selection"]["chosen"] and record.horizon == HORIZON and not record.refit
    assert record.n_points == 370 and record.last_time == "2020-08-07"  # C ends last
    _check_forecast(pd.read_csv(exp / c.FORECAST_DIR / c.FORECAST_FILE, dtype={"unique_id": str}),
                    _ends(tmp_path / "panel.csv"), HORIZON)

    report = (exp / c.REPORT_FILE).read_text()
    assert "Per series: the best trial against the baselines" in report
    assert "mean MASE ratio to seasonal-naive" in report and "The worst series by MASE ratio" in report

    monkeypatch.chdir(tmp_path)  # the search's data path is relative to where it ran
    _forecast_commands(exp, tmp_path)


def _ends(csv: Path) -> dict[str, pd.Timestamp]:
    """Each kept series' last time stamp."""
    frame = pd.read_csv(csv, dtype={"unique_id": str})
    return {sid: pd.Timestamp(g["ds"].max()) for sid, g in frame.groupby("unique_id") if sid != "D"}


def _check_forecast(frame: pd.DataFrame, ends: dict[str, pd.Timestamp], steps: int) -> None:
    """Every series, ``steps`` daily rows after its own end, lower <= forecast <= upper, nested."""
    assert list(frame.columns) == ["unique_id", "time", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert sorted(frame["unique_id"].unique()) == sorted(ends) and len(frame) == steps * len(ends)
    for sid, rows in frame.groupby("unique_id"):
        expected = pd.date_range(ends[sid], periods=steps + 1, freq="D")[1:].strftime("%Y-%m-%d")
        assert rows["time"].tolist() == list(expected), sid
    assert (frame["lo-95"] <= frame["lo-80"]).all() and (frame["lo-80"] <= frame["forecast"]).all()
    assert (frame["forecast"] <= frame["hi-80"]).all() and (frame["hi-80"] <= frame["hi-95"]).all()


def _forecast_commands(exp: Path, tmp_path: Path) -> None:
    """The best trial refitted on every series; seasonal-naive per series after newer rows; a
    --data without the id column."""
    from tunecast.model.forecast import PanelForecaster
    from tunecast.search.forecasting import load_panel_data, read_experiment, search_forecaster

    best = choosing(exp, tmp_path / "best", "best")
    done = tunecast("forecast", "best", "--horizon", "5", "--refit", "-o", "f.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "for 3 series, each after its own last time" in done.stdout
    assert "refitted on every point" in done.stdout
    _check_forecast(pd.read_csv(tmp_path / "f.csv", dtype={"unique_id": str}), _ends(tmp_path / "panel.csv"),
                    5)
    # without the refit the global model reproduces the search's own test forecasts of every series
    run, record, ensemble = read_experiment(best)
    panel, _ = load_panel_data(run, None)
    networks, _ = search_forecaster(best, "best", record, ensemble)
    searched = PanelForecaster(panel.ids, panel.columns, panel.mean, panel.std, members=networks.members)
    test = pd.read_csv(best / c.BEST_DIR / c.PREDICTIONS_FILE, dtype={"unique_id": str})
    blocks = test.dropna(subset=["y_pred"]).groupby(["unique_id", "block"])
    first = {sid: int(panel.offsets[s]) for s, sid in enumerate(panel.ids)}
    starts = np.array([first[sid] + g["index"].iloc[0] for (sid, _), g in blocks])
    np.testing.assert_allclose(searched.paths(panel, starts, HORIZON),
                               np.stack([g["y_pred"].to_numpy() for _, g in blocks]), rtol=1e-5)

    newer = pd.read_csv(tmp_path / "panel.csv", dtype={"unique_id": str})
    more = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2020-04-30", periods=3, freq="D").strftime(
        "%Y-%m-%d"), "y": [7.0, 8.0, 9.0]})
    # D, dropped by --min-length 60, has grown past it: it stays out (not a "new" series)
    grown = pd.DataFrame({"unique_id": "D", "ds": pd.date_range("2020-05-01", periods=31, freq="D").strftime(
        "%Y-%m-%d"), "y": np.linspace(3.0, 4.0, 31)})
    pd.concat([newer, more, grown]).to_csv(tmp_path / "newer.csv", index=False)
    choosing(exp, tmp_path / "snaive", "seasonal_naive")
    done = tunecast("forecast", "snaive", "--data", "newer.csv", "--horizon", "9", "-o", "g.csv",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "g.csv", dtype={"unique_id": str})
    _check_forecast(frame, _ends(tmp_path / "newer.csv"), 9)
    for sid, rows in pd.read_csv(tmp_path / "newer.csv", dtype={"unique_id": str}).groupby("unique_id"):
        if sid != "D":  # each series' last season, repeated
            season = rows.sort_values("ds")["y"].to_numpy()[-SEASON:]
            np.testing.assert_allclose(frame[frame["unique_id"] == sid]["forecast"], np.resize(season, 9))

    newer.drop(columns="unique_id").to_csv(tmp_path / "no-id.csv", index=False)
    refused = tunecast("forecast", "snaive", "--data", "no-id.csv", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "no id column 'unique_id'" in refused.stderr and len(refused.stderr.splitlines()) == 1
