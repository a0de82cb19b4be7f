"""Forecast intervals: coverage and width of tunecast's conformal intervals vs seasonal-naive's.

For each built-in dataset this runs one search with the defaults of ``tunecast search`` (fewer
trials) and reads the forecast it ends with (``forecast/metrics.json``): the chosen forecaster's
own networks, calibrated on validation origins only, give h-step intervals (h = 1 .. H, H = the
default forecast horizon: one season, or 12 steps for a series without one); the share of test
points inside them is the coverage, and their mean width is the width. The seasonal-naive
forecast gets split-conformal intervals the same way (its h-step errors on the validation
origins, checked on the test origins). The searches set ``refit: true`` (not the default) to time
the refit on every point; the intervals do not depend on it (calibrated on the searched networks'
errors). The refit time is the one ``forecast/`` reports.

    python benchmarks/forecast.py            # 4 searches of 16 trials (about 10 minutes)
    python benchmarks/forecast.py --smoke    # one tiny search on airline
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
from _common import machine_line, table, timed_search, verdict

from tunecast.model.data import DataSpec, load
from tunecast.model.forecast import conformal_quantiles
from tunecast.model.metrics import seasonal_naive_forecast

DATASETS = ("airline", "co2", "sunspots", "sine")
LEVELS = (80.0, 95.0)
COVERAGE_TOLERANCE = 0.05  # average coverage within 5 points of nominal


def seasonal_naive_intervals(name: str, steps: int) -> dict[str, tuple[float, float]]:
    """Coverage and mean width on test of seasonal-naive conformal intervals (calibrated on val)."""
    data = load(DataSpec(name))
    y = data.values[:, 0].astype(np.float64)
    m, split = data.season_length, data.n_train + data.n_val

    def errors(first: int, end: int) -> np.ndarray:
        origins = np.arange(max(first, m), end)
        positions = origins[:, None] + np.arange(steps)[None, :]  # (B, steps)
        inside = positions < end
        forecast = seasonal_naive_forecast(y, np.minimum(positions, len(y) - 1), m)
        out = np.full(positions.shape, np.nan)
        out[inside] = np.abs(y[positions[inside]] - forecast[inside])
        return out

    val, test = errors(data.n_train, split), errors(split, len(y))
    out = {}
    for level in LEVELS:
        half = conformal_quantiles(val, level)
        seen = np.isfinite(test)
        out[f"{level:g}"] = (float((test <= half[None, :])[seen].mean()),
                             float(np.mean(np.broadcast_to(2 * half[None, :], test.shape)[seen])))
    return out


def run_case(name: str, args: argparse.Namespace, storage: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {"data": {"source": name}, "name": name, "storage": str(storage),
                                "trials": args.trials, "seed": args.seed, "refit": True}
    if args.smoke:
        settings.update(max_epochs=2, grace_period=1,
                        space={"hidden_size": {"low": 8, "high": 16}, "num_layers": 1})
    wall, outcome = timed_search(settings)
    if outcome.forecast is None:
        raise RuntimeError(f"the search on {name} wrote no forecast")
    record = outcome.forecast
    baseline = seasonal_naive_intervals(name, record.horizon)
    metrics = json.loads((outcome.path / "forecast" / "metrics.json").read_text())
    return {"name": name, "horizon": record.horizon, "chosen": record.chosen, "search": wall,
            "refit": record.seconds,
            "ours": {k: (record.coverage[k], record.mean_width[k]) for k in record.coverage},
            "snaive": baseline, "origins": metrics["calibration_origins"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny search on airline")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args(argv)
    datasets = ["airline"] if args.smoke else args.datasets
    if args.smoke:
        args.trials = 2
    print(machine_line())
    results = []
    with tempfile.TemporaryDirectory(prefix="tunecast-fc-") as tmp:
        for name in datasets:
            results.append(run_case(name, args, Path(tmp)))
    rows = []
    for r in results:
        for level in (f"{v:g}" for v in LEVELS):
            (cov, width), (sn_cov, sn_width) = r["ours"][level], r["snaive"][level]
            rows.append([r["name"], r["horizon"], r["chosen"], f"{level}%", cov, sn_cov, width, sn_width,
                         width / sn_width if width and sn_width else float("nan")])
    print(table(["dataset", "H", "chosen", "level", "coverage", "snaive cov", "width", "snaive width",
                 "width ratio"], rows))
    print(table(["dataset", "search s", "refit s", "refit / search"],
                [[r["name"], r["search"], r["refit"], r["refit"] / r["search"]] for r in results]))
    ok = True
    for level in (f"{v:g}" for v in LEVELS):
        covs = [r["ours"][level][0] for r in results if r["ours"][level][0] is not None]
        mean = float(np.mean(covs)) if covs else float("nan")
        met = abs(mean - float(level) / 100) <= COVERAGE_TOLERANCE
        ok &= met
        print(f"mean test coverage of the {level}% intervals: {100 * mean:.1f}% "
              f"(target within {100 * COVERAGE_TOLERANCE:.0f} points of {level}%: {verdict(met)})")
    for level in (f"{v:g}" for v in LEVELS):
        ratios = [r["ours"][level][1] / r["snaive"][level][1] for r in results
                  if r["ours"][level][1] and r["snaive"][level][1]]
        print(f"interval width / seasonal-naive's at {level}%: "
              + ", ".join(f"{r['name']} {x:.2f}" for r, x in zip(results, ratios, strict=False))
              + f" (target < 1 everywhere: {verdict(all(x < 1 for x in ratios))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
