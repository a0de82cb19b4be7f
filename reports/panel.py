"""A panel's part of the report: the per-series table and the forecasts of chosen series.

A panel experiment scores one global model on many series (``best/per_series.csv``). The report
shows its aggregates in the metrics table, every series' own scores here (worst MASE ratio to
seasonal-naive first), and the test forecasts of three series picked by that ratio: the best,
the median and the worst, each drawn by :func:`reports.figures.draw_forecast` on that series'
rows of ``predictions.csv`` as if it were a single series.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from expdir import contract as c
from reports.collect import BestTrial, Ensemble, Experiment

__all__ = ["MAX_ROWS", "SeriesTable", "chosen_series", "one_series", "series_table"]

MAX_ROWS = 100  # rows of the per-series table; all of them are in per_series.csv
_COLUMNS = (("test points", "n_test_points"), ("MASE", "model_mase"), ("naive MASE", "naive_mase"),
            ("seasonal-naive MASE", "seasonal_naive_mase"), ("MASE ratio", "mase_ratio"),
            ("sMAPE %", "model_smape"), ("MAE", "model_mae"))


class SeriesTable(NamedTuple):
    """The per-series table: headers, rows (id, then one number per header) and how many
    series there are in all (the table shows at most :data:`MAX_ROWS`)."""

    headers: list[str]
    rows: list[tuple[str, list[float]]]
    n_series: int
    beaten: int  # series where the model's MASE is below seasonal-naive's


def _ratio(per_series: pd.DataFrame) -> pd.Series:
    """Each series' MASE over seasonal-naive's (NaN where seasonal-naive is exact)."""
    reference = per_series["seasonal_naive_mase"].where(per_series["seasonal_naive_mase"] > 0)
    return per_series["model_mase"] / reference


def series_table(best: BestTrial) -> SeriesTable | None:
    """The best trial's per-series scores, highest MASE ratio first (None for one series)."""
    if best.per_series is None:
        return None
    frame = best.per_series.assign(mase_ratio=_ratio(best.per_series))
    frame = frame.sort_values("mase_ratio", ascending=False, na_position="last", kind="stable")
    rows = [(str(r[c.SERIES_ID_COLUMN]), [float(r[col]) for _, col in _COLUMNS])
            for _, r in frame.head(MAX_ROWS).iterrows()]
    beaten = int((frame["model_mase"] < frame["seasonal_naive_mase"]).sum())
    return SeriesTable(["series", *(h for h, _ in _COLUMNS)], rows, len(frame), beaten)


def chosen_series(best: BestTrial) -> list[tuple[str, str]]:
    """(label, series id) of the best, median and worst series by MASE ratio to seasonal-naive
    (fewer when the panel has fewer series; each series once)."""
    if best.per_series is None or not len(best.per_series):
        return []
    ratio = _ratio(best.per_series).fillna(np.inf).to_numpy()
    order = np.argsort(ratio, kind="stable")
    ids = best.per_series[c.SERIES_ID_COLUMN].astype(str).to_numpy()
    picks = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
    out: list[tuple[str, str]] = []
    for label, i in picks.items():
        if ids[i] not in {sid for _, sid in out}:
            out.append((label, str(ids[i])))
    return out


def one_series(scored: Any, series_id: str) -> Any:
    """``scored`` (a :class:`BestTrial` or :class:`Ensemble`) with only ``series_id``'s rows of
    predictions.csv: what the single-series figures draw."""
    assert isinstance(scored, BestTrial | Ensemble)
    frame = scored.predictions
    return dataclasses.replace(scored, predictions=frame[frame[c.SERIES_ID_COLUMN] == series_id])


def series_scores(best: BestTrial, series_id: str) -> dict[str, float]:
    """One series' row of per_series.csv as numbers."""
    assert best.per_series is not None
    row = best.per_series[best.per_series[c.SERIES_ID_COLUMN] == series_id].iloc[0]
    return {col: float(row[col]) for col in c.PER_SERIES_NUMBER_COLUMNS if col in row}


def is_panel(exp: Experiment) -> bool:
    return exp.best is not None and exp.best.is_panel
