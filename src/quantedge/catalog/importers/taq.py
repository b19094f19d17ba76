"""NYSE Daily TAQ importers (trades and per-venue quotes, CSV with a header, plain or gzip).

Columns are found by header name, so files with extra or reordered columns still import.  Parsing
runs over raw bytes with the Numba kernels of :mod:`quantedge.catalog.importers.lobster`; prices are
parsed from their decimal digits straight to $0.0001 (no floats), timestamps from ISO text to ns.

Decisions worth knowing (details in ``docs/formats-lobster-taq-databento.md``):
- ``DT`` is UTC (ISO 8601, trailing ``Z``).  TAQ has no receive time, so ``ts_recv = ts_event`` and
  ``FLAG_TS_RECV_MODELED`` is set.
- Quote sizes (``BIDSIZ``/``ASKSIZ``) are round lots in this data for every venue (values 1, 2, 3...,
  never 100, 200...), so they are multiplied by ``lot_size`` (100) to give shares.
- Off-exchange prints (``EX`` = D) get ``COND_OFF_EXCHANGE``; ``TR_RF`` = N routes them to the
  FINRA/NYSE TRF venue id, every other facility to the FINRA/Nasdaq TRF id.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantedge import events as ev
from quantedge.catalog.importers.lobster import (
    ST_EMPTY,
    ST_OK,
    RowChecks,
    Source,
    field_char,
    field_text,
    load_text,
    merge_order,
    parse_fixed,
    parse_int,
    printable,
    source_name,
    split_fields,
    split_lines,
    text_values,
)
from quantedge.catalog.quarantine import ImportReport
from quantedge.catalog.symbols import NameTable
from quantedge.venues import TAQ_EXCHANGE_TO_VENUE, VENUE_TRF, VENUE_UNKNOWN

NYSE_TRF = 24  # IQFeed listed-market id of the FINRA/NYSE TRF

# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by the Databento importer)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def parse_iso_utc(buf: np.ndarray, fs: np.ndarray, fe: np.ndarray, col: int) -> tuple[np.ndarray, np.ndarray]:
    """``YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z]`` (UTC) to int64 ns since the epoch: (values, status).

    A space may replace the ``T``.  Text without ``Z`` is taken as UTC too (the column is UTC by
    definition in both TAQ and Databento CSV).
    """
    n = fs.shape[0]
    val = np.zeros(n, np.int64)
    st = np.zeros(n, np.uint8)
    pos = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
    for r in range(n):
        s = fs[r, col]
        e = fe[r, col]
        if s < 0:
            st[r] = 5
            continue
        if e <= s:
            st[r] = 1
            continue
        if buf[e - 1] == 90:  # 'Z'
            e -= 1
        ln = e - s
        if ln < 19:
            st[r] = 2
            continue
        ok = True
        for p in pos:
            c = buf[s + p]
            if c < 48 or c > 57:
                ok = False
        if not ok or buf[s + 4] != 45 or buf[s + 7] != 45 or (buf[s + 10] != 84 and buf[s + 10] != 32):
            st[r] = 2
            continue
        if buf[s + 13] != 58 or buf[s + 16] != 58:
            st[r] = 2
            continue
        frac = 0
        nd = 0
        if ln > 19:
            if buf[s + 19] != 46 or ln == 20 or ln > 29:
                st[r] = 2
                continue
            for i in range(s + 20, e):
                c = buf[i]
                if c < 48 or c > 57:
                    ok = False
                    break
                frac = frac * 10 + (c - 48)
                nd += 1
            if not ok:
                st[r] = 2
                continue
        for _ in range(9 - nd):
            frac *= 10
        d = buf[s : s + 19].astype(np.int64) - 48
        year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
        month = d[5] * 10 + d[6]
        day = d[8] * 10 + d[9]
        hour = d[11] * 10 + d[12]
        minute = d[14] * 10 + d[15]
        sec = d[17] * 10 + d[18]
        mdays = 31
        if month == 4 or month == 6 or month == 9 or month == 11:
            mdays = 30
        elif month == 2:
            leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
            mdays = 29 if leap else 28
        if month < 1 or month > 12 or day < 1 or day > mdays or hour > 23 or minute > 59 or sec > 60:
            st[r] = 4
            continue
        y = year - 1 if month <= 2 else year
        era = y // 400
        yoe = y - era * 400
        mp = (month + 9) % 12
        doy = (153 * mp + 2) // 5 + day - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        days = era * 146097 + doe - 719468
        val[r] = ((days * 24 + hour) * 60 + minute) * 60_000_000_000 + sec * 1_000_000_000 + frac
    return val, st


def header_columns(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """Names in the first (header) line, stripped, as text (undecodable bytes replaced)."""
    if starts.shape[0] == 0:
        return []
    text = buf[starts[0] : ends[0]].tobytes().decode("ascii", errors="replace")
    return [c.strip() for c in text.split(",")]


def check_header(
    report: ImportReport, file: str, cols: list[str], required: tuple[str, ...]
) -> list[str]:
    """Required columns missing from the header (each noted); with any missing no row can import."""
    missing = [c for c in required if c not in cols]
    if missing:
        report.notes.append(f"{file}:1: header lacks column(s) {', '.join(missing)}; got {cols[:20]}")
    return missing


def quarantine_all(
    report: ImportReport,
    file: str,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    lines: np.ndarray,
    field: str,
    detail: str,
) -> None:
    """Every data row is unusable (e.g. the header lacks a required column): quarantine them all."""
    chk = RowChecks(starts.shape[0])
    chk.add(np.ones(starts.shape[0], bool), field, "missing_column", detail)
    chk.quarantine(report, file, buf, starts, ends, lines)


def symbol_ids(
    symbols: NameTable, base: np.ndarray, suffix: np.ndarray | None, ok: np.ndarray
) -> np.ndarray:
    """Symbol id per row from fixed-width symbol (and optional suffix) bytes; 'NA'/'' = no suffix."""
    n = base.shape[0]
    ids = np.zeros(n, np.int32)
    if not ok.any():
        return ids
    keys = text_values(base)
    if suffix is not None:
        sv = text_values(suffix)
        sv = np.where((sv == b"NA") | (sv == b""), b"", sv)
        keys = np.char.add(np.char.add(keys, np.where(sv == b"", b"", b".")), sv)
    uniq, inv = np.unique(keys[ok], return_inverse=True)
    table = np.array([symbols.id(u.decode("ascii")) for u in uniq], np.int32)
    ids[ok] = table[inv]
    return ids


def _venue_table() -> np.ndarray:
    t = np.full(256, -1, np.int16)
    for letter, v in TAQ_EXCHANGE_TO_VENUE.items():
        t[ord(letter)] = v
    return t


VENUE_OF_BYTE = _venue_table()

# ---------------------------------------------------------------------------------------------
# Sale conditions (CTA / UTP codes as carried in Daily TAQ TR_SCOND, up to 4 letters per trade)
# ---------------------------------------------------------------------------------------------

#: code -> (condition bits, regular-way / last-sale eligible).  Blank and '@' are "regular".
SALE_CONDITIONS: dict[str, tuple[int, bool]] = {
    "@": (0, True),  # regular sale
    "A": (0, False),  # acquisition
    "B": (ev.COND_AVERAGE_PRICE, False),  # average price (CTA) / bunched (UTP): not a market price
    "C": (ev.COND_SPECIAL_TERMS, False),  # cash sale
    "D": (0, False),  # distribution
    "E": (0, True),  # placeholder
    "F": (ev.COND_INTERMARKET_SWEEP, True),  # intermarket sweep order
    "G": (ev.COND_OUT_OF_SEQUENCE, False),  # bunched sold trade (late)
    "H": (0, False),  # price variation trade
    "I": (ev.COND_ODD_LOT, True),  # odd-lot trade
    "K": (0, True),  # rule 127 / 155 trade
    "L": (ev.COND_OUT_OF_SEQUENCE, False),  # sold last (late report)
    "M": (ev.COND_CLOSING, False),  # market center official close (a reprint, not a new trade)
    "N": (ev.COND_SPECIAL_TERMS, False),  # next day settlement
    "O": (ev.COND_OPENING, True),  # market center opening trade
    "P": (ev.COND_OUT_OF_SEQUENCE, False),  # prior reference price
    "Q": (ev.COND_OPENING, False),  # market center official open (a reprint)
    "R": (ev.COND_SPECIAL_TERMS, False),  # seller's option
    "S": (0, True),  # split trade
    "T": (ev.COND_EXTENDED_HOURS, False),  # Form T: outside regular hours
    "U": (ev.COND_EXTENDED_HOURS | ev.COND_OUT_OF_SEQUENCE, False),  # extended hours, sold out of seq.
    "V": (ev.COND_SPECIAL_TERMS, False),  # contingent trade
    "W": (ev.COND_AVERAGE_PRICE, False),  # average price trade
    "X": (ev.COND_CROSS, True),  # cross / periodic auction trade
    "Y": (0, True),  # yellow flag regular trade
    "Z": (ev.COND_OUT_OF_SEQUENCE, False),  # sold (out of sequence)
    "1": (0, True),  # stopped stock, regular trade
    "4": (ev.COND_AVERAGE_PRICE, False),  # derivatively priced
    "5": (ev.COND_OPENING, True),  # market center re-opening trade
    "6": (ev.COND_CLOSING, True),  # market center closing trade
    "7": (ev.COND_TRADE_THROUGH_EXEMPT | ev.COND_SPECIAL_TERMS, False),  # qualified contingent trade
    "8": (0, True),  # placeholder for 611 exempt
    "9": (ev.COND_CLOSING, False),  # corrected consolidated close
}

#: Quote condition (QU_COND) -> bits.  R regular two-sided, O opening, C closing.
QUOTE_CONDITIONS: dict[str, int] = {
    "R": ev.COND_REGULAR,
    "O": ev.COND_OPENING,
    "C": ev.COND_CLOSING,
}


def _cond_tables() -> tuple[np.ndarray, np.ndarray]:
    bits = np.full(256, ev.COND_UNKNOWN_CODE, np.uint32)
    regular = np.zeros(256, np.bool_)
    bits[32] = 0
    regular[32] = True
    for code, (b, r) in SALE_CONDITIONS.items():
        bits[ord(code)] = b
        regular[ord(code)] = r
    return bits, regular


COND_BITS, COND_REGULAR_OK = _cond_tables()


@njit(cache=True)
def sale_condition_bits(chars: np.ndarray, bits: np.ndarray, regular: np.ndarray) -> np.ndarray:
    """OR of the bits of every code letter; COND_REGULAR when all codes are regular-way."""
    n = chars.shape[0]
    out = np.zeros(n, np.uint32)
    for r in range(n):
        b = np.uint32(0)
        reg = True
        for j in range(chars.shape[1]):
            c = chars[r, j]
            if c == 0:
                continue
            b |= bits[c]
            if not regular[c]:
                reg = False
        if reg and (b & np.uint32(0x80000000)) == 0:
            b |= np.uint32(1)
        out[r] = b
    return out


# ---------------------------------------------------------------------------------------------
# Trades
# ---------------------------------------------------------------------------------------------

TRADE_REQUIRED = ("DT", "EX", "SYMBOL", "SIZE", "PRICE", "TR_SEQNUM")


class _Parsed:
    """One TAQ CSV split into lines and header-named fields."""

    def __init__(self, src: Source, fmt: str) -> None:
        self.file = source_name(src)
        self.report = ImportReport(source=self.file, fmt=fmt)
        self.buf, notes = load_text(src)
        self.report.notes.extend(notes)
        starts, ends, lines, blank = split_lines(self.buf)
        if blank:
            self.report.notes.append(f"{self.file}: {blank} blank line(s) skipped")
        self.cols = header_columns(self.buf, starts, ends)
        self.starts, self.ends, self.lines = starts[1:], ends[1:], lines[1:]
        self.n = self.starts.shape[0]
        self.report.rows_read = self.n
        self.fs, self.fe, self.nf = split_fields(self.buf, self.starts, self.ends, max(len(self.cols), 1))
        self.chk = RowChecks(self.n)
        self.chk.add(
            self.nf != len(self.cols), "", "wrong_column_count",
            lambda i: f"expected {len(self.cols)} fields (header), got {int(self.nf[i])}",
        )

    def col(self, name: str) -> int:
        return self.cols.index(name)

    def has(self, name: str) -> bool:
        return name in self.cols

    def missing(self, required: tuple[str, ...]) -> bool:
        miss = check_header(self.report, self.file, self.cols, required)
        if miss:
            quarantine_all(
                self.report, self.file, self.buf, self.starts, self.ends, self.lines, miss[0],
                f"header has no '{miss[0]}' column",
            )
        return bool(miss)

    def int_col(self, name: str, what: str, optional_na: bool = False) -> np.ndarray:
        v, st = parse_int(self.buf, self.fs, self.fe, self.col(name))
        if optional_na:
            na = self._is_na(name)
            st[na | (st == ST_EMPTY)] = ST_OK
            v[na] = 0
        self.chk.add_status(st, name, what)
        return v

    def price_col(self, name: str) -> np.ndarray:
        v, st = parse_fixed(self.buf, self.fs, self.fe, self.col(name), 4)
        self.chk.add_status(st, name, "a decimal price with at most 4 decimals")
        return v

    def _is_na(self, name: str) -> np.ndarray:
        t, ln = field_text(self.buf, self.fs, self.fe, self.col(name), 2)
        return (ln == 2) & (t[:, 0] == ord("N")) & (t[:, 1] == ord("A"))

    def time_col(self, name: str) -> np.ndarray:
        v, st = parse_iso_utc(self.buf, self.fs, self.fe, self.col(name))
        self.chk.add_status(st, name, "UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ")
        return v

    def venue_col(self) -> np.ndarray:
        ex = field_char(self.buf, self.fs, self.fe, self.col("EX"))
        self.chk.add(ex == 0, "EX", "bad_value", "expected a one-letter exchange code")
        venue = VENUE_OF_BYTE[ex]
        unknown = (venue < 0) & (ex != 0)
        if unknown.any():
            letters = sorted({chr(c) for c in ex[unknown]})
            self.report.notes.append(
                f"{self.file}: {int(unknown.sum())} row(s) with unmapped exchange code(s) {letters}: venue 0"
            )
        return np.where(venue < 0, VENUE_UNKNOWN, venue).astype(np.int16)

    def symbol_col(self, symbols: NameTable) -> np.ndarray:
        base, ln = field_text(self.buf, self.fs, self.fe, self.col("SYMBOL"), 16)
        self.chk.add(ln == -2, "SYMBOL", "bad_value", "symbol longer than 16 characters")
        self.chk.add(ln == 0, "SYMBOL", "empty", "empty symbol")
        self.chk.add(~printable(base), "SYMBOL", "bad_encoding", "symbol is not printable ASCII")
        suffix = None
        if self.has("SYM_SUFFIX"):
            suffix, sln = field_text(self.buf, self.fs, self.fe, self.col("SYM_SUFFIX"), 8)
            self.chk.add(sln == -2, "SYM_SUFFIX", "bad_value", "suffix longer than 8 characters")
            self.chk.add(~printable(suffix), "SYM_SUFFIX", "bad_encoding", "suffix is not printable ASCII")
        return symbol_ids(symbols, base, suffix, self.chk.ok)

    def finish(self) -> np.ndarray:
        self.chk.quarantine(self.report, self.file, self.buf, self.starts, self.ends, self.lines)
        ok = self.chk.ok
        self.report.rows_imported = int(ok.sum())
        return ok


def read_taq_trades(path_gz_or_csv: Source, symbols: NameTable) -> tuple[np.ndarray, ImportReport]:
    """Daily TAQ trades -> KIND_TRADE events (merge-ordered) and the import report."""
    p = _Parsed(path_gz_or_csv, "taq_trades")
    if p.n == 0 or p.missing(TRADE_REQUIRED):
        return ev.empty(0), p.report
    ts = p.time_col("DT")
    venue = p.venue_col()
    size = p.int_col("SIZE", "an integer share count")
    price = p.price_col("PRICE")
    seq = p.int_col("TR_SEQNUM", "an integer sequence number")
    corr = p.int_col("TR_CORR", "an integer correction code", optional_na=True) if p.has("TR_CORR") else None
    if p.has("TR_SCOND"):
        scond, sln = field_text(p.buf, p.fs, p.fe, p.col("TR_SCOND"), 4)
        p.chk.add(sln == -2, "TR_SCOND", "bad_value", "more than 4 sale-condition characters")
        cond = sale_condition_bits(scond, COND_BITS, COND_REGULAR_OK)
    else:
        cond = np.full(p.n, ev.COND_REGULAR, np.uint32)
    p.chk.add(size <= 0, "SIZE", "bad_value", lambda i: f"size {int(size[i])} (must be > 0)")
    p.chk.add(price <= 0, "PRICE", "bad_value", lambda i: f"price {int(price[i]) / 1e4} (must be > 0)")
    sym = p.symbol_col(symbols)
    if p.has("TR_RF"):
        rf = field_char(p.buf, p.fs, p.fe, p.col("TR_RF"))
        venue = np.where((venue == VENUE_TRF) & (rf == ord("N")), NYSE_TRF, venue).astype(np.int16)
    ok = p.finish()

    n = int(ok.sum())
    out = ev.empty(n)
    out["ts_event"] = ts[ok]
    out["ts_recv"] = ts[ok]
    out["seq"] = seq[ok]
    out["price"] = price[ok]
    out["size"] = size[ok]
    out["symbol"] = sym[ok]
    out["venue"] = venue[ok]
    out["kind"] = ev.KIND_TRADE
    out["flags"] = ev.FLAG_LAST | ev.FLAG_TS_RECV_MODELED
    c = cond[ok]
    c = c | np.where(size[ok] < 100, ev.COND_ODD_LOT, 0).astype(np.uint32)
    off = (out["venue"] == VENUE_TRF) | (out["venue"] == NYSE_TRF)
    c = c | np.where(off, ev.COND_OFF_EXCHANGE, 0).astype(np.uint32)
    if corr is not None:
        cc = corr[ok] != 0
        c = np.where(cc, (c | ev.COND_CANCEL_CORRECTION) & ~np.uint32(ev.COND_REGULAR), c)
    out["conditions"] = c
    return merge_order(out), p.report


# ---------------------------------------------------------------------------------------------
# Quotes
# ---------------------------------------------------------------------------------------------

QUOTE_REQUIRED = ("DT", "EX", "BID", "BIDSIZ", "ASK", "ASKSIZ", "QU_SEQNUM", "SYMBOL")


def read_taq_quotes(
    path_gz_or_csv: Source, symbols: NameTable, *, lot_size: int = 100
) -> tuple[np.ndarray, ImportReport]:
    """Daily TAQ per-venue quotes -> two KIND_QUOTE events per row (bid, then ask with FLAG_LAST).

    Sizes in the file are round lots; ``lot_size`` converts them to shares.  Price 0 means that
    side is empty: the event keeps price 0 and size 0.
    """
    p = _Parsed(path_gz_or_csv, "taq_quotes")
    if p.n == 0 or p.missing(QUOTE_REQUIRED):
        return ev.empty(0), p.report
    ts = p.time_col("DT")
    venue = p.venue_col()
    bid = p.price_col("BID")
    bsz = p.int_col("BIDSIZ", "an integer size in round lots")
    ask = p.price_col("ASK")
    asz = p.int_col("ASKSIZ", "an integer size in round lots")
    seq = p.int_col("QU_SEQNUM", "an integer sequence number")
    for v, name in ((bid, "BID"), (ask, "ASK")):
        p.chk.add(v < 0, name, "negative", lambda i, v=v: f"price {int(v[i]) / 1e4}")
    for v, name in ((bsz, "BIDSIZ"), (asz, "ASKSIZ")):
        p.chk.add(v < 0, name, "negative", lambda i, v=v: f"size {int(v[i])}")
    if p.has("QU_COND"):
        qc = field_char(p.buf, p.fs, p.fe, p.col("QU_COND"))
        table = np.full(256, ev.COND_UNKNOWN_CODE, np.uint32)
        table[0] = 0
        for k, b in QUOTE_CONDITIONS.items():
            table[ord(k)] = b
        cond = table[qc]
    else:
        cond = np.zeros(p.n, np.uint32)
    if p.has("QU_CANCEL"):
        t, ln = field_text(p.buf, p.fs, p.fe, p.col("QU_CANCEL"), 2)
        na = (ln == 2) & (t[:, 0] == ord("N")) & (t[:, 1] == ord("A"))
        cond = np.where((ln != 0) & ~na, cond | ev.COND_CANCEL_CORRECTION, cond).astype(np.uint32)
    sym = p.symbol_col(symbols)
    ok = p.finish()

    n = int(ok.sum())
    out = ev.empty(2 * n)
    for k, (px, sz, side) in enumerate(((bid, bsz, ev.SIDE_BID), (ask, asz, ev.SIDE_ASK))):
        e = out[k::2]  # a strided view: writes land in ``out``
        e["ts_event"] = ts[ok]
        e["ts_recv"] = ts[ok]
        e["seq"] = seq[ok]
        e["symbol"] = sym[ok]
        e["venue"] = venue[ok]
        e["kind"] = ev.KIND_QUOTE
        e["side"] = side
        e["conditions"] = cond[ok]
        pr = px[ok]
        e["price"] = pr
        e["size"] = np.where(pr == 0, 0, sz[ok] * lot_size)
        e["flags"] = ev.FLAG_TS_RECV_MODELED | (ev.FLAG_LAST if k == 1 else 0)
    emptied = int(((bid[ok] == 0) & (bsz[ok] != 0)).sum() + ((ask[ok] == 0) & (asz[ok] != 0)).sum())
    if emptied:
        p.report.notes.append(f"{p.file}: {emptied} side(s) with price 0 but a size: size set to 0")
    return merge_order(out), p.report

