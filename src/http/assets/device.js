// This browser's GPU as a wgminer device: the page builds the kernel wgminer serves
// (sha256d.wgsl, the very bytes its native path compiles), measures its shape in the order
// wgminer's tuner uses, then sweeps the pieces wgminer hands it over /api/v1/device and answers
// each with its candidates. wgminer checks every candidate on its CPU. The frames are
// documented in src/browser/frame.rs. Nothing runs before Start (or Bench) is pressed.
"use strict";

const VERSION = 1;
const KIND = { welcome: 0x01, piece: 0x02, status: 0x03, hello: 0x10, answer: 0x11, bench: 0x12 };
const PARAMS_BYTES = 672;
const CAPACITY = 4096; // candidates the buffer holds, as the native sweeper's
const MAX_CANDIDATES = 16384; // in one answer (src/browser/frame.rs)
const MAX_TEXT = 256;

const $ = (id) => document.getElementById(id);
const state = {
  adapter: null, info: null, device: null, module: null, layout: null, pipelines: new Map(),
  buffers: null, socket: null, running: false, queue: [], wake: null, shape: null, batch: 0,
  pieces: 0, hashes: 0, startedAt: 0, status: null, log: [],
};
window.wgminerDevice = state; // for a person's console, and the tests

function log(line) {
  state.log.push(line);
  $("log").textContent = state.log.slice(-30).join("\n");
}

function fail(message) {
  $("support").textContent = message;
  $("support").className = "";
}

async function findAdapter() {
  $("browser").textContent = navigator.userAgent;
  if (!window.isSecureContext) {
    return fail("WebGPU needs a secure context: open this page as http://localhost (an SSH tunnel: ssh -L 8080:127.0.0.1:8080 miner) or over https; a plain http:// address of another machine is not one.");
  }
  if (!navigator.gpu) {
    return fail("This browser offers no WebGPU (navigator.gpu is missing). Chrome and Edge 113+ on Windows, macOS and ChromeOS, Safari 26+, and Firefox 141+ on Windows have it; on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan, or enable it in chrome://flags.");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    return fail("WebGPU is there, but the browser offers no adapter (a blocklisted GPU or driver, or hardware acceleration turned off): see chrome://gpu.");
  }
  state.adapter = adapter;
  state.info = adapter.info || {};
  $("vendor").textContent = state.info.vendor || "–";
  $("architecture").textContent = state.info.architecture || "–";
  $("description").textContent = state.info.description || state.info.device || "–";
  $("support").textContent = "WebGPU is ready. Start sweeps for the wgminer that served this page.";
  $("start").disabled = false;
  $("bench").disabled = false;
}

async function openDevice() {
  if (state.device) return;
  const device = await state.adapter.requestDevice();
  device.lost.then((info) => { log(`the GPU device was lost: ${info.message}`); stop("device lost"); });
  const source = await (await fetch("sha256d.wgsl")).text();
  const module = device.createShaderModule({ code: source, label: "sha256d.wgsl" });
  const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
  if (messages.length) throw new Error("the kernel does not compile here: " + messages.map((m) => m.message).join("; "));
  const layout = device.createBindGroupLayout({ entries: [
    { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
    { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
  ] });
  const bytes = 4 * (1 + 2 * CAPACITY);
  const params = device.createBuffer({ size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const candidates = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const readback = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const group = device.createBindGroup({ layout, entries: [
    { binding: 0, resource: { buffer: params } }, { binding: 1, resource: { buffer: candidates } },
  ] });
  Object.assign(state, { device, module, layout, buffers: { params, candidates, readback, group, bytes } });
}

function pipeline(shape, versions) {
  const key = `${shape.workgroup}x${shape.nonces}:${versions}`;
  if (!state.pipelines.has(key)) {
    state.pipelines.set(key, state.device.createComputePipeline({
      layout: state.device.createPipelineLayout({ bindGroupLayouts: [state.layout] }),
      compute: { module: state.module, entryPoint: "sweep", constants: {
        WORKGROUP_SIZE: shape.workgroup, NONCES_PER_INVOCATION: shape.nonces, VERSIONS: versions } },
    }));
  }
  return state.pipelines.get(key);
}

// One dispatch of `count` nonces from `start` with these parameters: the candidates found (as
// many as fit) and how many there were.
async function dispatch(shape, params, start, count) {
  const { device } = state;
  const b = state.buffers;
  const uniform = new Uint8Array(params);
  const view = new DataView(uniform.buffer);
  view.setUint32(16, start, true);
  view.setUint32(20, count, true);
  const versions = view.getUint32(28, true);
  device.queue.writeBuffer(b.params, 0, uniform);
  const encoder = device.createCommandEncoder();
  encoder.clearBuffer(b.candidates, 0, 4);
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline(shape, versions));
  pass.setBindGroup(0, b.group);
  const perGroup = shape.workgroup * shape.nonces;
  const groups = Math.ceil(count / perGroup);
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(groups / maxDim);
  pass.dispatchWorkgroups(Math.ceil(groups / y), y);
  pass.end();
  encoder.copyBufferToBuffer(b.candidates, 0, b.readback, 0, b.bytes);
  device.queue.submit([encoder.finish()]);
  await b.readback.mapAsync(GPUMapMode.READ);
  const words = new Uint32Array(b.readback.getMappedRange().slice(0));
  b.readback.unmap();
  const found = words[0];
  const out = [];
  for (let i = 0; i < Math.min(found, CAPACITY); i++) out.push([words[1 + 2 * i], words[2 + 2 * i]]);
  return { found, out, versions };
}

// Sweeps a range, splitting a dispatch whose candidates overflowed the buffer as the native
// host does, so that none is missed.
async function sweepRange(shape, params, start, count, out) {
  const r = await dispatch(shape, params, start, count);
  if (r.found <= CAPACITY || count <= Math.floor(CAPACITY / r.versions)) {
    out.push(...r.out);
    return;
  }
  const half = Math.ceil(count / 2);
  await sweepRange(shape, params, start, half, out);
  await sweepRange(shape, params, (start + half) >>> 0, count - half, out);
}

// Parameters no hash meets (a mask of every bit): for timing shapes.
function idleParams(versions) {
  const params = new ArrayBuffer(PARAMS_BYTES);
  const view = new DataView(params);
  view.setUint32(24, 0xffffffff, true);
  view.setUint32(28, versions, true);
  return params;
}

// Headers a second of one shape: dispatches grown until one takes half the dispatch time,
// then two timed.
async function measure(shape, dispatchMs) {
  const params = idleParams(shape.k);
  const perGroup = shape.workgroup * shape.nonces;
  let count = perGroup;
  await dispatch(shape, params, 0, count); // the pipeline's compile
  for (;;) {
    const t0 = performance.now();
    await dispatch(shape, params, 0, count);
    const ms = performance.now() - t0;
    if (ms >= dispatchMs / 2 || count >= 2 ** 28) break;
    count *= 2;
  }
  const t0 = performance.now();
  await dispatch(shape, params, 0, count);
  await dispatch(shape, params, count, count);
  const seconds = (performance.now() - t0) / 1000;
  return (2 * count * shape.k) / seconds;
}

// wgminer's tuner's search (src/gpu/shape.rs): workgroup sizes first, then K, then nonces per
// invocation at the best so far; a shape replaces the best only by the margin; within budget.
async function tune(welcome) {
  const maxInvocations = Math.min(state.device.limits.maxComputeInvocationsPerWorkgroup, state.device.limits.maxComputeWorkgroupSizeX);
  const sizes = welcome.workgroupSizes.filter((w) => w <= maxInvocations);
  const first = { workgroup: sizes[0] || maxInvocations, nonces: welcome.nonces[0], k: welcome.versions[0] };
  const started = performance.now();
  let best = null;
  const tryShape = async (shape) => {
    if (best && performance.now() - started > welcome.budgetMs) return;
    const rate = await measure(shape, welcome.dispatchMs);
    log(`shape ${shape.workgroup}×${shape.nonces}, K=${shape.k}: ${(rate / 1e6).toFixed(2)} MH/s`);
    if (!best || rate > best.rate * (1 + welcome.margin)) best = { shape, rate };
  };
  for (const workgroup of sizes) await tryShape({ ...first, workgroup });
  for (const k of welcome.versions.slice(1)) await tryShape({ ...best.shape, k });
  for (const nonces of welcome.nonces.slice(1)) await tryShape({ ...best.shape, nonces });
  const perGroup = best.shape.workgroup * best.shape.nonces;
  const perDispatch = (best.rate / best.shape.k) * (welcome.dispatchMs / 1000);
  state.batch = Math.max(perGroup, Math.min(2 ** 30, Math.floor(perDispatch / perGroup) * perGroup));
  return best;
}

function parseWelcome(view) {
  let at = 2;
  const u32 = () => { const v = view.getUint32(at, true); at += 4; return v; };
  const list = () => { const n = view.getUint8(at); at += 1; return Array.from({ length: n }, u32); };
  const dispatchMs = u32(), budgetMs = u32();
  const margin = view.getUint16(at, true) / 1000; at += 2;
  const bench = view.getUint8(at) === 1; at += 1;
  return { dispatchMs, budgetMs, margin, bench, workgroupSizes: list(), versions: list(), nonces: list() };
}

function textBytes(text) {
  const encoder = new TextEncoder();
  let bytes = encoder.encode(text || "");
  while (bytes.length > MAX_TEXT) { text = text.slice(0, -1); bytes = encoder.encode(text); }
  return bytes;
}

function helloFrame(shape, rate) {
  const texts = [state.info.vendor, state.info.architecture, state.info.description || state.info.device, navigator.userAgent].map(textBytes);
  const frame = new Uint8Array(2 + 12 + 8 + texts.reduce((n, t) => n + 2 + t.length, 0));
  const view = new DataView(frame.buffer);
  frame.set([VERSION, KIND.hello]);
  view.setUint32(2, shape.workgroup, true);
  view.setUint32(6, shape.nonces, true);
  view.setUint32(10, shape.k, true);
  view.setFloat64(14, rate, true);
  let at = 22;
  for (const t of texts) { view.setUint16(at, t.length, true); frame.set(t, at + 2); at += 2 + t.length; }
  return frame;
}

function answerFrame(piece, candidates) {
  const n = Math.min(candidates.length, MAX_CANDIDATES);
  if (candidates.length > MAX_CANDIDATES) log(`piece ${piece.id}: ${candidates.length} candidates, ${MAX_CANDIDATES} sent`);
  const frame = new Uint8Array(2 + 16 + 8 * n);
  const view = new DataView(frame.buffer);
  frame.set([VERSION, KIND.answer]);
  [piece.id, piece.start, piece.count, n].forEach((v, i) => view.setUint32(2 + 4 * i, v, true));
  for (let i = 0; i < n; i++) {
    view.setUint32(18 + 8 * i, candidates[i][0], true);
    view.setUint32(22 + 8 * i, candidates[i][1], true);
  }
  return frame;
}

async function sweepPieces() {
  while (state.running) {
    const piece = state.queue.shift();
    if (!piece) { await new Promise((wake) => (state.wake = wake)); continue; }
    const found = [];
    for (let done = 0; done < piece.count && state.running; done += state.batch) {
      const count = Math.min(state.batch, piece.count - done);
      await sweepRange(state.shape, piece.params, (piece.start + done) >>> 0, count, found);
    }
    if (!state.running) break;
    state.socket.send(answerFrame(piece, found));
    state.pieces += 1;
    state.hashes += piece.count * new DataView(piece.params).getUint32(28, true);
    $("pieces").textContent = state.pieces;
    const seconds = (performance.now() - state.startedAt) / 1000;
    $("rate").textContent = `${(state.hashes / seconds / 1e6).toFixed(2)} MH/s`;
  }
}

function onFrame(data, welcomed) {
  const view = new DataView(data);
  if (view.byteLength < 2 || view.getUint8(0) !== VERSION) throw new Error("a frame of another version: reload the page");
  const kind = view.getUint8(1);
  if (kind === KIND.welcome) return welcomed(parseWelcome(view));
  if (kind === KIND.piece) {
    const piece = { id: view.getUint32(2, true), start: view.getUint32(6, true), count: view.getUint32(10, true), params: data.slice(14, 14 + PARAMS_BYTES) };
    state.queue.push(piece);
    if (state.wake) { state.wake(); state.wake = null; }
  } else if (kind === KIND.status) {
    const s = { device: view.getUint32(2, true), hashes: Number(view.getBigUint64(6, true)), accepted: Number(view.getBigUint64(14, true)), rejected: Number(view.getBigUint64(22, true)), hwErrors: Number(view.getBigUint64(30, true)) };
    state.status = s;
    $("accepted").textContent = s.accepted;
    $("rejected").textContent = s.rejected;
    $("hw-errors").textContent = s.hwErrors;
    $("link").textContent = `mining as device ${s.device}`;
  }
}

function connect(onWelcome) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/device`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (e) => {
    Promise.resolve().then(() => onFrame(e.data, onWelcome))
      .catch((err) => { log(String(err)); stop(String(err)); });
  };
  socket.onclose = (e) => {
    log(`wgminer closed the connection (${e.code}${e.reason ? ": " + e.reason : ""})`);
    if (state.socket === socket) stop(e.reason || "closed");
  };
  state.socket = socket;
  return socket;
}

// Start mines for the wgminer that served the page; Bench (on a `wgminer bench --browser`) has
// it check this GPU on real blocks' known nonces and measure it, through the same pieces.
async function start(wanted) {
  $("start").disabled = true;
  $("bench").disabled = true;
  $("stop").disabled = false;
  try {
    await openDevice();
    connect(async (welcome) => {
      if (welcome.bench !== (wanted === "bench")) {
        const why = welcome.bench ? "this wgminer benchmarks (bench --browser): press Bench" : "this wgminer mines: press Start (wgminer bench --browser benchmarks)";
        log(why);
        return stop(why);
      }
      log("measuring the kernel's shape…");
      const best = await tune(welcome);
      state.shape = best.shape;
      $("shape").textContent = `${best.shape.workgroup}×${best.shape.nonces}, K=${best.shape.k} (${(best.rate / 1e6).toFixed(2)} MH/s measured, ${state.batch} nonces a dispatch)`;
      if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
      state.running = true;
      state.startedAt = performance.now();
      state.socket.send(helloFrame(best.shape, best.rate));
      $("link").className = "badge on";
      $("link").textContent = "mining";
      log(welcome.bench ? "attached: checking real blocks, then measuring" : "attached: sweeping");
      sweepPieces().catch((err) => { log(String(err)); stop(String(err)); });
    });
  } catch (err) {
    log(String(err));
    stop(String(err));
  }
}

function stop(why) {
  state.running = false;
  state.queue = [];
  if (state.wake) { state.wake(); state.wake = null; }
  const socket = state.socket;
  state.socket = null;
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "stopped");
  $("link").className = "badge off";
  $("link").textContent = why ? `stopped (${why})` : "stopped";
  $("start").disabled = !state.adapter;
  $("bench").disabled = !state.adapter;
  $("stop").disabled = true;
}

$("start").addEventListener("click", () => start("mine"));
$("bench").addEventListener("click", () => start("bench"));
$("stop").addEventListener("click", () => stop("Stop pressed"));
window.addEventListener("pagehide", () => stop("page closed"));
findAdapter().catch((err) => fail(`WebGPU failed: ${err}`));
