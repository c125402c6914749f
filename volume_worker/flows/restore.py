"""Restore a backup onto a volume: an existing one at least as large, or a new one.

The backup is the subject (``restoring`` -> ``available``, failure ->
``error_restoring`` with the reason; it can be restored again). The volume
is held and ``restoring-backup`` meanwhile, then ``available``; a failure
leaves an existing volume ``error_restoring`` (its data is half written)
and removes a volume the restore created. A backup outlives its volume:
restoring one of a deleted volume onto a new volume works. The driver
writes the data (``restore_backup``, generic: attach through os-brick and
let the backup service verify and write every chunk). Resume rule:
revert (a restore is redone by asking again, not at start-up).
"""

from oslo_log import log as logging

from volume_worker import exception
from volume_worker.flows import backup as backup_flows
from volume_worker.flows import common
from volume_worker.flows import held
from volume_worker.flows import runner
from volume_worker import progress

LOG = logging.getLogger(__name__)

GiB = 1 << 30


class CreateTargetVolume(common.VolumeTask):
    """Create the new volume on the backend; revert deletes it again.

    Nothing for an existing volume.
    """

    checkpoint = True
    default_provides = 'create_update'

    def execute(self, op, driver, volume):
        if not held.is_new(op, 'volume'):
            return {}
        update = common.call_driver(driver.create_volume, volume) or {}
        common.merge_model_update(volume, update)
        volume.save()
        return update

    def revert(self, op, driver, volume, result=None, **kwargs):
        if not held.is_new(op, 'volume'):
            return
        try:
            common.call_driver(driver.delete_volume, volume)
        except Exception:
            LOG.exception('Could not remove volume %s from the backend while '
                          'reverting the restore that created it', volume.id)


class WriteBackupOntoVolume(common.VolumeTask):
    """The driver writes the backup onto the volume. No revert: the old data is gone."""

    idempotent = True

    def execute(self, op, context, driver, notifier, backup, volume):
        with progress.ProgressReporter(notifier, 'backup.restore',
                                       backup.notification_payload(),
                                       backup.size * GiB) as reporter:
            service = backup_flows.service_for(
                driver, progress=reporter.advance,
                volume_is_new=held.is_new(op, 'volume'))
            common.call_driver(driver.restore_backup, context, backup,
                               volume, service)


class ExportVolume(common.VolumeTask):
    """Export a new volume as a create does; re-ensure an existing one's export."""

    idempotent = True

    def execute(self, op, context, driver, volume):
        if held.is_new(op, 'volume'):
            update = common.call_driver(driver.create_export, context,
                                        volume, None)
            common.merge_model_update(volume, update)
        elif volume.provider_location:
            common.merge_model_update(volume, common.call_driver(
                driver.ensure_export, context, volume))

    def revert(self, op, context, driver, volume, result=None, **kwargs):
        if held.is_new(op, 'volume'):
            try:
                common.call_driver(driver.remove_export, context, volume)
            except Exception:
                LOG.exception('Could not remove the export of volume %s',
                              volume.id)


def build():
    return common.operation_flow(
        'restore_backup', backup_flows.RecordFailure(),
        held.MoveHeld('volume'), CreateTargetVolume(),
        WriteBackupOntoVolume(), ExportVolume(), held.SettleHeld('volume'))


def check(op):
    """The volume must hold the backup; a new one gets the backup's size."""
    backup, volume = op.subject, op.resources['volume']
    held.remember(op, 'volume')
    if held.is_new(op, 'volume'):
        volume.size = max(volume.size or 0, backup.size)
        return
    if volume.size < backup.size:
        raise exception.InvalidVolume(
            reason='volume %s of %d GiB cannot hold backup %s of %d GiB'
                   % (volume.id, volume.size, backup.id, backup.size))


FAMILY = runner.FlowFamily(
    'restore_backup', build, subject=runner.Role('backup'),
    held=(runner.Role('volume', new=True),), event='backup.restore',
    check=check, on_resume=runner.REVERT)
