"""Feature state held in plain arrays per symbol, with named column indices.

The feature vector of every symbol is one row of ``F`` (float64 ``(n, NF)``).  It is *derived*:
a pure function of the integer state below (plus the slow baseline in ``fz``), computed when a
snapshot is taken and, by default, for the symbols a ``step`` touched at its end — never after
every event.  Everything needed to keep the state up to date incrementally lives in a few
fixed-size arrays, so memory is bounded by symbols x (levels + buckets), never by the length of the
day, and the whole state can be copied, compared and carried from one day to the next:

* ``fs`` int64 ``(n, FS_NCOL)`` — scalar integer state (clock, group flags, the running totals of
  every window quantity since the symbol's first event, the NBBO in force at the start of the current atomic
  group, the touch and depth at the last group end, trade-rule state, session VWAP sums, iceberg
  episodes per side, bucket numbers of the rings, sampling clock, counters).
* ``rq`` int64 ``(n, NW, NB, NQ)`` — the rolling windows: for each window ``w`` a ring of ``NB``
  buckets of width ``WINDOW_NS[w] / NB``; the slot of bucket k holds the running totals at k's start,
  so a window's sums are the totals now minus its oldest slot (integers, so exact).
* ``pl`` int64 ``(n, 2, NL_MAX, 2)`` — previous top-N levels (price, size) for multi-level OFI.
* ``vap`` int64 ``(n, NVAP)`` — session volume-at-price histogram around the session's first price.
* ``fz`` float64 ``(n, FZ_NCOL)`` — the slow volume / mid-change baseline (EWMA and variance).

Window semantics: a window of length W is the current (partial) bucket plus the NB-1 previous full
buckets, i.e. it covers between W(NB-1)/NB and W of event time; all sums are exact integers, so any
batch split gives bit-identical state.  An event adds its sums to the running totals in ``fs``
only; a ring is written when its bucket changes (every window's bucket boundaries are boundaries
of the 1 s window's 100 ms buckets, checked once per 100 ms).  See
docs/features.md for every column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000

# --- rolling windows ---------------------------------------------------------------------------
WINDOW_SECONDS = (1, 5, 10, 30, 3600)
WINDOW_TAGS = ("1s", "5s", "10s", "30s", "1h")
WINDOW_NS = np.array([w * NS for w in WINDOW_SECONDS], dtype=np.int64)
NW = len(WINDOW_SECONDS)
W_1S, W_5S, W_10S, W_30S, W_1H = range(NW)
#: buckets per window ring (bucket width = window / NB)
NB = 10
BUCKET_NS = WINDOW_NS // NB

# --- quantities summed in every bucket ---------------------------------------------------------
Q_VOL = 0  # shares traded (all counted prints)
Q_BUY = 1  # shares classified buyer-initiated (Lee-Ready)
Q_SELL = 2  # shares classified seller-initiated
Q_OFFEX = 3  # shares printed off-exchange (TRF/ADF)
Q_NTRD = 4  # number of counted prints
Q_OFI = 5  # order-flow imbalance at the touch (shares)
Q_MLOFI = 6  # multi-level OFI summed over the top N levels (shares)
Q_DMID2 = 7  # net change of 2*mid ($0.0001)
Q_DMID2SQ = 8  # sum of squared non-zero changes of 2*mid
Q_NMID = 9  # number of non-zero mid changes
Q_SPRT = 10  # integral of the spread ($0.0001) over time (ns) while the book is two-sided
Q_TVALID = 11  # ns with a two-sided book
Q_REFILL = 12  # touch refills at the same price after a depletion
Q_DEPL = 13  # shares printed at the touch in force (touch depletion)
Q_HIDDEN = 14  # estimated hidden / iceberg shares (executed beyond the displayed supply)
Q_DMICRO = 15  # net change of the micro-price ($0.000001)
NQ = 16

# --- integer scalar state columns (fs) ---------------------------------------------------------
# Grouped by when they are touched: line 0-2 (every event: clock, group flags, the running totals),
# line 3-5 (group ends: touch, depth), then prints, bucket numbers, counters.
S_INIT = 0  # 1 once the symbol has seen an event
S_TLAST = 1  # event time of the last event (ns, monotone: backward steps are clamped)
S_NEXT_B = 2  # end of the current finest (1 s window) bucket: no ring moves before it (ns)
S_NEXT_SAMPLE = 3  # next sampling boundary (ns)
S_GRP_OPEN = 4  # 1 while inside an atomic group (the previous event lacked FLAG_LAST)
S_GRP_BOOK = 5  # 1 when the open group changed the book
S_N_EVENTS = 6
S_SPREAD = 7  # spread in force ($0.0001, clipped at SPREAD_CAP) for the time integral
S_CUM = 8  # NQ running totals since the symbol's first event (8..23; spread x time wraps, see kernels)
S_TWO_SIDED = 24  # 1 when both sides are present (last group end)
S_GB = 25  # touch in force at the start of the current group: bid px, bid size, ask px, ask size
S_GBS = 26
S_GA = 27
S_GAS = 28
S_MARK = 29  # 1 while the symbol is on the list of symbols whose F row is due
S_MID2 = 30  # 2*mid at the last group end (0 = none)
S_PVALID = 31  # 1 once a group end set the touch below
S_PB = 32  # touch at the last group end (for OFI): bid px, size, ask px, size (0 px = side empty)
S_PBS = 33
S_PA = 34
S_PAS = 35
S_MICRO6 = 36  # micro-price at the last group end, $0.000001 (0 = none)
S_SIDES = 37  # bit 0: bid side present, bit 1: ask side present (last group end)
S_DB = 38  # shares over the top N bid / ask levels (last group end)
S_DA = 39
S_DKNOWN = 40  # 1 when every level in those sums is fully known
S_STALE = 41  # group ends whose touch skipped stale (not known) levels crossing the other side
S_EP = 42  # iceberg episode per side (bid at +0, ask at +S_EP_N): touch price
S_EP_SUP = 43  # displayed supply seen at that price (first size + every increase)
S_EP_E = 44  # shares executed at that price
S_EP_HID = 45  # hidden shares already credited
S_EP_DEPL = 46  # 1 after a print at the price, until the size is refilled
S_EP_SZ = 47  # last seen displayed size
S_EP_KNOWN = 48  # 1 when displayed sizes are known (not unknown-size quotes)
S_EP_N = 7  # (ask episode: 49..55)
S_LTP = 56  # last classified trade price (tick rule; 0 = none yet)
S_LDIR = 57  # last tick direction (+1 / -1 / 0) = tick-rule side of the last classified print
S_LLR = 58  # Lee-Ready side of the last classified print
S_LQS = 59  # quote-rule side of it
S_LAST_PX = 60  # last counted print: price (0 = none yet), size
S_LAST_SZ = 61
S_DAY = 62  # session day number: (ts - 6 h) // 1 day  (06:00 UTC lies outside every US session)
S_PV = 63  # session sum of price x size ($0.0001 x shares)
S_V = 64  # session shares in VWAP
S_VAP_BASE = 65  # price at the centre of the histogram (session's first VWAP-eligible price)
S_VAP_W = 66  # histogram bucket width ($0.0001)
S_POC = 67  # histogram index with the most volume (-1 = none)
S_VAP_OUT = 68  # session shares clamped into the histogram's edge buckets
S_T0 = 69  # time of the symbol's first event (ns)
S_RB = 70  # current absolute bucket number of window w at S_RB + 2w, its ring slot at S_RB + 2w + 1
S_N_TRADES = 80  # counted prints
S_N_QUOTE_RULE = 81  # prints classified by the quote rule
S_N_TICK_RULE = 82  # prints classified by the tick rule (at the mid, or no usable quote)
S_N_UNCLASSIFIED = 83
S_N_WITH_SIDE = 84  # classified prints whose source carried an aggressor side
S_N_AGREE = 85  # ... and where Lee-Ready agrees with it
S_N_BACKSTEP = 86  # events whose time was before the symbol's last event time (clamped)
S_CUM_REFILL = 87
S_CUM_HIDDEN = 88
S_N_SKIPPED = 89  # prints excluded (cancel/correction)
S_N_CROSSED = 90  # group ends whose touch stayed crossed after the stale rule (spread/mid undefined)
S_RL_T = 91  # iceberg reloads: event time of the symbol's current timestamp (its events form one message)
S_RL_PX = 92  # best bid price and size before that timestamp's first event (0 = no bid)
S_RL_SZ = 93
S_RL_E = 94  # lit shares printed at that bid price at that timestamp, not yet matched by a reload
S_CUM_RELOAD = 95  # same-message bid reloads (iceberg refreshes) since the state was created
S_CUM_RELOAD_SH = 96  # ... shares they put back
S_UNK = 97  # bit m set: level m of the last group end's top N is not fully known (bid at +0, ask at +1)
S_OFF = 99  # levels skipped as stale at the touch at the last group end (bid at +0, ask at +1)
S_GAP = 104  # window w's quiet run at S_GAP + 3w: its first bucket, its length (0: none), the spread
#             through it (GAP_ONE_SIDED: one-sided book); its buckets' ring slots are not written
S_BASE_K = 119  # last 30 s-window bucket boundary already applied to the baseline (fz): a snapshot row
#                 applies those up to its boundary ahead of the ring, which then skips them (0: none)
FS_NCOL = 120
#: S_GAP + 3w + 2 of a run through which the book was one-sided (a spread is never this)
GAP_ONE_SIDED = -(1 << 62)

# --- float scalar state (fz) -----------------------------------------------------------------------
Z_VDM_BASE = 0  # slow EWMA of vol_dmid_log_30s (NaN until the first update)
Z_VDM_VAR = 1  # its EW variance
FZ_NCOL = 2

# --- volume-at-price histogram -----------------------------------------------------------------
NVAP = 64
VAP_BPS = 25  # bucket width in basis points of the session's first price (at least one tick)

# --- multi-level OFI -------------------------------------------------------------------------
NL_MAX = 10

# --- config vector (cfg) ------------------------------------------------------------------------
CFG_NLEV = 0  # N levels for depth and multi-level OFI (1..NL_MAX)
CFG_CADENCE = 1  # sampling cadence in ns of event time (0 = no sampling)
CFG_EVERY_EVENT = 2  # 1: treat every event as a group end (sources without FLAG_LAST)
CFG_SKIP_STALE = 3  # 1: the touch skips not-known levels that cross the other side (depth books)
CFG_ROWS = 4  # columns of a snapshot row: ROWS_ALL, or ROWS_SIGNALS (SIGNAL_INPUTS only, the rest NaN)
CFG_NCOL = 5
ROWS_ALL, ROWS_SIGNALS = 0, 1

# --- baseline of the volume / mid-change ratio ---------------------------------------------------
#: the baseline is updated at every 30 s-window bucket boundary (every 3 s of event time) that has
#: volume in the window; half-life in such updates: one 6.5 h session.
BASE_WINDOW = W_30S
BASE_HALF_LIFE = 7800.0
BASE_ALPHA = 1.0 - 0.5 ** (1.0 / BASE_HALF_LIFE)

# --- feature vector columns (F) ----------------------------------------------------------------
SCALAR_NAMES = (
    "bid",  # best bid, $
    "ask",  # best ask, $
    "bid_size",  # shares at the best bid (NaN when unknown)
    "ask_size",
    "spread",  # ask - bid, $0.0001
    "spread_bps",  # spread / mid * 1e4
    "mid",  # $
    "microprice",  # size-weighted mid, $
    "depth_bid",  # shares over the top N bid levels
    "depth_ask",
    "depth_imbalance",  # (bid - ask) / (bid + ask) over N levels
    "touch_imbalance",  # (bid_size - ask_size) / (bid_size + ask_size)
    "depth_known",  # 1 when every level in the N-level sums is fully known
    "spread_minus_avg_5s",  # spread - 5 s time-weighted mean, $0.0001
    "spread_minus_avg_10s",
    "spread_ratio_5s_1h",  # 5 s mean spread / 1 h mean spread
    "last_price",  # $
    "last_size",
    "last_side_lr",  # Lee-Ready side of the last classified print (+1 buy, -1 sell, 0 none)
    "last_side_quote",  # quote-rule side of it (0 at the mid or no usable quote)
    "last_side_tick",  # tick-rule side of it
    "vwap",  # session VWAP, $
    "session_volume",  # session shares in the VWAP
    "poc_price",  # $ centre of the volume-at-price bucket with the most volume
    "vap_share_at_mid",  # share of session volume in the histogram bucket of the current mid
    "cum_refills",  # touch refills since the state was created
    "cum_hidden",  # estimated hidden shares since the state was created
    "vol_dmid_log_30s",  # log(1 + volume_30s / max(|net mid change 30s| in cents, 1))
    "vol_dmid_base",  # slow EWMA of vol_dmid_log_30s (per symbol, carried across days)
    "vol_dmid_base_var",  # its EW variance
    "vol_dmid_z",  # (vol_dmid_log_30s - base) / sqrt(var)
    "lr_agreement",  # share of prints with a source side where Lee-Ready agrees
    "last_ts",  # event time of the last event, s since epoch
    "cum_reloads",  # same-timestamp bid reloads (iceberg refreshes) since the state was created
    "cum_reload_shares",  # shares those reloads put back at the bid
)
WINDOW_FIELDS = (
    "volume",  # shares printed
    "buy_volume",  # Lee-Ready buyer-initiated shares
    "sell_volume",
    "offex_volume",  # shares printed off-exchange (TRF/ADF)
    "lit_share",  # (volume - offex) / volume
    "trades",  # number of prints
    "ofi",  # touch OFI (Cont-Kukanov-Stoikov), shares
    "mlofi",  # OFI summed over the top N levels, shares
    "mid_change",  # net mid change, $
    "mid_velocity",  # net mid change / mid / elapsed s * 100  (% per second)
    "mid_std",  # std of the non-zero mid changes, $
    "mid_rvol_bps",  # sqrt(sum of squared mid changes) / mid * 1e4
    "spread_avg",  # time-weighted mean spread, $0.0001
    "micro_velocity",  # net micro-price change / mid / elapsed s * 100 (% per second)
    "refills",  # same-price touch refills after a depletion
    "depletion",  # shares printed at the touch
    "hidden",  # estimated hidden / iceberg shares
    "vol_per_dmid",  # volume / max(|net mid change| in cents, 1)
)
NSC = len(SCALAR_NAMES)
NWF = len(WINDOW_FIELDS)
NF = NSC + NW * NWF

FEATURE_NAMES: tuple[str, ...] = SCALAR_NAMES + tuple(
    f"{f}_{tag}" for tag in WINDOW_TAGS for f in WINDOW_FIELDS
)
COL: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

(F_BID, F_ASK, F_BID_SZ, F_ASK_SZ, F_SPREAD, F_SPREAD_BPS, F_MID, F_MICRO, F_DEPTH_BID, F_DEPTH_ASK,
 F_DEPTH_IMB, F_TOUCH_IMB, F_DEPTH_KNOWN, F_SPREAD_REL_5S, F_SPREAD_REL_10S, F_SPREAD_RATIO_5S_1H,
 F_LAST_PX, F_LAST_SZ, F_LAST_LR, F_LAST_QUOTE, F_LAST_TICK, F_VWAP, F_SESSION_VOL, F_POC_PX,
 F_VAP_AT_MID, F_CUM_REFILL, F_CUM_HIDDEN, F_VDM_LOG, F_VDM_BASE, F_VDM_VAR, F_VDM_Z,
 F_LR_AGREE, F_LAST_TS, F_CUM_RELOAD, F_CUM_RELOAD_SH) = range(NSC)

(WF_VOL, WF_BUY, WF_SELL, WF_OFFEX, WF_LIT_SHARE, WF_TRADES, WF_OFI, WF_MLOFI, WF_DMID, WF_MID_VEL,
 WF_MID_STD, WF_RVOL, WF_SPREAD_AVG, WF_MICRO_VEL, WF_REFILLS, WF_DEPL, WF_HIDDEN, WF_VOL_DMID) = range(NWF)


#: the columns the signal stage (quantedge.signals.logic) reads, and those the derived ones among them
#: are computed from (spread averages, the 30 s volume per mid change).  A pipeline whose rows only
#: feed the signals derives just these (FeatureState.allocate(rows="signals")): the other ~40
#: divisions and square roots of a row were a third of the signal path's time.
SIGNAL_INPUTS: tuple[str, ...] = (
    "bid", "bid_size", "ask_size", "spread", "spread_bps", "mid", "depth_imbalance", "touch_imbalance",
    "spread_minus_avg_10s", "spread_ratio_5s_1h", "vol_dmid_z", "cum_reloads",
    "spread_avg_5s", "mid_rvol_bps_5s", "spread_avg_10s",
    "volume_30s", "buy_volume_30s", "sell_volume_30s", "offex_volume_30s", "trades_30s", "mid_change_30s",
    "mid_velocity_30s", "mid_std_30s", "mid_rvol_bps_30s", "spread_avg_30s", "refills_30s", "depletion_30s",
    "hidden_30s", "vol_per_dmid_30s",
    "volume_1h", "trades_1h", "mid_rvol_bps_1h", "spread_avg_1h",
)
#: 1 for a column of SIGNAL_INPUTS (by column), 1 for a window with such a column (by window)
SIG_COL = np.zeros(NF, np.uint8)
SIG_COL[[COL[n] for n in SIGNAL_INPUTS]] = 1
SIG_WINDOW = np.array([SIG_COL[NSC + w * NWF:NSC + (w + 1) * NWF].any() for w in range(NW)], np.uint8)


def wcol(field: int, w: int) -> int:
    """Column of window field ``field`` (WF_*) for window ``w`` (W_*)."""
    return NSC + w * NWF + field


@dataclass
class FeatureState:
    """All feature arrays of a set of symbols (see the module docstring for the layout)."""

    F: np.ndarray
    fs: np.ndarray
    rq: np.ndarray
    pl: np.ndarray
    vap: np.ndarray
    fz: np.ndarray
    cfg: np.ndarray

    @classmethod
    def allocate(cls, n_symbols: int, n_levels: int = 10, cadence_ns: int = NS,
                 every_event: bool = False, skip_stale: bool = True, rows: str = "all") -> FeatureState:
        """Fresh state.  n_levels: depth / multi-level OFI levels (1..10); cadence_ns: snapshot
        period in event time (0 disables sampling); every_event: group end at every event;
        skip_stale: on depth books, the touch skips not-known levels that cross the other side;
        rows: ``"all"`` columns in each snapshot row, or ``"signals"`` (SIGNAL_INPUTS only, the
        other columns NaN: rows that only feed the signal stage).  F (each symbol's current
        vector) is always complete."""
        if not 1 <= n_levels <= NL_MAX:
            raise ValueError(f"n_levels must be in 1..{NL_MAX}, got {n_levels}")
        if cadence_ns < 0:
            raise ValueError(f"cadence_ns must be >= 0, got {cadence_ns}")
        if rows not in ("all", "signals"):
            raise ValueError(f"rows must be 'all' or 'signals', got {rows!r}")
        fs = np.zeros((n_symbols, FS_NCOL), dtype=np.int64)
        fs[:, S_POC] = -1
        cfg = np.zeros(CFG_NCOL, dtype=np.int64)
        cfg[CFG_NLEV] = n_levels
        cfg[CFG_CADENCE] = cadence_ns
        cfg[CFG_EVERY_EVENT] = 1 if every_event else 0
        cfg[CFG_SKIP_STALE] = 1 if skip_stale else 0
        cfg[CFG_ROWS] = ROWS_SIGNALS if rows == "signals" else ROWS_ALL
        return cls(
            F=np.full((n_symbols, NF), np.nan),
            fs=fs,
            rq=np.zeros((n_symbols, NW, NB, NQ), dtype=np.int64),
            pl=np.zeros((n_symbols, 2, NL_MAX, 2), dtype=np.int64),
            vap=np.zeros((n_symbols, NVAP), dtype=np.int64),
            fz=np.full((n_symbols, FZ_NCOL), np.nan),
            cfg=cfg,
        )

    @property
    def n_symbols(self) -> int:
        return self.F.shape[0]

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.F, self.fs, self.rq, self.pl, self.vap, self.fz, self.cfg)

    def copy(self) -> FeatureState:
        return FeatureState(*(a.copy() for a in self.arrays()))

    def get(self, name: str, s: int | slice = slice(None)) -> np.ndarray | float:
        """Feature ``name`` (see FEATURE_NAMES) of symbol(s) s, as of the last derivation."""
        return self.F[s, COL[name]]

    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays()))
