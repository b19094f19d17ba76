"""``quantedge research``: the multi-day accumulation tracker and the pre-gap pattern analyzer."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from quantedge.cli.args import choice, existing_catalog, output_dir, parse_date
from quantedge.cli.output import new_console

console = new_console()
DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))
MODES = ("auto", "l3", "l2", "nbbo")

CatalogOpt = Annotated[Path, typer.Option("--catalog", "-c", help="Catalog.")]
StartOpt = Annotated[str | None, typer.Option(help="First date YYYY-MM-DD (default: the catalog's first).")]
EndOpt = Annotated[str | None, typer.Option(help="Last date YYYY-MM-DD (default: the catalog's last).")]
SymbolOpt = Annotated[list[str] | None, typer.Option("--symbol", "-s", help="Only these (repeatable).")]
ModeOpt = Annotated[str, typer.Option(help="Books from: auto (from the data) | l3 | l2 | nbbo.")]
ConfigOpt = Annotated[Path | None, typer.Option("--signal-config", help="Signal parameter YAML.")]
MinActiveOpt = Annotated[int, typer.Option(
    min=1, help="Scored seconds with the composite at its trigger level that make an accumulation day.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs.")]
StealthOpt = Annotated[float, typer.Option(
    help="Largest |close / open - 1| of a stealthy accumulation day (fraction).")]


def _daily(catalog: Path, start: str | None, end: str | None, symbols: list[str] | None, mode: str,
           signal_config: Path | None):
    """The daily table of the selection, with a progress line; usage errors exit 2."""
    from quantedge.catalog.store import Catalog
    from quantedge.cli.signals_cmd import signal_config as load_signal_config
    from quantedge.research.daily import daily_table

    choice(mode, MODES, "--mode")
    existing_catalog(catalog)
    s, e = parse_date(start, "--start"), parse_date(end, "--end")
    dates = Catalog(catalog).dates()
    if not dates:
        raise typer.BadParameter(f"{catalog} holds no data", param_hint="--catalog")
    if end is not None and s is not None and e < s:
        raise typer.BadParameter(f"{e} is before --start {s}", param_hint="--end")
    s, e = s or dates[0], e or dates[-1]
    if s > dates[-1] or e < dates[0]:
        raise typer.BadParameter(f"the catalog holds {dates[0]} to {dates[-1]}, nothing from {s} to {e}",
                                 param_hint="--start" if start is not None else "--end")
    cfg = load_signal_config(signal_config)
    t0 = time.perf_counter()
    with console.status("books -> features -> signals") as status:
        try:
            table = daily_table(catalog, s, e, symbols, mode, cfg, progress=lambda n: status.update(
                f"books -> features -> signals: {n:,} events"))
        except ValueError as err:
            console.print(f"[red]{err}[/]")
            raise typer.Exit(2) from None
    console.print(f"{int(table['events'].sum()):,} events, {len(set(table['symbol'].tolist()))} symbols, "
                  f"{len(set(table['date'].tolist()))} days ({table.mode} books) in "
                  f"{time.perf_counter() - t0:.1f} s")
    return table


def register(app: typer.Typer) -> None:
    """Add the ``research`` command to the main app."""

    @app.command("research")
    def research_cmd(
        catalog: CatalogOpt = DEFAULT_CATALOG,
        start: StartOpt = None,
        end: EndOpt = None,
        symbol: SymbolOpt = None,
        mode: ModeOpt = "auto",
        signal_config: ConfigOpt = None,
        min_active_s: MinActiveOpt = 300,
        stealth_move: StealthOpt = 0.03,
        gap: Annotated[float, typer.Option(help="Gap threshold: |next open / close - 1| (fraction).")] = 0.05,
        top: Annotated[int, typer.Option(min=1, help="Symbols in the tracker's report and chart.")] = 40,
        out: OutOpt = Path("out/research"),
    ) -> None:
        """Multi-day accumulation tracker and pre-gap patterns, from one pass over the catalog's days."""
        from quantedge.research.pregap import gap_pairs, summarize, write_pregap
        from quantedge.research.tracker import TrackerParams, markdown_table, track, write_tracker

        output_dir(out, "--out")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise typer.BadParameter(f"cannot create {out} ({e.strerror})", param_hint="--out") from None
        try:
            params = TrackerParams(min_active_s, stealth_move)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--stealth-move") from None
        if not 0 < gap < 1:
            raise typer.BadParameter(f"{gap} is not in (0, 1)", param_hint="--gap")
        table = _daily(catalog, start, end, symbol, mode, signal_config)
        rows = track(table, params)
        paths = write_tracker(table, rows, out, params, top)
        cols = ["rank", "symbol", "streak", "accumulation_days", "days", "stealth_days", "composite_triggers",
                "change_pct"]
        console.print("[bold]Accumulation tracker[/]")
        console.print(markdown_table(rows[:min(top, 20)], cols))
        pairs = gap_pairs(table, gap, params)
        if pairs:
            summary = summarize(pairs)
            paths.update(write_pregap(table, pairs, summary, out, gap))
            c = summary["counts"]
            console.print(f"[bold]Pre-gap patterns[/]: {summary['pairs']} day pairs, {c['gap_up']} gap up, "
                          f"{c['flat']} flat, {c['gap_down']} gap down (see {paths['pregap_md']})")
        else:
            console.print("[yellow]pre-gap patterns: no pair of consecutive days with a close and a next "
                          "open (a gap needs two days of regular-session prints of one symbol)[/]")
        console.print("wrote " + ", ".join(sorted({str(p) for p in paths.values()})))
