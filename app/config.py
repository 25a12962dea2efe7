"""One settings object, read from the environment (and an optional .env file)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain.webhooks import RETRY_SCHEDULE_S

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'tremplin.db'}"

# The drivers the code runs on (async); a plain postgresql:// or postgres:// is read as
# postgresql+asyncpg://.
DATABASE_FORMS = "postgresql+asyncpg://user:password@host:5432/database or sqlite+aiosqlite:///path"
_ASYNC_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")
# What `limits`' Redis storage accepts (unix:// is read as redis+unix://).
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
# The longest period a day- or second-counted setting may name: a century. Beyond it,
# "now minus the period" falls outside the dates Python and the database hold (year 1 to
# 9999), and the job or request using it failed with an OverflowError.
MAX_PERIOD_DAYS = 36_500
MAX_PERIOD_S = MAX_PERIOD_DAYS * 86_400
# HS256 keys at least as long as the hash (RFC 7518, section 3.2).
MIN_SIGNING_KEY_BYTES = 32
# List and map settings are JSON; what each one expects, for the error message.
_JSON_FORMS = {
    "oidc_algorithms": 'a JSON list, e.g. ["RS256"]',
    "metrics_allow_from": 'a JSON list of addresses or networks, e.g. ["10.0.0.0/8"]',
    "trusted_proxies": 'a JSON list of addresses or networks, e.g. ["10.0.0.0/8"]',
    "webhook_retry_schedule_s": "a JSON list of seconds, e.g. [5, 300, 1800]",
    "job_schedules": 'a JSON map of job name to schedule, e.g. {"retention": "off"}',
    "cors_origins": 'a JSON list of origins, e.g. ["https://app.example.org"]',
}


class Settings(BaseSettings):
    # List and map values are decoded by `_json_value` below, so that a malformed one is a
    # validation error naming its setting (pydantic-settings' own decoding raises a
    # SettingsError with a traceback's worth of context).
    # An empty variable (`PORT=` in a compose file or an env file) is as if unset: the
    # default applies, rather than a refusal to start on "" as a number or a URL.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", enable_decoding=False, env_ignore_empty=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    port: int = Field(default=8000, ge=1, le=65535)

    # Pool settings apply to PostgreSQL; SQLite uses one connection per checkout.
    db_pool_size: int = Field(default=10, ge=1)
    # No overflow by default: connections beyond the pool are opened and closed per use
    # under load (a connection costs more than the request); size the pool instead.
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_pool_recycle_s: int = Field(default=1800, ge=-1)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15000, ge=0)
    db_application_name: str = "tremplin"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    db_echo: bool = False

    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Access tokens issued by POST /v1/oauth/token (HS256). Outside production, an unset
    # key is generated once and kept in var/jwt-signing.key.
    jwt_signing_key: SecretStr | None = None
    token_issuer: str = "urn:tremplin"  # noqa: S105 - an issuer name, not a secret
    token_audience: str = "tremplin-api"  # noqa: S105 - an audience, not a secret
    token_ttl_s: int = Field(default=900, ge=60, le=86400)

    # Front-end users: bearer JWTs from an external OpenID Connect provider.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    oidc_algorithms: list[str] = ["RS256", "ES256"]
    oidc_role_claim: str = "tremplin_role"
    oidc_structure_claim: str = "tremplin_structure_id"
    # Observers: `national`, `region:<code>` or `departement:<code>`; absent: national.
    oidc_territory_claim: str = "tremplin_territory"

    # Requests per minute and per caller (moving windows: in the process, or shared
    # through Redis when REDIS_URL is set).
    rate_limit_admin: int = Field(default=1200, ge=1)
    rate_limit_insertion: int = Field(default=600, ge=1)
    rate_limit_landlord: int = Field(default=600, ge=1)
    rate_limit_prescriber: int = Field(default=300, ge=1)
    rate_limit_observer: int = Field(default=120, ge=1)
    # Token requests and failed authentications, per client id or address.
    rate_limit_anonymous: int = Field(default=60, ge=1)

    # The path's guards (DOMAIN.md); the Rouen programme, for one, trains for 350 hours.
    pathway_min_training_hours: float = Field(default=150, ge=0)
    pathway_min_positive_trials: int = Field(default=1, ge=0)
    pathway_min_positive_skills_assessments: int = Field(default=1, ge=0)
    pathway_min_completed_work_missions: int = Field(default=1, ge=0)
    # Proposals unanswered this long are closed as expired by `expire-proposals`.
    proposal_expiry_days: int = Field(default=60, ge=1, le=MAX_PERIOD_DAYS)

    # Matching: relative weights of the soft criteria (any scale; scores are 0-100),
    # the candidates kept per vacancy for the assignment, and the lowest score assigned.
    matching_weight_distance: float = Field(default=25, ge=0)
    matching_weight_competencies: float = Field(default=25, ge=0)
    matching_weight_certification: float = Field(default=15, ge=0)
    matching_weight_landlord_history: float = Field(default=10, ge=0)
    matching_weight_training: float = Field(default=10, ge=0)
    matching_weight_waiting: float = Field(default=10, ge=0)
    matching_weight_preferences: float = Field(default=5, ge=0)
    matching_waiting_days_target: float = Field(default=365, gt=0)
    # The assignment (see app.domain.matching.solver): each vacancy is scored against its
    # MATCHING_NEAREST nearest candidates among those passing its fixed filters (more when
    # the scope has few vacancies, up to MATCHING_PAIR_BUDGET pairs in all; everyone
    # within reach when it is left with free positions); up to MATCHING_EXACT_EDGES
    # eligible pairs, all go to the solver, otherwise each vacancy's MATCHING_TOP_K best
    # per free position and each candidate's MATCHING_CANDIDATE_TOP_K best vacancies.
    # Measured on the benchmark's data (100k candidates, 10k vacancies): 0.9996 of the
    # optimum of the full graph nationally.
    matching_nearest: int = Field(default=150, ge=1, le=5000)
    # Fewer vacancies get more candidates each, up to this many pairs in all.
    matching_pair_budget: int = Field(default=100_000, ge=0)
    matching_top_k: int = Field(default=10, ge=1, le=500)
    matching_candidate_top_k: int = Field(default=3, ge=1, le=100)
    matching_exact_edges: int = Field(default=200_000, ge=0)
    # Graphs of at least this many edges are solved in a worker process (the solver
    # holds the GIL); smaller ones in a thread (60,000 edges: about 20 ms of held GIL).
    matching_solver_process_edges: int = Field(default=60_000, ge=1)
    matching_min_score: float = Field(default=40, ge=0, le=100)

    # JSON log lines on stderr, one per request plus what the code logs (app/logs.py).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # /metrics (Prometheus): unauthenticated; off, or only for these addresses/networks.
    metrics_enabled: bool = True
    metrics_allow_from: list[IPvAnyNetwork] = []
    # Webhooks (Standard Webhooks). Private, loopback and link-local targets, and plain
    # http, are refused unless allowed here (tests and closed networks only).
    webhook_allow_private_targets: bool = False
    webhook_allow_http: bool = False
    webhook_timeout_s: float = Field(default=15, gt=0, le=60)
    # Delays before each retry; the default is the specification's (about three days).
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: list(RETRY_SCHEDULE_S), min_length=1, max_length=20
    )
    webhook_secret_grace_s: int = Field(default=86400, ge=0, le=MAX_PERIOD_S)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # How long a worker holds a delivery it attempts; default: twice the timeout + 30 s.
    webhook_lease_s: float | None = Field(default=None, gt=0)

    # The worker (python -m app worker): how often it looks for work, and the schedule of
    # each job (cron, UTC) when not its default, e.g. {"expire_proposals": "0 3 * * *"};
    # "off" turns a job off.
    worker_poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    job_schedules: dict[str, str] = {}
    # Figures: for every role but admins, a count concerning fewer people than this is
    # masked. Retention: people with no change recorded for this long are anonymised.
    stats_mask_threshold: int = Field(default=5, ge=1, le=100)
    retention_inactive_months: int = Field(default=24, ge=1, le=240)

    idempotency_ttl_s: int = Field(default=86400, ge=60, le=MAX_PERIOD_S)
    audit_retention_days: int = Field(default=365, ge=1, le=MAX_PERIOD_DAYS)
    cors_origins: list[str] = []

    # --- Running in production: caches, bounded waits, processes (README "Production").
    # A client's revocation, rotation or change reaches every process within this delay:
    # each process re-reads a client's row at most this often (0: on every request).
    auth_client_cache_s: float = Field(default=5, ge=0, le=60)
    # Each statement is bounded on the client side too (asyncpg), beyond the server's
    # statement_timeout: a frozen server answers 503, never a hung request.
    db_command_timeout_s: float = Field(default=20, gt=0)
    # Off: a dead connection is detected at checkout without a round trip (see app/db.py).
    db_pool_pre_ping: bool = False
    # Through PgBouncer in transaction mode: no cached prepared statements, unique names.
    db_pgbouncer: bool = False
    # Retry-After of a 503 when the database is busy or unreachable.
    db_retry_after_s: int = Field(default=2, ge=1)
    readiness_timeout_s: float = Field(default=2, gt=0)
    # Graceful shutdown: requests in flight get this long, then the pool as long again.
    shutdown_timeout_s: float = Field(default=10, gt=0)
    # uvicorn worker processes of `python -m app serve` (--workers overrides it).
    workers: int = Field(default=1, ge=1, le=64)
    # Rate limits shared by every process and replica; unset: each process its own.
    redis_url: str | None = None
    rate_limit_key_prefix: str = Field(default="tremplin", min_length=1, max_length=64)
    # Token endpoint failures per minute: per client id and address, and per client id.
    rate_limit_token_failures: int = Field(default=10, ge=1)
    rate_limit_token_client_failures: int = Field(default=100, ge=1)
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed.
    trusted_proxies: list[IPvAnyNetwork] = []

    @field_validator(*_JSON_FORMS, mode="before")
    @classmethod
    def _json_value(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        expected = _JSON_FORMS[info.field_name]
        try:
            decoded = json.loads(value)
        except ValueError:
            raise ValueError(f"expected {expected}") from None
        kind = dict if info.field_name == "job_schedules" else list
        if not isinstance(decoded, kind):
            raise ValueError(f"expected {expected}")
        return decoded

    @model_validator(mode="before")
    @classmethod
    def _never_empty(cls, data: Any) -> Any:
        """An empty variable is as if unset, except these two: their defaults (development,
        the local SQLite file) would silently change what runs, not tune it (production
        refuses SQLite and a missing key, but an empty ENVIRONMENT never gets there)."""
        for name in ("environment", "database_url"):
            value = os.environ.get(name.upper())
            if value is not None and not value.strip() and isinstance(data, dict):
                data[name] = value  # refused by the field's own check, which names it
        return data

    @field_validator("redis_url", "jwt_signing_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`REDIS_URL=` or `JWT_SIGNING_KEY=` (an empty line in a .env) means unset."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.removeprefix("async+")
        if url.startswith("unix://"):
            url = "redis+" + url
        scheme, separator, _ = url.partition("://")
        if not separator or scheme.lower() not in _REDIS_SCHEMES:
            raise ValueError(
                "expected redis://host:6379/0, rediss://host:6379/0 or unix:///path/to/socket"
            )
        return url

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_driver(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                value = "postgresql+asyncpg://" + value.removeprefix(plain)
        try:
            driver = make_url(value).drivername
        except (ArgumentError, ValueError):
            driver = None
        if driver not in _ASYNC_DRIVERS:
            raise ValueError(f"expected {DATABASE_FORMS}")
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and (self.oidc_jwks_url or self.oidc_jwks_file))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def production_problems(self) -> list[str]:
        """Why this configuration may not serve in production (empty when it may)."""
        if not self.is_production:
            return []
        problems = []
        if self.is_sqlite:
            problems.append(
                "DATABASE_URL is SQLite; production runs on PostgreSQL (postgresql+asyncpg://...)"
            )
        if self.jwt_signing_key is None:
            problems.append("JWT_SIGNING_KEY is not set (e.g. openssl rand -hex 32)")
        elif len(self.jwt_signing_key.get_secret_value().encode()) < MIN_SIGNING_KEY_BYTES:
            problems.append(
                f"JWT_SIGNING_KEY is shorter than {MIN_SIGNING_KEY_BYTES} bytes"
                " (e.g. openssl rand -hex 32)"
            )
        return problems


@lru_cache
def get_settings() -> Settings:
    return Settings()
