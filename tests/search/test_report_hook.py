"""The search writes the report at its end; a report that cannot be written is only a warning."""

from __future__ import annotations

from tests.reports.fixtures import make_fixture_experiment
from tunecast.search.cli_search import write_report


def test_report_written_into_the_experiment(tmp_path):
    exp = make_fixture_experiment(tmp_path / "exp")
    assert write_report(exp) == exp / "report.html"
    assert (exp / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_failed_report_is_a_warning_not_a_crash(tmp_path, capsys):
    exp = make_fixture_experiment(tmp_path / "exp")
    (exp / "report.html").mkdir()  # something in the way of the file
    assert write_report(exp) is None
    err = capsys.readouterr().err
    assert err.startswith("warning: the report could not be written") and "tunecast report" in err
    assert (exp / "trials.csv").exists()
