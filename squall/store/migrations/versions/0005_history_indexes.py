"""execution history indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00.000000

Indexes for the history queries of ``GET /api/v1/executions`` (issue 5: p99 <= 100 ms with
1,000,000 executions): by status, by action and status, by user - each ordered by creation
time and ending with ``parent_id``, so that a page and its exact ``X-Total-Count`` read only
the index, also for ``parent=null`` (top-level executions, what the st2 CLI lists). The
(status, created_at) index is replaced by its covering form.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_status_created")
        batch_op.create_index(
            "ix_executions_status_created_parent", ["status", "created_at", "parent_id"]
        )
        batch_op.create_index(
            "ix_executions_action_status_created_parent",
            ["action_ref", "status", "created_at", "parent_id"],
        )
        batch_op.create_index(
            "ix_executions_user_created_parent", ["user", "created_at", "parent_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_user_created_parent")
        batch_op.drop_index("ix_executions_action_status_created_parent")
        batch_op.drop_index("ix_executions_status_created_parent")
        batch_op.create_index("ix_executions_status_created", ["status", "created_at"])
