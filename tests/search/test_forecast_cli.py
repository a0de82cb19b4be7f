"""``tunecast forecast`` and the forecast a search ends with, run as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tables import choosing
from tunecast.expdir import contract as c

pytestmark = pytest.mark.slow
TUNECAST = str(Path(sys.executable).parent / "tunecast")


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """The CLI in a subprocess with a user's environment (no Ray variables set by the suite)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    return subprocess.Popen([TUNECAST, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def tunecast(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return finish(start(*args, cwd=cwd))


def test_the_search_ends_with_a_forecast_past_the_data(sine_search):
    exp = sine_search[1].path
    record = c.ForecastRecord.from_dict(json.loads((exp / "forecast/metrics.json").read_text()))
    frame = pd.read_csv(exp / "forecast/forecast.csv")
    assert not record.refit and record.n_points == 1000 and record.last_time == "999"
    assert record.horizon == len(frame) == 1  # sine: horizon 1 and no season
    assert list(frame.columns) == ["time", "forecast", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert frame["time"].tolist() == [1000]
    assert (frame["lo-95"] <= frame["lo-80"]).all() and (frame["hi-80"] <= frame["hi-95"]).all()
    assert set(record.coverage) == {"80", "95"} and record.calibration_origins > 100
    assert sine_search[1].forecast == record


def test_forecast_command_writes_csv_and_json(sine_search, tmp_path):
    exp = choosing(sine_search[1].path, tmp_path / "best", "best")
    done = tunecast("forecast", str(exp), "--horizon", "5", "--no-refit", "-o", "f.csv", "--json",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    frame = pd.read_csv(tmp_path / "f.csv")
    assert frame["time"].tolist() == [1000, 1001, 1002, 1003, 1004] == [r["time"] for r in out["forecast"]]
    np.testing.assert_allclose(frame["forecast"], [r["forecast"] for r in out["forecast"]])
    width80 = (frame["hi-80"] - frame["lo-80"]).to_numpy()
    assert np.all(np.diff(width80) >= -1e-9)  # intervals widen with the step
    assert (frame["lo-80"] <= frame["forecast"]).all() and (frame["forecast"] <= frame["hi-80"]).all()
    assert out["refit"] is False and out["horizon"] == 5
    # the first step forecast with the search's weights continues the sine
    t = 1000
    assert abs(frame["forecast"].iloc[0] - np.sin(50 * t / 999)) < 0.3


def test_by_default_the_forecast_is_the_searched_networks_own(sine_search, tmp_path):
    """Without --refit, the chosen networks forecast as the search trained them: the forecast is
    theirs, recomputed here from best/ (the choice forced to the best trial on a copy, since two
    short trials may lose to naive)."""
    from tunecast.model.forecast import Forecaster
    from tunecast.search.forecasting import load_data, read_experiment, search_forecaster

    exp = choosing(sine_search[1].path, tmp_path / "best", "best")
    done = tunecast("forecast", str(exp), "--horizon", "4", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    run_record, best, ensemble = read_experiment(exp)
    assert out["refit"] is False and out["trial_ids"] == [best.trial_id] and out["chosen"] == "best"
    searched, _ = search_forecaster(exp, "best", best, ensemble)
    values = load_data(run_record, None).values
    mean = Forecaster(searched.members).predict(values, 4).mean
    np.testing.assert_allclose([r["forecast"] for r in out["forecast"]], mean, rtol=1e-6)
    assert out["epochs"] == [searched.members[0].info.epoch] and out["seconds"] == 0


def test_the_combination_forecasts_the_networks_mean_with_autoets_and_autoarima(ensemble_search, tmp_path):
    """The combination's forecast past the data: the ensemble's networks as the search trained
    them, and AutoETS and AutoARIMA fitted here on the training part only, each a third; a saved
    forecaster folder fits the same models again when loaded; --refit fits them on every point."""
    from statsforecast.models import AutoARIMA, AutoETS

    from tunecast.model import forecast
    from tunecast.model.forecast import Forecaster
    from tunecast.search.forecasting import load_data, make_forecast, read_experiment, search_forecaster

    exp = choosing(ensemble_search[1].path, tmp_path / "combined", "combined")
    record = c.CombinedRecord.from_dict(json.loads((exp / c.COMBINED_DIR / c.METRICS_FILE).read_text()))
    done = tunecast("forecast", str(exp), "--horizon", "6", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    run_record, best, ensemble = read_experiment(exp)
    assert ensemble is not None and out["chosen"] == "combined" and out["refit"] is False
    assert out["trial_ids"] == [m.trial_id for m in ensemble.members] == list(record.networks)
    data = load_data(run_record, None)
    y = data.values[:, 0].astype(np.float64)
    assert record.fit_end == data.n_train and record.statistical == ("AutoETS", "AutoARIMA")
    networks, _ = search_forecaster(exp, "ensemble", best, ensemble)
    statistical = []
    for model in (AutoETS(season_length=1), AutoARIMA(season_length=1)):
        model.fit(y[: data.n_train])
        statistical.append(model.forward(y, h=6)["mean"])
    expected = (Forecaster(networks.members).predict(data.values, 6).mean + sum(statistical)) / 3
    np.testing.assert_allclose([r["forecast"] for r in out["forecast"]], expected, rtol=1e-6)
    forecaster, prediction, _, _ = make_forecast(exp, horizon=6)
    forecaster.save(tmp_path / "saved")
    loaded = forecast.load(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "forecaster.json").read_text())["statistical"] == {
        "models": ["AutoETS", "AutoARIMA"], "fit_end": data.n_train, "season_length": 1}
    np.testing.assert_allclose(loaded.predict(data.values, 6).mean, prediction.mean, rtol=1e-9)
    refitted, _, refit_record, _ = make_forecast(exp, horizon=6, refit_models=True)
    assert refit_record.refit and refitted.statistical.fit_end == data.n_points
    on_every_point = []
    for model in (AutoETS(season_length=1), AutoARIMA(season_length=1)):
        model.fit(y)
        on_every_point.append(model.predict(h=6)["mean"])
    np.testing.assert_allclose(refitted.statistical.paths(y, np.array([len(y)]), 6)[0],
                               np.mean(on_every_point, axis=0), rtol=1e-6)


def test_a_combination_whose_networks_are_not_the_searchs_is_refused(ensemble_search, tmp_path):
    """combined/ naming other networks than the ensemble the search kept (e.g. left over from an
    earlier run) is a corrupt experiment: one line, exit 2, nothing written."""
    exp = choosing(ensemble_search[1].path, tmp_path / "combined", "combined")
    file = exp / c.COMBINED_DIR / c.METRICS_FILE
    record = json.loads(file.read_text())
    file.write_text(json.dumps({**record, "networks": record["networks"][:1]}))
    done = tunecast("forecast", str(exp), "-o", "f.csv", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "is corrupt (combined/ names networks" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "f.csv").exists()


def test_the_refitted_forecast_is_reproducible(sine_search, tmp_path):
    exp = str(choosing(sine_search[1].path, tmp_path / "best", "best"))
    first = tunecast("forecast", exp, "--horizon", "3", "--refit", "--json", cwd=tmp_path)
    printed = tunecast("forecast", exp, "--horizon", "3", "--refit", "-o", "again.csv", cwd=tmp_path)
    assert first.returncode == 0 and printed.returncode == 0, (first.stderr, printed.stderr)
    again = pd.read_csv(tmp_path / "again.csv")
    forecast = json.loads(first.stdout)
    assert forecast["refit"] is True
    np.testing.assert_allclose(again["forecast"], [r["forecast"] for r in forecast["forecast"]], rtol=1e-12)
    assert "3-step forecast of value after 999" in printed.stdout and "coverage 80%" in printed.stdout
    assert "refitted on every point" in printed.stdout


def _bad(sine_experiment: Path, tmp: Path) -> list[tuple[str, list[str]]]:
    running = tmp / "running"
    shutil.copytree(sine_experiment, running)
    state = json.loads((running / c.RUN_FILE).read_text())
    (running / c.RUN_FILE).write_text(json.dumps({**state, "status": "running", "best_trial_id": None}))
    corrupt = tmp / "corrupt"
    shutil.copytree(sine_experiment, corrupt)
    (corrupt / "best/metrics.json").write_text("{\"trial_id\": \"x\"}")
    other = tmp / "other.csv"
    pd.DataFrame({"t": range(1010), "other": np.zeros(1010)}).to_csv(other, index=False)
    irregular = tmp / "irregular.csv"
    t = [*range(1000), 1003, 1010]
    values = [*np.sin(np.linspace(0, 50, 1000)).tolist(), 0.1, 0.2]
    pd.DataFrame({"t": t, "value": values}).to_csv(irregular, index=False)
    exp = str(sine_experiment)
    return [
        ("does not exist", [str(tmp / "nowhere")]),
        ("is running", [str(running)]),
        ("corrupt", [str(corrupt)]),
        ("columns", [exp, "--data", str(other)]),
        ("irregular", [exp, "--data", str(irregular)]),
        ("horizon must be >= 1", [exp, "--horizon", "0"]),
        ("level must lie in (0, 100)", [exp, "--level", "120"]),
        ("--future gives extra features", [exp, "--future", str(other)]),
    ]


def test_bad_input_is_one_line_exit_2_and_nothing_written(sine_experiment, tmp_path):
    cases = _bad(sine_experiment, tmp_path)
    runs = [start("forecast", *args, "-o", f"out{i}.csv", "--no-refit", cwd=tmp_path)
            for i, (_, args) in enumerate(cases)]
    for i, ((expected, _), process) in enumerate(zip(cases, runs, strict=True)):
        out = tmp_path / f"out{i}.csv"
        done = finish(process)
        assert done.returncode == 2, (expected, done.stdout, done.stderr)
        err = done.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err and expected in err, (expected, err)
        assert "Traceback" not in done.stderr and not out.exists()
