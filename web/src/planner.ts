// What planners take out of a run: the map by vehicle class, the skims (OMX or CSV), and a
// select-link analysis of the selected link shown as its own map layer.

import type { FeatureCollection, Run } from "./api";
import { TERMINAL } from "./api";
import { byId, h, newKey, shortId } from "./dom";
import { errorText, type Workspace } from "./main";
import { format } from "./palettes";

interface ClassFlows { run_id: string; classes: string[]; flows: Record<string, Record<string, number>> }
interface SelectLinkClass { total_trips: number; top_pairs: { origin: number; destination: number; trips: number }[] }
interface SelectLinkSummary { name: string; links: string[]; classes: Record<string, SelectLinkClass> }

const POLL_MS = 1000;
const WAIT_LIMIT_MS = 15 * 60 * 1000;

export class PlannerPanel {
  /** Each vehicle class's link flows of the shown run (null: none shown). */
  classFlows: ClassFlows | null = null;
  private busy = false;
  /** The run whose class flows are being fetched, and a count of the runs shown: a fetch
   * answered after another run was shown (or the same run again) is dropped. */
  private loading: string | null = null;
  private generation = 0;

  constructor(private readonly workspace: Workspace) {
    byId("link-class").addEventListener("change", () => {
      this.workspace.styling.applyLinks();
      this.renderSelectedFlow();
    });
    byId("skims-omx").addEventListener("click", () => void this.download("omx"));
    byId("skims-csv").addEventListener("click", () => void this.download("csv"));
    byId("select-link-start").addEventListener("click", () => void this.selectLink());
    byId("select-link-clear").addEventListener("click", () => this.clearLayer());
  }

  /** The class chosen for the map ("" = all classes, flows in PCE). */
  get chosenClass(): string {
    return byId<HTMLSelectElement>("link-class").value;
  }

  /** The chosen class's flow per link, or null when all classes are shown. */
  classValues(): Map<string, number> | null {
    const chosen = this.chosenClass;
    const flows = chosen ? this.classFlows?.flows[chosen] : undefined;
    return flows ? new Map(Object.entries(flows)) : null;
  }

  /** A run was opened (or closed): its classes for the map, its skims for download. */
  async runShown(run: Run | null): Promise<void> {
    // Shown again (its poll and its notification both open it), or already being fetched:
    // nothing new to fetch, and a second fetch would list its classes twice.
    if (run && (run.id === this.classFlows?.run_id || run.id === this.loading)) {
      this.selectionChanged();
      return;
    }
    const generation = ++this.generation;
    this.loading = run?.id ?? null;
    this.classFlows = null;
    const select = byId<HTMLSelectElement>("link-class");
    // The same run may be shown again (its poll and its notification both open it): keep
    // the class chosen for it.
    const kept = select.value;
    select.replaceChildren(h("option", { value: "", text: "All classes (PCE)" }));
    byId("link-class-field").hidden = true;
    byId<HTMLButtonElement>("skims-omx").disabled = !run;
    byId<HTMLButtonElement>("skims-csv").disabled = !run;
    this.selectionChanged();
    if (!run) return;
    try {
      const found = await this.workspace.api.get<ClassFlows>(`/v1/simulations/${run.id}/class-flows`);
      if (generation !== this.generation || this.workspace.runs.shown?.id !== run.id) return;
      this.classFlows = found;
      if (found.classes.length > 1 || (found.classes.length === 1 && found.classes[0] !== "all")) {
        select.append(...found.classes.map((name) => h("option", { value: name, text: name })));
        if (found.classes.includes(kept)) select.value = kept;
        byId("link-class-field").hidden = false;
        this.workspace.styling.applyLinks();
      }
    } catch (error) {
      if (generation === this.generation) {
        this.workspace.say(`Could not read the run's class flows: ${errorText(error)}`);
      }
    } finally {
      if (generation === this.generation) this.loading = null;
    }
    this.renderSelectedFlow();
  }

  /** The selection changed: a select-link analysis needs a link and a finished run. */
  selectionChanged(): void {
    const link = this.workspace.selection?.kind === "link" ? this.workspace.selection.id : null;
    const button = byId<HTMLButtonElement>("select-link-start");
    button.disabled = this.busy || !link || !this.workspace.runs.shown;
    button.textContent = link ? `Select-link analysis of link ${link}` : "Select-link analysis (select a link)";
    this.renderSelectedFlow();
  }

  private renderSelectedFlow(): void {
    const box = byId("class-flow");
    const link = this.workspace.selection?.kind === "link" ? this.workspace.selection.id : null;
    const chosen = this.chosenClass;
    const flow = link && chosen ? this.classFlows?.flows[chosen]?.[link] : undefined;
    if (flow === undefined || !link) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(h("p", { "data-link": link, "data-class": chosen, "data-value": flow,
      text: `Link ${link}: ${format(flow)} ${chosen} vehicles/h` }));
  }

  /** Streams the shown run's skims into a file download. */
  private async download(kind: "omx" | "csv"): Promise<void> {
    const run = this.workspace.runs.shown;
    if (!run) return;
    const chosen = this.chosenClass;
    const query = `format=${kind}${chosen && chosen !== "all" ? `&class=${encodeURIComponent(chosen)}` : ""}`;
    try {
      const response = await fetch(`/v1/simulations/${run.id}/skims?${query}`,
        { headers: this.workspace.api.headers({ Accept: "*/*" }) });
      if (!response.ok) throw new Error(`${response.status} ${(await response.text()).slice(0, 200)}`);
      const url = URL.createObjectURL(await response.blob());
      const anchor = h("a", { href: url, download: `skims-${shortId(run.id)}${chosen ? `-${chosen}` : ""}.${kind}` });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
      this.workspace.say(`Skims of run ${shortId(run.id)} downloaded (${kind.toUpperCase()}).`);
    } catch (error) {
      this.workspace.say(`Could not download the skims: ${errorText(error)}`);
    }
  }

  /** Runs the shown run again (same scenario version and parameters) with the selected link
   *  as a select-link selection, then draws the flows of the demand that uses it. */
  private async selectLink(): Promise<void> {
    const run = this.workspace.runs.shown;
    const link = this.workspace.selection?.kind === "link" ? this.workspace.selection.id : null;
    if (!run || !link || this.busy) return;
    const name = `link-${link}`;
    const summary = byId("select-link-summary");
    this.busy = true;
    this.selectionChanged();
    summary.dataset.status = "running";
    summary.replaceChildren(h("p", { text: `Select-link analysis of link ${link}: running…` }));
    try {
      const parameters = { ...run.parameters, select_links: [{ name, links: [link] }] };
      const reply = await this.workspace.api.request<Run>("POST", `/v1/scenarios/${run.scenario_id}/simulations`,
        { model: run.model, parameters, scenario_version: run.scenario_version }, { "Idempotency-Key": newKey() });
      const finished = await this.waitFor(reply.body.id);
      if (finished.status !== "completed") throw new Error(`the analysis run ${finished.status.replace("_", " ")}: ${finished.last_error ?? ""}`);
      const api = this.workspace.api;
      const base = `/v1/simulations/${finished.id}/select-link/${encodeURIComponent(name)}`;
      const [found, layer] = await Promise.all([api.get<SelectLinkSummary>(base), api.get<FeatureCollection>(`${base}/links`)]);
      this.workspace.map?.setSelectLink(layer);
      this.renderSummary(link, finished, found, layer);
      byId("select-link-clear").hidden = false;
    } catch (error) {
      summary.dataset.status = "failed";
      summary.replaceChildren(h("p", { class: "error", text: `Select-link analysis failed: ${errorText(error)}` }));
    } finally {
      this.busy = false;
      this.selectionChanged();
    }
  }

  private async waitFor(id: string): Promise<Run> {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const run = await this.workspace.api.run(id);
      if (TERMINAL.has(run.status) && (run.status !== "completed" || run.finished_at)) return run;
      if (Date.now() > deadline) throw new Error(`run ${shortId(id)} did not finish in 15 minutes`);
      await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
    }
  }

  private renderSummary(link: string, run: Run, found: SelectLinkSummary, layer: FeatureCollection): void {
    const summary = byId("select-link-summary");
    const total = Object.values(found.classes).reduce((sum, c) => sum + c.total_trips, 0);
    summary.dataset.status = "done";
    summary.dataset.run = run.id;
    summary.dataset.total = String(total);
    summary.dataset.features = String(layer.features.length);
    const rows = Object.entries(found.classes).map(([name, c]) => h("li", { "data-class": name, "data-value": c.total_trips },
      `${name}: ${format(c.total_trips)} trips; top pairs ${c.top_pairs.slice(0, 3)
        .map((p) => `${p.origin}→${p.destination} (${format(p.trips)})`).join(", ") || "none"}`));
    summary.replaceChildren(
      h("p", { text: `Link ${link} carries ${format(total)} trips (run ${shortId(run.id)}); the magenta layer shows where they go, on ${layer.features.length} links.` }),
      h("ul", { class: "select-link-classes" }, ...rows));
  }

  private clearLayer(): void {
    this.workspace.map?.setSelectLink(null);
    byId("select-link-clear").hidden = true;
    const summary = byId("select-link-summary");
    summary.replaceChildren();
    delete summary.dataset.status;
  }
}
