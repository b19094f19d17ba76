"""Marking open positions at every print, compiled, inside the venue's pass over the stream.

The engine marks each open position at every print of its symbol, at the print's receive time plus
the feed latency (after every market event of that time, before the items delivered at it), and
checks the daily-loss kill switch after each mark that moved the equity.  Doing that per print in
Python (a heap item, a copy of the event, a callback) cost ~10 us per print and most of the engine's
time on busy held symbols; here a print costs a ring write and, when it is delivered, a few integer
operations on the portfolio's by-symbol arrays (``Portfolio.pu``, ``Portfolio.acc``).

The pass hands control back to Python only where Python has something to do:

- ``R_EQ``: the mark would move the equity at or after the next equity-grid time: the engine samples
  the grid first (it must see the equity before the mark), then calls again;
- ``R_OFF``: the position is marked off the $0.0001 grid (its running sum is a float): the engine
  marks it in Python;
- ``R_KILL``: the mark was applied and the equity is at the daily-loss limit: the engine runs the
  kill switch at the mark's time.

Which prints are queued: those of the symbols with ``venue_nb.MARK_BIT`` in the venue's
subscription mask: the open positions' symbols with zero feed latency (nothing can open or close a
position between a print and its mark then), every symbol otherwise (a fill delivered in between
may open one).

The kill test is the same floating-point expression as ``RiskManager.breached`` over the same
numbers (``cash + (market value / 10^4 + off-grid value) - day start <= -max loss``), so the two
never disagree.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# mi: int64 state
MI_HEAD = 0  # ring entries are counted from 0; the slot of entry c is c % capacity
MI_TAIL = 1
MI_LAT = 2  # feed latency, ns
MI_NEXT_EQ = 3  # next equity-grid time (0: none)
MI_KILL = 4  # 1: check the kill switch after each mark that moves the equity
MI_WHY = 5  # R_* of the last stop
MI_TD = 6  # delivery time of the mark the pass stopped at
MI_S = 7  # its symbol
MI_PX = 8  # its price, $0.0001
MI_N = 9
# mf: float64 inputs of the kill test
MF_CASH = 0
MF_OFF = 1  # market value of the positions marked off the grid
MF_DAY_START = 2
MF_NEG_LOSS = 3  # -max_daily_loss
MF_N = 4

T_NONE = np.iinfo(np.int64).max

R_DONE = 0
R_EQ = 1
R_OFF = 2
R_KILL = 3


def new_marks(feed_latency_ns: int, capacity: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ring, mi, mf): an empty ring of (delivery time, symbol, price) and the pass's state."""
    mi = np.zeros(MI_N, np.int64)
    mi[MI_LAT] = feed_latency_ns
    return np.zeros((capacity, 3), np.int64), mi, np.zeros(MF_N, np.float64)


def ensure_room(ring: np.ndarray, mi: np.ndarray, n: int) -> np.ndarray:
    """The ring, or a larger one holding the same waiting marks, with room for n more."""
    cap = ring.shape[0]
    waiting = int(mi[MI_TAIL] - mi[MI_HEAD])
    if cap - waiting >= n:
        return ring
    new_cap = max(2 * cap, waiting + n)
    out = np.zeros((new_cap, 3), np.int64)
    c = np.arange(mi[MI_HEAD], mi[MI_TAIL])
    out[c % new_cap] = ring[c % cap]
    return out


@njit(cache=True, _nrt=False)
def mark_push(ring, mi, ts: int, s: int, px: int) -> int:
    """Queue the mark of a print; returns its delivery time.  The engine keeps room in the ring for
    every event of the batch it hands the venue (``ensure_room``)."""
    t = mi[MI_TAIL]
    j = t % ring.shape[0]
    td = ts + mi[MI_LAT]
    ring[j, 0] = td
    ring[j, 1] = s
    ring[j, 2] = px
    mi[MI_TAIL] = t + 1
    return td


@njit(cache=True, _nrt=False)
def next_due(ring, mi) -> int:
    """Delivery time of the first queued mark (the largest int64 when none)."""
    if mi[MI_HEAD] < mi[MI_TAIL]:
        return ring[mi[MI_HEAD] % ring.shape[0], 0]
    return T_NONE


@njit(cache=True, _nrt=False)
def mark_flush(ring, mi, mf, pu, acc, upto: int, strict: bool) -> int:
    """Apply the queued marks due before ``upto`` (strict) or at it; returns R_DONE or the R_* that
    needs Python (the entry it names is in mi[MI_TD/MI_S/MI_PX])."""
    cap = ring.shape[0]
    h = mi[MI_HEAD]
    tail = mi[MI_TAIL]
    while h < tail:
        j = h % cap
        td = ring[j, 0]
        if td > upto or (strict and td == upto):
            break
        s = ring[j, 1]
        q = pu[s, 0]
        if q != 0:
            px = ring[j, 2]
            u = pu[s, 1]
            if u != px:
                ne = mi[MI_NEXT_EQ]
                if ne > 0 and td >= ne:
                    mi[MI_HEAD] = h
                    mi[MI_TD] = td
                    mi[MI_WHY] = R_EQ
                    return R_EQ
                if u < 0:
                    mi[MI_HEAD] = h + 1
                    mi[MI_TD] = td
                    mi[MI_S] = s
                    mi[MI_PX] = px
                    mi[MI_WHY] = R_OFF
                    return R_OFF
                d = px - u
                acc[0] += q * d
                acc[1] += (q if q > 0 else -q) * d
                pu[s, 1] = px
                if mi[MI_KILL] != 0:
                    eq = mf[MF_CASH] + (acc[0] / 10_000.0 + mf[MF_OFF])
                    if eq - mf[MF_DAY_START] <= mf[MF_NEG_LOSS]:
                        mi[MI_HEAD] = h + 1
                        mi[MI_TD] = td
                        mi[MI_S] = s
                        mi[MI_WHY] = R_KILL
                        return R_KILL
        h += 1
    mi[MI_HEAD] = h
    return R_DONE
