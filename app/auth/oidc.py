"""OpenID Connect relying party: authorization code flow with PKCE (issue 16, point 1).

The provider is found by discovery (`OIDC_ISSUER/.well-known/openid-configuration`); its
metadata and signing keys are kept per process for an hour (keys fetched again when a token
names one we do not have). authlib's OAuth 2 pieces build the authorization request (its
S256 code challenge) and httpx exchanges the code (client_secret_basic, with the verifier);
the ID token's signature, issuer, audience, expiry and nonce are checked with joserfc
(authlib's own JOSE layer). The claims are the ID token's, completed by
the userinfo endpoint when the provider has one (many put groups and roles only there).

Nothing here logs a token, a code or a claim's value.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.config import Settings

METADATA_TTL = 3600.0
# Seconds of clock difference allowed between the provider's host and ours (exp, iat, nbf).
CLOCK_LEEWAY = 60
HTTP_TIMEOUT = 10.0
# Algorithms an ID token may be signed with (never `none`, never a shared-secret HMAC).
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]


class SignInFailed(Exception):
    """The provider's answer could not be used; the message is safe to show and to log."""


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None


@dataclass(frozen=True)
class Transaction:
    """What the callback must match: kept server-side between the redirect and the callback."""

    state: str
    nonce: str
    code_verifier: str
    next: str


_metadata: dict[str, tuple[float, Metadata]] = {}
_keys: dict[str, tuple[float, KeySet]] = {}


async def _json_of(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """The JSON object the provider answers with 200, else SignInFailed saying why."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise SignInFailed(f"the identity provider did not answer ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise SignInFailed(f"the identity provider answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise SignInFailed("the identity provider's answer is not JSON") from exc
    if not isinstance(body, dict):
        raise SignInFailed("the identity provider's answer is not a JSON object")
    return cast(dict[str, Any], body)


async def _get_json(http: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    return await _json_of(http, "GET", url, **kwargs)


class OidcClient:
    def __init__(self, settings: Settings) -> None:
        if settings.oidc_issuer is None or settings.oidc_client_secret is None:
            raise ValueError("single sign-on is not configured")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id or ""
        self.client_secret = settings.oidc_client_secret.get_secret_value()
        self.scopes = settings.oidc_scopes

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT)

    async def metadata(self) -> Metadata:
        cached = _metadata.get(self.issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._http() as http:
            doc = await _get_json(http, self.issuer + "/.well-known/openid-configuration")
        if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignInFailed("the identity provider names another issuer than OIDC_ISSUER")
        try:
            found = Metadata(
                issuer=str(doc["issuer"]),
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=doc.get("userinfo_endpoint"),
                end_session_endpoint=doc.get("end_session_endpoint"),
            )
        except KeyError as exc:
            raise SignInFailed(f"the identity provider's metadata lacks {exc.args[0]}") from exc
        _metadata[self.issuer] = (time.monotonic() + METADATA_TTL, found)
        return found

    async def start(self, redirect_uri: str, next_path: str) -> tuple[str, Transaction]:
        """The provider's authorization URL to send the browser to, and the transaction the
        callback must match (state, nonce, PKCE verifier)."""
        meta = await self.metadata()
        transaction = Transaction(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            next=next_path,
        )
        url = add_params_to_uri(
            meta.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", self.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", self.scopes),
                ("state", transaction.state),
                ("nonce", transaction.nonce),
                ("code_challenge", create_s256_code_challenge(transaction.code_verifier)),
                ("code_challenge_method", "S256"),
            ],
        )
        return str(url), transaction

    async def finish(
        self, redirect_uri: str, transaction: Transaction, code: str
    ) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier), check the ID token, and return the
        claims (the ID token's, completed by userinfo)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": transaction.code_verifier,
        }
        async with self._http() as http:
            token = await _json_of(
                http,
                "POST",
                meta.token_endpoint,
                data=form,
                auth=(quote(self.client_id, safe=""), quote(self.client_secret, safe="")),
                headers={"Accept": "application/json"},
            )
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise SignInFailed("the identity provider sent no ID token")
            claims = await self._verified(meta, id_token, transaction.nonce)
            access_token = token.get("access_token")
            if meta.userinfo_endpoint and isinstance(access_token, str):
                info = await _get_json(
                    http,
                    meta.userinfo_endpoint,
                    headers={"Authorization": f"Bearer {access_token}"},
                )
                if info.get("sub") != claims.get("sub"):
                    raise SignInFailed("userinfo names another subject than the ID token")
                claims = {**info, **claims}
        return claims

    async def _key_set(self, meta: Metadata, refresh: bool = False) -> KeySet:
        cached = _keys.get(meta.jwks_uri)
        if cached is not None and cached[0] > time.monotonic() and not refresh:
            return cached[1]
        async with self._http() as http:
            doc = await _get_json(http, meta.jwks_uri)
        try:
            keys = KeySet.import_key_set(cast(Any, doc))
        except (JoseError, ValueError, KeyError) as exc:
            raise SignInFailed("the identity provider's keys cannot be read") from exc
        _keys[meta.jwks_uri] = (time.monotonic() + METADATA_TTL, keys)
        return keys

    async def _verified(self, meta: Metadata, id_token: str, nonce: str) -> dict[str, Any]:
        keys = await self._key_set(meta)
        try:
            try:
                decoded = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            except JoseError:  # a key rotated since we fetched them: once more, fresh
                keys = await self._key_set(meta, refresh=True)
                decoded = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_LEEWAY,
                iss={"essential": True, "value": meta.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise SignInFailed(f"the ID token was refused ({type(exc).__name__})") from exc
        return dict(decoded.claims)

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end the provider's session too (RP-initiated
        logout), or None when the provider has no end_session endpoint."""
        try:
            meta = await self.metadata()
        except SignInFailed:
            return None
        if not meta.end_session_endpoint:
            return None
        query = urlencode(
            {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        )
        separator = "&" if "?" in meta.end_session_endpoint else "?"
        return meta.end_session_endpoint + separator + query
