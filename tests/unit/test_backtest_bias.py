"""Bias analyzer: deflated Sharpe against a direct evaluation of the formula, IS/OOS split."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from quantedge.backtest.bias import deflated_sharpe, is_oos_split


def test_deflated_sharpe_formula_and_monotonic_in_trials():
    r = np.random.default_rng(11).normal(0.001, 0.01, 500)
    one = deflated_sharpe(r, [0.1])
    sr = r.mean() / r.std(ddof=1)
    z = (r - r.mean()) / r.std()
    g3, g4 = (z**3).mean(), (z**4).mean()
    psr = NormalDist().cdf(sr * math.sqrt(499) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr))
    assert one["sr0_expected_max"] == 0 and one["dsr"] == pytest.approx(psr, rel=1e-12)
    trials = np.random.default_rng(2).normal(0, 0.05, 100)
    many = deflated_sharpe(r, trials)
    v = trials.var(ddof=1)
    nd = NormalDist()
    g = 0.5772156649015329
    sr0 = math.sqrt(v) * ((1 - g) * nd.inv_cdf(1 - 1 / 100) + g * nd.inv_cdf(1 - 1 / (100 * math.e)))
    assert many["sr0_expected_max"] == pytest.approx(sr0) and many["dsr"] < one["dsr"]
    with pytest.raises(ValueError):
        deflated_sharpe(r[:2], [0.1])


def test_is_oos_split_calls_both_halves():
    seen = []

    def run(t0, t1):
        seen.append((t0, t1))
        return {"total_return": 0.01 * (t1 - t0) / 100, "sharpe": 2.0 if t0 == 0 else 0.5, "trades": 3}

    out = is_oos_split(run, 0, 100, 0.7)
    assert seen == [(0, 70), (70, 100)] and out["split_ns"] == 70
    assert out["sharpe_decay"] == pytest.approx(1.5)
