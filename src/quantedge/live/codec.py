"""Value encoding of the raw topics: a compact binary batch of EVENT_DTYPE records ("QEB1").

Why binary and not the raw IQFeed line: the scanner's kernels read EVENT_DTYPE arrays, so a binary
batch decodes with one ``np.frombuffer`` (zero copy, ~µs per message) while IQFeed text must be
parsed field by field and needs the per-symbol L1 state of the line writer to be re-created on the
consumer side.  ``quantedge.live.bench.codec_bench`` measures both on the same events (figures in
docs/streaming.md); text lines cost one to two orders of magnitude more CPU per event and 1.5-3x
the bytes.

One message = one symbol's events of one topic's kinds within one publisher *slice* (a time window
of the source stream), keyed by the symbol name.  The header lets the consumer rebuild each symbol's
stream in merge order no matter how the three raw topics interleave on the wire:

=========  ======  ========================================================================
offset     type    field
=========  ======  ========================================================================
0          4s      magic ``b"QEB1"``
4          u1      version (1)
5          u1      topic role: 0 book (depth/order/clear/status), 1 trades, 2 quotes
6          u2      parts: how many messages (over the three raw topics) the symbol has in this slice
8          i8      slice: publisher slice sequence, increasing per publisher run (per symbol it
                   is strictly increasing across messages of one role)
16         i8      published_ns: wall clock (ns UTC) when the publisher produced the message
24         u4      count: number of 64-byte records that follow
28         u4      reserved, 0
32         64 x n  EVENT_DTYPE records (little endian; ``symbol`` is the publisher's id and is
                   replaced by the consumer's own id for the key)
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

MAGIC = b"QEB1"
VERSION = 1
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
    """A value that is not a valid QEB1 batch; the message says which field is wrong."""


@dataclass(frozen=True)
class Batch:
    """One decoded message: header fields and the records (a read-only view of the value)."""

    role: int
    parts: int
    slice: int
    published_ns: int
    events: np.ndarray


def encode(events: np.ndarray, role: int, parts: int, slice_no: int, published_ns: int) -> bytes:
    """Header + records; ``events`` must be EVENT_DTYPE (one symbol, kinds of ``role``)."""
    if events.dtype != EVENT_DTYPE:
        raise CodecError(f"events must have EVENT_DTYPE, got {events.dtype}")
    head = HEADER.pack(MAGIC, VERSION, role, parts, slice_no, published_ns, events.shape[0], 0)
    return head + np.ascontiguousarray(events).tobytes()


def decode(value: bytes | None) -> Batch:
    """Parse and validate one value; raises :class:`CodecError` naming the bad field."""
    if value is None:
        raise CodecError("empty value (tombstone)")
    n = len(value)
    if n < HEADER_SIZE:
        raise CodecError(f"value of {n} bytes is shorter than the {HEADER_SIZE}-byte QEB1 header")
    magic, version, role, parts, slice_no, pub, count, _res = HEADER.unpack_from(value, 0)
    if magic != MAGIC:
        raise CodecError(f"magic: expected {MAGIC!r}, got {magic!r} (not a QEB1 batch)")
    if version != VERSION:
        raise CodecError(f"version: unsupported {version} (this build reads {VERSION})")
    if role not in ROLE_KINDS:
        raise CodecError(f"role: {role} is not 0 (book), 1 (trades) or 2 (quotes)")
    if not 1 <= parts <= 3:
        raise CodecError(f"parts: {parts} is outside 1..3")
    if n != HEADER_SIZE + count * EVENT_DTYPE.itemsize:
        raise CodecError(f"count: header says {count} records ({HEADER_SIZE + count * 64} bytes), "
                         f"value has {n} bytes")
    ev = np.frombuffer(value, dtype=EVENT_DTYPE, count=count, offset=HEADER_SIZE)
    if count:
        roles = KIND_ROLE[ev["kind"]]
        bad = np.flatnonzero(roles != role)
        if bad.size:
            i = int(bad[0])
            raise CodecError(f"record {i}: kind {int(ev['kind'][i])} does not belong on the "
                             f"{ROLE_NAMES[role]} topic")
        ts = ev["ts_recv"]
        if count > 1 and bool(np.any(ts[1:] < ts[:-1])):
            i = int(np.flatnonzero(ts[1:] < ts[:-1])[0]) + 1
            raise CodecError(f"record {i}: ts_recv goes backwards within the batch")
    return Batch(role, parts, slice_no, pub, ev)


def role_of_kinds(kinds: np.ndarray) -> np.ndarray:
    """Role per event kind (255 where the kind has no raw topic)."""
    return KIND_ROLE[kinds]
