"""The Ray adapter: Tune config dict -> TrainConfig -> fit(), one ``tune.report`` per epoch.

This is the only place that calls Ray's reporting API. Each report carries the epoch's metrics,
what the records of the results need that Ray's ``Result`` does not carry (where and on what
the trial runs, when it started, whether this was its last epoch) and, when ``val_loss``
improved, a checkpoint of the best weights in the model format of ``model.checkpoint``;
``CheckpointConfig(num_to_keep=1)`` keeps only the best one.

A trial that diverges (NaN/inf loss) does not raise: it would diverge again, and Tune retries
every raised error (``max_failures``, 2 on a cluster, for crashes and lost nodes). Its last
report carries ``DIVERGED`` (why), and ``search.results`` records the trial as failed.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from typing import Any

import ray
import torch
from ray import tune

from model import checkpoint
from model.training import Resume, fit
from search.plan import SearchPlan

DIVERGED = "diverged"  # the key of the report that ends a diverged trial: its error message


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
    saved = tune.get_checkpoint()
    if saved is None:
        return None
    with saved.as_directory() as folder:
        model, info = checkpoint.load(folder)
    return Resume(state=model.state_dict(), epoch=info.epoch, best_val_loss=float(info.val_loss or math.inf))


def train_trial(config: dict[str, Any], plan: SearchPlan) -> None:
    """Tune function trainable: train one configuration and report every epoch."""
    train_config = plan.train_config(config)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # Ray Train's logger: a line per checkpoint
    data = plan.data
    gpu_share = float(plan.resources["gpu"])
    torch.set_num_threads(max(1, int(plan.resources["cpu"])))
    device = trial_device(gpu_share)
    context = ray.get_runtime_context()
    resume = _resume_point()
    static = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "device": str(device),
        "gpu_share": gpu_share,
        "trial_start": time.time(),
        "resumed_from_epoch": resume.epoch if resume is not None else 0,
    }
    best: dict[str, Any] = {}

    def on_improve(state: dict[str, torch.Tensor], metrics: dict[str, Any]) -> None:
        best["state"], best["epoch"] = state, metrics["epoch"]

    def report_divergence(metrics: dict[str, Any]) -> None:
        """The trial's last report: fit stops at this epoch and the trial returns normally.
        ``val_loss`` is inf, not NaN: Optuna then counts the trial as the worst outcome and its
        sampler learns to avoid the region (a NaN would make it discard the trial)."""
        why = f"training diverged (NaN/inf loss) at epoch {metrics['epoch']} with lr={train_config.lr:g}"
        tune.report({**metrics, "val_loss": math.inf, "last_epoch": 1, **static, "wall_time": time.time(),
                     DIVERGED: why})

    def on_epoch(metrics: dict[str, Any]) -> None:
        if not (math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"])):
            report_divergence(metrics)
            return
        report = {**metrics, "last_epoch": int(metrics["last_epoch"]), **static, "wall_time": time.time()}
        state = best.pop("state", None)
        if state is None:
            tune.report(report)
            return
        info = checkpoint.ModelInfo.of(train_config, data, epoch=best["epoch"], val_loss=metrics["val_loss"])
        with tempfile.TemporaryDirectory(prefix="tunecast-ckpt-") as tmp:
            checkpoint.save(tmp, state, info)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))

    fit(train_config, data, on_epoch=on_epoch, on_improve=on_improve, device=device, resume=resume)
