"""Schema migrations (alembic): ``db_sync`` brings a database to the newest schema."""

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


def db_sync():
    """Upgrade the configured database to the newest schema; idempotent."""
    if current_revision() == head_revision():
        return False
    cfg = _config()
    with db.get_engine().begin() as conn:
        cfg.attributes['connection'] = conn
        command.upgrade(cfg, 'head')
    return True
