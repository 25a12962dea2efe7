"""One settings object, read from the environment (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'tremplin.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    port: int = Field(default=8000, ge=1, le=65535)

    # Pool settings apply to PostgreSQL; SQLite uses one connection per checkout.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_pool_recycle_s: int = Field(default=1800, ge=-1)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15000, ge=0)
    db_application_name: str = "tremplin"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    db_echo: bool = False

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    candidate_min_age_years: int = Field(default=16, ge=14)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
