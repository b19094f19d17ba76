"""The simulated exchange (execution venue) around the compiled core in ``venue_nb``.

It owns the visible books (L3, L2 or pseudo-L2, chosen by the data), the order table and the fill
buffer.  The engine asks it to advance the replay to a time; strategies' orders reach it after the
order latency.  The same object fed live events is the paper-trading venue.

Fill models for market orders: ``book`` (walk the visible book; the realistic default),
``bar_close`` (fill at the close of the symbol's last closed bar: the assumption of bar-based
engines, used for parity checks) and ``last_trade`` (fill at the last lit print).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quantedge.backtest import venue_nb as nb
from quantedge.backtest.fields import typed_fields
from quantedge.backtest.marks_nb import new_marks
from quantedge.backtest.orders import (
    FL_LIQ,
    FL_MID2,
    FL_OID,
    FL_PX,
    FL_QTY,
    FL_REASON,
    FL_SIDE,
    FL_SYM,
    FL_TS,
    LIQ_MAKER,
    LIQ_TAKER,
    OD_FILLED,
    OD_ID,
    OD_LIMIT,
    OD_MID2,
    OD_QTY,
    OD_SIDE,
    OD_STATUS,
    OD_STOP,
    OD_SYM,
    OD_TIF,
    OD_TS_ARRIVE,
    OD_TS_SUBMIT,
    OD_TYPE,
    OT_LIMIT,
    OT_MARKET,
    OT_STOP,
    OT_STOP_LIMIT,
    R_BAR_CLOSE,
    R_LAST_TRADE,
    R_MARKET_WALK,
    REASON_NAMES,
    ST_ACTIVE,
    ST_CANCELLED,
    ST_EXPIRED,
    ST_FILLED,
    ST_PENDING,
    ST_REJECTED,
    TIF_DAY,
    TIF_IOC,
    Fill,
    OrderRequest,
    new_fill_buffer,
    new_order_table,
)
from quantedge.backtest.queue import QueueModel
from quantedge.backtest.stops_nb import new_tape
from quantedge.book.l2 import L2Book
from quantedge.book.l3 import L3Book, _bits
from quantedge.book.pseudo import PseudoBook
from quantedge.book.state import LevelBook

BOOK_MODES = {"pseudo": nb.MODE_PSEUDO, "l2": nb.MODE_L2, "l3": nb.MODE_L3}
# a venue run without an engine marks nothing: no position rows, so no print is ever queued
_NO_MARKS = (*new_marks(0, 1), np.zeros((0, 2), np.int64), np.zeros(2, np.int64))


@dataclass
class ExecutionConfig:
    book: str = "l3"  # l3 (market-by-order), l2 (market-by-price) or pseudo (L1 + trades)
    fill_model: str = "book"  # book | bar_close | last_trade
    queue: QueueModel = field(default_factory=QueueModel)
    impact_bps: float = 0.0  # temporary impact: bps at full consumption of the walked depth
    unknown_touch_size: int = 100  # shares assumed at a best level whose size is unknown (L1 without sizes)
    odd_lots: str = "allow"  # allow | reject | round_down (to whole 100-share lots)
    book_capacity: int = 64
    max_orders: int = 1 << 14  # order rows (all orders ever sent in the run)
    max_book_orders: int = 1 << 18  # L3 order-table size (live replayed orders)

    @classmethod
    def from_dict(cls, d: dict | None) -> ExecutionConfig:
        d = dict(d or {})
        q = d.pop("queue", None)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"execution: unknown field(s) {sorted(unknown)}")
        cfg = cls(**typed_fields(cls, d, "execution"))
        if q is not None:
            cfg.queue = QueueModel(**q) if isinstance(q, dict) else QueueModel(str(q))
        if cfg.book not in BOOK_MODES:
            raise ValueError(f"execution.book must be one of {sorted(BOOK_MODES)}, got {cfg.book!r}")
        if cfg.fill_model not in ("book", "bar_close", "last_trade"):
            raise ValueError(
                f"execution.fill_model must be book, bar_close or last_trade, got {cfg.fill_model!r}"
            )
        if cfg.odd_lots not in ("allow", "reject", "round_down"):
            raise ValueError(f"execution.odd_lots must be allow, reject or round_down, got {cfg.odd_lots!r}")
        _ = cfg.queue.code
        return cfg


class SimVenue:
    """Books + order table + matching.  Order ids are the row numbers + 1."""

    def __init__(self, n_symbols: int, cfg: ExecutionConfig | None = None) -> None:
        self.cfg = cfg or ExecutionConfig()
        self.mode = BOOK_MODES[self.cfg.book]
        cap = self.cfg.book_capacity
        if self.mode == nb.MODE_L3:
            # the replay starts mid-stream (a book already populated, feeds that carry only the top N
            # levels): no level is fully known, so levels a later add or execution proves gone are
            # evicted instead of being filled against (book/l3.py, "Stale levels")
            self.book: LevelBook = L3Book.allocate(
                n_symbols, capacity=cap, max_orders=self.cfg.max_book_orders, known_from_start=False
            )
            self.ot, self.otn = self.book.ot, self.book.otn
        else:
            self.book = (L2Book if self.mode == nb.MODE_L2 else PseudoBook).allocate(n_symbols, capacity=cap)
            self.ot, self.otn = np.zeros((16, 5), np.int64), np.zeros(2, np.int64)
        self.bits = _bits(self.ot.shape[0])
        self.n_symbols = n_symbols
        self.od = new_order_table(self.cfg.max_orders)
        self.n_od = 0
        self.fl = new_fill_buffer(1 << 14)
        self.nfl = np.zeros(1, np.int64)
        self.has_orders = np.zeros(n_symbols, np.int64)
        self.sub_mask = np.zeros(n_symbols, np.int64)
        self.last_px = np.zeros(n_symbols, np.int64)
        self.tape = new_tape(n_symbols)  # prints since an observer last read them (stops_nb)
        self.bar_close = np.zeros(n_symbols, np.int64)  # set by the engine as bars close
        self.counters = np.zeros(2, np.int64)
        self.tags: dict[int, str] = {}
        self.reject_reasons: dict[int, str] = {}

    # --- replay ---------------------------------------------------------------------------------
    def advance(
        self, events: np.ndarray, i0: int, t_stop: int, marks: tuple | None = None
    ) -> tuple[int, int]:
        """Apply events from i0 up to t_stop (inclusive); see venue_nb.run_until for the stops.

        ``marks`` = (ring, mi, mf, pu, acc): the engine's position marks (backtest/marks_nb.py);
        without them no position is marked."""
        if marks is None:
            marks = _NO_MARKS
        i, why = nb.run_until(
            events,
            i0,
            t_stop,
            self.mode,
            self.book.lv,
            self.book.sd,
            self.book.bk,
            self.ot,
            self.otn,
            self.bits,
            self.od,
            self.n_od,
            self.has_orders,
            self.sub_mask,
            self.cfg.queue.code,
            float(self.cfg.queue.n),
            float(self.cfg.impact_bps),
            self.cfg.unknown_touch_size,
            self.fl,
            self.nfl,
            self.last_px,
            self.counters,
            self.tape,
            *marks,
        )
        return int(i), int(why)

    # --- orders ---------------------------------------------------------------------------------
    def new_order(self, req: OrderRequest, ts_submit: int, ts_arrive: int) -> int:
        """Register an order in flight (status pending); returns its id."""
        if self.n_od >= self.od.shape[0]:
            grown = new_order_table(self.od.shape[0] * 2)
            grown[: self.n_od] = self.od[: self.n_od]
            self.od = grown
        j = self.n_od
        self.n_od += 1
        r = self.od[j]
        r[:] = 0
        r[OD_ID] = j + 1
        r[OD_SYM] = req.symbol
        r[OD_SIDE] = req.side
        r[OD_TYPE] = req.type
        r[OD_TIF] = req.tif
        r[OD_QTY] = req.qty
        r[OD_LIMIT] = req.limit
        r[OD_STOP] = req.stop
        r[OD_STATUS] = ST_PENDING
        r[OD_TS_SUBMIT] = ts_submit
        r[OD_TS_ARRIVE] = ts_arrive
        if req.tag:
            self.tags[j + 1] = req.tag
        return j + 1

    def reject(self, oid: int, reason: str) -> None:
        self.od[oid - 1, OD_STATUS] = ST_REJECTED
        self.reject_reasons[oid] = reason

    def arrive(self, oid: int, ts: int) -> None:
        """The order reaches the venue now: execute the marketable part, rest or arm the rest."""
        j = oid - 1
        r = self.od[j]
        if r[OD_STATUS] != ST_PENDING:
            return
        s = int(r[OD_SYM])
        qty = int(r[OD_QTY])
        if qty % 100:
            if self.cfg.odd_lots == "reject":
                self.reject(oid, "odd lot")
                return
            if self.cfg.odd_lots == "round_down":
                qty -= qty % 100
                if qty <= 0:
                    self.reject(oid, "odd lot rounds to zero")
                    return
                r[OD_QTY] = qty
        typ = int(r[OD_TYPE])
        if typ == OT_MARKET:
            self._market(j, ts)
            return
        got = nb.arrive(
            self.book.lv,
            self.book.sd,
            self.od,
            j,
            ts,
            float(self.cfg.impact_bps),
            self.cfg.unknown_touch_size,
            self.fl,
            self.nfl,
        )
        if r[OD_STATUS] == ST_ACTIVE:
            if r[OD_TIF] == TIF_IOC and typ in (OT_LIMIT,):
                r[OD_STATUS] = ST_CANCELLED
            else:
                self.has_orders[s] += 1
        del got

    def _market(self, j: int, ts: int) -> None:
        r = self.od[j]
        s = int(r[OD_SYM])
        r[OD_MID2] = nb.mid2(self.book.lv, self.book.sd, s)
        fm = self.cfg.fill_model
        if fm == "book":
            got = nb.walk(
                self.book.lv,
                self.book.sd,
                s,
                int(r[OD_SIDE]),
                int(r[OD_QTY]),
                0,
                int(r[OD_ID]),
                ts,
                R_MARKET_WALK,
                float(self.cfg.impact_bps),
                self.cfg.unknown_touch_size,
                self.fl,
                self.nfl,
            )
        else:
            px = int(self.bar_close[s] if fm == "bar_close" else self.last_px[s])
            got = 0
            if px > 0:
                nb.emit(
                    self.fl,
                    self.nfl,
                    int(r[OD_ID]),
                    s,
                    int(r[OD_SIDE]),
                    int(r[OD_QTY]),
                    px,
                    ts,
                    R_BAR_CLOSE if fm == "bar_close" else R_LAST_TRADE,
                    LIQ_TAKER,
                    int(r[OD_MID2]),
                )
                got = int(r[OD_QTY])
        r[OD_FILLED] += got
        if r[OD_FILLED] >= r[OD_QTY]:
            r[OD_STATUS] = ST_FILLED
        else:
            r[OD_STATUS] = ST_CANCELLED
            self.reject_reasons[int(r[OD_ID])] = "no visible liquidity for the rest"

    def cancel(self, oid: int) -> bool:
        """Cancel at the venue (called when the cancel request arrives); False if nothing to cancel."""
        r = self.od[oid - 1]
        st = r[OD_STATUS]
        if st == ST_ACTIVE:
            self.has_orders[int(r[OD_SYM])] -= 1
            r[OD_STATUS] = ST_CANCELLED
            return True
        if st == ST_PENDING:
            r[OD_STATUS] = ST_CANCELLED
            return True
        return False

    def expire_day_orders(self) -> list[int]:
        """End of session: DAY orders still working expire."""
        out = []
        for j in range(self.n_od):
            r = self.od[j]
            if r[OD_TIF] == TIF_DAY and r[OD_STATUS] in (ST_ACTIVE, ST_PENDING):
                if r[OD_STATUS] == ST_ACTIVE:
                    self.has_orders[int(r[OD_SYM])] -= 1
                r[OD_STATUS] = ST_EXPIRED
                out.append(j + 1)
        return out

    def open_orders(self, symbol: int | None = None) -> list[int]:
        st = self.od[: self.n_od, OD_STATUS]
        m = (st == ST_ACTIVE) | (st == ST_PENDING)
        if symbol is not None:
            m &= self.od[: self.n_od, OD_SYM] == symbol
        return [int(x) for x in self.od[: self.n_od, OD_ID][m]]

    def order(self, oid: int) -> dict:
        r = self.od[oid - 1]
        return {
            "id": oid,
            "symbol": int(r[OD_SYM]),
            "side": int(r[OD_SIDE]),
            "type": int(r[OD_TYPE]),
            "qty": int(r[OD_QTY]),
            "filled": int(r[OD_FILLED]),
            "limit": int(r[OD_LIMIT]),
            "stop": int(r[OD_STOP]),
            "status": int(r[OD_STATUS]),
            "tag": self.tags.get(oid, ""),
        }

    def drain_fills(self) -> list[Fill]:
        """Fill rows written since the last drain, as records (fees are added by the engine)."""
        k = int(self.nfl[0])
        out = []
        for i in range(k):
            f = self.fl[i]
            m2 = int(f[FL_MID2])
            oid = int(f[FL_OID])
            out.append(
                Fill(
                    order_id=oid,
                    symbol=int(f[FL_SYM]),
                    side=int(f[FL_SIDE]),
                    qty=int(f[FL_QTY]),
                    price=int(f[FL_PX]),
                    ts=int(f[FL_TS]),
                    reason=REASON_NAMES[int(f[FL_REASON])],
                    liquidity="maker" if f[FL_LIQ] == LIQ_MAKER else "taker",
                    arrival_mid=m2 / 20_000 if m2 > 0 else float("nan"),
                    tag=self.tags.get(oid, ""),
                )
            )
        self.nfl[0] = 0
        return out

    def status(self, oid: int) -> int:
        return int(self.od[oid - 1, OD_STATUS])

    def top(self, s: int, n_levels: int = 5) -> dict:
        """Top n levels of symbol s as plain lists (prices $0.0001)."""
        lv, sd = self.book.lv, self.book.sd
        out = {}
        for si, name in ((0, "bid"), (1, "ask")):
            k = min(int(sd[s, si, 0]), n_levels)
            out[name + "_px"] = [int(x) for x in lv[s, si, :k, 0]]
            out[name + "_sz"] = [int(x) for x in lv[s, si, :k, 1]]
        return out


STATUS_FINAL = (ST_FILLED, ST_CANCELLED, ST_REJECTED, ST_EXPIRED)
__all__ = ["SimVenue", "ExecutionConfig", "BOOK_MODES", "STATUS_FINAL", "OT_STOP", "OT_STOP_LIMIT", "TIF_DAY"]
