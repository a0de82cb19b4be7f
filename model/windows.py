"""Sliding windows as strided views (memory O(N), not O(N * T)).

A window starting at ``s`` has inputs ``s .. s+T-1`` and targets ``s+T .. s+T+H-1`` (target is
feature 0). A split's windows take inputs from anywhere before; their targets lie inside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from tunecast.model.data import Dataset


class WindowViews:
    """Inputs and targets gathered from strided views of one ``[N, F]`` tensor by ``starts``."""

    series: torch.Tensor
    window: int
    horizon: int

    def _views(self) -> None:
        self._inputs = self.series.unfold(0, self.window, 1)  # (N - T + 1, F, T) view
        self._targets = self.series[:, 0].unfold(0, self.horizon, 1)  # (N - H + 1, H) view

    def starts(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        raise NotImplementedError

    def x(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Inputs of the selected windows, ``[B, T, F]`` (a copy of just these windows)."""
        return self._inputs[self.starts(idx)].transpose(1, 2)  # (B, F, T) -> (B, T, F)

    def y(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Targets of the selected windows, ``[B, H]``."""
        return self._targets[self.starts(idx) + self.window]  # (B, H)

    def target_positions(self) -> np.ndarray:
        """Positions (rows of the series tensor) of every target, ``[W, H]``."""
        first = self.starts().cpu().numpy() + self.window
        return first[:, None] + np.arange(self.horizon)[None, :]


@dataclass
class Windows(WindowViews):
    """The windows of one split: ``x(idx) -> [B, T, F]``, ``y(idx) -> [B, H]``; window ``i``
    starts at ``first + i * step`` (never materialised)."""

    series: torch.Tensor  # (N, F) scaled float32, shared with the numpy array
    first: int  # start of window 0
    count: int  # number of windows
    step: int  # distance between window starts (1, or H for test blocks)
    window: int
    horizon: int

    def __post_init__(self) -> None:
        self.count = max(0, self.count)
        self._views()

    def __len__(self) -> int:
        return self.count

    def thinned(self, limit: int) -> Windows:
        """At most ``limit`` evenly spaced windows: a fixed subset, so losses stay comparable."""
        if self.count <= limit:
            return self
        stride = -(-self.count // limit)
        return dataclasses.replace(self, count=-(-self.count // stride), step=self.step * stride)

    def starts(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Start positions of the selected windows (all of them for ``None``)."""
        if idx is None:
            idx = slice(None)
        if isinstance(idx, slice):
            idx = torch.arange(*idx.indices(self.count), device=self.series.device)
        return self.first + self.step * idx.to(self.series.device)


def split_windows(
    data: Dataset, window: int, horizon: int, series: torch.Tensor | None = None
) -> dict[str, Windows]:
    """Training and validation windows with stride 1; test windows in non-overlapping blocks of
    H over the last ``floor(n_test / H) * H`` points (rolling one-step for H = 1)."""
    if series is None:
        series = torch.from_numpy(data.scaled())
    n_pre = data.n_train + data.n_val
    n_blocks = data.n_test // horizon
    test_first = data.n_points - n_blocks * horizon
    val_first = max(0, data.n_train - window)
    ranges = {  # name: (first start, number of windows, step)
        "train": (0, data.n_train - window - horizon + 1, 1),
        "val": (val_first, n_pre - window - horizon + 1 - val_first, 1),
        "test": (test_first - window, n_blocks, horizon),
    }
    return {
        name: Windows(series, first, count, step, window=window, horizon=horizon)
        for name, (first, count, step) in ranges.items()
    }
