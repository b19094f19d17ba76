"""IQFeed lookup-port history: real NEPT ticks and bars, every layout variant, and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge.catalog.importers.iqfeed_history import (
    read_iqfeed_bars,
    read_iqfeed_ticks,
    symbol_from_filename,
)
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    COND_EXTENDED_HOURS,
    COND_OFF_EXCHANGE,
    COND_REGULAR,
    COND_UNKNOWN_CODE,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    FLAG_TS_RECV_MODELED,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.history import BAR_FIELDS, TICK_FIELDS, parse_bar_lines, parse_tick_lines

TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
BARS = "iqfeed/NEPT_bars_1s_2021-03-01_2021-03-03.csv"
SAMPLE = (Path(__file__).resolve().parents[2] / "src/quantedge/samples/iqfeed"
          / "NEPT_ticks_2021-03-01_excerpt.csv")
GOOD = [
    "2021-03-01 04:00:00.028010,1.5200,1000,1000,1.5600,1.5700,1,E,11,1747,0,1,",
    "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,873D17,0,1,",
    "2021-03-01 09:30:00.112233,1.5300,100,1150,1.4300,1.5200,3,C,19,01,1,1,",
    "2021-03-01 09:30:01.000001,1.5100,200,1350,1.5000,1.5200,4,C,5,3D,2,1,",
]


def _raw_ticks(text: str) -> list[list[str]]:
    """Independent reading of the raw text: data rows are lines with 12+ comma-separated fields."""
    return [ln.split(",") for ln in text.splitlines() if ln.count(",") >= 11]


def _events(lines: list[str], tmp_path: Path, name: str = "NEPT_ticks_x.csv", eol: str = "\r\n"):
    p = tmp_path / name
    p.write_bytes((eol.join(lines) + eol).encode("latin-1"))
    syms = NameTable()
    ev, rep = read_iqfeed_ticks(p, syms)
    assert rep.balanced(), rep.to_dict()
    return ev, rep


# --- real data -----------------------------------------------------------------------------------

@pytest.mark.realdata
def test_nept_ticks_every_row_accounted_for(shared_data):
    path = shared_data / TICKS
    raw = _raw_ticks(path.read_text("ascii"))
    assert len(raw) == 32_627
    syms = NameTable()
    ev, rep = read_iqfeed_ticks(path, syms)
    assert rep.balanced()
    assert rep.rows_read == 32_627
    assert rep.rows_imported + rep.rows_quarantined == 32_627
    assert rep.rows_quarantined == 0, rep.problems[:3]
    assert syms.names() == ["NEPT"]
    assert not any("ENDMSG" in n for n in rep.notes)  # terminator present: no "incomplete" note

    trades = ev[ev["kind"] == KIND_TRADE]
    quotes = ev[ev["kind"] == KIND_QUOTE]
    assert trades.shape[0] == len(raw)
    # off-exchange = market centers 15/19/24, counted from the raw text
    off_raw = sum(r[8] in ("15", "19", "24") for r in raw)
    assert off_raw > 0
    assert int((trades["conditions"] & COND_OFF_EXCHANGE != 0).sum()) == off_raw
    # regular = basis C; extended hours = basis E or a Form-T code (17 / 3A) among the pairs
    assert int((trades["conditions"] & COND_REGULAR != 0).sum()) == sum(r[7] == "C" for r in raw)

    def form_t(codes: str) -> bool:
        return any(codes[i:i + 2] in ("17", "3A") for i in range(0, len(codes), 2))

    ext_raw = sum(r[7] == "E" or form_t(r[9]) for r in raw)
    assert int((trades["conditions"] & COND_EXTENDED_HOURS != 0).sum()) == ext_raw
    # quote pairs: one per row whose (bid, ask) differs from the previous row's
    changes, prev = 0, None
    for r in raw:
        if (r[4], r[5]) != prev:
            changes += 1
        prev = (r[4], r[5])
    assert quotes.shape[0] == 2 * changes
    assert (quotes["flags"] & FLAG_FROM_TRADE != 0).all()
    assert (quotes["size"] == 0).all()  # size unknown on trade rows
    assert int((quotes["side"] == SIDE_BID).sum()) == changes
    # structure: the trade closes each row's group, quotes precede it with the same time and tick id
    assert (trades["flags"] & FLAG_LAST != 0).all() and (quotes["flags"] & FLAG_LAST == 0).all()
    assert (ev["flags"] & FLAG_TS_RECV_MODELED != 0).all()
    assert (ev["ts_recv"] == ev["ts_event"]).all()
    qi = np.nonzero(ev["kind"] == KIND_QUOTE)[0]
    bids = qi[ev["side"][qi] == SIDE_BID]
    assert (ev["side"][bids + 1] == SIDE_ASK).all() and (ev["kind"][bids + 2] == KIND_TRADE).all()
    assert (ev["seq"][bids] == ev["seq"][bids + 2]).all()
    # first row: 2021-03-01 04:00:00.028010 ET (EST, UTC-5), last 1.52 x 1000 at NYSE Arca (11), tick 1
    t0 = trades[0]
    assert t0["ts_event"] == int(dt.datetime(2021, 3, 1, 9, 0, 0, tzinfo=dt.UTC).timestamp()) * 10**9 \
        + 28_010_000
    assert (t0["price"], t0["size"], t0["venue"], t0["seq"]) == (15_200, 1000, 11, 1)
    assert t0["conditions"] & COND_EXTENDED_HOURS
    assert int(trades["size"].sum()) == sum(int(r[2]) for r in raw)
    assert (trades["side"] == 0).all()  # aggressor is 0 (not supported) throughout this file
    # the market-center ids outside the 2016-17 table are kept and named in a note
    assert any("164" in n and "187" in n for n in rep.notes)


@pytest.mark.realdata
def test_nept_bars_parse(shared_data):
    path = shared_data / BARS
    lines = [ln.split(",") for ln in path.read_text("ascii").splitlines() if ln.count(",") >= 7]
    bars, rep = read_iqfeed_bars(path)
    assert rep.balanced() and rep.rows_quarantined == 0
    assert bars.shape[0] == len(lines) == 7949
    # H,L,O,C column order on the wire
    i = next(k for k, r in enumerate(lines) if len({r[1], r[2], r[3], r[4]}) == 4)
    r = lines[i]
    assert bars["high"][i] == round(float(r[1]) * 10_000)
    assert bars["low"][i] == round(float(r[2]) * 10_000)
    assert bars["open"][i] == round(float(r[3]) * 10_000)
    assert bars["close"][i] == round(float(r[4]) * 10_000)
    assert (bars["high"] >= bars["low"]).all()
    assert bars["total_volume"][-1] == 4_813_134
    assert int(bars["period_volume"].sum()) == sum(int(r[6]) for r in lines)
    assert (np.diff(bars["ts"]) != 0).all()


@pytest.mark.realdata
def test_bundled_excerpt_matches_its_source(shared_data):
    text = SAMPLE.read_text("ascii")
    assert text.rstrip().endswith("!ENDMSG!,")
    full = (shared_data / TICKS).read_text("ascii").splitlines()
    lines = text.splitlines()
    assert lines[:-1] == full[: len(lines) - 1]
    ev, rep = read_iqfeed_ticks(SAMPLE, NameTable())
    assert rep.rows_imported == 2999 and rep.rows_quarantined == 0
    readme = (SAMPLE.parent / "README.md").read_text()
    assert "2,999" in readme and f"{int((ev['conditions'] & COND_OFF_EXCHANGE != 0).sum()):,}" in readme


@pytest.mark.realdata
def test_protocol_variants_give_identical_events(shared_data, tmp_path):
    lines = (shared_data / TICKS).read_text("ascii").splitlines()[:2000]
    base, _ = _events(lines + ["!ENDMSG!,"], tmp_path, "NEPT_a.csv")
    variants = {
        "lh": ["LH," + ln for ln in lines] + ["!ENDMSG!,"],
        "reqid": ["NEPTREQ," + ln for ln in lines] + ["NEPTREQ,!ENDMSG!,"],
        "reqid_lh": ["R1,LH," + ln for ln in lines] + ["R1,!ENDMSG!,"],
        "no_trailing_comma": [ln.rstrip(",") for ln in lines] + ["!ENDMSG!"],
        "server_connected": ["S,SERVER CONNECTED", "S,CURRENT PROTOCOL,6.2"] + lines + ["!ENDMSG!,"],
        "lf_only": lines + ["!ENDMSG!,"],
    }
    for name, v in variants.items():
        ev, rep = _events(v, tmp_path, f"NEPT_{name}.csv", eol="\n" if name == "lf_only" else "\r\n")
        assert rep.rows_imported == 2000, name
        assert np.array_equal(ev, base), name
    # the older 10-field layout (no aggressor / day code): same events here, aggressor being 0
    old = [",".join(ln.split(",")[:10]) + "," for ln in lines]
    ev, rep = _events(old + ["!ENDMSG!,"], tmp_path, "NEPT_old.csv")
    assert rep.rows_imported == 2000 and np.array_equal(ev, base)


# --- synthetic lines: only where real data cannot show the case ---------------------------------

def test_aggressor_maps_to_side(tmp_path):
    ev, rep = _events(GOOD + ["!ENDMSG!,"], tmp_path)
    tr = ev[ev["kind"] == KIND_TRADE]
    assert tr["side"].tolist() == [0, 0, SIDE_BID, SIDE_ASK]  # aggressor 0, 0, 1 (buy), 2 (sell)
    assert tr["conditions"][2] & COND_OFF_EXCHANGE and tr["conditions"][2] & COND_REGULAR
    # third row repeats the second row's NBBO: no quote pair
    assert ev["kind"].tolist() == [KIND_QUOTE, KIND_QUOTE, KIND_TRADE] * 2 + [KIND_TRADE] + \
        [KIND_QUOTE, KIND_QUOTE, KIND_TRADE]


def test_error_lines_and_no_data(tmp_path):
    ev, rep = _events(["E,!NO_DATA!,", "!ENDMSG!,"], tmp_path)
    assert ev.shape[0] == 0 and rep.rows_read == 0 and any("NO_DATA" in n for n in rep.notes)
    ev, rep = _events(["7,E,Too many simultaneous history requests,", "7,!ENDMSG!,"], tmp_path)
    assert rep.reasons == {"feed_error": 1}
    assert rep.problems[0].line == 1 and "Too many" in rep.problems[0].detail
    ev, rep = _events(GOOD[:2] + ["E,Unauthorized user ID.,", "!ENDMSG!,"], tmp_path)
    assert rep.rows_imported == 2 and rep.reasons == {"feed_error": 1}


def test_bad_rows_are_quarantined_with_file_line_field(tmp_path):
    bad = [
        GOOD[0],
        "2021-03-01 04:00:06.702115,1.52x0,50,1050,1.4300,1.5200,2,O,11,873D17,0,1,",  # price
        "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,87,0,1,9,9,",  # columns
        "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,87Q,0,1,",  # conditions
        "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,X,11,87,0,1,",  # basis
        "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,87,0,2,",  # day code
        "2021-03-01 25:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,87,0,1,",  # hour 25
        "2021-03-01 04:00:06.702115,1.5200,,1050,1.4300,1.5200,2,O,11,87,0,1,",  # empty size
        "2021-03-01 04:00:06.702115,1.5200,50,1050,1.4300,1.5200,2,O,11,F1,0,1,",  # unknown code: kept
        "\x00\xff\xfe garbage \x80",
        "2021-03-01 04:00:07.000000,1.5200,50,1050,1.4300,1.52",  # truncated last line
    ]
    p = tmp_path / "NEPT_ticks_bad.csv"
    p.write_bytes("\r\n".join(bad).encode("latin-1"))
    ev, rep = read_iqfeed_ticks(p, NameTable())
    assert rep.balanced()
    assert rep.rows_read == 11 and rep.rows_imported == 2
    by_line = {pr.line: pr for pr in rep.problems}
    assert by_line[2].field == "last" and by_line[2].reason == "non_numeric"
    assert by_line[3].reason == "wrong_column_count"
    assert by_line[4].field == "conditions" and by_line[4].reason == "bad_conditions"
    assert by_line[5].field == "basis"
    assert by_line[6].field == "day_code" and by_line[6].reason == "day_code_mismatch"
    assert by_line[7].field == "timestamp" and by_line[7].reason == "bad_timestamp"
    assert by_line[8].field == "last_size" and by_line[8].reason == "empty_field"
    assert by_line[10].reason == "unrecognized_line"
    assert by_line[11].reason == "truncated_line"
    assert all(pr.file == str(p) for pr in rep.problems)
    assert all(str(p) in pr.message() for pr in rep.problems)
    tr = ev[ev["kind"] == KIND_TRADE]
    assert tr["conditions"][-1] & COND_UNKNOWN_CODE
    assert any("F1" in n for n in rep.notes) and any("ENDMSG" in n for n in rep.notes)


def test_file_level_problems(tmp_path):
    empty = tmp_path / "NEPT_empty.csv"
    empty.write_bytes(b"")
    ev, rep = read_iqfeed_ticks(empty, NameTable())
    assert ev.shape[0] == 0 and rep.reasons == {"empty_file": 1} and rep.balanced()
    ev, rep = read_iqfeed_ticks(tmp_path / "NEPT_missing.csv", NameTable())
    assert rep.reasons == {"unreadable_file": 1} and rep.balanced()
    bars, rep = read_iqfeed_bars(tmp_path / "nope.csv")
    assert rep.reasons == {"unreadable_file": 1} and bars.shape[0] == 0


def test_encodings(tmp_path):
    text = "\r\n".join(GOOD + ["!ENDMSG!,"]) + "\r\n"
    ref, _ = _events(GOOD + ["!ENDMSG!,"], tmp_path, "NEPT_ref.csv")
    for name, data in {"utf16": text.encode("utf-16"), "bom": b"\xef\xbb\xbf" + text.encode()}.items():
        p = tmp_path / f"NEPT_{name}.csv"
        p.write_bytes(data)
        ev, rep = read_iqfeed_ticks(p, NameTable())
        assert np.array_equal(ev, ref) and rep.notes, name


def test_symbol_from_file_name_or_argument(tmp_path):
    assert symbol_from_filename(Path("NEPT_ticks_2021-03-01_2021-03-03.csv")) == "NEPT"
    assert symbol_from_filename(Path("ticks.csv")) is None
    p = tmp_path / "ticks.csv"
    p.write_text("\r\n".join(GOOD))
    syms = NameTable(["AAA"])
    ev, rep = read_iqfeed_ticks(p, syms, symbol="ZZZ")
    assert (ev["symbol"] == syms.get("ZZZ")).all()


def test_daily_and_interval_bars_with_prefixes():
    data = (b"R9,LH,2023-06-28 09:31:00,4411.50,4411.25,4411.25,4411.50,42885,55,3,\r\n"
            b"O,LH,2022-08-02,4167.25,4160.00,4167.25,4160.00,3,1103,\r\n"
            b"2022-08-03,4167.25,4160.00,4170.00,4160.00,3,1103,\r\n"  # open above high: rejected
            b"O,!ENDMSG!,\r\n")
    bars, rep = parse_bar_lines(data, "b.csv")
    assert rep.balanced() and rep.rows_imported == 2 and rep.reasons == {"inconsistent_ohlc": 1}
    assert bars["high"].tolist() == [44_115_000, 41_672_500]
    assert bars["total_volume"][0] == 42885 and bars["period_volume"][0] == 55 and bars["n_trades"][0] == 3
    assert bars["period_volume"][1] == 3 and bars["open_interest"][1] == 1103 and bars["n_trades"][1] == 0
    midnight = int(dt.datetime(2022, 8, 2, 4, tzinfo=dt.UTC).timestamp()) * 10**9  # 00:00 EDT
    assert bars["ts"][1] == midnight


# --- fuzz ----------------------------------------------------------------------------------------

def _check_report(rep, nlines: int, fields: list[str]) -> None:
    assert rep.balanced()
    for pr in rep.problems:
        assert pr.file == rep.source
        assert 0 <= pr.line <= nlines + 1
        assert pr.field == "" or pr.field in fields
        assert pr.reason


_piece = st.sampled_from(GOOD + ["!ENDMSG!,", "E,!NO_DATA!,", "S,SERVER CONNECTED", "LH," + GOOD[1], ""])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_piece, st.binary(max_size=80).map(lambda b: b.decode("latin-1"))), max_size=12),
       st.data())
def test_tick_parser_fuzz(pieces, data):
    lines = []
    for p in pieces:
        if p and data.draw(st.booleans()):  # mutate one character
            i = data.draw(st.integers(0, len(p) - 1))
            p = p[:i] + data.draw(st.sampled_from(list(",.x0-\x00\r\xff9E"))) + p[i + 1:]
        lines.append(p)
    raw = "\n".join(lines).encode("latin-1")
    rows, rep = parse_tick_lines(raw, "fuzz.csv")
    _check_report(rep, raw.count(b"\n") + 1, TICK_FIELDS)
    assert len(rows) == rep.rows_imported


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_bar_parser_fuzz_bytes(raw):
    bars, rep = parse_bar_lines(raw, "fuzz.csv")
    _check_report(rep, raw.count(b"\n") + 1, BAR_FIELDS)
    assert bars.shape[0] == rep.rows_imported
