"""``quantedge simulate`` (IQConnect emulator) and ``quantedge download`` (tick history -> catalog)."""

from __future__ import annotations

import asyncio
import os

import typer

from quantedge.cli.args import existing_catalog, parse_date
from quantedge.feeds.iqfeed.client import ClientConfig
from quantedge.feeds.iqfeed.simulator import DEFAULT_PORTS, SimConfig, parse_replay_time, serve_forever


def _speed(text: str) -> float:
    if text.lower() == "max":
        return 0.0
    v = float(text.rstrip("xX"))
    if v <= 0:
        raise typer.BadParameter("speed must be > 0 or 'max'")
    return v


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``download`` to the main CLI."""

    @app.command("simulate")
    def simulate(
        catalog: str = typer.Option(..., help="catalog root to replay"),
        symbols: str = typer.Option("", help="comma-separated symbols (default: all)"),
        dates: str = typer.Option("", help="comma-separated YYYY-MM-DD (default: all)"),
        speed: str = typer.Option("1", help="1, 10, 10x ... or 'max'"),
        start: str = typer.Option("", help="replay start 'YYYYMMDD HHMMSS' ET (default: first event)"),
        paused: bool = typer.Option(
            False, help="start paused (resume with S,REPLAY RESUME on the admin port)"
        ),
        level1_port: int = typer.Option(DEFAULT_PORTS["level1"]),
        lookup_port: int = typer.Option(DEFAULT_PORTS["lookup"]),
        level2_port: int = typer.Option(DEFAULT_PORTS["level2"]),
        admin_port: int = typer.Option(DEFAULT_PORTS["admin"]),
        history_rate: float = typer.Option(0.0, help="emulate DTN's history limit (requests/s); 0 = off"),
        protocols: str = typer.Option("6.1,6.2", help="protocol versions S,SET PROTOCOL accepts"),
        check: bool = typer.Option(False, help="load and render, print the ports and line counts, then exit"),
    ) -> None:
        """Serve the catalog as IQConnect would (ports 5009/9100/9200/9300 on 127.0.0.1)."""
        from pathlib import Path

        existing_catalog(Path(catalog))
        for d in filter(None, dates.split(",")):
            parse_date(d, "--dates")
        if history_rate < 0:
            raise typer.BadParameter(f"{history_rate} is below 0", param_hint="--history-rate")
        try:
            cfg = SimConfig(
                catalog,
                symbols=[s for s in symbols.split(",") if s] or None,
                dates=[d for d in dates.split(",") if d] or None,
                speed=_speed(speed),
                start=parse_replay_time(start) if start else None,
                paused=paused,
                ports={
                    "level1": level1_port,
                    "lookup": lookup_port,
                    "level2": level2_port,
                    "admin": admin_port,
                },
                protocols=tuple(p for p in protocols.split(",") if p),
                history_rate=history_rate or None,
            )
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        if check:
            from quantedge.catalog.store import Catalog
            from quantedge.feeds.iqfeed.simulator import CatalogFeed

            feed = CatalogFeed(Catalog(catalog), cfg.symbols, cfg.dates)
            for d in feed.dates:
                r, probs = feed.rendered(d, "l1", "6.2")
                typer.echo(f"{d}: {len(r)} level-1 lines, {len(probs)} not representable")
            return
        typer.echo(f"iqfeed simulator on 127.0.0.1 {cfg.ports} (speed {speed}); Ctrl-C to stop")
        try:
            asyncio.run(serve_forever(cfg))
        except KeyboardInterrupt:
            pass
        except OSError as e:  # a port in use or not ours to bind
            typer.echo(f"error: cannot serve on 127.0.0.1 ports {cfg.ports}: {e}", err=True)
            raise typer.Exit(2) from None

    @app.command("download")
    def download_cmd(
        symbols: str = typer.Option(..., help="comma-separated symbols"),
        start: str = typer.Option(..., help="first date YYYY-MM-DD (ET)"),
        end: str = typer.Option(..., help="last date YYYY-MM-DD (ET)"),
        catalog: str = typer.Option(
            os.environ.get("QUANTEDGE_CATALOG", "catalog"), "--catalog", "-c",
            help="catalog root to fill (env QUANTEDGE_CATALOG)"),
        host: str = typer.Option("127.0.0.1"),
        lookup_port: int = typer.Option(DEFAULT_PORTS["lookup"]),
        rate: float = typer.Option(50.0, help="history requests per second"),
    ) -> None:
        """Fill the catalog from IQFeed tick history (one HTT request per symbol-day)."""
        from quantedge.feeds.iqfeed.download import download

        s, e = parse_date(start, "--start"), parse_date(end, "--end")
        cfg = ClientConfig(host=host, ports={"lookup": lookup_port}, history_rate=rate)
        res = download(catalog, [x for x in symbols.split(",") if x], s, e, cfg)
        for (sym, day), n in sorted(res.written.items()):
            typer.echo(f"{sym} {day}: {n} events")
        for sym, day in res.empty:
            typer.echo(f"{sym} {day}: no data")
        if res.empty and not res.written:
            typer.echo("(a `quantedge simulate` server answers history only up to its replay clock: start it "
                       "at a later time with --dates/--start, docs/iqfeed-client.md)")
        for (sym, day), why in sorted(res.failed.items()):
            typer.echo(f"{sym} {day}: FAILED {why}")
        if res.failed:
            raise typer.Exit(1)
