"""The market-by-price form of the LOBSTER day (the IQFeed Level 2 form the benchmark also times):
one atomic group per message, its book equal to LOBSTER's orderbook file, its prints the day's."""

from __future__ import annotations

import numpy as np

from quantedge import events as E
from quantedge.book.bench import mbp_top_stream
from quantedge.features.replay import load_lobster_day, lobster_mbp_events, mbp_pipeline

LOBSTER_ZIP = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"


def test_mbp_form_of_a_lobster_day(shared_data):
    path = shared_data / LOBSTER_ZIP
    day = load_lobster_day(path)
    mbp = lobster_mbp_events(path, day)
    _, truth = mbp_top_stream(path)
    last = (mbp["flags"] & E.FLAG_LAST) != 0
    # one group per message: the group ends exactly where the message (seq) changes
    assert np.array_equal(last[:-1], mbp["seq"][1:] != mbp["seq"][:-1]) and last[-1]
    assert np.all(np.diff(mbp["ts_recv"]) >= 0)
    trades = mbp[mbp["kind"] == E.KIND_TRADE]
    day_trades = day.events[day.events["kind"] == E.KIND_TRADE]
    assert np.array_equal(np.sort(trades["seq"]), np.sort(day_trades["seq"]))
    p = mbp_pipeline(1, day.levels)
    p.step(mbp)
    assert p.book.anomalies(0) == {}
    px, sz, _ = p.book.top(day.levels)
    assert np.array_equal(px[0], truth[-1, :, :, 0]) and np.array_equal(sz[0], truth[-1, :, :, 1])
    lit = trades["size"][(trades["conditions"] & (1 << 6)) == 0].sum()
    assert p.features.get("session_volume", 0) == lit > 0
