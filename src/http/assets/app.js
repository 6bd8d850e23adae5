// wgminer's dashboard: the last hour from /api/v1/history, then live from the server-sent
// events of /api/v1/stream (a `sample` every two seconds with every counter, each notable
// `event` as it happens). Text goes in with textContent only: pool URLs and failure reasons
// come from the network.
"use strict";

const HOUR = 3600;
const COLORS = ["#f7931a", "#3b82f6", "#10b981", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#ec4899"];
const $ = (id) => document.getElementById(id);

const state = { data: [[], []], devices: 0, plot: null, summary: null };
// For tests and the curious: the chart and its data.
window.wgminer = state;

function rate(mhs) {
  if (mhs == null) return "–";
  if (mhs >= 1e6) return (mhs / 1e6).toFixed(2) + " TH/s";
  if (mhs >= 1e3) return (mhs / 1e3).toFixed(2) + " GH/s";
  if (mhs >= 1) return mhs.toFixed(2) + " MH/s";
  return (mhs * 1e3).toFixed(1) + " kH/s";
}

function number(x) {
  if (x == null) return "–";
  if (x === 0) return "0";
  if (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3) return x.toExponential(3);
  return x.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function cells(row, values) {
  for (const [text, cls] of values) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
}

function fill(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows.map((values) => {
    const tr = document.createElement("tr");
    cells(tr, values);
    return tr;
  }));
}

function showSummary(s) {
  state.summary = s;
  $("mode").textContent = s.mode;
  $("version").textContent = "v" + s.version;
  $("uptime").textContent = duration(s.uptime_s);
  $("hashrate").textContent = rate(s.mhs_5s);
  $("accepted").textContent = s.shares.accepted;
  $("rejected").textContent = s.shares.rejected;
  $("stale").textContent = s.shares.stale;
  $("hw-errors").textContent = s.hardware_errors;
  $("best-share").textContent = number(s.best_share);
  $("blocks-tile").hidden = s.mode !== "solo";
  $("blocks").textContent = s.blocks;
  $("pool-side-card").hidden = s.pool_side.length === 0;
  fill("pool-side", s.pool_side.map((p) => [[p.protocol], [p.connections, "num"], [p.accepted, "num"], [p.rejected, "num"]]));
}

function showDevices(devices) {
  const fixed = (v, digits) => (v == null ? "–" : v.toFixed(digits));
  fill("devices", devices.map((d) => [
    [d.id], [d.paused ? d.name + " (paused: too hot)" : d.name], [d.backend],
    [d.state + (d.duty < 1 ? " · " + Math.round(d.duty * 100) + " %" : ""), "state-" + d.state],
    [rate(d.mhs_5s), "num"], [rate(d.mhs_avg), "num"],
    [fixed(d.sensor?.power_w, 0), "num"], [fixed(d.mh_per_joule, 3), "num"], [fixed(d.sensor?.temp_c, 0), "num"],
    [d.shares.accepted, "num"], [d.shares.rejected, "num"], [d.shares.stale, "num"], [d.hardware_errors, "num"],
  ]));
}

function showPools(pools) {
  fill("pools", pools.map((p) => [
    [p.id], [p.url], [p.protocol], [p.state, "state-" + p.state.replace(" ", "-")],
    [p.latency_ms == null ? "–" : p.latency_ms.toFixed(1) + " ms", "num"], [number(p.difficulty), "num"],
    [p.shares.accepted, "num"], [p.shares.rejected, "num"], [p.shares.stale, "num"],
  ]));
}

const EVENT_TEXT = {
  accepted: "share accepted", rejected: "share rejected", stale: "share stale",
  journaled: "share journaled (not sent)", unjournaled: "share NOT journaled", hardware_error: "hardware error",
  pool_down: "pool down", pool_switched: "switched pool", block: "BLOCK FOUND",
  paused: "paused: too hot", resumed: "cooled down: mining again",
  starting: "device opening", alive: "device mining", sick: "device sick", dead: "device dead", gone: "device gone",
};

function showEvent(e, atTop) {
  const li = document.createElement("li");
  li.className = e.kind;
  const time = document.createElement("time");
  time.textContent = new Date(e.time).toLocaleTimeString();
  li.appendChild(time);
  const parts = [EVENT_TEXT[e.kind] || e.kind];
  if (e.device != null) parts.push("device " + e.device);
  if (e.pool) parts.push(e.pool);
  if (e.detail) parts.push(e.detail);
  li.appendChild(document.createTextNode(parts.join(" · ")));
  const list = $("events");
  if (atTop) list.prepend(li); else list.appendChild(li);
  while (list.children.length > 100) list.lastChild.remove();
}

function chartOptions(width) {
  const styles = getComputedStyle(document.documentElement);
  const fg = styles.getPropertyValue("--muted").trim(), grid = styles.getPropertyValue("--line").trim();
  const axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
  const series = [{}, { label: "total", stroke: COLORS[0], width: 2, value: (u, v) => rate(v) }];
  for (let d = 0; d < state.devices; d++) {
    series.push({ label: "device " + d, stroke: COLORS[(d + 1) % COLORS.length], width: 1, value: (u, v) => rate(v) });
  }
  return {
    width, height: 260, series,
    axes: [axis, { ...axis, size: 80, values: (u, vals) => vals.map(rate) }],
    // At least a minute across, so that a new page's few samples do not get millisecond ticks.
    scales: {
      x: { time: true, range: (u, min, max) => [Math.min(min ?? max, max - 60), max] },
      y: { range: (u, min, max) => [0, Math.max(max, 1e-6) * 1.1] },
    },
  };
}

function drawChart() {
  const box = $("chart");
  if (state.plot) state.plot.destroy();
  state.plot = new uPlot(chartOptions(box.clientWidth || 600), state.data, box);
}

function loadHistory(h) {
  state.devices = h.devices.length;
  state.data = [h.t, h.total, ...h.devices];
  drawChart();
}

function addSample(s) {
  const t = s.t, cut = t - HOUR;
  if (s.devices.length > state.devices) {
    // A device joined: give it a column, empty before now.
    while (state.data.length - 2 < s.devices.length) state.data.push(state.data[0].map(() => null));
    state.devices = s.devices.length;
    drawChart();
  }
  state.data[0].push(t);
  state.data[1].push(s.total);
  for (let d = 0; d < state.devices; d++) state.data[d + 2].push(s.devices[d] ?? null);
  while (state.data[0].length && state.data[0][0] < cut) state.data.forEach((col) => col.shift());
  state.plot.setData(state.data);
  showSummary(s.summary);
  showDevices(s.device_list);
  showPools(s.pools);
}

function live() {
  const link = $("link");
  const source = new EventSource("api/v1/stream");
  source.onopen = () => { link.textContent = "live"; link.className = "badge on"; };
  source.onerror = () => {
    link.textContent = "reconnecting…";
    link.className = "badge off";
    // The browser reconnects by itself after a closed stream, but not after an answer other
    // than 200 (a 503 when too many pages are open): HTML's server-sent events, "fail the
    // connection". Try again later then.
    if (source.readyState === EventSource.CLOSED) setTimeout(live, 10_000);
  };
  source.addEventListener("sample", (m) => addSample(JSON.parse(m.data)));
  source.addEventListener("event", (m) => showEvent(JSON.parse(m.data), true));
}

async function start() {
  const get = (path) => fetch(path).then((r) => r.json());
  const [history, summary, devices, pools, events] = await Promise.all(
    ["api/v1/history", "api/v1/summary", "api/v1/devices", "api/v1/pools", "api/v1/events"].map(get));
  loadHistory(history);
  showSummary(summary);
  showDevices(devices);
  showPools(pools);
  events.reverse().forEach((e) => showEvent(e, false));
  live();
  new ResizeObserver(() => state.plot && state.plot.setSize({ width: $("chart").clientWidth, height: 260 })).observe($("chart"));
  // The chart's colours are read from the style sheet when it is drawn: draw again on a change.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawChart);
}

start();
