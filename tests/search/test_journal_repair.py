"""A failed write leaves the Optuna study's journal unreadable; the resume's repair fixes it."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tunecast.search.storage import repair_journal


def study(file):
    return optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(file))))


def test_a_cut_record_continued_by_the_next_write_is_dropped_and_the_rest_replays(tmp_path):
    file = tmp_path / "optuna-study.log"
    storage = JournalStorage(JournalFileBackend(str(file)))
    s = optuna.create_study(study_name="s", storage=storage)
    for x in (1.0, 2.0):
        s.add_trial(optuna.trial.create_trial(params={"x": x}, distributions={
            "x": optuna.distributions.FloatDistribution(0, 10)}, value=x))
    lines = file.read_bytes().splitlines(keepends=True)
    # the disk filled in the middle of the last record; space came back for the next write
    damaged = b"".join(lines[:-1]) + lines[-1][:25] + lines[-1]
    file.write_bytes(damaged + lines[-1][:10])  # and a cut-short last line
    with pytest.raises(ValueError):  # json's decode error, as the resume in CI met it
        study(file)
    assert repair_journal(file) == 2
    trials = study(file).trials
    assert [t.value for t in trials] == [1.0, 2.0]
    assert file.read_bytes().endswith(b"\n")
    assert repair_journal(file) == 0  # a whole journal is left as it is


def test_a_resume_from_an_earlier_state_cuts_the_journal_back_to_what_that_state_saw(tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    from tunecast.expdir.contract import SEARCH_METRIC, STUDY_FILE
    from tunecast.search.storage import rewind_journal
    from tunecast.search.tuner import EpochOptunaSearch

    file, state = tmp_path / STUDY_FILE, tmp_path / "searcher-state-1.pkl"
    searcher = EpochOptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 10)},
                                 metric=SEARCH_METRIC, mode="min", study_name="s",
                                 storage=JournalStorage(JournalFileBackend(str(file))))
    searcher.journal = str(file)
    searcher.suggest("t1")
    searcher.save(str(state))  # the snapshot's state: t1 running
    saved = file.read_bytes()
    searcher.on_trial_complete("t1", {SEARCH_METRIC: 1.0})  # written after the snapshot
    rewind_journal(tmp_path)
    assert file.read_bytes() == saved
    resumed = OptunaSearch()
    resumed.restore(str(state))
    resumed.on_trial_complete("t1", {SEARCH_METRIC: 2.0})  # t1 runs again and finishes: no "already finished"
    assert [t.value for t in study(file).trials] == [2.0]
