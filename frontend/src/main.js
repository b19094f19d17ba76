// QuantEdge dashboard front end: applies the server's incremental WebSocket messages to local
// buffers and redraws at most once per animation frame (canvas: uPlot charts, heat-map).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";

const $ = (id) => document.getElementById(id);
const MAX_POINTS = 20000; // price history kept in the browser
const MAX_TAPE = 80;
const MAX_HEAT = 600;
const SIG_COLORS = {
  absorption: "#1f77b4", creep: "#9467bd", dark_pool: "#444", sinkhole: "#17becf",
  contraction: "#bcbd22", composite: "#ff7f0e", exit: "#d62728",
};

// ------------------------------------------------------------------------------------ state
const st = {
  meta: null, clock: null, view: "scanner", symbol: null,
  scanner: new Map(), sortKey: "composite", sortDir: -1, filter: "",
  hist: { t: [], bid: [], ask: [], last: [] },
  tape: [], tapeNew: [], tapeReset: true, heat: [], heatTotal: 0, ladder: { bid: [], ask: [] }, signals: [], orders: [], fills: [], position: null,
  dirty: { chart: false, ladder: false, heat: false, tape: false, side: false, pos: false, scanner: false },
  stats: { updates: 0, frames: 0, msgs: 0, bytes: 0, window: [], ups: 0, fps: 0, firstPaint: null },
};
window.__qe = st; // read by the browser tests and the benchmark

// ------------------------------------------------------------------------------------ messages
function showMessage(text, kind = "error") {
  const el = $("msg");
  el.textContent = text;
  el.className = "msg " + kind;
  clearTimeout(showMessage.timer);
  if (kind !== "error") showMessage.timer = setTimeout(() => el.classList.add("hidden"), 4000);
}
function clearMessage() { $("msg").className = "msg hidden"; }

async function api(path, body) {
  const opt = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  let res;
  try { res = await fetch(path, opt); } catch (e) {
    showMessage(`server unreachable: ${e.message}`);
    throw e;
  }
  let data = null;
  try { data = await res.json(); } catch (_) { /* non-JSON body */ }
  if (!res.ok) {
    const m = (data && data.error) || `${res.status} ${res.statusText}`;
    showMessage(m);
    const err = new Error(m); err.status = res.status; throw err;
  }
  return data;
}

// ------------------------------------------------------------------------------------ websocket
let ws = null;
function connect() {
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => { $("status").textContent = "connected"; if (st.symbol) watch(st.symbol); };
  ws.onclose = () => { $("status").textContent = "disconnected: retrying"; setTimeout(connect, 1000); };
  ws.onmessage = (e) => {
    st.stats.msgs++; st.stats.bytes += e.data.length;
    const m = JSON.parse(e.data);
    if (m.clock) setClock(m.clock);
    switch (m.type) {
      case "hello": st.meta = m.meta; setClock(m.meta); break;
      case "scanner": applyScanner(m); break;
      case "snapshot": applySnapshot(m); break;
      case "delta": applyDelta(m); break;
      case "error": showMessage(m.message); break;
      default: break;
    }
  };
}
function watch(sym) {
  if (ws && ws.readyState === 1) ws.send(JSON.stringify({ op: "watch", symbol: sym }));
}

function setClock(c) {
  st.clock = c;
  $("clock").textContent = `${c.t_et} ET`;
  $("play").textContent = c.paused || c.finished ? "▶" : "⏸";
  $("status").textContent = c.finished ? "end of day" : c.paused ? "paused" : `playing ${c.speed}x`;
  if (!sliderDragging) $("seek-slider").value = Math.round((c.progress || 0) * 1000);
}

// ------------------------------------------------------------------------------------ scanner
const COLS = [
  ["symbol", "symbol"], ["composite", "composite"], ["absorption", "absorb"], ["creep", "creep"],
  ["dark_pool", "dark pool"], ["sinkhole", "sinkhole"], ["contraction", "contract"],
  ["last", "last"], ["spread", "spread"], ["spread_bps", "spread bps"], ["volume", "volume"],
  ["offex_share", "off-ex %"], ["ofi_30s", "OFI 30s"], ["last_signal", "last signal"],
];
function applyScanner(m) {
  if (m.full) st.scanner.clear();
  for (const r of m.rows) st.scanner.set(r.symbol, r);
  st.dirty.scanner = true;
  st.stats.updates += st.view === "scanner" ? 1 : 0;
}
function cellValue(r, k) {
  if (k in r.scores) return r.scores[k];
  if (k === "last_signal") return r.last_signal ? r.last_signal.t : null;
  return r[k];
}
function fmt(v, d = 2) { return v === null || v === undefined ? "" : typeof v === "number" ? v.toFixed(d) : v; }
function renderScanner() {
  const head = $("scanner-head");
  if (!head.children.length) {
    for (const [k, label] of COLS) {
      const th = document.createElement("th");
      th.textContent = label; th.dataset.key = k;
      th.onclick = () => { st.sortDir = st.sortKey === k ? -st.sortDir : -1; st.sortKey = k; st.dirty.scanner = true; };
      head.appendChild(th);
    }
  }
  for (const th of head.children) th.classList.toggle("sorted", th.dataset.key === st.sortKey);
  const f = st.filter.toUpperCase();
  let rows = [...st.scanner.values()].filter((r) => !f || r.symbol.toUpperCase().includes(f));
  const k = st.sortKey, dir = st.sortDir;
  rows.sort((a, b) => {
    const x = cellValue(a, k), y = cellValue(b, k);
    if (x === y) return a.symbol < b.symbol ? -1 : 1;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  $("scanner-count").textContent = `${rows.length} symbols`;
  const body = $("scanner-body");
  const html = rows.slice(0, 500).map((r) => {
    const s = r.scores;
    const ls = r.last_signal ? `${r.last_signal.name} ${r.last_signal.score.toFixed(2)} @ ${r.last_signal.t_et}` : "";
    return `<tr data-symbol="${r.symbol}"><td class="sym">${r.symbol}</td><td>${fmt(r.composite)}</td>` +
      `<td>${fmt(s.absorption)}</td><td>${fmt(s.creep)}</td><td>${fmt(s.dark_pool)}</td>` +
      `<td>${fmt(s.sinkhole)}</td><td>${fmt(s.contraction)}</td><td>${fmt(r.last, 4)}</td>` +
      `<td>${fmt(r.spread, 4)}</td><td>${fmt(r.spread_bps, 1)}</td><td>${fmt(r.volume, 0)}</td>` +
      `<td>${r.offex_share === null ? "" : (100 * r.offex_share).toFixed(1)}</td><td>${fmt(r.ofi_30s, 0)}</td>` +
      `<td>${ls}</td></tr>`;
  }).join("");
  body.innerHTML = html;
}

// ------------------------------------------------------------------------------------ symbol view
function resetSymbolState() {
  st.hist = { t: [], bid: [], ask: [], last: [] };
  st.tape = []; st.tapeNew = []; st.tapeReset = true; st.heat = []; st.signals = []; st.orders = []; st.fills = [];
  st.ladder = { bid: [], ask: [] }; st.position = null;
}
function pushPoint(t, b, a, l) {
  const h = st.hist;
  h.t.push(t / 1e9); h.bid.push(b); h.ask.push(a); h.last.push(l);
  if (h.t.length > MAX_POINTS) { const k = h.t.length - MAX_POINTS; for (const key of ["t", "bid", "ask", "last"]) h[key].splice(0, k); }
}
function applySnapshot(m) {
  if (m.symbol !== st.symbol) return;
  resetSymbolState();
  const h = m.history;
  for (let i = 0; i < h.t.length; i++) pushPoint(h.t[i], h.bid[i], h.ask[i], h.last[i]);
  st.tape = m.tape.slice(-MAX_TAPE).reverse();
  st.tapeReset = true;
  st.heat = m.heat.slice(-MAX_HEAT);
  st.heatTotal = st.heat.length; heatView.drawn = 0;
  st.ladder = m.ladder; st.signals = m.signals; st.orders = m.orders; st.fills = m.fills; st.position = m.position;
  $("symbol-title").textContent = m.symbol;
  clearMessage();
  markAll();
}
function applyDelta(m) {
  if (m.symbol !== st.symbol) return;
  st.stats.updates++;
  for (const p of m.points) pushPoint(p[0], p[1], p[2], p[3]);
  if (m.points.length) st.dirty.chart = true;
  if (m.tape.length) {
    for (const r of m.tape) { st.tape.unshift(r); st.tapeNew.push(r); }
    if (st.tape.length > MAX_TAPE) st.tape.length = MAX_TAPE;
    st.dirty.tape = true;
  }
  st.ladder = m.ladder; st.dirty.ladder = true;
  st.heat.push([m.clock.t, m.ladder.bid.map((x) => [x[0], x[1]]), m.ladder.ask.map((x) => [x[0], x[1]])]);
  st.heatTotal++;
  if (st.heat.length > MAX_HEAT) st.heat.splice(0, st.heat.length - MAX_HEAT);
  st.dirty.heat = true;
  if (m.signals && m.signals.length) { st.signals.push(...m.signals); st.dirty.side = true; st.dirty.chart = true; }
  if (m.orders) { st.orders = m.orders; st.dirty.side = true; st.dirty.ladder = true; }
  if (m.fills && m.fills.length) { st.fills.push(...m.fills); st.dirty.chart = true; }
  st.position = m.position; st.dirty.pos = true;
}
function markAll() { for (const k of Object.keys(st.dirty)) st.dirty[k] = true; }

let priceChart = null;
function tzDate(ts) { return uPlot.tzDate(new Date(ts * 1e3), "America/New_York"); }
function markerPlugin() {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        const top = u.bbox.top, h = u.bbox.height;
        for (const s of st.signals) {
          const x = u.valToPos(s.t / 1e9, "x", true);
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = SIG_COLORS[s.name] || "#000";
          ctx.globalAlpha = 0.7; ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
          ctx.fillStyle = ctx.strokeStyle; ctx.globalAlpha = 1;
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x - 5, top - 8); ctx.lineTo(x + 5, top - 8); ctx.fill();
        }
        for (const f of st.fills) {
          const x = u.valToPos(f.t / 1e9, "x", true), y = u.valToPos(f.price, "y", true);
          ctx.fillStyle = f.side === "buy" ? "#0a0" : "#c00";
          ctx.beginPath();
          const d = 6 * devicePixelRatio;
          if (f.side === "buy") { ctx.moveTo(x, y - d); ctx.lineTo(x - d, y + d); ctx.lineTo(x + d, y + d); } else { ctx.moveTo(x, y + d); ctx.lineTo(x - d, y - d); ctx.lineTo(x + d, y - d); }
          ctx.fill();
        }
        ctx.restore();
      }],
    },
  };
}
function makePriceChart() {
  const el = $("price-chart");
  const opts = {
    width: el.clientWidth || 800, height: 300, tzDate, plugins: [markerPlugin()],
    scales: { x: { time: true } },
    series: [{}, { label: "bid", stroke: "#2a7", width: 1 }, { label: "ask", stroke: "#c44", width: 1 },
      { label: "last", stroke: "#222", width: 1.5, spanGaps: true }],
    bands: [{ series: [2, 1], fill: "rgba(120,120,220,0.15)" }],
    axes: [{}, { size: 70 }],
  };
  priceChart = new uPlot(opts, [[], [], [], []], el);
}
function renderChart() {
  if (!priceChart) makePriceChart();
  const h = st.hist;
  priceChart.setData([h.t, h.bid, h.ask, h.last]);
}
function renderLadder() {
  const mine = {};
  for (const o of st.orders) {
    if (o.status !== "active" || !o.limit) continue;
    const key = o.limit.toFixed(4);
    (mine[key] = mine[key] || []).push(o);
  }
  const tag = (px) => (mine[px.toFixed(4)] || []).map((o) => `#${o.id} ${o.side} ${o.qty - o.filled}` + (o.queue_ahead !== null ? ` (ahead ${o.queue_ahead})` : "")).join("<br>");
  const rows = [];
  const asks = st.ladder.ask.slice().reverse();
  for (const a of asks) rows.push(`<tr class="ask"><td></td><td></td><td class="px">${a[0].toFixed(2)}</td><td>${a[1]}${a[2] ? "" : "?"}</td><td class="mine">${tag(a[0])}</td></tr>`);
  for (const b of st.ladder.bid) rows.push(`<tr class="bid"><td class="mine">${tag(b[0])}</td><td>${b[1]}${b[2] ? "" : "?"}</td><td class="px">${b[0].toFixed(2)}</td><td></td><td></td></tr>`);
  $("ladder-body").innerHTML = rows.join("");
  const bb = st.ladder.bid[0], ba = st.ladder.ask[0];
  $("ladder").dataset.bestBid = bb ? bb[0] : "";
  $("ladder").dataset.bestAsk = ba ? ba[0] : "";
}
// The heat-map scrolls: each update shifts the canvas one column left and paints only the new
// column; the whole canvas is repainted only when the price range must grow (or on a new symbol).
const heatView = { lo: 0, hi: 0, drawn: 0, cols: 0 };
function heatRange() {
  let lo = Infinity, hi = -Infinity;
  for (const c of st.heat) for (const side of [c[1], c[2]]) for (const [p] of side) { if (p < lo) lo = p; if (p > hi) hi = p; }
  const pad = Math.max((hi - lo) * 0.15, 0.05);
  return [lo - pad, hi + pad];
}
function heatColumn(ctx, c, x, cw, w, h) {
  const span = heatView.hi - heatView.lo, rowH = Math.max(2, h / 28);
  for (const [k, side] of [[0, c[1]], [1, c[2]]]) {
    for (const [p, s] of side) {
      const y = h - ((p - heatView.lo) / span) * h - rowH / 2;
      const a = Math.min(1, Math.log1p(s) / 8);
      ctx.fillStyle = k === 0 ? `rgba(40,200,120,${a.toFixed(2)})` : `rgba(230,70,70,${a.toFixed(2)})`;
      ctx.fillRect(x, y, cw, rowH);
    }
  }
}
function renderHeat() {
  const cv = $("heat");
  const w = cv.clientWidth || 600, h = cv.clientHeight || 220;
  const ctx = cv.getContext("2d");
  const cw = Math.max(1, Math.floor(w / MAX_HEAT));
  const cols = st.heat;
  let full = cv.width !== w || cv.height !== h || heatView.drawn === 0 || heatView.symbol !== st.symbol;
  const last = cols[cols.length - 1];
  if (!full && last) {
    for (const side of [last[1], last[2]]) for (const [p] of side) if (p < heatView.lo || p > heatView.hi) full = true;
  }
  if (full) {
    if (cv.width !== w) cv.width = w;
    if (cv.height !== h) cv.height = h;
    ctx.fillStyle = "#0b1020"; ctx.fillRect(0, 0, w, h);
    if (!cols.length) return;
    [heatView.lo, heatView.hi] = heatRange();
    cols.forEach((c, i) => heatColumn(ctx, c, w - (cols.length - i) * cw, cw, w, h));
    heatView.drawn = cols.length; heatView.symbol = st.symbol; heatView.total = st.heatTotal;
    return;
  }
  const fresh = Math.min(st.heatTotal - heatView.total, cols.length);
  if (fresh <= 0) return;
  ctx.drawImage(cv, -fresh * cw, 0);
  ctx.fillStyle = "#0b1020"; ctx.fillRect(w - fresh * cw, 0, fresh * cw, h);
  for (let i = cols.length - fresh; i < cols.length; i++) heatColumn(ctx, cols[i], w - (cols.length - i) * cw, cw, w, h);
  heatView.total = st.heatTotal;
}
const etFmt = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour12: false,
  hour: "2-digit", minute: "2-digit", second: "2-digit" });
function hhmmss(ns) {
  const ms = Math.floor(ns / 1e6);
  return etFmt.format(new Date(ms)) + "." + String(ms % 1000).padStart(3, "0");
}
function tapeRow(r) {
  const cls = r[3] > 0 ? "buy" : r[3] < 0 ? "sell" : "";
  return `<tr class="${cls}${r[4] ? " offex" : ""}" title="${r[5].join(", ")}"><td>${hhmmss(r[0])}</td>` +
    `<td>${r[1].toFixed(4)}</td><td>${r[2]}</td><td>${r[4] ? '<span class="ox">OX</span>' : ""}</td></tr>`;
}
// The tape is updated in place: new prints are inserted at the top, the oldest rows dropped.
function renderTape() {
  const body = $("tape");
  if (st.tapeReset) {
    body.innerHTML = st.tape.map(tapeRow).join("");
    st.tapeReset = false; st.tapeNew = [];
    return;
  }
  const fresh = st.tapeNew.slice(-MAX_TAPE);
  st.tapeNew = [];
  if (!fresh.length) return;
  body.insertAdjacentHTML("afterbegin", fresh.reverse().map(tapeRow).join(""));
  while (body.rows.length > MAX_TAPE) body.deleteRow(-1);
}
function renderSide() {
  $("signals").innerHTML = st.signals.slice().reverse().map((s) =>
    `<tr class="sig" data-t="${s.t}"><td>${s.t_et}</td><td style="color:${SIG_COLORS[s.name] || "#000"}">${s.name}${s.triggered ? " ▲" : ""}</td><td>${s.score.toFixed(3)}</td><td class="explain">${s.explain.filter((x) => x !== null).map((x) => x.toPrecision(3)).join(", ")}</td></tr>`).join("");
  $("orders").innerHTML = st.orders.slice().reverse().map((o) =>
    `<tr class="st-${o.status}"><td>${o.id}</td><td>${o.side}</td><td>${o.type}</td><td>${o.qty}</td><td>${o.filled}</td><td>${o.limit ? o.limit.toFixed(4) : ""}</td><td>${o.status}</td><td>${o.queue_ahead ?? ""}</td><td>${o.tag}</td></tr>`).join("");
}
function renderPosition() {
  const p = st.position;
  if (p) {
    $("position").innerHTML = `position <b id="pos-qty">${p.qty}</b> @ ${p.avg_px.toFixed(4)} · unrealized ${p.unrealized.toFixed(2)} · ` +
      `equity <b id="equity">${p.equity.toFixed(2)}</b> · P&amp;L <b id="pnl" data-value="${p.pnl}">${p.pnl.toFixed(2)}</b> · fees ${p.fees.toFixed(2)} · fills ${p.n_fills}`;
  }
}

// ------------------------------------------------------------------------------------ summary
let eqChart = null, ddChart = null;
async function loadSummary() {
  const s = await api("/api/summary");
  const t = s.t.map((x) => x / 1e9);
  const mk = (el, label, color, fmtv) => new uPlot({ width: $(el).clientWidth || 600, height: 240, tzDate,
    series: [{}, { label, stroke: color, width: 1.5, value: (u, v) => (v === null ? "--" : fmtv(v)) }],
    axes: [{}, { size: 80, values: (u, vals) => vals.map(fmtv) }] }, [[], []], $(el));
  if (!eqChart) eqChart = mk("equity-chart", "equity", "#2266cc", (v) => v.toFixed(0));
  if (!ddChart) ddChart = mk("dd-chart", "drawdown", "#cc3333", (v) => (100 * v).toFixed(3) + "%");
  eqChart.setData([t, s.equity]);
  ddChart.setData([t, s.drawdown]);
  const rows = Object.entries(s.metrics).filter(([, v]) => typeof v !== "object" || v === null);
  $("metrics").querySelector("tbody").innerHTML =
    `<tr><th>P&amp;L</th><td id="summary-pnl" data-value="${s.account.pnl}">${s.account.pnl.toFixed(2)}</td></tr>` +
    `<tr><th>equity</th><td>${s.account.equity.toFixed(2)}</td></tr>` +
    rows.map(([k, v]) => `<tr><th>${k}</th><td>${typeof v === "number" ? (Math.abs(v) > 1e6 ? v.toExponential(3) : +v.toFixed(6)) : v}</td></tr>`).join("");
  $("summary-note").textContent = s.final ? "final: the day has been played to the end" : "running: metrics so far (the report needs the end of the day)";
}

// ------------------------------------------------------------------------------------ views, controls
function setView(v) {
  st.view = v;
  for (const name of ["scanner", "symbol", "summary"]) {
    $(`view-${name}`).classList.toggle("hidden", name !== v);
    $(`tab-${name}`).classList.toggle("active", name === v);
  }
  if (v === "summary") loadSummary().catch(() => {});
  if (v === "symbol") markAll();
}
function openSymbol(sym) {
  sym = (sym || "").trim();
  if (!sym) { showMessage("type a symbol first"); return; }
  st.symbol = sym;
  resetSymbolState();
  $("symbol-title").textContent = `${sym} (loading)`;
  $("symbol-input").value = sym;
  history.replaceState(null, "", `#symbol=${encodeURIComponent(sym)}`);
  setView("symbol");
  watch(sym);
}
async function control(body) {
  try { const c = await api("/api/control", body); setClock(c); clearMessage(); return c; } catch (_) { return null; }
}
let sliderDragging = false;
function wire() {
  for (const b of document.querySelectorAll(".tab")) b.onclick = () => setView(b.dataset.view);
  $("play").onclick = () => control(st.clock && !st.clock.paused && !st.clock.finished ? { action: "pause" } : { action: "play", speed: +$("speed").value });
  $("speed").onchange = () => control({ action: "speed", speed: +$("speed").value });
  $("step").onclick = () => control({ action: "step" });
  $("seek-go").onclick = () => control({ action: "seek", to: $("seek-input").value });
  $("seek-input").onkeydown = (e) => { if (e.key === "Enter") $("seek-go").click(); };
  const sl = $("seek-slider");
  sl.oninput = () => { sliderDragging = true; };
  sl.onchange = () => { sliderDragging = false; control({ action: "seek", to: `${sl.value / 10}%` }); };
  $("filter").oninput = (e) => { st.filter = e.target.value; st.dirty.scanner = true; };
  $("scanner-body").onclick = (e) => { const tr = e.target.closest("tr"); if (tr) openSymbol(tr.dataset.symbol); };
  $("symbol-go").onclick = () => openSymbol($("symbol-input").value);
  $("symbol-input").onkeydown = (e) => { if (e.key === "Enter") openSymbol($("symbol-input").value); };
  document.addEventListener("keydown", (e) => { if (e.key === " " && e.target === document.body) { e.preventDefault(); $("play").click(); } });
  window.addEventListener("resize", () => { if (priceChart) priceChart.setSize({ width: $("price-chart").clientWidth, height: 300 }); });
}

// ------------------------------------------------------------------------------------ render loop
let lastSec = performance.now();
const renderMs = {}; // cumulative ms per renderer (read by the benchmark)
st.stats.renderMs = renderMs;
function timed(name, fn) {
  const t0 = performance.now();
  fn();
  renderMs[name] = (renderMs[name] || 0) + performance.now() - t0;
}
function frame() {
  const d = st.dirty;
  if (st.view === "scanner" && d.scanner) { timed("scanner", renderScanner); d.scanner = false; }
  if (st.view === "symbol" && st.symbol) {
    if (d.chart) { timed("chart", renderChart); d.chart = false; }
    if (d.ladder) { timed("ladder", renderLadder); d.ladder = false; }
    if (d.heat) { timed("heat", renderHeat); d.heat = false; }
    if (d.tape) { timed("tape", renderTape); d.tape = false; }
    if (d.side) { timed("side", renderSide); d.side = false; }
    if (d.pos) { timed("position", renderPosition); d.pos = false; }
  }
  if (st.stats.firstPaint === null && st.scanner.size) st.stats.firstPaint = performance.now();
  st.stats.frames++;
  const now = performance.now();
  if (now - lastSec >= 1000) {
    const w = st.stats.window;
    w.push({ t: now, updates: st.stats.updates, frames: st.stats.frames });
    if (w.length > 6) w.shift();
    if (w.length >= 2) {
      const a = w[0], b = w[w.length - 1], dt = (b.t - a.t) / 1000;
      st.stats.ups = (b.updates - a.updates) / dt;
      st.stats.fps = (b.frames - a.frames) / dt;
    }
    lastSec = now;
    $("stats").textContent = `${st.stats.ups.toFixed(1)} updates/s · ${st.stats.fps.toFixed(0)} fps · ${(st.stats.bytes / 1024).toFixed(0)} KiB received`;
    if (st.view === "summary") loadSummary().catch(() => {});
  }
  requestAnimationFrame(frame);
}

wire();
connect();
const m = location.hash.match(/symbol=([^&]+)/);
if (m) openSymbol(decodeURIComponent(m[1]));
requestAnimationFrame(frame);
