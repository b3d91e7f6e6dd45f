"""Logs: one line per event, JSON for machines or text for people, each with the request id.

The standard library's ``logging`` throughout (no structlog): uvicorn, SQLAlchemy and
APScheduler log through it already, so one formatter on the root handler shapes every line.
``RequestIdFilter`` stamps each record with the id of the request being served
(``telemed.request_id``), which is also written on the audit rows that request recorded:
``grep`` the id in the logs, or look the audit row up by it, to go from one to the other.

Each request gets one line from the logger ``telemed.access`` (``ObservabilityMiddleware``)
with ``request_id``, ``method``, ``path`` (without the query string, which may hold tokens),
``status`` and ``duration_ms``; uvicorn's own access log is switched off.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from telemed import request_id

ACCESS_LOGGER = "telemed.access"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# (uvicorn's ``color_message`` repeats the message with terminal colours.)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or ``None``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.current.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, the
    record's ``extra`` fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, with `telemed serve --workers N`
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value...``: for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = [
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        ]
        if extra:
            head, _, rest = text.partition("\n")
            text = " ".join([head, *extra]) + (f"\n{rest}" if rest else "")
        return text


def log_config(log_format: LogFormat | str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary; also given to uvicorn, so that each
    worker process it starts logs the same way."""
    formatter = JsonFormatter if LogFormat(log_format) is LogFormat.json else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's loggers come with handlers of their own: send them to ours.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "apscheduler": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure(log_format: LogFormat | str, level: str = "INFO") -> None:
    logging.config.dictConfig(log_config(log_format, level))
