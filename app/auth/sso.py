"""Single sign-on, our side: the provider's claims -> one of our roles -> a staff member.

The role comes from one claim (OIDC_ROLE_CLAIM: `roles` for Entra ID app roles, `groups` for
group ids), a string or a list, mapped by OIDC_ROLE_MAP; the first map entry the claim holds
wins, so a force lists its most specific group first. A first login with a mapped role makes
the staff member (id `sso-` + a hash of issuer and subject: stable, and no personal data in
it); later logins find them by the same subject and follow the provider's role (the provider
is where people are managed). No mapped role: refused, nothing made or changed. A staff member
deactivated here stays out whatever the provider says.

The login transaction (state, nonce, PKCE verifier) waits in the cache between the redirect and
the callback (any worker may get the callback), under a random id the browser holds in a
short-lived cookie: single use, ten minutes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.models import Role, Staff
from app.auth.oidc import Transaction
from app.auth.service import Principal
from app.cache import Cache

TRANSACTION_TTL = 600
NAME_MAX = 200


class NoRole(Exception):
    """The provider's claims map to none of our roles."""


class Inactive(Exception):
    """The staff member exists here but has been deactivated."""


def subject_key(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer.rstrip('/')}\n{subject}".encode()).hexdigest()


def role_from_claims(
    claims: Mapping[str, Any], claim: str, role_map: Sequence[tuple[str, str]]
) -> Role | None:
    """Our role for these claims: the first entry of the map whose value the claim holds."""
    value = claims.get(claim)
    held: set[str]
    if isinstance(value, str):
        held = {value}
    elif isinstance(value, list):
        held = {v for v in value if isinstance(v, str)}
    else:
        return None
    for wanted, role in role_map:
        if wanted in held:
            return Role(role)
    return None


def _display_name(claims: Mapping[str, Any], fallback: str) -> str:
    for claim in ("name", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:NAME_MAX]
    return fallback


async def sign_in(
    session: AsyncSession,
    *,
    issuer: str,
    claims: Mapping[str, Any],
    role_claim: str,
    role_map: Sequence[tuple[str, str]],
) -> tuple[Principal, bool]:
    """The staff member these verified claims sign in, made on their first login; and
    whether they were made now. Raises NoRole or Inactive (nothing written then)."""
    role = role_from_claims(claims, role_claim, role_map)
    if role is None:
        raise NoRole()
    key = subject_key(issuer, str(claims["sub"]))
    staff = (await session.scalars(select(Staff).where(Staff.oidc_subject == key))).first()
    created = staff is None
    if staff is None:
        staff_id = "sso-" + key[:16]
        staff = Staff(
            id=staff_id,
            name=_display_name(claims, staff_id),
            role=role.value,
            active=True,
            oidc_subject=key,
        )
        session.add(staff)
        audit.record(
            session,
            actor=f"staff:{staff_id}",
            action="collection",
            subject_type="staff",
            subject_id=staff_id,
            justification=f"made by first single sign-on login as {role.value}",
        )
    elif not staff.active:
        raise Inactive()
    elif staff.role != role.value:
        audit.record(
            session,
            actor=f"staff:{staff.id}",
            action="alteration",
            subject_type="staff",
            subject_id=staff.id,
            justification=f"role {staff.role} -> {role.value} from single sign-on",
        )
        staff.role = role.value
    await session.flush()
    return Principal(staff.id, staff.name, Role(staff.role)), created


def _transaction_key(transaction_id: str) -> str:
    return "oidc-login:" + hashlib.sha256(transaction_id.encode()).hexdigest()


async def keep_transaction(cache: Cache, transaction_id: str, transaction: Transaction) -> None:
    body = {
        "state": transaction.state,
        "nonce": transaction.nonce,
        "code_verifier": transaction.code_verifier,
        "next": transaction.next,
    }
    await cache.set(
        _transaction_key(transaction_id), json.dumps(body).encode(), ttl_seconds=TRANSACTION_TTL
    )


async def take_transaction(cache: Cache, transaction_id: str) -> Transaction | None:
    """The transaction kept under this id, removed (a callback is answered once)."""
    key = _transaction_key(transaction_id)
    raw = await cache.get(key)
    if raw is None:
        return None
    await cache.delete(key)
    body = json.loads(raw)
    return Transaction(
        state=body["state"],
        nonce=body["nonce"],
        code_verifier=body["code_verifier"],
        next=body["next"],
    )
