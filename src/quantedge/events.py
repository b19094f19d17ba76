"""The normalized market event: one structured dtype for every source and every stage.

Every importer, feed and kernel speaks this dtype, so one merge, one replay loop and one set of
kernels serve all data.  The authoritative field reference is ``docs/events.md``; keep the two in
step.  Conversions (floats, strings, time zones) happen at the edges, never in the core.

Layout: 64 bytes per event, fields ordered largest first so the record needs no padding and a
batch is a plain C-contiguous array that Numba kernels (CPU and CUDA) read directly.
"""

from __future__ import annotations

import numpy as np

#: Prices are int64 fixed point in units of $0.0001 (sub-penny quotes exist below $1).
PRICE_SCALE = 10_000

EVENT_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),  # ns since epoch, UTC: exchange / feed time
        ("ts_recv", np.int64),  # ns since epoch, UTC: local receipt (== ts_event + model if unknown)
        ("seq", np.int64),  # feed sequence (IQFeed tick id, LOBSTER row, TAQ seq): stable ordering
        ("order_id", np.int64),  # market-by-order id; 0 when not an order event
        ("price", np.int64),  # $0.0001 units; 0 when not applicable / side empty
        ("size", np.int64),  # shares; meaning per kind/action, see docs/events.md
        ("symbol", np.int32),  # id into the catalog's symbol table
        ("conditions", np.uint32),  # trade-condition bit flags (COND_*)
        ("venue", np.int16),  # market center / MMID id (see quantedge.venues)
        ("level", np.int16),  # depth position (0 = touch) for position-based L2; -1 if none
        ("kind", np.uint8),  # KIND_*
        ("side", np.int8),  # SIDE_BID(+1)=bid/buy, SIDE_ASK(-1)=ask/sell, 0 = none/unknown
        ("action", np.uint8),  # ACTION_* for depth/order events; 0 otherwise
        ("flags", np.uint8),  # structural flags (FLAG_*)
    ]
)
assert EVENT_DTYPE.itemsize == 64

# --- kind: numeric order is the tie-break rank in the catalog merge (see docs/catalog.md) -------
KIND_CLEAR = 1  # clear one side (side=±1) or both (side=0) of a symbol's book
KIND_STATUS = 2  # trading status: halt / resume / session marker (action = STATUS_*)
KIND_ORDER = 3  # market-by-order book change (L3)
KIND_DEPTH = 4  # market-by-price book change (L2): by price, or by position (level >= 0)
KIND_QUOTE = 5  # one side of the NBBO / a venue's top of book (venue != 0)
KIND_TRADE = 6  # a print

KIND_NAMES = {
    KIND_CLEAR: "clear",
    KIND_STATUS: "status",
    KIND_ORDER: "order",
    KIND_DEPTH: "depth",
    KIND_QUOTE: "quote",
    KIND_TRADE: "trade",
}
KIND_BY_NAME = {v: k for k, v in KIND_NAMES.items()}

# --- side --------------------------------------------------------------------------------------
SIDE_BID = 1  # bid side / buy order / buyer-initiated trade
SIDE_ASK = -1  # ask side / sell order / seller-initiated trade
SIDE_NONE = 0

# --- action (depth and order events) -----------------------------------------------------------
ACTION_NONE = 0
ACTION_ADD = 1  # order: new order of `size`; depth by position: insert a level at `level`
ACTION_MODIFY = 2  # order: new remaining size (and price); depth: level now has total `size`
ACTION_CANCEL = 3  # order: `size` shares cancelled (partial cancel)
ACTION_DELETE = 4  # order: whole order removed; depth: level removed (size 0)
ACTION_EXECUTE = 5  # order: `size` shares of a visible resting order executed

# status actions
STATUS_HALT = 1
STATUS_RESUME = 2
STATUS_QUOTE_RESUME = 3

ACTION_NAMES = {
    ACTION_NONE: "",
    ACTION_ADD: "add",
    ACTION_MODIFY: "modify",
    ACTION_CANCEL: "cancel",
    ACTION_DELETE: "delete",
    ACTION_EXECUTE: "execute",
}

# --- trade conditions (bit flags in `conditions`) -----------------------------------------------
COND_REGULAR = 1 << 0  # regular-way trade, eligible for last sale
COND_ODD_LOT = 1 << 1  # fewer than 100 shares (by condition code or by size)
COND_EXTENDED_HOURS = 1 << 2  # Form-T / outside 09:30-16:00 ET
COND_OFF_EXCHANGE = 1 << 3  # reported to a TRF/ADF (dark pool, internalizer)
COND_INTERMARKET_SWEEP = 1 << 4  # ISO
COND_OUT_OF_SEQUENCE = 1 << 5  # late / sold out of sequence
COND_CANCEL_CORRECTION = 1 << 6  # cancel or correction of an earlier print
COND_HIDDEN = 1 << 7  # execution against a hidden (non-displayed) order
COND_CROSS = 1 << 8  # cross / auction print (opening, closing, halt cross)
COND_AVERAGE_PRICE = 1 << 9  # average-price / VWAP / derivatively priced (not a market price)
COND_OPENING = 1 << 10  # opening / reopening print
COND_CLOSING = 1 << 11  # closing print
COND_TRADE_THROUGH_EXEMPT = 1 << 12  # Reg NMS 611 exempt (TTEXEMPT, qualified contingent)
COND_SPECIAL_TERMS = 1 << 13  # cash / next-day / seller's-option settlement, contingent or stock-option trade
COND_UNKNOWN_CODE = 1 << 31  # source carried a condition code we do not map

CONDITION_NAMES = {
    COND_REGULAR: "regular",
    COND_ODD_LOT: "odd_lot",
    COND_EXTENDED_HOURS: "extended_hours",
    COND_OFF_EXCHANGE: "off_exchange",
    COND_INTERMARKET_SWEEP: "intermarket_sweep",
    COND_OUT_OF_SEQUENCE: "out_of_sequence",
    COND_CANCEL_CORRECTION: "cancel_correction",
    COND_HIDDEN: "hidden",
    COND_CROSS: "cross",
    COND_AVERAGE_PRICE: "average_price",
    COND_OPENING: "opening",
    COND_CLOSING: "closing",
    COND_TRADE_THROUGH_EXEMPT: "trade_through_exempt",
    COND_SPECIAL_TERMS: "special_terms",
    COND_UNKNOWN_CODE: "unknown_code",
}

# --- structural flags ---------------------------------------------------------------------------
FLAG_LAST = 0x80  # last event of an atomic group (e.g. both NBBO sides, one LOBSTER message)
FLAG_SNAPSHOT = 0x20  # part of a book snapshot / seed rather than an incremental change
FLAG_TS_RECV_MODELED = 0x08  # ts_recv was not observed; it is ts_event + a latency model
FLAG_FROM_TRADE = 0x04  # quote side taken from the NBBO carried on a trade row (IQFeed history)


def empty(n: int) -> np.ndarray:
    """A zero-filled batch of ``n`` events with ``level`` = -1 (no depth position)."""
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["level"] = -1
    return out


def price_to_fixed(x: float) -> int:
    """Dollars (float or str-parsed) to $0.0001 fixed point, rounding half away from zero."""
    return int(round(x * PRICE_SCALE))


def fixed_to_price(p: int | np.ndarray) -> float | np.ndarray:
    return p / PRICE_SCALE


def condition_names(bits: int) -> list[str]:
    """Human-readable names of the set condition bits (for reports and the CLI)."""
    return [name for bit, name in CONDITION_NAMES.items() if bits & bit]
