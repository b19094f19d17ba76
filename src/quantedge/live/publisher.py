"""Publisher: normalized event batches (catalog replay or a live IQFeed bridge) into the raw topics.

The stream is cut into *slices* of ``slice_ms`` of wall time.  Within a slice the events are split
by keyed partition (murmur2 of the symbol name, as a keyed producer places them) and topic role
(book / trades / quotes) into QEB2 records (:mod:`quantedge.live.codec`): one record per partition and
role holding all that partition's symbols (``group="partition"``), or one per symbol and role
(``group="symbol"``).  Each record carries the slice number and how many records its partition has in
the slice, so the scanner can rebuild every symbol's merge order exactly.  Slice numbers are a monotone
nanosecond stamp, so they keep increasing across publisher restarts.

Delivery: the idempotent producer (no duplicates from its own retries), ``acks=all``, batching with
``linger.ms``.  During a broker outage messages stay in the client queue (``produce`` blocks only
when it is full) and are retried; :class:`OutageWatch` reports the outage (no acknowledgement for
``stall_s`` while messages are in flight, or client errors) and its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from quantedge.live import codec
from quantedge.live.kafka_io import KafkaConfig, KafkaIOError, KeyedProducer, TopicAdmin
from quantedge.live.metrics import Metrics, RateLog

LOG = logging.getLogger("quantedge.publisher")


@dataclass
class OutageWatch:
    """Turns producer silence and client errors into outage start/end lines and counters."""

    stall_s: float = 2.0
    outages: int = 0
    outage_seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    _down_since: float | None = None
    _last_progress: float = field(default_factory=time.monotonic)
    _last_delivered: int = 0
    _prev_in_flight: int = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def error(self, msg: str) -> None:
        if self._down_since is None and ("DOWN" in msg or "TRANSPORT" in msg or "TIMED_OUT" in msg):
            self._start(f"broker unavailable: {msg}")

    def _start(self, line: str) -> None:
        self._down_since = time.monotonic()
        self.outages += 1
        self.log.append(line)
        LOG.warning("%s", line)

    def tick(self, delivered: int, in_flight: int) -> None:
        now = time.monotonic()
        if delivered > self._last_delivered:
            self._last_delivered = delivered
            self._last_progress = now
            if self._down_since is not None:
                dur = now - self._down_since
                self.outage_seconds += dur
                line = f"broker back after {dur:.1f}s; {in_flight} message(s) still queued, delivery resumed"
                self.log.append(line)
                LOG.warning("%s", line)
                self._down_since = None
        elif in_flight > 0 and self._prev_in_flight == 0:
            self._last_progress = now  # the queue was empty at the last look: the wait starts now
        elif in_flight > 0 and self._down_since is None and now - self._last_progress > self.stall_s:
            self._start(f"broker unavailable: no acknowledgement for {now - self._last_progress:.1f}s "
                        f"with {in_flight} message(s) in flight")
        elif in_flight == 0:
            self._last_progress = now
        self._prev_in_flight = in_flight


@dataclass
class PublishReport:
    """What a publish run did.  ``events`` are market-data events (one IQFeed line / feed message
    each); ``records`` are Kafka records (each carries a batch of events)."""

    events: int = 0
    records: int = 0
    slices: int = 0
    seconds: float = 0.0
    outages: int = 0
    outage_seconds: float = 0.0
    outage_log: list[str] = field(default_factory=list)
    interrupted: bool = False  # stopped by Ctrl-C (the records sent before it were flushed)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


GROUPS = ("partition", "symbol")


class SliceEncoder:
    """Cuts one slice of events into QEB2 records: ``(role, partition, key, value)`` per record.

    Vectorized: one stable sort by (partition, role, symbol) and one cut; Python runs per record (a
    few per partition and slice), not per symbol or event.  ``group="partition"``: one record per
    partition and role holding all its symbols (key = the first of them); ``group="symbol"``: one per
    symbol and role (key = the symbol).
    """

    def __init__(self, names_of: Callable[[int], str], partitions: int, group: str = "partition") -> None:
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.names_of = names_of
        self.partitions = partitions
        self.group = group
        self._names: dict[int, str] = {}
        self._part = np.full(0, -1, np.int32)  # symbol id -> partition (-1 unknown)

    def name(self, sid: int) -> str:
        n = self._names.get(sid)
        if n is None:
            n = self._names[sid] = self.names_of(sid)
        return n

    def partitions_of(self, sym: np.ndarray) -> np.ndarray:
        """Keyed partition of each event's symbol (murmur2 of the name, cached per id)."""
        hi = int(sym.max()) + 1
        if hi > self._part.shape[0]:
            grown = np.full(max(hi, 2 * self._part.shape[0]), -1, np.int32)
            grown[:self._part.shape[0]] = self._part
            self._part = grown
        part = self._part[sym]
        if (part < 0).any():
            for s in np.unique(sym[part < 0]).tolist():
                self._part[s] = codec.partition_of(self.name(s), self.partitions)
            part = self._part[sym]
        return part

    def encode(self, ev: np.ndarray, slice_no: int, published_ns: int) -> list[tuple[int, int, str, bytes]]:
        """Records of one slice (events in merge order)."""
        n = ev.shape[0]
        if n == 0:
            return []
        roles = codec.role_of_kinds(ev["kind"])
        bad = roles == 255
        if bad.any():
            raise ValueError(f"{int(bad.sum())} event(s) of a kind with no raw topic (kinds "
                             f"{sorted(set(ev['kind'][bad].tolist()))})")
        sym = ev["symbol"]
        part = self.partitions_of(sym)
        # stable sort: partition, role, symbol; merge order kept inside each symbol
        order = np.lexsort((sym, roles, part))
        s_s, r_s, p_s = sym[order], roles[order], part[order]
        new_sym = np.r_[True, s_s[1:] != s_s[:-1]]
        new_grp = np.r_[True, (r_s[1:] != r_s[:-1]) | (p_s[1:] != p_s[:-1])]
        if self.group == "symbol":
            new_grp |= new_sym
        new_sym |= new_grp
        starts = np.flatnonzero(new_grp)
        ends = np.r_[starts[1:], n]
        gpart = p_s[starts]
        parts = np.bincount(gpart)[gpart]  # records of the group's partition in this slice
        local = np.cumsum(new_sym) - 1  # running symbol-run index; made record-local below
        sym_starts = np.flatnonzero(new_sym)
        evs = ev[order]
        out = []
        for g in range(starts.shape[0]):
            a, b = int(starts[g]), int(ends[g])
            chunk = evs[a:b]
            first = local[a]
            chunk["symbol"] = local[a:b] - first
            names = [self.name(s) for s in s_s[sym_starts[first:local[b - 1] + 1]].tolist()]
            role = int(r_s[a])
            out.append((role, int(gpart[g]), names[0],
                        codec.encode(chunk, role, int(parts[g]), slice_no, published_ns, names)))
        return out


class Publisher:
    """Encodes slices of events into QEB2 records on the raw topics.

    ``slice_ms``: slice length in wall-clock ms — of receipt time when ``speed`` is 0 or 1, and
    ``slice_ms * speed`` of receipt time in a paced replay, so a slice always spans ``slice_ms`` of
    wall time (the batching delay a slice adds before publishing).  ``group``: ``partition`` (one
    record per partition, role and slice holding all the partition's symbols: few, large records) or
    ``symbol`` (one record per symbol, role and slice, key = the symbol; see docs/streaming.md).
    """

    def __init__(self, kcfg: KafkaConfig, names_of: Callable[[int], str], *, slice_ms: float = 50.0,
                 speed: float = 0.0, metrics: Metrics | None = None, stall_s: float = 2.0,
                 group: str = "partition", partitions: int | None = None) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        if slice_ms <= 0:
            raise ValueError(f"slice_ms must be > 0, got {slice_ms}")
        self.kcfg = kcfg
        self.names_of = names_of
        self.slice_ns = int(slice_ms * 1e6 * max(speed, 1.0))
        self.speed = speed
        self.group = group
        self.metrics = metrics or Metrics()
        self.watch = OutageWatch(stall_s=stall_s)
        self.producer = KeyedProducer(kcfg, on_error=self._on_error)
        self.topic_of_role = {codec.ROLE_BOOK: kcfg.l2_topic, codec.ROLE_TRADES: kcfg.trades_topic,
                              codec.ROLE_QUOTES: kcfg.quotes_topic}
        self.partitions = partitions if partitions is not None else self._raw_partitions()
        self.producer.warm()
        self.encoder = SliceEncoder(names_of, self.partitions, group)
        self._last_slice = 0
        self._t0_wall: float | None = None
        self._t0_data = 0
        self.report = PublishReport()
        self.rate = RateLog(LOG, "publish events", 5.0)

    def _raw_partitions(self) -> int:
        """Partition count of the raw topics from the broker; they must be equal (see the scanner)."""
        have = TopicAdmin(self.kcfg).partitions()
        counts = {t: have.get(t, 0) for t in self.kcfg.raw_topics}
        if len(set(counts.values())) != 1 or 0 in counts.values():
            raise KafkaIOError(f"raw topics must exist with equal partition counts, broker has {counts} "
                               f"(run scripts/create_topics.py)")
        return next(iter(counts.values()))

    def _on_error(self, msg: str) -> None:
        self.metrics.inc("producer_errors_total")
        self.watch.error(msg)

    def _next_slice(self) -> int:
        s = max(self._last_slice + 1, time.time_ns())
        self._last_slice = s
        return s

    def _pace(self, ts_recv: int) -> None:
        if self.speed <= 0:
            return
        if self._t0_wall is None:
            self._t0_wall, self._t0_data = time.monotonic(), ts_recv
            return
        target = self._t0_wall + (ts_recv - self._t0_data) / 1e9 / self.speed
        while True:
            left = target - time.monotonic()
            if left <= 0:
                return
            self.producer.poll(min(left, 0.05))
            self.watch.tick(self.producer.stats.delivered, len(self.producer))

    def publish_slice(self, ev: np.ndarray) -> int:
        """One slice (events in merge order) as QEB2 records; returns the number of records."""
        n = ev.shape[0]
        if n == 0:
            return 0
        prod = self.producer
        topic = self.topic_of_role
        recs = self.encoder.encode(ev, self._next_slice(), time.time_ns())
        for role, part, key, value in recs:
            prod.produce(topic[role], value, key=key, partition=part)
        self.report.events += n
        self.report.records += len(recs)
        self.report.slices += 1
        self.metrics.inc("published_events_total", n)
        self.metrics.inc("published_records_total", len(recs))
        self.watch.tick(prod.stats.delivered, len(prod))
        return len(recs)

    def publish(self, batches: Iterable[np.ndarray], max_events: int | None = None) -> PublishReport:
        """Cut the time-ordered batches into slices and publish them; flushes at the end.  A paced
        replay publishes a slice when the replay clock reaches its last event (as a live feed would)."""
        t0 = time.monotonic()
        try:
            for sl in self.slices(batches):
                self._pace(int(sl["ts_recv"][-1]))
                self.publish_slice(sl)
                self.rate.maybe(self.report.events, queued=len(self.producer), outages=self.watch.outages)
                if max_events is not None and self.report.events >= max_events:
                    break
        except KeyboardInterrupt:  # Ctrl-C: what was handed to the producer is still delivered
            self.report.interrupted = True
        self.flush()
        self.report.seconds = time.monotonic() - t0
        return self.report

    def slices(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Re-cut batches at multiples of ``slice_ns`` of ts_recv (leftovers of a batch are carried to
        the next one, so a slice is never split by a batch boundary)."""
        carry: np.ndarray | None = None
        for b in batches:
            if b.shape[0] == 0:
                continue
            if carry is not None and carry.shape[0]:
                b = np.concatenate([carry, b])
            win = b["ts_recv"] // self.slice_ns
            cuts = np.flatnonzero(win[1:] != win[:-1]) + 1
            starts = np.r_[0, cuts]
            for i in range(starts.shape[0] - 1):
                yield b[starts[i]:starts[i + 1]]
            carry = b[starts[-1]:]
        if carry is not None and carry.shape[0]:
            yield carry

    def flush(self, timeout: float = 300.0) -> None:
        """Wait for every record to be acknowledged, reporting an outage while it lasts."""
        deadline = time.monotonic() + timeout
        prod = self.producer
        while len(prod) and time.monotonic() < deadline:
            prod.poll(0.1)
            self.watch.tick(prod.stats.delivered, len(prod))
        prod.flush(max(1.0, deadline - time.monotonic()))
        self.watch.tick(prod.stats.delivered, 0)
        self.report.outages = self.watch.outages
        self.report.outage_seconds = self.watch.outage_seconds
        self.report.outage_log = list(self.watch.log)
        self.metrics.set("publisher_outages_total", self.watch.outages)
        self.metrics.set("publisher_outage_seconds", self.watch.outage_seconds)


def iqfeed_batches(host: str, ports: dict[str, int], symbols: list[str], *, depth: str | None = None,
                   idle_exit_s: float | None = None, max_events: int | None = None
                   ) -> tuple[Iterator[np.ndarray], Callable[[int], str]]:
    """A live IQFeed (or simulator) connection as a blocking iterator of event batches (one per socket
    read), plus the id -> name function of the client's symbol table.

    The asyncio client runs on its own thread; a bounded queue between the two keeps back-pressure
    (a slow publisher stops the socket reads).  Ends after ``idle_exit_s`` without data or after
    ``max_events``; client problems and gaps are logged.
    """
    import asyncio
    import queue
    import threading

    from quantedge.catalog.symbols import NameTable
    from quantedge.feeds.iqfeed.client import ClientConfig, IQFeedClient

    names = NameTable()
    q: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(64)
    stop = threading.Event()

    async def pump() -> None:
        cfg = ClientConfig(host=host, ports={**ClientConfig().ports, **ports})
        async with IQFeedClient(cfg, symbols=names) as client:
            await client.connect(("level1",) + (("level2",) if depth else ()))
            await client.watch(symbols)
            if depth:
                await client.watch_depth(symbols, depth)
            n = 0
            while not stop.is_set():
                try:
                    b = await client.next_batch(timeout=idle_exit_s)
                except TimeoutError:
                    break
                for g in b.gaps:
                    LOG.warning("iqfeed gap %s %s: %d..%d (%s)", g.port, g.symbol, g.start_ns, g.end_ns,
                                g.reason)
                for p in b.problems[:3]:
                    LOG.warning("iqfeed: %s", p.message())
                if b.events.shape[0]:
                    await asyncio.to_thread(q.put, b.events)
                    n += b.events.shape[0]
                if max_events is not None and n >= max_events:
                    break

    def run() -> None:
        try:
            asyncio.run(pump())
        except BaseException as exc:  # handed to the consuming thread, which raises it
            q.put(exc)
            return
        q.put(None)

    t = threading.Thread(target=run, name="iqfeed-bridge", daemon=True)
    t.start()

    def gen() -> Iterator[np.ndarray]:
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    return gen(), names.name
