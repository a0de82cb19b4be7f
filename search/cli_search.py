"""``tunecast search``: options, smoke test, resume."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tunecast.expdir import contract as c
from tunecast.search.cli_options import UsageError, add_data_arguments

# what `tunecast search` exits with, by how the search ended (bad input is 2, before it starts)
EXIT_CODES = {"completed": 0, "failed": 1, "interrupted": 130}
def add_search_parser(sub: Any) -> None:
    p = sub.add_parser(
        "search", help="run a hyperparameter search (default: a quick one on the airline data)"
    )
    add_data_arguments(p)
    g = p.add_argument_group("search")
    g.add_argument("--config", help="YAML file with data/search/train/space sections")
    g.add_argument("--trials", type=int, help="number of trials (default 16)")
    g.add_argument("--max-epochs", type=int, help="epochs per trial at most (default 100)")
    g.add_argument("--grace-period", type=int, help="epochs before ASHA may stop a trial (default 10)")
    g.add_argument("--scheduler", choices=("asha", "fifo"), help="early stopping of trials (default asha)")
    g.add_argument("--horizon", type=int, help="steps forecast at once (default 1)")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    g.add_argument("--gpus-per-trial", type=float, help="GPU share per trial, e.g. 0.25 (default 0)")
    g.add_argument("--max-concurrent", type=int, help="trials at once (default: all that fit)")
    g.add_argument("--time-budget", type=float, help="stop starting trials after this many seconds")
    g.add_argument(
        "--max-failures", type=int, help="retries of a failed trial (default 0 locally, 2 with --address)"
    )
    g.add_argument("--storage", help="folder (or shared mount) for experiments (default ./tunecast-runs)")
    g.add_argument("--name", help="experiment name (default: dataset and time)")
    g.add_argument("--resume", metavar="DIR", help="continue an interrupted experiment")
    g.add_argument("--address", help="Ray cluster to join ('auto' inside a Ray Job)")
    g.add_argument("--seed", type=int, help="seed of the sampler and of every trial (default 0)")
    g.add_argument(
        "--ensemble", type=int, metavar="K",
        help="also forecast with the mean of the K best trials by val_loss (default 5; 1 = off)",
    )
    g.add_argument("--smoke-test", action="store_true", help="a tiny search that ends in seconds")
    g.add_argument("--no-report", action="store_true", help="do not write report.html")
    g.add_argument("--no-forecast", action="store_true",
                   help="do not forecast past the data with the chosen forecaster (forecast/)")
    g.add_argument("--refit", action="store_true",
                   help="forecast/ refits the chosen networks on every point first (default: it forecasts "
                   "with the networks the search trained and calibrated)")
    g.add_argument("--no-combine", action="store_true",
                   help="do not score the networks combined with AutoETS and AutoARIMA as a candidate "
                   "(default: a single series has that candidate, combined/)")
    g.add_argument("--origins", type=int, metavar="N",
                   help="a single series: also retrain and score the candidates at N earlier validation "
                   "origins, the choice by the mean over all (default 2; 0: the search's own block alone)")
    g.add_argument("--warm-start", metavar="EXP_DIR",
                   help="start the sampler from the finished trials of an earlier experiment")
    shown = g.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="print only the final summary")
    shown.add_argument("--verbose", action="store_true",
                       help="Ray Tune's own tables and logs instead of the progress display")


def search_options() -> dict[str, Any]:
    """Every option of `tunecast search` by argparse's name, with its value when not given."""
    parser = argparse.ArgumentParser()
    add_search_parser(parser.add_subparsers(dest="command"))
    return {k: v for k, v in vars(parser.parse_args(["search"])).items() if k != "command"}


def console_override(args: argparse.Namespace) -> dict[str, int]:
    """SearchConfig.verbose from --quiet (0) and --verbose (2); the default is 1."""
    if args.quiet:
        return {"verbose": 0}
    return {"verbose": 2} if args.verbose else {}


def run_search_command(args: argparse.Namespace) -> int:
    from tunecast.search.config import from_options

    if args.resume:
        given = [
            k
            for k, v in vars(args).items()
            if v is not None and v is not False  # 0 is given (--origins 0, --seed 0)
            and k not in ("command", "resume", "address", "quiet", "verbose")
        ]
        if given:
            raise UsageError(f"--resume takes the saved settings; drop {', '.join(sorted(given))}")
        from tunecast.search.run import resume_config, resume_target, run_search, saved_status, working_folder

        target = resume_target(args.resume)  # a folder, or a URI whose contract files come down
        config = resume_config(target)
        if saved_status(working_folder(target)) == "completed":  # nothing to run, nothing rewritten
            print(f"experiment '{target}' is completed already: nothing to resume")
            return EXIT_CODES["completed"]
        changed = {**console_override(args), **({"address": args.address} if args.address else {})}
        if changed:
            config = config.__class__.from_dict({**config.to_dict(), **changed})
        return finish(run_search(config, resume=target), config.report)

    config = leave_ray_runtime_folder(from_options(vars(args)))

    from tunecast.search.run import run_search

    return finish(run_search(config), config.report)


def leave_ray_runtime_folder(config: Any) -> Any:
    """In a Ray Job with ``--working-dir`` the driver starts under Ray's ``runtime_resources``,
    which another raylet may garbage-collect mid-search (Tune then fails in ``os.getcwd``):
    resolve the user's paths, then move to the storage folder."""
    if "runtime_resources" not in Path.cwd().parts:
        return config
    import dataclasses
    import os

    storage = Path(config.storage).expanduser().resolve()
    source = Path(config.data.source).expanduser()
    data = config.data
    if source.exists():
        data = dataclasses.replace(data, source=str(source.resolve()))
    storage.mkdir(parents=True, exist_ok=True)
    os.chdir(storage)
    return dataclasses.replace(config, storage=str(storage), data=data)


def write_report(path: Path) -> Path | None:
    """The search's results are safe on disk already: a report that fails is a warning."""
    try:
        from tunecast.reports import ReportError, render_report
    except ImportError:
        return None
    try:
        return render_report(path)
    except (ReportError, OSError) as exc:
        print(f"warning: the report could not be written ({exc}); try `tunecast report {path}`",
              file=sys.stderr)
        return None


def _selection_line(selection: Any, who: str | None = None) -> str:
    """Which forecaster the search chose on validation, plainly when a baseline won."""
    shown = ", ".join(f"{k.replace('_', '-')} {v:.5f}" for k, v in selection.score.items())
    measure = ("val_loss" if selection.origins == 1
               else f"mean val_loss over {selection.origins} validation origins")
    if "best" not in selection.compared:  # beside an ensemble (tunecast.search.selection)
        shown += "; the best trial only as one of the ensemble's members"
    if selection.baseline_won:
        name = selection.chosen.replace("_", "-")
        return (f"chosen on validation: {name}. No trained model beat {name} on validation "
                f"({measure} {shown}): forecasts use {name}")
    return f"chosen on validation: {who or c.CHOICE_NAMES[selection.chosen]} ({measure} {shown})"


def _panel_line(who: str, val_loss: float | None, scores: Any) -> str:
    """A panel's test scores: means across its series, beside the baselines'."""
    test = scores.test
    return (f"{who}: val_loss {val_loss or float('nan'):.5f}; test over {scores.n_series} series: mean MASE "
            f"{test['model']['mase']:.3f} (naive {test['naive']['mase']:.3f}, seasonal-naive "
            f"{test['seasonal_naive']['mase']:.3f}), mean MASE ratio to seasonal-naive "
            f"{test['model']['mase_ratio']:.3f}")


def finish(outcome: Any, report: bool) -> int:
    counts = outcome.trials["status"].value_counts().to_dict() if len(outcome.trials) else {}
    print(f"\nsearch {outcome.status}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    best, ensemble = outcome.best, outcome.ensemble
    if best is not None and best.scores.n_series is not None:
        print(_panel_line(f"best trial {best.trial_id}", best.val_loss, best.scores))
    elif best is not None:
        test = best.scores.test
        print(
            f"best trial {best.trial_id}: val_loss {best.val_loss:.5f}; test MASE "
            f"{test['model']['mase']:.3f} (naive {test['naive']['mase']:.3f}, seasonal-naive "
            f"{test['seasonal_naive']['mase']:.3f})"
        )
    if ensemble is not None and ensemble.scores.n_series is not None:
        print(_panel_line(f"top-{ensemble.k} ensemble (mean forecast)", ensemble.val_loss, ensemble.scores))
    elif ensemble is not None:
        print(
            f"top-{ensemble.k} ensemble (mean forecast): val_loss {ensemble.val_loss:.5f}; "
            f"test MASE {ensemble.scores.test['model']['mase']:.3f}"
        )
    combined, names = outcome.combined, dict(c.CHOICE_NAMES)
    if combined is not None:
        networks = "the ensemble" if ensemble is not None else "the best trial"
        loss = float("nan") if combined.val_loss is None else combined.val_loss
        print(f"{networks} + {' + '.join(combined.statistical)} (equal mean): val_loss {loss:.5f}; "
              f"test MASE {combined.scores.test['model']['mase']:.3f}")
        names["combined"] = f"the networks combined with {' and '.join(combined.statistical)}"
    selection = outcome.selection
    if selection is not None:
        print(_selection_line(selection, names.get(selection.chosen)))
    if outcome.forecast is not None:
        fc = outcome.forecast
        who = names.get(fc.chosen, fc.chosen)
        print(f"forecast: {fc.horizon} steps after {fc.last_time} by {who}"
              + (" (refitted on every point)" if fc.refit else ""))
    print(f"experiment: {outcome.location}")
    if outcome.status == "interrupted":
        print(f"resume with: tunecast search --resume {outcome.location}")
    path = write_report(outcome.path) if report else None
    if path is not None and outcome.remote:
        from tunecast.expdir import remote

        remote.upload(outcome.path, outcome.remote, (path.name,))
        print(f"report: {remote.join(outcome.remote, path.name)} (a copy: {path})")
    elif path is not None:
        print(f"report: {path}")
    return EXIT_CODES.get(outcome.status, 1)
