"""Hyperparameter importances, as the search computed them (``importance.json``).

The search scores them with Optuna's PED-ANOVA evaluator when it ends and writes them to the
experiment directory; the report only reads them, so it imports no Optuna.
"""

from __future__ import annotations

from typing import NamedTuple

from reports.collect import Experiment

__all__ = ["ImportanceInfo", "importance_info"]


class ImportanceInfo(NamedTuple):
    """Importances (summing to 1, highest first), or a note saying why there are none."""

    importances: dict[str, float]
    evaluator: str
    n_trials: int
    note: str | None


def importance_info(exp: Experiment) -> ImportanceInfo:
    """The importances of the tuned hyperparameters for ``val_loss`` over the finished trials.

    Never raises: without ``importance.json`` (a search stopped before its end) or with no
    importances in it, ``importances`` is empty and ``note`` says why.
    """
    record = exp.importance
    if record is None:
        return ImportanceInfo({}, "", len(exp.finished),
                              "the search stopped before it computed them (no importance.json)")
    ranked = dict(sorted(record.importances.items(), key=lambda item: -item[1]))
    return ImportanceInfo(ranked, record.evaluator, record.n_trials, record.note)
