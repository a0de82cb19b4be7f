"""Real searches on a local Ray: contract files, parallelism, GPU shares, faults."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import ray
import torch

from model import DataSpec, load
from model.evaluate import evaluate
from search.experiment import load_checkpoint
from tests.conftest import small_search

pytestmark = pytest.mark.slow


def test_contract_files_are_consistent(sine_search):
    config, outcome = sine_search
    exp = outcome.path
    for name in (
        "tunecast.json",
        "trials.csv",
        "history.csv",
        "best/config.json",
        "best/model.pt",
        "best/metrics.json",
        "best/predictions.csv",
        "best/attention.npy",
    ):
        assert (exp / name).exists(), name
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "completed" and state["ended_at"]
    assert state["data"]["source"] == "sine" and state["data"]["n_points"] == 1000
    assert set(state["versions"]) >= {"torch", "ray", "optuna", "python"}

    trials = pd.read_csv(exp / "trials.csv")
    history = pd.read_csv(exp / "history.csv")
    assert len(trials) == config.trials
    assert trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"completed", "stopped"}
    assert len(history) == trials["epochs_run"].sum()
    for _, trial in trials.iterrows():
        rows = history[history["trial_id"] == trial["trial_id"]]
        assert list(rows["epoch"]) == list(range(1, trial["epochs_run"] + 1))
        assert rows["val_loss"].min() == pytest.approx(trial["best_val_loss"])
        assert trial["start_time"] <= trial["end_time"]
        assert trial["config/num_layers"] == 1 and 8 <= trial["config/window"] <= 16
    # ASHA stops some trials after the grace period
    assert (trials["status"] == "stopped").any()
    assert (trials["epochs_run"] == config.max_epochs).any()

    best_id = state["best_trial_id"]
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    assert best_id == finished.loc[finished["best_val_loss"].idxmin(), "trial_id"]

    # best/ metrics equal a re-evaluation of best/model.pt
    metrics = json.loads((exp / "best/metrics.json").read_text())
    saved = json.loads((exp / "best/config.json").read_text())
    assert (exp / "best/checkpoint.json").exists() is False
    ckpt_like = exp / "best"
    (ckpt_like / "checkpoint.json").write_text(
        json.dumps(
            {
                "train_config": saved["train_config"],
                "input_size": saved["input_size"],
                "epoch": 0,
                "val_loss": 0,
            }
        )
    )
    try:
        model, train_config, _ = load_checkpoint(ckpt_like)
    finally:
        (ckpt_like / "checkpoint.json").unlink()
    state_dict = torch.load(exp / "best/model.pt", weights_only=True)
    assert set(state_dict) == set(model.state_dict())
    again = evaluate(model, load(DataSpec("sine")), train_config)
    for name in ("model", "naive", "seasonal_naive"):
        for key, value in again.metrics[name].items():
            assert metrics["test"][name][key] == pytest.approx(value, rel=1e-6), (name, key)

    predictions = pd.read_csv(exp / "best/predictions.csv")
    assert len(predictions) == 1000
    assert list(predictions["split"].unique()) == ["train", "val", "test"]
    test_rows = predictions[predictions["split"] == "test"]
    assert test_rows["y_pred"].notna().all() and predictions["y_pred"].notna().sum() == 200
    attention = np.load(exp / "best/attention.npy")
    assert attention.shape == (200, train_config.window)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)


def test_ensemble_is_the_mean_of_the_top_trials_by_val_loss(tmp_path):
    space = {"hidden_size": 16, "num_layers": 1, "window": {"low": 10, "high": 14}, "batch_size": 32,
             "lr": {"low": 0.003, "high": 0.005}, "dropout": 0.0, "scaler": "standard", "highway": False}
    config, outcome = small_search(tmp_path, "ensemble", trials=4, max_epochs=4, scheduler="fifo",
                                   space=space, ensemble=3)
    exp = outcome.path
    trials = pd.read_csv(exp / "trials.csv", dtype={"trial_id": str})
    finished = trials[trials["status"].isin(["completed", "stopped"])].sort_values("best_val_loss")
    top = finished.head(config.ensemble)
    close = top[top["best_val_loss"] <= 2.0 * top["best_val_loss"].iloc[0]]  # members within 2x the best
    expected = list(close["trial_id"])
    assert len(expected) >= 2, trials[["trial_id", "best_val_loss"]]  # similar configs: close losses
    metrics = json.loads((exp / "ensemble/metrics.json").read_text())
    assert [m["trial_id"] for m in metrics["members"]] == expected and metrics["k"] == len(expected)
    assert outcome.ensemble_metrics == metrics

    data = load(DataSpec("sine"))
    evaluations, val_errors = [], []
    for trial_id in expected:
        (folder,) = exp.glob(f"*_{trial_id}_*")
        model, train_config, _ = load_checkpoint(sorted(folder.glob("checkpoint_*"))[-1])
        evaluations.append(evaluate(model, data, train_config))
        from model.evaluate import val_forecast

        val_errors.append(val_forecast(model, data, train_config))
    mean = np.mean([e.y_pred for e in evaluations], axis=0)
    y_true = evaluations[0].y_true
    assert metrics["test"]["model"]["mae"] == pytest.approx(float(np.mean(np.abs(mean - y_true))), rel=1e-6)
    val_mean = np.mean([p for p, _ in val_errors], axis=0)
    assert metrics["val_loss"] == pytest.approx(float(np.mean((val_mean - val_errors[0][1]) ** 2)), rel=1e-6)
    # each member's own val_loss is what its trial reported
    for member in metrics["members"]:
        reported = trials.loc[trials["trial_id"] == member["trial_id"], "best_val_loss"].item()
        assert member["val_loss"] == pytest.approx(reported, rel=1e-6)
    predictions = pd.read_csv(exp / "ensemble/predictions.csv")
    test_rows = predictions[predictions["split"] == "test"]
    np.testing.assert_allclose(test_rows["y_pred"].to_numpy(), mean.ravel(), rtol=1e-6)


def test_two_trials_run_at_once_on_two_cpus(sine_search):
    _, outcome = sine_search
    trials = outcome.trials.sort_values("start_time")
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["search"]["max_concurrent"] == 2
    first, second = trials.iloc[0], trials.iloc[1]
    # the first two trials start together, not one after the other
    assert second["start_time"] < first["end_time"]


def test_logical_gpu_shares_run_four_trials_at_once_on_cpu(tmp_path):
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False)
    try:
        _, outcome = small_search(
            tmp_path, "gpu-share", gpus_per_trial=0.25, trials=4, scheduler="fifo", max_epochs=2
        )
    finally:
        ray.shutdown()
    trials = outcome.trials
    assert len(trials) == 4 and (trials["status"] == "completed").all()
    assert (trials["gpu_share"] == 0.25).all()
    assert (trials["device"] == "cpu").all()  # torch sees no CUDA here: falls back to CPU
    latest_start, earliest_end = trials["start_time"].max(), trials["end_time"].min()
    assert latest_start < earliest_end, "all four trials should overlap in time"


def _faulty_trainable(config, data, fixed, resources):
    from search.trainable import train_trial

    if config["batch_size"] == 64:
        raise RuntimeError("injected fault: batch_size 64 is cursed")
    train_trial(config, data, fixed, resources)


def test_failed_and_diverged_trials_are_recorded_and_search_goes_on(tmp_path):
    from search.config import SearchConfig
    from search.driver import run_search

    space = {
        "hidden_size": 8,
        "num_layers": 1,
        "window": 8,
        "batch_size": [32, 64],
        "lr": [0.003, 1e20],
        "dropout": 0.0,
        "scaler": "standard",
    }
    config = SearchConfig.from_dict(
        {
            "data": {"source": "sine"},
            "name": "faults",
            "storage": str(tmp_path),
            "trials": 8,
            "max_epochs": 3,
            "scheduler": "fifo",
            "space": space,
            "verbose": 0,
            "train": {"grad_clip": 1e30},
            "seed": 3,
            "ensemble": 1,
        }
    )
    outcome = run_search(config, trainable=_faulty_trainable)
    assert not (outcome.path / "ensemble").exists() and outcome.ensemble_metrics is None  # --ensemble 1
    trials = outcome.trials
    assert len(trials) == 8
    failed = trials[trials["status"] == "failed"]
    injected = failed[failed["error"].str.contains("injected fault")]
    diverged = failed[failed["error"].str.contains("diverged")]
    assert len(injected) == (trials["config/batch_size"] == 64).sum() > 0
    assert len(diverged) > 0 and (diverged["config/lr"] == 1e20).all()
    ok = trials[trials["status"] == "completed"]
    assert len(ok) > 0 and (ok["config/lr"] == 0.003).all()
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["status"] == "completed"
    assert state["best_trial_id"] in set(ok["trial_id"])


def test_time_budget_stops_starting_trials(tmp_path):
    _, outcome = small_search(tmp_path, "budget", trials=200, max_epochs=3, time_budget_s=12,
                              scheduler="fifo")
    trials = outcome.trials
    assert 0 < len(trials) < 200
    assert outcome.status == "completed"
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["status"] == "completed"


def test_ensemble_leaves_out_trials_far_worse_than_the_best(sine_search):
    """The session search's trials are short and far apart: only near-best ones may join."""
    _, outcome = sine_search
    trials = outcome.trials
    finished = trials[trials["status"].isin(["completed", "stopped"])].sort_values("best_val_loss")
    best = float(finished["best_val_loss"].iloc[0])
    near = finished[finished["best_val_loss"] <= 2.0 * best]
    far = set(finished["trial_id"]) - set(near["trial_id"])
    ensemble = outcome.path / "ensemble/metrics.json"
    if len(near) < 2:
        assert not ensemble.exists() and outcome.ensemble_metrics is None
    else:
        members = {m["trial_id"] for m in json.loads(ensemble.read_text())["members"]}
        assert members == set(near["trial_id"].head(5)) and not members & far
