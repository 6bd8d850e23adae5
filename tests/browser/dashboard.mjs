// Opens wgminer's dashboard in headless Chromium (Debian's, $CHROMIUM) and waits, as a person
// would, until the chart shows a hash rate and the accepted count rises; then saves
// screenshots (wide light, wide dark, phone) into the directory given. Prints one JSON line of
// what it saw. Usage: node dashboard.mjs URL SCREENSHOT_DIR
import { chromium } from "playwright-core";

const [url, dir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1300 } });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  // The chart's total series (uPlot's data[1]) holds a rate above zero.
  await page.waitForFunction(() => window.wgminer?.data?.[1]?.some((v) => v > 0), null, { timeout: 90_000 });
  const rate = await page.evaluate(() => Math.max(...window.wgminer.data[1]));
  const shown = async () => Number(await page.textContent("#accepted"));
  const before = await shown();
  await page.waitForFunction((n) => Number(document.querySelector("#accepted").textContent) > n, before, { timeout: 90_000 });
  const after = await shown();
  const live = await page.textContent("#link");
  const screenshots = [`${dir}/dashboard-light.png`, `${dir}/dashboard-dark.png`, `${dir}/dashboard-phone.png`];
  await page.screenshot({ path: screenshots[0], fullPage: true });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: screenshots[1], fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: screenshots[2], fullPage: true });
  if (errors.length) throw new Error("errors on the page: " + errors.join("; "));
  if (live !== "live") throw new Error(`the live stream is not connected: ${live}`);
  if (overflow > 0) throw new Error(`the page is ${overflow} px wider than a phone`);
  console.log(JSON.stringify({ rate, accepted_before: before, accepted_after: after, screenshots }));
} finally {
  await browser.close();
}
