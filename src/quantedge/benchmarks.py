"""Benchmarks behind ``quantedge bench``: importer rows/s and catalog streaming events/s on real data.

Timings are wall-clock after one warm-up call (so Numba compilation is excluded and reported
separately by the CLI start-time figures).  Streaming runs in a child process so its peak RSS is
its own.  Results are printed and returned as dicts; BENCHMARKS.md records them with the machine.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from quantedge.catalog.symbols import NameTable


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def _best_of(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    fn()  # warm-up (JIT, page cache)
    best = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n


def bench_imports(data: Path) -> list[dict]:
    """rows/s of each importer on the real sample files."""
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster

    cases: list[tuple[str, Path, Callable[[], int]]] = []
    for z in sorted((data / "lobster").glob("*.zip")):
        for message, _ob, symbol, date, _lv in lobster_files(z):
            def run(m=message, s=symbol, d=date) -> int:
                return read_lobster(m, NameTable(), symbol=s, date=d)[1].rows_read
            cases.append(("lobster", z, run))
    nept = data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    if nept.exists():
        from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks

        cases.append(("iqfeed", nept, lambda: read_iqfeed_ticks(nept, NameTable())[1].rows_read))
    taq = data / "taq"
    if taq.is_dir():
        from quantedge.catalog.importers.taq import read_taq_quotes, read_taq_trades

        t = taq / "sampleTDataRawMicroseconds.csv.gz"
        q = taq / "sampleQDataRawMicroseconds.csv.gz"
        cases.append(("taq trades", t, lambda: read_taq_trades(t, NameTable())[1].rows_read))
        cases.append(("taq quotes", q, lambda: read_taq_quotes(q, NameTable())[1].rows_read))
    out = []
    for fmt, path, fn in cases:
        secs, rows = _best_of(fn)
        out.append({"bench": "import", "format": fmt, "file": path.name, "rows": rows,
                    "seconds": round(secs, 4), "rows_per_s": round(rows / secs)})
    return out


def _replicate(events: np.ndarray, n_symbols: int, symbols: NameTable, name: str) -> list[np.ndarray]:
    """Copies of a real day under distinct symbol ids, each shifted by a few ms so times interleave."""
    out = []
    for i in range(n_symbols):
        ev = events.copy()
        ev["symbol"] = symbols.id(f"{name}{i:04d}")
        shift = (i * 7919) % 1000 * 1_000_000
        ev["ts_event"] += shift
        ev["ts_recv"] += shift
        out.append(ev)
    return out


def proc_mem_mb(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB.  VmHWM belongs to the address space, so unlike
    ``ru_maxrss`` it does not carry a parent's peak over into a spawned child."""
    d = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            d[k] = int(v.split()[0]) / 1024
    return d["VmRSS"], d["VmHWM"]


def _stream_child(root: str, batch_rows: int, q, repeat: int = 3) -> None:  # pragma: no cover - child
    from quantedge.catalog.store import Catalog

    cat = Catalog(root)
    _, rss0 = proc_mem_mb()
    for _ in cat.stream(batch_rows=batch_rows):  # warm-up: JIT + page cache
        pass
    runs = []
    for _ in range(repeat):  # best of several: the shared machine's load moves single runs by ±30 %
        t0 = time.perf_counter()
        n = 0
        batches = 0
        for b in cat.stream(batch_rows=batch_rows):
            n += b.shape[0]
            batches += 1
        runs.append(time.perf_counter() - t0)
    _, rss = proc_mem_mb()
    q.put({"events": n, "batches": batches, "seconds": min(runs), "runs": runs, "rss_mb": rss,
           "rss0_mb": rss0})


def bench_stream(data: Path, n_symbols: int = 100, batch_rows: int = 1 << 20,
                 workdir: Path | None = None) -> list[dict]:
    """Write a replicated real day (LOBSTER AMZN level 5) for ``n_symbols`` and stream it back."""
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster
    from quantedge.catalog.store import Catalog

    z = data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    message, _ob, symbol, date, _lv = lobster_files(z)[0]
    tmp = Path(tempfile.mkdtemp(prefix="qe-bench-", dir=workdir))
    try:
        cat = Catalog(tmp)
        base, _rep = read_lobster(message, cat.symbols, symbol=symbol, date=date)
        t0 = time.perf_counter()
        total = 0
        for i, ev in enumerate(_replicate(base, n_symbols, cat.symbols, "SYM")):
            total += cat.write(ev, source=f"bench{i}")
        write_s = time.perf_counter() - t0
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_stream_child, args=(str(tmp), batch_rows, q))
        p.start()
        res = q.get()
        p.join()
        sym0 = cat.symbols.name(1 if len(cat.symbols) > 1 else 0)
        read_s, read_n = _best_of(lambda: cat.read(sym0, date).shape[0])
        disk = sum(f.stat().st_size for f in tmp.rglob("*.parquet"))
        return [
            {"bench": "catalog write", "events": total, "seconds": round(write_s, 3),
             "events_per_s": round(total / write_s), "disk_mb": round(disk / 2**20, 1)},
            {"bench": "catalog stream", "symbols": n_symbols, "events": res["events"],
             "batches": res["batches"], "seconds": round(res["seconds"], 3),
             "runs_s": [round(x, 3) for x in res["runs"]],
             "events_per_s": round(res["events"] / res["seconds"]), "peak_rss_mb": round(res["rss_mb"]),
             "rss_before_mb": round(res["rss0_mb"])},
            {"bench": "catalog read symbol-day", "events": read_n, "seconds": round(read_s, 4),
             "events_per_s": round(read_n / read_s)},
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_books(data: Path) -> list[dict]:
    """L3 book on each LOBSTER day; the sorted-level L2 book and the ladder on the top-N and the
    l3-derived price-level streams of the 5-level AMZN day (per-batch best of 5)."""
    from quantedge.book.bench import (
        l2_rate,
        l3_rate,
        ladder_rate,
        load_lobster_day,
        mbp_stream,
        mbp_top_stream,
    )

    out = []
    for z in sorted((data / "lobster").glob("*.zip")):
        events, truth0 = load_lobster_day(z)
        out.append({"bench": "book L3", "file": z.name, "events": int(events.shape[0]),
                    "events_per_s": round(l3_rate(events, truth0))})
    z5 = data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    if z5.exists():
        depth, _truth = mbp_top_stream(z5)
        out.append({"bench": "book L2 (top-5 by price)", "file": z5.name, "events": int(depth.shape[0]),
                    "events_per_s": round(l2_rate(depth))})
        out.append({"bench": "book ladder (top-5 by price)", "file": z5.name, "events": int(depth.shape[0]),
                    "events_per_s": round(ladder_rate(depth))})
        events, truth0 = load_lobster_day(z5)
        deep = mbp_stream(events, truth0)
        out.append({"bench": "book L2 (l3-derived, all levels)", "file": z5.name,
                    "events": int(deep.shape[0]), "events_per_s": round(l2_rate(deep, capacity=1024))})
        out.append({"bench": "book ladder (l3-derived, all levels)", "file": z5.name,
                    "events": int(deep.shape[0]), "events_per_s": round(ladder_rate(deep))})
    return out


def bench_features(data: Path, n_symbols: int = 2000) -> list[dict]:
    from quantedge.features.replay import bench

    return bench(data, n_symbols=n_symbols)


def bench_signals(data: Path, n_symbols: int = 2000) -> list[dict]:
    from quantedge.signals.bench import run_all

    return run_all(data, n_symbols=n_symbols)


def bench_backtest(data: Path, n_symbols: int = 100) -> list[dict]:
    from quantedge.backtest.bench import run

    r = run(data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", n_symbols)
    r = {"bench": "backtest (SMA, L3 venue)", **r}
    r["events_per_s"] = r.get("events_per_s_per_core")
    return [r]


def bench_iqfeed(data: Path) -> list[dict]:
    from quantedge.feeds.iqfeed.bench import run_all

    return run_all(data)


#: name -> function(data) for ``quantedge bench --only NAME``
STAGES: dict[str, Callable[[Path], list[dict]]] = {
    "imports": bench_imports,
    "stream": bench_stream,
    "books": bench_books,
    "features": bench_features,
    "signals": bench_signals,
    "backtest": bench_backtest,
    "iqfeed": bench_iqfeed,
}
