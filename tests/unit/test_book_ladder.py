"""The price-indexed ladder book holds the same books as the sorted-level L2 book.

Real data: both LOBSTER-derived market-by-price streams of the AMZN 5-level day, compared after
every event (levels, sizes, level counts, every counter and flag).  Synthetic streams (hypothesis)
for what the real day cannot show: clears, status, bad fields, symbols out of range, random batch
cuts; hand-built cases for the window moves, off-grid prices and position-based depth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from quantedge import events as E
from quantedge.book.l2 import L2Book, l2_step
from quantedge.book.ladder import HD_BEST, HD_NLEV, PL_BASE, PL_UNIT, LadderBook, ladder_step
from quantedge.book.state import (
    A_CAPACITY,
    B_TICK,
    F_CROSSED,
    F_TRUNCATED,
    HZ_ALL_BID,
    LV_KNOWN,
    LV_PX,
    LV_SZ,
    SD_HZ,
    SD_NLEV,
    SD_TRUNC,
)

DAY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster" / \
    "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"


@njit(cache=True)
def _first_difference(lv, sd, bk, q, hd, pl, bk2, events, tick_col) -> int:
    """Apply events one at a time to both books; index of the first event after which they differ
    (levels, sizes, level counts, counters, flags), -1 if none."""
    for i in range(events.shape[0]):
        l2_step(lv, sd, bk, events[i:i + 1])
        ladder_step(q, hd, pl, bk2, events[i:i + 1])
        for s in range(lv.shape[0]):
            for si in range(2):
                n = sd[s, si, SD_NLEV]
                if n != hd[s, si, HD_NLEV]:
                    return i
                j = hd[s, si, HD_BEST]
                for k in range(n):
                    while q[s, si, j] == 0:
                        j += -1 if si == 0 else 1
                    p = pl[s, PL_BASE] + j * pl[s, PL_UNIT]
                    if p != lv[s, si, k, LV_PX] or q[s, si, j] != lv[s, si, k, LV_SZ]:
                        return i
                    j += -1 if si == 0 else 1
        for s in range(bk.shape[0]):
            for c in range(bk.shape[1]):
                if c != tick_col and bk[s, c] != bk2[s, c]:
                    return i
    return -1


def _compare(events: np.ndarray, n_symbols: int, span: int = 4096, known_from_start: bool = True):
    l2 = L2Book.allocate(n_symbols, capacity=1024, known_from_start=known_from_start)
    ld = LadderBook.allocate(n_symbols, span=span, known_from_start=known_from_start)
    i = _first_difference(l2.lv, l2.sd, l2.bk, ld.q, ld.hd, ld.pl, ld.bk, events, B_TICK)
    return i, l2, ld


@pytest.fixture(scope="module")
def lobster_streams():
    from quantedge.book.bench import load_lobster_day, mbp_stream, mbp_top_stream

    events, truth0 = load_lobster_day(DAY)
    top, truth = mbp_top_stream(DAY)
    return {"l3-derived": mbp_stream(events, truth0), "top-N": top, "truth": truth}


@pytest.mark.parametrize("name", ["l3-derived", "top-N"])
def test_ladder_equals_sorted_l2_after_every_event_of_the_real_streams(lobster_streams, name):
    stream = lobster_streams[name]
    i, l2, ld = _compare(stream, 1)
    assert i == -1, f"books differ after event {i}"
    px, sz, kn = ld.top(8)
    px2, sz2, kn2 = l2.top(8)
    assert (px == px2).all() and (sz == sz2).all() and (kn == kn2).all()
    if name == "l3-derived":  # stale levels pile up: hundreds per side, some crossing the touch
        assert ld.nlev()[0].min() > 300
        assert ld.anomalies(0) == l2.anomalies(0) and ld.anomalies(0)["crossed"] > 0
    else:  # the top-N feed ends on LOBSTER's last orderbook row
        t = lobster_streams["truth"][-1]
        assert (px[0, :, :5] == t[:, :, 0]).all() and (sz[0, :, :5] == t[:, :, 1]).all()


def _events(rows):
    """rows: (symbol, kind, action, side, level, price, size)."""
    b = E.empty(len(rows))
    for i, (s, k, a, sd, lvl, p, q) in enumerate(rows):
        b[i]["symbol"], b[i]["kind"], b[i]["action"], b[i]["side"] = s, k, a, sd
        b[i]["level"], b[i]["price"], b[i]["size"] = lvl, p, q
        b[i]["ts_event"] = b[i]["ts_recv"] = 1_000 + i
        b[i]["seq"] = i + 1
    return b


def _random_stream(seed: int, n: int, n_symbols: int) -> np.ndarray:
    """By-price depth around $10 on the cent grid, with deletes, zero sizes, clears, status events,
    bad fields and symbols out of range; no price leaves a 64-step ladder."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        s = int(rng.integers(0, n_symbols + 1)) if rng.random() < 0.03 else int(rng.integers(0, n_symbols))
        r = rng.random()
        if r < 0.02:
            rows.append((s, E.KIND_CLEAR, 0, int(rng.choice([0, 1, -1])), -1, 0, 0))
        elif r < 0.04:
            rows.append((s, E.KIND_STATUS, int(rng.integers(1, 4)), 0, -1, 0, 0))
        elif r < 0.06:  # bad fields: side 0, negative size, price 0
            bad = int(rng.integers(0, 3))
            rows.append((s, E.KIND_DEPTH, E.ACTION_MODIFY, 0 if bad == 0 else 1, -1,
                         0 if bad == 2 else 100_000, -5 if bad == 1 else 10))
        else:
            side = 1 if rng.random() < 0.5 else -1
            # bids mostly below $10.00, asks above; some overlap makes crossed and locked books
            tick = int(rng.integers(-20, 4)) if side == 1 else int(rng.integers(-3, 21))
            size = 0 if rng.random() < 0.3 else int(rng.integers(1, 500))
            action = E.ACTION_DELETE if (size == 0 and rng.random() < 0.5) else E.ACTION_MODIFY
            rows.append((s, E.KIND_DEPTH, action, side, -1, 100_000 + 100 * tick, size))
    return _events(rows)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), known=st.booleans(), cuts=st.lists(st.integers(0, 1500), max_size=10))
def test_ladder_equals_l2_on_random_streams_and_is_batch_split_invariant(seed, known, cuts):
    stream = _random_stream(seed, 1500, 3)
    i, l2, ld = _compare(stream, 3, span=64, known_from_start=known)
    assert i == -1, f"books differ after event {i}"
    for n in (1, 4, 40):
        a, b = ld.top(n), l2.top(n)
        assert all((x == y).all() for x, y in zip(a, b, strict=True))
    # random batch boundaries: identical arrays
    ld2 = LadderBook.allocate(3, span=64, known_from_start=known)
    edges = [0, *sorted(cuts), 1500]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ld2.step(stream[a:b])
    for x, y in ((ld.q, ld2.q), (ld.hd, ld2.hd), (ld.pl, ld2.pl), (ld.bk, ld2.bk)):
        assert (x == y).all()


DEP, M, DEL = E.KIND_DEPTH, E.ACTION_MODIFY, E.ACTION_DELETE


def test_window_moves_to_a_price_outside_it_and_counts_what_falls_off():
    ld = LadderBook.allocate(1, span=16)
    rows = [(0, DEP, M, 1, -1, 100_000, 10)]  # placed on $10.00: the ladder covers $9.92..$10.07
    rows += [(0, DEP, M, 1, -1, 100_000 - 100 * k, 10 + k) for k in range(1, 9)]  # bids $9.99..$9.92
    rows += [(0, DEP, M, -1, -1, 100_100 + 100 * k, 5) for k in range(7)]  # asks $10.01..$10.07
    ld.step(_events(rows))
    assert ld.nlev().tolist() == [[9, 7]] and not ld.anomalies(0)
    # an ask at $10.10 moves the window up 5 steps (2 past the edge + span/8): bids $9.92..$9.96 fall off
    ld.step(_events([(0, DEP, M, -1, -1, 101_000, 7)]))
    assert ld.anomalies(0) == {"capacity": 5}
    assert ld.flags(0) & F_TRUNCATED and ld.hd[0, 0, 3] == 1 and ld.hd[0, 1, 3] == 0
    px, sz, kn = ld.top(10)
    assert px[0, 0, :4].tolist() == [100_000, 99_900, 99_800, 99_700] and px[0, 0, 4] == 0
    assert px[0, 1, :8].tolist() == [100_100 + 100 * k for k in range(7)] + [101_000]
    assert kn[0, 0, 4] == 0  # below the dropped levels nothing is known any more
    # removal of a price the ladder no longer covers: nothing there, nothing moves
    before = ld.q.copy()
    ld.step(_events([(0, DEP, DEL, 1, -1, 99_200, 0)]))
    assert (ld.q == before).all() and ld.anomalies(0) == {"capacity": 5}
    # a bid far below: moving the window to it would drop both touches, so that level is the one
    # dropped (counted), as L2Book drops its deepest level, never the touch
    before = ld.q.copy()
    ld.step(_events([(0, DEP, M, 1, -1, 95_000, 3)]))
    assert ld.anomalies(0) == {"capacity": 6} and ld.nlev().tolist() == [[4, 8]]
    assert (ld.q == before).all() and ld.top(1)[0][0, :, 0].tolist() == [100_000, 100_100]
    # a snapshot deeper than the ladder is refused, not silently cut at its best end
    with pytest.raises(ValueError, match="too far from the best level"):
        LadderBook.allocate(1, span=16).seed_side(0, 0, 100_000 - 100 * np.arange(20), np.full(20, 5),
                                                   complete=False)


def test_off_grid_price_position_depth_and_bad_symbol_are_counted_not_applied():
    ld = LadderBook.allocate(2, span=64)
    ld.step(_events([
        (0, DEP, M, 1, -1, 100_000, 10),
        (0, DEP, M, 1, -1, 99_950, 10),  # half a cent: not on the cent grid
        (0, DEP, E.ACTION_ADD, -1, 0, 100_100, 5),  # position-based depth
        (5, DEP, M, 1, -1, 100_000, 10),  # no such symbol
    ]))
    assert ld.nlev().tolist() == [[1, 0], [0, 0]]
    assert ld.anomalies(0) == {"off_tick": 1, "bad_index": 1}
    assert ld.anomalies(2) == {"bad_symbol": 1}
    # a sub-dollar symbol on the $0.0001 grid
    sub = LadderBook.allocate(1, span=64, unit=1)
    sub.step(_events([(0, DEP, M, 1, -1, 5_001, 100), (0, DEP, M, -1, -1, 5_003, 100)]))
    assert sub.top(1)[0][0, :, 0].tolist() == [5_001, 5_003] and not sub.anomalies(0)


def test_seed_and_export_to_the_sorted_level_layout():
    ld = LadderBook.allocate(1, span=64)
    l2 = L2Book.allocate(1, capacity=8)
    for book in (ld, l2):
        book.seed_side(0, 0, np.array([100_000, 99_900, 99_700]), np.array([5, 6, 7]), complete=False)
        book.seed_side(0, 1, np.array([100_100]), np.array([9]), complete=True)
    crossing = _events([(0, DEP, M, -1, -1, 99_900, 4), (0, DEP, M, 1, -1, 99_600, 8)])
    ld.step(crossing)
    l2.step(crossing)
    assert ld.flags(0) & F_CROSSED and ld.flags(0) == l2.flags(0)
    for a, b in zip(ld.top(6), l2.top(6), strict=True):
        assert (a == b).all()
    kn = ld.top(6)[2][0, 0]
    assert kn.tolist() == [1, 1, 1, 0, 0, 0]  # $99.96 is behind the seeded horizon $99.97: unknown
    out = ld.to_level_book(capacity=3)
    assert (out.lv[0, 0, :, LV_PX] == [100_000, 99_900, 99_700]).all()
    assert out.sd[0, 0, SD_NLEV] == 3 and out.sd[0, 0, SD_TRUNC] == 1 and out.sd[0, 1, SD_TRUNC] == 0
    assert out.sd[0, 1, SD_HZ] == l2.sd[0, 1, SD_HZ] and (out.lv[0, 1, :2, LV_KNOWN] == [1, 1]).all()
    assert out.flags(0) & F_TRUNCATED
    with pytest.raises(ValueError, match="off the grid"):
        ld.seed_side(0, 0, np.array([100_050]), np.array([1]), complete=True)


def test_clear_empties_a_side_and_makes_it_known():
    ld = LadderBook.allocate(1, span=64, known_from_start=False)
    ld.step(_events([(0, DEP, M, 1, -1, 100_000, 10), (0, DEP, M, -1, -1, 100_100, 10)]))
    assert ld.top(1)[2][0].tolist() == [[0], [0]]
    ld.step(_events([(0, E.KIND_CLEAR, 0, 1, -1, 0, 0), (0, DEP, M, 1, -1, 99_900, 3)]))
    px, sz, kn = ld.top(2)
    assert px[0, 0].tolist() == [99_900, 0] and kn[0, 0].tolist() == [1, 1]
    assert ld.hd[0, 0, 2] == HZ_ALL_BID and ld.anomalies(0) == {} and ld.bk[0, A_CAPACITY] == 0
