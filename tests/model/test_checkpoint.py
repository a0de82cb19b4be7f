"""The one model format: save a network, load it back with nothing but ``model/``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tunecast.model import checkpoint
from tunecast.model.data import DataSpec, load
from tunecast.model.evaluate import evaluate
from tunecast.model.training import TrainConfig, fit


def test_a_saved_model_loads_back_to_the_same_forecasts(tmp_path):
    data = load(DataSpec("sine"))
    config = TrainConfig(hidden_size=8, window=12, max_epochs=2, scaler="window")
    result = fit(config, data)
    info = checkpoint.ModelInfo.of(config, data, epoch=result.best_epoch, val_loss=result.best_val_loss,
                                   extra={"trial_id": "abc"})
    folder = checkpoint.save(tmp_path / "m", result.model, info)
    assert checkpoint.is_model_folder(folder)
    model, loaded = checkpoint.load(folder)
    assert loaded == info and not model.training
    assert loaded.trained_on == data.n_train and loaded.mean == tuple(map(float, data.mean))
    before, after = evaluate(result.model, data, config), evaluate(model, data, config)
    torch.testing.assert_close(torch.from_numpy(after.y_pred), torch.from_numpy(before.y_pred))
    # the weights file is a plain state_dict: it loads with weights_only=True
    assert set(torch.load(folder / checkpoint.WEIGHTS_FILE, weights_only=True)) == set(model.state_dict())


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="holds no saved model"):
        checkpoint.load(tmp_path)
    (tmp_path / checkpoint.INFO_FILE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(checkpoint.CheckpointError, match="not a readable model description"):
        checkpoint.load(tmp_path)


def test_loading_a_model_imports_neither_ray_nor_optuna(tmp_path):
    config = TrainConfig(hidden_size=4, window=8)
    from tunecast.model.training import build_model

    checkpoint.save(tmp_path, build_model(config, 1), checkpoint.ModelInfo(config, 1, ("y",)))
    code = (f"import sys; from tunecast.model import checkpoint; checkpoint.load({str(tmp_path)!r}); "
            "print(sorted({'ray', 'optuna', 'tunecast.search', 'tunecast.reports'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
