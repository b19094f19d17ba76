"""CPU path: the compiled row loop of :mod:`quantedge.signals.logic` behind a small Python API.

Two entry points:

* :class:`CpuSignals` - the engine's path: output buffers are kept and grown (no per-batch
  allocation), and explain values are computed only for rows that will be emitted (a trigger or a
  score >= ``trigger.emit_min``), stored compactly (``ex_row`` -> ``ex_val``).  Writing the 42
  explain values of every row would cost more than scoring it.
* :func:`step_cpu` - fresh dense arrays with explain values for every row (callers that index the
  explain array by row and signal).
"""

from __future__ import annotations

import numpy as np

from quantedge.signals.logic import N_SIG, N_ST, init_states, signals_step_cpu
from quantedge.signals.types import N_EXPLAIN


def new_state(n_symbols: int) -> np.ndarray:
    """Signal state for ``n_symbols`` symbols (float64, one row each)."""
    st = np.zeros((n_symbols, N_ST))
    init_states(st)
    return st


def allocate_outputs(n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense outputs for ``n_rows`` rows: score (rows, 7) float64, trig (rows, 7) uint8, explain
    (rows, 7, N_EXPLAIN) float64."""
    return (np.zeros((n_rows, N_SIG)), np.zeros((n_rows, N_SIG), np.uint8),
            np.full((n_rows, N_SIG, N_EXPLAIN), np.nan))


def step_cpu(st: np.ndarray, cfg: np.ndarray, ts: np.ndarray, sym: np.ndarray, F: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Score one batch of snapshot rows on the CPU; returns (score, trig, explain, rows skipped) with the
    explain values of every row."""
    n = F.shape[0]
    score, trig, expl = allocate_outputs(n)
    ex_row = np.empty(n, np.int64)
    counts = np.zeros(2, np.int64)
    signals_step_cpu(st, cfg, np.ascontiguousarray(ts, np.int64), np.ascontiguousarray(sym, np.int64),
                     F, n, score, trig, -1.0, ex_row, expl, counts)
    return score, trig, expl, int(counts[0])


class CpuSignals:
    """Reusable CPU buffers for one engine: ``step`` returns views valid until the next call."""

    def __init__(self, n_symbols: int, cfg: np.ndarray) -> None:
        self.st = new_state(n_symbols)
        self.cfg = cfg
        self.counts = np.zeros(2, np.int64)
        self._grow(1024)

    def _grow(self, n: int) -> None:
        self.cap = n
        self.score = np.empty((n, N_SIG))
        self.trig = np.empty((n, N_SIG), np.uint8)
        self.ex_row = np.empty(n, np.int64)
        self.ex_val = np.empty((n, N_SIG, N_EXPLAIN))

    def step(self, ts: np.ndarray, sym: np.ndarray, F: np.ndarray, n: int, ex_min: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Score rows ``[0, n)``; returns (score, trig, ex_row, ex_val, rows skipped) as buffer views."""
        if not n <= min(ts.shape[0], sym.shape[0], F.shape[0]):
            held = f"{ts.shape[0]}, {sym.shape[0]}, {F.shape[0]}"
            raise ValueError(f"{n} rows requested but the arrays hold {held}")
        if n > self.cap:
            self._grow(max(n, 2 * self.cap))
        signals_step_cpu(self.st, self.cfg, ts, sym, F, n, self.score, self.trig, ex_min, self.ex_row,
                         self.ex_val, self.counts)
        m = int(self.counts[1])
        return self.score[:n], self.trig[:n], self.ex_row[:n], self.ex_val[:m], int(self.counts[0])
