"""Per-symbol signal logic and its parameter table, written once for CPU (``@njit``) and GPU (CUDA).

:func:`update_row` scores one feature snapshot row of one symbol and advances that symbol's signal
state.  It calls no other user function and uses only scalar arithmetic, ``math`` and array
indexing, so the same Python source compiles as a Numba CPU function (:data:`update_row`) and as a
``numba.cuda.jit(device=True)`` function (``update_row.py_func`` in :mod:`quantedge.signals.gpu`):
one definition, two targets, identical arithmetic (float64 throughout).

State per symbol (float64 row of ``st``, columns ``ST_*``): per signal the trigger machine (armed /
on, when the score first reached its ``on_score``, when it re-armed), the day's running low of the
mid and the previous session days' lows (the sinkhole's "near the recent low"), a geometric-mean
spread baseline and a smoothed touch imbalance.  A symbol's outputs depend only on its own rows in
time order, so any cut of the row stream into batches gives the same outputs.

Scores are products of ramps ``r(x; lo, hi) = clip((x - lo) / (hi - lo), 0, 1)`` (a falling ramp is
``1 - r``): every condition of a signal must hold for a high score, and a value just short of a
threshold lowers the score instead of zeroing it.  See docs/signals.md for each formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from quantedge.features.state import COL


@dataclass(frozen=True)
class Param:
    section: str
    key: str
    default: float
    unit: str
    lo: float
    hi: float
    doc: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


_P = Param
#: Every parameter.  Ranges are inclusive.  Scores are products of ramps r(x; lo, hi) =
#: clip((x - lo) / (hi - lo), 0, 1) (see docs/signals.md for each formula).
PARAMS: tuple[Param, ...] = (
    # --- shared trigger logic (applies to every signal) ----------------------------------------
    _P("trigger", "off_score", 0.2, "score", 0.0, 1.0, "score below which a triggered signal re-arms"),
    _P("trigger", "cooldown_s", 60.0, "s", 0.0, 86400.0,
       "after a signal re-arms, no new trigger of it for this long"),
    _P("trigger", "emit_min", 0.25, "score", 0.0, 1.0,
       "rows with a score at or above this are emitted as records (triggers are always emitted)"),
    # --- baselines kept in the signal state --------------------------------------------------------
    _P("baseline", "spread_half_life_s", 1800.0, "s", 10.0, 86400.0,
       "half-life of the geometric-mean spread baseline (robust to spread blow-outs)"),
    _P("baseline", "imbalance_half_life_s", 30.0, "s", 0.0, 3600.0,
       "half-life of the smoothed touch imbalance used for the upward bias (0 = raw)"),
    _P("baseline", "low_lookback_days", 5.0, "days", 1.0, 10.0,
       "recent low = min of mid over today and the previous (days - 1) session days"),
    _P("baseline", "depth_half_life_s", 1800.0, "s", 10.0, 86400.0,
       "half-life of the symbol's own mean N-level depth imbalance (sinkhole / absorption / creep use the "
       "excess) and of its mean touch size (contraction)"),
    # --- 1. absorption ------------------------------------------------------------------------------
    _P("absorption", "on_score", 0.35, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("absorption", "smooth_s", 10.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("absorption", "persist_s", 25.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("absorption", "sell_share_lo", 0.75, "1", 0.0, 1.0,
       "seller-initiated share of 30 s volume: ramp start"),
    _P("absorption", "sell_share_hi", 0.8, "1", 0.0, 1.0, "... ramp end (full credit)"),
    _P("absorption", "rel_volume_lo", 1.0, "x", 0.0, 100.0, "relative 30 s volume: ramp start"),
    _P("absorption", "rel_volume_hi", 2.0, "x", 0.0, 100.0, "... ramp end"),
    _P("absorption", "max_rel_volume", 10.0, "x", 0.0, 1000.0,
       "relative 30 s volume at most this (a volume explosion is a panic or news, not quiet absorption); "
       "zero credit at 2 x"),
    _P("absorption", "max_drop_bps", 5.0, "bps", 0.0, 1000.0,
       "bid holds: 30 s mid change >= -max_drop (full credit), zero credit at -2 x max_drop"),
    _P("absorption", "max_spread_widen_bps", 1.0, "bps", 0.0, 1000.0,
       "spread - its 10 s average <= this (full credit), zero credit at 2 x"),
    _P("absorption", "refills_lo", 1.0, "count", 0.0, 1000.0, "same-price touch refills in 30 s: ramp start"),
    _P("absorption", "refills_hi", 6.0, "count", 0.0, 1000.0, "... ramp end"),
    _P("absorption", "hidden_share_hi", 0.2, "1", 0.0, 1.0,
       "hidden (iceberg) share of 30 s volume giving full replenishment credit"),
    _P("absorption", "max_depth_imbalance", 0.25, "1", -1.0, 1.0,
       "N-level depth imbalance above which the book looks like a sinkhole, not touch absorption "
       "(zero credit at +0.15)"),
    _P("absorption", "reload_half_life_s", 90.0, "s", 0.0, 3600.0,
       "half-life of the decaying count of same-message bid reloads (an iceberg refreshing its displayed "
       "size at the print's own timestamp; 0 = reloads of this row only)"),
    _P("absorption", "reloads_full", 1.0, "count", 0.0, 1000.0,
       "decayed reload count giving full iceberg credit (counts as full replenishment; 0 = reloads unused)"),
    _P("absorption", "reload_sell_share_relax", 0.3, "1", 0.0, 1.0,
       "with full iceberg credit the seller-share ramp starts and ends this much lower"),
    _P("absorption", "reload_weight", 0.6, "1", 0.0, 1.0,
       "share of the score that needs iceberg evidence: the score is multiplied by "
       "1 - w + w x iceberg credit"),
    # --- 2. creep -----------------------------------------------------------------------------------
    _P("creep", "on_score", 0.5, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("creep", "smooth_s", 3.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("creep", "persist_s", 3.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge (creeps last 10-45 s)"),
    _P("creep", "min_rise_bps", 2.0, "bps", 0.0, 1000.0, "30 s mid change: ramp start (full credit at 2 x)"),
    _P("creep", "min_move_sigma", 5.5, "sigma", 0.0, 100.0,
       "30 s mid change in units of the symbol's 1 h realized volatility scaled to 30 s: ramp start "
       "(full credit 1 sigma above); makes 'a slow rise' comparable across symbols"),
    _P("creep", "max_velocity_pct_s", 0.3, "%/s", 0.0, 100.0,
       "30 s mid velocity cap (slow creep); zero credit at 1.5 x"),
    _P("creep", "buy_share_lo", 0.6, "1", 0.0, 1.0, "buyer-initiated share of 30 s volume: ramp start"),
    _P("creep", "buy_share_hi", 0.8, "1", 0.0, 1.0, "... ramp end"),
    _P("creep", "lit_share_lo", 0.3, "1", 0.0, 1.0, "lit share of 30 s volume: ramp start (lifts are lit)"),
    _P("creep", "lit_share_hi", 0.65, "1", 0.0, 1.0, "... ramp end"),
    _P("creep", "depth_imbalance_lo", 0.35, "1", -1.0, 1.0,
       "N-level depth imbalance above the symbol's own mean (offers thin: sellers stepped away): ramp start"),
    _P("creep", "depth_imbalance_hi", 0.5, "1", -1.0, 1.0, "... ramp end"),
    _P("creep", "max_vol_dmid_z", 3.0, "sigma", -100.0, 100.0,
       "volume per unit mid move vs the symbol's own history (vol_dmid_z) at most this; zero at +1"),
    _P("creep", "min_path_t", 2.5, "1", 0.0, 100.0,
       "staircase: 30 s net mid change / the 30 s window's own realized volatility (sqrt(n) for n equal "
       "up-steps) at least this also gives the move credit (full 1 above): a noisy name's 1 h sigma hides "
       "a creep of many small steps, its path does not (100 = off)"),
    _P("creep", "max_step_dispersion", 0.6, "1", 0.0, 100.0,
       "std of the 30 s window's non-zero mid changes / the spread (0 for an even staircase): full credit "
       "at or below, zero at 2 x (a jump through several levels or a pull-back disperses them; 100 = off)"),
    _P("creep", "min_touch_share", 0.4, "1", 0.0, 1.0,
       "share of 30 s volume printed at the touch in force (the offer lifted level by level): ramp start, "
       "full credit 0.2 above (0 = off)"),
    _P("creep", "alt_touch_share", 0.6, "1", 0.0, 1.0,
       "a rise below min_move_sigma still gets the move credit when the touch share is at least this, "
       "the depth imbalance excess at least alt_depth_imbalance (ramps 0.1 wide) and the rise at least "
       "alt_min_spreads spreads (1 = off)"),
    _P("creep", "alt_depth_imbalance", 0.5, "1", -1.0, 1.0, "... depth imbalance excess: ramp start"),
    _P("creep", "alt_min_spreads", 1.0, "1", 0.0, 100.0,
       "... 30 s mid change in current spreads: ramp start (full credit 0.5 above)"),
    _P("creep", "min_rel_trades", 0.5, "x", 0.0, 100.0,
       "prints in 30 s / the symbol's 1 h rate per 30 s (the offer lifted again and again by small buys): "
       "ramp start, full credit 0.5 above (0 = off)"),
    _P("creep", "max_rel_volume", 5.0, "x", 0.0, 100.0,
       "relative 30 s volume at most this (no loud burst); zero credit at 2 x"),
    # --- 3. dark pool -------------------------------------------------------------------------------
    _P("dark_pool", "on_score", 0.7, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("dark_pool", "smooth_s", 10.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("dark_pool", "persist_s", 45.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("dark_pool", "max_lit_share", 0.4, "1", 0.0, 1.0, "lit / consolidated 30 s volume: zero credit above"),
    _P("dark_pool", "lit_share_full", 0.25, "1", 0.0, 1.0, "... full credit at or below"),
    _P("dark_pool", "rel_volume_lo", 1.5, "x", 0.0, 100.0, "relative 30 s volume: ramp start"),
    _P("dark_pool", "rel_volume_hi", 3.0, "x", 0.0, 100.0, "... ramp end"),
    _P("dark_pool", "min_mid_change_bps", -2.0, "bps", -1000.0, 1000.0,
       "30 s mid change: zero credit below, full credit 2 bps above"),
    _P("dark_pool", "buy_share_lo", 0.5, "1", 0.0, 1.0,
       "buyer-initiated share (quote rule on TRF prints): ramp start"),
    _P("dark_pool", "buy_share_hi", 0.7, "1", 0.0, 1.0, "... ramp end"),
    # --- 4. sinkhole --------------------------------------------------------------------------------
    _P("sinkhole", "on_score", 0.3, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("sinkhole", "smooth_s", 12.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("sinkhole", "persist_s", 20.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("sinkhole", "sell_share_lo", 0.55, "1", 0.0, 1.0, "seller-initiated share of 30 s volume: ramp start"),
    _P("sinkhole", "sell_share_hi", 0.75, "1", 0.0, 1.0, "... ramp end"),
    _P("sinkhole", "rel_volume_lo", 1.0, "x", 0.0, 100.0, "relative 30 s volume: ramp start"),
    _P("sinkhole", "rel_volume_hi", 2.0, "x", 0.0, 100.0, "... ramp end"),
    _P("sinkhole", "depth_imbalance_lo", 0.2, "1", -1.0, 1.0,
       "N-level depth imbalance (bid heavy): ramp start"),
    _P("sinkhole", "depth_imbalance_hi", 0.4, "1", -1.0, 1.0, "... ramp end"),
    _P("sinkhole", "max_drop_bps", 5.0, "bps", 0.0, 1000.0,
       "depth does not give way: 30 s mid change >= -max_drop (full credit), zero at 2 x"),
    _P("sinkhole", "near_low_ratio", 0.95, "1", 0.0, 1.0,
       "recent low / current mid at or above this = near the recent low (zero credit 0.02 below)"),
    # --- 5. contraction -----------------------------------------------------------------------------
    _P("contraction", "on_score", 0.65, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("contraction", "smooth_s", 2.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("contraction", "persist_s", 60.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("contraction", "max_spread_ratio", 0.4, "1", 0.0, 10.0,
       "5 s and 30 s mean spread / 1 h mean spread, and 5 s / the robust baseline: the largest at most this; "
       "zero credit at +0.2"),
    _P("contraction", "max_rvol_ratio", 1.0, "1", 0.0, 100.0,
       "5 s realized mid volatility / the 1 h one scaled to 5 s: at most this; zero at 2 x"),
    _P("contraction", "imbalance_lo", -0.1, "1", -1.0, 1.0, "smoothed touch imbalance (bias up): ramp start"),
    _P("contraction", "imbalance_hi", 0.1, "1", -1.0, 1.0, "... ramp end"),
    _P("contraction", "touch_depth_lo", 1.0, "x", 0.0, 100.0,
       "touch size (bid + ask) / the symbol's own mean touch size: ramp start (liquidity providers step "
       "in: the quotes get tighter and deeper)"),
    _P("contraction", "touch_depth_hi", 1.5, "x", 0.0, 100.0, "... ramp end"),
    # --- exit ---------------------------------------------------------------------------------------
    _P("exit", "on_score", 0.65, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("exit", "smooth_s", 6.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("exit", "persist_s", 20.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("exit", "drop_lo_bps", 15.0, "bps", 0.0, 10000.0, "30 s mid fall: ramp start"),
    _P("exit", "drop_hi_bps", 40.0, "bps", 0.0, 10000.0, "... ramp end"),
    _P("exit", "sell_share_lo", 0.6, "1", 0.0, 1.0, "seller-initiated share of 30 s volume: ramp start"),
    _P("exit", "sell_share_hi", 0.8, "1", 0.0, 1.0, "... ramp end"),
    _P("exit", "spread_ratio_lo", 1.5, "x", 0.0, 1000.0,
       "spread blow-out (5 s vs 1 h / baseline): ramp start"),
    _P("exit", "spread_ratio_hi", 2.5, "x", 0.0, 1000.0, "... ramp end"),
    _P("exit", "bid_flight_lo", 0.3, "1", 0.0, 1.0,
       "minus the depth imbalance (bids evaporating): ramp start"),
    _P("exit", "bid_flight_hi", 0.6, "1", 0.0, 1.0, "... ramp end"),
    _P("exit", "offex_share_hi", 0.8, "1", 0.0, 1.0,
       "off-exchange share of 30 s volume giving full 'heavy off-exchange selling' credit"),
    # --- composite ----------------------------------------------------------------------------------
    _P("composite", "on_score", 0.6, "score", 0.01, 1.0,
       "score at or above which this signal may trigger (calibrated per signal, docs/signals.md)"),
    _P("composite", "smooth_s", 0.0, "s", 0.0, 600.0,
       "half-life of the EWMA applied to the row score (sustained evidence; 0 = raw row score)"),
    _P("composite", "persist_s", 45.0, "s", 0.0, 600.0,
       "score >= on_score for this long (event time) before the rising edge"),
    _P("composite", "w_absorption", 1.0, "1", 0.0, 1.0, "weight of each accumulation score in the composite"),
    _P("composite", "w_creep", 1.0, "1", 0.0, 1.0, ""),
    _P("composite", "w_dark_pool", 1.0, "1", 0.0, 1.0, ""),
    _P("composite", "w_sinkhole", 1.0, "1", 0.0, 1.0, ""),
    _P("composite", "w_contraction", 1.0, "1", 0.0, 1.0, ""),
    _P("composite", "exit_veto", 1.0, "1", 0.0, 1.0,
       "composite is multiplied by (1 - exit_veto x exit score)"),
    _P("composite", "follow", 1.0, "1", 0.0, 1.0,
       "1 = an accumulation signal's trigger (weight > 0) also triggers the composite when its score is at "
       "least 0.5 (the component scale's threshold; an exit veto still blocks it); 0 = only the composite's "
       "own persistence"),
    _P("composite", "agreement", 0.1, "1", 0.0, 1.0,
       "share of the other accumulation scores' noisy-OR added to the strongest one (0 = the max)"),
)

N_CFG = len(PARAMS)
SECTIONS = tuple(dict.fromkeys(p.section for p in PARAMS))

INDEX: dict[str, int] = {p.name: i for i, p in enumerate(PARAMS)}


# --- signals (output column k = SIG_* - 1) ------------------------------------------------------
K_ABS, K_CREEP, K_DARK, K_SINK, K_CONTR, K_EXIT, K_COMP = range(7)
N_SIG = 7

#: Names of the explain values per output column k (the order written into ``explain``).
EXPLAIN_NAMES: tuple[tuple[str, ...], ...] = (
    ("sell_share_30s", "rel_volume_30s", "mid_change_30s_bps", "refills_30s", "spread_minus_avg_10s_bps",
     "depth_imbalance"),
    ("mid_change_30s_bps", "depth_imbalance_excess", "buy_share_30s", "lit_share_30s", "vol_dmid_z",
     "move_sigma_30s"),
    ("lit_share_30s", "rel_volume_30s", "mid_change_30s_bps", "buy_share_30s", "offex_volume_30s",
     "volume_30s"),
    ("sell_share_30s", "rel_volume_30s", "depth_imbalance", "recent_low_ratio", "mid_change_30s_bps",
     "recent_low"),
    ("spread_ratio_5s_1h", "spread_ratio_5s_baseline", "rvol_ratio_5s", "touch_imbalance_smoothed",
     "touch_depth_ratio", "spread_bps"),
    ("mid_change_30s_bps", "sell_share_30s", "spread_ratio", "depth_imbalance", "offex_share_30s",
     "rel_volume_30s"),
    ("absorption", "creep", "dark_pool", "sinkhole", "contraction", "exit"),
)

# --- state columns --------------------------------------------------------------------------------
ST_ON = 0  # per signal k at 3k + 0: 1 while triggered (until the score falls below trigger.off_score)
ST_ABOVE = 1  # 3k + 1: time (s) the score first reached <signal>.on_score in the current run, -1 = below
ST_REARM = 2  # 3k + 2: time (s) the signal last re-armed (fell below trigger.off_score)
ST_DAY = 21  # session day number of the last row: (ts - 6 h) // 1 day
ST_DAY_LOW = 22  # running low of the mid today ($)
ST_NLOWS = 23  # previous session days stored in the ring (<= NLOWS)
ST_LOWS = 24  # previous days' lows, most recent first (NLOWS slots)
NLOWS = 10
ST_SPR_LOG = 34  # EWMA of log(5 s mean spread): geometric-mean baseline
ST_SPR_INIT = 35
ST_IMB = 36  # smoothed touch imbalance
ST_IMB_INIT = 37
ST_TLAST = 38  # time (s) of the last row
ST_NROWS = 39  # rows seen
ST_SM = 40  # 40 + k: smoothed score of signal k (EWMA, half-life <signal>.smooth_s)
ST_DIMB = 47  # EWMA of the N-level depth imbalance (the symbol's own mean)
ST_DIMB_INIT = 48
ST_TOUCH = 49  # EWMA of the touch size (bid + ask shares): the symbol's own mean
ST_TOUCH_INIT = 50
ST_RL_LAST = 51  # cum_reloads at the last row (NaN-free; valid when ST_RL_INIT)
ST_RL_INIT = 52
ST_RL = 53  # decaying count of same-message bid reloads (half-life absorption.reload_half_life_s)
ST_RL_PX = 54  # best bid ($) at the last row that saw a reload: the iceberg's price
N_ST = 55
NEVER = -1.0e18

# --- feature columns used ---------------------------------------------------------------------------
F_MID = COL["mid"]
F_SPREAD = COL["spread"]
F_SPREAD_BPS = COL["spread_bps"]
F_DEPTH_IMB = COL["depth_imbalance"]
F_TOUCH_IMB = COL["touch_imbalance"]
F_SPREL10 = COL["spread_minus_avg_10s"]
F_SPRAT = COL["spread_ratio_5s_1h"]
F_SPRAVG5 = COL["spread_avg_5s"]
F_SPRAVG30 = COL["spread_avg_30s"]
F_SPRAVG1H = COL["spread_avg_1h"]
F_VDMZ = COL["vol_dmid_z"]
F_VOL30 = COL["volume_30s"]
F_VOL1H = COL["volume_1h"]
F_BUY30 = COL["buy_volume_30s"]
F_SELL30 = COL["sell_volume_30s"]
F_OFFEX30 = COL["offex_volume_30s"]
F_DMID30 = COL["mid_change_30s"]
F_MIDVEL30 = COL["mid_velocity_30s"]
F_REFILL30 = COL["refills_30s"]
F_HIDDEN30 = COL["hidden_30s"]
F_RVOL5 = COL["mid_rvol_bps_5s"]
F_RVOL1H = COL["mid_rvol_bps_1h"]
F_RVOL30 = COL["mid_rvol_bps_30s"]
F_MIDSTD30 = COL["mid_std_30s"]
F_DEPL30 = COL["depletion_30s"]
F_TRD30 = COL["trades_30s"]
F_TRD1H = COL["trades_1h"]
F_BIDSZ = COL["bid_size"]
F_ASKSZ = COL["ask_size"]
F_CUMRL = COL["cum_reloads"]
F_BID = COL["bid"]

# --- config positions ---------------------------------------------------------------------------------
#: trigger threshold of each output column k
C_ON = (INDEX["absorption.on_score"], INDEX["creep.on_score"], INDEX["dark_pool.on_score"],
        INDEX["sinkhole.on_score"], INDEX["contraction.on_score"], INDEX["exit.on_score"],
        INDEX["composite.on_score"])
C_OFF = INDEX["trigger.off_score"]
#: persistence of each output column k
C_SMOOTH = (INDEX["absorption.smooth_s"], INDEX["creep.smooth_s"], INDEX["dark_pool.smooth_s"],
            INDEX["sinkhole.smooth_s"], INDEX["contraction.smooth_s"], INDEX["exit.smooth_s"],
            INDEX["composite.smooth_s"])
C_EMIT = INDEX["trigger.emit_min"]
C_DIMB_HL = INDEX["baseline.depth_half_life_s"]
C_AGREE = INDEX["composite.agreement"]
C_PERSIST = (INDEX["absorption.persist_s"], INDEX["creep.persist_s"], INDEX["dark_pool.persist_s"],
             INDEX["sinkhole.persist_s"], INDEX["contraction.persist_s"], INDEX["exit.persist_s"],
             INDEX["composite.persist_s"])
C_COOLDOWN = INDEX["trigger.cooldown_s"]
C_SPR_HL = INDEX["baseline.spread_half_life_s"]
C_IMB_HL = INDEX["baseline.imbalance_half_life_s"]
C_LOW_DAYS = INDEX["baseline.low_lookback_days"]
C_A_SS_LO = INDEX["absorption.sell_share_lo"]
C_A_SS_HI = INDEX["absorption.sell_share_hi"]
C_A_RV_LO = INDEX["absorption.rel_volume_lo"]
C_A_RV_HI = INDEX["absorption.rel_volume_hi"]
C_A_RVMAX = INDEX["absorption.max_rel_volume"]
C_A_DROP = INDEX["absorption.max_drop_bps"]
C_A_WIDEN = INDEX["absorption.max_spread_widen_bps"]
C_A_RF_LO = INDEX["absorption.refills_lo"]
C_A_RF_HI = INDEX["absorption.refills_hi"]
C_A_HID = INDEX["absorption.hidden_share_hi"]
C_A_DIMB = INDEX["absorption.max_depth_imbalance"]
C_A_RL_HL = INDEX["absorption.reload_half_life_s"]
C_A_RL_FULL = INDEX["absorption.reloads_full"]
C_A_RL_SS = INDEX["absorption.reload_sell_share_relax"]
C_A_RL_W = INDEX["absorption.reload_weight"]
C_C_RISE = INDEX["creep.min_rise_bps"]
C_C_MOVEZ = INDEX["creep.min_move_sigma"]
C_C_VCAP = INDEX["creep.max_velocity_pct_s"]
C_C_BS_LO = INDEX["creep.buy_share_lo"]
C_C_BS_HI = INDEX["creep.buy_share_hi"]
C_C_LS_LO = INDEX["creep.lit_share_lo"]
C_C_LS_HI = INDEX["creep.lit_share_hi"]
C_C_VDMZ = INDEX["creep.max_vol_dmid_z"]
C_C_RVMAX = INDEX["creep.max_rel_volume"]
C_C_DI_LO = INDEX["creep.depth_imbalance_lo"]
C_C_DI_HI = INDEX["creep.depth_imbalance_hi"]
C_C_PATHT = INDEX["creep.min_path_t"]
C_C_STEPD = INDEX["creep.max_step_dispersion"]
C_C_TOUCH = INDEX["creep.min_touch_share"]
C_C_ATS = INDEX["creep.alt_touch_share"]
C_C_ADI = INDEX["creep.alt_depth_imbalance"]
C_C_ASP = INDEX["creep.alt_min_spreads"]
C_C_RTRD = INDEX["creep.min_rel_trades"]
C_D_LS_MAX = INDEX["dark_pool.max_lit_share"]
C_D_LS_FULL = INDEX["dark_pool.lit_share_full"]
C_D_RV_LO = INDEX["dark_pool.rel_volume_lo"]
C_D_RV_HI = INDEX["dark_pool.rel_volume_hi"]
C_D_DMID = INDEX["dark_pool.min_mid_change_bps"]
C_D_BS_LO = INDEX["dark_pool.buy_share_lo"]
C_D_BS_HI = INDEX["dark_pool.buy_share_hi"]
C_S_SS_LO = INDEX["sinkhole.sell_share_lo"]
C_S_SS_HI = INDEX["sinkhole.sell_share_hi"]
C_S_RV_LO = INDEX["sinkhole.rel_volume_lo"]
C_S_RV_HI = INDEX["sinkhole.rel_volume_hi"]
C_S_DI_LO = INDEX["sinkhole.depth_imbalance_lo"]
C_S_DI_HI = INDEX["sinkhole.depth_imbalance_hi"]
C_S_DROP = INDEX["sinkhole.max_drop_bps"]
C_S_NEAR = INDEX["sinkhole.near_low_ratio"]
C_R_SPR = INDEX["contraction.max_spread_ratio"]
C_R_RVOL = INDEX["contraction.max_rvol_ratio"]
C_R_IMB_LO = INDEX["contraction.imbalance_lo"]
C_R_IMB_HI = INDEX["contraction.imbalance_hi"]
C_R_TD_LO = INDEX["contraction.touch_depth_lo"]
C_R_TD_HI = INDEX["contraction.touch_depth_hi"]
C_E_DROP_LO = INDEX["exit.drop_lo_bps"]
C_E_DROP_HI = INDEX["exit.drop_hi_bps"]
C_E_SS_LO = INDEX["exit.sell_share_lo"]
C_E_SS_HI = INDEX["exit.sell_share_hi"]
C_E_SPR_LO = INDEX["exit.spread_ratio_lo"]
C_E_SPR_HI = INDEX["exit.spread_ratio_hi"]
C_E_BF_LO = INDEX["exit.bid_flight_lo"]
C_E_BF_HI = INDEX["exit.bid_flight_hi"]
C_E_OFFEX = INDEX["exit.offex_share_hi"]
C_W0 = INDEX["composite.w_absorption"]  # five consecutive weights
C_VETO = INDEX["composite.exit_veto"]
C_FOLLOW = INDEX["composite.follow"]

DAY_S = 86400.0
SESSION_SHIFT_S = 6 * 3600.0
RVOL_SCALE_5S = math.sqrt(5.0 / 3600.0)
RVOL_SCALE_30S = math.sqrt(30.0 / 3600.0)


@njit(cache=True, _nrt=False)
def init_state(st, s) -> None:
    """Fresh state of symbol s (all signals armed, no history)."""
    for c in range(N_ST):
        st[s, c] = 0.0
    for k in range(N_SIG):
        st[s, 3 * k + ST_ABOVE] = -1.0
        st[s, 3 * k + ST_REARM] = NEVER
    st[s, ST_DAY] = NEVER
    st[s, ST_DAY_LOW] = math.inf
    st[s, ST_TLAST] = NEVER


@njit(cache=True, error_model="numpy", _nrt=False)  # IEEE division: no per-division zero checks (all guarded)
def update_row(F, r, ts_ns, st, s, cfg, score, trig, ex_min, expl, j) -> int:
    """Score snapshot row ``F[r]`` (symbol ``s``, event time ``ts_ns``), advance ``st[s]`` and write
    ``score[r, k]`` and ``trig[r, k]`` (1 on a rising edge) for every signal k.  When the row is worth
    emitting (a trigger, or a score >= ``ex_min``) also write its explain values to ``expl[j, k, :]``
    and return 1, else return 0 (explain values cost more to write than the scores to compute)."""
    t = ts_ns * 1e-9
    dt = t - st[s, ST_TLAST]
    st[s, ST_TLAST] = t
    st[s, ST_NROWS] += 1.0
    mid = F[r, F_MID]
    ok = mid == mid and mid > 0.0

    # ---- session lows (for the sinkhole's "near the recent low") ----
    day = math.floor((t - SESSION_SHIFT_S) / DAY_S)
    if day != st[s, ST_DAY]:
        if st[s, ST_DAY] != NEVER and st[s, ST_DAY_LOW] < math.inf:
            for q in range(NLOWS - 1, 0, -1):
                st[s, ST_LOWS + q] = st[s, ST_LOWS + q - 1]
            st[s, ST_LOWS] = st[s, ST_DAY_LOW]
            if st[s, ST_NLOWS] < NLOWS:
                st[s, ST_NLOWS] += 1.0
        st[s, ST_DAY] = day
        st[s, ST_DAY_LOW] = math.inf
    if ok and mid < st[s, ST_DAY_LOW]:
        st[s, ST_DAY_LOW] = mid
    low = st[s, ST_DAY_LOW]
    nprev = min(st[s, ST_NLOWS], cfg[C_LOW_DAYS] - 1.0)
    q = 0
    while q < nprev:
        if st[s, ST_LOWS + q] < low:
            low = st[s, ST_LOWS + q]
        q += 1

    # ---- inputs (undefined -> neutral values) ----
    vol30 = F[r, F_VOL30]
    if not vol30 == vol30:
        vol30 = 0.0
    vol1h = F[r, F_VOL1H]
    if not vol1h == vol1h:
        vol1h = 0.0
    den = vol30 if vol30 > 1.0 else 1.0
    sell_sh = F[r, F_SELL30] / den if vol30 > 0.0 else 0.0
    buy_sh = F[r, F_BUY30] / den if vol30 > 0.0 else 0.0
    offex_sh = F[r, F_OFFEX30] / den if vol30 > 0.0 else 0.0
    if not sell_sh == sell_sh:
        sell_sh = 0.0
    if not buy_sh == buy_sh:
        buy_sh = 0.0
    if not offex_sh == offex_sh:
        offex_sh = 0.0
    lit_sh = 1.0 - offex_sh
    base_rate = vol1h * (30.0 / 3600.0)
    rel_vol = vol30 / (base_rate if base_rate > 1.0 else 1.0)
    dmid_bps = F[r, F_DMID30] / mid * 1e4 if ok else 0.0
    if not dmid_bps == dmid_bps:
        dmid_bps = 0.0
    midvel = F[r, F_MIDVEL30]
    if not midvel == midvel:
        midvel = 0.0
    spread = F[r, F_SPREAD]
    sp_ok = ok and spread == spread and spread > 0.0
    sprel_bps = F[r, F_SPREL10] / mid if ok else 0.0
    if not sprel_bps == sprel_bps:
        sprel_bps = 0.0
    dimb = F[r, F_DEPTH_IMB]
    dimb_known = dimb == dimb  # a feed without sizes (IQFeed history ticks) has no depth at all
    if not dimb_known:
        dimb = 0.0
    # the symbol's own mean depth imbalance (value before this row): excess = dimb - mean; a gap
    # counts as at most 60 s so that a silent night does not hand the baseline to the next rows
    a_dep = 1.0 - math.pow(0.5, min(dt, 60.0) / cfg[C_DIMB_HL]) if dt > 0.0 else 0.0  # also the touch's
    if st[s, ST_DIMB_INIT] > 0.0:
        dimb_x = dimb - st[s, ST_DIMB]
        if dt > 0.0:
            st[s, ST_DIMB] += a_dep * (dimb - st[s, ST_DIMB])
    else:
        dimb_x = dimb
        st[s, ST_DIMB] = dimb
        st[s, ST_DIMB_INIT] = 1.0
    # the symbol's own mean touch size (value before this row), like the depth imbalance's
    touch = F[r, F_BIDSZ] + F[r, F_ASKSZ]
    tdr = math.nan
    if touch == touch and touch > 0.0:
        if st[s, ST_TOUCH_INIT] > 0.0:
            tdr = touch / st[s, ST_TOUCH] if st[s, ST_TOUCH] > 0.0 else math.nan
            if dt > 0.0:
                st[s, ST_TOUCH] += a_dep * (touch - st[s, ST_TOUCH])
        else:
            tdr = 1.0
            st[s, ST_TOUCH] = touch
            st[s, ST_TOUCH_INIT] = 1.0
    refills = F[r, F_REFILL30]
    if not refills == refills:
        refills = 0.0
    hid = F[r, F_HIDDEN30]
    hid_sh = hid / den if hid == hid and vol30 > 0.0 else 0.0
    vdmz = F[r, F_VDMZ]
    if not vdmz == vdmz:
        vdmz = 0.0
    timb = F[r, F_TOUCH_IMB]
    if not timb == timb:
        timb = 0.0

    # ---- baselines: geometric-mean spread, smoothed touch imbalance ----
    spr5 = F[r, F_SPRAVG5]
    spr_base = math.nan
    if st[s, ST_SPR_INIT] > 0.0:
        spr_base = math.exp(st[s, ST_SPR_LOG])
    if spr5 == spr5 and spr5 > 0.0 and dt > 0.0:
        a = 1.0 - math.pow(0.5, min(dt, 3600.0) / cfg[C_SPR_HL])
        if st[s, ST_SPR_INIT] > 0.0:
            st[s, ST_SPR_LOG] += a * (math.log(spr5) - st[s, ST_SPR_LOG])
        else:
            st[s, ST_SPR_LOG] = math.log(spr5)
            st[s, ST_SPR_INIT] = 1.0
    hl = cfg[C_IMB_HL]
    if st[s, ST_IMB_INIT] > 0.0 and hl > 0.0 and dt > 0.0:
        st[s, ST_IMB] += (1.0 - math.pow(0.5, min(dt, 3600.0) / hl)) * (timb - st[s, ST_IMB])
    else:
        st[s, ST_IMB] = timb
        st[s, ST_IMB_INIT] = 1.0
    imb_s = st[s, ST_IMB]
    sprat = F[r, F_SPRAT]
    if not (sprat == sprat and sprat > 0.0):
        sprat = math.nan
    sprat_b = spr5 / spr_base if spr5 == spr5 and spr5 > 0.0 and spr_base == spr_base else math.nan

    # ---- 1. absorption ----
    # iceberg evidence: same-message bid reloads (cum_reloads increments), a decaying count
    crl = F[r, F_CUMRL]
    inc = 0.0
    if crl == crl:
        if st[s, ST_RL_INIT] > 0.0 and crl >= st[s, ST_RL_LAST]:
            inc = crl - st[s, ST_RL_LAST]
        st[s, ST_RL_LAST] = crl
        st[s, ST_RL_INIT] = 1.0
    hl = cfg[C_A_RL_HL]
    if dt > 0.0:
        st[s, ST_RL] *= math.pow(0.5, min(dt, 3600.0) / hl) if hl > 0.0 else 0.0
    st[s, ST_RL] += inc
    bid = F[r, F_BID]
    if inc > 0.0 and bid == bid:
        st[s, ST_RL_PX] = bid
    elif bid == bid and bid < st[s, ST_RL_PX] - 1e-9:
        st[s, ST_RL] = 0.0  # the bid gave way below the iceberg's price: the absorption is over
    ice = min(1.0, st[s, ST_RL] / cfg[C_A_RL_FULL]) if cfg[C_A_RL_FULL] > 0.0 else 0.0
    x = 0.0
    if ok and vol30 > 0.0:
        relax = ice * cfg[C_A_RL_SS]
        g1 = min(1.0, max(0.0, (sell_sh - cfg[C_A_SS_LO] + relax) / (cfg[C_A_SS_HI] - cfg[C_A_SS_LO])))
        g2 = min(1.0, max(0.0, (rel_vol - cfg[C_A_RV_LO]) / (cfg[C_A_RV_HI] - cfg[C_A_RV_LO])))
        d = cfg[C_A_DROP]
        g3 = 1.0 if dmid_bps >= -d else (0.0 if d <= 0.0 else min(1.0, max(0.0, (dmid_bps + 2.0 * d) / d)))
        w = cfg[C_A_WIDEN]
        g4 = 1.0 if sprel_bps <= w else (0.0 if w <= 0.0 else min(1.0, max(0.0, (2.0 * w - sprel_bps) / w)))
        g5 = min(1.0, max(0.0, (refills - cfg[C_A_RF_LO]) / (cfg[C_A_RF_HI] - cfg[C_A_RF_LO])))
        g5b = min(1.0, hid_sh / cfg[C_A_HID]) if cfg[C_A_HID] > 0.0 else 0.0
        if g5b > g5:
            g5 = g5b
        if ice > g5:
            g5 = ice
        g6 = min(1.0, max(0.0, (cfg[C_A_DIMB] + 0.15 - dimb_x) / 0.15))
        rvm = cfg[C_A_RVMAX]
        if rel_vol > rvm:
            g2 *= 0.0 if rvm <= 0.0 else min(1.0, max(0.0, (2.0 * rvm - rel_vol) / rvm))
        x = g1 * g2 * g3 * g4 * g5 * g6 * (1.0 - cfg[C_A_RL_W] * (1.0 - ice))
    score[r, K_ABS] = x

    # ---- 2. creep ----
    x = 0.0
    rv1h = F[r, F_RVOL1H]
    movez = 0.0
    if rv1h == rv1h and rv1h > 0.0:
        movez = dmid_bps / (rv1h * RVOL_SCALE_30S)
    if ok and vol30 > 0.0:
        lo = cfg[C_C_RISE]
        g1 = min(1.0, max(0.0, (dmid_bps - lo) / lo)) if lo > 0.0 else (1.0 if dmid_bps > 0.0 else 0.0)
        cap = cfg[C_C_VCAP]
        g2 = 1.0
        if midvel > cap:
            g2 = 0.0 if cap <= 0.0 else min(1.0, max(0.0, (1.5 * cap - midvel) / (0.5 * cap)))
        g3 = min(1.0, max(0.0, (buy_sh - cfg[C_C_BS_LO]) / (cfg[C_C_BS_HI] - cfg[C_C_BS_LO])))
        g4 = min(1.0, max(0.0, (lit_sh - cfg[C_C_LS_LO]) / (cfg[C_C_LS_HI] - cfg[C_C_LS_LO])))
        g5 = min(1.0, max(0.0, cfg[C_C_VDMZ] + 1.0 - vdmz))
        g6 = min(1.0, max(0.0, movez - cfg[C_C_MOVEZ]))
        rvm = cfg[C_C_RVMAX]
        g7 = 1.0
        if rel_vol > rvm:
            g7 = 0.0 if rvm <= 0.0 else min(1.0, max(0.0, (2.0 * rvm - rel_vol) / rvm))
        g8 = 1.0  # sizes unknown: the thin-offer condition cannot be checked (neutral)
        if dimb_known:
            g8 = min(1.0, max(0.0, (dimb_x - cfg[C_C_DI_LO]) / (cfg[C_C_DI_HI] - cfg[C_C_DI_LO])))
        # the offer lifted level by level: most of the volume prints at the touch in force
        dpl = F[r, F_DEPL30]
        tsh = dpl / den if dpl == dpl and vol30 > 0.0 else 1.0
        tl = cfg[C_C_TOUCH]
        g9 = min(1.0, max(0.0, (tsh - tl) / 0.2)) if tl > 0.0 else 1.0
        rt = cfg[C_C_RTRD]
        n1h = F[r, F_TRD1H]
        if rt > 0.0 and n1h == n1h:
            base_n = n1h * (30.0 / 3600.0)
            g9 *= min(1.0, max(0.0, (F[r, F_TRD30] / (base_n if base_n > 1.0 else 1.0) - rt) / 0.5))
        # even steps: one noise buy through several thin levels, or a rise and a pull-back, disperses
        # the window's mid changes; a staircase of equal ticks does not
        msd = F[r, F_MIDSTD30]
        dm = cfg[C_C_STEPD]
        if sp_ok and msd == msd:
            xd = msd * 1e4 / spread
            if xd > dm:
                g9 *= 0.0 if dm <= 0.0 else min(1.0, max(0.0, (2.0 * dm - xd) / dm))
        # the move's credit (g6) also comes from (a) a staircase: the net change is many times the
        # window's own realized volatility, or (b) a rise of at least a spread with the volume at the
        # touch and the offers well thinner than usual
        rv30 = F[r, F_RVOL30]
        if g6 < 1.0 and rv30 == rv30 and rv30 > 0.0:
            g6 = max(g6, min(1.0, max(0.0, dmid_bps / rv30 - cfg[C_C_PATHT])))
        if g6 < 1.0 and cfg[C_C_ATS] < 1.0 and dimb_known and sp_ok:
            h = min(1.0, max(0.0, (tsh - cfg[C_C_ATS]) / 0.1))
            h *= min(1.0, max(0.0, (dimb_x - cfg[C_C_ADI]) / 0.1))
            h *= min(1.0, max(0.0, (dmid_bps * mid / spread - cfg[C_C_ASP]) / 0.5))
            g6 = max(g6, h)
        x = g1 * g2 * g3 * g4 * g5 * g6 * g7 * g8 * g9
    score[r, K_CREEP] = x

    # ---- 3. dark pool ----
    x = 0.0
    if ok and vol30 > 0.0:
        g1 = min(1.0, max(0.0, (cfg[C_D_LS_MAX] - lit_sh) / (cfg[C_D_LS_MAX] - cfg[C_D_LS_FULL])))
        g2 = min(1.0, max(0.0, (rel_vol - cfg[C_D_RV_LO]) / (cfg[C_D_RV_HI] - cfg[C_D_RV_LO])))
        g3 = min(1.0, max(0.0, (dmid_bps - cfg[C_D_DMID]) / 2.0))
        g4 = min(1.0, max(0.0, (buy_sh - cfg[C_D_BS_LO]) / (cfg[C_D_BS_HI] - cfg[C_D_BS_LO])))
        x = g1 * g2 * g3 * g4
    score[r, K_DARK] = x

    # ---- 4. sinkhole ----
    x = 0.0
    low_ratio = low / mid if ok and low < math.inf else 0.0
    if ok and vol30 > 0.0:
        g1 = min(1.0, max(0.0, (sell_sh - cfg[C_S_SS_LO]) / (cfg[C_S_SS_HI] - cfg[C_S_SS_LO])))
        g2 = min(1.0, max(0.0, (rel_vol - cfg[C_S_RV_LO]) / (cfg[C_S_RV_HI] - cfg[C_S_RV_LO])))
        g3 = min(1.0, max(0.0, (dimb_x - cfg[C_S_DI_LO]) / (cfg[C_S_DI_HI] - cfg[C_S_DI_LO])))
        d = cfg[C_S_DROP]
        g4 = 1.0 if dmid_bps >= -d else (0.0 if d <= 0.0 else min(1.0, max(0.0, (dmid_bps + 2.0 * d) / d)))
        g5 = min(1.0, max(0.0, (low_ratio - cfg[C_S_NEAR] + 0.02) / 0.02))
        x = g1 * g2 * g3 * g4 * g5
    score[r, K_SINK] = x

    # ---- 5. micro-volatility contraction with upward bias ----
    x = 0.0
    rv5 = F[r, F_RVOL5]
    rvr = math.nan
    if rv5 == rv5 and rv1h == rv1h and rv1h > 0.0:
        rvr = rv5 / (rv1h * RVOL_SCALE_5S)
    if sp_ok and sprat == sprat:
        sr = sprat
        if sprat_b == sprat_b and sprat_b > sr:
            sr = sprat_b
        s30 = F[r, F_SPRAVG30]
        s1h = F[r, F_SPRAVG1H]
        if s30 == s30 and s1h == s1h and s1h > 0.0 and s30 / s1h > sr:
            sr = s30 / s1h
        g1 = min(1.0, max(0.0, (cfg[C_R_SPR] + 0.2 - sr) / 0.2))
        m = cfg[C_R_RVOL]
        g2 = 1.0
        if rvr == rvr and rvr > m:
            g2 = 0.0 if m <= 0.0 else min(1.0, max(0.0, (2.0 * m - rvr) / m))
        g3 = min(1.0, max(0.0, (imb_s - cfg[C_R_IMB_LO]) / (cfg[C_R_IMB_HI] - cfg[C_R_IMB_LO])))
        g4 = 1.0  # touch sizes unknown (a feed without sizes): the depth condition cannot be checked
        if tdr == tdr:
            g4 = min(1.0, max(0.0, (tdr - cfg[C_R_TD_LO]) / (cfg[C_R_TD_HI] - cfg[C_R_TD_LO])))
        x = g1 * g2 * g3 * g4
    score[r, K_CONTR] = x

    # ---- exit (fleeing / dumping) ----
    x = 0.0
    sr_x = math.nan
    if sprat == sprat:
        sr_x = sprat
    if sprat_b == sprat_b and (not sr_x == sr_x or sprat_b > sr_x):
        sr_x = sprat_b
    if ok and vol30 > 0.0:
        g1 = min(1.0, max(0.0, (-dmid_bps - cfg[C_E_DROP_LO]) / (cfg[C_E_DROP_HI] - cfg[C_E_DROP_LO])))
        g2 = min(1.0, max(0.0, (sell_sh - cfg[C_E_SS_LO]) / (cfg[C_E_SS_HI] - cfg[C_E_SS_LO])))
        h1 = 0.0
        if sr_x == sr_x:
            h1 = min(1.0, max(0.0, (sr_x - cfg[C_E_SPR_LO]) / (cfg[C_E_SPR_HI] - cfg[C_E_SPR_LO])))
        h2 = min(1.0, max(0.0, (-dimb - cfg[C_E_BF_LO]) / (cfg[C_E_BF_HI] - cfg[C_E_BF_LO])))
        h3 = min(1.0, offex_sh / cfg[C_E_OFFEX]) if cfg[C_E_OFFEX] > 0.0 else 0.0
        h = max(h1, max(h2, h3))
        x = g1 * g2 * h
    score[r, K_EXIT] = x

    # ---- sustained evidence: EWMA of each row score (half-life <signal>.smooth_s) ----
    for k in range(N_SIG - 1):
        hl = cfg[C_SMOOTH[k]]
        v = score[r, k]
        if hl > 0.0 and dt > 0.0 and st[s, ST_NROWS] > 1.0:
            v = st[s, ST_SM + k] + (1.0 - math.pow(0.5, min(dt, 3600.0) / hl)) * (v - st[s, ST_SM + k])
        st[s, ST_SM + k] = v
        score[r, k] = v

    # ---- composite accumulation score: the strongest weighted score (+ agreement of the others) ----
    # each score is first put on a common scale where its own trigger threshold is 0.5 (linear
    # below and above): the thresholds differ per signal (creep 0.5, sinkhole 0.3, absorption 0.35),
    # so a raw max against one composite threshold would hear some signals at half their strength and
    # others early (an on_score of 1 maps a perfect score to 0.5)
    best = 0.0
    p = 1.0
    for k in range(5):
        v = score[r, k]
        on = cfg[C_ON[k]]
        if v <= on:
            v = 0.5 * v / on
        else:
            v = 0.5 + 0.5 * (v - on) / (1.0 - on)
        v = cfg[C_W0 + k] * v
        p *= 1.0 - v
        if v > best:
            best = v
    x = best + cfg[C_AGREE] * ((1.0 - p) - best)
    x = x * (1.0 - cfg[C_VETO] * score[r, K_EXIT])
    hl = cfg[C_SMOOTH[K_COMP]]
    if hl > 0.0 and dt > 0.0 and st[s, ST_NROWS] > 1.0:
        x = st[s, ST_SM + K_COMP] + (1.0 - math.pow(0.5, min(dt, 3600.0) / hl)) * (x - st[s, ST_SM + K_COMP])
    st[s, ST_SM + K_COMP] = x
    score[r, K_COMP] = min(1.0, max(0.0, x))

    # ---- trigger machines: persistence, rising edge, hysteresis, cooldown ----
    off = cfg[C_OFF]
    emit = 0
    fired = 0  # an accumulation signal (weight > 0) triggered on this row
    for k in range(N_SIG):
        b = 3 * k
        on = cfg[C_ON[k]]
        v = score[r, k]
        trig[r, k] = 0
        if v >= ex_min:
            emit = 1
        if st[s, b + ST_ON] > 0.0:
            if v < off:
                st[s, b + ST_ON] = 0.0
                st[s, b + ST_REARM] = t
                st[s, b + ST_ABOVE] = -1.0
        else:
            follow = k == K_COMP and fired == 1 and v >= 0.5 and cfg[C_FOLLOW] > 0.0
            if v >= on or follow:
                if st[s, b + ST_ABOVE] < 0.0 and v >= on:
                    st[s, b + ST_ABOVE] = t
                persisted = v >= on and t - st[s, b + ST_ABOVE] >= cfg[C_PERSIST[k]]
                if (persisted or follow) and t - st[s, b + ST_REARM] >= cfg[C_COOLDOWN]:
                    st[s, b + ST_ON] = 1.0
                    trig[r, k] = 1
                    emit = 1
                    if k < 5 and cfg[C_W0 + k] > 0.0:
                        fired = 1
            else:
                st[s, b + ST_ABOVE] = -1.0
    if emit == 0:
        return 0
    expl[j, K_ABS, 0] = sell_sh
    expl[j, K_ABS, 1] = rel_vol
    expl[j, K_ABS, 2] = dmid_bps
    expl[j, K_ABS, 3] = refills
    expl[j, K_ABS, 4] = sprel_bps
    expl[j, K_ABS, 5] = dimb
    expl[j, K_CREEP, 0] = dmid_bps
    expl[j, K_CREEP, 1] = dimb_x
    expl[j, K_CREEP, 2] = buy_sh
    expl[j, K_CREEP, 3] = lit_sh
    expl[j, K_CREEP, 4] = vdmz
    expl[j, K_CREEP, 5] = movez
    expl[j, K_DARK, 0] = lit_sh
    expl[j, K_DARK, 1] = rel_vol
    expl[j, K_DARK, 2] = dmid_bps
    expl[j, K_DARK, 3] = buy_sh
    expl[j, K_DARK, 4] = F[r, F_OFFEX30]
    expl[j, K_DARK, 5] = vol30
    expl[j, K_SINK, 0] = sell_sh
    expl[j, K_SINK, 1] = rel_vol
    expl[j, K_SINK, 2] = dimb
    expl[j, K_SINK, 3] = low_ratio
    expl[j, K_SINK, 4] = dmid_bps
    expl[j, K_SINK, 5] = low if low < math.inf else math.nan
    expl[j, K_CONTR, 0] = sprat
    expl[j, K_CONTR, 1] = sprat_b
    expl[j, K_CONTR, 2] = rvr
    expl[j, K_CONTR, 3] = imb_s
    expl[j, K_CONTR, 4] = tdr
    expl[j, K_CONTR, 5] = F[r, F_SPREAD_BPS]
    expl[j, K_EXIT, 0] = dmid_bps
    expl[j, K_EXIT, 1] = sell_sh
    expl[j, K_EXIT, 2] = sr_x
    expl[j, K_EXIT, 3] = dimb
    expl[j, K_EXIT, 4] = offex_sh
    expl[j, K_EXIT, 5] = rel_vol
    for k in range(6):
        expl[j, K_COMP, k] = score[r, k]
    return 1


@njit(cache=True, _nrt=False)
def init_states(st) -> None:
    """Fresh state for every symbol."""
    for s in range(st.shape[0]):
        init_state(st, s)


@njit(cache=True, error_model="numpy", _nrt=False)
def signals_step_cpu(st, cfg, ts, sym, F, n, score, trig, ex_min, ex_row, expl, counts) -> None:
    """CPU path: score rows ``F[i]``, i < n (symbol ``sym[i]``, time ``ts[i]``) in stream order, updating
    ``st``.  Explain values of rows worth emitting go to ``expl[m]`` in row order (``ex_row[i]`` = m,
    -1 for the others).  ``counts`` receives (rows with a symbol outside the state - score -1, rows
    explained).  (Kept in this module so that a change to the logic or the parameter table
    invalidates its cached code.)"""
    ns = st.shape[0]
    bad = 0
    m = 0
    for i in range(n):
        s = sym[i]
        ex_row[i] = -1
        if s < 0 or s >= ns:
            bad += 1
            for k in range(N_SIG):
                score[i, k] = -1.0
                trig[i, k] = 0
            continue
        if update_row(F, i, ts[i], st, s, cfg, score, trig, ex_min, expl, m) > 0:
            ex_row[i] = m
            m += 1
    counts[0] = bad
    counts[1] = m
