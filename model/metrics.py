"""Forecast metrics in original units, and the naive / seasonal-naive baselines.

MASE divides the test MAE by the in-sample MAE of the seasonal-naive forecast at lag m over all
points before the test part (train and validation together), as statistical libraries do; m = 1
is the plain naive forecast. sMAPE = 100 * mean(2|e| / (|y| + |yhat|)), 0 where both are 0.
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("mae", "rmse", "mase", "smape")


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2)))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2.0 * np.abs(y - yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100.0 * np.mean(ratio))


def mase_scale(insample: np.ndarray, season_length: int) -> float:
    """In-sample MAE of the seasonal-naive forecast at lag m (m = 1: naive)."""
    insample = np.asarray(insample, dtype=np.float64)
    m = season_length if len(insample) > season_length else 1
    return float(np.mean(np.abs(insample[m:] - insample[:-m])))


def mase(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray, season_length: int) -> float:
    scale = mase_scale(insample, season_length)
    return mae(y, yhat) / scale if scale > 0 else float("inf")


def all_metrics(
    y: np.ndarray, yhat: np.ndarray, insample: np.ndarray, season_length: int
) -> dict[str, float]:
    """MAE, RMSE, MASE and sMAPE of ``yhat`` against ``y``."""
    return {
        "mae": mae(y, yhat),
        "rmse": rmse(y, yhat),
        "mase": mase(y, yhat, insample, season_length),
        "smape": smape(y, yhat),
    }


def naive_forecast(series: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Naive forecast of the blocks ``positions [K, H]``: the last value before each block."""
    positions = np.asarray(positions)
    return np.repeat(np.asarray(series)[positions[:, :1] - 1], positions.shape[1], axis=1)


def seasonal_naive_forecast(series: np.ndarray, positions: np.ndarray, season_length: int) -> np.ndarray:
    """Seasonal-naive forecast of blocks ``positions [K, H]`` from the history before each block.

    Step h of a block starting at t0 repeats the last observed season:
    ``y[t0 + h - m * (h // m + 1)]``.
    """
    positions = np.asarray(positions)
    m = season_length
    h = np.arange(positions.shape[1])
    source = positions[:, :1] + h[None, :] - m * (h[None, :] // m + 1)  # (K, H)
    return np.asarray(series)[source]


BASELINES = ("naive", "seasonal_naive")


def baseline_forecast(kind: str, series: np.ndarray, positions: np.ndarray, season_length: int) -> np.ndarray:
    """Naive's (``kind`` "naive") or seasonal-naive's forecast of the blocks ``positions [K, H]``:
    the one definition of both, for scoring and for forecasting past the data."""
    if kind == "naive":
        return naive_forecast(series, positions)
    return seasonal_naive_forecast(series, positions, season_length)


def baseline_losses(
    series: np.ndarray, positions: np.ndarray, series_starts: np.ndarray | int, season_length: int
) -> dict[str, float | None]:
    """Naive's and seasonal-naive's mean absolute error (val_loss's loss) at ``positions``
    ``[K, H]`` of ``series`` (scaled). ``series_starts``: the first position of the series each
    block belongs to (0 for one series): seasonal-naive leaves out blocks whose season reaches
    back before it, and is None when that leaves none."""
    target = series[positions]
    usable = positions[:, 0] - series_starts >= season_length
    return {
        "naive": mae(target, naive_forecast(series, positions)),
        "seasonal_naive": mae(target[usable],
                              seasonal_naive_forecast(series, positions[usable], season_length))
        if usable.any() else None,
    }
