"""The streaming scanner: raw topics in, signals to ``trading.signals`` and latest state to Redis.

Compute is the backtest's: :class:`~quantedge.features.pipeline.FeaturePipeline` (books + features
with sampling) and the signal kernels of :mod:`quantedge.signals.cpu`, fed batch by batch.  Both are
batch-cut invariant, so the scanner's outputs equal a catalog replay's however the stream arrives.

Per-partition state: raw topics are keyed by symbol with equal partition counts, so partition ``p``
of the three raw topics carries the same symbols and range assignment gives all three to one
worker.  Each partition number has its own :class:`ShardEngine` (symbol slots, kernel arrays); a
rebalance moves whole engines through :mod:`quantedge.live.snapshots`.

Cross-topic order: a partition's events of one publisher slice arrive as ``parts`` QEB2 records over
the three raw topics.  The scanner waits until all parts of the partition's slice are in, then merges
them per symbol by (ts_recv, seq, kind) — the catalog's merge order — so the result does not depend on
how the topics interleave on the wire.  Slices are processed in slice order, all ready slices of a
partition in one compiled step (no Python per symbol or per event); a record of a slice already in
the state (a replay) is skipped.

Delivery: signals are produced with the idempotent producer; every ``commit_interval_s`` the
scanner flushes Kafka (waits for acks) and Redis (written, or buffered while Redis is down), writes
due snapshots, then commits the safe offsets.  A crash replays from the last snapshot; re-emitted
signals carry the same ids.
"""

from __future__ import annotations

import heapq
import logging
import math
import signal as os_signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from quantedge.book.state import LevelBook
from quantedge.events import EVENT_DTYPE
from quantedge.features.pipeline import FeaturePipeline
from quantedge.features.sampling import Sampler, Snapshots
from quantedge.features.state import COL, FEATURE_NAMES, FeatureState
from quantedge.live import codec, signal_schema
from quantedge.live.kafka_io import (
    GroupConsumer,
    KafkaConfig,
    KafkaIOError,
    KeyedProducer,
    send_to_dead_letter,
)
from quantedge.live.metrics import Metrics, RateLog
from quantedge.live.snapshots import SnapshotStore
from quantedge.signals import cpu as sigcpu
from quantedge.signals.config import SignalConfig, load_config
from quantedge.signals.logic import EXPLAIN_NAMES, N_SIG
from quantedge.signals.types import SIGNAL_DTYPE, SIGNAL_NAMES

LOG = logging.getLogger("quantedge.scanner")
_RAW64 = np.dtype((np.void, EVENT_DTYPE.itemsize))

#: features copied into the Redis state hash of a symbol
STATE_FEATURES = ("mid", "spread_bps", "touch_imbalance", "depth_imbalance", "volume_30s",
                  "mid_change_30s", "spread_ratio_5s_1h")


@dataclass(frozen=True)
class ScanConfig:
    """How the scanner computes and emits.

    ``mode``: features path of :class:`FeaturePipeline` — ``nbbo`` (quotes + trades, IQFeed L1) or
    ``l2`` (market-by-price depth + trades).  ``emit``: ``triggers`` (rising edges only) or ``scores``
    (every row the signal engine emits: triggers and rows with score >= ``trigger.emit_min``).
    """

    mode: str = "nbbo"
    n_levels: int = 10
    book_capacity: int = 64
    tick: int = 100
    cadence_ns: int = 1_000_000_000
    emit: str = "triggers"
    signal_config: SignalConfig | None = None
    group_id: str = "quantedge-scanner"
    snapshot_dir: Path | None = None
    snapshot_interval_s: float = 5.0
    commit_interval_s: float = 0.5
    state_interval_s: float = 0.5
    poll_max: int = 20_000
    poll_timeout_s: float = 0.05
    incomplete_slice_s: float = 10.0
    #: Redis symbol states written every 20 ms between polls (see :meth:`Outputs.trickle`): up to 6,400
    #: states/s, the checkpoints write none (all at the end of a run and on revoke)
    states_per_step: int = 128
    feature_parquet: Path | None = None

    def sig_config(self) -> SignalConfig:
        return self.signal_config if self.signal_config is not None else load_config()


class _TakeSampler(Sampler):
    """A sampler whose rows are handed out once (the live loop must not accumulate them)."""

    def take(self) -> Snapshots:
        snaps = self.collect()
        self._chunks = []
        return snaps


@dataclass
class StepOutput:
    """Signal records of one step (``symbol`` = slot) and the sampled feature rows."""

    signals: np.ndarray
    rows: Snapshots


class ShardEngine:
    """Books, features and signal state of the symbols of one partition (slots grow on demand)."""

    ARRAYS = ("F", "fs", "rq", "pl", "vap", "fz")

    def __init__(self, cfg: ScanConfig, capacity: int = 64) -> None:
        if cfg.mode not in ("nbbo", "l2"):
            raise ValueError(f"scanner mode must be 'nbbo' or 'l2', got {cfg.mode!r}")
        if cfg.emit not in ("triggers", "scores"):
            raise ValueError(f"emit must be 'triggers' or 'scores', got {cfg.emit!r}")
        self.cfg = cfg
        sc = cfg.sig_config()
        self.sig_vec = sc.vector()
        self.emit_min = float(sc["trigger.emit_min"])
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.last_slice = np.full(1, -1, np.int64)  # last publisher slice in the state (partition-wide)
        self._slot_cache: dict[bytes, np.ndarray] = {}
        self._alloc(capacity)

    # -- allocation ---------------------------------------------------------------------------------
    def _new_book(self, n: int) -> LevelBook:
        if self.cfg.mode == "nbbo":
            return LevelBook.allocate(n, capacity=1, tick=0)
        return LevelBook.allocate(n, capacity=self.cfg.book_capacity, tick=self.cfg.tick)

    def _alloc(self, n: int) -> None:
        self.capacity = n
        fstate = FeatureState.allocate(n, n_levels=self.cfg.n_levels, cadence_ns=self.cfg.cadence_ns)
        self.sampler = _TakeSampler(capacity=8192)
        self.pipeline = FeaturePipeline(self.cfg.mode, fstate, self._new_book(n), self.sampler)
        self.sig_state = sigcpu.new_state(n)
        self.rows_seen = np.zeros(n, np.int64)

    def _grow(self, n: int) -> None:
        old_f, old_b = self.pipeline.features, self.pipeline.book
        old_st, old_rs = self.sig_state, self.rows_seen
        k = self.capacity
        self._alloc(n)
        f, b = self.pipeline.features, self.pipeline.book
        for name in self.ARRAYS:
            getattr(f, name)[:k] = getattr(old_f, name)[:k]
        b.lv[:k] = old_b.lv[:k]
        b.sd[:k] = old_b.sd[:k]
        b.bk[:k] = old_b.bk[:k]
        b.bk[-1] = old_b.bk[-1]
        self.sig_state[:k] = old_st[:k]
        self.rows_seen[:k] = old_rs[:k]

    def slot(self, name: str) -> int:
        s = self.index.get(name)
        if s is None:
            s = len(self.names)
            if s >= self.capacity:
                self._grow(self.capacity * 2)
            self.names.append(name)
            self.index[name] = s
        return s

    def slots_of(self, names: list[str], raw: bytes) -> np.ndarray:
        """Slots of a record's name table (cached by the table's bytes: dense symbols repeat it)."""
        t = self._slot_cache.get(raw)
        if t is None:
            if len(self._slot_cache) > 4096:
                self._slot_cache.clear()
            t = self._slot_cache[raw] = np.array([self.slot(n) for n in names], np.int32)
        return t

    # -- compute ------------------------------------------------------------------------------------
    def step(self, events: np.ndarray) -> StepOutput:
        """Apply events (``symbol`` = slot; per slot in merge order) and score the sampled rows."""
        self.pipeline.step(events)
        rows = self.sampler.take()
        n = len(rows)
        if n == 0:
            return StepOutput(np.zeros(0, SIGNAL_DTYPE), rows)
        score, trig, expl, _bad = sigcpu.step_cpu(self.sig_state, self.sig_vec, rows.ts, rows.symbol, rows.F)
        # per-symbol row number (deterministic: the row's rank in its symbol's row stream)
        sym = rows.symbol.astype(np.int64)
        order = np.argsort(sym, kind="stable")
        ss = sym[order]
        first = np.r_[0, np.flatnonzero(ss[1:] != ss[:-1]) + 1] if n else np.zeros(0, np.int64)
        rank_sorted = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
        rank = np.empty(n, np.int64)
        rank[order] = rank_sorted
        seqno = self.rows_seen[sym] + rank
        np.add.at(self.rows_seen, sym, 1)
        if self.cfg.emit == "triggers":
            mask = trig == 1
        else:
            mask = (trig == 1) | (score >= self.emit_min)
        ri, ki = np.nonzero(mask)
        out = np.zeros(ri.shape[0], SIGNAL_DTYPE)
        if ri.size:
            out["ts_event"] = rows.ts[ri]
            out["ts_recv"] = rows.ts[ri]
            out["seq"] = seqno[ri]
            out["symbol"] = rows.symbol[ri]
            out["signal"] = ki + 1
            out["triggered"] = trig[ri, ki]
            out["score"] = score[ri, ki]
            out["explain"] = expl[ri, ki, :]
        return StepOutput(out, rows)

    def features_of(self, slot: int) -> dict[str, float]:
        F = self.pipeline.features.F
        return {n: float(F[slot, COL[n]]) for n in STATE_FEATURES}

    # -- snapshots ----------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self.names)
        f, b = self.pipeline.features, self.pipeline.book
        out = {f"f_{k}": getattr(f, k)[:n] for k in self.ARRAYS}
        out["f_cfg"] = f.cfg
        out["b_lv"], out["b_sd"] = b.lv[:n], b.sd[:n]
        out["b_bk"] = np.concatenate([b.bk[:n], b.bk[-1:]])
        out["sig_state"], out["last_slice"], out["rows_seen"] = self.sig_state[:n], self.last_slice, \
            self.rows_seen[:n]
        return out

    @classmethod
    def restore(cls, cfg: ScanConfig, names: list[str], arrays: dict[str, np.ndarray]) -> ShardEngine:
        n = len(names)
        eng = cls(cfg, capacity=max(64, 1 << max(0, (n - 1).bit_length())))
        f, b = eng.pipeline.features, eng.pipeline.book
        old_cfg = arrays["f_cfg"]  # a snapshot from before a setting was added has its default, 0
        old_cfg = np.concatenate([old_cfg, np.zeros(max(0, f.cfg.shape[0] - old_cfg.shape[0]), np.int64)])
        if not np.array_equal(old_cfg, f.cfg):
            raise ValueError("snapshot was taken with other feature settings (levels/cadence)")
        if arrays["sig_state"].shape[1:] != eng.sig_state.shape[1:]:
            got, want = arrays["sig_state"].shape[1], eng.sig_state.shape[1]
            raise ValueError(f"snapshot holds {got} signal-state columns, this build keeps {want}: delete "
                             "the snapshot folder to rebuild the state from the raw topics")
        for k in cls.ARRAYS:
            a = arrays[f"f_{k}"]
            if k == "fs" and a.shape[1] < f.fs.shape[1]:
                # taken before the rings' quiet-run columns (S_GAP) were added: zeros are "no run",
                # which is what that build's fully written rings are
                a = np.concatenate([a, np.zeros((a.shape[0], f.fs.shape[1] - a.shape[1]), a.dtype)], axis=1)
            getattr(f, k)[:n] = a
        b.lv[:n], b.sd[:n] = arrays["b_lv"], arrays["b_sd"]
        b.bk[:n], b.bk[-1] = arrays["b_bk"][:n], arrays["b_bk"][-1]
        eng.sig_state[:n] = arrays["sig_state"]
        if arrays["last_slice"].shape != (1,):
            raise ValueError("snapshot holds per-symbol slice numbers (QEB1 format); delete it so the "
                             "partition is rebuilt from the topics")
        eng.last_slice[:] = arrays["last_slice"]
        eng.rows_seen[:n] = arrays["rows_seen"]
        for nm in names:
            eng.slot(nm)
        return eng


def merge_order(events: np.ndarray, slice_no: np.ndarray) -> np.ndarray:
    """Permutation: by symbol slot, then slice, then (ts_recv, seq, kind) — the catalog's merge order."""
    return np.lexsort((events["kind"], events["seq"], events["ts_recv"], slice_no, events["symbol"]))


def signal_dicts(sigs: np.ndarray, names: list[str], published_ns: np.ndarray | None = None,
                 emitted_ns: int | None = None) -> list[dict]:
    """Schema dicts of signal records whose ``symbol`` is a slot into ``names``."""
    now = time.time_ns() if emitted_ns is None else emitted_ns
    out = []
    for i in range(sigs.shape[0]):
        r = sigs[i]
        pub = int(published_ns[i]) if published_ns is not None else now
        out.append(signal_schema.to_dict(r, names[int(r["symbol"])], EXPLAIN_NAMES[int(r["signal"]) - 1],
                                         pub, now))
    return out


# ------------------------------------------------------------------------------------------ outputs
class Outputs:
    """Where signals and state go: the signals topic and/or Redis (each optional)."""

    def __init__(self, kafka_cfg: KafkaConfig | None, producer: KeyedProducer | None,
                 redis_sink: object | None, metrics: Metrics) -> None:
        self.kcfg = kafka_cfg
        self.producer = producer
        self.redis = redis_sink
        self.metrics = metrics
        self.collected: list[dict] = []  # only when neither sink is set (catalog dry runs)
        self._last_trickle = -math.inf  # monotonic time can be small after boot

    def signals(self, dicts: list[dict]) -> None:
        self.metrics.inc("signals_emitted_total", len(dicts))
        for d in dicts:
            if self.producer is not None and self.kcfg is not None:
                self.producer.produce(self.kcfg.signals_topic, signal_schema.encode(d), key=d["symbol"])
            if self.redis is not None:
                flat = {k: (v if isinstance(v, str | int | float) and not isinstance(v, bool) else
                            signal_schema.encode(v).decode() if isinstance(v, dict) else int(v))
                        for k, v in d.items()}
                self.redis.add_signal(d["signal_id"], flat)
                self.redis.update_state(d["symbol"], {
                    "last_signal": d["signal"], "last_signal_id": d["signal_id"],
                    "last_signal_ts": d["ts_event"], "last_signal_score": d["score"]})
            if self.producer is None and self.redis is None:
                self.collected.append(d)

    def state(self, symbol: str, fields: dict[str, float]) -> None:
        if self.redis is not None:
            self.redis.update_state(symbol, {k: ("nan" if v != v else repr(v)) for k, v in fields.items()})

    def trickle(self, max_states: int, every_s: float = 0.02) -> None:
        """After each poll: the new signals to Redis now (not at the next checkpoint), and every
        ``every_s`` at most ``max_states`` pending symbol states, so the state writes spread over the
        loop in small writes instead of pausing it at each checkpoint.  Kafka records go out on the
        producer's own linger."""
        if self.redis is None:
            return
        n_state, n_sig = self.redis.pending
        now = time.monotonic()
        states = n_state > 0 and max_states > 0 and now - self._last_trickle >= every_s
        if n_sig or states:
            self._redis_flush(force=False, max_states=max_states if states else 0)
            if states:
                self._last_trickle = now

    def flush(self, final: bool = False) -> None:
        """Kafka: wait for acks (raises on failure).  Redis: signals written, or kept buffered during an
        outage; the symbol states are left to :meth:`trickle` (all of them are written when ``final``).
        States are latest values, not part of the delivery contract: a replay rewrites them."""
        if self.producer is not None:
            self.producer.flush(60.0)
        if self.redis is not None:
            self._redis_flush(force=final, max_states=None if final else 0)

    def _redis_flush(self, force: bool, max_states: int | None = None) -> None:
        if self.redis is not None:
            ok = self.redis.flush(force=force, max_states=max_states)
            st = self.redis.stats
            self.metrics.set("redis_connected", 1.0 if ok else 0.0)
            self.metrics.set("redis_outages_total", st.outages)
            self.metrics.set("redis_signals_buffered", self.redis.pending[1])
            self.metrics.set("redis_signals_dropped", st.signals_dropped)  # buffer full during an outage
            for line in st.outage_log[int(self.metrics.get("redis_outage_lines")):]:
                LOG.warning("%s", line)
            self.metrics.set("redis_outage_lines", len(st.outage_log))


# ------------------------------------------------------------------------------------------ catalog
def scan_events(batches: Iterable[np.ndarray], names_of: Callable[[int], str], cfg: ScanConfig,
                outputs: Outputs, feature_writer: FeatureParquet | None = None) -> ShardEngine:
    """Run the scanner over in-process event batches (catalog or IQFeed) with one engine."""
    eng = ShardEngine(cfg)
    slot_of: dict[int, int] = {}
    for b in batches:
        if b.shape[0] == 0:
            continue
        ids = b["symbol"]
        uniq, inv = np.unique(ids, return_inverse=True)
        slots = np.array([slot_of.setdefault(int(u), eng.slot(names_of(int(u)))) for u in uniq], np.int32)
        ev = b.copy()
        ev["symbol"] = slots[inv]
        res = eng.step(ev)
        outputs.metrics.inc("events_total", b.shape[0])
        if res.signals.shape[0]:
            outputs.signals(signal_dicts(res.signals, eng.names))
        if feature_writer is not None:
            feature_writer.add(res.rows, eng.names)
    for s, name in enumerate(eng.names):
        outputs.state(name, eng.features_of(s))
    outputs.flush()
    if feature_writer is not None:
        feature_writer.close()
    return eng


class FeatureParquet:
    """Optional feature snapshots (the sampled rows) appended to a Parquet file."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = [pa.field("ts", pa.int64()), pa.field("symbol", pa.string())]
        fields += [pa.field(n, pa.float64()) for n in FEATURE_NAMES]
        self.schema = pa.schema(fields)
        self._w = pq.ParquetWriter(str(path), self.schema)
        self.rows = 0

    def add(self, rows: Snapshots, names: list[str]) -> None:
        if len(rows) == 0:
            return
        pa = self._pa
        cols = [pa.array(rows.ts), pa.array([names[int(s)] for s in rows.symbol])]
        cols += [pa.array(rows.F[:, j]) for j in range(len(FEATURE_NAMES))]
        self._w.write_table(pa.Table.from_arrays(cols, schema=self.schema))
        self.rows += len(rows)

    def close(self) -> None:
        self._w.close()


# -------------------------------------------------------------------------------------------- kafka
@dataclass
class _Pending:
    """Records of one partition's slice received so far."""

    parts: int
    batches: list[codec.Batch] = field(default_factory=list)
    where: list[tuple[str, int]] = field(default_factory=list)  # (topic, offset)
    published_ns: int = 0
    first_seen: float = field(default_factory=time.monotonic)


class Shard:
    """One partition number: its engine, the slices waiting for parts, safe offsets."""

    def __init__(self, partition: int, engine: ShardEngine, topics: tuple[str, ...],
                 unread: Callable[[str, int], bool] | None = None) -> None:
        self.partition = partition
        #: (topic, partition) -> True when the broker holds records this consumer has not read yet
        self.unread = unread or (lambda _t, _p: False)
        self.engine = engine
        self.waiting: dict[int, _Pending] = {}  # slice -> records so far
        self.order: list[int] = []  # heap of waiting slice numbers
        self.pending_offsets: dict[str, dict[int, int]] = {t: {} for t in topics}  # topic -> offset -> slice
        self.next_offset: dict[str, int] = {}
        self.dirty: set[int] = set()
        self.topics = tuple(topics)
        self.max_seen: dict[str, int] = {}  # topic -> highest slice number read from it (this partition)
        self.last_seen: dict[str, float] = {}  # topic -> monotonic time of its last record here

    def saw(self, topic: str, slice_no: int, now: float) -> None:
        """A record of ``slice_no`` came from ``topic``: a topic's records arrive in slice order."""
        if slice_no > self.max_seen.get(topic, -1):
            self.max_seen[topic] = slice_no
        self.last_seen[topic] = now

    def safe_offsets(self) -> dict[str, int]:
        """Per topic: the first offset whose slice is not processed yet (where a replay must start)."""
        out = {}
        for t, nxt in self.next_offset.items():
            pend = self.pending_offsets.get(t) or {}
            out[t] = min(pend) if pend else nxt
        return out

    def take_ready(self, incomplete_after_s: float) -> list[tuple[int, _Pending]]:
        """Complete slices in slice order (a slice waits for every earlier one).

        A head slice still missing records is taken as it is only when its missing record cannot
        come any more: every raw topic has delivered a later slice of this partition (a topic's
        records arrive in slice order, so the record was lost or dead-lettered), or it has waited
        ``incomplete_after_s`` while later slices wait and every topic that has not reached it has
        been silent as long.  A topic that is merely behind (a backlog on one topic) is waited for:
        taking the slice early would drop that record as a "replay" when it arrives."""
        out: list[tuple[int, _Pending]] = []
        heap = self.order
        while heap:
            q = self.waiting[heap[0]]
            if len(q.batches) < q.parts:
                now = time.monotonic()
                behind = [t for t in self.topics if self.max_seen.get(t, -1) <= heap[0]]
                if behind:
                    # silent for the whole wait and nothing left unread on the broker: under a backlog
                    # a topic-partition can go unserved for a while although its records are there
                    quiet = all(now - self.last_seen.get(t, -math.inf) >= incomplete_after_s
                                and not self.unread(t, self.partition) for t in behind)
                    if len(heap) < 2 or now - q.first_seen < incomplete_after_s or not quiet:
                        break
                LOG.warning("partition %d: slice %d taken with %d of %d records (waited %.1fs)",
                            self.partition, heap[0], len(q.batches), q.parts, time.monotonic() - q.first_seen)
            s_no = heapq.heappop(heap)
            del self.waiting[s_no]
            out.append((s_no, q))
            self.engine.last_slice[0] = s_no
        return out


class ScannerService:
    """Consumer-group member running the scanner over the raw topics (see the module docstring)."""

    def __init__(self, kcfg: KafkaConfig, cfg: ScanConfig, *, sinks: Iterable[str] = ("kafka", "redis"),
                 redis_sink: object | None = None, metrics: Metrics | None = None) -> None:
        self.kcfg = kcfg
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self._describe()
        sinks = set(sinks)
        unknown = sinks - {"kafka", "redis"}
        if unknown:
            raise ValueError(f"unknown sink(s) {sorted(unknown)}: use kafka, redis")
        self.producer = KeyedProducer(kcfg, on_error=self._producer_error)
        self.producer.warm()
        if "redis" in sinks and redis_sink is None:
            from quantedge.live.redis_state import RedisStateSink

            redis_sink = RedisStateSink()
        self.outputs = Outputs(kcfg, self.producer if "kafka" in sinks else None,
                               redis_sink if "redis" in sinks else None, self.metrics)
        self.snapshots = SnapshotStore(cfg.snapshot_dir, cfg.group_id) if cfg.snapshot_dir else None
        self.shards: dict[int, Shard] = {}
        self.topics = kcfg.raw_topics
        self.role_of_topic = {kcfg.l2_topic: codec.ROLE_BOOK, kcfg.trades_topic: codec.ROLE_TRADES,
                              kcfg.quotes_topic: codec.ROLE_QUOTES}
        self.consumer = GroupConsumer(kcfg, cfg.group_id, list(self.topics), on_assign=self._on_assign,
                                      on_revoke=self._on_revoke)
        self._stop = False
        self._last_commit = time.monotonic()
        self._last_snapshot = time.monotonic()
        self._last_state = time.monotonic()
        self.rate = RateLog(LOG, "scan events", 5.0)
        self.feature_writer = FeatureParquet(cfg.feature_parquet) if cfg.feature_parquet else None

    def _describe(self) -> None:
        m = self.metrics
        m.describe("events_total", "counter", "market-data events (IQFeed lines / feed messages) processed")
        m.describe("records_total", "counter", "raw Kafka records consumed (each carries a batch of events)")
        m.describe("signals_emitted_total", "counter", "signals handed to the sinks (before dedupe)")
        m.describe("dead_letters_total", "counter", "messages sent to the dead-letter topic")
        m.describe("consumer_lag", "gauge", "messages behind the log end per assigned partition")
        m.describe("events_per_second", "gauge", "scanner throughput over the last log interval")
        m.describe("latency_ms", "summary", "publish time of a slice to the moment the scanner takes it (ms)")
        m.describe("redis_connected", "gauge", "1 when the last Redis flush succeeded")
        m.describe("redis_outages_total", "counter", "Redis outages seen")
        m.describe("snapshots_total", "counter", "state snapshots written")
        m.describe("rebalances_total", "counter", "partition assignments received")

    def _producer_error(self, msg: str) -> None:
        self.metrics.inc("producer_errors_total")
        LOG.warning("kafka producer: %s", msg)

    # -- rebalance ----------------------------------------------------------------------------------
    def _on_assign(self, tps: list[tuple[str, int]]) -> None:
        self.metrics.inc("rebalances_total")
        seeks: list[TopicPartition] = []
        for p in sorted({p for _t, p in tps}):
            snap = self.snapshots.load(p) if self.snapshots else None
            if snap is not None:
                eng = ShardEngine.restore(self.cfg, snap.names, snap.arrays)
                LOG.info("partition %d: restored %d symbols from snapshot, replay from %s", p,
                         len(snap.names), snap.offsets)
            else:
                eng = ShardEngine(self.cfg)
            self.shards[p] = Shard(p, eng, self.topics, self._unread)
            for t in self.topics:
                if (t, p) in tps:
                    off = snap.offsets.get(t, OFFSET_BEGINNING) if snap is not None else OFFSET_BEGINNING
                    seeks.append(TopicPartition(t, p, off))
        # Start every assigned partition where its state needs it (snapshot offset or the beginning):
        # assigning with explicit offsets inside the callback replaces the automatic assignment.
        self.consumer._c.assign(seeks)  # noqa: SLF001 - the wrapper has no seek-on-assign hook

    def _on_revoke(self, tps: list[tuple[str, int]]) -> None:
        parts = sorted({p for _t, p in tps})
        try:
            self.checkpoint(force_snapshot=True, only=parts)
        except KafkaIOError as exc:
            LOG.warning("checkpoint on revoke failed (the partition's next owner replays more): %s", exc)
        for p in parts:
            self.shards.pop(p, None)

    # -- message handling ----------------------------------------------------------------------------
    def _dead_letter(self, m: object, reason: str) -> None:
        self.metrics.inc("dead_letters_total")
        LOG.warning("dead letter %s[%d]@%d: %s", m.topic(), m.partition(), m.offset(), reason)
        send_to_dead_letter(self.producer, self.kcfg, m, reason)

    def handle(self, msgs: list) -> int:
        """Buffer records, process every partition slice that is complete; returns events processed."""
        role_of = self.role_of_topic
        now = time.monotonic()
        for m in msgs:
            t, p, off = m.topic(), m.partition(), m.offset()
            sh = self.shards.get(p)
            if sh is None:
                continue
            sh.next_offset[t] = off + 1
            key = m.key()
            try:
                b = codec.decode(m.value())
                if b.role != role_of[t]:
                    raise codec.CodecError(f"role {codec.ROLE_NAMES[b.role]} on topic {t}")
                if not key:
                    raise codec.CodecError("record has no key (a symbol)")
                if key.decode("utf-8") not in b.names:
                    raise codec.CodecError(f"key {key!r} is not one of the record's symbols")
            except (codec.CodecError, UnicodeDecodeError) as exc:
                self._dead_letter(m, str(exc))
                continue
            if b.slice <= sh.engine.last_slice[0]:
                continue  # replay of a slice already in the state
            pend = sh.waiting.get(b.slice)
            if pend is None:
                pend = sh.waiting[b.slice] = _Pending(b.parts)
                heapq.heappush(sh.order, b.slice)
            pend.batches.append(b)
            pend.where.append((t, off))
            pend.published_ns = max(pend.published_ns, b.published_ns)
            sh.pending_offsets[t][off] = b.slice
            sh.saw(t, b.slice, now)
        self.metrics.inc("records_total", len(msgs))
        total = 0
        for sh in list(self.shards.values()):
            ready = sh.take_ready(self.cfg.incomplete_slice_s)
            if ready:
                total += self._process(sh, ready)
        self.metrics.inc("events_total", total)
        return total

    def _process(self, sh: Shard, ready: list[tuple[int, _Pending]]) -> int:
        """One compiled step over every ready slice of a partition (all its symbols at once)."""
        eng = sh.engine
        raws: list[np.ndarray] = []
        slots: list[np.ndarray] = []
        sl_of: list[np.ndarray] = []
        pubs: list[np.ndarray] = []
        for s_no, q in ready:
            for b in q.batches:
                if b.events.shape[0] == 0:
                    continue
                raws.append(b.events.view(_RAW64))
                slots.append(eng.slots_of(b.names, b.names_raw)[b.events["symbol"]])
                sl_of.append(np.full(b.events.shape[0], s_no, np.int64))
                pubs.append(np.full(b.events.shape[0], q.published_ns, np.int64))
            for t, off in q.where:
                sh.pending_offsets[t].pop(off, None)
        now_ns = time.time_ns()
        self.metrics.observe_ms("latency_ms", (now_ns - np.array([q.published_ns for _s, q in ready])) / 1e6)
        if not raws:
            return 0
        # concatenating as opaque 64-byte records skips numpy's per-array structured-dtype promotion
        ev = np.concatenate(raws).view(EVENT_DTYPE)
        slot = np.concatenate(slots)
        ev["symbol"] = slot
        order = merge_order(ev, np.concatenate(sl_of))
        ev = ev[order]
        res = eng.step(ev)
        sh.dirty.update(np.unique(slot).tolist())
        if res.signals.shape[0]:
            # publish time of the earliest slice of the step holding the symbol (latency not understated)
            pub = np.concatenate(pubs)[order]
            pub_of = np.zeros(eng.capacity, np.int64)
            pub_of[ev["symbol"][::-1]] = pub[::-1]
            self.outputs.signals(signal_dicts(res.signals, eng.names, pub_of[res.signals["symbol"]]))
        if self.feature_writer is not None:
            self.feature_writer.add(res.rows, eng.names)
        return int(ev.shape[0])

    # -- checkpoint ----------------------------------------------------------------------------------
    def checkpoint(self, force_snapshot: bool = False, only: list[int] | None = None) -> None:
        """Flush outputs, write snapshots when due, then commit the safe offsets."""
        parts = only if only is not None else list(self.shards)
        now = time.monotonic()
        if now - self._last_state >= self.cfg.state_interval_s or force_snapshot:
            for p in parts:
                sh = self.shards.get(p)
                if sh is None:
                    continue
                for slot in sh.dirty:
                    self.outputs.state(sh.engine.names[slot], sh.engine.features_of(slot))
                sh.dirty.clear()
            self._last_state = now
        self.outputs.flush(final=force_snapshot)
        snap_due = force_snapshot or (now - self._last_snapshot >= self.cfg.snapshot_interval_s)
        for p in parts:
            sh = self.shards.get(p)
            if sh is None:
                continue
            safe = sh.safe_offsets()
            if snap_due and self.snapshots is not None and sh.next_offset:
                self.snapshots.save(p, sh.engine.arrays(), sh.engine.names, safe)
                self.metrics.inc("snapshots_total")
            for t, off in safe.items():
                if off > 0:
                    self.consumer.mark([_Pos(t, p, off - 1)])
        if snap_due:
            self._last_snapshot = now
        self.consumer.commit()
        self._last_commit = now

    def _unread(self, topic: str, partition: int) -> bool:
        """The broker's log end (as cached from the last fetch) is past our position."""
        c = self.consumer._c  # noqa: SLF001 - cached watermarks are not exposed by the wrapper
        tp = TopicPartition(topic, partition)
        try:
            _lo, hi = c.get_watermark_offsets(tp, cached=True)
            pos = c.position([tp])[0].offset
        except Exception:  # noqa: BLE001 - not assigned / not fetched yet: nothing known to be waiting
            return False
        return hi >= 0 and pos >= 0 and hi > pos

    def update_lag(self) -> dict[tuple[str, int], int]:
        """Lag per assigned partition from the watermarks cached by the last fetches (a broker round trip
        per partition would stall the loop: ListOffsets takes ~0.5 s on tansu)."""
        c = self.consumer._c  # noqa: SLF001 - cached watermarks are not exposed by the wrapper
        lag: dict[tuple[str, int], int] = {}
        for t, p in self.consumer.assignment:
            tp = TopicPartition(t, p)
            _lo, hi = c.get_watermark_offsets(tp, cached=True)
            pos = c.position([tp])[0].offset
            pos = max(pos, 0)
            lag[(t, p)] = max(0, max(hi, pos) - pos) if hi >= 0 else 0
        self.metrics.replace("consumer_lag", {(("partition", str(p)), ("topic", t)): float(v)
                                              for (t, p), v in lag.items()})
        return lag

    # -- main loop ------------------------------------------------------------------------------------
    def stop(self, *_args: object) -> None:
        self._stop = True

    def run(self, max_seconds: float | None = None, idle_exit_s: float | None = None,
            max_events: int | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT), ``max_seconds``, ``max_events`` or idle too long."""
        for sig in (os_signal.SIGTERM, os_signal.SIGINT):
            try:
                os_signal.signal(sig, self.stop)
            except ValueError:
                pass  # not the main thread
        t0 = time.monotonic()
        last_data: float | None = None  # idle time counts from the first data, not from the group join
        last_lag = 0.0
        try:
            while not self._stop:
                msgs = self.consumer.poll_batch(self.cfg.poll_max, self.cfg.poll_timeout_s)
                now = time.monotonic()
                if msgs:
                    self.handle(msgs)
                    last_data = now
                self.outputs.trickle(self.cfg.states_per_step)
                if now - self._last_commit >= self.cfg.commit_interval_s:
                    self.checkpoint()
                if now - last_lag >= 2.0:
                    lag = self.update_lag()
                    total = self.metrics.get("events_total")
                    if self.rate.maybe(total, lag=sum(lag.values()), partitions=len(self.shards),
                                       signals=int(self.metrics.get("signals_emitted_total"))):
                        self.metrics.set("events_per_second", self.rate.rate)
                    last_lag = now
                if max_seconds is not None and now - t0 > max_seconds:
                    break
                if max_events is not None and self.metrics.get("events_total") >= max_events:
                    break
                if idle_exit_s is not None and last_data is not None and now - last_data > idle_exit_s:
                    break
            self.update_lag()  # the gauge shows the final position, however short the run (< 2 s)
            self.checkpoint(force_snapshot=True)
        finally:
            if self.feature_writer is not None:
                self.feature_writer.close()
            self.consumer.close()


@dataclass(frozen=True)
class _Pos:
    """Stand-in message for :meth:`GroupConsumer.mark`: marks ``offset`` as the last processed one."""

    t: str
    p: int
    o: int

    def topic(self) -> str:
        return self.t

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o


def signal_names() -> dict[int, str]:
    return dict(SIGNAL_NAMES)


def iter_signals(sig_dicts: Iterable[dict]) -> Iterator[tuple]:
    """Replay-stable content of each signal (for comparing runs)."""
    for d in sig_dicts:
        yield signal_schema.content(d)


assert N_SIG == len(EXPLAIN_NAMES)
