"""The report of a real (small) search run in this test session.

``sine_experiment`` is a session-scoped fixture in tests/conftest.py that runs a real local
search and returns its experiment directory.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import collect, render_report
from reports.figures import attention_info, forecast_info
from reports.search_figures import history_info, learning_curves_info
from reports.summary import verdict
from reports.timeline import timeline_info
from tests.conftest import small_search

pytestmark = pytest.mark.slow


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def test_collect_on_a_real_search(sine_experiment: Path) -> None:
    exp = collect(sine_experiment)
    trials = pd.read_csv(sine_experiment / "trials.csv", dtype={"trial_id": str})
    assert len(exp.trials) == len(trials) == sum(exp.counts.values())
    assert exp.run.status == "completed"
    assert exp.best is not None and exp.best.trial_id == exp.run.best_trial_id
    assert exp.best.trial_id in set(exp.trials["trial_id"])
    # Every trial with reported epochs has a curve as long as trials.csv says.
    curves = {c.trial_id: c for c in learning_curves_info(exp).curves}
    for _, trial in exp.trials.iterrows():
        if trial["epochs_run"] > 0:
            assert len(curves[trial["trial_id"]].epochs) == trial["epochs_run"]
    # The best trial's arrays agree with each other and with its config.
    best = exp.best
    window, horizon = int(best.train_config["window"]), best.horizon
    n_forecasts = int(best.predictions["y_pred"].notna().sum())
    assert n_forecasts == best.n_test_points
    assert best.attention.shape == (n_forecasts // horizon, window)
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, atol=1e-3)
    assert attention_info(best).rows_sum_to_one
    forecast = forecast_info(best)
    assert sum(len(x) for x, _ in forecast.blocks) == n_forecasts
    assert np.all(np.diff(history_info(exp).best_so_far) <= 0)
    assert len(timeline_info(exp).bars) == int(exp.trials["end_time"].notna().sum())


def test_render_report_on_a_real_search(sine_experiment: Path, tmp_path: Path) -> None:
    out = render_report(sine_experiment, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    images = _Images()
    images.feed(html)
    assert len(images.sources) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in images.sources)
    assert verdict(collect(sine_experiment)).text.split(" on test")[0] in html
    assert out.stat().st_size < 5_000_000


def test_collect_reads_a_real_ensemble(tmp_path: Path) -> None:
    """A real search built so that its ensemble is known in advance: every trial trains the same
    network with the same seed (only ``patience`` is tuned, and 3 epochs never reach it), FIFO
    stops none early, so all 3 trials end with the same val_loss, within the search's 2x rule:
    ensemble/ holds all three."""
    fixed = {"hidden_size": 8, "num_layers": 1, "window": 8, "lr": 0.01, "batch_size": 32,
             "dropout": 0.0, "scaler": "standard", "highway": True}
    _, outcome = small_search(tmp_path, "known-ensemble", trials=3, ensemble=3, scheduler="fifo",
                              train=fixed, space={"patience": {"low": 5, "high": 9}})
    exp = collect(outcome.path)
    ensemble, best = exp.ensemble, exp.best
    assert exp.counts["completed"] == 3 and best is not None
    losses = exp.finished["best_val_loss"]
    assert losses.max() <= 2.0 * losses.min()  # the search's rule keeps every trial
    assert ensemble is not None and (outcome.path / "ensemble").is_dir()
    assert not any("ensemble" in w for w in exp.warnings)
    assert ensemble.k == 3 and sorted(ensemble.trial_ids) == sorted(exp.trials["trial_id"])
    assert ensemble.trial_ids[0] == best.trial_id
    assert [m.val_loss for m in ensemble.members] == sorted(m.val_loss for m in ensemble.members)
    assert ensemble.n_test_points == best.n_test_points
    np.testing.assert_allclose(ensemble.predictions["y_true"], best.predictions["y_true"])
    assert sum(len(x) for x, _ in forecast_info(best, ensemble).ensemble_blocks) == ensemble.n_test_points
    assert "Top-3 ensemble: test" in verdict(exp).text
