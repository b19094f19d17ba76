"""The engine marks every open position at every print of its symbol (compiled, marks_nb.py).

Checked against a plain model of the rule (a print at receive time t marks its symbol at
t + feed latency, after the market events of that time and before the items delivered at it; a fill
marks at its price), on random multi-symbol streams, with and without feed latency and with fills
off the $0.0001 grid; and the kill switch fires at the print that breaks the daily-loss limit
whether or not the strategy subscribed to the symbol.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_backtest_sequencing as seq

from quantedge import events as ev
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.latency import ConstantLatency
from quantedge.backtest.orders import Fill
from quantedge.backtest.portfolio import Portfolio, Position
from quantedge.backtest.risk import RiskLimits
from quantedge.backtest.venue import ExecutionConfig
from quantedge.strategies.base import Strategy

S = 1_000_000_000
MS = 1_000_000


def random_stream(seed: int, n_symbols: int = 4, n: int = 3_000) -> np.ndarray:
    """Quotes and prints of a few symbols with random walks; many events share a timestamp."""
    rng = np.random.default_rng(seed)
    e = ev.empty(n)
    t = S + np.cumsum(rng.choice([0, 0, 1, 3, 7], n) * MS)
    e["ts_event"] = e["ts_recv"] = t
    s = rng.integers(0, n_symbols, n)
    e["symbol"] = s
    mid = np.full(n_symbols, 20_000)
    kind = rng.choice([ev.KIND_QUOTE, ev.KIND_QUOTE, ev.KIND_TRADE], n)
    for i in range(n):
        k = s[i]
        mid[k] = max(1_000, mid[k] + int(rng.integers(-3, 4)) * 100)
        e["kind"][i] = kind[i]
        if kind[i] == ev.KIND_QUOTE:
            side = int(rng.choice([1, -1]))
            e["side"][i] = side
            e["price"][i] = mid[k] - 100 if side > 0 else mid[k] + 100
            e["size"][i] = int(rng.integers(1, 20)) * 100
        else:
            e["price"][i] = mid[k] + int(rng.integers(-1, 2)) * 100
            e["size"][i] = int(rng.integers(1, 5)) * 100
            e["conditions"][i] = ev.COND_REGULAR
    e["seq"] = np.arange(n)
    return e


class RandomTrader(Strategy):
    """Market orders on a timer, symbols and sizes from its own seed; subscribes to nothing."""

    def __init__(self, seed: int, n_symbols: int):
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.n = n_symbols

    def on_start(self, ctx):
        ctx.schedule("t", every=40 * MS)

    def on_timer(self, ctx, name):
        s = int(self.rng.integers(0, self.n))
        pos = ctx.position(s)
        if pos and self.rng.random() < 0.4:
            ctx.sell(s, pos)
        elif not ctx.open_orders(s):
            ctx.buy(s, int(self.rng.integers(1, 6)) * 100)


def model_equity(events: np.ndarray, fills, cash0: float, lat: int, grid: list[int],
                 held: dict | None = None, marks_out: dict | None = None) -> list[float]:
    """Equity at each grid time g from the rule itself: the marks and fills delivered before g, a
    print's mark before a fill delivered at the same time (``held``: symbol -> (qty, mark) at the
    start)."""
    pr = events[(events["kind"] == ev.KIND_TRADE) & (events["price"] > 0) & (events["size"] > 0)]
    items = [(int(t) + lat, 0, int(s), int(p) / ev.PRICE_SCALE, 0, 0.0)
             for t, s, p in zip(pr["ts_recv"], pr["symbol"], pr["price"], strict=True)]
    items += [(f.ts + lat, 1, f.symbol, f.price_usd, f.side * f.qty, f.fee) for f in fills]
    items.sort(key=lambda x: (x[0], x[1]))
    held = held or {}
    qty = {s: q for s, (q, _) in held.items()}
    mark = {s: m for s, (_, m) in held.items()}
    cash, out, k = cash0, [], 0
    for g in grid:
        while k < len(items) and items[k][0] < g:
            _, is_fill, s, px, dq, fee = items[k]
            mark[s] = px
            if is_fill:
                qty[s] = qty.get(s, 0) + dq
                cash -= dq * px + fee
            k += 1
        out.append(cash + sum(q * mark[s] for s, q in qty.items()))
    if marks_out is not None:
        marks_out.update({s: mark[s] for s, q in qty.items() if q})
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("lat_ms, off_grid", [(0, False), (3, False), (0, True), (5, True)])
def test_positions_are_marked_at_every_print_as_the_rule_says(seed, lat_ms, off_grid):
    events = random_stream(seed)
    step = 10 * MS
    cfg = EngineConfig(
        execution=ExecutionConfig(book="pseudo"), feed_latency_ns=lat_ms * MS, equity_every_ns=step
    )
    eng = Engine(RandomTrader(seed, 4), 4, cfg, list("ABCD"))
    held = {}
    if off_grid:  # a position carried in with a mark off the $0.0001 grid: its next print is marked
        # in Python (the running sums are integers of $0.0001), the rest stay compiled
        eng.pf.apply_fill(Fill(0, 2, 1, 300, 20_000, 0, "carried", "taker", 2.0))
        eng.pf.mark(2, 2.00004567)
        held = {2: (300, 2.00004567)}
    eng.run(np.array_split(events, 3))
    assert len(eng.fills) > 20 and eng.pf.positions
    assert eng.pf.off_grid_value() == 0  # the carried position's first print put it on the grid
    grid = {}
    for t, e, _, _ in eng.equity_curve:  # the first row at a grid time is the grid sample
        if t % step == 0 and t not in grid:
            grid[t] = e
    times = sorted(grid)
    cash0 = cfg.cash - 300 * 2.0 if off_grid else cfg.cash
    want = model_equity(events, eng.fills, cash0, lat_ms * MS, times, held)
    got = [grid[t] for t in times]
    assert got == pytest.approx(want, abs=1e-6)
    # and the last row: every print marked, nothing left for an end-of-run mark
    marks: dict = {}
    last = model_equity(events, eng.fills, cash0, lat_ms * MS, [1 << 62], held, marks)[0]
    assert eng.equity_curve[-1][1] == pytest.approx(last, abs=1e-6)
    # each open position's mark as the portfolio reports it (what the dashboard and state file show)
    open_ = {s: eng.pf.mark_px(s) for s, p in eng.pf.positions.items() if p.qty}
    assert open_ == pytest.approx(marks, abs=1e-9)
    saved = eng.pf.to_dict()["marks"]
    assert {int(k): v for k, v in saved.items() if int(k) in open_} == pytest.approx(marks, abs=1e-9)


class BuyOnce(Strategy):
    """Buys 1,000 shares of symbol 0 at the first timer; subscribes to nothing."""

    def on_start(self, ctx):
        ctx.schedule("t", at=ctx.now + 1)
        self.rejected = []

    def on_timer(self, ctx, name):
        ctx.buy(0, 1_000)

    def on_order(self, ctx, oid, status, reason):
        self.rejected.append(reason)


def falling(n: int = 12) -> np.ndarray:
    parts = []
    for i in range(n):
        px = 100_000 - i * 2_000
        e = ev.empty(3)
        e["ts_event"] = e["ts_recv"] = (i + 1) * S
        e["kind"] = [ev.KIND_QUOTE, ev.KIND_QUOTE, ev.KIND_TRADE]
        e["side"] = [1, -1, 0]
        e["price"] = [px - 100, px, px]
        e["size"] = [5_000, 5_000, 100]
        e["conditions"] = [0, 0, ev.COND_REGULAR]
        parts.append(e)
    out = np.concatenate(parts)
    out["seq"] = np.arange(out.size)
    return out


@pytest.mark.parametrize("cuts", [1, 5, 36])  # batches: whole day, five, one event each
@pytest.mark.parametrize("lat_ms", [0, 2])
def test_the_kill_switch_fires_at_the_print_that_breaks_the_limit_without_a_subscription(lat_ms, cuts):
    """The kill runs at the mark's time whether the venue's pass or the engine (at a batch end, before
    an item) applied that mark."""
    events = falling()
    cfg = EngineConfig(
        cash=50_000,
        risk=RiskLimits(max_daily_loss=1_000),
        execution=ExecutionConfig(book="pseudo"),
        feed_latency_ns=lat_ms * MS,
    )
    strat = BuyOnce()
    eng = Engine(strat, 1, cfg, ["X"]).run(np.array_split(events, cuts))
    buy = eng.fills[0]
    assert buy.qty == 1_000 and buy.side == 1
    # the first print whose mark puts the loss at 1,000 or more (fee included), at its delivery time
    cash = 50_000 - buy.qty * buy.price_usd - buy.fee
    pr = events[events["kind"] == ev.KIND_TRADE]
    hit = next(int(t) for t, p in zip(pr["ts_recv"], pr["price"], strict=True)
               if t + lat_ms * MS > buy.ts + lat_ms * MS and cash + 1_000 * p / 1e4 - 50_000 <= -1_000)
    assert [k["ts"] for k in eng.risk.kill_events] == [hit + lat_ms * MS]
    assert eng.pf.halted and eng.pf.position(0) == 0
    assert any(f.tag == "kill_switch" for f in eng.fills)


# --- found by review: the engine's own flushes ----------------------------------------------------
def test_a_run_without_an_equity_grid_finishes_with_every_print_marked():
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), equity_every_ns=0)
    events = falling()
    eng = Engine(BuyOnce(), 1, cfg, ["X"]).run([events])
    buy = eng.fills[0]
    last = int(events[events["kind"] == ev.KIND_TRADE]["price"][-1]) / 1e4
    assert eng.pf.mark_px(0) == last
    assert eng.pf.equity == pytest.approx(cfg.cash - buy.qty * buy.price_usd - buy.fee + buy.qty * last)


def _kill_day(later_event: bool) -> np.ndarray:
    parts = [seq.quote(1 * S, 1, 99_900, 5_000), seq.quote(1 * S, -1, 100_000, 5_000),
             seq.trade(1 * S, 100_000, 100), seq.quote(2 * S, 1, 89_900, 5_000),
             seq.quote(2 * S, -1, 90_000, 5_000), seq.trade(2 * S, 90_000, 100),
             seq.trade(2 * S + 3 * MS, 80_000, 100),  # through the bid: the book's bids are gone
             seq.quote(2 * S + 4 * MS, 1, 79_900, 5_000)]
    if later_event:
        parts.append(seq.quote(5 * S, 1, 79_000, 5_000))
    return seq.stream(*parts)


@pytest.mark.parametrize("later_event", [False, True])  # marks flushed by finish() / by step()
def test_after_a_kill_the_next_marks_wait_for_the_flatten_orders(later_event):
    """Feed latency 5 ms, order latency 2 ms: the 2.000 s print's mark kills at 2.005 s; the flatten
    order arrives (and fills) at 2.007 s, before the 2.003 s print's mark (2.008 s) is applied."""

    class Buy(BuyOnce):
        def on_start(self, ctx):
            super().on_start(ctx)
            if later_event:
                ctx.schedule("u", at=4 * S)

        def on_timer(self, ctx, name):
            if name == "t":
                ctx.buy(0, 1_000)

    cfg = EngineConfig(cash=50_000, risk=RiskLimits(max_daily_loss=1_000),
                       execution=ExecutionConfig(book="pseudo"), feed_latency_ns=5 * MS,
                       order_latency=ConstantLatency(2 * MS), equity_every_ns=MS)
    eng = Engine(Buy(), 1, cfg, ["X"]).run([_kill_day(later_event)])
    assert [k["ts"] for k in eng.risk.kill_events] == [2 * S + 5 * MS]
    flat = [f for f in eng.fills if f.tag == "kill_switch"]
    assert len(flat) == 1 and flat[0].ts == 2 * S + 7 * MS and eng.pf.position(0) == 0
    ts = [t for t, *_ in eng.equity_curve]
    assert ts == sorted(ts)


@pytest.mark.parametrize("lat_ms", [0, 3])
def test_a_portfolio_resumed_from_its_state_file_is_marked(tmp_path, lat_ms):
    """A portfolio loaded after the engine was built holds rows only up to its own symbols; the engine
    makes room for all of them (with feed latency every symbol's prints are queued)."""
    pf = Portfolio(cash=50_000, positions={0: Position(100, 10.0)}, marks={0: 10.0})
    pf.save(tmp_path / "state.json")

    def tr(t, s, px):
        e = seq.trade(t, px, 100)
        e["symbol"] = s
        return e

    events = seq.stream(*[tr(k * S, 1_000 + k % 3, 100_000 + k) for k in range(1, 50)],
                        tr(60 * S, 0, 110_000))
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), feed_latency_ns=lat_ms * MS)
    eng = Engine(Strategy(), 2_000, cfg)
    eng.pf, _ = Portfolio.load(tmp_path / "state.json")
    eng.run([events])
    assert eng.pf.mark_px(0) == 11.0 and eng.pf.equity == pytest.approx(51_100.0)


@pytest.mark.parametrize("kill", [False, True])
@pytest.mark.parametrize("lat_ms", [0, 4])
def test_records_only_tabled_after_the_last_event_do_not_pass_a_waiting_mark(lat_ms, kill):
    """A gated run whose last items are tabled signal records (no timer) samples the same equity
    curve as an ungated one: the last print's mark is applied before the clock moves past it."""

    class Gated(BuyOnce):
        def __init__(self, gated):
            super().__init__()
            self.gated = gated

        def on_start(self, ctx):
            super().on_start(ctx)
            if self.gated:
                ctx.follow_signals(0, False)
                ctx.gate_signals({})

    events = seq.stream(seq.quote(1 * S, 1, 99_900, 5_000), seq.quote(1 * S, -1, 100_000, 5_000),
                        seq.trade(1 * S, 100_000, 100), seq.trade(2 * S, 90_000, 100))
    recs = seq._records(*[(t * S, t, 1, 0.1, 0) for t in (3, 4, 5)])
    curves = []
    for gated in (False, True):
        cfg = EngineConfig(cash=50_000, execution=ExecutionConfig(book="pseudo"), equity_every_ns=S,
                           feed_latency_ns=lat_ms * MS, risk=RiskLimits(max_daily_loss=1_000 if kill else 0))
        eng = Engine(Gated(gated), 1, cfg, ["X"]).run([events], signals=recs)
        assert bool(eng.risk.kill_events) == kill
        curves.append(eng.equity_curve)
    assert curves[0] == curves[1]
    if not kill:
        eq = {t // S: e for t, e, _, _ in curves[0] if t % S == 0}
        assert eq[3] == eq[5] == pytest.approx(eq[2] - 1_000)  # bought 1,000; marked 0.10 lower at 2 s
