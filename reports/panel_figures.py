"""A panel's distribution figure: every series' MASE, the best trial's against seasonal-naive's.

A mean MASE ratio hides how wins spread over series. Left: the ECDF of per-series MASE for the
model and both baselines; right: one point per series against y = x. Log axes when MASEs span
more than :data:`LOG_SPAN`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from tunecast.expdir import contract as c
from tunecast.reports.collect import BestTrial
from tunecast.reports.style import BEST, FORECAST, TRUTH, plain

__all__ = ["LOG_SPAN", "MaseDistribution", "draw_mase_distribution", "mase_distribution"]

LOG_SPAN = 20.0  # log axes when the largest positive MASE is this many times the smallest
_BASELINE = "#3b75af"
_MARK_COLORS = {"best": BEST, "median": "#555555", "worst": "#c0392b", "named": "#5e3c99"}


class MaseDistribution(NamedTuple):
    """Every series' test MASE: the model's and the baselines' (NaN where not defined)."""

    ids: list[str]  # (S,) in per_series.csv's order
    model: np.ndarray  # (S,) the best trial's MASE per series
    seasonal_naive: np.ndarray  # (S,)
    naive: np.ndarray  # (S,)
    beaten: int  # series where the model's MASE is below seasonal-naive's
    log: bool  # whether the axes are logarithmic
    marked: list[tuple[str, str]]  # (label, id) of the series whose forecasts the report draws


def mase_distribution(best: BestTrial, marked: list[tuple[str, str]]) -> MaseDistribution | None:
    """The figure's data from the best trial's per_series.csv (None for a single series)."""
    if best.per_series is None or not len(best.per_series):
        return None
    frame = best.per_series
    model, seasonal = (frame[f"{name}_mase"].to_numpy(np.float64) for name in ("model", "seasonal_naive"))
    naive = frame["naive_mase"].to_numpy(np.float64) if "naive_mase" in frame else np.full(len(frame), np.nan)
    values = np.concatenate([model, seasonal, naive])
    positive = values[np.isfinite(values) & (values > 0)]
    log = bool(len(positive) and positive.max() > LOG_SPAN * positive.min())
    return MaseDistribution(
        ids=frame[c.SERIES_ID_COLUMN].astype(str).tolist(),
        model=model,
        seasonal_naive=seasonal,
        naive=naive,
        beaten=int((model < seasonal).sum()),
        log=log,
        marked=marked,
    )


def _ecdf(values: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finite values (positive ones on log axes) and the share of all series at or below each."""
    keep = np.isfinite(values) & ((values > 0) if log else True)
    x = np.sort(values[keep])
    share = np.arange(1, len(x) + 1) / max(len(values), 1)
    return np.concatenate([x[:1], x]), np.concatenate([[0.0], share])  # the step up from 0


def draw_mase_distribution(info: MaseDistribution) -> Figure:
    """Draw the ECDFs of per-series MASE (left) and model vs seasonal-naive per series (right)."""
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    cdf_ax, dot_ax = fig.subplots(1, 2)
    for values, label, color, style in ((info.model, "best trial", FORECAST, "-"),
                                        (info.seasonal_naive, "seasonal-naive", _BASELINE, "-"),
                                        (info.naive, "naive", TRUTH, ":")):
        x, share = _ecdf(values, info.log)
        if len(x):
            cdf_ax.step(x, share, where="post", color=color, ls=style, lw=1.6, label=label)
    cdf_ax.axvline(1.0, color="#888888", lw=0.8, ls="--")
    cdf_ax.set_xlabel("test MASE of a series (below 1: better than in-sample seasonal-naive)")
    cdf_ax.set_ylabel("share of series with MASE ≤ x")
    cdf_ax.set_ylim(0, 1.02)
    cdf_ax.set_title("Per-series MASE: further left is better")
    cdf_ax.legend(fontsize=8, loc="lower right")

    both = np.isfinite(info.model) & np.isfinite(info.seasonal_naive)
    if info.log:
        both &= (info.model > 0) & (info.seasonal_naive > 0)
    x, y = info.seasonal_naive[both], info.model[both]
    wins = y < x
    dot_ax.scatter(x[wins], y[wins], s=14, color=BEST, alpha=0.7, lw=0, label="model better")
    dot_ax.scatter(x[~wins], y[~wins], s=14, color=FORECAST, alpha=0.7, lw=0, label="seasonal-naive better")
    if len(x):
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        margin = 0.05 * (high - low) + 1e-9
        pad = (high / low) ** 0.05 if info.log and low > 0 else None  # the same margin on log axes
        span = (low / pad, high * pad) if pad else (low - margin, high + margin)
        dot_ax.plot(span, span, color="#555555", lw=0.9, ls="--", label="y = x")
        dot_ax.set_xlim(span)
        dot_ax.set_ylim(span)
    where = {sid: i for i, sid in enumerate(info.ids)}
    for label, sid in info.marked:
        i = where.get(sid)
        if i is None or not both[i]:
            continue
        dot_ax.scatter([info.seasonal_naive[i]], [info.model[i]], s=60, facecolors="none",
                       edgecolors=_MARK_COLORS.get(label, TRUTH), lw=1.5)
        dot_ax.annotate(plain(f"{sid} ({label})" if label != "named" else sid, 30),
                        (info.seasonal_naive[i], info.model[i]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8, color=_MARK_COLORS.get(label, TRUTH))
    dot_ax.set_xlabel("seasonal-naive MASE")
    dot_ax.set_ylabel("best trial MASE")
    dot_ax.set_title(f"Model better on {info.beaten} of {len(info.ids)} series (below the line)")
    dot_ax.legend(fontsize=8, loc="best")
    for ax in (cdf_ax, dot_ax):
        if info.log:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    if info.log:
        dot_ax.set_yscale("log")
    return fig
