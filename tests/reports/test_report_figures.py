"""Figures are checked through their info objects (the data drawn), not their pixels."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tunecast.reports import collect
from tunecast.reports.figures import (
    attention_info,
    draw_attention,
    draw_forecast,
    forecast_info,
    make_figures,
)
from tunecast.reports.importance import importance_info
from tunecast.reports.search_figures import (
    draw_history,
    draw_importance,
    draw_learning_curves,
    draw_params,
    history_info,
    learning_curves_info,
    params_info,
)
from tunecast.reports.style import plain
from tunecast.reports.timeline import draw_timeline, timeline_info
from tunecast.search.importance import EVALUATOR


def test_forecast_info_h1_marks_splits_and_rolls_over_the_test_split(exp_h1: Path) -> None:
    best = collect(exp_h1).best
    assert best is not None
    info = forecast_info(best)
    data = collect(exp_h1).run.data
    assert info.boundaries == {"val": data["n_train"], "test": data["n_train"] + data["n_val"]}
    assert len(info.blocks) == 1  # rolling one-step: one continuous line
    x, y = info.blocks[0]
    assert list(x) == list(range(data["n_train"] + data["n_val"], data["n_points"]))
    np.testing.assert_allclose(y, best.predictions["y_pred"].dropna())
    assert len(info.x) == len(info.y_true) == data["n_points"]  # history shown for context
    assert info.zoom_start < info.boundaries["test"]
    assert info.time_labels[0] == "1949-01" and info.target == "passengers"


def test_forecast_info_h3_shows_blocks(exp_h3: Path) -> None:
    best = collect(exp_h3).best
    assert best is not None
    info = forecast_info(best)
    n_test = 29
    assert len(info.blocks) == n_test // 3
    for k, (x, _y) in enumerate(info.blocks):
        assert len(x) == 3 and np.all(np.diff(x) == 1)
        assert x[0] == 144 - (n_test // 3) * 3 + 3 * k  # non-overlapping, ending at the last point
        assert x[0] >= info.boundaries["test"]


def test_attention_info_lags_and_means(exp_h1: Path) -> None:
    best = collect(exp_h1).best
    assert best is not None
    info = attention_info(best)
    window = best.train_config["window"]
    assert info.weights.shape == (29, window)
    assert info.lags[0] == window - 1 and info.lags[-1] == 0  # last column = most recent step
    np.testing.assert_allclose(info.mean_by_lag, best.attention.mean(axis=0))
    # The three lags with the highest mean weight, highest first.
    by_lag = dict(zip(info.lags.tolist(), info.mean_by_lag.tolist(), strict=True))
    top = [by_lag[lag] for lag in info.top_lags]
    assert len(info.top_lags) == 3 and top == sorted(top, reverse=True)
    assert min(top) >= max(w for lag, w in by_lag.items() if lag not in info.top_lags)
    assert info.rows_sum_to_one


def test_attention_info_flags_rows_that_do_not_sum_to_one(exp_h1: Path) -> None:
    weights = np.load(exp_h1 / "best" / "attention.npy")
    np.save(exp_h1 / "best" / "attention.npy", weights * 2)
    best = collect(exp_h1).best
    assert best is not None and not attention_info(best).rows_sum_to_one


def test_learning_curves_info_shows_early_stops_and_best(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    info = learning_curves_info(exp)
    by_id = {c.trial_id: c for c in info.curves}
    assert len(info.curves) == 8  # every trial that reported an epoch
    assert info.curves[-1].is_best and info.curves[-1].trial_id == exp.run.best_trial_id
    assert sum(c.is_best for c in info.curves) == 1
    for _, trial in exp.trials.iterrows():
        curve = by_id[trial["trial_id"]]
        assert curve.status == trial["status"] and len(curve.epochs) == trial["epochs_run"]
    stopped = [c for c in info.curves if c.status == "stopped"]
    assert len(stopped) == 2 and all(len(c.epochs) in (3, 9) for c in stopped)  # ASHA rungs
    assert info.end_marker("stopped") == "X" and info.end_marker("failed") == "v"
    assert info.end_marker("completed") is None
    assert info.grace_period == 3


def test_history_info_best_so_far(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    info = history_info(exp)
    assert list(info.trial_numbers) == [1, 2, 3, 5, 6, 7, 8]  # trial 4 failed
    assert np.all(np.diff(info.best_so_far) <= 0)
    assert np.all(np.diff(info.best_so_far_by_time) <= 0)
    assert info.best_so_far[-1] == info.best_so_far_by_time[-1] == exp.finished["best_val_loss"].min()
    assert np.all(np.diff(info.elapsed_s) >= 0) and info.elapsed_s[0] > 0
    assert sorted(info.values_by_time) == sorted(info.values)


def test_params_info_one_per_tuned_parameter(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    infos = {p.name: p for p in params_info(exp)}
    assert list(infos) == exp.param_names
    best = exp.trials.set_index("trial_id").loc[exp.run.best_trial_id]
    assert infos["lr"].log and infos["lr"].kind == "float"
    lr = infos["lr"]
    assert lr.best_index is not None
    assert lr.x[lr.best_index] == pytest.approx(best["config/lr"])
    assert lr.values[lr.best_index] == pytest.approx(best["best_val_loss"]) == lr.values.min()
    scaler = infos["scaler"]
    assert scaler.kind == "categorical" and scaler.choices == ["standard", "window"]
    assert set(scaler.x) <= {0.0, 1.0}
    assert scaler.x[lr.best_index] == scaler.choices.index(best["config/scaler"])
    assert all(len(p.x) == len(p.values) == 7 for p in infos.values())


def test_importance_info_ranks_the_parameter_that_matters(make_exp: Callable[..., Path]) -> None:
    exp = collect(make_exp(n_trials=40))
    info = importance_info(exp)
    assert info.note is None and info.evaluator == EVALUATOR == "PedAnovaImportanceEvaluator"
    assert set(info.importances) == set(exp.param_names)
    assert sum(info.importances.values()) == pytest.approx(1.0)
    # The synthetic loss depends mostly on the learning rate.
    assert next(iter(info.importances)) == "lr"


def test_importance_info_needs_enough_trials(make_exp: Callable[..., Path]) -> None:
    exp = collect(make_exp(n_trials=3, statuses=["completed", "failed", "completed"]))
    info = importance_info(exp)
    assert info.importances == {} and "at least 3 finished trials" in (info.note or "")


def test_timeline_info_packs_trials_into_lanes(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    info = timeline_info(exp)
    assert len(info.bars) == 8 and info.n_untimed == 0
    assert info.lane_labels == ["10.0.0.1 · slot 1", "10.0.0.1 · slot 2"]  # max_concurrent 2
    for lane in range(len(info.lane_labels)):
        bars = sorted((b for b in info.bars if b.lane == lane), key=lambda b: b.start_s)
        assert all(a.end_s <= b.start_s + 1e-6 for a, b in itertools.pairwise(bars))
    assert {b.status for b in info.bars} == {"completed", "stopped", "failed"}
    assert min(b.start_s for b in info.bars) == 0.0
    assert info.busy_s == pytest.approx(exp.trials["duration_s"].sum())
    assert info.capacity == 2 and info.utilisation is not None and 0.5 < info.utilisation <= 1.0


def test_timeline_info_on_several_nodes_with_gpu_shares(make_exp: Callable[..., Path]) -> None:
    exp = collect(make_exp(n_trials=30, n_nodes=2, max_concurrent=4))
    info = timeline_info(exp)
    nodes = {label.split(" · ")[0] for label in info.lane_labels}
    assert nodes == {"10.0.0.1", "10.0.0.2"}
    assert all(b.gpu_share == 0.5 for b in info.bars)
    assert info.capacity == 4  # 2 GPUs in the cluster / 0.5 GPU per trial (= max_concurrent)


def test_timeline_info_skips_trials_that_never_reported(make_exp: Callable[..., Path]) -> None:
    path = make_exp(n_trials=3, statuses=["completed", "failed", "completed"], seed=1)
    exp = collect(path)
    untimed = int(exp.trials["end_time"].isna().sum())
    assert timeline_info(exp).n_untimed == untimed


def test_every_figure_is_drawn(exp_h3: Path) -> None:
    exp = collect(exp_h3)
    figures = make_figures(exp)
    assert [f.key for f in figures] == [
        "forecast",
        "attention",
        "curves",
        "history",
        "params",
        "importance",
        "timeline",
    ]
    assert all(isinstance(f.figure, Figure) and f.figure.axes for f in figures)
    best = exp.best
    assert best is not None
    for figure in (
        draw_forecast(forecast_info(best)),
        draw_attention(attention_info(best)),
        draw_learning_curves(learning_curves_info(exp)),
        draw_history(history_info(exp)),
        draw_params(params_info(exp)),
        draw_importance(importance_info(exp)),
        draw_timeline(timeline_info(exp)),
    ):
        assert isinstance(figure, Figure)


def test_figures_without_a_best_trial(exp_all_failed: Path) -> None:
    keys = [f.key for f in make_figures(collect(exp_all_failed))]
    assert "forecast" not in keys and "attention" not in keys and "importance" not in keys


def test_plain_keeps_user_text_literal_in_matplotlib() -> None:
    assert plain("cost in $ and $x$") == r"cost in \$ and \$x\$"
    assert plain("_hidden") == " _hidden"  # a leading underscore would hide a legend entry
    assert len(plain("x" * 500)) == 80


def test_forecast_info_carries_the_ensemble_forecast(exp_ens: Path) -> None:
    exp = collect(exp_ens)
    best, ensemble = exp.best, exp.ensemble
    assert best is not None and ensemble is not None
    info = forecast_info(best, ensemble)
    assert info.ensemble_k == 5 and len(info.ensemble_blocks) == 1
    x, y = info.ensemble_blocks[0]
    test = ensemble.predictions["y_pred"].notna().to_numpy()
    np.testing.assert_array_equal(x, ensemble.predictions["index"].to_numpy()[test])
    np.testing.assert_allclose(y, ensemble.predictions["y_pred"].dropna())
    # The best trial's own forecast is unchanged and differs from the ensemble's.
    assert info.blocks[0][1].tolist() == best.predictions["y_pred"].dropna().tolist()
    assert not np.allclose(info.blocks[0][1], y)
    # Without an ensemble nothing is added.
    alone = forecast_info(best)
    assert alone.ensemble_blocks == [] and alone.ensemble_k == 0


def test_forecast_info_ensemble_blocks_h3(make_exp: Callable[..., Path]) -> None:
    exp = collect(make_exp(n_trials=8, horizon=3, ensemble=3))
    assert exp.best is not None and exp.ensemble is not None
    info = forecast_info(exp.best, exp.ensemble)
    assert [b[0].tolist() for b in info.ensemble_blocks] == [b[0].tolist() for b in info.blocks]
    assert len(info.ensemble_blocks) == 29 // 3 and info.ensemble_k == 3


def _lines(ax: Axes, label: str) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_draw_forecast_adds_a_dashed_ensemble_line(exp_ens: Path) -> None:
    exp = collect(exp_ens)
    assert exp.best is not None and exp.ensemble is not None
    info = forecast_info(exp.best, exp.ensemble)
    full, zoom = draw_forecast(info).axes
    x, y = info.ensemble_blocks[0]
    for ax in (full, zoom):
        (ensemble,) = _lines(ax, "top-5 ensemble (mean)")
        (best,) = _lines(ax, "best trial forecast")
        np.testing.assert_allclose(ensemble.get_xydata(), np.column_stack([x, y]))
        assert ensemble.get_linestyle() == "--" and best.get_linestyle() == "-"
        assert ensemble.get_color() != best.get_color()
    legend = full.get_legend()
    assert legend is not None
    assert {"best trial forecast", "top-5 ensemble (mean)"} <= {t.get_text() for t in legend.get_texts()}
    # Without an ensemble: one forecast line per axis, labelled as before.
    alone_full, _ = draw_forecast(forecast_info(exp.best)).axes
    assert len(_lines(alone_full, "forecast")) == 1
    assert not [line for line in alone_full.get_lines() if "ensemble" in str(line.get_label())]


def test_forecast_figure_title_and_caption_name_the_ensemble(exp_ens: Path, exp_h1: Path) -> None:
    with_ensemble = make_figures(collect(exp_ens))[0]
    assert with_ensemble.key == "forecast"
    assert with_ensemble.title == "Best trial and top-5 ensemble: forecasts against the truth"
    assert "mean of the 5 trials with the lowest val_loss" in with_ensemble.caption
    alone = make_figures(collect(exp_h1))[0]
    assert alone.title == "Best trial: forecasts against the truth" and "ensemble" not in alone.caption


def test_forecast_info_carries_the_combination(exp_ens_cmb: Path) -> None:
    exp = collect(exp_ens_cmb)
    best, ensemble, combined = exp.best, exp.ensemble, exp.combined
    assert best is not None and ensemble is not None and combined is not None
    info = forecast_info(best, ensemble, combined)
    assert len(info.combined_blocks) == 1 and info.combined_label == "combined with AutoETS + AutoARIMA"
    x, y = info.combined_blocks[0]
    test = combined.predictions["y_pred"].notna().to_numpy()
    np.testing.assert_array_equal(x, combined.predictions["index"].to_numpy()[test])
    np.testing.assert_allclose(y, combined.predictions["y_pred"].dropna())
    assert not np.allclose(y, info.blocks[0][1]) and not np.allclose(y, info.ensemble_blocks[0][1])
    # Without it nothing is added.
    alone = forecast_info(best, ensemble)
    assert alone.combined_blocks == [] and alone.combined_label == ""


def test_draw_forecast_adds_a_dash_dot_combination_line(exp_ens_cmb: Path) -> None:
    from tunecast.reports.style import COMBINED

    exp = collect(exp_ens_cmb)
    assert exp.best is not None and exp.combined is not None
    info = forecast_info(exp.best, exp.ensemble, exp.combined)
    full, zoom = draw_forecast(info).axes
    x, y = info.combined_blocks[0]
    for ax in (full, zoom):
        (combined,) = _lines(ax, "combined with AutoETS + AutoARIMA")
        (ensemble,) = _lines(ax, "top-5 ensemble (mean)")
        (best,) = _lines(ax, "best trial forecast")
        np.testing.assert_allclose(combined.get_xydata(), np.column_stack([x, y]))
        assert combined.get_linestyle() == "-." and combined.get_color() == COMBINED
        assert len({combined.get_color(), ensemble.get_color(), best.get_color()}) == 3
    legend = full.get_legend()
    assert legend is not None
    assert "combined with AutoETS + AutoARIMA" in {t.get_text() for t in legend.get_texts()}


def test_forecast_figure_title_and_caption_name_the_combination(exp_cmb: Path, exp_ens_cmb: Path) -> None:
    figure = make_figures(collect(exp_cmb))[0]
    assert figure.title == "Best trial and the combination: forecasts against the truth"
    n_train = collect(exp_cmb).run.data["n_train"]
    assert figure.caption.startswith(
        "Truth and the test forecasts of the best trial (solid) and of the combination (dash-dot: the equal "
        f"mean of the best trial, AutoETS and AutoARIMA; AutoETS and AutoARIMA fitted on the first {n_train} "
        "points)")
    both = make_figures(collect(exp_ens_cmb))[0]
    assert both.title == "Best trial, top-5 ensemble and the combination: forecasts against the truth"
    assert "mean of the 5 trials with the lowest val_loss" in both.caption
    assert "the equal mean of the top-5 ensemble, AutoETS and AutoARIMA" in both.caption
