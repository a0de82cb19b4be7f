"""The search's Optuna study on disk, and warm starts from an earlier experiment.

The study is Optuna's journal file ``optuna-study.log`` in the experiment directory (unlike
SQLite, it works on NFS): ``OptunaSearch``'s storage, opened by ``optuna-dashboard``, replayed
and appended to on ``--resume``. ``--warm-start EXP_DIR`` adds the finished trials of an earlier
experiment that lie in the new space to the study before the first trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tunecast.expdir import contract as c
from tunecast.expdir import remote
from tunecast.model.training import TrainConfig
from tunecast.search.config import SearchConfigError
from tunecast.search.optuna_space import distribution
from tunecast.search.space import Param, is_choice

FINISHED = ("completed", "stopped")  # the trials.csv statuses whose best_val_loss the searcher saw
WARM_START_ATTR = "warm_start_from"  # user attribute of a study trial copied from an earlier experiment
TUNED_SINCE = {"loss": TrainConfig.loss}  # options the default space gained, as earlier trials had them


def study_file(path: Path) -> Path:
    return path / c.STUDY_FILE


def study_storage(path: Path) -> Any:
    """Optuna's journal storage on ``<experiment>/optuna-study.log`` (created if absent)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(study_file(path))))


@dataclass(frozen=True)
class EarlierTrial:
    """One finished trial of an earlier experiment: its configuration and best val_loss."""

    trial_id: str
    config: dict[str, Any]
    value: float


@dataclass(frozen=True)
class WarmStart:
    """The finished trials of the experiment ``--warm-start`` names."""

    source: str
    trials: tuple[EarlierTrial, ...]


def load_warm_start(location: str) -> WarmStart:
    """The finished trials of an earlier experiment (a folder or a URI), checked before Ray
    starts: a folder without trials.csv, or without a finished trial, is bad input."""
    folder = Path(location).expanduser().resolve() if not remote.is_uri(location) else None
    if folder is None:
        try:
            folder = remote.download(location.rstrip("/"), remote.working_copy(location.rstrip("/")))
        except remote.RemoteError as exc:
            raise SearchConfigError(
                f"--warm-start: {exc}: check the URI and the store's credentials") from None
    table = folder / c.TRIALS_FILE
    try:
        frame = pd.read_csv(table, dtype={"trial_id": str})
    except (OSError, ValueError) as exc:
        raise SearchConfigError(
            f"--warm-start: cannot read '{table}' ({type(exc).__name__}): pass the folder of an "
            "experiment that `tunecast search` wrote"
        ) from None
    if "status" not in frame or c.SEARCH_METRIC not in frame:
        raise SearchConfigError(f"--warm-start: '{table}' is not a tunecast trials table")
    trials = tuple(_earlier(row) for _, row in frame.iterrows()
                   if row["status"] in FINISHED and _finite(row[c.SEARCH_METRIC]))
    if not trials:
        raise SearchConfigError(
            f"--warm-start: '{location}' has no finished trial to start from: pass another experiment"
        )
    return WarmStart(str(location), trials)


def _earlier(row: pd.Series) -> EarlierTrial:
    """One row of an earlier trials.csv. An option tuned only since a later version (no column
    in an experiment made before) is the value that trial trained with (:data:`TUNED_SINCE`)."""
    config = {str(k).removeprefix(c.CONFIG_PREFIX): _plain(v) for k, v in row.items()
              if str(k).startswith(c.CONFIG_PREFIX) and not _missing(v)}
    return EarlierTrial(str(row["trial_id"]), {**TUNED_SINCE, **config}, float(row[c.SEARCH_METRIC]))


def fits(trial: EarlierTrial, space: dict[str, Param], fixed: dict[str, Any]) -> bool:
    """Whether an earlier trial lies in the new space: every sampled value within its range or
    choices, every fixed value equal (``fixed``: the options whose change changes what
    val_loss measures, such as the horizon)."""
    for name, param in space.items():
        if name not in trial.config:
            return False
        value = trial.config[name]
        if param.type == "fixed":
            if value != param.value:
                return False
            continue
        if not _within(value, param):
            return False
    return all(trial.config.get(name, value) == value for name, value in fixed.items())


def _within(value: Any, param: Param) -> bool:
    if param.type == "categorical":
        return is_choice(value, param)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if param.type == "int" and value != int(value):
        return False
    return float(param.low or 0) <= value <= float(param.high or 0)


def _value(value: Any, param: Param) -> Any:
    return int(value) if param.type == "int" else value


def seed_study(path: Path, study_name: str, warm: WarmStart, space: dict[str, Param],
               fixed: dict[str, Any]) -> tuple[int, int]:
    """Add the earlier trials that fit the new space to this experiment's study, as finished
    trials the sampler learns from. Returns (added, left out)."""
    import optuna

    tuned = {name: p for name, p in space.items() if p.type != "fixed"}
    distributions = {name: distribution(p) for name, p in tuned.items()}
    kept = [t for t in warm.trials if fits(t, space, fixed)]
    study = _open_study(path, study_name)
    study.add_trials([
        optuna.trial.create_trial(
            params={name: _value(t.config[name], p) for name, p in tuned.items()},
            distributions=distributions, value=t.value,
            user_attrs={WARM_START_ATTR: warm.source, "trial_id": t.trial_id},
        )
        for t in kept
    ])
    return len(kept), len(warm.trials) - len(kept)


def enqueue_starts(path: Path, study_name: str, points: list[dict[str, Any]]) -> None:
    """Queue the starting configurations (``search.space.starting_points``) as the study's first
    trials; the sampler fills in whatever a point leaves out."""
    study = _open_study(path, study_name)
    for point in points:
        study.enqueue_trial(point, skip_if_exists=True)


def _open_study(path: Path, study_name: str) -> Any:
    """This experiment's study, created on first use (the searcher loads the same one)."""
    import optuna

    return optuna.create_study(storage=study_storage(path), study_name=study_name,
                               direction="minimize", load_if_exists=True)


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as a plain Python value (numpy bools and ints included)."""
    return value.item() if hasattr(value, "item") else value


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
