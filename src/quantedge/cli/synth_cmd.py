"""``quantedge synth``: simulated market data with labelled episodes, ticks from bars, realism table."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer

from quantedge import SHARED_DATA
from quantedge.cli.output import new_console

console = new_console()
DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))
SHARED = SHARED_DATA


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to the main app."""
    synth = typer.Typer(help="Simulated market data with ground truth.", no_args_is_help=True)
    app.add_typer(synth, name="synth")

    @synth.command("generate")
    def generate(
        catalog: Annotated[Path, typer.Option("--catalog", "-c", help="Catalog.")] = DEFAULT_CATALOG,
        symbols: Annotated[int, typer.Option(help="Number of symbols.")] = 50,
        days: Annotated[int, typer.Option(help="Trading days per symbol.")] = 4,
        start: Annotated[str, typer.Option(help="First date (YYYY-MM-DD).")] = "2024-01-02",
        seed: Annotated[int, typer.Option(help="Master seed: same seed, same data.")] = 1,
        penny_share: Annotated[float, typer.Option(help="Share of penny stocks (rest: large caps).")] = 0.8,
        workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
        markup: Annotated[float, typer.Option(
            help="Move after each accumulation episode: rise of the fundamental at intensity 1 "
                 "(fraction, e.g. 0.03; 0 = none).")] = 0.0,
        markup_s: Annotated[float, typer.Option(help="Seconds over which that move unfolds.")] = 600.0,
        gap: Annotated[float, typer.Option(
            help="Overnight gap after a day with accumulation: the next day opens this much higher at "
                 "intensity 1 (fraction, e.g. 0.08; 0 = none; for `quantedge research`).")] = 0.0,
        accumulation_share: Annotated[float, typer.Option(
            help="Share of symbol-days that plant accumulation episodes (1 = every day).")] = 1.0,
    ) -> None:
        """Simulate symbol-days with planted episodes into the catalog (labels in labels/episodes.parquet)."""
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from quantedge.synth.generate import generate_to_catalog

        try:
            start_d = dt.date.fromisoformat(start)
        except ValueError:
            console.print(f"[red]--start {start!r} is not a date (YYYY-MM-DD)[/]")
            raise typer.Exit(2) from None
        t0 = time.perf_counter()
        with Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[name]}"), TimeElapsedColumn(), console=console) as prog:
            task = prog.add_task("synth", total=symbols, name="")
            try:
                summary = generate_to_catalog(catalog, symbols, days, start_d, seed=seed,
                                              penny_share=penny_share, workers=workers,
                                              markup=markup, markup_s=markup_s, gap=gap,
                                              accumulation_share=accumulation_share,
                                              on_symbol=lambda s, n: prog.update(task, advance=1, name=s))
            except ValueError as e:
                console.print(f"[red]{e}[/]")
                raise typer.Exit(2) from None
        el = time.perf_counter() - t0
        console.print(f"{len(summary.symbols)} symbols x {len(summary.dates)} days = "
                      f"{len(summary.symbols) * len(summary.dates)} symbol-days, {summary.events:,} events, "
                      f"{summary.labels} labelled episodes in {el:.1f} s -> {catalog} "
                      f"(labels: {summary.labels_path})")

    @synth.command("from-bars")
    def from_bars(
        bars_file: Annotated[Path, typer.Argument(help="IQFeed interval-bar history file.")],
        catalog: Annotated[Path, typer.Option("--catalog", "-c", help="Catalog.")] = DEFAULT_CATALOG,
        symbol: Annotated[str | None, typer.Option(help="Symbol (default: from the file name).")] = None,
        interval: Annotated[float, typer.Option(help="Bar length in seconds.")] = 1.0,
        seed: Annotated[int, typer.Option(help="Seed.")] = 0,
        off_exchange: Annotated[float, typer.Option(help="Share of prints reported to a TRF.")] = 0.45,
    ) -> None:
        """Generate trades and NBBO quotes matching each bar's OHLC and volume into the catalog."""
        from quantedge.catalog.importers.iqfeed_history import read_iqfeed_bars
        from quantedge.catalog.store import Catalog
        from quantedge.synth.from_bars import ticks_from_bars

        if not bars_file.is_file():
            console.print(f"[red]{bars_file}: no such file[/]")
            raise typer.Exit(2)
        bars, report = read_iqfeed_bars(bars_file)
        for p in report.problems[:3]:
            console.print(f"  [yellow]quarantined[/] {p.message()}")
        sym = symbol or bars_file.name.split("_")[0].upper()
        cat = Catalog(catalog)
        events, rep = ticks_from_bars(bars, cat.symbols.id(sym), interval_s=interval, seed=seed,
                                      off_exchange=off_exchange)
        n = cat.write(events, source=f"synth-bars-{bars_file.name}-{seed}")
        console.print(f"{sym}: {rep.bars_used:,} of {rep.bars_read:,} bars -> {n:,} events "
                      f"({rep.bars_empty} without volume, {len(rep.bars_infeasible)} with fewer shares than "
                      f"distinct prices, {len(rep.bars_invalid)} invalid)")
        if n == 0:
            raise typer.Exit(1)

    @synth.command("compare")
    def compare(
        nept: Annotated[Path, typer.Option(help="IQFeed NEPT tick file.")] =
            SHARED / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv",
        nept_date: Annotated[str, typer.Option(help="NEPT day to use.")] = "2021-03-01",
        lobster: Annotated[list[Path] | None, typer.Option(help="LOBSTER sample zips (repeatable).")] = None,
        sims: Annotated[int, typer.Option(help="Simulated symbol-days per regime.")] = 8,
        seed: Annotated[int, typer.Option(help="Seed of the simulated days.")] = 1,
        out: Annotated[Path | None, typer.Option(help="Also write the Markdown table here.")] = None,
    ) -> None:
        """Markdown table of spread, trade size, inter-arrival and touch depth: real vs simulated."""
        from quantedge.synth import realism

        lob = lobster or [SHARED / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip",
                          SHARED / "lobster" / "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip"]
        missing = [p for p in [nept, *lob] if not p.is_file()]
        if missing:
            console.print(f"[red]missing real data: {', '.join(map(str, missing))}[/]")
            raise typer.Exit(2)
        try:
            rows = [realism.nept_stats(nept, nept_date), realism.sim_stats("penny", sims, seed)]
            rows += [realism.lobster_stats(p) for p in lob]
            rows.append(realism.sim_stats("large", sims, seed, first_index=sims))
        except ValueError as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(1) from None
        table = realism.compare_table(rows)
        typer.echo(table)
        if out is not None:
            out.write_text(table)
