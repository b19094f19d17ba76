"""One row per symbol-day: what the signals saw and what the price did (docs/research.md).

The multi-day tracker and the pre-gap analyzer both start from this table.  It is built in one pass
over the catalog, day after day through one books -> features -> signals pipeline, so the baselines
(1 h spread, volume per unit of mid change, ...) carry from one day into the next as they do in a
scanner left running; each symbol's daily aggregates come from the dense per-second signal scores
and from the day's regular-session prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantedge import events as ev
from quantedge.catalog.store import Catalog
from quantedge.signals.config import SignalConfig
from quantedge.signals.run import BOOK_EVENTS, SignalPipeline
from quantedge.signals.types import SIGNAL_NAMES
from quantedge.timeutil import NS, et_midnight_ns, seconds_since_midnight_et
from quantedge.venues import off_exchange_mask

#: the regular session, seconds after ET midnight
OPEN_S, CLOSE_S = 9.5 * 3600, 16 * 3600
#: the opening auction's print is looked for in the session's first minutes (a later opening-coded
#: print is a reopening after a halt, not the day's open)
OPENING_CROSS_S = OPEN_S + 600
#: the closing auction prints just after 16:00; its print is looked for until then
CLOSING_CROSS_S = CLOSE_S + 300
#: "last hour" aggregates cover the regular session's final hour
LAST_HOUR_S = 15 * 3600
#: prints whose price is not a current market price (not used for open/high/low/close)
NOT_MARKET = ev.COND_OUT_OF_SEQUENCE | ev.COND_AVERAGE_PRICE | ev.COND_CANCEL_CORRECTION
SIGNALS = tuple(SIGNAL_NAMES[k] for k in sorted(SIGNAL_NAMES))  # column k = SIG_* - 1


def symbol_kinds(cat: Catalog, symbols: list[str] | None, start: dt.date,
                 end: dt.date) -> dict[str, set[str]]:
    """The event kinds (catalog partition kinds) each symbol has in the range."""
    kinds: dict[str, set[str]] = {}
    for p in cat.partitions(symbols=symbols, start=start, end=end):
        kinds.setdefault(p.symbol, set()).add(p.kind)
    return kinds


def mode_groups(kinds: dict[str, set[str]], mode: str) -> dict[str, list[str]]:
    """Symbols by the book mode that runs them (one pipeline per mode): ``auto`` groups the symbols
    by the book their data supports (orders: l3, else depth: l2, else nbbo); an explicit mode takes
    them all, and symbols without the events it builds books from are an error, not zero signals."""
    def has(sym: str, m: str) -> bool:
        return ev.KIND_NAMES[BOOK_EVENTS[m][0]] in kinds[sym]

    if mode == "auto":
        by_mode: dict[str, list[str]] = {}
        for sym in sorted(kinds):
            by_mode.setdefault(next((m for m in BOOK_EVENTS if has(sym, m)), "nbbo"), []).append(sym)
        return by_mode
    bad = [s for s in sorted(kinds) if mode in BOOK_EVENTS and not has(s, mode)]
    if bad:
        raise ValueError(f"--mode {mode} builds books from {BOOK_EVENTS[mode][1]} events and "
                         f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} has none: choose the mode "
                         "of the data (or --mode auto)")
    return {mode: sorted(kinds)}


@dataclass
class DailyTable:
    """Columns of equal length, one row per (day, symbol) that had events; NaN where a day had no
    regular-session print (prices) or no scored second (signal maxima)."""

    columns: dict[str, np.ndarray]
    mode: str
    active_score: float

    def __len__(self) -> int:
        return int(self.columns["symbol"].shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def write_csv(self, path: str | Path) -> Path:
        names = list(self.columns)
        rows = ({c: self.columns[c][i] for c in names} for i in range(len(self)))
        return write_csv(rows, names, Path(path))


def fmt_cell(v: object, digits: int = 4) -> str:
    """A cell: floats to ``digits`` significant digits (NaN: empty), the rest as text."""
    if isinstance(v, float | np.floating):
        return "" if np.isnan(v) else f"{float(v):.{digits}g}"
    return str(v)


def write_csv(rows: Iterable[dict], columns: Sequence[str], path: Path) -> Path:
    """Rows as CSV with full precision (prices and gaps recomputable from the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(",".join(columns) + "\n")
        for r in rows:
            f.write(",".join(fmt_cell(r[c], 10) for c in columns) + "\n")
    return path


class _Accumulator:
    """Per (day, symbol) sums, extremes, firsts and lasts, filled batch by batch."""

    def __init__(self, n_days: int, n_sym: int) -> None:
        shape = (n_days, n_sym)
        k = len(SIGNALS)
        self.events = np.zeros(shape, np.int64)
        self.trades = np.zeros(shape, np.int64)
        self.volume = np.zeros(shape)
        self.notional = np.zeros(shape)
        self.off_volume = np.zeros(shape)
        self.open = np.full(shape, np.nan)
        self.close = np.full(shape, np.nan)
        self.open_cross = np.full(shape, np.nan)  # the opening auction's print, when the day has one
        self.close_cross = np.full(shape, np.nan)
        self.high = np.full(shape, -np.inf)
        self.low = np.full(shape, np.inf)
        self.rows = np.zeros(shape, np.int64)
        self.max_score = np.full((k, *shape), -np.inf)
        self.triggers = np.zeros((k, *shape), np.int64)
        self.active_s = np.zeros((k, *shape), np.int64)
        self.last_hour_max = np.full((k, *shape), -np.inf)

    def add_events(self, day: np.ndarray, sym: np.ndarray, batch: np.ndarray) -> None:
        n_sym = self.events.shape[1]
        key = day * n_sym + sym
        self.events.ravel()[:] += np.bincount(key, minlength=self.events.size)
        sec = seconds_since_midnight_et(batch["ts_event"])
        cond = batch["conditions"]
        good = ((batch["kind"] == ev.KIND_TRADE) & (batch["size"] > 0) & (batch["price"] > 0)
                & ((cond & NOT_MARKET) == 0) & (sec >= OPEN_S))
        closing = good & ((cond & ev.COND_CLOSING) != 0) & (sec < CLOSING_CROSS_S)
        _first(self.open_cross, key, batch, good & ((cond & ev.COND_OPENING) != 0) & (sec < OPENING_CROSS_S))
        _last(self.close_cross, key, batch, closing)
        tr = good & ((sec < CLOSE_S) | closing)  # the session's prints and its closing auction
        if not tr.any():
            return
        k = key[tr]
        px = batch["price"][tr] / ev.PRICE_SCALE
        q = batch["size"][tr].astype(np.float64)
        off = ((cond[tr] & ev.COND_OFF_EXCHANGE) != 0) | off_exchange_mask(batch["venue"][tr])
        m = self.events.size
        self.trades.ravel()[:] += np.bincount(k, minlength=m)
        self.volume.ravel()[:] += np.bincount(k, weights=q, minlength=m)
        self.notional.ravel()[:] += np.bincount(k, weights=q * px, minlength=m)
        self.off_volume.ravel()[:] += np.bincount(k, weights=q * off, minlength=m)
        np.maximum.at(self.high.ravel(), k, px)
        np.minimum.at(self.low.ravel(), k, px)
        _first(self.open, key, batch, tr)
        _last(self.close, key, batch, tr)

    def add_scores(self, day: np.ndarray, sym: np.ndarray, ts: np.ndarray, score: np.ndarray,
                   trig: np.ndarray, active: float) -> None:
        n_sym = self.events.shape[1]
        key = day * n_sym + sym
        m = self.events.size
        self.rows.ravel()[:] += np.bincount(key, minlength=m)
        sec = seconds_since_midnight_et(ts)
        late = (sec >= LAST_HOUR_S) & (sec < CLOSE_S)
        for k in range(len(SIGNALS)):
            s = score[:, k]
            np.maximum.at(self.max_score[k].ravel(), key, s)
            self.triggers[k].ravel()[:] += np.bincount(key, weights=trig[:, k], minlength=m).astype(np.int64)
            self.active_s[k].ravel()[:] += np.bincount(key, weights=s >= active, minlength=m).astype(np.int64)
            if late.any():
                np.maximum.at(self.last_hour_max[k].ravel(), key[late], s[late])


def _first(dst: np.ndarray, key: np.ndarray, batch: np.ndarray, sel: np.ndarray) -> None:
    """dst[key] = the price of the first selected print of each key not set by an earlier batch."""
    if not sel.any():
        return
    k = key[sel]
    uk, first = np.unique(k, return_index=True)
    flat = dst.ravel()
    unset = np.isnan(flat[uk])
    flat[uk[unset]] = batch["price"][sel][first[unset]] / ev.PRICE_SCALE


def _last(dst: np.ndarray, key: np.ndarray, batch: np.ndarray, sel: np.ndarray) -> None:
    """dst[key] = the price of the last selected print of each key (later batches overwrite)."""
    if not sel.any():
        return
    k = key[sel]
    last = k.shape[0] - 1 - np.unique(k[::-1], return_index=True)[1]
    dst.ravel()[k[last]] = batch["price"][sel][last] / ev.PRICE_SCALE


def daily_table(catalog: str | Path, start: dt.date, end: dt.date, symbols: list[str] | None = None,
                mode: str = "auto", config: SignalConfig | None = None, active_score: float | None = None,
                batch_rows: int = 1 << 20, progress=None) -> DailyTable:
    """Run the signal pipeline over ``[start, end]`` of the catalog and aggregate per symbol-day.

    ``active_score``: a second counts as active for a signal when its score is at least this
    (default: the composite's ``on_score``); ``progress(events_done)`` is called per batch."""
    cat = Catalog(catalog)
    parts = cat.partitions(symbols=symbols, start=start, end=end)
    if not parts:
        sel = f" for {', '.join(symbols)}" if symbols else ""
        raise ValueError(f"{catalog}: no data from {start} to {end}{sel}")
    names = sorted({p.symbol for p in parts})
    missing = sorted(set(symbols or ()) - set(names))
    if missing:
        raise ValueError(f"{catalog}: no data from {start} to {end} for {', '.join(missing)}")
    groups = mode_groups(symbol_kinds(cat, names, start, end), mode)
    if len(groups) > 1:  # e.g. LOBSTER symbols (orders) beside IQFeed tick symbols (quotes): a run each
        return _merge([daily_table(catalog, start, end, syms, m, config, active_score, batch_rows, progress)
                       for m, syms in groups.items()])
    mode = next(iter(groups))
    dates = sorted({p.date for p in parts})
    unnamed = [n for n in names if cat.symbols.get(n) is None]
    if unnamed:
        raise ValueError(f"{catalog}: symbols.json does not name {', '.join(unnamed)} (partitions copied in "
                         "from another catalog? re-import them)")
    config = config or SignalConfig()
    active = float(config["composite.on_score"] if active_score is None else active_score)
    # catalog symbol ids -> 0..n-1 (the pipeline's state is dense in symbols)
    ids = np.array([cat.symbols.get(n) for n in names], np.int64)
    dense = np.full(int(ids.max()) + 1, -1, np.int64)
    dense[ids] = np.arange(len(names))
    bounds = np.array([et_midnight_ns(d) for d in dates] + [et_midnight_ns(dates[-1]) + 86_400 * NS])
    acc = _Accumulator(len(dates), len(names))
    pipe = SignalPipeline(len(names), mode, config, device="cpu")
    done = 0
    for batch in cat.stream(symbols=names, start=start, end=end, batch_rows=batch_rows):
        b = batch.copy()
        sid = b["symbol"].astype(np.int64)
        if (sid > ids.max()).any() or (dense[np.minimum(sid, ids.max())] < 0).any():
            raise ValueError(f"{catalog}: events carry symbol ids outside the selection's "
                             "(a partition copied in from another catalog?): re-import the data")
        b["symbol"] = dense[sid]
        day = np.clip(np.searchsorted(bounds, b["ts_event"], side="right") - 1, 0, len(dates) - 1)
        acc.add_events(day, b["symbol"].astype(np.int64), b)
        out = pipe.step(b)
        if len(out):
            ok = (out.symbol >= 0) & (out.score[:, 0] >= 0)  # -1: a row of an unknown symbol
            ts, sy = out.ts[ok], out.symbol[ok].astype(np.int64)
            od = np.clip(np.searchsorted(bounds, ts, side="right") - 1, 0, len(dates) - 1)
            acc.add_scores(od, sy, ts, out.score[ok], out.trig[ok], active)
        done += b.shape[0]
        if progress is not None:
            progress(done)
    _check_counts(cat, names, dates, acc)
    return _table(acc, names, dates, mode, active)


def _merge(tables: list[DailyTable]) -> DailyTable:
    """Daily tables of disjoint symbol groups as one, sorted by date then symbol."""
    cols = {k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns}
    order = np.lexsort((cols["symbol"].astype(str), cols["date"].astype(str)))
    return DailyTable({k: v[order] for k, v in cols.items()}, "+".join(t.mode for t in tables),
                      tables[0].active_score)


def _check_counts(cat: Catalog, names: list[str], dates: list[dt.date], acc: _Accumulator) -> None:
    """Each symbol-day counted exactly the rows its partitions hold: events are attributed by the
    symbol id stored in them, so a partition copied in from another catalog (other ids) would
    credit its events to another symbol silently."""
    import pyarrow.parquet as pq

    col = {n: i for i, n in enumerate(names)}
    row = {d: i for i, d in enumerate(dates)}
    want = np.zeros_like(acc.events)
    for p in cat.partitions(symbols=names, start=dates[0], end=dates[-1]):
        want[row[p.date], col[p.symbol]] += sum(pq.ParquetFile(f).metadata.num_rows for f in p.files())
    bad = np.argwhere(want != acc.events)
    if bad.size:
        d, s = bad[0]
        raise ValueError(f"{cat.root}: {names[s]} {dates[d]} holds {want[d, s]:,} events but "
                         f"{acc.events[d, s]:,} carry its symbol id (partitions copied in from another "
                         "catalog, or events dated another day?): re-import the data")


def _table(acc: _Accumulator, names: list[str], dates: list[dt.date], mode: str, active: float) -> DailyTable:
    d_idx, s_idx = np.nonzero(acc.events > 0)  # day-major: rows sorted by date, then symbol
    cols: dict[str, np.ndarray] = {
        "date": np.array([dates[i].isoformat() for i in d_idx], dtype=object),
        "symbol": np.array([names[i] for i in s_idx], dtype=object),
        "events": acc.events[d_idx, s_idx],
        "trades": acc.trades[d_idx, s_idx],
        "volume": acc.volume[d_idx, s_idx],
    }
    vol = cols["volume"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["vwap"] = np.where(vol > 0, acc.notional[d_idx, s_idx] / vol, np.nan)
        cols["off_exchange_share"] = np.where(vol > 0, acc.off_volume[d_idx, s_idx] / vol, np.nan)
    has = acc.trades[d_idx, s_idx] > 0
    ox, cx = acc.open_cross[d_idx, s_idx], acc.close_cross[d_idx, s_idx]
    cols["open"] = np.where(np.isfinite(ox), ox, acc.open[d_idx, s_idx])
    cols["high"] = np.where(has, acc.high[d_idx, s_idx], np.nan)
    cols["low"] = np.where(has, acc.low[d_idx, s_idx], np.nan)
    cols["close"] = np.where(np.isfinite(cx), cx, acc.close[d_idx, s_idx])
    rng = cols["high"] - cols["low"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["return"] = cols["close"] / cols["open"] - 1.0
        cols["close_location"] = np.where(rng > 0, (cols["close"] - cols["low"]) / rng, np.nan)
    cols["scored_s"] = acc.rows[d_idx, s_idx]
    for k, name in enumerate(SIGNALS):
        mx = acc.max_score[k][d_idx, s_idx]
        cols[f"{name}_max"] = np.where(np.isfinite(mx), mx, np.nan)
        cols[f"{name}_triggers"] = acc.triggers[k][d_idx, s_idx]
        cols[f"{name}_active_s"] = acc.active_s[k][d_idx, s_idx]
    lh = acc.last_hour_max[len(SIGNALS) - 1][d_idx, s_idx]
    cols["composite_last_hour_max"] = np.where(np.isfinite(lh), lh, np.nan)
    return DailyTable(cols, mode, active)


__all__ = ["DailyTable", "daily_table", "symbol_kinds", "mode_groups", "write_csv", "fmt_cell", "SIGNALS"]
