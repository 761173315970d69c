// GIS files: import a network file, download the open scenario or the shown run as a file,
// and copy the tenant's OGC API – Features URL for QGIS (docs/gis.md).

import { ApiError, type Problem } from "./api";
import { byId, h } from "./dom";
import { errorText, type Workspace } from "./main";

export function ogcUrl(origin: string): string {
  return `${origin.replace(/\/$/, "")}/ogc/`;
}

export class FilesPanel {
  constructor(private readonly workspace: Workspace) {
    byId<HTMLInputElement>("ogc-url").value = ogcUrl(location.origin);
    byId("ogc-copy").addEventListener("click", () => void this.copyOgcUrl());
    byId("import-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.importFile();
    });
    byId("export-network").addEventListener("click", () => void this.downloadNetwork());
    byId("export-run").addEventListener("click", () => void this.downloadRun());
  }

  private async importFile(): Promise<void> {
    const input = byId<HTMLInputElement>("import-file");
    const file = input.files?.[0];
    if (!file) return;
    const name = byId<HTMLInputElement>("import-name").value.trim() || file.name;
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("name", name);
    const out = byId("import-result");
    out.replaceChildren(h("p", { class: "hint", text: `Importing ${file.name}…` }));
    try {
      const dataset = await this.send<{ id: string }>("POST", "/v1/datasets", form);
      const scenario = await this.workspace.api.request<{ id: string }>(
        "POST", "/v1/scenarios", { name, dataset_id: dataset.id });
      out.replaceChildren(h("p", { text: `Imported “${name}”: scenario created.` }));
      await this.workspace.refreshScenarios();
      await this.workspace.openScenario(scenario.body.id);
    } catch (error) {
      const problems = error instanceof ApiError ? error.problem.problems ?? [] : [];
      out.replaceChildren(h("p", { class: "error", role: "alert", text: `Import refused: ${errorText(error)}` }),
        h("ul", { class: "problems" }, ...problems.slice(0, 50).map((text) => h("li", { text }))));
    }
  }

  private async downloadNetwork(): Promise<void> {
    const scenario = this.workspace.scenario;
    if (!scenario) return;
    const format = byId<HTMLSelectElement>("export-network-format").value;
    await this.download(`/v1/scenarios/${scenario.id}/export?format=${format}&version=${this.workspace.version}`);
  }

  private async downloadRun(): Promise<void> {
    const run = byId<HTMLSelectElement>("run-select").value;
    if (!run) {
      this.workspace.say("Choose a completed run in “Map” first.");
      return;
    }
    const format = byId<HTMLSelectElement>("export-run-format").value;
    await this.download(`/v1/simulations/${run}/export?format=${format}`);
  }

  private async download(path: string): Promise<void> {
    try {
      const response = await this.fetch("GET", path);
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") ?? "";
      const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? "cartolog-export";
      const link = h("a", { href: URL.createObjectURL(blob), download: name });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      this.workspace.say(`Downloaded ${name}.`);
    } catch (error) {
      this.workspace.say(`Download failed: ${errorText(error)}`);
    }
  }

  private async copyOgcUrl(): Promise<void> {
    const url = byId<HTMLInputElement>("ogc-url");
    try {
      await navigator.clipboard.writeText(url.value);
      this.workspace.say("OGC API URL copied: add it in QGIS with an Authorization: Bearer header.");
    } catch {
      url.select();
      this.workspace.say("Select the URL and copy it (the browser refused clipboard access).");
    }
  }

  private async send<T>(method: string, path: string, body: FormData): Promise<T> {
    return (await (await this.fetch(method, path, body)).json()) as T;
  }

  /** fetch with the bearer header (no Content-Type: the browser sets the multipart one). */
  private async fetch(method: string, path: string, body?: FormData): Promise<Response> {
    const response = await fetch(path, { method, body, headers: this.workspace.api.headers() });
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as Partial<Problem>;
      throw new ApiError({ title: problem.title ?? response.statusText, status: response.status,
        detail: problem.detail ?? "", problems: problem.problems }, response.headers);
    }
    return response;
  }
}
