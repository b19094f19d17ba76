"""IQFeed lookup port (9100): history requests and their single-line responses; derivative bars (9400).

Response shape (reference §5.2): ``[RequestID,][LH,]<data>,`` where protocol 6.2 inserts the literal
``LH`` and 6.1 does not; ``[RequestID,]!ENDMSG!,`` ends every response and ``[RequestID,]E,<text>,``
reports an error (always followed by ``!ENDMSG!``).  These functions handle one line at a time for the
client and the replay server; bulk history files go through ``quantedge.feeds.iqfeed.history``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dc_fields

from quantedge.feeds.iqfeed.protocol_system import (
    CRLF,
    BadField,
    drop_trailing_empty,
    et_to_ns,
    format_date_iso,
    format_int,
    format_price,
    need,
    normalize_protocol,
    ns_to_et,
    parse_date_compact,
    parse_date_iso,
    parse_error_text,
    parse_int,
    parse_price,
    parse_time_us,
)

#: Data-type markers of 6.2 lookup rows, plus the error / end markers.  Request ids may not be one of
#: these (or contain a comma): otherwise responses would be ambiguous.
RESERVED_REQUEST_IDS = frozenset({"LH", "LS", "LC", "LM", "E", "S", "!ENDMSG!"})
END_MSG = "!ENDMSG!"
NO_DATA = "!NO_DATA!"
SYNTAX_ERROR = "!SYNTAX_ERROR!"


def check_request_id(rid: str | None) -> None:
    if rid is None:
        return
    if not rid or "," in rid or "\r" in rid or "\n" in rid or rid in RESERVED_REQUEST_IDS:
        raise ValueError(f"request id {rid!r} is empty, holds a comma/newline, or is a reserved marker")


# --- requests (reference §5.1) -------------------------------------------------------------------

#: Parameter layout after the command name, per history command.
REQUEST_LAYOUTS: dict[str, tuple[str, ...]] = {
    "HTX": ("symbol", "max_datapoints", "direction", "request_id", "datapoints_per_send"),
    "HTD": ("symbol", "days", "max_datapoints", "begin_filter", "end_filter", "direction", "request_id",
            "datapoints_per_send"),
    "HTT": ("symbol", "begin", "end", "max_datapoints", "begin_filter", "end_filter", "direction",
            "request_id", "datapoints_per_send"),
    "HIX": ("symbol", "interval", "max_datapoints", "direction", "request_id", "datapoints_per_send",
            "interval_type", "label_at_beginning"),
    "HID": ("symbol", "interval", "days", "max_datapoints", "begin_filter", "end_filter", "direction",
            "request_id", "datapoints_per_send", "interval_type", "label_at_beginning"),
    "HIT": ("symbol", "interval", "begin", "end", "max_datapoints", "begin_filter", "end_filter",
            "direction", "request_id", "datapoints_per_send", "interval_type", "label_at_beginning"),
    "HDX": ("symbol", "max_datapoints", "direction", "request_id", "datapoints_per_send", "include_partial"),
    "HDT": ("symbol", "begin_date", "end_date", "max_datapoints", "direction", "request_id",
            "datapoints_per_send", "include_partial"),
    "HWX": ("symbol", "max_datapoints", "direction", "request_id", "datapoints_per_send", "include_partial"),
    "HMX": ("symbol", "max_datapoints", "direction", "request_id", "datapoints_per_send", "include_partial"),
}  # fmt: skip

#: Which response row each request produces.
REQUEST_ROW_KIND = {"HTX": "tick", "HTD": "tick", "HTT": "tick", "HIX": "interval", "HID": "interval",
                    "HIT": "interval", "HDX": "daily", "HDT": "daily", "HWX": "daily", "HMX": "daily"}


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """One history request; parameters a command does not take stay None (empty on the wire).

    Text parameters keep IQFeed's forms: ``begin``/``end`` ``YYYYMMDD HHMMSS`` (ET),
    ``begin_filter``/``end_filter`` ``HHMMSS`` (ET), ``begin_date``/``end_date`` ``YYYYMMDD``.
    """

    command: str
    symbol: str
    interval: int | None = None
    days: int | None = None
    max_datapoints: int | None = None
    begin: str | None = None
    end: str | None = None
    begin_filter: str | None = None
    end_filter: str | None = None
    begin_date: str | None = None
    end_date: str | None = None
    direction: int | None = None  # 0 newest first (default), 1 oldest first
    request_id: str | None = None
    datapoints_per_send: int | None = None
    interval_type: str | None = None  # s seconds (default), v volume, t ticks
    label_at_beginning: int | None = None  # 0 bar time = end (default), 1 = start
    include_partial: int | None = None  # daily/weekly/monthly: 1 include today's partial bar

    @property
    def row_kind(self) -> str:
        return REQUEST_ROW_KIND[self.command]

    def begin_ns(self) -> int | None:
        """``begin`` as ns UTC (ET wall time)."""
        return _datetime_param_ns(self.begin, "begin") if self.begin else None

    def end_ns(self) -> int | None:
        return _datetime_param_ns(self.end, "end") if self.end else None


_INT_PARAMS = {"interval", "days", "max_datapoints", "direction", "datapoints_per_send",
               "label_at_beginning", "include_partial"}  # fmt: skip
_PARAM_FIELDS = {f.name for f in dc_fields(HistoryRequest)} - {"command"}


def _datetime_param_ns(s: str, name: str) -> int:
    date = parse_date_compact(s[:8], name)
    tod = _hhmmss(s[9:], name)
    assert date is not None
    return et_to_ns(date, tod)


def _hhmmss(s: str, name: str) -> int:
    if len(s) == 6 and s.isdecimal():
        h, m, sec = int(s[0:2]), int(s[2:4]), int(s[4:6])
        if h < 24 and m < 60 and sec < 61:
            return ((h * 60 + m) * 60 + sec) * 1_000_000
    raise BadField(name, "bad_time", f"expected HHMMSS, got {s!r}")


def _check_param(name: str, s: str) -> object:
    """Validate one request parameter's text and return its typed value."""
    if name in _INT_PARAMS:
        v = parse_int(s, name)
        if name in ("direction", "label_at_beginning", "include_partial") and v not in (0, 1):
            raise BadField(name, "bad_value", f"expected 0 or 1, got {s!r}")
        if v is not None and v < 0:
            raise BadField(name, "out_of_range", repr(s))
        return v
    if name in ("begin", "end"):
        if len(s) != 15 or s[8] != " ":
            raise BadField(name, "bad_time", f"expected YYYYMMDD HHMMSS, got {s!r}")
        _datetime_param_ns(s, name)
    elif name in ("begin_filter", "end_filter"):
        _hhmmss(s, name)
    elif name in ("begin_date", "end_date"):
        parse_date_compact(s, name)
    elif name == "interval_type" and s not in ("s", "v", "t"):
        raise BadField(name, "bad_value", f"expected s, v or t, got {s!r}")
    elif name == "request_id" and s in RESERVED_REQUEST_IDS:
        raise BadField(name, "bad_value", f"{s!r} is a reserved marker")
    return s


def parse_history_request(fields: list[str]) -> HistoryRequest:
    cmd = fields[0]
    layout = REQUEST_LAYOUTS[cmd]
    if len(fields) - 1 > len(layout):
        raise BadField("", "too_many_fields", f"{cmd} takes at most {len(layout)} parameters")
    if len(fields) < 2 or not fields[1]:
        raise BadField("symbol", "missing_field", f"{cmd} without a symbol")
    kw: dict[str, object] = {}
    for name, s in zip(layout, fields[1:], strict=False):
        if s:
            kw[name] = _check_param(name, s)
    return HistoryRequest(cmd, **kw)  # type: ignore[arg-type]


def format_history_request(req: HistoryRequest) -> str:
    """Request line; trailing empty optional parameters are omitted (IQConnect accepts that)."""
    layout = REQUEST_LAYOUTS.get(req.command)
    if layout is None:
        raise ValueError(f"unknown history command {req.command!r}")
    for name in _PARAM_FIELDS - set(layout):
        if getattr(req, name) is not None:
            raise ValueError(f"{req.command} takes no {name}")
    check_request_id(req.request_id)
    vals = ["" if getattr(req, n) is None else str(getattr(req, n)) for n in layout]
    for n, v in zip(layout, vals, strict=True):
        if v:
            try:
                _check_param(n, v)
            except BadField as e:
                raise ValueError(f"{req.command} {n}: {e.reason} {e.detail}") from None
    while vals and not vals[-1]:
        vals.pop()
    return ",".join((req.command, *vals)) + CRLF


# --- response rows (reference §5.2) --------------------------------------------------------------

TICK_FIELDS = ("Timestamp", "Last", "Last Size", "Total Volume", "Bid", "Ask", "TickID", "Basis For Last",
               "Trade Market Center", "Trade Conditions", "Trade Aggressor", "Day Code")
INTERVAL_FIELDS = ("Timestamp", "High", "Low", "Open", "Close", "Total Volume", "Period Volume",
                   "Number of Trades")
DAILY_FIELDS = ("Date", "High", "Low", "Open", "Close", "Period Volume", "Open Interest")


@dataclass(frozen=True, slots=True)
class LookupTickRow:
    """HTX/HTD/HTT row: one trade with the NBBO at that moment."""

    request_id: str | None
    ts: int  # ns UTC
    last: int | None
    last_size: int | None
    total_volume: int | None
    bid: int | None
    ask: int | None
    tick_id: int | None
    basis: str  # C / E / O / S
    market_center: int | None
    conditions: str  # hex codes
    aggressor: int | None = None  # 0 unknown, 1 buy, 2 sell, 3 neither (absent before 6.1)
    day_code: int | None = None


@dataclass(frozen=True, slots=True)
class LookupIntervalRow:
    """HIX/HID/HIT row (note the High, Low, Open, Close order on the wire)."""

    request_id: str | None
    ts: int  # ns UTC of the bar label
    high: int | None
    low: int | None
    open: int | None
    close: int | None
    total_volume: int | None
    period_volume: int | None
    num_trades: int | None


@dataclass(frozen=True, slots=True)
class LookupDailyRow:
    """HDX/HDT/HWX/HMX row."""

    request_id: str | None
    date: int  # YYYYMMDD (ET)
    high: int | None
    low: int | None
    open: int | None
    close: int | None
    period_volume: int | None
    open_interest: int | None


@dataclass(frozen=True, slots=True)
class LookupOtherRow:
    """A 6.2 lookup row of another data type (``LS`` symbols, ``LC`` chains, ``LM`` market summary),
    kept verbatim."""

    request_id: str | None
    data_type: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndMsg:
    """``[RequestID,]!ENDMSG!,``: end of one response."""

    request_id: str | None


@dataclass(frozen=True, slots=True)
class LookupErrorLine:
    """``[RequestID,]E,<text>,`` (e.g. ``!NO_DATA!``); always followed by an :class:`EndMsg`."""

    request_id: str | None
    text: str


def _looks_like_timestamp(s: str) -> bool:
    return len(s) >= 10 and s[4] == "-" and s[7] == "-" and s[:4].isdecimal()


def _parse_ts(s: str) -> int:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` ET -> ns UTC."""
    if len(s) < 19 or s[10] != " ":
        raise BadField("Timestamp", "bad_time", f"expected YYYY-MM-DD HH:MM:SS[.ffffff], got {s!r}")
    date = parse_date_iso(s[:10], "Timestamp")
    tod = parse_time_us(s[11:], "Timestamp")
    assert date is not None and tod is not None
    return et_to_ns(date, tod)


def _no_extra(data: list[str], n: int) -> None:
    """Extra *empty* fields are tolerated (reference §0); extra data is an error, not silently lost."""
    if any(data[n:]):
        raise BadField("", "too_many_fields", f"expected {n} data fields, got {len(data)}")


def parse_lookup(fields: list[str], line: str) -> object:
    """One lookup-port line: tick/interval/daily row, EndMsg, LookupError or another 6.2 data row.

    The request id is recognised by position: the markers ``LH``/``E``/``!ENDMSG!`` sit in field 0
    (no id) or field 1 (id in field 0); 6.1 rows (no ``LH``) start with their timestamp.
    """
    f0 = fields[0]
    f1 = fields[1] if len(fields) > 1 else None
    if f1 is not None and (f1 in RESERVED_REQUEST_IDS or f1 == END_MSG) and f0 not in ("E", END_MSG):
        rid: str | None = f0
        rest = fields[1:]
        body = line[len(f0) + 1 :]
    elif f0 in RESERVED_REQUEST_IDS or _looks_like_timestamp(f0):
        rid = None
        rest = fields
        body = line
    else:
        rid = f0
        rest = fields[1:]
        body = line[len(f0) + 1 :]
    if not rest:
        raise BadField("", "missing_field", "request id without data")
    marker = rest[0]
    if marker == END_MSG:
        return EndMsg(rid)
    if marker == "E":
        return LookupErrorLine(rid, parse_error_text(body[2:]))
    if marker in ("LS", "LC", "LM"):
        return LookupOtherRow(rid, marker, tuple(drop_trailing_empty(rest[1:], line)))
    if marker == "LH":
        rest = rest[1:]
    data = drop_trailing_empty(rest[:], line)
    if not data:
        raise BadField("Timestamp", "missing_field", "empty lookup row")
    stamp = data[0]
    n = len(stamp)
    if n == 10:
        need(data, 7, DAILY_FIELDS)
        _no_extra(data, 7)
        date = parse_date_iso(stamp, "Date")
        assert date is not None
        return LookupDailyRow(rid, date, parse_price(data[1], "High"), parse_price(data[2], "Low"),
                              parse_price(data[3], "Open"), parse_price(data[4], "Close"),
                              parse_int(data[5], "Period Volume"), parse_int(data[6], "Open Interest"))
    if n == 19:
        need(data, 8, INTERVAL_FIELDS)
        _no_extra(data, 8)
        return LookupIntervalRow(rid, _parse_ts(stamp), parse_price(data[1], "High"),
                                 parse_price(data[2], "Low"), parse_price(data[3], "Open"),
                                 parse_price(data[4], "Close"), parse_int(data[5], "Total Volume"),
                                 parse_int(data[6], "Period Volume"), parse_int(data[7], "Number of Trades"))
    if n > 20 and stamp[19] == ".":
        need(data, 10, TICK_FIELDS)
        _no_extra(data, 12)
        basis = data[7]
        if basis not in ("C", "E", "O", "S", ""):
            raise BadField("Basis For Last", "bad_value", f"expected C, E, O or S, got {basis!r}")
        conds = data[9]
        if conds and (len(conds) % 2 or not all(c in "0123456789ABCDEFabcdef" for c in conds)):
            raise BadField("Trade Conditions", "bad_value", f"expected hex code pairs, got {conds!r}")
        return LookupTickRow(
            rid, _parse_ts(stamp), parse_price(data[1], "Last"), parse_int(data[2], "Last Size"),
            parse_int(data[3], "Total Volume"), parse_price(data[4], "Bid"), parse_price(data[5], "Ask"),
            parse_int(data[6], "TickID"), basis, parse_int(data[8], "Trade Market Center"), conds,
            parse_int(data[10], "Trade Aggressor") if len(data) > 10 else None,
            parse_int(data[11], "Day Code") if len(data) > 11 else None,
        )
    raise BadField("Timestamp", "bad_time", f"not a tick, interval or daily timestamp: {stamp!r}")


def _prefix(request_id: str | None, protocol: str, data: bool) -> str:
    pre = "" if request_id is None else request_id + ","
    if data and normalize_protocol(protocol) == "6.2":
        pre += "LH,"
    return pre


def _stamp(ts: int, frac: bool) -> str:
    date, tod = ns_to_et(ts)
    sec, us = divmod(tod, 1_000_000)
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    base = f"{format_date_iso(date)} {h:02d}:{m:02d}:{s:02d}"
    return f"{base}.{us:06d}" if frac else base


def format_tick_row(row: LookupTickRow, protocol: str = "6.2", decimals: int = 4) -> str:
    """Tick row; 6.1 and 6.2 both carry aggressor and day code (empty when None)."""
    p = decimals
    return _prefix(row.request_id, protocol, True) + ",".join((
        _stamp(row.ts, True), format_price(row.last, p), format_int(row.last_size),
        format_int(row.total_volume), format_price(row.bid, p), format_price(row.ask, p),
        format_int(row.tick_id), row.basis, format_int(row.market_center), row.conditions,
        format_int(row.aggressor), format_int(row.day_code),
    )) + "," + CRLF  # fmt: skip


def format_interval_row(row: LookupIntervalRow, protocol: str = "6.2", decimals: int = 4) -> str:
    p = decimals
    return _prefix(row.request_id, protocol, True) + ",".join((
        _stamp(row.ts, False), format_price(row.high, p), format_price(row.low, p),
        format_price(row.open, p), format_price(row.close, p), format_int(row.total_volume),
        format_int(row.period_volume), format_int(row.num_trades),
    )) + "," + CRLF  # fmt: skip


def format_daily_row(row: LookupDailyRow, protocol: str = "6.2", decimals: int = 4) -> str:
    p = decimals
    return _prefix(row.request_id, protocol, True) + ",".join((
        format_date_iso(row.date), format_price(row.high, p), format_price(row.low, p),
        format_price(row.open, p), format_price(row.close, p), format_int(row.period_volume),
        format_int(row.open_interest),
    )) + "," + CRLF  # fmt: skip


def format_other_row(row: LookupOtherRow, protocol: str = "6.2") -> str:
    pre = "" if row.request_id is None else row.request_id + ","
    return pre + ",".join((row.data_type, *row.fields)) + "," + CRLF


def format_end(msg: EndMsg) -> str:
    return ("" if msg.request_id is None else msg.request_id + ",") + END_MSG + "," + CRLF


def format_lookup_error(msg: LookupErrorLine) -> str:
    """Error line only; a response must still end with :func:`format_end` (see :func:`error_response`)."""
    return ("" if msg.request_id is None else msg.request_id + ",") + f"E,{msg.text},{CRLF}"


def error_response(request_id: str | None, text: str) -> str:
    """The two lines IQConnect sends for a failed request: the error, then ``!ENDMSG!``."""
    return format_lookup_error(LookupErrorLine(request_id, text)) + format_end(EndMsg(request_id))


# --- derivative port (9400) interval bars (reference §9) ------------------------------------------------

BAR_TYPES = ("BH", "BU", "BC")
BAR_FIELDS = ("Symbol", "Timestamp", "Open", "High", "Low", "Last", "Cumulative Volume",
              "Interval Volume", "Number of Trades")


@dataclass(frozen=True, slots=True)
class DerivativeBar:
    """``[ReqID,]BH|BU|BC,<Symbol>,<YYYY-MM-DD HH:MM:SS>,O,H,L,Last,CumVol,IntVol,Trades,``.

    BH = completed bar from backfill, BC = completed live bar, BU = update of the forming bar.
    """

    request_id: str | None
    bar_type: str
    symbol: str
    ts: int  # ns UTC
    open: int | None
    high: int | None
    low: int | None
    last: int | None
    cumulative_volume: int | None
    interval_volume: int | None
    num_trades: int | None


def parse_derivative_bar(fields: list[str], line: str) -> DerivativeBar:
    if fields[0] in BAR_TYPES and len(fields) > 2 and _looks_like_timestamp(fields[2]):
        rid, f = None, fields
    else:
        rid, f = fields[0], fields[1:]
    f = drop_trailing_empty(f[:], line)
    if not f or f[0] not in BAR_TYPES:
        raise BadField("type", "bad_value", "expected BH, BU or BC")
    need(f[1:], 9, BAR_FIELDS)
    if not f[1]:
        raise BadField("Symbol", "missing_field", "bar without a symbol")
    if len(f[2]) != 19:
        raise BadField("Timestamp", "bad_time", f"expected YYYY-MM-DD HH:MM:SS, got {f[2]!r}")
    return DerivativeBar(rid, f[0], f[1], _parse_ts(f[2]), parse_price(f[3], "Open"),
                         parse_price(f[4], "High"), parse_price(f[5], "Low"), parse_price(f[6], "Last"),
                         parse_int(f[7], "Cumulative Volume"), parse_int(f[8], "Interval Volume"),
                         parse_int(f[9], "Number of Trades"))


def format_derivative_bar(bar: DerivativeBar, decimals: int = 4) -> str:
    p = decimals
    pre = "" if bar.request_id is None else bar.request_id + ","
    return pre + ",".join((
        bar.bar_type, bar.symbol, _stamp(bar.ts, False), format_price(bar.open, p),
        format_price(bar.high, p), format_price(bar.low, p), format_price(bar.last, p),
        format_int(bar.cumulative_volume), format_int(bar.interval_volume), format_int(bar.num_trades),
    )) + "," + CRLF  # fmt: skip
