"""Stops, composable per strategy: each rule proposes a stop price or an immediate exit.

A :class:`StopSet` combines rules for one long position: the effective stop is the highest
proposed price (the tightest), and any rule may force an exit (microstructure alarms).  Rules are
fed sparse observations the strategy already has (closed bars, its book reads, prints it
subscribed to), so they run identically in backtest and live.

Rules:
* ``AtrStop`` — entry/peak minus k x ATR, with k switched by volatility regime (ATR over its
  long average above ``regime_ratio`` uses ``mult_high``).
* ``TrailingStop`` — highest price since entry minus a fraction.
* ``TimeStop`` — the allowed loss shrinks linearly with holding time after ``start_s``.
* ``SupportStop`` — just below the highest support level under the price, where support levels
  are price clusters that absorbed heavy selling (large volume printed at the bid without the
  price falling through).
* ``MicroStop`` — exit on order-flow reversal (signed volume share below ``-flow`` with the bid
  below the bid before the flow window), spread blow-out (spread > ``spread_mult`` x its average,
  the bid likewise below) or bid-depth collapse (bid depth < ``depth_frac`` x its average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Obs:
    """One observation of the market for a symbol (dollars, shares, ns)."""

    ts: int
    price: float
    high: float | None = None
    low: float | None = None
    bid: float | None = None
    ask: float | None = None
    bid_depth: float | None = None
    signed_volume: float = 0.0  # buyer-initiated minus seller-initiated shares since the last obs
    volume: float = 0.0
    at_bid_volume: float = 0.0  # shares printed at/below the bid since the last obs


@dataclass
class AtrStop:
    period: int = 14
    mult_low: float = 2.0
    mult_high: float = 3.5
    regime_period: int = 100
    regime_ratio: float = 1.5
    atr: float = 0.0
    atr_long: float = 0.0
    _prev_close: float | None = None

    def update(self, o: Obs) -> None:
        hi, lo = o.high if o.high is not None else o.price, o.low if o.low is not None else o.price
        tr = (
            hi - lo
            if self._prev_close is None
            else max(hi - lo, abs(hi - self._prev_close), abs(lo - self._prev_close))
        )
        self._prev_close = o.price
        self.atr = tr if self.atr == 0 else self.atr + (tr - self.atr) / self.period
        self.atr_long = (
            tr if self.atr_long == 0 else self.atr_long + (tr - self.atr_long) / self.regime_period
        )

    @property
    def high_vol(self) -> bool:
        return self.atr_long > 0 and self.atr / self.atr_long > self.regime_ratio

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        k = self.mult_high if self.high_vol else self.mult_low
        return peak - k * self.atr if self.atr > 0 else -math.inf


@dataclass
class TrailingStop:
    pct: float = 0.03

    def update(self, o: Obs) -> None:
        pass

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        return peak * (1 - self.pct)


@dataclass
class TimeStop:
    max_loss_pct: float = 0.05
    start_s: float = 600.0
    full_s: float = 3600.0  # at this holding time the stop reaches the entry price
    floor_pct: float = 0.0

    def update(self, o: Obs) -> None:
        pass

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        held = held_ns / 1e9
        if held <= self.start_s:
            frac = 1.0
        else:
            frac = max(0.0, 1.0 - (held - self.start_s) / max(self.full_s - self.start_s, 1e-9))
        loss = self.floor_pct + (self.max_loss_pct - self.floor_pct) * frac
        return entry * (1 - loss)


@dataclass
class SupportStop:
    bucket: float = 0.01  # price bucket for clustering (dollars)
    min_share: float = 0.15  # a level is support when it holds this share of at-bid volume
    buffer: float = 0.01  # stop this far below the level
    vol: dict[float, float] = field(default_factory=dict)

    def update(self, o: Obs) -> None:
        if o.at_bid_volume > 0 and o.bid:
            k = round(math.floor(o.bid / self.bucket + 1e-9) * self.bucket, 6)
            self.vol[k] = self.vol.get(k, 0.0) + o.at_bid_volume
        self._price = o.price

    def levels(self) -> list[float]:
        tot = sum(self.vol.values())
        return sorted(k for k, v in self.vol.items() if tot > 0 and v / tot >= self.min_share)

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        # levels under the position's peak, not under the current price: a price that fell through
        # the support must still see it (else the stop would vanish exactly when it is hit)
        px = peak if peak > 0 else getattr(self, "_price", entry)
        below = [k for k in self.levels() if k < px]
        return below[-1] - self.buffer if below else -math.inf


@dataclass
class MicroStop:
    """Order-flow reversal: sellers dominate the window's prints *and* the bid gave way (it is below
    the bid before the window); selling into a bid that holds is the absorption an accumulation
    entry bought, not a reason to leave.  Spread blow-out likewise only with the bid giving way (a
    spread that widens because buyers lift the offers is the move, not flight).  Bid-depth collapse
    as named (bids pulled lead the price).  Until ``window`` + 1 observations exist the reference
    bid is the oldest one seen; with no bid at the reference (or now) nothing counts as held."""

    flow: float = 0.6  # exit when signed volume / volume over the window < -flow and the bid fell
    window: int = 5  # observations in the flow window
    spread_mult: float = 3.0
    depth_frac: float = 0.3
    alpha: float = 0.05  # EMA weight of the spread / depth averages
    _flow: list = field(default_factory=list)
    spread_avg: float = 0.0
    depth_avg: float = 0.0
    reason: str = ""

    def update(self, o: Obs) -> None:
        # the window's flow plus the observation before it: the bid the selling started from
        self._flow.append((o.signed_volume, o.volume, o.bid or 0.0))
        del self._flow[: -(self.window + 1)]
        self.reason = ""
        win = self._flow[-self.window :]
        sv, v = sum(x[0] for x in win), sum(x[1] for x in win)
        ref = self._flow[0][2]  # 0: no bid then, so nothing to have held
        held = bool(o.bid) and ref > 0 and o.bid >= ref
        if len(win) >= self.window and v > 0 and sv / v < -self.flow and not held:
            self.reason = "order_flow_reversal"
        if o.bid and o.ask and o.ask > o.bid:
            sp = o.ask - o.bid
            if self.spread_avg > 0 and sp > self.spread_mult * self.spread_avg and not held:
                self.reason = self.reason or "spread_blowout"
            self.spread_avg = (
                sp if self.spread_avg == 0 else self.spread_avg + self.alpha * (sp - self.spread_avg)
            )
        if o.bid_depth is not None:
            if self.depth_avg > 0 and o.bid_depth < self.depth_frac * self.depth_avg:
                self.reason = self.reason or "bid_depth_collapse"
            d = o.bid_depth
            self.depth_avg = d if self.depth_avg == 0 else self.depth_avg + self.alpha * (d - self.depth_avg)

    def stop(self, entry: float, peak: float, held_ns: int) -> float:
        return math.inf if self.reason else -math.inf


class StopSet:
    """Rules for one long position: tightest stop wins; a micro alarm exits at once."""

    def __init__(self, *rules) -> None:
        self.rules = list(rules)
        self.entry = self.peak = 0.0
        self.entry_ts = 0

    def open(self, entry: float, ts: int) -> None:
        self.entry, self.peak, self.entry_ts = entry, entry, ts

    def update(self, o: Obs) -> tuple[float, str | None]:
        """Feed an observation; returns (stop price, exit reason or None)."""
        for r in self.rules:
            r.update(o)
        self.peak = max(self.peak, o.price)
        best, who = -math.inf, None
        for r in self.rules:
            s = r.stop(self.entry, self.peak, o.ts - self.entry_ts)
            if s > best:
                best, who = s, r
        if best == math.inf:
            return best, getattr(who, "reason", type(who).__name__)
        if self.entry and o.price <= best:
            return best, type(who).__name__
        return best, None
