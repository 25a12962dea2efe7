"""idempotency keys carry the caller's kind: API clients and OIDC users never share keys

Revision ID: 0009_runtime
Revises: 0008_integration
Create Date: 2026-12-02 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009_runtime"
down_revision: str | None = "0008_integration"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("client", "user", "system")


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "actor_kind",
                sa.Enum(*KINDS, name="idempotency_actor_kind", native_enum=False,
                        create_constraint=False, length=32),
                nullable=False,
                server_default="client",
            )
        )  # fmt: skip
    # Keys kept so far: a caller that is one of our API clients was a client, any other
    # an OIDC user (the only other kind that sends requests).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE idempotency_keys SET actor_kind = 'user' "
            "WHERE actor_id NOT IN (SELECT CAST(id AS TEXT) FROM api_clients)"
        )
    else:  # SQLite keeps UUIDs as 32 hexadecimal digits
        op.execute(
            "UPDATE idempotency_keys SET actor_kind = 'user' "
            "WHERE replace(actor_id, '-', '') NOT IN (SELECT id FROM api_clients)"
        )
    listed = ", ".join(f"'{k}'" for k in KINDS)
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column("actor_kind", server_default=None)
        batch_op.create_check_constraint(
            op.f("ck_idempotency_keys_idempotency_actor_kind"), f"actor_kind IN ({listed})"
        )
        batch_op.drop_constraint(op.f("uq_idempotency_keys_actor_id_key"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_idempotency_keys_actor_kind_actor_id_key"), ["actor_kind", "actor_id", "key"]
        )


def downgrade() -> None:
    # A user's key that collides with a client's (same id and key) cannot stay: drop it.
    op.execute(
        "DELETE FROM idempotency_keys WHERE actor_kind = 'user' AND EXISTS ("
        "SELECT 1 FROM idempotency_keys AS other WHERE other.actor_kind = 'client' "
        "AND other.actor_id = idempotency_keys.actor_id AND other.key = idempotency_keys.key)"
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("uq_idempotency_keys_actor_kind_actor_id_key"), type_="unique"
        )
        batch_op.create_unique_constraint(
            op.f("uq_idempotency_keys_actor_id_key"), ["actor_id", "key"]
        )
        batch_op.drop_constraint(op.f("ck_idempotency_keys_idempotency_actor_kind"), type_="check")
        batch_op.drop_column("actor_kind")
