"""Delete a volume: mark it deleting, remove its export and backend object, drop the row.

Resume rule: an interrupted delete resumes (deleting on the backend is
idempotent: an absent volume is already deleted).
"""

from oslo_log import log as logging
from taskflow.patterns import linear_flow

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

EVENT = 'volume.delete'

DELETABLE = (VolumeStatus.AVAILABLE, VolumeStatus.ERROR,
             VolumeStatus.ERROR_DELETING, VolumeStatus.ERROR_EXTENDING,
             VolumeStatus.DELETING, VolumeStatus.CREATING)


class MarkDeleting(common.VolumeTask):
    """Move the volume to ``deleting`` and announce it.

    Revert leaves it ``error_deleting`` and sends ``volume.delete.error``.
    """

    def execute(self, notifier, volume):
        if volume.status not in DELETABLE:
            raise exception.InvalidStatus(
                resource='Volume', resource_id=volume.id,
                status=volume.status, operation='delete',
                expected=', '.join(DELETABLE))
        volume.status = VolumeStatus.DELETING
        if not volume.save(expected_status=DELETABLE):
            raise exception.InvalidStatus(
                resource='Volume', resource_id=volume.id, status='changed',
                operation='delete', expected=', '.join(DELETABLE))
        notifier.info(EVENT + '.start', volume)

    def revert(self, notifier, volume, result=None, flow_failures=None,
               **kwargs):
        if volume.status == VolumeStatus.DELETING:
            volume.status = VolumeStatus.ERROR_DELETING
            volume.save()
        # else it never moved: the failure was that it could not be deleted
        notifier.error(EVENT + '.error', volume,
                       reason=common.first_failure(flow_failures))


class RemoveExport(common.VolumeTask):
    """Tear the volume's export down. Cannot be undone: no revert."""

    def execute(self, context, driver, volume):
        common.call_driver(driver, 'remove_export', context, volume)


class DeleteOnBackend(common.VolumeTask):
    """Delete the backend object. Cannot be undone: no revert.

    No checkpoint: deleting an absent volume succeeds, so a resumed delete
    simply runs this again.
    """

    def execute(self, driver, volume):
        common.call_driver(driver, 'delete_volume', volume)


class DestroyRecord(common.VolumeTask):
    """Remove the volume from every reader's view (soft delete); announce it."""

    def execute(self, notifier, volume):
        volume.destroy()
        notifier.info(EVENT + '.end', volume)


def build():
    return linear_flow.Flow('delete_volume').add(
        MarkDeleting(),
        RemoveExport(),
        DeleteOnBackend(),
        DestroyRecord(),
    )


def make_store(volume):
    return {'volume_id': volume.id}


def load(store, deps):
    return {'volume': objects.Volume.get_by_id(store['volume_id'])}


FAMILY = runner.FlowFamily('delete_volume', 'volume', build, load,
                           on_resume=runner.RESUME)
