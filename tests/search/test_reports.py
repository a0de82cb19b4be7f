"""Coalesced reports (search.trainable): a trial reports its first and last epoch, every epoch
at which ASHA decides, and otherwise at most one epoch per ``report_every_s``; the epochs in
between ride along. ASHA decides at its own rungs, and history.csv and the Optuna study still
hold every epoch. A real search on a local Ray, read back from Ray's own progress.csv files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from ray.tune.schedulers import ASHAScheduler

from tests.conftest import TRIALS_ONLY, small_search
from tests.search.test_study import load_study
from tests.tables import read_table
from tunecast.expdir import contract as c
from tunecast.search.config import SearchConfig
from tunecast.search.run import resume_config
from tunecast.search.trainable import ORIGIN, TRAIL_FILE

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
    config, outcome = small_search(tmp_path, "coalesced", trials=4, max_epochs=12, grace_period=2,
                                   **TRIALS_ONLY)
    exp = outcome.path
    rungs = config.rung_epochs()
    assert rungs == {2, 4, 8}
    trials = read_table(exp / "trials.csv")
    history = read_table(exp / "history.csv")
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
        # the checkpoint's trail: the rows up to its epoch, each stamped with the attempt that
        # trained it, so a resumed trial re-reports them with their own node and start time
        [trail] = exp.glob(f"*{trial['trial_id']}*/checkpoint_*/{TRAIL_FILE}")
        for row in json.loads(trail.read_text()):
            assert {k: row[k] for k in ("trial_start", "node_id")} == {
                "trial_start": pytest.approx(trial["start_time"]), "node_id": trial["node_id"]}
            assert set(ORIGIN) <= set(row)
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


def test_report_every_s_0_reports_every_epoch_and_an_older_experiment_resumes_with_it(tmp_path):
    """0: a report per epoch (what an experiment saved before the option existed did; its saved
    ASHA counts reports as epochs, so its resume keeps reporting every epoch)."""
    _, outcome = small_search(tmp_path, "every", trials=2, max_epochs=6, grace_period=2, report_every_s=0,
                              origins=0, forecast=False)  # the combination's default is checked below
    exp = outcome.path
    trials = read_table(exp / "trials.csv")
    for _, trial in trials.iterrows():
        [progress] = exp.glob(f"*{trial['trial_id']}*/progress.csv")
        assert pd.read_csv(progress)["epoch"].tolist() == list(range(1, int(trial["epochs_run"]) + 1))
    assert resume_config(exp).report_every_s == 0
    run = json.loads((exp / c.RUN_FILE).read_text())
    run["config"]["report_every_s"] = 5.0
    (exp / c.RUN_FILE).write_text(json.dumps(run))
    assert resume_config(exp).report_every_s == 5.0
    assert resume_config(exp).refit is False  # saved with this version's default
    del run["format_version"]  # as format 1 wrote it, before the option existed
    del run["config"]["report_every_s"]
    (exp / c.RUN_FILE).write_text(json.dumps(run))
    assert resume_config(exp).report_every_s == 0
    del run["config"]["refit"]  # written when forecast/ refitted by default: its resume still does,
    (exp / c.RUN_FILE).write_text(json.dumps(run))  # unless it writes no forecast/ (as here)
    assert resume_config(exp).refit is False
    run["config"]["forecast"] = True
    (exp / c.RUN_FILE).write_text(json.dumps(run))
    assert resume_config(exp).refit is True
    run["config"].update(refit=True, forecast=False)  # as a search given both before they were refused
    (exp / c.RUN_FILE).write_text(json.dumps(run))
    assert resume_config(exp).refit is False
    assert resume_config(exp).combine is True  # saved with this version's default
    del run["config"]["combine"]  # written before the combination was a candidate: still is not
    (exp / c.RUN_FILE).write_text(json.dumps(run))
    assert resume_config(exp).combine is False
