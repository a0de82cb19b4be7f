"""``reports`` reads files: it imports neither Ray, torch, Optuna nor the training and search code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CHECK = """
import sys
import tunecast.reports, tunecast.reports.cli
from tunecast.reports import render_report
render_report(sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"ray", "torch", "optuna"}
               or m.startswith(("tunecast.model", "tunecast.search")))
assert not heavy, heavy
print("ok")
"""


def test_reports_imports_no_ray_torch_optuna_or_model(make_exp: Callable[..., Path]) -> None:
    """Even after rendering a whole report, importances and ensemble included. The experiment is
    written here, by the search's writers (which need torch and Optuna); the report in a fresh
    interpreter that only reads it."""
    exp = make_exp(n_trials=6, ensemble=3)
    assert (exp / "importance.json").is_file() and (exp / "ensemble").is_dir()
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(exp)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
