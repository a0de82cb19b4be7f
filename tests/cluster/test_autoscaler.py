"""Autoscaling: the concurrency and GPU checks count what the autoscaler can add, and a real
search on Ray's fake multi-node cluster makes the autoscaler launch GPU workers.

The fake cluster (tests/cluster/fake-cluster.yaml) is a head with no CPU and no GPU and a worker
type of 2 CPUs and 1 logical GPU, 0 to 2 of them: real raylets started on this machine by Ray's
real autoscaler. Ray documents it started with ``RAY_FAKE_CLUSTER=1 ray start --head
--autoscaling-config=...``. ``ray up`` and ``ray down`` cannot drive it: both fail in
``prepare_config``, as Ray's wheel lacks the provider's defaults file (fake_multi_node/example.yaml),
and ``ray stop`` would stop every Ray on the machine; so each process it started is ended by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.net import free_port, wait_for
from tests.tables import read_table
from tunecast.search.cluster import check_gpus, from_autoscaling_config, from_cluster_config, max_concurrency
from tunecast.search.config import SearchConfig, SearchConfigError

BIN = Path(sys.executable).parent
FAKE_CLUSTER = Path(__file__).with_name("fake-cluster.yaml")


def node(cpus: float, gpus: float = 0, head: bool = False) -> dict[str, Any]:
    return {"node_id": "n", "node_ip": "10.0.0.1", "cpus": cpus, "gpus": gpus, "head": head}


def cluster(nodes: list[dict[str, Any]], autoscaler: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dict as describe_cluster returns it."""
    return {"address": "auto", "nodes": nodes, "total_cpus": sum(n["cpus"] for n in nodes),
            "total_gpus": sum(n["gpus"] for n in nodes), "autoscaler": autoscaler}


def search(**settings: Any) -> SearchConfig:
    return SearchConfig.from_dict({"data": {"source": "sine"}, "trials": 64, **settings})


AWS = from_autoscaling_config(yaml.safe_load((Path(__file__).parents[2] / "cluster.yaml").read_text()),
                              "cluster.yaml")
CPU_HEAD = [node(0, head=True)]  # cluster.yaml's head: --num-cpus=0


def test_cluster_yaml_gives_gpu_workers_the_autoscaler_can_add():
    assert AWS is not None
    assert AWS["max_workers"] == 4 and [t["name"] for t in AWS["node_types"]] == ["worker.gpu"]
    assert AWS["node_types"][0] == {"name": "worker.gpu", "cpus": 4, "gpus": 1, "min_workers": 0,
                                    "max_workers": 4}


def test_gpu_shares_count_the_workers_the_autoscaler_can_add():
    only_head = cluster(CPU_HEAD, AWS)
    check_gpus(0.25, only_head)  # no GPU is up yet, but the autoscaler can add 4
    assert max_concurrency(search(gpus_per_trial=0.25), only_head) == 16  # 4 workers x 4 shares
    assert max_concurrency(search(gpus_per_trial=0.25, trials=10), only_head) == 10
    assert max_concurrency(search(gpus_per_trial=0.25, max_concurrent=3), only_head) == 3
    assert max_concurrency(search(gpus_per_trial=0.5, cpus_per_trial=4), only_head) == 4  # CPU-bound


def test_workers_already_up_are_not_counted_twice():
    one_up = cluster([*CPU_HEAD, node(4, 1)], AWS)
    assert max_concurrency(search(gpus_per_trial=0.25), one_up) == 16
    no_autoscaler = cluster([*CPU_HEAD, node(4, 1)])
    assert max_concurrency(search(gpus_per_trial=0.25), no_autoscaler) == 4  # as before: present only


def test_the_cluster_wide_max_workers_caps_all_types():
    types = {"source": "x", "max_workers": 3, "node_types": [
        {"name": "big", "cpus": 8, "gpus": 2, "min_workers": 0, "max_workers": 2},
        {"name": "small", "cpus": 4, "gpus": 1, "min_workers": 0, "max_workers": 5}]}
    # 2 big (8 shares each at 0.25) + 1 small (4 shares): the cap of 3 workers fills big first
    assert max_concurrency(search(gpus_per_trial=0.25), cluster(CPU_HEAD, types)) == 20
    assert max_concurrency(search(), cluster([node(2, head=True)], types)) == 2 + 2 * 8 + 4


def test_gpus_refused_when_no_node_type_has_any():
    cpu_types = {"source": "x", "max_workers": 4, "node_types": [
        {"name": "worker.cpu", "cpus": 8, "gpus": 0, "min_workers": 0, "max_workers": 4}]}
    refusal = r"has none and none of its autoscaler's node types \(worker\.cpu\) has any: run on CPUs"
    with pytest.raises(SearchConfigError, match=refusal):
        check_gpus(0.25, cluster(CPU_HEAD, cpu_types))
    with pytest.raises(SearchConfigError, match="the Ray cluster has none: run on CPUs"):
        check_gpus(0.25, {"total_gpus": 0})  # the local check in search/run.py: no autoscaler
    no_room = r"no node \(nor node type the autoscaler can add\) has 1 CPU\(s\) and 0.25 GPU"
    with pytest.raises(SearchConfigError, match=no_room):
        max_concurrency(search(gpus_per_trial=0.25, max_concurrent=2), cluster(CPU_HEAD, cpu_types))


def test_node_groups_from_the_gcs_cluster_config():
    """The proto Ray Train and Ray Data read (`ray._private.state.state.get_cluster_config()`)."""
    from ray.core.generated import autoscaler_pb2

    config = autoscaler_pb2.ClusterConfig(node_group_configs=[
        autoscaler_pb2.NodeGroupConfig(name="gpu", resources={"CPU": 4, "GPU": 1}, min_count=0, max_count=-1),
        autoscaler_pb2.NodeGroupConfig(name="cpu", resources={"CPU": 16}, min_count=1, max_count=3)])
    types = from_cluster_config(config)
    assert types["node_types"] == [
        {"name": "gpu", "cpus": 4, "gpus": 1, "min_workers": 0, "max_workers": None},
        {"name": "cpu", "cpus": 16, "gpus": 0, "min_workers": 1, "max_workers": 3}]
    check_gpus(1, cluster(CPU_HEAD, types))
    unlimited = cluster(CPU_HEAD, types)  # max_count -1: as many GPU workers as trials need
    assert max_concurrency(search(gpus_per_trial=0.25, trials=100), unlimited) == 100


# --- a real autoscaling cluster -------------------------------------------------------------


def cluster_processes(marks: tuple[str, ...]) -> list[Any]:
    """Every process whose command line names this cluster (its GCS port, temp dir, or the job's
    storage), with all their descendants: Ray's workers and agents retitle themselves
    (``ray::...``), and the autoscaler's fake workers are not in the `ray start` process group."""
    import psutil

    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid != os.getpid() and any(m in " ".join(proc.info["cmdline"] or []) for m in marks):
            with contextlib.suppress(psutil.Error):
                for p in (proc, *proc.children(recursive=True)):
                    found[p.pid] = p
    return list(found.values())


def kill(processes: list[Any]) -> None:
    import psutil

    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(processes, timeout=10)


@contextlib.contextmanager
def fake_autoscaling_cluster(env: dict[str, str], marks: tuple[str, ...] = ()) -> Iterator[str]:
    """The fake cluster's head (its autoscaler starts the workers); yields the dashboard URL.
    Ends every process of it by PID, and any whose command line holds one of ``marks``."""
    temp = Path(tempfile.mkdtemp(prefix="tc-fake-", dir="/tmp"))  # short: Ray's socket paths
    gcs, dashboard = free_port(), free_port()
    config = yaml.safe_load(FAKE_CLUSTER.read_text())
    config["provider"]["gcs_address"] = f"127.0.0.1:{gcs}"  # the workers' (default: port 6379)
    (temp / "cluster.yaml").write_text(yaml.safe_dump(config))
    ports = ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port", "--ray-client-server-port"]
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--port", str(gcs), "--node-ip-address", "127.0.0.1",
         "--num-cpus", "0", "--num-gpus", "0", "--temp-dir", str(temp / "ray"),
         "--autoscaling-config", str(temp / "cluster.yaml"), "--include-dashboard", "true",
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--disable-usage-stats",
         *[str(x) for p in ports for x in (p, free_port())]],
        env={**env, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"},
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{dashboard}/api/version")
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        marks += (f":{gcs}", f"--port={gcs}", f"gcs_server_port={gcs}", str(temp))
        doomed = cluster_processes(marks)  # while the process tree is whole
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        kill(doomed + cluster_processes(marks))
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_job_on_a_cpu_head_makes_the_autoscaler_add_gpu_workers(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"PATH": f"{BIN}{os.pathsep}{env['PATH']}", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32), "HOME": str(tmp_path / "home")}
    storage = tmp_path / "runs"
    with fake_autoscaling_cluster(env, marks=(str(storage),)) as dashboard:  # + the job's driver
        began = time.time()
        done = subprocess.run(
            [str(BIN / "tunecast"), "submit", "--address", dashboard, "--wait", "--", "--smoke-test",
             "--data", "sine", "--trials", "8", "--max-epochs", "2", "--scheduler", "fifo",
             "--gpus-per-trial", "0.25", "--cpus-per-trial", "0.5", "--storage", str(storage),
             "--name", "autoscaled"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        job_s = time.time() - began
    assert done.returncode == 0 and "SUCCEEDED" in done.stdout, (done.stdout[-4000:], done.stderr[-3000:])
    exp = storage / "autoscaled"
    run = json.loads((exp / "tunecast.json").read_text())
    head_ids = {n["node_id"] for n in run["cluster"]["nodes"]}
    assert len(head_ids) == 1 and run["cluster"]["total_gpus"] == 0  # only the head at start
    assert run["cluster"]["autoscaler"]["node_types"][0]["name"] == "worker.gpu"
    assert run["max_concurrent"] == 8  # 2 workers x 4 GPU shares, none of them up at start
    trials = read_table(exp / "trials.csv")
    assert len(trials) == 8 and (trials["status"] == "completed").all(), trials
    assert (trials["gpu_share"] == 0.25).all()
    assert not set(trials["node_id"]) & head_ids  # every trial on an autoscaled GPU worker
    per_worker = trials["node_id"].value_counts()
    first = trials["start_time"].min() - began
    print(f"fake autoscaling cluster: first trial on an autoscaled GPU worker {first:.1f} s after submit; "
          f"trials per worker {sorted(per_worker.tolist(), reverse=True)}; job {job_s:.1f} s")
