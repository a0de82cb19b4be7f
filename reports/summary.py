"""What the top of the report says: the verdict, the banners and the key numbers, as plain data
computed from an :class:`~reports.collect.Experiment` (the template lays it out and escapes it)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from tunecast.expdir import contract as c
from tunecast.reports.collect import Combined, Experiment, Scored
from tunecast.reports.style import OUTCOME_LABELS, duration_text, listed
from tunecast.reports.timeline import TimelineInfo

__all__ = ["Banner", "Verdict", "banners", "best_config", "choice_name", "counts_by_outcome", "dataset",
           "number_text", "resources", "time_stats", "verdict"]

BASELINE_NAMES = {name: c.CHOICE_NAMES[name] for name in c.BASELINES}


class Verdict(NamedTuple):
    """One line that says whether tuning beat the obvious; ``good`` is None without a model."""

    text: str
    good: bool | None


class Banner(NamedTuple):
    """A notice shown above the summary; ``level`` is "error", "warning" or "note"."""

    level: str
    text: str


def verdict(exp: Experiment) -> Verdict:
    """Compare the best trial's test MASE (MAE when a MASE is not finite) with the baselines,
    add a sentence each for the ensemble and the combination, and, when the search chose
    something other than the best trial on validation, open with that choice and its evidence.

    ``good`` judges what the search forecasts with (never a pick made on test): False for a
    baseline, else whether the chosen forecaster's test metric beats every baseline shown.
    """
    if exp.best is None:
        if exp.run.status == "completed" or not len(exp.finished):
            return Verdict("No trial finished: there is no model to evaluate.", None)
        return Verdict("The search stopped before its best trial was evaluated on the test "
                       "split: no test verdict.", None)
    metrics = exp.best.test_metrics
    ensemble, combined = exp.ensemble, exp.combined
    names = ["seasonal_naive", "naive"] if exp.best.season_length > 1 else ["naive"]
    compared = [metrics[k] for k in ("model", *names)]
    compared += [other.test_metrics["model"] for other in (ensemble, combined) if other is not None]
    panel = exp.best.is_panel  # a panel has no MAE across series: its MASE is a mean of finite ones
    metric = "mase" if panel or all(math.isfinite(values["mase"]) for values in compared) else "mae"
    model = metrics["model"][metric]
    # stronger baseline first: beating it means beating both
    names.sort(key=lambda name: metrics[name][metric])
    parts = []
    for name in names:
        value = metrics[name][metric]
        beats = model < value
        parts.append((beats, f"{BASELINE_NAMES[name]} ({model:.2f} vs {value:.2f})"))
    label = f"test {metric.upper()}"
    if panel:
        label = f"mean test MASE across {exp.best.scores.n_series} series"
    good = all(beats for beats, _ in parts)
    if good:
        text = f"Best trial beats {parts[0][1]}" + "".join(f" and {p}" for _, p in parts[1:])
        text += f" on {label}."
    else:
        text = f"Best trial does NOT beat {parts[0][1]} on {label}"
        if len(parts) > 1:
            text += f"; {'it beats' if parts[1][0] else 'nor'} {parts[1][1]}"
        text += "."
    if ensemble is not None:
        text += " " + _other_sentence(f"Top-{ensemble.k} ensemble", ensemble, metrics, names, metric)
    if combined is not None:
        text += " " + _other_sentence(_combined_name(exp, combined), combined, metrics, names, metric)
    selection = exp.run.selection
    if selection is None or selection.chosen == "best":
        return Verdict(text, good)
    chosen = selection.chosen
    losses = selection.score  # val_loss, or its mean over the earlier origins too
    measure = "val_loss" if selection.origins == 1 else f"mean val_loss over {selection.origins} origins"
    if selection.baseline_won:
        trained = min((v for k in ("best", "ensemble", "combined") if (v := losses.get(k)) is not None),
                      default=math.inf)
        opening = (f"No trained model beat {BASELINE_NAMES[chosen]} on validation ({measure} "
                   f"{losses[chosen]:.4g} vs {trained:.4g}): the search forecasts with "
                   f"{BASELINE_NAMES[chosen]}.")
        return Verdict(opening + " " + text, False)
    who = choice_name(exp, chosen)
    others = [f"{v:.4g} for {choice_name(exp, k)}" for k, v in losses.items() if k != chosen]
    against = f", against {listed(others)}" if others else ""
    score = losses.get(chosen)
    shown = f"{score:.4g}" if score is not None else "not recorded"
    opening = f"The search forecasts with {who}, chosen on validation: {measure} {shown}{against}."
    scored = {"ensemble": ensemble, "combined": combined}.get(chosen)
    if scored is not None:
        good = all(scored.test_metrics["model"][metric] < metrics[n][metric] for n in names)
    return Verdict(opening + " " + text, good)


def choice_name(exp: Experiment, choice: str) -> str:
    """How a person reads one of the search's choices, with the ensemble's k and the
    combination's statistical models when the report has them."""
    name = c.CHOICE_NAMES.get(choice, choice)
    if choice == "ensemble" and exp.ensemble is not None:
        name = name.replace("top-k", f"top-{exp.ensemble.k}")
    if choice == "combined" and exp.combined is not None:
        name = f"the networks combined with {listed(list(exp.combined.statistical))}"
    return name


def _combined_name(exp: Experiment, combined: Combined) -> str:
    """E.g. "The best trial combined with AutoETS and AutoARIMA"."""
    networks = exp.combined_networks
    return f"{networks[:1].upper()}{networks[1:]} combined with {listed(list(combined.statistical))}"


def _other_sentence(
    who: str, other: Scored, metrics: dict[str, dict[str, float]], names: list[str], metric: str
) -> str:
    """Another forecaster's test metric next to the best trial's, and which baselines it beats."""
    value, best = other.test_metrics["model"][metric], metrics["model"][metric]
    shown, best_shown = f"{value:.2f}", f"{best:.2f}"
    if shown == best_shown:
        against = f"the same as the best trial's {best_shown}"
    else:
        against = f"{'better' if value < best else 'worse'} than the best trial's {best_shown}"
    beaten = [BASELINE_NAMES[n] for n in names if value < metrics[n][metric]]
    missed = [BASELINE_NAMES[n] for n in names if not value < metrics[n][metric]]
    if not missed:
        baselines = "it beats both baselines" if len(beaten) > 1 else f"it beats {beaten[0]}"
    elif not beaten:
        baselines = "it does NOT beat either baseline" if len(missed) > 1 \
            else f"it does NOT beat {missed[0]}"
    else:
        baselines = f"it does NOT beat {missed[0]}, but beats {beaten[0]}"
    return f"{who}: test {metric.upper()} {shown}, {against}; {baselines}."


def banners(exp: Experiment) -> list[Banner]:
    """Notices about an unfinished search, failed trials and anything odd in the files."""
    out: list[Banner] = []
    counts, n = exp.counts, len(exp.trials)
    planned = exp.run.search.get("trials")
    ran = f"{n} of {planned} planned trials" if planned else f"{n} trials"
    status = exp.run.status
    if status == "interrupted":
        out.append(Banner("error", f"This search was interrupted: the report covers {ran}."))
    elif status == "running":
        out.append(Banner("error", f"This search had not ended (still running, or its driver "
                                   f"died): the report covers {ran} so far."))
    elif status == "failed":
        out.append(Banner("error", f"This search failed: the report covers {ran}."))
    elif status != "completed":
        out.append(Banner("error", f"This search has an unknown status {status!r}."))
    if n and not len(exp.finished):
        out.append(Banner("error", "No trial finished: there is no best trial, no test metrics "
                                   "and no forecast to show."))
    if counts["failed"]:
        out.append(Banner("warning", f"{counts['failed']} of {n} trials failed; their errors are "
                                     "listed under Failed trials."))
    unfinished = counts["running"] + counts["pending"]
    if unfinished:
        out.append(Banner("warning", f"{unfinished} trials never finished (running or pending "
                                     "when the search stopped)."))
    retried = int((exp.trials["restarts"].fillna(0) > 0).sum())
    if retried:
        out.append(Banner("warning", f"{retried} of {n} trials failed part-way (e.g. their node "
                                     "was lost) and were retried, resuming from their best "
                                     "checkpoint; see the retries column."))
    out.extend(Banner("note", text) for text in exp.warnings)
    return out


def counts_by_outcome(exp: Experiment) -> list[tuple[str, str, int]]:
    """(status, label, count) for each outcome that occurred, in a fixed order."""
    return [(status, OUTCOME_LABELS.get(status, status), count)
            for status, count in exp.counts.items() if count]


def time_stats(exp: Experiment, timeline: TimelineInfo) -> dict[str, str]:
    """Total wall time and per-trial time (median, mean, longest), as text."""
    durations = exp.trials["duration_s"].to_numpy(float)
    durations = durations[np.isfinite(durations)]
    total = exp.run.duration_s
    stats = {"total wall time": duration_text(total) if total is not None
             else f"{duration_text(timeline.span_s)} (from the trials; the run has no end time)",
             "trial time, summed": duration_text(float(durations.sum()) if len(durations) else None)}
    if len(durations):
        stats["per trial: median / mean / longest"] = " / ".join(
            duration_text(float(v)) for v in (np.median(durations), durations.mean(),
                                              durations.max()))
    return stats


def resources(exp: Experiment, timeline: TimelineInfo) -> dict[str, str]:
    """What the search asked for and what it had, as text."""
    search, cluster = exp.run.search, exp.run.cluster
    nodes = cluster.get("nodes")
    n_nodes = len(nodes) if isinstance(nodes, list) else 0
    devices = sorted({str(d) for d in exp.trials["device"] if d})
    out = {
        "per trial": f"{number_text(search.get('cpus_per_trial'))} CPU, "
                     f"{number_text(search.get('gpus_per_trial'))} GPU",
        "max concurrent trials": number_text(search.get("max_concurrent")),
        "cluster": f"{cluster.get('address', '?')}: {n_nodes} node(s), "
                   f"{number_text(cluster.get('total_cpus'))} CPUs, "
                   f"{number_text(cluster.get('total_gpus'))} GPUs",
        "devices used": ", ".join(devices) or "–",
    }
    autoscaler = cluster.get("autoscaler")
    if isinstance(autoscaler, dict) and autoscaler.get("node_types"):
        out["cluster"] += " at start; the autoscaler may add " + ", ".join(
            f"{t.get('name')} (up to {number_text(t.get('max_workers'))})" for t in autoscaler["node_types"]
        )
    if timeline.utilisation is not None:
        out["capacity used"] = (f"{timeline.utilisation:.0%} of {timeline.capacity} concurrent "
                                "slots over the trials' span")
    return out


def dataset(exp: Experiment) -> dict[str, str]:
    """The data the search tuned on, as text."""
    data = exp.run.data
    features = data.get("features") or []
    out = {
        "source": str(data.get("source", "?")),
        "target column": str(data.get("target", "?")),
        "time column": str(data.get("time_column") or "–"),
        "feature columns": ", ".join(str(f) for f in features) if features else "none",
        "points (train / val / test)": "{} ({} / {} / {})".format(
            *(number_text(data.get(k)) for k in ("n_points", "n_train", "n_val", "n_test"))),
        "season length m": number_text(data.get("season_length")),
    }
    if "n_series" in data:  # a panel of many series, in long format
        out["series"] = (f"{number_text(data.get('n_series'))} in column '{data.get('id_column')}', "
                         f"{number_text(data.get('shortest'))} to {number_text(data.get('longest'))} "
                         "points each")
        if data.get("n_dropped"):
            out["series dropped"] = (f"{number_text(data.get('n_dropped'))} shorter than "
                                     f"--min-length {number_text(data.get('min_length'))}")
    if exp.best is not None:
        out["test protocol"] = f"{exp.best.protocol}, {exp.best.n_test_points} test points"
    return out


def best_config(exp: Experiment) -> list[tuple[str, str, bool]]:
    """(name, value, tuned) for every field of the best trial's train config."""
    if exp.best is None:
        return []
    tuned = set(exp.param_names)
    return [(str(k), number_text(v), k in tuned) for k, v in exp.best.train_config.items()]


def number_text(value: Any) -> str:
    """A number for people: integers as such, floats to 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(number_text(v) for v in value) if value else "none"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return "–" if math.isnan(value) else str(value)
    if float(value).is_integer() and abs(float(value)) < 1e15:
        return str(int(value))
    return f"{value:.4g}"

