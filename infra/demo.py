"""The demo tenant, loaded by `cartolog up --demo`: Sioux Falls and a baseline scenario."""

from __future__ import annotations

import logging
from pathlib import Path

from api.tntp_import import network_from_tntp_folder
from domain.errors import AlreadyExists
from domain.values import Actor
from infra.wiring import Container

DEMO_TENANT = "demo"
DEMO_DATA = Path(__file__).parent / "demo_data" / "SiouxFalls"
DEMO_ACTOR = Actor("operator:demo")
log = logging.getLogger(__name__)


def load_demo(container: Container) -> None:
    """Register the demo tenant and import Sioux Falls with a baseline scenario, once."""
    try:
        container.app.register_tenant(DEMO_TENANT, DEMO_ACTOR, "Demo city (Sioux Falls)")
    except AlreadyExists:
        log.info("demo tenant already loaded")
        return
    network = network_from_tntp_folder(DEMO_DATA)
    dataset_id = container.app.import_dataset(DEMO_TENANT, "Sioux Falls", network, DEMO_ACTOR,
                                              source_format="tntp")
    container.app.create_scenario(DEMO_TENANT, dataset_id, "Baseline", DEMO_ACTOR)
    log.info("demo tenant loaded: Sioux Falls dataset %s", dataset_id)
