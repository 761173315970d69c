// What the map colours, and the legends that explain it: a run's flow or v/c, a comparison's
// flow difference, and zones by population, jobs or accessibility.

import { byId } from "./dom";
import type { Workspace } from "./main";
import {
  type Classes,
  divergingClasses,
  renderLegend,
  sequentialClasses,
  VIRIDIS_6,
  volumeCapacityClasses,
  YLGNBU_6,
} from "./palettes";

export class Styling {
  private zoneKey = "";

  constructor(private readonly workspace: Workspace) {
    byId("link-measure").addEventListener("change", () => this.apply());
    byId("zone-measure").addEventListener("change", () => { this.zoneKey = ""; this.applyZones(); });
  }

  get linkMeasure(): string {
    return byId<HTMLSelectElement>("link-measure").value;
  }

  get zoneMeasure(): string {
    return byId<HTMLSelectElement>("zone-measure").value;
  }

  apply(): void {
    this.applyLinks();
    this.zoneKey = "";
    this.applyZones();
  }

  /** Tiles arrived: zone values that come from the tiles can be computed now. */
  tilesLoaded(): void {
    if (["population", "jobs"].includes(this.zoneMeasure)) this.applyZones();
  }

  applyLinks(): void {
    const map = this.workspace.map;
    if (!map) return;
    const compare = this.workspace.compare;
    let values: Map<string, number> | null = null;
    let classes: Classes | null = null;
    let note = "";
    if (compare.active && compare.result) {
      values = new Map(compare.result.links
        .filter((link) => link.difference !== null || link.flow_a !== null || link.flow_b !== null)
        .map((link) => [link.link_id, link.difference ?? (link.flow_b ?? 0) - (link.flow_a ?? 0)]));
      classes = divergingClasses([...values.values()], "Flow change, B − A (veh/h)");
      note = "Purple: less traffic in B. Orange: more. Wider: larger change.";
    } else if (this.workspace.runs.shown && this.linkMeasure !== "none") {
      const measure = this.linkMeasure;
      const vehicleClass = this.workspace.planner.chosenClass;
      const byClass = measure === "flow" ? this.workspace.planner.classValues() : null;
      values = byClass ?? new Map();
      if (!byClass) {
        for (const [id, properties] of this.workspace.runs.linkResults) {
          const value = Number(properties[measure]);
          if (Number.isFinite(value)) values.set(id, value);
        }
      }
      classes = measure === "volume_capacity" ? volumeCapacityClasses()
        : sequentialClasses([...values.values()], VIRIDIS_6,
          byClass ? `Flow of ${vehicleClass} (veh/h)` : "Flow (veh/h)");
      note = "Wider lines carry more. Dashed red: closed.";
    }
    map.setLinkValues(values && values.size ? values : null, values && values.size ? classes : null);
    renderLegend(byId("legend-links"), values && values.size ? classes : null, note);
  }

  applyZones(): void {
    const map = this.workspace.map;
    if (!map) return;
    const measure = this.zoneMeasure;
    let values: Map<string, number> | null = null;
    let title = "";
    if (measure === "population" || measure === "jobs") {
      const tiles = map.tileFeatures("zone");
      const key = `${this.workspace.scenario?.id}@${this.workspace.version}:${measure}:${tiles.size}`;
      if (key === this.zoneKey || !tiles.size) return;
      this.zoneKey = key;
      const overrides = this.workspace.scenario?.zone_attributes ?? {};
      values = new Map();
      for (const [id, properties] of tiles) {
        const value = Number(overrides[id]?.[measure] ?? properties[measure]);
        if (Number.isFinite(value)) values.set(id, value);
      }
      title = measure === "population" ? "Population" : "Jobs";
    } else if (measure === "accessibility") {
      this.zoneKey = "";
      values = new Map();
      for (const [id, properties] of this.workspace.runs.zoneResults) {
        const value = Number(properties.accessibility);
        if (Number.isFinite(value)) values.set(id, value);
      }
      title = "Accessibility (jobs reachable)";
    } else {
      this.zoneKey = "";
    }
    const classes = values && values.size ? sequentialClasses([...values.values()], YLGNBU_6, title) : null;
    map.setZoneValues(classes ? values : null, classes);
    renderLegend(byId("legend-zones"), classes,
      measure === "accessibility" && !classes ? "" : "");
  }
}
