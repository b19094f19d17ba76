"""Strategy API and the templates: typed params, RSI/SMA logic, on_signal, interfaces, live-style stepping."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.interfaces import (
    ArraySource,
    Clock,
    DataSource,
    ExecutionVenue,
    ReplayClock,
    WallClock,
)
from quantedge.backtest.venue import ExecutionConfig, SimVenue
from quantedge.signals.types import SIG_COMPOSITE, empty_signals
from quantedge.strategies import registry
from quantedge.strategies.base import Strategy
from quantedge.strategies.rsi_reversion import RsiReversion, wilder_rsi_update
from quantedge.strategies.sma_cross import SmaCross


def test_typed_params_convert_and_reject_unknown_keys():
    s = SmaCross({"fast": "3", "slow": 9, "interval": "1s"})
    assert s.p.fast == 3 and isinstance(s.p.fast, int) and s.p.interval == "1s"
    with pytest.raises(ValueError, match="unknown parameter"):
        SmaCross({"fats": 3})
    with pytest.raises(ValueError, match="cannot use 'x' as int"):
        RsiReversion({"period": "x"})
    assert set(registry()) == {"sma_cross", "rsi_reversion", "accumulation"}


def test_wilder_rsi_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    px = 10 + np.cumsum(rng.normal(0, 0.05, 300))
    st: dict = {}
    ours = [wilder_rsi_update(st, float(p), 14) for p in px]
    d = np.diff(px)
    g, lo = np.maximum(d, 0), np.maximum(-d, 0)
    ag, al = g[:14].mean(), lo[:14].mean()
    ref = [100 - 100 / (1 + ag / al)]
    for i in range(14, d.size):
        ag = (ag * 13 + g[i]) / 14
        al = (al * 13 + lo[i]) / 14
        ref.append(100 - 100 / (1 + ag / al))
    assert ours[:14] == [None] * 14
    assert np.allclose(ours[14:], ref, rtol=1e-12)


@pytest.mark.realdata
def test_sma_on_lobster_aapl_trades_and_live_style_stepping(shared_data):
    from quantedge.catalog.importers.lobster import read_lobster
    from quantedge.catalog.symbols import NameTable

    e, _ = read_lobster(shared_data / "lobster" / "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip", NameTable())
    cfg = dict(execution=ExecutionConfig(book="l3"))
    p = {"fast": 3, "slow": 10, "interval": "1min"}
    whole = Engine(SmaCross(p), 1, EngineConfig(**cfg), ["AAPL"]).run(ArraySource(e, 1 << 20).batches())
    live = Engine(SmaCross(p), 1, EngineConfig(**cfg), ["AAPL"])
    for b in ArraySource(e, 997).batches():  # small batches, as a live feed delivers them
        live.step(b)
    live.finish()
    assert len(whole.fills) >= 6
    assert [(f.ts, f.price) for f in whole.fills] == [(f.ts, f.price) for f in live.fills]
    assert all(f.reason == "market_walk" for f in whole.fills)


def test_on_signal_receives_signals_in_time_order_and_can_trade():
    class OnSig(Strategy):
        def on_start(self, ctx):
            self.got = []

        def on_signal(self, ctx, sig):
            self.got.append((ctx.now, int(sig["signal"]), float(sig["score"])))
            if sig["triggered"]:
                ctx.buy(int(sig["symbol"]), 100, type="limit", limit=1.0)

    e = ev.empty(2)
    e["ts_recv"] = e["ts_event"] = [10, 100]
    e["kind"] = ev.KIND_QUOTE
    e["side"] = [1, -1]
    e["price"] = [9_900, 10_000]
    e["size"] = [500, 500]
    sig = empty_signals(2)
    sig["ts_recv"] = [50, 20]
    sig["signal"] = SIG_COMPOSITE
    sig["score"] = [0.9, 0.4]
    sig["triggered"] = [1, 0]
    s = OnSig()
    eng = Engine(s, 1, EngineConfig(execution=ExecutionConfig(book="pseudo"))).run([e], signals=sig)
    assert [x[0] for x in s.got] == [20, 50]
    assert len(eng.fills) == 1 and eng.fills[0].reason == "quote_through" and eng.fills[0].ts == 100
    assert eng.signals_seen[0][2] == "composite"


def test_interfaces_are_satisfied():
    eng = Engine(SmaCross(), 1)
    assert isinstance(WallClock(), Clock) and isinstance(ReplayClock(eng), Clock)
    assert isinstance(ArraySource(ev.empty(3)), DataSource)
    assert isinstance(SimVenue(1), ExecutionVenue)
