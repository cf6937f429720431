// Browser test of the jira-bridge console, in headless Chromium driven by
// playwright-core, against a running `jira-bridge demo` (service + simulated Jira).
//
// Environment: JB_URL (service), JB_API_KEY, JB_SIM_URL, JB_ARTIFACTS (screenshots),
// JB_CHROMIUM (default /usr/bin/chromium). Exits non-zero on the first failure.
// Run by crates/jira-bridge/tests/browser/main.rs.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const BASE = need("JB_URL");
const KEY = need("JB_API_KEY");
const SIM = need("JB_SIM_URL");
const ARTIFACTS = need("JB_ARTIFACTS");
const CHROMIUM = process.env.JB_CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT = 60_000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function log(...args) {
  console.log("[console-test]", ...args);
}

async function json(method, url, body, headers = {}) {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return data;
}
const v1 = (method, p, body) => json(method, BASE + p, body, { authorization: `Bearer ${KEY}` });
const sim = (method, p, body) => json(method, SIM + p, body);

async function until(what, fn, ms = STEP_TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

fs.mkdirSync(ARTIFACTS, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "jb-console-chromium-"));
// A fresh profile directory each run (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  timezoneId: "America/New_York",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

// Console errors: every page must be free of them, except the network errors of
// requests a step expects to fail (declared with `expectFailures`).
const errors = [];
let allowed = null;
function watch(page) {
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (allowed && allowed.test(text)) return;
    errors.push(`${page.url()}: ${text}`);
  });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
}
async function expectFailures(pattern, fn) {
  allowed = pattern;
  try { return await fn(); } finally { allowed = null; }
}
function noErrors(where) {
  assert.deepEqual(errors, [], `console errors on ${where}`);
}

const shots = [];
async function shot(page, name) {
  await page.evaluate(() => document.fonts && document.fonts.ready);
  const file = path.join(ARTIFACTS, `${String(shots.length + 1).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  noErrors(name);
}

context.setDefaultTimeout(STEP_TIMEOUT);
const page = await context.newPage();
watch(page);
page.on("dialog", (d) => d.accept());

try {
  // --- Sign in -------------------------------------------------------------
  await page.goto(BASE + "/");
  assert.match(page.url(), /\/console\/login$/);
  await shot(page, "login");
  await expectFailures(/status of 401/, async () => {
    await page.getByLabel("API key").fill("jbk_not-a-key");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "not valid" }).waitFor();
  });
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/console\/connections$/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "jb_session");
  assert.ok(session && session.httpOnly, "HTTP-only session cookie");
  assert.equal(session.sameSite, "Lax");
  // Times are shown in the viewer's zone (converted by the page's script).
  const title = await page.locator("time[datetime]").first().getAttribute("title");
  assert.match(title, /Z$/, "the UTC instant stays in the title");
  await shot(page, "connections");

  // --- Token wizard: a wrong token first, then the right one ------------------
  const scenario = await sim("GET", "/_sim/scenario");
  const alice = scenario.users.find((u) => u.email === "alice@example.com");
  await page.getByLabel("Site URL", { exact: true }).fill(SIM);
  await page.getByLabel("Email", { exact: true }).fill(alice.email);
  await page.getByLabel("API token", { exact: true }).fill("wrong-token");
  await expectFailures(/status of 422/, async () => {
    await page.getByRole("button", { name: "Verify", exact: true }).click();
    await page.locator("#w-result").filter({ hasText: "Not verified" }).waitFor();
  });
  assert.equal(await page.getByRole("button", { name: "Connect", exact: true }).isDisabled(), true);
  await shot(page, "wizard-wrong-token");
  await page.getByLabel("API token", { exact: true }).fill(alice.api_token);
  await page.getByRole("button", { name: "Verify", exact: true }).click();
  await page.locator("#w-result").filter({ hasText: "Verified" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Wizard Acme");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Connected Wizard Acme" }).waitFor();
  await page.locator("tr", { hasText: "Wizard Acme" }).locator(".badge", { hasText: "valid" }).waitFor();
  await shot(page, "wizard-connected");

  // --- OAuth against the simulator, picking one of two sites ----------------------
  await page.getByRole("button", { name: "Connect with Atlassian", exact: true }).click();
  await page.waitForURL(/\/console\/connections\/oauth\?/);
  const sites = await page.getByRole("radio").count();
  assert.equal(sites, 2, "the grant reaches two sites");
  await shot(page, "oauth-site-picker");
  await page.getByLabel(/globex/i).check();
  await page.getByRole("button", { name: "Connect this site", exact: true }).click();
  await page.waitForURL(/\/console\/connections$/);
  await page.locator("tr", { hasText: /globex/i }).locator(".badge", { hasText: "valid" }).waitFor();
  await shot(page, "oauth-connected");

  // --- A config with pickers fed by metadata ------------------------------
  await page.getByRole("link", { name: "Configs", exact: true }).click();
  await shot(page, "configs-empty");
  await page.getByRole("link", { name: "New config", exact: true }).click();
  await page.locator('#config-form[data-ready="true"]').waitFor();
  await page.getByLabel("Name", { exact: true }).fill("console-stories");
  await page.getByLabel("Connection").selectOption({ label: "Acme (simulated)" });
  await page.locator('#config-form[data-ready="true"]').waitFor();
  await page.getByLabel("Target name").fill("web");
  await page.getByLabel("Project").selectOption("WEB");
  await until("issue types of WEB", async () => (await page.getByLabel("Issue type").locator("option").count()) > 0);
  await page.getByLabel("Issue type").selectOption("Story");
  await page.getByLabel("Priority").selectOption("Medium");
  await shot(page, "config-form");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.waitForURL(/\/console\/configs$/);
  const row = page.locator("tr", { hasText: "console-stories" });
  await row.waitFor();
  await row.getByRole("button", { name: "Verify", exact: true }).click();
  await row.locator(".result.ok").filter({ hasText: "All targets exist" }).waitFor();
  await shot(page, "configs");

  // --- A 200-story export: paste YAML, preview the tree, run, watch it live -----------
  // Slow the simulated Jira a little so progress is observable, and make one bulk
  // create of stories fail so a batch of items fails and can be retried.
  await sim("PUT", "/_sim/pacing", { latency_ms: 20, latency_per_item_ms: 5 });
  await sim("PUT", "/_sim/faults", { rules: [{ method: "POST", path_contains: "/issue/bulk", fault: "error", status: 400, count: 1, skip: 1 }] });
  let yaml = "project_key: WEB\nepics:\n";
  for (let e = 1; e <= 4; e++) {
    yaml += `  - source: epic-${e}\n    summary: Epic ${e}\n    stories:\n`;
    for (let i = 1; i <= 50; i++) {
      yaml += `      - source: story-${e}-${i}\n        summary: Story ${e}.${i}\n        acceptance_criteria: ["works"]\n`;
    }
  }
  await page.getByRole("link", { name: "Exports", exact: true }).click();
  await shot(page, "exports-empty");
  await page.getByLabel("Connection").selectOption({ label: "Acme (simulated)" });
  await page.getByLabel("Or paste the tree (JSON or YAML)").fill(yaml);
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  await page.locator("#e-plan").filter({ hasText: "204 to create" }).waitFor();
  assert.equal(await page.locator("#e-plan > div > ul.tree > li").count(), 4, "four epics in the preview");
  await shot(page, "export-preview");
  await page.getByRole("button", { name: "Run export", exact: true }).click();
  await page.waitForURL(/\/console\/jobs\/job_/);
  const seen = await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById("job-progress");
    window.__progress.push(bar.value);
    new MutationObserver(() => window.__progress.push(bar.value)).observe(bar, { attributes: true, childList: true });
    return bar.value;
  });
  const navigations = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  await page.waitForFunction(() => document.getElementById("job-progress").value === 100, null, { timeout: 120_000 });
  const values = await page.evaluate(() => window.__progress);
  log("progress values seen:", values.join(" "));
  assert.ok(values.some((v) => v > seen && v < 100) || seen < 100, "progress moved while the page was open");
  assert.equal(await page.evaluate(() => performance.getEntriesByType("navigation").length), navigations, "no reload");
  await page.locator('#job[data-state="partially_failed"], #job[data-state="failed"], #job[data-state="succeeded"]').waitFor();
  await shot(page, "job-finished");
  const failed = Number(await page.locator("#c-failed").textContent());
  assert.ok(failed > 0, "the injected fault failed some items");
  await page.locator("#items tr.row-failed").first().waitFor();

  // Retry the failed items: the job ends succeeded.
  await sim("PUT", "/_sim/faults", {});
  await page.getByRole("button", { name: "Retry failed", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "queued again" }).waitFor();
  await page.locator('#job[data-state="succeeded"]').waitFor({ timeout: 120_000 });
  assert.equal(await page.locator("#c-failed").textContent(), "0");
  assert.equal(await page.locator("#c-succeeded").textContent(), "204");
  await shot(page, "job-retried");
  await sim("PUT", "/_sim/pacing", {});
  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  await shot(page, "jobs");

  // The export's tree with issue keys; roll it back.
  await page.getByRole("link", { name: "Exports", exact: true }).click();
  await page.locator("tbody tr a").first().click();
  await page.locator("ul.tree .node").first().waitFor();
  assert.equal(await page.locator("ul.tree > li").count(), 4);
  await shot(page, "export-tree");
  await page.getByRole("button", { name: "Roll back", exact: true }).click();
  await page.waitForURL(/\/console\/jobs\/job_/);
  await page.locator('#job[data-state="succeeded"]').waitFor({ timeout: 120_000 });
  await shot(page, "export-rolled-back");

  // --- Releases: per-platform epics and completion ----------------------------------
  await page.getByRole("link", { name: "Releases", exact: true }).click();
  await page.getByLabel("Config").selectOption({ label: "console-stories" });
  await page.getByLabel("Version").fill("9.9.9");
  await page.getByRole("button", { name: "Create release", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Release 9.9.9 created" }).waitFor();
  const release = page.locator("section.release", { hasText: "9.9.9" });
  await until("the release epic", async () => {
    await page.reload();
    return (await release.locator("td a").count()) > 0;
  });
  await release.getByRole("button", { name: "Check now", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Checked 9.9.9" }).waitFor();
  await release.locator(".badge", { hasText: "in progress" }).waitFor();
  await shot(page, "releases");

  // --- Tickets: filters and badges ------------------------------------------------
  await page.getByRole("link", { name: "Tickets", exact: true }).click();
  await page.getByLabel("Source kind").fill("demo");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.waitForURL(/source_kind=demo/);
  assert.ok((await page.locator("tbody tr").count()) > 0);
  // Refresh reads the status from Jira; the badge is coloured by its category.
  const first = page.locator("tbody tr").first();
  const firstKey = (await first.locator("td").first().locator("a").textContent()).trim();
  await first.getByRole("button", { name: "Refresh", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Refreshed" }).waitFor();
  await page.locator("tr", { hasText: firstKey }).locator(".badge.cat-new").waitFor();
  // Transition to the in-progress category.
  await page.locator("tr", { hasText: firstKey }).locator("select[data-transition]").selectOption("in_progress");
  await page.locator("#flash").filter({ hasText: `${firstKey} is now` }).waitFor();
  await page.locator("tr", { hasText: firstKey }).locator(".badge.cat-indeterminate").waitFor();
  await shot(page, "tickets");
  await page.getByLabel("Status category").selectOption("done");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.getByText("No tickets match").waitFor();
  await shot(page, "tickets-empty");

  // --- Time entries: a conflict settled from the console ----------------------------
  const tickets = await v1("GET", "/v1/tickets?source_kind=demo");
  const issueKey = tickets.items[0].issue_key;
  const demoConnection = tickets.items[0].connection_id;
  await sim("PUT", "/_sim/pacing", { worklog_feed_delay_ms: 0 });
  await v1("PUT", "/v1/time-entries/console-conflict", {
    connection_id: demoConnection, issue_key: issueKey, started_at: "2026-11-20T09:00:00Z",
    duration_seconds: 3600, comment: "written by the service", sync: "manual",
  });
  const synced = await v1("POST", "/v1/time-entries/console-conflict/sync");
  assert.equal(synced.state, "synced");
  await sim("PUT", `/_sim/issues/${issueKey}/worklogs/${synced.worklog_id}`, {
    as: "alice", timeSpentSeconds: 5400,
    comment: { type: "doc", version: 1, content: [{ type: "paragraph", content: [{ type: "text", text: "changed in Jira" }] }] },
  });
  await until("the conflict", async () => (await v1("GET", "/v1/time-entries/console-conflict")).state === "conflict", 90_000);
  await page.getByRole("link", { name: "Time entries", exact: true }).click();
  const conflict = page.getByRole("group", { name: "Conflict of console-conflict" });
  await conflict.waitFor();
  await conflict.getByText("changed in Jira").waitFor();
  await conflict.getByText("written by the service").waitFor();
  await shot(page, "time-entries-conflict");
  await conflict.getByRole("button", { name: "Keep local", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Kept the local version" }).waitFor();
  assert.equal((await v1("GET", "/v1/time-entries/console-conflict")).state, "synced");
  const worklog = (await sim("GET", `/_sim/issues/${issueKey}`)).fields.worklog.worklogs.find((w) => w.id === synced.worklog_id);
  assert.equal(worklog.timeSpentSeconds, 3600, "the local version was written over Jira's");
  await shot(page, "time-entries");

  // --- Sync history: filters ---------------------------------------------------------
  await page.getByRole("link", { name: "Sync history", exact: true }).click();
  await shot(page, "sync-history");
  await page.getByLabel("State").selectOption("conflict");
  await page.getByLabel("Kind").fill("worklog.");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.waitForURL(/state=conflict/);
  const states = await page.locator("#history tbody tr .badge").allTextContents();
  assert.ok(states.length > 0 && states.every((s) => s === "conflict"), `only conflicts: ${states}`);
  const today = new Date().toISOString().slice(0, 10);
  await page.getByLabel("From (UTC date)").fill("2000-01-01");
  await page.getByLabel("To (UTC date)").fill("2000-01-02");
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.getByText("No sync attempts match").waitFor();
  await page.getByLabel("From (UTC date)").fill(today);
  await page.getByLabel("To (UTC date)").fill(today);
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await page.locator("#history").waitFor();
  await shot(page, "sync-history-filtered");

  // --- Events: add an endpoint, its secret is shown once ----------------------------------
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await page.getByLabel("URL").fill("https://hooks.example.com/jira-bridge");
  await page.getByRole("button", { name: "Add endpoint", exact: true }).click();
  await page.locator("#secret-once").waitFor();
  const secret = await page.locator("#secret-value").textContent();
  assert.match(secret, /^whsec_/);
  await shot(page, "events-secret");
  await page.getByRole("button", { name: "I have stored it", exact: true }).click();
  await page.locator("tr", { hasText: "hooks.example.com" }).waitFor();
  assert.equal(await page.getByText(secret).count(), 0, "the secret is not shown again");
  await shot(page, "events");
  await page.getByRole("link", { name: "Deliveries", exact: true }).first().click();
  await shot(page, "deliveries");

  // --- Search with autosuggest ------------------------------------------------------------
  await page.getByRole("link", { name: "Search", exact: true }).click();
  await page.getByLabel("Connection").selectOption({ label: "Acme (simulated)" });
  await page.getByRole("combobox", { name: "Issue key or text" }).pressSequentially(issueKey.split("-")[0] + "-", { delay: 20 });
  await page.locator("#suggestions [role=option]").first().waitFor();
  await shot(page, "search-suggestions");
  await page.getByRole("combobox", { name: "Issue key or text" }).press("ArrowDown");
  await page.getByRole("combobox", { name: "Issue key or text" }).press("Enter");
  await page.locator("#search-results tbody tr").first().waitFor();
  await shot(page, "search");

  // --- Delete with confirmation, narrow window ----------------------------------------------
  await page.getByRole("link", { name: "Connections", exact: true }).click();
  await page.locator("tr", { hasText: "Wizard Acme" }).getByRole("button", { name: "Delete", exact: true }).click();
  await page.locator("#flash").filter({ hasText: "Deleted Wizard Acme" }).waitFor();
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "connections-narrow");
  await page.setViewportSize({ width: 1280, height: 900 });

  // --- Sign out --------------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(/\/console\/login$/);
  await page.goto(BASE + "/console/jobs");
  assert.match(page.url(), /\/console\/login$/);
  noErrors("the whole run");
  log(`ok: ${shots.length} screenshots in ${ARTIFACTS}`);
} catch (e) {
  try { await page.screenshot({ path: path.join(ARTIFACTS, "failure.png"), fullPage: true }); } catch (_) { /* best effort */ }
  console.error("[console-test] FAILED at", page.url());
  console.error(e);
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
