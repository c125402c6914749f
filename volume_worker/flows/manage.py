"""Adopt storage that already exists on the backend, and hand a volume to another owner.

``manage_existing`` takes a backend object (a file of the file backend, a
LUN of an array) named by a driver-specific reference as a new volume:
``managing`` -> ``available`` / ``error_managing``; its size is the
object's, rounded up to whole GiB. ``manage_existing_snapshot`` does the
same for a snapshot of a volume. A failed adoption leaves the backend
object where it was. ``accept_transfer`` changes a volume's owner (and its
snapshots', unless ``no_snapshots``). Unmanaging is a delete with
``unmanage_only`` (``flows/delete_volume.py``, ``flows/snapshot.py``).
Resume rule: resume (the adoption is checkpointed; the rest converges).
"""

from oslo_log import log as logging
from taskflow.types import failure as tf_failure

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects

LOG = logging.getLogger(__name__)


class MeasureExisting(common.VolumeTask):
    """Ask the driver the object's size (GiB, rounded up). Reads only."""

    checkpoint = True
    default_provides = 'size_update'

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, driver, op, existing_ref):
        measure = (driver.manage_existing_snapshot_get_size
                   if self.of_snapshot else driver.manage_existing_get_size)
        size = int(common.call_driver(measure, op.subject, existing_ref))
        return {'volume_size' if self.of_snapshot else 'size': size}


class AdoptOnBackend(common.VolumeTask):
    """Make the backend object the volume's (snapshot's).

    Revert gives it up again (``unmanage``): the data is never deleted.
    """

    checkpoint = True
    default_provides = 'manage_update'

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, driver, op, existing_ref, size_update):
        subject = op.subject
        common.merge_model_update(subject, size_update)
        adopt = (driver.manage_existing_snapshot if self.of_snapshot
                 else driver.manage_existing)
        return common.call_driver(adopt, subject, existing_ref) or {}

    def revert(self, driver, op, result=None, **kwargs):
        if isinstance(result, tf_failure.Failure):
            return  # this run's adoption failed: nothing to give back
        release = (driver.unmanage_snapshot if self.of_snapshot
                   else driver.unmanage)
        try:
            common.call_driver(release, op.subject)
        except Exception:
            LOG.exception('Could not give %s back to the backend while '
                          'reverting its adoption', op.subject.id)


def build_volume():
    return common.operation_flow(
        'manage_existing', MeasureExisting(), AdoptOnBackend(),
        updates=('size_update', 'manage_update'))


def build_snapshot():
    return common.operation_flow(
        'manage_existing_snapshot', MeasureExisting(of_snapshot=True),
        AdoptOnBackend(of_snapshot=True),
        updates=('size_update', 'manage_update'))


def check_snapshot(op):
    if op.is_new:
        op.subject.host = op.resources['volume'].host


VOLUME = runner.FlowFamily(
    'manage_existing', build_volume,
    subject=runner.Role('volume', new=True), event='volume.manage_existing',
    on_resume=runner.RESUME)

SNAPSHOT = runner.FlowFamily(
    'manage_existing_snapshot', build_snapshot,
    subject=runner.Role('snapshot', new=True),
    held=(runner.Role('volume', id_from='snapshot.volume_id'),),
    event='snapshot.manage_existing', check=check_snapshot,
    on_resume=runner.RESUME)


class AcceptOnBackend(common.VolumeTask):
    """The driver's part of a transfer (most have nothing to do)."""

    idempotent = True
    default_provides = 'transfer_update'

    def execute(self, context, driver, volume, new_user, new_project):
        update = dict(common.call_driver(
            driver.accept_transfer, context, volume, new_user,
            new_project) or {})
        update.update(user_id=new_user, project_id=new_project)
        return update


class TransferSnapshots(common.VolumeTask):
    """The volume's snapshots change owner with it (unless asked not to)."""

    idempotent = True

    def execute(self, volume, new_user, new_project, no_snapshots):
        if no_snapshots:
            return
        for snapshot in objects.Snapshot.get_all(
                filters={'volume_id': volume.id}):
            snapshot.user_id, snapshot.project_id = new_user, new_project
            snapshot.save()


def build_transfer():
    return common.operation_flow(
        'accept_transfer', AcceptOnBackend(), TransferSnapshots(),
        updates=('transfer_update',))


def check_transfer(op):
    if db.attachment_others(op.subject.id, None):
        raise exception.ResourceInUse(
            resource='volume', resource_id=op.subject.id,
            reason='an attached volume cannot change owner')


TRANSFER = runner.FlowFamily(
    'accept_transfer', build_transfer, subject=runner.Role('volume'),
    event='volume.transfer.accept', check=check_transfer,
    on_resume=runner.RESUME)
