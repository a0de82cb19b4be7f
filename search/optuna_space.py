"""A :class:`~search.space.Param` as an Optuna distribution (for the searcher and importances)."""

from __future__ import annotations

from typing import Any

from tunecast.search.space import Param


def distribution(param: Param) -> Any:
    """The Optuna distribution of a sampled :class:`Param`."""
    from optuna import distributions as od

    if param.type == "int":
        return od.IntDistribution(int(param.low or 0), int(param.high or 0), log=param.log)
    if param.type == "float":
        return od.FloatDistribution(float(param.low or 0), float(param.high or 0), log=param.log)
    if param.type == "categorical":
        return od.CategoricalDistribution(list(param.choices))
    raise ValueError(f"a {param.type} parameter is not sampled")
