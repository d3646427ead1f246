import pytest
from pydantic import ValidationError

from app.config import Settings


def test_embedded_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert str(settings.sqlite_path()).startswith("var")


@pytest.mark.parametrize("secret", ["change-me", "dev-only-change-me", "short"])
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="TELEPHONY_SECRET"):
        Settings(
            env="production",
            database_url="postgresql+asyncpg://db/fc",
            telephony_secret=secret,
            session_secret="a-real-session-secret-of-some-length",
        )


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(
            env="production",
            telephony_secret="a-real-telephony-secret-0123",
            session_secret="a-real-session-secret-of-some-length",
        )


def test_production_with_real_secrets_starts() -> None:
    settings = Settings(
        env="production",
        database_url="postgresql+asyncpg://db/fc",
        redis_url="redis://cache:6379/0",
        telephony_secret="a-real-telephony-secret-0123",
        telephony_secret_previous="the-previous-secret-0123456",
        session_secret="a-real-session-secret-of-some-length",
    )
    assert settings.telephony_secrets() == [
        b"a-real-telephony-secret-0123",
        b"the-previous-secret-0123456",
    ]


def test_empty_redis_url_means_in_process() -> None:
    assert Settings(redis_url="").redis_url is None


_PRODUCTION = {
    "env": "production",
    "database_url": "postgresql+asyncpg://db/fc",
    "telephony_secret": "a-real-telephony-secret-of-length",
    "session_secret": "a-real-session-secret-of-some-length",
}


@pytest.mark.parametrize("previous", ["change-me", "short", "secret"])
def test_production_refuses_a_weak_previous_telephony_secret(previous: str) -> None:
    with pytest.raises(ValidationError, match="TELEPHONY_SECRET_PREVIOUS"):
        Settings(**_PRODUCTION, telephony_secret_previous=previous)  # type: ignore[arg-type]
    Settings(**_PRODUCTION, telephony_secret_previous="another-real-secret-1234")  # type: ignore[arg-type]
    Settings(**_PRODUCTION, telephony_secret_previous="")  # type: ignore[arg-type]  # no rotation


def test_production_with_twilio_needs_the_public_base_url() -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        Settings(**_PRODUCTION, twilio_auth_token="twilio-token")  # type: ignore[arg-type]
    Settings(
        **_PRODUCTION,  # type: ignore[arg-type]
        twilio_auth_token="twilio-token",
        public_base_url="https://cc.example.police.uk",
    )


@pytest.mark.parametrize(
    "name",
    [
        "retention_raw_event_days",
        "retention_call_context_days",
        "retention_narrative_days",
        "retention_assessment_days",
        "retention_call_days",
        "retention_contact_days",
        "retention_audit_days",
    ],
)
def test_retention_periods_are_whole_days_of_at_least_one(name: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name: 0})  # type: ignore[arg-type]
    assert getattr(Settings(**{name: 365}), name) == 365  # type: ignore[arg-type]
