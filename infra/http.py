"""Wires the FastAPI app to this process's services."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from kafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapters.kafka import admin_client
from api.app import create_app
from infra.wiring import Container


def build_api(container: Container) -> FastAPI:
    """The HTTP app with readiness checks of the database and the broker."""

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

    return create_app({"database": database, "broker": broker})
