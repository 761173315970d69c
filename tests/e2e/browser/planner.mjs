// A planner's outputs in a real browser (Debian's chromium driven by playwright-core): a
// scenario with two vehicle classes is simulated, the map is coloured by the truck class, the
// truck skims are downloaded, and a select-link analysis of a clicked link is drawn as a layer.
// Driven by test_planner.py, which checks the JSON report this writes against the API.
//
// env: BASE_URL, EDITOR_TOKEN, SCENARIO (its name), LINK (the link to analyse), SHOTS, REPORT,
//      PROFILE, FAILURES, DOWNLOADS.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const { BASE_URL, EDITOR_TOKEN, SCENARIO, LINK, SHOTS, REPORT, PROFILE, DOWNLOADS } = process.env;
const RUN_TIMEOUT = Number(process.env.RUN_TIMEOUT_MS ?? 150_000);
const report = { steps: [], console_errors: [] };

const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  acceptDownloads: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1360, height: 860 },
});

let failure = null;
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (message) => { if (message.type() === "error") report.console_errors.push(message.text()); });
  await page.goto(BASE_URL);
  await page.getByLabel(/Access token/).fill(EDITOR_TOKEN);
  await page.getByRole("button", { name: "Sign in with this token" }).click();
  await page.waitForSelector("#workspace:not([hidden])");
  await page.locator(`#scenario-list button[data-scenario="${SCENARIO}"]`).click();
  await page.waitForSelector(`#main[data-scenario="${SCENARIO}"]`);
  report.steps.push("opened");

  // 1. Simulate; the finished run offers its classes for the map.
  await page.getByRole("button", { name: "Run simulation on this version" }).click();
  await page.waitForFunction(() => document.querySelector("#run-details")?.dataset.runStatus === "completed",
    null, { timeout: RUN_TIMEOUT });
  report.run = await page.locator("#run-details").getAttribute("data-run");
  await page.waitForSelector("#link-class-field:not([hidden])");
  report.classes = await page.locator("#link-class option").evaluateAll((options) => options.map((o) => o.value));
  report.steps.push("simulated");

  // 2. Colour by trucks and read the selected link's truck flow.
  await page.getByLabel("Vehicle class (flow)").selectOption("truck");
  await page.getByLabel("Kind").selectOption("link");
  await page.getByLabel("Id", { exact: true }).fill(LINK);
  await page.getByRole("button", { name: "Select", exact: true }).click();
  await page.waitForSelector(`#class-flow p[data-class="truck"][data-link="${LINK}"]`);
  report.truck_flow = Number(await page.locator("#class-flow p").getAttribute("data-value"));
  report.legend = await page.locator("#legend-links").textContent();
  report.steps.push("coloured by trucks");

  // 3. The truck skims as an OMX file.
  const [download] = await Promise.all([page.waitForEvent("download"),
    page.getByRole("button", { name: "Download skims (OMX)" }).click()]);
  report.skims_name = download.suggestedFilename();
  report.skims_file = join(DOWNLOADS, report.skims_name);
  await download.saveAs(report.skims_file);
  report.steps.push("skims downloaded");

  // 4. A select-link analysis of the selected link, drawn as its own layer.
  await page.getByRole("button", { name: `Select-link analysis of link ${LINK}` }).click();
  await page.waitForFunction(() => ["done", "failed"].includes(document.querySelector("#select-link-summary")?.dataset.status ?? ""),
    null, { timeout: RUN_TIMEOUT });
  const summary = page.locator("#select-link-summary");
  report.select_link_status = await summary.getAttribute("data-status");
  report.select_link_text = await summary.textContent();
  report.select_link_run = await summary.getAttribute("data-run");
  report.select_link_total = Number(await summary.getAttribute("data-total"));
  report.select_link_features = Number(await summary.getAttribute("data-features"));
  await page.waitForTimeout(800);
  await page.screenshot({ path: join(SHOTS, "planner-select-link.png") });
  report.steps.push("select-link drawn");
} catch (error) {
  failure = error;
  report.error = String(error?.stack ?? error);
  for (const [index, page] of context.pages().entries()) {
    await page.screenshot({ path: join(process.env.FAILURES ?? SHOTS, `failure-${index}.png`) }).catch(() => {});
  }
} finally {
  writeFileSync(REPORT, JSON.stringify(report, null, 2));
  await context.close();
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
