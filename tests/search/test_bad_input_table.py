"""Bad input, table-driven: every case runs the real ``tunecast`` command line in its own process
(environment without RAY_/TUNE_ variables, as in a user's shell) and must give exit code 2,
exactly one line on stderr starting ``error:``, no traceback, and leave its folder unchanged
(no file created, changed or removed).

Starting Python, torch and pandas costs about 2-3 CPU seconds per process; on a 2-core machine
~70 such processes take over a minute. So the cases run in processes forked (concurrently) from
one server process that has imported the CLI once, each running ``search.cli.main`` exactly as
the console script does (``sys.exit(main())``, its own argv, cwd, stdout and stderr); a few
cases also run through the installed ``tunecast`` script itself, concurrently, with ``Popen``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tests.cluster.net import closed_port

Setup = Callable[[Path], None]


def _csv(name: str, **columns: object) -> Setup:
    def make(d: Path) -> None:
        pd.DataFrame(columns).to_csv(d / name, index=False)

    return make


def _file(name: str, text: str | bytes) -> Setup:
    def make(d: Path) -> None:
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())

    return make


def _yaml(text: str) -> Setup:
    return _file("c.yaml", textwrap.dedent(text))


def _experiment(d: Path) -> None:  # an existing experiment folder (its tunecast.json)
    (d / "runs" / "exp").mkdir(parents=True)
    (d / "runs" / "exp" / "tunecast.json").write_text('{"status": "completed"}\n')


def _not_experiment(d: Path) -> None:
    (d / "other").mkdir()
    (d / "other" / "keep.txt").write_text("precious")


_sine = np.sin(np.arange(60.0))
_nan = _sine.copy()
_nan[[5, 9]] = np.nan
_days = [f"2020-01-{d:02d}" for d in range(1, 31)]
_unsorted = list(range(60))
_unsorted[10], _unsorted[11] = 11, 10
_bad_dates = [*_days[:3], "someday", *_days[4:]]
_text = [str(v) for v in range(50)]
_text[7] = "n/a?"
_s200 = np.sin(np.arange(200) / 5) + np.arange(200) / 50


def panel_csv(short: int = 60, duplicate: bool = False, text: bool = False) -> Setup:
    """Two series in Nixtla's long format (unique_id, ds, y): A of 60 points, B of ``short``;
    ``duplicate`` repeats one (id, time) row of B, ``text`` puts a word in B's y."""
    days = pd.date_range("2020-01-01", periods=60).strftime("%Y-%m-%d")
    y: list[object] = [*np.sin(np.arange(60.0)), *np.cos(np.arange(short) / 3)]
    ds = [*days, *days[:short]]
    if duplicate:
        ds[61] = ds[60]
    if text:
        y[70] = "oops"
    return _csv("p.csv", unique_id=["A"] * 60 + ["B"] * short, ds=ds, y=y)

S = ["search", "--storage", "runs", "--quiet", "--no-report"]
TR = ["train", "--set", "max_epochs=1", "--set", "window=4"]
C = ["--config", "c.yaml"]

# (case id, argv after `tunecast`, files the case needs, a text the error line must contain)
CASES: list[tuple[str, list[str], list[Setup], str]] = [
    # argparse usage errors
    ("unknown-command", ["frob"], [], "invalid choice: 'frob'"),
    ("bad-int-option", [*S, "--trials", "abc"], [], "invalid int value"),
    ("bad-choice-option", [*S, "--scheduler", "x"], [], "invalid choice: 'x'"),
    ("unknown-option", [*S, "--trails", "3"], [], "unrecognized arguments"),
    ("report-without-dir", ["report"], [], "required: EXP_DIR"),
    ("report-missing-dir", ["report", "nope"], [], "does not exist"),
    # search options
    ("trials-zero", [*S, "--trials", "0"], [], "trials must lie in 1..100000"),
    ("trials-absurd", [*S, "--trials", "1000000000000"], [], "trials must lie in 1..100000"),
    ("origins-negative", [*S, "--origins", "-1"], [], "origins must lie in 0..20"),
    ("origins-yaml-absurd", [*S, *C], [_yaml("search: {origins: 1000}\n")], "origins must lie in 0..20"),
    ("refit-without-forecast", [*S, "--refit", "--no-forecast"], [], "drop one of the two"),
    ("refit-yaml-without-forecast", [*S, *C], [_yaml("search: {refit: true, forecast: false}\n")],
     "drop one of the two"),
    ("gpu-share-1.5", [*S, "--gpus-per-trial", "1.5"], [], "must lie in (0, 1]"),
    ("gpu-share-negative", [*S, "--gpus-per-trial", "-0.5"], [], "must lie in (0, 1]"),
    ("gpu-share-0.3", [*S, "--gpus-per-trial", "0.3"], [], "does not divide a GPU"),
    ("gpus-where-none", [*S, "--data", "sine", "--gpus-per-trial", "0.5"], [], "has none"),
    ("time-budget-negative", [*S, "--time-budget", "-1"], [], "time-budget must be > 0"),
    ("storage-is-a-file", ["search", "--storage", "afile", "--quiet"], [_file("afile", "x")], "is a file"),
    ("name-300-bytes", [*S, "--name", "x" * 300], [], "at most 255"),
    ("name-with-slash", [*S, "--name", "a/b"], [], "plain folder name"),
    ("existing-experiment", [*S, "--data", "sine", "--name", "exp"], [_experiment], "exists already"),
    ("resume-not-an-experiment", ["search", "--resume", "other"], [_not_experiment], "not a tunecast"),
    ("resume-with-settings", ["search", "--resume", "other", "--trials", "3"], [_not_experiment],
     "drop trials"),
    ("resume-with-origins-0", ["search", "--resume", "other", "--origins", "0"], [_not_experiment],
     "drop origins"),
    ("address-closed-port", [*S, "--address", f"127.0.0.1:{closed_port()}"], [], "cannot connect"),
    ("address-ray-client-closed-port", [*S, "--address", f"ray://127.0.0.1:{closed_port()}"], [],
     "Connection refused"),
    # config files
    ("config-missing", [*S, "--config", "nope.yaml"], [], "not found"),
    ("config-binary", [*S, *C], [_file("c.yaml", b"\xff\xfe\x00\x81" * 10)], "cannot read config"),
    ("config-invalid-yaml", [*S, *C], [_yaml("space:\n  lr: [1, 2\n")], "not valid YAML"),
    ("config-not-a-mapping", [*S, *C], [_yaml("- a\n- b\n")], "must be a mapping"),
    ("config-unknown-section", [*S, *C], [_yaml("serach: {trials: 3}\n")], "unknown section"),
    ("config-unknown-search-key", [*S, *C], [_yaml("search: {trails: 3}\n")], "unknown search option"),
    ("config-duplicate-key", [*S, *C], [_yaml("space:\n  lr: 0.01\n  lr: 0.02\n")], "given twice"),
    ("config-duplicate-section", [*S, *C], [_yaml("search: {trials: 3}\nsearch: {trials: 4}\n")],
     "given twice"),
    ("time-budget-text", [*S, *C], [_yaml("search: {time_budget_s: abc}\n")], "time_budget_s must be"),
    ("time-budget-list", [*S, *C], [_yaml("search: {time_budget_s: [1, 2]}\n")], "time_budget_s must be"),
    ("time-budget-inf", [*S, *C], [_yaml("search: {time_budget_s: .inf}\n")], "time_budget_s must be"),
    ("trials-list", [*S, *C], [_yaml("search: {trials: [1, 2]}\n")], "trials must be int"),
    ("data-under-search", [*S, *C], [_yaml("search: {data: {source: sine}}\n")], "top level"),
    ("train-reserved-key", [*S, *C], [_yaml("train: {seed: 3}\n")], "under search:"),
    ("train-and-space", [*S, *C], [_yaml("train: {lr: 0.01}\nspace: {lr: 0.02}\n")], "pick one"),
    ("train-bad-value", [*S, *C], [_yaml("train: {patience: 0}\n")], "patience must be >= 1"),
    # search space
    ("space-unknown-key", [*S, *C], [_yaml("space: {hidden: {low: 1, high: 4}}\n")], "unknown search-space"),
    ("space-unknown-range-key", [*S, *C], [_yaml("space: {lr: {min: 1, max: 4}}\n")], "unknown key(s)"),
    ("space-inverted", [*S, *C], [_yaml("space: {hidden_size: {low: 64, high: 16}}\n")], "inverted"),
    ("space-bool-range", [*S, *C], [_yaml("space: {highway: {low: 0, high: 1}}\n")], "space.highway"),
    ("space-empty-range", [*S, *C], [_yaml("space: {lr: {low: 0.01, high: 0.01}}\n")], "empty"),
    ("space-empty-choices", [*S, *C], [_yaml("space: {scaler: []}\n")], "choices is empty"),
    ("space-bad-type", [*S, *C], [_yaml("space: {hidden_size: {low: a, high: 4}}\n")], "not a valid int"),
    ("space-scaler-minmax", [*S, *C], [_yaml("space: {scaler: [minmax]}\n")], "space.scaler"),
    ("space-scaler-choice", [*S, *C], [_yaml("space: {scaler: [standard, minmax]}\n")], "'minmax'"),
    ("space-num-layers-0", [*S, *C], [_yaml("space: {num_layers: 0}\n")], "space.num_layers"),
    ("space-dropout-1.5", [*S, *C], [_yaml("space: {dropout: {low: 0.5, high: 1.5}}\n")], "high 1.5"),
    ("space-batch-size-0", [*S, *C], [_yaml("space: {batch_size: [0, 32]}\n")], "space.batch_size"),
    ("space-lr-1e6", [*S, *C], [_yaml("space: {lr: 1000000}\n")], "lr must lie in (0, 10]"),
    ("space-lr-range-high", [*S, *C], [_yaml("space: {lr: {low: 0.001, high: 1.0e+20}}\n")], "high"),
    ("space-log-maybe", [*S, *C], [_yaml("space: {lr: {low: 0.001, high: 0.1, log: maybe}}\n")],
     "log must be true or false"),
    ("space-log-negative", [*S, *C], [_yaml("space: {lr: {low: -1, high: 0.1, log: true}}\n")], "low > 0"),
    ("space-highway-maybe", [*S, *C], [_yaml("space: {highway: maybe}\n")], "not a valid bool"),
    ("space-window-fixed-90", [*S, "--data", "airline", *C], [_yaml("space: {window: 90}\n")], "at most"),
    ("space-window-range-500", [*S, "--data", "airline", *C],
     [_yaml("space: {window: {low: 500, high: 600}}\n")],
     "largest window it allows is"),
    ("space-window-choices", [*S, "--data", "airline", *C], [_yaml("space: {window: [8, 300]}\n")],
     "largest window it allows is"),
    # data (search)
    ("season-200-of-200", [*S, "--data", "s.csv", "--season-length", "200"], [_csv("s.csv", y=_s200)],
     "largest allowed is 159"),
    ("season-1000-airline", [*S, "--data", "airline", "--season-length", "1000"], [], "largest allowed is"),
    ("season-zero", [*S, "--season-length", "0"], [], "season_length must be >= 1"),
    ("semicolon-csv", [*S, "--data", "semi.csv", "--target", "y"], [_file("semi.csv", "y;x\n1;2\n3;4\n")],
     "semicolons"),
    ("series-too-short-search", [*S, "--data", "short.csv"], [_csv("short.csv", y=np.sin(np.arange(12.0)))],
     "too few for any window"),
    ("long-format-panel-as-one-series", [*S, "--data", "p.csv", "--time-column", "date"],
     [_csv("p.csv", store=["A"] * 30 + ["B"] * 30, date=_days * 2, sales=_sine)],
     "long-format panel (2 series in column 'store') read as one series: pass --id-column store"),
    # data (a panel of many series, long format)
    ("panel-missing-id-column", [*S, "--data", "p.csv", "--id-column", "store"], [panel_csv()],
     "id column 'store' not found"),
    ("panel-series-too-short", [*S, "--data", "p.csv"], [panel_csv(short=12)],
     "series 'B' has 12 points, too short for any window"),
    ("panel-series-too-short-for-splits", [*S, "--data", "p.csv"], [panel_csv(short=3)],
     "series 'B' has 3 points, too short for the splits"),
    ("panel-duplicate-id-time", [*S, "--data", "p.csv"], [panel_csv(duplicate=True)],
     "duplicate (id, time) row(s)"),
    ("panel-non-numeric-in-one-series", [*S, "--data", "p.csv"], [panel_csv(text=True)],
     "column 'y' is non-numeric in 1 series (series 'B'"),
    ("panel-min-length-drops-all", [*S, "--data", "p.csv", "--min-length", "500"], [panel_csv()],
     "all 2 series of 'p.csv' have fewer than --min-length 500"),
    # data (train)
    ("missing-file", [*TR, "--data", "nope.csv"], [], "no such file"),
    ("unknown-builtin", [*TR, "--data", "airplanes"], [], "unknown data source 'airplanes'"),
    ("unreadable-parquet", [*TR, "--data", "bad.parquet"], [_file("bad.parquet", "not parquet")],
     "as Parquet"),
    ("binary-csv", [*TR, "--data", "bin.csv"], [_file("bin.csv", bytes(range(256)) * 8)], "as CSV"),
    ("directory-source", [*TR, "--data", "."], [], "is a directory"),
    ("missing-target", [*TR, "--data", "d.csv", "--target", "sales"], [_csv("d.csv", a=_sine, b=_sine)],
     "'sales' not found"),
    ("ambiguous-target", [*TR, "--data", "d.csv"], [_csv("d.csv", a=_sine, b=_sine)], "--target"),
    ("missing-feature", [*TR, "--data", "d.csv", "--features", "temp"], [_csv("d.csv", y=_sine)], "'temp'"),
    ("missing-time-column", [*TR, "--data", "d.csv", "--time-column", "ts"], [_csv("d.csv", y=_sine)],
     "'ts'"),
    ("non-numeric", [*TR, "--data", "d.csv"], [_csv("d.csv", y=_text)], "non-numeric"),
    ("nan-values", [*TR, "--data", "d.csv"], [_csv("d.csv", y=_nan)], "--missing interpolate"),
    ("duplicate-timestamps", [*TR, "--data", "d.csv", "--time-column", "day"],
     [_csv("d.csv", day=_days * 2, y=_sine)], "duplicate"),
    ("unsorted-timestamps", [*TR, "--data", "d.csv", "--time-column", "t"],
     [_csv("d.csv", t=_unsorted, y=_sine)], "not sorted"),
    ("bad-dates", [*TR, "--data", "d.csv", "--time-column", "day"],
     [_csv("d.csv", day=_bad_dates, y=_sine[:30])], "not dates"),
    ("series-too-short", [*TR, "--data", "d.csv", "--set", "window=10"],
     [_csv("d.csv", y=np.sin(np.arange(12.0)))], "too short"),
    ("constant-series", [*TR, "--data", "d.csv"], [_csv("d.csv", y=np.full(60, 3.0))], "constant"),
    ("val-fraction-0", [*TR, "--data", "sine", "--val-fraction", "0"], [], "val_fraction must lie"),
    ("test-fraction-1.5", [*TR, "--data", "sine", "--test-fraction", "1.5"], [], "test_fraction must lie"),
    ("fractions-sum-1", [*TR, "--data", "sine", "--val-fraction", "0.5", "--test-fraction", "0.5"], [],
     "leaves no training data"),
    ("test-size-and-fraction", [*TR, "--data", "sine", "--test-size", "24", "--test-fraction", "0.2"], [],
     "--test-size and --test-fraction both set: pass one"),
    ("val-size-and-fraction-yaml", [*S, *C],
     [_yaml("data: {source: sine, val_size: 10, val_fraction: 0.1}\n")],
     "--val-size and --val-fraction both set: pass one"),
    ("test-size-0", [*TR, "--data", "sine", "--test-size", "0"], [], "test_size must be a whole number"),
    ("val-size-1.5", [*TR, "--data", "sine", "--val-size", "1.5"], [], "val_size must be a whole number"),
    ("test-size-text-yaml", [*S, *C], [_yaml("data: {test_size: abc}\n")], "test_size must be a whole"),
    ("test-size-below-horizon", [*S, "--data", "airline", "--horizon", "12", "--test-size", "6"], [],
     "test_size 6 is shorter than the horizon 12"),
    ("series-too-short-for-sizes", [*TR, "--data", "d.csv", "--val-size", "10", "--test-size", "24"],
     [_csv("d.csv", y=np.sin(np.arange(30.0)))], "too short for the splits (val 10 points, test 24 points)"),
    ("panel-too-short-for-sizes", [*S, "--data", "p.csv", "--val-size", "10", "--test-size", "24"],
     [panel_csv(short=30)], "'B' has 30 points, too short for the splits (val 10 points, test 24 points)"),
    ("unknown-training-option", ["train", "--data", "sine", "--set", "hiddensize=3"], [], "hiddensize"),
    ("train-lr-1e6", [*TR, "--data", "sine", "--set", "lr=1e6"], [], "lr must lie in (0, 10]"),
    ("train-set-without-equals", [*TR, "--data", "sine", "--set", "lr"], [], "KEY=VALUE"),
    ("train-highway-init-unknown", [*TR, "--data", "sine", "--set", "highway_init=zeros"], [],
     "highway_init must be one of naive, random"),
    ("train-season-too-long", [*TR, "--data", "airline", "--season-length", "500"], [], "season length 500"),
]

# run through the installed console script itself as well (one of each kind)
SCRIPT_CASES = ("unknown-command", "report-missing-dir", "space-scaler-minmax", "season-200-of-200")

SERVER = """
import json, os, sys, traceback
import ray, torch  # noqa: F401  what a search imports, once
from tunecast.search.cli import main
cases = json.load(sys.stdin)
running = {}
def reap():
    pid, status = os.wait()
    running.pop(pid)["code"] = os.waitstatus_to_exitcode(status)
for case in cases:
    while len(running) >= 2 * (os.cpu_count() or 1):
        reap()
    pid = os.fork()
    if pid == 0:  # the child: one `tunecast ARGS` in the case's folder
        os.chdir(case["cwd"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(name + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.argv = ["tunecast", *case["argv"]]
        try:
            code = main()  # the console script: sys.exit(main())
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    running[pid] = case
while running:
    reap()
json.dump([c["code"] for c in cases], sys.stdout)
"""


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with its content hash (folders: "dir")."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if rel in ("stdout.out", "stderr.out"):
            continue
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _prepare(root: Path, case_id: str, setups: list[Setup]) -> tuple[Path, dict[str, str]]:
    folder = root / case_id
    folder.mkdir()
    for setup in setups:
        setup(folder)
    return folder, _snapshot(folder)


def _check(case_id: str, code: int, err: str, needle: str, folder: Path, before: dict[str, str]) -> list[str]:
    problems = []
    lines = err.splitlines()
    if code != 2:
        problems.append(f"exit code {code}")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"{len(lines)} stderr lines")
    if "Traceback" in err:
        problems.append("traceback")
    if needle not in err:
        problems.append(f"no {needle!r}")
    if _snapshot(folder) != before:
        problems.append("files changed")
    return [f"{case_id}: {', '.join(problems)}: {err[-600:]!r}"] if problems else []


def test_every_bad_input_gives_one_line_and_exit_2(tmp_path):
    assert len({c[0] for c in CASES}) == len(CASES)
    started = time.monotonic()
    env = _user_env()
    (tmp_path / "forked").mkdir()
    (tmp_path / "script").mkdir()
    prepared = {cid: _prepare(tmp_path / "forked", cid, setups) for cid, _, setups, _ in CASES}
    script_dirs = {cid: _prepare(tmp_path / "script", cid, setups)
                   for cid, _, setups, _ in CASES if cid in SCRIPT_CASES}
    tunecast = shutil.which("tunecast", path=str(Path(sys.executable).parent))
    assert tunecast is not None
    argv = {cid: args for cid, args, _, _ in CASES}
    scripts = {
        cid: subprocess.Popen([tunecast, *argv[cid]], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        for cid, (folder, _) in script_dirs.items()
    }
    server = subprocess.run(
        [sys.executable, "-c", SERVER],
        input=json.dumps([{"argv": args, "cwd": str(prepared[cid][0])} for cid, args, _, _ in CASES]),
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert server.returncode == 0, server.stderr[-3000:]
    forked_s = time.monotonic() - started
    codes = dict(zip([c[0] for c in CASES], json.loads(server.stdout), strict=True))
    problems = []
    for cid, _, _, needle in CASES:
        folder, before = prepared[cid]
        problems += _check(cid, codes[cid], (folder / "stderr.out").read_text(), needle, folder, before)
    for cid, proc in scripts.items():
        _, err = proc.communicate(timeout=120)
        folder, before = script_dirs[cid]
        needle = next(c[3] for c in CASES if c[0] == cid)
        problems += _check(f"{cid} (tunecast script)", proc.returncode, err, needle, folder, before)
    total = len(CASES) + len(scripts)
    print(f"\nbad-input table: {len(CASES)} cases (+{len(scripts)} through the tunecast script): "
          f"{total - len(problems)} of {total} give exit 2 and one error line; "
          f"{time.monotonic() - started:.1f} s ({forked_s:.1f} s for the forked cases)")
    assert not problems, "\n".join(problems)
