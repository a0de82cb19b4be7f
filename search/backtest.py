"""Earlier validation origins for the candidates, on every single series.

The search's own validation block cannot judge its own winners fairly: the best trial is the
lowest of many validation losses on that block, each at the epoch where it was lowest, so its
loss there is optimistic, and more so than the ensemble's (a mean of several) or the baselines'
(which chose nothing). On a short series one block decides everything (airline with a 12-month
test and validation block: one 12-step window), and a network that happened to fit it can then
lose to "repeat last year" on test. So the search also scores the candidates at ``--origins``
(default ``ORIGINS``) earlier origins, rolling back by one validation length each time: the split
moved back (train ends earlier, validation is the next ``n_val`` points, all before the search's
own validation part, never touching test), each candidate's configuration trained again on that shorter
training part with the same early stopping, and its forecast scored with ``val_loss``'s loss.
The ensemble is the mean of its members' forecasts; the combination adds AutoETS and AutoARIMA
fitted on that origin's training part; naive and seasonal-naive are scored on the same windows.
:func:`search.forecasting.select` then chooses by the mean loss over every origin.

This used to be done on short series only; on the accuracy suite's stored searches it changes
the choice on longer series too (benchmarks/RESULTS.md, section 1).

The test part is never used; the trials themselves and ``best/``/``ensemble/`` are unchanged.
The fits are independent: :func:`backtest` takes a ``fit_all`` that runs them side by side (the
search passes one that runs them as Ray tasks, each with a trial's CPUs and GPU share).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from model.data import Dataset, _statistics
from model.evaluate import val_baselines, val_forecast, val_positions
from model.metrics import mae
from model.statistical import Statistical, StatisticalError
from model.training import TrainConfig, fit
from search.config import DEFAULT_ORIGINS
from search.space import MIN_TRAIN_WINDOWS

ORIGINS = DEFAULT_ORIGINS  # earlier validation origins scored beside the search's own (--origins)

# the candidates' fits: [(configuration, split)] -> each one's validation forecast (prediction,
# target), [K, H] in the split's scaled units
FitAll = Callable[[list[tuple[TrainConfig, Dataset]]], list[tuple[np.ndarray, np.ndarray]]]


def earlier_split(data: Dataset, back: int) -> Dataset:
    """The series split ``back`` validation lengths earlier: training ends ``back * n_val``
    points sooner, validation is the ``n_val`` points after it; scaling from that training part."""
    n_train = data.n_train - back * data.n_val
    mean, std = _statistics(data.values[:n_train].astype(np.float64))
    return replace(data, n_train=n_train, n_test=data.n_test + back * data.n_val, mean=mean, std=std)


def origins(data: Dataset, configs: Sequence[TrainConfig], most: int = ORIGINS) -> list[Dataset]:
    """The earlier splits every configuration can train on (at most ``most``)."""
    splits = []
    for back in range(1, most + 1):
        split = earlier_split(data, back)
        if any(split.n_train - c.window - c.horizon + 1 < MIN_TRAIN_WINDOWS for c in configs):
            break  # as the search's window rule: enough training windows for every candidate
        splits.append(split)
    return splits


def fit_each(jobs: list[tuple[TrainConfig, Dataset]],
             device: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train every (configuration, split) here, in turn; its validation forecast and target."""
    return [val_forecast(fit(config, split, device=device).model, split, config) for config, split in jobs]


def combined_val_loss(statistical: Statistical, split: Dataset, networks: np.ndarray, target: np.ndarray,
                      horizon: int, limit: int) -> float:
    """The combination's validation loss on ``split`` (val_loss's loss, in the split's scaled
    units): ``networks``' validation forecast ``[K, H]`` (scaled) with ``statistical``'s from the
    same windows. Raises :class:`StatisticalError` where the statistical models cannot forecast."""
    positions = val_positions(split, horizon, limit)
    paths = statistical.paths(split.values[:, 0], positions[:, 0], horizon)
    return mae(target, statistical.combine(networks, (paths - float(split.mean[0])) / float(split.std[0])))


def _combined_loss(split: Dataset, networks: np.ndarray, target: np.ndarray, horizon: int,
                   limit: int) -> float | None:
    """The combination's validation loss at an earlier origin, its statistical models fitted on
    that origin's training part; None where neither fits or forecasts."""
    try:
        statistical = Statistical(split.values[:, 0], split.n_train, split.season_length)
        return combined_val_loss(statistical, split, networks, target, horizon, limit)
    except StatisticalError:
        return None


def backtest(
    data: Dataset,
    members: dict[str, TrainConfig],
    best: str,
    fit_all: FitAll | None = None,
    combined: bool = False,
    most: int = ORIGINS,
) -> dict[str, list[float | None]]:
    """Each candidate's validation loss at the earlier origins: ``best`` (a trial id of
    ``members``), ``ensemble`` (the mean of every member's forecast; only with two or more
    members), with ``combined`` the combination of those networks (the ensemble, else the best)
    with AutoETS and AutoARIMA fitted on that origin's training part (None where neither fits),
    ``naive`` and ``seasonal_naive``, at up to ``most`` origins. Empty when no earlier origin
    fits. ``fit_all`` trains the candidates at every origin (default: :func:`fit_each`, one after
    the other)."""
    configs = list(members.values())
    splits = origins(data, configs, most)
    losses: dict[str, list[float | None]] = {"best": [], "naive": [], "seasonal_naive": []}
    if len(members) > 1:
        losses["ensemble"] = []
    if combined:
        losses["combined"] = []
    horizon, limit = configs[0].horizon, configs[0].max_val_windows
    jobs = [(config, split) for split in splits for config in members.values()]
    results = iter((fit_all or fit_each)(jobs))
    for split in splits:
        forecasts = {trial_id: next(results) for trial_id in members}  # (prediction, target), scaled
        target = forecasts[best][1]
        losses["best"].append(mae(target, forecasts[best][0]))
        networks = np.mean([p for p, _ in forecasts.values()], axis=0) if len(members) > 1 \
            else forecasts[best][0]
        if "ensemble" in losses:
            losses["ensemble"].append(mae(target, networks))
        if combined:
            losses["combined"].append(_combined_loss(split, networks, target, horizon, limit))
        for name, loss in val_baselines(split, horizon, limit).items():
            losses[name].append(loss)
    return losses if splits else {}
