"""Plausible trades and NBBO quotes from real OHLC bars (quick development data).

Each bar with volume becomes ``k`` prints inside ``[ts, ts + interval)`` (IQFeed stamps interval
bars with the interval's *start*: the NEPT tick at 04:00:00.028 is in the 04:00:00 bar):

* the first print is at the open, the last at the close, and the high and the low are each hit
  at a random print in between, so the prints reproduce the bar's O/H/L/C exactly;
* other prints wander between low and high on the quote grid ($0.01 at/above $1, $0.0001 below);
* sizes sum exactly to the bar's volume: round lots split among the prints, the odd remainder
  goes to one print;
* ``k`` is the bar's trade count when the source has it, else a count drawn from the volume,
  and never less than the number of distinct prices the bar needs;
* before each print an NBBO pair is emitted when it changed: an up-tick print is a buy at the ask
  (ask = price), a down-tick a sell at the bid (bid = price), a zero tick keeps the last side;
  the other side is ``spread_ticks`` quote steps away; a print off the quote grid (sub-penny price
  improvement, common on the TRF) gets the grid prices just below and above it as its NBBO;
* a share ``off_exchange`` of prints is reported to the TRF (venue 19, COND_OFF_EXCHANGE).

Bars whose volume is smaller than the number of distinct prices they need cannot be reproduced
exactly; they are reported in :class:`BarsReport` and skipped, never silently approximated.
"""

# ruff: noqa: NPY002 - Numba kernels support only the legacy np.random API (seeded per call)
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from quantedge import events as ev
from quantedge.synth.engine import LIT_VENUES

NS = 1_000_000_000


@dataclass
class BarsReport:
    bars_read: int = 0
    bars_used: int = 0
    bars_empty: int = 0  # no volume: no prints
    bars_infeasible: list[int] = field(default_factory=list)  # row indices that could not be matched
    bars_invalid: list[int] = field(default_factory=list)  # low > high, open/close outside range


@njit(cache=True)
def _tick(p):
    return 100 if p >= 10_000 else 1


@njit(cache=True)
def _snap(p, lo, hi):
    """Nearest valid quote price to ``p`` inside [lo, hi]."""
    t = _tick(p)
    q = (p + t // 2) // t * t
    if q < lo:
        q = lo
    if q > hi:
        q = hi
    return q


@njit(cache=True)
def _fill(ts, o, h, lo, c, vol, ntr, interval_ns, spread_ticks, off_share, seed, symbol_id, use,
          out_ts, out_px, out_sz, out_kind, out_side, out_seq, out_venue, out_cond, out_flags):
    np.random.seed(seed)
    n = 0
    seq = 0
    lbid = -1
    lask = -1
    side = 1
    prev = -1
    for b in range(ts.shape[0]):
        if not use[b]:
            continue
        k = ntr[b]
        path = np.empty(4, np.int64)
        path[0] = o[b]
        if np.random.random() < 0.5:
            path[1] = h[b]
            path[2] = lo[b]
        else:
            path[1] = lo[b]
            path[2] = h[b]
        path[3] = c[b]
        # distinct consecutive anchors the prints must visit
        anchors = np.empty(4, np.int64)
        na = 0
        for j in range(4):
            if na == 0 or anchors[na - 1] != path[j]:
                anchors[na] = path[j]
                na += 1
        if k < na:
            k = na
        prices = np.full(k, anchors[na - 1], np.int64)
        # anchor positions: first and last fixed, middle ones at distinct random interior slots
        pos = np.empty(na, np.int64)
        pos[0] = 0
        if na > 1:
            pos[na - 1] = k - 1
        if na > 2:
            slots = np.random.permutation(k - 2)[: na - 2] + 1
            slots.sort()
            for j in range(na - 2):
                pos[j + 1] = slots[j]
        for j in range(na - 1):
            a, z = pos[j], pos[j + 1]
            for i in range(a, z):
                f = (i - a) / max(1, z - a)
                base = anchors[j] + f * (anchors[j + 1] - anchors[j])
                noise = np.random.normal() * 0.25 * (h[b] - lo[b])
                prices[i] = _snap(int(base + noise), lo[b], h[b])
            prices[a] = anchors[j]
        prices[pos[na - 1]] = anchors[na - 1]
        # sizes: round lots split among prints, odd remainder to one print
        sizes = np.zeros(k, np.int64)
        lots = vol[b] // 100
        if lots >= k:
            w = np.exp(np.random.normal(0.0, 1.0, k))
            alloc = np.floor(w / w.sum() * (lots - k)).astype(np.int64) + 1
            rem = lots - alloc.sum()
            for i in range(rem):
                alloc[i % k] += 1
            sizes[:] = alloc * 100
            sizes[int(np.random.random() * k)] += vol[b] % 100
        else:
            w = np.exp(np.random.normal(0.0, 1.0, k))
            alloc = np.floor(w / w.sum() * (vol[b] - k)).astype(np.int64) + 1
            rem = vol[b] - alloc.sum()
            for i in range(rem):
                alloc[i % k] += 1
            sizes[:] = alloc
        times = np.sort(np.random.random(k)) * (interval_ns - 1)
        for i in range(k):
            t = ts[b] + int(times[i])
            p = prices[i]
            if prev >= 0 and p > prev:
                side = 1
            elif prev >= 0 and p < prev:
                side = -1
            prev = p
            st = spread_ticks * _tick(p)
            tk = _tick(p)
            if p % tk != 0:
                # a sub-penny print (off-exchange price improvement): the NBBO is the grid around it
                bid = p // tk * tk
                ask = bid + tk
            elif side == 1:
                ask = p
                bid = p - st
                if bid <= 0:
                    bid = _tick(p)
                if lbid >= 0 and lbid < p and lbid > bid:
                    bid = lbid  # keep a better resting bid that is still below the print
            else:
                bid = p
                ask = p + st
                if lask > p and lask < ask:
                    ask = lask
            if bid != lbid or ask != lask:
                seq += 1
                for s in (1, -1):
                    out_ts[n] = t
                    out_px[n] = bid if s == 1 else ask
                    out_sz[n] = 100 * (1 + int(np.random.exponential(5.0)))
                    out_kind[n] = 5
                    out_side[n] = s
                    out_seq[n] = seq
                    out_venue[n] = 0
                    out_cond[n] = 0
                    out_flags[n] = 0x80 if s == -1 else 0
                    n += 1
                lbid = bid
                lask = ask
            seq += 1
            out_ts[n] = t
            out_px[n] = p
            out_sz[n] = sizes[i]
            out_kind[n] = 6
            out_side[n] = side
            out_seq[n] = seq
            cond = 1
            if sizes[i] < 100:
                cond |= 2
            if np.random.random() < off_share:
                out_venue[n] = 19
                cond |= 8
            else:
                out_venue[n] = LIT_VENUES[int(np.random.random() * LIT_VENUES.shape[0])]
            out_cond[n] = cond
            out_flags[n] = 0x80
            n += 1
    return n


def ticks_from_bars(bars: np.ndarray, symbol_id: int, *, interval_s: float = 1.0, spread_ticks: int = 1,
                    off_exchange: float = 0.45, seed: int = 0, latency_ns: int = 350_000
                    ) -> tuple[np.ndarray, BarsReport]:
    """Trades and NBBO quotes (``EVENT_DTYPE``, merge order) consistent with each bar.

    ``bars`` is a ``BAR_DTYPE`` array (``read_iqfeed_bars``): ``ts`` ns UTC of the interval start,
    prices in $0.0001, ``period_volume``, ``n_trades`` (0 = unknown).  Deterministic in ``seed``.
    """
    rep = BarsReport(bars_read=int(bars.shape[0]))
    o = bars["open"].astype(np.int64)
    h = bars["high"].astype(np.int64)
    lo = bars["low"].astype(np.int64)
    c = bars["close"].astype(np.int64)
    vol = bars["period_volume"].astype(np.int64)
    invalid = (lo > h) | (o < lo) | (o > h) | (c < lo) | (c > h) | (lo <= 0) | (vol < 0)
    rep.bars_invalid = [int(i) for i in np.flatnonzero(invalid)]
    empty = (vol == 0) & ~invalid
    rep.bars_empty = int(empty.sum())
    # distinct prices needed: open, high, low, close collapse when equal
    four = np.sort(np.stack([o, h, lo, c], axis=1), axis=1)
    need = 1 + (np.diff(four, axis=1) != 0).sum(axis=1)
    infeasible = (vol < need) & ~invalid & ~empty
    rep.bars_infeasible = [int(i) for i in np.flatnonzero(infeasible)]
    use = ~(invalid | empty | infeasible)
    rep.bars_used = int(use.sum())
    ntr = bars["n_trades"].astype(np.int64).copy()
    rng = np.random.default_rng(seed)
    guess = np.maximum(1, np.minimum(vol // 100, rng.geometric(0.35, vol.shape[0])))
    ntr = np.where(ntr > 0, ntr, guess)
    ntr = np.minimum(ntr, np.maximum(vol, 1))
    cap = int((np.maximum(ntr, 4)[use]).sum() * 3) + 8
    cols = [np.zeros(cap, np.int64) for _ in range(9)]
    interval_ns = int(round(interval_s * NS))
    n = _fill(bars["ts"].astype(np.int64), o, h, lo, c, vol, ntr, interval_ns, int(spread_ticks),
              float(off_exchange), int(seed) & 0x7FFFFFFF, symbol_id, use, *cols)
    out = ev.empty(n)
    ts, px, sz, kind, side, seq, venue, cond, flags = (x[:n] for x in cols)
    out["ts_event"] = ts
    out["ts_recv"] = np.maximum.accumulate(ts + latency_ns) if n else ts
    out["seq"] = seq
    out["price"] = px
    out["size"] = sz
    out["symbol"] = symbol_id
    out["kind"] = kind.astype(np.uint8)
    out["side"] = side.astype(np.int8)
    out["venue"] = venue.astype(np.int16)
    out["conditions"] = cond.astype(np.uint32)
    out["flags"] = flags.astype(np.uint8) | ev.FLAG_TS_RECV_MODELED
    return out, rep
