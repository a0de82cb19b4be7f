"""The Ray adapter: Tune config dict -> TrainConfig -> fit(), its epochs reported to Tune.

The only place that calls Ray's reporting API. A report carries the epoch's metrics, the trial's
node/device/start, and, when ``best_val_loss`` improved, a ``model.checkpoint`` of the best
weights (``num_to_keep=1``). Reports block the trial for a few ms, so a trial reports its first
and last epoch, ASHA's rung epochs, and otherwise at most every ``report_every_s`` seconds; the
epochs in between ride along in ``EPOCHS``. A checkpoint also stores the rows it covers
(``TRAIL_FILE``), so a resumed trial loses no epoch. A diverged trial does not raise (Tune would
retry it): its last report carries ``DIVERGED``.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from tunecast.model import checkpoint
from tunecast.model.training import Resume, fit
from tunecast.search.plan import SearchPlan

DIVERGED = "diverged"  # the key of the report that ends a diverged trial: its error message
EPOCHS = "epochs"  # the key of a report's earlier, unreported epochs: a JSON list of their rows
EPOCH_KEYS = ("epoch", "train_loss", "val_loss", "best_val_loss", "last_epoch", "wall_time")
ORIGIN = ("node_id", "node_ip", "device", "gpu_share", "trial_start")  # a trail row keeps its attempt's
TRAIL_FILE = "epochs.json"  # in a trial's checkpoint: its report's rows up to the checkpoint's epoch


def trial_device(gpu_share: float) -> torch.device:
    """CUDA when Ray gave this trial a GPU share and CUDA exists, else CPU. A share below 1
    caps CUDA memory to it (Ray shares a GPU logically, not its memory)."""
    gpu_ids = ray.get_gpu_ids() if ray.is_initialized() else []
    if gpu_share > 0 and gpu_ids and torch.cuda.is_available():
        device = torch.device("cuda", 0)  # Ray sets CUDA_VISIBLE_DEVICES to the assigned GPU
        if gpu_share < 1:
            torch.cuda.set_per_process_memory_fraction(gpu_share, device)
        return device
    return torch.device("cpu")


def _resume_point() -> tuple[Resume | None, list[dict[str, Any]]]:
    """The best checkpoint of an earlier attempt of this trial, and the epochs up to it
    (``TRAIL_FILE``: its report may never have reached the driver)."""
    saved = tune.get_checkpoint()
    if saved is None:
        return None, []
    with saved.as_directory() as folder:
        model, info = checkpoint.load(folder)
        trail = Path(folder) / TRAIL_FILE
        rows = json.loads(trail.read_text()) if trail.is_file() else []
    best_val_loss = float(info.val_loss or math.inf)
    return Resume(state=model.state_dict(), epoch=info.epoch, best_val_loss=best_val_loss), rows


def train_trial(config: dict[str, Any], plan: SearchPlan) -> None:
    """Tune function trainable: train one configuration and report its epochs."""
    train_config = plan.train_config(config)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # Ray Train's logger: a line per checkpoint
    data = plan.data
    gpu_share = float(plan.resources["gpu"])
    torch.set_num_threads(max(1, int(plan.resources["cpu"])))
    device = trial_device(gpu_share)
    context = ray.get_runtime_context()
    resume, trail = _resume_point()
    static = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "device": str(device),
        "gpu_share": gpu_share,
        "trial_start": time.time(),
        "resumed_from_epoch": resume.epoch if resume is not None else 0,
    }
    best: dict[str, Any] = {}
    rungs = plan.config.rung_epochs()
    unreported = list(trail)  # epochs since the last report, oldest first
    last_report = [-math.inf]

    def on_improve(state: dict[str, torch.Tensor], metrics: dict[str, Any]) -> None:
        best["state"], best["epoch"] = state, metrics["epoch"]

    def report(row: dict[str, Any], **extra: Any) -> None:
        """``row`` to Tune with the epochs not yet reported and, if the best improved since the
        last report, a checkpoint of the best weights."""
        payload = {**row, **static, EPOCHS: json.dumps(unreported), **extra}
        rows = [*unreported, row]
        unreported.clear()
        last_report[0] = time.monotonic()
        state = best.pop("state", None)
        if state is None or DIVERGED in extra:
            tune.report(payload)
            return
        info = checkpoint.ModelInfo.of(train_config, data, epoch=best["epoch"], val_loss=row["best_val_loss"])
        with tempfile.TemporaryDirectory(prefix="tunecast-ckpt-") as tmp:
            checkpoint.save(tmp, state, info)
            origin = {k: static[k] for k in ORIGIN}  # rows of an earlier attempt's trail keep theirs
            trail = [{**origin, **r} for r in rows if r["epoch"] <= best["epoch"]]
            (Path(tmp) / TRAIL_FILE).write_text(json.dumps(trail))
            tune.report(payload, checkpoint=tune.Checkpoint.from_directory(tmp))

    def on_epoch(metrics: dict[str, Any]) -> None:
        row = {**{k: metrics[k] for k in EPOCH_KEYS[:4]}, "last_epoch": int(metrics["last_epoch"]),
               "wall_time": time.time()}
        if not (math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"])):
            # the last report; inf, not NaN, so Optuna counts it as the worst, not discarded
            why = f"training diverged (NaN/inf loss) at epoch {metrics['epoch']} with lr={train_config.lr:g}"
            report({**row, "val_loss": math.inf, "last_epoch": 1}, **{DIVERGED: why})
            return
        due = (row["last_epoch"] or row["epoch"] in rungs or last_report[0] == -math.inf
               or time.monotonic() - last_report[0] >= plan.config.report_every_s)
        if due:
            report(row)
        else:
            unreported.append(row)

    fit(train_config, data, on_epoch=on_epoch, on_improve=on_improve, device=device, resume=resume)
    if resume is not None and last_report[0] == -math.inf:
        # resumed at its last epoch: report it again, or Tune ends the trial where it last heard
        last = unreported.pop() if unreported else {
            "epoch": resume.epoch, "train_loss": math.nan, "val_loss": resume.best_val_loss,
            "best_val_loss": resume.best_val_loss, "wall_time": time.time()}
        report({**last, "last_epoch": 1})
