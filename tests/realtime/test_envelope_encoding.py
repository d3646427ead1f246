"""The envelope's JSON (orjson since issue 19): the same values the standard library's
encoder gave, datetimes in the envelope's own form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from app import json_codec
from app.realtime.envelope import control, encode_body, frame


class _Ref(BaseModel):
    id: str
    at: datetime


def test_a_body_decodes_to_what_was_encoded_with_datetimes_and_models_in_their_form() -> None:
    at = datetime(2026, 12, 1, 5, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1)))
    data = {
        "names": ("Zoë", "Siân"),
        "kinds": frozenset({"repeat_victim"}),
        "at": at,
        "ref": _Ref(id="p1", at=at),
        "counts": {1: 2},
    }
    body = encode_body("call.ringing", 7, data)
    decoded = json.loads(frame("1-0", body))
    assert decoded["id"] == "1-0"
    assert decoded["type"] == "call.ringing" and decoded["call_id"] == 7
    assert decoded["data"]["names"] == ["Zoë", "Siân"]
    assert decoded["data"]["kinds"] == ["repeat_victim"]
    assert decoded["data"]["at"] == "2026-12-01T04:00:00.123000Z"  # UTC, Z, as before
    assert decoded["data"]["ref"] == _Ref(id="p1", at=at).model_dump(mode="json")
    assert decoded["data"]["counts"] == {"1": 2}  # integer keys as strings, as json did
    assert " " not in body.replace("Zoë", "").replace("Siân", "")  # compact
    assert "Zoë" in body  # UTF-8, not \\u escapes


def test_control_frames_and_unknown_types() -> None:
    decoded = json.loads(control("error", {"reason": "bad_cursor"}, None))
    assert decoded == {
        "id": None, "type": "error", "ts": decoded["ts"], "call_id": None,
        "data": {"reason": "bad_cursor"},
    }  # fmt: skip
    assert decoded["ts"].endswith("Z")
    with pytest.raises(TypeError):  # an unknown type is refused, not written as something
        encode_body("call.ringing", 1, {"x": object()})


def test_columns_codec_round_trips() -> None:
    value = {"a": [1, 2.5, None, True], "b": {"c": "é"}}
    assert json_codec.loads(json_codec.dumps(value)) == value
    assert json_codec.loads(json_codec.dumps(value).encode()) == value
    with pytest.raises(TypeError):  # as json.dumps: no datetimes in columns
        json_codec.dumps({"at": datetime.now(UTC)})
