"""The Attention-LSTM forecaster: data, network, training and metrics (no Ray, no Optuna)."""

from model.data import DataError, Dataset, DataSpec, load
from model.evaluate import Evaluation, evaluate, predict
from model.network import AttentionLSTM
from model.training import ConfigError, TrainConfig, TrainResult, build_model, fit

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
