"""The statistical half of the combination: statsforecast's AutoETS and AutoARIMA, fitted on the
leading points only and forecasting from later origins without refitting, within a bounded cost."""

from __future__ import annotations

import numpy as np
import pytest
from statsforecast.models import AutoARIMA, AutoETS

from tunecast.model.statistical import HISTORY, MAX_SEASON, Statistical


def _direct(models, y: np.ndarray, fit_on: slice, origins, steps: int, history: int | None = None):
    out = []
    for model in models:
        model.fit(y[fit_on])
        out.append([model.forward(y[max(0, o - (history or o)): o], h=steps)["mean"] for o in origins])
    return np.mean(out, axis=0)


def test_paths_are_the_models_fitted_on_the_leading_points_forecasting_from_each_origin():
    rng = np.random.default_rng(0)
    t = np.arange(200)
    y = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, 200)
    statistical = Statistical(y, 150, 12)
    assert statistical.models == ("AutoETS", "AutoARIMA")
    origins = np.array([150, 163, 188])
    expected = _direct([AutoETS(season_length=12), AutoARIMA(season_length=12)], y, slice(0, 150), origins, 6)
    np.testing.assert_allclose(statistical.paths(y, origins, 6), expected, rtol=1e-9)
    # the networks and each model a third
    np.testing.assert_allclose(statistical.combine(np.zeros((3, 6)), expected), expected * 2 / 3)
    # the same fit again from what a forecaster folder records
    again = Statistical.from_meta(statistical.meta(), y)
    np.testing.assert_allclose(again.paths(y, origins, 6), expected, rtol=1e-12)


def test_a_model_that_cannot_forecast_is_left_out_and_the_rest_weigh_as_much_as_the_networks():
    y = np.array([3.0, 4.0])  # AutoETS needs more points than two
    statistical = Statistical(y, 2, 1)
    assert statistical.models == ("AutoARIMA",)
    stats = statistical.paths(y, np.array([2]), 3)
    np.testing.assert_allclose(statistical.combine(np.ones((1, 3)), stats), (1 + stats) / 2)


def test_long_series_and_long_seasons_stay_cheap():
    """A season longer than MAX_SEASON is not modelled, and only the last HISTORY points are fitted
    on and filtered (seasonal AutoARIMA with m = 50 takes about 25 s to fit here, m = 24 on 3,500
    points about a minute)."""
    rng = np.random.default_rng(1)
    y = 10 + np.sin(np.arange(1600) * 2 * np.pi / 50) + np.cumsum(rng.normal(0, 0.1, 1600))
    assert MAX_SEASON["AutoARIMA"] < 50 and MAX_SEASON["AutoETS"] < 50 and HISTORY < 1300
    statistical = Statistical(y, 1300, 50)
    origins = np.array([1300, 1450])
    unseasonal = [AutoETS(season_length=1), AutoARIMA(season_length=1)]
    expected = _direct(unseasonal, y, slice(300, 1300), origins, 5, history=HISTORY)
    np.testing.assert_allclose(statistical.paths(y, origins, 5), expected, rtol=1e-9)


def test_before_a_late_origin_the_filter_restarts_in_the_seasonal_phase_it_was_fitted_in():
    """On a series longer than HISTORY, each forecast filters at most HISTORY points, starting in
    the seasonal phase of the fit: it matches filtering every point since the fit's start (the
    uncapped forecast), where a start in another phase is off by several units."""
    rng = np.random.default_rng(2)
    t = np.arange(1600)
    season = 8 * np.sin(2 * np.pi * t / 12) + 3 * np.cos(2 * np.pi * t / 6)
    y = 50 + 0.01 * t + season + rng.normal(0, 1, 1600)
    fit_start = 1300 - HISTORY
    statistical = Statistical(y, 1300, 12, ("AutoETS",))
    model = AutoETS(season_length=12)
    model.fit(y[fit_start:1300])
    for origin in (1301, 1305, 1450, 1599):
        uncapped = model.forward(y[fit_start:origin], h=12)["mean"]
        assert np.abs(statistical.paths(y, np.array([origin]), 12)[0] - uncapped).max() < 0.05
    shifted = model.forward(y[1305 - HISTORY:1305], h=12)["mean"]  # HISTORY back, 5 months out of phase
    assert np.abs(shifted - model.forward(y[fit_start:1305], h=12)["mean"]).max() > 1


def test_a_forecast_that_is_not_finite_falls_back_to_the_other_model(monkeypatch):
    """Where AutoETS's forecast is not finite (a multiplicative form after the series reached 0),
    AutoARIMA's stands in for the statistical half; where neither is finite, StatisticalError."""
    from tunecast.model.statistical import StatisticalError

    rng = np.random.default_rng(3)
    y = 20 + np.cumsum(rng.normal(0, 1, 120))
    statistical = Statistical(y, 100, 1)
    origins = np.array([100, 110])
    arima = _direct([AutoARIMA(season_length=1)], y, slice(0, 100), origins, 4)
    monkeypatch.setattr(AutoETS, "forward", lambda self, y, h, **kw: {"mean": np.full(h, np.inf)})
    np.testing.assert_allclose(statistical.paths(y, origins, 4), arima, rtol=1e-9)
    monkeypatch.setattr(AutoARIMA, "forward", lambda self, y, h, **kw: {"mean": np.full(h, np.nan)})
    with pytest.raises(StatisticalError, match="finite"):
        statistical.paths(y, origins, 4)
