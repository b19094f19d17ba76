"""The compiled core of the market simulator: one symbol-day of order flow on a price-time book.

One call of :func:`simulate_day` runs a continuous-time event loop (competing Poisson processes)
over the regular session and writes every market message into a 2-D int64 output table (one row
per normalized event, columns ``C_*``); :mod:`quantedge.synth.generate` turns that table into
``EVENT_DTYPE`` records.  Everything is in one ``@njit(cache=True)`` function family because a
symbol-day is 10^4-10^6 messages and Python per message would be far too slow.

Prices live on a *ladder* of valid quote prices (Reg NMS sub-penny rule): ladder index ``i`` is
$0.0001 * i below $1 and $1 + $0.01 * (i - 10000) at and above $1, so any book level is a legal
quote and stepping one index is stepping one tick whatever the price.  The book is a window of
``WINDOW`` ladder indices around the opening price; each level holds a FIFO (doubly linked list)
of orders, which gives price-time priority and O(1) cancels.

Agents (all driven by one seeded RNG, so a symbol-day is a pure function of its seed):

* noise traders - limit orders at or near the touch (sizes with odd lots), cancels with a constant
  hazard per resting order, marketable orders whose direction leans towards a latent fundamental
  value ``V`` (this ties the mid to ``V`` and gives realistic mean-reverting microstructure);
* market makers - one bid and one ask each around ``V``, skewed against inventory;
* off-exchange prints (TRF) at or inside the NBBO, not touching the lit book;
* episode agents - see :mod:`quantedge.synth.episodes` for what each planted behaviour does.
"""

# ruff: noqa: NPY002 - Numba kernels support only the legacy np.random API (seeded per call)
from __future__ import annotations

import numpy as np
from numba import njit

# ---- output table columns ----------------------------------------------------------------------
C_TS = 0
C_SEQ = 1
C_OID = 2
C_PX = 3
C_SZ = 4
C_KIND = 5
C_SIDE = 6
C_ACT = 7
C_VENUE = 8
C_COND = 9
NCOL = 10

# event kinds / actions / conditions (mirrors quantedge.events; numba needs module constants)
K_CLEAR = 1
K_ORDER = 3
K_DEPTH = 4
K_QUOTE = 5
K_TRADE = 6
A_ADD = 1
A_CANCEL = 3
A_DELETE = 4
A_EXECUTE = 5
COND_REGULAR = 1
COND_ODD_LOT = 2
COND_OFF_EXCHANGE = 8
VENUE_TRF = 19

# ---- parameter vector layout (float64) -----------------------------------------------------------
P_P0 = 0  # opening price, $0.0001 units
P_DUR = 1  # session length, seconds
P_VOL = 2  # daily volatility of the fundamental (fraction)
P_RLIM = 3  # noise limit orders per second (both sides)
P_RMKT = 4  # noise marketable orders per second
P_HAZ = 5  # cancel hazard per resting noise order per second
P_PJOIN = 6  # probability a limit order joins the touch
P_GEO = 7  # mean extra depth (quote steps) of non-joining limit orders
P_PIN = 8  # probability a limit order improves inside a wide spread
P_LIM_MU = 9  # log median limit size (round lots)
P_LIM_SIG = 10
P_PODD_LIM = 11  # probability a limit order is an odd lot
P_PODD = 12  # probability a marketable order is an odd lot
P_LOT_MU = 13  # log median marketable size (round lots)
P_LOT_SIG = 14
P_NMM = 15  # number of market makers
P_MMHS = 16  # market-maker half spread, bps of V
P_MMSIZE = 17  # market-maker quote size, shares
P_MMSKEW = 18  # quote skew, bps per 1000 shares of inventory
P_MMRATE = 19  # requotes per market maker per second
P_RDARK = 20  # off-exchange prints per second
P_BETA = 21  # strength of the lean of marketable flow towards V
P_QSUB = 22  # noise quote step below $1, ladder ticks ($0.0001)
P_MAXWALK = 23  # protective limit of marketable orders, quote steps through the book
P_USHAPE = 24  # open/close activity boost (U-shaped intraday intensity)
P_DARKSZ = 25  # off-exchange size multiplier
P_HJUMP = 26  # self-excitation of marketable flow: intensity jump per order (x base rate)
P_HTAU = 27  # decay time of that excitation, seconds (bursts of prints, as in real tapes)
P_STOP = 28  # stop the run this many seconds after the open (0 = the whole session): a probe of the opening
P_MARKUP = 29  # the move after an accumulation episode: fundamental rise at intensity 1 (fraction; 0: none)
P_MARKUP_S = 30  # ... spread evenly over this many seconds from the episode's end
NPAR = 31

# ---- episode kinds (labels) ------------------------------------------------------------------------
EP_ABSORPTION = 1
EP_CREEP = 2
EP_DARK = 3
EP_SINKHOLE = 4
EP_CONTRACTION = 5
EP_DUMPING = 6

SUB = 10000  # $1 in fixed point: the sub-penny boundary
WINDOW = 1 << 15
OWN_NOISE = 0
OWN_MM = 1  # market makers are OWN_MM .. OWN_MM + n - 1
OWN_ICE = 100
OWN_SINK = 101
OWN_CREEP = 102
MAX_AGENT = 64
SINK_LEVELS = 10
LIT_VENUES = np.array([5, 5, 5, 26, 26, 11, 11, 153, 18, 10, 28, 80], dtype=np.int64)


@njit(cache=True, _nrt=False)
def ladder_price(i: int) -> int:
    """Ladder index -> price ($0.0001)."""
    if i < SUB:
        return i
    return SUB + (i - SUB) * 100


@njit(cache=True, _nrt=False)
def ladder_floor(p: float) -> int:
    """Largest ladder index whose price is <= p."""
    if p < SUB:
        return int(np.floor(p))
    return SUB + int(np.floor((p - SUB) / 100.0))


@njit(cache=True, _nrt=False)
def ladder_ceil(p: float) -> int:
    """Smallest ladder index whose price is >= p."""
    if p < SUB:
        return int(np.ceil(p))
    return SUB + int(np.ceil((p - SUB) / 100.0))


@njit(cache=True, _nrt=False)
def _lot_size(podd: float, mu: float, sig: float) -> int:
    """Order size: an odd lot (1-99, skewed small) or round lots from a lognormal."""
    if np.random.random() < podd:
        s = int(np.exp(np.random.normal(3.0, 0.9)))
        return min(99, max(1, s))
    lots = int(np.floor(np.exp(np.random.normal(mu, sig)) + 0.5))
    return 100 * max(1, lots)


@njit(cache=True, _nrt=False)
def _emit(out, n, ts, seq, oid, px, sz, kind, side, act, venue, cond):
    out[n, C_TS] = ts
    out[n, C_SEQ] = seq
    out[n, C_OID] = oid
    out[n, C_PX] = px
    out[n, C_SZ] = sz
    out[n, C_KIND] = kind
    out[n, C_SIDE] = side
    out[n, C_ACT] = act
    out[n, C_VENUE] = venue
    out[n, C_COND] = cond
    return n + 1


@njit(cache=True)
def simulate_day(par, seed, ep_kind, ep_t0, ep_t1, ep_x, out, final):  # noqa: C901 - one event loop
    """Run one symbol-day; returns the number of rows written to ``out`` or -1 when it is full.

    ``ep_*`` describe the planted episodes (kind, start/end in seconds after the open, intensity in
    (0, 1], sorted and non-overlapping; a sinkhole's lead-in decline runs before its start).
    ``final`` receives (closing V, closing mid, rows, orders).  ``out`` rows are in emission order;
    ``C_TS`` is ns after the open.
    """
    np.random.seed(seed)
    cap = out.shape[0]
    p0 = par[P_P0]
    dur = par[P_DUR]
    stop = par[P_STOP] if par[P_STOP] > 0.0 else dur
    nmm = int(par[P_NMM])
    sig_s = par[P_VOL] / np.sqrt(dur)
    lo = ladder_floor(p0) - WINDOW // 2
    if lo < 1:
        lo = 1
    maxo = cap // 2 + 16
    bq = np.zeros(WINDOW, np.int64)
    head = np.full(WINDOW, -1, np.int64)
    tail = np.full(WINDOW, -1, np.int64)
    o_lvl = np.zeros(maxo, np.int64)
    o_rem = np.zeros(maxo, np.int64)
    o_side = np.zeros(maxo, np.int64)
    o_prev = np.full(maxo, -1, np.int64)
    o_next = np.full(maxo, -1, np.int64)
    o_own = np.zeros(maxo, np.int64)
    o_lpos = np.full(maxo, -1, np.int64)
    live = np.zeros(maxo, np.int64)
    nlive = 0
    norders = 0
    bb = -1
    ba = WINDOW
    mm_bid = np.full(max(nmm, 1), -1, np.int64)
    mm_ask = np.full(max(nmm, 1), -1, np.int64)
    mm_inv = np.zeros(max(nmm, 1), np.float64)
    agent = np.full(MAX_AGENT, -1, np.int64)
    nagent = 0
    sink_oid = np.full(SINK_LEVELS, -1, np.int64)
    sink_lvl = np.zeros(SINK_LEVELS, np.int64)
    n = 0
    seq = 0
    V = p0
    t = 0.0
    nep = ep_kind.shape[0]
    ep = 0  # next / current episode index
    active = 0  # kind of the active episode (0 none)
    ax = 0.0
    a_t0 = 0.0
    a_t1 = 0.0
    a_v0 = 0.0
    ice_lvl = -1
    ice_disp = 0
    creep_ask0 = 0
    creep_steps = 0
    creep_gap = 1  # ladder levels between the accumulator's stepped-up bid and the offer
    last_bbpx = -1
    last_bbq = -1
    last_bapx = -1
    last_baq = -1
    hx = 0.0  # excitation of marketable flow
    mk_t1 = 0.0  # the markup after an accumulation episode: until when, its drift, its base price
    mk_slope = 0.0
    mk_v0 = 0.0
    mk_x = 0.0
    mk_p0 = 0.0  # the mid at the episode's end: the buyer's schedule climbs from it

    # opening book: a clear of both sides (a consumer's book may still hold the previous day's
    # levels and order ids, which restart every day), then every market maker quotes and noise
    # orders rest on both sides, as ordinary adds at the open, so the day's stream is self-contained
    seq += 1
    n = _emit(out, n, 0, seq, 0, 0, 0, K_CLEAR, 0, 0, 0, 0)
    for m in range(nmm):
        hs = max(par[P_MMHS] * 1e-4 * V, 0.5)
        size = max(100, int(par[P_MMSIZE] / 100.0 + 0.5) * 100)
        n, bb, ba, norders = _requote(out, n, 0, seq, m, V, hs, size, size, lo, bq, head, tail, o_lvl, o_rem,
                                      o_side, o_prev, o_next, o_own, o_lpos, live, bb, ba, mm_bid, mm_ask,
                                      norders, False)
    for k in range(40):
        side = 1 if k % 2 == 0 else -1
        lvl = _noise_level(side, bb, ba, lo, V, par, 0.3)
        if 0 < lvl < WINDOW - 1:
            size = _lot_size(par[P_PODD_LIM], par[P_LIM_MU], par[P_LIM_SIG])
            n, oi, bb, ba, norders = _add(out, n, 0, seq, side, lvl, size, OWN_NOISE, lo, bq, head, tail,
                                          o_lvl, o_rem, o_side, o_prev, o_next, o_own, bb, ba, norders)
            o_lpos[oi] = nlive
            live[nlive] = oi
            nlive += 1
    n, last_bbpx, last_bbq, last_bapx, last_baq = _quote(
        out, n, 0, seq, lo, bq, bb, ba, last_bbpx, last_bbq, last_bapx, last_baq)
    while True:
        if n > cap - 4096 or norders > maxo - 1024:
            return -1
        # ---------------------------------------------------------- episode bookkeeping
        if active != 0 and t >= a_t1:
            # episode ends: agent orders are withdrawn
            seq += 1
            tsn = int(t * 1e9)
            for k in range(nagent):
                oi = agent[k]
                if oi >= 0 and o_rem[oi] > 0:
                    n = _cancel(out, n, tsn, seq, oi, o_rem[oi], lo, bq, head, tail, o_lvl, o_rem,
                                o_side, o_prev, o_next, o_lpos, live)
                    nlive = _live_fix(oi, o_lpos, live, nlive, o_rem)
                    bb, ba = _fix_best(bq, bb, ba)
            nagent = 0
            if par[P_MARKUP] > 0.0 and par[P_MARKUP_S] > 0.0 and active != EP_DUMPING:
                mk_t1 = t + par[P_MARKUP_S]
                mk_slope = par[P_MARKUP] * (0.5 + 0.5 * ax) / par[P_MARKUP_S]
                mk_v0 = V
                mk_x = ax
                mk_p0 = V
                if bb >= 0 and ba < WINDOW:
                    mk_p0 = 0.5 * (ladder_price(lo + bb) + ladder_price(lo + ba))
            active = 0
            ep += 1
            n, last_bbpx, last_bbq, last_bapx, last_baq = _quote(
                out, n, tsn, seq, lo, bq, bb, ba, last_bbpx, last_bbq, last_bapx, last_baq)
        lead = 0.0
        if active == 0 and ep < nep and ep_kind[ep] == EP_SINKHOLE:
            lead = 300.0
        if active == 0 and ep < nep and t >= ep_t0[ep]:
            active = ep_kind[ep]
            ax = ep_x[ep]
            a_t0 = ep_t0[ep]
            a_t1 = ep_t1[ep]
            a_v0 = V
            nagent = 0
            if active == EP_ABSORPTION and bb >= 0:
                ice_lvl = bb
                ice_disp = int(par[P_MMSIZE] * (0.6 + 0.8 * ax) / 100.0 + 0.5) * 100
                if ice_disp < 100:
                    ice_disp = 100
                seq += 1
                tsn = int(t * 1e9)
                n, oi, bb, ba, norders = _add(out, n, tsn, seq, 1, ice_lvl, ice_disp, OWN_ICE, lo, bq, head,
                                              tail, o_lvl, o_rem, o_side, o_prev, o_next, o_own, bb, ba,
                                              norders)
                agent[0] = oi
                nagent = 1
            if active == EP_CREEP:
                creep_ask0 = ba
                creep_steps = 1 if ax < 0.5 else 2
                creep_gap = ba - bb if bb >= 0 and ba < WINDOW and ba > bb else 1
                # ... and at least 15-40 bps of the price (by intensity): 1-2 steps on a small cap,
                # 15-40 cents on a $100 stock, where 1-2 cents would be lost in the mid's noise
                if ba < WINDOW - 1:
                    st = _step(lo + ba, par[P_QSUB])
                    dpx = max(ladder_price(lo + ba + st) - ladder_price(lo + ba), 1)
                    need = int(np.ceil((15.0 + 25.0 * ax) * 1e-4 * ladder_price(lo + ba) / dpx))
                    if need > creep_steps:
                        creep_steps = need
                # sellers step away: resting offers up to the creep's target thin to a round lot,
                # so the rise needs little volume (low volume per cent moved)
                if ba < WINDOW:
                    seq += 1
                    tsn = int(t * 1e9)
                    top = ba + creep_steps * _step(lo + ba, par[P_QSUB])
                    for lvl in range(ba, min(top + 1, WINDOW - 1)):
                        oi = head[lvl]
                        while oi >= 0:
                            nx = o_next[oi]
                            if o_side[oi] == -1 and o_rem[oi] > 100:
                                n = _cancel(out, n, tsn, seq, oi, o_rem[oi] - 100, lo, bq, head, tail, o_lvl,
                                            o_rem, o_side, o_prev, o_next, o_lpos, live)
                            oi = nx
                    n, last_bbpx, last_bbq, last_bapx, last_baq = _quote(
                        out, n, tsn, seq, lo, bq, bb, ba, last_bbpx, last_bbq, last_bapx, last_baq)
            if active == EP_SINKHOLE and bb >= 0:
                st = _step(lo + bb, par[P_QSUB])
                for k in range(SINK_LEVELS):
                    sink_lvl[k] = bb - k * st
                    sink_oid[k] = -1
        # ---------------------------------------------------------- rates
        tau = t / 1800.0
        ushape = 1.0 + par[P_USHAPE] * (np.exp(-tau) + 0.6 * np.exp(-(dur - t) / 1800.0))
        r_lim = par[P_RLIM] * ushape
        r_mkt = par[P_RMKT] * ushape * (1.0 + hx)
        r_can = nlive * par[P_HAZ]
        r_mm = nmm * par[P_MMRATE]
        r_dark = par[P_RDARK] * ushape
        volm = 1.0
        slope = 0.0  # fundamental drift, fraction of a_v0 per second
        r_e1 = 0.0  # episode agent 1
        r_e2 = 0.0  # episode agent 2
        hs_mult = 1.0
        bid_mult = 1.0
        join_p = par[P_PJOIN]
        if active == 0 and lead > 0.0 and t >= ep_t0[ep] - lead:
            slope = -(0.02 + 0.02 * ep_x[ep]) / lead
        if active == EP_ABSORPTION:
            r_e1 = r_mkt * (0.8 + 3.0 * ax) + 0.2  # sellers hitting the iceberg bid
            volm = 0.3
            slope = 0.0004 / (a_t1 - a_t0)
        elif active == EP_CREEP:
            r_mkt *= 1.0 - 0.7 * ax
            r_dark *= 1.0 - 0.7 * ax
            r_e1 = 3.0
            volm = 0.15
        elif active == EP_DARK:
            r_e1 = (r_mkt + r_dark) * (1.0 + 4.0 * ax) + 0.3
            volm = 0.5
            slope = (0.004 + 0.012 * ax) / (a_t1 - a_t0)
        elif active == EP_SINKHOLE:
            r_e1 = r_mkt * (0.8 + 3.0 * ax) + 0.2
            r_e2 = 2.0 + 6.0 * ax
            volm = 0.2
        elif active == EP_CONTRACTION:
            hs_mult = 0.05
            bid_mult = 1.5 + 1.5 * ax
            volm = 0.1 + 0.3 * (1.0 - ax)
            slope = (0.0005 + 0.0015 * ax) / (a_t1 - a_t0)
            r_mkt *= 0.6
            r_dark *= 0.6
            join_p = 0.9
            r_mm *= 3.0
        elif active == EP_DUMPING:
            r_e1 = r_mkt * (1.5 + 5.0 * ax) + 0.3  # aggressive sells
            r_e2 = 1.0 + 4.0 * ax  # bids pulled / off-exchange sells
            hs_mult = 2.0 + 4.0 * ax
            bid_mult = 0.3
            slope = -(0.015 + 0.04 * ax) / (a_t1 - a_t0)
            r_mm *= 3.0
        mk_on = active == 0 and t < mk_t1
        if mk_on:  # the markup: a buyer lifts the offers while the fundamental rises
            r_e1 = r_mkt * (1.0 + 3.0 * mk_x) + 0.2
        rtot = r_lim + r_mkt + r_can + r_mm + r_dark + r_e1 + r_e2
        dt = np.random.exponential(1.0 / rtot)
        t += dt
        if t >= dur or t >= stop:
            break
        hx *= np.exp(-dt / par[P_HTAU])
        V *= 1.0 + sig_s * volm * np.sqrt(dt) * np.random.normal()
        if active != 0:
            V += a_v0 * slope * dt
        elif slope != 0.0:
            V += V * slope * dt
        if t < mk_t1:
            V += mk_v0 * mk_slope * dt
        if V < 0.05 * p0:
            V = 0.05 * p0
        tsn = int(t * 1e9)
        seq += 1
        u = np.random.random() * rtot
        # ---------------------------------------------------------- events
        if u < r_lim:
            side = 1 if np.random.random() < 0.5 else -1
            lvl = _noise_level(side, bb, ba, lo, V, par, join_p)
            if 0 < lvl < WINDOW - 1:
                size = _lot_size(par[P_PODD_LIM], par[P_LIM_MU], par[P_LIM_SIG])
                if active == EP_CREEP and side == -1:
                    size = min(size, 100)  # thin offers while the price creeps
                n, oi, bb, ba, norders = _add(out, n, tsn, seq, side, lvl, size, OWN_NOISE, lo, bq, head,
                                              tail, o_lvl, o_rem, o_side, o_prev, o_next, o_own, bb, ba,
                                              norders)
                o_lpos[oi] = nlive
                live[nlive] = oi
                nlive += 1
        elif u < r_lim + r_can:
            if nlive > 0:
                oi = live[int(np.random.random() * nlive)]
                amt = o_rem[oi]
                if amt >= 200 and np.random.random() < 0.05:
                    amt = (amt // 200) * 100  # partial cancel
                n = _cancel(out, n, tsn, seq, oi, amt, lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev,
                            o_next, o_lpos, live)
                nlive = _live_fix(oi, o_lpos, live, nlive, o_rem)
                bb, ba = _fix_best(bq, bb, ba)
        elif u < r_lim + r_can + r_mkt:
            if bb >= 0 and ba < WINDOW:
                mid = 0.5 * (ladder_price(lo + bb) + ladder_price(lo + ba))
                spr = max(ladder_price(lo + ba) - ladder_price(lo + bb), 1)
                dev = (V - mid) / spr
                pbuy = 0.5 + 0.45 * np.tanh(par[P_BETA] * dev)
                side = 1 if np.random.random() < pbuy else -1
                size = _lot_size(par[P_PODD], par[P_LOT_MU], par[P_LOT_SIG])
                hx += par[P_HJUMP]
                n, bb, ba, nlive, norders, nagent = _market(
                    out, n, tsn, seq, side, size, int(par[P_MAXWALK]), par, lo, bq, head, tail, o_lvl,
                    o_rem, o_side, o_prev, o_next, o_own, o_lpos, live, nlive, bb, ba, mm_inv, norders,
                    ice_lvl if active == EP_ABSORPTION else -1, ice_disp, agent, nagent)
        elif u < r_lim + r_can + r_mkt + r_mm:
            m = int(np.random.random() * nmm)
            fair = V * (1.0 - par[P_MMSKEW] * 1e-4 * mm_inv[m] / 1000.0)
            hs = max(par[P_MMHS] * 1e-4 * V * hs_mult, 0.5)
            size = int(par[P_MMSIZE] * (0.5 + np.random.random()) / 100.0 + 0.5) * 100
            size = max(size, 100)
            bsz = max(100, int(size * bid_mult / 100.0 + 0.5) * 100)
            if active == EP_CONTRACTION:
                size = max(100, int(size * 1.5 / 100.0 + 0.5) * 100)
            if active == EP_CREEP:
                size = 100  # offers stay thin while the price creeps
            n, bb, ba, norders = _requote(out, n, tsn, seq, m, fair, hs, bsz, size, lo, bq, head, tail,
                                          o_lvl, o_rem, o_side, o_prev, o_next, o_own, o_lpos, live,
                                          bb, ba, mm_bid, mm_ask, norders, active == EP_CONTRACTION)
        elif u < r_lim + r_can + r_mkt + r_mm + r_dark:
            if bb >= 0 and ba < WINDOW:
                size = int(_lot_size(par[P_PODD], par[P_LOT_MU], par[P_LOT_SIG]) * par[P_DARKSZ])
                r = np.random.random()
                side = 0 if r < 0.3 else (1 if r < 0.65 else -1)
                n = _dark(out, n, tsn, seq, side, max(size, 1), lo, bb, ba)
        elif u < r_lim + r_can + r_mkt + r_mm + r_dark + r_e1:
            if active == EP_ABSORPTION or active == EP_SINKHOLE:
                if bb >= 0 and ba < WINDOW:
                    size = int(_lot_size(par[P_PODD] * 0.5, par[P_LOT_MU], par[P_LOT_SIG]) * (1.0 + ax))
                    n, bb, ba, nlive, norders, nagent = _market(
                        out, n, tsn, seq, -1, size, 1, par, lo, bq, head, tail, o_lvl, o_rem, o_side,
                        o_prev, o_next, o_own, o_lpos, live, nlive, bb, ba, mm_inv, norders,
                        ice_lvl if active == EP_ABSORPTION else -1, ice_disp, agent, nagent)
            elif active == EP_CREEP:
                target = creep_ask0 + int(creep_steps * min(1.0, (t - a_t0) / (a_t1 - a_t0)) *
                                          _step(lo + creep_ask0, par[P_QSUB]) + 0.5)
                if ba < WINDOW and bb >= 0 and ba <= target:
                    old = ba
                    size = min(bq[ba], 100 * (1 + int(np.random.random() * 5)))  # small / medium buy
                    n, bb, ba, nlive, norders, nagent = _market(
                        out, n, tsn, seq, 1, size, 0, par, lo, bq, head, tail, o_lvl, o_rem, o_side,
                        o_prev, o_next, o_own, o_lpos, live, nlive, bb, ba, mm_inv, norders, -1, 0,
                        agent, nagent)
                    nxt = old + _step(lo + old, par[P_QSUB])
                    if bq[old] == 0 and nxt < WINDOW - 1 and bq[nxt] == 0 and nagent < MAX_AGENT:
                        osz = _lot_size(0.3, 0.0, 0.4)
                        n, oi, bb, ba, norders = _add(out, n, tsn, seq, -1, nxt, osz, OWN_CREEP, lo, bq, head,
                                                      tail, o_lvl, o_rem, o_side, o_prev, o_next, o_own, bb,
                                                      ba, norders)
                        agent[nagent] = oi
                        nagent += 1
                    # the accumulator steps its bid up behind the offer (at the spread the episode
                    # began with): the best bid and the mid creep with the ask, the spread does not
                    # simply widen; an ordinary resting order (noise cancels may take it later)
                    if bb >= 0 and ba < WINDOW:
                        st = _step(lo + ba, par[P_QSUB])
                        want = ba - max(1, creep_gap // st) * st
                        if want > bb and want > 0:
                            n, oi, bb, ba, norders = _add(out, n, tsn, seq, 1, want, 100 * (1 + (seq & 1)),
                                                          OWN_NOISE, lo, bq, head, tail, o_lvl, o_rem, o_side,
                                                          o_prev, o_next, o_own, bb, ba, norders)
                            o_lpos[oi] = nlive
                            live[nlive] = oi
                            nlive += 1
                    V = max(V, a_v0 + (ladder_price(lo + ba) - ladder_price(lo + creep_ask0)))
            elif active == EP_DARK:
                if bb >= 0 and ba < WINDOW:
                    size = int(_lot_size(0.1, par[P_LOT_MU] + 0.5, par[P_LOT_SIG]) * (1.0 + ax))
                    n = _dark(out, n, tsn, seq, 1, size, lo, bb, ba)
            elif active == EP_DUMPING or mk_on:
                lift = bb >= 0 and ba < WINDOW
                if lift and mk_on:  # the markup's buyer lifts only offers on its schedule: from the
                    # mid at the episode's end up by the planted rise, evenly over the markup's duration
                    lift = not ladder_price(lo + ba) > mk_p0 * (
                        1.0 + mk_slope * (t - (mk_t1 - par[P_MARKUP_S])) + 0.0005)
                if lift:
                    x = mk_x if mk_on else ax
                    size = int(_lot_size(par[P_PODD] * 0.5, par[P_LOT_MU] + 0.3, par[P_LOT_SIG]) *
                               (1.0 + x))
                    n, bb, ba, nlive, norders, nagent = _market(
                        out, n, tsn, seq, 1 if mk_on else -1, size, int(par[P_MAXWALK]) + 2, par, lo, bq,
                        head, tail, o_lvl, o_rem, o_side, o_prev, o_next, o_own, o_lpos, live, nlive, bb, ba,
                        mm_inv, norders, -1, 0, agent, nagent)
        else:
            if active == EP_SINKHOLE:
                # replenish the deep bid ladder; levels at or above the ask are skipped
                ssz = max(100, int(par[P_MMSIZE] * (1.5 + 3.0 * ax) / 100.0) * 100)
                for k in range(SINK_LEVELS):
                    oi = sink_oid[k]
                    if (oi < 0 or o_rem[oi] < ssz // 2) and sink_lvl[k] < ba and sink_lvl[k] > 0 \
                            and nagent < MAX_AGENT:
                        n, oi2, bb, ba, norders = _add(out, n, tsn, seq, 1, sink_lvl[k], ssz, OWN_SINK, lo,
                                                       bq, head, tail, o_lvl, o_rem, o_side, o_prev, o_next,
                                                       o_own, bb, ba, norders)
                        sink_oid[k] = oi2
                        agent[nagent] = oi2
                        nagent += 1
                # agent orders that are fully filled free their slots
                k2 = 0
                for k in range(nagent):
                    if o_rem[agent[k]] > 0:
                        agent[k2] = agent[k]
                        k2 += 1
                nagent = k2
            elif active == EP_DUMPING:
                if np.random.random() < 0.5:
                    # bid depth evaporates: the resting bids at the touch are pulled
                    if bb >= 0:
                        lvl = bb
                        oi = head[lvl]
                        while oi >= 0:
                            nx = o_next[oi]
                            if o_own[oi] == OWN_NOISE:
                                n = _cancel(out, n, tsn, seq, oi, o_rem[oi], lo, bq, head, tail, o_lvl, o_rem,
                                            o_side, o_prev, o_next, o_lpos, live)
                                nlive = _live_fix(oi, o_lpos, live, nlive, o_rem)
                            oi = nx
                        bb, ba = _fix_best(bq, bb, ba)
                elif bb >= 0 and ba < WINDOW:
                    size = int(_lot_size(0.1, par[P_LOT_MU] + 0.5, par[P_LOT_SIG]) * (1.0 + ax))
                    n = _dark(out, n, tsn, seq, -1, size, lo, bb, ba)
        n, last_bbpx, last_bbq, last_bapx, last_baq = _quote(
            out, n, tsn, seq, lo, bq, bb, ba, last_bbpx, last_bbq, last_bapx, last_baq)
    final[0] = V
    if bb >= 0 and ba < WINDOW:
        final[1] = 0.5 * (ladder_price(lo + bb) + ladder_price(lo + ba))
    else:
        final[1] = V
    final[2] = n
    final[3] = norders
    return n


@njit(cache=True, _nrt=False)
def _step(idx, qsub):
    """Noise quote step (ladder ticks) at a ladder index: one cent at/above $1, ``qsub`` below."""
    if idx >= SUB:
        return 1
    return max(1, int(qsub))


@njit(cache=True, _nrt=False)
def _noise_level(side, bb, ba, lo, V, par, join_p):
    """Where a noise limit order rests: inside a wide spread, at the touch, or a few steps deeper."""
    if side == 1:
        if bb < 0:
            ref = ladder_floor(V * (1.0 - par[P_MMHS] * 1e-4)) - lo
            if ba < WINDOW and ref >= ba:
                ref = ba - 1
            return ref
        st = _step(lo + bb, par[P_QSUB])
        if ba < WINDOW and ba - bb >= 2 * st and np.random.random() < par[P_PIN]:
            # improve by whole steps, always leaving at least one step to the offer
            k = 1 + int(np.random.random() * ((ba - bb) // st - 1))
            return bb + k * st
        if np.random.random() < join_p:
            return bb
        return bb - st * (1 + int(np.random.exponential(par[P_GEO])))
    if ba >= WINDOW:
        ref = ladder_ceil(V * (1.0 + par[P_MMHS] * 1e-4)) - lo
        if bb >= 0 and ref <= bb:
            ref = bb + 1
        return ref
    st = _step(lo + ba, par[P_QSUB])
    if bb >= 0 and ba - bb >= 2 * st and np.random.random() < par[P_PIN]:
        k = 1 + int(np.random.random() * ((ba - bb) // st - 1))
        return ba - k * st
    if np.random.random() < join_p:
        return ba
    return ba + st * (1 + int(np.random.exponential(par[P_GEO])))


@njit(cache=True, _nrt=False)
def _add(out, n, ts, seq, side, lvl, size, own, lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev, o_next,
         o_own, bb, ba, norders):
    oi = norders
    norders += 1
    o_lvl[oi] = lvl
    o_rem[oi] = size
    o_side[oi] = side
    o_own[oi] = own
    o_next[oi] = -1
    o_prev[oi] = tail[lvl]
    if tail[lvl] >= 0:
        o_next[tail[lvl]] = oi
    else:
        head[lvl] = oi
    tail[lvl] = oi
    bq[lvl] += size
    if side == 1 and lvl > bb:
        bb = lvl
    if side == -1 and lvl < ba:
        ba = lvl
    px = ladder_price(lo + lvl)
    n = _emit(out, n, ts, seq, oi + 1, px, size, K_ORDER, side, A_ADD, 0, 0)
    n = _emit(out, n, ts, seq, 0, px, bq[lvl], K_DEPTH, side, 0, 0, 0)
    return n, oi, bb, ba, norders


@njit(cache=True, _nrt=False)
def _unlink(oi, lvl, head, tail, o_prev, o_next):
    p = o_prev[oi]
    q = o_next[oi]
    if p >= 0:
        o_next[p] = q
    else:
        head[lvl] = q
    if q >= 0:
        o_prev[q] = p
    else:
        tail[lvl] = p
    o_prev[oi] = -1
    o_next[oi] = -1


@njit(cache=True, _nrt=False)
def _cancel(out, n, ts, seq, oi, amt, lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev, o_next, o_lpos, live):
    """Cancel ``amt`` shares of order ``oi`` (all of it -> delete); caller fixes best and live list."""
    lvl = o_lvl[oi]
    px = ladder_price(lo + lvl)
    if amt >= o_rem[oi]:
        amt = o_rem[oi]
        n = _emit(out, n, ts, seq, oi + 1, px, amt, K_ORDER, o_side[oi], A_DELETE, 0, 0)
        _unlink(oi, lvl, head, tail, o_prev, o_next)
    else:
        n = _emit(out, n, ts, seq, oi + 1, px, amt, K_ORDER, o_side[oi], A_CANCEL, 0, 0)
    o_rem[oi] -= amt
    bq[lvl] -= amt
    n = _emit(out, n, ts, seq, 0, px, bq[lvl], K_DEPTH, o_side[oi], 0, 0, 0)
    return n


@njit(cache=True, _nrt=False)
def _live_fix(oi, o_lpos, live, nlive, o_rem):
    """Drop a finished noise order from the cancel-candidate list (swap-remove)."""
    pos = o_lpos[oi]
    if pos >= 0 and o_rem[oi] == 0:
        last = live[nlive - 1]
        live[pos] = last
        o_lpos[last] = pos
        o_lpos[oi] = -1
        nlive -= 1
    return nlive


@njit(cache=True, _nrt=False)
def _fix_best(bq, bb, ba):
    while bb >= 0 and bq[bb] == 0:
        bb -= 1
    while ba < WINDOW and bq[ba] == 0:
        ba += 1
    return bb, ba


@njit(cache=True, _nrt=False)
def _market(out, n, ts, seq, side, size, maxwalk, par, lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev,
            o_next, o_own, o_lpos, live, nlive, bb, ba, mm_inv, norders, ice_lvl, ice_disp, agent, nagent):
    """A marketable order walking the opposite side up to ``maxwalk`` quote steps (rest is dropped).

    Every fill is an ``execute`` of the resting order plus a lit print.  An iceberg (``ice_lvl``)
    reloads its displayed size at the back of its level as soon as it is filled.
    """
    if side == 1:
        if ba >= WINDOW:
            return n, bb, ba, nlive, norders, nagent
        limit = ba + maxwalk * _step(lo + ba, par[P_QSUB])
    else:
        if bb < 0:
            return n, bb, ba, nlive, norders, nagent
        limit = bb - maxwalk * _step(lo + bb, par[P_QSUB])
    venue = LIT_VENUES[int(np.random.random() * LIT_VENUES.shape[0])]
    fills = 0
    while size > 0 and fills < 400:
        lvl = ba if side == 1 else bb
        if lvl < 0 or lvl >= WINDOW:
            break
        if (side == 1 and lvl > limit) or (side == -1 and lvl < limit):
            break
        oi = head[lvl]
        px = ladder_price(lo + lvl)
        while oi >= 0 and size > 0:
            f = min(size, o_rem[oi])
            n = _emit(out, n, ts, seq, oi + 1, px, f, K_ORDER, o_side[oi], A_EXECUTE, 0, 0)
            cond = COND_REGULAR
            if f < 100:
                cond |= COND_ODD_LOT
            n = _emit(out, n, ts, seq, 0, px, f, K_TRADE, side, 0, venue, cond)
            fills += 1
            o_rem[oi] -= f
            bq[lvl] -= f
            size -= f
            own = o_own[oi]
            if own >= OWN_MM and own < OWN_ICE:
                mm_inv[own - OWN_MM] -= side * f
            nx = o_next[oi]
            if o_rem[oi] == 0:
                _unlink(oi, lvl, head, tail, o_prev, o_next)
                nlive = _live_fix(oi, o_lpos, live, nlive, o_rem)
                if own == OWN_ICE and lvl == ice_lvl and nagent < MAX_AGENT:
                    n = _emit(out, n, ts, seq, 0, px, bq[lvl], K_DEPTH, -side, 0, 0, 0)
                    n, oi2, bb, ba, norders = _add(out, n, ts, seq, -side, lvl, ice_disp, OWN_ICE, lo, bq,
                                                   head, tail, o_lvl, o_rem, o_side, o_prev, o_next, o_own,
                                                   bb, ba, norders)
                    agent[0] = oi2
                    if nx < 0:
                        nx = oi2
            oi = nx
        n = _emit(out, n, ts, seq, 0, px, bq[lvl], K_DEPTH, -side, 0, 0, 0)
        if bq[lvl] == 0:
            bb, ba = _fix_best(bq, bb, ba)
            if (side == 1 and ba >= WINDOW) or (side == -1 and bb < 0):
                break
    return n, bb, ba, nlive, norders, nagent


@njit(cache=True, _nrt=False)
def _requote(out, n, ts, seq, m, fair, hs, bsz, asz, lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev,
             o_next, o_own, o_lpos, live, bb, ba, mm_bid, mm_ask, norders, join_bid):
    """Market maker ``m`` moves its bid/ask to fair -/+ half spread (post-only: never crosses).

    ``join_bid`` (a volatility contraction with upward bias): a bid that would rest below the best
    bid joins it instead, so the bigger bids are at the touch (micro-price above the mid) and not
    one level down behind a noise order while the makers' asks fill the touch."""
    bl = ladder_floor(fair - hs) - lo
    al = ladder_ceil(fair + hs) - lo
    if al <= bl:
        al = bl + 1
    for s in (1, -1):
        oi = mm_bid[m] if s == 1 else mm_ask[m]
        want = bl if s == 1 else al
        sz = bsz if s == 1 else asz
        if oi >= 0 and o_rem[oi] > 0:
            if o_lvl[oi] == want and o_rem[oi] * 2 >= sz:
                continue
            n = _cancel(out, n, ts, seq, oi, o_rem[oi], lo, bq, head, tail, o_lvl, o_rem, o_side, o_prev,
                        o_next, o_lpos, live)
            bb, ba = _fix_best(bq, bb, ba)
        # post-only, and never closer to the opposite touch than its own half spread: a maker
        # whose fair value is through the market backs off instead of locking the book
        gap = max(1, ladder_ceil(ladder_price(lo + bl) + 2 * hs) - (lo + bl)) // 2
        gap = max(1, gap)
        if s == 1:
            if ba < WINDOW and want > ba - gap:
                want = ba - gap
            if join_bid and bb >= 0 and want < bb and (ba >= WINDOW or bb < ba):
                want = bb
        else:
            if bb >= 0 and want < bb + gap:
                want = bb + gap
        if want <= 0 or want >= WINDOW - 1:
            continue
        n, oi2, bb, ba, norders = _add(out, n, ts, seq, s, want, sz, OWN_MM + m, lo, bq, head, tail, o_lvl,
                                       o_rem, o_side, o_prev, o_next, o_own, bb, ba, norders)
        if s == 1:
            mm_bid[m] = oi2
        else:
            mm_ask[m] = oi2
    return n, bb, ba, norders


@njit(cache=True, _nrt=False)
def _dark(out, n, ts, seq, side, size, lo, bb, ba):
    """An off-exchange (TRF) print at or inside the NBBO; buys print above the mid, sells below.

    Sub-penny prices are legal for prints (the sub-penny rule binds quotes only).  ``side`` is the
    simulator's truth but the event carries side 0, as real TRF prints carry no aggressor.
    """
    bpx = ladder_price(lo + bb)
    apx = ladder_price(lo + ba)
    mid2 = bpx + apx  # twice the mid, to stay in integers
    if side == 0:
        px = mid2 // 2
    elif side == 1:
        px = apx - int(np.random.random() * (apx - bpx) * 0.4)
    else:
        px = bpx + int(np.random.random() * (apx - bpx) * 0.4)
    cond = COND_REGULAR | COND_OFF_EXCHANGE
    if size < 100:
        cond |= COND_ODD_LOT
    return _emit(out, n, ts, seq, 0, px, size, K_TRADE, 0, 0, VENUE_TRF, cond)


@njit(cache=True, _nrt=False)
def _quote(out, n, ts, seq, lo, bq, bb, ba, lbp, lbq, lap, laq):
    """Emit an NBBO pair (bid, then ask) when the touch changed; empty side = price 0 size 0."""
    bp = ladder_price(lo + bb) if bb >= 0 else 0
    bs = bq[bb] if bb >= 0 else 0
    ap = ladder_price(lo + ba) if ba < WINDOW else 0
    asz = bq[ba] if ba < WINDOW else 0
    if bp != lbp or bs != lbq or ap != lap or asz != laq:
        n = _emit(out, n, ts, seq, 0, bp, bs, K_QUOTE, 1, 0, 0, 0)
        n = _emit(out, n, ts, seq, 0, ap, asz, K_QUOTE, -1, 0, 0, 0)
    return n, bp, bs, ap, asz


@njit(cache=True)
def latency_and_order(ts, seq, lat_ns, jitter_ns, seed, recv):
    """Modeled receive times: one latency draw per message (``seq``), never running backwards."""
    np.random.seed(seed)
    prev = np.int64(-1)
    last = np.int64(-(1 << 62))
    lat = np.int64(0)
    for i in range(ts.shape[0]):
        if seq[i] != prev:
            lat = np.int64(lat_ns + np.random.exponential(jitter_ns))
            prev = seq[i]
            r = ts[i] + lat
            if r < last:
                r = last
            last = r
        recv[i] = last
