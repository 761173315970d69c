"""One pydantic-settings object configures every Cartolog process."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.logs import LogFormat, LogLevel

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/cartolog"


class Settings(BaseSettings):
    """Configuration from the environment; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="CARTOLOG_", extra="ignore")

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
    blob_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    log_level: LogLevel = "warning"
    log_format: LogFormat = "text"

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
