"""Stealth-accumulation strategy: enter on the composite score, scale in on confirmations, exit on
"fleeing" signals or on composed stops.  Calibrated for penny stocks (wide spreads, jumpy prices).

Decision flow (Python runs on sparse callbacks only: signals, our fills, order timeouts, and one
timer per second that acts on the stops that fired):

* **Watch**: the first signal of a symbol arms its stop rules, so the ATR, the spread/depth
  averages and the support levels (prices where selling was absorbed at the bid) are warm before
  any entry.  The rules of every armed symbol observe its book and prints once a second in one
  compiled pass (:class:`~quantedge.backtest.stops_nb.StopBank`, the same arithmetic as the
  Python :class:`~quantedge.backtest.stops.StopSet`), so watching 2,000 symbols costs no Python per
  symbol.  While a position is open the strategy also takes the symbol's prints (marks).
* **Entry**: a composite (``SIG_COMPOSITE``) record with score >= ``entry_score`` (and, with
  ``require_trigger``, its rising edge) opens a position when at least ``min_confirmations`` of the
  five individual signals scored >= ``confirm_score`` within ``confirm_window_s``.  The target is
  one tranche (``1 / tranches`` of the maximum position) per confirming signal.
* **Scale-in**: each further individual signal that confirms while the position is held and the
  composite stays >= ``hold_score`` adds a tranche, up to ``tranches``.
* **Exit**: an exit (``SIG_EXIT``, "fleeing") record with score >= ``exit_score`` or its trigger,
  any stop rule of the composed :class:`~quantedge.backtest.stops.StopSet`, or the end-of-day time.

Orders: wide spreads (1-3 % on $0.50-$5 names) make crossing expensive — a market buy pays half
the spread at once and walks a thin book, which is most of the edge of a slow accumulation trade.
Entries therefore rest as limit orders at the midpoint (price improvement for sellers, filled by
prints at or through it) or at the bid, with a timeout; an unfilled order is cancelled and re-pegged
to the current quote ``entry_reprices`` times, then dropped.  Signal exits work the same way with a
shorter timeout, then escalate to a marketable limit at the bid floor ``bid x (1 - urgent_slippage_pct)``
and finally a market order.  Stop exits start at the marketable limit: the bid may be leaving.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from quantedge import events as ev
from quantedge.backtest.bars import parse_interval
from quantedge.backtest.orders import Fill
from quantedge.backtest.stops import AtrStop, MicroStop, Obs, StopSet, SupportStop, TimeStop, TrailingStop
from quantedge.backtest.stops_nb import StopBank
from quantedge.signals.types import (
    SIG_ABSORPTION,
    SIG_COMPOSITE,
    SIG_CONTRACTION,
    SIG_EXIT,
    SIGNAL_NAMES,
)
from quantedge.strategies.base import Context, LookAheadError, MarketArrays, Params, Strategy

NS = 1_000_000_000
CONFIRMING = tuple(range(SIG_ABSORPTION, SIG_CONTRACTION + 1))  # the five individual signals
STOP_KINDS = ("atr", "trailing", "time", "support", "micro")
ORDER_MODES = ("mid", "bid", "market")


@dataclass
class AccumulationParams(Params):
    symbol: str = ""  # trade only this symbol (empty: every symbol that signals)
    # entry and scale-in
    entry_score: float = 0.5  # composite score needed to enter
    require_trigger: bool = True  # enter only on the composite's rising edge
    confirm_score: float = 0.4  # an individual signal confirms at or above this score...
    confirm_window_s: float = 120.0  # ...when its record is at most this old
    min_confirmations: int = 1
    tranches: int = 3  # the position is built in this many equal parts (one per confirmation)
    hold_score: float = 0.2  # scale-ins only while the composite's last score is at least this
    max_position: int = 6000  # shares per symbol at full size (as config/backtest_accumulation.yaml)
    max_notional: float = 10_000.0  # dollars per symbol at full size (the smaller bound wins)
    lot: int = 100  # tranche sizes are whole multiples of this
    reentry_cooldown_s: float = 300.0  # after a position is closed, no new entry for this long
    warmup_s: float = 3600.0  # no entry before a symbol has signalled for this long (1 h baselines)
    # exits
    exit_score: float = 0.5  # exit-signal score that closes the position
    flatten_at_et: str = "15:55"  # close every position at this ET wall time ("" = never)
    # execution
    entry_order: str = "mid"  # mid | bid | market
    cross_spread_pct: float = 0.01  # spread (of the mid) up to which an entry takes the offer (limit at ask)
    entry_timeout_s: float = 20.0
    entry_reprices: int = 2
    exit_order: str = "mid"  # mid | bid | market (signal and end-of-day exits)
    exit_timeout_s: float = 5.0
    exit_reprices: int = 1
    urgent_slippage_pct: float = 0.03  # marketable exit limit: bid x (1 - this)
    urgent_timeout_s: float = 2.0  # then a market order
    # stops
    stops: str = "atr,trailing,time,support,micro"  # any of atr, trailing, time, support, micro
    obs_interval: str = "1s"  # stop rules observe the book and prints at this cadence
    atr_bar_s: float = 60.0  # ATR of bars this long
    atr_period: int = 14
    atr_mult_low: float = 2.5
    atr_mult_high: float = 4.0
    atr_regime_period: int = 120
    atr_regime_ratio: float = 1.5
    trail_pct: float = 0.04
    time_max_loss_pct: float = 0.06
    time_start_s: float = 600.0
    time_full_s: float = 3600.0
    time_floor_pct: float = 0.0
    support_ticks: int = 1  # support clustering bucket, in ticks
    support_min_share: float = 0.15
    support_buffer_ticks: int = 2
    micro_flow: float = 0.7
    micro_window: int = 10  # observations
    micro_spread_mult: float = 3.0
    micro_depth_frac: float = 0.25
    micro_alpha: float = 0.05
    # Python cost: a flat symbol with no entry working only takes the composite records that can
    # open a position as callbacks (the others update ctx.last_signal at no Python cost)
    gate_signals: bool = True


def validate(p: AccumulationParams) -> list[str]:
    """Problems with a parameter set, each naming the key (empty when valid)."""
    bad = []

    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            bad.append(f"accumulation.{key} = {getattr(p, key)!r}: {why}")

    for k in ("entry_score", "confirm_score", "hold_score", "exit_score"):
        need(0.0 <= getattr(p, k) <= 1.0, k, "must be in [0, 1]")
    need(p.tranches >= 1, "tranches", "must be >= 1")
    need(1 <= p.min_confirmations <= 5, "min_confirmations", "must be in [1, 5]")
    need(p.max_position > 0, "max_position", "must be > 0")
    need(p.max_notional > 0, "max_notional", "must be > 0")
    need(p.lot >= 1, "lot", "must be >= 1")
    need(0 <= p.cross_spread_pct < 1, "cross_spread_pct", "must be in [0, 1)")
    for k in ("confirm_window_s", "reentry_cooldown_s", "warmup_s", "atr_bar_s", "time_start_s"):
        need(getattr(p, k) >= 0, k, "must be >= 0")
    for k in ("entry_timeout_s", "exit_timeout_s", "urgent_timeout_s"):
        need(getattr(p, k) > 0, k, "must be > 0")
    for k in ("entry_reprices", "exit_reprices"):
        need(getattr(p, k) >= 0, k, "must be >= 0")
    need(p.entry_order in ORDER_MODES, "entry_order", f"must be one of {', '.join(ORDER_MODES)}")
    need(p.exit_order in ORDER_MODES, "exit_order", f"must be one of {', '.join(ORDER_MODES)}")
    need(0 < p.urgent_slippage_pct < 1, "urgent_slippage_pct", "must be in (0, 1)")
    kinds = [k.strip() for k in p.stops.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in STOP_KINDS]
    need(not unknown, "stops", f"unknown stop kind(s) {unknown}; choose from {', '.join(STOP_KINDS)}")
    try:
        need(parse_interval(p.obs_interval) > 0, "obs_interval", "must be > 0")
    except ValueError as e:
        bad.append(f"accumulation.obs_interval = {p.obs_interval!r}: {e}")
    need(p.atr_period >= 1 and p.atr_regime_period >= 1, "atr_period", "periods must be >= 1")
    need(0 < p.atr_mult_low <= p.atr_mult_high, "atr_mult_low", "need 0 < atr_mult_low <= atr_mult_high")
    need(p.atr_regime_ratio > 0, "atr_regime_ratio", "must be > 0")
    need(0 < p.trail_pct < 1, "trail_pct", "must be in (0, 1)")
    need(0 <= p.time_floor_pct <= p.time_max_loss_pct < 1, "time_max_loss_pct",
         "need 0 <= time_floor_pct <= time_max_loss_pct < 1")
    need(p.time_full_s > p.time_start_s, "time_full_s", "must be above time_start_s")
    need(p.support_ticks >= 1, "support_ticks", "must be >= 1")
    need(0 < p.support_min_share <= 1, "support_min_share", "must be in (0, 1]")
    need(p.support_buffer_ticks >= 0, "support_buffer_ticks", "must be >= 0")
    need(0 < p.micro_flow <= 1, "micro_flow", "must be in (0, 1]")
    need(p.micro_window >= 1, "micro_window", "must be >= 1")
    need(p.micro_spread_mult > 1, "micro_spread_mult", "must be > 1")
    need(0 < p.micro_depth_frac < 1, "micro_depth_frac", "must be in (0, 1)")
    need(0 < p.micro_alpha <= 1, "micro_alpha", "must be in (0, 1]")
    if p.flatten_at_et:
        try:
            _hhmm(p.flatten_at_et)
        except ValueError:
            bad.append(f"accumulation.flatten_at_et = {p.flatten_at_et!r}: expected HH:MM (ET) or ''")
    return bad


def _hhmm(s: str) -> int:
    """'HH:MM' -> ns after midnight."""
    h, m = s.split(":")
    hh, mm = int(h), int(m)
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ValueError(s)
    return (hh * 3600 + mm * 60) * NS


def tick_size(price: float) -> float:
    """Minimum quote increment (Reg NMS 612): $0.01 at or above $1, $0.0001 below."""
    return 0.01 if price >= 1.0 else 0.0001


def round_to_tick(price: float, up: bool) -> float:
    t = tick_size(price)
    n = price / t
    n = math.ceil(n - 1e-9) if up else math.floor(n + 1e-9)
    return round(n * t, 4)


class BarAtr:
    """An :class:`AtrStop` fed with bars of ``bar_s`` seconds built from the observations (the ATR
    of 1 s observations of a penny stock is mostly zero with one-tick jumps — far too tight).  The
    Python reference of the bank's ATR rule."""

    def __init__(self, atr: AtrStop, bar_s: float) -> None:
        self.atr = atr
        self.bar_ns = int(bar_s * NS)
        self._t0: int | None = None
        self._hi = -math.inf
        self._lo = math.inf
        self._close = 0.0

    def update(self, o: Obs) -> None:
        if self._t0 is None:
            self._t0 = o.ts
        self._hi = max(self._hi, o.high if o.high is not None else o.price, o.price)
        self._lo = min(self._lo, o.low if o.low is not None else o.price, o.price)
        self._close = o.price
        if self.bar_ns == 0 or o.ts - self._t0 >= self.bar_ns:
            self.atr.update(Obs(ts=o.ts, price=self._close, high=self._hi, low=self._lo))
            self._t0, self._hi, self._lo = o.ts, -math.inf, math.inf

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        return self.atr.stop(entry, peak, held_ns)


@dataclass
class _Order:
    oid: int
    purpose: str  # entry | exit
    qty: int
    level: int  # entry: reprices used; exit: 0.. exit_reprices (mode), then urgent, then market
    filled: int = 0
    cancelling: str = ""  # why we cancelled it: timeout | exit | escalate


@dataclass
class _Sym:
    s: int  # symbol id
    tranche: int = 0  # shares per tranche (fixed when the position opens)
    target: int = 0  # shares wanted
    confirmed: set = field(default_factory=set)
    orders: dict = field(default_factory=dict)  # oid -> _Order
    exiting: str = ""  # exit reason while closing
    urgent: bool = False  # the exit is a stop: no passive exit orders
    cooldown_until: int = 0
    since: int = 0  # first signal of the symbol
    cost: float = 0.0  # dollars paid for the open position (average entry = cost / position)


class Accumulation(Strategy):
    """See the module docstring; parameters: :class:`AccumulationParams`."""

    name = "accumulation"
    Params = AccumulationParams

    def __init__(self, params=None) -> None:
        super().__init__(params)
        bad = validate(self.p)
        if bad:
            raise ValueError("; ".join(bad))
        self.stop_kinds = tuple(k.strip() for k in self.p.stops.split(",") if k.strip())

    # ------------------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.sym: dict[int, _Sym] = {}
        self.only = ctx.symbol_id(self.p.symbol) if self.p.symbol else None
        self.exits: list[dict] = []  # one row per exit decision: ts, symbol, reason
        self.entries: list[dict] = []  # one row per entry / scale-in decision
        self.bank = self.make_bank(ctx.n_symbols)
        self._osym: dict[int, int] = {}  # our working order id -> its symbol
        self._day = (0, 0, 0)  # ET day [start, end) of ``now`` and its flatten time (ns)
        self._fired: deque[list[tuple[int, str, float]]] = deque()  # observed, not yet visible
        ctx.observe_every("obs", self.p.obs_interval, self._observe_all)
        self._schedule_eod(ctx)
        if self.p.gate_signals:
            ctx.gate_signals({SIG_COMPOSITE: self.p.entry_score}, {SIG_COMPOSITE: self.p.require_trigger})
            if self.only is not None:
                for s in range(ctx.n_symbols):
                    if s != self.only:
                        ctx.follow_signals(s, False)

    def _refollow(self, ctx: Context, s: int) -> None:
        """Follow every signal of ``s`` while one could change a decision: it is held or has an
        entry working or planned.  Otherwise on_signal acts only on a composite record that can
        open a position — exactly what the gate set in on_start delivers."""
        if not self.p.gate_signals:
            return
        st = self.sym.get(s)
        if st is not None:
            ctx.follow_signals(s, st.target > 0 or ctx.position(s) > 0 or self._working(st, "entry") > 0)

    def _past_flatten(self, now: int) -> bool:
        """At or after today's ``flatten_at_et``: no entries or scale-ins (they would be flattened
        at once, or held overnight when the day's flatten has already run)."""
        if not self.p.flatten_at_et:
            return False
        if not self._day[0] <= now < self._day[1]:
            import datetime as dt

            from quantedge.timeutil import et_midnight_ns, ns_to_et_date

            day = ns_to_et_date(now)
            self._day = (et_midnight_ns(day), et_midnight_ns(day + dt.timedelta(days=1)),
                         et_midnight_ns(day) + _hhmm(self.p.flatten_at_et))
        return now >= self._day[2]

    def _schedule_eod(self, ctx: Context) -> None:
        if not self.p.flatten_at_et:
            return
        from quantedge.timeutil import et_midnight_ns, ns_to_et_date

        day = ns_to_et_date(ctx.now)
        at = et_midnight_ns(day) + _hhmm(self.p.flatten_at_et)
        if at <= ctx.now:
            import datetime as dt

            at = et_midnight_ns(day + dt.timedelta(days=1)) + _hhmm(self.p.flatten_at_et)
        ctx.schedule("eod", at=at)

    def make_bank(self, n_symbols: int) -> StopBank:
        """The composed stop rules of every symbol, compiled (see :meth:`make_stops`)."""
        p = self.p
        return StopBank(
            n_symbols, self.stop_kinds, bar_ns=int(p.atr_bar_s * NS), period=p.atr_period,
            mult_low=p.atr_mult_low, mult_high=p.atr_mult_high, regime_period=p.atr_regime_period,
            regime_ratio=p.atr_regime_ratio, trail_pct=p.trail_pct, time_max_loss_pct=p.time_max_loss_pct,
            time_start_s=p.time_start_s, time_full_s=p.time_full_s, time_floor_pct=p.time_floor_pct,
            support_min_share=p.support_min_share, micro_flow=p.micro_flow, micro_window=p.micro_window,
            micro_spread_mult=p.micro_spread_mult, micro_depth_frac=p.micro_depth_frac,
            micro_alpha=p.micro_alpha, every_ns=parse_interval(p.obs_interval),
        )

    def make_stops(self, price: float) -> StopSet:
        """The composed stop rules for one symbol (ticks from its price) as Python objects: the
        reference the compiled bank is tested against, and the way to stop a single position."""
        p = self.p
        t = tick_size(price)
        rules = []
        for k in self.stop_kinds:
            if k == "atr":
                atr = AtrStop(p.atr_period, p.atr_mult_low, p.atr_mult_high, p.atr_regime_period,
                              p.atr_regime_ratio)
                rules.append(BarAtr(atr, p.atr_bar_s))
            elif k == "trailing":
                rules.append(TrailingStop(p.trail_pct))
            elif k == "time":
                rules.append(TimeStop(p.time_max_loss_pct, p.time_start_s, p.time_full_s, p.time_floor_pct))
            elif k == "support":
                rules.append(SupportStop(bucket=p.support_ticks * t, min_share=p.support_min_share,
                                         buffer=p.support_buffer_ticks * t))
            elif k == "micro":
                rules.append(MicroStop(p.micro_flow, p.micro_window, p.micro_spread_mult, p.micro_depth_frac,
                                       p.micro_alpha))
        return StopSet(*rules)

    def _watch(self, ctx: Context, s: int) -> _Sym | None:
        st = self.sym.get(s)
        if st is None:
            bid, ask = self._quote(ctx, s)
            ref = (bid + ask) / 2 if bid and ask else (bid or ask or self._last(ctx, s))
            if not ref or ref != ref:
                return None
            t = tick_size(ref)
            self.bank.arm(s, bucket=self.p.support_ticks * t, buffer=self.p.support_buffer_ticks * t)
            st = self.sym[s] = _Sym(s)
            st.since = ctx.now
        return st

    # ------------------------------------------------------------------------------------------
    # market reads
    def _quote(self, ctx: Context, s: int) -> tuple[float, float]:
        try:
            b = ctx.book(s, 1)
        except LookAheadError:
            return 0.0, 0.0
        bid = b["bid_px"][0] / ev.PRICE_SCALE if b.get("bid_px") else 0.0
        ask = b["ask_px"][0] / ev.PRICE_SCALE if b.get("ask_px") else 0.0
        if bid and ask and ask <= bid:  # locked / crossed: no usable midpoint
            return bid, 0.0
        return bid, ask

    def _last(self, ctx: Context, s: int) -> float:
        try:
            px = ctx.last_price(s)
        except LookAheadError:
            return 0.0
        return 0.0 if px != px else px

    # ------------------------------------------------------------------------------------------
    # callbacks
    def on_signal(self, ctx: Context, sig: np.void) -> None:
        s = int(sig["symbol"])
        if self.only is not None and s != self.only:
            return
        st = self._watch(ctx, s)
        if st is None:
            return
        self._on_signal(ctx, s, st, int(sig["signal"]), float(sig["score"]), bool(sig["triggered"]))
        self._refollow(ctx, s)

    def _on_signal(self, ctx: Context, s: int, st: _Sym, k: int, score: float, trig: bool) -> None:
        p = self.p
        if k == SIG_EXIT:
            if (trig or score >= p.exit_score) and (ctx.position(s) > 0 or self._working(st, "entry") > 0):
                self.exit(ctx, s, f"exit_signal {score:.2f}", urgent=False)
            return
        if st.target == 0 and (k != SIG_COMPOSITE or score < p.entry_score
                               or not (trig or not p.require_trigger)):
            return  # most records: a score to remember, no entry to open and none to scale
        if st.exiting or ctx.now < st.cooldown_until or self._exit_active(ctx, st):
            return
        if ctx.now - st.since < int(self.p.warmup_s * NS) or self._past_flatten(ctx.now):
            return
        if k == SIG_COMPOSITE:
            if st.target == 0 and score >= self.p.entry_score and (trig or not self.p.require_trigger):
                conf = self._confirmations(ctx, st)
                if len(conf) >= self.p.min_confirmations:
                    self._open(ctx, s, st, conf, score)
            elif st.target > 0:
                self._scale(ctx, s, st)
        elif st.target > 0:
            self._scale(ctx, s, st)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "obs":
            for s, label, _stop in self._fired.popleft():
                if ctx.position(s) > 0 and self.bank.entry(s):
                    self.exit(ctx, s, f"stop {label}", urgent=True)
                    self._refollow(ctx, s)
        elif name == "eod":
            for s in list(self.sym):
                if ctx.position(s) > 0 or self._working(self.sym[s], "entry"):
                    self.exit(ctx, s, "end_of_day", urgent=False)
                    self._refollow(ctx, s)
            self._schedule_eod(ctx)
        elif name.startswith("exit_retry:"):
            s = int(name.split(":", 1)[1])
            st = self.sym[s]
            if st.exiting and ctx.position(s) > 0:
                self._send_exit(ctx, s, st, self.p.exit_reprices + 2)
                self._refollow(ctx, s)
        elif name.startswith("timeout:"):
            oid = int(name.split(":", 1)[1])
            s = self._osym.get(oid)
            o = None if s is None else self.sym[s].orders.get(oid)
            if o is not None and not o.cancelling and ctx.order_status(oid) in ("pending", "active"):
                o.cancelling = "timeout"
                ctx.cancel(oid)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        st = self.sym.get(fill.symbol)
        if st is None:
            return
        o = st.orders.get(fill.order_id)
        if o is not None:
            o.filled += fill.qty
            if o.filled >= o.qty:
                del st.orders[fill.order_id]
                self._osym.pop(fill.order_id, None)
        pos = ctx.position(fill.symbol)
        if fill.side > 0:
            first = pos == fill.qty
            st.cost += fill.qty * fill.price_usd
            if first:
                self.bank.open(fill.symbol, fill.price_usd, fill.ts)
            elif pos > 0:
                self.bank.set_entry(fill.symbol, st.cost / pos)
            if st.exiting:  # an entry filled while its cancel was on the way: sell that too
                self._send_exit(ctx, fill.symbol, st, self.p.exit_reprices + 1 if st.urgent else 0)
        else:
            st.cost = st.cost * pos / (pos + fill.qty) if pos > 0 else 0.0
            if pos <= 0:
                self._reset(ctx, st)
        self._refollow(ctx, fill.symbol)

    def on_order(self, ctx: Context, order_id: int, status: str, reason: str) -> None:
        s = self._osym.pop(order_id, None)
        o = None if s is None else self.sym[s].orders.pop(order_id, None)
        if o is None:
            return  # not one of ours being worked (e.g. refused before it was recorded)
        st = self.sym[s]
        left = o.qty - o.filled
        pos = ctx.position(s)
        if o.purpose == "entry":
            if st.exiting:
                if pos <= 0 and not st.orders:
                    self._reset(ctx, st)  # the exit only had entry orders to cancel
            elif o.cancelling == "timeout" and o.level < self.p.entry_reprices and st.target > pos:
                self._send_entry(ctx, s, st, left, o.level + 1)  # re-peg to the current quote
            else:
                st.target = pos + self._working(st, "entry")  # give the tranche up
        elif pos > 0:
            level = o.level + 1
            if st.urgent:
                level = max(level, self.p.exit_reprices + 1)
            self._send_exit(ctx, s, st, level)
        self._refollow(ctx, s)

    def on_stop(self, ctx: Context) -> None:
        ctx.log(f"accumulation: {len(self.entries)} entry decisions, {len(self.exits)} exit decisions")

    # ------------------------------------------------------------------------------------------
    # decisions
    @staticmethod
    def _score(ctx: Context, st: _Sym, k: int) -> tuple[int, float, bool] | None:
        """The latest record of signal k for the symbol since it is watched: (time, score, triggered)."""
        x = ctx.last_signal(st.s, k)
        return None if x is None or x[0] < st.since else x

    def _confirmations(self, ctx: Context, st: _Sym) -> set[int]:
        win = int(self.p.confirm_window_s * NS)
        out = set()
        for k in CONFIRMING:
            x = self._score(ctx, st, k)
            if x is not None and x[1] >= self.p.confirm_score and ctx.now - x[0] <= win:
                out.add(k)
        return out

    def _exit_active(self, ctx: Context, st: _Sym) -> bool:
        x = self._score(ctx, st, SIG_EXIT)
        win = int(self.p.confirm_window_s * NS)
        return x is not None and x[1] >= self.p.exit_score and ctx.now - x[0] <= win

    def _open(self, ctx: Context, s: int, st: _Sym, conf: set[int], score: float) -> None:
        bid, ask = self._quote(ctx, s)
        ref = ask or bid or self._last(ctx, s)
        if not ref:
            return
        p = self.p
        full = min(p.max_position, int(p.max_notional / ref))
        st.tranche = (full // p.tranches) // p.lot * p.lot
        if st.tranche <= 0:
            ctx.log(f"{ctx.symbol_name(s)}: max position {full} below one lot of {p.lot}: no entry")
            return
        n = min(p.tranches, len(conf))
        st.target = n * st.tranche
        st.confirmed = set(conf)
        self.entries.append({"ts": ctx.now, "symbol": ctx.symbol_name(s), "kind": "entry", "composite": score,
                             "confirmations": sorted(SIGNAL_NAMES[k] for k in conf), "target": st.target})
        self._work_entry(ctx, s, st)

    def _scale(self, ctx: Context, s: int, st: _Sym) -> None:
        comp = self._score(ctx, st, SIG_COMPOSITE)
        if comp is None or comp[1] < self.p.hold_score:
            return
        new = self._confirmations(ctx, st) - st.confirmed
        if not new or st.target >= self.p.tranches * st.tranche:
            return
        st.confirmed |= new
        st.target = min(self.p.tranches * st.tranche, st.target + len(new) * st.tranche)
        self.entries.append({"ts": ctx.now, "symbol": ctx.symbol_name(s), "kind": "scale_in",
                             "composite": comp[1], "confirmations": sorted(SIGNAL_NAMES[k] for k in new),
                             "target": st.target})
        self._work_entry(ctx, s, st)

    def _work_entry(self, ctx: Context, s: int, st: _Sym) -> None:
        if self._working(st, "entry"):
            return  # one entry order at a time; the rest follows when it is done
        want = st.target - ctx.position(s)
        want = want // self.p.lot * self.p.lot
        if want > 0:
            self._send_entry(ctx, s, st, want, 0)

    def _send_entry(self, ctx: Context, s: int, st: _Sym, qty: int, level: int) -> None:
        p = self.p
        bid, ask = self._quote(ctx, s)
        tag = f"accumulation entry {len(st.confirmed)}/{p.tranches}"
        if p.entry_order == "market":
            oid = ctx.buy(s, qty, tag=tag)
        else:
            if not bid:
                return
            px = bid
            if ask and (ask - bid) <= p.cross_spread_pct * (ask + bid) / 2:
                px = ask  # narrow spread: take the offer, capped at it (never walk a thin book)
            elif p.entry_order == "mid" and ask:
                px = round_to_tick((bid + ask) / 2, up=False)
                if px >= ask:
                    px = bid
                px = max(px, bid)
            oid = ctx.buy(s, qty, type="limit", limit=px, tag=tag)
        if oid:
            st.orders[oid] = _Order(oid, "entry", qty, level)
            self._osym[oid] = s
            if p.entry_order != "market":
                ctx.schedule(f"timeout:{oid}", at=ctx.now + int(p.entry_timeout_s * NS))
        else:
            st.target = ctx.position(s) + self._working(st, "entry")

    def exit(self, ctx: Context, s: int, reason: str, urgent: bool) -> None:
        """Close the position of ``s`` (and drop the entry plan)."""
        st = self.sym[s]
        if st.exiting:
            if urgent and not st.urgent:
                st.exiting, st.urgent = reason, True
                self._cancel_all(ctx, st, "exit", "escalate")  # on_order resends at the urgent level
            return
        if ctx.position(s) <= 0 and not self._working(st, "entry"):
            return
        st.exiting, st.urgent = reason, urgent
        st.target = 0
        self.exits.append({"ts": ctx.now, "symbol": ctx.symbol_name(s), "reason": reason,
                           "position": ctx.position(s)})
        self._cancel_all(ctx, st, "entry", "exit")
        if ctx.position(s) > 0:
            self._send_exit(ctx, s, st, self.p.exit_reprices + 1 if urgent else 0)

    def _cancel_all(self, ctx: Context, st: _Sym, purpose: str, why: str) -> None:
        for o in list(st.orders.values()):
            if o.purpose == purpose and not o.cancelling:
                o.cancelling = why
                ctx.cancel(o.oid)

    def _send_exit(self, ctx: Context, s: int, st: _Sym, level: int) -> None:
        p = self.p
        qty = ctx.position(s) - self._working(st, "exit")
        if qty <= 0:
            return
        bid, ask = self._quote(ctx, s)
        tag = f"accumulation exit: {st.exiting}"
        mode = p.exit_order if level <= p.exit_reprices else "urgent"
        if level > p.exit_reprices + 1:
            mode = "market"
        if mode in ("mid", "bid") and not bid:
            mode = "market"
        if mode == "urgent" and not bid:
            mode = "market"
        if mode == "market":
            oid = ctx.sell(s, qty, tag=tag)
            timeout = 0.0
        elif mode == "urgent":
            floor = round_to_tick(bid * (1 - p.urgent_slippage_pct), up=False)
            oid = ctx.sell(s, qty, type="limit", limit=floor, tag=tag)
            timeout = p.urgent_timeout_s
        else:
            px = bid
            if mode == "mid" and ask:
                px = round_to_tick((bid + ask) / 2, up=True)
                if px <= bid:
                    px = ask
                px = min(px, ask)
            oid = ctx.sell(s, qty, type="limit", limit=px, tag=tag)
            timeout = p.exit_timeout_s
        if oid:
            st.orders[oid] = _Order(oid, "exit", qty, level)
            self._osym[oid] = s
            if timeout:
                ctx.schedule(f"timeout:{oid}", at=ctx.now + int(timeout * NS))
        elif mode != "market":
            self._send_exit(ctx, s, st, p.exit_reprices + 2)
        else:
            # refused (risk: the order rate): try again in a second, a position is never left behind
            ctx.schedule(f"exit_retry:{s}", at=ctx.now + NS)

    def _reset(self, ctx: Context, st: _Sym) -> None:
        st.target = 0
        st.confirmed = set()
        st.exiting, st.urgent = "", False
        st.cost = 0.0
        self.bank.set_entry(st.s, 0.0)  # price stops rest while flat; the rules keep learning the market
        st.cooldown_until = ctx.now + int(self.p.reentry_cooldown_s * NS)
        self._cancel_all(ctx, st, "entry", "exit")

    @staticmethod
    def _working(st: _Sym, purpose: str) -> int:
        return sum(o.qty - o.filled for o in st.orders.values() if o.purpose == purpose)

    # ------------------------------------------------------------------------------------------
    def _observe_all(self, ts: int, m: MarketArrays) -> bool:
        """Every armed symbol's stop rules observe its book and prints (compiled); the exits that
        fired for positions are acted on in ``on_timer("obs")``, when the observation is visible
        (returns False when none fired: the engine then skips that timer)."""
        fired = self.bank.observe(ts, m.lv, m.sd, m.last_px, m.tape)
        if fired:
            self._fired.append(fired)
        return bool(fired)


STOP_LABEL = {"BarAtr": "atr", "TrailingStop": "trailing", "TimeStop": "time", "SupportStop": "support"}

__all__ = ["Accumulation", "AccumulationParams", "validate", "tick_size", "round_to_tick", "BarAtr"]
