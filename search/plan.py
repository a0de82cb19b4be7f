"""``SearchPlan``: one search, resolved once into typed objects before Ray starts.

The plan holds the loaded data, the experiment folder and the search space after the user's
overrides and the clipping to the series. Every later step (the Tuner, the trainable, the
records of the results) reads the plan; nothing parses the configuration again.

The data is one series or a panel of many (:class:`model.panel.Panel`: ``--id-column``, or a
file in Nixtla's long format); a panel is scaled here, once, so that the array every trial
trains on goes into Ray's object store with the plan and no trial scales (copies) it again.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from expdir import contract, remote
from model.data import Dataset, check_sizes
from model.panel import Panel, _too_short, as_panel_spec, load_any
from model.training import TrainConfig
from search.config import SearchConfig, SearchConfigError
from search.space import (
    MIN_TRAIN_WINDOWS,
    Param,
    SpaceError,
    adapt_to_series,
    apply_overrides,
    check_user_window,
    default_space,
    max_window,
)
from search.study import WarmStart, load_warm_start


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


def experiment_dir(config: SearchConfig, data: Dataset | Panel) -> tuple[Path, str | None]:
    """The experiment's folder, and its URI when ``--storage`` is one (the folder is then the
    local working copy of the contract files)."""
    name = config.name or f"{data.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    if remote.is_uri(config.storage):
        uri = remote.join(config.storage, name)
        return remote.working_copy(uri), uri
    return Path(config.storage).expanduser().resolve() / name, None


def search_space(config: SearchConfig, data: Dataset | Panel) -> dict[str, Param]:
    """The default space with the user's overrides, less what ``train:`` fixes, clipped to the
    series (so that no sampled window is impossible; a panel: to its shortest series). Only the
    default window range is clipped: a user's window range or choices that the series cannot
    hold are an error."""
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
    """Every series leaves a window as the space requires (:func:`search.space.max_window` of at
    least 2); else one line naming the shortest series, the minimum and the ``--min-length``
    that drops the short ones."""
    fails = np.array([max_window(int(n), horizon) < 2 for n in panel.n_train])
    if not fails.any():
        return
    spec = panel.spec
    need = next(n for n in range(2, 10**9) if max_window(spec.split(n)[0], horizon) >= 2)
    what = (f"any window with horizon {horizon} (at least {MIN_TRAIN_WINDOWS} training windows, "
            f"{spec.splits_text()})")
    raise _too_short(panel.ids, panel.lengths, fails, need, what, "use a smaller horizon")


def make_plan(config: SearchConfig, resume: Path | str | None = None) -> SearchPlan:
    """Load and check the data, and resolve the space and the folder (before Ray starts).
    ``resume``: the folder or URI of the experiment to continue."""
    data = load_any(config.data)
    if isinstance(data, Panel):
        config = replace(config, data=as_panel_spec(config.data))  # tunecast.json says it is a panel
        data.scaled()  # kept in the panel: it travels to the object store with the plan
    space = search_space(config, data)
    if isinstance(resume, str):
        path, uri = remote.working_copy(resume), resume
    elif resume is not None:
        path, uri = resume, None
    else:
        path, uri = experiment_dir(config, data)
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
