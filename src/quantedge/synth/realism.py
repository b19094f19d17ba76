"""Realism check: distributions of simulated days side by side with real days.

Four distributions decide whether simulated data "looks like" a market, because the signals live
on them: the quoted spread (bps and cents), print size, time between prints, and displayed size at
the touch.  All of them are measured over the regular session (09:30-16:00 ET) only:

* spread and touch depth are *time-sampled* once per second from the last NBBO at or before that
  second (event sampling would over-weight busy periods and differs by source: IQFeed history
  only carries the NBBO on trade rows);
* trade size and inter-arrival use every print (lit and off-exchange); inter-arrival is the gap
  between consecutive prints of the same day, in milliseconds.

Real sources: the IQFeed NEPT tick file (quotes from trade rows: no sizes, so no touch depth) and
the LOBSTER samples (touch from the LOBSTER orderbook file, prints from the message file; Nasdaq
only, so no off-exchange prints).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantedge import events as ev
from quantedge.timeutil import NS, seconds_since_midnight_et

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
OPEN_S = 9.5 * 3600
CLOSE_S = 16.0 * 3600
METRICS = (
    ("spread_bps", "spread (bps of mid)"),
    ("spread_cents", "spread (cents)"),
    ("trade_size", "trade size (shares)"),
    ("inter_arrival_ms", "trade inter-arrival (ms)"),
    ("touch_depth", "touch depth (shares, bid and ask)"),
)


@dataclass
class Touch:
    """A top-of-book series: time (ns UTC) and the NBBO after each update."""

    ts: np.ndarray
    bid: np.ndarray
    bid_size: np.ndarray
    ask: np.ndarray
    ask_size: np.ndarray
    has_sizes: bool = True


@dataclass
class DayStats:
    """Samples of each metric for one source (possibly several days pooled)."""

    name: str
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    trades_per_day: float = 0.0
    off_exchange_share: float | None = None  # of share volume; None when the source has no TRF prints

    def quantiles(self, metric: str) -> np.ndarray | None:
        x = self.samples.get(metric)
        if x is None or x.size == 0:
            return None
        return np.quantile(x, QUANTILES)


def in_session(ts: np.ndarray) -> np.ndarray:
    s = seconds_since_midnight_et(ts)
    return (s >= OPEN_S) & (s < CLOSE_S)


def touch_from_quotes(events: np.ndarray) -> Touch:
    """NBBO series from KIND_QUOTE pairs (bid then ask of one update share ts and seq)."""
    q = events[events["kind"] == ev.KIND_QUOTE]
    b = q[q["side"] == ev.SIDE_BID]
    a = q[q["side"] == ev.SIDE_ASK]
    ts = np.union1d(b["ts_event"], a["ts_event"])
    ib = np.searchsorted(b["ts_event"], ts, side="right") - 1
    ia = np.searchsorted(a["ts_event"], ts, side="right") - 1
    ok = (ib >= 0) & (ia >= 0)
    ts, ib, ia = ts[ok], ib[ok], ia[ok]
    sizes = bool((b["size"] > 0).any()) and not bool((b["flags"] & ev.FLAG_FROM_TRADE).all())
    return Touch(ts, b["price"][ib], b["size"][ib], a["price"][ia], a["size"][ia], sizes)


def touch_from_lobster_book(events: np.ndarray, book: np.ndarray) -> Touch:
    """NBBO series from a LOBSTER orderbook file aligned with its message events by row (``seq``)."""
    seqs, first = np.unique(events["seq"], return_index=True)
    if seqs.shape[0] != book.shape[0]:
        raise ValueError(f"LOBSTER orderbook has {book.shape[0]} rows but the message file gave "
                         f"{seqs.shape[0]} messages; they must pair row by row")
    ts = events["ts_event"][first]
    ask, asz, bid, bsz = book[:, 0], book[:, 1], book[:, 2], book[:, 3]
    empty_b = bid <= -9_999_999_999 + 1
    empty_a = ask >= 9_999_999_999 - 1
    bid = np.where(empty_b, 0, bid)
    ask = np.where(empty_a, 0, ask)
    return Touch(ts, bid, np.where(empty_b, 0, bsz), ask, np.where(empty_a, 0, asz), True)


def sample_touch(touch: Touch, days: list[int]) -> dict[str, np.ndarray]:
    """Spread and touch depth at every whole second of each day's regular session."""
    sp_bps, sp_c, depth = [], [], []
    for d0 in days:  # d0: ns of ET midnight
        grid = d0 + np.arange(int(OPEN_S), int(CLOSE_S), dtype=np.int64) * NS
        i = np.searchsorted(touch.ts, grid, side="right") - 1
        ok = i >= 0
        i = i[ok]
        b, a = touch.bid[i], touch.ask[i]
        good = (b > 0) & (a > b)
        b, a = b[good], a[good]
        mid = 0.5 * (a + b)
        sp_bps.append((a - b) / mid * 1e4)
        sp_c.append((a - b) / 100.0)
        if touch.has_sizes:
            depth.append(np.concatenate([touch.bid_size[i][good], touch.ask_size[i][good]]))
    out = {"spread_bps": np.concatenate(sp_bps) if sp_bps else np.zeros(0),
           "spread_cents": np.concatenate(sp_c) if sp_c else np.zeros(0)}
    if touch.has_sizes and depth:
        out["touch_depth"] = np.concatenate(depth).astype(np.float64)
    return out


def day_midnights(ts: np.ndarray) -> list[int]:
    from quantedge.timeutil import et_dates, et_midnight_ns

    return [et_midnight_ns(dt.date(d // 10000, d // 100 % 100, d % 100)) for d in np.unique(et_dates(ts))]


def stats_from_events(name: str, events: np.ndarray, touch: Touch | None = None) -> DayStats:
    """Session statistics of one source's events (one or more days, one symbol)."""
    tr = events[(events["kind"] == ev.KIND_TRADE) & in_session(events["ts_event"])]
    tr = tr[(tr["conditions"] & (ev.COND_CANCEL_CORRECTION | ev.COND_CROSS)) == 0]
    days = day_midnights(tr["ts_event"]) if tr.shape[0] else []
    touch = touch if touch is not None else touch_from_quotes(events)
    s = DayStats(name)
    s.samples.update(sample_touch(touch, days))
    s.samples["trade_size"] = tr["size"].astype(np.float64)
    gaps = []
    for d0 in days:
        t = np.sort(tr["ts_event"][(tr["ts_event"] >= d0) & (tr["ts_event"] < d0 + 86400 * NS)])
        gaps.append(np.diff(t) / 1e6)
    s.samples["inter_arrival_ms"] = np.concatenate(gaps) if gaps else np.zeros(0)
    s.trades_per_day = tr.shape[0] / max(1, len(days))
    off = (tr["conditions"] & ev.COND_OFF_EXCHANGE) != 0
    if off.any():
        s.off_exchange_share = float(tr["size"][off].sum() / max(1, tr["size"].sum()))
    return s


def pool(name: str, parts: list[DayStats]) -> DayStats:
    """Pool several sources (e.g. simulated symbol-days) into one row of the table."""
    out = DayStats(name)
    for m, _ in METRICS:
        xs = [p.samples[m] for p in parts if m in p.samples]
        if xs:
            out.samples[m] = np.concatenate(xs)
    out.trades_per_day = float(np.mean([p.trades_per_day for p in parts])) if parts else 0.0
    shares = [p.off_exchange_share for p in parts if p.off_exchange_share is not None]
    out.off_exchange_share = float(np.mean(shares)) if shares else None
    return out


# ----------------------------------------------------------------------------------- real sources
def nept_stats(path: str | Path, date: str | None = "2021-03-01") -> DayStats:
    """Statistics of the IQFeed NEPT tick file (one day, or all days when ``date`` is None)."""
    from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks
    from quantedge.catalog.symbols import NameTable

    events, report = read_iqfeed_ticks(Path(path), NameTable())
    if events.shape[0] == 0:
        raise ValueError(f"{path}: no events read ({report.rows_quarantined} rows quarantined)")
    sym = Path(path).name.split("_")[0]
    if date is not None:
        from quantedge.timeutil import et_dates

        keep = et_dates(events["ts_event"]) == int(date.replace("-", ""))
        if not keep.any():
            raise ValueError(f"{path}: no events on {date}")
        events = events[keep]
    return stats_from_events(f"{sym} {date or 'all days'} (IQFeed, real)", events)


def lobster_stats(path: str | Path) -> DayStats:
    """Statistics of one LOBSTER sample zip (messages for prints, orderbook file for the touch)."""
    from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook
    from quantedge.catalog.symbols import NameTable

    files = lobster_files(path)
    if len(files) != 1:
        raise ValueError(f"{path}: expected one LOBSTER message/orderbook pair, found {len(files)}")
    f = files[0]
    events, _ = read_lobster(f.message, NameTable(), date=f.date, symbol=f.symbol)
    book = read_lobster_orderbook(f.orderbook)
    touch = touch_from_lobster_book(events, book)
    return stats_from_events(f"{f.symbol} {f.date.isoformat()} (LOBSTER, real)", events, touch)


def sim_stats(regime: str, n_symbols: int = 4, seed: int = 1, date: dt.date = dt.date(2024, 1, 2),
              first_index: int = 0) -> DayStats:
    """Pooled statistics of ``n_symbols`` simulated days of one regime (with their episodes)."""
    from quantedge.synth.generate import simulate_symbol

    parts = []
    for i in range(first_index, first_index + n_symbols):
        day = simulate_symbol(seed, i, regime, [date], 0)[0]
        parts.append(stats_from_events(day.symbol, day.events))
    return pool(f"simulated {regime} ({n_symbols} symbol-days)", parts)


# ----------------------------------------------------------------------------------- table
def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def compare_table(rows: list[DayStats]) -> str:
    """Markdown: one block per metric with each source's quantiles, then volume facts."""
    qh = " | ".join(f"p{int(q * 100)}" for q in QUANTILES)
    lines = [f"| metric | source | n | {qh} |", "|---|---|---:|" + "---:|" * len(QUANTILES)]
    for m, label in METRICS:
        for r in rows:
            q = r.quantiles(m)
            n = r.samples.get(m, np.zeros(0)).size
            cells = " | ".join(_fmt(v) for v in q) if q is not None else " | ".join("n/a" for _ in QUANTILES)
            lines.append(f"| {label} | {r.name} | {n:,} | {cells} |")
    lines.append("")
    lines.append("| source | prints per day | off-exchange share of volume |")
    lines.append("|---|---:|---:|")
    for r in rows:
        share = ("n/a (no TRF prints in source)" if r.off_exchange_share is None
                 else f"{r.off_exchange_share:.0%}")
        lines.append(f"| {r.name} | {r.trades_per_day:,.0f} | {share} |")
    return "\n".join(lines) + "\n"
