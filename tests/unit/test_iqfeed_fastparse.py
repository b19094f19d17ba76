"""Compiled line decoder == protocol module (parse_line + to_events), line for line, for Level 2 order,
price-level and legacy market-maker rows, T lines dating later Q lines, and bad lines of every kind."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.catalog.symbols import NameTable
from quantedge.events import EVENT_DTYPE
from quantedge.feeds.iqfeed.client import EVENT_FIELDSET, LineDecoder
from quantedge.feeds.iqfeed.protocol import (
    EventContext,
    L2LegacyMM,
    L2Order,
    L2PriceLevel,
    format_message,
    parse_line,
    to_events,
)
from quantedge.venues import MMID_BASE

RECV = 1_700_000_000_000_000_000


def _slow(text: bytes, port: str, date=None):
    ctx = EventContext(NameTable(), NameTable(base=MMID_BASE), date=date)
    evs, probs = [], []
    for raw in text.split(b"\n"):
        raw = raw.rstrip(b"\r")
        if not raw:
            continue
        m = parse_line(raw, port, "6.2", EVENT_FIELDSET)
        if hasattr(m, "reason"):
            probs.append(m.reason)
            continue
        e, p = to_events([m], ctx, ts_recv=RECV)
        evs.append(e)
        probs.extend(x.reason for x in p)
    ev = np.concatenate(evs) if evs else np.zeros(0, EVENT_DTYPE)
    return ev, ctx, probs


def _same(text: bytes, port: str, date=None) -> LineDecoder:
    dec = LineDecoder(port, NameTable(), fieldset=EVENT_FIELDSET)
    dec.ctx.date = date
    fast, problems = dec.feed(text, RECV)
    slow, ctx, probs = _slow(text, port, date)
    assert fast.shape == slow.shape, (fast.shape, slow.shape)
    for f in fast.dtype.names:
        if f == "symbol":
            got = [dec.ctx.symbols.name(int(i)) for i in fast[f]]
            assert got == [ctx.symbols.name(int(i)) for i in slow[f]]
        elif f == "venue":
            names = [dec.ctx.mmids.name(int(v)) if v >= MMID_BASE else str(v) for v in fast[f]]
            assert names == [ctx.mmids.name(int(v)) if v >= MMID_BASE else str(v) for v in slow[f]]
        else:
            assert (fast[f] == slow[f]).all(), f
    assert sorted(p.reason for p in problems) == sorted(probs)
    assert dec.counters["lines"] == text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
    return dec


price = st.integers(0, 10**8)
size = st.one_of(st.none(), st.integers(0, 10**7))
tod = st.one_of(st.none(), st.integers(0, 86_399_999_999))
date = st.one_of(st.none(), st.sampled_from([20120621, 20210301, 20211107, 20240310]))
sym = st.sampled_from(["AMZN", "NEPT", "@ESZ24", "A"])
mmid = st.sampled_from(["NSDQ", "ARCX", "MD01", "MD10", "GSCO"])
side = st.sampled_from(["A", "B"])

order = st.builds(
    lambda t, s, oid, mm, sd, p, z, pr, tm, d: L2Order(
        t, s, oid, "" if oid is not None and mm == "GSCO" else mm, sd,
        *((None,) * 4 if t == "5" else (p, z, pr, 4)), time_us=tm, date=d),
    st.sampled_from(["3", "4", "5", "6"]), sym, st.one_of(st.none(), st.integers(1, 10**12)), mmid, side,
    price, size, st.one_of(st.none(), st.integers(0, 10**9)), tod, date,
)
level = st.builds(
    lambda t, s, sd, p, z, n, tm, d: L2PriceLevel(t, s, sd, p, *((None, None, 4) if t == "9" else (z, n, 4)),
                                                  time_us=tm, date=d),
    st.sampled_from(["7", "8", "9"]), sym, side, price, size, st.one_of(st.none(), st.integers(0, 99)), tod,
    date,
)
legacy = st.builds(
    L2LegacyMM, st.sampled_from(["Z", "2"]), sym, mmid, price, price, size, size, tod, date,
    st.sampled_from(["", "52"]), tod, st.booleans(), st.booleans(), st.booleans(),
)
junk = st.sampled_from([
    "", "0,AMZN,1,,B,1.0,100,1,4,09:30:00.000001,2012-06-21,", "3,AMZN,1,,X,1.0,100,1,4,,,",
    "3,AMZN,1,,B,1.0x,100,1,4,,,", "5,AMZN,,,B,,,", "8,AMZN,B,1.00001,5,1,4,10:00:00,2012-06-21,",
    "8,AMZN,B,1.5,5,1,4,25:00:00,2012-06-21,", "8,AMZN,B,1.5,-5,1,4,10:00:00,2012-06-21,",
    "9,AMZN,B,1.5,10:00:00.5,2012-02-30,", "Z,AMZN,,1,2,3,4,,,,,T,T,T,", "Z,AMZN,MD01,1,2,3,4,,,,,T,Q,T,",
    "S,CLEAR DEPTH,AMZN,B,", "n,ZZZZ", "M,NSDQ,Nasdaq", "T,20120621 10:00:00", "T,2012062 10:00:00",
    "3,AMZN,7,,B,1.0,100,1,4,09:30:00.000001,2012-06-21,extra,", "Q,AMZN,1,2,", "\xff,\xfe",
    "3," + "X" * 40 + ",7,,B,1.0,100,1,4,,,",
])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    msgs=st.lists(st.one_of(order, level, legacy, junk), min_size=1, max_size=25),
    ctx_date=st.sampled_from([None, 20120621]),
    tail=st.sampled_from(["\r\n", "\n", ""]),
)
def test_level2_fast_path_equals_protocol_module(msgs, ctx_date, tail):
    lines = [m if isinstance(m, str) else format_message(m, "6.2").rstrip("\r\n") for m in msgs]
    text = ("\r\n".join(lines) + tail).encode("latin-1")
    _same(text, "level2", ctx_date)


def test_t_lines_date_later_q_lines_and_level2_rows():
    q = ("Q,NEPT,1.5100,100,09:30:00.000001,19,1000,1.5000,300,1.5200,200,,,,,Cba,01,,123,1,"
         "09:30:00.000002,09:30:00.000003,\r\n")
    text = b"T,20210301 09:30:00\r\n" + q.encode() + b"T,20210302 09:30:00\r\n" + q.encode()
    dec = _same(text, "level1")
    ev, _ = dec.feed(b"", 0)
    assert dec.counters["slow_lines"] == 0 and dec.counters["fast_lines"] == 4
    assert dec.ctx.date == 20210302 and ev.shape[0] == 0
    l2 = (b"T,20120621 10:00:00\r\n8,AMZN,B,220.5,300,2,4,10:00:00.000001,,\r\n"
          b"2,AMZN,MD02,1,2,3,4,,,,,T,F,T,\r\n")
    dec2 = _same(l2, "level2")
    assert dec2.counters["slow_lines"] == 0


@given(st.binary(max_size=300), st.sampled_from(["level1", "level2"]))
@settings(max_examples=150, deadline=None)
def test_random_bytes_never_raise_and_count_every_line(data, port):
    dec = LineDecoder(port, NameTable(), fieldset=EVENT_FIELDSET)
    ev, problems = dec.feed(data, RECV)
    assert dec.counters["lines"] == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert ev.shape[0] <= 3 * dec.counters["lines"]


def test_real_lobster_wor_and_wpl_stream_fast_equals_slow(shared_data, tmp_path):
    """The first 4,000 WOR and WPL lines of the real AMZN day as the simulator writes them."""
    from quantedge.catalog.importers.lobster import read_lobster
    from quantedge.catalog.store import Catalog
    from quantedge.feeds.iqfeed.simulator import CatalogFeed

    cat = Catalog(tmp_path / "cat")
    ev, _ = read_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", cat.symbols)
    cat.write(ev[:6000], source="amzn")
    feed = CatalogFeed(cat, ["AMZN"], ["2012-06-21"])
    for stream in ("wor", "wpl"):
        r, _ = feed.rendered("2012-06-21", stream, "6.2")
        n = min(len(r), 4000)
        text = r.buf[: r.start[n] if n < len(r) else r.buf.shape[0]].tobytes()
        dec = _same(text, "level2")
        assert dec.counters["slow_lines"] == 0 and dec.counters["fast_lines"] == n
