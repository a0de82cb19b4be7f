"""Bad search input: one clear line, exit code 2, nothing written or lost."""

from __future__ import annotations

import pytest

from tunecast.search.cli import main


def run(capsys, tmp_path, *args):
    storage = tmp_path / "runs"
    code = main(["search", "--storage", str(storage), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not storage.exists() or not any(storage.iterdir()), "nothing may be written"
    return err


def config(tmp_path, text):
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return str(path)


def test_missing_config_file(capsys, tmp_path):
    assert "not found" in run(capsys, tmp_path, "--config", str(tmp_path / "nope.yaml"))


def test_unreadable_config_file(capsys, tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert "cannot read config file" in run(capsys, tmp_path, "--config", str(path))


def test_invalid_yaml(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space:\n  lr: [1, 2\n"))
    assert "not valid YAML" in err and "line" in err


def test_yaml_not_a_mapping(capsys, tmp_path):
    assert "must be a mapping" in run(capsys, tmp_path, "--config", config(tmp_path, "- a\n- b\n"))


def test_unknown_section(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "serach: {trials: 3}\n"))
    assert "unknown section(s) ['serach']" in err and "search" in err and "space" in err


def test_unknown_search_key(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "search: {trails: 3}\n"))
    assert "unknown search option(s) ['trails']" in err and "'trials'" in err


def test_unknown_space_key_names_valid_ones(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {hidden: {low: 1, high: 4}}\n"))
    assert "unknown search-space key 'hidden'" in err and "hidden_size" in err and "window" in err


def test_unknown_range_key(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {lr: {min: 1, max: 4}}\n"))
    assert "unknown key(s) ['max', 'min']" in err and "low/high" in err


def test_inverted_range(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {hidden_size: {low: 64, high: 16}}\n"))
    assert "inverted" in err and "swap" in err


def test_range_for_a_true_false_option(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {highway: {low: 0, high: 1}}\n"))
    assert "space.highway" in err and "choices" in err


def test_empty_range(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {lr: {low: 0.01, high: 0.01}}\n"))
    assert "empty" in err and "value: 0.01" in err


def test_empty_choices(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {scaler: []}\n"))
    assert "choices is empty" in err


def test_bad_value_type(capsys, tmp_path):
    err = run(capsys, tmp_path, "--config", config(tmp_path, "space: {hidden_size: {low: a, high: 4}}\n"))
    assert "'a' is not a valid int" in err


@pytest.mark.parametrize("share", ["1.5", "-0.5"])
def test_gpu_share_outside_unit_interval(capsys, tmp_path, share):
    assert "must lie in (0, 1]" in run(capsys, tmp_path, "--gpus-per-trial", share)


def test_gpu_share_that_does_not_divide_a_gpu(capsys, tmp_path):
    err = run(capsys, tmp_path, "--gpus-per-trial", "0.3")
    assert "does not divide a GPU into whole trials" in err and "0.25" in err


def test_window_too_large_for_series(capsys, tmp_path):
    err = run(capsys, tmp_path, "--data", "airline", "--config", config(tmp_path, "space: {window: 90}\n"))
    assert "window 90 leaves too few training windows" in err and "at most" in err


@pytest.mark.slow
def test_gpus_asked_where_cluster_has_none(capsys, tmp_path):
    err = run(capsys, tmp_path, "--data", "sine", "--gpus-per-trial", "0.5")
    assert "the Ray cluster has none" in err and "--gpus-per-trial 0" in err


def test_resume_of_a_folder_that_is_not_an_experiment(capsys, tmp_path):
    folder = tmp_path / "not-an-experiment"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    code = main(["search", "--resume", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not a tunecast experiment" in err
    assert (folder / "keep.txt").read_text() == "precious" and len(list(folder.iterdir())) == 1


def test_resume_takes_no_other_settings(capsys, tmp_path):
    code = main(["search", "--resume", str(tmp_path), "--trials", "3"])
    assert code == 2 and "drop trials" in capsys.readouterr().err


def test_existing_experiment_is_not_overwritten(capsys, sine_experiment):
    before = (sine_experiment / "tunecast.json").read_text()
    code = main(
        [
            "search",
            "--data",
            "sine",
            "--storage",
            str(sine_experiment.parent),
            "--name",
            sine_experiment.name,
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "exists already" in err and "--resume" in err
    assert (sine_experiment / "tunecast.json").read_text() == before
