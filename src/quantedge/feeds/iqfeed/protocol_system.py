"""IQFeed protocol, shared layer: field codecs (prices, ET times, dates), ParseError, system lines.

Every port speaks comma-separated latin-1 text with ``\\r\\n`` line ends (reference §0).  The codecs
here are the single place where IQFeed text becomes QuantEdge units: prices become int64 fixed
point in $0.0001 (``quantedge.events.PRICE_SCALE``), ET wall-clock times become microseconds after
ET midnight (messages keep ET so a line round-trips exactly) and :func:`et_to_ns` turns them into
int64 ns UTC using the ``quantedge.timeutil`` zone.  Parsers raise the private :class:`BadField`,
which :func:`quantedge.feeds.iqfeed.protocol.parse_line` turns into a :class:`ParseError` value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from quantedge.events import PRICE_SCALE
from quantedge.timeutil import ET, NS

CRLF = "\r\n"

#: Protocol versions this module formats and parses (reference §2.1).
PROTOCOLS = ("6.1", "6.2")

#: Port aliases -> canonical port role (reference §1; numbers are IQConnect's defaults).
PORTS = {
    "level1": "level1", "l1": "level1", "5009": "level1",
    "lookup": "lookup", "9100": "lookup",
    "level2": "level2", "l2": "level2", "9200": "level2",
    "admin": "admin", "9300": "admin",
    "derivative": "derivative", "9400": "derivative",
}  # fmt: skip

US_PER_DAY = 86_400_000_000
#: Largest accepted |price| in dollars: keeps fixed-point values far inside int64.
MAX_PRICE_DOLLARS = 1e10


def normalize_port(port: str | int) -> str:
    """Canonical port role for a name or number; a wrong argument is a programming error."""
    got = PORTS.get(str(port).lower())
    if got is None:
        raise ValueError(f"unknown IQFeed port {port!r}; expected one of {sorted(set(PORTS))}")
    return got


def normalize_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unsupported IQFeed protocol {protocol!r}; supported: {', '.join(PROTOCOLS)}")
    return protocol


# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why one line could not be parsed: returned (never raised) so a feed loop can count and go on."""

    field: str  # field name ("type" for the message type, "" for whole-line problems)
    reason: str  # short stable code: missing_field, not_a_number, bad_time, unknown_message_type...
    detail: str = ""
    line: str = ""  # the offending line (clipped to 200 characters)

    def message(self) -> str:
        fld = f" field '{self.field}'" if self.field else ""
        extra = f": {self.detail}" if self.detail else ""
        return f"IQFeed line{fld}: {self.reason}{extra} [{self.line}]"


class BadField(Exception):  # noqa: N818 - internal control flow, never escapes parse_line
    """Raised inside parsers; carries what ParseError needs."""

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        super().__init__(field, reason, detail)
        self.field = field
        self.reason = reason
        self.detail = detail


def clip(line: str, n: int = 200) -> str:
    return line if len(line) <= n else line[:n] + "..."


def need(fields: list[str], n: int, names: tuple[str, ...] | list[str]) -> None:
    """Require at least ``n`` fields, naming the first missing one."""
    if len(fields) < n:
        raise BadField(names[len(fields)] if len(fields) < len(names) else "", "missing_field",
                       f"expected {n} fields, got {len(fields)}")


def drop_trailing_empty(fields: list[str], line: str) -> list[str]:
    """Drop the one empty field a trailing comma creates (reference §0: tolerate both forms)."""
    if line.endswith(",") and fields:
        fields.pop()
    return fields


# --- numbers -------------------------------------------------------------------------------------


def parse_price(s: str, field: str) -> int | None:
    """Decimal dollars -> int $0.0001 (more than 4 decimals round to nearest); '' -> None."""
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        raise BadField(field, "not_a_number", repr(s)) from None
    if not -MAX_PRICE_DOLLARS < v < MAX_PRICE_DOLLARS:  # also rejects nan / inf
        raise BadField(field, "out_of_range", repr(s))
    return round(v * PRICE_SCALE)


def parse_int(s: str, field: str) -> int | None:
    if not s:
        return None
    try:
        v = int(s)
    except ValueError:
        raise BadField(field, "not_an_integer", repr(s)) from None
    if not -(1 << 62) < v < (1 << 62):
        raise BadField(field, "out_of_range", repr(s))
    return v


def format_price(p: int | None, decimals: int | None = 4) -> str:
    """int $0.0001 -> decimal text with ``decimals`` places (IQFeed writes 4 for equities).

    ``decimals=None`` writes the shortest exact form (``2982.5``), as legacy Level 2 lines do.
    """
    if p is None:
        return ""
    sign = "-" if p < 0 else ""
    a = -p if p < 0 else p
    if decimals == 4:
        q, r = divmod(a, PRICE_SCALE)
        return f"{sign}{q}.{r:04d}"
    if decimals is None:
        q, r = divmod(a, PRICE_SCALE)
        if r == 0:
            return f"{sign}{q}"
        return f"{sign}{q}.{f'{r:04d}'.rstrip('0')}"
    if decimals > 4:
        q, r = divmod(a, PRICE_SCALE)
        return f"{sign}{q}.{r:04d}{'0' * (decimals - 4)}"
    unit = 10 ** (4 - decimals)
    scaled = (a + unit // 2) // unit  # half away from zero
    if scaled == 0:
        sign = ""
    if decimals == 0:
        return f"{sign}{scaled}"
    q, r = divmod(scaled, 10**decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


def format_int(v: int | None) -> str:
    return "" if v is None else str(v)


# --- times and dates ----------------------------------------------------------------------------


def parse_time_us(s: str, field: str) -> int | None:
    """``HH:MM:SS`` or ``HH:MM:SS.f{1,6}`` (ET wall clock) -> microseconds after midnight."""
    if not s:
        return None
    n = len(s)
    if n >= 8 and s[2] == ":" and s[5] == ":" and (n == 8 or (s[8] == "." and 10 <= n <= 15)):
        hh, mm, ss = s[0:2], s[3:5], s[6:8]
        frac = s[9:]
        if hh.isdecimal() and mm.isdecimal() and ss.isdecimal() and (n == 8 or frac.isdecimal()):
            h, m, sec = int(hh), int(mm), int(ss)
            if h < 24 and m < 60 and sec < 61:
                f = int(frac) * 10 ** (6 - len(frac)) if frac else 0
                return ((h * 60 + m) * 60 + sec) * 1_000_000 + f
    raise BadField(field, "bad_time", f"expected HH:MM:SS[.ffffff], got {s!r}")


def format_time_us(us: int | None, digits: int = 6) -> str:
    """Microseconds after ET midnight -> ``HH:MM:SS.ffffff`` (``digits`` = 0 writes whole seconds)."""
    if us is None:
        return ""
    sec, f = divmod(us, 1_000_000)
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    if digits <= 0:
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}.{f // 10 ** (6 - digits):0{digits}d}"


def _check_date(y: int, m: int, d: int, field: str, s: str) -> int:
    try:
        dt.date(y, m, d)
    except ValueError:
        raise BadField(field, "bad_date", repr(s)) from None
    return y * 10000 + m * 100 + d


def parse_date_iso(s: str, field: str) -> int | None:
    """``YYYY-MM-DD`` -> int YYYYMMDD."""
    if not s:
        return None
    if len(s) == 10 and s[4] == "-" and s[7] == "-":
        y, m, d = s[0:4], s[5:7], s[8:10]
        if y.isdecimal() and m.isdecimal() and d.isdecimal():
            return _check_date(int(y), int(m), int(d), field, s)
    raise BadField(field, "bad_date", f"expected YYYY-MM-DD, got {s!r}")


def parse_date_us(s: str, field: str) -> int | None:
    """``MM/DD/YYYY`` -> int YYYYMMDD."""
    if not s:
        return None
    if len(s) == 10 and s[2] == "/" and s[5] == "/":
        m, d, y = s[0:2], s[3:5], s[6:10]
        if y.isdecimal() and m.isdecimal() and d.isdecimal():
            return _check_date(int(y), int(m), int(d), field, s)
    raise BadField(field, "bad_date", f"expected MM/DD/YYYY, got {s!r}")


def parse_date_compact(s: str, field: str) -> int | None:
    """``YYYYMMDD`` -> int YYYYMMDD."""
    if not s:
        return None
    if len(s) == 8 and s.isdecimal():
        return _check_date(int(s[0:4]), int(s[4:6]), int(s[6:8]), field, s)
    raise BadField(field, "bad_date", f"expected YYYYMMDD, got {s!r}")


def format_date_iso(d: int | None) -> str:
    return "" if d is None else f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}"


def format_date_us(d: int | None) -> str:
    return "" if d is None else f"{d // 100 % 100:02d}/{d % 100:02d}/{d // 10000:04d}"


def format_date_compact(d: int | None) -> str:
    return "" if d is None else f"{d:08d}"


@lru_cache(maxsize=65536)
def _epoch_days(ymd: int) -> int:
    return dt.date(ymd // 10000, ymd // 100 % 100, ymd % 100).toordinal() - 719163


@lru_cache(maxsize=65536)
def _et_offset_ns(ymd: int, hour: int) -> int:
    """ns to add to an ET wall time (date, hour) to get UTC; DST resolved by the tz database."""
    local = dt.datetime(ymd // 10000, ymd // 100 % 100, ymd % 100, hour, 30, tzinfo=ET)
    return -int(local.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]


def et_to_ns(ymd: int, tod_us: int) -> int:
    """ET date (YYYYMMDD) + microseconds after ET midnight -> int64 ns UTC."""
    hour = min(tod_us // 3_600_000_000, 23)
    return (_epoch_days(ymd) * US_PER_DAY + tod_us) * 1000 + _et_offset_ns(ymd, hour)


@lru_cache(maxsize=65536)
def _utc_hour_offset_ns(utc_hour: int) -> int:
    d = dt.datetime.fromtimestamp(utc_hour * 3600, tz=ET)
    return int(d.utcoffset().total_seconds()) * NS  # type: ignore[union-attr]


@lru_cache(maxsize=65536)
def _ymd_from_days(days: int) -> int:
    d = dt.date.fromordinal(days + 719163)
    return d.year * 10000 + d.month * 100 + d.day


def ns_to_et(ns: int) -> tuple[int, int]:
    """int64 ns UTC -> (ET date YYYYMMDD, microseconds after ET midnight); sub-µs is floored."""
    local = ns + _utc_hour_offset_ns(ns // (3600 * NS))
    days, rem = divmod(local, 86400 * NS)
    return _ymd_from_days(days), rem // 1000


# --- system messages (every streaming port, reference §2.4) ---------------------------------------


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """``S,<NAME>[,args...]`` — status/config lines and ``S,`` commands; args kept verbatim.

    ``args`` keeps every field after the name exactly (including the empty last one a trailing
    comma makes), so a replay server reproduces lines such as ``S,STATS,...,,`` byte for byte.
    """

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Timestamp:
    """``T,YYYYMMDD HH:MM:SS``: IQConnect's once-a-second ET clock."""

    date: int  # YYYYMMDD (ET)
    time_us: int  # microseconds after ET midnight (whole seconds on the wire)

    @property
    def ts(self) -> int:
        return et_to_ns(self.date, self.time_us)


@dataclass(frozen=True, slots=True)
class NotFound:
    """``n,<SYM>``: symbol not found / not watchable."""

    symbol: str


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """``E,<text>[,]`` on a streaming port (e.g. ``E,6.2 is not a valid protocol.,``)."""

    text: str


@dataclass(frozen=True, slots=True)
class ClearDepth:
    """``S,CLEAR DEPTH,<SYM>,<A|B>,``: wipe one side of a symbol's Level 2 book."""

    symbol: str
    side: str  # "A" ask, "B" bid ("" = both, if ever sent without a side)


#: S,STATS field names by 0-based index (reference §2.5).
STATS_FIELDS = (
    "server_ip", "server_port", "max_symbols", "symbols_watched", "clients_connected",
    "seconds_since_last_update", "reconnections", "failed_reconnections", "connect_time",
    "market_time", "status", "iqfeed_version", "login_id", "total_kb_received", "kb_per_sec_received",
    "avg_kb_per_sec_received", "total_kb_sent", "kb_per_sec_sent", "avg_kb_per_sec_sent",
)  # fmt: skip

#: S,CUST field names by 0-based index from 2 (reference §2.3).
CUST_FIELDS = (
    "service_type", "server_ip", "server_port", "token", "iqfeed_version", "reserved1",
    "exchanges", "reserved2", "max_symbols", "flags", "expiration_date",
)  # fmt: skip


def system_fields(msg: SystemMessage) -> dict[str, str]:
    """Named fields of ``S,STATS`` / ``S,CUST`` (raw text); other messages map arg0, arg1, ..."""
    names = STATS_FIELDS if msg.name == "STATS" else CUST_FIELDS if msg.name == "CUST" else ()
    return {(names[i] if i < len(names) else f"arg{i}"): v for i, v in enumerate(msg.args)}


_REJECT_SUFFIX = " is not a valid protocol."


def rejected_protocol(msg: object) -> str | None:
    """The version IQConnect refused (``E,6.2 is not a valid protocol.,``), else None."""
    text = getattr(msg, "text", None)
    if isinstance(text, str) and text.endswith(_REJECT_SUFFIX):
        return text[: -len(_REJECT_SUFFIX)]
    return None


def parse_system(fields: list[str], line: str) -> SystemMessage | ClearDepth:
    if len(fields) < 2 or not fields[1]:
        raise BadField("name", "missing_field", "S line without a message name")
    if fields[1] == "CLEAR DEPTH":
        f = drop_trailing_empty(fields[:], line)
        if len(f) < 3 or not f[2]:
            raise BadField("symbol", "missing_field", "CLEAR DEPTH without a symbol")
        side = f[3] if len(f) > 3 else ""
        if side not in ("A", "B", ""):
            raise BadField("side", "bad_side", f"expected A or B, got {side!r}")
        return ClearDepth(f[2], side)
    return SystemMessage(fields[1], tuple(fields[2:]))


def parse_timestamp(line: str) -> Timestamp:
    s = line[2:]
    if len(s) != 17 or s[8] != " ":
        raise BadField("timestamp", "bad_time", f"expected YYYYMMDD HH:MM:SS, got {s!r}")
    date = parse_date_compact(s[:8], "timestamp")
    tod = parse_time_us(s[9:], "timestamp")
    return Timestamp(date, tod)  # type: ignore[arg-type]


def parse_error_text(line_after_e: str) -> str:
    """Error text = everything after ``E,`` minus trailing commas (``E,!NO_DATA!,,`` -> ``!NO_DATA!``)."""
    return line_after_e.rstrip(",")


def format_system(msg: SystemMessage) -> str:
    return ",".join(("S", msg.name, *msg.args)) + CRLF


def format_clear_depth(msg: ClearDepth) -> str:
    return f"S,CLEAR DEPTH,{msg.symbol},{msg.side},{CRLF}"


def format_timestamp(msg: Timestamp) -> str:
    return f"T,{msg.date:08d} {format_time_us(msg.time_us, 0)}{CRLF}"


def format_not_found(msg: NotFound) -> str:
    return f"n,{msg.symbol}{CRLF}"


def format_error(msg: ErrorMessage, trailing_comma: bool = True) -> str:
    """``E,<text>,``; IQConnect's protocol error carries the trailing comma, streaming errors may not."""
    return f"E,{msg.text}{',' if trailing_comma else ''}{CRLF}"


def format_current_protocol(version: str) -> str:
    """Server answer to ``S,SET PROTOCOL`` (or the rejection for an unsupported version)."""
    if version in PROTOCOLS:
        return f"S,CURRENT PROTOCOL,{version}{CRLF}"
    return format_error(ErrorMessage(f"{version}{_REJECT_SUFFIX}"))


def format_set_protocol(version: str) -> str:
    return f"S,SET PROTOCOL,{normalize_protocol(version)}{CRLF}"
