"""The search's Optuna study on disk (optuna-study.log), warm starts, and the console through a
pipe: real searches in subprocesses with a user's environment, the study read back with
Optuna's own API (across a Ctrl-C and a resume: tests/search/test_resume.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.search.test_progress import CHATTER, TRIAL_LINE, user_env
from tests.tables import read_table

pytestmark = pytest.mark.slow

BEST = {"hidden_size": 10, "num_layers": 1, "window": 9, "lr": 0.008, "batch_size": 32, "dropout": 0.02,
        "scaler": "window", "highway": True}


def finished_live(exp: Path) -> bool:
    """Whether the study, read while the search runs, holds a finished trial. The journal file
    exists (empty) a moment before its study is created: Optuna then says "Record does not
    exist" (a KeyError), as optuna-dashboard would until the first record lands."""
    if not (exp / "optuna-study.log").exists():  # opening it would create it
        return False
    try:
        return any(t.state.name == "COMPLETE" for t in load_study(exp).trials)
    except KeyError:
        return False


def load_study(exp: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(exp / "optuna-study.log")))
    return optuna.load_study(study_name=exp.name, storage=storage)


def badness(config: dict) -> float:
    """The made-up val_loss of the earlier experiment: lowest at BEST."""
    lr = (math.log10(config["lr"]) - math.log10(BEST["lr"])) / math.log10(0.01 / 0.0003)
    return float(0.01 + lr ** 2 + ((config["window"] - 9) / 8) ** 2 + ((config["hidden_size"] - 10) / 8) ** 2
                 + (config["dropout"] / 0.3) ** 2 + 0.5 * (config["scaler"] != "window")
                 + 0.5 * (not config["highway"]) + 0.3 * (config["batch_size"] != 32))


def earlier_experiment(folder: Path) -> list[float]:
    """An earlier experiment's trials.csv (its columns as `tunecast search` wrote them before it
    tuned `loss`: those trials count as trained with the squared loss, which is in the space): 25
    finished trials in the smoke test's space, 5 outside it, one failed. Returns the in-space
    trials' val_losses."""
    rng = np.random.default_rng(1)
    configs = [BEST] + [
        {"hidden_size": int(rng.integers(8, 17)), "num_layers": 1, "window": int(rng.integers(8, 17)),
         "lr": float(10 ** rng.uniform(math.log10(0.0003), -2)), "batch_size": int(rng.choice([16, 32, 64])),
         "dropout": float(rng.uniform(0, 0.3)), "scaler": str(rng.choice(["standard", "window"])),
         "highway": bool(rng.integers(0, 2))}
        for _ in range(24)
    ]
    outside = [{**configs[i], "window": 40} for i in range(1, 4)] + [{**configs[i], "num_layers": 2}
                                                                     for i in range(4, 6)]
    rows = [{"trial_id": f"{i:08x}", "status": "completed" if i % 2 else "stopped",
             **{f"config/{k}": v for k, v in c.items()}, "config/horizon": 1, "best_val_loss": badness(c)}
            for i, c in enumerate(configs + outside)]
    rows.append({**rows[1], "trial_id": "deadbeef", "status": "failed", "best_val_loss": float("nan")})
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    return [badness(c) for c in configs]


@pytest.fixture(scope="module")
def warm_search(tmp_path_factory):
    """A smoke search warm-started from the earlier experiment, its stdout a pipe."""
    tmp = tmp_path_factory.mktemp("warm")
    losses = earlier_experiment(tmp / "earlier")
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "search",
         "--smoke-test", "--storage", str(tmp / "runs"), "--name", "warm",
         "--warm-start", str(tmp / "earlier"), "--no-report", "--no-forecast"],
        cwd=tmp, env=user_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, tmp / "runs" / "warm", losses


def test_pipe_gets_plain_lines_one_per_trial(warm_search):
    done, exp, _ = warm_search
    for stream in (done.stdout, done.stderr):
        assert "\r" not in stream and "\x1b" not in stream
        assert not [c for c in CHATTER if c in stream]
    lines = done.stdout.splitlines()
    assert [int(m.group(1)) for line in lines if (m := TRIAL_LINE.match(line))] == [1, 2, 3, 4]
    assert lines[0] == f"warm start: 25 finished trials of {exp.parent.parent / 'earlier'}, 5 left out " \
                       "(outside this search's space)"
    study = exp / "optuna-study.log"
    assert lines[1] == f"4 trials; follow them in Optuna's dashboard: optuna-dashboard {study}"
    assert sum(line.startswith("[#") for line in lines) == 1  # the status, once, at the end


def test_study_holds_every_finished_trial_with_its_parameters_and_value(warm_search):
    _, exp, _ = warm_search
    trials = read_table(exp / "trials.csv")
    study = load_study(exp)
    own = [t for t in study.trials if "warm_start_from" not in t.user_attrs]
    warm = [t for t in study.trials if "warm_start_from" in t.user_attrs]
    assert len(warm) == 25 and len(own) == len(trials) == 4
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    assert {t.state.name for t in own} == {"COMPLETE"} and len(finished) == 4
    for _, row in finished.iterrows():  # trials.csv keeps floats to 13 significant digits
        params = {name: row[f"config/{name}"] for name in own[0].params}
        same = [t for t in own if all(params[k] == pytest.approx(v, rel=1e-12) if isinstance(v, float)
                                      else params[k] == v for k, v in t.params.items())]
        assert len(same) == 1 and same[0].value == pytest.approx(row["best_val_loss"]), (params, same)


def test_warm_start_proposes_near_the_earlier_best(warm_search):
    """The first configuration is better than 80% of the earlier trials by their made-up loss:
    a random one would be only 20% of the time."""
    _, exp, losses = warm_search
    study = load_study(exp)
    first = min((t for t in study.trials if "warm_start_from" not in t.user_attrs), key=lambda t: t.number)
    assert badness({**first.params, "num_layers": 1}) < np.quantile(losses, 0.2), first.params
