"""Market-by-order (L3) books: an order table plus price levels, updated by KIND_ORDER events.

Handled: KIND_ORDER (ADD, CANCEL = ``size`` shares removed, DELETE, EXECUTE = ``size`` visible
shares executed, MODIFY = new remaining size/price), KIND_TRADE (hidden executions and crosses are
recorded, the visible book does not change: visible executions arrive as ORDER EXECUTE), KIND_STATUS
(halts recorded) and KIND_CLEAR.  Other kinds are ignored.

Orders that predate the data (cancel / execute / delete of an unknown id) are applied to the level
at the event's price and side and counted (A_UNKNOWN_ORDER): that volume is the level's ``LV_AUX``
part, seeded from a snapshot.

Stale levels.  A feed that only carries the top N levels (LOBSTER level-N files) never sends the
cancel of an order that left while it sat deeper than level N, so its volume stays on the book and
can later sit at, or cross, the touch.  One venue's book is never crossed or locked, and price-time
priority executes the best price first, so two messages prove such levels gone: a resting ADD at
price p on one side (no opposite level at or through p can exist) and a visible EXECUTE at p (no
same-side level better than p, no opposite level at or through p).  With ``B_EVICT`` set (the
default of ``L3Book.allocate``) such levels are removed from the touch inward and counted in
``C_EVICTED`` when they are not fully known (``LV_KNOWN`` 0: outside the feed's window, or volume
from before the data began).  A fully known level that crosses is a contradiction in the data: it
is kept, and the crossed state is flagged and counted (A_CROSSED), never "fixed".  Evicted levels'
orders stay in the order table (a later message for them is counted as usual).  Turn it off
(``evict_stale=False``) to see the raw order flow's levels, as the IQFeed simulator's WPL stream does.

The order table is an open-addressing hash (linear probing,
backward-shift deletion) over (symbol, order_id), sized up front; when 7/8 full, new orders are
kept on their level as untracked volume and counted (A_TABLE_FULL).

Speed (see ``book/bench.py``): an entry is 32 bytes (two per cache line, never split across two),
``l3_step`` prefetches the table slot of the order a few events ahead so the random table access
overlaps the work on the current event, and the per-event helpers are compiled without reference
counting (``_nrt=False``: they only index arrays the caller keeps alive), which removes two atomic
operations per helper call.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_SYMBOL,
    A_DUP_ORDER,
    A_NEGATIVE_SIZE,
    A_ORDER_MISMATCH,
    A_TABLE_FULL,
    A_UNKNOWN_ORDER,
    B_EVICT,
    B_LAST_TS,
    C_CLEARS,
    C_CROSS_TRADES,
    C_EVENTS,
    C_EVICTED,
    C_HIDDEN,
    LV_AUX,
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
    find_level,
    find_level_ordered,
    insert_level,
    mark_levels,
    remove_level,
    side_index,
    status_event,
    within,
)

# order table columns (32-byte entries)
OT_KEY = 0  # order id
OT_TAG = 1  # (symbol + 1) << 1 | side index (0 bid / 1 ask); 0 = empty slot
OT_PX = 2
OT_SZ = 3  # remaining shares
OT_NCOL = 4
# otn (order table counters)
OTN_LIVE = 0
OTN_PEAK = 1

_GOLD = np.uint64(11400714819323198485)
#: events between the prefetch of an order's table slot and its use in l3_step
PREFETCH_AHEAD = 8

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


@njit(cache=True, inline="always", _nrt=False)
def _home(oid: int, s: int, bits: int) -> int:
    x = np.uint64(oid) ^ (np.uint64(s) << np.uint64(44))
    return np.int64((x * _GOLD) >> np.uint64(64 - bits))


@njit(cache=True, _nrt=False)
def _bits(m: int) -> int:
    b = 0
    while (1 << b) < m:
        b += 1
    return b


@njit(cache=True, inline="always", _nrt=False)
def ot_probe(ot, s: int, oid: int, bits: int) -> int:
    """Slot of (s, oid) when live (>= 0), else -2 - the empty slot that ends its probe chain (where
    ``ot_insert`` would put it: an add then stores there without walking the chain twice)."""
    mask = ot.shape[0] - 1
    i = _home(oid, s, bits)
    sym = s + 1
    while True:
        tag = ot[i, OT_TAG]
        if tag == 0:
            return -2 - i
        if ot[i, OT_KEY] == oid and (tag >> 1) == sym:
            return i
        i = (i + 1) & mask


@njit(cache=True, inline="always", _nrt=False)
def ot_find(ot, s: int, oid: int, bits: int) -> int:
    """Slot of (s, oid), or -1."""
    i = ot_probe(ot, s, oid, bits)
    return i if i >= 0 else -1


@njit(cache=True, inline="always", _nrt=False)
def ot_store(ot, otn, i: int, s: int, oid: int, si: int, price: int, size: int) -> bool:
    """Put (s, oid) into empty slot i (from ``ot_probe``); False when the table is 7/8 full."""
    if otn[OTN_LIVE] * 8 >= ot.shape[0] * 7:
        return False
    ot[i, OT_KEY] = oid
    ot[i, OT_TAG] = ((s + 1) << 1) | si
    ot[i, OT_PX] = price
    ot[i, OT_SZ] = size
    otn[OTN_LIVE] += 1
    if otn[OTN_LIVE] > otn[OTN_PEAK]:
        otn[OTN_PEAK] = otn[OTN_LIVE]
    return True


@njit(cache=True, inline="always", _nrt=False)
def ot_insert(ot, otn, s: int, oid: int, si: int, price: int, size: int, bits: int) -> bool:
    """Put (s, oid), known not to be live, at the end of its probe chain; False when 7/8 full."""
    mask = ot.shape[0] - 1
    i = _home(oid, s, bits)
    while ot[i, OT_TAG] != 0:
        i = (i + 1) & mask
    return ot_store(ot, otn, i, s, oid, si, price, size)


@njit(cache=True, inline="always", _nrt=False)
def ot_delete(ot, otn, slot: int, bits: int) -> None:
    """Backward-shift deletion keeps probe chains intact without tombstones."""
    mask = ot.shape[0] - 1
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        tag = ot[j, OT_TAG]
        if tag == 0:
            break
        k = _home(ot[j, OT_KEY], (tag >> 1) - 1, bits)
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


@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Ask the CPU to start loading row ``row`` of a 2-D array into cache; no effect on results."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(row, types.Integer)):
        return None
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                        cgutils.unpack_tuple(builder, ary.strides), aryty.layout, [r, zero],
                                        wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep, data
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always", _nrt=False)
def _level_add(lv, sd, bk, s: int, si: int, price: int, size: int, untracked: int) -> None:
    i = find_level_ordered(lv, sd, bk, s, si, price)
    if i >= 0:
        lv[s, si, i, LV_SZ] += size
        lv[s, si, i, LV_AUX] += untracked
        mark_levels(sd, s, si, i, i + 1)
        return
    at = -i - 1
    known = 1 if within(si, price, sd[s, si, SD_HZ]) else 0
    if insert_level(lv, sd, bk, s, si, at, price, size, untracked, known, True):
        apply_window(lv, sd, bk, s, si)


@njit(cache=True, inline="always", _nrt=False)
def _level_sub(lv, sd, bk, s: int, si: int, price: int, size: int, untracked: int) -> None:
    """Remove size shares at price (untracked of them from LV_AUX); clamps and counts at 0."""
    i = find_level_ordered(lv, sd, bk, s, si, price)
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
        mark_levels(sd, s, si, i, i + 1)


@njit(cache=True, _nrt=False)
def _evict_stale(lv, sd, bk, s: int, si: int, price: int, executed: bool) -> None:
    """Remove the levels a resting order / visible execution at ``price`` on side ``si`` proves gone:
    opposite levels at or through ``price`` and, for an execution, same-side levels better than it."""
    if bk[s, B_EVICT] == 0:
        return
    oi = 1 - si
    while (sd[s, oi, SD_NLEV] > 0 and lv[s, oi, 0, LV_KNOWN] == 0
           and not better(oi, price, lv[s, oi, 0, LV_PX])):
        remove_level(lv, sd, s, oi, 0)
        bk[s, C_EVICTED] += 1
    if executed:
        while (sd[s, si, SD_NLEV] > 0 and lv[s, si, 0, LV_KNOWN] == 0
               and better(si, lv[s, si, 0, LV_PX], price)):
            remove_level(lv, sd, s, si, 0)
            bk[s, C_EVICTED] += 1


@njit(cache=True, inline="always", _nrt=False)
def l3_event(lv, sd, bk, ot, otn, bits: int, s: int, kind: int, action: int, side: int, price: int,
             size: int, oid: int, cond: int, ts: int) -> int:
    """Apply one event to book s; returns 1 when the event was handled (state changed or recorded)."""
    if kind == KIND_ORDER:
        si = side_index(side)
        if si < 0 or price <= 0 or size < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return 0
        check_tick(bk, s, price)
        slot = ot_probe(ot, s, oid, bits)  # < 0: not live
        if action == ACTION_ADD:
            if size <= 0:
                anomaly(bk, s, A_BAD_FIELD)
                return 0
            untracked = 0
            if slot >= 0:
                anomaly(bk, s, A_DUP_ORDER)
                untracked = size
            elif not ot_store(ot, otn, -2 - slot, s, oid, si, price, size):
                anomaly(bk, s, A_TABLE_FULL)
                untracked = size
            _level_add(lv, sd, bk, s, si, price, size, untracked)
            if bk[s, B_EVICT] != 0:
                _evict_stale(lv, sd, bk, s, si, price, False)
        elif action == ACTION_CANCEL or action == ACTION_EXECUTE or action == ACTION_DELETE:
            if slot < 0:
                anomaly(bk, s, A_UNKNOWN_ORDER)
                _level_sub(lv, sd, bk, s, si, price, size, size)
                if action == ACTION_EXECUTE and bk[s, B_EVICT] != 0:
                    _evict_stale(lv, sd, bk, s, si, price, True)
            else:
                rem = ot[slot, OT_SZ]
                opx = ot[slot, OT_PX]
                osi = ot[slot, OT_TAG] & 1
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
                if action == ACTION_EXECUTE and bk[s, B_EVICT] != 0:
                    _evict_stale(lv, sd, bk, s, osi, opx, True)
        elif action == ACTION_MODIFY:
            if slot < 0:
                # old size and price unknown: cannot move the volume; mark the level unreliable
                anomaly(bk, s, A_UNKNOWN_ORDER)
                i = find_level(lv, sd, s, si, price)
                if i >= 0:
                    lv[s, si, i, LV_KNOWN] = 0
                    mark_levels(sd, s, si, i, i + 1)
            else:
                osi = ot[slot, OT_TAG] & 1
                _level_sub(lv, sd, bk, s, osi, ot[slot, OT_PX], ot[slot, OT_SZ], 0)
                if size > 0:
                    ot[slot, OT_SZ] = size
                    ot[slot, OT_PX] = price
                    ot[slot, OT_TAG] = ((s + 1) << 1) | si
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


@njit(cache=True, _nrt=False)
def l3_event_call(lv, sd, bk, ot, otn, bits: int, s: int, kind: int, action: int, side: int, price: int,
                  size: int, oid: int, cond: int, ts: int) -> int:
    """``l3_event`` compiled once as an ordinary function, for loops where a call per event does not
    matter (the verifier): they link to it instead of compiling the inlined event code again."""
    return l3_event(lv, sd, bk, ot, otn, bits, s, kind, action, side, price, size, oid, cond, ts)


@njit(cache=True, _nrt=False)
def _purge_orders(ot, otn, s: int, si: int, bits: int) -> None:
    i = 0
    m = ot.shape[0]
    tag = ((s + 1) << 1) | si
    while i < m:
        if ot[i, OT_TAG] == tag:
            ot_delete(ot, otn, i, bits)  # the slot may now hold a shifted entry: look again
        else:
            i += 1


@njit(cache=True, inline="always", _nrt=False)
def prefetch_order(ot, bits: int, ns: int, batch, j: int) -> None:
    """Start loading the order-table slot of event j's order (if j is an order event in range).

    A hint only (results never depend on it): a loop that applies ``batch[i]`` with ``l3_event`` can
    call this with ``j = i + PREFETCH_AHEAD`` so the random table access overlaps earlier events' work.
    """
    if j < batch.shape[0]:
        f = batch[j]
        if f.kind == KIND_ORDER and f.symbol >= 0 and f.symbol < ns:
            _prefetch_row(ot, _home(f.order_id, f.symbol, bits))


@njit(cache=True, _nrt=False)
def l3_step(lv, sd, bk, ot, otn, batch) -> int:
    """Apply a batch of events to every L3 book; returns the number of events handled."""
    ns = lv.shape[0]
    bits = _bits(ot.shape[0])
    applied = 0
    n = batch.shape[0]
    for i in range(n):
        prefetch_order(ot, bits, ns, batch, i + PREFETCH_AHEAD)
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
                 known_from_start: bool = True, max_orders: int = 1 << 20,
                 evict_stale: bool = True) -> L3Book:
        """max_orders: live orders over all symbols; the table is the next power of two >= 8/7 of it.
        evict_stale: remove levels a resting add or a visible execution proves gone (module docstring)."""
        base = LevelBook.allocate(n_symbols, capacity, window, tick, known_from_start)
        base.bk[:, B_EVICT] = 1 if evict_stale else 0
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
