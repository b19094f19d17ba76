"""The feature kernels revisit only the book levels that changed since the last group end (the side's
``[SD_DLO, SD_DHI)`` range, marked by every book kernel): the state must equal that of visiting all N
levels of both sides at every group end, on the real days and on random order flow with clears,
modifies, unknown orders, a feed window, capacity overflow and stale levels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge import events as E
from quantedge.book.l2 import L2Book
from quantedge.book.l3 import L3Book
from quantedge.book.state import DIRTY_ALL, SD_DHI, SD_DLO, SD_NCOL
from quantedge.catalog.importers.databento import read_databento_mbp10
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
from quantedge.features.sampling import Sampler
from quantedge.features.state import S_DB, S_DKNOWN, FeatureState

LOBSTER_ZIP = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
NEPT_TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
DATABENTO = "databento/AAPL_2024-10-21_mbp10_premarket_excerpt.csv"
TRACKED = [c for c in range(SD_NCOL) if c not in (SD_DLO, SD_DHI)]


def _every_level(make, events: np.ndarray) -> FeaturePipeline:
    """The reference: event by event, each book side marked wholly changed before every event, so
    every group end visits all N levels (batch splits change nothing: test_features_invariance)."""
    p = make()
    for i in range(events.shape[0]):
        p.book.sd[:, :, SD_DLO] = 0
        p.book.sd[:, :, SD_DHI] = DIRTY_ALL
        p.step(events[i:i + 1], derive=False)
    p.derive()
    return p


def _assert_same(p: FeaturePipeline, q: FeaturePipeline) -> None:
    for name, a, b in zip(("F", "fs", "rq", "pl", "vap", "fz", "cfg"), p.features.arrays(),
                          q.features.arrays(), strict=True):
        assert np.array_equal(a, b, equal_nan=True), f"feature array {name} differs"
    assert np.array_equal(p.book.lv, q.book.lv)
    assert np.array_equal(p.book.bk, q.book.bk)
    assert np.array_equal(p.book.sd[:, :, TRACKED], q.book.sd[:, :, TRACKED])
    sp, sq = p.snapshots(), q.snapshots()
    assert np.array_equal(sp.ts, sq.ts)
    assert np.array_equal(sp.F, sq.F, equal_nan=True)


def _compare(make, events: np.ndarray) -> FeaturePipeline:
    p = make()
    p.step(events)
    _assert_same(p, _every_level(make, events))
    return p


def test_lobster_l3_day(shared_data):
    day = load_lobster_day(shared_data / LOBSTER_ZIP)
    events = replicate(day.events[:8_000], 2, offset_ns=5_000_000)

    def make():
        p = lobster_pipeline(day, n_symbols=2, cadence_ns=250_000_000, max_orders=1 << 14)
        p.sampler = Sampler(1 << 15)
        return p

    p = _compare(make, events)
    assert np.all(p.features.fs[:, S_DB] > 0)  # the depth sums were exercised


def test_databento_l2_and_nept_nbbo(shared_data):
    mbp = replicate(read_databento_mbp10(shared_data / DATABENTO, NameTable())[0], 2, offset_ns=3_000_000)
    _compare(lambda: FeaturePipeline("l2", FeatureState.allocate(2, cadence_ns=100_000_000),
                                     L2Book.allocate(2, capacity=64, tick=1), sampler=Sampler(1 << 15)), mbp)
    nept = read_iqfeed_ticks(shared_data / NEPT_TICKS, NameTable())[0][:15_000]
    _compare(lambda: FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=1_000_000_000),
                                     sampler=Sampler(1 << 15)), nept)


A, M, C, D, X = E.ACTION_ADD, E.ACTION_MODIFY, E.ACTION_CANCEL, E.ACTION_DELETE, E.ACTION_EXECUTE


def _random_l3(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = E.empty(n)
    b["symbol"] = rng.integers(0, 2, n)
    b["kind"] = rng.choice([E.KIND_ORDER] * 16 + [E.KIND_TRADE, E.KIND_CLEAR], n)
    b["action"] = np.where(b["kind"] == E.KIND_ORDER, rng.choice([A, A, A, M, C, D, X, X], n), 0)
    b["side"] = rng.choice([1, -1], n)
    # both sides on one grid around $100, so adds can cross stale levels of the other side
    b["price"] = 1_000_000 + 100 * rng.integers(-8, 9, n)
    b["size"] = rng.integers(1, 300, n)
    b["order_id"] = rng.integers(1, 80, n)
    b["flags"] = np.where(rng.random(n) < 0.7, E.FLAG_LAST, 0)
    b["ts_event"] = 1_600_000_000_000_000_000 + np.cumsum(rng.integers(0, 40_000_000, n))
    b["ts_recv"] = b["ts_event"]
    return b


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000), nlev=st.sampled_from([1, 3, 10]), window=st.sampled_from([0, 3]),
       skip_stale=st.booleans())
def test_random_l3_streams(seed, nlev, window, skip_stale):
    events = _random_l3(seed, 500)

    def make():
        book = L3Book.allocate(2, capacity=6, window=window, known_from_start=False, max_orders=64)
        for s in range(2):  # volume from before the data: unknown levels, stale-level eviction
            book.seed_side(s, 0, np.array([1_000_300, 1_000_100]), np.array([50, 70]), complete=False,
                           aux_is_size=True)
            book.seed_side(s, 1, np.array([999_900, 1_000_200]), np.array([40, 30]), complete=False,
                           aux_is_size=True)
        fstate = FeatureState.allocate(2, n_levels=nlev, cadence_ns=200_000_000, skip_stale=skip_stale)
        return FeaturePipeline("l3", fstate, book, sampler=Sampler(1 << 12))

    p = _compare(make, events)
    assert set(np.unique(p.features.fs[:, S_DKNOWN])) <= {0, 1}


@pytest.mark.parametrize("seed", [3, 17])
def test_seed_side_marks_the_side_changed(seed):
    """A side re-seeded from Python between steps is visited in full at the next group end."""
    events = _random_l3(seed, 400)
    events["kind"][events["kind"] == E.KIND_CLEAR] = E.KIND_TRADE

    def run(reseed_all: bool) -> FeaturePipeline:
        book = L3Book.allocate(2, capacity=8, max_orders=64)
        p = FeaturePipeline("l3", FeatureState.allocate(2, cadence_ns=0), book)
        p.step(events[:200])
        book.seed_side(0, 0, np.array([1_000_500, 1_000_400, 1_000_300]), np.array([10, 20, 30]),
                       complete=True)
        if reseed_all:
            book.sd[:, :, SD_DLO] = 0
            book.sd[:, :, SD_DHI] = DIRTY_ALL
        p.step(events[200:])
        return p

    _assert_same(run(False), run(True))
