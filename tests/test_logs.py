import json
import logging

import pytest

from app.logs import (
    QUIET_LOGGERS,
    JsonFormatter,
    NoQueryInAccessLog,
    PlainFormatter,
    describe_exception,
    exception_origin,
    mask_phone_numbers,
    scrub,
    uvicorn_log_config,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("caller +447700900123 rang", "caller *********123 rang"),
        ("from 07700 900123.", "from ********123."),
        ("+44 (0)20 7946 0018", "**********018"),
        ("call 999 now", "call 999 now"),
        ("event ev-0001 call_id 42", "event ev-0001 call_id 42"),
    ],
)
def test_phone_numbers_keep_only_last_three_digits(raw: str, masked: str) -> None:
    assert mask_phone_numbers(raw) == masked


def test_json_lines_mask_message_and_extras() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "from %s", ("07700900123",), None)
    record.caller = "+447700900123"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "from ********123"
    assert line["caller"] == "*********123"
    assert "07700900123" not in json.dumps(line)


def _raise_chain() -> None:
    try:
        raise KeyError("Key (id)=(Quentin Zebedee) already exists")
    except KeyError as exc:
        raise ValueError("narrative: she is pregnant and he has a knife") from exc


def _render(formatter: logging.Formatter, exc: BaseException) -> str:
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "failed", None, (type(exc), exc, exc.__traceback__)
    )
    return formatter.format(record)


@pytest.mark.parametrize("formatter", [JsonFormatter(), PlainFormatter("%(message)s")])
def test_tracebacks_carry_types_and_frames_never_messages(formatter: logging.Formatter) -> None:
    try:
        _raise_chain()
    except ValueError as exc:
        line = _render(formatter, exc)
    for word in ("pregnant", "knife", "Quentin", "Zebedee"):
        assert word not in line
    assert "ValueError (message withheld)" in line
    assert "KeyError (message withheld)" in line
    assert "tests/test_logs.py" in line and "in _raise_chain" in line


def test_exception_groups_are_rendered_value_free() -> None:
    try:
        raise ExceptionGroup("group", [OSError("secret-a"), RuntimeError("secret-b")])
    except ExceptionGroup as exc:
        text = describe_exception(exc)
    assert "secret" not in text
    assert "OSError" in text and "RuntimeError" in text


def test_exception_origin_is_the_innermost_frame_of_our_code() -> None:
    try:
        _raise_chain()
    except ValueError as exc:
        where = exception_origin(exc)
    assert where.startswith("tests/test_logs.py:_raise_chain:")


def test_access_lines_keep_the_path_not_the_query() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/history/households?address=9%20Acacia%20Road",
         "1.1", 200),
        None,
    )  # fmt: skip
    assert NoQueryInAccessLog().filter(record)
    line = JsonFormatter().format(record)
    assert "Acacia" not in line
    assert "GET /api/v1/history/households HTTP/1.1" in line


def test_websocket_lines_keep_the_path_not_the_token() -> None:
    """uvicorn writes socket handshakes on `uvicorn.error` with the query string: a token
    sent in the URL (refused) would be logged in clear."""
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/ws?token=fct_abcdefghijklmnop&after=17-0"), None,
    )  # fmt: skip
    assert NoQueryInAccessLog().filter(record)
    line = JsonFormatter().format(record)
    assert "fct_" not in line and "after" not in line
    assert '"WebSocket /ws\\" [accepted]' in line
    config = uvicorn_log_config("INFO", True)
    loggers = config["loggers"]
    assert isinstance(loggers, dict)
    assert "no_query" in loggers["uvicorn.error"]["filters"]
    assert "no_query" in loggers["uvicorn.access"]["filters"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("GET /cti?token=fct_Zz9-_x1 refused", "GET /cti refused"),
        ("token fct_Zz9-_x1abc in a message", "token fct_[redacted] in a message"),
        ('"/api/v1/history/households?call_id=1&address=12%20Acacia"',
         '"/api/v1/history/households"'),
        ("http://h:8000/api/v1/history/search?q=Jo+Demo done",
         "http://h:8000/api/v1/history/search done"),
        ("no query? none here", "no query? none here"),
    ],
)  # fmt: skip
def test_every_line_is_scrubbed_of_tokens_and_query_strings(raw: str, clean: str) -> None:
    assert scrub(raw) == clean
    # Whichever logger wrote it, in a message or an extra field.
    record = logging.LogRecord("somelib", logging.INFO, __file__, 1, "%s", (raw,), None)
    record.url = raw
    payload = json.loads(JsonFormatter().format(record))
    assert payload["msg"] == clean and payload["url"] == clean
    assert PlainFormatter("%(message)s").format(record) == clean


def test_http_client_request_lines_are_held_back() -> None:
    """httpx logs each request's full URL (query string included) at INFO."""
    assert {"httpx", "httpcore"} <= set(QUIET_LOGGERS)
