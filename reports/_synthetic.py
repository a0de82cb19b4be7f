"""Write a synthetic experiment directory that follows docs/experiment-dir.md.

Used by the report's tests and by ``benchmarks/report_scale.py``: no Ray, no training, just files
shaped like a real search's, with completed, ASHA-stopped and failed trials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = ["XSS_IMG", "XSS_SCRIPT", "make_fixture_experiment"]

# Injection payloads the report must show as text (tests put them in names and messages).
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'

T0 = 1_795_000_000.0  # Unix seconds of the synthetic search's start
SPACE: dict[str, dict[str, Any]] = {
    "hidden_size": {"type": "int", "low": 16, "high": 128, "log": True},
    "window": {"type": "int", "low": 12, "high": 36, "log": False},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "log": False},
    "lr": {"type": "float", "low": 0.0001, "high": 0.01, "log": True},
    "scaler": {"type": "categorical", "choices": ["standard", "window"]},
    "num_layers": {"type": "fixed", "value": 1},
}
MAX_EPOCHS, GRACE, SEASON = 30, 3, 12


def make_fixture_experiment(
    path: str | Path,
    *,
    n_trials: int = 8,
    horizon: int = 1,
    name: str = "fixture-demo",
    target: str = "passengers",
    run_status: str = "completed",
    statuses: Sequence[str] | None = None,
    error_message: str = "RuntimeError: loss diverged to nan at epoch 2",
    n_points: int = 144,
    n_nodes: int = 1,
    max_concurrent: int = 2,
    seed: int = 0,
    ensemble: int = 1,
) -> Path:
    """Write a hand-made experiment directory at ``path`` and return ``path``.

    Args:
        path: the experiment directory to create (its parent must exist).
        n_trials: number of trials in trials.csv.
        horizon: forecast horizon H of every trial (blocks of H in predictions.csv when H > 1).
        name: experiment name (tunecast.json).
        target: target column name.
        run_status: tunecast.json status; ``best/`` is written only for "completed".
        statuses: one status per trial; by default a mix of completed, stopped and failed
            (trial 3, 8, 13, ... fail; 2, 5, 11, ... are stopped by ASHA).
        error_message: the error of failed trials.
        n_points: length of the series.
        n_nodes: Ray nodes the trials are spread over.
        max_concurrent: trials running at once.
        seed: random seed.
        ensemble: K of ``tunecast search --ensemble K``: with K >= 2 and at least two finished
            trials, ``ensemble/`` holds the mean forecast of the min(K, finished) trials with the
            lowest val_loss (written only beside ``best/``). 1, the default here, writes none.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if statuses is None:
        statuses = [_default_status(i) for i in range(n_trials)]
    assert len(statuses) == n_trials, "one status per trial"
    configs = [_sample_config(rng, horizon, i) for i in range(n_trials)]
    trials, history = _trials_and_history(rng, configs, statuses, error_message,
                                          n_nodes, max_concurrent)
    trials.to_csv(path / "trials.csv", index=False)
    history.to_csv(path / "history.csv", index=False)
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    best_id = None
    if run_status == "completed" and len(finished):
        best = finished.loc[finished["best_val_loss"].idxmin()]
        best_id = str(best["trial_id"])
        config = configs[int(best.name)]
        series = _write_best(path / "best", rng, best, config, target, n_points, horizon)
        if ensemble >= 2 and len(finished) >= 2:
            top = finished.sort_values("best_val_loss", kind="stable").head(ensemble)
            _write_ensemble(path / "ensemble", rng, top, series, horizon)
    n_test, n_val = round(0.2 * n_points), round(0.15 * n_points)
    run = {
        "format_version": 1, "name": name, "status": run_status,
        "started_at": _iso(T0),
        "ended_at": None if run_status in ("running", "interrupted")
        else _iso(float(trials["end_time"].max(skipna=True) or T0) + 5.0),
        "search": {"trials": n_trials, "cpus_per_trial": 1.0,
                   "gpus_per_trial": 0.5 if n_nodes > 1 else 0.0,
                   "max_concurrent": max_concurrent, "time_budget_s": None, "scheduler": "asha",
                   "max_epochs": MAX_EPOCHS, "grace_period": GRACE, "seed": seed,
                   "metric": "best_val_loss", "mode": "min",
                   "space": {**SPACE, "horizon": {"type": "fixed", "value": horizon}}},
        "data": {"source": "airline.csv", "target": target, "time_column": "month",
                 "features": [], "season_length": SEASON, "val_fraction": 0.15,
                 "test_fraction": 0.2, "n_points": n_points,
                 "n_train": n_points - n_val - n_test, "n_val": n_val, "n_test": n_test,
                 "missing": "error"},
        "versions": {"tunecast": "0.1.0", "python": "3.11.7", "torch": "2.13.0",
                     "ray": "2.60.0", "optuna": "5.0.0", "numpy": "2.4.6", "pandas": "3.1.1"},
        "cluster": {"address": "local" if n_nodes == 1 else "ray://head:10001",
                    "total_cpus": 2 * n_nodes, "total_gpus": n_nodes if n_nodes > 1 else 0,
                    "nodes": [{"node_id": f"node{k:02d}" + "ab" * 10, "node_ip": f"10.0.0.{k + 1}",
                               "cpus": 2, "gpus": int(n_nodes > 1)} for k in range(n_nodes)]},
        "host": "synthetic-host",
        "best_trial_id": best_id,
    }
    (path / "tunecast.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return path


def _default_status(i: int) -> str:
    if i % 5 == 3:
        return "failed"
    return "stopped" if i % 3 == 2 else "completed"


def _iso(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


def _sample_config(rng: np.random.Generator, horizon: int, i: int) -> dict[str, Any]:
    return {
        "hidden_size": round(math.exp(rng.uniform(math.log(16), math.log(128)))),
        "num_layers": 1,
        "window": int(rng.integers(12, 37)),
        "horizon": horizon,
        "dropout": round(float(rng.uniform(0.0, 0.5)), 4),
        "lr": float(10 ** rng.uniform(-4, -2)),
        "batch_size": 32,
        "max_epochs": MAX_EPOCHS,
        "patience": 5,
        "scaler": str(rng.choice(["standard", "window"])),
        "seed": i,
    }


def _trials_and_history(
    rng: np.random.Generator,
    configs: list[dict[str, Any]],
    statuses: Sequence[str],
    error_message: str,
    n_nodes: int,
    max_concurrent: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    slot_free = [T0 + 2.0] * max_concurrent
    rows, epochs_rows = [], []
    for i, (config, status) in enumerate(zip(configs, statuses, strict=True)):
        trial_id = f"t{i:04d}"
        # Loss is lowest near lr = 3e-3 and for mid-sized hidden layers; stopped trials are bad.
        final = 0.02 + 0.4 * abs(math.log10(config["lr"] / 3e-3)) ** 2 + 0.01 * rng.random()
        final += 0.002 * abs(math.log2(config["hidden_size"] / 48))
        if status == "stopped":
            final += 0.15
        n_epochs = {"completed": int(rng.integers(18, MAX_EPOCHS + 1)),
                    "stopped": int(rng.choice([GRACE, 3 * GRACE])),
                    "failed": int(rng.integers(0, 3)),
                    "running": int(rng.integers(1, 6))}.get(status, 0)
        slot = int(np.argmin(slot_free))
        start = slot_free[slot] + float(rng.uniform(0.1, 1.0))
        epoch_time = float(rng.uniform(0.4, 1.6)) * (1 + config["hidden_size"] / 128)
        losses = final + 0.8 * np.exp(-np.arange(1, n_epochs + 1) / 4.0)
        losses = losses * (1 + 0.03 * rng.standard_normal(n_epochs))
        stamps = start + epoch_time * np.arange(1, n_epochs + 1)
        for epoch in range(n_epochs):
            epochs_rows.append({"trial_id": trial_id, "epoch": epoch + 1,
                                "train_loss": float(losses[epoch] * 0.8),
                                "val_loss": float(losses[epoch]),
                                "timestamp": float(stamps[epoch])})
        end = float(stamps[-1]) if n_epochs else start + 0.5
        slot_free[slot] = end if status != "pending" else slot_free[slot]
        best_epoch = int(np.argmin(losses)) + 1 if n_epochs else None
        rows.append({
            "trial_id": trial_id, "status": status,
            **{f"config/{key}": value for key, value in config.items()},
            "best_val_loss": float(losses.min()) if n_epochs else None,
            "best_epoch": best_epoch, "epochs_run": n_epochs,
            "start_time": float(stamps[0]) if n_epochs else None,
            "end_time": end if n_epochs else None,
            "duration_s": end - start if n_epochs else None,
            "node_id": f"node{slot % n_nodes:02d}" + "ab" * 10,
            "node_ip": f"10.0.0.{slot % n_nodes + 1}",
            "gpu_share": 0.5 if n_nodes > 1 else 0.0,
            "device": "cuda:0" if n_nodes > 1 else "cpu",
            "restarts": 0,
            "error": error_message if status == "failed" else "",
        })
    return pd.DataFrame(rows), pd.DataFrame(
        epochs_rows, columns=["trial_id", "epoch", "train_loss", "val_loss", "timestamp"])


class _Series(NamedTuple):
    """The synthetic series and the best trial's forecast, shared by best/ and ensemble/."""

    frame: pd.DataFrame  # predictions.csv of best/
    y: np.ndarray  # (N,)
    positions: np.ndarray  # (K, H) test points forecast
    scale: float  # MASE scale: in-sample mean absolute seasonal difference


def _write_best(
    best_dir: Path,
    rng: np.random.Generator,
    best: pd.Series,
    config: dict[str, Any],
    target: str,
    n_points: int,
    horizon: int,
) -> _Series:
    best_dir.mkdir(exist_ok=True)
    t = np.arange(n_points)
    y = 100 + 0.8 * t + 25 * np.sin(2 * np.pi * t / SEASON) + 3 * rng.standard_normal(n_points)
    n_test, n_val = round(0.2 * n_points), round(0.15 * n_points)
    n_train = n_points - n_val - n_test
    split = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    n_blocks = n_test // horizon
    first = n_points - n_blocks * horizon
    positions = np.arange(first, n_points).reshape(n_blocks, horizon)  # (K, H)
    y_pred = np.full(n_points, np.nan)
    y_pred[positions] = y[positions] + 4 * rng.standard_normal(positions.shape)
    block = np.full(n_points, np.nan)
    if horizon > 1:
        block[positions] = np.repeat(np.arange(n_blocks), horizon).reshape(n_blocks, horizon)
    months = pd.period_range("1949-01", periods=n_points, freq="M").astype(str)
    frame = pd.DataFrame({"index": t, "time": months, "split": split, "y_true": y,
                          "y_pred": y_pred, "block": pd.array(block, dtype="Int64")})
    frame.to_csv(best_dir / "predictions.csv", index=False)
    insample = y[: n_train + n_val]  # everything before the test part
    series = _Series(frame, y, positions,
                     float(np.mean(np.abs(insample[SEASON:] - insample[:-SEASON]))))
    (best_dir / "metrics.json").write_text(json.dumps({
        "trial_id": best["trial_id"], "val_loss": float(best["best_val_loss"]),
        "best_epoch": int(best["best_epoch"]), **_test_record(series, y_pred[positions], horizon)},
        indent=2), encoding="utf-8")
    (best_dir / "config.json").write_text(json.dumps({
        "trial_id": best["trial_id"], "train_config": config, "input_size": 1, "features": [],
        "target": target}, indent=2), encoding="utf-8")
    window = int(config["window"])
    lags = window - 1 - np.arange(window)  # lag of column j; 0 = most recent input step
    noise = 0.3 * rng.standard_normal((n_blocks, window))
    logits = -0.25 * lags + 2.5 * (lags == SEASON - 1) + noise  # (K, window)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    np.save(best_dir / "attention.npy", weights.astype(np.float32))
    return series


def _write_ensemble(
    ens_dir: Path, rng: np.random.Generator, top: pd.DataFrame, series: _Series, horizon: int
) -> None:
    """ensemble/: the mean of the best trial's forecast and k - 1 other noisy forecasts."""
    ens_dir.mkdir(exist_ok=True)
    y, positions = series.y, series.positions
    best_forecast = series.frame["y_pred"].to_numpy(dtype=float)[positions]
    others = [y[positions] + 4 * rng.standard_normal(positions.shape) for _ in range(len(top) - 1)]
    forecast = np.mean([best_forecast, *others], axis=0)  # (K, H)
    frame = series.frame.copy()
    y_pred = np.full(len(frame), np.nan)
    y_pred[positions] = forecast
    frame["y_pred"] = y_pred
    frame.to_csv(ens_dir / "predictions.csv", index=False)
    members = [{"trial_id": str(t["trial_id"]), "val_loss": float(t["best_val_loss"]),
                "best_epoch": int(t["best_epoch"])} for _, t in top.iterrows()]
    val_loss = 0.9 * float(top["best_val_loss"].min())  # the mean forecast: a little lower
    (ens_dir / "metrics.json").write_text(json.dumps({
        "members": members, "k": len(members), "combination": "mean of the members' forecasts",
        "val_loss": val_loss, **_test_record(series, forecast, horizon)},
        indent=2), encoding="utf-8")


def _test_record(series: _Series, forecast: np.ndarray, horizon: int) -> dict[str, Any]:
    """The test part of a metrics.json: the forecast's metrics beside the two baselines."""
    y, positions = series.y, series.positions
    naive = np.repeat(y[positions[:, :1] - 1], horizon, axis=1)
    seasonal = y[positions[:, :1] - SEASON + (np.arange(horizon) % SEASON)]
    metrics = {name: _metrics(y[positions], pred, series.scale)
               for name, pred in (("model", forecast), ("naive", naive),
                                  ("seasonal_naive", seasonal))}
    return {"horizon": horizon, "season_length": SEASON,
            "protocol": "rolling one-step" if horizon == 1
            else f"non-overlapping blocks of {horizon}",
            "n_test_points": int(positions.size), "test": metrics}


def _metrics(y: np.ndarray, yhat: np.ndarray, scale: float) -> dict[str, float]:
    error = np.abs(y - yhat)
    return {"mae": float(error.mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "mase": float(error.mean() / scale),
            "smape": float(100 * np.mean(2 * error / (np.abs(y) + np.abs(yhat))))}
