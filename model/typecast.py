"""Casting YAML / CLI / Ray config values to a dataclass field's type, in one place."""

from __future__ import annotations

import math
from typing import Any

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def cast(kind: str, value: Any) -> Any:
    """Cast ``value`` to ``kind`` ("int", "float", "str" or "bool", as a field type reads).

    Integers must be whole (``12.0`` is 12, ``12.5`` is an error), floats finite, text not a
    list or mapping. Raises ``ValueError`` for anything else.
    """
    try:
        if kind == "bool":
            if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
                return value.strip().lower() in TRUE
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number) or (kind == "int" and number != int(number)):
                raise ValueError
            return int(number) if kind == "int" else number
        if kind == "str" and not isinstance(value, (dict, list, tuple)):
            return str(value)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{value!r} is not a valid {kind}")
