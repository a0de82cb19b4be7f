"""cluster.yaml validates offline against the schema inside the installed ray package."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def commands(config: dict) -> str:
    keys = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    return "\n".join(c for k in keys for c in config.get(k) or [])


@pytest.mark.parametrize("name", CONFIGS)
def test_validates_against_rays_schema(name):
    jsonschema.validate(load(name), SCHEMA)


@pytest.mark.parametrize("name", CONFIGS)
def test_setup_installs_the_project_with_pinned_dependencies(name):
    config = load(name)
    setup = "\n".join(config["setup_commands"])
    assert re.search(r"pip install -e \S*tunecast\[cluster\]", setup)
    assert "torch==2.13.0" in setup and f"ray[default,tune]=={ray.__version__}" in setup
    assert "." in config["file_mounts"].values()  # the project itself travels to every node


@pytest.mark.parametrize("name", CONFIGS)
def test_dashboard_not_exposed_and_token_auth_on(name):
    config = load(name)
    text = commands(config)
    assert "0.0.0.0" not in (ROOT / name).read_text()
    assert "--dashboard-host=127.0.0.1" in text
    assert "RAY_AUTH_MODE=disabled" not in text
    for start in config["head_start_ray_commands"][1:] + config["worker_start_ray_commands"][1:]:
        assert "RAY_AUTH_MODE=token" in start
    assert any("auth_token" in target for target in config["file_mounts"])


@pytest.mark.parametrize("name", CONFIGS)
def test_experiments_go_to_shared_storage(name):
    config = load(name)
    assert "/mnt/shared" in "\n".join(config["initialization_commands"])
    assert "--storage /mnt/shared/" in (ROOT / name).read_text()


def test_aws_config_has_a_cpu_head_and_autoscaling_gpu_workers():
    config = load("cluster.yaml")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    gpu_types = [t for name, t in types.items() if t["resources"].get("GPU")]
    assert gpu_types
    for node_type in gpu_types:
        gpus = node_type["resources"]["GPU"]
        assert isinstance(gpus, int) and gpus >= 1
        assert 0 <= node_type["min_workers"] < node_type["max_workers"] <= config["max_workers"]
    assert "nfs4" in "\n".join(config["initialization_commands"])
