"""Hand-checked feature values on small constructed streams (synthetic only where real data cannot
show the exact expected value) and exact checks against the raw real files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge import events as ev
from quantedge.book.l2 import L2Book
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.state import BUCKET_NS, COL, NB, NS, WINDOW_TAGS, FeatureState

T0 = 1_600_000_000 * NS  # a whole second, 2020-09-13 12:26:40 UTC


class Stream:
    """Builds an EVENT_DTYPE stream for symbol 0; every helper call is one atomic group."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.seq = 0

    def _add(self, t: float, last: bool = True, **kw) -> None:
        self.seq += 1
        r = dict(ts_event=T0 + round(t * NS), seq=self.seq, flags=ev.FLAG_LAST if last else 0, **kw)
        self.rows.append(r)

    def quote(self, t: float, bid: float, bsz: int, ask: float, asz: int, from_trade: bool = False):
        f = ev.FLAG_FROM_TRADE if from_trade else 0
        self._add(t, False, kind=ev.KIND_QUOTE, side=1, price=ev.price_to_fixed(bid), size=bsz)
        self._add(t, True, kind=ev.KIND_QUOTE, side=-1, price=ev.price_to_fixed(ask), size=asz)
        self.rows[-1]["flags"] |= f
        self.rows[-2]["flags"] |= f
        return self

    def trade(self, t: float, px: float, size: int, venue: int = 5, cond: int = ev.COND_REGULAR,
              side: int = 0):
        self._add(t, kind=ev.KIND_TRADE, price=ev.price_to_fixed(px), size=size, venue=venue, conditions=cond,
                  side=side)
        return self

    def depth(self, t: float, side: int, px: float, size: int, last: bool = True):
        self._add(t, last, kind=ev.KIND_DEPTH, side=side, price=ev.price_to_fixed(px), size=size)
        return self

    def build(self) -> np.ndarray:
        out = ev.empty(len(self.rows))
        for i, r in enumerate(self.rows):
            for k, v in r.items():
                out[i][k] = v
        out["ts_recv"] = out["ts_event"]
        return out


def run_nbbo(stream: Stream, **kw) -> FeaturePipeline:
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, **kw))
    p.step(stream.build())
    return p


def run_l2(stream: Stream, n_levels: int = 3, **kw) -> FeaturePipeline:
    fstate = FeatureState.allocate(1, n_levels=n_levels, **kw)
    p = FeaturePipeline("l2", fstate, L2Book.allocate(1, capacity=16))
    p.step(stream.build())
    return p


def f(p: FeaturePipeline, name: str) -> float:
    return float(p.features.F[0, COL[name]])


# --- trade classification ------------------------------------------------------------------------

def test_lee_ready_quote_rule_tick_rule_and_zero_ticks():
    s = Stream().quote(0.0, 10.00, 100, 10.04, 100)
    s.trade(0.1, 10.03, 100)  # above mid 10.02 -> buy (quote rule)
    s.trade(0.2, 10.01, 200)  # below mid -> sell (quote rule)
    s.trade(0.3, 10.02, 300)  # at mid, uptick from 10.01 -> buy (tick rule)
    s.trade(0.4, 10.02, 400)  # at mid, zero tick after an uptick -> buy
    s.trade(0.5, 10.00, 50)  # at the bid -> sell
    s.trade(0.6, 10.02, 60, cond=ev.COND_CROSS)  # cross print: counted volume, not classified
    p = run_nbbo(s)
    c = p.counters(0)
    assert (c["n_quote_rule"], c["n_tick_rule"], c["n_unclassified"]) == (3, 2, 0)
    assert f(p, "buy_volume_1s") == 100 + 300 + 400
    assert f(p, "sell_volume_1s") == 200 + 50
    assert f(p, "volume_1s") == 100 + 200 + 300 + 400 + 50 + 60
    assert f(p, "last_side_lr") == -1


def test_classification_uses_the_quote_in_force_at_the_trade_group():
    """An L2 group that removes the bid and prints against it: the print is a sell at the old bid,
    although after the group the old bid price is above the new mid."""
    s = Stream()
    s.depth(0, 1, 10.00, 100, last=False).depth(0, 1, 9.99, 100, last=False).depth(0, -1, 10.02, 100)
    s.depth(1, 1, 10.00, 0, last=False)  # the execution empties the bid level ...
    s.trade(1, 10.00, 100)  # ... and the print closes the group
    p = run_l2(s)
    assert p.counters(0)["n_quote_rule"] == 1
    assert f(p, "sell_volume_5s") == 100
    assert f(p, "bid") == pytest.approx(9.99)


def test_unknown_side_prints_fall_back_to_the_tick_rule_and_agreement_is_counted():
    s = Stream()
    s.trade(0.0, 5.00, 10, side=1)  # no quote, no previous print: unclassified
    s.trade(0.1, 5.01, 10, side=1)  # uptick: buy, agrees
    s.trade(0.2, 5.00, 10, side=1)  # downtick: sell, disagrees with the source side
    p = run_nbbo(s)
    c = p.counters(0)
    assert (c["n_tick_rule"], c["n_unclassified"], c["n_with_side"], c["n_agree"]) == (2, 1, 2, 1)
    assert f(p, "lr_agreement") == 0.5


# --- order-flow imbalance -----------------------------------------------------------------------

def test_ofi_touch_and_multi_level_on_a_constructed_book():
    s = Stream()
    s.depth(0, 1, 10.00, 100, last=False).depth(0, 1, 9.99, 200, last=False)
    s.depth(0, -1, 10.01, 150, last=False).depth(0, -1, 10.02, 250)
    # 1) bid size 100 -> 160 at the same price: e = +60 (touch); level 2 unchanged
    s.depth(1, 1, 10.00, 160)
    # 2) ask improves to 10.005? no: new ask level at 10.005 with 40 shares -> e = -40 at the touch
    s.depth(2, -1, 10.005, 40)
    # 3) bid level 10.00 removed: bid drops to 9.99 (200): e = -160 at the touch
    s.depth(3, 1, 10.00, 0)
    p = run_l2(s, n_levels=2)
    assert f(p, "ofi_10s") == 60 - 40 - 160
    # multi-level (2 levels), per event:
    # 1) bid L1 +60;  2) ask L1: new 10.005/40 better -> -40, ask L2: now 10.01/150 vs 10.02/250
    #    (price better) -> -150;  3) bid L1: 9.99/200 vs 10.00/160 -> -160,
    #    bid L2: empty (0) vs 9.99/200 -> -200
    assert f(p, "mlofi_10s") == 60 - 40 - 150 - 160 - 200
    assert f(p, "depth_bid") == 200
    assert f(p, "depth_ask") == 40 + 150


# --- spread, mid, velocity, volatility ----------------------------------------------------------

def test_time_weighted_spread_means_and_bps():
    s = Stream().quote(0.0, 10.00, 100, 10.02, 100)  # spread 200 for 2 s
    s.quote(2.0, 10.00, 100, 10.06, 100)  # spread 600 for 1 s
    s.trade(3.0, 10.03, 1)  # an event at t = 3 s moves the clock
    p = run_nbbo(s)
    assert f(p, "spread") == 600
    assert f(p, "spread_bps") == pytest.approx(600 / 100_300 * 1e4)
    assert f(p, "spread_avg_5s") == pytest.approx((200 * 2 + 600 * 1) / 3)
    assert f(p, "spread_minus_avg_5s") == pytest.approx(600 - 1000 / 3)
    assert f(p, "spread_ratio_5s_1h") == pytest.approx(1.0)


def test_spread_integral_stays_exact_past_the_int64_range():
    """A $999 spread (clipped to the $100 cap) held for 30 days integrates to ~2.6e21 $0.0001 x ns,
    past int64: the running total wraps, and every window (a difference of totals) stays exact."""
    day = 86_400.0
    s = Stream().quote(0.0, 1.00, 100, 1000.00, 100)
    s.trade(30 * day, 1.5, 1)
    p = run_nbbo(s)
    cap = 1_000_000
    assert f(p, "spread") == 9_990_000  # the feature itself is not clipped, only its time integral
    assert f(p, "spread_avg_1h") == cap
    assert f(p, "spread_avg_5s") == cap
    s.quote(30 * day, 10.00, 100, 10.02, 100)  # spread 200 from day 30 (the trade's time) on
    s.trade(30 * day + 3.0, 10.01, 1)
    p = run_nbbo(s)
    # the 5 s window at day 30 + 3 s covers 4.5 s: the cap for 1.5 s, then 200 for 3 s
    assert f(p, "spread_avg_5s") == (cap * 1_500_000_000 + 200 * 3_000_000_000) / 4_500_000_000
    # the 1 h window: nine full 6-minute buckets and the current one, which began 3,400 s before day 30
    t = (T0 + round((30 * day + 3.0) * NS)) // NS
    covered = t - (t // 360 - 9) * 360
    assert covered == 3_403
    assert f(p, "spread_avg_1h") == (cap * (covered - 3) * NS + 200 * 3 * NS) / (covered * NS)


def test_mid_velocity_std_and_microprice():
    s = Stream().quote(0.0, 10.00, 100, 10.02, 300)  # mid 10.01
    s.quote(1.0, 10.01, 100, 10.03, 300)  # mid 10.02 (+0.01)
    s.quote(2.0, 10.02, 100, 10.04, 300)  # mid 10.03 (+0.01)
    s.quote(4.0, 10.01, 100, 10.03, 300)  # mid 10.02 (-0.01)
    p = run_nbbo(s)
    assert f(p, "mid") == pytest.approx(10.02)
    assert f(p, "mid_change_5s") == pytest.approx(0.01)
    # elapsed 4 s since the symbol's first event; 0.01 / 10.02 / 4 s * 100
    assert f(p, "mid_velocity_5s") == pytest.approx(0.01 / 10.02 / 4 * 100)
    changes = np.array([0.01, 0.01, -0.01])
    assert f(p, "mid_std_5s") == pytest.approx(changes.std())
    assert f(p, "mid_rvol_bps_5s") == pytest.approx(math.sqrt((changes**2).sum()) / 10.02 * 1e4)
    # micro-price: (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
    assert f(p, "microprice") == pytest.approx((10.01 * 300 + 10.03 * 100) / 400)


def test_windows_are_ten_bucket_rings():
    """A print leaves the 1 s window once the ring has moved ten 100 ms buckets past it."""
    s = Stream().trade(0.05, 10.0, 100).trade(0.95, 10.0, 7)
    p = run_nbbo(s)
    assert f(p, "volume_1s") == 107
    s.trade(1.05, 10.0, 1)  # bucket 10: bucket 0 (the 100-share print) is evicted
    p = run_nbbo(s)
    assert f(p, "volume_1s") == 8
    assert f(p, "volume_5s") == 108
    s.trade(100.0, 10.0, 2)  # a long gap clears every short ring
    p = run_nbbo(s)
    assert (f(p, "volume_1s"), f(p, "volume_30s"), f(p, "volume_1h")) == (2, 2, 110)


GAPS_S = [0.001, 0.04, 0.13, 0.6, 1.7, 4.0, 12.0, 45.0, 400.0, 4000.0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(GAPS_S), st.booleans(), st.integers(1, 9)), min_size=1,
                      max_size=40))
def test_windows_over_quiet_gaps_equal_a_recount_after_every_event(steps):
    """Volume and time-weighted spread of every window, after every event of a stream with bursts
    and gaps from 1 ms to > 1 h (quiet runs of ring buckets are written lazily, docs/features.md),
    equal a recount from the events: the window is the current bucket and the NB - 1 before it."""
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    seq = [0]

    def one(kind: int, t_ns: int, px: int, size: int, side: int = 0, last: bool = True) -> None:
        e = ev.empty(1)
        seq[0] += 1
        e["ts_event"] = e["ts_recv"] = t_ns
        e["seq"], e["kind"], e["price"], e["size"], e["side"] = seq[0], kind, px, size, side
        e["flags"] = ev.FLAG_LAST if last else 0
        e["venue"], e["conditions"] = 5, ev.COND_REGULAR
        p.step(e)

    t = T0
    one(ev.KIND_QUOTE, t, 100_000, 100, side=1, last=False)
    one(ev.KIND_QUOTE, t, 100_100, 100, side=-1)
    spreads = [(t, 100)]  # (from, spread in force)
    trades: list[tuple[int, int]] = []
    for gap, is_trade, x in steps:
        t += round(gap * NS)
        if is_trade:
            one(ev.KIND_TRADE, t, 100_050, x)
            trades.append((t, x))
        else:
            one(ev.KIND_QUOTE, t, 100_000, 100, side=1, last=False)
            one(ev.KIND_QUOTE, t, 100_000 + 100 * x, 100, side=-1)
            spreads.append((t, 100 * x))
        for w, tag in enumerate(WINDOW_TAGS):
            width = int(BUCKET_NS[w])
            start = max(T0, (t // width - NB + 1) * width)
            assert f(p, f"volume_{tag}") == sum(q for te, q in trades if te >= start)
            area = 0
            for i, (a, sv) in enumerate(spreads):
                b = spreads[i + 1][0] if i + 1 < len(spreads) else t
                area += sv * max(0, min(b, t) - max(a, start))
            if t > start:
                assert f(p, f"spread_avg_{tag}") == pytest.approx(area / (t - start), rel=1e-12)


# --- depletion, refills, hidden size --------------------------------------------------------------

def test_touch_depletion_refill_and_iceberg_estimate():
    s = Stream()
    s.depth(0, 1, 10.00, 300, last=False).depth(0, -1, 10.05, 100)
    s.depth(1, 1, 10.00, 100, last=False).trade(1, 10.00, 200)  # 200 printed at the bid, 100 left
    s.depth(2, 1, 10.00, 300)  # refilled at the same price: refill 1, supply 300 + 200 = 500
    s.depth(3, 1, 10.00, 100, last=False).trade(3, 10.00, 600)  # 600 printed, display only fell 200
    p = run_l2(s)
    assert f(p, "depletion_5s") == 800
    assert f(p, "refills_5s") == 1
    # executed 800 at 10.00 against displayed supply 500 -> at least 300 hidden
    assert f(p, "hidden_5s") == 300
    assert p.counters(0)["cum_hidden"] == 300
    # same-timestamp reload: at t=3 the display fell 200 while 600 printed at the held bid, so 400 were
    # put back in that message (an iceberg refresh); the refill at t=2 is a later message, not one
    assert f(p, "cum_reloads") == 1 and f(p, "cum_reload_shares") == 400
    assert p.counters(0)["cum_reload"] == 1
    s.depth(4, 1, 10.00, 0, last=False).depth(4, 1, 9.99, 50)  # new touch price: new episode
    s.trade(4.5, 9.99, 50)
    p = run_l2(s)
    assert f(p, "hidden_5s") == 300
    assert f(p, "depletion_5s") == 850


def test_unknown_quote_sizes_give_no_hidden_estimate():
    s = Stream().quote(0.0, 1.50, 0, 1.52, 0, from_trade=True).trade(0.5, 1.50, 5000)
    p = run_nbbo(s)
    assert f(p, "depletion_1s") == 5000
    assert f(p, "hidden_1s") == 0
    assert f(p, "cum_reloads") == 0  # the NBBO path never counts reloads
    assert math.isnan(f(p, "bid_size"))


# --- sampling -------------------------------------------------------------------------------------

def test_snapshots_at_event_time_boundaries():
    s = Stream().trade(0.2, 10.0, 1).trade(0.7, 10.0, 2).trade(1.3, 10.0, 4).trade(3.5, 10.0, 8)
    p = run_nbbo(s, cadence_ns=NS)
    snap = p.snapshots()
    assert list((snap.ts - T0) // NS) == [1, 3]  # one row per boundary crossed by an event
    vol = snap.column("volume_1h")
    assert list(vol) == [3, 7]  # the state as of the boundary, before the crossing event


# --- exact checks against the raw real files ---------------------------------------------------------

NEPT = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"


@pytest.fixture(scope="module")
def nept_events(shared_data):
    events, report = read_iqfeed_ticks(shared_data / NEPT, NameTable())
    assert report.rows_quarantined == 0
    return events


def _raw_ticks(path):
    """(ts ns UTC, price $0.0001, size, market center, average-price print) from the raw IQFeed lines.

    Average-price prints (condition codes 05, 13, 33, 3E: VWAP / prior reference / derivatively
    priced) are not market prices and stay out of the VWAP."""
    from quantedge.timeutil import parse_et_datetimes

    rows = [ln.split(",") for ln in path.read_text().splitlines() if ln and not ln.startswith("!ENDMSG!")]
    ts, ok = parse_et_datetimes(np.array([r[0] for r in rows], dtype="S29"))
    assert ok.all()
    px = np.array([round(float(r[1]) * 10_000) for r in rows], np.int64)
    size = np.array([int(r[2]) for r in rows], np.int64)
    mc = np.array([int(r[8]) for r in rows], np.int64)
    avg_codes = {"05", "13", "33", "3E"}
    avg = np.array([any(r[9][i:i + 2] in avg_codes for i in range(0, len(r[9]), 2)) for r in rows])
    return ts, px, size, mc, avg


def test_nept_vwap_and_offexchange_share_match_the_raw_file(shared_data, nept_events):
    ts, px, size, mc, avg = _raw_ticks(shared_data / NEPT)
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    trade_ts = nept_events["ts_event"][nept_events["kind"] == ev.KIND_TRADE]
    at = np.quantile(trade_ts, [0.3, 0.6, 1.0])
    cuts = [int(np.searchsorted(nept_events["ts_event"], t, "right")) for t in at]
    start = 0
    for cut in cuts:
        p.step(nept_events[start:cut])
        start = cut
        t_now = nept_events["ts_event"][cut - 1]
        assert p.counters(0)["n_skipped"] == int(((size == 0) & (ts <= t_now)).sum())  # 0-share reports
        # session VWAP: prints of the current session day, numpy on the raw columns
        day = (ts - 6 * 3600 * NS) // (86_400 * NS)
        cur = (day == (t_now - 6 * 3600 * NS) // (86_400 * NS)) & (ts <= t_now) & (size > 0) & ~avg
        vwap = (px[cur] * size[cur]).sum() / size[cur].sum() / 10_000
        assert f(p, "vwap") == pytest.approx(vwap, rel=1e-12)
        assert f(p, "session_volume") == size[cur].sum()
        # off-exchange share over the 1 h window (ten 6-minute buckets ending at t_now's bucket)
        width = 360 * NS
        w0 = (t_now // width - 9) * width
        win = (ts >= w0) & (ts <= t_now) & (size > 0)
        off = np.isin(mc, [15, 19, 24]) & win
        assert f(p, "volume_1h") == size[win].sum()
        assert f(p, "offex_volume_1h") == size[off].sum()
        assert f(p, "lit_share_1h") == pytest.approx(1 - size[off].sum() / size[win].sum(), rel=1e-12)


def test_vwap_over_a_real_lobster_day_matches_numpy(shared_data):
    from quantedge.features.replay import load_lobster_day, lobster_pipeline

    day = load_lobster_day(shared_data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    p = lobster_pipeline(day, cadence_ns=0)
    p.step(day.events)
    tr = day.events[day.events["kind"] == ev.KIND_TRADE]
    pv = (tr["price"] * tr["size"]).sum()
    assert f(p, "vwap") == pytest.approx(pv / tr["size"].sum() / 10_000, rel=1e-12)
    assert f(p, "session_volume") == tr["size"].sum()
    hidden = tr["conditions"] & ev.COND_HIDDEN != 0
    assert p.counters(0)["n_trades"] == tr.shape[0]
    assert int(p.book.bk[0, 15]) == int(hidden.sum())  # the book saw every hidden execution too


def test_volume_to_mid_change_baseline_carries_across_days(nept_events):
    """The slow baseline lives in the state: a run of day 2 on the state of day 1 starts from it."""
    day_of = (nept_events["ts_event"] - 6 * 3600 * NS) // (86_400 * NS)
    days = np.unique(day_of)
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    p.step(nept_events[day_of == days[0]])
    base1 = f(p, "vol_dmid_base")
    assert np.isfinite(base1) and f(p, "vol_dmid_base_var") > 0
    p.step(nept_events[day_of == days[1]])
    fresh = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    fresh.step(nept_events[day_of == days[1]])
    assert f(p, "vol_dmid_base") != f(fresh, "vol_dmid_base")
    assert f(p, "session_volume") == f(fresh, "session_volume")  # the session VWAP resets per day


# --- stale levels and lazy derivation on the real AMZN level-5 replay ------------------------------

def test_crossed_replay_gives_no_negative_spread_and_counts_it(shared_data):
    """The seeded AMZN level-5 replay (messages only) keeps stale levels from outside the 5-level
    window.  The L3 book evicts those the stream proves gone, so the touch never crosses.  With the
    book's eviction off the touch crosses: the features' stale rule then keeps every snapshot's spread
    positive and counts each such group end, and without it (skip_stale=False) the crossed touch is
    reported as is."""
    from quantedge.book.state import B_EVICT, C_EVICTED
    from quantedge.features.replay import load_lobster_day, lobster_pipeline

    day = load_lobster_day(shared_data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")
    events = day.events[:30_000]
    ev = lobster_pipeline(day, cadence_ns=NS)
    ev.step(events)
    assert ev.book.bk[0, C_EVICTED] > 0
    assert not (ev.snapshots().column("spread") <= 0).any() and ev.counters(0)["n_crossed"] == 0

    p = lobster_pipeline(day, cadence_ns=NS)
    p.book.bk[:, B_EVICT] = 0
    p.step(events)
    sp = p.snapshots().column("spread")
    assert not (sp <= 0).any()
    c = p.counters(0)
    assert c["n_crossed"] > 0 and c["stale"] > 0
    raw = lobster_pipeline(day, cadence_ns=NS, skip_stale=False)
    raw.book.bk[:, B_EVICT] = 0
    raw.step(events)
    assert (raw.snapshots().column("spread") <= 0).sum() > 0
    assert raw.counters(0)["n_crossed"] == 0


def test_lazy_derivation_equals_derivation_at_every_step(shared_data):
    from quantedge.features.replay import load_lobster_day, lobster_pipeline

    day = load_lobster_day(shared_data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    a = lobster_pipeline(day, cadence_ns=0)
    b = lobster_pipeline(day, cadence_ns=0)
    b.derive_on_step = False
    for k in range(0, 20_000, 1_000):
        a.step(day.events[k:k + 1_000])
        b.step(day.events[k:k + 1_000])
    assert np.isnan(b.features.F).all()  # nothing derived yet
    b.derive()
    assert np.array_equal(a.features.F, b.features.F, equal_nan=True)


def test_a_reload_is_counted_once_and_a_later_group_of_its_timestamp_compares_with_the_reloaded_size():
    s = Stream()
    s.depth(0, 1, 10.00, 100, last=False).depth(0, -1, 10.05, 100)
    s.depth(3, 1, 10.00, 150, last=False).trade(3, 10.00, 100)  # 100 printed, display refreshed to 150
    p = run_l2(s)
    assert (f(p, "cum_reloads"), f(p, "cum_reload_shares")) == (1, 150)
    s.depth(3, 1, 10.00, 140, last=False).trade(3, 10.00, 10)  # same timestamp: 10 printed, 10 lost
    p = run_l2(s)
    assert (f(p, "cum_reloads"), f(p, "cum_reload_shares")) == (1, 150)
    s = Stream()
    s.depth(0, 1, 10.00, 100, last=False).depth(0, -1, 10.05, 100)
    s.depth(5, -1, 10.05, 100, last=False).trade(5, 10.05, 300)  # prints at the ask never count
    assert f(run_l2(s), "cum_reloads") == 0
