"""Kafka and Redis I/O against the real broker and real Redis started by scripts/services.sh."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from quantedge.live.kafka_io import (
    GroupConsumer,
    KafkaConfig,
    KeyedProducer,
    TopicAdmin,
    commit_after_flush,
    send_to_dead_letter,
)
from quantedge.live.redis_state import RedisStateConfig, RedisStateSink

pytestmark = pytest.mark.slow


def _cfg(bootstrap: str, run_id: str) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=bootstrap,
        l2_topic=f"it.{run_id}.l2",
        trades_topic=f"it.{run_id}.trades",
        quotes_topic=f"it.{run_id}.quotes",
        signals_topic=f"it.{run_id}.signals",
        dead_letter_topic=f"it.{run_id}.dlq",
        raw_partitions=4,
        signals_partitions=2,
    )


def _drain(consumers: list[GroupConsumer], want: int, timeout: float = 30.0) -> list[list]:
    """Poll every consumer in turn until ``want`` messages arrived in total (or time out)."""
    got: list[list] = [[] for _ in consumers]
    deadline = time.monotonic() + timeout
    while sum(map(len, got)) < want and time.monotonic() < deadline:
        for i, c in enumerate(consumers):
            got[i].extend(c.poll_batch(5000, 0.1))
    return got


def _produce_keyed(cfg: KafkaConfig, topic: str, n_keys: int, per_key: int) -> None:
    prod = KeyedProducer(cfg)
    for seq in range(per_key):
        for k in range(n_keys):
            prod.produce(topic, f"{k}:{seq}:".encode().ljust(100, b"."), key=f"SYM{k}")
    prod.flush()
    assert prod.stats.delivered == n_keys * per_key and prod.stats.failed == 0


def test_topics_created_with_partition_counts(bootstrap: str, run_id: str) -> None:
    cfg = _cfg(bootstrap, run_id)
    admin = TopicAdmin(cfg)
    parts = admin.ensure_topics()
    assert parts == {cfg.l2_topic: 4, cfg.trades_topic: 4, cfg.quotes_topic: 4,
                     cfg.signals_topic: 2, cfg.dead_letter_topic: 1}
    assert admin.ensure_topics() == parts  # idempotent
    broker_view = admin.partitions()
    assert all(broker_view[name] == n for name, n in parts.items())


def test_keyed_round_trip_preserves_per_key_order_and_dead_letters(bootstrap: str, run_id: str) -> None:
    cfg = _cfg(bootstrap, run_id)
    TopicAdmin(cfg).ensure_topics()
    n_keys, per_key = 40, 50
    _produce_keyed(cfg, cfg.trades_topic, n_keys, per_key)

    with GroupConsumer(cfg, f"g-order-{run_id}", [cfg.trades_topic]) as cons:
        (msgs,) = _drain([cons], n_keys * per_key)
        seqs: dict[str, list[int]] = defaultdict(list)
        key_partition: dict[str, set[int]] = defaultdict(set)
        for m in msgs:
            key = m.key().decode()
            k, seq, _ = m.value().decode().split(":", 2)
            assert key == f"SYM{k}"
            seqs[key].append(int(seq))
            key_partition[key].add(m.partition())
        assert len(msgs) == n_keys * per_key
        assert all(s == list(range(per_key)) for s in seqs.values()), "per-key order broken"
        assert all(len(p) == 1 for p in key_partition.values()), "a key spread over partitions"
        assert len({next(iter(p)) for p in key_partition.values()}) > 1, "keys not spread at all"

        prod = KeyedProducer(cfg)
        send_to_dead_letter(prod, cfg, msgs[0], "bad field 'price' at column 3")
        prod.flush()
    with GroupConsumer(cfg, f"g-dlq-{run_id}", [cfg.dead_letter_topic]) as dlq:
        (dead,) = _drain([dlq], 1)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers()}
    assert headers["dlq.reason"] == "bad field 'price' at column 3"
    assert headers["dlq.topic"] == cfg.trades_topic
    origin = (int(headers["dlq.partition"]), int(headers["dlq.offset"]))
    assert origin == (msgs[0].partition(), msgs[0].offset())
    assert dead[0].value() == msgs[0].value()


def test_offsets_committed_only_when_told_and_restart_resumes(bootstrap: str, run_id: str) -> None:
    cfg = _cfg(bootstrap, run_id)
    TopicAdmin(cfg).ensure_topics()
    _produce_keyed(cfg, cfg.quotes_topic, 20, 30)
    group = f"g-commit-{run_id}"
    parts = range(cfg.raw_partitions)

    cons = GroupConsumer(cfg, group, [cfg.quotes_topic])
    (msgs,) = _drain([cons], 600)
    assert len(msgs) == 600
    assert cons.committed(cfg.quotes_topic, parts) == {p: None for p in parts}  # nothing auto-committed

    by_part: dict[int, list] = defaultdict(list)
    for m in msgs:
        by_part[m.partition()].append(m)
    half = [m for ms in by_part.values() for m in ms[: len(ms) // 2]]
    cons.mark(half)
    assert cons.committed(cfg.quotes_topic, parts) == {p: None for p in parts}  # marked, not committed

    flushed: list[str] = []
    committed = commit_after_flush(cons, [lambda: flushed.append("sinks")])
    assert flushed == ["sinks"]
    expect = {p: ms[len(ms) // 2 - 1].offset() + 1 for p, ms in by_part.items() if len(ms) // 2 > 0}
    assert {p: off for (_t, p), off in committed.items()} == expect
    on_broker = cons.committed(cfg.quotes_topic, parts)
    assert {p: off for p, off in on_broker.items() if off is not None} == expect
    cons.close()  # the rest was consumed but never marked: it must be replayed

    with GroupConsumer(cfg, group, [cfg.quotes_topic]) as again:
        (replayed,) = _drain([again], 600 - len(half), timeout=20)
    first = {}
    for m in replayed:
        first.setdefault(m.partition(), m.offset())
    assert len(replayed) == 600 - len(half)
    assert first == {p: expect.get(p, 0) for p in by_part}


def test_two_consumers_in_one_group_split_partitions(bootstrap: str, run_id: str) -> None:
    cfg = _cfg(bootstrap, run_id)
    TopicAdmin(cfg).ensure_topics()
    group = f"g-split-{run_id}"
    with GroupConsumer(cfg, group, [cfg.l2_topic]) as c1, GroupConsumer(cfg, group, [cfg.l2_topic]) as c2:
        # Let the group settle on the empty topic, then produce: each member reads only its own share.
        deadline = time.monotonic() + 30
        while (not c1.assignment or not c2.assignment) and time.monotonic() < deadline:
            for c in (c1, c2):
                assert c.poll_batch(100, 0.1) == []
        a1, a2 = set(c1.assignment), set(c2.assignment)
        assert a1 and a2, f"group did not split: {a1} / {a2}"
        assert not a1 & a2
        assert a1 | a2 == {(cfg.l2_topic, p) for p in range(cfg.raw_partitions)}

        _produce_keyed(cfg, cfg.l2_topic, 40, 10)
        got1, got2 = _drain([c1, c2], 400)
        assert len(got1) + len(got2) == 400
        assert got1 and got2
        assert {(m.topic(), m.partition()) for m in got1} <= a1
        assert {(m.topic(), m.partition()) for m in got2} <= a2
        lag = {**c1.lag(), **c2.lag()}
        assert set(lag) == a1 | a2 and all(v == 0 for v in lag.values())


# ----------------------------------------------------------------------------------------------- redis
def test_redis_state_is_written_a_bounded_number_of_symbols_per_flush(redis_url: str, run_id: str) -> None:
    """A flush writes at most ``state_per_flush`` symbol states (oldest pending first), the rest keep their
    latest values for the next flush; a forced flush writes them all; values equal redis-py's encoding."""
    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}", state_per_flush=2))
    for i in range(5):
        sink.update_state(f"S{i}", {"score": 0.25 * i, "n": i, "name": f"s{i}", "raw": b"x\r\ny"})
    sink.update_state("S0", {"score": 0.5})  # latest value wins, position kept
    assert sink.flush()
    assert sink.pending[0] == 3
    assert sink.latest_state("S0") == {"score": "0.5", "n": "0", "name": "s0", "raw": "x\r\ny"}
    assert sink.latest_state("S1")["score"] == "0.25" and sink.latest_state("S2") == {}
    assert sink.flush(force=True) and sink.pending[0] == 0
    assert sink.latest_state("S4") == {"score": "1.0", "n": "4", "name": "s4", "raw": "x\r\ny"}
    sink.close()


def test_scanner_outputs_send_signals_at_once_and_trickle_states(redis_url: str, run_id: str) -> None:
    """Between polls the scanner's outputs write new signals at once and a few symbol states at a time
    (at most one state write per ``every_s``); a checkpoint flush writes signals but leaves the states
    to the trickle; the final flush writes everything."""
    from quantedge.live.metrics import Metrics
    from quantedge.live.scanner import Outputs

    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}"))
    out = Outputs(None, None, sink, Metrics())
    for i in range(10):
        out.state(f"S{i}", {"mid": 1.0 + i})
    out.flush()
    assert sink.pending == (10, 0)  # a checkpoint leaves the states alone
    out.trickle(4, every_s=3600.0)
    assert sink.pending == (6, 0) and sink.latest_state("S3") == {"mid": "4.0"}
    sink.add_signal("sig-1", {"symbol": "S1", "score": 0.9})
    out.trickle(4, every_s=3600.0)  # too soon for states, but the signal goes now
    assert sink.pending == (6, 0) and [f["signal_id"] for _e, f in sink.read_signals()] == ["sig-1"]
    out.flush(final=True)
    assert sink.pending == (0, 0) and sink.latest_state("S9") == {"mid": "10.0"}
    sink.close()


def test_redis_state_hashes_and_signal_stream_are_idempotent(redis_url: str, run_id: str) -> None:
    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}"))
    sink.update_state("AAPL", {"spread_bps": 1.5, "score": 0.2})
    sink.update_state("AAPL", {"score": 0.9, "last_signal": "sig-1"})
    sink.add_signal("sig-1", {"symbol": "AAPL", "kind": "iceberg", "score": 0.9})
    sink.add_signal("sig-2", {"symbol": "MSFT", "kind": "absorption", "score": 0.7})
    assert sink.flush()
    assert sink.latest_state("AAPL") == {"spread_bps": "1.5", "score": "0.9", "last_signal": "sig-1"}
    rows = sink.read_signals()
    assert [f["signal_id"] for _id, f in rows] == ["sig-1", "sig-2"]
    assert rows[0][1] == {"signal_id": "sig-1", "symbol": "AAPL", "kind": "iceberg", "score": "0.9"}

    sink.add_signal("sig-1", {"symbol": "AAPL", "kind": "iceberg", "score": 0.9})  # at-least-once replay
    assert sink.flush()
    assert [f["signal_id"] for _id, f in sink.read_signals()] == ["sig-1", "sig-2"]
    assert sink.stats.signals_written == 2 and sink.stats.signals_deduped == 1
    sink.close()


def test_redis_outage_buffers_then_catches_up(services, redis_url: str, run_id: str) -> None:
    sink = RedisStateSink(RedisStateConfig(url=redis_url, prefix=f"it{run_id}", retry_interval_s=0.2,
                                           socket_timeout_s=0.5))
    sink.update_state("SPY", {"mid": 450.01})
    sink.add_signal("s-0", {"symbol": "SPY"})
    assert sink.flush()

    services.run("stop", "redis")
    try:
        for i in range(1, 201):
            sink.update_state("SPY", {"mid": 450.01 + i / 100, "n": i})
            sink.update_state(f"SYM{i % 7}", {"n": i})
            sink.add_signal(f"s-{i}", {"symbol": "SPY", "n": i})
            if i % 50 == 0:
                assert not sink.flush(force=True)  # down: kept in the buffer, no exception
        assert not sink.stats.connected and sink.stats.outages == 1
        assert sink.pending == (8, 200)
    finally:
        services.run("start", "redis")

    assert sink.flush(force=True)
    assert sink.pending == (0, 0) and sink.stats.connected
    ids = [f["signal_id"] for _id, f in sink.read_signals(count=1000)]
    assert ids == [f"s-{i}" for i in range(201)]  # data from before the outage survived the restart
    assert sink.latest_state("SPY") == {"mid": str(450.01 + 200 / 100), "n": "200"}
    assert sink.latest_state("SYM3") == {"n": str(199 - (199 - 3) % 7)}
    assert any("back after" in line for line in sink.stats.outage_log)
    sink.close()


def test_publisher_partition_records_land_where_keyed_records_would(bootstrap: str, run_id: str) -> None:
    """QEB2 records are placed by murmur2 of their symbols: the same partition the client's own keyed
    partitioner picks for each symbol (so "keyed by symbol" holds for every event inside)."""
    import numpy as np

    from quantedge.events import KIND_QUOTE, KIND_TRADE
    from quantedge.live import codec
    from quantedge.live.publisher import SliceEncoder

    cfg = _cfg(bootstrap, run_id)
    TopicAdmin(cfg).ensure_topics()
    names = [f"S{i:04d}" for i in range(200)] + ["NEPT", "AAPL", "BRK.B", "A", "ab", "abc"]
    placed: dict[str, int] = {}

    def cb(err: object, msg: object) -> None:
        assert err is None
        placed[msg.key().decode()] = msg.partition()

    prod = KeyedProducer(cfg)
    for n in names:  # the client's murmur2_random partitioner
        prod._p.produce(cfg.trades_topic, b"x", key=n, on_delivery=cb)  # noqa: SLF001
    prod.flush()
    assert {n: codec.partition_of(n, 4) for n in names} == placed
    # one slice of 3 events per symbol: every record holds only symbols of its partition
    ev = np.zeros(3 * len(names), dtype=codec.EVENT_DTYPE)
    ev["symbol"] = np.repeat(np.arange(len(names)), 3)
    ev["kind"] = np.tile([KIND_QUOTE, KIND_TRADE, KIND_QUOTE], len(names))
    ev["ts_recv"] = np.tile([1, 2, 3], len(names))
    ev = ev[np.lexsort((ev["symbol"], ev["ts_recv"]))]
    for group, per_part in (("partition", 2), ("symbol", None)):
        recs = SliceEncoder(lambda i: names[i], 4, group).encode(ev, 7, 0)
        seen = 0
        for role, part, key, value in recs:
            b = codec.decode(value)
            assert b.role == role and b.slice == 7 and key == b.names[0]
            assert {placed[n] for n in b.names} == {part}
            assert b.parts == sum(1 for r in recs if r[1] == part)
            seen += b.events.shape[0]
        assert seen == ev.shape[0]
        if per_part:
            assert len(recs) == per_part * len({placed[n] for n in names})
        else:
            assert len(recs) == 2 * len(names)


def test_qeb2_rejects_bad_values_with_the_field_named() -> None:
    import numpy as np

    from quantedge.events import EVENT_DTYPE, KIND_TRADE
    from quantedge.live import codec

    ev = np.zeros(2, EVENT_DTYPE)
    ev["kind"] = KIND_TRADE
    ev["symbol"] = [0, 1]
    good = codec.encode(ev, codec.ROLE_TRADES, 2, 5, 9, ["AAA", "BB"])
    b = codec.decode(good)
    assert b.names == ["AAA", "BB"] and b.parts == 2 and b.events.shape[0] == 2
    bad = {
        good[:-1]: "count",
        b"QEB1" + good[4:]: "magic",
        good[:5] + b"\x07" + good[6:]: "role",
        codec.encode(ev, codec.ROLE_QUOTES, 1, 5, 9, ["AAA", "BB"]): "does not belong",
        codec.encode(ev, codec.ROLE_TRADES, 1, 5, 9, ["AAA"]): "outside the 1-name table",
    }
    for value, what in bad.items():
        with pytest.raises(codec.CodecError, match=what):
            codec.decode(value)
    back = ev.copy()
    back["symbol"] = 0
    back["ts_recv"] = [5, 4]
    with pytest.raises(codec.CodecError, match="backwards"):
        codec.decode(codec.encode(back, codec.ROLE_TRADES, 1, 5, 9, ["AAA"]))


# ------------------------------------------------------------------------------------------ benchmarks
def test_streaming_bench_codec_decodes_every_text_line(shared_data) -> None:
    """The codec comparison times both decoders on the same real events: the text stream opens with
    a T line (the session date), so every line decodes (before, 57 % were rejected as undated and the
    decode figure timed that error path)."""
    from quantedge.live import bench

    base = bench.nept_events(shared_data)
    ev, names = bench.universe(base, 20, 300)
    rows = {r["bench"].split(" (")[0]: r for r in bench.codec_bench(ev[:5_000], names, slice_events=512)}
    assert rows["codec qeb2"]["events"] == 5_000
    assert rows["codec iqfeed text lines"]["decoded_events"] == 5_000
    assert rows["codec iqfeed text lines"]["decode_events_per_s"] > 0


def test_broker_probe_times_every_record(bootstrap: str, monkeypatch) -> None:
    """The broker-alone probe delivers and times every record it sends, per 5 s window."""
    from quantedge.live import bench

    monkeypatch.setenv("QUANTEDGE_KAFKA_BOOTSTRAP", bootstrap)
    res = bench.broker_bench(rate=20_000, seconds=2.0, partitions=2, slice_ms=20.0)
    assert res["records"] == res["expected"] == 100 * 3 * 2
    assert res["latency"]["count"] == res["records"] and res["latency"]["p50_ms"] > 0
    assert res["latency_per_5s"][0]["from_s"] == 0 and res["latency_per_5s"][0]["count"] == res["records"]
