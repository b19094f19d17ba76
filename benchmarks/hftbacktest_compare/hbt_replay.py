"""Replay an hftbacktest event file book-only and time it (runs inside hftbacktest's own virtualenv).

Usage: hbt_replay.py EVENTS.npz [--repeats N]  -> one JSON line on stdout.

Three variants of the same market-by-price stream, each on both of hftbacktest's price-level depth
implementations (HashMapMarketDepth, ROIVectorMarketDepth):

* ``exch+local``: every event flagged EXCH_EVENT | LOCAL_EVENT, as hftbacktest's own converters
  write them: each event updates the exchange-side book *and* the local-side book (two book updates).
* ``local``: LOCAL_EVENT only: one book (the local one) per event -- the same work as one of our books.
* ``exch``: EXCH_EVENT only: one book (the exchange one) per event.

The day is replayed with no strategy and no orders, by ``elapse`` calls whose targets are the
timestamps at every ``chunk``-th event (the same cuts as the QuantEdge side).  As on the QuantEdge side
(``quantedge.book.bench``), each slice is timed on its own and the figure is the event count over the
sum of each slice's fastest time across the repeats: on a shared machine this measures the code, not
the scheduler.  Building the backtester (which copies the data in) is timed separately, not counted.
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


def _replay(kind: str, data: np.ndarray, tick: float, lo: float, hi: float, targets: np.ndarray):
    """(build seconds, per-slice replay seconds, best bid, best ask) of one full replay."""
    t0 = time.perf_counter()
    asset = _asset(data, tick, lo, hi)
    bt = HashMapMarketDepthBacktest([asset]) if kind == "hashmap" else ROIVectorMarketDepthBacktest([asset])
    build = time.perf_counter() - t0
    slices = np.zeros(len(targets))
    for k, target in enumerate(targets):
        now = bt.current_timestamp
        step = int(target) - int(now) if now > 0 else int(target)
        t1 = time.perf_counter()
        rc = bt.elapse(max(step, 0))
        slices[k] = time.perf_counter() - t1
        if rc not in (0, 1):
            raise RuntimeError(f"hftbacktest elapse returned {rc}")
    depth = bt.depth(0)
    bid, ask = depth.best_bid, depth.best_ask
    bid_qty, ask_qty = depth.best_bid_qty, depth.best_ask_qty
    bt.close()
    return build, slices, (bid, bid_qty, ask, ask_qty)


def main() -> None:
    path = sys.argv[1]  # flags: --repeats N, --chunk N
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
    chunk = int(sys.argv[sys.argv.index("--chunk") + 1]) if "--chunk" in sys.argv else 8192
    n = data.shape[0]
    cut = np.arange(chunk, n, chunk) - 1  # slice k ends with event cut[k]
    ts_max = np.maximum(data["exch_ts"], data["local_ts"])
    targets = np.append(ts_max[cut], ts_max[-1] + 1)
    for kind in ("hashmap", "roivector"):
        for name, flags in variants.items():
            d = data.copy()
            d["ev"] = flags
            best = np.full(len(targets), np.inf)
            build = float("inf")
            for rep in range(repeats + 1):
                b, slices, top = _replay(kind, d, tick, lo, hi, targets)
                if rep > 0:
                    best = np.minimum(best, slices)
                    build = min(build, b)
            total = float(best.sum())
            out["results"].append({"depth": kind, "flags": name, "replay_s": total, "build_s": build,
                                   "events_per_s": n / total, "final_top": top})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
