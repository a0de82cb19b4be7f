"""The experiment-directory contract: records round-trip, and the module stays a leaf."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from expdir import contract as c
from expdir import one_line, write_json
from expdir.contract import (
    BestRecord,
    CombinedRecord,
    ContractError,
    EnsembleRecord,
    ImportanceRecord,
    MemberRecord,
    RunRecord,
    ScoreRecord,
)

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
    run = RunRecord.from_dict({"format_version": 9, "status": "odd", "started_at": "yesterday"}, notes)
    assert run.started_at is None and run.status == "odd"
    assert len(notes) == 3


def test_one_line_keeps_the_message_of_a_traceback():
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\n    boom()\nValueError: bad lr\n'
    assert one_line(trace) == "ValueError: bad lr"
    assert one_line(None) == ""


def test_expdir_imports_no_torch_ray_optuna_or_pandas():
    code = ("import sys, expdir, expdir.contract; "
            "print(sorted({'torch', 'ray', 'optuna', 'pandas', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
