"""Forecasts past the end of a series, with split-conformal prediction intervals.

A :class:`Forecaster` is the mean of one or more saved networks (``model.checkpoint``).
``predict`` forecasts directly within the networks' horizon and recursively beyond it (extra
features then need their future values).

Intervals are normalised split conformal: each held-out h-step error, from origins the networks
never trained on, is divided by the series' mean absolute one-step change before its origin; the
per-step quantile of these scores times the same scale at the series' end is the half-width, so
intervals widen with h and with volatility. A refitted forecaster keeps the scores of the models
it was refitted from. Nothing here imports Ray or Optuna.

A :class:`PanelForecaster` forecasts many series with one global model, each series in its own
scaling and from its own last window. A series with at least :data:`MIN_SERIES_SCORES` scores at
every step is calibrated on its own scores; shorter ones use the pooled quantile of all series
(valid only on average over series). Local scales are floored at :data:`PANEL_SCALE_FLOOR`.

Example:
    >>> from model import forecast
    >>> f = forecast.load("tunecast-runs/airline-20261129-010000")  # doctest: +SKIP
    >>> f.predict(series_values, steps=12, levels=(80, 95)).frame()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from tunecast.model import checkpoint
from tunecast.model.checkpoint import CheckpointError, ModelInfo
from tunecast.model.data import Dataset, train_statistics
from tunecast.model.metrics import BASELINES, baseline_forecast
from tunecast.model.panel import Panel
from tunecast.model.statistical import Statistical, StatisticalError
from tunecast.model.training import TrainConfig, eval_batch_size, fit

FORMAT = "tunecast-forecaster"
INFO_FILE = "forecaster.json"
ERRORS_FILE = "errors.npy"
MEMBERS_DIR = "members"
LEVELS = (80.0, 95.0)
# Floor of a panel series' local scale, as a share of its whole history's mean one-step change,
# so a flat stretch cannot swamp the pooled quantile with huge scores.
PANEL_SCALE_FLOOR = 0.1
MIN_SERIES_SCORES = 50  # a panel's series with fewer held-out scores per step is calibrated pooled
ID_COLUMN = "unique_id"  # a panel forecast's series column (as in predictions.csv)
SERIES_FILE = "series.csv"  # a panel forecaster's series: id, scaling, calibration
SCORE_SERIES_FILE = "errors_series.npy"  # the series of each row of errors.npy


class ForecastError(ValueError):
    """A forecast that cannot be made as asked; the message names the problem and the fix."""


@dataclass
class Member:
    """One network with what it needs to read and write original units."""

    model: nn.Module
    info: ModelInfo

    @property
    def config(self) -> TrainConfig:
        return self.info.config

    def scale(self, values: np.ndarray) -> np.ndarray:
        mean, std = np.asarray(self.info.mean, np.float64), np.asarray(self.info.std, np.float64)
        return ((values - mean) / std).astype(np.float32)

    def unscale_target(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, np.float64) * self.info.std[0] + self.info.mean[0]


@torch.no_grad()
def _paths(member: Member, values: np.ndarray, origins: np.ndarray, steps: int,
           features: np.ndarray | None) -> np.ndarray:
    """Forecast ``steps`` values from each origin ``o`` (history ``values[:o]``), ``[B, steps]``
    in original units. ``features`` ``[N + steps, F - 1]``: extra features for recursive steps."""
    config, model = member.config, member.model
    window, horizon, n_features = config.window, config.horizon, values.shape[1]
    scaled = member.scale(values)  # (N, F)
    feats = member.scale(np.column_stack([np.zeros(len(features)), features]))[:, 1:] \
        if features is not None else None  # (N + steps, F - 1)
    context = torch.from_numpy(np.stack([scaled[o - window:o] for o in origins]))  # (B, T, F)
    out = np.zeros((len(origins), steps), np.float64)
    done = 0
    while done < steps:
        prediction, _ = model(context)  # (B, H), scaled target
        take = min(horizon, steps - done)
        out[:, done:done + take] = prediction[:, :take].numpy()
        if done + take < steps:  # feed the predictions back as the next inputs
            rows = torch.zeros((len(origins), take, n_features))
            rows[:, :, 0] = prediction[:, :take]
            if n_features > 1:
                assert feats is not None
                positions = origins[:, None] + done + np.arange(take)[None, :]  # (B, take)
                rows[:, :, 1:] = torch.from_numpy(feats[positions])
            context = torch.cat([context, rows], dim=1)[:, -window:]
        done += take
    return member.unscale_target(out)


@dataclass
class Prediction:
    """A forecast of ``steps`` values past the data, with intervals per level."""

    mean: np.ndarray  # (steps,) original units
    lower: dict[float, np.ndarray]  # level -> (steps,)
    upper: dict[float, np.ndarray]
    times: list[Any]  # the timestamps (or integer positions) of the forecast

    def frame(self) -> pd.DataFrame:
        """time, forecast, lo-80, hi-80, lo-95, hi-95, ..."""
        columns: dict[str, Any] = {"time": self.times, "forecast": self.mean}
        for level in sorted(self.lower):
            columns[f"lo-{level:g}"] = self.lower[level]
            columns[f"hi-{level:g}"] = self.upper[level]
        return pd.DataFrame(columns)


def local_scale(values: np.ndarray, origins: np.ndarray, span: int, floor: float = 1e-6) -> np.ndarray:
    """The mean absolute one-step change of the target over the ``span`` points before each
    origin (the history ``values[:o]``), ``[B]``; at least ``floor`` times the whole series'."""
    diffs = np.abs(np.diff(np.asarray(values, np.float64)[:, 0]))  # diffs[t - 1] = |y[t] - y[t-1]|
    total = np.concatenate([[0.0], np.cumsum(diffs)])
    hi = np.clip(np.asarray(origins) - 1, 1, len(diffs))
    lo = np.clip(hi - span, 0, None)
    scale = (total[hi] - total[lo]) / (hi - lo)
    floor = floor * float(diffs.mean()) if len(diffs) else 0.0
    return np.maximum(scale, max(floor, 1e-12))


def conformal_quantiles(errors: np.ndarray, level: float) -> np.ndarray:
    """Split-conformal half-widths per step from absolute errors ``[origins, steps]`` (NaN: none):
    the ceil((n + 1) * level)-th smallest of n (the largest when n is too small; inf for n = 0),
    made non-decreasing in the step."""
    widths = np.full(errors.shape[1], np.inf)
    for h in range(errors.shape[1]):
        e = np.sort(errors[:, h][np.isfinite(errors[:, h])])
        if len(e):
            widths[h] = e[min(len(e), max(1, math.ceil((len(e) + 1) * level / 100.0))) - 1]
    return np.maximum.accumulate(widths)


class Forecaster:
    """The mean of one or more networks, with held-out errors for intervals, optionally combined
    with ``statistical`` (a fitted :class:`~model.statistical.Statistical`, or its ``meta()``:
    then refitted on the first ``fit_end`` points of the first series given)."""

    def __init__(self, members: list[Member], errors: np.ndarray | None = None,
                 meta: dict[str, Any] | None = None,
                 statistical: Statistical | dict[str, Any] | None = None) -> None:
        if not members:
            raise ForecastError("a forecaster needs at least one network")
        columns = {m.info.columns for m in members}
        if len(columns) != 1:
            raise ForecastError(f"the networks were trained on different columns: {sorted(columns)}")
        self.members = members
        self.errors = errors  # (origins, steps) held-out errors / local scale, or None
        self.meta = dict(meta or {})
        self.statistical = statistical

    def _statistical(self, values: np.ndarray) -> Statistical | None:
        if isinstance(self.statistical, dict):
            fit_end = int(self.statistical["fit_end"])
            if len(values) < fit_end:
                raise ForecastError(f"the statistical models fit on the first {fit_end} points; the "
                                    f"series has {len(values)}")
            try:
                self.statistical = Statistical.from_meta(self.statistical, values[:, 0])
            except StatisticalError as exc:
                raise ForecastError(str(exc)) from None
        return self.statistical

    @property
    def columns(self) -> tuple[str, ...]:
        return self.members[0].info.columns

    @property
    def horizon(self) -> int:
        """The steps one forward pass forecasts (the smallest of the members')."""
        return min(m.config.horizon for m in self.members)

    def paths(self, values: np.ndarray, origins: np.ndarray, steps: int,
              features: np.ndarray | None = None) -> np.ndarray:
        """The mean forecast path of the members from each origin, ``[B, steps]``."""
        if len(self.columns) > 1 and steps > self.horizon and features is None:
            raise ForecastError(
                f"forecasting {steps} steps with extra features {list(self.columns[1:])} needs their "
                f"future values beyond the networks' horizon {self.horizon}: pass them (--future FILE)"
            )
        networks = np.mean([_paths(m, values, origins, steps, features) for m in self.members], axis=0)
        statistical = self._statistical(values) if self.statistical is not None else None
        if statistical is None:
            return networks
        try:
            return statistical.combine(networks, statistical.paths(values[:, 0], origins, steps))
        except StatisticalError as exc:
            raise ForecastError(str(exc)) from None

    def held_out_errors(self, values: np.ndarray, start: int, steps: int,
                        end: int | None = None) -> np.ndarray:
        """Absolute errors ``[origins, steps]`` from every origin ``o >= start`` (at or after the
        members' training part), NaN where ``o + h >= end``."""
        end = len(values) if end is None else end
        trained, window = self.trained_on, self.window
        start = max(start, window)
        if start < trained:
            raise ForecastError(f"errors from origin {start} would score points the networks trained on "
                                f"(the first {trained})")
        origins = np.arange(start, end)
        if not len(origins):
            return np.zeros((0, steps))
        features = _padded_features(values, steps)
        paths = self.paths(values, origins, steps, features)  # (B, steps)
        positions = origins[:, None] + np.arange(steps)[None, :]
        truth = np.full(paths.shape, np.nan)
        inside = positions < end
        truth[inside] = values[positions[inside], 0]
        return np.abs(truth - paths)

    @property
    def span(self) -> int:
        """Points before an origin that set its local scale: the longest member window."""
        return self.window

    @property
    def window(self) -> int:
        """Points of history a forecast needs: the longest member window."""
        return max(m.config.window for m in self.members)

    @property
    def trained_on(self) -> int:
        """The leading points any member trained on (errors are scored only after them)."""
        fit_end = 0 if self.statistical is None else int(
            self.statistical["fit_end"] if isinstance(self.statistical, dict) else self.statistical.fit_end)
        return max(fit_end, *(m.info.trained_on or 0 for m in self.members))

    def held_out_scores(self, values: np.ndarray, start: int, steps: int,
                        end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The held-out errors divided by each origin's local scale, and those scales."""
        errors = self.held_out_errors(values, start, steps, end)
        origins = np.arange(max(start, self.span), max(start, self.span) + len(errors))
        scale = local_scale(values, origins, self.span)
        return errors / scale[:, None], scale

    def predict(self, values: np.ndarray, steps: int, levels: tuple[float, ...] = LEVELS,
                future: np.ndarray | None = None, times: list[Any] | None = None) -> Prediction:
        """Forecast ``steps`` values after ``values`` ``[N, F]`` (original units) with intervals
        from the held-out errors; ``future`` ``[steps, F - 1]``: the extra features ahead."""
        values = np.asarray(values, np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.columns):
            raise ForecastError(f"the series has {values.shape[-1]} column(s), the networks read "
                                f"{len(self.columns)} ({', '.join(self.columns)})")
        if steps < 1:
            raise ForecastError(f"the horizon must be >= 1, got {steps}")
        window = self.window
        if len(values) < window:
            raise ForecastError(f"the series has {len(values)} points, the forecaster needs the last "
                                f"{window}")
        features = None
        if values.shape[1] > 1 and future is not None:
            future = np.asarray(future, np.float64).reshape(steps, values.shape[1] - 1)
            features = np.concatenate([values[:, 1:], future])
        mean = self.paths(values, np.array([len(values)]), steps, features)[0]
        errors = self.errors
        if errors is None:  # a plain model folder: score it on the points after its training part
            errors, _ = self.held_out_scores(values, self.trained_on, steps)
        scale = float(local_scale(values, np.array([len(values)]), self.span)[0])
        if errors.shape[1] < steps:
            raise ForecastError(f"the held-out errors cover {errors.shape[1]} steps, not {steps}: make "
                                "the forecast again from the experiment (`tunecast forecast --horizon`)")
        lower, upper = {}, {}
        for level in levels:
            if not 0 < level < 100:
                raise ForecastError(f"an interval level must lie in (0, 100), got {level:g}")
            width = conformal_quantiles(errors[:, :steps], level) * scale
            lower[level], upper[level] = mean - width, mean + width
        return Prediction(mean, lower, upper, list(range(len(values), len(values) + steps))
                          if times is None else times)

    def save(self, folder: str | Path) -> Path:
        """Write the forecaster folder: members/<i>/ model folders, the errors, forecaster.json."""
        folder = Path(folder)
        for i, member in enumerate(self.members):
            checkpoint.save(folder / MEMBERS_DIR / str(i), member.model, member.info)
        if self.errors is not None:
            np.save(folder / ERRORS_FILE, self.errors)
        info = {"format": FORMAT, "format_version": 1, "members": len(self.members),
                "errors": self.errors is not None, **self.meta}
        if self.statistical is not None:
            info["statistical"] = self.statistical if isinstance(self.statistical, dict) \
                else self.statistical.meta()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{INFO_FILE}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info, indent=2, allow_nan=False))
        os.replace(tmp, folder / INFO_FILE)  # last: a folder with forecaster.json is complete
        return folder


class BaselineForecaster(Forecaster):
    """Naive or seasonal-naive, when no trained network beat them on validation; intervals from
    the baseline's own held-out errors."""

    def __init__(self, kind: str, season_length: int, columns: tuple[str, ...],
                 errors: np.ndarray | None = None, meta: dict[str, Any] | None = None) -> None:
        if kind not in BASELINES:
            raise ForecastError(f"unknown baseline {kind!r}: one of {', '.join(BASELINES)}")
        self.kind, self.season_length, self._columns = kind, int(season_length), tuple(columns)
        self.members = []
        self.statistical = None
        self.errors = errors
        self.meta = dict(meta or {})

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    @property
    def horizon(self) -> int:
        return 10**9  # any number of steps, without recursion or future features

    @property
    def window(self) -> int:
        return self.season_length if self.kind == "seasonal_naive" else 1

    @property
    def span(self) -> int:
        return max(self.season_length, 12)

    @property
    def trained_on(self) -> int:
        return 0

    def paths(self, values: np.ndarray, origins: np.ndarray, steps: int,
              features: np.ndarray | None = None) -> np.ndarray:
        blocks = np.asarray(origins)[:, None] + np.arange(steps)[None, :]
        return baseline_forecast(self.kind, np.asarray(values, np.float64)[:, 0], blocks, self.season_length)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        if self.errors is not None:
            np.save(folder / ERRORS_FILE, self.errors)
        info = {"format": FORMAT, "format_version": 1, "members": 0, "errors": self.errors is not None,
                "baseline": self.kind, "season_length": self.season_length, "columns": list(self.columns),
                **self.meta}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{INFO_FILE}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info, indent=2, allow_nan=False))
        os.replace(tmp, folder / INFO_FILE)
        return folder


def _padded_features(values: np.ndarray, steps: int) -> np.ndarray | None:
    """The extra features of ``values``, padded with NaN for positions past the end."""
    if values.shape[1] == 1:
        return None
    return np.concatenate([values[:, 1:], np.full((steps, values.shape[1] - 1), np.nan)])


def load(path: str | Path) -> Forecaster | PanelForecaster:
    """A forecaster folder, a model folder, or an experiment directory holding one forecaster
    folder (the ``forecast/`` a search writes)."""
    path = Path(path)
    if (path / INFO_FILE).is_file():
        return _load_forecaster(path)
    if checkpoint.is_model_folder(path):
        return Forecaster([Member(*checkpoint.load(path))])
    inside = sorted(p.parent for p in path.glob(f"*/{INFO_FILE}")) if path.is_dir() else []
    if len(inside) == 1:
        return _load_forecaster(inside[0])
    raise CheckpointError(f"{path} holds no forecaster: pass an experiment directory whose search "
                          "wrote forecast/, a forecaster folder or a model folder")


def _load_forecaster(folder: Path) -> Forecaster | PanelForecaster:
    try:
        meta = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT}")
        if meta.get("panel"):
            return _load_panel_forecaster(folder, meta)
        errors = np.load(folder / ERRORS_FILE, allow_pickle=False) if meta.get("errors") else None
        if meta.get("baseline"):
            extra = {k: v for k, v in meta.items() if k not in (
                "format", "format_version", "members", "errors", "baseline", "season_length", "columns")}
            return BaselineForecaster(str(meta["baseline"]), int(meta["season_length"]),
                                      tuple(meta["columns"]), errors, extra)
        members = [Member(*checkpoint.load(folder / MEMBERS_DIR / str(i)))
                   for i in range(int(meta["members"]))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder} is not a readable forecaster ({exc}): restore it or "
                              "re-run the search") from None
    extra = {k: v for k, v in meta.items() if k not in ("format", "format_version", "members", "errors",
                                                         "statistical")}
    return Forecaster(members, errors, extra, meta.get("statistical"))


def refit(member: Member, data: Dataset | Panel, epochs: int) -> Member:
    """Train ``member``'s configuration afresh on every point of ``data`` for ``epochs`` epochs
    (no validation part, so no early stopping: the last epoch's weights), seeded as before."""
    config = replace(member.config, max_epochs=max(1, epochs), patience=max(1, epochs))
    everything = panel_for_refit(data) if isinstance(data, Panel) else data.for_refit()
    result = fit(config, everything, device="cpu")
    info = replace(ModelInfo.of(config, everything, epoch=result.epochs_run, val_loss=None),
                   extra={**member.info.extra, "refit": True})
    return Member(result.model, info)


def future_times(labels: np.ndarray | None, n_points: int, steps: int) -> list[Any]:
    """The timestamps of ``steps`` points after the series (its frequency continued), or positions.

    Raises:
        ForecastError: the time column has no regular frequency.
    """
    if labels is None:
        return list(range(n_points, n_points + steps))
    text = pd.Series(labels, dtype=str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        diffs = np.diff(numbers.to_numpy())
        step = diffs[-1] if len(diffs) else 1
        if len(diffs) and not np.allclose(diffs, step):
            raise ForecastError("the time column's steps are irregular: give a time column with one "
                                "fixed step (or none, for integer positions)")
        whole = bool(np.all(numbers == numbers.round())) and float(step).is_integer()
        values = numbers.iloc[-1] + step * np.arange(1, steps + 1)
        return [int(v) for v in values] if whole else [float(v) for v in values]
    times = pd.DatetimeIndex(pd.to_datetime(text))
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(times) if len(times) >= 3 else None
    if freq is None:
        raise ForecastError("the time column has no regular frequency (pandas cannot infer one): "
                            "fill the gaps or give integer steps")
    future = pd.date_range(times[-1], periods=steps + 1, freq=freq)[1:]
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m", "%Y"):
        if all(t.strftime(fmt) == label for t, label in zip(times[-3:], text.iloc[-3:], strict=True)):
            return [t.strftime(fmt) for t in future]
    return [t.isoformat() for t in future]


def panel_for_refit(panel: Panel) -> Panel:
    """The panel with every point in training, each series scaled by all its points (for a refit)."""
    stats = [train_statistics(panel.values[o:o + n].astype(np.float64))
             for o, n in zip(panel.offsets, panel.lengths, strict=True)]
    none = np.zeros_like(panel.lengths)
    return dataclasses.replace(panel, n_train=panel.lengths.copy(), n_val=none, n_test=none.copy(),
                               mean=np.stack([m for m, _ in stats]), std=np.stack([d for _, d in stats]),
                               _scaled=None)


def min_scores(level: float) -> int:
    """The fewest scores whose conformal quantile at ``level`` is finite: ceil((n + 1) level) <= n."""
    return math.ceil(level / (100.0 - level) - 1e-9)


def panel_widths(scores: np.ndarray, series: np.ndarray, n_series: int, levels: tuple[float, ...],
                 minimum: int = MIN_SERIES_SCORES) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """Conformal half-widths in local-scale units, ``level -> [S, steps]``, from scores
    ``[R, steps]`` of ``series`` ``(R,)``, and which series ``(S,)`` had at least ``minimum``
    scores per step and were calibrated on their own (the rest: pooled)."""
    steps = scores.shape[1]
    need = max([minimum, *(min_scores(level) for level in levels)])
    counts = np.stack([np.bincount(series[np.isfinite(scores[:, h])], minlength=n_series)
                       for h in range(steps)]) if steps else np.zeros((0, n_series), int)  # (steps, S)
    own = counts.min(axis=0) >= need if steps else np.zeros(n_series, bool)
    widths = {}
    for level in levels:
        pooled = conformal_quantiles(scores, level) if len(scores) else np.full(steps, np.inf)
        w = np.repeat(pooled[None, :], n_series, axis=0)
        for s in np.flatnonzero(own):
            w[s] = conformal_quantiles(scores[series == s], level)
        widths[level] = w
    return widths, own


@dataclass
class PanelPrediction:
    """Every series' forecast of ``steps`` values past its own end, with intervals per level."""

    ids: list[str]  # (S,)
    mean: np.ndarray  # (S, steps) original units of each series
    lower: dict[float, np.ndarray]  # level -> (S, steps)
    upper: dict[float, np.ndarray]
    times: list[list[Any]]  # (S, steps): each series' own next time stamps (or positions)
    own: np.ndarray  # (S,) bool: calibrated on its own scores (else pooled across series)

    def frame(self) -> pd.DataFrame:
        """Long format: unique_id, time, forecast, lo-80, hi-80, ... (series in id order, each in
        time order)."""
        steps = self.mean.shape[1]
        columns: dict[str, Any] = {ID_COLUMN: np.repeat(np.asarray(self.ids, dtype=object), steps),
                                   "time": [t for times in self.times for t in times],
                                   "forecast": self.mean.ravel()}
        for level in sorted(self.lower):
            columns[f"lo-{level:g}"] = self.lower[level].ravel()
            columns[f"hi-{level:g}"] = self.upper[level].ravel()
        return pd.DataFrame(columns)


@torch.no_grad()
def _panel_paths(model: nn.Module, config: TrainConfig, scaled: np.ndarray, starts: np.ndarray,
                 steps: int) -> np.ndarray:
    """Forecast ``steps`` scaled target values from each origin row ``starts`` of ``scaled``
    ``[N, F]``, ``[B, steps]``; beyond the horizon the predictions are fed back (target only)."""
    window, horizon = config.window, config.horizon
    views = np.lib.stride_tricks.sliding_window_view(scaled, window, axis=0)  # (N - T + 1, F, T)
    out = np.zeros((len(starts), steps), np.float64)
    chunk = eval_batch_size(window)
    for first in range(0, len(starts), chunk):
        rows = starts[first:first + chunk]
        context = torch.from_numpy(np.ascontiguousarray(views[rows - window].transpose(0, 2, 1)))  # (B, T, F)
        done = 0
        while done < steps:
            prediction, _ = model(context)  # (B, H)
            take = min(horizon, steps - done)
            out[first:first + len(rows), done:done + take] = prediction[:, :take].numpy()
            if done + take < steps:
                fed = prediction[:, :take, None].to(context.dtype)  # (B, take, 1)
                context = torch.cat([context, fed], dim=1)[:, -window:]
            done += take
    return out


class PanelForecaster:
    """One global forecaster for a panel: the mean of networks (each series in its own scaling,
    ``mean``/``std`` ``[S, F]``) or a baseline ``kind``, with per-series held-out scores."""

    def __init__(self, ids: np.ndarray, columns: tuple[str, ...], mean: np.ndarray, std: np.ndarray,
                 members: list[Member] | None = None, kind: str | None = None, season_length: int = 1,
                 errors: np.ndarray | None = None, error_series: np.ndarray | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        if not members and kind not in BASELINES:
            raise ForecastError("a panel forecaster needs networks or a baseline (naive, seasonal_naive)")
        self.ids, self.columns = np.asarray(ids, dtype=str), tuple(columns)
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.members, self.kind, self.season_length = list(members or []), kind, int(season_length)
        self.errors, self.error_series = errors, error_series  # (R, steps) scale-free, (R,) series
        self.meta = dict(meta or {})

    @property
    def horizon(self) -> int:
        return min(m.config.horizon for m in self.members) if self.members else 10**9

    @property
    def window(self) -> int:
        """Points of history a forecast needs."""
        if self.members:
            return max(m.config.window for m in self.members)
        return self.season_length if self.kind == "seasonal_naive" else 1

    @property
    def span(self) -> int:
        """Points before an origin that set its local scale (as for one series)."""
        return self.window if self.members else max(self.season_length, 12)

    def paths(self, panel: Panel, starts: np.ndarray, steps: int) -> np.ndarray:
        """The forecast path from each origin row ``starts`` of ``panel``'s rows (in one series,
        at least ``window`` rows after its first), ``[B, steps]`` in original units."""
        if not self.members:
            blocks = starts[:, None] + np.arange(steps)[None, :]
            return baseline_forecast(str(self.kind), panel.values[:, 0].astype(np.float64), blocks,
                                     self.season_length)
        if len(self.columns) > 1 and steps > self.horizon:
            raise ForecastError(
                f"forecasting {steps} steps with extra features {list(self.columns[1:])} needs their "
                f"future values beyond the networks' horizon {self.horizon}, which a panel forecast "
                f"does not take yet: forecast at most {self.horizon} steps (--horizon)")
        rows = panel.series_index()
        scaled = ((panel.values - self.mean[rows]) / self.std[rows]).astype(np.float32)
        series = rows[starts - 1]  # an origin row may be the next series' first (or past the end)
        paths = [_panel_paths(m.model, m.config, scaled, starts, steps) for m in self.members]
        return np.mean([panel_unscale(self.mean, self.std, series, p) for p in paths], axis=0)

    def held_out_scores(self, panel: Panel, first: np.ndarray, steps: int,
                        end: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scale-free errors ``[R, steps]`` from every origin ``first[s] <= o < end[s]`` of each
        series (NaN at targets from ``end[s]``), with each row's series and local scale ``(R,)``."""
        end = panel.lengths if end is None else np.asarray(end)
        starts, series, scales = [], [], []
        for s in range(panel.n_series):
            local = np.arange(max(int(first[s]), self.window, 1), int(end[s]))
            o = int(panel.offsets[s])
            starts.append(o + local)
            series.append(np.full(len(local), s))
            scales.append(local_scale(panel.values[o:o + int(end[s])], local, self.span, PANEL_SCALE_FLOOR))
        start, which, scale = (np.concatenate(a) for a in (starts, series, scales))
        if not len(start):
            return np.zeros((0, steps)), which.astype(int), scale
        paths = self.paths(panel, start, steps)  # (R, steps)
        position = (start - panel.offsets[which])[:, None] + np.arange(steps)[None, :]  # in the series
        inside = position < end[which][:, None]
        truth = np.full(paths.shape, np.nan)
        truth[inside] = panel.values[(panel.offsets[which][:, None] + position)[inside], 0]
        return np.abs(truth - paths) / scale[:, None], which.astype(int), scale

    def predict(self, panel: Panel, steps: int, levels: tuple[float, ...] = LEVELS,
                times: list[list[Any]] | None = None) -> PanelPrediction:
        """Forecast ``steps`` values after each series' last point, with intervals from the
        held-out scores (per series, or pooled across series for short ones)."""
        if steps < 1:
            raise ForecastError(f"the horizon must be >= 1, got {steps}")
        if list(panel.ids) != list(self.ids):
            raise ForecastError(f"the panel's series ({panel.n_series}) are not the forecaster's "
                                f"({len(self.ids)}): give the searched series")
        short = np.flatnonzero(panel.lengths < self.window)
        if len(short):
            raise ForecastError(f"series '{panel.ids[short[0]]}' has {panel.lengths[short[0]]} points, "
                                f"the forecaster needs the last {self.window}")
        if self.errors is None or self.error_series is None:
            raise ForecastError("the forecaster has no held-out scores to set its intervals: make the "
                                "forecast again from the experiment (`tunecast forecast`)")
        if self.errors.shape[1] < steps:
            raise ForecastError(f"the held-out errors cover {self.errors.shape[1]} steps, not {steps}: "
                                "make the forecast again from the experiment (`tunecast forecast --horizon`)")
        ends = panel.offsets + panel.lengths
        mean = self.paths(panel, ends, steps)  # (S, steps)
        scale = np.array([local_scale(panel.values[o:e], np.array([e - o]), self.span, PANEL_SCALE_FLOOR)[0]
                          for o, e in zip(panel.offsets, ends, strict=True)])
        for level in levels:
            if not 0 < level < 100:
                raise ForecastError(f"an interval level must lie in (0, 100), got {level:g}")
        widths, own = panel_widths(self.errors[:, :steps], self.error_series, panel.n_series, levels)
        lower = {level: mean - w * scale[:, None] for level, w in widths.items()}
        upper = {level: mean + w * scale[:, None] for level, w in widths.items()}
        if times is None:
            times = [list(range(int(n), int(n) + steps)) for n in panel.lengths]
        return PanelPrediction(list(map(str, panel.ids)), mean, lower, upper, times, own)

    def save(self, folder: str | Path) -> Path:
        """members/<i>/, errors.npy and errors_series.npy, series.csv (each series' id and
        scaling), forecaster.json last."""
        folder = Path(folder)
        for i, member in enumerate(self.members):
            checkpoint.save(folder / MEMBERS_DIR / str(i), member.model, member.info)
        if self.errors is not None and self.error_series is not None:
            np.save(folder / ERRORS_FILE, self.errors)
            np.save(folder / SCORE_SERIES_FILE, self.error_series)
        table: dict[str, Any] = {ID_COLUMN: self.ids}
        for j, name in enumerate(self.columns):
            table[f"mean:{name}"], table[f"std:{name}"] = self.mean[:, j], self.std[:, j]
        pd.DataFrame(table).to_csv(folder / SERIES_FILE, index=False)
        info = {"format": FORMAT, "format_version": 1, "panel": True, "members": len(self.members),
                "errors": self.errors is not None, "columns": list(self.columns),
                "baseline": self.kind, "season_length": self.season_length, **self.meta}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{INFO_FILE}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info, indent=2, allow_nan=False))
        os.replace(tmp, folder / INFO_FILE)
        return folder


def panel_unscale(mean: np.ndarray, std: np.ndarray, series: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Scaled targets ``y`` ``[B, steps]`` of ``series`` ``(B,)`` back to original units."""
    return y * std[series, 0][:, None] + mean[series, 0][:, None]


def _load_panel_forecaster(folder: Path, meta: dict[str, Any]) -> PanelForecaster:
    # read as text and parsed by numpy: round-trip exact, unlike pandas' default float parser
    table = pd.read_csv(folder / SERIES_FILE, dtype=str, keep_default_na=False)
    columns = tuple(map(str, meta["columns"]))
    mean = table[[f"mean:{name}" for name in columns]].to_numpy().astype(np.float64)
    std = table[[f"std:{name}" for name in columns]].to_numpy().astype(np.float64)
    errors = series = None
    if meta.get("errors"):
        errors = np.load(folder / ERRORS_FILE, allow_pickle=False)
        series = np.load(folder / SCORE_SERIES_FILE, allow_pickle=False)
    members = [Member(*checkpoint.load(folder / MEMBERS_DIR / str(i))) for i in range(int(meta["members"]))]
    extra = {k: v for k, v in meta.items() if k not in (
        "format", "format_version", "panel", "members", "errors", "columns", "baseline", "season_length")}
    return PanelForecaster(table[ID_COLUMN].to_numpy(str), columns, mean, std, members, meta.get("baseline"),
                           int(meta.get("season_length") or 1), errors, series, extra)
