"""Training speed: time to a test MSE target against the article's loop, and achieved FLOP/s.

Part 1 trains on the sine data (``DataSpec("sine")``: train/val/test = 0.65/0.15/0.2) until the
rolling one-step test MSE (original units) is at most ``--target-mse``:

* ``article (full batch)``: a faithful copy of the seed article's model and loop (hidden 64,
  2 layers, window 20, one full batch of every training window per step, Adam 1e-3,
  ``nn.MSELoss``), with its one bug fixed: the target is ``[B, 1]``, not ``[B, 1, 1]``. Raw
  (unscaled) values, as in the article; test MSE checked every 5 steps.
* ``fit, article's network``: ``model.training.fit`` with the same network (hidden 64, 2 layers,
  window 20) and ``TrainConfig``'s defaults for the rest (mini-batch 64, Adam 1e-3, clipping).
* ``fit, defaults, no highway``: ``fit`` with TrainConfig's defaults but no highway term (the
  article's architecture at the default sizes: hidden 64, 1 layer, window 24).
* ``fit, TrainConfig defaults``: ``fit`` as a user gets it (the same, with the highway term).

For ``fit`` the model tested is the one it would return at that moment (the best so far on
val_loss, from ``on_improve``). The clock stops while the benchmark measures test MSE. Every side
runs in this process, one after the other, with the same torch thread count (``--threads``).

Part 2 measures the training FLOP/s of ``fit`` for hidden 128, 2 layers, window 48, batch 256
(matmul FLOPs of forward + backward counted analytically, 2 per multiply-add, backward = 2 x
forward, plus the validation forward passes) and divides it by this machine's float32
``torch.mm`` rate measured in the same run with the same threads.

    python benchmarks/training.py               # full (a few minutes)
    python benchmarks/training.py --threads 1   # the same on one core
    python benchmarks/training.py --smoke       # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
import numpy as np
import torch
from _common import machine_line, table, verdict
from torch import nn

from tunecast.model.data import Dataset, DataSpec, load
from tunecast.model.training import TrainConfig, build_model, fit
from tunecast.model.windows import split_windows

SPEED_TARGET = 20.0
FLOPS_TARGET = 0.30


# --- the article's code (seed-article.txt), copied as written ------------------------------------
class ArticleAttention(nn.Module):
    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.attn = nn.Linear(hidden_dim, hidden_dim)
        self.context = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attn_weights = torch.tanh(self.attn(hidden_states))
        attn_weights = self.context(attn_weights).squeeze(2)
        attn_weights = torch.softmax(attn_weights, dim=1)
        context_vector = torch.sum(attn_weights.unsqueeze(2) * hidden_states, dim=1)
        return context_vector, attn_weights


class ArticleAttentionLSTM(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, n_layers: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.lstm = nn.LSTM(input_dim, hidden_dim, n_layers, batch_first=True)
        self.attention = ArticleAttention(hidden_dim)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_0 = torch.zeros(self.n_layers, x.size(0), self.hidden_dim).to(x.device)
        c_0 = torch.zeros(self.n_layers, x.size(0), self.hidden_dim).to(x.device)
        out, _ = self.lstm(x, (h_0, c_0))
        context_vector, attn_weights = self.attention(out)
        out = self.fc(context_vector)
        return out, attn_weights


# --- part 1: time to target ---------------------------------------------------------------------
class _Reached(Exception):
    """Raised from a callback to stop ``fit`` once the target is reached."""


@torch.no_grad()
def test_mse(model: nn.Module, data: Dataset, window: int, scaled: bool) -> float:
    """Rolling one-step test MSE in original units."""
    model.eval()
    values = data.scaled() if scaled else data.values
    test = split_windows(data, window, 1, torch.from_numpy(values))["test"]
    prediction, _ = model(test.x())  # (K, 1)
    model.train()
    y_pred = data.unscale_target(prediction.numpy()) if scaled else prediction.numpy()
    y_true = data.values[test.target_positions(), 0]
    return float(np.mean((y_true - y_pred) ** 2))


def time_article(data: Dataset, target: float, max_seconds: float, check_every: int) -> dict[str, Any]:
    """The article's full-batch loop; test MSE every ``check_every`` epochs (clock paused)."""
    torch.manual_seed(0)
    seq_len = 20
    train = split_windows(data, seq_len, 1, torch.from_numpy(data.values))["train"]
    train_x, train_y = train.x(), train.y()  # (B, 20, 1), (B, 1): the article's bug fixed
    model = ArticleAttentionLSTM(1, 64, 1, 2)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    model.train()
    elapsed, epoch, mse = 0.0, 0, math.inf
    while elapsed < max_seconds:
        start = time.perf_counter()
        for _ in range(check_every):
            optimizer.zero_grad()
            output, _ = model(train_x)
            loss = criterion(output, train_y)
            loss.backward()
            optimizer.step()
        elapsed += time.perf_counter() - start
        epoch += check_every
        mse = test_mse(model, data, seq_len, scaled=False)
        if mse <= target:
            break
    return {"seconds": elapsed, "steps": epoch, "test_mse": mse, "reached": mse <= target}


def time_fit(data: Dataset, target: float, max_seconds: float, config: TrainConfig) -> dict[str, Any]:
    """``fit`` until the model it would return reaches the target (clock paused while testing)."""
    paused = 0.0
    start = time.perf_counter()
    state: dict[str, Any] = {"mse": math.inf, "epoch": 0, "seconds": math.inf}

    def on_improve(best: dict[str, torch.Tensor], metrics: dict[str, Any]) -> None:
        nonlocal paused
        now = time.perf_counter()
        state["seconds"] = now - start - paused  # training time so far
        model = build_model(config, data.input_size)
        model.load_state_dict(best)
        state["mse"], state["epoch"] = test_mse(model, data, config.window, scaled=True), metrics["epoch"]
        paused += time.perf_counter() - now
        if state["mse"] <= target:
            raise _Reached

    def on_epoch(metrics: dict[str, Any]) -> None:
        if time.perf_counter() - start - paused > max_seconds:
            raise _Reached

    with contextlib.suppress(_Reached):
        fit(config, data, on_epoch=on_epoch, on_improve=on_improve, device="cpu")
    steps_per_epoch = _batches_per_epoch(data, config)
    reached = state["mse"] <= target
    return {
        "seconds": state["seconds"] if reached else time.perf_counter() - start - paused,
        "steps": state["epoch"] * steps_per_epoch,
        "test_mse": state["mse"],
        "reached": reached,
    }


def _batches_per_epoch(data: Dataset, config: TrainConfig) -> int:
    n = data.n_train - config.window - config.horizon + 1
    passes = max(1, math.ceil(config.min_batches_per_epoch * config.batch_size / n))
    return math.ceil(passes * n / config.batch_size)


# --- part 2: FLOP/s -----------------------------------------------------------------------------
def matmul_rate(size: int, repeats: int) -> float:
    """Best float32 ``torch.mm`` rate (FLOP/s) for ``size x size`` matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def forward_flops(hidden: int, layers: int, window: int, inputs: int = 1, horizon: int = 1) -> float:
    """Matmul FLOPs of one window's forward pass (LSTM gates, attention, head)."""
    per_step = 0.0
    for layer in range(layers):
        d_in = inputs if layer == 0 else hidden
        per_step += 2 * 4 * hidden * (d_in + hidden)  # x W_ih + h W_hh
    per_step += 2 * hidden * hidden + 2 * hidden + 2 * hidden  # W h_t, v . tanh(.), weighted sum
    return window * per_step + 2 * hidden * horizon


def training_rate(data: Dataset, config: TrainConfig, epochs: int) -> tuple[float, float]:
    """``fit``'s achieved FLOP/s over ``epochs`` epochs after a warm-up epoch, and its seconds."""
    stamps: list[float] = []
    fit(config, data, on_epoch=lambda m: stamps.append(time.perf_counter()), device="cpu")
    seconds = stamps[-1] - stamps[0]
    n_train = data.n_train - config.window - config.horizon + 1
    val_first = max(0, data.n_train - config.window)
    n_val = data.n_train + data.n_val - config.window - config.horizon + 1 - val_first
    passes = max(1, math.ceil(config.min_batches_per_epoch * config.batch_size / n_train))
    per_window = forward_flops(config.hidden_size, config.num_layers, config.window)
    flops_per_epoch = 3 * per_window * passes * n_train + per_window * n_val  # train fwd+bwd, val fwd
    return flops_per_epoch * (epochs - 1) / seconds, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks the script works")
    parser.add_argument("--target-mse", type=float, default=1e-3)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="give up a side after this")
    parser.add_argument("--threads", type=int, help="torch threads for every side (default: torch's)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    if args.threads or smoke:
        torch.set_num_threads(args.threads or 1)  # smoke: one thread, robust on a busy CI box
    target = 0.05 if smoke else args.target_mse
    max_seconds = 10.0 if smoke else args.max_seconds
    print(machine_line())
    data = load(DataSpec("sine"))

    long = {"max_epochs": 10_000, "patience": 10_000}
    same_net = TrainConfig(hidden_size=64, num_layers=2, window=20, highway=False, **long)
    no_highway = TrainConfig(highway=False, **long)
    defaults = TrainConfig(**long)
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "fit, article's network": lambda: time_fit(data, target, max_seconds, same_net),
        "article (full batch)": lambda: time_article(data, target, max_seconds, check_every=5),
        "fit, defaults, no highway": lambda: time_fit(data, target, max_seconds, no_highway),
        "fit, TrainConfig defaults": lambda: time_fit(data, target, max_seconds, defaults),
    }
    results = {name: run() for name, run in runs.items()}
    rows = [[n, r["seconds"], r["steps"], r["test_mse"], "yes" if r["reached"] else "no"]
            for n, r in results.items()]
    print(f"\nTime to rolling one-step test MSE <= {target:g} on sine. Article's network: hidden 64, "
          "2 layers, window 20; fit's batch 64, lr 1e-3. TrainConfig defaults: hidden 64, 1 layer, "
          f"window 24, highway {defaults.highway}")
    print(table(["loop", "seconds", "optimizer steps", "test MSE", "reached"], rows, digits=4))

    size = 512 if smoke else 4096
    peak = matmul_rate(size, repeats=3 if smoke else 10)
    shape = {"hidden_size": 16, "num_layers": 1, "window": 16, "batch_size": 64} if smoke else {
        "hidden_size": 128, "num_layers": 2, "window": 48, "batch_size": 256}
    flops_config = TrainConfig(**shape, max_epochs=2 if smoke else 6, patience=100)
    achieved, seconds = training_rate(data, flops_config, flops_config.max_epochs)
    print(f"\nTraining FLOP/s of fit ({', '.join(f'{k} {v}' for k, v in shape.items())}; "
          f"{flops_config.max_epochs - 1} epochs timed after a warm-up, {seconds:.1f} s)")
    print(table(["measure", "GFLOP/s"], [[f"torch.mm {size}x{size} float32 (best of runs)", peak / 1e9],
                                         ["fit() training (matmul FLOPs, fwd + bwd + val)", achieved / 1e9]],
                digits=1))

    article = results["article (full batch)"]
    lines = []
    for name in ("fit, article's network", "fit, defaults, no highway", "fit, TrainConfig defaults"):
        ours = results[name]
        speedup = article["seconds"] / ours["seconds"]
        bound = "" if article["reached"] else " (at least: the article's loop did not reach the target)"
        lines.append(f"speed-up {name} vs article to MSE <= {target:g}: {speedup:.1f}x{bound} "
                     f"(target >= {SPEED_TARGET:g}x: {verdict(speedup >= SPEED_TARGET and ours['reached'])})")
    fraction = achieved / peak
    lines.append(f"training FLOP/s / matmul FLOP/s ({torch.get_num_threads()} threads): {fraction:.1%} "
                 f"(target >= {FLOPS_TARGET:.0%}: {verdict(fraction >= FLOPS_TARGET)})")
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
