"""Predict and evaluate on the test split (DESIGN.md's protocol), in original units.

A panel is unscaled per series and scored per series (:mod:`model.panel_metrics`):
``Evaluation.metrics`` then holds the scale-free aggregates across series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from tunecast.model.data import Dataset
from tunecast.model.metrics import BASELINES, all_metrics, baseline_forecast, baseline_losses
from tunecast.model.panel import Panel
from tunecast.model.panel_metrics import (
    PanelMetrics,
    panel_metrics,
    panel_predictions_frame,
    panel_val_baselines,
)
from tunecast.model.panel_windows import AnyWindows, data_windows
from tunecast.model.training import TrainConfig, eval_batch_size
from tunecast.model.windows import split_windows


@dataclass
class Evaluation:
    """Test forecasts of one model and of the baselines, with metrics."""

    positions: np.ndarray  # (K, H) series positions (a panel: rows) of the forecast targets
    y_true: np.ndarray  # (K, H) original units
    y_pred: np.ndarray  # (K, H) original units
    attention: np.ndarray  # (K, T) attention weights of every test forecast
    metrics: dict[str, dict[str, float]]  # {"model"|"naive"|"seasonal_naive": {metric: value}}
    protocol: str
    per_series: PanelMetrics | None = None  # a panel: every series' own metrics


@torch.no_grad()
def predict(model: nn.Module, windows: AnyWindows) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs ``[K, H]`` (scaled units) and attention weights ``[K, T]`` for every window."""
    model.eval()
    predictions, weights = [], []
    step = eval_batch_size(windows.window)
    for start in range(0, len(windows), step):
        prediction, weight = model(windows.x(slice(start, start + step)))
        # copy: a view would keep the whole batch-sized output buffer alive
        predictions.append(prediction.cpu().numpy().copy())
        weights.append(weight.cpu().numpy().copy())
    return np.concatenate(predictions), np.concatenate(weights)


def _windows(model: nn.Module, data: Dataset | Panel, config: TrainConfig) -> dict[str, AnyWindows]:
    """The config's train/val/test windows over the scaled data, on the model's device."""
    return data_windows(data, config.window, config.horizon, next(model.parameters()).device)


def evaluate(model: nn.Module, data: Dataset | Panel, config: TrainConfig) -> Evaluation:
    """Forecast the test split and score model, naive and seasonal-naive on the same points."""
    test = _windows(model, data, config)["test"]
    scaled_pred, attention = predict(model, test)
    positions = test.target_positions()  # (K, H)
    if isinstance(data, Panel):
        y_pred = data.unscale_target(series_of(data, positions), scaled_pred)  # each series' own scale
    else:
        y_pred = data.unscale_target(scaled_pred)
    return scored(data, positions, y_pred, attention.astype(np.float32))


def series_of(panel: Panel, positions: np.ndarray) -> np.ndarray:
    """The series of every forecast block ``positions [K, H]`` (rows of the panel), ``(K,)``."""
    return np.searchsorted(panel.offsets, positions[:, 0], side="right") - 1


def _protocol(horizon: int) -> str:
    return "rolling one-step" if horizon == 1 else f"non-overlapping blocks of {horizon}"


def scored(data: Dataset | Panel, positions: np.ndarray, y_pred: np.ndarray,
            attention: np.ndarray) -> Evaluation:
    """Score ``y_pred`` ([K, H], original units) and the baselines on the same test points."""
    target = data.values[:, 0].astype(np.float64)  # (N,) original units
    y_true = target[positions]
    protocol = _protocol(positions.shape[1])
    if isinstance(data, Panel):
        scores = panel_metrics(data, positions, y_pred)
        return Evaluation(positions, y_true, y_pred, attention, scores.summary(), protocol, scores)
    insample = target[: data.n_train + data.n_val]
    m = data.season_length
    forecasts = {"model": y_pred, **{k: baseline_forecast(k, target, positions, m) for k in BASELINES}}
    metrics = {
        name: all_metrics(y_true.ravel(), forecast.ravel(), insample, m)
        for name, forecast in forecasts.items()
    }
    return Evaluation(positions, y_true, y_pred, attention, metrics, protocol)


def val_forecast(
    model: nn.Module, data: Dataset | Panel, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions ``[K, H]`` for the validation windows and their targets, in ``val_loss`` units."""
    val = _windows(model, data, config)["val"]
    prediction, _ = predict(model, val)
    return prediction, val.y().cpu().numpy()


def val_baselines(data: Dataset | Panel, horizon: int, max_windows: int) -> dict[str, float | None]:
    """Naive's and seasonal-naive's validation loss in ``val_loss`` units (MAE on the scaled
    series over the same, thinned validation windows); seasonal-naive is None when its season
    reaches back before the series starts."""
    if isinstance(data, Panel):
        return panel_val_baselines(data, horizon, max_windows)
    positions = val_positions(data, horizon, max_windows)
    return baseline_losses(data.scaled()[:, 0].astype(np.float64), positions, 0, data.season_length)


def val_positions(data: Dataset, horizon: int, max_windows: int) -> np.ndarray:
    """The positions ``[K, H]`` of the (thinned) validation targets, the same for any window."""
    val = split_windows(data, 1, horizon)["val"].thinned(max_windows)
    return np.asarray((val.starts() + 1).cpu().numpy()[:, None] + np.arange(horizon)[None, :])


def mean_forecast(evaluations: list[Evaluation], data: Dataset | Panel) -> Evaluation:
    """The mean of several models' test forecasts (of the same points), scored like one model."""
    positions = evaluations[0].positions
    if any(e.positions.shape != positions.shape or (e.positions != positions).any() for e in evaluations):
        raise ValueError("ensemble members forecast different test points")
    y_pred = np.mean([e.y_pred for e in evaluations], axis=0)  # (K, H)
    return forecast_scored(data, positions, y_pred)


def forecast_scored(data: Dataset | Panel, positions: np.ndarray, y_pred: np.ndarray) -> Evaluation:
    """A forecast of the test points ``positions`` ``[K, H]`` made outside a network (original
    units), scored like one model, without attention weights (``[K, 0]``)."""
    return scored(data, positions, y_pred, np.zeros((len(positions), 0), dtype=np.float32))


def predictions_frame(data: Dataset | Panel, evaluation: Evaluation) -> pd.DataFrame:
    """One row per series point: index, time, split, y_true, y_pred (test only), block (a panel:
    :func:`model.panel_metrics.panel_predictions_frame`)."""
    if isinstance(data, Panel):
        return panel_predictions_frame(data, evaluation.positions, evaluation.y_pred)
    n = data.n_points
    split = np.array(["train"] * n, dtype=object)
    split[data.n_train : data.n_train + data.n_val] = "val"
    split[data.n_train + data.n_val :] = "test"
    y_pred = np.full(n, np.nan)
    block = np.full(n, np.nan)
    y_pred[evaluation.positions.ravel()] = evaluation.y_pred.ravel()
    if evaluation.positions.shape[1] > 1:
        block[evaluation.positions.ravel()] = np.repeat(
            np.arange(len(evaluation.positions)), evaluation.positions.shape[1]
        )
    return pd.DataFrame(
        {
            "index": np.arange(n),
            "time": data.time if data.time is not None else [""] * n,
            "split": split,
            "y_true": data.values[:, 0].astype(np.float64),
            "y_pred": y_pred,
            "block": pd.Series(block).astype("Int64"),
        }
    )

