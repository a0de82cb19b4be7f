"""Earlier validation origins for the candidates of a short series.

On a short series the validation part is one block of a few points (airline with a 12-month
test and validation block: one 12-step window), and that one block decides between the best
trial, the ensemble and the baselines. A network that happened to fit that block can then lose
to "repeat last year" on test. So when the validation part is short, the search also scores the
candidates at ``ORIGINS`` earlier origins, rolling back by one validation length each time: the
split moved back (train ends earlier, validation is the next ``n_val`` points, all before the
search's own validation part, never touching test), each candidate's configuration trained
again on that shorter training part with the same early stopping, and its forecast scored with
``val_loss``'s loss. The ensemble is the mean of its members' forecasts; naive and
seasonal-naive are scored on the same windows. :func:`search.forecasting.select` then chooses
by the mean loss over every origin.

The test part is never used; the trials themselves and ``best/``/``ensemble/`` are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from model.data import Dataset, _statistics
from model.evaluate import val_baselines, val_forecast
from model.metrics import mae
from model.training import TrainConfig, fit
from search.space import MIN_TRAIN_WINDOWS

ORIGINS = 2  # earlier validation origins scored beside the search's own
SHORT_VAL_POINTS = 30  # a validation part of fewer points (or fewer than 3 horizons) is short


def is_short(data: Dataset, horizon: int) -> bool:
    """Whether one validation block is too little to decide on: fewer than
    ``SHORT_VAL_POINTS`` validation points, or fewer than three horizons of them."""
    return data.n_val < max(SHORT_VAL_POINTS, 3 * horizon)


def earlier_split(data: Dataset, back: int) -> Dataset:
    """The series split ``back`` validation lengths earlier: training ends ``back * n_val``
    points sooner, validation is the ``n_val`` points after it; scaling from that training part."""
    n_train = data.n_train - back * data.n_val
    mean, std = _statistics(data.values[:n_train].astype(np.float64))
    return replace(data, n_train=n_train, n_test=data.n_test + back * data.n_val, mean=mean, std=std)


def origins(data: Dataset, configs: Sequence[TrainConfig]) -> list[Dataset]:
    """The earlier splits every configuration can train on (at most ``ORIGINS``)."""
    splits = []
    for back in range(1, ORIGINS + 1):
        split = earlier_split(data, back)
        if any(split.n_train - c.window - c.horizon + 1 < MIN_TRAIN_WINDOWS for c in configs):
            break  # as the search's window rule: enough training windows for every candidate
        splits.append(split)
    return splits


def backtest(
    data: Dataset,
    members: dict[str, TrainConfig],
    best: str,
    on_fit: Callable[[str, int], None] | None = None,
) -> dict[str, list[float | None]]:
    """Each candidate's validation loss at the earlier origins: ``best`` (a trial id of
    ``members``), ``ensemble`` (the mean of every member's forecast; only with two or more
    members), ``naive`` and ``seasonal_naive``. Empty when no earlier origin fits."""
    configs = list(members.values())
    splits = origins(data, configs)
    losses: dict[str, list[float | None]] = {"best": [], "naive": [], "seasonal_naive": []}
    if len(members) > 1:
        losses["ensemble"] = []
    horizon, limit = configs[0].horizon, configs[0].max_val_windows
    for back, split in enumerate(splits, start=1):
        forecasts = {}
        for trial_id, config in members.items():
            if on_fit is not None:
                on_fit(trial_id, back)
            model = fit(config, split).model
            forecasts[trial_id] = val_forecast(model, split, config)  # (prediction, target), scaled
        target = forecasts[best][1]
        losses["best"].append(mae(target, forecasts[best][0]))
        if "ensemble" in losses:
            losses["ensemble"].append(mae(target, np.mean([p for p, _ in forecasts.values()], axis=0)))
        for name, loss in val_baselines(split, horizon, limit).items():
            losses[name].append(loss)
    return losses if splits else {}
