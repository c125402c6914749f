"""Start-up recovery: nothing stuck, nothing lost.

First every journaled operation of this backend is resumed or reverted by its
family's rule, under the locks of all the resources it holds. Then any
resource still in a transitional status that no journal row holds (left by
a process that journaled nothing, such as an older release) goes where its
transition table's ``on_restart`` says, so that once start-up completes no
resource is stuck.

``do_cleanup`` runs the same recovery on request while the backend serves
(``running=True``): a journal row is then resumed only if it still exists
once its resources' locks are held (an operation in flight holds them, and
its row goes with its last write before it lets them go), and a resource is
reset only if, under its lock, it is still in that status with no row
holding it.
"""

from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import flows
from volume_worker import operations

LOG = logging.getLogger(__name__)


def recover(ops, context, running=False, resource_id=None):
    """Returns {'resumed': n, 'failed': n, 'reset': n, 'unknown': n}.

    ``running``: the backend serves meanwhile (see above);
    ``resource_id``: only what touches that resource.
    """
    summary = {'resumed': 0, 'failed': 0, 'reset': 0, 'unknown': 0}
    for row in db.journal_get_all(ops.backend):
        if resource_id is not None and resource_id not in (
                rid for _name, _type, rid in row['resources']):
            continue
        family = flows.FAMILIES.get(row['operation'])
        if family is None:
            LOG.error('Journal row %s names unknown operation %s; left for '
                      'an operator', row['id'], row['operation'])
            summary['unknown'] += 1
            continue
        try:
            if ops.resume(family, row, context,
                          recheck=running) is operations.GONE:
                continue  # it was in flight, and has finished
            summary['resumed'] += 1
        except exception.NotFound:
            # A resource is gone: the operation had finished.
            db.OperationJournal(row['id']).finish()
            summary['resumed'] += 1
        except Exception as exc:
            LOG.warning('%s %s ended in failure after restart: %s',
                        row['operation'], row['resources'], exc)
            summary['failed'] += 1
    held = _held()
    for rtype in operations.RESOURCE_TYPES.values():
        summary['reset'] += _reset_stuck(ops, rtype, held, running,
                                         resource_id)
    return summary


def _held():
    return {(rtype, rid) for row in db.journal_get_all()
            for _name, rtype, rid in row['resources']}


def _reset_stuck(ops, rtype, held, running=False, resource_id=None):
    on_restart = rtype.transitions.on_restart
    reset = 0
    for resource in rtype.cls.get_all(filters={
            'backend': ops.backend, 'status': list(on_restart)}):
        if (rtype.name, resource.id) in held:
            continue
        if resource_id is not None and resource.id != resource_id:
            continue
        if running:
            reset += _reset_if_still_stuck(ops, rtype, resource.id)
            continue
        old = resource.status
        resource.status = on_restart[old]
        LOG.warning('%s %s was left %s with no journal; now %s', rtype.name,
                    resource.id, old, resource.status)
        if resource.save(expected_status=old):
            reset += 1
    return reset


def _reset_if_still_stuck(ops, rtype, resource_id):
    """The reset of one resource while the backend serves, under its lock."""
    with ops.coordinator.lock(operations.lock_name(rtype.name, resource_id)):
        try:
            resource = rtype.load(resource_id)
        except exception.NotFound:
            return 0
        old = resource.status
        on_restart = rtype.transitions.on_restart
        if (resource.deleted or old not in on_restart or
                (rtype.name, resource_id) in _held()):
            return 0  # an operation took it meanwhile, or finished it
        resource.status = on_restart[old]
        LOG.warning('%s %s was left %s with no journal; now %s', rtype.name,
                    resource_id, old, resource.status)
        return 1 if resource.save(expected_status=old) else 0
