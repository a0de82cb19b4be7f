"""Hyperparameter importances with Optuna's PED-ANOVA evaluator, from trials.csv alone.

The finished trials (completed, and stopped early by ASHA, each with its best ``val_loss``) are
re-created as Optuna trials with the distributions of ``tunecast.json``'s search space, added
to an in-memory study, and scored with :class:`optuna.importance.PedAnovaImportanceEvaluator`
(it needs no scikit-learn, unlike fANOVA). Optuna is imported only when this runs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import pandas as pd

from reports.collect import Experiment

__all__ = ["EVALUATOR", "MIN_TRIALS", "ImportanceInfo", "importance_info"]

EVALUATOR = "PedAnovaImportanceEvaluator"
MIN_TRIALS = 3


class ImportanceInfo(NamedTuple):
    """Importances (summing to 1, highest first), or a note saying why there are none."""

    importances: dict[str, float]
    evaluator: str
    n_trials: int
    note: str | None


def importance_info(exp: Experiment) -> ImportanceInfo:
    """Score each tuned hyperparameter's importance for ``val_loss`` over the finished trials.

    Never raises for lack of data: with fewer than :data:`MIN_TRIALS` finished trials, no tuned
    parameter, or an error inside Optuna, ``importances`` is empty and ``note`` says why.
    """
    finished = exp.finished
    names = [n for n in exp.param_names if n in exp.run.space]
    n = len(finished)
    if not names:
        return ImportanceInfo({}, EVALUATOR, n, "no tuned hyperparameter in the search space")
    if n < MIN_TRIALS:
        return ImportanceInfo({}, EVALUATOR, n, f"needs at least {MIN_TRIALS} finished trials, "
                                                f"this search has {n}")
    try:
        importances = _evaluate(finished, names, exp.run.space)
    except Exception as exc:  # Optuna's failures must not stop the report
        message = " ".join(str(exc).split())[:160] or type(exc).__name__
        return ImportanceInfo({}, EVALUATOR, n, f"Optuna could not compute them: {message}")
    ranked = dict(sorted(importances.items(), key=lambda item: -item[1]))
    return ImportanceInfo(ranked, EVALUATOR, n, None)


def _evaluate(
    finished: pd.DataFrame, names: list[str], space: dict[str, dict[str, Any]]
) -> dict[str, float]:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    distributions = {name: _distribution(space[name]) for name in names}
    trials = []
    for _, row in finished.iterrows():
        params = {name: _param(row[f"config/{name}"], distributions[name]) for name in names}
        if any(value is None for value in params.values()):
            continue  # a value outside the space (e.g. a hand-edited trials.csv): skip the trial
        trials.append(optuna.trial.create_trial(
            params=params, distributions=distributions, value=float(row["best_val_loss"])))
    if len(trials) < MIN_TRIALS:
        raise ValueError(f"only {len(trials)} finished trials have values inside the space")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            study = optuna.create_study(direction="minimize")
            study.add_trials(trials)
            evaluator = getattr(optuna.importance, EVALUATOR)()
            result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {name: float(value) for name, value in result.items() if math.isfinite(value)}


def _distribution(spec: dict[str, Any]) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    kind = spec.get("type")
    if kind == "categorical":
        return CategoricalDistribution([_choice(c) for c in spec["choices"]])
    if kind == "int":
        return IntDistribution(int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
    if kind == "float":
        return FloatDistribution(float(spec["low"]), float(spec["high"]),
                                 log=bool(spec.get("log")))
    raise ValueError(f"unknown search-space type {kind!r}")


def _choice(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def _param(value: Any, distribution: Any) -> Any:
    """The trial's value as the distribution expects it, or None when it is outside."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if str(choice) == str(value) or _same_number(choice, value):
                return choice
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not distribution.low <= number <= distribution.high:
        return None
    return round(number) if type(distribution).__name__ == "IntDistribution" else number


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
