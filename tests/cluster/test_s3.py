"""`--storage s3://...` end to end against a real S3-compatible server (moto's server mode) that
the test starts on 127.0.0.1 and stops by PID. The CLI runs in subprocesses with the environment
a user of an S3-compatible store has: the endpoint in ``AWS_ENDPOINT_URL``, dummy credentials."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
import yaml

from tests.cluster.net import free_port
from tests.conftest import SMALL_SPACE
from tests.tables import read_table

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
TRIALS = 4


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 server with one bucket; yields the environment a user would have."""
    pytest.importorskip("moto")
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket="runs")
        yield {**env, "client": client}  # type: ignore[dict-item]
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def tunecast(env: dict, cwd: Path, *args: str, **popen: object):
    clean = {k: v for k, v in env.items() if k != "client"}
    return subprocess.Popen([str(BIN / "tunecast"), *args], cwd=cwd, env=clean, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def keys(s3: dict, prefix: str) -> set[str]:
    pages = s3["client"].get_paginator("list_objects_v2").paginate(Bucket="runs", Prefix=prefix)
    return {o["Key"][len(prefix):] for page in pages for o in page.get("Contents", [])}


def read(s3: dict, key: str) -> str:
    return s3["client"].get_object(Bucket="runs", Key=key)["Body"].read().decode()


def test_search_interrupted_resumed_and_reported_on_s3(s3, tmp_path):
    """A search on S3, stopped with Ctrl-C after its first trial, resumed by URI to exactly N
    trials, its report written beside it; nothing lands in the working folder."""
    (tmp_path / "small.yaml").write_text(yaml.safe_dump({"space": SMALL_SPACE}))
    uri = "s3://runs/exp/sine"
    driver = tunecast(s3, tmp_path, "search", "--data", "sine", "--trials", str(TRIALS), "--config",
                      "small.yaml", "--max-epochs", "15", "--scheduler", "fifo", "--max-concurrent",
                      "1", "--storage", "s3://runs/exp", "--name", "sine", "--quiet",
                      start_new_session=True)
    deadline = time.monotonic() + 180
    while len({k.split("/")[0] for k in keys(s3, "exp/sine/") if k.startswith("train_trial_")}) < 2:
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-2000:]
    assert f"resume with: tunecast search --resume {uri}" in out
    assert '"status": "interrupted"' in read(s3, "exp/sine/tunecast.json")
    before = read_table(StringIO(read(s3, "exp/sine/trials.csv")))
    done_before = set(before.loc[before["status"] == "completed", "trial_id"])
    assert done_before

    resumed = tunecast(s3, tmp_path, "search", "--resume", uri, "--quiet")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert f"report: {uri}/report.html" in out
    trials = read_table(StringIO(read(s3, "exp/sine/trials.csv")))
    assert len(trials) == TRIALS and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"completed", "stopped"}
    assert done_before <= set(trials["trial_id"])
    stored = keys(s3, "exp/sine/")
    for name in ("tunecast.json", "history.csv", "importance.json", "report.html", "best/model.pt",
                 "best/metrics.json", "forecast/forecast.csv"):
        assert name in stored
    assert not [k for k in stored if k.startswith(".tunecast")]  # the lock stays local
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]  # nothing written here

    report = tunecast(s3, tmp_path, "report", uri)
    out, err = report.communicate(timeout=120)
    assert report.returncode == 0, err
    assert out.strip() == f"{uri}/report.html"


def test_missing_bucket_is_one_line_before_ray_starts(s3, tmp_path):
    started = time.monotonic()
    run = tunecast(s3, tmp_path, "search", "--smoke-test", "--storage", "s3://no-such-bucket/x")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write to 's3://no-such-bucket/x'")
    assert "Traceback" not in err and time.monotonic() - started < 30


API_ON_S3 = """
from tunecast import TuneCast, load_dataset
tc = TuneCast(storage="s3://runs/api", name="air", horizon=3, season_length=12, smoke_test=True,
              quiet=True, no_report=True, origins=0, no_combine=True).fit(load_dataset("airline"))
print(len(tc.predict(h=4)), tc.path)
"""


def test_the_python_api_searches_on_s3_like_the_cli(s3, tmp_path):
    """``TuneCast(storage="s3://...")``: the experiment, the frame it was fitted on included,
    lands in the bucket; the forecast comes from the local working copy."""
    # a notebook's environment: the store's variables, none of Ray's (the suite sets its auth token)
    env = {k: v for k, v in s3.items() if k != "client" and not k.startswith(("RAY_", "TUNE_"))}
    done = subprocess.run([sys.executable, "-c", API_ON_S3], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "4"
    stored = keys(s3, "api/air/")
    for name in ("tunecast.json", "data.parquet", "best/model.pt", "forecast/forecast.csv"):
        assert name in stored
    assert list(tmp_path.iterdir()) == []  # nothing written in the working folder
