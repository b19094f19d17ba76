"""CPU path: the compiled row loop of :mod:`quantedge.signals.logic` behind a small Python API."""

from __future__ import annotations

import numpy as np

from quantedge.signals.logic import N_SIG, init_states, signals_step_cpu
from quantedge.signals.types import N_EXPLAIN


def new_state(n_symbols: int) -> np.ndarray:
    """Signal state for ``n_symbols`` symbols (float64, one row each)."""
    from quantedge.signals.logic import N_ST

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
    """Score one batch of snapshot rows on the CPU; returns (score, trig, explain, rows skipped)."""
    score, trig, expl = allocate_outputs(F.shape[0])
    bad = signals_step_cpu(st, cfg, ts, sym, F, score, trig, expl)
    return score, trig, expl, int(bad)
