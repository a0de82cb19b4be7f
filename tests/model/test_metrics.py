import numpy as np
import pytest

from tunecast.model import metrics


def test_basic_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    yhat = np.array([1.0, 3.0, 2.0, 4.0])
    assert metrics.mae(y, yhat) == pytest.approx(0.5)
    assert metrics.rmse(y, yhat) == pytest.approx(np.sqrt(0.5))
    # sMAPE: 2*1/5 and 2*1/5 over 4 points
    assert metrics.smape(y, yhat) == pytest.approx(100 * (0.4 + 0.4) / 4)
    assert metrics.smape(np.zeros(3), np.zeros(3)) == 0.0


def test_mase_scale_uses_seasonal_lag():
    insample = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])
    assert metrics.mase_scale(insample, 1) == pytest.approx(np.mean([4, 3, 4, 3, 4]))
    assert metrics.mase_scale(insample, 2) == pytest.approx(1.0)
    y, yhat = np.array([4.0, 8.0]), np.array([5.0, 8.0])
    assert metrics.mase(y, yhat, insample, 2) == pytest.approx(0.5)


def test_naive_and_seasonal_naive_blocks():
    series = np.arange(20, dtype=float) * 10  # 0, 10, ..., 190
    positions = np.array([[12, 13, 14], [15, 16, 17]])
    naive = metrics.naive_forecast(series, positions)
    np.testing.assert_array_equal(naive, [[110, 110, 110], [140, 140, 140]])
    snaive = metrics.seasonal_naive_forecast(series, positions, 2)
    # step h repeats y[t0 + h - 2 * (h // 2 + 1)]
    np.testing.assert_array_equal(snaive, [[100, 110, 100], [130, 140, 130]])
    one_step = metrics.seasonal_naive_forecast(series, np.array([[12], [13]]), 1)
    np.testing.assert_array_equal(one_step, [[110], [120]])
