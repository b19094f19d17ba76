"""Latest per-symbol state in Redis hashes and a Redis stream of signals, tolerant of Redis outages.

Writes are buffered in process and sent in one pipeline per :meth:`RedisStateSink.flush`.  When Redis
is unreachable the buffer keeps growing (state updates coalesce per symbol, signals queue in order) and
the next successful flush catches Redis up, so the scanner never stalls on Redis.  Signals are written
through a small Lua script keyed by the signal id (``SET NX`` marker + ``XADD``), which makes replays
after a crash or an outage idempotent: a signal id reaches the stream once.

Keys (``prefix`` defaults to ``qe``):
  ``{prefix}:state:{symbol}``   hash, latest fields for the symbol (features, scores, last signal)
  ``{prefix}:signals``          stream, one entry per signal; fields are the signal's string fields
  ``{prefix}:sigid:{id}``       marker with TTL ``dedupe_ttl_s``: the signal id was already streamed
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:36379/0"

_XADD_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""

FieldValue = str | int | float | bytes
_BYTES: dict[str, bytes] = {}  # field name -> its encoding


@dataclass(frozen=True)
class RedisStateConfig:
    """Where and how to write; ``max_buffered_signals`` bounds memory during a long outage."""

    url: str = DEFAULT_REDIS_URL
    prefix: str = "qe"
    stream_maxlen: int = 1_000_000
    dedupe_ttl_s: int = 7 * 24 * 3600
    max_buffered_signals: int = 1_000_000
    retry_interval_s: float = 1.0
    socket_timeout_s: float = 2.0
    #: symbol states written per ``flush`` (the rest stay buffered, latest value per field, for the
    #: next one): bounds the pause a flush puts into the caller's loop; ``flush(force=True)`` writes all
    state_per_flush: int = 512

    @classmethod
    def from_env(cls, **overrides: object) -> RedisStateConfig:
        url = os.environ.get("QUANTEDGE_REDIS_URL", cls.url)
        return cls(url=url, **overrides)  # type: ignore[arg-type]

    def state_key(self, symbol: str) -> str:
        return f"{self.prefix}:state:{symbol}"

    @property
    def stream_key(self) -> str:
        return f"{self.prefix}:signals"

    def sigid_key(self, signal_id: str) -> str:
        return f"{self.prefix}:sigid:{signal_id}"


@dataclass
class RedisSinkStats:
    """Counters for metrics and for the outage report."""

    state_writes: int = 0
    signals_written: int = 0
    signals_deduped: int = 0
    signals_dropped: int = 0
    flush_failures: int = 0
    outages: int = 0
    connected: bool = True
    last_error: str = ""
    outage_started: float | None = None
    outage_seconds: float = 0.0
    outage_log: list[str] = field(default_factory=list)


class RedisStateSink:
    """Buffered writer of per-symbol state hashes and the signal stream."""

    def __init__(self, config: RedisStateConfig | None = None) -> None:
        self.config = config or RedisStateConfig.from_env()
        self.stats = RedisSinkStats()
        self._r = redis.Redis.from_url(
            self.config.url,
            socket_timeout=self.config.socket_timeout_s,
            socket_connect_timeout=self.config.socket_timeout_s,
            retry_on_timeout=False,
        )
        self._xadd_once = self._r.register_script(_XADD_ONCE)
        self._state: dict[str, dict[str, FieldValue]] = {}
        self._signals: OrderedDict[str, list[FieldValue]] = OrderedDict()
        self._next_try = 0.0

    # -- buffering (never touches the network) ---------------------------------------------------
    def update_state(self, symbol: str, fields: Mapping[str, FieldValue]) -> None:
        """Merge fields into the symbol's pending state (latest value per field wins)."""
        self._state.setdefault(symbol, {}).update(fields)

    def add_signal(self, signal_id: str, fields: Mapping[str, FieldValue]) -> None:
        """Queue one signal for the stream; a repeated id in the buffer is kept once."""
        if signal_id in self._signals:
            self.stats.signals_deduped += 1
            return
        if len(self._signals) >= self.config.max_buffered_signals:
            self._signals.popitem(last=False)
            self.stats.signals_dropped += 1
        flat: list[FieldValue] = ["signal_id", signal_id]
        for k, v in fields.items():
            if k != "signal_id":
                flat.extend((k, v))
        self._signals[signal_id] = flat

    @property
    def pending(self) -> tuple[int, int]:
        """(symbols with unwritten state, unwritten signals)."""
        return len(self._state), len(self._signals)

    # -- writing ---------------------------------------------------------------------------------
    def flush(self, force: bool = False, max_states: int | None = None) -> bool:
        """Write the buffered signals and up to ``max_states`` (default ``state_per_flush``) symbol
        states, all of them with ``force``; True when the write succeeded.

        While Redis is down, attempts are spaced by ``retry_interval_s`` (unless ``force``), so a
        per-batch flush costs nothing during an outage.
        """
        limit = len(self._state) if force else (self.config.state_per_flush if max_states is None
                                                 else max(0, max_states))
        if not self._signals and not (self._state and limit):
            return True
        now = time.monotonic()
        if not force and not self.stats.connected and now < self._next_try:
            return False
        state_items = list(itertools.islice(self._state.items(), limit))  # oldest pending first
        signal_items = list(self._signals.items())
        try:
            if state_items:
                self._hset_packed(state_items)
            results = []
            if signal_items:
                pipe = self._r.pipeline(transaction=False)
                for sid, flat in signal_items:
                    self._xadd_once(
                        keys=[self.config.sigid_key(sid), self.config.stream_key],
                        args=[self.config.dedupe_ttl_s, self.config.stream_maxlen, *flat],
                        client=pipe,
                    )
                results = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._mark_down(str(exc))
            return False
        self._mark_up()
        for symbol, fields in state_items:
            if self._state.get(symbol) is fields:
                del self._state[symbol]
        for (sid, _flat), res in zip(signal_items, results, strict=True):
            self._signals.pop(sid, None)
            if res is None or res is False:
                self.stats.signals_deduped += 1
            else:
                self.stats.signals_written += 1
        self.stats.state_writes += len(state_items)
        return True

    def _hset_packed(self, items: list[tuple[str, dict[str, FieldValue]]]) -> None:
        """HSET of many symbols in one write, packed here (redis-py's generic packing took ~6 µs per
        field: 200 ms per flush of 2,000 symbols, a stall in the scanner's loop)."""
        out = []
        for symbol, fields in items:
            key = self.config.state_key(symbol).encode()
            out.append(b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (2 + 2 * len(fields), len(key), key))
            for k, v in fields.items():
                kb = _BYTES.get(k) or _BYTES.setdefault(k, k.encode())
                vb = v if isinstance(v, bytes) else str(v).encode()
                out.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(kb), kb, len(vb), vb))
        pool = self._r.connection_pool
        try:
            conn = pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            conn = pool.get_connection("HSET")
        try:
            conn.send_packed_command([b"".join(out)])
            for _ in items:
                reply = conn.read_response()
                if isinstance(reply, redis.ResponseError):
                    raise reply
        except BaseException:
            conn.disconnect()  # a half-read reply stream must not be reused
            raise
        finally:
            pool.release(conn)

    def _mark_down(self, err: str) -> None:
        self.stats.flush_failures += 1
        self.stats.last_error = err
        self._next_try = time.monotonic() + self.config.retry_interval_s
        if self.stats.connected:
            self.stats.connected = False
            self.stats.outages += 1
            self.stats.outage_started = time.monotonic()
            self.stats.outage_log.append(f"redis unavailable: {err}")

    def _mark_up(self) -> None:
        if not self.stats.connected:
            self.stats.connected = True
            started = self.stats.outage_started or time.monotonic()
            dur = time.monotonic() - started
            self.stats.outage_seconds += dur
            self.stats.outage_log.append(
                f"redis back after {dur:.1f}s; caught up {len(self._state)} symbol states, "
                f"{len(self._signals)} signals"
            )
            self.stats.outage_started = None

    # -- reading (dashboards, tests) ---------------------------------------------------------------
    def latest_state(self, symbol: str) -> dict[str, str]:
        """The symbol's state hash as written (strings)."""
        raw = self._r.hgetall(self.config.state_key(symbol))
        return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]

    def read_signals(self, count: int = 1000, start: str = "-") -> list[tuple[str, dict[str, str]]]:
        """Stream entries from ``start`` in order: (entry id, fields)."""
        rows = self._r.xrange(self.config.stream_key, min=start, max="+", count=count)
        return [(eid.decode(), {k.decode(): v.decode() for k, v in f.items()}) for eid, f in rows]

    def ping(self) -> bool:
        try:
            return bool(self._r.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def close(self) -> None:
        self._r.close()
