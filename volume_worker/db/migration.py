"""Schema migrations (alembic): ``db_sync`` brings a database to the newest schema."""

import contextlib
import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration
from alembic import script

from volume_worker.db import api as db

_SCRIPT_DIR = os.path.join(os.path.dirname(__file__), 'migrations')


def _config():
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', _SCRIPT_DIR)
    return cfg


def head_revision():
    return script.ScriptDirectory.from_config(_config()).get_current_head()


def current_revision():
    with db.get_engine().connect() as conn:
        return migration.MigrationContext.configure(conn).get_current_revision()


# Any number, the same for every worker: the key of the migration lock.
_SYNC_LOCK_KEY = 0x766f6c776b72  # 'volwkr'


def db_sync():
    """Upgrade the configured database to the newest schema; idempotent.

    Workers of a cluster start together on one database: on PostgreSQL
    (and MySQL) one migrates under a lock while the others wait, then
    find the schema current.
    """
    head = head_revision()
    if current_revision() == head:
        return False
    with _sqlite_file_lock(db.get_engine().url):
        return _upgrade(head)


@contextlib.contextmanager
def _sqlite_file_lock(url):
    """For a SQLite file, an exclusive lock next to it (``workers = N``
    start together on one file); other databases lock in ``_upgrade``."""
    if url.get_backend_name() != 'sqlite' or url.database in (None, '',
                                                              ':memory:'):
        yield
        return
    import fcntl
    with open(url.database + '.migrate-lock', 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(head):
    cfg = _config()
    with db.get_engine().begin() as conn:
        dialect = conn.dialect.name
        if dialect == 'postgresql':
            conn.exec_driver_sql('SELECT pg_advisory_xact_lock(%d)'
                                 % _SYNC_LOCK_KEY)
        elif dialect in ('mysql', 'mariadb'):
            conn.exec_driver_sql("SELECT GET_LOCK('volume-worker-db-sync', "
                                 "300)")
        if migration.MigrationContext.configure(
                conn).get_current_revision() == head:
            return False  # another worker migrated meanwhile
        cfg.attributes['connection'] = conn
        command.upgrade(cfg, 'head')
    return True
