"""Built-in datasets: small CSV files shipped with the package (sources in SOURCES.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASET_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Builtin:
    """A built-in series: its file, columns and season length."""

    name: str
    file: str
    target: str
    time_column: str
    season_length: int
    description: str

    @property
    def path(self) -> Path:
        return DATASET_DIR / self.file


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("sine", "sine.csv", "value", "t", 1, "the article's sin(linspace(0, 50, 1000))"),
        Builtin(
            "airline",
            "airline.csv",
            "passengers",
            "month",
            12,
            "monthly airline passengers 1949-1960 (thousands)",
        ),
        Builtin(
            "sunspots",
            "sunspots.csv",
            "sunactivity",
            "year",
            1,
            "yearly mean sunspot number 1700-2008",
        ),
        Builtin("co2", "co2.csv", "co2", "month", 12, "monthly Mauna Loa CO2 1958-2001 (ppm)"),
    )
}


def load_dataset(name: str) -> Any:
    """A built-in series as a long-format pandas frame (``unique_id``, ``ds``, ``y``), as
    :meth:`tunecast.TuneCast.fit` takes it."""
    import pandas as pd

    if name not in BUILTINS:
        raise ValueError(f"no built-in dataset '{name}': choose one of {', '.join(BUILTINS)}")
    b = BUILTINS[name]
    raw = pd.read_csv(b.path)
    ds = raw[b.time_column] if pd.api.types.is_numeric_dtype(raw[b.time_column]) else \
        pd.to_datetime(raw[b.time_column])
    return pd.DataFrame({"unique_id": name, "ds": ds, "y": raw[b.target].astype(float)})
