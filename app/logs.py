"""Structured logging that never writes personal data.

Phone numbers are masked to their last three digits wherever they appear in a rendered line,
whatever logged them (our code, uvicorn's access log, a library's exception text). Names and
narratives are never passed to the logger in the first place: log ids, not content.

Credentials and query strings never reach a line either: request lines (uvicorn's access
log and its WebSocket lines) keep the path and drop the query (a household lookup carries
part of an address, a refused `/ws?token=` a credential), and every rendered line is scrubbed
again as it is written: any `?query` after a path is cut and our tokens (`fct_...`) masked.

Exceptions are rendered without their messages: a type and the frames it passed through
(file, line, function), nothing else. Messages quote data (a driver's "Key (id)=(...)", a
parser's offending input), and no masking can know every shape of it. Access lines keep the
path but not the query string (a household search carries part of an address).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

# The request and call the work in hand is for (app.correlation sets them): every line
# written while they are set carries them as `request_id` and `call_id`.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
CALL_ID: ContextVar[int | None] = ContextVar("call_id", default=None)

# A run of 7+ digits, optionally with a leading + and the separators people type.
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s\-().]*\d){6,}")


def mask_phone_numbers(text: str) -> str:
    """Replace every phone-number-like run with stars, keeping its last three digits."""

    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "*" * (len(digits) - 3) + digits[-3:]

    return _PHONE.sub(_mask, text)


# A path followed by its query string, wherever it appears in a line.
_QUERY = re.compile(r"(/[^\s\"'?]*)\?[^\s\"']*")
# Our API tokens (app.auth.service.TOKEN_PREFIX + token_urlsafe).
_TOKEN = re.compile(r"fct_[A-Za-z0-9_\-]+")


def scrub(text: str) -> str:
    """What every rendered line goes through: tokens masked, query strings cut, phone
    numbers masked to their last three digits."""
    return mask_phone_numbers(_QUERY.sub(r"\1", _TOKEN.sub("fct_[redacted]", text)))


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


# uvicorn's ANSI-coloured duplicate of the message: noise in a JSON line.
_DROPPED = frozenset({"color_message"})


_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_LIBRARIES = ("site-packages/", "dist-packages/")
# Chains and groups are followed this far; deeper is summarised.
_MAX_LINKS = 8


def _short_file(filename: str) -> tuple[str, bool]:
    """A frame's file relative to its package root, and whether it is this project's own."""
    for marker in _LIBRARIES:  # first: a virtualenv may live inside the project
        if marker in filename:
            return filename.split(marker, 1)[1], False
    if filename.startswith(_ROOT):
        return filename[len(_ROOT) :], True
    return filename, False


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str, bool]]:
    """(file, line, function, ours) per frame: locations only, never locals or source."""
    frames = []
    for frame, lineno in traceback.walk_tb(tb):
        file, ours = _short_file(frame.f_code.co_filename)
        frames.append((file, lineno, frame.f_code.co_name, ours))
    return frames


def exception_origin(exc: BaseException) -> str:
    """Where `exc` was raised, as `file:function:line`: the innermost frame of this project's
    code, else the innermost frame. Never the message."""
    frames = _frames(exc.__traceback__)
    ours = [f for f in frames if f[3]]
    file, line, function, _ = (ours or frames or [("?", 0, "?", False)])[-1]
    return f"{file}:{function}:{line}"


def describe_exception(exc: BaseException) -> str:
    """A traceback without values: each exception's type and its frames, for the chain of
    causes and the members of exception groups. The messages are left out (see above)."""
    lines: list[str] = []
    seen: set[int] = set()

    def render(error: BaseException, indent: str, links: int) -> None:
        if id(error) in seen or links > _MAX_LINKS:
            lines.append(indent + "...")
            return
        seen.add(id(error))
        lines.append(f"{indent}{_type_name(error)} (message withheld)")
        for file, line, function, _ in _frames(error.__traceback__):
            lines.append(f"{indent}  at {file}:{line} in {function}")
        if error.__cause__ is not None:
            lines.append(indent + "caused by:")
            render(error.__cause__, indent, links + 1)
        elif error.__context__ is not None and not error.__suppress_context__:
            lines.append(indent + "while handling:")
            render(error.__context__, indent, links + 1)
        if isinstance(error, BaseExceptionGroup):
            for member in error.exceptions[:_MAX_LINKS]:
                lines.append(indent + "member:")
                render(member, indent + "  ", links + 1)

    render(exc, "", 0)
    return "\n".join(lines)


def _describe(exc_info: object) -> str:
    exc = exc_info[1] if isinstance(exc_info, tuple) else None
    return describe_exception(exc) if isinstance(exc, BaseException) else ""


class NoQueryInAccessLog(logging.Filter):
    """uvicorn's access line is `client - "METHOD path?query HTTP/x" status` and its WebSocket
    line `client - "WebSocket path?query" [accepted]` (on `uvicorn.error`): keep the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] if isinstance(a, str) and a.startswith("/") else a for a in args
            )
        return True


class QuietWebhookAccess(logging.Filter):
    """No access line for an accepted telephony webhook (2xx): one per call event, at
    hundreds a second, each costing more CPU than the floor spends on a whole request (issue
    19); the stored event is the record. Refusals (4xx/5xx) are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and args[1] == "POST":
            path, status = args[2], args[4]
            if isinstance(path, str) and path.startswith("/api/v1/telephony/"):
                return not (isinstance(status, int) and 200 <= status < 300)
        return True


class NoWireDumps(logging.Filter):
    """uvicorn hands its `uvicorn.error` logger to the websockets library, which at DEBUG
    writes every handshake header (`Authorization: Bearer ...`: a credential) and a preview
    of every frame (caller context, cues, names). Those lines are dropped at any level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or "/websockets/" not in record.pathname


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with `extra=` are kept, masked."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _DROPPED and not key.startswith("_"):
                payload[key] = scrub(value) if isinstance(value, str) else value
        # Not scrubbed: only a sane id is ever set (app.correlation), and masking digits in
        # a hex id would break the join with the answer's X-Request-ID.
        request_id = REQUEST_ID.get()
        if request_id is not None:
            payload["request_id"] = request_id
        call_id = CALL_ID.get()
        if call_id is not None:
            payload.setdefault("call_id", call_id)
        if record.exc_info:
            payload["exc"] = scrub(_describe(record.exc_info))
        if record.stack_info:
            payload["stack"] = scrub(record.stack_info)
        return json.dumps(payload, default=str)


# What logging hands `formatException` (typeshed's private `_SysExcInfoType`).
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = scrub(super().format(record))
        request_id, call_id = REQUEST_ID.get(), CALL_ID.get()
        if request_id is not None:
            line += f" request_id={request_id}"
        if call_id is not None:
            line += f" call_id={call_id}"
        return line

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 (logging's name)
        return _describe(ei)


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
    for name, kind in (
        ("uvicorn.access", QuietWebhookAccess),
        ("uvicorn.access", NoQueryInAccessLog),
        ("uvicorn.error", NoQueryInAccessLog),
        ("uvicorn.error", NoWireDumps),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
    # Database drivers log each statement with its parameters at DEBUG/INFO: narratives,
    # names and numbers would land in the logs. They stay at WARNING whatever LOG_LEVEL says.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


QUIET_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "websockets",  # frames and headers at DEBUG, when used with its own loggers
    "httpx",  # every request's URL, query string included, at INFO
    "httpcore",
)


def uvicorn_log_config(level: str, json_lines: bool) -> dict[str, object]:
    """A dictConfig for uvicorn (it reconfigures logging in each worker process)."""
    formatter = "app.logs.JsonFormatter" if json_lines else "app.logs.PlainFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "filters": {
            "no_query": {"()": "app.logs.NoQueryInAccessLog"},
            "no_wire_dumps": {"()": "app.logs.NoWireDumps"},
            "quiet_webhooks": {"()": "app.logs.QuietWebhookAccess"},
        },
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
            "uvicorn.error": {
                "handlers": [],
                "propagate": True,
                "level": level,
                "filters": ["no_wire_dumps", "no_query"],
            },
            "uvicorn.access": {
                "handlers": [],
                "propagate": True,
                "level": level,
                "filters": ["quiet_webhooks", "no_query"],
            },
        },
    }
