"""Batch-split invariance of the fused book + features step on real data (LOBSTER AMZN, IQFeed NEPT):
random batch boundaries and snapshot-buffer sizes must give bit-identical state and snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantedge.book.l2 import L2Book
from quantedge.catalog.importers.databento import read_databento_mbp10
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.kernels import advance, base_to, derive, derive_at
from quantedge.features.pipeline import GROUP_MIN, FeaturePipeline
from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
from quantedge.features.sampling import Sampler
from quantedge.features.state import S_TLAST, FeatureState

LOBSTER_ZIP = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
NEPT_TICKS = "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"
DATABENTO = "databento/AAPL_2024-10-21_mbp10_premarket_excerpt.csv"
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


@pytest.fixture(scope="module")
def amzn_stream_order(amzn):
    p = lobster_pipeline(amzn, n_symbols=3, cadence_ns=250_000_000, max_orders=1 << 14)
    p.group_symbols = False
    p.step(amzn.events)
    return p


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_symbol_grouping_equals_stream_order(amzn, amzn_stream_order, monkeypatch, data):
    """Working a batch symbol by symbol gives the stream-order books, features and snapshot rows (same
    order), whatever the chunk size and sampler room (chunks halved, the buffer emptied between)."""
    import quantedge.features.pipeline as fp

    monkeypatch.setattr(fp, "GROUP_CHUNK", data.draw(st.sampled_from([4096, 5000, 9999, 1 << 20])))
    n = amzn.events.shape[0]
    points = data.draw(st.lists(st.integers(0, n), max_size=4))
    p = lobster_pipeline(amzn, n_symbols=3, cadence_ns=250_000_000, max_orders=1 << 14)
    p.sampler = Sampler(capacity=data.draw(st.integers(fp.GROUP_MIN, 6000)))
    taken = []

    def take(sm):  # an on_full consumer, as the signal stage uses it
        k = int(sm.n[0])
        taken.append((sm.ts[:k].copy(), sm.symbol[:k].copy()))
        sm.n[0] = 0

    use_on_full = data.draw(st.booleans())
    for a, b in zip(_cuts(n, points)[:-1], _cuts(n, points)[1:], strict=True):
        p.step(amzn.events[a:b], on_full=take if use_on_full else None)
    if use_on_full:
        take(p.sampler)
        ref = amzn_stream_order.snapshots()
        assert np.array_equal(np.concatenate([t for t, _ in taken]), ref.ts)
        assert np.array_equal(np.concatenate([s for _, s in taken]), ref.symbol)
        p.sampler = amzn_stream_order.sampler  # the rows were compared; compare the rest below
    _assert_same(amzn_stream_order, p)


@pytest.mark.parametrize("mode", ["nbbo", "l2"])
def test_symbol_grouping_nbbo_and_l2_modes(nept, shared_data, mode):
    """The features-only (NBBO) path over three copies of the real NEPT ticks and the market-by-price
    path over three copies of the real Databento MBP-10 excerpt, grouped and not."""
    if mode == "nbbo":
        events = replicate(nept[:20_000], 3, offset_ns=3_000_000)
    else:
        mbp = read_databento_mbp10(shared_data / DATABENTO, NameTable())[0]
        events = replicate(mbp, 3, offset_ns=3_000_000)
    runs = []
    for grp in (False, True):
        book = L2Book.allocate(3, capacity=64, tick=1) if mode == "l2" else None
        fstate = FeatureState.allocate(3, cadence_ns=100_000_000)
        p = FeaturePipeline(mode, fstate, book, sampler=Sampler(8192))
        p.group_symbols = grp
        p.step(events)
        runs.append(p)
    assert events.shape[0] >= GROUP_MIN
    _assert_same(*runs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 35_000),
       ahead_us=st.one_of(st.integers(0, 60_000_000), st.integers(0, 5_000_000_000)),
       later_us=st.integers(0, 40_000_000))
def test_a_row_read_ahead_equals_moving_the_rings_first(nept, cut, ahead_us, later_us):
    """A snapshot row is read ahead (``derive_at``: the rings stay where the last event left them, the
    baseline's boundaries up to the row are applied by ``base_to``): at any time from the last event
    to more than an hour later, its every column is bit for bit the row of moving the rings there
    first (``advance``, then ``derive``); so is it without ``base_to``; and moved on to a later time,
    both states give the same features and baseline."""
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    p.step(nept[:min(cut, nept.shape[0])])
    f = p.features
    t = int(f.fs[0, S_TLAST]) + ahead_us * 1_000
    a, b, c = f.copy(), f.copy(), f.copy()
    rows = np.full((3, f.F.shape[1]), np.nan)
    base_to(a.fs, a.rq, a.fz, 0, t)
    derive_at(rows, 0, a.fs, a.rq, a.vap, a.fz, 0, True, t)
    advance(b.fs, b.rq, b.fz, 0, t)
    derive(rows, 1, b.fs, b.rq, b.vap, b.fz, 0, True)
    derive_at(rows, 2, c.fs, c.rq, c.vap, c.fz, 0, True, t)
    assert np.array_equal(rows[0], rows[1], equal_nan=True)
    assert np.array_equal(rows[2], rows[1], equal_nan=True)
    t2 = t + later_us * 1_000
    for s in (a, b):
        advance(s.fs, s.rq, s.fz, 0, t2)
        derive(s.F, 0, s.fs, s.rq, s.vap, s.fz, 0, True)
    assert np.array_equal(a.F, b.F, equal_nan=True)
    assert np.array_equal(a.fz, b.fz, equal_nan=True)


@pytest.mark.parametrize("cadence_s", [1, 7])
def test_every_row_is_the_state_moved_to_its_boundary(nept, cadence_s):
    """Every snapshot row of the NEPT days equals, bit for bit in every column, the row of a pipeline
    that never took one, its rings moved to the row's boundary (``advance``) and derived there: a row
    read ahead leaves no trace in the state that a later row or event could see (the 7 s cadence puts
    rows between the 3 s buckets of the baseline's window, where its boundaries are split between
    the row and the next event)."""
    cad = cadence_s * 1_000_000_000
    p = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=cad), sampler=Sampler(1 << 16))
    q = FeaturePipeline("nbbo", FeatureState.allocate(1, cadence_ns=0))
    row = np.full((1, p.features.F.shape[1]), np.nan)
    n_rows = 0
    for i in range(nept.shape[0]):
        before = int(p.sampler.n[0])
        p.step(nept[i:i + 1], derive=False)
        if p.sampler.n[0] > before:
            r = q.features.copy()
            bnd = int(p.sampler.ts[before])
            advance(r.fs, r.rq, r.fz, 0, bnd)
            derive(row, 0, r.fs, r.rq, r.vap, r.fz, 0, True)
            assert np.array_equal(p.sampler.F[before], row[0], equal_nan=True), f"row of event {i} at {bnd}"
            n_rows += 1
        q.step(nept[i:i + 1], derive=False)
    assert n_rows > 3_000
    p.derive()
    q.derive()
    assert np.array_equal(p.features.F, q.features.F, equal_nan=True)
    assert np.array_equal(p.features.fz, q.features.fz, equal_nan=True)
