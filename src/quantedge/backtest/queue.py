"""Queue-position models for resting limit orders, in the four-hook shape of hftbacktest.

Our order is not in the replayed book, so where it would stand in the queue at its price is an
estimate.  Four hooks, each a compiled function over the order table row (see ``orders.py``):

* ``q_new_order`` — at entry the queue ahead is the visible size at our price (0 for a new level);
* ``q_trade`` — a trade at our price removes that many shares from the front of the queue;
* ``q_depth`` — a level decrease that was not a trade is a cancel somewhere in the queue: the
  probability function says how much of it was ahead of us;
* ``q_is_filled`` — shares of ours that traded once the queue ahead went below zero.

The probability functions (``QM_*``) are the pluggable part: risk-averse (cancels never advance
us), power ``f(x) = x**n`` and logarithmic ``f(x) = log(1 + x)``; the share of a cancel that was
ahead of us is ``f(back) / (f(front) + f(back))`` as in hftbacktest's ``ProbQueueModel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from quantedge.backtest.orders import OD_AHEAD, OD_FILLED, OD_LVL, OD_QTY

QM_RISK_AVERSE = 0
QM_POWER = 1
QM_LOG = 2

QUEUE_MODELS = {"risk_averse": QM_RISK_AVERSE, "power": QM_POWER, "log": QM_LOG}


@dataclass(frozen=True)
class QueueModel:
    """A named probability function and its parameter (the power n for ``power``)."""

    name: str = "power"
    n: float = 2.0

    @property
    def code(self) -> int:
        if self.name not in QUEUE_MODELS:
            raise ValueError(f"queue model {self.name!r} unknown; choose one of {sorted(QUEUE_MODELS)}")
        return QUEUE_MODELS[self.name]


@njit(cache=True, inline="always", _nrt=False)
def _f(code: int, n: float, x: float) -> float:
    if code == QM_POWER:
        return x**n
    return math.log1p(x)


@njit(cache=True, _nrt=False)
def q_new_order(od, j: int, level_size: int) -> None:
    """Entry: everything visible at our price is ahead of us (we join the back)."""
    od[j, OD_AHEAD] = level_size
    od[j, OD_LVL] = level_size


@njit(cache=True, _nrt=False)
def q_trade(od, j: int, qty: int) -> None:
    """A trade at our price eats the front of the queue."""
    od[j, OD_AHEAD] -= qty


@njit(cache=True, _nrt=False)
def q_depth(od, j: int, prev: int, new: int, code: int, n: float) -> None:
    """A level change at our price that was not a trade (prev -> new visible shares)."""
    od[j, OD_LVL] = new
    if new >= prev:
        return  # additions join behind us
    front = od[j, OD_AHEAD]
    if front <= 0:
        return
    if code == QM_RISK_AVERSE:
        if front > new:
            od[j, OD_AHEAD] = new
        return
    chg = float(prev - new)
    back = float(prev) - float(front)
    if back < 0.0:
        back = 0.0
    fb = _f(code, n, back)
    ff = _f(code, n, float(front))
    prob = fb / (fb + ff) if fb + ff > 0.0 else 0.5  # share of the cancel that was ahead of us
    est = float(front) - prob * chg
    if back - (1.0 - prob) * chg < 0.0:  # more cancelled behind than was behind: the rest was ahead
        est += back - (1.0 - prob) * chg
    ahead = int(math.floor(est + 1e-9))
    if ahead > new:
        ahead = new
    if ahead < 0:
        ahead = 0
    od[j, OD_AHEAD] = ahead


@njit(cache=True, _nrt=False)
def q_is_filled(od, j: int) -> int:
    """Shares of ours filled now: whatever traded past the front of the queue, up to what is left."""
    a = od[j, OD_AHEAD]
    if a >= 0:
        return 0
    left = od[j, OD_QTY] - od[j, OD_FILLED]
    q = -a if -a < left else left
    od[j, OD_AHEAD] = 0
    return q
