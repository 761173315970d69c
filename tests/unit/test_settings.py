"""One Settings: sections under their own prefixes, a warning for a mistyped variable, and
an event store the process environment cannot reconfigure."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from domain.application import Cartolog
from infra.cli import main
from infra.settings import Settings, known_variables, unknown_variables
from tests.conftest import REPO
from tests.unit.fakes import InMemoryBlobStore


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_each_section_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CARTOLOG_API_READ_WAIT_S": "2.5", "CARTOLOG_WORKERS": "3",
                        "CARTOLOG_PROJECTOR_BATCH": "70", "CARTOLOG_WEB_OIDC_SCOPE": "email",
                        "CARTOLOG_TOPIC_PREFIX": "t1"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.api.read_wait_s, settings.jobs.workers, settings.projector.batch,
            settings.web.oidc_scope, settings.topic_prefix) == (2.5, 3, 70, "email", "t1")


def test_every_documented_variable_is_known() -> None:
    known = set(known_variables())
    readme = (REPO / "README.md").read_text()
    typo = "CARTOLOG_LOG_LEVE"  # the README's example of the warning
    documented = set(re.findall(r"\bCARTOLOG_[A-Z0-9_]*[A-Z0-9]", readme)) - {typo}
    assert len(documented) > 30
    assert {"CARTOLOG_API_READ_WAIT_S", "CARTOLOG_JOB_TIMEOUT_S", "CARTOLOG_PROJECTOR_BATCH",
            "CARTOLOG_WEB_DIST", "DATABASE_URL", "CARTOLOG_LOG_LEVEL"} <= known
    assert documented - known == set()


def test_a_mistyped_variable_names_the_closest_known_one() -> None:
    environ = {"CARTOLOG_LOG_LEVEL": "info", "CARTOLOG_API_READ_WAIT": "1",
               "CARTOLOG_WOKRERS": "4", "CARTOLOG_ZZZ": "x", "HOME": "/root"}
    assert unknown_variables(environ) == [
        "CARTOLOG_API_READ_WAIT is not a Cartolog setting and is ignored "
        "(did you mean CARTOLOG_API_READ_WAIT_S?)",
        "CARTOLOG_WOKRERS is not a Cartolog setting and is ignored "
        "(did you mean CARTOLOG_WORKERS?)",
        "CARTOLOG_ZZZ is not a Cartolog setting and is ignored "
        "(see the README's Configuration)"]


def test_the_cli_warns_about_a_mistyped_variable(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CARTOLOG_LOG_LEVE", "info")
    assert main(["tenant"]) == 2  # a command group alone prints its help
    warnings = [line for line in capsys.readouterr().err.splitlines() if "CARTOLOG_" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert warnings[0].endswith(
        "CARTOLOG_LOG_LEVE is not a Cartolog setting and is ignored "
        "(did you mean CARTOLOG_LOG_LEVEL?)")


def test_the_process_environment_does_not_reconfigure_the_event_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATE_CACHE_MAXSIZE", "1")
    monkeypatch.setenv("CARTOLOG_PERSISTENCE_MODULE", "no.such.module")
    app = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"}, blobs=InMemoryBlobStore())
    try:
        assert app.env.get("AGGREGATE_CACHE_MAXSIZE") == "5000"
        assert app.env.get("PERSISTENCE_MODULE") == "eventsourcing.popo"
    finally:
        app.close()
