"""Single sign-on's ID token checks (issue 16, point 1): the token the provider returns from
the code exchange is used only when signed by one of the provider's keys and naming our
issuer, our client, a live time and the nonce of this very login. (The whole flow runs
against a real provider in tests/web/test_sso.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from pydantic import SecretStr

from app.auth.oidc import Metadata, OidcClient, SignInFailed
from app.config import Settings

ISSUER = "https://idp.example.test/tenant/v2.0"
META = Metadata(
    issuer=ISSUER,
    authorization_endpoint=ISSUER + "/authorize",
    token_endpoint=ISSUER + "/token",
    jwks_uri=ISSUER + "/keys",
    userinfo_endpoint=None,
    end_session_endpoint=None,
)
KEY = RSAKey.generate_key(2048, parameters={"kid": "current"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "current"})


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> OidcClient:
    settings = Settings(
        oidc_issuer=ISSUER,
        oidc_client_id="firstcontact",
        oidc_client_secret=SecretStr("s" * 32),
        oidc_role_map="FC-Handlers=handler",
    )
    oidc = OidcClient(settings)

    async def keys(meta: Metadata, refresh: bool = False) -> KeySet:
        return KeySet([KEY])

    monkeypatch.setattr(oidc, "_key_set", keys)
    return oidc


def _token(key: RSAKey = KEY, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "firstcontact",
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "nonce": "nonce-1",
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "current"}, claims, key)


async def test_a_good_id_token_gives_its_claims(client: OidcClient) -> None:
    claims = await client._verified(META, _token(roles=["FC-Handlers"]), "nonce-1")
    assert claims["sub"] == "user-1" and claims["roles"] == ["FC-Handlers"]


@pytest.mark.parametrize(
    "token",
    [
        _token(nonce="another-login"),
        _token(nonce=None),
        _token(aud="another-client"),
        _token(iss="https://evil.example.test"),
        _token(exp=int(time.time()) - 3600),
        _token(sub=None),
        _token(key=STRANGER),
    ],
    ids=["nonce", "no-nonce", "audience", "issuer", "expired", "no-subject", "wrong-key"],
)
async def test_a_bad_id_token_is_refused(client: OidcClient, token: str) -> None:
    with pytest.raises(SignInFailed, match="ID token was refused"):
        await client._verified(META, token, "nonce-1")


async def test_an_unsigned_id_token_is_refused(client: OidcClient) -> None:
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    body = _token().split(".")[1]
    with pytest.raises(SignInFailed):
        await client._verified(META, f"{header}.{body}.", "nonce-1")
