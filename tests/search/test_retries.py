"""Retries are for crashes and lost nodes: a diverged trial is failed at once, never retried."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRIALS_ONLY

pytestmark = pytest.mark.slow
CRASHING_LR, DIVERGING_LR = 0.003, 0.004


def counting_trainable(attempts: Path) -> Callable[..., None]:
    """The real trainable, counting each trial's attempts in ``attempts/<trial id>``: a trial
    with ``DIVERGING_LR`` trains on overflowing values (it really diverges); the first attempt
    of a trial with ``CRASHING_LR`` dies before training (as on a node that is lost)."""

    def trainable(config: dict[str, Any], plan: Any) -> None:
        from ray import tune

        from tests.model.test_training import exploding
        from tunecast.search.trainable import train_trial

        mark = attempts / tune.get_context().get_trial_id()
        with mark.open("a") as log:
            log.write("attempt\n")
        if config["lr"] == CRASHING_LR and len(mark.read_text().splitlines()) == 1:
            raise RuntimeError("injected crash: this trial's first attempt dies")
        if config["lr"] == DIVERGING_LR:
            plan = dataclasses.replace(plan, data=exploding(plan.data))
        train_trial(config, plan)

    return trainable


def test_a_diverged_trial_is_not_retried_and_a_crashed_one_is(tmp_path):
    from tunecast.search.config import SearchConfig
    from tunecast.search.plan import make_plan
    from tunecast.search.run import execute

    space = {"hidden_size": 8, "num_layers": 1, "window": 8, "batch_size": 32,
             "lr": [CRASHING_LR, DIVERGING_LR], "dropout": 0.0, "scaler": "standard"}
    config = SearchConfig.from_dict({
        "data": {"source": "sine"}, "name": "retries", "storage": str(tmp_path), "trials": 4,
        "max_epochs": 3, "scheduler": "fifo", "space": space, "verbose": 0, "ensemble": 1,
        "max_failures": 1,  # one retry per trial, as on a cluster
        **TRIALS_ONLY,
    })
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    outcome = execute(make_plan(config), trainable=counting_trainable(attempts))
    trials = outcome.trials.assign(attempts=lambda t: [
        len((attempts / str(trial_id)).read_text().splitlines()) for trial_id in t["trial_id"]])
    diverged = trials[trials["config/lr"] == DIVERGING_LR]
    crashed = trials[trials["config/lr"] == CRASHING_LR]
    assert len(diverged) and len(crashed), trials[["trial_id", "config/lr"]]
    assert (diverged["status"] == "failed").all() and (diverged["attempts"] == 1).all(), diverged
    why = r"training diverged \(NaN/inf loss\) at epoch \d+ with lr=0.004"
    assert diverged["error"].str.fullmatch(why).all(), diverged["error"]
    assert (diverged["restarts"] == 0).all()
    assert (crashed["status"] == "completed").all() and (crashed["attempts"] == 2).all(), crashed
    assert (crashed["error"].fillna("") == "").all() and (crashed["epochs_run"] == 3).all()
    assert outcome.status == "completed" and outcome.best is not None
    assert outcome.best.trial_id in set(crashed["trial_id"])
