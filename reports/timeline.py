"""The timeline of trials: one bar per trial on its node over wall time, coloured by outcome.

Each node's trials are packed into lanes (concurrent slots); the info also gives busy
trial-seconds over the allowed capacity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tunecast.reports.collect import Experiment
from tunecast.reports.style import OUTCOME_COLORS, OUTCOME_LABELS, duration_text, outcome_color, plain

__all__ = ["TimelineBar", "TimelineInfo", "caption", "draw_timeline", "timeline_info",
           "trial_starts"]


class TimelineBar(NamedTuple):
    """One trial's run: lane and seconds since the first trial started."""

    trial_id: str
    status: str
    lane: int
    start_s: float
    end_s: float
    node: str
    gpu_share: float


class TimelineInfo(NamedTuple):
    """Bars, lane labels and how well the capacity was used."""

    bars: list[TimelineBar]
    lane_labels: list[str]  # lane i's label, "node · slot k"
    span_s: float  # first start to last end
    busy_s: float  # sum of the trials' wall times
    capacity: int | None  # trials that could run at once (max_concurrent, CPUs, GPUs)
    utilisation: float | None  # busy_s / (capacity * span_s)
    n_untimed: int  # trials without times (never reported), not drawn


def trial_starts(trials: pd.DataFrame) -> np.ndarray:
    """Each trial's wall-clock start: ``end_time - duration_s`` (the first report otherwise)."""
    starts = trials["end_time"] - trials["duration_s"]
    return starts.fillna(trials["start_time"]).to_numpy(dtype=float)


def timeline_info(exp: Experiment) -> TimelineInfo:
    """Pack the timed trials into lanes per node and measure the cluster's use."""
    trials = exp.trials
    starts, ends = trial_starts(trials), trials["end_time"].to_numpy(dtype=float)
    timed = np.isfinite(starts) & np.isfinite(ends)
    t0 = float(starts[timed].min()) if timed.any() else 0.0
    nodes = [ip or nid[:12] or "unknown node"
             for ip, nid in zip(trials["node_ip"], trials["node_id"], strict=True)]
    bars: list[TimelineBar] = []
    labels: list[str] = []
    for node in dict.fromkeys(n for n, ok in zip(nodes, timed, strict=True) if ok):
        rows = [i for i in np.argsort(starts, kind="stable") if timed[i] and nodes[i] == node]
        base = len(labels)  # this node's first lane
        lane_ends: list[float] = []  # end of the last trial in each of this node's lanes
        for i in rows:
            free = [k for k, end in enumerate(lane_ends) if end <= starts[i] + 1e-6]
            slot = free[0] if free else len(lane_ends)
            if not free:
                lane_ends.append(0.0)
                labels.append(f"{node} · slot {slot + 1}")
            lane_ends[slot] = float(ends[i])
            gpu = float(trials["gpu_share"].iloc[i])
            bars.append(TimelineBar(str(trials["trial_id"].iloc[i]), str(trials["status"].iloc[i]),
                                    base + slot, float(starts[i]) - t0,
                                    float(ends[i]) - t0, node, gpu if np.isfinite(gpu) else 0.0))
    span = max((b.end_s for b in bars), default=0.0)
    busy = float(sum(b.end_s - b.start_s for b in bars))
    capacity = _capacity(exp)
    utilisation = busy / (capacity * span) if capacity and span > 0 else None
    return TimelineInfo(bars, labels, span, busy, capacity, utilisation,
                        int((~timed).sum()))


def _capacity(exp: Experiment) -> int | None:
    search, cluster = exp.run.search, exp.run.cluster
    if cluster.get("autoscaler"):  # nodes at start say nothing of the workers added later
        return int(search["max_concurrent"]) if search.get("max_concurrent") else None
    limits = []
    if search.get("max_concurrent"):
        limits.append(int(search["max_concurrent"]))
    for total, per_trial in (("total_cpus", "cpus_per_trial"), ("total_gpus", "gpus_per_trial")):
        need = float(search.get(per_trial) or 0)
        if need > 0 and cluster.get(total) is not None:
            limits.append(int(float(cluster[total]) / need + 1e-9))
    return min(limits) if limits and min(limits) > 0 else None


def caption(info: TimelineInfo) -> str:
    """One sentence on how full the cluster was."""
    text = f"{len(info.bars)} trials in {len(info.lane_labels)} lanes over {duration_text(info.span_s)}"
    if info.utilisation is not None:
        text += (f"; trials kept {info.utilisation:.0%} of the {info.capacity} concurrent slots "
                 "busy")
    if info.n_untimed:
        text += f"; {info.n_untimed} trials never reported and are not drawn"
    return text + "."


def draw_timeline(info: TimelineInfo) -> Figure:
    """Draw one horizontal bar per trial on its lane, coloured by outcome."""
    lanes = max(len(info.lane_labels), 1)
    fig = Figure(figsize=(10, min(1.8 + 0.32 * lanes, 14)), layout="constrained")
    ax = fig.subplots()
    minutes = info.span_s > 600
    scale = 60.0 if minutes else 1.0
    ax.barh([b.lane for b in info.bars], [(b.end_s - b.start_s) / scale for b in info.bars],
            left=[b.start_s / scale for b in info.bars], height=0.8,
            color=[outcome_color(b.status) for b in info.bars], edgecolor="white", lw=0.6)
    if len(info.bars) <= 40:
        for b in (b for b in info.bars if b.end_s - b.start_s > 0.06 * info.span_s):
            share = f" gpu {b.gpu_share:g}" if b.gpu_share > 0 else ""
            ax.text((b.start_s + b.end_s) / 2 / scale, b.lane, plain(b.trial_id + share, 24),
                    ha="center", va="center", fontsize=7, color="white", clip_on=True)
    ax.set_yticks(range(len(info.lane_labels)), [plain(s, 40) for s in info.lane_labels],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"wall time since the first trial started ({'min' if minutes else 's'})")
    present = {b.status for b in info.bars}
    handles = [Patch(color=c, label=OUTCOME_LABELS[s]) for s, c in OUTCOME_COLORS.items()
               if s in present]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    used = "" if info.utilisation is None else f", {info.utilisation:.0%} of capacity used"
    ax.set_title(f"Trials over time per node and slot{used}")
    ax.grid(alpha=0.3, axis="x")
    return fig

