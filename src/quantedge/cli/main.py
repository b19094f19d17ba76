"""The ``quantedge`` command: one Typer app; each stage registers its sub-commands here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quantedge import SHARED_DATA
from quantedge.cli.args import existing_catalog, output_dir, parse_date
from quantedge.cli.output import new_console, plain_errors_off_terminal

app = typer.Typer(
    name="quantedge",
    help="QuantEdge: market-microstructure research and trading for US equities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
catalog_app = typer.Typer(help="Inspect the local Parquet catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

console = new_console()

DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))
CatalogOpt = Annotated[
    Path, typer.Option("--catalog", "-c", help="Catalog directory (env QUANTEDGE_CATALOG).")
]


@app.callback()
def _root() -> None:
    """QuantEdge: market-microstructure research and trading for US equities."""


@app.command()
def version() -> None:
    """Print the QuantEdge version."""
    from quantedge import __version__

    typer.echo(__version__)


def report_table(reports: list) -> Table:
    """Rich table of import reports: rows read / valid / quarantined, events written, the reasons.

    "valid" counts rows that parsed; "written" the events that reached the catalog (0 for a source
    set aside, e.g. a LOBSTER symbol-day that another file already holds: its note says why)."""
    t = Table(title="Import summary")
    for col in ("source", "format", "read", "valid", "quarantined", "written", "reasons"):
        t.add_column(col, justify="right" if col in ("read", "valid", "quarantined", "written") else "left")
    for r in reports:
        reasons = ", ".join(f"{k}={v}" for k, v in r.reasons.most_common(4)) or "-"
        t.add_row(Path(r.source).name, r.fmt, f"{r.rows_read:,}", f"{r.rows_imported:,}",
                  f"{r.rows_quarantined:,}", f"{r.events_written:,}", reasons)
    return t


def run_import(fmt: str, paths: list[Path], catalog: Path, quiet: bool = False) -> list:
    """Import with a progress bar and print the summary and the first problems of each file."""
    from quantedge.catalog.importing import _expand, import_paths
    from quantedge.catalog.store import Catalog

    cat = Catalog(catalog)
    n_files = len(_expand(paths, ("*",))) if not quiet else 0
    with Progress(TextColumn("[bold]import {task.fields[fmt]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[name]}"), TimeElapsedColumn(), console=console,
                  disable=quiet) as prog:
        task = prog.add_task("import", total=n_files or None, fmt=fmt, name="")

        def on_file(path: Path, reps: list) -> None:
            prog.update(task, advance=1, name=path.name)

        reports = import_paths(cat, fmt, paths, on_file=on_file)
    if not quiet:
        console.print(report_table(reports))
        for r in reports:
            for p in r.problems[:3]:
                console.print(f"  [yellow]quarantined[/] {p.message()}")
            if len(r.problems) > 3:
                console.print(f"  … {r.rows_quarantined - 3:,} more in {catalog}/quarantine/")
            for note in r.notes:
                console.print(f"  [dim]{Path(r.source).name}: {note}[/]")
    return reports


@app.command("import")
def import_cmd(
    fmt: Annotated[str, typer.Argument(help="Source format: lobster | iqfeed | csv | taq | databento.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to import.")],
    catalog: CatalogOpt = DEFAULT_CATALOG,
) -> None:
    """Import real market data files into the catalog, quarantining bad rows with reasons."""
    from quantedge.catalog.importing import FORMATS

    if fmt not in FORMATS:
        console.print(f"[red]unknown format {fmt!r}[/]; choose one of: {', '.join(FORMATS)}")
        raise typer.Exit(2)
    reports = run_import(fmt, paths, catalog)
    if sum(r.events_written for r in reports) == 0:
        console.print("[red]nothing was imported[/]")
        raise typer.Exit(1)


@catalog_app.command("ls")
def catalog_ls(
    catalog: CatalogOpt = DEFAULT_CATALOG,
    symbol: Annotated[list[str] | None, typer.Option("--symbol", "-s", help="Only these symbols.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", "-k", help="Only these kinds.")] = None,
    start: Annotated[str | None, typer.Option(help="First date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date (YYYY-MM-DD).")] = None,
) -> None:
    """List catalog partitions (kind, date, symbol) with row counts and sizes."""
    from quantedge.catalog.store import Catalog

    existing_catalog(catalog)
    rows = Catalog(catalog).ls(symbols=symbol, kinds=kind, start=parse_date(start, "--start"),
                               end=parse_date(end, "--end"))
    t = Table(title=f"Catalog {catalog}")
    for col in ("date", "symbol", "kind", "parts", "rows", "bytes"):
        t.add_column(col, justify="right" if col in ("parts", "rows", "bytes") else "left")
    for r in sorted(rows, key=lambda r: (r["date"], r["symbol"], r["kind"])):
        t.add_row(r["date"], r["symbol"], r["kind"], str(r["parts"]), f"{r['rows']:,}", f"{r['bytes']:,}")
    console.print(t)
    console.print(f"{len(rows)} partitions, {sum(r['rows'] for r in rows):,} events")


@catalog_app.command("show")
def catalog_show(
    symbol: Annotated[str, typer.Argument(help="Symbol.")],
    date: Annotated[str, typer.Argument(help="Date YYYY-MM-DD.")],
    catalog: CatalogOpt = DEFAULT_CATALOG,
    head: Annotated[int, typer.Option(min=0, help="How many events to print.")] = 20,
) -> None:
    """Print the first events of one symbol-day in merge order."""
    from quantedge.catalog.store import Catalog
    from quantedge.events import ACTION_NAMES, KIND_NAMES, condition_names
    from quantedge.timeutil import format_et

    day = parse_date(date, "DATE")
    ev = Catalog(existing_catalog(catalog)).read(symbol, day)
    if ev.shape[0] == 0:
        console.print(f"[red]no events for {symbol} on {date}[/]")
        raise typer.Exit(1)
    t = Table(title=f"{symbol} {date}: {ev.shape[0]:,} events")
    for col in ("ts_recv (ET)", "kind", "action", "side", "price", "size", "venue", "seq", "conditions"):
        t.add_column(col)
    for e in ev[:head]:
        t.add_row(format_et(int(e["ts_recv"]), 9), KIND_NAMES.get(int(e["kind"]), "?"),
                  ACTION_NAMES.get(int(e["action"]), "?"), str(int(e["side"])), f"{e['price'] / 1e4:.4f}",
                  str(int(e["size"])), str(int(e["venue"])), str(int(e["seq"])),
                  ",".join(condition_names(int(e["conditions"]))))
    console.print(t)


@app.command("export")
def export_cmd(
    symbol: Annotated[list[str], typer.Argument(help="Symbols to export.")],
    date: Annotated[str, typer.Option(help="ET date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/export"),
    catalog: CatalogOpt = DEFAULT_CATALOG,
) -> None:
    """Export catalog symbol-days to the project's L2 / Trades / Quotes CSV schemas."""
    import warnings

    from quantedge.catalog.export import export_project_csv
    from quantedge.catalog.merge import concat_events
    from quantedge.catalog.store import Catalog

    day = parse_date(date, "--date")
    output_dir(out, "--out")
    cat = Catalog(existing_catalog(catalog))
    parts = [cat.read(s, day) for s in symbol]
    events = concat_events([p for p in parts if p.shape[0]]) if any(p.shape[0] for p in parts) else None
    if events is None:
        console.print(f"[red]no events for {', '.join(symbol)} on {date}[/]")
        raise typer.Exit(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = export_project_csv(events, cat.symbols, cat.venues, out)
    for w in caught:
        console.print(f"[yellow]note:[/] {w.message}")
    for p in paths:
        console.print(f"wrote {p}")


DEFAULT_DATA = SHARED_DATA


def samples_dir() -> Path:
    """The real excerpts shipped inside the package (origin notes in each folder's README)."""
    return Path(__file__).resolve().parents[1] / "samples"


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the catalog, reports and summary go.")] = Path("out/demo"),
    synthetic: Annotated[bool, typer.Option(help="Also run one simulated day with planted episodes.")] = True,
) -> None:
    """Main job on the bundled real sample: import, checks, books, features, signals, backtest, report."""
    from quantedge.backtest.pipeline import run_main_job

    console.rule("[bold]QuantEdge main job")
    with console.status("import, integrity checks, books, features, signals, accumulation backtest… "
                        "(the first run compiles the kernels: a few minutes)"):
        res = run_main_job(out, synthetic=synthetic)
    console.print(res["summary_text"], markup=False, highlight=False)
    console.rule()
    console.print(f"summary: {res['summary_path']}")
    for run in res["runs"]:
        html = run.get("outputs", {}).get("html")
        if html:
            console.print(f"report {run.get('symbol', '')} {run.get('date', '')}: {html}")


@app.command()
def bench(
    data: Annotated[Path, typer.Option(help="Real data folder (../shared/data).")] = DEFAULT_DATA,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Run only these (repeat the option or separate by commas): imports, stream, books, "
                          "features, signals, backtest, iqfeed."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """Measure every stage on the real data (see BENCHMARKS.md for the figures and the machine).

    The Kafka pipeline and the dashboard have their own runners (they start a broker / a browser):
    ``python -m quantedge.live.bench`` and ``python -m quantedge.dashboard.bench``.
    """
    import json

    from quantedge import benchmarks as bm

    if not data.is_dir():
        console.print(f"[red]real data folder {data} not found[/] (use --data)")
        raise typer.Exit(1)
    only = [x.strip() for o in only or [] for x in o.split(",") if x.strip()]
    unknown = set(only) - set(bm.STAGES)
    if unknown:
        console.print(f"[red]unknown benchmark(s) {', '.join(sorted(unknown))}[/]; "
                      f"choose from {', '.join(bm.STAGES)}")
        raise typer.Exit(2)
    console.print(f"machine: {bm.machine()}")
    results: list[dict] = []
    for name, fn in bm.STAGES.items():
        if only and name not in only:
            continue
        with console.status(f"benchmark: {name}…"):
            got = fn(data)
        results += got
        for r in got:
            console.print(json.dumps(r, default=str), markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        json_out.write_text(json.dumps({"machine": bm.machine(), "results": results}, indent=1, default=str))


def _register_stage_commands() -> None:
    """Sub-commands that live next to their stage (one module each under quantedge/cli)."""
    from quantedge.cli import (
        backtest_cmd,
        book_cmd,
        check_cmd,
        dashboard_cmd,
        iqfeed_cmd,
        live_cmd,
        research_cmd,
        signals_cmd,
        synth_cmd,
    )

    check_cmd.register(app)
    book_cmd.register(app)
    synth_cmd.register(app)
    research_cmd.register(app)
    backtest_cmd.register(app)
    signals_cmd.register(app)
    iqfeed_cmd.register(app)
    live_cmd.register(app)
    dashboard_cmd.register(app)


_register_stage_commands()


def main() -> None:
    """The ``quantedge`` command.  Errors the commands foresee are reported by them (naming the file,
    line, key or option); anything else still ends in one clear line and exit code 1, not a Python
    traceback (set ``QUANTEDGE_DEBUG=1`` for the traceback when reporting a bug)."""
    plain_errors_off_terminal()
    try:
        app()
    except Exception as e:  # noqa: BLE001 - the last line of defence of a command-line tool
        if os.environ.get("QUANTEDGE_DEBUG"):
            raise
        console.print(f"[red]quantedge: {type(e).__name__}: {e}[/red]\n"
                      "(an unexpected error; QUANTEDGE_DEBUG=1 shows where it happened)")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
