"""``quantedge publish`` and ``quantedge scan``: the live "Kafka in, Kafka out" pipeline.

See docs/streaming.md for topics, encodings, the signal schema and delivery semantics.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from quantedge.cli.args import choice, existing_catalog, output_file, parse_date
from quantedge.cli.output import new_console

console = new_console()
DEFAULT_CATALOG = Path(os.environ.get("QUANTEDGE_CATALOG", "catalog"))


def _kafka(bootstrap: str | None, topic_prefix: str, create: bool,  # noqa: ANN202
           settings_file: Path | None = None, options: list[str] | None = None):
    from quantedge.live.kafka_io import (
        KafkaConfig,
        KafkaIOError,
        KafkaSettingsError,
        ensure_topics,
        load_client_properties,
        parse_client_options,
    )

    try:
        cfg = KafkaConfig.from_env()
        if settings_file is not None:
            cfg = cfg.with_settings(load_client_properties(settings_file))
        if options:
            cfg = cfg.with_settings(parse_client_options(options))
        if bootstrap:
            cfg = replace(cfg, bootstrap_servers=bootstrap)
        if cfg.extra:
            logging.getLogger("quantedge.kafka").info("kafka client settings: %s", cfg.describe_settings())
        if topic_prefix:
            cfg = replace(cfg, l2_topic=topic_prefix + cfg.l2_topic,
                          trades_topic=topic_prefix + cfg.trades_topic,
                          quotes_topic=topic_prefix + cfg.quotes_topic,
                          signals_topic=topic_prefix + cfg.signals_topic,
                          dead_letter_topic=topic_prefix + cfg.dead_letter_topic)
        if create:
            ensure_topics(cfg)
    except (KafkaIOError, KafkaSettingsError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    return cfg


def _ports(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, spec.split(",")):
        role, _, port = part.partition("=")
        if not port.isdigit():
            raise typer.BadParameter(f"--iqfeed-ports: {part!r} is not ROLE=PORT (e.g. level1=5009)")
        out[role.strip()] = int(port)
    return out


def _symbols(spec: str | None) -> list[str] | None:
    return [s.strip() for s in spec.split(",") if s.strip()] if spec else None


def _catalog_stream(catalog: Path, symbols: str | None, start: str | None, end: str | None):  # noqa: ANN202
    """The catalog source of publish / scan: (batches, id -> name), or a usage error naming the
    option when the selection is empty (a run over nothing is not a success)."""
    from quantedge.catalog.store import Catalog

    existing_catalog(catalog)
    d0, d1 = parse_date(start, "--start"), parse_date(end, "--end")
    if d0 and d1 and d1 < d0:
        raise typer.BadParameter(f"{end} is before --start {start}", param_hint="--end")
    cat = Catalog(catalog)
    syms = _symbols(symbols)
    known = set(cat.symbols.names())
    unknown = [x for x in syms or () if x not in known]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)} not in catalog {catalog}", param_hint="--symbols")
    if not cat.partitions(symbols=syms, start=d0, end=d1):
        which = ", ".join(syms) if syms else "any symbol"
        raise typer.BadParameter(f"catalog {catalog} has no data for {which} "
                                 f"from {start or 'the first day'} to {end or 'the last day'}",
                                 param_hint="--start/--end")
    return cat.stream(symbols=syms, start=d0, end=d1, batch_rows=1 << 16), cat.symbols.name


def _feed_unreachable(source: str, host: str, ports: str, err: OSError) -> None:
    """An I/O error from the IQFeed source names where it looked; any other is re-raised."""
    if source != "iqfeed":
        raise err
    console.print(f"[red]error:[/] cannot read IQFeed at {host} (--iqfeed-host), ports "
                  f"{ports or 'default'} (--iqfeed-ports): {err}")
    raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``publish`` and ``scan`` to the main app."""

    @app.command("publish")
    def publish(
        source: Annotated[str, typer.Option(help="catalog (replay days) or iqfeed (live bridge).")]
        = "catalog",
        catalog: Annotated[Path, typer.Option("--catalog", "-c", help="Catalog to replay.")]
        = DEFAULT_CATALOG,
        symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols (default: all).")] = None,
        start: Annotated[str | None, typer.Option(help="First day YYYY-MM-DD (catalog).")] = None,
        end: Annotated[str | None, typer.Option(help="Last day YYYY-MM-DD (catalog).")] = None,
        speed: Annotated[float, typer.Option(min=0.0,
                                             help="Replay speed factor (1 = real time, 0 = max).")] = 0.0,
        slice_ms: Annotated[float, typer.Option(min=0.001,
                                                help="Slice length in wall ms (the batching delay).")] = 10.0,
        group: Annotated[str, typer.Option(help="Records per slice: partition (its symbols in one record "
                                                "per role) or symbol (one per symbol).")] = "partition",
        bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
        kafka_config: Annotated[Path | None, typer.Option(
            help="Kafka client settings file (key=value lines: security.protocol, sasl.*, ...).")] = None,
        kafka_option: Annotated[list[str] | None, typer.Option(
            help="One Kafka client setting KEY=VALUE (repeatable; wins over --kafka-config).")] = None,
        topic_prefix: Annotated[str, typer.Option(help="Prefix for every topic name.")] = "",
        iqfeed_host: Annotated[str, typer.Option(help="IQConnect / simulator host.")] = "127.0.0.1",
        iqfeed_ports: Annotated[str, typer.Option(help="ROLE=PORT list, e.g. level1=5009,level2=9200.")] = "",
        depth: Annotated[str | None, typer.Option(help="Level 2 watch: order, price or mm.")] = None,
        idle_exit: Annotated[float | None, typer.Option(help="iqfeed: stop after this many s without data.")]
        = None,
        max_events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
        linger_ms: Annotated[int, typer.Option(min=0, help="Producer batching delay.")] = 5,
    ) -> None:
        """Publish normalized events to the raw topics (QEB2 batches placed by symbol key)."""
        from quantedge.live.publisher import Publisher, iqfeed_batches

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        choice(group, ("partition", "symbol"), "--group")
        choice(source, ("catalog", "iqfeed"), "--source")
        if source == "catalog":
            batches, names_of = _catalog_stream(catalog, symbols, start, end)
        kcfg = replace(_kafka(bootstrap, topic_prefix, True, kafka_config, kafka_option), linger_ms=linger_ms)
        if source == "iqfeed":
            syms = _symbols(symbols)
            if not syms:
                console.print("[red]error:[/] --source iqfeed needs --symbols")
                raise typer.Exit(2)
            batches, names_of = iqfeed_batches(iqfeed_host, _ports(iqfeed_ports), syms, depth=depth,
                                               idle_exit_s=idle_exit, max_events=max_events)
        pub = Publisher(kcfg, names_of, slice_ms=slice_ms, speed=speed, group=group)
        try:
            rep = pub.publish(batches, max_events=max_events)
        except OSError as e:  # the feed, not Kafka (its errors are KafkaIOError)
            _feed_unreachable(source, iqfeed_host, iqfeed_ports, e)
        console.print(f"published {rep.events:,} events in {rep.records:,} Kafka records "
                      f"({rep.slices:,} slices) in {rep.seconds:.1f}s: {rep.events_per_s:,.0f} events/s")
        console.print(f"broker outages: {rep.outages} ({rep.outage_seconds:.1f}s)")
        if rep.interrupted:
            console.print("[yellow]interrupted (Ctrl-C): the events above were sent and flushed; the rest "
                          "of the selection was not published[/yellow]")
            raise typer.Exit(130)
        for line in rep.outage_log:
            console.print(f"  {line}")

    @app.command("scan")
    def scan(
        source: Annotated[str, typer.Option(help="kafka (consumer group), iqfeed or catalog.")] = "kafka",
        sink: Annotated[str, typer.Option(help="Comma-separated: kafka, redis.")] = "kafka,redis",
        catalog: Annotated[Path, typer.Option("--catalog", "-c", help="Catalog (source catalog).")]
        = DEFAULT_CATALOG,
        symbols: Annotated[str | None, typer.Option(help="Symbols (catalog/iqfeed sources).")] = None,
        start: Annotated[str | None, typer.Option(help="First day (catalog).")] = None,
        end: Annotated[str | None, typer.Option(help="Last day (catalog).")] = None,
        mode: Annotated[str, typer.Option(help="Features path: nbbo (L1) or l2 (depth).")] = "nbbo",
        emit: Annotated[str, typer.Option(help="triggers (rising edges) or scores (every emitted row).")]
        = "triggers",
        signal_config: Annotated[Path | None, typer.Option(help="Signal parameter YAML.")] = None,
        group: Annotated[str, typer.Option(help="Consumer group id.")] = "quantedge-scanner",
        snapshot_dir: Annotated[Path | None, typer.Option(help="State snapshots (shared by the group).")]
        = Path("build/scanner-snapshots"),
        snapshot_interval: Annotated[float, typer.Option(help="Seconds between snapshots.")] = 5.0,
        features_parquet: Annotated[Path | None, typer.Option(help="Write sampled feature rows here.")]
        = None,
        metrics_port: Annotated[int | None, typer.Option(min=0, max=65535,
                                                         help="Serve /metrics on this port (0 = any).")]
        = None,
        bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
        kafka_config: Annotated[Path | None, typer.Option(
            help="Kafka client settings file (key=value lines: security.protocol, sasl.*, ...).")] = None,
        kafka_option: Annotated[list[str] | None, typer.Option(
            help="One Kafka client setting KEY=VALUE (repeatable; wins over --kafka-config).")] = None,
        topic_prefix: Annotated[str, typer.Option(help="Prefix for every topic name.")] = "",
        iqfeed_host: Annotated[str, typer.Option(help="IQConnect / simulator host.")] = "127.0.0.1",
        iqfeed_ports: Annotated[str, typer.Option(help="ROLE=PORT list.")] = "",
        max_seconds: Annotated[float | None, typer.Option(min=0.0, help="Stop after this long.")] = None,
        idle_exit: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many s without data.")
                             ] = None,
        max_events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    ) -> None:
        """Books + features + signals over a stream; signals to trading.signals, state to Redis."""
        from quantedge.live.metrics import Metrics, MetricsServer
        from quantedge.live.scanner import Outputs, ScanConfig, ScannerService, scan_events
        from quantedge.signals.config import SignalConfigError, load_config

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        sinks = [s.strip() for s in sink.split(",") if s.strip()]
        for s_ in sinks:
            choice(s_, ("kafka", "redis"), "--sink")
        choice(source, ("kafka", "iqfeed", "catalog"), "--source")
        choice(mode, ("nbbo", "l2"), "--mode")
        choice(emit, ("triggers", "scores"), "--emit")
        if features_parquet is not None:
            output_file(features_parquet, "--features-parquet")
        try:
            sig_conf = load_config(signal_config)
        except SignalConfigError as e:
            raise typer.BadParameter(str(e), param_hint="--signal-config") from None
        cat_stream = _catalog_stream(catalog, symbols, start, end) if source == "catalog" else None
        cfg = ScanConfig(mode=mode, emit=emit, signal_config=sig_conf, group_id=group,
                         snapshot_dir=snapshot_dir, snapshot_interval_s=snapshot_interval,
                         feature_parquet=features_parquet)
        metrics = Metrics()
        try:
            server = MetricsServer(metrics, port=metrics_port) if metrics_port is not None else None
        except OSError as e:
            raise typer.BadParameter(f"cannot serve on port {metrics_port}: {e}",
                                     param_hint="--metrics-port") from None
        if server is not None:
            console.print(f"metrics: {server.url}")
            logging.getLogger("quantedge.scanner").info("metrics endpoint %s", server.url)
        try:
            if source == "kafka":
                kcfg = _kafka(bootstrap, topic_prefix, True, kafka_config, kafka_option)
                svc = ScannerService(kcfg, cfg, sinks=sinks, metrics=metrics)
                svc.run(max_seconds=max_seconds, idle_exit_s=idle_exit, max_events=max_events)
            elif source in ("catalog", "iqfeed"):
                from quantedge.live.kafka_io import KeyedProducer
                from quantedge.live.scanner import FeatureParquet

                kcfg = _kafka(bootstrap, topic_prefix, "kafka" in sinks, kafka_config, kafka_option)
                producer = KeyedProducer(kcfg) if "kafka" in sinks else None
                redis_sink = None
                if "redis" in sinks:
                    from quantedge.live.redis_state import RedisStateSink

                    redis_sink = RedisStateSink()
                outputs = Outputs(kcfg, producer, redis_sink, metrics)
                if cat_stream is not None:
                    batches, names_of = cat_stream
                else:
                    from quantedge.live.publisher import iqfeed_batches

                    syms = _symbols(symbols)
                    if not syms:
                        console.print("[red]error:[/] --source iqfeed needs --symbols")
                        raise typer.Exit(2)
                    batches, names_of = iqfeed_batches(iqfeed_host, _ports(iqfeed_ports), syms,
                                                       idle_exit_s=idle_exit, max_events=max_events)
                fw = FeatureParquet(features_parquet) if features_parquet else None
                try:
                    scan_events(batches, names_of, cfg, outputs, fw)
                except OSError as e:
                    _feed_unreachable(source, iqfeed_host, iqfeed_ports, e)
            else:
                raise typer.BadParameter(f"--source must be kafka, iqfeed or catalog, got {source!r}")
        finally:
            if server is not None:
                server.close()
        console.print(f"events {int(metrics.get('events_total')):,}, signals "
                      f"{int(metrics.get('signals_emitted_total')):,}, dead letters "
                      f"{int(metrics.get('dead_letters_total')):,}")
        unwritten = int(metrics.get("redis_signals_buffered")) + int(metrics.get("redis_signals_dropped"))
        if "redis" in sinks and unwritten:  # the run ends with signals Redis never got: say so, fail
            console.print(f"[red]error:[/] {unwritten:,} signals were not written to Redis (unavailable: "
                          f"{int(metrics.get('redis_outages_total'))} outage(s)); they are lost to the Redis "
                          "state" + (", but were sent to Kafka" if "kafka" in sinks else ""))
            raise typer.Exit(1)
