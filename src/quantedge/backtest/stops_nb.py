"""The stop rules of :mod:`quantedge.backtest.stops`, compiled, for every symbol at once.

A strategy that watches thousands of symbols cannot afford a Python observation per symbol per
second (2,000 symbols x 57,600 s of a 04:00-20:00 day is 115 M calls), yet its stops must learn the
market (volatility, support levels, spread and depth baselines) before it enters.  A
:class:`StopBank` holds the state of one :class:`~quantedge.backtest.stops.StopSet` per symbol in
arrays and updates every armed symbol in one compiled pass per observation tick, reading the
venue's books and the tape counters directly (:class:`~quantedge.backtest.engine.MarketArrays`).

It computes what the Python rules compute, in the same order of floating-point operations, so a
bank fed the same observations gives the same stops and exit reasons
(tests/unit/test_stops_bank.py checks this against :class:`StopSet`).  One bounded difference:
the support rule keeps at most ``SUP_SLOTS`` price buckets per symbol; beyond that the bucket with
the least volume is replaced (the "space-saving" heavy-hitter scheme: a level holding more than
1/``SUP_SLOTS`` of the volume is never lost), where the Python rule keeps every bucket.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quantedge.book.state import LV_PX, LV_SZ, SD_NLEV

PRICE_SCALE = 10_000.0
SUP_SLOTS = 256
DEPTH_LEVELS = 10  # bid depth = shares on the top 10 bid levels

# rule codes (the order of a bank's rules is the order of its ``kinds``)
K_ATR, K_TRAIL, K_TIME, K_SUPPORT, K_MICRO = 0, 1, 2, 3, 4
KIND_CODES = {"atr": K_ATR, "trailing": K_TRAIL, "time": K_TIME, "support": K_SUPPORT, "micro": K_MICRO}
# exit reasons: the price rules by code, then the microstructure alarms
R_NONE, R_OFR, R_SPREAD, R_DEPTH = -1, 5, 6, 7
REASON_LABELS = {
    K_ATR: "atr",
    K_TRAIL: "trailing",
    K_TIME: "time",
    K_SUPPORT: "support",
    R_OFR: "order_flow_reversal",
    R_SPREAD: "spread_blowout",
    R_DEPTH: "bid_depth_collapse",
}

# float state per symbol
F_ENTRY, F_PEAK = 0, 1
F_BHI, F_BLO, F_BCLOSE = 2, 3, 4  # the open ATR bar
F_ATR, F_ATRL, F_PC = 5, 6, 7  # ATR, its long average, the previous bar close
F_SPRICE, F_BUCKET, F_BUFFER, F_STOT = 8, 9, 10, 11  # support: last price, bucket, buffer, total
F_SPAVG, F_DPAVG = 12, 13  # micro: spread and bid-depth averages
F_LAST_STOP = 14
F_LPRICE, F_LBID, F_LASK, F_LDEPTH = 15, 16, 17, 18  # the last observation (replayed while idle)
F_SUP_BID = 19  # support: the bid of the last bucket lookup (its slot: I_SUP_SLOT)
NF = 20
# int state per symbol
I_ARMED, I_ENTRY_TS, I_BT0, I_BT0_SET, I_PC_SET, I_SPRICE_SET = 0, 1, 2, 3, 4, 5
I_FW_N, I_FW_POS, I_SUP_N, I_SUP_FULL, I_REASON, I_OBS = 6, 7, 8, 9, 10, 11
I_LAST_TS, I_LHAS_DEPTH = 12, 13  # tick of the last observation applied (0: none yet)
I_SUP_SLOT = 14  # support: slot of the last bucket added to (-1: none)
NI = 15
ARMED_NEW, ARMED = 1, 2  # I_ARMED: armed, tape not yet cleared / observing
# parameters
P_BAR_NS, P_PERIOD, P_MULT_LO, P_MULT_HI, P_REG_PERIOD, P_REG_RATIO = 0, 1, 2, 3, 4, 5
P_TRAIL, P_T_LOSS, P_T_START, P_T_FULL, P_T_FLOOR = 6, 7, 8, 9, 10
P_S_SHARE, P_M_FLOW, P_M_WINDOW, P_M_SPREAD, P_M_DEPTH, P_M_ALPHA = 11, 12, 13, 14, 15, 16
P_DT = 17  # observation interval, ns
NP_ = 18
# tape rows (engine.MarketArrays.tape[row, symbol]): prints since the observer last reset the
# symbol's column; row-major by quantity so the per-tick scan of T_EVENTS reads one dense row
T_SV, T_VOL, T_AT_BID, T_HI, T_LO, T_EVENTS = 0, 1, 2, 3, 4, 5  # T_EVENTS: any event of the symbol
NT = 6
# observation mode per symbol (StopBank.mode, dense so the per-tick scan stays in cache):
M_OFF, M_LAZY, M_EVERY = 0, 1, 2  # not armed / flat, observed before: only when it had an event / every tick


def new_tape(n_symbols: int) -> np.ndarray:
    t = np.zeros((NT, n_symbols))
    t[T_HI] = -np.inf
    t[T_LO] = np.inf
    return t


@njit(cache=True, _nrt=False)
def tape_clear(tape, s: int) -> None:
    tape[T_SV, s] = tape[T_VOL, s] = tape[T_AT_BID, s] = tape[T_EVENTS, s] = 0.0
    tape[T_HI, s], tape[T_LO, s] = -np.inf, np.inf


@njit(cache=True, _nrt=False)
def tape_print(tape, s: int, side: int, px: float, q: float, bid: float, ask: float) -> None:
    """Count one print (dollars, shares) of symbol s; ``side`` 0 is classified against the quote."""
    if side == 0 and bid > 0 and ask > 0:
        side = -1 if px <= bid else (1 if px >= ask else 0)
    tape[T_SV, s] += side * q
    tape[T_VOL, s] += q
    if side < 0 or (bid > 0 and px <= bid):
        tape[T_AT_BID, s] += q
    tape[T_HI, s] = max(tape[T_HI, s], px)
    tape[T_LO, s] = min(tape[T_LO, s], px)


@njit(cache=True, inline="always", _nrt=False)
def _atr_bar(f, iv, s: int, P, ts: int, price: float, high: float, low: float) -> None:
    """BarAtr.update + AtrStop.update."""
    if iv[s, I_BT0_SET] == 0:
        iv[s, I_BT0], iv[s, I_BT0_SET] = ts, 1
    f[s, F_BHI] = max(f[s, F_BHI], high, price)
    f[s, F_BLO] = min(f[s, F_BLO], low, price)
    f[s, F_BCLOSE] = price
    bar_ns = int(P[P_BAR_NS])
    if bar_ns == 0 or ts - iv[s, I_BT0] >= bar_ns:
        hi, lo, close = f[s, F_BHI], f[s, F_BLO], f[s, F_BCLOSE]
        if iv[s, I_PC_SET] == 0:
            tr = hi - lo
        else:
            pc = f[s, F_PC]
            tr = max(hi - lo, abs(hi - pc), abs(lo - pc))
        f[s, F_PC], iv[s, I_PC_SET] = close, 1
        a = f[s, F_ATR]
        f[s, F_ATR] = tr if a == 0 else a + (tr - a) / P[P_PERIOD]
        a = f[s, F_ATRL]
        f[s, F_ATRL] = tr if a == 0 else a + (tr - a) / P[P_REG_PERIOD]
        iv[s, I_BT0] = ts
        f[s, F_BHI], f[s, F_BLO] = -np.inf, np.inf


@njit(cache=True, inline="always", _nrt=False)
def _support_add(f, iv, sup_px, sup_vol, s: int, bid: float, vol: float) -> None:
    """Add at-bid volume to the bid's bucket.  The bid mostly repeats between observations, so the
    last lookup's slot is tried first (bucket keys are unique: where a key is found does not
    matter); the key itself is computed only for a new bid."""
    f[s, F_STOT] += vol
    j = iv[s, I_SUP_SLOT]
    if j >= 0 and bid == f[s, F_SUP_BID]:
        sup_vol[s, j] += vol
        return
    b = f[s, F_BUCKET]
    key = round(math.floor(bid / b + 1e-9) * b, 6)
    n = iv[s, I_SUP_N]
    f[s, F_SUP_BID] = bid
    for j in range(n):
        if sup_px[s, j] == key:
            sup_vol[s, j] += vol
            iv[s, I_SUP_SLOT] = j
            return
    if n < sup_px.shape[1]:
        sup_px[s, n], sup_vol[s, n] = key, vol
        iv[s, I_SUP_N] = n + 1
        iv[s, I_SUP_SLOT] = n
        return
    jm = 0  # full: the bucket with the least volume gives its slot (and its count) to the new one
    for j in range(1, n):
        if sup_vol[s, j] < sup_vol[s, jm]:
            jm = j
    sup_px[s, jm] = key
    sup_vol[s, jm] += vol
    iv[s, I_SUP_FULL] = 1
    iv[s, I_SUP_SLOT] = jm


@njit(cache=True, inline="always", _nrt=False)
def _support_stop(f, iv, sup_px, sup_vol, s: int, P, peak: float, entry: float) -> float:
    n = iv[s, I_SUP_N]
    if iv[s, I_SUP_FULL]:
        tot = f[s, F_STOT]
    else:
        tot = 0.0
        for j in range(n):
            tot += sup_vol[s, j]
    px = peak if peak > 0 else (f[s, F_SPRICE] if iv[s, I_SPRICE_SET] else entry)
    best = -np.inf
    for j in range(n):
        k = sup_px[s, j]
        if tot > 0 and sup_vol[s, j] / tot >= P[P_S_SHARE] and k < px and k > best:
            best = k
    return best - f[s, F_BUFFER] if best > -np.inf else -np.inf


@njit(cache=True, inline="always", _nrt=False)
def _micro(
    f, iv, fw, s: int, P, sv: float, vol: float, bid: float, ask: float, depth: float, has_depth: bool
):
    """MicroStop.update: sets I_REASON.  The ring holds the window's observations and the one
    before them (w = window + 1 slots): sums over the newest ``window``, the bid of the oldest."""
    w = fw.shape[1]
    window = int(P[P_M_WINDOW])
    pos = iv[s, I_FW_POS]
    fw[s, pos, 0], fw[s, pos, 1], fw[s, pos, 2] = sv, vol, bid
    iv[s, I_FW_POS] = pos + 1 if pos + 1 < w else 0
    n_all = min(iv[s, I_FW_N] + 1, w)
    iv[s, I_FW_N] = n_all
    n = min(n_all, window)
    reason = R_NONE
    ssv, sv_ = 0.0, 0.0
    r = pos - n + 1  # oldest first, as the Python list sums (no modulo: n <= w)
    if r < 0:
        r += w
    for _ in range(n):
        ssv += fw[s, r, 0]
        sv_ += fw[s, r, 1]
        r += 1
        if r == w:
            r = 0
    r0 = pos - n_all + 1
    if r0 < 0:
        r0 += w
    ref = fw[s, r0, 2]  # 0: no bid then, so nothing to have held
    held = bid > 0 and ref > 0 and bid >= ref
    if n >= window and sv_ > 0 and ssv / sv_ < -P[P_M_FLOW] and not held:
        reason = R_OFR
    if bid > 0 and ask > 0 and ask > bid:
        sp = ask - bid
        a = f[s, F_SPAVG]
        if a > 0 and sp > P[P_M_SPREAD] * a and reason == R_NONE and not held:
            reason = R_SPREAD
        f[s, F_SPAVG] = sp if a == 0 else a + P[P_M_ALPHA] * (sp - a)
    if has_depth:
        a = f[s, F_DPAVG]
        if a > 0 and depth < P[P_M_DEPTH] * a and reason == R_NONE:
            reason = R_DEPTH
        f[s, F_DPAVG] = depth if a == 0 else a + P[P_M_ALPHA] * (depth - a)
    iv[s, I_REASON] = reason


@njit(cache=True, inline="always", _nrt=False)
def update_one(
    f, iv, sup_px, sup_vol, fw, kinds, P, s: int, ts: int,
    price: float, high: float, low: float, bid: float, ask: float, depth: float, has_depth: bool,
    sv: float, vol: float, at_bid: float, evaluate: bool,
) -> int:
    """StopSet.update for symbol s: learn, then (with ``evaluate``, or on a micro alarm) the stop;
    returns the exit reason (R_NONE: none)."""
    nk = kinds.shape[0]
    iv[s, I_OBS] += 1
    iv[s, I_REASON] = R_NONE
    for r in range(nk):
        k = kinds[r]
        if k == K_ATR:
            _atr_bar(f, iv, s, P, ts, price, high, low)
        elif k == K_SUPPORT:
            if at_bid > 0 and bid > 0:
                _support_add(f, iv, sup_px, sup_vol, s, bid, at_bid)
            f[s, F_SPRICE], iv[s, I_SPRICE_SET] = price, 1
        elif k == K_MICRO:
            _micro(f, iv, fw, s, P, sv, vol, bid, ask, depth, has_depth)
    f[s, F_PEAK] = max(f[s, F_PEAK], price)
    if not evaluate:
        f[s, F_LAST_STOP] = np.inf if iv[s, I_REASON] != R_NONE else np.nan  # nan: not computed
        return iv[s, I_REASON]
    entry, peak = f[s, F_ENTRY], f[s, F_PEAK]
    held = ts - iv[s, I_ENTRY_TS]
    best, who = -np.inf, -1
    for r in range(nk):
        k = kinds[r]
        if k == K_ATR:
            a, al = f[s, F_ATR], f[s, F_ATRL]
            m = P[P_MULT_HI] if (al > 0 and a / al > P[P_REG_RATIO]) else P[P_MULT_LO]
            v = peak - m * a if a > 0 else -np.inf
        elif k == K_TRAIL:
            v = peak * (1 - P[P_TRAIL])
        elif k == K_TIME:
            h = held / 1e9
            if h <= P[P_T_START]:
                frac = 1.0
            else:
                frac = max(0.0, 1.0 - (h - P[P_T_START]) / max(P[P_T_FULL] - P[P_T_START], 1e-9))
            v = entry * (1 - (P[P_T_FLOOR] + (P[P_T_LOSS] - P[P_T_FLOOR]) * frac))
        elif k == K_SUPPORT:
            v = _support_stop(f, iv, sup_px, sup_vol, s, P, peak, entry)
        else:
            v = np.inf if iv[s, I_REASON] != R_NONE else -np.inf
        if v > best:
            best, who = v, k
    f[s, F_LAST_STOP] = best
    if best == np.inf:
        return iv[s, I_REASON]
    if entry != 0 and price <= best:
        return who
    return R_NONE


@njit(cache=True, inline="always", _nrt=False)
def _ewma_idle(a: float, x: float, alpha: float, m: int) -> float:
    """``m`` updates ``a = x if a == 0 else a + alpha * (x - a)`` toward a constant x, stopping at the
    fixed point (a monotone sequence reaches one: every later update would leave ``a`` as it is)."""
    for _ in range(m):
        b = x if a == 0 else a + alpha * (x - a)
        if b == a:
            break
        a = b
    return a


@njit(cache=True, inline="always", _nrt=False)
def _atr_idle(f, iv, s: int, P, t1: int, dt: int, m: int, price: float) -> None:
    """``_atr_bar`` at the ``m`` ticks t1, t1 + dt, ... of a constant price, visiting only the ticks
    where a bar closes (and the last one): between closes a tick only re-applies max/min/close of
    the same price, which the next visited tick does as well."""
    bar_ns = int(P[P_BAR_NS])
    j = 0
    while j < m:
        _atr_bar(f, iv, s, P, t1 + j * dt, price, price, price)
        if bar_ns == 0:
            j += 1
            continue
        need = iv[s, I_BT0] + bar_ns - t1  # the next close is the first tick j' with j' * dt >= need
        jn = max((need + dt - 1) // dt, j + 1)
        if jn >= m:
            if j + 1 < m:
                _atr_bar(f, iv, s, P, t1 + (m - 1) * dt, price, price, price)
            return
        j = jn


@njit(cache=True, inline="always", _nrt=False)
def _idle_run(f, iv, fw, kinds, P, s: int, t1: int, dt: int, m: int, price: float, bid: float, ask: float,
              depth: float, has_depth: bool) -> None:
    """What ``m`` observations of a flat symbol with no prints (high = low = price) at the ticks t1,
    t1 + dt, ... teach the rules — the same state, by the same floating-point operations, as
    ``update_one`` tick by tick, except I_REASON and F_LAST_STOP, which every observation overwrites
    (catch_up computes them on its last tick).  The rules' pieces of state are disjoint, so each
    rule runs its ``m`` ticks at once: ATR bars only where they close, the flow window's zeros
    once per slot, the spread and depth averages until they stop moving."""
    iv[s, I_OBS] += m
    for r in range(kinds.shape[0]):
        k = kinds[r]
        if k == K_ATR:
            _atr_idle(f, iv, s, P, t1, dt, m, price)
        elif k == K_SUPPORT:
            f[s, F_SPRICE], iv[s, I_SPRICE_SET] = price, 1
        elif k == K_MICRO:
            w = fw.shape[1]
            pos = iv[s, I_FW_POS]
            r = pos
            for _ in range(min(m, w)):
                fw[s, r, 0], fw[s, r, 1], fw[s, r, 2] = 0.0, 0.0, bid
                r = r + 1 if r + 1 < w else 0
            iv[s, I_FW_POS] = (pos + m) % w
            iv[s, I_FW_N] = min(iv[s, I_FW_N] + m, w)
            if bid > 0 and ask > 0 and ask > bid:
                f[s, F_SPAVG] = _ewma_idle(f[s, F_SPAVG], ask - bid, P[P_M_ALPHA], m)
            if has_depth:
                f[s, F_DPAVG] = _ewma_idle(f[s, F_DPAVG], depth, P[P_M_ALPHA], m)
    f[s, F_PEAK] = max(f[s, F_PEAK], price)


@njit(cache=True, inline="always", _nrt=False)
def catch_up(f, iv, sup_px, sup_vol, fw, kinds, P, s: int, upto: int, full_last: bool = True) -> None:
    """Apply the ticks symbol s sat out while idle, up to ``upto``: nothing happened to it, so each
    is its last observation again with no prints (exactly what observing it then would have given).
    A flat symbol's ticks but the last are learnt in one run (:func:`_idle_run`); the last one, and
    every tick of a position, is a full observation with its exit reason.  ``full_last=False``
    learns a flat symbol's last tick in the run too (for a caller that observes the symbol next:
    the exit reason and stop price the full tick would leave are overwritten unread)."""
    t0 = iv[s, I_LAST_TS]
    dt = int(P[P_DT])
    if t0 == 0 or dt <= 0 or t0 + dt > upto:
        return
    price = f[s, F_LPRICE]
    bid, ask, depth = f[s, F_LBID], f[s, F_LASK], f[s, F_LDEPTH]
    has_depth = iv[s, I_LHAS_DEPTH] == 1
    t = t0 + dt
    last = t0 + (upto - t0) // dt * dt
    if f[s, F_ENTRY] == 0 and not full_last:
        _idle_run(f, iv, fw, kinds, P, s, t, dt, (last - t) // dt + 1, price, bid, ask, depth, has_depth)
        iv[s, I_LAST_TS] = last
        return
    if f[s, F_ENTRY] == 0 and last > t:
        _idle_run(f, iv, fw, kinds, P, s, t, dt, (last - t) // dt, price, bid, ask, depth, has_depth)
        t = last
    while t <= upto:
        update_one(f, iv, sup_px, sup_vol, fw, kinds, P, s, t, price, price, price, bid, ask, depth,
                   has_depth, 0.0, 0.0, 0.0, f[s, F_ENTRY] != 0)
        iv[s, I_LAST_TS] = t
        t += dt


@njit(cache=True, inline="always", _nrt=False)
def mode_of(f, iv, s: int) -> int:
    """M_* of symbol s from its state (kept in StopBank.mode wherever that state changes)."""
    if iv[s, I_ARMED] == 0:
        return M_OFF
    if iv[s, I_ARMED] == ARMED and iv[s, I_LAST_TS] != 0 and f[s, F_ENTRY] == 0:
        return M_LAZY
    return M_EVERY


@njit(cache=True, _nrt=False)
def set_mode(f, iv, mode, s: int) -> None:
    mode[s] = mode_of(f, iv, s)


@njit(cache=True, _nrt=False)
def observe_all(
    f, iv, sup_px, sup_vol, fw, kinds, P, ts: int, lv, sd, last_px, tape, out_sym, out_reason, out_stop,
    lazy: bool, mode,
) -> int:
    """One observation of every armed symbol from its book and its tape (reset after reading);
    returns how many exits fired for positions (written to out_*; a flat symbol's micro alarms
    are learnt, not reported: there is nothing to stop).

    ``lazy``: a flat symbol with no event since its last observation sits the tick out; the ticks it
    sat out are applied in one tight loop (:func:`catch_up`) when it next has an event or a position
    opens, so the stops learn exactly what observing every tick would have taught them."""
    n_out = 0
    dt = int(P[P_DT])
    events = tape[T_EVENTS]
    for s in range(f.shape[0]):
        m = mode[s]
        if m == M_OFF or (lazy and m == M_LAZY and events[s] == 0):
            continue
        if iv[s, I_ARMED] == ARMED_NEW:  # prints count from the first tick after arming
            tape_clear(tape, s)
            iv[s, I_ARMED] = ARMED
        nb, na = sd[s, 0, SD_NLEV], sd[s, 1, SD_NLEV]
        bid = lv[s, 0, 0, LV_PX] / PRICE_SCALE if nb > 0 else 0.0
        ask = lv[s, 1, 0, LV_PX] / PRICE_SCALE if na > 0 else 0.0
        if bid > 0 and ask > 0 and ask > bid:
            price = (bid + ask) / 2
        else:
            price = last_px[s] / PRICE_SCALE
        # the idle ticks; the last one in full only when no observation follows to overwrite it
        catch_up(f, iv, sup_px, sup_vol, fw, kinds, P, s, ts - dt, price == 0)
        if price == 0:
            iv[s, I_LAST_TS] = 0  # nothing to observe (no state to replay either): the tape keeps counting
            mode[s] = M_EVERY
            continue
        depth = 0.0
        for j in range(min(nb, DEPTH_LEVELS)):
            depth += lv[s, 0, j, LV_SZ]
        why = update_one(
            f, iv, sup_px, sup_vol, fw, kinds, P, s, ts,
            price, max(tape[T_HI, s], price), min(tape[T_LO, s], price), bid, ask, depth, nb > 0,
            tape[T_SV, s], tape[T_VOL, s], tape[T_AT_BID, s], f[s, F_ENTRY] != 0,
        )
        tape_clear(tape, s)
        iv[s, I_LAST_TS], iv[s, I_LHAS_DEPTH] = ts, 1 if nb > 0 else 0
        f[s, F_LPRICE], f[s, F_LBID], f[s, F_LASK], f[s, F_LDEPTH] = price, bid, ask, depth
        mode[s] = mode_of(f, iv, s)
        if why != R_NONE and f[s, F_ENTRY] != 0 and n_out < out_sym.shape[0]:
            out_sym[n_out], out_reason[n_out], out_stop[n_out] = s, why, f[s, F_LAST_STOP]
            n_out += 1
    return n_out


class StopBank:
    """The composed stop rules of every symbol (see the module docstring).

    ``kinds`` is the rule order (ties between equal stop prices go to the earlier rule, as in
    :class:`StopSet`); ``params`` holds the rule parameters by their AccumulationParams names.
    """

    def __init__(self, n_symbols: int, kinds: tuple[str, ...], *, bar_ns: int, period: int, mult_low: float,
                 mult_high: float, regime_period: int, regime_ratio: float, trail_pct: float,
                 time_max_loss_pct: float, time_start_s: float, time_full_s: float, time_floor_pct: float,
                 support_min_share: float, micro_flow: float, micro_window: int, micro_spread_mult: float,
                 micro_depth_frac: float, micro_alpha: float, every_ns: int = 1_000_000_000,
                 lazy: bool = True) -> None:
        unknown = [k for k in kinds if k not in KIND_CODES]
        if unknown:
            raise ValueError(f"stop kinds {unknown} unknown; choose from {', '.join(KIND_CODES)}")
        self.kinds = np.array([KIND_CODES[k] for k in kinds], np.int64)
        P = np.zeros(NP_)
        P[P_BAR_NS], P[P_PERIOD], P[P_MULT_LO], P[P_MULT_HI] = bar_ns, period, mult_low, mult_high
        P[P_REG_PERIOD], P[P_REG_RATIO], P[P_TRAIL] = regime_period, regime_ratio, trail_pct
        P[P_T_LOSS], P[P_T_START], P[P_T_FULL], P[P_T_FLOOR] = (time_max_loss_pct, time_start_s, time_full_s,
                                                                time_floor_pct)
        P[P_S_SHARE], P[P_M_FLOW], P[P_M_WINDOW] = support_min_share, micro_flow, micro_window
        P[P_M_SPREAD], P[P_M_DEPTH], P[P_M_ALPHA] = micro_spread_mult, micro_depth_frac, micro_alpha
        P[P_DT] = every_ns
        self.P = P
        self.lazy = lazy
        self.last_tick = 0  # the last tick observe() ran
        self.f = np.zeros((n_symbols, NF))
        self.f[:, F_BHI], self.f[:, F_BLO] = -np.inf, np.inf
        self.f[:, F_LAST_STOP] = -np.inf
        self.iv = np.zeros((n_symbols, NI), np.int64)
        self.iv[:, I_SUP_SLOT] = -1
        self.sup_px = np.zeros((n_symbols, SUP_SLOTS))
        self.sup_vol = np.zeros((n_symbols, SUP_SLOTS))
        self.fw = np.zeros((n_symbols, max(int(micro_window), 1) + 1, 3))  # signed vol, vol, bid
        self.out_sym = np.zeros(n_symbols, np.int64)
        self.out_reason = np.zeros(n_symbols, np.int64)
        self.out_stop = np.zeros(n_symbols)
        self.mode = np.zeros(n_symbols, np.int8)  # M_* per symbol: what the per-tick scan reads

    # --- per symbol (sparse, from Python) -------------------------------------------------------
    def arm(self, s: int, bucket: float, buffer: float) -> None:
        """Start observing symbol s; support buckets and buffer in dollars (ticks of its price)."""
        if not self.iv[s, I_ARMED]:
            self.iv[s, I_ARMED] = ARMED_NEW
            self.mode[s] = M_EVERY
        self.f[s, F_BUCKET], self.f[s, F_BUFFER] = bucket, buffer
        self.iv[s, I_SUP_SLOT] = -1  # the bucket size may have changed: look the next bid up

    def armed(self, s: int) -> bool:
        return bool(self.iv[s, I_ARMED])

    def open(self, s: int, entry: float, ts: int) -> None:
        """StopSet.open: a position opened at ``entry`` dollars."""
        self.catch_up(s)
        self.f[s, F_ENTRY] = self.f[s, F_PEAK] = entry
        self.iv[s, I_ENTRY_TS] = ts
        set_mode(self.f, self.iv, self.mode, s)

    def set_entry(self, s: int, entry: float) -> None:
        """The average entry changed (scale-in), or 0 when flat: price stops rest."""
        self.catch_up(s)
        self.f[s, F_ENTRY] = entry
        set_mode(self.f, self.iv, self.mode, s)

    def catch_up(self, s: int | None = None) -> None:
        """Apply the ticks idle symbols sat out so far (of ``s``, or of every symbol)."""
        for k in range(self.f.shape[0]) if s is None else (s,):
            catch_up(self.f, self.iv, self.sup_px, self.sup_vol, self.fw, self.kinds, self.P, k,
                     self.last_tick)

    def entry(self, s: int) -> float:
        return float(self.f[s, F_ENTRY])

    def last_stop(self, s: int) -> float:
        return float(self.f[s, F_LAST_STOP])

    def observations(self, s: int) -> int:
        """Observations applied to s (call :meth:`catch_up` first to count the idle ticks)."""
        return int(self.iv[s, I_OBS])

    # --- every armed symbol (compiled) ----------------------------------------------------------
    def observe(self, ts: int, lv: np.ndarray, sd: np.ndarray, last_px: np.ndarray,
                tape: np.ndarray) -> list[tuple[int, str, float]]:
        """One tick: every armed symbol observed; returns (symbol, exit reason, stop) of the
        positions whose stops fired.  A flat symbol only learns (no stop price, and its micro
        alarms are not reported: an alarm seen while flat is not a stop for a position opened
        after it)."""
        n = observe_all(self.f, self.iv, self.sup_px, self.sup_vol, self.fw, self.kinds, self.P, ts,
                        lv, sd, last_px, tape, self.out_sym, self.out_reason, self.out_stop, self.lazy,
                        self.mode)
        self.last_tick = ts
        return [(int(self.out_sym[i]), REASON_LABELS[int(self.out_reason[i])], float(self.out_stop[i]))
                for i in range(n)]

    def update(self, s: int, ts: int, price: float, *, high: float | None = None, low: float | None = None,
               bid: float | None = None, ask: float | None = None, bid_depth: float | None = None,
               signed_volume: float = 0.0, volume: float = 0.0, at_bid_volume: float = 0.0
               ) -> tuple[float, str | None]:
        """One observation of one symbol from Python values (as :meth:`StopSet.update`)."""
        why = update_one(
            self.f, self.iv, self.sup_px, self.sup_vol, self.fw, self.kinds, self.P, s, ts, price,
            price if high is None else high, price if low is None else low, bid or 0.0, ask or 0.0,
            bid_depth or 0.0, bid_depth is not None, signed_volume, volume, at_bid_volume, True,
        )
        return float(self.f[s, F_LAST_STOP]), (None if why == R_NONE else REASON_LABELS[int(why)])


__all__ = ["StopBank", "new_tape", "tape_print", "tape_clear", "REASON_LABELS", "KIND_CODES"]
