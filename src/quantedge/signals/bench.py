"""Throughput and latency of the full path (books + features + signals), CPU or GPU signals.

``full_path_rate``: the LOBSTER AMZN level-5 day (its first ``events_per_symbol`` events) replicated
over ``n_symbols`` ids (``quantedge.features.replay``), fed in time-ordered batches; the fused L3
book + features step samples 1 s snapshots and the signal engine scores the new rows after every
batch.  ``live_latency``: the same stream cut into small batches (a socket read / Kafka poll), the
wall time from handing a batch in to having its signal outputs, per batch.  Results are plain
dicts so the CLI, BENCHMARKS.md and a GPU run can share them.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from quantedge.signals.config import load_config
from quantedge.signals.engine import SignalEngine


def _machine(device: str) -> str:
    gpu = ""
    if device == "gpu":
        from numba import cuda

        if hasattr(cuda, "get_current_device"):  # absent under the CUDA simulator
            name = cuda.get_current_device().name
            gpu = f", GPU {name.decode() if isinstance(name, bytes) else name}"
        else:
            gpu = ", CUDA simulator"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{gpu}"


def full_path_rate(lobster_zip: str | Path, n_symbols: int = 2000, events_per_symbol: int = 3000,
                   chunk: int = 500, device: str = "cpu", repeat: int = 3) -> dict:
    """Events/s of books + features + signals over ``n_symbols`` replicated symbols (one process).

    Best of ``repeat`` runs, each on fresh state (as the books + features benchmark), timed in CPU
    seconds of this process (``events_per_s``; the GPU path waits on the device, so it is timed in
    wall seconds).  The first run also pays the first touch of the state's fresh pages (measured at
    2,000 symbols: 0.6-1.3 s more, ~0.5 s of it system time; a once-per-process start cost, not per
    event): it is reported apart as ``first_run_seconds``."""
    from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate

    clock = time.process_time if device == "cpu" else time.perf_counter
    day = load_lobster_day(lobster_zip)
    ev_day = day.events[:events_per_symbol]
    warm = lobster_pipeline(day, 2, max_orders=1 << 14)
    warm.step(replicate(ev_day[:1000], 2))
    weng = SignalEngine(2, load_config(), device=device, reuse=True)
    weng.step_sampler(warm.sampler)
    n_add = int(np.count_nonzero(ev_day["action"] == 1))
    batches = [replicate(ev_day[a:a + chunk], n_symbols) for a in range(0, ev_day.shape[0], chunk)]
    runs = []
    for _ in range(max(1, repeat)):
        p = lobster_pipeline(day, n_symbols, max_orders=n_symbols * min(n_add, 8192))
        eng = SignalEngine(n_symbols, load_config(), device=device, reuse=True)
        eng.pin(p.sampler)
        t_feat = t_sig = 0.0
        n = rows = trig = 0
        for b in batches:
            t0 = clock()
            outs = []

            def score(sm, outs=outs, eng=eng):  # the buffer filled mid-batch: score it in place
                t = clock()
                o = eng.step_sampler(sm)
                outs.append((len(o), int(o.trig.sum()), clock() - t))

            p.step(b, on_full=score)
            score(p.sampler)
            t2 = clock()
            ts = sum(x[2] for x in outs)
            t_feat += t2 - t0 - ts
            t_sig += ts
            n += b.shape[0]
            rows += sum(x[0] for x in outs)
            trig += sum(x[1] for x in outs)
        runs.append((t_feat + t_sig, t_feat, t_sig, n, rows, trig))
    total, t_feat, t_sig, n, rows, trig = min(runs)
    return {"bench": "full_path", "device": eng.device, "symbols": n_symbols, "events": n,
            "snapshot_rows": rows, "triggers": trig, "seconds": round(total, 3),
            "events_per_s": round(n / total), "features_seconds": round(t_feat, 3),
            "signals_seconds": round(t_sig, 4), "signal_rows_per_s": round(rows / t_sig) if t_sig else 0,
            "first_run_seconds": round(runs[0][0], 3), "runs": len(runs),
            "machine": _machine(eng.device)}


def gpu_path_rate(lobster_zip: str | Path, n_symbols: int = 2000, events_per_symbol: int = 3000,
                  chunk: int = 500, device: str = "gpu", prep: str = "host") -> dict:
    """Events/s of books + features + signals all on the device (:class:`GpuPath`), on the stream of
    :func:`full_path_rate` in the same batches; ``timing_s`` splits the time into the host's grouping,
    the copies in, the kernel and the copies out (``device="cpu"``: the same per-symbol body on the
    CPU, a check rather than a speed).  ``prep``: GpuPath's chunk preparation, "host" or "device"
    (then with a row buffer of 1 M rows, so chunks of 1 M events as with "host")."""
    from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
    from quantedge.signals.gpu_path import GpuPath

    day = load_lobster_day(lobster_zip)
    ev_day = day.events[:events_per_symbol]
    per = min(int(np.count_nonzero(ev_day["action"] == 1)), 8192)
    import numba

    threads = numba.get_num_threads()
    warm = lobster_pipeline(day, 2, max_orders=1 << 14)
    warm_path = GpuPath("l3", warm.book, warm.features, device=device, orders_per_symbol=per,
                        host_threads=threads)
    warm_path.step(replicate(ev_day[:1000], 2))  # compile / load the kernels
    batches = [replicate(ev_day[a:a + chunk], n_symbols) for a in range(0, ev_day.shape[0], chunk)]
    src = lobster_pipeline(day, n_symbols, max_orders=n_symbols * per)
    kw = {"prep": "device", "row_capacity": 1 << 20} if prep == "device" else {}
    gp = GpuPath("l3", src.book, src.features, device=device, orders_per_symbol=per, host_threads=threads,
                 **kw)
    t0 = time.perf_counter()
    rows = trig = 0
    for b in batches:
        o = gp.step(b)
        rows += len(o)
        trig += int(o.trig.sum())
    t = time.perf_counter() - t0
    n = sum(b.shape[0] for b in batches)
    return {"bench": "gpu_full_path", "device": device, "prep": prep, "symbols": n_symbols, "events": n,
            "snapshot_rows": rows, "triggers": trig, "seconds": round(t, 3), "events_per_s": round(n / t),
            "kernel_events_per_s": round(n / gp.timing["kernel"]) if gp.timing["kernel"] else 0,
            "timing_s": {k: round(v, 4) for k, v in gp.timing.items()}, "machine": _machine(device)}


def live_latency(lobster_zip: str | Path, n_symbols: int = 20, batch_events: int = 50,
                 n_batches: int = 2000, device: str = "cpu") -> dict:
    """Per-batch wall time (events in -> signal outputs) for small live batches; p50 / p99 / max in µs."""
    from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate

    day = load_lobster_day(lobster_zip)
    need = batch_events * n_batches // n_symbols + 1
    stream = replicate(day.events[:need], n_symbols)[: batch_events * n_batches]
    p = lobster_pipeline(day, n_symbols, max_orders=1 << 18)
    eng = SignalEngine(n_symbols, load_config(), device=device, reuse=True)
    eng.pin(p.sampler)
    p.step(stream[:batch_events])
    eng.step_sampler(p.sampler)
    lat = []
    for a in range(batch_events, stream.shape[0], batch_events):
        b = stream[a:a + batch_events]
        t0 = time.perf_counter()
        p.step(b)
        eng.step_sampler(p.sampler)
        lat.append(time.perf_counter() - t0)
    us = np.array(lat) * 1e6
    return {"bench": "live_latency", "device": eng.device, "symbols": n_symbols,
            "batch_events": batch_events, "batches": len(lat),
            "p50_us": round(float(np.percentile(us, 50)), 1),
            "p99_us": round(float(np.percentile(us, 99)), 1),
            "max_us": round(float(us.max()), 1), "machine": _machine(eng.device)}


def kernel_rate(rows, n_symbols: int, repeat: int = 5) -> dict:
    """Rows/s of the signal stage alone (CPU kernel, reused buffers, explain for emitted rows) over
    ``rows`` (``Snapshots`` of ``n_symbols`` symbols, stream order), best of ``repeat`` passes, each
    from a fresh state.  The rows are read from memory as the feature stage leaves them (a ~1 KB
    feature vector per row)."""
    from quantedge.signals.cpu import CpuSignals
    from quantedge.signals.logic import INDEX

    cfg = load_config().vector()
    ts = np.ascontiguousarray(rows.ts, np.int64)
    sym = np.ascontiguousarray(rows.symbol)
    F = np.ascontiguousarray(rows.F)
    n = int(ts.shape[0])
    ex_min = float(cfg[INDEX["trigger.emit_min"]])
    best = float("inf")
    emitted = 0
    for _ in range(repeat + 1):
        eng = CpuSignals(n_symbols, cfg)
        eng.step(ts[:16], sym[:16], F[:16], 16, ex_min)  # compile / warm
        eng = CpuSignals(n_symbols, cfg)
        t0 = time.perf_counter()
        _, _, _, ex_val, _ = eng.step(ts, sym, F, n, ex_min)
        best = min(best, time.perf_counter() - t0)
        emitted = int(ex_val.shape[0])
    return {"bench": "signal_kernel", "symbols": n_symbols, "rows": n, "rows_explained": emitted,
            "seconds": round(best, 4), "rows_per_s": round(n / best), "machine": _machine("cpu")}


def prep_host_cost(lobster_zip: str | Path, n_symbols: int = 2000, chunk_events: int = 1 << 20,
                   repeat: int = 5) -> dict:
    """Host work per event of one GpuPath chunk (needs no GPU): the preparation ``prep="host"`` does
    (sampling scan, unknown-symbol count, counting sort by symbol, row count) against the staging copy
    that is all ``prep="device"`` leaves to the host, on a chunk of the benchmark's stream; best of
    ``repeat``, ns per event."""
    from quantedge.features.pipeline import MODE_KINDS, group_by_symbol, rows_scan
    from quantedge.features.replay import load_lobster_day, replicate
    from quantedge.signals.gpu_path import _NO_TS, _unknown_symbols
    from quantedge.signals.gpu_prep import WORDS

    day = load_lobster_day(lobster_zip)
    need = -(-chunk_events // n_symbols)
    ev = replicate(day.events[:need], n_symbols)[:chunk_events]
    n, ns, kinds = ev.shape[0], n_symbols, MODE_KINDS["l3"]
    rank_in, rank = np.empty(n, np.int64), np.empty(n, np.int64)
    counts, grp, slot = np.zeros(ns + 2, np.int64), np.empty(n, ev.dtype), np.empty(n * WORDS, np.int64)
    parts = ("scan", "unknown", "sort", "count")
    best = dict.fromkeys(parts + ("host_total", "staging_copy"), float("inf"))
    for _ in range(repeat + 1):  # the first compiles
        lastt, lastb = np.full(ns, _NO_TS, np.int64), np.zeros(ns, np.int64)
        t = [time.perf_counter()]
        rows_scan(ev, 0, n, ns, 1_000_000_000, kinds, n, 0, lastt, lastb, rank_in)
        t.append(time.perf_counter())
        _unknown_symbols(ev, 0, n, ns, kinds)
        t.append(time.perf_counter())
        group_by_symbol(ev, 0, n, ns, counts, grp, rank_in, rank)
        t.append(time.perf_counter())
        int(np.count_nonzero(rank_in >= 0))
        t.append(time.perf_counter())
        slot[:] = ev.view(np.int64)
        t.append(time.perf_counter())
        for i, name in enumerate(parts):
            best[name] = min(best[name], t[i + 1] - t[i])
        best["host_total"] = min(best["host_total"], t[4] - t[0])
        best["staging_copy"] = min(best["staging_copy"], t[5] - t[4])
    ns_ev = {k: round(v / n * 1e9, 1) for k, v in best.items()}
    return {"bench": "gpu_path_host_work", "symbols": n_symbols, "events": n,
            "host_prep_ns_per_event": ns_ev["host_total"],
            "device_prep_host_ns_per_event": ns_ev["staging_copy"],
            "host_prep_parts_ns": {k: ns_ev[k] for k in parts}, "machine": _machine("cpu")}


def run_all(data: str | Path, device: str = "auto", n_symbols: int = 2000) -> list[dict]:
    """Both benchmarks on the CPU, and on the GPU as well when one is present (plus books + features +
    signals all on the GPU)."""
    from quantedge.signals import gpu

    z = Path(data) / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    devices = ["cpu"] + (["gpu"] if device != "cpu" and gpu.available() else [])
    out = []
    for d in devices:
        out.append(full_path_rate(z, n_symbols=n_symbols, device=d))
        out.append(live_latency(z, device=d))
    out.append(prep_host_cost(z, n_symbols=n_symbols))
    if "gpu" in devices:
        out.append(gpu_path_rate(z, n_symbols=n_symbols))
        out.append(gpu_path_rate(z, n_symbols=n_symbols, prep="device"))
    return out
