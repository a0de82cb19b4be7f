"""Figures about the search itself: learning curves, optimisation history, hyperparameters.

Each figure has an info function (data, checked by the tests) and a draw function.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from tunecast.expdir.contract import FINISHED, config_column
from tunecast.reports import timeline
from tunecast.reports.collect import Experiment
from tunecast.reports.importance import ImportanceInfo, importance_info
from tunecast.reports.style import BEST, OUTCOME_COLORS, OUTCOME_LABELS, ReportFigure, outcome_color, plain

__all__ = ["Curve", "HistoryInfo", "LearningCurvesInfo", "ParamInfo", "draw_history",
           "draw_importance", "draw_learning_curves", "draw_params", "history_info",
           "learning_curves_info", "params_info", "search_figures"]

_END_MARKERS = {"stopped": "X", "failed": "v", "running": ">"}


class Curve(NamedTuple):
    """One trial's validation loss per epoch."""

    trial_id: str
    status: str
    epochs: np.ndarray  # (E,)
    val_loss: np.ndarray  # (E,)
    is_best: bool


class LearningCurvesInfo(NamedTuple):
    """Every trial's curve; ``end_marker`` says how a curve that did not complete ends."""

    curves: list[Curve]
    best_trial_id: str | None
    grace_period: int | None
    log_scale: bool

    @staticmethod
    def end_marker(status: str) -> str | None:
        """Marker drawn at a curve's last epoch: X for stopped early, v for failed."""
        return _END_MARKERS.get(status)


class HistoryInfo(NamedTuple):
    """Best-so-far ``val_loss`` over trial number (creation order) and over wall time."""

    trial_numbers: np.ndarray  # (K,) 1-based position in trials.csv of each finished trial
    values: np.ndarray  # (K,) that trial's best val_loss
    statuses: list[str]
    best_so_far: np.ndarray  # (K,) running minimum in trial order
    elapsed_s: np.ndarray  # (K,) seconds from the first trial's start to each trial's end, sorted
    values_by_time: np.ndarray  # (K,) best val_loss of the trials in order of finishing
    statuses_by_time: list[str]
    best_so_far_by_time: np.ndarray  # (K,) running minimum in order of finishing


class ParamInfo(NamedTuple):
    """One tuned hyperparameter's value and best ``val_loss`` for every finished trial."""

    name: str
    kind: str  # "int" | "float" | "categorical"
    log: bool
    x: np.ndarray  # (K,) value; for a categorical, the index of the choice
    choices: list[str]  # categorical choices in space order ([] otherwise)
    values: np.ndarray  # (K,) best val_loss
    statuses: list[str]
    best_index: int | None  # position of the best trial in x / values


def learning_curves_info(exp: Experiment) -> LearningCurvesInfo:
    """Every trial's ``val_loss`` per epoch from history.csv, the best trial marked."""
    status = dict(zip(exp.trials["trial_id"], exp.trials["status"], strict=True))
    best_id = exp.run.best_trial_id
    curves = []
    for trial_id, rows in exp.history.groupby("trial_id", sort=False):
        tid = str(trial_id)
        curves.append(Curve(tid, status.get(tid, "unknown"), rows["epoch"].to_numpy(float),
                            rows["val_loss"].to_numpy(float), tid == best_id))
    order = {tid: i for i, tid in enumerate(exp.trials["trial_id"])}
    curves.sort(key=lambda c: (c.is_best, order.get(c.trial_id, len(order))))  # best drawn last
    finite = np.concatenate([c.val_loss for c in curves]) if curves else np.array([])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    log = bool(len(finite) and finite.max() / finite.min() > 20)
    grace = exp.run.search.get("grace_period")
    return LearningCurvesInfo(curves, best_id, int(grace) if grace else None, log)


def draw_learning_curves(info: LearningCurvesInfo) -> Figure:
    """Draw each trial's curve coloured by outcome, with end markers and the best highlighted."""
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    ax = fig.subplots()
    alpha = 0.7 if len(info.curves) <= 30 else 0.35
    for curve in info.curves:
        color, width = (BEST, 2.6) if curve.is_best else (outcome_color(curve.status), 1.0)
        ax.plot(curve.epochs, curve.val_loss, color=color, lw=width,
                alpha=1.0 if curve.is_best else alpha, zorder=3 if curve.is_best else 2)
        marker = info.end_marker(curve.status)
        if marker and len(curve.epochs):
            ax.plot(curve.epochs[-1:], curve.val_loss[-1:], marker=marker, ms=7, ls="none",
                    color=outcome_color(curve.status), markeredgecolor="white", zorder=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if info.grace_period:
        ax.axvline(info.grace_period, color="#777777", ls=":", lw=1)
    if info.log_scale:
        ax.set_yscale("log")
    present = {c.status for c in info.curves}
    statuses = [s for s in OUTCOME_COLORS if s in present] + sorted(present - set(OUTCOME_COLORS))
    handles = [Line2D([], [], color=outcome_color(s), marker=info.end_marker(s),
                      label=plain(OUTCOME_LABELS.get(s, s))) for s in statuses]
    if info.best_trial_id is not None:
        handles.append(Line2D([], [], color=BEST, lw=2.6,
                              label=plain(f"best trial {info.best_trial_id}")))
    if info.grace_period:
        handles.append(Line2D([], [], color="#777777", ls=":",
                              label=f"ASHA grace period ({info.grace_period} epoch"
                              f"{'s' if info.grace_period > 1 else ''})"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_loss (MAE, standardised units)")
    ax.set_title(f"Learning curves of {len(info.curves)} trials")
    ax.grid(alpha=0.3)
    return fig


def history_info(exp: Experiment) -> HistoryInfo:
    """Best-so-far ``val_loss`` of the finished trials, by trial number and by wall time."""
    trials = exp.trials.reset_index(drop=True)
    finished = exp.finished
    values = finished["best_val_loss"].to_numpy(float)
    starts = timeline.trial_starts(trials)
    t0 = float(np.nanmin(starts)) if np.isfinite(starts).any() else 0.0
    by_time = finished.sort_values("end_time", kind="stable")
    return HistoryInfo(
        trial_numbers=finished.index.to_numpy() + 1,
        values=values,
        statuses=[str(s) for s in finished["status"]],
        best_so_far=np.minimum.accumulate(values) if len(values) else values,
        elapsed_s=by_time["end_time"].to_numpy(float) - t0,
        values_by_time=by_time["best_val_loss"].to_numpy(float),
        statuses_by_time=[str(s) for s in by_time["status"]],
        best_so_far_by_time=np.minimum.accumulate(by_time["best_val_loss"].to_numpy(float))
        if len(by_time) else np.array([]),
    )


def draw_history(info: HistoryInfo) -> Figure:
    """Draw best-so-far against trial number (left) and against wall time (right)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    by_number, by_time = fig.subplots(1, 2, sharey=True)
    colors = [outcome_color(s) for s in info.statuses]
    by_number.scatter(info.trial_numbers, info.values, c=colors, s=14, alpha=0.8)
    by_number.step(info.trial_numbers, info.best_so_far, where="post", color=BEST, lw=2)
    by_number.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_number.set_xlabel("trial number (creation order)")
    by_number.set_ylabel("best val_loss of the trial")
    minutes = bool(len(info.elapsed_s) and np.nanmax(info.elapsed_s) > 600)
    elapsed = info.elapsed_s / 60 if minutes else info.elapsed_s
    by_time.scatter(info.elapsed_s / (60 if minutes else 1), info.values_by_time,
                    c=[outcome_color(s) for s in info.statuses_by_time], s=14, alpha=0.8)
    by_time.step(elapsed, info.best_so_far_by_time, where="post", color=BEST, lw=2,
                 marker="o", ms=3)
    by_time.set_xlabel(f"wall time since the first trial started ({'min' if minutes else 's'})")
    if len(info.values) and np.nanmin(info.values) > 0 and (
            np.nanmax(info.values) / np.nanmin(info.values) > 20):
        by_number.set_yscale("log")
    for ax in (by_number, by_time):
        ax.grid(alpha=0.3)
    fig.suptitle("Optimisation history: best val_loss so far (green)")
    return fig


def params_info(exp: Experiment) -> list[ParamInfo]:
    """Each tuned hyperparameter against the finished trials' best ``val_loss``."""
    finished = exp.finished
    is_best = (finished["trial_id"] == exp.run.best_trial_id).to_numpy()
    best_index = int(np.argmax(is_best)) if is_best.any() else None
    infos = []
    for name in exp.param_names:
        spec = exp.run.space.get(name, {})
        column = finished[config_column(name)]
        kind = str(spec.get("type") or ("float" if column.dtype.kind in "fiu" else "categorical"))
        choices: list[str] = []
        if kind == "categorical":
            choices = [str(c) for c in spec.get("choices", [])]
            choices += sorted({str(v) for v in column} - set(choices))
            x = np.array([choices.index(str(v)) for v in column], dtype=float)
        else:
            x = column.to_numpy(float)
        infos.append(ParamInfo(name, kind, bool(spec.get("log")), x, choices,
                               finished["best_val_loss"].to_numpy(float),
                               [str(s) for s in finished["status"]], best_index))
    return infos


def draw_params(infos: list[ParamInfo]) -> Figure:
    """One scatter per tuned hyperparameter: value against best val_loss, best trial starred."""
    ncols = min(3, max(len(infos), 1))
    nrows = max(1, -(-len(infos) // ncols))
    fig = Figure(figsize=(10, 3.0 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    jitter = np.random.default_rng(0)
    for ax, info in zip(axes, infos, strict=False):
        x = info.x + (jitter.uniform(-0.15, 0.15, len(info.x)) if info.choices else 0.0)
        ax.scatter(x, info.values, c=[outcome_color(s) for s in info.statuses], s=16, alpha=0.8)
        if info.best_index is not None:
            ax.scatter(x[info.best_index : info.best_index + 1],
                       info.values[info.best_index : info.best_index + 1], marker="*", s=180,
                       color=BEST, edgecolor="black", zorder=3)
        if info.choices:
            ax.set_xticks(range(len(info.choices)), [plain(c, 20) for c in info.choices])
        elif info.log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=_log_subs(info.x)))
            ax.xaxis.set_major_formatter(FuncFormatter(_log_label))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(plain(info.name) + (" (log)" if info.log else ""))
        ax.grid(alpha=0.3)
    for ax in axes[len(infos):]:
        ax.set_visible(False)
    axes[0].set_ylabel("best val_loss")
    values = np.concatenate([i.values for i in infos]) if infos else np.array([1.0])
    if np.nanmin(values) > 0 and np.nanmax(values) / np.nanmin(values) > 20:
        axes[0].set_yscale("log")
    fig.suptitle("Hyperparameters against val_loss (star: best trial)")
    return fig


def _log_subs(x: np.ndarray) -> tuple[float, ...]:
    """Tick positions per decade: more of them when the values span few decades."""
    x = x[np.isfinite(x) & (x > 0)]
    decades = float(np.log10(x.max() / x.min())) if len(x) else 1.0
    return (1.0, 2.0, 5.0) if decades < 1.2 else (1.0, 3.0) if decades < 2.5 else (1.0,)


def _log_label(value: float, _pos: int) -> str:
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:g}"
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")


def draw_importance(info: ImportanceInfo) -> Figure:
    """Horizontal bars of each hyperparameter's importance, most important on top."""
    names = list(info.importances)[::-1]
    fig = Figure(figsize=(10, 0.5 * len(names) + 1.4), layout="constrained")
    ax = fig.subplots()
    ax.barh([plain(n) for n in names], [info.importances[n] for n in names], color="#4c72b0")
    ax.set_xlabel("importance for val_loss (sums to 1)")
    ax.set_title(f"Hyperparameter importance (Optuna {info.evaluator}, "
                 f"{info.n_trials} finished trials)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def search_figures(exp: Experiment, importance: ImportanceInfo | None = None) -> list[ReportFigure]:
    """The search's figures with captions, skipping those without data (``importance``:
    precomputed, or None to compute it)."""
    figures = []
    if len(exp.history):
        figures.append(ReportFigure(
            "curves", "Learning curves",
            "Validation loss of every trial per epoch. X: stopped early by ASHA; v: failed; the "
            "best trial in green.", draw_learning_curves(learning_curves_info(exp))))
    if len(exp.finished):
        figures.append(ReportFigure(
            "history", "Optimisation history",
            f"Finished trials ({' and '.join(FINISHED)}) and the best val_loss so far.",
            draw_history(history_info(exp))))
        params = params_info(exp)
        if params:
            figures.append(ReportFigure(
                "params", "Hyperparameters against val_loss",
                "Each tuned hyperparameter's value against the trial's best val_loss.",
                draw_params(params)))
        importance = importance or importance_info(exp)
        if importance.importances:
            figures.append(ReportFigure(
                "importance", "Hyperparameter importance",
                f"Optuna's {importance.evaluator} on the {importance.n_trials} finished trials "
                "(completed and stopped early, each with its best val_loss).",
                draw_importance(importance)))
    timeline_info = timeline.timeline_info(exp)
    if timeline_info.bars:
        figures.append(ReportFigure("timeline", "Timeline of trials", timeline.caption(
            timeline_info), timeline.draw_timeline(timeline_info)))
    return figures
