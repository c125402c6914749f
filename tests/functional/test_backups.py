"""Backups end to end: the real broker, a worker process, the file driver, the POSIX store.

Data is written into a volume's file, backed up (attached through os-brick,
chunked, compressed, checksummed), and restored onto new and existing
volumes, compared byte for byte; an incremental backup after a 1 MiB write
stores one chunk; a backup outlives its volume. Each family gets an
injected failure that must leave nothing behind, and a kill -9 inside the
copy, after which nothing is stuck and no partial chunk is left.
"""

import hashlib
import os
import uuid

import pytest

from tests.functional.test_crash_recovery import running_rig
from tests.functional.test_snapshots import _volume_file
from volume_worker.objects import BackupStatus
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory, 'backups')


@pytest.fixture(autouse=True)
def no_faults(rig):
    rig.clear_faults()
    yield
    rig.clear_faults()


def _store(rig):
    return os.path.join(rig.state_dir, 'backups')


def _backup_dir(rig, volume_id, backup_id):
    return os.path.join(_store(rig), volume_id, backup_id)


def _write(rig, volume_id, data, offset=0):
    with open(_volume_file(rig, volume_id), 'r+b') as f:
        f.seek(offset)
        f.write(data)


def _digest(rig, volume_id):
    sha = hashlib.sha256()
    with open(_volume_file(rig, volume_id), 'rb') as f:
        for block in iter(lambda: f.read(8 * MiB), b''):
            sha.update(block)
    return sha.hexdigest()


def _cast_backup(rig, volume_id, incremental=False, force=False):
    from volume_worker import objects
    backup = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id,
                            display_name='b')
    rig.api.create_backup(rig.ctx, rig.backend, backup,
                          incremental=incremental, force=force)
    return backup.id


def _wait_backup(rig, backup_id, status, timeout=60):
    state.wait_until(lambda: rig.db.backup_status(backup_id) == status,
                     timeout, 'backup %s %s' % (backup_id, status))
    return rig.db.backup(backup_id)


def _backup(rig, volume_id, incremental=False):
    backup_id = _cast_backup(rig, volume_id, incremental)
    row = _wait_backup(rig, backup_id, BackupStatus.AVAILABLE)
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
    return row


def _restore(rig, backup_id, volume_id):
    before = rig.db.backup(backup_id)['updated_at']

    def ended():
        row = rig.db.backup(backup_id)
        return (row['updated_at'] != before and
                row['status'] != BackupStatus.RESTORING)
    rig.api.restore_backup(rig.ctx, rig.backend, backup_id, volume_id)
    state.wait_until(ended, 60, 'restore of %s ended' % backup_id)
    assert rig.db.backup_status(backup_id) == BackupStatus.AVAILABLE
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE


def _assert_nothing_stuck(rig):
    rig.assert_consistent()
    for row in rig.db.backups():
        assert row['status'] not in (BackupStatus.CREATING,
                                     BackupStatus.RESTORING,
                                     BackupStatus.DELETING), row
    temps = [name for _dir, _subdirs, names in os.walk(_store(rig))
             for name in names if name.endswith('.tmp')]
    assert temps == []


def test_a_backup_restores_byte_for_byte_after_its_volume_is_gone(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(3 * MiB + 17))
    _write(rig, volume_id, os.urandom(MiB), offset=700 * MiB + 5)
    _write(rig, volume_id, b'the last bytes', offset=GiB - 14)
    original = _digest(rig, volume_id)
    row = _backup(rig, volume_id)
    assert row['size'] == 1 and row['fail_reason'] is None
    assert row['object_count'] == 3  # the chunks with data, no more
    assert 0 < row['stored_bytes'] < 5 * MiB
    assert os.path.exists(os.path.join(_backup_dir(rig, volume_id, row['id']),
                                       'metadata.json'))
    rig.cast_delete(volume_id)
    state.wait_until(lambda: rig.db.volume(volume_id)['deleted'], 30,
                     'volume deleted')
    restored = str(uuid.uuid4())
    _restore(rig, row['id'], restored)
    assert rig.db.volume(restored)['size'] == 1
    assert _digest(rig, restored) == original
    assert rig.db.backup_status(row['id']) == BackupStatus.AVAILABLE
    _assert_nothing_stuck(rig)


def test_an_incremental_backup_after_a_1_mib_write_stores_one_chunk(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(64 * MiB))
    full = _backup(rig, volume_id)
    first = _digest(rig, volume_id)
    _write(rig, volume_id, os.urandom(MiB), offset=40 * MiB)
    second = _digest(rig, volume_id)
    incremental = _backup(rig, volume_id, incremental=True)
    assert incremental['parent_id'] == full['id']
    assert incremental['object_count'] == 1
    assert incremental['stored_bytes'] <= 32 * MiB + 4096
    stored = os.listdir(_backup_dir(rig, volume_id, incremental['id']))
    assert sorted(stored) == ['chunk-000001', 'metadata.json']
    # Onto the volume itself (existing, same size), then the full one.
    _write(rig, volume_id, os.urandom(MiB))
    _restore(rig, incremental['id'], volume_id)
    assert _digest(rig, volume_id) == second
    _restore(rig, full['id'], volume_id)
    assert _digest(rig, volume_id) == first
    # The parent is needed by its incremental: refused, then both go.
    with pytest.raises(Exception) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'delete_backup', backup_id=full['id'])
    assert 'incremental backups depend on it' in str(err.value)
    for backup_id in (incremental['id'], full['id']):
        rig.api.delete_backup(rig.ctx, rig.backend, backup_id)
        _wait_backup(rig, backup_id, BackupStatus.DELETED)
    assert not os.path.exists(os.path.join(_store(rig), volume_id))
    _assert_nothing_stuck(rig)


def test_restore_onto_a_smaller_volume_is_refused(rig):
    from volume_worker import exception
    big = rig.cast_create(size=2)
    rig.wait_status(big, VolumeStatus.AVAILABLE)
    _write(rig, big, b'two gigabytes', offset=GiB + 3)
    row = _backup(rig, big)
    [small] = rig.create_available(1)
    _write(rig, small, b'keep me')
    with pytest.raises(exception.InvalidVolume) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'restore_backup', backup_id=row['id'], volume_id=small)
    assert 'cannot hold' in str(err.value)
    assert rig.db.status(small) == VolumeStatus.AVAILABLE
    assert rig.db.backup_status(row['id']) == BackupStatus.AVAILABLE
    with open(_volume_file(rig, small), 'rb') as f:
        assert f.read(7) == b'keep me'


def test_an_injected_failure_leaves_nothing_behind(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(MiB))
    faulty.control(rig.control, {'*': {'backup_volume': faulty.RAISE}})
    backup_id = _cast_backup(rig, volume_id)
    row = _wait_backup(rig, backup_id, BackupStatus.ERROR)
    assert 'fault injected' in row['fail_reason']
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
    assert not os.path.exists(_backup_dir(rig, volume_id, backup_id))
    # A restore onto a new volume that fails takes the volume away again.
    rig.clear_faults()
    good = _backup(rig, volume_id)
    faulty.control(rig.control, {'*': {'restore_backup': faulty.RAISE}})
    target = str(uuid.uuid4())
    rig.api.restore_backup(rig.ctx, rig.backend, good['id'], target)
    row = _wait_backup(rig, good['id'], BackupStatus.ERROR_RESTORING)
    assert 'fault injected' in row['fail_reason']
    state.wait_until(lambda: (rig.db.volume(target) or {}).get('deleted'),
                     30, 'new volume removed')
    assert not os.path.exists(_volume_file(rig, target))
    _assert_nothing_stuck(rig)


def test_kill_inside_the_copy_leaves_the_backup_error_and_no_chunks(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(100 * MiB))
    backup_id = str(uuid.uuid4())
    rig.hang({backup_id: 'backup_volume_copy'})
    from volume_worker import objects
    rig.api.create_backup(rig.ctx, rig.backend, objects.Backup(
        id=backup_id, volume_id=volume_id))
    rig.wait_inside({backup_id: 'backup_volume_copy'})
    assert rig.db.status(volume_id) == VolumeStatus.BACKING_UP
    chunks = os.listdir(_backup_dir(rig, volume_id, backup_id))
    assert 'chunk-000000' in chunks and 'metadata.json' not in chunks
    rig.kill()
    rig.clear_faults()
    rig.start()
    row = rig.db.backup(backup_id)
    assert row['status'] == BackupStatus.ERROR
    assert 'restart' in row['fail_reason']
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    assert not os.path.exists(_backup_dir(rig, volume_id, backup_id))
    _assert_nothing_stuck(rig)
