"""Snapshot rows that only feed the signal stage (``FeatureState.allocate(rows="signals")``): the
signal inputs equal the full rows' bit for bit, every other column is NaN, and every column the
signal logic reads is among the inputs; the compiled record extraction equals the NumPy one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.sampling import Sampler
from quantedge.features.state import COL, NF, SIG_COL, SIGNAL_INPUTS, FeatureState
from quantedge.signals import logic
from quantedge.signals.config import load_config
from quantedge.signals.engine import SignalEngine, records_of
from quantedge.signals.types import N_EXPLAIN, SIGNAL_DTYPE

NS = 1_000_000_000


@pytest.fixture(scope="module")
def nept_events(shared_data) -> np.ndarray:
    """The real NEPT three days as four symbol ids (copies shifted by 0.3 s steps), stream order."""
    ev, _ = read_iqfeed_ticks(shared_data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv", NameTable())
    parts = []
    for k in range(4):
        e = ev.copy()
        e["symbol"] = k
        e["ts_event"] += k * 300_000_000
        e["ts_recv"] += k * 300_000_000
        parts.append(e)
    out = np.concatenate(parts)
    return out[np.lexsort((out["seq"], out["symbol"], out["ts_recv"]))]


def rows_of(events: np.ndarray, rows: str, capacity: int = 65_536):
    p = FeaturePipeline("nbbo", FeatureState.allocate(4, cadence_ns=NS, rows=rows))
    p.sampler = Sampler(capacity=capacity)
    for a in range(0, events.shape[0], 50_000):  # grouped chunks and sampler flushes both happen
        p.step(events[a:a + 50_000])
    return p, p.snapshots()


@pytest.mark.parametrize("capacity", [5_000, 1 << 20])
def test_signal_rows_hold_the_inputs_of_full_rows_and_nan_elsewhere(nept_events, capacity):
    p_all, full = rows_of(nept_events, "all", capacity)
    p_sig, sig = rows_of(nept_events, "signals", capacity)
    assert len(full) > 10_000 and len(sig) == len(full)
    assert np.array_equal(full.ts, sig.ts) and np.array_equal(full.symbol, sig.symbol)
    cols = SIG_COL.astype(bool)
    assert np.array_equal(sig.F[:, cols], full.F[:, cols], equal_nan=True)
    assert np.isnan(sig.F[:, ~cols]).all()
    assert np.isfinite(full.F[:, ~cols]).any()  # the full rows do compute the others
    # the symbols' current vectors (F) are complete either way
    assert np.array_equal(p_sig.features.F, p_all.features.F, equal_nan=True)
    # and the signals scored from either are the same, bit for bit
    a = SignalEngine(4, load_config(), device="cpu").step(full)
    b = SignalEngine(4, load_config(), device="cpu").step(sig)
    assert np.array_equal(a.score, b.score) and np.array_equal(a.trig, b.trig)
    assert a.records(0.25).tobytes() == b.records(0.25).tobytes()


def test_every_column_the_signal_logic_reads_is_a_signal_input():
    read = {v for k, v in vars(logic).items() if k.startswith("F_") and isinstance(v, int)}
    assert read, "the logic module's feature columns (F_*) were not found"
    assert read <= {COL[n] for n in SIGNAL_INPUTS}
    assert all(n in COL for n in SIGNAL_INPUTS)


def records_numpy(ts, sym, score, trig, ex_row, ex_val, emit_min, row0) -> np.ndarray:
    """The record extraction as masks and fancy indexing (the reference for the compiled pass)."""
    keep = (trig == 1) | (score >= emit_min)
    r, k = np.nonzero(keep)
    out = np.zeros(r.shape[0], dtype=SIGNAL_DTYPE)
    out["ts_event"] = ts[r]
    out["ts_recv"] = ts[r]
    out["seq"] = row0 + r
    out["symbol"] = sym[r]
    out["signal"] = k + 1
    out["triggered"] = trig[r, k]
    out["score"] = score[r, k]
    j = ex_row[r]
    ex = np.full((r.shape[0], N_EXPLAIN), np.nan)
    ok = j >= 0
    ex[ok] = ex_val[j[ok], k[ok], :N_EXPLAIN]
    out["explain"] = ex
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 60), st.integers(0, 2**32 - 1), st.sampled_from([-1.0, 0.0, 0.25, 0.6, 2.0]))
def test_compiled_records_equal_the_numpy_extraction(n, seed, emit_min):
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 10**18, n).astype(np.int64)
    sym = rng.integers(-1, 50, n).astype(np.int32)
    score = rng.random((n, 7))
    score[rng.random((n, 7)) < 0.1] = -1.0
    trig = (rng.random((n, 7)) < 0.1).astype(np.uint8)
    m = int(rng.integers(0, n + 1))
    ex_row = np.full(n, -1, np.int64)
    if m:
        ex_row[np.sort(rng.choice(n, m, replace=False))] = np.arange(m)
    ex_val = rng.normal(size=(m, 7, N_EXPLAIN))
    ex_val[rng.random(ex_val.shape) < 0.2] = np.nan
    row0 = int(rng.integers(0, 10**9))
    got = records_of(ts, sym, score, trig, ex_row, ex_val, n, emit_min, row0)
    want = records_numpy(ts, sym, score, trig, ex_row, ex_val, emit_min, row0)
    assert got.tobytes() == want.tobytes()  # bitwise, NaN explain values too


def test_signal_rows_are_rejected_for_a_bad_setting():
    with pytest.raises(ValueError, match="rows must be"):
        FeatureState.allocate(2, rows="some")
    assert NF == SIG_COL.shape[0]
