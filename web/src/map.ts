// The map: a plain background (or a configured base-map style), the scenario's links and zones
// as vector tiles from /v1/tiles, and run values attached to tile features as feature state.

import * as maplibregl from "maplibre-gl";
import type { ExpressionSpecification, FilterSpecification, GeoJSONSourceSpecification, MapGeoJSONFeature, StyleSpecification } from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
// MapLibre's worker is a file of its own: Vite emits it (hashed) beside the bundle.
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";
import { type Classes, NO_DATA, stepExpression } from "./palettes";

export const LINKS = "links";
export const ZONES = "zones";
/** Tile layer names and the property that identifies a feature in each. */
export const LINK_ID = "link_id";
export const ZONE_ID = "zone_id";
/** The source and layer of a select-link analysis's flows (GeoJSON). */
const SELECT_LINK = "select-link";

export interface Selection { kind: "link" | "zone"; id: string; properties: Record<string, unknown> }

type Expression = ExpressionSpecification;
const NOTHING: FilterSpecification = ["==", ["literal", "a"], "b"];

maplibregl.setWorkerUrl(workerUrl);

function plainStyle(): StyleSpecification {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef0f3" } }],
  };
}

export class WorkspaceMap {
  readonly map: maplibregl.Map;
  private scenarioKey = "";
  private linkIds = new Set<string>();
  private zoneIds = new Set<string>();
  private fitted = false;
  private styleReady: Promise<void>;

  constructor(container: HTMLElement, baseStyleUrl: string | null,
              private readonly headers: () => Record<string, string>,
              private readonly onSelect: (selection: Selection | null) => void,
              private readonly onDrawn: (links: number, zones: number) => void) {
    this.map = new maplibregl.Map({
      container,
      style: baseStyleUrl || plainStyle(),
      center: [0, 20],
      zoom: 1,
      attributionControl: false,
      // Tile requests carry the bearer token (and the tenant header where configured).
      transformRequest: (url) => (url.startsWith(location.origin) || url.startsWith("/")
        ? { url, headers: this.headers() } : { url }),
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    this.styleReady = new Promise((resolve) => this.map.once("load", () => resolve()));
    this.map.on("click", (event) => this.select(event.point));
    this.map.on("idle", () => this.reportDrawn());
    this.map.on("sourcedata", (event) => {
      if (event.sourceId === LINKS && event.isSourceLoaded && !this.fitted) this.fitToLinks();
    });
    // Hand cursor over features, so clicking is discoverable.
    for (const layer of ["links-line", "zones-fill", "zones-point"]) {
      this.map.on("mouseenter", layer, () => { this.map.getCanvas().style.cursor = "pointer"; });
      this.map.on("mouseleave", layer, () => { this.map.getCanvas().style.cursor = ""; });
    }
  }

  /** Shows a scenario's network at a version (the version is part of the tile URL: new edits, new tiles). */
  async showScenario(scenarioId: string, version: number, closedLinks: string[]): Promise<void> {
    await this.styleReady;
    const key = `${scenarioId}@${version}`;
    if (key !== this.scenarioKey) {
      const sameScenario = this.scenarioKey.startsWith(`${scenarioId}@`);
      this.scenarioKey = key;
      this.removeNetwork();
      this.addNetwork(scenarioId, version);
      this.fitted = sameScenario;
    }
    this.setClosed(closedLinks);
  }

  private tileUrl(layer: string, scenarioId: string, version: number): string {
    return `${location.origin}/v1/tiles/${layer}/{z}/{x}/{y}.mvt?scenario=${scenarioId}&version=${version}`;
  }

  private addNetwork(scenarioId: string, version: number): void {
    const map = this.map;
    map.addSource(ZONES, { type: "vector", tiles: [this.tileUrl(ZONES, scenarioId, version)],
      minzoom: 0, maxzoom: 14, promoteId: { [ZONES]: ZONE_ID } });
    map.addSource(LINKS, { type: "vector", tiles: [this.tileUrl(LINKS, scenarioId, version)],
      minzoom: 0, maxzoom: 14, promoteId: { [LINKS]: LINK_ID } });
    map.addLayer({ id: "zones-fill", type: "fill", source: ZONES, "source-layer": ZONES,
      filter: ["!=", ["geometry-type"], "Point"],
      paint: { "fill-color": "#ffffff", "fill-opacity": 0.15 } });
    map.addLayer({ id: "zones-outline", type: "line", source: ZONES, "source-layer": ZONES,
      paint: { "line-color": "#8a8f98", "line-width": 0.6 } });
    map.addLayer({ id: "links-casing", type: "line", source: LINKS, "source-layer": LINKS,
      layout: { "line-cap": "round" },
      paint: { "line-color": "#1f2328", "line-width": 4.5, "line-offset": 2 } });
    map.addLayer({ id: "links-line", type: "line", source: LINKS, "source-layer": LINKS,
      layout: { "line-cap": "round" },
      paint: { "line-color": "#5b6270", "line-width": 2.5, "line-offset": 2 } });
    // Zones without a polygon (TNTP networks) are drawn at their centroid.
    map.addLayer({ id: "zones-point", type: "circle", source: ZONES, "source-layer": ZONES,
      filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 4, "circle-color": "#ffffff", "circle-stroke-color": "#59636e",
        "circle-stroke-width": 1.2 } });
    map.addLayer({ id: "links-closed", type: "line", source: LINKS, "source-layer": LINKS,
      filter: NOTHING,
      paint: { "line-color": "#d7191c", "line-width": 3, "line-dasharray": [1, 1], "line-offset": 2 } });
    map.addLayer({ id: "selected", type: "line", source: LINKS, "source-layer": LINKS,
      filter: NOTHING,
      paint: { "line-color": "#00e5ff", "line-width": 8, "line-opacity": 0.7, "line-offset": 2 } });
    map.addLayer({ id: "selected-zone", type: "line", source: ZONES, "source-layer": ZONES,
      filter: NOTHING, paint: { "line-color": "#00b8cc", "line-width": 3 } });
    map.addLayer({ id: "selected-zone-point", type: "circle", source: ZONES, "source-layer": ZONES,
      filter: NOTHING, paint: { "circle-radius": 9, "circle-color": "rgba(0,0,0,0)",
        "circle-stroke-color": "#00b8cc", "circle-stroke-width": 3 } });
  }

  /** The flows of a select-link analysis's demand as their own layer (null removes it):
   *  magenta, wider where more of that demand passes; the selected link darker. */
  setSelectLink(collection: { type: "FeatureCollection"; features: { properties: Record<string, unknown> }[] } | null): void {
    if (this.map.getLayer(SELECT_LINK)) this.map.removeLayer(SELECT_LINK);
    if (this.map.getSource(SELECT_LINK)) this.map.removeSource(SELECT_LINK);
    if (!collection || !collection.features.length) return;
    const top = Math.max(1e-9, ...collection.features.map((f) => Number(f.properties.flow) || 0));
    this.map.addSource(SELECT_LINK, { type: "geojson", data: collection as unknown as GeoJSONSourceSpecification["data"] });
    this.map.addLayer({ id: SELECT_LINK, type: "line", source: SELECT_LINK, layout: { "line-cap": "round" },
      paint: { "line-color": ["case", ["get", "selected"], "#7a0177", "#dd3497"], "line-opacity": 0.85,
        "line-width": ["interpolate", ["linear"], ["get", "flow"], 0, 1.5, top, 9], "line-offset": 2 } });
  }

  private removeNetwork(): void {
    this.setSelectLink(null);
    for (const layer of ["selected-zone-point", "selected-zone", "selected", "links-closed", "zones-point", "links-line", "links-casing", "zones-outline", "zones-fill"]) {
      if (this.map.getLayer(layer)) this.map.removeLayer(layer);
    }
    for (const source of [LINKS, ZONES]) if (this.map.getSource(source)) this.map.removeSource(source);
    this.linkIds.clear();
    this.zoneIds.clear();
  }

  setClosed(linkIds: string[]): void {
    if (!this.map.getLayer("links-closed")) return;
    this.map.setFilter("links-closed", ["in", ["to-string", ["get", LINK_ID]], ["literal", linkIds]] as FilterSpecification);
  }

  /** Colours links by a value per link id (null: plain grey), widths growing with the class. */
  setLinkValues(values: Map<string, number> | null, classes: Classes | null): void {
    this.setStates(LINKS, LINKS, values, this.linkIds);
    if (!this.map.getLayer("links-line")) return;
    if (!values || !classes) {
      this.map.setPaintProperty("links-line", "line-color", "#5b6270");
      this.map.setPaintProperty("links-line", "line-width", 2.5);
      this.map.setPaintProperty("links-casing", "line-width", 4.5);
      return;
    }
    const value = ["feature-state", "v"];
    this.map.setPaintProperty("links-line", "line-color", stepExpression(value, classes) as Expression);
    const widths: unknown[] = ["step", ["coalesce", value, -1e12], 1.5, -1e11, 1.5];
    const middle = (classes.colours.length - 1) / 2;
    // Diverging classes widen away from "no change"; sequential ones widen with the value.
    classes.breaks.forEach((bound, index) => {
      const rank = classes.colours.length === 7 ? Math.abs(index + 1 - middle) : index + 1;
      widths.push(bound, 1.5 + rank * 1.1);
    });
    this.map.setPaintProperty("links-line", "line-width", widths as Expression);
    this.map.setPaintProperty("links-casing", "line-width", ["+", widths, 2] as unknown as Expression);
  }

  setZoneValues(values: Map<string, number> | null, classes: Classes | null): void {
    this.setStates(ZONES, ZONES, values, this.zoneIds);
    if (!this.map.getLayer("zones-fill")) return;
    if (!values || !classes) {
      this.map.setPaintProperty("zones-fill", "fill-color", "#ffffff");
      this.map.setPaintProperty("zones-fill", "fill-opacity", 0.15);
      this.map.setPaintProperty("zones-point", "circle-color", "#ffffff");
      this.map.setPaintProperty("zones-point", "circle-radius", 4);
      return;
    }
    const colour = stepExpression(["feature-state", "v"], classes) as Expression;
    this.map.setPaintProperty("zones-fill", "fill-color", colour);
    this.map.setPaintProperty("zones-point", "circle-color", colour);
    this.map.setPaintProperty("zones-point", "circle-radius", 7);
    this.map.setPaintProperty("zones-fill", "fill-opacity", 0.7);
  }

  private setStates(source: string, sourceLayer: string, values: Map<string, number> | null, previous: Set<string>): void {
    if (!this.map.getSource(source)) return;
    for (const id of previous) this.map.removeFeatureState({ source, sourceLayer, id });
    previous.clear();
    if (!values) return;
    for (const [id, value] of values) {
      this.map.setFeatureState({ source, sourceLayer, id }, { v: value });
      previous.add(id);
    }
  }

  highlight(selection: Selection | null): void {
    if (!this.map.getLayer("selected")) return;
    const none = NOTHING;
    this.map.setFilter("selected", selection?.kind === "link"
      ? ["==", ["to-string", ["get", LINK_ID]], selection.id] as FilterSpecification : none);
    const zone: FilterSpecification = selection?.kind === "zone"
      ? ["==", ["to-string", ["get", ZONE_ID]], selection.id] as FilterSpecification : none;
    this.map.setFilter("selected-zone", zone);
    this.map.setFilter("selected-zone-point", zone);
  }

  /** Features of the loaded tiles (any zoom), by id. */
  tileFeatures(kind: "link" | "zone"): Map<string, Record<string, unknown>> {
    const source = kind === "link" ? LINKS : ZONES;
    const idName = kind === "link" ? LINK_ID : ZONE_ID;
    const found = new Map<string, Record<string, unknown>>();
    if (!this.map.getSource(source)) return found;
    for (const feature of this.map.querySourceFeatures(source, { sourceLayer: source })) {
      const id = String(feature.properties?.[idName] ?? feature.id);
      if (!found.has(id)) found.set(id, { ...feature.properties });
    }
    return found;
  }

  private select(point: maplibregl.Point): void {
    const box: [maplibregl.PointLike, maplibregl.PointLike] = [[point.x - 5, point.y - 5], [point.x + 5, point.y + 5]];
    const layers = ["links-line", "zones-fill", "zones-point"].filter((layer) => this.map.getLayer(layer));
    const hits: MapGeoJSONFeature[] = this.map.queryRenderedFeatures(box, { layers });
    const hit = hits.find((f) => f.layer.id === "zones-point") ?? hits.find((f) => f.layer.id === "links-line") ?? hits[0];
    if (!hit) {
      this.onSelect(null);
      return;
    }
    const kind = hit.layer.id === "links-line" ? "link" : "zone";
    const id = String(hit.properties?.[kind === "link" ? LINK_ID : ZONE_ID] ?? hit.id);
    this.onSelect({ kind, id, properties: { ...hit.properties } });
  }

  private fitToLinks(): void {
    const features = this.map.querySourceFeatures(LINKS, { sourceLayer: LINKS });
    if (!features.length) return;
    const bounds = new maplibregl.LngLatBounds();
    for (const feature of features) {
      const geometry = feature.geometry;
      const lines = geometry.type === "LineString" ? [geometry.coordinates]
        : geometry.type === "MultiLineString" ? geometry.coordinates : [];
      for (const line of lines) for (const [x, y] of line) bounds.extend([x, y]);
    }
    if (bounds.isEmpty()) return;
    this.fitted = true;
    this.map.fitBounds(bounds, { padding: 30, duration: 0 });
  }

  /** How many links and zones are drawn now (the e2e test and screen readers read this). */
  private reportDrawn(): void {
    if (!this.map.getLayer("links-line")) return;
    const links = new Set(this.map.queryRenderedFeatures({ layers: ["links-line"] })
      .map((f) => String(f.properties?.[LINK_ID] ?? f.id)));
    const zones = new Set(this.map.queryRenderedFeatures({ layers: ["zones-fill", "zones-point"] })
      .map((f) => String(f.properties?.[ZONE_ID] ?? f.id)));
    this.onDrawn(links.size, zones.size);
  }

  resize(): void {
    this.map.resize();
  }
}

export const NO_DATA_COLOUR = NO_DATA;
