"""events and rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:02:51.624318
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from squall.store.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "rule_enforcements",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("rule_id", sa.String(length=24), nullable=False),
        sa.Column("rule_ref", sa.String(length=512), nullable=False),
        sa.Column(
            "rule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("trigger_instance_id", sa.String(length=24), nullable=False),
        sa.Column("execution_id", sa.String(length=24), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("enforced_at", UTCDateTime(), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_enforcements")),
        sa.UniqueConstraint(
            "trigger_instance_id",
            "rule_id",
            name=op.f("uq_rule_enforcements_trigger_instance_id_rule_id"),
        ),
    )
    with op.batch_alter_table("rule_enforcements", schema=None) as batch_op:
        batch_op.create_index("ix_rule_enforcements_execution", ["execution_id"], unique=False)
        batch_op.create_index(
            "ix_rule_enforcements_rule_time", ["rule_ref", "enforced_at"], unique=False
        )
        batch_op.create_index("ix_rule_enforcements_time", ["enforced_at"], unique=False)

    op.create_table(
        "storm_counters",
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_storm_counters")),
    )
    with op.batch_alter_table("storm_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_storm_counters_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "system_state",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_system_state")),
    )
    op.create_table(
        "timer_ticks",
        sa.Column("trigger_key", sa.String(length=1024), nullable=False),
        sa.Column("tick_at", UTCDateTime(), nullable=False),
        sa.Column("trigger_instance_id", sa.String(length=24), nullable=True),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_key", "tick_at", name=op.f("pk_timer_ticks")),
    )
    op.create_table(
        "trigger_instances",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("trigger", sa.String(length=512), nullable=False),
        sa.Column("trigger_type", sa.String(length=512), nullable=False),
        sa.Column("trigger_key", sa.String(length=1024), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("trace_tag", sa.String(length=512), nullable=True),
        sa.Column("occurrence_time", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_expires_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_instances")),
    )
    with op.batch_alter_table("trigger_instances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trigger_instances_pending",
            ["status", "occurrence_time"],
            unique=False,
            sqlite_where=sa.text("status IN ('pending','processing')"),
            postgresql_where=sa.text("status IN ('pending','processing')"),
        )
        batch_op.create_index("ix_trigger_instances_time", ["occurrence_time"], unique=False)
        batch_op.create_index(
            "ix_trigger_instances_type_time", ["trigger_type", "occurrence_time"], unique=False
        )

    op.create_table(
        "triggers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("type", sa.String(length=512), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("key", name=op.f("uq_triggers_key")),
        sa.UniqueConstraint("ref", name=op.f("uq_triggers_ref")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_triggers_type"), ["type"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("hook", sa.String(length=512), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_received_at"), ["received_at"], unique=False
        )

    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_executions_action_active",
            ["action_ref", "status"],
            unique=False,
            sqlite_where=sa.text(
                "status IN ('scheduled','running','canceling','pausing','paused')"
            ),
            postgresql_where=sa.text(
                "status IN ('scheduled','running','canceling','pausing','paused')"
            ),
        )


def downgrade() -> None:

    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_executions_action_active",
            sqlite_where=sa.text(
                "status IN ('scheduled','running','canceling','pausing','paused')"
            ),
            postgresql_where=sa.text(
                "status IN ('scheduled','running','canceling','pausing','paused')"
            ),
        )

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_received_at"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triggers_type"))

    op.drop_table("triggers")
    with op.batch_alter_table("trigger_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_instances_type_time")
        batch_op.drop_index("ix_trigger_instances_time")
        batch_op.drop_index(
            "ix_trigger_instances_pending",
            sqlite_where=sa.text("status IN ('pending','processing')"),
            postgresql_where=sa.text("status IN ('pending','processing')"),
        )

    op.drop_table("trigger_instances")
    op.drop_table("timer_ticks")
    op.drop_table("system_state")
    with op.batch_alter_table("storm_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storm_counters_expires_at"))

    op.drop_table("storm_counters")
    with op.batch_alter_table("rule_enforcements", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_enforcements_time")
        batch_op.drop_index("ix_rule_enforcements_rule_time")
        batch_op.drop_index("ix_rule_enforcements_execution")

    op.drop_table("rule_enforcements")
