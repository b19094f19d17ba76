"""Publisher -> real broker -> scanner -> signals/Redis, with faults, on the real NEPT IQFeed days.

Every test uses its own topics, group and Redis prefix.  The reference is the scanner's compute run
directly over the catalog (the backtest's kernels, no Kafka): after dedupe by signal id the signals on
the topic must equal it exactly, whatever happened in between (crash, outage, rebalance, bad data).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from quantedge.catalog.store import Catalog
from quantedge.live import codec, signal_schema
from quantedge.live.kafka_io import GroupConsumer, KafkaConfig, KeyedProducer, ensure_topics
from quantedge.live.metrics import Metrics, MetricsServer
from quantedge.live.publisher import Publisher
from quantedge.live.redis_state import RedisStateConfig, RedisStateSink
from quantedge.live.scanner import Outputs, ScanConfig, ScannerService, scan_events

REPO = Path(__file__).resolve().parents[2]
DAY = "2021-03-01"


@pytest.fixture(scope="module")
def nept(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    from quantedge.catalog.importing import import_paths

    src = shared_data / "iqfeed" / "NEPT_ticks_2021-03-01_2021-03-03.csv"
    if not src.exists():
        pytest.skip(f"{src} not present")
    root = tmp_path_factory.mktemp("nept_catalog")
    reps = import_paths(Catalog(root), "iqfeed", [src])
    assert sum(r.rows_imported for r in reps) > 30_000
    return Catalog(root)


def reference(cat: Catalog, emit: str = "scores", day: str | None = None) -> dict[str, tuple]:
    out = Outputs(None, None, None, Metrics())
    scan_events(cat.stream(start=day, end=day, batch_rows=4096), cat.symbols.name, ScanConfig(emit=emit), out)
    return {d["signal_id"]: signal_schema.content(d) for d in out.collected}


def kcfg(bootstrap: str, run_id: str) -> KafkaConfig:
    cfg = replace(KafkaConfig(bootstrap_servers=bootstrap), l2_topic=f"t{run_id}.l2",
                  trades_topic=f"t{run_id}.tr", quotes_topic=f"t{run_id}.q", signals_topic=f"t{run_id}.sig",
                  dead_letter_topic=f"t{run_id}.dlq")
    ensure_topics(cfg)
    return cfg


def read_topic(cfg: KafkaConfig, topic: str, want: int, timeout: float = 30.0) -> list:
    c = GroupConsumer(cfg, f"reader-{topic}-{time.time_ns()}", [topic])
    msgs: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(msgs) < want:
            msgs.extend(c.poll_batch(10_000, 0.5))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # anything beyond `want` (duplicates) within a second
            msgs.extend(c.poll_batch(10_000, 0.2))
    finally:
        c.close()
    return msgs


def signals_on_topic(cfg: KafkaConfig, want: int) -> tuple[dict[str, tuple], int]:
    """Signals after dedupe by id (every value validated against the schema), and how many raw."""
    msgs = read_topic(cfg, cfg.signals_topic, want)
    got: dict[str, tuple] = {}
    for m in msgs:
        d = signal_schema.decode(m.value())
        assert m.key().decode() == d["symbol"]
        c = signal_schema.content(d)
        assert got.setdefault(d["signal_id"], c) == c, "same id, different content"
    return got, len(msgs)


def publish(cfg: KafkaConfig, cat: Catalog, day: str | None = None, speed: float = 0.0) -> Publisher:
    pub = Publisher(cfg, cat.symbols.name, slice_ms=50, speed=speed)
    pub.publish(cat.stream(start=day, end=day, batch_rows=4096))
    return pub


def scan_config(run_id: str, tmp_path: Path, **kw: object) -> ScanConfig:
    return ScanConfig(emit="scores", group_id=f"g{run_id}", snapshot_dir=tmp_path / "snapshots",
                      snapshot_interval_s=0.5, commit_interval_s=0.2, **kw)


# ------------------------------------------------------------------------------------------------ tests
def test_pipeline_equals_catalog_run_with_dead_letters_metrics_and_redis(nept: Catalog, bootstrap: str,
                                                                         redis_url: str, run_id: str,
                                                                         tmp_path: Path) -> None:
    cfg = kcfg(bootstrap, run_id)
    ref = reference(nept)
    assert len(ref) > 500
    prod = KeyedProducer(cfg)
    # malformed values interleaved with the real stream: garbage, truncated batch, wrong topic role
    good = codec.encode(nept.read("NEPT", DAY)[:0], codec.ROLE_TRADES, 1, 1, 0, ["NEPT"])
    prod.produce(cfg.trades_topic, b"not a QEB2 batch, just some text" * 2, key="NEPT")
    prod.produce(cfg.quotes_topic, good[:20], key="NEPT")
    prod.produce(cfg.quotes_topic, good, key="NEPT")
    prod.flush()
    pub = publish(cfg, nept)

    metrics = Metrics()
    server = MetricsServer(metrics)
    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}"))
    svc = ScannerService(cfg, scan_config(run_id, tmp_path), sinks=("kafka", "redis"), redis_sink=sink,
                         metrics=metrics)
    svc.run(max_seconds=60, max_events=pub.report.events)
    text = urllib.request.urlopen(server.url, timeout=5).read().decode()
    server.close()

    got, _raw = signals_on_topic(cfg, len(ref))
    assert got == ref
    # dead letters carry the reason and the origin; the scanner went on (signals above are complete)
    dl = read_topic(cfg, cfg.dead_letter_topic, 3)
    reasons = sorted(dict(m.headers())["dlq.reason"].decode() for m in dl)
    assert len(dl) == 3
    assert any("magic" in r for r in reasons) and any("shorter" in r for r in reasons)
    assert any("role trades on topic" in r for r in reasons)
    # Prometheus text: throughput, lag per partition, dead letters, latency summary
    assert f"quantedge_events_total {pub.report.events}" in text
    assert 'quantedge_consumer_lag{partition="0",topic="' in text
    assert "quantedge_dead_letters_total 3" in text
    assert 'quantedge_latency_ms{quantile="0.99"}' in text
    # Redis: every signal once in the stream, and the symbol's latest state
    ids = [f["signal_id"] for _e, f in sink.read_signals(count=100_000)]
    assert len(ids) == len(set(ids)) and set(ids) == set(ref)
    state = sink.latest_state("NEPT")
    assert float(state["mid"]) > 0 and state["last_signal_id"] in ref


def test_two_workers_split_partitions(nept: Catalog, bootstrap: str, run_id: str, tmp_path: Path) -> None:
    cfg = replace(kcfg(bootstrap, run_id), raw_partitions=8)
    ref = reference(nept)
    pub = publish(cfg, nept)
    sc = scan_config(run_id, tmp_path)
    workers = [ScannerService(cfg, sc, sinks=("kafka",)) for _ in range(2)]
    seen: list[set[int]] = [set(), set()]

    def run(i: int) -> None:
        w = workers[i]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 25:
            w.handle(w.consumer.poll_batch(5000, 0.2))
            seen[i] |= {p for _t, p in w.consumer.assignment}
            w.checkpoint()
            if len(seen[0] | seen[1]) == 8 and not (seen[0] & seen[1]) and all(seen) and \
                    sum(x.metrics.get("events_total") for x in workers) >= pub.report.events:
                break
        w.checkpoint(force_snapshot=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assign = [{p for _t, p in w.consumer.assignment} for w in workers]
    for w in workers:
        w.consumer.close()
    assert assign[0] and assign[1] and not (assign[0] & assign[1]) and assign[0] | assign[1] == set(range(8))
    got, _raw = signals_on_topic(cfg, len(ref))
    assert got == ref


def _scanner_proc(cfg: KafkaConfig, run_id: str, tmp_path: Path, log: Path) -> subprocess.Popen:
    code = f"""
import logging, sys
from pathlib import Path
from dataclasses import replace
from quantedge.live.kafka_io import KafkaConfig
from quantedge.live.scanner import ScanConfig, ScannerService
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
cfg = replace(KafkaConfig(bootstrap_servers={cfg.bootstrap_servers!r}), l2_topic={cfg.l2_topic!r},
              trades_topic={cfg.trades_topic!r}, quotes_topic={cfg.quotes_topic!r},
              signals_topic={cfg.signals_topic!r}, dead_letter_topic={cfg.dead_letter_topic!r})
sc = ScanConfig(emit="scores", group_id="g{run_id}", snapshot_dir=Path({str(tmp_path / 'snapshots')!r}),
                snapshot_interval_s=0.3, commit_interval_s=0.1)
ScannerService(cfg, sc, sinks=("kafka",)).run(idle_exit_s=4.0, max_seconds=60)
"""
    return subprocess.Popen([sys.executable, "-c", code], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            cwd=REPO)


def test_kill_scanner_mid_stream_and_restart(nept: Catalog, bootstrap: str, run_id: str,
                                             tmp_path: Path) -> None:
    cfg = kcfg(bootstrap, run_id)
    ref = reference(nept, day=DAY)
    assert len(ref) > 100
    first = _scanner_proc(cfg, run_id, tmp_path, tmp_path / "scan1.log")
    # a day of NEPT (16 h) replayed in ~8 s while the scanner runs
    pub_thread = threading.Thread(target=publish, args=(cfg, nept, DAY, 7200.0))
    time.sleep(4.0)  # interpreter start + group join
    pub_thread.start()
    snap = tmp_path / "snapshots" / f"g{run_id}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(snap.glob("*.npz")):
        time.sleep(0.2)
    time.sleep(2.0)
    assert first.poll() is None, (tmp_path / "scan1.log").read_text()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before, _ = signals_on_topic(cfg, 1)
    assert 0 < len(before) < len(ref), "the kill did not land mid-stream"
    second = _scanner_proc(cfg, run_id, tmp_path, tmp_path / "scan2.log")
    pub_thread.join()
    assert second.wait(60) == 0, (tmp_path / "scan2.log").read_text()
    assert "restored" in (tmp_path / "scan2.log").read_text()
    got, raw = signals_on_topic(cfg, len(ref))
    assert got == ref
    assert raw >= len(ref)


def test_redis_outage_scanner_keeps_signalling_and_catches_up(nept: Catalog, services, bootstrap: str,
                                                              redis_url: str, run_id: str,
                                                              tmp_path: Path) -> None:
    cfg = kcfg(bootstrap, run_id)
    ref = reference(nept, day=DAY)
    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}", retry_interval_s=0.2,
                                           socket_timeout_s=0.5))
    metrics = Metrics()
    svc = ScannerService(cfg, scan_config(run_id, tmp_path), sinks=("kafka", "redis"), redis_sink=sink,
                         metrics=metrics)
    pub_thread = threading.Thread(target=publish, args=(cfg, nept, DAY, 4800.0))
    pub_thread.start()
    emitted_during = []

    def outage() -> None:
        deadline = time.monotonic() + 20
        while metrics.get("signals_emitted_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        services.run("stop", "redis")
        n0 = metrics.get("signals_emitted_total")
        time.sleep(3.0)
        emitted_during.append(metrics.get("signals_emitted_total") - n0)
        services.run("start", "redis")

    t = threading.Thread(target=outage)
    t.start()
    try:
        svc.run(max_seconds=60, idle_exit_s=5.0)
    finally:
        t.join()
        pub_thread.join()
        services.run("start", "redis")
    assert emitted_during and emitted_during[0] > 0, "no signals while Redis was down"
    assert sink.stats.outages >= 1 and any("redis back" in x for x in sink.stats.outage_log)
    assert sink.flush(force=True)
    ids = [f["signal_id"] for _e, f in sink.read_signals(count=100_000)]
    assert len(ids) == len(set(ids)) and set(ids) == set(ref)
    got, _raw = signals_on_topic(cfg, len(ref))
    assert got == ref


def test_broker_paused_10s_while_publishing_loses_nothing(nept: Catalog, services, bootstrap: str,
                                                         run_id: str, tmp_path: Path) -> None:
    cfg = kcfg(bootstrap, run_id)
    state = Path(os.environ.get("QUANTEDGE_SERVICES_DIR", REPO / "build" / "services"))
    pidfile = state / "kafka" / "tansu.pid"
    pid = int(pidfile.read_text().strip())
    ref = reference(nept, day=DAY)
    pub = Publisher(cfg, nept.symbols.name, slice_ms=50, speed=7200.0, stall_s=2.0)

    def pause() -> None:
        time.sleep(2.0)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(10.0)
        finally:
            os.kill(pid, signal.SIGCONT)

    t = threading.Thread(target=pause)
    t.start()
    try:
        rep = pub.publish(nept.stream(start=DAY, end=DAY, batch_rows=4096))
    finally:
        t.join()
    assert rep.outages >= 1 and rep.outage_seconds > 5, rep.outage_log
    assert any("broker unavailable" in x for x in rep.outage_log)
    assert any("broker back" in x for x in rep.outage_log)
    assert pub.producer.stats.failed == 0 and pub.producer.stats.delivered == rep.records
    # every event arrived exactly once (idempotent producer) and the signals are complete
    msgs = read_topic(cfg, cfg.trades_topic, 1, timeout=10) + read_topic(cfg, cfg.quotes_topic, 1, timeout=10)
    n = sum(codec.decode(m.value()).events.shape[0] for m in msgs)
    assert n == rep.events == nept.read("NEPT", DAY).shape[0]
    svc = ScannerService(cfg, scan_config(run_id, tmp_path), sinks=("kafka",))
    svc.run(max_seconds=40, max_events=rep.events)
    got, _raw = signals_on_topic(cfg, len(ref))
    assert got == ref
    assert np.isfinite(rep.events_per_s)


def test_publish_interrupted_delivers_what_it_sent(nept: Catalog, bootstrap: str, run_id: str) -> None:
    """Ctrl-C between slices: the records handed to the producer are flushed and counted, the run
    says it was interrupted, and the topics hold exactly the events the report counts."""
    cfg = kcfg(bootstrap, run_id)
    pub = Publisher(cfg, nept.symbols.name, slice_ms=50)

    def batches():
        for i, b in enumerate(nept.stream(start=DAY, end=DAY, batch_rows=1024)):
            if i == 3:
                raise KeyboardInterrupt
            yield b

    rep = pub.publish(batches())
    assert rep.interrupted and 0 < rep.events < nept.read("NEPT", DAY).shape[0]
    assert pub.producer.stats.failed == 0 and pub.producer.stats.delivered == rep.records
    msgs = read_topic(cfg, cfg.trades_topic, 1, timeout=10) + read_topic(cfg, cfg.quotes_topic, 1, timeout=10)
    assert sum(codec.decode(m.value()).events.shape[0] for m in msgs) == rep.events
