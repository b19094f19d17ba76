"""Parity: a real NEPT day through simulator -> socket -> client equals reading the catalog directly,
and the features and signals computed from either stream are identical.

"Same" means: every event of the catalog day arrives, in the same order, with equal ts_event, symbol,
kind, side, action, price, size, venue, level, order_id and conditions, and equal seq on trades.
By design different: ts_recv (local receipt time), quote seq (Q lines carry no tick id for a quote),
flags (catalog quotes carry FLAG_FROM_TRADE/TS_RECV_MODELED; on the wire a quote pair is its own group
with FLAG_LAST on the ask), and the subscribe-time P summary (FLAG_SNAPSHOT) the catalog has no row for.
"""

from __future__ import annotations

import asyncio

import numpy as np

from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.events import FLAG_SNAPSHOT, KIND_TRADE
from quantedge.feeds.iqfeed.client import ClientConfig, IQFeedClient
from quantedge.feeds.iqfeed.simulator import SimConfig, Simulator

FIELDS = ("ts_event", "symbol", "kind", "side", "action", "price", "size", "venue", "level", "order_id",
          "conditions")


def _live_day(cat: Catalog, date: str) -> np.ndarray:
    async def go():
        sim = Simulator(SimConfig(cat.root, ports={k: 0 for k in ("level1", "lookup", "level2", "admin")},
                                  dates=[date], speed=0, paused=True), cat)
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports), symbols=NameTable(cat.symbols.names()))
        await c.watch(["NEPT"])
        sim.clock.resume()
        out = []
        while True:
            try:
                b = await c.next_batch(2.0)
            except TimeoutError:
                break
            out.append(b.events)
        await c.close()
        await sim.stop()
        return np.concatenate(out)

    ev = asyncio.run(go())
    return ev[(ev["flags"] & FLAG_SNAPSHOT) == 0]


def test_nept_day_live_equals_catalog_and_features_match(shared_data, tmp_path):
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.features.pipeline import FeaturePipeline
    from quantedge.features.state import FeatureState

    cat = Catalog(tmp_path / "cat")
    ev, _ = read_iqfeed_ticks(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv", cat.symbols)
    cat.write(ev, source="nept")
    ref = cat.read("NEPT", "2021-03-01")
    live = _live_day(cat, "2021-03-01")
    assert live.shape == ref.shape
    for f in FIELDS:
        assert (live[f] == ref[f]).all(), f
    t = ref["kind"] == KIND_TRADE
    assert (live["seq"][t] == ref["seq"][t]).all()

    def features(events: np.ndarray) -> np.ndarray:
        e = events.copy()
        e["ts_recv"] = e["ts_event"]  # features run on event time; receipt time is the one field that differs
        p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=10**9))
        p.step(e)
        return p.features.F.copy()

    a, b = features(ref), features(live)
    assert np.array_equal(a, b, equal_nan=True)

    def signals(events: np.ndarray) -> np.ndarray:
        from quantedge.signals.run import SignalPipeline

        e = events.copy()
        e["ts_recv"] = e["ts_event"]
        pipe = SignalPipeline(1, "nbbo", device="cpu")
        return pipe.step(e).records(0.0)  # every snapshot row and signal, not only the emitted ones

    sa, sb = signals(ref), signals(live)
    assert sa.shape[0] > 0 and sa.tobytes() == sb.tobytes()


# --- order books over the live Level 2 path ---------------------------------------------------------------


def _live_depth(cat: Catalog, date: str, symbol: str, modes: tuple[str, ...]) -> np.ndarray:
    """Every Level 2 event the client delivers for ``symbol`` (WOR and/or WPL) over a max-speed replay."""

    async def go():
        sim = Simulator(SimConfig(cat.root, ports={k: 0 for k in ("level1", "lookup", "level2", "admin")},
                                  dates=[date], speed=0, paused=True), cat)
        for m in ("wor", "wpl"):
            sim.feed.rendered(date, m, "6.2")  # render before the clock runs (no timeout on a busy machine)
        ports = await sim.start()
        c = IQFeedClient(ClientConfig(ports=ports), symbols=NameTable(cat.symbols.names()))
        for m in modes:
            await c.watch_depth([symbol], m)
        sim.clock.resume()
        out = []
        while True:
            try:
                b = await c.next_batch(5.0)
            except TimeoutError:
                break
            assert not b.problems, b.problems[:3]
            out.append(b.events)
        await c.close()
        await sim.stop()
        return np.concatenate(out)

    return asyncio.run(go())


def _wor_view(orders: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """What an IQFeed WOR stream carries of the catalog's order events, by the rows' meaning.

    Returns (written, whole_delete, mismatches): ``written`` - events of orders the stream has added (a
    cancel / execution / delete of an order resting before the file starts has no row to refer to, so
    the simulator reports ``unknown_order`` and writes nothing); ``whole_delete`` - deletes whose size is
    not the order's remaining size (a ``5`` row carries no size: it removes the whole order, while the
    catalog book removes the size the event says); ``mismatches`` - how many A_ORDER_MISMATCH anomalies
    the L3 book counts on these events (price / side / delete size disagreeing with the tracked order).
    """
    live: dict[int, list] = {}
    written = np.zeros(orders.shape[0], bool)
    whole = np.zeros(orders.shape[0], bool)
    mism = 0
    for i, (oid, act, side, px, size) in enumerate(zip(
            orders["order_id"].tolist(), orders["action"].tolist(), orders["side"].tolist(),
            orders["price"].tolist(), orders["size"].tolist(), strict=True)):
        if act == 1:
            live[oid] = [side, px, size]
            written[i] = True
            continue
        got = live.get(oid)
        if got is None:
            continue
        written[i] = True
        mism += got[0] != side or got[1] != px
        if act == 4:
            if size > 0 and size != got[2]:
                whole[i] = True
                mism += 1
            del live[oid]
        elif act in (3, 5):
            got[2] -= size
            if got[2] <= 0:
                del live[oid]
    return written, whole, mism


def _priced(book, e: np.ndarray) -> np.ndarray:
    """A WOR delete row (``5``) carries no price; the L3 kernel rejects price 0, so take the price from the
    book's own order table (what any WOR consumer does: the row names the order id)."""
    from quantedge.book.l3 import OT_PX, _bits, ot_find
    from quantedge.events import ACTION_DELETE

    if e["action"][0] != ACTION_DELETE or e["price"][0] > 0:
        return e
    slot = ot_find(book.ot, int(e["symbol"][0]), int(e["order_id"][0]), _bits(book.ot.shape[0]))
    e = e.copy()
    if slot >= 0:
        e["price"] = book.ot[slot, OT_PX]
    return e


def _levels(book, s: int) -> tuple:
    from quantedge.book.state import LV_KNOWN, LV_PX, LV_SZ

    n = book.nlev[s]
    return tuple(book.lv[s, si, : n[si]][:, [LV_PX, LV_SZ, LV_KNOWN]].tobytes() for si in range(2)) + (
        n.tobytes(),)


def test_lobster_books_over_wor_and_wpl_equal_catalog_books_after_every_message(shared_data, tmp_path):
    """AMZN 2012-06-21 (LOBSTER, real Nasdaq order flow): simulator -> WOR and WPL -> client events.

    After every catalog message group (one LOBSTER message: an order event, plus its trade for an
    execution) the L2 book of the client's WPL events equals the price levels (price, total size, known) of
    the L3 book of all catalog events, and the L3 book of the client's WOR events equals the L3 book of the
    catalog events as a WOR stream carries them.  What WOR cannot carry: reductions of orders resting
    before the file starts (LOBSTER has no opening book), and the size of a delete that disagrees with the
    order's remaining size (the level-1 file leaves out messages deeper in the book; a ``5`` row has no
    size).  The test checks these are exactly the events the catalog book counts as ``unknown_order`` and
    ``order_mismatch``.
    """
    from quantedge.book.l2 import L2Book
    from quantedge.book.l3 import L3Book
    from quantedge.catalog.importers.lobster import read_lobster
    from quantedge.events import FLAG_LAST, KIND_DEPTH, KIND_ORDER

    cat = Catalog(tmp_path / "cat")
    ev, _ = read_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", cat.symbols)
    cat.write(ev, source="amzn")
    ref = cat.read("AMZN", "2012-06-21")
    live = _live_depth(cat, "2012-06-21", "AMZN", ("order", "price"))
    live = live[(live["flags"] & FLAG_SNAPSHOT) == 0]
    wor = live[live["kind"] == KIND_ORDER]
    wpl = live[live["kind"] == KIND_DEPTH]
    assert (live["kind"] != 1).sum() == wor.shape[0] + wpl.shape[0]  # nothing else but the clear-depth lines

    orders = ref[ref["kind"] == KIND_ORDER]
    written, whole, mismatches = _wor_view(orders)
    assert wor.shape[0] == int(written.sum()) and (wor["order_id"] == orders["order_id"][written]).all()
    assert wpl.shape[0] == orders.shape[0]  # a level total for every order event, unknown orders included
    assert (wor["ts_event"] == orders["ts_event"][written] // 1000 * 1000).all()  # lines carry µs

    sid = cat.symbols.id("AMZN")
    n = sid + 1
    cat_l3 = L3Book.allocate(n, capacity=512, tick=0, evict_stale=False)  # every catalog event
    # the catalog events a WOR stream can carry (no eviction: WPL mirrors the raw order flow)
    carried_l3 = L3Book.allocate(n, capacity=512, tick=0, evict_stale=False)
    wor_l3 = L3Book.allocate(n, capacity=512, tick=0, evict_stale=False)
    wpl_l2 = L2Book.allocate(n, capacity=512, tick=0)
    is_order = ref["kind"] == KIND_ORDER
    carried = np.ones(ref.shape[0], bool)
    carried[np.flatnonzero(is_order)[~written]] = False
    as_carried = ref.copy()  # a delete row removes the whole order: size 0 means that to the L3 kernel
    as_carried["size"][np.flatnonzero(is_order)[whole]] = 0
    ends = np.flatnonzero(ref["flags"] & FLAG_LAST) + 1
    iw = ip = start = 0
    for end in ends:
        grp = ref[start:end]
        cat_l3.step(grp)
        carried_l3.step(as_carried[start:end][carried[start:end]])
        for k in np.flatnonzero(is_order[start:end]) + start:
            if carried[k]:
                wor_l3.step(_priced(wor_l3, wor[iw : iw + 1]))
                iw += 1
            wpl_l2.step(wpl[ip : ip + 1])
            ip += 1
        assert _levels(wor_l3, sid) == _levels(carried_l3, sid), f"WOR book differs after {start}..{end}"
        assert _levels(wpl_l2, sid) == _levels(cat_l3, sid), f"WPL book differs after {start}..{end}"
        start = end
    assert iw == wor.shape[0] and ip == wpl.shape[0]
    # what WOR cannot carry is exactly what the catalog book itself counts as anomalies
    assert cat_l3.anomalies(sid).get("unknown_order") == int((~written).sum()) > 0
    assert cat_l3.anomalies(sid).get("order_mismatch", 0) == mismatches >= int(whole.sum())
    assert "unknown_order" not in carried_l3.anomalies(sid) and "unknown_order" not in wor_l3.anomalies(sid)
