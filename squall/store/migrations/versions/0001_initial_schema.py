"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:44:25.703646
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from squall.store.schema import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "action_aliases",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_aliases")),
        sa.UniqueConstraint("ref", name=op.f("uq_action_aliases_ref")),
    )
    with op.batch_alter_table("action_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_aliases_pack"), ["pack"], unique=False)

    op.create_table(
        "action_snapshots",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_action_snapshots")),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("runner_type", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("snapshot", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint("ref", name=op.f("uq_actions_ref")),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actions_pack"), ["pack"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_user"), ["user"], unique=False)

    op.create_table(
        "execution_output",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=24), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_output")),
    )
    with op.batch_alter_table("execution_output", schema=None) as batch_op:
        batch_op.create_index("ix_execution_output_execution", ["execution_id", "id"], unique=False)

    op.create_table(
        "executions",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("action_ref", sa.String(length=512), nullable=False),
        sa.Column("action_snapshot", sa.String(length=64), nullable=False),
        sa.Column("runner_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "notify",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("result_size", sa.Integer(), nullable=False),
        sa.Column(
            "log",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("parent_id", sa.String(length=24), nullable=True),
        sa.Column("root_id", sa.String(length=24), nullable=True),
        sa.Column("trace_tag", sa.String(length=512), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_executions_action_created", ["action_ref", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_executions_active",
            ["status", "not_before"],
            unique=False,
            sqlite_where=sa.text(
                "status IN ('requested','scheduled','delayed','running','canceling')"
            ),
            postgresql_where=sa.text(
                "status IN ('requested','scheduled','delayed','running','canceling')"
            ),
        )
        batch_op.create_index("ix_executions_created", ["created_at"], unique=False)
        batch_op.create_index("ix_executions_parent", ["parent_id"], unique=False)
        batch_op.create_index(
            "ix_executions_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "kv",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("expire_at", UTCDateTime(), nullable=True),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "owner", "name", name=op.f("pk_kv")),
    )
    with op.batch_alter_table("kv", schema=None) as batch_op:
        batch_op.create_index("ix_kv_expire_at", ["expire_at"], unique=False)

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "pack_configs",
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column(
            "values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "secret_paths",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pack", name=op.f("pk_pack_configs")),
    )
    op.create_table(
        "packs",
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_packs")),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("resource_ref", sa.String(length=512), nullable=False),
        sa.Column("policy_type", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("ref", name=op.f("uq_policies_ref")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policies_pack"), ["pack"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_policies_resource_ref"), ["resource_ref"], unique=False
        )

    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "info",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("trigger_type", sa.String(length=512), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("ref", name=op.f("uq_rules_ref")),
    )
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rules_pack"), ["pack"], unique=False)
        batch_op.create_index(batch_op.f("ix_rules_trigger_type"), ["trigger_type"], unique=False)

    op.create_table(
        "sensor_types",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_types")),
        sa.UniqueConstraint("ref", name=op.f("uq_sensor_types_ref")),
    )
    with op.batch_alter_table("sensor_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sensor_types_pack"), ["pack"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("expiry", UTCDateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_user"), ["user"], unique=False)

    op.create_table(
        "trigger_types",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=512), nullable=False),
        sa.Column("pack", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_types")),
        sa.UniqueConstraint("ref", name=op.f("uq_trigger_types_ref")),
    )
    with op.batch_alter_table("trigger_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trigger_types_pack"), ["pack"], unique=False)

    op.create_table(
        "users",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "doc",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )


def downgrade() -> None:

    op.drop_table("users")
    with op.batch_alter_table("trigger_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trigger_types_pack"))

    op.drop_table("trigger_types")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_user"))

    op.drop_table("tokens")
    with op.batch_alter_table("sensor_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sensor_types_pack"))

    op.drop_table("sensor_types")
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rules_trigger_type"))
        batch_op.drop_index(batch_op.f("ix_rules_pack"))

    op.drop_table("rules")
    op.drop_table("processes")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policies_resource_ref"))
        batch_op.drop_index(batch_op.f("ix_policies_pack"))

    op.drop_table("policies")
    op.drop_table("packs")
    op.drop_table("pack_configs")
    op.drop_table("leases")
    with op.batch_alter_table("kv", schema=None) as batch_op:
        batch_op.drop_index("ix_kv_expire_at")

    op.drop_table("kv")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_status_created")
        batch_op.drop_index("ix_executions_parent")
        batch_op.drop_index("ix_executions_created")
        batch_op.drop_index(
            "ix_executions_active",
            sqlite_where=sa.text(
                "status IN ('requested','scheduled','delayed','running','canceling')"
            ),
            postgresql_where=sa.text(
                "status IN ('requested','scheduled','delayed','running','canceling')"
            ),
        )
        batch_op.drop_index("ix_executions_action_created")

    op.drop_table("executions")
    with op.batch_alter_table("execution_output", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_output_execution")

    op.drop_table("execution_output")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_user"))

    op.drop_table("api_keys")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actions_pack"))

    op.drop_table("actions")
    op.drop_table("action_snapshots")
    with op.batch_alter_table("action_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_aliases_pack"))

    op.drop_table("action_aliases")
