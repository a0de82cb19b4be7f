"""Low-level readers for the experiment directory: every failure becomes a ReportError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunecast.expdir import one_line

__all__ = ["ReportError", "read_attention", "read_csv", "read_json"]

_FIX = "restore it from the experiment's original location or re-run the search"


class ReportError(ValueError):
    """The experiment directory (or the output path) cannot give a report.

    The message is one line that names the problem and the fix; the CLI prints it as
    ``error: <message>`` and exits with status 2.
    """


def read_json(exp_dir: Path, name: str) -> dict[str, Any]:
    """Read ``exp_dir/name`` as a JSON object.

    Raises:
        ReportError: the file is missing, unreadable, not JSON or not an object.
    """
    file = exp_dir / name
    if not file.is_file():
        raise ReportError(f"{file} is missing; {_FIX}")
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read {file} ({one_line(exc, 200)}); {_FIX}") from exc
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"corrupt JSON in {file} ({exc.msg} at line {exc.lineno}); {_FIX}"
        ) from exc
    if not isinstance(value, dict):
        raise ReportError(f"corrupt JSON in {file} (expected an object); {_FIX}")
    return value


def read_csv(
    exp_dir: Path,
    name: str,
    *,
    text: tuple[str, ...],
    numbers: tuple[str, ...],
    required: tuple[str, ...],
    notes: list[str],
) -> pd.DataFrame:
    """Read ``exp_dir/name`` with typed columns.

    ``text`` columns are strings with missing values as ``""``; ``numbers`` columns are float64
    with missing values as NaN. Optional columns that are absent are added (and noted once).

    Raises:
        ReportError: the file is missing, unreadable, lacks a required column, or holds a value
            that is not a number in a number column.
    """
    file = exp_dir / name
    if not file.is_file():
        raise ReportError(f"{file} is missing; {_FIX}")
    try:
        frame = pd.read_csv(file, dtype={c: str for c in text}, keep_default_na=False,
                            na_values=[""], encoding="utf-8")
    except pd.errors.EmptyDataError as exc:
        raise ReportError(f"corrupt CSV {file} (the file is empty); {_FIX}") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise ReportError(f"corrupt CSV {file} ({one_line(exc, 200)}); {_FIX}") from exc
    lacking = [c for c in required if c not in frame.columns]
    if lacking:
        raise ReportError(f"corrupt CSV {file} (no column {', '.join(lacking)}); {_FIX}")
    absent = [c for c in (*text, *numbers) if c not in frame.columns]
    if absent:
        notes.append(f"{name} has no column {', '.join(absent)}; shown as empty")
    for column in text:
        values = frame[column] if column in frame.columns else pd.Series([""] * len(frame))
        frame[column] = values.fillna("").astype(str).to_numpy(dtype=object)
    for column in numbers:
        if column not in frame.columns:
            frame[column] = np.nan
            continue
        try:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise ReportError(
                f"corrupt CSV {file} (column {column} has a value that is not a number: "
                f"{one_line(exc, 200)}); {_FIX}"
            ) from exc
    return frame


def read_attention(exp_dir: Path, name: str) -> np.ndarray:
    """Read a 2-D float array saved with ``numpy.save`` (no pickles).

    Raises:
        ReportError: the file is missing, not a .npy array, or not 2-D.
    """
    file = exp_dir / name
    try:
        array = np.load(file, allow_pickle=False)
    except FileNotFoundError as exc:
        raise ReportError(f"{file} is missing; {_FIX}") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise ReportError(f"corrupt array {file} ({one_line(exc, 200)}); {_FIX}") from exc
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "fiu":
        raise ReportError(
            f"corrupt array {file} (expected numbers shaped [test windows, window], got "
            f"{getattr(array, 'shape', '?')}); {_FIX}"
        )
    return array.astype(np.float64)
