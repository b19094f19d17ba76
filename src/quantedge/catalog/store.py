"""The Parquet catalog: market events at rest, partitioned by kind / ET date / symbol.

Layout (see docs/catalog.md)::

    <root>/symbols.json                     symbol table (name <-> int32 id, append-only)
    <root>/venues.json                      Level 2 market-maker ids (ids from venues.MMID_BASE)
    <root>/data/kind=<k>/date=<YYYY-MM-DD>/symbol=<S>/part-<source>.parquet
    <root>/groundtruth/<name>/date=<d>/symbol=<S>/<file>.parquet   e.g. LOBSTER orderbook rows
    <root>/imports.jsonl                    one import report per line (what was read/kept/quarantined)
    <root>/quarantine/<source>.jsonl        quarantined records with file/line/field/reason

Every part file is sorted in merge order and holds whole EVENT_DTYPE columns, so a part is
self-describing and a symbol-day read is a concatenation plus a k-way merge.  A part is named after
the source it came from, so importing the same source again replaces it instead of doubling data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from quantedge.catalog.merge import (
    merge_pool_into,
    merge_sorted_runs,
    sort_events,
    take_events,
)
from quantedge.catalog.symbols import NameTable
from quantedge.events import EVENT_DTYPE, KIND_BY_NAME, KIND_NAMES
from quantedge.timeutil import et_dates
from quantedge.venues import MMID_BASE

ARROW_SCHEMA = pa.schema(
    [(name, pa.from_numpy_dtype(EVENT_DTYPE.fields[name][0])) for name in EVENT_DTYPE.names]
)
ROW_GROUP_ROWS = 1 << 16
#: Parquet codec.  LZ4 decodes several times faster than zstd for ~20% more disk (BENCHMARKS.md).
COMPRESSION = "lz4"


@dataclass(frozen=True)
class Partition:
    kind: str
    date: dt.date
    symbol: str
    path: Path  # the partition directory

    def files(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet"))


def _date_str(d: dt.date) -> str:
    return d.isoformat()


def _to_date(x: dt.date | str | int | None) -> dt.date | None:
    if x is None or isinstance(x, dt.date):
        return x
    s = str(x)
    if len(s) == 8 and s.isdigit():
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return dt.date.fromisoformat(s)


@njit(cache=True)
def _fill_events(out, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13) -> None:
    # one pass writing whole 64-byte records: ~3x faster than 14 strided column assignments
    for i in range(out.shape[0]):
        r = out[i]
        r.ts_event = a0[i]
        r.ts_recv = a1[i]
        r.seq = a2[i]
        r.order_id = a3[i]
        r.price = a4[i]
        r.size = a5[i]
        r.symbol = a6[i]
        r.conditions = a7[i]
        r.venue = a8[i]
        r.level = a9[i]
        r.kind = a10[i]
        r.side = a11[i]
        r.action = a12[i]
        r.flags = a13[i]


def _arrow_columns(tbl: pa.Table | pa.RecordBatch) -> list[np.ndarray]:
    cols = []
    for name in EVENT_DTYPE.names:
        col = tbl.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        cols.append(col.to_numpy(zero_copy_only=False))
    return cols


def table_to_events(tbl: pa.Table | pa.RecordBatch, out: np.ndarray | None = None) -> np.ndarray:
    """Arrow columns -> EVENT_DTYPE array (zero-copy column views, one compiled record pass);
    into ``out`` (exactly ``num_rows`` long) when given."""
    if out is None:
        out = np.empty(tbl.num_rows, EVENT_DTYPE)
    if tbl.num_rows:
        _fill_events(out, *_arrow_columns(tbl))
    return out


def events_to_table(events: np.ndarray) -> pa.Table:
    return pa.Table.from_arrays([pa.array(np.ascontiguousarray(events[n])) for n in EVENT_DTYPE.names],
                                schema=ARROW_SCHEMA)


def _atomic_write_parquet(tbl: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(tbl, tmp, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS,
                   write_statistics=["ts_recv"], use_dictionary=["symbol", "kind", "venue", "side",
                                                                 "action", "flags", "conditions", "level"])
    os.replace(tmp, path)


class Catalog:
    """A directory of Parquet partitions plus the symbol table; see the module docstring."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self.symbols = NameTable.load(self.root / "symbols.json")
        self.venues = NameTable.load(self.root / "venues.json", base=MMID_BASE)

    # ------------------------------------------------------------------ writing
    def save_tables(self) -> None:
        self.symbols.save(self.root / "symbols.json")
        if len(self.venues):
            self.venues.save(self.root / "venues.json")

    def _partition_dir(self, kind: str, date: dt.date, symbol: str) -> Path:
        sym = quote(symbol, safe="")
        return self.root / "data" / f"kind={kind}" / f"date={_date_str(date)}" / f"symbol={sym}"

    def write(self, events: np.ndarray, source: str = "events") -> int:
        """Partition ``events`` by kind / ET date / symbol and write one part per partition.

        ``source`` names where the events came from (e.g. the imported file); writing the same
        source again replaces its parts.  Returns the number of events written.
        """
        if events.dtype != EVENT_DTYPE:
            raise TypeError("events must have quantedge.events.EVENT_DTYPE")
        if events.shape[0] == 0:
            self.save_tables()
            return 0
        part = "part-" + hashlib.sha1(source.encode()).hexdigest()[:16] + ".parquet"
        dates = et_dates(events["ts_event"])
        order = np.lexsort((dates, events["symbol"], events["kind"]))
        k = events["kind"][order]
        s = events["symbol"][order]
        d = dates[order]
        brk = np.flatnonzero((k[1:] != k[:-1]) | (s[1:] != s[:-1]) | (d[1:] != d[:-1])) + 1
        bounds = np.concatenate(([0], brk, [order.shape[0]]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            idx = np.sort(order[a:b])  # keep source order inside the partition before sorting
            chunk = sort_events(take_events(events, idx))
            kind = KIND_NAMES.get(int(k[a]), f"k{int(k[a])}")
            di = int(d[a])
            date = dt.date(di // 10000, di // 100 % 100, di % 100)
            sym = self.symbols.name(int(s[a]))
            _atomic_write_parquet(events_to_table(chunk), self._partition_dir(kind, date, sym) / part)
        self.save_tables()
        return int(events.shape[0])

    def record_import(self, report: dict) -> None:
        """Append one import report (dict) to imports.jsonl."""
        with (self.root / "imports.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(report) + "\n")

    def write_groundtruth(self, name: str, symbol: str, date: dt.date, columns: dict[str, np.ndarray],
                          file: str = "truth") -> Path:
        """Store a reference table (e.g. LOBSTER orderbook rows) beside the events it verifies."""
        path = (self.root / "groundtruth" / name / f"date={_date_str(date)}" /
                f"symbol={quote(symbol, safe='')}" / f"{file}.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(pa.table(columns), tmp, compression=COMPRESSION)
        os.replace(tmp, path)
        return path

    def read_groundtruth(self, name: str, symbol: str, date: dt.date | str, file: str = "truth") -> pa.Table:
        d = _to_date(date)
        assert d is not None
        path = (self.root / "groundtruth" / name / f"date={_date_str(d)}" /
                f"symbol={quote(symbol, safe='')}" / f"{file}.parquet")
        return pq.read_table(path)

    # ------------------------------------------------------------------ listing
    def partitions(self, symbols: Iterable[str] | None = None, start: dt.date | str | None = None,
                   end: dt.date | str | None = None, kinds: Iterable[str] | None = None) -> list[Partition]:
        """Partitions matching the filters, sorted by (date, symbol, kind rank)."""
        start_d, end_d = _to_date(start), _to_date(end)
        symset = set(symbols) if symbols is not None else None
        kindset = set(kinds) if kinds is not None else None
        out: list[Partition] = []
        data = self.root / "data"
        for kdir in sorted(data.glob("kind=*")):
            kind = kdir.name[5:]
            if kindset is not None and kind not in kindset:
                continue
            for ddir in sorted(kdir.glob("date=*")):
                date = dt.date.fromisoformat(ddir.name[5:])
                if (start_d and date < start_d) or (end_d and date > end_d):
                    continue
                for sdir in sorted(ddir.glob("symbol=*")):
                    sym = unquote(sdir.name[7:])
                    if symset is not None and sym not in symset:
                        continue
                    out.append(Partition(kind, date, sym, sdir))
        out.sort(key=lambda p: (p.date, p.symbol, KIND_BY_NAME.get(p.kind, 99)))
        return out

    def ls(self, **filters) -> list[dict]:
        """One row per partition: kind, date, symbol, parts, rows, bytes, first/last ts_recv."""
        rows = []
        for p in self.partitions(**filters):
            n = 0
            size = 0
            files = p.files()
            for f in files:
                md = pq.ParquetFile(f).metadata
                n += md.num_rows
                size += f.stat().st_size
            rows.append({"kind": p.kind, "date": p.date.isoformat(), "symbol": p.symbol,
                         "parts": len(files), "rows": n, "bytes": size})
        return rows

    def dates(self) -> list[dt.date]:
        return sorted({p.date for p in self.partitions()})

    # ------------------------------------------------------------------ reading
    def read(self, symbol: str, date: dt.date | str, kinds: Iterable[str] | None = None) -> np.ndarray:
        """All events of one symbol-day (optionally some kinds), in merge order."""
        d = _to_date(date)
        runs = []
        for p in self.partitions(symbols=[symbol], start=d, end=d, kinds=kinds):
            for f in p.files():
                runs.append(table_to_events(pq.read_table(f)))
        return merge_sorted_runs(runs)

    def stream(self, symbols: Iterable[str] | None = None, start: dt.date | str | None = None,
               end: dt.date | str | None = None, kinds: Iterable[str] | None = None,
               batch_rows: int = 1 << 20) -> Iterator[np.ndarray]:
        """Time-ordered batches over many symbols and kinds, day by day, with bounded memory.

        Batches hold exactly ``batch_rows`` events (the last one fewer) in merge order.  Within a
        day every matching part file is open and holds one decoded row group at a time in a shared
        record pool; a compiled k-way merge copies each record once from the pool into the batch and
        stops when a file's rows run out, so only that file reads its next row group.  Peak memory
        is the pool (the sum over the day's part files of their largest row group, at most
        ``ROW_GROUP_ROWS`` each) plus one batch; it does not grow with the number of days.
        """
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        parts = self.partitions(symbols=symbols, start=start, end=end, kinds=kinds)
        by_date: dict[dt.date, list[Path]] = {}
        for p in parts:
            by_date.setdefault(p.date, []).extend(p.files())
        out = np.empty(batch_rows, EVENT_DTYPE)
        n = 0
        for date in sorted(by_date):
            pool = _DayPool(by_date[date])
            for r in range(len(pool.files)):
                pool.refill(r)
            while True:
                n, dry = merge_pool_into(pool.pool, pool.head, pool.tail, pool.more, out, n)
                if n == batch_rows:
                    yield out
                    out = np.empty(batch_rows, EVENT_DTYPE)
                    n = 0
                if dry >= 0:
                    pool.refill(dry)
                elif n:
                    break  # every file of the day is merged; the batch continues with the next day
                elif not pool.buffered():
                    break
        if n:
            yield out[:n]


class _DayPool:
    """The open part files of one day and their decoded rows, in one record array.

    File ``r`` owns ``pool[base[r] : base[r] + cap[r]]`` with ``cap[r]`` its largest row group and
    holds ``pool[head[r]:tail[r]]``.  A row group is the unit of decoding (pyarrow's batch iterator
    hands back page-sized slivers at a high per-call cost), decoded straight into the pool.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = [pq.ParquetFile(f) for f in files]
        caps = np.array([max((pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)),
                             default=0) for pf in self.files], np.int64)
        self.base = np.zeros(len(files), np.int64)
        if len(files) > 1:
            self.base[1:] = np.cumsum(caps)[:-1]
        self.pool = np.empty(int(caps.sum()), EVENT_DTYPE)
        self.head = self.base.copy()
        self.tail = self.base.copy()
        self.next_group = [0] * len(files)
        self.more = np.array([pf.num_row_groups > 0 for pf in self.files], np.bool_)
        self.threads = len(files) <= 2  # decode columns in parallel only when few files are open

    def refill(self, r: int) -> None:
        """Decode file ``r``'s next non-empty row group into its (empty) slot; close it at the end."""
        pf = self.files[r]
        while self.more[r] and self.head[r] == self.tail[r]:
            g = self.next_group[r]
            tbl = pf.read_row_group(g, use_threads=self.threads)
            self.next_group[r] = g + 1
            if g + 1 >= pf.num_row_groups:
                self.more[r] = False
                pf.close()
            b = int(self.base[r])
            table_to_events(tbl, self.pool[b : b + tbl.num_rows])
            self.head[r] = b
            self.tail[r] = b + tbl.num_rows

    def buffered(self) -> bool:
        return bool((self.head < self.tail).any())


