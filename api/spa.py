"""The map workspace (web/): the built single-page app at `/` of every tenant host.

`infra/http.py` calls `mount_workspace` once on the app that `api/app.py` builds. Nothing
here touches the API's routes: `/v1/...` keep their own 404s.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

from api.problems import problem

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"


class WorkspaceSettings(BaseModel):
    """Front-end options (CARTOLOG_WEB_*, the `web` section of infra's Settings): base map
    and the tenants' OpenID Connect issuer."""

    model_config = ConfigDict(extra="forbid")

    dist: str = ""
    basemap_style_url: str = ""
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_scope: str = "openid"
    dev_sign_in: bool | None = None
    # Origins the page may also call (e.g. an identity provider's token endpoint on another host).
    csp_origins: str = ""


@dataclass(frozen=True)
class WorkspaceConfig:
    """What the page reads from `/workspace-config.json` (public: no secrets in it)."""

    base_domain: str
    tenant_header: bool
    tenant_claim: str
    dev_sign_in: bool
    basemap_style_url: str | None
    oidc: dict[str, str] | None
    csp_origins: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any, web: WorkspaceSettings | None = None) -> WorkspaceConfig:
        """From the process's Settings (duck-typed: api/ does not import infra/)."""
        web = web or getattr(settings, "web", None) or WorkspaceSettings()
        development = getattr(settings, "env", "development") == "development"
        oidc = ({"issuer": web.oidc_issuer, "client_id": web.oidc_client_id,
                 "scope": web.oidc_scope} if web.oidc_issuer and web.oidc_client_id else None)
        return cls(
            base_domain=str(getattr(settings, "base_domain", "localhost")),
            tenant_header=bool(getattr(settings, "allow_tenant_header", False)),
            tenant_claim=str(getattr(settings, "tenant_claim", "tenant")),
            dev_sign_in=development if web.dev_sign_in is None else web.dev_sign_in,
            basemap_style_url=web.basemap_style_url or None, oidc=oidc,
            csp_origins=tuple(o.strip() for o in web.csp_origins.split(",") if o.strip()))


def mount_workspace(app: FastAPI, settings: Any, dist: Path | None = None) -> FastAPI:
    """Serve the built workspace at `/` (assets under `/assets/`); returns `app`."""
    web: WorkspaceSettings = getattr(settings, "web", None) or WorkspaceSettings()
    config = WorkspaceConfig.from_settings(settings, web)
    root = dist or (Path(web.dist) if web.dist else WEB_DIST)
    headers = _page_headers(config)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False, response_model=None)
    def workspace() -> FileResponse | JSONResponse:
        """The single-page app (one build for every tenant; the tenant is the Host)."""
        index = root / "index.html"
        if not index.is_file():
            return problem(503, "Workspace not built",
                           f"{index} is missing: run `bash infra/web.sh` (npm ci && npm run build)")
        return FileResponse(index, media_type="text/html", headers=headers)

    @app.get("/workspace-config.json", include_in_schema=False)
    def workspace_config() -> JSONResponse:
        """Public front-end configuration: tenancy, sign-in, base map."""
        public = {k: v for k, v in asdict(config).items() if k != "csp_origins"}
        return JSONResponse(public, headers={"Cache-Control": "no-cache"})

    # Hashed file names: safe to cache for good. check_dir=False: the build may come later.
    assets = StaticFiles(directory=root / "assets", check_dir=False)
    app.mount("/assets", _ImmutableAssets(assets), name="workspace-assets")
    return app


class _ImmutableAssets:
    """StaticFiles with a long cache lifetime (Vite names assets by content hash)."""

    def __init__(self, files: StaticFiles) -> None:
        self.files = files

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_cached(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                message["headers"] = [*message.get("headers", []),
                                      (b"cache-control", b"public, max-age=31536000, immutable")]
            await send(message)
        await self.files(scope, receive, send_cached)


def _page_headers(config: WorkspaceConfig) -> dict[str, str]:
    """No caching of the page itself, and a CSP that allows only this origin (plus the
    configured base map and identity provider)."""
    urls = (config.basemap_style_url, (config.oidc or {}).get("issuer"), *config.csp_origins)
    extra = " ".join(sorted({_origin(url) for url in urls if url and _origin(url)}))
    connect = f"'self' {extra}".strip()
    policy = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              f"img-src 'self' data: blob: {extra}; worker-src 'self' blob:; child-src blob:; "
              f"connect-src {connect}; font-src 'self' {extra}; frame-ancestors 'none'; "
              "base-uri 'self'; form-action 'self'")
    return {"Cache-Control": "no-cache", "Content-Security-Policy": " ".join(policy.split()),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
