"""Shared fixtures: a migrated database per test, unique names on the broker."""

import os
import uuid
import warnings

import pytest

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

POSTGRES_ADMIN_URL = os.environ.get(
    'VW_TEST_POSTGRES', 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres')


@pytest.fixture
def sqlite_url(tmp_path):
    return 'sqlite:///%s' % (tmp_path / 'volume-worker.sqlite')


@pytest.fixture
def database(sqlite_url):
    from volume_worker.db import api as db
    from volume_worker.db import migration
    db.configure(sqlite_url)
    migration.db_sync()
    yield sqlite_url
    db.dispose()


def make_postgres_database():
    """A fresh, empty PostgreSQL database; skips when the server is absent."""
    import sqlalchemy as sa
    name = 'vw_test_%s' % uuid.uuid4().hex[:10]
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL,
                                  isolation_level='AUTOCOMMIT')
        with engine.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s' % name))
    except Exception as exc:  # no server: say so, do not fail
        pytest.skip('PostgreSQL is not reachable at %s: %s'
                    % (POSTGRES_ADMIN_URL, exc))
    url = POSTGRES_ADMIN_URL.rsplit('/', 1)[0] + '/' + name

    def drop():
        with engine.connect() as conn:
            conn.execute(sa.text(
                'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                'WHERE datname = :n'), {'n': name})
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
        engine.dispose()
    return url, drop


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope='session', autouse=True)
def expire_test_queues():
    """Queues of short-lived test workers (host node-*) expire when unused."""
    import shutil
    import subprocess
    if shutil.which('rabbitmqctl'):
        subprocess.run(['rabbitmqctl', '-q', 'set_policy', '--apply-to',
                        'queues', 'volume-worker-test-queues',
                        r'^volume-worker\.node-', '{"expires": 120000}'],
                       capture_output=True, timeout=60)
