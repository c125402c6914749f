"""Backup flows on real flows and the fake driver: stand-ins of in-use volumes, crashes, refusals."""

import collections
import uuid

import pytest
from oslo_config import cfg

from volume_worker import exception
from volume_worker.flows import backup as backup_flows
from volume_worker.flows import backup_source
from volume_worker.flows import restore as restore_flows
from volume_worker import objects
from volume_worker.objects import BackupStatus
from volume_worker.objects import VolumeStatus
from volume_worker import opts

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401
from tests.unit.test_runner import ops  # noqa: F401


@pytest.fixture(autouse=True)
def backup_store(tmp_path):
    opts.register_backup_opts(cfg.CONF)
    cfg.CONF.set_override('posix_path', str(tmp_path / 'backups'),
                          group='backup')
    yield
    cfg.CONF.clear_override('posix_path', group='backup')


def _in_use_volume(ops):
    volume = helpers.available_volume(ops)
    helpers.attach(ops, volume.id)
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    return volume


def _new_backup(volume_id):
    backup = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id)
    backup.obj_fill_unset()
    return backup


def _spy(driver, monkeypatch, snapshot, remote):
    calls = collections.Counter()
    monkeypatch.setattr(driver, 'backup_use_temp_snapshot', lambda: snapshot)
    monkeypatch.setattr(driver, 'snapshot_remote_attachable', lambda: remote)
    for name in ('create_snapshot', 'delete_snapshot', 'create_cloned_volume',
                 'create_volume_from_snapshot', 'delete_volume'):
        original = getattr(driver, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(driver, name, counted)
    seen = []
    original_backup = driver.backup_volume

    def backup_volume(context, backup, service):
        seen.append((backup.temp_snapshot_id, backup.temp_volume_id))
        return original_backup(context, backup, service)
    monkeypatch.setattr(driver, 'backup_volume', backup_volume)
    return calls, seen


@pytest.mark.parametrize('snapshot, remote, made', [
    (True, True, {'create_snapshot': 1, 'delete_snapshot': 1}),
    (True, False, {'create_snapshot': 1, 'delete_snapshot': 1,
                   'create_volume_from_snapshot': 1, 'delete_volume': 1}),
    (False, False, {'create_cloned_volume': 1, 'delete_volume': 1}),
], ids=['snapshot', 'snapshot-then-clone', 'clone'])
def test_an_in_use_volume_is_read_from_a_stand_in_that_goes_away(
        ops, driver, monkeypatch, snapshot, remote, made):
    volume = _in_use_volume(ops)
    calls, seen = _spy(driver, monkeypatch, snapshot, remote)
    backup = _new_backup(volume.id)
    with pytest.raises(exception.InvalidStatus):
        helpers.run(ops, backup_flows.CREATE, backup=backup)
    helpers.run(ops, backup_flows.CREATE, force=True, backup=backup)
    assert dict(calls) == made
    [(temp_snapshot, temp_volume)] = seen
    assert (temp_snapshot is not None) == snapshot
    assert (temp_volume is not None) == (not remote)
    saved = objects.Backup.get_by_id(backup.id)
    assert saved.status == BackupStatus.AVAILABLE
    assert (saved.temp_snapshot_id, saved.temp_volume_id) == (None, None)
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    for cls, resource_id in ((objects.Snapshot, temp_snapshot),
                             (objects.Volume, temp_volume)):
        if resource_id:
            assert cls.get_by_id(resource_id, read_deleted=True).deleted


def test_a_crash_inside_the_copy_is_reverted_stand_in_and_all(
        ops, driver, notifier, coordinator, monkeypatch):
    volume = _in_use_volume(ops)
    calls, _seen = _spy(driver, monkeypatch, True, False)
    backup = _new_backup(volume.id)
    with monkeypatch.context() as m:
        helpers.crash_in(m, backup_flows.CopyToBackupStore)
        with pytest.raises(helpers._Crash):
            helpers.run(ops, backup_flows.CREATE, force=True, backup=backup)
    assert helpers.status_of(volume.id) == VolumeStatus.BACKING_UP
    assert helpers.resume_all(driver, notifier, coordinator) == [
        'TaskFlowException']
    saved = objects.Backup.get_by_id(backup.id)
    assert saved.status == BackupStatus.ERROR
    assert 'restart' in saved.fail_reason
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    assert calls['delete_snapshot'] == 1 and calls['delete_volume'] == 1
    assert objects.Snapshot.get_by_id(
        backup_source.temp_snapshot_id(backup), read_deleted=True).deleted
    assert helpers.journal_rows() == []


def test_restore_refusals_change_nothing(ops, notifier):
    volume = helpers.available_volume(ops)
    backup = _new_backup(volume.id)
    helpers.run(ops, backup_flows.CREATE, backup=backup)
    small = helpers.new_volume(size=1)
    helpers.run_create(ops, small)
    saved = objects.Backup.get_by_id(backup.id)
    saved.size = 2
    saved.save()
    with pytest.raises(exception.InvalidVolume):
        helpers.run(ops, restore_flows.FAMILY, backup=backup.id,
                    volume=small.id)
    assert helpers.status_of(small.id) == VolumeStatus.AVAILABLE
    assert objects.Backup.get_by_id(backup.id).status == \
        BackupStatus.AVAILABLE
    assert notifier.events[-1][0] == 'backup.restore.error'
    # A new volume gets the backup's size.
    target = helpers.new_volume()
    target.size = 0
    helpers.run(ops, restore_flows.FAMILY, backup=backup.id, volume=target)
    assert objects.Volume.get_by_id(target.id).size == 2


@pytest.mark.parametrize('remote, made', [
    (True, {}),
    (False, {'create_volume_from_snapshot': 1, 'delete_volume': 1}),
], ids=['attached', 'through-a-clone'])
def test_a_backup_of_a_snapshot_reads_it_and_leaves_the_volume_alone(
        ops, driver, monkeypatch, remote, made):
    from volume_worker.flows import snapshot as snapshot_flows
    volume = _in_use_volume(ops)
    snap = helpers.new_snapshot(volume.id)
    helpers.run(ops, snapshot_flows.CREATE, force=True, snapshot=snap)
    calls, seen = _spy(driver, monkeypatch, True, remote)
    backup = _new_backup(volume.id)
    backup.snapshot_id = snap.id
    helpers.run(ops, backup_flows.FROM_SNAPSHOT, backup=backup)
    assert dict(calls) == made
    [(temp_snapshot, temp_volume)] = seen
    assert temp_snapshot is None and (temp_volume is None) == remote
    assert objects.Backup.get_by_id(backup.id).status == \
        BackupStatus.AVAILABLE
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    other = helpers.available_volume(ops)
    foreign = _new_backup(other.id)
    foreign.snapshot_id = snap.id
    with pytest.raises(exception.InvalidInput):
        helpers.run(ops, backup_flows.FROM_SNAPSHOT, backup=foreign)


def test_start_up_settles_backups_and_volumes_left_without_a_journal(
        ops, driver, notifier, coordinator):
    from volume_worker import recovery
    volume = helpers.available_volume(ops)
    volume.status = VolumeStatus.BACKING_UP
    volume.save()
    left = {}
    for status in (BackupStatus.CREATING, BackupStatus.RESTORING,
                   BackupStatus.DELETING):
        backup = _new_backup(volume.id)
        backup.host, backup.size, backup.status = volume.host, 1, status
        backup.create()
        left[backup.id] = status
    summary = recovery.recover(helpers.make_ops(driver, notifier,
                                                coordinator), None)
    assert summary['reset'] == 4
    assert helpers.status_of(volume.id) == VolumeStatus.AVAILABLE
    on_restart = objects.fields.BACKUP_TRANSITIONS.on_restart
    for backup_id, status in left.items():
        assert objects.Backup.get_by_id(backup_id).status == \
            on_restart[status]
