"""The Ray adapter: Tune config dict -> TrainConfig -> fit(), one ``tune.report`` per epoch.

This is the only place that calls Ray's reporting API. Each report carries the epoch's metrics,
where and on what the trial runs, and (when ``val_loss`` improved) a checkpoint of the best
weights; ``CheckpointConfig(num_to_keep=1)`` keeps only the best one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from model.data import Dataset
from model.training import Resume, TrainConfig, fit

MODEL_FILE = "model.pt"
META_FILE = "checkpoint.json"


class TrialDiverged(RuntimeError):
    """Training produced NaN/inf losses; the trial is recorded as failed."""


def trial_device(gpu_share: float) -> torch.device:
    """CUDA when Ray gave this trial a GPU share and CUDA exists, else CPU.

    With a share below 1 the process caps its CUDA memory to that share, since Ray shares a
    GPU logically, not its memory.
    """
    gpu_ids = ray.get_gpu_ids() if ray.is_initialized() else []
    if gpu_share > 0 and gpu_ids and torch.cuda.is_available():
        device = torch.device("cuda", 0)  # Ray sets CUDA_VISIBLE_DEVICES to the assigned GPU
        if gpu_share < 1:
            torch.cuda.set_per_process_memory_fraction(gpu_share, device)
        return device
    return torch.device("cpu")


def _resume_point() -> Resume | None:
    """The best checkpoint of an earlier attempt of this trial (retried after a failure)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        meta = json.loads(Path(folder, META_FILE).read_text())
        state = torch.load(Path(folder, MODEL_FILE), weights_only=True)
    return Resume(state=state, epoch=int(meta["epoch"]), best_val_loss=float(meta["val_loss"]))


def train_trial(
    config: dict[str, Any], data: Dataset, fixed: dict[str, Any], resources: dict[str, float]
) -> None:
    """Tune function trainable: train one configuration and report every epoch."""
    train_config = TrainConfig.from_dict({**fixed, **config})
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # one line per ckpt
    torch.set_num_threads(max(1, int(resources.get("cpu", 1))))
    device = trial_device(resources.get("gpu", 0.0))
    context = ray.get_runtime_context()
    static = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "device": str(device),
        "gpu_share": float(resources.get("gpu", 0.0)),
        "trial_start": time.time(),
    }
    resume = _resume_point()
    static["resumed_from_epoch"] = resume.epoch if resume is not None else 0
    best: dict[str, Any] = {}

    def on_improve(state: dict[str, torch.Tensor], metrics: dict[str, Any]) -> None:
        best["state"], best["epoch"] = state, metrics["epoch"]

    def on_epoch(metrics: dict[str, Any]) -> None:
        if not math.isfinite(metrics["val_loss"]):
            return  # diverged: fit stops now and the trial raises below
        report = {
            **metrics,
            "last_epoch": int(metrics["last_epoch"]),
            **static,
            "wall_time": time.time(),
        }
        state = best.pop("state", None)
        if state is None:
            tune.report(report)
            return
        with tempfile.TemporaryDirectory(prefix="tunecast-ckpt-") as tmp:
            torch.save(state, os.path.join(tmp, MODEL_FILE))
            meta = {
                "epoch": best["epoch"],
                "val_loss": metrics["val_loss"],
                "train_config": train_config.to_dict(),
                "input_size": data.input_size,
            }
            Path(tmp, META_FILE).write_text(json.dumps(meta))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))

    result = fit(train_config, data, on_epoch=on_epoch, on_improve=on_improve, device=device, resume=resume)
    if result.status == "diverged":
        raise TrialDiverged(
            f"training diverged (NaN/inf loss) at epoch {result.epochs_run} with lr={train_config.lr:g}"
        )
