"""Value encoding of the raw topics: a compact binary batch of EVENT_DTYPE records ("QEB2").

Why binary and not the raw IQFeed line: the scanner's kernels read EVENT_DTYPE arrays, so a binary
batch decodes with one ``np.frombuffer`` (zero copy) while IQFeed text must be parsed field by field
and needs the per-symbol L1 state of the line writer re-created on the consumer side.
``quantedge.live.bench.codec_bench`` measures both on the same events (figures in docs/streaming.md).

Why several symbols per record: the cost of the pipeline is per Kafka record (a Python call to
produce, one to hand the record over, header parsing, bookkeeping), ~20-70 µs each, while the
compiled kernels spend well under 1 µs per event.  Thin symbols have one or two events per symbol
per slice, so one record per symbol caps the pipeline at a few tens of thousands of events/s.  A
record therefore carries one *group*: every event of one topic role in one publisher slice for a set
of symbols that all hash to the record's partition (``group="partition"``: all the partition's symbols;
``group="symbol"``: one symbol, the key-exact layout).  Partition placement is the keyed one
(murmur2 of the symbol), so a symbol's events are on the same partition, in order, either way.

Layout (little endian):

=========  ======  ========================================================================
offset     type    field
=========  ======  ========================================================================
0          4s      magic ``b"QEB2"``
4          u1      version (2)
5          u1      topic role: 0 book (depth/order/clear/status), 1 trades, 2 quotes
6          u2      parts: how many records the publisher wrote for this *partition* in this slice,
                   over the three raw topics (1..65535)
8          i8      slice: publisher slice number, a monotone ns stamp (increases across restarts)
16         i8      published_ns: wall clock (ns UTC) when the publisher produced the record
24         u4      count: number of 64-byte event records
28         u4      names_len: bytes of the symbol-name table
32         names   symbol names, UTF-8, joined by ``\\n`` (no empty name), then zero padding to a
                   multiple of 8 bytes
32+pad     64 x n  EVENT_DTYPE records grouped by symbol, each symbol's in merge order; ``symbol``
                   is the index of the event's name in the table (the consumer maps it to its own id)
=========  ======  ========================================================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from quantedge.events import (
    EVENT_DTYPE,
    KIND_CLEAR,
    KIND_DEPTH,
    KIND_ORDER,
    KIND_QUOTE,
    KIND_STATUS,
    KIND_TRADE,
)

MAGIC = b"QEB2"
VERSION = 2
HEADER = struct.Struct("<4sBBHqqII")
HEADER_SIZE = HEADER.size  # 32
assert HEADER_SIZE == 32

ROLE_BOOK = 0
ROLE_TRADES = 1
ROLE_QUOTES = 2
ROLE_NAMES = ("book", "trades", "quotes")

#: kinds carried by each role (the scanner rejects a record of another kind on that topic)
ROLE_KINDS: dict[int, tuple[int, ...]] = {
    ROLE_BOOK: (KIND_CLEAR, KIND_STATUS, KIND_ORDER, KIND_DEPTH),
    ROLE_TRADES: (KIND_TRADE,),
    ROLE_QUOTES: (KIND_QUOTE,),
}

#: kind number -> role (index = kind); 255 = no role
KIND_ROLE = np.full(256, 255, np.uint8)
for _role, _kinds in ROLE_KINDS.items():
    for _k in _kinds:
        KIND_ROLE[_k] = _role


class CodecError(ValueError):
    """A value that is not a valid QEB2 batch; the message says which field is wrong."""


@dataclass(frozen=True)
class Batch:
    """One decoded record: header fields, symbol names and the events (a read-only view of the value;
    ``events["symbol"]`` indexes ``names``)."""

    role: int
    parts: int
    slice: int
    published_ns: int
    names: list[str]
    events: np.ndarray
    names_raw: bytes = b""


def names_blob(names: list[str]) -> bytes:
    """The padded name table of a record (reusable across records of the same symbol set)."""
    raw = "\n".join(names).encode()
    return raw + b"\0" * (-len(raw) % 8)


def encode(events: np.ndarray, role: int, parts: int, slice_no: int, published_ns: int,
           names: list[str] | None = None, blob: bytes | None = None) -> bytes:
    """Header + name table + records.  ``events["symbol"]`` must index ``names`` (or the names in
    ``blob`` from :func:`names_blob`); events grouped by symbol, each in merge order."""
    if events.dtype != EVENT_DTYPE:
        raise CodecError(f"events must have EVENT_DTYPE, got {events.dtype}")
    if not 1 <= parts <= 0xFFFF:
        raise CodecError(f"parts: {parts} is outside 1..65535")
    if blob is None:
        if not names:
            raise CodecError("a record needs at least one symbol name")
        blob = names_blob(names)
    n_len = len(blob.rstrip(b"\0"))
    head = HEADER.pack(MAGIC, VERSION, role, parts, slice_no, published_ns, events.shape[0], n_len)
    return b"".join((head, blob, np.ascontiguousarray(events).tobytes()))


def decode(value: bytes | None) -> Batch:
    """Parse and validate one value; raises :class:`CodecError` naming the bad field."""
    if value is None:
        raise CodecError("empty value (tombstone)")
    n = len(value)
    if n < HEADER_SIZE:
        raise CodecError(f"value of {n} bytes is shorter than the {HEADER_SIZE}-byte QEB2 header")
    magic, version, role, parts, slice_no, pub, count, n_len = HEADER.unpack_from(value, 0)
    if magic != MAGIC:
        raise CodecError(f"magic: expected {MAGIC!r}, got {magic!r} (not a QEB2 batch)")
    if version != VERSION:
        raise CodecError(f"version: unsupported {version} (this build reads {VERSION})")
    if role not in ROLE_KINDS:
        raise CodecError(f"role: {role} is not 0 (book), 1 (trades) or 2 (quotes)")
    if parts < 1:
        raise CodecError("parts: 0 (a slice has at least this record)")
    off = HEADER_SIZE + n_len + (-n_len % 8)
    if n != off + count * EVENT_DTYPE.itemsize:
        raise CodecError(f"count: header says {n_len} name bytes and {count} records "
                         f"({off + count * 64} bytes), value has {n} bytes")
    raw = bytes(value[HEADER_SIZE:HEADER_SIZE + n_len])
    try:
        names = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise CodecError(f"names: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not all(names):
        raise CodecError("names: empty symbol name in the table")
    ev = np.frombuffer(value, dtype=EVENT_DTYPE, count=count, offset=off)
    if count:
        roles = KIND_ROLE[ev["kind"]]
        bad = np.flatnonzero(roles != role)
        if bad.size:
            i = int(bad[0])
            raise CodecError(f"record {i}: kind {int(ev['kind'][i])} does not belong on the "
                             f"{ROLE_NAMES[role]} topic")
        sym = ev["symbol"]
        bad = np.flatnonzero((sym < 0) | (sym >= len(names)))
        if bad.size:
            i = int(bad[0])
            raise CodecError(f"record {i}: symbol index {int(sym[i])} outside the {len(names)}-name table")
        if count > 1:
            ts = ev["ts_recv"]
            back = np.flatnonzero((ts[1:] < ts[:-1]) & (sym[1:] == sym[:-1]))
            if back.size:
                raise CodecError(f"record {int(back[0]) + 1}: ts_recv goes backwards within symbol "
                                 f"{names[int(sym[back[0] + 1])]!r}")
    return Batch(role, parts, slice_no, pub, names, ev, raw)


def role_of_kinds(kinds: np.ndarray) -> np.ndarray:
    """Role per event kind (255 where the kind has no raw topic)."""
    return KIND_ROLE[kinds]


# ------------------------------------------------------------------------------------ partitioning
def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner and librdkafka's ``murmur2_random``)."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    tail = data[4 * n4:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition a keyed record lands on (positive murmur2 modulo the count), as Kafka clients do."""
    b = key.encode() if isinstance(key, str) else key
    return (murmur2(b) & 0x7FFFFFFF) % partitions
