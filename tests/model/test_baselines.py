"""The baselines the search selects against: their validation loss is measured exactly as a
trial's (the same loss, the same validation windows), and they forecast past the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunecast.model import forecast
from tunecast.model.data import DataSpec, load
from tunecast.model.evaluate import val_baselines
from tunecast.model.forecast import BaselineForecaster
from tunecast.model.training import TrainConfig, mean_loss
from tunecast.model.windows import split_windows


@pytest.mark.parametrize(("window", "horizon"), [(24, 1), (7, 3)])
def test_naive_val_loss_is_the_trials_loss_on_the_trials_windows(window, horizon):
    """Whatever a trial's window, its validation windows have the same targets: the naive
    forecast of each (the window's last target value), scored by the function that scores a
    trial's val_loss (``mean_loss``), is the baseline's loss."""
    data = load(DataSpec(source="airline"))
    val = split_windows(data, window, horizon)["val"]

    class Naive(torch.nn.Module):
        def forward(self, x):  # (B, T, F) -> the last target value for every step, no attention
            return x[:, -1:, 0].expand(-1, horizon), None

    expected = mean_loss(Naive(), val)
    losses = val_baselines(data, horizon, TrainConfig.max_val_windows)
    assert losses["naive"] == pytest.approx(expected, rel=1e-6)


def test_seasonal_naive_is_exact_on_a_pure_season_and_naive_is_not(tmp_path):
    t = np.arange(240)
    pd.DataFrame({"y": np.sin(2 * np.pi * t / 12)}).to_csv(tmp_path / "season.csv", index=False)
    data = load(DataSpec(source=str(tmp_path / "season.csv"), season_length=12))
    losses = val_baselines(data, 1, TrainConfig.max_val_windows)
    assert losses["seasonal_naive"] == pytest.approx(0.0, abs=1e-10)
    assert losses["naive"] is not None and losses["naive"] > 0.01


def test_thinned_like_training_on_long_series():
    data = load(DataSpec(source="sine"))
    full = val_baselines(data, 1, 10_000)["naive"]
    thinned = val_baselines(data, 1, 10)["naive"]  # every k-th window, as fit() thins them
    assert full is not None and thinned is not None and thinned != full


def test_a_baseline_forecaster_repeats_the_last_value_or_season_and_loads_back(tmp_path):
    values = np.arange(30, dtype=float)[:, None]  # 0..29
    naive = BaselineForecaster("naive", 1, ("y",))
    seasonal = BaselineForecaster("seasonal_naive", 4, ("y",))
    assert naive.paths(values, np.array([30]), 3).tolist() == [[29, 29, 29]]
    assert seasonal.paths(values, np.array([30]), 6).tolist() == [[26, 27, 28, 29, 26, 27]]
    errors, _ = seasonal.held_out_scores(values, 10, 2)
    folder = tmp_path / "f"
    folder.mkdir()
    BaselineForecaster("seasonal_naive", 4, ("y",), errors, {"chosen": "seasonal_naive"}).save(folder)
    loaded = forecast.load(folder)
    assert isinstance(loaded, BaselineForecaster) and loaded.kind == "seasonal_naive"
    prediction = loaded.predict(values, 2)
    assert prediction.mean.tolist() == [26, 27]
    assert (prediction.lower[95] <= prediction.mean).all() and (prediction.upper[95] >= prediction.mean).all()
