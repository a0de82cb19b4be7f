"""A real Ray Job: a local head with the dashboard plus a second raylet, `tunecast submit`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.cli import main

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [*prefix, str(BIN / "ray"), "start", "--block", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(url: str, timeout: float = 90) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:  # 401 without a token: the dashboard is up
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


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


@pytest.fixture
def head_and_worker():
    with local_cluster() as (dashboard, _):
        yield dashboard


def test_submit_a_smoke_search_as_a_ray_job(head_and_worker, tmp_path, capsys):
    storage = tmp_path / "shared-runs"
    began = time.time()
    code = main(
        [
            "submit",
            "--address",
            head_and_worker,
            "--wait",
            "--",
            "--smoke-test",
            "--data",
            "sine",
            "--storage",
            str(storage),
            "--name",
            "job-smoke",
        ]
    )
    elapsed = time.time() - began
    out, err = capsys.readouterr()
    assert code == 0, (out[-3000:], err[-3000:])
    assert "submitted job " in out and "ray job logs --address" in out
    assert "SUCCEEDED" in out
    exp = storage / "job-smoke"
    assert (exp / "report.html").exists() and (exp / "best" / "metrics.json").exists()
    assert f"report: {exp / 'report.html'}" in out
    print(f"submit -> finished smoke job: {elapsed:.1f} s")


def test_submit_without_wait_prints_the_job_and_returns(head_and_worker, tmp_path, capsys):
    from ray.job_submission import JobSubmissionClient

    code = main(
        [
            "submit",
            "--address",
            head_and_worker,
            "--",
            "--smoke-test",
            "--data",
            "sine",
            "--storage",
            str(tmp_path / "runs"),
            "--trials",
            "1",
            "--max-epochs",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    job_id = out.split("submitted job ", 1)[1].split()[0]
    client = JobSubmissionClient(head_and_worker)
    deadline = time.time() + 180
    while client.get_job_status(job_id) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.time() < deadline
        time.sleep(1)
    assert client.get_job_status(job_id) == "SUCCEEDED", client.get_job_logs(job_id)[-2000:]


def test_submit_to_nowhere_is_a_clear_error(capsys):
    code = main(["submit", "--address", f"http://127.0.0.1:{free_port()}", "--", "--smoke-test"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: cannot submit to the Ray cluster")
    assert "\n" not in err


def test_submit_rejects_its_own_address(capsys):
    code = main(["submit", "--address", "http://127.0.0.1:1", "--", "--address", "auto"])
    assert code == 2 and "drop --address" in capsys.readouterr().err


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
