"""The forecast past the data from a finished experiment: choose, (optionally) refit, calibrate, write.

The forecaster is the candidate (ensemble or best trial, combination, naive, seasonal-naive) with
the lowest validation loss (:func:`tunecast.search.selection.select`). By default its networks
forecast as the search trained them; intervals are split conformal (``model.forecast``) from their
held-out errors after the training part, and the honesty check calibrates on validation origins
only and counts test coverage. ``refit_models`` (``--refit``) retrains each network on every point
for its checkpoint's epochs, keeping the searched networks' errors; it is not the default because
it was no better on validation (see benchmarks/RESULTS.md). A panel (:func:`make_panel_forecast`)
is forecast the same way by one global forecaster, each series from its own last window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tunecast.expdir import atomic_dir, write_json
from tunecast.expdir import contract as c
from tunecast.expdir.contract import (
    BestRecord,
    CombinedRecord,
    EnsembleRecord,
    ForecastRecord,
    RunRecord,
)
from tunecast.model import checkpoint
from tunecast.model.data import DataError, Dataset, DataSpec, load, read
from tunecast.model.forecast import (
    LEVELS,
    BaselineForecaster,
    Forecaster,
    ForecastError,
    Member,
    PanelForecaster,
    PanelPrediction,
    Prediction,
    conformal_quantiles,
    future_times,
    panel_for_refit,
    panel_widths,
    refit,
)
from tunecast.model.panel import Panel, PanelSpec, load_panel, panel_from_frame
from tunecast.model.statistical import Statistical, StatisticalError
from tunecast.search.experiment import network_folders

RefitAll = Callable[[list[Member], Dataset | Panel], list[Member]]


def _json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForecastError(f"{path} is missing: the search did not finish; resume it "
                            "(tunecast search --resume) first") from None
    except (OSError, ValueError) as exc:
        raise ForecastError(f"{path} is unreadable ({exc}): restore the experiment or re-run the "
                            "search") from None
    if not isinstance(raw, dict):
        raise ForecastError(f"{path} is not a JSON object: restore the experiment or re-run the search")
    return raw


def is_panel_experiment(exp_dir: Path) -> bool:
    """Whether the experiment searched a panel of many series (tunecast.json's data says so)."""
    try:
        raw = json.loads((exp_dir / c.RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and isinstance(raw.get("data"), dict) and "n_series" in raw["data"]


def read_experiment(exp_dir: Path) -> tuple[RunRecord, BestRecord, EnsembleRecord | None]:
    """The run, its best trial and its ensemble; a clear error when the search did not finish."""
    if not exp_dir.is_dir():
        raise ForecastError(f"experiment '{exp_dir}' does not exist: pass the folder that "
                            "`tunecast search` printed")
    try:
        run = RunRecord.from_dict(_json(exp_dir / c.RUN_FILE))
        if run.status != "completed" or run.best_trial_id is None:
            raise ForecastError(f"experiment '{exp_dir}' is {run.status}, with no best trial to forecast "
                                "with: resume it (tunecast search --resume) or run a new search")
        best = BestRecord.from_dict(_json(exp_dir / c.BEST_DIR / c.METRICS_FILE))
        ensemble_file = exp_dir / c.ENSEMBLE_DIR / c.METRICS_FILE
        ensemble = EnsembleRecord.from_dict(_json(ensemble_file)) if ensemble_file.exists() else None
    except c.NewerFormatError as exc:
        raise ForecastError(f"experiment '{exp_dir}': {exc}") from None
    except c.ContractError as exc:
        raise ForecastError(f"experiment '{exp_dir}' is corrupt ({exc}): restore it or re-run the "
                            "search") from None
    return run, best, ensemble


def choose(best: BestRecord, ensemble: EnsembleRecord | None, run: RunRecord | None = None) -> str:
    """What the search chose (tunecast.json's ``selection``); for older experiments, the lower
    validation loss of ensemble and best trial."""
    if run is not None and run.selection is not None:
        return run.selection.chosen
    if ensemble is not None and ensemble.val_loss is not None and best.val_loss is not None \
            and ensemble.val_loss < best.val_loss:
        return "ensemble"
    return "best"


def read_combined(exp_dir: Path) -> CombinedRecord:
    """combined/metrics.json, which a search that chose the combination wrote."""
    try:
        return CombinedRecord.from_dict(_json(exp_dir / c.COMBINED_DIR / c.METRICS_FILE))
    except c.ContractError as exc:
        raise ForecastError(f"experiment '{exp_dir}' is corrupt ({exc}): restore it or re-run the "
                            "search") from None


def search_forecaster(exp_dir: Path, choice: str, best: BestRecord,
                      ensemble: EnsembleRecord | None,
                      data: Dataset | None = None) -> tuple[Forecaster, tuple[str, ...]]:
    """The chosen networks as the search left them; for the combination, with AutoETS and
    AutoARIMA fitted on ``data``'s training part."""
    assert choice != "ensemble" or ensemble is not None
    kept = network_folders(exp_dir, best, ensemble if choice != "best" else None)
    ids, folders = tuple(trial_id for trial_id, _ in kept), [folder for _, folder in kept]
    statistical = None
    if choice == "combined":
        if data is None:
            raise ValueError("the combination needs the series to fit its statistical models on")
        record = read_combined(exp_dir)
        if ids != record.networks:
            raise ForecastError(f"experiment '{exp_dir}' is corrupt ({c.COMBINED_DIR}/ names networks "
                                f"{', '.join(record.networks)}, the search kept others): restore it or "
                                "re-run the search")
        try:
            statistical = Statistical(data.values[:, 0], record.fit_end, record.scores.season_length,
                                      record.statistical)
        except StatisticalError as exc:
            raise ForecastError(str(exc)) from None
    try:
        members = [Member(*checkpoint.load(folder)) for folder in folders]
        return Forecaster(members, statistical=statistical), ids
    except checkpoint.CheckpointError as exc:
        raise ForecastError(str(exc)) from None


def load_data(run: RunRecord, source: str | None) -> Dataset:
    """The search's series, or ``source``: the same series extended with newer rows."""
    spec = DataSpec.from_dict(run.config.get("data") or {})
    if source is None:
        return load(spec)
    original = load(spec)
    updated = load(DataSpec.from_dict({**spec.to_dict(), "source": source}))
    if updated.columns != original.columns:
        raise DataError(f"'{source}' has columns {list(updated.columns)}, the search used "
                        f"{list(original.columns)}: give the same columns")
    n = original.n_points
    if updated.n_points < n or not np.allclose(updated.values[:n], original.values, rtol=1e-5, atol=1e-6):
        raise DataError(f"'{source}' is not the search's series extended with newer rows (its first "
                        f"{n} rows differ): give the searched series with the new rows appended")
    return updated


def default_horizon(best: BestRecord) -> int:
    """The search's horizon, or one season when that is 1 and the series has a season."""
    horizon = int(best.train_config.get("horizon", 1))
    season = best.scores.season_length
    return season if horizon == 1 and season > 1 else horizon


def _honesty(scores_val: np.ndarray, scores_test: np.ndarray, scale_test: np.ndarray,
             levels: tuple[float, ...]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Coverage and mean width on test of intervals calibrated on validation scores."""
    coverage: dict[str, float | None] = {}
    width: dict[str, float | None] = {}
    for level in levels:
        q = conformal_quantiles(scores_val, level)  # (steps,), in local-scale units
        seen = np.isfinite(scores_test)
        key = f"{level:g}"
        if not seen.any() or not np.isfinite(q).any():
            coverage[key] = width[key] = None
            continue
        coverage[key] = float((scores_test <= q[None, :])[seen].mean())
        widths = (2 * q[None, :] * scale_test[:, None])[seen]  # original units
        width[key] = float(np.mean(widths)) if np.isfinite(widths).all() else None
    return coverage, width


def _cut(scores: np.ndarray, scales: np.ndarray, first: int, start: int, end: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """The held-out scores (rows: origins ``first, first + 1, ...``) of origins in ``[start, end)``,
    NaN where a target lies at or after ``end``, with their scales."""
    origins = first + np.arange(len(scores))
    rows = (origins >= start) & (origins < end)
    cut = scores[rows].copy()
    cut[origins[rows][:, None] + np.arange(scores.shape[1])[None, :] >= end] = np.nan
    return cut, scales[rows]


def make_forecast(
    exp_dir: Path,
    horizon: int | None = None,
    levels: tuple[float, ...] = LEVELS,
    refit_models: bool = False,
    source: str | None = None,
    future: np.ndarray | None = None,
    refit_all: RefitAll | None = None,
) -> tuple[Forecaster | PanelForecaster, Prediction | PanelPrediction, ForecastRecord, Dataset | Panel]:
    """Forecast past the end of the experiment's series (or ``source``) with intervals (a panel:
    :func:`make_panel_forecast`). ``refit_all`` refits the networks (default: in turn, here)."""
    run, best, ensemble = read_experiment(exp_dir)
    steps = default_horizon(best) if horizon is None else horizon
    if steps < 1:
        raise ForecastError(f"--horizon must be >= 1, got {steps}")
    for level in levels:
        if not 0 < level < 100:
            raise ForecastError(f"--level must lie in (0, 100), got {level:g}")
    if "n_series" in run.data:
        if future is not None:
            raise ForecastError("--future is not taken for a panel forecast yet: drop it (a panel with "
                                "extra features is forecast at most its trained horizon ahead)")
        return make_panel_forecast(exp_dir, (run, best, ensemble), steps, levels, refit_models, source,
                                   refit_all)
    data = load_data(run, source)
    times = future_times(data.time, data.n_points, steps)
    choice = choose(best, ensemble, run)
    if choice in c.BASELINES:
        searched: Forecaster = BaselineForecaster(choice, data.season_length, data.columns)
        ids: tuple[str, ...] = ()
    else:
        searched, ids = search_forecaster(exp_dir, choice, best, ensemble, data)
    if len(data.columns) > 1 and steps > searched.horizon and future is None:
        raise ForecastError(
            f"forecasting {steps} steps with extra features {list(data.columns[1:])} needs their future "
            f"values beyond the trained horizon {searched.horizon}: pass --future FILE with the next "
            f"{steps} rows of {', '.join(data.columns[1:])}")
    split = int(run.data.get("n_train", 0)) + int(run.data.get("n_val", 0))
    trained_on = searched.trained_on if searched.members else int(run.data.get("n_train", 0))
    errors, scales = searched.held_out_scores(data.values, trained_on, steps)  # validation and test origins
    check_val, _ = _cut(errors, scales, max(trained_on, searched.window), trained_on, split)
    check_test, scale_test = _cut(errors, scales, max(trained_on, searched.window), split,
                                  int(run.data.get("n_points", 0)))
    coverage, width = _honesty(check_val, check_test, scale_test, levels)
    began = time.perf_counter()
    refitted = refit_models and bool(searched.members)  # a baseline has nothing to refit
    members = (refit_all or refit_each)(searched.members, data) if refitted else searched.members
    seconds = time.perf_counter() - began if refitted else 0.0
    meta = {"chosen": choice, "trial_ids": list(ids), "refit": refitted}
    statistical = searched.statistical
    if refitted and isinstance(statistical, Statistical):  # fitted again on every point, as the networks
        try:
            statistical = Statistical(data.values[:, 0], data.n_points, statistical.season_length,
                                      statistical.models)
        except StatisticalError as exc:
            raise ForecastError(str(exc)) from None
    forecaster = Forecaster(members, errors, meta, statistical) if members else \
        BaselineForecaster(choice, data.season_length, data.columns, errors, meta)
    prediction = forecaster.predict(data.values, steps, levels, future=future, times=times)
    record = ForecastRecord(
        chosen=choice, trial_ids=ids, refit=refitted,
        epochs=tuple(m.info.epoch for m in members), horizon=steps, levels=tuple(levels),
        n_points=data.n_points,
        last_time=str(data.time[-1]) if data.time is not None else str(data.n_points - 1),
        calibration_origins=int(np.isfinite(errors[:, 0]).sum()) if len(errors) else 0,
        coverage=coverage, mean_width=width, seconds=round(seconds, 3),
    )
    return forecaster, prediction, record, data


def refit_each(members: list[Member], data: Dataset | Panel) -> list[Member]:
    """Refit every network on all of ``data`` for the epochs of its checkpoint, in turn."""
    return [refit(m, data, m.info.epoch) for m in members]


def write_forecast(exp_dir: Path, forecaster: Forecaster | PanelForecaster,
                   prediction: Prediction | PanelPrediction, record: ForecastRecord) -> Path:
    """``forecast/``: forecast.csv, metrics.json and the forecaster's networks, atomically."""
    target = exp_dir / c.FORECAST_DIR
    with atomic_dir(target) as tmp:
        forecaster.save(tmp)
        write_json(tmp / c.METRICS_FILE, record.to_dict())
        prediction.frame().to_csv(tmp / c.FORECAST_FILE, index=False)
    return target


def load_panel_data(run: RunRecord, source: str | None) -> tuple[Panel, Panel]:
    """The searched panel and the panel to forecast from (it, or ``source``: the same series
    extended with newer rows)."""
    spec = PanelSpec.from_dict(run.config.get("data") or {})
    original = load_panel(spec)
    if source is None:
        return original, original
    spec = replace(spec, source=source)
    frame, name, *_ = read(spec)
    if spec.id_column not in frame.columns:
        raise DataError(f"'{source}' has no id column '{spec.id_column}' (the search's; its columns: "
                        f"{', '.join(map(str, frame.columns))}): give the same id, time and target columns")
    if original.dropped:  # series the search dropped as too short stay out, grown or not
        frame = frame[~frame[spec.id_column].astype(str).isin(set(original.dropped))]
    updated = panel_from_frame(frame, spec, name)
    if updated.columns != original.columns:
        raise DataError(f"'{source}' has columns {list(updated.columns)}, the search used "
                        f"{list(original.columns)}: give the same columns")
    missing = sorted(set(original.ids) - set(updated.ids))
    extra = sorted(set(updated.ids) - set(original.ids))
    if missing or extra:
        what = f"lacks series '{missing[0]}'" if missing else \
            f"has series '{extra[0]}' the search did not see"
        raise DataError(f"'{source}' {what} ({len(missing)} missing, {len(extra)} new): give the searched "
                        "series, each extended with newer rows")
    for s in range(original.n_series):
        old, new = original.series(s), updated.series(s)
        n = old.n_points
        if new.n_points < n or not np.allclose(new.values[:n], old.values, rtol=1e-5, atol=1e-6):
            raise DataError(f"series '{old.name}' of '{source}' is not the searched one extended with newer "
                            f"rows (its first {n} rows differ): append the new rows to the searched series")
    return original, updated


def panel_times(panel: Panel, steps: int) -> list[list[Any]]:
    """Each series' next ``steps`` time stamps at its own inferred frequency (or positions)."""
    times = []
    for s in range(panel.n_series):
        series = panel.series(s)
        try:
            times.append(future_times(series.time, series.n_points, steps))
        except ForecastError as exc:
            raise ForecastError(f"series '{series.name}': {exc}") from None
    return times


def _last_time(panel: Panel) -> str:
    """The latest last time stamp of the series (or the longest's last position)."""
    if panel.time is None:
        return str(int(panel.lengths.max()) - 1)
    ends = panel.offsets + panel.lengths - 1
    latest = int(np.argmax(panel.time[ends]))
    return str(panel.series(latest).time[-1])  # type: ignore[index]


def _panel_honesty(searched: PanelForecaster, original: Panel, steps: int, levels: tuple[float, ...]
                   ) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Test coverage of intervals calibrated on validation scores only, and their mean width
    in local-scale units."""
    n_pre = original.n_train + original.n_val
    val, val_series, _ = searched.held_out_scores(original, original.n_train, steps, end=n_pre)
    test, test_series, _ = searched.held_out_scores(original, n_pre, steps)
    widths, _ = panel_widths(val, val_series, original.n_series, levels)
    coverage: dict[str, float | None] = {}
    width: dict[str, float | None] = {}
    seen = np.isfinite(test)
    for level in levels:
        q = widths[level][test_series]  # (R, steps)
        key = f"{level:g}"
        if not seen.any() or not np.isfinite(q[seen]).all():
            coverage[key] = width[key] = None
            continue
        coverage[key] = float((test <= q)[seen].mean())
        width[key] = float(np.mean(2 * q[seen]))
    return coverage, width


def make_panel_forecast(
    exp_dir: Path, experiment: tuple[RunRecord, BestRecord, EnsembleRecord | None], steps: int,
    levels: tuple[float, ...], refit_models: bool, source: str | None, refit_all: RefitAll | None,
) -> tuple[PanelForecaster, PanelPrediction, ForecastRecord, Panel]:
    """Every series' forecast past its own end by the chosen global forecaster, with intervals
    from every series' held-out scores."""
    run, best, ensemble = experiment
    original, data = load_panel_data(run, source)
    times = panel_times(data, steps)
    choice = choose(best, ensemble, run)
    scaling = (original.ids, original.columns, original.mean, original.std)
    if choice in c.BASELINES:
        searched = PanelForecaster(*scaling, kind=choice, season_length=data.season_length)
        ids: tuple[str, ...] = ()
    else:
        networks, ids = search_forecaster(exp_dir, choice, best, ensemble)
        searched = PanelForecaster(*scaling, members=networks.members)
    if len(data.columns) > 1 and steps > searched.horizon:
        raise ForecastError(
            f"forecasting {steps} steps with extra features {list(data.columns[1:])} needs their future "
            f"values beyond the trained horizon {searched.horizon}, which a panel forecast does not take "
            f"yet: pass --horizon {searched.horizon} or less")
    errors, series, _ = searched.held_out_scores(data, original.n_train, steps)  # validation and test origins
    coverage, width = _panel_honesty(searched, original, steps, levels)
    began = time.perf_counter()
    refitted = refit_models and bool(searched.members)
    members = (refit_all or refit_each)(searched.members, data) if refitted else searched.members
    seconds = time.perf_counter() - began if refitted else 0.0
    meta: dict[str, Any] = {"chosen": choice, "trial_ids": list(ids), "refit": refitted,
                            "n_series": data.n_series}
    everything = panel_for_refit(data) if refitted else original
    forecaster = PanelForecaster(data.ids, data.columns, everything.mean, everything.std, members,
                                 None if members else choice, data.season_length, errors, series, meta)
    prediction = forecaster.predict(data, steps, levels, times)
    forecaster.meta.update(calibrated_per_series=int(prediction.own.sum()),
                           calibrated_pooled=int((~prediction.own).sum()))
    record = ForecastRecord(
        chosen=choice, trial_ids=ids, refit=refitted, epochs=tuple(m.info.epoch for m in members),
        horizon=steps, levels=tuple(levels), n_points=data.n_points, last_time=_last_time(data),
        calibration_origins=int(np.isfinite(errors[:, 0]).sum()) if len(errors) else 0,
        coverage=coverage, mean_width=width, seconds=round(seconds, 3),
    )
    return forecaster, prediction, record, data
