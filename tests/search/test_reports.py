"""Coalesced reports (search.trainable): a trial reports its first and last epoch, every epoch
at which ASHA decides, and otherwise at most one epoch per ``REPORT_EVERY_S``; the epochs in
between ride along. ASHA decides at its own rungs, and history.csv and the Optuna study still
hold every epoch. A real search on a local Ray, read back from Ray's own progress.csv files."""

from __future__ import annotations

import pandas as pd
import pytest
from ray.tune.schedulers import ASHAScheduler

from search.config import SearchConfig
from tests.conftest import small_search
from tests.search.test_study import load_study

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("grace", "factor", "max_epochs"),
    [(1, 2, 3), (2, 2, 12), (10, 2, 100), (10, 2, 80), (15, 3, 150), (4, 4, 64), (5, 2, 5)],
)
def test_rung_epochs_are_the_epochs_ashas_bracket_decides_at(grace, factor, max_epochs):
    config = SearchConfig.from_dict({"data": {"source": "sine"}, "grace_period": grace,
                                     "reduction_factor": factor, "max_epochs": max_epochs})
    asha = ASHAScheduler(time_attr="epoch", max_t=max_epochs, grace_period=grace, reduction_factor=factor)
    assert config.rung_epochs() == {int(m) for m, _ in asha._brackets[0]._rungs}  # Ray's own rungs
    assert SearchConfig.from_dict({"data": {"source": "sine"}, "scheduler": "fifo"}).rung_epochs() == set()


def test_epochs_between_reports_reach_history_and_the_study(tmp_path):
    config, outcome = small_search(tmp_path, "coalesced", trials=4, max_epochs=12, grace_period=2)
    exp = outcome.path
    rungs = config.rung_epochs()
    assert rungs == {2, 4, 8}
    trials = pd.read_csv(exp / "trials.csv")
    history = pd.read_csv(exp / "history.csv")
    assert len(history) == trials["epochs_run"].sum()
    reports = 0
    for _, trial in trials.iterrows():
        n = int(trial["epochs_run"])
        rows = history[history["trial_id"] == trial["trial_id"]]
        assert list(rows["epoch"]) == list(range(1, n + 1))
        assert rows["timestamp"].is_monotonic_increasing
        assert rows["val_loss"].min() == pytest.approx(trial["best_val_loss"])
        [progress] = exp.glob(f"*{trial['trial_id']}*/progress.csv")  # Ray's record of the reports
        reported = pd.read_csv(progress)["epoch"].tolist()
        assert {1, n} | {r for r in rungs if r <= n} <= set(reported) <= set(range(1, n + 1))
        reports += len(reported)
        if trial["status"] == "stopped":
            assert n in rungs  # ASHA stopped it at a rung, as when every epoch was reported
    assert reports < len(history)  # some epochs reached history.csv only inside a later report

    # the study's learning curves: every epoch's best val_loss so far, step = the epoch
    curves = sorted(
        (round(t.value, 9), [t.intermediate_values[e] for e in sorted(t.intermediate_values)],
         sorted(t.intermediate_values))
        for t in load_study(exp).trials if t.state.name == "COMPLETE"
    )
    losses_of = history.groupby("trial_id")["val_loss"]
    expected = sorted(
        (round(trial["best_val_loss"], 9), losses_of.get_group(trial["trial_id"]).cummin().tolist(),
         list(range(1, int(trial["epochs_run"]) + 1)))
        for _, trial in trials.iterrows()
    )
    assert len(curves) == len(expected) == config.trials
    for (value, losses, steps), (want, want_losses, want_steps) in zip(curves, expected, strict=True):
        assert value == pytest.approx(want) and steps == want_steps
        assert losses == pytest.approx(want_losses)
