// The map workspace in a real browser (Debian's chromium driven by playwright-core), against
// the running stack with the demo tenant. Driven by test_workspace.py, which reads the JSON
// report this writes and checks it against the API.
//
// env: BASE_URL (http://demo.localhost:PORT/), EDITOR_TOKEN, OTHER_TOKEN (another tenant's),
//      SHOTS (screenshot folder), REPORT (JSON file written at the end), PROFILE (empty folder),
//      IMPORT_FILE (a GMNS zip to import), DOWNLOADS (folder for the downloaded GeoPackage).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const { BASE_URL, EDITOR_TOKEN, OTHER_TOKEN, SHOTS, REPORT, PROFILE, IMPORT_FILE, DOWNLOADS } = process.env;
const RUN_TIMEOUT = Number(process.env.RUN_TIMEOUT_MS ?? 150_000);
const report = { steps: [], console_errors: [] };
const started = Date.now();

function step(name, extra = {}) {
  const entry = { name, at_s: Number(((Date.now() - started) / 1000).toFixed(1)), ...extra };
  report.steps.push(entry);
  console.log(`[${entry.at_s}s] ${name}`, Object.keys(extra).length ? JSON.stringify(extra) : "");
}

const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1360, height: 860 },
});

async function signIn(page, token) {
  await page.goto(BASE_URL);
  await page.getByLabel(/Access token/).fill(token);
  await page.getByRole("button", { name: "Sign in with this token" }).click();
}

async function openScenario(page, name) {
  await page.locator(`#scenario-list button[data-scenario="${name}"]`).click();
  await page.waitForSelector(`#main[data-scenario="${name}"]`);
}

async function runSimulation(page) {
  const before = await page.locator("#run-details").getAttribute("data-run");
  await page.getByRole("button", { name: "Run simulation on this version" }).click();
  await page.waitForFunction((previous) => {
    const details = document.querySelector("#run-details");
    return details?.dataset.run && details.dataset.run !== previous && details.dataset.runStatus === "completed";
  }, before, { timeout: RUN_TIMEOUT });
  return await page.locator("#run-details").getAttribute("data-run");
}

async function linksDrawn(page) {
  await page.waitForFunction(() => Number(document.querySelector("#map")?.dataset.linksDrawn ?? 0) > 0, null, { timeout: 30_000 });
  return Number(await page.locator("#map").getAttribute("data-links-drawn"));
}

async function selectLink(page, id) {
  await page.getByLabel("Kind").selectOption("link");
  await page.getByLabel("Id", { exact: true }).fill(id);
  await page.getByRole("button", { name: "Select", exact: true }).click();
  await page.waitForSelector(`#selection dl[data-kind="link"][data-id="${id}"]`);
}

/** A selected feature's value: the exact number behind the formatted text where there is one. */
async function field(page, name) {
  const cell = page.locator(`#selection dd[data-field="${name}"]`);
  const raw = await cell.getAttribute("data-value");
  return raw !== null && raw !== "" ? Number(raw) : (await cell.textContent())?.trim();
}

async function waitIdle(page) {
  // The map has drawn what it has (MapLibre "idle" updates data-links-drawn); give it a frame.
  await page.waitForTimeout(600);
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

let failure = null;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (message) => { if (message.type() === "error") report.console_errors.push(message.text()); });

  // 1. Sign in with a dev token; the Baseline network is drawn from /v1/tiles.
  const tileRequests = [];
  page.on("response", (response) => { if (response.url().includes("/v1/tiles/")) tileRequests.push(response.status()); });
  await signIn(page, EDITOR_TOKEN);
  await page.waitForSelector("#workspace:not([hidden])");
  await page.waitForSelector('#main[data-scenario="Baseline"]');
  report.links_drawn = await linksDrawn(page);
  report.tile_statuses = [...new Set(tileRequests)];
  step("signed in, network drawn", { links_drawn: report.links_drawn });

  // 2. Run the baseline; the map colours links by flow.
  report.baseline_run = await runSimulation(page);
  await page.waitForSelector("#legend-links:not([hidden])");
  report.baseline_legend = (await page.locator("#legend-links h3").textContent())?.trim();
  report.loaded_link = await page.locator(".top-links button[data-link]").first().getAttribute("data-link");
  await selectLink(page, report.loaded_link);
  report.loaded_link_baseline_flow = await field(page, "flow");
  await waitIdle(page);
  await page.screenshot({ path: join(SHOTS, "baseline-map.png") });
  step("baseline run finished", { run: report.baseline_run, loaded_link: report.loaded_link,
    flow: report.loaded_link_baseline_flow });

  // 3. Fork, close the loaded link (If-Match on the fork's version), run the fork.
  const forkName = `Link ${report.loaded_link} closed #${Math.floor(Math.random() * 1e4)}`;
  await page.getByLabel("Fork the open scenario as").fill(forkName);
  await page.getByRole("button", { name: "Fork", exact: true }).click();
  await page.waitForSelector(`#main[data-scenario="${forkName}"]`);
  await linksDrawn(page);
  await selectLink(page, report.loaded_link);
  await page.getByRole("button", { name: "Close link" }).click();
  await page.waitForSelector(`#main[data-scenario="${forkName}"][data-scenario-version="2"]`);
  await page.waitForFunction(() => document.querySelector('#selection dd[data-field="state"]')?.textContent === "closed");
  report.fork_version_after_close = 2;
  step("fork created, link closed", { fork: forkName });
  report.fork_run = await runSimulation(page);
  step("fork run finished", { run: report.fork_run });

  // 4. Compare baseline (A) with the fork (B): difference map and indicator deltas.
  await page.getByLabel("Run A (before)").selectOption(report.baseline_run);
  await page.getByLabel("Run B (after)").selectOption(report.fork_run);
  await page.getByRole("button", { name: "Compare", exact: true }).click();
  await page.waitForSelector("#main[data-comparing]");
  await page.waitForSelector("#compare-result table tr[data-indicator]");
  await selectLink(page, report.loaded_link);
  report.closed_link_flow_a = await field(page, "flow_a");
  report.closed_link_flow_b = await field(page, "flow_b");
  report.comparison_legend = (await page.locator("#legend-links h3").textContent())?.trim();
  report.ui_deltas = await page.$$eval("#compare-result table tr[data-indicator]", (rows) => rows.map((row) => {
    const value = (column) => {
      const text = row.querySelector(`td[data-col="${column}"]`)?.getAttribute("data-value") ?? "";
      return text === "" ? null : Number(text);
    };
    return { name: row.getAttribute("data-indicator"), value_a: value("a"), value_b: value("b"),
      difference: value("difference"), shown: row.querySelector('td[data-col="difference"]')?.textContent };
  }));
  await page.locator("#compare-result").scrollIntoViewIfNeeded();
  await waitIdle(page);
  await page.screenshot({ path: join(SHOTS, "comparison-map.png") });
  step("comparison shown", { flow_b: report.closed_link_flow_b, indicators: report.ui_deltas.length });

  // 4b. Why did the closed link change: the closure, then (after "Run select-link") the OD
  //     pairs that used it in A, from the companion runs the button requests.
  await page.getByRole("button", { name: "Why did this link change?" }).click();
  await page.waitForSelector("#why ul.edits li[data-subject]");
  report.why_subjects = await page.$$eval("#why ul.edits li", (items) => items.map((li) => li.getAttribute("data-subject")));
  await page.getByRole("button", { name: "Run select-link for this link" }).click();
  await page.waitForSelector("#why table.od-pairs tr[data-od]", { timeout: 120_000 });
  report.why_pairs = await page.$$eval("#why table.od-pairs tr[data-od]", (rows) => rows.map((row) => row.getAttribute("data-od")));
  step("why shown", { subjects: report.why_subjects, pairs: report.why_pairs.length });

  // 5. A stale edit: a second tab edits the fork first; this tab's edit is refused (412),
  //    the message says so, the edit is kept and applies on the new version.
  const other = await context.newPage();
  await signIn(other, EDITOR_TOKEN);
  await other.waitForSelector("#workspace:not([hidden])");
  await openScenario(other, forkName);
  await page.getByRole("button", { name: "Back to the scenario map" }).click();
  await page.getByLabel("Kind").selectOption("zone");
  await page.getByLabel("Id", { exact: true }).fill("1");
  await page.getByRole("button", { name: "Select", exact: true }).click();
  await page.waitForSelector('#selection dl[data-kind="zone"][data-id="1"]');
  await other.getByLabel("Kind").selectOption("zone");
  await other.getByLabel("Id", { exact: true }).fill("2");
  await other.getByRole("button", { name: "Select", exact: true }).click();
  await other.waitForSelector('#selection dl[data-kind="zone"][data-id="2"]');
  await other.getByLabel("Jobs").fill("12345");
  await other.locator("#zone-edit").getByRole("button", { name: "Apply changes" }).click();
  await other.waitForSelector('#main[data-scenario-version="3"]');
  await page.getByLabel("Population").fill("4321");
  await page.locator("#zone-edit").getByRole("button", { name: "Apply changes" }).click();
  await page.waitForSelector("#conflict:not([hidden])");
  report.conflict_message = (await page.locator("#conflict-text").textContent())?.trim();
  await linksDrawn(page);
  await waitIdle(page);
  await page.screenshot({ path: join(SHOTS, "stale-edit.png") });
  await page.getByRole("button", { name: "Apply my edit again on the new version" }).click();
  await page.waitForSelector('#main[data-scenario-version="4"]');
  await page.waitForSelector("#conflict[hidden]", { state: "attached" });
  report.after_retry_population = await field(page, "population");
  await other.close();
  step("stale edit shown and re-applied", { population: report.after_retry_population });

  // 6. 360 px wide: no sideways scrolling, the map and the controls are there.
  const narrow = await context.newPage();
  await narrow.setViewportSize({ width: 360, height: 740 });
  await signIn(narrow, EDITOR_TOKEN);
  await narrow.waitForSelector("#workspace:not([hidden])");
  await linksDrawn(narrow);
  report.narrow = await narrow.evaluate(() => ({
    scroll_width: document.documentElement.scrollWidth,
    map_width: document.querySelector("#map").getBoundingClientRect().width,
    run_button_visible: !!document.querySelector("#run-start").offsetParent,
  }));
  await waitIdle(narrow);
  await narrow.screenshot({ path: join(SHOTS, "narrow-360.png") });
  report.unlabelled_controls = await narrow.evaluate(() => [...document.querySelectorAll("input, select, textarea")]
    .filter((control) => control.type !== "hidden" && !control.labels?.length && !control.getAttribute("aria-label"))
    .map((control) => control.id || control.outerHTML.slice(0, 60)));
  // Keyboard: Tab from the top reaches the scenario list and the run button.
  await narrow.keyboard.press("Tab");
  const reached = new Set();
  for (let i = 0; i < 40; i += 1) {
    await narrow.keyboard.press("Tab");
    reached.add(await narrow.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute("data-scenario") || document.activeElement?.tagName));
  }
  report.keyboard_reached = [...reached];
  await narrow.close();
  step("narrow layout checked", report.narrow);

  // 7. Another tenant's token on this tenant's subdomain: "not your workspace", no data.
  const stranger = await context.newPage();
  const strangerData = [];
  stranger.on("response", (response) => {
    if (response.url().includes("/v1/") && response.ok()) strangerData.push(response.url());
  });
  await signIn(stranger, OTHER_TOKEN);
  await stranger.waitForSelector("#denied:not([hidden])");
  report.denied = {
    title: (await stranger.locator("#denied-title").textContent())?.trim(),
    detail: (await stranger.locator("#denied-detail").textContent())?.trim(),
    workspace_hidden: await stranger.locator("#workspace").isHidden(),
    scenario_buttons: await stranger.locator("#scenario-list button").count(),
    body_mentions_baseline: (await stranger.locator("body").innerText()).includes("Baseline"),
    successful_api_calls: strangerData,
  };
  await stranger.screenshot({ path: join(SHOTS, "not-your-workspace.png") });
  // The API says the same when asked directly with that token from this subdomain.
  report.denied.api_status = await stranger.evaluate(async (token) =>
    (await fetch("/v1/scenarios", { headers: { Authorization: `Bearer ${token}` } })).status, OTHER_TOKEN);
  step("other tenant denied", report.denied);

  // 8. Files and GIS: the OGC URL to copy, the baseline run's GeoPackage, a GMNS import.
  await openScenario(page, "Baseline");
  report.ogc_url = await page.locator("#ogc-url").inputValue();
  await page.locator("#run-select").selectOption(report.baseline_run);
  const [download] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("button", { name: "Download", exact: true }).nth(1).click()]);
  report.download_name = download.suggestedFilename();
  await download.saveAs(join(DOWNLOADS, "run.gpkg"));
  const drawnBefore = await page.locator("#map").getAttribute("data-links-drawn");
  await page.locator("#import-file").setInputFiles(IMPORT_FILE);
  await page.locator("#import-name").fill("Imported GMNS");
  await page.getByRole("button", { name: "Import as a new scenario" }).click();
  await page.waitForSelector('#main[data-scenario="Imported GMNS"]');
  await page.waitForFunction((before) => !["0", before].includes(document.querySelector("#map")?.dataset.linksDrawn ?? "0"),
    drawnBefore, { timeout: 30_000 });
  report.imported_links_drawn = await linksDrawn(page);
  step("files: OGC URL, GeoPackage downloaded, GMNS imported", { download: report.download_name });
} catch (error) {
  failure = error;
  report.error = String(error?.stack ?? error);
  for (const [index, page] of context.pages().entries()) {
    await page.screenshot({ path: join(process.env.FAILURES ?? SHOTS, `failure-${index}.png`) }).catch(() => {});
  }
} finally {
  report.duration_s = Number(((Date.now() - started) / 1000).toFixed(1));
  writeFileSync(REPORT, JSON.stringify(report, null, 2));
  await context.close();
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
