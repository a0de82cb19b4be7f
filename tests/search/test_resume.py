"""Kill a running search's driver with SIGKILL, or stop it with Ctrl-C, resume it, and check nothing
was lost or rerun: trials, their histories, and the Optuna study on disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import SMALL_SPACE, TRIALS_ONLY_ARGS
from tests.search.test_progress import user_env
from tests.search.test_study import finished_live, load_study
from tests.tables import read_table
from tunecast.search.trainable import EPOCHS

pytestmark = pytest.mark.slow

TRIALS = 6


def finished_trials(exp: Path) -> dict[str, list[float]]:
    """trial id -> val_loss per epoch, for trials whose last report says they finished (Ray's
    result.json: a report, then the epochs it carried along, see search.trainable)."""
    out = {}
    for result in exp.glob("train_trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows and rows[-1].get("last_epoch") == 1:
            out[rows[-1]["trial_id"]] = [e["val_loss"] for r in rows for e in [*json.loads(r[EPOCHS]), r]]
    return out


def start_search(tmp_path: Path, name: str, *extra: str, **popen: object) -> tuple[subprocess.Popen, Path]:
    """Start a small sequential search (fifo, one trial at a time) in its own process group, in
    a user's environment (no RAY_/TUNE_ variables); ``extra``: more options."""
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({"space": SMALL_SPACE}))
    storage = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "tunecast",
        "search",
        "--data",
        "sine",
        "--trials",
        str(TRIALS),
        "--config",
        str(config),
        "--max-epochs",
        "15",
        "--scheduler",
        "fifo",
        "--max-concurrent",
        "1",
        "--storage",
        str(storage),
        "--name",
        name,
        "--quiet",
        "--no-report",
        *extra,
    ]
    driver = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, env=user_env(), **popen)
    return driver, storage / name


def resume(tmp_path: Path, exp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunecast", "search", "--resume", str(exp), "--quiet"],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )


def session_processes(driver_pid: int) -> set[int]:
    """The driver's children (GCS, raylet, ...) and every process whose raylet is one of them."""
    children = {
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _field(stat, 3) == str(driver_pid)
    }
    out = set(children)
    for env in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            pairs = dict(i.split(b"=", 1) for i in env.read_bytes().split(b"\0") if b"=" in i)
            if int(pairs.get(b"RAY_RAYLET_PID", b"0")) in children:
                out.add(int(env.parent.name))
    return out


def _field(stat: Path, index: int) -> str:
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[index - 2]
    except (OSError, IndexError):
        return ""


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if Path(f"/proc/{p}").exists() and _field(Path(f"/proc/{p}/stat"), 3) != "Z"}


def test_sigkill_then_resume(tmp_path):
    """SIGKILL of the driver alone: the Ray processes it started go too (its watcher reaps
    them), and the resume loses and reruns nothing."""
    driver, exp = start_search(tmp_path, "killed", *TRIALS_ONLY_ARGS, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    left: set[int] = set()
    try:
        while time.time() < deadline and len(finished_trials(exp)) < 2:
            assert driver.poll() is None, "the search ended before it could be killed"
            time.sleep(0.5)
        before = finished_trials(exp)
        assert len(before) >= 2
        left = session_processes(driver.pid)
        assert len(left) >= 4  # GCS, raylet, agents, the trial's worker
    finally:
        driver.send_signal(signal.SIGKILL)  # the driver dies without any clean-up
        driver.wait(timeout=30)
    try:
        deadline = time.time() + 30
        while alive(left) and time.time() < deadline:
            time.sleep(0.5)
        assert not alive(left), [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in alive(left)]
    finally:
        for pid in alive(left):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not (exp / "trials.csv").exists()
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "running"

    resumed = resume(tmp_path, exp)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "search completed" in resumed.stdout

    trials = read_table(exp / "trials.csv")
    history = read_table(exp / "history.csv")
    assert len(trials) == TRIALS and trials["trial_id"].is_unique
    assert (trials["status"] == "completed").all()
    for trial_id, losses in before.items():  # finished trials kept, not rerun
        rows = history[history["trial_id"] == trial_id]
        assert list(rows["val_loss"]) == pytest.approx(losses)
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "completed" and len(state["resumed_at"]) == 1


def checkpointed_unfinished(exp: Path) -> list[Path]:
    """Checkpoint folders of trials that have not finished."""
    done = finished_trials(exp)
    out = []
    for result in exp.glob("train_trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows and rows[-1]["trial_id"] not in done:
            out += sorted(result.parent.glob("checkpoint_*"))
    return out


def test_ctrl_c_writes_an_interrupted_experiment_then_resume_finishes_it(tmp_path):
    """Ctrl-C once a trial has finished (also in the study, read live while the search runs) and
    another has checkpointed; the --quiet resume finishes the same trials and the same study, and
    ends as a whole search does (the combination, earlier origins, forecast/)."""
    driver, exp = start_search(tmp_path, "ctrl-c", text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (
            finished_trials(exp) and checkpointed_unfinished(exp) and finished_live(exp)):
        assert driver.poll() is None, "the search ended before Ctrl-C"
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground process group
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-3000:]  # interrupted: 130, as for any Ctrl-C
    assert "search interrupted" in out and f"resume with: tunecast search --resume {exp}" in out
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "interrupted" and state["ended_at"] is None
    trials = read_table(exp / "trials.csv")
    done_before = set(trials.loc[trials["status"] == "completed", "trial_id"])
    assert len(done_before) >= 1 and len(done_before) < TRIALS
    studied = {t.number: t.params for t in load_study(exp).trials if t.state.name == "COMPLETE"}
    assert 1 <= len(studied) < TRIALS
    # The race a kill or a vanished mount can hit: Ray deleted the checkpoint its saved state
    # names, after a better one was written. The resume starts from the newer one.
    saved = checkpointed_unfinished(exp)
    assert saved
    newest = saved[-1]
    newest.rename(newest.with_name(f"checkpoint_{int(newest.name.split('_')[1]) + 1:06d}"))
    for older in saved[:-1]:
        shutil.rmtree(older)
    trial_folder = newest.parent

    resumed = resume(tmp_path, exp)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.strip().splitlines()[0].startswith("search completed: "), resumed.stdout  # --quiet
    assert (exp / "forecast").is_dir()
    rows = [json.loads(line) for line in (trial_folder / "result.json").read_text().splitlines() if line]
    assert rows[-1]["last_epoch"] == 1 and rows[-1]["resumed_from_epoch"] > 0, [
        {k: r.get(k) for k in ("epoch", "last_epoch", "resumed_from_epoch", "trial_id")} for r in rows]
    trials = read_table(exp / "trials.csv")
    assert len(trials) == TRIALS and (trials["status"] == "completed").all()
    assert done_before <= set(trials["trial_id"])
    study = load_study(exp).trials  # the same study, one finished trial per trial, none twice
    assert len(study) == TRIALS and {t.state.name for t in study} == {"COMPLETE"}
    assert {t.number: t.params for t in study if t.number in studied} == studied
    assert sorted(t.value for t in study) == pytest.approx(sorted(trials["best_val_loss"]))
    history = read_table(exp / "history.csv")  # every epoch once, also those of the resumed trial
    for _, trial in trials.iterrows():  # that the unprocessed report carried (its checkpoint's trail)
        epochs = history.loc[history["trial_id"] == trial["trial_id"], "epoch"]
        assert list(epochs) == list(range(1, trial["epochs_run"] + 1)), trial["trial_id"]
    assert json.loads((exp / "tunecast.json").read_text())["status"] == "completed"
    assert not (exp / "report.html").exists()  # --no-report is one of the saved settings

    files = {p: p.read_bytes() for p in exp.rglob("*") if p.is_file()}
    again = resume(tmp_path, exp)  # a completed experiment: says so, exits 0, changes nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip() == f"experiment '{exp}' is completed already: nothing to resume"
    assert {p: p.read_bytes() for p in exp.rglob("*") if p.is_file()} == files
