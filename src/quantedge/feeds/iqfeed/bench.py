"""IQFeed benchmarks: simulator output rate, client parse rate, simulator->client latency.

Run ``python -m quantedge.feeds.iqfeed.bench <catalog>``; each function returns a dict like
``{"bench": "simulator lines/s", "value": ..., "unit": "lines/s", ...}`` for BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np

from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.feeds.iqfeed.client import EVENT_FIELDSET, ClientConfig, IQFeedClient, LineDecoder
from quantedge.feeds.iqfeed.simulator import CatalogFeed, SimConfig, Simulator, _gather_lines


def bench_simulator_render_and_select(catalog: Catalog, date: str, repeat: int = 50) -> dict:
    """Lines/s the streaming path produces at max speed (select watched lines + gather bytes)."""
    feed = CatalogFeed(catalog, None, [date])
    r, _ = feed.rendered(date, "l1", "6.2", EVENT_FIELDSET)
    ids = np.unique(r.sym[r.sym >= 0]).astype(np.int32)
    t = time.perf_counter()
    n = 0
    for _ in range(repeat):
        sel = np.flatnonzero(np.isin(r.sym, ids) | (r.sym == -1))
        out = _gather_lines(r.buf, r.start, r.buf.shape[0], sel)
        n += sel.shape[0]
    dt = time.perf_counter() - t
    return {"bench": "simulator lines/s", "value": n / dt, "unit": "lines/s", "lines": n,
            "bytes_per_line": out.shape[0] / max(sel.shape[0], 1)}


def bench_client_parse(catalog: Catalog, date: str, repeat: int = 20) -> dict:
    """Lines/s the client turns into event batches (Q lines, compiled path), 256 KiB reads."""
    feed = CatalogFeed(catalog, None, [date])
    r, _ = feed.rendered(date, "l1", "6.2", EVENT_FIELDSET)
    q = np.flatnonzero(r.sym >= 0)
    data = _gather_lines(r.buf, r.start, r.buf.shape[0], q).tobytes()
    chunks = []
    pos = 0
    while pos < len(data):
        cut = data.rfind(b"\n", pos, pos + (1 << 18)) + 1 or len(data)
        chunks.append(data[pos:cut])
        pos = cut
    dec = LineDecoder("level1", NameTable(), fieldset=EVENT_FIELDSET)
    d, _ = __import__("quantedge.feeds.iqfeed.protocol", fromlist=["x"]).ns_to_et(int(r.ts[q[0]]))
    dec.ctx.date = d
    dec.feed(chunks[0], 0)
    t = time.perf_counter()
    nev = 0
    for _ in range(repeat):
        for ch in chunks:
            ev, _ = dec.feed(ch, 0)
            nev += ev.shape[0]
    dt = time.perf_counter() - t
    n = q.shape[0] * repeat
    return {"bench": "client parse lines/s", "value": n / dt, "unit": "lines/s", "events": nev,
            "fast_share": dec.counters["fast_lines"] / max(dec.counters["lines"], 1)}


def bench_latency(catalog: Catalog, date: str, rate: float, seconds: float = 2.0) -> dict:
    """Wall time from the simulator writing a Q line to the client delivering its batch, at ``rate`` lines/s.

    The replay speed is set so the day's Q lines arrive at about ``rate``; write time is taken per line
    from the replay clock (each line is due at its replay time), delivery from the batch's hand-over.
    """
    async def go():
        sim = Simulator(SimConfig(catalog.root, ports={k: 0 for k in ("level1", "lookup", "level2", "admin")},
                                  dates=[date], speed=1.0, paused=True), catalog)
        feed = sim.feed
        r, _ = feed.rendered(date, "l1", "6.2", EVENT_FIELDSET)
        ts = r.ts[r.sym >= 0]
        span = (int(ts[-1]) - int(ts[0])) / 1e9
        speed = rate * span / ts.shape[0]
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports), symbols=NameTable(catalog.symbols.names()))
        await c.watch(feed.day_symbols[date])
        sim.clock.seek(int(ts[0]))
        sim.clock.set_speed(speed)
        wall0 = time.monotonic_ns()
        anchor = int(ts[0])
        lat = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                b = await c.next_batch(1.0)
            except TimeoutError:
                break
            now = time.monotonic_ns()
            tr = b.events["ts_event"][b.events["kind"] == 6]
            due = wall0 + ((tr - anchor) / speed).astype(np.int64)
            lat.extend((now - due).tolist())
        await c.close()
        await sim.stop()
        return np.array(lat, np.float64)

    lat = asyncio.run(go()) / 1000.0
    lat = lat[lat >= 0]
    return {"bench": f"latency write->batch at {rate:.0f} lines/s", "p50_us": float(np.percentile(lat, 50)),
            "p99_us": float(np.percentile(lat, 99)), "samples": int(lat.shape[0]), "unit": "µs"}


def main(argv: list[str]) -> None:
    cat = Catalog(argv[0])
    date = argv[1] if len(argv) > 1 else cat.dates()[0].isoformat()
    for f in (bench_simulator_render_and_select, bench_client_parse):
        print(f(cat, date))
    for rate in (100_000, 1_000_000):
        print(bench_latency(cat, date, rate))


if __name__ == "__main__":
    main(sys.argv[1:])
