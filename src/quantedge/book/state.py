"""Price-level book state held in plain numpy arrays, shared by every book kind.

A book set covers ``n`` symbols.  Everything a kernel needs lives in three arrays so that one
``step(lv, sd, bk, batch)`` call can update thousands of symbols without Python in the loop, and
so the state can be copied, compared and checkpointed as ordinary arrays:

* ``lv`` int64 ``(n, 2, capacity, 4)`` — the levels, best first; side 0 = bid (descending price),
  side 1 = ask (ascending).  Per level: ``LV_PX`` price ($0.0001), ``LV_SZ`` total shares,
  ``LV_AUX`` (book-kind specific: L3 = shares not attributed to a tracked order, i.e. volume from
  before the data began; venue book = number of venues quoting the price), ``LV_KNOWN`` (1 = level
  fully known from the snapshot and the message stream).
* ``sd`` int64 ``(n, 2, SD_NCOL)`` — per side: level count, the *known horizon* price (every level
  at or better than it is complete; levels worse than it may be missing or stale), a truncation
  flag (levels were dropped at capacity), the pseudo-L2 touch statistics and the *changed range*
  ``[SD_DLO, SD_DHI)``: the level indexes any kernel changed since the feature kernels last read the
  side (every writer marks it with :func:`mark_levels`; a fresh book is all changed, a read leaves it
  empty: ``DIRTY_ALL``, 0).  The feature kernels revisit only those levels for depth and
  multi-level OFI instead of the top N of both sides at every group end.
* ``bk`` int64 ``(n + 1, B_NCOL)`` — per book: anomaly counters ``A_*``, informational counters
  ``C_*``, the state flags word, last event time, window depth and tick.  Row ``n`` collects events
  whose symbol id is outside ``0..n-1``.

Bad input is counted in ``bk[s, A_*]`` and flagged in ``bk[s, B_FLAGS]`` (a sticky bit per anomaly
kind), never raised and never dropped without a count.

The kernels here only index arrays their caller keeps alive and never allocate, so they are compiled
with ``_nrt=False``: no reference-count updates (atomic instructions) on every call with an array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# --- level fields ------------------------------------------------------------------------------
LV_PX = 0
LV_SZ = 1
LV_AUX = 2
LV_KNOWN = 3
LV_NCOL = 4

BID = 0  # side index of the bid in lv / sd
ASK = 1

# --- per-side fields ---------------------------------------------------------------------------
SD_NLEV = 0  # number of levels held
SD_HZ = 1  # known horizon price (see HZ_*)
SD_TRUNC = 2  # 1 when levels were dropped at capacity (deeper book incomplete)
SD_DEPLETED = 3  # pseudo-L2: shares printed at the touch since its size was last quoted
SD_REFILLS = 4  # pseudo-L2: times the touch size was refreshed upward after depletion, same price
SD_HIDDEN = 5  # pseudo-L2: shares printed at the touch beyond its displayed size (hidden/iceberg)
SD_TOUCH_VOL = 6  # pseudo-L2: total shares printed at the touch
SD_CLEARED = 7  # pseudo-L2: touch levels consumed (traded/quoted through)
SD_DLO = 8  # levels [SD_DLO, SD_DHI) of the side may have changed since a feature kernel last read it
SD_DHI = 9
SD_NCOL = 10

#: SD_DHI of a change that moved every level from SD_DLO on (an insert or removal shifts them)
DIRTY_ALL = 1 << 30

#: Horizon sentinels.  A bid level is known iff px >= hz; an ask level iff px <= hz.
HZ_FAR = 1 << 62
HZ_ALL_BID = -HZ_FAR  # every bid price is within the horizon: the side is completely known
HZ_ALL_ASK = HZ_FAR
HZ_NONE_BID = HZ_FAR  # nothing known
HZ_NONE_ASK = -HZ_FAR

# --- per-book anomaly counters (each also sets sticky bit FLAG_ANOM_BASE << code) ----------------
A_UNKNOWN_ORDER = 0  # cancel / delete / execute / modify of an order id not in the table
A_NEGATIVE_SIZE = 1  # a reduction larger than the order or the level holds (clamped at 0)
A_OFF_TICK = 2  # price not on the tick grid (applied as given)
A_CROSSED = 3  # an update left best bid > best ask (counted on entering the state)
A_LOCKED = 4  # an update left best bid == best ask (counted on entering the state)
A_CAPACITY = 5  # a level fell beyond capacity and was dropped
A_TABLE_FULL = 6  # order table full: the order's volume is kept on its level, untracked
A_DUP_ORDER = 7  # add of an order id that is already live
A_BAD_FIELD = 8  # side not +-1, price <= 0 or negative size where one is required
A_BAD_INDEX = 9  # position-based depth event at an index the book does not have
A_UNSORTED = 10  # position-based update breaks price order
A_ORDER_MISMATCH = 11  # event price/size disagrees with the tracked order (event trusted)
A_BAD_SYMBOL = 12  # symbol id outside the book set (counted on row n)
N_ANOM = 13

ANOMALY_NAMES = (
    "unknown_order",
    "negative_size",
    "off_tick",
    "crossed",
    "locked",
    "capacity",
    "order_table_full",
    "duplicate_order",
    "bad_field",
    "bad_index",
    "unsorted",
    "order_mismatch",
    "bad_symbol",
)

# --- informational counters --------------------------------------------------------------------
C_EVENTS = 13  # events applied
C_HALTS = 14  # halts seen
C_HIDDEN = 15  # hidden executions seen (no visible change)
C_CROSS_TRADES = 16  # cross / auction prints seen (no visible change)
C_CLEARS = 17  # clear events applied
C_RESYNC = 18  # side re-syncs from an external snapshot (verify --resync)
B_FLAGS = 19
B_LAST_TS = 20
B_WINDOW = 21  # feed window depth: levels deeper than this are not updated by the feed (0 = all)
B_TICK = 22  # tick for prices >= $1 in $0.0001 (0 = no grid check); below $1 any 0.0001 is fine
C_EVICTED = 23  # stale levels removed because a resting add / visible execution proved them gone
B_EVICT = 24  # 1 = evict such levels (L3 books of one venue's order flow; see book/l3.py)
B_NCOL = 26

# --- state flag bits (bk[s, B_FLAGS]) -----------------------------------------------------------
F_HALTED = 1
F_CROSSED = 2  # current state: best bid > best ask
F_LOCKED = 4  # current state: best bid == best ask
F_TRUNCATED = 8  # some side dropped levels at capacity
FLAG_ANOM_BASE = 1 << 8  # sticky: bit (8 + code) set once anomaly `code` has occurred


@njit(cache=True, inline="always", _nrt=False)
def side_index(side: int) -> int:
    """Event side (+1 bid / -1 ask) to array side index; -1 for anything else."""
    if side == 1:
        return 0
    if side == -1:
        return 1
    return -1


@njit(cache=True, inline="always", _nrt=False)
def better(si: int, a: int, b: int) -> bool:
    """True when price a is strictly better than b on side si."""
    if si == 0:
        return a > b
    return a < b


@njit(cache=True, inline="always", _nrt=False)
def within(si: int, price: int, hz: int) -> bool:
    """True when price lies inside the known horizon hz of side si."""
    if si == 0:
        return price >= hz
    return price <= hz


@njit(cache=True, inline="always", _nrt=False)
def mark_levels(sd, s, si, lo, hi) -> None:
    """Widen side (s, si)'s changed range to cover levels [lo, hi) (``hi = DIRTY_ALL``: every level
    from ``lo`` on, as after an insert or a removal at ``lo``)."""
    lo = np.int64(lo)  # callers may index with unsigned ints: compare as int64, not as float
    hi = np.int64(hi)
    if lo < sd[s, si, SD_DLO]:
        sd[s, si, SD_DLO] = lo
    if hi > sd[s, si, SD_DHI]:
        sd[s, si, SD_DHI] = hi


@njit(cache=True, _nrt=False)
def anomaly(bk, s: int, code: int) -> None:
    bk[s, code] += 1
    bk[s, B_FLAGS] |= FLAG_ANOM_BASE << code


@njit(cache=True, _nrt=False)
def find_level(lv, sd, s: int, si: int, price: int) -> int:
    """Index of price on side si if present, else -(insertion index) - 1."""
    n = sd[s, si, SD_NLEV]
    for i in range(n):
        p = lv[s, si, i, LV_PX]
        if p == price:
            return i
        if better(si, price, p):
            return -i - 1
    return -n - 1


#: find_level_ordered: sides with at most BISECT_FROM levels are scanned linearly (as fast as a
#: bisection there, and touch events end after a step or two); deeper sides scan SCAN_LEVELS levels
#: from the touch, then bisect
BISECT_FROM = 64
SCAN_LEVELS = 16


@njit(cache=True, _nrt=False)
def _find_level_deep(lv, sd, s: int, si: int, price: int) -> int:
    """find_level on a side in strict price order with more than SCAN_LEVELS levels."""
    n = sd[s, si, SD_NLEV]
    for i in range(SCAN_LEVELS):
        p = lv[s, si, i, LV_PX]
        if p == price:
            return i
        if better(si, price, p):
            return -i - 1
    # branch-free lower bound over [SCAN_LEVELS, n): the first level not strictly better than price
    # (a data-dependent branch per halving would be mispredicted about half the time)
    base = SCAN_LEVELS
    length = n - SCAN_LEVELS
    while length > 1:
        half = length >> 1
        if better(si, lv[s, si, base + half, LV_PX], price):
            base += half
        length -= half
    if better(si, lv[s, si, base, LV_PX], price):
        base += 1
    if base < n and lv[s, si, base, LV_PX] == price:
        return base
    return -base - 1


@njit(cache=True, inline="always", _nrt=False)
def find_level_ordered(lv, sd, bk, s: int, si: int, price: int) -> int:
    """``find_level`` with O(log n) search on deep sides: the same answer, faster past BISECT_FROM levels.

    Levels are in strict price order unless a position-based update broke it (counted as A_UNSORTED,
    which leaves a sticky flag); on such a book, and on sides of at most BISECT_FROM levels (where
    the scan is as fast and touch events end after a step or two), this is the linear scan.
    """
    n = sd[s, si, SD_NLEV]
    if n > BISECT_FROM and not (bk[s, B_FLAGS] & (FLAG_ANOM_BASE << A_UNSORTED)):
        return _find_level_deep(lv, sd, s, si, price)
    for i in range(n):
        p = lv[s, si, i, LV_PX]
        if p == price:
            return i
        if better(si, price, p):
            return -i - 1
    return -n - 1


@intrinsic
def _memmove_items(typingctx, arr, dst, src, count):
    """memmove of ``count`` items inside a C-contiguous array, offsets in items from its start."""
    if not (isinstance(arr, types.Array) and arr.layout == "C" and all(
            isinstance(t, types.Integer) for t in (dst, src, count))):
        return None
    sig = types.void(arr, dst, src, count)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        d, r, c = (context.cast(builder, v, t, types.intp)
                   for v, t in zip(args[1:], signature.args[1:], strict=True))
        itemsize = context.get_abi_sizeof(context.get_data_type(aryty.dtype))
        base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        size = context.get_constant(types.intp, itemsize)
        dptr = builder.gep(base, [builder.mul(d, size)])
        sptr = builder.gep(base, [builder.mul(r, size)])
        cgutils.raw_memmove(builder, dptr, sptr, c, itemsize)
        return context.get_dummy_value()

    return sig, codegen


def move_levels(lv, s, si, dst, src, count):
    """Move ``count`` levels of side (s, si) from index src to index dst (ranges may overlap).

    Python reference; compiled code uses the overload below."""
    lv[s, si, dst:dst + count] = lv[s, si, src:src + count].copy()


@overload(move_levels, inline="always")
def _move_levels_nb(lv, s, si, dst, src, count):
    # insert/remove at the touch shift every deeper level; on the usual C-contiguous lv this is one
    # vectorized memmove instead of an element loop with run-time strides
    if isinstance(lv, types.Array) and lv.layout == "C":
        def impl(lv, s, si, dst, src, count):
            if count > 0:
                w = lv.shape[3]
                base = (s * lv.shape[1] + si) * lv.shape[2]
                _memmove_items(lv, (base + dst) * w, (base + src) * w, count * w)
        return impl

    def impl_any(lv, s, si, dst, src, count):
        move_levels_loop(lv, s, si, dst, src, count)
    return impl_any


@njit(cache=True, inline="always", _nrt=False)
def move_levels_loop(lv, s, si, dst, src, count) -> None:
    """:func:`move_levels` element by element (any layout; the GPU path's version)."""
    if dst < src:
        for k in range(count):
            for c in range(lv.shape[3]):
                lv[s, si, dst + k, c] = lv[s, si, src + k, c]
    else:
        for k in range(count - 1, -1, -1):
            for c in range(lv.shape[3]):
                lv[s, si, dst + k, c] = lv[s, si, src + k, c]


@njit(cache=True, inline="always", _nrt=False)
def insert_level(lv, sd, bk, s: int, si: int, i: int, price: int, size: int, aux: int, known: int,
                 count_overflow: bool) -> bool:
    """Insert a level at index i, shifting deeper ones; drops the deepest one at capacity.

    Returns False when i itself is beyond capacity (nothing inserted).  Overflows are counted
    (A_CAPACITY) and mark the side truncated when count_overflow is set.
    """
    cap = lv.shape[2]
    n = sd[s, si, SD_NLEV]
    if i >= cap:
        if count_overflow:
            anomaly(bk, s, A_CAPACITY)
            sd[s, si, SD_TRUNC] = 1
            bk[s, B_FLAGS] |= F_TRUNCATED
        return False
    if n == cap:
        if count_overflow:
            anomaly(bk, s, A_CAPACITY)
            sd[s, si, SD_TRUNC] = 1
            bk[s, B_FLAGS] |= F_TRUNCATED
        n -= 1
    move_levels(lv, s, si, i + 1, i, n - i)
    mark_levels(sd, s, si, i, DIRTY_ALL)
    lv[s, si, i, LV_PX] = price
    lv[s, si, i, LV_SZ] = size
    lv[s, si, i, LV_AUX] = aux
    lv[s, si, i, LV_KNOWN] = known
    sd[s, si, SD_NLEV] = n + 1
    return True


@njit(cache=True, inline="always", _nrt=False)
def remove_level(lv, sd, s: int, si: int, i: int) -> None:
    n = sd[s, si, SD_NLEV]
    move_levels(lv, s, si, i, i + 1, n - 1 - i)
    mark_levels(sd, s, si, i, DIRTY_ALL)
    lv[s, si, n - 1, LV_PX] = 0
    lv[s, si, n - 1, LV_SZ] = 0
    lv[s, si, n - 1, LV_AUX] = 0
    lv[s, si, n - 1, LV_KNOWN] = 0
    sd[s, si, SD_NLEV] = n - 1


@njit(cache=True, inline="always", _nrt=False)
def apply_window(lv, sd, bk, s: int, si: int) -> None:
    """After an insert: the feed window (e.g. 5 levels of a 5-level LOBSTER file) bounds what is seen.

    Levels deeper than the window get no messages, so a level pushed past it becomes unknown and the
    horizon moves in to the window's last level.
    """
    w = bk[s, B_WINDOW]
    if w <= 0 or sd[s, si, SD_NLEV] < w or lv[s, si, w - 1, LV_KNOWN] == 0:
        return
    # with w known levels the window ends at the w-th: prices behind it are no longer observed
    # (an order added there is outside the window and gets no message), even where they were
    # observed before
    edge = lv[s, si, w - 1, LV_PX]
    if better(si, edge, sd[s, si, SD_HZ]):
        sd[s, si, SD_HZ] = edge
    if sd[s, si, SD_NLEV] > w:
        lv[s, si, w, LV_KNOWN] = 0
        mark_levels(sd, s, si, w, w + 1)


@njit(cache=True, inline="always", _nrt=False)
def check_tick(bk, s: int, price: int) -> None:
    t = bk[s, B_TICK]
    if t <= 0 or price < 10_000:
        return
    # the common one-cent tick as a constant divisor compiles to a multiply instead of a division
    off = price % 100 != 0 if t == 100 else price % t != 0
    if off:
        anomaly(bk, s, A_OFF_TICK)


@njit(cache=True, inline="always", _nrt=False)
def check_cross(lv, sd, bk, s: int) -> None:
    """Update the crossed / locked state flags; count each entry into either state.

    Runs after every book event, so it is inlined and indexes with unsigned ints (no negative-index
    wraparound code) and writes the flags word once."""
    u = np.uint64(s)
    z = np.uint64(0)
    o = np.uint64(1)
    crossed = False
    locked = False
    if sd[u, z, SD_NLEV] > 0 and sd[u, o, SD_NLEV] > 0:
        b = lv[u, z, z, LV_PX]
        a = lv[u, o, z, LV_PX]
        crossed = b > a
        locked = b == a
    set_cross_flags(bk, u, crossed, locked)


@njit(cache=True, inline="always", _nrt=False)
def set_cross_flags(bk, u, crossed: bool, locked: bool) -> None:
    """Write book u's crossed / locked state flags (``u`` unsigned); count each entry into either
    state (every book kind's crossed/locked accounting)."""
    f = bk[u, B_FLAGS]
    nf = f & ~(F_CROSSED | F_LOCKED)
    if crossed:
        if not (f & F_CROSSED):
            bk[u, A_CROSSED] += 1
            nf |= FLAG_ANOM_BASE << A_CROSSED
        nf |= F_CROSSED
    if locked:
        if not (f & F_LOCKED):
            bk[u, A_LOCKED] += 1
            nf |= FLAG_ANOM_BASE << A_LOCKED
        nf |= F_LOCKED
    bk[u, B_FLAGS] = nf


@njit(cache=True, _nrt=False)
def clear_side(lv, sd, s: int, si: int) -> None:
    """Empty a side; after a clear the side is completely known (a fresh snapshot follows)."""
    n = sd[s, si, SD_NLEV]
    for i in range(n):
        for c in range(LV_NCOL):
            lv[s, si, i, c] = 0
    sd[s, si, SD_NLEV] = 0
    sd[s, si, SD_TRUNC] = 0
    sd[s, si, SD_HZ] = HZ_ALL_BID if si == 0 else HZ_ALL_ASK
    mark_levels(sd, s, si, 0, DIRTY_ALL)


@njit(cache=True, _nrt=False)
def status_event(bk, s: int, action: int) -> None:
    if action == 1:  # STATUS_HALT
        bk[s, B_FLAGS] |= F_HALTED
        bk[s, C_HALTS] += 1
    elif action == 2 or action == 3:  # resume / quote resume
        bk[s, B_FLAGS] &= ~F_HALTED


@njit(cache=True, _nrt=False)
def top_n_into(lv, sd, n_levels: int, out_px, out_sz, out_known) -> None:
    """Fill (n, 2, N) arrays with the top N levels; empty slots have price 0 and size 0.

    An empty slot is known (1) only when the whole side is known (horizon covers every price and
    nothing was dropped at capacity): then "no level there" is a fact, not a gap in the data.
    """
    ns = out_px.shape[0]
    for s in range(ns):
        for si in range(2):
            n = sd[s, si, SD_NLEV]
            hz = sd[s, si, SD_HZ]
            complete = (hz == HZ_ALL_BID if si == 0 else hz == HZ_ALL_ASK) and sd[s, si, SD_TRUNC] == 0
            for i in range(n_levels):
                if i < n:
                    out_px[s, si, i] = lv[s, si, i, LV_PX]
                    out_sz[s, si, i] = lv[s, si, i, LV_SZ]
                    out_known[s, si, i] = lv[s, si, i, LV_KNOWN]
                else:
                    out_px[s, si, i] = 0
                    out_sz[s, si, i] = 0
                    out_known[s, si, i] = 1 if complete else 0


class BookCounters:
    """Reads of the per-book counters and flags ``bk`` (the layout above), shared by every book kind."""

    bk: np.ndarray

    def anomalies(self, s: int) -> dict[str, int]:
        """Non-zero anomaly counts of book s (s = n_symbols gives out-of-range symbol events)."""
        return {name: int(self.bk[s, i]) for i, name in enumerate(ANOMALY_NAMES) if self.bk[s, i]}

    def flags(self, s: int) -> int:
        return int(self.bk[s, B_FLAGS])


@dataclass
class LevelBook(BookCounters):
    """Arrays of a set of price-level books (see the module docstring for the layout)."""

    lv: np.ndarray
    sd: np.ndarray
    bk: np.ndarray

    @classmethod
    def allocate(cls, n_symbols: int, capacity: int = 64, window: int = 0, tick: int = 100,
                 known_from_start: bool = True) -> LevelBook:
        """Empty books.  known_from_start: the stream starts with the book (full-depth feed from an
        empty book, or a snapshot follows); False when volume from before the data may exist."""
        lv = np.zeros((n_symbols, 2, capacity, LV_NCOL), dtype=np.int64)
        sd = np.zeros((n_symbols, 2, SD_NCOL), dtype=np.int64)
        sd[:, 0, SD_HZ] = HZ_ALL_BID if known_from_start else HZ_NONE_BID
        sd[:, 1, SD_HZ] = HZ_ALL_ASK if known_from_start else HZ_NONE_ASK
        sd[:, :, SD_DHI] = DIRTY_ALL  # never read: every level counts as changed
        bk = np.zeros((n_symbols + 1, B_NCOL), dtype=np.int64)
        bk[:, B_WINDOW] = window
        bk[:, B_TICK] = tick
        return cls(lv, sd, bk)

    @property
    def n_symbols(self) -> int:
        return self.lv.shape[0]

    @property
    def px(self) -> np.ndarray:
        return self.lv[..., LV_PX]

    @property
    def sz(self) -> np.ndarray:
        return self.lv[..., LV_SZ]

    @property
    def known(self) -> np.ndarray:
        return self.lv[..., LV_KNOWN]

    @property
    def nlev(self) -> np.ndarray:
        return self.sd[..., SD_NLEV]

    def top(self, n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top N levels of every book: (px, sz, known), each shaped (n_symbols, 2, N)."""
        ns = self.n_symbols
        px = np.zeros((ns, 2, n_levels), dtype=np.int64)
        sz = np.zeros((ns, 2, n_levels), dtype=np.int64)
        kn = np.zeros((ns, 2, n_levels), dtype=np.uint8)
        top_n_into(self.lv, self.sd, n_levels, px, sz, kn)
        return px, sz, kn

    def seed_side(self, s: int, si: int, prices: np.ndarray, sizes: np.ndarray, complete: bool,
                  aux_is_size: bool = False) -> None:
        """Set one side from a snapshot (best first).  Levels are known; the horizon is the last
        given level, or every price when the snapshot shows the whole side (complete)."""
        n = len(prices)
        cap = self.lv.shape[2]
        if n > cap:
            raise ValueError(f"snapshot has {n} levels, capacity is {cap}")
        self.lv[s, si] = 0
        self.lv[s, si, :n, LV_PX] = prices
        self.lv[s, si, :n, LV_SZ] = sizes
        self.lv[s, si, :n, LV_AUX] = sizes if aux_is_size else 0
        self.lv[s, si, :n, LV_KNOWN] = 1
        self.sd[s, si, SD_NLEV] = n
        self.sd[s, si, SD_TRUNC] = 0
        self.sd[s, si, SD_DLO] = 0
        self.sd[s, si, SD_DHI] = DIRTY_ALL
        if complete:
            self.sd[s, si, SD_HZ] = HZ_ALL_BID if si == 0 else HZ_ALL_ASK
        elif n:
            self.sd[s, si, SD_HZ] = int(prices[-1])
        else:
            self.sd[s, si, SD_HZ] = HZ_NONE_BID if si == 0 else HZ_NONE_ASK
