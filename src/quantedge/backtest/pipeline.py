"""Signals into the backtest, and the main job (import -> checks -> books -> features -> signals ->
accumulation backtest -> report) on the bundled real sample.

The engine only sees ``SIGNAL_DTYPE`` records merged by receive time; where they come from is this
module's business:

* :class:`SignalStage` runs the signal pipeline (books -> features -> signals) on the same batches
  the engine replays, batch by batch, so a live feed and a replay go through the same code.  A
  signal row is computed when the first event at or after its snapshot boundary arrives, so its
  ``ts_recv`` is set to that event's receive time (the boundary itself can precede the receipt of
  the events that closed the window: delivering it there would be look-ahead).
* :func:`read_signal_file` reads a Parquet file of records (the ``quantedge signals`` format, or any
  detector's output with the same columns).

:func:`run_main_job` is the first command of the README (``quantedge demo``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from numba import njit

from quantedge.backtest.engine import Engine
from quantedge.signals.config import SignalConfig
from quantedge.signals.types import SIGNAL_BY_NAME, SIGNAL_DTYPE, SIGNAL_NAMES

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LOBSTER_SAMPLE = SAMPLES / "lobster"
IQFEED_SAMPLE = SAMPLES / "iqfeed" / "NEPT_ticks_2021-03-01_excerpt.csv"
#: execution book -> signal pipeline mode for the same data
MODE_FOR_BOOK = {"l3": "l3", "l2": "l2", "pseudo": "nbbo"}
I64_MIN = np.iinfo(np.int64).min


@njit(cache=True)
def _known_at(events, tlast, recs) -> int:
    """For each signal record (symbol, boundary ``ts_event``): set ``ts_recv`` to the receive time of
    the first event of that symbol in ``events`` whose event time (made monotone per symbol, as the
    feature kernels do) is at or after the boundary — the event whose arrival produced the row —
    and never before the boundary; -1 where there is no such event (their number is returned).
    ``tlast``: each symbol's monotone clock, carried from batch to batch."""
    n = events.shape[0]
    ns = tlast.shape[0]
    if recs.shape[0] == 0:  # only keep the clocks in step with the stream
        for i in range(n):
            s = events[i].symbol
            if 0 <= s < ns and events[i].ts_event > tlast[s]:
                tlast[s] = events[i].ts_event
        return 0
    start = np.zeros(ns + 1, np.int64)
    for i in range(n):
        s = events[i].symbol
        if 0 <= s < ns:
            start[s + 1] += 1
    for s in range(ns):
        start[s + 1] += start[s]
    pos = start[:ns].copy()
    idx = np.empty(n, np.int64)
    tcl = np.empty(n, np.int64)
    for i in range(n):
        s = events[i].symbol
        if s < 0 or s >= ns:
            continue
        t = events[i].ts_event
        if t < tlast[s]:
            t = tlast[s]
        tlast[s] = t
        j = pos[s]
        idx[j] = i
        tcl[j] = t
        pos[s] = j + 1
    missing = 0
    for r in range(recs.shape[0]):
        s = recs[r].symbol
        rts = recs[r].ts_event
        lo = start[s]
        hi = pos[s]
        while lo < hi:
            mid = (lo + hi) // 2
            if tcl[mid] >= rts:
                hi = mid
            else:
                lo = mid + 1
        if lo < pos[s]:
            k = events[idx[lo]].ts_recv
            recs[r].ts_recv = k if k > rts else rts
        else:
            recs[r].ts_recv = -1
            missing += 1
    return missing


def stamp_known(events: np.ndarray, tlast: np.ndarray, recs: np.ndarray) -> tuple[np.ndarray, int]:
    """Records of the rows ``events`` produced, stamped with the time they became known
    (:func:`_known_at`) and put in receive-time order; a record no event of the batch resolves
    (none of its symbol at or after the boundary) gets the batch's last receive time, never before
    its boundary.  Returns the records and how many were unresolved.  The backtest's
    :class:`SignalStage` and the dashboard's detector stage both stamp through here, so a record is
    known at the same instant in either."""
    missing = _known_at(events, tlast, recs)  # also keeps the symbols' clocks in step
    if recs.shape[0] == 0:
        return recs, 0
    if missing:
        last = int(events["ts_recv"][-1])
        lost = recs["ts_recv"] < 0
        recs["ts_recv"][lost] = np.maximum(last, recs["ts_event"][lost])
    return recs[np.lexsort((recs["seq"], recs["ts_recv"]))], missing


class SignalStage:
    """Books -> features -> signals for ``n_symbols`` symbols, stepped with the replay's batches.

    ``step(events)`` returns the batch's ``SIGNAL_DTYPE`` records (every trigger and every score >=
    ``emit_min``, default the config's ``trigger.emit_min``) in receive-time order, stamped with the
    time they became known.  Keeps every record for :meth:`save`."""

    def __init__(
        self,
        n_symbols: int,
        mode: str = "l2",
        config=None,
        device: str = "auto",
        emit_min: float | None = None,
        max_orders: int = 1 << 18,
    ) -> None:
        from quantedge.signals.run import SignalPipeline

        if mode not in ("l3", "l2", "nbbo"):
            raise ValueError(f"signal mode must be l3, l2 or nbbo, got {mode!r}")
        book = None
        if mode == "l3":
            from quantedge.book.l3 import L3Book

            book = L3Book.allocate(n_symbols, capacity=256, tick=1, max_orders=max_orders)
        self.mode = mode
        self.pipe = SignalPipeline(n_symbols, mode, config, device, book=book)
        self.device = self.pipe.signals.device
        self.emit_min = self.pipe.signals.emit_min if emit_min is None else float(emit_min)
        self._tlast = np.full(n_symbols, I64_MIN, np.int64)
        self.events = 0
        self.snapshots = 0
        self.unresolved = 0
        self._recs: list[np.ndarray] = []

    def step(self, events: np.ndarray) -> np.ndarray:
        recs, rows = self.pipe.step_records(events, self.emit_min)
        self.events += int(events.shape[0])
        self.snapshots += rows
        recs, missing = stamp_known(events, self._tlast, recs)
        self.unresolved += missing
        if recs.shape[0]:
            self._recs.append(recs)
        return recs

    def records(self) -> np.ndarray:
        return np.concatenate(self._recs) if self._recs else np.zeros(0, SIGNAL_DTYPE)

    def summary(self) -> dict:
        r = self.records()
        trig = r[r["triggered"] == 1]
        return {
            "source": f"signal pipeline ({self.mode} books, {self.device})",
            "events": self.events,
            "snapshots": self.snapshots,
            "records": int(r.shape[0]),
            "emit_min": self.emit_min,
            "triggers": {SIGNAL_NAMES[k]: int((trig["signal"] == k).sum()) for k in SIGNAL_NAMES},
            "unresolved_receive_times": self.unresolved,
        }

    def save(self, path: Path, names: list[str]) -> dict:
        """Write every record to Parquet (the ``quantedge signals`` format); returns the summary."""
        from quantedge.signals.run import write_signals

        write_signals(self.records(), names, path)
        return {**self.summary(), "path": str(path)}


def read_signal_file(path: str | Path, names: list[str]) -> tuple[np.ndarray, dict]:
    """Signal records from Parquet: ``ts_recv`` (int64 ns UTC), ``symbol`` (name, or id into ``names``),
    ``signal`` (name or 1-7), ``score`` in [0, 1]; optional ``ts_event``, ``seq``, ``triggered``,
    ``explain_0..5``.  Records of symbols not in the data are dropped and counted; malformed values
    are errors naming the file, row and column."""
    path = Path(path)
    try:
        tbl = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read signal Parquet: {e}") from None
    cols = set(tbl.column_names)
    need = {"ts_recv", "symbol", "signal", "score"} - cols
    if need:
        raise ValueError(f"{path}: missing column(s) {sorted(need)} (have {sorted(cols)})")
    n = tbl.num_rows
    out = np.zeros(n, SIGNAL_DTYPE)

    def col(name: str) -> np.ndarray:
        return tbl.column(name).to_numpy(zero_copy_only=False)

    out["ts_recv"] = col("ts_recv").astype(np.int64)
    out["ts_event"] = col("ts_event").astype(np.int64) if "ts_event" in cols else out["ts_recv"]
    out["seq"] = col("seq").astype(np.int64) if "seq" in cols else np.arange(n)
    if "triggered" in cols:
        out["triggered"] = col("triggered").astype(np.uint8)
    score = col("score").astype(np.float64)
    bad = np.flatnonzero(~((score >= 0) & (score <= 1)))
    if bad.size:
        raise ValueError(f"{path}: row {int(bad[0]) + 1}: score = {score[bad[0]]!r} is not in [0, 1]")
    out["score"] = score
    for j in range(out["explain"].shape[1]):
        if f"explain_{j}" in cols:
            out["explain"][:, j] = col(f"explain_{j}").astype(np.float32)
    sig = col("signal")
    for i, v in enumerate(sig):
        k = SIGNAL_BY_NAME.get(v) if isinstance(v, str) else int(v)
        if k not in SIGNAL_NAMES:
            raise ValueError(
                f"{path}: row {i + 1}: signal = {v!r} is not one of {', '.join(SIGNAL_BY_NAME)} (or 1-7)"
            )
        out["signal"][i] = k
    sym = col("symbol")
    index = {name: i for i, name in enumerate(names)}
    keep = np.ones(n, bool)
    for i, v in enumerate(sym):
        s = index.get(v, -1) if isinstance(v, str) else int(v)
        if not 0 <= s < len(names):
            keep[i] = False
        else:
            out["symbol"][i] = s
    dropped = int(n - keep.sum())
    out = out[keep]
    out = out[np.lexsort((out["seq"], out["ts_recv"]))]
    info = {"source": str(path), "records": int(out.shape[0]), "dropped_unknown_symbol": dropped}
    return out, info


def signal_inputs(cfg, names: list[str]) -> tuple[SignalStage | None, np.ndarray | None, dict]:
    """What a backtest config's ``signals`` section asks for: a pipeline stage or file records."""
    sig = cfg.signals or {}
    if "path" in sig:
        recs, info = read_signal_file(cfg.resolve(str(sig["path"])), names)
        return None, recs, info
    conf, source = signal_config(cfg)
    mode = sig.get("mode", "auto")
    if mode == "auto":
        mode = MODE_FOR_BOOK[cfg.engine.execution.book]
    stage = SignalStage(max(len(names), 1), mode, conf, sig.get("device", "auto"), sig.get("emit_min"))
    info = {"config": source}
    if sig.get("params"):
        info["params"] = sig["params"]
    return stage, None, info


def signal_config(cfg) -> tuple[SignalConfig, str]:
    """The signal parameters a backtest config's ``signals`` section asks for: its ``config`` file (or
    the defaults) with ``params`` laid over it; errors name the file and the key."""
    from quantedge.signals.config import load_config

    sig = cfg.signals or {}
    path = None if str(sig.get("config")) in ("default", "None") else cfg.resolve(str(sig["config"]))
    conf = load_config(path)
    if sig.get("params"):
        conf = conf.with_mapping(sig["params"], "signals.params")
    return conf, str(path) if path else "defaults"


def run_with_signals(
    eng: Engine,
    batches: Iterable[np.ndarray],
    stage: SignalStage | None = None,
    signals: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
    info: dict | None = None,
) -> Engine:
    """Replay ``batches`` through ``eng`` with signals merged by receive time.

    ``stage``: signals computed from each batch before the engine steps through it (a row is known at
    an event of that batch, so it is never in the engine's past).  ``signals``: precomputed records
    (sorted by ts_recv), handed over batch by batch; records before the first event or after the last
    one are counted in ``info`` (``before_data`` / ``after_data``) and not delivered."""
    info = info if info is not None else {}
    k = 0
    n_sig = 0 if signals is None else signals.shape[0]
    first = True
    for b in batches:
        if b.shape[0] == 0:
            continue
        last = int(b["ts_recv"][-1])
        if signals is not None:
            if first:
                j = int(np.searchsorted(signals["ts_recv"], int(b["ts_recv"][0]), "left"))
                info["before_data"] = j
                k = j
            j = int(np.searchsorted(signals["ts_recv"], last, "right"))
            if j > k:
                eng.add_signals(signals[k:j])
                k = j
        first = False
        if stage is not None:
            recs = stage.step(b)
            if recs.shape[0]:
                eng.add_signals(recs)
        eng.step(b)
        if progress:
            progress(int(b.shape[0]))
    if signals is not None:
        info["after_data"] = int(n_sig - k) if not first else 0
        info["before_data"] = info.get("before_data", n_sig if first else 0)
        info["delivered"] = int(k - info["before_data"]) if not first else 0
    eng.finish()
    return eng


# ------------------------------------------------------------------------------------------------
# the main job
# ------------------------------------------------------------------------------------------------
def _batches(events: np.ndarray, rows: int) -> Iterable[np.ndarray]:
    return (events[i : i + rows] for i in range(0, events.shape[0], rows))


def accumulation_params(path: Path | None = None) -> tuple[dict, dict]:
    """Strategy parameters and engine settings of config/backtest_accumulation.yaml (the defaults of
    the main job); an installed package carries the file (quantedge.CONFIG_DIR), without it the
    built-in defaults run."""
    import yaml

    from quantedge import CONFIG_DIR

    path = path or CONFIG_DIR / "backtest_accumulation.yaml"
    if not path.exists():
        return {}, {}
    raw = yaml.safe_load(path.read_text()) or {}
    return dict((raw.get("strategy") or {}).get("params") or {}), raw


def backtest_symbol_day(
    events: np.ndarray,
    names: list[str],
    out: Path,
    *,
    book: str,
    params: dict | None = None,
    engine_raw: dict | None = None,
    signal_config=None,
    report: bool = True,
    batch_rows: int = 1 << 16,
    seeds: dict | None = None,
) -> tuple[dict, Engine, SignalStage]:
    """Accumulation backtest of merge-ordered ``events`` with the signal pipeline alongside;
    ``seeds``: opening books of LOBSTER days (backtest/seeds.py)."""
    from quantedge.backtest.config import BacktestConfig
    from quantedge.backtest.runner import finish_run
    from quantedge.strategies.accumulation import Accumulation

    raw = dict(engine_raw or {})
    raw["data"] = {"source": "catalog"}
    raw["strategy"] = {"name": "accumulation", "params": params or {}}
    raw["execution"] = {**(raw.get("execution") or {}), "book": book}
    raw.pop("signals", None)
    raw.pop("output", None)
    cfg = BacktestConfig.from_dict(raw, where="main job")
    strat = Accumulation(params or {})
    eng = Engine(strat, max(len(names), 1), cfg.engine, names)
    if seeds:
        eng.seed_opening_books(seeds)
    stage = SignalStage(max(len(names), 1), MODE_FOR_BOOK[book], signal_config, "auto")
    run_with_signals(eng, _batches(events, batch_rows), stage=stage)
    sig = stage.save(out / "signals.parquet", names)
    m = finish_run(eng, "accumulation", strat, cfg.return_step_ns, out, report, sig)
    m["decisions"] = {"entries": strat.entries, "exits": strat.exits}
    (out / "decisions.json").write_text(
        json.dumps({"entries": strat.entries, "exits": strat.exits}, indent=2, default=str)
    )
    return m, eng, stage


def _run_summary(
    name: str,
    symbol: str,
    date: str,
    synthetic: bool,
    check,
    m: dict,
    eng: Engine,
    stage: SignalStage,
    span_ns: int,
    out: Path,
) -> dict:
    sig = m["signals"]
    fills = len(eng.trade_log)
    row = {
        "dataset": name,
        "synthetic": synthetic,
        "symbol": symbol,
        "date": date,
        "events": check.n_events,
        "quarantined": check.n_bad,
        "replayed": int(m["events"]),
        "span_minutes": round(span_ns / 60e9, 1),
        "snapshots": sig["snapshots"],
        "signal_records": sig["records"],
        "signals_delivered": len(eng.signals_seen),
        "triggers": sig["triggers"],
        "entry_decisions": len(m["decisions"]["entries"]),
        "exit_decisions": len(m["decisions"]["exits"]),
        "exit_reasons": sorted({x["reason"].split(" ")[0] for x in m["decisions"]["exits"]}),
        "fills": fills,
        "round_trips": int(m.get("trades", 0)),
        "final_equity": float(m["final_equity"]),
        "total_return": float(m["total_return"]),
        "fees_paid": float(m["fees_paid"]),
        "out_dir": str(out),
        "outputs": m["outputs"],
    }
    if fills == 0:
        n_comp = sig["triggers"]["composite"]
        seen = f"in {row['span_minutes']} min of data ({check.n_events:,} events)"
        if row["entry_decisions"]:
            row["note"] = (f"no fills: {row['entry_decisions']} entry decision(s); the limit orders "
                           "timed out unfilled")
        elif n_comp == 0:
            row["note"] = (f"no trades: the composite score never reached its trigger level {seen}, so "
                           "the strategy had nothing to enter on")
        else:
            row["note"] = (f"no trades: {n_comp} composite trigger(s) {seen} but no entry decision: the "
                           "strategy's entry rules (docs/backtester.md, Entry and scale-in) turned them down")
    return row


def run_main_job(
    out_dir: Path, synthetic: bool = True, synth_seed: int = 7, synth_index: int = 0, report: bool = True
) -> dict:
    """The whole pipeline on the bundled real sample (LOBSTER AMZN excerpt, IQFeed NEPT excerpt), plus one
    clearly labelled synthetic penny-stock day with planted episodes (``synthetic=False`` skips it).

    import into ``out_dir/catalog`` -> integrity checks -> books -> features -> signals -> accumulation
    backtest with the execution simulator -> reports.  Returns paths and headline numbers; the text
    for the console is ``result["summary_text"]``.  Needs nothing outside the package."""
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.integrity import check_events
    from quantedge.catalog.store import Catalog
    from quantedge.signals.config import load_config

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cat = Catalog(out_dir / "catalog")
    reports = import_paths(cat, "lobster", [LOBSTER_SAMPLE]) + import_paths(cat, "iqfeed", [IQFEED_SAMPLE])
    imports = [r.to_dict() for r in reports]
    params, raw = accumulation_params()
    sig_conf = load_config()
    books = {"AMZN": "l3", "NEPT": "pseudo"}
    runs: list[dict] = []
    checks: list[dict] = []
    (out_dir / "integrity").mkdir(exist_ok=True)
    days = sorted({(p.symbol, p.date.isoformat()) for p in cat.partitions()})
    names = cat.symbols.names()
    for sym, date in days:
        events = cat.read(sym, date)
        res = check_events(events, symbol=sym, date=date)
        with open(out_dir / "integrity" / f"quarantine_{sym}_{date}.jsonl", "w") as f:
            res.write_quarantine(f)
        checks.append(res.to_dict())
        good = res.good_events()
        run_out = out_dir / "backtest" / f"{sym}_{date}"
        seeds = None
        if books.get(sym) == "l3":  # the LOBSTER day opens with the book its orderbook file shows
            from types import SimpleNamespace

            from quantedge.backtest.seeds import find_seeds

            where = SimpleNamespace(data={"source": "catalog", "catalog": str(cat.root)}, resolve=Path)
            seeds, _note = find_seeds(where, names, date, [names.index(sym)])
        m, eng, stage = backtest_symbol_day(
            good,
            names,
            run_out,
            book=books.get(sym, "pseudo"),
            params=params,
            engine_raw=raw,
            signal_config=sig_conf,
            report=report,
            seeds=seeds,
        )
        span = int(good["ts_recv"][-1] - good["ts_recv"][0]) if good.shape[0] else 0
        runs.append(
            _run_summary(f"{sym} {date} (real sample)", sym, date, False, res, m, eng, stage, span, run_out)
        )
    (out_dir / "integrity" / "integrity.json").write_text(json.dumps(checks, indent=2))
    synth: dict | None = None
    if synthetic:
        synth = _synthetic_run(out_dir, synth_seed, synth_index, params, raw, sig_conf, report)
        runs.append(synth)
    result = {
        "out_dir": str(out_dir),
        "catalog": str(cat.root),
        "imports": imports,
        "integrity": checks,
        "runs": runs,
    }
    text = summary_text(result)
    result["summary_text"] = text
    (out_dir / "summary.md").write_text(text + "\n")
    result["summary_path"] = str(out_dir / "summary.json")
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    return result


#: the synthetic day's move after each accumulation episode (docs/simulator.md, "--markup"): the
#: strategy's reason to exist is that move, and a day without it can only show its costs
SYNTH_MARKUP = (0.05, 600.0)


def _synthetic_run(
    out_dir: Path, seed: int, index: int, params: dict, raw: dict, sig_conf, report: bool
) -> dict:
    """One simulated penny-stock day (deterministic, planted episodes with labels, each accumulation
    episode followed by a planted move) through the same path."""
    from quantedge.catalog.integrity import check_events
    from quantedge.catalog.store import Catalog
    from quantedge.synth.generate import business_days, simulate_symbol, write_labels

    scat = Catalog(out_dir / "synthetic_catalog")
    date = business_days(dt.date(2024, 1, 2), 1)
    from quantedge.synth.generate import symbol_name

    name = symbol_name("penny", index)
    sid = scat.symbols.id(name)
    day = simulate_symbol(seed, index, "penny", date, sid, markup=SYNTH_MARKUP)[0]
    scat.write(day.events, source=f"synth-{seed}-{name}-{day.date.isoformat()}")
    write_labels(scat.root, day.labels, {(name, day.date.isoformat())})
    events = scat.read(name, day.date)
    res = check_events(events, symbol=name, date=day.date)
    good = res.good_events()
    run_out = out_dir / "backtest" / f"SYNTHETIC_{name}_{day.date.isoformat()}"
    m, eng, stage = backtest_symbol_day(
        good,
        scat.symbols.names(),
        run_out,
        book="l2",
        params=params,
        engine_raw=raw,
        signal_config=sig_conf,
        report=report,
    )
    span = int(good["ts_recv"][-1] - good["ts_recv"][0]) if good.shape[0] else 0
    row = _run_summary(
        f"{name} {day.date.isoformat()} (SYNTHETIC: simulated, planted episodes; each accumulation "
        f"followed by a planted {SYNTH_MARKUP[0] * 50:.1f}-{SYNTH_MARKUP[0] * 100:.0f} % move over "
        f"{SYNTH_MARKUP[1] / 60:.0f} min)",
        name,
        day.date.isoformat(),
        True,
        res,
        m,
        eng,
        stage,
        span,
        run_out,
    )
    tol = 30 * 1_000_000_000
    eps = []
    for lab in day.labels:
        ent = [e for e in m["decisions"]["entries"] if lab["start_ns"] <= e["ts"] < lab["end_ns"] + tol]
        eps.append(
            {
                "kind": lab["kind"],
                "start": _et(lab["start_ns"]),
                "end": _et(lab["end_ns"]),
                "intensity": round(lab["intensity"], 2),
                "entries_during": len(ent),
            }
        )
    row["episodes"] = eps
    row["labels"] = str(scat.root / "labels" / "episodes.parquet")
    return row


def _et(ns: int) -> str:
    from quantedge.timeutil import format_et

    return format_et(int(ns), 0)


def summary_text(result: dict) -> str:
    """Console / Markdown summary of a main-job result."""
    lines = [f"QuantEdge main job -> {result['out_dir']}", ""]
    for r in result["imports"]:
        lines.append(
            f"import  {Path(r['source']).name}: {r['rows_read']:,} rows read, {r['rows_imported']:,} "
            f"imported, {r['rows_quarantined']:,} quarantined, {r['events_written']:,} events"
        )
    for c in result["integrity"]:
        reasons = ", ".join(f"{k} {v}" for k, v in c["quarantine_reasons"].items()) or "none"
        lines.append(
            f"checks  {c['symbol']} {c['date']}: {c['events']:,} events, {c['quarantined']:,} "
            f"quarantined ({reasons})"
        )
    for r in result["runs"]:
        lines.append("")
        lines.append(f"== {r['dataset']}")
        trig = ", ".join(f"{k} {v}" for k, v in r["triggers"].items() if v) or "none"
        lines.append(
            f"   {r['replayed']:,} events over {r['span_minutes']} min -> {r['snapshots']:,} feature "
            f"snapshots -> {r['signal_records']:,} signal records (triggers: {trig})"
        )
        lines.append(
            f"   accumulation: {r['entry_decisions']} entry/scale-in decision(s), {r['exit_decisions']} "
            f"exit(s) {r['exit_reasons'] or ''}; {r['fills']} fill(s), {r['round_trips']} round trip(s); "
            f"final equity {r['final_equity']:,.2f} ({r['total_return'] * 100:+.3f} %), "
            f"fees {r['fees_paid']:,.2f}"
        )
        if r.get("note"):
            lines.append(f"   {r['note']}")
        for e in r.get("episodes", []):
            lines.append(
                f"   planted {e['kind']:<16} {e['start']} - {e['end']} ET intensity {e['intensity']}: "
                f"{e['entries_during']} entry decision(s)"
            )
        rep = r["outputs"].get("html")
        lines.append(f"   report: {rep or '(HTML skipped)'}")
        lines.append(f"   trades: {r['outputs']['trades']}")
    return "\n".join(lines)
