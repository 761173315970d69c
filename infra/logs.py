"""Logging of every `cartolog` process: warnings only by default, as text or JSON lines.

Library chatter (kafka-python logs every connection at INFO) stays out of an operator's
terminal unless asked for with `--log-level info` or `CARTOLOG_LOG_LEVEL=info`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Literal

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
# kafka-python warns about its own internals (a slow event-loop task, reconnect back-off)
# and heals itself; our code logs the failures that matter, with topic and partition.
CHATTY_LIBRARIES = ("kafka",)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, thread, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(), "thread": record.threadName,
            "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: LogLevel = "warning", log_format: LogFormat = "text") -> None:
    """Send every logger's records at `level` or above to stderr, in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = level in ("warning", "error")
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.NOTSET)
