"""Earlier validation origins: the split moved back never reaches the test part, each candidate
is retrained and scored there with val_loss's loss, and the choice is the lowest mean over every
origin; a real search does it on every single series, its fits on Ray."""

from __future__ import annotations

import numpy as np
import pytest
from statsforecast.models import AutoARIMA, AutoETS

from tunecast.expdir import contract as c
from tunecast.expdir.contract import SelectionRecord
from tunecast.model.data import DataSpec, load
from tunecast.model.evaluate import val_baselines, val_positions
from tunecast.model.training import TrainConfig
from tunecast.search import backtest
from tunecast.search.selection import select

SMALL = TrainConfig(hidden_size=8, window=12, horizon=12, batch_size=16, max_epochs=3, patience=3)


@pytest.fixture(scope="module")
def airline12():
    """The short case: airline with a 12-month test and a 12-month validation block."""
    return load(DataSpec("airline", val_fraction=0.0834, test_fraction=0.0834))


def test_earlier_origins_roll_back_by_one_validation_length_and_never_touch_test(airline12):
    data = airline12
    splits = backtest.origins(data, [SMALL])
    assert len(splits) == backtest.ORIGINS
    n_pre = data.n_train + data.n_val
    for back, split in enumerate(splits, start=1):
        assert split.n_val == data.n_val and split.n_train == data.n_train - back * data.n_val
        assert split.n_train + split.n_val <= n_pre - (back - 1) * data.n_val <= n_pre  # before test
        train = data.values[: split.n_train, 0].astype(np.float64)
        assert float(split.mean[0]) == pytest.approx(train.mean())  # scaled by its own training part


def test_origins_stop_where_a_window_no_longer_fits(airline12):
    # 108 training points one block back, 96 two back; every candidate needs 16 training windows
    wide = TrainConfig(window=75, horizon=12)  # 22 windows one block back, 10 two back
    assert len(backtest.origins(airline12, [SMALL, wide])) == 1
    assert backtest.backtest(airline12, {"a": TrainConfig(window=90, horizon=12)}, "a") == {}


def test_origins_asks_for_as_many_origins_as_fit(airline12):
    """--origins N: up to N splits, each one validation length further back (72 training points
    four back: 49 windows of SMALL); 0: none, the search's own block alone."""
    splits = backtest.origins(airline12, [SMALL], 4)
    assert [s.n_train for s in splits] == [airline12.n_train - back * 12 for back in (1, 2, 3, 4)]
    assert backtest.origins(airline12, [SMALL], 0) == []
    assert backtest.backtest(airline12, {"a": SMALL}, "a", most=0) == {}


def test_backtest_scores_every_candidate_at_every_origin(airline12):
    members = {"a": SMALL, "b": TrainConfig(**{**SMALL.to_dict(), "seed": 1, "scaler": "window"})}
    jobs: list[tuple[TrainConfig, object]] = []

    def fit_all(given):  # what the search's Ray version receives; trained here the same way
        jobs.extend(given)
        return backtest.fit_each(given)

    losses = backtest.backtest(airline12, members, "a", fit_all)
    assert [config for config, _ in jobs] == [SMALL, members["b"]] * backtest.ORIGINS
    assert [split.n_train for _, split in jobs] == [airline12.n_train - back * airline12.n_val
                                                    for back in (1, 1, 2, 2)]
    assert backtest.backtest(airline12, members, "a") == losses  # the default trains them in turn
    assert set(losses) == {"best", "ensemble", "naive", "seasonal_naive"}
    assert all(len(v) == backtest.ORIGINS for v in losses.values())
    for back, split in enumerate(backtest.origins(airline12, list(members.values())), start=1):
        baselines = val_baselines(split, 12, SMALL.max_val_windows)
        assert losses["naive"][back - 1] == pytest.approx(baselines["naive"])
        assert losses["seasonal_naive"][back - 1] == pytest.approx(baselines["seasonal_naive"])
    assert all(v is not None and v > 0 for v in losses["best"] + losses["ensemble"])


def test_the_combination_is_scored_at_every_origin_with_statistical_models_fitted_there(airline12):
    """At each earlier origin: the ensemble's forecast and AutoETS's and AutoARIMA's, fitted on
    that origin's training part only, each a third; the networks' losses are unchanged."""
    members = {"a": SMALL, "b": TrainConfig(**{**SMALL.to_dict(), "seed": 1})}
    forecasts: list[tuple[np.ndarray, np.ndarray]] = []

    def fit_all(given):
        forecasts.extend(backtest.fit_each(given))
        return forecasts[-len(given):]

    losses = backtest.backtest(airline12, members, "a", fit_all, combined=True)
    assert set(losses) == {"best", "ensemble", "combined", "naive", "seasonal_naive"}
    y = airline12.values[:, 0].astype(np.float64)
    for back, split in enumerate(backtest.origins(airline12, list(members.values())), start=1):
        (pa, target), (pb, _) = forecasts[2 * (back - 1): 2 * back]
        positions = val_positions(split, 12, SMALL.max_val_windows)
        mean, std = float(split.mean[0]), float(split.std[0])
        assert np.allclose((y[positions] - mean) / std, target, atol=1e-5)  # the same windows
        stats = []
        for model in (AutoETS(season_length=12), AutoARIMA(season_length=12)):
            model.fit(y[: split.n_train])  # never a point of that origin's validation part
            stats.append([model.forward(y[:o], h=12)["mean"] for o in positions[:, 0]])
        ets, arima = ((np.array(s) - mean) / std for s in stats)
        combined = ((pa + pb) / 2 + ets + arima) / 3
        assert losses["combined"][back - 1] == pytest.approx(float(np.mean(np.abs(combined - target))),
                                                             rel=1e-6)
        assert losses["ensemble"][back - 1] == pytest.approx(float(np.mean(np.abs((pa + pb) / 2 - target))))


def test_the_choice_is_the_lowest_mean_over_every_origin():
    """Best wins on the search's own block by luck; over three origins seasonal-naive is better."""
    val_loss = {"best": 0.10, "ensemble": None, "combined": None, "naive": 0.9, "seasonal_naive": 0.20}
    earlier = {"best": [0.6, 0.5], "naive": [0.8, 0.9], "seasonal_naive": [0.25, 0.3]}
    record = select(val_loss, earlier)
    assert record.score == pytest.approx({"best": 0.4, "naive": 0.8666667, "seasonal_naive": 0.25})
    assert record.chosen == "seasonal_naive" and record.origins == 3
    assert SelectionRecord.from_dict(record.to_dict()) == record
    assert record.to_dict()["score"] == record.score
    # an origin where a candidate has no loss (a season longer than its history) is left out for all
    partial = select(val_loss, {**earlier, "seasonal_naive": [None, 0.3]})
    assert partial.score == pytest.approx({"best": 0.3, "naive": 0.9, "seasonal_naive": 0.25})
    # the combination missing at an origin (its models did not fit there) leaves the comparison,
    # not the origin: best and the baselines are still judged over all three
    combined = select({**val_loss, "combined": 0.05}, {**earlier, "combined": [0.1, None]})
    assert combined.score == pytest.approx(record.score) and combined.origins == 3
    complete = select({**val_loss, "combined": 0.05}, {**earlier, "combined": [0.1, 0.15]})
    assert complete.score["combined"] == pytest.approx(0.1) and complete.chosen == "combined"


def test_beside_an_ensemble_the_best_trial_is_not_compared():
    """The best trial's loss on the search's own block is the lowest of many there: beside an
    ensemble it is recorded, not compared; without one it is a candidate. A record written
    before (format 1: no ``compared``) compared every candidate, as its choice was made."""
    from tunecast.expdir.contract import migrate

    val_loss = {"best": 0.10, "ensemble": 0.12, "combined": None, "naive": 0.9, "seasonal_naive": 0.2}
    earlier = {"best": [0.3, 0.3], "ensemble": [0.2, 0.25], "naive": [0.8, 0.9],
               "seasonal_naive": [0.25, 0.3]}
    record = select(val_loss, earlier)
    assert record.chosen == "ensemble" and "best" not in record.score
    assert record.val_loss["best"] == 0.10 and record.earlier["best"] == [0.3, 0.3]  # still recorded
    raw = record.to_dict()
    assert raw["compared"] == ["ensemble", "combined", "naive", "seasonal_naive"]
    assert SelectionRecord.from_dict(raw) == record
    # best lower than the ensemble everywhere: still the ensemble; worse than seasonal-naive: that
    lucky = select({**val_loss, "seasonal_naive": 0.11},
                   {**earlier, "best": [0.1, 0.1], "seasonal_naive": [0.15, 0.2]})
    assert lucky.chosen == "seasonal_naive"
    alone = select({**val_loss, "ensemble": None}, {k: v for k, v in earlier.items() if k != "ensemble"})
    assert alone.chosen == "best" and "best" in alone.score
    # format 1 stored no compared, and a score only beside earlier origins
    old = {k: v for k, v in raw.items() if k not in ("compared", "score", "origins", "earlier_origins")}
    old_record = SelectionRecord.from_dict(migrate({"selection": {**old, "chosen": "best"}})["selection"])
    assert old_record is not None and old_record.compared == c.CHOICES and "best" in old_record.score
    assert old_record.origins == 1 and min(old_record.score, key=old_record.score.__getitem__) == "best"


@pytest.mark.slow
def test_a_search_chooses_over_every_origin_on_a_long_series_too(tmp_path):
    """The real CLI on co2 (one step ahead, 70 validation points: not a short series) with
    ``--origins 1``: tunecast.json records each candidate's loss at that one earlier origin,
    fitted on Ray, and the choice is the lowest mean; the CLI says what it scores before it
    retrains the candidates."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "search", "--data", "co2", "--trials", "2", "--max-epochs", "2",
         "--storage", str(tmp_path), "--name", "long", "--no-report", "--no-forecast", "--origins", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    raw = json.loads((tmp_path / "long" / "tunecast.json").read_text())
    assert raw["data"]["n_val"] >= 30
    record = SelectionRecord.from_dict(raw["selection"])
    assert record is not None and record.origins == 2 and raw["config"]["origins"] == 1
    assert set(raw["selection"]["earlier_origins"]) >= {"best", "naive", "seasonal_naive"}
    assert all(len(v) == 1 for v in raw["selection"]["earlier_origins"].values())
    assert record.chosen == min(record.score, key=record.score.__getitem__)
    assert f"mean val_loss over {record.origins} validation origins" in done.stdout
    assert "at up to 1 earlier validation origins" in done.stdout  # said before it retrains them


@pytest.mark.slow
def test_the_fits_on_ray_are_the_fits_here_in_the_same_order(airline12):
    """What the search runs as Ray tasks (a trial's CPU, one thread, on the CPU) gives each
    (configuration, split) the very forecast a fit here gives, in the order asked."""
    import ray
    import torch

    from tunecast.search.config import SearchConfig
    from tunecast.search.run import fits_on_ray

    configs = [SMALL, TrainConfig(**{**SMALL.to_dict(), "seed": 1, "scaler": "window"})]
    jobs = [(config, split) for split in backtest.origins(airline12, configs) for config in configs]
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="error")
    try:
        remote = fits_on_ray(SearchConfig())(jobs)
    finally:
        ray.shutdown()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = backtest.fit_each(jobs, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert len(remote) == len(here) == 2 * backtest.ORIGINS
    for (prediction, target), (expected, truth) in zip(remote, here, strict=True):
        np.testing.assert_array_equal(prediction, expected)
        np.testing.assert_array_equal(target, truth)
    assert not np.array_equal(remote[0][0], remote[1][0])  # two different networks: a swap would show
