"""Simulator engine: determinism, labels, book invariants, tick-size rules, catalog round trip."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge import events as ev
from quantedge.synth import engine as E
from quantedge.synth.episodes import FIRST_START, KINDS
from quantedge.synth.generate import (
    CONTRACTION_MIN_SPREAD_TICKS,
    SPREAD_PROBE_S,
    generate_to_catalog,
    open_ns,
    opening_spread_ticks,
    plan_symbol_day,
    read_labels,
    simulate_symbol,
    simulate_symbol_day,
)

DAY = dt.date(2024, 1, 2)


@pytest.fixture(scope="module")
def penny_day():
    return simulate_symbol(11, 2, "penny", [DAY], 0)[0]


@pytest.fixture(scope="module")
def large_day():
    return simulate_symbol(11, 5, "large", [DAY], 0)[0]


def _nbbo(events):
    q = events[events["kind"] == ev.KIND_QUOTE]
    return q[q["side"] == ev.SIDE_BID], q[q["side"] == ev.SIDE_ASK]


def test_same_seed_gives_byte_identical_events(large_day):
    again = simulate_symbol(11, 5, "large", [DAY], 0)[0]
    assert again.events.tobytes() == large_day.events.tobytes()
    assert again.labels == large_day.labels
    other = simulate_symbol(12, 5, "large", [DAY], 0)[0]
    assert other.events.tobytes() != large_day.events.tobytes()


def test_days_chain_and_are_individually_reproducible():
    two = simulate_symbol(3, 1, "large", [DAY, DAY + dt.timedelta(days=1)], 0)
    assert two[0].events.tobytes() == simulate_symbol(3, 1, "large", [DAY], 0)[0].events.tobytes()
    b1, a1 = _nbbo(two[1].events)
    open_mid = 0.5 * (b1["price"][0] + a1["price"][0]) / 1e4
    assert abs(open_mid / two[0].close - 1) < 0.01  # day 2 opens at day 1's close


def test_every_episode_kind_is_labelled_inside_the_session(penny_day, large_day):
    o = open_ns(DAY)
    seen = set()
    for day in (penny_day, large_day):
        labs = day.labels
        assert len(labs) >= 5
        starts = [r["start_ns"] for r in labs]
        assert starts == sorted(starts)
        for r, nxt in zip(labs, labs[1:], strict=False):
            assert r["end_ns"] <= nxt["start_ns"]
        for r in labs:
            assert o + 3600 * 10**9 <= r["start_ns"] < r["end_ns"] <= o + 23_400 * 10**9
            assert 0 < r["intensity"] <= 1
            assert r["symbol"] == day.symbol and r["date"] == DAY.isoformat()
            seen.add(r["kind"])
        ts = day.events["ts_event"]
        assert ts.min() >= o and ts.max() < o + 23_400 * 10**9
    assert seen == set(KINDS.values())


def test_contraction_is_planted_only_where_the_spread_can_contract():
    """The opening-spread probe is the real day's first 30 minutes (same events), and a contraction
    is planted exactly when that spread is at least 2.5 minimum ticks; $1+ small caps pinned at one
    cent get none, and a planted one really narrows the spread."""
    assert SPREAD_PROBE_S <= FIRST_START
    seen = set()
    for index, regime in ((0, "penny"), (1, "penny"), (6, "penny"), (10, "large")):
        par, plan, kseed = plan_symbol_day(101, index, 0, regime, None, tuple(KINDS))
        ticks = opening_spread_ticks(par, kseed)
        planted = E.EP_CONTRACTION in plan[0]
        assert planted == (ticks >= CONTRACTION_MIN_SPREAD_TICKS)
        seen.add(planted)
        day, _ = simulate_symbol_day(par, plan, kseed, 0, 0)
        probe = par.copy()
        probe[E.P_STOP] = SPREAD_PROBE_S
        none = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
        head, _ = simulate_symbol_day(probe, none, kseed, 0, 0)
        assert day[: head.shape[0]].tobytes() == head.tobytes()
        if par[E.P_P0] >= E.SUB and regime == "penny":
            assert not planted and ticks <= 1.0
        if planted:
            k = list(plan[0]).index(E.EP_CONTRACTION)
            bid, ask = _nbbo(day)
            t = bid["ts_event"] / 1e9
            inside = (t >= plan[1][k] + 10) & (t < plan[2][k])
            spread = (ask["price"] - bid["price"]).astype(float)
            tick = 100 if par[E.P_P0] >= E.SUB else 1
            assert np.median(spread[inside]) / tick < ticks
    assert seen == {True, False}


def _check_book(events):
    """Replay order events into a book; at each NBBO pair the touch must match and never cross."""
    assert (events["ts_recv"] >= events["ts_event"]).all()
    assert (np.diff(events["ts_recv"]) >= 0).all()
    assert (events["flags"] & ev.FLAG_TS_RECV_MODELED).all()
    o = events[events["kind"] == ev.KIND_ORDER]
    assert (o["size"] > 0).all() and (o["price"] > 0).all()
    tr = events[events["kind"] == ev.KIND_TRADE]
    assert (tr["size"] > 0).all() and (tr["price"] > 0).all()
    assert (events["size"][events["kind"] == ev.KIND_DEPTH] >= 0).all()
    bid, ask = _nbbo(events)
    assert bid.shape == ask.shape and (bid["seq"] == ask["seq"]).all()
    both = (bid["price"] > 0) & (ask["price"] > 0)
    assert (bid["price"][both] < ask["price"][both]).all()
    assert (ask["flags"] & ev.FLAG_LAST).all() and not (bid["flags"] & ev.FLAG_LAST).any()
    # full L3 replay against the emitted NBBO
    live: dict[int, list] = {}
    levels: dict[tuple[int, int], int] = {}
    k = events["kind"]
    qi = 0
    for i in range(events.shape[0]):
        e = events[i]
        if k[i] == ev.KIND_ORDER:
            oid, side, px, sz, act = int(e["order_id"]), int(e["side"]), int(e["price"]), int(e["size"]), int(
                e["action"])
            if act == ev.ACTION_ADD:
                assert oid not in live
                live[oid] = [side, px, sz]
                levels[(side, px)] = levels.get((side, px), 0) + sz
            else:
                rec = live[oid]
                assert rec[1] == px and rec[0] == side and sz <= rec[2]
                rec[2] -= sz
                levels[(side, px)] -= sz
                if act == ev.ACTION_DELETE:
                    assert rec[2] == 0
                if rec[2] == 0:
                    del live[oid]
                if levels[(side, px)] == 0:
                    del levels[(side, px)]
        elif k[i] == ev.KIND_QUOTE and e["side"] == ev.SIDE_ASK:
            bb = max((p for (s, p) in levels if s == 1), default=0)
            ba = min((p for (s, p) in levels if s == -1), default=0)
            assert (bid["price"][qi], ask["price"][qi]) == (bb, ba)
            assert bid["size"][qi] == levels.get((1, bb), 0) and ask["size"][qi] == levels.get((-1, ba), 0)
            qi += 1
    assert qi == ask.shape[0]


def test_book_invariants_large(large_day):
    _check_book(large_day.events)


def test_book_invariants_penny(penny_day):
    _check_book(penny_day.events)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), regime=st.sampled_from(["penny", "large"]),
       price=st.sampled_from([0.6, 0.97, 1.02, 3.5, 140.0]))
def test_book_invariants_short_sessions(seed, regime, price):
    par, plan, kseed = plan_symbol_day(seed, 0, 0, regime, price, ())
    par[E.P_DUR] = 900.0
    events, _ = simulate_symbol_day(par, plan, kseed, 0, open_ns(DAY))
    _check_book(events)
    _check_ticks(events)


def _check_ticks(events):
    quoted = events[np.isin(events["kind"], (ev.KIND_ORDER, ev.KIND_DEPTH, ev.KIND_QUOTE))]
    px = quoted["price"][quoted["price"] > 0]
    assert (px[px >= ev.PRICE_SCALE] % 100 == 0).all()  # $0.01 at/above $1
    return px


def test_sub_penny_rule_below_one_dollar():
    par, plan, kseed = plan_symbol_day(5, 0, 0, "penny", 0.80, ())
    events, _ = simulate_symbol_day(par, plan, kseed, 0, open_ns(DAY))
    px = _check_ticks(events)
    below = px[px < ev.PRICE_SCALE]
    assert below.size and (below % 100 != 0).any()  # $0.0001 increments are used below $1
    lit = events[(events["kind"] == ev.KIND_TRADE) & (events["venue"] != 19)]
    assert (lit["price"][lit["price"] >= ev.PRICE_SCALE] % 100 == 0).all()


def test_off_exchange_prints_and_dark_pool_episode(penny_day):
    tr = penny_day.events[penny_day.events["kind"] == ev.KIND_TRADE]
    off = (tr["conditions"] & ev.COND_OFF_EXCHANGE) != 0
    assert ((tr["venue"] == 19) == off).all()
    assert (tr["side"][off] == 0).all() and (tr["side"][~off] != 0).all()
    odd = (tr["conditions"] & ev.COND_ODD_LOT) != 0
    assert (odd == (tr["size"] < 100)).all()
    lab = next(r for r in penny_day.labels if r["kind"] == "dark_pool")
    inside = (tr["ts_event"] >= lab["start_ns"]) & (tr["ts_event"] < lab["end_ns"])
    share_in = tr["size"][inside & off].sum() / tr["size"][inside].sum()
    share_out = tr["size"][~inside & off].sum() / tr["size"][~inside].sum()
    assert share_in > share_out + 0.15


def _spread_in(events, t0, t1):
    b, a = _nbbo(events)
    m = (b["ts_event"] >= t0) & (b["ts_event"] < t1) & (b["price"] > 0) & (a["price"] > 0)
    return (a["price"] - b["price"])[m]


def test_dumping_blows_out_the_spread_and_absorption_holds_the_bid(penny_day, large_day):
    for day in (penny_day, large_day):
        ev_ = day.events
        lab = next(r for r in day.labels if r["kind"] == "dumping")
        during = _spread_in(ev_, lab["start_ns"], lab["end_ns"])
        before = _spread_in(ev_, lab["start_ns"] - 600 * 10**9, lab["start_ns"])
        assert during.mean() > 1.3 * before.mean()
        lab = next(r for r in day.labels if r["kind"] == "absorption")
        tr = ev_[(ev_["kind"] == ev.KIND_TRADE) & (ev_["ts_event"] >= lab["start_ns"])
                 & (ev_["ts_event"] < lab["end_ns"]) & (ev_["venue"] != 19)]
        assert (tr["side"] == ev.SIDE_ASK).mean() > 0.6  # seller-initiated prints dominate
        b, _ = _nbbo(ev_)
        m = (b["ts_event"] >= lab["start_ns"]) & (b["ts_event"] < lab["end_ns"])
        start_bid = b["price"][np.searchsorted(b["ts_event"], lab["start_ns"]) - 1]
        assert np.median(b["price"][m]) >= start_bid  # the bid holds


def test_catalog_round_trip_and_labels(tmp_path):
    s = generate_to_catalog(tmp_path / "cat", 2, 1, DAY, seed=4, penny_share=0.5, workers=1)
    assert s.symbols == ["SIMP0000", "SIML0001"]
    from quantedge.catalog.store import Catalog

    cat = Catalog(tmp_path / "cat")
    for i, name in enumerate(s.symbols):
        regime = "penny" if i == 0 else "large"
        mem = simulate_symbol(4, i, regime, [DAY], cat.symbols.id(name))[0].events
        got = cat.read(name, DAY)
        assert got.shape == mem.shape
        assert got.tobytes() == mem.tobytes()  # the generator already emits merge order
    labels = read_labels(tmp_path / "cat")
    assert labels.num_rows == s.labels > 0
    assert set(labels.column("symbol").to_pylist()) == set(s.symbols)
    # regenerating replaces, never duplicates, the labels of those symbol-days
    generate_to_catalog(tmp_path / "cat", 2, 1, DAY, seed=4, penny_share=0.5, workers=1)
    assert read_labels(tmp_path / "cat").num_rows == s.labels


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="penny_share"):
        generate_to_catalog(tmp_path, 1, 1, DAY, penny_share=2.0)
    with pytest.raises(ValueError, match="regime"):
        plan_symbol_day(1, 0, 0, "midcap", None, ())


def _move_after(day, secs: float = 600.0) -> list[float]:
    """Per accumulation episode: last-20-prints mean price `secs` after its end over the same at its end."""
    tr = day.events[day.events["kind"] == ev.KIND_TRADE]
    t, p = tr["ts_recv"], tr["price"].astype(float)
    out = []
    for lab in day.labels:
        if lab["kind"] == "dumping":
            continue
        i0 = np.searchsorted(t, lab["end_ns"])
        i1 = np.searchsorted(t, lab["end_ns"] + int(secs * 1e9))
        out.append(p[max(i1 - 20, 0):i1].mean() / p[max(i0 - 20, 0):i0].mean() - 1.0)
    return out


def test_markup_off_by_default_and_the_move_follows_accumulation_when_on():
    """markup = 0 draws nothing extra (the day is the default day, byte for byte); with a 5 % markup the
    price 10 minutes after an accumulation episode stands above its level at the end (planted: 2.5-5 %
    by intensity), where without it it does not move on average."""
    base = [simulate_symbol(7, i, "penny", [DAY], 0)[0] for i in range(4)]
    zero = simulate_symbol(7, 0, "penny", [DAY], 0, markup=(0.0, 600.0))[0]
    assert np.array_equal(zero.events, base[0].events) and zero.labels == base[0].labels
    up = [simulate_symbol(7, i, "penny", [DAY], 0, markup=(0.05, 600.0))[0] for i in range(4)]
    assert all(u.labels == b.labels for u, b in zip(up, base, strict=True))  # same plan, same labels
    with_mk = np.concatenate([_move_after(d) for d in up])
    without = np.concatenate([_move_after(d) for d in base])
    assert np.mean(with_mk) > 0.025 and np.median(with_mk) > 0.02
    assert abs(np.mean(without)) < 0.01
    with pytest.raises(ValueError, match="markup"):
        generate_to_catalog("/nonexistent-never-written", 1, 1, DAY, markup=2.0)
