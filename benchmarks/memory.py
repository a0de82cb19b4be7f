"""Memory: peak RSS while loading, splitting, windowing and training on a 10-million-point CSV.

The parent writes a CSV with one column ``value`` (a noisy seasonal series with a trend), then
runs each measurement in a fresh child process (so the CSV writing does not count) that reports
its resident memory after every phase: current RSS (``VmRSS``) and the peak so far (``VmHWM``,
which is what the target is about).

Phases in the child:

1. ``import``: torch, numpy, pandas and ``model``.
2. ``load``: ``model.data.load`` (pandas reads the CSV, validation, float32 values).
3. ``split + windows``: ``Dataset.scaled()`` as a tensor and ``split_windows`` (strided views).
4. ``train batches``: ``fit``'s own epoch function, ``model.training.train_epoch`` (mini-batches
   of 256 gathered from the views, forward, backward, clipping, Adam; batches whose LSTM
   activations exceed ``TRAIN_UNITS`` are split into micro-batches), given the first
   ``--batches`` batches' windows, plus a ``torch.randperm`` over *all* training windows (the
   permutation a whole epoch makes). A whole epoch (about 25,000 batches of window 512) would
   take hours here; memory per batch is the same in every batch.
5. ``validation``: ``model.training.mean_loss`` (the function ``fit`` calls after every epoch)
   over the first ``--eval-batches`` x ``EVAL_BATCH`` validation windows.

    python benchmarks/memory.py            # 10M points, window 512, batch 256
    python benchmarks/memory.py --smoke    # 100k points, window 32
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the checkout on sys.path)
from _common import ROOT, machine_line, peak_rss_mb, rss_mb, table, verdict

TARGET_MB = 1500.0


def write_csv(path: Path, n_points: int, chunk: int = 1_000_000) -> None:
    """A seasonal series with trend and noise, one column ``value``, written in chunks."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for start in range(0, n_points, chunk):
            t = np.arange(start, min(start + chunk, n_points), dtype=np.float64)
            value = 10 + 1e-6 * t + np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(len(t))
            pd.DataFrame({"value": value}).to_csv(fh, header=start == 0, index=False, float_format="%.5f")


def measure(csv: str, window: int, hidden: int, layers: int, batches: int, eval_batches: int) -> None:
    """Child process: print one JSON line per phase."""
    began = time.perf_counter()

    def report(phase: str) -> None:
        print(json.dumps({"phase": phase, "rss": rss_mb(), "peak": peak_rss_mb(),
                          "seconds": time.perf_counter() - began}), flush=True)

    import torch

    from tunecast.model.data import DataSpec, load
    from tunecast.model.training import EVAL_BATCH, TrainConfig, build_model, mean_loss, train_epoch
    from tunecast.model.windows import Windows, split_windows

    torch.manual_seed(0)
    report("import")
    data = load(DataSpec(source=csv, target="value"))
    report("load")
    config = TrainConfig(hidden_size=hidden, num_layers=layers, window=window, batch_size=256,
                         min_batches_per_epoch=1)
    series = torch.from_numpy(data.scaled())  # (N, 1): the one copy fit() makes
    windows = split_windows(data, config.window, config.horizon, series)
    train, val = windows["train"], windows["val"]
    report("split + windows")

    model = build_model(config, data.input_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(train), generator=shuffle)  # the size of fit's permutation of all windows
    first = Windows(train.series, train.first, batches * config.batch_size, train.step,
                    window=train.window, horizon=train.horizon)  # the first `batches` batches' windows
    train_epoch(model, optimizer, first, config, shuffle, torch.device("cpu"))  # fit's own epoch code
    del order
    report(f"train {batches} batches of {config.batch_size}")

    capped = Windows(val.series, val.first, min(len(val), eval_batches * EVAL_BATCH), val.step,
                     window=val.window, horizon=val.horizon)
    mean_loss(model, capped)
    report(f"validation ({len(capped)} windows)")
    print(json.dumps({"n_points": data.n_points, "train_windows": len(train), "val_windows": len(val),
                      "eval_batch": EVAL_BATCH}), flush=True)


def run_child(csv: Path, args: argparse.Namespace, hidden: int, layers: int) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--child", str(csv), "--window", str(args.window),
               "--hidden", str(hidden), "--layers", str(layers), "--batches", str(args.batches),
               "--eval-batches", str(args.eval_batches)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="100k points, window 32")
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--batches", type=int, default=10, help="training batches to run")
    parser.add_argument("--eval-batches", type=int, default=1, help="validation batches of EVAL_BATCH")
    parser.add_argument("--child", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--hidden", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure(args.child, args.window, args.hidden, args.layers, args.batches, args.eval_batches)
        return 0
    if args.smoke:
        args.points, args.window, args.batches = 100_000, 32, 3
    print(machine_line())
    networks = [(64, 1), (128, 2)]  # TrainConfig's default and the largest of the default space
    with tempfile.TemporaryDirectory(prefix="tunecast-mem-") as tmp:
        csv = Path(tmp) / "series.csv"
        started = time.perf_counter()
        write_csv(csv, args.points)
        print(f"wrote {args.points:,} points ({csv.stat().st_size / 1e6:.0f} MB CSV) in "
              f"{time.perf_counter() - started:.0f} s")
        results = {net: run_child(csv, args, *net) for net in networks}
    peaks = {}
    for (hidden, layers), lines in results.items():
        phases, info = lines[:-1], lines[-1]
        print(f"\nhidden {hidden}, {layers} layer(s), window {args.window}, batch 256: "
              f"{info['train_windows']:,} training and {info['val_windows']:,} validation windows")
        print(table(["phase", "RSS MB", "peak RSS MB", "seconds"],
                    [[p["phase"], p["rss"], p["peak"], p["seconds"]] for p in phases], digits=0))
        peaks[(hidden, layers)] = max(p["peak"] for p in phases)
    print()
    for (hidden, layers), peak in peaks.items():
        print(f"peak RSS, hidden {hidden} x {layers}: {peak:.0f} MB = {peak / TARGET_MB:.2f} of "
              f"{TARGET_MB:.0f} MB (target < 1: {verdict(peak < TARGET_MB)})")
    return 0 if math.isfinite(max(peaks.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
