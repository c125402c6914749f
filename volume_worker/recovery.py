"""Start-up recovery: nothing stuck, nothing lost.

First every journaled operation of this backend is resumed or reverted by its
family's rule, under the locks of all the resources it holds. Then any
resource still in a transitional status that no journal row holds (left by
a process that journaled nothing, such as an older release) goes where its
transition table's ``on_restart`` says, so that once start-up completes no
resource is stuck.
"""

from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import flows
from volume_worker import operations

LOG = logging.getLogger(__name__)


def recover(ops, context):
    """Returns {'resumed': n, 'failed': n, 'reset': n, 'unknown': n}."""
    summary = {'resumed': 0, 'failed': 0, 'reset': 0, 'unknown': 0}
    for row in db.journal_get_all(ops.backend):
        family = flows.FAMILIES.get(row['operation'])
        if family is None:
            LOG.error('Journal row %s names unknown operation %s; left for '
                      'an operator', row['id'], row['operation'])
            summary['unknown'] += 1
            continue
        try:
            ops.resume(family, row, context)
            summary['resumed'] += 1
        except exception.NotFound:
            # A resource is gone: the operation had finished.
            db.OperationJournal(row['id']).finish()
            summary['resumed'] += 1
        except Exception as exc:
            LOG.warning('%s %s ended in failure after restart: %s',
                        row['operation'], row['resources'], exc)
            summary['failed'] += 1
    held = {(rtype, rid) for row in db.journal_get_all()
            for _name, rtype, rid in row['resources']}
    for rtype in operations.RESOURCE_TYPES.values():
        summary['reset'] += _reset_stuck(ops.backend, rtype, held)
    return summary


def _reset_stuck(backend, rtype, held):
    on_restart = rtype.transitions.on_restart
    reset = 0
    for resource in rtype.cls.get_all(filters={
            'backend': backend, 'status': list(on_restart)}):
        if (rtype.name, resource.id) in held:
            continue
        old = resource.status
        resource.status = on_restart[old]
        LOG.warning('%s %s was left %s with no journal; now %s', rtype.name,
                    resource.id, old, resource.status)
        if resource.save(expected_status=old):
            reset += 1
    return reset
