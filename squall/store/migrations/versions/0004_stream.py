"""event stream positions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00.000000

Adds the stream position ``seq`` to executions (plus ``created_seq``, the position at which
a row was inserted, kept on its first update) and to execution output chunks. Existing rows
keep ``NULL`` positions: the stream starts with the first change after the upgrade.
See ``squall/store/stream.py`` and ``docs/stream.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("created_seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_executions_seq", ["seq"], unique=False)
    with op.batch_alter_table("execution_output", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_execution_output_seq", ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("execution_output", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_output_seq")
        batch_op.drop_column("seq")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_seq")
        batch_op.drop_column("created_seq")
        batch_op.drop_column("seq")
