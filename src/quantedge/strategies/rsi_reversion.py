"""RSI mean reversion on bars built from ticks: a template to copy and edit.

Wilder's RSI over ``period`` bar closes.  Buy ``qty`` when RSI falls below ``oversold`` while flat;
sell when it rises above ``exit_level`` or after ``max_hold_bars`` bars.  An optional protective stop
(ATR multiple) is sent as a resting stop order right after the entry fills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantedge.backtest.orders import Fill
from quantedge.strategies.base import Context, Params, Strategy


@dataclass
class RsiParams(Params):
    period: int = 14
    oversold: float = 30.0
    exit_level: float = 55.0
    interval: str = "1min"
    qty: int = 100
    max_hold_bars: int = 60
    stop_atr_mult: float = 0.0  # 0 = no protective stop order
    symbol: str = ""


def wilder_rsi_update(state: dict, close: float, period: int) -> float | None:
    """One step of Wilder's RSI; state holds prev close, running avg gain/loss and count."""
    prev = state.get("prev")
    state["prev"] = close
    if prev is None:
        return None
    ch = close - prev
    g, l_ = max(ch, 0.0), max(-ch, 0.0)
    n = state.get("n", 0) + 1
    state["n"] = n
    if n <= period:
        state["g"] = state.get("g", 0.0) + g / period
        state["l"] = state.get("l", 0.0) + l_ / period
        if n < period:
            return None
    else:
        state["g"] = (state["g"] * (period - 1) + g) / period
        state["l"] = (state["l"] * (period - 1) + l_) / period
    if state["l"] == 0.0:
        return 100.0 if state["g"] > 0 else 50.0
    rs = state["g"] / state["l"]
    return 100.0 - 100.0 / (1.0 + rs)


class RsiReversion(Strategy):
    name = "rsi_reversion"
    Params = RsiParams

    def on_start(self, ctx: Context) -> None:
        p = self.p
        ctx.subscribe_bars(p.interval, [ctx.symbol_id(p.symbol)] if p.symbol else None)
        self.st: dict[int, dict] = {}
        self.held: dict[int, int] = {}
        self.atr: dict[int, float] = {}
        self.stop_oid: dict[int, int] = {}

    def on_bar(self, ctx: Context, bar: np.void) -> None:
        p = self.p
        s = int(bar["symbol"])
        close = bar["close"] / 10_000
        rng = (bar["high"] - bar["low"]) / 10_000
        self.atr[s] = rng if s not in self.atr else (self.atr[s] * (p.period - 1) + rng) / p.period
        rsi = wilder_rsi_update(self.st.setdefault(s, {}), close, p.period)
        pos = ctx.position(s)
        if pos > 0:
            self.held[s] = self.held.get(s, 0) + 1
        if rsi is None:
            return
        if pos == 0 and rsi < p.oversold and not ctx.open_orders(s):
            ctx.buy(s, p.qty, tag=f"rsi {rsi:.1f}")
            self.held[s] = 0
        elif pos > 0 and (rsi > p.exit_level or self.held.get(s, 0) >= p.max_hold_bars):
            if s in self.stop_oid:
                ctx.cancel(self.stop_oid.pop(s))
            ctx.sell(s, pos, tag=f"rsi exit {rsi:.1f}")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        p = self.p
        s = fill.symbol
        if fill.side > 0 and p.stop_atr_mult > 0 and self.atr.get(s, 0) > 0 and s not in self.stop_oid:
            stop = round(fill.price_usd - p.stop_atr_mult * self.atr[s], 4)
            if stop > 0:
                self.stop_oid[s] = ctx.sell(s, fill.qty, type="stop", stop=stop, tif="day", tag="atr stop")
        elif fill.side < 0 and ctx.position(s) == 0:
            oid = self.stop_oid.pop(s, None)
            if oid and oid in ctx.open_orders(s):
                ctx.cancel(oid)
