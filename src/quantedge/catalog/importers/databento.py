"""Databento MBP-10 CSV importer (``pretty_px``/``pretty_ts`` CSV as written by the Databento tools).

Each MBP-10 row is one book event plus the top ten levels *after* it.  Book changes become
``KIND_DEPTH`` events keyed by price whose ``size`` is the new total at that price, read from the
row's own book (0 when the price left the book), so the catalog stores state, not deltas.  The
ten levels themselves come back as a truth array so a reconstructed book can be compared with the
source after every row.

Databento conventions used (https://databento.com/docs/schemas-and-data-formats/mbp-10):
``side`` is the side that initiates the event: for a trade ``A`` = sell aggressor, ``B`` = buy
aggressor, ``N`` = not given; for a book change it is the side of the book.  ``flags`` bit 128
(F_LAST) marks the last record of an event, bit 32 (F_SNAPSHOT) a snapshot record.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge import events as ev
from quantedge.catalog.importers.lobster import (
    ST_EMPTY,
    ST_OK,
    field_char,
    field_text,
    parse_fixed,
    printable,
)
from quantedge.catalog.importers.taq import _Parsed, symbol_ids
from quantedge.catalog.quarantine import ImportReport
from quantedge.catalog.symbols import NameTable
from quantedge.timeutil import seconds_since_midnight_et
from quantedge.venues import VENUE_NASDAQ

LEVELS = 10

#: Per-row truth: the book after the row, plus where that row ends in the returned events.
TRUTH_DTYPE = np.dtype(
    [
        ("line", np.int64),  # physical line of the row in the CSV
        ("seq", np.int64),  # Databento sequence
        ("ts_recv", np.int64),
        ("event_end", np.int64),  # events[:event_end] hold only events of this and earlier rows
        ("exact", np.bool_),  # ...and every book change of those rows: the book must match here
        ("last", np.bool_),  # Databento F_LAST: the row ends an exchange event
        ("bid_px", np.int64, (LEVELS,)),  # $0.0001; 0 = empty level
        ("ask_px", np.int64, (LEVELS,)),
        ("bid_sz", np.int64, (LEVELS,)),
        ("ask_sz", np.int64, (LEVELS,)),
        ("bid_ct", np.int64, (LEVELS,)),
        ("ask_ct", np.int64, (LEVELS,)),
    ]
)

REQUIRED = ("ts_recv", "ts_event", "action", "side", "price", "size", "flags", "sequence") + tuple(
    f"{s}_{w}_{i:02d}" for i in range(LEVELS) for s in ("bid", "ask") for w in ("px", "sz", "ct")
)

DB_F_LAST = 128
DB_F_SNAPSHOT = 32


@njit(cache=True)
def _find(px: np.ndarray, price: int) -> int:
    for j in range(px.shape[0]):
        if px[j] == price and px[j] != 0:
            return j
    return -1


@njit(cache=True)
def _total_at(
    price: np.ndarray,
    side: np.ndarray,
    change: np.ndarray,
    bpx: np.ndarray,
    bsz: np.ndarray,
    apx: np.ndarray,
    asz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For book-change rows: (new total at the price, found, side, side_inferred).

    A row with side N gets the side whose levels hold the price, else the side the price lies
    on relative to the touch (>= best ask: ask, <= best bid: bid); 0 when still ambiguous.
    """
    n = price.shape[0]
    tot = np.zeros(n, np.int64)
    found = np.zeros(n, np.bool_)
    out_side = side.copy()
    inferred = np.zeros(n, np.bool_)
    for r in range(n):
        if not change[r]:
            continue
        s = side[r]
        if s == 0:
            jb = _find(bpx[r], price[r])
            ja = _find(apx[r], price[r])
            if jb >= 0 and ja < 0:
                s = 1
            elif ja >= 0 and jb < 0:
                s = -1
            elif apx[r, 0] != 0 and price[r] >= apx[r, 0]:
                s = -1
            elif bpx[r, 0] != 0 and price[r] <= bpx[r, 0]:
                s = 1
            if s != 0:
                inferred[r] = True
            out_side[r] = s
        if s == 0:
            continue
        j = _find(bpx[r] if s > 0 else apx[r], price[r])
        if j >= 0:
            tot[r] = bsz[r, j] if s > 0 else asz[r, j]
            found[r] = True
    return tot, found, out_side, inferred


def read_databento_mbp10(path: str, symbols: NameTable) -> tuple[np.ndarray, ImportReport, np.ndarray]:
    """Events (merge-ordered), the import report, and the per-row top-10 truth (``TRUTH_DTYPE``)."""
    p = _Parsed(path, "databento_mbp10")
    truth_empty = np.zeros(0, TRUTH_DTYPE)
    if p.n == 0 or p.missing(REQUIRED):
        return ev.empty(0), p.report, truth_empty
    ts_recv = p.time_col("ts_recv")
    ts_event = p.time_col("ts_event")
    action = field_char(p.buf, p.fs, p.fe, p.col("action"))
    side_c = field_char(p.buf, p.fs, p.fe, p.col("side"))
    price = p.price_col("price")
    size = p.int_col("size", "an integer size")
    flags = p.int_col("flags", "an integer flag byte")
    seq = p.int_col("sequence", "an integer sequence number")
    p.chk.add(
        ~np.isin(action, np.frombuffer(b"ACMTFRN", np.uint8)),
        "action",
        "bad_value",
        lambda i: f"action {bytes([int(action[i])])!r} (expected one of A C M T F R N)",
    )
    p.chk.add(
        ~np.isin(side_c, np.frombuffer(b"ABN", np.uint8)),
        "side",
        "bad_value",
        "expected A (ask / sell aggressor), B (bid / buy aggressor) or N",
    )
    book_change = np.isin(action, np.frombuffer(b"ACM", np.uint8))
    p.chk.add(size < 0, "size", "negative", lambda i: f"size {int(size[i])}")
    p.chk.add((flags < 0) | (flags > 255), "flags", "out_of_range", "flags is one byte")

    n = p.n
    lv = {
        k: np.zeros((n, LEVELS), np.int64)
        for k in ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
    }
    for i in range(LEVELS):
        for s in ("bid", "ask"):
            name = f"{s}_px_{i:02d}"
            v, st = parse_fixed(p.buf, p.fs, p.fe, p.col(name), 4)
            st[st == ST_EMPTY] = ST_OK  # an empty level may be written as an empty field
            p.chk.add_status(st, name, "a decimal price with at most 4 decimals or empty")
            lv[f"{s}_px"][:, i] = v
            for w in ("sz", "ct"):
                name = f"{s}_{w}_{i:02d}"
                v = p.int_col(name, "an integer")
                lv[f"{s}_{w}"][:, i] = v
    side = np.where(side_c == ord("B"), ev.SIDE_BID, np.where(side_c == ord("A"), ev.SIDE_ASK, 0)).astype(
        np.int8
    )
    total, found, side_bk, inferred = _total_at(
        price, side, book_change, lv["bid_px"], lv["bid_sz"], lv["ask_px"], lv["ask_sz"]
    )
    side = np.where(book_change, side_bk, side).astype(np.int8)
    p.chk.add(
        book_change & (side == 0),
        "side",
        "side_unknown",
        "side N on a book change, and the price is inside the spread in the row's book",
    )
    grows = book_change & (action != ord("C"))
    p.chk.add(
        grows & ~found,
        "price",
        "price_not_in_book",
        lambda i: f"{chr(action[i])} at {int(price[i]) / 1e4} but that price is not in the row's top 10",
    )
    if "symbol" in p.cols:
        sym_b, sln = field_text(p.buf, p.fs, p.fe, p.col("symbol"), 16)
        p.chk.add((sln <= 0), "symbol", "bad_value", "empty or over-long symbol")
        p.chk.add(~printable(sym_b), "symbol", "bad_encoding", "symbol is not printable ASCII")
        sym = symbol_ids(symbols, sym_b, None, p.chk.ok)
    else:
        sym_b, sln = field_text(p.buf, p.fs, p.fe, p.col("instrument_id"), 16)
        p.chk.add((sln <= 0), "instrument_id", "bad_value", "empty instrument id")
        p.chk.add(~printable(sym_b), "instrument_id", "bad_encoding", "instrument id is not printable ASCII")
        sym = symbol_ids(symbols, sym_b, None, p.chk.ok)
        p.report.notes.append(f"{p.file}: no 'symbol' column; symbols are Databento instrument ids")
    ok = p.finish()
    n_inf = int((inferred & ok).sum())
    if n_inf:
        p.report.notes.append(f"{p.file}: {n_inf} book change(s) with side N: side taken from the row's book")

    act = action[ok]
    emits = ok & ~np.isin(action, np.frombuffer(b"FN", np.uint8))
    idx = np.flatnonzero(emits)
    out = ev.empty(idx.shape[0])
    a = action[idx]
    out["ts_event"] = ts_event[idx]
    out["ts_recv"] = ts_recv[idx]
    out["seq"] = seq[idx]
    out["symbol"] = sym[idx]
    out["venue"] = VENUE_NASDAQ
    out["price"] = np.where(a == ord("R"), 0, price[idx])
    out["side"] = np.where(a == ord("R"), 0, side[idx])
    fl = flags[idx]
    out["flags"] = np.where(fl & DB_F_LAST, ev.FLAG_LAST, 0) | np.where(
        fl & DB_F_SNAPSHOT, ev.FLAG_SNAPSHOT, 0
    )
    is_book = np.isin(a, np.frombuffer(b"ACM", np.uint8))
    is_trade = a == ord("T")
    out["kind"] = np.where(is_book, ev.KIND_DEPTH, np.where(is_trade, ev.KIND_TRADE, ev.KIND_CLEAR))
    tot = total[idx]
    out["size"] = np.where(is_book, tot, np.where(is_trade, size[idx], 0))
    out["action"] = np.where(is_book, np.where(tot > 0, ev.ACTION_MODIFY, ev.ACTION_DELETE), ev.ACTION_NONE)
    secs = seconds_since_midnight_et(ts_event[idx])
    ext = (secs < 9.5 * 3600) | (secs >= 16 * 3600)
    tcond = (
        np.uint32(ev.COND_REGULAR)
        | np.where(size[idx] < 100, ev.COND_ODD_LOT, 0).astype(np.uint32)
        | np.where(ext, ev.COND_EXTENDED_HOURS, 0).astype(np.uint32)
    )
    out["conditions"] = np.where(is_trade, tcond, 0)
    no_event = int(np.isin(act, np.frombuffer(b"FN", np.uint8)).sum())
    if no_event:
        p.report.notes.append(
            f"{p.file}: {no_event} fill/no-action row(s) change no MBP book and add no print: truth rows only"
        )

    # levels the row's book changed without a record naming them (e.g. an order replace published
    # as one Add): state-carrying depth events keep a by-price book equal to the source
    rows = np.flatnonzero(ok)
    is_change = book_change & ok
    i_row, i_side, i_px, i_sz = _implied_changes(
        rows, is_change, side, price, lv["bid_px"], lv["bid_sz"], lv["ask_px"], lv["ask_sz"]
    )
    if i_row.size:
        imp = ev.empty(i_row.shape[0])
        imp["ts_event"] = ts_event[i_row]
        imp["ts_recv"] = ts_recv[i_row]
        imp["seq"] = seq[i_row]
        imp["symbol"] = sym[i_row]
        imp["venue"] = VENUE_NASDAQ
        imp["kind"] = ev.KIND_DEPTH
        imp["side"] = i_side
        imp["price"] = i_px
        imp["size"] = i_sz
        imp["action"] = np.where(i_sz > 0, ev.ACTION_MODIFY, ev.ACTION_DELETE)
        p.report.notes.append(
            f"{p.file}: {i_row.shape[0]} implied depth event(s) for levels a row's book changed "
            "without a record naming them"
        )
        out = np.concatenate([imp, out])
        idx = np.concatenate([i_row, idx])
        sub = np.concatenate([np.zeros(i_row.shape[0], np.int8), np.ones(len(out) - i_row.shape[0], np.int8)])
    else:
        sub = np.ones(out.shape[0], np.int8)

    # merge order (a row's implied events before its own record), then tell each truth row
    # (file order) how far into the events its book reaches
    order = np.lexsort((sub, out["kind"], out["seq"], out["ts_recv"]))
    out = out[order]
    row_of_event = idx[order]
    truth = np.zeros(rows.shape[0], TRUTH_DTYPE)
    truth["line"] = p.lines[rows]
    truth["seq"] = seq[rows]
    truth["ts_recv"] = ts_recv[rows]
    truth["last"] = (flags[rows] & DB_F_LAST) != 0
    for k, v in lv.items():
        truth[k] = v[rows]
    end, exact = _event_ends(n, rows, row_of_event, out["kind"] == ev.KIND_DEPTH)
    truth["event_end"] = end
    truth["exact"] = exact
    return out, p.report, truth


@njit(cache=True)
def _implied_side(
    r: int,
    prev: int,
    own: float,
    px: np.ndarray,
    sz: np.ndarray,
    sgn: int,
    o_row: list,
    o_side: list,
    o_px: list,
    o_sz: list,
) -> None:
    """Append changes between rows ``prev`` and ``r`` of one side, other than the price ``own``."""
    lv = px.shape[1]
    n_prev = 0
    n_cur = 0
    for j in range(lv):
        if px[prev, j] != 0:
            n_prev += 1
        if px[r, j] != 0:
            n_cur += 1
    # worst visible price: beyond it a level may merely be out of view
    worst_prev = px[prev, n_prev - 1] if n_prev == lv else 0
    worst_cur = px[r, n_cur - 1] if n_cur == lv else 0
    for j in range(n_cur):  # levels now visible whose size differs
        p = px[r, j]
        if p == own:
            continue
        before = -1
        for k in range(n_prev):
            if px[prev, k] == p:
                before = sz[prev, k]
                break
        if before < 0:
            # absent before: new only if it lies inside the previous visible window
            if worst_prev != 0 and (p - worst_prev) * sgn < 0:
                continue
            before = 0
        if before != sz[r, j]:
            o_row.append(r)
            o_side.append(sgn)
            o_px.append(p)
            o_sz.append(sz[r, j])
    for k in range(n_prev):  # levels gone from inside the current visible window
        p = px[prev, k]
        if p == own:
            continue
        found = False
        for j in range(n_cur):
            if px[r, j] == p:
                found = True
                break
        if found:
            continue
        if worst_cur != 0 and (p - worst_cur) * sgn < 0:
            continue  # pushed out of view, not removed
        o_row.append(r)
        o_side.append(sgn)
        o_px.append(p)
        o_sz.append(0)


@njit(cache=True)
def _implied_changes(
    rows: np.ndarray,
    is_change: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    bpx: np.ndarray,
    bsz: np.ndarray,
    apx: np.ndarray,
    asz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, side, price, new total) of every level change between consecutive imported rows that
    the later row's own record does not name."""
    o_row = [np.int64(0) for _ in range(0)]
    o_side = [np.int64(0) for _ in range(0)]
    o_px = [np.int64(0) for _ in range(0)]
    o_sz = [np.int64(0) for _ in range(0)]
    for k in range(1, rows.shape[0]):
        r = rows[k]
        prev = rows[k - 1]
        own_b = price[r] if is_change[r] and side[r] > 0 else -1
        own_a = price[r] if is_change[r] and side[r] < 0 else -1
        _implied_side(r, prev, own_b, bpx, bsz, 1, o_row, o_side, o_px, o_sz)
        _implied_side(r, prev, own_a, apx, asz, -1, o_row, o_side, o_px, o_sz)
    return (
        np.array(o_row, np.int64),
        np.array(o_side, np.int8),
        np.array(o_px, np.int64),
        np.array(o_sz, np.int64),
    )


@njit(cache=True)
def _event_ends(
    n: int, rows: np.ndarray, row_of_event: np.ndarray, changes_book: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per imported row (file order): the longest event prefix holding only events of rows up to it,
    and whether every book-changing event of those rows lies inside that prefix."""
    m = row_of_event.shape[0]
    first = np.full(n + 1, m, np.int64)  # first sorted position of any event of row r
    last_book = np.full(n + 1, -1, np.int64)  # last sorted position of a book event of row r
    for pos in range(m):
        r = row_of_event[pos]
        if pos < first[r]:
            first[r] = pos
        if changes_book[pos] and pos > last_book[r]:
            last_book[r] = pos
    suffix_min = np.full(n + 1, m, np.int64)
    for r in range(n - 1, -1, -1):
        suffix_min[r] = min(suffix_min[r + 1], first[r])
    end = np.zeros(rows.shape[0], np.int64)
    exact = np.zeros(rows.shape[0], np.bool_)
    reach = -1
    for k in range(rows.shape[0]):
        r = rows[k]
        reach = max(reach, last_book[r])
        end[k] = suffix_min[r + 1]
        exact[k] = reach < end[k]
    return end, exact
