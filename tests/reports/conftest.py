"""Fixtures for the report tests: experiment directories written by the search's own writers.

``make_fixture_experiment`` lives in ``tests/reports/fixtures.py`` so that the benchmark can use
it too.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reports.fixtures import XSS_IMG, XSS_SCRIPT, make_fixture_experiment


@pytest.fixture(scope="session")
def _written(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Each distinct fixture experiment is written once per session (through the real writers)."""
    cache: dict[tuple[tuple[str, Any], ...], Path] = {}
    root = tmp_path_factory.mktemp("fixture-experiments")

    def written(**kwargs: Any) -> Path:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
        if key not in cache:
            cache[key] = make_fixture_experiment(root / f"exp{len(cache)}", **kwargs)
        return cache[key]

    return written


@pytest.fixture
def make_exp(tmp_path: Path, _written: Callable[..., Path]) -> Callable[..., Path]:
    """Factory: ``make_exp(name="x", **kwargs)``: a fixture experiment under tmp_path (a copy of
    the one written for these arguments, so a test may change its files)."""
    counter = iter(range(1000))

    def make(dirname: str | None = None, **kwargs: Any) -> Path:
        target = tmp_path / (dirname or f"exp{next(counter)}")
        shutil.copytree(_written(**kwargs), target)
        return target

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


@pytest.fixture
def exp_panel(make_exp: Callable[..., Path]) -> Path:
    """A panel of 6 series (ids S00..S05, scales 1 to 1000), horizon 3, 4 trials (2 finished:
    best/ and a top-2 ensemble/)."""
    return make_exp("panel", n_trials=4, horizon=3, n_series=6, ensemble=2)


@pytest.fixture
def exp_cmb(make_exp: Callable[..., Path]) -> Path:
    """As exp_h1, written as a search of today writes it: combined/ (the best trial with AutoETS
    and AutoARIMA fitted on the training part) and the selection in tunecast.json."""
    return make_exp("cmb", n_trials=8, horizon=1, combine=True)


@pytest.fixture
def exp_ens_cmb(make_exp: Callable[..., Path]) -> Path:
    """As exp_ens, with combined/ (the top-5 ensemble with AutoETS and AutoARIMA) and the selection."""
    return make_exp("ens-cmb", n_trials=8, horizon=1, ensemble=5, combine=True)
