"""``TuneCast``: the search as one forecaster object, in Nixtla's conventions (long frames in and
out: ``unique_id``, ``ds``, ``y``; ``fit`` / ``predict`` / ``cross_validation``).

The work is the CLI's: one configuration from the same options (``from_options``), one search
(``run_search``), one forecast (``make_forecast``), one report. Torch, Ray and the search code are
imported when a method needs them, so ``import tunecast`` stays light.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ID, TIME, TARGET = "unique_id", "ds", "y"  # Nixtla's long format
ALIAS = "TuneCast"  # the forecast's column, as Nixtla names a model's
NOT_KEYWORDS = {  # `tunecast search` options that a method of TuneCast takes instead
    "data": "pass the data to fit(df)",
    "resume": "resume an interrupted search with `tunecast search --resume DIR`",
}


class TuneCast:
    """A hyperparameter search for the Attention-LSTM, used as a forecaster.

    Every option of ``tunecast search`` is a keyword of the same name (dashes as underscores:
    ``trials``, ``horizon``, ``season_length``, ``max_epochs``, ``storage``, ``address``,
    ``gpus_per_trial``, ``config`` for a YAML file, ``quiet``, ``no_report``, ...); see docs/cli.md.
    Bad options raise ``TypeError`` (an unknown keyword) or ``ValueError`` naming the fix, here,
    before anything runs.

    Example:
        >>> from tunecast import TuneCast, load_dataset
        >>> df = load_dataset("airline")  # unique_id, ds, y
        >>> tc = TuneCast(horizon=12, season_length=12, trials=8).fit(df)  # doctest: +SKIP
        >>> tc.predict(h=24, level=[80, 95])  # doctest: +SKIP
    """

    def __init__(self, **options: Any) -> None:
        from tunecast.search.cli_search import search_options

        known = search_options()
        for key in options:
            if key in NOT_KEYWORDS:
                raise TypeError(f"TuneCast() takes no '{key}': {NOT_KEYWORDS[key]}")
            if key not in known or key == "command":
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise TypeError(f"TuneCast() got an unknown option '{key}': {hint}the options are "
                                f"`tunecast search`'s, with underscores (docs/cli.md)")
        self.options = {**known, **options}
        self._config(None)  # every option checked now, before any data or Ray
        self.path: Path | None = None  # the experiment directory, once fitted or loaded
        self.outcome: Any = None  # what the search returned (status, trials, selection, ...)

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if v is not None and v is not False)
        return f"TuneCast({given})" + (f" at {self.path}" if self.path else "")

    def _config(self, source: str | None, **data: Any) -> Any:
        from tunecast.search.config import from_options

        return from_options({**self.options, **data, "data": source})

    def fit(self, df: pd.DataFrame) -> TuneCast:
        """Search on ``df``: long format (``unique_id``, ``ds``, ``y`` and feature columns), or a
        frame without ``unique_id`` as one series. The frame is kept in the experiment
        (``data.parquet``), so the experiment forecasts and resumes on its own. Returns self.

        Raises:
            RuntimeError: the search ended without a trained forecaster (failed or interrupted).
        """
        from tunecast.expdir.contract import DATA_FILE
        from tunecast.search.plan import experiment_dir
        from tunecast.search.run import run_search

        frame, data = self._frame(df)
        name = self.options["name"] or f"tunecast-{dt.datetime.now():%Y%m%d-%H%M%S}"
        config = self._config(None, name=name)
        path, _ = experiment_dir(config, name)
        config = self._config(str(path / DATA_FILE), name=name, **data)
        self.outcome = run_search(config, frame=frame)
        self.path = self.outcome.path
        if self.outcome.status != "completed":
            raise RuntimeError(f"the search ended {self.outcome.status} ({self.path}): "
                               f"see its trials.csv; resume with `tunecast search --resume {self.path}`")
        return self

    def _frame(self, df: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The frame to search on, and the data options that describe it (given ones win)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"fit() takes a pandas DataFrame (unique_id, ds, y), got {type(df).__name__}")
        if df.empty:
            raise ValueError("the frame has no rows: pass the series to fit, one row per time step")
        o = self.options
        id_col = o["id_column"] or ID
        time_col = o["time_column"] or (TIME if TIME in df.columns else None)
        target = o["target"] or (TARGET if TARGET in df.columns else None)
        frame = df.reset_index(drop=True)
        # one series (its id only kept for the output) takes the CLI's path for one series
        ids = frame[id_col].nunique() if id_col in frame.columns else 0
        data = {"time_column": time_col, "target": target,
                "id_column": id_col if ids > 1 or o["id_column"] else None}
        if o["features"] is None:  # Nixtla's convention: every other column is an input
            data["features"] = [str(c) for c in frame.columns if c not in (id_col, time_col, target)]
        return frame, {k: v for k, v in data.items() if v is not None}

    def predict(self, h: int | None = None, level: Sequence[float] = (80, 95),
                df: pd.DataFrame | None = None, futr_df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast ``h`` steps (default: the search's horizon, or one season) past the data with
        the forecaster the search chose on validation, with prediction intervals at ``level``.

        Args:
            h: steps ahead.
            level: interval levels in percent.
            df: newer history: the fitted series, each extended with newer rows.
            futr_df: the feature columns' values for the ``h`` steps ahead (a single series with
                features forecast beyond the trained horizon needs them).

        Returns:
            ``unique_id`` (when the data had it), ``ds``, ``TuneCast``, ``TuneCast-lo-80``,
            ``TuneCast-hi-80``, ... one row per series and step.
        """
        from tunecast.model.forecast import ForecastError
        from tunecast.search.forecasting import make_forecast

        path = self._fitted()
        with tempfile.TemporaryDirectory() as tmp:
            source = None
            if df is not None:
                source = str(Path(tmp) / "history.parquet")
                self._frame(df)[0].to_parquet(source, index=False)
            future = None if futr_df is None else futr_df[list(self._features())].to_numpy(float)
            try:
                _, prediction, _, _ = make_forecast(path, h, tuple(float(v) for v in level), source=source,
                                                    future=future)
            except ForecastError as exc:
                raise ValueError(str(exc)) from None
        out = prediction.frame().rename(columns={"time": TIME, "forecast": ALIAS})
        out = out.rename(columns={c: f"{ALIAS}-{c}" for c in out.columns if c.startswith(("lo-", "hi-"))})
        if ID not in out.columns and (uid := self._single_id()) is not None:
            out.insert(0, ID, uid)
        return out

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 1, step_size: int | None = None,
                         refit: bool = False, level: Sequence[float] | None = None) -> pd.DataFrame:
        """Rolling-origin evaluation: ``n_windows`` windows of ``h`` steps at the end of every
        series, ``step_size`` (default ``h``) apart. A search runs on the data before the first
        cutoff and forecasts every window from the history before it (``refit=True``: a new
        search at every cutoff), so no window's targets are seen by the model that forecasts them.
        The searches are experiments of their own (``<name>-cv<i>``, listed in ``cv_paths``).

        Returns:
            ``unique_id``, ``ds``, ``cutoff`` (the last time before the window), ``y``, ``TuneCast``
            (and its intervals at ``level``), one row per series and step of every window.
        """
        if not isinstance(h, int) or h < 1 or not isinstance(n_windows, int) or n_windows < 1:
            raise ValueError(f"h and n_windows must be integers >= 1, got h={h!r}, n_windows={n_windows!r}")
        step = h if step_size is None else step_size
        if not isinstance(step, int) or step < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        frame, _ = self._frame(df)
        id_col = self.options["id_column"] or ID
        time_col = self.options["time_column"] or TIME
        keys = frame[id_col].astype(str) if id_col in frame.columns else pd.Series("", index=frame.index)
        position = frame.groupby(keys, sort=False).cumcount()
        length = keys.map(keys.value_counts())
        names = {time_col: TIME, self.options["target"] or TARGET: TARGET, id_col: ID}
        base = self.options["name"] or f"tunecast-{dt.datetime.now():%Y%m%d-%H%M%S}"
        self.cv_paths: list[Path] = []
        out, model = [], None
        for i in range(n_windows):
            end = length - h - (n_windows - 1 - i) * step  # each series' first point of window i
            if (end < 1).any():
                raise ValueError(f"a series of {int(length.min())} points is too short for {n_windows} "
                                 f"windows of {h} steps, {step} apart: use fewer windows or a smaller h")
            before = position < end
            history, newer = frame[before], None
            if model is None or refit:
                model = TuneCast(**{**self._given(), "name": f"{base}-cv{i}"}).fit(history)
                self.cv_paths.append(model._fitted())
            else:
                newer = history
            predicted = model.predict(h, level or (), df=newer).reset_index(drop=True)
            inside = (position >= end) & (position < end + h)  # in the forecast's order: id, time
            truth = frame[inside].rename(columns=names).assign(key=keys, at=position)
            truth = truth.sort_values(["key", "at"])
            cutoff = frame[before].assign(key=keys).groupby("key")[time_col].last()
            predicted[TIME] = truth[TIME].to_numpy()
            at = list(predicted.columns).index(TIME) + 1
            predicted.insert(at, "cutoff", truth["key"].map(cutoff).to_numpy())
            predicted.insert(at + 1, TARGET, truth[TARGET].to_numpy())
            out.append(predicted)
        return pd.concat(out, ignore_index=True)

    def report(self, path: str | Path | None = None) -> Path:
        """Write the experiment's self-contained HTML report (default: ``report.html`` in it)."""
        from tunecast.reports import render_report

        return render_report(self._fitted(), path)

    @classmethod
    def load(cls, path: str | Path) -> TuneCast:
        """The forecaster of an experiment directory (fitted here, or by ``tunecast search``)."""
        from tunecast.expdir.contract import ContractError
        from tunecast.search.forecasting import read_experiment

        folder = Path(path).expanduser().resolve()
        try:
            run, _, _ = read_experiment(folder)
        except (ContractError, OSError, ValueError) as exc:
            raise ValueError(f"'{path}' is not a finished tunecast experiment ({exc}): pass the folder "
                             "that fit() or `tunecast search` wrote") from None
        saved = dict(run.config.get("data") or {})
        loaded = cls(name=folder.name, storage=str(folder.parent),
                     **{k: saved.get(k) for k in ("id_column", "time_column", "target")})
        loaded.path = folder
        return loaded

    def _fitted(self) -> Path:
        if self.path is None:
            raise ValueError("this TuneCast is not fitted: call fit(df) first, or TuneCast.load(path)")
        return self.path

    def _given(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if v is not None and v is not False}

    def _single_id(self) -> Any:
        """The one series' id, when the fitted frame named it (``unique_id`` of a single series)."""
        from tunecast.expdir.contract import DATA_FILE

        kept = self._fitted() / DATA_FILE
        return pd.read_parquet(kept, columns=None).get(ID, pd.Series([None])).iloc[0] if kept.exists() \
            else None

    def _features(self) -> tuple[str, ...]:
        from tunecast.search.forecasting import read_experiment

        run, _, _ = read_experiment(self._fitted())
        return tuple((run.config.get("data") or {}).get("features") or ())
