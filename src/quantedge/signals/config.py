"""Signal configuration: every threshold and window in one table, loaded from YAML and validated.

The table :data:`PARAMS` is the single source of truth: it gives each parameter's section, key,
default, unit, allowed range and meaning.  ``config/strategy_params.yaml`` mirrors it (a test keeps
the two in step).  The compiled kernels read a flat float64 vector (:func:`SignalConfig.vector`)
whose positions are the ``C_*`` constants below, so CPU and GPU kernels see the same numbers.

A bad file never reaches the kernels: unknown sections/keys, non-numeric values and values outside
their range raise :class:`SignalConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from quantedge import CONFIG_DIR
from quantedge.signals.logic import INDEX, PARAMS, SECTIONS

#: Sections that are signals (each has its own ``on_score``).
SIGNAL_SECTIONS = tuple(sec for sec in SECTIONS if f"{sec}.on_score" in INDEX)
#: ``trigger.on_score`` is shorthand for every signal's ``on_score`` (a signal's own key wins).
ON_SCORE_ALL = "trigger.on_score"

#: Pairs (lo, hi) that must be ordered lo < hi.
ORDERED = (
    ("absorption.sell_share_lo", "absorption.sell_share_hi"),
    ("absorption.rel_volume_lo", "absorption.rel_volume_hi"),
    ("absorption.refills_lo", "absorption.refills_hi"),
    ("creep.buy_share_lo", "creep.buy_share_hi"),
    ("creep.lit_share_lo", "creep.lit_share_hi"),
    ("creep.depth_imbalance_lo", "creep.depth_imbalance_hi"),
    ("dark_pool.lit_share_full", "dark_pool.max_lit_share"),
    ("dark_pool.rel_volume_lo", "dark_pool.rel_volume_hi"),
    ("dark_pool.buy_share_lo", "dark_pool.buy_share_hi"),
    ("sinkhole.sell_share_lo", "sinkhole.sell_share_hi"),
    ("sinkhole.rel_volume_lo", "sinkhole.rel_volume_hi"),
    ("sinkhole.depth_imbalance_lo", "sinkhole.depth_imbalance_hi"),
    ("contraction.imbalance_lo", "contraction.imbalance_hi"),
    ("contraction.touch_depth_lo", "contraction.touch_depth_hi"),
    ("exit.drop_lo_bps", "exit.drop_hi_bps"),
    ("exit.sell_share_lo", "exit.sell_share_hi"),
    ("exit.spread_ratio_lo", "exit.spread_ratio_hi"),
    ("exit.bid_flight_lo", "exit.bid_flight_hi"),
) + tuple(("trigger.off_score", f"{sec}.on_score") for sec in SIGNAL_SECTIONS)

DEFAULT_PATH = CONFIG_DIR / "strategy_params.yaml"


class SignalConfigError(ValueError):
    """A bad signal configuration: the message names the file and the dotted key."""


@dataclass
class SignalConfig:
    """Validated parameter values by dotted name (``section.key``); defaults fill what is absent."""

    values: dict[str, float] = field(default_factory=lambda: {p.name: p.default for p in PARAMS})
    source: str = "defaults"

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def vector(self) -> np.ndarray:
        """The flat float64 vector the kernels read (positions: :data:`INDEX`)."""
        return np.array([self.values[p.name] for p in PARAMS], dtype=np.float64)

    def with_values(self, **updates: float) -> SignalConfig:
        """A copy with some values replaced (keys as ``section__key``), validated."""
        vals = dict(self.values)
        for k, v in updates.items():
            name = k.replace("__", ".", 1)
            if name == ON_SCORE_ALL:
                _check(ON_SCORE_ALL, v, self.source)
                for sec in SIGNAL_SECTIONS:
                    vals[f"{sec}.on_score"] = v
            else:
                vals[name] = v
        return from_mapping(_nest(vals), self.source)

    def to_mapping(self) -> dict[str, dict[str, float]]:
        return _nest(self.values)

    def with_mapping(self, overrides: Any, source: str = "<overrides>") -> SignalConfig:
        """A copy with a nested ``{section: {key: number}}`` mapping laid over it, validated like a
        YAML file (``trigger.on_score`` sets every signal's on_score the mapping does not set)."""
        if overrides is None:
            return self
        if not isinstance(overrides, dict) or not all(isinstance(v, dict | None) for v in overrides.values()):
            raise SignalConfigError(
                f"{source}: expected a mapping {{section: {{key: number}}}}, got {overrides!r}")
        merged = self.to_mapping()
        on_all = (overrides.get("trigger") or {}).get("on_score")
        for sec, body in overrides.items():
            for key, v in (body or {}).items():
                if f"{sec}.{key}" != ON_SCORE_ALL:
                    merged.setdefault(sec, {})[key] = v
        if on_all is not None:
            _check(ON_SCORE_ALL, on_all, source)
            for sec in SIGNAL_SECTIONS:
                if "on_score" not in (overrides.get(sec) or {}):
                    merged[sec]["on_score"] = on_all
        return from_mapping(merged, source)


def _nest(flat: dict[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, v in flat.items():
        sec, key = name.split(".", 1)
        out.setdefault(sec, {})[key] = v
    return out


def from_mapping(data: Any, source: str = "<mapping>") -> SignalConfig:
    """Validate a nested mapping ``{section: {key: number}}``; a top-level ``signals:`` wrapper is allowed."""
    if data is None:
        data = {}
    if isinstance(data, dict) and set(data) == {"signals"}:
        data = data["signals"] or {}
    if not isinstance(data, dict):
        raise SignalConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    values = {p.name: p.default for p in PARAMS}
    explicit: set[str] = set()
    on_all: float | None = None
    for sec, body in data.items():
        if sec not in SECTIONS:
            raise SignalConfigError(f"{source}: unknown section {sec!r} (known: {', '.join(SECTIONS)})")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise SignalConfigError(f"{source}: section {sec!r} must be a mapping, got {type(body).__name__}")
        for key, raw in body.items():
            name = f"{sec}.{key}"
            if name == ON_SCORE_ALL:
                on_all = _check(name, raw, source)
                continue
            if name not in INDEX:
                known = ", ".join(p.key for p in PARAMS if p.section == sec)
                raise SignalConfigError(f"{source}: unknown key {name!r} (known in {sec}: {known})")
            values[name] = _check(name, raw, source)
            explicit.add(name)
    if on_all is not None:
        for sec in SIGNAL_SECTIONS:
            if f"{sec}.on_score" not in explicit:
                values[f"{sec}.on_score"] = on_all
    for lo, hi in ORDERED:
        if not values[lo] < values[hi]:
            raise SignalConfigError(f"{source}: {lo} ({values[lo]:g}) must be below {hi} ({values[hi]:g})")
    return SignalConfig(values, source)


def _check(name: str, raw: Any, source: str) -> float:
    """One value, checked against its parameter's range (``trigger.on_score``: a signal's on_score range)."""
    p = PARAMS[INDEX["absorption.on_score" if name == ON_SCORE_ALL else name]]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SignalConfigError(f"{source}: {name} must be a number ({p.unit}), got {raw!r}")
    v = float(raw)
    if not np.isfinite(v) or not p.lo <= v <= p.hi:
        raise SignalConfigError(f"{source}: {name} = {raw!r} is outside [{p.lo:g}, {p.hi:g}] ({p.unit})")
    return v


def load_config(path: str | Path | None = None) -> SignalConfig:
    """Load and validate a YAML parameter file (``None``: the project's config/strategy_params.yaml
    when present, else the built-in defaults)."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return SignalConfig()
        path = DEFAULT_PATH
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SignalConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SignalConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    return from_mapping(data, str(path))


def render_yaml(config: SignalConfig | None = None) -> str:
    """The default parameter file, documented (what config/strategy_params.yaml holds); with
    ``config``, the same file holding that config's values (the comments keep the defaults' ranges)."""
    lines = ["# Signal thresholds and windows (quantedge.signals). Units in the comments.",
             "# Every key is optional: an absent key takes the default shown here." if config is None else
             "# Every key is optional: an absent key takes the built-in default.",
             "# Validation: unknown keys, non-numbers and out-of-range values are errors naming the key.",
             "# trigger.on_score (not listed) sets every signal's on_score at once; a signal's own key wins.",
             "signals:"]
    for sec in SECTIONS:
        lines.append(f"  {sec}:")
        for p in PARAMS:
            if p.section == sec:
                doc = f"  # {p.unit}; {p.doc}" if p.doc else f"  # {p.unit}"
                v = config[p.name] if config is not None else p.default
                lines.append(f"    {p.key}: {_yaml_number(v)}{doc} [{p.lo:g}, {p.hi:g}]")
    return "\n".join(lines) + "\n"


def _yaml_number(v: float) -> str:
    """A value YAML reads back as the same float: the short form when it is exact, else the shortest
    round-trip form, with a mantissa dot (YAML 1.1 reads ``5e-05`` as a string)."""
    short = f"{v:g}"
    if "e" not in short and float(short) == v:
        return short
    r = repr(float(v))
    if "e" in r and "." not in r.split("e")[0]:
        m, e = r.split("e")
        r = f"{m}.0e{e}"
    return r
