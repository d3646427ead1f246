"""Structured logging that never writes personal data.

Phone numbers are masked to their last three digits wherever they appear in a rendered line,
whatever logged them (our code, uvicorn's access log, a library's exception text). Names and
narratives are never passed to the logger in the first place: log ids, not content.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# A run of 7+ digits, optionally with a leading + and the separators people type.
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s\-().]*\d){6,}")


def mask_phone_numbers(text: str) -> str:
    """Replace every phone-number-like run with stars, keeping its last three digits."""

    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "*" * (len(digits) - 3) + digits[-3:]

    return _PHONE.sub(_mask, text)


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


# uvicorn's ANSI-coloured duplicate of the message: noise in a JSON line.
_DROPPED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with `extra=` are kept, masked."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_phone_numbers(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _DROPPED and not key.startswith("_"):
                payload[key] = mask_phone_numbers(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = mask_phone_numbers(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_phone_numbers(super().format(record))


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route them through ours so its lines are masked too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Database drivers log each statement with its parameters at DEBUG/INFO: narratives,
    # names and numbers would land in the logs. They stay at WARNING whatever LOG_LEVEL says.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool")


def uvicorn_log_config(level: str, json_lines: bool) -> dict[str, Any]:
    """A dictConfig for uvicorn (it reconfigures logging in each worker process)."""
    formatter = "app.logs.JsonFormatter" if json_lines else "app.logs.PlainFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": level},
        },
    }
