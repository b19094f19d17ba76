"""Execution simulator, fees, portfolio, risk, kill switch, persistence and stops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from quantedge import events as ev
from quantedge.backtest import venue_nb as vnb
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.fees import FeeCalculator, FeeSchedule, Tier
from quantedge.backtest.latency import EmpiricalLatency, latency_from_config
from quantedge.backtest.orders import (
    OD_AHEAD,
    OT_LIMIT,
    OT_MARKET,
    OT_STOP,
    TIF_IOC,
    Fill,
    OrderRequest,
    new_order_table,
)
from quantedge.backtest.portfolio import Portfolio
from quantedge.backtest.queue import QM_POWER, QM_RISK_AVERSE, QueueModel, q_depth
from quantedge.backtest.risk import RiskLimits, RiskManager
from quantedge.backtest.stops import AtrStop, MicroStop, Obs, StopSet, SupportStop, TimeStop, TrailingStop
from quantedge.backtest.venue import ExecutionConfig, SimVenue
from quantedge.strategies.base import Strategy

S = 1_000_000_000


def order_ev(t, action, side, px, sz, oid):
    e = ev.empty(1)
    e["ts_event"] = e["ts_recv"] = t
    e["kind"], e["action"], e["side"], e["price"], e["size"], e["order_id"] = (
        ev.KIND_ORDER,
        action,
        side,
        px,
        sz,
        oid,
    )
    return e


def l3_venue(**kw):
    v = SimVenue(1, ExecutionConfig(book="l3", **kw))
    seed = np.concatenate(
        [
            order_ev(1, ev.ACTION_ADD, 1, 10_000, 300, 1),
            order_ev(1, ev.ACTION_ADD, 1, 10_000, 200, 2),
            order_ev(1, ev.ACTION_ADD, 1, 9_900, 500, 3),
            order_ev(1, ev.ACTION_ADD, -1, 10_100, 100, 4),
            order_ev(1, ev.ACTION_ADD, -1, 10_200, 250, 5),
            order_ev(1, ev.ACTION_ADD, -1, 10_300, 1000, 6),
        ]
    )
    v.advance(seed, 0, 10)
    return v


def test_market_order_walks_levels_partial_fills_and_slippage_vs_mid():
    v = l3_venue()
    oid = v.new_order(OrderRequest(0, 1, 500, OT_MARKET), 5, 5)
    v.arrive(oid, 5)
    fills = v.drain_fills()
    assert [(f.price, f.qty) for f in fills] == [(10_100, 100), (10_200, 250), (10_300, 150)]
    assert all(f.arrival_mid == pytest.approx(1.005) for f in fills)
    assert sum(f.slippage_usd for f in fills) == pytest.approx(100 * 0.005 + 250 * 0.015 + 150 * 0.025)
    # the replayed book is unchanged by our order
    assert v.top(0)["ask_sz"] == [100, 250, 1000]


def test_marketable_limit_takes_then_rests_with_queue_and_ioc_cancels():
    v = l3_venue()
    oid = v.new_order(OrderRequest(0, 1, 300, OT_LIMIT, limit=10_100), 5, 5)
    v.arrive(oid, 5)
    assert [(f.price, f.qty, f.reason) for f in v.drain_fills()] == [(10_100, 100, "limit_take")]
    assert v.order(oid)["status"] == 2 and v.has_orders[0] == 1  # rests at 10,100 (a new bid level)
    ioc = v.new_order(OrderRequest(0, 1, 400, OT_LIMIT, limit=10_200, tif=TIF_IOC), 6, 6)
    v.arrive(ioc, 6)
    assert v.order(ioc)["status"] == 4 and v.order(ioc)["filled"] == 350


def test_resting_limit_fills_by_queue_position_trades_and_cancels():
    v = l3_venue(queue=QueueModel("risk_averse"))
    oid = v.new_order(OrderRequest(0, 1, 100, OT_LIMIT, limit=10_000), 5, 5)
    v.arrive(oid, 5)
    assert v.od[oid - 1, OD_AHEAD] == 500
    # 250 executed at our price: 250 ahead left
    x = np.concatenate([order_ev(10, ev.ACTION_EXECUTE, 1, 10_000, 250, 1)])
    v.advance(x, 0, 100)
    assert v.od[oid - 1, OD_AHEAD] == 250 and not v.drain_fills()
    # order 2 (200) is deleted: level 50; risk-averse keeps ahead = min(ahead, level) = 50
    v.advance(order_ev(11, ev.ACTION_DELETE, 1, 10_000, 200, 2), 0, 100)
    assert v.od[oid - 1, OD_AHEAD] == 50
    # 120 more execute: 50 ahead, then 70 of ours
    i, why = v.advance(order_ev(12, ev.ACTION_EXECUTE, 1, 10_000, 50, 1), 0, 100)
    v.advance(order_ev(13, ev.ACTION_ADD, 1, 10_000, 500, 7), 0, 100)
    i, why = v.advance(order_ev(14, ev.ACTION_EXECUTE, 1, 10_000, 70, 7), 0, 100)
    assert why == vnb.STOP_FILL
    f = v.drain_fills()
    assert [(x.qty, x.price, x.reason, x.liquidity) for x in f] == [(70, 10_000, "queue", "maker")]


def test_trade_through_and_quote_through_fill_resting_orders():
    v = l3_venue()
    oid = v.new_order(OrderRequest(0, -1, 100, OT_LIMIT, limit=10_300), 5, 5)
    v.arrive(oid, 5)
    v.advance(order_ev(10, ev.ACTION_DELETE, -1, 10_100, 100, 4), 0, 100)
    v.advance(order_ev(11, ev.ACTION_DELETE, -1, 10_200, 250, 5), 0, 100)
    assert not v.drain_fills()
    v.advance(order_ev(12, ev.ACTION_ADD, 1, 10_300, 100, 8), 0, 100)  # bid at our ask price
    assert [x.reason for x in v.drain_fills()] == ["quote_through"]
    t = ev.empty(1)
    t["ts_recv"], t["kind"], t["price"], t["size"] = 20, ev.KIND_TRADE, 9_800, 10
    oid2 = v.new_order(OrderRequest(0, 1, 100, OT_LIMIT, limit=9_900), 15, 15)
    v.arrive(oid2, 15)
    v.advance(t, 0, 100)
    assert [(x.reason, x.price) for x in v.drain_fills()] == [("trade_through", 9_900)]


def test_stop_order_triggers_on_print_and_walks():
    v = l3_venue()
    oid = v.new_order(OrderRequest(0, -1, 100, OT_STOP, stop=9_950), 5, 5)
    v.arrive(oid, 5)
    assert not v.drain_fills()
    t = ev.empty(1)
    t["ts_recv"], t["kind"], t["price"], t["size"], t["conditions"] = (
        20,
        ev.KIND_TRADE,
        9_950,
        10,
        ev.COND_REGULAR,
    )
    v.advance(t, 0, 100)
    assert [(x.reason, x.price, x.qty) for x in v.drain_fills()] == [("stop_walk", 10_000, 100)]


def test_impact_option_and_odd_lots():
    v = l3_venue(impact_bps=10.0)
    oid = v.new_order(OrderRequest(0, 1, 100, OT_MARKET), 5, 5)
    v.arrive(oid, 5)
    (f,) = v.drain_fills()
    assert f.price > 10_100
    v = l3_venue(odd_lots="reject")
    oid = v.new_order(OrderRequest(0, 1, 50, OT_MARKET), 5, 5)
    v.arrive(oid, 5)
    assert v.order(oid)["status"] == 5 and v.reject_reasons[oid] == "odd lot"
    v = l3_venue(odd_lots="round_down")
    oid = v.new_order(OrderRequest(0, 1, 150, OT_MARKET), 5, 5)
    v.arrive(oid, 5)
    assert sum(x.qty for x in v.drain_fills()) == 100


def test_probability_queue_models():
    od = new_order_table(2)
    od[0, OD_AHEAD] = 100
    q_depth(od, 0, 400, 300, QM_RISK_AVERSE, 0.0)
    assert od[0, OD_AHEAD] == 100
    od[1, OD_AHEAD] = 100  # 100 ahead, 300 behind (hftbacktest's PowerProbQueueFunc, n = 2):
    q_depth(od, 1, 400, 300, QM_POWER, 2.0)  # share ahead = 300^2 / (100^2 + 300^2) = 0.9
    assert od[1, OD_AHEAD] == 10
    od[1, OD_AHEAD] = 300  # 300 ahead, 100 behind: share ahead 0.1
    q_depth(od, 1, 400, 300, QM_POWER, 2.0)
    assert od[1, OD_AHEAD] == 290
    with pytest.raises(ValueError, match="unknown"):
        _ = QueueModel("nope").code


def test_fees_commission_min_max_tiers_sec_taf():
    s = FeeSchedule(
        per_share=0.005,
        min_per_order=1.0,
        max_pct_of_notional=0.005,
        tiers=[Tier(1000, 0.003)],
        sec_rate=27.8e-6,
        taf_per_share=0.000166,
        taf_max=8.30,
    )
    c = FeeCalculator(s)
    fee, parts = c.fill_fee(1, 1, 100, 10.0)  # 0.50 commission -> min 1.00; buy: no SEC/TAF
    assert parts == {"commission": 1.0, "sec": 0.0, "taf": 0.0}
    fee, parts = c.fill_fee(1, 1, 300, 10.0)  # cum 400 sh x 0.005 = 2.00, 1.00 already charged
    assert parts["commission"] == pytest.approx(1.0)
    fee, parts = c.fill_fee(2, -1, 1000, 1.0)  # rate 0.005 (500 so far) = 5.00, cap 0.5% x 1000 = 5.00
    assert parts["commission"] == pytest.approx(5.0)
    assert parts["sec"] == pytest.approx(27.8e-6 * 1000) and parts["taf"] == pytest.approx(0.166)
    assert c.rate_now() == 0.003  # 1,500 shares this month: tier 2
    _, parts = c.fill_fee(3, -1, 100_000, 1.0)
    assert parts["taf"] == 8.30
    with pytest.raises(ValueError, match="unknown field"):
        FeeSchedule.from_dict({"per_shar": 1})


def test_latency_models():
    e = EmpiricalLatency([100, 200, 300], seed=1)
    xs = {e.sample() for _ in range(50)}
    assert xs == {100, 200, 300}
    assert latency_from_config({"constant_us": 250}).sample() == 250_000
    with pytest.raises(ValueError):
        latency_from_config({"bogus": 1})


def test_portfolio_pnl_and_atomic_resume(tmp_path):
    pf = Portfolio(cash=10_000.0, start_cash=10_000.0)
    pf.apply_fill(Fill(1, 0, 1, 100, 100_000, 1, "x", "taker", 10.0, fee=1.0))
    pf.apply_fill(Fill(2, 0, -1, 150, 110_000, 2, "x", "taker", 11.0, fee=1.0))  # close 100 (+100), short 50
    assert pf.position(0) == -50 and pf.realized() == pytest.approx(100.0)
    pf.mark(0, 10.0)
    assert pf.unrealized() == pytest.approx(50.0)
    assert pf.equity == pytest.approx(10_000 + 100 + 50 - 2)
    p = tmp_path / "state.json"
    pf.save(p, {"ts": 5})
    back, extra = Portfolio.load(p)
    assert back.to_dict() == pf.to_dict() and extra == {"ts": 5}
    assert not list(tmp_path.glob("*.tmp"))
    p.write_text("{broken")
    with pytest.raises(ValueError, match="cannot resume"):
        Portfolio.load(p)


@settings(max_examples=80, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 4), hs.sampled_from([1, -1]), hs.integers(1, 900),
                          hs.integers(1, 60_000), hs.booleans(), hs.floats(0.01, 9.0)), max_size=60))
def test_portfolio_running_sums_equal_the_direct_sums(ops):  # noqa: ANN001
    """Equity and exposure are running sums (exact in $0.0001 units); they equal the plain sums over
    the positions, also with marks off the price grid and after a save/resume."""
    pf = Portfolio(cash=50_000.0)
    for i, (s, side, qty, px, is_mark, off_grid) in enumerate(ops):
        if is_mark:
            pf.mark(s, off_grid if i % 3 == 0 else px / 10_000)
        else:
            pf.apply_fill(Fill(i + 1, s, side, qty, px, i, "x", "taker", px / 10_000, fee=0.01))

    def direct(p: Portfolio) -> tuple[float, float]:
        mv = sum(x.qty * p.marks.get(k, x.avg_px) for k, x in p.positions.items())
        gx = sum(abs(x.qty) * p.marks.get(k, x.avg_px) for k, x in p.positions.items())
        return p.cash + mv, gx

    eq, gx = direct(pf)
    assert pf.equity == pytest.approx(eq, abs=1e-6) and pf.gross_exposure() == pytest.approx(gx, abs=1e-6)
    back = Portfolio.from_dict(pf.to_dict())
    assert back.equity == pytest.approx(eq, abs=1e-6) and back.gross_exposure() == pytest.approx(gx, abs=1e-6)


def test_risk_checks():
    pf = Portfolio()
    rm = RiskManager(RiskLimits(max_position=200, max_notional=1_500, max_gross=5_000, max_orders_per_sec=2))
    assert rm.check(pf, 0, 1, 300, 1.0, 0).startswith("max_position")
    assert rm.check(pf, 0, 1, 200, 10.0, 0).startswith("max_notional")
    assert rm.check(pf, 0, 1, 100, 10.0, 0) is None
    assert rm.check(pf, 1, 1, 100, 10.0, 1) is None
    assert rm.check(pf, 2, 1, 100, 10.0, 2).startswith("max_orders_per_sec")
    assert rm.check(pf, 2, 1, 100, 10.0, 2 * S) is None
    assert rm.rejections == {"max_position": 1, "max_notional": 1, "max_orders_per_sec": 1}


def test_orders_in_flight_count_toward_the_position_limit_until_they_arrive():
    """max_position counts the signed quantity of the symbol's orders still on their way to the
    venue; once they arrive (filled or resting) the position and the book of orders speak for them."""

    class Burst(Strategy):
        def on_start(self, ctx):
            ctx.schedule("t", every="1s")
            self.said = []

        def on_timer(self, ctx, name):
            if ctx.now == 2 * S:
                self.said = [ctx.buy(0, 200), ctx.buy(0, 200), ctx.buy(1, 200), ctx.sell(0, 100)]
            elif ctx.now == 3 * S:
                self.said += [ctx.buy(0, 100), ctx.buy(0, 100)]

    def tops(t):
        e = ev.empty(4)
        e["ts_event"] = e["ts_recv"] = t
        e["kind"] = ev.KIND_QUOTE
        e["symbol"] = [0, 0, 1, 1]
        e["side"] = [1, -1, 1, -1]
        e["price"] = [9_900, 10_000, 9_900, 10_000]
        e["size"] = 5_000
        return e

    events = np.concatenate([tops(i * S) for i in range(1, 5)])
    events["seq"] = np.arange(events.size)
    cfg = EngineConfig(
        execution=ExecutionConfig(book="pseudo"),
        risk=RiskLimits(max_position=300),
        order_latency=latency_from_config({"constant_us": 1_000}),
    )
    b = Burst()
    eng = Engine(b, 2, cfg, ["A", "B"]).run([events])
    # at 2 s: 200 in flight, so another 200 of symbol 0 would make 400 (refused); symbol 1 has its own
    # count; a sell of 100 brings symbol 0's in-flight total to 100. At 3 s: position 100, nothing in
    # flight: 100 more is 200, another 100 is 300 (both go)
    assert [x > 0 for x in b.said] == [True, False, True, True, True, True]
    assert eng.pf.position(0) == 300 and eng.pf.position(1) == 200
    assert eng.risk.rejections == {"max_position": 1}


def test_kill_switch_flattens_and_halts():
    class Loser(Strategy):
        def on_start(self, ctx):
            ctx.subscribe(0, ("trade",))
            self.rejected = []

        def on_trade(self, ctx, e):
            if ctx.position(0) == 0 and not ctx.open_orders():
                ctx.buy(0, 1000)

        def on_order(self, ctx, oid, status, reason):
            self.rejected.append(reason)

    def tr(t, px):
        e = ev.empty(3)
        e["ts_event"] = e["ts_recv"] = t
        e["kind"] = [ev.KIND_QUOTE, ev.KIND_QUOTE, ev.KIND_TRADE]
        e["side"] = [1, -1, 0]
        e["price"] = [px - 100, px, px]
        e["size"] = [5000, 5000, 100]
        e["conditions"] = [0, 0, ev.COND_REGULAR]
        return e

    events = np.concatenate([tr(i * S, 100_000 - i * 2_000) for i in range(1, 8)])
    events["seq"] = np.arange(events.size)
    lo = Loser()
    cfg = EngineConfig(
        cash=50_000, risk=RiskLimits(max_daily_loss=1_000), execution=ExecutionConfig(book="pseudo")
    )
    eng = Engine(lo, 1, cfg, ["X"]).run([events])
    assert eng.risk.kill_events and eng.pf.halted
    assert eng.pf.position(0) == 0
    assert any(f.tag == "kill_switch" for f in eng.fills)
    assert "halted by kill switch" in lo.rejected


def test_stops_compose():
    atr = AtrStop(period=3, mult_low=2, mult_high=4, regime_period=20, regime_ratio=1.5)
    ss = StopSet(atr, TrailingStop(0.05), TimeStop(0.10, start_s=60, full_s=120))
    ss.open(10.0, 0)
    for i in range(10):
        ss.update(Obs(ts=i * S, price=10 + 0.01 * i, high=10.05 + 0.01 * i, low=9.95 + 0.01 * i))
    assert not atr.high_vol
    stop, why = ss.update(Obs(ts=200 * S, price=10.2, high=10.25, low=10.15))
    assert stop == pytest.approx(10.0) and why is None  # time stop reached the entry: tightest
    stop, why = ss.update(Obs(ts=201 * S, price=9.9, high=10.6, low=9.5))
    assert why is not None
    sup = SupportStop(bucket=0.01, min_share=0.3, buffer=0.01)
    for bid, vol in ((1.50, 5000), (1.52, 300), (1.55, 4000)):
        sup.update(Obs(ts=0, price=1.56, bid=bid, at_bid_volume=vol))
    assert sup.levels() == [1.50, 1.55]
    assert StopSet(sup).update(Obs(ts=0, price=1.57))[0] == pytest.approx(1.54)
    m = MicroStop(window=2, spread_mult=3, depth_frac=0.3)
    m.update(Obs(ts=0, price=1, bid=1.0, ask=1.01, bid_depth=1000, signed_volume=100, volume=100))
    m.update(Obs(ts=1, price=1, bid=1.0, ask=1.01, bid_depth=1000, signed_volume=0, volume=100))
    assert m.reason == ""
    m.update(Obs(ts=2, price=1, bid=0.95, ask=1.05, bid_depth=1000, signed_volume=0, volume=100))
    assert m.reason == "spread_blowout"
    m.update(Obs(ts=3, price=1, bid=1.0, ask=1.01, bid_depth=100, signed_volume=-100, volume=100))
    assert m.reason == "order_flow_reversal" or m.reason == "bid_depth_collapse"
    assert StopSet(m).update(
        Obs(ts=4, price=1, bid=1.0, ask=1.01, bid_depth=50, signed_volume=-90, volume=100)
    )[1]
