"""The one place where engines, clients and the application are built from Settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from sqlalchemy import Engine, create_engine

from adapters.auth import ClaimMapping, JwksSource, TokenVerifier
from adapters.blobs import PostgresBlobStore
from adapters.dev_issuer import DevIssuer
from adapters.eventstore import store_environment
from adapters.kafka import ensure_topics, make_producer
from adapters.relay import NotificationReader, PositionStore, Publisher, Relay
from domain.application import Cartolog
from infra.settings import Settings, unknown_variables

log = logging.getLogger("cartolog.settings")


class NoBroker(RuntimeError):
    """KAFKA_BOOTSTRAP_SERVERS is not set and no local broker was started."""


@dataclass
class Container:
    """Lazily built services for one process; close() releases them."""

    settings: Settings
    _closers: list[object] = field(default_factory=list)

    @cached_property
    def engine(self) -> Engine:
        """SQLAlchemy engine of the read model, relay positions and blobs."""
        return create_engine(self.settings.database_url, pool_pre_ping=True, pool_size=20,
                             max_overflow=20)

    @cached_property
    def blobs(self) -> PostgresBlobStore:
        """The claim-check blob store."""
        quota = self.settings.tenant_storage_mb
        return PostgresBlobStore(self.engine, self.settings.blob_max_bytes,
                                 int(quota * 1024 * 1024) if quota else None,
                                 tenant_quota_mb=lambda tenant: self.app.tenant_storage_quota_mb(
                                     tenant))

    @cached_property
    def app(self) -> Cartolog:
        """The event-sourced application (command API)."""
        return Cartolog(store_environment(self.settings.database_url), blobs=self.blobs)

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka bootstrap servers; raises NoBroker when none is configured."""
        if not self.settings.kafka_bootstrap_servers:
            raise NoBroker("KAFKA_BOOTSTRAP_SERVERS is not set (run `cartolog up` locally)")
        return self.settings.kafka_bootstrap_servers

    def ensure_topics(self) -> list[str]:
        """Create Cartolog's topics with their configured partition counts."""
        s = self.settings
        partitions = {s.events_topic: s.events_partitions, s.jobs_topic: s.jobs_partitions,
                      s.results_topic: s.jobs_partitions, s.dlq_topic: 1}
        return ensure_topics(self.bootstrap_servers, partitions, s.replication_factor)

    def publisher(self) -> Publisher:
        """A publisher of envelopes to the events topic."""
        return Publisher(partial(make_producer, self.bootstrap_servers),
                         self.settings.events_topic, self.app.mapper)

    def reader(self) -> NotificationReader:
        """Reads the store's notification log."""
        return NotificationReader(self.engine)

    def relay(self) -> Relay:
        """The relay process's loop object."""
        positions = PositionStore(self.engine, f"relay:{self.settings.events_topic}")
        recorder = self.app.recorder
        channel = getattr(recorder, "channel_name", "cartolog_events")
        return Relay(self.reader(), self.publisher(), positions, channel,
                     batch_size=self.settings.relay_batch_size)

    @cached_property
    def dev_issuer(self) -> DevIssuer:
        """The local token issuer (development only)."""
        if self.settings.env != "development":
            raise RuntimeError("the dev token issuer is disabled outside development")
        s = self.settings
        return DevIssuer(Path(s.dev_key_file), s.jwt_issuer, s.jwt_audience, s.tenant_claim,
                         s.roles_claim)

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Verifies bearer tokens against the configured JWKS (the dev issuer's by default)."""
        s = self.settings
        if s.jwks_url:
            keys = JwksSource.from_url(s.jwks_url)
        elif s.jwks_file:
            keys = JwksSource.from_file(Path(s.jwks_file))
        else:
            keys = JwksSource.from_document(self.dev_issuer.jwks())
        return TokenVerifier(keys, s.jwt_issuer, s.jwt_audience,
                             ClaimMapping(s.tenant_claim, s.roles_claim))

    def close(self) -> None:
        """Dispose of engines and the application's connections."""
        if "app" in self.__dict__:
            self.app.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def build(settings: Settings) -> Container:
    """Everything a process needs, from its one Settings object."""
    return Container(settings)


def load_settings() -> Settings:
    """The process's Settings, from the environment: built once, at start-up."""
    return Settings()


def warn_about_unknown_variables(environ: Mapping[str, str] = os.environ) -> None:
    """Log a warning for each CARTOLOG_* variable that no setting reads (a typo, mostly)."""
    for warning in unknown_variables(environ):
        log.warning(warning)
