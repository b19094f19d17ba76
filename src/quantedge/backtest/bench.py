"""Backtest throughput on a replicated real day: events/s per core, peak memory, callback cost.

The LOBSTER AMZN level-5 day is replayed as ``n_symbols`` symbols (each event repeated with symbol
ids 0..n-1, so the merged stream stays in ts_recv order) through the L3 venue with an SMA
crossover on 1-minute bars per symbol.  Batches are generated on the fly, so memory reflects the
engine, not a materialized stream.  Run: ``python -m quantedge.backtest.bench --symbols 50``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from quantedge.backtest.engine import Engine, EngineConfig
from quantedge.backtest.venue import ExecutionConfig
from quantedge.strategies.sma_cross import SmaCross

if TYPE_CHECKING:
    from quantedge.backtest.pipeline import SignalStage


def replicated_batches(base: np.ndarray, n_symbols: int, rows: int = 1 << 18):
    per = max(1, rows // n_symbols)
    for i in range(0, base.size, per):
        chunk = base[i : i + per]
        out = np.repeat(chunk, n_symbols)
        out["symbol"] = np.tile(np.arange(n_symbols, dtype=np.int32), chunk.size)
        yield out


def run(zip_path: str | Path, n_symbols: int) -> dict:
    from quantedge.catalog.importers.lobster import read_lobster
    from quantedge.catalog.symbols import NameTable

    base, _ = read_lobster(zip_path, NameTable())
    cfg = EngineConfig(execution=ExecutionConfig(book="l3", max_book_orders=min(1 << 22, 4096 * n_symbols)))
    eng = Engine(SmaCross({"fast": 5, "slow": 20, "interval": "1min"}), n_symbols, cfg)
    # warm the compiled kernels on a small slice so compile time is not counted
    Engine(SmaCross(), 1, EngineConfig(execution=ExecutionConfig(book="l3", max_book_orders=4096))).run(
        [base[:2000]]
    )
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    eng.run(replicated_batches(base, n_symbols))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return _figures(eng, n_symbols, eng.events_seen, wall, cpu,
                    matcher_events=int(eng.venue.counters[1]))


def _figures(eng: Engine, n_symbols: int, n: int, wall: float, cpu: float, **extra: object) -> dict:
    """Per-core rate, callback cost and peak memory of one timed run."""
    return {
        "symbols": n_symbols,
        "events": n,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s_per_core": round(n / cpu),
        "callbacks": eng.callbacks,
        "callback_us_mean": round(eng.callback_s / max(eng.callbacks, 1) * 1e6, 2),
        "callback_share_of_time": round(eng.callback_s / wall, 4),
        "observer_s": round(eng.observe_s, 3),  # compiled observers (observe_every), all symbols
        "mark_stops": eng.mark_stops,  # compiled position marks handing back to Python
        "fills": len(eng.fills),
        **extra,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def accumulation_setup(nept_ticks: str | Path, n_symbols: int, batch_rows: int = 1 << 18,
                       **params: object) -> tuple[list[np.ndarray], Callable[[int], Engine],
                                                  Callable[[int], SignalStage]]:
    """The accumulation benchmark's day: the real NEPT 2021-03-01 IQFeed day replicated to
    ``n_symbols`` symbol ids (each shifted by ~1 ms) in batches, and makers of its engine (the
    accumulation strategy of config/backtest_accumulation.yaml, ``params`` laid over it, on the
    pseudo-L2 venue) and of its signal stage (NBBO books -> features -> signals, CPU).  The composite
    triggers at 0.4 held 20 s (some signal at 80 % of its own threshold): at the calibrated defaults
    it never triggers on this one real day, and a benchmark of the trading path needs trades (same
    signal kernels and cost either way)."""
    from quantedge.backtest.pipeline import SignalStage, accumulation_params
    from quantedge.backtest.runner import make_strategy
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.symbols import NameTable
    from quantedge.features.replay import replicate
    from quantedge.signals.config import load_config
    from quantedge.timeutil import et_midnight_ns

    ev, rep = read_iqfeed_ticks(nept_ticks, NameTable())
    if ev.shape[0] == 0:
        why = "; ".join(f"{p.reason}: {p.detail}" for p in rep.problems[:3]) or "no tick rows"
        raise SystemExit(f"{nept_ticks}: no events to replay ({why})")
    t0 = et_midnight_ns(__import__("datetime").date(2021, 3, 1))
    day = ev[(ev["ts_recv"] >= t0) & (ev["ts_recv"] < t0 + 86_400 * 10**9)]
    base, _raw = accumulation_params()
    sp = {**base, **params}
    names = [f"S{i:04d}" for i in range(n_symbols)]
    sig_conf = load_config().with_values(composite__on_score=0.4, composite__persist_s=20.0)

    def engine(n: int) -> Engine:
        cfg = EngineConfig(execution=ExecutionConfig(book="pseudo", max_orders=1 << 18))
        return Engine(make_strategy("accumulation", sp), n, cfg, names[:n])

    def stage(n: int) -> SignalStage:
        return SignalStage(n, "nbbo", config=sig_conf, device="cpu")

    stream = replicate(day, n_symbols, offset_ns=997_003)
    batches = [stream[i:i + batch_rows] for i in range(0, stream.shape[0], batch_rows)]
    # a warm-up run compiles the kernels (compile time is reported by the CLI start-up figures)
    from quantedge.backtest.pipeline import run_with_signals

    run_with_signals(engine(1), [day[:4000]], stage=stage(1))
    # ... but not the venue's book walk of a market order: the one-symbol day never sends one (its
    # exits are limits), the 2,000-symbol run sends thousands, and the timed run paid the compile
    # (~1 s) on its first use after an install or a source change
    from quantedge.backtest.orders import OrderRequest

    venue = engine(1).venue
    venue.arrive(venue.new_order(OrderRequest(symbol=0, side=1, qty=100), 0, 0), 0)
    return batches, engine, stage


def _fill_keys(eng: Engine) -> list[tuple[int, int, int, int]]:
    return [(f.ts, f.symbol, f.qty, f.price) for f in eng.fills]


def run_accumulation(nept_ticks: str | Path, n_symbols: int = 2000, batch_rows: int = 1 << 18,
                     baseline: bool = True, repeat: int = 1) -> dict:
    """The accumulation strategy over a one-day stream of ``n_symbols`` small caps
    (:func:`accumulation_setup`), with the whole live path in the loop: NBBO books -> features ->
    signals (SignalStage) -> engine -> pseudo-L2 venue.  Figures per core (process CPU time), peak
    memory and the cost of a strategy callback.

    With ``baseline`` the two halves are also timed alone on the same stream, so what the engine adds
    is a measured rate, not only a difference: the books -> features -> signals stage alone (its
    records kept), then the engine, the strategy and the venue alone over those records, handed over
    batch by batch as a signal file's would be (``signals.path`` in a backtest config).  That run
    must make the same fills as the whole path (``engine_alone_same_fills``): the records and their
    receive times are the same, only who computed them differs.

    ``repeat``: each timed run is made that many times, fresh state each time, round by round (signal
    stage, engine, whole path, then again), and the figures are the fastest run of each (the host's
    load only ever adds time; every run's CPU seconds are listed under ``*_runs_cpu_s``).  Every
    repetition must give the same records and fills (``repeats_agree``)."""
    from quantedge.backtest.pipeline import run_with_signals

    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    batches, engine, make_stage = accumulation_setup(nept_ticks, n_symbols, batch_rows)
    n_events = sum(b.shape[0] for b in batches)
    base_runs: list[float] = []
    eng_runs: list[float] = []
    whole_runs: list[float] = []
    alone_fills: list[list] = []
    whole_fills: list[list] = []
    n_recs: list[int] = []
    best: dict | None = None  # the fastest whole-path run's figures
    for _ in range(repeat):
        if baseline:
            alone = make_stage(n_symbols)
            c0 = time.process_time()
            for b in batches:
                alone.step(b)
            base_runs.append(time.process_time() - c0)
            recs = alone.records()
            del alone
            eng = engine(n_symbols)
            c0 = time.process_time()
            run_with_signals(eng, batches, signals=recs)
            eng_runs.append(time.process_time() - c0)
            alone_fills.append(_fill_keys(eng))
            n_recs.append(int(recs.shape[0]))
            del eng, recs
        eng = engine(n_symbols)
        stage = make_stage(n_symbols)
        t0w = time.perf_counter()
        cpu0 = time.process_time()
        run_with_signals(eng, batches, stage=stage)
        wall = time.perf_counter() - t0w
        cpu = time.process_time() - cpu0
        whole_runs.append(cpu)
        whole_fills.append(_fill_keys(eng))
        n_recs.append(int(stage.records().shape[0]))
        if best is None or cpu < best["cpu_s"]:
            best = _figures(eng, n_symbols, n_events, wall, cpu, signal_records=n_recs[-1],
                            signal_callbacks=eng.signal_callbacks,
                            triggers=int(sum(stage.summary()["triggers"].values())))
        del eng, stage
    cpu = best["cpu_s"]
    extra: dict = {}
    if baseline:
        base_cpu, eng_cpu = min(base_runs), min(eng_runs)
        extra = {"signals_alone_cpu_s": round(base_cpu, 3),
                 "signals_alone_events_per_s": round(n_events / base_cpu),
                 "engine_alone_cpu_s": round(eng_cpu, 3),
                 "engine_alone_events_per_s": round(n_events / eng_cpu),
                 "engine_and_strategy_share": round((cpu - base_cpu) / cpu, 3),
                 "engine_alone_same_fills": alone_fills[0] == whole_fills[0]}
    if repeat > 1:
        extra["repeat"] = repeat
        extra["whole_runs_cpu_s"] = [round(c, 3) for c in whole_runs]
        if baseline:
            extra["signals_alone_runs_cpu_s"] = [round(c, 3) for c in base_runs]
            extra["engine_alone_runs_cpu_s"] = [round(c, 3) for c in eng_runs]
        fills = whole_fills + alone_fills
        extra["repeats_agree"] = (all(f == fills[0] for f in fills)
                                  and all(n == n_recs[0] for n in n_recs))
    best.pop("peak_rss_mb")  # the process's peak over every run, taken last
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {**best, **extra, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--zip", default="../shared/data/lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")
    ap.add_argument("--accumulation", metavar="NEPT_TICKS", default=None,
                    help="run the accumulation benchmark on this IQFeed tick file instead")
    ap.add_argument("--repeat", type=int, default=1,
                    help="accumulation benchmark: time each run this many times and report the fastest")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {a.repeat}")
    if a.accumulation:
        print(json.dumps(run_accumulation(a.accumulation, a.symbols, repeat=a.repeat), indent=1))
    else:
        print(json.dumps(run(a.zip, a.symbols), indent=1))


if __name__ == "__main__":
    main()
