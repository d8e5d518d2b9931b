"""The one schema, shared by SQLite and PostgreSQL (SQLAlchemy Core).

Conventions:
* ids are 24-hex strings (``squall.model.ids.new_id``) unless a natural key exists;
* timestamps are timezone-aware UTC (:class:`UTCDateTime`);
* JSON documents use JSON on SQLite and JSONB on PostgreSQL;
* every tenant-owned row has a nullable ``team`` column, reserved for teams (DESIGN.md).

Changing this file requires a new Alembic revision under ``squall/store/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

__all__ = [
    "JSONDoc",
    "UTCDateTime",
    "action_aliases",
    "action_snapshots",
    "actions",
    "api_keys",
    "execution_output",
    "executions",
    "inquiries",
    "kv",
    "leases",
    "metadata",
    "pack_configs",
    "packs",
    "policies",
    "processes",
    "rbac_role_assignments",
    "rbac_roles",
    "rule_enforcements",
    "rules",
    "sensor_types",
    "storm_counters",
    "system_state",
    "timer_ticks",
    "tokens",
    "trigger_instances",
    "trigger_types",
    "triggers",
    "users",
    "webhook_deliveries",
    "workflow_definitions",
    "workflow_events",
    "workflow_executions",
    "workflow_parts",
]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both backends.

    PostgreSQL stores ``timestamptz``; SQLite stores the naive UTC value as a fixed-width
    string, so lexical order is time order and range queries use the index.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLAlchemy parses it
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _ts(name: str, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, UTCDateTime(), **kw)


def _team() -> sa.Column[Any]:
    return sa.Column("team", sa.String(128), nullable=True)


# --- content ----------------------------------------------------------------------------------

packs = sa.Table(
    "packs",
    metadata,
    sa.Column("ref", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("version", sa.String(64), nullable=False, default=""),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("doc", JSONDoc, nullable=False),
    #: Hash of every file that was registered, to make re-registration a no-op.
    sa.Column("content_hash", sa.String(64), nullable=False, default=""),
    #: ``system`` for packs shipped with Squall.
    sa.Column("origin", sa.String(32), nullable=False, default="user"),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("runner_type", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    #: The action document as the API shows it (StackStorm's shape).
    sa.Column("doc", JSONDoc, nullable=False),
    #: Content hash of ``doc``; the key of the immutable snapshot executions refer to.
    sa.Column("snapshot", sa.String(64), nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

#: Immutable action documents, shared by every execution of the same action version.
action_snapshots = sa.Table(
    "action_snapshots",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("doc", JSONDoc, nullable=False),
)

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("trigger_type", sa.String(512), nullable=False, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", JSONDoc, nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

trigger_types = sa.Table(
    "trigger_types",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("doc", JSONDoc, nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

sensor_types = sa.Table(
    "sensor_types",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("doc", JSONDoc, nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("resource_ref", sa.String(512), nullable=False, index=True),
    sa.Column("policy_type", sa.String(128), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("doc", JSONDoc, nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

action_aliases = sa.Table(
    "action_aliases",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("pack", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("doc", JSONDoc, nullable=False),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

pack_configs = sa.Table(
    "pack_configs",
    metadata,
    sa.Column("pack", sa.String(128), primary_key=True),
    #: The validated config with defaults applied; secret values stay as given (masked on read).
    sa.Column("values", JSONDoc, nullable=False),
    sa.Column("schema", JSONDoc, nullable=True),
    sa.Column("secret_paths", JSONDoc, nullable=False),
    _ts("updated_at", nullable=False),
)

# --- executions -------------------------------------------------------------------------------

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("action_ref", sa.String(512), nullable=False),
    sa.Column("action_snapshot", sa.String(64), nullable=False),
    sa.Column("runner_type", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    #: Parameters as requested (templates unrendered); resolution happens on the runner.
    sa.Column("parameters", JSONDoc, nullable=False),
    sa.Column("context", JSONDoc, nullable=False),
    sa.Column("notify", JSONDoc, nullable=True),
    #: Result document: ``b"j"`` + JSON, or ``b"z"`` + zlib(JSON) for large results.
    sa.Column("result", sa.LargeBinary, nullable=True),
    sa.Column("result_size", sa.Integer, nullable=False, default=0),
    #: Status history ``[{status, timestamp}]`` as StackStorm's ``log``.
    sa.Column("log", JSONDoc, nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("parent_id", sa.String(24), nullable=True),
    sa.Column("root_id", sa.String(24), nullable=True),
    sa.Column("trace_tag", sa.String(512), nullable=True),
    _ts("created_at", nullable=False),
    _ts("started_at", nullable=True),
    _ts("ended_at", nullable=True),
    #: Earliest time the scheduler may hand it to a runner (``delay`` on create).
    _ts("not_before", nullable=True),
    #: Runner lease: the process that runs it and until when the claim holds.
    sa.Column("lease_owner", sa.String(64), nullable=True),
    _ts("lease_expires_at", nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    _team(),
    #: Stream position of the latest change (``squall/store/stream.py``), and the position
    #: the row was inserted at (set on its first update; ``NULL`` while never updated).
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("created_seq", sa.BigInteger, nullable=True),
    sa.Index("ix_executions_created", "created_at"),
    sa.Index("ix_executions_seq", "seq"),
    sa.Index("ix_executions_action_created", "action_ref", "created_at"),
    # History queries (GET /api/v1/executions, revision 0005): a page and its exact
    # X-Total-Count read from one index. ``parent_id`` comes last so that the CLI's and the
    # UI's ``parent=null`` (top-level executions only) is checked without reading the rows.
    sa.Index("ix_executions_status_created_parent", "status", "created_at", "parent_id"),
    sa.Index(
        "ix_executions_action_status_created_parent",
        "action_ref",
        "status",
        "created_at",
        "parent_id",
    ),
    sa.Index("ix_executions_user_created_parent", "user", "created_at", "parent_id"),
    sa.Index("ix_executions_parent", "parent_id"),
    # The scheduler and runner hosts poll only active rows: keep that index small.
    # Concurrency policies count an action's active executions.
    sa.Index(
        "ix_executions_action_active",
        "action_ref",
        "status",
        sqlite_where=sa.text("status IN ('scheduled','running','canceling','pausing','paused')"),
        postgresql_where=sa.text(
            "status IN ('scheduled','running','canceling','pausing','paused')"
        ),
    ),
    sa.Index(
        "ix_executions_active",
        "status",
        "not_before",
        sqlite_where=sa.text("status IN ('requested','scheduled','delayed','running','canceling')"),
        postgresql_where=sa.text(
            "status IN ('requested','scheduled','delayed','running','canceling')"
        ),
    ),
)

execution_output = sa.Table(
    "execution_output",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("execution_id", sa.String(24), nullable=False),
    sa.Column("stream", sa.String(16), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    _ts("created_at", nullable=False),
    #: Stream position (``squall/store/stream.py``).
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Index("ix_execution_output_execution", "execution_id", "id"),
    sa.Index("ix_execution_output_seq", "seq"),
)

# --- datastore --------------------------------------------------------------------------------

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    #: The owning user for ``user`` scope; empty string for ``system``.
    sa.Column("owner", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(1024), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("secret", sa.Boolean, nullable=False, default=False),
    _ts("expire_at", nullable=True),
    _team(),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    sa.Index("ix_kv_expire_at", "expire_at"),
)

# --- identity ---------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    #: Role names (RBAC arrives later; ``admin`` and ``system_admin`` are recognised now).
    sa.Column("roles", JSONDoc, nullable=False),
    sa.Column("doc", JSONDoc, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    #: SHA-256 of the token; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(256), nullable=False, index=True),
    _ts("expiry", nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", JSONDoc, nullable=False),
    _ts("created_at", nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(256), nullable=False, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("doc", JSONDoc, nullable=False),
    _ts("created_at", nullable=False),
)

# --- coordination -----------------------------------------------------------------------------

processes = sa.Table(
    "processes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("roles", JSONDoc, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("info", JSONDoc, nullable=False),
    _ts("started_at", nullable=False),
    _ts("heartbeat_at", nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    _ts("expires_at", nullable=False),
)

# --- events and rules (revision 0002) ---------------------------------------------------------

triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(512), nullable=False, unique=True),
    sa.Column("type", sa.String(512), nullable=False, index=True),
    #: Canonical identity of (type, parameters): rules with equal triggers share one.
    sa.Column("key", sa.String(1024), nullable=False, unique=True),
    sa.Column("parameters", JSONDoc, nullable=False),
    sa.Column("doc", JSONDoc, nullable=False),
    _ts("created_at", nullable=False),
)

#: The predicate of the partial index on open trigger instances. Queries that should use the
#: index repeat it literally: SQLite (and PostgreSQL's generic plans) use a partial index only
#: when the query's WHERE implies the predicate, which ``status = ?`` with a bound value does not.
TRIGGER_INSTANCES_OPEN = "status IN ('pending','processing')"

trigger_instances = sa.Table(
    "trigger_instances",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("trigger", sa.String(512), nullable=False),
    sa.Column("trigger_type", sa.String(512), nullable=False),
    #: The trigger's identity key (``trigger_key``) when known, to match rules by parameters.
    sa.Column("trigger_key", sa.String(1024), nullable=True),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("trace_tag", sa.String(512), nullable=True),
    _ts("occurrence_time", nullable=False),
    _ts("processed_at", nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    _ts("claim_expires_at", nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    _team(),
    sa.Index("ix_trigger_instances_type_time", "trigger_type", "occurrence_time"),
    sa.Index("ix_trigger_instances_time", "occurrence_time"),
    sa.Index(
        "ix_trigger_instances_pending",
        "status",
        "occurrence_time",
        sqlite_where=sa.text(TRIGGER_INSTANCES_OPEN),
        postgresql_where=sa.text(TRIGGER_INSTANCES_OPEN),
    ),
)

rule_enforcements = sa.Table(
    "rule_enforcements",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("rule_id", sa.String(24), nullable=False),
    sa.Column("rule_ref", sa.String(512), nullable=False),
    sa.Column("rule", JSONDoc, nullable=False),
    sa.Column("trigger_instance_id", sa.String(24), nullable=False),
    sa.Column("execution_id", sa.String(24), nullable=True),
    #: ``succeeded`` (execution requested), ``failed`` (with reason) or ``suppressed``.
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("failure_reason", sa.Text, nullable=True),
    _ts("enforced_at", nullable=False),
    _team(),
    # Exactly once: a trigger instance is enforced at most once per rule, whatever happens.
    sa.UniqueConstraint("trigger_instance_id", "rule_id"),
    sa.Index("ix_rule_enforcements_rule_time", "rule_ref", "enforced_at"),
    sa.Index("ix_rule_enforcements_execution", "execution_id"),
    sa.Index("ix_rule_enforcements_time", "enforced_at"),
)

storm_counters = sa.Table(
    "storm_counters",
    metadata,
    sa.Column("key", sa.String(256), primary_key=True),
    _ts("window_start", primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    _ts("expires_at", nullable=False, index=True),
)

timer_ticks = sa.Table(
    "timer_ticks",
    metadata,
    sa.Column("trigger_key", sa.String(1024), primary_key=True),
    #: The scheduled time of the tick: inserting it twice fails, so a tick fires once.
    _ts("tick_at", primary_key=True),
    sa.Column("trigger_instance_id", sa.String(24), nullable=True),
    _ts("fired_at", nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    #: Delivery id from the sender (Standard Webhooks ``webhook-id``): replays are refused.
    sa.Column("id", sa.String(256), primary_key=True),
    sa.Column("hook", sa.String(512), nullable=False),
    _ts("received_at", nullable=False, index=True),
)

#: Counters that let every process notice content changes cheaply (rules_version …).
system_state = sa.Table(
    "system_state",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# --- workflows (issue 4) ----------------------------------------------------------------------
# Plain JSON (not JSONB) for the conductor's state: PostgreSQL's ``json`` keeps key order, as the
# conductor's dictionaries (contexts, transitions) expect when they are read back.

#: Workflow definitions by content hash: 10,000 runs of one workflow store its text once.
workflow_definitions = sa.Table(
    "workflow_definitions",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    #: ``orquesta`` or ``action-chain``.
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _ts("created_at", nullable=False),
)

#: One row per workflow run (the id is the workflow's execution id): the small header that is
#: rewritten when it changes, and the version counter that serializes processing.
workflow_executions = sa.Table(
    "workflow_executions",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    #: The conductor's workflow status (``running``, ``paused``, ``succeeded`` …).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("definition_hash", sa.String(64), nullable=False),
    sa.Column("header", sa.JSON, nullable=False),
    #: Written once: inputs and parent context (orquesta), parameters (action-chain).
    sa.Column("static", sa.JSON, nullable=False),
    #: What children inherit from the workflow execution (user, root, trace, notify …).
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _team(),
    sa.Index("ix_workflow_executions_status", "status"),
)

#: The growing parts of a conductor's state, one row each (route, context snapshot, task
#: entry, staged task, with-items item): a state change upserts a few rows, whatever the size
#: of the history.
workflow_parts = sa.Table(
    "workflow_parts",
    metadata,
    sa.Column("workflow_id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(1), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("doc", sa.JSON, nullable=True),
)

#: The workflow engine's inbox (transactional outbox of child completions, pause/resume/cancel
#: requests). Rows are deleted in the transaction that applies them.
workflow_events = sa.Table(
    "workflow_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("workflow_id", sa.String(24), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    #: A child's result, as stored on its execution (``encode_result``).
    sa.Column("result", sa.LargeBinary, nullable=True),
    _ts("created_at", nullable=False),
    sa.Index("ix_workflow_events_workflow", "workflow_id", "id"),
)

#: Inquiries (``core.ask``): the question of an inquirer execution, and its answer.
inquiries = sa.Table(
    "inquiries",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    #: ``pending``, ``succeeded``, ``timeout`` or ``canceled``.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("schema", JSONDoc, nullable=False),
    sa.Column("route", sa.String(512), nullable=False),
    sa.Column("roles", JSONDoc, nullable=False),
    sa.Column("users", JSONDoc, nullable=False),
    #: Minutes before an unanswered inquiry times out (0: never).
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("parent_id", sa.String(24), nullable=True),
    sa.Column("response", JSONDoc, nullable=True),
    sa.Column("responder", sa.String(256), nullable=True),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=True),
    _ts("responded_at", nullable=True),
    _team(),
    sa.Index("ix_inquiries_status_expires", "status", "expires_at"),
)

# --- RBAC (issue 5) ---------------------------------------------------------------------------

#: Custom roles, synchronized from ``$SQUALL_HOME/rbac/roles/*.yaml`` (system roles are built in).
rbac_roles = sa.Table(
    "rbac_roles",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    #: ``[{"resource_uid": "pack:x" | null, "permission_types": [...]}, ...]``
    sa.Column("grants", JSONDoc, nullable=False),
    #: The file the role came from.
    sa.Column("source", sa.Text, nullable=False),
    _team(),
    _ts("updated_at", nullable=False),
)

#: Role assignments from ``$SQUALL_HOME/rbac/assignments/<user>.yaml`` (the user need not exist
#: locally: proxy-authenticated users get their roles here). Roles set with ``squall user``
#: live in ``users.roles``.
rbac_role_assignments = sa.Table(
    "rbac_role_assignments",
    metadata,
    sa.Column("user", sa.String(256), primary_key=True),
    sa.Column("role", sa.String(256), primary_key=True),
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("is_remote", sa.Boolean, nullable=False),
    _team(),
    _ts("updated_at", nullable=False),
)
