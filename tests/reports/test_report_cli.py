"""``tunecast report EXP_DIR [-o FILE]``: exit codes and one-line errors, one test per bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tunecast.reports.cli import main

FAILED_WARNING = "warning: 1 of 8 trials failed; their errors are listed under Failed trials.\n"

def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_writes_the_report_and_prints_its_path(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, str(exp_h1))
    assert code == 0 and err == FAILED_WARNING  # what the report's banner says, on stderr too
    assert out.strip() == str(exp_h1 / "report.html")
    assert (exp_h1 / "report.html").stat().st_size > 10_000


def test_cli_output_option(exp_h1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, str(exp_h1), "-o", str(tmp_path / "r.html"))
    assert code == 0 and out.strip() == str(tmp_path / "r.html")
    assert (tmp_path / "r.html").is_file() and not (exp_h1 / "report.html").exists()


def test_python_dash_m_reports(exp_h1: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.html"
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "report", str(exp_h1), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and out.is_file()


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run_cli(capsys, str(tmp_path / "nope")), "does not exist")


def test_a_file_instead_of_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "trials.csv"
    file.write_text("x\n")
    assert_bad_input(*run_cli(capsys, str(file)), "is not a directory")


def test_not_an_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run_cli(capsys, str(tmp_path)), "not a tunecast experiment", "tunecast.json is missing")
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("name", ["metrics.json", "predictions.csv", "attention.npy"])
def test_missing_best_file(exp_h1: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "best" / name).unlink()
    assert_bad_input(*run_cli(capsys, str(exp_h1)), f"best/{name} is missing")
    assert not (exp_h1 / "report.html").exists()


def test_the_report_does_not_need_the_best_model(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """best/ is also a model folder (model.pt, model.json) for `tunecast forecast`: not the report's."""
    for name in ("model.pt", "model.json"):
        (exp_h1 / "best" / name).unlink()
    code, out, err = run_cli(capsys, str(exp_h1))
    assert code == 0 and err == FAILED_WARNING and out.strip() == str(exp_h1 / "report.html")


def test_best_metrics_without_a_train_config(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = exp_h1 / "best" / "metrics.json"
    metrics = json.loads(file.read_text())
    del metrics["train_config"]
    file.write_text(json.dumps(metrics))
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "best/metrics.json has no train_config object",
                     "re-run the search or restore the file")


def test_missing_history_csv(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "history.csv").unlink()
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "history.csv is missing")


def test_corrupt_json(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "tunecast.json").write_text('{"name": "x", "status": ')
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt JSON", "tunecast.json")
    assert not (exp_h1 / "report.html").exists()


def test_json_that_is_not_an_object(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "best" / "metrics.json").write_text("[1, 2]")
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt JSON", "metrics.json")


def test_metrics_without_baselines(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = exp_h1 / "best" / "metrics.json"
    metrics = json.loads(file.read_text())
    del metrics["test"]["seasonal_naive"]
    file.write_text(json.dumps(metrics))
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "test.seasonal_naive")


def test_corrupt_csv(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "trials.csv").write_bytes(b"\x00\xff\xfe garbage \x81\n\x01\x02")
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt CSV", "trials.csv")


def test_empty_csv(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "history.csv").write_text("")
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt CSV", "history.csv", "empty")


def test_text_in_a_number_column(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = exp_h1 / "history.csv"
    lines = file.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",yesterday"
    file.write_text("\n".join(lines) + "\n")
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "column timestamp", "not a number")


def test_corrupt_attention_array(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (exp_h1 / "best" / "attention.npy").write_bytes(b"not numpy")
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt array", "attention.npy")


def test_attention_array_of_the_wrong_shape(exp_h1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(exp_h1 / "best" / "attention.npy", np.ones(5, dtype=np.float32))
    assert_bad_input(*run_cli(capsys, str(exp_h1)), "corrupt array", "(5,)")


def test_output_in_a_missing_folder(exp_h1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "report.html"
    assert_bad_input(*run_cli(capsys, str(exp_h1), "-o", str(out)), "does not exist")
    assert not out.parent.exists() and not (exp_h1 / "report.html").exists()


def test_output_is_a_directory(exp_h1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run_cli(capsys, str(exp_h1), "-o", str(tmp_path)), "is a directory")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "EXP_DIR" in out
