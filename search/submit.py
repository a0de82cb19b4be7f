"""``tunecast submit``: send a search to a running Ray cluster as a Ray Job.

The entrypoint is ``tunecast search --address auto ...`` on the head (tunecast is installed on
every node, so no ``--working-dir``). ``ray job stop`` sends SIGINT, so the search is resumable.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import string
import sys
import time
from typing import Any

from tunecast.expdir import one_line
from tunecast.search.config import SearchConfigError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
TOKEN_SOURCES = "RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token"
TOKEN_FIX = (
    "copy the cluster's token (`ray get-auth-token` on its head) to ~/.ray/auth_token, "
    "or set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"
)
# `ray job stop` sends SIGINT (the search saves its state) and waits this long before SIGKILL
# (Ray's default 3 s is too short to write the results).
STOP_WAIT_S = 60
JOB_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}


def add_submit_parser(sub: Any) -> None:
    p = sub.add_parser(
        "submit",
        help="submit a search to a Ray cluster as a Ray Job",
        description="Submit `tunecast search ARGS` to a running Ray cluster. Example: "
        "tunecast submit --address http://127.0.0.1:8265 -- --data co2 --trials 64 "
        "--gpus-per-trial 0.25 --storage /mnt/shared/tunecast-runs. Continue a stopped job's "
        "search: tunecast submit --address URL -- --resume /mnt/shared/tunecast-runs/NAME. "
        f"The cluster's auth token is read as Ray's CLI reads it ({TOKEN_SOURCES}).",
    )
    p.add_argument(
        "--address",
        required=True,
        help="the cluster's dashboard, e.g. http://127.0.0.1:8265 (via `ray dashboard cluster.yaml`)",
    )
    p.add_argument("--job-id", help="submission id (default: Ray picks one)")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its logs")
    p.add_argument("search_args", nargs=argparse.REMAINDER, help="options for `tunecast search`, after --")


def entrypoint(search_args: list[str]) -> str:
    args = [a for a in search_args if a != "--"] if search_args[:1] == ["--"] else list(search_args)
    if args[:1] == ["search"]:
        args = args[1:]
    if any(a == "--address" or a.startswith("--address=") for a in args):
        raise SearchConfigError("the job joins its own cluster (--address auto): drop --address after --")
    for i, arg in enumerate(args):
        folder = arg.partition("=")[2] if arg.startswith("--resume=") else None
        if arg == "--resume":
            folder = args[i + 1] if i + 1 < len(args) else ""
        if folder is not None and not (folder.startswith("/") or "://" in folder):
            raise SearchConfigError(
                f"--resume {folder!r}: give the experiment's absolute path on the cluster (or its "
                "URI), as the stopped search printed it: the job does not run in this folder"
            )
    return shlex.join(["tunecast", "search", "--address", "auto", *args])


def auth_headers() -> dict[str, str]:
    """The cluster's token as an HTTP header, found where Ray's CLI finds it, or {} if none
    (read whatever ``RAY_AUTH_MODE`` says; a cluster without auth ignores it)."""
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
    from ray.exceptions import AuthenticationError

    try:
        header = AuthenticationTokenLoader.instance().get_token_for_http_header(ignore_auth_mode=True)
    except AuthenticationError as exc:  # e.g. RAY_AUTH_TOKEN_PATH names a missing file
        message = one_line(exc).split(". Note:")[0]
        raise SearchConfigError(f"cannot read the Ray auth token ({message}): {TOKEN_FIX}") from None
    return {str(k): str(v) for k, v in header.items()}


def ray_cli(headers: dict[str, str]) -> str:
    """How to call Ray's CLI here (`ray job` sends the token only with RAY_AUTH_MODE=token)."""
    if headers and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return "RAY_AUTH_MODE=token ray"
    return "ray"


def new_job_id() -> str:
    """A submission id made here, so a retried submission cannot create the job twice."""
    letters = [c for c in string.ascii_letters + string.digits if c not in "IloO0"]
    return "raysubmit_" + "".join(secrets.choice(letters) for _ in range(16))


def _dropped(exc: BaseException) -> bool:
    """The connection failed or closed without an answer: worth asking again."""
    import requests

    return isinstance(exc, (ConnectionError, requests.exceptions.ConnectionError))


def _submit(client: Any, command: str, job_id: str, patience_s: float = 90) -> str:
    """Submit, retrying while the head has no job agent yet or the connection drops."""
    deadline = time.monotonic() + patience_s
    dropped = False
    while True:
        try:
            return str(client.submit_job(entrypoint=command, submission_id=job_id,
                                         runtime_env={"env_vars": JOB_ENV}))
        except Exception as exc:
            if dropped and isinstance(exc, RuntimeError) and "already exists" in str(exc):
                return job_id
            if not (_dropped(exc) or "try again later" in str(exc)) or time.monotonic() > deadline:
                raise
            dropped = dropped or _dropped(exc)
            time.sleep(2)


class ClusterLost(Exception):
    """``--wait`` could not follow the job any more (the job goes on)."""


def _wait(client: Any, job_id: str, address: str, ray: str, patience_s: float = 120) -> Any:
    """The job's final status, polled every 2 s; silence beyond ``patience_s`` ends the wait."""
    last_answer = time.monotonic()
    while True:
        try:
            status = client.get_job_status(job_id)
            last_answer = time.monotonic()
            if status in TERMINAL:
                return status
        except Exception as exc:
            if not _dropped(exc) or time.monotonic() - last_answer > patience_s:
                raise ClusterLost(
                    f"stopped following job {job_id} on the Ray cluster at {address} ({one_line(exc)}); "
                    f"the job may still run there: {ray} job status --address {address} {job_id}"
                ) from None
        time.sleep(2)


def run_submit_command(args: argparse.Namespace) -> int:
    try:
        from ray.exceptions import AuthenticationError
        from ray.job_submission import JobStatus, JobSubmissionClient
    except ImportError:
        raise SearchConfigError(
            "job submission needs Ray's job client: pip install 'tunecast[cluster]'"
        ) from None
    command = entrypoint(args.search_args)
    headers = auth_headers()
    try:
        client = JobSubmissionClient(args.address, headers=headers)
        job_id = _submit(client, command, args.job_id or new_job_id())
    except AuthenticationError:
        problem = "refused the auth token found in" if headers else "needs an auth token and none is in"
        raise SearchConfigError(
            f"the Ray cluster at {args.address} {problem} {TOKEN_SOURCES}: {TOKEN_FIX}"
        ) from None
    except Exception as exc:
        if not (_dropped(exc) or isinstance(exc, (RuntimeError, ValueError))):
            raise
        raise SearchConfigError(
            f"cannot submit to the Ray cluster at {args.address} ({one_line(exc)}): start it (`ray up "
            "cluster.yaml`) and reach its dashboard (`ray dashboard cluster.yaml`)"
        ) from None
    ray = ray_cli(headers)
    print(f"submitted job {job_id} to {args.address}: {command}")
    print(f"follow its logs: {ray} job logs --address {args.address} --follow {job_id}")
    print(f"its status:      {ray} job status --address {args.address} {job_id}")
    print(f"stop it:         {ray} job stop --address {args.address} {job_id}  (resumable: -- --resume DIR)")
    if not args.wait:
        return 0
    try:
        status = _wait(client, job_id, args.address, ray)
    except ClusterLost as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        logs = client.get_job_logs(job_id)
    except Exception as exc:
        if not _dropped(exc):
            raise
        print(f"error: job {job_id} ended {status} but its logs could not be read ({one_line(exc)}): "
              f"{ray} job logs --address {args.address} {job_id}", file=sys.stderr)
        return 0 if status == JobStatus.SUCCEEDED else 1
    print(logs, end="")
    print(f"job {job_id}: {status}")
    return 0 if status == JobStatus.SUCCEEDED else 1
