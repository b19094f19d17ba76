"""Per-event feature kernels (Numba): window advance, trade update, book (group-end) update, derivation.

Every function works on one symbol ``s`` of the arrays described in :mod:`quantedge.features.state`.
The per-event pieces (``advance``, ``group_start``, ``trade_update``, ``book_update``) are inlined
into the fused pipeline loops, so a per-event call pays no argument reference counting; the result
never depends on how the stream was cut into batches.  All window sums are integers (exact);
floats appear only in the derived feature vector (:func:`derive`, a pure function of the state run
at snapshots and at the end of a step, never per event) and in the slow baseline EWMA, which is
updated at bucket boundaries only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quantedge.book.state import DIRTY_ALL, LV_KNOWN, LV_PX, LV_SZ, SD_DHI, SD_DLO, SD_NLEV
from quantedge.features.state import (
    BASE_ALPHA,
    BASE_WINDOW,
    BUCKET_NS,
    CFG_NLEV,
    F_ASK,
    F_ASK_SZ,
    F_BID,
    F_BID_SZ,
    F_CUM_HIDDEN,
    F_CUM_REFILL,
    F_CUM_RELOAD,
    F_CUM_RELOAD_SH,
    F_DEPTH_ASK,
    F_DEPTH_BID,
    F_DEPTH_IMB,
    F_DEPTH_KNOWN,
    F_LAST_LR,
    F_LAST_PX,
    F_LAST_QUOTE,
    F_LAST_SZ,
    F_LAST_TICK,
    F_LAST_TS,
    F_LR_AGREE,
    F_MICRO,
    F_MID,
    F_POC_PX,
    F_SESSION_VOL,
    F_SPREAD,
    F_SPREAD_BPS,
    F_SPREAD_RATIO_5S_1H,
    F_SPREAD_REL_5S,
    F_SPREAD_REL_10S,
    F_TOUCH_IMB,
    F_VAP_AT_MID,
    F_VDM_BASE,
    F_VDM_LOG,
    F_VDM_VAR,
    F_VDM_Z,
    F_VWAP,
    GAP_ONE_SIDED,
    NB,
    NQ,
    NSC,
    NVAP,
    NW,
    NWF,
    Q_BUY,
    Q_DEPL,
    Q_DMICRO,
    Q_DMID2,
    Q_DMID2SQ,
    Q_HIDDEN,
    Q_MLOFI,
    Q_NMID,
    Q_NTRD,
    Q_OFFEX,
    Q_OFI,
    Q_REFILL,
    Q_SELL,
    Q_SPRT,
    Q_TVALID,
    Q_VOL,
    S_BASE_K,
    S_CUM,
    S_CUM_HIDDEN,
    S_CUM_REFILL,
    S_CUM_RELOAD,
    S_CUM_RELOAD_SH,
    S_DA,
    S_DAY,
    S_DB,
    S_DKNOWN,
    S_EP,
    S_EP_DEPL,
    S_EP_E,
    S_EP_HID,
    S_EP_KNOWN,
    S_EP_N,
    S_EP_SUP,
    S_EP_SZ,
    S_GA,
    S_GAP,
    S_GAS,
    S_GB,
    S_GBS,
    S_INIT,
    S_LAST_PX,
    S_LAST_SZ,
    S_LDIR,
    S_LLR,
    S_LQS,
    S_LTP,
    S_MARK,
    S_MICRO6,
    S_MID2,
    S_N_AGREE,
    S_N_CROSSED,
    S_N_QUOTE_RULE,
    S_N_SKIPPED,
    S_N_TICK_RULE,
    S_N_TRADES,
    S_N_UNCLASSIFIED,
    S_N_WITH_SIDE,
    S_NEXT_B,
    S_OFF,
    S_PA,
    S_PAS,
    S_PB,
    S_PBS,
    S_POC,
    S_PV,
    S_PVALID,
    S_RB,
    S_RL_E,
    S_RL_PX,
    S_RL_SZ,
    S_SIDES,
    S_SPREAD,
    S_STALE,
    S_T0,
    S_TLAST,
    S_TWO_SIDED,
    S_UNK,
    S_V,
    S_VAP_BASE,
    S_VAP_OUT,
    S_VAP_W,
    SIG_COL,
    SIG_WINDOW,
    VAP_BPS,
    W_1H,
    W_5S,
    W_10S,
    WF_BUY,
    WF_DEPL,
    WF_DMID,
    WF_HIDDEN,
    WF_LIT_SHARE,
    WF_MICRO_VEL,
    WF_MID_STD,
    WF_MID_VEL,
    WF_MLOFI,
    WF_OFFEX,
    WF_OFI,
    WF_REFILLS,
    WF_RVOL,
    WF_SELL,
    WF_SPREAD_AVG,
    WF_TRADES,
    WF_VOL,
    WF_VOL_DMID,
    Z_VDM_BASE,
    Z_VDM_VAR,
)

NAN = np.nan
PX = 1e-4  # $ per price unit
EMPTY_ASK = 1 << 60  # price of an empty ask level in the OFI formulas (empty bid = 0)
SPREAD_CAP = 1_000_000  # $100: spreads are clipped here inside the time integral (overflow guard)
DAY_NS = 86_400 * 1_000_000_000
SESSION_SHIFT_NS = 6 * 3_600 * 1_000_000_000  # session day = (ts - 6 h) // 1 day, in UTC
W0_NS = int(BUCKET_NS[0])  # finest bucket: every other window's boundaries are multiples of it

COND_OFF_EXCHANGE = 1 << 3
COND_OUT_OF_SEQUENCE = 1 << 5
COND_CANCEL_CORRECTION = 1 << 6
COND_CROSS = 1 << 8
COND_AVERAGE_PRICE = 1 << 9
NOT_CLASSIFIED = COND_CROSS | COND_AVERAGE_PRICE | COND_OUT_OF_SEQUENCE

assert all(int(b) % W0_NS == 0 for b in BUCKET_NS)


@njit(cache=True, inline="always", _nrt=False)
def add_q(fs, s: int, q: int, x: int) -> None:
    """Add x to the symbol's running total of quantity q (every window takes differences of it)."""
    fs[s, S_CUM + q] += x


@njit(cache=True, inline="always", _nrt=False)
def _spread_total_after(fs, s: int, sv: int, d: int) -> int:
    """The spread x time total after the spread sv held for d more ns.  The total may pass the int64
    range over a long session (up to SPREAD_CAP per ns), so it is added in unsigned, wrapping
    arithmetic: only differences of it are read (:func:`derive_at`), and those are exact
    as long as they fit in int64 (a window's is at most SPREAD_CAP x 1 h, far inside)."""
    return np.int64(np.uint64(fs[s, S_CUM + Q_SPRT]) + np.uint64(sv) * np.uint64(d))


@njit(cache=True, inline="always", _nrt=False)
def _add_spread_time(fs, s: int, sv: int, d: int) -> None:
    """The spread sv held for d ns: grow the spread x time and two-sided-time totals."""
    fs[s, S_CUM + Q_SPRT] = _spread_total_after(fs, s, sv, d)
    fs[s, S_CUM + Q_TVALID] += d


@njit(cache=True, inline="always", _nrt=False)
def init_symbol(fs, s: int, t: int) -> None:
    fs[s, S_TLAST] = t
    fs[s, S_T0] = t
    for w in range(NW):
        b = t // BUCKET_NS[w]
        fs[s, S_RB + 2 * w] = b
        fs[s, S_RB + 2 * w + 1] = b % NB
    fs[s, S_NEXT_B] = (t // W0_NS + 1) * W0_NS


@njit(cache=True, inline="always", _nrt=False)
def window_sum(fs, rq, s: int, w: int, slot: int, q: int) -> int:
    """Sum of quantity q over window w (oldest slot ``slot``): total now minus total at its start."""
    return fs[s, S_CUM + q] - rq[s, w, slot, q]


@njit(cache=True, inline="always", _nrt=False)
def _baseline(base: float, var: float, x: float) -> tuple[float, float]:
    """Slow EWMA (and EW variance) of x = log(1 + volume / |net mid change in cents|) over the 30 s
    window at one of its bucket boundaries: (base, var) after x (NaN base: the first x)."""
    if base != base:
        return x, 0.0
    d = x - base
    return base + BASE_ALPHA * d, (1.0 - BASE_ALPHA) * (var + BASE_ALPHA * d * d)


@njit(cache=True, inline="always", _nrt=False)
def _write_out(fs, rq, s: int, w: int, k: int, width: int) -> None:
    """Write bucket k of window w's quiet run into its slot, from the run's anchor (the written
    bucket before the run, whose slot is still intact): the same totals (no event between them), the
    spread integral grown by the run's spread over the buckets between."""
    g = S_GAP + 3 * w
    a = fs[s, g] - 1
    src = a % NB
    dst = k % NB
    for q in range(NQ):
        rq[s, w, dst, q] = rq[s, w, src, q]
    sv = fs[s, g + 2]
    if sv != GAP_ONE_SIDED:
        d = (k - a) * width
        rq[s, w, dst, Q_SPRT] = np.int64(np.uint64(rq[s, w, src, Q_SPRT]) + np.uint64(sv) * np.uint64(d))
        rq[s, w, dst, Q_TVALID] += d


@njit(cache=True, inline="always", _nrt=False)
def _rotate(fs, rq, fz, s: int, t: int) -> None:
    """t reached the end of the current finest bucket: every ring whose bucket changed moves to the
    bucket of t, writing into each slot it enters the symbol's running totals at that bucket's start
    (the spread integrated up to that instant; nothing else changes between two events), over the
    slot of the bucket that left the window.  A window's sums are then the totals now minus its
    oldest slot: no per-window adds at a boundary and no evictions.  Before a slot of the baseline's
    window is overwritten, the window as it stood at that boundary updates the baseline EWMA.

    Quiet runs are not written: of the buckets one move enters, only the first gets its slot; the
    rest (the same totals, the spread integral one bucket of the same spread further each) are
    recorded as the ring's run (first bucket, length, spread: ``S_GAP``).  A small cap with an event
    every few seconds crossed whole rings at nearly every event, ~27 slots of 16 words: 60 of its
    165 ns per event.  A run's bucket is written out (:func:`_write_out`) when it becomes its
    window's oldest, or when a new run starts while it is still in the window (one run per ring),
    so the slot every window sum reads is always written.

    Boundaries are visited in order (a gap longer than a ring writes only its last NB slots), so
    calling this at any intermediate time first gives the same window sums (a bucket may be in a
    run in one and written in the other): that is what makes sampling and batch boundaries
    invisible.  Integer totals make every window sum exact."""
    tl = fs[s, S_TLAST]
    nb = fs[s, S_NEXT_B]
    sv = fs[s, S_SPREAD]
    vv = fs[s, S_TWO_SIDED]
    t0 = nb if t < nb + W0_NS else (t // W0_NS) * W0_NS
    for w in range(NW):
        width = BUCKET_NS[w]
        cb = fs[s, S_RB + 2 * w]
        end = (cb + 1) * width
        if t0 < end:  # this ring keeps its bucket (no division needed)
            continue
        b = cb + 1 if t0 < end + width else t0 // width
        g = S_GAP + 3 * w
        if w == BASE_WINDOW:  # (boundaries a snapshot row already applied are skipped: S_BASE_K)
            q0, q1 = _base_pending(fs, s, t)  # q1 = min(b, cb + NB): b is t's bucket
            _base_window_steps(fs, rq, fz, s, w, q0, q1)
        k0 = max(cb + 1, b - NB + 1)
        n_run = fs[s, g + 1]
        if n_run > 0 and k0 == cb + 1:  # the run's buckets may stay in the window
            lo = fs[s, g]
            first = b - NB + 1  # the window's oldest bucket after the move
            if b > k0:  # a new run replaces it below: write out what stays of this one
                for k in range(max(lo, first), lo + n_run):
                    _write_out(fs, rq, s, w, k, width)
            elif lo == first:  # the run's first bucket becomes the oldest
                _write_out(fs, rq, s, w, lo, width)
                fs[s, g] = lo + 1
                fs[s, g + 1] = n_run - 1
        # (a move past a whole ring, k0 > cb + 1, leaves nothing of the old run and always starts one)
        slot = k0 % NB
        for q in range(NQ):
            rq[s, w, slot, q] = fs[s, S_CUM + q]
        if vv:
            d = k0 * width - tl
            rq[s, w, slot, Q_SPRT] = _spread_total_after(fs, s, sv, d)
            rq[s, w, slot, Q_TVALID] += d
        if b > k0:
            fs[s, g] = k0 + 1
            fs[s, g + 1] = b - k0
            fs[s, g + 2] = sv if vv else GAP_ONE_SIDED
        fs[s, S_RB + 2 * w] = b
        fs[s, S_RB + 2 * w + 1] = b % NB
    if vv:
        _add_spread_time(fs, s, sv, t - tl)
    fs[s, S_NEXT_B] = t0 + W0_NS
    fs[s, S_TLAST] = t


@njit(cache=True, inline="always", _nrt=False)
def _base_window_steps(fs, rq, fz, s: int, w: int, k0: int, k1: int) -> None:
    """The baseline window's boundaries k0..k1 (at most NB, before any of their slots is rewritten)
    update the baseline in ``fz`` (:func:`_base_steps`)."""
    base, var = _base_steps(fs, rq, s, w, k0, k1, fz[s, Z_VDM_BASE], fz[s, Z_VDM_VAR])
    fz[s, Z_VDM_BASE] = base
    fz[s, Z_VDM_VAR] = var


@njit(cache=True, inline="always", _nrt=False)
def _base_pending(fs, s: int, t: int) -> tuple[int, int]:
    """The baseline window's boundaries (k0, k1) up to time t (>= the last event time) that are not
    applied yet, as the ring's move to t would apply them (none when k1 < k0)."""
    width = BUCKET_NS[BASE_WINDOW]
    cb = fs[s, S_RB + 2 * BASE_WINDOW]
    if t < (cb + 1) * width:
        return 0, -1
    return max(cb + 1, fs[s, S_BASE_K] + 1), min(t // width, cb + NB)


@njit(cache=True, inline="always", _nrt=False)
def base_to(fs, rq, fz, s: int, t: int) -> None:
    """Apply the baseline window's bucket boundaries up to time t (>= the last event time) to the
    baseline now, ahead of the ring (which skips them when it moves: ``S_BASE_K``).  A snapshot row
    at a cadence boundary reads the baseline as of that boundary; applied here, the move to the
    event does not take the same logs again."""
    k0, k1 = _base_pending(fs, s, t)
    if k1 >= k0:
        _base_window_steps(fs, rq, fz, s, BASE_WINDOW, k0, k1)
        fs[s, S_BASE_K] = k1


@njit(cache=True, inline="always", _nrt=False)
def _base_steps(fs, rq, s: int, w: int, k0: int, k1: int, base: float, var: float) -> tuple[float, float]:
    """The baseline (base, var) after the baseline window's boundaries k0..k1 (at most NB, none of
    their slots rewritten yet; reads only): at boundary k the window holds the totals now (no event
    since) minus the slot of bucket k - NB; a window with volume updates the baseline.  A bucket of
    the ring's quiet run is not written: it has the volume and mid change of the run's anchor (the
    written bucket before the run).  The log is taken again only when those change (a quiet gap
    repeats them).  k0 may follow boundaries applied earlier (``S_BASE_K``), so k0 - NB may lie in
    the run."""
    g = S_GAP + 3 * w
    lo = fs[s, g]
    hi = lo + fs[s, g + 1] - 1
    anchor = (lo - 1) % NB
    vol = -1
    dm2 = 0
    x = 0.0
    for k in range(k0, k1 + 1):
        j = k - NB
        slot = anchor if lo <= j <= hi else k % NB
        v = window_sum(fs, rq, s, w, slot, Q_VOL)
        m = window_sum(fs, rq, s, w, slot, Q_DMID2)
        if v != vol or m != dm2:
            vol = v
            dm2 = m
            if v > 0:
                x = math.log1p(v / max(abs(m) / 200.0, 1.0))
        if vol > 0:
            base, var = _baseline(base, var, x)
    return base, var


@njit(cache=True, inline="always", _nrt=False)
def advance(fs, rq, fz, s: int, t: int) -> None:
    """Move symbol s's windows to time t: inside the current 100 ms bucket only the spread integral
    grows; crossing its end moves the rings that change bucket (inlined too: it writes one slot or a few)."""
    tl = fs[s, S_TLAST]
    if t <= tl:
        return
    if t < fs[s, S_NEXT_B]:
        if fs[s, S_TWO_SIDED]:
            _add_spread_time(fs, s, fs[s, S_SPREAD], t - tl)
        fs[s, S_TLAST] = t
        return
    _rotate(fs, rq, fz, s, t)


@njit(cache=True, inline="always", _nrt=False)
def snapshot_group_start(fs, lv, sd, s: int) -> None:
    """Remember the touch in force: prints later in the group are classified against it."""
    if sd[s, 0, SD_NLEV] > 0:
        fs[s, S_GB] = lv[s, 0, 0, LV_PX]
        fs[s, S_GBS] = lv[s, 0, 0, LV_SZ]
    else:
        fs[s, S_GB] = 0
        fs[s, S_GBS] = 0
    if sd[s, 1, SD_NLEV] > 0:
        fs[s, S_GA] = lv[s, 1, 0, LV_PX]
        fs[s, S_GAS] = lv[s, 1, 0, LV_SZ]
    else:
        fs[s, S_GA] = 0
        fs[s, S_GAS] = 0


@njit(cache=True, inline="always", _nrt=False)
def group_start(fs, lv, sd, s: int) -> None:
    """The touch in force at a group start is the touch stored at the last group end that changed
    the book (every book change ends in one); the book itself is read only before the first."""
    if fs[s, S_PVALID] == 1:
        fs[s, S_GB] = fs[s, S_PB]
        fs[s, S_GBS] = fs[s, S_PBS]
        if fs[s, S_SIDES] & 2:
            fs[s, S_GA] = fs[s, S_PA]
            fs[s, S_GAS] = fs[s, S_PAS]
        else:
            fs[s, S_GA] = 0
            fs[s, S_GAS] = 0
    else:
        snapshot_group_start(fs, lv, sd, s)


@njit(cache=True, inline="always", _nrt=False)
def _episode(fs, s: int, si: int, price: int, size: int) -> None:
    """Touch episode of side si at group end: same price -> count increases (refills after a print);
    new price -> start a new episode with its displayed size as the supply."""
    o = si * S_EP_N
    if price != fs[s, S_EP + o]:
        fs[s, S_EP + o] = price
        fs[s, S_EP_SUP + o] = size
        fs[s, S_EP_E + o] = 0
        fs[s, S_EP_HID + o] = 0
        fs[s, S_EP_DEPL + o] = 0
        fs[s, S_EP_SZ + o] = size
        fs[s, S_EP_KNOWN + o] = 1 if size > 0 else 0
        return
    if size <= 0:
        fs[s, S_EP_KNOWN + o] = 0
        fs[s, S_EP_SZ + o] = 0
        return
    last = fs[s, S_EP_SZ + o]
    if fs[s, S_EP_KNOWN + o] == 0:
        # sizes were unknown so far: start counting supply from this known size
        fs[s, S_EP_KNOWN + o] = 1
        fs[s, S_EP_SUP + o] = size + fs[s, S_EP_E + o]
        fs[s, S_EP_HID + o] = 0
    elif size > last:
        fs[s, S_EP_SUP + o] += size - last
        if fs[s, S_EP_DEPL + o] == 1:
            fs[s, S_EP_DEPL + o] = 0
            fs[s, S_CUM_REFILL] += 1
            add_q(fs, s, Q_REFILL, 1)
    fs[s, S_EP_SZ + o] = size


@njit(cache=True, inline="always", _nrt=False)
def _first_usable(lv, s: int, si: int, n: int, other: int) -> int:
    """Index of the first level of side si that is known or does not cross price `other`."""
    i = 0
    while i < n:
        p = lv[s, si, i, LV_PX]
        crosses = p >= other if si == 0 else p <= other
        if lv[s, si, i, LV_KNOWN] != 0 or not crosses:
            break
        i += 1
    return i


@njit(cache=True, inline="always", _nrt=False)
def _side_levels(fs, lv, pl, sd, s: int, si: int, off: int, n: int, nlev: int, empty: int, full: bool) -> int:
    """One side's part of book_update over its top nlev levels (from level ``off``, ``n`` usable):
    updates the depth (``S_DB`` + si) and the not-known bits (``S_UNK`` + si), stores the levels into
    ``pl`` for the next update and returns the side's multi-level OFI term (bid sign).  A missing
    level is price ``empty``, size 0.

    Only the levels the book marked changed since the last group end are visited (the side's
    ``[SD_DLO, SD_DHI)``, then reset): every other level equals its ``pl`` entry, so its OFI term is 0
    and it leaves depth and bits as they were.  ``full`` visits all nlev levels (first update, or
    stale levels skipped now or last time: ``pl`` then holds other indexes).  Unsigned indexes (no
    negative-index code per subscript) and no branch per level on the side's length."""
    u = np.uint64(s)
    v = np.uint64(si)
    o = np.uint64(off)
    k = np.uint64(max(min(n, nlev), 0))
    top = np.uint64(nlev)
    if full:
        lo = np.uint64(0)
        hi = top
    else:
        lo = np.uint64(sd[u, v, SD_DLO])
        hi = np.uint64(min(sd[u, v, SD_DHI], nlev))
    sd[u, v, SD_DLO] = DIRTY_ALL
    sd[u, v, SD_DHI] = 0
    if lo >= hi:
        return 0
    ml = 0
    depth = fs[u, S_DB + v]
    unk = fs[u, S_UNK + v]
    for m in range(lo, min(hi, k)):
        p = lv[u, v, o + m, LV_PX]
        q = lv[u, v, o + m, LV_SZ]
        p0 = pl[u, v, m, 0]
        q0 = pl[u, v, m, 1]
        depth += q - q0
        bit = np.int64(1) << np.int64(m)
        unk = (unk & ~bit) | (bit if lv[u, v, o + m, LV_KNOWN] == 0 else 0)
        at_least = p >= p0 if si == 0 else p <= p0
        at_most = p <= p0 if si == 0 else p >= p0
        ml += (q if at_least else 0) - (q0 if at_most else 0)
        pl[u, v, m, 0] = p
        pl[u, v, m, 1] = q
    for m in range(max(lo, k), hi):
        p0 = pl[u, v, m, 0]
        q0 = pl[u, v, m, 1]
        depth -= q0
        unk &= ~(np.int64(1) << np.int64(m))
        at_most = empty <= p0 if si == 0 else empty >= p0
        ml -= q0 if at_most else 0
        pl[u, v, m, 0] = empty
        pl[u, v, m, 1] = 0
    fs[u, S_DB + v] = depth
    fs[u, S_UNK + v] = unk
    return ml


@njit(cache=True, inline="always", _nrt=False)
def book_update(fs, pl, lv, sd, cfg, s: int, skip_stale: bool) -> None:
    """Book state at the end of an atomic group that changed the book: touch, spread, mid,
    micro-price, depth over N levels, OFI at the touch and over N levels, touch episodes.

    With skip_stale, a crossed or locked touch whose crossing levels are not known (a stale level
    kept from outside a feed's window) is resolved by skipping those levels on that side."""
    nlev = min(cfg[CFG_NLEV], lv.shape[2])
    nb = sd[s, 0, SD_NLEV]
    na = sd[s, 1, SD_NLEV]
    ob = 0
    oa = 0
    if skip_stale and nb > 0 and na > 0 and lv[s, 0, 0, LV_PX] >= lv[s, 1, 0, LV_PX]:
        # a crossing level that is not known loses against a known top on the other side
        if lv[s, 1, 0, LV_KNOWN] != 0:
            ob = _first_usable(lv, s, 0, nb, lv[s, 1, 0, LV_PX])
        if lv[s, 0, 0, LV_KNOWN] != 0:
            oa = _first_usable(lv, s, 1, na, lv[s, 0, 0, LV_PX])
        if ob > 0 or oa > 0:
            fs[s, S_STALE] += 1
        nb -= ob
        na -= oa
    bp = lv[s, 0, ob, LV_PX] if nb > 0 else 0
    bs = lv[s, 0, ob, LV_SZ] if nb > 0 else 0
    ap = lv[s, 1, oa, LV_PX] if na > 0 else EMPTY_ASK
    az = lv[s, 1, oa, LV_SZ] if na > 0 else 0
    # --- order-flow imbalance (Cont, Kukanov, Stoikov 2014), touch and multi-level; depth ---
    valid = fs[s, S_PVALID] == 1
    if valid:
        pb = fs[s, S_PB]
        pbs = fs[s, S_PBS]
        pa = fs[s, S_PA]
        pas = fs[s, S_PAS]
        e = 0
        if bp >= pb:
            e += bs
        if bp <= pb:
            e -= pbs
        if ap <= pa:
            e -= az
        if ap >= pa:
            e += pas
        if e != 0:
            add_q(fs, s, Q_OFI, e)
    full = not valid or ob != 0 or oa != 0 or fs[s, S_OFF] != 0 or fs[s, S_OFF + 1] != 0
    fs[s, S_OFF] = ob
    fs[s, S_OFF + 1] = oa
    ml = (_side_levels(fs, lv, pl, sd, s, 0, ob, nb, nlev, 0, full)
          - _side_levels(fs, lv, pl, sd, s, 1, oa, na, nlev, EMPTY_ASK, full))
    if valid and ml != 0:
        add_q(fs, s, Q_MLOFI, ml)
    fs[s, S_PB] = bp
    fs[s, S_PBS] = bs
    fs[s, S_PA] = ap
    fs[s, S_PAS] = az
    fs[s, S_PVALID] = 1
    fs[s, S_DKNOWN] = 1 if fs[s, S_UNK] == 0 and fs[s, S_UNK + 1] == 0 else 0
    fs[s, S_SIDES] = (1 if nb > 0 else 0) | (2 if na > 0 else 0)
    if nb > 0:
        # same-timestamp reload: lit prints at an unchanged bid price took more than the displayed
        # size it lost since the timestamp began, so size was added at that price at the prints' own
        # timestamp (an iceberg refreshing its displayed part in the same message; a market maker's
        # requote or a new order usually has a later timestamp: the test is per timestamp, not per
        # message, so on coarse clocks such an order in the same tick counts too).
        e = fs[s, S_RL_E]
        if e > 0 and bp == fs[s, S_RL_PX] and bs > 0 and fs[s, S_RL_SZ] > 0:
            rl = bs - (fs[s, S_RL_SZ] - e)
            if rl > 0:
                fs[s, S_CUM_RELOAD] += 1
                fs[s, S_CUM_RELOAD_SH] += rl
                fs[s, S_RL_E] = 0
                fs[s, S_RL_SZ] = bs  # a later group of this timestamp compares with the reloaded size
        _episode(fs, s, 0, bp, bs)
    if na > 0:
        _episode(fs, s, 1, ap, az)
    crossed = skip_stale and nb > 0 and na > 0 and bp > ap
    if crossed:
        # still crossed after the stale rule (depth book): the touch is not a market; no spread,
        # mid or micro-price until it uncrosses (counted)
        fs[s, S_N_CROSSED] += 1
        fs[s, S_TWO_SIDED] = 0
    elif nb > 0 and na > 0:
        mid2 = bp + ap
        spread = ap - bp
        prev = fs[s, S_MID2]
        if prev != 0:
            d = mid2 - prev
            if d != 0:
                add_q(fs, s, Q_DMID2, d)
                add_q(fs, s, Q_DMID2SQ, d * d)
                add_q(fs, s, Q_NMID, 1)
        fs[s, S_MID2] = mid2
        if bs > 0 and az > 0:
            num = (bp * az + ap * bs) * 200
            den = 2 * (bs + az)
            micro6 = (num + den // 2) // den
        else:
            micro6 = mid2 * 50
        prev6 = fs[s, S_MICRO6]
        if prev6 != 0 and micro6 != prev6:
            add_q(fs, s, Q_DMICRO, micro6 - prev6)
        fs[s, S_MICRO6] = micro6
        fs[s, S_SPREAD] = min(spread, SPREAD_CAP)
        fs[s, S_TWO_SIDED] = 1
    else:
        fs[s, S_TWO_SIDED] = 0


@njit(cache=True, inline="always", _nrt=False)
def _is_off_exchange(cond: int, venue: int) -> bool:
    return (cond & COND_OFF_EXCHANGE) != 0 or venue == 15 or venue == 19 or venue == 24


@njit(cache=True, inline="always", _nrt=False)
def trade_update(fs, vap, s: int, t: int, price: int, size: int, cond: int, venue: int, side: int) -> None:
    """A print: volumes (total, lit / off-exchange), Lee-Ready classification against the touch in
    force at the start of the group, session VWAP and volume at price, touch depletion and the
    hidden-size estimate of the touch episode it printed at."""
    if (cond & COND_CANCEL_CORRECTION) != 0 or size <= 0 or price <= 0:
        fs[s, S_N_SKIPPED] += 1
        return
    fs[s, S_N_TRADES] += 1
    add_q(fs, s, Q_VOL, size)
    add_q(fs, s, Q_NTRD, 1)
    if _is_off_exchange(cond, venue):
        add_q(fs, s, Q_OFFEX, size)
    fs[s, S_LAST_PX] = price
    fs[s, S_LAST_SZ] = size
    # --- session VWAP and volume at price ---
    day = (t - SESSION_SHIFT_NS) // DAY_NS
    if day != fs[s, S_DAY]:
        fs[s, S_DAY] = day
        fs[s, S_PV] = 0
        fs[s, S_V] = 0
        fs[s, S_VAP_BASE] = 0
        fs[s, S_POC] = -1
        fs[s, S_VAP_OUT] = 0
        for j in range(NVAP):
            vap[s, j] = 0
    if (cond & COND_AVERAGE_PRICE) == 0:
        fs[s, S_PV] += price * size
        fs[s, S_V] += size
        if fs[s, S_VAP_BASE] == 0:
            fs[s, S_VAP_BASE] = price
            tick = 100 if price >= 10_000 else 1
            fs[s, S_VAP_W] = max(tick, (price * VAP_BPS) // 10_000)
        j = NVAP // 2 + (price - fs[s, S_VAP_BASE]) // fs[s, S_VAP_W]
        if j < 0:
            j = 0
            fs[s, S_VAP_OUT] += size
        elif j >= NVAP:
            j = NVAP - 1
            fs[s, S_VAP_OUT] += size
        vap[s, j] += size
        poc = fs[s, S_POC]
        if poc < 0 or vap[s, j] > vap[s, poc]:
            fs[s, S_POC] = j
    if (cond & NOT_CLASSIFIED) != 0:
        return
    # --- Lee-Ready: quote rule against the touch in force, tick rule at the mid / without quote ---
    gb = fs[s, S_GB]
    ga = fs[s, S_GA]
    qs = 0
    if gb > 0 and ga > 0 and ga > gb:
        m2 = gb + ga
        if 2 * price > m2:
            qs = 1
        elif 2 * price < m2:
            qs = -1
    ltp = fs[s, S_LTP]
    ts_ = 0
    if ltp > 0:
        if price > ltp:
            ts_ = 1
        elif price < ltp:
            ts_ = -1
        else:
            ts_ = fs[s, S_LDIR]
    fs[s, S_LDIR] = ts_
    fs[s, S_LTP] = price
    lr = qs if qs != 0 else ts_
    fs[s, S_LLR] = lr
    fs[s, S_LQS] = qs
    if qs != 0:
        fs[s, S_N_QUOTE_RULE] += 1
    elif ts_ != 0:
        fs[s, S_N_TICK_RULE] += 1
    else:
        fs[s, S_N_UNCLASSIFIED] += 1
    if lr > 0:
        add_q(fs, s, Q_BUY, size)
    elif lr < 0:
        add_q(fs, s, Q_SELL, size)
    if side != 0 and lr != 0:
        fs[s, S_N_WITH_SIDE] += 1
        if side == lr:
            fs[s, S_N_AGREE] += 1
    # --- touch depletion and hidden size ---
    si = -1
    if gb > 0 and price == gb and not (price == ga and lr > 0):
        si = 0
    elif ga > 0 and price == ga:
        si = 1
    if si == 0 and price == fs[s, S_RL_PX] and not _is_off_exchange(cond, venue):
        fs[s, S_RL_E] += size
    if si >= 0:
        add_q(fs, s, Q_DEPL, size)
        o = si * S_EP_N
        if fs[s, S_EP + o] == price:
            fs[s, S_EP_E + o] += size
            fs[s, S_EP_DEPL + o] = 1
            if fs[s, S_EP_KNOWN + o] == 1:
                hid = fs[s, S_EP_E + o] - fs[s, S_EP_SUP + o]
                d = hid - fs[s, S_EP_HID + o]
                if d > 0:
                    fs[s, S_EP_HID + o] = hid
                    fs[s, S_CUM_HIDDEN] += d
                    add_q(fs, s, Q_HIDDEN, d)


@njit(cache=True, inline="always", _nrt=False)
def _oldest_at(fs, s: int, w: int, width: int, cb: int, j: int, tl: int) -> tuple[int, np.uint64, int]:
    """Where the totals at the start of bucket j (window w's oldest bucket at a time t >= tl, the
    symbol's last event time; ring w is at bucket cb) are found without moving the ring: (the ring
    slot holding them, or -1 for the running totals; spread x time and two-sided time to add to
    those).  Bucket j is a written slot, a bucket of the ring's quiet run (its anchor slot plus the
    run's spread over the buckets between, as :func:`_write_out` would write it), or, past the ring
    (j > cb), the running totals plus the spread held since tl: exactly what :func:`_rotate` would
    leave in the slot of the window's oldest bucket."""
    if j > cb:
        if fs[s, S_TWO_SIDED]:
            d = j * width - tl
            return -1, np.uint64(fs[s, S_SPREAD]) * np.uint64(d), d
        return -1, np.uint64(0), 0
    g = S_GAP + 3 * w
    lo = fs[s, g]
    n = fs[s, g + 1]
    if n > 0 and lo <= j < lo + n:
        a = lo - 1
        sv = fs[s, g + 2]
        if sv != GAP_ONE_SIDED:
            d = (j - a) * width
            return a % NB, np.uint64(sv) * np.uint64(d), d
        return a % NB, np.uint64(0), 0
    return j % NB, np.uint64(0), 0


@njit(cache=True, inline="always", _nrt=False)
def _wsum(fs, rq, s: int, w: int, src: int, q: int) -> int:
    """Window sum of a quantity that time alone does not change: the totals now minus those at the
    start of the window's oldest bucket (slot ``src``; -1: the running totals themselves)."""
    return fs[s, S_CUM + q] - rq[s, w, src, q] if src >= 0 else 0


#: (window field, running-total quantity) of the window fields that are a plain window sum
PLAIN_SUMS = np.array([(WF_VOL, Q_VOL), (WF_BUY, Q_BUY), (WF_SELL, Q_SELL), (WF_OFFEX, Q_OFFEX),
                       (WF_TRADES, Q_NTRD), (WF_OFI, Q_OFI), (WF_MLOFI, Q_MLOFI), (WF_REFILLS, Q_REFILL),
                       (WF_DEPL, Q_DEPL), (WF_HIDDEN, Q_HIDDEN)], np.int64)


@njit(cache=True, _nrt=False)
def derive(dst, r: int, fs, rq, vap, fz, s: int, full: bool = True) -> None:
    """The feature vector of symbol s into row r of dst (F or a snapshot buffer) as of its last event:
    a pure function of the state (window sums = the running totals minus the window's oldest ring
    slot).  See :func:`derive_at`."""
    derive_at(dst, r, fs, rq, vap, fz, s, full, fs[s, S_TLAST])


@njit(cache=True, _nrt=False)
def derive_at(dst, r: int, fs, rq, vap, fz, s: int, full: bool, t: int) -> None:
    """The feature vector of symbol s as of time t >= its last event time, into row r of dst: the
    values :func:`derive` gives after ``advance(t)``, with nothing changed (the state stays at the
    last event).  A snapshot row is taken at a cadence boundary before its event: moving the rings
    to the boundary and then on to the event did the rotation twice (a bucket in a quiet run at the
    boundary written out at the event), ~90 ns of the ~175 ns a row cost on the sparse NEPT day.
    The rings and the baseline are read where they stand (:func:`_oldest_at`, :func:`_base_steps`),
    with the same integers and the same float operations, so the row is bit for bit the same.

    ``full=False`` writes only the columns of :data:`~quantedge.features.state.SIGNAL_INPUTS` (a
    snapshot row that only feeds the signal stage; the others are left as they are): the same
    values by the same operations, without the ~40 divisions and square roots of the rest."""
    tl = fs[s, S_TLAST]
    mid2 = fs[s, S_MID2]
    t0 = fs[s, S_T0]
    vv = fs[s, S_TWO_SIDED]
    dt = t - tl if vv else 0  # two-sided time since the last event (the spread is constant since)
    sp_now = np.uint64(fs[s, S_CUM + Q_SPRT]) + np.uint64(fs[s, S_SPREAD]) * np.uint64(dt)
    zbase = fz[s, Z_VDM_BASE]  # the baseline at t
    zvar = fz[s, Z_VDM_VAR]
    k0, k1 = _base_pending(fs, s, t)
    if k1 >= k0:
        zbase, zvar = _base_steps(fs, rq, s, BASE_WINDOW, k0, k1, zbase, zvar)
    for w in range(NW):
        c = NSC + w * NWF
        if not full and not SIG_WINDOW[w]:
            continue
        width = BUCKET_NS[w]
        cb = fs[s, S_RB + 2 * w]
        b = t // width if t >= (cb + 1) * width else cb  # the ring's bucket at t
        j = b - NB + 1  # the window's oldest bucket at t
        o, sp_add, tv_add = _oldest_at(fs, s, w, width, cb, j, tl)
        start = j * width
        if t0 > start:
            start = t0
        span = (t - start) * 1e-9
        for p in range(PLAIN_SUMS.shape[0]):  # the fields that are a window sum as it is
            col = c + PLAIN_SUMS[p, 0]
            if full or SIG_COL[col]:
                dst[r, col] = _wsum(fs, rq, s, w, o, PLAIN_SUMS[p, 1])
        vol = _wsum(fs, rq, s, w, o, Q_VOL)
        off = _wsum(fs, rq, s, w, o, Q_OFFEX)
        if full or SIG_COL[c + WF_LIT_SHARE]:
            dst[r, c + WF_LIT_SHARE] = (vol - off) / vol if vol > 0 else NAN
        dm2 = _wsum(fs, rq, s, w, o, Q_DMID2)
        if full or SIG_COL[c + WF_DMID]:
            dst[r, c + WF_DMID] = dm2 * 0.5 * PX
        if full or SIG_COL[c + WF_MID_VEL] or SIG_COL[c + WF_MICRO_VEL]:
            dmic = _wsum(fs, rq, s, w, o, Q_DMICRO)
            if mid2 > 0 and span > 0:
                if full or SIG_COL[c + WF_MID_VEL]:
                    dst[r, c + WF_MID_VEL] = dm2 / mid2 / span * 100.0
                if full or SIG_COL[c + WF_MICRO_VEL]:
                    dst[r, c + WF_MICRO_VEL] = dmic / (mid2 * 50.0) / span * 100.0
            else:
                if full or SIG_COL[c + WF_MID_VEL]:
                    dst[r, c + WF_MID_VEL] = NAN
                if full or SIG_COL[c + WF_MICRO_VEL]:
                    dst[r, c + WF_MICRO_VEL] = NAN
        sq = _wsum(fs, rq, s, w, o, Q_DMID2SQ)
        if full or SIG_COL[c + WF_MID_STD]:
            n = _wsum(fs, rq, s, w, o, Q_NMID)
            if n > 0:
                mean = dm2 / n
                var = sq / n - mean * mean
                dst[r, c + WF_MID_STD] = math.sqrt(var if var > 0 else 0.0) * 0.5 * PX
            else:
                dst[r, c + WF_MID_STD] = 0.0
        if full or SIG_COL[c + WF_RVOL]:
            dst[r, c + WF_RVOL] = math.sqrt(sq) / mid2 * 1e4 if mid2 > 0 else NAN
        if full or SIG_COL[c + WF_SPREAD_AVG]:
            tv_old = rq[s, w, o, Q_TVALID] if o >= 0 else fs[s, S_CUM + Q_TVALID]
            sp_old = np.uint64(rq[s, w, o, Q_SPRT] if o >= 0 else fs[s, S_CUM + Q_SPRT]) + sp_add
            tv = fs[s, S_CUM + Q_TVALID] + dt - (tv_old + tv_add)
            sprt = np.int64(sp_now - sp_old)  # wrapping difference of the totals: exact
            dst[r, c + WF_SPREAD_AVG] = sprt / tv if tv > 0 else NAN
        if full or SIG_COL[c + WF_VOL_DMID]:
            dst[r, c + WF_VOL_DMID] = vol / max(abs(dm2) / 200.0, 1.0)
    # --- book (as of the last group end that changed the book) ---
    if fs[s, S_PVALID] == 1:
        sides = fs[s, S_SIDES]
        bp = fs[s, S_PB]
        bs = fs[s, S_PBS]
        ap = fs[s, S_PA]
        az = fs[s, S_PAS]
        db = fs[s, S_DB]
        da = fs[s, S_DA]
        if full:
            dst[r, F_DEPTH_BID] = db
            dst[r, F_DEPTH_ASK] = da
        dst[r, F_DEPTH_IMB] = (db - da) / (db + da) if db + da > 0 else NAN
        if full:
            dst[r, F_DEPTH_KNOWN] = fs[s, S_DKNOWN]
        dst[r, F_BID] = bp * PX if sides & 1 else NAN
        if full:
            dst[r, F_ASK] = ap * PX if sides & 2 else NAN
        dst[r, F_BID_SZ] = bs if bs > 0 else NAN
        dst[r, F_ASK_SZ] = az if az > 0 else NAN
        dst[r, F_TOUCH_IMB] = (bs - az) / (bs + az) if bs > 0 and az > 0 else NAN
        if fs[s, S_TWO_SIDED] == 1:
            spread = ap - bp
            dst[r, F_SPREAD] = spread
            dst[r, F_MID] = mid2 * 0.5 * PX
            dst[r, F_SPREAD_BPS] = spread * 2e4 / mid2
            if full:
                dst[r, F_MICRO] = fs[s, S_MICRO6] * 1e-6
        else:
            dst[r, F_SPREAD] = NAN
            dst[r, F_MID] = NAN
            dst[r, F_SPREAD_BPS] = NAN
            if full:
                dst[r, F_MICRO] = NAN
    else:
        for c in (F_DEPTH_BID, F_DEPTH_ASK, F_DEPTH_IMB, F_DEPTH_KNOWN, F_BID, F_ASK, F_BID_SZ, F_ASK_SZ,
                  F_TOUCH_IMB, F_SPREAD, F_MID, F_SPREAD_BPS, F_MICRO):
            if full or SIG_COL[c]:
                dst[r, c] = NAN
    v = fs[s, S_V]
    if full:
        # --- prints ---
        lp = fs[s, S_LAST_PX]
        dst[r, F_LAST_PX] = lp * PX if lp > 0 else NAN
        dst[r, F_LAST_SZ] = fs[s, S_LAST_SZ] if lp > 0 else NAN
        if fs[s, S_LTP] > 0:
            dst[r, F_LAST_LR] = fs[s, S_LLR]
            dst[r, F_LAST_QUOTE] = fs[s, S_LQS]
            dst[r, F_LAST_TICK] = fs[s, S_LDIR]
        else:
            dst[r, F_LAST_LR] = NAN
            dst[r, F_LAST_QUOTE] = NAN
            dst[r, F_LAST_TICK] = NAN
        if v > 0:
            dst[r, F_VWAP] = fs[s, S_PV] / v * PX
            dst[r, F_SESSION_VOL] = v
            poc = fs[s, S_POC]
            dst[r, F_POC_PX] = (fs[s, S_VAP_BASE] + (poc - NVAP // 2 + 0.5) * fs[s, S_VAP_W]) * PX
        else:
            dst[r, F_VWAP] = NAN
            dst[r, F_SESSION_VOL] = NAN
            dst[r, F_POC_PX] = NAN
        nws = fs[s, S_N_WITH_SIDE]
        dst[r, F_LR_AGREE] = fs[s, S_N_AGREE] / nws if nws > 0 else NAN
    # --- time-dependent scalars ---
    sp = NAN
    if fs[s, S_TWO_SIDED] == 1:
        sp = float(fs[s, S_SPREAD])
    a5 = dst[r, NSC + W_5S * NWF + WF_SPREAD_AVG]
    a10 = dst[r, NSC + W_10S * NWF + WF_SPREAD_AVG]
    a1h = dst[r, NSC + W_1H * NWF + WF_SPREAD_AVG]
    if full:
        dst[r, F_SPREAD_REL_5S] = sp - a5
    dst[r, F_SPREAD_REL_10S] = sp - a10
    dst[r, F_SPREAD_RATIO_5S_1H] = a5 / a1h if a1h > 0 else NAN
    cb = NSC + BASE_WINDOW * NWF
    x = math.log1p(dst[r, cb + WF_VOL_DMID])
    if full:
        dst[r, F_VDM_LOG] = x
        dst[r, F_VDM_BASE] = zbase
        dst[r, F_VDM_VAR] = zvar
    dst[r, F_VDM_Z] = (x - zbase) / math.sqrt(zvar) if zvar > 0 else NAN
    if full:
        if v > 0 and mid2 > 0 and fs[s, S_VAP_W] > 0:
            j = NVAP // 2 + (mid2 // 2 - fs[s, S_VAP_BASE]) // fs[s, S_VAP_W]
            dst[r, F_VAP_AT_MID] = vap[s, j] / v if 0 <= j < NVAP else 0.0
        else:
            dst[r, F_VAP_AT_MID] = NAN
        dst[r, F_CUM_REFILL] = fs[s, S_CUM_REFILL]
        dst[r, F_CUM_HIDDEN] = fs[s, S_CUM_HIDDEN]
        dst[r, F_LAST_TS] = t * 1e-9
        dst[r, F_CUM_RELOAD_SH] = fs[s, S_CUM_RELOAD_SH]
    dst[r, F_CUM_RELOAD] = fs[s, S_CUM_RELOAD]


@njit(cache=True, _nrt=False)
def derive_marked(F, fs, rq, vap, fz, marked, n_marked) -> None:
    """Derive F for the symbols on the list (those a step touched) and empty the list."""
    for i in range(n_marked[0]):
        s = marked[i]
        derive(F, s, fs, rq, vap, fz, s)
        fs[s, S_MARK] = 0
    n_marked[0] = 0


@njit(cache=True, _nrt=False)
def derive_all(F, fs, rq, vap, fz) -> None:
    """Derive F for every symbol that has seen an event."""
    for s in range(fs.shape[0]):
        if fs[s, S_INIT] == 1:
            derive(F, s, fs, rq, vap, fz, s)
