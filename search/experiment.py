"""Write the experiment directory's contract files (expdir.contract, docs/experiment-dir.md).

Tables and folders are written atomically; models in the ``model.checkpoint`` format. A panel
adds ``per_series.csv`` and, in ``best/``, ``attention_index.csv``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunecast.expdir import atomic_dir, write_json, write_text_atomic
from tunecast.expdir import contract as c
from tunecast.expdir.contract import BestRecord, CombinedRecord, EnsembleRecord, MemberRecord, ScoreRecord
from tunecast.model import checkpoint
from tunecast.model.data import Dataset
from tunecast.model.evaluate import (
    Evaluation,
    evaluate,
    forecast_scored,
    mean_forecast,
    predictions_frame,
    series_of,
    val_forecast,
    val_positions,
)
from tunecast.model.metrics import mae
from tunecast.model.panel import Panel
from tunecast.model.statistical import Statistical, StatisticalError
from tunecast.search.backtest import combined_val_loss
from tunecast.search.results import TrialRecord

ENSEMBLE_MAX_RATIO = 2.0  # members' val_loss at most this many times the best trial's


def _float(value: Any) -> float | None:
    return c.finite_or_none(value)


def trials_frame(records: list[TrialRecord], gpu_share: float) -> pd.DataFrame:
    """trials.csv: one row per trial, its full TrainConfig as ``config/<name>`` columns."""
    rows = []
    for r in records:
        h = r.history
        row: dict[str, Any] = {"trial_id": r.trial_id, "status": r.status}
        row.update({c.config_column(k): v for k, v in r.config.items()})
        val = h[c.METRIC] if c.METRIC in h else pd.Series(dtype=float)
        best_pos = int(val.idxmin()) if len(h) and val.notna().any() else None
        start = _float(h["trial_start"].iloc[0]) if best_pos is not None and "trial_start" in h else None
        end = _float(h["wall_time"].iloc[-1]) if best_pos is not None and "wall_time" in h else None
        first = h.iloc[0] if len(h) else {}
        last = h.iloc[-1] if len(h) else {}  # a retried trial finished where its last report came from
        row.update(
            best_val_loss=_float(val.loc[best_pos]) if best_pos is not None else None,
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
    frame = pd.DataFrame(rows)
    config_columns = [col for col in frame.columns if col.startswith(c.CONFIG_PREFIX)]
    return frame.reindex(columns=[*c.TRIAL_COLUMNS[:2], *config_columns, *c.TRIAL_COLUMNS[2:]])


def history_frame(records: list[TrialRecord]) -> pd.DataFrame:
    """history.csv: one row per trial per epoch."""
    parts = [
        pd.DataFrame({
            "trial_id": r.trial_id,
            "epoch": r.history["epoch"].astype(int),
            "train_loss": r.history["train_loss"],
            "val_loss": r.history["val_loss"],
            "timestamp": r.history["wall_time"],
        })
        for r in records
        if len(r.history)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(c.HISTORY_COLUMNS))


def write_tables(exp_dir: Path, records: list[TrialRecord], gpu_share: float) -> pd.DataFrame:
    """Write trials.csv and history.csv; returns the trials table."""
    trials = trials_frame(records, gpu_share)
    write_text_atomic(exp_dir / c.TRIALS_FILE, trials.to_csv(index=False))
    write_text_atomic(exp_dir / c.HISTORY_FILE, history_frame(records).to_csv(index=False))
    return trials


def ranked(trials: pd.DataFrame, records: list[TrialRecord]) -> list[TrialRecord]:
    """Finished trials that kept a checkpoint, lowest val_loss first (ties: trials.csv order)."""
    with_ckpt = {r.trial_id for r in records if r.checkpoint_dir is not None}
    finished = trials[trials["status"].isin(c.FINISHED) & trials["trial_id"].isin(with_ckpt)]
    finished = finished[finished["best_val_loss"].notna()]
    order = finished.assign(loss=finished["best_val_loss"].astype(float)).sort_values("loss", kind="stable")
    by_id = {r.trial_id: r for r in records}
    return [by_id[trial_id] for trial_id in order["trial_id"]]


def ensemble_members(trials: pd.DataFrame, records: list[TrialRecord], k: int) -> list[TrialRecord]:
    """The ``k`` best trials by val_loss, less any above ``ENSEMBLE_MAX_RATIO`` times the best's."""
    top = ranked(trials, records)[:k]
    if not top:
        return []
    loss = trials.set_index("trial_id")["best_val_loss"].astype(float)
    limit = ENSEMBLE_MAX_RATIO * loss[top[0].trial_id]
    return [r for r in top if loss[r.trial_id] <= limit]


def _scores(evaluation: Evaluation, data: Dataset | Panel) -> ScoreRecord:
    return ScoreRecord(
        horizon=int(evaluation.positions.shape[1]),
        season_length=data.season_length,
        protocol=evaluation.protocol,
        n_test_points=int(evaluation.positions.size),
        test=evaluation.metrics,
        n_series=len(evaluation.per_series.per_series) if evaluation.per_series is not None else None,
    )


def _write_forecast(folder: Path, data: Dataset | Panel, evaluation: Evaluation) -> None:
    """predictions.csv, and for a panel per_series.csv."""
    predictions_frame(data, evaluation).to_csv(folder / c.PREDICTIONS_FILE, index=False)
    if evaluation.per_series is not None:
        evaluation.per_series.wide().to_csv(folder / c.PER_SERIES_FILE, index=False)


def write_best(exp_dir: Path, best: TrialRecord, data: Dataset | Panel) -> BestRecord:
    """Evaluate the best checkpoint on the test split and write ``best/``."""
    assert best.checkpoint_dir is not None
    model, info = checkpoint.load(best.checkpoint_dir)
    evaluation = evaluate(model, data, info.config)
    record = BestRecord(
        trial_id=best.trial_id,
        val_loss=info.val_loss,
        best_epoch=info.epoch,
        train_config=info.config.to_dict(),
        target=data.target,
        features=tuple(data.columns[1:]),
        scores=_scores(evaluation, data),
    )
    with atomic_dir(exp_dir / c.BEST_DIR) as tmp:
        checkpoint.save(tmp, model, _with_trial(info, best.trial_id))
        write_json(tmp / c.METRICS_FILE, record.to_dict())
        _write_forecast(tmp, data, evaluation)
        np.save(tmp / c.ATTENTION_FILE, evaluation.attention)
        if isinstance(data, Panel):
            attention_index(data, evaluation).to_csv(tmp / c.ATTENTION_INDEX_FILE, index=False)
    return record


def attention_index(panel: Panel, evaluation: Evaluation) -> pd.DataFrame:
    """attention_index.csv: each series' rows of attention.npy (first row, count), in id order."""
    series = series_of(panel, evaluation.positions)  # (K,) non-decreasing: series in id order
    if (np.diff(series) < 0).any():
        raise ValueError("test forecasts are not grouped by series")
    first = np.searchsorted(series, np.arange(panel.n_series), side="left")
    count = np.searchsorted(series, np.arange(panel.n_series), side="right") - first
    return pd.DataFrame({c.SERIES_ID_COLUMN: panel.ids, "first_row": first, "n_rows": count},
                        columns=list(c.ATTENTION_INDEX_COLUMNS))


def _with_trial(info: checkpoint.ModelInfo, trial_id: str) -> checkpoint.ModelInfo:
    return replace(info, extra={**info.extra, "trial_id": trial_id})


def write_ensemble(exp_dir: Path, members: list[TrialRecord], data: Dataset | Panel) -> EnsembleRecord | None:
    """Evaluate the mean forecast of ``members`` and write ``ensemble/`` (each member under
    ``members/<trial_id>/``). Fewer than two: None, and an old ``ensemble/`` is removed."""
    target = exp_dir / c.ENSEMBLE_DIR
    if len(members) < 2:
        if target.exists():
            shutil.rmtree(target)
        return None
    loaded = []
    for member in members:
        assert member.checkpoint_dir is not None
        loaded.append((member.trial_id, *checkpoint.load(member.checkpoint_dir)))
    evaluation = mean_forecast([evaluate(model, data, info.config) for _, model, info in loaded], data)
    val = [val_forecast(model, data, info.config) for _, model, info in loaded]
    val_loss = mae(val[0][1], np.mean([p for p, _ in val], axis=0))  # val_loss's loss
    record = EnsembleRecord(
        members=tuple(MemberRecord(trial_id, info.val_loss, info.epoch) for trial_id, _, info in loaded),
        val_loss=val_loss,
        max_val_loss_ratio=ENSEMBLE_MAX_RATIO,
        scores=_scores(evaluation, data),
    )
    with atomic_dir(target) as tmp:
        write_json(tmp / c.METRICS_FILE, record.to_dict())
        _write_forecast(tmp, data, evaluation)
        for trial_id, model, info in loaded:
            checkpoint.save(tmp / c.MEMBERS_DIR / trial_id, model, _with_trial(info, trial_id))
    return record


def network_folders(exp_dir: Path, best: BestRecord, ensemble: EnsembleRecord | None
                    ) -> list[tuple[str, Path]]:
    """(trial id, model folder) of the ensemble's members, or of the best trial without one."""
    if ensemble is not None:
        return [(m.trial_id, exp_dir / c.ENSEMBLE_DIR / c.MEMBERS_DIR / m.trial_id) for m in ensemble.members]
    return [(best.trial_id, exp_dir / c.BEST_DIR)]


def write_combined(exp_dir: Path, best: BestRecord | None, ensemble: EnsembleRecord | None,
                   data: Dataset | Panel) -> CombinedRecord | None:
    """Score the networks combined with AutoETS and AutoARIMA (:mod:`model.statistical`) on
    validation and test and write ``combined/``. None (no folder) for a panel, without a best
    trial, or when neither model fits."""
    target = exp_dir / c.COMBINED_DIR
    record = None
    if best is not None and isinstance(data, Dataset):
        try:
            record = _combined(exp_dir, best, ensemble, data)
        except Exception as exc:  # an optional candidate: the search's own results stand without it
            print(f"warning: the networks' combination with AutoETS and AutoARIMA is left out ({exc})",
                  file=sys.stderr)
    if record is None and target.exists():
        shutil.rmtree(target)
    return record


def _combined(exp_dir: Path, best: BestRecord, ensemble: EnsembleRecord | None, data: Dataset
              ) -> CombinedRecord | None:
    try:
        statistical = Statistical(data.values[:, 0], data.n_train, data.season_length)
    except StatisticalError:
        return None  # neither model fits the training part: no candidate, and nothing to say
    series = data.values[:, 0].astype(np.float64)
    networks = network_folders(exp_dir, best, ensemble)
    loaded = [checkpoint.load(folder) for _, folder in networks]
    config = loaded[0][1].config
    # validation, in val_loss's units (the training part's scaling)
    positions = val_positions(data, config.horizon, config.max_val_windows)
    val = [val_forecast(model, data, info.config) for model, info in loaded]
    if any(p.shape != positions.shape for p, _ in val):
        raise ValueError("the networks' validation windows are not the combination's")
    val_loss = combined_val_loss(statistical, data, np.mean([p for p, _ in val], axis=0), val[0][1],
                                 config.horizon, config.max_val_windows)
    # test, in original units
    tests = [evaluate(model, data, info.config) for model, info in loaded]
    networks_test = mean_forecast(tests, data) if len(tests) > 1 else tests[0]
    test_positions = networks_test.positions
    y_pred = statistical.combine(networks_test.y_pred,
                                 statistical.paths(series, test_positions[:, 0], test_positions.shape[1]))
    evaluation = forecast_scored(data, test_positions, y_pred)
    record = CombinedRecord(networks=tuple(t for t, _ in networks), statistical=statistical.models,
                            fit_end=statistical.fit_end, val_loss=val_loss, scores=_scores(evaluation, data))
    with atomic_dir(exp_dir / c.COMBINED_DIR) as tmp:
        write_json(tmp / c.METRICS_FILE, record.to_dict())
        _write_forecast(tmp, data, evaluation)
    return record
