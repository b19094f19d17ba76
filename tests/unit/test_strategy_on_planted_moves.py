"""The accumulation strategy against ground truth: simulated penny-stock days whose accumulation
episodes are (or are not) followed by a planted move (``markup``), through the main job's path
(integrity checks -> market-by-price books -> features -> signals -> engine -> venue).

Without a move the strategy can only lose its costs (spread and fees); with one it must make money:
the check that entries, scale-ins and stops together ride the move the signals anticipate."""

from __future__ import annotations

import datetime as dt

import pytest

from quantedge.backtest.pipeline import accumulation_params, backtest_symbol_day
from quantedge.catalog.integrity import check_events
from quantedge.signals.config import load_config
from quantedge.synth.generate import business_days, simulate_symbol, symbol_name

N_DAYS = 6


def _pnl(tmp_path, markup: float) -> tuple[list[float], list[str]]:
    params, raw = accumulation_params()
    conf = load_config()
    date = business_days(dt.date(2024, 1, 2), 1)
    pnls, reasons = [], []
    for i in range(N_DAYS):
        name = symbol_name("penny", i)
        day = simulate_symbol(7, i, "penny", date, 0, markup=(markup, 600.0))[0]
        good = check_events(day.events, symbol=name, date=day.date).good_events()
        m, eng, _ = backtest_symbol_day(good, [name], tmp_path / f"{markup}_{i}", book="l2", params=params,
                                        engine_raw=raw, signal_config=conf, report=False)
        pnls.append(eng.pf.equity - float(raw.get("cash", 100_000)))
        reasons += [x["reason"] for x in m["decisions"]["exits"]]
    return pnls, reasons


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted_moves")
    return {mk: _pnl(tmp, mk) for mk in (0.0, 0.05)}


def test_without_a_move_the_strategy_loses_only_its_costs(runs):
    pnls, _ = runs[0.0]
    assert all(p < 0 for p in pnls)
    assert sum(pnls) > -250 * N_DAYS  # a spread and fees per round trip, not a blow-up


def test_with_a_planted_move_the_strategy_makes_money(runs):
    pnls, reasons = runs[0.05]
    assert sum(pnls) > 500 and sum(p > 0 for p in pnls) >= N_DAYS // 2
    assert sum(pnls) > sum(runs[0.0][0]) + 1000
    # the move itself (offers lifted, the spread widening from the offer side) is not a stop
    assert reasons.count("stop spread_blowout") <= 1
