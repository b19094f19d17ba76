"""QuantEdge books vs hftbacktest on one real LOBSTER day, same machine, one run.

Usage (from the repository root, in the project's virtualenv):
    python benchmarks/hftbacktest_compare/compare.py [LOBSTER zip] [--hbt-python PATH] [--repeats N]
        [--json OUT]

1. reads the LOBSTER day with the project's importer (``read_lobster``) and builds the
   market-by-price stream (``quantedge.book.bench.mbp_stream``: seed levels + one depth event per
   order event, carrying the level's new total);
2. writes that stream in hftbacktest's event format (``event_dtype``: ev flags, exch_ts, local_ts,
   px, qty, ...) to ``benchmarks/.cache/`` and replays it in hftbacktest (``hbt_replay.py``, run by
   the interpreter of hftbacktest's own virtualenv, which pins its own numpy/numba);
3. times our L2 book on the same market-by-price stream and our L3 book on the order stream;
4. prints events/s of each and the ratios.

Equal work: hftbacktest keeps an exchange-side and a local-side book and by default (EXCH_EVENT |
LOCAL_EVENT, as its converters write) applies every event to both.  The equal-work comparison is our
L2 book vs hftbacktest with LOCAL_EVENT only (one price-level book, same events).  Our L3 book does
more work per event than either (order-table lookup + level update) on a stream of the same length.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_DAY = ROOT.parent / "shared" / "data" / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"

# hftbacktest's event record and flags (hftbacktest.types; copied here so this side needs no import)
HBT_EVENT_DTYPE = np.dtype(
    [("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"), ("qty", "f8"), ("order_id", "u8"),
     ("ival", "i8"), ("fval", "f8")],
    align=True,
)
DEPTH_EVENT = 1
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28


def to_hftbacktest(depth: np.ndarray) -> np.ndarray:
    """Our by-price depth events -> hftbacktest events (DEPTH_EVENT, both processors, side flag)."""
    from quantedge import events as ev

    out = np.zeros(depth.shape[0], dtype=HBT_EVENT_DTYPE)
    side = np.where(depth["side"] == ev.SIDE_BID, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    out["ev"] = np.uint64(DEPTH_EVENT | EXCH_EVENT | LOCAL_EVENT) | side
    out["exch_ts"] = depth["ts_event"]
    out["local_ts"] = np.maximum(depth["ts_recv"], depth["ts_event"])
    out["px"] = depth["price"] / ev.PRICE_SCALE
    out["qty"] = depth["size"].astype(np.float64)
    return out


def main() -> int:
    args = sys.argv[1:]
    opt = {}
    for key in ("--hbt-python", "--repeats", "--json"):
        if key in args:
            i = args.index(key)
            opt[key] = args[i + 1]
            del args[i : i + 2]
    day = Path(args[0]) if args else DEFAULT_DAY
    repeats = int(opt.get("--repeats", 5))
    hbt_python = opt.get("--hbt-python", str(ROOT / "benchmarks" / ".venv-hftbacktest" / "bin" / "python"))

    from quantedge.book.bench import l2_rate, l3_rate, load_lobster_day, mbp_stream

    events, truth0 = load_lobster_day(day)
    depth = mbp_stream(events, truth0)
    hbt_events = to_hftbacktest(depth)
    cache = ROOT / "benchmarks" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    npz = cache / (day.stem + "_mbp_hftbacktest.npz")
    px = depth["price"] / 10_000
    np.savez(npz, data=hbt_events, tick=0.01, roi_lb=float(px.min()) - 1.0, roi_ub=float(px.max()) + 1.0)

    # hftbacktest first, then ours, in the same run (each in its own interpreter: separate numpy/numba)
    proc = subprocess.run([hbt_python, str(HERE / "hbt_replay.py"), str(npz), "--repeats", str(repeats)],
                          capture_output=True, text=True, cwd=str(cache))
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        print("hftbacktest replay failed (see above)", file=sys.stderr)
        return 2
    hbt = json.loads(proc.stdout.strip().splitlines()[-1])

    ours_l2 = l2_rate(depth, repeats=repeats)
    ours_l3 = l3_rate(events, truth0, repeats=repeats)

    res = {
        "day": day.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "order_events": int(events.shape[0]),
        "mbp_events": int(depth.shape[0]),
        "ours_l3_events_per_s": ours_l3,
        "ours_l2_events_per_s": ours_l2,
        "hftbacktest": hbt,
    }
    print(f"day: {day.name}: {events.shape[0]:,} order-stream events, "
          f"{depth.shape[0]:,} market-by-price events")
    print(f"{'book':58s} {'M events/s':>10s} {'ours L2 / it':>13s}")
    print(f"{'ours L2 (by price) on the MBP stream':58s} {ours_l2 / 1e6:10.2f}")
    print(f"{'ours L3 (by order) on the order stream':58s} {ours_l3 / 1e6:10.2f}")
    for r in hbt["results"]:
        name = f"hftbacktest {hbt['hftbacktest_version']} {r['depth']} [{r['flags']}]"
        print(f"{name:58s} {r['events_per_s'] / 1e6:10.2f} {ours_l2 / r['events_per_s']:12.2f}x")
    eq = max((r for r in hbt["results"] if r["flags"] == "local"), key=lambda r: r["events_per_s"])
    dflt = max((r for r in hbt["results"] if r["flags"] == "exch+local"), key=lambda r: r["events_per_s"])
    res["ratio_equal_work"] = ours_l2 / eq["events_per_s"]
    res["ratio_vs_default_flags"] = ours_l2 / dflt["events_per_s"]
    res["ratio_l3_vs_equal_work"] = ours_l3 / eq["events_per_s"]
    print(f"equal work (one price-level book each, fastest hftbacktest depth): ours L2 / hftbacktest = "
          f"{res['ratio_equal_work']:.2f}x;  ours L3 / hftbacktest = {res['ratio_l3_vs_equal_work']:.2f}x")
    print(f"vs hftbacktest's default exch+local replay (two books): {res['ratio_vs_default_flags']:.2f}x")
    if "--json" in opt:
        Path(opt["--json"]).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
