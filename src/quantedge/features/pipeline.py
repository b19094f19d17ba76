"""Fused book + features step: for each event, apply it to its book, then update that symbol's features.

Three kernels share the per-event feature code (:mod:`quantedge.features.kernels`):

* :func:`l3_features_step` — market-by-order books (``quantedge.book.l3.l3_event``);
* :func:`l2_features_step` — market-by-price books (``quantedge.book.l2.l2_event``);
* :func:`nbbo_features_step` — features only, for streams without depth: the NBBO is taken from
  KIND_QUOTE events into a one-level book per symbol (quotes with size 0 — e.g. FLAG_FROM_TRADE
  quotes — have unknown size).

Order of work for one event of symbol s at time t (event time ``ts_event``, clamped to be monotone
per symbol):

1. sampling: if t crossed the symbol's next cadence boundary, write a snapshot row as of the
   boundary (derived ahead from the rings where they stand: ``derive_at``);
2. advance the windows to t (spread x time integral, bucket rotation);
3. at the first event of an atomic group, remember the touch in force (the NBBO a print in this
   group is classified against: for LOBSTER the book before the execution, for IQFeed trade rows
   the quote pair that precedes the print in the group);
4. apply the event to the book (the book module's own per-event function);
5. a print updates the trade features; a quote sets the group's touch in force;
6. at the group end (FLAG_LAST, or every event with ``every_event``) of a group that changed the
   book: touch, spread, mid, micro-price, depth, OFI, touch episodes;
7. derive the window features into the symbol's row of ``F``.

Batch boundaries play no part: every piece of state a later event needs is in the arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from quantedge.book.l2 import L2Book, l2_event
from quantedge.book.l3 import L3Book, _bits, _home, l3_event
from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_SYMBOL,
    B_LAST_TS,
    C_CLEARS,
    C_EVENTS,
    LV_KNOWN,
    LV_PX,
    LV_SZ,
    SD_NLEV,
    LevelBook,
    anomaly,
    check_cross,
    clear_side,
    mark_levels,
    side_index,
    status_event,
)
from quantedge.features.kernels import (
    advance,
    base_to,
    book_update,
    derive_at,
    derive_marked,
    group_start,
    init_symbol,
    snapshot_group_start,
    trade_update,
)
from quantedge.features.prefetch import prefetch, prefetch_write
from quantedge.features.sampling import Sampler, Snapshots, null_sampler
from quantedge.features.state import (
    CFG_CADENCE,
    CFG_EVERY_EVENT,
    CFG_ROWS,
    CFG_SKIP_STALE,
    NF,
    ROWS_ALL,
    ROWS_SIGNALS,
    S_CUM,
    S_GRP_BOOK,
    S_GRP_OPEN,
    S_INIT,
    S_MARK,
    S_N_BACKSTEP,
    S_N_EVENTS,
    S_NEXT_SAMPLE,
    S_PB,
    S_RL_E,
    S_RL_PX,
    S_RL_SZ,
    S_RL_T,
    S_TLAST,
    S_TWO_SIDED,
    FeatureState,
)

KIND_CLEAR = 1
KIND_STATUS = 2
KIND_ORDER = 3
KIND_DEPTH = 4
KIND_QUOTE = 5
KIND_TRADE = 6
FLAG_LAST = 0x80


#: events between the prefetch of a symbol's state and its use
AHEAD = 8
#: events between the write-prefetch of a snapshot row and the event that writes it
AHEAD_ROW = 16
# (The window rings are not prefetched: since they hold running totals, a 100 ms boundary writes one
# slot and reads none, and the prefetch cost more than it saved: 10.2 -> 10.8 M events/s.)


@njit(cache=True, inline="always")
def prefetch_symbol(fs, lv, sd, pl, s: int) -> None:
    """Start loading the cache lines an event of symbol s will touch (scalar state, touch, levels)."""
    prefetch(fs, (s, 0))
    prefetch(fs, (s, S_CUM + 8))
    prefetch(fs, (s, S_TWO_SIDED))
    prefetch(fs, (s, S_PB))
    prefetch(sd, (s, 0, 0))
    prefetch(lv, (s, 0, 0, 0))
    prefetch(lv, (s, 1, 0, 0))
    prefetch(pl, (s, 0, 0, 0))
    prefetch(pl, (s, 1, 0, 0))


@njit(cache=True, inline="always")
def prefetch_row(s_ts, s_sym, s_F, s_rank, j: int) -> None:
    """In a grouped chunk, when event j will write a snapshot row, start fetching that row's lines for
    writing: the rows land where stream order puts them, scattered over the buffer, and without this
    each of the row's ~16 lines stalled the derivation's stores on a miss."""
    if j < s_rank.shape[0]:
        r = s_rank[j]
        if r >= 0:
            for c in range(0, NF, 8):
                prefetch_write(s_F, (r, c))
            prefetch_write(s_F, (r, NF - 1))
            prefetch_write(s_ts, (r,))
            prefetch_write(s_sym, (r,))


@njit(cache=True, inline="always")
def pre_event(fs, rq, vap, fz, cfg, lv, sd, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked, s: int, ts: int,
              i: int) -> int:
    """Steps 1-3 for one event; returns the (monotone) event time, or -1 when the snapshot buffer
    is full (nothing was changed: the caller stops and resumes at this event)."""
    if fs[s, S_INIT] == 0:
        init_symbol(fs, s, ts)
        fs[s, S_INIT] = 1
        cad = cfg[CFG_CADENCE]
        if cad > 0:
            fs[s, S_NEXT_SAMPLE] = (ts // cad + 1) * cad
    t = ts
    if t < fs[s, S_TLAST]:
        fs[s, S_N_BACKSTEP] += 1
        t = fs[s, S_TLAST]
    cad = cfg[CFG_CADENCE]
    if cad > 0 and t >= fs[s, S_NEXT_SAMPLE]:
        if s_rank.shape[0] > 0:  # a grouped chunk: the row goes where stream order puts it
            r = s_rank[i]
            if r < 0:
                return -1
        else:
            r = s_n[0]
            if r >= s_ts.shape[0]:
                return -1
        bnd = (t // cad) * cad
        base_to(fs, rq, fz, s, bnd)
        derive_at(s_F, r, fs, rq, vap, fz, s, cfg[CFG_ROWS] == ROWS_ALL, bnd)  # as of bnd (rings unmoved)
        s_ts[r] = bnd
        s_sym[r] = s
        s_n[0] += 1
        fs[s, S_NEXT_SAMPLE] = bnd + cad
    advance(fs, rq, fz, s, t)
    if fs[s, S_MARK] == 0:
        fs[s, S_MARK] = 1
        marked[n_marked[0]] = s
        n_marked[0] += 1
    if fs[s, S_GRP_OPEN] == 0:
        group_start(fs, lv, sd, s)
        fs[s, S_GRP_OPEN] = 1
        fs[s, S_GRP_BOOK] = 0
    return t


@njit(cache=True, inline="always")
def reload_mark(fs, lv, sd, s: int, t: int) -> None:
    """Depth books only (market-by-order / by-price), before the book applies an event at time t: at a
    new timestamp remember the best bid before its events, for the same-timestamp iceberg reloads
    (``cum_reloads``).  The NBBO path never calls it: a consolidated quote's size changes with every
    venue's quotes, so a reload cannot be told from another venue's quote there (count stays 0)."""
    if t != fs[s, S_RL_T]:
        fs[s, S_RL_T] = t
        fs[s, S_RL_E] = 0
        if sd[s, 0, SD_NLEV] > 0:
            fs[s, S_RL_PX] = lv[s, 0, 0, LV_PX]
            fs[s, S_RL_SZ] = lv[s, 0, 0, LV_SZ]
        else:
            fs[s, S_RL_PX] = 0
            fs[s, S_RL_SZ] = 0


@njit(cache=True, inline="always")
def post_event(fs, pl, vap, cfg, lv, sd, s: int, t: int, kind: int, flags: int, price: int, size: int,
               cond: int, venue: int, side: int, skip_stale: bool) -> None:
    """Steps 5-6 for one event (after the book applied it)."""
    if kind == KIND_TRADE:
        trade_update(fs, vap, s, t, price, size, cond, venue, side)
    elif kind == KIND_QUOTE:
        snapshot_group_start(fs, lv, sd, s)
        fs[s, S_GRP_BOOK] = 1
    elif kind == KIND_ORDER or kind == KIND_DEPTH or kind == KIND_CLEAR:
        fs[s, S_GRP_BOOK] = 1
    if (flags & FLAG_LAST) != 0 or cfg[CFG_EVERY_EVENT] == 1:
        if fs[s, S_GRP_BOOK] == 1:
            book_update(fs, pl, lv, sd, cfg, s, skip_stale)
        fs[s, S_GRP_OPEN] = 0
        fs[s, S_GRP_BOOK] = 0
    fs[s, S_N_EVENTS] += 1


@njit(cache=True, _nrt=False)
def l3_features_step(lv, sd, bk, ot, otn, fs, rq, pl, vap, fz, cfg, s_ts, s_sym, s_F, s_n, s_rank, marked,
                     n_marked, batch, start: int) -> int:
    """Market-by-order books + features over batch[start:]; returns the index where it stopped
    (len(batch) when done, earlier when the snapshot buffer filled up)."""
    ns = lv.shape[0]
    bits = _bits(ot.shape[0])
    skip_stale = cfg[CFG_SKIP_STALE] == 1
    n = batch.shape[0]
    for i in range(start, n):
        j = i + AHEAD
        if j < n:
            f = batch[j]
            sj = f.symbol
            if sj >= 0 and sj < ns:
                prefetch_symbol(fs, lv, sd, pl, sj)
                if f.kind == KIND_ORDER:
                    prefetch(ot, (_home(f.order_id, sj, bits), 0))
        prefetch_row(s_ts, s_sym, s_F, s_rank, i + AHEAD_ROW)
        e = batch[i]
        k = e.kind
        if k != KIND_ORDER and k != KIND_TRADE and k != KIND_STATUS and k != KIND_CLEAR:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        t = pre_event(fs, rq, vap, fz, cfg, lv, sd, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked, s,
                      e.ts_event, i)
        if t < 0:
            return i
        reload_mark(fs, lv, sd, s, t)
        l3_event(lv, sd, bk, ot, otn, bits, s, k, e.action, e.side, e.price, e.size, e.order_id,
                 e.conditions, e.ts_event)
        post_event(fs, pl, vap, cfg, lv, sd, s, t, k, e.flags, e.price, e.size, e.conditions, e.venue, e.side,
                   skip_stale)
    return n


@njit(cache=True, _nrt=False)
def l2_features_step(lv, sd, bk, fs, rq, pl, vap, fz, cfg, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked,
                     batch, start: int) -> int:
    """Market-by-price books + features over batch[start:] (depth, clear, status and trades)."""
    ns = lv.shape[0]
    skip_stale = cfg[CFG_SKIP_STALE] == 1
    n = batch.shape[0]
    for i in range(start, n):
        j = i + AHEAD
        if j < n:
            sj = batch[j].symbol
            if sj >= 0 and sj < ns:
                prefetch_symbol(fs, lv, sd, pl, sj)
        prefetch_row(s_ts, s_sym, s_F, s_rank, i + AHEAD_ROW)
        e = batch[i]
        k = e.kind
        if k != KIND_DEPTH and k != KIND_TRADE and k != KIND_STATUS and k != KIND_CLEAR:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        t = pre_event(fs, rq, vap, fz, cfg, lv, sd, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked, s,
                      e.ts_event, i)
        if t < 0:
            return i
        reload_mark(fs, lv, sd, s, t)
        if k != KIND_TRADE:
            l2_event(lv, sd, bk, s, k, e.action, e.side, e.level, e.price, e.size, e.ts_event)
        post_event(fs, pl, vap, cfg, lv, sd, s, t, k, e.flags, e.price, e.size, e.conditions, e.venue, e.side,
                   skip_stale)
    return n


@njit(cache=True, _nrt=False)
def nbbo_event(lv, sd, bk, s: int, kind: int, action: int, side: int, price: int, size: int, ts: int) -> None:
    """The one-level NBBO book of the features-only path: a quote sets its side (price 0 empties it;
    size 0 = size unknown, level marked not known)."""
    if kind == KIND_QUOTE:
        si = side_index(side)
        if si < 0 or size < 0 or price < 0:
            anomaly(bk, s, A_BAD_FIELD)
            return
        mark_levels(sd, s, si, 0, 1)
        if price == 0:
            lv[s, si, 0, LV_PX] = 0
            lv[s, si, 0, LV_SZ] = 0
            lv[s, si, 0, LV_KNOWN] = 0
            sd[s, si, SD_NLEV] = 0
        else:
            lv[s, si, 0, LV_PX] = price
            lv[s, si, 0, LV_SZ] = size
            lv[s, si, 0, LV_KNOWN] = 1 if size > 0 else 0
            sd[s, si, SD_NLEV] = 1
        check_cross(lv, sd, bk, s)
    elif kind == KIND_CLEAR:
        for si in range(2):
            if side == 0 or side_index(side) == si:
                clear_side(lv, sd, s, si)
        bk[s, C_CLEARS] += 1
        check_cross(lv, sd, bk, s)
    elif kind == KIND_STATUS:
        status_event(bk, s, action)
    else:
        return
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts


@njit(cache=True, _nrt=False)
def nbbo_features_step(lv, sd, bk, fs, rq, pl, vap, fz, cfg, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked,
                       batch, start: int) -> int:
    """Features-only path: NBBO quotes, trades, clears and status over batch[start:].  A quote
    without a size is not stale, so the stale-level rule never applies here."""
    ns = lv.shape[0]
    n = batch.shape[0]
    for i in range(start, n):
        j = i + AHEAD
        if j < n:
            sj = batch[j].symbol
            if sj >= 0 and sj < ns:
                prefetch_symbol(fs, lv, sd, pl, sj)
        prefetch_row(s_ts, s_sym, s_F, s_rank, i + AHEAD_ROW)
        e = batch[i]
        k = e.kind
        if k != KIND_QUOTE and k != KIND_TRADE and k != KIND_STATUS and k != KIND_CLEAR:
            continue
        s = e.symbol
        if s < 0 or s >= ns:
            anomaly(bk, ns, A_BAD_SYMBOL)
            continue
        t = pre_event(fs, rq, vap, fz, cfg, lv, sd, s_ts, s_sym, s_F, s_n, s_rank, marked, n_marked, s,
                      e.ts_event, i)
        if t < 0:
            return i
        nbbo_event(lv, sd, bk, s, k, e.action, e.side, e.price, e.size, e.ts_event)
        post_event(fs, pl, vap, cfg, lv, sd, s, t, k, e.flags, e.price, e.size, e.conditions, e.venue, e.side,
                   False)
    return n


#: a batch is worked symbol by symbol in chunks of at most this many events (see group_by_symbol)
GROUP_CHUNK = 1 << 20
#: batches (and chunks) shorter than this, or one-symbol pipelines, run in stream order
GROUP_MIN = 4096
NO_TS_LO = np.iinfo(np.int64).min


@njit(cache=True, inline="always")
def kind_worked(kinds: int, k: int) -> bool:
    """Bit k of ``kinds``.  A kind of 64 or more (corrupt data: the kinds are 0-7) is never worked,
    as the step kernels skip it: a 64-bit shift by 64 or more is undefined (x86 shifts by k mod 64,
    CUDA gives 0), so the bit test alone would count it on one target and not on the other."""
    return k < 64 and ((kinds >> k) & 1) == 1


#: event kinds each step kernel works (bit k = kind k); the others are skipped
MODE_KINDS = {
    "l3": (1 << KIND_ORDER) | (1 << KIND_TRADE) | (1 << KIND_STATUS) | (1 << KIND_CLEAR),
    "l2": (1 << KIND_DEPTH) | (1 << KIND_TRADE) | (1 << KIND_STATUS) | (1 << KIND_CLEAR),
    "nbbo": (1 << KIND_QUOTE) | (1 << KIND_TRADE) | (1 << KIND_STATUS) | (1 << KIND_CLEAR),
}


@njit(cache=True, _nrt=False)
def group_by_symbol(batch, a: int, b: int, ns: int, counts, out, rank_in, rank_out) -> None:
    """Counting sort of batch[a:b] by symbol into out[:b-a], stable (each symbol's events keep their
    order), carrying each event's snapshot row (rank_in[i - a] -> rank_out[k]; skipped when rank_in
    is empty).  Symbols outside [0, ns) go last, in order.

    Why: with thousands of symbols, consecutive events in time order belong to different symbols and
    each one loads a cold symbol's state (~90 kB of books and windows per symbol); worked symbol by
    symbol the state stays in cache.  Symbols share no state, so each symbol's result is the same."""
    has_rank = rank_in.shape[0] > 0
    for k in range(ns + 2):
        counts[k] = 0
    for i in range(a, b):
        s = batch[i].symbol
        k = s if (s >= 0 and s < ns) else ns
        counts[k + 1] += 1
    for k in range(ns + 1):
        counts[k + 1] += counts[k]
    for i in range(a, b):
        s = batch[i].symbol
        k = s if (s >= 0 and s < ns) else ns
        j = counts[k]
        counts[k] = j + 1
        out[j] = batch[i]
        if has_rank:
            rank_out[j] = rank_in[i - a]


@njit(cache=True, _nrt=False)
def rows_fit(batch, a: int, b: int, ns: int, fs, cad: int, kinds: int, room: int, base: int, lastt, lastb,
             rank) -> int:
    """Which events of batch[a:b] write a snapshot row at cadence ``cad``, and where: rank[i - a] =
    ``base`` + the row's index in stream order, -1 for an event that writes none.  Returns the end
    e <= b of the longest run batch[a:e] with at most ``room`` rows.  ``kinds``: bit k set for each
    event kind the step works; lastt/lastb: scratch of ns entries, set here from the features state.

    Exact, from the sampling rule of pre_event: after any worked event the symbol's next sampling
    time is the first cadence multiple after its (monotone-clamped) time, so an event writes a row iff
    its time lies in a later cadence interval than the symbol's previous worked event; a symbol's first
    event ever only starts its clock."""
    for s in range(ns):
        if fs[s, S_INIT] == 1:
            lastt[s] = fs[s, S_TLAST]
            lastb[s] = lastt[s] // cad
        else:
            lastt[s] = NO_TS_LO
    return rows_scan(batch, a, b, ns, cad, kinds, room, base, lastt, lastb, rank)


@njit(cache=True, inline="always")
def clock_row(lastt, lastb, s: int, t: int, cad: int) -> tuple[int, int, int]:
    """The sampling rule for symbol s's next worked event at time t: (t clamped to the symbol's last
    time, its cadence interval k, 1 when the event writes a row: k is later than the interval of the
    symbol's previous worked event, 0 when not, -1 for the symbol's first event, which only starts its
    clock, set here).  The caller then sets ``lastt[s] = t`` and, for a row, ``lastb[s] = k``:
    rows_scan first checks its room for the row."""
    if lastt[s] == NO_TS_LO:
        lastt[s] = t
        lastb[s] = t // cad
        return t, lastb[s], -1
    if t < lastt[s]:
        t = lastt[s]
    k = t // cad
    return t, k, 1 if k > lastb[s] else 0


@njit(cache=True, _nrt=False)
def rows_scan(batch, a: int, b: int, ns: int, cad: int, kinds: int, room: int, base: int, lastt, lastb,
              rank) -> int:
    """:func:`rows_fit` from the symbols' clocks ``lastt`` / ``lastb`` as they are (``NO_TS_LO``: not
    started), which it advances over batch[a:e] only: a caller that keeps them from chunk to chunk
    (the GPU path, whose features state stays on the device) can go on with the next chunk at e."""
    used = 0
    for i in range(a, b):
        rank[i - a] = -1
        e = batch[i]
        s = e.symbol
        if s < 0 or s >= ns or not kind_worked(kinds, e.kind):
            continue
        t, k, due = clock_row(lastt, lastb, s, e.ts_event, cad)
        if due < 0:
            continue
        if due == 1:
            if used == room:
                return i
            lastb[s] = k
            rank[i - a] = base + used
            used += 1
        lastt[s] = t
    return b


class FeaturePipeline:
    """Books + features for a set of symbols, fed batch by batch (``step``).

    ``mode``: ``"l3"`` (market-by-order: pass an :class:`L3Book`), ``"l2"`` (market-by-price: an
    :class:`L2Book`) or ``"nbbo"`` (features only from quotes and trades; the one-level NBBO book
    is allocated here).  Snapshots are written when the state's cadence is > 0.
    """

    def __init__(self, mode: str, features: FeatureState, book: LevelBook | None = None,
                 sampler: Sampler | None = None) -> None:
        if mode not in ("l3", "l2", "nbbo"):
            raise ValueError(f"mode must be 'l3', 'l2' or 'nbbo', got {mode!r}")
        if mode == "nbbo":
            if book is None:
                book = LevelBook.allocate(features.n_symbols, capacity=1, tick=0)
        elif mode == "l3" and not isinstance(book, L3Book):
            raise ValueError("mode 'l3' needs an L3Book")
        elif mode == "l2" and not isinstance(book, (L2Book, LevelBook)):
            raise ValueError("mode 'l2' needs an L2Book")
        if book.n_symbols != features.n_symbols:
            raise ValueError(f"book has {book.n_symbols} symbols, features {features.n_symbols}")
        self.mode = mode
        self.book = book
        self.features = features
        if sampler is None:
            sampler = Sampler() if features.cfg[CFG_CADENCE] > 0 else null_sampler()
        self.sampler = sampler
        #: derive F at the end of every step (False: only snapshots and explicit derive() calls)
        self.derive_on_step = True
        self._marked = np.zeros(features.n_symbols, np.int64)
        self._n_marked = np.zeros(1, np.int64)
        #: work large batches symbol by symbol (same results, see step)
        self.group_symbols = True
        ns = features.n_symbols
        self._grp_counts = np.zeros(ns + 2, np.int64)
        self._grp_rank_out = np.empty(0, np.int64)
        self._grp_lastt = np.zeros(ns, np.int64)
        self._grp_lastb = np.zeros(ns, np.int64)
        self._grp_out = np.empty(0, np.uint8)
        self._grp_rank = np.empty(0, np.int64)

    @property
    def sampler(self) -> Sampler:
        """Where snapshot rows are written (replaceable: a live loop hands its own in)."""
        return self._sampler

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        if self.features.cfg[CFG_ROWS] == ROWS_SIGNALS:
            sampler.F[...] = np.nan  # the columns signal-input rows leave alone read as not computed
        self._sampler = sampler

    def step(self, batch: np.ndarray, derive: bool | None = None,
             on_full: Callable[[Sampler], None] | None = None) -> None:
        """Apply one batch of EVENT_DTYPE events (any size, any cut of the stream).

        ``derive`` (default: the pipeline's ``derive_on_step``): refresh the F rows of the symbols
        the batch touched at the end; without it F is refreshed by :meth:`derive` (snapshots are
        always complete).  ``on_full``: called with the sampler whenever its buffer fills (or, when
        the batch is worked symbol by symbol, has too little room for the next chunk's rows), to
        consume the rows in place and empty it (default: move them to the sampler's chunk list).

        Large batches over several symbols are worked symbol by symbol in chunks (``group_symbols``,
        on by default): books, features and snapshot rows come out exactly as in stream order, 2-3x
        faster with thousands of symbols (BENCHMARKS.md)."""
        n = batch.shape[0]
        sm = self.sampler
        sampling = self.features.cfg[CFG_CADENCE] > 0
        if (self.group_symbols and n >= GROUP_MIN and self.features.n_symbols > 1
                and (not sampling or sm.capacity >= GROUP_MIN)):
            self._step_grouped(batch, on_full)
        else:
            self._step_stream(batch, on_full)
        if self.derive_on_step if derive is None else derive:
            self.derive()

    def _kernel(self, batch: np.ndarray, start: int, rank: np.ndarray) -> int:
        """The mode's step kernel; ``rank``: each event's snapshot row (grouped chunk) or empty."""
        b = self.book
        f = self.features
        sm = self.sampler
        if self.mode == "l3":
            return l3_features_step(b.lv, b.sd, b.bk, b.ot, b.otn, f.fs, f.rq, f.pl, f.vap, f.fz, f.cfg,
                                    sm.ts, sm.symbol, sm.F, sm.n, rank, self._marked, self._n_marked,
                                    batch, start)
        if self.mode == "l2":
            return l2_features_step(b.lv, b.sd, b.bk, f.fs, f.rq, f.pl, f.vap, f.fz, f.cfg, sm.ts, sm.symbol,
                                    sm.F, sm.n, rank, self._marked, self._n_marked, batch, start)
        return nbbo_features_step(b.lv, b.sd, b.bk, f.fs, f.rq, f.pl, f.vap, f.fz, f.cfg, sm.ts, sm.symbol,
                                  sm.F, sm.n, rank, self._marked, self._n_marked, batch, start)

    def _flush(self, on_full: Callable[[Sampler], None] | None) -> None:
        sm = self.sampler
        if on_full is None:
            sm.drain()
        else:
            on_full(sm)
            if sm.n[0]:
                raise RuntimeError("on_full must empty the sampler's buffer")

    def _step_stream(self, batch: np.ndarray, on_full: Callable[[Sampler], None] | None) -> None:
        """The batch in stream order; when the snapshot buffer fills the kernel stops, it is emptied
        and the kernel resumes at the event that needed the row."""
        start = 0
        n = batch.shape[0]
        while True:
            start = self._kernel(batch, start, self._grp_rank[:0])
            if start >= n:
                return
            self._flush(on_full)

    def _scratch(self, n: int, dtype: np.dtype) -> None:
        """Grow the grouping buffers to n events (kept: bounded by GROUP_CHUNK)."""
        if self._grp_out.shape[0] < n or self._grp_out.dtype != dtype:
            self._grp_out = np.empty(n, dtype)
        if self._grp_rank.shape[0] < n:
            self._grp_rank = np.empty(n, np.int64)
            self._grp_rank_out = np.empty(n, np.int64)

    def _step_grouped(self, batch: np.ndarray, on_full: Callable[[Sampler], None] | None) -> None:
        """The batch symbol by symbol, chunk by chunk (group_by_symbol).  Each event's snapshot row is
        known before the chunk runs (rows_fit), so the kernel writes every row where stream order puts
        it; a chunk ends where its rows fill the sampler's free room, after emptying the sampler when
        it holds rows and the chunk would be cut short."""
        sm = self.sampler
        f = self.features
        ns = f.n_symbols
        cad = int(f.cfg[CFG_CADENCE])
        n = batch.shape[0]
        self._scratch(min(n, GROUP_CHUNK), batch.dtype)
        kinds = MODE_KINDS[self.mode]
        no_rank = self._grp_rank[:0]
        a = 0
        while a < n:
            c = min(n - a, GROUP_CHUNK)
            rank_in = rank = no_rank
            if cad > 0:
                end = rows_fit(batch, a, a + c, ns, f.fs, cad, kinds, sm.capacity - int(sm.n[0]),
                               int(sm.n[0]), self._grp_lastt, self._grp_lastb, self._grp_rank)
                if end < a + c and sm.n[0] > 0:
                    self._flush(on_full)
                    end = rows_fit(batch, a, a + c, ns, f.fs, cad, kinds, sm.capacity, 0, self._grp_lastt,
                                   self._grp_lastb, self._grp_rank)
                c = end - a  # >= min(GROUP_MIN, n - a): a row per event at most, capacity >= GROUP_MIN
                rank_in = self._grp_rank[:c]
                rank = self._grp_rank_out[:c]
            group_by_symbol(batch, a, a + c, ns, self._grp_counts, self._grp_out, rank_in, rank)
            r0 = int(sm.n[0])
            end = self._kernel(self._grp_out[:c], 0, rank)
            # rows_fit is exact: a stop or a row count it did not predict is a defect, not bad input
            if end != c or (cad > 0 and int(sm.n[0]) - r0 != int(np.count_nonzero(rank_in >= 0))):
                raise RuntimeError(f"grouped chunk: {end} of {c} events, {int(sm.n[0]) - r0} rows "
                                   "(not the predicted snapshot rows)")
            a += c

    def derive(self) -> None:
        """Bring F up to date for every symbol touched since the last derivation (njit)."""
        f = self.features
        derive_marked(f.F, f.fs, f.rq, f.vap, f.fz, self._marked, self._n_marked)

    def snapshots(self) -> Snapshots:
        """Every snapshot row written so far, in emission order."""
        return self.sampler.collect()

    def counters(self, s: int) -> dict[str, int]:
        """Per-symbol feature counters (prints classified by rule, skipped, clamped times...)."""
        from quantedge.features import state as st

        names = ("N_EVENTS", "N_TRADES", "N_QUOTE_RULE", "N_TICK_RULE", "N_UNCLASSIFIED", "N_WITH_SIDE",
                 "N_AGREE", "N_BACKSTEP", "N_SKIPPED", "CUM_REFILL", "CUM_HIDDEN", "CUM_RELOAD",
                 "CUM_RELOAD_SH", "VAP_OUT", "STALE", "N_CROSSED")
        return {n.lower(): int(self.features.fs[s, getattr(st, "S_" + n)]) for n in names}
