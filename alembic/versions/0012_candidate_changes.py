"""matching: the candidates written since the store's last read, kept by a trigger

Revision ID: 0012_candidate_changes
Revises: 0011_candidate_entered_at
Create Date: 2026-12-02 14:00:00.000000+00:00

On PostgreSQL every insert, update or delete of a candidate rewrites that person's row
of candidate_changes, so the row's xmin names the last transaction that wrote them: the
candidate store reads these small rows instead of every candidate's. SQLite has the
table, empty (its store compares versions).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012_candidate_changes"
down_revision: str | None = "0011_candidate_entered_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The nil UUID, no one's id, stands for everyone: a TRUNCATE of candidates, or rows of
# this table deleted, make the stores read every candidate again.
PG_FUNCTIONS = (
    """
CREATE FUNCTION candidates_note_change() RETURNS trigger AS $$
BEGIN
    -- DO UPDATE, not DO NOTHING: the row's new version carries this transaction's xid.
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO candidate_changes (candidate_id) VALUES (OLD.id)
        ON CONFLICT (candidate_id) DO UPDATE SET candidate_id = EXCLUDED.candidate_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id <> OLD.id) THEN
        INSERT INTO candidate_changes (candidate_id) VALUES (NEW.id)
        ON CONFLICT (candidate_id) DO UPDATE SET candidate_id = EXCLUDED.candidate_id;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    """
CREATE FUNCTION candidates_note_everyone() RETURNS trigger AS $$
BEGIN
    INSERT INTO candidate_changes (candidate_id)
    VALUES ('00000000-0000-0000-0000-000000000000')
    ON CONFLICT (candidate_id) DO UPDATE SET candidate_id = EXCLUDED.candidate_id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
)
PG_TRIGGERS = (
    "CREATE TRIGGER candidates_note_change AFTER INSERT OR UPDATE OR DELETE ON candidates "
    "FOR EACH ROW EXECUTE FUNCTION candidates_note_change()",
    "CREATE TRIGGER candidates_note_truncate AFTER TRUNCATE ON candidates "
    "FOR EACH STATEMENT EXECUTE FUNCTION candidates_note_everyone()",
    "CREATE TRIGGER candidate_changes_emptied AFTER DELETE OR TRUNCATE ON candidate_changes "
    "FOR EACH STATEMENT EXECUTE FUNCTION candidates_note_everyone()",
    # ALWAYS: they fire under session_replication_role = replica too (logical replication,
    # pg_restore --disable-triggers), or the stores would miss those writes.
    "ALTER TABLE candidates ENABLE ALWAYS TRIGGER candidates_note_change",
    "ALTER TABLE candidates ENABLE ALWAYS TRIGGER candidates_note_truncate",
    "ALTER TABLE candidate_changes ENABLE ALWAYS TRIGGER candidate_changes_emptied",
)


def upgrade() -> None:
    op.create_table(
        "candidate_changes",
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("candidate_id", name=op.f("pk_candidate_changes")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*PG_FUNCTIONS, *PG_TRIGGERS):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS candidates_note_change ON candidates")
        op.execute("DROP TRIGGER IF EXISTS candidates_note_truncate ON candidates")
        op.execute("DROP TRIGGER IF EXISTS candidate_changes_emptied ON candidate_changes")
        op.execute("DROP FUNCTION IF EXISTS candidates_note_change()")
        op.execute("DROP FUNCTION IF EXISTS candidates_note_everyone()")
    op.drop_table("candidate_changes")
