"""Latency models: how long an order takes to reach the venue (and a fill report to come back).

Both are seeded so a backtest is reproducible.  ``EmpiricalLatency`` draws from measured samples
(for example round trips logged by the live venue adapter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """``{"constant_us": 250}``, ``{"empirical_us": [..]}`` / ``{"empirical_file": path}`` or ns int."""
    if d is None:
        return ConstantLatency(0)
    if isinstance(d, int | float):
        return ConstantLatency(int(d))
    if "constant_us" in d:
        return ConstantLatency(int(float(d["constant_us"]) * 1000))
    if "constant_ns" in d:
        return ConstantLatency(int(d["constant_ns"]))
    if "empirical_us" in d:
        return EmpiricalLatency(
            (np.asarray(d["empirical_us"], dtype=np.float64) * 1000).astype(np.int64), int(d.get("seed", 0))
        )
    if "empirical_file" in d:
        vals = np.loadtxt(d["empirical_file"], dtype=np.float64, ndmin=1)
        return EmpiricalLatency((vals * 1000).astype(np.int64), int(d.get("seed", 0)))
    raise ValueError(f"latency: expected constant_us, constant_ns, empirical_us or empirical_file, got {d}")
