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
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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

#: Every field is required: nullable Parquet columns carry definition levels that cost ~30 % of the
#: decode time for values that can never be null.
ARROW_SCHEMA = pa.schema(
    [pa.field(name, pa.from_numpy_dtype(EVENT_DTYPE.fields[name][0]), nullable=False)
     for name in EVENT_DTYPE.names]
)
ROW_GROUP_ROWS = 1 << 15
#: Parquet codec.  LZ4 decodes several times faster than zstd for ~20% more disk (BENCHMARKS.md).
COMPRESSION = "lz4"
#: Few distinct values per part (one symbol, a handful of kinds/venues/flags): dictionary pages.
DICTIONARY_COLUMNS = ("symbol", "kind", "venue", "side", "action", "flags", "conditions", "level")
#: Sorted or slowly moving integers: delta encoding stores them in a few bits each and decodes ~1.7x
#: faster than dictionary + LZ4 pages (BENCHMARKS.md, catalog stream).
DELTA_COLUMNS = ("ts_event", "ts_recv", "seq", "order_id", "price", "size")


@dataclass(frozen=True)
class Partition:
    kind: str
    date: dt.date
    symbol: str
    path: Path  # the partition directory

    def files(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet"))


def _part_name(source: str) -> str:
    """The part file a source writes in each of its partitions (the same source replaces it)."""
    return "part-" + hashlib.sha1(source.encode()).hexdigest()[:16] + ".parquet"


def _date_str(d: dt.date) -> str:
    return d.isoformat()


def _to_date(x: dt.date | str | int | None) -> dt.date | None:
    if x is None or isinstance(x, dt.date):
        return x
    s = str(x)
    if len(s) == 8 and s.isdigit():
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return dt.date.fromisoformat(s)


@njit(cache=True, nogil=True)
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
                   write_statistics=["ts_recv"], use_dictionary=list(DICTIONARY_COLUMNS),
                   column_encoding=dict.fromkeys(DELTA_COLUMNS, "DELTA_BINARY_PACKED"))
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
        part = _part_name(source)
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

    def remove_source(self, source: str, symbol: str, date: dt.date | str) -> int:
        """Delete the parts ``source`` wrote for one symbol-day (every kind); returns how many."""
        name = _part_name(source)
        n = 0
        for p in self.partitions(symbols=[symbol], start=date, end=date):
            f = p.path / name
            if f.exists():
                f.unlink()
                n += 1
        return n

    def record_import(self, report: dict) -> None:
        """Append one import report (dict) to imports.jsonl."""
        with (self.root / "imports.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(report) + "\n")

    def groundtruth_path(self, name: str, symbol: str, date: dt.date | str, file: str = "truth") -> Path:
        return (self.root / "groundtruth" / name / f"date={_date_str(_to_date(date))}" /
                f"symbol={quote(symbol, safe='')}" / f"{file}.parquet")

    def write_groundtruth(self, name: str, symbol: str, date: dt.date, columns: dict[str, np.ndarray],
                          file: str = "truth") -> Path:
        """Store a reference table (e.g. LOBSTER orderbook rows) beside the events it verifies."""
        path = self.groundtruth_path(name, symbol, date, file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(pa.table(columns), tmp, compression=COMPRESSION)
        os.replace(tmp, path)
        return path

    def read_groundtruth(self, name: str, symbol: str, date: dt.date | str, file: str = "truth") -> pa.Table:
        return pq.read_table(self.groundtruth_path(name, symbol, date, file))

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
               batch_rows: int = 1 << 20, decode_threads: int | None = None) -> Iterator[np.ndarray]:
        """Time-ordered batches over many symbols and kinds, day by day, with bounded memory.

        Batches hold exactly ``batch_rows`` events (the last one fewer) in merge order.  Within a
        day every matching part file is open and owns two slots of a shared record pool: the merge
        reads one while decoder threads (``decode_threads``, default one per spare core) decode the
        file's next row group into the other, so Parquet decoding runs beside the merge instead of
        stalling it.  A compiled k-way merge copies each record once from the pool into the batch and
        stops when a file's slot runs dry; the slots then swap.  Peak memory is the pool (per file its
        largest row group, plus a second slot for files of more than one row group, each at most
        ``ROW_GROUP_ROWS``) plus at most four batches (the one being filled, a prepared spare and two
        handed out, watched for reuse: see ``_Batches``); it does not grow with the number of days.
        """
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        parts = self.partitions(symbols=symbols, start=start, end=end, kinds=kinds)
        by_date: dict[dt.date, list[Path]] = {}
        for p in parts:
            by_date.setdefault(p.date, []).extend(p.files())
        n = 0
        with ThreadPoolExecutor(max_workers=decode_threads or _decode_threads(),
                                thread_name_prefix="qe-decode") as decoder, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="qe-batch") as helper:
            batches = _Batches(batch_rows, helper)
            out = batches.take()
            records = None  # the day pool's buffer, reused by the next day when large enough
            for date in sorted(by_date):
                pool = _DayPool(by_date[date], decoder, records)
                records = pool.records
                try:
                    pool.start()
                    while True:
                        n, dry = merge_pool_into(pool.pool, pool.head, pool.tail, pool.more, out, n)
                        if n == batch_rows:
                            yield out
                            batches.handed_out(out)
                            out = batches.take()
                            n = 0
                        if dry >= 0:
                            pool.refill(dry)
                        elif n or not pool.buffered():
                            break  # the day is merged; a partial batch continues with the next day
                finally:
                    pool.cancel()
        if n:
            yield out[:n]


class CatalogReadError(OSError):
    """A part file that cannot be decoded; the message names the file and row group."""


#: What a damaged or foreign part file raises while it is opened or decoded.
_PART_ERRORS = (OSError, pa.ArrowException, KeyError, ValueError, TypeError)


def _open_part(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except _PART_ERRORS as exc:
        raise CatalogReadError(f"{path}: cannot open as a Parquet part file: {exc}") from exc


def _decode_threads() -> int:
    """One decoder per core beside the merging one (at least one, at most four)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _fresh_batch(n: int) -> np.ndarray:
    """Helper thread: a new output batch with its pages already mapped (writing 64 MB of fresh
    pages costs the merging thread ~8 ms per batch in page faults otherwise)."""
    out = _aligned_events(n)
    out.view(np.uint8)[::4096] = 0
    return out


class _Batches:
    """Output batches of ``stream``.

    A batch the consumer no longer references (not the array, not a view of it, not a buffer
    export: all of these hold a reference that ``sys.getrefcount`` sees) is written again instead
    of allocating a new one, which spares the kernel zeroing 64 MB of fresh pages per batch.  A
    consumer that keeps its batches (``list(stream)``) keeps them intact: those are never reused.
    What the count cannot see is reused too: a ``weakref`` to a batch, or a raw address taken from
    it (copy what must outlive the next batch).  Fresh batches are prepared on a helper thread.
    """

    KEEP = 2  # handed-out batches watched for reuse (a plain ``for b in stream`` frees all but one)

    def __init__(self, rows: int, helper: ThreadPoolExecutor) -> None:
        self.rows = rows
        self.helper = helper
        self.watched: list[np.ndarray] = []
        self.spare = helper.submit(_fresh_batch, rows)

    def handed_out(self, batch: np.ndarray) -> None:
        self.watched.append(batch)
        if len(self.watched) > self.KEEP:
            del self.watched[0]

    def take(self) -> np.ndarray:
        for i in range(len(self.watched)):
            b = self.watched[i]
            # references: the list, ``b``, the call's argument; the buffer: ``b.base`` and the argument
            if sys.getrefcount(b) == 3 and sys.getrefcount(b.base) == 2:
                del self.watched[i]
                return b
        out = self.spare.result()
        self.spare = self.helper.submit(_fresh_batch, self.rows)
        return out


def _aligned_events(n: int) -> np.ndarray:
    """An uninitialised EVENT_DTYPE array starting on a 64-byte boundary, so no record straddles
    two cache lines (a 64-byte record at malloc's 16-byte alignment touches two lines)."""
    raw = np.empty(n * EVENT_DTYPE.itemsize + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off: off + n * EVENT_DTYPE.itemsize].view(EVENT_DTYPE)


@dataclass
class _Decode:
    """Row group ``group`` of file ``file`` into slot ``slot``: run by a decoder thread (``future``)
    or taken over by the merging thread (then ``rows`` is set there)."""

    file: int
    group: int
    slot: int
    future: Future
    rows: int = -1


class _DayPool:
    """The open part files of one day and their decoded rows, in one record array.

    File ``r`` owns one or two slots of ``pool`` (a second one only when it has more than one row
    group), each as large as its largest row group, and the merge reads ``pool[head[r]:tail[r]]``
    inside the active slot.  The file's next row group is decoded into the other slot on a decoder
    thread as soon as that slot is free (pyarrow and the compiled record fill release the GIL), so
    when the merge reports the file dry the slots usually just swap.  A row group is the unit of
    decoding (pyarrow's batch iterator hands back page-sized slivers at a high per-call cost).
    """

    def __init__(self, files: list[Path], decoder: ThreadPoolExecutor,
                 records: np.ndarray | None = None) -> None:
        self.decoder = decoder
        self.paths = files
        self.files = [_open_part(f) for f in files]
        self.groups = [[g for g in range(pf.num_row_groups) if pf.metadata.row_group(g).num_rows]
                       for pf in self.files]
        caps = [[pf.metadata.row_group(g).num_rows for g in gs] for pf, gs in zip(self.files, self.groups,
                                                                                   strict=True)]
        cap_a = np.array([max(c, default=0) for c in caps], np.int64)
        cap_b = np.array([max(c[1:], default=0) for c in caps], np.int64)
        k = len(files)
        self.slot_rows = np.stack([cap_a, cap_b], axis=1)  # rows each of a file's two slots holds
        sizes = self.slot_rows.T.ravel()  # every file's first slot, then every second slot
        self.slot = (np.cumsum(sizes) - sizes).reshape(2, k).T.copy()  # where each slot starts
        need = int(sizes.sum())
        if records is None or records.shape[0] < need:
            records = _aligned_events(need)  # (a previous day's pages are already mapped)
        self.records = records
        self.pool = records[:need]
        self.head = self.slot[:, 0].copy()
        self.tail = self.head.copy()
        self.more = np.zeros(k, np.bool_)  # a decoded or decoding row group waits in the other slot
        self.next_group = [0] * k
        self.pending: list[_Decode | None] = [None] * k
        self.queue: deque[_Decode] = deque()  # submitted jobs, oldest first, for stealing
        self.threads = k <= 2  # decode columns in parallel only when few files are open

    def _decode(self, r: int, g: int, slot: int) -> int:
        """Decoder thread: row group ``g`` of file ``r`` into slot ``slot``; returns its rows."""
        pf = self.files[r]
        b = int(self.slot[r, slot])
        room = int(self.slot_rows[r, slot])
        try:
            tbl = pf.read_row_group(g, use_threads=self.threads)
            if tbl.num_rows > room:
                raise ValueError(f"{tbl.num_rows} rows where the file's metadata says at most {room}")
            table_to_events(tbl, self.pool[b: b + tbl.num_rows])
        except _PART_ERRORS as exc:
            raise CatalogReadError(f"{self.paths[r]}: row group {g}: {exc}") from exc
        if g == self.groups[r][-1]:
            pf.close()
        return tbl.num_rows

    def _submit(self, r: int, slot: int) -> None:
        i = self.next_group[r]
        if i < len(self.groups[r]):
            g = self.groups[r][i]
            job = _Decode(r, g, slot, self.decoder.submit(self._decode, r, g, slot))
            self.pending[r] = job
            self.queue.append(job)
            self.next_group[r] = i + 1
            self.more[r] = True
        else:
            self.pending[r] = None
            self.more[r] = False

    def _steal(self) -> bool:
        """Decode the oldest row group no decoder has started, on this thread; False if none."""
        while self.queue:
            job = self.queue.popleft()
            if job.future.cancel():
                job.rows = self._decode(job.file, job.group, job.slot)
                return True
        return False

    def start(self) -> None:
        """Decode every file's first row group (the decoders and this thread together) and queue
        the second ones."""
        for r in range(len(self.files)):
            self._submit(r, 0)
        for r in range(len(self.files)):
            self.refill(r)

    def refill(self, r: int) -> None:
        """File ``r``'s active slot is used up: switch to the decoded row group, queue the next.

        While that row group is still being decoded, this thread decodes queued ones (of files
        that will run dry soon) instead of waiting, so both cores stay busy.
        """
        job = self.pending[r]
        if job is None:
            return
        while job.rows < 0 and not job.future.done() and self._steal():
            pass
        rows = job.rows if job.rows >= 0 else job.future.result()
        self.head[r] = self.slot[r, job.slot]
        self.tail[r] = self.head[r] + rows
        self._submit(r, 1 - job.slot)

    def buffered(self) -> bool:
        return bool((self.head < self.tail).any())

    def cancel(self) -> None:
        """Stop queued decodes (a consumer that leaves early) and wait for the running ones."""
        for job in self.pending:
            if job is not None:
                job.future.cancel()
        for job in self.pending:
            if job is not None and not job.future.cancelled():
                job.future.exception()
