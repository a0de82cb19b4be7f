"""Load, validate and split a series.

``load(DataSpec)`` reads a built-in dataset, a CSV or a Parquet file, checks it and returns a
:class:`Dataset`: raw values ``[N, F]`` (target in column 0), chronological split sizes and the
training part's scaling statistics. Every problem is a one-line :class:`DataError` naming the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tunecast.model.datasets import BUILTINS
from tunecast.model.typecast import cast

Missing = Literal["error", "interpolate", "drop"]
MISSING_CHOICES = ("error", "interpolate", "drop")
MIN_TRAIN_WINDOWS = 1
PARQUET_SUFFIXES = (".parquet", ".pq")
PANEL_ID_COLUMN = "unique_id"  # the column naming each row's series in Nixtla's long format
DEFAULT_FRACTIONS = {"val": 0.15, "test": 0.2}  # of each series, when no size is given
SIZE_OPTIONS = ("val_size", "test_size")


class DataError(ValueError):
    """Bad input data. The message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class DataSpec:
    """Where the series comes from and how it is split.

    Args:
        source: a built-in name (``sine``, ``airline``, ``sunspots``, ``co2``) or a CSV/Parquet path.
        target: the column to forecast (default: the built-in's, or the only numeric column).
        time_column: optional time column; must be unique and sorted.
        features: extra input columns (the target is always an input too).
        season_length: season m for MASE and seasonal-naive (default: the built-in's, else 1).
        val_fraction: fraction of points for validation, before the test part (default 0.15).
        test_fraction: fraction of points at the end for testing (default 0.2).
        val_size: the validation part as a number of points instead of a fraction.
        test_size: the test part as a number of points (the last ``test_size`` of each
            series) instead of a fraction.
        missing: what to do with NaN/inf values: ``error``, ``interpolate`` or ``drop``.
    """

    source: str = "sine"
    target: str | None = None
    time_column: str | None = None
    features: tuple[str, ...] = ()
    season_length: int | None = None
    val_fraction: float | None = None  # None: DEFAULT_FRACTIONS, unless val_size is given
    test_fraction: float | None = None
    missing: Missing = "error"
    val_size: int | None = None
    test_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        for part in ("val", "test"):
            self._resolve_part(part)
        if self.val_fraction is not None and self.test_fraction is not None and \
                self.val_fraction + self.test_fraction >= 1.0:
            raise DataError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} "
                "leaves no training data: make their sum smaller than 1 (e.g. 0.15 + 0.2)"
            )
        if self.missing not in MISSING_CHOICES:
            raise DataError(f"missing must be one of {', '.join(MISSING_CHOICES)}, got {self.missing!r}")
        if self.season_length is not None and self.season_length < 1:
            raise DataError(f"season_length must be >= 1, got {self.season_length}")

    def _resolve_part(self, part: str) -> None:
        """Check ``<part>_fraction`` and ``<part>_size``; afterwards exactly one is set."""
        fraction, size = getattr(self, f"{part}_fraction"), getattr(self, f"{part}_size")
        if fraction is not None and size is not None:
            raise DataError(f"--{part}-size and --{part}-fraction both set: pass one ({part}_size "
                            f"{size} points, or {part}_fraction {fraction:g} of each series)")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise DataError(_size_message(f"{part}_size", size))
        if fraction is not None and not 0.0 < fraction < 1.0:
            raise DataError(f"{part}_fraction must lie in (0, 1), got {fraction}: pass e.g. 0.2")
        if fraction is None and size is None:
            object.__setattr__(self, f"{part}_fraction", DEFAULT_FRACTIONS[part])

    def split(self, n: int) -> tuple[int, int, int]:
        """``(n_train, n_val, n_test)`` of a series of ``n`` points (:func:`split_sizes`)."""
        return split_sizes(n, self.val_fraction, self.test_fraction, self.val_size, self.test_size)

    def min_points(self, window: int, horizon: int) -> int:
        """The shortest series these splits leave a window and a val/test forecast (:func:`min_length`)."""
        return min_length(window, horizon, self.val_fraction, self.test_fraction, self.val_size,
                          self.test_size)

    def splits_text(self) -> str:
        """The splits as error messages name them: ``val 0.15, test 0.2`` or ``val 0.15, test 24 points``."""
        val, test = ((f"{size} points" if size is not None else f"{fraction:g}")
                     for fraction, size in ((self.val_fraction, self.val_size),
                                            (self.test_fraction, self.test_size)))
        return f"val {val}, test {test}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        """Build a spec from a YAML/JSON/CLI dict: cast types, reject unknown keys."""
        types = {name: str(f.type) for name, f in cls.__dataclass_fields__.items()}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise DataError(f"unknown data option(s) {unknown}: valid ones are {sorted(types)}")
        values: dict[str, Any] = {}
        for key, value in d.items():
            kind = types[key].replace(" | None", "")
            if value is None and "None" in types[key]:
                values[key] = None
            elif key == "features":
                items = value.split(",") if isinstance(value, str) else value
                if not isinstance(items, list | tuple):
                    raise DataError(f"features must be a list of column names, got {value!r}")
                values[key] = tuple(_cast_option(key, "str", v).strip() for v in items)
            else:
                values[key] = _cast_option(key, "str" if kind == "Missing" else kind, value)
        return cls(**values)


def _cast_option(key: str, kind: str, value: Any) -> Any:
    try:
        return cast(kind, value)
    except ValueError:
        if key in SIZE_OPTIONS:
            raise DataError(_size_message(key, value)) from None
        raise DataError(f"data option {key} must be {kind}, got {value!r}") from None


def _size_message(key: str, value: Any) -> str:
    return (f"{key} must be a whole number of points >= 1, got {value!r}: pass e.g. "
            f"--{key.replace('_', '-')} 24")


@dataclass
class Dataset:
    """A validated series, split chronologically, with train-only scaling statistics."""

    name: str
    values: np.ndarray  # (N, F) float32, target in column 0, original units
    columns: tuple[str, ...]  # (F,) target first
    time: np.ndarray | None  # (N,) time labels as strings, or None
    season_length: int
    n_train: int
    n_val: int
    n_test: int
    mean: np.ndarray = field(repr=False)  # (F,) train mean
    std: np.ndarray = field(repr=False)  # (F,) train std (1 for constant features)
    spec: DataSpec = field(default_factory=DataSpec)

    @property
    def n_points(self) -> int:
        return int(self.values.shape[0])

    @property
    def target(self) -> str:
        return self.columns[0]

    @property
    def input_size(self) -> int:
        return int(self.values.shape[1])

    def scaled(self) -> np.ndarray:
        """Values standardised with the training part's statistics, ``(N, F)`` float32."""
        return ((self.values - self.mean) / self.std).astype(np.float32)

    def unscale_target(self, y: np.ndarray) -> np.ndarray:
        """Map target values from standardised back to original units (float64)."""
        return np.asarray(y, dtype=np.float64) * float(self.std[0]) + float(self.mean[0])

    def for_refit(self) -> Dataset:
        """The same series with every point in the training part (no validation, no test),
        standardised with the statistics of all points: what a final refit trains on."""
        mean, std = train_statistics(self.values.astype(np.float64))
        return replace(self, n_train=self.n_points, n_val=0, n_test=0, mean=mean, std=std)

    def summary(self) -> dict[str, Any]:
        """The spec plus the split sizes, for tunecast.json."""
        return data_summary(self.spec, self.name, self.columns, self.season_length, self.n_points,
                            n_train=self.n_train, n_val=self.n_val, n_test=self.n_test)


def data_summary(spec: DataSpec, name: str, columns: tuple[str, ...], season_length: int, n_points: int,
                 **sizes: int) -> dict[str, Any]:
    """What tunecast.json records of a series or a panel: spec, columns, size and split."""
    return {**spec.to_dict(), "name": name, "target": columns[0], "features": list(columns[1:]),
            "season_length": season_length, "n_points": n_points, **sizes}


def split_sizes(n: int, val_fraction: float | None, test_fraction: float | None,
                val_size: int | None = None, test_size: int | None = None) -> tuple[int, int, int]:
    """Chronological ``(n_train, n_val, n_test)``: a part is its ``size`` when given, else
    ``round(fraction * n)``; ``n_train`` is the rest (possibly < 2: callers refuse it)."""
    n_test = test_size if test_size is not None else round(_fraction(test_fraction) * n)
    n_val = val_size if val_size is not None else round(_fraction(val_fraction) * n)
    return n - n_val - n_test, n_val, n_test


def _fraction(value: float | None) -> float:
    if value is None:
        raise ValueError("a split part needs a fraction or a size")
    return value


def min_length(window: int, horizon: int, val_fraction: float | None, test_fraction: float | None,
               val_size: int | None = None, test_size: int | None = None) -> int:
    """The shortest series that leaves a training window and a val/test forecast."""
    check_sizes(horizon, val_size, test_size)
    n = window + horizon
    while True:
        n_train, n_val, n_test = split_sizes(n, val_fraction, test_fraction, val_size, test_size)
        if n_val >= horizon and n_test >= horizon and n_train >= window + horizon + MIN_TRAIN_WINDOWS - 1:
            return n
        n += 1


def check_sizes(horizon: int, val_size: int | None, test_size: int | None) -> None:
    """Raise :class:`DataError` if a val or test size (points) is shorter than the horizon."""
    for part, size in (("val", val_size), ("test", test_size)):
        if size is not None and size < horizon:
            raise DataError(f"{part}_size {size} is shorter than the horizon {horizon}: a forecast needs "
                            f"{horizon} points of the {part} part; pass --{part}-size {horizon} or more, "
                            "or a smaller horizon")


def check_window(data: Dataset, window: int, horizon: int) -> None:
    """Raise :class:`DataError` if the series is too short for this window and horizon."""
    if window < 1 or horizon < 1:
        raise DataError(f"window and horizon must be >= 1, got window={window}, horizon={horizon}")
    need = data.spec.min_points(window, horizon)
    if data.n_points < need:
        raise DataError(
            f"series '{data.name}' has {data.n_points} points, too short for window={window}, "
            f"horizon={horizon} and the splits ({data.spec.splits_text()}): it needs at least "
            f"{need} points; use a smaller window/horizon or a longer series"
        )


def load(spec: DataSpec) -> Dataset:
    """Read and validate the series described by ``spec``."""
    return series_from_frame(spec, *read(spec))


def series_from_frame(spec: DataSpec, frame: pd.DataFrame, name: str, target: str | None,
                      time_column: str | None, season: int) -> Dataset:
    """Validate the frame ``read`` gave for ``spec`` as one series (``load`` after reading)."""
    _refuse_panel(frame, name, {target, time_column, *spec.features}, time_column)
    target = target or _guess_target(frame, spec)
    columns = [target, *[f for f in spec.features if f != target]]
    require_columns(frame, [*columns, *([time_column] if time_column else [])], name)
    time = _check_time(frame[time_column], time_column) if time_column else None
    numeric = pd.DataFrame({c: _numeric(frame[c], c) for c in columns})
    numeric, time = _handle_missing(numeric, time, spec.missing)
    values = numeric.to_numpy(dtype=np.float64)
    n_train, n_val, n_test = spec.split(len(values))
    if n_train < 2 or n_val < 1 or n_test < 1:
        raise DataError(
            f"series '{name}' has {len(values)} points, too short for the splits ({spec.splits_text()}): "
            f"it needs at least {spec.min_points(1, 1)} points (and more for a useful window)"
        )
    check_season(season, n_train + n_val, name, spec)
    train = values[:n_train]
    if train[:, 0].std() == 0.0:
        raise DataError(
            f"target '{target}' is constant ({train[0, 0]:g}) over the training part: there is "
            "nothing to forecast; choose another column or a longer series"
        )
    mean, std = train_statistics(train)
    return Dataset(
        name=name,
        values=values.astype(np.float32),
        columns=tuple(columns),
        time=time,
        season_length=season,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        mean=mean,
        std=std,
        spec=spec,
    )


def max_season_length(n_before_test: int) -> int:
    """Largest season m the split allows: MASE's scale needs more than m points before the test."""
    return n_before_test - 1


def check_season(season: int, n_before_test: int, name: str, spec: DataSpec) -> None:
    limit = max_season_length(n_before_test)
    if season > limit:
        raise DataError(
            f"season length {season} is too long for series '{name}': only {n_before_test} points "
            f"come before the test part ({spec.splits_text()}), "
            f"so the largest allowed is {limit}; pass --season-length {limit} or less, or a longer series"
        )


def train_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column (1 for a constant column), float32."""
    mean, std = values.mean(axis=0), values.std(axis=0)
    std[std == 0.0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def read(spec: DataSpec, frame: pd.DataFrame | None = None
         ) -> tuple[pd.DataFrame, str, str | None, str | None, int]:
    """Read the raw frame (or take ``frame``); resolve time column, season length and target
    (None when neither the spec nor the built-in names it: the caller guesses it)."""
    if frame is not None:
        return frame, Path(spec.source).name, spec.target, spec.time_column, spec.season_length or 1
    builtin = BUILTINS.get(spec.source)
    if builtin is not None:
        frame = pd.read_csv(builtin.path)
        target = spec.target or builtin.target
        time_column = spec.time_column or builtin.time_column
        season = spec.season_length or builtin.season_length
        return frame, builtin.name, target, time_column, season
    path = Path(spec.source).expanduser()
    if not path.exists():
        raise DataError(
            f"unknown data source '{spec.source}': no such file, and not a built-in dataset "
            f"({', '.join(sorted(BUILTINS))})"
        )
    if path.is_dir():
        raise DataError(f"data source '{spec.source}' is a directory: pass a CSV or Parquet file")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        kind = "Parquet" if parquet else "CSV"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read '{spec.source}' as {kind}: {reason}") from None
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"data file '{spec.source}' has no rows: it needs a header and values")
    return frame, path.name, spec.target, spec.time_column, spec.season_length or 1


def _guess_target(frame: pd.DataFrame, spec: DataSpec) -> str:
    skip = {spec.time_column, *spec.features}
    candidates = [c for c in frame.columns if c not in skip]
    numeric = [c for c in candidates if pd.api.types.is_numeric_dtype(frame[c])]
    for choice in (candidates, numeric):
        if len(choice) == 1:
            return str(choice[0])
    raise DataError(
        f"cannot tell which column of '{spec.source}' to forecast: pass --target "
        f"(columns: {', '.join(map(str, frame.columns))})"
    )


def _refuse_panel(frame: pd.DataFrame, name: str, skip: set[str | None], time_column: str | None) -> None:
    """Refuse a long-format panel read as one series. ``skip``: columns that are never the id."""
    id_column = _panel_id_column(frame, skip, time_column)
    if id_column is None:
        return
    ids = frame[id_column].dropna()
    first = ids.iloc[0]
    first = first.item() if isinstance(first, np.generic) else first  # 'A', or 7 for numeric ids
    raise DataError(
        f"'{name}' looks like a long-format panel ({ids.nunique()} series in column '{id_column}') "
        f"read as one series: pass --id-column {id_column} to search all series with one model, or "
        f"keep one series with pandas, df[df['{id_column}'] == {first!r}], and save that to its own file"
    )


def _panel_id_column(frame: pd.DataFrame, skip: set[str | None], time_column: str | None) -> str | None:
    """The column naming each row's series, if ``frame`` is a panel: ``unique_id`` with several
    ids, or a repeating text column that makes the repeated timestamps unique (never a row key,
    a column of times, or anything when there is no time column)."""
    if PANEL_ID_COLUMN in frame.columns and PANEL_ID_COLUMN not in skip and _repeats(frame[PANEL_ID_COLUMN]):
        return PANEL_ID_COLUMN
    if time_column is None or time_column not in frame.columns or frame[time_column].is_unique:
        return None
    for c in frame.columns:
        column = frame[c]
        if (c in skip or pd.api.types.is_numeric_dtype(column)
                or pd.api.types.is_datetime64_any_dtype(column) or not _repeats(column)):
            continue
        if not frame.duplicated([c, time_column]).any() and not _all_times(column):
            return str(c)
    return None


def _repeats(column: pd.Series) -> bool:
    """More than one label, and some label on more than one row (so not a row key)."""
    labels = column.dropna()
    return bool(labels.nunique() > 1 and not labels.is_unique)


def _all_times(column: pd.Series) -> bool:
    """Every label parses as a date or time of day (``00:00``): part of the time, not an id."""
    labels = pd.Series(column.dropna().unique()).astype(str)
    return bool(pd.to_datetime(labels, errors="coerce", format="mixed").notna().all())


def require_columns(frame: pd.DataFrame, wanted: list[str], name: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(repr(c) for c in missing)} not found in '{name}': "
            f"the columns are {', '.join(map(str, frame.columns))}{_separator_hint(frame)}"
        )


def _separator_hint(frame: pd.DataFrame) -> str:
    """A hint when a CSV was read as one column because it is separated by something else."""
    if len(frame.columns) != 1:
        return ""
    header = str(frame.columns[0])
    for sep, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if sep in header:
            return f" (the header looks separated by {label}, not commas: save the file with commas)"
    return ""


def _numeric(column: pd.Series, name: str) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        hint = _separator_hint(column.to_frame())
        raise DataError(
            f"column '{name}' has {len(rows)} non-numeric value(s) (first at row {rows[0]}: "
            f"{column.iloc[rows[0]]!r}): clean the data or choose another column{hint}"
        )
    return converted.astype(np.float64)


def refuse_rows(bad: pd.Series, column: pd.Series, problem: str, fix: str) -> None:
    """A DataError naming how many rows are ``bad`` and the first of them, if any is."""
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{problem.format(n=int(bad.sum()))} (first at row {row}: "
                        f"{column.iloc[row]!r}): {fix}")


def _check_time(column: pd.Series, name: str) -> np.ndarray:
    """Check the time column is unique and increasing; return its labels as strings."""
    if pd.api.types.is_numeric_dtype(column):
        parsed: pd.Series = column
    else:
        parsed = pd.to_datetime(column, errors="coerce")
        refuse_rows(parsed.isna(), column, f"time column '{name}' has {{n}} value(s) that are not "
                     "dates", "fix them or drop --time-column")
    refuse_rows(parsed.duplicated(), column, f"time column '{name}' has {{n}} duplicate "
                 "timestamp(s)", "aggregate or remove the duplicates")
    order = parsed.to_numpy()
    decreasing = np.flatnonzero(order[1:] < order[:-1])
    if len(decreasing):
        row = int(decreasing[0]) + 1
        raise DataError(
            f"time column '{name}' is not sorted (row {row}: {column.iloc[row]!s} comes after "
            f"{column.iloc[row - 1]!s}): sort the data by '{name}'"
        )
    return column.astype(str).to_numpy()


def _handle_missing(
    numeric: pd.DataFrame, time: np.ndarray | None, missing: Missing
) -> tuple[pd.DataFrame, np.ndarray | None]:
    numeric = numeric.replace([np.inf, -np.inf], np.nan)
    bad = numeric.isna()
    if not bad.any().any():
        return numeric, time
    if missing == "error":
        column = str(bad.sum().idxmax())
        rows = np.flatnonzero(bad[column].to_numpy())
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise DataError(
            f"column '{column}' has {len(rows)} missing or infinite value(s) (rows {shown}): "
            "fix the data, or pass --missing interpolate or --missing drop"
        )
    if missing == "drop":
        keep = ~bad.any(axis=1).to_numpy()
        return numeric[keep].reset_index(drop=True), None if time is None else time[keep]
    if bad.all().any():
        column = str(bad.all().idxmax())
        raise DataError(f"column '{column}' has no finite values: nothing to interpolate from")
    return numeric.interpolate(limit_direction="both"), time

