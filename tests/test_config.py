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
