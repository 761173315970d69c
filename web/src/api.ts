// The REST client: bearer token, tenant header (local use only), problem+json errors, ETags.
// Paths and bodies follow /openapi.json (api/schemas.py); docs/api.md names are the contract.

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  problems?: string[];
}

export class ApiError extends Error {
  constructor(public readonly problem: Problem, public readonly headers: Headers) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
  }
  get status(): number {
    return this.problem.status;
  }
}

export interface Credentials {
  token: string;
  /** Sent as X-Cartolog-Tenant only when the page is not on a tenant subdomain. */
  tenantHeader?: string;
}

export interface ScenarioSummary {
  id: string;
  name: string;
  dataset_id: string;
  fork_of: string | null;
  fork_version: number | null;
  version: number;
  archived: boolean;
  updated_at: string;
}

export interface Scenario {
  id: string;
  name: string;
  dataset_id: string;
  fork_of: string | null;
  fork_version: number | null;
  version: number;
  archived: boolean;
  demand: Record<string, unknown>;
  zone_attributes: Record<string, Record<string, number>>;
  link_changes: Record<string, Record<string, number>>;
  added_links: Record<string, Record<string, unknown>>;
  closed_links: string[];
}

export type Edit =
  | { op: "close_link"; link_id: string }
  | { op: "modify_link"; link_id: string; capacity?: number; lanes?: number; speed?: number;
      free_flow_time?: number; toll?: number }
  | { op: "set_zone_attributes"; zone_id: number; population?: number; jobs?: number };

export interface Run {
  id: string;
  scenario_id: string;
  scenario_version: number;
  model: string;
  parameters: Record<string, unknown>;
  status: string;
  status_detail?: string | null;
  attempt: number;
  max_attempts: number;
  attempts_allowed: number;
  progress: Record<string, number>;
  last_error: string | null;
  result_sha256: string | null;
  indicators: Record<string, number>;
  worker: string | null;
  requested_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  duration_s?: number | null;
  version: number;
}

export const TERMINAL = new Set(["completed", "dead_lettered", "cancelled", "failed"]);

export interface Indicator { name: string; value: number; unit: string }

export interface IndicatorDelta {
  name: string;
  unit: string;
  value_a: number | null;
  value_b: number | null;
  difference: number | null;
}

export interface LinkFlowDelta {
  link_id: string;
  flow_a: number | null;
  flow_b: number | null;
  difference: number | null;
}

export interface LinkFlowChange extends LinkFlowDelta { significant: boolean; certain: boolean; noise_a: number; noise_b: number }

export interface Comparison {
  a: string;
  b: string;
  indicators: IndicatorDelta[];
  /** Only changes beyond convergence noise, unless asked for all. */
  links: LinkFlowChange[];
  relative_gap_a: number | null;
  relative_gap_b: number | null;
  significant_links: number;
  links_within_noise: number;
}

export interface Feature {
  type: "Feature";
  id?: string | number;
  geometry: { type: string; coordinates: unknown } | null;
  properties: Record<string, unknown>;
}

export interface FeatureCollection { type: "FeatureCollection"; features: Feature[]; next?: string | null }

export interface BiTarget {
  id: string;
  name: string;
  kind: string;
  pending: boolean;
  running_build: number | null;
  builds: number;
  completed_build: number | null;
  started_position: number;
  completed_position: number;
  data_position: number;
  dirty: boolean;
  last_error: string | null;
  version: number;
  completed_at?: string | null;
  updated_at?: string | null;
}

export interface EditRecord {
  version: number;
  type: string;
  subject: string;
  actor: string;
  occurred_at: string;
  payload: Record<string, unknown>;
}

export interface MergeRequest {
  id: string;
  title: string;
  status: "open" | "merged" | "closed";
  author: string;
  fork_id: string;
  parent_id: string;
  fork_point: number;
  verdict: string | null;
  merged_version: number | null;
  version: number;
  edits: EditRecord[];
  conflicts: { subject: string; fork: EditRecord[]; parent: EditRecord[]; resolution: string | null }[];
  reviews: { reviewer: string; verdict: string; comment: string; at: string }[];
  comparison: { a: string; b: string; indicators: { name: string; unit: string; value_a: number | null; value_b: number | null; difference: number | null }[];
    significant_links: number; links: LinkFlowChange[] } | null;
  trail: { version: number; type: string; actor: string; occurred_at: string; payload: Record<string, unknown> }[];
}

export interface MergeRequestSummary { id: string; title: string; status: string; author: string; fork_id: string; parent_id: string; verdict: string | null }

export interface ExplainedPair {
  origin: number; destination: number; flow_a: number; flow_b: number; difference: number;
  edited_links: { link_id: string; flow_a: number; flow_b: number }[];
}

export interface LinkExplanation {
  edits: (EditRecord & { only_in: string; on_link: boolean; adjacent: boolean })[];
  od_pairs: ExplainedPair[] | null;
  select_link: { side: string; supplied_by: string | null; total: number | null }[];
  missing: string[];
}

export interface Reply<T> { body: T; etag: string | null; location: string | null; status: number }

/** The version an ETag names: `"3"`, `W/"3"` or `3`. */
export function versionOf(etag: string | null): number | null {
  const match = etag?.match(/^\s*(?:W\/)?"?(\d+)"?\s*$/);
  return match ? Number(match[1]) : null;
}

export class Api {
  constructor(private readonly credentials: () => Credentials | null) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    const credentials = this.credentials();
    if (credentials) {
      headers.Authorization = `Bearer ${credentials.token}`;
      if (credentials.tenantHeader) headers["X-Cartolog-Tenant"] = credentials.tenantHeader;
    }
    return headers;
  }

  async request<T>(method: string, path: string, body?: unknown,
                   extra: Record<string, string> = {}): Promise<Reply<T>> {
    const init: RequestInit = { method, headers: this.headers(extra) };
    if (body !== undefined) {
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError({ title: "Network error", status: 0, detail: String(error) }, new Headers());
    }
    const text = await response.text();
    const parsed: unknown = text ? safeJson(text) : null;
    if (!response.ok) {
      const problem = (parsed && typeof parsed === "object" ? parsed : {}) as Partial<Problem>;
      throw new ApiError({
        title: problem.title ?? response.statusText ?? "Error",
        status: response.status,
        detail: problem.detail ?? (typeof parsed === "string" ? parsed : ""),
        problems: problem.problems,
      }, response.headers);
    }
    return {
      body: parsed as T, status: response.status,
      etag: response.headers.get("ETag"), location: response.headers.get("Location"),
    };
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request<T>("GET", path)).body;
  }

  // -- scenarios ---------------------------------------------------------------------------

  async scenarios(): Promise<ScenarioSummary[]> {
    return (await this.get<{ items: ScenarioSummary[] }>("/v1/scenarios?limit=500")).items;
  }

  async scenario(id: string): Promise<{ scenario: Scenario; version: number }> {
    const reply = await this.request<Scenario>("GET", `/v1/scenarios/${id}`);
    return { scenario: reply.body, version: versionOf(reply.etag) ?? reply.body.version };
  }

  async fork(id: string, name: string, version?: number): Promise<Scenario> {
    const body: Record<string, unknown> = { name, fork_of: id };
    if (version) body.fork_version = version;
    return (await this.request<Scenario>("POST", "/v1/scenarios", body)).body;
  }

  /** Apply edits on top of `version`; a 412 means someone else edited first. */
  async edit(id: string, version: number, edits: Edit[]): Promise<number> {
    const reply = await this.request<{ version: number }>(
      "POST", `/v1/scenarios/${id}/edits`, { edits }, { "If-Match": `"${version}"` });
    return reply.body.version;
  }

  // -- simulations -------------------------------------------------------------------------

  async simulate(scenarioId: string, scenarioVersion: number, idempotencyKey: string): Promise<Run> {
    const reply = await this.request<Run>(
      "POST", `/v1/scenarios/${scenarioId}/simulations`,
      { model: "builtin", parameters: {}, scenario_version: scenarioVersion },
      { "Idempotency-Key": idempotencyKey });
    return reply.body;
  }

  /** The run history from the read model, newest first: the tenant's, or one scenario's. */
  async runs(scenarioId?: string): Promise<Run[]> {
    const path = scenarioId ? `/v1/scenarios/${scenarioId}/simulations` : "/v1/simulations";
    return (await this.get<{ items: Run[] }>(`${path}?limit=200`)).items;
  }

  // -- merge requests ----------------------------------------------------------------------

  async mergeRequests(scenarioId: string): Promise<MergeRequestSummary[]> {
    return (await this.get<{ items: MergeRequestSummary[] }>(`/v1/merge-requests?scenario=${scenarioId}`)).items;
  }

  mergeRequest(id: string): Promise<MergeRequest> {
    return this.get<MergeRequest>(`/v1/merge-requests/${id}`);
  }

  async propose(forkId: string, title: string): Promise<MergeRequest> {
    return (await this.request<MergeRequest>("POST", `/v1/scenarios/${forkId}/merge-requests`, { title })).body;
  }

  /** One step on a merge request: `reviews`, `resolutions`, `merge` or `close`. */
  async step(id: string, action: string, body: unknown = {}): Promise<MergeRequest> {
    return (await this.request<MergeRequest>("POST", `/v1/merge-requests/${id}/${action}`, body)).body;
  }

  run(id: string): Promise<Run> {
    return this.get<Run>(`/v1/simulations/${id}`);
  }

  cancel(id: string): Promise<Reply<Run>> {
    return this.request<Run>("DELETE", `/v1/simulations/${id}`);
  }

  async indicators(id: string): Promise<Indicator[]> {
    return (await this.get<{ indicators: Indicator[] }>(`/v1/simulations/${id}/indicators`)).indicators;
  }

  /** Every page of a run's link (or zone) results. */
  async resultFeatures(id: string, kind: "links" | "zones"): Promise<Feature[]> {
    const features: Feature[] = [];
    let next: string | null | undefined = `/v1/simulations/${id}/${kind}?limit=10000`;
    while (next) {
      const page: FeatureCollection = await this.get<FeatureCollection>(next);
      features.push(...page.features);
      next = page.next && page.features.length ? page.next : null;
    }
    return features;
  }

  explain(a: string, b: string, link: string): Promise<LinkExplanation> {
    return this.get(`/v1/compare/explain?a=${a}&b=${b}&link=${encodeURIComponent(link)}`);
  }

  /** Request the companion runs (select-link of the link and the edited links) an explanation needs. */
  async requestExplanation(a: string, b: string, link: string): Promise<{ runs: { side: string; supplied_by: string; status: string; requested: boolean }[] }> {
    return (await this.request<{ runs: { side: string; supplied_by: string; status: string; requested: boolean }[] }>(
      "POST", "/v1/compare/explain", { a, b, link })).body;
  }

  compare(a: string, b: string, withNoise = false): Promise<Comparison> {
    return this.get<Comparison>(`/v1/compare?a=${a}&b=${b}${withNoise ? "&all=true" : ""}`);
  }

  // -- BI ----------------------------------------------------------------------------------

  async biTargets(): Promise<BiTarget[]> {
    return (await this.get<{ items: BiTarget[] }>("/v1/bi/targets")).items;
  }

  async requestRebuild(id: string): Promise<boolean> {
    return (await this.request<{ requested: boolean }>("POST", `/v1/bi/targets/${id}/rebuilds`, {})).body.requested;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
