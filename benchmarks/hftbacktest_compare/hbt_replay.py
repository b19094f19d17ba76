"""Replay an hftbacktest event file book-only and time it (runs inside hftbacktest's own virtualenv).

Usage: hbt_replay.py EVENTS.npz [--repeats N]  -> one JSON line on stdout.

Three variants of the same market-by-price stream, each on both of hftbacktest's price-level depth
implementations (HashMapMarketDepth, ROIVectorMarketDepth):

* ``exch+local``: every event flagged EXCH_EVENT | LOCAL_EVENT, as hftbacktest's own converters
  write them: each event updates the exchange-side book *and* the local-side book (two book updates).
* ``local``: LOCAL_EVENT only: one book (the local one) per event -- the same work as one of our books.
* ``exch``: EXCH_EVENT only: one book (the exchange one) per event.

The clock covers ``goto_end`` (or ``elapse`` past the last timestamp): the whole day replayed with no
strategy and no orders.  Building the backtester (which copies the data in) is timed separately.
"""

from __future__ import annotations

import json
import sys
import time

import hftbacktest as hbt
import numpy as np
from hftbacktest import (
    EXCH_EVENT,
    LOCAL_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
    ROIVectorMarketDepthBacktest,
)


def _asset(data: np.ndarray, tick: float, lo: float, hi: float) -> BacktestAsset:
    return (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .power_prob_queue_model(2.0)
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick)
        .lot_size(1.0)
        .roi_lb(lo)
        .roi_ub(hi)
        .last_trades_capacity(0)
    )


def _replay(kind: str, data: np.ndarray, tick: float, lo: float, hi: float) -> tuple[float, ...]:
    """(build seconds, replay seconds, best bid, best ask) of one full replay."""
    t0 = time.perf_counter()
    asset = _asset(data, tick, lo, hi)
    bt = HashMapMarketDepthBacktest([asset]) if kind == "hashmap" else ROIVectorMarketDepthBacktest([asset])
    t1 = time.perf_counter()
    rc = bt._goto_end() if hasattr(bt, "_goto_end") else bt.elapse(1 << 62)
    t2 = time.perf_counter()
    depth = bt.depth(0)
    bid, ask = depth.best_bid, depth.best_ask
    bt.close()
    if rc not in (0, 1):
        raise RuntimeError(f"hftbacktest returned {rc}")
    return t1 - t0, t2 - t1, bid, ask


def main() -> None:
    path = sys.argv[1]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 5
    z = np.load(path)
    data = z["data"]
    tick = float(z["tick"])
    lo, hi = float(z["roi_lb"]), float(z["roi_ub"])
    base = data["ev"] & ~np.uint64(EXCH_EVENT | LOCAL_EVENT)
    variants = {
        "exch+local": base | np.uint64(EXCH_EVENT | LOCAL_EVENT),
        "local": base | np.uint64(LOCAL_EVENT),
        "exch": base | np.uint64(EXCH_EVENT),
    }
    out = {"hftbacktest_version": hbt.__version__, "numpy": np.__version__, "events": int(data.shape[0]),
           "results": []}
    for kind in ("hashmap", "roivector"):
        for name, flags in variants.items():
            d = data.copy()
            d["ev"] = flags
            best = float("inf")
            build = float("inf")
            for rep in range(repeats + 1):
                b, r, bid, ask = _replay(kind, d, tick, lo, hi)
                if rep > 0:
                    best, build = min(best, r), min(build, b)
            out["results"].append({"depth": kind, "flags": name, "replay_s": best, "build_s": build,
                                   "events_per_s": data.shape[0] / best, "final_best_bid": bid,
                                   "final_best_ask": ask})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
