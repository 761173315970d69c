// Review of a fork in a real browser (Debian's chromium driven by playwright-core): the
// author proposes merging the fork into Baseline, cannot approve it, another user approves
// and merges, and the page shows the parent's new version and the request's trail.
// Driven by test_review.py, which checks the JSON report this writes against the API.
//
// env: BASE_URL, AUTHOR_TOKEN, REVIEWER_TOKEN, FORK (its name), PARENT (its name), SHOTS,
//      REPORT, PROFILE, FAILURES.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const { BASE_URL, AUTHOR_TOKEN, REVIEWER_TOKEN, FORK, PARENT, SHOTS, REPORT, PROFILE } = process.env;
const report = { steps: [], console_errors: [] };

const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1360, height: 860 },
});

/** A new tab (its own sessionStorage, so its own sign-in) signed in with `token`. */
async function signedIn(token) {
  const page = await context.newPage();
  page.on("console", (message) => { if (message.type() === "error") report.console_errors.push(message.text()); });
  await page.goto(BASE_URL);
  await page.getByLabel(/Access token/).fill(token);
  await page.getByRole("button", { name: "Sign in with this token" }).click();
  await page.waitForSelector("#workspace:not([hidden])");
  return page;
}

async function openScenario(page, name) {
  await page.locator(`#scenario-list button[data-scenario="${name}"]`).click();
  await page.waitForSelector(`#main[data-scenario="${name}"]`);
}

const steps = (page) => page.locator("#mr-details li[data-step]").evaluateAll((items) => items.map((item) => item.dataset.step));

let failure = null;
try {
  // 1. The author opens the fork and proposes merging it into its parent.
  const author = await signedIn(AUTHOR_TOKEN);
  await openScenario(author, FORK);
  await author.getByLabel(/Propose merging this fork/).fill("Wider link from the fork");
  await author.getByRole("button", { name: "Propose", exact: true }).click();
  await author.waitForSelector('#mr-details[data-status="open"]');
  report.merge_request = await author.locator("#mr-details").getAttribute("data-mr");
  report.edits_listed = await author.locator("#mr-details ul.edits li").count();
  report.steps.push("proposed");

  // 2. The author may not approve their own request.
  await author.getByRole("button", { name: "Approve" }).click();
  await author.waitForFunction(() => document.querySelector("#mr-error")?.textContent);
  report.self_approval_error = await author.locator("#mr-error").textContent();
  report.steps.push("self-approval refused");

  // 3. Another user finds it on the parent, approves with a comment and merges.
  const reviewer = await signedIn(REVIEWER_TOKEN);
  await openScenario(reviewer, PARENT);
  report.parent_version_before = Number(await reviewer.locator("#main").getAttribute("data-scenario-version"));
  await reviewer.locator(`#mr-list button[data-mr="${report.merge_request}"]`).click();
  await reviewer.waitForSelector(`#mr-details[data-mr="${report.merge_request}"]`);
  await reviewer.getByLabel("Review comment").fill("Checked against the base run");
  await reviewer.getByRole("button", { name: "Approve" }).click();
  await reviewer.waitForSelector('#mr-details li[data-step="Reviewed"]');
  report.steps.push("approved");
  await reviewer.getByRole("button", { name: "Merge into parent" }).click();
  await reviewer.waitForSelector('#mr-details[data-status="merged"]');
  await reviewer.waitForFunction((before) =>
    Number(document.querySelector("#main")?.dataset.scenarioVersion) > before, report.parent_version_before);
  report.shown_scenario = await reviewer.locator("#main").getAttribute("data-scenario");
  report.parent_version_after = Number(await reviewer.locator("#main").getAttribute("data-scenario-version"));
  report.trail = await steps(reviewer);
  report.status = await reviewer.locator("#status").textContent();
  report.steps.push("merged");
  await reviewer.screenshot({ path: join(SHOTS, "merge-request-merged.png") });
} catch (error) {
  failure = error;
  report.error = String(error?.stack ?? error);
  for (const [index, page] of context.pages().entries()) {
    await page.screenshot({ path: join(process.env.FAILURES ?? SHOTS, `review-failure-${index}.png`) }).catch(() => {});
  }
} finally {
  writeFileSync(REPORT, JSON.stringify(report, null, 2));
  await context.close();
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
