"""``quantedge backtest --config <yaml>``: run a configured backtest with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


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

        console = Console(stderr=True)
        overrides = {}
        for item in set_ or []:
            if "=" not in item:
                console.print(f"[red]--set {item!r}: expected key=value[/red]")
                raise typer.Exit(2)
            k, v = item.split("=", 1)
            overrides[k.strip()] = v
        if output is not None:
            overrides["output"] = str(output)
        try:
            cfg = BacktestConfig.load(config, overrides)
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
        Console().print(t)
        for name, p in m["outputs"].items():
            typer.echo(f"{name}: {p}")
        for s in m.get("reports_skipped", []):
            console.print(f"[yellow]skipped {s}[/yellow]")
