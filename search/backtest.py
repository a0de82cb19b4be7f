"""Earlier validation origins for the candidates, on every single series.

The best trial's loss on the search's own validation block is optimistic (the lowest of many),
so the candidates are also scored at up to ``--origins`` earlier origins, each rolled back one
validation length (never touching test): every configuration is retrained on the shorter
training part and scored with ``val_loss``'s loss; the ensemble averages its members, the
combination adds AutoETS and AutoARIMA fitted there, and the baselines use the same windows.
:func:`search.forecasting.select` chooses by the mean over all origins (see
benchmarks/RESULTS.md, section 1). ``fit_all`` may run the fits side by side (Ray tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from tunecast.model.data import Dataset, train_statistics
from tunecast.model.evaluate import val_baselines, val_forecast, val_positions
from tunecast.model.metrics import mae
from tunecast.model.statistical import Statistical, StatisticalError
from tunecast.model.training import TrainConfig, fit
from tunecast.search.config import DEFAULT_ORIGINS
from tunecast.search.space import MIN_TRAIN_WINDOWS

ORIGINS = DEFAULT_ORIGINS  # earlier validation origins scored beside the search's own (--origins)

# [(configuration, split)] -> each one's validation (prediction, target), [K, H] scaled units
FitAll = Callable[[list[tuple[TrainConfig, Dataset]]], list[tuple[np.ndarray, np.ndarray]]]


def earlier_split(data: Dataset, back: int) -> Dataset:
    """The series split ``back`` validation lengths earlier, scaled by that training part."""
    n_train = data.n_train - back * data.n_val
    mean, std = train_statistics(data.values[:n_train].astype(np.float64))
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
    """The combination's validation loss on ``split`` (scaled units) from ``networks``'
    validation forecast ``[K, H]`` and ``statistical``'s.

    Raises:
        StatisticalError: the statistical models cannot forecast.
    """
    positions = val_positions(split, horizon, limit)
    paths = statistical.paths(split.values[:, 0], positions[:, 0], horizon)
    return mae(target, statistical.combine(networks, (paths - float(split.mean[0])) / float(split.std[0])))


def _combined_loss(split: Dataset, networks: np.ndarray, target: np.ndarray, horizon: int,
                   limit: int) -> float | None:
    """The combination's loss at an earlier origin (models fitted there); None if they fail."""
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
    """Each candidate's validation loss at up to ``most`` earlier origins: ``best`` (a trial id
    of ``members``), ``ensemble`` (two or more members), ``combined`` (if asked), ``naive`` and
    ``seasonal_naive``. Empty when no earlier origin fits. ``fit_all`` defaults to
    :func:`fit_each`."""
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
