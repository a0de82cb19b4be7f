"""The benchmark scripts still run: each one's ``--smoke`` mode (tiny sizes) ends with its ratios.

The full benchmarks are run by hand (see benchmarks/RESULTS.md); these only check that the
scripts work and print their tables, whatever the numbers.
"""

from __future__ import annotations

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


@pytest.mark.slow
def test_accuracy_smoke() -> None:
    pytest.importorskip("statsforecast", reason="the accuracy benchmark needs the bench extra")
    lines = run_smoke("accuracy.py")
    for label in ("tunecast best trial", "SeasonalNaive", "AutoETS", "AutoARIMA"):
        assert any(line.startswith(label) for line in lines), label
    assert lines[-1].lstrip().startswith("beats SeasonalNaive everywhere")


@pytest.mark.slow
def test_forecast_smoke() -> None:
    lines = run_smoke("forecast.py")
    assert any(line.startswith("airline") and "80%" in line for line in lines)
    assert lines[-4].startswith("mean test coverage of the 80% intervals")
    assert lines[-1].startswith("interval width / seasonal-naive's at 95%")
