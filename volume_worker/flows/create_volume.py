"""Create a volume: create it on the backend and export it.

Begin inserts the volume as ``creating`` (with the operation's journal row);
a volume of an encrypted type gets a key (``keys``; a plain one's flow has no
such task); Finish saves the driver's model updates and ``available``.
Resume rule: an interrupted create resumes (the backend create is checkpointed, the export
is idempotent); a create that was already reverting finishes its revert,
leaving the volume in ``error`` with nothing on the backend.
"""

from oslo_log import log as logging

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import keys
from volume_worker.flows import reschedule
from volume_worker.flows import runner

LOG = logging.getLogger(__name__)


class CreateOnBackend(common.VolumeTask):
    """Create the volume on the backend; revert removes it again."""

    checkpoint = True
    default_provides = 'create_update'

    def execute(self, driver, volume):
        return common.call_driver(driver.create_volume, volume) or {}

    def revert(self, driver, volume, result=None, **kwargs):
        try:
            common.call_driver(driver.delete_volume, volume)
        except Exception:
            LOG.exception('Could not remove volume %s from the backend '
                          'while reverting its create', volume.id)


class CreateExport(common.VolumeTask):
    """Export the new volume (target, CHAP secrets); revert removes the export."""

    idempotent = True
    default_provides = 'export_update'

    def execute(self, context, driver, volume, create_update):
        common.merge_model_update(volume, create_update)
        return common.call_driver(driver.create_export, context, volume,
                                  None) or {}

    def revert(self, context, driver, volume, result=None, **kwargs):
        try:
            common.call_driver(driver.remove_export, context, volume)
        except Exception:
            LOG.exception('Could not remove the export of volume %s while '
                          'reverting its create', volume.id)


def build(encrypted=False):
    """The flow of a create; one of an encrypted type makes its key first."""
    if not encrypted:
        return common.operation_flow(
            'create_volume', reschedule.RescheduleOnFailure(),
            CreateOnBackend(), CreateExport(),
            updates=('create_update', 'export_update'))
    return common.operation_flow(
        'create_volume', reschedule.RescheduleOnFailure(), keys.CreateKey(),
        CreateOnBackend(), CreateExport(),
        updates=('key_update', 'create_update', 'export_update'))


def check(op):
    """A repeated create must ask for the same volume."""
    if op.is_new or op.requested is None:
        return
    if op.requested.size != op.subject.size:
        raise exception.ResourceExists(
            resource='volume', resource_id=op.subject.id,
            reason='with %d GiB, not %d' % (op.subject.size,
                                            op.requested.size))


FAMILY = runner.FlowFamily(
    'create_volume', build, subject=runner.Role('volume', new=True),
    event='volume.create', check=check, on_resume=runner.RESUME,
    variant=lambda op: keys.encryption_of(op.subject) is not None)
