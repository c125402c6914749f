"""Backups: copy a volume into the backup store (full or incremental), delete a backup.

The backup is the subject (``creating`` -> ``available`` / ``error``); the
volume is held and ``backing-up`` meanwhile, then back to where it was
(flows/held.py). An incremental backup also holds its parent, whose chunks
it shares. The driver moves the data (``backup_volume``, generic: attach
through os-brick and hand the device to the backup service); an in-use
volume (``force``) is read from a temporary snapshot or clone (flows/
backup_source.py), always removed again. A backup of one of the volume's
snapshots (``snapshot_id``) reads the snapshot, held, and leaves the
volume alone. Resume rules: an interrupted
backup is reverted (its partial chunks removed, the backup ``error`` with
the reason); an interrupted delete resumes (removing absent files
succeeds).
"""

from oslo_config import cfg
from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import backup_source
from volume_worker.flows import common
from volume_worker.flows import held
from volume_worker.flows import runner
from volume_worker import progress
from volume_worker.backups import posix

LOG = logging.getLogger(__name__)

GiB = 1 << 30


def service_for(driver, conf=None, **kwargs):
    """The backup service of one operation, from ``[backup]``."""
    from drivers import generic
    from volume_worker import opts
    conf = conf or cfg.CONF
    opts.register_backup_opts(conf)
    section = conf.backup
    return posix.PosixBackupService(
        section.posix_path, chunk_size=section.chunk_size_mb << 20,
        compression=(None if section.compression == 'auto'
                     else section.compression),
        workers=section.workers, throttle=generic.throttle_of(driver),
        **kwargs)


class RecordFailure(common.VolumeTask):
    """Forget an earlier failure's reason; on revert, note this one's.

    The subject's ``fail_reason`` is written with its next status change
    (Finish, or Begin's revert, which runs right after this revert).
    """

    idempotent = True

    def execute(self, op):
        if op.subject.fail_reason:
            op.subject.fail_reason = None

    def revert(self, op, flow_failures=None, **kwargs):
        reason = common.first_failure(flow_failures) or 'unknown failure'
        op.subject.fail_reason = reason[:1000]


class CopyToBackupStore(common.VolumeTask):
    """Read the volume (or its stand-in) into the store; revert removes what was stored."""

    checkpoint = True
    default_provides = 'backup_update'

    def execute(self, op, context, driver, notifier, backup):
        total = backup.size * GiB
        with progress.ProgressReporter(notifier, 'backup.create',
                                       backup.notification_payload(),
                                       total) as reporter:
            service = service_for(driver, progress=reporter.advance)
            common.call_driver(driver.backup_volume, context, backup,
                               service)
        return dict(service.result or {})

    def revert(self, driver, backup, result=None, **kwargs):
        try:
            common.call_driver(service_for(driver).delete, backup)
        except Exception:
            LOG.exception('Could not remove the partial backup %s from the '
                          'store', backup.id)


class DeleteFromBackupStore(common.VolumeTask):
    """Remove the backup's files. Cannot be undone: no revert."""

    idempotent = True

    def execute(self, driver, backup):
        common.call_driver(service_for(driver).delete, backup)


def _build_create(name):
    def build():
        return common.operation_flow(
            name, RecordFailure(), held.MoveHeld('volume'),
            backup_source.TakeStandIn(), CopyToBackupStore(),
            backup_source.DropStandIn(), held.SettleHeld('volume'),
            updates=('backup_update',))
    return build


def build_from_snapshot():
    return common.operation_flow(
        'create_backup_from_snapshot', RecordFailure(),
        backup_source.TakeStandIn(), CopyToBackupStore(),
        backup_source.DropStandIn(), updates=('backup_update',))


def build_delete():
    return common.operation_flow('delete_backup', RecordFailure(),
                                 DeleteFromBackupStore())


def check_create(op):
    """A new backup lives where its volume does and records its size."""
    volume, backup = op.resources['volume'], op.subject
    if op.is_new:
        backup.host = volume.host
        backup.size = volume.size
        backup.container = posix.PosixBackupService.container_of(backup)
    elif any(getattr(op.requested, name) != getattr(backup, name)
             for name in ('volume_id', 'parent_id', 'snapshot_id')):
        raise exception.ResourceExists(
            resource='backup', resource_id=backup.id,
            reason='of volume %s (snapshot %s, parent %s)'
            % (backup.volume_id, backup.snapshot_id, backup.parent_id))
    snapshot = op.resources.get('snapshot')
    if snapshot is not None and snapshot.volume_id != volume.id:
        raise exception.InvalidInput(
            reason='snapshot %s is of volume %s, not %s'
            % (snapshot.id, snapshot.volume_id, volume.id))
    parent = op.resources.get('parent')
    if parent is not None and parent.volume_id != volume.id:
        raise exception.InvalidInput(
            reason='backup %s is of volume %s, not %s: no parent for an '
                   'incremental backup' % (parent.id, parent.volume_id,
                                           volume.id))
    if snapshot is None:
        held.remember(op, 'volume')


def check_delete(op):
    children = db.backup_children(op.subject.id)
    if children:
        raise exception.ResourceInUse(
            resource='backup', resource_id=op.subject.id,
            reason='incremental backups depend on it (%s); delete them '
                   'first' % ', '.join(sorted(children)))


CREATE = runner.FlowFamily(
    'create_backup', _build_create('create_backup'),
    subject=runner.Role('backup', new=True),
    held=(runner.Role('volume', id_from='backup.volume_id'),),
    event='backup.create', check=check_create, on_resume=runner.REVERT)

CREATE_INCREMENTAL = runner.FlowFamily(
    'create_incremental_backup', _build_create('create_incremental_backup'),
    subject=runner.Role('backup', new=True),
    held=(runner.Role('volume', id_from='backup.volume_id'),
          runner.Role('backup', name='parent', id_from='backup.parent_id')),
    event='backup.create', check=check_create, on_resume=runner.REVERT)

# The backup of one of the volume's snapshots: the snapshot is read (held,
# available), the volume, in use or not, is only held.
FROM_SNAPSHOT = runner.FlowFamily(
    'create_backup_from_snapshot', build_from_snapshot,
    subject=runner.Role('backup', new=True),
    held=(runner.Role('volume', id_from='backup.volume_id'),
          runner.Role('snapshot', id_from='backup.snapshot_id')),
    event='backup.create', check=check_create, on_resume=runner.REVERT)

DELETE = runner.FlowFamily(
    'delete_backup', build_delete, subject=runner.Role('backup'),
    event='backup.delete', check=check_delete, on_resume=runner.RESUME)
