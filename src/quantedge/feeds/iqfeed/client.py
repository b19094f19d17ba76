"""asyncio IQFeed client: handshake, watch lists, history, reconnect with gap reports, event batches.

One client speaks to IQConnect (or the simulator, :mod:`quantedge.feeds.iqfeed.simulator`) on the
Level 1, Level 2 and lookup ports.  Every socket read is stamped with a local receive time (ns) and
decoded into one ``EVENT_DTYPE`` batch: the hot ``Q`` lines by a compiled batch parser
(:class:`QBatchParser`), every other line by the protocol module (``parse_line`` + ``to_events``), so
formats have one definition.  Batches go into a bounded queue: a slow consumer stops the socket reads,
which pushes back on the server instead of growing memory.  After a dropped connection the client
reconnects with backoff, handshakes, re-sends its watches and reports a :class:`Gap` per symbol.
User guide: ``docs/iqfeed-client.md``.

Compiled Q parsing: the field types come from the protocol module's ``FIELD_TYPES`` for the
connection's ``Fieldset``, condition bits from ``conditions.CODE_BITS``, and any line the kernel is not
certain about (another message type, a field it cannot read exactly, extra fields, a time without a
known date) is handed to ``protocol.parse_line`` unchanged; a hypothesis test checks both paths agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from quantedge.catalog.quarantine import ImportReport
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    COND_EXTENDED_HOURS,
    COND_OFF_EXCHANGE,
    COND_UNKNOWN_CODE,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.conditions import CODE_BITS
from quantedge.feeds.iqfeed.history import gather_strings, parse_tick_lines, ticks_to_events
from quantedge.feeds.iqfeed.protocol import (
    DEFAULT_FIELDS,
    DEFAULT_FIELDSET,
    FIELD_TYPES,
    NO_DATA,
    ErrorMessage,
    EventContext,
    Fieldset,
    HistoryRequest,
    NotFound,
    ParseError,
    SystemMessage,
    Timestamp,
    et_to_ns,
    format_message,
    format_set_protocol,
    parse_line,
    rejected_protocol,
    to_events,
)
from quantedge.feeds.iqfeed.protocol_system import normalize_port
from quantedge.venues import MMID_BASE, OFF_EXCHANGE_VENUES

log = logging.getLogger(__name__)

# kernel field types
F_STR, F_PRICE, F_INT, F_TIME, F_DATE = 0, 1, 2, 3, 4
_KIND = {"str": F_STR, "price": F_PRICE, "int": F_INT, "time": F_TIME, "date": F_DATE}

# message-contents bits
MC_C, MC_E, MC_O, MC_B, MC_A = 1, 2, 4, 8, 16

#: per-line status
FAST = 0  # parsed here
SLOW = 1  # give to the protocol module

_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_MAXF = 128


def kernel_types(fieldset: Fieldset) -> np.ndarray:
    """Kernel type per field, derived from the protocol module's FIELD_TYPES (one source of truth)."""
    return np.array([_KIND[FIELD_TYPES[n]] for n in fieldset.names], np.int8)


@njit(cache=True)
def _hexval(c):
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


@njit(cache=True)
def scan_q(buf, types, contents_col, cond_col, code_bits, days):  # noqa: C901 - one pass on purpose
    """Split ``buf`` (whole lines) and parse every ``Q`` line of the fieldset ``types``.

    Returns (line_start, line_end, status, vals, present, contents_bits, cond_bits, symbol_end).
    ``present`` is
    False for empty fields; a line with anything unusual gets SLOW.
    """
    n = buf.shape[0]
    nl = 0
    for i in range(n):
        if buf[i] == 10:
            nl += 1
    if n > 0 and buf[n - 1] != 10:
        nl += 1
    nc = types.shape[0]
    ls = np.zeros(nl, np.int64)
    le = np.zeros(nl, np.int64)
    status = np.ones(nl, np.int8)
    vals = np.zeros((nl, nc), np.int64)
    present = np.zeros((nl, nc), np.bool_)
    mc = np.zeros(nl, np.int64)
    cb = np.zeros(nl, np.int64)
    se = np.zeros(nl, np.int64)
    fs = np.zeros(_MAXF, np.int64)
    fe = np.zeros(_MAXF, np.int64)
    pos = 0
    for li in range(nl):
        s = pos
        e = s
        while e < n and buf[e] != 10:
            e += 1
        pos = e + 1
        end = e
        if end > s and buf[end - 1] == 13:
            end -= 1
        ls[li] = s
        le[li] = end
        if end - s < 2 or buf[s] != 81 or buf[s + 1] != 44:  # "Q,"
            continue
        nf = 0
        a = s + 2
        for i in range(s + 2, end + 1):
            if i == end or buf[i] == 44:
                if nf < _MAXF:
                    fs[nf] = a
                    fe[nf] = i
                nf += 1
                a = i + 1
        if nf == nc + 1 and fe[nc] == fs[nc]:
            nf = nc
        if nf != nc:
            continue
        se[li] = fe[0]
        ok = True
        for c in range(nc):
            a = fs[c]
            b = fe[c]
            if a == b:
                if c == 0:
                    ok = False
                    break
                continue
            t = types[c]
            if t == F_PRICE:
                neg = False
                i = a
                if buf[i] == 45:
                    neg = True
                    i += 1
                ip = np.int64(0)
                nd = 0
                while i < b and 48 <= buf[i] <= 57:
                    ip = ip * 10 + (buf[i] - 48)
                    nd += 1
                    i += 1
                frac = np.int64(0)
                fd = 0
                if i < b and buf[i] == 46:
                    i += 1
                    while i < b and 48 <= buf[i] <= 57:
                        frac = frac * 10 + (buf[i] - 48)
                        fd += 1
                        i += 1
                if i != b or nd == 0 or nd > 9 or fd > 4:
                    ok = False
                    break
                for _ in range(fd, 4):
                    frac *= 10
                v = ip * 10000 + frac
                vals[li, c] = -v if neg else v
            elif t == F_INT:
                if b - a > 17:
                    ok = False
                    break
                v = np.int64(0)
                for i in range(a, b):
                    d = buf[i]
                    if d < 48 or d > 57:
                        ok = False
                        break
                    v = v * 10 + (d - 48)
                if not ok:
                    break
                vals[li, c] = v
            elif t == F_TIME:
                if b - a != 15 or buf[a + 2] != 58 or buf[a + 5] != 58 or buf[a + 8] != 46:
                    ok = False
                    break
                v = np.int64(0)
                for k in (0, 1, 3, 4, 6, 7, 9, 10, 11, 12, 13, 14):
                    d = buf[a + k]
                    if d < 48 or d > 57:
                        ok = False
                        break
                    v = v * 10 + (d - 48)
                if not ok:
                    break
                hh = v // 10**10
                mm = v // 10**8 % 100
                ss = v // 10**6 % 100
                if hh > 23 or mm > 59 or ss > 59:
                    ok = False
                    break
                vals[li, c] = ((hh * 60 + mm) * 60 + ss) * 1_000_000 + v % 10**6
            elif t == F_DATE:
                if b - a != 10 or buf[a + 2] != 47 or buf[a + 5] != 47:
                    ok = False
                    break
                v = np.int64(0)
                for k in (0, 1, 3, 4, 6, 7, 8, 9):
                    d = buf[a + k]
                    if d < 48 or d > 57:
                        ok = False
                        break
                    v = v * 10 + (d - 48)
                if not ok:
                    break
                m = v // 10**6
                dd = v // 10**4 % 100
                y = v % 10**4
                leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
                if m < 1 or m > 12 or dd < 1 or dd > days[m] or (m == 2 and dd == 29 and not leap) or y < 1:
                    ok = False
                    break
                vals[li, c] = y * 10000 + m * 100 + dd
            if c == contents_col:
                bits = 0
                ntrade = 0
                for i in range(a, b):
                    ch = buf[i]
                    if ch == 67:
                        bits |= 1
                        ntrade += 1
                    elif ch == 69:
                        bits |= 2
                        ntrade += 1
                    elif ch == 79:
                        bits |= 4
                        ntrade += 1
                    elif ch == 98:
                        bits |= 8
                    elif ch == 97:
                        bits |= 16
                if ntrade > 1:
                    ok = False
                    break
                mc[li] = bits
            elif c == cond_col:
                if (b - a) % 2 == 1:
                    ok = False
                    break
                bits = np.int64(0)
                for i in range(a, b, 2):
                    h1 = _hexval(buf[i])
                    h2 = _hexval(buf[i + 1])
                    if h1 < 0 or h2 < 0:
                        ok = False
                        break
                    x = code_bits[h1 * 16 + h2]
                    bits |= COND_UNKNOWN_CODE if x < 0 else x
                if not ok:
                    break
                cb[li] = bits
            present[li, c] = True
        if ok:
            status[li] = FAST
    return ls, le, status, vals, present, mc, cb, se


class QBatchParser:
    """Vectorized Q-line parser for one fieldset; mirrors ``protocol.to_events`` for Q lines exactly."""

    def __init__(self, fieldset: Fieldset) -> None:
        self.fieldset = fieldset
        names = fieldset.names
        self.types = kernel_types(fieldset)
        self.col = {n: i for i, n in enumerate(names)}
        self.contents_col = self.col.get("Message Contents", -1)
        self.cond_col = self.col.get("Most Recent Trade Conditions", -1)
        self.pfx = "Most Recent Trade" if "Most Recent Trade" in self.col else "Last"
        self._off = np.fromiter(OFF_EXCHANGE_VENUES, np.int64)

    def scan(self, buf: np.ndarray) -> tuple:
        return scan_q(buf, self.types, self.contents_col, self.cond_col, CODE_BITS, _DAYS)

    def _v(self, vals: np.ndarray, present: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        c = self.col.get(name)
        if c is None:
            z = np.zeros(vals.shape[0], np.int64)
            return z, np.zeros(vals.shape[0], bool)
        return vals[:, c], present[:, c]

    def needs_slow(
        self, vals: np.ndarray, present: np.ndarray, mc: np.ndarray, date: int | None
    ) -> np.ndarray:
        """Lines the vectorized builder cannot map exactly as ``to_events`` would (problems, no date)."""
        trade = (mc & (MC_C | MC_E | MC_O)) != 0
        _, has_px = self._v(vals, present, self.pfx)
        _, has_t = self._v(vals, present, f"{self.pfx} Time")
        date_name = "Most Recent Trade Date" if self.pfx != "Last" else "Last Date"
        _, has_d = self._v(vals, present, date_name)
        slow = trade & ~has_px
        if date is None:
            slow |= trade & has_t & ~has_d
            quote = (mc & (MC_B | MC_A)) != 0
            for n in ("Bid Time", "Ask Time"):
                _, has = self._v(vals, present, n)
                slow |= quote & has
        return slow

    def build(
        self,
        vals: np.ndarray,
        present: np.ndarray,
        mc: np.ndarray,
        cb: np.ndarray,
        sym_ids: np.ndarray,
        recv: np.ndarray,
        date: int | None,
    ) -> np.ndarray:
        """Events for FAST Q lines (all rows of the arrays), in line order: trade, then bid, then ask."""
        vals.shape[0]
        trade = (mc & (MC_C | MC_E | MC_O)) != 0
        quote = (mc & (MC_B | MC_A)) != 0
        per = trade.astype(np.int64) + 2 * quote
        start = np.cumsum(per) - per
        out = np.zeros(int(per.sum()), EVENT_DTYPE)
        out["level"] = -1
        if out.shape[0] == 0:
            return out
        pfx = self.pfx
        # trades
        ti = np.flatnonzero(trade)
        if ti.shape[0]:
            pos = start[ti]
            price, _ = self._v(vals, present, pfx)
            size, _ = self._v(vals, present, f"{pfx} Size")
            tod, has_t = self._v(vals, present, f"{pfx} Time")
            dname = "Most Recent Trade Date" if pfx != "Last" else "Last Date"
            dv, has_d = self._v(vals, present, dname)
            venue, _ = self._v(vals, present, f"{pfx} Market Center")
            seq, _ = self._v(vals, present, "TickID")
            aggr, has_ag = self._v(vals, present, "Most Recent Trade Aggressor")
            d = np.where(has_d, dv, date if date is not None else 0)[ti]
            ts = np.where(has_t[ti], _et_ns(d, tod[ti]), recv[ti])
            bits = cb[ti].copy() if self.cond_col >= 0 else np.zeros(ti.shape[0], np.int64)
            bits[np.isin(venue[ti], self._off)] |= COND_OFF_EXCHANGE
            bits[(mc[ti] & MC_E) != 0] |= COND_EXTENDED_HOURS
            ag = np.where(has_ag[ti], aggr[ti], 0)
            out["ts_event"][pos] = ts
            out["ts_recv"][pos] = recv[ti]
            out["seq"][pos] = seq[ti]
            out["price"][pos] = price[ti]
            out["size"][pos] = size[ti]
            out["symbol"][pos] = sym_ids[ti]
            out["conditions"][pos] = bits.astype(np.uint32)
            out["venue"][pos] = venue[ti]
            out["kind"][pos] = KIND_TRADE
            out["side"][pos] = np.where(ag == 1, SIDE_BID, np.where(ag == 2, SIDE_ASK, 0))
            out["flags"][pos] = FLAG_LAST
        qi = np.flatnonzero(quote)
        if qi.shape[0]:
            base = start[qi] + trade[qi]
            dd = np.full(qi.shape[0], date if date is not None else 0, np.int64)
            for off, side, pname, sname, tname, flag in (
                (0, SIDE_BID, "Bid", "Bid Size", "Bid Time", 0),
                (1, SIDE_ASK, "Ask", "Ask Size", "Ask Time", FLAG_LAST),
            ):
                pos = base + off
                price, _ = self._v(vals, present, pname)
                size, _ = self._v(vals, present, sname)
                tod, has_t = self._v(vals, present, tname)
                out["ts_event"][pos] = np.where(has_t[qi], _et_ns(dd, tod[qi]), recv[qi])
                out["ts_recv"][pos] = recv[qi]
                out["price"][pos] = price[qi]
                out["size"][pos] = size[qi]
                out["symbol"][pos] = sym_ids[qi]
                out["kind"][pos] = KIND_QUOTE
                out["side"][pos] = side
                out["flags"][pos] = flag
        return out


def _et_ns(dates: np.ndarray, tod_us: np.ndarray) -> np.ndarray:
    """ET (YYYYMMDD, µs of day) -> ns UTC, exactly as ``protocol.et_to_ns`` (one offset per date-hour)."""
    hour = tod_us // 3_600_000_000
    key = dates.astype(np.int64) * 100 + hour
    uk, inv = np.unique(key, return_inverse=True)
    base = np.array(
        [et_to_ns(int(k // 100), int(k % 100) * 3_600_000_000) if k // 100 > 0 else 0 for k in uk], np.int64
    )
    return base[inv] + (tod_us - hour * 3_600_000_000) * 1000


# --- line decoding -------------------------------------------------------------------------------------


@dataclass
class Gap:
    """Data a client could not receive: ``symbol`` on ``port`` between ``start_ns`` and ``end_ns``
    (feed time).

    ``start_ns`` is the last event time seen for the symbol before the connection dropped (or the feed
    clock then, if none), ``end_ns`` the feed time of the first line after the reconnect.
    """

    port: str
    symbol: str
    start_ns: int
    end_ns: int
    reason: str


@dataclass
class EventBatch:
    """What the client hands a consumer: the events of one socket read, plus what went wrong."""

    port: str
    events: np.ndarray
    problems: list[ParseError]
    recv_ns: int
    lines: int
    gaps: list[Gap] = field(default_factory=list)


class LineDecoder:
    """Bytes of whole lines -> events for one connection (``port``), keeping the connection's state.

    Q lines of the current fieldset go through the compiled :class:`QBatchParser`; every other line
    (and any Q line it is not sure about) through ``protocol.parse_line`` and ``to_events``.  System
    lines update the state: ``S,CURRENT UPDATE FIELDNAMES`` the fieldset, ``T`` the session date.
    """

    def __init__(
        self,
        port: str,
        symbols: NameTable,
        mmids: NameTable | None = None,
        fieldset: Fieldset = DEFAULT_FIELDSET,
        protocol: str = "6.2",
        fast: bool = True,
    ) -> None:
        self.port = normalize_port(port)
        self.ctx = EventContext(symbols, mmids if mmids is not None else NameTable(base=MMID_BASE))
        self.protocol = protocol
        self.fast = fast and self.port == "level1"
        self._parsers: dict[tuple, QBatchParser] = {}
        self.set_fieldset(fieldset)
        self.messages: list[Any] = []  # non-event messages of the last feed() (system, errors, n)
        self.counters = {"lines": 0, "fast_lines": 0, "slow_lines": 0, "problems": 0}
        self.problem_reasons: dict[str, int] = {}

    def set_fieldset(self, fs: Fieldset) -> None:
        self.fieldset = fs
        p = self._parsers.get(fs.names)
        if p is None:
            p = self._parsers[fs.names] = QBatchParser(fs)
        self.parser = p

    def feed(self, data: bytes, recv_ns: int) -> tuple[np.ndarray, list[ParseError]]:
        """Decode ``data`` (complete lines) received at ``recv_ns``."""
        self.messages = []
        buf = np.frombuffer(data, np.uint8)
        parts: list[np.ndarray] = []
        problems: list[ParseError] = []
        off = 0
        while off < buf.shape[0]:
            sub = buf[off:]
            if self.fast:
                ls, le, status, vals, present, mc, cb, se = self.parser.scan(sub)
                fast = status == FAST
                if fast.any():
                    fast[fast] = ~self.parser.needs_slow(vals[fast], present[fast], mc[fast], self.ctx.date)
            else:
                ls, le = _line_bounds(sub)
                fast = np.zeros(ls.shape[0], bool)
                vals = present = mc = cb = se = None
            restart = None
            i = 0
            n = ls.shape[0]
            while i < n:
                if fast[i]:
                    j = i
                    while j < n and fast[j]:
                        j += 1
                    sl = slice(i, j)
                    ids = self._symbol_ids(sub, ls[sl] + 2, se[sl] - ls[sl] - 2)
                    recv = np.full(j - i, recv_ns, np.int64)
                    parts.append(
                        self.parser.build(vals[sl], present[sl], mc[sl], cb[sl], ids, recv, self.ctx.date)
                    )
                    self.counters["fast_lines"] += j - i
                    i = j
                    continue
                line = sub[ls[i] : le[i]].tobytes()
                i += 1
                if not line:
                    continue
                self.counters["slow_lines"] += 1
                changed = self._slow(line, recv_ns, parts, problems)
                if changed and self.fast and i < n:
                    restart = int(ls[i])
                    break
            self.counters["lines"] += i if restart is not None else n
            if restart is None:
                break
            off += restart
        for p in problems:
            self.problem_reasons[p.reason] = self.problem_reasons.get(p.reason, 0) + 1
        self.counters["problems"] += len(problems)
        events = (
            parts[0] if len(parts) == 1 else (np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE))
        )
        return events, problems

    def _symbol_ids(self, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
        width = int(lens.max()) if lens.shape[0] else 1
        text, _ = gather_strings(buf, offs, lens, max(width, 1))
        uniq, inv = np.unique(text, return_inverse=True)
        table = np.array([self.ctx.symbols.id(u.decode("latin-1")) for u in uniq], np.int32)
        return table[inv]

    def _slow(self, line: bytes, recv_ns: int, parts: list[np.ndarray], problems: list[ParseError]) -> bool:
        """One line through the protocol module; True when it changed how later lines parse."""
        msg = parse_line(line, self.port, self.protocol, self.fieldset)
        if isinstance(msg, ParseError):
            problems.append(msg)
            return False
        if isinstance(msg, SystemMessage):
            self.messages.append(msg)
            if msg.name == "CURRENT UPDATE FIELDNAMES":
                try:
                    self.set_fieldset(Fieldset.from_system_args(msg.args))
                except ValueError as e:
                    problems.append(ParseError("Fieldset", "bad_value", str(e), line[:200].decode("latin-1")))
                    return False
                return True
            return False
        if isinstance(msg, (NotFound, ErrorMessage)):
            self.messages.append(msg)
            return False
        date_before = self.ctx.date
        ev, probs = to_events([msg], self.ctx, ts_recv=recv_ns)
        problems.extend(probs)
        if ev.shape[0]:
            parts.append(ev)
        return isinstance(msg, Timestamp) and self.ctx.date != date_before


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nl = np.flatnonzero(buf == 10)
    ends = nl if (buf.shape[0] == 0 or buf[-1] == 10) else np.append(nl, buf.shape[0])
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64) if ends.shape[0] else np.zeros(0, np.int64)
    le = ends.astype(np.int64).copy()
    cr = (le > starts) & (buf[np.maximum(le - 1, 0)] == 13)
    le[cr] -= 1
    return starts, le


# --- connections -------------------------------------------------------------------------------------


class ProtocolError(Exception):
    """The server refused every protocol version the client offered."""


class HistoryError(Exception):
    """A history request failed with an error other than !NO_DATA!."""


@dataclass
class ClientConfig:
    """Connection settings; ports 0 are not allowed here (use the simulator's bound ports)."""

    host: str = "127.0.0.1"
    ports: dict[str, int] = field(
        default_factory=lambda: {"level1": 5009, "lookup": 9100, "level2": 9200, "admin": 9300}
    )
    protocols: tuple[str, ...] = ("6.2", "6.1")  # offered in this order
    name: str = "quantedge"
    fieldset: Fieldset = field(default_factory=lambda: EVENT_FIELDSET)
    queue_batches: int = 256  # bounded queue of EventBatch per client: back-pressure beyond it
    read_bytes: int = 1 << 18
    history_rate: float = 50.0  # requests/s (DTN token bucket)
    history_burst: int = 50
    history_retries: int = 8
    reconnect_initial: float = 0.05
    reconnect_max: float = 2.0
    reconnect_attempts: int = 0  # 0 = forever
    fast: bool = True


#: Fields the client selects by default: the default fieldset plus what makes Q lines carry every
#: event field the catalog has (trade date, TickID, aggressor, quote times).
EVENT_FIELDSET = Fieldset(
    (
        *DEFAULT_FIELDS,
        "Most Recent Trade Date",
        "TickID",
        "Most Recent Trade Aggressor",
        "Bid Time",
        "Ask Time",
    )
)


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``await take()`` waits for one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    async def take(self) -> None:
        while True:
            self._refill()
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)

    def drain(self) -> None:
        """The server said we are over its limit: start again from an empty bucket."""
        self._refill()
        self.tokens = 0.0


class _Stream:
    """One streaming socket (Level 1 or Level 2) with handshake, watches, reconnect and gap reports."""

    def __init__(self, client: IQFeedClient, port: str) -> None:
        self.client = client
        self.port = port
        cfg = client.config
        self.decoder = LineDecoder(
            port, client.symbols, client.mmids, DEFAULT_FIELDSET, cfg.protocols[0], cfg.fast
        )
        self.watches: dict[str, str] = {}  # symbol -> command text to (re)send
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.protocol: str | None = None
        self.connected = asyncio.Event()
        self.last_ts: dict[int, int] = {}
        self.pending_gap: dict[int, int] | None = None
        self.reconnects = 0
        self.not_found: set[str] = set()
        self.closing = False
        self._clock_at_drop: int | None = None

    async def open(self) -> None:
        await self._connect()
        self.task = asyncio.ensure_future(self._run())

    async def _connect(self) -> None:
        cfg = self.client.config
        self.reader, self.writer = await asyncio.open_connection(cfg.host, cfg.ports[self.port])
        early: list[bytes] = []
        for v in cfg.protocols:
            self.writer.write(format_set_protocol(v).encode())
            await self.writer.drain()
            ok = await self._await_protocol(v, early)
            if ok:
                self.protocol = v
                break
        else:
            self.writer.close()
            raise ProtocolError(f"{self.port}: server refused protocols {', '.join(cfg.protocols)}")
        self.decoder.protocol = self.protocol
        cmds = [f"S,SET CLIENT NAME,{cfg.name}-{self.port}\r\n"]
        if self.port == "level1":
            cmds.append("S,CONNECT\r\n")
            cmds.append(cfg.fieldset.select_command())
        cmds.extend(self.watches.values())
        self.writer.write("".join(cmds).encode("latin-1"))
        await self.writer.drain()
        if early:
            await self._deliver(b"".join(early), time.time_ns())
        self.connected.set()

    async def _await_protocol(self, version: str, early: list[bytes]) -> bool:
        assert self.reader is not None
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), 10.0)
            if not raw:
                raise ConnectionError(f"{self.port}: connection closed during the handshake")
            line = raw.rstrip(b"\r\n").decode("latin-1")
            if line == f"S,CURRENT PROTOCOL,{version}":
                return True
            msg = parse_line(raw, self.port, version, DEFAULT_FIELDSET)
            if rejected_protocol(msg) == version:
                return False
            early.append(raw if raw.endswith(b"\n") else raw + b"\n")

    async def _run(self) -> None:
        cfg = self.client.config
        tail = b""
        while not self.closing:
            try:
                assert self.reader is not None
                data = await self.reader.read(cfg.read_bytes)
                if not data:
                    raise ConnectionError("server closed the connection")
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
                if self.closing:
                    return
                if tail:
                    self.client.note_problem(
                        ParseError(
                            "",
                            "truncated_line",
                            f"{self.port}: connection lost inside a line",
                            tail[:200].decode("latin-1"),
                        )
                    )
                    tail = b""
                await self._reconnect(str(e) or type(e).__name__)
                continue
            recv = time.time_ns()
            data = tail + data
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if len(tail) > 1 << 20:
                self.client.note_problem(
                    ParseError(
                        "",
                        "line_too_long",
                        f"{self.port}: no line end in 1 MiB",
                        tail[:200].decode("latin-1"),
                    )
                )
                tail = b""
            if cut:
                await self._deliver(data[:cut], recv)

    async def _deliver(self, data: bytes, recv: int) -> None:
        events, problems = self.decoder.feed(data, recv)
        gaps: list[Gap] = []
        for m in self.decoder.messages:
            if isinstance(m, NotFound):
                self.not_found.add(m.symbol)
                self.watches.pop(m.symbol, None)
            elif isinstance(m, SystemMessage) and m.name == "SYMBOL LIMIT REACHED" and m.args:
                self.watches.pop(m.args[0], None)
                problems.append(ParseError("symbol", "symbol_limit", f"watch refused: {m.args[0]}", ""))
        live = events[(events["flags"] & FLAG_SNAPSHOT) == 0] if events.shape[0] else events
        if self.pending_gap is not None:
            end = int(live["ts_event"].min()) if live.shape[0] else None
            clk = self.decoder.ctx.clock
            if clk is not None and clk != self._clock_at_drop:
                end = clk if end is None else min(end, clk)
            if end is not None:
                for sid, start in self.pending_gap.items():
                    gaps.append(Gap(self.port, self.client.symbols.name(sid), start, end, "reconnect"))
                self.pending_gap = None
                self.client.gaps.extend(gaps)
        if live.shape[0]:
            sym = live["symbol"]
            order = np.argsort(sym, kind="stable")
            s_sorted = sym[order]
            last = np.ones(order.shape[0], bool)
            last[:-1] = s_sorted[1:] != s_sorted[:-1]
            for s, t in zip(s_sorted[last], live["ts_event"][order][last], strict=True):
                self.last_ts[int(s)] = max(self.last_ts.get(int(s), 0), int(t))
        if events.shape[0] or problems or gaps:
            for p in problems:
                self.client.count_problem(p)
            await self.client.queue.put(
                EventBatch(self.port, events, problems, recv, data.count(b"\n"), gaps)
            )

    async def _reconnect(self, why: str) -> None:
        cfg = self.client.config
        self.connected.clear()
        log.warning("iqfeed %s connection lost (%s); reconnecting", self.port, why)
        clock = self.decoder.ctx.clock
        gap: dict[int, int] = {}
        for sym in self.watches:
            sid = self.client.symbols.id(sym)
            gap[sid] = self.last_ts.get(sid, clock if clock is not None else time.time_ns())
        self.pending_gap = gap
        self._clock_at_drop = clock
        delay = cfg.reconnect_initial
        attempt = 0
        while not self.closing:
            attempt += 1
            try:
                if self.writer is not None:
                    self.writer.close()
                await self._connect()
                self.reconnects += 1
                return
            except (ConnectionError, OSError, TimeoutError) as e:
                if cfg.reconnect_attempts and attempt >= cfg.reconnect_attempts:
                    self.closing = True
                    self.client.note_problem(ParseError("", "gave_up", f"{self.port}: {e}", ""))
                    await self.client.queue.put(
                        EventBatch(self.port, np.zeros(0, EVENT_DTYPE), [], time.time_ns(), 0, [])
                    )
                    return
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, cfg.reconnect_max)

    async def send(self, text: str) -> None:
        await self.connected.wait()
        assert self.writer is not None
        self.writer.write(text.encode("latin-1"))
        await self.writer.drain()

    async def close(self) -> None:
        self.closing = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.writer is not None:
            self.writer.close()


class _Lookup:
    """The lookup socket: history requests multiplexed by request id, rate-limited, retried."""

    def __init__(self, client: IQFeedClient) -> None:
        self.client = client
        cfg = client.config
        self.bucket = TokenBucket(cfg.history_rate, cfg.history_burst)
        self.pending: dict[str, tuple[list[bytes], asyncio.Future]] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.protocol = cfg.protocols[0]
        self.seq = 0
        self.lock = asyncio.Lock()
        self.retries = 0

    async def ensure(self) -> None:
        async with self.lock:
            if (
                self.writer is not None
                and not self.writer.is_closing()
                and self.task
                and not self.task.done()
            ):
                return
            cfg = self.client.config
            self.reader, self.writer = await asyncio.open_connection(cfg.host, cfg.ports["lookup"])
            for v in cfg.protocols:
                self.writer.write(format_set_protocol(v).encode())
                await self.writer.drain()
                while True:
                    raw = await asyncio.wait_for(self.reader.readline(), 10.0)
                    if not raw:
                        raise ConnectionError("lookup: closed during the handshake")
                    if raw.rstrip(b"\r\n") == f"S,CURRENT PROTOCOL,{v}".encode():
                        self.protocol = v
                        break
                    if rejected_protocol(parse_line(raw, "lookup", v)) == v:
                        break
                if self.protocol == v and raw.startswith(b"S,CURRENT"):
                    break
            else:
                raise ProtocolError(f"lookup: server refused protocols {', '.join(cfg.protocols)}")
            self.writer.write(f"S,SET CLIENT NAME,{cfg.name}-lookup\r\n".encode())
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        assert self.reader is not None
        try:
            while True:
                raw = await self.reader.readline()
                if not raw:
                    break
                rid, _, rest = raw.partition(b",")
                got = self.pending.get(rid.decode("latin-1"))
                if got is None:
                    continue
                lines, fut = got
                if rest.startswith(b"!ENDMSG!"):
                    self.pending.pop(rid.decode("latin-1"), None)
                    if not fut.done():
                        fut.set_result(lines)
                else:
                    lines.append(raw)
        finally:
            for _rid, (_lines, fut) in list(self.pending.items()):
                if not fut.done():
                    fut.set_exception(ConnectionError("lookup connection lost mid-request"))
            self.pending.clear()

    async def request(self, req: HistoryRequest) -> bytes:
        """Send ``req`` (its request id is replaced) and return the data lines; b"" for !NO_DATA!."""
        cfg = self.client.config
        delay = 0.05
        for attempt in range(cfg.history_retries + 1):
            await self.ensure()
            await self.bucket.take()
            self.seq += 1
            rid = f"Q{self.seq}"
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            self.pending[rid] = ([], fut)
            r = dataclasses.replace(req, request_id=rid)
            assert self.writer is not None
            self.writer.write(format_message(r).encode("latin-1"))
            await self.writer.drain()
            try:
                lines = await fut
            except ConnectionError:
                if attempt == cfg.history_retries:
                    raise
                await asyncio.sleep(delay)
                continue
            err = _error_text(lines, rid)
            if err is None:
                return b"".join(lines)
            if err == NO_DATA:
                return b""
            if err.startswith("Too many simultaneous history requests"):
                self.retries += 1
                self.bucket.drain()
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                continue
            raise HistoryError(f"{req.command} {req.symbol}: {err}")
        raise HistoryError(
            f"{req.command} {req.symbol}: still rate-limited after {cfg.history_retries} retries"
        )

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.writer is not None:
            self.writer.close()


def _error_text(lines: list[bytes], rid: str) -> str | None:
    prefix = f"{rid},E,".encode()
    for ln in lines[:2]:
        if ln.startswith(prefix):
            return ln[len(prefix) :].rstrip(b"\r\n").rstrip(b",").decode("latin-1")
    return None


class IQFeedClient:
    """asyncio IQFeed client: Level 1 and Level 2 watches -> bounded queue of :class:`EventBatch`,
    plus history requests.  Use ``async with IQFeedClient(cfg) as c:`` then ``await c.watch([...])``
    and ``async for batch in c.batches(): ...``.
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        symbols: NameTable | None = None,
        mmids: NameTable | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        self.symbols = symbols if symbols is not None else NameTable()
        self.mmids = mmids if mmids is not None else NameTable(base=MMID_BASE)
        self.queue: asyncio.Queue[EventBatch] = asyncio.Queue(self.config.queue_batches)
        self.streams: dict[str, _Stream] = {}
        self.lookup = _Lookup(self)
        self.gaps: list[Gap] = []
        self.problems: dict[str, int] = {}
        self.recent_problems: list[ParseError] = []

    async def __aenter__(self) -> IQFeedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def count_problem(self, p: ParseError) -> None:
        self.problems[p.reason] = self.problems.get(p.reason, 0) + 1
        if len(self.recent_problems) < 100:
            self.recent_problems.append(p)

    def note_problem(self, p: ParseError) -> None:
        log.warning("iqfeed: %s", p.message())
        self.count_problem(p)

    async def _stream(self, port: str) -> _Stream:
        s = self.streams.get(port)
        if s is None:
            s = _Stream(self, port)
            await s.open()
            self.streams[port] = s
        return s

    async def connect(self, ports: tuple[str, ...] = ("level1",)) -> None:
        for p in ports:
            await self._stream(p)

    async def watch(self, symbols: list[str], trades_only: bool = False) -> None:
        """Level 1 watch (``w``, or ``t`` trades only) for each symbol; re-sent after every reconnect."""
        s = await self._stream("level1")
        cmds = []
        for sym in symbols:
            sym = sym.upper()
            c = f"{'t' if trades_only else 'w'}{sym}\r\n"
            s.watches[sym] = c
            cmds.append(c)
        await s.send("".join(cmds))

    async def unwatch(self, symbols: list[str], port: str = "level1") -> None:
        s = await self._stream(port)
        cmds = []
        for sym in symbols:
            sym = sym.upper()
            old = s.watches.pop(sym, None)
            if old is None:
                continue
            cmds.append(
                {"W": f"ROR,{sym}\r\n" if old.startswith("WOR") else f"RPL,{sym}\r\n"}.get(
                    old[0], f"r{sym}\r\n"
                )
            )
        if cmds:
            await s.send("".join(cmds))

    async def watch_depth(self, symbols: list[str], mode: str = "order") -> None:
        """Level 2: ``order`` (WOR, 6.2), ``price`` (WPL, 6.2) or ``mm`` (market makers, ``w``)."""
        s = await self._stream("level2")
        cmds = []
        for sym in symbols:
            sym = sym.upper()
            c = {"order": f"WOR,{sym}\r\n", "price": f"WPL,{sym}\r\n", "mm": f"w{sym}\r\n"}[mode]
            s.watches[sym] = c
            cmds.append(c)
        await s.send("".join(cmds))

    async def next_batch(self, timeout: float | None = None) -> EventBatch:
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def batches(self) -> AsyncIterator[EventBatch]:
        while True:
            yield await self.queue.get()

    async def history(self, req: HistoryRequest) -> bytes:
        """Raw response rows of one history request (request id assigned by the client)."""
        return await self.lookup.request(req)

    async def tick_history(self, symbol: str, begin: str, end: str) -> tuple[np.ndarray, ImportReport]:
        """HTT ``begin``..``end`` (``YYYYMMDD HHMMSS`` ET) -> catalog events (the importer's mapping)."""
        raw = await self.history(
            HistoryRequest("HTT", symbol.upper(), begin=begin, end=end, direction=1, datapoints_per_send=2000)
        )
        rows, report = parse_tick_lines(raw, f"iqfeed:{symbol}:{begin}-{end}")
        if not len(rows):
            return np.zeros(0, EVENT_DTYPE), report
        return ticks_to_events(rows, self.symbols.id(symbol.upper())), report

    async def close(self) -> None:
        for s in self.streams.values():
            await s.close()
        await self.lookup.close()
