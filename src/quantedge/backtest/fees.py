"""Fees: per-share commission with per-order min/max and volume tiers, SEC fee, FINRA TAF.

Computed per fill on the Python side (fills are sparse).  Per-order minimum and maximum apply to the
order's cumulative commission, so an order filled in pieces pays the same as one filled at once:
each fill is charged ``clamp(rate x cum_shares) - already_charged``.

Regulatory fees (rates configurable, defaults as of 2024):
* SEC Section 31 fee: sells only, ``sec_rate`` x notional ($27.80 per million).
* FINRA Trading Activity Fee: sells only, ``taf_per_share`` x shares, at most ``taf_max`` per trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quantedge.backtest.fields import typed_fields


@dataclass(frozen=True)
class Tier:
    """From ``min_monthly_shares`` traded in the month on, the per-share rate is ``per_share``."""

    min_monthly_shares: int
    per_share: float


@dataclass
class _TierFields:
    """The types of a tier's keys (for :func:`typed_fields`)."""

    min_monthly_shares: int = 0
    per_share: float = 0.0


@dataclass
class FeeSchedule:
    per_share: float = 0.0035  # commission, dollars per share (the tier-0 rate)
    min_per_order: float = 0.35
    max_pct_of_notional: float = 0.01  # per-order cap as a share of the order's notional (0 = none)
    max_per_order: float = 0.0  # absolute cap in dollars (0 = none)
    pct_of_notional: float = 0.0  # proportional commission (fraction of notional)
    fixed_per_order: float = 0.0  # flat ticket charge, charged with the order's first fill
    tiers: list[Tier] = field(default_factory=list)
    sec_rate: float = 27.80e-6  # dollars per dollar sold
    taf_per_share: float = 0.000166
    taf_max: float = 8.30

    @classmethod
    def from_dict(cls, d: dict) -> FeeSchedule:
        d = dict(d or {})
        tiers = []
        for i, t in enumerate(d.pop("tiers", None) or []):
            if not isinstance(t, dict) or set(t) != {"min_monthly_shares", "per_share"}:
                raise ValueError(f"fees.tiers[{i}]: expected {{min_monthly_shares: N, per_share: $}}, "
                                 f"got {t!r}")
            t = typed_fields(_TierFields, t, f"fees.tiers[{i}]")
            tiers.append(Tier(t["min_monthly_shares"], t["per_share"]))
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"fees: unknown field(s) {sorted(unknown)}")
        return cls(tiers=sorted(tiers, key=lambda t: t.min_monthly_shares), **typed_fields(cls, d, "fees"))

    def rate(self, monthly_shares: int) -> float:
        """Per-share commission rate for the month's volume so far (tiers by shares traded)."""
        r = self.per_share
        for t in self.tiers:
            if monthly_shares >= t.min_monthly_shares:
                r = t.per_share
        return r


class FeeCalculator:
    """Keeps per-order cumulative commission and monthly volume; returns the fee of each fill."""

    def __init__(self, schedule: FeeSchedule) -> None:
        self.s = schedule
        self._order: dict[int, tuple[int, float, float]] = {}  # oid -> (shares, notional, commission)
        self.monthly_shares = 0
        self._month = ""
        self.totals = {"commission": 0.0, "sec": 0.0, "taf": 0.0}

    def new_month(self, month: str) -> None:
        if month != self._month:
            self._month = month
            self.monthly_shares = 0

    def fill_fee(self, order_id: int, side: int, qty: int, price_usd: float) -> tuple[float, dict]:
        s = self.s
        shares, notional, charged = self._order.get(order_id, (0, 0.0, 0.0))
        shares += qty
        notional += qty * price_usd
        rate = self.rate_now()
        comm = rate * shares + s.pct_of_notional * notional
        comm = max(comm, s.min_per_order)
        if s.max_pct_of_notional > 0:
            comm = min(comm, s.max_pct_of_notional * notional)
        if s.max_per_order > 0:
            comm = min(comm, s.max_per_order)
        comm += s.fixed_per_order
        delta = comm - charged
        self._order[order_id] = (shares, notional, comm)
        self.monthly_shares += qty
        sec = s.sec_rate * qty * price_usd if side < 0 else 0.0
        taf = min(s.taf_per_share * qty, s.taf_max) if side < 0 else 0.0
        self.totals["commission"] += delta
        self.totals["sec"] += sec
        self.totals["taf"] += taf
        return delta + sec + taf, {"commission": delta, "sec": sec, "taf": taf}

    def rate_now(self) -> float:
        return self.s.rate(self.monthly_shares)
