"""The ``tunecast`` command line: search, train, forecast, report, submit.

Every user error ends as one line ``error: ...`` on stderr, exit code 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tunecast.expdir.files import OneLineArgumentParser
from tunecast.expdir.remote import RemoteError
from tunecast.search.cli_forecast import add_forecast_parser, run_forecast_command
from tunecast.search.cli_options import UsageError, add_data_arguments
from tunecast.search.cli_search import add_search_parser, run_search_command
from tunecast.search.storage import EXIT_CODE as STORAGE_EXIT
from tunecast.search.storage import StorageFault
from tunecast.search.submit import add_submit_parser, run_submit_command

USER_ERROR = 2


def _user_errors() -> tuple[type[Exception], ...]:
    from tunecast.model.checkpoint import CheckpointError
    from tunecast.model.data import DataError
    from tunecast.model.forecast import ForecastError
    from tunecast.model.training import ConfigError
    from tunecast.search.config import SearchConfigError

    return (CheckpointError, DataError, ConfigError, ForecastError, SearchConfigError, UsageError)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="tunecast",
        description="Hyperparameter search for an Attention-LSTM forecaster (Ray Tune + Optuna).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_search_parser(sub)
    add_forecast_parser(sub)
    add_submit_parser(sub)

    train = sub.add_parser("train", help="train one model with fixed hyperparameters")
    add_data_arguments(train)
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training option, e.g. --set window=24 --set lr=0.003 (repeatable)",
    )
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    report = sub.add_parser("report", help="write the HTML report of an experiment directory", add_help=False)
    report.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def run_train(args: argparse.Namespace) -> int:
    """Train one model (on one series, or one global model on a panel) and print its validation
    and test metrics."""
    import numpy as np

    from tunecast.model.evaluate import evaluate
    from tunecast.model.panel import Panel, data_spec, load_any
    from tunecast.model.training import TrainConfig, fit
    from tunecast.search.config import data_options

    spec = data_spec(data_options(vars(args)))
    config = TrainConfig.from_dict(_parse_sets(args.set))
    data = load_any(spec)
    if isinstance(data, Panel) and not args.json:
        print(data.describe(), flush=True)

    def show(m: dict[str, Any]) -> None:
        if not args.json:
            print(
                f"epoch {m['epoch']:3d}  train_loss {m['train_loss']:.5f}  val_loss {m['val_loss']:.5f}",
                flush=True,
            )

    def progress(p: dict[str, Any]) -> None:  # a long epoch: a line every few seconds
        if not args.json:
            print(f"epoch {p['epoch']:3d}  {p['stage']} {p['done']}/{p['of']} {p['unit']}", flush=True)

    result = fit(config, data, on_epoch=show, on_progress=progress)
    if not args.json:
        print(f"testing on {int(np.sum(data.n_test))} points ...", flush=True)
    evaluation = evaluate(result.model, data, config)
    summary = {
        "status": result.status,
        "best_epoch": result.best_epoch,
        "val_loss": result.best_val_loss,
        "seconds": round(result.seconds, 2),
        "device": result.device,
        "test": evaluation.metrics,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{result.status} after {result.epochs_run} epochs ({result.seconds:.1f}s on "
            f"{result.device}); best val_loss {result.best_val_loss:.5f} at epoch {result.best_epoch}"
        )
        for name, values in evaluation.metrics.items():
            print(f"  test {name:15s} " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tunecast`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        from tunecast.reports.cli import main as report_main

        return report_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "submit":
            return run_submit_command(args)
        if args.command == "forecast":
            return run_forecast_command(args)
        if args.command is None:
            args = parser.parse_args(["search"])
        return run_search_command(args)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except (StorageFault, RemoteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return STORAGE_EXIT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
