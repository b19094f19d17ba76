"""Typed values for the backtest config's dataclass sections (risk, fees, execution).

YAML gives strings where a user typed ``abc`` and any number where they typed ``-5``; a config error
must name the key, not surface later as a comparison of ``int`` and ``str`` deep in a run."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

_MISSING = dataclasses.MISSING


def _to_float(v: object) -> float:
    """A config value as a float; NaN for a bool (YAML's yes/no) or anything that is no number."""
    if isinstance(v, bool):
        return math.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def typed_fields(cls: type, d: dict, section: str, non_negative: bool = True) -> dict[str, Any]:
    """``d`` with every value of a numeric field of dataclass ``cls`` (a field whose default is an int
    or a float) converted to that type: ``int`` fields take whole numbers only, no field takes a
    bool, NaN or infinity, and with ``non_negative`` none takes a value below 0.  Raises ValueError
    naming ``section.key``; other fields pass through unchanged."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not _MISSING}
    out = dict(d)
    for k, v in d.items():
        dv = defaults.get(k)
        if isinstance(dv, bool) or not isinstance(dv, int | float):
            continue
        want = "a whole number" if isinstance(dv, int) else "a number"
        v = _to_float(v)
        if not math.isfinite(v):
            raise ValueError(f"{section}.{k}: expected {want}, got {d[k]!r}")
        if isinstance(dv, int):
            if float(v) != int(v):
                raise ValueError(f"{section}.{k}: expected {want}, got {d[k]!r}")
            v = int(v)
        else:
            v = float(v)
        if non_negative and v < 0:
            raise ValueError(f"{section}.{k}: must be >= 0, got {d[k]!r}")
        out[k] = v
    return out


def config_number(v: object, key: str, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``positive``) from a config value, or a ValueError naming ``key``."""
    x = _to_float(v)
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ValueError(f"{key}: expected a number {'> 0' if positive else '>= 0'}, got {v!r}")
    return x
