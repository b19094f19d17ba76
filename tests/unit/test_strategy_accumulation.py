"""Accumulation strategy: entries on the composite + confirmations, scale-in, exits on the exit signal
and on each stop kind, order types and timeouts, parameter validation.

Synthetic streams are used here on purpose: each case needs a precise price path (a trailing
drawdown, a spread blow-out, a bid that evaporates) that a real day shows only by chance.  One
L1 symbol (pseudo book): NBBO quotes every second plus scripted prints; signals are hand-made
SIGNAL_DTYPE records (the strategy does not care how they were made).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.backtest.config import BacktestConfig
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.venue import ExecutionConfig
from quantedge.signals.types import (
    SIG_ABSORPTION,
    SIG_COMPOSITE,
    SIG_CONTRACTION,
    SIG_DARK_POOL,
    SIG_EXIT,
    SIG_SINKHOLE,
    SIGNAL_DTYPE,
)
from quantedge.strategies import registry
from quantedge.strategies.accumulation import Accumulation, round_to_tick, tick_size

S = 1_000_000_000
T0 = 1_704_207_600 * S  # 2024-01-02 10:00 ET
BASE = {
    "warmup_s": 0,
    "reentry_cooldown_s": 3600,
    "max_position": 3000,
    "max_notional": 1e6,
    "tranches": 3,
    "stops": "trailing",
    "trail_pct": 0.5,
}


def quote(t: int, side: int, px: float, sz: int) -> np.ndarray:
    e = ev.empty(1)
    e["ts_event"] = e["ts_recv"] = t
    e["kind"], e["side"], e["price"], e["size"], e["flags"] = (
        ev.KIND_QUOTE,
        side,
        round(px * 1e4),
        sz,
        ev.FLAG_LAST,
    )
    return e


def trade(t: int, px: float, sz: int, side: int) -> np.ndarray:
    e = ev.empty(1)
    e["ts_event"] = e["ts_recv"] = t
    e["kind"], e["side"], e["price"], e["size"] = ev.KIND_TRADE, side, round(px * 1e4), sz
    e["conditions"] = ev.COND_REGULAR
    return e


def stream(seconds: int, path) -> np.ndarray:
    """``path(t) -> (bid, ask, bid_size, [(price, size, side), ...])`` for each second t."""
    out = []
    for t in range(seconds):
        bid, ask, bsz, prints = path(t)
        ts = T0 + t * S
        out += [quote(ts, 1, bid, bsz), quote(ts, -1, ask, 5000)]
        for j, (px, sz, side) in enumerate(prints):
            out.append(trade(ts + S // 2 + j, px, sz, side))
    e = np.concatenate(out)
    e["seq"] = np.arange(e.shape[0])
    return e


def sigs(*rows: tuple[float, int, float, int]) -> np.ndarray:
    """(second, signal, score, triggered) -> records at second + 0.2 s."""
    r = np.zeros(len(rows), SIGNAL_DTYPE)
    for i, (t, k, sc, tr) in enumerate(rows):
        r[i]["ts_event"] = r[i]["ts_recv"] = T0 + int(t * S) + S // 5
        r[i]["signal"], r[i]["score"], r[i]["triggered"], r[i]["seq"] = k, sc, tr, i
    return r


def run(params: dict, events: np.ndarray, signals: np.ndarray) -> tuple[Engine, Accumulation]:
    strat = Accumulation({**BASE, **params})
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"))
    eng = Engine(strat, 1, cfg, ["PNY"]).run([events], signals=signals)
    return eng, strat


def flat(bid=1.98, ask=2.04, prints=()):
    return lambda t: (bid, ask, 5000, list(prints))


def sell_prints(t0: int):
    """Prints at the bid from second t0 on: they trade through a resting buy above the bid."""
    return lambda t: (1.98, 2.04, 5000, [(1.98, 300, -1)] if t >= t0 else [])


# -------------------------------------------------------------------------------------------------
def test_registry_and_yaml_config_load():
    assert registry()["accumulation"] is Accumulation
    cfg = BacktestConfig.load(Path(__file__).parents[2] / "config" / "backtest_accumulation.yaml")
    assert cfg.strategy == "accumulation" and cfg.signals["config"] == "strategy_params.yaml"
    s = Accumulation(cfg.params)
    assert (
        s.p.tranches == 3
        and s.p.entry_order == "mid"
        and s.stop_kinds == ("atr", "trailing", "time", "support", "micro")
    )
    # the built-in defaults are the file's (accumulation_params falls back to them without the file)
    assert Accumulation({}).p == s.p


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"entry_score": 1.5}, "entry_score"),
        ({"tranches": 0}, "tranches"),
        ({"entry_order": "stop"}, "entry_order"),
        ({"stops": "atr,magic"}, "stops"),
        ({"trail_pct": 0}, "trail_pct"),
        ({"time_start_s": 100, "time_full_s": 50}, "time_full_s"),
        ({"flatten_at_et": "25:00"}, "flatten_at_et"),
        ({"obs_interval": "fast"}, "obs_interval"),
        ({"atr_mult_low": 5, "atr_mult_high": 2}, "atr_mult_low"),
    ],
)
def test_parameter_validation_names_the_key(bad, key):
    with pytest.raises(ValueError, match=f"accumulation.{key}"):
        Accumulation(bad)


def test_typed_parameters_reject_unknown_and_ill_typed():
    with pytest.raises(ValueError, match="unknown parameter"):
        Accumulation({"entry_scor": 0.5})
    with pytest.raises(ValueError, match="cannot use 'x' as int"):
        Accumulation({"tranches": "x"})
    assert Accumulation({"require_trigger": "no", "tranches": "2"}).p.tranches == 2


def test_tick_rounding():
    assert tick_size(2.0) == 0.01 and tick_size(0.5) == 0.0001
    assert round_to_tick(2.015, up=False) == 2.01 and round_to_tick(2.011, up=True) == 2.02
    assert round_to_tick(0.51237, up=False) == 0.5123


def test_composite_without_confirmation_does_not_enter():
    e = stream(40, sell_prints(5))
    eng, strat = run({}, e, sigs((2, SIG_COMPOSITE, 0.9, 1)))
    assert not strat.entries and not eng.fills
    # an old confirmation (outside the window) does not count either
    eng, strat = run(
        {"confirm_window_s": 5}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (10, SIG_COMPOSITE, 0.9, 1))
    )
    assert not strat.entries


def test_entry_needs_the_rising_edge_and_the_score():
    e = stream(40, sell_prints(5))
    _, strat = run({}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 0)))
    assert not strat.entries  # no trigger
    _, strat = run({}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.4, 1)))
    assert not strat.entries  # below entry_score
    _, strat = run(
        {"require_trigger": False}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 0))
    )
    assert strat.entries


def test_entry_rests_at_the_midpoint_and_fills_on_prints_through_it():
    e = stream(40, sell_prints(8))
    eng, strat = run({}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)))
    assert strat.entries[0]["confirmations"] == ["absorption"] and strat.entries[0]["target"] == 1000
    f = eng.fills
    assert sum(x.qty for x in f) == 1000 and all(x.side == 1 for x in f)
    assert all(x.price == 20_100 for x in f)  # mid of 1.98 / 2.04: price improvement vs the 2.04 offer
    assert {x.reason for x in f} == {"trade_through"} and all(x.liquidity == "maker" for x in f)
    assert f[0].ts >= T0 + 8 * S  # rested until a seller printed through it
    assert "entry 1/3" in f[0].tag


def test_narrow_spread_takes_the_offer_with_a_limit():
    e = stream(20, flat(bid=2.00, ask=2.01))
    eng, _ = run({}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)))
    assert sum(x.qty for x in eng.fills) == 1000
    assert all(x.price == 20_100 and x.liquidity == "taker" for x in eng.fills)


def test_bid_and_market_entry_orders():
    e = stream(40, sell_prints(8))
    eng, _ = run({"entry_order": "bid"}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)))
    assert eng.venue.order(1)["limit"] == 19_800
    eng, _ = run({"entry_order": "market"}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)))
    assert eng.fills[0].reason == "market_walk" and eng.fills[0].price == 20_400


def test_entry_timeout_repegs_then_gives_up():
    e = stream(120, flat())  # nobody sells: the resting buy never fills
    eng, strat = run(
        {"entry_timeout_s": 10, "entry_reprices": 2},
        e,
        sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)),
    )
    assert not eng.fills
    cancelled = [o for o in eng.order_events if o["status"] == "cancelled"]
    assert len(cancelled) == 3  # first order + 2 re-pegs, each cancelled after 10 s
    assert eng.venue.open_orders() == []


def test_scale_in_one_tranche_per_new_confirmation_up_to_max():
    e = stream(80, sell_prints(3))
    signals = sigs(
        (1, SIG_ABSORPTION, 0.8, 1),
        (2, SIG_COMPOSITE, 0.9, 1),
        (20, SIG_ABSORPTION, 0.9, 0),  # already counted: no tranche
        (30, SIG_DARK_POOL, 0.7, 1),
        (31, SIG_COMPOSITE, 0.6, 0),
        (45, SIG_SINKHOLE, 0.6, 1),
        (60, SIG_CONTRACTION, 0.9, 1),  # already at max
    )
    eng, strat = run({}, e, signals)
    kinds = [(x["kind"], x["target"]) for x in strat.entries]
    assert kinds == [("entry", 1000), ("scale_in", 2000), ("scale_in", 3000)]
    assert eng.position(0) == 3000
    assert max(x.ts for x in eng.fills) > T0 + 45 * S


def test_two_confirmations_enter_with_two_tranches():
    e = stream(40, sell_prints(3))
    _, strat = run(
        {}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (1.5, SIG_DARK_POOL, 0.5, 1), (2, SIG_COMPOSITE, 0.9, 1))
    )
    assert strat.entries[0]["target"] == 2000


def test_exit_signal_closes_the_position_passively_then_escalates():
    def path(t):
        return (1.98, 2.04, 5000, [(1.98, 300, -1)] if 3 <= t < 10 else [(2.04, 300, 1)] if t >= 30 else [])

    e = stream(60, path)
    eng, strat = run(
        {}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1), (25, SIG_EXIT, 0.8, 1))
    )
    assert strat.exits[0]["reason"].startswith("exit_signal") and eng.position(0) == 0
    sells = [x for x in eng.fills if x.side < 0]
    assert sells and all(x.price == 20_100 for x in sells)  # sold at the mid, not the 1.98 bid
    assert "exit: exit_signal" in sells[0].tag
    # nobody buys: mid (5 s) -> re-peg (5 s) -> marketable limit at the bid floor fills at the bid
    e = stream(60, lambda t: (1.98, 2.04, 5000, [(1.98, 300, -1)] if 3 <= t < 10 else []))
    eng, strat = run(
        {}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1), (25, SIG_EXIT, 0.8, 1))
    )
    sells = [x for x in eng.fills if x.side < 0]
    assert eng.position(0) == 0 and sells[0].reason == "limit_take" and sells[0].price == 19_800
    assert sells[0].ts >= T0 + 35 * S


def test_exit_signal_while_flat_cancels_the_working_entry():
    e = stream(40, flat())
    eng, strat = run(
        {}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1), (5, SIG_EXIT, 0.9, 1))
    )
    assert not eng.fills and eng.venue.open_orders() == []
    assert strat.exits and strat.exits[0]["position"] == 0


ENTRY = sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1))


def _stop_case(kind: str):
    """(params, path) making exactly one stop kind fire after the entry (filled by t = 3)."""
    fills = [(1.98, 300, -1)] * 4

    def prints(t):
        return fills if t == 3 else []

    if kind == "trailing":

        def path(t):
            m = 2.01 + 0.01 * min(t, 20) - (0.02 * (t - 20) if t > 20 else 0)
            return (round(m - 0.03, 2), round(m + 0.03, 2), 5000, prints(t))

        return {"stops": "trailing", "trail_pct": 0.04}, path, "trailing"
    if kind == "atr":

        def path(t):
            wig = 0.01 if t % 2 else 0.0
            drop = 0.2 if t >= 40 else 0.0
            return (round(1.98 + wig - drop, 2), round(2.04 + wig - drop, 2), 5000, prints(t))

        return {"stops": "atr", "atr_bar_s": 1, "atr_period": 5, "atr_mult_low": 2.5}, path, "atr"
    if kind == "time":

        def path(t):
            return (1.97, 2.03, 5000, prints(t))  # mid 2.00 < entry 2.01

        return {"stops": "time", "time_start_s": 5, "time_full_s": 20}, path, "time"
    if kind == "support":

        def path(t):
            if t < 3:
                return (1.98, 2.04, 5000, [(1.98, 2000, -1)])  # heavy selling absorbed at 1.98
            if t < 20:
                return (1.98, 2.04, 5000, prints(t))
            return (1.90, 1.96, 5000, [])  # mid 1.93 < 1.98 - 2 ticks

        return {"stops": "support"}, path, "support"
    if kind == "order_flow_reversal":

        def path(t):  # sellers take over from t = 20 and the bid gives way a tick at t = 24
            bid = 1.98 if t < 24 else 1.97
            return (bid, 2.04, 5000, prints(t) or ([(bid, 500, -1)] if t >= 20 else [(2.01, 100, 1)]))

        return {"stops": "micro", "micro_window": 5}, path, "order_flow_reversal"
    if kind == "spread_blowout":

        def path(t):  # the spread blows out from the bid side (bids pulled, offers lifted higher)
            return (1.98 if t < 20 else 1.90, 2.04 if t < 20 else 2.40, 5000, prints(t) or [(2.04, 300, 1)])

        return {"stops": "micro"}, path, "spread_blowout"
    assert kind == "bid_depth_collapse"

    def path(t):
        return (1.98, 2.04, 5000 if t < 20 else 300, prints(t) or [(2.04, 300, 1)])

    return {"stops": "micro"}, path, "bid_depth_collapse"


@pytest.mark.parametrize(
    "kind",
    ["trailing", "atr", "time", "support", "order_flow_reversal", "spread_blowout", "bid_depth_collapse"],
)
def test_each_stop_kind_exits_with_a_marketable_limit(kind):
    params, path, label = _stop_case(kind)
    e = stream(80, path)
    eng, strat = run(params, e, ENTRY)
    assert sum(x.qty for x in eng.fills if x.side > 0) == 1000
    assert strat.exits, f"{kind}: no exit"
    assert strat.exits[0]["reason"] == f"stop {label}"
    sells = [x for x in eng.fills if x.side < 0]
    assert sum(x.qty for x in sells) == 1000 and eng.position(0) == 0
    assert sells[0].reason in ("limit_take", "market_walk") and sells[0].liquidity == "taker"
    assert f"exit: stop {label}" in sells[0].tag
    # nothing fires when the rule is off
    if kind in ("trailing", "atr", "time", "support"):
        eng2, strat2 = run({**params, "stops": "micro" if kind != "support" else "time"}, e, ENTRY)
        assert not any(x["reason"] == f"stop {label}" for x in strat2.exits)


def test_selling_into_a_bid_that_holds_is_not_an_order_flow_reversal():
    """Absorption after the entry (sellers hit the bid, the bid does not move) keeps the position;
    the same selling with the bid a tick lower exits."""
    def path(drop):
        def p(t):
            bid = round(1.98 - (0.01 if drop and t >= 24 else 0.0), 2)
            return (bid, 2.04, 5000, [(1.98, 300, -1)] * 4 if t == 3 else [(bid, 500, -1)])
        return p

    _, held = run({"stops": "micro", "micro_window": 5}, stream(60, path(False)), ENTRY)
    assert held.entries and not held.exits
    _, gave = run({"stops": "micro", "micro_window": 5}, stream(60, path(True)), ENTRY)
    assert gave.exits[0]["reason"] == "stop order_flow_reversal"


def test_a_spread_that_widens_from_the_offer_side_is_not_a_blowout():
    """Buyers lifting the offers widen the spread with the bid where it was: the move, not flight."""
    def path(t):
        return (1.98, 2.04 if t < 20 else 2.40, 5000, [(1.98, 300, -1)] * 4 if t == 3 else [(2.04, 300, 1)])

    _, strat = run({"stops": "micro"}, stream(60, path), ENTRY)
    assert strat.entries and not strat.exits


def test_reentry_cooldown_and_end_of_day_flatten():
    e = stream(60, sell_prints(3))
    sig = sigs(
        (1, SIG_ABSORPTION, 0.8, 1),
        (2, SIG_COMPOSITE, 0.9, 1),
        (10, SIG_EXIT, 0.9, 1),
        (20, SIG_COMPOSITE, 0.9, 1),
    )
    eng, strat = run({"exit_order": "market"}, e, sig)
    assert [x["kind"] for x in strat.entries] == ["entry"]  # the second trigger falls in the cooldown
    # end of day: 10:00:30 ET as the flatten time
    eng, strat = run({"flatten_at_et": "10:00", "exit_order": "market"}, stream(40, sell_prints(3)), ENTRY)
    assert not strat.entries and not strat.exits  # 10:00 had passed at the start: no entries today
    eng, strat = run({"flatten_at_et": "10:01", "exit_order": "market"}, stream(90, sell_prints(3)), ENTRY)
    assert strat.exits[0]["reason"] == "end_of_day" and eng.position(0) == 0


def test_warmup_blocks_early_entries():
    e = stream(40, sell_prints(3))
    _, strat = run({"warmup_s": 30}, e, sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1)))
    assert not strat.entries
    _, strat = run(
        {"warmup_s": 30},
        e,
        sigs((1, SIG_ABSORPTION, 0.8, 1), (33, SIG_ABSORPTION, 0.8, 1), (34, SIG_COMPOSITE, 0.9, 1)),
    )
    assert strat.entries


def test_a_refused_exit_order_is_retried_until_flat():
    """A thin bid (100 shares) turns a market exit into one order per 100 shares; the order-rate limit
    refuses some of them, and the strategy tries again a second later instead of keeping the rest of
    the position (and a partial fill's cancel report never makes it sell shares twice)."""
    from quantedge.backtest.risk import RiskLimits

    def path(t):
        return (1.98, 2.04, 5000 if t < 3 else 100, [(1.98, 300, -1)] * 4 if t == 2 else [])

    strat = Accumulation({**BASE, "exit_order": "market"})
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"), risk=RiskLimits(max_orders_per_sec=2))
    sig = sigs((1, SIG_ABSORPTION, 0.8, 1), (2, SIG_COMPOSITE, 0.9, 1), (10, SIG_EXIT, 0.9, 1))
    eng = Engine(strat, 1, cfg, ["PNY"]).run([stream(60, path)], signals=sig)
    bought = sum(x.qty for x in eng.fills if x.side > 0)
    assert bought == 1000 and strat.exits[0]["reason"].startswith("exit_signal")
    sold = [x for x in eng.fills if x.side < 0]
    assert sum(x.qty for x in sold) == bought and eng.position(0) == 0
    assert eng.risk.rejections.get("max_orders_per_sec", 0) > 0
    assert len({x.ts // S for x in sold}) > 1  # the refused rest went out in later seconds


def test_gated_signals_trade_exactly_as_a_callback_per_record(shared_data):
    """The real NEPT day over 6 symbols through books -> features -> signals -> engine: with the
    gate (a flat symbol takes only the composite records that can open a position as callbacks) the
    strategy makes the same decisions, orders and fills as with a callback for every record, on a
    fraction of the callbacks."""
    from quantedge.backtest.bench import accumulation_setup
    from quantedge.backtest.pipeline import run_with_signals

    nept = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    runs = []
    for gate in (True, False):
        batches, engine, stage = accumulation_setup(nept, 6, 1 << 15, gate_signals=gate)
        eng = run_with_signals(engine(6), batches, stage=stage(6))
        runs.append(eng)
    gated, every = runs
    assert len(every.fills) > 20
    assert gated.trade_log == every.trade_log
    assert gated.order_events == every.order_events
    assert gated.equity_curve == every.equity_curve
    assert gated.strategy.entries == every.strategy.entries and gated.strategy.exits == every.strategy.exits
    assert gated.signals_seen == every.signals_seen
    assert every.signal_callbacks == len(every.signals_seen)
    assert gated.signal_callbacks < every.signal_callbacks / 3


def test_accumulation_benchmark_times_the_halves_and_they_agree(shared_data):
    """The benchmark of BENCHMARKS.md at a few symbols: it times the signal stage alone, the engine
    alone over the stage's records, and the whole path, and the engine alone makes the whole path's
    fills (the backtester does not care who computed the records)."""
    from quantedge.backtest.bench import run_accumulation

    nept = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    r = run_accumulation(nept, 3, 1 << 14, repeat=2)
    assert r["events"] == 3 * 11_561 and r["fills"] > 0 and r["triggers"] > 0
    assert r["engine_alone_same_fills"] is True
    # two rounds: the same records and fills each time, and the figures are the fastest run's
    assert r["repeat"] == 2 and r["repeats_agree"] is True
    for k in ("cpu_s", "signals_alone_cpu_s", "engine_alone_cpu_s"):
        assert r[k] > 0
    for k, runs in (("cpu_s", "whole_runs_cpu_s"), ("signals_alone_cpu_s", "signals_alone_runs_cpu_s"),
                    ("engine_alone_cpu_s", "engine_alone_runs_cpu_s")):
        assert len(r[runs]) == 2 and r[k] == min(r[runs])
    with pytest.raises(ValueError, match="repeat"):
        run_accumulation(nept, 3, 1 << 14, repeat=0)
