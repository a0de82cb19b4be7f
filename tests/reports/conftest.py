"""Fixtures for the report tests: experiment directories written by the search's own writers.

``make_fixture_experiment`` lives in ``tests/reports/fixtures.py`` so that the benchmark can use
it too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reports.fixtures import XSS_IMG, XSS_SCRIPT, make_fixture_experiment


@pytest.fixture
def make_exp(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_exp(name="x", **kwargs)`` writes a fixture experiment under tmp_path."""
    counter = iter(range(1000))

    def make(dirname: str | None = None, **kwargs: Any) -> Path:
        return make_fixture_experiment(tmp_path / (dirname or f"exp{next(counter)}"), **kwargs)

    return make


@pytest.fixture
def exp_h1(make_exp: Callable[..., Path]) -> Path:
    """8 trials, horizon 1: 5 completed, 2 stopped by ASHA, 1 failed."""
    return make_exp("h1", n_trials=8, horizon=1)


@pytest.fixture
def exp_ens(make_exp: Callable[..., Path]) -> Path:
    """As exp_h1, plus ensemble/: the mean forecast of the 5 finished trials with the lowest
    val_loss (the 5 completed ones; the 2 stopped by ASHA are worse)."""
    return make_exp("ens", n_trials=8, horizon=1, ensemble=5)


@pytest.fixture
def exp_h3(make_exp: Callable[..., Path]) -> Path:
    """8 trials, horizon 3 (forecasts in blocks of 3)."""
    return make_exp("h3", n_trials=8, horizon=3)


@pytest.fixture
def exp_interrupted(make_exp: Callable[..., Path]) -> Path:
    """An interrupted search: no best/, trials still running or pending (the pending one has no
    config), and importance.json over its 3 finished trials."""
    statuses = ["completed", "stopped", "failed", "completed", "running", "running", "pending"]
    return make_exp("interrupted", n_trials=len(statuses), statuses=statuses, run_status="interrupted")


@pytest.fixture
def exp_all_failed(make_exp: Callable[..., Path]) -> Path:
    """A completed search whose every trial failed: no best trial."""
    return make_exp("all-failed", n_trials=4, statuses=["failed"] * 4)


@pytest.fixture
def exp_xss(make_exp: Callable[..., Path]) -> Path:
    """Both injection payloads in the experiment name, the target column and an error message."""
    return make_exp(
        "xss",
        n_trials=8,
        name=f"exp {XSS_SCRIPT} {XSS_IMG}",
        target=f"col{XSS_IMG}{XSS_SCRIPT}",
        error_message=f"ValueError: bad value {XSS_SCRIPT} {XSS_IMG}",
    )
