"""The books' speed paths give exactly the reference answers.

* ``find_level_ordered`` (linear scan, or bisection past BISECT_FROM levels) equals the plain linear
  ``find_level`` on ordered sides of any depth, and falls back to it on books flagged unsorted.
* ``move_levels`` (one memmove on C-contiguous level arrays, element loop otherwise) equals a numpy
  copy, for overlapping moves in both directions and on non-contiguous views.
* The L3 order table (32-byte entries, prefetch in ``l3_step``) gives the same books whether a
  stream goes through ``l3_step`` (with prefetch) or event by event through ``l3_event``, for many
  symbols sharing one table with colliding order ids, under deletions that shift probe chains.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from quantedge import events as E
from quantedge.book.l3 import OT_NCOL, OT_PX, OT_SZ, OT_TAG, L3Book, _bits, l3_event, l3_step, ot_find
from quantedge.book.state import (
    A_UNSORTED,
    BISECT_FROM,
    FLAG_ANOM_BASE,
    LV_PX,
    SD_NLEV,
    LevelBook,
    anomaly,
    find_level,
    find_level_ordered,
    move_levels,
)


@njit(cache=True)
def _both(lv, sd, bk, s, si, prices, out_ref, out_fast):
    for k in range(prices.shape[0]):
        out_ref[k] = find_level(lv, sd, s, si, prices[k])
        out_fast[k] = find_level_ordered(lv, sd, bk, s, si, prices[k])


@njit(cache=True)
def _move(lv, s, si, dst, src, count):
    move_levels(lv, s, si, dst, src, count)


def _book_with(prices_bid, prices_ask, capacity):
    b = LevelBook.allocate(1, capacity=capacity)
    for si, ps in ((0, prices_bid), (1, prices_ask)):
        n = len(ps)
        b.lv[0, si, :n, LV_PX] = ps
        b.lv[0, si, :n, 1] = 100
        b.sd[0, si, SD_NLEV] = n
    return b


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3 * BISECT_FROM), st.integers(0, 3 * BISECT_FROM), st.integers(1, 5),
       st.integers(0, 2**31))
def test_find_level_ordered_equals_linear_scan(n_bid, n_ask, step, seed):
    rng = np.random.default_rng(seed)
    gaps_b = rng.integers(1, 4, n_bid) * step
    gaps_a = rng.integers(1, 4, n_ask) * step
    bids = 1_000_000 - np.cumsum(gaps_b)  # strictly descending
    asks = 1_000_100 + np.cumsum(gaps_a)  # strictly ascending
    b = _book_with(bids, asks, capacity=3 * BISECT_FROM + 8)
    for si, ps in ((0, bids), (1, asks)):
        lo = (ps.min() if len(ps) else 1_000_000) - 10 * step
        hi = (ps.max() if len(ps) else 1_000_000) + 10 * step
        probe = np.concatenate([ps, np.arange(lo, hi, max(1, step // 2))]).astype(np.int64)
        ref = np.empty(len(probe), np.int64)
        fast = np.empty(len(probe), np.int64)
        _both(b.lv, b.sd, b.bk, 0, si, probe, ref, fast)
        assert np.array_equal(ref, fast)


def test_find_level_ordered_uses_the_scan_on_books_flagged_unsorted():
    n = 2 * BISECT_FROM
    bids = (2_000_000 - 100 * np.arange(n)).astype(np.int64)
    bids[[10, 90]] = bids[[90, 10]]  # out of order, as a position-based update may leave it
    b = _book_with(bids, np.array([], np.int64), capacity=n)
    anomaly(b.bk, 0, A_UNSORTED)
    assert b.flags(0) & (FLAG_ANOM_BASE << A_UNSORTED)
    probe = np.concatenate([bids, bids + 50]).astype(np.int64)
    ref = np.empty(len(probe), np.int64)
    fast = np.empty(len(probe), np.int64)
    _both(b.lv, b.sd, b.bk, 0, 0, probe, ref, fast)
    assert np.array_equal(ref, fast)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.booleans())
def test_move_levels_equals_numpy_copy(dst, src, count, view):
    cap = 96
    rng = np.random.default_rng(dst * 10_000 + src * 100 + count)
    base = rng.integers(0, 1 << 40, size=(3, 2, cap, 4)).astype(np.int64)
    lv = base[::2] if view else base.copy()  # a strided view takes the element-loop path
    want = lv.copy()
    want[1, 1, dst:dst + count] = want[1, 1, src:src + count].copy()
    _move(lv, 1, 1, dst, src, count)
    assert np.array_equal(lv, want)


def _stream(rng, n_sym, n, id_space):
    """Adds, cancels, executes and deletes over few ids per symbol (reused ids, shared hash chains)."""
    b = E.empty(n)
    live: dict[tuple[int, int], tuple[int, int, int]] = {}
    for i in range(n):
        s = int(rng.integers(0, n_sym))
        oid = int(rng.integers(1, id_space))
        key = (s, oid)
        e = b[i]
        e["kind"], e["symbol"], e["order_id"], e["seq"] = E.KIND_ORDER, s, oid, i + 1
        if key in live and rng.random() < 0.7:
            side, px, q = live[key]
            act = (E.ACTION_CANCEL, E.ACTION_EXECUTE, E.ACTION_DELETE)[int(rng.integers(0, 3))]
            take = int(rng.integers(1, q + 1)) if act != E.ACTION_DELETE else q
            e["action"], e["side"], e["price"], e["size"] = act, side, px, take
            if act == E.ACTION_DELETE or take >= q:
                live.pop(key)
            else:
                live[key] = (side, px, q - take)
        else:
            side = 1 if rng.random() < 0.5 else -1
            px = int(1_000_000 + side * -100 * int(rng.integers(0, 30)) + (100 if side < 0 else 0))
            q = int(rng.integers(1, 500))
            e["action"], e["side"], e["price"], e["size"] = E.ACTION_ADD, side, px, q
            live.setdefault(key, (side, px, q))
    return b, live


@njit(cache=True)
def _event_by_event(lv, sd, bk, ot, otn, batch):
    bits = _bits(ot.shape[0])
    for i in range(batch.shape[0]):
        e = batch[i]
        l3_event(lv, sd, bk, ot, otn, bits, e.symbol, e.kind, e.action, e.side, e.price, e.size, e.order_id,
                 e.conditions, e.ts_event)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31))
def test_l3_step_with_prefetch_equals_event_by_event(n_sym, seed):
    rng = np.random.default_rng(seed)
    batch, live = _stream(rng, n_sym, 3000, id_space=200)
    a = L3Book.allocate(n_sym, capacity=64, max_orders=2000)
    b = L3Book.allocate(n_sym, capacity=64, max_orders=2000)
    assert a.ot.shape[1] == OT_NCOL
    l3_step(a.lv, a.sd, a.bk, a.ot, a.otn, batch)
    _event_by_event(b.lv, b.sd, b.bk, b.ot, b.otn, batch)
    assert np.array_equal(a.lv, b.lv) and np.array_equal(a.sd, b.sd) and np.array_equal(a.bk, b.bk)
    assert np.array_equal(a.ot, b.ot) and np.array_equal(a.otn, b.otn)
    # the table holds exactly the orders a dict model says are live, with their side/price/remainder
    assert a.live_orders == len(live) == int(np.count_nonzero(a.ot[:, OT_TAG]))
    bits = _bits(a.ot.shape[0])
    for (s, oid), (side, px, q) in live.items():
        slot = ot_find(a.ot, s, oid, bits)
        assert slot >= 0
        assert a.ot[slot, OT_PX] == px and a.ot[slot, OT_SZ] == q
        assert a.ot[slot, OT_TAG] == ((s + 1) << 1) | (0 if side == 1 else 1)
