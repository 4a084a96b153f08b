"""Alembic environment: runs on the connection cachenet hands it (no alembic.ini).

Two chains share it (see cachenet.store.phases): the main chain in ``versions/``
tracked in ``alembic_version``, and the expand chain in ``expand/`` tracked in
its own table, so that expanding leaves ``alembic_version`` as the previous
release expects it.
"""

from alembic import context

connection = context.config.attributes["connection"]
version_table = context.config.attributes.get("version_table", "alembic_version")
context.configure(connection=connection, target_metadata=None, version_table=version_table)
with context.begin_transaction():
    context.run_migrations()
