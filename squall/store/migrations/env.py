"""Alembic environment: migrations run on a connection handed over by Squall."""

from __future__ import annotations

from alembic import context

from squall.store.schema import metadata

target_metadata = metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("run migrations with `squall db upgrade` (squall.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
