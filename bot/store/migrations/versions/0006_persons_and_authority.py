"""persons and their handles; requester and approver persons; proposed owners; token bounds;
the authority an enforcement was placed with

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", _STR(length=40), nullable=False),
        sa.Column("display", _STR(length=256), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "personhandle",
        sa.Column("key", _STR(length=320), nullable=False),
        sa.Column("person_id", _STR(length=40), nullable=False),
        sa.Column("seen_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("personhandle", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_personhandle_person_id"), ["person_id"], unique=False)
    with op.batch_alter_table("accessrequest", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("requester_handles", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approver_person", _STR(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("approver_handles", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.create_unique_constraint(
            "uq_approval_request_id_approver_person", ["request_id", "approver_person"]
        )
    with op.batch_alter_table("ownership", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_owner", _STR(length=256), nullable=True))
        batch_op.add_column(sa.Column("proposed_at", _TIME(), nullable=True))
    with op.batch_alter_table("agenttoken", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("owner_at_issue", _STR(length=256), nullable=True))
    _bound_existing_tokens()
    with op.batch_alter_table("enforcement", schema=None) as batch_op:
        # Existing enforcements keep the strictest reading: lifting them needs an admin.
        batch_op.add_column(
            sa.Column("placed_as", _STR(length=16), nullable=False, server_default="admin")
        )


def _bound_existing_tokens() -> None:
    """Tokens issued before this revision: 90 days from issue, bound to today's owner."""
    bind = op.get_bind()
    tokens = sa.table(
        "agenttoken",
        sa.column("id", sa.String),
        sa.column("identity_id", sa.String),
        sa.column("created_at", _TIME()),
        sa.column("expires_at", _TIME()),
        sa.column("owner_at_issue", sa.String),
    )
    ownership = sa.table(
        "ownership", sa.column("identity_id", sa.String), sa.column("primary_owner", sa.String)
    )
    owners = dict(bind.execute(sa.select(ownership.c.identity_id, ownership.c.primary_owner)).all())
    rows = bind.execute(sa.select(tokens.c.id, tokens.c.identity_id, tokens.c.created_at)).all()
    for token_id, identity_id, created_at in rows:
        bind.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(
                expires_at=created_at + timedelta(days=90),
                owner_at_issue=owners.get(identity_id),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("enforcement", schema=None) as batch_op:
        batch_op.drop_column("placed_as")
    with op.batch_alter_table("agenttoken", schema=None) as batch_op:
        batch_op.drop_column("owner_at_issue")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("ownership", schema=None) as batch_op:
        batch_op.drop_column("proposed_at")
        batch_op.drop_column("proposed_owner")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_constraint("uq_approval_request_id_approver_person", type_="unique")
        batch_op.drop_column("approver_handles")
        batch_op.drop_column("approver_person")
    with op.batch_alter_table("accessrequest", schema=None) as batch_op:
        batch_op.drop_column("requester_handles")
    with op.batch_alter_table("personhandle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personhandle_person_id"))
    op.drop_table("personhandle")
    op.drop_table("person")
