"""IQFeed (IQConnect) protocol: parse and format every line, and map messages <-> normalized events.

Pure functions over text, shared by the live client and the IQConnect replay server:

* :func:`parse_line` — one server line -> a message dataclass, or a :class:`ParseError` value
  (never an exception) naming the field and the reason;
* :func:`parse_command` — one client command line (what a replay server receives);
* :func:`format_message` — any message back to exact IQFeed text (``\\r\\n``-terminated);
* :func:`to_events` / :class:`LineWriter` — messages -> ``EVENT_DTYPE`` rows and back.

The per-port message modules are ``protocol_system`` (codecs, ``S``/``T``/``n``/``E``),
``protocol_l1`` (``Q``/``P``/``F``/``R``/``C``/``N``), ``protocol_l2`` (``0``/``3``-``9``, ``Z``/``2``,
``M``) and ``protocol_lookup`` (history requests and rows); everything public is re-exported here.
Field-by-field definitions: ``docs/iqfeed-protocol-support.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_EXECUTE,
    ACTION_MODIFY,
    COND_CANCEL_CORRECTION,
    COND_EXTENDED_HOURS,
    COND_OFF_EXCHANGE,
    COND_REGULAR,
    COND_UNKNOWN_CODE,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_TS_RECV_MODELED,
    KIND_CLEAR,
    KIND_DEPTH,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
    empty,
)
from quantedge.feeds.iqfeed.conditions import hex_to_conditions, wire_conditions
from quantedge.feeds.iqfeed.protocol_l1 import (
    ALL_FIELDS,
    ALL_FIELDSET,
    CONTENTS_CODES,
    DEFAULT_FIELDS,
    DEFAULT_FIELDSET,
    FIELD_TYPES,
    FUNDAMENTAL_FIELDS,
    Fieldset,
    Fundamental,
    L1Update,
    NewsHeadline,
    Regional,
    SymbolCommand,
    TimestampRequest,
    TradeCorrection,
    format_correction,
    format_fundamental,
    format_news,
    format_regional,
    format_symbol_command,
    format_update,
    is_ask_update,
    is_bid_update,
    is_extended,
    is_trade,
    make_update,
    parse_correction,
    parse_fundamental,
    parse_news,
    parse_regional,
    parse_update,
    trade_type,
)
from quantedge.feeds.iqfeed.protocol_l2 import (
    DEPTH_COMMANDS,
    DepthCommand,
    L2LegacyMM,
    L2Order,
    L2PriceLevel,
    MarketMakerInfo,
    OtherMessage,
    format_depth_command,
    format_legacy,
    format_market_maker,
    format_order,
    format_other,
    format_price_level,
    mmid_position,
    parse_depth_command,
    parse_legacy,
    parse_market_maker,
    parse_order,
    parse_price_level,
)
from quantedge.feeds.iqfeed.protocol_lookup import (
    BAR_TYPES,
    END_MSG,
    NO_DATA,
    REQUEST_LAYOUTS,
    DerivativeBar,
    EndMsg,
    HistoryRequest,
    LookupDailyRow,
    LookupErrorLine,
    LookupIntervalRow,
    LookupOtherRow,
    LookupTickRow,
    error_response,
    format_daily_row,
    format_derivative_bar,
    format_end,
    format_history_request,
    format_interval_row,
    format_lookup_error,
    format_other_row,
    format_tick_row,
    parse_derivative_bar,
    parse_history_request,
    parse_lookup,
)
from quantedge.feeds.iqfeed.protocol_system import (
    CRLF,
    PROTOCOLS,
    BadField,
    ClearDepth,
    ErrorMessage,
    NotFound,
    ParseError,
    SystemMessage,
    Timestamp,
    clip,
    et_to_ns,
    format_clear_depth,
    format_current_protocol,
    format_error,
    format_not_found,
    format_set_protocol,
    format_system,
    format_timestamp,
    normalize_port,
    normalize_protocol,
    ns_to_et,
    parse_error_text,
    parse_system,
    parse_timestamp,
    rejected_protocol,
    system_fields,
)
from quantedge.venues import MMID_BASE, is_off_exchange

__all__ = [
    "ALL_FIELDS", "ALL_FIELDSET", "BAR_TYPES", "CONTENTS_CODES", "CRLF", "DEFAULT_FIELDS",
    "DEFAULT_FIELDSET", "DEPTH_COMMANDS", "END_MSG", "FIELD_TYPES", "FUNDAMENTAL_FIELDS", "NO_DATA",
    "PROTOCOLS", "REQUEST_LAYOUTS", "ClearDepth", "DepthCommand", "DerivativeBar", "EndMsg",
    "ErrorMessage", "EventContext", "Fieldset", "Fundamental", "HistoryRequest", "L1Update",
    "L2LegacyMM", "L2Order", "L2PriceLevel", "LineWriter", "LookupDailyRow", "LookupErrorLine",
    "LookupIntervalRow", "LookupOtherRow", "LookupTickRow", "MarketMakerInfo", "Message",
    "NewsHeadline", "NotFound", "OtherMessage", "ParseError", "Regional", "SymbolCommand",
    "SystemMessage", "Timestamp", "TimestampRequest", "TradeCorrection", "error_response",
    "et_to_ns", "format_current_protocol", "format_history_request", "format_message",
    "format_set_protocol", "is_ask_update", "is_bid_update", "is_extended", "is_trade",
    "make_update", "mmid_position", "ns_to_et", "parse_command", "parse_line", "rejected_protocol",
    "system_fields", "to_events", "trade_type",
]  # fmt: skip

Message = (
    SystemMessage | ClearDepth | Timestamp | NotFound | ErrorMessage | L1Update | Fundamental | Regional
    | TradeCorrection | NewsHeadline | L2Order | L2PriceLevel | L2LegacyMM | MarketMakerInfo | OtherMessage
    | LookupTickRow | LookupIntervalRow | LookupDailyRow | LookupOtherRow | EndMsg | LookupErrorLine
    | DerivativeBar
)


# --- parsing ---------------------------------------------------------------------------------------


def _common(t: str, fields: list[str], line: str) -> Message | None:
    """System lines every streaming port can carry."""
    if t == "S":
        return parse_system(fields, line)
    if t == "T":
        return parse_timestamp(line)
    if t == "n":
        if len(fields) < 2 or not fields[1]:
            raise BadField("symbol", "missing_field", "n line without a symbol")
        return NotFound(fields[1])
    if t == "E":
        return ErrorMessage(parse_error_text(line[2:]))
    return None


def _level1(t: str, fields: list[str], line: str, fieldset: Fieldset) -> Message | None:
    if t == "Q" or t == "P":
        return parse_update(fields, line, fieldset)
    if t == "F":
        return parse_fundamental(fields, line)
    if t == "R":
        return parse_regional(fields, line)
    if t == "C":
        return parse_correction(fields, line)
    if t == "N":
        return parse_news(fields, line)
    return _common(t, fields, line)


def _level2(t: str, fields: list[str], line: str) -> Message | None:
    if t in ("3", "4", "5", "6", "0"):
        return parse_order(fields, line)
    if t in ("7", "8", "9"):
        return parse_price_level(fields, line)
    if t == "Z" or t == "2":
        return parse_legacy(fields, line)
    if t == "M":
        return parse_market_maker(fields, line)
    if t == "O" or t == "q":
        return OtherMessage(t, tuple(fields[1:]))
    return _common(t, fields, line)


def _lookup(t: str, fields: list[str], line: str) -> Message | None:
    if t == "S" and len(fields) > 1 and fields[1] not in ("LH", "E", END_MSG):
        return parse_system(fields, line)
    return parse_lookup(fields, line)  # type: ignore[return-value]


def _derivative(t: str, fields: list[str], line: str) -> Message | None:
    if t in BAR_TYPES or (len(fields) > 1 and fields[1] in BAR_TYPES):
        return parse_derivative_bar(fields, line)
    return _common(t, fields, line)


_ROLE: dict[Any, str] = {}


def parse_line(
    line: str | bytes,
    port: str | int,
    protocol: str = "6.2",
    fieldset: Fieldset = DEFAULT_FIELDSET,
) -> Message | ParseError:
    """Parse one server line received on ``port`` (``level1``/``5009``, ``level2``, ``lookup``,
    ``admin``, ``derivative``).  Bad input returns a :class:`ParseError`; it never raises.

    ``fieldset`` is the connection's current Q/P fieldset (track ``S,CURRENT UPDATE FIELDNAMES``).
    Parsing accepts both protocols' shapes on every version (6.1 lines have no ``LH``; 6.1 depth is
    ``Z``/``2``); ``protocol`` and ``port`` are validated and a wrong one raises ValueError, since
    that is a programming error, not bad input.
    """
    role = _ROLE.get(port)
    if role is None:
        role = _ROLE[port] = normalize_port(port)
    if protocol not in PROTOCOLS:
        normalize_protocol(protocol)
    if not isinstance(line, str):
        line = bytes(line).decode("latin-1")
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if not line:
        return ParseError("", "empty_line", "", "")
    try:
        fields = line.split(",")
        t = fields[0]
        if role == "level1":
            msg = _level1(t, fields, line, fieldset)
        elif role == "level2":
            msg = _level2(t, fields, line)
        elif role == "lookup":
            msg = _lookup(t, fields, line)
        elif role == "derivative":
            msg = _derivative(t, fields, line)
        else:
            msg = _common(t, fields, line)
        if msg is None:
            return ParseError("type", "unknown_message_type", f"{t[:20]!r} on the {role} port", clip(line))
        return msg
    except BadField as e:
        return ParseError(e.field, e.reason, e.detail, clip(line))
    except (ValueError, IndexError, OverflowError, TypeError, KeyError) as e:  # defensive: never raise
        return ParseError("", "malformed", f"{type(e).__name__}: {e}", clip(line))


def parse_command(line: str | bytes, port: str | int) -> Any:
    """Parse one client command (what a replay server reads); bad input -> :class:`ParseError`.

    Returns SystemMessage (``S,...`` commands), SymbolCommand (``w``/``t``/``r``/``f``/``m``),
    TimestampRequest (``T``), DepthCommand (``WOR``/``ROR``/``WPL``/``RPL``), HistoryRequest
    (``HTX``...``HMX``), or OtherMessage for commands the reference only names (``c``/``x``, lookups
    other than history, ``BW``/``BR``) so the server can answer or refuse them explicitly.
    """
    role = normalize_port(port)
    if isinstance(line, bytes | bytearray):
        line = bytes(line).decode("latin-1")
    line = line.rstrip("\r\n")
    if not line:
        return ParseError("", "empty_line", "", "")
    try:
        fields = line.split(",")
        t = fields[0]
        if t == "S":
            return parse_system(fields, line)
        if line == "T" and role in ("level1", "level2", "admin"):
            return TimestampRequest()
        if role == "lookup" and t in REQUEST_LAYOUTS:
            return parse_history_request(fields)
        if role == "level2" and t in DEPTH_COMMANDS:
            return parse_depth_command(fields)
        allowed = {"level1": "wtrf", "level2": "wrm"}.get(role, "")
        if t and t[0] in allowed and len(fields) == 1:
            if len(line) < 2:
                raise BadField("symbol", "missing_field", f"{line!r} without a symbol")
            return SymbolCommand(line[0], line[1:])
        if role == "level2" and line in ("c", "x"):
            return OtherMessage(line, ())
        if t.isalnum() and t.isupper() and 2 <= len(t) <= 3:
            return OtherMessage(t, tuple(fields[1:]))
        return ParseError("command", "unknown_command", f"{t[:20]!r} on the {role} port", clip(line))
    except BadField as e:
        return ParseError(e.field, e.reason, e.detail, clip(line))
    except (ValueError, IndexError, OverflowError, TypeError, KeyError) as e:
        return ParseError("", "malformed", f"{type(e).__name__}: {e}", clip(line))


# --- formatting ------------------------------------------------------------------------------------


def format_message(msg: Any, protocol: str = "6.2", decimals: int = 4) -> str:
    """Exact IQFeed text for any message or command (``\\r\\n``-terminated).

    ``decimals`` is the price precision for L1 and lookup lines (IQFeed writes 4 for equities);
    6.2 depth lines use their own Precision field; legacy ``Z``/``2`` write the shortest exact form.
    ``protocol`` decides the ``LH`` prefix of lookup rows.
    """
    normalize_protocol(protocol)
    if isinstance(msg, L1Update):
        return format_update(msg, decimals)
    if isinstance(msg, L2Order):
        return format_order(msg)
    if isinstance(msg, L2PriceLevel):
        return format_price_level(msg)
    if isinstance(msg, LookupTickRow):
        return format_tick_row(msg, protocol, decimals)
    if isinstance(msg, LookupIntervalRow):
        return format_interval_row(msg, protocol, decimals)
    if isinstance(msg, LookupDailyRow):
        return format_daily_row(msg, protocol, decimals)
    if isinstance(msg, EndMsg):
        return format_end(msg)
    if isinstance(msg, LookupErrorLine):
        return format_lookup_error(msg)
    if isinstance(msg, LookupOtherRow):
        return format_other_row(msg, protocol)
    if isinstance(msg, SystemMessage):
        return format_system(msg)
    if isinstance(msg, ClearDepth):
        return format_clear_depth(msg)
    if isinstance(msg, Timestamp):
        return format_timestamp(msg)
    if isinstance(msg, NotFound):
        return format_not_found(msg)
    if isinstance(msg, ErrorMessage):
        return format_error(msg)
    if isinstance(msg, Fundamental):
        return format_fundamental(msg)
    if isinstance(msg, Regional):
        return format_regional(msg, decimals)
    if isinstance(msg, TradeCorrection):
        return format_correction(msg, decimals)
    if isinstance(msg, NewsHeadline):
        return format_news(msg)
    if isinstance(msg, L2LegacyMM):
        return format_legacy(msg)
    if isinstance(msg, MarketMakerInfo):
        return format_market_maker(msg)
    if isinstance(msg, OtherMessage):
        return format_other(msg)
    if isinstance(msg, DerivativeBar):
        return format_derivative_bar(msg, decimals)
    if isinstance(msg, HistoryRequest):
        return format_history_request(msg)
    if isinstance(msg, SymbolCommand):
        return format_symbol_command(msg)
    if isinstance(msg, DepthCommand):
        return format_depth_command(msg)
    if isinstance(msg, TimestampRequest):
        return "T" + CRLF
    raise TypeError(f"not an IQFeed message: {type(msg).__name__}")


# --- messages -> normalized events ----------------------------------------------------------------------


@dataclass
class EventContext:
    """State that turning a message stream into events needs: name tables and the ET session date.

    ``date`` dates L1 time-only fields (Q/P carry ``HH:MM:SS.ffffff`` but no date unless
    ``Most Recent Trade Date`` is selected); each ``T`` line updates it and ``clock``.
    """

    symbols: NameTable
    mmids: NameTable = field(default_factory=lambda: NameTable(base=MMID_BASE))
    date: int | None = None  # YYYYMMDD, ET
    clock: int | None = None  # ns UTC of the latest T line


_Row = tuple  # (ts_event, ts_recv, seq, order_id, price, size, symbol, conditions, venue, level, kind,
#               side, action, flags) - EVENT_DTYPE field order


def _side(s: str) -> int:
    return SIDE_BID if s == "B" else SIDE_ASK if s == "A" else 0


class _Builder:
    def __init__(self, ctx: EventContext) -> None:
        self.ctx = ctx
        self.rows: list[_Row] = []
        self.problems: list[ParseError] = []

    def add(self, ts_event: int | None, ts_recv: int | None, sym: str, kind: int, *, seq: int = 0,
            order_id: int = 0, price: int | None = 0, size: int | None = 0, conditions: int = 0,
            venue: int = 0, level: int = -1, side: int = 0, action: int = 0, flags: int = 0) -> bool:
        if ts_event is None:
            ts_event = ts_recv if ts_recv is not None else self.ctx.clock
        if ts_event is None:
            self.problems.append(ParseError("time", "no_time", f"{sym}: no time in the message, no ts_recv, "
                                            "no T line seen yet"))
            return False
        if ts_recv is None:
            ts_recv = ts_event
            flags |= FLAG_TS_RECV_MODELED
        self.rows.append((ts_event, ts_recv, seq, order_id, price or 0, size or 0, self.ctx.symbols.id(sym),
                          conditions, venue, level, kind, side, action, flags))
        return True

    def et(self, date: int | None, tod: int | None, sym: str, what: str) -> int | None:
        if tod is None:
            return None
        d = date if date is not None else self.ctx.date
        if d is None:
            self.problems.append(ParseError(what, "no_date", f"{sym}: time without a date; pass "
                                            "EventContext.date or feed T lines first"))
            return None
        return et_to_ns(d, tod)


def _trade_bits(conds: str | None, venue: int | None, contents_type: str) -> int:
    bits = 0
    if conds:
        bits, ok = hex_to_conditions(conds)
        if not ok:
            bits = COND_UNKNOWN_CODE
    if venue is not None and is_off_exchange(venue):
        bits |= COND_OFF_EXCHANGE
    if contents_type == "E":
        bits |= COND_EXTENDED_HOURS
    elif contents_type == "C":  # DTN's last-qualified verdict (its REGULAR code 01 comes only alone)
        bits |= COND_REGULAR
    return bits


def _l1(b: _Builder, m: L1Update, recv: int | None) -> None:
    sym = m.symbol
    date = m.get("Most Recent Trade Date")
    contents = m.contents
    if m.msg_type == "Q" and is_trade(contents):
        pfx = "Most Recent Trade" if "Most Recent Trade" in m.fieldset else "Last"
        price = m.get(pfx)
        if price is None:
            b.problems.append(ParseError(pfx, "missing_field", f"{sym}: trade update without a trade price"))
        else:
            tod = m.get(f"{pfx} Time")
            ts = b.et(date if pfx != "Last" else m.get("Last Date"), tod, sym, f"{pfx} Time")
            if tod is None or ts is not None:
                venue = m.get(f"{pfx} Market Center")
                aggr = m.get("Most Recent Trade Aggressor")
                b.add(ts, recv, sym, KIND_TRADE, seq=m.get("TickID", 0), price=price,
                      size=m.get(f"{pfx} Size", 0),
                      conditions=_trade_bits(m.get("Most Recent Trade Conditions"), venue,
                                             trade_type(contents)),
                      venue=venue or 0, side=SIDE_BID if aggr == 1 else SIDE_ASK if aggr == 2 else 0,
                      flags=FLAG_LAST)
    if m.msg_type == "P" or is_bid_update(contents) or is_ask_update(contents):
        snap = FLAG_SNAPSHOT if m.msg_type == "P" else 0
        # Quote times are dated by the session, not by the last trade (which may be yesterday's).
        ts_b = b.et(None, m.get("Bid Time"), sym, "Bid Time")
        ts_a = b.et(None, m.get("Ask Time"), sym, "Ask Time")
        if b.add(ts_b, recv, sym, KIND_QUOTE, price=m.get("Bid"), size=m.get("Bid Size"), side=SIDE_BID,
                 flags=snap):
            b.add(ts_a, recv, sym, KIND_QUOTE, price=m.get("Ask"), size=m.get("Ask Size"), side=SIDE_ASK,
                  flags=snap | FLAG_LAST)


def _depth_target(b: _Builder, mmid: str) -> tuple[int, int]:
    """(venue, level) of a market-maker row: futures MD01.. are positions, others venue ids."""
    pos = mmid_position(mmid)
    if pos is not None:
        return 0, pos
    return b.ctx.mmids.id(mmid), -1


def _convert(b: _Builder, m: Any, recv: int | None) -> None:
    if isinstance(m, L1Update):
        _l1(b, m, recv)
    elif isinstance(m, L2Order):
        ts = b.et(m.date, m.time_us, m.symbol, "Time")
        snap = FLAG_SNAPSHOT if m.msg_type == "6" else 0
        if m.msg_type == "0":
            b.problems.append(ParseError("type", "unmapped_message",
                                         f"{m.symbol}: L2 message 0 has no verified meaning"))
        elif m.order_id is not None:
            action = {"3": ACTION_ADD, "6": ACTION_ADD, "4": ACTION_MODIFY, "5": ACTION_DELETE}[m.msg_type]
            b.add(ts, recv, m.symbol, KIND_ORDER, order_id=m.order_id, price=m.price, size=m.size,
                  side=_side(m.side), action=action, flags=snap | FLAG_LAST)
        else:
            venue, level = _depth_target(b, m.mmid)
            action = ACTION_DELETE if m.msg_type == "5" else ACTION_MODIFY
            size = m.size if action != ACTION_DELETE else 0
            b.add(ts, recv, m.symbol, KIND_DEPTH, price=m.price, size=size,
                  venue=venue, level=level, side=_side(m.side), action=action, flags=snap | FLAG_LAST)
    elif isinstance(m, L2PriceLevel):
        ts = b.et(m.date, m.time_us, m.symbol, "Time")
        action = ACTION_DELETE if m.msg_type == "9" else ACTION_MODIFY
        b.add(ts, recv, m.symbol, KIND_DEPTH, price=m.price, size=m.size if action != ACTION_DELETE else 0,
              side=_side(m.side), action=action,
              flags=(FLAG_SNAPSHOT if m.msg_type == "7" else 0) | FLAG_LAST)
    elif isinstance(m, L2LegacyMM):
        venue, level = _depth_target(b, m.mmid)
        snap = FLAG_SNAPSHOT if m.msg_type == "Z" else 0
        for side, ok, price, size, tod, last in (
            (SIDE_BID, m.bid_valid, m.bid, m.bid_size, m.bid_time_us, 0),
            (SIDE_ASK, m.ask_valid, m.ask, m.ask_size, m.ask_time_us, FLAG_LAST if m.end_of_group else 0),
        ):
            ts = b.et(m.date, tod, m.symbol, "Time")
            b.add(ts, recv, m.symbol, KIND_DEPTH, price=price if ok else 0, size=size if ok else 0,
                  venue=venue, level=level, side=side, action=ACTION_MODIFY if ok else ACTION_DELETE,
                  flags=snap | last)
    elif isinstance(m, ClearDepth):
        b.add(None, recv, m.symbol, KIND_CLEAR, side=_side(m.side), flags=FLAG_LAST)
    elif isinstance(m, Regional):
        ts_b = b.et(None, m.bid_time_us, m.symbol, "Regional Bid Time")
        ts_a = b.et(None, m.ask_time_us, m.symbol, "Regional Ask Time")
        venue = m.market_center or 0
        if b.add(ts_b, recv, m.symbol, KIND_QUOTE, price=m.bid, size=m.bid_size, venue=venue, side=SIDE_BID):
            b.add(ts_a, recv, m.symbol, KIND_QUOTE, price=m.ask, size=m.ask_size, venue=venue, side=SIDE_ASK,
                  flags=FLAG_LAST)
    elif isinstance(m, TradeCorrection):
        ts = b.et(m.date, m.time_us, m.symbol, "Trade Time")
        bits = _trade_bits(m.conditions, m.market_center, m.trade_type) | COND_CANCEL_CORRECTION
        b.add(ts, recv, m.symbol, KIND_TRADE, seq=m.tick_id or 0, price=m.price, size=m.size,
              conditions=bits, venue=m.market_center or 0,
              action=ACTION_ADD if m.correction_type == "I" else ACTION_DELETE, flags=FLAG_LAST)
    elif isinstance(m, Timestamp):
        b.ctx.date = m.date
        b.ctx.clock = m.ts


def to_events(
    messages: Iterable[Any], ctx: EventContext, ts_recv: int | Sequence[int] | None = None
) -> tuple[np.ndarray, list[ParseError]]:
    """Normalized events for parsed messages, plus a problem per message that could not be mapped.

    * ``Q`` with C/E/O contents -> KIND_TRADE (``Most Recent Trade`` fields; seq = TickID when selected);
      ``Q`` with ``b``/``a`` -> a KIND_QUOTE bid/ask pair (FLAG_LAST on the ask); ``P`` -> the pair with
      FLAG_SNAPSHOT; ``R`` -> a pair with venue = market center;
    * ``C`` corrections -> KIND_TRADE with COND_CANCEL_CORRECTION, action ADD (insert) / DELETE (delete);
    * order rows ``3``/``4``/``5``/``6`` -> KIND_ORDER ADD/MODIFY/DELETE/ADD+SNAPSHOT;
    * market-maker rows, ``7``/``8``/``9`` and ``Z``/``2`` -> KIND_DEPTH (size = new total, 0 on delete;
      venue = MMID id from ``ctx.mmids``, or level = position for futures ``MDnn``);
    * ``S,CLEAR DEPTH`` -> KIND_CLEAR; ``T`` lines advance ``ctx``; other messages yield no events.

    ``ts_recv`` (ns UTC) is the receipt time of all messages or of each; without it ``ts_recv`` =
    ``ts_event`` with FLAG_TS_RECV_MODELED.  Messages without their own time use ``ts_recv`` or the
    latest ``T`` line.
    """
    b = _Builder(ctx)
    per_msg = ts_recv is not None and not isinstance(ts_recv, int | np.integer)
    for i, m in enumerate(messages):
        recv = (int(ts_recv[i]) if per_msg else ts_recv) if ts_recv is not None else None  # type: ignore[index]
        _convert(b, m, recv)
    out = empty(len(b.rows))
    if b.rows:
        out[:] = np.array(b.rows, dtype=EVENT_DTYPE)
    return out, b.problems


# --- normalized events -> lines (replay server) -------------------------------------------------------


@dataclass
class _L1State:
    last: int | None = None
    last_size: int | None = None
    last_time: int | None = None
    last_date: int | None = None
    last_mc: int | None = None
    last_conds: str | None = None
    tick_id: int | None = None
    aggressor: int | None = None
    volume: int = 0
    trades: int = 0
    bid: int | None = None
    bid_size: int | None = None
    bid_time: int | None = None
    ask: int | None = None
    ask_size: int | None = None
    ask_time: int | None = None
    open: int | None = None
    high: int | None = None
    low: int | None = None
    pending: str = ""  # quote sides changed since the last emitted Q


class LineWriter:
    """Turns normalized event batches into the IQFeed lines a live IQConnect would send.

    Keeps per-symbol L1 state (last trade, cumulative volume, NBBO, open/high/low) to fill whole
    Q lines in ``fieldset``, per-order state to turn partial cancels/executions into ``4``/``5``
    rows, and per-market-maker state for legacy ``Z``/``2`` (6.1).  A quote pair becomes one Q when
    its FLAG_LAST event arrives (or before the next trade of that symbol).  Events that the chosen
    protocol cannot express come back as problems, never silently dropped.
    """

    def __init__(self, symbols: NameTable, mmids: NameTable | None = None, protocol: str = "6.2",
                 fieldset: Fieldset = DEFAULT_FIELDSET, decimals: int = 4) -> None:
        self.symbols = symbols
        self.mmids = mmids if mmids is not None else NameTable(base=MMID_BASE)
        self.protocol = normalize_protocol(protocol)
        self.fieldset = fieldset
        self.decimals = decimals
        self.l1: dict[int, _L1State] = {}
        self.orders: dict[tuple[int, int], list] = {}  # (symbol, order id) -> [side, price, size]
        self.legacy: dict[tuple[int, str], list] = {}  # (symbol, mmid) -> [bid, bsz, btime, ask, asz, atime]

    def _q(self, sym: str, st: _L1State, contents: str) -> str:
        vals = {
            "Symbol": sym, "Most Recent Trade": st.last, "Most Recent Trade Size": st.last_size,
            "Most Recent Trade Time": st.last_time, "Most Recent Trade Market Center": st.last_mc,
            "Most Recent Trade Date": st.last_date, "Most Recent Trade Conditions": st.last_conds,
            "Most Recent Trade Aggressor": st.aggressor, "TickID": st.tick_id, "Total Volume": st.volume,
            "Number of Trades Today": st.trades, "Bid": st.bid, "Bid Size": st.bid_size,
            "Bid Time": st.bid_time, "Ask": st.ask, "Ask Size": st.ask_size, "Ask Time": st.ask_time,
            "Open": st.open, "High": st.high, "Low": st.low, "Message Contents": contents or None,
        }
        upd = make_update("Q", self.fieldset, {k: v for k, v in vals.items() if k in self.fieldset})
        return format_update(upd, self.decimals)

    def _flush(self, sym: str, st: _L1State, out: list[str]) -> None:
        if st.pending:
            out.append(self._q(sym, st, st.pending))
            st.pending = ""

    def lines(self, events: np.ndarray) -> tuple[list[str], list[ParseError]]:
        out: list[str] = []
        problems: list[ParseError] = []
        for e in events:
            kind = int(e["kind"])
            sym = self.symbols.name(int(e["symbol"]))
            date, tod = ns_to_et(int(e["ts_event"]))
            if kind == KIND_TRADE:
                self._trade(e, sym, date, tod, out)
            elif kind == KIND_QUOTE:
                self._quote(e, sym, date, tod, out)
            elif kind == KIND_ORDER:
                self._order(e, sym, date, tod, out, problems)
            elif kind == KIND_DEPTH:
                self._depth(e, sym, date, tod, out, problems)
            elif kind == KIND_CLEAR:
                side = int(e["side"])
                for s in ("B", "A"):
                    if side == 0 or _side(s) == side:
                        out.append(format_clear_depth(ClearDepth(sym, s)))
            else:
                problems.append(ParseError("kind", "not_representable", f"{sym}: event kind {kind} has no "
                                           "IQFeed message"))
        return out, problems

    def _trade(self, e: Any, sym: str, date: int, tod: int, out: list[str]) -> None:
        bits, venue, price, size = int(e["conditions"]), int(e["venue"]), int(e["price"]), int(e["size"])
        action = int(e["action"])
        if action in (ACTION_ADD, ACTION_DELETE) and bits & COND_CANCEL_CORRECTION:
            bits &= ~COND_CANCEL_CORRECTION
            if action == ACTION_ADD:
                kind, (ttype, conds), day, at = "I", wire_conditions(bits, venue), date, tod
            else:  # a delete names the print by tick id, price, size and market center only (real lines)
                kind, ttype, conds, day, at = "X", "", "", None, None
            out.append(format_correction(TradeCorrection(
                sym, kind, ttype, day, at, price, size, int(e["seq"]) or None, conds, venue or None),
                self.decimals))
            return
        st = self.l1.setdefault(int(e["symbol"]), _L1State())
        self._flush(sym, st, out)
        ttype, conds = wire_conditions(bits, venue)
        contents = ttype
        if ttype == "C":
            if st.open is None:
                st.open = price
                contents += "o"
            if st.high is None or price > st.high:
                st.high = price
                contents += "h"
            if st.low is None or price < st.low:
                st.low = price
                contents += "l"
        st.volume += size
        st.trades += 1
        contents += "v"
        side = int(e["side"])
        st.last, st.last_size, st.last_time, st.last_date, st.last_mc = price, size, tod, date, venue or None
        st.last_conds = conds or None
        st.tick_id = int(e["seq"]) or None
        st.aggressor = 1 if side == SIDE_BID else 2 if side == SIDE_ASK else 0
        out.append(self._q(sym, st, contents))

    def _quote(self, e: Any, sym: str, date: int, tod: int, out: list[str]) -> None:
        side, venue = int(e["side"]), int(e["venue"])
        price, size = int(e["price"]) or None, int(e["size"])
        if venue:
            key = (int(e["symbol"]), f"R{venue}")
            s = self.legacy.setdefault(key, [None, None, None, None, None, None])
            if side == SIDE_BID:
                s[0:3] = [price, size, tod]
            else:
                s[3:6] = [price, size, tod]
            if int(e["flags"]) & FLAG_LAST:
                out.append(format_regional(Regional(sym, "", s[0], s[1], s[2], s[3], s[4], s[5], None, None,
                                                    venue), self.decimals))
            return
        st = self.l1.setdefault(int(e["symbol"]), _L1State())
        code = "b" if side == SIDE_BID else "a"
        if code in st.pending:
            self._flush(sym, st, out)
        if side == SIDE_BID:
            st.bid, st.bid_size, st.bid_time = price, size, tod
        else:
            st.ask, st.ask_size, st.ask_time = price, size, tod
        st.pending = "".join(c for c in "ba" if c in st.pending + code)
        if int(e["flags"]) & FLAG_LAST:
            self._flush(sym, st, out)

    def _order(
        self, e: Any, sym: str, date: int, tod: int, out: list[str], problems: list[ParseError]
    ) -> None:
        if self.protocol != "6.2":
            problems.append(ParseError("kind", "not_representable",
                                       f"{sym}: market-by-order needs protocol 6.2"))
            return
        key = (int(e["symbol"]), int(e["order_id"]))
        action, side = int(e["action"]), "B" if int(e["side"]) == SIDE_BID else "A"
        price, size = int(e["price"]), int(e["size"])
        if action == ACTION_ADD:
            self.orders[key] = [side, price, size]
            t = "6" if int(e["flags"]) & FLAG_SNAPSHOT else "3"
            out.append(format_order(L2Order(t, sym, key[1], "", side, price, size, None, 4, tod, date)))
            return
        got = self.orders.get(key)
        if got is None:
            problems.append(ParseError("order_id", "unknown_order", f"{sym}: order {key[1]} not seen"))
            return
        if action == ACTION_MODIFY:
            got[1], got[2] = (price or got[1]), size
        elif action in (ACTION_CANCEL, ACTION_EXECUTE):
            got[2] -= size
        if action == ACTION_DELETE or got[2] <= 0:
            del self.orders[key]
            out.append(format_order(L2Order("5", sym, key[1], "", got[0], time_us=tod, date=date)))
        else:
            upd = L2Order("4", sym, key[1], "", got[0], got[1], got[2], None, 4, tod, date)
            out.append(format_order(upd))

    def _depth(
        self, e: Any, sym: str, date: int, tod: int, out: list[str], problems: list[ParseError]
    ) -> None:
        venue, level, side_i = int(e["venue"]), int(e["level"]), int(e["side"])
        side = "B" if side_i == SIDE_BID else "A"
        price, size, action = int(e["price"]), int(e["size"]), int(e["action"])
        delete = action == ACTION_DELETE or size == 0
        snap = bool(int(e["flags"]) & FLAG_SNAPSHOT)
        if venue >= MMID_BASE:
            mmid = self.mmids.name(venue)
        elif level >= 0:
            mmid = f"MD{level + 1:02d}"
        else:
            mmid = ""
        if self.protocol == "6.2":
            if mmid:
                t = "5" if delete else "6" if snap else "4"
                msg = L2Order(t, sym, None, mmid, side, time_us=tod, date=date) if delete else \
                    L2Order(t, sym, None, mmid, side, price, size, None, 4, tod, date)
                out.append(format_order(msg))
            else:
                t = "9" if delete else "7" if snap else "8"
                msg2 = L2PriceLevel(t, sym, side, price, time_us=tod, date=date, precision=4) if delete else \
                    L2PriceLevel(t, sym, side, price, size, None, 4, tod, date)
                out.append(format_price_level(msg2))
            return
        if not mmid:
            problems.append(ParseError("kind", "not_representable",
                                       f"{sym}: price-level depth needs protocol 6.2"))
            return
        st = self.legacy.setdefault((int(e["symbol"]), mmid), [None, None, None, None, None, None])
        vals = [None if delete else price, None if delete else size, tod]
        if side == "B":
            st[0:3] = vals
        else:
            st[3:6] = vals
        out.append(format_legacy(L2LegacyMM(
            "Z" if snap else "2", sym, mmid, st[0], st[3], st[1], st[4], st[2], date, "",
            st[5], st[0] is not None, st[3] is not None, bool(int(e["flags"]) & FLAG_LAST))))
