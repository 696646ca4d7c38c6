// Loads the verification page in headless Chromium through the DevTools protocol,
// waits (up to 60 s) until it shows a verdict, saves a screenshot and prints
// {"ok": "true"|"false", "genuine": "true"|"false", "check": "...", "headline": "...",
// "median_ms": "..."} (the median time of one verification, `?bench=N` for N runs)
// as read from the page's DOM.
//
//   node --experimental-websocket check-page.mjs CHROMIUM URL SCREENSHOT.png
//
// No npm packages: Node's fetch and WebSocket, and Chromium's --remote-debugging-port.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [chromium, url, shot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "phalanx-page-"));
const browser = spawn(chromium, [
  "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--remote-debugging-port=0", `--user-data-dir=${profile}`,
  "--window-size=1100,1500", "about:blank",
], { stdio: "ignore" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deadline = Date.now() + 60_000;
function done(code, message) {
  if (message) console.error(message);
  browser.kill("SIGKILL");
  try { rmSync(profile, { recursive: true, force: true }); } catch {}
  process.exit(code);
}
try {
  // Chromium writes the port file, then listens: wait for a whole port number, then
  // for the endpoint to answer (a refused or reset connection is retried, not fatal).
  const portFile = join(profile, "DevToolsActivePort");
  let port = "";
  while (!/^\d+$/.test(port)) {
    if (Date.now() > deadline) done(1, "chromium did not open its DevTools port");
    if (existsSync(portFile)) port = readFileSync(portFile, "utf8").split("\n")[0].trim();
    if (!/^\d+$/.test(port)) await sleep(50);
  }
  let target;
  while (!target) {
    if (Date.now() > deadline) done(1, "chromium's DevTools endpoint did not answer");
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      target = list.find((t) => t.type === "page");
    } catch {
      target = undefined;
    }
    if (!target) await sleep(50);
  }
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  let next = 0;
  const waiting = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id !== undefined && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  };
  const call = (method, params = {}) => new Promise((ok) => {
    const id = ++next;
    waiting.set(id, ok);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await call("Page.enable");
  await call("Page.navigate", { url });
  const read = `(() => { const v = document.getElementById("verdict");
    const h = v && v.querySelector("h2");
    return v && v.dataset.ok ? JSON.stringify({ ok: v.dataset.ok, genuine: v.dataset.genuine,
      check: v.dataset.check, headline: h ? h.textContent : "",
      median_ms: v.dataset.medianMs || "" }) : ""; })()`;
  let verdict = "";
  while (!verdict) {
    if (Date.now() > deadline) done(1, "the page showed no verdict within 60 s");
    const r = await call("Runtime.evaluate", { expression: read, returnByValue: true });
    verdict = (r.result && r.result.result && r.result.result.value) || "";
    if (!verdict) await sleep(100);
  }
  const png = await call("Page.captureScreenshot", { format: "png" });
  writeFileSync(shot, Buffer.from(png.result.data, "base64"));
  console.log(verdict);
  ws.close();
  done(0);
} catch (err) {
  done(1, String(err && err.stack || err));
}
