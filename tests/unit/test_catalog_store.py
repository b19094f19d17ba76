"""Catalog write/read equality, partitioning, idempotent re-import and merge-order invariants."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.catalog import store
from quantedge.catalog.merge import is_sorted, merge_sorted_runs, sort_events
from quantedge.catalog.store import Catalog, table_to_events
from quantedge.events import EVENT_DTYPE, KIND_QUOTE, KIND_TRADE, empty
from quantedge.timeutil import et_midnight_ns

DAY1 = dt.date(2021, 3, 1)
DAY2 = dt.date(2021, 3, 2)


def make_events(n: int, symbols: list[int], day: dt.date, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = empty(n)
    base = et_midnight_ns(day) + 9 * 3600 * 10**9
    ev["ts_event"] = base + np.sort(rng.integers(0, 6 * 3600 * 10**9, n))
    ev["ts_recv"] = ev["ts_event"] + rng.integers(0, 3, n)  # many exact ties
    ev["seq"] = rng.integers(0, 5, n)
    ev["kind"] = rng.choice([KIND_QUOTE, KIND_TRADE], n)
    ev["symbol"] = rng.choice(symbols, n)
    ev["price"] = rng.integers(10_000, 20_000, n)
    ev["size"] = rng.integers(1, 1000, n)
    return ev


def _key(ev: np.ndarray) -> list[tuple]:
    return sorted(zip(ev["ts_recv"].tolist(), ev["seq"].tolist(), ev["kind"].tolist(),
                      ev["symbol"].tolist(), ev["price"].tolist(), ev["size"].tolist(), strict=True))


def test_write_read_roundtrip_and_partitions(tmp_path):
    cat = Catalog(tmp_path)
    a, b = cat.symbols.id("AAA"), cat.symbols.id("B/C")  # a symbol needing path escaping
    ev = np.concatenate([make_events(5000, [a, b], DAY1, 1), make_events(3000, [a, b], DAY2, 2)])
    assert cat.write(ev, source="test") == ev.shape[0]
    parts = cat.partitions()
    assert {(p.kind, p.date, p.symbol) for p in parts} == {
        (k, d, s) for k in ("quote", "trade") for d in (DAY1, DAY2) for s in ("AAA", "B/C")}
    got = cat.read("AAA", DAY1)
    want = ev[(ev["symbol"] == a) & (ev["ts_event"] < et_midnight_ns(DAY2))]
    assert got.dtype == EVENT_DTYPE and is_sorted(got)
    assert _key(got) == _key(want)
    # a fresh Catalog object sees the same symbol table
    assert Catalog(tmp_path).symbols.names() == ["AAA", "B/C"]
    rows = {(r["kind"], r["date"], r["symbol"]): r["rows"] for r in cat.ls()}
    assert sum(rows.values()) == ev.shape[0]


def test_reimport_same_source_replaces(tmp_path):
    cat = Catalog(tmp_path)
    s = cat.symbols.id("AAA")
    ev = make_events(1000, [s], DAY1)
    cat.write(ev, source="file1")
    cat.write(ev, source="file1")
    assert cat.read("AAA", DAY1).shape[0] == 1000
    cat.write(ev, source="file2")
    assert cat.read("AAA", DAY1).shape[0] == 2000


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3000), st.sampled_from([7, 100, 1 << 16]))
def test_stream_is_total_merge_order(tmp_path_factory, seed, n, group_rows):
    """Exact batch sizes, total merge order and determinism, with row groups small enough that the
    merge stops for many refills mid-day (and large enough to hold a whole file)."""
    root = tmp_path_factory.mktemp("cat")
    cat = Catalog(root)
    ids = [cat.symbols.id(f"S{i}") for i in range(7)]
    ev = np.concatenate([make_events(n, ids, DAY1, seed), make_events(n // 2 + 1, ids, DAY2, seed + 1)])
    saved = store.ROW_GROUP_ROWS
    store.ROW_GROUP_ROWS = group_rows
    try:
        half = ev.shape[0] // 2  # two sources: partitions hold two part files each
        cat.write(ev[:half], source="x")
        cat.write(ev[half:], source="y")
    finally:
        store.ROW_GROUP_ROWS = saved
    batches = list(cat.stream(batch_rows=777))
    got = np.concatenate(batches)
    assert all(b.shape[0] == 777 for b in batches[:-1]) and 0 < batches[-1].shape[0] <= 777
    assert got.shape[0] == ev.shape[0]
    assert is_sorted(got)
    assert _key(got) == _key(ev)
    # the same total order as merging every part file whole
    files = [(p.date, f) for p in cat.partitions() for f in p.files()]
    whole = [merge_sorted_runs([table_to_events(pq.read_table(f)) for d, f in files if d == day])
             for day in (DAY1, DAY2)]
    assert np.concatenate(whole).tobytes() == got.tobytes()
    # deterministic: the same query twice gives byte-identical output, whatever the batch size and
    # however many decoder threads race the merge
    for threads in (1, 3):
        again = np.concatenate(list(cat.stream(batch_rows=5000, decode_threads=threads)))
        assert again.tobytes() == got.tobytes()


def _grouped_catalog(root, group_rows: int = 50) -> Catalog:
    cat = Catalog(root)
    ids = [cat.symbols.id(f"S{i}") for i in range(5)]
    saved = store.ROW_GROUP_ROWS
    store.ROW_GROUP_ROWS = group_rows
    try:
        cat.write(make_events(3000, ids, DAY1, 5))
    finally:
        store.ROW_GROUP_ROWS = saved
    return cat


def test_stream_consumer_leaving_early_stops_the_decoders(tmp_path):
    """Closing the generator after one batch cancels queued row-group decodes and returns."""
    import threading

    cat = _grouped_catalog(tmp_path)
    before = threading.active_count()
    it = cat.stream(batch_rows=100)
    first = next(it)
    assert first.shape[0] == 100 and is_sorted(first)
    it.close()
    assert threading.active_count() == before


def test_stream_reuses_only_batches_nobody_holds(tmp_path):
    """A batch (or a view of one, or a buffer export) the consumer keeps is never written again;
    batches the consumer dropped are reused, and every batch is what it was when it was yielded."""
    cat = _grouped_catalog(tmp_path)
    want = [b.copy() for b in cat.stream(batch_rows=100)]
    views, exports, addresses = {}, {}, []
    for i, b in enumerate(cat.stream(batch_rows=100)):
        addresses.append(b.ctypes.data)
        assert b.tobytes() == want[i].tobytes()
        if i % 7 == 0:
            views[i] = b[3:50]
        if i % 7 == 3:
            exports[i] = memoryview(b)
    for i, v in views.items():
        assert v.tobytes() == want[i][3:50].tobytes()
    for i, m in exports.items():
        assert m.tobytes() == want[i].tobytes()
    assert len(set(addresses)) < len(addresses)  # dropped batches were recycled


@pytest.mark.parametrize("damage", ["pages", "truncated", "footer"])
def test_stream_names_a_damaged_part_file(tmp_path, damage):
    """A part file with damaged pages, cut short or with a damaged footer stops the stream with an
    error naming the file."""
    cat = _grouped_catalog(tmp_path)
    victim = max((f for p in cat.partitions() for f in p.files()), key=lambda f: f.stat().st_size)
    raw = bytearray(victim.read_bytes())
    if damage == "pages":
        mid = len(raw) // 2
        raw[mid: mid + 400] = b"\xff" * 400  # inside the data pages; the footer stays readable
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[-8:-4] = b"\xff\xff\xff\x7f"  # footer length
    victim.write_bytes(bytes(raw))
    with pytest.raises(store.CatalogReadError, match=victim.name):
        for _ in cat.stream(batch_rows=100):
            pass


def test_merge_keeps_events_at_the_largest_timestamp():
    """An event at the largest int64 timestamp still sorts before a finished source's placeholder."""
    top = np.iinfo(np.int64).max

    def run(ts, seq, kind):
        r = empty(len(ts))
        r["ts_recv"], r["seq"], r["kind"] = ts, seq, kind
        return r

    got = merge_sorted_runs([run([1, 2], [0, 0], [6, 6]), run([3, top], [0, 1], [6, 6]), run([4], [0], [6])])
    assert got["ts_recv"].tolist() == [1, 2, 3, 4, top]
    got = merge_sorted_runs([run([1], [0], [6]), run([2, top], [0, 0], [5, 5])])
    assert got["ts_recv"].tolist() == [1, 2, top]
def test_stream_filters(tmp_path):
    cat = Catalog(tmp_path)
    a, b = cat.symbols.id("AAA"), cat.symbols.id("BBB")
    ev = np.concatenate([make_events(500, [a, b], DAY1), make_events(500, [a, b], DAY2, 3)])
    cat.write(ev)
    got = np.concatenate(list(cat.stream(symbols=["BBB"], start=DAY2, end=DAY2, kinds=["trade"])))
    mask = (ev["symbol"] == b) & (ev["kind"] == KIND_TRADE) & (ev["ts_event"] >= et_midnight_ns(DAY2))
    assert _key(got) == _key(ev[mask])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from([1, 5, 6])),
                         max_size=30), max_size=6))
def test_merge_sorted_runs_is_stable_lexicographic(runs_spec):
    runs = []
    for r, spec in enumerate(runs_spec):
        ev = empty(len(spec))
        for i, (ts, seq, kind) in enumerate(spec):
            ev[i]["ts_recv"], ev[i]["seq"], ev[i]["kind"] = ts, seq, kind
        ev["order_id"] = r * 1000 + np.arange(len(spec))
        runs.append(sort_events(ev))
    merged = merge_sorted_runs(runs)
    cat = np.concatenate(runs) if runs else empty(0)
    ref = cat[np.lexsort((cat["kind"], cat["seq"], cat["ts_recv"]))] if cat.shape[0] else cat
    assert merged.tobytes() == ref.tobytes()
