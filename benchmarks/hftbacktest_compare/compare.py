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
3. times our two market-by-price books on the same stream (the price-indexed ladder,
   ``quantedge.book.ladder``, and the sorted-level L2 book) and our L3 book on the order stream;
4. prints events/s of each and the ratios.

Equal work: hftbacktest keeps an exchange-side and a local-side book and by default (EXCH_EVENT |
LOCAL_EVENT, as its converters write) applies every event to both.  The equal-work comparison is one
of our books holding every level (nothing dropped, as hftbacktest's books drop nothing) vs
hftbacktest with LOCAL_EVENT only (one price-level book, same events), at its faster depth.  The
headline ratio is our ladder's (its price-indexed layout is the same idea as hftbacktest's
ROIVector); the sorted-level L2 book's (capacity 1024) is printed beside it.  Our books must end
equal to each other and, on the top-N stream, to LOBSTER's last row (checked).  Our L2 at capacity
64 (the default: top 64 levels kept, deeper ones dropped and counted) is shown too.  Our L3 book
does more work per event than either (order-table lookup + level update) on a stream of about the
same length.
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


def _final_top(book, depth: np.ndarray) -> list[float]:
    """Best bid, its size, best ask, its size after a whole MBP stream (one of our books)."""
    book.step(depth)
    px, sz, _ = book.top(1)
    return [px[0, 0, 0] / 10_000, float(sz[0, 0, 0]), px[0, 1, 0] / 10_000, float(sz[0, 1, 0])]


def _run_hbt(hbt_python: str, stream: np.ndarray, npz: Path, repeats: int) -> dict:
    px = stream["price"] / 10_000
    np.savez(npz, data=to_hftbacktest(stream), tick=0.01, roi_lb=float(px.min()) - 1.0,
             roi_ub=float(px.max()) + 1.0)
    proc = subprocess.run([hbt_python, str(HERE / "hbt_replay.py"), str(npz), "--repeats", str(repeats)],
                          capture_output=True, text=True, cwd=str(npz.parent))
    if proc.returncode != 0:
        raise RuntimeError(f"hftbacktest replay failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _agrees(a: list[float], b: list[float], sizes: bool = True) -> bool:
    idx = (0, 1, 2, 3) if sizes else (0, 2)
    return all(abs(a[i] - b[i]) < 1e-9 for i in idx)


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

    from quantedge.book.bench import (
        l2_rate,
        l3_rate,
        ladder_rate,
        load_lobster_day,
        mbp_stream,
        mbp_top_stream,
    )
    from quantedge.book.l2 import L2Book
    from quantedge.book.ladder import LadderBook

    events, truth0 = load_lobster_day(day)
    streams = {"l3-derived": mbp_stream(events, truth0)}
    streams["top-N"], truth = mbp_top_stream(day)
    t_last = truth[-1]
    truth_top = [t_last[0, 0, 0] / 10_000, float(t_last[0, 0, 1]),
                 t_last[1, 0, 0] / 10_000, float(t_last[1, 0, 1])]
    cache = ROOT / "benchmarks" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)

    res = {"day": day.name, "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
           "order_events": int(events.shape[0]), "streams": {}}
    ok = True
    # per stream: hftbacktest first, then ours, in the same run (separate interpreters: separate numpy/numba)
    for name, stream in streams.items():
        try:
            hbt = _run_hbt(hbt_python, stream, cache / f"{day.stem}_{name}_hftbacktest.npz", repeats)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
        ours = {cap: l2_rate(stream, repeats=repeats, capacity=cap) for cap in (64, 1024)}
        ladder = ladder_rate(stream, repeats=repeats)
        our_top = _final_top(L2Book.allocate(1, capacity=1024), stream)
        ladder_top = _final_top(LadderBook.allocate(1), stream)
        res["streams"][name] = {"events": int(stream.shape[0]), "ours_l2_events_per_s": ours,
                                "ours_ladder_events_per_s": ladder, "ours_top": our_top,
                                "ours_ladder_top": ladder_top, "hftbacktest": hbt}
        print(f"\n{name} market-by-price stream of {day.name}: {stream.shape[0]:,} events")
        print(f"  {'book':56s} {'M events/s':>10s} {'ladder / it':>12s} {'L2 / it':>8s}")
        print(f"  {'ours ladder (price-indexed, all levels kept)':56s} {ladder / 1e6:10.2f}")
        print(f"  {'ours L2 sorted levels, capacity 1024 (all levels kept)':56s} {ours[1024] / 1e6:10.2f}")
        print(f"  {'ours L2 sorted levels, capacity 64 (deeper dropped+counted)':56s} {ours[64] / 1e6:10.2f}")
        for r in hbt["results"]:
            label = f"hftbacktest {hbt['hftbacktest_version']} {r['depth']} [{r['flags']}]"
            print(f"  {label:56s} {r['events_per_s'] / 1e6:10.2f} {ladder / r['events_per_s']:11.2f}x "
                  f"{ours[1024] / r['events_per_s']:7.2f}x")
        eq = max((r for r in hbt["results"] if r["flags"] == "local"), key=lambda r: r["events_per_s"])
        dflt = max((r for r in hbt["results"] if r["flags"] == "exch+local"), key=lambda r: r["events_per_s"])
        hm = next(r for r in hbt["results"] if r["flags"] == "local" and r["depth"] == "hashmap")
        s = res["streams"][name]
        s["ratio_equal_work"] = ladder / eq["events_per_s"]
        s["ratio_equal_work_l2_sorted"] = ours[1024] / eq["events_per_s"]
        s["ratio_vs_default_exch_local"] = ladder / dflt["events_per_s"]
        print(f"  equal work (one book each, every level kept, fastest hftbacktest depth '{eq['depth']}'): "
              f"ladder {s['ratio_equal_work']:.2f}x, sorted L2 {s['ratio_equal_work_l2_sorted']:.2f}x;  "
              f"ladder vs its default two-book replay: {s['ratio_vs_default_exch_local']:.2f}x")
        if not _agrees(our_top, ladder_top):
            print(f"  our two books disagree at the end: L2 {our_top}, ladder {ladder_top}")
            ok = False
        if name == "top-N":
            # both books must end on LOBSTER's last orderbook row
            s["ours_matches_truth"] = _agrees(our_top, truth_top)
            s["hftbacktest_matches_truth"] = _agrees(hm["final_top"], truth_top)
            ok &= s["ours_matches_truth"] and s["hftbacktest_matches_truth"]
            print(f"  final best bid/size, ask/size: truth {truth_top}, ours {our_top}, hftbacktest "
                  f"{hm['final_top']}: {'all agree' if ok else 'DIFFER'}")
        else:
            print(f"  final best bid/size, ask/size: ours {our_top}, hftbacktest {hm['final_top']} "
                  "(stale levels cross the book: ours keeps and flags them, hftbacktest deletes the "
                  "opposite side)")
    res["ours_l3_events_per_s"] = l3_rate(events, truth0, repeats=repeats)
    print(f"\nours L3 by order on the order stream ({events.shape[0]:,} events): "
          f"{res['ours_l3_events_per_s'] / 1e6:.2f} M events/s")
    if "--json" in opt:
        Path(opt["--json"]).write_text(json.dumps(res, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
