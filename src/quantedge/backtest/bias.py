"""Bias analyzer: look-ahead guard report, in-sample / out-of-sample split, deflated Sharpe.

The deflated Sharpe ratio (Bailey and Lopez de Prado, 2014) is the probability that the true
Sharpe exceeds the best one expected by luck among ``n_trials`` tried configurations:
``DSR = Phi(((SR - SR0) sqrt(T - 1)) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2))`` with
``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``; SR per period, V the
variance of the trials' Sharpe ratios, g3/g4 skewness and (non-excess) kurtosis of the returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329


def _moments(r: np.ndarray) -> tuple[float, float]:
    m, s = r.mean(), r.std()
    if s == 0:
        return 0.0, 3.0
    z = (r - m) / s
    return float((z**3).mean()), float((z**4).mean())


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray | list[float]) -> dict[str, float]:
    """DSR of the chosen strategy's per-period returns given the per-period Sharpe of every trial."""
    r = np.asarray(returns, dtype=np.float64)
    sr_trials = np.asarray(trial_sharpes, dtype=np.float64)
    n, t = sr_trials.size, r.size
    if t < 3 or n < 1:
        raise ValueError("deflated Sharpe needs at least 3 returns and 1 trial")
    sd = r.std(ddof=1)
    sr = float(r.mean() / sd) if sd > 0 else 0.0
    g3, g4 = _moments(r)
    nd = NormalDist()
    v = float(sr_trials.var(ddof=1)) if n > 1 else 0.0
    sr0 = 0.0
    if n > 1 and v > 0:
        sr0 = math.sqrt(v) * (
            (1 - EULER_GAMMA) * nd.inv_cdf(1 - 1 / n) + EULER_GAMMA * nd.inv_cdf(1 - 1 / (n * math.e))
        )
    den = 1 - g3 * sr + (g4 - 1) / 4 * sr * sr
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(den) if den > 0 else 0.0
    return {
        "sharpe_per_period": sr,
        "sr0_expected_max": sr0,
        "dsr": nd.cdf(z),
        "n_trials": n,
        "n_returns": t,
        "skew": g3,
        "kurtosis": g4,
    }


def is_oos_split(run: Callable[[int, int], dict], t_start: int, t_end: int, frac: float = 0.7) -> dict:
    """Run the same backtest on [start, split) and [split, end); compare the metrics.

    ``run(t0, t1)`` returns a metrics dict.  A large in-sample over out-of-sample gap is the
    signature of overfitting.
    """
    split = t_start + int((t_end - t_start) * frac)
    ins, oos = run(t_start, split), run(split, t_end)
    keys = ("total_return", "sharpe", "max_drawdown", "trades")
    return {
        "split_ns": split,
        "in_sample": {k: ins.get(k) for k in keys},
        "out_of_sample": {k: oos.get(k) for k in keys},
        "sharpe_decay": (ins.get("sharpe", 0) - oos.get("sharpe", 0)),
    }


def lookahead_report(engine) -> dict:
    """What the guard checked during the run, for the metrics JSON."""
    g = engine.guard.as_dict()
    g["ok"] = g["violations"] == 0
    g["rule"] = "no delivery before its ts_recv + feed latency; direct reads refused when the venue is ahead"
    return g
