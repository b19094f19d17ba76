"""``quantedge dashboard``: serve the replay / scanner dashboard on a local web port."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantedge.cli.output import new_console


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to the given Typer app."""

    @app.command("dashboard")
    def dashboard(
        config: Annotated[
            Path | None,
            typer.Option(
                "--config", "-f", help="Backtest YAML: data, strategy, execution, fees, risk (as `backtest`)."
            ),
        ] = None,
        lobster: Annotated[Path | None, typer.Option(help="LOBSTER zip, folder or message file.")] = None,
        iqfeed: Annotated[Path | None, typer.Option(help="IQFeed tick history file.")] = None,
        catalog: Annotated[Path | None, typer.Option(help="Catalog root (with --date).")] = None,
        date: Annotated[str | None, typer.Option(help="Day to play, YYYY-MM-DD (ET).")] = None,
        symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols (default: all).")] = None,
        strategy: Annotated[str | None, typer.Option(help="Strategy name (overrides the config).")] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set", help="Config override dotted.key=value, e.g. strategy.params.qty=200 (repeatable)."
            ),
        ] = None,
        signals: Annotated[
            Path | None,
            typer.Option(help="Signal log to replay with the day (.npy SIGNAL_DTYPE, .parquet or .csv)."),
        ] = None,
        signal_config: Annotated[
            Path | None, typer.Option(help="Detector parameters YAML (default config/strategy_params.yaml).")
        ] = None,
        no_detectors: Annotated[
            bool,
            typer.Option(
                "--no-detectors", help="Do not run the signal detectors (show only --signals, if any)."
            ),
        ] = False,
        attach: Annotated[
            str | None,
            typer.Option(
                help="Attach to a running scanner's Redis state instead of replaying, e.g. redis://127.0.0.1:36379/0"
            ),
        ] = None,
        host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 keeps it local).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8765,
        speed: Annotated[float, typer.Option(help="Initial replay speed (x real time).")] = 10.0,
        play: Annotated[bool, typer.Option("--play/--paused", help="Start playing at once.")] = False,
        output: Annotated[Path | None, typer.Option(help="Where the run's report files go.")] = None,
    ) -> None:
        """Replay a day through books, features, signals and a strategy in the browser, or watch a scanner."""
        import uvicorn

        from quantedge.dashboard.app import build_config, free_port, load_signals
        from quantedge.dashboard.server import create_app
        from quantedge.dashboard.session import DetectorStage, ReplaySession, SessionError

        console = new_console(stderr=True)
        overrides = {}
        for item in set_ or []:
            if "=" not in item:
                console.print(f"[red]--set {item!r}: expected key=value[/red]")
                raise typer.Exit(2)
            k, v = item.split("=", 1)
            overrides[k.strip()] = v
        if attach:  # a scanner's live state: nothing to replay, so replay options would be ignored
            given = [name for name, v in (("--config", config), ("--lobster", lobster), ("--iqfeed", iqfeed),
                                          ("--catalog", catalog), ("--date", date), ("--symbols", symbols),
                                          ("--strategy", strategy), ("--signals", signals), ("--set", set_))
                     if v]
            if given:
                raise typer.BadParameter(f"--attach watches a running scanner; {', '.join(given)} "
                                         "only apply to a replay", param_hint="--attach")
        try:
            if attach:
                from quantedge.dashboard.attach import AttachSession

                session = AttachSession(attach)
            else:
                cfg = build_config(
                    config,
                    overrides,
                    lobster=lobster,
                    iqfeed=iqfeed,
                    catalog=catalog,
                    date=date,
                    symbols=[s.strip() for s in symbols.split(",")] if symbols else None,
                    strategy=strategy,
                    output=output,
                )
                console.print(f"loading {cfg.data.get('source')} data ...")
                stage = None if no_detectors else DetectorStage(signal_config)
                session = ReplaySession(cfg, signal_stage=stage)
                if signals is not None:
                    sig = load_signals(signals, session.info.names)
                    session = ReplaySession(cfg, signals=sig, signal_stage=stage)
                session.set_speed(speed)
                session.paused = not play
        except (ValueError, SessionError, OSError) as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        try:
            port = port or free_port(host)
            _check_listen(host, port)
        except OSError as e:  # a port in use, an address that is not ours: before the banner says "running"
            console.print(f"[red]cannot listen on {host}:{port}: {e}[/red]")
            raise typer.Exit(2) from None
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[yellow]listening on {host}: the dashboard has no authentication[/yellow]")
        console.print(f"dashboard: http://{host}:{port}/  (Ctrl-C to stop)")
        uvicorn.run(create_app(session), host=host, port=port, log_level="warning", ws="websockets-sansio")


def _check_listen(host: str, port: int) -> None:
    """Bind and release ``host:port`` (raises OSError where the server could not listen)."""
    import socket

    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(info[0], socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(info[4])
