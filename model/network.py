"""The Attention-LSTM forecaster.

An LSTM reads a window of the series; additive attention scores every hidden state of its
last layer (``score_t = v . tanh(W h_t + b)``), a softmax over time turns the scores into
weights, the weighted sum of the hidden states is the context vector, and a linear head maps
the context to ``horizon`` future values. This is the architecture of the original article,
with its target-shape bug gone: the prediction is ``[B, H]`` and is compared with a ``[B, H]``
target, never broadcast against ``[B, 1, 1]``.

Optionally (``window_norm=True``, RevIN-style) every input window is normalised by its own
mean and standard deviation and the prediction is mapped back with the target's statistics,
so trending series can be forecast beyond the range seen in training.

Optionally (``highway=True``, as in LSTNet) a linear autoregressive term over the window's
target values is added to the head's output: the LSTM and attention then model what a linear
model of the recent past cannot, which is most of what strongly seasonal, trending series
need from a small network and few training points. The highway starts with PyTorch's random
initialisation (``highway_init="random"``, the default) or as the naive forecast
(``"naive"``: weight 1 on the window's last value for every step ahead, 0 elsewhere), so that a
barely trained network repeats the last value and training moves it away from that only as far
as the data support.
"""

from __future__ import annotations

import torch
from torch import nn

WINDOW_NORM_EPS = 1e-5
HIGHWAY_INITS = ("naive", "random")


class Attention(nn.Module):
    """Additive attention over time: ``softmax_t(v . tanh(W h_t + b))``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, hidden_size)  # W, b
        self.score = nn.Linear(hidden_size, 1, bias=False)  # v

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(context [B, D], weights [B, T])`` for hidden states ``[B, T, D]``."""
        scores = self.score(torch.tanh(self.proj(hidden)))  # (B, T, 1)
        weights = torch.softmax(scores.squeeze(-1), dim=1)  # (B, T), sums to 1 over T
        context = torch.bmm(weights.unsqueeze(1), hidden).squeeze(1)  # (B, 1, T) @ (B, T, D) -> (B, D)
        return context, weights


class AttentionLSTM(nn.Module):
    """LSTM -> additive attention -> linear head.

    Args:
        input_size: number of input features F (the target is feature 0).
        hidden_size: LSTM hidden size D.
        num_layers: stacked LSTM layers.
        horizon: number of future steps H predicted at once.
        dropout: dropout between LSTM layers and before the head.
        window_norm: normalise each input window by its own mean/std (RevIN-style) and map
            the prediction back with the target column's statistics.
        highway: add a linear autoregressive term over the window's target values; needs
            ``window`` (the input length) to size it.
        highway_init: ``"random"`` keeps PyTorch's default initialisation; ``"naive"`` starts
            the highway as the last value (persistence).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        horizon: int,
        dropout: float = 0.0,
        window_norm: bool = False,
        highway: bool = False,
        window: int | None = None,
        highway_init: str = "random",
    ) -> None:
        super().__init__()
        if min(input_size, hidden_size, num_layers, horizon) < 1:
            raise ValueError("input_size, hidden_size, num_layers and horizon must all be >= 1")
        self.horizon = horizon
        self.window_norm = window_norm
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = Attention(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon)
        self.highway: nn.Linear | None = None
        if highway:
            if window is None or window < 1:
                raise ValueError("highway=True needs the window length (window >= 1)")
            if highway_init not in HIGHWAY_INITS:
                raise ValueError(f"highway_init must be one of {', '.join(HIGHWAY_INITS)}: {highway_init!r}")
            self.highway = nn.Linear(window, horizon)  # AR weights over the window's target values
            if highway_init == "naive":  # after the default init, so the random stream is unchanged
                with torch.no_grad():
                    self.highway.weight.zero_()
                    self.highway.weight[:, -1] = 1.0  # every step ahead: the last value
                    self.highway.bias.zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map windows ``x [B, T, F]`` to ``(prediction [B, H], attention weights [B, T])``."""
        if self.window_norm:
            mean = x.mean(dim=1, keepdim=True)  # (B, 1, F)
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + WINDOW_NORM_EPS)
            x = (x - mean) / std  # (B, T, F)
        hidden, _ = self.lstm(x)  # (B, T, D): last layer's hidden state at every step
        context, weights = self.attention(hidden)  # (B, D), (B, T)
        prediction = self.head(self.dropout(context))  # (B, H)
        if self.highway is not None:
            prediction = prediction + self.highway(x[:, :, 0])  # (B, T) -> (B, H)
        if self.window_norm:
            prediction = prediction * std[:, :, 0] + mean[:, :, 0]  # back to input units, (B, H)
        return prediction, weights
