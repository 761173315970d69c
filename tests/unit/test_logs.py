"""Logging: warnings only by default, CARTOLOG_LOG_LEVEL or --log-level, text or JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from infra.cli import main
from infra.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.NOTSET)


def level_after(argv: list[str]) -> int:
    assert main(argv) == 2  # a command group alone prints its help
    return logging.getLogger().level


def test_default_is_warnings_and_kafka_errors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTOLOG_LOG_LEVEL", raising=False)
    assert level_after(["tenant"]) == logging.WARNING
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.ERROR


def test_environment_then_option_choose_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTOLOG_LOG_LEVEL", "info")
    assert level_after(["tenant"]) == logging.INFO
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.INFO
    assert level_after(["--log-level", "error", "tenant"]) == logging.ERROR
    assert level_after(["-v", "tenant"]) == logging.DEBUG


def test_a_bad_level_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CARTOLOG_LOG_LEVEL", "loud")
    assert main(["tenant"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("cartolog: error: invalid configuration: log_level:")
    assert "\n" not in error


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    logging.getLogger("cartolog.relay").info("published %d events", 3)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("cartolog.relay").exception("failed")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["level"], first["logger"], first["message"]) == (
        "info", "cartolog.relay", "published 3 events")
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
