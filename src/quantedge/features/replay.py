"""Real-day inputs for the features pipeline: a seeded LOBSTER day, replicated across symbol ids.

LOBSTER message files start with an already-populated book that only the first orderbook row shows,
so a day is replayed by seeding each symbol's L3 book from that row (volume held as pre-existing,
untracked volume) and applying the messages from row 2 on.  For throughput measurements the same
day is replicated across many symbol ids with per-symbol time offsets and merged in time order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantedge import events as ev
from quantedge.book.l2 import L2Book
from quantedge.book.l3 import L3Book
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.state import FeatureState


@dataclass
class LobsterDay:
    """Events of one LOBSTER day (message row 1 dropped: it is inside the seed row) and the seed."""

    events: np.ndarray
    seed: np.ndarray  # (2, L, 2): [bid/ask][level][px, sz], 0 = empty
    levels: int
    symbol: str


def load_lobster_day(path: str | Path) -> LobsterDay:
    """The first message/orderbook pair of a LOBSTER zip (or folder), ready to replay as symbol 0."""
    from quantedge.book.verify import lobster_truth
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook
    from quantedge.catalog.symbols import NameTable

    files = [f for f in lobster_files(path) if f.orderbook is not None]
    if not files:
        raise ValueError(f"{path}: no LOBSTER message/orderbook pair found")
    f = files[0]
    events, _ = read_lobster(f.message, NameTable(), date=f.date, symbol=f.symbol)
    truth0 = lobster_truth(read_lobster_orderbook(f.orderbook)[:1])[0]
    events = events[events["seq"] >= 2].copy()
    events["symbol"] = 0
    return LobsterDay(events=events, seed=truth0, levels=f.levels, symbol=f.symbol)


def lobster_mbp_events(path: str | Path, day: LobsterDay) -> np.ndarray:
    """The same LOBSTER day in the market-by-price form an IQFeed Level 2 feed delivers: the top-N
    price-level updates that LOBSTER's orderbook file implies row by row (``book.bench.mbp_top_stream``:
    its first row seeds the levels) with the day's prints merged in, each message one atomic group
    (its print before its book change, ``FLAG_LAST`` on the group's last event), as symbol 0."""
    from quantedge.book.bench import mbp_top_stream

    depth, _ = mbp_top_stream(path)
    trades = day.events[day.events["kind"] == ev.KIND_TRADE]
    s = np.concatenate([trades, depth])
    s = s[np.lexsort((s["kind"] == ev.KIND_DEPTH, s["seq"]))]
    last = np.ones(s.shape[0], bool)
    last[:-1] = s["seq"][1:] != s["seq"][:-1]
    s["flags"] = (s["flags"] & ~np.uint8(ev.FLAG_LAST)) | np.where(last, ev.FLAG_LAST, 0).astype(np.uint8)
    s["ts_event"] = np.maximum.accumulate(s["ts_event"])
    s["ts_recv"] = np.maximum.accumulate(s["ts_recv"])
    s["symbol"] = 0
    return s


def mbp_pipeline(n_symbols: int, levels: int, cadence_ns: int = 0) -> FeaturePipeline:
    """A fresh market-by-price (L2) book + features pipeline for a feed of the top ``levels``."""
    return FeaturePipeline("l2", FeatureState.allocate(n_symbols, cadence_ns=cadence_ns),
                           L2Book.allocate(n_symbols, capacity=64, window=levels, tick=100))


def seed_books(book: L3Book, seed: np.ndarray, symbols: range | np.ndarray) -> None:
    """Seed the given symbols' books from one LOBSTER orderbook row."""
    for s in symbols:
        for si in range(2):
            tr = seed[si]
            k = int(np.count_nonzero(tr[:, 0]))
            book.seed_side(int(s), si, tr[:k, 0], tr[:k, 1], complete=k < tr.shape[0], aux_is_size=True)


def replicate(events: np.ndarray, n_symbols: int, offset_ns: int = 1_000_003) -> np.ndarray:
    """The day's events for symbol ids 0..n-1, symbol k shifted by k * offset_ns, merged by
    (ts_recv, seq, symbol) so each symbol's own order is kept."""
    n = events.shape[0]
    out = np.empty(n * n_symbols, dtype=ev.EVENT_DTYPE)
    for k in range(n_symbols):
        part = out[k * n:(k + 1) * n]
        part[:] = events
        part["symbol"] = k
        part["ts_event"] += k * offset_ns
        part["ts_recv"] += k * offset_ns
    order = np.lexsort((np.tile(np.arange(n, dtype=np.int64), n_symbols), out["symbol"], out["ts_recv"]))
    return out[order]


def lobster_pipeline(day: LobsterDay, n_symbols: int = 1, n_levels: int = 10, cadence_ns: int = 1_000_000_000,
                     capacity: int = 256, max_orders: int | None = None, skip_stale: bool = True
                     ) -> FeaturePipeline:
    """A fresh seeded L3 + features pipeline for ``n_symbols`` copies of the day."""
    n_add = int(np.count_nonzero(day.events["action"] == ev.ACTION_ADD))
    book = L3Book.allocate(n_symbols, capacity=capacity, window=day.levels,
                           max_orders=max_orders or max(1024, n_symbols * min(n_add, 16_384)))
    seed_books(book, day.seed, range(n_symbols))
    fstate = FeatureState.allocate(n_symbols, n_levels=n_levels, cadence_ns=cadence_ns, skip_stale=skip_stale)
    return FeaturePipeline("l3", fstate, book)


def fused_rate(day: LobsterDay, n_symbols: int, events_per_symbol: int = 20_000, chunk: int = 2_000,
               cadence_ns: int = 1_000_000_000, book_only: bool = True) -> dict[str, float]:
    """Events/s of the fused L3 book + features step on the first ``events_per_symbol`` events of the
    day replicated over ``n_symbols`` ids, fed in time-ordered batches of ``chunk`` events per symbol
    (stream building is not timed; a small run first compiles / loads the cached kernels).  With
    ``book_only`` the plain book step is timed on the same batches for comparison."""
    from quantedge.book.l3 import l3_step

    ev_day = day.events[:events_per_symbol]
    warm = lobster_pipeline(day, 2, cadence_ns=cadence_ns, max_orders=1 << 14)
    warm.step(replicate(ev_day[:2_000], 2))
    n_add = int(np.count_nonzero(ev_day["action"] == ev.ACTION_ADD))
    per_sym = min(n_add, 8_192)
    p = lobster_pipeline(day, n_symbols, cadence_ns=cadence_ns, max_orders=n_symbols * per_sym)
    b = None
    if book_only:
        b = lobster_pipeline(day, n_symbols, cadence_ns=0, max_orders=n_symbols * per_sym).book
    t_f = 0.0
    t_b = 0.0
    n = 0
    for a in range(0, ev_day.shape[0], chunk):
        batch = replicate(ev_day[a:a + chunk], n_symbols)
        n += batch.shape[0]
        t0 = time.perf_counter()
        p.step(batch)
        t_f += time.perf_counter() - t0
        if b is not None:
            t0 = time.perf_counter()
            l3_step(b.lv, b.sd, b.bk, b.ot, b.otn, batch)
            t_b += time.perf_counter() - t0
    out = {"events": float(n), "fused_events_per_s": n / t_f, "fused_seconds": t_f,
           "snapshots": float(len(p.snapshots())),
           "state_bytes": float(p.features.nbytes() + p.book.lv.nbytes + p.book.ot.nbytes)}
    if b is not None:
        out["book_only_events_per_s"] = n / t_b
        out["book_seconds"] = t_b
    return out


def bench(data: str | Path, n_symbols: int = 2000, events_per_symbol: int = 3000, repeat: int = 3,
          cadence_ns: int = 0) -> list[dict]:
    """Books + all features throughput on the AMZN level-5 LOBSTER day (``data`` = the real data
    folder), in two forms: market by order (L3 book from the message file) and market by price (the
    top-5 price-level updates of the orderbook file plus the day's prints, the form of an IQFeed
    Level 2 feed: :func:`lobster_mbp_events`).  For each: one symbol over the whole day, and the
    first ``events_per_symbol`` events replicated over ``n_symbols`` ids (1 ms offsets) in one
    time-ordered batch.  Best of ``repeat`` fresh runs (stream building and compilation not timed).
    ``events_per_s`` is per core: events over the CPU time of this (single-threaded) process, which a
    shared machine disturbs far less than wall time (also given, ``wall_seconds``); ``messages`` are
    the day's messages in the stream (a price-level form has more events than messages);
    ``peak_rss_mb`` is this process's peak RSS."""
    import resource

    path = Path(data) / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    day = load_lobster_day(path)
    mbp = lobster_mbp_events(path, day)
    warm = lobster_pipeline(day, 2, cadence_ns=cadence_ns, max_orders=1 << 14)
    warm.step(replicate(day.events[:2_000], 2))
    mbp_pipeline(2, day.levels, cadence_ns).step(replicate(mbp[:2_000], 2))
    def l3(ns: int, evs: np.ndarray) -> FeaturePipeline:
        n_add = int(np.count_nonzero(evs["action"] == ev.ACTION_ADD))
        return lobster_pipeline(day, ns, cadence_ns=cadence_ns, max_orders=ns * min(n_add, 8_192))

    def l2(ns: int, evs: np.ndarray) -> FeaturePipeline:
        return mbp_pipeline(ns, day.levels, cadence_ns)

    out = []
    forms = (("market by order (L3)", day.events, l3), ("market by price (L2, top 5)", mbp, l2))
    for form, events, make in forms:
        for ns, evs in ((1, events), (n_symbols, events[:events_per_symbol])):
            batch = evs if ns == 1 else replicate(evs, ns)
            best = float("inf")
            wall = float("inf")
            for _ in range(repeat):
                p = make(ns, evs)
                t0 = time.process_time()
                w0 = time.perf_counter()
                p.step(batch)
                best = min(best, time.process_time() - t0)
                wall = min(wall, time.perf_counter() - w0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            state = p.features.nbytes() + p.book.lv.nbytes + getattr(p.book, "ot", np.zeros(0)).nbytes
            msgs = int(np.unique(evs["seq"]).shape[0]) * ns
            n = int(batch.shape[0])
            out.append({"bench": "books+features", "form": form, "symbols": ns, "events": n,
                        "messages": msgs, "seconds": round(best, 4), "events_per_s": round(n / best),
                        "messages_per_s": round(msgs / best), "wall_seconds": round(wall, 4),
                        "peak_rss_mb": round(rss), "snapshots": len(p.snapshots()),
                        "state_mb": round(state / 2**20, 1)})
    return out
