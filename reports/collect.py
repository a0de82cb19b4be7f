"""Read an experiment directory (docs/experiment-dir.md) into typed results.

``collect(exp_dir)`` is the reading side of :mod:`expdir.contract`. It is strict about what it
cannot do without (``tunecast.json``; ``trials.csv`` and ``history.csv`` of a finished search;
``best/`` when the run names a best trial; an existing ``ensemble/``) and raises
:class:`ReportError` naming the file and the fix. What a report can live without (an interrupted
search, failed trials, a missing optional column, an unreadable ``combined/``) becomes a note in
:attr:`Experiment.warnings`. ``ensemble/``, ``combined/`` and ``importance.json`` are optional.
A panel (``n_series`` in ``best/metrics.json``) has aggregate test metrics, a ``unique_id``
column, and ``per_series.csv`` and ``best/attention_index.csv`` beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunecast.expdir import contract as c
from tunecast.expdir.contract import (
    BestRecord,
    CombinedRecord,
    ContractError,
    EnsembleRecord,
    ForecastRecord,
    ImportanceRecord,
    MemberRecord,
    RunRecord,
    ScoreRecord,
)
from tunecast.reports._files import ReportError, read_attention, read_csv, read_json

__all__ = ["BestTrial", "Combined", "Ensemble", "EnsembleMember", "Experiment", "Future", "ReportError",
           "RunInfo", "Scored", "collect"]

RunInfo = RunRecord  # the run as tunecast.json describes it
EnsembleMember = MemberRecord  # one trial of the top-k ensemble
_FIX = "re-run the search or restore the file"


@dataclass(frozen=True)
class Scored:
    """A forecaster's test scores (beside the baselines) and its forecast of the series."""

    scores: ScoreRecord
    predictions: pd.DataFrame  # index, time, split, y_true, y_pred, block

    @property
    def horizon(self) -> int:
        return self.scores.horizon

    @property
    def season_length(self) -> int:
        return self.scores.season_length

    @property
    def protocol(self) -> str:
        return self.scores.protocol

    @property
    def n_test_points(self) -> int:
        return self.scores.n_test_points

    @property
    def test_metrics(self) -> dict[str, dict[str, float]]:
        """``{"model"|"naive"|"seasonal_naive": {metric: value}}``."""
        return self.scores.test

    @property
    def is_panel(self) -> bool:
        """Whether these are the scores of a panel of many series (aggregates across series)."""
        return self.scores.n_series is not None


@dataclass(frozen=True)
class BestTrial(Scored):
    """The best trial, re-evaluated on the test split (``best/``)."""

    trial_id: str
    train_config: dict[str, Any]
    target: str
    features: list[str]
    val_loss: float | None
    best_epoch: int | None
    attention: np.ndarray  # (test windows, window), rows sum to 1
    per_series: pd.DataFrame | None = None  # a panel: per_series.csv, one row per series
    # a panel: attention_index.csv (unique_id, first_row, n_rows); None when absent or inconsistent
    attention_index: pd.DataFrame | None = None


@dataclass(frozen=True)
class Ensemble(Scored):
    """The mean forecast of the k trials with the lowest val_loss, on the test split
    (``ensemble/``). It has no attention weights: its members may have different windows."""

    members: tuple[MemberRecord, ...]  # lowest val_loss first; at least two
    combination: str  # how the forecasts are combined ("mean of the members' forecasts")
    val_loss: float | None  # MAE of the mean forecast on the validation windows (scaled units)
    per_series: pd.DataFrame | None = None  # a panel: per_series.csv, one row per series

    @property
    def k(self) -> int:
        """Number of members."""
        return len(self.members)

    @property
    def trial_ids(self) -> list[str]:
        """The members' trial ids, lowest val_loss first."""
        return [m.trial_id for m in self.members]


@dataclass(frozen=True)
class Combined(Scored):
    """The combination (``combined/``, a single series): the equal mean of the networks'
    forecast (the top-k ensemble's, or the best trial's without one) and each statistical
    model's (AutoETS, AutoARIMA) fitted on the training part, on the test split."""

    networks: tuple[str, ...]  # trial ids: the ensemble's members, or the best trial
    statistical: tuple[str, ...]  # the statistical models that were fitted, e.g. AutoETS, AutoARIMA
    fit_end: int  # the statistical models were fitted on the first fit_end points
    combination: str  # how the forecasts are combined
    val_loss: float | None  # MAE of the combined forecast on the validation windows (scaled units)


@dataclass(frozen=True)
class Future:
    """The forecast past the data's end (``forecast/``): H steps with intervals per level."""

    record: ForecastRecord
    frame: pd.DataFrame  # time, forecast, lo-<level>, hi-<level> per level

    def bounds(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = c.interval_columns(level)
        return self.frame[lo].to_numpy(np.float64), self.frame[hi].to_numpy(np.float64)


@dataclass(frozen=True)
class Experiment:
    """Everything a report shows, read from one experiment directory."""

    path: Path
    run: RunRecord
    trials: pd.DataFrame  # one row per trial; columns of trials.csv, in creation order
    history: pd.DataFrame  # trial_id, epoch, train_loss, val_loss, timestamp
    best: BestTrial | None
    warnings: tuple[str, ...]
    ensemble: Ensemble | None = None  # None without ensemble/ (fewer than 2 trials, --ensemble 1)
    importance: ImportanceRecord | None = None  # None without importance.json (the search stopped early)
    future: Future | None = None  # None without forecast/ (--no-forecast, or an unfinished search)
    # None without combined/ (a panel, --no-combine, an older experiment) or when it cannot be read
    combined: Combined | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Number of trials per outcome, every known outcome present (0 when none)."""
        counts = {status: 0 for status in c.TRIAL_STATUSES}
        for status, n in self.trials["status"].value_counts().items():
            counts[str(status)] = int(n)
        return counts

    @property
    def finished(self) -> pd.DataFrame:
        """Trials that ended without error and reported a finite ``val_loss``."""
        trials = self.trials
        ok = trials["status"].isin(c.FINISHED) & np.isfinite(trials["best_val_loss"])
        return trials[ok]

    @property
    def combined_networks(self) -> str:
        """Whose forecast the combination averages with its statistical models, in words: "the
        best trial", "the top-3 ensemble", or "trials a, b" when it names neither ("" without
        a combination)."""
        if self.combined is None:
            return ""
        networks = list(self.combined.networks)
        if self.ensemble is not None and networks == self.ensemble.trial_ids:
            return f"the top-{self.ensemble.k} ensemble"
        if self.best is not None and networks == [self.best.trial_id]:
            return "the best trial"
        return f"trial{'s' if len(networks) > 1 else ''} {', '.join(networks)}"

    @property
    def param_names(self) -> list[str]:
        """Tuned hyperparameters: the space's non-fixed entries that trials.csv records."""
        columns = {col.removeprefix(c.CONFIG_PREFIX) for col in self.trials.columns
                   if col.startswith(c.CONFIG_PREFIX)}
        tuned = [n for n, s in self.run.space.items() if s.get("type") != "fixed" and n in columns]
        if tuned or self.run.space:
            return tuned
        # No space recorded: fall back to the config columns that vary between trials.
        return sorted(n for n in columns
                      if self.trials[c.config_column(n)].nunique(dropna=True) > 1)


def collect(exp_dir: str | Path) -> Experiment:
    """Read an experiment directory into an :class:`Experiment`.

    Args:
        exp_dir: the directory ``tunecast search`` wrote (``<storage>/<name>``).

    Returns:
        The typed results; ``best`` is None when no trial finished or the search stopped before
        writing ``best/``; ``ensemble`` is None without ``ensemble/`` (or without a best trial);
        ``combined`` is None without a readable ``combined/``; and ``warnings`` lists what the
        report must point out.

    Raises:
        ReportError: the path is not an experiment directory, or a required file is missing or
            corrupt.
    """
    path = Path(exp_dir)
    if not path.exists():
        raise ReportError(f"{path} does not exist; pass the directory that `tunecast search` wrote")
    if not path.is_dir():
        raise ReportError(f"{path} is not a directory; pass the experiment directory, not a file")
    if not (path / c.RUN_FILE).is_file():
        raise ReportError(
            f"{path} is not a tunecast experiment: {c.RUN_FILE} is missing; pass the directory "
            "that `tunecast search` wrote (<storage>/<name>)"
        )
    notes: list[str] = []
    try:
        run = RunRecord.from_dict(read_json(path, c.RUN_FILE), notes)
    except ContractError as exc:  # a format newer than this tunecast
        raise ReportError(f"{path / c.RUN_FILE}: {exc}") from None
    if not run.name:
        run = replace(run, name=path.name)
    partial = run.status != "completed"
    trials = _read_trials(path, partial, notes)
    history = _read_history(path, partial, notes)
    best = _read_best(path, run, trials, notes)
    ensemble = _read_ensemble(path, run, trials, best, notes)
    combined = _read_combined(path, run, trials, best, ensemble, notes)
    importance = _read_importance(path, notes)
    future = _read_future(path, best, notes)
    unknown = sorted(set(trials["status"]) - set(c.TRIAL_STATUSES))
    if unknown:
        notes.append(f"{c.TRIALS_FILE} has unknown statuses {unknown}; they are counted as they are")
    return Experiment(path, run, trials, history, best, tuple(notes), ensemble, importance, future,
                      combined)


def _record(path: Path, name: str, kind: Any) -> Any:
    """Read ``path/name`` as the record ``kind``; a record that breaks the contract is a ReportError."""
    try:
        return kind.from_dict(read_json(path, name))
    except ContractError as exc:
        raise ReportError(f"{path / name} {exc}; {_FIX}") from None


def _read_trials(path: Path, partial: bool, notes: list[str]) -> pd.DataFrame:
    text, numbers = c.TRIAL_TEXT_COLUMNS, c.TRIAL_NUMBER_COLUMNS
    if partial and not (path / c.TRIALS_FILE).is_file():
        notes.append(f"{c.TRIALS_FILE} is missing (the search stopped before writing it): no trials shown")
        return pd.DataFrame({col: pd.Series(dtype=str if col in text else float)
                             for col in (*text, *numbers)})
    trials = read_csv(path, c.TRIALS_FILE, text=text, numbers=numbers,
                      required=("trial_id", "status", "best_val_loss"), notes=notes)
    trials["status"] = trials["status"].str.strip().str.lower()
    if trials["trial_id"].duplicated().any():
        raise ReportError(f"{path / c.TRIALS_FILE} lists a trial_id twice; restore the file from "
                          "the search or re-run it")
    return trials.reset_index(drop=True)


def _read_history(path: Path, partial: bool, notes: list[str]) -> pd.DataFrame:
    numbers = c.HISTORY_NUMBER_COLUMNS
    if partial and not (path / c.HISTORY_FILE).is_file():
        notes.append(f"{c.HISTORY_FILE} is missing (the search stopped before writing it): no curves")
        return pd.DataFrame({"trial_id": pd.Series(dtype=str),
                             **{col: pd.Series(dtype=float) for col in numbers}})
    history = read_csv(path, c.HISTORY_FILE, text=("trial_id",), numbers=numbers,
                       required=("trial_id", "epoch", "val_loss"), notes=notes)
    return history.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def _missing(path: Path, folder: str, files: tuple[str, ...], run: RunRecord, what: str,
             notes: list[str]) -> bool:
    """Whether a result folder lacks files: an error in a completed run, a note otherwise."""
    missing = [name for name in files if not (path / folder / name).is_file()]
    if not missing:
        return False
    where = ", ".join(f"{folder}/{name}" for name in missing)
    if run.status == "completed":
        raise ReportError(f"{path} {what} but {where} is missing; copy the whole experiment "
                          "directory, or re-run the search")
    notes.append(f"the search stopped before {folder}/ was evaluated ({where} missing)")
    return True


def _read_best(path: Path, run: RunRecord, trials: pd.DataFrame, notes: list[str]) -> BestTrial | None:
    best_dir = path / c.BEST_DIR
    if run.best_trial_id is None:
        if best_dir.is_dir():
            notes.append(f"{c.BEST_DIR}/ exists but {c.RUN_FILE} names no best trial; it is ignored")
        return None
    if _missing(path, c.BEST_DIR, c.BEST_FILES, run, f"names best trial {run.best_trial_id}", notes):
        return None
    record: BestRecord = _record(path, f"{c.BEST_DIR}/{c.METRICS_FILE}", BestRecord)
    panel = record.scores.n_series is not None
    predictions = _read_predictions(path, f"{c.BEST_DIR}/{c.PREDICTIONS_FILE}", notes, panel)
    attention = read_attention(path, f"{c.BEST_DIR}/{c.ATTENTION_FILE}")
    if record.trial_id != run.best_trial_id:
        notes.append(f"{c.BEST_DIR}/{c.METRICS_FILE} is for trial {record.trial_id}, {c.RUN_FILE} "
                     f"names {run.best_trial_id}")
    if run.best_trial_id not in set(trials["trial_id"]):
        notes.append(f"the best trial {run.best_trial_id} is not in {c.TRIALS_FILE}")
    return BestTrial(
        scores=record.scores,
        predictions=predictions,
        trial_id=record.trial_id,
        train_config=record.train_config,
        target=record.target,
        features=list(record.features),
        val_loss=record.val_loss,
        best_epoch=record.best_epoch,
        attention=attention,
        per_series=_read_per_series(path, c.BEST_DIR, notes) if panel else None,
        attention_index=_read_attention_index(path, len(attention), notes) if panel else None,
    )


def _read_attention_index(path: Path, n_rows: int, notes: list[str]) -> pd.DataFrame | None:
    """A panel's attention_index.csv, checked against attention.npy; None (and a note) when it
    is absent or does not fit: the report then shows no attention per series."""
    name = f"{c.BEST_DIR}/{c.ATTENTION_INDEX_FILE}"
    if not (path / name).is_file():
        notes.append(f"{name} is missing (written by an older tunecast): the attention of single "
                     "series is not shown; re-run the search to get it")
        return None
    try:
        index = read_csv(path, name, text=(c.SERIES_ID_COLUMN,), numbers=c.ATTENTION_INDEX_COLUMNS[1:],
                         required=c.ATTENTION_INDEX_COLUMNS, notes=notes)
    except ReportError as exc:  # optional: the rest of the report stands without it
        notes.append(f"{exc}: the attention of single series is not shown")
        return None
    first, count = index["first_row"].to_numpy(), index["n_rows"].to_numpy()
    if not (np.isfinite(first).all() and np.isfinite(count).all() and (first >= 0).all()
            and (count >= 0).all() and (first + count <= n_rows).all()):
        notes.append(f"{name} names rows that {c.BEST_DIR}/{c.ATTENTION_FILE} does not have: the "
                     "attention of single series is not shown")
        return None
    return index


def _read_ensemble(
    path: Path, run: RunRecord, trials: pd.DataFrame, best: BestTrial | None, notes: list[str]
) -> Ensemble | None:
    ens_dir = path / c.ENSEMBLE_DIR
    if not ens_dir.exists():
        return None  # optional: no ensemble was asked for, or fewer than 2 trials finished
    if not ens_dir.is_dir():
        raise ReportError(f"{ens_dir} is not a directory; remove it or re-run the search")
    if best is None:
        notes.append(f"{c.ENSEMBLE_DIR}/ exists but there is no evaluated best trial; it is ignored")
        return None
    if _missing(path, c.ENSEMBLE_DIR, c.ENSEMBLE_FILES, run, f"has an {c.ENSEMBLE_DIR}/ folder", notes):
        return None
    record: EnsembleRecord = _record(path, f"{c.ENSEMBLE_DIR}/{c.METRICS_FILE}", EnsembleRecord)
    panel = record.scores.n_series is not None
    predictions = _read_predictions(path, f"{c.ENSEMBLE_DIR}/{c.PREDICTIONS_FILE}", notes, panel)
    scores = record.scores
    _check_against_best(c.ENSEMBLE_DIR, scores, best, notes)
    ids = [m.trial_id for m in record.members]
    unknown = [trial_id for trial_id in ids if trial_id not in set(trials["trial_id"])]
    if unknown:
        notes.append(f"ensemble members {', '.join(unknown)} are not in {c.TRIALS_FILE}")
    if ids[0] != best.trial_id:
        notes.append(f"the ensemble's first member is trial {ids[0]}, not the best trial "
                     f"{best.trial_id}; {c.ENSEMBLE_DIR}/ may be from an earlier run")
    return Ensemble(
        scores=scores,
        predictions=predictions,
        members=record.members,
        combination=record.combination,
        val_loss=record.val_loss,
        per_series=_read_per_series(path, c.ENSEMBLE_DIR, notes) if panel else None,
    )


def _check_against_best(folder: str, scores: ScoreRecord, best: BestTrial, notes: list[str]) -> None:
    """Notes when ``folder``'s test scores are not comparable with the best trial's: another
    horizon, or other baseline scores."""
    if scores.horizon != best.horizon:
        notes.append(f"{folder}/ forecasts with horizon {scores.horizon}, the best trial with "
                     f"{best.horizon}; the two are not scored on the same test points")
    if any(not np.allclose(list(scores.test[name].values()),
                           list(best.test_metrics[name].values()), rtol=1e-6, equal_nan=True)
           for name in ("naive", "seasonal_naive")):
        notes.append(f"{folder}/{c.METRICS_FILE} scores the naive baselines differently from "
                     f"{c.BEST_DIR}/{c.METRICS_FILE}; the report shows {c.BEST_DIR}/'s baselines")


def _read_combined(
    path: Path, run: RunRecord, trials: pd.DataFrame, best: BestTrial | None, ensemble: Ensemble | None,
    notes: list[str],
) -> Combined | None:
    """``combined/``, leniently: whatever keeps it from being shown is a note, never an error."""
    folder = path / c.COMBINED_DIR
    chosen = run.selection is not None and run.selection.chosen == "combined"
    unread = ", though the search forecasts with it" if chosen else ""
    if not folder.exists():
        if chosen and best is not None:
            notes.append(f"{c.RUN_FILE} says the search chose the combination, but {c.COMBINED_DIR}/ is "
                         "missing: its test scores are not shown")
        return None  # optional: a panel, --no-combine, or an experiment from before the combination
    if not folder.is_dir():
        notes.append(f"{folder} is not a directory: the combination is not shown{unread}")
        return None
    if best is None:
        notes.append(f"{c.COMBINED_DIR}/ exists but there is no evaluated best trial; it is ignored")
        return None
    missing = [name for name in c.COMBINED_FILES if not (folder / name).is_file()]
    if missing:
        where = ", ".join(f"{c.COMBINED_DIR}/{name}" for name in missing)
        notes.append(f"{where} is missing: the combination is not shown{unread}")
        return None
    try:
        record: CombinedRecord = _record(path, f"{c.COMBINED_DIR}/{c.METRICS_FILE}", CombinedRecord)
        panel = record.scores.n_series is not None
        predictions = _read_predictions(path, f"{c.COMBINED_DIR}/{c.PREDICTIONS_FILE}", notes, panel)
    except ReportError as exc:  # optional: the rest of the report stands without it
        notes.append(f"the combination is not shown{unread}: {exc}")
        return None
    if panel or best.is_panel:
        notes.append(f"{c.COMBINED_DIR}/ is for a single series, this experiment is a panel; it is ignored")
        return None
    scores = record.scores
    _check_against_best(c.COMBINED_DIR, scores, best, notes)
    unknown = [trial_id for trial_id in record.networks if trial_id not in set(trials["trial_id"])]
    if unknown:
        notes.append(f"the combination's networks {', '.join(unknown)} are not in {c.TRIALS_FILE}")
    expected = tuple(ensemble.trial_ids) if ensemble is not None else (best.trial_id,)
    if record.networks != expected:
        notes.append(f"the combination's networks are trials {', '.join(record.networks)}, not "
                     f"{'the ensemble' if ensemble is not None else 'the best trial'} "
                     f"({', '.join(expected)}); {c.COMBINED_DIR}/ may be from an earlier run")
    return Combined(
        scores=scores,
        predictions=predictions,
        networks=record.networks,
        statistical=record.statistical,
        fit_end=record.fit_end,
        combination=record.combination,
        val_loss=record.val_loss,
    )


def _read_importance(path: Path, notes: list[str]) -> ImportanceRecord | None:
    if not (path / c.IMPORTANCE_FILE).is_file():
        return None  # the search stopped before it got there: the report says so where it would show them
    try:
        record: ImportanceRecord = _record(path, c.IMPORTANCE_FILE, ImportanceRecord)
        return record
    except ReportError as exc:
        notes.append(f"hyperparameter importances are not shown: {exc}")
        return None


def _read_future(path: Path, best: BestTrial | None, notes: list[str]) -> Future | None:
    folder = path / c.FORECAST_DIR
    if not folder.is_dir():
        return None  # optional: --no-forecast, or a search that did not complete
    missing = [name for name in c.FORECAST_FILES if not (folder / name).is_file()]
    if missing or best is None:
        notes.append(f"{c.FORECAST_DIR}/ is incomplete or has no best trial beside it; it is not shown")
        return None
    record: ForecastRecord = _record(path, f"{c.FORECAST_DIR}/{c.METRICS_FILE}", ForecastRecord)
    columns = [col for level in record.levels for col in c.interval_columns(level)]
    ids = (c.SERIES_ID_COLUMN,) if best.is_panel else ()  # a panel: every series' H rows
    frame = read_csv(path, f"{c.FORECAST_DIR}/{c.FORECAST_FILE}", text=(*ids, "time"),
                     numbers=("forecast", *columns), required=(*ids, "time", "forecast", *columns),
                     notes=notes)
    rows = record.horizon * (frame[c.SERIES_ID_COLUMN].nunique() if best.is_panel else 1)
    if len(frame) != rows:
        raise ReportError(f"{folder / c.FORECAST_FILE} has {len(frame)} rows, its metrics.json says "
                          f"{record.horizon} per series; {_FIX}")
    return Future(record, frame)


def _read_per_series(path: Path, folder: str, notes: list[str]) -> pd.DataFrame:
    return read_csv(path, f"{folder}/{c.PER_SERIES_FILE}", text=(c.SERIES_ID_COLUMN,),
                    numbers=c.PER_SERIES_NUMBER_COLUMNS,
                    required=(c.SERIES_ID_COLUMN, "model_mase", "seasonal_naive_mase"), notes=notes)


def _read_predictions(path: Path, name: str, notes: list[str], panel: bool = False) -> pd.DataFrame:
    text = (c.SERIES_ID_COLUMN, "time", "split") if panel else ("time", "split")
    required = (c.SERIES_ID_COLUMN, "split", "y_true", "y_pred") if panel else ("split", "y_true", "y_pred")
    predictions = read_csv(path, name, text=text, numbers=c.PREDICTION_NUMBER_COLUMNS,
                           required=required, notes=notes)
    if predictions["index"].isna().all():
        predictions["index"] = np.arange(len(predictions), dtype=float)
    return predictions
