"""Render an :class:`~reports.collect.Experiment` into one self-contained HTML file.

A Jinja2 template with autoescape on (``|safe`` only for the package's own CSS); figures are
embedded as base64 PNG ``data:`` URIs, so the file opens offline.
"""

from __future__ import annotations

import base64
import io
import math
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from tunecast.expdir import versions, write_text_atomic
from tunecast.expdir.contract import (
    CONFIG_PREFIX,
    METRIC_NAMES,
    PANEL_METRIC_NAMES,
    REPORT_FILE,
    config_column,
)
from tunecast.reports import panel, summary
from tunecast.reports._files import ReportError
from tunecast.reports.collect import Experiment, collect
from tunecast.reports.figures import make_figures
from tunecast.reports.importance import importance_info
from tunecast.reports.style import duration_text
from tunecast.reports.timeline import timeline_info

__all__ = ["render_html", "render_report"]

DPI = 100
_METRIC_LABELS = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE", "smape": "sMAPE %"}
METRIC_COLUMNS = tuple((name, _METRIC_LABELS[name]) for name in METRIC_NAMES)
# a panel: means across series of each series' own scores
PANEL_METRIC_COLUMNS = tuple(zip(PANEL_METRIC_NAMES, ("mean MASE", "mean MASE ratio to seasonal-naive",
                                                      "mean sMAPE %"), strict=True))
_TRIAL_COLUMNS = (("best val_loss", "best_val_loss"), ("best epoch", "best_epoch"),
                  ("epochs", "epochs_run"), ("retries", "restarts"))


def render_report(exp_dir: str | Path, out: str | Path | None = None,
                  series: list[str] | None = None) -> Path:
    """Write the report of an experiment directory atomically and return its path.

    Args:
        exp_dir: the experiment directory.
        out: where to write; ``<exp_dir>/report.html`` by default.
        series: a panel: ids of series to show besides the best, median and worst (``--series``).

    Raises:
        ReportError: no report can be made, ``series`` is invalid, or ``out`` cannot be written.
    """
    exp = collect(exp_dir)
    target = Path(out) if out is not None else exp.path / REPORT_FILE
    if target.is_dir():
        raise ReportError(f"output {target} is a directory; pass a file name such as "
                          f"{target / 'report.html'}")
    if not target.parent.is_dir():
        raise ReportError(f"output folder {target.parent} does not exist; create it or choose "
                          "another -o path")
    page = render_html(exp, series)
    _write_atomic(target, page)
    return target


def render_html(exp: Experiment, series: list[str] | None = None) -> str:
    """The report page of ``exp`` as one HTML string (``series``: see :func:`render_report`).

    Raises:
        ReportError: ``series`` names a series ``exp`` does not have, or ``exp`` has one series.
    """
    panel.check_series(exp, list(series or []))
    importance = importance_info(exp)
    timeline = timeline_info(exp)
    figures = [{"key": f.key, "title": f.title, "caption": f.caption, "uri": _png_uri(f.figure)}
               for f in make_figures(exp, importance, series)]
    headers, rows = _trials_table(exp)
    best = exp.best
    context: dict[str, Any] = {
        "run": exp.run,
        "path": str(exp.path),
        "verdict": summary.verdict(exp),
        "banners": summary.banners(exp),
        "counts": summary.counts_by_outcome(exp),
        "n_trials": len(exp.trials),
        "dataset": summary.dataset(exp),
        "best": best,
        "ensemble": exp.ensemble,
        "combined": exp.combined,
        "combined_networks": exp.combined_networks,
        "combined_models": " and ".join(exp.combined.statistical) if exp.combined is not None else "",
        "best_config": summary.best_config(exp),
        "metrics": _metrics_rows(exp),
        "metric_headers": [label for _, label in _metric_columns(exp)],
        "panel": panel.is_panel(exp),
        "series_table": panel.series_table(best) if best is not None else None,
        "series_table_limit": panel.MAX_ROWS,
        "times": summary.time_stats(exp, timeline),
        "resources": summary.resources(exp, timeline),
        "started": exp.run.started_at.isoformat(sep=" ") if exp.run.started_at else "–",
        "duration": duration_text(exp.run.duration_s),
        "figures": figures,
        "importance": importance,
        "trial_headers": headers,
        "trial_rows": rows,
        "failed": _failed_trials(exp),
        "search_settings": {k: summary.number_text(v) for k, v in exp.run.search.items()
                            if k != "space"},
        "space": _space_rows(exp.run.space),
        "constants": _constant_config(exp),
        "data_settings": {k: summary.number_text(v) for k, v in exp.run.data.items()},
        "versions": {str(k): str(v) for k, v in exp.run.versions.items()},
        "report_versions": _report_versions(),
        "cluster_nodes": exp.run.cluster.get("nodes") or [],
        "generated": datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds"),
        "css": (resources.files("tunecast.reports") / "templates" / "report.css").read_text("utf-8"),
    }
    return _environment().get_template("report.html").render(context)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tunecast.reports", "templates"),
        autoescape=True,  # explicit: every value from the data is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = summary.number_text
    return env


def _png_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _metric_columns(exp: Experiment) -> tuple[tuple[str, str], ...]:
    return PANEL_METRIC_COLUMNS if panel.is_panel(exp) else METRIC_COLUMNS


def _metrics_rows(exp: Experiment) -> list[dict[str, Any]]:
    """One row per forecaster (best trial, ensemble, combination, baselines); each cell is
    (value, lowest in its column)."""
    columns = _metric_columns(exp)
    if exp.best is None:
        return []
    test = exp.best.test_metrics
    forecasters = [("model", f"best trial ({exp.best.trial_id})", test["model"])]
    if exp.ensemble is not None:
        trials = ", ".join(exp.ensemble.trial_ids)
        forecasters.append(("ensemble", f"top-{exp.ensemble.k} ensemble (mean of trials {trials})",
                            exp.ensemble.test_metrics["model"]))
    if exp.combined is not None:
        parts = " + ".join((exp.combined_networks, *exp.combined.statistical))
        forecasters.append(("combined", f"combined: {parts} (equal mean)",
                            exp.combined.test_metrics["model"]))
    forecasters += [("naive", "naive", test["naive"]),
                    ("seasonal_naive", "seasonal-naive", test["seasonal_naive"])]
    lowest = {}
    for name, _ in columns:
        finite = [v[name] for _, _, v in forecasters if math.isfinite(v[name])]
        lowest[name] = min(finite) if finite else math.nan
    return [{"key": key, "label": label,
             "cells": [(values[name], values[name] == lowest[name]) for name, _ in columns]}
            for key, label, values in forecasters]


def _config_columns(exp: Experiment) -> tuple[list[str], list[str]]:
    """(varying, constant) config column names; tuned parameters count as varying."""
    names = [col.removeprefix(CONFIG_PREFIX) for col in exp.trials.columns if col.startswith(CONFIG_PREFIX)]
    tuned = set(exp.param_names)
    varying = [n for n in names
               if n in tuned or exp.trials[config_column(n)].nunique(dropna=False) > 1]
    return varying, [n for n in names if n not in varying]


def _constant_config(exp: Experiment) -> dict[str, str]:
    _, constant = _config_columns(exp)
    if not len(exp.trials):
        return {}
    return {n: summary.number_text(exp.trials[config_column(n)].iloc[0]) for n in constant}


def _trials_table(exp: Experiment) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Headers, and per trial one (text, sort key) cell per header."""
    varying, _ = _config_columns(exp)
    headers = ["#", "trial", "status", *(h for h, _ in _TRIAL_COLUMNS), "time", "node",
               "GPU share", "device", *varying, "error"]
    rows = []
    for number, (_, trial) in enumerate(exp.trials.iterrows(), start=1):
        cells = [(str(number), str(number)), (str(trial["trial_id"]), str(trial["trial_id"])),
                 (str(trial["status"]), str(trial["status"]))]
        cells += [_number_cell(trial[column]) for _, column in _TRIAL_COLUMNS]
        duration = trial["duration_s"]
        cells.append((duration_text(duration) if pd.notna(duration) else "–",
                      "" if pd.isna(duration) else repr(float(duration))))
        node = str(trial["node_ip"] or trial["node_id"])
        cells += [(node, node), _number_cell(trial["gpu_share"]),
                  (str(trial["device"]), str(trial["device"]))]
        cells += [_number_cell(trial[config_column(name)]) for name in varying]
        error = str(trial["error"])
        cells.append((error if len(error) <= 80 else error[:79] + "…", error))
        rows.append(cells)
    return headers, rows


def _number_cell(value: Any) -> tuple[str, str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–", ""
    text = summary.number_text(value)
    return text, repr(float(value)) if isinstance(value, int | float) else str(value)


def _failed_trials(exp: Experiment) -> list[dict[str, str]]:
    failed = exp.trials[exp.trials["status"] == "failed"]
    return [{"trial_id": str(t["trial_id"]), "epochs": summary.number_text(t["epochs_run"]),
             "node": str(t["node_ip"] or t["node_id"]),
             "error": str(t["error"]) or "(no error message recorded)"}
            for _, t in failed.iterrows()]


def _space_rows(space: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for name, spec in space.items():
        kind = str(spec.get("type", "?"))
        if kind == "categorical":
            values = ", ".join(str(c) for c in spec.get("choices", []))
        elif kind == "fixed":
            values = summary.number_text(spec.get("value"))
        else:
            values = (f"{summary.number_text(spec.get('low'))} … "
                      f"{summary.number_text(spec.get('high'))}"
                      + (" (log)" if spec.get("log") else ""))
        rows.append({"name": str(name), "type": kind, "values": values})
    return rows


def _report_versions() -> dict[str, str]:
    return versions(("tunecast", "matplotlib", "jinja2", "pandas", "numpy"))


def _write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target``, then rename it over ``target``."""
    try:
        write_text_atomic(target, text)
    except OSError as exc:
        raise ReportError(f"cannot write {target} ({exc.strerror or exc}); choose another -o "
                          "path") from exc
