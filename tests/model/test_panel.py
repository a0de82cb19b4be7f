"""Panels of many series: loading long format, per-series splits and scaling, windows that never
cross two series, per-series metrics equal to the single-series code's, and one-line errors."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from tunecast.model.data import DataError, DataSpec, load, min_length, split_sizes
from tunecast.model.evaluate import evaluate, predictions_frame, scored, val_baselines
from tunecast.model.metrics import all_metrics
from tunecast.model.panel import Panel, PanelSpec, as_panel_spec, load_panel, panel_from_frame
from tunecast.model.panel_metrics import panel_metrics, panel_val_baselines
from tunecast.model.panel_windows import panel_windows
from tunecast.model.training import TrainConfig, fit
from tunecast.model.windows import split_windows
from tunecast.search.config import SearchConfig, build_config
from tunecast.search.plan import make_plan

LENGTHS = {"A": 120, "B": 80, "C": 200}
STARTS = {"A": "2020-01-01", "B": "2020-02-15", "C": "2019-06-01"}
SCALES = {"A": (0.0, 1.0), "B": (1000.0, 100.0), "C": (-5.0, 0.01)}  # level, amplitude
SPLIT = {"val_fraction": 0.15, "test_fraction": 0.2}


def _series(sid: str) -> pd.DataFrame:
    n = LENGTHS[sid]
    level, amplitude = SCALES[sid]
    rng = np.random.default_rng(ord(sid))
    t = np.arange(n)
    y = level + amplitude * (np.sin(2 * np.pi * t / 7) + 0.3 * rng.standard_normal(n))
    temp = 20 + 5 * np.cos(t / 9) + ord(sid)
    ds = pd.date_range(STARTS[sid], periods=n, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"unique_id": sid, "ds": ds, "y": y, "temp": temp})


@pytest.fixture
def panel_csv(tmp_path):
    """Three series of different lengths, starts and scales, rows shuffled, in one long CSV."""
    frame = pd.concat([_series(s) for s in LENGTHS]).sample(frac=1.0, random_state=0)
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    return path


def _alone(tmp_path, sid: str, features=(), season=7):
    """Series ``sid`` written to its own CSV and loaded by the single-series loader."""
    path = tmp_path / f"{sid}.csv"
    _series(sid).drop(columns="unique_id").to_csv(path, index=False)
    return load(DataSpec(str(path), target="y", time_column="ds", features=features,
                         season_length=season, **SPLIT))


def _panel(path, **options) -> Panel:
    return load_panel(PanelSpec(source=str(path), **{"season_length": 7, **SPLIT, **options}))


def test_nixtla_columns_load_without_options(panel_csv):
    panel = load_panel(PanelSpec(source=str(panel_csv)))
    assert list(panel.ids) == ["A", "B", "C"] and panel.columns == ("y",)
    assert list(panel.lengths) == [120, 80, 200] and list(panel.offsets) == [0, 120, 200]
    for s, sid in enumerate(panel.ids):  # shuffled rows come back in time order, per series
        alone = panel.series(s)
        np.testing.assert_allclose(alone.values[:, 0], _series(sid)["y"], rtol=1e-6)
        assert alone.time is not None and alone.time[0] == STARTS[sid]
    assert panel.summary()["n_series"] == 3 and panel.summary()["n_points"] == 400


def test_each_series_splits_and_scales_as_it_would_alone(panel_csv, tmp_path):
    panel = _panel(panel_csv, features=("temp",))
    scaled = panel.scaled()
    for s, sid in enumerate(panel.ids):
        alone = _alone(tmp_path, sid, features=("temp",))
        sizes = (panel.n_train[s], panel.n_val[s], panel.n_test[s])
        assert sizes == split_sizes(LENGTHS[sid], **SPLIT) == (alone.n_train, alone.n_val, alone.n_test)
        np.testing.assert_array_equal(panel.mean[s], alone.mean)  # its own training statistics
        np.testing.assert_array_equal(panel.std[s], alone.std)
        o = panel.offsets[s]
        np.testing.assert_array_equal(scaled[o : o + LENGTHS[sid]], alone.scaled())
        y = np.array([[0.5, -1.0]])
        np.testing.assert_array_equal(panel.unscale_target(s, y), alone.unscale_target(y))
    assert len({float(panel.std[s, 0]) for s in range(3)}) == 3  # the scales really differ


@pytest.mark.parametrize(("window", "horizon"), [(9, 1), (5, 3)])
def test_windows_match_each_series_alone_and_never_cross(panel_csv, tmp_path, window, horizon):
    panel = _panel(panel_csv, features=("temp",))
    windows = panel_windows(panel, window, horizon)
    for name, split in windows.items():
        series = split.series_of()
        starts = split.starts().numpy()
        ends = split.target_positions()[:, -1]  # last target of every window
        owner = np.searchsorted(panel.offsets, ends, side="right") - 1
        np.testing.assert_array_equal(series, owner)  # first input and last target: one series
        assert (starts >= panel.offsets[series]).all()
        for s, sid in enumerate(panel.ids):
            alone = _alone(tmp_path, sid, features=("temp",))
            single = split_windows(alone, window, horizon)[name]
            mine = np.flatnonzero(series == s)
            o = panel.offsets[s]
            local = split.target_positions()[mine] - o
            np.testing.assert_array_equal(local, single.target_positions())  # split_windows' rules
            idx = torch.from_numpy(mine)
            torch.testing.assert_close(split.x(idx), single.x())
            torch.testing.assert_close(split.y(idx), single.y())
            n_train, n_pre = panel.n_train[s], panel.n_train[s] + panel.n_val[s]
            bounds = {"train": (0, n_train), "val": (n_train, n_pre), "test": (n_pre, LENGTHS[sid])}[name]
            assert bounds[0] <= local.min() and local.max() < bounds[1]  # no target leaves its split
    x = windows["train"].x(torch.tensor([3]))[0]  # (T, F): a straight slice of the scaled array
    start = int(windows["train"].starts(torch.tensor([3]))[0])
    np.testing.assert_array_equal(x.numpy(), panel.scaled()[start : start + window])


def test_thinned_windows_keep_series_boundaries(panel_csv):
    val = panel_windows(_panel(panel_csv), 9, 1)["val"]
    thin = val.thinned(10)
    assert len(thin) <= 10 and set(thin.series_of()) == {0, 1, 2}
    assert thin.x().shape == (len(thin), 9, 1) and thin.y().shape == (len(thin), 1)


def test_per_series_metrics_equal_the_single_series_code(panel_csv, tmp_path):
    panel = _panel(panel_csv)
    test = panel_windows(panel, 9, 3)["test"]
    positions = test.target_positions()
    rng = np.random.default_rng(1)
    truth = panel.values[:, 0].astype(np.float64)[positions]
    y_pred = truth + rng.normal(0, 1, truth.shape) * panel.std[test.series_of(), :1]  # (K, H)
    result = panel_metrics(panel, positions, y_pred)
    series = test.series_of()
    for s, sid in enumerate(panel.ids):
        rows = series == s
        alone = scored(_alone(tmp_path, sid), positions[rows] - panel.offsets[s], y_pred[rows],
                        np.zeros((rows.sum(), 0), np.float32))
        for name, expected in alone.metrics.items():
            assert result.per_series[sid][name] == pytest.approx(expected, rel=1e-12)
    mase = {name: [result.per_series[sid][name]["mase"] for sid in panel.ids] for name in alone.metrics}
    aggregate = result.aggregate
    assert aggregate["model"]["mase"] == pytest.approx(np.mean(mase["model"]))
    ratio = np.mean(np.array(mase["model"]) / np.array(mase["seasonal_naive"]))
    assert aggregate["model"]["mase_ratio"] == pytest.approx(ratio)
    assert aggregate["seasonal_naive"]["mase_ratio"] == pytest.approx(1.0)
    assert len(result.frame()) == 9
    assert result.per_series["B"]["model"] == all_metrics(
        truth[series == 1].ravel(), y_pred[series == 1].ravel(),
        panel.series(1).values[: panel.n_train[1] + panel.n_val[1], 0].astype(np.float64), 7)


@pytest.mark.parametrize("horizon", [1, 3])
def test_one_global_model_forecasts_each_series_as_it_would_alone(panel_csv, horizon):
    """fit and evaluate on a panel: each series' test forecasts and metrics are what the
    single-series evaluate gives for the same network on that series alone (its own scaling),
    and predictions.csv's rows per series carry them."""
    panel = _panel(panel_csv, features=("temp",))
    config = TrainConfig(hidden_size=8, window=9, horizon=horizon, max_epochs=1, min_batches_per_epoch=2,
                         batch_size=16)
    result = fit(config, panel)
    train = panel_windows(panel, 9, horizon)["train"]  # one epoch: every series' training windows once
    assert result.windows_seen == len(train) and set(train.series_of()) == {0, 1, 2}
    evaluation = evaluate(result.model, panel, config)
    assert evaluation.per_series is not None
    assert evaluation.metrics == evaluation.per_series.summary()
    assert set(evaluation.metrics["model"]) == {"mase", "mase_ratio", "smape"}
    series = np.searchsorted(panel.offsets, evaluation.positions[:, 0], side="right") - 1
    frame = predictions_frame(panel, evaluation)
    assert len(frame) == panel.n_points and list(frame.columns[:2]) == ["unique_id", "index"]
    for s, sid in enumerate(panel.ids):
        alone = evaluate(result.model, panel.series(s), config)
        np.testing.assert_allclose(evaluation.y_pred[series == s], alone.y_pred, rtol=1e-5)
        for name, expected in alone.metrics.items():
            for metric, value in expected.items():
                assert evaluation.per_series.per_series[sid][name][metric] == pytest.approx(value, rel=1e-5)
        rows = frame[frame["unique_id"] == sid].reset_index(drop=True)
        single = predictions_frame(panel.series(s), alone)
        np.testing.assert_allclose(rows["y_pred"], single["y_pred"], rtol=1e-5)
        assert rows["split"].tolist() == single["split"].tolist()
        assert rows["block"].tolist() == single["block"].tolist()
    wide = evaluation.per_series.wide()
    assert list(wide["unique_id"]) == ["A", "B", "C"]
    assert wide["n_test_points"].sum() == evaluation.positions.size


@pytest.mark.parametrize("season", [7, 60])
def test_val_baselines_pool_the_series_without_crossing_them(panel_csv, tmp_path, season):
    """As each series alone would score, pooled over every validation block; with m = 60 the
    season of B's first blocks reaches before B starts: those are skipped, never read from A."""
    panel = _panel(panel_csv, season_length=season)
    pooled = panel_val_baselines(panel, 2, 10**6)
    singles = [_alone(tmp_path, sid, season=season) for sid in panel.ids]
    firsts = [split_windows(alone, 1, 2)["val"].starts().numpy() + 1 for alone in singles]
    weights = {"naive": [len(f) for f in firsts], "seasonal_naive": [(f >= season).sum() for f in firsts]}
    assert (weights["seasonal_naive"] != weights["naive"]) == (season == 60)
    for name, counts in weights.items():
        alone = [val_baselines(single, 2, 10**6)[name] for single in singles]
        assert pooled[name] == pytest.approx(np.average(alone, weights=counts), rel=1e-9)


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_thousand_by_thousand_panel_windows_are_views():
    n_series, n = 1000, 1000
    t = np.tile(np.arange(n), n_series)
    ids = np.repeat(np.array([f"s{i:04d}" for i in range(n_series)], dtype=object), n)
    y = np.sin(t / 5.0) * np.repeat(np.arange(1, n_series + 1), n) + 0.01 * (t % 13)
    panel = panel_from_frame(pd.DataFrame({"unique_id": ids, "ds": t, "y": y}), PanelSpec())
    series = torch.from_numpy(panel.scaled())
    before = _rss()
    windows = panel_windows(panel, 48, 1, series)
    grown = _rss() - before
    total = sum(len(w) for w in windows.values())
    assert sum(w.positions.nbytes for w in windows.values()) == 8 * total  # one int64 per window
    assert total < panel.n_points and grown < 40 * 2**20, f"windowing added {grown / 2**20:.1f} MB"
    # materialised, the windows would take total * 48 * 4 bytes (~180 MB)
    assert windows["train"]._inputs.untyped_storage().data_ptr() == series.untyped_storage().data_ptr()
    batch = torch.randint(0, len(windows["train"]), (256,))
    assert windows["train"].x(batch).shape == (256, 48, 1)
    assert windows["train"].y(batch).shape == (256, 1)
    # what Ray's object store gets: a few buffers, no Python object per row
    assert panel.time is not None
    buffers = panel.values.nbytes + panel.scaled().nbytes + panel.time.nbytes
    assert len(pickle.dumps(panel, protocol=5)) < buffers + 2**20


# ---- bad input: one line naming the problem and the fix --------------------------------------


def _refused(frame: pd.DataFrame, *needles: str, **options) -> str:
    with pytest.raises(DataError) as info:
        panel_from_frame(frame, PanelSpec(**SPLIT, **options), name="p.csv")
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def _three() -> pd.DataFrame:
    return pd.concat([_series(s) for s in LENGTHS], ignore_index=True)


def test_missing_id_column_lists_the_columns():
    _refused(_three().rename(columns={"unique_id": "store"}),
             "id column 'unique_id' not found", "store, ds, y, temp", "--id-column")
    with pytest.raises(DataError, match="a panel needs a data file: pass --data"):
        load_panel(PanelSpec())


def test_id_column_option_reads_another_name(tmp_path):
    path = tmp_path / "p.parquet"
    _three().rename(columns={"unique_id": "store", "ds": "day", "y": "sales"}).to_parquet(path)
    options = {"source": str(path), "id_column": "store", "time_column": "day", "target": "sales"}
    panel = load_panel(PanelSpec.from_dict({**options, **SPLIT, "min_length": "10"}))
    assert list(panel.ids) == ["A", "B", "C"] and panel.target == "sales"


def test_wide_format_is_refused_with_the_melt():
    wide = pd.DataFrame({"ds": range(50), "store_1": np.arange(50.0), "store_2": np.arange(50.0)})
    _refused(wide, "wide format", "store_1, store_2",
             "df.melt(id_vars=['ds'], var_name='unique_id', value_name='y')")
    dated = wide.drop(columns="ds").assign(date=pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d"))
    _refused(dated, "wide format", "df.melt(id_vars=['date'], ")


def test_duplicate_id_time_rows():
    frame = _three()
    frame = pd.concat([frame, frame.iloc[[130]]], ignore_index=True)
    _refused(frame, "1 duplicate (id, time) row", "series 'B'", "2020-02-25", "aggregate or remove")


def test_non_numeric_target_in_one_series():
    frame = _three()
    frame["y"] = frame["y"].astype(object)
    frame.loc[150, "y"] = "n/a?"
    _refused(frame, "column 'y' is non-numeric in 1 series", "series 'B'", "row 150", "'n/a?'")


def test_series_too_short_names_it_and_the_minimum():
    frame = _three()
    short = frame[(frame.unique_id != "B") | (frame.index < 122)]  # B keeps 2 points
    need = min_length(1, 1, **SPLIT)
    assert need > 2
    _refused(short, "series 'B' has 2 points", f"at least {need} points", f"--min-length {need}",
             "drop the 1 series")


def test_min_length_drops_short_series_with_a_count():
    frame = _three()
    panel = panel_from_frame(frame, PanelSpec(min_length=100, **SPLIT))
    assert list(panel.ids) == ["A", "C"] and panel.dropped == ("B",)
    assert panel.summary()["n_dropped"] == 1 and panel.n_points == 320
    _refused(frame, "all 3 series", "fewer than --min-length 500", "longest has 200", min_length=500)


def test_sizes_give_every_series_the_same_last_points():
    panel = panel_from_frame(_three(), PanelSpec(val_size=10, test_size=24))  # 120, 80, 200 points
    assert list(panel.n_test) == [24] * 3 and list(panel.n_val) == [10] * 3
    assert list(panel.n_train + panel.n_val + panel.n_test) == list(panel.lengths)  # no overlap, no gap
    for s, sid in enumerate(panel.ids):  # the test part is the series' last 24 points
        last = _series(sid)["y"].to_numpy()[-24:]
        np.testing.assert_allclose(panel.series(s).values[-24:, 0], last, rtol=1e-6)
    windows = panel_windows(panel, 8, 1)
    assert (len(windows["val"]), len(windows["test"])) == (3 * 10, 3 * 24)


def test_series_too_short_for_the_sizes_is_named_or_dropped():
    frame = _three()
    short = frame[(frame.unique_id != "B") | (frame.index < 150)]  # B keeps 30 points
    sizes = {"val_size": 10, "test_size": 24}
    with pytest.raises(DataError, match=r"series 'B' has 30 points, too short for the splits \(val 10 "
                       r"points, test 24 points\): each series needs at least 36 points; .*--min-length 36 "
                       r"to drop the 1 "):
        panel_from_frame(short, PanelSpec(**sizes))
    panel = panel_from_frame(short, PanelSpec(min_length=36, **sizes))
    assert panel.dropped == ("B",) and "dropped 1 series shorter than --min-length 36" in panel.describe()


def test_sizes_survive_the_saved_config(tmp_path):
    """tunecast.json's config read back (``--resume``) plans the same per-series sizes."""
    path = tmp_path / "p.csv"
    _three().to_csv(path, index=False)
    data = {"source": str(path), "val_size": "10", "test_size": 24}
    config = build_config({"data": data}, {}, {"storage": str(tmp_path / "runs")})
    saved = SearchConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    plan = make_plan(saved)
    assert plan.config.data == as_panel_spec(config.data) and isinstance(plan.data, Panel)
    assert list(plan.data.n_test) == [24] * 3 and list(plan.data.n_val) == [10] * 3


def test_window_too_long_for_a_series(panel_csv):
    panel = _panel(panel_csv)
    need = min_length(60, 1, **SPLIT)
    with pytest.raises(DataError, match=f"series 'B' has 80 points.*at least {need} points.*--min-length"):
        panel_windows(panel, 60, 1)


def test_missing_values_stay_within_their_series():
    frame = _three()
    frame.loc[[119, 121], "y"] = np.nan  # A's last point and B's second
    _refused(frame, "2 missing or infinite value(s) in 2 series", "series 'A', row 119", "--missing")
    filled = panel_from_frame(frame, PanelSpec(missing="interpolate", **SPLIT))
    a, b = _series("A")["y"].to_numpy(), _series("B")["y"].to_numpy()
    assert filled.values[119, 0] == pytest.approx(a[118], rel=1e-6)  # not pulled toward B's level
    assert filled.values[121, 0] == pytest.approx((b[0] + b[2]) / 2, rel=1e-5)
    assert panel_from_frame(frame, PanelSpec(missing="drop", **SPLIT)).n_points == 398


def test_flat_series_is_refused():
    frame = _three()
    frame.loc[frame.unique_id == "C", "y"] = 4.0
    _refused(frame, "series 'C'", "never changes before its test part", "remove that series")
