"""What the Ray cluster offers, and the checks made before a search starts."""

from __future__ import annotations

import math
import socket
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from search.config import SearchConfig, SearchConfigError


def describe_cluster(address: str | None) -> dict[str, Any]:
    """Alive nodes with their CPUs and GPUs (for tunecast.json and the checks)."""
    nodes = [
        {
            "node_id": n["NodeID"],
            "node_ip": n["NodeManagerAddress"],
            "cpus": float(n["Resources"].get("CPU", 0)),
            "gpus": float(n["Resources"].get("GPU", 0)),
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]
    return {
        "address": address or "local",
        "nodes": nodes,
        "total_cpus": sum(n["cpus"] for n in nodes),
        "total_gpus": sum(n["gpus"] for n in nodes),
    }


CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must answer a TCP connect within
    ``timeout`` seconds: ``ray.init`` would otherwise retry for minutes. ``auto`` and other
    forms are left to Ray."""
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
    if gpus_per_trial > 0 and cluster["total_gpus"] == 0:
        raise SearchConfigError(
            f"--gpus-per-trial {gpus_per_trial:g} asks for GPUs but the Ray cluster has none: "
            "run on CPUs with --gpus-per-trial 0, or connect to a cluster with GPUs (--address)"
        )


def max_concurrency(config: SearchConfig, cluster: dict[str, Any]) -> int:
    """How many trials fit at once: every free CPU/GPU share runs one (or the user's limit)."""

    def fit(node: dict[str, Any]) -> int:
        by_cpu = math.floor(node["cpus"] / config.cpus_per_trial + 1e-9)
        if config.gpus_per_trial == 0:
            return by_cpu
        return min(by_cpu, math.floor(node["gpus"] / config.gpus_per_trial + 1e-9))

    fits = [fit(n) for n in cluster["nodes"]]
    total = sum(fits)
    if total < 1:
        raise SearchConfigError(
            f"no node has {config.cpus_per_trial:g} CPU(s)"
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
