"""Kubernetes resource quantities (``500m``, ``8``, ``31Gi``, ``1.5e3``) as exact integers.

Parsed exactly (``Fraction``) and rounded up as Kubernetes does, within the int64 range the API
server stores them in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Final

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?"
)
_BINARY: Final[Mapping[str, int]] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: Final[Mapping[str, Fraction]] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Kubernetes stores quantities in an int64 (in the unit asked for); anything larger is not a
# real node or pod. Bounding the exponent also keeps "1e999999" from building a giant integer.
_MAX_VALUE: Final = 2**63 - 1
_MAX_EXPONENT: Final = 30
_MAX_TEXT: Final = 64


def _quantity(value: str | int | float) -> Fraction:
    """Exact value of a Kubernetes quantity (``500m``, ``8``, ``31Gi``, ``1.5e3``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        number = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a quantity: {value!r}")
        number = Fraction(value)
    elif isinstance(value, str):
        number = _parse_quantity_text(value)
    else:
        raise ValueError(f"not a quantity: {type(value).__name__}")
    if number < 0:
        raise ValueError(f"quantity must not be negative: {value!r}")
    return number


def _parse_quantity_text(text: str) -> Fraction:
    text = text.strip()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"quantity too long: {text[:_MAX_TEXT]!r}…")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise ValueError(f"quantity out of range: {text!r}")
    return number * Fraction(10) ** exponent


def _bounded(result: int, value: object) -> int:
    if result > _MAX_VALUE:
        raise ValueError(f"quantity out of range: {value!r}")
    return result


def parse_quantity_cpu(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up like Kubernetes: ``"250m"`` → 250, ``"2"`` → 2000."""
    return _bounded(math.ceil(_quantity(value) * 1000), value)


def parse_quantity_bytes(value: str | int | float) -> int:
    """Memory or storage quantity in bytes, rounded up: ``"1Gi"`` → 1073741824, ``"1k"`` → 1000."""
    return _bounded(math.ceil(_quantity(value)), value)
