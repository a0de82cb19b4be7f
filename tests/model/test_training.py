"""fit(): it learns, it is reproducible, it stops early, it survives divergence."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch

from tunecast.model import ConfigError, DataSpec, TrainConfig, evaluate, fit, load
from tunecast.model.training import mean_loss
from tunecast.model.windows import split_windows

# highway off: these tests are about the LSTM and attention learning, not the linear term
SMALL = {"hidden_size": 16, "num_layers": 1, "window": 20, "batch_size": 32, "lr": 3e-3, "highway": False}


@pytest.fixture(scope="module")
def sine():
    return load(DataSpec("sine"))


def test_learns_the_sine_wave_not_just_its_mean(sine):
    config = TrainConfig(**SMALL, max_epochs=25, patience=25)
    result = fit(config, sine)
    evaluation = evaluate(result.model, sine, config)
    test_mse = float(np.mean((evaluation.y_true - evaluation.y_pred) ** 2))
    variance = float(np.var(sine.values[:, 0]))
    assert test_mse < 0.01 * variance, (test_mse, variance)
    # predicting the mean (the article's bug) would give MSE ~ variance
    assert evaluation.metrics["model"]["mase"] < evaluation.metrics["naive"]["mase"]


def test_on_epoch_called_once_per_epoch(sine):
    seen = []
    result = fit(TrainConfig(**SMALL, max_epochs=3, patience=10), sine, on_epoch=seen.append)
    assert [m["epoch"] for m in seen] == [1, 2, 3]
    assert set(seen[0]) >= {"epoch", "train_loss", "val_loss"}
    assert [m["last_epoch"] for m in seen] == [False, False, True]
    assert result.status == "completed" and result.epochs_run == 3


def test_same_seed_same_numbers(sine):
    config = TrainConfig(**SMALL, max_epochs=2, seed=7)
    a, b = fit(config, sine), fit(config, sine)
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(v, b.model.state_dict()[k], rtol=0, atol=0)
    c = fit(TrainConfig(**SMALL, max_epochs=2, seed=8), sine)
    assert [h["val_loss"] for h in c.history] != [h["val_loss"] for h in a.history]


def test_early_stopping_restores_best_weights(sine):
    improved = []
    config = TrainConfig(**{**SMALL, "lr": 0.05}, max_epochs=40, patience=2)
    result = fit(config, sine, on_improve=lambda state, m: improved.append(m["epoch"]))
    assert result.status == "early_stopped"
    assert result.epochs_run == result.best_epoch + 2
    assert improved[-1] == result.best_epoch
    val = split_windows(sine, config.window, config.horizon)["val"]
    assert mean_loss(result.model, val) == pytest.approx(result.best_val_loss, rel=1e-4)


def exploding(data):
    """The series times 1e30 with the original's scaling: its standardised values are about
    1e30, so every squared error overflows float32 (a real divergence, lr within its bound)."""
    return dataclasses.replace(data, values=data.values * np.float32(1e30))


def test_lr_has_a_sane_upper_bound():
    TrainConfig(lr=10.0)
    for lr in (10.5, 1e6, 1e20):
        with pytest.raises(ConfigError, match=r"lr must lie in \(0, 10\]"):
            TrainConfig(lr=lr)


def test_divergence_stops_with_a_clear_status(sine):
    seen = []
    config = TrainConfig(**SMALL, max_epochs=10)
    result = fit(config, exploding(sine), on_epoch=seen.append)
    assert result.status == "diverged"
    assert result.epochs_run < 10 and seen[-1]["last_epoch"] is True
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_multistep_horizon(sine):
    config = TrainConfig(**SMALL, horizon=5, max_epochs=3)
    result = fit(config, sine)
    evaluation = evaluate(result.model, sine, config)
    assert evaluation.y_pred.shape == (sine.n_test // 5, 5)
    assert evaluation.attention.shape == (sine.n_test // 5, 20)
    np.testing.assert_allclose(evaluation.attention.sum(axis=1), 1.0, rtol=1e-5)


def test_window_scaler_forecasts_a_trend_beyond_training_range():
    data = load(DataSpec("airline"))
    base = {
        "hidden_size": 16,
        "window": 12,
        "batch_size": 16,
        "lr": 5e-3,
        "max_epochs": 60,
        "patience": 15,
        "highway": False,  # the window scaler alone must carry the trend
    }
    window = evaluate(
        fit(TrainConfig(**base, scaler="window"), data).model,
        data,
        TrainConfig(**base, scaler="window"),
    )
    assert window.y_pred.max() > data.values[: data.n_train, 0].max()  # extrapolates the trend
    assert window.metrics["model"]["mase"] < window.metrics["naive"]["mase"]


def test_highway_learns_co2_better_than_the_lstm_alone():
    """The LSTNet-style highway: a linear AR term beside the LSTM, on a trending seasonal series."""
    data = load(DataSpec("co2"))
    base = {"hidden_size": 16, "window": 36, "batch_size": 32, "lr": 1e-3, "max_epochs": 12,
            "patience": 30, "scaler": "window"}
    losses = {hw: fit(TrainConfig(**base, highway=hw), data).best_val_loss for hw in (False, True)}
    assert losses[True] < 0.7 * losses[False], losses  # val MAE 0.052 vs 0.087 here
    reloaded = TrainConfig.from_dict({**base, "highway": "true"})
    assert reloaded.highway is True


def test_micro_batches_give_the_same_training_in_bounded_memory(sine, monkeypatch):
    """A batch too large for TRAIN_UNITS is split; the accumulated gradient is the batch's."""
    import tunecast.model.training as training

    config = TrainConfig(**SMALL, max_epochs=2, patience=5)
    assert training.micro_batch_size(config) == config.batch_size  # normal sizes: no split
    whole = fit(config, sine)
    monkeypatch.setattr(training, "TRAIN_UNITS", config.window * config.hidden_size * 5)
    assert training.micro_batch_size(config) == 5  # 32 windows -> 7 passes of <= 5
    split = fit(config, sine)
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(split.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    assert split.history[-1]["train_loss"] == pytest.approx(whole.history[-1]["train_loss"], rel=1e-4)


def test_from_dict_casts_and_rejects():
    config = TrainConfig.from_dict({"hidden_size": "32", "lr": "0.01", "window": 12.0, "scaler": "window"})
    assert config.hidden_size == 32 and isinstance(config.hidden_size, int)
    assert config.lr == 0.01 and config.window == 12
    with pytest.raises(ConfigError, match=r"unknown training option\(s\) \['hiden'\].*hidden_size"):
        TrainConfig.from_dict({"hiden": 3})
    with pytest.raises(ConfigError, match="hidden_size must be int"):
        TrainConfig.from_dict({"hidden_size": 3.5})
    with pytest.raises(ConfigError, match="scaler must be one of"):
        TrainConfig.from_dict({"scaler": "minmax"})
    with pytest.raises(ConfigError, match="loss must be one of mse, mae, huber"):
        TrainConfig.from_dict({"loss": "l1"})
    with pytest.raises(ConfigError, match="highway_init must be one of naive, random"):
        TrainConfig.from_dict({"highway_init": "zeros"})
    assert TrainConfig.from_dict(config.to_dict()) == config
    # a model.json written before highway_init existed still loads, with today's default
    old = config.to_dict()
    del old["highway_init"]
    assert TrainConfig.from_dict(old).highway_init == "random"


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_each_training_loss_learns_and_val_loss_stays_the_mae(sine, loss):
    """The training loss is the config's; val_loss is the mean absolute error whatever it is,
    so trials trained on different losses are ranked on one scale."""
    config = TrainConfig(**SMALL, max_epochs=6, patience=6, loss=loss)
    result = fit(config, sine)
    val = split_windows(sine, config.window, config.horizon)["val"]
    with torch.no_grad():
        prediction, _ = result.model(val.x())
    assert result.best_val_loss == pytest.approx(float(torch.mean(torch.abs(prediction - val.y()))), rel=1e-4)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]  # it learns


def test_import_model_does_not_import_ray_or_optuna():
    import subprocess

    code = "import sys, tunecast.model; print(sorted(m for m in ('ray', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_epoch_is_capped_at_max_batches_per_epoch(sine):
    config = TrainConfig(**SMALL, max_epochs=2, max_batches_per_epoch=5)
    result = fit(config, sine)
    assert result.windows_seen == 2 * 5 * 32  # 5 sampled batches of 32 windows per epoch
    n_train = len(split_windows(sine, 20, 1)["train"])
    uncapped = fit(TrainConfig(**SMALL, max_epochs=1, min_batches_per_epoch=1), sine)
    assert uncapped.windows_seen == n_train > 5 * 32  # default cap 1000: every window, as before
    with pytest.raises(ConfigError, match="max_batches_per_epoch must be >= 1"):
        TrainConfig(max_batches_per_epoch=0)


def test_a_long_epoch_reports_progress(sine, monkeypatch):
    from tunecast.model import training

    monkeypatch.setattr(training, "PROGRESS_EVERY_S", 0.0)  # every batch and validation step
    seen = []
    fit(TrainConfig(**SMALL, max_epochs=1, max_batches_per_epoch=4), sine, on_progress=seen.append)
    stages = [(p["stage"], p["unit"]) for p in seen]
    assert ("training", "batches") in stages and ("validation", "windows") in stages
    assert all(p["epoch"] == 1 and 0 <= p["done"] < p["of"] for p in seen)
    assert [p["done"] for p in seen if p["stage"] == "training"] == [0, 1, 2, 3]
