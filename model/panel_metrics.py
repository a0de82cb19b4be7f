"""Scores over a panel: test metrics per series and across series, and the baselines' validation loss.

The panel counterpart of :mod:`model.metrics` and :func:`model.evaluate.val_baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tunecast.model.metrics import BASELINES, METRIC_NAMES, all_metrics, baseline_forecast, baseline_losses
from tunecast.model.panel import ID_COLUMN, Panel
from tunecast.model.panel_windows import panel_windows

FORECASTERS = ("model", "naive", "seasonal_naive")
AGGREGATE_METRICS = ("mase", "mase_ratio", "smape")  # across series: scale-free only


@dataclass
class PanelMetrics:
    """Test metrics per series and across series.

    ``per_series[id][forecaster]`` is :func:`model.metrics.all_metrics` on that series alone.
    ``aggregate[forecaster]`` holds the mean over series of ``mase``, ``smape`` and ``mase_ratio``
    (MASE over seasonal-naive's, < 1 beats it; over the ``series`` where seasonal-naive is not exact).
    """

    per_series: dict[str, dict[str, dict[str, float]]]
    aggregate: dict[str, dict[str, float]]
    points: dict[str, int] = field(default_factory=dict)  # test points scored per series

    def summary(self) -> dict[str, dict[str, float]]:
        """``aggregate`` without the series count: ``{forecaster: {mase, mase_ratio, smape}}``."""
        return {name: {m: values[m] for m in AGGREGATE_METRICS} for name, values in self.aggregate.items()}

    def wide(self) -> pd.DataFrame:
        """One row per series (per_series.csv): id, test points, ``<forecaster>_<metric>`` and
        ``mase_ratio`` (empty where seasonal-naive is exact)."""
        rows = []
        for sid, by_name in self.per_series.items():
            row: dict[str, object] = {ID_COLUMN: sid, "n_test_points": self.points.get(sid)}
            row.update({f"{name}_{m}": by_name[name][m] for name in FORECASTERS for m in METRIC_NAMES})
            reference = by_name["seasonal_naive"]["mase"]
            row["mase_ratio"] = by_name["model"]["mase"] / reference if reference > 0 else float("nan")
            rows.append(row)
        return pd.DataFrame(rows, columns=per_series_columns())

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
    points: dict[str, int] = {}
    for s, rows in zip(present, np.split(order, first[1:]), strict=True):
        o, n = int(panel.offsets[s]), int(panel.lengths[s])
        target = panel.values[o : o + n, 0].astype(np.float64)  # (n,) original units
        block = local[rows]  # (k, H)
        forecasts = {"model": y_pred[rows], **{k: baseline_forecast(k, target, block, m) for k in BASELINES}}
        insample = target[: int(panel.n_train[s] + panel.n_val[s])]
        per_series[str(panel.ids[s])] = {
            name: all_metrics(target[block].ravel(), f.ravel(), insample, m) for name, f in forecasts.items()
        }
        points[str(panel.ids[s])] = int(block.size)
    return PanelMetrics(per_series, _aggregate(per_series), points)


def per_series_columns() -> list[str]:
    """The columns of per_series.csv (:meth:`PanelMetrics.wide`)."""
    return [ID_COLUMN, "n_test_points", *(f"{name}_{m}" for name in FORECASTERS for m in METRIC_NAMES),
            "mase_ratio"]


def panel_predictions_frame(panel: Panel, positions: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """predictions.csv of a panel: ``unique_id``, then a single series' columns, ``index`` and
    ``block`` counted within each series. ``positions [K, H]``: rows forecast by ``y_pred``."""
    rows = panel.series_index()  # (N,)
    local = np.arange(panel.n_points) - panel.offsets[rows]  # (N,) position within its series
    split = np.where(local < panel.n_train[rows], "train",
                     np.where(local < (panel.n_train + panel.n_val)[rows], "val", "test"))
    pred = np.full(panel.n_points, np.nan)
    pred[positions.ravel()] = np.asarray(y_pred, dtype=np.float64).ravel()
    block = np.full(panel.n_points, np.nan)
    if positions.shape[1] > 1:
        series = np.searchsorted(panel.offsets, positions[:, 0], side="right") - 1  # (K,) non-decreasing
        first = np.searchsorted(series, series, side="left")  # each block's series' first block
        block[positions.ravel()] = np.repeat(np.arange(len(positions)) - first, positions.shape[1])
    time = (pd.Series(panel.time).astype(str).to_numpy() if panel.time is not None
            else np.full(panel.n_points, ""))
    return pd.DataFrame({
        ID_COLUMN: panel.ids[rows],
        "index": local,
        "time": time,
        "split": split,
        "y_true": panel.values[:, 0].astype(np.float64),
        "y_pred": pred,
        "block": pd.Series(block).astype("Int64"),
    })


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
    """Naive's and seasonal-naive's validation loss in a trial's ``val_loss`` units, as
    :func:`model.evaluate.val_baselines`. Seasonal-naive skips blocks whose season reaches before
    their series' start (None when every block does)."""
    val = panel_windows(panel, 1, horizon)["val"].thinned(max_windows)
    positions = (val.starts() + 1).cpu().numpy()[:, None] + np.arange(horizon)[None, :]  # (K, H)
    return baseline_losses(panel.scaled()[:, 0].astype(np.float64), positions,
                           panel.offsets[val.series_of()], panel.season_length)
