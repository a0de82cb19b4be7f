"""What ``tunecast search`` prints while the trials run: a Ray Tune ``Callback``.

On a terminal: a status line redrawn in place (progress bar, counts, best ``best_val_loss``,
elapsed and estimated time left) under one line per finished trial. Elsewhere (a Job's log, a
pipe): the same trial lines and a last status line, plain text without redraws. The callback is
pickled with the Tuner, so it holds only its settings; the stream is looked up when it prints.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ray import tune

from tunecast.expdir import one_line
from tunecast.expdir.contract import SEARCH_METRIC
from tunecast.search.trainable import DIVERGED

BAR_WIDTH = 20
REDRAW_S = 0.5  # at most two redraws of the status line a second
ERASE_LINE = "\r\x1b[K"


def trial_outcome(trial: Any, errored: bool = False) -> str:
    """completed / stopped / failed, from the trial's last report (as ``search.results``):
    ``last_epoch`` marks an end by max_epochs or patience, else it was stopped early."""
    last = trial.last_result or {}
    if errored or last.get(DIVERGED):
        return "failed"
    return "completed" if int(last.get("last_epoch") or 0) == 1 else "stopped"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def value_text(value: Any) -> str:
    """A hyperparameter's value, short: 3 significant digits for floats."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, int(width * done / total))
    return "#" * filled + "-" * (width - filled)


class ProgressDisplay(tune.Callback):
    """Ray Tune callback that prints the progress of a search (see the module's docstring)."""

    def __init__(self, total: int, params: Sequence[str], study: str = "") -> None:
        self.total = total
        self.params = tuple(params)  # the tuned hyperparameters, shown in each trial's line
        self.study = study  # the study file, for the optuna-dashboard hint
        self._reset()

    def _reset(self) -> None:
        self.outcomes: dict[str, str] = {}  # trial id -> completed / stopped / failed
        self.running = 0
        self.best: tuple[float, str] | None = None  # (best_val_loss, trial id)
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.drawn = False

    def __getstate__(self) -> dict[str, Any]:
        return {"total": self.total, "params": self.params, "study": self.study}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.total, self.params, self.study = state["total"], tuple(state["params"]), state["study"]
        self._reset()

    # --- where it prints -------------------------------------------------------------------

    @property
    def stream(self) -> TextIO:
        return sys.stdout  # looked up each time: a test or a Job may swap it

    @property
    def live(self) -> bool:
        """A terminal: the status line is redrawn in place."""
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _print_line(self, line: str) -> None:
        """A permanent line; on a terminal it goes above the status line, which is redrawn."""
        if self.live and self.drawn:
            self._write(ERASE_LINE + line + "\n")
            self.drawn = False
            self._draw(force=True)
        else:
            self._write(line + "\n")

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self.last_draw < REDRAW_S:
            return
        self.last_draw = now
        self._write(ERASE_LINE + self.status_line())
        self.drawn = True

    # --- what it prints --------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        found = {"completed": 0, "stopped": 0, "failed": 0}
        for outcome in self.outcomes.values():
            found[outcome] += 1
        return found

    def status_line(self) -> str:
        c = self.counts()
        done = sum(c.values())
        elapsed = time.monotonic() - self.started
        left = (self.total - done) * elapsed / done if 0 < done < self.total else None
        best = f"best {self.best[0]:.4g} ({self.best[1]})" if self.best else "best -"
        eta = f", ~{duration(left)} left" if left is not None else ""
        return (
            f"[{bar(done, self.total)}] {done}/{self.total} trials: {self.running} running, "
            f"{c['stopped']} stopped early, {c['failed']} failed | {best} | {duration(elapsed)}{eta}"
        )

    def trial_line(self, trial: Any, outcome: str) -> str:
        last = trial.last_result or {}
        epochs = int(last.get("epoch") or 0)
        value = last.get(SEARCH_METRIC)
        loss = f"best val_loss {value:.4g}" if _finite(value) else "no val_loss"
        params = " ".join(f"{name}={value_text(trial.config[name])}" for name in self.params
                          if name in trial.config)
        done = len(self.outcomes)
        unit = "epoch " if epochs == 1 else "epochs"
        text = (f"[{done:>{len(str(self.total))}}/{self.total}] trial {trial.trial_id} {outcome:<9} "
                f"{epochs:>3} {unit}  {loss}  {params}")
        if outcome == "failed":
            text += f"  error: {self.error_of(trial)}"
        return text

    @staticmethod
    def error_of(trial: Any) -> str:
        """One line of why the trial failed (its error.txt holds the traceback)."""
        why = (trial.last_result or {}).get(DIVERGED)
        if isinstance(why, str) and why:
            return why
        error_file = trial.error_file
        try:
            return one_line(Path(error_file).read_text(encoding="utf-8")) if error_file else "unknown"
        except OSError:
            return f"see {error_file}"

    # --- Ray Tune's callback hooks -----------------------------------------------------------

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._reset()
        if self.study:
            self._write(f"{self.total} trials; follow them in Optuna's dashboard: "
                        f"optuna-dashboard {self.study}\n")

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for trial in trials:  # a resumed search: the trials that ended in an earlier run
            if trial.status in ("TERMINATED", "ERROR") and trial.trial_id not in self.outcomes:
                self.outcomes[trial.trial_id] = trial_outcome(trial, trial.status == "ERROR")
                self._note_best(trial.trial_id, trial.last_result or {})

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.running = sum(1 for t in trials if t.status == "RUNNING")
        self._draw()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        self._note_best(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finished(trial, trial_outcome(trial))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finished(trial, "failed")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.running = 0
        line = self.status_line()
        self._write((ERASE_LINE if self.live and self.drawn else "") + line + "\n")
        self.drawn = False

    def _finished(self, trial: Any, outcome: str) -> None:
        if trial.trial_id in self.outcomes:
            return
        self.outcomes[trial.trial_id] = outcome
        self.running = max(0, self.running - 1)
        self._print_line(self.trial_line(trial, outcome))

    def _note_best(self, trial_id: str, result: dict[str, Any]) -> None:
        if result.get(DIVERGED):
            return
        value: Any = result.get(SEARCH_METRIC)
        if not _finite(value):
            return
        if self.best is None or float(value) < self.best[0]:
            self.best = (float(value), trial_id)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def quiet_libraries(verbose: int) -> None:
    """Below ``--verbose``, keep Optuna's and Tune's logs and trial tracebacks off the console:
    a failed trial is one line of the display (its traceback is in its ``error.txt``)."""
    import logging

    import optuna

    if verbose >= 2:
        optuna.logging.set_verbosity(optuna.logging.INFO)
        for name in ("ray.tune", "ray.tune.execution.tune_controller", "ray.tune.tune"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):  # "Trial task failed" and
        logging.getLogger(name).setLevel(logging.CRITICAL)  # "Trials did not complete": trial lines
