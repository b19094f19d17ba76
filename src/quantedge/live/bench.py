"""Streaming benchmarks: raw-topic codec (QEB2 vs IQFeed text) and publish -> scan -> signals.

Run: ``.venv/bin/python -m quantedge.live.bench`` (defaults: 2000 symbols, max throughput, then paced
loads of 50k/100k/300k events/s; ``--help`` for the options).  Data: the real NEPT day (quotes +
trades) replicated to N symbols with per-symbol time offsets
(:func:`quantedge.features.replay.replicate`), so every symbol carries a real penny-stock stream.

Vocabulary (docs/streaming.md): an *event* is one market-data message — one IQFeed line / feed
message, one EVENT_DTYPE row; a *record* is one Kafka record, which carries a batch of events.  Every
function returns dicts with both rates (``events_per_s``, ``records_per_s``).

Process layout of :func:`pipeline_bench` (the deployed shape: publisher and scanner are separate
services): a publisher process (plus, in the same process, the readers that time the signals on
``trading.signals`` and in the Redis stream) and the scanner in this process.  Latency = receipt time
of the signal by the reader minus the ``published_ns`` of the slice that produced it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

from quantedge import SHARED_DATA
from quantedge.catalog.symbols import NameTable
from quantedge.live import codec, signal_schema
from quantedge.live.kafka_io import GroupConsumer, KafkaConfig, TopicAdmin, ensure_topics
from quantedge.live.metrics import Metrics
from quantedge.live.publisher import Publisher, SliceEncoder
from quantedge.live.scanner import Outputs, ScanConfig, ScannerService, scan_events
from quantedge.signals.config import load_config


def nept_events(shared: Path, day: str = "2021-03-01") -> np.ndarray:
    """The real NEPT day (IQFeed ticks -> catalog -> merge-ordered events)."""
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    root = Path(tempfile.mkdtemp(prefix="qe_bench_cat_"))
    import_paths(Catalog(root), "iqfeed", [shared / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"])
    return Catalog(root).read("NEPT", day)


def universe(base: np.ndarray, n_symbols: int, per_symbol: int,
             offset_ns: int = 10_000_000_007) -> tuple[np.ndarray, list[str]]:
    """``n_symbols`` copies of the first ``per_symbol`` events, merge-ordered, and their names.

    Symbol k is shifted by k * ``offset_ns`` (10 s: 2,000 symbols span 5.6 h, the span of 1,500 NEPT
    events), so the symbols are at different phases of the day and their signals spread over the run
    instead of all firing in the same slice."""
    from quantedge.features.replay import replicate

    ev = replicate(base[:per_symbol], n_symbols, offset_ns=offset_ns)
    return ev, [f"S{i:04d}" for i in range(n_symbols)]


def codec_bench(events: np.ndarray, names: list[str], slice_events: int = 4096) -> list[dict]:
    """Encode + decode cost per event of the two raw-topic encodings on the same events.  QEB2 records
    are built as the publisher builds them (a slice of ``slice_events`` cut by role, 8 partitions)."""
    from quantedge.feeds.iqfeed.client import LineDecoder
    from quantedge.feeds.iqfeed.protocol import LineWriter
    from quantedge.feeds.iqfeed.protocol_system import ns_to_et

    out = []
    enc = SliceEncoder(lambda i: names[i], 8, "partition")
    codec.decode(enc.encode(events[:1024], 0, 0)[0][3])  # first calls (compiles) outside the clock
    t0 = time.perf_counter()
    values = [v for i in range(0, events.shape[0], slice_events)
              for _r, _p, _k, v in enc.encode(events[i:i + slice_events], i, 0)]
    t1 = time.perf_counter()
    n = sum(codec.decode(v).events.shape[0] for v in values)
    t2 = time.perf_counter()
    out.append({"bench": f"codec qeb2 (publisher slices of {slice_events} events, 8 partitions)", "events": n,
                "records": len(values), "encode_events_per_s": round(n / (t1 - t0)),
                "decode_events_per_s": round(n / (t2 - t1)),
                "bytes_per_event": round(sum(map(len, values)) / n, 1)})
    table = NameTable(names)
    w = LineWriter(table)
    t0 = time.perf_counter()
    lines, _p = w.lines(events)
    # a feed opens with a T line (the session date): Q/P lines carry a time of day only
    date, _tod = ns_to_et(int(events["ts_event"][0]))
    data = (f"T,{date:08d} 04:00:00\r\n" + "".join(lines)).encode()  # each line ends with CRLF
    t1 = time.perf_counter()
    LineDecoder("level1", NameTable(names)).feed(data[:65536], time.time_ns())  # compiles its fast path
    dec = LineDecoder("level1", NameTable(names))
    t_dec = time.perf_counter()
    got, _pr = dec.feed(data, time.time_ns())
    t2 = time.perf_counter()
    out.append({"bench": "codec iqfeed text lines", "events": int(events.shape[0]),
                "encode_events_per_s": round(events.shape[0] / (t1 - t0)),
                "decode_events_per_s": round(events.shape[0] / (t2 - t_dec)),
                "decoded_events": int(got.shape[0]),
                "bytes_per_event": round(len(data) / events.shape[0], 1)})
    return out


def _run_config(prefix: str, bootstrap: str | None, partitions: int | None) -> tuple[KafkaConfig, str]:
    """The environment's Kafka settings with fresh topic names for one run (``prefix`` + a random id)
    and, when given, this many partitions per raw topic; and the run id."""
    rid = uuid.uuid4().hex[:8]
    cfg = KafkaConfig.from_env()
    if bootstrap:
        cfg = replace(cfg, bootstrap_servers=bootstrap)
    cfg = replace(cfg, l2_topic=f"{prefix}{rid}.l2", trades_topic=f"{prefix}{rid}.tr",
                  quotes_topic=f"{prefix}{rid}.q", signals_topic=f"{prefix}{rid}.sig",
                  dead_letter_topic=f"{prefix}{rid}.dlq")
    return (replace(cfg, raw_partitions=partitions) if partitions is not None else cfg), rid


def _config_fields(cfg: KafkaConfig) -> dict:
    """What a spawned process needs to rebuild ``cfg`` (broker, client settings, topic names)."""
    return {k: getattr(cfg, k) for k in ("bootstrap_servers", "l2_topic", "trades_topic", "quotes_topic",
                                          "signals_topic", "dead_letter_topic")} | {"extra": dict(cfg.extra)}


def _probe_producer_main(kc: dict, topics: list[str], partitions: int, rate: float, slice_ms: float,
                         seconds: float, event_bytes: int) -> None:
    """Broker probe, producer side: per slice one record per topic and partition, sized as the
    pipeline's records at ``rate`` events/s, the send time in its first 8 bytes."""
    from quantedge.live.kafka_io import KeyedProducer

    prod = KeyedProducer(KafkaConfig(**kc))
    prod.warm()
    n_slices = int(seconds * 1e3 / slice_ms)
    size = max(16, int(rate * slice_ms / 1e3 * event_bytes / (len(topics) * partitions)))
    pad = bytes(size - 8)
    m0 = time.monotonic()
    for k in range(n_slices):
        for t in topics:
            for p in range(partitions):
                prod.produce(t, time.time_ns().to_bytes(8, "little") + pad, partition=p)
        while (left := m0 + (k + 1) * slice_ms / 1e3 - time.monotonic()) > 0:
            prod.poll(min(left, 0.002))
    prod.flush(60.0)


def broker_bench(*, rate: float = 100_000, seconds: float = 30.0, partitions: int = 4,
                 slice_ms: float = 10.0, event_bytes: int = 67, bootstrap: str | None = None) -> dict:
    """The broker alone, no QuantEdge work in between: records of the pipeline's sizes and rate
    (3 topics x ``partitions`` records per ``slice_ms`` carrying ``rate`` events of ``event_bytes``)
    from a producer process to a consumer in this one; latency = receipt - send time, per 5 s of the
    run.  It is the floor under the pipeline's latency on the same broker."""
    cfg, rid = _run_config("p", bootstrap, partitions)
    ensure_topics(cfg)
    topics = list(cfg.raw_topics)
    cons = GroupConsumer(cfg, f"probe{rid}", topics)
    t_join = time.monotonic()
    while not cons.assignment and time.monotonic() - t_join < 30:
        cons.poll_batch(100, 0.1)
    proc = mp.get_context("spawn").Process(
        target=_probe_producer_main, daemon=True,
        args=(_config_fields(cfg), topics, partitions, rate, slice_ms, seconds, event_bytes))
    proc.start()
    expect = int(seconds * 1e3 / slice_ms) * len(topics) * partitions
    sent: list[int] = []
    lat: list[float] = []
    deadline = time.monotonic() + seconds + 120
    while len(lat) < expect and time.monotonic() < deadline:
        msgs = cons.poll_batch(10_000, 0.005)
        now = time.time_ns()
        for m in msgs:
            t_sent = int.from_bytes(m.value()[:8], "little")
            sent.append(t_sent)
            lat.append((now - t_sent) / 1e6)
    proc.join(30)
    cons.close()
    TopicAdmin(cfg).delete_topics([*cfg.raw_topics, cfg.signals_topic, cfg.dead_letter_topic])
    windows = _per_window(sent, lat, min(sent) if sent else 0, seconds)
    return {"bench": "broker only", "partitions": partitions, "offered_events_per_s": rate,
            "records_per_s": round(len(topics) * partitions * 1e3 / slice_ms), "records": len(lat),
            "expected": expect, "latency": _quantiles(lat), "latency_per_5s": windows}


def _per_window(sent_ns: list[int], lat: list[float], t0_ns: int, seconds: float,
                width_s: int = 5) -> list[dict]:
    """p50/p99 of the latencies by send time, in windows of ``width_s`` from ``t0_ns`` (the broker's
    latency drifts as its topics fill: see BENCHMARKS.md)."""
    t = (np.asarray(sent_ns, dtype=np.int64) - t0_ns) / 1e9
    lat_a = np.asarray(lat)
    out = []
    for w0 in range(0, max(1, int(np.ceil(seconds))), width_s):
        sel = (t >= w0) & (t < w0 + width_s)
        q = _quantiles(list(lat_a[sel])) if sel.any() else {"count": 0}
        out.append({"from_s": w0, **{k: v for k, v in q.items() if k in ("count", "p50_ms", "p99_ms")}})
    return out


def _quantiles(lat: list[float]) -> dict[str, float | int]:
    if not lat:
        return {"count": 0}
    q = np.percentile(np.asarray(lat), [50, 90, 99, 100])
    return {"count": len(lat), "p50_ms": round(float(q[0]), 2), "p90_ms": round(float(q[1]), 2),
            "p99_ms": round(float(q[2]), 2), "max_ms": round(float(q[3]), 2)}


def _publisher_main(a: dict, ready: mp.Event, go: mp.Event, done: mp.Event, results: mp.Queue) -> None:
    """Publisher process: readers of the signal topic / Redis stream, then the paced publish."""
    cfg = KafkaConfig(**a["kcfg"])
    ev = np.load(a["events_path"], mmap_mode="r")
    names = a["names"]
    lat_k: list[float] = []
    lat_r: list[float] = []
    pub_k: list[int] = []  # published_ns of each signal read from the topic
    stop = threading.Event()
    joined = threading.Event()

    def read_kafka() -> None:
        c = GroupConsumer(cfg, f"bench-read-{a['rid']}", [cfg.signals_topic])
        while not stop.is_set():
            msgs = c.poll_batch(10_000, 0.05)
            if c.assignment:
                joined.set()
            now = time.time_ns()
            for m in msgs:
                pub_ns = signal_schema.decode(m.value())["published_ns"]
                lat_k.append((now - pub_ns) / 1e6)
                pub_k.append(pub_ns)
        c.close()

    def read_redis() -> None:
        import redis

        r = redis.Redis.from_url(a["redis_url"])
        last = "0-0"
        while not stop.is_set():
            got = r.xread({a["redis_stream"]: last}, count=10_000, block=50)
            now = time.time_ns()
            for _key, entries in got or []:
                for eid, f in entries:
                    lat_r.append((now - int(f[b"published_ns"])) / 1e6)
                    last = eid
        r.close()

    threads = [threading.Thread(target=read_kafka, daemon=True)]
    if a["redis_url"]:
        threads.append(threading.Thread(target=read_redis, daemon=True))
    for t in threads:
        t.start()
    joined.wait(30)
    pub = Publisher(cfg, lambda i: names[i], slice_ms=a["slice_ms"], group=a["group"])
    ready.set()
    go.wait()
    rate, slice_s = a["rate"], a["slice_ms"] / 1e3
    step = int(rate * slice_s) if rate else a["max_slice_events"]
    t0 = time.time()
    m0 = time.monotonic()
    n = ev.shape[0]
    k = 0
    for i in range(0, n, step):
        pub.publish_slice(np.asarray(ev[i:i + step]))
        k += 1
        if rate:
            while True:
                left = m0 + k * slice_s - time.monotonic()
                if left <= 0:
                    break
                pub.producer.poll(min(left, 0.002))
        else:
            pub.producer.poll(0)
    pub.flush()
    t1 = time.time()
    done.wait(a["max_seconds"] + 60)
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(5)
    results.put({"t0": t0, "t1": t1, "events": int(n), "records": pub.report.records,
                 "slices": pub.report.slices, "kafka": _quantiles(lat_k), "redis": _quantiles(lat_r),
                 "kafka_per_5s": _per_window(pub_k, lat_k, int(t0 * 1e9), t1 - t0)})


def pipeline_bench(events: np.ndarray, names: list[str], *, rate: float | None = None,
                   slice_ms: float = 10.0, group: str = "partition", emit: str = "scores",
                   sinks: tuple[str, ...] = ("kafka", "redis"), bootstrap: str | None = None,
                   redis_url: str | None = None, max_seconds: float = 120.0, max_slice_events: int = 20_000,
                   partitions: int | None = None, profile: Path | None = None) -> dict:
    """Publish -> scan -> signals with the publisher in its own process.

    ``rate``: offered load in events/s (a slice of ``rate * slice_ms`` events every ``slice_ms``);
    None publishes as fast as possible (slices of ``max_slice_events``), which measures the sustained
    maximum (the scanner's rate over the whole run, backlog included).  Latency is only meaningful
    below saturation.  ``partitions``: partitions per raw topic (default: the project's
    ``raw_partitions``).  ``profile``: write the scanner's cProfile stats there.

    Signals: the composite triggers at 0.5 held 20 s (the defaults before the per-signal calibration,
    as in the backtest benchmark): at the calibrated defaults the NEPT excerpt triggers nothing, and a
    run without signals would not time the signal path.
    """
    cfg, rid = _run_config("b", bootstrap, partitions)
    ensure_topics(cfg)
    tmp = Path(tempfile.mkdtemp(prefix="qe_bench_"))
    np.save(tmp / "events.npy", events)
    redis_sink = None
    stream = ""
    if "redis" in sinks:
        from quantedge.live.redis_state import RedisStateConfig, RedisStateSink

        rcfg = RedisStateConfig.from_env(prefix=f"bench{rid}", dedupe_ttl_s=600)
        if redis_url:
            rcfg = replace(rcfg, url=redis_url)
        redis_sink = RedisStateSink(rcfg)
        stream = rcfg.stream_key
        redis_url = rcfg.url
    ctx = mp.get_context("spawn")
    ready, go, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    args = {"kcfg": _config_fields(cfg), "events_path": str(tmp / "events.npy"), "names": names, "rid": rid,
            "redis_url": redis_url if "redis" in sinks else "", "redis_stream": stream, "rate": rate,
            "slice_ms": slice_ms, "group": group, "max_slice_events": max_slice_events,
            "max_seconds": max_seconds}
    proc = ctx.Process(target=_publisher_main, args=(args, ready, go, done, results), daemon=True)
    proc.start()
    sig_conf = load_config().with_values(composite__on_score=0.4, composite__persist_s=20.0)
    scan_cfg = ScanConfig(emit=emit, group_id=f"bench{rid}", snapshot_dir=None, commit_interval_s=0.25,
                          poll_timeout_s=0.005, signal_config=sig_conf)
    # compile (or load from Numba's cache) every kernel before the clock starts: a first compile after a
    # source change takes ~20 s and would be counted as latency
    scan_events([events[:20_000]], lambda i: names[i], scan_cfg, Outputs(None, None, None, Metrics()))
    svc = ScannerService(cfg, scan_cfg, sinks=sinks, redis_sink=redis_sink)
    t_join = time.monotonic()
    while not svc.consumer.assignment and time.monotonic() - t_join < 30:
        svc.handle(svc.consumer.poll_batch(100, 0.2))
    ready.wait(60)
    go.set()
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    svc.run(max_seconds=max_seconds, max_events=events.shape[0])
    t_end = time.time()
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    done.set()
    res = results.get(timeout=max_seconds + 120)
    proc.join(10)
    n_done = int(svc.metrics.get("events_total"))
    wall = t_end - res["t0"]
    n_rec = res["records"]
    out = {"bench": "publish->scan->signals", "data": "NEPT 2021-03-01 replicated", "symbols": len(names),
           "partitions": cfg.raw_partitions,
           "events": int(events.shape[0]), "events_processed": n_done, "group": group, "slice_ms": slice_ms,
           "emit": emit, "sinks": ",".join(sinks),
           "offered_events_per_s": rate if rate else "max",
           "publish_events_per_s": round(res["events"] / max(res["t1"] - res["t0"], 1e-9)),
           "events_per_s": round(n_done / wall), "records": n_rec,
           "records_per_s": round(n_rec * n_done / max(res["events"], 1) / wall),
           "events_per_record": round(res["events"] / max(n_rec, 1), 1),
           "signals": res["kafka"].get("count", 0),
           "latency_to_topic": res["kafka"], "latency_to_topic_per_5s": res["kafka_per_5s"],
           "latency_to_redis": res["redis"],
           "latency_publish_to_scanned": {k: round(v, 2) for k, v in
                                          svc.metrics.quantiles("latency_ms").items()},
           "complete": n_done == events.shape[0]}
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    TopicAdmin(cfg).delete_topics([*cfg.raw_topics, cfg.signals_topic, cfg.dead_letter_topic])
    if redis_url and "redis" in sinks:
        import redis

        r = redis.Redis.from_url(redis_url)
        keys = list(r.scan_iter(match=f"bench{rid}:*", count=10_000))
        for i in range(0, len(keys), 5000):
            r.delete(*keys[i:i + 5000])
        r.close()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED_DATA)
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--events-per-symbol", type=int, default=1500)
    ap.add_argument("--rates", default="max,50000,100000,300000",
                    help="comma-separated offered loads in events/s; 'max' = as fast as possible")
    ap.add_argument("--slice-ms", type=float, default=10.0)
    ap.add_argument("--group", default="partition", choices=("partition", "symbol"))
    ap.add_argument("--emit", default="triggers", choices=("scores", "triggers"))
    ap.add_argument("--sinks", default="kafka,redis")
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--max-seconds", type=float, default=90.0)
    ap.add_argument("--partitions", type=int, default=None,
                    help="partitions per raw topic (default: the project's raw_partitions)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="cProfile the scanner (one file per rate: NAME.RATE.prof)")
    ap.add_argument("--no-codec", action="store_true")
    ap.add_argument("--broker-probe", type=float, default=0.0, metavar="SECONDS",
                    help="first time the broker alone at each paced rate for this long (0: skip)")
    args = ap.parse_args(argv)
    base = nept_events(args.shared)
    ev, names = universe(base, args.symbols, args.events_per_symbol)
    if not args.no_codec:
        for r in codec_bench(ev[:200_000], names):
            print(json.dumps(r), flush=True)
    sinks = tuple(s for s in args.sinks.split(",") if s)
    for r in args.rates.split(","):
        rate = None if r.strip() == "max" else float(r)
        if rate and args.broker_probe > 0:
            print(json.dumps(broker_bench(rate=rate, seconds=args.broker_probe, slice_ms=args.slice_ms,
                                          partitions=args.partitions or KafkaConfig().raw_partitions,
                                          bootstrap=args.bootstrap)), flush=True)
        # every event at every load: the signals need each symbol's whole stream
        res = pipeline_bench(ev, names, rate=rate, slice_ms=args.slice_ms, group=args.group,
                             emit=args.emit, sinks=sinks, bootstrap=args.bootstrap,
                             max_seconds=args.max_seconds, partitions=args.partitions,
                             profile=args.profile.with_suffix(f".{r.strip()}.prof") if args.profile else None)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
