"""Forecasts past the data: recursion, refit, timestamps, conformal intervals, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunecast.model import checkpoint, forecast
from tunecast.model.data import DataSpec, load
from tunecast.model.forecast import Forecaster, ForecastError, Member, future_times
from tunecast.model.training import TrainConfig, build_model, fit


def _linear_extrapolator(horizon: int, window: int = 8) -> Member:
    """A network whose forecast continues the last two inputs' line exactly: the LSTM head is
    zero and the highway weights give x[T-1] + h * (x[T-1] - x[T-2]) for step h."""
    config = TrainConfig(hidden_size=4, window=window, horizon=horizon, scaler="standard", highway=True)
    model = build_model(config, 1)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        assert model.highway is not None
        model.highway.weight.zero_()
        model.highway.bias.zero_()
        for h in range(1, horizon + 1):
            model.highway.weight[h - 1, -1] = 1 + h
            model.highway.weight[h - 1, -2] = -h
    info = checkpoint.ModelInfo(config, 1, ("y",), mean=(3.0,), std=(2.0,), trained_on=40)
    return Member(model.eval(), info)


def test_recursive_and_direct_agree_on_an_exactly_linear_series():
    values = (5.0 + 0.5 * np.arange(60.0))[:, None]  # (N, 1)
    truth = 5.0 + 0.5 * np.arange(60.0, 72.0)
    direct = Forecaster([_linear_extrapolator(horizon=12)]).predict(values, 12, levels=())
    recursive = Forecaster([_linear_extrapolator(horizon=1)]).predict(values, 12, levels=())
    three = Forecaster([_linear_extrapolator(horizon=3)]).predict(values, 12, levels=())  # 4 rounds of 3
    np.testing.assert_allclose(direct.mean, truth, rtol=1e-5)
    np.testing.assert_allclose(recursive.mean, truth, rtol=1e-5)
    np.testing.assert_allclose(three.mean, truth, rtol=1e-5)
    assert direct.times == list(range(60, 72))


def test_extra_features_beyond_the_horizon_need_their_future_values():
    member = _linear_extrapolator(horizon=1)
    config = member.config
    model = build_model(config, 2)
    info = checkpoint.ModelInfo(config, 2, ("y", "x"), mean=(0.0, 0.0), std=(1.0, 1.0), trained_on=40)
    two = Forecaster([Member(model.eval(), info)])
    values = np.random.default_rng(0).normal(size=(60, 2))
    with pytest.raises(ForecastError, match="future values"):
        two.predict(values, 3)
    assert len(two.predict(values, 3, future=np.zeros((3, 1))).mean) == 3
    assert len(two.predict(values, 1).mean) == 1  # within the horizon no future values are needed


def test_intervals_on_a_noisy_sine_cover_at_their_level():
    rng = np.random.default_rng(1)
    n, sigma = 1400, 0.2
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 25) + sigma * rng.standard_normal(n)
    frame = pd.DataFrame({"y": y})
    path = "noisy-sine.csv"
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / path, index=False)
        data = load(DataSpec(str(Path(tmp) / path), val_fraction=0.3, test_fraction=0.3))
    config = TrainConfig(hidden_size=16, window=25, horizon=1, max_epochs=12, lr=3e-3, batch_size=32)
    result = fit(config, data, device="cpu")
    member = Member(result.model, checkpoint.ModelInfo.of(config, data))
    f = Forecaster([member])
    split = data.n_train + data.n_val
    val_errors = f.held_out_errors(data.values, data.n_train, 3, end=split)  # calibrate on validation
    test_errors = f.held_out_errors(data.values, split, 3)  # check on test
    for level in (80.0, 95.0):
        width = forecast.conformal_quantiles(val_errors, level)
        assert np.all(np.diff(width) >= 0)  # non-decreasing in the step
        seen = np.isfinite(test_errors)
        coverage = float((test_errors <= width[None, :])[seen].mean())
        assert abs(coverage - level / 100) < 0.06, (level, coverage)
    one_step = forecast.conformal_quantiles(val_errors, 80.0)[0]
    assert 0.8 * 1.2816 * sigma < one_step < 1.6 * 1.2816 * sigma  # close to the noise's own quantile


def test_refit_trains_on_every_point_and_is_reproducible():
    data = load(DataSpec("airline"))
    config = TrainConfig(hidden_size=8, window=12, max_epochs=3, seed=4)
    result = fit(config, data, device="cpu")
    member = Member(result.model, checkpoint.ModelInfo.of(config, data, epoch=result.best_epoch))
    first, second = forecast.refit(member, data, epochs=3), forecast.refit(member, data, epochs=3)
    assert first.info.trained_on == data.n_points == 144 and first.info.epoch == 3
    np.testing.assert_allclose(first.info.mean[0], data.values[:, 0].mean(), rtol=1e-5)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                     result.model.state_dict().values(), strict=True))


def test_a_saved_forecaster_loads_back_to_identical_predictions(tmp_path):
    values = (5.0 + 0.5 * np.arange(60.0))[:, None] + np.random.default_rng(2).normal(size=(60, 1))
    members = [_linear_extrapolator(horizon=3), _linear_extrapolator(horizon=1, window=10)]
    f = Forecaster(members, np.abs(np.random.default_rng(3).normal(size=(20, 6))), {"chosen": "ensemble"})
    before = f.predict(values, 6)
    loaded = forecast.load(f.save(tmp_path / "forecast"))
    after = loaded.predict(values, 6)
    np.testing.assert_array_equal(after.mean, before.mean)
    for level in (80.0, 95.0):
        np.testing.assert_array_equal(after.lower[level], before.lower[level])
    assert loaded.meta == {"chosen": "ensemble"}
    assert forecast.load(tmp_path).predict(values, 6).mean.tolist() == before.mean.tolist()  # the parent


def test_a_plain_model_folder_is_a_forecaster_scored_after_its_training_part(tmp_path):
    member = _linear_extrapolator(horizon=2)
    checkpoint.save(tmp_path, member.model, member.info)
    values = (5.0 + 0.5 * np.arange(60.0))[:, None]
    prediction = forecast.load(tmp_path).predict(values, 2)
    for level in (80.0, 95.0):  # exact on a line: zero-width intervals
        np.testing.assert_allclose(prediction.upper[level] - prediction.lower[level], 0, atol=1e-4)


@pytest.mark.parametrize(("labels", "expected"), [
    (["1960-10", "1960-11", "1960-12"], ["1961-01", "1961-02"]),
    (["2020-01-30", "2020-01-31", "2020-02-01"], ["2020-02-02", "2020-02-03"]),
    (["1700", "1701", "1702"], [1703, 1704]),
    (["0", "5", "10"], [15, 20]),
])
def test_the_first_forecast_is_the_step_after_the_last_point(labels, expected):
    assert future_times(np.array(labels), len(labels), 2) == expected


def test_no_time_column_counts_on_from_the_last_position():
    assert future_times(None, 144, 3) == [144, 145, 146]


@pytest.mark.parametrize("labels", [["2020-01-01", "2020-01-02", "2020-01-05"], ["1", "2", "4"]])
def test_an_irregular_time_column_is_refused(labels):
    with pytest.raises(ForecastError, match=r"irregular|no regular frequency"):
        future_times(np.array(labels), 3, 2)


def test_forecasting_from_a_saved_folder_imports_neither_ray_nor_optuna(tmp_path):
    import subprocess
    import sys

    member = _linear_extrapolator(horizon=2)
    Forecaster([member], np.ones((5, 4))).save(tmp_path / "forecast")
    code = ("import sys, numpy as np; from tunecast.model import forecast; "
            f"f = forecast.load({str(tmp_path)!r}); f.predict(np.arange(30.0)[:, None], 4); "
            "print(sorted({'ray', 'optuna', 'tunecast.search', 'tunecast.reports'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _two_lines() -> pd.DataFrame:
    """Two exactly linear series of different lengths, levels, slopes and scales."""
    a = pd.DataFrame({"unique_id": "a", "ds": np.arange(50), "y": 5.0 + 0.5 * np.arange(50.0)})
    b = pd.DataFrame({"unique_id": "b", "ds": np.arange(10, 80), "y": 1000.0 - 30.0 * np.arange(70.0)})
    return pd.concat([b, a])


def test_a_panel_forecaster_continues_each_series_from_its_own_last_window(tmp_path):
    from tunecast.model.panel import PanelSpec, panel_from_frame

    panel = panel_from_frame(_two_lines(), PanelSpec("two-lines"))
    member = _linear_extrapolator(horizon=1)  # linear in any series' own scaling: fed back 5 times
    f = forecast.PanelForecaster(panel.ids, panel.columns, panel.mean, panel.std, members=[member])
    scores, series, _ = f.held_out_scores(panel, panel.n_train, 5)
    assert np.bincount(series).tolist() == [50 - int(panel.n_train[0]), 70 - int(panel.n_train[1])]
    np.testing.assert_allclose(scores[np.isfinite(scores)], 0, atol=1e-3)  # exact on lines
    f.errors, f.error_series = scores, series
    prediction = f.predict(panel, 5, times=[[50, 51, 52, 53, 54], [80, 81, 82, 83, 84]])
    np.testing.assert_allclose(prediction.mean[0], 5.0 + 0.5 * np.arange(50.0, 55.0), rtol=1e-5)
    np.testing.assert_allclose(prediction.mean[1], 1000.0 - 30.0 * np.arange(70.0, 75.0), rtol=1e-5)
    frame = prediction.frame()
    assert list(frame.columns) == ["unique_id", "time", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert frame["unique_id"].tolist() == ["a"] * 5 + ["b"] * 5 and frame["time"].tolist()[4:6] == [54, 80]
    loaded = forecast.load(f.save(tmp_path))
    assert isinstance(loaded, forecast.PanelForecaster)
    np.testing.assert_array_equal(loaded.predict(panel, 5).mean, prediction.mean)
    baseline = forecast.PanelForecaster(panel.ids, panel.columns, panel.mean, panel.std, kind="naive")
    np.testing.assert_array_equal(baseline.paths(panel, panel.offsets + panel.lengths, 2),
                                  [[29.5, 29.5], [-1070.0, -1070.0]])  # each series' own last value


def test_panel_intervals_are_per_series_with_enough_scores_else_pooled_and_nested():
    rng = np.random.default_rng(0)
    calm, wild, short = np.abs(rng.normal(size=(60, 3))), 10 * np.abs(rng.normal(size=(60, 3))), \
        np.abs(rng.normal(size=(5, 3)))
    scores = np.concatenate([calm, wild, short])
    series = np.repeat([0, 1, 2], [60, 60, 5])
    widths, own = forecast.panel_widths(scores, series, 3, (80.0, 95.0))
    assert own.tolist() == [True, True, False]
    np.testing.assert_array_equal(widths[95.0][0], forecast.conformal_quantiles(calm, 95.0))
    np.testing.assert_array_equal(widths[95.0][1], forecast.conformal_quantiles(wild, 95.0))
    np.testing.assert_array_equal(widths[95.0][2], forecast.conformal_quantiles(scores, 95.0))  # pooled
    assert (widths[80.0] <= widths[95.0]).all() and (np.diff(widths[95.0], axis=1) >= 0).all()
    assert forecast.min_scores(95.0) == 19 and forecast.min_scores(80.0) == 4


def test_a_flat_stretch_of_an_intermittent_series_does_not_swamp_the_pooled_intervals():
    """Two series at 0 with a spike every 14 points: before each spike the last 12 points are
    flat, so the local scale is near 0 and the spike's score huge; such scores are 7% of the
    pool here, more than a 95% quantile ignores. The floor (a tenth of the series' mean one-step
    change) bounds them, and with them the intervals of a short series calibrated on the pool."""
    from tunecast.model.panel import PanelSpec, panel_from_frame

    spikes = np.where(np.arange(300) % 14 == 13, 50.0, 0.0)
    rng = np.random.default_rng(1)
    short = 10 + rng.normal(size=40).cumsum()
    frame = pd.concat([pd.DataFrame({"unique_id": sid, "ds": np.arange(len(y)), "y": y})
                       for sid, y in (("i1", spikes), ("i2", spikes), ("short", short))])
    panel = panel_from_frame(frame, PanelSpec("mixed"))
    f = forecast.PanelForecaster(panel.ids, panel.columns, panel.mean, panel.std, kind="naive")
    scores, series, _ = f.held_out_scores(panel, panel.n_train, 1)
    f.errors, f.error_series = scores, series
    worst = 50 / (forecast.PANEL_SCALE_FLOOR * np.abs(np.diff(spikes)).mean())  # a spike over the floor
    assert np.nanmax(scores) <= worst * 1.001
    assert np.mean(scores[series < 2] > worst / 2) > 0.05  # the spikes are more than 5% of the pool
    prediction = f.predict(panel, 1)
    s = list(panel.ids).index("short")
    assert not prediction.own[s]  # pooled: too few scores of its own
    width = prediction.upper[95.0][s, 0] - prediction.mean[s, 0]
    own_scale = forecast.local_scale(short[:, None], np.array([40]), 12)[0]
    assert 0 < width <= worst * own_scale * 1.001 and width / own_scale < 100  # 7e6 with a 1e-6 floor


def test_a_panel_refit_trains_on_every_point_of_every_series_in_its_own_scaling():
    from tunecast.model.panel import PanelSpec, panel_from_frame
    from tunecast.model.panel_windows import panel_windows

    panel = panel_from_frame(_two_lines(), PanelSpec("two-lines"))
    config = TrainConfig(hidden_size=4, window=8, horizon=2, batch_size=16, min_batches_per_epoch=1, seed=3)
    member = Member(build_model(config, 1).eval(), checkpoint.ModelInfo.of(config, panel))
    everything = forecast.panel_for_refit(panel)
    assert everything.n_train.tolist() == [50, 70] and everything.n_val.tolist() == [0, 0]
    np.testing.assert_allclose(everything.mean[:, 0], [5.0 + 0.5 * 24.5, 1000.0 - 30.0 * 34.5], rtol=1e-6)
    assert len(panel_windows(everything, 8, 2)["train"]) == (50 - 9) + (70 - 9)  # no window crosses two
    first, second = forecast.refit(member, panel, epochs=1), forecast.refit(member, panel, epochs=1)
    assert first.info.epoch == 1 and first.info.extra == {"n_series": 2, "refit": True}
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # seeded as in the search
