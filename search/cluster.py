"""What the Ray cluster offers, and the checks made before a search starts.

:func:`describe_cluster` also reads the autoscaler's node types, so the GPU check accepts GPUs
it can add and the search queues enough trials to make it launch workers.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import ray
import yaml
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tunecast.search.config import SearchConfig, SearchConfigError

HEAD_RESOURCE = "node:__internal_head__"  # the resource Ray gives the head node only
AUTOSCALER_TIMEOUT_S = 30.0


def describe_cluster(address: str | None) -> dict[str, Any]:
    """Alive nodes with their CPUs and GPUs, and what the autoscaler can add (for tunecast.json
    and the checks). ``autoscaler`` is None without one (a local Ray, a fixed set of nodes)."""
    nodes = [
        {
            "node_id": n["NodeID"],
            "node_ip": n["NodeManagerAddress"],
            "cpus": float(n["Resources"].get("CPU", 0)),
            "gpus": float(n["Resources"].get("GPU", 0)),
            "head": HEAD_RESOURCE in n["Resources"],
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]
    return {
        "address": address or "local",
        "nodes": nodes,
        "total_cpus": sum(n["cpus"] for n in nodes),
        "total_gpus": sum(n["gpus"] for n in nodes),
        "autoscaler": autoscaler_node_types(nodes) if address else None,
    }


def autoscaler_node_types(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The worker node types the autoscaler may launch: ``{"source", "max_workers",
    "node_types": [{"name", "cpus", "gpus", "min_workers", "max_workers"}]}``, or None.

    Ray has no public API for this: first the GCS cluster config (private ``ray._private.state``),
    else the config file of the head's autoscaler (``monitor.py``), read on the head by a task.
    """
    from ray._private import state  # private: guarded, a missing API only means "no autoscaler"

    try:
        config = state.state.get_cluster_config()
    except Exception:  # an older or newer Ray without it, or a GCS that cannot answer
        config = None
    if config is not None and config.node_group_configs:
        return from_cluster_config(config)
    head = next((n for n in nodes if n["head"]), None)
    if head is None:
        return None
    port = str(ray.get_runtime_context().gcs_address).rpartition(":")[2]
    task = _read_autoscaling_config.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(head["node_id"], soft=False)
    ).remote(port)
    try:
        return ray.get(task, timeout=AUTOSCALER_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(task, force=True)
        return None


def from_cluster_config(config: Any) -> dict[str, Any]:
    """Node types from the GCS's ``autoscaler_pb2.ClusterConfig`` (max_count -1: no limit)."""
    types = [
        {
            "name": group.name,
            "cpus": float(group.resources.get("CPU", 0)),
            "gpus": float(group.resources.get("GPU", 0)),
            "min_workers": int(group.min_count),
            "max_workers": None if group.max_count < 0 else int(group.max_count),
        }
        for group in config.node_group_configs
    ]
    return {"source": "gcs cluster config", "max_workers": None, "node_types": types}


def from_autoscaling_config(config: dict[str, Any], source: str) -> dict[str, Any] | None:
    """Worker node types from an autoscaling config YAML (a type without ``resources`` offers
    nothing until it is up)."""
    available = config.get("available_node_types") or {}
    head_type = config.get("head_node_type")
    types = [
        {
            "name": name,
            "cpus": float((spec.get("resources") or {}).get("CPU", 0)),
            "gpus": float((spec.get("resources") or {}).get("GPU", 0)),
            "min_workers": int(spec.get("min_workers", 0)),
            "max_workers": int(spec.get("max_workers", config.get("max_workers", 0))),
        }
        for name, spec in available.items()
        if name != head_type
    ]
    if not types:
        return None
    return {"source": source, "max_workers": config.get("max_workers"), "node_types": types}


@ray.remote(num_cpus=0)
def _read_autoscaling_config(gcs_port: str) -> dict[str, Any] | None:
    """On the head: the config of the autoscaler serving the GCS on ``gcs_port``, if any."""
    path = _monitor_config_path(gcs_port)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None
    return from_autoscaling_config(config, path) if isinstance(config, dict) else None


def _monitor_config_path(gcs_port: str) -> str | None:
    """``--autoscaling-config`` of this cluster's ``monitor.py``, found by its ``--gcs-address``
    (several clusters may share a host)."""
    try:
        import psutil
    except ImportError:
        return None
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info["cmdline"] or []
        if not any(a.endswith(os.path.join("autoscaler", "_private", "monitor.py")) for a in args):
            continue
        flags = dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith("--") and "=" in a)
        if flags.get("gcs-address", "").rpartition(":")[2] == gcs_port and flags.get("autoscaling-config"):
            return os.path.expanduser(flags["autoscaling-config"])
    return None


CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A ``host:port`` (or ``ray://``) address must answer a TCP connect within ``timeout``
    (``ray.init`` would retry for minutes); other forms are left to Ray."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit() or "/" in hostport:
        return
    host = host.strip("[]")  # [::1]:6379
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise SearchConfigError(
            f"cannot connect to a Ray cluster at '{address}': {reason}; start one with "
            "`ray start --head` or drop --address to run locally"
        ) from None


def check_gpus(gpus_per_trial: float, cluster: dict[str, Any]) -> None:
    """GPUs asked for must be on a node, or on a node type the autoscaler can add."""
    if gpus_per_trial <= 0 or cluster["total_gpus"] > 0:
        return
    types = worker_types(cluster)
    if any(t["gpus"] > 0 and t["max_workers"] != 0 for t in types):
        return
    names = ", ".join(t["name"] for t in types)
    where = f" and none of its autoscaler's node types ({names}) has any" if types else ""
    raise SearchConfigError(
        f"--gpus-per-trial {gpus_per_trial:g} asks for GPUs but the Ray cluster has none{where}: "
        "run on CPUs with --gpus-per-trial 0, or connect to a cluster with GPUs (--address)"
    )


def worker_types(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """The autoscaler's worker node types ([] without an autoscaler)."""
    autoscaler = cluster.get("autoscaler") or {}
    return list(autoscaler.get("node_types") or [])


def max_concurrency(config: SearchConfig, cluster: dict[str, Any]) -> int:
    """How many trials run at once: one per free CPU/GPU share (or the user's limit); with an
    autoscaler, counting every worker it may launch (queued trials make it add them)."""

    def fit(node: dict[str, Any]) -> int:
        by_cpu = math.floor(node["cpus"] / config.cpus_per_trial + 1e-9)
        if config.gpus_per_trial == 0:
            return by_cpu
        return min(by_cpu, math.floor(node["gpus"] / config.gpus_per_trial + 1e-9))

    present = sum(fit(n) for n in cluster["nodes"])
    scaled = sum(fit(n) for n in cluster["nodes"] if n.get("head"))
    budget = (cluster.get("autoscaler") or {}).get("max_workers")  # the cluster-wide cap
    for node_type in sorted(worker_types(cluster), key=fit, reverse=True):
        count = config.trials if node_type["max_workers"] is None else node_type["max_workers"]
        count = count if budget is None else min(count, budget)
        budget = None if budget is None else budget - count
        scaled += fit(node_type) * count
    total = max(present, scaled)
    if total < 1:
        raise SearchConfigError(
            f"no node (nor node type the autoscaler can add) has {config.cpus_per_trial:g} CPU(s)"
            + (f" and {config.gpus_per_trial:g} GPU" if config.gpus_per_trial else "")
            + " free for one trial: lower --cpus-per-trial / --gpus-per-trial"
        )
    if config.max_concurrent is not None:
        return min(config.max_concurrent, config.trials)
    return max(1, min(total, config.trials))


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return Path(path).exists()


def check_shared_storage(storage: Path, cluster: dict[str, Any]) -> None:
    """On a multi-node cluster, every node must see the storage folder (NFS or the like)."""
    if len(cluster["nodes"]) < 2:
        return
    storage.mkdir(parents=True, exist_ok=True)
    marker = storage / f".tunecast-shared-{uuid.uuid4().hex}"
    marker.touch()
    try:
        checks = [
            _sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["node_id"], soft=False)
            ).remote(str(marker))
            for n in cluster["nodes"]
        ]
        seen = ray.get(checks, timeout=60)
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["node_ip"] for n, ok in zip(cluster["nodes"], seen, strict=True) if not ok]
    if blind:
        raise SearchConfigError(
            f"storage '{storage}' is local to this machine: node(s) {', '.join(blind)} cannot see "
            "it; a multi-node search needs shared storage (an NFS mount on every node) via --storage"
        )
