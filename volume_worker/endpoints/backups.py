"""RPC endpoints of backups: create (full or incremental), restore, delete, read.

A mixin of ``VolumeManager``: it uses the manager's ``operations``,
``driver``, ``_get``, ``_list`` and ``_place``.
"""

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import backup as backup_flows
from volume_worker.flows import restore as restore_flows
from volume_worker import objects
from volume_worker import validation

BACKUP_FILTERS = ('status', 'volume_id', 'display_name', 'id', 'parent_id')


class BackupEndpoints:

    @validation.endpoint
    def create_backup(self, context, backup, incremental=False, force=False):
        """Back ``backup.volume_id`` up (or its snapshot
        ``backup.snapshot_id``); ``incremental``: on top of its latest
        available backup; ``force``: even while it is in use."""
        validation.check_object(backup, objects.Backup, 'backup')
        validation.check_uuid(backup.id, 'backup id')
        validation.check_uuid(backup.volume_id, 'volume_id')
        validation.check_bool(incremental, 'incremental')
        validation.check_bool(force, 'force')
        validation.check_names(backup)
        # What the worker records itself (a stand-in named by a caller
        # would be read without being held).
        for name, value in (('temp_snapshot_id', None),
                            ('temp_volume_id', None), ('fail_reason', None),
                            ('object_count', 0), ('stored_bytes', 0)):
            setattr(backup, name, value)
        backup.obj_fill_unset()
        family = backup_flows.CREATE
        if backup.snapshot_id:
            validation.check_uuid(backup.snapshot_id, 'snapshot_id')
            if incremental:
                raise exception.InvalidInput(
                    reason='a backup of a snapshot is a full backup')
            family = backup_flows.FROM_SNAPSHOT
        if incremental:
            parent_id = db.backup_latest(backup.volume_id,
                                         objects.BackupStatus.AVAILABLE,
                                         exclude=backup.id)
            if parent_id is None:
                raise exception.InvalidInput(
                    reason='volume %s has no available backup for an '
                           'incremental one to build on' % backup.volume_id)
            backup.parent_id = parent_id
            family = backup_flows.CREATE_INCREMENTAL
        else:
            backup.parent_id = None
        with self.operations.acquire(family, context, force=force,
                                     backup=backup) as op:
            op.run()

    @validation.endpoint
    def restore_backup(self, context, backup_id, volume_id):
        """Write the backup onto volume ``volume_id``; a new volume of the
        backup's size is made with that id when there is none."""
        validation.check_uuid(backup_id, 'backup_id')
        validation.check_uuid(volume_id, 'volume_id')
        volume = objects.Volume(
            id=volume_id, size=0, metadata={},
            display_name='restore of backup %s' % backup_id)
        volume.host = self._place(volume)
        volume.obj_fill_unset()
        with self.operations.acquire(restore_flows.FAMILY, context,
                                     backup=backup_id, volume=volume) as op:
            op.run()

    @validation.endpoint
    def delete_backup(self, context, backup_id):
        validation.check_uuid(backup_id, 'backup_id')
        with self.operations.acquire(backup_flows.DELETE, context,
                                     backup=backup_id) as op:
            op.run()

    @validation.endpoint(read_only=True)
    def get_backup(self, context, backup_id):
        return self._get(objects.Backup, backup_id, 'backup_id')

    @validation.endpoint(read_only=True)
    def list_backups(self, context, filters=None, marker=None, limit=None):
        return self._list(objects.Backup, BACKUP_FILTERS, filters, marker,
                          limit)

    @validation.endpoint(read_only=True)
    def get_backup_device(self, context, backup_id):
        """What the driver would back up: ``{'backup_device': Volume or
        Snapshot, 'is_snapshot': bool, 'secure_enabled': bool}``."""
        backup = self._get(objects.Backup, backup_id, 'backup_id')
        self._driver_ready()
        device, is_snapshot = concurrency.run_blocking(
            self.driver.get_backup_device, context, backup)
        return {'backup_device': device, 'is_snapshot': bool(is_snapshot),
                'secure_enabled': self._secure_file_operations()}

    @validation.endpoint(read_only=True)
    def secure_file_operations_enabled(self, context):
        self._driver_ready()
        return self._secure_file_operations()

    def _secure_file_operations(self):
        return bool(concurrency.run_blocking(
            self.driver.secure_file_operations_enabled))

    def _driver_ready(self):
        if not self.driver.initialized:
            raise exception.DriverNotInitialized(
                backend=self.backend, reason='set-up has not succeeded')
