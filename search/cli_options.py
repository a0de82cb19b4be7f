"""Command-line pieces shared by ``tunecast search`` and ``tunecast train`` (their options become a
configuration in one place, :func:`tunecast.search.config.from_options`)."""

from __future__ import annotations

import argparse


class UsageError(ValueError):
    """A bad command-line option; the message names it and the fix."""


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe the series (shared by search and train)."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", help="built-in dataset (sine, airline, sunspots, co2) or a CSV/Parquet file")
    g.add_argument("--target", help="column to forecast")
    g.add_argument("--time-column", help="time column (checked unique and sorted)")
    g.add_argument("--features", help="extra input columns, comma-separated")
    g.add_argument("--season-length", type=int, help="season m for MASE / seasonal-naive")
    g.add_argument("--val-fraction", type=float, help="validation fraction (default 0.15)")
    g.add_argument("--test-fraction", type=float, help="test fraction (default 0.2)")
    g.add_argument("--val-size", metavar="N", help="validation part: the N points before the test "
                   "part, of each series (instead of --val-fraction)")
    g.add_argument("--test-size", metavar="N", help="test part: the last N points of each series "
                   "(instead of --test-fraction)")
    g.add_argument(
        "--missing",
        choices=("error", "interpolate", "drop"),
        help="what to do with NaN/inf values (default: error)",
    )
    g.add_argument("--id-column", help="long format, many series: the column naming each row's series "
                   "(default for a file with Nixtla's unique_id, ds, y columns: unique_id)")
    g.add_argument("--min-length", type=int, metavar="N",
                   help="many series: drop the series with fewer than N points (default: refuse them)")
