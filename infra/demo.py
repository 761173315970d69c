"""The demo tenant, loaded by `cartolog up --demo`."""

from __future__ import annotations

import logging

from domain.errors import AlreadyExists
from domain.values import Actor
from infra.wiring import Container

DEMO_TENANT = "demo"
log = logging.getLogger(__name__)


def load_demo(container: Container) -> None:
    """Register the demo tenant (idempotent)."""
    try:
        container.app.register_tenant(DEMO_TENANT, Actor("operator:demo"), "Demo city")
    except AlreadyExists:
        log.info("demo tenant already registered")
