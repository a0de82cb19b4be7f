"""Loading, validation, splitting and windowing: one test per bad-input case."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from tunecast.model.data import DataError, DataSpec, check_window, load, min_length, split_sizes
from tunecast.model.datasets import BUILTINS
from tunecast.model.windows import split_windows
from tunecast.search.cli import main


@pytest.mark.parametrize(
    ("name", "length", "target"),
    [
        ("sine", 1000, "value"),
        ("airline", 144, "passengers"),
        ("sunspots", 309, "sunactivity"),
        ("co2", 526, "co2"),
    ],
)
def test_builtins_load(name, length, target):
    data = load(DataSpec(name))
    assert data.n_points == length
    assert data.target == target
    assert data.n_train + data.n_val + data.n_test == length
    assert np.isfinite(data.values).all()
    assert data.time is not None and len(data.time) == length


def test_builtins_have_sources_noted():
    sources = (BUILTINS["sine"].path.parent / "SOURCES.md").read_text()
    for name in BUILTINS:
        assert f"{name}.csv" in sources


def test_sine_is_the_article_series():
    data = load(DataSpec("sine"))
    np.testing.assert_allclose(data.values[:, 0], np.sin(np.linspace(0, 50, 1000)), atol=1e-6)


def test_chronological_split_and_train_only_scaling(tmp_path):
    n = 100
    values = np.concatenate([np.arange(70.0), 1000 + np.arange(30.0)])  # val/test far away
    path = tmp_path / "s.csv"
    pd.DataFrame({"y": values}).to_csv(path, index=False)
    data = load(DataSpec(str(path), val_fraction=0.1, test_fraction=0.2))
    assert (data.n_train, data.n_val, data.n_test) == (70, 10, 20)
    assert data.mean[0] == pytest.approx(np.mean(values[:70]))
    assert data.std[0] == pytest.approx(np.std(values[:70]), rel=1e-6)
    scaled = data.scaled()
    assert abs(scaled[:70, 0].mean()) < 1e-5
    assert split_sizes(n, 0.1, 0.2) == (70, 10, 20)


def test_multivariate_features_and_time_column(tmp_path):
    path = tmp_path / "m.csv"
    t = pd.date_range("2020-01-01", periods=60, freq="D")
    pd.DataFrame(
        {"day": t.astype(str), "load": np.sin(np.arange(60)), "temp": np.arange(60.0), "unused": 1}
    ).to_csv(path, index=False)
    data = load(DataSpec(str(path), target="load", time_column="day", features=("temp",)))
    assert data.columns == ("load", "temp")
    assert data.input_size == 2
    assert data.time[0] == "2020-01-01"


def test_parquet_source(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"y": np.sin(np.arange(80.0))}).to_parquet(path)
    assert load(DataSpec(str(path))).n_points == 80


def test_windows_align_inputs_and_targets():
    data = load(DataSpec("sine"))
    w = split_windows(data, window=5, horizon=3)
    series = torch.from_numpy(data.scaled())
    train, val, test = w["train"], w["val"], w["test"]
    x, y = train.x(torch.tensor([0, 7])), train.y(torch.tensor([0, 7]))
    assert x.shape == (2, 5, 1) and y.shape == (2, 3)
    torch.testing.assert_close(x[1, :, 0], series[7:12, 0])
    torch.testing.assert_close(y[1], series[12:15, 0])
    # targets of every split stay inside it; inputs may reach back
    assert train.target_positions().max() < data.n_train
    assert val.target_positions().min() >= data.n_train
    assert val.target_positions().max() < data.n_train + data.n_val
    test_pos = test.target_positions()
    assert test_pos.min() >= data.n_train + data.n_val and test_pos.max() == data.n_points - 1
    assert len(test) == data.n_test // 3  # non-overlapping blocks
    assert np.all(np.diff(test_pos[:, 0]) == 3)
    one_step = split_windows(data, window=5, horizon=1)["test"]
    assert len(one_step) == data.n_test  # rolling one-step: every test point


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_windows_of_ten_million_points_are_views():
    n = 10_000_000
    series = torch.from_numpy(np.sin(np.arange(n, dtype=np.float32))[:, None].copy())
    from tunecast.model.data import Dataset

    data = Dataset(
        "big",
        series.numpy(),
        ("y",),
        None,
        1,
        int(n * 0.65),
        int(n * 0.15),
        int(n * 0.2),
        np.zeros(1, np.float32),
        np.ones(1, np.float32),
    )
    before = _rss()
    windows = split_windows(data, window=512, horizon=1, series=series)
    after = _rss()
    assert (after - before) < 5 * 2**20, f"windowing added {(after - before) / 2**20:.1f} MB"
    assert windows["train"]._inputs.untyped_storage().data_ptr() == series.untyped_storage().data_ptr()
    batch = windows["train"].x(torch.arange(256))
    assert batch.shape == (256, 512, 1)


# ---- bad input: one clear message each, exit code 2 from the CLI, nothing written ----------


def _csv(tmp_path, name="d.csv", **columns):
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def _train(capsys, *args):
    code = main(["train", "--set", "max_epochs=1", "--set", "window=4", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def _assert_user_error(capsys, args, *needles):
    code, err = _train(capsys, *args)
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_missing_file(capsys, tmp_path):
    _assert_user_error(capsys, ["--data", str(tmp_path / "nope.csv")], "no such file", "airline")


def test_unknown_builtin(capsys):
    _assert_user_error(capsys, ["--data", "airplanes"], "unknown data source 'airplanes'", "sunspots")


def test_unreadable_file(capsys, tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not parquet")
    _assert_user_error(capsys, ["--data", str(path)], "cannot read", "as Parquet")


def test_binary_csv(capsys, tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(bytes(range(256)) * 8)
    _assert_user_error(capsys, ["--data", str(path)], "cannot read", "as CSV")


def test_directory_as_source(capsys, tmp_path):
    _assert_user_error(capsys, ["--data", str(tmp_path)], "is a directory")


def test_missing_target_names_columns(capsys, tmp_path):
    path = _csv(tmp_path, a=np.arange(50.0), b=np.arange(50.0))
    _assert_user_error(capsys, ["--data", path, "--target", "sales"], "'sales' not found", "a, b")


def test_ambiguous_target(capsys, tmp_path):
    path = _csv(tmp_path, a=np.arange(50.0), b=np.arange(50.0))
    _assert_user_error(capsys, ["--data", path], "--target", "columns: a, b")


def test_missing_feature(capsys, tmp_path):
    path = _csv(tmp_path, y=np.arange(50.0))
    _assert_user_error(capsys, ["--data", path, "--features", "temp"], "'temp' not found", "y")


def test_missing_time_column(capsys, tmp_path):
    path = _csv(tmp_path, y=np.arange(50.0))
    _assert_user_error(capsys, ["--data", path, "--time-column", "ts"], "'ts' not found")


def test_non_numeric_values(capsys, tmp_path):
    values = [str(v) for v in range(50)]
    values[7] = "n/a?"
    path = _csv(tmp_path, y=values)
    _assert_user_error(capsys, ["--data", path], "non-numeric", "row 7", "n/a?")


def test_nan_and_inf_values(capsys, tmp_path):
    values = np.sin(np.arange(60.0))
    values[[5, 9]] = np.nan
    values[20] = np.inf
    path = _csv(tmp_path, y=values)
    _assert_user_error(
        capsys, ["--data", path], "3 missing or infinite", "rows 5, 9, 20", "--missing interpolate"
    )


def test_nan_interpolate_and_drop(tmp_path):
    values = np.sin(np.arange(60.0))
    values[[5, 9]] = np.nan
    path = _csv(tmp_path, y=values)
    interpolated = load(DataSpec(path, missing="interpolate"))
    assert interpolated.n_points == 60 and np.isfinite(interpolated.values).all()
    assert interpolated.values[5, 0] == pytest.approx((values[4] + values[6]) / 2, rel=1e-5)
    assert load(DataSpec(path, missing="drop")).n_points == 58


def test_duplicate_timestamps(capsys, tmp_path):
    days = [f"2020-01-{d:02d}" for d in range(1, 31)] * 2
    path = _csv(tmp_path, day=days, y=np.arange(60.0))
    _assert_user_error(capsys, ["--data", path, "--time-column", "day"], "duplicate", "2020-01-01")


def _panel(tmp_path, name="p.csv", ids=("A", "B", "C"), n=40, by_time=False, **names):
    """Three series in long format (Nixtla's unique_id/ds/y unless ``names`` renames them), one
    after the other or, ``by_time``, interleaved date by date as many exports sort them."""
    days = pd.date_range("2020-01-01", periods=n).strftime("%Y-%m-%d")
    ids_, ds = (np.tile(ids, n), np.repeat(days, 3)) if by_time else (np.repeat(ids, n), np.tile(days, 3))
    frame = pd.DataFrame({"unique_id": ids_, "ds": ds, "y": np.sin(np.arange(3 * n) / 3)})
    frame = frame.rename(columns=names)
    frame.to_csv(tmp_path / name, index=False)
    return frame, str(tmp_path / name)


def test_long_format_panel_read_as_one_series_is_refused_with_the_line_that_keeps_one(tmp_path):
    frame, path = _panel(tmp_path)
    with pytest.raises(DataError) as caught:  # the single-series loader; the CLI reads it as a panel
        load(DataSpec(path))
    err = str(caught.value)
    assert "'p.csv' looks like a long-format panel (3 series in column 'unique_id')" in err
    assert "pass --id-column unique_id to search all series with one model" in err
    expression = re.search(r"df\[df\[[^]]*\] == [^]]*\]", err)
    assert expression is not None and expression[0] == "df[df['unique_id'] == 'A']"
    one = tmp_path / "one.csv"
    eval(expression[0], {"df": frame}).to_csv(one, index=False)  # the fix, as printed
    assert load(DataSpec(str(one), time_column="ds")).n_points == 40


def test_panel_with_other_column_names_is_refused_before_its_duplicate_timestamps(capsys, tmp_path):
    _, path = _panel(tmp_path, ids=("north", "south", "east"), by_time=True,
                     unique_id="store", ds="date", y="sales")
    err = _assert_user_error(capsys, ["--data", path, "--time-column", "date"],
                             "(3 series in column 'store')", "pass --id-column store",
                             "df[df['store'] == 'north']")
    assert "duplicate" not in err


def test_text_columns_that_name_no_series_still_load(tmp_path):
    days = pd.date_range("2020-01-01", periods=60).strftime("%Y-%m-%d")
    holiday = np.where(np.arange(60) % 7 == 0, "sunday", "none")  # repeats, timestamps unique
    path = _csv(tmp_path, day=days, holiday=holiday, unique_id=[f"r{i}" for i in range(60)],
                y=np.sin(np.arange(60.0)))  # unique_id here is a row key, not a series id
    assert load(DataSpec(path, target="y", time_column="day")).n_points == 60
    # a timestamp split in two (date, hour) is not a panel: the duplicates are the error
    hours = _csv(tmp_path, date=np.repeat(days[:3], 24), hour=[f"{h:02d}:00" for h in range(24)] * 3,
                 y=np.sin(np.arange(72.0)))
    with pytest.raises(DataError, match="time column 'date' has 69 duplicate timestamp"):
        load(DataSpec(hours, time_column="date"))


def test_unsorted_timestamps(capsys, tmp_path):
    days = list(range(60))
    days[10], days[11] = days[11], days[10]
    path = _csv(tmp_path, t=days, y=np.arange(60.0))
    _assert_user_error(
        capsys,
        ["--data", path, "--time-column", "t"],
        "not sorted",
        "row 11",
        "sort the data by 't'",
    )


def test_bad_dates(capsys, tmp_path):
    days = [f"2020-01-{d:02d}" for d in range(1, 31)]
    days[3] = "someday"
    path = _csv(tmp_path, day=days, y=np.arange(30.0))
    _assert_user_error(capsys, ["--data", path, "--time-column", "day"], "not dates", "someday")


def test_series_too_short_names_minimum(capsys, tmp_path):
    path = _csv(tmp_path, y=np.sin(np.arange(12.0)))
    need = min_length(10, 1, 0.15, 0.2)
    assert need > 12
    _assert_user_error(capsys, ["--data", path, "--set", "window=10"], "too short", f"at least {need} points")


def test_check_window_minimum_is_exact():
    data = load(DataSpec("airline"))
    need = min_length(100, 12, 0.15, 0.2)
    assert need > data.n_points
    with pytest.raises(DataError, match=f"at least {need} points"):
        check_window(data, 100, 12)
    n_train, n_val, n_test = split_sizes(need, 0.15, 0.2)
    assert n_train == 100 + 12 and n_val >= 12 and n_test >= 12
    n_train, _, _ = split_sizes(need - 1, 0.15, 0.2)
    assert n_train < 112
    check_window(data, 24, 12)


def test_sizes_split_the_last_points_and_defaults_stay_fractions(tmp_path):
    assert (DataSpec().val_fraction, DataSpec().test_fraction, DataSpec().test_size) == (0.15, 0.2, None)
    data = load(DataSpec("airline", val_size=12, test_size=24))
    assert (data.n_train, data.n_val, data.n_test) == (108, 12, 24)
    mixed = load(DataSpec("airline", test_size=24))  # validation stays a fraction: round(0.15 * 144)
    assert (mixed.n_train, mixed.n_val, mixed.n_test) == (98, 22, 24)
    assert mixed.spec.to_dict()["test_fraction"] is None
    assert DataSpec.from_dict(mixed.spec.to_dict()) == mixed.spec  # as tunecast.json reads it back
    need = min_length(100, 12, None, None, 12, 24)
    assert need == 100 + 12 + 12 + 24 and data.spec.split(need) == (112, 12, 24)
    with pytest.raises(DataError, match=f"splits \\(val 12 points, test 24 points\\).*at least {need}"):
        check_window(data, 100, 12)
    with pytest.raises(DataError, match=r"test_size 6 is shorter than the horizon 12.*--test-size 12"):
        check_window(load(DataSpec("airline", test_size=6)), 24, 12)


def test_a_command_line_size_replaces_the_config_files_fraction_of_that_part():
    from tunecast.search.config import build_config

    config = build_config({"data": {"source": "airline", "test_fraction": 0.1, "val_size": 10}},
                          {"test_size": 24, "val_fraction": 0.1}, {})
    assert (config.data.test_size, config.data.test_fraction) == (24, None)
    assert (config.data.val_size, config.data.val_fraction) == (None, 0.1)


def test_train_tests_on_the_last_test_size_points(capsys):
    code = main(["train", "--data", "airline", "--val-size", "12", "--test-size", "24",
                 "--set", "max_epochs=1", "--set", "window=4"])
    out = capsys.readouterr().out
    assert code == 0 and "testing on 24 points" in out, out


def test_series_too_short_for_the_sizes_names_them(capsys, tmp_path):
    path = _csv(tmp_path, y=np.sin(np.arange(30.0)))
    _assert_user_error(capsys, ["--data", path, "--val-size", "10", "--test-size", "24"],
                       "30 points, too short for the splits (val 10 points, test 24 points)",
                       "at least 36 points")


def test_constant_series(capsys, tmp_path):
    path = _csv(tmp_path, y=np.full(60, 3.0))
    _assert_user_error(capsys, ["--data", path], "constant", "nothing to forecast")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--val-fraction", "0"], "val_fraction must lie in (0, 1)"),
        (["--test-fraction", "1.5"], "test_fraction must lie in (0, 1)"),
        (["--val-fraction", "0.5", "--test-fraction", "0.5"], "leaves no training data"),
    ],
)
def test_bad_fractions(capsys, args, needle):
    _assert_user_error(capsys, ["--data", "sine", *args], needle)


def test_unknown_training_option(capsys):
    code = main(["train", "--data", "sine", "--set", "hiddensize=3"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown training option(s) ['hiddensize']" in err and "hidden_size" in err


def test_cli_error_has_no_traceback_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunecast",
            "search",
            "--data",
            str(tmp_path / "missing.csv"),
            "--storage",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: unknown data source")
    assert not (tmp_path / "runs").exists()
