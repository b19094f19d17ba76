"""Per-venue quotes (TAQ exchange quotes, Level 2 market makers) aggregated into consolidated levels.

Each KIND_QUOTE event with ``venue != 0`` is one side of one venue's top of book: ``price`` and
``size`` replace that venue's previous quote on that side (price <= 0 or size <= 0: the venue has no
quote there).  The consolidated book (the LevelBook arrays) holds, per price, the summed size of the
venues quoting it (``LV_SZ``) and how many venues quote it (``LV_AUX``); level 0 of each side is the
NBBO.  Locked (bid == ask) and crossed (bid > ask) markets are legal transient states across venues:
they are kept as quoted, flagged in ``B_FLAGS`` (F_LOCKED / F_CROSSED) and counted on entry
(A_LOCKED / A_CROSSED), never "fixed".  Only the NBBO level is fully known: deeper consolidated
levels hold each venue's top only, not the depth the venues show behind it.

Venue ids map to per-book slots through ``vslot`` (shared by all symbols, -1 = unassigned, the last
element counts the slots used); a venue beyond the slot capacity is counted (A_CAPACITY) and skipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_SYMBOL,
    A_CAPACITY,
    B_LAST_TS,
    C_EVENTS,
    HZ_NONE_ASK,
    HZ_NONE_BID,
    LV_AUX,
    LV_KNOWN,
    LV_SZ,
    SD_HZ,
    SD_NLEV,
    LevelBook,
    anomaly,
    check_cross,
    check_tick,
    find_level,
    insert_level,
    mark_levels,
    remove_level,
    side_index,
    status_event,
)

KIND_STATUS = 2
KIND_QUOTE = 5
N_VENUE_IDS = 1 << 15


@njit(cache=True, _nrt=False)
def _fix_known(lv, sd, s: int, si: int) -> None:
    n = sd[s, si, SD_NLEV]
    if n > 0:
        lv[s, si, 0, LV_KNOWN] = 1
    if n > 1:
        lv[s, si, 1, LV_KNOWN] = 0
    mark_levels(sd, s, si, 0, 2)


@njit(cache=True, _nrt=False)
def venue_event(lv, sd, bk, vq, vslot, s: int, kind: int, action: int, venue: int, side: int, price: int,
                size: int, ts: int) -> int:
    if kind == KIND_STATUS:
        status_event(bk, s, action)
    elif kind == KIND_QUOTE:
        if venue == 0:
            return 0
        si = side_index(side)
        if si < 0 or venue < 0 or size < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        v = vslot[venue]
        if v < 0:
            used = vslot[N_VENUE_IDS]
            if used >= vq.shape[1]:
                anomaly(bk, s, A_CAPACITY)
                return 0
            v = used
            vslot[venue] = v
            vslot[N_VENUE_IDS] = used + 1
        op = vq[s, v, si, 0]
        oq = vq[s, v, si, 1]
        if op > 0 and oq > 0:
            i = find_level(lv, sd, s, si, op)
            if i >= 0:
                lv[s, si, i, LV_SZ] -= oq
                lv[s, si, i, LV_AUX] -= 1
                mark_levels(sd, s, si, i, i + 1)
                if lv[s, si, i, LV_AUX] <= 0:
                    remove_level(lv, sd, s, si, i)
        if price > 0 and size > 0:
            check_tick(bk, s, price)
            i = find_level(lv, sd, s, si, price)
            if i >= 0:
                lv[s, si, i, LV_SZ] += size
                lv[s, si, i, LV_AUX] += 1
                mark_levels(sd, s, si, i, i + 1)
            else:
                insert_level(lv, sd, bk, s, si, -i - 1, price, size, 1, 0, True)
            vq[s, v, si, 0] = price
            vq[s, v, si, 1] = size
        else:
            vq[s, v, si, 0] = 0
            vq[s, v, si, 1] = 0
        _fix_known(lv, sd, s, si)
        check_cross(lv, sd, bk, s)
    else:
        return 0
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts
    return 1


@njit(cache=True, _nrt=False)
def venue_step(lv, sd, bk, vq, vslot, batch) -> int:
    """Apply a batch of per-venue quotes to every consolidated book; returns events handled."""
    ns = lv.shape[0]
    applied = 0
    for i in range(batch.shape[0]):
        e = batch[i]
        k = e.kind
        if k != KIND_QUOTE and k != KIND_STATUS:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        applied += venue_event(lv, sd, bk, vq, vslot, s, k, e.action, e.venue, e.side, e.price, e.size,
                               e.ts_event)
    return applied


class VenueBook(LevelBook):
    """Consolidated books from per-venue quotes; ``vq`` (n, venues, 2, [px, sz]) holds each venue's quote."""

    vq: np.ndarray
    vslot: np.ndarray

    @classmethod
    def allocate(cls, n_symbols: int, capacity: int = 32, n_venues: int = 32, tick: int = 100) -> VenueBook:
        base = LevelBook.allocate(n_symbols, capacity, 0, tick, True)
        base.sd[:, 0, SD_HZ] = HZ_NONE_BID  # empty slots are never known: venues show tops only
        base.sd[:, 1, SD_HZ] = HZ_NONE_ASK
        book = cls(base.lv, base.sd, base.bk)
        book.vq = np.zeros((n_symbols, n_venues, 2, 2), dtype=np.int64)
        book.vslot = np.full(N_VENUE_IDS + 1, -1, dtype=np.int64)
        book.vslot[N_VENUE_IDS] = 0
        return book

    def step(self, batch: np.ndarray) -> int:
        return int(venue_step(self.lv, self.sd, self.bk, self.vq, self.vslot, batch))

    def nbbo(self) -> np.ndarray:
        """(n, 4) best bid px, bid size, best ask px, ask size (0 where a side is empty)."""
        out = np.zeros((self.n_symbols, 4), dtype=np.int64)
        has_b = self.sd[:, 0, SD_NLEV] > 0
        has_a = self.sd[:, 1, SD_NLEV] > 0
        out[has_b, 0] = self.lv[has_b, 0, 0, 0]
        out[has_b, 1] = self.lv[has_b, 0, 0, LV_SZ]
        out[has_a, 2] = self.lv[has_a, 1, 0, 0]
        out[has_a, 3] = self.lv[has_a, 1, 0, LV_SZ]
        return out
