"""What the HTTP app needs from its process, handed in by infra (api/ never imports infra)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from adapters.auth import TokenVerifier
from adapters.bi_connectors import HostPolicy
from adapters.isolated import Bounds
from adapters.job_queue import Estimate
from api.tile_cache import TileCache
from domain.application import Cartolog

ReadinessCheck = Callable[[], None]


@dataclass(frozen=True)
class ApiLimits:
    """Request size, rate limit, CORS and read-your-writes bounds."""

    max_body_bytes: int = 32 * 1024 * 1024
    max_features: int = 200_000
    rate_per_second: float = 200.0
    rate_burst: int = 400
    cors_origins: tuple[str, ...] = ()
    read_wait_s: float = 5.0
    tile_cache_bytes: int = 128 * 1024 * 1024
    page_size: int = 1000
    sse_poll_s: float = 0.5
    sse_duration_s: float = 300.0
    # the most cells a demand matrix upload may hold: what the blob limit has room for
    matrix_cells: int = 33_423_360
    # what reading one uploaded file (dataset or OMX) may take in its own process (0710)
    upload_bounds: Bounds = field(default_factory=Bounds)


@dataclass(frozen=True)
class ApiServices:
    """The application, the read-model engine, token verification and tenancy settings."""

    app: Cartolog
    engine: Engine
    verifier: TokenVerifier
    base_domain: str
    allow_tenant_header: bool = False
    dev_jwks: Callable[[], dict[str, Any]] | None = None
    readiness_checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    metrics_text: Callable[[], str] | None = None
    limits: ApiLimits = ApiLimits()
    read_model_projection: str = "read_model"
    queue_estimate: Callable[[UUID], Estimate | None] | None = None
    tiles: TileCache = field(default_factory=lambda: TileCache(ApiLimits.tile_cache_bytes))
    # which hosts external BI targets may be registered on (decision 0712)
    bi_hosts: HostPolicy = field(default_factory=HostPolicy)
    # (bytes stored, quota in bytes or None) of a tenant's blobs (decision 0717)
    storage_usage: Callable[[str], tuple[int, int | None]] | None = None
