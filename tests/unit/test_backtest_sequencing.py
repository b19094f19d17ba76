"""One test per rule of the sequencing contract (docs/backtester.md), plus batch-split invariance.

Small hand-made streams isolate each rule; the invariance and look-ahead checks also run on the
real LOBSTER AMZN day.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.latency import ConstantLatency
from quantedge.backtest.venue import ExecutionConfig
from quantedge.signals.types import empty_signals
from quantedge.strategies.base import LookAheadError, Strategy

S = 1_000_000_000


def quote(t, side, px, sz):
    e = ev.empty(1)
    e["ts_event"] = e["ts_recv"] = t
    e["kind"], e["side"], e["price"], e["size"] = ev.KIND_QUOTE, side, px, sz
    return e


def trade(t, px, sz, side=0):
    e = ev.empty(1)
    e["ts_event"] = e["ts_recv"] = t
    e["kind"], e["price"], e["size"], e["side"], e["conditions"] = (
        ev.KIND_TRADE,
        px,
        sz,
        side,
        ev.COND_REGULAR,
    )
    return e


def stream(*parts):
    out = np.concatenate(parts)
    out["seq"] = np.arange(out.size)
    return out


class Recorder(Strategy):
    """Logs every callback with ctx.now and what it could see; optionally trades."""

    def __init__(
        self, on_trade_buy: int = 0, sub: bool = True, timer: str | None = None, bars: str | None = None
    ):
        super().__init__()
        self.log: list[tuple] = []
        self.buy_once = on_trade_buy
        self.sub = sub
        self.timer = timer
        self.bar_iv = bars

    def on_start(self, ctx):
        if self.sub:
            ctx.subscribe(0, ("trade", "quote"))
        if self.timer:
            ctx.schedule("t", every=self.timer)
        if self.bar_iv:
            ctx.subscribe_bars(self.bar_iv)

    def on_trade(self, ctx, e):
        self.log.append(("trade", ctx.now, int(e["ts_recv"]), int(e["price"]), ctx.book(0)["ask_px"][:1]))
        if self.buy_once:
            ctx.buy(0, self.buy_once)
            self.buy_once = 0

    def on_quote(self, ctx, e):
        self.log.append(("quote", ctx.now, int(e["ts_recv"])))

    def on_fill(self, ctx, f):
        self.log.append(("fill", ctx.now, f.ts, f.price, f.qty))

    def on_timer(self, ctx, name):
        self.log.append(("timer", ctx.now))

    def on_bar(self, ctx, b):
        self.log.append(("bar", ctx.now, int(b["t_close"]), int(b["close"])))

    def on_signal(self, ctx, s):
        self.log.append(("signal", ctx.now, int(s["ts_recv"])))


def book_stream():
    return stream(
        quote(1 * S, 1, 10_000, 500),
        quote(1 * S, -1, 10_100, 300),
        trade(2 * S, 10_100, 100, 1),
        quote(2 * S, -1, 10_200, 400),
        trade(3 * S, 10_200, 50, 1),
        quote(4 * S, -1, 10_300, 200),
        trade(5 * S, 10_300, 10, 1),
    )


def run(strat, events, cfg=None, batches=None, signals=None):
    eng = Engine(strat, 1, cfg or EngineConfig(execution=ExecutionConfig(book="pseudo")), ["X"])
    parts = [events] if batches is None else np.split(events, batches)
    return eng.run(parts, signals=signals)


def test_rule1_exchange_applies_every_event_of_a_timestamp_before_strategies_see_it():
    r = Recorder()
    run(r, book_stream())
    t2 = [x for x in r.log if x[0] == "trade" and x[1] == 2 * S][0]
    # the ask quote at t=2s comes after the print in the stream but is applied before on_trade runs
    assert t2[4] == [10_200]


def test_rule2_strategies_receive_events_after_feed_latency():
    r = Recorder()
    run(r, book_stream(), EngineConfig(feed_latency_ns=250_000, execution=ExecutionConfig(book="pseudo")))
    for _kind, now, ts_recv, *_ in [x for x in r.log if x[0] in ("trade", "quote")]:
        assert now == ts_recv + 250_000


def test_rule3_orders_reach_the_venue_after_order_latency():
    r = Recorder(on_trade_buy=100)
    lat = S + S // 2  # sent at 2s, arrives at 3.5s: after the 3s ask change to 10,200 (and the 3s print)
    run(
        r,
        book_stream(),
        EngineConfig(order_latency=ConstantLatency(lat), execution=ExecutionConfig(book="pseudo")),
    )
    fills = [x for x in r.log if x[0] == "fill"]
    assert fills and fills[0][2] == 2 * S + lat and fills[0][3] == 10_200


def test_rule3_zero_latency_order_fills_against_the_book_of_that_timestamp():
    r = Recorder(on_trade_buy=100)
    run(r, book_stream())
    fill = [x for x in r.log if x[0] == "fill"][0]
    assert fill[2] == 2 * S and fill[3] == 10_200  # ask after every t=2s event


@pytest.mark.parametrize("latency_us", [0, 250])
def test_fill_reports_precede_the_cancel_of_the_rest(latency_us):
    """A market order larger than the visible book fills in part and the rest is cancelled at once:
    the strategy hears of the fill before the cancel (else it would resend shares it already has)."""

    class Orders(Recorder):
        def on_order(self, ctx, oid, status, reason):
            self.log.append(("order", ctx.now, status, ctx.position(0)))

    r = Orders(on_trade_buy=1_000)
    cfg = EngineConfig(feed_latency_ns=latency_us * 1_000, execution=ExecutionConfig(book="pseudo"))
    run(r, book_stream(), cfg)
    seen = [x for x in r.log if x[0] in ("fill", "order")]
    assert [x[0] for x in seen] == ["fill", "order"] and seen[1][2] == "cancelled"
    assert seen[1][3] == seen[0][4] == 400  # the position already holds the filled part


def test_rule4_timers_and_bar_closes_fire_at_boundaries_after_events():
    r = Recorder(timer="1s", bars="2s", sub=True)
    run(r, book_stream())
    timers = [x[1] for x in r.log if x[0] == "timer"]
    assert timers == [2 * S, 3 * S, 4 * S, 5 * S]
    bars = [x for x in r.log if x[0] == "bar"]
    assert [(b[1], b[2]) for b in bars] == [(4 * S, 4 * S), (6 * S, 6 * S)]
    assert bars[0][3] == 10_200  # bar [2s, 4s) closes at the 3s print
    # at t=2s the print is delivered (rule 2) before the timer (rule 4)
    at2 = [x[0] for x in r.log if x[1] == 2 * S]
    assert at2.index("trade") < at2.index("timer")


def test_no_lookahead_deliveries_never_precede_receive_time_and_reads_are_refused():
    class Peek(Strategy):
        def on_start(self, ctx):
            ctx.schedule("p", every="1s")
            self.refused = 0

        def on_timer(self, ctx, name):
            try:
                ctx.book(0)
            except LookAheadError:
                self.refused += 1

    sig = empty_signals(2)
    sig["ts_recv"] = [2 * S + 5, 3 * S]
    r = Recorder()
    eng = run(
        r,
        book_stream(),
        EngineConfig(feed_latency_ns=7, execution=ExecutionConfig(book="pseudo")),
        signals=sig,
    )
    assert all(x[1] >= x[2] for x in r.log if x[0] in ("trade", "quote", "signal", "fill"))
    assert [x[1] for x in r.log if x[0] == "signal"] == [2 * S + 12, 3 * S + 7]
    assert eng.guard.violations == 0 and eng.guard.deliveries > 0
    p = Peek()
    eng = run(p, book_stream(), EngineConfig(feed_latency_ns=7, execution=ExecutionConfig(book="pseudo")))
    assert p.refused == 4 and eng.guard.refused_reads == 4
    with pytest.raises(ValueError, match="ts_recv order"):
        run(Recorder(), book_stream()[::-1].copy())


def test_out_of_order_batch_names_the_row_inside_a_batch_and_across_batches():
    e = book_stream()
    e["ts_recv"][4] = e["ts_recv"][3] - 1  # row 4 steps back inside the batch
    with pytest.raises(ValueError, match=r"at row 4 \(ts_recv"):
        run(Recorder(), e)
    e = book_stream()
    e["ts_recv"][4] = e["ts_recv"][3] - 1  # the second batch starts before the first one ended
    with pytest.raises(ValueError, match=r"at row 0 \(ts_recv"):
        run(Recorder(), e, batches=[4])
    run(Recorder(), book_stream(), batches=[2, 4])  # in order, cut anywhere: accepted


def test_closed_bars_only():
    class B(Strategy):
        def on_start(self, ctx):
            ctx.subscribe_bars("2s")
            self.seen = []

        def on_bar(self, ctx, b):
            hist = ctx.bars(0, "2s")
            self.seen.append((ctx.now, int(hist["t_close"].max())))

    b = B()
    run(b, book_stream())
    assert all(t_close <= now for now, t_close in b.seen)


@pytest.mark.realdata
def test_outputs_do_not_depend_on_batch_cuts(shared_data):
    from quantedge.catalog.importers.lobster import read_lobster
    from quantedge.catalog.symbols import NameTable
    from quantedge.strategies.rsi_reversion import RsiReversion

    e, _ = read_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", NameTable())
    e = e[:60_000]
    cfg = dict(execution=ExecutionConfig(book="l3"), order_latency=ConstantLatency(300_000))
    params = {
        "interval": "1min",
        "period": 5,
        "oversold": 40,
        "exit_level": 55,
        "qty": 100,
        "stop_atr_mult": 1.0,
    }
    a = Engine(RsiReversion(params), 1, EngineConfig(**cfg), ["AMZN"]).run([e])
    cuts = np.sort(np.random.default_rng(7).choice(np.arange(1, e.size), 25, replace=False))
    b = Engine(RsiReversion(params), 1, EngineConfig(**cfg), ["AMZN"]).run(np.split(e, cuts))
    assert len(a.fills) > 4
    assert [(f.ts, f.price, f.qty, f.reason) for f in a.fills] == [
        (f.ts, f.price, f.qty, f.reason) for f in b.fills
    ]
    assert a.pf.equity == b.pf.equity and a.guard.violations == 0


# -------------------------------------------------------------------------------------------------
# the signal gate: records a strategy does not follow go to the latest-signal table, in stream order
class Gated(Strategy):
    """Follows nothing; the gate lets composite (7) records >= 0.5 that triggered through.  Logs what
    ``last_signal`` shows at each callback, and follows the symbol from the first delivery on."""

    def __init__(self, follow_after_first: bool = False):
        super().__init__()
        self.log: list[tuple] = []
        self.follow_after_first = follow_after_first

    def on_start(self, ctx):
        ctx.gate_signals({7: 0.5}, {7: True})
        ctx.follow_signals(0, False)
        ctx.schedule("t", every="1s")

    def on_signal(self, ctx, s):
        self.log.append(("signal", ctx.now, int(s["seq"]), ctx.last_signal(0, 1), ctx.last_signal(0, 7)))
        if self.follow_after_first:
            ctx.follow_signals(0, True)

    def on_timer(self, ctx, name):
        self.log.append(("timer", ctx.now, ctx.last_signal(0, 1)))


def _records(*rows):
    """(time, seq, kind, score, triggered) -> SIGNAL_DTYPE records of symbol 0."""
    r = empty_signals(len(rows))
    for i, (t, seq, k, sc, tr) in enumerate(rows):
        r[i]["ts_event"] = r[i]["ts_recv"] = t
        r[i]["seq"], r[i]["signal"], r[i]["score"], r[i]["triggered"] = seq, k, sc, tr
    return r


GATE_RECS = _records(
    (1 * S + 100, 1, 1, 0.30, 0),  # absorption: tabled
    (2 * S, 2, 7, 0.40, 1),  # composite below 0.5: tabled
    (2 * S, 3, 7, 0.60, 0),  # composite, not triggered: tabled
    (3 * S, 4, 1, 0.70, 1),  # absorption at 3 s, before the delivered record of that time
    (3 * S, 5, 7, 0.80, 1),  # delivered
    (3 * S, 6, 1, 0.90, 0),  # absorption at 3 s, after it: not visible in its callback
    (4 * S + 5, 7, 1, 0.20, 0),
)


def test_gate_delivers_only_what_it_lets_through_and_tables_the_rest_in_order():
    g = Gated()
    eng = run(g, book_stream(), signals=GATE_RECS)
    sig = [x for x in g.log if x[0] == "signal"]
    assert [x[2] for x in sig] == [5]
    assert sig[0][3] == (3 * S, pytest.approx(0.70), True)  # the record before it at 3 s, not after
    assert sig[0][4] == (3 * S, pytest.approx(0.80), True)
    timers = {x[1]: x[2] for x in g.log if x[0] == "timer"}
    assert timers[2 * S] == (1 * S + 100, pytest.approx(0.30), False)
    assert timers[3 * S] == (3 * S, pytest.approx(0.90), False)  # a timer at 3 s follows every record of 3 s
    assert timers[4 * S] == (3 * S, pytest.approx(0.90), False)
    assert eng.last_signal(0, 1) == (4 * S + 5, pytest.approx(0.20), False)  # after finish: all of them
    assert [x[3] for x in eng.signals_seen] == pytest.approx([0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.2])
    assert eng.guard.deliveries == 7 and eng.guard.violations == 0


def test_following_a_symbol_delivers_its_records_from_then_on():
    g = Gated(follow_after_first=True)
    run(g, book_stream(), signals=GATE_RECS)
    assert [x[2] for x in g.log if x[0] == "signal"] == [5, 6, 7]


def test_gate_on_a_feed_latency_and_its_errors():
    g = Gated()
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), feed_latency_ns=300_000_000)
    run(g, book_stream(), cfg=cfg, signals=GATE_RECS)
    sig = [x for x in g.log if x[0] == "signal"]
    assert [(x[1], x[2]) for x in sig] == [(3 * S + 300_000_000, 5)]
    assert sig[0][3][0] == 3 * S + 300_000_000  # visible from its delivery time
    eng = Engine(Gated(), 1, EngineConfig(execution=ExecutionConfig(book="pseudo")), ["X"])
    with pytest.raises(ValueError, match="symbol 3"):
        eng.add_signals(_bad_symbol())
    with pytest.raises(ValueError, match="kind"):
        eng.gate_signals({9: 0.5})


def _bad_symbol():
    r = _records((S, 1, 1, 0.5, 0))
    r["symbol"] = 3
    return r


class BuyAndGate(Recorder):
    """Buys on its first timer and subscribes to nothing (the engine marks its position at the prints
    all the same); gated (follows nothing) or taking every record as a callback."""

    def __init__(self, gated: bool):
        super().__init__(sub=False, timer="1s")
        self.gated = gated
        self.bought = None

    def on_timer(self, ctx, name):
        if not self.bought:
            self.bought = ctx.buy(0, 100)

    def on_start(self, ctx):
        super().on_start(ctx)
        if self.gated:
            ctx.gate_signals({7: 2.0})
            ctx.follow_signals(0, False)


def test_gated_run_samples_the_equity_grid_of_trailing_records_like_an_ungated_one():
    """Records after the last market event move the clock in both runs; the grid points they pass
    carry the same equity, whether the records were delivered or tabled."""
    trailing = _records(*[(t * S, 10 + t, 1, 0.5, 0) for t in (6, 8, 11)])
    curves = []
    for gated in (False, True):
        cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), equity_every_ns=S)
        eng = run(BuyAndGate(gated), book_stream(), cfg=cfg, signals=trailing)
        assert eng.pf.positions
        curves.append(eng.equity_curve)
    eq = {t // S: e for t, e, _, _ in curves[0]}
    # bought 100 at 1.02 at 2 s; the unsubscribed print at 1.03 at 5 s marks the position then (the
    # grid point at 5 s is sampled before the items of 5 s, the mark among them)
    assert eq[6] - eq[5] == pytest.approx(1.0) and eq[11] == eq[6] == curves[0][-1][1]
    assert [c[0] for c in curves[1]] == [c[0] for c in curves[0]]
    assert curves[1] == curves[0]


class RestingBid(Recorder):
    """Rests a limit buy at 1.00 on its first quote and records every print it is sent."""

    def __init__(self):
        super().__init__(sub=True)
        self.sent = False

    def on_quote(self, ctx, e):
        super().on_quote(ctx, e)
        if not self.sent:
            self.sent = True
            ctx.submit(0, 1, 100, type="limit", limit=1.00)


def test_rule2_a_print_that_fills_our_order_is_still_delivered():
    """The print that fills a resting order stops the venue for the fill; the strategy, subscribed to
    the symbol's prints, still receives that print (before the fill report)."""
    events = stream(
        quote(1 * S, 1, 10_000, 500),
        quote(1 * S, -1, 10_100, 300),
        trade(2 * S, 10_050, 100, 1),
        trade(3 * S, 9_900, 200, -1),  # through our 1.00 bid: fills it
        trade(4 * S, 10_000, 100, 1),
    )
    r = RestingBid()
    eng = run(r, events)
    assert len(eng.fills) == 1 and eng.fills[0].ts == 3 * S
    seen = [(x[0], x[2]) for x in r.log if x[0] in ("trade", "fill")]
    assert seen == [("trade", 2 * S), ("trade", 3 * S), ("fill", 3 * S), ("trade", 4 * S)]
