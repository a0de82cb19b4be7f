"""The Python API (``tunecast.TuneCast``) and the one namespace, as a user meets them: installed,
imported from a folder outside the repository, on real searches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunecast import TuneCast, load_dataset
from tunecast.search.cli_search import search_options

SMALL = {"smoke_test": True, "quiet": True, "no_report": True, "origins": 0, "no_combine": True}


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_name_lives_under_tunecast(tmp_path):
    """Outside the checkout the card's folders are not importable by their own names, and
    ``import tunecast`` imports neither torch, Ray nor pandas."""
    for name in ("model", "search", "reports", "expdir"):
        assert python(f"import {name}", tmp_path).returncode != 0, name
    done = python("import sys, tunecast; print(sorted({'torch', 'ray', 'pandas'} & set(sys.modules)))",
                  tmp_path)
    assert done.stdout.strip() == "[]", done.stderr
    done = subprocess.run([sys.executable, "-m", "tunecast", "search", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--trials" in done.stdout


def test_keywords_are_the_search_options_and_bad_ones_are_refused_before_ray(tmp_path):
    names = {"trials", "horizon", "season_length", "gpus_per_trial", "address", "storage"}
    assert names <= set(search_options())
    with pytest.raises(TypeError, match="did you mean 'trials'"):
        TuneCast(trails=3)
    with pytest.raises(TypeError, match=r"fit\(df\)"):
        TuneCast(data="airline")
    with pytest.raises(ValueError, match="gpus-per-trial"):
        TuneCast(gpus_per_trial=0.3)
    with pytest.raises(TypeError, match="DataFrame"):
        TuneCast(trials=1).fit("airline.csv")
    with pytest.raises(ValueError, match="not fitted"):
        TuneCast().predict(3)
    # bad data is one ValueError before Ray starts, and nothing is written
    code = ("import sys, pandas as pd; from tunecast import TuneCast\n"
            "frame = pd.DataFrame({'ds': [1, 2, 3], 'y': [1.0, float('nan'), 2]})\n"
            "try:\n    TuneCast(storage='runs').fit(frame)\n"
            "except ValueError as e:\n    print('refused:', e)\n"
            "print('ray started:', 'ray' in sys.modules and sys.modules['ray'].is_initialized())")
    done = python(code, tmp_path)
    assert "refused: column 'y'" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ray started: False"), done.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


def test_fit_predict_load_report_on_one_series(tmp_path):
    """The README's quick start, small: a search on a frame, a forecast with intervals in
    Nixtla's columns, the same forecaster back from its folder, the report."""
    df = load_dataset("airline")
    tc = TuneCast(horizon=3, season_length=12, storage=str(tmp_path), name="air", **SMALL).fit(df)
    assert tc.path == tmp_path / "air" and (tc.path / "data.parquet").is_file()
    forecast = tc.predict(h=6, level=[80, 95])
    assert list(forecast.columns) == ["unique_id", "ds", "TuneCast", "TuneCast-lo-80", "TuneCast-hi-80",
                                      "TuneCast-lo-95", "TuneCast-hi-95"]
    assert len(forecast) == 6 and (forecast["unique_id"] == "airline").all()
    assert pd.Timestamp(forecast["ds"].iloc[0]) == pd.Timestamp("1961-01-01")
    assert (forecast["TuneCast-lo-95"] <= forecast["TuneCast-lo-80"]).all()
    assert (forecast["TuneCast-lo-80"] <= forecast["TuneCast"]).all()
    again = TuneCast.load(tc.path).predict(h=6, level=[80, 95])
    pd.testing.assert_frame_equal(forecast, again)
    report = tc.report(tmp_path / "r.html")
    assert report.stat().st_size > 10_000 and "<html" in report.read_text()[:200].lower()


def test_cross_validation_never_lets_a_model_see_its_window(tmp_path):
    """Two series (a panel), two windows: one search on the data before the first cutoff, both
    windows forecast from the history before each; every row's target is the truth after its
    cutoff."""
    t = np.arange(160)
    df = pd.concat([pd.DataFrame({"unique_id": uid, "ds": t, "y": 10 + np.sin(t / 3) * k})
                    for uid, k in (("a", 1.0), ("b", 2.0))], ignore_index=True)
    tc = TuneCast(horizon=4, storage=str(tmp_path), name="cv", **SMALL)
    out = tc.cross_validation(df, h=4, n_windows=2, step_size=4)
    assert list(out.columns[:5]) == ["unique_id", "ds", "cutoff", "y", "TuneCast"]
    assert len(out) == 2 * 2 * 4 and len(tc.cv_paths) == 1
    assert (out["ds"] > out["cutoff"]).all()
    assert sorted(out.groupby("unique_id")["cutoff"].unique().iloc[0]) == [151, 155]
    truth = df.set_index(["unique_id", "ds"])["y"]
    assert np.allclose(out["y"], truth.loc[list(zip(out["unique_id"], out["ds"], strict=True))].to_numpy())
    searched = pd.read_parquet(tc.cv_paths[0] / "data.parquet")
    assert searched["ds"].max() == 151  # the search saw nothing after the first cutoff


def test_cross_validation_with_refit_searches_again_at_every_cutoff(tmp_path):
    """``refit=True``: one search per window, each on the history before its own cutoff."""
    df = pd.DataFrame({"ds": np.arange(150), "y": 10 + np.sin(np.arange(150) / 4)})
    tc = TuneCast(horizon=3, storage=str(tmp_path), name="refit", **SMALL)
    out = tc.cross_validation(df, h=3, n_windows=2, step_size=5, refit=True)
    assert "unique_id" not in out.columns  # the frame named no series
    assert list(out["cutoff"]) == [141] * 3 + [146] * 3 and list(out["ds"]) == [142, 143, 144, 147, 148, 149]
    assert [pd.read_parquet(p / "data.parquet")["ds"].max() for p in tc.cv_paths] == [141, 146]
