"""``quantedge check``: run the integrity checks over catalog symbol-days.

Prints one table row per symbol-day, optionally writes the machine-readable report (JSON) and the
quarantined rows (JSON lines).  The exit code is non-zero only when nothing usable was checked, so
a day with some bad rows still counts as a success: its good rows go on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quantedge.catalog.integrity import CheckConfig, CheckResult, check_events, render_table
from quantedge.cli.args import parse_date
from quantedge.cli.output import new_console

DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))


def _split_symbols(symbols: list[str] | None) -> list[str] | None:
    """Accept ``--symbols A --symbols B`` and ``--symbols A,B``."""
    if not symbols:
        return None
    out = [s.strip() for item in symbols for s in item.split(",") if s.strip()]
    return out or None


def run_check(catalog: Path, symbols: list[str] | None = None, start: dt.date | None = None,
              end: dt.date | None = None, config: CheckConfig | None = None,
              json_out: Path | None = None, quarantine_out: Path | None = None,
              console: Console | None = None) -> tuple[list[CheckResult], list[dict]]:
    """Check every (symbol, date) in the catalog that matches the filters.

    Returns the results and the symbol-days that could not be read (each with its error), so the
    caller decides the exit code.  Reading errors never abort the run: the next day is checked.
    """
    from quantedge.catalog.store import Catalog

    con = console or new_console()
    cat = Catalog(catalog)
    days = sorted({(p.date, p.symbol) for p in cat.partitions(symbols=symbols, start=start, end=end)})
    results: list[CheckResult] = []
    failed: list[dict] = []
    qfile = None
    n_quarantined = 0
    if quarantine_out is not None:
        quarantine_out.parent.mkdir(parents=True, exist_ok=True)
        qfile = quarantine_out.open("w", encoding="utf-8")
    try:
        with Progress(TextColumn("[bold]check"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[name]}"), TimeElapsedColumn(), console=con,
                      transient=True) as prog:
            task = prog.add_task("check", total=len(days), name="")
            for date, symbol in days:
                prog.update(task, name=f"{symbol} {date}")
                try:
                    events = cat.read(symbol, date)
                except Exception as exc:  # a damaged part file: report it, check the rest
                    failed.append({"symbol": symbol, "date": date.isoformat(),
                                   "error": f"{type(exc).__name__}: {exc}"})
                    prog.advance(task)
                    continue
                res = check_events(events, symbol=symbol, date=date, config=config)
                if qfile is not None:
                    n_quarantined += res.write_quarantine(qfile)
                results.append(res.release())  # keep counts, not a day of rows, per symbol-day
                prog.advance(task)
    finally:
        if qfile is not None:
            qfile.close()
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "catalog": str(catalog),
            "config": (results[0].to_dict()["config"] if results else None),
            "symbol_days": [r.to_dict() for r in results],
            "unreadable": failed,
            "totals": _totals(results),
        }
        json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return results, failed


def _totals(results: list[CheckResult]) -> dict:
    return {
        "symbol_days": len(results),
        "events": sum(r.n_events for r in results),
        "good": sum(r.n_good for r in results),
        "quarantined": sum(r.n_bad for r in results),
    }


CatalogOpt = Annotated[Path, typer.Option("--catalog", "-c",
                                          help="Catalog directory (env QUANTEDGE_CATALOG).")]
SymbolsOpt = Annotated[list[str] | None, typer.Option(
    "--symbols", "-s", help="Only these symbols (repeat the option or separate with commas).")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here.")]
QuarantineOpt = Annotated[Path | None, typer.Option(
    "--quarantine", help="Write quarantined rows (one JSON object per line) here.")]
GapOpt = Annotated[float, typer.Option(
    help="Report regular-session stretches without events longer than this many seconds.")]
PctOpt = Annotated[float, typer.Option(
    help="A trade is far outside when beyond the NBBO by more than this fraction of the NBBO price...")]
SpreadsOpt = Annotated[float, typer.Option(help="...and by more than this many quoted spreads.")]
TolOpt = Annotated[float, typer.Option(
    help="ts_recv may step back this many ms before the row is quarantined.")]


def register(app: typer.Typer) -> None:
    """Add the ``check`` command to ``app``."""

    @app.command("check")
    def check(
        catalog: CatalogOpt = DEFAULT_CATALOG,
        symbols: SymbolsOpt = None,
        start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD (inclusive).")] = None,
        end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD (inclusive).")] = None,
        json_out: JsonOpt = None,
        quarantine: QuarantineOpt = None,
        gap_seconds: GapOpt = CheckConfig.gap_seconds,
        outside_pct: PctOpt = CheckConfig.outside_pct,
        outside_spreads: SpreadsOpt = CheckConfig.outside_spreads,
        ts_tolerance_ms: TolOpt = CheckConfig.ts_tolerance_ns / 1e6,
    ) -> None:
        """Check catalog symbol-days: time order, duplicate tick ids, crossed/locked NBBO, bad prices
        and sizes, trades far outside the NBBO, gaps, sessions and odd lots.

        Bad rows are quarantined (see --quarantine); everything else is only reported.  Exits
        non-zero only when nothing usable was checked.
        """
        con = new_console()
        d0 = parse_date(start, "--start")
        d1 = parse_date(end, "--end")
        if d0 and d1 and d1 < d0:
            raise typer.BadParameter(f"--end {d1} is before --start {d0}", param_hint="--end")
        for name, val in (("--gap-seconds", gap_seconds), ("--outside-pct", outside_pct),
                          ("--outside-spreads", outside_spreads), ("--ts-tolerance-ms", ts_tolerance_ms)):
            if val < 0:
                raise typer.BadParameter(f"must not be negative (got {val})", param_hint=name)
        if not catalog.is_dir():
            con.print(f"[red]no catalog at {catalog}[/] (import data first: quantedge import …)")
            raise typer.Exit(1)
        cfg = CheckConfig(ts_tolerance_ns=int(round(ts_tolerance_ms * 1e6)), gap_seconds=gap_seconds,
                          outside_pct=outside_pct, outside_spreads=outside_spreads)
        results, failed = run_check(catalog, _split_symbols(symbols), d0, d1, cfg, json_out, quarantine, con)
        if results:
            con.print(render_table(results, title=f"Integrity checks: {catalog}"))
        for f in failed:
            con.print(f"[red]could not read {f['symbol']} {f['date']}[/]: {f['error']}")
        tot = _totals(results)
        con.print(f"{tot['symbol_days']} symbol-days, {tot['events']:,} events: {tot['good']:,} good, "
                  f"{tot['quarantined']:,} quarantined")
        if quarantine is not None:
            con.print(f"quarantined rows written to {quarantine}")
        if json_out is not None:
            con.print(f"report written to {json_out}")
        if not any(r.usable for r in results):
            con.print("[red]nothing usable was checked[/] (no matching symbol-days with good events)")
            raise typer.Exit(1)
