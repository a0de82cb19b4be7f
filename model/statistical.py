"""The statistical half of the ``combined`` forecaster: statsforecast's AutoETS and AutoARIMA.

The ``combined`` candidate is the equal mean of the networks', AutoETS's and AutoARIMA's
forecasts (target column only). Each model fits on the leading ``fit_end`` points and forecasts
from later origins by filtering without refitting (statsforecast's ``forward``). To bound the
cost it sees at most ``HISTORY`` points, and a season longer than ``MAX_SEASON`` is not modelled.
Nothing is pickled: a forecaster folder records ``fit_end`` and the season, and the models are
refitted (deterministically) on load. A model that cannot fit is left out; with neither,
:class:`StatisticalError`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

MODELS = ("AutoETS", "AutoARIMA")  # the combination's by default (AutoTheta: benchmarks/theta.py)
HISTORY = 1000  # the trailing points a model fits on and filters before each origin
# the statistical models known (statsforecast's names); a longer season is not modelled
MAX_SEASON = {"AutoETS": 24, "AutoARIMA": 12, "AutoTheta": 24}


class StatisticalError(ValueError):
    """Neither statistical model could be fitted."""


def _season(name: str, season_length: int) -> int:
    return season_length if season_length <= MAX_SEASON[name] else 1


def _model(name: str, season_length: int) -> Any:
    from statsforecast import models  # imported on use: numba compiles on import

    return getattr(models, name)(season_length=_season(name, season_length))


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
        """Where the points filtered before ``origin`` start: at most ``HISTORY`` back, in the
        seasonal phase of the fit (the filter restarts from the fitted initial states)."""
        earliest, season = max(0, origin - HISTORY), _season(name, self.season_length)
        return earliest + (self.fit_start - earliest) % season

    def paths(self, target: np.ndarray, origins: np.ndarray, steps: int) -> np.ndarray:
        """The mean forecast ``[B, steps]`` of the fitted models from each origin ``o`` (seeing
        ``target[:o]``), over the models whose forecast is finite.

        Raises:
            StatisticalError: no model gives a finite forecast at some origin.
        """
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
        """The networks' forecast and each fitted model's (:meth:`paths`), equally weighted."""
        n = len(self.fitted)
        return (np.asarray(networks, np.float64) + n * statistical) / (n + 1)

    def meta(self) -> dict[str, Any]:
        """What a forecaster folder records to fit the same models again."""
        return {"models": list(self.models), "fit_end": self.fit_end, "season_length": self.season_length}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], target: np.ndarray) -> Statistical:
        return cls(target, int(meta["fit_end"]), int(meta["season_length"]), tuple(meta["models"]))
