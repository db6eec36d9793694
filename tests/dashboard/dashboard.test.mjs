// The dashboard in a real browser: Debian's Chromium driven by playwright-core against the real
// server on a loopback port. Screenshots of each page go to $DASHBOARD_SCREENSHOTS (or ./screenshots).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const binary = process.env.JOBSTORE_BINARY || resolve("../../build/cli/jobstore");
const shots = process.env.DASHBOARD_SCREENSHOTS || resolve("screenshots");
let server, base, browser, page, dataDir;
const dialogs = [];  // every confirm() the pages showed, in order

function startServer(extra = []) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(binary, ["serve", "--data-dir", join(dataDir, "data"), "--listen", "127.0.0.1:0", ...extra],
                       { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/serving http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !base) { base = `http://127.0.0.1:${m[1]}`; resolvePromise(proc); }
    });
    proc.on("exit", (code) => { if (!base) reject(new Error(`jobstore exited ${code}: ${log}`)); });
  });
}

async function call(method, path, body, headers = {}) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method, headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.status === 204 ? null : res.json();
}

const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "jobstore-dashboard-"));
  mkdirSync(shots, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });  // the confirmations
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.on("exit", r));
    server.kill("SIGTERM");
    await exited;  // it writes a snapshot on the way out
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test("jobs appear live, filter, and open a timeline", async () => {
  await call("POST", "/jobs", { job_id: "report-1", type: "report", labels: { team: "ml" } });
  await page.goto(`${base}/`);
  await page.locator('tr[data-job="report-1"]').waitFor();
  // Created after the page loaded: it appears without a reload.
  await call("POST", "/jobs", { job_id: "skill-1", type: "skill_creation", description: "Parse invoices" });
  await call("POST", "/jobs", { job_id: "report-2", type: "report", labels: { team: "web" } });
  await page.locator('tr[data-job="skill-1"]').waitFor({ timeout: 10000 });
  await page.locator('tr[data-job="report-2"]').waitFor();
  assert.equal(await page.locator("#jobs-table tbody tr").count(), 3);
  await shot("jobs");

  await page.getByLabel("Type").fill("report");
  await page.getByLabel("Label").fill("team:ml");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#jobs-table tbody tr").length === 1);
  assert.equal(await page.locator("#jobs-table tbody tr").first().getAttribute("data-job"), "report-1");
  await page.getByRole("checkbox", { name: "running" }).check();
  await page.getByRole("button", { name: "Filter" }).click();
  await page.locator("#jobs-empty").waitFor({ state: "visible" });

  await page.getByLabel("Job id").fill("skill-1");
  await page.getByRole("button", { name: "Open" }).click();
  await page.locator("#timeline tbody tr").first().waitFor();
  assert.match(await page.locator("#job-title").innerText(), /skill-1/);
  await call("POST", "/jobs/skill-1/start", { worker: "w1" });
  await page.waitForFunction(() => document.querySelectorAll("#timeline tbody tr").length === 2);
  assert.match(await page.locator("#timeline").innerText(), /job\.started/);
  await shot("job");
});

test("a multiple-choice HITL question is answered through the form", async () => {
  await call("POST", "/jobs", { job_id: "ask-1", type: "skill_creation", description: "Which formats?" });
  await call("POST", "/jobs/ask-1/start", {});
  await call("POST", "/jobs/ask-1/hitl", {
    type: "clarify",
    prompt: { questions: [
      { text: "Which invoice formats?", question_type: "multi",
        options: [{ id: "pdf", label: "PDF", description: "Portable documents" },
                  { id: "png", label: "Scanned image" }, { id: "xml", label: "XML" }] },
      { text: "Is it urgent?", question_type: "boolean" }] },
  });
  await page.goto(`${base}/#/inbox`);
  const form = page.locator('form.hitl-form[data-job="ask-1"]');
  await form.waitFor();
  await form.getByRole("checkbox", { name: "PDF" }).check();
  await form.getByRole("checkbox", { name: "XML" }).check();
  await form.getByRole("radio", { name: "Yes" }).check();
  await shot("inbox");
  await form.getByRole("button", { name: "Send answer" }).click();
  await form.locator(".answer-status", { hasText: "running" }).waitFor();
  const job = await call("GET", "/jobs/ask-1");
  assert.equal(job.status, "running");
  assert.deepEqual(job.hitl.response, [["pdf", "xml"], true]);
  assert.equal(job.hitl.request_id, "h-1");
});

test("a job is cancelled with a reason after a confirmation", async () => {
  await call("POST", "/jobs", { job_id: "doomed", type: "report" });
  await page.goto(`${base}/#/job/doomed`);
  await page.getByLabel("Reason").fill("duplicate request");
  await page.getByRole("button", { name: "Cancel job…" }).click();
  await page.locator(".status-cancelled").first().waitFor();
  const job = await call("GET", "/jobs/doomed");
  assert.equal(job.status, "cancelled");
  assert.equal(job.error.message, "duplicate request");
});

test("a failed job is retried from its page after a confirmation", async () => {
  await call("POST", "/jobs", { job_id: "flaky-report", type: "retry-ui" });
  const claimed = await call("POST", "/jobs/claim", { worker: "w", types: ["retry-ui"] });
  assert.equal(claimed.job_id, "flaky-report");
  await call("POST", "/jobs/flaky-report/fail", { error: { code: "upstream", message: "503" } });
  await page.goto(`${base}/#/job/flaky-report`);
  await page.locator(".status-failed").first().waitFor();
  assert.equal(await page.locator("#cancel-job").count(), 0);  // finished: no Cancel
  await page.getByRole("button", { name: "Retry job…" }).click();
  await page.locator("#job-title .status-pending").waitFor();
  assert.ok(dialogs.some((m) => m.startsWith("Retry job flaky-report?")), dialogs.join(" | "));
  const job = await call("GET", "/jobs/flaky-report");
  assert.equal(job.status, "pending");
  assert.equal(job.attempt, 0);
  assert.equal(job.errors.length, 1);  // the failed attempt stays in the history
  assert.equal(await page.locator("#retry-job").count(), 0);  // waiting again: no Retry
  await shot("job-retried");
});

test("schedules are listed with their next run and follow changes", async () => {
  await call("POST", "/schedules", { schedule_id: "nightly-report", cron: "0 2 * * *",
                                     timezone: "Europe/Berlin", job: { type: "report" } });
  await page.goto(`${base}/#/schedules`);
  const row = page.locator('#schedules tr[data-schedule="nightly-report"]');
  await row.waitFor();
  const next = await row.locator(".next-run").innerText();
  const expected = (await call("GET", "/schedules/nightly-report")).next_run_at;
  assert.equal(next, new Date(expected).toLocaleString());
  assert.match(await row.innerText(), /0 2 \* \* \*\s+Europe\/Berlin\s+report/);
  await call("PATCH", "/schedules/nightly-report", { paused: true });  // the feed redraws it
  await page.waitForFunction(() =>
    document.querySelector('#schedules tr[data-schedule="nightly-report"] .next-run')?.textContent === "paused");
  await shot("schedules");
});

test("the overview counts jobs by status and charts the last hour", async () => {
  await page.goto(`${base}/#/overview`);
  await page.locator("#chart").waitFor();
  const pending = await page.locator('#counts [data-status="pending"] strong').innerText();
  assert.equal(Number(pending), (await call("GET", "/stats")).jobs.pending);
  assert.ok((await page.locator("#chart rect").count()) >= 180);
  await call("POST", "/jobs", { type: "report" });
  await page.waitForFunction((n) => Number(document.querySelector('#counts [data-status="pending"] strong')?.innerText) === n,
                             Number(pending) + 1, { timeout: 10000 });
  await shot("overview");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/#/jobs`);
  await page.locator("#jobs-table tbody tr").first().waitFor();
  await shot("jobs-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("the overview's chart shows the last hour's history on first load", async () => {
  // History of the last minute, then a fresh tab opened straight on the overview: it must draw
  // that history, not an empty chart that waits for the next event.
  for (let i = 0; i < 3; i++) await call("POST", "/jobs", { type: "history" });
  const fresh = await browser.newPage();
  try {
    await fresh.goto(`${base}/#/overview`);
    await fresh.waitForFunction(
      () => [...document.querySelectorAll("#chart rect")].some((r) => Number(r.getAttribute("height")) > 0),
      null, { timeout: 10000 });
    const tall = await fresh.locator("#chart rect").evaluateAll(
      (rects) => rects.filter((r) => Number(r.getAttribute("height")) > 0).map((r) => r.textContent));
    assert.ok(tall.some((t) => t.includes("created")), tall.join("; "));
  } finally {
    await fresh.close();
  }
});

test("a view left while it refreshes never comes back", async () => {
  // A job page that refreshes on every event of its job; navigating to the overview right as
  // an event arrives must leave the overview on screen.
  await call("POST", "/jobs", { job_id: "flicker-1" });
  await page.goto(`${base}/#/job/flicker-1`);
  await page.locator("#job-title").waitFor();
  for (let i = 0; i < 5; i++) {
    await call("PATCH", "/jobs/flicker-1", { labels: { round: String(i) } });
    await page.evaluate(() => { location.hash = "#/overview"; });
    await page.locator("#counts").waitFor({ timeout: 10000 });
    await page.waitForTimeout(400);  // past the job page's debounced refresh (150 ms)
    assert.equal(await page.locator("#job-title").count(), 0);
    assert.equal(await page.locator("#counts").count(), 1);
    await page.evaluate(() => { location.hash = "#/job/flicker-1"; });
    await page.locator("#job-title").waitFor();
  }
});

test("with a token the page asks for it once and keeps it for the tab", async () => {
  const tokenFile = join(dataDir, "token");
  writeFileSync(tokenFile, "dash-secret\n");
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
  base = undefined;
  server = await startServer(["--token-file", tokenFile]);
  const tab = await browser.newPage();
  await tab.goto(`${base}/`);
  await tab.getByLabel("Bearer token").fill("dash-secret");
  await tab.getByRole("button", { name: "Use token" }).click();
  await tab.locator("#jobs-table tbody tr").first().waitFor();
  assert.equal(await tab.evaluate(() => sessionStorage.getItem("jobstore-token")), "dash-secret");
  await tab.reload();
  await tab.locator("#jobs-table tbody tr").first().waitFor();  // no second prompt
  assert.equal(await tab.locator("#token-dialog[open]").count(), 0);
  await tab.close();
});

test("another site cannot frame the dashboard", async () => {
  // A page of another origin (and another site: localhost is not 127.0.0.1) frames the
  // dashboard, and, as a control, an API answer that carries no frame-ancestors.
  const outer = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<iframe id="dash" src="${base}/"></iframe><iframe id="control" src="${base}/healthz"></iframe>`);
  });
  await new Promise((r) => outer.listen(0, "127.0.0.1", r));
  const framing = await browser.newPage();
  try {
    await framing.goto(`http://localhost:${outer.address().port}/`);
    await framing.frameLocator("#control").locator("body", { hasText: "ok" }).waitFor({ timeout: 10000 });
    const dash = await (await framing.$("#dash")).contentFrame();
    await framing.waitForTimeout(500);  // the blocked frame would have had as long as the control
    assert.notEqual(dash.url(), `${base}/`);
    assert.equal(await dash.locator("#main").count(), 0);
  } finally {
    await framing.close();
    outer.close();
  }
});
