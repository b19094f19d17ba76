"""Project CSV schemas (L2 / Trades / Quotes): import, export, and import(export(day)) == day."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge.catalog.export import export_project_csv
from quantedge.catalog.importers.csv_schema import (
    L2_COLUMNS,
    QUOTES_COLUMNS,
    TRADES_COLUMNS,
    read_project_csv,
)
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.merge import sort_events
from quantedge.catalog.store import Catalog
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_ADD,
    ACTION_DELETE,
    ACTION_MODIFY,
    COND_OFF_EXCHANGE,
    COND_REGULAR,
    COND_TRADE_THROUGH_EXEMPT,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_DEPTH,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.venues import MMID_BASE

TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
MMIDS = ["NSDQ", "ARCX", "EDGX", "BATS", "MEMX"]


def synthetic_l2(seed: int = 7, n: int = 400) -> str:
    """A deterministic L2 day: a snapshot of 5 levels per side from each MMID, then updates.

    No real L2 CSV exists, so this is the one synthetic data set; it exercises every Operation,
    both sides, snapshot rows, groups sharing a TickID, and a price-keyed row (empty Level).
    """
    rng = np.random.default_rng(seed)
    rows = []
    tick = 1
    t0 = dt.datetime(2025, 6, 2, 9, 29, 59, 500000)
    for mm in MMIDS[:3]:
        for side in (0, 1):
            for lvl in range(5):
                px = 100.0 + (0.01 * (lvl + 1) if side == 0 else -0.01 * lvl)
                rows.append(("6", lvl, mm, 0, side, f"{px:.4f}", 100 * (lvl + 1), tick, t0))
        tick += 1
    t = t0
    same_group = False
    for _ in range(n):
        if not same_group:
            t = t + dt.timedelta(microseconds=int(rng.integers(1, 5_000_000)))
        op = int(rng.integers(0, 3))
        side = int(rng.integers(0, 2))
        lvl = int(rng.integers(0, 5))
        mm = MMIDS[int(rng.integers(0, len(MMIDS)))]
        px = "" if op == 2 else f"{100 + rng.integers(-50, 50) / 100:.4f}"
        size = "" if op == 2 else int(rng.integers(1, 50)) * 100
        rows.append(("2" if rng.random() < 0.2 else "345"[op], lvl, mm, op, side, px, size, tick, t))
        same_group = rng.random() >= 0.7  # 30 % of rows share the next row's TickID and time
        if not same_group:
            tick += 1
    rows.append(("4", "", "", 1, 1, "99.9900", 300, tick + 1, t + dt.timedelta(seconds=1)))
    lines = [",".join(L2_COLUMNS)]
    for mt, lvl, mm, op, side, px, size, tk, ts in rows:
        lines.append(f"{mt},TEST,{lvl},{mm},{op},{side},{px},{size},{tk},{ts:%Y-%m-%d %H:%M:%S.%f}")
    return "\n".join(lines) + "\n"


def _import_all(paths: list[Path], symbols: NameTable, venues: NameTable) -> np.ndarray:
    parts = []
    for p in paths:
        ev, rep = read_project_csv(p, symbols, venues)
        assert rep.balanced() and rep.rows_quarantined == 0, (p, rep.to_dict())
        parts.append(ev)
    return sort_events(np.concatenate(parts))


@pytest.mark.realdata
def test_nept_catalog_day_round_trip(shared_data, tmp_path):
    cat = Catalog(tmp_path / "cat")
    ev, rep = read_iqfeed_ticks(shared_data / TICKS, cat.symbols)
    assert rep.rows_imported == 32_627
    # the day's trade-through-exempt prints (codes 47, 89) keep their bit through the CSV schemas
    assert np.count_nonzero(ev["conditions"] & COND_TRADE_THROUGH_EXEMPT) == 57
    cat.write(ev, source="nept")
    total = 0
    for day in ("2021-03-01", "2021-03-02", "2021-03-03"):
        x = cat.read("NEPT", day)
        assert x.shape[0] > 10_000
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing of an IQFeed day is lost by the CSV schemas
            paths = export_project_csv(x, cat.symbols, cat.venues, tmp_path / "csv")
        ymd = day.replace("-", "")
        assert [p.name for p in paths] == [f"NEPT_{k}_{ymd}.csv" for k in ("L2", "Trades", "Quotes")]
        back = _import_all(paths, cat.symbols, cat.venues)
        assert np.array_equal(back, x)
        total += x.shape[0]
    assert total == ev.shape[0]
    # TotalVolume restarts each day and ends at the day's traded volume
    last = (tmp_path / "csv" / "NEPT_Trades_20210303.csv").read_text().splitlines()[-1].split(",")
    day3 = ev[(ev["kind"] == KIND_TRADE) & (ev["ts_event"] >= int(dt.datetime(2021, 3, 3, 5, tzinfo=dt.UTC)
                                                                  .timestamp()) * 10**9)]
    assert int(last[4]) == int(day3["size"].sum())


def test_synthetic_l2_import_and_round_trip(tmp_path):
    src = tmp_path / "TEST_L2_20250602.csv"
    src.write_text(synthetic_l2())
    cat = Catalog(tmp_path / "cat")
    ev, rep = read_project_csv(src, cat.symbols, cat.venues)
    assert rep.balanced() and rep.rows_quarantined == 0
    n_rows = len(src.read_text().splitlines()) - 1
    assert ev.shape[0] == rep.rows_imported == n_rows
    assert (ev["kind"] == KIND_DEPTH).all()
    # the values match the text, column by column
    text_rows = [ln.split(",") for ln in src.read_text().splitlines()[1:]]
    assert ev["action"].tolist() == [[ACTION_ADD, ACTION_MODIFY, ACTION_DELETE][int(r[4])] for r in text_rows]
    assert ev["side"].tolist() == [SIDE_BID if r[5] == "1" else SIDE_ASK for r in text_rows]
    assert ev["level"].tolist() == [int(r[2]) if r[2] else -1 for r in text_rows]
    assert ev["seq"].tolist() == [int(r[8]) for r in text_rows]
    assert [cat.venues.name(v) if v else "" for v in ev["venue"]] == [r[3] for r in text_rows]
    assert (ev["venue"][ev["venue"] != 0] >= MMID_BASE).all()
    assert ((ev["flags"] & FLAG_SNAPSHOT != 0) == np.array([r[0] == "6" for r in text_rows])).all()
    # FLAG_LAST closes each run of rows sharing a TickID
    seq = ev["seq"]
    assert ((ev["flags"] & FLAG_LAST != 0) == np.r_[seq[1:] != seq[:-1], True]).all()
    cat.write(ev, source="l2")
    day = cat.read("TEST", "2025-06-02")
    paths = export_project_csv(day, cat.symbols, cat.venues, tmp_path / "out")
    back = _import_all(paths, cat.symbols, cat.venues)
    assert np.array_equal(back, day)


def test_quotes_file_with_one_sided_rows(tmp_path):
    p = tmp_path / "AAPL_Quotes_20250602.csv"
    p.write_text(",".join(QUOTES_COLUMNS) + "\n"
                 "2025-06-02 09:30:00.000100,AAPL,200.1000,300,200.1200,100,5,11,1\n"
                 "2025-06-02 09:30:00.000200,AAPL,200.1100,200,,,26,,2\n"
                 "2025-06-02 09:30:00.000300,AAPL,,,200.1150,500,,19,3\n")
    syms, venues = NameTable(), NameTable(base=MMID_BASE)
    ev, rep = read_project_csv(p, syms, venues)
    assert rep.rows_imported == 3 and ev.shape[0] == 4
    assert ev["side"].tolist() == [SIDE_BID, SIDE_ASK, SIDE_BID, SIDE_ASK]
    assert ev["venue"].tolist() == [5, 11, 26, 19]
    assert ev["price"].tolist() == [2_001_000, 2_001_200, 2_001_100, 2_001_150]
    assert ((ev["flags"] & FLAG_LAST) != 0).tolist() == [False, True, True, True]
    assert (ev["kind"] == KIND_QUOTE).all() and (ev["flags"] & FLAG_FROM_TRADE == 0).all()
    paths = export_project_csv(ev, syms, venues, tmp_path / "out")
    assert (tmp_path / "out" / "AAPL_Quotes_20250602.csv").read_text() == p.read_text()
    assert np.array_equal(_import_all(paths, syms, venues), sort_events(ev))


def _trades(tmp_path: Path, sym2: str = "AAPL") -> Path:
    """An AAPL trades file whose last two rows name ``sym2``."""
    p = tmp_path / "AAPL_Trades_20250602.csv"
    p.write_text(",".join(TRADES_COLUMNS) + "\n"
                 "2025-06-02 09:30:00.000100,AAPL,200.1000,100,100,5,01,1,200.0900,200.1100\n"
                 f"2025-06-02 09:30:00.000200,{sym2},200.1000,30,130,19,87,2,200.0900,200.1100\n"
                 f"2025-06-02 09:30:00.000300,{sym2},200.1200,10,140,11,,3,,\n")
    return p


def test_trades_file_conditions_and_nbbo(tmp_path):
    p = _trades(tmp_path)
    ev, rep = read_project_csv(p, NameTable(), NameTable(base=MMID_BASE))
    assert rep.rows_imported == 3 and not rep.notes
    assert ev["kind"].tolist() == [KIND_QUOTE, KIND_QUOTE, KIND_TRADE, KIND_TRADE, KIND_TRADE]
    tr = ev[ev["kind"] == KIND_TRADE]
    assert tr["conditions"][0] == COND_REGULAR
    assert tr["conditions"][1] & COND_OFF_EXCHANGE
    assert tr["conditions"][2] == 0


def test_rows_of_another_symbol_than_the_file_name_are_noted(tmp_path):
    names = NameTable()
    ev, rep = read_project_csv(_trades(tmp_path, "MSFT"), names, NameTable(base=MMID_BASE))
    assert rep.rows_imported == 3 and sorted(names.names()) == ["AAPL", "MSFT"]
    assert ("2 rows name a symbol other than the file name's AAPL (MSFT: 2); imported under the row's "
            "Symbol") in rep.notes


def test_header_variants(tmp_path):
    body = "2025-06-02 09:30:00.000100,AAPL,200.1000,300,200.1200,100,5,11,1\n"
    syms, venues = NameTable(), NameTable(base=MMID_BASE)
    first = _w(tmp_path, "AAPL_Quotes_20250602.csv", ",".join(QUOTES_COLUMNS) + "\n" + body)
    ref, _ = read_project_csv(first, syms, venues)
    # no header: the kind and column order come from the file name
    ev, rep = read_project_csv(_w(tmp_path, "AAPL_Quotes_20250603.csv", body), syms, venues)
    assert np.array_equal(ev, ref) and any("no header" in n for n in rep.notes)
    # reordered columns, kind from the header
    cols = QUOTES_COLUMNS[::-1]
    vals = body.strip().split(",")[::-1]
    ev, rep = read_project_csv(_w(tmp_path, "whatever.csv", ",".join(cols) + "\n" + ",".join(vals) + "\n"),
                               syms, venues)
    assert np.array_equal(ev, ref)
    # a header that misses a column: every row quarantined, with the reason
    bad = ",".join(QUOTES_COLUMNS[:-1]) + "\n" + body
    ev, rep = read_project_csv(_w(tmp_path, "AAPL_Quotes_20250604.csv", bad), syms, venues)
    assert ev.shape[0] == 0 and rep.reasons == {"bad_header": 1} and rep.balanced()
    # neither name nor header names the kind
    ev, rep = read_project_csv(_w(tmp_path, "mystery.csv", body), syms, venues)
    assert rep.reasons == {"unknown_kind": 1} and rep.problems[0].line == 1


def _w(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("latin-1") if isinstance(text, str) else text)
    return p


def test_bad_rows_name_file_line_field(tmp_path):
    text = ",".join(L2_COLUMNS) + "\n" + "\n".join([
        "6,TEST,0,NSDQ,0,1,100.0000,100,1,2025-06-02 09:30:00.000001",
        "9,TEST,0,NSDQ,0,1,100.0000,100,2,2025-06-02 09:30:00.000002",  # MessageType
        "4,TEST,0,NSDQ,3,1,100.0000,100,3,2025-06-02 09:30:00.000003",  # Operation
        "4,TEST,0,NSDQ,1,2,100.0000,100,4,2025-06-02 09:30:00.000004",  # Side
        "4,TEST,0,NSDQ,1,1,1OO.0000,100,5,2025-06-02 09:30:00.000005",  # Price
        "4,TEST,0,NSDQ,1,1,100.0000,100,6,2025-06-02 09:30:00",  # ok: no fraction
        "4,TEST,0,NSDQ,1,1,100.0000,100,7,2025-13-02 09:30:00.000007",  # Timestamp
        "4,,0,NSDQ,1,1,100.0000,100,8,2025-06-02 09:30:00.000008",  # Symbol
        "4,TEST,0,NSDQ,1,1,100.0000,100",  # columns
        "4,TEST,99999,NSDQ,1,1,100.0000,100,9,2025-06-02 09:30:00.000009",  # Level
        "4,TEST,0,NS\xffQ,1,1,100.0000,100,10,2025-06-02 09:30:00.000010",  # MarketMaker
        "4,TEST,0,NSDQ,1,1,100.0000,100,11,2025-06-02 09:3",  # truncated
    ])
    p = _w(tmp_path, "TEST_L2_20250602.csv", text)
    ev, rep = read_project_csv(p, NameTable(), NameTable(base=MMID_BASE))
    assert rep.balanced() and rep.rows_read == 12 and rep.rows_imported == 2
    got = {pr.line: (pr.field, pr.reason) for pr in rep.problems}
    assert got == {
        3: ("MessageType", "bad_code"), 4: ("Operation", "bad_code"), 5: ("Side", "bad_code"),
        6: ("Price", "non_numeric"), 8: ("Timestamp", "bad_timestamp"), 9: ("Symbol", "bad_symbol"),
        10: ("", "wrong_column_count"), 11: ("Level", "out_of_range"), 12: ("MarketMaker", "bad_mmid"),
        13: ("Timestamp", "bad_timestamp"),
    }
    assert all(pr.file == str(p) for pr in rep.problems)


def test_empty_and_utf16_files(tmp_path):
    syms, venues = NameTable(), NameTable(base=MMID_BASE)
    ev, rep = read_project_csv(_w(tmp_path, "A_Trades_20250602.csv", b""), syms, venues)
    assert rep.reasons == {"empty_file": 1} and rep.balanced()
    text = ",".join(TRADES_COLUMNS) + "\n2025-06-02 09:30:00.000100,A,1.0000,100,100,5,01,1,0.9900,1.0100\n"
    ev, rep = read_project_csv(_w(tmp_path, "A_Trades_20250603.csv", text.encode("utf-16")), syms, venues)
    assert rep.rows_imported == 1 and ev.shape[0] == 3


_rows = {
    "L2": [L2_COLUMNS, "6,TEST,0,NSDQ,0,1,100.0000,100,1,2025-06-02 09:30:00.000001"],
    "Trades": [TRADES_COLUMNS, "2025-06-02 09:30:00.000100,AAPL,200.1000,100,100,5,01,1,200.0900,200.1100"],
    "Quotes": [QUOTES_COLUMNS, "2025-06-02 09:30:00.000100,AAPL,200.1000,300,200.1200,100,5,11,1"],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(_rows)), st.lists(st.tuples(st.integers(0, 200), st.binary(max_size=3)),
                                                max_size=8), st.integers(1, 6), st.booleans())
def test_csv_fuzz(tmp_path, kind, edits, copies, header):
    cols, row = _rows[kind]
    data = bytearray(((",".join(cols) + "\n") if header else "").encode() + ((row + "\n") * copies).encode())
    for pos, rep_bytes in edits:
        i = pos % (len(data) + 1)
        data[i:i + len(rep_bytes)] = rep_bytes
    p = _w(tmp_path, f"AAPL_{kind}_20250602.csv", bytes(data))
    ev, rep = read_project_csv(p, NameTable(), NameTable(base=MMID_BASE))
    assert rep.balanced()
    nlines = bytes(data).count(b"\n") + 1
    for pr in rep.problems:
        assert pr.file == str(p) and 0 <= pr.line <= nlines and (pr.field == "" or pr.field in cols)
    assert ev.shape[0] >= rep.rows_imported
