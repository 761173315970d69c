"""Wires the FastAPI app to this process's services."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace

import psycopg2
from fastapi import FastAPI
from kafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapters import demand_matrix
from adapters.bi_connectors import HostPolicy
from adapters.job_queue import JobQueue
from adapters.kafka import admin_client
from adapters.projector.queries import crashed, lag_metrics
from api.app import create_app
from api.services import ApiServices, ReadinessCheck
from api.spa import mount_workspace
from api.tile_cache import TileCache
from infra.settings import ApiSettings
from infra.wiring import Container


def api_services(container: Container, api_settings: ApiSettings | None = None,
                 checks: Mapping[str, ReadinessCheck] | None = None) -> ApiServices:
    """What the app needs from this process: application, engine, verifier, tenancy.

    Readiness: the database, the broker, no crashed projector, and `checks` (the
    background threads of `cartolog up`)."""
    settings = container.settings

    def database() -> None:
        try:
            with container.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            raise RuntimeError(str(error).splitlines()[0]) from None

    def broker() -> None:
        try:
            admin = admin_client(container.bootstrap_servers)
            with contextlib.closing(admin):
                admin.list_topics()
        except KafkaError as error:
            raise RuntimeError(str(error)) from None

    def projector() -> None:
        try:
            found = crashed(container.engine)
        except (SQLAlchemyError, psycopg2.Error) as error:
            raise RuntimeError(f"projection status unreadable: {error}".splitlines()[0]) from None
        if found:
            raise RuntimeError("; ".join(found))

    def projection_lag() -> str:
        try:
            return lag_metrics(container.engine, settings.events_topic)
        except (SQLAlchemyError, psycopg2.Error):
            return ""

    limits = replace((api_settings or settings.api).limits(),
                     matrix_cells=demand_matrix.cells_within(settings.blob_max_bytes))
    development = settings.env == "development"
    uses_dev_issuer = not (settings.jwks_url or settings.jwks_file)
    return ApiServices(
        app=container.app, engine=container.engine, verifier=container.token_verifier,
        base_domain=settings.base_domain, allow_tenant_header=settings.allow_tenant_header,
        dev_jwks=container.dev_issuer.jwks if development and uses_dev_issuer else None,
        readiness_checks={"database": database, "broker": broker, "projector": projector,
                          **(checks or {})},
        metrics_text=projection_lag, limits=limits,
        queue_estimate=JobQueue(container.engine, settings.jobs_topic,
                                settings.jobs.worker_liveness_s).estimate,
        tiles=TileCache(limits.tile_cache_bytes),
        bi_hosts=HostPolicy(allow_private=settings.bi_allow_private_hosts),
        storage_usage=lambda tenant: (container.blobs.used_bytes(tenant),
                                      container.blobs.quota_of(tenant)))


def build_api(container: Container, api_settings: ApiSettings | None = None,
              checks: Mapping[str, ReadinessCheck] | None = None) -> FastAPI:
    """The HTTP app with its readiness checks, and the map workspace (api/spa.py)."""
    return mount_workspace(create_app(api_services(container, api_settings, checks)),
                           container.settings)
