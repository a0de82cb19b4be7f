"""Windows over a panel: every series' train, validation and test windows, none crossing two series.

The panel counterpart of :mod:`model.windows`: strided views of the panel's one ``[N, F]``
array, addressed by one int64 start per window.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from tunecast.model.data import MIN_TRAIN_WINDOWS, DataError, Dataset, check_window
from tunecast.model.panel import Panel, too_short
from tunecast.model.windows import Windows, WindowViews, split_windows


@dataclass
class PanelWindows(WindowViews):
    """The windows of one split over all series, as :class:`model.windows.Windows` but window
    ``i`` starts at row ``positions[i]`` (not evenly spaced across series boundaries)."""

    series: torch.Tensor  # (N, F) scaled float32, all series concatenated
    offsets: torch.Tensor  # (S,) int64 first row of each series, on series.device
    positions: torch.Tensor  # (W,) int64 start of every window, on series.device
    window: int
    horizon: int

    def __post_init__(self) -> None:
        self._views()

    @property
    def count(self) -> int:
        return int(self.positions.shape[0])

    def __len__(self) -> int:
        return self.count

    def thinned(self, limit: int) -> PanelWindows:
        """At most ``limit`` windows, every k-th one: a fixed subset, so losses stay comparable."""
        if self.count <= limit:
            return self
        stride = -(-self.count // limit)
        return dataclasses.replace(self, positions=self.positions[::stride].contiguous())

    def starts(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Start rows of the selected windows (all of them for ``None``)."""
        if idx is None:
            return self.positions
        if isinstance(idx, slice):
            return self.positions[idx]
        return self.positions[idx.to(self.positions.device)]

    def series_of(self, idx: torch.Tensor | slice | None = None) -> np.ndarray:
        """The series index of the selected windows, ``(B,)`` int64."""
        return (torch.searchsorted(self.offsets, self.starts(idx), right=True) - 1).cpu().numpy()


def panel_tensor(panel: Panel, device: str | torch.device | None = None) -> torch.Tensor:
    """The scaled panel as a tensor; on the CPU it shares the array's memory (no copy)."""
    with warnings.catch_warnings():  # an array from Ray's object store is read-only: windows only read it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(panel.scaled())
    return tensor if device is None else tensor.to(device)


def check_panel_window(panel: Panel, window: int, horizon: int) -> None:
    """Raise :class:`DataError` naming the shortest series too short for this window and horizon."""
    if window < 1 or horizon < 1:
        raise DataError(f"window and horizon must be >= 1, got window={window}, horizon={horizon}")
    refit = (panel.n_val == 0) & (panel.n_test == 0)  # all in training: model.forecast.panel_for_refit
    fails = ((panel.n_train < window + horizon + MIN_TRAIN_WINDOWS - 1)
             | (~refit & ((panel.n_val < horizon) | (panel.n_test < horizon))))
    if fails.any():
        spec = panel.spec
        need = spec.min_points(window, horizon)
        what = f"window={window}, horizon={horizon} and the splits ({spec.splits_text()})"
        raise too_short(panel.ids, panel.lengths, fails, need, what, "use a smaller window/horizon")


def panel_windows(
    panel: Panel, window: int, horizon: int, series: torch.Tensor | None = None
) -> dict[str, PanelWindows]:
    """Training, validation and test windows of every series, by :func:`split_windows`'s rules."""
    check_panel_window(panel, window, horizon)
    if series is None:
        series = panel_tensor(panel)
    n_pre = panel.n_train + panel.n_val
    n_blocks = panel.n_test // horizon
    val_first = np.maximum(0, panel.n_train - window)
    ranges = {  # name: (each series' first start, its number of windows, step)
        "train": (np.zeros_like(n_pre), panel.n_train - window - horizon + 1, 1),
        "val": (val_first, n_pre - window - horizon + 1 - val_first, 1),
        "test": (panel.lengths - n_blocks * horizon - window, n_blocks, horizon),
    }
    offsets = torch.from_numpy(panel.offsets).to(series.device)
    return {
        name: PanelWindows(series, offsets, _starts(panel.offsets + first, count, step).to(series.device),
                           window=window, horizon=horizon)
        for name, (first, count, step) in ranges.items()
    }


def _starts(first: np.ndarray, count: np.ndarray, step: int) -> torch.Tensor:
    """``first[s] + step * arange(count[s])`` for every series, concatenated, without a loop."""
    count = np.maximum(count, 0)
    before = np.cumsum(count) - count
    base = np.repeat(first - step * before, count)  # (W,)
    return torch.from_numpy(base + step * np.arange(int(count.sum()), dtype=np.int64))


AnyWindows = Windows | PanelWindows  # what training and evaluation read: x(idx), y(idx), len, thinned


def data_windows(
    data: Dataset | Panel, window: int, horizon: int, device: str | torch.device | None = None
) -> dict[str, AnyWindows]:
    """The train/val/test windows of one series or a panel, over one scaled copy on ``device``.

    Raises:
        DataError: a series is too short for ``window`` and ``horizon``.
    """
    if isinstance(data, Panel):
        return dict(panel_windows(data, window, horizon, panel_tensor(data, device)))
    check_window(data, window, horizon)
    series = torch.from_numpy(data.scaled())
    return dict(split_windows(data, window, horizon, series if device is None else series.to(device)))
