"""Databento MBP-10 importer: the real AAPL excerpt, a book rebuilt from the events vs the truth
array after every row, and fuzzed corrupt files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge import events as ev
from quantedge.catalog.importers.databento import read_databento_mbp10
from quantedge.catalog.symbols import NameTable

FILE = "databento/AAPL_2024-10-21_mbp10_premarket_excerpt.csv"


@pytest.mark.realdata
def test_real_excerpt_counts(shared_data: Path) -> None:
    path = shared_data / FILE
    names = NameTable()
    events, rep, truth = read_databento_mbp10(path, names)
    assert rep.rows_read == 5000 and rep.rows_imported == 5000 and rep.balanced()
    rows = list(csv.DictReader(path.open()))
    acts = Counter(r["action"] for r in rows)
    kinds = Counter(events["kind"].tolist())
    implied = int(next(n for n in rep.notes if "implied depth" in n).split(": ")[1].split()[0])
    assert kinds[ev.KIND_DEPTH] == acts["A"] + acts["C"] + implied == 4714 + implied
    assert kinds[ev.KIND_TRADE] == acts["T"] == 286
    assert truth.shape[0] == 5000 and (events["symbol"] == names.get("AAPL")).all()
    # trade side: B = buy aggressor, A = sell aggressor, N = unknown
    tr = events[events["kind"] == ev.KIND_TRADE]
    want = Counter({"B": 1, "A": -1, "N": 0}[r["side"]] for r in rows if r["action"] == "T")
    assert Counter(tr["side"].tolist()) == want
    assert (tr["conditions"] & ev.COND_EXTENDED_HOURS).all()  # 07:54-09:04 ET
    # side N on five book changes is recovered from the row's book
    assert any("side N" in n for n in rep.notes)
    assert (events["side"][events["kind"] == ev.KIND_DEPTH] != 0).all()
    assert (np.diff(events["ts_recv"]) >= 0).all()
    first = events[0]
    assert first["ts_recv"] == 1_729_511_669_221_230_963 and first["ts_event"] == 1_729_511_669_221_064_336
    assert first["price"] == 2_336_200 and first["action"] == ev.ACTION_DELETE and first["size"] == 0


def _seed(t: np.void) -> dict[int, dict[int, int]]:
    book: dict[int, dict[int, int]] = {1: {}, -1: {}}
    for side, px, sz in ((1, t["bid_px"], t["bid_sz"]), (-1, t["ask_px"], t["ask_sz"])):
        for p, s in zip(px.tolist(), sz.tolist(), strict=True):
            if p:
                book[side][p] = s
    return book


@pytest.mark.realdata
def test_book_from_events_matches_truth_after_every_row(shared_data: Path) -> None:
    """Depth events carry new totals, so a price->size map per side reproduces each row's top 10.

    The source has rows whose book changes a level no record names (an order replace published
    as one Add); the importer adds implied depth events for those, so nothing is left unexplained.
    """
    events, _, truth = read_databento_mbp10(shared_data / FILE, NameTable())
    book = _seed(truth[0])
    applied = compared = unexplained = 0
    worst: dict[int, int | None] = {1: None, -1: None}
    for t in truth:
        while applied < t["event_end"]:
            e = events[applied]
            if e["kind"] == ev.KIND_DEPTH:
                if e["size"]:
                    book[int(e["side"])][int(e["price"])] = int(e["size"])
                else:
                    book[int(e["side"])].pop(int(e["price"]), None)
            applied += 1
        if not t["exact"]:
            continue
        compared += 1
        bad = False
        for side, px, sz in ((1, t["bid_px"], t["bid_sz"]), (-1, t["ask_px"], t["ask_sz"])):
            vis = {p: q for p, q in zip(px.tolist(), sz.tolist(), strict=True) if p}
            inside = {
                p: q
                for p, q in book[side].items()
                if vis and (p - min(vis) if side > 0 else max(vis) - p) >= 0
            }
            # every level the events left inside this row's window must be in it, with its size;
            # a level of the row missing from the events must have come into view from below
            bad |= any(vis.get(p) != q for p, q in inside.items())
            deeper = worst[side]
            bad |= any(p not in inside and (deeper is None or (p - deeper) * side > 0) for p in vis)
            full = len(vis) == 10
            worst[side] = (min(vis) if side > 0 else max(vis)) if full else None
            book[side] = vis  # what lies beyond the 10 levels is unknown: keep only the window
        if bad:
            unexplained += 1
    assert compared >= 4990
    assert unexplained == 0


def _lines() -> list[bytes]:
    p = Path(__file__).resolve().parents[2].parent / "shared" / "data" / FILE
    if p.exists():
        return p.read_bytes().splitlines(keepends=True)[:30]
    cols = [
        "ts_recv",
        "ts_event",
        "rtype",
        "publisher_id",
        "instrument_id",
        "action",
        "side",
        "depth",
        "price",
        "size",
        "flags",
        "ts_in_delta",
        "sequence",
    ]
    for i in range(10):
        cols += [
            f"bid_px_{i:02d}",
            f"ask_px_{i:02d}",
            f"bid_sz_{i:02d}",
            f"ask_sz_{i:02d}",
            f"bid_ct_{i:02d}",
            f"ask_ct_{i:02d}",
        ]
    row = [
        "2024-10-21T11:54:29.221230963Z",
        "2024-10-21T11:54:29.221064336Z",
        "10",
        "2",
        "38",
        "A",
        "B",
        "0",
        "233.67",
        "2",
        "130",
        "1",
        "11",
    ]
    for i in range(10):
        row += [f"{233.67 - i / 100:.2f}", f"{233.74 + i / 100:.2f}", "5", "6", "1", "1"]
    return [(",".join(cols) + ",symbol\n").encode(), (",".join(row) + ",AAPL\n").encode()]


_LINES = _lines()


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    body = b"".join(_LINES[: draw(st.integers(0, len(_LINES)))])
    how = draw(st.sampled_from(["truncate", "columns", "garbage", "empty", "utf16", "field"]))
    if how == "truncate" and body:
        body = body[: draw(st.integers(0, len(body)))]
    elif how == "columns":
        rows = body.split(b"\n")
        i = draw(st.integers(0, max(len(rows) - 1, 0)))
        rows[i] = rows[i] + b",x" if draw(st.booleans()) else rows[i][: len(rows[i]) // 2]
        body = b"\n".join(rows)
    elif how == "garbage":
        pos = draw(st.integers(0, len(body)))
        body = body[:pos] + draw(st.binary(min_size=1, max_size=40)) + body[pos:]
    elif how == "empty":
        body = b""
    elif how == "utf16":
        body = body.decode().encode("utf-16")
    elif how == "field":
        body = body.replace(b",A,", b"," + draw(st.sampled_from([b"Q", b"", b"AA", b"\xff"])) + b",", 1)
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=corrupted())
def test_fuzz_never_raises(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "mbp10.csv"
    p.write_bytes(data)
    events, rep, truth = read_databento_mbp10(p, NameTable())
    assert rep.balanced() and truth.shape[0] == rep.rows_imported
    assert truth.shape[0] == 0 or truth["event_end"].max() <= events.shape[0]
    for q in rep.problems:
        assert q.file.endswith("mbp10.csv") and q.line >= 2 and q.reason


def test_bad_row_named(tmp_path: Path) -> None:
    head, row = _LINES[0], _LINES[1]
    fields = row.split(b",")
    fields[5] = b"Q"
    bad = b",".join(fields)
    p = tmp_path / "x.csv"
    p.write_bytes(head + row + bad)
    events, rep, truth = read_databento_mbp10(p, NameTable())
    assert rep.rows_imported == 1 and [(q.line, q.field, q.reason) for q in rep.problems] == [
        (3, "action", "bad_value")
    ]


def test_non_ascii_symbol_is_quarantined(tmp_path: Path) -> None:
    """A byte outside ASCII in the symbol (found by the fuzz test) is a named problem, not a crash."""
    head, row = _LINES[0], _LINES[1]
    bad = row.rstrip(b"\n").rsplit(b",", 1)
    bad = bad[0] + b",\x80" + bad[1] + b"\n"
    p = tmp_path / "x.csv"
    p.write_bytes(head + row + bad)
    events, rep, truth = read_databento_mbp10(p, NameTable())
    assert rep.rows_imported == 1 and [(q.line, q.field, q.reason) for q in rep.problems] == [
        (3, "symbol", "bad_encoding")
    ]
