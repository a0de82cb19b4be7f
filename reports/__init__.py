"""Turn an experiment directory into one self-contained HTML report.

The report is a pure function of the directory (docs/experiment-dir.md): this package reads
files and imports neither Ray, torch nor the training code (``model``), so it works on a
directory copied off a cluster.

Example:
    >>> from reports import render_report
    >>> render_report("tunecast-runs/sine-demo")  # doctest: +SKIP
    PosixPath('tunecast-runs/sine-demo/report.html')
"""

from tunecast.reports._files import ReportError
from tunecast.reports.collect import Experiment, collect
from tunecast.reports.html import render_html, render_report

__all__ = ["Experiment", "ReportError", "collect", "render_html", "render_report"]
