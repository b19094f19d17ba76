"""Python side of the simulator: symbol-days -> normalized events, labels and catalog writes.

The compiled kernel (:mod:`quantedge.synth.engine`) does all per-message work; this module draws
each symbol's parameters and episode plan from ``(seed, symbol index, day index)``, converts the
kernel's output table into ``EVENT_DTYPE`` records (merge order, modeled receive times, FLAG_LAST
on group ends) and fans symbols out over worker processes.  A symbol's days run in sequence so
each day opens at the previous day's close (multi-day lows and ranges are meaningful).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quantedge import events as ev
from quantedge.synth import engine as E
from quantedge.synth.episodes import KINDS, LABEL_SCHEMA, labels_table, plan_episodes
from quantedge.synth.regimes import REGIMES, draw_params

ET = ZoneInfo("America/New_York")
#: Modeled feed latency: a fixed part plus an exponential jitter, per message.
LATENCY_NS = 350_000
LATENCY_JITTER_NS = 150_000
ALL_KINDS = tuple(KINDS)


def open_ns(date: dt.date) -> int:
    """09:30 ET of ``date`` as ns since the epoch (UTC)."""
    t = dt.datetime(date.year, date.month, date.day, 9, 30, tzinfo=ET)
    return int(t.timestamp()) * 1_000_000_000


def business_days(start: dt.date, n: int) -> list[dt.date]:
    """``n`` weekdays from ``start`` on (exchange holidays are not modelled)."""
    out: list[dt.date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def symbol_name(regime: str, index: int) -> str:
    return f"SIM{'P' if regime == 'penny' else 'L'}{index:04d}"


def _mix(*xs: int) -> int:
    """Deterministic 31-bit seed from integers (splitmix64 steps)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFF


@dataclass
class DayResult:
    symbol: str
    date: dt.date
    events: np.ndarray
    labels: list[dict] = field(default_factory=list)
    close: float = 0.0


def simulate_symbol_day(par: np.ndarray, episodes: tuple[np.ndarray, ...], seed: int, symbol_id: int,
                        day_open_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the kernel for one symbol-day; returns (events in merge order, final state vector)."""
    kinds, t0, t1, x = episodes
    expected = (par[E.P_RLIM] + par[E.P_RMKT] * 6 + par[E.P_RDARK] + par[E.P_NMM] * par[E.P_MMRATE] * 2)
    span = par[E.P_STOP] if 0 < par[E.P_STOP] < par[E.P_DUR] else par[E.P_DUR]
    cap = int(expected * span * 6) + 200_000
    final = np.zeros(4, np.float64)
    while True:
        out = np.empty((cap, E.NCOL), np.int64)
        n = E.simulate_day(par, seed, kinds, t0, t1, x, out, final)
        if n >= 0:
            break
        cap *= 2
    out = out[:n]
    order = np.lexsort((out[:, E.C_KIND], out[:, E.C_SEQ]))
    out = out[order]
    events = ev.empty(n)
    events["ts_event"] = out[:, E.C_TS] + day_open_ns
    events["seq"] = out[:, E.C_SEQ]
    events["order_id"] = out[:, E.C_OID]
    events["price"] = out[:, E.C_PX]
    events["size"] = out[:, E.C_SZ]
    events["symbol"] = symbol_id
    events["conditions"] = out[:, E.C_COND].astype(np.uint32)
    events["venue"] = out[:, E.C_VENUE].astype(np.int16)
    events["kind"] = out[:, E.C_KIND].astype(np.uint8)
    events["side"] = out[:, E.C_SIDE].astype(np.int8)
    events["action"] = out[:, E.C_ACT].astype(np.uint8)
    recv = np.empty(n, np.int64)
    E.latency_and_order(events["ts_event"], events["seq"], LATENCY_NS, LATENCY_JITTER_NS, seed ^ 0x5A5A, recv)
    events["ts_recv"] = recv
    flags = np.full(n, ev.FLAG_TS_RECV_MODELED, np.uint8)
    if n:
        seqs = events["seq"]
        group_end = np.append(seqs[1:] != seqs[:-1], True)
        quote_ask = (events["kind"] == ev.KIND_QUOTE) & (events["side"] == ev.SIDE_ASK)
        flags[group_end | quote_ask] |= ev.FLAG_LAST
    events["flags"] = flags
    return events, final


def plan_symbol_day(seed: int, index: int, day: int, regime: str, price: float | None,
                    kinds: tuple[int, ...], markup: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[np.ndarray, tuple[np.ndarray, ...], int]:
    """Parameters, episode plan and kernel seed of one symbol-day (pure function of its inputs).
    ``markup``: (rise at intensity 1 as a fraction, seconds) of the move after each accumulation
    episode (engine.P_MARKUP; none by default)."""
    rng = np.random.default_rng([seed, index, day])
    par = draw_params(regime, np.random.default_rng([seed, index]), price)
    if price is not None:
        par[E.P_P0] = round(price * 10_000)
    par[E.P_MARKUP], par[E.P_MARKUP_S] = markup
    # a symbol keeps its character across days; only the episode plan and the flow differ
    kseed = _mix(seed, index, day)
    feasible = [k for k in kinds if k != E.EP_CONTRACTION
                or opening_spread_ticks(par, kseed) >= CONTRACTION_MIN_SPREAD_TICKS]
    plan = plan_episodes(rng, par[E.P_DUR], feasible)
    return par, plan, kseed


#: A contraction is planted only where the day's normal spread is at least this many minimum ticks
#: ($0.0001 below $1, $0.01 above): a spread that already sits at one or two ticks cannot contract.
CONTRACTION_MIN_SPREAD_TICKS = 2.5
#: Length of the episode-free opening stretch simulated to measure that spread.
SPREAD_PROBE_S = 1800.0


def opening_spread_ticks(par: np.ndarray, seed: int) -> float:
    """Time-weighted median NBBO spread, in minimum price ticks, of the day's first ``SPREAD_PROBE_S``
    seconds: the same kernel run, stopped early (no episode or lead-in starts before
    ``episodes.FIRST_START``, so these are exactly the real day's opening events).

    Measured, not estimated from the market makers' width: noise traders improving inside the
    quotes pin most $1+ small caps at one cent, which no formula of the parameters predicts."""
    probe = par.copy()
    probe[E.P_STOP] = SPREAD_PROBE_S
    none = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    events, _ = simulate_symbol_day(probe, none, seed, 0, 0)
    q = events[events["kind"] == ev.KIND_QUOTE]
    bid = q[q["side"] == ev.SIDE_BID]
    ask = q[q["side"] == ev.SIDE_ASK]
    n = min(len(bid), len(ask))  # the kernel writes every NBBO change as a (bid, ask) pair
    if n == 0:
        return 0.0
    bid, ask = bid[:n], ask[:n]
    ok = (bid["price"] > 0) & (ask["price"] > 0)
    t = bid["ts_event"]
    dur = np.diff(np.append(t, max(int(SPREAD_PROBE_S * 1e9), int(t[-1]))))
    tick = np.where(bid["price"] >= E.SUB, 100, 1)
    spread = (ask["price"] - bid["price"]) / tick
    spread, dur = spread[ok], dur[ok]
    if dur.sum() <= 0:
        return float(np.median(spread)) if spread.size else 0.0
    order = np.argsort(spread, kind="stable")
    cum = np.cumsum(dur[order])
    return float(spread[order][np.searchsorted(cum, cum[-1] / 2.0)])


#: the planted kinds that are accumulation (everything but dumping)
ACCUMULATION_KINDS = frozenset(k for k in ALL_KINDS if k != E.EP_DUMPING)


def simulate_symbol(seed: int, index: int, regime: str, dates: list[dt.date], symbol_id: int,
                    kinds: tuple[int, ...] = ALL_KINDS, markup: tuple[float, float] = (0.0, 0.0),
                    gap: tuple[float, float] = (0.0, 1.0)) -> list[DayResult]:
    """All days of one symbol, each opening at the previous close.

    ``gap`` = (rise, share): a day plants its accumulation episodes with probability ``share`` (drawn
    per symbol-day; 1: every day, as without the option), and the day after a day that planted
    them opens ``rise`` x (0.5 + 0.5 x their highest intensity) above its close (the overnight gap
    the pre-gap analyzer looks for; 0: no gap)."""
    name = symbol_name(regime, index)
    price: float | None = None
    out: list[DayResult] = []
    rise, share = gap
    for di, date in enumerate(dates):
        day_kinds = kinds
        if share < 1.0 and np.random.default_rng([seed, index, di, 0x6A9]).random() >= share:
            day_kinds = tuple(k for k in kinds if k not in ACCUMULATION_KINDS)
        par, plan, kseed = plan_symbol_day(seed, index, di, regime, price, day_kinds, markup)
        o = open_ns(date)
        events, final = simulate_symbol_day(par, plan, kseed, symbol_id, o)
        labels = [
            {"symbol": name, "date": date.isoformat(), "start_ns": o + int(s * 1e9),
             "end_ns": o + int(e * 1e9), "kind": KINDS[int(k)], "intensity": float(x), "regime": regime}
            for k, s, e, x in zip(*plan, strict=True)
        ]
        price = max(E.ladder_price(E.ladder_floor(final[1])), 1) / 10_000
        lo_p = 0.3 if regime == "penny" else 20.0
        price = max(price, lo_p)
        out.append(DayResult(name, date, events, labels, price))
        acc = [float(x) for k, x in zip(plan[0], plan[3], strict=True) if int(k) in ACCUMULATION_KINDS]
        if rise > 0 and acc:
            price *= 1.0 + rise * (0.5 + 0.5 * max(acc))
    return out


def _job(args: tuple) -> tuple[str, int, list[dict]]:
    """Worker: simulate one symbol and write its days to the catalog; returns (symbol, events, labels)."""
    root, seed, index, regime, dates, symbol_id, kinds, markup, gap = args
    from quantedge.catalog.store import Catalog

    cat = Catalog(root)
    total = 0
    labels: list[dict] = []
    for day in simulate_symbol(seed, index, regime, dates, symbol_id, kinds, markup, gap):
        total += cat.write(day.events, source=f"synth-{seed}-{day.symbol}-{day.date.isoformat()}")
        labels.extend(day.labels)
    return symbol_name(regime, index), total, labels


@dataclass
class GenerateSummary:
    symbols: list[str]
    dates: list[dt.date]
    events: int
    labels: int
    labels_path: Path


def generate_to_catalog(root: str | Path, n_symbols: int, days: int, start: dt.date, seed: int = 1,
                        penny_share: float = 0.8, workers: int | None = None,
                        kinds: tuple[int, ...] = ALL_KINDS,
                        on_symbol: Callable[[str, int], None] | None = None,
                        markup: float = 0.0, markup_s: float = 600.0, gap: float = 0.0,
                        accumulation_share: float = 1.0) -> GenerateSummary:
    """Simulate ``n_symbols`` x ``days`` symbol-days into the catalog at ``root`` with labels.

    The first ``round(penny_share * n_symbols)`` symbols are penny stocks, the rest large caps.
    ``markup`` > 0: after each accumulation episode the fundamental rises by ``markup`` x (0.5 + 0.5 x
    intensity) over ``markup_s`` seconds (the move the accumulation came before; unlabelled).
    ``accumulation_share`` < 1: only that share of symbol-days plant accumulation episodes; ``gap`` >
    0: the day after one that did opens ``gap`` x (0.5 + 0.5 x intensity) higher (see
    :func:`simulate_symbol`; unlabelled, the prices show it).
    Labels go to ``<root>/labels/episodes.parquet``; rows for the regenerated symbol-days replace
    earlier ones so re-running is idempotent.
    """
    from quantedge.catalog.store import Catalog

    if n_symbols < 1 or days < 1:
        raise ValueError("need at least one symbol and one day")
    if not 0.0 <= penny_share <= 1.0:
        raise ValueError(f"penny_share must be in [0, 1], got {penny_share}")
    if not 0.0 <= markup <= 1.0 or markup_s <= 0.0:
        raise ValueError(f"markup must be in [0, 1] and markup_s > 0, got {markup} and {markup_s}")
    if not 0.0 <= gap <= 1.0 or not 0.0 <= accumulation_share <= 1.0:
        raise ValueError(f"gap and accumulation_share must be in [0, 1], got {gap} and {accumulation_share}")
    cat = Catalog(root)
    dates = business_days(start, days)
    n_penny = round(penny_share * n_symbols)
    jobs = []
    names = []
    for i in range(n_symbols):
        regime = REGIMES[0] if i < n_penny else REGIMES[1]
        name = symbol_name(regime, i)
        names.append(name)
        jobs.append((str(cat.root), seed, i, regime, dates, cat.symbols.id(name), tuple(kinds),
                     (float(markup), float(markup_s)), (float(gap), float(accumulation_share))))
    cat.save_tables()  # workers load the full symbol table, so their saves are identical
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    total = 0
    labels: list[dict] = []
    if workers <= 1:
        results = map(_job, jobs)
        for name, n, lab in results:
            total += n
            labels.extend(lab)
            if on_symbol:
                on_symbol(name, n)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for name, n, lab in pool.map(_job, jobs):
                total += n
                labels.extend(lab)
                if on_symbol:
                    on_symbol(name, n)
    path = write_labels(cat.root, labels, {(r["symbol"], r["date"]) for r in labels} |
                        {(s, d.isoformat()) for s in names for d in dates})
    return GenerateSummary(names, dates, total, len(labels), path)


def write_labels(root: Path, rows: list[dict], replace: set[tuple[str, str]]) -> Path:
    """Merge label rows into ``<root>/labels/episodes.parquet`` replacing the given symbol-days."""
    path = Path(root) / "labels" / "episodes.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    new = labels_table(rows)
    if path.exists():
        old = pq.read_table(path).cast(LABEL_SCHEMA)
        keep = [(s, d) not in replace for s, d in zip(old.column("symbol").to_pylist(),
                                                      old.column("date").to_pylist(), strict=True)]
        new = pa.concat_tables([old.filter(pa.array(keep)), new])
    new = new.sort_by([("date", "ascending"), ("symbol", "ascending"), ("start_ns", "ascending")])
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(new, tmp)
    os.replace(tmp, path)
    return path


def read_labels(root: str | Path) -> pa.Table:
    """The label table of a catalog (empty table when none was written)."""
    path = Path(root) / "labels" / "episodes.parquet"
    if not path.exists():
        return LABEL_SCHEMA.empty_table()
    return pq.read_table(path)
