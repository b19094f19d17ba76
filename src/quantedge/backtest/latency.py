"""Latency models: how long an order takes to reach the venue (and a fill report to come back).

Both are seeded so a backtest is reproducible.  ``EmpiricalLatency`` draws from measured samples
(for example round trips logged by the live venue adapter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantedge.backtest.fields import config_number


@dataclass
class ConstantLatency:
    ns: int = 0

    def sample(self) -> int:
        return int(self.ns)


class EmpiricalLatency:
    """Draw latencies (ns) uniformly from observed samples."""

    def __init__(self, samples_ns: np.ndarray | list[int], seed: int = 0) -> None:
        a = np.asarray(samples_ns, dtype=np.int64)
        if a.size == 0 or (a < 0).any():
            raise ValueError("empirical latency needs at least one sample, all >= 0 ns")
        self.samples = a
        self.rng = np.random.default_rng(seed)

    def sample(self) -> int:
        return int(self.samples[self.rng.integers(0, self.samples.size)])


def latency_from_config(d: dict | int | None) -> ConstantLatency | EmpiricalLatency:
    """``{"constant_us": 250}``, ``{"empirical_us": [..]}`` / ``{"empirical_file": path}`` or ns int.
    Errors name the ``order_latency`` key (latency is never negative: an order cannot arrive before
    it was sent)."""
    if d is None:
        return ConstantLatency(0)
    if isinstance(d, int | float) and not isinstance(d, bool):
        return ConstantLatency(int(config_number(d, "order_latency")))
    if not isinstance(d, dict):
        raise ValueError(f"order_latency: expected a mapping like {{constant_us: 500}}, got {d!r}")
    if "constant_us" in d:
        return ConstantLatency(int(config_number(d["constant_us"], "order_latency.constant_us") * 1000))
    if "constant_ns" in d:
        return ConstantLatency(int(config_number(d["constant_ns"], "order_latency.constant_ns")))
    if "empirical_us" in d:
        try:
            us = np.asarray(d["empirical_us"], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError("order_latency.empirical_us: expected a list of numbers, "
                             f"got {d['empirical_us']!r}") from None
        return _empirical(us, "order_latency.empirical_us", d)
    if "empirical_file" in d:
        key = f"order_latency.empirical_file: {d['empirical_file']}"
        try:
            vals = np.loadtxt(d["empirical_file"], dtype=np.float64, ndmin=1)
        except (OSError, ValueError) as e:
            raise ValueError(f"{key}: {e}") from None
        return _empirical(vals, key, d)
    raise ValueError("order_latency: expected constant_us, constant_ns, empirical_us or empirical_file, "
                     f"got {d}")


def _empirical(us: np.ndarray, key: str, d: dict) -> EmpiricalLatency:
    """Samples in microseconds (finite, >= 0, at least one) as an :class:`EmpiricalLatency`."""
    if us.size == 0 or not np.isfinite(us).all() or (us < 0).any():
        raise ValueError(f"{key}: needs at least one sample (microseconds), all finite and >= 0")
    return EmpiricalLatency((us * 1000).astype(np.int64), int(d.get("seed", 0)))
