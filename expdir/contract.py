"""The experiment directory: its file names, columns, vocabularies and typed records.

``search`` writes it and ``reports`` reads it, both naming everything from here. Standard library
only (no torch, Ray, Optuna or pandas); docs/experiment-dir.md describes the layout. Each JSON
file has a record with ``to_dict`` and ``from_dict`` (which raises :class:`ContractError`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

FORMAT_VERSION = 2  # of tunecast.json; none recorded: 1. migrate() reads every earlier one

# Files and folders of <storage>/<name>/
RUN_FILE = "tunecast.json"
TRIALS_FILE = "trials.csv"
HISTORY_FILE = "history.csv"
IMPORTANCE_FILE = "importance.json"
REPORT_FILE = "report.html"
BEST_DIR = "best"  # a model folder (model/checkpoint.py) plus the files below
ENSEMBLE_DIR = "ensemble"  # the files below, and members/<trial_id>/ model folders
COMBINED_DIR = "combined"  # a single series: the files below (the networks + AutoETS + AutoARIMA)
MEMBERS_DIR = "members"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
ATTENTION_FILE = "attention.npy"
FORECAST_DIR = "forecast"  # the future: the files below, and the forecaster's own folder format
FORECAST_FILE = "forecast.csv"
PER_SERIES_FILE = "per_series.csv"  # a panel: in best/ and ensemble/, one row per series
ATTENTION_INDEX_FILE = "attention_index.csv"  # a panel: in best/, each series' rows of attention.npy
STUDY_FILE = "optuna-study.log"  # the search's Optuna study (journal file): optuna-dashboard opens it
DATA_FILE = "data.parquet"  # a search fitted on a frame in memory (TuneCast.fit): the frame, kept here
BEST_FILES = (METRICS_FILE, PREDICTIONS_FILE, ATTENTION_FILE)
FORECAST_FILES = (METRICS_FILE, FORECAST_FILE)
ENSEMBLE_FILES = (METRICS_FILE, PREDICTIONS_FILE)
COMBINED_FILES = (METRICS_FILE, PREDICTIONS_FILE)

# What trials are ranked by. ``val_loss``: one epoch's validation MAE in standardised units
# (history.csv), whatever the training loss; the searcher, ASHA and checkpointing see
# ``best_val_loss``, the trial's best epoch so far (not its last).
METRIC = "val_loss"
SEARCH_METRIC = "best_val_loss"
MODE = "min"

# Test metrics (original units) and who is scored with them.
METRIC_NAMES = ("mae", "rmse", "mase", "smape")
FORECASTERS = ("model", "naive", "seasonal_naive")
# A panel: means across series of each one's MASE, MASE over seasonal-naive's, and sMAPE (MAE
# and RMSE would add up units); every series' own METRIC_NAMES are in per_series.csv.
PANEL_METRIC_NAMES = ("mase", "mase_ratio", "smape")

# What the search may choose to forecast with: the lowest validation loss of these wins.
BASELINES = ("naive", "seasonal_naive")
CHOICES = ("best", "ensemble", "combined", *BASELINES)
SELECTION_RULE = ("the lowest validation loss (the same loss on the same validation windows) of the "
                  "ensemble (the best trial without one), the combination (on a single series: the networks "
                  "with AutoETS and AutoARIMA), naive and seasonal-naive; on a single series, the mean loss "
                  "over the search's validation part and the earlier origins that fit (each candidate "
                  "retrained there)")
# Beside an ensemble the best trial is not compared: its own-block loss is the most optimistic.

# How a person reads each choice (the CLI, the report, the benchmarks).
CHOICE_NAMES = {"best": "the best trial", "ensemble": "the top-k ensemble",
                "combined": "the networks combined with AutoETS and AutoARIMA",
                "naive": "naive", "seasonal_naive": "seasonal-naive"}

# Vocabularies.
TRIAL_STATUSES = ("completed", "stopped", "failed", "running", "pending")
FINISHED = ("completed", "stopped")  # ended without error, so they have a val_loss
UNFINISHED = ("running", "pending")  # only in an interrupted search
RUN_STATUSES = ("running", "completed", "interrupted", "failed")
SPLITS = ("train", "val", "test")

# trials.csv: these columns, then one ``config/<name>`` column per TrainConfig field.
CONFIG_PREFIX = "config/"
TRIAL_TEXT_COLUMNS = ("trial_id", "status", "node_id", "node_ip", "device", "error")
TRIAL_NUMBER_COLUMNS = ("best_val_loss", "best_epoch", "epochs_run", "start_time", "end_time",
                        "duration_s", "gpu_share", "restarts")
TRIAL_COLUMNS = ("trial_id", "status", "best_val_loss", "best_epoch", "epochs_run", "start_time",
                 "end_time", "duration_s", "node_id", "node_ip", "gpu_share", "device",
                 "restarts", "error")


def config_column(name: str) -> str:
    """The trials.csv column of the TrainConfig option ``name``."""
    return f"{CONFIG_PREFIX}{name}"


HISTORY_COLUMNS = ("trial_id", "epoch", "train_loss", "val_loss", "timestamp")
HISTORY_NUMBER_COLUMNS = HISTORY_COLUMNS[1:]
PREDICTION_COLUMNS = ("index", "time", "split", "y_true", "y_pred", "block")
PREDICTION_NUMBER_COLUMNS = ("index", "y_true", "y_pred", "block")
SERIES_ID_COLUMN = "unique_id"  # a panel: the series of a row, first in predictions.csv and per_series.csv
PANEL_PREDICTION_COLUMNS = (SERIES_ID_COLUMN, *PREDICTION_COLUMNS)
PER_SERIES_COLUMNS = (SERIES_ID_COLUMN, "n_test_points",
                      *(f"{name}_{m}" for name in FORECASTERS for m in METRIC_NAMES), "mase_ratio")
PER_SERIES_NUMBER_COLUMNS = PER_SERIES_COLUMNS[1:]
# a panel's best/attention_index.csv: series SERIES_ID_COLUMN's test forecasts are rows
# first_row .. first_row + n_rows - 1 of attention.npy, in time order
ATTENTION_INDEX_COLUMNS = (SERIES_ID_COLUMN, "first_row", "n_rows")
FORECAST_COLUMNS = ("time", "forecast")  # then lo-<level>, hi-<level> per level


def interval_columns(level: float) -> tuple[str, str]:
    """The forecast.csv columns of the lower and upper bound at ``level`` percent."""
    return f"lo-{level:g}", f"hi-{level:g}"


class ContractError(ValueError):
    """A record does not follow the contract; the message names the field."""


class NewerFormatError(ContractError):
    """An experiment written by a newer tunecast: the message names both versions."""


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN/inf; a bool or text is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def int_or_none(value: Any) -> int | None:
    number = finite_or_none(value)
    return None if number is None else int(number)


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _parse_time(value: Any, key: str, notes: list[str]) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        notes.append(f"{RUN_FILE}: {key} {value!r} is not an ISO 8601 time; ignored")
        return None


def _time_text(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


@dataclass(frozen=True)
class RunRecord:
    """``tunecast.json``: the run. ``config`` is the search's configuration, held once (what
    ``--resume`` restarts from); ``space`` is the space the trials were sampled from, after the
    user's overrides and the clipping to the series."""

    name: str
    status: str
    config: dict[str, Any]
    space: dict[str, dict[str, Any]]
    data: dict[str, Any]  # the loaded series: source, target, sizes of the splits, ...
    started_at: datetime | None = None
    ended_at: datetime | None = None
    resumed_at: tuple[datetime, ...] = ()
    metric: str = SEARCH_METRIC
    mode: str = MODE
    max_concurrent: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    command: tuple[str, ...] = ()
    best_trial_id: str | None = None
    selection: SelectionRecord | None = None  # what the search forecasts with (set when it ends)

    @property
    def search(self) -> dict[str, Any]:
        """The search settings (budget, resources, scheduler, ...) without data, train and space."""
        settings = {k: v for k, v in self.config.items() if k not in ("data", "train", "space")}
        return {**settings, "metric": self.metric, "mode": self.mode,
                "max_concurrent": self.max_concurrent}

    @property
    def duration_s(self) -> float | None:
        """Wall time from start to end, or None while running / interrupted."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(selection=self.selection.to_dict() if self.selection else None,
                 started_at=_time_text(self.started_at), ended_at=_time_text(self.ended_at),
                 resumed_at=[_time_text(t) for t in self.resumed_at], command=list(self.command))
        return {"format_version": FORMAT_VERSION, **d}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], notes: list[str] | None = None) -> RunRecord:
        """Read tunecast.json leniently: what a report can live without becomes a note."""
        notes = [] if notes is None else notes
        raw = migrate(raw)
        status = str(raw.get("status") or "unknown")
        if status not in RUN_STATUSES:
            notes.append(f"{RUN_FILE} has an unknown status {status!r}")
        resumed_raw = raw.get("resumed_at")
        resumed = resumed_raw if isinstance(resumed_raw, list) else []
        best = raw.get("best_trial_id")
        concurrent = raw.get("max_concurrent")
        command = raw.get("command")
        return cls(
            name=str(raw.get("name") or ""),
            status=status,
            config=_section(raw, "config"),
            space=_section(raw, "space"),
            data=_section(raw, "data"),
            started_at=_parse_time(raw.get("started_at"), "started_at", notes),
            ended_at=_parse_time(raw.get("ended_at"), "ended_at", notes),
            resumed_at=tuple(t for t in (_parse_time(v, "resumed_at", notes) for v in resumed)
                             if t is not None),
            metric=str(raw.get("metric") or SEARCH_METRIC),
            mode=str(raw.get("mode") or MODE),
            max_concurrent=int_or_none(concurrent),
            versions={str(k): str(v) for k, v in _section(raw, "versions").items()},
            cluster=_section(raw, "cluster"),
            host=str(raw.get("host") or ""),
            command=tuple(map(str, command)) if isinstance(command, list) else (),
            best_trial_id=None if best in (None, "") else str(best),
            selection=SelectionRecord.from_dict(raw.get("selection")),
        )


def migrate(run: dict[str, Any]) -> dict[str, Any]:
    """tunecast.json of any earlier format in the current one; a newer one is a ContractError."""
    version = int_or_none(run.get("format_version")) or 1
    if version > FORMAT_VERSION:
        raise NewerFormatError(f"experiment format {version} is newer than this tunecast "
                            f"({FORMAT_VERSION}): upgrade tunecast")
    config, selection = run.get("config"), run.get("selection")
    run = {**run, "format_version": FORMAT_VERSION}
    if version < 2:  # 1 -> 2: each key added as format 1 behaved without it
        if isinstance(config, dict) and config:
            run["config"] = {
                "report_every_s": 0,  # every epoch was reported (a restored ASHA counts reports)
                "combine": False,  # the combination was no candidate
                **config,
                # forecast/ refitted by default, never without forecast/ (forecast: false)
                "refit": bool(config.get("refit", True)) and bool(config.get("forecast", True)),
            }
        if isinstance(selection, dict):  # the best trial was compared beside an ensemble too
            run["selection"] = _selection_results({"compared": list(CHOICES), **selection})
    return run


def _selection_results(sel: dict[str, Any]) -> dict[str, Any]:
    """Format 1 stored the compared scores only beside earlier origins, and not their count."""
    if not isinstance(sel.get("score"), dict):
        losses: dict[str, Any] = sel["val_loss"] if isinstance(sel.get("val_loss"), dict) else {}
        sel["score"] = {k: v for k in sel["compared"] if (v := finite_or_none(losses.get(k))) is not None}
    earlier: dict[str, Any] = sel["earlier_origins"] if isinstance(sel.get("earlier_origins"), dict) else {}
    scored: list[list[Any]] = [v if isinstance(v := earlier.get(k), list) else [] for k in sel["score"]]
    depth = min(map(len, scored), default=0)
    sel.setdefault("origins", 1 + sum(all(finite_or_none(vs[i]) is not None for vs in scored)
                                      for i in range(depth)))
    return sel


@dataclass(frozen=True)
class SelectionRecord:
    """What the search forecasts with, decided on validation data only: the candidate of
    :data:`CHOICES` with the lowest validation loss (None: a candidate that does not exist, e.g.
    no ensemble, or seasonal-naive when the season is longer than the training part)."""

    chosen: str
    val_loss: dict[str, float | None]
    rule: str = SELECTION_RULE
    # a single series: each candidate's loss at the earlier validation origins, oldest last
    earlier: dict[str, list[float | None]] = field(default_factory=dict)
    # the candidates the rule compares (those with a loss): no best trial beside an ensemble
    compared: tuple[str, ...] = CHOICES
    score: dict[str, float] = field(default_factory=dict)  # what the rule compared, per candidate
    origins: int = 1  # the validation origins each score averages (1: the search's own block)

    @property
    def baseline_won(self) -> bool:
        return self.chosen in BASELINES

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"chosen": self.chosen, "rule": self.rule,
                             "val_loss": {k: finite_or_none(self.val_loss.get(k)) for k in CHOICES},
                             "compared": list(self.compared)}
        if self.earlier:
            d["earlier_origins"] = {k: [finite_or_none(v) for v in vs] for k, vs in self.earlier.items()}
        d.update(score=dict(self.score), origins=self.origins)
        return d

    @classmethod
    def from_dict(cls, raw: Any) -> SelectionRecord | None:
        if not isinstance(raw, dict) or raw.get("chosen") not in CHOICES:
            return None
        losses = raw["val_loss"] if isinstance(raw.get("val_loss"), dict) else {}
        earlier = raw.get("earlier_origins")
        earlier = earlier if isinstance(earlier, dict) else {}
        compared = raw.get("compared")
        compared = tuple(k for k in CHOICES if k in compared) if isinstance(compared, list) else CHOICES
        return cls(chosen=str(raw["chosen"]), val_loss={k: finite_or_none(losses.get(k)) for k in CHOICES},
                   rule=str(raw.get("rule") or SELECTION_RULE),
                   earlier={str(k): [finite_or_none(v) for v in vs] for k, vs in earlier.items()
                            if k in CHOICES and isinstance(vs, list)},
                   compared=compared, origins=int_or_none(raw.get("origins")) or 1,
                   score={k: float(v) for k in CHOICES if isinstance(raw.get("score"), dict)
                          and (v := finite_or_none(raw["score"].get(k))) is not None})


@dataclass(frozen=True)
class ScoreRecord:
    """How a forecaster did on the test split, beside the naive baselines on the same points.

    A panel (``n_series`` set): ``test`` holds :data:`PANEL_METRIC_NAMES`, the means across
    series (``mase_ratio`` may be NaN: seasonal-naive exact on every series' test part)."""

    horizon: int
    season_length: int
    protocol: str  # "rolling one-step" or "non-overlapping blocks of H"
    n_test_points: int
    test: dict[str, dict[str, float]]  # {forecaster: {metric: value}}, FORECASTERS x metric_names
    n_series: int | None = None  # a panel: how many series were scored

    @property
    def metric_names(self) -> tuple[str, ...]:
        return PANEL_METRIC_NAMES if self.n_series is not None else METRIC_NAMES

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"horizon": self.horizon, "season_length": self.season_length,
                             "protocol": self.protocol, "n_test_points": self.n_test_points}
        if self.n_series is not None:
            d["n_series"] = self.n_series
        d["test"] = {name: {m: finite_or_none(v) for m, v in values.items()}
                     for name, values in self.test.items()}
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScoreRecord:
        test = raw.get("test")
        n_series = int_or_none(raw.get("n_series"))
        names = PANEL_METRIC_NAMES if n_series is not None else METRIC_NAMES
        scores: dict[str, dict[str, float]] = {}
        for forecaster in FORECASTERS:
            values = test.get(forecaster) if isinstance(test, dict) else None
            if not isinstance(values, dict):
                raise ContractError(f"lacks test.{forecaster}")
            scores[forecaster] = {}
            for name in names:
                value = finite_or_none(values.get(name))
                if value is None and name == "mase_ratio" and name in values:
                    value = math.nan  # no series where seasonal-naive is not exact
                if value is None:
                    raise ContractError(f"lacks a number at test.{forecaster}.{name}")
                scores[forecaster][name] = value
        horizon = int_or_none(raw.get("horizon"))
        season = int_or_none(raw.get("season_length"))
        n_test = int_or_none(raw.get("n_test_points"))
        if horizon is None or season is None or n_test is None:
            raise ContractError("lacks horizon, season_length or n_test_points")
        return cls(horizon, season, str(raw.get("protocol") or ""), n_test, scores, n_series)


@dataclass(frozen=True)
class BestRecord:
    """``best/metrics.json``: the trial with the lowest val_loss, re-evaluated on the test split.
    The model itself is a model folder in ``best/``, read and written by ``model.checkpoint``."""

    trial_id: str
    val_loss: float | None
    best_epoch: int | None
    train_config: dict[str, Any]
    target: str
    features: tuple[str, ...]
    scores: ScoreRecord

    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "val_loss": finite_or_none(self.val_loss),
                "best_epoch": self.best_epoch, "train_config": dict(self.train_config),
                "target": self.target, "features": list(self.features), **self.scores.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BestRecord:
        train_config = raw.get("train_config")
        if not isinstance(raw.get("trial_id"), str) or not raw["trial_id"]:
            raise ContractError("lacks a trial_id")
        if not isinstance(train_config, dict):
            raise ContractError("has no train_config object")
        features = raw.get("features")
        return cls(
            trial_id=raw["trial_id"],
            val_loss=finite_or_none(raw.get("val_loss")),
            best_epoch=int_or_none(raw.get("best_epoch")),
            train_config=train_config,
            target=str(raw.get("target") or "target"),
            features=tuple(map(str, features)) if isinstance(features, list) else (),
            scores=ScoreRecord.from_dict(raw),
        )


@dataclass(frozen=True)
class MemberRecord:
    """One trial of the ensemble: its checkpoint's val_loss and epoch."""

    trial_id: str
    val_loss: float | None
    best_epoch: int | None


ENSEMBLE_COMBINATION = "mean of the members' forecasts"


COMBINATION = "equal mean of the networks' forecast and each statistical model's"


@dataclass(frozen=True)
class CombinedRecord:
    """``combined/metrics.json``: the networks' forecast (``networks``: the ensemble's members,
    or the best trial) averaged with statistical models (``statistical``: AutoETS, AutoARIMA)
    fitted on the training part (``fit_end`` points), each equally weighted."""

    networks: tuple[str, ...]  # trial ids
    statistical: tuple[str, ...]  # model names, at least one
    fit_end: int
    val_loss: float | None  # MAE of the combined forecast on the validation windows (scaled units)
    scores: ScoreRecord
    combination: str = COMBINATION

    def to_dict(self) -> dict[str, Any]:
        return {"networks": list(self.networks), "statistical": list(self.statistical),
                "fit_end": self.fit_end, "combination": self.combination,
                "val_loss": finite_or_none(self.val_loss), **self.scores.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CombinedRecord:
        networks, statistical = raw.get("networks"), raw.get("statistical")
        if not isinstance(networks, list) or not networks \
                or not all(isinstance(t, str) and t for t in networks):
            raise ContractError("needs a networks list of trial ids")
        if not isinstance(statistical, list) or not statistical:
            raise ContractError("needs a statistical list of at least one model")
        fit_end = int_or_none(raw.get("fit_end"))
        if fit_end is None or fit_end < 1:
            raise ContractError(f"needs fit_end >= 1, got {raw.get('fit_end')!r}")
        return cls(networks=tuple(networks), statistical=tuple(map(str, statistical)), fit_end=fit_end,
                   val_loss=finite_or_none(raw.get("val_loss")), scores=ScoreRecord.from_dict(raw),
                   combination=str(raw.get("combination") or COMBINATION))


@dataclass(frozen=True)
class EnsembleRecord:
    """``ensemble/metrics.json``: the mean forecast of the top-k trials by val_loss."""

    members: tuple[MemberRecord, ...]  # lowest val_loss first; at least two
    val_loss: float | None  # MAE of the mean forecast on the validation windows (scaled units)
    max_val_loss_ratio: float
    scores: ScoreRecord
    combination: str = ENSEMBLE_COMBINATION

    @property
    def k(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, Any]:
        return {"members": [asdict(m) | {"val_loss": finite_or_none(m.val_loss)}
                            for m in self.members],
                "k": self.k, "combination": self.combination,
                "max_val_loss_ratio": self.max_val_loss_ratio,
                "val_loss": finite_or_none(self.val_loss), **self.scores.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EnsembleRecord:
        members_raw = raw.get("members")
        if not isinstance(members_raw, list) or len(members_raw) < 2:
            raise ContractError("needs a members list of at least two trials")
        members = []
        for position, member in enumerate(members_raw):
            if not isinstance(member, dict) or not isinstance(member.get("trial_id"), str) \
                    or not member["trial_id"]:
                raise ContractError(f"lacks a trial_id at members[{position}]")
            members.append(MemberRecord(member["trial_id"], finite_or_none(member.get("val_loss")),
                                        int_or_none(member.get("best_epoch"))))
        ids = [m.trial_id for m in members]
        if len(set(ids)) != len(ids):
            raise ContractError("lists a member trial twice")
        k = raw.get("k")
        if k is not None and int_or_none(k) != len(members):
            raise ContractError(f"says k = {k} but lists {len(members)} members")
        return cls(
            members=tuple(members),
            val_loss=finite_or_none(raw.get("val_loss")),
            max_val_loss_ratio=finite_or_none(raw.get("max_val_loss_ratio")) or math.inf,
            scores=ScoreRecord.from_dict(raw),
            combination=str(raw.get("combination") or ENSEMBLE_COMBINATION),
        )


@dataclass(frozen=True)
class ImportanceRecord:
    """``importance.json``: how much each tuned hyperparameter mattered for val_loss.

    ``importances`` sums to 1, highest first; empty with a ``note`` saying why (too few
    finished trials, nothing tuned, the evaluator failed)."""

    importances: dict[str, float]
    evaluator: str
    n_trials: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImportanceRecord:
        values = raw.get("importances")
        if not isinstance(values, dict):
            raise ContractError("has no importances object")
        importances = {str(k): finite_or_none(v) for k, v in values.items()}
        if any(v is None for v in importances.values()):
            raise ContractError("has an importance that is not a number")
        note = raw.get("note")
        return cls({k: float(v or 0.0) for k, v in importances.items()},
                   str(raw.get("evaluator") or ""), int_or_none(raw.get("n_trials")) or 0,
                   None if note in (None, "") else str(note))


@dataclass(frozen=True)
class ForecastRecord:
    """``forecast/metrics.json``: how the forecast past the data was made, and how honest its
    intervals were on the test split.

    ``chosen`` is one of ``CHOICES`` (tunecast.json's ``selection``). ``coverage`` and
    ``mean_width`` check the intervals calibrated on validation only, on the test points."""

    chosen: str
    trial_ids: tuple[str, ...]
    refit: bool
    epochs: tuple[int, ...]  # per member: the epochs it was (re)trained for
    horizon: int
    levels: tuple[float, ...]
    n_points: int  # the observed points the forecast follows
    last_time: str  # the time (or position) of the last observed point
    calibration_origins: int  # origins whose held-out errors set the intervals
    coverage: dict[str, float | None]  # level -> share of test points inside (None: too few)
    # level -> mean interval width on test, in original units (a panel: in each series' own scale)
    mean_width: dict[str, float | None]
    seconds: float  # wall time of the refit (0 without)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(trial_ids=list(self.trial_ids), epochs=list(self.epochs), levels=list(self.levels),
                 coverage={k: finite_or_none(v) for k, v in self.coverage.items()},
                 mean_width={k: finite_or_none(v) for k, v in self.mean_width.items()})
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ForecastRecord:
        try:
            return cls(
                chosen=str(raw["chosen"]), trial_ids=tuple(map(str, raw["trial_ids"])),
                refit=bool(raw["refit"]), epochs=tuple(int(e) for e in raw["epochs"]),
                horizon=int(raw["horizon"]), levels=tuple(float(v) for v in raw["levels"]),
                n_points=int(raw["n_points"]), last_time=str(raw["last_time"]),
                calibration_origins=int(raw["calibration_origins"]),
                coverage={str(k): finite_or_none(v) for k, v in dict(raw["coverage"]).items()},
                mean_width={str(k): finite_or_none(v) for k, v in dict(raw["mean_width"]).items()},
                seconds=float(raw.get("seconds") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"lacks or mistypes {exc}") from None
