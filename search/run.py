"""``run_search(SearchConfig)``: one search from start to the experiment directory's files.

Resolve the plan (data checked before Ray starts), start or join Ray, check the cluster, write
``tunecast.json``, run or restore the Tuner, then write the records; a completed search ends with
``forecast/``. The report is the CLI's business (``search`` and ``reports`` meet only on disk).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch
from ray import tune

from tunecast.expdir import contract as c
from tunecast.expdir import one_line, remote, versions, write_json
from tunecast.expdir.contract import (
    BestRecord,
    CombinedRecord,
    EnsembleRecord,
    ForecastRecord,
    RunRecord,
    SelectionRecord,
)
from tunecast.expdir.files import LOCK_FILE, ExperimentInUse, experiment_lock
from tunecast.model.data import DataError, Dataset
from tunecast.model.evaluate import val_baselines
from tunecast.model.forecast import ForecastError, Member, PanelPrediction, refit
from tunecast.model.panel import Panel
from tunecast.model.training import TrainConfig
from tunecast.search import backtest, reaper
from tunecast.search import cluster as cluster_checks
from tunecast.search.config import SearchConfig, SearchConfigError
from tunecast.search.experiment import (
    ensemble_members,
    ranked,
    write_best,
    write_combined,
    write_ensemble,
    write_tables,
)
from tunecast.search.forecasting import make_forecast, write_forecast
from tunecast.search.importance import write_importance
from tunecast.search.plan import SearchPlan, make_plan
from tunecast.search.results import TrialRecord, trial_records
from tunecast.search.selection import candidates_losses, select
from tunecast.search.signals import sigterm_as_interrupt
from tunecast.search.space import describe
from tunecast.search.storage import (
    StorageFault,
    StorageWatch,
    driver_errors,
    fault,
    fault_of,
    lock_identity,
    repair,
    storage_error,
)
from tunecast.search.trainable import train_trial
from tunecast.search.tuner import build_tuner, restore_tuner

PACKAGES = ("tunecast", "torch", "ray", "optuna", "numpy", "pandas")


@dataclass
class SearchOutcome:
    """Where the experiment is, how it ended and what the best trial and the ensemble scored."""

    path: Path  # the experiment folder (for a URI: its local working copy)
    status: str
    trials: Any  # pandas DataFrame of trials.csv
    best: BestRecord | None
    ensemble: EnsembleRecord | None
    forecast: ForecastRecord | None = None
    remote: str | None = None  # the experiment's URI, when it lives on object storage
    selection: SelectionRecord | None = None  # what it forecasts with, chosen on validation
    combined: CombinedRecord | None = None  # the networks with AutoETS and AutoARIMA (a single series)

    @property
    def location(self) -> str:
        return self.remote or str(self.path)


def run_search(config: SearchConfig, resume: Path | str | None = None,
               frame: pd.DataFrame | None = None) -> SearchOutcome:
    """Run (or resume) a search and write the experiment directory.

    Args:
        config: the search. For a resume, the config saved in the experiment (:func:`resume_config`).
        resume: an interrupted experiment (its folder, or its URI) to continue with ``Tuner.restore``.
        frame: the data in memory (``TuneCast.fit``); ``config.data.source`` is then the experiment's
            own data file, written when the search starts.
    """
    plan = make_plan(config, resume, frame)
    if isinstance(plan.data, Panel) and (config.verbose > 0 or plan.data.dropped):
        print(plan.data.describe(), flush=True)  # what --min-length dropped is said even with --quiet
    return execute(plan, frame=frame)


def execute(plan: SearchPlan, trainable: Callable[..., None] = train_trial,
            frame: pd.DataFrame | None = None) -> SearchOutcome:
    """Run a resolved plan. ``trainable`` (as :func:`train_trial`) lets fault-injection tests
    wrap the real one; ``frame`` is kept as the experiment's data file."""
    config, path = plan.config, plan.path
    if config.address is None and not ray.is_initialized():  # local: say so before Ray starts
        cluster_checks.check_gpus(config.gpus_per_trial, {"total_gpus": torch.cuda.device_count()})
    cluster_checks.check_reachable(config.address)  # within seconds, not Ray's minutes of retries
    if plan.remote:
        _check_store(plan)
    created = make_folder(path)
    try:
        with experiment_lock(path):  # one writer per experiment, until this search ends
            _check_unclaimed(plan)
            if frame is not None:
                frame.to_parquet(plan.config.data.source, index=False)
            return _execute(plan, trainable)
    except ExperimentInUse as exc:
        raise SearchConfigError(str(exc)) from None
    except SearchConfigError:  # refused before anything was written (e.g. by the cluster checks)
        if created and {p.name for p in path.iterdir()} <= {LOCK_FILE, c.DATA_FILE}:
            shutil.rmtree(path)
        raise


def _check_store(plan: SearchPlan) -> None:
    """Object storage: writable before Ray starts, and a fresh working copy for a new search."""
    try:
        remote.check_writable(plan.storage_path)
    except remote.RemoteError as exc:
        raise SearchConfigError(f"{exc}: check --storage and the store's credentials") from None
    if not plan.resume:
        shutil.rmtree(plan.path, ignore_errors=True)  # a copy an earlier run on this URI left


def _check_unclaimed(plan: SearchPlan) -> None:
    """Under the lock: a run that took the same folder first (and ended) has written it."""
    if not plan.resume and (plan.path / c.RUN_FILE).exists():
        raise SearchConfigError(
            f"experiment '{plan.location}' exists already: resume it with --resume {plan.location}, "
            "or pick another --name"
        )
    if plan.resume and saved_status(plan.path) == "completed":
        raise SearchConfigError(
            f"experiment '{plan.location}' was completed by another run: nothing to resume"
        )


def _execute(plan: SearchPlan, trainable: Callable[..., None]) -> SearchOutcome:
    config, path = plan.config, plan.path
    watcher = None
    if config.address is None and not ray.is_initialized():
        reaper.reap()  # what an earlier killed search left behind
        watcher = reaper.watch_driver()  # and what this one leaves if it is killed
    started_ray = _init_ray(config.address, config.verbose)
    sigterm_as_interrupt()  # after ray.init, which sets its own SIGTERM handler (exit 15)
    run: RunRecord | None = None
    # our lock file's (dev, inode): if the mount vanishes and Ray recreates the folder, it differs
    lock = lock_identity(path) if not plan.remote else None
    try:
        cluster = cluster_checks.describe_cluster(config.address)
        cluster_checks.check_gpus(config.gpus_per_trial, cluster)
        if not plan.remote:  # every node reaches object storage by itself
            cluster_checks.check_shared_storage(path.parent, cluster)
        concurrency = cluster_checks.max_concurrency(config, cluster)
        run = _run_record(plan, cluster, concurrency)
        write_json(path / c.RUN_FILE, run.to_dict())
        sync_up(plan, c.RUN_FILE, c.DATA_FILE)  # a resume needs them, whatever happens next
        return _search(plan, trainable, run, concurrency)
    except StorageFault:
        _mark_interrupted(path, run)
        raise
    except (SearchConfigError, DataError, ForecastError):
        raise
    except driver_errors() as exc:  # Ray reading its files back, or its controller wrapping an error
        problem = fault_of(exc, path, lock)
        if problem is None:
            raise
        _mark_interrupted(path, run)
        raise problem from None
    finally:
        if started_ray:
            ray.shutdown()
        reaper.release(watcher)


def _search(
    plan: SearchPlan, trainable: Callable[..., None], run: RunRecord, concurrency: int
) -> SearchOutcome:
    """Run (or restore) the Tuner under a storage watch, then write the records."""
    config, path = plan.config, plan.path
    began = time.monotonic()
    # Tune's warning on a checkpoint-forced state sync within 5 s: every improvement here, not actionable
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if plan.resume:
        tuner = restore_tuner(plan, trainable, retry_errored=not plan.remote and repair(path))
    else:
        tuner = build_tuner(plan, concurrency, trainable)
    with StorageWatch(path, active=not plan.remote) as watch:
        grid = tuner.fit()  # a storage error reading Ray's files back: _execute turns it into a fault
    out_of_time = config.time_budget_s is not None and (
        plan.resume or time.monotonic() - began >= 0.9 * config.time_budget_s
    )
    records = trial_records(grid, plan, out_of_time)
    hit = next((reason for r in records if (reason := storage_error(r.error))), None)
    if watch.fault or hit:  # trials that died writing are resumed, not recorded as failed
        raise fault(path, watch.fault or hit or "")
    trials = write_tables(path, records, config.gpus_per_trial)
    order = ranked(trials, records)
    best = write_best(path, order[0], plan.data) if order else None
    ensemble = write_ensemble(path, ensemble_members(trials, records, config.ensemble), plan.data)
    combined = write_combined(path, best if config.combine else None, ensemble, plan.data)
    write_importance(path, trials, plan.space)
    unfinished = bool(trials["status"].isin(c.UNFINISHED).any()) if len(trials) else True
    unfinished = unfinished or (len(trials) < config.trials and not out_of_time)
    status = "interrupted" if unfinished else ("completed" if best is not None else "failed")
    # retraining at earlier origins only for a completed search (a resume chooses again)
    earlier = _earlier_origins(plan, records, best, ensemble, combined is not None) \
        if status == "completed" else None
    losses = candidates_losses(best, ensemble, combined, _baselines(plan)) if best else None
    selection = select(losses, earlier) if losses else None
    ended_at = None if status == "interrupted" else _now()  # null while it can be resumed
    run = replace(run, status=status, ended_at=ended_at, best_trial_id=best.trial_id if best else None,
                  selection=selection)
    write_json(path / c.RUN_FILE, run.to_dict())
    forecast = _forecast(path, config.refit, config.verbose) if status == "completed" and config.forecast \
        else None
    sync_up(plan)
    return SearchOutcome(path, status, trials, best, ensemble, forecast, plan.remote, selection, combined)


def _earlier_origins(plan: SearchPlan, records: list[TrialRecord], best: BestRecord | None,
                     ensemble: EnsembleRecord | None, combined: bool) -> dict[str, list[float | None]] | None:
    """The candidates' losses at earlier validation origins, each retrained there on Ray: the
    search's own block chose the best trial, so it cannot judge it alone (:mod:`search.backtest`)."""
    # a panel validates on every series' blocks; origins 0: the search's own block alone
    if best is None or isinstance(plan.data, Panel) or not plan.config.origins:
        return None
    ids = [m.trial_id for m in ensemble.members] if ensemble is not None else [best.trial_id]
    members = {r.trial_id: TrainConfig.from_dict(r.config) for r in records if r.trial_id in ids}
    if plan.config.verbose > 0:
        print("scoring the best trial" + (f", the top-{len(ids)} ensemble" if len(ids) > 1 else "")
              + (", the combination with AutoETS and AutoARIMA" if combined else "")
              + f" and the baselines at up to {plan.config.origins} earlier validation origins", flush=True)
    return backtest.backtest(plan.data, members, best.trial_id, fits_on_ray(plan.config), combined,
                             plan.config.origins)


@ray.remote
def _fit_task(config: TrainConfig, split: Dataset, device: str | None, threads: int) -> tuple[Any, Any]:
    torch.set_num_threads(threads)
    return backtest.fit_each([(config, split)], device=device)[0]


def fits_on_ray(config: SearchConfig) -> backtest.FitAll:
    """The backtest's fits side by side on the search's Ray cluster, each with a trial's CPUs and
    GPU share (on the CPU when trials have no GPU: a task holds no GPU then)."""
    task = _fit_task.options(num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial)
    device = None if config.gpus_per_trial else "cpu"
    threads = max(1, int(config.cpus_per_trial))

    def fit_all(jobs: list[tuple[TrainConfig, Dataset]]) -> list[tuple[Any, Any]]:
        refs = {id(split): ray.put(split) for _, split in jobs}  # each split shipped once
        return list(ray.get([task.remote(c, refs[id(split)], device, threads) for c, split in jobs]))

    return fit_all


def _baselines(plan: SearchPlan) -> dict[str, float | None]:
    """Naive's and seasonal-naive's validation loss, on the trials' validation windows."""
    shared = TrainConfig.from_dict(plan.fixed)  # horizon and max_val_windows are never tuned
    return val_baselines(plan.data, shared.horizon, shared.max_val_windows)


def sync_up(plan: SearchPlan, *names: str) -> None:
    """Copy the contract files (or ``names``) of a URI experiment's working copy up to it."""
    if plan.remote:
        remote.upload(plan.path, plan.remote, names or None)


def _mark_interrupted(path: Path, run: RunRecord | None) -> None:
    """After a storage fault: mark tunecast.json "interrupted" if the storage takes the write."""
    if run is None:
        return
    with contextlib.suppress(OSError):
        write_json(path / c.RUN_FILE, replace(run, status="interrupted", ended_at=None).to_dict())


def make_folder(path: Path) -> bool:
    """Create the experiment folder before Ray starts, so a bad storage path or name is one line
    of bad input. True if the folder is new."""
    storage = path.parent
    if storage.exists() and not storage.is_dir():
        raise SearchConfigError(f"storage '{storage}' is a file, not a folder: pass a folder as --storage")
    try:
        existed = path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        return not existed
    except OSError as exc:
        raise SearchConfigError(
            f"cannot create the experiment folder '{path}': {exc.strerror or one_line(exc)}; "
            "check --storage and --name"
        ) from None


@ray.remote(num_cpus=1)
def _refit_task(member: Member, data: Dataset | Panel) -> Member:
    torch.set_num_threads(1)
    return refit(member, data, member.info.epoch)


def _refit_on_ray(members: list[Member], data: Dataset | Panel) -> list[Member]:
    """The chosen networks refitted side by side, one CPU each, on the search's Ray cluster."""
    data_ref = ray.put(data)
    return list(ray.get([_refit_task.remote(m, data_ref) for m in members]))


def _forecast(path: Path, refit_models: bool = False, verbose: int = 1) -> ForecastRecord | None:
    """forecast/: the chosen forecaster (``refit_models``: refitted on every point, on Ray) the
    default horizon past the data; a forecast that cannot be made is a warning."""
    try:
        forecaster, prediction, record, _ = make_forecast(path, refit_models=refit_models,
                                                          refit_all=_refit_on_ray)
    except ForecastError as exc:
        print(f"warning: no forecast/ ({exc}); see `tunecast forecast --help`", file=sys.stderr)
        return None
    write_forecast(path, forecaster, prediction, record)
    if verbose > 0 and isinstance(prediction, PanelPrediction):
        print(f"forecast/: {len(prediction.ids)} series, {record.horizon} steps each after its own last "
              f"time ({int(prediction.own.sum())} calibrated on their own errors, the others pooled)",
              flush=True)
    return record


def _init_ray(address: str | None, verbose: int = 1) -> bool:
    """Start Ray in-process sized to this machine, or join ``address``. True if we started it.
    Below ``verbose`` 2, Ray's warnings and the trials' output stay in Ray's log files."""
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"logging_level": "warning" if verbose >= 2 else "error",
                              "log_to_driver": verbose >= 2}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SearchConfigError(
                f"cannot connect to a Ray cluster at '{address}': {one_line(exc)}; start one "
                "with `ray start --head` or drop --address to run locally"
            ) from None
    else:
        # The raylet waits this long for its agents' port files, then aborts (Ray's default is 10 s:
        # on 2 busy cores the dashboard agent took 16 s to start, and ray.init failed)
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "60")
        ray.init(  # address="local": a new in-process cluster, never one `ray start` left running
            address="local",
            num_cpus=os.cpu_count(),
            num_gpus=torch.cuda.device_count(),
            include_dashboard=False,
            **common,
        )
    return True


def _run_record(plan: SearchPlan, cluster: dict[str, Any], concurrency: int) -> RunRecord:
    previous = _read_run(plan.path) if plan.resume else None
    now = _now()
    return RunRecord(
        name=plan.path.name,
        status="running",
        config=plan.config.to_dict(),
        space=describe(plan.space),
        data=plan.data.summary(),
        started_at=previous.started_at if previous and previous.started_at else now,
        resumed_at=(*previous.resumed_at, now) if previous else (),
        max_concurrent=concurrency,
        versions=versions(PACKAGES),
        cluster=cluster,
        host=socket.gethostname(),
        command=tuple(sys.argv),
    )


def _read_run(path: Path) -> RunRecord:
    file = path / c.RUN_FILE
    try:
        return RunRecord.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except c.NewerFormatError as exc:
        raise SearchConfigError(f"cannot resume '{path}': {exc}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise SearchConfigError(f"'{file}' is unreadable ({one_line(exc)}): cannot resume") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def saved_status(path: Path) -> str:
    """The status an experiment directory's tunecast.json records ("completed", "interrupted", ...)."""
    return _read_run(path).status


def resume_target(text: str) -> Path | str:
    """The experiment ``--resume`` names: its folder, or its URI (whose contract files are
    then copied down to the local working copy)."""
    if not remote.is_uri(text):
        return Path(text).expanduser().resolve()
    uri = text.rstrip("/")
    try:
        remote.download(uri, remote.working_copy(uri))
    except remote.RemoteError as exc:
        raise SearchConfigError(f"{exc}: check the URI and the store's credentials") from None
    return uri


def working_folder(target: Path | str) -> Path:
    """The local folder of an experiment: itself, or the working copy of its URI."""
    return remote.working_copy(target) if isinstance(target, str) else target


def resume_config(target: Path | str) -> SearchConfig:
    """The SearchConfig saved in an experiment (for ``--resume``): ``target`` is its folder, or
    its URI after :func:`resume_target`."""
    path = working_folder(target)
    if not path.is_dir() or not (path / c.RUN_FILE).exists() or not tune.Tuner.can_restore(str(target)):
        raise SearchConfigError(
            f"'{target}' is not a tunecast experiment (no {c.RUN_FILE} and Ray Tune state): "
            "pass the folder or URI that `tunecast search` printed"
        )
    saved = _read_run(path).config
    if not saved:
        raise SearchConfigError(f"'{path / c.RUN_FILE}' holds no search config: cannot resume")
    storage = target.rsplit("/", 1)[0] if isinstance(target, str) else str(path.parent)
    return replace(SearchConfig.from_dict(saved), name=path.name, storage=storage)
