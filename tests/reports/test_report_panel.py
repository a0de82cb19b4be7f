"""A panel's report: per-series attention (best/attention_index.csv), the distribution of
per-series MASE, and ``--series`` for the series a user names."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np

from tunecast.expdir import contract as c
from tunecast.model import checkpoint
from tunecast.model.evaluate import evaluate
from tunecast.model.panel import PanelSpec, data_spec, load_panel
from tunecast.reports import panel
from tunecast.reports.collect import collect
from tunecast.reports.figures import make_figures
from tunecast.reports.panel_figures import draw_mase_distribution, mase_distribution


def report(*args: str) -> subprocess.CompletedProcess[str]:
    """``tunecast report`` as a user runs it (``python -m tunecast report``), in a subprocess."""
    return subprocess.run([sys.executable, "-m", "tunecast", "report", *args], capture_output=True, text=True,
                          timeout=300)


def test_each_series_attention_is_what_the_model_gives_on_that_series_alone(exp_panel: Path) -> None:
    """attention_index.csv picks out of attention.npy the rows that evaluating the best model on
    one series alone gives, for every series."""
    best = collect(exp_panel).best
    assert best is not None and best.attention_index is not None
    index = best.attention_index
    assert list(index.columns) == list(c.ATTENTION_INDEX_COLUMNS)
    assert list(index[c.SERIES_ID_COLUMN]) == [f"S{s:02d}" for s in range(6)]
    assert index["n_rows"].sum() == len(best.attention)
    spec = data_spec(collect(exp_panel).run.config["data"])  # the search's data, as a resume reads it
    assert isinstance(spec, PanelSpec)
    data = load_panel(spec)
    model, info = checkpoint.load(exp_panel / c.BEST_DIR)
    for s, sid in enumerate(data.ids):
        alone = evaluate(model, data.series(s), info.config).attention
        one = panel.one_series(best, str(sid))
        blocks = one.predictions["block"].dropna().nunique()
        assert len(one.attention) == len(alone) == blocks > 0
        np.testing.assert_allclose(one.attention, alone, rtol=1e-5, atol=1e-7)


def test_the_distribution_marks_the_drawn_series_and_counts_the_wins(exp_panel: Path) -> None:
    best = collect(exp_panel).best
    assert best is not None and best.per_series is not None
    chosen = panel.chosen_series(best)
    assert [label for label, _ in chosen] == ["best", "median", "worst"]
    other = next(f"S{s:02d}" for s in range(6) if f"S{s:02d}" not in {sid for _, sid in chosen})
    shown = panel.shown_series(best, [other, other, chosen[0][1]])  # twice, and one already drawn
    assert shown == [*chosen, ("named", other)]
    info = mase_distribution(best, shown)
    assert info is not None and info.ids == [f"S{s:02d}" for s in range(6)] and info.marked == shown
    np.testing.assert_array_equal(info.model, best.per_series["model_mase"])
    assert info.beaten == int((best.per_series["model_mase"] < best.per_series["seasonal_naive_mase"]).sum())
    wide = best.per_series.assign(model_mase=np.geomspace(0.01, 10.0, 6))  # three decades: log axes
    spread = mase_distribution(dataclasses.replace(best, per_series=wide), [])
    assert not info.log and spread is not None and spread.log
    figure = draw_mase_distribution(spread)
    assert [ax.get_xscale() for ax in figure.axes] == ["log", "log"] and figure.axes[1].get_yscale() == "log"


def test_an_experiment_without_attention_index_still_gets_its_report(exp_panel: Path) -> None:
    (exp_panel / c.BEST_DIR / c.ATTENTION_INDEX_FILE).unlink()
    exp = collect(exp_panel)
    assert exp.best is not None and exp.best.attention_index is None
    assert any(c.ATTENTION_INDEX_FILE in note for note in exp.warnings)
    keys = [f.key for f in make_figures(exp, series=["S02"])]
    assert "series-best" in keys and not [k for k in keys if k.startswith("series-") and "attention" in k]
    assert "attention" in keys  # every series' attention together needs no index


def test_an_attention_index_past_the_attention_rows_is_noted_not_used(exp_panel: Path) -> None:
    file = exp_panel / c.BEST_DIR / c.ATTENTION_INDEX_FILE
    file.write_text(file.read_text().rstrip("\n") + "\nS99,54,1\n")  # attention.npy has 54 rows
    exp = collect(exp_panel)
    assert exp.best is not None and exp.best.attention_index is None
    assert any("names rows that" in note for note in exp.warnings)
    file.write_text("unique_id,first_row\nS00,zero\n")  # a column missing, a number that is not
    exp = collect(exp_panel)
    assert exp.best is not None and exp.best.attention_index is None
    assert any("attention of single series is not shown" in note for note in exp.warnings)


def test_cli_series_shows_the_distribution_and_the_named_series(exp_panel: Path) -> None:
    best = collect(exp_panel).best
    assert best is not None
    chosen = {sid for _, sid in panel.chosen_series(best)}
    named = [sid for sid in (f"S{s:02d}" for s in range(6)) if sid not in chosen][:2]
    done = report(str(exp_panel), "--series", *named)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(exp_panel / c.REPORT_FILE)
    page = (exp_panel / c.REPORT_FILE).read_text()
    assert 'id="fig-mase-distribution"' in page
    assert "Per-series MASE: best trial against seasonal-naive" in page
    for label in ("best", "median", "worst"):
        assert f'id="fig-series-{label}"' in page and f'id="fig-series-{label}-attention"' in page
    assert len(named) == 2
    for k, sid in enumerate(named, start=1):
        assert f'id="fig-series-named-{k}"' in page and f"Series {sid} (named)" in page
        assert f'id="fig-series-named-{k}-attention"' in page
        assert f"Series {sid}: where the model looks" in page
    assert 'id="fig-attention"' in page and "where the model looks (all 6 series)" in page


def test_cli_series_refuses_an_unknown_id_and_a_single_series(exp_panel: Path, exp_h1: Path) -> None:
    (exp_panel / c.REPORT_FILE).write_text("earlier report")
    done = report(str(exp_panel), "--series", "S01", "nope")
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: --series: no series 'nope'")
    assert "S00, S01, S02" in done.stderr
    assert (exp_panel / c.REPORT_FILE).read_text() == "earlier report"
    done = report(str(exp_h1), "--series", "A")
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "single-series experiment" in done.stderr and not (exp_h1 / c.REPORT_FILE).exists()
