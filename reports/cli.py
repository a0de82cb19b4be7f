"""``tunecast report EXP_DIR [-o FILE] [--series ID ...]``."""

from __future__ import annotations

import argparse
import sys

from tunecast.expdir import remote
from tunecast.expdir.contract import RUN_FILE
from tunecast.expdir.files import OneLineArgumentParser
from tunecast.reports._files import ReportError
from tunecast.reports.collect import collect
from tunecast.reports.html import render_report
from tunecast.reports.summary import banners

__all__ = ["main"]


def build_parser(prog: str = "tunecast report") -> argparse.ArgumentParser:
    """The command line of the report command."""
    parser = OneLineArgumentParser(
        prog=prog,
        description="Write one self-contained HTML report of a tunecast experiment directory.",
    )
    parser.add_argument("exp_dir", metavar="EXP_DIR",
                        help="the experiment directory that `tunecast search` wrote, or its URI "
                             "(s3://bucket/prefix/name)")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="where to write the report (default: EXP_DIR/report.html; for a URI, "
                             "the report is also copied there)")
    parser.add_argument("--series", metavar="ID", nargs="+", default=None,
                        help="a panel of many series: also show the test forecasts and attention of "
                             "these series (ids as in best/per_series.csv), besides the best, median "
                             "and worst")
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
    uri = args.exp_dir.rstrip("/") if remote.is_uri(args.exp_dir) else None
    try:
        folder = _fetch(uri) if uri else args.exp_dir
        path = render_report(folder, args.output, args.series)
        notices = banners(collect(folder))
        if uri and args.output is None:
            remote.upload(path.parent, uri, (path.name,))
    except (ReportError, remote.RemoteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = str(path)
    if uri and args.output is None:
        print(f"note: a local copy is at {path}", file=sys.stderr)
        where = remote.join(uri, path.name)
    for notice in notices:  # the report's banners, also as lines: what it could not show, and why
        level = "note" if notice.level == "note" else "warning"
        print(f"{level}: {' '.join(notice.text.split())}", file=sys.stderr)
    print(where)
    return 0


def _fetch(uri: str) -> str:
    """The contract files of the experiment at ``uri``, copied down; their local folder."""
    if not remote.exists(remote.join(uri, RUN_FILE)):
        raise ReportError(f"'{uri}' is not a tunecast experiment: it holds no {RUN_FILE}; pass the URI "
                          "that `tunecast search` printed")
    return str(remote.download(uri, remote.working_copy(uri)))
