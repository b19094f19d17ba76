"""Fill the catalog from IQFeed tick history (``quantedge download``) and fetch missing symbol-days.

Works against IQConnect or the simulator: one HTT request per symbol-day through
:class:`~quantedge.feeds.iqfeed.client.IQFeedClient` (rate-limited, retried on "too many
requests"), parsed by the same compiled history parser the file importer uses, written with
``Catalog.write`` under the source name ``iqfeed:<SYM>:<date>`` so a second download of the same day
replaces the first instead of doubling it.  Each symbol-day's import report goes to imports.jsonl.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from quantedge.catalog.store import Catalog
from quantedge.feeds.iqfeed.client import ClientConfig, HistoryError, IQFeedClient


@dataclass
class DownloadResult:
    """What one download did: events written per (symbol, date), days with no data, failures."""

    written: dict[tuple[str, str], int] = field(default_factory=dict)
    empty: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.written.values())


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


async def download_async(catalog: Catalog, symbols: Iterable[str], start: dt.date, end: dt.date,
                         config: ClientConfig | None = None, concurrency: int = 8) -> DownloadResult:
    """Download tick history for every symbol and weekday in ``start..end`` (ET dates) into ``catalog``."""
    res = DownloadResult()
    sem = asyncio.Semaphore(concurrency)
    async with IQFeedClient(config or ClientConfig(), symbols=catalog.symbols) as client:

        async def one(sym: str, day: dt.date) -> None:
            key = (sym, day.isoformat())
            ymd = day.strftime("%Y%m%d")
            async with sem:
                try:
                    events, report = await client.tick_history(sym, f"{ymd} 000000", f"{ymd} 235959")
                except ConnectionRefusedError as e:
                    where = f"{client.config.host}:{client.config.ports.get('lookup')}"
                    res.failed[key] = (f"nothing listens at {where} (start IQConnect, or `quantedge "
                                       f"simulate`, first): {e}")
                    return
                except (HistoryError, ConnectionError, OSError) as e:
                    res.failed[key] = str(e)
                    return
            if events.shape[0] == 0:
                res.empty.append(key)
                return
            catalog.write(events, source=f"iqfeed:{sym}:{day.isoformat()}")
            rep = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
            catalog.record_import({k: v for k, v in rep.items() if k != "problems"})
            res.written[key] = int(events.shape[0])

        await asyncio.gather(*(one(s.upper(), d) for s in symbols for d in _days(start, end)))
    return res


def download(catalog: Catalog | str | Path, symbols: Iterable[str], start: dt.date | str, end: dt.date | str,
             config: ClientConfig | None = None) -> DownloadResult:
    """Blocking form of :func:`download_async` (the CLI's ``download``)."""
    s = dt.date.fromisoformat(str(start))
    e = dt.date.fromisoformat(str(end))
    fresh = None if isinstance(catalog, Catalog) or Path(catalog).exists() else Path(catalog)
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    try:
        return asyncio.run(download_async(cat, list(symbols), s, e, config))
    finally:
        if fresh is not None:
            _drop_if_empty(fresh)


def _drop_if_empty(root: Path) -> None:
    """Remove a catalog directory this call created when nothing was written into it.

    A download that fails (no server, every day refused) should not leave an empty catalog behind
    that a later command would take for a real one.  Only empty directories are removed.
    """
    for d in (root / "data", root):
        try:
            d.rmdir()
        except OSError:  # not empty (something was written) or already gone
            return


@dataclass
class AutoDownloader:
    """A backtest's data source: ``ensure(symbol, date)`` downloads a symbol-day the catalog lacks.

    Returns True when the day is (now) in the catalog.  Without a configured source (``config`` None)
    nothing is fetched and a missing day stays missing, so backtests never reach the network by accident.
    """

    catalog: Catalog
    config: ClientConfig | None = None

    def has(self, symbol: str, date: dt.date | str) -> bool:
        d = dt.date.fromisoformat(str(date))
        return bool(self.catalog.partitions(symbols=[symbol.upper()], start=d, end=d, kinds=("trade",)))

    def ensure(self, symbol: str, date: dt.date | str) -> bool:
        if self.has(symbol, date):
            return True
        if self.config is None:
            return False
        d = dt.date.fromisoformat(str(date))
        res = asyncio.run(download_async(self.catalog, [symbol], d, d, self.config))
        return bool(res.written)
