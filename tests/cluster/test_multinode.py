"""Searches across two Ray nodes on one machine: placement, GPU shares, node loss."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import TRIALS_ONLY, small_search
from tests.tables import read_table

pytestmark = pytest.mark.slow


def test_trials_are_placed_on_both_nodes(two_nodes, tmp_path):
    cluster, worker = two_nodes
    _, outcome = small_search(tmp_path, "two-nodes", trials=8, scheduler="fifo", max_epochs=2, **TRIALS_ONLY)
    trials = outcome.trials
    assert len(trials) == 8 and (trials["status"] == "completed").all()
    per_node = trials["node_id"].value_counts()
    print(f"trials per node: {per_node.to_dict()}")
    assert set(per_node.index) == {cluster.head_node.node_id, worker.node_id}, per_node
    state = json.loads((outcome.path / "tunecast.json").read_text())
    assert len(state["cluster"]["nodes"]) == 2 and state["max_concurrent"] == 4


def test_gpu_shares_run_eight_trials_at_once_on_two_nodes(two_nodes, tmp_path):
    _, outcome = small_search(
        tmp_path, "eight", trials=8, gpus_per_trial=0.25, cpus_per_trial=0.5, scheduler="fifo", max_epochs=3,
        **TRIALS_ONLY,
    )
    trials = outcome.trials
    assert (trials["status"] == "completed").all() and (trials["device"] == "cpu").all()
    assert trials["node_id"].nunique() == 2
    assert trials["start_time"].max() < trials["end_time"].min(), "all eight should overlap"


def _running_on(exp: Path, node_id: str) -> bool:
    """Whether a trial on ``node_id`` has reported (its first epoch, with a checkpoint) and not
    yet its last epoch: it is mid-training there (a trial reports its first epoch at once, then
    at most one epoch per few seconds, see search.trainable)."""
    for result in exp.glob("train_trial_*/result.json"):
        lines = result.read_text().splitlines()
        if lines and json.loads(lines[-1]).get("node_id") == node_id:
            last = json.loads(lines[-1])
            if last.get("last_epoch") == 0 and any(result.parent.glob("checkpoint_*")):
                return True
    return False


def test_node_loss_retries_trials_and_search_finishes(two_nodes, tmp_path):
    cluster, worker = two_nodes
    exp = tmp_path / "node-loss"
    killed = threading.Event()

    def kill_worker_when_busy() -> None:
        deadline = time.time() + 180
        while time.time() < deadline:
            if _running_on(exp, worker.node_id):
                cluster.remove_node(worker, allow_graceful=False)
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_worker_when_busy, daemon=True)
    killer.start()
    _, outcome = small_search(
        tmp_path, "node-loss", trials=6, scheduler="fifo", max_epochs=25, max_failures=2, max_concurrent=4,
        **TRIALS_ONLY,
    )
    killer.join(timeout=5)
    assert killed.is_set(), "the second node was never busy"
    trials = outcome.trials
    assert len(trials) == 6
    assert (trials["status"] == "completed").all(), trials[["trial_id", "status", "error"]]
    retried = trials[trials["restarts"] > 0]
    assert len(retried) >= 1, trials[["trial_id", "status", "epochs_run", "restarts", "node_id"]]
    history = read_table(outcome.path / "history.csv")
    for _, trial in trials.iterrows():  # one row per epoch, even for retried trials
        epochs = history.loc[history["trial_id"] == trial["trial_id"], "epoch"]
        assert list(epochs) == list(range(1, len(epochs) + 1))
    from tunecast.reports import render_report

    report = render_report(outcome.path).read_text()
    assert "were retried" in report and "retries" in report  # the report shows what happened
