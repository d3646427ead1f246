import json
import logging

import pytest

from app.logs import JsonFormatter, mask_phone_numbers


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
