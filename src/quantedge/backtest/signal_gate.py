"""The signal lane's compiled parts: which record the strategy's gate delivers next, and the table
of every symbol's latest record per signal.

A day over 2,000 symbols hands the engine ~10^6 signal records; most of them only update what a
strategy remembers (the latest score of each signal) and change no decision.  A strategy says which
records it needs as ``on_signal`` callbacks (``Context.follow_signals`` / ``gate_signals``); the
others are written to the table here, in stream order, when the strategy could know them
(``Context.last_signal`` reads it), with no Python per record.
"""

from __future__ import annotations

import numpy as np
from numba import njit

N_KINDS = 8  # signal codes 1..7 (quantedge.signals.types), indexed directly


@njit(cache=True, _nrt=False)
def next_delivery(sym, sig, score, trig, j: int, follow, min_score, need_trig) -> int:
    """Index of the first record from ``j`` the gate delivers (``len(sym)`` when none): every
    record of a followed symbol; for the others kind k when score >= min_score[k] and, where
    need_trig[k], triggered."""
    n = sym.shape[0]
    while j < n:
        k = sig[j]
        if follow[sym[j]] or (score[j] >= min_score[k] and (trig[j] != 0 or not need_trig[k])):
            return j
        j += 1
    return n


@njit(cache=True, _nrt=False)
def table_apply(t, sym, sig, score, trig, j0: int, j1: int, tab_ts, tab_score, tab_trig) -> None:
    """Records j0..j1-1 (in stream order) become each symbol's latest of their kind."""
    for j in range(j0, j1):
        s = sym[j]
        k = sig[j]
        tab_ts[s, k] = t[j]
        tab_score[s, k] = score[j]
        tab_trig[s, k] = trig[j]


def new_table(n_symbols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visible-from time, score, triggered) per symbol and kind; time -1: no record yet."""
    return (np.full((n_symbols, N_KINDS), -1, np.int64), np.zeros((n_symbols, N_KINDS)),
            np.zeros((n_symbols, N_KINDS), np.uint8))
