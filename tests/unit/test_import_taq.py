"""TAQ trades and quotes importers: the real 2018 sample files and fuzzed corrupt files."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge import events as ev
from quantedge.catalog.importers.taq import read_taq_quotes, read_taq_trades
from quantedge.catalog.symbols import NameTable
from quantedge.venues import TAQ_EXCHANGE_TO_VENUE

TRADES = "taq/sampleTDataRawMicroseconds.csv.gz"
QUOTES = "taq/sampleQDataRawMicroseconds.csv.gz"
T_HEADER = "DT,EX,SYMBOL,SYM_SUFFIX,TR_SCOND,SIZE,PRICE,TR_CORR,TR_SEQNUM,TR_SOURCE,TR_RF\n"
Q_HEADER = "DT,EX,BID,BIDSIZ,ASK,ASKSIZ,QU_COND,QU_SEQNUM,NATBBO_IND,QU_CANCEL,QU_SOURCE,SYMBOL,SYM_SUFFIX\n"


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return list(csv.DictReader(f))


@pytest.mark.realdata
def test_real_trades(shared_data: Path) -> None:
    path = shared_data / TRADES
    names = NameTable()
    events, rep = read_taq_trades(path, names)
    assert rep.rows_read == 77_263 and rep.rows_imported == 77_263 and rep.balanced()
    assert events.shape[0] == 77_263 and (events["kind"] == ev.KIND_TRADE).all()
    assert (events["symbol"] == names.get("XXX")).all()
    rows = _rows(path)
    # same multiset of (seq, price, size) as the file, prices exact in $0.0001
    want = Counter((int(r["TR_SEQNUM"]), round(float(r["PRICE"]) * 10_000), int(r["SIZE"])) for r in rows)
    got = Counter(zip(events["seq"].tolist(), events["price"].tolist(), events["size"].tolist(), strict=True))
    assert got == want
    off = (events["conditions"] & ev.COND_OFF_EXCHANGE) != 0
    assert off.sum() == sum(r["EX"] == "D" for r in rows) == 23_697
    assert ((events["venue"] == 24) & off).sum() == sum(r["TR_RF"] == "N" for r in rows)
    isos = sum("F" in r["TR_SCOND"] for r in rows)
    assert ((events["conditions"] & ev.COND_INTERMARKET_SWEEP) != 0).sum() == isos
    form_t = sum(("T" in r["TR_SCOND"] or "U" in r["TR_SCOND"]) for r in rows)
    assert ((events["conditions"] & ev.COND_EXTENDED_HOURS) != 0).sum() == form_t
    assert ((events["conditions"] & ev.COND_CANCEL_CORRECTION) != 0).sum() == 2
    # every code in the file is a known CTA/UTP code
    assert not (events["conditions"] & ev.COND_UNKNOWN_CODE).any()
    odd = sum(("I" in r["TR_SCOND"] or int(r["SIZE"]) < 100) for r in rows)
    assert ((events["conditions"] & ev.COND_ODD_LOT) != 0).sum() == odd
    # first row: 2018-01-02T10:01:21.479000Z, Arca, $157.80 x 2, FTI
    first = events[events["seq"] == 48101][0]
    assert first["ts_event"] == 1_514_887_281_479_000_000 and first["venue"] == TAQ_EXCHANGE_TO_VENUE["P"]
    assert first["conditions"] & ev.COND_EXTENDED_HOURS and not first["conditions"] & ev.COND_REGULAR
    assert (np.diff(events["ts_recv"]) >= 0).all()


@pytest.mark.realdata
def test_real_quotes(shared_data: Path) -> None:
    path = shared_data / QUOTES
    events, rep = read_taq_quotes(path, NameTable())
    assert rep.rows_read == 464_221 and rep.rows_imported == 464_221 and rep.balanced()
    assert events.shape[0] == 2 * 464_221
    bids, asks = events[0::2], events[1::2]
    assert (bids["side"] == ev.SIDE_BID).all() and (asks["side"] == ev.SIDE_ASK).all()
    assert (asks["flags"] & ev.FLAG_LAST).all() and not (bids["flags"] & ev.FLAG_LAST).any()
    assert (bids["seq"] == asks["seq"]).all()
    rows = _rows(path)
    assert (bids["price"] == 0).sum() == sum(float(r["BID"]) == 0 for r in rows) == 556
    assert (asks["price"] == 0).sum() == 811
    assert (events["size"][events["price"] == 0] == 0).all()
    # sizes are round lots in the file: shares = lots * 100
    assert (events["size"] % 100 == 0).all()
    assert bids["size"].sum() == 100 * sum(int(r["BIDSIZ"]) for r in rows)
    assert Counter(events["venue"][0::2].tolist()) == Counter(TAQ_EXCHANGE_TO_VENUE[r["EX"]] for r in rows)
    assert ((events["conditions"] & ev.COND_OPENING) != 0).sum() == 2 * 3


def test_bad_rows_named(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        T_HEADER
        + "2018-01-02T14:30:00.000001Z,N,XXX,NA,@,100,157.8,0,1,C,\n"
        + "2018-01-02T14:30:00.000002Z,N,XXX,NA,@,100,157.80001,0,2,C,\n"  # sub-tick price
        + "2018-01-02T14:30:00.000003Z,N,XXX,NA,@,-1,157.8,0,3,C,\n"  # negative size
        + "2018-13-02T14:30:00.000004Z,N,XXX,NA,@,100,157.8,0,4,C,\n"  # month 13
        + "2018-01-02T14:30:00.000005Z,N,XXX,NA,@,100,157.8,0,5\n"  # short
        + "2018-01-02T14:30:00.000006Z,N,BRK,B,&,100,157.8,12,6,C,\n"  # unknown code, correction
    )
    names = NameTable()
    events, rep = read_taq_trades(p, names)
    assert rep.rows_read == 6 and rep.rows_imported == 2 and rep.balanced()
    got = {(q.line, q.field, q.reason) for q in rep.problems}
    assert got == {
        (3, "PRICE", "too_precise"),
        (4, "SIZE", "bad_value"),
        (5, "DT", "out_of_range"),
        (6, "", "wrong_column_count"),
    }
    last = events[events["seq"] == 6][0]
    assert names.name(last["symbol"]) == "BRK.B"
    assert last["conditions"] & ev.COND_UNKNOWN_CODE and last["conditions"] & ev.COND_CANCEL_CORRECTION
    assert events[events["seq"] == 1][0]["conditions"] == ev.COND_REGULAR


def test_missing_header_column_quarantines_rows(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text("DT,EX,BID\n2018-01-02T14:30:00Z,N,1.0\n")
    events, rep = read_taq_quotes(p, NameTable())
    assert events.shape[0] == 0 and rep.rows_read == 1 and rep.reasons["missing_column"] == 1


_T_LINES = [T_HEADER.encode()] + [
    f"2018-01-02T14:30:{i % 60:02d}.{i:06d}Z,{'NDPTK'[i % 5]},XXX,NA,{['@', 'F I', 'T', '4 B'][i % 4]},"
    f"{i + 1},{150 + i / 100:.2f},0,{i},C,{'T' if i % 5 == 1 else ''}\n".encode()
    for i in range(40)
]
_Q_LINES = [Q_HEADER.encode()] + [
    f"2018-01-02T14:30:{i % 60:02d}.{i:06d}Z,{'NZY'[i % 3]},{150 + i / 100:.2f},{i % 4},"
    f"{151 + i / 100:.2f},{i % 3},R,{i},A,NA,C,XXX,NA\n".encode()
    for i in range(40)
]


@st.composite
def corrupted(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    body = b"".join(lines[: draw(st.integers(0, len(lines)))])
    how = draw(st.sampled_from(["truncate", "columns", "garbage", "empty", "utf16", "gzip_cut", "none"]))
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
    elif how == "gzip_cut":
        z = gzip.compress(body)
        body = z[: draw(st.integers(0, len(z)))]
    return body


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=corrupted(_T_LINES))
def test_fuzz_trades(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "trades.csv"
    p.write_bytes(data)
    events, rep = read_taq_trades(p, NameTable())
    assert rep.balanced() and events.shape[0] == rep.rows_imported
    for q in rep.problems:
        assert q.file.endswith("trades.csv") and q.line >= 2 and q.reason


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=corrupted(_Q_LINES))
def test_fuzz_quotes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "quotes.csv"
    p.write_bytes(data)
    events, rep = read_taq_quotes(p, NameTable())
    assert rep.balanced() and events.shape[0] == 2 * rep.rows_imported
    for q in rep.problems:
        assert q.file.endswith("quotes.csv") and q.line >= 2 and q.reason
