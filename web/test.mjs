#!/usr/bin/env node
// Runs the browser tests: serves web/ on 127.0.0.1 (a free port), launches Debian's headless
// Chromium with WebGPU on SwiftShader (no shader-f16) through playwright-core, loads
// test.html, prints one line per check (test.js, and test-lm.js for the language models),
// then loads the demo (index.html), checks that it drew a heatmap and saves a screenshot to
// web/screenshots/demo.png, then the language-model page (lm.html): it must generate text
// and draw an attention map (screenshot web/screenshots/lm.png). The last line is
// "N passed, M failed"; the exit status is non-zero on any failure. The checks draw their
// inputs from a fresh seed, printed first; WEBATTN_SEED=N replays a run (as in the Rust tests).
// WEBATTN_ONLY=forward (or decode, or lm) runs one part of the checks of test.html.
//
//   node web/test.mjs        (after web/build.sh; CHROMIUM=/path overrides /usr/bin/chromium)

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const EXECUTABLE = process.env.CHROMIUM ?? "/usr/bin/chromium";
// The whole run, browser start and every page included, must end within this bound.
const TOTAL_TIMEOUT_MS = Number(process.env.WEBATTN_TEST_TIMEOUT_MS ?? 600_000);
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--use-webgpu-adapter=swiftshader",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const started = Date.now();
const left = () => Math.max(1000, TOTAL_TIMEOUT_MS - (Date.now() - started));
const sci = (x) => (x === 0 ? "0" : Number.isFinite(x) ? x.toExponential(2) : String(x));

let server, browser, userDataDir;
let passed = 0, failed = 0;

async function cleanup() {
  await browser?.close().catch(() => {});
  browser = undefined;
  await new Promise((ok) => (server ? server.close(() => ok()) : ok()));
  server?.closeAllConnections?.();
  server = undefined;
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}

// A hard stop in case anything hangs past the bound (a stuck GPU process, a lost page...).
const watchdog = setTimeout(async () => {
  console.log(`FAIL  timeout: the browser tests did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  await Promise.race([cleanup(), new Promise((ok) => setTimeout(ok, 5000))]);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

function line(pass, name, detail) {
  if (pass) passed++;
  else failed++;
  console.log(`${pass ? "PASS" : "FAIL"}  ${name}${detail ? "  " + detail : ""}`);
}

function watch(page, tag) {
  page.on("pageerror", (e) => console.log(`  [${tag} page error] ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.log(`  [${tag} console.${m.type()}] ${m.text()}`);
  });
}

async function main() {
  ({ server } = await startServer(0));
  const url = `http://127.0.0.1:${server.address().port}/`;
  userDataDir = await mkdtemp(join(tmpdir(), "webattn-chromium-"));
  // ignoreDefaultArgs: true passes exactly FLAGS (plus the profile dir and the pipe that
  // playwright talks over), none of playwright's own defaults.
  browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${userDataDir}`, "--remote-debugging-pipe"],
    timeout: 60_000,
  });
  console.log(`chromium ${browser.version()}, serving ${url}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });

  // 1. The checks of test.html.
  const page = await context.newPage();
  watch(page, "test");
  const seed = process.env.WEBATTN_SEED?.trim();
  const only = process.env.WEBATTN_ONLY?.trim();
  const query = new URLSearchParams({ ...(seed ? { seed } : {}), ...(only ? { only } : {}) }).toString();
  await page.goto(url + "test.html" + (query ? `?${query}` : ""), { timeout: 60_000 });
  await page.waitForFunction(() => window.__webattnTests?.done === true, null, {
    timeout: left() - 60_000,
    polling: 250,
  });
  const res = await page.evaluate(() => window.__webattnTests);
  console.log(`seed ${res.seed} (replay: WEBATTN_SEED=${res.seed} web/test.sh)`);
  if (res.info) {
    const i = res.info;
    console.log(`adapter: ${i.name} (${i.backend}, ${i.deviceType}); shader-f16 ${i.shaderF16}, f16 read as ${i.f16Storage}, variant ${i.variant}`);
  }
  const worst = {};
  for (const c of res.checks) {
    const errs = Object.entries(c.errors ?? {})
      .map(([k, e]) => `${k} rel ${sci(e.relErr)} max ${sci(e.maxAbs)}${e.finite === false ? " NONFINITE" : ""}` +
        (e.e32 !== undefined && e.bound > c.tol ? ` (e32 ${sci(e.e32)}, bound ${sci(e.bound)})` : ""))
      .join(", ");
    const detail = [errs, c.note, `(tol ${c.tol ?? "-"}, ${Math.round(c.ms)} ms)`].filter(Boolean).join("  ");
    line(c.pass, c.name, detail);
    if (c.group && c.kind && c.errors) {
      const key = `${c.group} ${c.kind}`;
      const e = Math.max(...Object.values(c.errors).map((x) => x.relErr));
      worst[key] = Math.max(worst[key] ?? 0, e);
    }
  }
  if (res.error) console.log(`  test page error: ${res.error}`);
  if (res.failed) console.log(`  replay the inputs of this run: WEBATTN_SEED=${res.seed} web/test.sh`);
  await page.close();

  // 2. The demo: wait for its first render, check the heatmap has content, screenshot it.
  const demo = await context.newPage();
  watch(demo, "demo");
  await demo.goto(url + "index.html", { timeout: 60_000 });
  const ok = await demo
    .waitForFunction(() => window.__demo?.rendered === true || window.__demo?.error, null, {
      timeout: left() - 10_000,
      polling: 250,
    })
    .then(() => true, () => false);
  const heat = await demo.evaluate(() => {
    const c = document.getElementById("heatmap");
    if (!c) return { colors: 0, error: "no #heatmap canvas" };
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { colors: seen.size, error: window.__demo?.error ?? null, badge: document.getElementById("badge")?.textContent };
  });
  await mkdir(join(HERE, "screenshots"), { recursive: true });
  const shot = join(HERE, "screenshots", "demo.png");
  await demo.screenshot({ path: shot, fullPage: true });
  line(
    ok && !heat.error && heat.colors >= 16,
    "demo renders a heatmap",
    `${heat.colors} distinct colours; badge: ${heat.badge ?? "-"}${heat.error ? `; error: ${heat.error}` : ""}; screenshot ${shot}`,
  );

  await demo.close();

  // 3. The language-model page: generate a few bytes with sb-nope (f16, greedy), wait for the
  // inspection, check the text and the heatmap, screenshot it.
  const lm = await context.newPage();
  watch(lm, "lm");
  const lmQuery = "model=sb-nope&dtype=f16&tokens=24&temperature=0&prompt=" + encodeURIComponent("And God said");
  await lm.goto(url + "lm.html?" + lmQuery, { timeout: 60_000 });
  const lmOk = await lm
    .waitForFunction(() => window.__lm?.inspected === true || window.__lm?.error, null, {
      timeout: left() - 10_000,
      polling: 250,
    })
    .then(() => true, () => false);
  const page3 = await lm.evaluate(() => {
    const c = document.getElementById("heatmap");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return {
      colors: seen.size,
      generated: document.querySelector("#output .generated")?.textContent ?? "",
      speed: document.getElementById("speed")?.textContent,
      sinkRows: document.querySelectorAll("#sinks tr").length,
      error: window.__lm?.error ?? null,
    };
  });
  const lmShot = join(HERE, "screenshots", "lm.png");
  await lm.screenshot({ path: lmShot, fullPage: true });
  line(
    lmOk && !page3.error && page3.generated.length > 0 && page3.colors >= 16 && page3.sinkRows === 7,
    "lm.html generates text and draws its attention map",
    `${JSON.stringify(page3.generated)}; ${page3.speed}; ${page3.colors} distinct colours` +
      `${page3.error ? `; error: ${page3.error}` : ""}; screenshot ${lmShot}`,
  );

  console.log("largest relative L2 error per kind (browser, WebGPU on SwiftShader):");
  for (const [k, e] of Object.entries(worst)) console.log(`  ${k.padEnd(24)} ${sci(e)}`);
  console.log(`browser tests took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

let code = 0;
try {
  await main();
} catch (e) {
  line(false, "browser test run", String(e && e.message ? e.message : e));
}
await cleanup();
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
code = failed > 0 || passed === 0 ? 1 : 0;
process.exit(code);
