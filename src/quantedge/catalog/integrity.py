"""Integrity checks over one symbol-day of normalized events (``quantedge check``).

A check either *quarantines* a row (the row cannot be used: it would corrupt books, volumes or the
time order downstream) or only *flags* it (the row is odd but is real market data that a strategy
may legitimately see, e.g. a crossed NBBO or a late print).  The policy and every counter are
documented in ``docs/integrity-checks.md``.

Speed: the only sequential part, NBBO tracking (per-venue tops of book, atomic groups, crossed
time), is one compiled kernel; everything else is vectorized numpy over the event columns, so a
day of tens of millions of events is checked in seconds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit

from quantedge.catalog.quarantine import Problem, clip
from quantedge.events import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_EXECUTE,
    ACTION_MODIFY,
    COND_AVERAGE_PRICE,
    COND_CANCEL_CORRECTION,
    COND_CROSS,
    COND_EXTENDED_HOURS,
    COND_ODD_LOT,
    COND_OUT_OF_SEQUENCE,
    COND_SPECIAL_TERMS,
    COND_TRADE_THROUGH_EXEMPT,
    EVENT_DTYPE,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    KIND_DEPTH,
    KIND_NAMES,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_TRADE,
    PRICE_SCALE,
)
from quantedge.timeutil import ET, NS, et_dates, format_et, seconds_since_midnight_et

# --- quarantine reasons: code -> (name, field).  Code 0 = good row.  A row gets the first that
# applies, in this order, so the reason is deterministic.
REASONS: dict[int, tuple[str, str]] = {
    1: ("unknown_kind", "kind"),
    2: ("negative_price", "price"),
    3: ("negative_size", "size"),
    4: ("trade_nonpositive_price", "price"),
    5: ("trade_nonpositive_size", "size"),
    6: ("quote_bad_side", "side"),
    7: ("book_nonpositive_price", "price"),
    8: ("book_nonpositive_size", "size"),
    9: ("duplicate_tick_id", "seq"),
    10: ("ts_recv_out_of_order", "ts_recv"),
}
REASON_CODE = {name: code for code, (name, _) in REASONS.items()}

# --- sessions (ET wall clock, seconds after midnight) -------------------------------------------
SESSION_NAMES = ("overnight", "pre", "regular", "post")  # index = session code
PRE_OPEN_S = 4 * 3600
REGULAR_OPEN_S = 9 * 3600 + 30 * 60
REGULAR_CLOSE_S = 16 * 3600
POST_CLOSE_S = 20 * 3600

# NBBO state codes written by the kernel at atomic-group ends
NBBO_OK = 0
NBBO_LOCKED = 1
NBBO_CROSSED = 2

#: Conditions whose price is not a current market price (reported in their own bucket).
SPECIAL_PRICE_CONDS = (COND_AVERAGE_PRICE | COND_CANCEL_CORRECTION | COND_CROSS | COND_TRADE_THROUGH_EXEMPT
                       | COND_SPECIAL_TERMS)


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the checks (all have defaults that suit US equities; see the docs)."""

    #: ts_recv may step back by at most this much (ns) before the row is quarantined.
    ts_tolerance_ns: int = 1_000_000
    #: a regular-session stretch without any event longer than this (s) is a gap.
    gap_seconds: float = 300.0
    #: a trade is "far outside" when it is beyond the NBBO by more than BOTH
    #: ``outside_pct`` x the NBBO side price and ``outside_spreads`` x the quoted spread.
    outside_pct: float = 0.05
    outside_spreads: float = 5.0
    #: trades smaller than this are odd lots (plus any trade carrying COND_ODD_LOT).
    round_lot: int = 100
    #: check trade tick ids for repeats (key: venue + seq; corrections excluded).
    unique_trade_ids: bool = True


# ---------------------------------------------------------------------------------------------
# compiled kernels


@njit(cache=True)
def _overlap(a, b, lo, hi):
    """Length of [a, b) inside [lo, hi)."""
    x = max(a, lo)
    y = min(b, hi)
    return y - x if y > x else 0


@njit(cache=True)
def _nbbo_kernel(kind, side, price, venue_idx, n_venues, ts, skip, group_end, open_ns, close_ns):
    """Track the NBBO through the day; evaluate crossed/locked state at atomic-group ends.

    Returns (state per row, trade bid, trade ask, times) where ``times`` holds crossed_ns,
    locked_ns, longest_crossed_ns and the crossed / locked ns inside [open_ns, close_ns).
    ``state`` is set only at group ends where a quote changed the NBBO since the last evaluation;
    trade bid/ask are the NBBO in force when each trade row is reached (quotes applied so far).
    """
    n = kind.shape[0]
    bid = np.zeros(n_venues, np.int64)
    ask = np.zeros(n_venues, np.int64)
    state = np.zeros(n, np.uint8)
    n_tr = 0
    for i in range(n):
        if kind[i] == KIND_TRADE:
            n_tr += 1
    tbid = np.zeros(n_tr, np.int64)
    task = np.zeros(n_tr, np.int64)
    best_bid = 0
    best_ask = 0
    dirty = False
    cur = NBBO_OK
    since = 0
    times = np.zeros(5, np.int64)
    t = 0
    for i in range(n):
        k = kind[i]
        if k == KIND_QUOTE and not skip[i]:
            v = venue_idx[i]
            if side[i] > 0:
                bid[v] = price[i]
            else:
                ask[v] = price[i]
            bb = 0
            ba = 0
            for j in range(n_venues):
                if bid[j] > bb:
                    bb = bid[j]
                a = ask[j]
                if a > 0 and (ba == 0 or a < ba):
                    ba = a
            best_bid = bb
            best_ask = ba
            dirty = True
        elif k == KIND_TRADE:
            tbid[t] = best_bid
            task[t] = best_ask
            t += 1
        if dirty and group_end[i]:
            dirty = False
            s = NBBO_OK
            if best_bid > 0 and best_ask > 0:
                if best_bid > best_ask:
                    s = NBBO_CROSSED
                elif best_bid == best_ask:
                    s = NBBO_LOCKED
            state[i] = s
            if s != cur:
                _close_state(times, cur, since, ts[i], open_ns, close_ns)
                cur = s
                since = ts[i]
    if n > 0:
        _close_state(times, cur, since, ts[n - 1], open_ns, close_ns)
    return state, tbid, task, times


@njit(cache=True)
def _close_state(times, cur, since, until, open_ns, close_ns):
    """Add the stretch [since, until) spent in state ``cur`` to the time counters."""
    dur = until - since
    if cur == NBBO_CROSSED:
        times[0] += dur
        if dur > times[2]:
            times[2] = dur
        times[3] += _overlap(since, until, open_ns, close_ns)
    elif cur == NBBO_LOCKED:
        times[1] += dur
        times[4] += _overlap(since, until, open_ns, close_ns)


@njit(cache=True)
def _longest_nondecreasing(ts):
    """Mask of one longest non-decreasing subsequence: the fewest rows to drop to restore order.

    Patience sorting, O(n log n).  Used only when ts_recv steps back at least once, so that one
    wild timestamp costs one row (the wild one), not every row after it.
    """
    n = ts.shape[0]
    keep = np.zeros(n, np.bool_)
    if n == 0:
        return keep
    tails = np.empty(n, np.int64)
    prev = np.full(n, -1, np.int64)
    length = 0
    for i in range(n):
        x = ts[i]
        lo = 0
        hi = length
        while lo < hi:
            mid = (lo + hi) // 2
            if ts[tails[mid]] <= x:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev[i] = tails[lo - 1]
        tails[lo] = i
        if lo == length:
            length += 1
    j = tails[length - 1]
    while j >= 0:
        keep[j] = True
        j = prev[j]
    return keep


# ---------------------------------------------------------------------------------------------
# result


@dataclass
class CheckResult:
    """Outcome of :func:`check_events` for one symbol-day.

    ``bad[i]`` is True for quarantined rows and ``reason[i]`` is their code in :data:`REASONS`
    (0 for good rows); ``counts`` holds every check's counters (see docs/integrity-checks.md).
    """

    symbol: str
    date: dt.date | None
    events: np.ndarray
    bad: np.ndarray
    reason: np.ndarray
    counts: dict = field(default_factory=dict)
    config: CheckConfig = field(default_factory=CheckConfig)

    frozen: dict | None = field(default=None, repr=False)  # summary kept after release()

    @property
    def n_events(self) -> int:
        return self.frozen["events"] if self.frozen else int(self.events.shape[0])

    @property
    def n_bad(self) -> int:
        return self.frozen["bad"] if self.frozen else int(np.count_nonzero(self.bad))

    @property
    def n_good(self) -> int:
        return self.n_events - self.n_bad

    @property
    def usable(self) -> bool:
        """At least one row survived the checks."""
        return self.n_good > 0

    def release(self) -> CheckResult:
        """Drop the per-row arrays, keeping counts and reasons (for reports over many days)."""
        if not self.frozen:
            self.frozen = {"events": self.n_events, "bad": self.n_bad, "reasons": self.reasons()}
            self.events = self.events[:0]
            self.bad = self.bad[:0]
            self.reason = self.reason[:0]
        return self

    def good_events(self) -> np.ndarray:
        """The rows that go on (merge order preserved); empty after :meth:`release`."""
        return self.events[~self.bad] if self.n_bad else self.events

    def reasons(self) -> dict[str, int]:
        """Quarantined rows counted by reason name."""
        if self.frozen:
            return dict(self.frozen["reasons"])
        codes, cnt = np.unique(self.reason[self.bad], return_counts=True)
        return {REASONS[int(c)][0]: int(k) for c, k in zip(codes, cnt, strict=True)}

    @property
    def where(self) -> str:
        return f"{self.symbol}/{self.date.isoformat() if self.date else 'unknown-date'}"

    def iter_problems(self) -> Iterator[Problem]:
        """One :class:`Problem` per quarantined row: symbol-day, row, seq, field and reason."""
        ev = self.events
        for i in np.flatnonzero(self.bad):
            r = ev[i]
            name, fld = REASONS[int(self.reason[i])]
            kind = KIND_NAMES.get(int(r["kind"]), f"kind {int(r['kind'])}")
            detail = (f"seq {int(r['seq'])} {kind} at {format_et(int(r['ts_recv']))} ET: "
                      f"{fld}={_field_text(r, fld)}")
            raw = json.dumps({n: r[n].item() for n in EVENT_DTYPE.names})
            yield Problem(file=self.where, line=int(i) + 1, field=fld, reason=name, detail=detail,
                          raw=clip(raw, 400))

    def problems(self, limit: int | None = None) -> list[Problem]:
        out = []
        for p in self.iter_problems():
            if limit is not None and len(out) >= limit:
                break
            out.append(p)
        return out

    def write_quarantine(self, f) -> int:
        """Write every quarantined row as one JSON line to the open text file ``f``."""
        n = 0
        for p in self.iter_problems():
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
            n += 1
        return n

    def to_dict(self) -> dict:
        """Machine-readable report (plain JSON types only)."""
        return {
            "symbol": self.symbol,
            "date": self.date.isoformat() if self.date else None,
            "events": self.n_events,
            "good": self.n_good,
            "quarantined": self.n_bad,
            "quarantine_reasons": self.reasons(),
            "checks": self.counts,
            "config": asdict(self.config),
        }


def _field_text(r: np.void, fld: str) -> str:
    if fld == "price":
        return f"{int(r['price']) / PRICE_SCALE:.4f}"
    if fld == "ts_recv":
        return format_et(int(r["ts_recv"]), 9)
    return str(r[fld].item())


# ---------------------------------------------------------------------------------------------
# the checks


def _to_date(date: dt.date | str | int | None, ts: np.ndarray) -> dt.date | None:
    if isinstance(date, dt.datetime):
        return date.date()
    if isinstance(date, dt.date):
        return date
    if date is None:
        if ts.shape[0] == 0:
            return None
        d = int(et_dates(ts[:1])[0])
        return dt.date(d // 10000, d // 100 % 100, d % 100)
    s = str(date)
    if len(s) == 8 and s.isdigit():
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return dt.date.fromisoformat(s)


def _et_ns(date: dt.date, seconds: int) -> int:
    """ns UTC of an ET wall-clock time on ``date`` (exact on daylight-saving change days)."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return int(dt.datetime(date.year, date.month, date.day, h, m, s, tzinfo=ET).timestamp()) * NS


def _backwards(ts: np.ndarray) -> tuple[int, int]:
    """(rows whose timestamp is earlier than the previous row's, largest such step in ns)."""
    if ts.shape[0] < 2:
        return 0, 0
    step = ts[1:] - ts[:-1]
    neg = step < 0
    n = int(np.count_nonzero(neg))
    return n, (int(-step[neg].min()) if n else 0)


def keep_in_order(ts: np.ndarray) -> np.ndarray:
    """Fewest rows to drop so ``ts`` is non-decreasing; among equal choices keep earlier rows.

    Running the patience sort backwards over negated stamps makes ties resolve toward the earlier
    row, so the row that steps back (not its predecessor) is the one reported.
    """
    return _longest_nondecreasing(-ts[::-1])[::-1]


def _ts_recv_out_of_order(ts: np.ndarray, tol: int) -> np.ndarray:
    """Rows to quarantine because ts_recv is out of order by more than ``tol`` ns."""
    keep = keep_in_order(ts)
    kept = np.flatnonzero(keep)
    out_idx = np.flatnonzero(~keep)
    bad = np.zeros(ts.shape[0], bool)
    if out_idx.size == 0:
        return bad
    pos = np.searchsorted(kept, out_idx)
    x = ts[out_idx]
    has_prev = pos > 0
    has_next = pos < kept.size
    prev_ts = ts[kept[np.maximum(pos - 1, 0)]]
    next_ts = ts[kept[np.minimum(pos, kept.size - 1)]]
    too_early = has_prev & (x < prev_ts - tol)
    too_late = has_next & (x > next_ts + tol)
    bad[out_idx[too_early | too_late]] = True
    return bad


def _session_codes(ts_event: np.ndarray, day: dt.date | None) -> np.ndarray:
    """Session code per row (index into SESSION_NAMES) from the ET wall clock.

    When every stamp lies on ``day`` (the normal symbol-day), the four boundaries are converted to
    ns once and compared directly; otherwise each stamp goes through the per-row ET conversion.
    """
    n = ts_event.shape[0]
    if n and day is not None:
        lo = _et_ns(day, 0)
        nxt = day + dt.timedelta(days=1)
        hi = int(dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=ET).timestamp()) * NS
        if lo <= int(ts_event.min()) and int(ts_event.max()) < hi:
            bounds = (PRE_OPEN_S, REGULAR_OPEN_S, REGULAR_CLOSE_S, POST_CLOSE_S)
            b = np.array([_et_ns(day, s) for s in bounds])
            code = np.searchsorted(b, ts_event, side="right").astype(np.uint8)
            code[code == 4] = 0  # after 20:00: overnight
            return code
    sec = seconds_since_midnight_et(ts_event)
    code = np.zeros(n, np.uint8)  # overnight
    code[(sec >= PRE_OPEN_S) & (sec < REGULAR_OPEN_S)] = 1
    code[(sec >= REGULAR_OPEN_S) & (sec < REGULAR_CLOSE_S)] = 2
    code[(sec >= REGULAR_CLOSE_S) & (sec < POST_CLOSE_S)] = 3
    return code


def check_events(events: np.ndarray, *, symbol: str, date: dt.date | str | int | None = None,
                 config: CheckConfig | None = None) -> CheckResult:
    """Run every integrity check over one symbol-day of merge-ordered ``EVENT_DTYPE`` events.

    ``date`` is the ET trading date (defaults to the first event's); it anchors the regular
    session for the gap check.  Input must be in merge order, as ``Catalog.read`` returns it.
    """
    if events.dtype != EVENT_DTYPE:
        raise TypeError("events must have quantedge.events.EVENT_DTYPE")
    cfg = config or CheckConfig()
    n = events.shape[0]
    # one contiguous copy per column: masks over 64-byte records would touch every cache line
    kind = np.ascontiguousarray(events["kind"])
    price = np.ascontiguousarray(events["price"])
    size = np.ascontiguousarray(events["size"])
    side = np.ascontiguousarray(events["side"])
    action = np.ascontiguousarray(events["action"])
    flags = np.ascontiguousarray(events["flags"])
    conds = np.ascontiguousarray(events["conditions"])
    ts_recv = np.ascontiguousarray(events["ts_recv"])
    ts_event = np.ascontiguousarray(events["ts_event"])
    venue = np.ascontiguousarray(events["venue"])
    day = _to_date(date, ts_event)
    reason = np.zeros(n, np.uint8)

    def mark(mask: np.ndarray, name: str) -> int:
        new = mask & (reason == 0)
        reason[new] = REASON_CODE[name]
        return int(np.count_nonzero(mask))

    is_trade = kind == KIND_TRADE
    is_quote = kind == KIND_QUOTE
    is_order = kind == KIND_ORDER
    is_depth = kind == KIND_DEPTH
    counts: dict = {}

    # -- value checks (quarantine) -------------------------------------------------------------
    known = np.isin(kind, np.array(list(KIND_NAMES), np.uint8))
    counts["unknown_kind"] = mark(~known, "unknown_kind")
    counts["negative_price"] = mark(price < 0, "negative_price")
    counts["negative_size"] = mark(size < 0, "negative_size")
    counts["trade_nonpositive_price"] = mark(is_trade & (price <= 0), "trade_nonpositive_price")
    counts["trade_nonpositive_size"] = mark(is_trade & (size <= 0), "trade_nonpositive_size")
    counts["quote_bad_side"] = mark(is_quote & (side != 1) & (side != -1), "quote_bad_side")
    priced = (is_order | is_depth) & ((action == ACTION_ADD) | (action == ACTION_MODIFY))
    counts["book_nonpositive_price"] = mark(priced & (price <= 0), "book_nonpositive_price")
    sized = is_order & ((action == ACTION_ADD) | (action == ACTION_CANCEL) | (action == ACTION_EXECUTE))
    counts["book_nonpositive_size"] = mark(sized & (size <= 0), "book_nonpositive_size")

    # -- quote values that are only flagged --------------------------------------------------
    counts["quote_empty_side"] = int(np.count_nonzero(is_quote & (price == 0)))
    from_trade = (flags & FLAG_FROM_TRADE) != 0
    counts["quote_size_unknown"] = int(np.count_nonzero(is_quote & (price > 0) & (size == 0) & from_trade))
    counts["quote_zero_size"] = int(np.count_nonzero(is_quote & (price > 0) & (size == 0) & ~from_trade))

    # -- duplicate trade tick ids (quarantine the repeats; the first occurrence stays) ----------
    # A repeat is a print whose (venue, seq) an earlier *message* (atomic group) already printed: the
    # prints of one message share its sequence number (a sweep through several levels, an iceberg's
    # fills in LOBSTER/Databento-style feeds and in the simulator), and they are distinct prints.
    group_end = (flags & FLAG_LAST) != 0
    if n:
        group_end[:-1] |= ts_recv[1:] != ts_recv[:-1]
        group_end[-1] = True
    dup = np.zeros(n, bool)
    if cfg.unique_trade_ids:
        cand = np.flatnonzero(is_trade & ((conds & COND_CANCEL_CORRECTION) == 0))
        if cand.size > 1:
            group = np.zeros(n, np.int64)
            group[1:] = np.cumsum(group_end[:-1])
            key_seq = events["seq"][cand]
            key_venue = venue[cand]
            order = np.lexsort((cand, key_seq, key_venue))
            s_seq = key_seq[order]
            s_ven = key_venue[order]
            s_grp = group[cand[order]]
            first = np.ones(order.size, bool)
            first[1:] = (s_seq[1:] != s_seq[:-1]) | (s_ven[1:] != s_ven[:-1])
            head = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
            dup[cand[order[~first & (s_grp != s_grp[head])]]] = True
    counts["duplicate_tick_id"] = mark(dup, "duplicate_tick_id")

    # -- time order ---------------------------------------------------------------------------
    nb, mb = _backwards(ts_event)
    counts["ts_event_backwards"] = nb
    counts["ts_event_max_back_ns"] = mb
    nb, mb = _backwards(ts_recv)
    counts["ts_recv_backwards"] = nb
    counts["ts_recv_max_back_ns"] = mb
    ooo = _ts_recv_out_of_order(ts_recv, int(cfg.ts_tolerance_ns)) if nb else np.zeros(n, bool)
    counts["ts_recv_out_of_order"] = mark(ooo, "ts_recv_out_of_order")

    bad = reason != 0
    good = ~bad

    # -- NBBO: crossed / locked, and the NBBO in force at each trade (compiled) -----------------
    # dense venue index through a 64K lookup table (int16 ids): O(n), no sort
    qrows = is_quote & good
    present = np.zeros(1 << 16, bool)
    vkey = venue.astype(np.int32) + (1 << 15)
    present[vkey[qrows]] = True
    dense = np.cumsum(present, dtype=np.int32) - 1
    venue_idx = dense[vkey]
    n_venues = max(1, int(np.count_nonzero(present)))
    open_ns = _et_ns(day, REGULAR_OPEN_S) if day else 0
    close_ns = _et_ns(day, REGULAR_CLOSE_S) if day else 0
    state, tbid, task, times = _nbbo_kernel(kind, side, price, venue_idx, n_venues, ts_recv, bad, group_end,
                                            open_ns, close_ns)
    counts["nbbo_crossed"] = int(np.count_nonzero(state == NBBO_CROSSED))
    counts["nbbo_locked"] = int(np.count_nonzero(state == NBBO_LOCKED))
    counts["nbbo_crossed_s"] = int(times[0]) / NS
    counts["nbbo_locked_s"] = int(times[1]) / NS
    counts["nbbo_longest_crossed_s"] = int(times[2]) / NS
    counts["nbbo_crossed_regular_s"] = int(times[3]) / NS
    counts["nbbo_locked_regular_s"] = int(times[4]) / NS

    # -- sessions -----------------------------------------------------------------------------
    session = _session_codes(ts_event, day)
    good_trade = is_trade & good
    good_quote = is_quote & good
    sess: dict[str, dict[str, int]] = {}
    for code, name in enumerate(SESSION_NAMES):
        in_s = session == code
        sess[name] = {
            "trades": int(np.count_nonzero(good_trade & in_s)),
            "quotes": int(np.count_nonzero(good_quote & in_s)),
            "volume": int(size[good_trade & in_s].sum()),
        }
    counts["sessions"] = sess
    counts["extended_hours_trades"] = sum(sess[s]["trades"] for s in ("overnight", "pre", "post"))
    flagged_ext = good_trade & ((conds & COND_EXTENDED_HOURS) != 0)
    counts["trades_flagged_extended"] = int(np.count_nonzero(flagged_ext))

    # -- trades far outside the NBBO -----------------------------------------------------------
    tsel = good[is_trade]  # good rows among the trade rows (kernel output is per trade row)
    tp = price[is_trade][tsel]
    tb = tbid[tsel]
    ta = task[tsel]
    tc = conds[is_trade][tsel]
    tsess = session[is_trade][tsel]
    have = (tb > 0) & (ta > 0) & (tb <= ta)
    above = tp - ta
    below = tb - tp
    dist = np.maximum(np.maximum(above, below), 0)
    ref = np.where(above > 0, ta, tb).astype(np.float64)
    thresh = np.maximum(cfg.outside_pct * ref, cfg.outside_spreads * (ta - tb).astype(np.float64))
    far = have & (dist > 0) & (dist > thresh)
    oos = (tc & COND_OUT_OF_SEQUENCE) != 0
    ext = ~oos & ((tsess != 2) | ((tc & COND_EXTENDED_HOURS) != 0))
    special = ~oos & ~ext & ((tc & SPECIAL_PRICE_CONDS) != 0)
    regular = ~oos & ~ext & ~special
    counts["trades_without_nbbo"] = int(np.count_nonzero(~have))
    counts["far_outside_nbbo"] = {
        "regular": int(np.count_nonzero(far & regular)),
        "extended_hours": int(np.count_nonzero(far & ext)),
        "out_of_sequence": int(np.count_nonzero(far & oos)),
        "special_price": int(np.count_nonzero(far & special)),
    }

    # -- time gaps in the regular session (ts_recv) --------------------------------------------
    counts.update(_gaps(ts_recv[good], day, cfg.gap_seconds))

    # -- odd lots -----------------------------------------------------------------------------
    odd = good_trade & ((size < cfg.round_lot) | ((conds & COND_ODD_LOT) != 0))
    counts["odd_lot_trades"] = int(np.count_nonzero(odd))
    counts["odd_lot_volume"] = int(size[odd].sum())

    counts["trades"] = int(np.count_nonzero(good_trade))
    counts["quotes"] = int(np.count_nonzero(good_quote))
    return CheckResult(symbol=symbol, date=day, events=events, bad=bad, reason=reason, counts=counts,
                       config=cfg)


def _gaps(ts: np.ndarray, day: dt.date | None, gap_seconds: float) -> dict:
    """Stretches of the regular session with no event, the session open and close included."""
    if day is None:
        return {"gaps": 0, "longest_gap_s": 0.0, "longest_gap_start": None}
    open_ns = _et_ns(day, REGULAR_OPEN_S)
    close_ns = _et_ns(day, REGULAR_CLOSE_S)
    inside = np.clip(np.maximum.accumulate(ts) if ts.size else ts, open_ns, close_ns)
    pts = np.concatenate(([open_ns], inside, [close_ns]))
    d = np.diff(pts)
    limit = int(gap_seconds * NS)
    i = int(np.argmax(d))
    return {
        "gaps": int(np.count_nonzero(d > limit)),
        "longest_gap_s": int(d[i]) / NS,
        "longest_gap_start": format_et(int(pts[i]), 3),
    }


# ---------------------------------------------------------------------------------------------
# presentation

#: (column header, function of the counts dict) for the per symbol-day table.
TABLE_COLUMNS: list[tuple[str, object]] = [
    ("events", lambda r: r.n_events),
    ("quarantined", lambda r: r.n_bad),
    ("ts back evt/recv", lambda r: f"{r.counts['ts_event_backwards']}/{r.counts['ts_recv_backwards']}"),
    ("dup ids", lambda r: r.counts["duplicate_tick_id"]),
    ("bad px/sz", lambda r: sum(r.counts[k] for k in ("negative_price", "negative_size",
                                                        "trade_nonpositive_price", "trade_nonpositive_size",
                                                        "book_nonpositive_price", "book_nonpositive_size"))),
    ("crossed (s, reg s)", lambda r: f"{r.counts['nbbo_crossed']} ({r.counts['nbbo_crossed_s']:.1f}, "
                                     f"{r.counts['nbbo_crossed_regular_s']:.1f})"),
    ("locked", lambda r: r.counts["nbbo_locked"]),
    ("far out reg/ext/oos/spc", lambda r: "{regular}/{extended_hours}/{out_of_sequence}/{special_price}"
     .format(**r.counts["far_outside_nbbo"])),
    ("gaps (longest)", lambda r: f"{r.counts['gaps']} ({r.counts['longest_gap_s']:.0f}s)"),
    ("trades pre/reg/post", lambda r: "{}/{}/{}".format(*(r.counts["sessions"][s]["trades"]
                                                         for s in ("pre", "regular", "post")))),
    ("odd lots", lambda r: r.counts["odd_lot_trades"]),
]


def render_table(results: list[CheckResult], title: str = "Integrity checks"):
    """A Rich table of the checks per symbol-day.

    Up to six symbol-days are shown one per column (a check per row, readable in 80 columns);
    more are shown one per row.
    """
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    if len(results) <= 6:
        table.add_column("check", style="bold")
        for r in results:
            style = "red" if not r.usable else ("yellow" if r.n_bad else None)
            table.add_column(f"{r.symbol}\n{r.date.isoformat() if r.date else '-'}", justify="right",
                             style=style)
        for name, fn in TABLE_COLUMNS:
            table.add_row(name, *(str(fn(r)) for r in results))  # type: ignore[operator]
        return table
    table.add_column("symbol", style="bold")
    table.add_column("date")
    for name, _ in TABLE_COLUMNS:
        table.add_column(name, justify="right")
    for r in results:
        cells = [str(fn(r)) for _, fn in TABLE_COLUMNS]  # type: ignore[operator]
        style = "red" if not r.usable else ("yellow" if r.n_bad else None)
        table.add_row(r.symbol, r.date.isoformat() if r.date else "-", *cells, style=style)
    return table
