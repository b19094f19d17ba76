"""Import the project's own CSV schemas: one file per symbol per day for L2, trades and quotes.

``AAPL_L2_20250601.csv``, ``AAPL_Trades_20250601.csv``, ``AAPL_Quotes_20250601.csv``; columns and
semantics are defined in docs/formats-iqfeed-and-csv.md.  The same compiled line scanner as the
IQFeed parser reads the numbers; Python only maps the few distinct symbol / MMID strings to ids
and turns failed lines into Problems.  :mod:`quantedge.catalog.export` writes these files so that
``import(export(day)) == day``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from quantedge.catalog.importers.iqfeed_history import read_file_bytes
from quantedge.catalog.quarantine import ImportReport, Problem, clip
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_ADD,
    ACTION_DELETE,
    ACTION_MODIFY,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_TS_RECV_MODELED,
    KIND_DEPTH,
    KIND_QUOTE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.conditions import market_center_conditions
from quantedge.feeds.iqfeed.history import (
    ST_BLANK,
    ST_COLUMNS,
    ST_OK,
    T_HEX,
    T_INT,
    T_INT_OPT,
    T_PRICE,
    T_PRICE_OPT,
    T_STR,
    Scan,
    gather_strings,
    normalize_input,
    quarantine_failed,
    quarantine_rows,
    scan,
    trades_with_quotes,
)
from quantedge.timeutil import parse_et_datetimes

L2_COLUMNS = ["MessageType", "Symbol", "Level", "MarketMaker", "Operation", "Side", "Price", "Size",
              "TickID", "Timestamp"]
TRADES_COLUMNS = ["Timestamp", "Symbol", "TradePrice", "TradeSize", "TotalVolume", "TradeMarketCenter",
                  "TradeConditions", "TickID", "BidPrice", "AskPrice"]
QUOTES_COLUMNS = ["Timestamp", "Symbol", "BidPrice", "BidSize", "AskPrice", "AskSize", "BidMarketCenter",
                  "AskMarketCenter", "TickID"]
SCHEMAS: dict[str, list[str]] = {"L2": L2_COLUMNS, "Trades": TRADES_COLUMNS, "Quotes": QUOTES_COLUMNS}

_TYPES: dict[str, int] = {
    "MessageType": T_STR, "Symbol": T_STR, "Level": T_INT_OPT, "MarketMaker": T_STR, "Operation": T_INT,
    "Side": T_INT, "Price": T_PRICE_OPT, "Size": T_INT_OPT, "TickID": T_INT, "Timestamp": T_STR,
    "TradePrice": T_PRICE, "TradeSize": T_INT, "TotalVolume": T_INT_OPT, "TradeMarketCenter": T_INT_OPT,
    "TradeConditions": T_HEX, "BidPrice": T_PRICE_OPT, "AskPrice": T_PRICE_OPT, "BidSize": T_INT_OPT,
    "AskSize": T_INT_OPT, "BidMarketCenter": T_INT_OPT, "AskMarketCenter": T_INT_OPT,
}

#: L2 MessageType values accepted: IQFeed's own Level 2 message ids.  ``Z`` (legacy summary) and
#: ``6`` (6.2 summary) mark snapshot rows (FLAG_SNAPSHOT); ``2`` (legacy update) and ``3``/``4``/``5``
#: (6.2 add/update/delete) are incremental.  Operation, not MessageType, decides the action.
L2_MESSAGE_TYPES = {b"Z": True, b"6": True, b"2": False, b"3": False, b"4": False, b"5": False}
_OPERATION_ACTION = np.array([ACTION_ADD, ACTION_MODIFY, ACTION_DELETE], np.uint8)

_NAME_RE = re.compile(r"^(?P<sym>.+)_(?P<kind>L2|Trades|Quotes)_(?P<date>\d{8})\.csv$", re.IGNORECASE)
_SYMBOL_WIDTH = 32
_MMID_WIDTH = 16


def kind_from_filename(path: Path) -> str | None:
    m = _NAME_RE.match(path.name)
    if not m:
        return None
    k = m.group("kind").lower()
    return {"l2": "L2", "trades": "Trades", "quotes": "Quotes"}[k]


def _header(first: bytes) -> list[str] | None:
    text = first.decode("latin-1").strip().rstrip(",")
    names = [t.strip() for t in text.split(",")]
    return names if names and names[0] and all(n.replace("_", "").isalpha() for n in names) else None


def read_project_csv(path: str | Path, symbols: NameTable, venues: NameTable
                     ) -> tuple[np.ndarray, ImportReport]:
    """One L2 / Trades / Quotes CSV file -> events (file order) + report.

    The kind comes from the file name (``SYM_Kind_YYYYMMDD.csv``) or, failing that, the header.
    ``venues`` maps L2 MarketMaker ids (MMIDs) to venue ids; create it with
    ``NameTable(base=quantedge.venues.MMID_BASE)``.
    """
    path = Path(path)
    report = ImportReport(source=str(path), fmt="project_csv")
    data = read_file_bytes(path, report)
    if data is None:
        return np.zeros(0, EVENT_DTYPE), report
    data, notes = normalize_input(data)
    report.notes.extend(notes)
    nl = data.find(b"\n")
    first = data if nl < 0 else data[:nl]
    header = _header(first)
    kind = kind_from_filename(path)
    if header is not None and not set(header) & set(_TYPES):
        header = None  # a word-only first line that names no column: a bad data line
    if header is not None:
        by_header = [k for k, cols in SCHEMAS.items() if set(cols) == set(header)]
        if by_header and kind and by_header[0] != kind:
            report.notes.append(f"file name says {kind} but the header is {by_header[0]}; using the header")
        kind = by_header[0] if by_header else kind
        body, line_offset = (b"" if nl < 0 else data[nl + 1 :]), 1
    else:
        body, line_offset = data, 0
    report.fmt = f"project_csv_{(kind or 'unknown').lower()}"
    if kind is None:
        _quarantine_all(body, line_offset, report, "unknown_kind",
                        "neither the file name (SYM_L2|Trades|Quotes_YYYYMMDD.csv) nor the header "
                        "names a kind")
        return np.zeros(0, EVENT_DTYPE), report
    expected = SCHEMAS[kind]
    if header is None:
        report.notes.append(f"no header line; assuming the {kind} column order")
        header = expected
    elif set(header) != set(expected) or len(header) != len(expected):
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        _quarantine_all(body, line_offset, report, "bad_header",
                        f"{kind} header: missing {missing}, unexpected {extra}")
        return np.zeros(0, EVENT_DTYPE), report
    truncated_last = len(body) > 0 and not body.endswith(b"\n")
    sc = scan(body, [_TYPES[c] for c in header], 0, False, line_offset=line_offset)
    col = {c: i for i, c in enumerate(header)}
    failed = sc.status >= ST_COLUMNS
    report.rows_read += int(failed.sum())
    quarantine_failed(sc, report, header, truncated_last)
    blanks = int((sc.status == ST_BLANK).sum())
    if blanks:
        report.notes.append(f"{blanks} blank line(s) ignored")
    ok = np.nonzero(sc.status == ST_OK)[0]
    report.rows_read += ok.shape[0]
    ts, sym, good = _common(sc, ok, col, symbols, report)
    build = {"L2": _l2_events, "Trades": _trade_events, "Quotes": _quote_events}[kind]
    events = build(sc, ok, good, col, ts, sym, venues, report)
    report.events_written = int(events.shape[0])
    return events, report


def _quarantine_all(body: bytes, line_offset: int, report: ImportReport, reason: str, detail: str) -> None:
    for i, line in enumerate(body.split(b"\n")):
        if line.strip(b"\r "):
            report.rows_read += 1
            report.quarantine(Problem(report.source, i + 1 + line_offset, "", reason, detail, clip(line)))


def _common(sc: Scan, ok: np.ndarray, col: dict[str, int], symbols: NameTable, report: ImportReport
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps and symbol ids of the parsed rows; bad ones are quarantined (good=False)."""
    c = col["Timestamp"]
    text, fits = gather_strings(sc.buf, sc.offs[ok, c], sc.lens[ok, c], 29)
    ts, ts_ok = parse_et_datetimes(text)
    ts_ok &= fits
    quarantine_rows(sc, report, ok[~ts_ok], "Timestamp", "bad_timestamp",
                    "expected 'YYYY-MM-DD HH:MM:SS.ffffff' (US/Eastern)")
    c = col["Symbol"]
    names, fits = gather_strings(sc.buf, sc.offs[ok, c], sc.lens[ok, c], _SYMBOL_WIDTH)
    uniq, inv = np.unique(names, return_inverse=True)
    valid = np.array([bool(u) and all(0x21 <= b <= 0x7E for b in u) for u in uniq], bool)
    sym_ok = valid[inv] & fits & (sc.lens[ok, c] > 0) if ok.shape[0] else np.zeros(0, bool)
    bad_sym = ts_ok & ~sym_ok
    quarantine_rows(sc, report, ok[bad_sym], "Symbol", "bad_symbol",
                    f"empty, longer than {_SYMBOL_WIDTH} bytes or not printable ASCII")
    ids = np.array([symbols.id(u.decode("ascii")) if v else -1 for u, v in zip(uniq, valid, strict=True)],
                   np.int32)
    sym = ids[inv] if ok.shape[0] else np.zeros(0, np.int32)
    m = _NAME_RE.match(Path(report.source).name)
    if m is not None and ok.shape[0]:  # the row's Symbol wins; a file holding others says so
        named = m["sym"].upper().encode()
        counts = np.bincount(inv[ts_ok & sym_ok], minlength=uniq.shape[0])
        other = [(u.decode("ascii"), int(n)) for u, v, n in zip(uniq, valid, counts, strict=True)
                 if v and n and u.upper() != named]
        if other:
            report.notes.append(
                f"{sum(n for _, n in other):,} rows name a symbol other than the file name's "
                f"{m['sym']} ({', '.join(f'{u}: {n:,}' for u, n in other[:5])}); imported under the "
                "row's Symbol")
    return ts, sym, ts_ok & sym_ok


def _check(sc: Scan, ok: np.ndarray, good: np.ndarray, bad: np.ndarray, report: ImportReport, fld: str,
           reason: str, detail: str) -> np.ndarray:
    bad = bad & good
    quarantine_rows(sc, report, ok[bad], fld, reason, detail)
    return good & ~bad


def _trade_events(sc: Scan, ok: np.ndarray, good: np.ndarray, col: dict[str, int], ts: np.ndarray,
                  sym: np.ndarray, venues: NameTable, report: ImportReport) -> np.ndarray:
    v = sc.vals[ok]
    mc = v[:, col["TradeMarketCenter"]]
    good = _check(sc, ok, good, mc > 32767, report, "TradeMarketCenter", "out_of_range", "above 32767")
    v, ts, sym = v[good], ts[good], sym[good]
    report.rows_imported = int(good.sum())
    mc = v[:, col["TradeMarketCenter"]]
    cond = v[:, col["TradeConditions"]].astype(np.uint32) | market_center_conditions(mc)
    unknown = int((cond & np.uint32(1 << 31) != 0).sum())
    if unknown:
        report.notes.append(f"{unknown} trades carry condition codes not in DTN's table (COND_UNKNOWN_CODE)")
    size = v[:, col["TradeSize"]]
    _note_total_volume(sym, size, v[:, col["TotalVolume"]], report)
    nbbo = (sc.lens[ok, col["BidPrice"]] > 0) | (sc.lens[ok, col["AskPrice"]] > 0)
    return trades_with_quotes(sym, ts, v[:, col["TickID"]], v[:, col["TradePrice"]], size,
                              mc.astype(np.int16), cond, np.zeros(ts.shape[0], np.int8),
                              v[:, col["BidPrice"]], v[:, col["AskPrice"]], nbbo[good])


def _note_total_volume(sym: np.ndarray, size: np.ndarray, total: np.ndarray, report: ImportReport) -> None:
    """TotalVolume is derived data (running day volume); disagreements are noted, not fatal."""
    if sym.shape[0] == 0:
        return
    order = np.argsort(sym, kind="stable")
    s = sym[order]
    cum = np.cumsum(size[order])
    starts = np.r_[0, np.nonzero(s[1:] != s[:-1])[0] + 1]
    base = np.repeat(np.r_[0, cum[starts[1:] - 1]], np.diff(np.r_[starts, s.shape[0]]))
    bad = int(((cum - base) != total[order]).sum())
    if bad:
        report.notes.append(f"{bad} rows whose TotalVolume differs from the running sum of TradeSize "
                            "(file may not start at the day's first trade)")


def _quote_events(sc: Scan, ok: np.ndarray, good: np.ndarray, col: dict[str, int], ts: np.ndarray,
                  sym: np.ndarray, venues: NameTable, report: ImportReport) -> np.ndarray:
    v = sc.vals[ok]
    has_bid = sc.lens[ok, col["BidPrice"]] > 0
    has_ask = sc.lens[ok, col["AskPrice"]] > 0
    good = _check(sc, ok, good, ~has_bid & ~has_ask, report, "BidPrice", "empty_quote",
                  "neither BidPrice nor AskPrice given")
    for name in ("BidMarketCenter", "AskMarketCenter"):
        good = _check(sc, ok, good, v[:, col[name]] > 32767, report, name, "out_of_range", "above 32767")
    v, ts, sym, has_bid, has_ask = v[good], ts[good], sym[good], has_bid[good], has_ask[good]
    report.rows_imported = int(good.sum())
    per = has_bid.astype(np.int64) + has_ask
    start = np.cumsum(per) - per
    out = np.zeros(int(per.sum()), EVENT_DTYPE)
    out["level"] = -1
    for present, pos, side, pc, sc_, vc in (
        (has_bid, start, SIDE_BID, "BidPrice", "BidSize", "BidMarketCenter"),
        (has_ask, start + has_bid, SIDE_ASK, "AskPrice", "AskSize", "AskMarketCenter"),
    ):
        rows = np.nonzero(present)[0]
        p = pos[rows]
        out["ts_event"][p] = ts[rows]
        out["symbol"][p] = sym[rows]
        out["seq"][p] = v[rows, col["TickID"]]
        out["price"][p] = v[rows, col[pc]]
        out["size"][p] = v[rows, col[sc_]]
        out["venue"][p] = v[rows, col[vc]]
        out["side"][p] = side
    out["ts_recv"] = out["ts_event"]
    out["kind"] = KIND_QUOTE
    out["flags"] = FLAG_TS_RECV_MODELED
    out["flags"][start + per - 1] |= FLAG_LAST
    return out


def _l2_events(sc: Scan, ok: np.ndarray, good: np.ndarray, col: dict[str, int], ts: np.ndarray,
               sym: np.ndarray, venues: NameTable, report: ImportReport) -> np.ndarray:
    v = sc.vals[ok]
    c = col["MessageType"]
    mt, fits = gather_strings(sc.buf, sc.offs[ok, c], sc.lens[ok, c], 2)
    known = np.isin(mt, np.array(list(L2_MESSAGE_TYPES), "S2")) & fits
    good = _check(sc, ok, good, ~known, report, "MessageType", "bad_code",
                  f"accepted: {', '.join(k.decode() for k in L2_MESSAGE_TYPES)}")
    good = _check(sc, ok, good, v[:, col["Operation"]] > 2, report, "Operation", "bad_code",
                  "0 insert, 1 update, 2 delete")
    good = _check(sc, ok, good, v[:, col["Side"]] > 1, report, "Side", "bad_code", "0 ask, 1 bid")
    good = _check(sc, ok, good, v[:, col["Level"]] > 32767, report, "Level", "out_of_range", "above 32767")
    c = col["MarketMaker"]
    mm, fits = gather_strings(sc.buf, sc.offs[ok, c], sc.lens[ok, c], _MMID_WIDTH)
    uniq, inv = np.unique(mm, return_inverse=True)
    valid = np.array([all(0x21 <= b <= 0x7E for b in u) for u in uniq], bool)
    mm_ok = (valid[inv] & fits) if ok.shape[0] else np.zeros(0, bool)
    good = _check(sc, ok, good, ~mm_ok, report, "MarketMaker", "bad_mmid",
                  f"longer than {_MMID_WIDTH} bytes or not printable ASCII")
    vid = np.array([(venues.id(u.decode("ascii")) if u else 0) if ok_ else 0
                    for u, ok_ in zip(uniq, valid, strict=True)], np.int16)
    venue = vid[inv] if ok.shape[0] else np.zeros(0, np.int16)
    v, ts, sym, mt, venue = v[good], ts[good], sym[good], mt[good], venue[good]
    n = int(good.sum())
    report.rows_imported = n
    out = np.zeros(n, EVENT_DTYPE)
    out["ts_event"] = ts
    out["ts_recv"] = ts
    out["symbol"] = sym
    out["seq"] = v[:, col["TickID"]]
    out["price"] = v[:, col["Price"]]
    out["size"] = v[:, col["Size"]]
    out["level"] = np.where(sc.lens[ok[good], col["Level"]] > 0, v[:, col["Level"]], -1)
    out["venue"] = venue
    out["kind"] = KIND_DEPTH
    out["side"] = np.where(v[:, col["Side"]] == 1, SIDE_BID, SIDE_ASK)
    out["action"] = _OPERATION_ACTION[v[:, col["Operation"]]]
    snap = np.isin(mt, np.array([k for k, s in L2_MESSAGE_TYPES.items() if s], "S2"))
    flags = np.full(n, FLAG_TS_RECV_MODELED, np.uint8) | np.where(snap, FLAG_SNAPSHOT, 0).astype(np.uint8)
    # rows sharing (symbol, timestamp, TickID) are one atomic update; its last row closes the group
    last = np.ones(n, bool)
    if n > 1:
        last[:-1] = (sym[1:] != sym[:-1]) | (ts[1:] != ts[:-1]) | (out["seq"][1:] != out["seq"][:-1])
    out["flags"] = flags | np.where(last, FLAG_LAST, 0).astype(np.uint8)
    return out
