"""Many series in one dataset: load a long-format panel and split each series by time.

``load_panel(PanelSpec)`` reads long format (Nixtla's ``unique_id``/``ds``/``y`` work without
options) and returns a :class:`Panel`: every series concatenated into one ``[N, F]`` array with
per-series offsets, splits and scaling statistics, for one global model. Each series is split
like a single series (:func:`model.data.split_sizes`), so no test point is seen in training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tunecast.model.data import (
    DataError,
    Dataset,
    DataSpec,
    check_season,
    data_summary,
    read,
    refuse_rows,
    require_columns,
    series_from_frame,
    train_statistics,
)
from tunecast.model.datasets import BUILTINS
from tunecast.model.metrics import mase_scale

ID_COLUMN, TIME_COLUMN, TARGET = "unique_id", "ds", "y"  # Nixtla's long format


@dataclass(frozen=True)
class PanelSpec(DataSpec):
    """Where the panel comes from and how each series is split.

    The :class:`DataSpec` fields apply to each series; ``time_column`` and ``target`` default to
    ``ds`` and ``y`` when present. Each series is sorted by time (else kept in file order).

    Args:
        id_column: the column naming each row's series.
        min_length: drop the series with fewer points (listed in ``Panel.dropped``) instead of
            refusing the panel; None refuses any series too short for the splits.
    """

    source: str = ""
    id_column: str = ID_COLUMN
    min_length: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_length is not None and self.min_length < 1:
            raise DataError(f"min_length must be >= 1, got {self.min_length}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PanelSpec:
        spec = super().from_dict(d)
        assert isinstance(spec, PanelSpec)
        return spec


@dataclass
class Panel:
    """Validated series, each split by time, concatenated into one array.

    Series ``s`` occupies rows ``offsets[s] : offsets[s] + lengths[s]`` of ``values``, in time
    order, split ``n_train[s]``, ``n_val[s]``, ``n_test[s]``. Plain numpy arrays only, so trials
    map the panel from Ray's object store without copying.
    """

    name: str
    values: np.ndarray  # (N, F) float32, original units, target in column 0
    columns: tuple[str, ...]  # (F,) target first
    ids: np.ndarray  # (S,) str, sorted
    offsets: np.ndarray  # (S,) int64, first row of each series
    lengths: np.ndarray  # (S,) int64
    n_train: np.ndarray  # (S,) int64
    n_val: np.ndarray  # (S,) int64
    n_test: np.ndarray  # (S,) int64
    mean: np.ndarray = field(repr=False)  # (S, F) float32, each series' train mean
    std: np.ndarray = field(repr=False)  # (S, F) float32, train std (1 for a constant column)
    time: np.ndarray | None = field(repr=False)  # (N,) datetime64 or numbers, or None
    season_length: int
    dropped: tuple[str, ...]  # ids of series dropped for spec.min_length
    spec: PanelSpec
    _scaled: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def n_points(self) -> int:
        return int(self.values.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.values.shape[1])

    @property
    def target(self) -> str:
        return self.columns[0]

    def series_index(self) -> np.ndarray:
        """The series of every row, ``(N,)`` int64."""
        return np.repeat(np.arange(self.n_series), self.lengths)

    def scaled(self) -> np.ndarray:
        """Values standardised per series, ``(N, F)`` float32; cached (scale before ``ray.put``)."""
        if self._scaled is None:
            rows = self.series_index()
            self._scaled = ((self.values - self.mean[rows]) / self.std[rows]).astype(np.float32)
        return self._scaled

    def unscale_target(self, series: int | np.ndarray, y: np.ndarray) -> np.ndarray:
        """Target values ``y`` (leading axes matching ``series``) back to original units."""
        s = np.asarray(series)
        y = np.asarray(y, dtype=np.float64)
        shape = s.shape + (1,) * (y.ndim - s.ndim)
        std = self.std[s, 0].astype(np.float64).reshape(shape)
        return y * std + self.mean[s, 0].astype(np.float64).reshape(shape)

    def series(self, s: int) -> Dataset:
        """Series ``s`` alone, as the single-series code sees one (values are a view)."""
        o, n = int(self.offsets[s]), int(self.lengths[s])
        time = None if self.time is None else pd.Series(self.time[o : o + n]).astype(str).to_numpy()
        return Dataset(
            name=str(self.ids[s]),
            values=self.values[o : o + n],
            columns=self.columns,
            time=time,
            season_length=self.season_length,
            n_train=int(self.n_train[s]),
            n_val=int(self.n_val[s]),
            n_test=int(self.n_test[s]),
            mean=self.mean[s],
            std=self.std[s],
            spec=self.spec,
        )

    def describe(self) -> str:
        """One line for the console: how many series, their lengths, and what was dropped."""
        line = (f"panel: {self.n_series} series in column '{self.spec.id_column}', {self.n_points:,} points "
                f"({int(self.lengths.min())} to {int(self.lengths.max())} per series)")
        if self.dropped:
            line += (f"; dropped {len(self.dropped)} series shorter than --min-length "
                     f"{self.spec.min_length}")
        return line

    def summary(self) -> dict[str, Any]:
        """The spec plus the panel's size and splits, for tunecast.json."""
        return data_summary(
            self.spec, self.name, self.columns, self.season_length, self.n_points,
            n_series=self.n_series, n_dropped=len(self.dropped), shortest=int(self.lengths.min()),
            longest=int(self.lengths.max()), n_train=int(self.n_train.sum()), n_val=int(self.n_val.sum()),
            n_test=int(self.n_test.sum()),
        )


class _Rows(NamedTuple):
    """The panel's rows while it is validated, sorted by (series, time)."""

    values: np.ndarray  # (N, F) float64
    codes: np.ndarray  # (N,) int64 series index into ids
    ids: np.ndarray  # (S,) str
    time: np.ndarray | None  # (N,)
    rows: np.ndarray  # (N,) the row of the file each came from (for messages)

    def take(self, keep: np.ndarray) -> _Rows:
        time = None if self.time is None else self.time[keep]
        return self._replace(values=self.values[keep], codes=self.codes[keep], time=time,
                             rows=self.rows[keep])


def load_any(spec: DataSpec, frame: pd.DataFrame | None = None) -> Dataset | Panel:
    """A panel for a :class:`PanelSpec` or a file in Nixtla's long format, else one series.
    ``frame``: the data in memory (``spec.source`` then names its file)."""
    if isinstance(spec, PanelSpec):
        return load_panel(spec, frame)
    frame, name, target, time_column, season = read(spec, frame)
    if spec.source not in BUILTINS and _is_nixtla_panel(frame, spec):
        return panel_from_frame(frame, as_panel_spec(spec), name)
    return series_from_frame(spec, frame, name, target, time_column, season)


def as_panel_spec(spec: DataSpec) -> PanelSpec:
    """``spec`` read as a panel with Nixtla's id column (a PanelSpec stays as it is)."""
    if isinstance(spec, PanelSpec):
        return spec
    return PanelSpec(**{f.name: getattr(spec, f.name) for f in fields(DataSpec)})


def data_spec(d: dict[str, Any]) -> DataSpec:
    """The spec a YAML/JSON/CLI dict describes: a :class:`PanelSpec` when it names an id column
    or a minimum length."""
    if "id_column" in d or "min_length" in d:
        return PanelSpec.from_dict(d)
    return DataSpec.from_dict(d)


def _is_nixtla_panel(frame: pd.DataFrame, spec: DataSpec) -> bool:
    """A ``unique_id`` column (not target, time or feature) naming several repeated series."""
    if ID_COLUMN not in frame.columns or ID_COLUMN in {spec.target, spec.time_column, *spec.features}:
        return False
    ids = frame[ID_COLUMN].dropna()
    return bool(ids.nunique() > 1 and not ids.is_unique)


def load_panel(spec: PanelSpec, frame: pd.DataFrame | None = None) -> Panel:
    """Read and validate the long-format panel described by ``spec`` (or in ``frame``)."""
    if not spec.source:
        raise DataError("a panel needs a data file: pass --data FILE (one row per series and time step)")
    frame, name, *_ = read(spec, frame)  # the target is resolved by the panel's rules
    return panel_from_frame(frame, spec, name)


def panel_from_frame(frame: pd.DataFrame, spec: PanelSpec, name: str = "frame") -> Panel:
    """Validate a long-format frame and build the panel."""
    if frame.empty:
        raise DataError(f"data '{name}' has no rows: it needs a header and values")
    time_column, columns = _resolve_columns(frame, spec, name)
    rows = _sorted_rows(frame, spec.id_column, time_column, columns)
    rows = _fill_missing(rows, columns, spec.missing)
    rows, dropped = _drop_short(rows, spec, name)
    spec = dataclasses.replace(spec, time_column=time_column)  # the one used (``ds`` when present)
    return _build(rows, columns, spec, name, dropped)


def _resolve_columns(frame: pd.DataFrame, spec: PanelSpec, name: str) -> tuple[str | None, list[str]]:
    """The time column (``ds`` when present) and the input columns, target first."""
    names = [str(c) for c in frame.columns]
    time_column = spec.time_column or (TIME_COLUMN if TIME_COLUMN in names else None)
    if spec.id_column not in names:
        raise DataError(_no_id_message(frame, spec, time_column, name))
    target = spec.target or _panel_target(frame, spec, time_column, name)
    columns = [target, *[f for f in spec.features if f != target]]
    require_columns(frame, [*columns, *([time_column] if time_column else [])], name)
    return time_column, columns


def _no_id_message(frame: pd.DataFrame, spec: PanelSpec, time_column: str | None, name: str) -> str:
    """Wide format (one column per series) gets the melt that converts it; else the columns."""
    numeric = [str(c) for c in frame.columns
               if c != time_column and pd.api.types.is_numeric_dtype(frame[c])]
    labels = [str(c) for c in frame.columns if str(c) not in numeric]  # the time, or an id
    # wide: several value columns and one row per time step (no label repeats, so none is an id)
    if len(numeric) >= 2 and all(frame[c].is_unique for c in labels):
        keep = time_column or (labels[0] if labels else None)
        id_vars = f"id_vars=['{keep}'], " if keep else ""
        shown = ", ".join(numeric[:4]) + (", ..." if len(numeric) > 4 else "")
        return (
            f"'{name}' looks like wide format (one column per series: {shown}) but a panel is read "
            f"in long format (one row per series and time step): convert it with pandas, "
            f"df.melt({id_vars}var_name='{ID_COLUMN}', value_name='{TARGET}'), and save that"
        )
    return (
        f"id column '{spec.id_column}' not found in '{name}': the columns are "
        f"{', '.join(map(str, frame.columns))}; pass --id-column with the column naming each series"
    )


def _panel_target(frame: pd.DataFrame, spec: PanelSpec, time_column: str | None, name: str) -> str:
    """``y`` when present, else the only numeric column that is not the id, time or a feature."""
    if TARGET in frame.columns:
        return TARGET
    skip = {spec.id_column, time_column, *spec.features}
    numeric = [str(c) for c in frame.columns
               if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]
    if len(numeric) == 1:
        return numeric[0]
    raise DataError(
        f"cannot tell which column of '{name}' to forecast: pass --target "
        f"(columns: {', '.join(map(str, frame.columns))})"
    )


def _sorted_rows(frame: pd.DataFrame, id_column: str, time_column: str | None,
                 columns: list[str]) -> _Rows:
    """Ids, times and numeric values, sorted by (series, time); refuses bad or duplicate rows."""
    raw = frame[id_column]
    refuse_rows(raw.isna(), raw, f"id column '{id_column}' has {{n}} empty value(s)",
                 "give every row the id of its series")
    ids = raw.astype(str).to_numpy()  # (N,)
    time = _parse_time(frame[time_column], time_column) if time_column else None
    values = np.column_stack([_numeric(frame[c], c, ids) for c in columns])  # (N, F)
    codes, uniques = pd.factorize(ids, sort=True)
    # stable: without a time column each series keeps the file's row order
    order = np.lexsort((time, codes)) if time is not None else np.argsort(codes, kind="stable")
    rows = _Rows(values, codes.astype(np.int64), np.asarray(uniques, dtype=str), time,
                 np.arange(len(frame))).take(order)
    if time_column is not None:
        _refuse_duplicates(rows, frame[time_column])
    return rows


def _parse_time(column: pd.Series, name: str) -> np.ndarray:
    """Times as numbers or naive datetime64 (UTC for zoned ones), so they sort as numbers."""
    if pd.api.types.is_numeric_dtype(column):
        parsed: pd.Series = column
    else:
        parsed = pd.to_datetime(column, errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    refuse_rows(parsed.isna(), column, f"time column '{name}' has {{n}} missing value(s) or "
                 "value(s) that are not dates", "fix them or drop --time-column")
    return parsed.to_numpy()


def _numeric(column: pd.Series, name: str, ids: np.ndarray) -> np.ndarray:
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column '{name}' is non-numeric in {len(np.unique(ids[bad]))} series (series "
            f"'{ids[first]}', row {first}: {column.iloc[first]!r}): clean those values or remove the series"
        )
    return converted.to_numpy(dtype=np.float64)


def _refuse_duplicates(rows: _Rows, column: pd.Series) -> None:
    assert rows.time is not None
    same = (rows.codes[1:] == rows.codes[:-1]) & (rows.time[1:] == rows.time[:-1])
    if same.any():
        i = int(np.flatnonzero(same)[0]) + 1
        row = int(rows.rows[i])
        raise DataError(
            f"{int(same.sum())} duplicate (id, time) row(s) (first at row {row}: series "
            f"'{rows.ids[rows.codes[i]]}' has two rows at {column.iloc[row]!s}): aggregate or "
            "remove the duplicates"
        )


def _fill_missing(rows: _Rows, columns: list[str], missing: str) -> _Rows:
    """NaN/inf per ``missing``; interpolation stays within each series (never across two)."""
    bad = ~np.isfinite(rows.values)
    if not bad.any():
        return rows
    j = int(bad.sum(axis=0).argmax())
    at = np.flatnonzero(bad[:, j])
    if missing == "error":
        first = int(at[np.argmin(rows.rows[at])])
        raise DataError(
            f"column '{columns[j]}' has {len(at)} missing or infinite value(s) in "
            f"{len(np.unique(rows.codes[at]))} series (first: series '{rows.ids[rows.codes[first]]}', "
            f"row {rows.rows[first]}): fix the data, or pass --missing interpolate or --missing drop"
        )
    if missing == "drop":  # a series left with no rows is too short, refused or dropped later
        return rows.take(~bad.any(axis=1))
    finite = np.stack([np.bincount(rows.codes, weights=(~b).astype(np.float64), minlength=len(rows.ids))
                       for b in bad.T], axis=1)  # (S, F) finite values per series and column
    if (finite == 0).any():
        s, j = (int(v[0]) for v in np.nonzero(finite == 0))
        raise DataError(f"column '{columns[j]}' of series '{rows.ids[s]}' has no finite values: "
                        "nothing to interpolate from; fix or remove that series")
    frame = pd.DataFrame(np.where(bad, np.nan, rows.values))
    filled = frame.groupby(rows.codes).transform(lambda g: g.interpolate(limit_direction="both"))
    return rows._replace(values=filled.to_numpy(dtype=np.float64))


def _drop_short(rows: _Rows, spec: PanelSpec, name: str) -> tuple[_Rows, tuple[str, ...]]:
    """Drop the series shorter than ``spec.min_length`` (and renumber the rest)."""
    lengths = np.bincount(rows.codes, minlength=len(rows.ids))
    if spec.min_length is None:
        return rows, ()
    short = lengths < spec.min_length
    if short.all():
        raise DataError(
            f"all {len(lengths)} series of '{name}' have fewer than --min-length {spec.min_length} "
            f"points (the longest has {lengths.max()}): pass a smaller --min-length"
        )
    renumber = np.cumsum(~short) - 1
    kept = rows.take(~short[rows.codes])
    return kept._replace(codes=renumber[kept.codes], ids=rows.ids[~short]), tuple(rows.ids[short])


def too_short(ids: np.ndarray, lengths: np.ndarray, fails: np.ndarray, need: int, what: str,
               fix: str) -> DataError:
    """An error naming the shortest failing series, the minimum, and a --min-length that helps."""
    i = int(np.flatnonzero(fails)[np.argmin(lengths[fails])])
    below = max(need, int(lengths[fails].max()) + 1)
    n_drop = int((lengths < below).sum())
    if n_drop < len(lengths):
        fix += f", or pass --min-length {below} to drop the {n_drop} series shorter than that"
    return DataError(f"series '{ids[i]}' has {lengths[i]} points, too short for {what}: each series "
                     f"needs at least {need} points; {fix}")


def _build(rows: _Rows, columns: list[str], spec: PanelSpec, name: str, dropped: tuple[str, ...]) -> Panel:
    """Split each series, check it can be scored, and compute its training statistics."""
    lengths = np.bincount(rows.codes, minlength=len(rows.ids)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    splits = [spec.split(int(n)) for n in lengths]
    n_train, n_val, n_test = np.array(splits, dtype=np.int64).reshape(-1, 3).T
    fails = (n_train < 2) | (n_val < 1) | (n_test < 1)
    if fails.any():
        what = f"the splits ({spec.splits_text()})"
        raise too_short(rows.ids, lengths, fails, spec.min_points(1, 1), what, "remove it")
    season = spec.season_length or 1
    n_pre = n_train + n_val
    shortest = int(np.argmin(n_pre))
    check_season(season, int(n_pre[shortest]), str(rows.ids[shortest]), spec)
    for s in range(len(lengths)):
        insample = rows.values[offsets[s] : offsets[s] + n_pre[s], 0]
        if mase_scale(insample, season) == 0.0:
            raise DataError(
                f"series '{rows.ids[s]}' of '{columns[0]}' never changes before its test part "
                f"(seasonal-naive at lag {season} is exact there): its MASE is undefined and there "
                "is nothing to learn; remove that series"
            )
    stats = [train_statistics(rows.values[o : o + t]) for o, t in zip(offsets, n_train, strict=True)]
    return Panel(
        name=name,
        values=rows.values.astype(np.float32),
        columns=tuple(columns),
        ids=rows.ids,
        offsets=offsets,
        lengths=lengths,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        mean=np.stack([m for m, _ in stats]),
        std=np.stack([d for _, d in stats]),
        time=rows.time,
        season_length=season,
        dropped=dropped,
        spec=spec,
    )
