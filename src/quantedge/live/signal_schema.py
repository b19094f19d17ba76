"""JSON of one signal on ``trading.signals`` (keyed by symbol) and its deterministic id.

The id is a hash of what identifies a signal in the stream — symbol name, signal kind, the event
time of the feature row that produced it and that row's sequence — so a replay after a crash, a
rebalance or a Redis outage produces the same id and every consumer can dedupe (at-least-once
delivery end to end).  Field reference: docs/streaming.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from quantedge.signals.types import SIGNAL_BY_NAME, SIGNAL_NAMES

SCHEMA_ID = "quantedge.signal/1"

#: JSON Schema (draft 2020-12) of a ``trading.signals`` value.
SIGNAL_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "signal_id", "symbol", "signal", "signal_code", "triggered", "score",
                 "ts_event", "ts_recv", "seq", "explain", "published_ns", "emitted_ns"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "signal_id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "symbol": {"type": "string", "minLength": 1},
        "signal": {"enum": sorted(SIGNAL_BY_NAME)},
        "signal_code": {"type": "integer", "minimum": 1, "maximum": 255},
        "triggered": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "ts_event": {"type": "integer"},
        "ts_recv": {"type": "integer"},
        "seq": {"type": "integer"},
        "explain": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "published_ns": {"type": "integer"},
        "emitted_ns": {"type": "integer"},
    },
}

#: fields that identify the signal's content; ``published_ns``/``emitted_ns`` vary between replays
CONTENT_FIELDS = ("signal_id", "symbol", "signal", "triggered", "score", "ts_event", "ts_recv", "seq",
                  "explain")


class SignalSchemaError(ValueError):
    """A value that does not follow the schema; the message names the field."""


def signal_id(symbol: str, signal: int, ts_event: int, seq: int) -> str:
    """24 hex chars of BLAKE2b over ``symbol|signal|ts_event|seq``: stable across runs and hosts."""
    key = f"{symbol}|{int(signal)}|{int(ts_event)}|{int(seq)}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 9)


def to_dict(rec: np.void, symbol: str, explain_names: tuple[str, ...], published_ns: int,
            emitted_ns: int) -> dict[str, Any]:
    """One SIGNAL_DTYPE record as the schema's dict (float32 values rounded to stable decimals)."""
    code = int(rec["signal"])
    return {
        "schema": SCHEMA_ID,
        "signal_id": signal_id(symbol, code, int(rec["ts_event"]), int(rec["seq"])),
        "symbol": symbol,
        "signal": SIGNAL_NAMES[code],
        "signal_code": code,
        "triggered": bool(rec["triggered"]),
        "score": min(1.0, max(0.0, round(float(rec["score"]), 6))),
        "ts_event": int(rec["ts_event"]),
        "ts_recv": int(rec["ts_recv"]),
        "seq": int(rec["seq"]),
        "explain": {n: _num(v) for n, v in zip(explain_names, rec["explain"], strict=False)},
        "published_ns": int(published_ns),
        "emitted_ns": int(emitted_ns),
    }


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def validate(obj: Any) -> dict[str, Any]:
    """Check a decoded value against :data:`SIGNAL_JSON_SCHEMA` (required fields, types, id)."""
    if not isinstance(obj, dict):
        raise SignalSchemaError(f"signal value must be a JSON object, got {type(obj).__name__}")
    props = SIGNAL_JSON_SCHEMA["properties"]
    for k in SIGNAL_JSON_SCHEMA["required"]:
        if k not in obj:
            raise SignalSchemaError(f"missing field {k!r}")
    extra = set(obj) - set(props)
    if extra:
        raise SignalSchemaError(f"unknown field(s) {sorted(extra)}")
    if obj["schema"] != SCHEMA_ID:
        raise SignalSchemaError(f"schema: expected {SCHEMA_ID!r}, got {obj['schema']!r}")
    for k in ("signal_code", "ts_event", "ts_recv", "seq", "published_ns", "emitted_ns"):
        if not isinstance(obj[k], int) or isinstance(obj[k], bool):
            raise SignalSchemaError(f"{k}: expected an integer, got {obj[k]!r}")
    if obj["signal"] not in SIGNAL_BY_NAME or SIGNAL_BY_NAME[obj["signal"]] != obj["signal_code"]:
        raise SignalSchemaError(f"signal: {obj['signal']!r} does not match code {obj['signal_code']}")
    if not isinstance(obj["score"], int | float) or not 0.0 <= obj["score"] <= 1.0:
        raise SignalSchemaError(f"score: expected a number in [0, 1], got {obj['score']!r}")
    if not isinstance(obj["triggered"], bool):
        raise SignalSchemaError(f"triggered: expected a boolean, got {obj['triggered']!r}")
    want = signal_id(obj["symbol"], obj["signal_code"], obj["ts_event"], obj["seq"])
    if obj["signal_id"] != want:
        raise SignalSchemaError(f"signal_id: {obj['signal_id']!r} is not the id of its fields ({want})")
    return obj


def decode(value: bytes) -> dict[str, Any]:
    """Parse and validate one ``trading.signals`` value."""
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignalSchemaError(f"not JSON: {exc}") from exc
    return validate(obj)


def content(obj: dict[str, Any]) -> tuple:
    """The replay-stable part of a signal (for comparing runs after dedupe)."""
    return tuple(json.dumps(obj[k], sort_keys=True) if isinstance(obj[k], dict) else obj[k]
                 for k in CONTENT_FIELDS)
