"""Alembic environment: always run programmatically, on a connection Qiao hands over."""

from alembic import context

from qiao.core.storage.system import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="qiao_alembic_version",
    render_as_batch=True,
)
context.run_migrations()
