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


def _digest(rig, volume_id, block=64 << 10):
    """A digest of the volume's bytes that reads only its allocated parts.

    Equal for equal contents whatever the holes (a restore writes zeros as
    holes): the size, then every non-zero aligned block with its offset.
    """
    from drivers import fileops
    sha = hashlib.sha256()
    fd = os.open(_volume_file(rig, volume_id), os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        sha.update(b'%d;' % size)
        done = -1
        for start, length in fileops.data_extents(fd, size):
            first = max(start - start % block, done + 1)
            for offset in range(first, start + length, block):
                data = os.pread(fd, block, offset)
                if data.count(0) != len(data):
                    sha.update(b'%d:' % offset)
                    sha.update(data)
                done = offset + block - 1
    finally:
        os.close(fd)
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


def _attach(rig, volume_id):
    from tests.functional.test_attachments import _attach as attach
    return attach(rig, volume_id)


def _detach(rig, volume_id, attachment):
    rig.api.attachment_delete(rig.ctx, rig.backend, volume_id, attachment.id)
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)


def _snapshot_files(rig):
    from drivers import file_layout
    return [name for name in os.listdir(rig.volume_dir)
            if name.startswith(file_layout.SNAPSHOT_PREFIX)]


def test_an_in_use_volume_is_backed_up_from_a_temporary_snapshot(rig):
    from volume_worker import exception
    from volume_worker.flows import backup_source
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(5 * MiB))
    attachment = _attach(rig, volume_id)
    rig.wait_status(volume_id, VolumeStatus.IN_USE)
    original = _digest(rig, volume_id)
    from volume_worker import objects
    refused = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id)
    with pytest.raises(exception.InvalidStatus) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'create_backup', backup=refused)
    assert 'in-use' in str(err.value)
    backup_id = _cast_backup(rig, volume_id, force=True)
    row = _wait_backup(rig, backup_id, BackupStatus.AVAILABLE)
    rig.wait_status(volume_id, VolumeStatus.IN_USE)
    assert row['temp_snapshot_id'] is None and row['temp_volume_id'] is None
    temp = rig.db.snapshot(backup_source.temp_snapshot_id(
        objects.Backup(id=backup_id)))
    assert temp is not None and temp['deleted']  # it was used, and is gone
    assert _snapshot_files(rig) == []
    restored = str(uuid.uuid4())
    _restore(rig, backup_id, restored)
    assert _digest(rig, restored) == original
    _detach(rig, volume_id, attachment)


def test_kill_inside_an_in_use_backup_removes_its_temporary_snapshot(rig):
    from volume_worker import objects
    from volume_worker.flows import backup_source
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(100 * MiB))
    attachment = _attach(rig, volume_id)
    backup_id = str(uuid.uuid4())
    rig.hang({backup_id: 'backup_volume_copy'})
    rig.api.create_backup(rig.ctx, rig.backend, objects.Backup(
        id=backup_id, volume_id=volume_id), force=True)
    rig.wait_inside({backup_id: 'backup_volume_copy'})
    assert len(_snapshot_files(rig)) == 1
    rig.kill()
    rig.clear_faults()
    rig.start()
    assert rig.db.backup_status(backup_id) == BackupStatus.ERROR
    assert rig.db.status(volume_id) == VolumeStatus.IN_USE
    assert _snapshot_files(rig) == []
    temp = rig.db.snapshot(backup_source.temp_snapshot_id(
        objects.Backup(id=backup_id)))
    assert temp['deleted']
    assert not os.path.exists(_backup_dir(rig, volume_id, backup_id))
    _detach(rig, volume_id, attachment)
    _assert_nothing_stuck(rig)


def test_kill_inside_a_restore_leaves_nothing_restoring(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(100 * MiB))
    original = _digest(rig, volume_id)
    row = _backup(rig, volume_id)
    _write(rig, volume_id, os.urandom(MiB))
    rig.hang({row['id']: 'restore_backup_copy'})
    rig.api.restore_backup(rig.ctx, rig.backend, row['id'], volume_id)
    rig.wait_inside({row['id']: 'restore_backup_copy'})
    assert rig.db.status(volume_id) == VolumeStatus.RESTORING_BACKUP
    rig.kill()
    rig.clear_faults()
    rig.start()
    # Half written: the volume says so; the backup is intact and restores.
    assert rig.db.status(volume_id) == VolumeStatus.ERROR_RESTORING
    backup = rig.db.backup(row['id'])
    assert backup['status'] == BackupStatus.ERROR_RESTORING
    assert 'restart' in backup['fail_reason']
    _restore(rig, row['id'], volume_id)  # asked again, it completes
    assert rig.db.backup(row['id'])['fail_reason'] is None
    assert _digest(rig, volume_id) == original
    _assert_nothing_stuck(rig)


def test_the_client_backs_up_restores_lists_and_deletes(rig):
    import json
    from volume_worker import events
    stream = events.EventStream(rig.conf.transport_url,
                                scheduler_topic=rig.conf.scheduler_topic)
    stream.start()
    try:
        [volume_id] = rig.create_available(1)
        _write(rig, volume_id, os.urandom(64 * MiB), offset=MiB)
        original = _digest(rig, volume_id)
        out = rig.client('create-backup', volume_id, '--name', 'nightly',
                         '--wait')
        assert out.returncode == 0, out.stderr
        backup = json.loads(out.stdout.splitlines()[-1])
        assert backup['status'] == 'available'
        assert backup['display_name'] == 'nightly'
        out = rig.client('create-backup', volume_id, '--incremental',
                         '--wait')
        assert out.returncode == 0, out.stderr
        incremental = json.loads(out.stdout.splitlines()[-1])
        assert incremental['parent_id'] == backup['id']
        assert incremental['object_count'] == 0  # nothing changed
        listed = json.loads(rig.client('list-backups', '--volume-id',
                                       volume_id).stdout)
        assert [b['id'] for b in listed] == [backup['id'],
                                             incremental['id']]
        shown = json.loads(rig.client('show-backup', backup['id']).stdout)
        assert shown['size'] == 1
        device = json.loads(rig.client('get-backup-device',
                                       backup['id']).stdout)
        assert device['is_snapshot'] is False
        assert device['backup_device']['id'] == volume_id
        assert json.loads(rig.client(
            'secure-file-operations-enabled').stdout) is False
        out = rig.client('restore-backup', incremental['id'], '--wait')
        assert out.returncode == 0, out.stderr
        restored = out.stderr.split('new volume ')[1].split()[0]
        assert _digest(rig, restored) == original
        for backup_id in (incremental['id'], backup['id']):
            out = rig.client('delete-backup', backup_id, '--wait')
            assert out.returncode == 0, out.stderr
            assert rig.db.backup_status(backup_id) == BackupStatus.DELETED
        seen = []

        def progress_seen():
            seen.extend(stream.poll(0.2))
            created = any(
                e.get('event_type') == 'backup.create.progress' and
                (e.get('payload') or {}).get('backup_id') == backup['id'] and
                e['payload'].get('percent') == 100 for e in seen)
            restored = any(e.get('event_type') == 'backup.restore.progress'
                           for e in seen)
            return created and restored
        state.wait_until(progress_seen, 20, 'backup progress notifications')
        bad = rig.client('restore-backup', str(uuid.uuid4()))
        assert bad.returncode != 0 and 'does not exist' in bad.stderr
    finally:
        stream.close()


def test_bad_backup_requests_get_one_clear_error(rig):
    from volume_worker import exception
    from volume_worker import objects

    def call(method, **kwargs):
        return rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, method, **kwargs)

    [volume_id] = rig.create_available(1)
    with pytest.raises(exception.VolumeNotFound):
        call('create_backup', backup=objects.Backup(
            id=str(uuid.uuid4()), volume_id=str(uuid.uuid4())))
    with pytest.raises(exception.InvalidInput) as err:
        call('create_backup', backup=objects.Backup(
            id=str(uuid.uuid4()), volume_id=volume_id), incremental=True)
    assert 'no available backup' in str(err.value)
    with pytest.raises(exception.InvalidInput):
        call('create_backup', backup=objects.Backup(
            id=str(uuid.uuid4()), volume_id=volume_id,
            display_name='bad\nname'))
    with pytest.raises(exception.InvalidInput):
        call('create_backup', backup=objects.Backup(
            id='not-a-uuid', volume_id=volume_id))
    with pytest.raises(exception.BackupNotFound):
        call('restore_backup', backup_id=str(uuid.uuid4()),
             volume_id=volume_id)
    with pytest.raises(exception.InvalidInput):
        call('restore_backup', backup_id='../../etc', volume_id=volume_id)
    row = _backup(rig, volume_id)
    rig.cast_delete(volume_id)
    state.wait_until(lambda: rig.db.volume(volume_id)['deleted'], 30,
                     'volume deleted')
    with pytest.raises(exception.InvalidInput) as err:
        call('restore_backup', backup_id=row['id'], volume_id=volume_id)
    assert 'cannot be reused' in str(err.value)
    assert call('get_backup', backup_id=row['id']).status == 'available'
    assert rig.worker.proc.poll() is None


def test_a_backup_of_a_snapshot_holds_the_snapshots_data(rig):
    from tests.functional.test_snapshots import _cast_snapshot
    from tests.functional.test_snapshots import _wait_snapshot
    from volume_worker import objects
    from volume_worker.objects import SnapshotStatus
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, os.urandom(2 * MiB))
    then = _digest(rig, volume_id)
    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.AVAILABLE)
    _write(rig, volume_id, os.urandom(MiB))
    attachment = _attach(rig, volume_id)
    backup = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id,
                            snapshot_id=snapshot_id)
    rig.api.create_backup(rig.ctx, rig.backend, backup)  # no force needed
    row = _wait_backup(rig, backup.id, BackupStatus.AVAILABLE)
    assert row['snapshot_id'] == snapshot_id
    assert rig.db.status(volume_id) == VolumeStatus.IN_USE
    restored = str(uuid.uuid4())
    _restore(rig, backup.id, restored)
    assert _digest(rig, restored) == then
    _detach(rig, volume_id, attachment)
    rig.api.delete_snapshot(rig.ctx, rig.backend, snapshot_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.DELETED)
