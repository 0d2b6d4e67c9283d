// The dashboard page served at /dashboard (see admin.hpp). One document:
// its style and script are inline, it loads nothing else, and it polls
// `stats` (relative, so it works behind a path prefix) once a second.
//
// The script derives rates from two samples: CPU use from busy_cpu_ns,
// events/s from events, grace periods/s and their mean latency from
// grace_periods and grace_period_ns_total. Rows and cells carry
// data-loop / data-field attributes (what the browser test reads).
#include <quiesce/framework/admin.hpp>

namespace quiesce {

namespace {

constexpr std::string_view kPage = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quiesce dashboard</title>
<style>
  :root { --bg: #101418; --panel: #182028; --text: #d8dee6; --dim: #8a96a3;
          --cpu: #5fd38d; --ev: #5fa8ff; --warn: #ffb454; --bad: #ff6b6b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 1em; padding: 12px 20px; background: var(--panel); }
  header h1 { font-size: 18px; margin: 0; }
  #status { color: var(--dim); margin-left: auto; }
  #status.bad { color: var(--bad); }
  main { padding: 12px 20px; }
  h2 { font-size: 15px; margin: 18px 0 8px; color: var(--dim); font-weight: 600; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
  .card { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
  .card .label { color: var(--dim); font-size: 12px; }
  .card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; width: 100%; background: var(--panel); border-radius: 6px; }
  th, td { padding: 6px 10px; text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th { color: var(--dim); font-weight: 600; border-bottom: 1px solid #2a3440; }
  td.text, th.text { text-align: left; white-space: normal; }
  tr + tr td { border-top: 1px solid #222c36; }
  canvas { display: block; }
  .legend span { margin-right: 1em; }
  .legend .cpu { color: var(--cpu); } .legend .ev { color: var(--ev); }
  .row { display: flex; gap: 20px; flex-wrap: wrap; }
  .panel { background: var(--panel); border-radius: 6px; padding: 10px 12px; }
  #stalls { list-style: none; padding: 0; margin: 0; }
  #stalls li { background: var(--panel); border-left: 3px solid var(--warn); padding: 6px 10px; margin-bottom: 6px;
               font-family: ui-monospace, monospace; font-size: 12px; }
  .none { color: var(--dim); }
  .long { color: var(--warn); }
</style>
</head>
<body data-samples="0">
<header>
  <h1>quiesce <span id="name"></span></h1>
  <span id="version" class="none"></span>
  <span id="status">connecting…</span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">uptime</div><div class="value" id="uptime">–</div></div>
    <div class="card"><div class="label">loops</div><div class="value" id="loop-count">–</div></div>
    <div class="card"><div class="label">events/s (all loops)</div><div class="value" id="events-total">–</div></div>
    <div class="card"><div class="label">groups alive</div><div class="value" id="groups">–</div></div>
    <div class="card"><div class="label">connections open</div><div class="value" id="connections">–</div></div>
    <div class="card"><div class="label">grace periods/s</div><div class="value" id="gp-rate">–</div></div>
    <div class="card"><div class="label">grace-period latency (mean, max)</div><div class="value" id="gp-latency">–</div></div>
    <div class="card"><div class="label">RCU callbacks pending</div><div class="value" id="callbacks">–</div></div>
    <div class="card"><div class="label">loop stalls reported</div><div class="value" id="stall-count">–</div></div>
  </div>

  <h2>Loops <span class="legend"><span class="cpu">■ CPU %</span><span class="ev">■ events/s</span> (last 60 s)</span></h2>
  <table id="loops">
    <thead><tr><th>loop</th><th>CPU</th><th>events/s</th><th>queued</th><th>stolen/s</th><th>given/s</th>
      <th class="text">running now</th><th class="text">history</th></tr></thead>
    <tbody></tbody>
  </table>

  <div class="row">
    <div>
      <h2>Grace periods/s (last 60 s)</h2>
      <div class="panel"><canvas id="gp-chart" width="420" height="90"></canvas></div>
    </div>
    <div>
      <h2>Grace-period latency (all time)</h2>
      <div class="panel"><canvas id="gp-histogram" width="420" height="90"></canvas></div>
    </div>
  </div>

  <h2>Recent stall reports</h2>
  <ul id="stalls"><li class="none" style="border:0">none</li></ul>
</main>
<script>
"use strict";
const HISTORY = 60;
let previous = null;
let samples = 0;
const loopHistory = [];  // per loop: {cpu: [], events: []}
const gpHistory = [];

function $(id) { return document.getElementById(id); }
function fmt(n, digits = 0) {
  if (!isFinite(n)) return "–";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return n.toFixed(digits);
}
function fmtDuration(ns) {
  if (!isFinite(ns)) return "–";
  if (ns >= 1e9) return (ns / 1e9).toFixed(2) + " s";
  if (ns >= 1e6) return (ns / 1e6).toFixed(2) + " ms";
  if (ns >= 1e3) return (ns / 1e3).toFixed(1) + " µs";
  return ns.toFixed(0) + " ns";
}
function fmtUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  const sec = Math.floor(s % 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
}
function push(list, value) { list.push(value); if (list.length > HISTORY) list.shift(); }

function drawLines(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#2a3440"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
  for (const line of lines) {
    const max = Math.max(line.max || 0, ...line.values, 1e-9);
    ctx.strokeStyle = line.color; ctx.lineWidth = 1.5; ctx.beginPath();
    line.values.forEach((v, i) => {
      const x = w - (line.values.length - 1 - i) * (w / (HISTORY - 1));
      const y = h - 2 - (v / max) * (h - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function drawHistogram(canvas, buckets) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height - 14;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(1, ...buckets.map(b => b.count));
  const bw = w / buckets.length;
  ctx.font = "10px system-ui"; ctx.fillStyle = "#8a96a3";
  buckets.forEach((b, i) => {
    const bh = b.count ? Math.max(1, (b.count / max) * (h - 2)) : 0;
    ctx.fillStyle = "#5fa8ff";
    ctx.fillRect(i * bw + 1, h - bh, bw - 2, bh);
    if (i % 3 === 0) {
      ctx.fillStyle = "#8a96a3";
      ctx.fillText(b.below_ns === null ? "more" : "<" + fmtDuration(b.below_ns).replace(" ", ""), i * bw, h + 12);
    }
  });
}

function loopRow(i) {
  const body = document.querySelector("#loops tbody");
  let row = body.querySelector(`tr[data-loop="${i}"]`);
  if (row) return row;
  row = document.createElement("tr");
  row.className = "loop-row";
  row.dataset.loop = i;
  row.innerHTML = `<td>${i}</td><td data-field="cpu">–</td><td data-field="events_per_s">–</td>` +
    `<td data-field="queued">–</td><td data-field="stolen_per_s">–</td><td data-field="given_per_s">–</td>` +
    `<td class="text" data-field="running">–</td>` +
    `<td class="text"><canvas width="240" height="36" data-field="chart"></canvas></td>`;
  body.appendChild(row);
  loopHistory[i] = {cpu: [], events: []};
  return row;
}

function update(s) {
  $("name").textContent = s.name || "";
  $("version").textContent = s.version || "";
  $("uptime").textContent = fmtUptime(s.uptime_seconds);
  $("loop-count").textContent = s.loops.length;
  $("groups").textContent = fmt(s.groups);
  $("connections").textContent = fmt(s.connections.open);
  $("callbacks").textContent = fmt(s.rcu.callbacks_pending);
  $("stall-count").textContent = fmt(s.stalls.reported);
  const dt = previous ? s.uptime_seconds - previous.uptime_seconds : 0;
  let eventsTotal = 0;
  s.loops.forEach((loop, i) => {
    const row = loopRow(i);
    const before = previous && previous.loops[i];
    const cell = f => row.querySelector(`[data-field="${f}"]`);
    cell("queued").textContent = fmt(loop.queued ?? 0);
    const running = cell("running");
    if (loop.running) {
      running.textContent = `${loop.group || "group " + loop.group_id}` +
        (loop.running_ms > 0 ? ` for ${loop.running_ms.toFixed(0)} ms` : "");
      running.classList.toggle("long", loop.running_ms >= 10);
    } else {
      running.textContent = "idle or between groups";
      running.classList.remove("long");
    }
    if (before && dt > 0) {
      const cpu = Math.min(100, (loop.busy_cpu_ns - before.busy_cpu_ns) / (dt * 1e7));
      const events = (loop.events - before.events) / dt;
      eventsTotal += events;
      cell("cpu").textContent = cpu.toFixed(1) + " %";
      cell("events_per_s").textContent = fmt(events);
      cell("stolen_per_s").textContent = fmt((loop.stolen - before.stolen) / dt, 1);
      cell("given_per_s").textContent = fmt((loop.given - before.given) / dt, 1);
      push(loopHistory[i].cpu, cpu);
      push(loopHistory[i].events, events);
      drawLines(cell("chart"), [
        {values: loopHistory[i].cpu, color: "#5fd38d", max: 100},
        {values: loopHistory[i].events, color: "#5fa8ff"},
      ]);
    }
  });
  if (previous && dt > 0) {
    $("events-total").textContent = fmt(eventsTotal);
    const gps = s.rcu.grace_periods - previous.rcu.grace_periods;
    $("gp-rate").textContent = fmt(gps / dt, 1);
    const mean = gps > 0 ? (s.rcu.grace_period_ns_total - previous.rcu.grace_period_ns_total) / gps : NaN;
    $("gp-latency").textContent = (gps > 0 ? fmtDuration(mean) : "–") + ", " +
      fmtDuration(s.rcu.grace_period_ns_max);
    push(gpHistory, gps / dt);
    drawLines($("gp-chart"), [{values: gpHistory, color: "#5fa8ff"}]);
  }
  drawHistogram($("gp-histogram"), s.rcu.grace_period_histogram);
  const stalls = $("stalls");
  if (s.stalls.recent.length) {
    stalls.innerHTML = "";
    for (const report of s.stalls.recent.slice().reverse()) {
      const li = document.createElement("li");
      li.textContent = new Date(report.time * 1000).toLocaleTimeString() + "  " + report.text;
      stalls.appendChild(li);
    }
  }
  previous = s;
  samples += 1;
  document.body.dataset.samples = samples;
}

async function tick() {
  const status = $("status");
  try {
    const response = await fetch("stats", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    update(await response.json());
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.classList.remove("bad");
  } catch (e) {
    status.textContent = "no data: " + e.message;
    status.classList.add("bad");
  } finally {
    setTimeout(tick, 1000);
  }
}
tick();
</script>
</body>
</html>
)page";

}  // namespace

std::string_view dashboard_page() noexcept {
    return kPage;
}

}  // namespace quiesce
