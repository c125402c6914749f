"""Snapshots: create one of a volume, delete one (or stop managing it).

Both hold the parent volume (locked, its status checked, unchanged), so a
delete of the volume waits for them and is then refused while snapshots
exist. Resume rules: an interrupted create resumes (the backend snapshot is
checkpointed); an interrupted delete resumes (deleting an absent snapshot
succeeds).
"""

from oslo_log import log as logging

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner

LOG = logging.getLogger(__name__)


class CreateSnapshotOnBackend(common.VolumeTask):
    """Take the snapshot on the backend; revert deletes it again."""

    checkpoint = True
    default_provides = 'snapshot_update'

    def execute(self, driver, snapshot):
        return common.call_driver(driver.create_snapshot, snapshot) or {}

    def revert(self, driver, snapshot, result=None, **kwargs):
        try:
            common.call_driver(driver.delete_snapshot, snapshot)
        except Exception:
            LOG.exception('Could not remove snapshot %s from the backend '
                          'while reverting its create', snapshot.id)


class DeleteSnapshotOnBackend(common.VolumeTask):
    """Delete the backend snapshot, or with ``unmanage_only`` just forget it.

    Cannot be undone: no revert. Deleting an absent snapshot succeeds.
    """

    idempotent = True

    def execute(self, driver, snapshot, unmanage_only):
        if unmanage_only:
            common.call_driver(driver.unmanage_snapshot, snapshot)
        else:
            common.call_driver(driver.delete_snapshot, snapshot)


def build_create():
    return common.operation_flow('create_snapshot', CreateSnapshotOnBackend(),
                                 updates=('snapshot_update',))


def build_delete():
    return common.operation_flow('delete_snapshot', DeleteSnapshotOnBackend())


def check_create(op):
    """A new snapshot lives where its volume does, and records its size."""
    volume, snapshot = op.resources['volume'], op.subject
    if op.is_new:
        snapshot.host = volume.host
        snapshot.volume_size = volume.size
    elif op.requested.volume_id != snapshot.volume_id:
        raise exception.ResourceExists(
            resource='snapshot', resource_id=snapshot.id,
            reason='of volume %s' % snapshot.volume_id)


CREATE = runner.FlowFamily(
    'create_snapshot', build_create,
    subject=runner.Role('snapshot', new=True),
    held=(runner.Role('volume', id_from='snapshot.volume_id'),),
    event='snapshot.create', check=check_create, on_resume=runner.RESUME)

DELETE = runner.FlowFamily(
    'delete_snapshot', build_delete,
    subject=runner.Role('snapshot'),
    held=(runner.Role('volume', id_from='snapshot.volume_id'),),
    event='snapshot.delete', on_resume=runner.RESUME)
