"""IQConnect simulator: handshake, L1 watch/P/F/n, lookup, L2 WOR/WPL, admin replay control, faults."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from quantedge.catalog.store import Catalog
from quantedge.feeds.iqfeed.protocol import LookupTickRow, parse_line
from quantedge.feeds.iqfeed.simulator import SimConfig, Simulator, parse_replay_time

PORTS0 = {"level1": 0, "lookup": 0, "level2": 0, "admin": 0}


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory):
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.importers.lobster import read_lobster

    cat = Catalog(tmp_path_factory.mktemp("cat"))
    ev, _ = read_iqfeed_ticks(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv", cat.symbols)
    cat.write(ev, source="nept")
    ev2, _ = read_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", cat.symbols)
    cat.write(ev2, source="amzn")
    return cat


async def _open(port):
    return await asyncio.open_connection("127.0.0.1", port)


async def _lines_until(reader, pred, timeout=5.0):
    out = []
    while True:
        raw = await asyncio.wait_for(reader.readline(), timeout)
        if not raw:
            return out
        line = raw.decode("latin-1").rstrip("\r\n")
        out.append(line)
        if pred(line):
            return out


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_level1_handshake_watch_summary_unknown_and_stream(catalog):
    async def go():
        sim = Simulator(
            SimConfig(catalog.root, ports=dict(PORTS0), dates=["2021-03-01"], speed=0, paused=True), catalog
        )
        ports = await sim.start()
        r, w = await _open(ports["level1"])
        greet = await _lines_until(r, lambda s: s.startswith("T,"))
        assert greet[0] == "S,KEY,99999" and "S,SERVER CONNECTED" in greet and greet[3].startswith("S,CUST,")
        w.write(b"S,SET PROTOCOL,6.1\r\nS,SET PROTOCOL,5.0\r\nwNEPT\r\nwNOPE\r\n")
        got = await _lines_until(r, lambda s: s == "n,NOPE")
        assert "S,CURRENT PROTOCOL,6.1" in got and "E,5.0 is not a valid protocol.," in got
        assert any(s.startswith("F,NEPT,") for s in got) and any(s.startswith("P,NEPT,") for s in got)
        sim.clock.resume()
        q = await _lines_until(r, lambda s: s.startswith("Q,NEPT,") and ",C" in s)
        assert q[-1].count(",") == 17  # default fieldset: 16 fields + type + trailing comma
        w.close()
        await sim.stop()

    _run(go())


def test_lookup_history_ticks_bars_daily_errors_and_rate_limit(catalog):
    async def go():
        sim = Simulator(
            SimConfig(catalog.root, ports=dict(PORTS0), speed=0, history_rate=1.0, history_burst=3), catalog
        )
        sim.clock.seek(parse_replay_time("20210303 235959"))
        ports = await sim.start()
        r, w = await _open(ports["lookup"])
        w.write(b"S,SET PROTOCOL,6.2\r\nHTT,NEPT,20210301 093000,20210301 093100,,,,1,A1\r\n")
        got = await _lines_until(r, lambda s: s == "A1,!ENDMSG!,")
        rows = [parse_line(s, "lookup") for s in got if s.startswith("A1,LH,")]
        assert rows and all(isinstance(x, LookupTickRow) and x.request_id == "A1" for x in rows)
        assert [x.ts for x in rows] == sorted(x.ts for x in rows)  # direction 1: oldest first
        w.write(b"HIX,NEPT,60,5,0,B1\r\nHDX,NEPT,10,1,C1\r\nHTX,NOPE,5,0,D1\r\n")
        got = await _lines_until(r, lambda s: s == "D1,!ENDMSG!,")
        assert sum(s.startswith("B1,LH,") for s in got) == 5 and sum(s.startswith("C1,LH,") for s in got) == 3
        assert "D1,E,Invalid symbol.," in got or "D1,E,Too many simultaneous history requests," in got
        w.write(b"S,SET PROTOCOL,6.1\r\nHTX,NEPT,2,0,E1\r\n")
        got = await _lines_until(r, lambda s: s == "E1,!ENDMSG!,")
        assert "E1,E,Too many simultaneous history requests," in got and sim.counters["rate_limited"] >= 1
        w.close()
        await sim.stop()

    _run(go())


def test_level2_order_and_price_level_subscriptions_from_lobster(catalog):
    async def go():
        sim = Simulator(
            SimConfig(catalog.root, ports=dict(PORTS0), dates=["2012-06-21"], speed=0, paused=True), catalog
        )
        sim.clock.seek(parse_replay_time("20120621 100000"))
        sim.clock.pause()
        ports = await sim.start()
        r, w = await _open(ports["level2"])
        await _lines_until(r, lambda s: s.startswith("T,"))
        w.write(b"S,SET PROTOCOL,6.2\r\nWOR,AMZN\r\nWPL,AMZN\r\n")
        got = await _lines_until(r, lambda s: s.startswith("7,AMZN,"))
        assert "S,CLEAR DEPTH,AMZN,B," in got and any(s.startswith("6,AMZN,") for s in got)
        sim.clock.set_speed(0)
        sim.clock.resume()
        seen: set = set()
        await _lines_until(r, lambda s: seen.add(s[0]) or {"3", "8"} <= seen)
        assert {"3", "8"} <= seen
        w.close()
        await sim.stop()

    _run(go())


def test_admin_replay_commands_and_client_dropping_mid_request(catalog):
    async def go():
        sim = Simulator(SimConfig(catalog.root, ports=dict(PORTS0), speed=10), catalog)
        ports = await sim.start()
        r, w = await _open(ports["admin"])
        w.write(
            b"S,REPLAY PAUSE\r\nS,REPLAY SEEK,20210302 100000\r\nS,REPLAY SPEED,max\r\nS,REPLAY SEEK,bad\r\n"
        )
        got = await _lines_until(r, lambda s: s.startswith("E,"))
        assert got[-2] == "S,REPLAY STATUS,paused,max,20210302 100000" and "YYYYMMDD HHMMSS" in got[-1]
        # a lookup client that vanishes mid-response must not hurt the server
        r2, w2 = await _open(ports["lookup"])
        w2.write(b"HTT,NEPT,20210301 000000,20210303 235959,,,,1,X\r\n")
        await r2.readline()
        w2.close()
        await asyncio.sleep(0.2)
        r3, w3 = await _open(ports["lookup"])
        w3.write(b"HTX,NEPT,1,0,Y\r\n")
        got = await _lines_until(r3, lambda s: s == "Y,!ENDMSG!,")
        assert any(s.startswith("Y,LH,") for s in got)
        w3.write(b"garbage line\r\n")
        got = await _lines_until(r3, lambda s: s.startswith("E,"))
        assert got[-1].startswith("E,!SYNTAX_ERROR!")
        w.close()
        w3.close()
        await sim.stop()

    _run(go())


def test_price_levels_from_orders_match_book_totals(catalog):
    from quantedge.feeds.iqfeed.simulator import CatalogFeed

    feed = CatalogFeed(catalog, ["AMZN"], ["2012-06-21"])
    d = feed.day("2012-06-21")
    lv = d.levels
    assert lv.shape[0] > 0 and (lv["size"] >= 0).all()
    # replaying the level events gives non-crossed books at the end
    last: dict = {}
    for e in lv[-2000:]:
        last[(int(e["side"]), int(e["price"]))] = int(e["size"])
    bids = [p for (s, p), z in last.items() if s == 1 and z > 0]
    asks = [p for (s, p), z in last.items() if s == -1 and z > 0]
    assert bids and asks and np.max(bids) < np.min(asks) + 10**7


def test_market_maker_depth_from_real_taq_venue_quotes_over_61_legacy_rows(shared_data, tmp_path):
    """Real TAQ per-exchange quotes (XXX, 2018-01-02) -> simulator ``w`` depth under protocol 6.1 (legacy
    ``Z``/``2`` rows, one per venue quote change, both sides restated) -> client events.

    Every row restates the venue's current bid and ask exactly as the catalog quotes left them, and the
    consolidated per-venue book (book.venue.VenueBook) built from the client's events equals the one built
    from the catalog quotes after every row.
    """
    import gzip

    from quantedge.book.venue import VenueBook
    from quantedge.catalog.importers.taq import read_taq_quotes
    from quantedge.catalog.symbols import NameTable
    from quantedge.events import ACTION_DELETE, ACTION_MODIFY, FLAG_LAST, KIND_DEPTH, KIND_QUOTE
    from quantedge.feeds.iqfeed.client import ClientConfig, IQFeedClient
    from quantedge.venues import IQFEED_MARKETS, MMID_BASE

    src = shared_data / "taq" / "sampleQDataRawMicroseconds.csv.gz"
    with gzip.open(src, "rt") as f:  # the first 3,000 quote rows of the real file keep the test quick
        head = "".join(f.readline() for _ in range(3001))
    small = tmp_path / "taq_quotes_head.csv"
    small.write_text(head)
    cat = Catalog(tmp_path / "cat")
    ev, rep = read_taq_quotes(small, cat.symbols)
    assert rep.rows_imported > 2500
    cat.write(ev, source="taq")
    date = sorted({p.date.isoformat() for p in cat.partitions()})[0]
    ref = cat.read("XXX", date, kinds=("quote",))
    ref = ref[ref["venue"] != 0]

    async def go():
        sim = Simulator(SimConfig(cat.root, ports=dict(PORTS0), dates=[date], speed=0,
                                  paused=True), cat)
        sim.feed.rendered(date, "mm", "6.1")
        ports = await sim.start()
        cfg = ClientConfig(ports=ports, protocols=("6.1",))
        c = IQFeedClient(cfg, symbols=NameTable(cat.symbols.names()))
        await c.watch_depth(["XXX"], "mm")
        sim.clock.resume()
        out = []
        while True:
            try:
                b = await c.next_batch(5.0)
            except TimeoutError:
                break
            assert not b.problems, b.problems[:3]
            out.append(b.events)
        assert c.streams["level2"].protocol == "6.1"
        mmids = c.mmids
        await c.close()
        await sim.stop()
        return np.concatenate(out), mmids

    live, mmids = _run(go())
    live = live[live["kind"] == KIND_DEPTH]
    assert live.shape[0] == 2 * ref.shape[0]  # one Z/2 row (bid + ask) per venue quote event
    bid, ask = live[0::2], live[1::2]
    assert (bid["side"] == 1).all() and (ask["side"] == -1).all() and (bid["venue"] >= MMID_BASE).all()
    by_name = {v: k for k, v in IQFEED_MARKETS.items()}
    venue = np.array([by_name.get(mmids.name(int(v)), -1) for v in bid["venue"]])
    assert (venue == ref["venue"]).all()  # MMID = the venue's IQFeed short name
    assert ((ask["flags"] & FLAG_LAST) != 0).tolist() == ((ref["flags"] & FLAG_LAST) != 0).tolist()

    # what each row restates: the venue's latest bid and ask from the catalog quotes so far
    state: dict[int, list[int]] = {}
    for i, e in enumerate(ref):
        st = state.setdefault(int(e["venue"]), [0, 0, 0, 0])
        k = 0 if e["side"] == 1 else 2
        st[k : k + 2] = [int(e["price"]), int(e["size"])] if e["size"] > 0 else [0, 0]
        for j, row in ((0, bid[i]), (2, ask[i])):
            want_px, want_sz = st[j], st[j + 1]
            assert (int(row["price"]), int(row["size"])) == (want_px, want_sz), (i, j)
            assert int(row["action"]) == (ACTION_MODIFY if want_sz > 0 else ACTION_DELETE)
    assert (live["ts_event"][np.flatnonzero(live["side"] == ref["side"].repeat(2))] ==
            ref["ts_event"] // 1000 * 1000).all()  # the changed side carries the quote's time (µs)

    # consolidated book from the rows == from the catalog quotes, after every row
    as_quotes = live.copy()
    as_quotes["kind"] = KIND_QUOTE
    as_quotes["venue"] = np.repeat(venue, 2)
    n = int(ref["symbol"].max()) + 1
    a, b = VenueBook.allocate(n, capacity=64, tick=0), VenueBook.allocate(n, capacity=64, tick=0)
    s = int(ref["symbol"][0])
    for i in range(ref.shape[0]):
        a.step(ref[i : i + 1])
        b.step(as_quotes[2 * i : 2 * i + 2])
        na = a.nlev[s]
        assert (na == b.nlev[s]).all(), i
        for si in range(2):
            assert np.array_equal(a.lv[s, si, : na[si], :2], b.lv[s, si, : na[si], :2]), i
