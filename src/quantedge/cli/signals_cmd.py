"""``quantedge signals`` (detectors over a catalog day -> Parquet) and ``quantedge evaluate-signals``."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from quantedge import SHARED_DATA
from quantedge.cli.args import existing_catalog, output_file, parse_date
from quantedge.cli.output import new_console

console = new_console()
DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))
SHARED = SHARED_DATA


def signal_config(path: Path | None):  # -> SignalConfig (imported lazily)
    """The signal parameters of ``path`` (None: the defaults); a bad file is one line and exit 2."""
    from quantedge.signals.config import SignalConfigError, load_config

    try:
        return load_config(path)
    except SignalConfigError as e:
        console.print(f"[red]bad signal configuration[/]: {e}")
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``signals`` and ``evaluate-signals`` to the main app."""

    @app.command("signals")
    def signals(
        date: Annotated[str, typer.Argument(help="Catalog date YYYY-MM-DD.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file for the signal records.")],
        catalog: Annotated[Path, typer.Option("--catalog", "-c", help="Catalog.")] = DEFAULT_CATALOG,
        symbol: Annotated[list[str] | None, typer.Option("--symbol", "-s", help="Only these.")] = None,
        mode: Annotated[str, typer.Option(help="Books from: l3 (orders), l2 (depth), nbbo (quotes).")] = "l2",
        config: Annotated[Path | None, typer.Option(help="Signal parameter YAML.")] = None,
        device: Annotated[str, typer.Option(
            help="auto | cpu | gpu (signal stage) | gpu-path (books, features, signals on GPU)")] = "auto",
        all_rows: Annotated[bool, typer.Option(help="Emit every row's scores.")] = False,
    ) -> None:
        """Run books -> features -> signals over one catalog day and write SIGNAL_DTYPE records to Parquet."""
        from quantedge.signals.run import run_catalog_day, write_signals

        cfg = signal_config(config)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        day = parse_date(date, "DATE").isoformat()
        output_file(out, "--out")
        existing_catalog(catalog)
        t0 = time.perf_counter()
        try:
            recs, names, n_events = run_catalog_day(catalog, day, symbol, mode, cfg, device,
                                                    emit_min=0.0 if all_rows else None)
        except ValueError as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(2) from None
        except RuntimeError as e:  # an explicit GPU device on a machine without one
            console.print(f"[red]--device {device}: {e}[/]")
            raise typer.Exit(2) from None
        write_signals(recs, names, out)
        n_trig = int(recs["triggered"].sum()) if recs.shape[0] else 0
        console.print(f"{n_events:,} events, {len(names)} symbols -> {recs.shape[0]:,} signal records "
                      f"({n_trig} triggers) in {time.perf_counter() - t0:.1f} s -> {out}")

    @app.command("evaluate-signals")
    def evaluate_signals(
        symbols: Annotated[int, typer.Option(help="Simulated symbols.")] = 50,
        days: Annotated[int, typer.Option(help="Days per symbol (symbol-days = symbols x days).")] = 4,
        seed: Annotated[int, typer.Option(help="Evaluation seed (thresholds were calibrated on 101).")] = 7,
        penny_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of penny stocks.")] = 0.8,
        config: Annotated[Path | None, typer.Option(help="Signal parameter YAML.")] = None,
        data: Annotated[Path, typer.Option(help="Real data folder for false alarms.")] = SHARED,
        no_real: Annotated[bool, typer.Option("--no-real", help="Skip the real days.")] = False,
        out: Annotated[Path, typer.Option(help="Folder for the .md and .png.")] = Path("out/signals"),
        workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    ) -> None:
        """Precision, recall and lead time per signal on simulated days; false alarms on real days."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from quantedge.signals import evaluate as E

        cfg = signal_config(config)
        if symbols < 1 or days < 1:
            console.print("[red]--symbols and --days must be >= 1[/]")
            raise typer.Exit(2)
        t0 = time.perf_counter()
        with Progress(TextColumn("[bold]simulate+score"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as prog:
            task = prog.add_task("sim", total=symbols)
            sim = E.evaluate_simulated(symbols, days, seed, penny_share, cfg, workers,
                                       on_symbol=lambda n: prog.update(task, advance=n))
        real = []
        if not no_real:
            if not data.is_dir():
                console.print(f"[yellow]real data folder {data} not found: false alarms skipped[/]")
            else:
                for name, rows in E.real_days(data):
                    hours, trig = E.false_alarms(rows, cfg)
                    real.append((name, hours, trig))
        cmd = (f"quantedge evaluate-signals --symbols {symbols} --days {days} --seed {seed} "
               f"--penny-share {penny_share}" + (" --no-real" if no_real else ""))
        md = E.markdown(sim, real, cmd)
        out.mkdir(parents=True, exist_ok=True)
        (out / "signals_quality.md").write_text(md)
        png = E.chart(sim, out / "signals_quality.png")
        console.print(md)
        console.print(f"{time.perf_counter() - t0:.0f} s; wrote {out / 'signals_quality.md'} and {png}")

    @app.command("calibrate-signals")
    def calibrate_signals(
        signal: Annotated[str, typer.Option(help="Signal to calibrate (absorption ... exit, composite).")],
        grid: Annotated[list[str], typer.Option("--grid", "-g", help="section.key=v1,v2,... (repeatable).")],
        symbols: Annotated[int, typer.Option(help="Simulated symbols.")] = 40,
        days: Annotated[int, typer.Option(help="Days per symbol.")] = 3,
        seed: Annotated[int, typer.Option(help="Calibration seed (not the evaluation seed).")] = 101,
        penny_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of penny stocks.")] = 0.8,
        config: Annotated[Path | None, typer.Option(help="Starting parameter YAML.")] = None,
        rounds: Annotated[int, typer.Option(help="Coordinate-search rounds.")] = 2,
        out: Annotated[Path, typer.Option(help="Folder for calibrated.yaml and calibration.md.")] = Path(
            "out/calibration"),
        workers: Annotated[int, typer.Option(min=1, help="Worker processes for the simulation.")] = 2,
    ) -> None:
        """Coordinate search of one signal's parameters on simulated days: maximise min(precision, recall)."""
        from quantedge.signals import calibrate as C

        cfg = signal_config(config)
        try:
            g = C.parse_grid(grid, signal)
            C.signal_column(signal)  # before the simulation, not after it
        except C.CalibrationError as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(2) from None
        if symbols < 1 or days < 1 or rounds < 1:
            console.print("[red]--symbols, --days and --rounds must be >= 1[/]")
            raise typer.Exit(2)
        t0 = time.perf_counter()
        console.print(f"simulating {symbols} x {days} symbol-days (seed {seed}) ...")
        cs = C.simulate_set(symbols, days, seed, penny_share, workers)

        def shown(name: str, v: float, c) -> None:
            console.print(f"  {name} = {v:g}: precision {c.precision:.3f} recall {c.recall:.3f}")

        res = C.coordinate_search(cs, cfg, signal, g, rounds, on_trial=shown)
        cmd = (f"quantedge calibrate-signals --signal {signal} " + " ".join(f"-g {x}" for x in grid)
               + f" --symbols {symbols} --days {days} --seed {seed} --penny-share {penny_share}"
               + f" --rounds {rounds}" + (f" --config {config}" if config else ""))
        paths = C.write_result(out, res, cs, cmd)
        console.print(Path(paths["markdown"]).read_text())
        console.print(f"{time.perf_counter() - t0:.0f} s; wrote {paths['yaml']} and {paths['markdown']}")
