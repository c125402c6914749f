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


def _rabbitmqctl(*args):
    import shutil
    import subprocess
    if not shutil.which('rabbitmqctl'):
        return None
    result = subprocess.run(['rabbitmqctl', '-q'] + list(args),
                            capture_output=True, text=True, timeout=60)
    return result.stdout if result.returncode == 0 else None


# Entities an older checkout left on this broker that the durable (quorum)
# defaults cannot be declared over (PRECONDITION_FAILED): the non-durable
# control exchange, and classic queues whose names are shared by all workers.
SHARED_QUEUES = ('volume-worker', 'notifications.info', 'notifications.error',
                 'notifications.warn')


def _retire_classic_entities():
    """Delete them once, as the README's "Moving to quorum queues" says."""
    import kombu
    exchanges = _rabbitmqctl('list_exchanges', 'name', 'durable')
    queues = _rabbitmqctl('list_queues', 'name', 'type')
    if exchanges is None or queues is None:
        return
    stale_exchanges = [line.split('\t')[0] for line in exchanges.splitlines()
                       if line.split('\t')[:2] == ['volume-worker', 'false']]
    stale_queues = [name for name, kind in (
        line.split('\t')[:2] for line in queues.splitlines()
        if '\t' in line) if name in SHARED_QUEUES and kind == 'classic']
    if not stale_exchanges and not stale_queues:
        return
    with kombu.Connection('amqp://guest:guest@127.0.0.1:5672//',
                          connect_timeout=5) as conn:
        channel = conn.channel()
        for name in stale_exchanges:
            channel.exchange_delete(name)
        for name in stale_queues:
            channel.queue_delete(name)


@pytest.fixture(scope='session', autouse=True)
def broker_hygiene():
    """The broker before and after a session.

    Before: queues of short-lived test workers (host node-*) expire when
    unused, and what an older checkout left that the durable defaults
    cannot be declared over is removed. After: the queues and exchanges of
    the workers this session configured are deleted (durable queues stay
    otherwise), and the notifications nobody consumed are purged.
    """
    _rabbitmqctl('set_policy', '--apply-to', 'queues',
                 'volume-worker-test-queues', r'^volume-worker\.node-',
                 '{"expires": 120000}')
    try:
        _retire_classic_entities()
    except Exception as exc:  # no broker: the tests that need it say so
        warnings.warn('broker not prepared: %s' % exc)
    yield
    from volume_worker.testing import process
    try:
        process.cleanup_broker()
        process.purge_queues(SHARED_QUEUES[1:])
    except Exception as exc:
        warnings.warn('broker not cleaned up: %s' % exc)
