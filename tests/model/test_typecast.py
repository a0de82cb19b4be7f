import math

import pytest

from tunecast.model.typecast import cast


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("int", "12", 12),
        ("int", 12.0, 12),
        ("float", "1e-3", 1e-3),
        ("str", 5, "5"),
        ("bool", "yes", True),
        ("bool", "off", False),
        ("bool", True, True),
    ],
)
def test_casts(kind, value, expected):
    result = cast(kind, value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", 12.5),
        ("int", "a"),
        ("int", True),
        ("float", math.nan),
        ("float", "inf"),
        ("str", [1]),
        ("bool", "maybe"),
        ("float", None),
    ],
)
def test_rejects(kind, value):
    with pytest.raises(ValueError, match="is not a valid"):
        cast(kind, value)
