"""Experiment directories for the report's tests, written by the search's own writers.

``make_fixture_experiment`` makes up what Ray Tune would have reported (one
:class:`search.results.TrialRecord` per trial: a synthetic per-epoch history and a saved, seeded
but untrained model for every finished trial) and hands it to the functions a real search ends
with (``search/run.py``'s ``execute``): ``write_tables``, ``write_best``, ``write_ensemble`` and
``write_importance``, with ``tunecast.json`` as a :class:`expdir.contract.RunRecord`. So the
files are what the writer writes, in no time: no Ray and no training.

Also used by ``benchmarks/report_scale.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunecast.expdir import contract as c
from tunecast.expdir import write_json
from tunecast.expdir.contract import RunRecord
from tunecast.model import checkpoint
from tunecast.model.data import Dataset, DataSpec, load
from tunecast.model.evaluate import val_baselines
from tunecast.model.panel import Panel, PanelSpec, load_panel
from tunecast.model.training import TrainConfig, build_model
from tunecast.search.config import SearchConfig
from tunecast.search.experiment import (
    ensemble_members,
    ranked,
    write_best,
    write_combined,
    write_ensemble,
    write_tables,
)
from tunecast.search.importance import write_importance
from tunecast.search.results import TrialRecord
from tunecast.search.selection import candidates_losses, select
from tunecast.search.space import Param, adapt_to_series, describe

__all__ = ["XSS_IMG", "XSS_SCRIPT", "data_file", "make_fixture_experiment", "models_folder"]

# Injection payloads the report must show as text (tests put them in names and messages).
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'

T0 = 1_795_000_000.0  # Unix seconds of the synthetic search's start
MAX_EPOCHS, GRACE, SEASON = 30, 3, 12
BATCH_SIZE, PATIENCE = 32, 5
BASE_LOSS = 0.05  # val_loss (scaled MSE) of a perfect learning rate
# The space the trials are drawn from (before the window is clipped to the series, as a search
# does). Small networks: building and saving one takes milliseconds.
SPACE: dict[str, Param] = {
    "hidden_size": Param("int", 16, 128, log=True),
    "window": Param("int", 12, 36),
    "dropout": Param("float", 0.0, 0.5),
    "lr": Param("float", 1e-4, 1e-2, log=True),
    "scaler": Param("categorical", choices=("standard", "window")),
    "highway": Param("categorical", choices=(False, True)),
    "num_layers": Param("fixed", value=1),
}
VERSIONS = {"tunecast": "0.1.0", "python": "3.11.7", "torch": "2.13.0", "ray": "2.60.0",
            "optuna": "5.0.0", "numpy": "2.4.6", "pandas": "3.1.1"}


def data_file(path: str | Path) -> Path:
    """The CSV series of the experiment at ``path``: beside it, not inside it."""
    path = Path(path)
    return path.parent / f"{path.name}-data.csv"


def models_folder(path: str | Path) -> Path:
    """Where the trials' checkpoints (model folders) of the experiment at ``path`` are kept,
    as Ray Tune keeps them in its own trial folders: beside the experiment, not inside it."""
    path = Path(path)
    return path.parent / f".{path.name}-checkpoints"


def make_fixture_experiment(
    path: str | Path,
    *,
    n_trials: int = 8,
    horizon: int = 1,
    name: str = "fixture-demo",
    target: str = "passengers",
    run_status: str = "completed",
    statuses: Sequence[str] | None = None,
    error_message: str = "RuntimeError: loss diverged to nan at epoch 2",
    n_points: int = 144,
    n_nodes: int = 1,
    max_concurrent: int = 2,
    seed: int = 0,
    ensemble: int = 1,
    n_series: int = 0,
    combine: bool = False,
) -> Path:
    """Write an experiment directory at ``path`` through the search's writers; return ``path``.

    Args:
        path: the experiment directory to create (its parent must exist). The series is written
            to :func:`data_file` and the trials' models to :func:`models_folder`, beside it.
        n_trials: number of trials in trials.csv.
        horizon: forecast horizon H of every trial (blocks of H in predictions.csv when H > 1).
        name: experiment name (tunecast.json).
        target: target column name of the series (any text: the CSV quotes it).
        run_status: tunecast.json status; ``best/`` (and ``ensemble/``) are written only for
            "completed". ``importance.json`` is always written.
        statuses: one status per trial; by default a mix of completed, stopped and failed
            (trial 3, 8, 13, ... fail; 2, 5, 11, ... are stopped by ASHA). "running" and
            "pending" trials belong in an interrupted run; a pending one has no config.
        error_message: the error of failed trials.
        n_points: length of the monthly series (trend, a season of 12 and noise).
        n_nodes: Ray nodes the trials are spread over (half a GPU per trial when > 1).
        max_concurrent: trials running at once (trials start when a slot frees up).
        seed: random seed (of the series, the sampled configs, the curves and the weights).
        ensemble: K of ``tunecast search --ensemble K``: with K >= 2 ``ensemble/`` holds the
            mean forecast of the (at most K) finished trials with the lowest val_loss, less any
            above twice the best one's, when at least two remain. 1, the default here, writes
            none. The synthetic val_loss of every completed trial is within twice the best, so
            with 5 completed trials (the default mix of 8) K <= 5 gives exactly K members.
        n_series: with 2 or more, a panel of that many monthly series (long format, ids
            ``S00``, ``S01``, ...; lengths ``n_points`` less 0-11 points, scales 1 to 1000),
            loaded as ``tunecast search --id-column unique_id`` loads it.
        combine: a completed single-series search also writes ``combined/`` as a search does by
            default (the networks, the ensemble's or else the best trial's, with AutoETS and
            AutoARIMA really fitted on the training part: a few seconds) and the selection
            ``search.forecasting.select`` makes from the validation losses. Without it, the
            experiment is one written before the combination and the selection existed (no
            ``combined/``, no ``selection`` in tunecast.json).

    The synthetic val_loss is lowest near lr = 3e-3 (and for mid-sized hidden layers); trials
    stopped by ASHA ran GRACE or 3 * GRACE epochs and are worse; failed trials reported 0-2
    epochs. The models are seeded but untrained: their forecasts and attention are real
    outputs of the network, not good ones.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if statuses is None:
        statuses = [_default_status(i) for i in range(n_trials)]
    assert len(statuses) == n_trials, "one status per trial"
    with _one_torch_thread():
        _write(path, n_trials, horizon, name, target, run_status, statuses, error_message,
               n_points, n_nodes, max_concurrent, seed, ensemble, n_series, combine)
    return path


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks: one thread is fastest, and stays fast on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _write(
    path: Path, n_trials: int, horizon: int, name: str, target: str, run_status: str,
    statuses: Sequence[str], error_message: str, n_points: int, n_nodes: int,
    max_concurrent: int, seed: int, ensemble: int, n_series: int, combine: bool,
) -> None:
    """What ``search.run.execute`` writes, from made-up trial records."""
    rng = np.random.default_rng(seed)
    data: Dataset | Panel = (_write_panel(data_file(path), rng, target, n_points, n_series) if n_series >= 2
                             else _write_series(data_file(path), rng, target, n_points))
    space = adapt_to_series({**SPACE, "horizon": Param("fixed", value=horizon)},
                            int(np.min(data.n_train)), horizon)
    configs = [_sample_config(rng, space, seed) for _ in range(n_trials)]
    records = _trial_records(rng, configs, statuses, error_message, n_nodes, max_concurrent)
    for i, record in enumerate(records):
        if record.status in c.FINISHED:
            record.checkpoint_dir = _save_model(models_folder(path) / record.trial_id, record,
                                                data, seed * 100_003 + i)
    gpu_share = 0.5 if n_nodes > 1 else 0.0
    run = _run_record(path, data, space, name=name, n_trials=n_trials, n_nodes=n_nodes,
                      gpu_share=gpu_share, max_concurrent=max_concurrent, seed=seed,
                      ensemble=ensemble, combine=combine)
    write_json(path / c.RUN_FILE, run.to_dict())  # as a search does when it starts

    trials = write_tables(path, records, gpu_share)
    best = selection = None
    if run_status == "completed":
        order = ranked(trials, records)
        best = write_best(path, order[0], data) if order else None
        members = write_ensemble(path, ensemble_members(trials, records, ensemble), data) if ensemble >= 2 \
            else None
        if combine:
            combined = write_combined(path, best, members, data)
            shared = TrainConfig.from_dict(configs[0])  # horizon and max_val_windows are never tuned
            baselines = val_baselines(data, shared.horizon, shared.max_val_windows)
            selection = select(candidates_losses(best, members, combined, baselines)) if best else None
    write_importance(path, trials, space)
    ended = trials["end_time"].max(skipna=True) if len(trials) else None
    ended_at = None if run_status in ("running", "interrupted") else _time(
        (float(ended) if ended is not None and math.isfinite(ended) else T0) + 5.0)
    run = replace(run, status=run_status, ended_at=ended_at,
                  best_trial_id=best.trial_id if best is not None else None, selection=selection)
    write_json(path / c.RUN_FILE, run.to_dict())


def _default_status(i: int) -> str:
    if i % 5 == 3:
        return "failed"
    return "stopped" if i % 3 == 2 else "completed"


def _time(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(seconds), tz=dt.timezone.utc)


def _write_series(file: Path, rng: np.random.Generator, target: str, n_points: int) -> Dataset:
    """A monthly series (trend + season of 12 + noise) as a CSV, loaded as a search loads it."""
    t = np.arange(n_points)
    y = 100 + 0.8 * t + 25 * np.sin(2 * np.pi * t / SEASON) + 3 * rng.standard_normal(n_points)
    months = pd.period_range("1949-01", periods=n_points, freq="M").astype(str)
    pd.DataFrame({"month": months, target: y}).to_csv(file, index=False)
    return load(DataSpec(source=str(file), target=target, time_column="month", season_length=SEASON))


def _write_panel(file: Path, rng: np.random.Generator, target: str, n_points: int,
                 n_series: int) -> Panel:
    """``n_series`` monthly series of different lengths and scales in long format, rows shuffled."""
    parts = []
    for s in range(n_series):
        n = n_points - s % SEASON
        t = np.arange(n)
        scale = 10.0 ** (s % 4)
        y = scale * (100 + 0.8 * t + 25 * np.sin(2 * np.pi * (t + s) / SEASON) + 3 * rng.standard_normal(n))
        months = pd.period_range("1949-01", periods=n, freq="M").astype(str)
        parts.append(pd.DataFrame({"unique_id": f"S{s:02d}", "month": months, target: y}))
    pd.concat(parts).sample(frac=1.0, random_state=0).to_csv(file, index=False)
    return load_panel(PanelSpec(source=str(file), target=target, time_column="month",
                                season_length=SEASON, id_column="unique_id"))


def _sample(rng: np.random.Generator, param: Param) -> Any:
    if param.type == "fixed":
        return param.value
    if param.type == "categorical":
        return param.choices[int(rng.integers(len(param.choices)))]
    low, high = float(param.low or 0.0), float(param.high or 0.0)
    if param.type == "int":
        if param.log:
            return round(math.exp(rng.uniform(math.log(low), math.log(high))))
        return int(rng.integers(int(low), int(high) + 1))
    if param.log:
        return float(10 ** rng.uniform(math.log10(low), math.log10(high)))
    return round(float(rng.uniform(low, high)), 4)


def _sample_config(rng: np.random.Generator, space: dict[str, Param], seed: int) -> dict[str, Any]:
    """A full TrainConfig dict, as ``SearchPlan.train_config`` makes it from Tune's params (every
    trial has the search's seed)."""
    params = {name: _sample(rng, param) for name, param in space.items()}
    return TrainConfig(**params, batch_size=BATCH_SIZE, max_epochs=MAX_EPOCHS, patience=PATIENCE,
                       seed=seed).to_dict()


def _trial_records(
    rng: np.random.Generator,
    configs: list[dict[str, Any]],
    statuses: Sequence[str],
    error_message: str,
    n_nodes: int,
    max_concurrent: int,
) -> list[TrialRecord]:
    """What Ray Tune's results turn into (``search.results.trial_records``), without models."""
    slot_free = [T0 + 2.0] * max_concurrent
    records = []
    for i, (config, status) in enumerate(zip(configs, statuses, strict=True)):
        # Lowest near lr = 3e-3 and for mid-sized hidden layers; stopped trials are worse.
        final = BASE_LOSS * (1 + 0.25 * math.log10(config["lr"] / 3e-3) ** 2
                             + 0.02 * abs(math.log2(config["hidden_size"] / 48))
                             + 0.02 * rng.random())
        if status == "stopped":
            final *= 1.2
        n_epochs = {"completed": int(rng.integers(18, MAX_EPOCHS + 1)),
                    "stopped": int(rng.choice([GRACE, 3 * GRACE])),
                    "failed": int(rng.integers(0, 3)),
                    "running": int(rng.integers(1, 6))}.get(status, 0)
        slot = int(np.argmin(slot_free))
        start = slot_free[slot] + float(rng.uniform(0.1, 1.0))
        epoch_time = float(rng.uniform(0.4, 1.6)) * (1 + config["hidden_size"] / 128)
        epochs = np.arange(1, n_epochs + 1)
        losses = final * (1 + 3 * np.exp(-epochs / 4.0)) * (1 + 0.02 * rng.standard_normal(n_epochs))
        stamps = start + epoch_time * epochs
        if status != "pending":
            slot_free[slot] = float(stamps[-1]) if n_epochs else start + 0.5
        node = slot % n_nodes
        history = pd.DataFrame({
            "epoch": epochs,
            "train_loss": 0.8 * losses,
            "val_loss": losses,
            "best_val_loss": np.minimum.accumulate(losses),
            "last_epoch": (epochs == n_epochs) & (status == "completed"),
            "node_id": f"node{node:02d}" + "ab" * 10,
            "node_ip": f"10.0.0.{node + 1}",
            "device": "cuda:0" if n_nodes > 1 else "cpu",
            "gpu_share": 0.5 if n_nodes > 1 else 0.0,
            "trial_start": start,
            "wall_time": stamps,
            "resumed_from_epoch": 0,
        })
        history["last_epoch"] = history["last_epoch"].astype(int)
        records.append(TrialRecord(
            trial_id=f"t{i:04d}",
            status=status,
            config={} if status == "pending" else config,
            history=history,
            error=error_message if status == "failed" else "",
            checkpoint_dir=None,
        ))
    return records


def _save_model(folder: Path, record: TrialRecord, data: Dataset | Panel, seed: int) -> Path:
    """The trial's best checkpoint: seeded, untrained weights, labelled with its best epoch."""
    config = TrainConfig.from_dict(record.config)
    val = record.history["val_loss"]
    best = int(val.idxmin())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config, data.input_size)
    epoch, val_loss = int(record.history["epoch"].iloc[best]), float(val.iloc[best])
    info = (checkpoint.ModelInfo.of(config, data, epoch=epoch, val_loss=val_loss) if isinstance(data, Panel)
            else checkpoint.ModelInfo(config=config, input_size=data.input_size, columns=data.columns,
                                      epoch=epoch, val_loss=val_loss))
    return checkpoint.save(folder, model, info)


def _run_record(
    path: Path,
    data: Dataset | Panel,
    space: dict[str, Param],
    *,
    name: str,
    n_trials: int,
    n_nodes: int,
    gpu_share: float,
    max_concurrent: int,
    seed: int,
    ensemble: int,
    combine: bool,
) -> RunRecord:
    """tunecast.json as a search writes it when it starts (status "running")."""
    config = SearchConfig(
        data=data.spec, storage=str(path.parent), trials=n_trials, gpus_per_trial=gpu_share,
        max_concurrent=max_concurrent, scheduler="asha", max_epochs=MAX_EPOCHS,
        grace_period=GRACE, seed=seed, ensemble=ensemble, combine=combine,
        train={"batch_size": BATCH_SIZE, "patience": PATIENCE},
        space=dict(space), verbose=0,
    ).to_dict()
    config["name"] = name  # any text here; SearchConfig itself wants a plain folder name
    nodes = [{"node_id": f"node{k:02d}" + "ab" * 10, "node_ip": f"10.0.0.{k + 1}", "cpus": 2,
              "gpus": int(n_nodes > 1)} for k in range(n_nodes)]
    return RunRecord(
        name=name,
        status="running",
        config=config,
        space=describe(space),
        data=data.summary(),
        started_at=_time(T0),
        max_concurrent=max_concurrent,
        versions=dict(VERSIONS),
        cluster={"address": "local" if n_nodes == 1 else "ray://head:10001",
                 "total_cpus": 2 * n_nodes, "total_gpus": n_nodes if n_nodes > 1 else 0,
                 "nodes": nodes},
        host="synthetic-host",
        command=("tunecast", "search", "--trials", str(n_trials)),
    )
