"""``--address`` to a port where nothing listens answers within seconds (Ray itself retries for
minutes), with one line and exit 2; ``auto`` and reachable addresses go on to ``ray.init``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.cluster.net import closed_port
from tunecast.search.cluster import check_reachable
from tunecast.search.config import SearchConfigError


def test_closed_port_answers_within_30_s(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tunecast", "search",
         "--address", f"127.0.0.1:{closed_port()}", "--storage", "runs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )
    seconds = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: cannot connect to a Ray cluster at '127.0.0.1:")
    assert seconds < 30 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("form", ["{}", "ray://{}", "ray://{}/"])
def test_check_reachable(form):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(form.format(f"127.0.0.1:{server.getsockname()[1]}"))  # listening: passes
    with pytest.raises(SearchConfigError, match="Connection refused"):
        check_reachable(form.format(f"127.0.0.1:{closed_port()}"))


@pytest.mark.parametrize("address", [None, "", "auto", "localhost", "http://127.0.0.1:8265/x"])
def test_other_addresses_are_left_to_ray(address):
    started = time.monotonic()
    check_reachable(address)
    assert time.monotonic() - started < 1
