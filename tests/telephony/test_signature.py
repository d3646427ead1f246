"""Signature checks against the shared test vectors and the rules of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.telephony.signature import BadSignature, sign, verify

# A copy of the contract's shared vectors (design.md), kept in the repository so that a
# clone anywhere runs them.
VECTORS = json.loads((Path(__file__).parent / "vectors" / "signature.json").read_text())["cases"]
if not VECTORS:  # pragma: no cover - the file is part of the contract
    raise RuntimeError("no signature vectors")


def _headers(ts: int, sig: str) -> dict[str, str]:
    return {"x-signature-timestamp": str(ts), "x-signature": sig}


@pytest.mark.parametrize("case", VECTORS, ids=[str(c["timestamp"]) for c in VECTORS])
@pytest.mark.parametrize("form", ["x_signature", "x_signature_padded"])
def test_vectors_verify(case: dict[str, object], form: str) -> None:
    body = str(case["body"]).encode()
    ts = int(str(case["timestamp"]))
    secret = str(case["secret"]).encode()
    assert sign(secret, ts, body) == case["x_signature"]
    verify(_headers(ts, str(case[form])), body, [secret], now=ts + 10)


@pytest.mark.parametrize("case", VECTORS[:1])
def test_vector_fails_with_changed_byte_wrong_key_or_time(case: dict[str, object]) -> None:
    body = str(case["body"]).encode()
    ts = int(str(case["timestamp"]))
    secret = str(case["secret"]).encode()
    sig = str(case["x_signature"])
    with pytest.raises(BadSignature) as err:
        verify(_headers(ts, sig), body.replace(b"999", b"998"), [secret], now=ts)
    assert err.value.details["reason"] == "mismatch"
    with pytest.raises(BadSignature):
        verify(_headers(ts, sig), body, [b"another key"], now=ts)
    with pytest.raises(BadSignature) as err:
        verify(_headers(ts, sig), body, [secret], now=ts + 301)
    assert err.value.details["reason"] == "stale_timestamp"
    with pytest.raises(BadSignature) as err:
        verify(_headers(ts, sig), body, [secret], now=ts - 301)
    assert err.value.details["reason"] == "future_timestamp"
    # Within the tolerance on both sides.
    verify(_headers(ts, sig), body, [secret], now=ts + 299)
    verify(_headers(ts, sig), body, [secret], now=ts - 299)


def test_previous_secret_accepted_during_rotation() -> None:
    body = b'{"x":1}'
    sig = sign(b"old-secret", 1000, body)
    verify(_headers(1000, sig), body, [b"new-secret", b"old-secret"], now=1000)
    with pytest.raises(BadSignature):
        verify(_headers(1000, sig), body, [b"new-secret"], now=1000)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_headers"),
        ({"x-signature": "abc"}, "missing_headers"),
        ({"x-signature-timestamp": "1000"}, "missing_headers"),
        ({"x-signature-timestamp": "10e3", "x-signature": "abc"}, "malformed_timestamp"),
        ({"x-signature-timestamp": "-1000", "x-signature": "abc"}, "malformed_timestamp"),
        ({"x-signature-timestamp": "1000", "x-signature": "!!!"}, "malformed_signature"),
    ],
)
def test_bad_headers_give_a_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(BadSignature) as err:
        verify(headers, b"{}", [b"k"], now=1000)
    assert err.value.details["reason"] == reason
