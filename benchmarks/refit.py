"""Refit or not: does training the chosen networks again on more data help, judged on validation?

``forecast/`` can refit the chosen networks on every observed point before forecasting past the
data (``--refit``). This measures, on the validation parts of finished searches (the test parts
are never read), what that does: for each experiment's chosen networks (the best trial or the
ensemble's members; the best trial's when a baseline was chosen)

* **A, as searched**: the configuration trained one validation length earlier (training ends
  ``n_val`` points sooner, early-stopped on the ``n_val`` points before the search's validation
  part, as ``search.backtest`` moves a split back), then forecasting the search's validation part;
* **B, refitted**: the same configuration trained on the whole training part (A's points plus
  the block A stopped on) for A's best epoch count, with nothing held out: what a refit on every
  point does, one block earlier;

both scored by MAE in original units on the validation part (an ensemble: the mean of its
members' forecasts). B / A < 1: the refit helped.

    python benchmarks/accuracy.py --suite --no-forecast --storage RUNS   # the searches, kept
    python benchmarks/refit.py RUNS/accuracy-*/*-h1-s0                   # then this (about 5 min)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
from _common import machine_line, table

from tunecast.model.evaluate import val_forecast
from tunecast.model.training import fit
from tunecast.search.backtest import earlier_split
from tunecast.search.forecasting import choose, load_data, read_experiment, search_forecaster


def compare(exp: Path) -> list[object]:
    """[experiment, networks, members, A's MAE, B's MAE, B / A] on the validation part."""
    run, best, ensemble = read_experiment(exp)
    data = load_data(run, None)
    which = choose(best, ensemble, run)
    which = which if which in ("best", "ensemble") else "best"
    networks, _ = search_forecaster(exp, which, best, ensemble)
    earlier = earlier_split(data, 1)
    in_earlier_scaling = replace(data, mean=earlier.mean, std=earlier.std)
    # nothing held out; the scaling stays data's own, which its training part set
    training_part = replace(data, n_val=0, n_test=data.n_val + data.n_test)
    as_searched, refitted, target = [], [], None
    for member in networks.members:
        config = member.config
        a = fit(config, earlier, device="cpu")
        prediction, truth = val_forecast(a.model, in_earlier_scaling, config)
        as_searched.append(in_earlier_scaling.unscale_target(prediction))
        target = in_earlier_scaling.unscale_target(truth)
        epochs = max(1, a.best_epoch)
        b = fit(replace(config, max_epochs=epochs, patience=epochs), training_part, device="cpu")
        prediction, _ = val_forecast(b.model, data, config)
        refitted.append(data.unscale_target(prediction))
    mae_a = float(np.mean(np.abs(np.mean(as_searched, axis=0) - target)))
    mae_b = float(np.mean(np.abs(np.mean(refitted, axis=0) - target)))
    return [exp.name, which, len(networks.members), mae_a, mae_b, mae_b / mae_a]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", type=Path, help="finished single-series experiments")
    args = parser.parse_args(argv)
    print(machine_line())
    rows = []
    for exp in args.experiments:
        rows.append(compare(exp))
        print(f"{exp.name}: B / A {rows[-1][-1]:.3f}", flush=True)
    print(table(["experiment", "networks", "members", "val MAE as searched (A)", "refitted (B)", "B / A"],
                rows))
    ratios = np.array([r[-1] for r in rows], dtype=np.float64)
    print(f"refit better on {int((ratios < 1).sum())}, worse on {int((ratios > 1).sum())} of {len(ratios)}; "
          f"geometric mean of B / A {float(np.exp(np.log(ratios).mean())):.3f}; worst {ratios.max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
