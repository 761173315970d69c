// Review of a fork: propose merging it into its parent, review as another user, settle
// conflicts, merge, and read the request's trail. Merge requests of the open scenario
// (from it or into it) are listed; one is shown at a time.

import { ApiError, type EditRecord, type MergeRequest } from "./api";
import { byId, h, shortId, when } from "./dom";
import { errorText, type Workspace } from "./main";
import { format } from "./palettes";

export class ReviewPanel {
  private shown: MergeRequest | null = null;

  constructor(private readonly workspace: Workspace) {
    byId("mr-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.propose(byId<HTMLInputElement>("mr-title").value.trim());
    });
  }

  /** Lists the open scenario's merge requests; offers a proposal when it is a fork. */
  async load(): Promise<void> {
    const scenario = this.workspace.scenario;
    byId("mr-form").hidden = !scenario?.fork_of;
    const list = byId("mr-list");
    if (!scenario) return;
    try {
      const requests = await this.workspace.api.mergeRequests(scenario.id);
      list.replaceChildren(...requests.map((request) => {
        const button = h("button", { type: "button", class: "link-button", "data-mr": request.id },
          `${request.title} · ${request.status}${request.verdict ? ` (${request.verdict.replace("_", " ")})` : ""}`);
        button.addEventListener("click", () => void this.open(request.id));
        return h("li", {}, button);
      }));
      if (!requests.length) list.replaceChildren(h("li", { class: "hint", text: "No merge request." }));
    } catch (error) {
      list.replaceChildren(h("li", { class: "error", text: `Merge requests unavailable: ${errorText(error)}` }));
    }
  }

  private async propose(title: string): Promise<void> {
    const scenario = this.workspace.scenario;
    if (!scenario || !title) return;
    try {
      const request = await this.workspace.api.propose(scenario.id, title);
      this.workspace.say(`Merge request “${request.title}” opened.`);
      this.render(request);
      await this.load();
    } catch (error) {
      this.workspace.say(`Could not open the merge request: ${errorText(error)}`);
    }
  }

  async open(id: string): Promise<void> {
    try {
      this.render(await this.workspace.api.mergeRequest(id));
    } catch (error) {
      this.workspace.say(`Could not open the merge request: ${errorText(error)}`);
    }
  }

  private async act(action: string, body: unknown, done: string): Promise<void> {
    if (!this.shown) return;
    try {
      const request = await this.workspace.api.step(this.shown.id, action, body);
      this.render(request);
      this.workspace.say(done);
      if (request.status === "merged") {
        this.workspace.say(`Merged into the parent as version ${request.merged_version}.`);
        await this.workspace.refreshScenarios();
        await this.workspace.openScenario(request.parent_id);
        this.render(request);
      }
    } catch (error) {
      const detail = error instanceof ApiError && error.problem.problems?.length
        ? `${errorText(error)} (${error.problem.problems.join("; ")})` : errorText(error);
      byId("mr-error").textContent = detail;
    }
  }

  private render(request: MergeRequest): void {
    this.shown = request;
    byId("mr-error").textContent = "";
    const box = byId("mr-details");
    box.dataset.mr = request.id;
    box.dataset.status = request.status;
    box.replaceChildren(
      h("h3", { text: request.title }),
      h("p", { text: `By ${request.author} · ${request.status}` +
        (request.verdict ? ` · ${request.verdict.replace("_", " ")}` : "") +
        (request.merged_version ? ` · parent version ${request.merged_version}` : "") }),
      h("h4", { text: `Edits (${request.edits.length})` }),
      h("ul", { class: "edits" }, ...request.edits.map((e) => h("li", { text: describe(e) }))),
      ...this.conflicts(request), ...comparison(request), ...this.reviewForm(request),
      h("h4", { text: "Trail" }),
      h("ol", { class: "trail" }, ...request.trail.map((step) =>
        h("li", { "data-step": step.type, text: `${step.type} by ${step.actor}, ${when(step.occurred_at)}` }))));
  }

  private conflicts(request: MergeRequest): HTMLElement[] {
    if (!request.conflicts.length) return [];
    return [h("h4", { text: "Conflicts" }), h("ul", { class: "conflicts" }, ...request.conflicts.map((c) => {
      const take = (side: string): HTMLElement => {
        const button = h("button", { type: "button", "data-take": side, "data-subject": c.subject }, `Take ${side}'s`);
        button.addEventListener("click", () => void this.act("resolutions", { subject: c.subject, take: side },
          `Conflict on ${c.subject}: taking the ${side}'s edits.`));
        return button;
      };
      return h("li", {}, `${c.subject}: ${c.resolution ? `${c.resolution}'s edits taken` : "unresolved"} `,
        request.status === "open" ? take("fork") : null, request.status === "open" ? take("parent") : null);
    }))];
  }

  private reviewForm(request: MergeRequest): HTMLElement[] {
    if (request.status !== "open") return [];
    const comment = h("textarea", { id: "mr-comment", rows: 2, "aria-label": "Review comment" });
    const verdict = (value: string, label: string): HTMLElement => {
      const button = h("button", { type: "button", id: `mr-${value}` }, label);
      button.addEventListener("click", () => void this.act("reviews",
        { verdict: value, comment: (comment as HTMLTextAreaElement).value }, `Review recorded: ${label}.`));
      return button;
    };
    const merge = h("button", { type: "button", id: "mr-merge" }, "Merge into parent");
    merge.addEventListener("click", () => void this.act("merge", undefined, "Merged."));
    return [h("h4", { text: "Review" }), comment,
      h("div", { class: "buttons" }, verdict("approved", "Approve"), verdict("changes_requested", "Request changes"), merge),
      ...request.reviews.map((r) => h("p", { class: "review", text: `${r.reviewer}: ${r.verdict.replace("_", " ")}${r.comment ? ` — ${r.comment}` : ""}` }))];
  }
}

function describe(edit: EditRecord): string {
  return `v${edit.version} ${edit.type} on ${edit.subject} by ${edit.actor}`;
}

function comparison(request: MergeRequest): HTMLElement[] {
  const found = request.comparison;
  if (!found) return [h("p", { class: "hint", text: "No comparison: parent and fork both need a completed run." })];
  const links = found.links.slice(0, 5).map((link) =>
    `link ${link.link_id} ${link.difference !== null && link.difference >= 0 ? "+" : ""}${format(link.difference ?? 0)}`);
  return [h("h4", { text: `Latest runs: ${shortId(found.a)} (parent) → ${shortId(found.b)} (fork)` }),
    h("p", { "data-significant": found.significant_links, text: `${found.significant_links} links changed beyond convergence noise` +
      (links.length ? ` (largest: ${links.join(", ")})` : "") + "." }),
    h("table", { class: "indicators" }, h("tbody", {}, ...found.indicators.map((row) => h("tr", {},
      h("th", { scope: "row", text: row.name.replace(/_/g, " ") }),
      h("td", { text: row.difference === null ? "—" : `${row.difference >= 0 ? "+" : ""}${format(row.difference)} ${row.unit}` })))))];
}
