"""Export catalog events to the project's CSV schemas (L2 / Trades / Quotes, one file per symbol-day).

The files are the inverse of :func:`quantedge.catalog.importers.csv_schema.read_project_csv`: for a
catalog day built by this project's importers, importing the exported files gives back the same
events.  What the schemas cannot carry (ns precision, observed ts_recv, trade aggressor side,
COND_HIDDEN) is reported with a warning rather than dropped silently; see
docs/formats-iqfeed-and-csv.md.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np

from quantedge.catalog.importers.csv_schema import L2_COLUMNS, QUOTES_COLUMNS, TRADES_COLUMNS
from quantedge.catalog.symbols import NameTable
from quantedge.events import (
    ACTION_ADD,
    ACTION_DELETE,
    FLAG_FROM_TRADE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_TS_RECV_MODELED,
    KIND_DEPTH,
    KIND_QUOTE,
    KIND_TRADE,
    SIDE_ASK,
    SIDE_BID,
)
from quantedge.feeds.iqfeed.conditions import UNREPRESENTABLE_BITS, conditions_to_hex
from quantedge.timeutil import ET, NS, et_dates


def _et_text(ns: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` US/Eastern for ns UTC (vectorized; one zone lookup per hour)."""
    if ns.size == 0:
        return np.zeros(0, "U26")
    hours = ns // (3600 * NS)
    uh, inv = np.unique(hours, return_inverse=True)
    offs = np.array([int(dt.datetime.fromtimestamp(int(h) * 3600, tz=ET).utcoffset().total_seconds())  # type: ignore[union-attr]
                     for h in uh], np.int64) * NS
    local = ((ns + offs[inv]) // 1000).astype("datetime64[us]")
    return np.char.replace(np.datetime_as_string(local, unit="us"), "T", " ")


def _price_text(p: np.ndarray) -> np.ndarray:
    if p.size == 0:
        return np.zeros(p.shape, "U1")
    a = np.abs(p)
    txt = np.char.add(np.char.add((a // 10_000).astype(str), "."), np.char.zfill((a % 10_000).astype(str), 4))
    return np.where(p < 0, np.char.add("-", txt), txt)


def _join(cols: list[np.ndarray]) -> list[str]:
    line = cols[0].astype(str)
    for c in cols[1:]:
        line = np.char.add(np.char.add(line, ","), c.astype(str))
    return line.tolist()


def _write(path: Path, header: list[str], lines: list[str]) -> None:
    with path.open("w", encoding="ascii", newline="\n") as f:
        f.write(",".join(header) + "\n")
        if lines:
            f.write("\n".join(lines) + "\n")


def _trades(ev: np.ndarray, sym_name: str) -> list[str]:
    """Trade rows; BidPrice/AskPrice = the latest FLAG_FROM_TRADE quote pair at or before each trade."""
    n = ev.shape[0]
    idx = np.arange(n)
    ft = ((ev["kind"] == KIND_QUOTE) & (ev["flags"] & FLAG_FROM_TRADE != 0))
    last_bid = np.maximum.accumulate(np.where(ft & (ev["side"] == SIDE_BID), idx, -1)) if n else idx
    last_ask = np.maximum.accumulate(np.where(ft & (ev["side"] == SIDE_ASK), idx, -1)) if n else idx
    tr = np.nonzero(ev["kind"] == KIND_TRADE)[0]
    t = ev[tr]
    lb, la = last_bid[tr], last_ask[tr]
    bid = np.where(lb >= 0, _price_text(ev["price"][np.maximum(lb, 0)]), "")
    ask = np.where(la >= 0, _price_text(ev["price"][np.maximum(la, 0)]), "")
    uc, inv = np.unique(np.stack([t["conditions"].astype(np.int64), t["venue"].astype(np.int64)], 1)
                        if tr.size else np.zeros((0, 2), np.int64), axis=0, return_inverse=True)
    codes = np.array([conditions_to_hex(int(c), int(v)) for c, v in uc] + [""], dtype=object)[inv.ravel()]
    return _join([_et_text(t["ts_event"]), np.full(tr.size, sym_name), _price_text(t["price"]), t["size"],
                  np.cumsum(t["size"]), t["venue"], codes.astype(str), t["seq"], bid, ask])


def _quotes(ev: np.ndarray, sym_name: str) -> list[str]:
    """Standalone quote rows: a bid followed by an ask with the same time and TickID share a row."""
    q = ev[(ev["kind"] == KIND_QUOTE) & (ev["flags"] & FLAG_FROM_TRADE == 0)]
    n = q.shape[0]
    if n == 0:
        return []
    pair = np.zeros(n, bool)
    pair[:-1] = ((q["side"][:-1] == SIDE_BID) & (q["side"][1:] == SIDE_ASK)
                 & (q["ts_event"][:-1] == q["ts_event"][1:])
                 & (q["seq"][:-1] == q["seq"][1:]) & (q["flags"][:-1] & FLAG_LAST == 0))
    second = np.zeros(n, bool)
    second[1:] = pair[:-1]
    rows = np.nonzero(~second)[0]
    first = q[rows]
    is_bid = first["side"] == SIDE_BID
    has_ask = pair[rows] | ~is_bid
    ask_i = np.where(pair[rows], rows + 1, rows)
    a = q[ask_i]
    empty = np.full(rows.size, "", dtype="U1")

    def side(mask: np.ndarray, e: np.ndarray) -> list[np.ndarray]:
        return [np.where(mask, _price_text(e["price"]), empty), np.where(mask, e["size"].astype(str), empty),
                np.where(mask, e["venue"].astype(str), empty)]

    bp, bs, bv = side(is_bid, first)
    ap, asz, av = side(has_ask, a)
    return _join([_et_text(first["ts_event"]), np.full(rows.size, sym_name), bp, bs, ap, asz, bv, av,
                  first["seq"]])


def _l2(ev: np.ndarray, sym_name: str, venues: NameTable) -> list[str]:
    d = ev[ev["kind"] == KIND_DEPTH]
    if d.shape[0] == 0:
        return []
    op = np.where(d["action"] == ACTION_ADD, 0, np.where(d["action"] == ACTION_DELETE, 2, 1))
    mt = np.where(d["flags"] & FLAG_SNAPSHOT != 0, "6", np.array(["3", "4", "5"])[op])
    uv, inv = np.unique(d["venue"], return_inverse=True)
    names = []
    for v in uv:
        v = int(v)
        if v == 0:
            names.append("")
        elif v >= venues.base and v - venues.base < len(venues):
            names.append(venues.name(v))
        else:
            warnings.warn(f"depth venue id {v} is not an MMID in the venue table; written as its number",
                          stacklevel=3)
            names.append(str(v))
    level = np.where(d["level"] >= 0, d["level"].astype(str), "")
    mmid = np.array(names, dtype=object)[inv].astype(str)
    return _join([mt, np.full(d.shape[0], sym_name), level, mmid, op,
                  np.where(d["side"] == SIDE_BID, 1, 0), _price_text(d["price"]), d["size"], d["seq"],
                  _et_text(d["ts_event"])])


def _warn_losses(ev: np.ndarray) -> None:
    lost = []
    if (ev["ts_event"] % 1000 != 0).any():
        lost.append("sub-microsecond timestamps (truncated to µs)")
    if ((ev["flags"] & FLAG_TS_RECV_MODELED == 0) & (ev["ts_recv"] != ev["ts_event"])).any():
        lost.append("observed ts_recv (re-import models ts_recv = ts_event)")
    if ((ev["kind"] == KIND_TRADE) & (ev["side"] != 0)).any():
        lost.append("trade aggressor side (no Trades column carries it)")
    if (ev["conditions"] & np.uint32(UNREPRESENTABLE_BITS) != 0).any():
        lost.append("condition bits without an IQFeed code (e.g. hidden)")
    other = ~np.isin(ev["kind"], [KIND_DEPTH, KIND_QUOTE, KIND_TRADE])
    if other.any():
        lost.append(f"{int(other.sum())} events of kinds the schemas do not hold (clear/status/order)")
    if lost:
        warnings.warn("project CSV export cannot carry: " + "; ".join(lost), stacklevel=3)


def export_project_csv(events: np.ndarray, symbols: NameTable, venues: NameTable, out_dir: str | Path
                       ) -> list[Path]:
    """Write ``SYM_L2_YYYYMMDD.csv``, ``SYM_Trades_...`` and ``SYM_Quotes_...`` per symbol-day present.

    Days are US/Eastern dates of ``ts_event``; rows keep the input order within a file.  TotalVolume
    is the running sum of trade sizes of that symbol-day.  Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if events.shape[0] == 0:
        return []
    _warn_losses(events)
    days = et_dates(events["ts_event"])
    keys = np.unique(np.stack([events["symbol"].astype(np.int64), days], 1), axis=0)
    written: list[Path] = []
    for sym, day in keys:
        ev = events[(events["symbol"] == sym) & (days == day)]
        name = symbols.name(int(sym))
        stem = name.replace("/", "-").replace("\\", "-")
        for kind, cols, lines in (
            ("L2", L2_COLUMNS, _l2(ev, name, venues)),
            ("Trades", TRADES_COLUMNS, _trades(ev, name)),
            ("Quotes", QUOTES_COLUMNS, _quotes(ev, name)),
        ):
            path = out / f"{stem}_{kind}_{int(day)}.csv"
            _write(path, cols, lines)
            written.append(path)
    return written
