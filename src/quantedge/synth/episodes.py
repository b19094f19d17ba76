"""Planted episodes: which behaviours a symbol-day gets, when, how strongly, and their labels.

Each kind is produced by an agent in :func:`quantedge.synth.engine.simulate_day`:

============== ===========================================================================
kind           what the agents do while the episode is active
============== ===========================================================================
absorption     extra marketable sells hit the bid; an iceberg buy at the bid reloads its
               displayed size at the same price as soon as it is filled; market makers keep
               quoting, the fundamental is pinned (bid holds, spread stable)
price_creep    sellers step away (offers up to the target thin to a round lot), then the best
               offer is lifted by small/medium buys (100-500 shares) on a schedule that raises
               it 1-2 steps (1-2 cents at/above $1), and at least 15-40 bps of the price by
               intensity (15-40 cents on a $100 stock), over 10-30 s; a small offer re-appears one
               level up after each lift and the buyer steps a small bid up behind the offer (the
               bid and mid creep, the spread does not widen); background volume is cut, so the
               volume per cent moved is low against the symbol's own history
dark_pool      heavy off-exchange buy prints (TRF, venue 19) near the offer while the
               fundamental rises 0.4-1.6 %: consolidated volume high, lit share low
sinkhole       after a 5-minute decline to a fresh low (unlabelled lead-in), a buyer keeps a
               deep bid across 10 levels and replenishes it quickly while heavy selling hits it
vol_contraction market makers quote one tick wide with bigger bids at the touch (micro-price above mid),
               fundamental volatility is cut and drifts slightly up, background flow is thinner
dumping        resting bids are pulled, marketable sells and off-exchange sells surge, market
               makers widen (spread blow-out) while the fundamental drops 1.5-5.5 %
============== ===========================================================================

``intensity`` is in (0, 1]: 1 is the strongest (easiest to detect) version, small values are
subtle.  Labels cover exactly the active interval ``[start_ns, end_ns)``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from quantedge.synth import engine as E

KINDS: dict[int, str] = {
    E.EP_ABSORPTION: "absorption",
    E.EP_CREEP: "price_creep",
    E.EP_DARK: "dark_pool",
    E.EP_SINKHOLE: "sinkhole",
    E.EP_CONTRACTION: "vol_contraction",
    E.EP_DUMPING: "dumping",
}
KIND_BY_NAME = {v: k for k, v in KINDS.items()}

#: Active duration range per kind, seconds.
DURATION = {
    E.EP_ABSORPTION: (60.0, 180.0),
    E.EP_CREEP: (10.0, 30.0),
    E.EP_DARK: (60.0, 240.0),
    E.EP_SINKHOLE: (60.0, 180.0),
    E.EP_CONTRACTION: (60.0, 240.0),
    E.EP_DUMPING: (30.0, 120.0),
}
#: Unlabelled lead-in before the active interval (the sinkhole's decline to a fresh low).
LEAD_IN = {E.EP_SINKHOLE: 300.0}
#: No episode in the first hour (signals need an hour of history, e.g. the 1 h average spread)
#: nor in the last 10 minutes.
FIRST_START = 3600.0
LAST_END_MARGIN = 600.0
INTENSITY_RANGE = (0.15, 1.0)

LABEL_SCHEMA = pa.schema([
    ("symbol", pa.string()), ("date", pa.string()), ("start_ns", pa.int64()), ("end_ns", pa.int64()),
    ("kind", pa.string()), ("intensity", pa.float64()), ("regime", pa.string()),
])


def plan_episodes(rng: np.random.Generator, session_s: float, kinds: list[int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Place one episode of each kind in ``kinds`` (random order) in equal slots of the day.

    Returns sorted, non-overlapping ``(kind, start_s, end_s, intensity)`` arrays; every episode
    plus its lead-in lies inside ``[FIRST_START, session_s - LAST_END_MARGIN)``.
    """
    order = list(rng.permutation(np.asarray(kinds, dtype=np.int64))) if kinds else []
    m = len(order)
    k = np.zeros(m, np.int64)
    t0 = np.zeros(m, np.float64)
    t1 = np.zeros(m, np.float64)
    x = np.zeros(m, np.float64)
    if m == 0:
        return k, t0, t1, x
    span = session_s - LAST_END_MARGIN - FIRST_START
    slot = span / m
    for i, kind in enumerate(order):
        lo_d, hi_d = DURATION[int(kind)]
        d = float(rng.uniform(lo_d, hi_d))
        lead = LEAD_IN.get(int(kind), 0.0)
        need = lead + d
        if need > slot * 0.9:
            raise ValueError(f"{m} episodes do not fit in a {session_s:.0f} s session")
        s0 = FIRST_START + i * slot + lead + float(rng.uniform(0.05 * slot, slot * 0.95 - need))
        k[i] = int(kind)
        t0[i] = s0
        t1[i] = s0 + d
        x[i] = float(rng.uniform(*INTENSITY_RANGE))
    return k, t0, t1, x


def labels_table(rows: list[dict]) -> pa.Table:
    """Label rows (dicts with the LABEL_SCHEMA fields) -> Arrow table."""
    cols = {f.name: [r[f.name] for r in rows] for f in LABEL_SCHEMA}
    return pa.table(cols, schema=LABEL_SCHEMA)
