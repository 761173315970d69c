"""The one Settings of every Cartolog process, built once from the environment.

Core fields read `CARTOLOG_<NAME>` (and `DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`); each
section reads its own prefix: `api` `CARTOLOG_API_*`, `jobs` `CARTOLOG_*` (the job pipeline's
names predate sections), `projector` `CARTOLOG_PROJECTOR_*`, `web` `CARTOLOG_WEB_*`. A
`CARTOLOG_*` variable that none of them reads gets a warning naming the closest known one.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adapters.isolated import Bounds
from api.services import ApiLimits
from api.spa import WorkspaceSettings
from infra.logs import LogFormat, LogLevel

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/cartolog"
BUILTIN_MODEL_VERSION = "builtin/1"
PREFIX = "CARTOLOG_"
# Read by scripts and tests, not by the service: infra/web.sh skips the browser install, and
# the browser tests write their screenshots where CARTOLOG_SCREENSHOTS_DIR says.
SCRIPT_VARIABLES = ("CARTOLOG_WEB_SKIP_BROWSER", "CARTOLOG_SCREENSHOTS_DIR")


class Section(BaseModel):
    """A group of settings read from the environment under one prefix."""

    model_config = ConfigDict(extra="forbid")


class ApiSettings(Section):
    """HTTP edge limits (CARTOLOG_API_*)."""

    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_features: int = Field(default=200_000, ge=1)
    rate_per_second: float = Field(default=200.0, gt=0)
    rate_burst: int = Field(default=400, ge=1)
    cors_origins: str = ""
    read_wait_s: float = Field(default=5.0, ge=0, le=60)
    tile_cache_mb: int = Field(default=128, ge=0, le=65536)
    # what reading one uploaded file may take in its own process (decision 0710)
    upload_memory_mb: int = Field(default=4096, ge=256)
    upload_timeout_s: float = Field(default=300.0, gt=0, le=86_400)

    def limits(self) -> ApiLimits:
        """The app's limits."""
        origins = tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())
        return ApiLimits(max_body_bytes=self.max_body_bytes, max_features=self.max_features,
                         rate_per_second=self.rate_per_second, rate_burst=self.rate_burst,
                         cors_origins=origins, read_wait_s=self.read_wait_s,
                         tile_cache_bytes=self.tile_cache_mb * 1024 * 1024,
                         upload_bounds=Bounds(self.upload_memory_mb, self.upload_timeout_s))


class JobSettings(Section):
    """The job pipeline (CARTOLOG_*, see docs/jobs.md)."""

    job_timeout_s: float = Field(default=3600.0, gt=0)
    lease_ttl_s: float = Field(default=15.0, gt=0)
    worker_grace_s: float = Field(default=30.0, ge=0)
    progress_every_s: float = Field(default=5.0, ge=0)
    retry_base_s: float = Field(default=5.0, ge=0)
    retry_max_s: float = Field(default=300.0, ge=0)
    external_model_command: str = ""
    workers: int = Field(default=1, ge=0)
    fetch_wait_ms: int = Field(default=250, ge=0, le=10_000)
    worker_liveness_s: float = Field(default=3.0, gt=0)  # a worker unseen this long is dead
    model_threads: int = Field(default=0, ge=0)  # numba threads per model process; 0: all cores
    # resident memory a model process may use during a job; 0: 75 % of the machine's (0315)
    model_memory_mb: int = Field(default=0, ge=0)

    def model_version(self, model: str) -> str:
        """What identifies the code that computes a model, for result reuse."""
        if model == "external":
            digest = hashlib.sha256(self.external_model_command.encode()).hexdigest()[:16]
            return f"external/{digest}"
        return BUILTIN_MODEL_VERSION


class ProjectorSettings(Section):
    """The projector (CARTOLOG_PROJECTOR_*, see docs/projections.md)."""

    batch: int = Field(default=5000, ge=1)
    bi_interval_s: float = Field(default=0.25, gt=0)


SECTIONS: dict[str, str] = {"api": "CARTOLOG_API_", "jobs": PREFIX,
                            "projector": "CARTOLOG_PROJECTOR_", "web": "CARTOLOG_WEB_"}


class SectionsFromEnvironment(PydanticBaseSettingsSource):
    """Each section's fields from the environment, under the section's prefix."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        found: dict[str, Any] = {}
        for section, prefix in SECTIONS.items():
            model = _section_model(section)
            values = {name: environ[prefix + name.upper()] for name in model.model_fields
                      if prefix + name.upper() in environ}
            if values:
                found[section] = values
        return found


def _section_model(section: str) -> type[BaseModel]:
    model = Settings.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


class Settings(BaseSettings):
    """Configuration from the environment; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid")

    env: Literal["development", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL"
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    topic_prefix: str = "cartolog"
    events_partitions: int = Field(default=8, ge=1)
    jobs_partitions: int = Field(default=12, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    relay_batch_size: int = Field(default=2000, ge=1)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dev_key_file: str = ".cartolog/dev-signing-key.pem"
    jwt_issuer: str = "cartolog-dev"
    jwt_audience: str = "cartolog"
    jwks_url: str | None = None
    jwks_file: str | None = None
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    base_domain: str = "cartolog.example"
    allow_tenant_header: bool = False
    # external BI targets on loopback, private, link-local... hosts (decision 0712)
    bi_allow_private_hosts: bool = False
    blob_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # what one tenant's blobs may take in all, MiB; 0: no limit (decision 0717)
    tenant_storage_mb: float = Field(default=10240.0, ge=0)
    log_level: LogLevel = "warning"
    log_format: LogFormat = "text"
    api: ApiSettings = Field(default_factory=ApiSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    projector: ProjectorSettings = Field(default_factory=ProjectorSettings)
    web: WorkspaceSettings = Field(default_factory=WorkspaceSettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SectionsFromEnvironment(settings_cls))

    @model_validator(mode="after")
    def _production_needs_explicit_services(self) -> Settings:
        if self.env != "production":
            return self
        if not self.kafka_bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS must be set when CARTOLOG_ENV=production")
        if not (self.jwks_url or self.jwks_file) or self.jwt_issuer == "cartolog-dev":
            raise ValueError("production needs CARTOLOG_JWKS_URL (or _FILE) and "
                             "CARTOLOG_JWT_ISSUER of a real identity provider")
        if self.allow_tenant_header:
            raise ValueError("CARTOLOG_ALLOW_TENANT_HEADER is for local use only")
        return self

    @property
    def events_topic(self) -> str:
        """The topic holding every stored event."""
        return f"{self.topic_prefix}.events"

    @property
    def jobs_topic(self) -> str:
        """The topic of simulation jobs."""
        return f"{self.topic_prefix}.simulation.jobs"

    @property
    def results_topic(self) -> str:
        """The topic of simulation results."""
        return f"{self.topic_prefix}.simulation.results"

    @property
    def dlq_topic(self) -> str:
        """Dead-lettered simulation jobs."""
        return f"{self.topic_prefix}.simulation.jobs.dlq"


def known_variables() -> list[str]:
    """Every environment variable a Settings reads."""
    names = list(SCRIPT_VARIABLES)
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            prefix = SECTIONS[name]
            names += [prefix + sub.upper() for sub in _section_model(name).model_fields]
        else:
            alias = field.validation_alias
            names.append(alias if isinstance(alias, str) else PREFIX + name.upper())
    return names


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each CARTOLOG_* variable no setting reads, naming the closest known."""
    known = known_variables()
    # Compared without the prefix, which every candidate shares and would make all alike.
    suffixes = {name.removeprefix(PREFIX): name for name in known if name.startswith(PREFIX)}
    warnings = []
    for name in sorted(key for key in environ if key.upper().startswith(PREFIX)):
        if name.upper() in known:
            continue
        closest = difflib.get_close_matches(name.upper().removeprefix(PREFIX), suffixes, n=1,
                                            cutoff=0.6)
        hint = (f"did you mean {suffixes[closest[0]]}?" if closest
                else "see the README's Configuration")
        warnings.append(f"{name} is not a Cartolog setting and is ignored ({hint})")
    return warnings
