"""Settings read from the environment (and an optional `.env`).

With nothing set the service runs embedded: SQLite under ./var and in-process cache and broker,
so a newcomer's first command works. Production sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

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

    telephony_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    telephony_secret_previous: SecretStr | None = None
    session_secret: SecretStr = SecretStr(DEFAULT_SECRET)

    log_level: str = "INFO"
    log_json: bool = True

    # Request body ceilings (bytes). Telephony bodies are small; anything larger is an attack
    # or a misconfigured platform.
    telephony_max_body: int = Field(default=64 * 1024, ge=1024)
    max_body: int = Field(default=1024 * 1024, ge=1024)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

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
        if weak:
            raise ValueError(
                "refusing to start in production with placeholder secrets: "
                + ", ".join(n.upper() for n in weak)
            )
        if self.database_url.startswith("sqlite"):
            raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
        return self

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


def _is_placeholder(secret: SecretStr) -> bool:
    value = secret.get_secret_value()
    return value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
