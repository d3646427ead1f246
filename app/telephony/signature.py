"""Signature of the canonical webhook.

`X-Signature-Timestamp: <unix seconds>` and `X-Signature: base64url(HMAC-SHA256(secret,
"<timestamp>.<raw body bytes>"))`, padding optional. The body is checked as the exact bytes
received, never re-serialised. Current and previous secrets are both accepted so that a key can
be rotated without dropping events. `X-Signature` may carry several comma-separated values
(optionally `v1=`-prefixed) so a platform can sign with old and new keys during a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from app.errors import NotAuthenticated

TIMESTAMP_HEADER = "x-signature-timestamp"
SIGNATURE_HEADER = "x-signature"
TOLERANCE_SECONDS = 300


class BadSignature(NotAuthenticated):
    status, code = 401, "bad_signature"


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The unpadded base64url signature of `body` at `timestamp` (what platforms send)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_headers(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers a client (simulator, tests, benchmarks) sends with `body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Signature-Timestamp": str(ts),
        "X-Signature": sign(secret, ts, body),
        "Content-Type": "application/json",
    }


def _decode(value: str) -> bytes | None:
    value = value.strip()
    if value.startswith("v1="):
        value = value[3:]
    value = value.rstrip("=")
    if not value or len(value) > 128:
        return None
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == hashlib.sha256().digest_size else None


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[bytes],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise `BadSignature` (401, with the reason) unless `body` is signed by one of `secrets`."""
    raw_ts = headers.get(TIMESTAMP_HEADER)
    raw_sig = headers.get(SIGNATURE_HEADER)
    if not raw_ts or not raw_sig:
        raise BadSignature(
            "missing signature headers", {"reason": "missing_headers", "tolerance": tolerance}
        )
    raw_ts = raw_ts.strip()
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
        raise BadSignature("malformed signature timestamp", {"reason": "malformed_timestamp"})
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise BadSignature("signature timestamp too old", {"reason": "stale_timestamp"})
    if timestamp > current + tolerance:
        raise BadSignature("signature timestamp in the future", {"reason": "future_timestamp"})
    candidates = [d for d in (_decode(v) for v in raw_sig.split(",")[:4]) if d is not None]
    if not candidates:
        raise BadSignature("malformed signature", {"reason": "malformed_signature"})
    message = raw_ts.encode() + b"." + body
    matched = False
    # Compare against every key and candidate without stopping early: the time taken does not
    # tell which key (or whether any) matched.
    for secret in secrets:
        expected = hmac.new(secret, message, hashlib.sha256).digest()
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise BadSignature("signature does not match", {"reason": "mismatch"})
