"""One pydantic-settings object configures every Cartolog process."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    blob_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)

    @model_validator(mode="after")
    def _production_needs_explicit_services(self) -> Settings:
        if self.env == "production" and not self.kafka_bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS must be set when CARTOLOG_ENV=production")
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
