"""Per-pool usage counters: equal to the sums over the rows after every kind
of write, on SQLite and PostgreSQL, under concurrent writers, and rebuilt
at start-up."""

import threading
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import make_postgres_database
from volume_worker.db import api as db
from volume_worker.db import migration
from volume_worker.db import models
from volume_worker import objects

BACKEND = 'node@b'


@pytest.fixture(params=['sqlite', 'postgresql'])
def any_database(request, sqlite_url):
    if request.param == 'sqlite':
        url, drop = sqlite_url, None
    else:
        url, drop = make_postgres_database()
    db.configure(url)
    migration.db_sync()
    yield request.param
    db.dispose()
    if drop:
        drop()


def _volume(size, pool, status='available', host=None):
    volume = objects.Volume(id=str(uuid.uuid4()), size=size, status=status,
                            host=host or '%s#%s' % (BACKEND, pool))
    volume.create()
    return volume


def _snapshot(volume, status='available'):
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume.id,
                            volume_size=volume.size, host=volume.host,
                            status=status)
    snap.create()
    return snap


def _assert_exact():
    stored, counted = db.pool_usage_check(BACKEND)
    assert stored == counted
    return stored


def test_every_kind_of_write_keeps_the_counters_exact(any_database):
    a1, a2 = _volume(2, 'a'), _volume(3, 'a')
    b1 = _volume(5, 'b')
    _volume(7, None, host=BACKEND)           # a host without a pool
    _volume(9, None, host='other@b#a')       # another backend's
    assert _assert_exact() == {
        BACKEND + '#a': (5, 0, 2), BACKEND + '#b': (5, 0, 1),
        BACKEND: (7, 0, 1)}
    snap = _snapshot(a1)
    assert _assert_exact()[BACKEND + '#a'] == (5, 2, 2)

    a2.size = 10                                     # extend
    a2.save()
    b1.status, b1.host = 'available', BACKEND + '#a'  # migrate / retype
    b1.save()
    assert _assert_exact()[BACKEND + '#a'] == (17, 2, 3)
    assert BACKEND + '#b' not in _assert_exact()   # nothing left there

    a2.size = 20                                     # a refused CAS
    assert not a2.save(expected_status='creating')
    assert _assert_exact()[BACKEND + '#a'] == (17, 2, 3)

    assert db.volume_swap_identities(                # migration completion
        a1.id, a1.host, {'host': BACKEND + '#b', 'size': 4}, b1.id,
        {'host': BACKEND + '#c'})
    assert _assert_exact() == {
        BACKEND + '#a': (10, 2, 1), BACKEND + '#b': (4, 0, 1),
        BACKEND + '#c': (5, 0, 1), BACKEND: (7, 0, 1)}

    snap.destroy()
    a2.destroy()
    a2.destroy()                                     # twice: counted once
    creating = _volume(6, 'c', status='creating')
    assert db.volume_purge(creating.id, 'creating')  # sent back
    assert not db.volume_purge(creating.id, 'creating')
    assert _assert_exact() == {
        BACKEND + '#b': (4, 0, 1), BACKEND + '#c': (5, 0, 1),
        BACKEND: (7, 0, 1)}
    report = db.backend_usage_by_pool(BACKEND)
    assert report['c'] == {'allocated_capacity_gb': 5,
                           'provisioned_capacity_gb': 5, 'total_volumes': 1}
    assert 'a' not in report or report['a']['total_volumes'] == 0


def test_concurrent_writers_of_one_pool_lose_nothing(any_database):
    errors = []

    def writer(n):
        try:
            for i in range(15):
                volume = _volume(1 + i % 3, 'hot')
                if i % 2:
                    volume.size += 1
                    volume.save()
                if i % 3 == 0:
                    volume.destroy()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counted = _assert_exact()
    assert counted[BACKEND + '#hot'][2] == 6 * 10


def test_recompute_mends_counters_written_behind_the_api(any_database):
    _volume(2, 'a')
    now = db.utcnow()
    with db.get_engine().begin() as conn:   # a tool inserting rows itself
        conn.execute(models.volumes.insert(), [
            {'id': str(uuid.uuid4()), 'size': 1, 'status': 'available',
             'host': BACKEND + '#a', 'deleted': False, 'created_at': now,
             'multiattach': False, 'bootable': False} for _ in range(3)])
        conn.execute(models.pool_usage.update().values(volumes=99).where(
            models.pool_usage.c.host == BACKEND + '#a'))
        conn.execute(models.pool_usage.insert().values(
            host=BACKEND + '#gone', volume_gb=1, snapshot_gb=0, volumes=1))
    stored, counted = db.pool_usage_check(BACKEND)
    assert stored != counted
    before, now = db.pool_usage_recompute(BACKEND)
    assert before == {BACKEND + '#a': (2, 0, 99), BACKEND + '#gone': (1, 0, 1)}
    assert now == {BACKEND + '#a': (5, 0, 4), BACKEND + '#gone': None}
    assert _assert_exact() == {BACKEND + '#a': (5, 0, 4)}
    assert db.pool_usage_recompute(BACKEND) == ({}, {})


def test_the_migration_counts_what_is_already_there(sqlite_url):
    from tests.unit.test_migrations import _upgrade_to
    db.configure(sqlite_url)
    try:
        _upgrade_to('0012')
        now = db.utcnow()
        with db.get_engine().begin() as conn:
            for vid, size, host, deleted in (
                    ('v1', 2, BACKEND + '#a', False),
                    ('v2', 3, BACKEND + '#a', False),
                    ('v3', 5, BACKEND + '#a', True),
                    ('v4', 7, None, False)):
                conn.execute(sa.text(
                    "INSERT INTO volumes (id, size, status, host, created_at, "
                    "deleted, multiattach, bootable) VALUES (:id, :size, "
                    "'available', :host, :now, :deleted, 0, 0)"),
                    {'id': vid, 'size': size, 'host': host, 'now': now,
                     'deleted': deleted})
            conn.execute(sa.text(
                "INSERT INTO snapshots (id, volume_id, volume_size, status, "
                "host, created_at, deleted) VALUES ('s1', 'v1', 2, "
                "'available', :host, :now, 0)"), {'host': BACKEND + '#a',
                                                  'now': now})
        migration.db_sync()
        assert _assert_exact() == {BACKEND + '#a': (5, 2, 2)}
    finally:
        db.dispose()


def test_moving_a_backend_into_a_cluster_moves_its_counters(any_database):
    _volume(2, 'a')
    _snapshot(_volume(3, 'a'))
    _volume(5, 'b')
    cluster = 'clus@b'
    db.move_to_backend(BACKEND, cluster)
    assert _assert_exact() == {}
    stored, counted = db.pool_usage_check(cluster)
    assert stored == counted == {cluster + '#a': (5, 3, 2),
                                 cluster + '#b': (5, 0, 1)}
