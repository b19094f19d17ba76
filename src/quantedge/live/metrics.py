"""Service metrics in the Prometheus text exposition format (0.0.4), served over HTTP, plus log lines.

Only the standard library is used (``http.server`` on a daemon thread), so a service exposes
``/metrics`` without a client library; any Prometheus server scrapes it unchanged.  The same values
go to one periodic log line so a terminal or a log shipper sees lag and throughput without scraping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, object] | None) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in (labels or {}).items()))


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in labels)
    return "{" + inner + "}"


class Metrics:
    """Counters, gauges and latency summaries, thread-safe, rendered in Prometheus text format."""

    def __init__(self, namespace: str = "quantedge") -> None:
        self.ns = namespace
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[Labels, float]] = {}
        self._lat: dict[str, list[float]] = {}
        self._lat_max = 100_000

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, value: float = 1.0, labels: Mapping[str, object] | None = None) -> None:
        with self._lock:
            d = self._values.setdefault(name, {})
            k = _labels(labels)
            d[k] = d.get(k, 0.0) + value

    def set(self, name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = float(value)

    def replace(self, name: str, values: Mapping[Labels, float]) -> None:
        """Set a labelled gauge to exactly these series (e.g. lag of the currently assigned partitions)."""
        with self._lock:
            self._values[name] = dict(values)

    def get(self, name: str, labels: Mapping[str, object] | None = None) -> float:
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def observe_ms(self, name: str, values: np.ndarray | list[float]) -> None:
        """Record latencies (ms); a bounded window of the latest values feeds the quantiles."""
        with self._lock:
            buf = self._lat.setdefault(name, [])
            buf.extend(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
            if len(buf) > self._lat_max:
                del buf[: len(buf) - self._lat_max]

    def quantiles(self, name: str) -> dict[str, float]:
        with self._lock:
            buf = np.asarray(self._lat.get(name, []), dtype=np.float64)
        if buf.size == 0:
            return {}
        q = np.percentile(buf, [50, 99])
        return {"p50": float(q[0]), "p99": float(q[1]), "count": float(buf.size)}

    def render(self) -> str:
        """The text exposition of every metric."""
        out: list[str] = []
        with self._lock:
            names = sorted(set(self._values) | set(self._lat))
            values = {n: dict(self._values.get(n, {})) for n in names}
            lats = {n: np.asarray(self._lat.get(n, []), dtype=np.float64) for n in self._lat}
        for n in names:
            full = f"{self.ns}_{n}"
            kind, text = self._help.get(n, ("summary" if n in lats else "gauge", n.replace("_", " ")))
            out.append(f"# HELP {full} {text}")
            out.append(f"# TYPE {full} {kind}")
            if n in lats:
                buf = lats[n]
                if buf.size:
                    for q, v in zip((0.5, 0.99), np.percentile(buf, [50, 99]), strict=True):
                        out.append(f'{full}{{quantile="{q}"}} {v:.6g}')
                out.append(f"{full}_count {buf.size}")
                out.append(f"{full}_sum {float(buf.sum()):.6g}")
                continue
            for labels, v in sorted(values[n].items()):
                out.append(f"{full}{_fmt_labels(labels)} {v:.17g}")
        return "\n".join(out) + "\n"


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0 picks a free one: see :attr:`port`)."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        m = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics")
                    return
                body = m.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self._srv = ThreadingHTTPServer((host, port), Handler)
        self._srv.daemon_threads = True
        self.host = host
        self.port = self._srv.server_address[1]
        self._t = threading.Thread(target=self._srv.serve_forever, name="metrics-http", daemon=True)
        self._t.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


class RateLog:
    """One INFO line every ``interval_s`` with throughput since the last line and given gauges."""

    def __init__(self, log: logging.Logger, what: str, interval_s: float = 5.0) -> None:
        self.log = log
        self.what = what
        self.interval = interval_s
        self._t0 = time.monotonic()
        self._n0 = 0.0
        self.rate = 0.0  # throughput over the last logged interval

    def maybe(self, total: float, **fields: object) -> bool:
        now = time.monotonic()
        if now - self._t0 < self.interval:
            return False
        rate = (total - self._n0) / (now - self._t0)
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        self.log.info("%s: %.0f/s total=%d %s", self.what, rate, int(total), extra)
        self._t0, self._n0 = now, total
        self.rate = rate
        return True
