"""Dashboard benchmark: browser updates/s, server CPU and memory at 10x/100x/1000x on a real day.

The server runs as its own process (``quantedge dashboard`` on the LOBSTER AMZN level-5 day, the
detectors on), so its CPU and memory are read from /proc without the browser driver's share.
Headless Chromium opens the symbol view; for each speed the replay is sought to 10:00 ET and played
for ``seconds`` of wall time, then the browser's own counters (updates applied per second, frames
per second, bytes received) and the server's CPU seconds per wall second and RSS are read.

    python -m quantedge.dashboard.bench [--day PATH] [--seconds 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from quantedge import SHARED_DATA
from quantedge.benchmarks import proc_mem_mb
from quantedge.dashboard.app import free_port

DEFAULT_DAY = SHARED_DATA / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of the process (all threads), seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / _TICK


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def start_server(day: Path, port: int) -> subprocess.Popen:
    """``quantedge dashboard`` on the day, in its own process; returns once it answers."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quantedge.dashboard",
            "dashboard",
            "--lobster",
            str(day),
            "--port",
            str(port),
            "--paused",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t_end = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited: {proc.stderr.read().decode()[-2000:]}") from None
            if time.monotonic() > t_end:
                proc.kill()
                raise RuntimeError("dashboard did not answer within 180 s") from None
            time.sleep(0.2)


def run_benchmark(
    day: Path = DEFAULT_DAY,
    speeds: tuple[float, ...] = (10, 100, 1000),
    seconds: float = 8.0,
    chromium: str = "/usr/bin/chromium",
) -> list[dict]:
    """One dict per measurement: kind ``first_paint``, then one ``speed`` row per replay speed,
    then ``memory`` (server peak RSS, browser JS heap)."""
    from quantedge.dashboard.cdp import Browser

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t_start = time.monotonic()
    proc = start_server(day, port)
    startup_s = time.monotonic() - t_start
    out: list[dict] = []
    b = Browser(chromium)
    try:
        rss0, _ = proc_mem_mb(proc.pid)
        t0 = time.monotonic()
        b.goto(url + "/#symbol=AMZN")
        b.wait("window.__qe && window.__qe.stats.firstPaint !== null", timeout=60)
        wall_ms = (time.monotonic() - t0) * 1000
        fcp = b.eval("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
        scanner = b.eval("window.__qe.stats.firstPaint")
        out.append(
            {
                "kind": "first_paint",
                "first_contentful_paint_ms": fcp,
                "scanner_rows_painted_ms": scanner,
                "navigate_to_data_wall_ms": round(wall_ms, 1),
                "server_startup_s": round(startup_s, 2),
                "server_rss_mb_idle": round(rss0, 1),
            }
        )
        for sp in speeds:
            _post(url + "/api/control", {"action": "pause"})
            _post(url + "/api/control", {"action": "seek", "to": "10:00"})
            b.wait("window.__qe.clock && window.__qe.clock.t_et.startsWith('10:00')", timeout=60)
            b.eval("window.__qe.stats.window = []")
            b.eval("for (const k in window.__qe.stats.renderMs) window.__qe.stats.renderMs[k] = 0")
            u0 = b.eval("window.__qe.stats.updates")
            by0 = b.eval("window.__qe.stats.bytes")
            c0, w0 = _proc_cpu_s(proc.pid), time.monotonic()
            _post(url + "/api/control", {"action": "play", "speed": sp})
            time.sleep(seconds)
            c1, w1 = _proc_cpu_s(proc.pid), time.monotonic()
            u1 = b.eval("window.__qe.stats.updates")
            by1 = b.eval("window.__qe.stats.bytes")
            fps = b.eval("window.__qe.stats.fps")
            render = b.eval("window.__qe.stats.renderMs")
            clock = b.eval("window.__qe.clock")
            sess = json.loads(urllib.request.urlopen(url + "/api/session", timeout=30).read())
            _post(url + "/api/control", {"action": "pause"})
            rss, hwm = proc_mem_mb(proc.pid)
            out.append(
                {
                    "kind": "speed",
                    "speed": sp,
                    "wall_s": round(w1 - w0, 2),
                    "browser_updates_per_s": round((u1 - u0) / (w1 - w0), 1),
                    "browser_fps": round(fps, 1),
                    "kib_per_s": round((by1 - by0) / 1024 / (w1 - w0), 1),
                    "server_cpu_per_wall_s": round((c1 - c0) / (w1 - w0), 3),
                    "replayed_to": clock["t_et"],
                    "events_done": clock["events_done"],
                    "server_last_frame_ms": round(sess["server"]["last_frame_s"] * 1000, 2),
                    "server_rss_mb": round(rss, 1),
                    "server_peak_rss_mb": round(hwm, 1),
                    "browser_render_ms_per_s": {k: round(v / (w1 - w0), 1) for k, v in render.items()},
                }
            )
        _post(url + "/api/control", {"action": "seek", "to": "100%"})
        heap = b.eval("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null")
        rss, hwm = proc_mem_mb(proc.pid)
        out.append(
            {
                "kind": "memory",
                "server_rss_mb_end_of_day": round(rss, 1),
                "server_peak_rss_mb": round(hwm, 1),
                "browser_js_heap_mb": round(heap, 1) if heap else None,
            }
        )
    finally:
        b.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--day", type=Path, default=DEFAULT_DAY)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = run_benchmark(a.day, seconds=a.seconds)
    for r in rows:
        print(json.dumps(r))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
