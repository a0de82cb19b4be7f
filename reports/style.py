"""Shared look of the report's figures: outcome colours, and text safe for matplotlib."""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure

__all__ = ["BEST", "COMBINED", "ENSEMBLE", "FORECAST", "OUTCOME_COLORS", "OUTCOME_LABELS", "SPLIT_COLORS",
           "TRUTH", "ReportFigure", "duration_text", "listed", "outcome_color", "plain"]

TRUTH = "#222222"
FORECAST = "#d9480f"
ENSEMBLE = "#5e3c99"  # the top-k ensemble's forecast (dashed), distinct from FORECAST
COMBINED = "#0072b2"  # the networks combined with AutoETS and AutoARIMA (dash-dot), distinct from both
BEST = "#1b9e4b"
SPLIT_COLORS = {"val": "#ffe8a3", "test": "#cfe3ff"}
OUTCOME_COLORS = {"completed": "#3b75af", "stopped": "#ef8a17", "failed": "#c0392b",
                  "running": "#8e8e8e", "pending": "#c8c8c8"}
OUTCOME_LABELS = {"completed": "completed", "stopped": "stopped early (ASHA)",
                  "failed": "failed", "running": "running (interrupted)",
                  "pending": "pending (never ran)"}


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report with its heading and caption (plain text, escaped later)."""

    key: str
    title: str
    caption: str
    figure: Figure


def plain(text: str, limit: int = 80) -> str:
    """Make user text safe for a matplotlib label: no mathtext, no hidden ``_`` labels, short."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def listed(items: list[str]) -> str:
    """Items for people: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def outcome_color(status: str) -> str:
    """The colour of a trial outcome (grey for unknown ones)."""
    return OUTCOME_COLORS.get(status, "#8e8e8e")


def duration_text(seconds: float | None) -> str:
    """A duration for people: ``"42 s"``, ``"3.5 min"``, ``"2.1 h"`` (``"–"`` when unknown)."""
    if seconds is None or math.isnan(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
