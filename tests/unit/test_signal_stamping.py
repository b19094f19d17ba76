"""Signal records are stamped with the instant they became known, identically in the backtest's
signal stage and the dashboard's detector stage, whatever the batch cuts.

Real data: the bundled NEPT 2021-03-01 IQFeed excerpt (NBBO books)."""

from __future__ import annotations

import numpy as np
import pytest

from quantedge.backtest.pipeline import IQFEED_SAMPLE, SignalStage
from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
from quantedge.catalog.symbols import NameTable
from quantedge.dashboard.session import DetectorStage
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.state import FeatureState
from quantedge.signals.run import CADENCE_NS


def _sample(n_copies: int = 3) -> np.ndarray:
    from quantedge.features.replay import replicate

    ev, _ = read_iqfeed_ticks(IQFEED_SAMPLE, NameTable())
    return replicate(ev, n_copies, offset_ns=997_003)


@pytest.mark.parametrize("skew_ms", [0, 5])
def test_detector_stage_stamps_as_the_backtest_signal_stage(skew_ms: int) -> None:
    """``skew_ms``: the exchange clock runs ahead of the receiver's (event time after receive time,
    as a skewed feed handler clock gives): a row is then produced by an event received before its
    boundary, and must still not be known before the boundary."""
    events = _sample()
    events["ts_event"] += skew_ms * 1_000_000
    n = int(events["symbol"].max()) + 1
    det = DetectorStage()
    bt = SignalStage(n, "nbbo", config=det.config, device="cpu")  # the same emit_min: the config's
    want = bt.step(events)
    assert want.shape[0] > 50, want.shape

    det.reset(n)
    pipe = FeaturePipeline("nbbo", FeatureState.allocate(n, n_levels=10, cadence_ns=CADENCE_NS))
    cuts = np.sort(np.random.default_rng(5).choice(np.arange(1, events.shape[0]), 40, replace=False))
    got = []
    for part in np.split(events, cuts):
        pipe.step(part)
        rows = pipe.sampler.collect()
        pipe.sampler._chunks.clear()
        got.append(det.step(part, rows))
    got = np.concatenate(got)
    assert got.shape[0] == want.shape[0]
    # a record is known no earlier than its boundary, and at the instant the backtest says
    assert (got["ts_recv"] >= got["ts_event"]).all()
    key = ("symbol", "ts_event", "signal")
    a, b = np.sort(got, order=key), np.sort(want, order=key)
    assert np.array_equal(a["ts_recv"], b["ts_recv"])
    assert np.array_equal(a["score"], b["score"]) and np.array_equal(a["triggered"], b["triggered"])
