"""Hyperparameter importances are computed by the search (Optuna's PED-ANOVA) and written to
importance.json, so the report needs no Optuna."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tunecast.expdir import contract as c
from tunecast.search.importance import EVALUATOR, importance, write_importance
from tunecast.search.space import Param

SPACE = {"lr": Param("float", 1e-4, 1e-2, log=True), "window": Param("int", 8, 64),
         "num_layers": Param("fixed", value=1)}


def _trials(n: int, loss) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, n)
    window = rng.integers(8, 65, n)
    return pd.DataFrame({"trial_id": [f"t{i}" for i in range(n)], "status": "completed",
                         c.config_column("lr"): lr, c.config_column("window"): window,
                         c.config_column("num_layers"): 1, "best_val_loss": loss(lr, window)})


def test_the_parameter_that_decides_the_loss_ranks_first(tmp_path):
    trials = _trials(40, lambda lr, window: np.abs(np.log10(lr) + 3) + 0.001 * window)
    record = write_importance(tmp_path, trials, SPACE)
    assert list(record.importances) == ["lr", "window"]  # fixed parameters are not scored
    assert record.importances["lr"] > 0.8 and abs(sum(record.importances.values()) - 1) < 1e-9
    saved = json.loads((tmp_path / c.IMPORTANCE_FILE).read_text())
    assert c.ImportanceRecord.from_dict(saved) == record and saved["evaluator"] == EVALUATOR


def test_too_few_or_equal_trials_give_a_note_not_an_error():
    few = importance(_trials(2, lambda lr, window: lr), SPACE)
    assert few.importances == {} and "at least 3" in (few.note or "")
    same = importance(_trials(6, lambda lr, window: np.ones_like(lr)), SPACE)
    assert same.importances == {} and "same val_loss" in (same.note or "")
