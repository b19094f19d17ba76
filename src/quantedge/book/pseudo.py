"""Pseudo-L2 from Level 1 (NBBO quotes) and trades, for symbols without a depth feed (e.g. NEPT).

State per side (LevelBook arrays): level 0 is the current touch with its *estimated* remaining size;
deeper levels are earlier touch prices the quote moved away from, with the size last estimated there
(stale memories, never known).  Dynamics:

* quote, same price: a known size (> 0 and not FLAG_FROM_TRADE) replaces the estimate and makes the
  touch known again; if it rises after prints depleted the touch, that is a refill (SD_REFILLS).
* quote, better price: the old touch moves down to level 1 (stale); the new touch starts at the
  quoted size (unknown when the quote carries no size).
* quote, worse price: touch levels better than it are cleared (SD_CLEARED); a remembered level at
  the new price becomes the touch.
* trade at the touch (bid for prints at/below the bid, ask at/above the ask) depletes the estimate
  (SD_DEPLETED, SD_TOUCH_VOL); shares printed beyond the estimate are hidden/iceberg volume
  (SD_HIDDEN); a print through the touch clears the levels it passed.  Off-exchange prints
  (COND_OFF_EXCHANGE or a TRF/ADF venue), corrections, average-price and out-of-sequence prints do
  not touch lit depth; prints inside the spread or on a locked/crossed NBBO are left alone.

Limits (see docs/books.md): depth behind the touch is never observed; the estimate assumes prints
hit displayed size before hidden size; quote updates between prints are only as fine as the feed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_SYMBOL,
    B_LAST_TS,
    C_EVENTS,
    HZ_NONE_ASK,
    HZ_NONE_BID,
    LV_KNOWN,
    LV_PX,
    LV_SZ,
    SD_CLEARED,
    SD_DEPLETED,
    SD_HIDDEN,
    SD_HZ,
    SD_NLEV,
    SD_REFILLS,
    SD_TOUCH_VOL,
    LevelBook,
    anomaly,
    better,
    check_cross,
    check_tick,
    clear_side,
    find_level,
    insert_level,
    mark_levels,
    remove_level,
    side_index,
    status_event,
)

KIND_CLEAR = 1
KIND_STATUS = 2
KIND_QUOTE = 5
KIND_TRADE = 6
FLAG_FROM_TRADE = 0x04
COND_SKIP = (1 << 3) | (1 << 5) | (1 << 6) | (1 << 9)  # off-exchange, out of seq, correction, avg px


@njit(cache=True, _nrt=False)
def _quote(lv, sd, bk, s: int, si: int, price: int, size: int, size_known: bool) -> None:
    mark_levels(sd, s, si, 0, 1)  # the touch is written in place below (inserts/removals mark themselves)
    if price <= 0:
        n = sd[s, si, SD_NLEV]
        for _ in range(n):
            remove_level(lv, sd, s, si, 0)
        sd[s, si, SD_DEPLETED] = 0
        return
    check_tick(bk, s, price)
    i = find_level(lv, sd, s, si, price)
    if i == 0:
        if size_known:
            if size > lv[s, si, 0, LV_SZ] and sd[s, si, SD_DEPLETED] > 0:
                sd[s, si, SD_REFILLS] += 1
            lv[s, si, 0, LV_SZ] = size
            lv[s, si, 0, LV_KNOWN] = 1
            sd[s, si, SD_DEPLETED] = 0
        return
    if i < 0 and -i - 1 == 0:  # better than the touch (or side empty)
        if sd[s, si, SD_NLEV] > 0:
            lv[s, si, 0, LV_KNOWN] = 0
        insert_level(lv, sd, bk, s, si, 0, price, size if size_known else 0, 0, 1 if size_known else 0,
                     False)
        sd[s, si, SD_DEPLETED] = 0
        return
    # worse than the touch: clear what lies in front
    while sd[s, si, SD_NLEV] > 0 and better(si, lv[s, si, 0, LV_PX], price):
        remove_level(lv, sd, s, si, 0)
        sd[s, si, SD_CLEARED] += 1
    if sd[s, si, SD_NLEV] > 0 and lv[s, si, 0, LV_PX] == price:
        if size_known:
            lv[s, si, 0, LV_SZ] = size
        lv[s, si, 0, LV_KNOWN] = 1 if size_known else 0
    else:
        insert_level(lv, sd, bk, s, si, 0, price, size if size_known else 0, 0, 1 if size_known else 0,
                     False)
    sd[s, si, SD_DEPLETED] = 0


@njit(cache=True, _nrt=False)
def _deplete(lv, sd, s: int, si: int, price: int, size: int) -> None:
    while sd[s, si, SD_NLEV] > 0 and better(si, lv[s, si, 0, LV_PX], price):
        remove_level(lv, sd, s, si, 0)  # traded through
        sd[s, si, SD_CLEARED] += 1
    if sd[s, si, SD_NLEV] == 0 or lv[s, si, 0, LV_PX] != price:
        return
    have = lv[s, si, 0, LV_SZ]
    mark_levels(sd, s, si, 0, 1)
    sd[s, si, SD_DEPLETED] += size
    sd[s, si, SD_TOUCH_VOL] += size
    if lv[s, si, 0, LV_KNOWN] == 1 or have > 0:
        if size > have:
            sd[s, si, SD_HIDDEN] += size - have
            lv[s, si, 0, LV_SZ] = 0
        else:
            lv[s, si, 0, LV_SZ] = have - size
    lv[s, si, 0, LV_KNOWN] = 0


@njit(cache=True, _nrt=False)
def pseudo_event(lv, sd, bk, s: int, kind: int, action: int, side: int, price: int, size: int, cond: int,
                 venue: int, flags: int, ts: int) -> int:
    if kind == KIND_QUOTE:
        si = side_index(side)
        if si < 0 or size < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        known = size > 0 and not (flags & FLAG_FROM_TRADE)
        _quote(lv, sd, bk, s, si, price, size, known)
        check_cross(lv, sd, bk, s)
    elif kind == KIND_TRADE:
        if price <= 0 or size <= 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        if (cond & COND_SKIP) or venue == 15 or venue == 19 or venue == 24:
            return 0
        nb = sd[s, 0, SD_NLEV]
        na = sd[s, 1, SD_NLEV]
        at_bid = nb > 0 and price <= lv[s, 0, 0, LV_PX]
        at_ask = na > 0 and price >= lv[s, 1, 0, LV_PX]
        if at_bid and not at_ask:
            _deplete(lv, sd, s, 0, price, size)
        elif at_ask and not at_bid:
            _deplete(lv, sd, s, 1, price, size)
        else:
            return 0
    elif kind == KIND_STATUS:
        status_event(bk, s, action)
    elif kind == KIND_CLEAR:
        for si in range(2):
            if side == 0 or side_index(side) == si:
                clear_side(lv, sd, s, si)
                sd[s, si, SD_HZ] = HZ_NONE_BID if si == 0 else HZ_NONE_ASK
    else:
        return 0
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts
    return 1


@njit(cache=True, _nrt=False)
def pseudo_step(lv, sd, bk, batch) -> int:
    """Apply NBBO quotes and trades to every pseudo-L2 book; returns events that changed state."""
    ns = lv.shape[0]
    applied = 0
    for i in range(batch.shape[0]):
        e = batch[i]
        k = e.kind
        if k != KIND_QUOTE and k != KIND_TRADE and k != KIND_STATUS and k != KIND_CLEAR:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        applied += pseudo_event(lv, sd, bk, s, k, e.action, e.side, e.price, e.size, e.conditions, e.venue,
                                e.flags, e.ts_event)
    return applied


class PseudoBook(LevelBook):
    """Estimated touch depth from L1 + trades (see the module docstring for the model and limits)."""

    @classmethod
    def allocate(cls, n_symbols: int, capacity: int = 8, tick: int = 0) -> PseudoBook:
        """tick defaults to 0 (no grid check): L1 feeds of sub-dollar names quote on finer grids."""
        base = LevelBook.allocate(n_symbols, capacity, 0, tick, False)
        return cls(base.lv, base.sd, base.bk)

    def step(self, batch: np.ndarray) -> int:
        return int(pseudo_step(self.lv, self.sd, self.bk, batch))


