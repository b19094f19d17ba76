"""asyncio IQFeed client: handshake, watch lists, history, reconnect with gap reports, event batches.

One client speaks to IQConnect (or the simulator, :mod:`quantedge.feeds.iqfeed.simulator`) on the
Level 1, Level 2 and lookup ports.  Every socket read is stamped with a local receive time (ns) and
decoded into one ``EVENT_DTYPE`` batch: the hot lines (``Q``, Level 2 order / price-level / market-maker
rows, ``T``) by the compiled decoder (:mod:`quantedge.feeds.iqfeed.fastparse`), every other line by the
protocol module (``parse_line`` + ``to_events``), so formats have one definition.  Batches go into a
bounded queue: a slow consumer stops the socket reads,
which pushes back on the server instead of growing memory.  After a dropped connection the client
reconnects with backoff, handshakes, re-sends its watches and reports a :class:`Gap` per symbol.
User guide: ``docs/iqfeed-client.md``.

Compiled decoding: field layouts come from the protocol module (``FIELD_TYPES`` for the connection's
``Fieldset``, the Level 2 field tuples), condition bits from ``conditions.CODE_BITS``, and any line the
kernel is not certain about (another message type, a field it cannot read exactly, extra fields, a time
without a known date) is handed to ``protocol.parse_line`` unchanged; hypothesis tests check that both
paths agree.
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

from quantedge.catalog.quarantine import ImportReport
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    EVENT_DTYPE,
    FLAG_SNAPSHOT,
)
from quantedge.feeds.iqfeed import fastparse as fp
from quantedge.feeds.iqfeed.conditions import CODE_BITS
from quantedge.feeds.iqfeed.history import parse_tick_lines, ticks_to_events
from quantedge.feeds.iqfeed.protocol import (
    DEFAULT_FIELDS,
    DEFAULT_FIELDSET,
    NO_DATA,
    ErrorMessage,
    EventContext,
    Fieldset,
    HistoryRequest,
    NotFound,
    ParseError,
    SystemMessage,
    format_message,
    format_set_protocol,
    parse_line,
    rejected_protocol,
    to_events,
)
from quantedge.feeds.iqfeed.protocol_system import normalize_port
from quantedge.venues import MMID_BASE

log = logging.getLogger(__name__)

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

    The compiled decoder (:mod:`quantedge.feeds.iqfeed.fastparse`) turns Q lines of the current fieldset,
    Level 2 order / price-level / market-maker rows and ``T`` lines into events in one pass; every other
    line (and any line it is not sure about) goes through ``protocol.parse_line`` and ``to_events``.
    System lines update the state: ``S,CURRENT UPDATE FIELDNAMES`` the fieldset, ``T`` the session date.
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
        self.fast = fast and self.port in ("level1", "level2")
        self._layouts: dict[tuple, fp.QLayout] = {}
        self.set_fieldset(fieldset)
        self.messages: list[Any] = []  # non-event messages of the last feed() (system, errors, n)
        self.counters = {"lines": 0, "fast_lines": 0, "slow_lines": 0, "problems": 0}
        self.problem_reasons: dict[str, int] = {}
        self._syms = fp.ByteTable()
        self._mms = fp.ByteTable()
        self._tz = fp.TzTable()
        self._st = np.zeros(3, np.int64)
        self._res = np.zeros(8, np.int64)

    def set_fieldset(self, fs: Fieldset) -> None:
        self.fieldset = fs
        lay = self._layouts.get(fs.names)
        if lay is None:
            lay = self._layouts[fs.names] = fp.QLayout(fs)
        self.layout = lay

    def _sync_in(self) -> None:
        """EventContext -> kernel state (the protocol module may have moved the date or clock)."""
        st = self._st
        st[fp.S_DATE] = self.ctx.date or 0
        st[fp.S_HAS_CLOCK] = self.ctx.clock is not None
        st[fp.S_CLOCK] = self.ctx.clock or 0

    def _sync_out(self) -> None:
        st = self._st
        self.ctx.date = int(st[fp.S_DATE]) or None
        self.ctx.clock = int(st[fp.S_CLOCK]) if st[fp.S_HAS_CLOCK] else None

    def feed(self, data: bytes, recv_ns: int) -> tuple[np.ndarray, list[ParseError]]:
        """Decode ``data`` (complete lines) received at ``recv_ns``."""
        self.messages = []
        problems: list[ParseError] = []
        buf = np.frombuffer(data, np.uint8)
        n_lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
        out = np.empty(3 * n_lines + 3, EVENT_DTYPE)
        nout = 0
        pos = 0
        res = self._res
        self._sync_in()
        level2 = self.port == "level2"
        while pos < buf.shape[0]:
            if not self.fast:
                line_end = data.find(b"\n", pos)
                nxt = buf.shape[0] if line_end < 0 else line_end + 1
                a, b = pos, (buf.shape[0] if line_end < 0 else line_end)
                if b > a and buf[b - 1] == 13:
                    b -= 1
                self.counters["lines"] += 1
                if b > a:
                    out, nout = self._slow_into(data[a:b], recv_ns, out, nout, problems)
                pos = nxt
                continue
            lay = self.layout
            fp.decode(buf, pos, out, nout, recv_ns, self._st, level2, lay.kinds, lay.cols, CODE_BITS,
                      fp._OFF_VENUES, fp._DAYS_IN, self._syms.keys, self._syms.klen, self._syms.val,
                      self._mms.keys, self._mms.klen, self._mms.val, self._mms.lvl, self._tz.base,
                      self._tz.off, res)
            status = int(res[fp.R_STATUS])
            nout = int(res[fp.R_NOUT])
            self.counters["fast_lines"] += int(res[fp.R_FAST])
            self.counters["lines"] += int(res[fp.R_LINES])
            pos = int(res[fp.R_POS])
            if status == fp.DONE:
                break
            if status == fp.NEED_SYM:
                name = data[int(res[fp.R_AUX]) : int(res[fp.R_AUX2])]
                self._syms.add(name, self.ctx.symbols.id(name.decode("latin-1")))
            elif status == fp.NEED_MMID:
                name = data[int(res[fp.R_AUX]) : int(res[fp.R_AUX2])]
                venue, level = fp.mmid_target(name.decode("latin-1"), self.ctx.mmids)
                self._mms.add(name, venue, level)
            elif status == fp.NEED_TZ:
                self._tz.cover(int(res[fp.R_AUX]))
            else:  # SLOW: this one line through the protocol module
                end = int(res[fp.R_END])
                nl = data.find(b"\n", end)
                self.counters["lines"] += 1
                self.counters["slow_lines"] += 1
                self._sync_out()
                out, nout = self._slow_into(data[pos:end], recv_ns, out, nout, problems)
                self._sync_in()
                pos = buf.shape[0] if nl < 0 else nl + 1
        self._sync_out()
        for p in problems:
            self.problem_reasons[p.reason] = self.problem_reasons.get(p.reason, 0) + 1
        self.counters["problems"] += len(problems)
        if nout * 2 < out.shape[0]:
            return out[:nout].copy(), problems
        return out[:nout], problems

    def _slow_into(
        self, line: bytes, recv_ns: int, out: np.ndarray, nout: int, problems: list[ParseError]
    ) -> tuple[np.ndarray, int]:
        parts: list[np.ndarray] = []
        self._slow(line, recv_ns, parts, problems)
        for ev in parts:
            k = ev.shape[0]
            if nout + k > out.shape[0]:
                bigger = np.empty(max(2 * out.shape[0], nout + k), EVENT_DTYPE)
                bigger[:nout] = out[:nout]
                out = bigger
            out[nout : nout + k] = ev
            nout += k
        return out, nout

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
        ev, probs = to_events([msg], self.ctx, ts_recv=recv_ns)
        problems.extend(probs)
        if ev.shape[0]:
            parts.append(ev)
        return False


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
