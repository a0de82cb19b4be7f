"""Should AutoTheta join AutoETS and AutoARIMA in the combination? Judged on validation only.

For each series of the accuracy suite: one search (the defaults, ``--trials``), then the
combination's validation loss (``val_loss``'s loss and windows) with today's statistical models
and with AutoTheta added, on the same networks (the top-k ensemble, or the best trial), fitted on
the same training part. Prints each series' ratio (with / without) and the geometric mean; the
rule, fixed before the run: adopt AutoTheta if the geometric mean is below 0.99 and it is lower on
more than half the series. Test data is never read.

    python benchmarks/theta.py [--series airline co2 ...] [--trials 8]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
from _common import machine_line, table, timed_search
from _suite import SUITE, data_section, geomean

from tunecast.model import checkpoint
from tunecast.model.data import DataSpec, load
from tunecast.model.evaluate import val_forecast
from tunecast.model.statistical import MODELS, Statistical, StatisticalError
from tunecast.search.backtest import combined_val_loss
from tunecast.search.experiment import network_folders

WITH_THETA = (*MODELS, "AutoTheta")


def losses(name: str, trials: int, storage: Path) -> tuple[float, float] | None:
    """The combination's validation loss without and with AutoTheta (None: no network or model)."""
    section = data_section(name, storage)
    _, outcome = timed_search({"data": section, "trials": trials, "storage": str(storage), "name": name,
                               "forecast": False, "origins": 0})
    if outcome.best is None:
        return None
    data = load(DataSpec.from_dict(section))
    loaded = [checkpoint.load(folder) for _, folder in network_folders(outcome.path, outcome.best,
                                                                       outcome.ensemble)]
    forecasts = [val_forecast(model, data, info.config) for model, info in loaded]
    networks, target = np.mean([p for p, _ in forecasts], axis=0), forecasts[0][1]
    config = loaded[0][1].config
    out = []
    for models in (MODELS, WITH_THETA):
        try:
            statistical = Statistical(data.values[:, 0], data.n_train, data.season_length, models)
            out.append(combined_val_loss(statistical, data, networks, target, config.horizon,
                                         config.max_val_windows))
        except StatisticalError:
            return None
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(SUITE), choices=SUITE)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.series:
            result = losses(name, args.trials, Path(tmp))
            if result is None:
                rows.append([name, "-", "-", "-"])
                continue
            ratios.append(result[1] / result[0])
            rows.append([name, f"{result[0]:.4f}", f"{result[1]:.4f}", f"{ratios[-1]:.3f}"])
            print(f"{name}: {rows[-1][1:]}", flush=True)
    print(machine_line())
    print(table(["series", "val_loss ETS+ARIMA", "+ Theta", "ratio"], rows))
    better = sum(r < 1 for r in ratios)
    adopt = bool(ratios) and geomean(ratios) < 0.99 and better > len(ratios) / 2
    print(f"theta: geometric mean ratio {geomean(ratios):.3f}, lower on {better}/{len(ratios)} series: "
          + ("adopt AutoTheta" if adopt else "keep AutoETS + AutoARIMA"))


if __name__ == "__main__":
    main()
