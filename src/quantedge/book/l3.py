"""Market-by-order (L3) books: an order table plus price levels, updated by KIND_ORDER events.

Handled: KIND_ORDER (ADD, CANCEL = ``size`` shares removed, DELETE, EXECUTE = ``size`` visible
shares executed, MODIFY = new remaining size/price), KIND_TRADE (hidden executions and crosses are
recorded, the visible book does not change: visible executions arrive as ORDER EXECUTE), KIND_STATUS
(halts recorded) and KIND_CLEAR.  Other kinds are ignored.

Orders that predate the data (cancel / execute / delete of an unknown id) are applied to the level
at the event's price and side and counted (A_UNKNOWN_ORDER): that volume is the level's ``LV_AUX``
part, seeded from a snapshot.  The order table is an open-addressing hash (linear probing,
backward-shift deletion) over (symbol, order_id), sized up front; when 7/8 full, new orders are
kept on their level as untracked volume and counted (A_TABLE_FULL).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_SYMBOL,
    A_DUP_ORDER,
    A_NEGATIVE_SIZE,
    A_ORDER_MISMATCH,
    A_TABLE_FULL,
    A_UNKNOWN_ORDER,
    B_LAST_TS,
    C_CLEARS,
    C_CROSS_TRADES,
    C_EVENTS,
    C_HIDDEN,
    LV_AUX,
    LV_KNOWN,
    LV_SZ,
    SD_HZ,
    LevelBook,
    anomaly,
    apply_window,
    check_cross,
    check_tick,
    clear_side,
    find_level,
    insert_level,
    remove_level,
    side_index,
    status_event,
    within,
)

# order table columns
OT_KEY = 0  # order id
OT_SYM = 1  # symbol + 1 (0 = empty slot)
OT_SIDE = 2  # side index 0 bid / 1 ask
OT_PX = 3
OT_SZ = 4  # remaining shares
OT_NCOL = 5
# otn (order table counters)
OTN_LIVE = 0
OTN_PEAK = 1

_GOLD = np.uint64(11400714819323198485)

KIND_CLEAR = 1
KIND_STATUS = 2
KIND_ORDER = 3
KIND_TRADE = 6
ACTION_ADD = 1
ACTION_MODIFY = 2
ACTION_CANCEL = 3
ACTION_DELETE = 4
ACTION_EXECUTE = 5
COND_HIDDEN = 1 << 7
COND_CROSS = 1 << 8


@njit(cache=True, inline="always")
def _home(oid: int, s: int, bits: int) -> int:
    x = np.uint64(oid) ^ (np.uint64(s) << np.uint64(44))
    return np.int64((x * _GOLD) >> np.uint64(64 - bits))


@njit(cache=True)
def _bits(m: int) -> int:
    b = 0
    while (1 << b) < m:
        b += 1
    return b


@njit(cache=True)
def ot_find(ot, s: int, oid: int, bits: int) -> int:
    """Slot of (s, oid), or -1."""
    mask = ot.shape[0] - 1
    i = _home(oid, s, bits)
    while True:
        tag = ot[i, OT_SYM]
        if tag == 0:
            return -1
        if tag == s + 1 and ot[i, OT_KEY] == oid:
            return i
        i = (i + 1) & mask


@njit(cache=True)
def ot_insert(ot, otn, s: int, oid: int, si: int, price: int, size: int, bits: int) -> bool:
    m = ot.shape[0]
    if otn[OTN_LIVE] * 8 >= m * 7:
        return False
    mask = m - 1
    i = _home(oid, s, bits)
    while ot[i, OT_SYM] != 0:
        i = (i + 1) & mask
    ot[i, OT_KEY] = oid
    ot[i, OT_SYM] = s + 1
    ot[i, OT_SIDE] = si
    ot[i, OT_PX] = price
    ot[i, OT_SZ] = size
    otn[OTN_LIVE] += 1
    if otn[OTN_LIVE] > otn[OTN_PEAK]:
        otn[OTN_PEAK] = otn[OTN_LIVE]
    return True


@njit(cache=True)
def ot_delete(ot, otn, slot: int, bits: int) -> None:
    """Backward-shift deletion keeps probe chains intact without tombstones."""
    mask = ot.shape[0] - 1
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        if ot[j, OT_SYM] == 0:
            break
        k = _home(ot[j, OT_KEY], ot[j, OT_SYM] - 1, bits)
        if i <= j:
            stays = i < k <= j
        else:
            stays = k > i or k <= j
        if stays:
            continue
        for c in range(OT_NCOL):
            ot[i, c] = ot[j, c]
        i = j
    for c in range(OT_NCOL):
        ot[i, c] = 0
    otn[OTN_LIVE] -= 1


@njit(cache=True)
def _level_add(lv, sd, bk, s: int, si: int, price: int, size: int, untracked: int) -> None:
    i = find_level(lv, sd, s, si, price)
    if i >= 0:
        lv[s, si, i, LV_SZ] += size
        lv[s, si, i, LV_AUX] += untracked
        return
    at = -i - 1
    known = 1 if within(si, price, sd[s, si, SD_HZ]) else 0
    if insert_level(lv, sd, bk, s, si, at, price, size, untracked, known, True):
        apply_window(lv, sd, bk, s, si)


@njit(cache=True)
def _level_sub(lv, sd, bk, s: int, si: int, price: int, size: int, untracked: int) -> None:
    """Remove size shares at price (untracked of them from LV_AUX); clamps and counts at 0."""
    i = find_level(lv, sd, s, si, price)
    if i < 0:
        anomaly(bk, s, A_NEGATIVE_SIZE)
        return
    left = lv[s, si, i, LV_SZ] - size
    lv[s, si, i, LV_AUX] -= untracked
    if left < 0:
        anomaly(bk, s, A_NEGATIVE_SIZE)
    if left <= 0:
        remove_level(lv, sd, s, si, i)
    else:
        lv[s, si, i, LV_SZ] = left


@njit(cache=True)
def l3_event(lv, sd, bk, ot, otn, bits: int, s: int, kind: int, action: int, side: int, price: int,
             size: int, oid: int, cond: int, ts: int) -> int:
    """Apply one event to book s; returns 1 when the event was handled (state changed or recorded)."""
    if kind == KIND_ORDER:
        si = side_index(side)
        if si < 0 or price <= 0 or size < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        check_tick(bk, s, price)
        slot = ot_find(ot, s, oid, bits)
        if action == ACTION_ADD:
            if size <= 0:
                anomaly(bk, s, A_BAD_FIELD)
                return 0
            untracked = 0
            if slot >= 0:
                anomaly(bk, s, A_DUP_ORDER)
                untracked = size
            elif not ot_insert(ot, otn, s, oid, si, price, size, bits):
                anomaly(bk, s, A_TABLE_FULL)
                untracked = size
            _level_add(lv, sd, bk, s, si, price, size, untracked)
        elif action == ACTION_CANCEL or action == ACTION_EXECUTE or action == ACTION_DELETE:
            if slot < 0:
                anomaly(bk, s, A_UNKNOWN_ORDER)
                _level_sub(lv, sd, bk, s, si, price, size, size)
            else:
                rem = ot[slot, OT_SZ]
                opx = ot[slot, OT_PX]
                osi = ot[slot, OT_SIDE]
                if opx != price or osi != si:
                    anomaly(bk, s, A_ORDER_MISMATCH)
                if action == ACTION_DELETE:
                    q = size if size > 0 else rem
                    if size > 0 and size != rem:
                        anomaly(bk, s, A_ORDER_MISMATCH)
                    ot_delete(ot, otn, slot, bits)
                else:
                    q = size
                    if q > rem:
                        anomaly(bk, s, A_NEGATIVE_SIZE)
                        q = rem
                    if rem - q <= 0:
                        ot_delete(ot, otn, slot, bits)
                    else:
                        ot[slot, OT_SZ] = rem - q
                if q > 0:
                    _level_sub(lv, sd, bk, s, osi, opx, q, 0)
        elif action == ACTION_MODIFY:
            if slot < 0:
                # old size and price unknown: cannot move the volume; mark the level unreliable
                anomaly(bk, s, A_UNKNOWN_ORDER)
                i = find_level(lv, sd, s, si, price)
                if i >= 0:
                    lv[s, si, i, LV_KNOWN] = 0
            else:
                osi = ot[slot, OT_SIDE]
                _level_sub(lv, sd, bk, s, osi, ot[slot, OT_PX], ot[slot, OT_SZ], 0)
                if size > 0:
                    ot[slot, OT_SZ] = size
                    ot[slot, OT_PX] = price
                    ot[slot, OT_SIDE] = si
                    _level_add(lv, sd, bk, s, si, price, size, 0)
                else:
                    ot_delete(ot, otn, slot, bits)
        else:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        check_cross(lv, sd, bk, s)
    elif kind == KIND_TRADE:
        if cond & COND_HIDDEN:
            bk[s, C_HIDDEN] += 1
        if cond & COND_CROSS:
            bk[s, C_CROSS_TRADES] += 1
    elif kind == KIND_STATUS:
        status_event(bk, s, action)
    elif kind == KIND_CLEAR:
        for si in range(2):
            if side == 0 or side_index(side) == si:
                clear_side(lv, sd, s, si)
                _purge_orders(ot, otn, s, si, bits)
        bk[s, C_CLEARS] += 1
        check_cross(lv, sd, bk, s)
    else:
        return 0
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts
    return 1


@njit(cache=True)
def _purge_orders(ot, otn, s: int, si: int, bits: int) -> None:
    i = 0
    m = ot.shape[0]
    while i < m:
        if ot[i, OT_SYM] == s + 1 and ot[i, OT_SIDE] == si:
            ot_delete(ot, otn, i, bits)  # the slot may now hold a shifted entry: look again
        else:
            i += 1


@njit(cache=True)
def l3_step(lv, sd, bk, ot, otn, batch) -> int:
    """Apply a batch of events to every L3 book; returns the number of events handled."""
    ns = lv.shape[0]
    bits = _bits(ot.shape[0])
    applied = 0
    for i in range(batch.shape[0]):
        e = batch[i]
        k = e.kind
        if k != KIND_ORDER and k != KIND_TRADE and k != KIND_STATUS and k != KIND_CLEAR:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        applied += l3_event(lv, sd, bk, ot, otn, bits, s, k, e.action, e.side, e.price, e.size,
                            e.order_id, e.conditions, e.ts_event)
    return applied


class L3Book(LevelBook):
    """L3 books: the LevelBook arrays plus the shared order table ``ot`` and its counters ``otn``."""

    ot: np.ndarray
    otn: np.ndarray

    @classmethod
    def allocate(cls, n_symbols: int, capacity: int = 128, window: int = 0, tick: int = 100,
                 known_from_start: bool = True, max_orders: int = 1 << 20) -> L3Book:
        """max_orders: live orders over all symbols; the table is the next power of two >= 8/7 of it."""
        base = LevelBook.allocate(n_symbols, capacity, window, tick, known_from_start)
        m = 16
        while m * 7 < max_orders * 8:
            m *= 2
        book = cls(base.lv, base.sd, base.bk)
        book.ot = np.zeros((m, OT_NCOL), dtype=np.int64)
        book.otn = np.zeros(2, dtype=np.int64)
        return book

    def step(self, batch: np.ndarray) -> int:
        return int(l3_step(self.lv, self.sd, self.bk, self.ot, self.otn, batch))

    @property
    def live_orders(self) -> int:
        return int(self.otn[OTN_LIVE])
