"""Alembic environment. Runs on the connection `app.store.migrate` hands over (in `attributes`),
or, from the `alembic` command line, on `COACH_DATABASE_URL` (sync driver URLs work there too)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.store.db import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from app.store.migrate import run_cli_migrations

    run_cli_migrations(context.config, run_on)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_online()
