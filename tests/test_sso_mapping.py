"""Single sign-on's pure parts (issue 16, point 1): OIDC_ROLE_MAP parsing and the role a
provider's claims map to (a string or a list; the first map entry held wins)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from app.auth.models import Role
from app.auth.sso import role_from_claims
from app.config import Settings, parse_role_map

MAP = parse_role_map("FC-Supervisors=supervisor, FC-Handlers=handler,QA=qa")


def test_the_role_map_keeps_its_order() -> None:
    assert MAP == [("FC-Supervisors", "supervisor"), ("FC-Handlers", "handler"), ("QA", "qa")]
    # Entra ID group ids are GUIDs; `=` inside a value is kept (the last one splits).
    assert parse_role_map("a=b=handler") == [("a=b", "handler")]


@pytest.mark.parametrize("bad", ["FC-Machines=integration", "FC-Handlers", "=handler", "x=boss"])
def test_the_role_map_refuses_what_is_not_a_persons_role(bad: str) -> None:
    with pytest.raises(ValueError, match="OIDC_ROLE_MAP"):
        parse_role_map(bad)


@pytest.mark.parametrize(
    ("claim", "role"),
    [
        (["Everyone", "FC-Handlers"], Role.handler),
        (["FC-Handlers", "FC-Supervisors"], Role.supervisor),  # the map's order, not the claim's
        ("QA", Role.qa),
        (["Finance"], None),
        ([], None),
        (None, None),
        (42, None),
    ],
)
def test_the_first_mapped_value_the_claim_holds_is_the_role(
    claim: object, role: Role | None
) -> None:
    assert role_from_claims({"groups": claim}, "groups", MAP) == role
    assert role_from_claims({"roles": claim}, "groups", MAP) is None  # another claim


def test_an_issuer_needs_a_client_and_a_valid_map() -> None:
    with pytest.raises(ValidationError, match="OIDC_CLIENT_ID"):
        Settings(oidc_issuer="https://login.example.test/tenant/v2.0")
    with pytest.raises(ValidationError, match="OIDC_ROLE_MAP"):
        Settings(
            oidc_issuer="https://login.example.test/tenant/v2.0",
            oidc_client_id="firstcontact",
            oidc_client_secret=SecretStr("s" * 32),
            oidc_role_map="FC-Bots=integration",
        )
