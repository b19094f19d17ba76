"""SMA crossover on bars built from ticks: a template to copy and edit.

Long-only: buy ``qty`` when the fast SMA of closes crosses above the slow one while flat, sell
the whole position when it crosses below.  The averages are kept as exact integer sums of $0.0001
prices, so a cross is never an artefact of floating-point noise.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from quantedge.strategies.base import Context, Params, Strategy


@dataclass
class SmaCrossParams(Params):
    fast: int = 10
    slow: int = 30
    interval: str = "1min"
    qty: int = 100
    symbol: str = ""  # empty: every symbol with bars
    order_type: str = "market"


class SmaCross(Strategy):
    name = "sma_cross"
    Params = SmaCrossParams

    def on_start(self, ctx: Context) -> None:
        p = self.p
        if not 0 < p.fast < p.slow:
            raise ValueError(f"sma_cross: need 0 < fast < slow, got fast={p.fast} slow={p.slow}")
        syms = [ctx.symbol_id(p.symbol)] if p.symbol else None
        ctx.subscribe_bars(p.interval, syms)
        self.win: dict[int, deque] = {}
        self.sums: dict[int, list[int]] = {}
        self.prev: dict[int, int] = {}  # sign of fast - slow at the previous bar

    def on_bar(self, ctx: Context, bar: np.void) -> None:
        p = self.p
        s = int(bar["symbol"])
        w = self.win.setdefault(s, deque(maxlen=p.slow))
        sums = self.sums.setdefault(s, [0, 0])
        c = int(bar["close"])
        if len(w) == p.slow:
            sums[1] -= w[0]
        if len(w) >= p.fast:
            sums[0] -= w[-p.fast]
        w.append(c)
        sums[0] += c
        sums[1] += c
        if len(w) < p.slow:
            return
        diff = sums[0] * p.slow - sums[1] * p.fast  # sign of fast SMA - slow SMA, exactly
        sign = (diff > 0) - (diff < 0)
        prev = self.prev.get(s)
        self.prev[s] = sign
        if prev is None:
            return
        pos = ctx.position(s)
        if sign > 0 and prev <= 0 and pos == 0:
            ctx.buy(
                s,
                p.qty,
                type=p.order_type,
                tag="sma_cross_up",
                **({"limit": c / 10_000} if p.order_type == "limit" else {}),
            )
        elif sign < 0 and prev >= 0 and pos > 0:
            ctx.sell(s, pos, tag="sma_cross_down")
