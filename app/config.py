"""Settings read from the environment (and an optional `.env`).

With nothing set the service runs embedded: SQLite under ./var and in-process cache and broker,
so a newcomer's first command works. Production sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets shipped as defaults so that the embedded mode starts; production refuses them.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-only-change-me"})
DEFAULT_SECRET = "dev-only-change-me"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/firstcontact.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # Every Redis key and channel starts with this, so deployments (or test runs) can share one.
    redis_prefix: str = "fc:"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # A test query on every pool checkout: one more round trip per transaction. Off by default:
    # a connection found dead on use is invalidated with the whole pool (the request fails
    # once, nothing 2xx is lost, the platform retries) and the next checkout reconnects.
    db_pre_ping: bool = False
    # PostgreSQL's statement_timeout for the service's connections (issue 18): a statement
    # that waits longer (a locked table) is cancelled and its request answered 503 with
    # Retry-After, never held for the platform's whole timeout. 0: no limit.
    database_statement_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    # Freeze the start-up heap out of the garbage collector's sight (app.heap). `serve` turns it
    # on; in-process apps (tests) leave it off, as each would leave its heap frozen.
    gc_freeze: bool = False

    telephony_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    telephony_secret_previous: SecretStr | None = None
    session_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    # Browser sessions (issue 7): a session lasts one shift at most, then log in again. Its row
    # ends then (issue 11) and its sockets close; a few seconds is allowed for tests.
    session_max_age_seconds: int = Field(default=12 * 3600, ge=1, le=7 * 24 * 3600)

    log_level: str = "INFO"
    log_json: bool = True

    # Request body ceilings (bytes). Telephony bodies are small; anything larger is an attack
    # or a misconfigured platform.
    telephony_max_body: int = Field(default=64 * 1024, ge=1024)
    # The batch webhook (many canonical events per signed request): events and bytes.
    telephony_max_batch: int = Field(default=500, ge=1, le=10_000)
    # Single events that arrive while a transaction is in flight share the next one, up to
    # this many (app.calls.grouping); 1 gives every event a transaction of its own.
    telephony_group_max: int = Field(default=100, ge=1, le=10_000)
    # Fewer than this many waiting go one transaction each, in arrival order: for two or
    # three events the batch path's statements cost more than the single path's.
    telephony_group_min: int = Field(default=4, ge=2, le=10_000)
    # Events of a stored call that change only its state and what is published (ringing,
    # answered, transferred) go in two statements and no transaction on PostgreSQL
    # (app.calls.express); off: every event takes the locked path.
    telephony_express: bool = True
    telephony_max_batch_body: int = Field(default=1024 * 1024, ge=1024)
    max_body: int = Field(default=1024 * 1024, ge=1024)

    # Telephony (issue 3). Caller numbers without a country code are read in this region.
    default_region: str = Field(default="GB", min_length=2, max_length=2)
    # The public base URL the platform calls (behind a proxy, the host the platform sees):
    # Twilio signs the full URL it requested, so we rebuild it from this when set.
    public_base_url: str | None = None
    twilio_auth_token: SecretStr | None = None
    # Processing of accepted events: the inline attempt's lease, the sweeper's poll interval
    # and the first retry delay (doubling up to pipeline_retry_max).
    pipeline_lease_seconds: float = Field(default=30.0, gt=0)
    pipeline_poll_seconds: float = Field(default=1.0, gt=0)
    pipeline_retry_base_seconds: float = Field(default=1.0, gt=0)
    pipeline_retry_max_seconds: float = Field(default=300.0, gt=0)

    # History (issue 4): how far back a caller lookup reads contacts (>= the longest rule
    # window), and how long a summary may sit in the cache (its key is versioned anyway).
    history_horizon_days: int = Field(default=400, ge=1, le=3650)
    history_cache_ttl_seconds: float = Field(default=3600.0, gt=0)
    # Purpose limits (issue 16 point 3): person and household search serve a call that is
    # live or ended at most this many minutes ago (wrap-up); each staff member may search at
    # most this many times a minute (counted in the cache, so across workers).
    search_wrapup_minutes: float = Field(default=15.0, ge=0, le=24 * 60)
    search_rate_per_minute: int = Field(default=30, ge=1, le=10_000)

    # Real-time delivery (issue 5). How long a channel keeps messages for resume; the
    # WebSocket limits (frame size, per-socket queue, send timeout) and heartbeats. An empty
    # ALLOWED_ORIGINS accepts only pages served from the host the socket was opened on.
    realtime_retention_seconds: float = Field(default=24 * 3600.0, gt=0)
    allowed_origins: str = ""
    ws_max_message: int = Field(default=64 * 1024, ge=1024)
    # permessage-deflate on /ws: off, frames are small and each compressed socket keeps zlib
    # state (tens of KiB) and costs CPU per frame on the ring -> screen path.
    ws_deflate: bool = False
    ws_queue_size: int = Field(default=1024, ge=1)
    ws_send_timeout: float = Field(default=5.0, gt=0)
    ws_heartbeat_seconds: float = Field(default=20.0, gt=0)
    ws_idle_timeout: float = Field(default=60.0, gt=0)
    # Safety net behind the broker's control messages that close sockets whose credential
    # ended (issue 11): each worker re-checks all its sockets' credentials this often.
    ws_auth_recheck_seconds: float = Field(default=60.0, gt=0)
    # The transactional outbox (issue 18): the worker that commits publishes its messages at
    # once; each worker's relay looks this often for messages left unsent (a crash, Redis
    # away) that are at least OUTBOX_GRACE_SECONDS old (younger ones are their committer's);
    # sent rows are deleted by the housekeeping after OUTBOX_RETENTION_SECONDS.
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    outbox_grace_seconds: float = Field(default=2.0, ge=0)
    outbox_retention_seconds: float = Field(default=3600.0, ge=0)
    # The committer marks its published rows sent with its next commit's outbox statement
    # (PostgreSQL), or at most this long after publishing them, in one UPDATE for all
    # published meanwhile (issue 19: a mark per commit was a transaction of its own per event
    # on a quiet line). Capped at half the grace, so a relay does not take rows that are only
    # waiting for their mark.
    outbox_mark_seconds: float = Field(default=0.25, ge=0)
    # The worker processes this one's host runs (`firstcontact serve --workers N` sets it for
    # its workers). The polls of shared tables (the outbox relay, the event sweeper, the
    # housekeeping) take turns across them: each worker polls every N periods, so a host
    # polls as often as one worker would, and a second worker repeats none of it (issue 19).
    host_workers: int = Field(default=1, ge=1, le=1024)

    # Idempotency-Key answers (personal data) are kept this long, then deleted by every
    # worker's housekeeping loop, which runs this often.
    idempotency_retention_seconds: float = Field(default=48 * 3600.0, ge=60)
    housekeeping_seconds: float = Field(default=600.0, gt=0)

    # THRIVE+ (issue 6): the longest narrative a call may hold (characters), whether sent
    # whole or in appended chunks; beyond it a request gets 413 and nothing is stored.
    narrative_max_chars: int = Field(default=20_000, ge=100, le=1_000_000)

    # The supervisor's board (issue 15): a HIGH or CRITICAL alert nobody has acknowledged for
    # this long turns red on the board and sounds once.
    alert_escalation_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Retention (issue 16): how many days each class of personal data is kept before the
    # purge removes it (`firstcontact retention run`, and every RETENTION_SECONDS on exactly
    # one worker). Defaults follow what a force keeps: raw telephony bodies (caller numbers as
    # received) only while a dispute about an event is plausible; the screens' snapshots of
    # history briefly; the incident record (calls, narratives, assessments, contacts) for the
    # six years of the records-management code's minimum; the audit a year beyond the records
    # it covers. Expired markers go once their grace period has passed.
    retention_raw_event_days: int = Field(default=30, ge=1, le=36_500)
    retention_call_context_days: int = Field(default=90, ge=1, le=36_500)
    retention_narrative_days: int = Field(default=2190, ge=1, le=36_500)
    retention_assessment_days: int = Field(default=2190, ge=1, le=36_500)
    retention_call_days: int = Field(default=2190, ge=1, le=36_500)
    retention_contact_days: int = Field(default=2190, ge=1, le=36_500)
    retention_audit_days: int = Field(default=2555, ge=1, le=36_500)
    retention_marker_grace_days: int = Field(default=30, ge=0, le=36_500)
    retention_seconds: float = Field(default=3600.0, gt=0)

    # Rule packs (issues 4 and 6): a force's own packs, loaded after the shipped ones in
    # app/rules/packs/ and replacing any with the same `pack:` id. Unset: shipped packs only.
    rules_dir: Path | None = None
    # How often each worker checks whether another one reloaded the packs (seconds).
    rules_poll_seconds: float = Field(default=2.0, gt=0)

    # Staff tokens (issue 16): a token older than this is refused (issue a new one); browser
    # sessions opened with it end with it.
    token_max_age_days: int = Field(default=90, ge=1, le=3650)
    # Rows of ended browser sessions are deleted this long after they ended (housekeeping).
    session_retention_days: float = Field(default=30.0, ge=0)
    # Login attempts (issue 16): after LOGIN_MAX_FAILURES failed logins within
    # LOGIN_WINDOW_SECONDS from one address (or naming one account), further attempts get 429
    # with Retry-After until the window ends. Counted in the cache: shared across workers with
    # Redis, per process when embedded.
    login_max_failures: int = Field(default=10, ge=1, le=10_000)
    login_window_seconds: int = Field(default=900, ge=1, le=24 * 3600)

    # Single sign-on (issue 16): OpenID Connect, authorization code with PKCE. Unset issuer:
    # token login only. Roles come from one claim of the ID token or userinfo (Entra ID:
    # `roles` for app roles, `groups` for group ids), mapped by OIDC_ROLE_MAP
    # ("FC-Handlers=handler,FC-Supervisors=supervisor"); the first entry that matches wins.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_role_claim: str = "roles"
    oidc_role_map: str = ""
    oidc_provider_name: str = "single sign-on"
    oidc_scopes: str = "openid profile email"

    # Transport hardening (issue 16). COOKIE_SECURE unset: on in production, else it follows
    # the request's scheme. HSTS is sent in production only. FORWARDED_ALLOW_IPS: the proxies
    # whose X-Forwarded-* headers uvicorn believes (`firstcontact serve`).
    cookie_secure: bool | None = None
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)
    forwarded_allow_ips: str = "127.0.0.1"
    # /docs, /redoc and /openapi.json (behind a staff login). Unset: on except in production.
    api_docs: bool | None = None
    # GET /metrics (Prometheus): a scraper presents METRICS_TOKEN as a bearer token, or
    # connects from an address in METRICS_ALLOW_IPS (comma-separated addresses or networks, as
    # uvicorn reports the client: behind a trusted proxy, the forwarded address). Neither
    # set: /metrics answers 404.
    metrics_token: SecretStr | None = None
    metrics_allow_ips: str = ""

    @field_validator(
        "redis_url",
        "public_base_url",
        "twilio_auth_token",
        "rules_dir",
        "oidc_issuer",
        "oidc_client_id",
        "oidc_client_secret",
        "cookie_secure",
        "api_docs",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("metrics_allow_ips")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"METRICS_ALLOW_IPS: {item!r} is not an address or network"
                ) from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> Settings:
        if self.env != "production":
            return self
        weak = [
            name
            for name in ("telephony_secret", "session_secret")
            if _is_placeholder(getattr(self, name))
        ]
        # The previous key is accepted exactly like the current one during a rotation, so a
        # weak one is as bad; empty means no rotation in progress.
        previous = self.telephony_secret_previous
        if previous is not None and previous.get_secret_value() and _is_placeholder(previous):
            weak.append("telephony_secret_previous")
        if self.metrics_token is not None and _is_placeholder(self.metrics_token):
            weak.append("metrics_token")
        if weak:
            raise ValueError(
                "refusing to start in production with placeholder secrets: "
                + ", ".join(n.upper() for n in weak)
            )
        if self.database_url.startswith("sqlite"):
            raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
        # Twilio signs the URL it called; without the public base URL we would have to
        # rebuild it from the request's Host header, which the sender chooses.
        if self.twilio_auth_token is not None and self.public_base_url is None:
            raise ValueError("production needs PUBLIC_BASE_URL when TWILIO_AUTH_TOKEN is set")
        return self

    @model_validator(mode="after")
    def _single_sign_on_complete(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        if not self.oidc_client_id or self.oidc_client_secret is None:
            raise ValueError("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
        parse_role_map(self.oidc_role_map)  # raises with the entry at fault
        return self

    @property
    def sso_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else not self.production

    def secure_cookies(self, scheme: str) -> bool:
        """Whether cookies carry `Secure`: COOKIE_SECURE when set, on in production, else
        when the request came over TLS."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.production or scheme in ("https", "wss")

    def role_map(self) -> list[tuple[str, str]]:
        return parse_role_map(self.oidc_role_map)

    def host_period(self, seconds: float) -> float:
        """This worker's period for a poll of shared tables that every worker runs, so the
        host as a whole polls every `seconds` (see `host_workers`)."""
        return seconds * self.host_workers

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def telephony_secrets(self) -> list[bytes]:
        """Current secret first, then the previous one during a rotation."""
        secrets = [self.telephony_secret.get_secret_value().encode()]
        if self.telephony_secret_previous is not None:
            previous = self.telephony_secret_previous.get_secret_value()
            if previous:
                secrets.append(previous.encode())
        return secrets

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None


# The roles single sign-on may grant: people's roles only (machines use tokens).
SSO_ROLES = ("handler", "supervisor", "qa", "admin")


def parse_role_map(value: str) -> list[tuple[str, str]]:
    """OIDC_ROLE_MAP ("GroupA=handler,GroupB=supervisor") as (claim value, role) pairs, in
    order. A role that is not a person's, or an entry without `=`, is refused."""
    pairs: list[tuple[str, str]] = []
    for entry in value.split(","):
        if not entry.strip():
            continue
        claim_value, sep, role = entry.rpartition("=")
        claim_value, role = claim_value.strip(), role.strip()
        if not sep or not claim_value or role not in SSO_ROLES:
            raise ValueError(
                f"OIDC_ROLE_MAP entry {entry.strip()!r}: expected VALUE=ROLE with ROLE one of "
                + ", ".join(SSO_ROLES)
            )
        pairs.append((claim_value, role))
    return pairs


def _is_placeholder(secret: SecretStr) -> bool:
    value = secret.get_secret_value()
    return value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
