"""The cluster configs pass the checks `ray up` makes before it touches a machine.

`ray up` (ray/autoscaler/_private/commands.py, ``_bootstrap_config``) runs ``prepare_config``
(Ray's defaults merged in, the `local` provider's node type made), the provider's
``fillout_available_node_types_resources``, ``validate_config`` (schema and cross-field checks),
then the provider's ``bootstrap_config``. Every step that needs no cloud or SSH runs here on the
real Ray functions: AWS's resource fill-out and bootstrap call AWS, and cluster.yaml names its
node types' resources itself, so they have nothing to add offline.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from ray.autoscaler._private.providers import _NODE_PROVIDERS
from ray.autoscaler._private.util import prepare_config, validate_config

from tunecast.search.cluster import from_autoscaling_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]
OFFLINE_PROVIDERS = {"local"}  # providers whose fill-out and bootstrap contact no machine


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def bootstrap_offline(config: dict[str, Any]) -> dict[str, Any]:
    """`ray up`'s ``_bootstrap_config`` without its cache and without network calls."""
    config = prepare_config(copy.deepcopy(config))
    provider = config["provider"]
    offline = provider["type"] in OFFLINE_PROVIDERS
    provider_cls = _NODE_PROVIDERS[provider["type"]](provider) if offline else None
    if provider_cls is not None:
        config = provider_cls.fillout_available_node_types_resources(config)
    validate_config(config)
    return provider_cls.bootstrap_config(config) if provider_cls is not None else config


def start_commands(config: dict[str, Any]) -> list[str]:
    return [c for k in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[k]]


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_up_accepts_the_config(name):
    config = bootstrap_offline(load(name))
    assert config["head_node_type"] in config["available_node_types"]
    assert "cluster_synced_files" in config  # Ray's defaults were merged in


def test_onprem_config_gets_the_local_providers_node_type():
    """A config naming the internal type `local.cluster.node` is taken as prepared already and
    skips Ray's defaults (validate_config: "Missing 'cluster_synced_files' field")."""
    raw = load("cluster-onprem.yaml")
    assert "available_node_types" not in raw and "head_node_type" not in raw
    config = bootstrap_offline(raw)
    workers = len(raw["provider"]["worker_ips"])
    assert config["available_node_types"]["local.cluster.node"]["max_workers"] == workers
    assert from_autoscaling_config(config, "x") is None  # every node is up: nothing to autoscale


def test_aws_config_uses_rays_image_for_this_ray_with_gpus():
    config = bootstrap_offline(load("cluster.yaml"))
    docker = config["docker"]
    version = ray.__version__
    assert docker["image"] == f"rayproject/ray:{version}-py311-gpu"
    assert docker["head_image"] == f"rayproject/ray:{version}-py311-cpu"
    assert docker["container_name"]


@pytest.mark.parametrize("name", CONFIGS)
def test_setup_installs_the_project_with_pinned_dependencies(name):
    config = bootstrap_offline(load(name))
    for role in ("head", "worker"):
        setup = "\n".join(config[f"{role}_setup_commands"])  # setup_commands merged in
        assert re.search(r"pip install .*-e \S*tunecast\[cluster\]", setup), setup
        assert "torch==2.13.0" in setup and f"ray[default,tune]=={ray.__version__}" in setup
    assert "." in config["file_mounts"].values()  # the project itself travels to every node
    assert "boto3" in (ROOT / "pyproject.toml").read_text().split("cluster = ")[1].splitlines()[0]


@pytest.mark.parametrize("name", CONFIGS)
def test_dashboard_not_exposed_and_token_auth_on(name):
    config = load(name)
    assert "0.0.0.0" not in (ROOT / name).read_text()
    assert "--dashboard-host=127.0.0.1" in "\n".join(config["head_start_ray_commands"])
    for start in start_commands(config):
        assert "RAY_AUTH_MODE=disabled" not in start
        assert start == "ray stop" or "RAY_AUTH_MODE=token" in start
    assert any("auth_token" in target for target in config["file_mounts"])


@pytest.mark.parametrize("name", CONFIGS)
def test_the_head_runs_no_trials(name):
    head = load(name)["head_start_ray_commands"][-1]
    assert "--num-cpus=0" in head and "--head" in head


def test_aws_experiments_go_to_s3_which_every_node_can_reach():
    config = load("cluster.yaml")
    assert "--storage s3://" in (ROOT / "cluster.yaml").read_text()
    for node_type in config["available_node_types"].values():  # the head gets Ray's default role
        if node_type["resources"].get("GPU"):
            assert "ray-autoscaler-v1" in node_type["node_config"]["IamInstanceProfile"]["Arn"]


def test_onprem_experiments_go_to_shared_storage():
    config = load("cluster-onprem.yaml")
    assert "/mnt/shared" in "\n".join(config["initialization_commands"])
    assert "--storage /mnt/shared/" in (ROOT / "cluster-onprem.yaml").read_text()


def test_aws_config_has_a_cpu_head_and_autoscaling_gpu_workers():
    config = bootstrap_offline(load("cluster.yaml"))
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}  # as --num-cpus=0 says
    scalable = from_autoscaling_config(config, "~/ray_bootstrap_config.yaml")  # what the head reads
    assert scalable is not None and scalable["node_types"]
    for node_type in scalable["node_types"]:
        assert node_type["gpus"] >= 1 and node_type["gpus"] == int(node_type["gpus"])
        assert 0 <= node_type["min_workers"] < node_type["max_workers"] <= config["max_workers"]
