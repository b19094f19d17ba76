"""The dashboard's web server: a Starlette app with a JSON API and one WebSocket of incremental updates.

Why Starlette + uvicorn + a canvas front end: the replay loop and the stages are Python/Numba in
this process, so an asyncio server that shares the session object pushes small JSON deltas (new
history points, new prints, the ladder, new signals/orders) at a fixed frame rate without copying
state between processes; the browser draws them on canvas (uPlot for time series, plain canvas for
the depth heat-map).  Bokeh/Panel and Dash re-serialise figure models per update, which is what the
issue asks to avoid; measured figures are in BENCHMARKS.md / docs/dashboard.md.

Protocol (WebSocket ``/ws``): the client sends ``{"op": "watch", "symbol": S}`` (or ``unwatch``);
the server sends ``{"type": "snapshot", ...}`` for a newly watched symbol, then one
``{"type": "delta", ...}`` per frame while anything changes, ``{"type": "clock", ...}`` frames while
idle, ``{"type": "scanner", "rows": [...changed rows]}`` a few times per second and
``{"type": "error", "message": ...}`` for a bad request.  Errors never close the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from quantedge.dashboard.session import ReplaySession, SessionError

log = logging.getLogger("quantedge.dashboard")
STATIC = Path(__file__).resolve().parent / "static"
FRAME_S = 0.04  # 25 frames/s pushed to every client
SCANNER_EVERY = 6  # frames between scanner pushes (about 4 per second)
MAX_CATCHUP_ROWS = 2_000_000  # events applied per frame at most (keeps frames short at 1000x on big days)
MAX_QUEUED = 64  # messages waiting for a slow client before its deltas are dropped (it resyncs)


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Client:
    """One browser connection: its watched symbol, delta cursor and bounded send queue."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.symbol: int | None = None
        self.cursor: dict[str, Any] = {}
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.need_snapshot = False
        self.version = -1
        self.dropped = 0

    def put(self, msg: str, droppable: bool = True) -> None:
        if droppable and self.queue.qsize() >= MAX_QUEUED:
            self.dropped += 1
            self.need_snapshot = True
            return
        self.queue.put_nowait(msg)


class Hub:
    """Owns the session's replay task and the connected clients."""

    def __init__(self, session: ReplaySession) -> None:
        self.session = session
        self.clients: set[Client] = set()
        self.task: asyncio.Task | None = None
        self.frames = 0
        self.cpu_s = 0.0
        self.last_frame_s = 0.0

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        """Frames on a fixed grid (not sleep-after-work), so clients get FRAME_S pacing exactly."""
        last = time.perf_counter()
        nxt = last + FRAME_S
        while True:
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
            now = time.perf_counter()
            nxt = max(nxt + FRAME_S, now + FRAME_S / 4)
            dt = now - last
            last = now
            t0 = time.process_time()
            try:
                await asyncio.to_thread(self._frame, dt)
            except Exception:  # a bug in one frame must not stop the server; it is logged
                log.exception("replay frame failed")
            self.cpu_s += time.process_time() - t0
            self.last_frame_s = time.perf_counter() - now

    def _frame(self, dt: float) -> None:
        """Advance the clock by speed x wall time, then queue each client's messages."""
        s = self.session
        with s.lock:
            s.tick(dt, MAX_CATCHUP_ROWS)
            self.frames += 1
            clock = s.clock()
            scanner = None
            if self.frames % SCANNER_EVERY == 0 and s.dirty.any():
                scanner = json.dumps(
                    {"type": "scanner", "rows": s.scanner_rows(only_dirty=True), "clock": clock}
                )
            per_symbol: dict[int, str] = {}
            for c in list(self.clients):
                if c.symbol is None:
                    c.put(json.dumps({"type": "clock", "clock": clock}))
                elif c.need_snapshot or c.version != s.version:
                    c.cursor = {}
                    snap = s.symbol_snapshot(c.symbol)
                    self._prime(c)
                    c.version, c.need_snapshot = s.version, False
                    c.put(json.dumps(snap), droppable=False)
                else:
                    key = c.symbol
                    if key not in per_symbol:
                        per_symbol[key] = json.dumps(s.symbol_delta(key, c.cursor))
                    else:  # other clients on the same symbol share the frame's delta
                        s.symbol_delta(key, c.cursor)
                    c.put(per_symbol[key])
                if scanner:
                    c.put(scanner)

    def _prime(self, c: Client) -> None:
        """Move a fresh cursor past what the snapshot already holds."""
        c.cursor = self.session.new_cursor(c.symbol)

    def stats(self) -> dict:
        return {
            "frames": self.frames,
            "clients": len(self.clients),
            "cpu_s": self.cpu_s,
            "last_frame_s": self.last_frame_s,
            "dropped": sum(c.dropped for c in self.clients),
        }


def create_app(session: ReplaySession | Any) -> Starlette:
    """The ASGI app for one session: a :class:`ReplaySession` or an attach-mode session."""
    hub = Hub(session)

    async def index(_: Request) -> Response:
        f = STATIC / "index.html"
        if not f.exists():
            return HTMLResponse(
                "<h1>dashboard assets missing</h1><p>run scripts/build_frontend.sh</p>", status_code=500
            )
        return FileResponse(f)

    async def api_session(_: Request) -> Response:
        return JSONResponse({**session.meta(), "server": hub.stats()})

    async def api_control(req: Request) -> Response:
        try:
            body = await req.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _err(400, 'request body must be JSON like {"action": "play", "speed": 100}')
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return _err(400, 'request body needs an "action": play | pause | step | seek | speed')
        act = body["action"]
        try:
            if act == "play":
                sp = body.get("speed")
                session.play(_number(sp, "speed") if sp is not None else None)
            elif act == "pause":
                session.pause()
            elif act == "speed":
                with session.lock:
                    session.set_speed(_number(body.get("speed"), "speed"))
            elif act == "step":
                ev_n = body.get("events", 0)
                if not isinstance(ev_n, int) or isinstance(ev_n, bool):
                    raise SessionError(f"step events must be an integer, got {ev_n!r}")
                sec = body.get("seconds", 0)
                await asyncio.to_thread(session.step, ev_n, _number(sec, "seconds") if sec else 0.0)
            elif act == "seek":
                if "to" not in body:
                    raise SessionError('seek needs "to": HH:MM:SS (ET), ns since the epoch, or N%')
                await asyncio.to_thread(session.seek, body["to"])
            else:
                return _err(400, f"unknown action {act!r}: use play, pause, step, seek or speed")
        except SessionError as e:
            return _err(400, str(e))
        return JSONResponse(session.clock())

    def _sym(req: Request) -> int:
        return session.symbol_id(req.path_params["symbol"])

    async def api_symbol(req: Request) -> Response:
        try:
            s = _sym(req)
        except SessionError as e:
            return _err(404, str(e))
        return JSONResponse(session.symbol_snapshot(s))

    async def api_book(req: Request) -> Response:
        try:
            s = _sym(req)
        except SessionError as e:
            return _err(404, str(e))
        with session.lock:
            return JSONResponse(
                {"symbol": req.path_params["symbol"], "clock": session.clock(), **session.ladder(s)}
            )

    async def api_scanner(req: Request) -> Response:
        rows = session.scanner_rows()
        q = req.query_params.get("filter", "")
        if q:
            rows = [r for r in rows if q.upper() in r["symbol"].upper()]
        sort = req.query_params.get("sort", "composite")
        if rows and sort not in rows[0]:
            return _err(400, f"cannot sort by {sort!r}; columns: {', '.join(sorted(rows[0]))}")
        rows.sort(
            key=lambda r: (r[sort] is None, -(r[sort] or 0) if isinstance(r[sort], (int, float)) else 0)
        )
        return JSONResponse({"rows": rows, "clock": session.clock()})

    async def api_signals(req: Request) -> Response:
        sym = req.query_params.get("symbol")
        try:
            s = session.symbol_id(sym) if sym else None
        except SessionError as e:
            return _err(404, str(e))
        return JSONResponse({"signals": session.signal_log(s)})

    async def api_summary(_: Request) -> Response:
        return JSONResponse(session.summary())

    async def api_report(_: Request) -> Response:
        try:
            paths = await asyncio.to_thread(session.write_report)
        except SessionError as e:
            return _err(409, str(e))
        html = paths.get("html")
        if not html or not Path(html).exists():
            return _err(500, "the HTML report could not be written (plotly missing?)")
        return FileResponse(html)

    async def ws_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        c = Client(ws)
        hub.clients.add(c)
        sender = asyncio.create_task(_sender(c))
        try:
            await ws.send_text(json.dumps({"type": "hello", "meta": session.meta()}))
            c.put(
                json.dumps(
                    {
                        "type": "scanner",
                        "rows": session.scanner_rows(),
                        "full": True,
                        "clock": session.clock(),
                    }
                ),
                droppable=False,
            )
            while True:
                raw = await ws.receive_text()
                _client_message(c, raw)
        except WebSocketDisconnect:
            pass
        finally:
            hub.clients.discard(c)
            if c.symbol is not None:
                session.unwatch(c.symbol)
            sender.cancel()

    def _client_message(c: Client, raw: str) -> None:
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError
        except ValueError:
            c.put(json.dumps({"type": "error", "message": "messages must be JSON objects"}), droppable=False)
            return
        op = msg.get("op")
        if op == "watch":
            try:
                s = session.symbol_id(msg.get("symbol"))
            except SessionError as e:
                c.put(json.dumps({"type": "error", "message": str(e)}), droppable=False)
                return
            if c.symbol is not None:
                session.unwatch(c.symbol)
            session.watch(s)
            c.symbol, c.need_snapshot = s, True
        elif op == "unwatch":
            if c.symbol is not None:
                session.unwatch(c.symbol)
            c.symbol = None
        else:
            c.put(
                json.dumps({"type": "error", "message": f"unknown op {op!r}: use watch or unwatch"}),
                droppable=False,
            )

    async def _sender(c: Client) -> None:
        try:
            while True:
                msg = await c.queue.get()
                await c.ws.send_text(msg)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    async def not_found(req: Request, exc: Exception) -> Response:
        return _err(404, f"no such page: {req.url.path}")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):  # noqa: ANN202
        await hub.start()
        yield
        await hub.stop()

    routes = [
        Route("/", index),
        Route("/api/session", api_session),
        Route("/api/control", api_control, methods=["POST"]),
        Route("/api/scanner", api_scanner),
        Route("/api/symbol/{symbol}", api_symbol),
        Route("/api/book/{symbol}", api_book),
        Route("/api/signals", api_signals),
        Route("/api/summary", api_summary),
        Route("/api/report", api_report),
        WebSocketRoute("/ws", ws_endpoint),
    ]
    if (STATIC / "assets").is_dir():
        routes.append(Mount("/assets", app=StaticFiles(directory=STATIC / "assets"), name="assets"))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})
    app.state.hub = hub
    app.state.session = session
    return app


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise SessionError(f"{what} must be a number, got {v!r}")
    try:
        x = float(v)
    except ValueError:
        raise SessionError(f"{what} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise SessionError(f"{what} must be a finite number, got {v!r}")
    return x
