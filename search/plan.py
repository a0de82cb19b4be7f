"""``SearchPlan``: one search, resolved once into typed objects before Ray starts.

The plan holds the loaded data, the experiment folder and the search space after the user's
overrides and the clipping to the series. Every later step (the Tuner, the trainable, the
records of the results) reads the plan; nothing parses the configuration again.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expdir import contract
from model.data import Dataset, load
from model.training import TrainConfig
from search.config import SearchConfig, SearchConfigError
from search.space import (
    Param,
    SpaceError,
    adapt_to_series,
    apply_overrides,
    check_user_window,
    default_space,
)


@dataclass(frozen=True)
class SearchPlan:
    """A search ready to run: its configuration, data, folder and space."""

    config: SearchConfig
    data: Dataset
    path: Path  # <storage>/<name>
    space: dict[str, Param]  # every TrainConfig option the trials sample or fix
    resume: bool = False

    @property
    def tuned(self) -> dict[str, Param]:
        """The parameters the searcher samples."""
        return {name: p for name, p in self.space.items() if p.type != "fixed"}

    @property
    def fixed(self) -> dict[str, Any]:
        """TrainConfig options every trial shares (seed, max_epochs, train: and fixed values)."""
        fixed_space = {name: p.value for name, p in self.space.items() if p.type == "fixed"}
        return {"seed": self.config.seed, **self.config.train, **fixed_space,
                "max_epochs": self.config.max_epochs}

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": self.config.cpus_per_trial, "gpu": self.config.gpus_per_trial}

    def train_config(self, params: dict[str, Any]) -> TrainConfig:
        """The full TrainConfig of a trial with the sampled ``params``."""
        return TrainConfig.from_dict({**self.fixed, **params})


def experiment_dir(config: SearchConfig, data: Dataset) -> Path:
    name = config.name or f"{data.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    return Path(config.storage).expanduser().resolve() / name


def search_space(config: SearchConfig, data: Dataset) -> dict[str, Param]:
    """The default space with the user's overrides, less what ``train:`` fixes, clipped to the
    series (so that no sampled window is impossible). Only the default window range is clipped:
    a user's window range or choices that the series cannot hold are an error."""
    horizon = int(config.train.get("horizon", TrainConfig.horizon))
    space = apply_overrides(default_space(), config.space)
    for name in config.train:
        space.pop(name, None)  # fixed under train: wins over the default range
    try:
        adapted = adapt_to_series(space, data.n_train, horizon)
        check_user_window(config.space, adapted, data.n_train, horizon)
        return adapted
    except SpaceError as exc:
        raise SearchConfigError(str(exc)) from None


def make_plan(config: SearchConfig, resume: Path | None = None) -> SearchPlan:
    """Load and check the data, and resolve the space and the folder (before Ray starts)."""
    data = load(config.data)
    space = search_space(config, data)
    path = resume if resume is not None else experiment_dir(config, data)
    if resume is None and (path / contract.RUN_FILE).exists():
        raise SearchConfigError(
            f"experiment '{path}' exists already: resume it with --resume {path}, or pick another --name"
        )
    return SearchPlan(config, data, path, space, resume is not None)
