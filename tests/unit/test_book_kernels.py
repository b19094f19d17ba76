"""Book kernels on hand-built batches: semantics, bad input (counted and flagged), batch-split invariance.

Synthetic batches are used where real data cannot show a case (anomalies never occur in the clean
LOBSTER sample); the real-data proof is in test_book_verify.py.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge import events as E
from quantedge.book.l2 import L2Book
from quantedge.book.l3 import L3Book
from quantedge.book.pseudo import PseudoBook
from quantedge.book.state import (
    A_CAPACITY,
    A_CROSSED,
    A_LOCKED,
    A_NEGATIVE_SIZE,
    A_OFF_TICK,
    A_UNKNOWN_ORDER,
    F_CROSSED,
    F_HALTED,
    F_LOCKED,
    F_TRUNCATED,
    FLAG_ANOM_BASE,
    SD_DEPLETED,
    SD_HIDDEN,
    SD_REFILLS,
)
from quantedge.book.venue import VenueBook


def orders(rows):
    """rows: (symbol, action, side, price, size, order_id)."""
    b = E.empty(len(rows))
    for i, (s, a, sd, p, q, oid) in enumerate(rows):
        b[i]["kind"] = E.KIND_ORDER
        b[i]["symbol"] = s
        b[i]["action"] = a
        b[i]["side"] = sd
        b[i]["price"] = p
        b[i]["size"] = q
        b[i]["order_id"] = oid
        b[i]["flags"] = E.FLAG_LAST
        b[i]["seq"] = i + 1
    return b


A, C, D, X = E.ACTION_ADD, E.ACTION_CANCEL, E.ACTION_DELETE, E.ACTION_EXECUTE


def test_l3_add_cancel_execute_delete():
    book = L3Book.allocate(2, capacity=8, max_orders=64)
    b = orders([
        (0, A, 1, 1_000_000, 100, 1), (0, A, 1, 1_000_000, 50, 2), (0, A, 1, 999_900, 30, 3),
        (0, A, -1, 1_000_100, 70, 4), (1, A, -1, 500_000, 10, 1),  # same id, other symbol: distinct
        (0, C, 1, 1_000_000, 40, 1), (0, X, 1, 1_000_000, 50, 2), (0, D, 1, 999_900, 30, 3),
    ])
    assert book.step(b) == 8
    px, sz, kn = book.top(3)
    assert px[0, 0].tolist() == [1_000_000, 0, 0] and sz[0, 0].tolist() == [60, 0, 0]
    assert px[0, 1].tolist() == [1_000_100, 0, 0] and sz[0, 1].tolist() == [70, 0, 0]
    assert kn[0].all()  # built from an empty book by a full stream: everything known
    assert px[1, 1, 0] == 500_000 and sz[1, 1, 0] == 10
    assert book.live_orders == 3  # orders 1 (60 left) and 4 on symbol 0, order 1 on symbol 1
    assert book.anomalies(0) == {}


def test_l3_hidden_and_cross_trades_do_not_change_book_and_halt_is_recorded():
    book = L3Book.allocate(1, capacity=8, max_orders=64)
    book.step(orders([(0, A, 1, 1_000_000, 100, 1)]))
    t = E.empty(3)
    t["kind"] = [E.KIND_TRADE, E.KIND_TRADE, E.KIND_STATUS]
    t["conditions"] = [E.COND_HIDDEN, E.COND_CROSS, 0]
    t["price"] = [1_000_000, 1_000_000, 0]
    t["size"] = [500, 900, 0]
    t["action"] = [0, 0, E.STATUS_HALT]
    before = book.lv.copy()
    assert book.step(t) == 3
    assert np.array_equal(before, book.lv)
    assert book.flags(0) & F_HALTED
    from quantedge.book.state import C_CROSS_TRADES, C_HALTS, C_HIDDEN

    assert (book.bk[0, C_HIDDEN], book.bk[0, C_CROSS_TRADES], book.bk[0, C_HALTS]) == (1, 1, 1)


# --- bad input: each case counted on the book and flagged (sticky bit), never raised ------------

def test_unknown_order_delete_is_applied_to_its_level_and_counted():
    book = L3Book.allocate(1, capacity=8, max_orders=64)
    # seed 300 pre-existing shares at 100.00 (volume from before the data began)
    book.seed_side(0, 0, np.array([1_000_000]), np.array([300]), complete=False, aux_is_size=True)
    book.step(orders([(0, D, 1, 1_000_000, 100, 77), (0, X, 1, 1_000_000, 50, 78)]))
    assert book.sz[0, 0, 0] == 150
    assert book.bk[0, A_UNKNOWN_ORDER] == 2
    assert book.flags(0) & (FLAG_ANOM_BASE << A_UNKNOWN_ORDER)


def test_negative_size_is_clamped_counted_and_flagged():
    book = L3Book.allocate(1, capacity=8, max_orders=64)
    book.step(orders([(0, A, 1, 1_000_000, 100, 1), (0, C, 1, 1_000_000, 150, 1),
                      (0, D, -1, 1_100_000, 10, 9)]))  # unknown order at a price with no level
    assert book.nlev[0].tolist() == [0, 0]
    assert book.bk[0, A_NEGATIVE_SIZE] == 2
    assert book.flags(0) & (FLAG_ANOM_BASE << A_NEGATIVE_SIZE)
    l2 = L2Book.allocate(1)
    d = E.empty(1)
    d["kind"], d["side"], d["price"], d["size"] = E.KIND_DEPTH, 1, 1_000_000, -5
    assert l2.step(d) == 0 and l2.anomalies(0) == {"bad_field": 1}


def test_off_grid_price_is_applied_and_counted():
    book = L3Book.allocate(1, capacity=8, max_orders=64)
    book.step(orders([(0, A, 1, 1_000_050, 100, 1), (0, A, 1, 5_001, 100, 2)]))  # $100.005; $0.5001 is fine
    assert book.px[0, 0, 0] == 1_000_050
    assert book.bk[0, A_OFF_TICK] == 1
    assert book.flags(0) & (FLAG_ANOM_BASE << A_OFF_TICK)


def test_crossed_update_is_kept_flagged_and_counted():
    book = L3Book.allocate(1, capacity=8, max_orders=64)
    book.step(orders([(0, A, -1, 1_000_000, 100, 1), (0, A, 1, 1_000_100, 100, 2)]))
    assert book.flags(0) & F_CROSSED
    assert book.bk[0, A_CROSSED] == 1
    assert book.px[0, 0, 0] == 1_000_100  # not "fixed"
    book.step(orders([(0, D, 1, 1_000_100, 100, 2)]))
    assert not book.flags(0) & F_CROSSED
    assert book.flags(0) & (FLAG_ANOM_BASE << A_CROSSED)  # history stays


def test_stale_levels_are_evicted_by_a_resting_add_or_an_execution_only_when_not_known():
    """A level kept from outside the feed's window (not fully known) that a resting add or a visible
    execution proves gone is removed and counted; with eviction off it stays and the book is crossed."""
    from quantedge.book.state import C_EVICTED

    def stale_book(evict: bool) -> L3Book:
        book = L3Book.allocate(1, capacity=8, max_orders=64, known_from_start=False, evict_stale=evict)
        # asks 100.00 / 100.05 and bids 99.90 / 99.80 whose cancels the feed never sent
        book.step(orders([(0, A, -1, 1_000_000, 100, 1), (0, A, -1, 1_000_500, 100, 2),
                          (0, A, 1, 999_000, 100, 3), (0, A, 1, 998_000, 100, 4)]))
        assert not book.known[0].any()
        return book

    book = stale_book(True)
    book.step(orders([(0, A, 1, 1_000_200, 50, 5)]))  # a resting bid at 100.02: the 100.00 ask is gone
    assert book.px[0, 1, 0] == 1_000_500 and book.px[0, 0, 0] == 1_000_200
    assert book.bk[0, C_EVICTED] == 1 and not book.flags(0) & F_CROSSED and book.bk[0, A_CROSSED] == 0
    # an execution at 100.07 on the ask side: the better (stale) 100.05 ask cannot exist
    book.step(orders([(0, A, -1, 1_000_700, 30, 7), (0, X, -1, 1_000_700, 10, 7)]))
    assert book.px[0, 1, :2].tolist() == [1_000_700, 0] and book.sz[0, 1, 0] == 20
    assert book.bk[0, C_EVICTED] == 2
    # an execution of the 99.90 bid: the 100.02 bid above it cannot exist
    book.step(orders([(0, X, 1, 999_000, 10, 3)]))
    assert book.px[0, 0, :2].tolist() == [999_000, 998_000] and book.sz[0, 0, 0] == 90
    assert book.bk[0, C_EVICTED] == 3 and book.bk[0, A_CROSSED] == 0

    raw = stale_book(False)
    raw.step(orders([(0, A, 1, 1_000_200, 50, 5)]))
    assert raw.px[0, 1, 0] == 1_000_000 and raw.flags(0) & F_CROSSED and raw.bk[0, C_EVICTED] == 0


def test_capacity_overflow_drops_deepest_level_counted_and_flagged():
    book = L3Book.allocate(1, capacity=3, max_orders=64)
    book.step(orders([(0, A, 1, 1_000_000 - 100 * i, 10, i + 1) for i in range(5)]))
    assert book.nlev[0, 0] == 3
    assert book.px[0, 0].tolist() == [1_000_000, 999_900, 999_800]
    assert book.bk[0, A_CAPACITY] == 2
    assert book.flags(0) & F_TRUNCATED
    _, _, kn = book.top(4)
    assert kn[0, 0, 3] == 0  # the side is no longer complete: the empty slot is not known


def test_out_of_range_symbol_is_counted_on_the_extra_row():
    book = L3Book.allocate(1, capacity=3, max_orders=64)
    assert book.step(orders([(5, A, 1, 1_000_000, 10, 1)])) == 0
    assert book.anomalies(1) == {"bad_symbol": 1}


# --- L2 -------------------------------------------------------------------------------------------

def depth(rows):
    """rows: (side, level, action, price, size)."""
    b = E.empty(len(rows))
    for i, (sd, lvl, a, p, q) in enumerate(rows):
        b[i]["kind"] = E.KIND_DEPTH
        b[i]["side"], b[i]["level"], b[i]["action"], b[i]["price"], b[i]["size"] = sd, lvl, a, p, q
    return b


def test_l2_by_price_and_window_reveal():
    book = L2Book.allocate(1, capacity=8, window=2)
    book.seed_side(0, 0, np.array([1_000_000, 999_900]), np.array([5, 6]), complete=False)
    book.step(depth([(1, -1, E.ACTION_MODIFY, 1_000_000, 0, )]))  # touch removed: level 2 unseen
    px, sz, kn = book.top(2)
    assert px[0, 0].tolist() == [999_900, 0] and kn[0, 0].tolist() == [1, 0]
    book.step(depth([(1, -1, E.ACTION_MODIFY, 999_800, 7)]))  # beyond the horizon: size exact, gap possible
    px, sz, kn = book.top(2)
    assert px[0, 0].tolist() == [999_900, 999_800] and kn[0, 0].tolist() == [1, 0]


def test_l2_by_position_insert_modify_delete_and_bad_index():
    book = L2Book.allocate(1, capacity=4)
    book.step(depth([
        (-1, 0, A, 1_000_100, 10), (-1, 1, A, 1_000_300, 30), (-1, 1, A, 1_000_200, 20),
        (-1, 2, E.ACTION_MODIFY, 1_000_300, 33), (-1, 0, D, 0, 0), (-1, 7, E.ACTION_MODIFY, 1_000_500, 1),
    ]))
    assert book.px[0, 1, :2].tolist() == [1_000_200, 1_000_300] and book.sz[0, 1, :2].tolist() == [20, 33]
    assert book.anomalies(0) == {"bad_index": 1}
    book.step(depth([(-1, 0, A, 1_000_900, 1)]))  # breaks price order: applied as sent, counted
    assert book.anomalies(0)["unsorted"] == 1
    clr = E.empty(1)
    clr["kind"], clr["side"] = E.KIND_CLEAR, 0
    book.step(clr)
    assert book.nlev[0].tolist() == [0, 0]


# --- per-venue consolidated book ----------------------------------------------------------------

def quotes(rows):
    """rows: (venue, side, price, size)."""
    b = E.empty(len(rows))
    for i, (v, sd, p, q) in enumerate(rows):
        b[i]["kind"] = E.KIND_QUOTE
        b[i]["venue"], b[i]["side"], b[i]["price"], b[i]["size"] = v, sd, p, q
    return b


def test_venue_book_aggregates_and_flags_locked_and_crossed():
    book = VenueBook.allocate(1)
    book.step(quotes([(5, 1, 1_000_000, 100), (7, 1, 1_000_000, 200), (11, 1, 999_900, 300),
                      (5, -1, 1_000_200, 100), (7, -1, 1_000_100, 50)]))
    assert book.nbbo()[0].tolist() == [1_000_000, 300, 1_000_100, 50]
    assert book.lv[0, 0, 0, 2] == 2  # two venues at the best bid
    book.step(quotes([(11, 1, 1_000_100, 10)]))  # NYSE Arca bids at the ask: locked
    assert book.flags(0) & F_LOCKED and book.bk[0, A_LOCKED] == 1
    book.step(quotes([(11, 1, 1_000_150, 10)]))  # then through it: crossed, kept as quoted
    assert book.flags(0) & F_CROSSED and book.bk[0, A_CROSSED] == 1
    assert book.nbbo()[0, 0] == 1_000_150
    book.step(quotes([(11, 1, 0, 0)]))  # venue withdraws its bid
    assert book.nbbo()[0].tolist() == [1_000_000, 300, 1_000_100, 50]
    assert not book.flags(0) & (F_CROSSED | F_LOCKED)
    _, _, kn = book.top(2)
    assert kn[0, 0].tolist() == [1, 0]  # only the NBBO level is fully known


# --- pseudo-L2 ------------------------------------------------------------------------------------

def test_pseudo_depletion_refill_and_hidden():
    book = PseudoBook.allocate(1)
    b = E.empty(6)
    b["kind"] = [E.KIND_QUOTE, E.KIND_QUOTE, E.KIND_TRADE, E.KIND_TRADE, E.KIND_QUOTE, E.KIND_QUOTE]
    b["side"] = [1, -1, -1, -1, 1, 1]
    b["price"] = [15_000, 15_100, 15_000, 15_000, 15_000, 15_100]
    b["size"] = [500, 400, 300, 400, 600, 0]
    b["flags"][5] = E.FLAG_FROM_TRADE
    book.step(b[:3])
    assert book.sz[0, 0, 0] == 200 and book.known[0, 0, 0] == 0 and book.sd[0, 0, SD_DEPLETED] == 300
    book.step(b[3:4])  # 400 more printed at the bid: 200 beyond the estimate
    assert book.sz[0, 0, 0] == 0 and book.sd[0, 0, SD_HIDDEN] == 200
    book.step(b[4:5])  # the bid refreshes to 600 at the same price: a refill
    assert book.sd[0, 0, SD_REFILLS] == 1 and book.sz[0, 0, 0] == 600 and book.known[0, 0, 0] == 1
    book.step(b[5:6])  # bid moves up; size unknown (quote from a trade row); old touch becomes level 1
    px, sz, kn = book.top(2)
    assert px[0, 0].tolist() == [15_100, 15_000] and kn[0, 0].tolist() == [0, 0]


# --- batch-split invariance ------------------------------------------------------------------------

def _random_stream(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = E.empty(n)
    b["symbol"] = rng.integers(0, 3, n)
    b["kind"] = rng.choice([E.KIND_ORDER] * 8 + [E.KIND_TRADE, E.KIND_STATUS], n)
    b["action"] = np.where(b["kind"] == E.KIND_ORDER, rng.choice([A, A, A, C, D, X], n),
                           rng.integers(0, 3, n))
    b["side"] = rng.choice([1, -1], n)
    b["price"] = 1_000_000 + 100 * rng.integers(-6, 7, n) * b["side"].astype(np.int64) * -1
    b["size"] = rng.integers(1, 300, n)
    b["order_id"] = rng.integers(1, 60, n)
    b["flags"] = E.FLAG_LAST
    return b


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 600), max_size=12))
def test_l3_batch_split_invariance(seed, cuts):
    stream = _random_stream(seed, 600)
    whole = L3Book.allocate(3, capacity=6, max_orders=64)
    whole.step(stream)
    parts = L3Book.allocate(3, capacity=6, max_orders=64)
    bounds = [0, *sorted(cuts), 600]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        parts.step(stream[a:b])
    assert np.array_equal(whole.lv, parts.lv)
    assert np.array_equal(whole.sd, parts.sd)
    assert np.array_equal(whole.bk, parts.bk)
    assert np.array_equal(whole.ot, parts.ot)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_l2_venue_pseudo_batch_split_invariance(seed, cuts):
    rng = np.random.default_rng(seed)
    n = 400
    b = E.empty(n)
    b["symbol"] = rng.integers(0, 2, n)
    b["kind"] = rng.choice([E.KIND_DEPTH, E.KIND_QUOTE, E.KIND_TRADE], n)
    b["side"] = rng.choice([1, -1], n)
    b["price"] = 15_000 + rng.integers(-5, 6, n)
    b["size"] = rng.integers(0, 500, n)
    b["venue"] = rng.choice([0, 5, 7, 11], n)
    bounds = [0, *sorted(cuts), n]
    for make in (lambda: L2Book.allocate(2, capacity=5), lambda: VenueBook.allocate(2, capacity=5),
                 lambda: PseudoBook.allocate(2, capacity=4)):
        whole, parts = make(), make()
        whole.step(b)
        for x, y in zip(bounds[:-1], bounds[1:], strict=True):
            parts.step(b[x:y])
        assert np.array_equal(whole.lv, parts.lv) and np.array_equal(whole.sd, parts.sd)
        assert np.array_equal(whole.bk, parts.bk)
