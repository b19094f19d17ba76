"""Signal logic: hand-built feature rows give the documented scores and trigger edges; the CPU path
is invariant to how the row stream is cut (hypothesis, real NEPT features); records are well formed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.sampling import Snapshots
from quantedge.features.state import COL, NF, FeatureState
from quantedge.signals.config import load_config
from quantedge.signals.engine import SignalEngine
from quantedge.signals.logic import K_ABS, K_COMP, K_CONTR, K_CREEP, K_EXIT, K_SINK, N_SIG
from quantedge.signals.types import SIGNAL_DTYPE

NS = 1_000_000_000
T0 = 1_704_205_800 * NS  # 2024-01-02 09:30 ET


def row(**kw) -> np.ndarray:
    """A quiet, two-sided $2.00 / $2.01 book with ordinary flow, overridden by ``kw`` (feature names)."""
    f = np.full(NF, np.nan)
    base = dict(mid=2.005, spread=100.0, spread_bps=49.9, depth_imbalance=0.0, touch_imbalance=0.0,
                spread_minus_avg_10s=0.0, spread_ratio_5s_1h=1.0, spread_avg_5s=100.0, spread_avg_30s=100.0,
                spread_avg_1h=100.0, vol_dmid_z=0.0, volume_30s=1000.0, volume_1h=120_000.0,
                buy_volume_30s=500.0, sell_volume_30s=500.0, offex_volume_30s=500.0, mid_change_30s=0.0,
                mid_velocity_30s=0.0, refills_30s=0.0, hidden_30s=0.0, mid_rvol_bps_5s=0.0,
                mid_rvol_bps_1h=20.0, micro_velocity_5s=0.0, cum_reloads=0.0)
    base.update(kw)
    for k, v in base.items():
        f[COL[k]] = v
    return f


SIGNALS = ("absorption", "creep", "dark_pool", "sinkhole", "contraction", "exit", "composite")


def raw_config(**kw):
    """Defaults with score smoothing off, so a hand-built row's score is the row formula itself."""
    return load_config().with_values(**{**{f"{s}__smooth_s": 0.0 for s in SIGNALS}, **kw})


def run(rows: list[np.ndarray], t0: int = T0, step_s: float = 1.0, config=None):
    F = np.array(rows)
    ts = t0 + (np.arange(len(rows)) * step_s * NS).astype(np.int64)
    eng = SignalEngine(1, config or raw_config(), device="cpu", explain="all")
    return eng.step(Snapshots(ts, np.zeros(len(rows), np.int32), F)), eng


ABSORB = dict(volume_30s=4000.0, sell_volume_30s=3600.0, buy_volume_30s=400.0, offex_volume_30s=400.0,
              refills_30s=8.0, cum_reloads=1.0)  # one same-timestamp bid reload (iceberg) at the first row


def test_quiet_rows_score_zero():
    out, _ = run([row()] * 50)
    assert np.all(out.score[:, :6] == 0.0)
    assert out.trig.sum() == 0


def test_absorption_scores_and_triggers_once_after_persistence():
    cfg = load_config()
    persist = int(cfg["absorption.persist_s"])
    out, _ = run([row()] * 5 + [row(**ABSORB)] * (persist + 20))
    assert out.score[5, K_ABS] == pytest.approx(1.0)
    # every condition holds fully: sell share 0.9, rel. volume 4000 / 1000 = 4, 8 refills, bid holds
    assert out.explain[5, K_ABS, 0] == pytest.approx(0.9)
    assert out.explain[5, K_ABS, 1] == pytest.approx(4.0)
    fired = np.nonzero(out.trig[:, K_ABS])[0]
    assert fired.tolist() == [5 + persist]
    # the composite follows the strongest accumulation score
    assert out.score[5, K_COMP] == pytest.approx(1.0)


def test_absorption_without_an_iceberg_reload_is_capped():
    """Without a same-timestamp bid reload the absorption score is at most 1 - reload_weight; a
    reload gives full credit, which decays with reload_half_life_s."""
    cfg = raw_config()
    w = cfg["absorption.reload_weight"]
    out, _ = run([row()] * 5 + [row(**{**ABSORB, "cum_reloads": 0.0})] * 3)
    assert out.score[5:, K_ABS] == pytest.approx(1.0 - w)
    hl = cfg["absorption.reload_half_life_s"]
    out, _ = run([row()] * 5 + [row(**ABSORB)] * (int(hl) + 1))
    assert out.score[5, K_ABS] == pytest.approx(1.0)
    assert out.score[5 + int(hl), K_ABS] == pytest.approx(1.0 - w * 0.5)  # half the credit after hl


# a 3-cent creep on a $2 stock in 30 s (150 bps, 0.05 %/s) on lifts: buyers, lit, little volume per
# cent against the symbol's history, far outside its usual 30 s moves
CREEP = dict(mid_change_30s=0.03, mid_velocity_30s=0.05, volume_30s=1500.0, buy_volume_30s=1400.0,
             sell_volume_30s=100.0, offex_volume_30s=100.0, vol_dmid_z=-0.5, mid_rvol_bps_1h=20.0)


def test_creep_needs_thin_offers_against_the_symbols_own_depth():
    """The creep scores only when the N-level depth imbalance is well above the symbol's own mean
    (sellers stepped away): the same rise on a balanced book scores 0."""
    quiet = [row()] * 5
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=0.6)])
    assert out.score[5, K_CREEP] == pytest.approx(1.0)
    assert out.explain[5, K_CREEP, 1] == pytest.approx(0.6)  # excess over the mean (0 on the quiet rows)
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=0.0)])
    assert out.score[5, K_CREEP] == 0.0
    # halfway up the ramp (depth_imbalance_lo .. depth_imbalance_hi)
    cfg = load_config()
    half = 0.5 * (cfg["creep.depth_imbalance_lo"] + cfg["creep.depth_imbalance_hi"])
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=half)])
    assert out.score[5, K_CREEP] == pytest.approx(0.5)


def test_feeds_without_sizes_skip_the_depth_conditions():
    """IQFeed history ticks carry no bid/ask sizes (depth imbalance and touch sizes undefined): the
    creep's thin-offer and the contraction's deeper-touch conditions count as met (neutral)."""
    quiet = [row(depth_imbalance=np.nan)] * 5
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=np.nan)])
    assert out.score[5, K_CREEP] == pytest.approx(1.0)
    cfg = raw_config(baseline__imbalance_half_life_s=0.0)
    tight = dict(spread=20.0, spread_avg_5s=20.0, spread_avg_30s=20.0, spread_avg_1h=100.0,
                 spread_ratio_5s_1h=0.2, touch_imbalance=0.5)
    out, _ = run([row()] * 10 + [row(**tight)], config=cfg)  # row(): sizes undefined
    assert out.score[10, K_CONTR] == pytest.approx(1.0)


def test_composite_puts_each_score_on_its_own_threshold_scale():
    """A detector exactly at its own trigger threshold gives a composite of 0.5, whatever that
    threshold is (creep 0.5, absorption 0.35), and 1 at a full score."""
    cfg = raw_config(composite__agreement=0.0)
    on = cfg["creep.on_score"]
    assert on != cfg["absorption.on_score"]
    lo, hi = cfg["creep.depth_imbalance_lo"], cfg["creep.depth_imbalance_hi"]
    quiet = [row()] * 5
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=lo + (hi - lo) * on)], config=cfg)
    assert out.score[5, K_CREEP] == pytest.approx(on)
    assert out.score[5, K_COMP] == pytest.approx(0.5)
    out, _ = run(quiet + [row(**CREEP, depth_imbalance=lo + (hi - lo) * (on + 1.0) / 2.0)], config=cfg)
    assert out.score[5, K_COMP] == pytest.approx(0.75)


def test_contraction_needs_a_tighter_and_deeper_touch():
    """A spread at a fifth of its averages with bids leaning up scores only when the touch holds more
    shares than the symbol's own mean (ramp 1.0 -> 1.5 x): 2,000 shares on average, then 4,000 -> 1,
    2,500 -> 0.5, 2,000 -> 0."""
    cfg = raw_config(baseline__imbalance_half_life_s=0.0)
    quiet = [row(bid_size=1000.0, ask_size=1000.0)] * 10
    tight = dict(spread=20.0, spread_avg_5s=20.0, spread_avg_30s=20.0, spread_avg_1h=100.0,
                 spread_ratio_5s_1h=0.2, touch_imbalance=0.5)
    for bid, ask, want in ((3000.0, 1000.0, 1.0), (1875.0, 625.0, 0.5), (1500.0, 500.0, 0.0)):
        out, _ = run(quiet + [row(**tight, bid_size=bid, ask_size=ask)], config=cfg)
        assert out.score[10, K_CONTR] == pytest.approx(want)
        assert out.explain[10, K_CONTR, 4] == pytest.approx((bid + ask) / 2000.0)


def test_absorption_needs_the_bid_to_hold():
    drop = 2.005 * 10 / 1e4  # a 10 bps fall in 30 s: more than 2 x max_drop_bps
    out, _ = run([row(**ABSORB, mid_change_30s=-drop)] * 5)
    assert np.all(out.score[:, K_ABS] == 0.0)


def test_rearm_needs_the_score_to_fall_below_off_and_the_cooldown():
    cfg = raw_config(absorption__persist_s=0.0, trigger__cooldown_s=10.0)
    rows = [row(**ABSORB)] * 3 + [row()] * 3 + [row(**ABSORB)] * 3 + [row()] * 10 + [row(**ABSORB)] * 2
    out, _ = run(rows, config=cfg)
    # fires at 0; re-arms at 3 (score 0) but the cooldown (10 s) blocks the burst at 6..8; fires at 19
    assert np.nonzero(out.trig[:, K_ABS])[0].tolist() == [0, 19]


def test_sinkhole_near_recent_low_uses_previous_days():
    sink = dict(volume_30s=4000.0, sell_volume_30s=3600.0, buy_volume_30s=400.0, offex_volume_30s=400.0,
                depth_imbalance=0.6)
    day1 = [row(mid=1.00)] * 3  # yesterday's low: $1.00
    day2_far = [row(mid=1.20, **sink)] * 3  # 1.00 / 1.20 = 0.83: not near the low
    day2_near = [row(mid=1.04, **{k: v for k, v in sink.items()})] * 3  # 1.00 / 1.04 = 0.96
    F = np.array(day1 + day2_far + day2_near)
    ts = np.array([T0, T0 + NS, T0 + 2 * NS] + [T0 + 86400 * NS + i * NS for i in range(6)], np.int64)
    eng = SignalEngine(1, raw_config(), device="cpu", explain="all")
    out = eng.step(Snapshots(ts, np.zeros(9, np.int32), F))
    assert np.all(out.score[3:6, K_SINK] == 0.0)
    assert out.explain[3, K_SINK, 5] == pytest.approx(1.0)  # the recent low carried over the day change
    assert np.all(out.score[6:, K_SINK] > 0.99)
    # one look-back day only: yesterday is forgotten, today's low is the current price
    eng1 = SignalEngine(1, raw_config(baseline__low_lookback_days=1.0), device="cpu", explain="all")
    out1 = eng1.step(Snapshots(ts, np.zeros(9, np.int32), F))
    assert out1.explain[3, K_SINK, 5] == pytest.approx(1.20)


def test_exit_on_dumping_rows():
    dump = dict(volume_30s=20000.0, sell_volume_30s=19000.0, buy_volume_30s=500.0, offex_volume_30s=15000.0,
                mid_change_30s=-2.005 * 100 / 1e4, depth_imbalance=-0.7, spread_ratio_5s_1h=4.0)
    out, _ = run([row()] * 3 + [row(**dump)] * 30)  # rows 1 s apart: longer than exit.persist_s
    assert out.score[3, K_EXIT] == pytest.approx(1.0)
    assert out.score[3, K_COMP] == pytest.approx(0.0)  # exit vetoes the composite
    assert out.trig[:, K_EXIT].sum() == 1


def test_smoothing_needs_sustained_evidence():
    # a score step from 0 to 1 reaches one half after one half-life of event time (EWMA)
    hl = 10.0
    cfg = raw_config(absorption__smooth_s=hl, absorption__reload_weight=0.0)  # a constant row score
    out, _ = run([row()] * 5 + [row(**ABSORB)] * 30, config=cfg)
    assert out.score[4, K_ABS] == 0.0
    assert out.score[5 + int(hl) - 1, K_ABS] == pytest.approx(0.5)
    assert out.score[-1, K_ABS] == pytest.approx(1.0 - 0.5 ** 3.0)
    # a 3 s burst never reaches the trigger level
    out, _ = run([row()] * 5 + [row(**ABSORB)] * 3 + [row()] * 30, config=cfg)
    assert out.score[:, K_ABS].max() < load_config()["absorption.on_score"]
    assert out.trig[:, K_ABS].sum() == 0


def test_explain_only_for_emitted_rows_by_default():
    F = np.array([row()] * 5 + [row(**ABSORB)] * 40)
    ts = T0 + np.arange(len(F), dtype=np.int64) * NS
    rows = Snapshots(ts, np.zeros(len(F), np.int32), F)
    fast = SignalEngine(1, raw_config(), device="cpu").step(rows)
    full = SignalEngine(1, raw_config(), device="cpu", explain="all").step(rows)
    assert np.array_equal(fast.score, full.score) and np.array_equal(fast.trig, full.trig)
    emitted = ((fast.trig == 1) | (fast.score >= load_config()["trigger.emit_min"])).any(axis=1)
    assert np.array_equal(fast.ex_row >= 0, emitted)
    assert np.array_equal(fast.explain[emitted], full.explain[emitted], equal_nan=True)
    assert np.isnan(fast.explain[~emitted]).all()
    assert fast.records(0.25).tobytes() == full.records(0.25).tobytes()  # bitwise: NaN explain values too


def test_unknown_symbol_rows_are_flagged_not_scored():
    eng = SignalEngine(2, load_config(), device="cpu")
    F = np.array([row(), row()])
    out = eng.step(Snapshots(np.array([T0, T0 + NS]), np.array([0, 5], np.int32), F))
    assert out.skipped == 1
    assert np.all(out.score[1] == -1.0)


def test_records_shape():
    out, eng = run([row()] * 5 + [row(**ABSORB)] * 40)
    recs = out.records(eng.emit_min)
    assert recs.dtype == SIGNAL_DTYPE
    assert np.all((recs["score"] >= eng.emit_min) | (recs["triggered"] == 1))
    assert set(np.unique(recs["signal"])) <= set(range(1, N_SIG + 1))
    assert np.all(recs["ts_event"] >= T0 + 5 * NS)
    assert int(recs["triggered"].sum()) == int(out.trig.sum())


# ---- batch-split invariance on real features (NEPT, 3 days of IQFeed ticks) --------------------

def nept_three(shared_data) -> np.ndarray:
    """The real NEPT ticks as three symbol ids: the series and two copies shifted by 0.4 s and 0.9 s."""
    events, _ = read_iqfeed_ticks(shared_data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv", NameTable())
    parts = []
    for k, off in enumerate((0, 400_000_000, 900_000_000)):
        e = events.copy()
        e["symbol"] = k
        e["ts_event"] += off
        e["ts_recv"] += off
        parts.append(e)
    ev = np.concatenate(parts)
    return ev[np.lexsort((ev["seq"], ev["symbol"], ev["ts_recv"]))]


@pytest.fixture(scope="module")
def nept_rows(shared_data):
    ev = nept_three(shared_data)
    p = FeaturePipeline("nbbo", FeatureState.allocate(3, cadence_ns=NS))
    p.step(ev)
    rows = p.snapshots()
    assert len(rows) > 30_000
    return rows


@pytest.fixture(scope="module")
def nept_reference(nept_rows):
    eng = SignalEngine(3, load_config(), device="cpu")
    return eng.step(nept_rows), eng.state()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=60_000), max_size=12))
def test_batch_split_invariance(nept_rows, nept_reference, cuts):
    ref, ref_state = nept_reference
    n = len(nept_rows)
    pts = [0, *sorted({c % n for c in cuts}), n]
    eng = SignalEngine(3, load_config(), device="cpu")
    outs = [eng.step(Snapshots(nept_rows.ts[a:b], nept_rows.symbol[a:b], nept_rows.F[a:b]))
            for a, b in zip(pts[:-1], pts[1:], strict=True)]
    assert np.array_equal(np.concatenate([o.score for o in outs]), ref.score)
    assert np.array_equal(np.concatenate([o.trig for o in outs]), ref.trig)
    assert np.array_equal(np.concatenate([o.explain for o in outs]), ref.explain, equal_nan=True)
    assert np.array_equal(eng.state(), ref_state, equal_nan=True)
    recs = np.concatenate([o.records(0.25) for o in outs])
    assert recs.tobytes() == ref.records(0.25).tobytes()  # bitwise: undefined (NaN) explain values too


@pytest.mark.parametrize("capacity", [7, 1_000, 1 << 20])
def test_pipeline_scores_a_full_sampler_in_place(shared_data, nept_reference, capacity):
    """SignalPipeline scores the sampler's buffer each time it fills mid-batch (no copy of the rows):
    the outputs, concatenated, equal scoring every row at once, whatever the buffer size."""
    from quantedge.features.sampling import Sampler
    from quantedge.signals.run import SignalPipeline

    ref, ref_state = nept_reference
    ev = nept_three(shared_data)
    pipe = SignalPipeline(3, "nbbo", device="cpu", cadence_ns=NS)
    pipe.features.sampler = Sampler(capacity=capacity)
    outs = [pipe.step(ev[a:a + 40_000]) for a in range(0, ev.shape[0], 40_000)]
    assert np.array_equal(np.concatenate([o.score for o in outs]), ref.score)
    assert np.array_equal(np.concatenate([o.trig for o in outs]), ref.trig)
    assert np.array_equal(np.concatenate([o.explain for o in outs]), ref.explain, equal_nan=True)
    assert np.concatenate([o.records(0.25) for o in outs]).tobytes() == ref.records(0.25).tobytes()
    assert np.array_equal(pipe.signals.state(), ref_state, equal_nan=True)


def test_real_day_scores_are_bounded(nept_reference):
    ref, _ = nept_reference
    assert np.all((ref.score >= 0.0) & (ref.score <= 1.0))
    assert ref.trig.sum() < 0.01 * ref.trig.size  # triggers are rare edges, not levels
