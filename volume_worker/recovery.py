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

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import flows
from volume_worker import objects
from volume_worker import operations

LOG = logging.getLogger(__name__)


def recover(ops, context, running=False, resource_id=None, late=None,
            peers_only=False):
    """Returns {'resumed': n, 'failed': n, 'reset': n, 'unknown': n}.

    The rows taken are this worker's own (left by its previous process)
    and, in a cluster, those of peers whose lease has expired; each is
    claimed under its resources' locks (``Operations.resume``), so of
    several workers recovering at once exactly one resumes it.
    ``peers_only``: only expired rows of peers, and no reset of stuck
    resources (the takeover each lease renewal runs).

    ``running``: the backend serves meanwhile (see above);
    ``resource_id``: only what touches that resource; ``late``: False for
    the first pass at start-up, which leaves the operations of families
    that ``resume_late`` (they need other backends' workers: a migration)
    to the pass with ``late=True``, made once the backend serves (their
    rows keep holding their resources meanwhile, so none is reset); None:
    every family (do_cleanup).
    """
    summary = {'resumed': 0, 'failed': 0, 'reset': 0, 'unknown': 0}
    owner = getattr(ops.runner, 'owner', ops.backend)
    for row in db.journal_claimable(ops.backend, owner):
        if peers_only and row['owner'] == owner:
            continue
        if resource_id is not None and resource_id not in (
                rid for _name, _type, rid in row['resources']):
            continue
        family = flows.FAMILIES.get(row['operation'])
        if family is None:
            if not late:
                LOG.error('Journal row %s names unknown operation %s; left '
                          'for an operator', row['id'], row['operation'])
                summary['unknown'] += 1
            continue
        if late is not None and family.resume_late != late:
            continue
        try:
            if ops.resume(family, row, context,
                          recheck=running) is operations.GONE:
                continue  # it was in flight, and has finished
            summary['resumed'] += 1
        except exception.NotFound:
            # A resource is gone: the operation had finished (its row is
            # dropped by resume).
            summary['resumed'] += 1
        except Exception as exc:
            LOG.warning('%s %s ended in failure after restart: %s',
                        row['operation'], row['resources'], exc)
            summary['failed'] += 1
    if late or peers_only:
        return summary
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


def sync_provider_info(backend, driver):
    """The driver's ``update_provider_info`` on this backend's volumes and
    snapshots, its updates saved; returns (volumes, snapshots) updated.

    Only ``provider_id`` is taken (as Cinder does), and only for resources
    of this backend; a driver that fails here is logged and start-up goes
    on (the ids stay as they were).
    """
    if _reports_nothing(getattr(driver, 'update_provider_info', None)):
        return 0, 0     # spare loading every volume before serving
    volumes = objects.Volume.get_all(filters={'backend': backend})
    snapshots = objects.Snapshot.get_all(filters={'backend': backend})
    try:
        volume_updates, snapshot_updates = concurrency.run_blocking(
            driver.update_provider_info, volumes, snapshots)
    except Exception as exc:
        LOG.error('update_provider_info of %s failed: %s; provider ids '
                  'unchanged', backend, exc)
        return 0, 0
    return (_save_provider_ids(volumes, volume_updates),
            _save_provider_ids(snapshots, snapshot_updates))


def _reports_nothing(method):
    """Whether ``method`` is absent or the contract's default, which
    reports no change (``BaseVD.update_provider_info``, maybe wrapped as
    the fake driver wraps every method)."""
    import inspect
    from drivers import base_vd
    if method is None:
        return True
    function = getattr(method, '__func__', None)   # not set on the object
    return function is not None and inspect.unwrap(function) is \
        base_vd.BaseVD.update_provider_info


def settle_pools(backend, driver, default_pool):
    """Give a pool to this backend's volumes whose host names none.

    A volume recorded as ``host@backend`` (from before pools, or written
    by another tool) is counted in no pool's capacity and no report. As
    Cinder does at start-up, the driver's ``get_pool`` says where it is
    (else the backend's first pool); its host becomes ``host@backend#pool``.
    Returns how many volumes were settled.
    """
    settled = 0
    for volume in objects.Volume.get_all(filters={'host': backend}):
        try:
            pool = concurrency.run_blocking(driver.get_pool, volume)
        except Exception as exc:
            LOG.warning('get_pool of volume %s failed (%s); it goes to the '
                        'pool %s', volume.id, exc, default_pool)
            pool = None
        volume.host = '%s#%s' % (backend, pool or default_pool)
        volume.save()
        settled += 1
    return settled


def _save_provider_ids(resources, updates):
    by_id = {r.id: r for r in resources}
    saved = 0
    for update in updates or ():
        resource = by_id.get((update or {}).get('id'))
        if resource is None or 'provider_id' not in update:
            LOG.warning('update_provider_info returned %r: not a resource '
                        'of this backend with a provider_id; ignored',
                        update)
            continue
        if resource.provider_id != update['provider_id']:
            resource.provider_id = update['provider_id']
            resource.save()
            saved += 1
    return saved
