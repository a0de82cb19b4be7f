"""``tunecast forecast EXP_DIR``: values past the end of the data, with prediction intervals."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tunecast.model.panel import Panel
from tunecast.search.cli_options import UsageError

SHOWN_ROWS = 60  # of a panel's forecast printed (-o FILE writes every row)


def add_forecast_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forecast",
        help="forecast past the end of the data from a finished search, with intervals",
        description="Forecast H steps after the last observed point with the search's chosen "
        "forecaster (the top-k ensemble or the best trial without one, the combination or a baseline, "
        "whichever had the lowest val_loss), as the search trained it (--refit: refitted on every "
        "point first), with "
        "split-conformal prediction intervals calibrated on its own held-out errors. "
        "For a panel of many series: every series, each after its own last time (long format, "
        "with a unique_id column).",
    )
    p.add_argument("exp_dir", metavar="EXP_DIR", help="the experiment directory `tunecast search` wrote")
    p.add_argument("--horizon", type=int, help="steps to forecast (default: the search's horizon, or one "
                   "season when that is 1)")
    p.add_argument("--data", help="the same series extended with newer rows (default: the searched data; "
                   "for a panel, the same id, time and target columns)")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction, default=False,
                   help="refit the chosen networks on every point first (default: no; on the accuracy "
                   "suite a refit was no better on average and sometimes far worse, and the intervals "
                   "are calibrated on the searched networks)")
    p.add_argument("--level", type=float, nargs="+", default=[80.0, 95.0], metavar="L",
                   help="interval levels in percent (default: 80 95)")
    p.add_argument("--future", metavar="FILE",
                   help="CSV with the extra features' values for the next H times (needed with "
                   "--features beyond the trained horizon)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the forecast as CSV")
    p.add_argument("--json", action="store_true", help="print the forecast as JSON")


def _future(path: str | None, columns: tuple[str, ...], steps: int) -> np.ndarray | None:
    if path is None:
        return None
    import pandas as pd

    if len(columns) == 1:
        raise UsageError("--future gives extra features, but the search used none: drop --future")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --future '{path}' as CSV: {exc}") from None
    missing = [col for col in columns[1:] if col not in frame.columns]
    if missing:
        raise UsageError(f"--future '{path}' lacks column(s) {missing}: it needs {list(columns[1:])}")
    if len(frame) < steps:
        raise UsageError(f"--future '{path}' has {len(frame)} rows, the forecast needs {steps}")
    values = frame[list(columns[1:])].head(steps).apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise UsageError(f"--future '{path}' has values that are not finite numbers: fix them")
    return values


def run_forecast_command(args: argparse.Namespace) -> int:
    from tunecast.expdir import write_text_atomic
    from tunecast.search.forecasting import (
        default_horizon,
        is_panel_experiment,
        load_data,
        make_forecast,
        read_experiment,
    )

    exp_dir = Path(args.exp_dir).expanduser()
    output = Path(args.output).expanduser() if args.output else None
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise UsageError(f"-o {output}: pass a file in an existing folder")
    future = None
    if args.future is not None and is_panel_experiment(exp_dir):
        raise UsageError("--future is not taken for a panel forecast yet: drop it (a panel with extra "
                         "features is forecast at most its trained horizon ahead)")
    if args.future is not None:  # checked before any training
        run, best, _ = read_experiment(exp_dir)
        steps = args.horizon or default_horizon(best)
        future = _future(args.future, load_data(run, args.data).columns, steps)
    _, prediction, record, data = make_forecast(
        exp_dir, args.horizon, tuple(args.level), args.refit, args.data, future)
    frame = prediction.frame()
    if output is not None:
        write_text_atomic(output, frame.to_csv(index=False))
    if args.json:
        rows = json.loads(frame.to_json(orient="records", double_precision=15))
        print(json.dumps({"forecast": rows, **record.to_dict()}, indent=2))
        return 0
    if record.trial_ids:
        how = "refitted on every point" if record.refit else "as the search trained them"
        who = f"the {record.chosen} ({', '.join(record.trial_ids)}), {how}"
    else:  # a baseline: no trained network beat it on validation
        who = f"{record.chosen.replace('_', '-')}: no trained model beat it on validation"
    if isinstance(data, Panel):
        print(f"{record.horizon}-step forecast of {data.target} for {data.n_series} series, each after its "
              f"own last time (the latest: {record.last_time}), by {who}")
    else:
        print(f"{record.horizon}-step forecast of {data.target} after {record.last_time} by {who}")
    shown = frame.head(SHOWN_ROWS)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(frame) > len(shown):
        print(f"... {len(frame) - len(shown)} more rows" + ("" if output else ": -o FILE writes them all"))
    checked = ", ".join(f"{level}%: {_percent(value)}" for level, value in record.coverage.items())
    print(f"interval check (calibrated on validation, scored on test): coverage {checked}")
    if output is not None:
        print(f"forecast: {output}")
    return 0


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.0f}%"
