"""Pre-trade risk checks and the daily-loss kill switch; identical in backtest and live.

``check`` runs on every order before it leaves the strategy; a rejected order never reaches the
venue and the reason is logged.  The kill switch compares equity with the day's starting equity:
at ``max_daily_loss`` it cancels working orders, flattens every position with market orders and
halts the strategy (new orders are rejected until the next day / a manual reset).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from quantedge.backtest.fields import typed_fields
from quantedge.backtest.portfolio import Portfolio


@dataclass
class RiskLimits:
    max_position: int = 0  # shares per symbol, absolute (0 = no limit)
    max_notional: float = 0.0  # dollars per symbol position after the order (0 = no limit)
    max_gross: float = 0.0  # dollars, sum of |position| x price over symbols (0 = no limit)
    max_orders_per_sec: int = 0  # order rate over a rolling second (0 = no limit)
    max_daily_loss: float = 0.0  # dollars; kill switch (0 = off)

    @classmethod
    def from_dict(cls, d: dict | None) -> RiskLimits:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"risk: unknown field(s) {sorted(unknown)}")
        return cls(**typed_fields(cls, d, "risk"))


class RiskManager:
    def __init__(self, limits: RiskLimits) -> None:
        self.lim = limits
        self._sent: deque[int] = deque()
        self.rejections: dict[str, int] = {}
        self.kill_events: list[dict] = []

    def check(
        self, pf: Portfolio, symbol: int, side: int, qty: int, px_usd: float, now: int, pending_qty: int = 0
    ) -> str | None:
        """None when the order may go; otherwise the reason it may not."""
        lim = self.lim
        reason = None
        if pf.halted:
            reason = "halted by kill switch"
        elif qty <= 0:
            reason = "quantity must be positive"
        else:
            new_pos = pf.position(symbol) + pending_qty + side * qty
            if lim.max_position and abs(new_pos) > lim.max_position:
                reason = f"max_position {lim.max_position} (would be {new_pos})"
            elif lim.max_notional and abs(new_pos) * px_usd > lim.max_notional:
                reason = f"max_notional {lim.max_notional:g} (would be {abs(new_pos) * px_usd:.2f})"
            elif lim.max_gross:
                cur = abs(pf.position(symbol)) * px_usd
                gross = pf.gross_exposure() - cur + abs(new_pos) * px_usd
                if gross > lim.max_gross:
                    reason = f"max_gross {lim.max_gross:g} (would be {gross:.2f})"
            if reason is None and lim.max_orders_per_sec:
                while self._sent and self._sent[0] <= now - 1_000_000_000:
                    self._sent.popleft()
                if len(self._sent) >= lim.max_orders_per_sec:
                    reason = f"max_orders_per_sec {lim.max_orders_per_sec}"
        if reason:
            key = reason.split(" ")[0]
            self.rejections[key] = self.rejections.get(key, 0) + 1
            return reason
        if lim.max_orders_per_sec:
            self._sent.append(now)
        return None

    def breached(self, pf: Portfolio) -> bool:
        """True when the daily loss limit is hit (the caller flattens and halts)."""
        return (
            bool(self.lim.max_daily_loss)
            and not pf.halted
            and pf.equity - pf.day_start_equity <= -self.lim.max_daily_loss
        )
