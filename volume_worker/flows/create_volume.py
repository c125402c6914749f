"""Create a volume: persist it, create it on the backend, export it, mark it available.

Resume rule: an interrupted create resumes from its last checkpoint (the
backend calls are idempotent); a create that was already reverting finishes
its revert, leaving the volume in ``error`` with nothing on the backend.
"""

from oslo_log import log as logging
from taskflow.patterns import linear_flow

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

EVENT = 'volume.create'


class MarkCreating(common.VolumeTask):
    """Save the new volume as ``creating`` (create if absent); announce it.

    Revert leaves the row in ``error`` and sends ``volume.create.error``: the
    caller asked for this volume and must be able to see that it failed.
    """

    @staticmethod
    def _persist(volume):
        volume.status = VolumeStatus.CREATING
        try:
            volume.create()
        except exception.VolumeExists:
            # A retried or resumed create: the row is ours (we hold the lock).
            db.volume_update(volume.id, {'status': VolumeStatus.CREATING})
            volume.obj_reset_changes()

    def execute(self, notifier, volume):
        self._persist(volume)
        notifier.info(EVENT + '.start', volume)

    def revert(self, notifier, volume, result=None, flow_failures=None,
               **kwargs):
        volume.status = VolumeStatus.ERROR
        if not volume.save():
            LOG.warning('Volume %s vanished while its create reverted',
                        volume.id)
        notifier.error(EVENT + '.error', volume,
                       reason=common.first_failure(flow_failures))


class CreateOnBackend(common.VolumeTask):
    """Create the volume on the backend; revert removes it again."""

    checkpoint = True
    default_provides = 'create_update'

    def execute(self, driver, volume):
        return common.call_driver(driver, 'create_volume', volume) or {}

    def revert(self, driver, volume, result=None, **kwargs):
        try:
            common.call_driver(driver, 'delete_volume', volume)
        except Exception:
            LOG.exception('Could not remove volume %s from the backend '
                          'while reverting its create', volume.id)


class CreateExport(common.VolumeTask):
    """Export the new volume (target, CHAP secrets); revert removes the export."""

    default_provides = 'export_update'

    def execute(self, context, driver, volume, create_update):
        common.merge_model_update(volume, create_update)
        return common.call_driver(driver, 'create_export', context, volume,
                                  None) or {}

    def revert(self, context, driver, volume, result=None, **kwargs):
        try:
            common.call_driver(driver, 'remove_export', context, volume)
        except Exception:
            LOG.exception('Could not remove the export of volume %s while '
                          'reverting its create', volume.id)


class MarkAvailable(common.VolumeTask):
    """Save the driver's model updates and ``available`` at once; announce it."""

    def execute(self, notifier, volume, create_update, export_update):
        common.merge_model_update(volume, create_update, export_update)
        volume.status = VolumeStatus.AVAILABLE
        if not volume.save(expected_status=VolumeStatus.CREATING):
            status = db.volume_get(volume.id, read_deleted=True)['status']
            if status == VolumeStatus.AVAILABLE:
                # A run killed after this save, before its journal row went:
                # already done; failing here would revert a good volume.
                volume.obj_reset_changes()
                return
            raise exception.InvalidStatus(
                resource='Volume', resource_id=volume.id, status=status,
                operation='create', expected=VolumeStatus.CREATING)
        notifier.info(EVENT + '.end', volume)


def build():
    return linear_flow.Flow('create_volume').add(
        MarkCreating(),
        CreateOnBackend(),
        CreateExport(),
        MarkAvailable(),
    )


def make_store(volume):
    return {'volume_id': volume.id, 'volume_primitive': volume.obj_to_primitive()}


def load(store, deps):
    return {'volume': objects.Volume.obj_from_primitive(
        store['volume_primitive'])}


FAMILY = runner.FlowFamily('create_volume', 'volume', build, load,
                           on_resume=runner.RESUME)
