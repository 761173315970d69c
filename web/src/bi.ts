// BI sync status: each target's state (idle, dirty, building, last completed) and a rebuild button.

import { ApiError, type BiTarget } from "./api";
import { byId, h, when } from "./dom";
import { errorText, type Workspace } from "./main";

export function stateOf(target: BiTarget): "building" | "dirty" | "idle" {
  if (target.running_build !== null) return "building";
  if (target.pending || target.dirty) return "dirty";
  return "idle";
}

export class BiPanel {
  constructor(private readonly workspace: Workspace) {
    byId("bi-refresh").addEventListener("click", () => void this.load());
  }

  async load(): Promise<void> {
    const box = byId("bi-targets");
    let targets: BiTarget[];
    try {
      targets = await this.workspace.api.biTargets();
    } catch (error) {
      box.replaceChildren(h("p", { class: "error", text: `BI status unavailable: ${errorText(error)}` }));
      return;
    }
    if (!targets.length) {
      box.replaceChildren(h("p", { class: "hint", text: "No BI target is registered for this tenant." }));
      return;
    }
    box.replaceChildren(h("table", { class: "bi" },
      h("caption", { class: "visually-hidden", text: "BI targets" }),
      h("thead", {}, h("tr", {}, ...["Target", "State", "Last completed", ""].map((text) => h("th", { scope: "col", text })))),
      h("tbody", {}, ...targets.map((target) => this.row(target)))));
  }

  private row(target: BiTarget): HTMLElement {
    const state = stateOf(target);
    const detail = state === "building" ? `build #${target.running_build}${target.pending ? ", another pending" : ""}`
      : state === "dirty" ? (target.pending ? "rebuild pending" : "data changed since the last build") : "up to date";
    const completed = target.completed_build !== null
      ? `#${target.completed_build} (log position ${target.completed_position})${target.completed_at ? `, ${when(target.completed_at)}` : ""}`
      : "never";
    const button = h("button", { type: "button", "aria-label": `Request a rebuild of ${target.name}` }, "Rebuild");
    button.addEventListener("click", () => void this.rebuild(target, button));
    return h("tr", { "data-target": target.name, "data-state": state },
      h("th", { scope: "row" }, target.name, h("small", { text: ` (${target.kind})` })),
      h("td", {}, h("span", { class: `badge ${state}`, text: state }), h("small", { text: ` ${detail}` }),
        target.last_error ? h("div", { class: "error", text: target.last_error }) : null),
      h("td", { text: completed }),
      h("td", {}, button));
  }

  private async rebuild(target: BiTarget, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const requested = await this.workspace.api.requestRebuild(target.id);
      this.workspace.say(requested ? `Rebuild of ${target.name} requested.` : `A rebuild of ${target.name} is already pending.`);
      await this.load();
    } catch (error) {
      this.workspace.say(error instanceof ApiError && error.status === 403
        ? "Requesting a rebuild needs the admin role." : `Rebuild failed: ${errorText(error)}`);
    } finally {
      button.disabled = false;
    }
  }
}
