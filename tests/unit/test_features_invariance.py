"""Batch-split invariance of the fused book + features step on real data (LOBSTER AMZN, IQFeed NEPT):
random batch boundaries and snapshot-buffer sizes must give bit-identical state and snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
from quantedge.features.sampling import Sampler
from quantedge.features.state import FeatureState

LOBSTER_ZIP = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
NEPT_TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
N_SLICE = 12_000


@pytest.fixture(scope="module")
def amzn(shared_data):
    day = load_lobster_day(shared_data / LOBSTER_ZIP)
    day.events = replicate(day.events[:N_SLICE], 3, offset_ns=7_000_000)
    return day


@pytest.fixture(scope="module")
def nept(shared_data):
    events, report = read_iqfeed_ticks(shared_data / NEPT_TICKS, NameTable())
    assert report.rows_imported > 30_000
    return events


def _run_lobster(day, cuts, capacity):
    p = lobster_pipeline(day, n_symbols=3, cadence_ns=250_000_000, max_orders=1 << 14)
    p.sampler = Sampler(capacity=capacity)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        p.step(day.events[a:b])
    return p


def _run_nept(events, cuts, capacity):
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=1_000_000_000), sampler=Sampler(capacity))
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        p.step(events[a:b])
    return p


def _assert_same(p, q):
    for name, a, b in zip(("F", "fs", "rq", "pl", "vap", "fz", "cfg"), p.features.arrays(),
                          q.features.arrays(), strict=True):
        assert np.array_equal(a, b, equal_nan=True), f"feature array {name} differs"
    assert np.array_equal(p.book.lv, q.book.lv)
    assert np.array_equal(p.book.sd, q.book.sd)
    assert np.array_equal(p.book.bk, q.book.bk)
    sp, sq = p.snapshots(), q.snapshots()
    assert len(sp) > 0
    assert np.array_equal(sp.ts, sq.ts)
    assert np.array_equal(sp.symbol, sq.symbol)
    assert np.array_equal(sp.F, sq.F, equal_nan=True)


def _cuts(n, points):
    return [0, *sorted(set(points)), n]


@pytest.fixture(scope="module")
def amzn_reference(amzn):
    return _run_lobster(amzn, [0, amzn.events.shape[0]], 1 << 16)


@pytest.fixture(scope="module")
def nept_reference(nept):
    return _run_nept(nept, [0, nept.shape[0]], 1 << 16)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_lobster_random_splits(amzn, amzn_reference, data):
    n = amzn.events.shape[0]
    points = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=40))
    capacity = data.draw(st.integers(1, 500))
    _assert_same(amzn_reference, _run_lobster(amzn, _cuts(n, points), capacity))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_nept_random_splits(nept, nept_reference, data):
    n = nept.shape[0]
    points = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=40))
    capacity = data.draw(st.integers(1, 500))
    _assert_same(nept_reference, _run_nept(nept, _cuts(n, points), capacity))


def test_event_by_event_equals_one_batch(nept, nept_reference):
    """The live extreme: one event per batch over the first day's worth of ticks."""
    n = 4000
    one = _run_nept(nept, [0, n], 1 << 16)
    each = _run_nept(nept, list(range(n + 1)), 7)
    _assert_same(one, each)


def test_reference_runs_are_sane(amzn_reference, nept_reference):
    """The invariance runs exercise real work: prints counted, snapshots taken, windows filled."""
    c = amzn_reference.counters(0)
    assert c["n_trades"] > 300
    assert c["n_backstep"] == 0
    assert len(nept_reference.snapshots()) > 1000
    assert nept_reference.features.get("session_volume", 0) > 0
