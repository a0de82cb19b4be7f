"""Search efficiency: Ray Tune with 2 concurrent trials vs a sequential Optuna loop; ASHA vs FIFO.

Part 1 runs 16 trials through ``search.run.run_search`` (what ``tunecast search`` calls) with
the FIFO scheduler, fixed epochs (patience above max_epochs) and 2 concurrent trials of 1 CPU;
then the *same 16 configurations* (read back from its ``trials.csv``) through a plain Optuna loop
in this process (``study.enqueue_trial`` + ``study.optimize`` calling ``model.training.fit``;
torch uses all cores there). Both wall times include everything from start to end (Ray's start
and shutdown, the experiment files and the best trial's test evaluation on the Ray side).

Ray's overhead per trial = the trial's wall time (from the moment its worker slot became free to
its last report) minus its training time: ``fit``'s own seconds (``TrainResult.seconds``) less
the time spent in its callbacks, where ``tune.report`` and the checkpoints happen (recorded by a
thin wrapper around ``train_trial`` passed as ``run_search(trainable=...)``).
Ray's start, the Tuner's set-up, the experiment files and shutdown are shown once per search.

Part 2 runs the same 32-trial search (airline, the product's defaults, seed 0) with ASHA
and with FIFO and compares the best val_loss and the wall time.

    python benchmarks/search.py             # both parts (about 20 minutes on 2 cores)
    python benchmarks/search.py --part 1    # only the Ray vs sequential comparison
    python benchmarks/search.py --smoke     # tiny sizes
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This file's name shadows the `search` package when it runs as a script: put the checkout first
# and this folder last (for _common and accuracy).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(HERE.parent))

import pandas as pd  # noqa: E402
from _common import machine_line, table, timed_search, verdict  # noqa: E402

SPEEDUP_TARGET = 1.7
OVERHEAD_TARGET_S = 0.3
ASHA_LOSS_TOLERANCE = 0.05
ASHA_TIME_FRACTION = 0.5
# what a search does after its trials (the combination, earlier validation origins, forecast/) left out
TRIALS_ALONE = {"combine": False, "origins": 0, "forecast": False}
FIT_LOG = ""  # set before the search; captured by value when Ray pickles the wrapper below

FIXED_SPACE = {  # part 1: varied but modest configurations on the sine data
    "hidden_size": {"low": 16, "high": 64, "log": True},
    "num_layers": [1, 2],
    "window": {"low": 12, "high": 48},
    "batch_size": [32, 64],
    "lr": {"low": 0.001, "high": 0.005, "log": True},
    "dropout": 0.0,
    "scaler": "standard",
    "highway": False,
}


def timed_train_trial(config: dict[str, Any], plan: Any) -> None:
    """``search.trainable.train_trial``, recording ``fit``'s own seconds to ``FIT_LOG``."""
    from ray import tune

    import tunecast.search.trainable as trainable
    from tunecast.model.training import fit

    in_callbacks = [0.0]  # seconds spent in tune.report / checkpoints (fit's callbacks)

    def timed(callback: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return callback(*args)
            finally:
                in_callbacks[0] += time.perf_counter() - start
        return wrapper

    def timed_fit(*args: Any, **kwargs: Any) -> Any:
        for name in ("on_epoch", "on_improve"):
            if kwargs.get(name) is not None:
                kwargs[name] = timed(kwargs[name])
        result = fit(*args, **kwargs)
        record = {"trial_id": tune.get_context().get_trial_id(), "seconds": result.seconds,
                  "training": result.seconds - in_callbacks[0]}
        with open(FIT_LOG, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return result

    trainable.fit = timed_fit  # type: ignore[assignment]
    trainable.train_trial(config, plan)


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as a plain Python value."""
    return value.item() if hasattr(value, "item") else value


def sequential_optuna(settings: dict[str, Any], configs: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """The same configurations through a plain Optuna loop in this process.

    The study gets the search's own Optuna distributions; ``enqueue_trial`` makes each trial
    suggest the configuration the Ray search ran.
    """
    import optuna
    from optuna import distributions as od

    from tunecast.model.data import load
    from tunecast.model.training import TrainConfig, fit
    from tunecast.search.config import SearchConfig
    from tunecast.search.optuna_space import distribution
    from tunecast.search.plan import search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    config = SearchConfig.from_dict({"verbose": 0, "report": False, **settings})
    data = load(config.data)
    tuned = {name: distribution(p) for name, p in search_space(config, data).items() if p.type != "fixed"}
    seconds: list[float] = []

    def suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
        if isinstance(dist, od.IntDistribution):
            return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        if isinstance(dist, od.FloatDistribution):
            return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        return trial.suggest_categorical(name, dist.choices)

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, dist) for name, dist in tuned.items()}
        result = fit(TrainConfig.from_dict({**configs[trial.number], **params}), data, device="cpu")
        seconds.append(result.seconds)
        return result.best_val_loss

    study = optuna.create_study(direction="minimize")
    for trial_config in configs:
        study.enqueue_trial({name: trial_config[name] for name in tuned})
    study.optimize(objective, n_trials=len(configs))
    return time.perf_counter() - start, seconds


def part_one(storage: Path, trials: int, epochs: int) -> list[str]:
    global FIT_LOG
    FIT_LOG = str(storage / "fit-times.jsonl")
    settings: dict[str, Any] = {
        "data": {"source": "sine"}, "name": "fixed-ray", "storage": str(storage), "trials": trials,
        "seed": 0, "scheduler": "fifo", "max_epochs": epochs, "max_concurrent": 2,
        "cpus_per_trial": 1, "train": {"patience": epochs + 1}, "space": FIXED_SPACE,
        **TRIALS_ALONE,  # the sequential loop only trains: compare the searches alone
    }
    ray_wall, outcome = timed_search(settings, trainable=timed_train_trial)
    table_frame = pd.read_csv(outcome.path / "trials.csv", dtype={"trial_id": str})
    columns = [c for c in table_frame.columns if c.startswith("config/")]
    configs = [{c.removeprefix("config/"): _plain(row[c]) for c in columns}
               for _, row in table_frame.iterrows()]
    seq_wall, seq_fit = sequential_optuna(settings, configs)

    logged = [json.loads(line) for line in Path(FIT_LOG).read_text().splitlines()]
    fit_s = {r["trial_id"]: r["seconds"] for r in logged}
    training_s = {r["trial_id"]: r["training"] for r in logged}  # fit's time less its Tune callbacks
    assert len(fit_s) == trials, f"{len(fit_s)} fit times for {trials} trials"
    per_trial, span = trial_overheads(table_frame, training_s, concurrency=2)
    rows = [
        ["tunecast search (Ray, 2 x 1 CPU)", ray_wall, sum(fit_s.values()), sum(training_s.values()), trials],
        ["sequential Optuna loop (1 process)", seq_wall, sum(seq_fit), sum(seq_fit), trials],
    ]
    print(f"\nPart 1: the same {trials} configurations, {epochs} epochs each (FIFO, sine data)")
    print(table(["run", "wall s", "sum of fit() s", "of which training s", "trials"], rows, digits=1))
    reporting = sum(fit_s.values()) - sum(training_s.values())
    from tunecast.search.config import DEFAULT_REPORT_EVERY_S as every
    print(f"Ray: {reporting:.1f} s of the trials' fit() time went to tune.report and checkpoints "
          f"({1000 * reporting / (trials * epochs):.1f} ms per epoch; a report waits for the driver, "
          f"so a trial reports its first and last epoch, ASHA's rungs and at most one epoch per {every:g} s)")
    bound = sum(seq_fit) / (sum(training_s.values()) / 2)
    print(f"Threads: the sequential loop trains the {trials} configurations in {sum(seq_fit):.1f} s with 2 "
          f"threads; Ray's two 1-thread trials need {sum(training_s.values()):.1f} s of training, so even "
          f"with no Ray cost at all 2 concurrent trials reach at most {bound:.2f}x on this CPU")
    print(f"Ray: {ray_wall - span:.1f} s once per search (Ray start, Tuner set-up, experiment files, "
          f"best trial's test evaluation, shutdown) and {span:.1f} s from the first trial's start to "
          "the last one's end")
    speedup = seq_wall / ray_wall
    mean = sum(per_trial.values()) / len(per_trial)
    return [
        f"speed-up Ray 2 concurrent vs sequential: {speedup:.2f}x "
        f"(target >= {SPEEDUP_TARGET}x: {verdict(speedup >= SPEEDUP_TARGET)})",
        f"Ray overhead per trial (trial wall time - its training time): mean {mean:.2f} s, max "
        f"{max(per_trial.values()):.2f} s (target <= {OVERHEAD_TARGET_S:g} s: "
        f"{verdict(mean <= OVERHEAD_TARGET_S)})",
    ]


def trial_overheads(
    trials: pd.DataFrame, fit_s: dict[str, float], concurrency: int
) -> tuple[dict[str, float], float]:
    """Each trial's wall time minus its training time, and the span of all trials.

    A trial's wall time runs from the moment a worker slot became free for it (the end of the
    trial it follows on that slot; the first trial's start for the first ``concurrency``) to
    its last report, so it includes Tune's scheduling, the actor's reuse, fetching the data,
    building the config, every ``tune.report`` and checkpoint.
    """
    ordered = trials.sort_values("start_time")
    first = float(ordered["start_time"].iloc[0])
    slots = [first] * concurrency  # when each slot became free
    overheads = {}
    for _, row in ordered.iterrows():
        slot = min(range(concurrency), key=lambda i: slots[i])
        free = min(slots[slot], float(row["start_time"]))
        overheads[str(row["trial_id"])] = float(row["end_time"]) - free - fit_s[str(row["trial_id"])]
        slots[slot] = float(row["end_time"])
    return overheads, float(ordered["end_time"].max()) - first


def part_two(storage: Path, trials: int, smoke: bool) -> list[str]:
    from accuracy import smoke_sections

    sections = smoke_sections() if smoke else {"search": {}, "space": {}}
    if smoke:  # checks the script runs: the searches' trials alone
        sections["search"] = {**sections["search"], **TRIALS_ALONE}
    rows, result = [], {}
    for scheduler in ("asha", "fifo"):
        settings = {**sections["search"], "space": sections["space"], "data": {"source": "airline"},
                    "name": f"airline-{scheduler}",
                    "storage": str(storage), "trials": trials, "seed": 0, "scheduler": scheduler}
        wall, outcome = timed_search(settings)
        frame = outcome.trials
        best = float(frame["best_val_loss"].min())
        result[scheduler] = (wall, best)
        rows.append([scheduler, wall, best, int(frame["epochs_run"].sum()),
                     int((frame["status"] == "stopped").sum())])
    print(f"\nPart 2: ASHA vs FIFO, {trials} trials on airline (the product's defaults, seed 0)")
    print(table(["scheduler", "wall s", "best val_loss", "epochs run", "stopped early"], rows, digits=4))
    (asha_wall, asha_best), (fifo_wall, fifo_best) = result["asha"], result["fifo"]
    loss_ratio, time_ratio = asha_best / fifo_best, asha_wall / fifo_wall
    return [
        f"ASHA best val_loss / FIFO's: {loss_ratio:.3f} "
        f"(target <= {1 + ASHA_LOSS_TOLERANCE:g}: {verdict(loss_ratio <= 1 + ASHA_LOSS_TOLERANCE)})",
        f"ASHA wall time / FIFO's: {time_ratio:.2f} "
        f"(target <= {ASHA_TIME_FRACTION:g}: {verdict(time_ratio <= ASHA_TIME_FRACTION)})",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks the script works")
    parser.add_argument("--storage", help="keep the experiments here (default: a temporary folder)")
    parser.add_argument("--part", type=int, choices=(1, 2), help="run only part 1 or part 2")
    parser.add_argument("--epochs", type=int, default=100,
                        help="epochs of every part-1 trial (default 100, tunecast search's max_epochs)")
    args = parser.parse_args(argv)
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="tunecast-bench-") as tmp:
        storage = Path(args.storage or tmp).resolve()
        ratios = []
        if args.part in (None, 1):
            epochs = 2 if args.smoke else args.epochs
            ratios += part_one(storage, trials=4 if args.smoke else 16, epochs=epochs)
        if args.part in (None, 2):
            ratios += part_two(storage, trials=4 if args.smoke else 32, smoke=args.smoke)
    print()
    print("\n".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
