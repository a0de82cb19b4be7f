"""Real searches on a local Ray: contract files, parallelism, GPU shares, faults."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import ray
import torch

from tests.conftest import TRIALS_ONLY, small_search
from tests.tables import read_table
from tunecast.model import DataSpec, checkpoint, load
from tunecast.model.evaluate import evaluate, val_forecast
from tunecast.search.experiment import ensemble_members
from tunecast.search.results import TrialRecord

pytestmark = pytest.mark.slow


def test_contract_files_are_consistent(sine_search):
    config, outcome = sine_search
    exp = outcome.path
    for name in (
        "tunecast.json",
        "trials.csv",
        "history.csv",
        "best/model.pt",
        "best/model.json",
        "best/metrics.json",
        "best/predictions.csv",
        "best/attention.npy",
    ):
        assert (exp / name).exists(), name
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "completed" and state["ended_at"]
    assert state["data"]["source"] == "sine" and state["data"]["n_points"] == 1000
    assert set(state["versions"]) >= {"torch", "ray", "optuna", "python"}

    trials = read_table(exp / "trials.csv")
    history = read_table(exp / "history.csv")
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
    # ASHA stops trials only after the grace period and before max_epochs (whether one is
    # stopped in 4 trials depends on which of two concurrent trials reaches the rung first)
    stopped = trials[trials["status"] == "stopped"]
    assert stopped["epochs_run"].between(config.grace_period, config.max_epochs - 1).all()
    assert (trials.loc[trials["status"] == "completed", "epochs_run"] == config.max_epochs).all()
    assert (trials["epochs_run"] == config.max_epochs).any()

    best_id = state["best_trial_id"]
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    assert best_id == finished.loc[finished["best_val_loss"].idxmin(), "trial_id"]

    # best/ metrics equal a re-evaluation of the model saved in best/ (model.checkpoint's format)
    metrics = json.loads((exp / "best/metrics.json").read_text())
    model, info = checkpoint.load(exp / "best")
    train_config = info.config
    assert metrics["train_config"] == train_config.to_dict() and metrics["trial_id"] == best_id
    assert info.extra["trial_id"] == best_id and info.val_loss == pytest.approx(metrics["val_loss"])
    assert set(torch.load(exp / "best/model.pt", weights_only=True)) == set(model.state_dict())
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


def test_ensemble_is_the_mean_of_the_top_trials_by_val_loss(ensemble_search):
    config, outcome = ensemble_search
    exp = outcome.path
    trials = read_table(exp / "trials.csv")
    finished = trials[trials["status"].isin(["completed", "stopped"])].sort_values("best_val_loss")
    top = finished.head(config.ensemble)
    close = top[top["best_val_loss"] <= 2.0 * top["best_val_loss"].iloc[0]]  # members within 2x the best
    expected = list(close["trial_id"])
    assert len(expected) >= 2, trials[["trial_id", "best_val_loss"]]  # similar configs: close losses
    metrics = json.loads((exp / "ensemble/metrics.json").read_text())
    assert [m["trial_id"] for m in metrics["members"]] == expected and metrics["k"] == len(expected)
    assert outcome.ensemble is not None and outcome.ensemble.to_dict() == metrics

    data = load(DataSpec("sine"))
    evaluations, val_errors = [], []
    for trial_id in expected:
        (folder,) = exp.glob(f"*_{trial_id}_*")  # the trial's own best checkpoint in Tune's folder
        model, info = checkpoint.load(sorted(folder.glob("checkpoint_*"))[-1])
        member, member_info = checkpoint.load(exp / "ensemble/members" / trial_id)  # copied into ensemble/
        assert member_info.config == info.config
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(),
                                                     model.state_dict().values(), strict=True))
        evaluations.append(evaluate(model, data, info.config))
        val_errors.append(val_forecast(model, data, info.config))
    mean = np.mean([e.y_pred for e in evaluations], axis=0)
    y_true = evaluations[0].y_true
    assert metrics["test"]["model"]["mae"] == pytest.approx(float(np.mean(np.abs(mean - y_true))), rel=1e-6)
    val_mean = np.mean([p for p, _ in val_errors], axis=0)
    # scored as a trial's val_loss is (model.training.mean_loss: the mean absolute error)
    assert metrics["val_loss"] == pytest.approx(float(np.mean(np.abs(val_mean - val_errors[0][1]))), rel=1e-6)
    # each member's own val_loss is what its trial reported
    for member in metrics["members"]:
        reported = trials.loc[trials["trial_id"] == member["trial_id"], "best_val_loss"].item()
        assert member["val_loss"] == pytest.approx(reported, rel=1e-6)
    predictions = pd.read_csv(exp / "ensemble/predictions.csv")
    test_rows = predictions[predictions["split"] == "test"]
    np.testing.assert_allclose(test_rows["y_pred"].to_numpy(), mean.ravel(), rtol=1e-6)


def test_refit_true_refits_the_chosen_networks_on_every_point_side_by_side_on_ray(ensemble_search):
    """``refit: true``: forecast/ holds the chosen networks trained again on all 1000 points for
    their checkpoints' epochs, on the search's Ray cluster, the same weights a refit here gives."""
    from tunecast.model.forecast import load as load_forecaster
    from tunecast.model.forecast import refit
    from tunecast.search.forecasting import search_forecaster

    config, outcome = ensemble_search
    assert config.refit and outcome.forecast is not None
    record = outcome.forecast
    # alike networks on a sine beat the baselines
    assert record.chosen in ("best", "ensemble", "combined"), record
    data = load(DataSpec("sine"))
    searched, ids = search_forecaster(outcome.path, record.chosen, outcome.best, outcome.ensemble, data)
    saved = load_forecaster(outcome.path / "forecast")
    assert record.refit and record.trial_ids == ids and len(saved.members) == len(ids)
    assert list(record.epochs) == [m.info.epoch for m in searched.members]
    for kept, trained in zip(saved.members, searched.members, strict=True):
        assert kept.info.extra["refit"] is True and kept.info.trained_on == data.n_points == 1000
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the Ray task trains
        try:
            here = refit(trained, data, trained.info.epoch)
        finally:
            torch.set_num_threads(threads)
        for name, weight in here.model.state_dict().items():
            assert torch.equal(kept.model.state_dict()[name], weight), name
        assert any(not torch.equal(kept.model.state_dict()[n], w)
                   for n, w in trained.model.state_dict().items())  # trained again, not copied


def test_two_trials_run_at_once_on_two_cpus(sine_search):
    _, outcome = sine_search
    trials = outcome.trials.sort_values("start_time")
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["max_concurrent"] == 2
    first, second = trials.iloc[0], trials.iloc[1]
    # the first two trials start together, not one after the other
    assert second["start_time"] < first["end_time"]


def test_logical_gpu_shares_run_four_trials_at_once_on_cpu(tmp_path):
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False)
    try:
        _, outcome = small_search(
            tmp_path, "gpu-share", gpus_per_trial=0.25, trials=4, scheduler="fifo", max_epochs=2,
            **TRIALS_ONLY,
        )
    finally:
        ray.shutdown()
    trials = outcome.trials
    assert len(trials) == 4 and (trials["status"] == "completed").all()
    assert (trials["gpu_share"] == 0.25).all()
    assert (trials["device"] == "cpu").all()  # torch sees no CUDA here: falls back to CPU
    latest_start, earliest_end = trials["start_time"].max(), trials["end_time"].min()
    assert latest_start < earliest_end, "all four trials should overlap in time"


def _faulty_trainable(config, plan):
    import dataclasses

    from tests.model.test_training import exploding
    from tunecast.search.trainable import train_trial

    if config["batch_size"] == 64:
        raise RuntimeError("injected fault: batch_size 64 is cursed")
    if config["lr"] == DIVERGING_LR:  # this trial trains on values that overflow: it really diverges
        plan = dataclasses.replace(plan, data=exploding(plan.data))
    train_trial(config, plan)


DIVERGING_LR = 0.004


def test_failed_and_diverged_trials_are_recorded_and_search_goes_on(tmp_path):
    from tunecast.search.config import SearchConfig
    from tunecast.search.plan import make_plan
    from tunecast.search.run import execute

    space = {
        "hidden_size": 8,
        "num_layers": 1,
        "window": 8,
        "batch_size": [32, 64],
        "lr": [0.003, DIVERGING_LR],
        "dropout": 0.0,
        "scaler": "standard",
        "loss": "mse",  # squared errors of the exploding values overflow: the trial diverges
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
            "seed": 3,
            "ensemble": 1,
            **TRIALS_ONLY,
        }
    )
    outcome = execute(make_plan(config), trainable=_faulty_trainable)
    assert not (outcome.path / "ensemble").exists() and outcome.ensemble is None  # --ensemble 1
    trials = outcome.trials
    assert len(trials) == 8
    failed = trials[trials["status"] == "failed"]
    injected = failed[failed["error"].str.contains("injected fault")]
    diverged = failed[failed["error"].str.contains("diverged")]
    assert len(injected) == (trials["config/batch_size"] == 64).sum() > 0
    assert len(diverged) > 0 and (diverged["config/lr"] == DIVERGING_LR).all()
    ok = trials[trials["status"] == "completed"]
    assert len(ok) > 0 and (ok["config/lr"] == 0.003).all()
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["status"] == "completed"
    assert state["best_trial_id"] in set(ok["trial_id"])


def test_time_budget_stops_starting_trials(tmp_path):
    """A time budget ends a search that could not finish within it at any speed (10,000 trials):
    trials stop starting, none is left pending or running, and the search is not resumable. It
    completed if a trial reported a validation loss in time and failed if none did (on a busy
    machine, possible), so what is asserted holds however fast or slow the machine is."""
    _, outcome = small_search(tmp_path, "budget", trials=10_000, max_epochs=3, time_budget_s=20,
                              scheduler="fifo", **TRIALS_ONLY)
    trials = outcome.trials
    assert 0 < len(trials) < 10_000  # Tune creates the first trials before its budget's clock starts
    assert not trials["status"].isin(["running", "pending"]).any()
    scored = trials.loc[trials["best_val_loss"].notna(), "trial_id"]
    assert outcome.status == ("completed" if len(scored) else "failed")
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert state["status"] == outcome.status and state["ended_at"] is not None
    assert state["best_trial_id"] == (outcome.best.trial_id if outcome.best else None)
    assert (state["best_trial_id"] in set(scored)) == bool(len(scored))


def test_ensemble_leaves_out_trials_far_worse_than_the_best(tmp_path):
    """Members: the k best finished trials with a checkpoint, none worse than 2x the best."""
    losses = {"a": 0.30, "b": 0.10, "c": 0.19, "d": 0.21, "e": 0.12, "f": 0.05}
    statuses = {"a": "completed", "b": "stopped", "c": "completed", "d": "completed",
                "e": "failed", "f": "completed"}
    records = [TrialRecord(trial_id, statuses[trial_id], {}, pd.DataFrame(), "",
                           None if trial_id == "f" else tmp_path / trial_id) for trial_id in losses]
    trials = pd.DataFrame({"trial_id": list(losses), "status": list(statuses.values()),
                           "best_val_loss": list(losses.values())})
    members = [r.trial_id for r in ensemble_members(trials, records, k=5)]
    # f has no checkpoint and e failed; d (0.21) is more than twice b's 0.10, c (0.19) is not
    assert members == ["b", "c"]
    assert [r.trial_id for r in ensemble_members(trials, records, k=1)] == ["b"]
