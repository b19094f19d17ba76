"""Feature snapshots at a fixed event-time cadence, into preallocated buffers.

The fused kernels write a snapshot for symbol s when its first event at or after a cadence
boundary arrives: the row is the feature vector *as of the boundary* (its ``ts``), as if the
windows had been advanced there (``kernels.derive_at``).  A symbol that is silent across several
boundaries gets one row, at the last boundary before its next event ("every cadence of event time a
symbol is active").

When the buffer is full the kernel stops before the event that needed the row and returns its
index; :class:`Sampler` drains the buffer into its chunk list and the kernel resumes there, so
output never depends on buffer size or batch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quantedge.features.state import FEATURE_NAMES, NF


@dataclass
class Snapshots:
    """Sampled rows: ``ts`` (boundary, ns), ``symbol`` (int32 id), ``F`` (rows, NF) float64."""

    ts: np.ndarray
    symbol: np.ndarray
    F: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def column(self, name: str) -> np.ndarray:
        return self.F[:, FEATURE_NAMES.index(name)]


@dataclass
class Sampler:
    """Preallocated snapshot buffer plus the rows drained from it so far."""

    capacity: int = 65_536
    ts: np.ndarray = field(init=False)
    symbol: np.ndarray = field(init=False)
    F: np.ndarray = field(init=False)
    n: np.ndarray = field(init=False)
    _chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"sampler capacity must be >= 1, got {self.capacity}")
        self.ts = np.zeros(self.capacity, np.int64)
        self.symbol = np.zeros(self.capacity, np.int32)
        self.F = np.zeros((self.capacity, NF), np.float64)
        self.n = np.zeros(1, np.int64)

    def drain(self) -> None:
        """Move the rows in the buffer to the chunk list and empty the buffer."""
        k = int(self.n[0])
        if k:
            self._chunks.append((self.ts[:k].copy(), self.symbol[:k].copy(), self.F[:k].copy()))
            self.n[0] = 0

    def collect(self) -> Snapshots:
        """Every row sampled so far (drains the buffer)."""
        self.drain()
        if not self._chunks:
            return Snapshots(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, NF)))
        ts, sym, F = zip(*self._chunks, strict=True)
        return Snapshots(np.concatenate(ts), np.concatenate(sym), np.concatenate(F))


def null_sampler() -> Sampler:
    """A sampler for runs with sampling disabled (cadence 0): never written."""
    return Sampler(capacity=1)
