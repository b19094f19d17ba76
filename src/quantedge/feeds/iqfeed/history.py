"""IQFeed lookup-port (9100) history lines -> columns: tick rows and interval / daily bar rows.

Pure functions over bytes, so the catalog importer, the live lookup client and the IQConnect
emulator's tests share one parser.  A single Numba pass splits every line into fields and parses
numbers, fixed-point prices and hex trade conditions straight from the buffer into columns, with a
status code per line; Python then only looks at the few lines that are not data rows (terminator,
errors, system lines) or failed, to turn them into :class:`Problem` records.

Layouts accepted (protocol reference §5.2), each with an optional request-id prefix, the 6.2
``LH`` marker after it, and with or without the trailing comma:

* ticks, 6.1/6.2: ``ts,last,size,totvol,bid,ask,tickid,basis,mc,conds,aggressor,daycode``
* ticks, <=6.0:  the same without aggressor and day code (10 fields)
* interval bars: ``ts,high,low,open,close,totvol,periodvol,ntrades`` (note H,L,O,C order)
* daily/weekly/monthly bars: ``date,high,low,open,close,periodvol,openinterest``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from quantedge.catalog.quarantine import ImportReport, Problem, clip
from quantedge.events import (
    COND_EXTENDED_HOURS,
    COND_REGULAR,
    COND_UNKNOWN_CODE,
    EVENT_DTYPE,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    FLAG_TS_RECV_MODELED,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.conditions import CODE_BITS, describe_codes, market_center_conditions
from quantedge.timeutil import parse_et_datetimes
from quantedge.venues import IQFEED_MARKETS

# --- generic delimited-line kernel --------------------------------------------------------------

#: field types understood by :func:`scan_lines`
T_SKIP = 0  # ignored
T_STR = 1  # kept as (offset, length) into the buffer; decoded later, vectorized
T_PRICE = 2  # decimal -> int64 $0.0001; required
T_PRICE_OPT = 3  # decimal; empty -> 0
T_INT = 4  # unsigned integer; required
T_INT_OPT = 5  # unsigned integer; empty -> 0
T_HEX = 6  # IQFeed hex trade conditions -> COND_* bits (unknown codes -> COND_UNKNOWN_CODE)
T_CHAR = 7  # exactly one byte

#: per-line status codes returned by :func:`scan_lines`
ST_OK = 0
ST_NONDATA = 1  # not shaped like a data row (terminator, error, system line, garbage)
ST_BLANK = 2
ST_COLUMNS = 3
ST_NON_NUMERIC = 4
ST_EMPTY = 5
ST_BAD_HEX = 6
ST_BAD_CHAR = 7
ST_RANGE = 8
ST_NEGATIVE = 9  # a well-formed number with a minus sign where prices and sizes are unsigned

STATUS_REASONS = {
    ST_COLUMNS: "wrong_column_count",
    ST_NON_NUMERIC: "non_numeric",
    ST_EMPTY: "empty_field",
    ST_BAD_HEX: "bad_conditions",
    ST_BAD_CHAR: "bad_code",
    ST_RANGE: "out_of_range",
    ST_NEGATIVE: "negative",
}

_MAXF = 64
_UNKNOWN_BIT = np.int64(COND_UNKNOWN_CODE)


@njit(cache=True)
def _is_negative_number(buf, a, b):
    """``-`` then digits with at most one ``.`` (a number, but signed where none may be)."""
    if b - a < 2 or buf[a] != 45:
        return False
    nd = 0
    dots = 0
    for i in range(a + 1, b):
        if 48 <= buf[i] <= 57:
            nd += 1
        elif buf[i] == 46:
            dots += 1
        else:
            return False
    return nd > 0 and dots <= 1


@njit(cache=True)
def _is_date(buf, a, b):
    if b - a < 10:
        return False
    for k in (0, 1, 2, 3, 5, 6, 8, 9):
        c = buf[a + k]
        if c < 48 or c > 57:
            return False
    return buf[a + 4] == 45 and buf[a + 7] == 45


@njit(cache=True)
def _is_lh(buf, a, b):
    return b - a == 2 and buf[a] == 76 and buf[a + 1] == 72


@njit(cache=True)
def _hexval(c):
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


@njit(cache=True)
def scan_lines(buf, types, alt_ncols, lookup_prefix, code_bits):  # noqa: C901 - one pass on purpose
    """Split ``buf`` into lines and fields and parse them by ``types`` (one compiled pass).

    A row is accepted with ``len(types)`` fields, or ``alt_ncols`` (a shorter, older layout whose
    fields are the first ``alt_ncols`` of ``types``), plus optionally one trailing empty field
    (IQFeed's trailing comma).  With ``lookup_prefix`` a request id and/or ``LH`` before the
    timestamp is skipped; lines not starting with a date then get ST_NONDATA.
    Returns (vals, offs, lens, status, err_field, nfields, skip, line_start, line_end).
    """
    n = buf.shape[0]
    nl = 0
    for i in range(n):
        if buf[i] == 10:
            nl += 1
    if n > 0 and buf[n - 1] != 10:
        nl += 1
    ncols = types.shape[0]
    vals = np.zeros((nl, ncols), np.int64)
    offs = np.zeros((nl, ncols), np.int64)
    lens = np.zeros((nl, ncols), np.int64)
    status = np.zeros(nl, np.int8)
    errf = np.full(nl, -1, np.int16)
    nfields = np.zeros(nl, np.int16)
    skip = np.zeros(nl, np.int8)
    lstart = np.zeros(nl, np.int64)
    lend = np.zeros(nl, np.int64)
    fs = np.zeros(_MAXF, np.int64)
    fe = np.zeros(_MAXF, np.int64)
    pos = 0
    for li in range(nl):
        s = pos
        e = s
        while e < n and buf[e] != 10:
            e += 1
        pos = e + 1
        le = e
        if le > s and buf[le - 1] == 13:
            le -= 1
        lstart[li] = s
        lend[li] = le
        if le == s:
            status[li] = ST_BLANK
            continue
        nf = 0
        fstart = s
        for i in range(s, le + 1):
            if i == le or buf[i] == 44:
                if nf < _MAXF:
                    fs[nf] = fstart
                    fe[nf] = i
                nf += 1
                fstart = i + 1
        sk = 0
        if lookup_prefix:
            if _is_date(buf, fs[0], fe[0]):
                sk = 0
            elif nf > 1 and _is_lh(buf, fs[0], fe[0]) and _is_date(buf, fs[1], fe[1]):
                sk = 1
            elif nf > 2 and _is_lh(buf, fs[1], fe[1]) and _is_date(buf, fs[2], fe[2]):
                sk = 2
            elif nf > 1 and _is_date(buf, fs[1], fe[1]):
                sk = 1
            else:
                status[li] = ST_NONDATA
                nfields[li] = min(nf, 32000)
                continue
        skip[li] = sk
        k = nf - sk
        nfields[li] = min(k, 32000)
        last_empty = nf <= _MAXF and fe[nf - 1] == fs[nf - 1]
        # a trailing empty field is read as IQFeed's trailing comma first (daily bars with the
        # comma have as many fields as interval bars without it)
        if k == ncols + 1 and last_empty:
            use = ncols
        elif alt_ncols > 0 and k == alt_ncols + 1 and last_empty:
            use = alt_ncols
        elif k == ncols:
            use = ncols
        elif alt_ncols > 0 and k == alt_ncols:
            use = alt_ncols
        else:
            status[li] = ST_COLUMNS
            continue
        nfields[li] = use
        err = 0
        c = 0
        for c in range(use):
            a = fs[sk + c]
            b = fe[sk + c]
            t = types[c]
            offs[li, c] = a
            lens[li, c] = b - a
            if t == T_SKIP or t == T_STR:
                continue
            if t == T_PRICE or t == T_PRICE_OPT:
                if a == b:
                    if t == T_PRICE:
                        err = ST_EMPTY
                        break
                    continue
                if _is_negative_number(buf, a, b):
                    err = ST_NEGATIVE
                    break
                ip = np.int64(0)
                nd = 0
                i = a
                while i < b and 48 <= buf[i] <= 57:
                    ip = ip * 10 + (buf[i] - 48)
                    nd += 1
                    i += 1
                    if nd > 14:
                        break
                if nd > 14:
                    err = ST_RANGE
                    break
                frac = np.int64(0)
                fd = 0
                rnd = 0
                if i < b and buf[i] == 46:
                    i += 1
                    while i < b and 48 <= buf[i] <= 57:
                        if fd < 4:
                            frac = frac * 10 + (buf[i] - 48)
                        elif fd == 4 and buf[i] >= 53:
                            rnd = 1
                        fd += 1
                        i += 1
                if i != b or (nd == 0 and fd == 0):
                    err = ST_NON_NUMERIC
                    break
                for _ in range(min(fd, 4), 4):
                    frac *= 10
                vals[li, c] = ip * 10000 + frac + rnd
            elif t == T_INT or t == T_INT_OPT:
                if a == b:
                    if t == T_INT:
                        err = ST_EMPTY
                        break
                    continue
                if _is_negative_number(buf, a, b):
                    err = ST_NEGATIVE
                    break
                if b - a > 18:
                    ok = True
                    for i in range(a, b):
                        if buf[i] < 48 or buf[i] > 57:
                            ok = False
                    err = ST_RANGE if ok else ST_NON_NUMERIC
                    break
                v = np.int64(0)
                ok = True
                for i in range(a, b):
                    d = buf[i]
                    if d < 48 or d > 57:
                        ok = False
                        break
                    v = v * 10 + (d - 48)
                if not ok:
                    err = ST_NON_NUMERIC
                    break
                vals[li, c] = v
            elif t == T_HEX:
                if (b - a) % 2 == 1 or b - a > 32:
                    err = ST_BAD_HEX
                    break
                bits = np.int64(0)
                for i in range(a, b, 2):
                    h1 = _hexval(buf[i])
                    h2 = _hexval(buf[i + 1])
                    if h1 < 0 or h2 < 0:
                        err = ST_BAD_HEX
                        break
                    cb = code_bits[h1 * 16 + h2]
                    if cb < 0:
                        bits |= _UNKNOWN_BIT
                    else:
                        bits |= cb
                if err:
                    break
                vals[li, c] = bits
            elif t == T_CHAR:
                if b - a != 1:
                    err = ST_BAD_CHAR
                    break
                vals[li, c] = buf[a]
        if err:
            status[li] = err
            errf[li] = c
    return vals, offs, lens, status, errf, nfields, skip, lstart, lend


@njit(cache=True)
def _gather(buf, offs, lens, width):
    n = offs.shape[0]
    out = np.zeros((n, width), np.uint8)
    for i in range(n):
        m = min(lens[i], width)
        a = offs[i]
        for k in range(m):
            out[i, k] = buf[a + k]
    return out


def gather_strings(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, width: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width ``S{width}`` array of the fields at (offs, lens); ``fits`` is False when longer."""
    n = offs.shape[0]
    if n == 0:
        return np.zeros(0, f"S{width}"), np.zeros(0, bool)
    mat = _gather(buf, np.ascontiguousarray(offs, np.int64), np.ascontiguousarray(lens, np.int64), width)
    return mat.view(f"S{width}").reshape(n), lens <= width


def normalize_input(raw: bytes) -> tuple[bytes, list[str]]:
    """Undo encodings IQFeed never sends but saved files sometimes have (BOMs, UTF-16)."""
    notes: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        notes.append("stripped a UTF-8 byte-order mark")
        raw = raw[3:]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
        raw = text.encode("latin-1", errors="replace")
        notes.append("file was UTF-16; converted to single-byte text (IQFeed sends ASCII)")
    return raw, notes


@dataclass
class Scan:
    """Result of :func:`scan_lines` plus the buffer it indexes."""

    buf: np.ndarray
    vals: np.ndarray
    offs: np.ndarray
    lens: np.ndarray
    status: np.ndarray
    err_field: np.ndarray
    nfields: np.ndarray
    skip: np.ndarray
    line_start: np.ndarray
    line_end: np.ndarray
    line_offset: int = 0  # physical line number of the buffer's first line, minus one

    def raw(self, i: int) -> bytes:
        return self.buf[self.line_start[i] : self.line_end[i]].tobytes()

    def line_no(self, i: int | np.ndarray) -> int | np.ndarray:
        return i + 1 + self.line_offset


def scan(data: bytes, types: list[int], alt_ncols: int = 0, lookup_prefix: bool = False,
         line_offset: int = 0) -> Scan:
    buf = np.frombuffer(data, dtype=np.uint8)
    out = scan_lines(buf, np.asarray(types, np.int64), alt_ncols, lookup_prefix, CODE_BITS)
    return Scan(buf, *out, line_offset=line_offset)


def quarantine_failed(sc: Scan, report: ImportReport, field_names: list[str], truncated_last: bool) -> None:
    """Turn kernel failures (wrong column count, bad numbers, ...) into counted Problems."""
    bad = np.nonzero(sc.status >= ST_COLUMNS)[0]
    nl = sc.status.shape[0]
    for i in bad:
        st = int(sc.status[i])
        reason = STATUS_REASONS[st]
        if truncated_last and i == nl - 1:
            reason = "truncated_line"
        f = int(sc.err_field[i])
        if st == ST_COLUMNS:
            fld = ""
            detail = f"{int(sc.nfields[i])} fields, expected {len(field_names)}"
        else:
            fld = field_names[f] if 0 <= f < len(field_names) else ""
            a = sc.offs[i, f]
            val = sc.buf[a : a + sc.lens[i, f]].tobytes()
            detail = f"value {clip(val, 40)!r}"
        report.quarantine(Problem(report.source, int(sc.line_no(i)), fld, reason, detail, clip(sc.raw(i))))


def quarantine_rows(sc: Scan, report: ImportReport, rows: np.ndarray, fld: str, reason: str,
                    detail: str) -> None:
    for i in rows:
        report.quarantine(Problem(report.source, int(sc.line_no(i)), fld, reason, detail, clip(sc.raw(i))))


# --- tick rows ---------------------------------------------------------------------------------

TICK_FIELDS = [
    "timestamp", "last", "last_size", "total_volume", "bid", "ask", "tick_id", "basis",
    "market_center", "conditions", "aggressor", "day_code",
]
_TICK_TYPES = [T_STR, T_PRICE, T_INT, T_INT, T_PRICE, T_PRICE, T_INT, T_CHAR, T_INT, T_HEX, T_INT, T_INT]
_TICK_OLD_NCOLS = 10
BASIS_CODES = b"CEOS"


@dataclass
class TickRows:
    """Columns of the accepted tick rows, in file order."""

    line: np.ndarray  # 1-based physical line
    ts: np.ndarray  # ns UTC
    last: np.ndarray  # $0.0001
    last_size: np.ndarray
    total_volume: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    tick_id: np.ndarray
    basis: np.ndarray  # ASCII byte: C, E, O or S
    market_center: np.ndarray
    code_bits: np.ndarray  # COND_* bits from the hex codes alone (uint32)
    aggressor: np.ndarray  # 0 none/invalid, 1 buy, 2 sell, 3 neither
    day_code: np.ndarray  # 0 for the old 10-field layout

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def _classify_nondata(sc: Scan, report: ImportReport, rows: np.ndarray, data_ncols: tuple[int, ...],
                      truncated_last: bool) -> int:
    """Terminators, errors, system lines and garbage; returns how many ``!ENDMSG!`` were seen."""
    endmsg = 0
    system: dict[str, int] = {}
    nl = sc.status.shape[0]
    for i in rows:
        text = sc.raw(int(i)).decode("latin-1")
        f = text.split(",")
        line = int(sc.line_no(int(i)))
        if f[0] == "!ENDMSG!" or (len(f) > 1 and f[1] == "!ENDMSG!"):
            endmsg += 1
            continue
        if f[0] in ("S", "T") or (len(f) > 1 and f[1] == "S" and f[0] != "E"):
            key = text if len(text) < 60 else text[:60]
            system[key] = system.get(key, 0) + 1
            continue
        err_at = 0 if f[0] == "E" else (1 if len(f) > 1 and f[1] == "E" else -1)
        if err_at >= 0:
            msg = f[err_at + 1] if len(f) > err_at + 1 else ""
            if msg == "!NO_DATA!":
                report.notes.append(f"line {line}: server answered !NO_DATA! (no rows for the request)")
                continue
            report.notes.append(f"line {line}: server error {msg!r}")
            report.rows_read += 1
            report.quarantine(Problem(report.source, line, "", "feed_error", msg, clip(text)))
            continue
        report.rows_read += 1
        n = len(f) - (1 if f[-1] == "" else 0)
        shaped = any(n in (k, k + 1, k + 2) for k in data_ncols)
        if truncated_last and i == nl - 1:
            reason, fld = "truncated_line", ""
        elif shaped:
            reason, fld = "bad_timestamp", "timestamp"
        else:
            reason, fld = "unrecognized_line", ""
        report.quarantine(Problem(report.source, line, fld, reason, "not a history data row", clip(text)))
    for key, cnt in system.items():
        report.notes.append(f"system line {key!r} x{cnt} (ignored)")
    return endmsg


def _finish_notes(sc: Scan, report: ImportReport, endmsg: int, truncated_last: bool) -> None:
    blanks = int((sc.status == ST_BLANK).sum())
    if blanks:
        report.notes.append(f"{blanks} blank line(s) ignored")
    if endmsg == 0:
        report.notes.append("no !ENDMSG! terminator: the response may be incomplete")
    elif endmsg > 1:
        report.notes.append(f"{endmsg} !ENDMSG! terminators: several responses concatenated")
    if truncated_last:
        report.notes.append("file does not end with a newline: last line may be cut")
    variants = {0: "bare", 1: "request-id or LH prefix", 2: "request-id + LH prefix"}
    ok = sc.status == ST_OK
    for k, name in variants.items():
        cnt = int((ok & (sc.skip == k)).sum())
        if cnt and k:
            report.notes.append(f"{cnt} rows with {name}")


def _prepare(data: bytes, report: ImportReport) -> tuple[bytes, bool]:
    data, notes = normalize_input(data)
    report.notes.extend(notes)
    truncated_last = len(data) > 0 and not data.endswith(b"\n")
    return data, truncated_last


def parse_tick_lines(data: bytes, source: str) -> tuple[TickRows, ImportReport]:
    """Parse a tick history response (HTX/HTD/HTT output) into columns plus an import report."""
    report = ImportReport(source=source, fmt="iqfeed_ticks")
    data, truncated_last = _prepare(data, report)
    sc = scan(data, _TICK_TYPES, _TICK_OLD_NCOLS, lookup_prefix=True)
    nondata = np.nonzero(sc.status == ST_NONDATA)[0]
    endmsg = _classify_nondata(sc, report, nondata, (12, 10), truncated_last)
    failed = sc.status >= ST_COLUMNS
    report.rows_read += int(failed.sum())
    quarantine_failed(sc, report, TICK_FIELDS, truncated_last)
    ok = np.nonzero(sc.status == ST_OK)[0]
    report.rows_read += ok.shape[0]
    v = sc.vals[ok]
    ts_text, fits = gather_strings(sc.buf, sc.offs[ok, 0], sc.lens[ok, 0], 29)
    ts, ts_ok = parse_et_datetimes(ts_text)
    ts_ok &= fits
    good = ts_ok.copy()
    checks: list[tuple[np.ndarray, str, str, str]] = [(~ts_ok, "timestamp", "bad_timestamp",
                                                        "not 'YYYY-MM-DD HH:MM:SS.ffffff'")]
    basis = v[:, 7]
    bad_basis = ~np.isin(basis, np.frombuffer(BASIS_CODES, np.uint8)) & good
    checks.append((bad_basis, "basis", "bad_code", "basis for last must be C, E, O or S"))
    good &= ~bad_basis
    bad_mc = (v[:, 8] > 32767) & good
    checks.append((bad_mc, "market_center", "out_of_range", "market center id above 32767"))
    good &= ~bad_mc
    full = sc.nfields[ok] >= 12
    bad_aggr = full & (v[:, 10] > 3) & good
    checks.append((bad_aggr, "aggressor", "bad_code", "trade aggressor must be 0-3"))
    good &= ~bad_aggr
    if ts_text.shape[0]:
        tsb = ts_text.view(np.uint8).reshape(-1, 29)
        dom = (tsb[:, 8].astype(np.int64) - 48) * 10 + (tsb[:, 9].astype(np.int64) - 48)
    else:
        dom = np.zeros(0, np.int64)
    bad_day = full & (v[:, 11] != dom) & good
    checks.append((bad_day, "day_code", "day_code_mismatch", "day code differs from the timestamp's day"))
    good &= ~bad_day
    for mask, fld, reason, detail in checks:
        quarantine_rows(sc, report, ok[mask], fld, reason, detail)
    keep = ok[good]
    v = v[good]
    rows = TickRows(
        line=np.asarray(sc.line_no(keep), np.int64),
        ts=ts[good],
        last=v[:, 1].copy(),
        last_size=v[:, 2].copy(),
        total_volume=v[:, 3].copy(),
        bid=v[:, 4].copy(),
        ask=v[:, 5].copy(),
        tick_id=v[:, 6].copy(),
        basis=v[:, 7].astype(np.uint8),
        market_center=v[:, 8].copy(),
        code_bits=v[:, 9].astype(np.uint32),
        aggressor=v[:, 10].astype(np.int8),
        day_code=v[:, 11].astype(np.int8),
    )
    report.rows_imported = len(rows)
    _note_codes(sc, report, keep, rows)
    _finish_notes(sc, report, endmsg, truncated_last)
    return rows, report


def _note_codes(sc: Scan, report: ImportReport, keep: np.ndarray, rows: TickRows) -> None:
    """Unknown condition codes and market centers are kept (flagged), and counted in notes."""
    unk = np.nonzero(rows.code_bits & np.uint32(COND_UNKNOWN_CODE))[0]
    if unk.shape[0]:
        texts, _ = gather_strings(sc.buf, sc.offs[keep[unk], 9], sc.lens[keep[unk], 9], 32)
        u, cnt = np.unique(texts, return_counts=True)
        detail = ", ".join(f"{t.decode('latin-1')} ({describe_codes(t.decode('latin-1'))}) x{c}"
                           for t, c in zip(u, cnt, strict=True))
        report.notes.append(f"{unk.shape[0]} trades carry condition codes not in DTN's table "
                            f"(kept with COND_UNKNOWN_CODE): {detail}")
    mcs, cnt = np.unique(rows.market_center, return_counts=True)
    unknown = [(int(m), int(c)) for m, c in zip(mcs, cnt, strict=True) if int(m) not in IQFEED_MARKETS]
    if unknown:
        report.notes.append("market center ids not in the listed-market table (kept as venue ids): "
                            + ", ".join(f"{m} x{c}" for m, c in unknown))


def tick_conditions(rows: TickRows) -> np.ndarray:
    """Catalog condition bits for tick rows.

    IQFeed's Basis for Last is DTN's own verdict on last-sale eligibility: ``C`` sets COND_REGULAR
    (DTN writes the REGULAR code ``01`` only alone, so a last-qualified ISO is ``3D`` with basis
    ``C``) and ``E`` adds COND_EXTENDED_HOURS (Form-T); the hex codes add the rest (``01`` included,
    which :func:`~quantedge.feeds.iqfeed.conditions.wire_conditions` writes beside other codes where
    the basis cannot say it), and a TRF/ADF market center adds COND_OFF_EXCHANGE.
    """
    bits = rows.code_bits | np.where(rows.basis == ord("C"), COND_REGULAR, 0).astype(np.uint32)
    bits = bits | np.where(rows.basis == ord("E"), COND_EXTENDED_HOURS, 0).astype(np.uint32)
    return bits | market_center_conditions(rows.market_center)


def trades_with_quotes(symbol_id: int | np.ndarray, ts: np.ndarray, seq: np.ndarray, price: np.ndarray,
                       size: np.ndarray,
                       venue: np.ndarray, conditions: np.ndarray, side: np.ndarray, bid: np.ndarray,
                       ask: np.ndarray, has_nbbo: np.ndarray | None = None) -> np.ndarray:
    """Trade rows carrying the NBBO -> events: [bid quote, ask quote] when the NBBO changed, then the trade.

    The quote pair is emitted for a symbol's first row and whenever bid or ask differs from that
    symbol's previous row; quote sizes are 0 ("size unknown": the row carries only prices).  Quotes
    sort before the trade under the catalog's (ts_recv, seq, kind) merge order, so a consumer sees
    the NBBO that was in force at the trade.  The trade is the group's FLAG_LAST event.  Rows where
    ``has_nbbo`` is False carry no NBBO: they emit no quotes and are skipped by the change test.
    """
    n = ts.shape[0]
    sym = np.broadcast_to(np.asarray(symbol_id, np.int32), (n,))
    order = np.argsort(sym, kind="stable")
    if has_nbbo is not None:
        order = order[has_nbbo[order]]
    sb, sa, ss = bid[order], ask[order], sym[order]
    ch = np.ones(order.shape[0], bool)
    if order.shape[0] > 1:
        ch[1:] = (sb[1:] != sb[:-1]) | (sa[1:] != sa[:-1]) | (ss[1:] != ss[:-1])
    changed = np.zeros(n, bool)
    changed[order] = ch
    per = 1 + 2 * changed.astype(np.int64)
    start = np.cumsum(per) - per
    out = np.zeros(int(per.sum()), dtype=EVENT_DTYPE)
    out["level"] = -1
    tpos = start + 2 * changed
    out["ts_event"][tpos] = ts
    out["seq"][tpos] = seq
    out["price"][tpos] = price
    out["size"][tpos] = size
    out["venue"][tpos] = venue
    out["conditions"][tpos] = conditions
    out["side"][tpos] = side
    out["kind"][tpos] = KIND_TRADE
    out["flags"][tpos] = FLAG_TS_RECV_MODELED | FLAG_LAST
    qrows = np.nonzero(changed)[0]
    for off, px, sd in ((0, bid, SIDE_BID), (1, ask, SIDE_ASK)):
        qpos = start[qrows] + off
        out["ts_event"][qpos] = ts[qrows]
        out["seq"][qpos] = seq[qrows]
        out["price"][qpos] = px[qrows]
        out["side"][qpos] = sd
        out["kind"][qpos] = KIND_QUOTE
        out["flags"][qpos] = FLAG_TS_RECV_MODELED | FLAG_FROM_TRADE
    out["ts_recv"] = out["ts_event"]
    out["symbol"] = np.repeat(sym, per)
    return out


def ticks_to_events(rows: TickRows, symbol_id: int) -> np.ndarray:
    """Normalized events for one symbol's tick rows (see :func:`trades_with_quotes`).

    Side is the trade aggressor: ``1`` buy -> SIDE_BID, ``2`` sell -> SIDE_ASK, ``0`` (not
    supported) and ``3`` (neither) -> 0.
    """
    side = np.zeros(len(rows), np.int8)
    side[rows.aggressor == 1] = SIDE_BID
    side[rows.aggressor == 2] = SIDE_ASK
    return trades_with_quotes(symbol_id, rows.ts, rows.tick_id, rows.last, rows.last_size,
                              rows.market_center.astype(np.int16), tick_conditions(rows), side,
                              rows.bid, rows.ask)


# --- bars --------------------------------------------------------------------------------------

#: Interval / daily bars.  ``ts`` is the bar label in ns UTC: for interval bars the timestamp IQFeed
#: sent (end of bar unless LabelAtBeginning=1); for daily/weekly/monthly bars 00:00 ET of the date.
BAR_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("open", np.int64),
        ("high", np.int64),
        ("low", np.int64),
        ("close", np.int64),
        ("total_volume", np.int64),  # cumulative day volume (interval); = period_volume (daily)
        ("period_volume", np.int64),
        ("n_trades", np.int64),  # IQFeed fills it only for tick-interval requests; 0 for daily
        ("open_interest", np.int64),  # daily rows only; 0 for interval bars
    ]
)
BAR_FIELDS = ["timestamp", "high", "low", "open", "close", "total_volume", "period_volume", "n_trades"]
DAILY_FIELDS = ["date", "high", "low", "open", "close", "period_volume", "open_interest"]
_BAR_TYPES = [T_STR, T_PRICE, T_PRICE, T_PRICE, T_PRICE, T_INT, T_INT, T_INT]


def parse_bar_lines(data: bytes, source: str) -> tuple[np.ndarray, ImportReport]:
    """Parse an interval (HIX/HID/HIT) or daily (HDX/HDT/HWX/HMX) response into BAR_DTYPE rows."""
    report = ImportReport(source=source, fmt="iqfeed_bars")
    data, truncated_last = _prepare(data, report)
    sc = scan(data, _BAR_TYPES, 7, lookup_prefix=True)
    nondata = np.nonzero(sc.status == ST_NONDATA)[0]
    endmsg = _classify_nondata(sc, report, nondata, (8, 7), truncated_last)
    failed = sc.status >= ST_COLUMNS
    report.rows_read += int(failed.sum())
    quarantine_failed(sc, report, BAR_FIELDS, truncated_last)
    ok = np.nonzero(sc.status == ST_OK)[0]
    report.rows_read += ok.shape[0]
    v = sc.vals[ok]
    daily = sc.nfields[ok] == 7
    lens = sc.lens[ok, 0]
    text, fits = gather_strings(sc.buf, sc.offs[ok, 0], lens, 29)
    text = np.where(daily & (lens == 10), np.char.add(text, b" 00:00:00"), text)
    ts, ts_ok = parse_et_datetimes(text)
    ts_ok &= fits & np.where(daily, lens == 10, lens == 19)
    quarantine_rows(sc, report, ok[~ts_ok], "timestamp", "bad_timestamp",
                    "expected 'YYYY-MM-DD HH:MM:SS' (interval) or 'YYYY-MM-DD' (daily)")
    hi, lo, op, cl = v[:, 1], v[:, 2], v[:, 3], v[:, 4]
    bad = ts_ok & ((hi < lo) | (op > hi) | (op < lo) | (cl > hi) | (cl < lo))
    quarantine_rows(sc, report, ok[bad], "high", "inconsistent_ohlc", "open/close outside low..high")
    good = ts_ok & ~bad
    v = v[good]
    daily = daily[good]
    out = np.zeros(int(good.sum()), dtype=BAR_DTYPE)
    out["ts"] = ts[good]
    out["high"], out["low"], out["open"], out["close"] = v[:, 1], v[:, 2], v[:, 3], v[:, 4]
    out["period_volume"] = np.where(daily, v[:, 5], v[:, 6])
    out["total_volume"] = np.where(daily, v[:, 5], v[:, 5])
    out["n_trades"] = np.where(daily, 0, v[:, 7])
    out["open_interest"] = np.where(daily, v[:, 6], 0)
    report.rows_imported = out.shape[0]
    if daily.any() and (~daily).any():
        report.notes.append("file mixes daily and interval rows")
    _finish_notes(sc, report, endmsg, truncated_last)
    return out, report
