"""A real Ray Job: a local head with the dashboard plus a second raylet, `tunecast submit`.

The cluster runs with token authentication (tests/conftest.py exports the session's token to
every Ray process of the suite); `tunecast submit` runs as a user runs it: a subprocess whose
environment has no Ray auth variable, the token in its ``~/.ray/auth_token`` (or named by
``RAY_AUTH_TOKEN_PATH``), as Ray's own CLI would find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.net import DroppingProxy, free_port, wait_for
from tests.conftest import SMALL_SPACE, TRIALS_ONLY_ARGS
from tests.search.test_resume import finished_trials
from tests.tables import read_table
from tunecast.search.cli import main

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def user_env(home: Path, token_file: bool = True, **extra: str) -> dict[str, str]:
    """A user's shell: no RAY_AUTH_* variable, HOME at ``home``, holding the cluster's token in
    ``~/.ray/auth_token`` if ``token_file``; ``extra`` variables on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    if token_file:
        (home / ".ray").mkdir(parents=True, exist_ok=True)
        (home / ".ray" / "auth_token").write_text(os.environ["RAY_AUTH_TOKEN"])
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{env['PATH']}", **extra}


def tunecast(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "tunecast"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def job_of(out: str) -> str:
    return out.split("submitted job ", 1)[1].split()[0]


def wait_until_ended(client, job_id: str, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while (status := client.get_job_status(job_id)) not in TERMINAL:
        assert time.time() < deadline, f"job {job_id} still {status}"
        time.sleep(1)
    return str(status)


def start(args: list[str], env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [*prefix, str(BIN / "ray"), "start", "--block", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def local_cluster(worker_prefix: tuple[str, ...] = ()):
    """`ray start --head` with the dashboard on 127.0.0.1 and a second raylet; all killed after.

    Yields ``(dashboard_url, gcs_address)``.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    gcs, dashboard = free_port(), free_port()

    def node_args() -> list[str]:
        """Each raylet gets its own agent ports: two raylets on one host must not share them."""
        ports = {
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        return [
            "--num-cpus",
            "1",
            "--node-ip-address",
            "127.0.0.1",
            *[str(x) for pair in ports.items() for x in pair],
        ]

    head = start(
        [
            "--head",
            "--port",
            str(gcs),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dashboard),
            "--include-dashboard",
            "true",
            *node_args(),
        ],
        env,
    )
    processes = [head]
    try:
        wait_for(f"http://127.0.0.1:{dashboard}/api/version")
        processes.append(start(["--address", f"127.0.0.1:{gcs}", *node_args()], env, worker_prefix))
        yield f"http://127.0.0.1:{dashboard}", f"127.0.0.1:{gcs}"
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 2  # `ray start --block` may take longer to stop: then kill it
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        kill_cluster_processes(gcs)


def kill_cluster_processes(gcs_port: int) -> None:
    """Ray daemons (gcs_server, raylet, agents, workers) may leave the `ray start` process
    group: end every process whose command line names this cluster's GCS port."""
    import psutil

    marks = (f":{gcs_port}", f"gcs_server_port={gcs_port}", f"--port={gcs_port}")
    doomed = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.pid != os.getpid() and any(mark in cmdline for mark in marks):
            doomed.append(proc)
    for proc in doomed:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(doomed, timeout=10)


@pytest.fixture(scope="module")
def head_and_worker():
    """One cluster for this module's jobs (each start costs ~15 s of the CI's two cores)."""
    with local_cluster() as (dashboard, _):
        yield dashboard


# jobs whose subject is the submission: the search's trials alone, without the report either
JOB_TRIALS_ONLY = (*TRIALS_ONLY_ARGS, "--no-report")


def test_submit_a_smoke_search_as_a_ray_job(head_and_worker, tmp_path):
    """The token only in ~/.ray/auth_token, no RAY_AUTH_MODE: as on a user's laptop."""
    storage = tmp_path / "shared-runs"
    began = time.time()
    done = tunecast(["submit", "--address", head_and_worker, "--wait", "--", "--smoke-test", "--data", "sine",
                     "--storage", str(storage), "--name", "job-smoke"], user_env(tmp_path / "home"))
    elapsed = time.time() - began
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "submitted job " in done.stdout and "SUCCEEDED" in done.stdout
    # the commands it prints work in the user's shell (Ray's CLI needs RAY_AUTH_MODE=token)
    status = done.stdout.split("its status:", 1)[1].splitlines()[0].strip()
    assert status.startswith("RAY_AUTH_MODE=token ray job status --address"), status
    ran = subprocess.run(status, shell=True, env=user_env(tmp_path / "home"), capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and "succeeded" in ran.stdout.lower(), ran.stderr[-2000:]
    exp = storage / "job-smoke"
    assert (exp / "report.html").exists() and (exp / "best" / "metrics.json").exists()
    assert f"report: {exp / 'report.html'}" in done.stdout
    print(f"submit -> finished smoke job: {elapsed:.1f} s")


def test_submit_without_wait_prints_the_job_and_returns(head_and_worker, tmp_path):
    """The token in a file RAY_AUTH_TOKEN_PATH names."""
    from ray.job_submission import JobSubmissionClient

    token = tmp_path / "cluster-token"
    token.write_text(os.environ["RAY_AUTH_TOKEN"])
    env = user_env(tmp_path / "home", token_file=False, RAY_AUTH_TOKEN_PATH=str(token))
    sent = tunecast(["submit", "--address", head_and_worker, "--", "--smoke-test", "--data", "sine",
                     "--storage", str(tmp_path / "runs"), "--trials", "1", "--max-epochs", "1",
                     *JOB_TRIALS_ONLY], env)
    assert sent.returncode == 0, sent.stderr[-3000:]
    client = JobSubmissionClient(head_and_worker)
    job_id = job_of(sent.stdout)
    assert wait_until_ended(client, job_id, 180) == "SUCCEEDED", client.get_job_logs(job_id)[-2000:]


def test_a_submission_whose_answer_is_lost_is_retried_without_a_second_job(head_and_worker, tmp_path):
    """The dashboard takes the job but the connection closes before its answer (what a CI run of
    the autoscaler test met): submit asks again under the same id and reports that one job."""
    from urllib.parse import urlparse

    from ray.job_submission import JobSubmissionClient

    dashboard = urlparse(head_and_worker)
    storage = tmp_path / "runs"
    with DroppingProxy((dashboard.hostname, dashboard.port), drop=b"POST /api/jobs/") as proxy:
        sent = tunecast(["submit", "--address", proxy.url, "--", "--smoke-test", "--data", "sine",
                         "--storage", str(storage), "--trials", "1", "--max-epochs", "1",
                         *JOB_TRIALS_ONLY],
                        user_env(tmp_path / "home"))
    assert proxy.dropped == 1
    assert sent.returncode == 0 and "submitted job raysubmit_" in sent.stdout, sent.stderr[-3000:]
    client = JobSubmissionClient(head_and_worker)
    job_id = job_of(sent.stdout)
    ours = [job for job in client.list_jobs() if str(storage) in job.entrypoint]
    assert [job.submission_id for job in ours] == [job_id]
    assert wait_until_ended(client, job_id, 180) == "SUCCEEDED", client.get_job_logs(job_id)[-2000:]


def test_a_missing_or_wrong_token_is_a_one_line_error_that_says_so(head_and_worker, tmp_path):
    args = ["submit", "--address", head_and_worker, "--", "--smoke-test"]
    missing = tunecast(args, user_env(tmp_path / "empty-home", token_file=False))
    wrong = tunecast(args, user_env(tmp_path / "home", RAY_AUTH_TOKEN="0" * 32))
    unreadable = tunecast(args, user_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(tmp_path / "nope")))
    for done, says in ((missing, "needs an auth token and none is in"), (wrong, "refused the auth token"),
                       (unreadable, "cannot read the Ray auth token")):
        err = done.stderr.strip()
        assert done.returncode == 2 and "\n" not in err, err
        assert err.startswith("error: ") and says in err and "~/.ray/auth_token" in err, err
        assert "ray up" not in err  # the cluster is there: not "start it"
    assert "ray get-auth-token" in missing.stderr and str(tmp_path / "nope") in unreadable.stderr


def test_submit_to_nowhere_is_a_clear_error(tmp_path):
    done = tunecast(["submit", "--address", f"http://127.0.0.1:{free_port()}", "--", "--smoke-test"],
                    user_env(tmp_path / "home"))
    err = done.stderr.strip()
    assert done.returncode == 2 and err.startswith("error: cannot submit to the Ray cluster"), err
    assert "\n" not in err and "ray up" in err


def test_submit_rejects_its_own_address_and_a_relative_resume(tmp_path):
    env = user_env(tmp_path / "home")
    own = tunecast(["submit", "--address", "http://127.0.0.1:1", "--", "--address", "auto"], env)
    assert own.returncode == 2 and "drop --address" in own.stderr
    relative = tunecast(["submit", "--address", "http://127.0.0.1:1", "--", "--resume", "runs/x"], env)
    assert relative.returncode == 2 and "absolute path on the cluster" in relative.stderr


def test_a_stopped_job_is_interrupted_and_resumes_as_a_job(head_and_worker, tmp_path):
    """`ray job stop` (SIGINT, as submit sets it) interrupts the search, which saves its state;
    `submit -- --resume DIR` finishes it: all trials, none rerun."""
    import yaml
    from ray.job_submission import JobSubmissionClient

    trials = 4
    (tmp_path / "small.yaml").write_text(yaml.safe_dump({"space": SMALL_SPACE}))
    storage, env = tmp_path / "runs", user_env(tmp_path / "home")
    exp = storage / "stopped"
    began = time.time()
    sent = tunecast(["submit", "--address", head_and_worker, "--", "--data", "sine", "--trials", str(trials),
                     "--config", str(tmp_path / "small.yaml"), "--max-epochs", "12", "--scheduler", "fifo",
                     "--max-concurrent", "1", "--storage", str(storage), "--name", "stopped", "--quiet",
                     "--no-report"], env)
    assert sent.returncode == 0, sent.stderr[-3000:]
    client, job_id = JobSubmissionClient(head_and_worker), job_of(sent.stdout)
    deadline = time.time() + 240
    while not finished_trials(exp):
        assert time.time() < deadline and client.get_job_status(job_id) not in TERMINAL, (
            client.get_job_logs(job_id)[-3000:])
        time.sleep(0.5)
    before = finished_trials(exp)
    stopped_at = time.time()
    client.stop_job(job_id)
    assert wait_until_ended(client, job_id, 120) == "STOPPED"
    stop_s = time.time() - stopped_at
    logs = client.get_job_logs(job_id)
    assert "search interrupted" in logs, logs[-3000:]
    assert f"resume with: tunecast search --resume {exp}" in logs
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "interrupted" and state["ended_at"] is None
    left = read_table(exp / "trials.csv")
    assert len(left) < trials or (left["status"] != "completed").any()  # trials were left to run

    resumed = tunecast(["submit", "--address", head_and_worker, "--wait", "--", "--resume", str(exp)], env)
    assert resumed.returncode == 0, (resumed.stdout[-3000:], resumed.stderr[-3000:])
    assert "SUCCEEDED" in resumed.stdout and "search completed" in resumed.stdout
    table = read_table(exp / "trials.csv")
    history = read_table(exp / "history.csv")
    assert len(table) == trials and table["trial_id"].is_unique and (table["status"] == "completed").all()
    for trial_id, losses in before.items():  # finished before the stop: kept, not rerun
        assert list(history.loc[history["trial_id"] == trial_id, "val_loss"]) == pytest.approx(losses)
    state = json.loads((exp / "tunecast.json").read_text())
    assert state["status"] == "completed" and len(state["resumed_at"]) == 1
    print(f"job stop -> STOPPED: {stop_s:.1f} s; submit, stop, resubmit -> completed: "
          f"{time.time() - began:.1f} s; finished before the stop: {len(before)} of {trials}")


def test_working_dir_job_survives_a_second_raylet(head_and_worker, tmp_path):
    """Two raylets on one host share Ray's runtime_resources folder: the second one may delete
    the job's working_dir while the driver runs there. The search leaves that folder first."""
    from ray.job_submission import JobSubmissionClient

    working_dir = tmp_path / "wd"
    working_dir.mkdir()
    (working_dir / "series.csv").write_text(
        "y\n" + "\n".join(f"{v:.6f}" for v in __import__("numpy").sin(range(300)))
    )
    client = JobSubmissionClient(head_and_worker)
    job = client.submit_job(
        entrypoint=f"tunecast search --address auto --smoke-test --data series.csv "
        f"--storage {tmp_path}/runs --name wd --quiet",
        runtime_env={"working_dir": str(working_dir)},
    )
    deadline = time.time() + 240
    while client.get_job_status(job) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.time() < deadline
        time.sleep(1)
    assert client.get_job_status(job) == "SUCCEEDED", client.get_job_logs(job)[-3000:]
    assert (tmp_path / "runs" / "wd" / "report.html").exists()


def test_multinode_search_refuses_storage_the_other_node_cannot_see(tmp_path, capsys):
    """The second raylet runs in its own mount namespace with an empty tmpfs over the storage
    folder, as a node on another machine would see a local path: the search must refuse."""
    import ray

    shared = tmp_path / "not-shared"
    shared.mkdir()
    hide = (
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount -t tmpfs none "{shared}" && exec "$0" "$@"',
    )
    with local_cluster(worker_prefix=hide) as (_, gcs):
        deadline = time.time() + 60
        while True:
            ray.init(address=gcs)
            alive = len([n for n in ray.nodes() if n["Alive"]])
            ray.shutdown()
            if alive == 2 or time.time() > deadline:
                break
            time.sleep(1)
        assert alive == 2
        code = main(
            [
                "search",
                "--address",
                gcs,
                "--data",
                "sine",
                "--smoke-test",
                "--storage",
                str(shared / "runs"),
                "--quiet",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2, err
    assert err.startswith("error: storage") and "cannot see it" in err and "shared storage" in err
    assert not list((shared / "runs").glob("*/tunecast.json"))
