"""benchmarks/gpu_share.py still runs (smoke mode, CPU) and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_share_benchmark_smoke():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_share.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rows = [r for r in (line.split() for line in out.splitlines()) if len(r) == 6 and r[-1].endswith("x")]
    assert [int(r[0]) for r in rows] == [1, 2]
    assert all(float(r[1]) > 0 for r in rows)  # windows/s
    assert out.strip().splitlines()[-1].startswith("best: ")


def test_gpu_share_benchmark_refuses_without_cuda():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_share.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "no CUDA device" in result.stderr
