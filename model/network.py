"""The Attention-LSTM forecaster.

An LSTM reads a window; additive attention (``score_t = v . tanh(W h_t + b)``, softmax over time)
weights its last layer's hidden states into a context vector, and a linear head maps it to
``horizon`` values ``[B, H]``. Options: ``window_norm`` (RevIN-style per-window normalisation,
so trends can leave the training range) and ``highway`` (an LSTNet linear autoregressive term
over the window's target, started at random or as the naive last value).
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
            ``window`` (the input length).
        highway_init: ``"random"`` (PyTorch's default) or ``"naive"`` (the last value).
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
