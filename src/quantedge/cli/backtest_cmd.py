"""``quantedge backtest --config <yaml>``: run a configured backtest with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quantedge.cli.output import new_console


class KeyValueError(ValueError):
    """A command-line override that is not ``key=value``."""


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}`` (the config loader parses values as YAML)."""
    d = {}
    for item in items or []:
        if "=" not in item:
            raise KeyValueError(f"{flag} {item!r}: expected key=value")
        k, v = item.split("=", 1)
        d[k.strip()] = v
    return d


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to the given Typer app."""

    @app.command("backtest")
    def backtest(
        config: Annotated[
            Path, typer.Option("--config", "-f", help="Backtest YAML (see config/backtest_sma.yaml).")
        ],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override: dotted.key=value (repeatable).")
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Output folder (overrides the config).")
        ] = None,
        no_report: Annotated[bool, typer.Option("--no-report", help="Skip the HTML/PNG reports.")] = False,
    ) -> None:
        """Replay data through a strategy and write trades, fills, metrics, equity and reports."""
        from quantedge.backtest.config import BacktestConfig
        from quantedge.backtest.runner import run_backtest

        console = new_console(stderr=True)
        try:
            overrides = _pairs(set_, "--set")
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        if output is not None:
            overrides["output"] = str(output)
        try:
            cfg = BacktestConfig.load(config, overrides)
            cfg.check_data()
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        with Progress(
            TextColumn("backtest"),
            BarColumn(),
            TextColumn("{task.completed:,} events"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as prog:
            task = prog.add_task("run", total=None)

            def cb(done: int, total: int) -> None:
                prog.update(task, completed=done, total=total or None)

            try:
                m = run_backtest(cfg, progress=cb, report=not no_report)
            except (ValueError, OSError) as e:
                console.print(f"[red]backtest failed: {e}[/red]")
                raise typer.Exit(1) from None
        t = Table(title=f"Backtest: {cfg.strategy}")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k in (
            "events",
            "fills",
            "trades",
            "total_return",
            "sharpe",
            "max_drawdown",
            "win_rate",
            "fees_paid",
            "final_equity",
        ):
            v = m.get(k)
            t.add_row(k, f"{v:,.6g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
        new_console().print(t)
        for name, p in m["outputs"].items():
            typer.echo(f"{name}: {p}")
        dr = m.get("data")
        if dr and dr["rows_quarantined"]:
            why = ", ".join(f"{k}={v:,}" for k, v in dr["reasons"].items())
            console.print(f"[yellow]{dr['source']}: {dr['rows_quarantined']:,} of {dr['rows_read']:,} rows "
                          f"skipped as malformed ({why}); first: {dr['first_problems'][0]}[/yellow]")
        for s in m.get("reports_skipped", []):
            console.print(f"[yellow]skipped {s}[/yellow]")

    @app.command("sweep")
    def sweep(
        config: Annotated[
            Path, typer.Option("--config", "-f", help="Backtest YAML every trial starts from.")
        ],
        grid: Annotated[
            list[str], typer.Option("--grid", "-g", help="Swept key: dotted.key=v1,v2,... (repeatable).")
        ],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Fixed override: dotted.key=value (repeatable).")
        ] = None,
        oos: Annotated[
            list[str] | None,
            typer.Option("--oos", help="Out-of-sample override for a rerun of the best trial, e.g. "
                                       "data.date=2021-03-02 (repeatable)."),
        ] = None,
        rank: Annotated[
            str, typer.Option(help="Metric to rank by (sharpe, sortino, total_return, ...).")
        ] = "sharpe",
        output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("out/sweep"),
        workers: Annotated[int | None,
                           typer.Option(min=1, help="Worker processes (default: up to 2).")] = None,
    ) -> None:
        """Run a backtest per grid point, rank them, and report the best trial's deflated Sharpe."""
        from quantedge.backtest.sweep import SweepError, grid_points, parse_grid, run_sweep

        console = new_console(stderr=True)
        try:
            g = parse_grid(grid)
            fixed, oos_set = _pairs(set_, "--set"), _pairs(oos, "--oos")
            with Progress(TextColumn("sweep"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TimeElapsedColumn(), console=console, transient=True) as prog:
                task = prog.add_task("run", total=len(grid_points(g)))
                res = run_sweep(config, g, fixed, output, rank, workers, oos_set,
                                on_trial=lambda _t: prog.advance(task))
        except (SweepError, KeyValueError) as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        except (ValueError, OSError) as e:
            console.print(f"[red]sweep failed: {e}[/red]")
            raise typer.Exit(1) from None
        keys = list(res.grid)
        shown = ("sharpe", "total_return", "max_drawdown", "trades", "fees_paid")
        t = Table(title=f"Sweep: {len(res.trials)} trials, ranked by {res.rank_by}")
        for c in ("rank", "trial", *(k.rsplit(".", 1)[-1] for k in keys), *shown):
            t.add_column(c, justify="left" if c == "trial" else "right")
        for r, ti in enumerate(res.ranking):
            tr = res.trials[ti]
            cells = (["failed"] + [""] * (len(shown) - 1) if tr.error else
                     [f"{tr.metrics.get(m):,.4g}" if isinstance(tr.metrics.get(m), float)
                      else str(tr.metrics.get(m)) for m in shown])
            t.add_row(str(r + 1), tr.name.removeprefix("trial_"), *(tr.values[k] for k in keys), *cells)
        new_console().print(t)
        for tr in res.trials:
            if tr.error:
                console.print(f"[yellow]{tr.name} failed: {tr.error}[/yellow]")
        if res.deflated is not None:
            typer.echo(f"deflated Sharpe of {res.best.name} over {res.deflated['n_trials']} trials: "
                       f"{res.deflated['dsr']:.3f}")
        if res.out_of_sample is not None:
            o = res.out_of_sample["metrics"]
            typer.echo("out of sample: " + ", ".join(f"{m} {o.get(m):.4g}" if isinstance(o.get(m), float)
                                                     else f"{m} {o.get(m)}"
                                                     for m in ("sharpe", "total_return", "trades")))
        for name, p in res.outputs.items():
            typer.echo(f"{name}: {p}")
