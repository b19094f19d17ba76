"""GPU check: the numba.cuda signal kernels on a real device, against the CPU path, and their speed.

Run where a CUDA device exists (the CI machine has none; its tests use the CUDA simulator):

    python scripts/gpu_check.py --data ../shared/data --out gpu_check.json

Needs numba with a CUDA target and numpy < 2.5 (numba-cuda 0.30.4 fails at the first kernel
compile under numpy 2.5: ``np.row_stack`` is gone).  The LOBSTER AMZN level-5 zip must be under
``--data``/lobster/ (the Databento and NEPT files under databento/ and iqfeed/ for section 8).

Sections (each recorded in the JSON even when one fails, so a short lease still returns results):

1. ``env``: numba / numba-cuda versions, the device, compute capability.
2. ``match_random``: random feature rows of 4 symbols in three batch cuts: scores, triggers, explain
   values and state on the GPU equal the CPU's (the unit test's check, on silicon instead of the
   simulator).
3. ``match_real``: the feature rows of the real LOBSTER AMZN day replicated over 2,000 symbols
   (~740k rows), scored on both paths with every row explained: triggers equal, largest score and
   explain differences (the device's libdevice ``pow``/``exp``/``log`` may differ from the host libm in
   the last bit).
4. ``kernel``: rows/s of the signal stage alone on the same rows: CPU kernel, GPU with transfers
   (the engine's ``step``), GPU kernel alone (inputs resident), for block sizes and state layouts.
5. ``full_path``: books + features (one CPU core) + signals (CPU, then GPU), 2,000 symbols.
6. ``latency``: small live batches, events in -> signal outputs, CPU and GPU.
7. ``gpu_path``: books + features + signals in one kernel (``GpuPath``, mode l3) against the CPU pipeline
   (outputs and state); the chunks prepared on the device (``prep="device"``) against those prepared on
   the host; the speed with a split of the time, for both preparations and 8-64 threads per block.
8. ``gpu_path_modes``: the same for market-by-price (Databento MBP-10 excerpt) and NBBO-only (NEPT
   ticks) streams, 500 symbol ids each (skipped when those files are not under ``--data``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

RESULTS: dict[str, object] = {}


def _save(out: Path) -> None:
    out.write_text(json.dumps(RESULTS, indent=1, default=str))


def section(name: str, out: Path):
    def wrap(fn):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                RESULTS[name] = fn(*a, **k)
            except Exception:  # record and go on: the other sections still run
                RESULTS[name] = {"error": traceback.format_exc()}
            RESULTS.setdefault("wall_s", {})[name] = round(time.perf_counter() - t0, 1)
            _save(out)
            print(name, json.dumps(RESULTS[name], default=str)[:2000], flush=True)
        return run
    return wrap


def env() -> dict:
    import numba
    from numba import cuda

    d = {"python": sys.version.split()[0], "numba": numba.__version__, "numpy": np.__version__,
         "machine": f"{platform.processor() or platform.machine()}"}
    try:
        import importlib.metadata as md
        d["numba_cuda"] = md.version("numba-cuda")
    except Exception:
        d["numba_cuda"] = "absent"
    d["cuda_available"] = bool(cuda.is_available())
    if hasattr(cuda, "get_current_device"):  # absent under the CUDA simulator
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        d.update(gpu=name, cc=list(dev.compute_capability), sms=dev.MULTIPROCESSOR_COUNT)
    return d


def match_random() -> dict:
    from quantedge.features.sampling import Snapshots
    from quantedge.signals.engine import SignalEngine
    from quantedge.signals.gpu import equality_rows

    n_sym, n = 4, 600
    rows, cfg = equality_rows(seed=5, n_symbols=n_sym, n=n)
    ts, sym, F = rows.ts, rows.symbol, rows.F
    gpu = SignalEngine(n_sym, cfg, device="gpu", explain="all")
    cpu = SignalEngine(n_sym, cfg, device="cpu", explain="all")
    res = {"rows": n, "triggers": 0, "trig_equal": True, "score_max_abs": 0.0, "explain_max_abs": 0.0}
    for a, b in ((0, 250), (250, 251), (251, 600)):
        part = Snapshots(ts[a:b], sym[a:b].astype(np.int32), F[a:b])
        g, c = gpu.step(part), cpu.step(part)
        _compare(res, g, c)
    res["state_max_abs"] = _maxdiff(gpu.state(), cpu.state())
    return res


def _maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    same_nan = np.isnan(a) == np.isnan(b)
    if not same_nan.all():
        return float("inf")
    both = ~np.isnan(a) & ~np.isinf(a)
    inf_ok = np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(a[np.isinf(a)], b[np.isinf(b)])
    if not inf_ok:
        return float("inf")
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def _compare(res: dict, g, c) -> None:
    res["triggers"] += int(c.trig.sum())
    res["trig_equal"] = bool(res["trig_equal"] and np.array_equal(g.trig, c.trig))
    res["score_max_abs"] = max(res["score_max_abs"], _maxdiff(g.score, c.score))
    res["explain_max_abs"] = max(res["explain_max_abs"], _maxdiff(g.explain, c.explain))
    res["score_exact_share"] = float(np.mean(g.score == c.score))


def real_rows(data: Path, n_symbols: int, events: int):
    from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate

    day = load_lobster_day(data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")
    ev_day = day.events[:events]
    n_add = int(np.count_nonzero(ev_day["action"] == 1))
    p = lobster_pipeline(day, n_symbols, max_orders=n_symbols * min(n_add, 8192))
    for a in range(0, ev_day.shape[0], 500):
        p.step(replicate(ev_day[a:a + 500], n_symbols))
    return p.sampler.collect()


def match_real(rows, n_symbols: int) -> dict:
    from quantedge.features.sampling import Snapshots
    from quantedge.signals.config import load_config
    from quantedge.signals.engine import SignalEngine

    gpu = SignalEngine(n_symbols, load_config(), device="gpu", explain="all")
    cpu = SignalEngine(n_symbols, load_config(), device="cpu", explain="all")
    n = len(rows)
    cuts = [0, n // 7, n // 7 + 1, n // 2, n]
    res = {"rows": n, "symbols": n_symbols, "triggers": 0, "trig_equal": True, "score_max_abs": 0.0,
           "explain_max_abs": 0.0}
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        part = Snapshots(rows.ts[a:b], rows.symbol[a:b], rows.F[a:b])
        _compare(res, gpu.step(part), cpu.step(part))
    res["state_max_abs"] = _maxdiff(gpu.state(), cpu.state())
    return res


def kernel(rows, n_symbols: int) -> dict:
    from numba import cuda

    from quantedge.signals import gpu as G
    from quantedge.signals.bench import kernel_rate
    from quantedge.signals.config import load_config
    from quantedge.signals.cpu import allocate_outputs
    from quantedge.signals.engine import SignalEngine
    from quantedge.signals.logic import INDEX, N_ST

    res: dict[str, object] = {"cpu": kernel_rate(rows, n_symbols, repeat=3)}
    n = len(rows)
    for pinned in (False, True):
        ts, sym, F = rows.ts, rows.symbol, rows.F
        if pinned:  # the rows as a pinned sampler buffer holds them (SignalEngine.pin)
            F = cuda.pinned_array(rows.F.shape, np.float64)
            F[...] = rows.F
        eng = SignalEngine(n_symbols, load_config(), device="gpu", reuse=True)
        eng._score(ts, sym, F, n)
        best = float("inf")
        for _ in range(3):
            eng = SignalEngine(n_symbols, load_config(), device="gpu", reuse=True)
            t0 = time.perf_counter()
            eng._score(ts, sym, F, n)
            best = min(best, time.perf_counter() - t0)
        res["gpu_with_transfers" + ("_pinned" if pinned else "")] = {
            "seconds": round(best, 4), "rows_per_s": round(n / best)}

    cfg = load_config().vector()
    ex_min = float(cfg[INDEX["trigger.emit_min"]])
    step, init, _ = G._kernels()
    order, offsets, _ = G.group_rows(rows.symbol, n_symbols)
    d = {k: cuda.to_device(v) for k, v in dict(
        cfg=np.ascontiguousarray(cfg, np.float64), ts=np.ascontiguousarray(rows.ts, np.int64),
        F=np.ascontiguousarray(rows.F, np.float64), order=order, offsets=offsets).items()}
    score, trig, expl = allocate_outputs(n)
    d_score, d_trig, d_expl = cuda.to_device(score), cuda.to_device(trig), cuda.to_device(expl)
    d_flag = cuda.to_device(np.zeros(n, np.uint8))
    for tpb in (32, 64, 128):
        for layout in ("C", "F"):
            st = cuda.device_array((n_symbols, N_ST), dtype=np.float64, order=layout)
            blocks = (n_symbols + tpb - 1) // tpb
            times = []
            for _ in range(4):
                init[blocks, tpb](st)
                cuda.synchronize()
                t0 = time.perf_counter()
                step[blocks, tpb](st, d["cfg"], d["ts"], d["F"], d["order"], d["offsets"], d_score, d_trig,
                                  ex_min, d_flag, d_expl)
                cuda.synchronize()
                times.append(time.perf_counter() - t0)
            t = min(times[1:])
            res[f"gpu_kernel_tpb{tpb}_{layout}"] = {"seconds": round(t, 5), "rows_per_s": round(n / t)}
    return res


def gpu_path(data: Path, n_symbols: int, events: int, store: dict) -> dict:
    """Books + features + signals in one kernel (GpuPath, mode "l3") against the CPU pipeline and signals."""
    from quantedge.features.replay import load_lobster_day, lobster_pipeline, replicate
    from quantedge.features.state import S_MARK
    from quantedge.signals.config import load_config
    from quantedge.signals.engine import SignalEngine, concat_outputs, take_rows
    from quantedge.signals.gpu_path import GpuPath

    day = load_lobster_day(data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")
    ev_day = day.events[:events]
    per = min(int(np.count_nonzero(ev_day["action"] == 1)), 8192)
    batches = [replicate(ev_day[a:a + 500], n_symbols) for a in range(0, ev_day.shape[0], 500)]
    n_ev = sum(b.shape[0] for b in batches)
    ref = lobster_pipeline(day, n_symbols, max_orders=n_symbols * per)
    eng = SignalEngine(n_symbols, load_config(), device="cpu")
    ro, rows = [], []
    t0 = time.perf_counter()
    for b in batches:
        ref.step(b)
        r = take_rows(ref.sampler)
        rows.append(r)
        ro.append(eng.step(r))
    res: dict[str, object] = {"events": n_ev, "symbols": n_symbols,
                              "cpu_reference_s": round(time.perf_counter() - t0, 2)}
    from quantedge.features.sampling import Snapshots
    store["rows"] = Snapshots(np.concatenate([r.ts for r in rows]), np.concatenate([r.symbol for r in rows]),
                              np.concatenate([r.F for r in rows]))
    src = lobster_pipeline(day, n_symbols, max_orders=n_symbols * per)
    t0 = time.perf_counter()
    gp = GpuPath("l3", src.book, src.features, device=PATH_DEVICE, orders_per_symbol=per,
                 host_threads=HOST_THREADS)
    go = [gp.step(b) for b in batches]
    res["first_run_with_compile_s"] = round(time.perf_counter() - t0, 1)
    r, g = concat_outputs(ro), concat_outputs(go)
    res.update(rows=len(r), gpu_rows=len(g), triggers=int(r.trig.sum()), gpu_triggers=int(g.trig.sum()))
    if len(r) == len(g):
        res.update(ts_sym_equal=bool(np.array_equal(r.ts, g.ts) and np.array_equal(r.symbol, g.symbol)),
                   trig_equal=bool(np.array_equal(r.trig, g.trig)), score_max_abs=_maxdiff(g.score, r.score),
                   explained_rows_equal=bool(np.array_equal(r.ex_row >= 0, g.ex_row >= 0)),
                   explain_max_abs=_maxdiff(g.explain, r.explain))
    st = gp.download()
    b, f = ref.book, ref.features
    fs1, fs2 = st["fs"].copy(), f.fs.copy()
    fs1[:, S_MARK] = 0
    fs2[:, S_MARK] = 0
    res["state_equal"] = {k: bool(np.array_equal(st[k], x)) for k, x in (
        ("lv", b.lv), ("sd", b.sd), ("bk", b.bk), ("rq", f.rq), ("pl", f.pl), ("vap", f.vap))}
    res["state_equal"]["fs"] = bool(np.array_equal(fs1, fs2))
    res["fz_max_abs"] = _maxdiff(st["fz"], f.fz)
    res["signal_state_max_abs"] = _maxdiff(st["st"], eng.st)
    _save_partial("gpu_path", res)
    # the chunk prepared on the device (prep="device"): the same outputs as the host-prepared run above
    src = lobster_pipeline(day, n_symbols, max_orders=n_symbols * per)
    t0 = time.perf_counter()
    gd = GpuPath("l3", src.book, src.features, device=PATH_DEVICE, orders_per_symbol=per, prep="device",
                 row_capacity=1 << 20)
    do = concat_outputs([gd.step(b) for b in batches])
    res["prep_device"] = {"first_run_with_compile_s": round(time.perf_counter() - t0, 1), "rows": len(do),
                          "equal_to_host_prep": bool(
                              len(do) == len(g) and np.array_equal(do.ts, g.ts)
                              and np.array_equal(do.symbol, g.symbol) and np.array_equal(do.trig, g.trig)
                              and np.array_equal(do.score, g.score)
                              and np.array_equal(do.explain, g.explain, equal_nan=True))}
    st2 = gd.download()
    res["prep_device"]["state_equal_to_host_prep"] = bool(all(
        np.array_equal(st2[k], st[k], equal_nan=True) for k in ("lv", "sd", "bk", "fs", "rq", "fz", "st")))
    _save_partial("gpu_path", res)
    whole = [np.concatenate(batches)]
    runs = [("batches_of_1M_events", batches, {}),
            ("one_batch_6M_events", whole, {"row_capacity": 1 << 20})]
    for prep in ("host", "device"):  # chunks of 1 M events, by the threads per block of the path kernel
        for tpb in (8, 16, 32, 64):
            runs.append((f"one_batch_prep_{prep}_tpb{tpb}", whole,
                         {"row_capacity": 1 << 20, "chunk_events": 1 << 20, "prep": prep,
                          "threads_per_block": tpb}))
    # the device time split: each chunk's preparation waited for (no overlap with the host's staging)
    runs.append(("one_batch_prep_device_tpb32_profiled", whole,
                 {"row_capacity": 1 << 20, "chunk_events": 1 << 20, "prep": "device", "profile": True}))
    for label, bs, kw in runs:
        best = None
        for _ in range(2):  # best of two fresh paths (the same events from the same state)
            src = lobster_pipeline(day, n_symbols, max_orders=n_symbols * per)
            gp = GpuPath("l3", src.book, src.features, device=PATH_DEVICE, orders_per_symbol=per,
                         host_threads=HOST_THREADS, **kw)
            t0 = time.perf_counter()
            n_out = sum(len(gp.step(x)) for x in bs)
            t = time.perf_counter() - t0
            if best is None or t < best[0]:
                best = (t, dict(gp.timing), n_out)
        t, timing, n_out = best
        res[label] = {"seconds": round(t, 4), "events_per_s": round(n_ev / t), "rows": n_out,
                      "timing_s": {k: round(v, 4) for k, v in timing.items()},
                      "kernel_events_per_s": round(n_ev / timing["kernel"])}
        _save_partial("gpu_path", res)
    return res


def gpu_path_modes(data: Path, copies: int = 500) -> dict:
    """GpuPath in market-by-price mode (Databento MBP-10 excerpt) and NBBO mode (NEPT IQFeed ticks),
    ``copies`` symbol ids each, against the CPU pipeline + CPU signals (outputs and state)."""
    from quantedge.book.l2 import L2Book
    from quantedge.catalog.importers.databento import read_databento_mbp10
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.symbols import NameTable
    from quantedge.features.pipeline import FeaturePipeline
    from quantedge.features.replay import replicate
    from quantedge.features.state import S_MARK, FeatureState
    from quantedge.signals.config import load_config
    from quantedge.signals.engine import SignalEngine, concat_outputs, take_rows
    from quantedge.signals.gpu_path import GpuPath

    files = {"l2": data / "databento/AAPL_2024-10-21_mbp10_premarket_excerpt.csv",
             "nbbo": data / "iqfeed/NEPT_ticks_2021-03-01_2021-03-03.csv"}
    res: dict[str, object] = {}
    for mode, f in files.items():
        if not f.exists():
            res[mode] = f"skipped: {f} not found"
            continue
        if mode == "l2":
            base = read_databento_mbp10(f, NameTable())[0]
        else:
            base = read_iqfeed_ticks(f, NameTable())[0][:20_000]
        ev = replicate(base, copies, offset_ns=3_000_000)

        def book(mode=mode):
            return L2Book.allocate(copies, capacity=64, tick=1) if mode == "l2" else None

        ref = FeaturePipeline(mode, FeatureState.allocate(copies, cadence_ns=100_000_000), book())
        eng = SignalEngine(copies, load_config(), device="cpu")
        gp = GpuPath(mode, book(), FeatureState.allocate(copies, cadence_ns=100_000_000), load_config(),
                     device=PATH_DEVICE, host_threads=HOST_THREADS)
        ro, go = [], []
        step = max(1, ev.shape[0] // 4)
        for a in range(0, ev.shape[0], step):
            ref.step(ev[a:a + step])
            ro.append(eng.step(take_rows(ref.sampler)))
            go.append(gp.step(ev[a:a + step]))
        t0 = time.perf_counter()
        gp2 = GpuPath(mode, book(), FeatureState.allocate(copies, cadence_ns=100_000_000), load_config(),
                      device=PATH_DEVICE, host_threads=HOST_THREADS)
        gp2.step(ev)
        t = time.perf_counter() - t0
        r, g = concat_outputs(ro), concat_outputs(go)
        st = gp.download()
        fs1, fs2 = st["fs"].copy(), ref.features.fs.copy()
        fs1[:, S_MARK] = 0
        fs2[:, S_MARK] = 0
        out = {"events": int(ev.shape[0]), "rows": len(r), "gpu_rows": len(g), "triggers": int(r.trig.sum()),
               "gpu_triggers": int(g.trig.sum()), "events_per_s": round(ev.shape[0] / t),
               "timing_s": {k: round(v, 4) for k, v in gp2.timing.items()},
               "books_equal": bool(np.array_equal(st["lv"], ref.book.lv)
                                   and np.array_equal(st["sd"], ref.book.sd)),
               "fs_equal": bool(np.array_equal(fs1, fs2)), "fz_max_abs": _maxdiff(st["fz"], ref.features.fz)}
        if len(r) == len(g):
            out.update(trig_equal=bool(np.array_equal(r.trig, g.trig)),
                       score_max_abs=_maxdiff(g.score, r.score))
        res[mode] = out
        _save_partial("gpu_path_modes", res)
    return res


def _save_partial(name: str, res: dict) -> None:
    RESULTS[name] = res
    if OUT is not None:
        _save(OUT)


OUT: Path | None = None
HOST_THREADS = 1  # set in main: all of Numba's threads for the timed GpuPath runs
PATH_DEVICE = "gpu"  # --path-device cpu: the same body on the CPU (to try this script without a GPU)


def full_path(data: Path, n_symbols: int) -> dict:
    from quantedge.signals.bench import full_path_rate

    z = data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    return {"cpu": full_path_rate(z, n_symbols=n_symbols, device="cpu"),
            "gpu": full_path_rate(z, n_symbols=n_symbols, device="gpu")}


def latency(data: Path) -> dict:
    from quantedge.signals.bench import live_latency

    z = data / "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
    return {"cpu": live_latency(z, device="cpu"), "gpu": live_latency(z, device="gpu")}


def main() -> None:
    global OUT, PATH_DEVICE, HOST_THREADS
    import numba

    HOST_THREADS = numba.get_num_threads()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--events", type=int, default=3000, help="events per symbol for the real rows")
    ap.add_argument("--path-device", default="gpu", choices=["gpu", "cpu"])
    ap.add_argument("--only",
                    default="env,match_random,gpu_path,gpu_path_modes,match_real,kernel,full_path,latency")
    a = ap.parse_args()
    only = set(a.only.split(","))
    out = OUT = a.out
    PATH_DEVICE = a.path_device
    store: dict[str, object] = {}
    from numba import cuda

    if not cuda.is_available() and PATH_DEVICE == "gpu":
        # Every section but env needs a device (or the simulator); say so instead of recording
        # one traceback per section.  --path-device cpu stays available to try the script here.
        print("gpu_check: no CUDA device is available here (numba.cuda.is_available() is False).\n"
              "Run this script on a machine with an NVIDIA GPU and a CUDA driver; without one, the\n"
              "kernels are checked by the tests under NUMBA_ENABLE_CUDASIM=1 (make test).",
              file=sys.stderr)
        sys.exit(2)
    if "env" in only:
        section("env", out)(env)()
    if "match_random" in only:
        section("match_random", out)(match_random)()
    if "gpu_path" in only:
        section("gpu_path", out)(gpu_path)(a.data, a.symbols, a.events, store)
    if "gpu_path_modes" in only:
        section("gpu_path_modes", out)(gpu_path_modes)(a.data)
    rows = store.get("rows")
    if rows is None and only & {"match_real", "kernel"}:
        t0 = time.perf_counter()
        rows = real_rows(a.data, a.symbols, a.events)
        RESULTS.setdefault("wall_s", {})["real_rows"] = round(time.perf_counter() - t0, 1)
    if "match_real" in only:
        section("match_real", out)(match_real)(rows, a.symbols)
    if "kernel" in only:
        section("kernel", out)(kernel)(rows, a.symbols)
    if "full_path" in only:
        section("full_path", out)(full_path)(a.data, a.symbols)
    if "latency" in only:
        section("latency", out)(latency)(a.data)
    _save(out)


if __name__ == "__main__":
    main()
