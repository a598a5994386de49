"""The dashboard page: plain HTML, CSS and a small canvas plotter written for stressrig (no
third-party code). It polls /api/state and /api/points twice a second.

Layout: a card per rig (green running, red dead: failed, link lost, supervisor gone;
orange stopped by the board; grey completed) with a voltage sparkline; below, the panels
of the selected rig (click a card, or ?rig=NAME): voltage, current, stack pressure (or
force), strain, temperature, lost samples against device time.

Test hooks: every card has data-rig, data-phase and data-alive; every panel canvas data-n
(points drawn); <body data-polls> counts answered polls.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>__TITLE__</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 12px; color: #222; background: #fafafa; }
h1 { font-size: 18px; margin: 0 0 8px 0; }
#conn { font-size: 12px; color: #666; }
#cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 2px solid #2a2; background: #efe; border-radius: 6px; padding: 6px 8px;
        width: 210px; cursor: pointer; }
.card.selected { box-shadow: 0 0 0 3px #88f; }
.card.dead { border-color: #c00; background: #fcc; }
.card.stopped { border-color: #d80; background: #fe9; }
.card.done { border-color: #888; background: #eee; }
.card .name { font-weight: 600; }
.card .msg { font-size: 11px; color: #555; height: 28px; overflow: hidden; }
#panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
          gap: 10px; margin-top: 12px; }
.panel { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 4px; }
canvas.plot { width: 100%; height: 180px; display: block; }
</style></head>
<body data-polls="0">
<h1>__TITLE__ <span id="conn">connecting…</span></h1>
<div id="cards"></div>
<h2 id="sel" style="font-size:16px"></h2>
<div id="panels"></div>
<script>
"use strict";
const KEEP = 1200;
const PANELS = ["voltage_v", "current_a", "pressure_mpa", "strain_ue", "temp_c", "lost"];
const COLORS = ["#c22", "#222", "#26c", "#a3a", "#d70", "#777"];
let quantities = {}, rigs = {}, points = {}, since = 0, selected = null;
const params = new URLSearchParams(location.search);
selected = params.get("rig");

function cls(st) {
  if (!st.alive) return "dead";
  if (st.phase === "stopped" || st.phase === "aborted" || st.phase === "interrupted")
    return "stopped";
  if (st.phase === "completed") return "done";
  return "";
}
function fmt(v, d) { return (typeof v === "number" && isFinite(v)) ? v.toFixed(d) : "-"; }

function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// a tick label with as many decimals as the tick step needs (no 0.30000000000000004)
function tickText(t, step) {
  if (Math.abs(t) < step * 1e-6) t = 0;
  const big = Math.max(Math.abs(t), Math.abs(step));
  if (big >= 1e5 || (big < 1e-3 && big > 0)) return t.toExponential(2);
  return t.toFixed(Math.max(0, -Math.floor(Math.log10(step))));
}

// one panel: axes, ticks, a polyline of (x, y); NaN values break the line
function drawPlot(canvas, xs, ys, label, color) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400, h = canvas.clientHeight || 180;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const spark = !label;  // a card's sparkline: the line only
  const L = spark ? 2 : 64, R = spark ? 2 : 8, T = spark ? 2 : 18, B = spark ? 2 : 22;
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#222";
  g.fillText(label, L, 12);
  const good = [];
  for (let i = 0; i < xs.length; i++) if (isFinite(xs[i]) && isFinite(ys[i])) good.push(i);
  canvas.dataset.n = String(good.length);
  if (!spark) { g.strokeStyle = "#bbb"; g.strokeRect(L, T, w - L - R, h - T - B); }
  if (!good.length) {
    if (!spark) { g.fillStyle = "#999"; g.fillText("no data yet", L + 8, T + 20); }
    return;
  }
  let x0 = xs[good[0]], x1 = xs[good[good.length - 1]];
  let y0 = Infinity, y1 = -Infinity;
  for (const i of good) { y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]); }
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 - y0 < 1e-12) { const p = Math.abs(y0) * 0.05 || 1; y0 -= p; y1 += p; }
  const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
  const px = x => L + (x - x0) / (x1 - x0) * (w - L - R);
  const py = y => T + (1 - (y - y0) / (y1 - y0)) * (h - T - B);
  g.fillStyle = "#555"; g.strokeStyle = "#eee";
  if (!spark) {
    const yt = niceTicks(y0, y1, 4);
    for (const t of yt) {
      const y = py(t); g.beginPath(); g.moveTo(L, y); g.lineTo(w - R, y); g.stroke();
      g.fillText(tickText(t, yt.length > 1 ? yt[1] - yt[0] : 1), 4, y + 4);
    }
    const xt = niceTicks(x0, x1, 5);
    for (const t of xt) {
      const x = px(t); g.fillText(tickText(t, xt.length > 1 ? xt[1] - xt[0] : 1) + " s",
                                  x - 12, h - 6);
    }
  }
  g.strokeStyle = color; g.lineWidth = 1.4; g.beginPath();
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    if (!isFinite(xs[i]) || !isFinite(ys[i])) { pen = false; continue; }
    const x = px(xs[i]), y = py(ys[i]);
    if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
  }
  g.stroke();
}

function renderCards() {
  const box = document.getElementById("cards");
  const names = Object.keys(rigs).sort();
  if (!selected || !rigs[selected]) selected = names[0] || null;
  for (const name of names) {
    const st = rigs[name];
    let card = box.querySelector(`.card[data-rig="${CSS.escape(name)}"]`);
    if (!card) {
      card = document.createElement("div");
      card.className = "card"; card.dataset.rig = name;
      card.innerHTML = '<div class="name"></div><div class="info"></div>' +
        '<div class="msg"></div><canvas class="spark" style="width:100%;height:34px"></canvas>';
      card.onclick = () => { selected = name; renderCards(); renderPanels(); };
      box.appendChild(card);
    }
    card.className = ["card", cls(st), name === selected ? "selected" : ""].join(" ").trim();
    card.dataset.phase = st.phase || ""; card.dataset.alive = String(!!st.alive);
    const last = (points[name] || []).slice(-1)[0] || {};
    card.querySelector(".name").textContent =
      `${name}  ${st.alive ? "" : "● DEAD"}`;
    card.querySelector(".info").textContent =
      `${st.phase || "?"} · step ${st.step_index ?? "-"} · ${fmt(st.t_dev_s, 1)} s · ` +
      `${fmt(last.voltage_v, 3)} V · lost ${st.lost ?? 0}`;
    card.querySelector(".msg").textContent = st.message || "";
    const pts = points[name] || [];
    drawPlot(card.querySelector("canvas"), pts.map(p => p.t_dev_s),
             pts.map(p => p.voltage_v), "", st.alive ? "#2a2" : "#c00");
  }
}

function renderPanels() {
  const box = document.getElementById("panels");
  document.getElementById("sel").textContent = selected ? `rig ${selected}` : "no rig yet";
  const pts = points[selected] || [];
  const usesForce = pts.some(p => "force_n" in p) && !pts.some(p => "pressure_mpa" in p);
  PANELS.forEach((key0, k) => {
    const key = (key0 === "pressure_mpa" && usesForce) ? "force_n" : key0;
    let panel = document.getElementById("panel-" + key0);
    if (!panel) {
      panel = document.createElement("div");
      panel.className = "panel"; panel.id = "panel-" + key0;
      panel.innerHTML = '<canvas class="plot"></canvas>';
      box.appendChild(panel);
    }
    const q = quantities[key] || [key, ""];
    const label = q[1] ? `${q[0]} (${q[1]})` : q[0];
    const canvas = panel.querySelector("canvas");
    canvas.dataset.quantity = key;
    drawPlot(canvas, pts.map(p => p.t_dev_s), pts.map(p => (key in p) ? p[key] : NaN),
             label, COLORS[k]);
  });
}

async function poll() {
  try {
    const st = await (await fetch("/api/state")).json();
    quantities = st.quantities; rigs = st.rigs;
    const pr = await (await fetch("/api/points?since=" + since)).json();
    since = pr.seq;
    for (const [name, list] of Object.entries(pr.points)) {
      const arr = (points[name] = (points[name] || []).concat(list));
      if (arr.length > KEEP) arr.splice(0, arr.length - KEEP);
    }
    document.getElementById("conn").textContent = "live";
    document.body.dataset.polls = String(Number(document.body.dataset.polls) + 1);
    renderCards(); renderPanels();
  } catch (e) {
    document.getElementById("conn").textContent = "no answer from the server: " + e;
    for (const card of document.querySelectorAll(".card")) {
      card.classList.add("dead"); card.dataset.alive = "false";
    }
  }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""
