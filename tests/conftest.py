"""Shared fixtures: a real small search on the sine data, run once per test session."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

# Ray's token authentication stays on, with one token shared by every driver, node, job and
# subprocess of the test session (set before anything imports ray, which caches the mode); a
# local ray.init() then neither writes ~/.ray/auth_token nor disagrees with a `ray start` node.
# This is the cluster's side: the client commands a user runs (`tunecast submit`) are tested in
# subprocesses whose environment has no RAY_AUTH_* variable (tests/cluster/test_job.py).
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

SMALL_SPACE = {
    "hidden_size": {"low": 8, "high": 16},
    "num_layers": 1,
    "window": {"low": 8, "high": 16},
    "batch_size": [32, 64],
}


# What a search does after its trials (the combination, earlier validation origins, forecast/) is
# tested on its own; searches that test something else leave it out: these settings, or the same
# as command-line options.
TRIALS_ONLY = {"combine": False, "origins": 0, "forecast": False}
TRIALS_ONLY_ARGS = ("--no-combine", "--origins", "0", "--no-forecast")


def small_search(tmp: Path, name: str, **overrides):
    """A real 4-trial search on the sine data; returns (SearchConfig, SearchOutcome)."""
    from tunecast.search.config import SearchConfig
    from tunecast.search.run import run_search

    settings = {
        "data": {"source": "sine"},
        "name": name,
        "storage": str(tmp),
        "trials": 4,
        "max_epochs": 3,
        "grace_period": 1,
        "space": SMALL_SPACE,
        "verbose": 0,
        **overrides,
    }
    config = SearchConfig.from_dict(settings)
    return config, run_search(config)


@pytest.fixture(scope="session")
def sine_search(tmp_path_factory):
    """(config, outcome) of a finished real search (4 trials, 3 epochs) on the sine data."""
    return small_search(tmp_path_factory.mktemp("runs"), "sine-session")


@pytest.fixture(scope="session")
def sine_experiment(sine_search) -> Path:
    """Path of a finished real experiment directory."""
    return sine_search[1].path


ENSEMBLE_SPACE = {"hidden_size": 16, "num_layers": 1, "window": {"low": 10, "high": 14}, "batch_size": 32,
                  "lr": {"low": 0.003, "high": 0.005}, "dropout": 0.0, "scaler": "standard",
                  "highway": False}


@pytest.fixture(scope="session")
def ensemble_search(tmp_path_factory):
    """(config, outcome) of a real search whose trials are alike (4 trials of one small network,
    FIFO, lr 0.003-0.005), so that their val_losses lie within the ensemble's 2x rule: its
    ensemble/ always has at least two members. 10 epochs, so that the networks beat naive at
    every validation origin and are chosen; with ``refit: true`` forecast/ refits them on every
    point, on Ray."""
    return small_search(tmp_path_factory.mktemp("runs"), "ensemble", trials=4, max_epochs=10,
                        scheduler="fifo", space=ENSEMBLE_SPACE, ensemble=3, refit=True)
