"""Attach mode: show a running scanner's state (Redis hashes + signal stream) instead of a replay.

The scanner service writes ``{prefix}:state:{symbol}`` hashes (latest features, scores and last
signal per symbol) and the ``{prefix}:signals`` stream (see quantedge.live.redis_state).  This
session polls both once per server frame (SCAN for new symbols every few seconds, HGETALL of the
symbols, XREAD of new stream entries) and exposes the same view methods as the replay session, so
the same front end shows it.  Replay controls answer with a clear 400: a live feed cannot seek.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from quantedge.dashboard.session import SCORE_COLUMNS, SessionError, _fmt_et

MAX_SIGNALS = 20_000  # newest signal entries kept in memory


def _f(x: str | None) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _et(ns: int) -> str:
    return _fmt_et(ns) if ns > 0 else ""


class AttachSession:
    """A live scanner's Redis state as a dashboard session (read-only)."""

    def __init__(self, url: str, prefix: str = "qe", rescan_s: float = 3.0) -> None:
        import redis

        from quantedge.live.redis_state import RedisStateConfig

        self.cfg = RedisStateConfig(url=url, prefix=prefix)
        self.r = redis.Redis.from_url(self.cfg.url, decode_responses=True, socket_timeout=2)
        try:
            self.r.ping()
        except redis.RedisError as e:
            raise SessionError(f"cannot reach the scanner's Redis at {url}: {e}") from None
        self.lock = threading.RLock()
        self.prefix = prefix
        self.rescan_s = rescan_s
        self._last_scan = 0.0
        self.names: list[str] = []
        self.state: dict[str, dict[str, str]] = {}
        self.signals: list[dict] = []
        self.scores: dict[str, dict[str, float]] = {}
        self._stream_id = "0-0"
        self.dirty = np.zeros(0, bool)
        self.watched: dict[int, int] = {}
        self.version = 0
        self.now = time.time_ns()
        self.paused = False
        self.finished = False
        self.error = ""

    # ------------------------------------------------------------------ polling
    def tick(self, dt_s: float, max_rows: int) -> None:
        import redis

        with self.lock:
            self.now = time.time_ns()
            try:
                self._poll()
                self.error = ""
            except redis.RedisError as e:
                self.error = f"scanner state unavailable: {e}"

    def _poll(self) -> None:
        key = f"{self.prefix}:state:"
        if time.monotonic() - self._last_scan > self.rescan_s:
            found = sorted(k[len(key) :] for k in self.r.scan_iter(match=key + "*", count=1000))
            for n in found:
                if n not in self.state:
                    self.names.append(n)
                    self.state[n] = {}
            if len(self.dirty) < len(self.names):
                self.dirty = np.concatenate([self.dirty, np.ones(len(self.names) - len(self.dirty), bool)])
            self._last_scan = time.monotonic()
        if self.names:
            pipe = self.r.pipeline(transaction=False)
            for n in self.names:
                pipe.hgetall(key + n)
            for i, (n, h) in enumerate(zip(self.names, pipe.execute(), strict=True)):
                if h != self.state.get(n):
                    self.state[n] = h
                    self.dirty[i] = True
        got = self.r.xread({f"{self.prefix}:signals": self._stream_id}, count=5000)
        for _stream, entries in got or []:
            for sid, fields in entries:
                self._stream_id = sid
                self.signals.append({"id": sid, **fields})
                sym, name, score = fields.get("symbol"), fields.get("signal"), _f(fields.get("score"))
                if sym in self.state and name in SCORE_COLUMNS and score is not None:
                    self.scores.setdefault(sym, {})[name] = score
                    self.dirty[self.names.index(sym)] = True
        if len(self.signals) > MAX_SIGNALS:
            del self.signals[: len(self.signals) - MAX_SIGNALS]

    # ------------------------------------------------------------------ controls: none on a live feed
    def _no(self, *_a: object, **_k: object) -> None:
        raise SessionError("attached to a live scanner: play, pause, step and seek apply to replays only")

    play = pause = step = seek = set_speed = _no

    def write_report(self) -> dict:
        raise SessionError("attached to a live scanner: there is no backtest run to report")

    # ------------------------------------------------------------------ views
    def clock(self) -> dict:
        t = time.strftime("%H:%M:%S", time.localtime(self.now / 1e9))
        return {
            "t": self.now,
            "t_et": t,
            "speed": 1.0,
            "paused": False,
            "finished": False,
            "version": self.version,
            "progress": 1.0,
            "events_done": 0,
            "live": True,
            "error": self.error,
        }

    def meta(self) -> dict:
        return {
            "source": "attach",
            "redis": self.cfg.url,
            "symbols": list(self.names),
            "score_columns": list(SCORE_COLUMNS),
            **self.clock(),
        }

    def symbol_id(self, name: str) -> int:
        if not isinstance(name, str) or name not in self.names:
            raise SessionError(f"unknown symbol {name!r}: the scanner has not published it")
        return self.names.index(name)

    def watch(self, s: int) -> None:
        self.watched[s] = self.watched.get(s, 0) + 1

    def unwatch(self, s: int) -> None:
        self.watched.pop(s, None)

    def _row(self, n: str) -> dict:
        """One scanner row from the symbol's state hash (the scanner writes STATE_FEATURES and the
        last signal there) and the latest score per detector seen on the signal stream."""
        h = self.state.get(n, {})
        sc = self.scores.get(n, {})
        scores = {c: sc.get(c) for c in SCORE_COLUMNS}
        ls = None
        if h.get("last_signal"):
            t = int(_f(h.get("last_signal_ts")) or 0)
            ls = {
                "t": t,
                "t_et": _et(t),
                "name": h["last_signal"],
                "score": _f(h.get("last_signal_score")) or 0.0,
            }
        return {
            "symbol": n,
            "composite": scores["composite"],
            "scores": scores,
            "bid": _f(h.get("bid")),
            "ask": _f(h.get("ask")),
            "last": _f(h.get("mid", h.get("last_price"))),
            "spread": _f(h.get("spread")),
            "spread_bps": _f(h.get("spread_bps")),
            "volume": _f(h.get("volume_30s", h.get("session_volume"))),
            "vwap": _f(h.get("vwap")),
            "ofi_30s": _f(h.get("ofi_30s")),
            "offex_share": None,
            "last_signal": ls,
            "fields": h,
        }

    def scanner_rows(self, only_dirty: bool = False) -> list[dict]:
        with self.lock:
            idx = np.flatnonzero(self.dirty) if only_dirty else np.arange(len(self.names))
            self.dirty[idx] = False
            return [self._row(self.names[i]) for i in idx]

    def signal_log(self, s: int | None = None) -> list[dict]:
        with self.lock:
            name = self.names[s] if s is not None else None
            return [self._sig(x) for x in self.signals if name is None or x.get("symbol") == name]

    @staticmethod
    def _sig(x: dict) -> dict:
        t = int(_f(x.get("ts_recv", x.get("ts"))) or 0)
        return {
            "t": t,
            "t_et": x.get("time", ""),
            "symbol": x.get("symbol", ""),
            "name": x.get("signal", x.get("name", "")),
            "score": _f(x.get("score")) or 0.0,
            "triggered": x.get("triggered", "1") in ("1", "true", "True"),
            "explain": [],
        }

    def ladder(self, s: int) -> dict:
        r = self._row(self.names[s])
        return {
            "bid": [[r["bid"], int(_f(r["fields"].get("bid_size")) or 0), 1]] if r["bid"] else [],
            "ask": [[r["ask"], int(_f(r["fields"].get("ask_size")) or 0), 1]] if r["ask"] else [],
        }

    def new_cursor(self, s: int) -> dict:
        return {"n_signals": len(self.signals), "t": self.now}

    def _position(self) -> dict:
        return {
            "qty": 0,
            "avg_px": 0.0,
            "mark": None,
            "unrealized": 0.0,
            "equity": 0.0,
            "cash": 0.0,
            "pnl": 0.0,
            "fees": 0.0,
            "realized": 0.0,
            "n_fills": 0,
            "halted": False,
        }

    def symbol_snapshot(self, s: int) -> dict:
        with self.lock:
            r = self._row(self.names[s])
            return {
                "type": "snapshot",
                "symbol": self.names[s],
                "clock": self.clock(),
                "history": {"t": [self.now], "bid": [r["bid"]], "ask": [r["ask"]], "last": [r["last"]]},
                "ladder": self.ladder(s),
                "heat": [],
                "tape": [],
                "tape_next": 0,
                "signals": self.signal_log(s),
                "orders": [],
                "fills": [],
                "position": self._position(),
            }

    def symbol_delta(self, s: int, cursor: dict) -> dict:
        with self.lock:
            r = self._row(self.names[s])
            k = cursor.get("n_signals", 0)
            new = [self._sig(x) for x in self.signals[k:] if x.get("symbol") == self.names[s]]
            cursor["n_signals"] = len(self.signals)
            return {
                "type": "delta",
                "symbol": self.names[s],
                "clock": self.clock(),
                "points": [[self.now, r["bid"], r["ask"], r["last"]]],
                "tape": [],
                "ladder": self.ladder(s),
                "signals": new,
                "position": self._position(),
            }

    def summary(self) -> dict:
        return {
            "t": [],
            "equity": [],
            "drawdown": [],
            "metrics": {},
            "final": False,
            "account": self._position(),
            "trades": 0,
        }
