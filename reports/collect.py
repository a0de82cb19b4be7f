"""Read an experiment directory (docs/experiment-dir.md) into typed results.

``collect(exp_dir)`` is the only place that knows the file formats. It is strict about what it
cannot do without (``tunecast.json``; ``trials.csv`` and ``history.csv`` of a finished search;
``best/`` when the run names a best trial; ``ensemble/`` when it exists) and raises
:class:`ReportError` naming the file and the fix. It is lenient about what a report can live
without: an interrupted search, failed trials or a missing optional column become notes in
:attr:`Experiment.warnings`, which the report shows in a banner. ``ensemble/`` itself is
optional: without it there is simply no ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports._files import ReportError, read_attention, read_csv, read_json

__all__ = ["BestTrial", "Ensemble", "EnsembleMember", "Experiment", "ReportError", "RunInfo",
           "collect"]

METRIC = "val_loss"  # the tuning metric, mode "min"
METRIC_NAMES = ("mae", "rmse", "mase", "smape")
FORECASTERS = ("model", "naive", "seasonal_naive")
OUTCOMES = ("completed", "stopped", "failed", "running", "pending")
FINISHED = ("completed", "stopped")  # ended without error, so they have a val_loss
RUN_STATUSES = ("running", "completed", "interrupted", "failed")
BEST_FILES = ("config.json", "metrics.json", "predictions.csv", "attention.npy")
ENSEMBLE_FILES = ("metrics.json", "predictions.csv")

_TRIAL_TEXT = ("trial_id", "status", "node_id", "node_ip", "device", "error")
_TRIAL_NUMBERS = ("best_val_loss", "best_epoch", "epochs_run", "start_time", "end_time",
                  "duration_s", "gpu_share", "restarts")
_HISTORY_NUMBERS = ("epoch", "train_loss", "val_loss", "timestamp")


@dataclass(frozen=True)
class RunInfo:
    """The run as ``tunecast.json`` describes it (missing sections are empty dicts)."""

    name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    search: dict[str, Any]
    data: dict[str, Any]
    versions: dict[str, Any]
    cluster: dict[str, Any]
    host: str
    best_trial_id: str | None

    @property
    def space(self) -> dict[str, dict[str, Any]]:
        """The search space: ``{name: {"type": "int"|"float"|"categorical"|"fixed", ...}}``."""
        space = self.search.get("space")
        return space if isinstance(space, dict) else {}

    @property
    def duration_s(self) -> float | None:
        """Wall time from start to end, or None while running / interrupted."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class BestTrial:
    """The best trial, re-evaluated on the test split (``best/``)."""

    trial_id: str
    train_config: dict[str, Any]
    target: str
    features: list[str]
    val_loss: float | None
    best_epoch: int | None
    horizon: int
    season_length: int
    protocol: str
    n_test_points: int
    test_metrics: dict[str, dict[str, float]]  # {"model"|"naive"|"seasonal_naive": {metric: v}}
    predictions: pd.DataFrame  # index, time, split, y_true, y_pred, block
    attention: np.ndarray  # (test windows, window), rows sum to 1


@dataclass(frozen=True)
class EnsembleMember:
    """One trial of the top-k ensemble, as ``ensemble/metrics.json`` lists it."""

    trial_id: str
    val_loss: float | None
    best_epoch: int | None


@dataclass(frozen=True)
class Ensemble:
    """The mean forecast of the k trials with the lowest val_loss, on the test split
    (``ensemble/``). It has no attention weights: its members may have different windows."""

    members: tuple[EnsembleMember, ...]  # lowest val_loss first; at least two
    combination: str  # how the forecasts are combined ("mean of the members' forecasts")
    val_loss: float | None  # MSE of the mean forecast on the validation windows (scaled units)
    horizon: int
    season_length: int
    protocol: str
    n_test_points: int
    test_metrics: dict[str, dict[str, float]]  # {"model"|"naive"|"seasonal_naive": {metric: v}}
    predictions: pd.DataFrame  # index, time, split, y_true, y_pred, block (as best/)

    @property
    def k(self) -> int:
        """Number of members."""
        return len(self.members)

    @property
    def trial_ids(self) -> list[str]:
        """The members' trial ids, lowest val_loss first."""
        return [m.trial_id for m in self.members]


@dataclass(frozen=True)
class Experiment:
    """Everything a report shows, read from one experiment directory."""

    path: Path
    run: RunInfo
    trials: pd.DataFrame  # one row per trial; columns of trials.csv, in creation order
    history: pd.DataFrame  # trial_id, epoch, train_loss, val_loss, timestamp
    best: BestTrial | None
    warnings: tuple[str, ...]
    ensemble: Ensemble | None = None  # None without ensemble/ (fewer than 2 trials, --ensemble 1)

    @property
    def counts(self) -> dict[str, int]:
        """Number of trials per outcome, every known outcome present (0 when none)."""
        counts = {status: 0 for status in OUTCOMES}
        for status, n in self.trials["status"].value_counts().items():
            counts[str(status)] = int(n)
        return counts

    @property
    def finished(self) -> pd.DataFrame:
        """Trials that ended without error and reported a finite ``val_loss``."""
        trials = self.trials
        ok = trials["status"].isin(FINISHED) & np.isfinite(trials["best_val_loss"])
        return trials[ok]

    @property
    def param_names(self) -> list[str]:
        """Tuned hyperparameters: the space's non-fixed entries that trials.csv records."""
        columns = {c.removeprefix("config/") for c in self.trials.columns if c.startswith("config/")}
        tuned = [n for n, s in self.run.space.items() if s.get("type") != "fixed" and n in columns]
        if tuned or self.run.space:
            return tuned
        # No space recorded: fall back to the config columns that vary between trials.
        return sorted(n for n in columns if self.trials[f"config/{n}"].nunique(dropna=True) > 1)


def collect(exp_dir: str | Path) -> Experiment:
    """Read an experiment directory into an :class:`Experiment`.

    Args:
        exp_dir: the directory ``tunecast search`` wrote (``<storage>/<name>``).

    Returns:
        The typed results; ``best`` is None when no trial finished or the search stopped before
        writing ``best/``; ``ensemble`` is None without ``ensemble/`` (or without a best trial);
        and ``warnings`` lists what the report must point out.

    Raises:
        ReportError: the path is not an experiment directory, or a required file is missing or
            corrupt.
    """
    path = Path(exp_dir)
    if not path.exists():
        raise ReportError(f"{path} does not exist; pass the directory that `tunecast search` wrote")
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory; pass the experiment directory, not a file")
    if not (path / "tunecast.json").is_file():
        raise ReportError(
            f"{path} is not a tunecast experiment: tunecast.json is missing; pass the directory "
            "that `tunecast search` wrote (<storage>/<name>)"
        )
    notes: list[str] = []
    run = _read_run(path, notes)
    partial = run.status != "completed"
    trials = _read_trials(path, partial, notes)
    history = _read_history(path, partial, notes)
    best = _read_best(path, run, trials, notes)
    ensemble = _read_ensemble(path, run, trials, best, notes)
    unknown = sorted(set(trials["status"]) - set(OUTCOMES))
    if unknown:
        notes.append(f"trials.csv has unknown statuses {unknown}; they are counted as they are")
    return Experiment(path, run, trials, history, best, tuple(notes), ensemble)


def _read_run(path: Path, notes: list[str]) -> RunInfo:
    raw = read_json(path, "tunecast.json")
    version = raw.get("format_version", 1)
    if version != 1:
        notes.append(f"tunecast.json has format_version {version}; this report reads version 1")
    status = str(raw.get("status") or "unknown")
    if status not in RUN_STATUSES:
        notes.append(f"tunecast.json has an unknown status {status!r}")
    best_id = raw.get("best_trial_id")

    def section(key: str) -> dict[str, Any]:
        value = raw.get(key)
        return value if isinstance(value, dict) else {}

    return RunInfo(
        name=str(raw.get("name") or path.name),
        status=status,
        started_at=_parse_time(raw.get("started_at"), "started_at", notes),
        ended_at=_parse_time(raw.get("ended_at"), "ended_at", notes),
        search=section("search"),
        data=section("data"),
        versions=section("versions"),
        cluster=section("cluster"),
        host=str(raw.get("host") or ""),
        best_trial_id=None if best_id in (None, "") else str(best_id),
    )


def _parse_time(value: object, key: str, notes: list[str]) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        notes.append(f"tunecast.json: {key} {value!r} is not an ISO 8601 time; ignored")
        return None


def _read_trials(path: Path, partial: bool, notes: list[str]) -> pd.DataFrame:
    columns = (*_TRIAL_TEXT, *_TRIAL_NUMBERS)
    if partial and not (path / "trials.csv").is_file():
        notes.append("trials.csv is missing (the search stopped before writing it): no trials shown")
        return pd.DataFrame({c: pd.Series(dtype=str if c in _TRIAL_TEXT else float)
                             for c in columns})
    trials = read_csv(path, "trials.csv", text=_TRIAL_TEXT, numbers=_TRIAL_NUMBERS,
                      required=("trial_id", "status", "best_val_loss"), notes=notes)
    trials["status"] = trials["status"].str.strip().str.lower()
    if trials["trial_id"].duplicated().any():
        raise ReportError(f"{path / 'trials.csv'} lists a trial_id twice; restore the file from "
                          "the search or re-run it")
    return trials.reset_index(drop=True)


def _read_history(path: Path, partial: bool, notes: list[str]) -> pd.DataFrame:
    if partial and not (path / "history.csv").is_file():
        notes.append("history.csv is missing (the search stopped before writing it): no curves")
        return pd.DataFrame({"trial_id": pd.Series(dtype=str),
                             **{c: pd.Series(dtype=float) for c in _HISTORY_NUMBERS}})
    history = read_csv(path, "history.csv", text=("trial_id",), numbers=_HISTORY_NUMBERS,
                       required=("trial_id", "epoch", "val_loss"), notes=notes)
    return history.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def _read_best(
    path: Path, run: RunInfo, trials: pd.DataFrame, notes: list[str]
) -> BestTrial | None:
    best_dir = path / "best"
    if run.best_trial_id is None:
        if best_dir.is_dir():
            notes.append("best/ exists but tunecast.json names no best trial; best/ is ignored")
        return None
    missing = [name for name in BEST_FILES if not (best_dir / name).is_file()]
    if missing:
        where = ", ".join(f"best/{name}" for name in missing)
        if run.status == "completed":
            raise ReportError(
                f"{path} names best trial {run.best_trial_id} but {where} is missing; copy the "
                "whole experiment directory, or re-run the search"
            )
        notes.append(f"the search stopped before the best trial was evaluated ({where} missing)")
        return None
    config = read_json(path, "best/config.json")
    metrics = read_json(path, "best/metrics.json")
    predictions = _read_predictions(path, "best/predictions.csv", notes)
    attention = read_attention(path, "best/attention.npy")
    train_config = config.get("train_config")
    if not isinstance(train_config, dict):
        raise ReportError(f"{best_dir / 'config.json'} has no train_config object; re-run the "
                          "search or restore the file")
    trial_id = str(config.get("trial_id") or run.best_trial_id)
    if trial_id != run.best_trial_id:
        notes.append(f"best/config.json is for trial {trial_id}, tunecast.json names "
                      f"{run.best_trial_id}")
    if run.best_trial_id not in set(trials["trial_id"]):
        notes.append(f"the best trial {run.best_trial_id} is not in trials.csv")
    features = config.get("features")
    return BestTrial(
        trial_id=trial_id,
        train_config=train_config,
        target=str(config.get("target") or run.data.get("target") or "target"),
        features=[str(f) for f in features] if isinstance(features, list) else [],
        val_loss=_float_or_none(metrics.get("val_loss")),
        best_epoch=_int_or_none(metrics.get("best_epoch")),
        horizon=_int_or_none(metrics.get("horizon")) or int(train_config.get("horizon", 1)),
        season_length=_int_or_none(metrics.get("season_length"))
        or int(run.data.get("season_length") or 1),
        protocol=str(metrics.get("protocol") or ""),
        n_test_points=_int_or_none(metrics.get("n_test_points"))
        or int(predictions["y_pred"].notna().sum()),
        test_metrics=_test_metrics(best_dir / "metrics.json", metrics),
        predictions=predictions,
        attention=attention,
    )


def _read_ensemble(
    path: Path, run: RunInfo, trials: pd.DataFrame, best: BestTrial | None, notes: list[str]
) -> Ensemble | None:
    ens_dir = path / "ensemble"
    if not ens_dir.exists():
        return None  # optional: no ensemble was asked for, or fewer than 2 trials finished
    if not ens_dir.is_dir():
        raise ReportError(f"{ens_dir} is not a directory; remove it or re-run the search")
    if best is None:
        notes.append("ensemble/ exists but there is no evaluated best trial; ensemble/ is ignored")
        return None
    missing = [name for name in ENSEMBLE_FILES if not (ens_dir / name).is_file()]
    if missing:
        where = ", ".join(f"ensemble/{name}" for name in missing)
        if run.status == "completed":
            raise ReportError(f"{path} has an ensemble/ folder but {where} is missing; copy the "
                              "whole experiment directory, or re-run the search")
        notes.append(f"the search stopped before the ensemble was evaluated ({where} missing)")
        return None
    file = ens_dir / "metrics.json"
    metrics = read_json(path, "ensemble/metrics.json")
    members = _ensemble_members(file, metrics.get("members"))
    k = metrics.get("k")
    if k is not None and _int_or_none(k) != len(members):
        raise ReportError(f"{file} says k = {k} but lists {len(members)} members; re-run the "
                          "search or restore the file")
    predictions = _read_predictions(path, "ensemble/predictions.csv", notes)
    horizon = _int_or_none(metrics.get("horizon")) or best.horizon
    if horizon != best.horizon:
        notes.append(f"ensemble/ forecasts with horizon {horizon}, the best trial with "
                     f"{best.horizon}; the two are not scored on the same test points")
    ids = [m.trial_id for m in members]
    unknown = [trial_id for trial_id in ids if trial_id not in set(trials["trial_id"])]
    if unknown:
        notes.append(f"ensemble members {', '.join(unknown)} are not in trials.csv")
    if ids[0] != best.trial_id:
        notes.append(f"the ensemble's first member is trial {ids[0]}, not the best trial "
                     f"{best.trial_id}; ensemble/ may be from an earlier run")
    test_metrics = _test_metrics(file, metrics)
    if any(not np.allclose(list(test_metrics[name].values()),
                           list(best.test_metrics[name].values()), rtol=1e-6, equal_nan=True)
           for name in ("naive", "seasonal_naive")):
        notes.append("ensemble/metrics.json scores the naive baselines differently from "
                     "best/metrics.json; the report shows best/'s baselines")
    return Ensemble(
        members=members,
        combination=str(metrics.get("combination") or "mean of the members' forecasts"),
        val_loss=_float_or_none(metrics.get("val_loss")),
        horizon=horizon,
        season_length=_int_or_none(metrics.get("season_length")) or best.season_length,
        protocol=str(metrics.get("protocol") or best.protocol),
        n_test_points=_int_or_none(metrics.get("n_test_points"))
        or int(predictions["y_pred"].notna().sum()),
        test_metrics=test_metrics,
        predictions=predictions,
    )


def _ensemble_members(file: Path, raw: object) -> tuple[EnsembleMember, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise ReportError(f"{file} needs a members list of at least two trials; re-run the search "
                          "or restore the file")
    members = []
    for position, member in enumerate(raw):
        if not isinstance(member, dict) or not isinstance(member.get("trial_id"), str) \
                or not member["trial_id"]:
            raise ReportError(f"{file} lacks a trial_id at members[{position}]; re-run the search "
                              "or restore the file")
        members.append(EnsembleMember(member["trial_id"], _float_or_none(member.get("val_loss")),
                                      _int_or_none(member.get("best_epoch"))))
    ids = [m.trial_id for m in members]
    if len(set(ids)) != len(ids):
        raise ReportError(f"{file} lists a member trial twice; re-run the search or restore the "
                          "file")
    return tuple(members)


def _read_predictions(path: Path, name: str, notes: list[str]) -> pd.DataFrame:
    predictions = read_csv(path, name, text=("time", "split"),
                           numbers=("index", "y_true", "y_pred", "block"),
                           required=("split", "y_true", "y_pred"), notes=notes)
    if predictions["index"].isna().all():
        predictions["index"] = np.arange(len(predictions), dtype=float)
    return predictions


def _test_metrics(file: Path, metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    test = metrics.get("test")
    out: dict[str, dict[str, float]] = {}
    for forecaster in FORECASTERS:
        values = test.get(forecaster) if isinstance(test, dict) else None
        if not isinstance(values, dict):
            raise ReportError(f"{file} lacks test.{forecaster}; re-run the search or restore it")
        out[forecaster] = {}
        for name in METRIC_NAMES:
            value = _float_or_none(values.get(name))
            if value is None:
                raise ReportError(f"{file} lacks a number at test.{forecaster}.{name}; re-run "
                                  "the search or restore the file")
            out[forecaster][name] = value
    return out


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int_or_none(value: object) -> int | None:
    number = _float_or_none(value)
    return None if number is None or not np.isfinite(number) else int(number)
