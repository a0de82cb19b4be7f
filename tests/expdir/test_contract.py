"""The experiment-directory contract: records round-trip, and the module stays a leaf."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from tunecast.expdir import contract as c
from tunecast.expdir import one_line, write_json
from tunecast.expdir.contract import (
    BestRecord,
    CombinedRecord,
    ContractError,
    EnsembleRecord,
    ImportanceRecord,
    MemberRecord,
    RunRecord,
    ScoreRecord,
    SelectionRecord,
    migrate,
)
from tunecast.search.config import SearchConfig

SCORES = ScoreRecord(1, 12, "rolling one-step", 29, {
    name: {"mae": 1.0 + i, "rmse": 2.0, "mase": 0.5, "smape": 3.0} for i, name in enumerate(c.FORECASTERS)})


def _roundtrip(record, tmp_path):
    write_json(tmp_path / "r.json", record.to_dict())
    return type(record).from_dict(json.loads((tmp_path / "r.json").read_text()))


def test_records_round_trip_through_json(tmp_path):
    t0 = datetime(2026, 11, 29, 1, 2, 3, tzinfo=timezone.utc)
    run = RunRecord("x", "completed", {"trials": 4, "data": {"source": "sine"}}, {"lr": {"type": "float"}},
                    {"n_points": 10}, started_at=t0, ended_at=t0, resumed_at=(t0,), max_concurrent=2,
                    command=("tunecast", "search"), best_trial_id="a")
    best = BestRecord("a", 0.1, 3, {"window": 12}, "y", ("f1",), SCORES)
    ensemble = EnsembleRecord((MemberRecord("a", 0.1, 3), MemberRecord("b", 0.2, 4)), 0.09, 2.0, SCORES)
    importance = ImportanceRecord({"lr": 0.7, "window": 0.3}, "PedAnovaImportanceEvaluator", 5)
    combined = CombinedRecord(("a", "b"), ("AutoETS", "AutoARIMA"), 93, 0.08, SCORES)
    for record in (run, best, ensemble, importance, combined):
        assert _roundtrip(record, tmp_path) == record
    assert run.search == {"trials": 4, "metric": c.SEARCH_METRIC, "mode": c.MODE, "max_concurrent": 2}
    assert run.duration_s == 0.0


def test_a_record_that_breaks_the_contract_names_the_field():
    raw = BestRecord("a", 0.1, 3, {}, "y", (), SCORES).to_dict()
    raw["test"]["naive"]["mase"] = "n/a"
    with pytest.raises(ContractError, match=r"test\.naive\.mase"):
        BestRecord.from_dict(raw)
    members = {**EnsembleRecord((MemberRecord("a", 1, 1), MemberRecord("a", 1, 1)), 1, 2, SCORES).to_dict()}
    with pytest.raises(ContractError, match="twice"):
        EnsembleRecord.from_dict(members)
    combined = CombinedRecord(("a",), ("AutoETS",), 93, 0.08, SCORES).to_dict()
    for field, value, problem in (("networks", [], "networks"), ("statistical", [], "statistical"),
                                  ("fit_end", 0, "fit_end")):
        with pytest.raises(ContractError, match=problem):
            CombinedRecord.from_dict({**combined, field: value})


def test_a_lenient_run_record_notes_what_it_ignored():
    notes: list[str] = []
    run = RunRecord.from_dict({"status": "odd", "started_at": "yesterday"}, notes)
    assert run.started_at is None and run.status == "odd"
    assert len(notes) == 2


def _format_1(forecast: bool = True) -> dict:
    """tunecast.json as format 1 wrote it: this writer's record less what format 2 added (the
    config's report_every_s, refit and combine; the selection's compared, score and origins)."""
    config = SearchConfig.from_dict({"data": {"source": "sine"}, "trials": 4, "forecast": forecast}).to_dict()
    selection = SelectionRecord("best", {"best": 0.1, "ensemble": 0.2, "naive": 0.9, "seasonal_naive": 0.3})
    raw = RunRecord("x", "completed", config, {}, {"n_points": 10}, best_trial_id="a",
                    selection=selection).to_dict()
    for key in ("report_every_s", "refit", "combine"):
        del raw["config"][key]
    for key in ("compared", "score", "origins"):
        del raw["selection"][key]
    return {**raw, "format_version": 1}


@pytest.mark.parametrize("version", [1, None])  # None: written before format_version was recorded
def test_a_format_1_experiment_is_migrated(version):
    raw = _format_1()
    if version is None:
        del raw["format_version"]
    before = json.dumps(raw)
    new = migrate(raw)
    assert json.dumps(raw) == before  # the caller's dict is left as it was
    assert new["format_version"] == c.FORMAT_VERSION == 2
    # as format 1 behaved: every epoch reported, forecast/ refitted, no combination, and the
    # best trial compared beside the ensemble (so chosen by its lower loss)
    config = SearchConfig.from_dict(new["config"])
    assert (config.report_every_s, config.refit, config.combine) == (0, True, False)
    assert new["selection"]["compared"] == list(c.CHOICES)
    run = RunRecord.from_dict(raw)
    assert run.selection is not None and run.selection.compared == c.CHOICES
    assert min(run.selection.score, key=run.selection.score.__getitem__) == "best"
    assert RunRecord.from_dict(run.to_dict()) == run  # and written back as format 2, unchanged


def test_a_format_1_experiment_without_forecast_never_refits():
    raw = _format_1(forecast=False)
    assert migrate(raw)["config"]["refit"] is False
    raw["config"]["refit"] = True  # a search given both, before they were refused together
    assert migrate(raw)["config"]["refit"] is False
    raw["config"].update(refit=False, forecast=True, report_every_s=5.0, combine=True)  # kept
    assert {k: migrate(raw)["config"][k] for k in ("refit", "report_every_s", "combine")} == {
        "refit": False, "report_every_s": 5.0, "combine": True}


def test_the_current_format_is_read_as_written():
    raw = _format_1()
    raw = RunRecord.from_dict(raw).to_dict()
    raw["config"].update(report_every_s=5.0, refit=False, combine=True)
    raw["selection"]["compared"] = ["ensemble", "naive"]
    assert migrate(raw) == raw
    run = RunRecord.from_dict(raw)
    assert run.selection is not None and run.selection.compared == ("ensemble", "naive")


def test_a_newer_format_is_refused_in_one_line(tmp_path):
    from tunecast.reports.collect import ReportError, collect

    message = f"experiment format 3 is newer than this tunecast ({c.FORMAT_VERSION}): upgrade tunecast"
    raw = {**RunRecord("x", "completed", {}, {}, {}).to_dict(), "format_version": 3}
    with pytest.raises(ContractError) as error:
        RunRecord.from_dict(raw)
    assert str(error.value) == message
    write_json(tmp_path / c.RUN_FILE, raw)
    with pytest.raises(ReportError) as error:
        collect(tmp_path)
    assert str(error.value) == f"{tmp_path / c.RUN_FILE}: {message}"
    from tunecast.model.forecast import ForecastError
    from tunecast.search.forecasting import read_experiment

    with pytest.raises(ForecastError) as forecast_error:  # tunecast forecast: no "corrupt, restore it"
        read_experiment(tmp_path)
    assert str(forecast_error.value) == f"experiment '{tmp_path}': {message}"


def test_one_line_keeps_the_message_of_a_traceback():
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\n    boom()\nValueError: bad lr\n'
    assert one_line(trace) == "ValueError: bad lr"
    assert one_line(None) == ""


def test_expdir_imports_no_torch_ray_optuna_or_pandas():
    code = ("import sys, tunecast.expdir, tunecast.expdir.contract; "
            "print(sorted({'torch', 'ray', 'optuna', 'pandas', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
