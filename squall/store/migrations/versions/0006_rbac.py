"""RBAC roles and role assignments

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00.000000

Custom roles and the role assignments of the RBAC definition files
(``$SQUALL_HOME/rbac/roles/*.yaml``, ``assignments/<user>.yaml``), synchronized at start and
by ``squall rbac load``. See ``squall/auth/rbac_service.py`` and ``docs/security.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from squall.store.schema import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSONB = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rbac_roles",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("grants", _JSONB, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rbac_roles")),
    )
    op.create_table(
        "rbac_role_assignments",
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_remote", sa.Boolean(), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user", "role", "source", name=op.f("pk_rbac_role_assignments")),
    )


def downgrade() -> None:
    op.drop_table("rbac_role_assignments")
    op.drop_table("rbac_roles")
