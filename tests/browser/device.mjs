// Opens wgminer's /device page in headless Chromium (Debian's, $CHROMIUM) with WebGPU on, as a
// person would: waits for the adapter and presses Start. Then, with `mine`, waits until the page
// shows MIN_ACCEPTED accepted shares, reads /api/v1/devices and cgminer's DEVS while it mines,
// presses Stop and reads them again once the device is detached; with `sweep`, waits until
// wgminer lets the device go; with `bench`, presses Bench instead and waits the same way.
// Prints one JSON line of what it saw.
// Usage: node device.mjs URL mine API_PORT MIN_ACCEPTED | node device.mjs URL sweep|bench
import { chromium } from "playwright-core";
import net from "node:net";

const [url, mode, apiPort, minAccepted] = process.argv.slice(2);
const origin = new URL(url).origin;

// cgminer's API: one JSON request, the reply up to its NUL.
function cgminer(command) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(apiPort), "127.0.0.1", () => socket.end(JSON.stringify({ command })));
    const chunks = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString().replace(/\0$/, ""))));
  });
}
const devices = async () => (await fetch(`${origin}/api/v1/devices`)).json();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=native",
  ],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  await page.waitForFunction(() => !document.querySelector("#start").disabled, null, { timeout: 60_000 })
    .catch(async () => { throw new Error("no WebGPU adapter: " + (await page.textContent("#support"))); });
  // GPUAdapterInfo's fields are getters: copied one by one.
  const adapter = await page.evaluate(() => {
    const i = window.wgminerDevice.info;
    return { vendor: i.vendor, architecture: i.architecture, description: i.description };
  });
  const sweptBeforeStart = await page.evaluate(() => window.wgminerDevice.pieces);
  await page.click(mode === "bench" ? "#bench" : "#start");
  if (mode === "sweep" || mode === "bench") {
    await page.waitForFunction(() => document.querySelector("#link").textContent.startsWith("stopped"), null, { timeout: 240_000 });
    const seen = await page.evaluate(() => ({ pieces: window.wgminerDevice.pieces, log: window.wgminerDevice.log }));
    if (errors.length) throw new Error("errors on the page: " + errors.join("; "));
    console.log(JSON.stringify({ adapter, sweptBeforeStart, ...seen }));
    process.exit(0);
  }
  await page.waitForFunction((n) => (window.wgminerDevice.status?.accepted ?? 0) >= n, Number(minAccepted), { timeout: 240_000 })
    .catch(async () => { throw new Error("too few shares: " + (await page.textContent("#log"))); });
  const mining = { status: await page.evaluate(() => window.wgminerDevice.status), shape: await page.textContent("#shape"),
    devices: await devices(), devs: await cgminer("devs") };
  await page.click("#stop");
  // Detached: the host lets the device go once its socket closed.
  let after;
  for (let i = 0; i < 300; i++) {
    after = await devices();
    const d = after.find((x) => x.backend === "WebGPU");
    if (d && d.state !== "alive" && d.state !== "starting") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const stopped = { devices: after, devs: await cgminer("devs"), link: await page.textContent("#link") };
  if (errors.length) throw new Error("errors on the page: " + errors.join("; "));
  console.log(JSON.stringify({ adapter, sweptBeforeStart, mining, stopped, log: await page.evaluate(() => window.wgminerDevice.log) }));
} finally {
  await browser.close();
}
