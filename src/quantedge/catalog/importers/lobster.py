"""LOBSTER importer (Nasdaq TotalView-ITCH rebuilt by LOBSTER): message files -> normalized events.

LOBSTER files are plain numeric CSVs, so the whole file is parsed in one pass by Numba kernels over
the raw bytes: exact (decimal seconds become integer nanoseconds without touching a float) and fast
(millions of rows per second).  Rows that fail any check are located by the same vectorized masks
and become :class:`Problem` records naming file, line and field; the rest of the file still imports.

This module also holds the byte-level CSV kernels that the TAQ and Databento importers share
(:func:`load_text`, :func:`split_lines`, :func:`split_fields`, the column parsers and
:class:`RowChecks`), because all three formats are unquoted ASCII CSV with numeric columns.

Field reference: ``docs/formats-lobster-taq-databento.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from quantedge import events as ev
from quantedge.catalog.merge import sort_events
from quantedge.catalog.quarantine import MAX_KEPT, ImportReport, Problem, clip
from quantedge.catalog.symbols import NameTable
from quantedge.timeutil import NS, et_midnight_ns
from quantedge.venues import VENUE_NASDAQ

# ---------------------------------------------------------------------------------------------
# Byte-level CSV kernels (shared by the LOBSTER, TAQ and Databento importers)
# ---------------------------------------------------------------------------------------------

#: Field parse status codes returned by the column parsers.
ST_OK = 0
ST_EMPTY = 1
ST_NON_NUMERIC = 2
ST_TOO_PRECISE = 3
ST_OVERFLOW = 4
ST_MISSING = 5  # the row has too few fields for this column

STATUS_REASON = {
    ST_EMPTY: "empty",
    ST_NON_NUMERIC: "non_numeric",
    ST_TOO_PRECISE: "too_precise",
    ST_OVERFLOW: "out_of_range",
    ST_MISSING: "wrong_column_count",
}

Source = str | Path | zipfile.Path


def source_name(src: Source) -> str:
    return str(src)


def load_text(src: Source) -> tuple[np.ndarray, list[str]]:
    """Raw bytes of a CSV (plain, gzip, or a zip member) as uint8, plus notes about damage.

    A damaged gzip stream is decompressed as far as it goes; the rows recovered are parsed
    normally (a cut last line is quarantined by the column-count check) and a note says so.
    """
    notes: list[str] = []
    if isinstance(src, zipfile.Path):
        try:
            raw = src.read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            notes.append(f"{src}: zip member unreadable ({exc}); nothing imported")
            raw = b""
    else:
        raw = Path(src).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(raw) + d.flush()
            if not d.eof:
                notes.append(f"{src}: gzip stream is truncated; imported the rows before the cut")
        except zlib.error as exc:
            out = _gunzip_partial(raw)
            notes.append(f"{src}: gzip stream is corrupt ({exc}); imported the rows before the damage")
        raw = out
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    return np.frombuffer(raw, dtype=np.uint8), notes


def _gunzip_partial(raw: bytes) -> bytes:
    """Decompress a damaged gzip stream block by block, keeping what came out before the damage."""
    d = zlib.decompressobj(wbits=31)
    out = bytearray()
    step = 1 << 14
    for i in range(0, len(raw), step):
        try:
            out += d.decompress(raw[i : i + step])
        except zlib.error:
            break
    return bytes(out)


@njit(cache=True)
def split_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Start/end offsets and 1-based line numbers of the non-blank lines; also the blank count.

    ``end`` excludes the line terminator (LF, CRLF or a lone CR at the end of the buffer).
    """
    n = buf.shape[0]
    cnt = 0
    for i in range(n):
        if buf[i] == 10:
            cnt += 1
    cap = cnt + 1
    starts = np.empty(cap, np.int64)
    ends = np.empty(cap, np.int64)
    lines = np.empty(cap, np.int64)
    k = 0
    blank = 0
    s = 0
    line = 1
    i = 0
    while s < n:
        i = s
        while i < n and buf[i] != 10:
            i += 1
        e = i
        if e > s and buf[e - 1] == 13:
            e -= 1
        # blank = only spaces / tabs
        isblank = True
        for j in range(s, e):
            c = buf[j]
            if c != 32 and c != 9:
                isblank = False
                break
        if isblank:
            blank += 1
        else:
            starts[k] = s
            ends[k] = e
            lines[k] = line
            k += 1
        line += 1
        s = i + 1
    return starts[:k], ends[:k], lines[:k], blank


@njit(cache=True)
def split_fields(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, ncol: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Comma-split each line into at most ``ncol`` fields: (field starts, field ends, field count).

    The count is the true number of fields on the line (it may exceed ``ncol``); fields past the
    end of a short line get start = end = -1 so every parser reports them as missing.
    """
    n = starts.shape[0]
    fs = np.full((n, ncol), -1, np.int64)
    fe = np.full((n, ncol), -1, np.int64)
    nf = np.zeros(n, np.int64)
    for r in range(n):
        s = starts[r]
        e = ends[r]
        f = 0
        fs[r, 0] = s
        for i in range(s, e):
            if buf[i] == 44:
                if f < ncol:
                    fe[r, f] = i
                f += 1
                if f < ncol:
                    fs[r, f] = i + 1
        if f < ncol:
            fe[r, f] = e
        nf[r] = f + 1
    return fs, fe, nf


@njit(cache=True)
def parse_int(buf: np.ndarray, fs: np.ndarray, fe: np.ndarray, col: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed decimal integers of one column: (values, status)."""
    n = fs.shape[0]
    val = np.zeros(n, np.int64)
    st = np.zeros(n, np.uint8)
    for r in range(n):
        s = fs[r, col]
        e = fe[r, col]
        if s < 0:
            st[r] = ST_MISSING
            continue
        if e <= s:
            st[r] = ST_EMPTY
            continue
        neg = False
        if buf[s] == 45 or buf[s] == 43:
            neg = buf[s] == 45
            s += 1
            if s == e:
                st[r] = ST_NON_NUMERIC
                continue
        if e - s > 18:
            # too many digits for int64 (leading zeros aside)
            while s < e - 1 and buf[s] == 48:
                s += 1
            if e - s > 18:
                st[r] = ST_OVERFLOW
                for i in range(s, e):
                    if buf[i] < 48 or buf[i] > 57:
                        st[r] = ST_NON_NUMERIC
                continue
        v = 0
        bad = False
        for i in range(s, e):
            c = buf[i]
            if c < 48 or c > 57:
                bad = True
                break
            v = v * 10 + (c - 48)
        if bad:
            st[r] = ST_NON_NUMERIC
        else:
            val[r] = -v if neg else v
    return val, st


@njit(cache=True)
def parse_fixed(
    buf: np.ndarray, fs: np.ndarray, fe: np.ndarray, col: int, digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal text ``[-]int[.frac]`` to an integer scaled by ``10**digits``, exactly.

    Extra fraction digits are accepted only when they are zeros (``233.6700`` at 2 digits);
    a non-zero digit beyond ``digits`` gives status ``too_precise`` (the value then holds the
    truncation, and the caller decides whether that is acceptable) rather than a silent rounding.
    """
    n = fs.shape[0]
    val = np.zeros(n, np.int64)
    st = np.zeros(n, np.uint8)
    for r in range(n):
        s = fs[r, col]
        e = fe[r, col]
        if s < 0:
            st[r] = ST_MISSING
            continue
        if e <= s:
            st[r] = ST_EMPTY
            continue
        neg = False
        if buf[s] == 45 or buf[s] == 43:
            neg = buf[s] == 45
            s += 1
        ip = 0
        nint = 0
        frac = 0
        nfrac = 0
        seen_dot = False
        lost = False
        status = ST_OK
        for i in range(s, e):
            c = buf[i]
            if c == 46 and not seen_dot:
                seen_dot = True
                continue
            if c < 48 or c > 57:
                status = ST_NON_NUMERIC
                break
            d = c - 48
            if not seen_dot:
                nint += 1
                if ip > 90_000_000_000_000:  # keeps ip * 10**digits far from int64 overflow
                    status = ST_OVERFLOW
                    break
                ip = ip * 10 + d
            else:
                if nfrac < digits:
                    frac = frac * 10 + d
                    nfrac += 1
                elif d != 0:
                    lost = True
        if status == ST_OK and nint == 0 and nfrac == 0:
            status = ST_NON_NUMERIC  # "", ".", "-", "-."
        if status != ST_OK:
            st[r] = status
            continue
        scale = 1
        for _ in range(digits):
            scale *= 10
        if ip > 9_000_000_000_000_000_000 // scale:
            st[r] = ST_OVERFLOW
            continue
        for _ in range(digits - nfrac):
            frac *= 10
        v = ip * scale + frac
        val[r] = -v if neg else v
        if lost:
            st[r] = ST_TOO_PRECISE  # value holds the truncation; the caller decides
    return val, st


@njit(cache=True)
def field_char(buf: np.ndarray, fs: np.ndarray, fe: np.ndarray, col: int) -> np.ndarray:
    """The single byte of a one-character field, or 0 when the field is empty, longer, or missing."""
    n = fs.shape[0]
    out = np.zeros(n, np.uint8)
    for r in range(n):
        s = fs[r, col]
        if s >= 0 and fe[r, col] - s == 1:
            out[r] = buf[s]
    return out


@njit(cache=True)
def field_text(
    buf: np.ndarray, fs: np.ndarray, fe: np.ndarray, col: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width copy of a text field (NUL padded) and its length (-1 missing, -2 too long)."""
    n = fs.shape[0]
    out = np.zeros((n, width), np.uint8)
    ln = np.zeros(n, np.int64)
    for r in range(n):
        s = fs[r, col]
        e = fe[r, col]
        if s < 0:
            ln[r] = -1
            continue
        if e - s > width:
            ln[r] = -2
            continue
        for i in range(s, e):
            out[r, i - s] = buf[i]
        ln[r] = e - s
    return out, ln


def text_values(chars: np.ndarray) -> np.ndarray:
    """(n, width) uint8 from :func:`field_text` as an ``S<width>`` array (for np.unique)."""
    n, w = chars.shape
    return np.ascontiguousarray(chars).view(f"S{w}").reshape(n)


def printable(chars: np.ndarray) -> np.ndarray:
    """Rows whose bytes are printable ASCII (NUL padding allowed)."""
    return ((chars == 0) | ((chars >= 0x20) & (chars < 0x7F))).all(axis=1)


class RowChecks:
    """Ordered row checks: the first failing check names a row's problem (field and reason).

    Each check is a boolean "bad" mask over the parsed rows; masks are vectorized, so locating
    bad rows costs a few numpy passes however many there are.
    """

    def __init__(self, n: int) -> None:
        self.first = np.full(n, -1, np.int32)
        self.checks: list[tuple[str, str, str | Callable[[int], str]]] = []

    def add(self, bad: np.ndarray, field: str, reason: str, detail: str | Callable[[int], str] = "") -> None:
        k = len(self.checks)
        self.checks.append((field, reason, detail))
        sel = bad & (self.first < 0)
        self.first[sel] = k

    def add_status(self, st: np.ndarray, field: str, what: str) -> None:
        """Parser statuses of one column become checks (one per failure kind)."""
        for code, reason in STATUS_REASON.items():
            bad = st == code
            if bad.any():
                if code == ST_MISSING:
                    self.add(bad, field, reason, f"field '{field}' is missing")
                else:
                    self.add(bad, field, reason, f"expected {what}")

    @property
    def ok(self) -> np.ndarray:
        return self.first < 0

    def quarantine(
        self,
        report: ImportReport,
        file: str,
        buf: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        lines: np.ndarray,
    ) -> None:
        """Record every failing row in ``report``: full Problems up to the cap, exact counts always."""
        bad_idx = np.flatnonzero(self.first >= 0)
        if bad_idx.size == 0:
            return
        room = max(0, MAX_KEPT - len(report.problems))
        for i in bad_idx[:room]:
            field, reason, detail = self.checks[self.first[i]]
            text = detail(int(i)) if callable(detail) else detail
            raw = clip(buf[starts[i] : ends[i]].tobytes())
            report.quarantine(Problem(file, int(lines[i]), field, reason, text, raw))
        rest = bad_idx[room:]
        if rest.size:
            ks, counts = np.unique(self.first[rest], return_counts=True)
            for k, c in zip(ks, counts, strict=True):
                report.reasons[self.checks[int(k)][1]] += int(c)


#: The catalog merge order, shared with the other importers (defined once in catalog.merge).
merge_order = sort_events


# ---------------------------------------------------------------------------------------------
# LOBSTER files and names
# ---------------------------------------------------------------------------------------------

_NAME_RE = re.compile(
    r"^(?P<sym>[^_/\\]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<what>message|orderbook)_(?P<levels>\d+)\.csv(?:\.gz)?$"
)

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
#: LOBSTER placeholder prices for unoccupied book levels (ask, bid).
EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999


class LobsterFile(NamedTuple):
    message: Source
    orderbook: Source | None
    symbol: str
    date: dt.date
    levels: int


def parse_lobster_name(name: str) -> tuple[str, dt.date, int, str] | None:
    """(symbol, date, levels, 'message'|'orderbook') from a LOBSTER file name, or None."""
    m = _NAME_RE.match(Path(name).name)
    if not m:
        return None
    try:
        d = dt.date.fromisoformat(m["date"])
    except ValueError:
        return None
    return m["sym"], d, int(m["levels"]), m["what"]


def lobster_files(path: str | Path) -> list[LobsterFile]:
    """Message files (paired with their orderbook when present) in a LOBSTER zip, folder or file.

    Zip members come back as :class:`zipfile.Path` so they can be read without extracting.  A
    single message file is paired with the orderbook file of the same name next to it.
    """
    p = Path(path)
    if p.is_dir():
        cands: list[Source] = sorted(p.iterdir())
    elif zipfile.is_zipfile(p):
        cands = sorted((m for m in zipfile.Path(p).iterdir() if m.is_file()), key=lambda m: m.name)
    elif p.is_file():
        cands = [p] + [q for q in sorted(p.parent.iterdir()) if q != p]
    else:
        return []
    books: dict[tuple, Source] = {}
    messages: list[tuple[tuple, Source, str, dt.date, int]] = []
    for c in cands:
        m = _NAME_RE.match(c.name)
        parsed = parse_lobster_name(c.name)
        if m is None or parsed is None:
            continue
        sym, d, levels, what = parsed
        key = (sym, d, m["start"], m["end"], levels)
        if what == "orderbook":
            books[key] = c
        elif not (p.is_file() and not zipfile.is_zipfile(p)) or c == p:
            messages.append((key, c, sym, d, levels))
    return [LobsterFile(c, books.get(key), sym, d, lv) for key, c, sym, d, lv in messages]


# ---------------------------------------------------------------------------------------------
# Message files -> events
# ---------------------------------------------------------------------------------------------


def read_lobster(
    message_path_or_zip: Source,
    symbols: NameTable,
    *,
    date: dt.date | str | None = None,
    symbol: str | None = None,
) -> tuple[np.ndarray, ImportReport]:
    """All events of a LOBSTER message file (or of every message file in a LOBSTER zip).

    Symbol and date come from the LOBSTER file name unless given.  Returns events in merge order
    and the import report (rows read / imported / quarantined with reasons).
    """
    src = message_path_or_zip
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    if not isinstance(src, zipfile.Path) and zipfile.is_zipfile(src):
        found = lobster_files(src)
        report = ImportReport(source=str(src), fmt="lobster")
        parts = []
        if not found:
            report.notes.append(f"{src}: no message file named TICKER_DATE_start_end_message_N.csv inside")
        for f in found:
            e, r = _read_message(f.message, symbols, date or f.date, symbol or f.symbol)
            parts.append(e)
            report.merge(r)
        out = merge_order(np.concatenate(parts)) if parts else ev.empty(0)
        report.events_written = 0
        return out, report
    name = src.name if isinstance(src, zipfile.Path) else Path(src).name
    parsed = parse_lobster_name(name)
    if date is None or symbol is None:
        if parsed is None:
            raise ValueError(
                f"{src}: file name is not TICKER_YYYY-MM-DD_start_end_message_N.csv; "
                "pass symbol= and date= explicitly"
            )
        date = date or parsed[1]
        symbol = symbol or parsed[0]
    return _read_message(src, symbols, date, symbol)


def _read_message(
    src: Source, symbols: NameTable, date: dt.date, symbol: str
) -> tuple[np.ndarray, ImportReport]:
    file = source_name(src)
    report = ImportReport(source=file, fmt="lobster")
    buf, notes = load_text(src)
    report.notes.extend(notes)
    starts, ends, lines, blank = split_lines(buf)
    if blank:
        report.notes.append(f"{file}: {blank} blank line(s) skipped")
    n = starts.shape[0]
    report.rows_read = n
    fs, fe, nf = split_fields(buf, starts, ends, 6)
    t, st_t = parse_fixed(buf, fs, fe, 0, 9)
    # LOBSTER sometimes prints a time with picosecond noise (43002.632812672004): keep the exact ns
    cut = st_t == ST_TOO_PRECISE
    if cut.any():
        st_t[cut] = ST_OK
        report.notes.append(f"{file}: {int(cut.sum())} time value(s) had digits beyond 1 ns; truncated to ns")
    typ, st_ty = parse_int(buf, fs, fe, 1)
    oid, st_o = parse_int(buf, fs, fe, 2)
    size, st_s = parse_int(buf, fs, fe, 3)
    price, st_p = parse_int(buf, fs, fe, 4)
    side, st_d = parse_int(buf, fs, fe, 5)

    chk = RowChecks(n)
    chk.add(nf != 6, "", "wrong_column_count", lambda i: f"expected 6 fields, got {int(nf[i])}")
    for st, name, what in (
        (st_t, "time", "seconds after midnight (decimal, up to 9 fraction digits)"),
        (st_ty, "type", "an integer event type 1-7"),
        (st_o, "order_id", "an integer order id"),
        (st_s, "size", "an integer share count"),
        (st_p, "price", "an integer price in $0.0001"),
        (st_d, "direction", "1 (buy) or -1 (sell)"),
    ):
        chk.add_status(st, name, what)
    chk.add((typ < 1) | (typ > 7), "type", "bad_value", lambda i: f"unknown event type {int(typ[i])}")
    chk.add((side != 1) & (side != -1), "direction", "bad_value", lambda i: f"direction {int(side[i])}")
    chk.add((t < 0) | (t >= 86_400 * NS), "time", "out_of_range", "seconds after midnight not in [0, 86400)")
    trade_like = typ <= 6
    chk.add(size < 0, "size", "negative", lambda i: f"size {int(size[i])}")
    chk.add(trade_like & (size == 0), "size", "bad_value", "size 0 on an order or trade message")
    chk.add(
        trade_like & (price <= 0), "price", "bad_value",
        lambda i: f"price {int(price[i])} on type {int(typ[i])}",
    )
    chk.add((typ <= 4) & (oid < 0), "order_id", "negative", lambda i: f"order id {int(oid[i])}")
    chk.add(
        (typ == 7) & ((price < -1) | (price > 1)), "price", "bad_value",
        lambda i: f"halt message price must be -1, 0 or 1, got {int(price[i])}",
    )
    chk.quarantine(report, file, buf, starts, ends, lines)
    ok = chk.ok
    report.rows_imported = int(ok.sum())

    sym_id = symbols.id(symbol)
    out = lobster_events(
        t[ok] + et_midnight_ns(date), typ[ok], oid[ok], size[ok], price[ok], side[ok], lines[ok], sym_id
    )
    out = merge_order(out)
    report.events_written = 0
    report.notes.append(f"{file}: symbol {symbol}, date {date.isoformat()}, {out.shape[0]} events")
    return out, report


def lobster_events(
    ts: np.ndarray,
    typ: np.ndarray,
    oid: np.ndarray,
    size: np.ndarray,
    price: np.ndarray,
    direction: np.ndarray,
    seq: np.ndarray,
    symbol_id: int,
) -> np.ndarray:
    """Validated message columns -> events (one per message, two for a visible execution)."""
    out = ev.empty(int(ts.shape[0] + np.count_nonzero(typ == 4)))
    _fill_lobster(out, ts, typ, oid, size, price, direction, seq, symbol_id)
    return out


@njit(cache=True)
def _fill_lobster(out, ts, typ, oid, size, price, direction, seq, symbol_id):  # noqa: ANN001
    k = 0
    for i in range(ts.shape[0]):
        t = typ[i]
        d = direction[i]
        e = out[k]
        e.ts_event = ts[i]
        e.ts_recv = ts[i]
        e.seq = seq[i]
        e.symbol = symbol_id
        e.venue = VENUE_NASDAQ
        e.flags = _F_LAST | _F_MODELED
        odd = _C_ODD if size[i] < 100 else 0
        if t <= 4:
            e.kind = _K_ORDER
            e.action = _ACT_OF_TYPE[t]
            e.side = d
            e.order_id = oid[i]
            e.price = price[i]
            e.size = size[i]
        elif t == 7:
            e.kind = _K_STATUS
            p = price[i]
            e.action = _S_HALT if p == -1 else (_S_QUOTE if p == 0 else _S_RESUME)
        else:
            e.kind = _K_TRADE
            e.order_id = oid[i]
            e.price = price[i]
            e.size = size[i]
            if t == 5:
                e.side = -d
                e.conditions = _C_HIDDEN | _C_REGULAR | odd
            else:
                e.conditions = _C_CROSS
        k += 1
        if t == 4:
            e.flags = _F_MODELED
            x = out[k]
            x.ts_event = ts[i]
            x.ts_recv = ts[i]
            x.seq = seq[i]
            x.symbol = symbol_id
            x.venue = VENUE_NASDAQ
            x.kind = _K_TRADE
            x.side = -d
            x.order_id = oid[i]
            x.price = price[i]
            x.size = size[i]
            x.conditions = _C_REGULAR | odd
            x.flags = _F_LAST | _F_MODELED
            k += 1


# constants as module globals so the kernel freezes them at compile time
_F_LAST = ev.FLAG_LAST
_F_MODELED = ev.FLAG_TS_RECV_MODELED
_K_ORDER = ev.KIND_ORDER
_K_STATUS = ev.KIND_STATUS
_K_TRADE = ev.KIND_TRADE
_S_HALT = ev.STATUS_HALT
_S_QUOTE = ev.STATUS_QUOTE_RESUME
_S_RESUME = ev.STATUS_RESUME
_C_ODD = ev.COND_ODD_LOT
_C_HIDDEN = ev.COND_HIDDEN
_C_REGULAR = ev.COND_REGULAR
_C_CROSS = ev.COND_CROSS
_ACT_OF_TYPE = np.array([0, ev.ACTION_ADD, ev.ACTION_CANCEL, ev.ACTION_DELETE, ev.ACTION_EXECUTE], np.uint8)


# ---------------------------------------------------------------------------------------------
# Orderbook files (ground truth for book reconstruction)
# ---------------------------------------------------------------------------------------------


def read_lobster_orderbook(path_or_zip: Source) -> np.ndarray:
    """The orderbook file as int64 (rows, 4*levels): ask px, ask sz, bid px, bid sz per level.

    Values are LOBSTER's raw ones (prices in $0.0001, empty levels ±9999999999 with size 0).
    Raises ValueError naming file, line and field on a malformed row: a damaged truth file must
    not be used to verify a book.
    """
    src = path_or_zip
    if not isinstance(src, zipfile.Path) and zipfile.is_zipfile(src):
        books = [f.orderbook for f in lobster_files(src) if f.orderbook is not None]
        if len(books) != 1:
            raise ValueError(f"{src}: expected exactly one LOBSTER orderbook file inside, found {len(books)}")
        src = books[0]
    file = source_name(src)
    buf, notes = load_text(src)
    if notes:
        raise ValueError("; ".join(notes))
    starts, ends, lines, _ = split_lines(buf)
    if starts.shape[0] == 0:
        return np.zeros((0, 0), np.int64)
    name = src.name if isinstance(src, zipfile.Path) else Path(src).name
    parsed = parse_lobster_name(name)
    first_nf = int(split_fields(buf, starts[:1], ends[:1], 1)[2][0])
    ncol = 4 * parsed[2] if parsed else first_nf
    if ncol % 4:
        raise ValueError(f"{file}:{int(lines[0])}: {first_nf} fields is not a multiple of 4")
    fs, fe, nf = split_fields(buf, starts, ends, ncol)
    bad = np.flatnonzero(nf != ncol)
    if bad.size:
        i = int(bad[0])
        got = int(nf[i])
        raise ValueError(f"{file}:{int(lines[i])}: wrong_column_count: expected {ncol} fields, got {got}")
    out = np.empty((starts.shape[0], ncol), np.int64)
    names = ("ask_price", "ask_size", "bid_price", "bid_size")
    for c in range(ncol):
        v, st = parse_int(buf, fs, fe, c)
        bad = np.flatnonzero(st != ST_OK)
        if bad.size:
            i = int(bad[0])
            fld = f"{names[c % 4]}_{c // 4 + 1}"
            raise ValueError(f"{file}:{int(lines[i])}: field '{fld}': {STATUS_REASON[int(st[i])]}")
        out[:, c] = v
    return out
