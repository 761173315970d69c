// Simulation runs: start one, follow its progress live, open a finished run (links map,
// indicators with small charts, attempts and errors).

import { type Indicator, type Run, type Scenario, TERMINAL } from "./api";
import { classHistogram, sparkline } from "./charts";
import { byId, h, newKey, shortId, when } from "./dom";
import { errorText, type Workspace } from "./main";
import { format, volumeCapacityClasses } from "./palettes";

const POLL_MS = 1000;

export class RunsPanel {
  /** The run whose results colour the map. */
  shown: Run | null = null;
  linkResults = new Map<string, Record<string, unknown>>();
  zoneResults = new Map<string, Record<string, unknown>>();
  /** Every run this workspace knows of (for the comparison), newest first. */
  known = new Map<string, Run>();
  private watched = new Map<string, { timer: number; gaps: number[] }>();

  constructor(private readonly workspace: Workspace) {
    byId("run-start").addEventListener("click", () => void this.start());
    byId("run-cancel").addEventListener("click", () => void this.cancel());
    byId("run-select").addEventListener("change", () => {
      const id = byId<HTMLSelectElement>("run-select").value;
      void (id ? this.show(id) : this.hide());
    });
  }

  /** Loads the tenant's run history from the API; shows the newest finished run of `scenario` if asked. */
  async loadFor(scenario: Scenario, showLatest: boolean): Promise<void> {
    try {
      const [recent, own] = await Promise.all([this.workspace.api.runs(), this.workspace.api.runs(scenario.id)]);
      for (const run of [...recent, ...own]) this.known.set(run.id, run);
    } catch (error) {
      this.workspace.say(`Could not list the runs: ${errorText(error)}`);
    }
    for (const run of this.known.values()) if (!TERMINAL.has(run.status)) this.watch(run.id);
    this.renderSelect();
    this.workspace.compare.renderOptions();
    const own = this.ofScenario(scenario.id);
    if (showLatest) {
      const latest = own.find((run) => run.status === "completed");
      if (latest) await this.show(latest.id);
      else this.hide();
    } else if (this.shown && this.shown.scenario_id !== scenario.id) {
      this.hide();
    }
  }

  ofScenario(scenarioId: string): Run[] {
    return [...this.known.values()].filter((run) => run.scenario_id === scenarioId)
      .sort((a, b) => String(b.requested_at ?? "").localeCompare(String(a.requested_at ?? "")));
  }

  label(run: Run): string {
    const scenario = this.workspace.scenarios.find((s) => s.id === run.scenario_id);
    return `${scenario?.name ?? shortId(run.scenario_id)} v${run.scenario_version} · run ${shortId(run.id)} · ${run.status}`;
  }

  private renderSelect(): void {
    const select = byId<HTMLSelectElement>("run-select");
    const scenario = this.workspace.scenario;
    const runs = scenario ? this.ofScenario(scenario.id) : [];
    select.replaceChildren(h("option", { value: "", text: runs.length ? "(no run)" : "(no run yet)" }),
      ...runs.map((run) => h("option", { value: run.id, text: this.label(run),
        selected: run.id === this.shown?.id, disabled: run.status !== "completed" })));
  }

  async start(): Promise<void> {
    const scenario = this.workspace.scenario;
    if (!scenario) return;
    const button = byId<HTMLButtonElement>("run-start");
    button.disabled = true;
    try {
      const run = await this.workspace.api.simulate(scenario.id, this.workspace.version, newKey());
      this.known.set(run.id, run);
      this.workspace.say(`Simulation ${shortId(run.id)} requested on “${scenario.name}” v${run.scenario_version}.`);
      this.renderSelect();
      this.watch(run.id);
    } catch (error) {
      this.workspace.say(`Could not start the simulation: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }

  private async cancel(): Promise<void> {
    const running = [...this.watched.keys()][0];
    if (!running) return;
    try {
      await this.workspace.api.cancel(running);
      await this.refresh(running);
    } catch (error) {
      this.workspace.say(`Could not cancel: ${errorText(error)}`);
    }
  }

  /** Follows a run: notifications (SSE) wake it up at once, a 1 s poll reads its progress. */
  watch(id: string): void {
    if (this.watched.has(id)) return;
    const timer = window.setInterval(() => void this.refresh(id), POLL_MS);
    this.watched.set(id, { timer, gaps: [] });
    void this.refresh(id);
  }

  stopWatching(): void {
    for (const { timer } of this.watched.values()) clearInterval(timer);
    this.watched.clear();
    byId("run-progress").hidden = true;
    byId("run-cancel").hidden = true;
  }

  async notified(runId: string, title: string): Promise<void> {
    if (this.known.has(runId) || this.watched.has(runId)) {
      this.workspace.say(`${title}: run ${shortId(runId)}.`);
      await this.refresh(runId);
    }
  }

  private async refresh(id: string): Promise<void> {
    let run: Run;
    try {
      run = await this.workspace.api.run(id);
    } catch {
      return;
    }
    this.known.set(id, run);
    const watching = this.watched.get(id);
    if (watching && typeof run.progress.relative_gap === "number") {
      const gaps = watching.gaps;
      if (gaps[gaps.length - 1] !== run.progress.relative_gap) gaps.push(run.progress.relative_gap);
    }
    this.renderProgress(run, watching?.gaps ?? []);
    if (!TERMINAL.has(run.status)) return;
    if (watching) clearInterval(watching.timer);
    this.watched.delete(id);
    byId("run-progress").hidden = this.watched.size === 0 ? true : byId("run-progress").hidden;
    byId("run-cancel").hidden = this.watched.size === 0;
    this.renderSelect();
    this.workspace.compare.renderOptions();
    if (run.status === "completed") {
      const detail = run.status_detail ? ` (${run.status_detail})` : "";
      this.workspace.say(`Simulation ${shortId(id)} finished in ${format(run.duration_s ?? 0)} s${detail}.`);
      if (run.scenario_id === this.workspace.scenario?.id) await this.show(id);
    } else {
      this.workspace.say(`Simulation ${shortId(id)} ${run.status.replace("_", " ")}: ${run.last_error ?? "no error recorded"}`);
      if (run.scenario_id === this.workspace.scenario?.id) this.renderDetails(run, [], null);
    }
  }

  private renderProgress(run: Run, gaps: number[]): void {
    const box = byId("run-progress");
    if (TERMINAL.has(run.status)) return;
    box.hidden = false;
    box.dataset.run = run.id;
    box.dataset.status = run.status;
    byId("run-cancel").hidden = false;
    const bar = byId<HTMLProgressElement>("run-progress-bar");
    const gap = run.progress.relative_gap;
    const target = Number(run.parameters.relative_gap ?? run.parameters.gap ?? 1e-4);
    if (typeof gap === "number" && gap > 0) {
      // Progress towards the convergence target, on a log scale (gap 1 → 0 %, target → 100 %).
      bar.value = Math.max(0, Math.min(1, Math.log10(gap) / Math.log10(target)));
    } else {
      bar.removeAttribute("value");
    }
    byId("run-progress-label").textContent = `Run ${shortId(run.id)}: ${run.status}` +
      (run.attempt > 1 ? ` (attempt ${run.attempt} of ${run.attempts_allowed})` : "");
    const text = byId("run-progress-text");
    text.textContent = typeof run.progress.iteration === "number"
      ? `Iteration ${run.progress.iteration}, relative gap ${Number(gap).toExponential(2)}`
      : run.status === "queued" ? "Waiting for a worker…" : "Starting…";
    const chart = sparkline(gaps, "Relative gap per progress report (log scale)", true);
    text.after(chart);
    while (chart.nextSibling) chart.nextSibling.remove();
  }

  hide(): void {
    this.shown = null;
    this.linkResults.clear();
    this.zoneResults.clear();
    byId("run-details").replaceChildren();
    void this.workspace.planner.runShown(null);
    this.renderSelect();
    this.workspace.styling.apply();
    this.workspace.caption();
  }

  /** Opens a run: its status, and if finished its results on the map and its indicators. */
  async show(id: string): Promise<void> {
    const api = this.workspace.api;
    try {
      const run = await api.run(id);
      this.known.set(id, run);
      let indicators: Indicator[] = [];
      if (run.status === "completed") {
        const [found, links, zones] = await Promise.all([
          api.indicators(id), api.resultFeatures(id, "links"), api.resultFeatures(id, "zones")]);
        indicators = found;
        this.linkResults = new Map(links.map((f) => [String(f.properties.link_id ?? f.id), f.properties]));
        this.zoneResults = new Map(zones.map((f) => [String(f.properties.zone_id ?? f.id), f.properties]));
      } else {
        this.linkResults.clear();
        this.zoneResults.clear();
      }
      this.shown = run.status === "completed" ? run : null;
      void this.workspace.planner.runShown(this.shown);
      if (this.workspace.compare.active) this.workspace.compare.leave();
      this.renderSelect();
      this.renderDetails(run, indicators, this.shown ? [...this.linkResults.values()] : null);
      this.workspace.styling.apply();
      this.workspace.selected.render();
      this.workspace.caption();
    } catch (error) {
      this.workspace.say(`Could not open run ${shortId(id)}: ${errorText(error)}`);
    }
  }

  private renderDetails(run: Run, indicators: Indicator[], links: Record<string, unknown>[] | null): void {
    const details = byId("run-details");
    const facts = h("dl", { class: "facts" },
      ...fact("Run", shortId(run.id)), ...fact("Status", run.status, "status"),
      ...(run.status_detail ? fact("Assignment", run.status_detail, "status-detail") : []),
      ...fact("Scenario version", String(run.scenario_version)),
      ...fact("Attempts", `${run.attempt} of ${run.attempts_allowed}`, "attempts"),
      ...fact("Worker", run.worker ?? "—"), ...fact("Requested", when(run.requested_at)),
      ...fact("Started", when(run.started_at)), ...fact("Finished", when(run.finished_at)),
      ...fact("Duration", run.duration_s != null ? `${run.duration_s.toFixed(2)} s` : "—"));
    const error = run.last_error
      ? h("div", { class: "error-box", role: "note" }, h("strong", { text: "Last error" }), h("pre", { text: run.last_error }))
      : null;
    const parts: (Node | null)[] = [h("h3", { text: `Run ${shortId(run.id)}` }), facts, error];
    if (indicators.length) parts.push(indicatorTable(indicators));
    if (links && links.length) parts.push(...this.linkCharts(links));
    details.replaceChildren(...parts.filter((p): p is Node => p !== null));
    details.dataset.runStatus = run.status;
    details.dataset.run = run.id;
  }

  private linkCharts(links: Record<string, unknown>[]): Node[] {
    const classes = volumeCapacityClasses();
    const counts = classes.colours.map(() => 0);
    for (const link of links) {
      const vc = Number(link.volume_capacity);
      if (!Number.isFinite(vc)) continue;
      let index = 0;
      while (index < classes.breaks.length && vc >= classes.breaks[index]) index += 1;
      counts[index] += 1;
    }
    const top = [...links].sort((a, b) => Number(b.flow) - Number(a.flow)).slice(0, 5);
    const list = h("ol", { class: "top-links" }, ...top.map((link) => {
      const id = String(link.link_id);
      const button = h("button", { type: "button", class: "link-button", "data-link": id },
        `Link ${id}: ${format(Number(link.flow))} veh/h, v/c ${Number(link.volume_capacity).toFixed(2)}`);
      button.addEventListener("click", () => this.workspace.selected.selectById("link", id));
      return h("li", {}, button);
    }));
    return [
      h("h4", { text: "Links by volume / capacity" }),
      classHistogram(counts, classes.colours, classes.labels,
        `Number of links per volume/capacity class: ${classes.labels.map((l, i) => `${l}: ${counts[i]}`).join("; ")}`),
      h("h4", { text: "Most loaded links" }), list,
    ];
  }
}

function fact(term: string, value: string, field?: string): HTMLElement[] {
  return [h("dt", { text: term }), h("dd", { text: value, "data-field": field })];
}

function indicatorTable(indicators: Indicator[]): HTMLElement {
  return h("table", { class: "indicators" },
    h("caption", { text: "Indicators" }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Indicator" }), h("th", { scope: "col", text: "Value" }))),
    h("tbody", {}, ...indicators.map((indicator) => h("tr", { "data-indicator": indicator.name },
      h("th", { scope: "row", text: indicator.name.replace(/_/g, " ") }),
      h("td", { "data-value": indicator.value, text: `${format(indicator.value)} ${indicator.unit}`.trim() })))));
}
