"""Price-indexed market-by-price books ("ladders") for deep full-depth feeds.

:class:`~quantedge.book.l2.L2Book` keeps each side as a sorted array of levels, best first: the
layout every downstream kernel reads, and the right one for windowed feeds (5 or 10 levels), where
a search ends in a step or two.  On a *deep* by-price feed (hundreds of live levels per side, most
updates near the touch) that layout pays a search and a shift of every deeper level per insert or
delete.  A ladder addresses a level directly by its price: per symbol and side one array of sizes
over ``span`` grid steps from a base price, so an update is one store, whatever the depth.  It keeps
per side the level count and the best index; when the best level empties, the next one is found by
walking the ladder (a few ticks on a real book).

What it takes (``LadderBook.step``): by-price ``KIND_DEPTH`` events (``level == -1``: ``size`` is the
new total at ``price``; 0 or ACTION_DELETE removes the level), ``KIND_CLEAR`` and ``KIND_STATUS``,
with the same counters, flags and crossed/locked accounting as ``L2Book`` (``bk`` has its layout).
The books it holds are the books ``L2Book`` holds for such a stream (tested event by event on the
real LOBSTER streams), exported with ``top(N)`` or ``to_level_book()`` in ``L2Book``'s layout.

Where it differs, by construction (docs/books.md, "Ladder books"):

* prices must lie on the symbol's grid (``unit``: $0.01 = 100 for stocks at or above $1, 1 for
  sub-dollar stocks): an off-grid price cannot be addressed, so it is counted (``off_tick``) and
  not applied (``L2Book`` applies it);
* position-based depth (``level >= 0``) is counted (``bad_index``) and not applied: use ``L2Book``;
* the ladder covers ``span`` grid steps; it is placed on the first price it sees, and a level that
  falls outside it moves the window just far enough (plus an eighth of the span): deep levels that
  fall off the far end are dropped and counted (``capacity``, side marked truncated); a move that
  would drop either side's best level is not made, and the new far level is the one dropped
  (counted the same way), as ``L2Book`` drops its deepest levels, never the touch;
* no feed window (every level of the stream is updated by the feed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from quantedge.book.state import (
    A_BAD_FIELD,
    A_BAD_INDEX,
    A_BAD_SYMBOL,
    A_CAPACITY,
    A_OFF_TICK,
    B_FLAGS,
    B_LAST_TS,
    B_NCOL,
    B_TICK,
    C_CLEARS,
    C_EVENTS,
    DIRTY_ALL,
    F_TRUNCATED,
    FLAG_ANOM_BASE,
    HZ_ALL_ASK,
    HZ_ALL_BID,
    HZ_NONE_ASK,
    HZ_NONE_BID,
    LV_KNOWN,
    LV_NCOL,
    LV_PX,
    LV_SZ,
    SD_DHI,
    SD_HZ,
    SD_NCOL,
    SD_NLEV,
    SD_TRUNC,
    BookCounters,
    LevelBook,
    anomaly,
    set_cross_flags,
    side_index,
    status_event,
)

KIND_CLEAR = 1
KIND_STATUS = 2
KIND_DEPTH = 4
ACTION_DELETE = 4

# --- per-side header hd[s, si, :] --------------------------------------------------------------
HD_NLEV = 0  # live (non-zero) levels on the side
HD_BEST = 1  # ladder index of the best level (meaningless while HD_NLEV == 0)
HD_HZ = 2  # known horizon price (as LevelBook's SD_HZ)
HD_TRUNC = 3  # 1 when levels were dropped off the ladder's far end
HD_NCOL = 4

# --- per-symbol placement pl[s, :] ---------------------------------------------------------------
PL_BASE = 0  # price of ladder index 0 ($0.0001)
PL_UNIT = 1  # grid step ($0.0001) of the symbol's prices
PL_SET = 2  # 1 once the ladder is placed (by the first price it sees)
PL_NCOL = 3


@njit(cache=True, _nrt=False)
def _scan_best(q, s, si, start) -> int:
    """Index of the first live level at or worse than ``start`` (the side has one)."""
    span = q.shape[2]
    j = start
    if si == 0:
        while j >= 0 and q[s, 0, j] == 0:
            j -= 1
    else:
        while j < span and q[s, 1, j] == 0:
            j += 1
    return j


@njit(cache=True, _nrt=False)
def _drop_range(q, s, si, lo, hi) -> int:
    """Zero ladder indexes [lo, hi) of one side; returns the live levels dropped."""
    dropped = 0
    for j in range(lo, hi):
        if q[s, si, j] != 0:
            q[s, si, j] = 0
            dropped += 1
    return dropped


@njit(cache=True, _nrt=False)
def _shift(q, hd, pl, bk, s, d) -> None:
    """Move the ladder's window by ``d`` grid steps (d > 0: towards higher prices); levels that fall
    off are dropped and counted (A_CAPACITY), their side marked truncated."""
    span = q.shape[2]
    for si in range(2):
        if d > 0:
            dropped = _drop_range(q, s, si, 0, min(d, span))
            for j in range(0, span - d):
                q[s, si, j] = q[s, si, j + d]
            for j in range(max(span - d, 0), span):
                q[s, si, j] = 0
        else:
            e = -d
            dropped = _drop_range(q, s, si, max(span - e, 0), span)
            for j in range(span - 1, e - 1, -1):
                q[s, si, j] = q[s, si, j - e]
            for j in range(0, min(e, span)):
                q[s, si, j] = 0
        if dropped:
            bk[s, A_CAPACITY] += dropped
            bk[s, B_FLAGS] |= (FLAG_ANOM_BASE << A_CAPACITY) | F_TRUNCATED
            hd[s, si, HD_TRUNC] = 1
            hd[s, si, HD_NLEV] -= dropped
        if hd[s, si, HD_NLEV] > 0:
            hd[s, si, HD_BEST] = _scan_best(q, s, si, span - 1 if si == 0 else 0)
    pl[s, PL_BASE] += d * pl[s, PL_UNIT]


@njit(cache=True, _nrt=False)
def _place(q, hd, pl, bk, s, si, price: int) -> int:
    """Ladder index of ``price`` (on the grid) for a level of side ``si``, placing or moving the window
    when needed; -1 when the price is off the symbol's grid (counted); -2 when moving the window to it
    would drop either side's best level: then this level is the one dropped (counted as capacity, side
    marked truncated), as ``L2Book`` drops the deepest level, never the touch."""
    span = q.shape[2]
    unit = pl[s, PL_UNIT]
    if pl[s, PL_SET] == 0:
        if price % unit != 0:
            anomaly(bk, s, A_OFF_TICK)
            return -1
        pl[s, PL_BASE] = price - (span // 2) * unit
        pl[s, PL_SET] = 1
        return span // 2
    off = price - pl[s, PL_BASE]
    if off % unit != 0:
        anomaly(bk, s, A_OFF_TICK)
        return -1
    j = off // unit
    margin = span // 8
    if j >= span:
        d = j - span + 1 + margin
    elif j < 0:
        d = j - margin
    else:
        return j
    for k in range(2):
        if hd[s, k, HD_NLEV] > 0:
            b = hd[s, k, HD_BEST]
            if (d > 0 and b < d) or (d < 0 and b >= span + d):
                anomaly(bk, s, A_CAPACITY)
                bk[s, B_FLAGS] |= F_TRUNCATED
                hd[s, si, HD_TRUNC] = 1
                return -2
    _shift(q, hd, pl, bk, s, d)
    return j - d


@njit(cache=True, inline="always", _nrt=False)
def _cross(hd, bk, s) -> None:
    """Crossed / locked state flags of book s (``s`` unsigned), as ``check_cross`` on sorted levels."""
    z = np.uint64(0)
    o = np.uint64(1)
    crossed = False
    locked = False
    if hd[s, z, HD_NLEV] > 0 and hd[s, o, HD_NLEV] > 0:
        b = hd[s, z, HD_BEST]
        a = hd[s, o, HD_BEST]
        crossed = b > a
        locked = b == a
    set_cross_flags(bk, s, crossed, locked)


@njit(cache=True, inline="always", _nrt=False)
def _set_level(q, hd, s, si, j, size: int) -> None:
    """Set the size at ladder index j of side si (``s``, ``si``, ``j`` unsigned), keeping the level
    count and the best index."""
    old = q[s, si, j]
    q[s, si, j] = size
    n = hd[s, si, HD_NLEV]
    if size > 0:
        if old == 0:
            hd[s, si, HD_NLEV] = n + 1
            b = np.uint64(hd[s, si, HD_BEST])
            if n == 0 or (j > b if si == 0 else j < b):
                hd[s, si, HD_BEST] = j
    elif old > 0:
        hd[s, si, HD_NLEV] = n - 1
        if n > 1 and j == np.uint64(hd[s, si, HD_BEST]):
            jj = np.int64(j)
            hd[s, si, HD_BEST] = _scan_best(q, s, si, jj - 1 if si == 0 else jj + 1)


@njit(cache=True, inline="always", _nrt=False)
def _by_price(q, hd, pl, bk, s, si, price: int, size: int) -> None:
    """A valid by-price update (price > 0, size >= 0; size 0 removes the level)."""
    span = np.uint64(q.shape[2])
    unit = pl[s, PL_UNIT]
    off = price - pl[s, PL_BASE]
    # the one-cent grid as a constant divisor compiles to a multiply instead of a division
    j = off // 100 if unit == 100 else off // unit
    if pl[s, PL_SET] != 0 and off - j * unit == 0 and np.uint64(j) < span:
        _set_level(q, hd, s, si, np.uint64(j), size)
        return
    if size == 0 and pl[s, PL_SET] != 0 and off - j * unit == 0:
        return  # removal of a price the ladder does not hold: nothing there (as L2Book)
    j = _place(q, hd, pl, bk, s, si, price)
    if j >= 0 and size > 0:
        _set_level(q, hd, s, si, np.uint64(j), size)


@njit(cache=True, _nrt=False)
def _clear(q, hd, s, si) -> None:
    for j in range(q.shape[2]):
        q[s, si, j] = 0
    hd[s, si, HD_NLEV] = 0
    hd[s, si, HD_BEST] = 0
    hd[s, si, HD_TRUNC] = 0
    hd[s, si, HD_HZ] = HZ_ALL_BID if si == 0 else HZ_ALL_ASK


@njit(cache=True, _nrt=False)
def _other_event(q, hd, bk, s: int, kind: int, action: int, side: int, level: int, price: int,
                 size: int, ts: int) -> int:
    """Everything but a valid by-price depth update: out of line."""
    if kind == KIND_DEPTH:
        if level >= 0:
            anomaly(bk, s, A_BAD_INDEX)  # position-based depth: L2Book's job
        else:
            anomaly(bk, s, A_BAD_FIELD)
        return 0
    if kind == KIND_CLEAR:
        for si in range(2):
            if side == 0 or side_index(side) == si:
                _clear(q, hd, s, si)
        bk[s, C_CLEARS] += 1
        _cross(hd, bk, np.uint64(s))
    elif kind == KIND_STATUS:
        status_event(bk, s, action)
    else:
        return 0
    bk[s, C_EVENTS] += 1
    bk[s, B_LAST_TS] = ts
    return 1


@njit(cache=True, _nrt=False)
def ladder_step(q, hd, pl, bk, batch) -> int:
    """Apply a batch to every ladder book; returns the number of events applied."""
    ns = np.uint64(q.shape[0])
    applied = 0
    for i in range(batch.shape[0]):
        e = batch[i]
        k = e.kind
        if k != KIND_DEPTH and k != KIND_CLEAR and k != KIND_STATUS:
            continue
        if np.uint64(e.symbol) >= ns:
            anomaly(bk, q.shape[0], A_BAD_SYMBOL)
            continue
        u = np.uint64(e.symbol)
        side = e.side
        if k == KIND_DEPTH and e.level < 0 and e.price > 0 and e.size >= 0 and (side == 1 or side == -1):
            size = 0 if e.action == ACTION_DELETE else e.size
            _by_price(q, hd, pl, bk, u, np.uint64(0) if side == 1 else np.uint64(1), e.price, size)
            _cross(hd, bk, u)
            bk[u, C_EVENTS] += 1
            bk[u, B_LAST_TS] = e.ts_event
            applied += 1
            continue
        applied += _other_event(q, hd, bk, e.symbol, k, e.action, side, e.level, e.price, e.size,
                                e.ts_event)
    return applied


@njit(cache=True, _nrt=False)
def ladder_top_into(q, hd, pl, n_levels: int, out_px, out_sz, out_known, out_nlev) -> None:
    """The top N live levels of every book in ``L2Book``'s terms (price 0 / size 0 in empty slots,
    known by the side's horizon; an empty slot is known only when the whole side is);
    ``out_nlev[s, si]`` = live levels on the side."""
    for s in range(q.shape[0]):
        base = pl[s, PL_BASE]
        unit = pl[s, PL_UNIT]
        for si in range(2):
            n = hd[s, si, HD_NLEV]
            hz = hd[s, si, HD_HZ]
            out_nlev[s, si] = n
            complete = (hz == HZ_ALL_BID if si == 0 else hz == HZ_ALL_ASK) and hd[s, si, HD_TRUNC] == 0
            j = hd[s, si, HD_BEST]
            k = 0
            while k < n_levels and k < n:
                while q[s, si, j] == 0:
                    j += -1 if si == 0 else 1
                p = base + j * unit
                out_px[s, si, k] = p
                out_sz[s, si, k] = q[s, si, j]
                out_known[s, si, k] = 1 if (p >= hz if si == 0 else p <= hz) else 0
                k += 1
                j += -1 if si == 0 else 1
            while k < n_levels:
                out_px[s, si, k] = 0
                out_sz[s, si, k] = 0
                out_known[s, si, k] = 1 if complete else 0
                k += 1


@dataclass
class LadderBook(BookCounters):
    """Arrays of a set of ladder books: ``q`` sizes ``(n, 2, span)`` by ladder index (side 0 bid,
    1 ask), ``hd`` per-side header ``(n, 2, HD_NCOL)``, ``pl`` placement ``(n, PL_NCOL)``, ``bk``
    counters and flags in ``LevelBook``'s layout ``(n + 1, B_NCOL)``."""

    q: np.ndarray
    hd: np.ndarray
    pl: np.ndarray
    bk: np.ndarray

    @classmethod
    def allocate(cls, n_symbols: int, span: int = 4096, unit: int | np.ndarray = 100,
                 known_from_start: bool = True) -> LadderBook:
        """Empty books of ``span`` grid steps each; ``unit``: grid step per symbol ($0.0001; 100 =
        one cent, 1 for sub-dollar stocks), one value or one per symbol."""
        if span < 8:
            raise ValueError(f"ladder span must be at least 8 grid steps, got {span}")
        units = np.broadcast_to(np.asarray(unit, dtype=np.int64), (n_symbols,))
        if n_symbols and int(units.min()) <= 0:
            raise ValueError("ladder unit must be a positive number of $0.0001 steps")
        q = np.zeros((n_symbols, 2, span), dtype=np.int64)
        hd = np.zeros((n_symbols, 2, HD_NCOL), dtype=np.int64)
        hd[:, 0, HD_HZ] = HZ_ALL_BID if known_from_start else HZ_NONE_BID
        hd[:, 1, HD_HZ] = HZ_ALL_ASK if known_from_start else HZ_NONE_ASK
        pl = np.zeros((n_symbols, PL_NCOL), dtype=np.int64)
        pl[:, PL_UNIT] = units
        bk = np.zeros((n_symbols + 1, B_NCOL), dtype=np.int64)
        bk[:n_symbols, B_TICK] = units
        return cls(q, hd, pl, bk)

    @property
    def n_symbols(self) -> int:
        return self.q.shape[0]

    def step(self, batch: np.ndarray) -> int:
        return int(ladder_step(self.q, self.hd, self.pl, self.bk, batch))

    def top(self, n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top N levels of every book: (px, sz, known), each (n_symbols, 2, N), as ``LevelBook.top``."""
        ns = self.n_symbols
        px = np.zeros((ns, 2, n_levels), dtype=np.int64)
        sz = np.zeros((ns, 2, n_levels), dtype=np.int64)
        kn = np.zeros((ns, 2, n_levels), dtype=np.uint8)
        nlev = np.zeros((ns, 2), dtype=np.int64)
        ladder_top_into(self.q, self.hd, self.pl, n_levels, px, sz, kn, nlev)
        return px, sz, kn

    def nlev(self) -> np.ndarray:
        """Live levels per book and side, (n_symbols, 2)."""
        return self.hd[..., HD_NLEV].copy()

    def to_level_book(self, capacity: int = 64) -> LevelBook:
        """The same books in ``L2Book``'s sorted-level layout (what the feature kernels read), the top
        ``capacity`` levels per side; a side with more live levels is marked truncated there."""
        ns = self.n_symbols
        px, sz, kn = self.top(capacity)
        lv = np.zeros((ns, 2, capacity, LV_NCOL), dtype=np.int64)
        lv[..., LV_PX] = px
        lv[..., LV_SZ] = sz
        nl = np.minimum(self.hd[..., HD_NLEV], capacity)
        live = np.arange(capacity)[None, None, :] < nl[..., None]
        lv[..., LV_KNOWN] = np.where(live, kn, 0)
        sd = np.zeros((ns, 2, SD_NCOL), dtype=np.int64)
        sd[..., SD_NLEV] = nl
        sd[..., SD_DHI] = DIRTY_ALL  # a new book: every level counts as changed
        sd[..., SD_HZ] = self.hd[..., HD_HZ]
        sd[..., SD_TRUNC] = (self.hd[..., HD_TRUNC] != 0) | (self.hd[..., HD_NLEV] > capacity)
        bk = self.bk.copy()
        bk[:ns, B_FLAGS] |= np.where(sd[..., SD_TRUNC].any(axis=1), F_TRUNCATED, 0)
        return LevelBook(lv, sd, bk)

    def seed_side(self, s: int, si: int, prices: np.ndarray, sizes: np.ndarray, complete: bool) -> None:
        """Set one side from a snapshot (best first), as ``LevelBook.seed_side``: levels known; the
        horizon is the last given level, or every price when the snapshot shows the whole side."""
        self.q[s, si] = 0
        self.hd[s, si, HD_NLEV] = 0
        self.hd[s, si, HD_TRUNC] = 0
        for p, z in zip(np.asarray(prices, dtype=np.int64), np.asarray(sizes, dtype=np.int64), strict=True):
            if p <= 0 or z <= 0:
                raise ValueError(f"snapshot level {int(p)} x {int(z)}: price and size must be positive")
            j = _place(self.q, self.hd, self.pl, self.bk, s, si, int(p))
            if j == -1:
                raise ValueError(f"snapshot price {int(p)} is off the grid of {int(self.pl[s, PL_UNIT])}")
            if j < 0:
                raise ValueError(f"snapshot level {int(p)} lies too far from the best level for a ladder of "
                                 f"{self.q.shape[2]} steps")
            _set_level(self.q, self.hd, np.uint64(s), np.uint64(si), np.uint64(j), int(z))
        if complete:
            self.hd[s, si, HD_HZ] = HZ_ALL_BID if si == 0 else HZ_ALL_ASK
        elif len(prices):
            self.hd[s, si, HD_HZ] = int(prices[-1])
        else:
            self.hd[s, si, HD_HZ] = HZ_NONE_BID if si == 0 else HZ_NONE_ASK


__all__ = ["LadderBook", "ladder_step", "ladder_top_into"]
