"""``run_search(SearchConfig)``: Ray Tune + OptunaSearch + ASHA, then the experiment files.

Flow: load and check the data (before Ray starts), start or join Ray, check the cluster (GPUs
present when asked for, shared storage on multi-node clusters), write ``tunecast.json``, run or
restore the Tuner, then write ``trials.csv``, ``history.csv`` and ``best/`` and the report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from model.data import Dataset, load
from search import cluster as cluster_checks
from search.config import MODE, SEARCH_METRIC, SearchConfig, SearchConfigError
from search.experiment import (
    TrialRecord,
    clean_history,
    ensemble_members,
    one_line_error,
    pick_best,
    write_best,
    write_ensemble,
    write_json,
    write_tables,
)
from search.space import (
    Param,
    SpaceError,
    adapt_to_series,
    apply_overrides,
    default_space,
    describe,
)
from search.trainable import train_trial

STATE_FILE = "tunecast.json"


@dataclass
class SearchOutcome:
    """Where the experiment is, how it ended and what the best trial scored."""

    path: Path
    status: str
    trials: Any  # pandas DataFrame of trials.csv
    best_metrics: dict[str, Any] | None
    report: Path | None
    ensemble_metrics: dict[str, Any] | None = None


def experiment_dir(config: SearchConfig, data: Dataset) -> Path:
    name = config.name or f"{data.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    return Path(config.storage).expanduser().resolve() / name


def search_space(config: SearchConfig, data: Dataset) -> dict[str, Param]:
    horizon = int(config.train.get("horizon", 1))
    try:
        space = apply_overrides(default_space(), config.space)
        for name in config.train:
            space.pop(name, None)  # fixed under train: wins over the default range
        return adapt_to_series(space, data.n_train, horizon)
    except SpaceError as exc:
        raise SearchConfigError(str(exc)) from None


def optuna_space(space: dict[str, Param]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optuna distributions for the tuned parameters, and the fixed values."""
    from optuna import distributions as od

    tuned: dict[str, Any] = {}
    fixed: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "int":
            tuned[name] = od.IntDistribution(int(p.low or 0), int(p.high or 0), log=p.log)
        elif p.type == "float":
            tuned[name] = od.FloatDistribution(float(p.low or 0), float(p.high or 0), log=p.log)
        elif p.type == "categorical":
            tuned[name] = od.CategoricalDistribution(list(p.choices))
        else:
            fixed[name] = p.value
    return tuned, fixed


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("tunecast", "torch", "ray", "optuna", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _init_ray(address: str | None) -> bool:
    """Start Ray in-process sized to this machine, or join ``address``. True if we started it."""
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"logging_level": "warning", "log_to_driver": True}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SearchConfigError(
                f"cannot connect to a Ray cluster at '{address}': {one_line_error(exc)}; start one "
                "with `ray start --head` or drop --address to run locally"
            ) from None
    else:
        ray.init(  # address="local": a new in-process cluster, never one `ray start` left running
            address="local",
            num_cpus=os.cpu_count(),
            num_gpus=torch.cuda.device_count(),
            include_dashboard=False,
            **common,
        )
    return True


def _saved_statuses(path: Path) -> dict[str, str]:
    """Trial statuses in Tune's last saved experiment state (RUNNING there survives a Ctrl-C)."""
    import json

    states = sorted(path.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    try:
        saved = json.loads(states[-1].read_text())
        trials = (json.loads(entry[0]) for entry in saved["trial_data"])
        return {t["trial_id"]: t["status"] for t in trials}
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


def _records(grid: tune.ResultGrid, path: Path) -> list[TrialRecord]:
    trials = grid._experiment_analysis.trials  # same order as the ResultGrid's results
    saved = _saved_statuses(path)
    records = []
    for trial, result in zip(trials, [grid[i] for i in range(len(grid))], strict=True):
        history = result.metrics_dataframe
        if history is None:
            import pandas as pd

            history = pd.DataFrame()
        tune_status = saved.get(trial.trial_id, trial.status)
        if result.error is not None:
            status = "failed"
        elif len(history) and int(history["last_epoch"].iloc[-1]) == 1:
            status = "completed"
        elif tune_status in ("PENDING", "RUNNING", "PAUSED"):
            status = "running" if tune_status == "RUNNING" else "pending"
        else:
            status = "stopped"
        checkpoints = [c for c, _ in (result.best_checkpoints or [])] or (
            [result.checkpoint] if result.checkpoint else []
        )
        history, restarts = clean_history(history)
        records.append(
            TrialRecord(
                trial_id=trial.trial_id,
                status=status,
                config=dict(trial.config),
                history=history,
                error=one_line_error(result.error),
                checkpoint_dir=Path(checkpoints[0].path) if checkpoints else None,
                restarts=restarts,
            )
        )
    return records


def run_search(config: SearchConfig, resume: Path | None = None, trainable: Any = None) -> SearchOutcome:
    """Run (or resume) a search and write the experiment directory.

    Args:
        config: the search. For a resume, the config saved in the experiment.
        resume: an interrupted experiment directory to continue with ``Tuner.restore``.
        trainable: replaces :func:`train_trial` (same signature); for fault-injection tests.
    """
    data = load(config.data)
    space = search_space(config, data)
    tuned, fixed_space = optuna_space(space)
    fixed = {**config.train_options(), **fixed_space}
    path = resume if resume is not None else experiment_dir(config, data)
    if resume is None and (path / STATE_FILE).exists():
        raise SearchConfigError(
            f"experiment '{path}' exists already: resume it with --resume {path}, or pick another --name"
        )
    if config.address is None and not ray.is_initialized():  # local: say so before Ray starts
        local = {"total_gpus": torch.cuda.device_count()}
        cluster_checks.check_gpus(config.gpus_per_trial, local)
    started_ray = _init_ray(config.address)
    try:
        cluster = cluster_checks.describe_cluster(config.address)
        cluster_checks.check_gpus(config.gpus_per_trial, cluster)
        cluster_checks.check_shared_storage(path.parent, cluster)
        concurrency = cluster_checks.max_concurrency(config, cluster)
        state_path = path / STATE_FILE
        state = _initial_state(config, data, space, cluster, concurrency, path, resume)
        write_json(state_path, state)
        began = time.monotonic()
        # Tune warns whenever a checkpoint forces an experiment-state snapshot within 5 s of the
        # last one: with num_to_keep=1 and fast epochs that is every improvement, and the user
        # cannot act on it.
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        grid = _tuner(config, data, fixed, tuned, concurrency, path, resume, trainable).fit()
        records = _records(grid, path)
        trials = write_tables(path, records, fixed, config.gpus_per_trial)
        best = pick_best(trials, records)
        best_metrics = write_best(path, best, data) if best is not None else None
        ensemble_metrics = write_ensemble(path, ensemble_members(trials, records, config.ensemble), data)
        out_of_time = config.time_budget_s is not None and (
            resume is not None or time.monotonic() - began >= 0.9 * config.time_budget_s
        )
        unfinished = bool(trials["status"].isin(["pending", "running"]).any()) if len(trials) else True
        unfinished = unfinished or (len(trials) < config.trials and not out_of_time)
        status = "interrupted" if unfinished else ("completed" if best is not None else "failed")
        state.update(
            status=status,
            ended_at=_now(),
            best_trial_id=best.trial_id if best else None,
            max_concurrent=concurrency,
        )
        write_json(state_path, state)
    finally:
        if started_ray:
            ray.shutdown()
    report = _write_report(path) if config.report else None
    return SearchOutcome(path, status, trials, best_metrics, report, ensemble_metrics)


def _tuner(
    config: SearchConfig,
    data: Dataset,
    fixed: dict[str, Any],
    tuned: dict[str, Any],
    concurrency: int,
    path: Path,
    resume: Path | None,
    trainable: Any,
) -> tune.Tuner:
    resources = {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}
    fn = tune.with_parameters(trainable or train_trial, data=data, fixed=fixed, resources=resources)
    fn = tune.with_resources(fn, resources)
    if resume is not None:
        return tune.Tuner.restore(
            str(path),
            trainable=fn,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
    from optuna.samplers import TPESampler

    sampler = TPESampler(
        seed=config.seed, multivariate=True, n_startup_trials=min(10, max(4, config.trials // 3))
    )
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=config.max_epochs,
            grace_period=config.grace_period or 1,
            reduction_factor=config.reduction_factor,
        )
        if config.scheduler == "asha"
        else FIFOScheduler()
    )
    return tune.Tuner(
        fn,
        tune_config=tune.TuneConfig(
            metric=SEARCH_METRIC,
            mode=MODE,
            search_alg=OptunaSearch(space=tuned, metric=SEARCH_METRIC, mode=MODE, sampler=sampler),
            scheduler=scheduler,
            num_samples=config.trials,
            max_concurrent_trials=concurrency,
            time_budget_s=config.time_budget_s,
            reuse_actors=True,  # a new trial reuses a finished trial's worker: no torch re-import
        ),
        run_config=tune.RunConfig(
            name=path.name,
            storage_path=str(path.parent),
            failure_config=tune.FailureConfig(max_failures=config.retries()),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=SEARCH_METRIC, checkpoint_score_order=MODE
            ),
            verbose=config.verbose,
        ),
    )


def _initial_state(
    config: SearchConfig,
    data: Dataset,
    space: dict[str, Param],
    cluster: dict[str, Any],
    concurrency: int,
    path: Path,
    resume: Path | None,
) -> dict[str, Any]:
    import json

    previous = json.loads((path / STATE_FILE).read_text()) if resume is not None else {}
    search = config.to_dict()
    search.pop("data")
    search.update(metric=SEARCH_METRIC, mode=MODE, space=describe(space), max_concurrent=concurrency)
    return {
        "format_version": 1,
        "name": path.name,
        "status": "running",
        "started_at": previous.get("started_at", _now()),
        "resumed_at": [*previous.get("resumed_at", []), _now()] if resume is not None else [],
        "ended_at": None,
        "config": config.to_dict(),
        "search": search,
        "data": data.summary(),
        "versions": versions(),
        "cluster": cluster,
        "host": socket.gethostname(),
        "command": sys.argv,
        "best_trial_id": None,
    }


def _write_report(path: Path) -> Path | None:
    """The search's results are safe on disk already: a report that fails is a warning."""
    try:
        from reports import ReportError, render_report
    except ImportError:
        return None
    try:
        return render_report(path)
    except (ReportError, OSError) as exc:
        print(f"warning: the report could not be written ({exc}); try `tunecast report {path}`",
              file=sys.stderr)
        return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def resume_config(path: Path) -> SearchConfig:
    """The SearchConfig saved in an experiment directory (for ``--resume``)."""
    import json

    state_file = path / STATE_FILE
    if not path.is_dir() or not state_file.exists() or not tune.Tuner.can_restore(str(path)):
        raise SearchConfigError(
            f"'{path}' is not a tunecast experiment (no {STATE_FILE} and Ray Tune state): "
            "pass the folder that `tunecast search` printed"
        )
    try:
        saved = json.loads(state_file.read_text())["config"]
    except (ValueError, KeyError) as exc:
        raise SearchConfigError(f"'{state_file}' is unreadable ({exc}): cannot resume") from None
    return replace(SearchConfig.from_dict(saved), name=path.name, storage=str(path.parent))
