"""Helpers shared by the benchmark scripts: the machine's description and plain-text tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as `python benchmarks/x.py` from a checkout: the checkout goes first, ahead of this folder
# (whose search.py would shadow the `search` package), also when PYTHONPATH already lists it.
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """Date, CPUs, CPU model, torch version and the load average when the run started."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs "
        f"({cpu_model()}); torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"python {platform.python_version()}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident memory of this process (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A plain-text table with right-aligned columns (the first column left-aligned)."""
    cells = [list(headers)] + [[fmt(v, digits) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def timed_search(settings: dict[str, Any], trainable: Any = None) -> tuple[float, Any]:
    """Run ``search.run.run_search`` (what ``tunecast search`` runs: it starts a local Ray), or
    ``execute`` with another trainable.

    Returns the wall seconds of the whole call (Ray's start and shutdown included) and the
    ``SearchOutcome``.
    """
    import time

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # verbose 0 then prints no status boxes

    from tunecast.search.config import SearchConfig
    from tunecast.search.plan import make_plan
    from tunecast.search.run import execute, run_search

    config = SearchConfig.from_dict({"verbose": 0, "report": False, **settings})
    start = time.perf_counter()
    outcome = run_search(config) if trainable is None else execute(make_plan(config), trainable)
    return time.perf_counter() - start, outcome
