"""Market regimes: per-symbol agent parameters drawn around calibrated centres.

Two regimes, each calibrated against a real day (the realism table in docs/simulator.md):

* ``penny`` - $0.50-$5 small caps like NEPT (IQFeed, 2021-03-01): spreads of one to a few ticks
  (tens of bps), big round-lot prints with a heavy tail, about half the volume off-exchange,
  a thin book of a few thousand shares per level, sub-penny quoting below $1.
* ``large`` - large caps like AMZN in the LOBSTER sample (2012-06-21): a few-bps spread of several
  cents, mostly odd-lot and one-lot prints, a couple of hundred shares at the touch.

Each symbol gets its own multiplicative jitter of the centres so a universe is heterogeneous, and
the draw depends only on ``(seed, symbol index)``.
"""

from __future__ import annotations

import numpy as np

from quantedge.synth import engine as E

REGIMES = ("penny", "large")

#: Regime centres: parameter -> value (see the P_* constants in engine.py for units).
CENTRES: dict[str, dict[int, float]] = {
    "penny": {
        E.P_VOL: 0.05, E.P_RLIM: 1.6, E.P_RMKT: 0.07, E.P_HAZ: 0.02, E.P_PJOIN: 0.45, E.P_GEO: 1.5,
        E.P_PIN: 0.35, E.P_LIM_MU: 1.6, E.P_LIM_SIG: 0.9, E.P_PODD_LIM: 0.08, E.P_PODD: 0.33,
        E.P_LOT_MU: 0.7, E.P_LOT_SIG: 1.15, E.P_NMM: 3, E.P_MMHS: 40.0, E.P_MMSIZE: 3000.0,
        E.P_MMSKEW: 3.0, E.P_MMRATE: 0.4, E.P_RDARK: 0.13, E.P_BETA: 0.8, E.P_QSUB: 10,
        E.P_MAXWALK: 3, E.P_USHAPE: 1.5, E.P_DARKSZ: 1.3, E.P_HJUMP: 3.0, E.P_HTAU: 1.5,
    },
    "large": {
        E.P_VOL: 0.015, E.P_RLIM: 0.9, E.P_RMKT: 0.08, E.P_HAZ: 0.04, E.P_PJOIN: 0.15, E.P_GEO: 4.0,
        E.P_PIN: 0.03, E.P_LIM_MU: 0.0, E.P_LIM_SIG: 0.45, E.P_PODD_LIM: 0.3, E.P_PODD: 0.5,
        E.P_LOT_MU: 0.2, E.P_LOT_SIG: 0.55, E.P_NMM: 2, E.P_MMHS: 7.0, E.P_MMSIZE: 150.0,
        E.P_MMSKEW: 0.5, E.P_MMRATE: 0.25, E.P_RDARK: 0.07, E.P_BETA: 0.6, E.P_QSUB: 10,
        E.P_MAXWALK: 6, E.P_USHAPE: 1.2, E.P_DARKSZ: 1.0, E.P_HJUMP: 3.0, E.P_HTAU: 1.5,
    },
}

#: Parameters that get per-symbol jitter (lognormal sigma) - the rest are structural.
JITTER: dict[int, float] = {
    E.P_VOL: 0.3, E.P_RLIM: 0.3, E.P_RMKT: 0.3, E.P_HAZ: 0.2, E.P_MMHS: 0.3, E.P_MMSIZE: 0.4,
    E.P_RDARK: 0.3, E.P_LOT_MU: 0.0,
}

PRICE_RANGE = {"penny": (0.50, 5.00), "large": (50.0, 500.0)}
SESSION_SECONDS = 23_400.0


def draw_params(regime: str, rng: np.random.Generator, price: float | None = None) -> np.ndarray:
    """One symbol's parameter vector for ``regime`` (opening price drawn log-uniformly if not given)."""
    if regime not in CENTRES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
    par = np.zeros(E.NPAR, np.float64)
    for k, v in CENTRES[regime].items():
        par[k] = v
    for k, s in JITTER.items():
        if s > 0:
            par[k] *= float(np.exp(rng.normal(0.0, s)))
    lo, hi = PRICE_RANGE[regime]
    if price is None:
        price = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    par[E.P_P0] = round(price * 10_000)
    par[E.P_DUR] = SESSION_SECONDS
    if regime == "penny":
        # busier names trade a bit wider in share terms at lower prices (bigger share counts)
        par[E.P_MMSIZE] *= min(3.0, max(0.5, 2.0 / price))
    return par

