"""``SearchConfig``: everything one search needs, from CLI options and an optional YAML file.

A YAML config has up to four sections, each optional::

    data:   {source: airline, target: passengers, season_length: 12}
    search: {trials: 32, max_epochs: 40, grace_period: 4, scheduler: asha}
    train:  {horizon: 1, patience: 8}           # fixed training options
    space:                                       # tuned ones: range, choices or a value
      hidden_size: {low: 16, high: 128, log: true}
      scaler: [standard, window]
      num_layers: 1

Unknown keys anywhere are an error that names the valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tunecast.model.data import DataError, DataSpec
from tunecast.model.panel import data_spec
from tunecast.model.training import ConfigError, TrainConfig
from tunecast.model.typecast import cast
from tunecast.search.space import Param, SpaceError, parse_param

SCHEDULERS = ("asha", "fifo")
SECTIONS = ("data", "search", "train", "space")
DEFAULT_SOURCE = "airline"
DEFAULT_GRACE_PERIOD = 10
DEFAULT_REPORT_EVERY_S = 5.0  # see report_every_s
CLUSTER_RETRIES = 2
MAX_TRIALS = 100_000  # more is a typo: each trial is a training run
DEFAULT_ORIGINS = 2  # earlier validation origins on a single series (search.backtest)
MAX_ORIGINS = 20  # each earlier origin retrains every candidate network
MAX_NAME_BYTES = 255  # a folder name's limit on common file systems


class SearchConfigError(ValueError):
    """A bad search option or config file; the message names the problem and the fix."""


@dataclass(frozen=True)
class SearchConfig:
    """One search: data, budget, resources, scheduler, space and where to store it."""

    data: DataSpec = field(default_factory=lambda: DataSpec(source=DEFAULT_SOURCE))  # or a PanelSpec
    name: str | None = None
    storage: str = "tunecast-runs"
    trials: int = 16
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    time_budget_s: float | None = None
    scheduler: str = "asha"
    max_epochs: int = 100
    grace_period: int | None = None  # default: min(10, max_epochs)
    reduction_factor: int = 2
    max_failures: int | None = None  # retries per trial; default 0 locally, 2 on a cluster
    seed: int = 0
    ensemble: int = 5  # also forecast with the mean of the top-k trials by val_loss (1: no ensemble)
    address: str | None = None
    train: dict[str, Any] = field(default_factory=dict)  # fixed TrainConfig options, cast to their types
    space: dict[str, Param] = field(default_factory=dict)  # the user's overrides of the default space
    report: bool = True
    forecast: bool = True  # end with forecast/: the chosen forecaster, H steps past the data
    refit: bool = False  # forecast/ refits the chosen networks on every point first (docs/experiment-dir.md)
    # a single series: the networks combined with AutoETS and AutoARIMA are a candidate too (combined/)
    combine: bool = True
    # a single series: earlier validation origins the candidates are retrained and scored at (0: none)
    origins: int = DEFAULT_ORIGINS
    verbose: int = 1
    warm_start: str | None = None  # an earlier experiment whose finished trials seed the sampler
    # beyond its first and last epoch and ASHA's rungs, a trial reports at most this often; 0: every epoch
    report_every_s: float = DEFAULT_REPORT_EVERY_S

    def __post_init__(self) -> None:
        if not 1 <= self.trials <= MAX_TRIALS:
            raise SearchConfigError(f"trials must lie in 1..{MAX_TRIALS}, got {self.trials}")
        if self.cpus_per_trial <= 0:
            raise SearchConfigError(f"cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        g = self.gpus_per_trial
        if g != 0 and not 0 < g <= 1:
            raise SearchConfigError(
                f"gpus-per-trial must lie in (0, 1] (a share of one GPU) or be 0, got {g}"
            )
        if g and abs(round(1 / g) * g - 1) > 1e-6:
            raise SearchConfigError(
                f"gpus-per-trial {g} does not divide a GPU into whole trials: use 1, 0.5, "
                "0.25, 0.2, 0.125 (1/k for k trials per GPU)"
            )
        if self.ensemble < 1:
            raise SearchConfigError(f"ensemble must be >= 1 (1 = the best trial alone), got {self.ensemble}")
        if not 0 <= self.origins <= MAX_ORIGINS:
            raise SearchConfigError(f"origins must lie in 0..{MAX_ORIGINS} (earlier validation origins; "
                                    f"0: the search's own block alone), got {self.origins}")
        if self.refit and not self.forecast:
            raise SearchConfigError("--refit (refit: true) retrains the networks for forecast/, which "
                                    "--no-forecast (forecast: false) skips: drop one of the two, or "
                                    "refit later with `tunecast forecast --refit EXP_DIR`")
        if self.max_failures is not None and self.max_failures < 0:
            raise SearchConfigError(f"max-failures must be >= 0, got {self.max_failures}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SearchConfigError(f"max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise SearchConfigError(f"time-budget must be > 0 seconds, got {self.time_budget_s}")
        if not (math.isfinite(self.report_every_s) and self.report_every_s >= 0):
            raise SearchConfigError(
                f"report_every_s must be >= 0 seconds (0: every epoch), got {self.report_every_s}"
            )
        if self.scheduler not in SCHEDULERS:
            raise SearchConfigError(
                f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}"
            )
        if self.grace_period is None:
            object.__setattr__(self, "grace_period", min(DEFAULT_GRACE_PERIOD, self.max_epochs))
        assert self.grace_period is not None
        if self.max_epochs < 1 or self.grace_period < 1 or self.reduction_factor < 2:
            raise SearchConfigError("max_epochs and grace_period must be >= 1 and reduction_factor >= 2")
        if self.grace_period > self.max_epochs:
            raise SearchConfigError(
                f"grace_period {self.grace_period} exceeds max_epochs {self.max_epochs}: make it smaller"
            )
        reserved = sorted({"max_epochs", "seed"} & set(self.train))
        if reserved:
            raise SearchConfigError(f"set {reserved} under search:, not under train:")
        overlap = sorted(set(self.train) & set(self.space))
        if overlap:
            raise SearchConfigError(f"{overlap} given both under train: and space: pick one")
        try:  # resolved once: typed values and Params from here on
            typed = TrainConfig.from_dict({**self.train, "max_epochs": self.max_epochs}).to_dict()
            object.__setattr__(self, "train", {name: typed[name] for name in self.train})
            object.__setattr__(self, "space", {
                name: spec if isinstance(spec, Param) else parse_param(name, spec)
                for name, spec in self.space.items()})
        except (ConfigError, SpaceError) as exc:
            raise SearchConfigError(str(exc)) from None
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise SearchConfigError(f"name {self.name!r} must be a plain folder name")
        if self.name is not None and len(self.name.encode("utf-8")) > MAX_NAME_BYTES:
            raise SearchConfigError(
                f"name is {len(self.name.encode('utf-8'))} bytes long: a folder name may have at most "
                f"{MAX_NAME_BYTES}; pick a shorter --name"
            )

    def rung_epochs(self) -> frozenset[int]:
        """The epochs at which ASHA decides whether a trial goes on: its rungs, ``grace_period x
        reduction_factor^k`` up to ``max_epochs``, as Ray's ASHA bracket computes them (empty
        under FIFO). A trial reports these epochs whatever else it coalesces."""
        if self.scheduler != "asha":
            return frozenset()
        grace = self.grace_period or 1
        import numpy as np  # Ray's own arithmetic (its _Bracket), so both agree on every rung

        rungs = int(np.log(self.max_epochs / grace) / np.log(self.reduction_factor) + 1)
        return frozenset(grace * self.reduction_factor**k for k in range(rungs))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` reads it back to an equal config."""
        d = asdict(self)
        d.update(data=self.data.to_dict(), space={n: p.to_spec() for n, p in self.space.items()})
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        d = dict(d)
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise SearchConfigError(f"unknown search option(s) {unknown}: valid ones are {sorted(valid)}")
        types = {f.name: str(f.type) for f in fields(cls)}
        for key, value in d.items():
            if key not in ("data", "train", "space"):
                d[key] = _cast_option(key, types[key], value)
        try:
            d["data"] = data_spec({"source": DEFAULT_SOURCE, **(d.get("data") or {})})
        except (DataError, TypeError) as exc:
            raise SearchConfigError(str(exc)) from None
        return cls(**d)

    def retries(self) -> int:
        """Retries of a failed trial: on a cluster a node may die under it, locally it will not."""
        if self.max_failures is not None:
            return self.max_failures
        return CLUSTER_RETRIES if self.address else 0


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read and check a YAML config file; returns its sections."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SearchConfigError(f"config file '{path}' not found: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchConfigError(f"cannot read config file '{path}': {exc}") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
    except DuplicateKeyError as exc:
        raise SearchConfigError(f"config file '{path}': {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SearchConfigError(f"config file '{path}' is not valid YAML{line}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SearchConfigError(f"config file '{path}' must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(map(str, loaded)) - set(SECTIONS))
    if unknown:
        raise SearchConfigError(
            f"config file '{path}': unknown section(s) {unknown}: valid ones are {', '.join(SECTIONS)}"
        )
    for section, body in loaded.items():
        if body is not None and not isinstance(body, dict):
            raise SearchConfigError(f"config file '{path}': section '{section}' must be a mapping")
    return {k: dict(v or {}) for k, v in loaded.items()}


class DuplicateKeyError(ValueError):
    """A YAML mapping that gives one key twice (YAML would keep the last silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader's own error follows
            if key in seen:
                raise DuplicateKeyError(
                    f"key {key!r} is given twice (line {key_node.start_mark.line + 1}): keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SPLIT_PAIRS = {"val_size": "val_fraction", "val_fraction": "val_size",
                "test_size": "test_fraction", "test_fraction": "test_size"}


# `tunecast search`'s options (argparse's names, also TuneCast's keywords) -> DataSpec/SearchConfig keys
DATA_OPTIONS = {
    "data": "source", "target": "target", "time_column": "time_column", "features": "features",
    "season_length": "season_length", "val_fraction": "val_fraction", "test_fraction": "test_fraction",
    "val_size": "val_size", "test_size": "test_size", "missing": "missing", "id_column": "id_column",
    "min_length": "min_length",
}
SEARCH_OPTIONS = {
    "trials": "trials", "max_epochs": "max_epochs", "grace_period": "grace_period",
    "scheduler": "scheduler", "cpus_per_trial": "cpus_per_trial", "gpus_per_trial": "gpus_per_trial",
    "max_concurrent": "max_concurrent", "time_budget": "time_budget_s", "max_failures": "max_failures",
    "storage": "storage", "name": "name", "address": "address", "seed": "seed", "ensemble": "ensemble",
    "origins": "origins", "warm_start": "warm_start",
}
FLAGS = {"no_report": ("report", False), "no_forecast": ("forecast", False), "refit": ("refit", True),
         "no_combine": ("combine", False), "quiet": ("verbose", 0), "verbose": ("verbose", 2)}
SMOKE = {"trials": 4, "max_epochs": 3, "grace_period": 1}  # --smoke-test: a search of seconds
SMOKE_SPACE = {"hidden_size": {"low": 8, "high": 16}, "num_layers": 1, "window": {"low": 8, "high": 16}}


def data_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The data options given (not None), as DataSpec keys (cast by DataSpec.from_dict)."""
    out = {key: options[name] for name, key in DATA_OPTIONS.items() if options.get(name) is not None}
    if not out.get("features"):
        out.pop("features", None)
    return out


def from_options(options: Mapping[str, Any]) -> SearchConfig:
    """The one place a search is configured: `tunecast search`'s options by argparse's names, or
    TuneCast's keywords of the same names (None or False: not given), over the YAML file that
    ``config`` names; ``smoke_test`` and ``horizon`` as the CLI takes them."""
    sections = read_yaml(options["config"]) if options.get("config") else {}
    search = {key: options[name] for name, key in SEARCH_OPTIONS.items() if options.get(name) is not None}
    search.update(value for flag, value in FLAGS.items() if options.get(flag))
    if options.get("smoke_test"):
        search = {**SMOKE, **search}
        sections = {**sections, "space": {**SMOKE_SPACE, **sections.get("space", {})}}
    if options.get("horizon") is not None:
        sections = {**sections, "train": {**sections.get("train", {}), "horizon": options["horizon"]}}
    return build_config(sections, data_options(options), search)


def build_config(yaml_sections: dict[str, Any], data: dict[str, Any], search: dict[str, Any]) -> SearchConfig:
    """Merge a YAML file's sections with command-line options (which win)."""
    search_section = dict(yaml_sections.get("search", {}))
    for key in ("data", "train", "space"):
        if key in search_section:
            raise SearchConfigError(f"put '{key}' at the top level of the config file, not under search")
    merged: dict[str, Any] = {**search_section, **search}
    # a part's size and fraction are one setting: the command line's replaces the file's
    yaml_data = {k: v for k, v in dict(yaml_sections.get("data", {})).items()
                 if _SPLIT_PAIRS.get(k) not in data}
    merged["data"] = {**yaml_data, **data}
    merged["train"] = dict(yaml_sections.get("train", {}))
    merged["space"] = dict(yaml_sections.get("space", {}))
    for key in ("time_budget_s",):
        if merged.get(key) is None:
            continue
        try:
            finite = math.isfinite(float(merged[key])) and not isinstance(merged[key], bool)
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise SearchConfigError(f"{key} must be a finite number of seconds, got {merged[key]!r}")
    return SearchConfig.from_dict(merged)


def _cast_option(key: str, kind: str, value: Any) -> Any:
    """Cast a YAML/CLI value to the field's type, or say what was expected."""
    if value is None:
        if "None" in kind:
            return None
        raise SearchConfigError(f"{key} needs a value")
    base = kind.replace(" | None", "")
    try:
        return cast(base, value)
    except ValueError:
        raise SearchConfigError(f"{key} must be {base}, got {value!r}") from None
