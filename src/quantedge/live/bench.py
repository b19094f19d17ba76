"""Streaming benchmarks: raw-topic codec (QEB1 vs IQFeed text) and publish -> scan -> signals.

Run: ``.venv/bin/python -m quantedge.live.bench [--symbols 2000] [--events-per-symbol 1500]``.
Data: the real NEPT day (quotes + trades) replicated to N symbols with per-symbol time offsets
(:func:`quantedge.features.replay.replicate`), so every symbol carries a real penny-stock stream.
Each function returns a dict like ``{"bench": ..., "messages_per_s": ..., "p50_ms": ..., "p99_ms": ...}``
where "messages" are market events (a Kafka message carries a batch of them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

from quantedge.catalog.symbols import NameTable
from quantedge.live import codec, signal_schema
from quantedge.live.kafka_io import GroupConsumer, KafkaConfig, ensure_topics
from quantedge.live.publisher import Publisher
from quantedge.live.scanner import ScanConfig, ScannerService


def nept_events(shared: Path, day: str = "2021-03-01") -> np.ndarray:
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    root = Path(tempfile.mkdtemp(prefix="qe_bench_cat_"))
    import_paths(Catalog(root), "iqfeed", [shared / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"])
    return Catalog(root).read("NEPT", day)


def universe(base: np.ndarray, n_symbols: int, per_symbol: int) -> tuple[np.ndarray, list[str]]:
    from quantedge.features.replay import replicate

    ev = replicate(base[:per_symbol], n_symbols, offset_ns=997)
    return ev, [f"S{i:04d}" for i in range(n_symbols)]


def codec_bench(events: np.ndarray, names: list[str]) -> list[dict]:
    """Encode + decode cost per event of the two raw-topic encodings on the same events."""
    from quantedge.feeds.iqfeed.client import LineDecoder
    from quantedge.feeds.iqfeed.protocol import LineWriter

    out = []
    t0 = time.perf_counter()
    role = {5: codec.ROLE_QUOTES, 6: codec.ROLE_TRADES}
    blobs = [codec.encode(events[i:i + 64], role[int(events["kind"][i])], 1, i, 0)
             for i in range(0, events.shape[0], 64) if (events["kind"][i:i + 64] == events["kind"][i]).all()]
    t1 = time.perf_counter()
    n = sum(codec.decode(b).events.shape[0] for b in blobs)
    t2 = time.perf_counter()
    out.append({"bench": "codec qeb1 (64-event batches)", "events": n, "encode_events_per_s": n / (t1 - t0),
                "decode_events_per_s": n / (t2 - t1), "bytes_per_event": sum(map(len, blobs)) / n})
    table = NameTable(names)
    w = LineWriter(table)
    t0 = time.perf_counter()
    lines, _p = w.lines(events)
    data = ("\r\n".join(lines) + "\r\n").encode()
    t1 = time.perf_counter()
    dec = LineDecoder("level1", NameTable(names))
    got, _pr = dec.feed(data, time.time_ns())
    t2 = time.perf_counter()
    out.append({"bench": "codec iqfeed text lines", "events": int(events.shape[0]),
                "encode_events_per_s": events.shape[0] / (t1 - t0),
                "decode_events_per_s": events.shape[0] / (t2 - t1), "decoded_events": int(got.shape[0]),
                "bytes_per_event": len(data) / events.shape[0]})
    return out


def pipeline_bench(bootstrap: str, events: np.ndarray, names: list[str], speed: float = 0.0,
                   slice_ms: float = 50.0, emit: str = "scores") -> dict:
    """Publisher (thread) and scanner (this thread) in one process against the broker.

    ``speed`` 0 publishes as fast as possible (throughput); a replay speed measures latency below
    saturation.  Latency: signal received on ``trading.signals`` minus the publish time of the slice
    that produced it (``published_ns``), over every signal (emit = scores).
    """
    rid = uuid.uuid4().hex[:8]
    cfg = replace(KafkaConfig.from_env(), l2_topic=f"b{rid}.l2", trades_topic=f"b{rid}.tr",
                  quotes_topic=f"b{rid}.q", signals_topic=f"b{rid}.sig", dead_letter_topic=f"b{rid}.dlq")
    ensure_topics(cfg)
    svc = ScannerService(cfg, ScanConfig(emit=emit, group_id=f"bench{rid}", snapshot_dir=None,
                                         commit_interval_s=0.2), sinks=("kafka",))
    lat: list[float] = []
    n_sig = [0]
    stop = threading.Event()

    def read_signals() -> None:
        c = GroupConsumer(cfg, f"bench-read{rid}", [cfg.signals_topic])
        while not stop.is_set():
            for m in c.poll_batch(10_000, 0.1):
                now = time.time_ns()
                d = signal_schema.decode(m.value())
                lat.append((now - d["published_ns"]) / 1e6)
                n_sig[0] += 1
        c.close()

    pub = Publisher(cfg, lambda i: names[i], slice_ms=slice_ms, speed=speed)
    chunk = 1 << 16

    def run_pub() -> None:
        pub.publish(events[i:i + chunk] for i in range(0, events.shape[0], chunk))

    reader = threading.Thread(target=read_signals, daemon=True)
    reader.start()
    # join the group before publishing so the measured window is steady-state consumption
    t_join = time.monotonic()
    while not svc.consumer.assignment and time.monotonic() - t_join < 30:
        svc.handle(svc.consumer.poll_batch(100, 0.2))
    pt = threading.Thread(target=run_pub)
    t0 = time.monotonic()
    pt.start()
    svc.run(max_seconds=600, max_events=events.shape[0])
    t1 = time.monotonic()
    pt.join()
    time.sleep(2.0)
    stop.set()
    reader.join(5)
    q = np.percentile(lat, [50, 99]) if lat else [float("nan")] * 2
    return {"bench": "publish->scan->signals", "symbols": len(names), "events": int(events.shape[0]),
            "slice_ms": slice_ms, "emit": emit,
            "speed": speed, "messages_per_s": events.shape[0] / (t1 - t0),
            "publish_events_per_s": pub.report.events_per_s, "kafka_messages": pub.report.messages,
            "signals": n_sig[0], "p50_ms": float(q[0]), "p99_ms": float(q[1]),
            "scan_p99_ms_publish_to_produce": svc.metrics.quantiles("latency_ms").get("p99")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--events-per-symbol", type=int, default=1500)
    ap.add_argument("--speed", type=float, default=0.0)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--slice-ms", type=float, default=50.0)
    ap.add_argument("--emit", default="scores")
    args = ap.parse_args(argv)
    base = nept_events(args.shared)
    ev, names = universe(base, args.symbols, args.events_per_symbol)
    for r in codec_bench(ev[:200_000], names):
        print(json.dumps(r))
    if args.bootstrap:
        import os

        os.environ["QUANTEDGE_KAFKA_BOOTSTRAP"] = args.bootstrap
    print(json.dumps(pipeline_bench(KafkaConfig.from_env().bootstrap_servers, ev, names, speed=args.speed,
                                    slice_ms=args.slice_ms, emit=args.emit)))


if __name__ == "__main__":
    main()
