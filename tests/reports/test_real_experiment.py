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

from tests.tables import read_table
from tunecast.reports import collect, render_report
from tunecast.reports.figures import attention_info, forecast_info
from tunecast.reports.search_figures import history_info, learning_curves_info
from tunecast.reports.summary import verdict
from tunecast.reports.timeline import timeline_info

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
    trials = read_table(sine_experiment / "trials.csv")
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


def test_collect_reads_a_real_ensemble(ensemble_search) -> None:
    """The session's ensemble search (alike trials: its ensemble always has 2 or 3 members)."""
    config, outcome = ensemble_search
    exp = collect(outcome.path)
    ensemble, best = exp.ensemble, exp.best
    finished = exp.finished.sort_values("best_val_loss", kind="stable")
    top = finished.head(config.ensemble)
    expected = list(top.loc[top["best_val_loss"] <= 2.0 * top["best_val_loss"].iloc[0], "trial_id"])
    assert best is not None and ensemble is not None and len(expected) >= 2
    assert not any("ensemble" in w for w in exp.warnings)
    assert ensemble.trial_ids == expected and ensemble.k == len(expected)
    assert ensemble.trial_ids[0] == best.trial_id
    assert [m.val_loss for m in ensemble.members] == sorted(m.val_loss for m in ensemble.members)
    assert ensemble.n_test_points == best.n_test_points
    np.testing.assert_allclose(ensemble.predictions["y_true"], best.predictions["y_true"])
    assert sum(len(x) for x, _ in forecast_info(best, ensemble).ensemble_blocks) == ensemble.n_test_points
    assert f"Top-{ensemble.k} ensemble: test" in verdict(exp).text


def test_the_forecast_past_the_data_is_shown(sine_experiment: Path, tmp_path: Path) -> None:
    from tunecast.reports import ReportError
    from tunecast.reports.figures import make_figures
    from tunecast.reports.future import future_info

    exp = collect(sine_experiment)
    info = future_info(exp)
    assert exp.future is not None and info is not None
    frame = pd.read_csv(sine_experiment / "forecast/forecast.csv")
    np.testing.assert_allclose(info.forecast, frame["forecast"])
    assert info.x_future[0] == info.x_history[-1] + 1 == 1000  # right after the last observed point
    lower, upper = info.intervals[95.0]
    assert np.all(lower <= info.forecast) and np.all(info.forecast <= upper)
    assert list(info.intervals) == [95.0, 80.0]  # widest drawn first
    figure = next(f for f in make_figures(exp) if f.key == "future")
    assert "Test coverage when calibrated on validation only: 80%:" in figure.caption
    # a forecast whose record is broken stops the report with the file named
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(sine_experiment, copy)
    (copy / "forecast/metrics.json").write_text('{"chosen": "best"}')
    with pytest.raises(ReportError, match=r"forecast/metrics.json lacks or mistypes"):
        collect(copy)
    (copy / "forecast/metrics.json").unlink()  # an incomplete forecast/ is only a note
    assert any("forecast/ is incomplete" in note for note in collect(copy).warnings)


def test_collect_reads_a_real_combination(sine_search, ensemble_search) -> None:
    """The session's searches wrote combined/ (a single series has the candidate by default): the
    report reads it, names it in the verdict, and says what the search forecasts with."""
    from tunecast.reports.summary import choice_name

    for config, outcome in (sine_search, ensemble_search):
        exp = collect(outcome.path)
        combined, best = exp.combined, exp.best
        assert config.combine and outcome.combined is not None
        assert combined is not None and best is not None
        assert not any("combin" in w for w in exp.warnings), exp.warnings
        expected = exp.ensemble.trial_ids if exp.ensemble is not None else [best.trial_id]
        assert list(combined.networks) == list(outcome.combined.networks) == expected
        assert combined.statistical == outcome.combined.statistical
        assert combined.test_metrics["model"] == pytest.approx(outcome.combined.scores.test["model"])
        assert combined.n_test_points == best.n_test_points
        np.testing.assert_allclose(combined.predictions["y_true"], best.predictions["y_true"])
        selection = exp.run.selection
        assert selection is not None and selection.val_loss["combined"] == pytest.approx(combined.val_loss)
        text = verdict(exp).text
        assert f"{exp.combined_networks[:1].upper()}{exp.combined_networks[1:]} combined with " in text
        if selection.chosen in ("ensemble", "combined"):
            chosen = choice_name(exp, selection.chosen)
            assert text.startswith(f"The search forecasts with {chosen}, chosen on validation: ")
        elif selection.chosen != "best":
            assert text.startswith("No trained model beat ")
        else:
            assert text.startswith("Best trial ")


def test_the_forecast_of_the_combination_is_named(sine_experiment: Path, tmp_path: Path) -> None:
    """forecast/ made by the combination: the figure's caption names it and how it was fitted."""
    import json
    import shutil

    from tunecast.reports.future import future_figure

    copy = tmp_path / "copy"
    shutil.copytree(sine_experiment, copy)
    file = copy / "forecast" / "metrics.json"
    record = json.loads(file.read_text())
    file.write_text(json.dumps({**record, "chosen": "combined", "refit": False}))
    figure = future_figure(collect(copy))
    assert figure is not None
    assert ("forecast by the networks combined with AutoETS and AutoARIMA (chosen on validation), the "
            "networks with the search's weights, the statistical models fitted on the training part."
            ) in figure.caption
    file.write_text(json.dumps({**record, "chosen": "combined", "refit": True}))
    figure = future_figure(collect(copy))
    assert figure is not None
    assert "AutoARIMA (chosen on validation), every model refitted on every observed point." in figure.caption
