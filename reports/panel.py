"""A panel's part of the report: the per-series table and the forecasts of chosen series.

Series are picked by MASE ratio to seasonal-naive (best, median, worst) or named by the user
(``--series``), and drawn by the single-series figures on their rows of ``predictions.csv``
and ``attention.npy``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tunecast.expdir import contract as c
from tunecast.reports._files import ReportError
from tunecast.reports.collect import BestTrial, Ensemble, Experiment

__all__ = ["MAX_ROWS", "SeriesTable", "check_series", "chosen_series", "one_series", "series_table",
           "shown_series"]

MAX_ROWS = 100  # rows of the per-series table; all of them are in per_series.csv
_COLUMNS = (("test points", "n_test_points"), ("MASE", "model_mase"), ("naive MASE", "naive_mase"),
            ("seasonal-naive MASE", "seasonal_naive_mase"), ("MASE ratio", "mase_ratio"),
            ("sMAPE %", "model_smape"), ("MAE", "model_mae"))


class SeriesTable(NamedTuple):
    """The per-series table: headers, rows (id, numbers; at most :data:`MAX_ROWS`), series count."""

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
    """(label, series id) of the best, median and worst series by MASE ratio (each once)."""
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


def check_series(exp: Experiment, wanted: list[str]) -> None:
    """Refuse ``--series`` on what cannot show it: a single series, no best trial, unknown ids.

    Raises:
        ReportError: one line naming the problem, and for an unknown id a few valid ones.
    """
    if not wanted:
        return
    if exp.best is None:
        raise ReportError(f"--series: {exp.path} has no evaluated best trial ({c.BEST_DIR}/), so there "
                          "are no series forecasts to show; drop --series")
    if not exp.best.is_panel:
        raise ReportError(f"--series needs a panel of many series, but {exp.path} is a single-series "
                          "experiment; drop --series")
    if exp.best.per_series is None:
        raise ReportError(f"--series: {exp.path}/{c.BEST_DIR}/{c.PER_SERIES_FILE} could not be read, so "
                          "the series cannot be picked; re-run the search, or drop --series")
    ids = exp.best.per_series[c.SERIES_ID_COLUMN].astype(str).tolist()
    unknown = [sid for sid in dict.fromkeys(wanted) if sid not in set(ids)]
    if unknown:
        some = ", ".join(ids[:5]) + (f", … ({len(ids)} in all, listed in {c.BEST_DIR}/{c.PER_SERIES_FILE})"
                                     if len(ids) > 5 else "")
        raise ReportError(f"--series: no series {', '.join(repr(u) for u in unknown)} in {exp.path}; "
                          f"its series are {some}")


def shown_series(best: BestTrial, named: list[str] | None = None) -> list[tuple[str, str]]:
    """(label, series id) of every series the report draws: the best, median and worst by MASE
    ratio, then each named one (label "named") not already among them."""
    out = chosen_series(best)
    for sid in dict.fromkeys(named or []):
        if sid not in {s for _, s in out}:
            out.append(("named", sid))
    return out


def one_series(scored: Any, series_id: str) -> Any:
    """``scored`` (a :class:`BestTrial` or :class:`Ensemble`) cut to ``series_id``'s rows of
    predictions.csv (and attention.npy, when indexed)."""
    assert isinstance(scored, BestTrial | Ensemble)
    frame = scored.predictions
    scored = dataclasses.replace(scored, predictions=frame[frame[c.SERIES_ID_COLUMN] == series_id])
    if isinstance(scored, BestTrial) and scored.attention_index is not None:
        index = scored.attention_index
        row = index[index[c.SERIES_ID_COLUMN] == series_id]
        first, count = (int(row["first_row"].iloc[0]), int(row["n_rows"].iloc[0])) if len(row) else (0, 0)
        scored = dataclasses.replace(scored, attention=scored.attention[first:first + count])
    return scored


def has_series_attention(best: BestTrial) -> bool:
    """Whether the attention of single series can be shown (attention_index.csv was read)."""
    return best.attention_index is not None


def series_scores(best: BestTrial, series_id: str) -> dict[str, float]:
    """One series' row of per_series.csv as numbers."""
    assert best.per_series is not None
    row = best.per_series[best.per_series[c.SERIES_ID_COLUMN] == series_id].iloc[0]
    return {col: float(row[col]) for col in c.PER_SERIES_NUMBER_COLUMNS if col in row}


def is_panel(exp: Experiment) -> bool:
    return exp.best is not None and exp.best.is_panel
