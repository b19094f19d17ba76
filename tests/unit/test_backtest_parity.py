"""Independent-engine checks: SMA crossover vs vectorbt on real 1-minute bars; metrics vs quantstats."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.fees import FeeSchedule
from quantedge.backtest.metrics import resample_equity, returns_from_equity, returns_metrics, summarize
from quantedge.backtest.venue import ExecutionConfig
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.strategies.sma_cross import SmaCross

vbt = pytest.importorskip("vectorbt")
pd = pytest.importorskip("pandas")
qs = pytest.importorskip("quantstats")

MIN = 60_000_000_000
DAY0 = 1614556800_000_000_000 + 5 * 3600 * 10**9  # 2021-03-01 00:00 ET in ns UTC
FAST, SLOW, QTY, PCT, FIXED = 5, 20, 100, 0.001, 0.35


@pytest.fixture(scope="module")
def nept_day(shared_data):
    e, rep = read_iqfeed_ticks(shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv", NameTable())
    assert rep.rows_read == rep.rows_imported + rep.rows_quarantined
    day = e[(e["ts_recv"] >= DAY0) & (e["ts_recv"] < DAY0 + 86400 * 10**9)]
    assert day.size > 5000
    return day


def _independent_bars(day):
    """1-minute closes built with pandas from the prints (same eligibility rule, written separately)."""
    bad = ev.COND_CANCEL_CORRECTION | ev.COND_OUT_OF_SEQUENCE | ev.COND_AVERAGE_PRICE
    t = day[
        (day["kind"] == ev.KIND_TRADE)
        & (day["price"] > 0)
        & (day["size"] > 0)
        & ((day["conditions"] & bad) == 0)
    ]
    df = pd.DataFrame({"ts": t["ts_recv"], "px": t["price"]})
    df["minute"] = df["ts"] // MIN
    close = df.groupby("minute", sort=True)["px"].last()
    return close.index.to_numpy() * MIN + MIN, close.to_numpy()


def _sma_signals(px: np.ndarray):
    """Exact integer cross signals (fast SMA vs slow SMA of $0.0001 closes)."""
    c = np.r_[0, np.cumsum(px.astype(np.int64))]
    n = px.size
    sign = np.zeros(n, np.int64)
    valid = np.zeros(n, bool)
    for i in range(SLOW - 1, n):
        f = c[i + 1] - c[i + 1 - FAST]
        s = c[i + 1] - c[i + 1 - SLOW]
        d = int(f * SLOW - s * FAST)
        sign[i] = (d > 0) - (d < 0)
        valid[i] = True
    prev_ok = np.r_[False, valid[:-1]]
    prev = np.r_[0, sign[:-1]]
    entries = valid & prev_ok & (sign > 0) & (prev <= 0)
    exits = valid & prev_ok & (sign < 0) & (prev >= 0)
    return entries, exits


@pytest.mark.realdata
def test_sma_cross_matches_vectorbt(nept_day):
    t_close, px = _independent_bars(nept_day)
    entries, exits = _sma_signals(px)
    assert entries.sum() >= 5
    close = pd.Series(px / 10_000, index=pd.to_datetime(t_close))
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, size=QTY, fees=PCT, fixed_fees=FIXED, init_cash=100_000.0, freq="1min"
    )
    orders = pf.orders.records_arr
    fees = FeeSchedule(
        per_share=0,
        min_per_order=0,
        max_pct_of_notional=0,
        pct_of_notional=PCT,
        fixed_per_order=FIXED,
        sec_rate=0,
        taf_per_share=0,
    )
    cfg = EngineConfig(
        cash=100_000.0, fees=fees, execution=ExecutionConfig(book="pseudo", fill_model="bar_close")
    )
    eng = Engine(SmaCross({"fast": FAST, "slow": SLOW, "qty": QTY}), 1, cfg, ["NEPT"]).run([nept_day])
    ours = eng.fills
    assert len(ours) == len(orders)
    for f, o in zip(ours, orders, strict=True):
        assert f.ts == t_close[o["idx"]]
        assert f.qty == o["size"]
        assert f.side == (1 if o["side"] == 0 else -1)
        assert f.price_usd == pytest.approx(o["price"], abs=1e-12)
        assert f.fee == pytest.approx(o["fees"], rel=1e-9)
    assert eng.pf.equity == pytest.approx(float(pf.final_value()), rel=1e-12, abs=1e-6)


@pytest.mark.realdata
def test_metrics_match_quantstats(nept_day):
    cfg = EngineConfig(execution=ExecutionConfig(book="pseudo"))
    eng = Engine(SmaCross({"fast": 3, "slow": 8, "qty": 2000}), 1, cfg, ["NEPT"]).run([nept_day])
    ts, eq = resample_equity(*eng.equity_arrays(), MIN)
    r = returns_from_equity(eq)
    assert (r != 0).sum() > 20
    periods = 252 * 390
    ours = returns_metrics(r, periods)
    rs = pd.Series(r, index=pd.to_datetime(ts[1:]))
    assert ours["sharpe"] == pytest.approx(qs.stats.sharpe(rs, periods=periods), rel=1e-9)
    assert ours["sortino"] == pytest.approx(qs.stats.sortino(rs, periods=periods), rel=1e-9)
    assert ours["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(rs), rel=1e-9)
    assert ours["total_return"] == pytest.approx(qs.stats.comp(rs), rel=1e-9, abs=1e-15)
    assert ours["volatility"] == pytest.approx(qs.stats.volatility(rs, periods=periods), rel=1e-9)
    assert ours["period_win_rate"] == pytest.approx(qs.stats.win_rate(rs), rel=1e-9)
    assert ours["profit_factor"] == pytest.approx(qs.stats.profit_factor(rs), rel=1e-9)
    m = summarize(eng, MIN, periods)
    assert m["fills"] == len(eng.fills) and m["fees_paid"] > 0
    assert m["final_equity"] == pytest.approx(eq[-1])
