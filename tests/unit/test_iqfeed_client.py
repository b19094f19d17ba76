"""IQFeed client: fast Q path == protocol module (hypothesis), robustness against bad servers, reconnect gaps,
2000 subscriptions, protocol refusal, rate-limit retry, back-pressure, download via the simulator."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.events import FLAG_SNAPSHOT
from quantedge.feeds.iqfeed.client import (
    EVENT_FIELDSET,
    ClientConfig,
    IQFeedClient,
    LineDecoder,
    ProtocolError,
)
from quantedge.feeds.iqfeed.protocol import EventContext, parse_line, to_events
from quantedge.feeds.iqfeed.simulator import SimConfig, Simulator

PORTS0 = {"level1": 0, "lookup": 0, "level2": 0, "admin": 0}
RECV = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory):
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks

    cat = Catalog(tmp_path_factory.mktemp("cat"))
    ev, _ = read_iqfeed_ticks(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv", cat.symbols)
    cat.write(ev, source="nept")
    return cat


def _slow(lines: bytes, fieldset, date):
    ctx = EventContext(NameTable(), date=date)
    msgs = [parse_line(x, "level1", "6.2", fieldset) for x in lines.split(b"\n") if x]
    good = [m for m in msgs if not hasattr(m, "reason")]
    ev, _ = to_events(good, ctx, ts_recv=RECV)
    return ev, ctx.symbols


fld = st.one_of(
    st.just(""),
    st.from_regex(r"[0-9]{1,3}\.[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"[01][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{6}", fullmatch=True),
    st.sampled_from(
        [
            "C",
            "Cbav",
            "ba",
            "b",
            "a",
            "Ebav",
            "Ov",
            "v",
            "CE",
            "01",
            "3D17",
            "87",
            "8Z",
            "03/01/2021",
            "02/30/2021",
            "19",
            "1",
            "2",
            "x,y",
            "-1.5",
            "1.23456",
        ]
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["NEPT", "AAPL", "@ES#"]),
            st.lists(fld, min_size=len(EVENT_FIELDSET) - 1, max_size=len(EVENT_FIELDSET) + 1),
        ),
        min_size=1,
        max_size=20,
    ),
    date=st.sampled_from([None, 20210301]),
    junk=st.sampled_from([b"", b"Z,garbage\r\n", b"Q,TRUNC,1.0", b"\r\n", b"\xff\xfe,\r\n"]),
)
def test_fast_path_equals_protocol_module(rows, date, junk):
    text = b"".join(b"Q," + ",".join([s, *f]).encode() + b",\r\n" for s, f in rows) + junk
    dec = LineDecoder("level1", NameTable(), fieldset=EVENT_FIELDSET)
    dec.ctx.date = date
    fast, problems = dec.feed(text, RECV)
    slow, syms = _slow(text, EVENT_FIELDSET, date)
    assert fast.shape == slow.shape
    for f in fast.dtype.names:
        if f == "symbol":
            assert [dec.ctx.symbols.name(int(i)) for i in fast[f]] == [syms.name(int(i)) for i in slow[f]]
        else:
            assert (fast[f] == slow[f]).all(), f
    assert dec.counters["lines"] == text.count(b"\n") + (0 if text.endswith(b"\n") else 1)


async def _fake_server(handler):
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_malformed_truncated_unknown_lines_are_counted_not_fatal():
    conns = []

    async def handler(r, w):
        conns.append(w)
        if len(conns) > 1:  # the client's reconnect: nothing more to send (the counts stay exact)
            w.close()
            return
        await r.readline()
        w.write(
            b"S,CURRENT PROTOCOL,6.2\r\nT,20210301 10:00:00\r\nQ,NEPT,1.5x00,100\r\nX,what,is,this\r\n"
            b"Q,NEPT,1.5000,100,10:00:00.000001,19,100,1.4900,300,1.5100,200,,,,,Cv,01,\r\nQ,NEPT,1.50"
        )
        await w.drain()
        await asyncio.sleep(0.3)
        w.close()

    async def go():
        srv, port = await _fake_server(handler)
        cfg = ClientConfig(
            ports={"level1": port},
            fieldset=__import__("quantedge.feeds.iqfeed.protocol", fromlist=["x"]).DEFAULT_FIELDSET,
            reconnect_attempts=1,
        )
        c = IQFeedClient(cfg)
        await c.connect(("level1",))
        b = await c.next_batch(5)
        assert b.events.shape[0] == 1 and b.events["price"][0] == 15000
        reasons = {p.reason for p in b.problems}
        assert "not_a_number" in reasons or "missing_field" in reasons
        assert "unknown_message_type" in reasons
        await asyncio.sleep(0.5)
        assert c.problems.get("truncated_line") == 1
        await c.close()
        srv.close()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_protocol_refused_raises_clear_error(catalog):
    async def go():
        sim = Simulator(SimConfig(catalog.root, ports=dict(PORTS0), protocols=("5.1",)), catalog)
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports))
        with pytest.raises(ProtocolError, match="refused protocols 6.2, 6.1"):
            await c.connect(("level1",))
        sim2 = Simulator(SimConfig(catalog.root, ports=dict(PORTS0), protocols=("6.1",)), catalog)
        ports2 = await sim2.start()
        c2 = IQFeedClient(ClientConfig(ports=ports2))
        await c2.connect(("level1",))
        assert c2.streams["level1"].protocol == "6.1"
        await c2.close()
        await sim.stop()
        await sim2.stop()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_reconnect_resubscribes_and_reports_gap_and_2000_watches(catalog):
    async def go():
        from quantedge.feeds.iqfeed.simulator import parse_replay_time

        sim = Simulator(
            SimConfig(
                catalog.root,
                ports=dict(PORTS0),
                dates=["2021-03-01"],
                speed=300,
                paused=True,
                start=parse_replay_time("20210301 093000"),
            ),
            catalog,
        )
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports, queue_batches=8))
        syms = ["NEPT"] + [f"S{i:04d}" for i in range(1999)]
        await c.watch(syms)
        sim.clock.resume()
        n = 0
        while n < 20:
            b = await c.next_batch(10)
            n += int((b.events["kind"] == 6).sum())
        assert len(c.streams["level1"].not_found) == 1999  # unknown symbols answered n,SYM
        sim.drop_all("level1")
        gaps = []
        while not gaps:
            b = await c.next_batch(10)
            gaps = b.gaps
        assert gaps[0].symbol == "NEPT" and gaps[0].end_ns >= gaps[0].start_ns
        assert c.streams["level1"].reconnects == 1
        more = 0
        while more == 0:
            b = await c.next_batch(10)
            more = int((b.events["kind"] == 6).sum())
        await c.close()
        await sim.stop()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_history_rate_limit_retry_and_download(catalog, tmp_path):
    from quantedge.feeds.iqfeed.download import AutoDownloader, download_async

    async def go():
        sim = Simulator(
            SimConfig(catalog.root, ports=dict(PORTS0), speed=0, history_rate=5.0, history_burst=1), catalog
        )
        sim.clock.seek(2 * 10**18)
        ports = await sim.start()
        dest = Catalog(tmp_path / "dl")
        cfg = ClientConfig(ports=ports, history_rate=1000.0, history_burst=10)
        res = await download_async(
            dest,
            ["NEPT", "NOPE"],
            __import__("datetime").date(2021, 3, 1),
            __import__("datetime").date(2021, 3, 3),
            cfg,
        )
        assert sim.counters["rate_limited"] >= 1
        assert set(res.written) == {("NEPT", "2021-03-01"), ("NEPT", "2021-03-02"), ("NEPT", "2021-03-03")}
        assert ("NOPE", "2021-03-01") in res.failed
        a = dest.read("NEPT", "2021-03-01")
        b = catalog.read("NEPT", "2021-03-01")
        # a downloaded day equals the catalog day on every field but the local receipt time
        assert a.shape == b.shape
        for f in a.dtype.names:
            if f != "ts_recv":
                assert (a[f] == b[f]).all(), f
        await sim.stop()
        return dest

    dest = asyncio.run(asyncio.wait_for(go(), 60))
    assert AutoDownloader(dest).ensure("NEPT", "2021-03-02")
    assert not AutoDownloader(dest).ensure("NEPT", "2021-03-04")  # no source configured: nothing fetched
    assert np.all(dest.read("NEPT", "2021-03-03")["price"] > 0)


def test_backtest_auto_downloads_a_missing_symbol_day(catalog, tmp_path):
    """A catalog backtest with ``data.download`` fetches the missing NEPT day from the simulator's
    lookup port first, then runs on exactly the catalog's events; without a reachable source it fails
    with a message naming the port."""
    import threading

    from quantedge.backtest.config import BacktestConfig
    from quantedge.backtest.runner import run_backtest

    loop = asyncio.new_event_loop()
    sim = Simulator(SimConfig(catalog.root, ports=dict(PORTS0), speed=0), catalog)
    sim.clock.seek(2 * 10**18)  # history answers up to the replay clock
    ports = loop.run_until_complete(sim.start())
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    raw = {
        "data": {"source": "catalog", "catalog": str(tmp_path / "cat"), "symbols": ["NEPT"],
                 "date": "2021-03-01", "download": {"lookup_port": ports["lookup"]}},
        "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20, "interval": "1min", "qty": 100}},
        "execution": {"book": "pseudo"},
        "output": str(tmp_path / "out"),
    }
    try:
        m = run_backtest(BacktestConfig.from_dict(raw), report=False)
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        th.join(10)
    got = Catalog(tmp_path / "cat").read("NEPT", "2021-03-01")
    want = catalog.read("NEPT", "2021-03-01")
    assert got.shape == want.shape and (got["price"] == want["price"]).all()
    assert m["events"] == want.shape[0] and m["fills"] > 0

    raw["data"]["date"] = "2021-03-04"  # not in the catalog, and the source is gone now
    with pytest.raises(ValueError, match="no tick history for NEPT on 2021-03-04 from the lookup port"):
        run_backtest(BacktestConfig.from_dict(raw), report=False)
    raw["data"]["download"] = {"lookup_port": 1, "colour": "red"}
    with pytest.raises(ValueError, match="unknown key"):
        BacktestConfig.from_dict(raw)


def test_slow_consumer_gets_back_pressure_not_unbounded_memory(catalog):
    """A consumer that stops reading: the client's queue holds at most ``queue_batches`` batches and the
    socket is no longer read (the simulator's writes wait on TCP); once the consumer drains, every event
    of the day arrives, none lost."""

    async def go():
        sim = Simulator(SimConfig(catalog.root, ports=dict(PORTS0), dates=["2021-03-01"], speed=0,
                                  paused=True), catalog)
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports, queue_batches=2, read_bytes=4096))
        await c.watch(["NEPT"])
        sim.clock.resume()
        for _ in range(200):  # nobody consumes: wait for the queue to fill, then a while longer
            if c.queue.full():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        held = c.queue.qsize()
        lines_read = c.streams["level1"].decoder.counters["lines"]
        n = 0
        while True:
            try:
                b = await c.next_batch(3.0)
            except TimeoutError:
                break
            n += int(((b.events["flags"] & FLAG_SNAPSHOT) == 0).sum())
        total_lines = c.streams["level1"].decoder.counters["lines"]
        await c.close()
        await sim.stop()
        return held, lines_read, total_lines, n

    held, lines_read, total_lines, n = asyncio.run(asyncio.wait_for(go(), 60))
    assert held <= 2
    assert lines_read < total_lines / 2  # reading stopped: the rest waited in TCP and the simulator
    assert n == catalog.read("NEPT", "2021-03-01").shape[0]
