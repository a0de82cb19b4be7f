"""Hyperparameter importances as the search wrote them (``importance.json``); no Optuna import."""

from __future__ import annotations

from typing import NamedTuple

from tunecast.reports.collect import Experiment

__all__ = ["ImportanceInfo", "importance_info"]


class ImportanceInfo(NamedTuple):
    """Importances (summing to 1, highest first), or a note saying why there are none."""

    importances: dict[str, float]
    evaluator: str
    n_trials: int
    note: str | None


def importance_info(exp: Experiment) -> ImportanceInfo:
    """The tuned hyperparameters' importances for ``val_loss``; never raises (without them,
    ``importances`` is empty and ``note`` says why)."""
    record = exp.importance
    if record is None:
        return ImportanceInfo({}, "", len(exp.finished),
                              "the search stopped before it computed them (no importance.json)")
    ranked = dict(sorted(record.importances.items(), key=lambda item: -item[1]))
    return ImportanceInfo(ranked, record.evaluator, record.n_trials, record.note)
