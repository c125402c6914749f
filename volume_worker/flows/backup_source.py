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
``make_snapshot``, ``make_volume`` and ``drop_ids`` serve an upload of an
in-use volume to an image the same way (flows/image.py).
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


def make_snapshot(driver, volume, snapshot_id, purpose):
    """A temporary snapshot of ``volume`` (found again when it exists)."""
    snapshot = objects.Snapshot(
        id=snapshot_id, volume_id=volume.id, volume_size=volume.size,
        host=volume.host, status=fields.SnapshotStatus.CREATING,
        display_name='temporary snapshot for %s' % purpose)
    _insert(snapshot)
    common.merge_model_update(snapshot, common.call_driver(
        driver.create_snapshot, snapshot))
    snapshot.status = fields.SnapshotStatus.AVAILABLE
    snapshot.save()
    return snapshot


def make_volume(driver, volume, clone_from, volume_id, purpose):
    """A temporary volume holding the data of ``clone_from`` (``volume``
    itself, or a snapshot)."""
    temp = objects.Volume(
        id=volume_id, size=volume.size, host=volume.host,
        status=fields.VolumeStatus.CREATING,
        display_name='temporary volume for %s' % purpose)
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
    return temp


def drop_ids(driver, volume_id, snapshot_id):
    """Delete a temporary volume and snapshot by id, on the backend and in
    the database; absent ones are gone already."""
    temp = _load(objects.Volume, volume_id)
    if temp is not None and not temp.deleted:
        common.call_driver(driver.delete_volume, temp)
        temp.destroy()
    snapshot = _load(objects.Snapshot, snapshot_id)
    if snapshot is not None and not snapshot.deleted:
        common.call_driver(driver.delete_snapshot, snapshot)
        snapshot.destroy()


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
        purpose = 'backup %s' % backup.id
        if chosen is not None:
            if common.call_driver(driver.snapshot_remote_attachable):
                return
            clone_from = chosen
        elif op.store['held_prior']['volume'] != fields.VolumeStatus.IN_USE:
            return
        elif common.call_driver(driver.backup_use_temp_snapshot):
            snapshot = make_snapshot(driver, volume,
                                     temp_snapshot_id(backup), purpose)
            backup.temp_snapshot_id = snapshot.id
            backup.save()
            if common.call_driver(driver.snapshot_remote_attachable):
                return
            clone_from = snapshot
        temp = make_volume(driver, volume, clone_from,
                           temp_volume_id(backup), purpose)
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
    drop_ids(driver, temp_volume_id(backup), temp_snapshot_id(backup))
    if backup.temp_volume_id or backup.temp_snapshot_id:
        backup.temp_volume_id = None
        backup.temp_snapshot_id = None
        backup.save()
