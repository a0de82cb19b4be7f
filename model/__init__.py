"""The Attention-LSTM forecaster: data, network, training and metrics (no Ray, no Optuna)."""

from tunecast.model.data import DataError, Dataset, DataSpec, load
from tunecast.model.evaluate import Evaluation, evaluate, predict
from tunecast.model.network import AttentionLSTM
from tunecast.model.training import ConfigError, TrainConfig, TrainResult, build_model, fit

__all__ = [
    "AttentionLSTM",
    "ConfigError",
    "DataError",
    "DataSpec",
    "Dataset",
    "Evaluation",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "evaluate",
    "fit",
    "load",
    "predict",
]
