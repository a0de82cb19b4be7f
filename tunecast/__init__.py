"""tunecast: hyperparameter search for an Attention-LSTM forecaster, on a laptop or a Ray cluster.

The public front is :class:`TuneCast` (``fit`` / ``predict`` / ``cross_validation`` / ``report`` /
``load``, on long-format frames as Nixtla's libraries use). Its subpackages are
``tunecast.model`` (PyTorch, no Ray), ``tunecast.search`` (the only one that imports Ray and
Optuna), ``tunecast.expdir`` (the experiment directory's contract) and ``tunecast.reports``.
Importing this package imports none of them, nor torch, Ray or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunecast._api import TuneCast
    from tunecast.model.datasets import load_dataset

__all__ = ["TuneCast", "load_dataset"]


def __getattr__(name: str) -> Any:  # imported on first use: `import tunecast.reports` stays light
    if name == "TuneCast":
        from tunecast._api import TuneCast

        return TuneCast
    if name == "load_dataset":
        from tunecast.model.datasets import load_dataset

        return load_dataset
    raise AttributeError(f"module 'tunecast' has no attribute '{name}'")
