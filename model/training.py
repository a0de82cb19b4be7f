"""Training: ``TrainConfig`` and ``fit()``.

``fit`` trains an :class:`AttentionLSTM` with Adam, gradient clipping, early stopping on
``val_loss`` and restores the best weights. ``val_loss`` is always the MAE in standardised
units, whatever the training ``loss``, so it compares across trials and ranks as MAE/MASE do.
The only seams to a tuner are the ``on_epoch`` and ``on_improve`` callbacks.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from tunecast.model.data import Dataset
from tunecast.model.network import HIGHWAY_INITS, AttentionLSTM
from tunecast.model.panel import Panel
from tunecast.model.panel_windows import AnyWindows, data_windows
from tunecast.model.typecast import cast

SCALERS = ("standard", "window")
LOSSES = ("mse", "mae", "huber")  # training losses; val_loss is the mean absolute error whatever the choice
HUBER_DELTA = 1.0  # standardised units: squared error within one train standard deviation, absolute beyond
EVAL_BATCH = 4096  # windows per evaluation batch at most
EVAL_STEPS = 1 << 18  # window steps per evaluation batch at most: [B, T, hidden] stays ~100 MB
TRAIN_UNITS = 1 << 23  # windows x steps x layers x hidden per training forward pass at most (~0.5 GB)
MAX_LR = 10.0  # Adam steps each weight by about lr: anything larger only diverges
PROGRESS_EVERY_S = 5.0  # on_progress is called at most this often within an epoch


def eval_batch_size(window: int) -> int:
    """Windows per evaluation batch: ``EVAL_BATCH``, fewer for long windows (bounded memory)."""
    return max(1, min(EVAL_BATCH, EVAL_STEPS // window))


def micro_batch_size(config: TrainConfig) -> int:
    """Windows per forward/backward pass: the whole batch unless its activations would exceed
    ``TRAIN_UNITS``; then gradients accumulate over micro-batches."""
    per_window = config.window * config.num_layers * config.hidden_size
    return max(1, min(config.batch_size, TRAIN_UNITS // per_window))


class ConfigError(ValueError):
    """A bad training configuration; the message names the key and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the data."""

    hidden_size: int = 64
    num_layers: int = 1
    window: int = 24
    horizon: int = 1
    dropout: float = 0.0
    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 50
    patience: int = 15
    scaler: str = "standard"
    loss: str = "mse"  # the training loss: "mse", "mae" or "huber"
    seed: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    highway: bool = True  # linear autoregressive term over the window beside the LSTM (LSTNet)
    highway_init: str = "random"  # the highway starts at random or as the last value ("naive")
    min_batches_per_epoch: int = 20  # short series: an epoch repeats the data to reach this many steps
    max_batches_per_epoch: int = 1000  # long series: an epoch is this many batches of windows sampled anew
    max_val_windows: int = 50_000  # long series: val_loss on this many evenly spaced validation windows

    def __post_init__(self) -> None:
        positive = (
            "hidden_size",
            "num_layers",
            "window",
            "horizon",
            "batch_size",
            "max_epochs",
            "patience",
            "max_batches_per_epoch",
            "max_val_windows",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 < self.lr <= MAX_LR:
            raise ConfigError(f"lr must lie in (0, {MAX_LR:g}], got {self.lr:g}")
        if self.scaler not in SCALERS:
            raise ConfigError(f"scaler must be one of {', '.join(SCALERS)}, got {self.scaler!r}")
        if self.highway_init not in HIGHWAY_INITS:
            raise ConfigError(
                f"highway_init must be one of {', '.join(HIGHWAY_INITS)}, got {self.highway_init!r}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ConfigError("weight_decay must be >= 0 and grad_clip > 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config from a (Ray/YAML/JSON) dict: cast types, reject unknown keys."""
        types = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}: valid ones are {sorted(types)}")
        values: dict[str, Any] = {}
        for key, value in d.items():
            try:
                values[key] = cast(str(types[key]), value)
            except ValueError:
                raise ConfigError(f"{key} must be {types[key]}, got {value!r}") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What ``fit`` returns: the best model (on CPU), its history and how training ended."""

    model: AttentionLSTM
    config: TrainConfig
    status: str  # "completed" (max_epochs), "early_stopped" (patience) or "diverged"
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    seconds: float
    device: str
    history: list[dict[str, float]] = field(default_factory=list)
    windows_seen: int = 0  # training windows processed, all epochs together (for throughput)


@dataclass(frozen=True)
class Resume:
    """Where a restarted run picks up: the best weights so far, their epoch and val_loss."""

    state: dict[str, torch.Tensor]
    epoch: int
    best_val_loss: float


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when available (or asked for), else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(config: TrainConfig, input_size: int) -> AttentionLSTM:
    """The network a config describes (used by fit and to reload checkpoints)."""
    return AttentionLSTM(
        input_size=input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        horizon=config.horizon,
        dropout=config.dropout,
        window_norm=config.scaler == "window",
        highway=config.highway,
        window=config.window,
        highway_init=config.highway_init,
    )


@torch.no_grad()
def mean_loss(
    model: nn.Module, windows: AnyWindows, progress: Callable[[int, int], None] | None = None
) -> float:
    """Mean absolute error of ``model`` over all ``windows`` (eval mode): ``val_loss``.
    ``progress(done, total)`` is called before every batch."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    step = eval_batch_size(windows.window)
    for start in range(0, len(windows), step):
        if progress is not None:
            progress(start, len(windows))
        idx = slice(start, start + step)
        prediction, _ = model(windows.x(idx))  # (B, H)
        target = windows.y(idx)  # (B, H)
        total += float(torch.sum(torch.abs(prediction - target)))
        count += target.numel()
    model.train(was_training)
    return total / max(count, 1)


def fit(
    config: TrainConfig,
    data: Dataset | Panel,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_improve: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
    device: str | torch.device | None = None,
    resume: Resume | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train an Attention-LSTM on ``data`` with ``config``.

    Args:
        config: hyperparameters.
        data: a dataset or a panel (one global model, each series in its own scaling). Without
            a validation part ``val_loss`` is the training loss and the last epoch is kept.
        on_epoch: called per epoch with ``{"epoch", "train_loss", "val_loss", "best_val_loss",
            "last_epoch"}`` (``last_epoch``: the epoch that ends the run).
        on_improve: called with the CPU state_dict and metrics whenever ``val_loss`` improves,
            before that epoch's ``on_epoch``.
        device: force a device; default CUDA if available, else CPU.
        resume: continue a cut-off run from its best checkpoint, at ``resume.epoch + 1``.
        on_progress: called within an epoch, at most every ``PROGRESS_EVERY_S`` seconds, with
            ``{"epoch", "stage", "done", "of", "unit"}``.
    """
    dev = resolve_device(device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    shuffle = torch.Generator().manual_seed(config.seed)

    windows = data_windows(data, config.window, config.horizon, dev)  # (N, F) data, one copy on the device
    train, val = windows["train"], windows["val"].thinned(config.max_val_windows)
    model = build_model(config, data.input_size).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    best_state = _cpu_state(model)
    best_val, best_epoch, stale, status = math.inf, 0, 0, "completed"
    if resume is not None:
        model.load_state_dict(resume.state)
        best_state, best_val, best_epoch = _cpu_state(model), resume.best_val_loss, resume.epoch
        shuffle.manual_seed(config.seed + resume.epoch)
    history: list[dict[str, Any]] = []
    windows_seen = 0
    started = time.perf_counter()
    epoch = best_epoch
    for epoch in range(best_epoch + 1, config.max_epochs + 1):
        progress = _progress(on_progress, epoch, "training", "batches")
        train_loss, seen = train_epoch(model, optimizer, train, config, shuffle, dev, progress)
        windows_seen += seen
        if not math.isfinite(train_loss):
            val_loss = math.nan
        else:  # without validation windows (a refit on every point) the last epoch is the best
            checking = _progress(on_progress, epoch, "validation", "windows")
            val_loss = mean_loss(model, val, checking) if len(val) else train_loss
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            status = "diverged"
        elif val_loss < best_val or not len(val):
            best_val, best_epoch, stale = val_loss, epoch, 0
            best_state = _cpu_state(model)
        else:
            stale += 1
            if stale >= config.patience:
                status = "early_stopped"
        last = status != "completed" or epoch == config.max_epochs
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "best_val_loss": best_val,
            "last_epoch": last,
        }
        history.append(metrics)
        if on_improve is not None and best_epoch == epoch:
            on_improve(best_state, metrics)
        if on_epoch is not None:
            on_epoch(metrics)
        if last:
            break

    final = build_model(config, data.input_size)
    final.load_state_dict(best_state)
    final.eval()
    return TrainResult(
        model=final,
        config=config,
        status=status,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        epochs_run=epoch,
        seconds=time.perf_counter() - started,
        device=str(dev),
        history=history,
        windows_seen=windows_seen,
    )


def _progress(
    on_progress: Callable[[dict[str, Any]], None] | None, epoch: int, stage: str, unit: str
) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    report = on_progress
    shown = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        """Report at most every PROGRESS_EVERY_S seconds, however often it is called."""
        if time.perf_counter() - shown[0] >= PROGRESS_EVERY_S:
            report({"epoch": epoch, "stage": stage, "done": done, "of": total, "unit": unit})
            shown[0] = time.perf_counter()

    return progress


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: AnyWindows,
    config: TrainConfig,
    shuffle: torch.Generator,
    dev: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """Shuffled passes over the training windows, between ``min_batches_per_epoch`` and
    ``max_batches_per_epoch`` batches. Returns the mean loss per target value and windows seen."""
    model.train()
    n = len(train)
    passes = max(1, math.ceil(config.min_batches_per_epoch * config.batch_size / n))
    order = torch.cat([torch.randperm(n, generator=shuffle) for _ in range(passes)])
    order = order[: config.max_batches_per_epoch * config.batch_size].to(dev)
    micro = micro_batch_size(config)
    total, count = 0.0, 0
    n_batches = math.ceil(len(order) / config.batch_size)
    for start in range(0, len(order), config.batch_size):
        if progress is not None:
            progress(start // config.batch_size, n_batches)
        idx = order[start : start + config.batch_size]
        values = len(idx) * config.horizon  # target values in this batch
        optimizer.zero_grad(set_to_none=True)
        batch_loss = 0.0
        for part in idx.split(micro):  # one part unless the batch's activations are too large
            x, y = train.x(part), train.y(part)  # (b, T, F), (b, H)
            prediction, _ = model(x)  # (b, H)
            assert prediction.shape == y.shape, f"prediction {prediction.shape} vs target {y.shape}"
            loss = _loss_sum(prediction, y, config.loss) / values  # this part's share of the batch mean
            if not torch.isfinite(loss):
                return math.nan, count // config.horizon
            loss.backward()
            batch_loss += float(loss.detach())
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += batch_loss * values
        count += values
    return total / max(count, 1), count // config.horizon


def _loss_sum(prediction: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """The training loss summed over the batch's target values."""
    if loss == "mae":
        return torch.sum(torch.abs(prediction - target))
    if loss == "huber":
        return nn.functional.huber_loss(prediction, target, reduction="sum", delta=HUBER_DELTA)
    return torch.sum((prediction - target) ** 2)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in copy.copy(model.state_dict()).items()}
