"""``tunecast submit``: send a search to a running Ray cluster as a Ray Job.

The job's entrypoint is ``tunecast search --address auto ...``: the driver runs on the head
node, joins the cluster, and writes the experiment to ``--storage`` (shared storage on a
multi-node cluster). No ``--working-dir`` is uploaded: tunecast is installed on every node by
the cluster's setup commands, so the job does not depend on Ray's runtime-resources folder.
"""

from __future__ import annotations

import argparse
import shlex
import time
from typing import Any

from expdir import one_line
from search.config import SearchConfigError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def add_submit_parser(sub: Any) -> None:
    p = sub.add_parser(
        "submit",
        help="submit a search to a Ray cluster as a Ray Job",
        description="Submit `tunecast search ARGS` to a running Ray cluster. Example: "
        "tunecast submit --address http://127.0.0.1:8265 -- --data co2 --trials 64 "
        "--gpus-per-trial 0.25 --storage /mnt/shared/tunecast-runs",
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
    if any(a == "--resume" for a in args):
        raise SearchConfigError("resume a search on the head node itself, not through submit")
    return shlex.join(["tunecast", "search", "--address", "auto", *args])


def _submit(client: Any, command: str, job_id: str | None, patience_s: float = 90) -> str:
    """Submit, waiting while a freshly started head has no job agent yet ("try again later")."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return str(client.submit_job(entrypoint=command, submission_id=job_id))
        except RuntimeError as exc:
            if "try again later" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def run_submit_command(args: argparse.Namespace) -> int:
    try:
        from ray.job_submission import JobStatus, JobSubmissionClient
    except ImportError:
        raise SearchConfigError(
            "job submission needs Ray's job client: pip install 'tunecast[cluster]'"
        ) from None
    command = entrypoint(args.search_args)
    try:
        client = JobSubmissionClient(args.address)
        job_id = _submit(client, command, args.job_id)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SearchConfigError(
            f"cannot submit to the Ray cluster at {args.address} ({one_line(exc)}): start it (`ray up "
            "cluster.yaml`) and reach its dashboard (`ray dashboard cluster.yaml`)"
        ) from None
    print(f"submitted job {job_id} to {args.address}: {command}")
    print(f"follow its logs: ray job logs --address {args.address} --follow {job_id}")
    print(f"its status:      ray job status --address {args.address} {job_id}")
    if not args.wait:
        return 0
    while (status := client.get_job_status(job_id)) not in TERMINAL:
        time.sleep(2)
    print(client.get_job_logs(job_id), end="")
    print(f"job {job_id}: {status}")
    return 0 if status == JobStatus.SUCCEEDED else 1
