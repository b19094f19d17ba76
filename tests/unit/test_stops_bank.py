"""The compiled StopBank computes what the Python StopSet computes (same stops, same exit reasons),
the venue counts every print on the tape, and observers see the market at T and reach the strategy
at T + feed latency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from quantedge import events as ev
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.stops import Obs
from quantedge.backtest.stops_nb import REASON_LABELS, StopBank, new_tape, tape_print
from quantedge.backtest.venue import ExecutionConfig
from quantedge.strategies.accumulation import STOP_LABEL, Accumulation
from quantedge.strategies.base import Strategy

S = 1_000_000_000
KINDS = "atr,trailing,time,support,micro"


def _pair(params: dict) -> tuple[Accumulation, StopBank]:
    strat = Accumulation({"stops": KINDS, "atr_bar_s": 3, "atr_period": 3, "atr_regime_period": 6,
                          "micro_window": 3, "time_start_s": 5, "time_full_s": 30, **params})
    return strat, strat.make_bank(2)


obs_st = hs.lists(
    hs.tuples(
        hs.integers(190, 210),  # bid, cents
        hs.integers(1, 4),  # spread, cents (sometimes blown out below)
        hs.integers(0, 6000),  # bid depth
        hs.integers(-400, 400),  # signed volume
        hs.integers(0, 900),  # volume
        hs.integers(0, 600),  # at-bid volume
        hs.booleans(),  # spread blow-out
        hs.booleans(),  # no bid level
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(obs_st, hs.integers(0, 60), hs.sampled_from([*KINDS.split(","), KINDS, "micro,atr", "support,time"]))
def test_bank_equals_the_python_rules(rows, open_at, kinds) -> None:  # noqa: ANN001
    strat, bank = _pair({"stops": kinds})
    ref = strat.make_stops(2.0)
    bank.arm(1, bucket=0.01, buffer=0.02)
    for i, (b, sp, depth, sv, vol, at_bid, blow, nobid) in enumerate(rows):
        ts = 1_000 * S + i * S
        bid, ask = b / 100, (b + sp + (40 if blow else 0)) / 100
        price = (bid + ask) / 2
        if i == open_at:
            ref.open(price, ts)
            bank.open(1, price, ts)
        o = Obs(ts=ts, price=price, high=price + 0.01 * (i % 3), low=price - 0.01 * (i % 2),
                bid=None if nobid else bid, ask=ask, bid_depth=None if nobid else float(depth),
                signed_volume=float(sv), volume=float(vol), at_bid_volume=float(at_bid))
        want_stop, want_why = ref.update(o)
        got_stop, got_why = bank.update(1, ts, o.price, high=o.high, low=o.low, bid=o.bid, ask=o.ask,
                                        bid_depth=o.bid_depth, signed_volume=o.signed_volume,
                                        volume=o.volume, at_bid_volume=o.at_bid_volume)
        label = None if want_why is None else STOP_LABEL.get(want_why, want_why)
        assert got_why == label, f"observation {i}"
        if math.isinf(want_stop):
            assert got_stop == want_stop
        else:
            assert got_stop == pytest.approx(want_stop, rel=1e-12, abs=1e-12)
    assert bank.observations(1) == len(rows) and bank.observations(0) == 0


def test_reason_labels_cover_every_rule() -> None:
    assert set(REASON_LABELS.values()) == {"atr", "trailing", "time", "support", "order_flow_reversal",
                                           "spread_blowout", "bid_depth_collapse"}
    with pytest.raises(ValueError, match="unknown"):
        StopBank(1, ("atr", "nope"), bar_ns=1, period=1, mult_low=1, mult_high=1, regime_period=1,
                 regime_ratio=1, trail_pct=0.1, time_max_loss_pct=0.1, time_start_s=0, time_full_s=1,
                 time_floor_pct=0, support_min_share=0.1, micro_flow=0.5, micro_window=1,
                 micro_spread_mult=2, micro_depth_frac=0.5, micro_alpha=0.1)


def test_support_table_keeps_the_heavy_levels_when_full() -> None:
    strat, bank = _pair({"stops": "support", "support_min_share": 0.3})
    bank.arm(0, bucket=0.0001, buffer=0.0)
    for i in range(600):  # 600 distinct buckets of light selling, one heavy level at 1.5000
        bid = 1.4 + i * 0.0001 if i % 10 else 1.5
        bank.update(0, i * S, 1.7, bid=bid, ask=1.8, at_bid_volume=5_000.0 if bid == 1.5 else 10.0)
    bank.open(0, 1.7, 600 * S)
    stop, _ = bank.update(0, 601 * S, 1.7, bid=1.69, ask=1.71)
    assert stop == pytest.approx(1.5)


def test_tape_counts_and_classifies_prints() -> None:
    t = new_tape(2)
    tape_print(t, 1, 0, 1.98, 100.0, 1.98, 2.02)  # at the bid: seller
    tape_print(t, 1, 0, 2.02, 50.0, 1.98, 2.02)  # at the ask: buyer
    tape_print(t, 1, 0, 2.00, 30.0, 1.98, 2.02)  # inside: unclassified
    tape_print(t, 1, 1, 1.97, 10.0, 1.98, 2.02)  # flagged buyer below the bid: still at the bid
    assert t[:5, 1].tolist() == [-100 + 50 + 10, 190, 110, 2.02, 1.97]
    assert t[1, 0] == 0 and t[3, 0] == -np.inf


@settings(max_examples=25, deadline=None)
@given(hs.integers(0, 2**31 - 1), hs.floats(0.05, 0.9))
def test_lazy_observation_equals_observing_every_tick(seed: int, activity: float) -> None:
    """Idle flat symbols sit ticks out and catch up later: the stops end up exactly where observing
    every symbol every tick leaves them, and the same exits fire for positions."""
    _lazy_vs_every_tick(seed, activity, 150, {"stops": KINDS, "atr_bar_s": 5, "atr_period": 3,
                                              "atr_regime_period": 6, "micro_window": 3, "time_start_s": 5,
                                              "time_full_s": 30})


@pytest.mark.parametrize("seed", [1, 2])
def test_long_idle_runs_catch_up_exactly(seed: int) -> None:
    """Idle runs of hundreds of ticks at the strategy's own windows (1 min ATR bars, 10-tick flow
    window, alpha 0.05): the catch-up visits only bar closes and stops the spread and depth averages
    at their fixed points, and still ends where observing every tick does."""
    _lazy_vs_every_tick(seed, 0.004, 4000, {"stops": KINDS, "time_start_s": 60, "time_full_s": 600}, 997)


def _lazy_vs_every_tick(seed: int, activity: float, ticks: int, params: dict, toggle_every: int = 37) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    strat = Accumulation(params)
    banks = [strat.make_bank(n), strat.make_bank(n)]
    banks[1].lazy = False
    lv = np.zeros((n, 2, 4, 4), np.int64)
    sd = np.zeros((n, 2, 8), np.int64)
    last = np.zeros(n, np.int64)
    tapes = [new_tape(n), new_tape(n)]
    for b in banks:
        for s in range(n - 1):  # the last symbol is never armed
            b.arm(s, bucket=0.01, buffer=0.02)
    for k in range(1, ticks + 1):
        ts = 10_000 * S + k * S
        for s in range(n):
            if rng.random() < activity:  # something happened to s in this second
                nb = int(rng.integers(0, 3))
                bid = int(rng.integers(19_000, 21_000))
                sd[s, 0, 0], sd[s, 1, 0] = nb, 2
                lv[s, 0, :nb, 0] = bid - 100 * np.arange(nb)
                lv[s, 0, :nb, 1] = rng.integers(100, 5_000, nb)
                lv[s, 1, :2, 0] = bid + int(rng.integers(100, 400)) + 100 * np.arange(2)
                for tape in tapes:
                    tape[5, s] += 1
                if rng.random() < 0.5:
                    last[s] = bid
                    px, q, side = bid / 1e4, float(rng.integers(100, 900)), int(rng.integers(-1, 2))
                    for tape in tapes:
                        tape_print(tape, s, side, px, q, bid / 1e4, lv[s, 1, 0, 0] / 1e4)
        fired = [b.observe(ts, lv, sd, last, t) for b, t in zip(banks, tapes, strict=True)]
        held = [{x for x in f if banks[0].entry(x[0])} for f in fired]
        assert held[0] == held[1], f"tick {k}"
        if k % toggle_every == 0:  # a position opens / closes on a symbol that may have been idle
            s = int(rng.integers(0, n - 1))
            for b in banks:
                if b.entry(s):
                    b.set_entry(s, 0.0)
                else:
                    b.open(s, 2.0, ts)
    banks[0].catch_up()
    for a, b in (("f", "f"), ("iv", "iv"), ("fw", "fw"), ("sup_px", "sup_px"), ("sup_vol", "sup_vol")):
        np.testing.assert_array_equal(getattr(banks[0], a), getattr(banks[1], b), err_msg=a)
    assert sum(banks[0].observations(s) for s in range(n - 1)) > 0 and banks[0].observations(n - 1) == 0


class _Watcher(Strategy):
    """Records what an observer saw and when the strategy heard of it."""

    def on_start(self, ctx) -> None:  # noqa: ANN001
        self.seen: list[tuple[int, float, float]] = []
        self.heard: list[int] = []
        ctx.observe_every("look", "1s", self.look)

    def look(self, ts: int, m) -> None:  # noqa: ANN001
        self.seen.append((ts, float(m.tape[1, 0]), m.lv[0, 0, 0, 0] / ev.PRICE_SCALE))
        m.tape[1, 0] = 0

    def on_timer(self, ctx, name: str) -> None:  # noqa: ANN001
        if name == "look":
            self.heard.append(ctx.now)


def _events() -> np.ndarray:
    rows = []
    for k in range(4):
        t = 5_000 * S + k * S + S // 2
        q = ev.empty(1)
        q["ts_event"] = q["ts_recv"] = t
        q["kind"], q["side"], q["price"], q["size"] = ev.KIND_QUOTE, 1, 19_800 + k * 100, 500
        q["flags"] = ev.FLAG_LAST
        p = ev.empty(1)
        p["ts_event"] = p["ts_recv"] = t + 1
        p["kind"], p["side"], p["price"], p["size"] = ev.KIND_TRADE, 1, 20_000, 100 * (k + 1)
        rows += [q, p]
    e = np.concatenate(rows)
    e["seq"] = np.arange(e.shape[0])
    return e


@pytest.mark.parametrize("latency_ms", [0, 300])
def test_observer_sees_time_t_and_the_strategy_hears_after_the_feed_latency(latency_ms: int) -> None:
    w = _Watcher()
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), feed_latency_ns=latency_ms * 1_000_000)
    Engine(w, 1, cfg).run([_events()])
    assert [x[0] for x in w.seen] == [5_001 * S, 5_002 * S, 5_003 * S]  # whole seconds inside the day
    assert [x[1] for x in w.seen] == [100, 200, 300]  # the prints of the second before each tick
    assert [x[2] for x in w.seen] == [1.98, 1.99, 2.00]  # the book at T
    assert w.heard == [t + latency_ms * 1_000_000 for t, _, _ in w.seen]


def test_a_missing_bid_before_the_window_does_not_count_as_held() -> None:
    """The flow alarm needs the bid to have given way; when the bid before the window is unknown
    (an empty bid side), heavy selling into a lower bid still fires, in both implementations."""
    strat, bank = _pair({"stops": "micro", "micro_window": 2, "micro_flow": 0.5})
    ref = strat.make_stops(2.0)
    bank.arm(1, bucket=0.01, buffer=0.02)
    rows = [(2.00, 0.0, 100.0), (None, 0.0, 0.0), (1.80, -90.0, 100.0), (1.80, -90.0, 100.0)]
    whys = []
    for i, (bid, sv, vol) in enumerate(rows):
        ts = 1_000 * S + i * S
        if i == 0:
            ref.open(1.9, ts)
            bank.open(1, 1.9, ts)
        o = Obs(ts=ts, price=1.9, bid=bid, ask=2.05, signed_volume=sv, volume=vol)
        want = ref.update(o)[1]
        got = bank.update(1, ts, 1.9, bid=bid, ask=2.05, signed_volume=sv, volume=vol)[1]
        assert got == (None if want is None else STOP_LABEL.get(want, want))
        whys.append(got)
    assert whys[-1] == "order_flow_reversal"
