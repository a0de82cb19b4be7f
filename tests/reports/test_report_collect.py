"""collect(): experiment directory -> typed results, on directories the search's writers wrote
(``tests/reports/fixtures.py``)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tables import read_table
from tunecast.reports import Experiment, ReportError, collect, render_html


def test_collect_reads_every_file(exp_h1: Path) -> None:
    exp = collect(exp_h1)
    trials = read_table(exp_h1 / "trials.csv")

    assert isinstance(exp, Experiment)
    assert exp.run.name == "fixture-demo" and exp.run.status == "completed"
    assert exp.counts == {"completed": 5, "stopped": 2, "failed": 1, "running": 0, "pending": 0}
    assert list(exp.trials["trial_id"]) == list(trials["trial_id"])  # creation order kept
    assert exp.warnings == ()
    # The best trial is the finished trial with the lowest val_loss.
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    best_id = finished.loc[finished["best_val_loss"].idxmin(), "trial_id"]
    assert exp.run.best_trial_id == best_id and exp.best is not None
    assert exp.best.trial_id == best_id
    assert set(exp.finished["status"]) == {"completed", "stopped"}
    assert len(exp.finished) == 7
    # Tuned parameters only: fixed entries of the space (num_layers, horizon) are left out.
    assert exp.param_names == ["hidden_size", "window", "dropout", "lr", "scaler", "highway"]
    # trials.csv holds every trial's full TrainConfig, tuned or not.
    assert {"config/batch_size", "config/patience", "config/num_layers", "config/seed"} <= set(trials)
    # importance.json: the search's scores of the tuned parameters over the 7 finished trials.
    assert exp.importance is not None and exp.importance.n_trials == 7
    assert set(exp.importance.importances) == set(exp.param_names)
    # history.csv: as many epochs per trial as trials.csv says.
    epochs = exp.history.groupby("trial_id")["epoch"].count()
    for _, trial in exp.trials.iterrows():
        assert epochs.get(trial["trial_id"], 0) == trial["epochs_run"]
    assert exp.run.duration_s is not None and exp.run.duration_s > 0


def test_collect_best_trial_h1(exp_h1: Path) -> None:
    best = collect(exp_h1).best
    assert best is not None
    assert best.horizon == 1 and best.season_length == 12 and best.target == "passengers"
    assert set(best.test_metrics) == {"model", "naive", "seasonal_naive"}
    assert set(best.test_metrics["model"]) == {"mae", "rmse", "mase", "smape"}
    predictions = best.predictions
    assert list(predictions["split"].unique()) == ["train", "val", "test"]
    n_test = int((predictions["split"] == "test").sum())
    assert predictions["y_pred"].notna().sum() == n_test == best.n_test_points
    # One attention row per test forecast, one column per input step.
    assert best.attention.shape == (n_test, best.train_config["window"])
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, atol=1e-5)
    # val_loss and epoch of the best checkpoint: the trial's best epoch in trials.csv.
    trial = collect(exp_h1).trials.set_index("trial_id").loc[best.trial_id]
    assert best.val_loss == pytest.approx(trial["best_val_loss"])
    assert best.best_epoch == trial["best_epoch"]
    assert best.train_config["window"] == trial["config/window"]


def test_collect_best_trial_h3_blocks(exp_h3: Path) -> None:
    best = collect(exp_h3).best
    assert best is not None and best.horizon == 3
    n_test = int((best.predictions["split"] == "test").sum())
    assert best.attention.shape[0] == n_test // 3  # one forecast per block
    assert best.predictions["y_pred"].notna().sum() == (n_test // 3) * 3
    assert best.predictions["block"].dropna().value_counts().eq(3).all()


def test_collect_interrupted_search_without_best(exp_interrupted: Path) -> None:
    exp = collect(exp_interrupted)
    assert exp.run.status == "interrupted" and exp.run.ended_at is None
    assert exp.best is None and exp.run.best_trial_id is None
    assert exp.counts["running"] == 2 and exp.counts["pending"] == 1


def test_collect_interrupted_without_trials_csv(exp_interrupted: Path) -> None:
    (exp_interrupted / "trials.csv").unlink()
    (exp_interrupted / "history.csv").unlink()
    exp = collect(exp_interrupted)
    assert len(exp.trials) == 0 and len(exp.history) == 0
    assert any("trials.csv is missing" in w for w in exp.warnings)


def test_collect_completed_search_needs_trials_csv(exp_h1: Path) -> None:
    (exp_h1 / "trials.csv").unlink()
    with pytest.raises(ReportError, match=r"trials\.csv is missing"):
        collect(exp_h1)


def test_collect_interrupted_search_with_best_named_but_missing(exp_h1: Path) -> None:
    """A best trial named in tunecast.json whose best/ was never written (only its model folder
    was): a note, not an error."""
    run = (exp_h1 / "tunecast.json").read_text()
    (exp_h1 / "tunecast.json").write_text(run.replace('"completed"', '"interrupted"', 1))
    for name in ("metrics.json", "predictions.csv", "attention.npy"):
        (exp_h1 / "best" / name).unlink()
    exp = collect(exp_h1)
    assert exp.best is None
    assert any("best/metrics.json" in w for w in exp.warnings)


def test_collect_all_failed(exp_all_failed: Path) -> None:
    exp = collect(exp_all_failed)
    assert exp.counts["failed"] == 4 and len(exp.finished) == 0
    assert exp.best is None and not (exp_all_failed / "best").exists()
    assert set(exp.trials["error"]) == {"RuntimeError: loss diverged to nan at epoch 2"}


def test_collect_notes_missing_optional_columns(exp_h1: Path) -> None:
    trials = read_table(exp_h1 / "trials.csv")
    trials.drop(columns=["gpu_share", "device"]).to_csv(exp_h1 / "trials.csv", index=False)
    exp = collect(exp_h1)
    assert exp.trials["gpu_share"].isna().all()
    assert list(exp.trials["device"]) == [""] * len(exp.trials)
    assert any("gpu_share" in w and "device" in w for w in exp.warnings)


def test_collect_keeps_trial_ids_as_text(make_exp: Callable[..., Path]) -> None:
    path = make_exp(n_trials=3)
    for name in ("trials.csv", "history.csv"):
        file = path / name
        file.write_text(file.read_text().replace("t000", "000"))
    exp = collect(path)
    assert list(exp.trials["trial_id"]) == ["0000", "0001", "0002"]
    assert set(exp.history["trial_id"]) <= {"0000", "0001", "0002"}


def test_collect_reads_the_importances_the_search_computed(exp_h1: Path) -> None:
    raw = json.loads((exp_h1 / "importance.json").read_text())
    importance = collect(exp_h1).importance
    assert importance is not None and importance.note is None
    assert importance.importances == pytest.approx(raw["importances"])
    assert importance.evaluator == raw["evaluator"] == "PedAnovaImportanceEvaluator"
    assert sum(importance.importances.values()) == pytest.approx(1.0)


def test_collect_without_importances(exp_h1: Path) -> None:
    """No importance.json (a search stopped before its end): none, and no warning."""
    (exp_h1 / "importance.json").unlink()
    exp = collect(exp_h1)
    assert exp.importance is None and exp.warnings == ()


@pytest.mark.parametrize("text", ['{"importances": ', '{"importances": {"lr": "high"}}', "[]"],
                         ids=["truncated", "not-a-number", "not-an-object"])
def test_collect_notes_a_corrupt_importance_file(exp_h1: Path, text: str) -> None:
    """Importances are optional: a corrupt file is a note, not an error."""
    (exp_h1 / "importance.json").write_text(text)
    exp = collect(exp_h1)
    assert exp.importance is None and exp.best is not None
    assert any("importances are not shown" in w and "importance.json" in w for w in exp.warnings)


def test_collect_rejects_a_missing_required_column(exp_h1: Path) -> None:
    trials = read_table(exp_h1 / "trials.csv")
    trials.drop(columns=["status"]).to_csv(exp_h1 / "trials.csv", index=False)
    with pytest.raises(ReportError, match="no column status"):
        collect(exp_h1)


def test_collect_reads_the_ensemble(exp_ens: Path) -> None:
    exp = collect(exp_ens)
    ensemble, best = exp.ensemble, exp.best
    assert ensemble is not None and best is not None
    assert exp.warnings == ()
    # The members are the 5 finished trials with the lowest val_loss, lowest first: the fixture's
    # 5 completed trials, all within twice the best val_loss (the search leaves out worse ones).
    trials = read_table(exp_ens / "trials.csv")
    finished = trials[trials["status"].isin(["completed", "stopped"])]
    top5 = finished.sort_values("best_val_loss")["trial_id"].head(5).tolist()
    assert ensemble.trial_ids == top5 and ensemble.k == 5
    assert sorted(top5) == sorted(trials.loc[trials["status"] == "completed", "trial_id"])
    assert ensemble.members[-1].val_loss <= 2 * ensemble.members[0].val_loss
    assert ensemble.trial_ids[0] == best.trial_id
    by_id = trials.set_index("trial_id")
    for member in ensemble.members:
        assert member.val_loss == pytest.approx(by_id.loc[member.trial_id, "best_val_loss"])
        assert member.best_epoch == by_id.loc[member.trial_id, "best_epoch"]
    raw = json.loads((exp_ens / "ensemble" / "metrics.json").read_text())
    assert ensemble.val_loss == pytest.approx(raw["val_loss"])
    assert ensemble.combination == "mean of the members' forecasts"
    assert (ensemble.horizon, ensemble.season_length, ensemble.protocol) == (1, 12, "rolling one-step")
    assert ensemble.test_metrics["model"] == pytest.approx(raw["test"]["model"])
    # The same baselines and the same series as best/, but its own forecast.
    for name in ("naive", "seasonal_naive"):
        assert ensemble.test_metrics[name] == pytest.approx(best.test_metrics[name])
    np.testing.assert_array_equal(ensemble.predictions["y_true"], best.predictions["y_true"])
    forecast = ensemble.predictions["y_pred"]
    assert forecast.notna().sum() == ensemble.n_test_points == best.n_test_points == 29
    assert not np.allclose(forecast.dropna(), best.predictions["y_pred"].dropna())


def test_collect_ensemble_leaves_out_trials_far_worse_than_the_best(make_exp: Callable[..., Path]) -> None:
    """A trial stopped by ASHA after GRACE epochs has a val_loss over twice the best one's: the
    search keeps it out of the ensemble even though fewer trials than asked remain."""
    path = make_exp(n_trials=4, statuses=["completed", "completed", "stopped", "completed"], ensemble=4)
    trials = read_table(path / "trials.csv").set_index("trial_id")
    assert trials.loc["t0002", "best_val_loss"] > 2 * trials["best_val_loss"].min()
    ensemble = collect(path).ensemble
    assert ensemble is not None and ensemble.k == 3
    assert sorted(ensemble.trial_ids) == ["t0000", "t0001", "t0003"]


def test_collect_ensemble_of_fewer_trials_than_asked(make_exp: Callable[..., Path]) -> None:
    path = make_exp(n_trials=3, statuses=["completed", "failed", "completed"], ensemble=5)
    ensemble = collect(path).ensemble
    assert ensemble is not None and ensemble.k == 2
    assert sorted(ensemble.trial_ids) == ["t0000", "t0002"]


def test_collect_without_ensemble(exp_h1: Path, make_exp: Callable[..., Path]) -> None:
    """No ensemble/ (--ensemble 1, or fewer than 2 finished trials): None and no warning."""
    assert not (exp_h1 / "ensemble").exists()
    exp = collect(exp_h1)
    assert exp.ensemble is None and exp.warnings == ()
    one = make_exp(n_trials=2, statuses=["completed", "failed"], ensemble=5)
    assert not (one / "ensemble").exists() and collect(one).ensemble is None


def _edit_json(file: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("train_config"), r"best/metrics\.json has no train_config object"),
        (lambda m: m.update(train_config=[1, 2]), r"best/metrics\.json has no train_config object"),
        (lambda m: m.pop("trial_id"), r"best/metrics\.json lacks a trial_id"),
        (lambda m: m["test"]["naive"].update(mae="n/a"),
         r"best/metrics\.json lacks a number at test\.naive\.mae"),
        (lambda m: m.pop("horizon"), r"best/metrics\.json lacks horizon, season_length or n_test_points"),
    ],
    ids=["no-train-config", "train-config-not-an-object", "no-trial-id", "text-metric", "no-horizon"],
)
def test_collect_rejects_a_malformed_best_record(
    exp_h1: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    _edit_json(exp_h1 / "best" / "metrics.json", edit)
    with pytest.raises(ReportError, match=message + r".*; re-run the search or restore the file"):
        collect(exp_h1)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "metrics.json").write_text('{"members": ['),
         r"corrupt JSON in .*ensemble/metrics\.json"),
        (lambda d: (d / "metrics.json").write_text("[1, 2]"), r"corrupt JSON in .*ensemble/metrics\.json"),
        (lambda d: (d / "metrics.json").unlink(), r"ensemble/metrics\.json is missing"),
        (lambda d: (d / "predictions.csv").unlink(), r"ensemble/predictions\.csv is missing"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.pop("members")),
         r"ensemble/metrics\.json needs a members list"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.update(members=m["members"][:1], k=1)),
         r"ensemble/metrics\.json needs a members list of at least two"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m["members"][1].pop("trial_id")),
         r"ensemble/metrics\.json lacks a trial_id at members\[1\]"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.update(k=4)),
         r"ensemble/metrics\.json says k = 4 but lists 5 members"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m["members"].append(m["members"][0])),
         r"ensemble/metrics\.json lists a member trial twice"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m["test"]["model"].pop("mase")),
         r"ensemble/metrics\.json lacks a number at test\.model\.mase"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m["test"].pop("seasonal_naive")),
         r"ensemble/metrics\.json lacks test\.seasonal_naive"),
        (lambda d: (d / "predictions.csv").write_text("index,split\n0,train\n"),
         r"corrupt CSV .*ensemble/predictions\.csv \(no column y_true, y_pred\)"),
        (lambda d: (d / "predictions.csv").write_text("index,split,y_true,y_pred\n0,test,1.0,abc\n"),
         r"corrupt CSV .*ensemble/predictions\.csv \(column y_pred"),
        (lambda d: (d / "predictions.csv").write_bytes(b""), r"corrupt CSV .*ensemble/predictions\.csv"),
    ],
    ids=["truncated-json", "not-an-object", "no-metrics", "no-predictions", "no-members",
         "one-member", "member-without-id", "k-mismatch", "member-twice", "no-mase", "no-baseline",
         "no-forecast-column", "forecast-not-a-number", "empty-csv"],
)
def test_collect_rejects_a_malformed_ensemble(
    exp_ens: Path, damage: Callable[[Path], object], message: str
) -> None:
    damage(exp_ens / "ensemble")
    with pytest.raises(ReportError, match=message):
        collect(exp_ens)


def test_collect_notes_an_ensemble_that_does_not_match_the_run(exp_ens: Path) -> None:
    """Members missing from trials.csv, or a first member other than the best trial: notes."""
    def add_unknown_first(metrics: dict[str, Any]) -> None:
        metrics["members"].insert(0, {"trial_id": "zzzz9999", "val_loss": 0.01, "best_epoch": 3})
        metrics["k"] = len(metrics["members"])

    _edit_json(exp_ens / "ensemble" / "metrics.json", add_unknown_first)
    exp = collect(exp_ens)
    assert exp.ensemble is not None and exp.ensemble.trial_ids[0] == "zzzz9999"
    assert any("ensemble members zzzz9999 are not in trials.csv" in w for w in exp.warnings)
    assert any("first member is trial zzzz9999, not the best trial" in w for w in exp.warnings)


def test_collect_ignores_an_ensemble_without_a_best_trial(exp_ens: Path) -> None:
    """An interrupted search whose best/ was never written: ensemble/ alone is not shown."""
    run = (exp_ens / "tunecast.json").read_text()
    (exp_ens / "tunecast.json").write_text(run.replace('"completed"', '"interrupted"', 1))
    for file in (exp_ens / "best").iterdir():
        file.unlink()
    exp = collect(exp_ens)
    assert exp.best is None and exp.ensemble is None
    assert any("ensemble/ exists but there is no evaluated best trial" in w for w in exp.warnings)


def test_collect_notes_a_half_copied_ensemble_of_an_interrupted_search(exp_ens: Path) -> None:
    run = (exp_ens / "tunecast.json").read_text()
    (exp_ens / "tunecast.json").write_text(run.replace('"completed"', '"interrupted"', 1))
    (exp_ens / "ensemble" / "predictions.csv").unlink()
    exp = collect(exp_ens)
    assert exp.best is not None and exp.ensemble is None
    assert any("ensemble/predictions.csv missing" in w for w in exp.warnings)


def test_collect_notes_ensemble_baselines_that_differ_from_best(exp_ens: Path) -> None:
    _edit_json(exp_ens / "ensemble" / "metrics.json",
               lambda m: m["test"]["seasonal_naive"].update(mase=9.9))
    exp = collect(exp_ens)
    assert exp.ensemble is not None
    assert any("scores the naive baselines differently" in w for w in exp.warnings)


def test_collect_reads_the_combination(exp_cmb: Path) -> None:
    """combined/ as the search writes it: the best trial (no ensemble) with AutoETS and AutoARIMA."""
    exp = collect(exp_cmb)
    combined, best = exp.combined, exp.best
    assert combined is not None and best is not None and exp.ensemble is None
    assert exp.warnings == ()
    raw = json.loads((exp_cmb / "combined" / "metrics.json").read_text())
    assert combined.networks == (best.trial_id,) and exp.combined_networks == "the best trial"
    assert combined.statistical == tuple(raw["statistical"]) and "AutoETS" in combined.statistical
    assert combined.fit_end == exp.run.data["n_train"] == raw["fit_end"]
    assert combined.val_loss == pytest.approx(raw["val_loss"])
    assert combined.combination == raw["combination"]
    assert combined.test_metrics["model"] == pytest.approx(raw["test"]["model"])
    assert (combined.horizon, combined.protocol) == (best.horizon, best.protocol)
    for name in ("naive", "seasonal_naive"):
        assert combined.test_metrics[name] == pytest.approx(best.test_metrics[name])
    # Its own forecast of the same test points.
    np.testing.assert_array_equal(combined.predictions["y_true"], best.predictions["y_true"])
    forecast = combined.predictions["y_pred"]
    assert forecast.notna().sum() == combined.n_test_points == best.n_test_points == 29
    assert not np.allclose(forecast.dropna(), best.predictions["y_pred"].dropna())
    # The search recorded the candidate's validation loss in its selection.
    assert exp.run.selection is not None
    assert exp.run.selection.val_loss["combined"] == pytest.approx(raw["val_loss"])


def test_collect_reads_the_combination_of_the_ensemble(exp_ens_cmb: Path) -> None:
    exp = collect(exp_ens_cmb)
    assert exp.combined is not None and exp.ensemble is not None and exp.warnings == ()
    assert list(exp.combined.networks) == exp.ensemble.trial_ids
    assert exp.combined_networks == "the top-5 ensemble"


def test_collect_without_a_combination(exp_h1: Path, exp_panel: Path) -> None:
    """An experiment written before combined/ existed (or with --no-combine), and a panel: no
    combination, and no note."""
    for path in (exp_h1, exp_panel):
        assert not (path / "combined").exists()
        exp = collect(path)
        assert exp.combined is None and exp.combined_networks == ""
        assert not any("combin" in w for w in exp.warnings)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "metrics.json").unlink(),
         r"combined/metrics\.json is missing: the combination is not shown"),
        (lambda d: (d / "predictions.csv").unlink(),
         r"combined/predictions\.csv is missing: the combination is not shown"),
        (lambda d: (d / "metrics.json").write_text('{"networks": ['),
         r"the combination is not shown: corrupt JSON in .*combined/metrics\.json"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.pop("networks")),
         r"combined/metrics\.json needs a networks list"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.update(statistical=[])),
         r"combined/metrics\.json needs a statistical list"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m.update(fit_end=0)),
         r"combined/metrics\.json needs fit_end >= 1"),
        (lambda d: _edit_json(d / "metrics.json", lambda m: m["test"]["model"].pop("mase")),
         r"combined/metrics\.json lacks a number at test\.model\.mase"),
        (lambda d: (d / "predictions.csv").write_text("index,split,y_true,y_pred\n0,test,1.0,abc\n"),
         r"the combination is not shown: corrupt CSV .*combined/predictions\.csv \(column y_pred"),
        (lambda d: (d / "predictions.csv").write_bytes(b""), r"corrupt CSV .*combined/predictions\.csv"),
    ],
    ids=["no-metrics", "no-predictions", "truncated-json", "no-networks", "no-statistical", "fit-end-0",
         "no-mase", "forecast-not-a-number", "empty-csv"],
)
def test_collect_notes_a_broken_combination(
    exp_cmb: Path, damage: Callable[[Path], object], message: str
) -> None:
    """combined/ is optional even in a completed search: what is wrong with it is a note, and the
    rest of the experiment (and its report) stands."""
    damage(exp_cmb / "combined")
    exp = collect(exp_cmb)
    assert exp.combined is None and exp.best is not None
    assert [w for w in exp.warnings if re.search(message, w)], exp.warnings
    html = render_html(exp)
    assert "combined-note" not in html and 'data-forecaster="combined"' not in html


def test_collect_notes_a_combination_that_is_not_a_folder(exp_h1: Path) -> None:
    (exp_h1 / "combined").write_text("not a folder")
    exp = collect(exp_h1)
    assert exp.combined is None
    assert any("combined is not a directory: the combination is not shown" in w for w in exp.warnings)


def test_collect_notes_a_chosen_combination_it_cannot_show(exp_cmb: Path) -> None:
    """The search forecasts with the combination but combined/ is gone or broken: the notes say
    so (the verdict still gives the validation evidence from tunecast.json)."""
    _edit_json(exp_cmb / "tunecast.json", lambda run: run["selection"].update(chosen="combined"))
    (exp_cmb / "combined" / "predictions.csv").unlink()
    exp = collect(exp_cmb)
    assert exp.combined is None
    assert any("combined/predictions.csv is missing: the combination is not shown, though the search "
               "forecasts with it" in w for w in exp.warnings)
    shutil.rmtree(exp_cmb / "combined")
    assert any("tunecast.json says the search chose the combination, but combined/ is missing" in w
               for w in collect(exp_cmb).warnings)


def test_collect_notes_a_combination_of_other_networks(exp_cmb: Path) -> None:
    """combined/ naming networks that are neither the ensemble nor the best trial (copied from
    another run, say): shown, with notes."""
    _edit_json(exp_cmb / "combined" / "metrics.json", lambda m: m.update(networks=["zzzz9999"]))
    exp = collect(exp_cmb)
    assert exp.combined is not None and exp.combined_networks == "trial zzzz9999"
    assert any("the combination's networks zzzz9999 are not in trials.csv" in w for w in exp.warnings)
    assert any("networks are trials zzzz9999, not the best trial" in w for w in exp.warnings)
