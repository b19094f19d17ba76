"""IQFeed Level 1 (port 5009): Q/P updates in a selectable fieldset, F, R, C, N, and L1 commands.

``Q``/``P`` lines are positional against the connection's current fieldset (reference §3.2), so a
:class:`Fieldset` compiles one specialised parser per field list: the common case (every field
well-formed) runs as straight-line code with no per-field dispatch, and only a line that fails it
is re-walked field by field to name the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from quantedge.feeds.iqfeed.protocol_system import (
    CRLF,
    BadField,
    drop_trailing_empty,
    format_date_us,
    format_price,
    format_time_us,
    need,
    parse_date_us,
    parse_int,
    parse_price,
    parse_time_us,
)

# --- field names and types (reference §3.2, §3.3) -------------------------------------------------

#: The 70 selectable update fields, in the server's ``S,UPDATE FIELDNAMES`` order (protocol 6.2).
ALL_FIELDS: tuple[str, ...] = (
    "Symbol", "Exchange ID", "Last", "Change", "Percent Change", "Total Volume", "High", "Low",
    "Bid", "Ask", "Bid Size", "Ask Size", "Tick", "Range", "Open Interest", "Open", "Close",
    "Spread", "Settle", "Delay", "Restricted Code", "Net Asset Value", "Average Maturity",
    "7 Day Yield", "Extended Trading Change", "Extended Trading Difference", "Price-Earnings Ratio",
    "Percent Off Average Volume", "Bid Change", "Ask Change", "Change From Open", "Market Open",
    "Volatility", "Market Capitalization", "Fraction Display Code", "Decimal Precision",
    "Days to Expiration", "Previous Day Volume", "Open Range 1", "Close Range 1", "Open Range 2",
    "Close Range 2", "Number of Trades Today", "VWAP", "TickID", "Financial Status Indicator",
    "Settlement Date", "Bid Market Center", "Ask Market Center", "Available Regions", "Last Size",
    "Last Time", "Last Market Center", "Most Recent Trade", "Most Recent Trade Size",
    "Most Recent Trade Time", "Most Recent Trade Conditions", "Most Recent Trade Market Center",
    "Extended Trade", "Extended Trade Size", "Extended Trade Time", "Extended Trade Market Center",
    "Message Contents", "Ask Time", "Bid Time", "Last Date", "Extended Trade Date",
    "Most Recent Trade Date", "Most Recent Trade Aggressor", "Most Recent Trade Day Code",
)  # fmt: skip

#: The default Q/P fieldset of protocol 5.x-6.2 (what IQConnect uses before SELECT UPDATE FIELDS).
DEFAULT_FIELDS: tuple[str, ...] = (
    "Symbol", "Most Recent Trade", "Most Recent Trade Size", "Most Recent Trade Time",
    "Most Recent Trade Market Center", "Total Volume", "Bid", "Bid Size", "Ask", "Ask Size",
    "Open", "High", "Low", "Close", "Message Contents", "Most Recent Trade Conditions",
)  # fmt: skip

_PRICE_FIELDS = {
    "Last", "Change", "High", "Low", "Bid", "Ask", "Range", "Open", "Close", "Spread", "Settle",
    "Net Asset Value", "Extended Trading Change", "Extended Trading Difference", "Bid Change",
    "Ask Change", "Change From Open", "Open Range 1", "Close Range 1", "Open Range 2",
    "Close Range 2", "VWAP", "Most Recent Trade", "Extended Trade",
}  # fmt: skip
_INT_FIELDS = {
    "Total Volume", "Bid Size", "Ask Size", "Tick", "Open Interest", "Delay", "Market Open",
    "Fraction Display Code", "Decimal Precision", "Days to Expiration", "Previous Day Volume",
    "Number of Trades Today", "TickID", "Bid Market Center", "Ask Market Center", "Last Size",
    "Last Market Center", "Most Recent Trade Size", "Most Recent Trade Market Center",
    "Extended Trade Size", "Extended Trade Market Center", "Most Recent Trade Aggressor",
    "Most Recent Trade Day Code",
}  # fmt: skip
_TIME_FIELDS = {"Last Time", "Most Recent Trade Time", "Extended Trade Time", "Ask Time", "Bid Time"}
_DATE_FIELDS = {"Last Date", "Extended Trade Date", "Most Recent Trade Date"}

#: Value type per field: price (int $0.0001), int, time (µs after ET midnight), date (YYYYMMDD),
#: or str (kept verbatim: symbols, hex codes, flags and decimal statistics such as Percent Change).
FIELD_TYPES: dict[str, str] = {
    n: "price" if n in _PRICE_FIELDS else "int" if n in _INT_FIELDS else "time" if n in _TIME_FIELDS
    else "date" if n in _DATE_FIELDS else "str"
    for n in ALL_FIELDS
}  # fmt: skip
assert len(ALL_FIELDS) == 70 and len(set(ALL_FIELDS)) == 70

_PARSERS = {"price": parse_price, "int": parse_int, "time": parse_time_us, "date": parse_date_us}


def _fast_time(s: str) -> int:
    """The hot path of :func:`parse_time_us` for ``HH:MM:SS.ffffff``; ValueError on anything else."""
    if len(s) != 15 or s[2] != ":" or s[5] != ":" or s[8] != ".":
        raise ValueError(s)
    d = s.replace(":", "").replace(".", "")
    if not d.isdecimal():
        raise ValueError(s)
    v = int(d)  # HHMMSSffffff
    hms, f = divmod(v, 1_000_000)
    h, ms = divmod(hms, 10_000)
    m, sec = divmod(ms, 100)
    if h > 23 or m > 59 or sec > 60:
        raise ValueError(s)
    return ((h * 60 + m) * 60 + sec) * 1_000_000 + f


def _bad() -> int:
    raise ValueError("out of range")


def _fast_date(s: str) -> int:
    try:
        got = parse_date_us(s, "")
    except BadField:
        raise ValueError(s) from None  # the slow path re-parses and names the field
    return got  # type: ignore[return-value]


def _compile(names: tuple[str, ...]):  # noqa: ANN202 - returns a generated function
    """Straight-line converter for one fieldset (fields[1..n] -> values); any bad field raises.

    Prices are inlined as ``round(float(x) * 10000)`` with a range check (nan/inf raise too), so a
    well-formed line costs one C-level conversion per field and no per-field Python dispatch.
    """
    parts = []
    for i, name in enumerate(names):
        kind = FIELD_TYPES[name]
        a = f"f[{i + 1}]"
        if kind == "str":
            parts.append(f"{a} or None")
        elif kind == "price":
            parts.append(f"((v if -_L < (v := _r(_fl({a}) * 10000)) < _L else _bad()) if {a} else None)")
        elif kind == "int":
            parts.append(f"((v if -_I < (v := _int({a})) < _I else _bad()) if {a} else None)")
        elif kind == "time":
            parts.append(f"(_t({a}) if {a} else None)")
        else:
            parts.append(f"(_d({a}) if {a} else None)")
    src = "def _conv(f):\n    return (" + ", ".join(parts) + ",)\n"
    ns: dict[str, Any] = {"_t": _fast_time, "_d": _fast_date, "_r": round, "_fl": float, "_int": int,
                          "_bad": _bad, "_L": 10**14, "_I": 1 << 62}
    exec(compile(src, f"<iqfeed fieldset {len(names)}>", "exec"), ns)  # noqa: S102 - generated code
    return ns["_conv"]


@dataclass(frozen=True, slots=True)
class Fieldset:
    """The Q/P field list of one connection (``S,SELECT UPDATE FIELDS`` / ``S,CURRENT UPDATE FIELDNAMES``).

    ``Symbol`` is always first: omitted, it is added; placed elsewhere, it is moved (reference §3.1).
    """

    names: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    converter: Any = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        unknown = [n for n in names if n not in FIELD_TYPES]
        if unknown:
            raise ValueError(f"unknown IQFeed update field(s): {', '.join(map(repr, unknown))}")
        if len(set(names)) != len(names):
            raise ValueError("duplicate update field names")
        names = ("Symbol",) + tuple(n for n in names if n != "Symbol")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "index", {n: i for i, n in enumerate(names)})
        object.__setattr__(self, "converter", _compile_cached(names))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def select_command(self) -> str:
        """``S,SELECT UPDATE FIELDS,...`` for this fieldset (Symbol included first, as pyiqfeed sends)."""
        return "S,SELECT UPDATE FIELDS," + ",".join(self.names) + CRLF

    def current_fieldnames_line(self) -> str:
        """The server's reply to SELECT UPDATE FIELDS (what a replay server sends)."""
        return "S,CURRENT UPDATE FIELDNAMES," + ",".join(self.names) + CRLF

    @classmethod
    def from_system_args(cls, args: tuple[str, ...] | list[str]) -> Fieldset:
        """From the args of ``S,CURRENT UPDATE FIELDNAMES`` / ``S,SELECT UPDATE FIELDS`` (trailing '' ok)."""
        return cls(tuple(a for a in args if a))


_compile_cached = lru_cache(maxsize=64)(_compile)

DEFAULT_FIELDSET = Fieldset(DEFAULT_FIELDS)
ALL_FIELDSET = Fieldset(ALL_FIELDS)


# --- message contents (reference §3.4) ------------------------------------------------------------

#: Message Contents characters and their meaning.
CONTENTS_CODES = {
    "C": "last-qualified trade", "E": "extended trade (Form-T)", "O": "other trade",
    "b": "bid update", "a": "ask update", "o": "open", "h": "high", "l": "low", "c": "close",
    "s": "settlement", "v": "volume update",
}  # fmt: skip


def is_trade(contents: str | None) -> bool:
    """A trade is carried iff the contents hold one of C, E, O."""
    return bool(contents) and ("C" in contents or "E" in contents or "O" in contents)  # type: ignore[operator]


def is_bid_update(contents: str | None) -> bool:
    return bool(contents) and "b" in contents  # type: ignore[operator]


def is_ask_update(contents: str | None) -> bool:
    return bool(contents) and "a" in contents  # type: ignore[operator]


def is_extended(contents: str | None) -> bool:
    """An extended-hours (Form-T) trade."""
    return bool(contents) and "E" in contents  # type: ignore[operator]


def trade_type(contents: str | None) -> str:
    """``C``/``E``/``O`` for the (at most one) trade identifier, else ``""``."""
    for c in contents or "":
        if c in "CEO":
            return c
    return ""


# --- Q / P -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class L1Update:
    """One ``Q`` (update) or ``P`` (summary) line, values typed per :data:`FIELD_TYPES`.

    ``values[i]`` belongs to ``fieldset.names[i]`` (None = empty field); ``extra`` keeps any fields
    beyond the fieldset verbatim.
    """

    msg_type: str  # "Q" or "P"
    fieldset: Fieldset
    values: tuple
    extra: tuple[str, ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        i = self.fieldset.index.get(name)
        if i is None:
            return default
        v = self.values[i]
        return default if v is None else v

    def __getitem__(self, name: str) -> Any:
        return self.values[self.fieldset.index[name]]

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.fieldset.names, self.values, strict=True))

    @property
    def symbol(self) -> str:
        return self.values[0]

    @property
    def contents(self) -> str:
        return self.get("Message Contents", "")

    @property
    def is_trade(self) -> bool:
        return is_trade(self.contents)

    @property
    def is_bid_update(self) -> bool:
        return is_bid_update(self.contents)

    @property
    def is_ask_update(self) -> bool:
        return is_ask_update(self.contents)

    @property
    def is_extended(self) -> bool:
        return is_extended(self.contents)


_new = object.__new__
_set_type = L1Update.__dict__["msg_type"].__set__
_set_fieldset = L1Update.__dict__["fieldset"].__set__
_set_values = L1Update.__dict__["values"].__set__
_set_extra = L1Update.__dict__["extra"].__set__


def make_update(msg_type: str, fieldset: Fieldset, values: Mapping[str, Any]) -> L1Update:
    """Build an update from a name -> value mapping (missing names are empty); for replay servers."""
    unknown = set(values) - set(fieldset.names)
    if unknown:
        raise ValueError(f"fields not in the fieldset: {sorted(unknown)}")
    return L1Update(msg_type, fieldset, tuple(values.get(n) for n in fieldset.names))


def _slow_fields(fields: list[str], fieldset: Fieldset) -> tuple:
    """Field-by-field conversion that names the first bad field (only runs on a failed fast path)."""
    out = []
    for i, name in enumerate(fieldset.names):
        s = fields[i + 1]
        kind = FIELD_TYPES[name]
        out.append(s or None if kind == "str" else _PARSERS[kind](s, name))
    return tuple(out)


def parse_update(fields: list[str], line: str, fieldset: Fieldset) -> L1Update:
    n = len(fieldset.names)
    if len(fields) <= n:
        need(fields, n + 1, ("type", *fieldset.names))
    if not fields[1]:
        raise BadField("Symbol", "missing_field", "empty symbol")
    try:
        values = fieldset.converter(fields)
    except (ValueError, OverflowError, TypeError):
        values = _slow_fields(fields, fieldset)
    extra = ()
    if len(fields) > n + 1:
        extra = tuple(drop_trailing_empty(fields[n + 1 :], line))
    # Direct slot stores: the frozen dataclass __init__ costs about a third of a Q line's parse.
    msg = _new(L1Update)
    _set_type(msg, fields[0])
    _set_fieldset(msg, fieldset)
    _set_values(msg, values)
    _set_extra(msg, extra)
    return msg


def _format_value(kind: str, v: Any, decimals: int) -> str:
    if v is None:
        return ""
    if kind == "price":
        return format_price(v, decimals)
    if kind == "time":
        return format_time_us(v)
    if kind == "date":
        return format_date_us(v)
    return str(v)


def format_update(msg: L1Update, decimals: int = 4) -> str:
    """``Q,...,`` / ``P,...,`` with prices at ``decimals`` places and the trailing comma."""
    names = msg.fieldset.names
    parts = [msg.msg_type]
    for name, v in zip(names, msg.values, strict=True):
        parts.append(_format_value(FIELD_TYPES[name], v, decimals))
    parts.extend(msg.extra)
    return ",".join(parts) + "," + CRLF


# --- F: fundamentals (reference §3.5) --------------------------------------------------------------

FUNDAMENTAL_FIELDS: tuple[str, ...] = (
    "Symbol", "Exchange ID", "PE", "Average Volume", "52 Week High", "52 Week Low",
    "Calendar Year High", "Calendar Year Low", "Dividend Yield", "Dividend Amount", "Dividend Rate",
    "Pay Date", "Ex-dividend Date", "Current Year EPS", "Next Year EPS", "Five-year Growth Percentage",
    "Fiscal Year End", "Company Name", "Root Option Symbol", "Percent Held By Institutions", "Beta",
    "Leaps", "Current Assets", "Current Liabilities", "Balance Sheet Date", "Long-term Debt",
    "Common Shares Outstanding", "Split Factor 1", "Split Factor 2", "Format Code", "Precision", "SIC",
    "Historical Volatility", "Security Type", "Listed Market", "52 Week High Date", "52 Week Low Date",
    "Calendar Year High Date", "Calendar Year Low Date", "Year End Close", "Maturity Date",
    "Coupon Rate", "Expiration Date", "Strike Price", "NAICS", "Exchange Root",
    "Option Premium Multiplier", "Option Multiple Deliverable", "Session Open Time",
    "Session Close Time", "Base Currency", "Contract Size", "Contract Months", "Minimum Tick Size",
    "First Delivery Date", "FIGI", "Security SubType",
)  # fmt: skip
assert len(FUNDAMENTAL_FIELDS) == 57
_F_INDEX = {n: i for i, n in enumerate(FUNDAMENTAL_FIELDS)}


@dataclass(frozen=True, slots=True)
class Fundamental:
    """``F`` line: 57 fixed fields kept as text (mixed units/dates, see docs); typed accessors below.

    Older servers may send fewer fields; the missing tail reads as empty.
    """

    values: tuple[str, ...]
    extra: tuple[str, ...] = ()

    def get(self, name: str) -> str:
        i = _F_INDEX[name]
        return self.values[i] if i < len(self.values) else ""

    @property
    def symbol(self) -> str:
        return self.values[0]

    @property
    def listed_market(self) -> int | None:
        return parse_int(self.get("Listed Market"), "Listed Market")

    @property
    def security_type(self) -> int | None:
        return parse_int(self.get("Security Type"), "Security Type")

    @property
    def company_name(self) -> str:
        return self.get("Company Name")

    @property
    def precision(self) -> int | None:
        return parse_int(self.get("Precision"), "Precision")


def parse_fundamental(fields: list[str], line: str) -> Fundamental:
    f = drop_trailing_empty(fields[1:], line)
    if not f or not f[0]:
        raise BadField("Symbol", "missing_field", "F line without a symbol")
    n = len(FUNDAMENTAL_FIELDS)
    for name in ("Listed Market", "Security Type", "Precision"):
        i = _F_INDEX[name]
        if i < len(f):
            parse_int(f[i], name)
    return Fundamental(tuple(f[:n]), tuple(f[n:]))


def format_fundamental(msg: Fundamental) -> str:
    return ",".join(("F", *msg.values, *msg.extra)) + "," + CRLF


# --- R: regional quote (reference §3.6) -------------------------------------------------------------

REGIONAL_FIELDS = (
    "Symbol", "Exchange", "Regional Bid", "Regional Bid Size", "Regional Bid Time", "Regional Ask",
    "Regional Ask Size", "Regional Ask Time", "Fraction Display Code", "Decimal Precision",
    "Market Center",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Regional:
    """``R`` line: one regional exchange's quote."""

    symbol: str
    exchange: str  # deprecated field, kept verbatim
    bid: int | None
    bid_size: int | None
    bid_time_us: int | None
    ask: int | None
    ask_size: int | None
    ask_time_us: int | None
    fraction_display_code: int | None
    decimal_precision: int | None
    market_center: int | None


def parse_regional(fields: list[str], line: str) -> Regional:
    f = drop_trailing_empty(fields[1:], line)
    need(f, 11, REGIONAL_FIELDS)
    if not f[0]:
        raise BadField("Symbol", "missing_field", "R line without a symbol")
    return Regional(
        f[0], f[1],
        parse_price(f[2], "Regional Bid"), parse_int(f[3], "Regional Bid Size"),
        parse_time_us(f[4], "Regional Bid Time"),
        parse_price(f[5], "Regional Ask"), parse_int(f[6], "Regional Ask Size"),
        parse_time_us(f[7], "Regional Ask Time"),
        parse_int(f[8], "Fraction Display Code"), parse_int(f[9], "Decimal Precision"),
        parse_int(f[10], "Market Center"),
    )  # fmt: skip


def format_regional(msg: Regional, decimals: int = 4, time_digits: int = 6) -> str:
    """``R,...,``; time precision on the wire is unverified (seconds or µs), hence ``time_digits``."""
    return ",".join((
        "R", msg.symbol, msg.exchange,
        format_price(msg.bid, decimals), _i(msg.bid_size), format_time_us(msg.bid_time_us, time_digits),
        format_price(msg.ask, decimals), _i(msg.ask_size), format_time_us(msg.ask_time_us, time_digits),
        _i(msg.fraction_display_code), _i(msg.decimal_precision), _i(msg.market_center),
    )) + "," + CRLF  # fmt: skip


def _i(v: int | None) -> str:
    return "" if v is None else str(v)


# --- C: trade correction (protocol 6.2, reference §3.8) ---------------------------------------------

CORRECTION_FIELDS = (
    "Symbol", "Correction Type", "Trade Type", "Trade Date", "Trade Time", "Price", "Size", "TickID",
    "Trade Conditions", "Market Center",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TradeCorrection:
    """``C`` line: insert (``I``) or delete (``X``) of an earlier trade, matched by tick id."""

    symbol: str
    correction_type: str  # "I" insert, "X" delete
    trade_type: str  # "C" / "E" / "O" as in Message Contents, or ""
    date: int | None  # YYYYMMDD (ET), may be blank
    time_us: int | None  # µs after ET midnight, may be blank
    price: int | None
    size: int | None
    tick_id: int | None
    conditions: str  # hex codes, "" when blank
    market_center: int | None


def parse_correction(fields: list[str], line: str) -> TradeCorrection:
    f = drop_trailing_empty(fields[1:], line)
    need(f, 10, CORRECTION_FIELDS)
    if not f[0]:
        raise BadField("Symbol", "missing_field", "C line without a symbol")
    if f[1] not in ("I", "X"):
        raise BadField("Correction Type", "bad_value", f"expected I or X, got {f[1]!r}")
    if f[2] not in ("", "C", "E", "O"):
        raise BadField("Trade Type", "bad_value", f"expected C, E or O, got {f[2]!r}")
    return TradeCorrection(
        f[0], f[1], f[2], parse_date_us(f[3], "Trade Date"), parse_time_us(f[4], "Trade Time"),
        parse_price(f[5], "Price"), parse_int(f[6], "Size"), parse_int(f[7], "TickID"), f[8],
        parse_int(f[9], "Market Center"),
    )


def format_correction(msg: TradeCorrection, decimals: int = 4) -> str:
    return ",".join((
        "C", msg.symbol, msg.correction_type, msg.trade_type, format_date_us(msg.date),
        format_time_us(msg.time_us), format_price(msg.price, decimals), _i(msg.size), _i(msg.tick_id),
        msg.conditions, _i(msg.market_center),
    )) + "," + CRLF  # fmt: skip


# --- N: news headline (reference §3.7) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewsHeadline:
    """``N,<Distributor>,<StoryID>,<SYM:SYM>,<YYYYMMDD HHMMSS>,<Headline>`` (headline may hold commas)."""

    distributor: str
    story_id: str
    symbols: tuple[str, ...]
    date: int | None
    time_us: int | None
    headline: str


def parse_news(fields: list[str], line: str) -> NewsHeadline:
    need(fields, 6, ("type", "Distributor", "StoryID", "Symbols", "Timestamp", "Headline"))
    stamp = fields[4]
    date = tod = None
    if stamp:
        if len(stamp) != 15 or stamp[8] != " " or not stamp[9:].isdecimal() or not stamp[:8].isdecimal():
            raise BadField("Timestamp", "bad_time", f"expected YYYYMMDD HHMMSS, got {stamp!r}")
        date = int(stamp[:8])
        h, m, s = int(stamp[9:11]), int(stamp[11:13]), int(stamp[13:15])
        if not (1 <= date // 100 % 100 <= 12 and 1 <= date % 100 <= 31 and h < 24 and m < 60 and s < 61):
            raise BadField("Timestamp", "bad_time", repr(stamp))
        tod = ((h * 60 + m) * 60 + s) * 1_000_000
    syms = tuple(s for s in fields[3].split(":") if s)
    return NewsHeadline(fields[1], fields[2], syms, date, tod, ",".join(fields[5:]))


def format_news(msg: NewsHeadline) -> str:
    stamp = ""
    if msg.date is not None and msg.time_us is not None:
        stamp = f"{msg.date:08d} {format_time_us(msg.time_us, 0).replace(':', '')}"
    return ",".join(("N", msg.distributor, msg.story_id, ":".join(msg.symbols), stamp, msg.headline)) + CRLF


# --- Level 1 client commands (reference §3.1) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolCommand:
    """Single-letter symbol commands: ``w`` watch, ``t`` trades-only watch, ``r`` unwatch,
    ``f`` force refresh (L1); ``m`` market-maker name query (L2, argument is the MMID)."""

    command: str
    symbol: str


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    """The bare ``T`` command: ask for one timestamp line now."""


def format_symbol_command(cmd: SymbolCommand) -> str:
    if cmd.command not in ("w", "t", "r", "f", "m") or not cmd.symbol or "," in cmd.symbol:
        raise ValueError(f"bad symbol command {cmd!r}")
    return f"{cmd.command}{cmd.symbol}{CRLF}"
