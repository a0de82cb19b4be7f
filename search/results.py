"""Ray Tune's results -> one :class:`TrialRecord` per trial, through Ray's public API only.

Besides Ray's ``Result``, the trainable's own report keys are read: ``last_epoch`` (ended by
max_epochs or patience), ``diverged`` (a failed trial; that report is no epoch) and ``epochs``
(carried rows, see ``search.trainable``); ``done`` is ASHA's stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import tune

from tunecast.expdir import one_line
from tunecast.search.plan import SearchPlan
from tunecast.search.trainable import DIVERGED, EPOCHS


@dataclass
class TrialRecord:
    """What the search knows of one trial once it ends."""

    trial_id: str
    status: str  # one of expdir.contract.TRIAL_STATUSES
    config: dict[str, Any]  # the full TrainConfig ({} for a trial that never started)
    history: pd.DataFrame  # the trial's reported rows, one per epoch
    error: str
    checkpoint_dir: Path | None  # its best checkpoint (a model folder)
    restarts: int = 0  # times the trial was retried (e.g. after its node died)


def with_carried_epochs(history: pd.DataFrame) -> pd.DataFrame:
    """One row per reported epoch: the rows a report carried (``EPOCHS``) go before its own."""
    if EPOCHS not in history:
        return history
    columns = [col for col in history.columns if col != EPOCHS]
    plain = {DIVERGED: np.nan, "done": False}
    rows: list[dict[str, Any]] = []
    for report in history.to_dict("records"):
        carried = report.pop(EPOCHS)
        for earlier in json.loads(carried) if isinstance(carried, str) and carried else []:
            rows.append({**report, **{k: v for k, v in plain.items() if k in report}, **earlier})
        rows.append(report)
    return pd.DataFrame(rows, columns=columns)


def clean_history(history: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per epoch (a retried trial re-reports epochs: the last attempt wins) and the
    number of restarts seen in the reports."""
    if len(history) == 0 or "epoch" not in history:
        return history, 0
    epoch = history["epoch"].to_numpy()
    resumed = history.get("resumed_from_epoch", pd.Series(0, index=history.index)).to_numpy()
    restarts = int(np.sum((epoch[1:] <= epoch[:-1]) | (resumed[1:] != resumed[:-1])))
    kept = history.drop_duplicates(subset="epoch", keep="last").sort_values("epoch")
    return kept.reset_index(drop=True), restarts


def divergence(result: tune.Result) -> str:
    """Why the trial diverged ("" if it did not): its last report says so."""
    why = (result.metrics or {}).get(DIVERGED)
    return why if isinstance(why, str) else ""


def without_divergence(history: pd.DataFrame) -> pd.DataFrame:
    """The reported epochs less the report that marks a divergence (its losses are not finite)."""
    if DIVERGED not in history:
        return history
    marked = history[DIVERGED].map(lambda why: isinstance(why, str) and bool(why))
    return history[~marked].drop(columns=DIVERGED).reset_index(drop=True)


def trial_status(result: tune.Result, history: pd.DataFrame, out_of_time: bool) -> str:
    """completed / stopped / failed, or running / pending in an interrupted search."""
    if result.error is not None or divergence(result):
        return "failed"
    if len(history) and int(history["last_epoch"].iloc[-1]) == 1:
        return "completed"
    if out_of_time or bool((result.metrics or {}).get("done")):
        return "stopped"  # by the end of the time budget, or by the scheduler (ASHA)
    # the search was interrupted: the trial was running, or waiting for a free slot
    return "running" if len(history) else "pending"


def local_checkpoint(saved: tune.Checkpoint, plan: SearchPlan) -> Path:
    """A local folder holding the checkpoint (from object storage: a copy in ``.checkpoints/``)."""
    import pyarrow.fs as pafs

    if isinstance(saved.filesystem, pafs.LocalFileSystem):
        return Path(saved.path)
    folder = plan.path / ".checkpoints" / Path(saved.path).parent.name / Path(saved.path).name
    if not folder.is_dir():
        saved.to_directory(str(folder))
    return folder


def trial_records(grid: tune.ResultGrid, plan: SearchPlan, out_of_time: bool) -> list[TrialRecord]:
    """One record per trial of ``grid``, in the order Tune created them."""
    records = []
    for result in (grid[i] for i in range(len(grid))):
        history = result.metrics_dataframe
        history = pd.DataFrame() if history is None else with_carried_epochs(history)
        status = trial_status(result, history, out_of_time)
        history = without_divergence(history)
        checkpoints = [c for c, _ in (result.best_checkpoints or [])] or (
            [result.checkpoint] if result.checkpoint else []
        )
        history, restarts = clean_history(history)
        params = result.config or {}
        records.append(
            TrialRecord(
                trial_id=str((result.metrics or {})["trial_id"]),
                status=status,
                config=plan.train_config(params).to_dict() if params else {},
                history=history,
                error=one_line(result.error) or divergence(result),
                checkpoint_dir=local_checkpoint(checkpoints[0], plan) if checkpoints else None,
                restarts=restarts,
            )
        )
    return records
