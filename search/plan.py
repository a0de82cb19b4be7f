"""``SearchPlan``: one search, resolved once into typed objects before Ray starts.

The plan holds the loaded data (one series or a :class:`model.panel.Panel`), the experiment
folder and the space after the user's overrides and the clipping to the series; every later step
reads it. A panel is scaled here, once, so that it reaches Ray's object store ready to train on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunecast.expdir import contract, remote
from tunecast.model.data import Dataset, check_sizes
from tunecast.model.panel import Panel, as_panel_spec, load_any, too_short
from tunecast.model.training import TrainConfig
from tunecast.search.config import SearchConfig, SearchConfigError
from tunecast.search.space import (
    MIN_TRAIN_WINDOWS,
    Param,
    SpaceError,
    adapt_to_series,
    apply_overrides,
    check_user_window,
    default_space,
    max_window,
)
from tunecast.search.study import WarmStart, load_warm_start


@dataclass(frozen=True)
class SearchPlan:
    """A search ready to run: its configuration, data, folder and space."""

    config: SearchConfig
    data: Dataset | Panel
    path: Path  # <storage>/<name>
    space: dict[str, Param]  # every TrainConfig option the trials sample or fix
    resume: bool = False
    remote: str | None = None  # the experiment's URI when --storage is one; ``path`` is its working copy
    warm: WarmStart | None = None  # --warm-start: an earlier experiment's finished trials

    @property
    def location(self) -> str:
        """Where the experiment is, as the user names it: its URI, or its folder."""
        return self.remote or str(self.path)

    @property
    def storage_path(self) -> str:
        """Ray Tune's ``storage_path``: the URI or folder the experiment lives under."""
        return self.remote.rstrip("/").rsplit("/", 1)[0] if self.remote else str(self.path.parent)

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


def experiment_dir(config: SearchConfig, data_name: str) -> tuple[Path, str | None]:
    """The experiment's folder, and its URI when ``--storage`` is one (the folder is then the
    local working copy of the contract files)."""
    name = config.name or f"{data_name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    if remote.is_uri(config.storage):
        uri = remote.join(config.storage, name)
        return remote.working_copy(uri), uri
    return Path(config.storage).expanduser().resolve() / name, None


def search_space(config: SearchConfig, data: Dataset | Panel) -> dict[str, Param]:
    """The default space with the user's overrides, less what ``train:`` fixes, its default
    window range clipped to the (shortest) series; a user's window the series cannot hold is an
    error."""
    horizon = int(config.train.get("horizon", TrainConfig.horizon))
    space = apply_overrides(default_space(data.season_length), config.space)
    for name in config.train:
        space.pop(name, None)  # fixed under train: wins over the default range
    check_sizes(horizon, data.spec.val_size, data.spec.test_size)
    if isinstance(data, Panel):
        _check_panel_lengths(data, horizon)
    n_train = int(np.min(data.n_train))
    try:
        adapted = adapt_to_series(space, n_train, horizon)
        check_user_window(config.space, adapted, n_train, horizon)
        return adapted
    except SpaceError as exc:
        raise SearchConfigError(str(exc)) from None


def _check_panel_lengths(panel: Panel, horizon: int) -> None:
    """Every series leaves a window of at least 2 (:func:`search.space.max_window`); else one
    line naming the shortest series and the ``--min-length`` that drops the short ones."""
    fails = np.array([max_window(int(n), horizon) < 2 for n in panel.n_train])
    if not fails.any():
        return
    spec = panel.spec
    need = next(n for n in range(2, 10**9) if max_window(spec.split(n)[0], horizon) >= 2)
    what = (f"any window with horizon {horizon} (at least {MIN_TRAIN_WINDOWS} training windows, "
            f"{spec.splits_text()})")
    raise too_short(panel.ids, panel.lengths, fails, need, what, "use a smaller horizon")


def make_plan(config: SearchConfig, resume: Path | str | None = None,
              frame: pd.DataFrame | None = None) -> SearchPlan:
    """Load and check the data, and resolve the space and the folder (before Ray starts).
    ``resume``: the folder or URI of the experiment to continue; ``frame``: the data in memory."""
    data = load_any(config.data, frame)
    if isinstance(data, Panel):
        config = replace(config, data=as_panel_spec(config.data))  # tunecast.json says it is a panel
        data.scaled()  # kept in the panel: it travels to the object store with the plan
    space = search_space(config, data)
    if isinstance(resume, str):
        path, uri = remote.working_copy(resume), resume
    elif resume is not None:
        path, uri = resume, None
    else:
        path, uri = experiment_dir(config, data.name)
    if resume is None and _exists(path, uri):
        where = uri or path
        raise SearchConfigError(
            f"experiment '{where}' exists already: resume it with --resume {where}, or pick another --name"
        )
    # --warm-start is read before Ray starts (bad input is one line); a resume has its study already
    warm = load_warm_start(config.warm_start) if config.warm_start and resume is None else None
    return SearchPlan(config, data, path, space, resume is not None, uri, warm)


def _exists(path: Path, uri: str | None) -> bool:
    if uri is None:
        return (path / contract.RUN_FILE).exists()
    try:
        return remote.exists(remote.join(uri, contract.RUN_FILE))
    except remote.RemoteError as exc:
        raise SearchConfigError(f"{exc}: check --storage and the store's credentials") from None
