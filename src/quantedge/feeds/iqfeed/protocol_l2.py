"""IQFeed Level 2 (port 9200): 6.2 order/price-level messages, legacy 6.1 Z/2, and L2 commands.

Protocol 6.2 (reference §4.3): ``3`` add, ``4`` update, ``5`` delete, ``6`` summary rows for orders
(MBO, order id set) and for market makers / venues (order id blank, MMID set); ``7`` summary,
``8`` update, ``9`` delete for aggregated price levels; ``0`` "price level order" has the layout of
``3`` (purpose unverified).  Protocol 6.1 (§4.1): ``Z`` summary / ``2`` update rows per MMID with
both sides and an end-of-group flag.  ``S,CLEAR DEPTH`` lives in the system layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantedge.feeds.iqfeed.protocol_system import (
    CRLF,
    BadField,
    drop_trailing_empty,
    format_date_iso,
    format_price,
    format_time_us,
    need,
    parse_date_iso,
    parse_int,
    parse_price,
    parse_time_us,
)

ORDER_TYPES = ("0", "3", "4", "5", "6")
LEVEL_TYPES = ("7", "8", "9")
LEGACY_TYPES = ("Z", "2")

ORDER_FIELDS = ("Symbol", "OrderID", "MMID", "Side", "Price", "Size", "Priority", "Precision", "Time", "Date")
ORDER_DELETE_FIELDS = ("Symbol", "OrderID", "MMID", "Side", "Time", "Date")
LEVEL_FIELDS = ("Symbol", "Side", "Price", "Size", "Order Count", "Precision", "Time", "Date")
LEVEL_DELETE_FIELDS = ("Symbol", "Side", "Price", "Time", "Date")
LEGACY_FIELDS = (
    "Symbol", "MMID", "Bid", "Ask", "Bid Size", "Ask Size", "Bid Time", "Date", "Condition Code",
    "Ask Time", "Bid Info Valid", "Ask Info Valid", "End of Message Group",
)  # fmt: skip


def _side(s: str) -> str:
    if s == "A" or s == "B":
        return s
    raise BadField("Side", "bad_side", f"expected A or B, got {s!r}")


def _flag(s: str, name: str) -> bool:
    if s == "T":
        return True
    if s == "F":
        return False
    raise BadField(name, "bad_flag", f"expected T or F, got {s!r}")


def _i(v: int | None) -> str:
    return "" if v is None else str(v)


def _price_text(p: int | None, precision: int | None) -> str:
    return format_price(p, 4 if precision is None or precision < 0 else precision)


@dataclass(frozen=True, slots=True)
class L2Order:
    """6.2 message ``3``/``4``/``5``/``6`` (and ``0``): one order (order_id set) or one market
    maker's level on one side (order_id None, mmid set).  Delete (``5``) rows carry no
    price/size/priority/precision."""

    msg_type: str  # "3" add, "4" update, "5" delete, "6" summary, "0" price-level order
    symbol: str
    order_id: int | None
    mmid: str  # "" for order rows
    side: str  # "A" ask / "B" bid
    price: int | None = None
    size: int | None = None
    priority: int | None = None
    precision: int | None = None  # decimals of the price text
    time_us: int | None = None  # µs after ET midnight; may be blank on deletes
    date: int | None = None  # YYYYMMDD (ET)

    @property
    def is_market_maker(self) -> bool:
        return self.order_id is None


@dataclass(frozen=True, slots=True)
class L2PriceLevel:
    """6.2 message ``7`` summary / ``8`` update / ``9`` delete: the aggregate at one price."""

    msg_type: str  # "7", "8", "9"
    symbol: str
    side: str
    price: int | None
    size: int | None = None  # total at the level (None on delete)
    order_count: int | None = None
    precision: int | None = None
    time_us: int | None = None
    date: int | None = None


@dataclass(frozen=True, slots=True)
class L2LegacyMM:
    """Protocol <=6.1 ``Z`` (summary) / ``2`` (update): one MMID's bid and ask.

    For futures the MMIDs ``MD01``..``MD10`` are depth positions 1..10 (see :func:`mmid_position`).
    """

    msg_type: str  # "Z" or "2"
    symbol: str
    mmid: str
    bid: int | None
    ask: int | None
    bid_size: int | None
    ask_size: int | None
    bid_time_us: int | None
    date: int | None
    condition_code: str
    ask_time_us: int | None
    bid_valid: bool
    ask_valid: bool
    end_of_group: bool


@dataclass(frozen=True, slots=True)
class MarketMakerInfo:
    """``M,<MMID>,<description>``: reply to the ``m<MMID>`` query."""

    mmid: str
    description: str


@dataclass(frozen=True, slots=True)
class OtherMessage:
    """A message type the reference names without a verified layout (``q``) or marks deprecated
    (``O``): kept verbatim so nothing is dropped silently."""

    msg_type: str
    fields: tuple[str, ...]


def mmid_position(mmid: str) -> int | None:
    """Depth position (0 = touch) for futures pseudo-MMIDs ``MD01``..``MD99``, else None."""
    if len(mmid) == 4 and mmid[:2] == "MD" and mmid[2:].isdecimal() and mmid[2:] != "00":
        return int(mmid[2:]) - 1
    return None


def parse_order(fields: list[str], line: str) -> L2Order:
    t = fields[0]
    f = drop_trailing_empty(fields[1:], line)
    if not f or not f[0]:
        raise BadField("Symbol", "missing_field", "L2 line without a symbol")
    if t == "5":
        need(f, 6, ORDER_DELETE_FIELDS)
        oid = parse_int(f[1], "OrderID")
        if oid is None and not f[2]:
            raise BadField("OrderID", "missing_field", "neither OrderID nor MMID set")
        return L2Order(t, f[0], oid, f[2], _side(f[3]), time_us=parse_time_us(f[4], "Time"),
                       date=parse_date_iso(f[5], "Date"))
    need(f, 10, ORDER_FIELDS)
    oid = parse_int(f[1], "OrderID")
    if oid is None and not f[2]:
        raise BadField("OrderID", "missing_field", "neither OrderID nor MMID set")
    return L2Order(
        t, f[0], oid, f[2], _side(f[3]), parse_price(f[4], "Price"), parse_int(f[5], "Size"),
        parse_int(f[6], "Priority"), parse_int(f[7], "Precision"), parse_time_us(f[8], "Time"),
        parse_date_iso(f[9], "Date"),
    )


def parse_price_level(fields: list[str], line: str) -> L2PriceLevel:
    t = fields[0]
    f = drop_trailing_empty(fields[1:], line)
    if not f or not f[0]:
        raise BadField("Symbol", "missing_field", "L2 line without a symbol")
    if t == "9":
        need(f, 5, LEVEL_DELETE_FIELDS)
        return L2PriceLevel(t, f[0], _side(f[1]), parse_price(f[2], "Price"),
                            time_us=parse_time_us(f[3], "Time"), date=parse_date_iso(f[4], "Date"))
    need(f, 8, LEVEL_FIELDS)
    return L2PriceLevel(
        t, f[0], _side(f[1]), parse_price(f[2], "Price"), parse_int(f[3], "Size"),
        parse_int(f[4], "Order Count"), parse_int(f[5], "Precision"), parse_time_us(f[6], "Time"),
        parse_date_iso(f[7], "Date"),
    )


def parse_legacy(fields: list[str], line: str) -> L2LegacyMM:
    f = drop_trailing_empty(fields[1:], line)
    need(f, 13, LEGACY_FIELDS)
    if not f[0]:
        raise BadField("Symbol", "missing_field", "L2 line without a symbol")
    if not f[1]:
        raise BadField("MMID", "missing_field", "legacy L2 line without an MMID")
    return L2LegacyMM(
        fields[0], f[0], f[1], parse_price(f[2], "Bid"), parse_price(f[3], "Ask"),
        parse_int(f[4], "Bid Size"), parse_int(f[5], "Ask Size"), parse_time_us(f[6], "Bid Time"),
        parse_date_iso(f[7], "Date"), f[8], parse_time_us(f[9], "Ask Time"),
        _flag(f[10], "Bid Info Valid"), _flag(f[11], "Ask Info Valid"),
        _flag(f[12], "End of Message Group"),
    )


def parse_market_maker(fields: list[str], line: str) -> MarketMakerInfo:
    need(fields, 2, ("type", "MMID"))
    if not fields[1]:
        raise BadField("MMID", "missing_field", "M line without an MMID")
    return MarketMakerInfo(fields[1], ",".join(fields[2:]))


def format_order(msg: L2Order) -> str:
    """``3``/``4``/``6``/``0``: 10 fields; ``5``: 6 fields; trailing comma as on the wire."""
    oid = _i(msg.order_id)
    if msg.msg_type == "5":
        return ",".join(("5", msg.symbol, oid, msg.mmid, msg.side, format_time_us(msg.time_us),
                         format_date_iso(msg.date))) + "," + CRLF
    return ",".join((
        msg.msg_type, msg.symbol, oid, msg.mmid, msg.side, _price_text(msg.price, msg.precision),
        _i(msg.size), _i(msg.priority), _i(msg.precision), format_time_us(msg.time_us),
        format_date_iso(msg.date),
    )) + "," + CRLF  # fmt: skip


def format_price_level(msg: L2PriceLevel) -> str:
    if msg.msg_type == "9":
        return ",".join(("9", msg.symbol, msg.side, _price_text(msg.price, msg.precision),
                         format_time_us(msg.time_us), format_date_iso(msg.date))) + "," + CRLF
    return ",".join((
        msg.msg_type, msg.symbol, msg.side, _price_text(msg.price, msg.precision), _i(msg.size),
        _i(msg.order_count), _i(msg.precision), format_time_us(msg.time_us), format_date_iso(msg.date),
    )) + "," + CRLF  # fmt: skip


def format_legacy(msg: L2LegacyMM, decimals: int | None = None) -> str:
    """``Z``/``2`` line; legacy prices are written shortest-exact (``2982.5``) unless ``decimals``."""
    tf = ("F", "T")
    return ",".join((
        msg.msg_type, msg.symbol, msg.mmid, format_price(msg.bid, decimals),
        format_price(msg.ask, decimals), _i(msg.bid_size), _i(msg.ask_size),
        format_time_us(msg.bid_time_us), format_date_iso(msg.date), msg.condition_code,
        format_time_us(msg.ask_time_us), tf[msg.bid_valid], tf[msg.ask_valid], tf[msg.end_of_group],
    )) + "," + CRLF  # fmt: skip


def format_market_maker(msg: MarketMakerInfo) -> str:
    return f"M,{msg.mmid},{msg.description}{CRLF}"


def format_other(msg: OtherMessage) -> str:
    return ",".join((msg.msg_type, *msg.fields)) + CRLF


# --- Level 2 client commands (reference §4.1, §4.2) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepthCommand:
    """``WOR``/``ROR`` (market-by-order), ``WPL``/``RPL`` (market-by-price, optional level cap)."""

    command: str  # "WOR", "ROR", "WPL", "RPL"
    symbol: str
    max_levels: int | None = None  # WPL only


DEPTH_COMMANDS = ("WOR", "ROR", "WPL", "RPL")


def format_depth_command(cmd: DepthCommand) -> str:
    if cmd.command not in DEPTH_COMMANDS or not cmd.symbol or "," in cmd.symbol:
        raise ValueError(f"bad depth command {cmd!r}")
    if cmd.max_levels is not None:
        if cmd.command != "WPL":
            raise ValueError("max_levels applies to WPL only")
        return f"WPL,{cmd.symbol},{cmd.max_levels}{CRLF}"
    return f"{cmd.command},{cmd.symbol}{CRLF}"


def parse_depth_command(fields: list[str]) -> DepthCommand:
    need(fields, 2, ("command", "Symbol"))
    if not fields[1]:
        raise BadField("Symbol", "missing_field", f"{fields[0]} without a symbol")
    levels = None
    if fields[0] == "WPL" and len(fields) > 2 and fields[2]:
        levels = parse_int(fields[2], "MaxPriceLevels")
        if levels is not None and levels <= 0:
            raise BadField("MaxPriceLevels", "out_of_range", repr(fields[2]))
    return DepthCommand(fields[0], fields[1], levels)
