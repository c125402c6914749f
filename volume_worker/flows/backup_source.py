"""What a backup reads when its volume is in use: a temporary snapshot or clone.

An attached volume keeps changing, and its export belongs to its consumer:
the backup reads a stand-in instead. When the driver says
``backup_use_temp_snapshot()``, a temporary snapshot, attached directly
when ``snapshot_remote_attachable()``, else through a temporary volume
cloned from it; otherwise a temporary clone of the volume. Their ids
derive from the backup's, so a resumed or reverted run finds what an
interrupted one made; both are always removed (``DropStandIn`` at the end,
``TakeStandIn``'s revert after a failure or a crash). They have database
rows, as the driver's ``get_backup_device`` loads what it backs up.
"""

import uuid

from oslo_log import log as logging

from volume_worker import exception
from volume_worker.flows import common
from volume_worker import objects
from volume_worker.objects import fields

LOG = logging.getLogger(__name__)


def temp_snapshot_id(backup):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, 'backup-snapshot:' + backup.id))


def temp_volume_id(backup):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, 'backup-volume:' + backup.id))


def _load(cls, resource_id):
    try:
        return cls.get_by_id(resource_id, read_deleted=True)
    except exception.NotFound:
        return None


def _insert(resource):
    resource.obj_fill_unset()
    try:
        resource.create()
    except exception.ResourceExists:
        pass  # made by the interrupted run


class TakeStandIn(common.VolumeTask):
    """Make the temporary snapshot or clone of an in-use volume.

    Nothing for a volume that was not in use. A backup of a snapshot that
    is not attachable gets a temporary clone of it. Revert removes
    whatever of them exists.
    """

    idempotent = True

    def execute(self, op, context, driver, volume, backup):
        chosen = op.resources.get('snapshot')  # a backup of that snapshot
        clone_from = volume
        if chosen is not None:
            if common.call_driver(driver.snapshot_remote_attachable):
                return
            clone_from = chosen
        elif op.store['held_prior']['volume'] != fields.VolumeStatus.IN_USE:
            return
        elif common.call_driver(driver.backup_use_temp_snapshot):
            snapshot = objects.Snapshot(
                id=temp_snapshot_id(backup), volume_id=volume.id,
                volume_size=volume.size, host=volume.host,
                status=fields.SnapshotStatus.CREATING,
                display_name='temporary snapshot for backup %s' % backup.id)
            _insert(snapshot)
            common.merge_model_update(snapshot, common.call_driver(
                driver.create_snapshot, snapshot))
            snapshot.status = fields.SnapshotStatus.AVAILABLE
            snapshot.save()
            backup.temp_snapshot_id = snapshot.id
            backup.save()
            if common.call_driver(driver.snapshot_remote_attachable):
                return
            clone_from = snapshot
        temp = objects.Volume(
            id=temp_volume_id(backup), size=volume.size, host=volume.host,
            status=fields.VolumeStatus.CREATING,
            display_name='temporary volume for backup %s' % backup.id)
        _insert(temp)
        if clone_from is volume:
            update = common.call_driver(driver.create_cloned_volume, temp,
                                        volume)
        else:
            update = common.call_driver(driver.create_volume_from_snapshot,
                                        temp, clone_from)
        common.merge_model_update(temp, update)
        temp.status = fields.VolumeStatus.AVAILABLE
        temp.save()
        backup.temp_volume_id = temp.id
        backup.save()

    def revert(self, op, driver, backup, **kwargs):
        try:
            drop(driver, backup)
        except Exception:
            LOG.exception('Could not remove the temporary resources of '
                          'backup %s', backup.id)


class DropStandIn(common.VolumeTask):
    """Remove the temporary snapshot and clone, if any. Nothing to undo."""

    idempotent = True

    def execute(self, driver, backup):
        drop(driver, backup)


def drop(driver, backup):
    """Delete the stand-ins of ``backup`` on the backend and in the database."""
    temp = _load(objects.Volume, temp_volume_id(backup))
    if temp is not None and not temp.deleted:
        common.call_driver(driver.delete_volume, temp)
        temp.destroy()
    snapshot = _load(objects.Snapshot, temp_snapshot_id(backup))
    if snapshot is not None and not snapshot.deleted:
        common.call_driver(driver.delete_snapshot, snapshot)
        snapshot.destroy()
    if backup.temp_volume_id or backup.temp_snapshot_id:
        backup.temp_volume_id = None
        backup.temp_snapshot_id = None
        backup.save()
