"""How many trials should share one GPU? Aggregate throughput with 1, 2, 4 and 8 trials per GPU.

This is what Ray does with ``--gpus-per-trial 1/N``: N trial processes on one GPU, each capping
its CUDA memory to 1/N (``torch.cuda.set_per_process_memory_fraction``) and training its own
trial. The script uses ``model/`` alone (no Ray: the GPU machine's image has torch only), runs
the same trials for every N with N worker processes, and prints one row per N: aggregate
training windows/second, peak GPU memory per trial, wall time, and the speed-up over N=1.

    python benchmarks/gpu_share.py            # on a CUDA machine, well inside 8 minutes
    python benchmarks/gpu_share.py --smoke    # tiny, on CPU: checks the script works
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Plan:
    shares: tuple[int, ...]  # trials per GPU to compare
    trials: int  # the same trials for every share
    points: int  # length of the synthetic series
    epochs: int
    hidden_size: int
    window: int
    batch_size: int
    device: str


FULL = Plan(
    (1, 2, 4, 8), trials=8, points=60_000, epochs=2, hidden_size=128, window=48, batch_size=256, device="cuda"
)
SMOKE = Plan((1, 2), trials=2, points=1_500, epochs=1, hidden_size=8, window=8, batch_size=64, device="cpu")


def series(points: int) -> np.ndarray:
    """A seasonal series with noise (deterministic), as a CSV-free built-in would be."""
    t = np.arange(points, dtype=np.float64)
    rng = np.random.default_rng(0)
    return np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 168) + 0.1 * rng.standard_normal(points)


def run_trial(args: tuple[Plan, int, int]) -> tuple[int, float, int]:
    """One trial in a worker process: (windows trained, seconds, peak GPU bytes)."""
    plan, share, seed = args
    import torch

    from tunecast.model.data import Dataset, DataSpec, split_sizes
    from tunecast.model.training import TrainConfig, fit

    device = torch.device(plan.device)
    if device.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(1.0 / share, device)
        torch.cuda.reset_peak_memory_stats(device)
    torch.set_num_threads(1)
    values = series(plan.points).astype(np.float32)[:, None]
    n_train, n_val, n_test = split_sizes(plan.points, 0.15, 0.2)
    train = values[:n_train]
    data = Dataset(
        "synthetic",
        values,
        ("y",),
        None,
        24,
        n_train,
        n_val,
        n_test,
        train.mean(axis=0),
        train.std(axis=0),
        DataSpec("synthetic"),
    )
    config = TrainConfig(
        hidden_size=plan.hidden_size,
        num_layers=2,
        window=plan.window,
        batch_size=plan.batch_size,
        max_epochs=plan.epochs,
        patience=plan.epochs,
        seed=seed,
    )
    result = fit(config, data, device=device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return result.windows_seen, result.seconds, peak


def measure(plan: Plan, share: int) -> dict[str, float]:
    """Run ``plan.trials`` trials, ``share`` at a time, each in its own process."""
    context = mp.get_context("spawn")
    began = time.perf_counter()
    with context.Pool(processes=share, maxtasksperchild=None) as pool:
        results = pool.map(run_trial, [(plan, share, seed) for seed in range(plan.trials)])
    wall = time.perf_counter() - began
    windows = sum(r[0] for r in results)
    train_seconds = sum(r[1] for r in results)
    return {
        "share": share,
        "windows_per_s": windows / wall,
        "gpu_mb_per_trial": max(r[2] for r in results) / 2**20,
        "wall_s": wall,
        "train_s_per_trial": train_seconds / plan.trials,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if plan.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA device here: run with --smoke on CPU", file=sys.stderr)
            return 2
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(
        f"{plan.trials} trials per row: hidden {plan.hidden_size}, 2 layers, window "
        f"{plan.window}, batch {plan.batch_size}, {plan.epochs} epochs, {plan.points} points"
    )
    rows = [measure(plan, share) for share in plan.shares]
    base = rows[0]["windows_per_s"]
    print(
        f"{'trials/GPU':>10} {'windows/s':>12} {'GPU MB/trial':>13} {'wall s':>8} "
        f"{'train s/trial':>14} {'speed-up':>9}"
    )
    for row in rows:
        print(
            f"{row['share']:>10d} {row['windows_per_s']:>12.0f} {row['gpu_mb_per_trial']:>13.0f} "
            f"{row['wall_s']:>8.1f} {row['train_s_per_trial']:>14.1f} "
            f"{row['windows_per_s'] / base:>8.2f}x"
        )
    best = max(rows, key=lambda r: r["windows_per_s"])
    print(
        f"best: {best['share']} trials per GPU, {best['windows_per_s'] / base:.2f}x the "
        "throughput of one trial per GPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
