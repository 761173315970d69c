// The map workspace: sign-in, scenarios, map, edits, runs, comparison and BI status.

import "./style.css";
import { Api, ApiError, type Credentials, type Edit, type Scenario, type ScenarioSummary } from "./api";
import { beginOidcSignIn, claim, claimsOf, completeOidcSignIn, forgetToken, isExpired, type OidcSettings, storedToken, storeToken } from "./auth";
import { byId, h, shortId } from "./dom";
import { type Selection, WorkspaceMap } from "./map";
import { renderLegend } from "./palettes";
import { openEventStream, type Stream } from "./sse";
import { RunsPanel } from "./runs";
import { ComparePanel } from "./compare";
import { BiPanel } from "./bi";
import { FilesPanel } from "./files";
import { PlannerPanel } from "./planner";
import { ReviewPanel } from "./review";
import { SelectionPanel } from "./selection";
import { Styling } from "./styling";

export interface WorkspaceConfig {
  base_domain: string;
  tenant_header: boolean;
  tenant_claim: string;
  dev_sign_in: boolean;
  basemap_style_url: string | null;
  oidc: OidcSettings | null;
}

const DEFAULT_CONFIG: WorkspaceConfig = {
  base_domain: "cartolog.example", tenant_header: false, tenant_claim: "tenant",
  dev_sign_in: true, basemap_style_url: null, oidc: null,
};

/** Everything the panels share: the API, the open scenario and its version, the map. */
export class Workspace {
  readonly api: Api;
  config: WorkspaceConfig = DEFAULT_CONFIG;
  tenant: string | null = null;
  credentials: Credentials | null = null;
  scenarios: ScenarioSummary[] = [];
  scenario: Scenario | null = null;
  version = 0;
  map: WorkspaceMap | null = null;
  selection: Selection | null = null;
  private stream: Stream | null = null;
  readonly runs: RunsPanel;
  readonly compare: ComparePanel;
  readonly bi: BiPanel;
  readonly review: ReviewPanel;
  readonly selected: SelectionPanel;
  readonly styling: Styling;
  readonly files: FilesPanel;
  readonly planner: PlannerPanel;

  constructor() {
    this.api = new Api(() => this.credentials);
    this.runs = new RunsPanel(this);
    this.compare = new ComparePanel(this);
    this.bi = new BiPanel(this);
    this.review = new ReviewPanel(this);
    this.selected = new SelectionPanel(this);
    this.styling = new Styling(this);
    this.files = new FilesPanel(this);
    this.planner = new PlannerPanel(this);
  }

  say(message: string): void {
    byId("status").textContent = message;
  }

  // -- start, sign-in, access ---------------------------------------------------------------

  async boot(): Promise<void> {
    this.config = await loadConfig();
    this.tenant = tenantFromHost(location.hostname, this.config.base_domain);
    byId("tenant-label").textContent = this.tenant ? `· ${this.tenant}` : "";
    try {
      const token = await completeOidcSignIn(this.config.oidc);
      if (token) storeToken(token);
    } catch (error) {
      this.showSignIn(String(error instanceof Error ? error.message : error));
      return;
    }
    const token = storedToken();
    if (token) await this.enter(token);
    else this.showSignIn();
  }

  showSignIn(error = ""): void {
    this.leaveWorkspace();
    byId("signin").hidden = false;
    byId("denied").hidden = true;
    byId("who").hidden = true;
    byId("signin-error").textContent = error;
    byId("oidc-form").hidden = !this.config.oidc;
    byId("token-form").hidden = !this.config.dev_sign_in;
    const headerMode = !this.tenant && this.config.tenant_header;
    byId("tenant-field").hidden = !headerMode;
    byId<HTMLInputElement>("tenant-input").required = headerMode;
    if (headerMode) byId<HTMLInputElement>("tenant-input").value = sessionStorage.getItem("cartolog.tenant") ?? "";
    byId("signin-where").textContent = this.tenant
      ? `Workspace of tenant “${this.tenant}”.`
      : headerMode ? "Local use: give the tenant and a token."
        : `Open your workspace at https://YOUR-TENANT.${this.config.base_domain}/`;
  }

  async enter(token: string): Promise<void> {
    const headerTenant = !this.tenant && this.config.tenant_header ? sessionStorage.getItem("cartolog.tenant") : null;
    const tenant = this.tenant ?? headerTenant;
    if (!tenant) {
      this.showSignIn("No tenant: this page must be opened on your tenant's subdomain.");
      return;
    }
    const claims = claimsOf(token);
    if (!claims) {
      forgetToken();
      this.showSignIn("That is not a JWT (three base64url parts separated by dots).");
      return;
    }
    if (isExpired(claims)) {
      forgetToken();
      this.showSignIn("That token has expired; issue a new one.");
      return;
    }
    this.credentials = { token, tenantHeader: headerTenant ?? undefined };
    const tokenTenant = claim(claims, this.config.tenant_claim);
    if (tokenTenant !== tenant) {
      this.showDenied(tenant, typeof tokenTenant === "string" ? tokenTenant : null);
      return;
    }
    try {
      this.scenarios = await this.api.scenarios();
    } catch (error) {
      this.handleAccessError(error, tenant);
      return;
    }
    byId("who-name").textContent = `${String(claims.sub ?? "signed in")} · ${rolesOf(claims).join(", ")}`;
    this.showWorkspace();
  }

  handleAccessError(error: unknown, tenant: string): void {
    if (error instanceof ApiError && error.status === 401) {
      forgetToken();
      this.showSignIn(`The API refused this token: ${error.problem.detail || error.problem.title}`);
    } else if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
      this.showDenied(tenant, null, error.problem.detail);
    } else {
      this.showSignIn(`Could not reach the API: ${String(error instanceof Error ? error.message : error)}`);
    }
  }

  /** Another tenant's token (or an unknown tenant): say so, and show nothing of anyone's data. */
  showDenied(tenant: string, tokenTenant: string | null, detail = ""): void {
    this.leaveWorkspace();
    this.credentials = null;
    byId("signin").hidden = true;
    byId("denied").hidden = false;
    byId("who").hidden = true;
    byId("denied-detail").textContent = tokenTenant
      ? `This is the workspace of “${tenant}”, but your token was issued for “${tokenTenant}”. ` +
        `Open your own workspace, or sign in with a token for “${tenant}”.`
      : `Your token does not give access to the workspace of “${tenant}”. ${detail}`.trim();
  }

  signOut(): void {
    forgetToken();
    this.credentials = null;
    this.showSignIn();
  }

  private leaveWorkspace(): void {
    this.stream?.close();
    this.stream = null;
    this.runs.stopWatching();
    byId("workspace").hidden = true;
    // No data stays on the page once access ends.
    this.scenarios = [];
    this.scenario = null;
    byId("scenario-list").replaceChildren();
    byId("run-details").replaceChildren();
    byId("compare-result").replaceChildren();
    byId("bi-targets").replaceChildren();
    byId("import-result").replaceChildren();
    this.selected.clear();
  }

  // -- the workspace -------------------------------------------------------------------------

  private showWorkspace(): void {
    byId("signin").hidden = true;
    byId("denied").hidden = true;
    byId("who").hidden = false;
    byId("workspace").hidden = false;
    if (!this.map) {
      this.map = new WorkspaceMap(byId("map"), this.config.basemap_style_url,
        () => this.api.headers(), (selection) => this.select(selection),
        (links, zones) => this.drawn(links, zones));
    } else {
      this.map.resize();
    }
    this.renderScenarios();
    const remembered = sessionStorage.getItem(`cartolog.scenario.${this.tenant}`);
    const first = this.scenarios.find((s) => s.id === remembered)
      ?? this.scenarios.find((s) => s.name === "Baseline") ?? this.scenarios[0];
    if (first) void this.openScenario(first.id);
    else this.say("This tenant has no scenario yet: import a network file under “Files and GIS”.");
    this.stream = openEventStream("/v1/notifications", () => this.api.headers(),
      (event) => this.notified(event.event, event.data), (state, detail) => {
        byId("main").dataset.notifications = state;
        if (state === "retrying" && detail) console.info("notifications:", detail);
      });
    void this.bi.load();
  }

  private drawn(links: number, zones: number): void {
    const map = byId("map");
    map.dataset.linksDrawn = String(links);
    map.dataset.zonesDrawn = String(zones);
    this.styling.tilesLoaded();
  }

  renderScenarios(): void {
    const list = byId("scenario-list");
    list.replaceChildren(...this.scenarios.map((scenario) => {
      const current = scenario.id === this.scenario?.id;
      const parent = scenario.fork_of ? this.scenarios.find((s) => s.id === scenario.fork_of) : null;
      const button = h("button", { type: "button", class: "choice", "aria-pressed": String(current),
        "data-scenario": scenario.name },
        h("strong", { text: scenario.name }),
        h("small", { text: ` v${scenario.version}${parent ? ` · fork of ${parent.name}` : ""}` }));
      button.addEventListener("click", () => void this.openScenario(scenario.id));
      return h("li", {}, button);
    }));
  }

  async refreshScenarios(): Promise<void> {
    this.scenarios = await this.api.scenarios();
    this.renderScenarios();
  }

  async openScenario(id: string, keepRun = false): Promise<void> {
    try {
      const { scenario, version } = await this.api.scenario(id);
      const changed = scenario.id !== this.scenario?.id;
      this.scenario = scenario;
      this.version = version;
      sessionStorage.setItem(`cartolog.scenario.${this.tenant}`, id);
      const summary = this.scenarios.find((s) => s.id === id);
      if (summary) summary.version = version;
      this.renderScenarios();
      await this.map?.showScenario(id, version, scenario.closed_links);
      // The selection shows this version's values at once; runs (listed from the read
      // model, which may first wait for this very edit) refresh it again below.
      this.selected.render();
      byId("main").dataset.scenario = scenario.name;
      byId("main").dataset.scenarioVersion = String(version);
      if (changed && !keepRun) this.compare.leave();
      await this.runs.loadFor(scenario, changed && !keepRun);
      void this.review.load();
      // A new version means new tile sources: their feature states (run values) start empty.
      this.styling.apply();
      this.selected.render();
      this.caption();
    } catch (error) {
      this.say(`Could not open the scenario: ${errorText(error)}`);
    }
  }

  caption(): void {
    const parts = [this.scenario ? `${this.scenario.name} (version ${this.version})` : "No scenario"];
    if (this.compare.active) parts.splice(0, 1, `Comparison: ${this.compare.caption()}`);
    else if (this.runs.shown) parts.push(`run ${shortId(this.runs.shown.id)} (${this.runs.shown.status})`);
    byId("map-caption").textContent = parts.join(" · ");
  }

  select(selection: Selection | null): void {
    this.selection = selection;
    this.map?.highlight(selection);
    this.selected.render();
    this.planner.selectionChanged();
  }

  /** Applies edits on the open version; on a conflict the edit is kept to apply again. */
  async edit(edits: Edit[], description: string): Promise<boolean> {
    if (!this.scenario) return false;
    const scenarioId = this.scenario.id;
    byId("edit-error").textContent = "";
    try {
      const version = await this.api.edit(scenarioId, this.version, edits);
      this.selected.pending = null;
      byId("conflict").hidden = true;
      this.say(`${description}: saved as version ${version}.`);
      await this.openScenario(scenarioId, true);
      void this.refreshScenarios();
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const mine = this.version;
        this.selected.pending = { scenarioId, edits, description };
        await this.openScenario(scenarioId, true);
        byId("conflict-text").textContent =
          `Someone else changed “${this.scenario?.name}” first: you edited version ${mine}, ` +
          `it is now at version ${this.version}. Your edit (${description}) was not applied and is kept here. ` +
          "The map shows the new version; apply your edit again on it, or discard it.";
        byId("conflict").hidden = false;
        byId("conflict-retry").focus();
      } else {
        byId("edit-error").textContent = `${description} failed: ${errorText(error)}`;
      }
      return false;
    }
  }

  async fork(name: string): Promise<void> {
    if (!this.scenario) return;
    try {
      const fork = await this.api.fork(this.scenario.id, name, this.version);
      this.say(`Forked “${this.scenario.name}” v${this.version} as “${fork.name}”.`);
      await this.refreshScenarios();
      await this.openScenario(fork.id);
    } catch (error) {
      this.say(`Fork failed: ${errorText(error)}`);
    }
  }

  private notified(kind: string, data: string): void {
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    const type = String(body.kind ?? kind);
    const subject = String(body.subject_id ?? body.run_id ?? "");
    if (type.startsWith("simulation")) void this.runs.notified(subject, String(body.title ?? type));
    if (type.startsWith("bi")) {
      this.say(String(body.title ?? "BI rebuild finished"));
      void this.bi.load();
    }
  }
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    const problems = error.problem.problems?.length ? ` (${error.problem.problems.join("; ")})` : "";
    return `${error.message}${problems}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function rolesOf(claims: Record<string, unknown>): string[] {
  const roles = claims.roles ?? claims["cognito:groups"];
  return Array.isArray(roles) ? roles.map(String) : [];
}

export function tenantFromHost(hostname: string, baseDomain: string): string | null {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const suffix = `.${baseDomain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label) ? label : null;
}

async function loadConfig(): Promise<WorkspaceConfig> {
  try {
    const response = await fetch("/workspace-config.json", { headers: { Accept: "application/json" } });
    if (response.ok) return { ...DEFAULT_CONFIG, ...(await response.json() as Partial<WorkspaceConfig>) };
  } catch {
    // The defaults do: plain background, token sign-in.
  }
  return DEFAULT_CONFIG;
}

function wire(workspace: Workspace): void {
  byId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId<HTMLTextAreaElement>("token-input").value.trim();
    const tenantInput = byId<HTMLInputElement>("tenant-input");
    if (!byId("tenant-field").hidden) sessionStorage.setItem("cartolog.tenant", tenantInput.value.trim().toLowerCase());
    storeToken(token);
    byId<HTMLTextAreaElement>("token-input").value = "";
    void workspace.enter(token);
  });
  byId("oidc-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (workspace.config.oidc) {
      beginOidcSignIn(workspace.config.oidc).catch((error: unknown) => {
        byId("signin-error").textContent = errorText(error);
      });
    }
  });
  byId("sign-out").addEventListener("click", () => workspace.signOut());
  byId("denied-sign-out").addEventListener("click", () => workspace.signOut());
  byId("fork-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("fork-name");
    void workspace.fork(input.value.trim()).then(() => { input.value = ""; });
  });
  window.addEventListener("resize", () => workspace.map?.resize());
}

const workspace = new Workspace();
wire(workspace);
renderLegend(byId("legend-links"), null);
void workspace.boot();
