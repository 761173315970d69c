// Comparing two runs: the flow difference map (diverging palette) beside the indicator deltas
// exactly as GET /v1/compare returns them.

import type { Comparison, Run } from "./api";
import { changeBars } from "./charts";
import { byId, h, shortId } from "./dom";
import { errorText, type Workspace } from "./main";
import { format } from "./palettes";

export class ComparePanel {
  active = false;
  result: Comparison | null = null;
  private runA: Run | null = null;
  private runB: Run | null = null;

  constructor(private readonly workspace: Workspace) {
    byId("compare-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.compare(byId<HTMLSelectElement>("compare-a").value, byId<HTMLSelectElement>("compare-b").value);
    });
    byId("compare-clear").addEventListener("click", () => {
      this.leave();
      this.workspace.styling.apply();
      this.workspace.selected.render();
      this.workspace.caption();
    });
  }

  /** The finished runs, in both selects (A defaults to the oldest, B to the newest). */
  renderOptions(): void {
    const runs = [...this.workspace.runs.known.values()].filter((run) => run.status === "completed")
      .sort((a, b) => String(a.requested_at ?? "").localeCompare(String(b.requested_at ?? "")));
    for (const [id, fallback] of [["compare-a", runs[0]?.id], ["compare-b", runs[runs.length - 1]?.id]] as const) {
      const select = byId<HTMLSelectElement>(id);
      const keep = select.value || fallback;
      select.replaceChildren(...runs.map((run) => h("option", { value: run.id, text: this.workspace.runs.label(run),
        selected: run.id === keep })));
    }
  }

  caption(): string {
    return this.runA && this.runB
      ? `B ${this.workspace.runs.label(this.runB)} − A ${this.workspace.runs.label(this.runA)}` : "";
  }

  leave(): void {
    this.active = false;
    this.result = null;
    byId("compare-result").replaceChildren();
    byId("compare-clear").hidden = true;
    delete byId("main").dataset.comparing;
  }

  async compare(a: string, b: string): Promise<void> {
    if (!a || !b) return;
    const api = this.workspace.api;
    try {
      const [result, runA, runB] = await Promise.all([api.compare(a, b, byId<HTMLInputElement>("compare-noise").checked), api.run(a), api.run(b)]);
      this.runA = runA;
      this.runB = runB;
      // The difference is drawn on B's scenario (where a closed link is shown closed).
      if (this.workspace.scenario?.id !== runB.scenario_id) await this.workspace.openScenario(runB.scenario_id, true);
      this.result = result;
      this.active = true;
      byId("compare-clear").hidden = false;
      byId("main").dataset.comparing = `${a}:${b}`;
      this.render(result);
      this.workspace.styling.apply();
      this.workspace.selected.render();
      this.workspace.caption();
      this.workspace.say("Comparison ready: the map shows the flow difference B − A.");
    } catch (error) {
      this.workspace.say(`Could not compare: ${errorText(error)}`);
    }
  }

  private render(result: Comparison): void {
    const rows = result.indicators.map((indicator) => ({
      indicator,
      percent: indicator.value_a && indicator.difference !== null
        ? (indicator.difference / Math.abs(indicator.value_a)) * 100 : null,
    }));
    const table = h("table", { class: "indicators deltas" },
      h("caption", { text: "Indicator deltas (B − A)" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "Indicator" }), h("th", { scope: "col", text: "A" }),
        h("th", { scope: "col", text: "B" }), h("th", { scope: "col", text: "B − A" }))),
      h("tbody", {}, ...rows.map(({ indicator, percent }) => h("tr", { "data-indicator": indicator.name },
        h("th", { scope: "row", text: `${indicator.name.replace(/_/g, " ")}${indicator.unit ? ` (${indicator.unit})` : ""}` }),
        cell(indicator.value_a, "a"), cell(indicator.value_b, "b"),
        h("td", { "data-col": "difference", "data-value": indicator.difference ?? "",
          text: indicator.difference === null ? "—"
            : `${indicator.difference > 0 ? "+" : ""}${format(indicator.difference)}${percent !== null ? ` (${percent > 0 ? "+" : ""}${percent.toFixed(1)} %)` : ""}` })))));
    const changed = [...result.links].filter((link) => link.difference !== null)
      .sort((x, y) => Math.abs(y.difference ?? 0) - Math.abs(x.difference ?? 0)).slice(0, 5);
    const list = h("ol", { class: "top-links" }, ...changed.map((link) => {
      const button = h("button", { type: "button", class: "link-button", "data-link": link.link_id },
        `Link ${link.link_id}: ${format(link.flow_a ?? 0)} → ${format(link.flow_b ?? 0)} veh/h`);
      button.addEventListener("click", () => this.workspace.selected.selectById("link", link.link_id));
      return h("li", {}, button);
    }));
    byId("compare-result").replaceChildren(
      h("p", { text: `B = run ${shortId(result.b)}, A = run ${shortId(result.a)}.` }),
      h("p", { id: "compare-significance", "data-significant": result.significant_links,
        "data-noise": result.links_within_noise,
        text: `${result.significant_links} link changes beyond convergence noise; ${result.links_within_noise} within it ` +
          `(relative gaps ${gapText(result.relative_gap_a)} and ${gapText(result.relative_gap_b)})` +
          `${byId<HTMLInputElement>("compare-noise").checked ? ", all shown" : ", hidden"}.` }),
      table,
      h("h4", { text: "Relative change of each indicator" }),
      changeBars(rows.map(({ indicator, percent }) => ({ name: indicator.name.replace(/_/g, " "), percent })),
        `Relative change per indicator: ${rows.map(({ indicator, percent }) => `${indicator.name} ${percent === null ? "n/a" : `${percent.toFixed(1)}%`}`).join("; ")}`),
      h("h4", { text: "Links that changed most" }), list);
  }
}

function gapText(gap: number | null): string {
  return gap === null ? "not reported" : gap.toExponential(1);
}

function cell(value: number | null, column: string): HTMLElement {
  return h("td", { "data-col": column, "data-value": value ?? "", text: value === null ? "—" : format(value) });
}
