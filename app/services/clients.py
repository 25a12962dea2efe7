"""API clients: created, scoped, expired, revoked and rotated by national administrators."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import ROLE_STRUCTURE_KIND, Role
from app.domain.territory import NATIONAL
from app.errors import Conflict, ValidationFailed, field_error
from app.models import ApiClient
from app.models.base import utcnow
from app.schemas.access import ApiClientCreate, ApiClientUpdate
from app.services import structures
from app.services.auth import hash_secret, new_secret
from app.services.common import (
    PageRequest,
    check_version,
    flush,
    for_update,
    get_or_404,
    paginate,
)
from app.services.permissions import default_scopes

# Credentials' life is worth a log line: ids and roles only (app/logs.py).
logger = logging.getLogger("tremplin.services.clients")
# The scope that lets a client manage clients: someone must always keep it.
MANAGE_CLIENTS = "clients:admin"


class ClientRevoked(Conflict):
    slug, title = "client-revoked", "The client is revoked"


class LastClientAdmin(Conflict):
    slug, title = "last-client-admin", "The last client that manages clients must stay"


def _manages_clients(client: ApiClient, *, lasting: bool) -> bool:
    """May the client manage clients now; with `lasting`, also with no expiry set."""
    if client.role is not Role.ADMIN or MANAGE_CLIENTS not in client.scopes:
        return False
    if client.revoked_at is not None:
        return False
    if client.expires_at is None:
        return True
    return not lasting and client.expires_at > utcnow()


async def _guard_last_admin(
    session: AsyncSession, client: ApiClient, *, revoking: bool, changes: dict[str, Any]
) -> None:
    """Nobody may take away the last lasting way to manage clients (revoke it, give it an
    expiry, or remove its clients:admin scope): the service could no longer be run.

    The admin rows are locked in id order first (PostgreSQL; SQLite serialises writers),
    so two administrators revoking each other at once cannot both succeed: the second
    sees the first's change once it holds the locks.
    """
    if client.role is not Role.ADMIN:
        return
    admins = (
        await session.scalars(
            for_update(select(ApiClient).where(ApiClient.role == Role.ADMIN).order_by(ApiClient.id))
        )
    ).all()
    if not _manages_clients(client, lasting=False):
        return
    loses = (
        revoking
        or changes.get("expires_at") is not None
        or ("scopes" in changes and MANAGE_CLIENTS not in changes["scopes"])
    )
    others = [a for a in admins if a.id != client.id and _manages_clients(a, lasting=True)]
    if loses and not others:
        raise LastClientAdmin(
            "This is the last client that can manage clients without an expiry: create "
            "or restore another one before revoking it, giving it an expiry or removing "
            f"its {MANAGE_CLIENTS} scope.",
        )


def _check_scopes(role: Role, scopes: Sequence[str]) -> None:
    beyond = sorted(set(scopes) - default_scopes(role))
    if beyond:
        raise ValidationFailed(
            [
                field_error(
                    ["body", "scopes"],
                    f"not usable by the {role.value} role: {', '.join(beyond)}",
                    "value_error",
                )
            ]
        )


def _check_territory(role: Role, territory: str | None) -> None:
    """Only observers read figures by territory; the others are scoped by their structure."""
    if territory is not None and role is not Role.OBSERVER:
        raise ValidationFailed(
            [field_error(["body", "territory"], "for observer clients only", "value_error")]
        )


async def create(session: AsyncSession, data: ApiClientCreate) -> tuple[ApiClient, str]:
    kind = ROLE_STRUCTURE_KIND[data.role]
    if kind is not None and data.structure_id is None:
        raise ValidationFailed(
            [
                field_error(
                    ["body", "structure_id"], f"required for the {data.role.value} role", "missing"
                )
            ]
        )
    if data.structure_id is not None:
        if kind is not None:
            await structures.require_kind(session, data.structure_id, kind, "structure_id")
        else:
            await structures.require_exists(session, data.structure_id, "structure_id")
    scopes = sorted(default_scopes(data.role)) if data.scopes is None else data.scopes
    _check_scopes(data.role, scopes)
    _check_territory(data.role, data.territory)
    secret = new_secret()
    client = ApiClient(
        name=data.name,
        role=data.role,
        structure_id=data.structure_id,
        scopes=scopes,
        secret_hash=hash_secret(secret),
        expires_at=data.expires_at,
        # National unless told otherwise, like an observer without a structure.
        territory=(data.territory or str(NATIONAL)) if data.role is Role.OBSERVER else None,
    )
    session.add(client)
    await flush(session)
    logger.info("client created", extra={"client_id": str(client.id), "role": client.role})
    return client, secret


async def get(session: AsyncSession, client_id: uuid.UUID) -> ApiClient:
    return await get_or_404(session, ApiClient, client_id)


async def list_(
    session: AsyncSession, page: PageRequest, updated_since: datetime | None = None
) -> tuple[Sequence[ApiClient], str | None]:
    return await paginate(session, ApiClient, select(ApiClient), page, updated_since)


async def update(
    session: AsyncSession,
    client_id: uuid.UUID,
    data: ApiClientUpdate,
    expected_versions: frozenset[int] | None,
) -> ApiClient:
    client = await get(session, client_id)
    check_version(client.version, expected_versions)
    changes = data.model_dump(exclude_unset=True)
    if "scopes" in changes:
        _check_scopes(client.role, changes["scopes"])
    await _guard_last_admin(session, client, revoking=False, changes=changes)
    check_version(client.version, expected_versions)
    if "territory" in changes:
        _check_territory(client.role, changes["territory"])
    for name, value in changes.items():
        setattr(client, name, value)
    await flush(session)
    return client


async def revoke(session: AsyncSession, client_id: uuid.UUID) -> ApiClient:
    """Revocation is immediate: every token of the client is refused from now on."""
    client = await get(session, client_id)
    if client.revoked_at is None:
        await _guard_last_admin(session, client, revoking=True, changes={})
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        await flush(session)
        logger.info("client revoked", extra={"client_id": str(client.id), "role": client.role})
    return client


async def rotate_secret(session: AsyncSession, client_id: uuid.UUID) -> tuple[ApiClient, str]:
    """A new secret; the old one and every token issued with it stop working at once."""
    client = await get(session, client_id)
    if client.revoked_at is not None:
        raise ClientRevoked("A revoked client cannot get a new secret; create another client.")
    secret = new_secret()
    client.secret_hash = hash_secret(secret)
    client.credential_version += 1
    await flush(session)
    logger.info("client secret rotated", extra={"client_id": str(client.id)})
    return client, secret
