"""The report's figures: matplotlib ``Figure`` objects, never pyplot's global state.

Each figure has a function computing a small typed info object from the
:class:`~reports.collect.Experiment` (what the tests check) and one drawing it. Here: the best
trial's forecast and attention figures and :func:`make_figures`, which assembles them all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from tunecast.reports import panel
from tunecast.reports import search_figures as sf
from tunecast.reports.collect import BestTrial, Combined, Ensemble, Experiment
from tunecast.reports.future import future_figure
from tunecast.reports.importance import ImportanceInfo
from tunecast.reports.panel_figures import draw_mase_distribution, mase_distribution
from tunecast.reports.style import (
    COMBINED,
    ENSEMBLE,
    FORECAST,
    SPLIT_COLORS,
    TRUTH,
    ReportFigure,
    listed,
    plain,
)

__all__ = ["AttentionInfo", "ForecastInfo", "ReportFigure", "attention_info",
           "draw_attention", "draw_forecast", "forecast_info", "make_figures"]


class ForecastInfo(NamedTuple):
    """The best trial's (and ensemble's, combination's) test forecasts with the series before them."""

    x: np.ndarray  # (N,) position of every point
    y_true: np.ndarray  # (N,) original units
    boundaries: dict[str, float]  # split name -> x of its first point ("val", "test")
    blocks: list[tuple[np.ndarray, np.ndarray]]  # one (x, y_pred) per forecast block
    horizon: int
    time_labels: list[str]  # (N,) time column values; all "" when the data has none
    zoom_start: float  # x where the close-up panel starts
    target: str
    protocol: str
    ensemble_blocks: list[tuple[np.ndarray, np.ndarray]]  # the top-k ensemble's; [] without one
    ensemble_k: int  # members of the ensemble; 0 without one
    combined_blocks: list[tuple[np.ndarray, np.ndarray]]  # the combination's; [] without one
    combined_label: str  # its legend entry; "" without one


class AttentionInfo(NamedTuple):
    """The best trial's attention weights over the input window of every test forecast."""

    weights: np.ndarray  # (test windows, window); column j is lag window - 1 - j
    lags: np.ndarray  # (window,) lag of each column; 0 = most recent input step
    mean_by_lag: np.ndarray  # (window,) mean weight of each column over the test windows
    top_lags: list[int]  # the three lags with the highest mean weight, highest first
    rows_sum_to_one: bool


def forecast_info(best: BestTrial, ensemble: Ensemble | None = None,
                  combined: Combined | None = None) -> ForecastInfo:
    """Compute the forecast figure's data: truth, split boundaries and forecast blocks.

    Args:
        best: the best trial; its predictions give the truth and the main forecast.
        ensemble: the top-k ensemble, drawn as a second line (None: none).
        combined: the networks combined with statistical models, a further line (None: none).
    """
    frame = best.predictions
    x = frame["index"].to_numpy(dtype=float)
    split = frame["split"].to_numpy(dtype=str)
    boundaries = {name: float(x[np.argmax(split == name)])
                  for name in ("val", "test") if (split == name).any()}
    blocks = _forecast_blocks(frame, best.horizon)
    ensemble_blocks = (_forecast_blocks(ensemble.predictions, ensemble.horizon)
                       if ensemble is not None else [])
    test_start = boundaries.get("test", float(x[0]) if len(x) else 0.0)
    context = max(int(best.train_config.get("window", 12)), 2 * best.horizon, 12)
    return ForecastInfo(
        x=x,
        y_true=frame["y_true"].to_numpy(dtype=float),
        boundaries=boundaries,
        blocks=blocks,
        horizon=best.horizon,
        time_labels=[str(t) for t in frame["time"]],
        zoom_start=max(float(x[0]) if len(x) else 0.0, test_start - context),
        target=best.target,
        protocol=best.protocol,
        ensemble_blocks=ensemble_blocks,
        ensemble_k=ensemble.k if ensemble is not None else 0,
        combined_blocks=(_forecast_blocks(combined.predictions, combined.horizon)
                         if combined is not None else []),
        combined_label=(f"combined with {' + '.join(combined.statistical)}"
                        if combined is not None else ""),
    )


def _forecast_blocks(frame: pd.DataFrame, horizon: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y_pred) of each forecast block of a predictions.csv; one block for rolling one-step."""
    x = frame["index"].to_numpy(dtype=float)
    y_pred = frame["y_pred"].to_numpy(dtype=float)
    predicted = frame["y_pred"].notna().to_numpy()
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    if horizon > 1 and frame["block"].notna().any():
        block_ids = frame["block"].to_numpy(dtype=float)
        for block in np.unique(block_ids[predicted & np.isfinite(block_ids)]):
            rows = predicted & (block_ids == block)
            blocks.append((x[rows], y_pred[rows]))
    elif predicted.any():
        blocks.append((x[predicted], y_pred[predicted]))
    return blocks


def attention_info(best: BestTrial) -> AttentionInfo:
    """Compute the attention figure's data: weights, lags and the mean weight per lag."""
    weights = best.attention
    window = weights.shape[1]
    lags = window - 1 - np.arange(window)
    mean = weights.mean(axis=0) if len(weights) else np.zeros(window)
    order = np.argsort(-mean, kind="stable")[:3]
    return AttentionInfo(
        weights=weights,
        lags=lags,
        mean_by_lag=mean,
        top_lags=[int(lags[j]) for j in order],
        rows_sum_to_one=bool(np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)),
    )


def draw_forecast(info: ForecastInfo) -> Figure:
    """Draw the series, split boundaries and forecast blocks; a close-up of the test part below."""
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    full, zoom = fig.subplots(2, 1, height_ratios=[1.0, 1.3])
    labels = info.time_labels

    def time_label(value: float, _pos: int) -> str:
        i = round(value - info.x[0]) if len(info.x) else -1
        return labels[i] if 0 <= i < len(labels) and labels[i] else f"{value:g}"

    for ax, start in ((full, float(info.x[0]) if len(info.x) else 0.0), (zoom, info.zoom_start)):
        shown = info.x >= start
        ax.plot(info.x[shown], info.y_true[shown], color=TRUTH, lw=1.1,
                marker="." if ax is zoom else None, ms=4, label="truth")
        for name, x0 in info.boundaries.items():
            ax.axvspan(x0 - 0.5, _split_end(info, name) + 0.5, color=SPLIT_COLORS[name],
                       alpha=0.25, lw=0, label=f"{name} split")
            ax.axvline(x0 - 0.5, color="#555555", lw=0.8, ls="--")
        for k, (bx, by) in enumerate(info.blocks):
            ax.plot(bx, by, color=FORECAST, lw=1.6, marker="o" if info.horizon > 1 else None,
                    ms=3, label=("best trial forecast" if info.ensemble_k or info.combined_blocks
                                 else "forecast") if k == 0 else None)
        for k, (bx, by) in enumerate(info.ensemble_blocks):
            ax.plot(bx, by, color=ENSEMBLE, lw=1.6, ls="--",
                    marker="s" if info.horizon > 1 else None, ms=3,
                    label=f"top-{info.ensemble_k} ensemble (mean)" if k == 0 else None)
        for k, (bx, by) in enumerate(info.combined_blocks):
            ax.plot(bx, by, color=COMBINED, lw=1.6, ls="-.",
                    marker="^" if info.horizon > 1 else None, ms=3,
                    label=info.combined_label if k == 0 else None)
        ax.xaxis.set_major_formatter(FuncFormatter(time_label))
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        ax.set_ylabel(plain(info.target))
        ax.grid(alpha=0.3)
    zoom.set_xlim(info.zoom_start - 0.5, float(info.x[-1]) + 0.5 if len(info.x) else 1.0)
    blocks = "" if info.horizon == 1 else f", {len(info.blocks)} blocks"
    full.set_title(plain(f"Whole series and test forecasts ({info.protocol}{blocks})", 100))
    zoom.set_title("Close-up: test split")
    full.legend(loc="upper left", fontsize=8, ncols=4)
    return fig


def _split_end(info: ForecastInfo, name: str) -> float:
    starts = sorted(info.boundaries.values())
    later = [s for s in starts if s > info.boundaries[name]]
    return (later[0] - 1) if later else float(info.x[-1])


def draw_attention(info: AttentionInfo) -> Figure:
    """Draw the weights as a heatmap (test windows x lag) and the mean weight per lag."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    heat_ax, mean_ax = fig.subplots(1, 2, width_ratios=[1.6, 1.0])
    window = len(info.lags)
    # Columns are in time order: the oldest input step on the left, lag 0 on the right.
    image = heat_ax.imshow(info.weights, aspect="auto", interpolation="nearest", cmap="viridis",
                           extent=(window - 0.5, -0.5, len(info.weights) - 0.5, -0.5))
    heat_ax.set_xlabel("lag (input steps before the forecast; 0 = most recent)")
    heat_ax.set_ylabel("test window (forecast) number")
    heat_ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole windows, also for 2 of them
    heat_ax.set_title("Attention weight of every test forecast")
    fig.colorbar(image, ax=heat_ax, label="weight")
    colors = ["#c0392b" if int(lag) in info.top_lags else "#4c72b0" for lag in info.lags]
    mean_ax.bar(info.lags, info.mean_by_lag, color=colors, width=0.85)
    mean_ax.axhline(1.0 / max(window, 1), color="#555555", ls="--", lw=0.8,
                    label="uniform (1 / window)")
    mean_ax.set_xlim(window - 0.5, -0.5)
    mean_ax.set_xlabel("lag (0 = most recent)")
    mean_ax.set_ylabel("mean weight")
    mean_ax.set_title("Mean weight per lag (top 3 in red)")
    mean_ax.legend(fontsize=8)
    for ax in (heat_ax, mean_ax):
        ax.xaxis.set_major_locator(MaxNLocator(10, integer=True))
    return fig


def make_figures(exp: Experiment, importance: ImportanceInfo | None = None,
                 series: list[str] | None = None) -> list[ReportFigure]:
    """Every figure the report shows, in order (best trial's figures only when there is one).

    Args:
        exp: the collected experiment.
        importance: precomputed importances (computed here when None).
        series: a panel: ids of series to draw besides the best, median and worst.
    """
    figures: list[ReportFigure] = []
    if exp.best is not None and exp.best.is_panel:
        figures += _series_figures(exp.best, exp.ensemble, series or [])
        future = future_figure(exp)  # one series of the panel's forecast
        if future is not None:
            figures.append(future)
    elif exp.best is not None:
        forecast = forecast_info(exp.best, exp.ensemble, exp.combined)
        title, shown = _forecast_title(exp)
        figures.append(ReportFigure(
            "forecast", title,
            f"Truth and {shown} in original units ({forecast.protocol}); shaded: validation "
            "and test splits.", draw_forecast(forecast)))
        future = future_figure(exp)
        if future is not None:
            figures.append(future)
    if exp.best is not None:
        attention = attention_info(exp.best)
        lags = ", ".join(str(lag) for lag in attention.top_lags)
        note = "" if attention.rows_sum_to_one else " Warning: some rows do not sum to 1."
        every = f" (all {exp.best.scores.n_series} series)" if exp.best.is_panel else ""
        scope = " of every test forecast of every series" if exp.best.is_panel else ""
        figures.append(ReportFigure(
            "attention", f"Best trial: where the model looks{every}",
            f"Attention weights over the input window{scope}; the highest mean weights are at lags "
            f"{lags}.{note}", draw_attention(attention)))
    figures.extend(sf.search_figures(exp, importance))
    return figures


def _forecast_title(exp: Experiment) -> tuple[str, str]:
    """The forecast figure's title, and what its caption says the lines are."""
    ensemble, combined = exp.ensemble, exp.combined
    if ensemble is None and combined is None:
        return "Best trial: forecasts against the truth", "the best trial's test forecasts"
    titled, shown = ["Best trial"], ["of the best trial (solid)"]
    if ensemble is not None:
        k = ensemble.k
        titled.append(f"top-{k} ensemble")
        shown.append(f"of the top-{k} ensemble (dashed: the mean of the {k} trials with the lowest val_loss)")
    if combined is not None:
        titled.append("the combination")
        models = listed(list(combined.statistical))
        shown.append(f"of the combination (dash-dot: the equal mean of "
                     f"{listed([exp.combined_networks, *combined.statistical])}; {models} fitted on the "
                     f"first {combined.fit_end} points)")
    return f"{listed(titled)}: forecasts against the truth", "the test forecasts " + listed(shown)


def _series_figures(best: BestTrial, ensemble: Ensemble | None, named: list[str]) -> list[ReportFigure]:
    """A panel: the per-series MASE distribution, then the forecast and attention figures of the
    best, median and worst series by MASE ratio and of the ``named`` ones."""
    shown = panel.shown_series(best, named)
    figures = []
    distribution = mase_distribution(best, shown)
    if distribution is not None:
        figures.append(ReportFigure(
            "mase-distribution", "Per-series MASE: best trial against seasonal-naive",
            f"Left: the share of series whose test MASE is at most x, for the best trial and the "
            f"baselines. Right: one point per series; below the dashed line y = x the best trial "
            f"beats seasonal-naive ({distribution.beaten} of {len(distribution.ids)} series)"
            + ("; log axes" if distribution.log else "") + ". Circled: the series drawn below.",
            draw_mase_distribution(distribution)))
    numbers = iter(range(1, len(shown) + 1))
    for label, sid in shown:
        key = f"series-{label}" if label != "named" else f"series-named-{next(numbers)}"
        title = f"The {label} series by MASE ratio: {sid}" if label != "named" else f"Series {sid} (named)"
        scores = panel.series_scores(best, sid)
        one = panel.one_series(best, sid)
        info = forecast_info(one, panel.one_series(ensemble, sid) if ensemble is not None else None)
        figures.append(ReportFigure(
            key, title,
            f"Truth and the best trial's test forecasts of series {sid} in its own units "
            f"({info.protocol}"
            + (", dashed: the ensemble" if ensemble is not None else "")
            + f"): MASE {scores['model_mase']:.3f}, seasonal-naive {scores['seasonal_naive_mase']:.3f} "
            f"(ratio {scores['mase_ratio']:.3f}); shaded: validation and test splits.",
            draw_forecast(info)))
        if panel.has_series_attention(best) and len(one.attention):
            attention = attention_info(one)
            lags = ", ".join(str(lag) for lag in attention.top_lags)
            figures.append(ReportFigure(
                f"{key}-attention", f"Series {sid}: where the model looks",
                f"Attention weights of the best trial over the input window of each of the "
                f"{len(one.attention)} test forecasts of series {sid}; the highest mean weights "
                f"are at lags {lags}.", draw_attention(attention)))
    return figures
