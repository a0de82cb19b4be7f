"""``reports`` reads files: it imports neither Ray, torch nor the training code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
import reports, reports.cli
from reports import render_report
from reports._synthetic import make_fixture_experiment
render_report(make_fixture_experiment(sys.argv[1], n_trials=6))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"ray", "torch", "model"})
assert not heavy, heavy
print("ok")
"""


def test_reports_imports_no_ray_torch_or_model(tmp_path: Path) -> None:
    """Even after rendering a whole report (Optuna's importances included)."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "exp")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
