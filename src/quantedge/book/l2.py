"""Market-by-price (L2) books updated by KIND_DEPTH and KIND_CLEAR events.

Two addressing modes, chosen per event by ``level``:

* by price (``level == -1``): ``size`` is the new total at ``price``; 0 removes the level
  (IQFeed price-level summary/update/delete, Databento MBP).  A level updated inside the known
  horizon is known; one outside it has an exact size but possibly unseen levels in front of it, so
  it stays unknown.
* by position (``level >= 0``, IQFeed/IB-style depth): ACTION_ADD inserts at index ``level``
  shifting deeper levels down, ACTION_MODIFY sets price and size at the index, ACTION_DELETE
  removes the index shifting deeper levels up.  Indexes the book does not have are counted
  (A_BAD_INDEX) and skipped; an update that breaks price order is applied as sent and counted
  (A_UNSORTED).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_INDEX,
    A_BAD_SYMBOL,
    A_UNSORTED,
    B_LAST_TS,
    BISECT_FROM,
    C_CLEARS,
    C_EVENTS,
    LV_KNOWN,
    LV_PX,
    LV_SZ,
    SD_HZ,
    SD_NLEV,
    LevelBook,
    anomaly,
    apply_window,
    better,
    check_cross,
    check_tick,
    clear_side,
    find_level_ordered,
    insert_level,
    mark_levels,
    remove_level,
    side_index,
    status_event,
    within,
)

KIND_CLEAR = 1
KIND_STATUS = 2
KIND_DEPTH = 4
ACTION_ADD = 1
ACTION_MODIFY = 2
ACTION_DELETE = 4


@njit(cache=True, _nrt=False)
def _check_order(lv, sd, bk, s: int, si: int, i: int) -> None:
    p = lv[s, si, i, LV_PX]
    if i > 0 and not better(si, lv[s, si, i - 1, LV_PX], p):
        anomaly(bk, s, A_UNSORTED)
    elif i + 1 < sd[s, si, SD_NLEV] and not better(si, p, lv[s, si, i + 1, LV_PX]):
        anomaly(bk, s, A_UNSORTED)


@njit(cache=True, inline="always", _nrt=False)
def _scan_unsigned(lv, sd, s, si, price: int):
    """find_level's linear scan of a side with at most BISECT_FROM levels, with unsigned indexes
    (no negative-index wraparound code per subscript: this runs for every by-price event); returns
    (index, found) where index is the level or the insertion point."""
    z = np.uint64(0)
    o = np.uint64(1)
    n = np.uint64(sd[s, si, SD_NLEV])
    j = z
    if si == z:
        while j < n:
            p = lv[s, z, j, LV_PX]
            if p <= price:
                return j, p == price
            j += o
    else:
        while j < n:
            p = lv[s, o, j, LV_PX]
            if p >= price:
                return j, p == price
            j += o
    return j, False


@njit(cache=True, inline="always", _nrt=False)
def _by_price(lv, sd, bk, s, si, price: int, size: int, delete: bool) -> None:
    """A by-price depth update (price > 0, size >= 0) of side si; ``s``, ``si`` unsigned: ``size`` is
    the new total at ``price``, 0 (or a delete) removes the level.  Inlined into the step loops."""
    check_tick(bk, s, price)
    if sd[s, si, SD_NLEV] > BISECT_FROM:
        i = find_level_ordered(lv, sd, bk, np.int64(s), np.int64(si), price)
        found = i >= 0
        j = np.uint64(i if found else -i - 1)
    else:
        j, found = _scan_unsigned(lv, sd, s, si, price)
    if found:
        if size == 0 or delete:
            remove_level(lv, sd, s, si, j)
        else:
            lv[s, si, j, LV_SZ] = size
            if within(si, price, sd[s, si, SD_HZ]):
                lv[s, si, j, LV_KNOWN] = 1
            mark_levels(sd, s, si, j, j + np.uint64(1))
    elif size > 0 and not delete:
        known = 1 if within(si, price, sd[s, si, SD_HZ]) else 0
        if insert_level(lv, sd, bk, s, si, j, price, size, 0, known, True):
            apply_window(lv, sd, bk, s, si)


@njit(cache=True, _nrt=False)
def _by_position(lv, sd, bk, s: int, si: int, action: int, level: int, price: int, size: int) -> bool:
    """Position-based depth (IQFeed/IB-style level index): out of line; False = rejected (counted)."""
    n = sd[s, si, SD_NLEV]
    if action == ACTION_ADD:
        if level > n or price <= 0:
            anomaly(bk, s, A_BAD_INDEX if level > n else A_BAD_FIELD)
            return False
        check_tick(bk, s, price)
        if not insert_level(lv, sd, bk, s, si, level, price, size, 0, 1, True):
            return False
        _check_order(lv, sd, bk, s, si, level)
    elif action == ACTION_MODIFY:
        if level >= n or price <= 0:
            anomaly(bk, s, A_BAD_INDEX if level >= n else A_BAD_FIELD)
            return False
        check_tick(bk, s, price)
        lv[s, si, level, LV_PX] = price
        lv[s, si, level, LV_SZ] = size
        lv[s, si, level, LV_KNOWN] = 1
        mark_levels(sd, s, si, level, level + 1)
        _check_order(lv, sd, bk, s, si, level)
    elif action == ACTION_DELETE:
        if level >= n:
            anomaly(bk, s, A_BAD_INDEX)
            return False
        remove_level(lv, sd, s, si, level)
    else:
        anomaly(bk, s, A_BAD_FIELD)
        return False
    return True


@njit(cache=True, inline="always", _nrt=False)
def l2_event(lv, sd, bk, s: int, kind: int, action: int, side: int, level: int, price: int, size: int,
             ts: int) -> int:
    if kind == KIND_DEPTH:
        si = side_index(side)
        if si < 0 or size < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        if level < 0:
            if price <= 0:
                anomaly(bk, s, A_BAD_FIELD)
                return 0
            _by_price(lv, sd, bk, np.uint64(s), np.uint64(si), price, size, action == ACTION_DELETE)
        elif not _by_position(lv, sd, bk, s, si, action, level, price, size):
            return 0
        check_cross(lv, sd, bk, s)
    elif kind == KIND_CLEAR:
        for si in range(2):
            if side == 0 or side_index(side) == si:
                clear_side(lv, sd, s, si)
        bk[s, C_CLEARS] += 1
        check_cross(lv, sd, bk, s)
    elif kind == KIND_STATUS:
        status_event(bk, s, action)
    else:
        return 0
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts
    return 1


@njit(cache=True, _nrt=False)
def l2_event_call(lv, sd, bk, s: int, kind: int, action: int, side: int, level: int, price: int, size: int,
                  ts: int) -> int:
    """``l2_event`` compiled once as an ordinary function, for loops where a call per event does not
    matter (the verifier): they link to it instead of compiling the inlined event code again."""
    return l2_event(lv, sd, bk, s, kind, action, side, level, price, size, ts)


@njit(cache=True, _nrt=False)
def l2_step(lv, sd, bk, batch) -> int:
    """Apply a batch to every L2 book; returns the number of events handled."""
    ns = lv.shape[0]
    applied = 0
    for i in range(batch.shape[0]):
        e = batch[i]
        k = e.kind
        if k != KIND_DEPTH and k != KIND_CLEAR and k != KIND_STATUS:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        if k == KIND_DEPTH and e.level < 0 and e.price > 0 and e.size >= 0 and (e.side == 1 or e.side == -1):
            # the common event, a valid by-price update: l2_event's path with its checks done here
            u = np.uint64(s)
            _by_price(lv, sd, bk, u, np.uint64(0) if e.side == 1 else np.uint64(1), e.price, e.size,
                      e.action == ACTION_DELETE)
            check_cross(lv, sd, bk, u)
            bk[u, C_EVENTS] += 1
            bk[u, B_LAST_TS] = e.ts_event
            applied += 1
            continue
        applied += l2_event(lv, sd, bk, s, k, e.action, e.side, e.level, e.price, e.size, e.ts_event)
    return applied


class L2Book(LevelBook):
    """Market-by-price books (by price or by position)."""

    def step(self, batch: np.ndarray) -> int:
        return int(l2_step(self.lv, self.sd, self.bk, batch))
