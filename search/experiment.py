"""Write the experiment directory's contract files (docs/experiment-dir.md).

``tunecast.json``, ``trials.csv``, ``history.csv``, ``best/`` and ``ensemble/`` are written atomically (a
temporary file or folder, then a rename), so an interrupted write never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from model.data import Dataset
from model.evaluate import evaluate, mean_forecast, metrics_record, predictions_frame, val_forecast
from model.training import TrainConfig, build_model
from search.config import METRIC

HISTORY_COLUMNS = ["trial_id", "epoch", "train_loss", "val_loss", "timestamp"]
FINISHED = ("completed", "stopped")
ENSEMBLE_DIR = "ensemble"
ENSEMBLE_MAX_RATIO = 2.0  # members' val_loss at most this many times the best trial's


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def clean_float(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN/inf)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class TrialRecord:
    """What the driver knows of one trial once the search ends."""

    trial_id: str
    status: str
    config: dict[str, Any]
    history: pd.DataFrame  # the trial's reported rows
    error: str
    checkpoint_dir: Path | None
    restarts: int = 0  # times the trial was retried (e.g. after its node died)


def clean_history(history: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per epoch (a retried trial re-reports epochs: the last attempt wins) and the
    number of restarts seen in the reports."""
    if len(history) == 0 or "epoch" not in history:
        return history, 0
    epoch = history["epoch"].to_numpy()
    resumed = history.get("resumed_from_epoch", pd.Series(0, index=history.index)).to_numpy()
    restarts = int(np.sum((epoch[1:] <= epoch[:-1]) | (resumed[1:] != resumed[:-1])))
    kept = history.drop_duplicates(subset="epoch", keep="last").sort_values("epoch")
    return kept.reset_index(drop=True), restarts


def one_line_error(error: BaseException | str | None) -> str:
    """The last meaningful line of an error (Ray wraps the trial's exception in a traceback)."""
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~")) and ":" in line:
            return line[:500]
    return (lines[-1] if lines else type(error).__name__)[:500]


def trials_frame(records: list[TrialRecord], fixed: dict[str, Any], gpu_share: float) -> pd.DataFrame:
    rows = []
    for r in records:
        h = r.history
        row: dict[str, Any] = {"trial_id": r.trial_id, "status": r.status}
        full = TrainConfig.from_dict({**fixed, **r.config}).to_dict() if r.config else {}
        row.update({f"config/{k}": v for k, v in full.items()})
        val = h[METRIC] if METRIC in h else pd.Series(dtype=float)
        has = len(h) > 0 and val.notna().any()
        best_pos = int(val.idxmin()) if has else None
        start = clean_float(h["trial_start"].iloc[0]) if has and "trial_start" in h else None
        end = clean_float(h["wall_time"].iloc[-1]) if has and "wall_time" in h else None
        first = h.iloc[0] if len(h) else {}
        last = h.iloc[-1] if len(h) else {}  # a retried trial finished where its last report came from
        row.update(
            best_val_loss=clean_float(val.loc[best_pos]) if best_pos is not None else None,
            best_epoch=int(h["epoch"].loc[best_pos]) if best_pos is not None else None,
            epochs_run=len(h),
            start_time=start,
            end_time=end,
            duration_s=(end - start) if start is not None and end is not None else None,
            node_id=last.get("node_id", ""),
            node_ip=last.get("node_ip", ""),
            gpu_share=first.get("gpu_share", gpu_share),
            device=first.get("device", ""),
            restarts=r.restarts,
            error=r.error,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def history_frame(records: list[TrialRecord]) -> pd.DataFrame:
    parts = []
    for r in records:
        if len(r.history) == 0:
            continue
        h = r.history
        parts.append(
            pd.DataFrame(
                {
                    "trial_id": r.trial_id,
                    "epoch": h["epoch"].astype(int),
                    "train_loss": h["train_loss"],
                    "val_loss": h["val_loss"],
                    "timestamp": h["wall_time"] if "wall_time" in h else h.get("timestamp"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HISTORY_COLUMNS)


def write_tables(
    exp_dir: Path, records: list[TrialRecord], fixed: dict[str, Any], gpu_share: float
) -> pd.DataFrame:
    trials = trials_frame(records, fixed, gpu_share)
    write_text_atomic(exp_dir / "trials.csv", trials.to_csv(index=False))
    write_text_atomic(exp_dir / "history.csv", history_frame(records).to_csv(index=False))
    return trials


def ranked(trials: pd.DataFrame, records: list[TrialRecord]) -> list[TrialRecord]:
    """Finished trials that kept a checkpoint, lowest val_loss first (ties: trials.csv order)."""
    with_ckpt = {r.trial_id for r in records if r.checkpoint_dir is not None}
    finished = trials[trials["status"].isin(FINISHED) & trials["trial_id"].isin(with_ckpt)]
    finished = finished[finished["best_val_loss"].notna()]
    order = finished.assign(loss=finished["best_val_loss"].astype(float)).sort_values("loss", kind="stable")
    by_id = {r.trial_id: r for r in records}
    return [by_id[trial_id] for trial_id in order["trial_id"]]


def pick_best(trials: pd.DataFrame, records: list[TrialRecord]) -> TrialRecord | None:
    """The finished trial with the lowest val_loss that kept a checkpoint."""
    best = ranked(trials, records)
    return best[0] if best else None


def load_checkpoint(checkpoint_dir: Path) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the model saved by the trainable (state_dict only, weights_only=True)."""
    meta = json.loads((checkpoint_dir / "checkpoint.json").read_text())
    config = TrainConfig.from_dict(meta["train_config"])
    model = build_model(config, int(meta["input_size"]))
    model.load_state_dict(torch.load(checkpoint_dir / "model.pt", weights_only=True))
    model.eval()
    return model, config, meta


@contextlib.contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it once the block succeeds."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_best(exp_dir: Path, best: TrialRecord, data: Dataset) -> dict[str, Any]:
    """Evaluate the best checkpoint on the test split and write ``best/``."""
    assert best.checkpoint_dir is not None
    model, config, meta = load_checkpoint(best.checkpoint_dir)
    evaluation = evaluate(model, data, config)
    metrics = {
        "trial_id": best.trial_id,
        "val_loss": clean_float(meta["val_loss"]),
        "best_epoch": int(meta["epoch"]),
        **metrics_record(evaluation, data, config),
    }
    with _atomic_dir(exp_dir / "best") as tmp:
        shutil.copyfile(best.checkpoint_dir / "model.pt", tmp / "model.pt")
        (tmp / "config.json").write_text(
            json.dumps(
                {
                    "trial_id": best.trial_id,
                    "train_config": config.to_dict(),
                    "input_size": data.input_size,
                    "features": list(data.columns[1:]),
                    "target": data.target,
                },
                indent=2,
            )
        )
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        predictions_frame(data, evaluation).to_csv(tmp / "predictions.csv", index=False)
        np.save(tmp / "attention.npy", evaluation.attention)
    return metrics


def ensemble_members(trials: pd.DataFrame, records: list[TrialRecord], k: int) -> list[TrialRecord]:
    """The ``k`` best trials by val_loss, less any whose val_loss exceeds ``ENSEMBLE_MAX_RATIO``
    times the best one's (a short search's poor trials would only drag the mean down)."""
    top = ranked(trials, records)[:k]
    if not top:
        return []
    loss = trials.set_index("trial_id")["best_val_loss"].astype(float)
    limit = ENSEMBLE_MAX_RATIO * loss[top[0].trial_id]
    return [r for r in top if loss[r.trial_id] <= limit]


def write_ensemble(exp_dir: Path, members: list[TrialRecord], data: Dataset) -> dict[str, Any] | None:
    """Evaluate the mean forecast of ``members`` (the top trials by val_loss) and write ``ensemble/``.

    Fewer than two members: no ensemble (and an old ``ensemble/`` of a resumed run is removed).
    """
    target = exp_dir / ENSEMBLE_DIR
    if len(members) < 2:
        shutil.rmtree(target, ignore_errors=True)
        return None
    evaluations, val_preds, val_target, rows = [], [], None, []
    config = None
    for member in members:
        assert member.checkpoint_dir is not None
        model, config, meta = load_checkpoint(member.checkpoint_dir)
        evaluations.append(evaluate(model, data, config))
        prediction, val_target = val_forecast(model, data, config)
        val_preds.append(prediction)
        rows.append({"trial_id": member.trial_id, "val_loss": clean_float(meta["val_loss"]),
                     "best_epoch": int(meta["epoch"])})
    assert config is not None and val_target is not None
    evaluation = mean_forecast(evaluations, data)
    val_loss = float(np.mean((np.mean(val_preds, axis=0) - val_target) ** 2))
    metrics = {
        "members": rows,
        "k": len(members),
        "combination": "mean of the members' forecasts",
        "max_val_loss_ratio": ENSEMBLE_MAX_RATIO,
        "val_loss": clean_float(val_loss),
        **metrics_record(evaluation, data, config),
    }
    with _atomic_dir(target) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        predictions_frame(data, evaluation).to_csv(tmp / "predictions.csv", index=False)
    return metrics
