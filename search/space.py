"""The search space, as a pure description (no Ray, no Optuna objects).

``default_space()`` is the default; ``apply_overrides`` merges a user's YAML ``space:``;
``adapt_to_series`` narrows the window range so no sampled trial is impossible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tunecast.model.training import LOSSES, ConfigError, TrainConfig
from tunecast.model.typecast import cast

TUNABLE = tuple(name for name in TrainConfig.__dataclass_fields__ if name not in ("max_epochs", "seed"))
RANGE_KEYS = ("low", "high", "log", "choices", "value")
MIN_TRAIN_WINDOWS = 16
MIN_TRAIN_WINDOW_FRACTION = 3 / 4


class SpaceError(ValueError):
    """A bad search-space entry; the message names the key and the fix."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter: an int/float range, a list of choices, or a fixed value."""

    type: str  # "int" | "float" | "categorical" | "fixed"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.type in ("int", "float"):
            d.update(low=self.low, high=self.high, log=self.log)
        elif self.type == "categorical":
            d["choices"] = list(self.choices)
        else:
            d["value"] = self.value
        return d

    def to_spec(self) -> Any:
        """The entry as a user writes it under ``space:`` (what :func:`parse_param` reads)."""
        if self.type in ("int", "float"):
            return {"low": self.low, "high": self.high, "log": self.log}
        if self.type == "categorical":
            return {"choices": list(self.choices)}
        return {"value": self.value}


DEFAULT_WINDOW = (8, 64)  # the default window range, widened to two seasons when 2m > 64


def default_space(season_length: int = 1) -> dict[str, Param]:
    """What tunecast tunes by default; the window range reaches at least two seasons (``2m``)."""
    low, high = DEFAULT_WINDOW
    return {
        "hidden_size": Param("int", 16, 128, log=True),
        "num_layers": Param("int", 1, 2),
        "window": Param("int", low, max(high, 2 * season_length)),
        "lr": Param("float", 3e-4, 1e-2, log=True),
        "batch_size": Param("categorical", choices=(16, 32, 64)),
        "dropout": Param("float", 0.0, 0.3),
        "scaler": Param("categorical", choices=("standard", "window")),
        "highway": Param("categorical", choices=(False, True)),
        "loss": Param("categorical", choices=LOSSES),
    }


# The first trials without --warm-start: two sound, different configurations (each can follow
# a trend; one per kind of loss), so even a short search has a reasonable model.
STARTS: tuple[dict[str, Any], ...] = (
    {"scaler": "window", "highway": True, "loss": "mae", "hidden_size": 32, "num_layers": 1,
     "lr": 3e-3, "batch_size": 32, "dropout": 0.1},
    {"scaler": "standard", "highway": True, "loss": "mse", "hidden_size": 64, "num_layers": 1,
     "lr": 1e-3, "batch_size": 32, "dropout": 0.1},
)
START_WINDOW = 24  # the starting window without a season (m = 1); two seasons otherwise


def starting_points(space: dict[str, Param], season_length: int, trials: int) -> list[dict[str, Any]]:
    """:data:`STARTS` (at most ``trials``) restricted to the values ``space`` allows."""
    window = 2 * season_length if season_length > 1 else START_WINDOW
    points = []
    for start in STARTS[:trials]:
        wanted = {**start, "window": window}
        point = {}
        for name, param in space.items():
            if param.type == "fixed" or name not in wanted:
                continue
            value = _nearest(wanted[name], param)
            if value is not None:
                point[name] = value
        points.append(point)
    return points


def _nearest(value: Any, param: Param) -> Any:
    """``value`` inside ``param`` (a window clipped into the range), or None if it has no place."""
    if param.type == "categorical":
        return value if is_choice(value, param) else None
    low, high = float(param.low or 0), float(param.high or 0)
    if param.type == "int":
        return int(min(max(int(value), low), high))
    return float(value) if low <= value <= high else None


def is_choice(value: Any, param: Param) -> bool:
    """Whether ``value`` is one of a categorical ``param``'s choices, type included (True is not 1)."""
    return any(value == choice and type(value) is type(choice) for choice in param.choices)


def _field_type(name: str) -> str:
    return str(TrainConfig.__dataclass_fields__[name].type)


def parse_param(name: str, spec: Any) -> Param:
    """Turn one YAML entry (a scalar, a list, or a mapping) into a :class:`Param`."""
    if name not in TUNABLE:
        raise SpaceError(f"unknown search-space key '{name}': valid keys are {', '.join(TUNABLE)}")
    kind = _field_type(name)
    param = _parse(name, kind, spec)
    for what, value in _values(param):
        try:
            TrainConfig.from_dict({name: value})  # TrainConfig's own checks, one value at a time
        except ConfigError as exc:
            raise SpaceError(f"space.{name}: {what}{value!r} is not allowed ({exc})") from None
    return param


def _values(param: Param) -> list[tuple[str, Any]]:
    """Every value a trial may get from ``param``: its choices, fixed value, or range ends."""
    if param.type == "fixed":
        return [("", param.value)]
    if param.type == "categorical":
        return [("choice ", c) for c in param.choices]
    return [("low ", param.low), ("high ", param.high)]


def _parse(name: str, kind: str, spec: Any) -> Param:
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        return Param("fixed", value=_cast(name, kind, spec))
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise SpaceError(f"space.{name}: unknown key(s) {unknown}: use low/high (and log), choices, or value")
    if "value" in spec:
        return Param("fixed", value=_cast(name, kind, spec["value"]))
    if "choices" in spec:
        choices = tuple(_cast(name, kind, c) for c in spec["choices"] or [])
        if not choices:
            raise SpaceError(f"space.{name}: choices is empty: list at least one value")
        return Param("categorical", choices=choices) if len(choices) > 1 else Param("fixed", value=choices[0])
    if kind in ("str", "bool"):
        what = "text" if kind == "str" else "true/false"
        raise SpaceError(f"space.{name}: a {what} option takes choices: [...] or a value")
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"space.{name}: a range needs both low and high")
    low, high = _cast(name, kind, spec["low"]), _cast(name, kind, spec["high"])
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"space.{name}: log must be true or false, got {log!r}")
    if low > high:
        raise SpaceError(f"space.{name}: range is inverted (low {low} > high {high}): swap them")
    if low == high:
        raise SpaceError(f"space.{name}: range is empty (low == high == {low}): use value: {low}")
    if log and low <= 0:
        raise SpaceError(f"space.{name}: a log range needs low > 0, got {low}")
    return Param(kind, low, high, log=log)


def _cast(name: str, kind: str, value: Any) -> Any:
    try:
        return cast(kind, value)
    except ValueError:
        raise SpaceError(f"space.{name}: {value!r} is not a valid {kind}") from None


def apply_overrides(space: dict[str, Param], overrides: dict[str, Param]) -> dict[str, Param]:
    """The default space with the user's (parsed) entries replacing or fixing parameters."""
    return {**space, **overrides}


def max_window(n_train: int, horizon: int) -> int:
    """Largest window leaving ``MIN_TRAIN_WINDOWS`` and 3/4 of the training points as windows."""
    keep = max(MIN_TRAIN_WINDOWS, math.ceil(n_train * MIN_TRAIN_WINDOW_FRACTION))
    return n_train - horizon + 1 - keep


def adapt_to_series(space: dict[str, Param], n_train: int, horizon: int) -> dict[str, Param]:
    """Clip the window range (or check a fixed window) against the training length."""
    limit = max_window(n_train, horizon)
    if limit < 2:
        raise SpaceError(
            f"the training part has only {n_train} points, too few for any window with horizon "
            f"{horizon}: use a longer series, a smaller horizon or a smaller val/test part"
        )
    window = space.get("window")
    if window is None:
        return space
    out = dict(space)
    if window.type == "fixed" and int(window.value) > limit:
        raise SpaceError(
            f"window {window.value} leaves too few training windows ({n_train} training points, "
            f"horizon {horizon}): use a window of at most {limit}"
        )
    if window.type == "categorical":
        kept = tuple(c for c in window.choices if int(c) <= limit)
        if not kept:
            raise SpaceError(f"every window choice exceeds {limit}, the largest this series allows")
        out["window"] = replace(window, choices=kept) if len(kept) > 1 else Param("fixed", value=kept[0])
    if window.type == "int" and window.high is not None and window.high > limit:
        low = min(int(window.low or 2), limit - 1)
        out["window"] = replace(window, low=low, high=limit)
    return out


def check_user_window(
    overrides: dict[str, Param], space: dict[str, Param], n_train: int, horizon: int
) -> None:
    """Refuse a user's window entry that :func:`adapt_to_series` had to narrow."""
    user = overrides.get("window")
    if user is None or space.get("window", user) == user:
        return
    limit = max_window(n_train, horizon)
    given = f"{{low: {user.low:g}, high: {user.high:g}}}" if user.type == "int" else list(user.choices)
    raise SpaceError(
        f"space.window {given} does not fit the series ({n_train} training points, horizon {horizon}): "
        f"the largest window it allows is {limit}; keep every window at or below {limit}"
    )


def describe(space: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """JSON-ready description (for tunecast.json and the report)."""
    return {name: param.to_dict() for name, param in space.items()}
