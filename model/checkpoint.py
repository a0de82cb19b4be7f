"""THE model format: one folder with the weights and the JSON needed to rebuild the network.

``model.pt`` holds the state_dict only (loaded with ``weights_only=True``: no pickled code runs)
and ``model.json`` the TrainConfig, input size, columns and provenance. Trial checkpoints,
``best/`` and ensemble members all use it; nothing outside ``model/`` knows its file names.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunecast.model.data import Dataset
from tunecast.model.panel import Panel
from tunecast.model.training import TrainConfig, build_model

FORMAT = "tunecast-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.pt"
INFO_FILE = "model.json"


class CheckpointError(ValueError):
    """A folder that holds no loadable model; the message names the folder and the fix."""


@dataclass(frozen=True)
class ModelInfo:
    """What rebuilds the network, and where its weights come from."""

    config: TrainConfig
    input_size: int
    columns: tuple[str, ...] = ()  # the input columns, target first
    epoch: int = 0  # the epoch whose weights these are
    val_loss: float | None = None  # their validation loss (scaled units)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the trial id
    mean: tuple[float, ...] = ()  # (F,) the scaling the network's inputs were standardised with
    std: tuple[float, ...] = ()
    trained_on: int | None = None  # the leading points of the series it was trained on

    @classmethod
    def of(cls, config: TrainConfig, data: Dataset | Panel, **fields: Any) -> ModelInfo:
        """The description of a network trained with ``config`` on ``data``'s training part
        (a panel's: no one scaling, ``mean``/``std`` empty, and the number of series)."""
        if isinstance(data, Panel):
            extra = {**fields.pop("extra", {}), "n_series": data.n_series}
            return cls(config, data.input_size, data.columns, extra=extra, **fields)
        return cls(config, data.input_size, data.columns, mean=tuple(map(float, data.mean)),
                   std=tuple(map(float, data.std)), trained_on=data.n_train, **fields)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "train_config": self.config.to_dict(), "input_size": self.input_size,
                "columns": list(self.columns), "epoch": self.epoch, "val_loss": self.val_loss,
                "mean": list(self.mean), "std": list(self.std), "trained_on": self.trained_on,
                "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelInfo:
        if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} description")
        val_loss, trained_on = raw.get("val_loss"), raw.get("trained_on")
        return cls(
            config=TrainConfig.from_dict(raw["train_config"]),
            input_size=int(raw["input_size"]),
            columns=tuple(map(str, raw.get("columns") or ())),
            epoch=int(raw.get("epoch") or 0),
            val_loss=None if val_loss is None else float(val_loss),
            extra=dict(raw.get("extra") or {}),
            mean=tuple(map(float, raw.get("mean") or ())),
            std=tuple(map(float, raw.get("std") or ())),
            trained_on=None if trained_on is None else int(trained_on),
        )


def save(folder: str | Path, weights: nn.Module | dict[str, torch.Tensor], info: ModelInfo) -> Path:
    """Write a model folder (created if needed; other files in it are left alone)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    state = {k: v.detach().to("cpu") for k, v in state.items()}
    torch.save(state, folder / WEIGHTS_FILE)
    text = json.dumps(info.to_dict(), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{INFO_FILE}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, folder / INFO_FILE)  # written last: a folder with model.json is complete
    return folder


def read_info(folder: str | Path) -> ModelInfo:
    """The description of the model in ``folder``, without loading its weights."""
    file = Path(folder) / INFO_FILE
    try:
        return ModelInfo.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(f"{folder} holds no saved model ({INFO_FILE} is missing): pass a "
                              "model folder such as an experiment's best/") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{file} is not a readable model description ({exc}): restore "
                              "the folder or re-run the search") from None


def load(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelInfo]:
    """Rebuild the saved network in eval mode on ``device``, with its description."""
    info = read_info(folder)
    model = build_model(info.config, info.input_size)
    try:
        state = torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot load the weights in {folder} ({str(exc).splitlines()[0]}): "
                              "restore the folder or re-run the search") from None
    return model.to(device).eval(), info


def is_model_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved model (its description was written last)."""
    return (Path(folder) / INFO_FILE).is_file() and (Path(folder) / WEIGHTS_FILE).is_file()
