"""Ticks from bars: every bar's O/H/L/C and volume reproduced exactly, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge import events as ev
from quantedge.synth.from_bars import ticks_from_bars


@pytest.fixture(scope="module")
def nept_bars(shared_data):
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_bars

    bars, report = read_iqfeed_bars(shared_data / "iqfeed" / "NEPT_bars_1s_2021-03-01_2021-03-03.csv")
    assert report.rows_read == report.rows_imported + report.rows_quarantined
    return bars


def _per_bar(bars, events):
    tr = events[events["kind"] == ev.KIND_TRADE]
    idx = np.searchsorted(bars["ts"], tr["ts_event"], side="right") - 1
    assert (idx >= 0).all() and (tr["ts_event"] < bars["ts"][idx] + 10**9).all()
    return tr, idx


def test_real_bars_reproduce_ohlc_and_volume(nept_bars):
    bars = nept_bars
    events, rep = ticks_from_bars(bars, 3, seed=9)
    assert rep.bars_used + rep.bars_empty + len(rep.bars_infeasible) + len(rep.bars_invalid) == bars.shape[0]
    tr, idx = _per_bar(bars, events)
    used = np.unique(idx)
    assert used.shape[0] == rep.bars_used
    vol = np.bincount(idx, tr["size"], minlength=bars.shape[0]).astype(np.int64)
    assert np.array_equal(vol[used], bars["period_volume"][used])
    hi = np.full(bars.shape[0], -1, np.int64)
    lo = np.full(bars.shape[0], 1 << 62, np.int64)
    np.maximum.at(hi, idx, tr["price"])
    np.minimum.at(lo, idx, tr["price"])
    assert np.array_equal(hi[used], bars["high"][used]) and np.array_equal(lo[used], bars["low"][used])
    first = np.searchsorted(idx, used, side="left")
    last = np.searchsorted(idx, used, side="right") - 1
    assert np.array_equal(tr["price"][first], bars["open"][used])
    assert np.array_equal(tr["price"][last], bars["close"][used])
    has_n = bars["n_trades"][used] > 0
    counts = np.bincount(idx, minlength=bars.shape[0])[used]
    want = np.minimum(bars["n_trades"][used], bars["period_volume"][used])
    assert (counts[has_n] >= want[has_n]).all()


def test_quotes_bracket_prints_and_are_deterministic(nept_bars):
    events, _ = ticks_from_bars(nept_bars, 3, seed=9)
    again, _ = ticks_from_bars(nept_bars, 3, seed=9)
    assert events.tobytes() == again.tobytes()
    assert (np.diff(events["ts_recv"]) >= 0).all()
    q = events[events["kind"] == ev.KIND_QUOTE]
    bid, ask = q[q["side"] == 1], q[q["side"] == -1]
    assert (bid["price"] < ask["price"]).all() and (ask["flags"] & ev.FLAG_LAST).all()
    assert (bid["price"][bid["price"] >= 10_000] % 100 == 0).all()
    # the NBBO in force at each print brackets it
    tr = events[events["kind"] == ev.KIND_TRADE]
    i = np.searchsorted(bid["seq"], tr["seq"]) - 1
    assert (bid["price"][i] <= tr["price"]).all() and (tr["price"] <= ask["price"][i]).all()
    off = (tr["conditions"] & ev.COND_OFF_EXCHANGE) != 0
    assert ((tr["venue"] == 19) == off).all() and 0.3 < off.mean() < 0.6


def _bars(rows):
    from quantedge.feeds.iqfeed.history import BAR_DTYPE

    out = np.zeros(len(rows), BAR_DTYPE)
    for i, (o, h, lo, c, v, n) in enumerate(rows):
        out[i] = (1_700_000_000 * 10**9 + i * 10**9, o, h, lo, c, 0, v, n, 0)
    return out


def test_sub_dollar_bars_and_reported_bad_bars():
    bars = _bars([
        (8_123, 8_150, 8_100, 8_140, 5_000, 0),  # sub-dollar: $0.0001 grid
        (15_000, 15_100, 14_900, 15_000, 2, 0),  # needs 3 prices, only 2 shares: infeasible
        (15_000, 14_900, 15_100, 15_000, 500, 3),  # high below low: invalid
        (15_000, 15_000, 15_000, 15_000, 0, 0),  # no volume
        (9_950, 10_100, 9_900, 10_000, 30_000, 12),  # crosses $1
    ])
    events, rep = ticks_from_bars(bars, 0, seed=1)
    assert rep.bars_infeasible == [1] and rep.bars_invalid == [2]
    assert rep.bars_empty == 1 and rep.bars_used == 2
    tr, idx = _per_bar(bars, events)
    assert set(idx.tolist()) == {0, 4}
    assert tr["size"][idx == 0].sum() == 5_000 and tr["size"][idx == 4].sum() == 30_000
    assert (idx == 4).sum() == 12
    assert tr["price"][idx == 4].max() == 10_100 and tr["price"][idx == 4].min() == 9_900
