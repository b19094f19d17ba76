"""IQFeed benchmarks on real data: client parse rate, simulator output rate over a socket, and the latency
from the simulator writing a line to the client handing over its event batch.

``run_all(data_dir)`` builds a temporary catalog from the real files (NEPT IQFeed ticks, the LOBSTER AMZN
level-5 day) and returns one dict per figure (``bench``, ``value``/``p50_us``/``p99_us``, ``unit`` and what
was measured), for ``quantedge bench`` and BENCHMARKS.md.  ``python -m quantedge.feeds.iqfeed.bench DATA``
prints them.

The simulator runs in its own process for the socket benchmarks (IQConnect is a separate program too), so
server and client each get a core of the 2-core machine; other jobs on the machine add noise, so every
figure says how many lines it is based on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quantedge import SHARED_DATA
from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.events import FLAG_SNAPSHOT, KIND_ORDER
from quantedge.feeds.iqfeed.client import EVENT_FIELDSET, ClientConfig, IQFeedClient, LineDecoder
from quantedge.feeds.iqfeed.protocol import ns_to_et
from quantedge.feeds.iqfeed.simulator import CatalogFeed, SimConfig, Simulator, _gather_lines

NEPT_TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
AMZN_L5 = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
NEPT_DAY = "2021-03-01"
AMZN_DAY = "2012-06-21"
AMZN_OPEN = "20120621 093000"  # replay seek target: just before the first message
PORTS0 = {"level1": 0, "lookup": 0, "level2": 0, "admin": 0}


def build_catalog(data_dir: str | Path, root: str | Path) -> Catalog:
    """A catalog with the real NEPT tick history and the LOBSTER AMZN level-5 day."""
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.importers.lobster import read_lobster

    data = Path(data_dir)
    cat = Catalog(root)
    ev, _ = read_iqfeed_ticks(data / NEPT_TICKS, cat.symbols)
    cat.write(ev, source="nept")
    ev, _ = read_lobster(data / AMZN_L5, cat.symbols)
    cat.write(ev, source="amzn5")
    return cat


def _chunks(data: bytes, size: int) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        cut = data.rfind(b"\n", pos, pos + size) + 1 or len(data)
        out.append(data[pos:cut])
        pos = cut
    return out


def bench_client_parse(feed: CatalogFeed, date: str, stream: str, read_bytes: int = 1 << 18,
                       min_seconds: float = 1.0) -> dict:
    """Lines/s ``LineDecoder.feed`` turns into event batches, fed the day's lines in ``read_bytes`` reads.

    ``stream``: ``l1`` (the day's Q lines only, no T lines), ``wor`` (order rows) or ``wpl`` (price levels).
    The day is decoded again and again for at least ``min_seconds``; warm (compiled, names registered).
    """
    r, _ = feed.rendered(date, stream, "6.2", EVENT_FIELDSET)
    rows = np.flatnonzero(r.sym >= 0)
    data = _gather_lines(r.buf, r.start, r.buf.shape[0], rows).tobytes()
    chunks = _chunks(data, read_bytes)
    port = "level1" if stream == "l1" else "level2"
    dec = LineDecoder(port, NameTable(feed.symbols.names()), fieldset=EVENT_FIELDSET)
    dec.ctx.date = ns_to_et(int(r.ts[rows[0]]))[0]
    for ch in chunks:
        dec.feed(ch, 0)
    n_lines = n_events = 0
    t0 = time.perf_counter()
    while True:
        for ch in chunks:
            ev, _ = dec.feed(ch, 0)
            n_events += ev.shape[0]
        n_lines += rows.shape[0]
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            break
    return {"bench": f"iqfeed client parse {stream}", "value": round(n_lines / dt), "unit": "lines/s",
            "lines": n_lines, "events": n_events, "day_lines": int(rows.shape[0]), "read_bytes": read_bytes,
            "reads_per_day": len(chunks), "bytes_per_line": round(len(data) / max(rows.shape[0], 1), 1),
            "slow_share": dec.counters["slow_lines"] / max(dec.counters["lines"], 1)}


# --- the simulator in its own process ---------------------------------------------------------------


def _serve_child(root: str, dates: list[str], trace: bool) -> None:
    """Child process: serve the catalog; JSON lines on stdout answer ``trace`` / ``stop`` on stdin."""

    async def go() -> None:
        cat = Catalog(root)
        sim = Simulator(SimConfig(cat.root, ports=dict(PORTS0), dates=dates, speed=0, paused=True,
                                  trace_writes=trace), cat)
        counts = {}  # rendering and the first gather (compile) happen before any timing
        for s in ("wor", "wpl"):
            r, _ = sim.feed.rendered(dates[0], s, "6.2")
            counts[s] = len(r)
            _gather_lines(r.buf, r.start, r.buf.shape[0], np.arange(min(len(r), 8), dtype=np.int64))
        ports = await sim.start()
        print(json.dumps({"ports": ports, "counts": counts}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            cmd = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if cmd == "trace":
                print(json.dumps(sim.write_trace or []), flush=True)
                sim.write_trace = [] if trace else None
            elif cmd in ("stop", ""):
                break
        await sim.stop()

    asyncio.run(go())


class SimProcess:
    """The simulator in a child process (``with SimProcess(root, dates) as sp: sp.ports ...``)."""

    def __init__(self, root: str | Path, dates: list[str], trace: bool = False) -> None:
        self.args = [sys.executable, "-m", "quantedge.feeds.iqfeed.bench", "--serve", str(root),
                     ",".join(dates), "1" if trace else "0"]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> SimProcess:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self._line())
        self.ports, self.counts = hello["ports"], hello["counts"]
        return self

    def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process exited ({self.proc.poll()})")
        return line

    def trace(self) -> list[tuple[int, int, int]]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("trace\n")
        self.proc.stdin.flush()
        return [tuple(x) for x in json.loads(self._line())]

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _admin(port: int, text: str) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(text.encode())
    await w.drain()
    for _ in range(text.count("\n")):
        await asyncio.wait_for(r.readline(), 10)
    w.close()


def _raw_subscribe(port: int, symbol: str, modes: tuple[str, ...]) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    cmds = "S,SET PROTOCOL,6.2\r\n" + "".join(f"{m},{symbol}\r\n" for m in modes)
    s.sendall(cmds.encode())
    return s


def bench_simulator_output(sp: SimProcess, symbol: str = "AMZN", date: str = AMZN_DAY) -> dict:
    """Lines/s the simulator writes at max speed through a real socket (WOR + WPL of one dense day).

    The reader is a plain blocking socket that only counts newlines, so the figure is the simulator's;
    it is timed from the first to the last byte of the streamed lines.
    """
    expect = sp.counts["wor"] + sp.counts["wpl"]
    s = _raw_subscribe(sp.ports["level2"], symbol, ("WOR", "WPL"))
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    # greeting, protocol answer, clear-depth lines of both subscriptions come first (replay paused)
    time.sleep(1.0)
    s.setblocking(False)
    pre = 0
    try:
        while True:
            k = s.recv_into(mv)
            if not k:
                break
            pre += buf[:k].count(b"\n")
    except BlockingIOError:
        pass
    s.setblocking(True)
    s.settimeout(20)
    asyncio.run(_admin(sp.ports["admin"], "S,REPLAY SPEED,max\r\nS,REPLAY RESUME\r\n"))
    got = 0
    nbytes = 0
    t_first = None
    while got < expect:
        k = s.recv_into(mv)
        if not k:
            break
        if t_first is None:
            t_first = time.perf_counter()
        got += buf[:k].count(b"\n")
        nbytes += k
    dt = time.perf_counter() - (t_first or time.perf_counter())
    s.close()
    asyncio.run(_admin(sp.ports["admin"], "S,REPLAY PAUSE\r\n"))
    return {"bench": "iqfeed simulator output (socket, max speed)", "value": round(got / dt) if dt else 0,
            "unit": "lines/s", "lines": got, "expected_lines": expect, "seconds": round(dt, 3),
            "mb_per_s": round(nbytes / dt / 1e6, 1) if dt else 0, "stream": f"{symbol} WOR+WPL {date}",
            "preamble_lines": pre}


def bench_end_to_end(sp: SimProcess, symbol: str = "AMZN") -> dict:
    """Lines/s from the simulator at max speed through the socket into the client's event batches (WOR)."""
    expect = sp.counts["wor"]

    async def go() -> tuple[int, float]:
        c = IQFeedClient(ClientConfig(ports=sp.ports, queue_batches=64))
        await c.watch_depth([symbol], "order")
        await asyncio.sleep(0.5)
        while not c.queue.empty():
            c.queue.get_nowait()
        await _admin(sp.ports["admin"], f"S,REPLAY SEEK,{AMZN_OPEN}\r\n"
                     "S,REPLAY SPEED,max\r\nS,REPLAY RESUME\r\n")
        n = 0
        t0 = None
        while n < expect:
            try:
                b = await c.next_batch(10)
            except TimeoutError:
                break
            if t0 is None:
                t0 = time.perf_counter()
            n += int(((b.events["kind"] == KIND_ORDER) & ((b.events["flags"] & FLAG_SNAPSHOT) == 0)).sum())
        dt = time.perf_counter() - (t0 or time.perf_counter())
        await _admin(sp.ports["admin"], "S,REPLAY PAUSE\r\n")
        await c.close()
        return n, dt

    n, dt = asyncio.run(go())
    return {"bench": "iqfeed simulator -> client batches (socket, max speed)",
            "value": round(n / dt) if dt else 0, "unit": "lines/s", "lines": n, "seconds": round(dt, 3),
            "stream": f"{symbol} WOR"}


def bench_latency(sp: SimProcess, rate: float, symbol: str = "AMZN", span_s: float = 23_400.0,
                  max_seconds: float = 20.0) -> dict:
    """Write -> batch latency of WOR lines at an offered load of about ``rate`` lines/s.

    The replay clock paces the real LOBSTER order flow (its bursts included) at ``speed = rate * span /
    lines``.  The simulator stamps every streamed write (``time.time_ns()`` after ``write``); the client
    stamps each batch when ``next_batch`` hands it over.  The k-th streamed order row of the day is the
    k-th non-snapshot KIND_ORDER event the client delivers, which pairs every line with its write.
    """
    lines = sp.counts["wor"]
    speed = rate * span_s / lines

    async def go() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = IQFeedClient(ClientConfig(ports=sp.ports, queue_batches=1024))
        await c.watch_depth([symbol], "order")
        await asyncio.sleep(0.5)
        while not c.queue.empty():
            c.queue.get_nowait()
        sp.trace()  # forget writes before this run
        await _admin(sp.ports["admin"], f"S,REPLAY SEEK,{AMZN_OPEN}\r\n"
                     f"S,REPLAY SPEED,{speed:.3f}\r\nS,REPLAY RESUME\r\n")
        deliver, count, recv = [], [], []
        n = 0
        end = time.monotonic() + max_seconds
        while n < lines and time.monotonic() < end:
            try:
                b = await c.next_batch(2.0)
            except TimeoutError:
                break
            now = time.time_ns()
            k = int(((b.events["kind"] == KIND_ORDER) & ((b.events["flags"] & FLAG_SNAPSHOT) == 0)).sum())
            if k:
                deliver.append(now)
                recv.append(b.recv_ns)
                count.append(k)
                n += k
        await _admin(sp.ports["admin"], "S,REPLAY PAUSE\r\n")
        await c.close()
        return np.array(deliver, np.int64), np.array(count, np.int64), np.array(recv, np.int64)

    deliver, count, recv = asyncio.run(go())
    tr = np.array(sp.trace(), np.int64).reshape(-1, 3)
    n = int(min(count.sum(), tr[:, 1].sum()))
    line_write = np.repeat(tr[:, 0], tr[:, 1])[:n]
    line_late = np.repeat(tr[:, 2], tr[:, 1])[:n]
    line_deliver = np.repeat(deliver, count)[:n]
    line_recv = np.repeat(recv, count)[:n]
    lat = (line_deliver - line_write) / 1000.0
    read = (line_recv - line_write) / 1000.0
    dur = (int(tr[-1, 0]) - int(tr[0, 0])) / 1e9 if tr.shape[0] > 1 else 0.0

    def pct(a: np.ndarray, q: float) -> float:
        return round(float(np.percentile(a, q)), 1) if a.shape[0] else float("nan")

    return {"bench": f"iqfeed latency write->batch at {rate:,.0f} lines/s", "unit": "µs",
            "p50_us": pct(lat, 50), "p99_us": pct(lat, 99),
            "max_us": round(float(lat.max()), 1) if n else None,
            "write_to_read_p50_us": pct(read, 50), "write_to_read_p99_us": pct(read, 99),
            "pacing_late_p99_us": pct(line_late / 1000.0, 99), "lines": n, "writes": int(tr.shape[0]),
            "lines_per_write": round(n / max(tr.shape[0], 1), 1), "batches": int(count.shape[0]),
            "achieved_lines_per_s": round(n / dur) if dur else None, "speed": round(speed, 1),
            "stream": f"{symbol} WOR {AMZN_DAY}"}


def run_all(data_dir: str | Path) -> list[dict]:
    """Every IQFeed figure on the real data under ``data_dir`` (a temporary catalog is built and removed)."""
    out: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="quantedge-iqfeed-bench-") as tmp:
        cat = build_catalog(data_dir, Path(tmp) / "cat")
        feed = CatalogFeed(cat)
        out.append(bench_client_parse(feed, NEPT_DAY, "l1"))
        out.append(bench_client_parse(feed, AMZN_DAY, "wor"))
        out.append(bench_client_parse(feed, AMZN_DAY, "wpl"))
        with SimProcess(cat.root, [AMZN_DAY], trace=True) as sp:
            out.append(bench_simulator_output(sp))
            out.append(bench_end_to_end(sp))
            for rate in (100_000, 1_000_000):
                out.append(bench_latency(sp, rate))
    return out


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--serve":
        _serve_child(argv[1], argv[2].split(","), argv[3] == "1")
        return
    for r in run_all(argv[0] if argv else SHARED_DATA):
        print(r)


if __name__ == "__main__":
    main(sys.argv[1:])
