"""The statistical half of the ``combined`` forecaster: statsforecast's AutoETS and AutoARIMA.

The search's ``combined`` candidate is the equal mean of three forecasts: the networks' (the
top-k ensemble's, or the best trial's when there is no ensemble), AutoETS's and AutoARIMA's.
Each statistical model chooses its form and fits its parameters on the leading ``fit_end``
points only, as the networks train on the training part, and then forecasts from any later
origin with those parameters, filtering the points up to that origin without refitting
(statsforecast's ``forward``), as the networks read their last window. It sees the target column
only (extra features are the networks' to use). To bound the cost on long series, a model fits on
and filters at most the last ``HISTORY`` points (before an origin: starting in the same seasonal
phase as its fit, since the filter restarts from the fitted initial states), and a season longer
than ``MAX_SEASON`` is not modelled (seasonal AutoARIMA with a 24-point season takes about a
minute to fit on this 2-core machine, and 10 s per 300 origins to forecast).

Nothing is pickled: a forecaster folder records ``fit_end`` and the season, and the models are
fitted again from the same points when it is loaded (both are deterministic). A model that
cannot be fitted (too few points for its form) is left out; with neither, there is no
``combined`` candidate (:class:`StatisticalError`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

MODELS = ("AutoETS", "AutoARIMA")
HISTORY = 1000  # the trailing points a model fits on and filters before each origin
MAX_SEASON = {"AutoETS": 24, "AutoARIMA": 12}  # a longer season is not modelled


class StatisticalError(ValueError):
    """Neither statistical model could be fitted."""


def _season(name: str, season_length: int) -> int:
    return season_length if season_length <= MAX_SEASON[name] else 1


def _model(name: str, season_length: int) -> Any:
    from statsforecast.models import AutoARIMA, AutoETS  # imported on use: numba compiles on import

    return {"AutoETS": AutoETS, "AutoARIMA": AutoARIMA}[name](season_length=_season(name, season_length))


class Statistical:
    """AutoETS and AutoARIMA fitted on ``target[:fit_end]``; :meth:`paths` is their mean."""

    def __init__(self, target: np.ndarray, fit_end: int, season_length: int,
                 models: tuple[str, ...] = MODELS) -> None:
        target = np.asarray(target, np.float64).reshape(-1)
        if not 0 < fit_end <= len(target):
            raise StatisticalError(f"cannot fit on the first {fit_end} of {len(target)} points")
        self.fit_end, self.season_length = int(fit_end), int(season_length)
        self.fit_start = max(0, self.fit_end - HISTORY)
        self.fitted: dict[str, Any] = {}
        reasons = []
        for name in models:
            try:
                model = _model(name, self.season_length)
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    model.fit(target[self.fit_start: self.fit_end])
                    if not np.isfinite(model.predict(h=1)["mean"]).all():
                        raise ValueError("its forecast is not finite")
            except ImportError:
                raise  # a broken install, not a series it cannot fit: the caller warns
            except Exception as exc:  # statsforecast raises plain exceptions for series it cannot fit
                reasons.append(f"{name}: {exc}")
                continue
            self.fitted[name] = model
        if not self.fitted:
            raise StatisticalError("neither statistical model fits the training part ("
                                   + "; ".join(reasons) + ")")

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.fitted)

    def _start(self, origin: int, name: str) -> int:
        """Where the points a model filters before ``origin`` start: at most ``HISTORY`` back,
        in the same seasonal phase as the points it was fitted on (the filter restarts from the
        fitted initial states, seasonal ones included)."""
        earliest, season = max(0, origin - HISTORY), _season(name, self.season_length)
        return earliest + (self.fit_start - earliest) % season

    def paths(self, target: np.ndarray, origins: np.ndarray, steps: int) -> np.ndarray:
        """The mean forecast ``[B, steps]`` of the fitted models from each origin (original units;
        an origin ``o`` sees ``target[:o]``). Where one model's forecast is not finite (e.g. a
        multiplicative form after the series reached 0), the others' mean stands in for it; where
        none is finite, :class:`StatisticalError`."""
        target = np.asarray(target, np.float64).reshape(-1)
        origins = np.asarray(origins, dtype=np.int64)
        out = np.zeros((len(self.fitted), len(origins), steps))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                for j, (name, model) in enumerate(self.fitted.items()):
                    for i, origin in enumerate(origins):
                        history = target[self._start(int(origin), name): origin]
                        out[j, i] = np.asarray(model.forward(history, h=steps)["mean"], np.float64)
        except Exception as exc:  # statsforecast's own errors are plain exceptions
            raise StatisticalError(f"a statistical model could not forecast ({type(exc).__name__}: {exc})") \
                from None
        out[~np.isfinite(out)] = np.nan
        if np.isnan(out).all(axis=0).any():
            raise StatisticalError("no statistical model gives a finite forecast at some origin")
        return np.asarray(np.nanmean(out, axis=0))

    def combine(self, networks: np.ndarray, statistical: np.ndarray) -> np.ndarray:
        """The combined forecast from the networks' forecast and :meth:`paths`: the networks and
        each fitted statistical model equally weighted (the networks one third with both)."""
        n = len(self.fitted)
        return (np.asarray(networks, np.float64) + n * statistical) / (n + 1)

    def meta(self) -> dict[str, Any]:
        """What a forecaster folder records to fit the same models again."""
        return {"models": list(self.models), "fit_end": self.fit_end, "season_length": self.season_length}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], target: np.ndarray) -> Statistical:
        return cls(target, int(meta["fit_end"]), int(meta["season_length"]), tuple(meta["models"]))
