"""How long the report takes, and how big it gets, as the number of trials grows.

Builds experiment directories with the search's own writers from synthetic trials
(``tests/reports/fixtures.py``: completed, ASHA-stopped and failed trials on several nodes, with
untrained models), then times ``collect`` and ``render_report`` and prints one row per size.
Exits with status 1 when a report takes longer than ``--max-seconds`` or is larger than
``--max-mb``, so CI can run ``--smoke`` as a check. Run it from the checkout (it needs torch and
Optuna to write the fixtures, not to make the reports).

    python benchmarks/report_scale.py            # 10, 50 and 200 trials
    python benchmarks/report_scale.py --smoke    # 10 trials, seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the checkout on sys.path, for tests.reports.fixtures)

from tests.reports.fixtures import make_fixture_experiment
from tunecast.reports import collect, render_report


def measure(root: Path, n_trials: int, repeats: int) -> tuple[float, float, float]:
    """Best-of-``repeats`` seconds for collect and for the whole report, and the file's MB."""
    exp_dir = make_fixture_experiment(root / f"exp-{n_trials}", n_trials=n_trials, horizon=3,
                                      n_nodes=4, max_concurrent=8)
    collect_s, total_s = float("inf"), float("inf")
    out = exp_dir / "report.html"
    for _ in range(repeats):
        start = time.perf_counter()
        collect(exp_dir)
        collect_s = min(collect_s, time.perf_counter() - start)
        start = time.perf_counter()
        out = render_report(exp_dir)  # collects again, draws, writes
        total_s = min(total_s, time.perf_counter() - start)
    return collect_s, total_s, out.stat().st_size / 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 1 when a budget is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="10 trials only")
    parser.add_argument("--trials", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--max-mb", type=float, default=5.0)
    args = parser.parse_args(argv)
    sizes = [10] if args.smoke else args.trials
    repeats = 1 if args.smoke else args.repeats

    # Warm up once (matplotlib's font cache, imports) so the rows measure the report itself.
    with tempfile.TemporaryDirectory() as tmp:
        render_report(make_fixture_experiment(Path(tmp) / "warm", n_trials=4))

    print(f"{'trials':>7} {'collect s':>10} {'report s':>9} {'size MB':>8}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for n_trials in sizes:
            collect_s, total_s, megabytes = measure(Path(tmp), n_trials, repeats)
            over = total_s > args.max_seconds or megabytes > args.max_mb
            failed |= over
            print(f"{n_trials:>7} {collect_s:>10.3f} {total_s:>9.2f} {megabytes:>8.2f}"
                  + ("  OVER BUDGET" if over else ""))
    print(f"budget: {args.max_seconds:g} s and {args.max_mb:g} MB per report; "
          f"best of {repeats} run(s); 'report s' includes collect, figures, HTML and the write")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
