#!/usr/bin/env python3
"""Create the streaming pipeline's Kafka topics with their partition counts (idempotent).

Usage: .venv/bin/python scripts/create_topics.py [--bootstrap HOST:PORT] [--raw-partitions N]
       [--signals-partitions N] [--replication-factor N] [--kafka-config FILE]
The broker address defaults to $QUANTEDGE_KAFKA_BOOTSTRAP, then to the local broker of services.sh.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from quantedge.live.kafka_io import (
    KafkaConfig,
    KafkaIOError,
    KafkaSettingsError,
    ensure_topics,
    load_client_properties,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="bootstrap servers (host:port[,host:port])")
    ap.add_argument("--raw-partitions", type=int)
    ap.add_argument("--signals-partitions", type=int)
    ap.add_argument("--replication-factor", type=int)
    ap.add_argument("--kafka-config",
                    help="Kafka client settings file (key=value lines, see docs/streaming.md)")
    args = ap.parse_args(argv)
    try:
        cfg = KafkaConfig.from_env()
        if args.kafka_config:
            cfg = cfg.with_settings(load_client_properties(args.kafka_config))
    except KafkaSettingsError as exc:
        print(f"create_topics: ERROR: {exc}", file=sys.stderr)
        return 2
    if args.bootstrap:
        cfg = replace(cfg, bootstrap_servers=args.bootstrap)
    if args.raw_partitions:
        cfg = replace(cfg, raw_partitions=args.raw_partitions)
    if args.signals_partitions:
        cfg = replace(cfg, signals_partitions=args.signals_partitions)
    if args.replication_factor:
        cfg = replace(cfg, replication_factor=args.replication_factor)
    try:
        parts = ensure_topics(cfg)
    except KafkaIOError as exc:
        print(f"create_topics: ERROR: {exc} (bootstrap {cfg.bootstrap_servers})", file=sys.stderr)
        return 1
    except KafkaSettingsError as exc:  # librdkafka refused a client setting
        print(f"create_topics: ERROR: {exc}", file=sys.stderr)
        return 2
    for name, n in parts.items():
        print(f"{name}\t{n} partitions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
