"""Order and fill tables: plain int64 arrays so the compiled venue can match without Python.

An order is one row of ``od`` (columns ``OD_*``); a fill is one row of ``fl`` (``FL_*``).  Prices are
$0.0001 fixed point like every event.  The Python side only ever reads these rows to build the
``Fill`` records strategies and reports see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# order table columns
OD_ID = 0
OD_SYM = 1
OD_SIDE = 2  # +1 buy, -1 sell
OD_TYPE = 3
OD_TIF = 4
OD_QTY = 5
OD_FILLED = 6
OD_LIMIT = 7
OD_STOP = 8
OD_STATUS = 9
OD_AHEAD = 10  # estimated shares ahead of us in the queue at our price
OD_LVL = 11  # visible size at our price when last looked at
OD_TRADED = 12  # shares traded at our price not yet netted against a depth decrease
OD_TS_SUBMIT = 13
OD_TS_ARRIVE = 14
OD_TRIGGERED = 15  # stop orders: 1 once the stop price traded
OD_MID2 = 16  # 2 x mid when the order reached the venue (0 = a side was empty)
OD_NCOL = 17

# order types
OT_MARKET = 1
OT_LIMIT = 2
OT_STOP = 3
OT_STOP_LIMIT = 4
ORDER_TYPES = {"market": OT_MARKET, "limit": OT_LIMIT, "stop": OT_STOP, "stop_limit": OT_STOP_LIMIT}

# time in force
TIF_DAY = 1
TIF_GTC = 2
TIF_IOC = 3
TIFS = {"day": TIF_DAY, "gtc": TIF_GTC, "ioc": TIF_IOC}

# status
ST_PENDING = 1  # sent, not yet at the venue (order latency)
ST_ACTIVE = 2  # resting at the venue (limit) or waiting for its stop price
ST_FILLED = 3
ST_CANCELLED = 4
ST_REJECTED = 5
ST_EXPIRED = 6
STATUS_NAMES = {
    ST_PENDING: "pending",
    ST_ACTIVE: "active",
    ST_FILLED: "filled",
    ST_CANCELLED: "cancelled",
    ST_REJECTED: "rejected",
    ST_EXPIRED: "expired",
}

# fill buffer columns
FL_OID = 0
FL_SYM = 1
FL_SIDE = 2
FL_QTY = 3
FL_PX = 4
FL_TS = 5
FL_REASON = 6
FL_LIQ = 7  # 1 taker, 2 maker
FL_MID2 = 8  # 2 x mid at order arrival ($0.0001), 0 when a side was empty
FL_NCOL = 9

LIQ_TAKER = 1
LIQ_MAKER = 2

# fill reasons
R_MARKET_WALK = 1  # market order walked the visible book
R_LIMIT_TAKE = 2  # marketable part of a limit order walked the book up to its limit
R_QUEUE = 3  # resting limit reached the front of its queue and traded
R_TRADE_THROUGH = 4  # a print beyond our price: the queue at our price was exhausted
R_QUOTE_THROUGH = 5  # the opposite side quoted at or through our price
R_STOP = 6  # stop order triggered, then walked the book
R_BAR_CLOSE = 7  # bar-close fill model: filled at the last closed bar's close
R_LAST_TRADE = 8  # last-trade fill model: filled at the last print
REASON_NAMES = {
    R_MARKET_WALK: "market_walk",
    R_LIMIT_TAKE: "limit_take",
    R_QUEUE: "queue",
    R_TRADE_THROUGH: "trade_through",
    R_QUOTE_THROUGH: "quote_through",
    R_STOP: "stop_walk",
    R_BAR_CLOSE: "bar_close",
    R_LAST_TRADE: "last_trade",
}


def new_order_table(capacity: int) -> np.ndarray:
    return np.zeros((capacity, OD_NCOL), dtype=np.int64)


def new_fill_buffer(capacity: int) -> np.ndarray:
    return np.zeros((capacity, FL_NCOL), dtype=np.int64)


@dataclass(frozen=True)
class Fill:
    """One execution of one of our orders, as strategies, the portfolio and the reports see it."""

    order_id: int
    symbol: int
    side: int  # +1 buy, -1 sell
    qty: int
    price: int  # $0.0001
    ts: int  # ns, venue time of the execution
    reason: str
    liquidity: str  # "taker" / "maker"
    arrival_mid: float  # dollars; nan when a side of the book was empty at arrival
    fee: float = 0.0  # dollars, all fee components
    tag: str = ""

    @property
    def price_usd(self) -> float:
        return self.price / 10_000

    @property
    def slippage_usd(self) -> float:
        """Cost vs the arrival mid (positive = paid), in dollars for the whole fill."""
        if self.arrival_mid != self.arrival_mid:
            return 0.0
        return self.side * (self.price_usd - self.arrival_mid) * self.qty


@dataclass
class OrderRequest:
    """What a strategy asks for; the venue assigns the row and the id."""

    symbol: int
    side: int
    qty: int
    type: int = OT_MARKET
    limit: int = 0
    stop: int = 0
    tif: int = TIF_DAY
    tag: str = ""
