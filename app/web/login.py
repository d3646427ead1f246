"""Logging in and out of the browser screens: a staff token (programs, development) or the
force's identity provider (single sign-on, OpenID Connect with PKCE, issue 16).

Every login, right or wrong, is audited (never the token); failures count towards a lockout
per address and per account (app.auth.login_limits), 429 with `Retry-After` while it lasts.
Single sign-on's callback arrives from the provider's site, where our SameSite=Strict session
cookie would not be sent on the redirect that follows; so the callback answers with a page
that moves on by itself (a navigation from our own site, which carries the cookie).
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CacheDep, ResourcesDep, SessionDep
from app.audit import service as audit
from app.auth import cookie as browser_session
from app.auth import policy, sso
from app.auth import service as auth
from app.auth.login_limits import LoginLimiter
from app.auth.models import SessionMethod
from app.auth.oidc import OidcClient, SignInFailed, Transaction
from app.auth.service import Principal
from app.config import Settings
from app.realtime import revocation
from app.web.routes import _error_page, _page, _safe_next, _viewer, home_for

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# The browser's half of a single sign-on login in progress: a random id, signed.
TRANSACTION_COOKIE = "fc_oidc"
_TRANSACTION_SALT = "firstcontact.oidc-login"
CALLBACK_PATH = "/login/oidc/callback"


def _address(request: Request) -> str | None:
    # uvicorn puts the proxy's X-Forwarded-For here when FORWARDED_ALLOW_IPS trusts it.
    return request.client.host if request.client else None


def _audit_login(
    session: AsyncSession,
    request: Request,
    *,
    method: str,
    staff_id: str | None,
    outcome: str,
) -> None:
    audit.record(
        session,
        actor=f"staff:{staff_id}" if staff_id else "anonymous",
        action="authentication",
        subject_type="staff",
        subject_id=staff_id,
        justification=f"{method} login: {outcome}",
        records={"address": _address(request) or "unknown"},
    )


def _login_page(
    request: Request, settings: Settings, status: int, next_path: str, error: str | None = None
) -> HTMLResponse:
    return _page(
        request,
        "login.html",
        None,
        status=status,
        next=next_path,
        error=error,
        sso_name=settings.oidc_provider_name if settings.sso_enabled else None,
    )


def _locked(request: Request, settings: Settings, retry_after: int) -> HTMLResponse:
    response = _login_page(
        request,
        settings,
        429,
        "",
        error=f"Too many failed logins. Try again in {retry_after} seconds.",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login", response_model=None)
async def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:
    viewer = await _viewer(request, session)
    if viewer is not None and policy.home_of(viewer) is not None:
        return RedirectResponse(_safe_next(next) or home_for(viewer), status_code=303)
    return _login_page(request, request.state.settings, 200, _safe_next(next) or "")


@router.post("/login", response_model=None)
async def login(request: Request, session: SessionDep, cache: CacheDep) -> Response:
    if not browser_session.same_origin(request):
        return _error_page(request, None, 403, "Forbidden", "Log in from this site's own page.")
    settings: Settings = request.state.settings
    limiter = LoginLimiter.from_settings(cache, settings)
    form = await request.form()
    raw = form.get("token")
    token = raw if isinstance(raw, str) else ""
    target = _safe_next(str(form.get("next") or ""))
    owner = await auth.token_owner(session, token)
    retry_after = await limiter.retry_after(_address(request), owner)
    if retry_after is not None:
        _audit_login(session, request, method="token", staff_id=owner, outcome="locked out")
        return _locked(request, settings, retry_after)
    principal = await browser_session.authenticate_token(session, token)
    if principal is None:
        await limiter.failed(_address(request), owner)
        _audit_login(session, request, method="token", staff_id=owner, outcome="refused")
        # Never echo the token back, not even into the form.
        return _login_page(
            request,
            settings,
            401,
            target or "",
            "That token is not valid (unknown, revoked, expired, or the account is inactive).",
        )
    if policy.home_of(principal) is None:
        _audit_login(session, request, method="token", staff_id=principal.id, outcome="no screen")
        return _login_page(
            request,
            settings,
            403,
            "",
            "These screens are for handlers, supervisors and QA reviewers.",
        )
    value = await browser_session.open_session(session, settings, principal)
    _audit_login(session, request, method="token", staff_id=principal.id, outcome="signed in")
    response = RedirectResponse(target or home_for(principal), status_code=303)
    browser_session.set_cookie(response, request, settings, value)
    log.info("browser session opened", extra={"staff_id": principal.id})
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    """End the session on the server (a copy of the cookie is worthless from now on) and close
    its sockets on every worker (after the commit, before this answers); clear the cookie. A
    single sign-on session then goes on to the provider's end of session, when it has one."""
    if not browser_session.same_origin(request):
        return _error_page(request, None, 403, "Forbidden", "Log out from this site's own page.")
    settings: Settings = request.state.settings
    ended = await browser_session.end_session(session, settings, request.cookies)
    provider_logout: str | None = None
    if ended is not None:
        what, method = ended
        revocation.announce(session, resources, what)
        log.info("browser session ended", extra={"staff_id": what.staff_id, "reason": "logout"})
        if method is SessionMethod.oidc and settings.sso_enabled:
            back = str(request.url_for("login_form"))
            provider_logout = await OidcClient(settings).end_session_url(back)
    response: Response
    if provider_logout is None:
        response = RedirectResponse("/login", status_code=303)
    else:
        # A page that moves on by itself, not a redirect: our pages' CSP (form-action
        # 'self') rightly stops a form's POST from being redirected to another site.
        response = _page(
            request,
            "moving_on.html",
            None,
            heading="Signed out",
            link=f"Sign out of {settings.oidc_provider_name} too",
            target=provider_logout,
        )
    browser_session.clear_cookie(response, request, settings)
    return response


# ---- single sign-on ------------------------------------------------------------------------


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        settings.session_secret.get_secret_value(), salt=_TRANSACTION_SALT
    )


def _not_configured(request: Request) -> HTMLResponse:
    return _error_page(request, None, 404, "Not found", "Single sign-on is not configured.")


@router.get("/login/oidc", response_model=None)
async def oidc_start(request: Request, cache: CacheDep, next: str | None = None) -> Response:
    """Send the browser to the identity provider (authorization code with PKCE)."""
    settings: Settings = request.state.settings
    if not settings.sso_enabled:
        return _not_configured(request)
    retry_after = await LoginLimiter.from_settings(cache, settings).retry_after(_address(request))
    if retry_after is not None:
        return _locked(request, settings, retry_after)
    redirect_uri = str(request.url_for("oidc_callback"))
    try:
        url, transaction = await OidcClient(settings).start(redirect_uri, _safe_next(next) or "")
    except SignInFailed as exc:
        log.warning("single sign-on unavailable", extra={"reason": str(exc)})
        return _error_page(request, None, 502, "Sign-in unavailable", str(exc))
    transaction_id = secrets.token_urlsafe(32)
    await sso.keep_transaction(cache, transaction_id, transaction)
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider's redirect back to us is a cross-site navigation.
    response.set_cookie(
        TRANSACTION_COOKIE,
        _serializer(settings).dumps(transaction_id),
        max_age=sso.TRANSACTION_TTL,
        path="/login/oidc",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies(request.url.scheme),
    )
    return response


async def _transaction_of(
    request: Request, settings: Settings, cache: CacheDep
) -> Transaction | None:
    value = request.cookies.get(TRANSACTION_COOKIE)
    if not value:
        return None
    try:
        transaction_id = _serializer(settings).loads(value, max_age=sso.TRANSACTION_TTL)
    except BadSignature:
        return None
    if not isinstance(transaction_id, str):
        return None
    return await sso.take_transaction(cache, transaction_id)


@router.get(CALLBACK_PATH, response_model=None)
async def oidc_callback(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """The provider sends the browser back here: check state, exchange the code, map the
    role, make or find the staff member, open our session."""
    settings: Settings = request.state.settings
    if not settings.sso_enabled:
        return _not_configured(request)
    limiter = LoginLimiter.from_settings(cache, settings)
    retry_after = await limiter.retry_after(_address(request))
    if retry_after is not None:
        return _locked(request, settings, retry_after)
    transaction = await _transaction_of(request, settings, cache)
    if error is not None or not code or not state or transaction is None:
        # A provider's refusal, or a callback this browser did not start (or started long ago).
        await limiter.failed(_address(request))
        _audit_login(session, request, method="oidc", staff_id=None, outcome="refused")
        return _sso_error(request, 400, "The sign-in was not completed. Start again.")
    if not secrets.compare_digest(state, transaction.state):
        await limiter.failed(_address(request))
        _audit_login(session, request, method="oidc", staff_id=None, outcome="state mismatch")
        return _sso_error(request, 400, "The sign-in did not match this browser. Start again.")
    client = OidcClient(settings)
    try:
        claims = await client.finish(str(request.url_for("oidc_callback")), transaction, code)
    except SignInFailed as exc:
        await limiter.failed(_address(request))
        log.warning("single sign-on refused", extra={"reason": str(exc)})
        _audit_login(session, request, method="oidc", staff_id=None, outcome="refused")
        return _sso_error(request, 400, "The identity provider's answer was refused.")
    try:
        principal, created = await sso.sign_in(
            session,
            issuer=client.issuer,
            claims=claims,
            role_claim=settings.oidc_role_claim,
            role_map=settings.role_map(),
        )
    except sso.NoRole:
        _audit_login(session, request, method="oidc", staff_id=None, outcome="no mapped role")
        return _sso_error(
            request,
            403,
            "Your account has no role in this service. Ask your administrator for access.",
        )
    except sso.Inactive:
        _audit_login(session, request, method="oidc", staff_id=None, outcome="inactive")
        return _sso_error(request, 403, "Your account here has been deactivated.")
    return await _signed_in(request, session, settings, principal, transaction.next, created)


def _sso_error(request: Request, status: int, message: str) -> HTMLResponse:
    heading = "Forbidden" if status == 403 else "Sign-in failed"
    response = _error_page(request, None, status, heading, message)
    response.delete_cookie(TRANSACTION_COOKIE, path="/login/oidc")
    return response


async def _signed_in(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    next_path: str,
    created: bool,
) -> Response:
    home = policy.home_of(principal)
    if home is None:  # an admin: no browser screens (they use the CLI and the API)
        _audit_login(session, request, method="oidc", staff_id=principal.id, outcome="no screen")
        return _sso_error(
            request, 403, "These screens are for handlers, supervisors and QA reviewers."
        )
    value = await browser_session.open_session(
        session, settings, principal, method=SessionMethod.oidc
    )
    outcome = "signed in (staff record made)" if created else "signed in"
    _audit_login(session, request, method="oidc", staff_id=principal.id, outcome=outcome)
    log.info("browser session opened", extra={"staff_id": principal.id, "method": "oidc"})
    response = _page(
        request,
        "moving_on.html",
        None,
        heading="Signed in",
        link="Continue to your screen",
        target=next_path or home,
    )
    browser_session.set_cookie(response, request, settings, value)
    response.delete_cookie(TRANSACTION_COOKIE, path="/login/oidc")
    return response
