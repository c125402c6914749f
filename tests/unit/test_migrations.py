"""The alembic migrations build exactly db/models.py, and upgrade databases that hold data."""

import datetime
import json

import sqlalchemy as sa
from alembic import command
from alembic import migration as alembic_migration
from alembic.autogenerate import compare_metadata

from volume_worker.db import api as db
from volume_worker.db import migration
from volume_worker.db import models


def test_migrations_match_the_models(database):
    with db.get_engine().connect() as conn:
        context = alembic_migration.MigrationContext.configure(conn)
        diff = compare_metadata(context, models.metadata)
    assert diff == [], 'models and migrations differ: %s' % diff


def _upgrade_to(revision):
    cfg = migration._config()
    with db.get_engine().begin() as conn:
        cfg.attributes['connection'] = conn
        command.upgrade(cfg, revision)


def test_upgrade_from_0001_keeps_volumes_and_unfinished_operations(
        sqlite_url):
    db.configure(sqlite_url)
    try:
        _upgrade_to('0001')
        now = datetime.datetime(2026, 11, 1)
        with db.get_engine().begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO volumes (id, size, status, host, created_at, "
                "deleted) VALUES ('v1', 2, 'creating', 'h@b#p', :now, 0)"),
                {'now': now})
            conn.execute(sa.text(
                "INSERT INTO flow_journal (resource_type, resource_id, host, "
                "operation, state, store, progress, created_at) VALUES "
                "('volume', 'v1', 'h@b', 'create_volume', 'running', :store, "
                ":progress, :now)"),
                {'store': json.dumps({'volume_id': 'v1',
                                      'volume_primitive': {'x': 1}}),
                 'progress': json.dumps({'CreateOnBackend': {'a': 'b'}}),
                 'now': now})

        assert migration.db_sync()
        assert migration.current_revision() == migration.head_revision()

        row = db.volume_get('v1')
        assert (row['size'], row['status'], row['multiattach'],
                row['bootable'], row['_name_id']) == (2, 'creating', False,
                                                       False, None)
        [op] = db.journal_get_all('h@b')
        assert op['operation'] == 'create_volume'
        assert op['resources'] == [['volume', 'volume', 'v1']]
        assert op['progress'] == {'CreateOnBackend': {'a': 'b'}}
        assert op['store'] == {}
        assert not sa.inspect(db.get_engine()).has_table('flow_journal')
    finally:
        db.dispose()
