"""collect(): experiment directory -> typed results, on hand-made fixture directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import Experiment, ReportError, collect


def test_collect_reads_every_file(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    trials = pd.read_csv(exp_h1 / "trials.csv", dtype={"trial_id": str})

    assert isinstance(exp, Experiment)
    assert exp.run.name == "fixture-demo" and exp.run.status == "completed"
    assert exp.counts == {"completed": 5, "stopped": 2, "failed": 1, "running": 0, "pending": 0}
    assert list(exp.trials["trial_id"]) == list(trials["trial_id"])  # creation order kept
    assert exp.warnings == ()
    # The best trial is the finished trial with the lowest val_loss.
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    best_id = finished.loc[finished["best_val_loss"].idxmin(), "trial_id"]
    assert exp.run.best_trial_id == best_id and exp.best is not None
    assert exp.best.trial_id == best_id
    assert set(exp.finished["status"]) == {"completed", "stopped"}
    assert len(exp.finished) == 7
    # Tuned parameters only: fixed entries of the space (num_layers, horizon) are left out.
    assert exp.param_names == ["hidden_size", "window", "dropout", "lr", "scaler"]
    # history.csv: as many epochs per trial as trials.csv says.
    epochs = exp.history.groupby("trial_id")["epoch"].count()
    for _, trial in exp.trials.iterrows():
        assert epochs.get(trial["trial_id"], 0) == trial["epochs_run"]
    assert exp.run.duration_s is not None and exp.run.duration_s > 0


def test_collect_best_trial_h1(exp_h1: Path) -> None:
    best = collect(exp_h1).best
    assert best is not None
    assert best.horizon == 1 and best.season_length == 12 and best.target == "passengers"
    assert set(best.test_metrics) == {"model", "naive", "seasonal_naive"}
    assert set(best.test_metrics["model"]) == {"mae", "rmse", "mase", "smape"}
    predictions = best.predictions
    assert list(predictions["split"].unique()) == ["train", "val", "test"]
    n_test = int((predictions["split"] == "test").sum())
    assert predictions["y_pred"].notna().sum() == n_test == best.n_test_points
    # One attention row per test forecast, one column per input step.
    assert best.attention.shape == (n_test, best.train_config["window"])
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, atol=1e-5)


def test_collect_best_trial_h3_blocks(exp_h3: Path) -> None:
    best = collect(exp_h3).best
    assert best is not None and best.horizon == 3
    n_test = int((best.predictions["split"] == "test").sum())
    assert best.attention.shape[0] == n_test // 3  # one forecast per block
    assert best.predictions["y_pred"].notna().sum() == (n_test // 3) * 3
    assert best.predictions["block"].dropna().value_counts().eq(3).all()


def test_collect_interrupted_search_without_best(exp_interrupted: Path) -> None:
    exp = collect(exp_interrupted)
    assert exp.run.status == "interrupted" and exp.run.ended_at is None
    assert exp.best is None and exp.run.best_trial_id is None
    assert exp.counts["running"] == 2 and exp.counts["pending"] == 1


def test_collect_interrupted_without_trials_csv(exp_interrupted: Path) -> None:
    (exp_interrupted / "trials.csv").unlink()
    (exp_interrupted / "history.csv").unlink()
    exp = collect(exp_interrupted)
    assert len(exp.trials) == 0 and len(exp.history) == 0
    assert any("trials.csv is missing" in w for w in exp.warnings)


def test_collect_completed_search_needs_trials_csv(exp_h1: Path) -> None:
    (exp_h1 / "trials.csv").unlink()
    with pytest.raises(ReportError, match=r"trials\.csv is missing"):
        collect(exp_h1)


def test_collect_interrupted_search_with_best_named_but_missing(exp_h1: Path) -> None:
    """A best trial named in tunecast.json whose best/ was never written: a note, not an error."""
    run = (exp_h1 / "tunecast.json").read_text()
    (exp_h1 / "tunecast.json").write_text(run.replace('"completed"', '"interrupted"', 1))
    for file in (exp_h1 / "best").iterdir():
        file.unlink()
    exp = collect(exp_h1)
    assert exp.best is None
    assert any("best/metrics.json" in w for w in exp.warnings)


def test_collect_all_failed(exp_all_failed: Path) -> None:
    exp = collect(exp_all_failed)
    assert exp.counts["failed"] == 4 and len(exp.finished) == 0
    assert exp.best is None and not (exp_all_failed / "best").exists()
    assert set(exp.trials["error"]) == {"RuntimeError: loss diverged to nan at epoch 2"}


def test_collect_notes_missing_optional_columns(exp_h1: Path) -> None:
    trials = pd.read_csv(exp_h1 / "trials.csv", dtype={"trial_id": str})
    trials.drop(columns=["gpu_share", "device"]).to_csv(exp_h1 / "trials.csv", index=False)
    exp = collect(exp_h1)
    assert exp.trials["gpu_share"].isna().all()
    assert list(exp.trials["device"]) == [""] * len(exp.trials)
    assert any("gpu_share" in w and "device" in w for w in exp.warnings)


def test_collect_keeps_trial_ids_as_text(make_exp: Callable[..., Path]) -> None:
    path = make_exp(n_trials=3)
    for name in ("trials.csv", "history.csv"):
        file = path / name
        file.write_text(file.read_text().replace("t000", "000"))
    exp = collect(path)
    assert list(exp.trials["trial_id"]) == ["0000", "0001", "0002"]
    assert set(exp.history["trial_id"]) <= {"0000", "0001", "0002"}


def test_collect_rejects_a_missing_required_column(exp_h1: Path) -> None:
    trials = pd.read_csv(exp_h1 / "trials.csv")
    trials.drop(columns=["status"]).to_csv(exp_h1 / "trials.csv", index=False)
    with pytest.raises(ReportError, match="no column status"):
        collect(exp_h1)
