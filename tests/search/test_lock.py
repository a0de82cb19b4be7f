"""One writer per experiment: a search or resume holds ``<exp>/.tunecast.lock`` (flock) for its
whole run; a second one is refused with one line and exit 2 before it writes anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TRIALS_ONLY_ARGS
from tests.search.test_resume import start_search
from tests.tables import read_table
from tunecast.expdir.files import LOCK_FILE, ExperimentInUse, experiment_lock

HOLD = """
import sys, time
from pathlib import Path
from tunecast.expdir.files import experiment_lock
with experiment_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(ExperimentInUse, match=f"in use by tunecast pid {holder.pid} on "), \
                experiment_lock(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up at all: the OS releases the lock
        holder.wait(timeout=30)
    with experiment_lock(tmp_path):
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_FILE).read_text()
    with experiment_lock(tmp_path):  # released on leaving the block, taken again
        pass


def test_a_second_search_into_a_locked_experiment_is_refused(tmp_path):
    exp = tmp_path / "runs" / "exp"
    exp.mkdir(parents=True)
    holder = _holder(exp)  # e.g. a search that has not written tunecast.json yet
    try:
        before = _files(exp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
        done = subprocess.run(
            [sys.executable, "-m", "tunecast", "search",
             "--data", "sine", "--storage", "runs", "--name", "exp",
             "--quiet"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: experiment") and f"in use by tunecast pid {holder.pid}" in lines[0]
    assert _files(exp) == before


@pytest.mark.slow
def test_resume_while_the_search_runs_is_refused_and_the_search_is_intact(tmp_path):
    driver, exp = start_search(tmp_path, "busy", *TRIALS_ONLY_ARGS, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list(exp.glob("experiment_state*.json")):
            assert driver.poll() is None, "the search ended too soon"
            time.sleep(0.5)
        second = subprocess.run([sys.executable, "-m", "tunecast", "search", "--resume", str(exp), "--quiet"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert driver.poll() is None, "the first search should still run"
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr[-2000:]
        assert f"in use by tunecast pid {driver.pid}" in lines[0]
        _, err = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, err[-3000:]
    state = json.loads((exp / "tunecast.json").read_text())
    trials = read_table(exp / "trials.csv")
    assert state["status"] == "completed" and state["resumed_at"] == []
    assert len(trials) == 6 and state["best_trial_id"] in set(trials["trial_id"])


def test_a_folder_recreated_where_the_mount_was_is_a_storage_fault(tmp_path):
    """After a mount vanishes, Ray may recreate the experiment folder on the disk beneath it and
    then fail to read its own files there (FileNotFoundError). The folder exists, so only the
    lock file this run holds (now missing) tells that the storage went away."""
    import shutil

    from tunecast.search.storage import StorageFault, fault_of, lock_identity

    exp = tmp_path / "exp"
    exp.mkdir()
    with experiment_lock(exp):
        held = lock_identity(exp)
    shutil.rmtree(exp)
    exp.mkdir()  # what Ray's next write makes on the disk under the vanished mount
    error = FileNotFoundError(2, "No such file or directory", str(exp / "optuna-study.log"))
    assert fault_of(error, exp) is None  # without the lock's identity it looks like a plain bug
    problem = fault_of(error, exp, held)
    assert isinstance(problem, StorageFault) and "vanished" in str(problem), problem


def test_an_error_tune_wrapped_in_its_controller_is_a_storage_fault(tmp_path):
    """Ray Tune's controller wraps what its searcher raised (Optuna appending to its journal on
    a read-only disk) in a TuneError whose text alone holds the errno."""
    from ray.tune.error import TuneError

    from tunecast.search.storage import StorageFault, driver_errors, fault_of

    exp = tmp_path / "exp"
    exp.mkdir()
    error = TuneError("Traceback (most recent call last):\n  ...\nOSError: [Errno 30] Read-only file system: "
                      f"'{exp}/optuna-study.log' -> '{exp}/optuna-study.log.lock'\n")
    assert isinstance(error, driver_errors())
    problem = fault_of(error, exp)
    assert isinstance(problem, StorageFault) and "Read-only file system" in str(problem), problem
    assert fault_of(TuneError("a bug in a callback"), exp) is None  # healthy storage: not a fault
