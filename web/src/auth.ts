// Sign-in: a pasted token (dev mode) or OpenID Connect authorization code + PKCE.
// Tokens live in sessionStorage: they leave with the tab, and are never put in a URL.

export interface OidcSettings { issuer: string; client_id: string; scope?: string; redirect_uri?: string }

const TOKEN_KEY = "cartolog.token";
const PKCE_KEY = "cartolog.pkce";

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims, read without verification (the API verifies; this only guides the UI). */
export function claimsOf(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims: unknown = JSON.parse(json);
    return claims && typeof claims === "object" ? claims as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** Reads a claim by name; a name with dots also tries nested objects ("realm_access.roles"). */
export function claim(claims: Record<string, unknown>, name: string): unknown {
  if (name in claims) return claims[name];
  return name.split(".").reduce<unknown>(
    (value, key) => (value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined), claims);
}

export function isExpired(claims: Record<string, unknown>, now = Date.now() / 1000): boolean {
  return typeof claims.exp === "number" && claims.exp < now;
}

// -- PKCE (RFC 7636) ---------------------------------------------------------------------

function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((byte) => { text += String.fromCharCode(byte); });
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomVerifier(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(48)));
}

export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

interface Discovery { authorization_endpoint: string; token_endpoint: string }

async function discover(issuer: string): Promise<Discovery> {
  const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the identity provider's discovery document answered ${response.status}`);
  return await response.json() as Discovery;
}

function redirectUri(settings: OidcSettings): string {
  return settings.redirect_uri || `${location.origin}/`;
}

/** Sends the browser to the identity provider's sign-in page. */
export async function beginOidcSignIn(settings: OidcSettings): Promise<void> {
  const discovery = await discover(settings.issuer);
  const verifier = randomVerifier();
  const state = randomVerifier();
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code", client_id: settings.client_id, redirect_uri: redirectUri(settings),
    scope: settings.scope || "openid", state, code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

/** On return from the identity provider: exchanges the code for a token (null if not a return). */
export async function completeOidcSignIn(settings: OidcSettings | null): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const pending = sessionStorage.getItem(PKCE_KEY);
  if (!settings || !code || !pending) return null;
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", location.pathname);
  const { verifier, state } = JSON.parse(pending) as { verifier: string; state: string };
  if (params.get("state") !== state) throw new Error("the sign-in answer does not match the request (state)");
  const discovery = await discover(settings.issuer);
  const response = await fetch(discovery.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code, redirect_uri: redirectUri(settings),
      client_id: settings.client_id, code_verifier: verifier,
    }),
  });
  if (!response.ok) throw new Error(`the identity provider refused the sign-in (${response.status})`);
  const tokens = await response.json() as { access_token?: string; id_token?: string };
  const token = tokens.access_token || tokens.id_token;
  if (!token) throw new Error("the identity provider returned no token");
  return token;
}
