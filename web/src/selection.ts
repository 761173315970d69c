// The selected link or zone: its attributes (network, edits, run results, comparison) and the
// edit forms. A rejected (stale) edit stays here until it is applied again or discarded.

import type { Edit, ExplainedPair, LinkExplanation } from "./api";
import { byId, h } from "./dom";
import type { Workspace } from "./main";
import { format } from "./palettes";

export interface PendingEdit { scenarioId: string; edits: Edit[]; description: string }

const LINK_FIELDS = ["from_node", "to_node", "capacity", "lanes", "free_flow_time", "speed", "toll"];
const ZONE_FIELDS = ["centroid_node", "population", "jobs"];

export class SelectionPanel {
  pending: PendingEdit | null = null;

  constructor(private readonly workspace: Workspace) {
    byId("find-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const kind = byId<HTMLSelectElement>("find-kind").value as "link" | "zone";
      this.selectById(kind, byId<HTMLInputElement>("find-id").value.trim());
    });
    byId("link-edit").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitLinkChange();
    });
    byId("close-link").addEventListener("click", () => {
      const id = this.workspace.selection?.id;
      if (id) void this.workspace.edit([{ op: "close_link", link_id: id }], `Close link ${id}`);
    });
    byId("zone-edit").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitZoneChange();
    });
    byId("conflict-retry").addEventListener("click", () => {
      const pending = this.pending;
      if (pending && pending.scenarioId === this.workspace.scenario?.id) {
        void this.workspace.edit(pending.edits, pending.description);
      }
    });
    byId("conflict-drop").addEventListener("click", () => {
      this.pending = null;
      byId("conflict").hidden = true;
      this.workspace.say("Your edit was discarded.");
    });
  }

  clear(): void {
    this.workspace.selection = null;
    byId("selection").replaceChildren(h("p", { class: "hint", text: "Click a link or a zone on the map, or select one by id." }));
    byId("link-edit").hidden = true;
    byId("zone-edit").hidden = true;
  }

  /** Keyboard path to any feature: by id, without the mouse. */
  selectById(kind: "link" | "zone", id: string): void {
    if (!id) return;
    const tiles = this.workspace.map?.tileFeatures(kind) ?? new Map();
    const known = tiles.has(id) || (kind === "link" && this.workspace.runs.linkResults.has(id))
      || (kind === "zone" && this.workspace.runs.zoneResults.has(id));
    if (!known) {
      this.workspace.say(`No ${kind} “${id}” in this scenario's network.`);
      return;
    }
    this.workspace.select({ kind, id, properties: tiles.get(id) ?? {} });
  }

  render(): void {
    const workspace = this.workspace;
    const selection = workspace.selection;
    if (!selection || !workspace.scenario) {
      this.clear();
      return;
    }
    const scenario = workspace.scenario;
    const tiles = workspace.map?.tileFeatures(selection.kind).get(selection.id) ?? {};
    const base = { ...tiles, ...selection.properties };
    const rows: [string, string, string][] = [];
    // The exact number behind each formatted one ("23 k"), for copy-paste and for tests.
    const raw = new Map<string, number>();
    const add = (term: string, value: unknown, field: string): void => {
      rows.push([term, show(value), field]);
      if (typeof value === "number") raw.set(field, value);
    };
    if (selection.kind === "link") {
      const changes = scenario.link_changes[selection.id] ?? {};
      const closed = scenario.closed_links.includes(selection.id);
      rows.push(["State", closed ? "closed" : "open", "state"]);
      for (const field of LINK_FIELDS) {
        const value = changes[field] ?? base[field];
        if (value !== undefined && value !== null) add(label(field), value, field);
      }
      const result = workspace.runs.shown ? workspace.runs.linkResults.get(selection.id) : undefined;
      if (result && !workspace.compare.active) {
        add("Flow (veh/h)", result.flow ?? 0, "flow");
        add("Volume / capacity", result.volume_capacity, "volume_capacity");
        add("Congested time (min)", result.congested_time, "congested_time");
      }
      const delta = workspace.compare.active ? workspace.compare.result?.links.find((l) => l.link_id === selection.id) : undefined;
      if (workspace.compare.active && delta) {
        add("Flow in A (veh/h)", delta.flow_a ?? 0, "flow_a");
        add("Flow in B (veh/h)", delta.flow_b ?? 0, "flow_b");
        add("Change B − A", delta.difference ?? (delta.flow_b ?? 0) - (delta.flow_a ?? 0), "difference");
        rows.push(["Change is", delta.significant ? "beyond convergence noise" : "within convergence noise", "significance"]);
      } else if (workspace.compare.active) {
        rows.push(["Change is", "within convergence noise (hidden)", "significance"]);
      }
      this.fillLinkForm(changes, base, closed);
    } else {
      const overrides = scenario.zone_attributes[selection.id] ?? {};
      for (const field of ZONE_FIELDS) {
        const value = overrides[field] ?? base[field];
        if (value !== undefined && value !== null) add(label(field), value, field);
      }
      const result = workspace.runs.zoneResults.get(selection.id);
      if (result) {
        for (const field of ["trips", "jobs_within_threshold", "accessibility"]) {
          if (result[field] !== undefined) add(label(field), result[field], field);
        }
      }
      this.fillZoneForm(overrides, base);
    }
    const list = h("dl", { class: "facts", "data-kind": selection.kind, "data-id": selection.id });
    for (const [term, value, field] of rows) {
      list.append(h("dt", { text: term }), h("dd", { text: value, "data-field": field, "data-value": raw.get(field) }));
    }
    const why = selection.kind === "link" && workspace.compare.active ? this.whyButton(selection.id) : null;
    byId("selection").replaceChildren(h("h3", { text: `${selection.kind === "link" ? "Link" : "Zone"} ${selection.id}` }), list, why ?? "");
  }

  /** "Why did this link change?": the edits behind one run and not the other, and the OD pairs whose trips via
   * the link changed most (GET /v1/compare/explain); when select-link results are missing, a button requests the
   * companion runs (POST) and the panel asks again until they are in. */
  private whyButton(linkId: string): HTMLElement {
    const box = h("div", { id: "why" });
    const button = h("button", { type: "button", id: "why-button" }, "Why did this link change?");
    const load = async (): Promise<LinkExplanation | null> => {
      const result = this.workspace.compare.result;
      if (!result) return null;
      try {
        const why = await this.workspace.api.explain(result.a, result.b, linkId);
        const askable = why.od_pairs === null && why.missing.some((text) => text.includes("POST /v1/compare/explain"));
        const ask = askable ? this.selectLinkButton(result.a, result.b, linkId, load) : "";
        box.replaceChildren(h("ul", { class: "edits" }, ...why.edits.map((e) => h("li", { "data-subject": e.subject,
          text: `${e.type} on ${e.subject} (only in run ${e.only_in.toUpperCase()}${e.on_link ? ", this link" : e.adjacent ? ", a neighbour" : ""}) by ${e.actor}` }))),
          why.od_pairs ? odPairs(why.od_pairs) : "",
          ...why.missing.map((text) => h("p", { class: "hint", text: `Not available: ${text}.` })), ask);
        return why;
      } catch (error) {
        box.replaceChildren(h("p", { class: "error", text: `No explanation: ${String(error)}` }));
        return null;
      }
    };
    button.addEventListener("click", () => void load());
    return h("div", {}, button, box);
  }

  /** "Run select-link for this link": POST the companion runs, then ask again every few seconds while the panel shows. */
  private selectLinkButton(a: string, b: string, linkId: string, load: () => Promise<LinkExplanation | null>): HTMLElement {
    const ask = h("button", { type: "button", id: "why-select-link" }, "Run select-link for this link");
    ask.addEventListener("click", () => void (async () => {
      ask.setAttribute("disabled", "");
      try {
        await this.workspace.api.requestExplanation(a, b, linkId);
      } catch (error) {
        ask.replaceWith(h("p", { class: "error", text: `Select-link not requested: ${String(error)}` }));
        return;
      }
      for (let attempt = 0; attempt < 200; attempt++) {
        const why = await load();
        const box = document.getElementById("why");
        if (!why || why.od_pairs || !box) return;
        box.append(h("p", { class: "hint", id: "why-waiting", text: "Waiting for the select-link runs…" }));
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    })());
    return ask;
  }

  private fillLinkForm(changes: Record<string, number>, base: Record<string, unknown>, closed: boolean): void {
    byId("zone-edit").hidden = true;
    byId("link-edit").hidden = false;
    byId<HTMLInputElement>("edit-capacity").value = numberText(changes.capacity ?? base.capacity);
    byId<HTMLInputElement>("edit-lanes").value = numberText(changes.lanes ?? base.lanes);
    byId<HTMLButtonElement>("close-link").disabled = closed;
  }

  private fillZoneForm(overrides: Record<string, number>, base: Record<string, unknown>): void {
    byId("link-edit").hidden = true;
    byId("zone-edit").hidden = false;
    byId<HTMLInputElement>("edit-population").value = numberText(overrides.population ?? base.population);
    byId<HTMLInputElement>("edit-jobs").value = numberText(overrides.jobs ?? base.jobs);
  }

  private submitLinkChange(): void {
    const id = this.workspace.selection?.id;
    if (!id) return;
    const capacity = numberOf("edit-capacity");
    const lanes = numberOf("edit-lanes");
    const edit: Edit = { op: "modify_link", link_id: id };
    if (capacity !== null) edit.capacity = capacity;
    if (lanes !== null) edit.lanes = lanes;
    void this.workspace.edit([edit], `Change link ${id}`);
  }

  private submitZoneChange(): void {
    const id = this.workspace.selection?.id;
    if (!id) return;
    const edit: Edit = { op: "set_zone_attributes", zone_id: Number(id) };
    const population = numberOf("edit-population");
    const jobs = numberOf("edit-jobs");
    if (population !== null) edit.population = population;
    if (jobs !== null) edit.jobs = jobs;
    void this.workspace.edit([edit], `Change zone ${id}`);
  }
}

/** The OD pairs whose trips via the link changed most, and the edited links each used (trips in A → B). */
function odPairs(pairs: ExplainedPair[]): HTMLElement {
  const rows = pairs.map((p) => h("tr", { "data-od": `${p.origin}-${p.destination}` },
    h("td", { text: `${p.origin} → ${p.destination}` }), h("td", { text: format(p.flow_a) }),
    h("td", { text: format(p.flow_b) }), h("td", { text: format(p.difference) }),
    h("td", { text: p.edited_links.map((e) => `${e.link_id}: ${format(e.flow_a)} → ${format(e.flow_b)}`).join("; ") || "—" })));
  return h("table", { class: "indicators od-pairs" },
    h("caption", { text: "OD pairs whose trips via this link changed most (select-link)" }),
    h("thead", {}, h("tr", {}, ...["OD pair", "Via link in A", "In B", "Change", "Edited links used (A → B)"]
      .map((text) => h("th", { text })))),
    h("tbody", {}, ...rows));
}

function label(field: string): string {
  const text = field.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function show(value: unknown): string {
  if (typeof value === "number") return format(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function numberText(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : "";
}

function numberOf(id: string): number | null {
  const text = byId<HTMLInputElement>(id).value.trim();
  if (!text) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
