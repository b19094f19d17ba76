"""Compiled core of the simulated exchange: replay the stream into the books and match our orders.

``run_until`` applies events in stream order (``ts_recv``, ``seq``, ``kind``) to the visible books
and, for symbols where we have working orders, runs the queue hooks, trade-through, quote-through and
stop triggers.  It returns to Python only at "interesting" points: the next scheduled Python item's
time, a fill of ours, an event of a symbol a strategy subscribed to, or a full fill buffer.  Python
never touches a market event that nobody asked for.

Our orders never change the replayed book: a market order walks the levels as they are, and a
resting order is matched against what the recorded stream says happened at its price.
"""

from __future__ import annotations

from numba import njit

from quantedge.backtest.marks_nb import R_DONE, mark_flush, mark_push, next_due
from quantedge.backtest.orders import (
    FL_LIQ,
    FL_MID2,
    FL_OID,
    FL_PX,
    FL_QTY,
    FL_REASON,
    FL_SIDE,
    FL_SYM,
    FL_TS,
    LIQ_MAKER,
    LIQ_TAKER,
    OD_FILLED,
    OD_ID,
    OD_LIMIT,
    OD_LVL,
    OD_MID2,
    OD_QTY,
    OD_SIDE,
    OD_STATUS,
    OD_STOP,
    OD_SYM,
    OD_TRADED,
    OD_TRIGGERED,
    OD_TYPE,
    OT_LIMIT,
    OT_STOP,
    OT_STOP_LIMIT,
    R_LIMIT_TAKE,
    R_QUEUE,
    R_QUOTE_THROUGH,
    R_STOP,
    R_TRADE_THROUGH,
    ST_ACTIVE,
    ST_CANCELLED,
    ST_FILLED,
)
from quantedge.backtest.queue import q_depth, q_is_filled, q_new_order, q_trade
from quantedge.backtest.stops_nb import T_EVENTS, tape_print
from quantedge.book.l2 import l2_event
from quantedge.book.l3 import l3_event
from quantedge.book.pseudo import pseudo_event
from quantedge.book.state import LV_PX, LV_SZ, SD_NLEV

MODE_PSEUDO = 1
MODE_L2 = 2
MODE_L3 = 3

STOP_END = 0  # reached the end of the given range
STOP_TIME = 1  # next event is after t_stop
STOP_FILL = 2  # one of our orders filled
STOP_SUB = 3  # an event of a subscribed symbol/kind was applied
STOP_FULL = 4  # fill buffer nearly full: drain and call again
STOP_MARK = 5  # the position marks need Python (marks_nb.R_*: reason in mi[MI_WHY]); event not applied
STOP_QUEUED = 6  # internal to run_until: a mark was queued before t_stop
MARK_BIT = 1 << 7  # sub_mask bit: the symbol's prints are queued as position marks (set by the engine)

KIND_ORDER = 3
KIND_DEPTH = 4
KIND_QUOTE = 5
KIND_TRADE = 6
ACTION_EXECUTE = 5
# prints that do not consume lit depth at their price: hidden, cross, off-exchange, out of
# sequence, corrections, average price
COND_NOT_LIT = (1 << 7) | (1 << 8) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 9)


@njit(cache=True, _nrt=False)
def first_step_back(events, prev: int) -> int:
    """Index of the first event whose ts_recv is before the one before it (``prev`` before the
    first), -1 when the batch is in order: the engine's merge-order check, one pass without the
    temporary arrays of ``np.diff``."""
    last = prev
    for i in range(events.shape[0]):
        t = events[i].ts_recv
        if t < last:
            return i
        last = t
    return -1


@njit(cache=True, _nrt=False)
def level_size(lv, sd, s: int, si: int, px: int) -> int:
    n = sd[s, si, SD_NLEV]
    for i in range(n):
        p = lv[s, si, i, LV_PX]
        if p == px:
            return lv[s, si, i, LV_SZ]
        if (si == 0 and p < px) or (si == 1 and p > px):
            return 0
    return 0


@njit(cache=True, _nrt=False)
def mid2(lv, sd, s: int) -> int:
    if sd[s, 0, SD_NLEV] == 0 or sd[s, 1, SD_NLEV] == 0:
        return 0
    return lv[s, 0, 0, LV_PX] + lv[s, 1, 0, LV_PX]


@njit(cache=True, _nrt=False)
def emit(
    fl, nfl, oid: int, s: int, side: int, qty: int, px: int, ts: int, reason: int, liq: int, m2: int
) -> None:
    k = nfl[0]
    fl[k, FL_OID] = oid
    fl[k, FL_SYM] = s
    fl[k, FL_SIDE] = side
    fl[k, FL_QTY] = qty
    fl[k, FL_PX] = px
    fl[k, FL_TS] = ts
    fl[k, FL_REASON] = reason
    fl[k, FL_LIQ] = liq
    fl[k, FL_MID2] = m2
    nfl[0] = k + 1


@njit(cache=True, _nrt=False)
def walk(
    lv,
    sd,
    s: int,
    side: int,
    qty: int,
    limit: int,
    oid: int,
    ts: int,
    reason: int,
    eta_bps: float,
    touch0: int,
    fl,
    nfl,
) -> int:
    """Take up to qty from the opposite side, level by level, not past limit (0 = no limit).

    Returns shares filled.  With eta_bps > 0 each level's price is moved against us by eta_bps x the
    share of the walked visible depth consumed so far (a simple temporary-impact option); the
    replayed book itself is never changed.  touch0 > 0: a best level of unknown size (0) offers that many.
    """
    si = 1 if side > 0 else 0
    n = sd[s, si, SD_NLEV]
    m2 = mid2(lv, sd, s)
    depth = 0
    if eta_bps > 0.0:
        for i in range(n):
            px = lv[s, si, i, LV_PX]
            if limit > 0 and ((side > 0 and px > limit) or (side < 0 and px < limit)):
                break
            depth += lv[s, si, i, LV_SZ]
    left = qty
    taken = 0
    for i in range(n):
        if left <= 0:
            break
        px = lv[s, si, i, LV_PX]
        sz = lv[s, si, i, LV_SZ]
        if sz <= 0 and i == 0 and touch0 > 0:
            sz = touch0  # touch with no size information (L1 without sizes): assume touch0 shares
        if sz <= 0 or px <= 0:
            continue
        if limit > 0 and ((side > 0 and px > limit) or (side < 0 and px < limit)):
            break
        q = sz if sz < left else left
        fpx = px
        if eta_bps > 0.0 and depth > 0:
            shift = int(px * eta_bps * 1e-4 * (taken + q) / depth + 0.5)
            fpx = px + side * shift
        emit(fl, nfl, oid, s, side, q, fpx, ts, reason, LIQ_TAKER, m2)
        left -= q
        taken += q
    return taken


@njit(cache=True, _nrt=False)
def _rest(lv, sd, od, j: int) -> None:
    si = 0 if od[j, OD_SIDE] > 0 else 1
    q_new_order(od, j, level_size(lv, sd, od[j, OD_SYM], si, od[j, OD_LIMIT]))
    od[j, OD_TRADED] = 0


@njit(cache=True, _nrt=False)
def arrive(lv, sd, od, j: int, ts: int, eta_bps: float, touch0: int, fl, nfl) -> int:
    """A limit / stop-limit order (row j) reaches the venue: take what is marketable, rest the rest.

    Returns the shares filled now.  Market orders are walked by the caller (fill-model choice).
    """
    s = od[j, OD_SYM]
    od[j, OD_MID2] = mid2(lv, sd, s)
    typ = od[j, OD_TYPE]
    if typ == OT_STOP or (typ == OT_STOP_LIMIT and od[j, OD_TRIGGERED] == 0):
        od[j, OD_STATUS] = ST_ACTIVE
        return 0
    left = od[j, OD_QTY] - od[j, OD_FILLED]
    got = walk(
        lv,
        sd,
        s,
        od[j, OD_SIDE],
        left,
        od[j, OD_LIMIT],
        od[j, OD_ID],
        ts,
        R_LIMIT_TAKE,
        eta_bps,
        touch0,
        fl,
        nfl,
    )
    od[j, OD_FILLED] += got
    if od[j, OD_FILLED] >= od[j, OD_QTY]:
        od[j, OD_STATUS] = ST_FILLED
        return got
    od[j, OD_STATUS] = ST_ACTIVE
    _rest(lv, sd, od, j)
    return got


@njit(cache=True, _nrt=False)
def _fill_rest(od, j: int, q: int, px: int, ts: int, reason: int, fl, nfl, has_orders) -> None:
    emit(fl, nfl, od[j, OD_ID], od[j, OD_SYM], od[j, OD_SIDE], q, px, ts, reason, LIQ_MAKER, od[j, OD_MID2])
    od[j, OD_FILLED] += q
    if od[j, OD_FILLED] >= od[j, OD_QTY]:
        od[j, OD_STATUS] = ST_FILLED
        has_orders[od[j, OD_SYM]] -= 1


@njit(cache=True, _nrt=False)
def match_symbol(
    lv,
    sd,
    od,
    n_od: int,
    s: int,
    mode: int,
    kind: int,
    action: int,
    eside: int,
    price: int,
    size: int,
    cond: int,
    ts: int,
    qcode: int,
    qn: float,
    eta_bps: float,
    touch0: int,
    fl,
    nfl,
    has_orders,
) -> int:
    """After an event of symbol s was applied: queue hooks, trade/quote-through and stop triggers."""
    lit_trade = kind == KIND_TRADE and (cond & COND_NOT_LIT) == 0 and price > 0 and size > 0
    l3_exec = mode == MODE_L3 and kind == KIND_ORDER and action == ACTION_EXECUTE
    before = nfl[0]
    for j in range(n_od):
        if od[j, OD_SYM] != s or od[j, OD_STATUS] != ST_ACTIVE:
            continue
        side = od[j, OD_SIDE]
        typ = od[j, OD_TYPE]
        if (typ == OT_STOP or typ == OT_STOP_LIMIT) and od[j, OD_TRIGGERED] == 0:
            if lit_trade and (
                (side > 0 and price >= od[j, OD_STOP]) or (side < 0 and price <= od[j, OD_STOP])
            ):
                od[j, OD_TRIGGERED] = 1
                od[j, OD_MID2] = mid2(lv, sd, s)
                left = od[j, OD_QTY] - od[j, OD_FILLED]
                if typ == OT_STOP:
                    got = walk(lv, sd, s, side, left, 0, od[j, OD_ID], ts, R_STOP, eta_bps, touch0, fl, nfl)
                    od[j, OD_FILLED] += got
                    od[j, OD_STATUS] = ST_FILLED if od[j, OD_FILLED] >= od[j, OD_QTY] else ST_CANCELLED
                    has_orders[s] -= 1
                else:
                    got = walk(
                        lv,
                        sd,
                        s,
                        side,
                        left,
                        od[j, OD_LIMIT],
                        od[j, OD_ID],
                        ts,
                        R_LIMIT_TAKE,
                        eta_bps,
                        touch0,
                        fl,
                        nfl,
                    )
                    od[j, OD_FILLED] += got
                    if od[j, OD_FILLED] >= od[j, OD_QTY]:
                        od[j, OD_STATUS] = ST_FILLED
                        has_orders[s] -= 1
                    else:
                        _rest(lv, sd, od, j)
            continue
        if typ != OT_LIMIT and typ != OT_STOP_LIMIT:
            continue
        lim = od[j, OD_LIMIT]
        si = 0 if side > 0 else 1
        left = od[j, OD_QTY] - od[j, OD_FILLED]
        # a print beyond our price: everything at our price traded first
        if lit_trade and ((side > 0 and price < lim) or (side < 0 and price > lim)):
            _fill_rest(od, j, left, lim, ts, R_TRADE_THROUGH, fl, nfl, has_orders)
            continue
        # the opposite side quotes at or through our price: it would have executed against us
        oi = 1 - si
        if sd[s, oi, SD_NLEV] > 0:
            op = lv[s, oi, 0, LV_PX]
            if op > 0 and ((side > 0 and op <= lim) or (side < 0 and op >= lim)):
                _fill_rest(od, j, left, lim, ts, R_QUOTE_THROUGH, fl, nfl, has_orders)
                continue
        prev = od[j, OD_LVL]
        new = level_size(lv, sd, s, si, lim)
        if mode == MODE_L3:
            if l3_exec and price == lim and eside == side:
                q_trade(od, j, size)
                od[j, OD_LVL] = new
            elif new != prev:
                q_depth(od, j, prev, new, qcode, qn)
        else:
            if lit_trade and price == lim:
                q_trade(od, j, size)
                od[j, OD_TRADED] += size
            if new != prev:
                dec = prev - new
                if dec > 0:
                    net = dec if dec < od[j, OD_TRADED] else od[j, OD_TRADED]
                    od[j, OD_TRADED] -= net
                    q_depth(od, j, prev, prev - (dec - net), qcode, qn)
                else:
                    q_depth(od, j, prev, new, qcode, qn)
                od[j, OD_LVL] = new
        q = q_is_filled(od, j)
        if q > 0:
            _fill_rest(od, j, q, lim, ts, R_QUEUE, fl, nfl, has_orders)
    return nfl[0] - before


@njit(cache=True, _nrt=False)
def _apply_until(
    events,
    i0: int,
    t_stop: int,
    mode: int,
    lv,
    sd,
    bk,
    ot,
    otn,
    bits: int,
    od,
    n_od: int,
    has_orders,
    sub_mask,
    qcode: int,
    qn: float,
    eta_bps: float,
    touch0: int,
    fl,
    nfl,
    last_px,
    counters,
    tape,
    ring,
    mi,
):
    """run_until's event loop: stops at the first event after t_stop (STOP_TIME) and after queuing
    a mark due before t_stop (STOP_QUEUED; t_stop stays fixed inside the loop: a loop that lowers
    it ran at half the speed)."""
    n = events.shape[0]
    ns = lv.shape[0]
    room = fl.shape[0] - 2 * lv.shape[2] - 4
    i = i0
    while i < n:
        e = events[i]
        if e.ts_recv > t_stop:
            return i, STOP_TIME
        if nfl[0] > room:
            return i, STOP_FULL
        s = e.symbol
        k = e.kind
        i += 1
        counters[0] += 1
        if s < 0 or s >= ns:
            continue
        tape[T_EVENTS, s] += 1
        if k == KIND_TRADE and e.price > 0 and e.size > 0:
            bid = lv[s, 0, 0, LV_PX] / 10_000.0 if sd[s, 0, SD_NLEV] > 0 else 0.0
            ask = lv[s, 1, 0, LV_PX] / 10_000.0 if sd[s, 1, SD_NLEV] > 0 else 0.0
            tape_print(tape, s, e.side, e.price / 10_000.0, float(e.size), bid, ask)
        if mode == MODE_L3:
            l3_event(
                lv,
                sd,
                bk,
                ot,
                otn,
                bits,
                s,
                k,
                e.action,
                e.side,
                e.price,
                e.size,
                e.order_id,
                e.conditions,
                e.ts_event,
            )
        elif mode == MODE_L2:
            l2_event(lv, sd, bk, s, k, e.action, e.side, e.level, e.price, e.size, e.ts_event)
        else:
            pseudo_event(
                lv,
                sd,
                bk,
                s,
                k,
                e.action,
                e.side,
                e.price,
                e.size,
                e.conditions,
                e.venue,
                e.flags,
                e.ts_event,
            )
        if k == KIND_TRADE and (e.conditions & COND_NOT_LIT) == 0 and e.price > 0:
            last_px[s] = e.price
        got = 0
        if has_orders[s] > 0:
            counters[1] += 1
            got = match_symbol(
                lv,
                sd,
                od,
                n_od,
                s,
                mode,
                k,
                e.action,
                e.side,
                e.price,
                e.size,
                e.conditions,
                e.ts_recv,
                qcode,
                qn,
                eta_bps,
                touch0,
                fl,
                nfl,
                has_orders,
            )
        m = sub_mask[s]
        if m != 0:
            queued = False
            if m & MARK_BIT and k == KIND_TRADE and e.price > 0 and e.size > 0:
                queued = mark_push(ring, mi, e.ts_recv, s, e.price) < t_stop
            if got > 0:
                return i, STOP_FILL
            if m & (1 << k):
                return i, STOP_SUB
            if queued:
                return i, STOP_QUEUED  # run_until lowers t_stop to the mark's time
        elif got > 0:
            return i, STOP_FILL
    return i, STOP_END


@njit(cache=True, _nrt=False)
def run_until(
    events,
    i0: int,
    t_stop: int,
    mode: int,
    lv,
    sd,
    bk,
    ot,
    otn,
    bits: int,
    od,
    n_od: int,
    has_orders,
    sub_mask,
    qcode: int,
    qn: float,
    eta_bps: float,
    touch0: int,
    fl,
    nfl,
    last_px,
    counters,
    tape,
    ring,
    mi,
    mf,
    pu,
    acc,
):
    """Apply events from i0 while ts_recv <= t_stop; returns (next index, STOP_* reason).

    counters[0] += events applied, counters[1] += events that ran the matcher; every print is
    counted on ``tape`` (stops_nb.tape_print), classified against the quote it met, and the prints
    of symbols with MARK_BIT are queued as position marks (marks_nb), which are applied before the
    first event after their delivery time.  The event loop itself (``_apply_until``) stops at the
    first queued mark's time instead of looking at the ring per event: that look, in the loop, cost
    more than the loop's own work.
    """
    n = events.shape[0]
    i = i0
    while True:
        if i < n:
            t = events[i].ts_recv
            if next_due(ring, mi) < t and t <= t_stop:
                if mark_flush(ring, mi, mf, pu, acc, t, True) != R_DONE:
                    return i, STOP_MARK
        t_due = next_due(ring, mi)
        t_cut = t_stop if t_stop < t_due else t_due
        i, why = _apply_until(
            events, i, t_cut, mode, lv, sd, bk, ot, otn, bits, od, n_od, has_orders, sub_mask, qcode,
            qn, eta_bps, touch0, fl, nfl, last_px, counters, tape, ring, mi,
        )
        if why == STOP_QUEUED:
            continue
        if why != STOP_TIME or events[i].ts_recv > t_stop:
            return i, why
