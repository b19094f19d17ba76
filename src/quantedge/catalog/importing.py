"""Import driver: run a format's reader over files, write the catalog, keep the reports.

Readers (one module per format under ``catalog/importers``) turn one source file into normalized
events plus an :class:`ImportReport`; this module only dispatches, writes partitions, stores
ground truth that ships with a format (LOBSTER orderbook files) and logs reports and quarantined
records in the catalog.  A reader failure on one file (I/O error, unreadable archive) becomes a
report with a problem; the other files still import.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from quantedge.catalog.quarantine import ImportReport, Problem
from quantedge.catalog.store import Catalog

FORMATS = ("lobster", "iqfeed", "csv", "taq", "databento")


def _expand(paths: Iterable[str | Path], patterns: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if _is_dir(p):
            for pat in patterns:
                out.extend(sorted(p.rglob(pat)))
        else:
            out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def _is_dir(p: Path) -> bool:
    """``p.is_dir()``, False where the path cannot even be looked up (a name longer than the file
    system allows): the import then reports it as an unreadable source."""
    try:
        return p.is_dir()
    except OSError:
        return False


def _quarantine_name(fmt: str, source: str) -> str:
    """File name of a source's quarantine file: its name made safe, shortened (with a hash of the
    whole, so two long names stay apart) where it would pass the file system's 255-byte limit."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(source).name)
    if len(safe) > 150:
        safe = f"{safe[:120]}-{hashlib.sha1(safe.encode()).hexdigest()[:12]}"
    return f"{fmt}-{safe}.jsonl"


def _taq_kind(path: Path) -> str:
    """'quotes' or 'trades' from the TAQ header line (BID column = quotes file)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="latin-1", errors="replace") as f:  # type: ignore[operator]
        header = f.readline().upper()
    return "quotes" if "BID" in header.split(",") else "trades"


LOBSTER_DAYS = "lobster_days.json"


def _lobster_day_source(cat: Catalog, source: str, symbol: str, date, levels: int, events: np.ndarray,
                        rep: ImportReport) -> bool:
    """Whether ``source`` becomes the LOBSTER message file of its symbol-day (True: write it).

    LOBSTER sells one symbol-day at several depths (1, 5, 10, 50 levels) and in time windows, and
    every such file holds (part of) the same order flow: two of them in one catalog would replay
    each message twice.  So a symbol-day keeps one message file: the one whose messages span the
    longest time, then the one with more levels, then more rows; an equal one replaces the one
    before (a re-import from another place).  The choice is kept in ``lobster_days.json`` at the
    catalog root, so it holds across imports; what was set aside is said in the report's notes."""
    import json

    reg_path = cat.root / LOBSTER_DAYS
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    key = f"{symbol}/{date}"
    span = int(events["ts_event"].max() - events["ts_event"].min()) if events.shape[0] else -1
    new = {"source": source, "span_ns": span, "levels": int(levels), "rows": int(rep.rows_imported)}
    old = reg.get(key)
    rank = ("span_ns", "levels", "rows")
    if old is not None and old["source"] != source:
        if tuple(new[k] for k in rank) < tuple(old[k] for k in rank):
            rep.notes.append(f"not written: {symbol} {date} already comes from {old['source']} "
                             f"({old['span_ns'] / 3.6e12:.2f} h, {old['levels']} levels); a LOBSTER "
                             "symbol-day keeps one message file (the longest span, then the deepest)")
            return False
        removed = cat.remove_source(old["source"], symbol, date)
        rep.replaced.append(old["source"])
        # its ground truth describes the messages that leave (the new file's, if any, is written next)
        cat.groundtruth_path("lobster", symbol, date, f"orderbook_{old['levels']}").unlink(missing_ok=True)
        rep.notes.append(f"replaces {old['source']} for {symbol} {date} ({old['span_ns'] / 3.6e12:.2f} h, "
                         f"{old['levels']} levels; {removed} part files removed)")
    reg[key] = new
    cat.root.mkdir(parents=True, exist_ok=True)
    tmp = reg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(reg, indent=1, sort_keys=True))
    tmp.replace(reg_path)
    return True


def _import_one(cat: Catalog, fmt: str, path: Path) -> list[ImportReport]:
    """Import a single path in ``fmt``; returns one report per source file inside it."""
    if fmt == "lobster":
        from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook

        reports = []
        for message, orderbook, symbol, date, levels in lobster_files(path):
            events, rep = read_lobster(message, cat.symbols, symbol=symbol, date=date)
            if not _lobster_day_source(cat, f"lobster:{message}", symbol, date, levels, events, rep):
                reports.append(rep)  # its ground truth would not describe the catalog's messages
                continue
            rep.events_written = cat.write(events, source=f"lobster:{message}")
            if orderbook is not None:
                book = read_lobster_orderbook(orderbook)
                if book.shape[0] != rep.rows_read:  # row k is the book after message k: no pairing
                    rep.notes.append(f"orderbook ground truth not stored: {book.shape[0]:,} rows for "
                                     f"{rep.rows_read:,} message rows (the files pair row by row)")
                    reports.append(rep)
                    continue
                cols = {}
                for lv in range(book.shape[1] // 4):
                    for j, name in enumerate(("ask_px", "ask_sz", "bid_px", "bid_sz")):
                        cols[f"{name}_{lv + 1}"] = np.ascontiguousarray(book[:, 4 * lv + j])
                cat.write_groundtruth("lobster", symbol, date, cols, file=f"orderbook_{levels}")
                rep.notes.append(f"orderbook ground truth stored ({book.shape[0]} rows, {levels} levels)")
            reports.append(rep)
        return reports
    if fmt == "iqfeed":
        from quantedge.catalog.importers.iqfeed_history import read_iqfeed_bars, read_iqfeed_ticks

        events, rep = read_iqfeed_ticks(path, cat.symbols)
        if rep.rows_imported == 0 and set(rep.reasons) == {"wrong_column_count"}:
            bars, brep = read_iqfeed_bars(path)  # no tick row at all: is it a bar file?
            if bars.shape[0] and brep.rows_imported >= brep.rows_read // 2:
                rep = ImportReport(source=str(path), fmt="iqfeed_bars")
                rep.notes.append(f"an IQFeed interval-bar file ({bars.shape[0]:,} bars), not ticks: bars are "
                                 "not events and are not imported (`quantedge synth from-bars` makes "
                                 "ticks from them)")
                return [rep]
    elif fmt == "csv":
        from quantedge.catalog.importers.csv_schema import read_project_csv

        events, rep = read_project_csv(path, cat.symbols, cat.venues)
    elif fmt == "taq":
        from quantedge.catalog.importers.taq import read_taq_quotes, read_taq_trades

        reader = read_taq_quotes if _taq_kind(path) == "quotes" else read_taq_trades
        events, rep = reader(path, cat.symbols)
    elif fmt == "databento":
        from quantedge.catalog.importers.databento import read_databento_mbp10

        events, rep, _truth = read_databento_mbp10(path, cat.symbols)
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    rep.events_written = cat.write(events, source=f"{fmt}:{path}")
    return [rep]


def import_paths(cat: Catalog, fmt: str, paths: Iterable[str | Path],
                 on_file: Callable[[Path, list[ImportReport]], None] | None = None) -> list[ImportReport]:
    """Import every file under ``paths`` in format ``fmt`` into ``cat``; never raises on bad data."""
    patterns = {
        "lobster": ("*.zip", "*_message_*.csv", "*_message_*.csv.gz"),
        "iqfeed": ("*.csv", "*.txt"),
        "csv": ("*_L2_*.csv", "*_Trades_*.csv", "*_Quotes_*.csv"),
        "taq": ("*.csv.gz", "*.csv"),
        "databento": ("*.csv",),
    }.get(fmt, ("*",))
    reports: list[ImportReport] = []
    paths = [Path(p) for p in paths]
    found = _expand(paths, patterns)
    for d in paths:  # a folder with nothing to import says so (not an empty summary)
        if _is_dir(d) and not any(d in f.parents for f in found):
            rep = ImportReport(source=str(d), fmt=fmt)
            rep.notes.append(f"no files named like {' or '.join(patterns)} in this folder")
            reports.append(rep)
    for path in found:
        try:
            if not path.exists():
                raise FileNotFoundError(f"no such file: {path}")
            got = _import_one(cat, fmt, path)
        except (OSError, ValueError, KeyError) as exc:
            rep = ImportReport(source=str(path), fmt=fmt)
            rep.notes.append(f"could not read {path}: {exc}")
            rep.problems.append(Problem(str(path), 0, "", "unreadable_source", str(exc)))
            got = [rep]
        if not got:  # e.g. a LOBSTER import of a file whose name is no LOBSTER message file
            rep = ImportReport(source=str(path), fmt=fmt)
            rep.notes.append(f"skipped, not a {fmt} source by its name "
                             f"(expected {' or '.join(patterns)})")
            got = [rep]
        for rep in got:
            cat.record_import(rep.to_dict())
            rep.write_quarantine(cat.root / "quarantine" / _quarantine_name(fmt, rep.source))
            for gone in rep.replaced:  # written earlier in this run, then replaced: nothing of it stays
                for old in reports:
                    if f"{old.fmt}:{old.source}" == gone and old.events_written:
                        old.notes.append(f"its {old.events_written:,} events were removed again: "
                                         f"{Path(rep.source).name} replaces it (see its note)")
                        old.events_written = 0
        reports.extend(got)
        if on_file is not None:
            on_file(path, got)
    return reports
