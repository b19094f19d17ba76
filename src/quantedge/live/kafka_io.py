"""Thin typed wrappers over confluent-kafka for the streaming pipeline.

Only the standard Kafka protocol is used (no broker-specific calls), so the same code talks to the
local tansu broker started by ``scripts/services.sh`` and to an Apache Kafka cluster: point
``KafkaConfig.bootstrap_servers`` at the cluster and pass security settings through ``extra``
(see docs/streaming-infrastructure.md).

Delivery model: the producer is idempotent (no duplicates from its own retries) and batches with a
linger; the consumer never auto-commits.  A worker calls :meth:`GroupConsumer.mark` for messages whose
outputs it has handed to its sinks, flushes the sinks, then :meth:`GroupConsumer.commit` — so a crash
replays at most the un-flushed tail (at-least-once).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

DEFAULT_BOOTSTRAP = "127.0.0.1:39092"
# librdkafka's own log lines (connection refused, retries) go through Python logging, not stderr.
CLIENT_LOG = logging.getLogger("quantedge.kafka.client")
LOG = logging.getLogger("quantedge.kafka")


class KafkaIOError(RuntimeError):
    """A broker-side failure the caller must see (create/commit/delivery), with the broker's reason."""


class KafkaSettingsError(ValueError):
    """A client settings file or option that cannot be used, naming the file/line or the option."""


def parse_client_properties(text: str, source: str = "<text>") -> dict[str, str]:
    """Kafka client settings in the Java ``client.properties`` form: ``key=value`` (or ``key: value``)
    per line, ``#`` / ``!`` comments and blank lines ignored, surrounding spaces stripped.  The keys
    are librdkafka's (``security.protocol``, ``sasl.mechanism``, ``sasl.username``,
    ``sasl.password``, ``ssl.ca.location``...); librdkafka itself rejects an unknown key when a client
    is built.  A line without a key or a separator raises :class:`KafkaSettingsError` naming it."""
    out: dict[str, str] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = [i for i in (line.find("="), line.find(":")) if i >= 0]
        if not cut:
            raise KafkaSettingsError(f"{source}:{no}: expected key=value, got {line[:60]!r}")
        i = min(cut)
        key, value = line[:i].strip(), line[i + 1:].strip()
        if not key:
            raise KafkaSettingsError(f"{source}:{no}: empty key in {line[:60]!r}")
        out[key] = value
    return out


def load_client_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`parse_client_properties` of a file; a missing or unreadable file names itself."""
    try:
        text = open(path, encoding="utf-8").read()  # noqa: PTH123, SIM115 - tiny file, read once
    except (OSError, UnicodeDecodeError) as exc:
        raise KafkaSettingsError(f"{path}: cannot read Kafka client settings ({exc})") from exc
    return parse_client_properties(text, str(path))


def parse_client_options(options: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (the CLI's ``--kafka-option``) as client settings."""
    out: dict[str, str] = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or not key.strip():
            raise KafkaSettingsError(
                f"--kafka-option {opt!r}: expected KEY=VALUE (e.g. security.protocol=SASL_SSL)")
        out[key.strip()] = value.strip()
    return out


def _client(factory: Callable[[dict], Any], conf: dict[str, object], config: KafkaConfig) -> Any:
    """Build a librdkafka client; a setting it refuses (unknown key, bad value) becomes a
    :class:`KafkaSettingsError` that names the settings (secrets masked) and librdkafka's reason."""
    try:
        return factory(conf)
    except KafkaException as exc:
        raise KafkaSettingsError(
            f"Kafka client settings ({config.describe_settings()}): {exc.args[0].str()}") from exc


@dataclass(frozen=True)
class TopicSpec:
    """One topic to create: name, partition count and per-topic broker config."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


#: settings whose values never reach a log line (a JAAS config embeds the password)
_SECRET_WORDS = ("password", "secret", "key.pem", "jaas", "token")


@dataclass(frozen=True)
class KafkaConfig:
    """Everything needed to reach the broker and name the pipeline's topics.

    ``extra`` is passed verbatim to every librdkafka client (e.g. ``security.protocol``,
    ``sasl.mechanism``, ``sasl.username``, ``ssl.ca.location`` for a managed Apache Kafka cluster).
    ``session_timeout_ms`` also bounds how long a group join takes on tansu (it completes a join after
    about half the session timeout), so it is kept at Apache Kafka's minimum of 6 s by default.
    """

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    client_id: str = "quantedge"
    l2_topic: str = "iqfeed.l2.raw"
    trades_topic: str = "iqfeed.trades.raw"
    quotes_topic: str = "iqfeed.quotes.raw"
    signals_topic: str = "trading.signals"
    dead_letter_topic: str = "quantedge.deadletter"
    raw_partitions: int = 8
    signals_partitions: int = 4
    dead_letter_partitions: int = 1
    replication_factor: int = 1
    idempotent: bool = True
    acks: str = "all"
    linger_ms: int = 5
    batch_size: int = 1_000_000
    queue_max_messages: int = 1_000_000
    compression: str = "none"
    delivery_timeout_ms: int = 120_000
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_000
    max_poll_interval_ms: int = 60_000
    fetch_wait_max_ms: int = 10
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> KafkaConfig:
        """Defaults, then ``QUANTEDGE_KAFKA_BOOTSTRAP`` / ``QUANTEDGE_KAFKA_IDEMPOTENT`` /
        ``QUANTEDGE_KAFKA_CONFIG`` (a client settings file, see :func:`parse_client_properties`),
        then overrides."""
        cfg = cls()
        env_bs = os.environ.get("QUANTEDGE_KAFKA_BOOTSTRAP")
        if env_bs:
            cfg = replace(cfg, bootstrap_servers=env_bs)
        env_file = os.environ.get("QUANTEDGE_KAFKA_CONFIG")
        if env_file:
            cfg = cfg.with_settings(load_client_properties(env_file))
        env_idem = os.environ.get("QUANTEDGE_KAFKA_IDEMPOTENT")
        if env_idem is not None:
            cfg = replace(cfg, idempotent=env_idem.strip().lower() in ("1", "true", "yes", "on"))
        return replace(cfg, **overrides)  # type: ignore[arg-type]

    def with_settings(self, settings: Mapping[str, str]) -> KafkaConfig:
        """These client settings added to ``extra`` (a later setting of a key wins);
        ``bootstrap.servers`` among them sets :attr:`bootstrap_servers`."""
        settings = dict(settings)
        cfg = self
        if "bootstrap.servers" in settings:
            cfg = replace(cfg, bootstrap_servers=settings.pop("bootstrap.servers"))
        return replace(cfg, extra={**cfg.extra, **settings})

    def describe_settings(self) -> str:
        """The ``extra`` settings for a log line, secrets masked."""
        return ", ".join(f"{k}={'***' if any(w in k for w in _SECRET_WORDS) else v}"
                         for k, v in sorted(self.extra.items())) or "none"

    @property
    def raw_topics(self) -> tuple[str, str, str]:
        return (self.l2_topic, self.trades_topic, self.quotes_topic)

    def topic_specs(self) -> list[TopicSpec]:
        """The pipeline's topics with their partition counts (keyed by symbol, so partitions = shards)."""
        return [
            *(TopicSpec(t, self.raw_partitions) for t in self.raw_topics),
            TopicSpec(self.signals_topic, self.signals_partitions),
            TopicSpec(self.dead_letter_topic, self.dead_letter_partitions),
        ]

    def client_conf(self) -> dict[str, object]:
        conf: dict[str, object] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "logger": CLIENT_LOG,
        }
        conf.update(self.extra)
        return conf

    def producer_conf(self) -> dict[str, object]:
        conf = self.client_conf()
        conf.update(
            {
                "enable.idempotence": self.idempotent,
                "acks": self.acks,
                "linger.ms": self.linger_ms,
                "batch.size": self.batch_size,
                "queue.buffering.max.messages": self.queue_max_messages,
                "compression.type": self.compression,
                "delivery.timeout.ms": self.delivery_timeout_ms,
                # Keyed partitioning identical to the Java client, so mixed-language producers agree.
                "partitioner": "murmur2_random",
            }
        )
        return conf

    def consumer_conf(self, group_id: str, *, from_beginning: bool = True) -> dict[str, object]:
        conf = self.client_conf()
        conf.update(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": self.heartbeat_interval_ms,
                "max.poll.interval.ms": self.max_poll_interval_ms,
                "partition.assignment.strategy": "range",
                # The broker answers a fetch when data is there or after this wait; tansu answers only at
                # the wait's end, so librdkafka's 500 ms default becomes 250 ms of average latency.
                "fetch.wait.max.ms": self.fetch_wait_max_ms,
            }
        )
        return conf


# ------------------------------------------------------------------------------------------------ admin
class TopicAdmin:
    """Create and inspect topics; creation is idempotent and verifies partition counts."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._admin = _client(AdminClient, config.client_conf(), config)

    def partitions(self, timeout: float = 10.0) -> dict[str, int]:
        """Partition count of every topic the broker reports."""
        try:
            md = self._admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise KafkaIOError(
                f"broker {self.config.bootstrap_servers} not reachable: {exc.args[0].str()}"
            ) from exc
        return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}

    def ensure_topics(
        self, specs: Sequence[TopicSpec] | None = None, timeout: float = 15.0
    ) -> dict[str, int]:
        """Create missing topics and grow under-partitioned ones; return name -> partitions.

        Growing is allowed (Kafka can add partitions) but shrinking is not, so a topic with more
        partitions than asked is left alone and reported as is.
        """
        specs = list(self.config.topic_specs() if specs is None else specs)
        existing = self.partitions(timeout)
        new = [
            NewTopic(s.name, num_partitions=s.partitions, replication_factor=self.config.replication_factor,
                     config=dict(s.config))
            for s in specs
            if s.name not in existing
        ]
        if new:
            for name, fut in self._admin.create_topics(new, operation_timeout=timeout).items():
                try:
                    fut.result(timeout)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise KafkaIOError(f"creating topic {name!r}: {exc.args[0].str()}") from exc
        grow = [
            NewPartitions(s.name, s.partitions) for s in specs if 0 < existing.get(s.name, 0) < s.partitions
        ]
        if grow:
            for name, fut in self._admin.create_partitions(grow, operation_timeout=timeout).items():
                try:
                    fut.result(timeout)
                except KafkaException as exc:
                    raise KafkaIOError(f"adding partitions to {name!r}: {exc.args[0].str()}") from exc
        return self._wait_for(specs, timeout)

    def _wait_for(self, specs: Sequence[TopicSpec], timeout: float) -> dict[str, int]:
        # Metadata can lag creation by a moment; wait until every topic is visible.
        deadline = time.monotonic() + timeout
        while True:
            have = self.partitions(timeout)
            missing = [s.name for s in specs if s.name not in have]
            if not missing:
                return {s.name: have[s.name] for s in specs}
            if time.monotonic() > deadline:
                raise KafkaIOError(f"topics not visible after {timeout:.0f}s: {missing}")
            time.sleep(0.1)

    def delete_topics(self, names: Iterable[str], timeout: float = 15.0) -> None:
        """Delete topics (tests and resets); unknown topics are ignored."""
        names = list(names)
        if not names:
            return
        for name, fut in self._admin.delete_topics(names, operation_timeout=timeout).items():
            try:
                fut.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaIOError(f"deleting topic {name!r}: {exc.args[0].str()}") from exc


def ensure_topics(config: KafkaConfig, specs: Sequence[TopicSpec] | None = None) -> dict[str, int]:
    """Project set-up step: create the pipeline topics with their partition counts."""
    return TopicAdmin(config).ensure_topics(specs)


# --------------------------------------------------------------------------------------------- producer
@dataclass
class ProducerStats:
    """Counters a service exposes as metrics; ``errors`` keeps the latest broker/client errors."""

    produced: int = 0
    delivered: int = 0
    failed: int = 0
    backpressure_waits: int = 0
    errors: list[str] = field(default_factory=list)


class KeyedProducer:
    """Idempotent, batching producer; values are bytes, keys are symbols (str or bytes).

    Delivery failures are counted and raised at :meth:`flush` — never dropped silently.  When the
    local queue is full, ``produce`` serves delivery callbacks until there is room (backpressure)
    instead of failing, which is also how an outage of the broker is absorbed up to the queue size.
    """

    def __init__(self, config: KafkaConfig, on_error: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.stats = ProducerStats()
        self._on_error = on_error
        self._pending_failures: list[str] = []
        conf = config.producer_conf()
        conf["error_cb"] = self._error_cb
        self._p = _client(Producer, conf, config)

    def _error_cb(self, err: KafkaError) -> None:
        msg = f"{err.name()}: {err.str()}"
        self.stats.errors = [*self.stats.errors[-19:], msg]
        if self._on_error is not None:
            self._on_error(msg)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
            if len(self._pending_failures) < 100:
                where = f"{msg.topic()}[{msg.partition()}] key={msg.key()!r}"
                self._pending_failures.append(f"{where}: {err.str()}")

    def produce(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one message (asynchronous); blocks only while the local queue is full."""
        kwargs: dict[str, object] = {"value": value, "key": key, "on_delivery": self._delivered}
        if headers:
            kwargs["headers"] = list(headers)
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._p.produce(topic, **kwargs)
                break
            except BufferError:
                self.stats.backpressure_waits += 1
                self._p.poll(0.05)
        self.stats.produced += 1
        self._p.poll(0)

    def warm(self, timeout: float = 10.0) -> bool:
        """Fetch the broker's metadata now, before the first record: otherwise the first records of a
        stream wait for the connection and the topic lookup (~0.5 s measured on tansu).  Returns False,
        with a log line, when the broker does not answer in ``timeout`` (records are still queued and
        sent once it does)."""
        try:
            self._p.list_topics(timeout=timeout)
        except KafkaException as exc:
            LOG.warning("kafka producer: broker metadata not available yet (%s); records wait in the "
                        "local queue until it is", exc)
            return False
        return True

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks; returns how many were served."""
        return self._p.poll(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything queued is acknowledged; raise if anything failed or timed out."""
        left = self._p.flush(timeout)
        failures, self._pending_failures = self._pending_failures, []
        if left:
            raise KafkaIOError(f"{left} message(s) still undelivered after {timeout:.1f}s "
                               f"(last errors: {self.stats.errors[-3:]})")
        if failures:
            raise KafkaIOError(f"{len(failures)} message(s) failed delivery, e.g. {failures[:3]}")

    def __len__(self) -> int:
        """Messages queued locally and not yet acknowledged."""
        return len(self._p)


# --------------------------------------------------------------------------------------------- consumer
class GroupConsumer:
    """Consumer-group member with manual, explicit commits.

    Offsets advance only through :meth:`mark` (the caller's "outputs for this message are handed to the
    sinks") and reach the broker only at :meth:`commit`.  On revocation, marks for lost partitions are
    dropped: committing them would be wrong once another member owns the partition.
    """

    def __init__(
        self,
        config: KafkaConfig,
        group_id: str,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
        on_assign: Callable[[list[tuple[str, int]]], None] | None = None,
        on_revoke: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        self.config = config
        self.group_id = group_id
        self._c = _client(Consumer, config.consumer_conf(group_id, from_beginning=from_beginning), config)
        self._marks: dict[tuple[str, int], int] = {}
        self._assigned: set[tuple[str, int]] = set()
        self._user_assign = on_assign
        self._user_revoke = on_revoke
        self.rebalances = 0
        self._c.subscribe(list(topics), on_assign=self._assign_cb, on_revoke=self._revoke_cb,
                          on_lost=self._revoke_cb)

    def _assign_cb(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in parts]
        self._assigned.update(tps)
        self.rebalances += 1
        if self._user_assign is not None:
            self._user_assign(tps)

    def _revoke_cb(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in parts]
        if self._user_revoke is not None:
            self._user_revoke(tps)
        for tp in tps:
            self._assigned.discard(tp)
            self._marks.pop(tp, None)

    @property
    def assignment(self) -> list[tuple[str, int]]:
        return sorted(self._assigned)

    def poll_batch(self, max_messages: int = 10_000, timeout: float = 0.5) -> list[Message]:
        """Up to ``max_messages`` data messages; partition-EOF events are skipped, real errors raise.

        Returns as soon as anything is there: librdkafka's batch consume waits the whole ``timeout``
        for ``max_messages`` to accumulate, which would add up to ``timeout`` of latency per poll, so
        it is called without waiting and the wait is done for a single message."""
        msgs = self._c.consume(max_messages, 0)
        if not msgs and timeout > 0:
            msgs = self._c.consume(1, timeout)
            if msgs and max_messages > 1:
                msgs += self._c.consume(max_messages - 1, 0)
        out: list[Message] = []
        for m in msgs:
            err = m.error()
            if err is None:
                out.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                raise KafkaIOError(f"consume error on {m.topic()}[{m.partition()}]: {err.str()}")
        return out

    def mark(self, messages: Iterable[Message]) -> None:
        """Record messages as processed (their outputs are with the sinks); commit happens later."""
        for m in messages:
            tp = (m.topic(), m.partition())
            nxt = m.offset() + 1
            if nxt > self._marks.get(tp, -1):
                self._marks[tp] = nxt

    def pending_commit(self) -> dict[tuple[str, int], int]:
        """Offsets that :meth:`commit` would store: (topic, partition) -> next offset to read."""
        return dict(self._marks)

    def commit(self) -> dict[tuple[str, int], int]:
        """Synchronously commit the marked offsets; returns what was committed."""
        marks = {tp: off for tp, off in self._marks.items() if tp in self._assigned}
        if not marks:
            return {}
        offsets = [TopicPartition(t, p, off) for (t, p), off in marks.items()]
        try:
            result = self._c.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            reason = exc.args[0].str()
            raise KafkaIOError(f"offset commit for group {self.group_id!r} failed: {reason}") from exc
        bad = [f"{r.topic}[{r.partition}]: {r.error.str()}" for r in result or [] if r.error is not None]
        if bad:
            raise KafkaIOError(f"offset commit for group {self.group_id!r} failed: {bad}")
        for tp, off in marks.items():
            if self._marks.get(tp) == off:
                del self._marks[tp]
        return marks

    def committed(
        self, topic: str, partitions: Iterable[int], timeout: float = 10.0
    ) -> dict[int, int | None]:
        """Committed offset per partition for this group (None where nothing was committed)."""
        res = self._c.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout)
        return {r.partition: (r.offset if r.offset >= 0 else None) for r in res}

    def lag(self, timeout: float = 5.0) -> dict[tuple[str, int], int]:
        """Messages behind the log end, per assigned partition.

        The high watermark is taken as max(broker watermark, own position): tansu 0.6 reports the base
        offset of the last batch + 1 as the log end after multi-message batches, which would
        otherwise show a negative lag.
        """
        out: dict[tuple[str, int], int] = {}
        for t, p in self.assignment:
            tp = TopicPartition(t, p)
            _lo, hi = self._c.get_watermark_offsets(tp, timeout=timeout, cached=False)
            pos = self._c.position([tp])[0].offset
            pos = pos if pos >= 0 else 0
            out[(t, p)] = max(0, max(hi, pos) - pos)
        return out

    def close(self) -> None:
        """Leave the group (uncommitted marks are abandoned: they will be replayed)."""
        self._c.close()

    def __enter__(self) -> GroupConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def commit_after_flush(
    consumer: GroupConsumer, flushers: Sequence[Callable[[], object]]
) -> dict[tuple[str, int], int]:
    """The at-least-once step: flush every sink (any failure raises), then commit the marked offsets."""
    for flush in flushers:
        flush()
    return consumer.commit()


def send_to_dead_letter(producer: KeyedProducer, config: KafkaConfig, message: Message, reason: str) -> None:
    """Route an unprocessable message to the dead-letter topic with where it came from and why."""
    headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.topic", (message.topic() or "").encode()),
        ("dlq.partition", str(message.partition()).encode()),
        ("dlq.offset", str(message.offset()).encode()),
    ]
    producer.produce(config.dead_letter_topic, message.value() or b"", key=message.key(), headers=headers)
