"""The event-driven engine: replay batches through the simulated venue, call strategies sparsely.

Sequencing contract (docs/backtester.md states it; tests/unit/test_backtest_sequencing.py tests
each rule).  For every timestamp T:

1. the venue applies every market event with ``ts_recv == T`` and matches our working orders
   against it (compiled, no Python per event);
2. strategies receive what became visible at T: events of subscribed symbols, signals and fill
   reports, each at its ``ts_recv + feed_latency``;
3. orders (and cancels) sent by strategies reach the venue at ``send time + order latency`` and are
   executed / rested there;
4. timers and bar closes due at T fire.

No look-ahead: nothing is delivered before its receive time, direct reads (book, last price,
bars) only return what the venue had at ``now`` (and refuse when a feed latency makes the venue's
state newer than what the strategy could know), and every delivery is checked by the guard.
Outputs do not depend on how the stream is cut into batches: items due at the last timestamp of
a batch wait for the next batch (more events of that timestamp may follow), or for ``finish``;
recurring timers always re-arm (``finish`` drops those past the end), and items handed over per
batch (bars, signals) are ordered among equal-time items by their content, not by when they were
pushed.
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantedge import events as ev
from quantedge.backtest import marks_nb as mk
from quantedge.backtest import venue_nb as vnb
from quantedge.backtest.bars import BAR_DTYPE, build_bars, merge_bar, parse_interval
from quantedge.backtest.fees import FeeCalculator, FeeSchedule
from quantedge.backtest.latency import ConstantLatency, EmpiricalLatency
from quantedge.backtest.orders import (
    ORDER_TYPES,
    ST_CANCELLED,
    ST_REJECTED,
    STATUS_NAMES,
    TIFS,
    Fill,
    OrderRequest,
)
from quantedge.backtest.portfolio import Portfolio
from quantedge.backtest.risk import RiskLimits, RiskManager
from quantedge.backtest.signal_gate import N_KINDS, new_table, next_delivery, table_apply
from quantedge.backtest.venue import STATUS_FINAL, ExecutionConfig, SimVenue
from quantedge.signals.types import SIGNAL_DTYPE, SIGNAL_NAMES
from quantedge.strategies.base import Context, LookAheadError, MarketArrays, Strategy

INF = np.iinfo(np.int64).max

P_DELIVER = 2  # rule 2
P_ARRIVE = 3  # rule 3
P_TIMER = 4  # rule 4

# tie-break among items with equal (time, rule).  Items handed over per batch (bars, signal records)
# are pushed when their batch starts, so their push order depends on where the stream was cut: they
# rank first, by content (bar interval/symbol, signal stream position).  Everything else is pushed
# by callbacks and the replay in an order that does not depend on the cuts: push order decides.
# Signal records do not go through the heap: they wait in a lane sorted by delivery time (then
# stream position), and a record due at T goes before any heap item due at T — exactly where the
# tie-break would rank it (rule 2, TB_BATCH; nothing ranks before rule 2).  Records the strategy's
# gate does not deliver (signal_gate.py) are written to the latest-signal table instead, in stream
# order, before anything later is delivered (lazily: when the strategy reads the table or the next
# record is delivered).
TB_BATCH = 0
TB_PUSHED = 1

_KIND_BITS = {
    "trade": 1 << ev.KIND_TRADE,
    "quote": 1 << ev.KIND_QUOTE,
    "book": (1 << ev.KIND_ORDER) | (1 << ev.KIND_DEPTH) | (1 << ev.KIND_CLEAR) | (1 << ev.KIND_QUOTE),
}


@dataclass
class EngineConfig:
    cash: float = 100_000.0
    feed_latency_ns: int = 0  # added to ts_recv before a strategy sees an event / signal / fill report
    order_latency: ConstantLatency | EmpiricalLatency = field(default_factory=ConstantLatency)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    risk: RiskLimits = field(default_factory=RiskLimits)
    equity_every_ns: int = 60_000_000_000  # equity curve sampling (plus every fill)
    state_path: str | None = None  # portfolio persisted here after each fill (atomic)


@dataclass
class GuardReport:
    """Look-ahead guard: every delivery checked; violations raise, refusals are counted."""

    deliveries: int = 0
    max_lag_ns: int = 0  # largest (now - data receive time) seen
    violations: int = 0
    refused_reads: int = 0
    batches: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Engine(Context):
    """Runs one strategy over one stream.  Also the strategy's Context."""

    def __init__(
        self,
        strategy: Strategy,
        n_symbols: int,
        cfg: EngineConfig | None = None,
        symbol_names: list[str] | None = None,
    ) -> None:
        self.cfg = cfg or EngineConfig()
        self.strategy = strategy
        self.venue = SimVenue(n_symbols, self.cfg.execution)
        self.pf = Portfolio(cash=self.cfg.cash, start_cash=self.cfg.cash, day_start_equity=self.cfg.cash)
        # every open position is marked at every print of its symbol, compiled (marks_nb.py)
        self._mk_ring, self._mk_i, self._mk_f = mk.new_marks(self.cfg.feed_latency_ns)
        if self.cfg.feed_latency_ns:  # a fill delivered between a print and its mark may open a position
            self.venue.sub_mask |= vnb.MARK_BIT
        self.mark_stops = 0  # times the compiled marks handed back to Python (grid, off-grid, kill)
        self.fees = FeeCalculator(self.cfg.fees)
        self.risk = RiskManager(self.cfg.risk)
        self.names = symbol_names or [str(i) for i in range(n_symbols)]
        self.n_symbols = n_symbols
        self.now = 0
        self.guard = GuardReport()
        self._heap: list[tuple] = []
        self._seq = 0
        # the signal lane: records not yet delivered or tabled (from _lane_i on), their delivery
        # times as a list (Python ints: compared once per item) and as columns for the compiled
        # gate; processed records are kept in _seen for signals_seen
        self._lane = np.zeros(0, SIGNAL_DTYPE)
        self._lane_t: list[int] = []
        self._lane_i = 0
        self._lane_cols: tuple[np.ndarray, ...] = ()
        self._next_del = -1  # lane index of the next record the gate delivers (-1: not searched)
        self._seen: list[tuple[list[int], np.ndarray]] = []
        # the gate (every record of a followed symbol is delivered; all are followed at the start)
        # and the latest-signal table; _now_visible: a heap item is being handled, so every lane
        # record due at or before now is knowable (during a lane delivery only those before it)
        self._follow = np.ones(n_symbols, np.bool_)
        self._gate_min = np.full(N_KINDS, np.inf)
        self._gate_trig = np.zeros(N_KINDS, np.bool_)
        self._tab = new_table(n_symbols)
        self._now_visible = False
        self._bar_ivs: dict[int, np.ndarray | None] = {}  # interval -> symbols (None = all)
        self._open_bars: dict[tuple[int, int, int], np.void] = {}
        self._bar_hist: dict[tuple[int, int], list] = {}
        self._timers: dict[str, int] = {}
        self._book_snap: dict[int, dict] = {}
        self._last_seen_px: dict[int, float] = {}
        self._last_ts = -1
        self._next_eq = 0
        self.fills: list[Fill] = []
        self.trade_log: list[dict] = []
        self.equity_curve: list[tuple[int, float, float, float]] = []  # ts, equity, cash, gross exposure
        self.logs: list[tuple[int, str]] = []
        self.order_events: list[dict] = []
        self.callbacks = 0
        self.signal_callbacks = 0  # records delivered to on_signal (the rest only reached the table)
        self.callback_s = 0.0
        self.observe_s = 0.0  # time in observers (observe_every): compiled work over all symbols
        self.events_seen = 0
        self._started = False
        self._pending_qty: dict[int, tuple[int, int]] = {}  # order in flight -> (symbol, signed qty)
        self._pending_sym: dict[int, int] = {}  # symbol -> signed qty of its orders in flight
        self._seeds: dict[int, tuple[np.ndarray, int]] = {}
        self.seed_info: dict | None = None  # opening books seeded, for metrics.json

    # ---------------------------------------------------------------------------------------------
    # driving
    # ---------------------------------------------------------------------------------------------
    def run(
        self,
        batches: Iterable[np.ndarray],
        signals: np.ndarray | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Engine:
        """Whole run: every batch, then finish.  ``signals`` (SIGNAL_DTYPE) are merged by ts_recv."""
        if signals is not None:
            self.add_signals(signals)
        for b in batches:
            self.step(b)
            if progress:
                progress(len(b))
        self.finish()
        return self

    def seed_opening_books(self, seeds: dict[int, tuple[np.ndarray, int]], note: str = "") -> None:
        """LOBSTER days: the venue's L3 book opens with the orderbook file's first row, message 1
        undone (backtest/seeds.py), applied when the first batch arrives.  Other venues ignore it.
        ``seed_info`` (metrics.json ``opening_books``) names the seeded symbols and their levels."""
        if self.venue.mode == vnb.MODE_L3:
            self._seeds = dict(seeds)
            self.seed_info = {"opening_books": {self.names[s]: lv for s, (_row, lv) in seeds.items()},
                              "note": note}

    def _apply_seeds(self, batch: np.ndarray) -> None:
        from quantedge.backtest.seeds import seed_l3

        for s, (row, levels) in self._seeds.items():
            first = batch[(batch["symbol"] == s) & (batch["seq"] == 1)]
            seed_l3(self.venue.book, s, row, levels, first)
        self._seeds = {}

    def add_signals(self, signals: np.ndarray) -> None:
        """Queue records for delivery at ``ts_recv + feed latency`` (any order: they are sorted by
        time, equal times in the order handed over, after the records already queued)."""
        if signals.dtype != SIGNAL_DTYPE:
            raise TypeError("signals must be a SIGNAL_DTYPE array")
        if signals.shape[0] == 0:
            return
        bad = np.flatnonzero((signals["symbol"] < 0) | (signals["symbol"] >= self.n_symbols)
                             | (signals["signal"] >= N_KINDS))
        if bad.size:
            r = signals[bad[0]]
            raise ValueError(f"signal record {int(bad[0])}: symbol {int(r['symbol'])} "
                             f"(0..{self.n_symbols - 1})"
                             f" / signal {int(r['signal'])} (1..{N_KINDS - 1}) out of range")
        late = signals["ts_recv"] + self.cfg.feed_latency_ns < self.now
        if late.any():
            self.guard.violations += 1
            raise LookAheadError(f"signal record {int(np.argmax(late))} handed over after its delivery time "
                                 f"(now {self.now})")
        if self._lane_i < len(self._lane_t):  # what is already known goes to the table, off the lane
            j = self._next_del if self._next_del >= 0 else self._find_delivery()
            self._table_upto(min(j, bisect.bisect_right(self._lane_t, self.now, self._lane_i)))
        i = self._lane_i
        if i:  # keep what was processed for signals_seen, drop it from the lane
            self._seen.append((self._lane_t[:i], self._lane[:i]))
        # the records handed to the strategy are views of this private copy
        lane = np.concatenate([self._lane[i:], signals])
        order = np.argsort(lane["ts_recv"], kind="stable")
        if (np.diff(order) < 0).any():
            lane = lane[order]
        self._lane = lane
        t = lane["ts_recv"] + self.cfg.feed_latency_ns
        self._lane_t = t.tolist()
        self._lane_cols = (t, lane["symbol"].astype(np.int64), lane["signal"].astype(np.int64),
                           lane["score"].astype(np.float64), lane["triggered"].copy())
        self._lane_i = 0
        self._next_del = -1

    @property
    def signals_seen(self) -> list[tuple[int, int, str, float]]:
        """Every signal record delivered so far: (delivery time, symbol, signal name, score)."""
        out: list[tuple[int, int, str, float]] = []
        for t, recs in [*self._seen, (self._lane_t[: self._lane_i], self._lane[: self._lane_i])]:
            names = [SIGNAL_NAMES.get(k, str(k)) for k in recs["signal"].tolist()]
            out += zip(t, recs["symbol"].tolist(), names, recs["score"].tolist(), strict=True)
        return out

    def _start(self, t0: int) -> None:
        self._started = True
        self.now = t0
        self._next_eq = t0
        self.pf.reserve(self.n_symbols)  # rows for every symbol (also in a portfolio set after __init__)
        self._sample_equity()
        self._sync_marks()
        for s in self.pf.positions:  # positions carried in (a resumed portfolio)
            self._mark_prints(s)
        self._call(self.strategy.on_start)

    def step(self, batch: np.ndarray) -> None:
        """Advance through one batch (merge-ordered); items due at its last timestamp wait."""
        if batch.dtype != ev.EVENT_DTYPE:
            raise TypeError("batch must be an EVENT_DTYPE array")
        n = batch.shape[0]
        if n == 0:
            return
        ts = batch["ts_recv"]
        bad = vnb.first_step_back(batch, self._last_ts)
        if bad >= 0:
            raise ValueError(
                f"batch not in ts_recv order at row {bad} (ts_recv {int(ts[bad])} < previous): "
                "replay needs merge-ordered batches"
            )
        self.guard.batches += 1
        if not self._started:
            if self._seeds:
                self._apply_seeds(batch)
            self._start(int(ts[0]))
        self._collect_bars(batch)
        self._mk_ring = mk.ensure_room(self._mk_ring, self._mk_i, n)  # a mark per event at most
        horizon = int(ts[-1])
        self._last_ts = horizon
        i = 0
        heap = self._heap
        while True:
            th = heap[0][0] if heap else INF
            j = self._next_del if self._next_del >= 0 else self._find_delivery()
            tl = self._lane_t[j] if j < len(self._lane_t) else INF
            t_next = tl if tl <= th else th
            if i < n and ts[i] <= t_next:
                i, why = self.venue.advance(batch, i, t_next, self._marks())
                if why == vnb.STOP_MARK:
                    self._mark_stop()
                elif why == vnb.STOP_SUB or (why == vnb.STOP_FILL and self._subscribed(batch[i - 1])):
                    self._on_sub_event(batch[i - 1])
                if self.venue.nfl[0]:
                    self._collect_fills()
                continue
            if t_next == INF or t_next >= horizon:
                break
            if self._flush_marks(t_next):  # Python acted at an earlier time: look again
                continue
            if tl <= th:
                self._deliver_signal(j)
            else:
                self._pop_one()
        self.events_seen += n

    def finish(self, end_ns: int | None = None) -> None:
        """Deliver everything still due (up to end_ns), expire DAY orders, call on_stop."""
        if not self._started:
            return
        end = end_ns if end_ns is not None else self._last_ts
        while self._heap or self._lane_i < len(self._lane_t):
            j = self._next_del if self._next_del >= 0 else self._find_delivery()
            if j < len(self._lane_t) and (not self._heap or self._lane_t[j] <= self._heap[0][0]):
                if self._flush_marks(self._lane_t[j]):
                    continue
                self._deliver_signal(j)
                continue
            if not self._heap:  # the rest only go to the table; the clock reaches the last of them
                if self._flush_marks(self._lane_t[-1]):
                    continue
                n_lane = len(self._lane_t)
                self._table_upto(n_lane)
                self.now = max(self.now, self._lane_t[-1])
                if self._next_eq and self.now >= self._next_eq:  # grid points before the final marks
                    self._sample_equity()
                continue
            if self._heap[0][4] in ("timer", "observe") and self._heap[0][0] > end:
                heapq.heappop(self._heap)
                continue
            if self._flush_marks(self._heap[0][0]):
                continue
            self._pop_one()
        while True:  # the last prints' marks (a kill switch may still fire), and what it sends
            if self._flush_marks(self._heap[0][0] if self._heap else INF):
                continue
            if not self._heap:
                break
            self._pop_one()
        for oid in self.venue.expire_day_orders():
            self.order_events.append(
                {"ts": self.now, "order_id": oid, "status": "expired", "reason": "end of day"}
            )
        self._sample_equity(force=True)
        self._call(self.strategy.on_stop)

    # ---------------------------------------------------------------------------------------------
    # the item queue
    # ---------------------------------------------------------------------------------------------
    def _push(
        self, t: int, prio: int, kind: str, payload: Any, data_ts: int, tie: tuple = (TB_PUSHED, 0)
    ) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, prio, tie, self._seq, kind, payload, data_ts))

    def _find_delivery(self) -> int:
        cols = self._lane_cols
        if not cols:
            return 0
        self._next_del = next_delivery(cols[1], cols[2], cols[3], cols[4], self._lane_i, self._follow,
                                       self._gate_min, self._gate_trig)
        return self._next_del

    def _table_upto(self, j1: int) -> None:
        """Lane records from _lane_i to j1 (exclusive) become known: into the table, counted."""
        j0 = self._lane_i
        if j1 <= j0:
            return
        cols = self._lane_cols
        table_apply(cols[0], cols[1], cols[2], cols[3], cols[4], j0, j1, *self._tab)
        g = self.guard
        g.deliveries += j1 - j0
        g.max_lag_ns = max(g.max_lag_ns, self.cfg.feed_latency_ns)  # every lane record's lag
        self._lane_i = j1

    def _sync_table(self) -> None:
        """Before the strategy reads the table or changes its gate: every record it can know now."""
        if self._now_visible:  # handling a heap item at now: the lane records due at or before now
            j1 = bisect.bisect_right(self._lane_t, self.now, self._lane_i)
            if self._next_del >= 0:
                j1 = min(j1, self._next_del)
            self._table_upto(j1)

    def _deliver_signal(self, j: int) -> None:
        """Lane record j, the next one the gate delivers (rule 2): the records before it go to the
        table, then it goes there too and to ``on_signal``."""
        t = self._lane_t[j]
        if t < self.now:
            self.guard.violations += 1
            raise LookAheadError(f"clock would go back from {self.now} to {t} (signal)")
        self._table_upto(j + 1)
        self._next_del = -1
        self.now = t
        if self._next_eq and t >= self._next_eq:
            self._sample_equity()
        self.signal_callbacks += 1
        self._call(self.strategy.on_signal, self._lane[j])

    def _pop_one(self) -> None:
        t, prio, _, _, kind, payload, data_ts = heapq.heappop(self._heap)
        self._now_visible = True
        try:
            self._handle(t, prio, kind, payload, data_ts)
        finally:
            self._now_visible = False

    def _handle(self, t: int, prio: int, kind: str, payload: Any, data_ts: int) -> None:
        if t < self.now:
            self.guard.violations += 1
            raise LookAheadError(f"clock would go back from {self.now} to {t} ({kind})")
        self.now = t
        if prio == P_DELIVER or kind == "bar":
            self.guard.deliveries += 1
            lag = t - data_ts
            if lag < 0:
                self.guard.violations += 1
                raise LookAheadError(f"{kind} with receive time {data_ts} delivered at {t}")
            self.guard.max_lag_ns = max(self.guard.max_lag_ns, lag)
        if self._next_eq and t >= self._next_eq:
            self._sample_equity()
        if kind == "event":
            e, snap = payload
            s = int(e["symbol"])
            if snap is not None:
                self._book_snap[s] = snap
            k = int(e["kind"])
            if k == ev.KIND_TRADE:
                self._last_seen_px[s] = e["price"] / ev.PRICE_SCALE
                self.pf.note_price(s, self._last_seen_px[s])
                self._call(self.strategy.on_trade, e)
            elif k == ev.KIND_QUOTE:
                self._call(self.strategy.on_quote, e)
                if self._sub_book(s):
                    self._call(self.strategy.on_book, e)
            else:
                self._call(self.strategy.on_book, e)
        elif kind == "fill":
            self._deliver_fill(payload)
        elif kind == "status":
            self._order_event(*payload)
        elif kind == "arrive":
            self.venue.arrive(payload, t)
            self._pending_qty_done(payload)
            self._after_arrival(payload)
        elif kind == "cancel":
            if self.venue.cancel(payload):
                self._order_event(payload, "cancelled", "cancel request")
        elif kind == "bar":
            self._deliver_bar(payload)
        elif kind == "observe":
            name, every, observer = payload
            self._push(t + every, P_TIMER, "observe", payload, t + every)
            t0 = time.perf_counter()
            act = observer(t, self.market)
            self.observe_s += time.perf_counter() - t0
            if act is None or act:  # a false result: nothing for the strategy to act on
                self._push(t + self.cfg.feed_latency_ns, P_TIMER, "timer", (name, 0), t)
        elif kind == "timer":
            name, every = payload
            if every:
                # re-arm unconditionally: whether the next firing lies inside this batch says
                # nothing about the stream (finish() drops the firings after the end)
                self._push(t + every, P_TIMER, "timer", payload, t + every)
            self._call(self.strategy.on_timer, name)

    def _sub_book(self, s: int) -> bool:
        return bool(self.venue.sub_mask[s] & (1 << ev.KIND_DEPTH))

    def _subscribed(self, e: np.void) -> bool:
        """The event is of a subscribed symbol and kind (a print that filled one of our orders stops
        the venue for the fill; the strategy still gets the print)."""
        return bool(self.venue.sub_mask[int(e["symbol"])] & (1 << int(e["kind"])))

    # ---------------------------------------------------------------------------------------------
    # position marks (compiled, marks_nb.py): the stops where Python acts
    # ---------------------------------------------------------------------------------------------
    def _marks(self) -> tuple:
        return (self._mk_ring, self._mk_i, self._mk_f, self.pf.pu, self.pf.acc)

    def _mark_prints(self, s: int) -> None:
        """With zero feed latency the venue queues the prints of open positions' symbols only."""
        if not self.cfg.feed_latency_ns:
            if self.pf.position(s):
                self.venue.sub_mask[s] |= vnb.MARK_BIT
            else:
                self.venue.sub_mask[s] &= ~vnb.MARK_BIT

    def _sync_marks(self) -> None:
        """The kill test's inputs as they are now (after a fill, a Python mark, a halt, the start)."""
        pf, f = self.pf, self._mk_f
        f[mk.MF_CASH] = pf.cash
        f[mk.MF_OFF] = pf.off_grid_value()
        f[mk.MF_DAY_START] = pf.day_start_equity
        f[mk.MF_NEG_LOSS] = -self.risk.lim.max_daily_loss
        self._mk_i[mk.MI_KILL] = int(bool(self.risk.lim.max_daily_loss) and not pf.halted)
        self._mk_i[mk.MI_NEXT_EQ] = self._next_eq if self.cfg.equity_every_ns else 0

    def _flush_marks(self, upto: int) -> bool:
        """Apply the marks due at or before ``upto`` (before the item at that time); True when Python
        had to act on one of them (the clock then moved to it, and new items may come first)."""
        mi = self._mk_i
        if mi[mk.MI_HEAD] == mi[mk.MI_TAIL]:
            return False
        if mk.mark_flush(self._mk_ring, mi, self._mk_f, self.pf.pu, self.pf.acc, upto, False) == mk.R_DONE:
            return False
        self._mark_stop()  # may have pushed items (a kill's orders) due before the next mark
        return True

    def _mark_stop(self) -> None:
        mi = self._mk_i
        why = int(mi[mk.MI_WHY])
        self.mark_stops += 1
        td = int(mi[mk.MI_TD])
        if td < self.now:
            self.guard.violations += 1
            raise LookAheadError(f"clock would go back from {self.now} to {td} (position mark)")
        self.now = td
        if why == mk.R_EQ:
            self._sample_equity()
        elif why == mk.R_OFF:
            self.pf.mark(int(mi[mk.MI_S]), int(mi[mk.MI_PX]) / ev.PRICE_SCALE)
            self._sync_marks()
            self._check_kill()
        elif why == mk.R_KILL:
            self._check_kill()

    def _on_sub_event(self, e: np.void) -> None:
        s = int(e["symbol"])
        snap = self.venue.top(s) if self.cfg.feed_latency_ns else None
        self._push(
            int(e["ts_recv"]) + self.cfg.feed_latency_ns,
            P_DELIVER,
            "event",
            (e.copy(), snap),
            int(e["ts_recv"]),
        )

    # ---------------------------------------------------------------------------------------------
    # fills, orders
    # ---------------------------------------------------------------------------------------------
    def _collect_fills(self) -> int:
        fills = self.venue.drain_fills()
        for f in fills:
            self._push(f.ts + self.cfg.feed_latency_ns, P_DELIVER, "fill", f, f.ts)
        return len(fills)

    def _after_arrival(self, oid: int) -> None:
        got = self._collect_fills()
        st = self.venue.status(oid)
        if st in (ST_CANCELLED, ST_REJECTED):
            reason = self.venue.reject_reasons.get(oid, "")
            if got:
                # filled in part, the rest cancelled (a market order that ran out of book): the
                # status report follows the fill reports, so the strategy never sees "cancelled"
                # while shares it sold are still unreported (it would sell them again)
                self._push(self.now + self.cfg.feed_latency_ns, P_DELIVER, "status",
                           (oid, STATUS_NAMES[st], reason), self.now)
            else:
                self._order_event(oid, STATUS_NAMES[st], reason)

    def _order_event(self, oid: int, status: str, reason: str) -> None:
        self.order_events.append({"ts": self.now, "order_id": oid, "status": status, "reason": reason})
        self._call(self.strategy.on_order, oid, status, reason)

    def _deliver_fill(self, f: Fill) -> None:
        fee, _parts = self.fees.fill_fee(f.order_id, f.side, f.qty, f.price_usd)
        f = Fill(**{**f.__dict__, "fee": fee})
        self.pf.apply_fill(f)
        self.fills.append(f)
        eq = self.pf.equity
        self.trade_log.append(
            {
                "timestamp": f.ts,
                "symbol": self.names[f.symbol],
                "action": "BUY" if f.side > 0 else "SELL",
                "qty": f.qty,
                "price": f.price_usd,
                "notional": f.qty * f.price_usd,
                "cash": self.pf.cash,
                "equity": eq,
                "fee": fee,
                "reason": f.reason,
                "liquidity": f.liquidity,
                "order_id": f.order_id,
                "tag": f.tag,
                "slippage": f.slippage_usd,
            }
        )
        self._sample_equity(force=True)
        self._sync_marks()
        self._mark_prints(f.symbol)
        if self.cfg.state_path:
            self.pf.save(self.cfg.state_path, {"ts": self.now, "fills": len(self.fills)})
        self._call(self.strategy.on_fill, f)
        self._check_kill()

    def _check_kill(self) -> None:
        if self.risk.breached(self.pf):
            self.risk.kill_events.append(
                {"ts": self.now, "equity": self.pf.equity, "day_start_equity": self.pf.day_start_equity}
            )
            for oid in self.venue.open_orders():
                self.venue.cancel(oid)
            for s, p in list(self.pf.positions.items()):
                if p.qty:
                    self._send(OrderRequest(s, -1 if p.qty > 0 else 1, abs(p.qty), tag="kill_switch"))
            self.pf.halted = True
            self._sync_marks()
            self.log(f"kill switch: equity {self.pf.equity:.2f} vs day start {self.pf.day_start_equity:.2f}")

    def _send(self, req: OrderRequest) -> int:
        lat = self.cfg.order_latency.sample()
        oid = self.venue.new_order(req, self.now, self.now + lat)
        q = req.side * req.qty
        self._pending_qty[oid] = (req.symbol, q)
        self._pending_sym[req.symbol] = self._pending_sym.get(req.symbol, 0) + q
        self._push(self.now + lat, P_ARRIVE, "arrive", oid, self.now)
        return oid

    def _pending_qty_done(self, oid: int) -> None:
        got = self._pending_qty.pop(oid, None)
        if got is not None:
            s, q = got
            left = self._pending_sym[s] - q
            if left:
                self._pending_sym[s] = left
            else:
                del self._pending_sym[s]

    # ---------------------------------------------------------------------------------------------
    # bars and equity
    # ---------------------------------------------------------------------------------------------
    def _collect_bars(self, batch: np.ndarray) -> None:
        for iv, syms in self._bar_ivs.items():
            bars = build_bars(batch, iv, syms)
            for b in bars:
                key = (iv, int(b["symbol"]), int(b["t_open"]))
                have = self._open_bars.get(key)
                if have is None:
                    self._open_bars[key] = b.copy()
                    self._push(
                        int(b["t_close"]), P_TIMER, "bar", key, int(b["t_close"]), (TB_BATCH, key[0], key[1])
                    )
                else:
                    merge_bar(have, b)

    def _deliver_bar(self, key: tuple[int, int, int]) -> None:
        b = self._open_bars.pop(key)
        iv, s, _ = key
        self._bar_hist.setdefault((iv, s), []).append(b)
        self.venue.bar_close[s] = b["close"]
        self.pf.note_price(s, b["close"] / ev.PRICE_SCALE)
        self._last_seen_px[s] = b["close"] / ev.PRICE_SCALE
        self._call(self.strategy.on_bar, b)

    def _sample_equity(self, force: bool = False) -> None:
        """Equity at every grid point (``equity_every_ns``) passed, and at ``now`` when forced (fills, end).

        Called before the item at ``now`` is applied, so the grid points in ``[next, now]`` all see
        the equity of the items before them; one sample per grid point, stamped with the grid time,
        keeps the curve independent of which items (signals, timers) happen to fall between points.
        """
        step = self.cfg.equity_every_ns
        row = (self.pf.equity, self.pf.cash, self.pf.gross_exposure())
        if step and self._next_eq and self.now >= self._next_eq:
            first = self._next_eq
            if first % step:  # the run's start time, then the grid
                self.equity_curve.append((first, *row))
                first = (first // step + 1) * step
            for g in range(first, self.now + 1, step):
                self.equity_curve.append((g, *row))
            self._next_eq = (self.now // step + 1) * step
            self._mk_i[mk.MI_NEXT_EQ] = self._next_eq
        if force and (not self.equity_curve or self.equity_curve[-1][0] != self.now or self._changed(row)):
            self.equity_curve.append((self.now, *row))

    def _changed(self, row: tuple) -> bool:
        return self.equity_curve[-1][1:] != row

    def _call(self, fn: Callable, *args: Any) -> None:
        t0 = time.perf_counter()
        fn(self, *args)
        self.callback_s += time.perf_counter() - t0
        self.callbacks += 1

    # ---------------------------------------------------------------------------------------------
    # Context implementation
    # ---------------------------------------------------------------------------------------------
    def submit(
        self,
        symbol: int,
        side: int,
        qty: int,
        *,
        type: str = "market",
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "day",
        tag: str = "",
    ) -> int:
        if type not in ORDER_TYPES or tif not in TIFS or side not in (1, -1):
            raise ValueError(
                f"order: type {type!r} (one of {sorted(ORDER_TYPES)}), tif {tif!r} "
                f"(one of {sorted(TIFS)}), side {side} (+1/-1)"
            )
        if type in ("limit", "stop_limit") and not limit:
            raise ValueError(f"{type} order needs a limit price")
        if type in ("stop", "stop_limit") and not stop:
            raise ValueError(f"{type} order needs a stop price")
        ref = limit or stop or self._ref_price(symbol)
        pending = self._pending_sym.get(symbol, 0)
        why = self.risk.check(self.pf, symbol, side, int(qty), ref, self.now, pending)
        req = OrderRequest(
            symbol,
            side,
            int(qty),
            ORDER_TYPES[type],
            ev.price_to_fixed(limit) if limit else 0,
            ev.price_to_fixed(stop) if stop else 0,
            TIFS[tif],
            tag,
        )
        if why:
            oid = self.venue.new_order(req, self.now, self.now)
            self.venue.reject(oid, why)
            self._order_event(oid, "rejected", why)
            return 0
        return self._send(req)

    def _ref_price(self, s: int) -> float:
        """The price a market order's risk check uses: the position's mark (its last print or fill),
        for a flat symbol its last delivered print, bar close or fill."""
        return self.pf.mark_px(s) or 0.0

    def cancel(self, order_id: int) -> None:
        self._push(self.now + self.cfg.order_latency.sample(), P_ARRIVE, "cancel", order_id, self.now)

    def modify(self, order_id: int, qty: int | None = None, limit: float | None = None) -> int:
        o = self.venue.order(order_id)
        if o["status"] in STATUS_FINAL:
            return 0
        self.cancel(order_id)
        left = qty if qty is not None else o["qty"] - o["filled"]
        lim = limit if limit is not None else o["limit"] / ev.PRICE_SCALE
        tname = {v: k for k, v in ORDER_TYPES.items()}[o["type"]]
        return self.submit(
            o["symbol"],
            o["side"],
            left,
            type=tname,
            limit=lim or None,
            stop=(o["stop"] / ev.PRICE_SCALE) or None,
            tag=o["tag"],
        )

    def flatten(self, symbol: int | None = None, tag: str = "flatten") -> None:
        for oid in self.venue.open_orders(symbol):
            self.cancel(oid)
        for s, p in list(self.pf.positions.items()):
            if p.qty and (symbol is None or s == symbol):
                self._send(OrderRequest(s, -1 if p.qty > 0 else 1, abs(p.qty), tag=tag))

    def position(self, symbol: int) -> int:
        return self.pf.position(symbol)

    @property
    def cash(self) -> float:
        return self.pf.cash

    @property
    def equity(self) -> float:
        return self.pf.equity

    def open_orders(self, symbol: int | None = None) -> list[int]:
        return self.venue.open_orders(symbol)

    def order_status(self, order_id: int) -> str:
        if not 0 < order_id <= self.venue.n_od:
            raise ValueError(f"order_status: no order {order_id}")
        return STATUS_NAMES[self.venue.status(order_id)]

    def _refuse(self, what: str) -> None:
        self.guard.refused_reads += 1
        raise LookAheadError(
            f"{what}: the venue's state is newer than what the strategy has received "
            f"(feed latency {self.cfg.feed_latency_ns} ns); subscribe to the symbol instead"
        )

    def book(self, symbol: int, levels: int = 5) -> dict:
        """Top levels as the strategy knows them: the venue's book now (no feed latency), else the
        snapshot delivered with the symbol's last event."""
        if not self.cfg.feed_latency_ns:
            return self.venue.top(symbol, levels)
        if symbol in self._book_snap:
            snap = self._book_snap[symbol]
            return {k: v[:levels] for k, v in snap.items()}
        self._refuse("book")
        return {}

    def last_price(self, symbol: int) -> float:
        if symbol in self._last_seen_px:
            return self._last_seen_px[symbol]
        if self.cfg.feed_latency_ns:
            self._refuse("last_price")
        px = int(self.venue.last_px[symbol])
        return px / ev.PRICE_SCALE if px else math.nan

    def bars(self, symbol: int, interval: str | int) -> np.ndarray:
        """Closed bars only (the open one is not knowable yet)."""
        hist = self._bar_hist.get((parse_interval(interval), symbol), [])
        return np.array(hist, dtype=BAR_DTYPE) if hist else np.zeros(0, BAR_DTYPE)

    def features(self, symbol: int) -> dict[str, float]:
        self.guard.refused_reads += 1
        raise LookAheadError("features are not attached to this run (no feature stage configured)")

    def last_signal(self, symbol: int, kind: int) -> tuple[int, float, bool] | None:
        self._sync_table()
        ts, score, trig = self._tab
        t = int(ts[symbol, kind])
        return None if t < 0 else (t, float(score[symbol, kind]), bool(trig[symbol, kind]))

    def follow_signals(self, symbol: int, on: bool = True) -> None:
        if bool(self._follow[symbol]) != on:
            self._sync_table()
            self._follow[symbol] = on
            self._next_del = -1

    def gate_signals(self, min_score: dict[int, float], need_trigger: dict[int, bool] | None = None) -> None:
        bad = [k for k in [*min_score, *(need_trigger or {})] if not 0 < int(k) < N_KINDS]
        if bad:
            raise ValueError(f"gate_signals: signal kind(s) {bad} unknown (1..{N_KINDS - 1})")
        self._sync_table()
        self._gate_min[:] = np.inf
        self._gate_trig[:] = False
        for k, v in min_score.items():
            self._gate_min[int(k)] = float(v)
        for k, v in (need_trigger or {}).items():
            self._gate_trig[int(k)] = bool(v)
        self._next_del = -1

    def subscribe_bars(self, interval: str | int, symbols: list[int] | None = None) -> None:
        iv = parse_interval(interval)
        self._bar_ivs[iv] = None if symbols is None else np.asarray(symbols, dtype=np.int32)

    def subscribe(self, symbol: int, kinds: tuple[str, ...] = ("trade",)) -> None:
        for k in kinds:
            if k not in _KIND_BITS:
                raise ValueError(f"subscribe: kind {k!r} unknown; choose from {sorted(_KIND_BITS)}")
            self.venue.sub_mask[symbol] |= _KIND_BITS[k]

    def unsubscribe(self, symbol: int, kinds: tuple[str, ...] = ("trade",)) -> None:
        for k in kinds:
            if k not in _KIND_BITS:
                raise ValueError(f"unsubscribe: kind {k!r} unknown; choose from {sorted(_KIND_BITS)}")
            self.venue.sub_mask[symbol] &= ~_KIND_BITS[k]

    @property
    def market(self) -> MarketArrays:
        v = self.venue
        return MarketArrays(v.book.lv, v.book.sd, v.last_px, v.tape)

    def observe_every(self, name: str, every: str | int, observer: Any) -> None:
        ev_ns = parse_interval(every)
        if ev_ns <= 0:
            raise ValueError(f"observe_every {name!r}: interval must be positive")
        t = (self.now // ev_ns + 1) * ev_ns
        self._push(t, P_TIMER, "observe", (name, ev_ns, observer), t)

    def schedule(self, name: str, every: str | int | None = None, at: int | None = None) -> None:
        ev_ns = parse_interval(every) if every is not None else 0
        t = at if at is not None else (self.now // ev_ns + 1) * ev_ns if ev_ns else self.now
        if t < self.now:
            raise ValueError(f"timer {name!r} at {t} is in the past (now {self.now})")
        self._push(t, P_TIMER, "timer", (name, ev_ns), t)

    def symbol_id(self, name: str) -> int:
        return self.names.index(name)

    def symbol_name(self, symbol: int) -> str:
        return self.names[symbol]

    def log(self, msg: str) -> None:
        self.logs.append((self.now, msg))

    # ---------------------------------------------------------------------------------------------
    def equity_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.equity_curve:
            return np.zeros(0, np.int64), np.zeros(0)
        a = np.array(self.equity_curve)
        return a[:, 0].astype(np.int64), a[:, 1]
