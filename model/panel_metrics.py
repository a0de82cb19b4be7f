"""Scores over a panel: test metrics per series and across series, and the baselines' validation loss.

The panel counterpart of :mod:`model.metrics` and :func:`model.evaluate.val_baselines`:
:func:`panel_metrics` scores forecasts of a :class:`model.panel.Panel` per series (each on its
own MASE scale, equal to what the single-series code gives on that series alone) and across
series; :func:`panel_val_baselines` gives naive's and seasonal-naive's validation loss in the
units of a trial's ``val_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.metrics import all_metrics, naive_forecast, seasonal_naive_forecast
from model.panel import Panel
from model.panel_windows import panel_windows

FORECASTERS = ("model", "naive", "seasonal_naive")


@dataclass
class PanelMetrics:
    """Test metrics per series and across series.

    ``per_series[id][forecaster]`` is what :func:`model.metrics.all_metrics` gives on that series
    alone (its own MASE scale). ``aggregate[forecaster]`` holds the mean over series of ``mase``
    and ``smape``, and ``mase_ratio``: the mean over series of the forecaster's MASE divided by
    seasonal-naive's (scale-free; < 1 beats seasonal-naive), over the series where seasonal-naive
    is not exact (``series`` counts them).
    """

    per_series: dict[str, dict[str, dict[str, float]]]
    aggregate: dict[str, dict[str, float]]

    def frame(self) -> pd.DataFrame:
        """One row per series and forecaster: series, forecaster, mae, rmse, mase, smape."""
        return pd.DataFrame([
            {"series": sid, "forecaster": name, **values}
            for sid, by_name in self.per_series.items() for name, values in by_name.items()
        ])


def panel_metrics(panel: Panel, positions: np.ndarray, y_pred: np.ndarray) -> PanelMetrics:
    """Score ``y_pred`` ([K, H], original units) at ``positions`` ([K, H] rows of the panel,
    e.g. ``panel_windows(...)["test"].target_positions()``), and naive and seasonal-naive on the
    same points, per series and across series."""
    positions, y_pred = np.asarray(positions), np.asarray(y_pred, dtype=np.float64)
    series = np.searchsorted(panel.offsets, positions[:, 0], side="right") - 1  # (K,)
    local = positions - panel.offsets[series][:, None]  # (K, H) positions within each series
    m = panel.season_length
    if (local[:, -1] >= panel.lengths[series]).any() or (local[:, 0] < max(m, 1)).any():
        raise ValueError("forecast blocks must lie in one series each, after its first season")
    order = np.argsort(series, kind="stable")
    present, first = np.unique(series[order], return_index=True)
    per_series: dict[str, dict[str, dict[str, float]]] = {}
    for s, rows in zip(present, np.split(order, first[1:]), strict=True):
        o, n = int(panel.offsets[s]), int(panel.lengths[s])
        target = panel.values[o : o + n, 0].astype(np.float64)  # (n,) original units
        block = local[rows]  # (k, H)
        forecasts = {
            "model": y_pred[rows],
            "naive": naive_forecast(target, block),
            "seasonal_naive": seasonal_naive_forecast(target, block, m),
        }
        insample = target[: int(panel.n_train[s] + panel.n_val[s])]
        per_series[str(panel.ids[s])] = {
            name: all_metrics(target[block].ravel(), f.ravel(), insample, m) for name, f in forecasts.items()
        }
    return PanelMetrics(per_series, _aggregate(per_series))


def _aggregate(per_series: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    def column(name: str, metric: str) -> np.ndarray:
        return np.array([by_name[name][metric] for by_name in per_series.values()])

    reference = column("seasonal_naive", "mase")
    usable = reference > 0  # seasonal-naive exact on a series: no ratio to take
    aggregate = {}
    for name in FORECASTERS:
        mase = column(name, "mase")
        ratio = float(np.mean(mase[usable] / reference[usable])) if usable.any() else float("nan")
        aggregate[name] = {"mase": float(np.mean(mase)), "mase_ratio": ratio,
                           "smape": float(np.mean(column(name, "smape"))), "series": float(usable.sum())}
    return aggregate


def panel_val_baselines(panel: Panel, horizon: int, max_windows: int) -> dict[str, float | None]:
    """Naive's and seasonal-naive's validation loss in the units of a trial's ``val_loss`` (the
    mean absolute error on each series' standardised values, over the same validation windows),
    as :func:`model.evaluate.val_baselines` for one series. Seasonal-naive skips the blocks whose
    season reaches back before their series' start (never into the previous series); it is None
    when every block does."""
    val = panel_windows(panel, 1, horizon)["val"].thinned(max_windows)
    positions = (val.starts() + 1).cpu().numpy()[:, None] + np.arange(horizon)[None, :]  # (K, H)
    scaled = panel.scaled()[:, 0].astype(np.float64)
    target = scaled[positions]
    losses: dict[str, float | None] = {
        "naive": float(np.mean(np.abs(naive_forecast(scaled, positions) - target)))
    }
    m = panel.season_length
    usable = positions[:, 0] - panel.offsets[val.series_of()] >= m
    losses["seasonal_naive"] = float(np.mean(np.abs(
        seasonal_naive_forecast(scaled, positions[usable], m) - target[usable]
    ))) if usable.any() else None
    return losses
