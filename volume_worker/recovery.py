"""Start-up recovery: nothing stuck, nothing lost.

First every journaled operation of this backend is resumed or reverted by its
family's rule. Then any volume still in a transitional status (left by a
process that journaled nothing, such as an older release) is moved to the
matching error status, so that once start-up completes no volume is stuck.
"""

from oslo_log import log as logging

from volume_worker import coordination
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import flows
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

# Where a volume goes when nothing journaled the operation that left it.
STUCK_TO = {
    VolumeStatus.CREATING: VolumeStatus.ERROR,
    VolumeStatus.DELETING: VolumeStatus.ERROR_DELETING,
    VolumeStatus.EXTENDING: VolumeStatus.ERROR_EXTENDING,
    VolumeStatus.ATTACHING: VolumeStatus.AVAILABLE,
    VolumeStatus.DETACHING: VolumeStatus.IN_USE,
    VolumeStatus.MAINTENANCE: VolumeStatus.ERROR,
}


def recover(manager, context):
    """Returns {'resumed': n, 'failed': n, 'reset': n}."""
    summary = {'resumed': 0, 'failed': 0, 'reset': 0}
    for row in db.journal_get_all(manager.backend):
        family = flows.FAMILIES.get(row['operation'])
        if family is None:
            LOG.error('Journal row %s names unknown operation %s; left for '
                      'an operator', row['id'], row['operation'])
            continue
        lock = coordination.volume_lock_name(row['resource_id'])
        with manager.coordinator.lock(lock):
            try:
                manager.runner.resume(family, row, manager._deps(context))
                summary['resumed'] += 1
            except exception.NotFound:
                # The resource is gone: the operation had finished.
                db.journal_finish(row['resource_type'], row['resource_id'])
                summary['resumed'] += 1
            except Exception as exc:
                LOG.warning('%s of %s %s ended in failure after restart: %s',
                            row['operation'], row['resource_type'],
                            row['resource_id'], exc)
                summary['failed'] += 1
    for volume in objects.Volume.get_all(filters={
            'backend': manager.backend,
            'status': list(STUCK_TO)}):
        if db.journal_get('volume', volume.id) is not None:
            continue
        target = STUCK_TO[volume.status]
        LOG.warning('Volume %s was left %s with no journal; now %s',
                    volume.id, volume.status, target)
        old = volume.status
        volume.status = target
        if volume.save(expected_status=old):
            summary['reset'] += 1
    return summary
