"""LOBSTER importer: real sample archives, the bundled excerpt, and fuzzed corrupt files."""

from __future__ import annotations

import datetime as dt
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quantedge
from quantedge import events as ev
from quantedge.catalog.importers.lobster import (
    lobster_files,
    read_lobster,
    read_lobster_orderbook,
)
from quantedge.catalog.symbols import NameTable
from quantedge.timeutil import et_midnight_ns

SAMPLE = Path(quantedge.__file__).parent / "samples" / "lobster"
SAMPLE_MSG = SAMPLE / "AMZN_2012-06-21_34200000_57600000_message_5.csv"
SAMPLE_BOOK = SAMPLE / "AMZN_2012-06-21_34200000_57600000_orderbook_5.csv"
NAME = "AMZN_2012-06-21_34200000_57600000_message_5.csv"

ROWS = {
    "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip": 118_497,
    "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip": 57_515,
    "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip": 155_935,
}


def _type_counts(path) -> Counter:
    """Independent count of message types with the csv module (the oracle for event counts)."""
    import csv
    import io
    import zipfile

    if zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        name = next(n for n in z.namelist() if "_message_" in n)
        text = z.read(name).decode()
    else:
        text = Path(path).read_text()
    return Counter(int(r[1]) for r in csv.reader(io.StringIO(text)))


@pytest.mark.realdata
@pytest.mark.parametrize("zname", sorted(ROWS))
def test_real_archives_import_every_row(shared_data: Path, zname: str) -> None:
    path = shared_data / "lobster" / zname
    events, rep = read_lobster(path, NameTable())
    assert rep.rows_read == ROWS[zname]
    assert rep.balanced()
    assert rep.rows_quarantined == 0, rep.problems[:3]
    types = _type_counts(path)
    kinds = Counter(zip(events["kind"].tolist(), events["action"].tolist(), strict=True))
    assert kinds[(ev.KIND_ORDER, ev.ACTION_ADD)] == types[1]
    assert kinds[(ev.KIND_ORDER, ev.ACTION_CANCEL)] == types[2]
    assert kinds[(ev.KIND_ORDER, ev.ACTION_DELETE)] == types[3]
    assert kinds[(ev.KIND_ORDER, ev.ACTION_EXECUTE)] == types[4]
    assert kinds[(ev.KIND_TRADE, 0)] == types[4] + types[5] + types[6]
    assert (events["kind"] == ev.KIND_STATUS).sum() == types[7]
    assert events.shape[0] == ROWS[zname] + types[4]
    assert (events["flags"] & ev.FLAG_LAST).astype(bool).sum() == ROWS[zname]
    # merge order and one FLAG_LAST per message row
    key = np.lexsort((events["kind"], events["seq"], events["ts_recv"]))
    assert (key == np.arange(events.shape[0])).all()


@pytest.mark.realdata
def test_amzn5_fields_and_orderbook(shared_data: Path) -> None:
    path = shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    names = NameTable()
    events, rep = read_lobster(path, names)
    sym = names.get("AMZN")
    assert sym is not None and (events["symbol"] == sym).all()
    midnight = et_midnight_ns(dt.date(2012, 6, 21))
    # row 1: 34200.017459617,5,0,1,2238200,-1 -> hidden trade, buyer-initiated
    first = events[0]
    assert first["ts_event"] == midnight + 34_200_017_459_617
    assert first["kind"] == ev.KIND_TRADE and first["side"] == ev.SIDE_BID
    assert first["conditions"] & ev.COND_HIDDEN and first["conditions"] & ev.COND_ODD_LOT
    assert first["price"] == 2_238_200 and first["seq"] == 1
    assert (events["venue"] == 5).all() and (events["flags"] & ev.FLAG_TS_RECV_MODELED).all()
    # the float-noise time 43002.632812672004 (line 67823) is kept, truncated to the ns
    row = events[events["seq"] == 67823]
    assert row.shape[0] == 1 and row["ts_event"][0] == midnight + 43_002_632_812_672
    assert any("beyond 1 ns" in n for n in rep.notes)
    # executions: order event then trade with opposite side, FLAG_LAST on the trade only
    ex = np.flatnonzero(events["action"] == ev.ACTION_EXECUTE)
    assert (events["kind"][ex + 1] == ev.KIND_TRADE).all()
    assert (events["side"][ex + 1] == -events["side"][ex]).all()
    assert not (events["flags"][ex] & ev.FLAG_LAST).any()
    assert (events["order_id"][ex + 1] == events["order_id"][ex]).all()
    book = read_lobster_orderbook(path)
    assert book.shape == (155_935, 20)
    assert book[0, 0] == 2_239_500 and book[0, 2] == 2_231_800
    assert not np.isin(book[:, 1::2], [9_999_999_999, -9_999_999_999]).any()  # sizes are sizes
    px = events["price"][events["kind"] != ev.KIND_STATUS]
    assert px.min() == 2_204_700 and px.max() == 2_261_200  # $220.47 .. $226.12, all in $0.0001


@pytest.mark.realdata
def test_excerpts_level10_and_gz(shared_data: Path) -> None:
    exc = shared_data / "lobster" / "excerpts"
    files = lobster_files(exc)
    by_levels = {f.levels: f for f in files}
    assert by_levels[10].orderbook is not None and by_levels[50].orderbook is None
    events, rep = read_lobster(by_levels[10].message, NameTable())
    assert rep.rows_read == 999 and rep.balanced()
    # "the last row may be cut": whatever is not importable is quarantined, not lost
    book = read_lobster_orderbook(by_levels[10].orderbook) if rep.rows_quarantined == 0 else None
    if book is not None:
        assert book.shape == (999, 40)
    events, rep = read_lobster(by_levels[50].message, NameTable())
    assert rep.rows_read == 91_997 and rep.balanced() and rep.rows_quarantined == 0


def test_bundled_sample() -> None:
    files = lobster_files(SAMPLE)
    assert len(files) == 1
    f = files[0]
    assert (f.symbol, f.date, f.levels) == ("AMZN", dt.date(2012, 6, 21), 5)
    events, rep = read_lobster(f.message, NameTable())
    assert rep.rows_read == 2000 and rep.rows_imported == 2000 and rep.rows_quarantined == 0
    c = Counter(zip(events["kind"].tolist(), events["action"].tolist(), strict=True))
    assert c[(ev.KIND_ORDER, ev.ACTION_ADD)] == 894
    assert c[(ev.KIND_ORDER, ev.ACTION_CANCEL)] == 2
    assert c[(ev.KIND_ORDER, ev.ACTION_DELETE)] == 739
    assert c[(ev.KIND_ORDER, ev.ACTION_EXECUTE)] == 220
    assert c[(ev.KIND_TRADE, 0)] == 220 + 145
    hidden = events[(events["conditions"] & ev.COND_HIDDEN) != 0]
    assert hidden.shape[0] == 145
    book = read_lobster_orderbook(f.orderbook)
    assert book.shape == (2000, 20)


def test_sample_order_events_explain_orderbook_changes() -> None:
    """Each visible order event moves the size at its price by exactly its size (orderbook diffs)."""
    events, _ = read_lobster(SAMPLE_MSG, NameTable())
    book = read_lobster_orderbook(SAMPLE_BOOK)

    def size_at(row: int, side: int, price: int) -> int | None:
        px = book[row, 0::4] if side == ev.SIDE_ASK else book[row, 2::4]
        sz = book[row, 1::4] if side == ev.SIDE_ASK else book[row, 3::4]
        hit = np.flatnonzero(px == price)
        return int(sz[hit[0]]) if hit.size else None

    checked = 0
    for e in events[(events["kind"] == ev.KIND_ORDER) & (events["seq"] >= 2)]:
        r = int(e["seq"]) - 1  # orderbook row after this message (0-based)
        side, price, size = int(e["side"]), int(e["price"]), int(e["size"])
        before, after = size_at(r - 1, side, price), size_at(r, side, price)
        if before is None and after is None:
            continue  # outside the 5 visible levels on both rows
        sign = 1 if e["action"] == ev.ACTION_ADD else -1
        if before is not None and after is not None:
            assert after - before == sign * size, f"line {r + 1}"
        elif before is None:  # level appeared (or a deeper level shifted into view)
            assert sign == 1 or after is not None
        checked += 1
    assert checked > 1500


def test_name_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "prices.csv"
    p.write_text("34200.5,1,7,100,1000000,1\n")
    with pytest.raises(ValueError, match="pass symbol= and date="):
        read_lobster(p, NameTable())
    events, rep = read_lobster(p, NameTable(), symbol="XYZ", date="2020-03-09")
    assert rep.rows_imported == 1
    assert events["ts_event"][0] == et_midnight_ns(dt.date(2020, 3, 9)) + 34_200_500_000_000


def test_bad_rows_are_named(tmp_path: Path) -> None:
    p = tmp_path / NAME
    p.write_text(
        "34200.1,1,1,100,2238200,1\n"  # ok
        "34200.2,8,1,100,2238200,1\n"  # bad type
        "34200.3,1,1,-5,2238200,1\n"  # negative size
        "34200.4,1,1,100,22x8200,1\n"  # non numeric price
        "34200.5,1,1,100,2238200\n"  # short
        "34200.6,1,1,100,2238200,0\n"  # bad direction
        "\n"
        "34200.7,7,0,0,-1,-1\n"  # halt
        "34200.8,7,0,0,0,-1\n"  # quote resume
        "34200.9,7,0,0,1,-1\n"  # resume
        "34201.0,6,-1,300,2238200,-1\n"  # cross
    )
    events, rep = read_lobster(p, NameTable())
    assert rep.rows_read == 10 and rep.rows_imported == 5 and rep.balanced()
    got = {(q.line, q.field, q.reason) for q in rep.problems}
    assert got == {
        (2, "type", "bad_value"),
        (3, "size", "negative"),
        (4, "price", "non_numeric"),
        (5, "", "wrong_column_count"),
        (6, "direction", "bad_value"),
    }
    assert all(q.file.endswith(NAME) for q in rep.problems)
    st = events[events["kind"] == ev.KIND_STATUS]
    assert st["action"].tolist() == [ev.STATUS_HALT, ev.STATUS_QUOTE_RESUME, ev.STATUS_RESUME]
    cross = events[(events["conditions"] & ev.COND_CROSS) != 0]
    assert cross.shape[0] == 1 and cross["size"][0] == 300


def test_gzip_message_and_truncated_gzip(tmp_path: Path) -> None:
    raw = SAMPLE_MSG.read_bytes()
    gz = gzip.compress(raw)
    p = tmp_path / (NAME + ".gz")
    p.write_bytes(gz)
    events, rep = read_lobster(p, NameTable())
    assert rep.rows_imported == 2000
    p.write_bytes(gz[: len(gz) // 2])
    events, rep = read_lobster(p, NameTable())
    assert rep.balanced() and 0 < rep.rows_read < 2000
    assert any("truncated" in n for n in rep.notes)


_lines = SAMPLE_MSG.read_bytes().splitlines(keepends=True)[:60]


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A message file damaged the ways real files get damaged."""
    body = b"".join(_lines[: draw(st.integers(0, len(_lines)))])
    how = draw(st.sampled_from(["truncate", "columns", "garbage", "empty", "utf16", "splice", "latin1"]))
    if how == "truncate" and body:
        body = body[: draw(st.integers(0, len(body)))]
    elif how == "columns":
        rows = body.split(b"\n")
        i = draw(st.integers(0, max(len(rows) - 1, 0)))
        longer = rows[i] + b",9" * draw(st.integers(1, 3))
        rows[i] = longer if draw(st.booleans()) else rows[i][: len(rows[i]) // 2]
        body = b"\n".join(rows)
    elif how == "garbage":
        pos = draw(st.integers(0, len(body)))
        body = body[:pos] + draw(st.binary(min_size=1, max_size=40)) + body[pos:]
    elif how == "empty":
        body = b""
    elif how == "utf16":
        body = body.decode().encode("utf-16")
    elif how == "splice":
        body = body.replace(b",", draw(st.sampled_from([b";", b",,", b"\t", b", "])), 1)
    elif how == "latin1":
        body = body.replace(b"1", "é".encode("latin-1"), 1)
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=corrupted())
def test_fuzz_never_raises_and_balances(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / NAME
    p.write_bytes(data)
    events, rep = read_lobster(p, NameTable())
    assert rep.balanced()
    assert events.shape[0] >= rep.rows_imported
    for q in rep.problems:
        assert q.file.endswith(NAME) and q.line >= 1 and q.reason


@pytest.mark.parametrize("deep_first", [False, True])
def test_a_lobster_symbol_day_keeps_one_message_file(tmp_path: Path, shared_data: Path,
                                                      deep_first: bool) -> None:
    """The AMZN day at 1 and 5 levels is one order flow: whichever comes first, the catalog ends with
    the level-5 file's events only (not both), the choice survives a re-import, and the set-aside
    file is named in its report."""
    import json

    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    l1 = shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    l5 = shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    cat = Catalog(tmp_path / "c")
    order = [l5, l1] if deep_first else [l1, l5]
    first = import_paths(cat, "lobster", order)
    reps = first + import_paths(cat, "lobster", [l1, l5])
    only5, _ = read_lobster(l5, NameTable())
    got = cat.read("AMZN", "2012-06-21")
    assert got.shape[0] == only5.shape[0]
    assert all(len(p.files()) == 1 for p in cat.partitions(symbols=["AMZN"]))
    day = json.loads((cat.root / "lobster_days.json").read_text())["AMZN/2012-06-21"]
    assert day["levels"] == 5 and "message_5" in day["source"]
    notes = " ".join(n for r in reps for n in r.notes)
    assert "not written: AMZN 2012-06-21 already comes from" in notes
    assert ("replaces" in notes) == (not deep_first)
    # each report's "written" is what stays in the catalog: the level-5 file's events only
    assert sum(r.events_written for r in first) == only5.shape[0]
    assert ("removed again" in " ".join(n for r in first for n in r.notes)) == (not deep_first)
    gt = list((cat.root / "groundtruth").rglob("orderbook_*.parquet"))
    assert [g.name for g in gt] == ["orderbook_5.parquet"]
