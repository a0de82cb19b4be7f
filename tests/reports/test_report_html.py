"""render_report(): the summary, banners, tables and the file it writes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

import tunecast.expdir.files
from tunecast.reports import ReportError, collect, render_report
from tunecast.reports.summary import banners, number_text, verdict


class _Page(HTMLParser):
    """Collect tags, their attributes and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _set_metrics(path: Path, model_mase: float, naive: float, seasonal: float) -> None:
    file = path / "best" / "metrics.json"
    metrics = json.loads(file.read_text())
    for name, value in (("model", model_mase), ("naive", naive), ("seasonal_naive", seasonal)):
        metrics["test"][name]["mase"] = value
    file.write_text(json.dumps(metrics))


def test_verdict_beats_both_baselines(exp_h1: Path) -> None:
    _set_metrics(exp_h1, 0.62, 1.2, 1.0)
    result = verdict(collect(exp_h1))
    assert result.good is True
    assert result.text == (
        "Best trial beats seasonal-naive (0.62 vs 1.00) and naive (0.62 vs 1.20) on test MASE."
    )


def test_verdict_does_not_beat_seasonal_naive(exp_h1: Path) -> None:
    _set_metrics(exp_h1, 1.1, 1.3, 1.0)
    result = verdict(collect(exp_h1))
    assert result.good is False
    assert result.text == (
        "Best trial does NOT beat seasonal-naive (1.10 vs 1.00) on test MASE; it beats naive (1.10 vs 1.30)."
    )


def test_verdict_without_a_model(exp_all_failed: Path) -> None:
    result = verdict(collect(exp_all_failed))
    assert result.good is None and "No trial finished" in result.text


def test_banners_for_an_interrupted_search(exp_interrupted: Path) -> None:
    texts = [(b.level, b.text) for b in banners(collect(exp_interrupted))]
    assert ("error", "This search was interrupted: the report covers 7 of 7 planned trials.") in texts
    assert any(level == "warning" and "1 of 7 trials failed" in t for level, t in texts)
    assert any(level == "warning" and "3 trials never finished" in t for level, t in texts)


def test_report_is_written_into_the_experiment_by_default(exp_h1: Path) -> None:
    out = render_report(exp_h1)
    assert out == exp_h1 / "report.html"
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    text = " ".join(page.text)
    assert verdict(collect(exp_h1)).text in text
    for heading in (
        "Summary",
        "Learning curves",
        "Optimisation history",
        "Timeline of trials",
        "All trials (8)",
        "Failed trials (1)",
        "Settings and versions",
    ):
        assert heading in text, heading
    assert "PedAnovaImportanceEvaluator" in text  # the importance evaluator is named
    assert "RuntimeError: loss diverged to nan at epoch 2" in text
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 7
    assert all((a.get("src") or "").startswith("data:image/png;base64,") for a in images)
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert [p.name for p in exp_h1.iterdir() if p.name.endswith(".tmp")] == []


def test_report_lists_every_trial_in_the_table(exp_h1: Path) -> None:
    page = parse(render_report(exp_h1).read_text())
    rows = [a for tag, a in page.tags if tag == "tr" and (a.get("class") or "").startswith("row-")]
    assert [r["class"] for r in rows] == [f"row-{s}" for s in collect(exp_h1).trials["status"]]


def test_report_to_another_file(exp_h3: Path, tmp_path: Path) -> None:
    out = render_report(exp_h3, tmp_path / "elsewhere.html")
    assert out.is_file() and not (exp_h3 / "report.html").exists()
    assert "non-overlapping blocks of 3" in out.read_text()


def test_report_of_an_interrupted_search_says_so(exp_interrupted: Path) -> None:
    text = " ".join(parse(render_report(exp_interrupted).read_text()).text)
    assert "This search was interrupted" in text
    assert "no test verdict" in text
    assert "running (interrupted)" in text and "pending (never ran)" in text


def test_report_when_every_trial_failed(exp_all_failed: Path) -> None:
    html = render_report(exp_all_failed).read_text()
    text = " ".join(parse(html).text)
    assert "No trial finished" in text and "Failed trials (4)" in text
    assert "needs at least 3 finished trials" in text  # importance note instead of a crash


def test_report_with_few_trials_notes_missing_importances(make_exp: Callable[..., Path]) -> None:
    path = make_exp(n_trials=2, statuses=["completed", "completed"])
    text = " ".join(parse(render_report(path).read_text()).text)
    assert "Not computed (PedAnovaImportanceEvaluator): needs at least 3 finished trials" in text


def test_report_without_importance_json_says_why(exp_h1: Path) -> None:
    (exp_h1 / "importance.json").unlink()
    text = " ".join(parse(render_report(exp_h1).read_text()).text)
    assert "the search stopped before it computed them (no importance.json)" in text
    assert "Best trial" in text


def test_a_failed_write_keeps_the_old_report(exp_h1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = render_report(exp_h1).read_text()

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tunecast.expdir.files.os, "replace", fail)  # the report is written atomically
    with pytest.raises(ReportError, match="No space left on device"):
        render_report(exp_h1)
    assert (exp_h1 / "report.html").read_text() == previous  # the old report is untouched
    assert [p.name for p in exp_h1.iterdir() if p.name.endswith(".tmp")] == []


def test_render_report_rejects_a_missing_output_folder(exp_h1: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"output folder .* does not exist"):
        render_report(exp_h1, tmp_path / "missing" / "report.html")


def test_report_of_a_search_that_stopped_before_any_trial(exp_interrupted: Path) -> None:
    (exp_interrupted / "trials.csv").unlink()
    (exp_interrupted / "history.csv").unlink()
    page = parse(render_report(exp_interrupted).read_text())
    text = " ".join(page.text)
    assert "This search was interrupted: the report covers 0 of 7 planned trials." in text
    assert "No trials were recorded." in text
    assert [tag for tag, _ in page.tags if tag == "img"] == []


class _MetricsTable(HTMLParser):
    """The rows of the test-metrics table: (data-forecaster, row label, [(cell text, class)])."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, str, list[tuple[str, str]]]] = []
        self._in_table = False
        self._cell: str | None = None  # "th" or "td" while inside one
        self._class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("class") == "metrics":
            self._in_table = True
        elif self._in_table and tag == "tr" and "data-forecaster" in attributes:
            self.rows.append((attributes["data-forecaster"] or "", "", []))
        elif self._in_table and self.rows and tag in ("th", "td"):
            self._cell, self._class = tag, attributes.get("class") or ""
            if tag == "td":
                self.rows[-1][2].append(("", self._class))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        if tag in ("th", "td"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self._in_table or not self.rows or self._cell is None:
            return
        key, label, cells = self.rows[-1]
        if self._cell == "th":
            self.rows[-1] = (key, label + data, cells)
        else:
            text, css = cells[-1]
            cells[-1] = (text + data, css)


def metrics_table(html: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    table = _MetricsTable()
    table.feed(html)
    return table.rows


def _set_ensemble_mase(path: Path, value: float) -> None:
    """The ensemble's test MASE, with the baselines of best/metrics.json (as a search writes)."""
    file = path / "ensemble" / "metrics.json"
    metrics = json.loads(file.read_text())
    best = json.loads((path / "best" / "metrics.json").read_text())
    metrics["test"].update(model={**metrics["test"]["model"], "mase": value},
                           naive=best["test"]["naive"], seasonal_naive=best["test"]["seasonal_naive"])
    file.write_text(json.dumps(metrics))


def test_verdict_names_a_better_ensemble(exp_ens: Path) -> None:
    _set_metrics(exp_ens, 0.55, 1.6, 1.4)
    _set_ensemble_mase(exp_ens, 0.49)
    result = verdict(collect(exp_ens))
    assert result.good is True
    assert result.text == (
        "Best trial beats seasonal-naive (0.55 vs 1.40) and naive (0.55 vs 1.60) on test MASE. "
        "Top-5 ensemble: test MASE 0.49, better than the best trial's 0.55; it beats both baselines."
    )


def test_verdict_says_when_the_ensemble_is_worse(exp_ens: Path) -> None:
    """A worse ensemble is reported as worse, and its misses are named; good is the best trial's."""
    _set_metrics(exp_ens, 0.90, 1.3, 1.0)
    _set_ensemble_mase(exp_ens, 1.2)
    result = verdict(collect(exp_ens))
    assert result.good is True
    assert result.text == (
        "Best trial beats seasonal-naive (0.90 vs 1.00) and naive (0.90 vs 1.30) on test MASE. "
        "Top-5 ensemble: test MASE 1.20, worse than the best trial's 0.90; it does NOT beat "
        "seasonal-naive, but beats naive."
    )


def test_verdict_when_only_the_ensemble_beats_the_baselines(exp_ens: Path) -> None:
    _set_metrics(exp_ens, 1.1, 1.3, 1.0)
    _set_ensemble_mase(exp_ens, 0.8)
    result = verdict(collect(exp_ens))
    assert result.good is False  # the verdict is about the best trial; the ensemble is beside it
    assert result.text == (
        "Best trial does NOT beat seasonal-naive (1.10 vs 1.00) on test MASE; it beats naive (1.10 vs 1.30). "
        "Top-5 ensemble: test MASE 0.80, better than the best trial's 1.10; it beats both baselines."
    )


def test_report_shows_the_ensemble(exp_ens: Path) -> None:
    _set_metrics(exp_ens, 0.55, 1.6, 1.4)
    _set_ensemble_mase(exp_ens, 0.49)
    exp = collect(exp_ens)
    assert exp.ensemble is not None and exp.best is not None and exp.warnings == ()
    html = render_report(exp_ens).read_text(encoding="utf-8")
    text = " ".join(parse(html).text)
    # The verdict at the top carries both numbers.
    assert verdict(exp).text in text and "Top-5 ensemble: test MASE 0.49" in text
    # One row per forecaster: best trial, ensemble, then the baselines.
    rows = metrics_table(html)
    assert [key for key, _, _ in rows] == ["model", "ensemble", "naive", "seasonal_naive"]
    labels = {key: label.strip() for key, label, _ in rows}
    ids = ", ".join(exp.ensemble.trial_ids)
    assert labels["ensemble"] == f"top-5 ensemble (mean of trials {ids})"
    assert labels["model"] == f"best trial ({exp.best.trial_id})"
    cells = {key: [t.strip() for t, _ in c] for key, _, c in rows}
    ensemble_test = exp.ensemble.test_metrics["model"]
    assert cells["ensemble"] == [number_text(ensemble_test[m]) for m in ("mae", "rmse", "mase", "smape")]
    # The lowest MASE (column 3) is bold: the ensemble's 0.49.
    mase_winners = [key for key, _, c in rows if c[2][1] == "winner"]
    assert mase_winners == ["ensemble"]
    assert "its members were picked by val_loss only" in text
    # The ensemble adds a line to the forecast figure, not a figure.
    assert len([a for tag, a in parse(html).tags if tag == "img"]) == 7
    assert "Best trial and top-5 ensemble: forecasts against the truth" in text


def test_report_marks_the_best_trial_when_it_beats_the_ensemble(exp_ens: Path) -> None:
    _set_metrics(exp_ens, 0.55, 1.6, 1.4)
    _set_ensemble_mase(exp_ens, 0.70)
    rows = metrics_table(render_report(exp_ens).read_text())
    assert [key for key, _, c in rows if c[2][1] == "winner"] == ["model"]


def test_report_without_an_ensemble_has_no_ensemble_row(exp_h1: Path) -> None:
    html = render_report(exp_h1).read_text()
    rows = metrics_table(html)
    assert [key for key, _, _ in rows] == ["model", "naive", "seasonal_naive"]
    text = " ".join(parse(html).text)
    result = verdict(collect(exp_h1)).text
    assert result.startswith("Best trial ") and "Top-" not in result and result in text
    assert "picked by val_loss only" not in text and 'id="ensemble-note"' not in html
    assert "Best trial: forecasts against the truth" in text


def _set_combined_mase(path: Path, value: float) -> None:
    """The combination's test MASE, with the baselines of best/metrics.json (as a search writes)."""
    file = path / "combined" / "metrics.json"
    metrics = json.loads(file.read_text())
    best = json.loads((path / "best" / "metrics.json").read_text())
    metrics["test"].update(model={**metrics["test"]["model"], "mase": value},
                           naive=best["test"]["naive"], seasonal_naive=best["test"]["seasonal_naive"])
    file.write_text(json.dumps(metrics))


def _set_selection(path: Path, chosen: str, val_loss: dict[str, float | None],
                   earlier: dict[str, list[float | None]] | None = None) -> None:
    """tunecast.json's selection as the search writes it, with these validation losses (the
    fixture's synthetic val_loss of the best trial is not on the scale of the real ones)."""
    from tunecast.expdir.contract import CHOICES
    from tunecast.search.selection import select

    record = select({k: val_loss.get(k) for k in CHOICES}, earlier)
    assert chosen == record.chosen
    run = json.loads((path / "tunecast.json").read_text())
    run["selection"] = record.to_dict()
    (path / "tunecast.json").write_text(json.dumps(run))


def test_verdict_names_the_chosen_combination(exp_cmb: Path) -> None:
    """The search chose the combination: the verdict opens with it and its validation evidence,
    gives its test score beside the best trial's, and ``good`` is the combination's."""
    _set_metrics(exp_cmb, 1.1, 1.3, 1.0)
    _set_combined_mase(exp_cmb, 0.8)
    _set_selection(exp_cmb, "combined", {"best": 0.2, "combined": 0.15, "naive": 0.3, "seasonal_naive": 0.25})
    result = verdict(collect(exp_cmb))
    assert result.text == (
        "The search forecasts with the networks combined with AutoETS and AutoARIMA, chosen on validation: "
        "val_loss 0.15, against 0.2 for the best trial, 0.3 for naive and 0.25 for seasonal-naive. "
        "Best trial does NOT beat seasonal-naive (1.10 vs 1.00) on test MASE; it beats naive (1.10 vs 1.30). "
        "The best trial combined with AutoETS and AutoARIMA: test MASE 0.80, better than the best trial's "
        "1.10; it beats both baselines."
    )
    assert result.good is True  # what the search forecasts with beats both baselines on test


def test_verdict_of_a_chosen_combination_that_loses_on_test(exp_cmb: Path) -> None:
    """Chosen on validation over the earlier origins too, and worse than seasonal-naive on test:
    the verdict is not good, though the best trial beats both."""
    _set_metrics(exp_cmb, 0.9, 1.3, 1.0)
    _set_combined_mase(exp_cmb, 1.05)
    _set_selection(exp_cmb, "combined", {"best": 0.2, "combined": 0.15, "naive": 0.3, "seasonal_naive": 0.25},
                   earlier={"best": [0.3, 0.5], "combined": [0.2, 0.3], "naive": [0.4, 0.6],
                            "seasonal_naive": [0.5, 0.5]})
    result = verdict(collect(exp_cmb))
    assert result.good is False
    assert result.text.startswith(
        "The search forecasts with the networks combined with AutoETS and AutoARIMA, chosen on validation: "
        "mean val_loss over 3 origins 0.2167, against 0.3333 for the best trial, 0.4333 for naive and "
        "0.4167 for seasonal-naive. Best trial beats seasonal-naive (0.90 vs 1.00)")
    assert result.text.endswith(
        "The best trial combined with AutoETS and AutoARIMA: test MASE 1.05, worse than the best trial's "
        "0.90; it does NOT beat seasonal-naive, but beats naive.")


def test_verdict_names_the_chosen_ensemble(exp_ens_cmb: Path) -> None:
    _set_metrics(exp_ens_cmb, 0.55, 1.6, 1.4)
    _set_ensemble_mase(exp_ens_cmb, 0.49)
    _set_combined_mase(exp_ens_cmb, 0.52)
    _set_selection(exp_ens_cmb, "ensemble",
                   {"best": 0.2, "ensemble": 0.1, "combined": 0.12, "naive": 0.3, "seasonal_naive": None})
    result = verdict(collect(exp_ens_cmb))
    assert result.good is True
    assert result.text == (
        # beside an ensemble the best trial is not compared (tunecast.search.selection)
        "The search forecasts with the top-5 ensemble, chosen on validation: val_loss 0.1, against "
        "0.12 for the networks combined with AutoETS and AutoARIMA and 0.3 for naive. "
        "Best trial beats seasonal-naive (0.55 vs 1.40) and naive (0.55 vs 1.60) on test MASE. "
        "Top-5 ensemble: test MASE 0.49, better than the best trial's 0.55; it beats both baselines. "
        "The top-5 ensemble combined with AutoETS and AutoARIMA: test MASE 0.52, better than the best "
        "trial's 0.55; it beats both baselines."
    )


def test_verdict_when_the_best_trial_is_chosen_beside_a_combination(exp_cmb: Path) -> None:
    """The best trial chosen: no opening sentence; the combination is shown beside it."""
    _set_metrics(exp_cmb, 1.1, 1.3, 1.0)
    _set_combined_mase(exp_cmb, 0.8)
    assert collect(exp_cmb).run.selection.chosen == "best"  # type: ignore[union-attr]
    result = verdict(collect(exp_cmb))
    assert result.good is False  # the best trial's: the combination was not chosen
    assert result.text == (
        "Best trial does NOT beat seasonal-naive (1.10 vs 1.00) on test MASE; it beats naive (1.10 vs 1.30). "
        "The best trial combined with AutoETS and AutoARIMA: test MASE 0.80, better than the best trial's "
        "1.10; it beats both baselines."
    )


def test_verdict_when_a_baseline_beat_the_combination(exp_cmb: Path) -> None:
    _set_metrics(exp_cmb, 1.1, 1.3, 1.0)
    _set_combined_mase(exp_cmb, 0.95)
    _set_selection(exp_cmb, "seasonal_naive",
                   {"best": 0.2, "combined": 0.15, "naive": 0.3, "seasonal_naive": 0.1})
    result = verdict(collect(exp_cmb))
    assert result.good is False
    assert result.text.startswith(
        "No trained model beat seasonal-naive on validation (val_loss 0.1 vs 0.15): the search forecasts "
        "with seasonal-naive. Best trial does NOT beat")


def test_verdict_of_a_chosen_combination_whose_folder_is_gone(exp_cmb: Path) -> None:
    """The validation evidence is in tunecast.json; without combined/ there is no test sentence,
    and ``good`` falls back to the best trial's."""
    _set_metrics(exp_cmb, 0.62, 1.2, 1.0)
    _set_selection(exp_cmb, "combined", {"best": 0.2, "combined": 0.15, "naive": 0.3, "seasonal_naive": 0.25})
    for file in (exp_cmb / "combined").iterdir():
        file.unlink()
    (exp_cmb / "combined").rmdir()
    exp = collect(exp_cmb)
    result = verdict(exp)
    assert result.good is True
    assert result.text == (
        "The search forecasts with the networks combined with AutoETS and AutoARIMA, chosen on validation: "
        "val_loss 0.15, against 0.2 for the best trial, 0.3 for naive and 0.25 for seasonal-naive. "
        "Best trial beats seasonal-naive (0.62 vs 1.00) and naive (0.62 vs 1.20) on test MASE."
    )
    text = " ".join(parse(render_report(exp_cmb).read_text()).text)
    assert result.text in text and "but combined/ is missing" in text


def test_report_shows_the_combination(exp_cmb: Path) -> None:
    _set_metrics(exp_cmb, 1.1, 1.3, 1.0)
    _set_combined_mase(exp_cmb, 0.8)
    _set_selection(exp_cmb, "combined", {"best": 0.2, "combined": 0.15, "naive": 0.3, "seasonal_naive": 0.25})
    exp = collect(exp_cmb)
    assert exp.combined is not None and exp.best is not None and exp.warnings == ()
    html = render_report(exp_cmb).read_text(encoding="utf-8")
    text = " ".join(parse(html).text)
    assert verdict(exp).text in text
    # One row per forecaster: best trial, the combination, then the baselines.
    rows = metrics_table(html)
    assert [key for key, _, _ in rows] == ["model", "combined", "naive", "seasonal_naive"]
    labels = {key: label.strip() for key, label, _ in rows}
    assert labels["combined"] == "combined: the best trial + AutoETS + AutoARIMA (equal mean)"
    cells = {key: [t.strip() for t, _ in c] for key, _, c in rows}
    combined_test = exp.combined.test_metrics["model"]
    assert cells["combined"] == [number_text(combined_test[m]) for m in ("mae", "rmse", "mase", "smape")]
    assert [key for key, _, c in rows if c[2][1] == "winner"] == ["combined"]  # the lowest MASE, bold
    assert (f"fitted on the first {exp.combined.fit_end} points (the training part)" in text
            and "never picked by a test metric" in text)
    # A line in the forecast figure, not a figure.
    assert len([a for tag, a in parse(html).tags if tag == "img"]) == 7
    assert "Best trial and the combination: forecasts against the truth" in text


def test_report_of_an_old_experiment_has_no_combination(exp_h1: Path) -> None:
    """An experiment written before combined/ and the selection existed renders as before."""
    exp = collect(exp_h1)
    assert exp.combined is None and exp.run.selection is None
    html = render_report(exp_h1).read_text()
    assert [key for key, _, _ in metrics_table(html)] == ["model", "naive", "seasonal_naive"]
    result = verdict(exp).text
    assert result.startswith("Best trial ") and "combined" not in result and "forecasts with" not in result
    assert 'id="combined-note"' not in html and "combination" not in " ".join(parse(html).text)
