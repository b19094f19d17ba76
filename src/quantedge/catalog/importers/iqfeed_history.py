"""Import IQFeed lookup-port history files (ticks and bars) saved exactly as the server sent them.

The parsing itself lives in :mod:`quantedge.feeds.iqfeed.history` (shared with the live client);
this module adds the file handling: reading, the symbol from the file name, and file-level
problems (unreadable, empty) that still keep ``rows_read == imported + quarantined``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from quantedge.catalog.quarantine import ImportReport, Problem
from quantedge.catalog.symbols import NameTable
from quantedge.events import EVENT_DTYPE
from quantedge.feeds.iqfeed.history import BAR_DTYPE, parse_bar_lines, parse_tick_lines, ticks_to_events

_SYMBOL_RE = re.compile(r"^([A-Za-z0-9.@#+=$^-]+?)_")


def symbol_from_filename(path: Path) -> str | None:
    """``NEPT_ticks_2021-03-01_2021-03-03.csv`` -> ``NEPT`` (text before the first underscore)."""
    m = _SYMBOL_RE.match(path.name)
    return m.group(1).upper() if m else None


def read_file_bytes(path: Path, report: ImportReport) -> bytes | None:
    """The file's bytes, or None with a counted file-level Problem (unreadable or empty)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.rows_read += 1
        report.quarantine(Problem(str(path), 0, "", "unreadable_file", f"{type(exc).__name__}: {exc}"))
        return None
    if not data.strip(b" \t\r\n\x00"):
        report.rows_read += 1
        report.quarantine(Problem(str(path), 0, "", "empty_file", f"{len(data)} bytes, no rows"))
        return None
    return data


def read_iqfeed_ticks(path: str | Path, symbols: NameTable, *, symbol: str | None = None
                      ) -> tuple[np.ndarray, ImportReport]:
    """Tick history (HTX/HTD/HTT output, protocol <=6.0, 6.1 or 6.2) -> events + report.

    Each tick becomes a KIND_TRADE event, preceded by a FLAG_FROM_TRADE bid/ask KIND_QUOTE pair
    when the NBBO on the row changed; see docs/formats-iqfeed-and-csv.md for every field.
    """
    path = Path(path)
    report = ImportReport(source=str(path), fmt="iqfeed_ticks")
    sym = symbol or symbol_from_filename(path)
    if not sym:
        sym = path.stem.upper() or "UNKNOWN"
        report.notes.append(f"no SYMBOL_ prefix in the file name; using {sym!r} as the symbol")
    data = read_file_bytes(path, report)
    if data is None:
        return np.zeros(0, dtype=EVENT_DTYPE), report
    rows, rep = parse_tick_lines(data, str(path))
    report.merge(rep)
    events = ticks_to_events(rows, symbols.id(sym)) if len(rows) else np.zeros(0, dtype=EVENT_DTYPE)
    report.events_written = int(events.shape[0])
    return events, report


def read_iqfeed_bars(path: str | Path) -> tuple[np.ndarray, ImportReport]:
    """Interval or daily bar history -> ``BAR_DTYPE`` array (prices in $0.0001) + report.

    IQFeed sends bars as High, Low, Open, Close; the array has named fields so the order cannot
    be confused downstream.
    """
    path = Path(path)
    report = ImportReport(source=str(path), fmt="iqfeed_bars")
    data = read_file_bytes(path, report)
    if data is None:
        return np.zeros(0, dtype=BAR_DTYPE), report
    bars, rep = parse_bar_lines(data, str(path))
    report.merge(rep)
    return bars, report
