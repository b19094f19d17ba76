"""Exactness proof of the books against exchange ground truth (LOBSTER orderbook files, MBP-10 rows).

The book is seeded from the first truth row (its levels are known; for L3 their volume is held as
pre-existing, untracked volume), every later event is replayed through the same per-event kernel
that ``step`` uses, and after every atomic message (FLAG_LAST) the top L levels of both sides are
compared with the truth row of that message.  Each compared slot is either *known* (the book claims
it exactly: it must match) or *unknown* (a level that entered the feed window from deeper, whose
size the messages cannot tell).  Rows are classified:

* exact: every slot known and equal;
* reveal: some slot unknown, every known slot equal;
* mismatch: some known slot differs (the claim of exactness is broken; must be 0).

With ``resync`` a side holding an unknown (or mismatching) slot is re-set from the truth row after
the comparison; each such side re-sync is counted, so the reveal count is also the number of times
the book had to look at the truth file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from quantedge import events as ev
from quantedge.book.l2 import L2Book, l2_event_call
from quantedge.book.l3 import L3Book, _bits, l3_event_call
from quantedge.book.state import (
    A_BAD_SYMBOL,
    ANOMALY_NAMES,
    C_RESYNC,
    DIRTY_ALL,
    HZ_ALL_ASK,
    HZ_ALL_BID,
    LV_AUX,
    LV_KNOWN,
    LV_NCOL,
    LV_PX,
    LV_SZ,
    SD_HZ,
    SD_NLEV,
    SD_TRUNC,
    anomaly,
    better,
    find_level,
    mark_levels,
)

# result slots of the verify kernel
S_ROWS = 0
S_EXACT = 1
S_REVEAL = 2
S_MISMATCH = 3
S_MISMATCH_SLOTS = 4
S_FIRST_MISMATCH = 5
S_RESYNC_SIDES = 6
S_RESYNC_LEVELS = 7
S_EVENTS = 8
S_UNKNOWN_SLOTS = 9
S_NCOL = 10

ROW_EXACT = 1
ROW_REVEAL = 2
ROW_MISMATCH = 3

MODE_L3 = 0
MODE_L2 = 1


@njit(cache=True)
def _resync_side(lv, sd, s: int, si: int, tr, mode: int) -> int:
    """Re-set side si from truth levels tr (L, 2) (price 0 = empty); returns levels changed."""
    n_levels = tr.shape[0]
    cap = lv.shape[2]
    k = 0
    while k < n_levels and tr[k, 0] != 0:
        k += 1
    complete = k < n_levels
    tmp = np.zeros((cap, LV_NCOL), dtype=np.int64)
    changed = 0
    m = 0
    for j in range(k):
        p = tr[j, 0]
        q = tr[j, 1]
        i = find_level(lv, sd, s, si, p)
        tracked = 0
        if i >= 0:
            tracked = lv[s, si, i, LV_SZ] - lv[s, si, i, LV_AUX]
            if lv[s, si, i, LV_SZ] != q or lv[s, si, i, LV_KNOWN] == 0:
                changed += 1
        else:
            changed += 1
        if m < cap:
            tmp[m, LV_PX] = p
            tmp[m, LV_SZ] = q
            tmp[m, LV_AUX] = q - tracked if mode == MODE_L3 else 0
            tmp[m, LV_KNOWN] = 1
            m += 1
    if not complete and k > 0:
        last = tr[k - 1, 0]
        for i in range(sd[s, si, SD_NLEV]):
            if m >= cap:
                break
            if better(si, last, lv[s, si, i, LV_PX]):
                for c in range(LV_NCOL):
                    tmp[m, c] = lv[s, si, i, c]
                tmp[m, LV_KNOWN] = 0
                m += 1
    for i in range(cap):
        for c in range(LV_NCOL):
            lv[s, si, i, c] = tmp[i, c]
    sd[s, si, SD_NLEV] = m
    mark_levels(sd, s, si, 0, DIRTY_ALL)
    if complete:
        sd[s, si, SD_HZ] = HZ_ALL_BID if si == 0 else HZ_ALL_ASK
        sd[s, si, SD_TRUNC] = 0
    elif k > 0:
        sd[s, si, SD_HZ] = tr[k - 1, 0]
    return changed


@njit(cache=True)
def _verify(lv, sd, bk, ot, otn, events, apply, cmp_row, truth, resync: bool, mode: int, stats,
            row_class) -> None:
    s = 0
    bits = _bits(ot.shape[0])
    n_levels = truth.shape[2]
    stats[S_FIRST_MISMATCH] = -1
    for i in range(events.shape[0]):
        if not apply[i]:
            continue
        e = events[i]
        if e.symbol != 0:
            anomaly(bk, lv.shape[0], A_BAD_SYMBOL)
            continue
        if mode == MODE_L3:
            l3_event_call(lv, sd, bk, ot, otn, bits, s, e.kind, e.action, e.side, e.price, e.size, e.order_id,
                     e.conditions, e.ts_event)
        else:
            l2_event_call(lv, sd, bk, s, e.kind, e.action, e.side, e.level, e.price, e.size, e.ts_event)
        stats[S_EVENTS] += 1
        r = cmp_row[i]
        if r < 0 or r >= truth.shape[0]:
            continue
        stats[S_ROWS] += 1
        unknown = 0
        bad = 0
        side_bad = np.zeros(2, dtype=np.bool_)
        for si in range(2):
            nl = sd[s, si, SD_NLEV]
            hz = sd[s, si, SD_HZ]
            complete = (hz == HZ_ALL_BID if si == 0 else hz == HZ_ALL_ASK) and sd[s, si, SD_TRUNC] == 0
            for j in range(n_levels):
                tp = truth[r, si, j, 0]
                tq = truth[r, si, j, 1]
                if j < nl:
                    p = lv[s, si, j, LV_PX]
                    q = lv[s, si, j, LV_SZ]
                    kn = lv[s, si, j, LV_KNOWN] == 1
                else:
                    p = 0
                    q = 0
                    kn = complete
                if not kn:
                    unknown += 1
                    side_bad[si] = True
                elif p != tp or q != tq:
                    bad += 1
                    side_bad[si] = True
        stats[S_UNKNOWN_SLOTS] += unknown
        if bad > 0:
            stats[S_MISMATCH] += 1
            stats[S_MISMATCH_SLOTS] += bad
            if stats[S_FIRST_MISMATCH] < 0:
                stats[S_FIRST_MISMATCH] = r
            row_class[r] = ROW_MISMATCH
        elif unknown > 0:
            stats[S_REVEAL] += 1
            row_class[r] = ROW_REVEAL
        else:
            stats[S_EXACT] += 1
            row_class[r] = ROW_EXACT
        if resync:
            for si in range(2):
                if side_bad[si]:
                    stats[S_RESYNC_SIDES] += 1
                    bk[s, C_RESYNC] += 1
                    stats[S_RESYNC_LEVELS] += _resync_side(lv, sd, s, si, truth[r, si], mode)


@dataclass
class VerifyResult:
    """Outcome of one verification run (counts are rows of the truth file unless named otherwise)."""

    source: str
    levels: int
    resync: bool
    rows: int  # truth rows compared (every row after the seed row that has a message)
    exact: int
    reveal: int
    mismatch: int
    mismatch_slots: int
    first_mismatch_row: int  # 1-based truth row (LOBSTER: file line), 0 when none
    resync_sides: int
    resync_levels: int
    events: int
    anomalies: dict[str, int]
    halts: int
    hidden_trades: int
    cross_trades: int
    seconds: float
    row_class: np.ndarray = field(repr=False)
    evicted: int = 0  # stale levels removed (book/l3.py, "Stale levels")
    notes: list[str] = field(default_factory=list)

    @property
    def fully_known_exact(self) -> bool:
        """The exactness claim: no row where the known levels disagree with the truth."""
        return self.mismatch == 0

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "row_class"}
        return d


def lobster_truth(orderbook: np.ndarray) -> np.ndarray:
    """LOBSTER orderbook rows (n, 4L) -> (n, 2, L, 2) [side bid/ask][level][px, sz], 0 = empty."""
    n, c = orderbook.shape
    lv = c // 4
    t = orderbook.reshape(n, lv, 4)
    out = np.zeros((n, 2, lv, 2), dtype=np.int64)
    out[:, 1, :, 0] = t[:, :, 0]
    out[:, 1, :, 1] = t[:, :, 1]
    out[:, 0, :, 0] = t[:, :, 2]
    out[:, 0, :, 1] = t[:, :, 3]
    empty = np.abs(out[..., 0]) >= 9_999_999_999
    out[..., 0][empty] = 0
    out[..., 1][empty] = 0
    return out


def _seed(book, truth_row: np.ndarray, aux_is_size: bool) -> None:
    for si in range(2):
        tr = truth_row[si]
        k = int(np.count_nonzero(tr[:, 0]))
        book.seed_side(0, si, tr[:k, 0], tr[:k, 1], complete=k < tr.shape[0], aux_is_size=aux_is_size)


def verify_rows(events: np.ndarray, apply: np.ndarray, cmp_row: np.ndarray, truth: np.ndarray, *,
                mode: int, resync: bool, source: str, capacity: int = 256,
                max_orders: int | None = None) -> VerifyResult:
    """Seed from truth row 0, replay the events where ``apply``; after event i compare the book with
    truth row ``cmp_row[i]`` (-1: no comparison).  truth is (rows, 2, L, 2), price 0 = empty."""
    n_levels = truth.shape[2]
    if mode == MODE_L3:
        n_add = int(np.count_nonzero((events["kind"] == ev.KIND_ORDER) & (events["action"] == ev.ACTION_ADD)))
        book = L3Book.allocate(1, capacity=capacity, window=n_levels,
                               max_orders=max_orders or min(max(n_add, 1024), 1 << 15))
        ot, otn = book.ot, book.otn
    else:
        book = L2Book.allocate(1, capacity=capacity, window=n_levels)
        ot, otn = np.zeros((16, 5), np.int64), np.zeros(2, np.int64)
    _seed(book, truth[0], aux_is_size=mode == MODE_L3)
    stats = np.zeros(S_NCOL, dtype=np.int64)
    row_class = np.zeros(truth.shape[0], dtype=np.int8)
    t0 = time.perf_counter()
    _verify(book.lv, book.sd, book.bk, ot, otn, events, apply.astype(np.bool_), cmp_row.astype(np.int64),
            truth, resync, mode, stats, row_class)
    secs = time.perf_counter() - t0
    an = book.anomalies(0)
    bad_sym = int(book.bk[1, A_BAD_SYMBOL])
    if bad_sym:
        an["bad_symbol"] = bad_sym
    from quantedge.book.state import C_CROSS_TRADES, C_EVICTED, C_HALTS, C_HIDDEN

    return VerifyResult(
        source=source, levels=n_levels, resync=resync, rows=int(stats[S_ROWS]), exact=int(stats[S_EXACT]),
        reveal=int(stats[S_REVEAL]), mismatch=int(stats[S_MISMATCH]),
        mismatch_slots=int(stats[S_MISMATCH_SLOTS]),
        first_mismatch_row=int(stats[S_FIRST_MISMATCH]) + 1 if stats[S_FIRST_MISMATCH] >= 0 else 0,
        resync_sides=int(stats[S_RESYNC_SIDES]), resync_levels=int(stats[S_RESYNC_LEVELS]),
        events=int(stats[S_EVENTS]), anomalies=an, halts=int(book.bk[0, C_HALTS]),
        hidden_trades=int(book.bk[0, C_HIDDEN]), cross_trades=int(book.bk[0, C_CROSS_TRADES]),
        evicted=int(book.bk[0, C_EVICTED]),
        seconds=secs, row_class=row_class,
    )


def verify_lobster(path: str | Path, *, resync: bool = False) -> list[VerifyResult]:
    """Verify the L3 book on every message/orderbook pair in a LOBSTER zip, folder or file."""
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook
    from quantedge.catalog.symbols import NameTable

    results = []
    for f in lobster_files(path):
        if f.orderbook is None:
            continue
        names = NameTable()
        events, report = read_lobster(f.message, names, date=f.date, symbol=f.symbol)
        book = read_lobster_orderbook(f.orderbook)
        truth = lobster_truth(book)
        events = events.copy()
        events["symbol"] = 0
        row = events["seq"].astype(np.int64) - 1  # message row i (1-based) -> truth row i-1
        apply = row >= 1  # message 1 is inside the seed row
        cmp_row = np.where(apply & ((events["flags"] & ev.FLAG_LAST) != 0), row, -1)
        res = verify_rows(events, apply, cmp_row, truth, mode=MODE_L3, resync=resync,
                          source=f"{f.symbol} {f.date} level {f.levels} ({Path(str(f.message)).name})")
        if report.rows_quarantined:
            res.notes.append(f"{report.rows_quarantined} message rows quarantined: {dict(report.reasons)}")
        results.append(res)
    return results


def databento_truth(truth: np.ndarray) -> np.ndarray:
    """The Databento importer's per-row TRUTH_DTYPE records -> (rows, 2, L, 2), price 0 = empty."""
    n, lv = truth.shape[0], truth["bid_px"].shape[1]
    out = np.zeros((n, 2, lv, 2), dtype=np.int64)
    out[:, 0, :, 0] = truth["bid_px"]
    out[:, 0, :, 1] = truth["bid_sz"]
    out[:, 1, :, 0] = truth["ask_px"]
    out[:, 1, :, 1] = truth["ask_sz"]
    return out


def verify_databento(path: str | Path, *, resync: bool = False) -> list[VerifyResult]:
    """Verify the by-price L2 book on a Databento MBP-10 CSV: seed from row 1, compare after every row.

    A row is compared once the events hold every book change up to it (the importer's ``exact``);
    its book is compared after the last event of that row.
    """
    from quantedge.catalog.importers.databento import read_databento_mbp10
    from quantedge.catalog.symbols import NameTable

    names = NameTable()
    events, report, rows = read_databento_mbp10(str(path), names)
    results = []
    for sym in np.unique(events["symbol"]):
        sel = events["symbol"] == sym
        e = events[sel].copy()
        e["symbol"] = 0
        # truth rows belong to the symbol whose events they end; a single-symbol file is the usual case
        truth = databento_truth(rows)
        pos = np.flatnonzero(sel)  # event positions of this symbol in the full stream
        apply = np.zeros(e.shape[0], dtype=np.bool_)
        cmp_row = np.full(e.shape[0], -1, dtype=np.int64)
        seed_end = int(np.searchsorted(pos, rows["event_end"][0]))
        apply[seed_end:] = True
        for j in range(1, rows.shape[0]):
            if not rows["exact"][j]:
                continue
            k = int(np.searchsorted(pos, rows["event_end"][j])) - 1
            if k >= seed_end:
                cmp_row[k] = j
        res = verify_rows(e, apply, cmp_row, truth, mode=MODE_L2, resync=resync,
                          source=f"{names.name(int(sym))} {Path(path).name}")
        res.notes.extend(report.notes)
        if report.rows_quarantined:
            res.notes.append(f"{report.rows_quarantined} rows quarantined: {dict(report.reasons)}")
        results.append(res)
    return results


def replay_rate(events: np.ndarray, truth_row0: np.ndarray, repeats: int = 5) -> float:
    """Events/s of l3_step over a whole day (seeded, warm, pages pre-touched; ``book.bench.l3_rate``)."""
    from quantedge.book.bench import l3_rate

    return l3_rate(events, truth_row0, repeats=repeats)


__all__ = [
    "ANOMALY_NAMES",
    "VerifyResult",
    "databento_truth",
    "lobster_truth",
    "replay_rate",
    "verify_databento",
    "verify_lobster",
    "verify_rows",
]
