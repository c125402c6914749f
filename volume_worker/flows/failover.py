"""Replication: fail a backend over to a replication target (or back), freeze and thaw it.

The subject is the backend's service row, whose status is its replication
status: ``failing-over`` -> ``failed-over`` (``enabled`` after a failback
to the primary, ``default``), failure -> ``failover-error``. A failover
freezes the backend first (every change but the consumer's path is refused),
lets operations already running end, calls the driver's ``failover_host``
(``failover`` then ``failover_completed`` in a cluster), records the new
active backend at once (the driver is built with it at every later start),
applies the driver's per-volume updates, puts the volumes that are not
replicated in ``error`` as Cinder does, and thaws the backend unless it was
frozen before. A failed failover leaves it frozen for the operator.

Resume rule: resume. The driver step is checkpointed; a run interrupted
inside it cannot know what the backend did, so it ends ``failover-error``
(the operator may fail over again); one interrupted after it finishes.
"""

import inspect
import time

from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import fields

LOG = logging.getLogger(__name__)

FAILBACK_ID = fields.FAILBACK_ID
# Operations that began before the freeze get this long to end.
DRAIN_SECONDS = 30.0
_NOT_REPLICATED = (None, 'disabled', 'not-capable')


class FreezeBackend(common.VolumeTask):
    """Tell the driver, refuse changes from now on, record the freeze.

    No revert: a failover that fails leaves the backend frozen until the
    operator thaws it or fails it over again.
    """

    idempotent = True

    def execute(self, context, driver, op, service):
        common.call_driver(driver.freeze_backend, context)
        op.set_frozen(True)
        if not service.frozen:
            service.frozen = True
            service.save()


class WaitForOperationsInFlight(common.VolumeTask):
    """Let operations accepted before the freeze end (a bounded wait)."""

    idempotent = True

    def execute(self, op, service):
        hosts = {op.backend}
        if service.cluster_name:  # (the cluster's workers are frozen too)
            hosts.update(s['host'] for s in db.service_get_all(
                {'cluster_name': service.cluster_name}))
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            others = [row['operation'] for row in db.journal_get_all()
                      if row['host'] in hosts and row['id'] != op.id]
            if not others:
                return
            if time.monotonic() > deadline:
                LOG.warning('Failing %s over with operations still running: '
                            '%s', op.backend, ', '.join(others))
                return
            concurrency.sleep(0.1)


class FailoverOnBackend(common.VolumeTask):
    """The driver's failover; the new active backend is recorded at once.

    Cannot be undone (a failover back is another failover). Interrupted
    (the process died inside the driver call), it is not run again: what
    the backend did is unknown, the failover ends ``failover-error``.
    """

    checkpoint = True
    default_provides = 'failover_result'

    def execute(self, context, driver, op, service, secondary_backend_id):
        if op.resumed:
            raise exception.FailoverFailed(
                backend=op.backend, reason='the worker stopped inside the '
                'driver\'s failover; fail over again to be sure of the '
                'backend\'s state')
        volumes = objects.Volume.get_all(filters={'backend': op.backend})
        clustered = bool(driver.cluster_name and
                         hasattr(driver, 'failover') and
                         hasattr(driver, 'failover_completed'))
        method = driver.failover if clustered else driver.failover_host
        result = normalize_result(_call_failover(
            method, context, volumes, secondary_backend_id))
        service.active_backend_id = result['active_backend_id']
        service.save()
        result['clustered'] = clustered
        return result


class ApplyVolumeUpdates(common.VolumeTask):
    """The driver's per-volume updates; volumes not replicated go to error.

    A volume the driver does not mention keeps its data on the primary:
    replicated, it takes the service's new replication status; not
    replicated, it is unusable on the new active backend (``error``,
    ``not-capable``), except on a failback. A volume an earlier failover
    left ``not-capable`` that the driver reports usable on a failback is
    back to ``available`` (``in-use`` if attached). Re-applying converges.
    """

    idempotent = True
    default_provides = 'failover_update'

    def execute(self, op, failover_result, secondary_backend_id):
        failback = secondary_backend_id == FAILBACK_ID
        new_status = fields.failover_outcome(op.store)
        by_id = {u['volume_id']: u['updates']
                 for u in failover_result['volume_updates']}
        counts = {'updated': 0, 'error': 0}
        for volume in objects.Volume.get_all(
                filters={'backend': op.backend}):
            update = dict(by_id.get(volume.id) or {})
            if volume.id not in by_id:
                if volume.replication_status in _NOT_REPLICATED:
                    if failback:
                        continue
                    update = {'status': objects.VolumeStatus.ERROR,
                              'replication_status': 'not-capable'}
            if failback and _usable_again(volume, update):
                update['status'] = (
                    objects.VolumeStatus.IN_USE
                    if db.attachment_others(volume.id, None)
                    else objects.VolumeStatus.AVAILABLE)
            if update.get('status') == objects.VolumeStatus.ERROR:
                update.setdefault('replication_status',
                                  fields.ReplicationStatus.FAILOVER_ERROR)
            elif update.get('replication_status') in (
                    None, fields.ReplicationStatus.FAILED_OVER):
                update['replication_status'] = new_status
            _save_volume(volume, update)
            counts['error' if update.get('status') == 'error'
                   else 'updated'] += 1
        LOG.info('Failover of %s to %s: %d volumes updated, %d in error',
                 op.backend, failover_result['active_backend_id'] or
                 FAILBACK_ID, counts['updated'], counts['error'])
        return {'active_backend_id': failover_result['active_backend_id']}


class CompleteFailover(common.VolumeTask):
    """A clustered driver's ``failover_completed``, here and (by fanout) on
    the cluster's other workers. Telling them is not undone, nor is its
    failure the failover's: they also follow at their next failover."""

    idempotent = True

    def execute(self, context, driver, op, service, failover_result):
        if not failover_result.get('clustered'):
            return
        active = failover_result['active_backend_id']
        common.call_driver(driver.failover_completed, context, active)
        if op.peers is None or not service.cluster_name:
            return
        try:
            op.peers.failover_completed(
                context, service.cluster_name, active,
                fields.failover_outcome(op.store), origin=service.host)
        except Exception as exc:
            LOG.error('The other workers of %s were not told of its '
                      'failover to %s: %s', service.cluster_name,
                      active or FAILBACK_ID, exc)


class ThawAfterFailover(common.VolumeTask):
    """Thaw the backend again, unless it was frozen before the failover."""

    idempotent = True
    default_provides = 'thaw_update'

    def execute(self, context, driver, op, was_frozen):
        if was_frozen:
            return {'frozen': True}
        common.call_driver(driver.thaw_backend, context)
        op.set_frozen(False)
        return {'frozen': False}

    def revert(self, context, driver, op, was_frozen, result=None,
               **kwargs):
        if not was_frozen and result is not None:
            common.call_driver(driver.freeze_backend, context)
            op.set_frozen(True)


def _call_failover(method, context, volumes, secondary_id):
    """The driver's call in the form its signature takes.

    The reference's ``failover_host(context, volumes, secondary_id=None)``
    has no ``groups``; later Cinder passes the replicated groups (none here:
    groups are not replicated).
    """
    kwargs = {'secondary_id': secondary_id}
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        params = ()
    if any(p.name == 'groups' or p.kind is p.VAR_KEYWORD for p in params):
        kwargs['groups'] = []
    return common.call_driver(method, context, volumes, **kwargs)


def normalize_result(result):
    """The driver's answer as {'active_backend_id', 'volume_updates',
    'group_updates'}: the reference returns two values, later Cinder three.
    """
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise exception.FailoverFailed(
            backend='the driver', reason='failover_host returned %r, not '
            '(active_backend_id, volume_updates[, group_updates])'
            % (result,))
    active, volume_updates = result[0], list(result[1] or [])
    group_updates = list(result[2] or []) if len(result) == 3 else []
    for entry in volume_updates:
        if not isinstance(entry, dict) or 'volume_id' not in entry:
            raise exception.FailoverFailed(
                backend='the driver', reason='a volume update lacks '
                'volume_id: %r' % (entry,))
    if group_updates:
        LOG.info('Group updates of the failover ignored (groups are not '
                 'replicated here): %s', group_updates)
    return {'active_backend_id': (None if active in (None, FAILBACK_ID)
                                  else str(active)),
            'volume_updates': [{'volume_id': e['volume_id'],
                                'updates': dict(e.get('updates') or {})}
                               for e in volume_updates]}


def _usable_again(volume, update):
    """Left in error by a failover for not being replicated, and reported
    without error by the driver's failback."""
    return (volume.status == objects.VolumeStatus.ERROR and
            volume.replication_status == 'not-capable' and
            'status' not in update and
            update.get('replication_status') not in (None, 'not-capable'))


def _save_volume(volume, update):
    """Apply one update by compare-and-swap (attachments may run meanwhile)."""
    for _attempt in range(5):
        status = update.get('status')
        if status in objects.VolumeStatus.ALL:
            expected = volume.status
            volume.status = status
        else:
            expected = None
        common.merge_model_update(
            volume, {k: v for k, v in update.items() if k != 'status'})
        if volume.save(expected_status=expected):
            return
        volume.refresh()
    raise exception.FailoverFailed(
        backend=volume.host, reason='volume %s kept changing' % volume.id)


def check_failover(op):
    service, target = op.subject, op.store['secondary_backend_id']
    active = service.active_backend_id or FAILBACK_ID
    # (From the configuration, not the driver's stats: a failover is for
    # when the backend may no longer answer.)
    targets = [device['backend_id'] for device in
               op.backend_option('replication_device') or []
               if device.get('backend_id')]
    if not targets:
        raise exception.InvalidInput(
            reason='backend %s has no replication target (replication_'
                   'device)' % op.backend)
    if target is None:
        # The first target not active (the primary once on every target),
        # chosen here so the outcome and the journal know it.
        spare = [t for t in targets if t != active]
        target = op.store['secondary_backend_id'] = (
            spare[0] if spare else FAILBACK_ID)
    if target not in targets + [FAILBACK_ID]:
        raise exception.InvalidInput(
            reason='%s is not a replication target of %s; its targets: %s'
                   % (target, op.backend, ', '.join(
                       [FAILBACK_ID] + targets)))
    retry = service.status == fields.ReplicationStatus.FAILOVER_ERROR
    if target == active and not retry:
        raise exception.InvalidInput(
            reason='%s is already the active backend of %s'
                   % (target, op.backend))
    op.store['was_frozen'] = bool(service.frozen)


def build_failover():
    return common.operation_flow(
        'failover_host', FreezeBackend(), WaitForOperationsInFlight(),
        FailoverOnBackend(), ApplyVolumeUpdates(), CompleteFailover(),
        ThawAfterFailover(), updates=('failover_update', 'thaw_update'))


class SetFrozen(common.VolumeTask):
    """``freeze_backend`` or ``thaw_backend``; refuse or accept changes."""

    idempotent = True
    default_provides = 'frozen_update'

    def __init__(self, frozen, **kwargs):
        super().__init__(**kwargs)
        self.frozen = frozen

    def execute(self, context, driver, op, service):
        method = driver.freeze_backend if self.frozen else \
            driver.thaw_backend
        common.call_driver(method, context)
        if not self.frozen and service.cluster_name:
            # Every worker of the cluster takes from one queue.
            db.service_thaw_cluster(service.cluster_name)
        op.set_frozen(self.frozen)
        return {'frozen': self.frozen}


def check_thaw(op):
    service = op.subject
    workers = ([service] if not service.cluster_name else
               objects.Service.get_all({'cluster_name': service.cluster_name}))
    for worker in workers:
        if worker.status == fields.ReplicationStatus.FAILING_OVER:
            raise exception.InvalidStatus(
                resource='service', resource_id=worker.host,
                status=worker.status, operation='thaw_host',
                expected='not failing over')


def settle_replication_status(service, report):
    """At start: ``enabled`` or ``disabled`` as the driver reports
    replication, unless the backend is failed over (or failed to)."""
    service.refresh()  # recovery may have ended a failover meanwhile
    status = service.replication_status
    if status in (fields.ReplicationStatus.FAILED_OVER,
                  fields.ReplicationStatus.FAILOVER_ERROR,
                  fields.ReplicationStatus.FAILING_OVER):
        return
    wanted = (fields.ReplicationStatus.ENABLED
              if report.get('replication_enabled')
              else fields.ReplicationStatus.DISABLED)
    if status != wanted:
        service.replication_status = wanted
        service.save()


_SERVICE = runner.Role('service')

FAILOVER = runner.FlowFamily(
    'failover_host', build_failover, subject=_SERVICE,
    event='replication.failover', check=check_failover,
    on_resume=runner.RESUME, while_frozen=True)

FREEZE = runner.FlowFamily(
    'freeze_host', lambda: common.operation_flow(
        'freeze_host', SetFrozen(True), updates=('frozen_update',)),
    subject=_SERVICE, event='replication.freeze', on_resume=runner.RESUME,
    while_frozen=True)

THAW = runner.FlowFamily(
    'thaw_host', lambda: common.operation_flow(
        'thaw_host', SetFrozen(False), updates=('frozen_update',)),
    subject=_SERVICE, event='replication.thaw', check=check_thaw,
    on_resume=runner.RESUME, while_frozen=True)
