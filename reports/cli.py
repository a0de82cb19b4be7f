"""``tunecast report EXP_DIR [-o FILE]`` (also ``python -m reports``)."""

from __future__ import annotations

import argparse
import sys

from expdir.files import OneLineArgumentParser
from reports._files import ReportError
from reports.collect import collect
from reports.html import render_report
from reports.summary import banners

__all__ = ["main"]


def build_parser(prog: str = "tunecast report") -> argparse.ArgumentParser:
    """The command line of the report command."""
    parser = OneLineArgumentParser(
        prog=prog,
        description="Write one self-contained HTML report of a tunecast experiment directory.",
    )
    parser.add_argument("exp_dir", metavar="EXP_DIR",
                        help="the experiment directory that `tunecast search` wrote")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="where to write the report (default: EXP_DIR/report.html)")
    return parser


def main(argv: list[str] | None = None, *, prog: str = "tunecast report") -> int:
    """Write the report and print its path.

    Args:
        argv: the arguments after the command name (``sys.argv[1:]`` when None).
        prog: the command's name in the usage text.

    Returns:
        0 on success; 2 on bad input, after one ``error: ...`` line on stderr.
    """
    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        path = render_report(args.exp_dir, args.output)
        notices = banners(collect(args.exp_dir))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for notice in notices:  # the report's banners, also as lines: what it could not show, and why
        level = "note" if notice.level == "note" else "warning"
        print(f"{level}: {' '.join(notice.text.split())}", file=sys.stderr)
    print(path)
    return 0
