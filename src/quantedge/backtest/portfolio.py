"""Cash, positions, realized/unrealized P&L and the equity curve; atomic save and resume.

Average-cost accounting: a fill that adds to a position moves its average price; a fill that
reduces it realizes ``(price - avg) x qty x sign``.  Fees are cash out and tracked separately, so
``equity = cash + sum(position x mark)`` and ``realized - fees`` is the closed P&L.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from quantedge.backtest.orders import Fill

_UNIT = 10_000  # marks in $0.0001


def _units(px: float) -> int | None:
    """A price in $0.0001 when it lies on that grid (to float precision), else None."""
    u = px * _UNIT
    r = round(u)
    return r if abs(u - r) < 1e-6 else None


@dataclass
class Position:
    qty: int = 0
    avg_px: float = 0.0  # dollars
    realized: float = 0.0


@dataclass
class Portfolio:
    cash: float = 100_000.0
    positions: dict[int, Position] = field(default_factory=dict)
    marks: dict[int, float] = field(default_factory=dict)  # last price per symbol, dollars
    fees: float = 0.0
    slippage: float = 0.0
    traded_notional: float = 0.0
    start_cash: float = 100_000.0
    day_start_equity: float = 100_000.0
    halted: bool = False

    def __post_init__(self) -> None:
        # Equity and exposure are read after every fill and print; with thousands of positions open a
        # sum over them each time dominates a run.  So both are kept as running sums, exact: marks are
        # prices on the $0.0001 grid, so sum(qty x mark) is an integer count of $0.0001
        # (``acc`` = [market value, gross exposure]).  A position marked off the grid is summed in
        # float each time (``_off``).  The open positions' quantities and marks are also arrays by
        # symbol (``pu[s] = (qty, mark in $0.0001)``, qty 0 when flat, mark -1 when off the grid) so
        # the engine's compiled pass can mark them at every print (backtest/marks_nb.py); for those
        # positions ``pu`` holds the mark, not ``marks`` (read it with ``mark_px``).
        self._open: dict[int, Position] = {}
        self._off: dict[int, Position] = {}
        self.pu = np.zeros((0, 2), np.int64)
        self.acc = np.zeros(2, np.int64)
        for k, p in self.positions.items():
            self._add(k, p)

    def reserve(self, n_symbols: int) -> None:
        """Room in the by-symbol arrays for symbol ids below n_symbols."""
        if n_symbols > self.pu.shape[0]:
            grown = np.zeros((max(n_symbols, 2 * self.pu.shape[0]), 2), np.int64)
            grown[: self.pu.shape[0]] = self.pu
            self.pu = grown

    def _add(self, s: int, p: Position) -> None:
        if not p.qty:
            return
        self._open[s] = p
        self.reserve(s + 1)
        u = _units(self.marks.get(s, p.avg_px))
        if u is None:
            self._off[s] = p
            self.pu[s] = (p.qty, -1)
        else:
            self.pu[s] = (p.qty, u)
            self.acc[0] += p.qty * u
            self.acc[1] += abs(p.qty) * u

    def _remove(self, s: int) -> None:
        p = self._open.pop(s, None)
        if p is None:
            return
        if self._off.pop(s, None) is None:
            u = int(self.pu[s, 1])
            self.acc[0] -= p.qty * u
            self.acc[1] -= abs(p.qty) * u
            self.marks[s] = u / _UNIT  # the mark the compiled pass may have moved
        self.pu[s] = (0, 0)

    def mark_px(self, s: int) -> float | None:
        """The position's mark in dollars (the last print, fill or bar close that marked it)."""
        if s in self._open and s not in self._off:
            return int(self.pu[s, 1]) / _UNIT
        return self.marks.get(s)

    def off_grid_value(self) -> float:
        """Market value of the positions marked off the $0.0001 grid (summed in float)."""
        return sum(p.qty * self.marks.get(k, p.avg_px) for k, p in self._off.items())

    def position(self, s: int) -> int:
        p = self.positions.get(s)
        return p.qty if p else 0

    def apply_fill(self, f: Fill) -> float:
        """Book a fill; returns the realized P&L of this fill (before fees)."""
        px = f.price_usd
        p = self.positions.setdefault(f.symbol, Position())
        self._remove(f.symbol)
        dq = f.side * f.qty
        realized = 0.0
        if p.qty == 0 or (p.qty > 0) == (dq > 0):
            new = p.qty + dq
            p.avg_px = (p.avg_px * abs(p.qty) + px * abs(dq)) / abs(new)
            p.qty = new
        else:
            close = min(abs(dq), abs(p.qty))
            sign = 1 if p.qty > 0 else -1
            realized = (px - p.avg_px) * close * sign
            p.realized += realized
            p.qty += dq
            if p.qty == 0:
                p.avg_px = 0.0
            elif (p.qty > 0) != (sign > 0):  # flipped through zero: the rest opens at this price
                p.avg_px = px
        self.cash -= dq * px + f.fee
        self.fees += f.fee
        self.slippage += f.slippage_usd
        self.traded_notional += f.qty * px
        self.marks[f.symbol] = px
        self._add(f.symbol, p)
        return realized

    def mark(self, s: int, px_usd: float) -> None:
        p = self._open.get(s)
        if p is None:
            self.marks[s] = px_usd
            return
        self._remove(s)
        self.marks[s] = px_usd
        self._add(s, p)

    def note_price(self, s: int, px_usd: float) -> None:
        """A price seen for s (a delivered print, a bar close): the mark of a flat symbol.  An open
        position is marked by the engine at every print (marks_nb.py), not by what a strategy
        happened to subscribe to."""
        if s not in self._open:
            self.marks[s] = px_usd

    def market_value(self, s: int | None = None) -> float:
        if s is not None:
            return self.position(s) * (self.mark_px(s) or 0.0)
        return int(self.acc[0]) / _UNIT + self.off_grid_value()

    def gross_exposure(self) -> float:
        off = sum(abs(p.qty) * self.marks.get(k, p.avg_px) for k, p in self._off.items())
        return int(self.acc[1]) / _UNIT + off

    @property
    def equity(self) -> float:
        return self.cash + self.market_value()

    def unrealized(self) -> float:
        out = 0.0
        for k, p in self._open.items():
            m = self.mark_px(k)
            out += ((p.avg_px if m is None else m) - p.avg_px) * p.qty
        return out

    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values())

    # --- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["positions"] = {str(k): asdict(v) for k, v in self.positions.items()}
        marks = {**self.marks, **{k: self.mark_px(k) for k in self._open}}
        d["marks"] = {str(k): v for k, v in marks.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Portfolio:
        d = dict(d)
        pos = {int(k): Position(**v) for k, v in d.pop("positions", {}).items()}
        marks = {int(k): float(v) for k, v in d.pop("marks", {}).items()}
        return cls(positions=pos, marks=marks, **d)

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write atomically (temp file, fsync, rename): a crash leaves the old or the new state."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w") as fh:
            json.dump({"portfolio": self.to_dict(), "extra": extra or {}}, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> tuple[Portfolio, dict]:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls.from_dict(d["portfolio"]), d.get("extra", {})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: cannot resume portfolio state: {e}") from e
