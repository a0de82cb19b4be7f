"""The default search space as a plan resolves it for a series: the window range reaches two
seasons (clipped to what the training part allows) and the training loss is a choice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunecast.model.data import load
from tunecast.model.training import LOSSES
from tunecast.search.config import build_config
from tunecast.search.plan import search_space
from tunecast.search.space import max_window


def plan_space(csv, season_length: int, **space):
    config = build_config({"space": space}, {"source": str(csv), "season_length": season_length}, {})
    return search_space(config, load(config.data))


def weekly_csv(tmp_path, n: int):
    t = np.arange(n)
    values = 10 + np.sin(2 * np.pi * t / 52) + 0.1 * np.random.default_rng(0).standard_normal(n)
    pd.DataFrame({"y": values}).to_csv(tmp_path / "weekly.csv", index=False)
    return tmp_path / "weekly.csv"


def test_the_window_range_reaches_two_seasons(tmp_path):
    space = plan_space(weekly_csv(tmp_path, 1000), 52)
    assert (space["window"].low, space["window"].high) == (8, 104)
    assert space["loss"].choices == LOSSES


def test_two_seasons_are_clipped_to_what_a_short_series_allows(tmp_path):
    csv = weekly_csv(tmp_path, 300)
    space = plan_space(csv, 52)
    n_train = load(build_config({}, {"source": str(csv), "season_length": 52}, {}).data).n_train
    assert space["window"].high == max_window(n_train, 1) < 104


def test_short_seasons_keep_the_default_range(tmp_path):
    assert plan_space(weekly_csv(tmp_path, 1000), 12)["window"].high == 64
