"""The forecast past the end of the data (``forecast/``): history tail, forecast, shaded
intervals and their test coverage. For a panel, the first series in id order."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tunecast.expdir import contract as c
from tunecast.reports.collect import Experiment
from tunecast.reports.style import FORECAST, TRUTH, ReportFigure, plain
from tunecast.reports.summary import choice_name

__all__ = ["FutureInfo", "draw_future", "future_figure", "future_info"]


class FutureInfo(NamedTuple):
    """The history's tail and the forecast after it, on one x axis of positions."""

    x_history: np.ndarray  # (K,) positions of the last K observed points
    y_history: np.ndarray  # (K,) original units
    x_future: np.ndarray  # (H,) positions of the forecast steps (after the last point)
    forecast: np.ndarray  # (H,)
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lower, upper), widest first
    labels: list[str]  # (K + H,) time labels of the history tail and the forecast
    target: str
    coverage: dict[str, float | None]  # level -> share of test points inside, calibrated on val
    chosen: str
    refit: bool
    series: str | None = None  # a panel: the series shown
    n_series: int = 1


def future_info(exp: Experiment) -> FutureInfo | None:
    """The figure's data, or None without ``forecast/`` (or without the best trial's series)."""
    if exp.future is None or exp.best is None:
        return None
    record, frame = exp.future.record, exp.future.frame
    history = exp.best.predictions
    series, n_series = None, 1
    if exp.best.is_panel:  # one series: the first in id order
        ids = sorted(frame[c.SERIES_ID_COLUMN].unique())
        series, n_series = ids[0], len(ids)
        frame = frame[frame[c.SERIES_ID_COLUMN] == series]
        history = history[history[c.SERIES_ID_COLUMN] == series]
        if not len(history):
            return None
    tail = min(len(history), max(4 * record.horizon, 36))
    y = history["y_true"].to_numpy(np.float64)
    n = len(y)
    x_history = np.arange(n - tail, n, dtype=float)
    x_future = np.arange(n, n + len(frame), dtype=float)
    levels = sorted(record.levels, reverse=True)
    labels = [str(t) for t in history["time"].iloc[n - tail:]] + [str(t) for t in frame["time"]]
    return FutureInfo(
        x_history=x_history, y_history=y[n - tail:], x_future=x_future,
        forecast=frame["forecast"].to_numpy(np.float64),
        intervals={level: _bounds(frame, level) for level in levels},
        labels=labels, target=exp.best.target, coverage=record.coverage,
        chosen=record.chosen, refit=record.refit, series=series, n_series=n_series,
    )


def _bounds(frame: pd.DataFrame, level: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = c.interval_columns(level)
    return frame[lo].to_numpy(np.float64), frame[hi].to_numpy(np.float64)


def draw_future(info: FutureInfo) -> Figure:
    """History tail (dark), forecast (orange) joined to the last point, shaded intervals."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(info.x_history, info.y_history, color=TRUTH, lw=1.4, label="observed")
    joined_x = np.concatenate([info.x_history[-1:], info.x_future])
    joined_y = np.concatenate([info.y_history[-1:], info.forecast])
    ax.plot(joined_x, joined_y, color=FORECAST, lw=1.8, marker="o", ms=3, label="forecast")
    for shade, (level, (lower, upper)) in zip((0.18, 0.32, 0.45), info.intervals.items(), strict=False):
        ax.fill_between(info.x_future, lower, upper, color=FORECAST, alpha=shade, lw=0,
                        label=f"{level:g}% interval")
    ax.axvline(info.x_history[-1] + 0.5, color="#888888", lw=0.8, ls=":")
    ticks = MaxNLocator(8, integer=True).tick_values(info.x_history[0], info.x_future[-1])
    ticks = [t for t in ticks if info.x_history[0] <= t <= info.x_future[-1]]
    first = info.x_history[0]
    ax.set_xticks(ticks, [plain(info.labels[int(t - first)], 12) if info.labels[int(t - first)] else
                          str(int(t)) for t in ticks])
    ax.set_ylabel(plain(info.target, 40))
    ax.set_title("Forecast past the end of the data" + (
        f": series {plain(info.series, 40)}" if info.series is not None else ""))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def future_figure(exp: Experiment) -> ReportFigure | None:
    """The figure with its caption, or None without a forecast."""
    info = future_info(exp)
    if info is None:
        return None
    who = {"naive": "naive (the last value)", "seasonal_naive": "seasonal-naive (the last season)"}.get(
        info.chosen, choice_name(exp, info.chosen))
    if info.chosen == "combined":
        how = ("every model refitted on every observed point" if info.refit else
               "the networks with the search's weights, the statistical models fitted on the training part")
    else:
        how = ("refitted on every observed point" if info.refit else
               "no trained model beat it on validation" if info.chosen in c.BASELINES
               else "with the search's weights")
    checked = ", ".join(f"{level}%: " + ("n/a" if value is None else f"{100 * value:.0f}%")
                        for level, value in info.coverage.items())
    shown = "" if info.series is None else (
        f"Series {info.series}, the first of {info.n_series} in id order (every series' forecast is in "
        f"{c.FORECAST_DIR}/{c.FORECAST_FILE}). ")
    return ReportFigure(
        "future", "Forecast past the data",
        f"{shown}{len(info.forecast)} steps forecast by {who} (chosen on validation), {how}. Shaded: "
        f"split-conformal prediction intervals from held-out errors. Test coverage when calibrated on "
        f"validation only{' (every series)' if info.series is not None else ''}: {checked}.",
        draw_future(info))
