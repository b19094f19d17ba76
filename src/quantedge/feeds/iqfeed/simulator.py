"""IQConnect emulator: replays catalog data over the IQFeed socket protocol (6.1 and 6.2).

An ordinary IQFeed client connects to 127.0.0.1 ports 5009 (Level 1), 9100 (lookup), 9200 (Level 2)
and 9300 (admin) and cannot tell it from IQConnect: the same handshake, the same lines.  Every line is
written by the protocol module (:class:`~quantedge.feeds.iqfeed.protocol.LineWriter`,
``format_message``), so the simulator and the client share one definition of every format.

Speed comes from rendering each day once per (port, protocol, fieldset) into one byte buffer with a
line index (replay time, symbol): a connection then streams by slicing that buffer for its watched
symbols, so output costs a memcpy per line, and many clients share one rendering.  All connections
share one :class:`ReplayClock` (speed 1x / Nx / max, start, pause, resume, seek) driven through the
admin port or :meth:`Simulator.clock`.  Protocol facts and admin commands: ``docs/iqfeed-simulator.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from quantedge.book.l3 import L3Book, _bits, l3_event
from quantedge.book.state import LV_PX, LV_SZ, SD_NLEV, side_index
from quantedge.catalog.merge import merge_sorted_runs
from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_DELETE,
    ACTION_MODIFY,
    EVENT_DTYPE,
    KIND_DEPTH,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.conditions import wire_conditions
from quantedge.feeds.iqfeed.protocol import (
    DEFAULT_FIELDSET,
    FUNDAMENTAL_FIELDS,
    PROTOCOLS,
    DepthCommand,
    EndMsg,
    Fieldset,
    Fundamental,
    HistoryRequest,
    L2Order,
    L2PriceLevel,
    LineWriter,
    LookupDailyRow,
    LookupIntervalRow,
    LookupTickRow,
    OtherMessage,
    ParseError,
    SymbolCommand,
    SystemMessage,
    Timestamp,
    TimestampRequest,
    error_response,
    et_to_ns,
    format_current_protocol,
    format_message,
    make_update,
    ns_to_et,
    parse_command,
)
from quantedge.feeds.iqfeed.protocol_system import parse_date_compact
from quantedge.venues import MMID_BASE, venue_name

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"level1": 5009, "lookup": 9100, "level2": 9200, "admin": 9300}
NS = 1_000_000_000
TOO_MANY = "Too many simultaneous history requests"
INVALID_SYMBOL = "Invalid symbol."
L1_KINDS = ("trade", "quote")
L2_KINDS = ("order", "depth", "clear")


# --- replay clock ------------------------------------------------------------------------------


class ReplayClock:
    """Replay time shared by every connection.  ``speed`` 0 means as fast as possible ("max").

    Replay time advances ``speed`` ns per wall ns while running; pause freezes it; seek jumps.  Every
    change bumps ``epoch`` and sets ``changed`` so sleeping streamers wake up at once.
    """

    def __init__(self, start_ns: int, speed: float = 1.0, paused: bool = False) -> None:
        self.speed = float(speed)
        self.paused = paused
        self.epoch = 0
        self._anchor_replay = int(start_ns)
        self._anchor_wall = time.monotonic_ns()
        self.changed = asyncio.Event() if _loop_running() else None
        self.max_position = int(start_ns)  # in max mode the stream position is the clock

    def now(self) -> int:
        if self.paused:
            return self._anchor_replay
        if self.speed <= 0:
            return 1 << 62  # max speed: everything is due
        return self._anchor_replay + int((time.monotonic_ns() - self._anchor_wall) * self.speed)

    def wall_of(self, replay_ns: int) -> int:
        """Monotonic wall time (ns) at which replay time ``replay_ns`` is due; now when paused or at max."""
        if self.paused or self.speed <= 0:
            return time.monotonic_ns()
        return self._anchor_wall + int((replay_ns - self._anchor_replay) / self.speed)

    def position(self) -> int:
        """Replay time to report (T lines, status): in max mode the furthest point streamed."""
        if self.speed <= 0 and not self.paused:
            return self.max_position
        return self.now()

    def _rebase(self, replay_ns: int) -> None:
        self._anchor_replay = int(replay_ns)
        self._anchor_wall = time.monotonic_ns()
        self.epoch += 1
        if self.changed is not None:
            self.changed.set()
            self.changed = asyncio.Event()

    def pause(self) -> None:
        if not self.paused:
            self._rebase(self.position())
            self.paused = True
            self.epoch += 1

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._rebase(self._anchor_replay)

    def set_speed(self, speed: float) -> None:
        pos = self.position()
        self.speed = float(speed)
        self._rebase(pos)

    def seek(self, replay_ns: int) -> None:
        self.max_position = int(replay_ns)
        self._rebase(replay_ns)

    async def wait_changed(self, timeout: float) -> None:
        ev = self.changed
        if ev is None:
            self.changed = ev = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


# --- rendered streams -------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One day of lines for one (port, protocol, fieldset): bytes + index, in merge order."""

    buf: np.ndarray  # uint8, all lines back to back (CRLF-terminated)
    start: np.ndarray  # int64 offset of line i
    ts: np.ndarray  # int64 replay time of line i (ns UTC); T lines at whole seconds
    sym: np.ndarray  # int32 symbol id, -1 for T lines
    last_q: dict[int, np.ndarray] = field(default_factory=dict)  # symbol -> indices of its lines

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def line(self, i: int) -> bytes:
        end = self.start[i + 1] if i + 1 < len(self) else self.buf.shape[0]
        return self.buf[self.start[i] : end].tobytes()


@njit(cache=True)
def _gather_lines(buf, start, total, idx):
    n = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        e = start[i + 1] if i + 1 < start.shape[0] else total
        n += e - start[i]
    out = np.empty(n, np.uint8)
    p = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        e = start[i + 1] if i + 1 < start.shape[0] else total
        for j in range(start[i], e):
            out[p] = buf[j]
            p += 1
    return out


def _pack(lines: list[str], ts: list[int], sym: list[int]) -> Rendered:
    enc = [s.encode("latin-1") for s in lines]
    lens = np.fromiter((len(b) for b in enc), np.int64, len(enc))
    start = np.zeros(len(enc), np.int64)
    if len(enc) > 1:
        np.cumsum(lens[:-1], out=start[1:])
    buf = np.frombuffer(b"".join(enc), np.uint8).copy()
    return Rendered(buf, start, np.asarray(ts, np.int64), np.asarray(sym, np.int32))


def _t_lines(first_ns: int, last_ns: int) -> tuple[list[str], list[int]]:
    """One ``T`` line per whole replay second from the first to the last event of a day."""
    out, ts = [], []
    s0 = first_ns // NS
    for s in range(s0, last_ns // NS + 1):
        d, tod = ns_to_et(s * NS)
        out.append(format_message(Timestamp(d, tod)))
        ts.append(s * NS)
    return out, ts


def render(
    events: np.ndarray, writer: LineWriter, timestamps: bool = True
) -> tuple[Rendered, list[ParseError]]:
    """Lines for ``events`` (one day, merge order) written by ``writer``, with T lines interleaved.

    Each event's lines carry its ``ts_event`` as replay time; T lines sort before events of their second.
    """
    lines: list[str] = []
    ts: list[int] = []
    sym: list[int] = []
    problems: list[ParseError] = []
    if timestamps and events.shape[0]:
        tl, tt = _t_lines(int(events["ts_event"].min()), int(events["ts_event"].max()))
    else:
        tl, tt = [], []
    ti = 0
    ev_ts = events["ts_event"]
    ev_sym = events["symbol"]
    for i in range(events.shape[0]):
        t = int(ev_ts[i])
        while ti < len(tt) and tt[ti] <= t:
            lines.append(tl[ti])
            ts.append(tt[ti])
            sym.append(-1)
            ti += 1
        out, probs = writer.lines(events[i : i + 1])
        problems.extend(probs)
        s = int(ev_sym[i])
        for ln in out:
            lines.append(ln)
            ts.append(t)
            sym.append(s)
    while ti < len(tt):
        lines.append(tl[ti])
        ts.append(tt[ti])
        sym.append(-1)
        ti += 1
    r = _pack(lines, ts, sym)
    # replay time must be monotone for searchsorted: clamp (events are in ts_recv order)
    np.maximum.accumulate(r.ts, out=r.ts)
    return r, problems


# --- Level 2 derivation from order flow (book kernels) --------------------------------------------


@njit(cache=True)
def _level_changes(lv, sd, bk, ot, otn, bits, kind, action, side, price, size, oid, cond, ts, sym, out_sz):
    """Apply each order event to the L3 book and record the new total at its price level (-1: no change)."""
    for i in range(kind.shape[0]):
        out_sz[i] = -1
        if kind[i] != KIND_ORDER:
            continue
        s = sym[i]
        si = side_index(side[i])
        l3_event(
            lv,
            sd,
            bk,
            ot,
            otn,
            bits,
            s,
            kind[i],
            action[i],
            side[i],
            price[i],
            size[i],
            oid[i],
            cond[i],
            ts[i],
        )
        if si < 0:
            continue
        tot = 0
        for j in range(sd[s, si, SD_NLEV]):
            if lv[s, si, j, LV_PX] == price[i]:
                tot = lv[s, si, j, LV_SZ]
                break
        out_sz[i] = tot


def price_levels_from_orders(orders: np.ndarray, n_symbols: int) -> np.ndarray:
    """Market-by-order events -> market-by-price KIND_DEPTH events (new total per touched level).

    Runs the project's L3 book kernel over the order flow, so WPL subscribers see exactly the levels
    an L3 book holds; a level whose total did not change produces no event, a level at 0 a delete.
    """
    book = L3Book.allocate(max(n_symbols, 1), capacity=512, tick=0, evict_stale=False)
    out_sz = np.zeros(orders.shape[0], np.int64)
    _level_changes(
        book.lv,
        book.sd,
        book.bk,
        book.ot,
        book.otn,
        _bits(book.ot.shape[0]),
        orders["kind"],
        orders["action"],
        orders["side"],
        orders["price"],
        orders["size"],
        orders["order_id"],
        orders["conditions"],
        orders["ts_event"],
        orders["symbol"],
        out_sz,
    )
    keep = out_sz >= 0
    out = orders[keep].copy()
    out["kind"] = KIND_DEPTH
    out["order_id"] = 0
    out["size"] = out_sz[keep]
    out["level"] = -1
    out["venue"] = 0
    out["action"] = np.where(out["size"] > 0, ACTION_MODIFY, ACTION_DELETE)
    # drop repeats: same (symbol, side, price, size) as that level's previous event
    return out


def market_maker_from_quotes(quotes: np.ndarray, mmids: NameTable) -> np.ndarray:
    """Per-venue quotes (KIND_QUOTE, venue != 0) -> market-maker KIND_DEPTH rows (legacy ``w`` depth).

    Each venue is one market maker (MMID = the venue's IQFeed short name) with one level per side.
    """
    q = quotes[(quotes["kind"] == KIND_QUOTE) & (quotes["venue"] != 0)].copy()
    ids = {int(v): mmids.id(venue_name(int(v))) for v in np.unique(q["venue"])}
    q["venue"] = np.array([ids[int(v)] for v in q["venue"]], np.int16) if q.shape[0] else q["venue"]
    q["kind"] = KIND_DEPTH
    q["action"] = np.where(q["size"] > 0, ACTION_MODIFY, ACTION_DELETE)
    return q


# --- catalog day data ------------------------------------------------------------------------------------


@dataclass
class DayData:
    date: str
    l1: np.ndarray  # trades + NBBO quotes, merge order
    orders: np.ndarray  # market-by-order events
    levels: np.ndarray  # market-by-price events derived from orders (or stored depth by price)
    mm: np.ndarray  # market-maker rows (venue >= MMID_BASE)

    @property
    def first_ns(self) -> int:
        vals = [int(a["ts_event"].min()) for a in (self.l1, self.orders, self.mm) if a.shape[0]]
        return min(vals) if vals else 0


class CatalogFeed:
    """Loads catalog days and renders per-protocol/fieldset streams on demand (cached)."""

    def __init__(
        self, catalog: Catalog, symbols: Iterable[str] | None = None, dates: Iterable[str] | None = None
    ) -> None:
        self.catalog = catalog
        self.symbols = catalog.symbols
        self.mmids = catalog.venues
        parts = catalog.partitions(symbols=symbols)
        want = set(dates) if dates is not None else None
        self.dates = sorted({p.date.isoformat() for p in parts if want is None or p.date.isoformat() in want})
        self.day_symbols = {
            d: sorted({p.symbol for p in parts if p.date.isoformat() == d}) for d in self.dates
        }
        self.known = {p.symbol for p in catalog.partitions()}
        self._days: dict[str, DayData] = {}
        self._rendered: dict[tuple, tuple[Rendered, list[ParseError]]] = {}

    def day(self, date: str) -> DayData:
        got = self._days.get(date)
        if got is None:
            l1, l2 = [], []
            for s in self.day_symbols[date]:
                l1.append(self.catalog.read(s, date, kinds=L1_KINDS))
                l2.append(self.catalog.read(s, date, kinds=("order", "depth", "clear", "quote")))
            a1 = merge_sorted_runs(l1) if l1 else np.zeros(0, EVENT_DTYPE)
            a2 = merge_sorted_runs(l2) if l2 else np.zeros(0, EVENT_DTYPE)
            a1 = a1[(a1["kind"] == KIND_TRADE) | ((a1["kind"] == KIND_QUOTE) & (a1["venue"] == 0))]
            orders = a2[a2["kind"] == KIND_ORDER]
            depth = a2[(a2["kind"] == KIND_DEPTH) & (a2["venue"] < MMID_BASE) & (a2["level"] < 0)]
            levels = price_levels_from_orders(orders, len(self.symbols)) if orders.shape[0] else depth
            mm = np.concatenate(
                [
                    a2[(a2["kind"] == KIND_DEPTH) & (a2["venue"] >= MMID_BASE)],
                    market_maker_from_quotes(a2, self.mmids),
                ]
            )
            mm = mm[np.argsort(mm["ts_recv"], kind="stable")]
            got = self._days[date] = DayData(date, a1, orders, levels, mm)
        return got

    def rendered(
        self, date: str, stream: str, protocol: str, fieldset: Fieldset = DEFAULT_FIELDSET
    ) -> tuple[Rendered, list[ParseError]]:
        """Rendered lines of one day for ``stream``: ``l1`` (Q lines), ``wor`` (order rows),
        ``wpl`` (price levels), ``mm`` (market maker)."""
        key = (date, stream, protocol, fieldset.names if stream == "l1" else None)
        got = self._rendered.get(key)
        if got is None:
            d = self.day(date)
            ev = {"l1": d.l1, "wor": d.orders, "wpl": d.levels, "mm": d.mm}[stream]
            w = LineWriter(self.symbols, self.mmids, protocol, fieldset)
            got = self._rendered[key] = render(ev, w, timestamps=stream == "l1")
        return got

    def date_of(self, ns: int) -> str | None:
        """The catalog day being replayed at replay time ``ns`` (the last day starting at or before it)."""
        cur = None
        for d in self.dates:
            dd = self.day(d)
            if dd.first_ns <= ns or cur is None:
                cur = d
        return cur


# --- server ------------------------------------------------------------------------------------------


@dataclass
class SimConfig:
    """Everything configurable about the emulator (CLI flags map 1:1)."""

    catalog: str | Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    symbols: list[str] | None = None
    dates: list[str] | None = None
    speed: float = 1.0  # 0 = max
    start: int | None = None  # replay start, ns UTC; default the first event of the first day
    paused: bool = False
    protocols: tuple[str, ...] = PROTOCOLS  # versions S,SET PROTOCOL accepts
    history_rate: float | None = None  # emulate DTN's token bucket (requests/s); None = unlimited
    history_burst: int = 50
    max_l1_symbols: int = 2000
    chunk_lines: int = 4096  # lines per write at max speed
    trace_writes: bool = False  # record (time_ns, lines, ns late) per streamed write (latency benchmark)


class Simulator:
    """The IQConnect emulator; ``await start()`` opens all ports, ``await stop()`` closes them."""

    def __init__(self, config: SimConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self.catalog = catalog or Catalog(config.catalog)
        self.feed = CatalogFeed(self.catalog, config.symbols, config.dates)
        first = self.feed.day(self.feed.dates[0]).first_ns if self.feed.dates else time.time_ns()
        self.clock = ReplayClock(
            config.start if config.start is not None else first, config.speed, config.paused
        )
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self.ports: dict[str, int] = {}
        self.connections: set[_Conn] = set()
        self.counters: dict[str, int] = {
            "connections": 0,
            "lines_sent": 0,
            "commands": 0,
            "bad_commands": 0,
            "history_requests": 0,
            "rate_limited": 0,
            "disconnects": 0,
        }
        self._bucket = (float(config.history_burst), time.monotonic())
        self.drop_hook = None  # tests: callable(conn) -> bool, True drops the connection (fault injection)
        #: per streamed write: (wall ns just before the write, lines, ns its first line was late by)
        self.write_trace: list[tuple[int, int, int]] | None = [] if config.trace_writes else None

    async def start(self) -> dict[str, int]:
        """Open every configured port (0 = ephemeral); returns the bound ports by role."""
        if self.clock.changed is None:
            self.clock.changed = asyncio.Event()
        for role, port in self.config.ports.items():
            srv = await asyncio.start_server(
                lambda r, w, role=role: self._serve(role, r, w), self.config.host, port
            )
            self.servers[role] = srv
            self.ports[role] = srv.sockets[0].getsockname()[1]
        return dict(self.ports)

    async def stop(self) -> None:
        for srv in self.servers.values():
            srv.close()
        for c in list(self.connections):
            c.close()
        for srv in self.servers.values():
            with contextlib.suppress(Exception):
                await srv.wait_closed()

    def drop_all(self, role: str | None = None) -> int:
        """Close every client connection (of one role): lets tests and operators simulate an outage."""
        n = 0
        for c in list(self.connections):
            if role is None or c.role == role:
                c.close()
                n += 1
        return n

    def take_history_token(self) -> bool:
        rate = self.config.history_rate
        if not rate:
            return True
        tokens, last = self._bucket
        now = time.monotonic()
        tokens = min(float(self.config.history_burst), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._bucket = (tokens, now)
            return False
        self._bucket = (tokens - 1.0, now)
        return True

    async def _serve(self, role: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(self, role, reader, writer)
        self.connections.add(conn)
        self.counters["connections"] += 1
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            self.counters["disconnects"] += 1
        except asyncio.CancelledError:
            pass
        except Exception:  # one broken connection must never take the server down
            log.exception("iqfeed simulator: connection on %s failed", role)
            self.counters["disconnects"] += 1
        finally:
            conn.close()
            self.connections.discard(conn)


class _Conn:
    """One client socket: handshake state, watches, streaming cursor."""

    def __init__(self, sim: Simulator, role: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.sim = sim
        self.role = role
        self.reader = reader
        self.writer = writer
        self.protocol = "6.2" if role != "level2" else "6.1"  # IQConnect's default before SET PROTOCOL
        self.protocol_set = False
        self.fieldset = DEFAULT_FIELDSET
        self.timestamps = role in ("level1", "level2")
        self.watch: dict[str, str] = {}  # symbol -> w|t (L1) or wor|wpl|mm (L2)
        self.watch_ids = np.zeros(0, np.int32)
        self.trades_only_ids = np.zeros(0, np.int32)
        self.closed = False
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.cursor: dict[str, int] = {}
        self.epoch = -1
        self.date: str | None = None
        self.client_name = ""
        self.stats_on = role == "admin"

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for t in self.tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                self.writer.close()

    def send(self, text: str | bytes) -> None:
        if self.closed:
            return
        data = text.encode("latin-1") if isinstance(text, str) else text
        self.writer.write(data)
        self.sim.counters["lines_sent"] += data.count(b"\n")

    async def flush(self) -> None:
        await self.writer.drain()

    # --- lifecycle
    async def run(self) -> None:
        if self.role == "level1":
            self.send(format_message(SystemMessage("KEY", ("99999",))))
            self.send(format_message(SystemMessage("SERVER CONNECTED")))
            self.send(format_message(SystemMessage("IP", ("127.0.0.1 60004",))))
            self.send(
                format_message(
                    SystemMessage(
                        "CUST",
                        (
                            "real_time",
                            "127.0.0.1",
                            "60002",
                            "quantedge",
                            "6.2.0.25",
                            "0",
                            "NASDAQ NYSE NYSE_AMERICAN",
                            "",
                            str(self.sim.config.max_l1_symbols),
                            "QT_API",
                            "",
                            "",
                        ),
                    )
                )
            )
            self._send_t()
        elif self.role == "level2":
            self.send(format_message(SystemMessage("SERVER CONNECTED")))
            self._send_t()
        await self.flush()
        if self.role in ("level1", "level2"):
            self.tasks.append(asyncio.ensure_future(self._stream()))
        if self.role == "admin":
            self.tasks.append(asyncio.ensure_future(self._admin_ticker()))
        while not self.closed:
            raw = await self.reader.readline()
            if not raw:
                return
            if len(raw) > 65536:
                self.send(format_message(SystemMessage("ERROR", ("line too long",))))
                continue
            self.sim.counters["commands"] += 1
            await self._command(raw.decode("latin-1").rstrip("\r\n"))
            await self.flush()

    def _send_t(self) -> None:
        if self.timestamps:
            d, tod = ns_to_et(min(self.sim.clock.position(), 1 << 62))
            self.send(format_message(Timestamp(d, tod - tod % 1_000_000)))

    # --- commands
    async def _command(self, line: str) -> None:
        if not line:
            return
        if self.role == "admin" and line.startswith("S,REPLAY"):
            self.send(self._replay_command(line))
            return
        cmd = parse_command(line, self.role)
        if isinstance(cmd, ParseError):
            self.sim.counters["bad_commands"] += 1
            self.send(
                f"E,!SYNTAX_ERROR!,{cmd.reason},\r\n"
                if self.role != "lookup"
                else error_response(None, "!SYNTAX_ERROR!")
            )
            return
        if isinstance(cmd, SystemMessage):
            self._system(cmd)
        elif isinstance(cmd, TimestampRequest):
            self._send_t()
        elif isinstance(cmd, HistoryRequest):
            await self._history(cmd)
        elif isinstance(cmd, SymbolCommand):
            self._symbol_command(cmd)
        elif isinstance(cmd, DepthCommand):
            self._depth_command(cmd)
        elif isinstance(cmd, OtherMessage):
            if cmd.msg_type in ("c", "x"):
                return
            if self.role == "lookup":
                rid = cmd.fields[-1] if cmd.fields else None
                self.send(error_response(rid or None, "!SYNTAX_ERROR!"))
            else:
                self.send(f"E,!SYNTAX_ERROR!,{cmd.msg_type} not supported by the simulator,\r\n")

    def _system(self, m: SystemMessage) -> None:
        name = m.name
        if name == "SET PROTOCOL":
            v = m.args[0] if m.args else ""
            if v in self.sim.config.protocols:
                self.protocol = v
                self.protocol_set = True
                self.send(format_current_protocol(v))
            else:
                self.send(f"E,{v} is not a valid protocol.,\r\n")
        elif name == "SET CLIENT NAME":
            self.client_name = m.args[0] if m.args else ""
        elif name in ("CONNECT", "DISCONNECT"):
            self.send(
                format_message(
                    SystemMessage("SERVER CONNECTED" if name == "CONNECT" else "SERVER DISCONNECTED")
                )
            )
        elif name == "TIMESTAMPSON":
            self.timestamps = True
        elif name == "TIMESTAMPSOFF":
            self.timestamps = False
        elif name == "SELECT UPDATE FIELDS":
            try:
                self.fieldset = Fieldset(tuple(a for a in m.args if a))
            except ValueError as e:
                self.send(f"E,{e},\r\n")
                return
            self.send(self.fieldset.current_fieldnames_line())
        elif name == "REQUEST CURRENT UPDATE FIELDNAMES":
            self.send(self.fieldset.current_fieldnames_line())
        elif name == "REQUEST ALL UPDATE FIELDNAMES":
            from quantedge.feeds.iqfeed.protocol import ALL_FIELDS

            self.send(format_message(SystemMessage("UPDATE FIELDNAMES", tuple(ALL_FIELDS))))
        elif name == "REQUEST FUNDAMENTAL FIELDNAMES":
            self.send(
                format_message(SystemMessage("FUNDAMENTAL FIELDNAMES", ("Symbol", *FUNDAMENTAL_FIELDS[1:])))
            )
        elif name == "REQUEST WATCHES":
            self.send(format_message(SystemMessage("WATCHES", tuple(sorted({_wsym(w) for w in self.watch})))))
        elif name == "UNWATCH ALL":
            self.watch.clear()
            self._rebuild_ids()
        elif name == "REQUEST STATS":
            self.send(self._stats_line())
        elif name == "CLEAR DEPTH" or name in (
            "REGON",
            "REGOFF",
            "NEWSON",
            "NEWSOFF",
            "SET LOG LEVELS",
            "KEY",
        ):
            return
        elif name == "REGISTER CLIENT APP":
            self.send("S,REGISTER CLIENT APP COMPLETED\r\n")
        elif name == "REMOVE CLIENT APP":
            self.send("S,REMOVE CLIENT APP COMPLETED\r\n")
        elif name == "SET LOGINID":
            self.send(format_message(SystemMessage("CURRENT LOGINID", m.args)))
        elif name == "SET PASSWORD":
            self.send(format_message(SystemMessage("CURRENT PASSWORD", m.args)))
        elif name == "SET AUTOCONNECT":
            self.send("S,AUTOCONNECT " + ("ON" if m.args and m.args[0].lower() == "on" else "OFF") + "\r\n")
        elif name == "CLIENTSTATS ON":
            self.stats_on = True
        elif name == "CLIENTSTATS OFF":
            self.stats_on = False
        else:
            self.send(f"E,!SYNTAX_ERROR!,S,{name},\r\n")

    def _stats_line(self) -> str:
        c = self.sim
        watched = sum(len(x.watch) for x in c.connections if x.role == "level1")
        return format_message(
            SystemMessage(
                "STATS",
                (
                    "127.0.0.1",
                    "60002",
                    str(c.config.max_l1_symbols),
                    str(watched),
                    str(len(c.connections)),
                    "0",
                    "0",
                    "0",
                    "",
                    "",
                    "Connected",
                    "6.2.0.25",
                    "SIMULATOR",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "",
                    "",
                ),
            )
        )

    def _replay_command(self, line: str) -> str:
        """Admin replay control (simulator extension): PAUSE, RESUME, SPEED,<x|max>, SEEK,<YYYYMMDD HHMMSS>,
        STATUS.  Every command answers ``S,REPLAY STATUS,...``; a bad one ``E,<reason>,``."""
        parts = line.split(",")
        verb = parts[1][len("REPLAY") :].strip() if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        clock = self.sim.clock
        try:
            if verb == "PAUSE":
                clock.pause()
            elif verb == "RESUME":
                clock.resume()
            elif verb == "SPEED":
                clock.set_speed(0.0 if arg.lower() == "max" else float(arg))
                if clock.speed < 0:
                    raise ValueError("speed must be >= 0")
            elif verb == "SEEK":
                clock.seek(parse_replay_time(arg))
            elif verb != "STATUS":
                raise ValueError(f"unknown replay command {verb!r}")
        except ValueError as e:
            return f"E,{e},\r\n"
        return replay_status_line(clock)

    async def _admin_ticker(self) -> None:
        while not self.closed:
            await asyncio.sleep(1.0)
            if self.stats_on:
                self.send(self._stats_line())
                with contextlib.suppress(Exception):
                    await self.flush()

    def _rebuild_ids(self) -> None:
        ids = [self.sim.feed.symbols.get(_wsym(s)) for s in self.watch]
        self.watch_ids = np.array(sorted(i for i in ids if i is not None), np.int32)
        t = [self.sim.feed.symbols.get(s) for s, k in self.watch.items() if k == "t"]
        self.trades_only_ids = np.array(sorted(i for i in t if i is not None), np.int32)
        self.wake.set()

    # --- Level 1
    def _symbol_command(self, cmd: SymbolCommand) -> None:
        sym = cmd.symbol.upper()
        if cmd.command == "m":
            self.send(f"M,{sym},{sym} (simulated market maker)\r\n")
            return
        if cmd.command == "r":
            self.watch.pop(sym if self.role == "level1" else f"{sym}\x00mm", None)
            self._rebuild_ids()
            return
        if sym not in self.sim.feed.known:
            self.send(f"n,{sym}\r\n")
            return
        if cmd.command == "f":
            if sym in self.watch:
                self._summary(sym)
            return
        if (
            self.role == "level1"
            and sym not in self.watch
            and len(self.watch) >= self.sim.config.max_l1_symbols
        ):
            self.send(format_message(SystemMessage("SYMBOL LIMIT REACHED", (sym,))))
            return
        if self.role == "level2":
            self.watch[f"{sym}\x00mm"] = "mm"
            self._rebuild_ids()
            self._depth_snapshot(sym, "mm")
            return
        self.watch[sym] = cmd.command
        self._rebuild_ids()
        self._summary(sym)

    def _summary(self, sym: str) -> None:
        """F (synthesized, see docs) then P: the latest Q of the symbol as of the replay clock."""
        sid = self.sim.feed.symbols.id(sym)
        vals = [""] * len(FUNDAMENTAL_FIELDS)
        vals[0] = sym
        names = {n: i for i, n in enumerate(FUNDAMENTAL_FIELDS)}
        for k, v in (
            ("Company Name", sym),
            ("Precision", "4"),
            ("Security Type", "1"),
            ("Listed Market", "5"),
            ("Exchange ID", "5"),
        ):
            if k in names:
                vals[names[k]] = v
        self.send(format_message(Fundamental(tuple(vals))))
        date = self.sim.feed.date_of(self.sim.clock.position())
        line = None
        if date is not None:
            r, _ = self.sim.feed.rendered(date, "l1", self.protocol, self.fieldset)
            idx = np.flatnonzero(r.sym == sid)
            cut = np.searchsorted(r.ts[idx], self.sim.clock.position(), "left") if idx.shape[0] else 0
            if cut:
                line = r.line(int(idx[cut - 1]))
        if line is not None and line.startswith(b"Q,"):
            self.send(b"P" + line[1:])
        else:
            self.send(format_message(make_update("P", self.fieldset, {"Symbol": sym})))

    # --- Level 2
    def _depth_command(self, cmd: DepthCommand) -> None:
        sym = cmd.symbol.upper()
        if cmd.command in ("ROR", "RPL"):
            self.watch.pop(f"{sym}\x00{'wor' if cmd.command == 'ROR' else 'wpl'}", None)
            self._rebuild_ids()
            return
        if sym not in self.sim.feed.known:
            self.send(f"n,{sym}\r\n")
            return
        if self.protocol != "6.2":
            self.send(f"E,{cmd.command} needs protocol 6.2,\r\n")
            return
        mode = "wor" if cmd.command == "WOR" else "wpl"
        self.watch[f"{sym}\x00{mode}"] = mode
        self._rebuild_ids()
        self._depth_snapshot(sym, mode)

    def _depth_snapshot(self, sym: str, mode: str) -> None:
        """``S,CLEAR DEPTH`` for both sides, then summary rows (6 / 7 / Z) of the book at the replay clock."""
        date = self.sim.feed.date_of(self.sim.clock.position())
        if self.protocol == "6.2":
            self.send(f"S,CLEAR DEPTH,{sym},B,\r\nS,CLEAR DEPTH,{sym},A,\r\n")
        if date is None:
            return
        sid = self.sim.feed.symbols.id(sym)
        t = self.sim.clock.position()
        d = self.sim.feed.day(date)
        src = {"wor": d.orders, "wpl": d.levels, "mm": d.mm}[mode]
        ev = src[(src["symbol"] == sid) & (src["ts_event"] < t)]
        if ev.shape[0] == 0:
            return
        lines = snapshot_lines(ev, mode, sym, self.protocol, self.sim.feed.mmids, t)
        self.send("".join(lines))

    # --- streaming
    async def _stream(self) -> None:
        feed = self.sim.feed
        clock = self.sim.clock
        while not self.closed:
            if self.epoch != clock.epoch:
                resync = self.epoch >= 0
                self.epoch = clock.epoch
                self.cursor.clear()
                if resync:
                    for sym, mode in list(self.watch.items()):
                        if self.role == "level2":
                            self._depth_snapshot(_wsym(sym), mode)
            pos = clock.position() if clock.speed > 0 or clock.paused else None
            date = feed.date_of(pos if pos is not None else clock.max_position)
            if date is None or not self.watch_ids.shape[0] and not self.timestamps:
                self.wake.clear()
                await _wait_any(self.wake, clock, 0.25)
                continue
            sent = 0
            next_due = None
            # every new stream starts where the replay stood before this pass (in max mode the first stream's
            # chunk moves the position on; a second stream starting from there would skip lines)
            start_pos = clock.position()
            for stream in self._streams():
                r, _ = feed.rendered(date, stream, self.protocol, self.fieldset)
                key = stream
                if key not in self.cursor:
                    self.cursor[key] = int(np.searchsorted(r.ts, start_pos, "left"))
                cur = self.cursor[key]
                if cur >= len(r):
                    continue
                now = clock.now()
                hi = int(np.searchsorted(r.ts, now, "right")) if clock.speed > 0 or clock.paused else len(r)
                hi = min(hi, cur + self.sim.config.chunk_lines)
                if hi > cur:
                    sel = self._select(r, cur, hi, stream)
                    if sel.shape[0]:
                        data = _gather_lines(r.buf, r.start, r.buf.shape[0], sel).tobytes()
                        if self.sim.write_trace is not None:  # stamped before the write: latency >= truth
                            late = time.monotonic_ns() - clock.wall_of(int(r.ts[sel[0]]))
                            self.sim.write_trace.append((time.time_ns(), sel.shape[0], late))
                        self.send(data)
                        sent += sel.shape[0]
                    self.cursor[key] = hi
                    if clock.speed <= 0 and not clock.paused:
                        clock.max_position = max(clock.max_position, int(r.ts[hi - 1]))
                if self.cursor[key] < len(r):
                    nd = int(r.ts[self.cursor[key]])
                    next_due = nd if next_due is None else min(next_due, nd)
            if sent:
                await self.flush()
                if self.sim.drop_hook is not None and self.sim.drop_hook(self):
                    self.close()
                    return
                continue
            if next_due is None:
                nxt = feed.dates.index(date) + 1
                if nxt < len(feed.dates) and clock.speed <= 0 and not clock.paused:
                    clock.max_position = feed.day(feed.dates[nxt]).first_ns
                    self.cursor.clear()
                    continue
                await _wait_any(self.wake, clock, 0.25)
                self.wake.clear()
                continue
            if clock.paused:
                await _wait_any(self.wake, clock, 0.25)
                self.wake.clear()
                continue
            wait = (next_due - clock.now()) / NS / max(clock.speed, 1e-9)
            await _wait_any(self.wake, clock, min(max(wait, 0.0), 0.25))
            self.wake.clear()

    def _streams(self) -> list[str]:
        if self.role == "level1":
            return ["l1"]
        modes = set(self.watch.values())
        return [m for m in ("wor", "wpl", "mm") if m in modes]

    def _select(self, r: Rendered, lo: int, hi: int, stream: str) -> np.ndarray:
        sym = r.sym[lo:hi]
        if stream == "l1":
            mask = np.isin(sym, self.watch_ids)
            if self.trades_only_ids.shape[0]:
                tonly = np.isin(sym, self.trades_only_ids)
                if tonly.any():
                    q = np.flatnonzero(tonly)
                    is_trade = np.array([_q_is_trade(r.line(lo + int(i))) for i in q], bool)
                    mask[q[~is_trade]] = False
            if self.timestamps:
                mask |= sym == -1
        else:
            ids = [self.sim.feed.symbols.get(_wsym(s)) for s, m in self.watch.items() if m == stream]
            mask = np.isin(sym, np.array([i for i in ids if i is not None], np.int32))
        return (np.flatnonzero(mask) + lo).astype(np.int64)

    # --- lookup
    async def _history(self, req: HistoryRequest) -> None:
        self.sim.counters["history_requests"] += 1
        rid = req.request_id
        if not self.sim.take_history_token():
            self.sim.counters["rate_limited"] += 1
            self.send(error_response(rid, TOO_MANY))
            return
        sym = req.symbol.upper()
        if sym not in self.sim.feed.known:
            self.send(error_response(rid, INVALID_SYMBOL))
            return
        try:
            lines = history_lines(self.sim.catalog, req, self.protocol, self.sim.clock.position())
        except ValueError as e:
            self.send(error_response(rid, f"!SYNTAX_ERROR! {e}"))
            return
        if not lines:
            self.send(error_response(rid, "!NO_DATA!"))
            return
        step = max(1, req.datapoints_per_send or 2000)
        for i in range(0, len(lines), step):
            self.send("".join(lines[i : i + step]))
            await self.flush()
        self.send(format_message(EndMsg(rid)))


def _wsym(key: str) -> str:
    """Symbol of a watch key (Level 2 keys are ``SYM\\x00mode``: one symbol may have WOR and WPL)."""
    return key.split("\x00", 1)[0]


def _q_is_trade(line: bytes) -> bool:
    """Trades-only watch (``t``): keep Q lines whose contents carry C, E or O."""
    return any(c in line for c in (b",C", b",E", b",O"))


async def _wait_any(ev: asyncio.Event, clock: ReplayClock, timeout: float) -> None:
    waiters = [asyncio.ensure_future(ev.wait()), asyncio.ensure_future(clock.wait_changed(timeout))]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def parse_replay_time(text: str) -> int:
    """``YYYYMMDD HHMMSS`` (or ``YYYYMMDD HH:MM:SS``, ET) -> ns UTC; ValueError names the format."""
    t = text.strip()
    try:
        d, hms = t.split(" ")
        hms = hms.replace(":", "")
        ymd = parse_date_compact(d, "seek")
        if len(hms) != 6 or not hms.isdigit() or ymd is None:
            raise ValueError
        us = (int(hms[:2]) * 3600 + int(hms[2:4]) * 60 + int(hms[4:])) * 1_000_000
    except Exception as e:
        raise ValueError(f"replay time {text!r}: expected 'YYYYMMDD HHMMSS' (ET)") from e
    return et_to_ns(ymd, us)


def replay_status_line(clock: ReplayClock) -> str:
    d, tod = ns_to_et(min(clock.position(), (1 << 62)))
    speed = "max" if clock.speed <= 0 else f"{clock.speed:g}"
    state = "paused" if clock.paused else "running"
    h, rem = divmod(tod, 3_600_000_000)
    m, rem = divmod(rem, 60_000_000)
    return f"S,REPLAY STATUS,{state},{speed},{d:08d} {h:02d}{m:02d}{rem // 1_000_000:02d}\r\n"


def snapshot_lines(ev: np.ndarray, mode: str, sym: str, protocol: str, mmids: NameTable, t: int) -> list[str]:
    """Summary rows for the book implied by ``ev`` (one symbol's events up to ``t``)."""
    d, tod = ns_to_et(t)
    out = []
    if mode == "wor":
        live: dict[int, list] = {}
        for e in ev:
            oid, a = int(e["order_id"]), int(e["action"])
            if a == 1:
                live[oid] = [int(e["side"]), int(e["price"]), int(e["size"])]
            elif oid in live:
                st = live[oid]
                if a == ACTION_MODIFY:
                    st[1], st[2] = int(e["price"]) or st[1], int(e["size"])
                elif a in (3, 5):
                    st[2] -= int(e["size"])
                if a == ACTION_DELETE or st[2] <= 0:
                    del live[oid]
        for oid, (side, price, size) in live.items():
            out.append(
                format_message(
                    L2Order("6", sym, oid, "", "B" if side == SIDE_BID else "A", price, size, None, 4, tod, d)
                )
            )
        return out
    key_cols = ("side", "price") if mode == "wpl" else ("side", "venue")
    order = np.lexsort((np.arange(ev.shape[0]), ev[key_cols[1]], ev[key_cols[0]]))
    s = ev[order]
    last = np.ones(s.shape[0], bool)
    last[:-1] = (s[key_cols[0]][1:] != s[key_cols[0]][:-1]) | (s[key_cols[1]][1:] != s[key_cols[1]][:-1])
    cur = s[last & (s["size"] > 0) & (s["action"] != ACTION_DELETE)]
    for e in cur:
        side = "B" if int(e["side"]) == SIDE_BID else "A"
        if mode == "wpl":
            out.append(
                format_message(L2PriceLevel("7", sym, side, int(e["price"]), int(e["size"]), None, 4, tod, d))
            )
        else:
            mmid = mmids.name(int(e["venue"]))
            if protocol == "6.2":
                out.append(
                    format_message(
                        L2Order("6", sym, None, mmid, side, int(e["price"]), int(e["size"]), None, 4, tod, d)
                    )
                )
            else:
                from quantedge.feeds.iqfeed.protocol import L2LegacyMM

                bid = (int(e["price"]), int(e["size"])) if side == "B" else (None, None)
                ask = (int(e["price"]), int(e["size"])) if side == "A" else (None, None)
                out.append(
                    format_message(
                        L2LegacyMM(
                            "Z",
                            sym,
                            mmid,
                            bid[0],
                            ask[0],
                            bid[1],
                            ask[1],
                            tod,
                            d,
                            "",
                            tod,
                            bid[0] is not None,
                            ask[0] is not None,
                            True,
                        )
                    )
                )
    return out


# --- history answers -----------------------------------------------------------------------------


def _filter_tod(ts: np.ndarray, begin: str | None, end: str | None) -> np.ndarray:
    if not begin and not end:
        return np.ones(ts.shape[0], bool)
    tod = np.array([ns_to_et(int(x))[1] // 1_000_000 for x in ts], np.int64)
    ok = np.ones(ts.shape[0], bool)
    if begin:
        ok &= tod >= int(begin[:2]) * 3600 + int(begin[2:4]) * 60 + int(begin[4:6])
    if end:
        ok &= tod <= int(end[:2]) * 3600 + int(end[2:4]) * 60 + int(end[4:6])
    return ok


def tick_rows(
    catalog: Catalog, symbol: str, start_date: str | None = None, end_date: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Catalog trades of ``symbol`` with the NBBO in force and the day's cumulative volume.

    Returns (trades, bid, ask, total_volume) aligned by trade.
    """
    parts = catalog.partitions(symbols=[symbol], start=start_date, end=end_date, kinds=("trade",))
    trades, bids, asks, vols = [], [], [], []
    for p in parts:
        ev = catalog.read(symbol, p.date, kinds=("trade", "quote"))
        is_t = ev["kind"] == KIND_TRADE
        nbbo = (ev["kind"] == KIND_QUOTE) & (ev["venue"] == 0)
        bid = np.where(nbbo & (ev["side"] == SIDE_BID), ev["price"], -1)
        ask = np.where(nbbo & (ev["side"] == SIDE_ASK), ev["price"], -1)
        bid_ff = _ffill(bid)
        ask_ff = _ffill(ask)
        t = ev[is_t]
        trades.append(t)
        bids.append(bid_ff[is_t])
        asks.append(ask_ff[is_t])
        vols.append(np.cumsum(t["size"]))
    if not trades:
        z = np.zeros(0, np.int64)
        return np.zeros(0, EVENT_DTYPE), z, z, z
    return np.concatenate(trades), np.concatenate(bids), np.concatenate(asks), np.concatenate(vols)


def _ffill(a: np.ndarray) -> np.ndarray:
    idx = np.where(a >= 0, np.arange(a.shape[0]), 0)
    np.maximum.accumulate(idx, out=idx)
    out = a[idx]
    return np.where(out >= 0, out, 0)


def _window(req: HistoryRequest, now_ns: int, dates: list[str]) -> tuple[int, int]:
    lo, hi = -(1 << 62), now_ns
    if req.command in ("HTT", "HIT"):
        if req.begin:
            lo = req.begin_ns() or lo
        if req.end:
            hi = min(hi, req.end_ns() or hi)
    elif req.command in ("HTD", "HID") and req.days:
        d_now, _ = ns_to_et(now_ns)
        import datetime as dt

        day0 = dt.date(d_now // 10000, d_now // 100 % 100, d_now % 100) - dt.timedelta(days=req.days - 1)
        lo = et_to_ns(day0.year * 10000 + day0.month * 100 + day0.day, 0)
    elif req.command == "HDT":
        if req.begin_date:
            lo = et_to_ns(int(req.begin_date), 0)
        if req.end_date:
            hi = min(hi, et_to_ns(int(req.end_date), 86_399_999_999))
    return lo, hi


def history_lines(catalog: Catalog, req: HistoryRequest, protocol: str, now_ns: int) -> list[str]:
    """The response rows (without the terminator) for one history request, as of replay time ``now_ns``."""
    sym = req.symbol.upper()
    trades, bid, ask, vol = tick_rows(catalog, sym)
    lo, hi = _window(req, now_ns, [])
    ts = trades["ts_event"]
    keep = (ts >= lo) & (ts <= hi)
    if req.command not in ("HDX", "HDT", "HWX", "HMX"):
        keep &= _filter_tod(ts, req.begin_filter, req.end_filter)
    trades, bid, ask, vol = trades[keep], bid[keep], ask[keep], vol[keep]
    rid = req.request_id
    kind = req.row_kind
    rows: list = []
    if kind == "tick":
        for i in range(trades.shape[0]):
            e = trades[i]
            venue = int(e["venue"])
            basis, conds = wire_conditions(int(e["conditions"]), venue)
            side = int(e["side"])
            d, _ = ns_to_et(int(e["ts_event"]))
            rows.append(
                LookupTickRow(
                    rid,
                    int(e["ts_event"]) // 1000 * 1000,
                    int(e["price"]),
                    int(e["size"]),
                    int(vol[i]),
                    int(bid[i]),
                    int(ask[i]),
                    int(e["seq"]),
                    basis,
                    venue,
                    conds,
                    1 if side == SIDE_BID else 2 if side == SIDE_ASK else 0,
                    d % 100,
                )
            )
    elif kind == "interval":
        rows = _interval_rows(trades, vol, req)
    else:
        rows = _daily_rows(trades, req)
    if req.max_datapoints:
        rows = rows[-req.max_datapoints :]
    if not req.direction:
        rows = rows[::-1]
    return [format_message(r, protocol) for r in rows]


def _interval_rows(trades: np.ndarray, vol: np.ndarray, req: HistoryRequest) -> list:
    itype = req.interval_type or "s"
    n = max(1, int(req.interval or 60))
    if trades.shape[0] == 0:
        return []
    ts = trades["ts_event"]
    if itype == "s":
        dates = np.array([ns_to_et(int(x))[0] for x in ts])
        base = np.array([et_to_ns(int(d), 0) for d in dates], np.int64)
        bucket = (ts - base) // (n * NS)
        key = dates.astype(np.int64) * 10**9 + bucket
    elif itype == "t":
        key = np.arange(ts.shape[0]) // n
    elif itype == "v":
        before = np.cumsum(trades["size"]) - trades["size"]
        key = before // n
    else:
        raise ValueError(f"interval type {itype!r} (expected s, v or t)")
    brk = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate(([0], brk))
    ends = np.concatenate((brk, [ts.shape[0]]))
    out = []
    px = trades["price"]
    for a, b in zip(starts, ends, strict=True):
        if itype == "s":
            d = int(key[a] // 10**9)
            label = et_to_ns(d, 0) + int(key[a] % 10**9) * n * NS + (0 if req.label_at_beginning else n * NS)
        else:
            label = int(ts[b - 1]) // NS * NS
        seg = px[a:b]
        out.append(
            LookupIntervalRow(
                req.request_id,
                label,
                int(seg.max()),
                int(seg.min()),
                int(seg[0]),
                int(seg[-1]),
                int(vol[b - 1]),
                int(trades["size"][a:b].sum()),
                int(b - a),
            )
        )
    return out


def _daily_rows(trades: np.ndarray, req: HistoryRequest) -> list:
    if trades.shape[0] == 0:
        return []
    dates = np.array([ns_to_et(int(x))[0] for x in trades["ts_event"]], np.int64)
    brk = np.flatnonzero(np.diff(dates)) + 1
    out = []
    px = trades["price"]
    for a, b in zip(np.concatenate(([0], brk)), np.concatenate((brk, [dates.shape[0]])), strict=True):
        seg = px[a:b]
        out.append(
            LookupDailyRow(
                req.request_id,
                int(dates[a]),
                int(seg.max()),
                int(seg.min()),
                int(seg[0]),
                int(seg[-1]),
                int(trades["size"][a:b].sum()),
                0,
            )
        )
    return out


async def serve_forever(config: SimConfig) -> None:
    """Run the emulator until cancelled (the CLI's ``simulate``)."""
    sim = Simulator(config)
    ports = await sim.start()
    log.info("iqfeed simulator listening on %s", ports)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
