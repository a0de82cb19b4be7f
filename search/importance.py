"""Hyperparameter importances with Optuna's PED-ANOVA evaluator, written to ``importance.json``.

The finished trials are re-created as Optuna trials in an in-memory study and scored with
:class:`optuna.importance.PedAnovaImportanceEvaluator` (no scikit-learn needed).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from tunecast.expdir import contract as c
from tunecast.expdir import one_line, write_json
from tunecast.expdir.contract import ImportanceRecord
from tunecast.search.optuna_space import distribution
from tunecast.search.space import Param

EVALUATOR = "PedAnovaImportanceEvaluator"
MIN_TRIALS = 3


def importance(trials: pd.DataFrame, space: dict[str, Param]) -> ImportanceRecord:
    """Each tuned hyperparameter's importance for ``val_loss`` over the finished trials; never
    raises (without data, ``importances`` is empty and ``note`` says why)."""
    finished = trials[trials["status"].isin(c.FINISHED) & trials["best_val_loss"].notna()] \
        if len(trials) else trials
    names = [n for n, p in space.items() if p.type != "fixed" and c.config_column(n) in trials]
    n = len(finished)
    if not names:
        return ImportanceRecord({}, EVALUATOR, n, "no tuned hyperparameter in the search space")
    if n < MIN_TRIALS:
        return ImportanceRecord({}, EVALUATOR, n, f"needs at least {MIN_TRIALS} finished trials, "
                                                  f"this search has {n}")
    if finished["best_val_loss"].nunique() == 1:
        return ImportanceRecord({}, EVALUATOR, n, "every finished trial has the same val_loss")
    try:
        scores = _evaluate(finished, {name: space[name] for name in names})
    except Exception as exc:  # Optuna's failures must not stop the search's last step
        return ImportanceRecord({}, EVALUATOR, n, f"Optuna could not compute them: {one_line(exc, 160)}")
    ranked = dict(sorted(scores.items(), key=lambda item: -item[1]))
    return ImportanceRecord(ranked, EVALUATOR, n, None)


def write_importance(exp_dir: Path, trials: pd.DataFrame, space: dict[str, Param]) -> ImportanceRecord:
    record = importance(trials, space)
    write_json(exp_dir / c.IMPORTANCE_FILE, record.to_dict())
    return record


def _evaluate(finished: pd.DataFrame, space: dict[str, Param]) -> dict[str, float]:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    distributions = {name: distribution(p) for name, p in space.items()}
    trials = []
    for _, row in finished.iterrows():
        params = {name: _param(row[c.config_column(name)], d) for name, d in distributions.items()}
        if any(value is None for value in params.values()):
            continue  # a value outside the space (a trial resumed from an older space): skip it
        trials.append(optuna.trial.create_trial(
            params=params, distributions=distributions, value=float(row["best_val_loss"])))
    if len(trials) < MIN_TRIALS:
        raise ValueError(f"only {len(trials)} finished trials have values inside the space")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # e.g. PED-ANOVA's quantile notes
            study = optuna.create_study(direction="minimize")
            study.add_trials(trials)
            evaluator = getattr(optuna.importance, EVALUATOR)()
            result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {name: float(value) for name, value in result.items() if math.isfinite(value)}


def _param(value: Any, dist: Any) -> Any:
    """The trial's value as the distribution expects it, or None when it is outside."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if str(choice) == str(value) or _same_number(choice, value):
                return choice
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not dist.low <= number <= dist.high:
        return None
    return round(number) if isinstance(dist, IntDistribution) else number


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
