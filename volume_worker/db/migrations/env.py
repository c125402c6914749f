"""Alembic environment: runs migrations on the connection the caller hands in."""

from alembic import context

from volume_worker.db import models

config = context.config
target_metadata = models.metadata


def run_migrations_online():
    connection = config.attributes.get('connection')
    if connection is None:
        import sqlalchemy as sa
        engine = sa.create_engine(config.get_main_option('sqlalchemy.url'))
        with engine.begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection):
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
