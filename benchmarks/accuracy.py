"""Accuracy: a tuned Attention-LSTM against statsforecast's AutoETS and AutoARIMA.

For each case (dataset, horizon) this runs one search (``search.run.run_search``, what
``tunecast search`` runs) of ``--trials`` trials with a fixed seed and one recipe for every
dataset (``recipe()`` below), then scores on the test split (DESIGN.md's protocol: last 20 %,
rolling one-step for H = 1, non-overlapping blocks of H otherwise):

* ``tunecast best trial``: ``<experiment>/best/metrics.json``, the trial with the lowest
  val_loss (what ``tunecast search`` reports);
* ``tunecast top-k ensemble``: ``<experiment>/ensemble/metrics.json``, the mean forecast of the
  ``--top-k`` trials with the lowest val_loss (their best checkpoints), which the search writes
  (``--ensemble``); selection uses val_loss only;
* ``SeasonalNaive``: ``model.metrics.seasonal_naive_forecast``;
* ``AutoETS`` and ``AutoARIMA`` (statsforecast, season length m of the dataset): fitted once on
  every point before the test part (train + validation), then rolled over the same test points
  without refitting: each forecast is ``model.forward(y[:t0], h=H)`` (the fitted model applied to
  the true history before the block, its parameters unchanged).

Test positions come from ``split_windows(...)["test"].target_positions()``, so every row scores
exactly the same points; MASE's scale is the seasonal-naive in-sample MAE over train + validation.

    python benchmarks/accuracy.py            # 5 searches of 32 trials (about 20-40 minutes)
    python benchmarks/accuracy.py --smoke    # 2 tiny trials on airline
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
from _common import machine_line, table, timed_search, verdict

from model.data import Dataset, DataSpec, load
from model.metrics import METRIC_NAMES, all_metrics, seasonal_naive_forecast
from model.windows import split_windows

CASES = [("airline", 1), ("co2", 1), ("sunspots", 1), ("airline", 12), ("co2", 12)]
SEARCH_LIMIT_S = 600.0
ARIMA_TOLERANCE = 1.10


def recipe(smoke: bool = False) -> dict[str, Any]:
    """The search settings used for every dataset (one recipe, chosen on validation data)."""
    if smoke:
        return {"max_epochs": 2, "grace_period": 1, "train": {"patience": 5},
                "space": {"hidden_size": {"low": 8, "high": 16}, "num_layers": 1}}
    return {
        "max_epochs": 150,
        "grace_period": 15,
        "train": {"patience": 30},
        "space": {"lr": {"low": 3e-4, "high": 3e-3, "log": True}},
    }


def statsforecast_baselines(data: Dataset, positions: np.ndarray) -> dict[str, np.ndarray]:
    """AutoETS and AutoARIMA fitted on train + validation, rolled over the test blocks."""
    from statsforecast.models import AutoARIMA, AutoETS

    y = data.values[:, 0].astype(np.float64)
    n_pre = data.n_train + data.n_val
    horizon = positions.shape[1]
    out = {}
    for model in (AutoETS(season_length=data.season_length), AutoARIMA(season_length=data.season_length)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(y[:n_pre])
            forecasts = [model.forward(y[: block[0]], h=horizon)["mean"] for block in positions]
        out[type(model).__name__] = np.stack(forecasts)  # (K, H)
    return out


def run_case(name: str, horizon: int, args: argparse.Namespace, storage: Path) -> dict[str, Any]:
    settings = {**recipe(args.smoke), "data": {"source": name}, "name": f"{name}-h{horizon}",
                "storage": str(storage), "trials": args.trials, "seed": args.seed, "ensemble": args.top_k}
    settings["train"] = {**settings["train"], "horizon": horizon}
    wall, outcome = timed_search(settings)
    if outcome.best is None:
        raise RuntimeError(f"search on {name} (H={horizon}) ended without a finished trial")
    data = load(DataSpec(source=name))
    positions = split_windows(data, 1, horizon)["test"].target_positions()  # (K, H)
    assert positions.size == outcome.best.scores.n_test_points, "test points differ"
    y = data.values[:, 0].astype(np.float64)
    insample = y[: data.n_train + data.n_val]
    rows = {"tunecast best trial": outcome.best.scores.test["model"]}
    if outcome.ensemble is not None:  # ensemble/metrics.json, written by the search
        ensemble = outcome.ensemble
        assert ensemble.scores.n_test_points == positions.size, "test points differ"
        rows[f"tunecast top-{ensemble.k} ensemble"] = ensemble.scores.test["model"]
    forecasts = {"SeasonalNaive": seasonal_naive_forecast(y, positions, data.season_length),
                 **statsforecast_baselines(data, positions)}
    for label, forecast in forecasts.items():
        rows[label] = all_metrics(y[positions].ravel(), forecast.ravel(), insample, data.season_length)
    return {"name": name, "horizon": horizon, "m": data.season_length, "points": positions.size,
            "wall": wall, "rows": rows, "trial": outcome.best.trial_id}


def ratio_lines(result: dict[str, Any], label: str) -> tuple[str, dict[str, bool]]:
    rows = result["rows"]
    ours = rows[label]["mase"]
    r = {b: ours / rows[b]["mase"] for b in ("SeasonalNaive", "AutoETS", "AutoARIMA")}
    ok = {"sn": r["SeasonalNaive"] < 1, "ets": r["AutoETS"] < 1,
          "arima": r["AutoARIMA"] <= ARIMA_TOLERANCE, "time": result["wall"] <= SEARCH_LIMIT_S}
    line = (f"{result['name']:<8} H={result['horizon']:<2} MASE ratio vs SeasonalNaive "
            f"{r['SeasonalNaive']:.3f}, vs AutoETS {r['AutoETS']:.3f}, vs AutoARIMA {r['AutoARIMA']:.3f}; "
            f"search {result['wall']:.0f} s")
    return line, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 tiny trials on airline, H=1")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--cases", nargs="+", metavar="NAME:H", help="e.g. airline:1 co2:12")
    parser.add_argument("--storage", help="keep the experiments here (default: a temporary folder)")
    args = parser.parse_args(argv)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases] if args.cases else CASES
    if args.smoke:
        cases, args.trials, args.top_k = [("airline", 1)], 2, 2
    print(machine_line())
    print(f"recipe (every dataset): {recipe(args.smoke)}; trials {args.trials}, seed {args.seed}")
    results = []
    with tempfile.TemporaryDirectory(prefix="tunecast-acc-") as tmp:
        storage = Path(args.storage or tmp).resolve()
        for name, horizon in cases:
            result = run_case(name, horizon, args, storage)
            results.append(result)
            print(f"\n{name} (m={result['m']}), H={horizon}: {result['points']} test points, "
                  f"search {result['wall']:.0f} s, best trial {result['trial']}")
            print(table(["forecast", *(n.upper() if n != "smape" else "sMAPE" for n in METRIC_NAMES)],
                        [[label, *(m[n] for n in METRIC_NAMES)] for label, m in result["rows"].items()]),
                  flush=True)
    print()
    for label in ("tunecast best trial", "ensemble"):
        if not all(any(label in k for k in r["rows"]) for r in results):
            continue
        chosen = [next(k for k in r["rows"] if label in k) for r in results]
        lines = [ratio_lines(r, c) for r, c in zip(results, chosen, strict=True)]
        print(f"{label}: test MASE ratios (< 1 is better than the baseline)")
        print("\n".join(line for line, _ in lines))
        one_step = [ok for (_, ok), r in zip(lines, results, strict=True) if r["horizon"] == 1]
        all_ok = [ok for _, ok in lines]
        print(f"  beats SeasonalNaive everywhere: {verdict(all(o['sn'] for o in all_ok))}; "
              f"beats AutoETS on >= 2 of 3 one-step datasets: "
              f"{verdict(sum(o['ets'] for o in one_step) >= min(2, len(one_step)))}; "
              f"within 10% of AutoARIMA everywhere: {verdict(all(o['arima'] for o in all_ok))}; "
              f"every search <= {SEARCH_LIMIT_S:.0f} s: {verdict(all(o['time'] for o in all_ok))}")
    return 0 if all(math.isfinite(r["wall"]) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
