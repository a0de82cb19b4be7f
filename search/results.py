"""Ray Tune's results -> one :class:`TrialRecord` per trial, through Ray's public API only.

A ``Result`` carries the trial's reports (``metrics_dataframe``, ``metrics``), its error and its
checkpoints. The rest comes from what the trainable reports itself: ``last_epoch`` marks the
epoch that ended a trial by max_epochs or patience; ``done`` is Ray Tune's own flag on the
report at which its scheduler (ASHA) stopped the trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import tune

from expdir import one_line
from search.plan import SearchPlan


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


def trial_status(result: tune.Result, history: pd.DataFrame, out_of_time: bool) -> str:
    """completed / stopped / failed, or running / pending in an interrupted search."""
    if result.error is not None:
        return "failed"
    if len(history) and int(history["last_epoch"].iloc[-1]) == 1:
        return "completed"
    if out_of_time or bool((result.metrics or {}).get("done")):
        return "stopped"  # by the end of the time budget, or by the scheduler (ASHA)
    # the search was interrupted: the trial was running, or waiting for a free slot
    return "running" if len(history) else "pending"


def trial_records(grid: tune.ResultGrid, plan: SearchPlan, out_of_time: bool) -> list[TrialRecord]:
    """One record per trial of ``grid``, in the order Tune created them."""
    records = []
    for result in (grid[i] for i in range(len(grid))):
        history = result.metrics_dataframe
        history = pd.DataFrame() if history is None else history
        status = trial_status(result, history, out_of_time)
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
                error=one_line(result.error),
                checkpoint_dir=Path(checkpoints[0].path) if checkpoints else None,
                restarts=restarts,
            )
        )
    return records
