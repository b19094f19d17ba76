"""Import driver: run a format's reader over files, write the catalog, keep the reports.

Readers (one module per format under ``catalog/importers``) turn one source file into normalized
events plus an :class:`ImportReport`; this module only dispatches, writes partitions, stores
ground truth that ships with a format (LOBSTER orderbook files) and logs reports and quarantined
records in the catalog.  A reader failure on one file (I/O error, unreadable archive) becomes a
report with a problem; the other files still import.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from quantedge.catalog.quarantine import ImportReport, Problem
from quantedge.catalog.store import Catalog

FORMATS = ("lobster", "iqfeed", "csv", "taq", "databento")


def _expand(paths: Iterable[str | Path], patterns: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for pat in patterns:
                out.extend(sorted(p.rglob(pat)))
        else:
            out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def _taq_kind(path: Path) -> str:
    """'quotes' or 'trades' from the TAQ header line (BID column = quotes file)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="latin-1", errors="replace") as f:  # type: ignore[operator]
        header = f.readline().upper()
    return "quotes" if "BID" in header.split(",") else "trades"


def _import_one(cat: Catalog, fmt: str, path: Path) -> list[ImportReport]:
    """Import a single path in ``fmt``; returns one report per source file inside it."""
    if fmt == "lobster":
        from quantedge.catalog.importers.lobster import lobster_files, read_lobster, read_lobster_orderbook

        reports = []
        for message, orderbook, symbol, date, levels in lobster_files(path):
            events, rep = read_lobster(message, cat.symbols, symbol=symbol, date=date)
            rep.events_written = cat.write(events, source=f"lobster:{message}")
            if orderbook is not None:
                book = read_lobster_orderbook(orderbook)
                cols = {}
                for lv in range(book.shape[1] // 4):
                    for j, name in enumerate(("ask_px", "ask_sz", "bid_px", "bid_sz")):
                        cols[f"{name}_{lv + 1}"] = np.ascontiguousarray(book[:, 4 * lv + j])
                cat.write_groundtruth("lobster", symbol, date, cols, file=f"orderbook_{levels}")
                rep.notes.append(f"orderbook ground truth stored ({book.shape[0]} rows, {levels} levels)")
            reports.append(rep)
        return reports
    if fmt == "iqfeed":
        from quantedge.catalog.importers.iqfeed_history import read_iqfeed_ticks

        events, rep = read_iqfeed_ticks(path, cat.symbols)
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
        "lobster": ("*.zip", "*_message_*.csv"),
        "iqfeed": ("*.csv", "*.txt"),
        "csv": ("*_L2_*.csv", "*_Trades_*.csv", "*_Quotes_*.csv"),
        "taq": ("*.csv.gz", "*.csv"),
        "databento": ("*.csv",),
    }.get(fmt, ("*",))
    reports: list[ImportReport] = []
    paths = [Path(p) for p in paths]
    for d in paths:  # a folder with nothing to import says so (not an empty summary)
        if d.is_dir() and not _expand([d], patterns):
            rep = ImportReport(source=str(d), fmt=fmt)
            rep.notes.append(f"no files named like {' or '.join(patterns)} in this folder")
            reports.append(rep)
    for path in _expand(paths, patterns):
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
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(rep.source).name)
            rep.write_quarantine(cat.root / "quarantine" / f"{fmt}-{safe}.jsonl")
        reports.extend(got)
        if on_file is not None:
            on_file(path, got)
    return reports
