"""Failover, failback, freeze and thaw on real flows (fake driver, SQLite)."""

import pytest

from drivers import fake
from volume_worker.db import api as db
from volume_worker.endpoints import replication as failover_endpoints
from volume_worker import exception
from volume_worker.flows import failover
from volume_worker import objects
from volume_worker.objects import fields

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401

HOST = helpers.HOST
_R = fields.ReplicationStatus


def _replicated(driver, *targets):
    driver.configuration.conf.set_override(
        'replication_device', [{'backend_id': t} for t in targets],
        group='fake1')
    driver.get_volume_stats(refresh=True)


@pytest.fixture
def service(database):
    svc = objects.Service.get_or_create(HOST, 'volume-worker')
    failover.settle_replication_status(svc, {'replication_enabled': True})
    return svc


@pytest.fixture
def ops(database, driver, notifier, coordinator, service):
    _replicated(driver, 'site2', 'site3')
    return helpers.make_ops(driver, notifier, coordinator)


def _failover(ops, service, target):
    return helpers.run(ops, failover.FAILOVER, service=service.id,
                       store={'secondary_backend_id': target})


def _fresh(service):
    return objects.Service.get_by_id(service.id)


class ReferenceFormDriver(fake.FakeDriver):
    """failover_host exactly as the reference text writes it: no groups,
    two values, updates for the replicated volumes only."""

    def failover_host(self, context, volumes, secondary_id=None):
        self._active_backend_id = secondary_id
        return secondary_id, [
            {'volume_id': v.id, 'updates': {'provider_location': 'site:%s'
                                            % secondary_id}}
            for v in volumes if v.replication_status == 'enabled']


def test_failover_then_failback_records_the_active_backend(
        ops, driver, notifier, service):
    volume = helpers.available_volume(ops)
    _failover(ops, service, 'site2')
    svc = _fresh(service)
    assert (svc.replication_status, svc.active_backend_id, svc.frozen) == (
        _R.FAILED_OVER, 'site2', False)
    assert driver.active_backend_id == 'site2' and not driver.frozen
    assert not ops.frozen
    got = objects.Volume.get_by_id(volume.id)
    assert (got.status, got.replication_status) == ('available',
                                                    'failed-over')
    assert ('replication.failover.end', _R.FAILED_OVER) in notifier.events
    # To the other target, then back to the primary.
    _failover(ops, service, 'site3')
    assert _fresh(service).active_backend_id == 'site3'
    _failover(ops, service, 'default')
    svc = _fresh(service)
    assert (svc.replication_status, svc.active_backend_id) == (
        _R.ENABLED, None)
    assert helpers.journal_rows() == []


def test_reference_form_driver_and_non_replicated_volumes_go_to_error(
        database, notifier, coordinator, service, monkeypatch):
    drv = helpers.make_driver()
    drv.__class__ = ReferenceFormDriver
    _replicated(drv, 'site2')
    ops = helpers.make_ops(drv, notifier, coordinator)
    plain = helpers.available_volume(ops)
    replicated = helpers.available_volume(ops)
    db.volume_update(replicated.id, {'replication_status': 'enabled'})
    _failover(ops, service, 'site2')
    got = objects.Volume.get_by_id(plain.id)
    assert (got.status, got.replication_status) == ('error', 'not-capable')
    got = objects.Volume.get_by_id(replicated.id)
    assert (got.status, got.replication_status, got.provider_location) == (
        'available', 'failed-over', 'site:site2')
    # A failback the driver says nothing of leaves them as they are.
    _failover(ops, service, 'default')
    assert objects.Volume.get_by_id(plain.id).status == 'error'
    assert objects.Volume.get_by_id(replicated.id).replication_status == \
        'enabled'


def test_failback_gives_back_volumes_that_never_left_the_primary(
        ops, driver, service, monkeypatch):
    plain, attached = (helpers.available_volume(ops) for _ in range(2))
    helpers.attach(ops, attached.id)
    not_replicated = {'status': 'error', 'replication_status': 'not-capable'}

    def failover_host(context, volumes, secondary_id=None, groups=None):
        updates = (not_replicated if secondary_id != 'default'
                   else {'replication_status': 'disabled'})
        return secondary_id, [{'volume_id': v.id, 'updates': dict(updates)}
                              for v in volumes], []
    monkeypatch.setattr(driver, 'failover_host', failover_host)
    _failover(ops, service, 'site2')
    for volume in (plain, attached):
        got = objects.Volume.get_by_id(volume.id)
        assert (got.status, got.replication_status) == ('error',
                                                        'not-capable')
    _failover(ops, service, 'default')
    got = objects.Volume.get_by_id(plain.id)
    assert (got.status, got.replication_status) == ('available', 'disabled')
    assert objects.Volume.get_by_id(attached.id).status == 'in-use'


@pytest.mark.parametrize('target, reason', [
    ('nowhere', 'not a replication target'),
    ('default', 'already the active backend'),
])
def test_bad_targets_are_refused_before_anything_changes(
        ops, notifier, service, target, reason):
    with pytest.raises(exception.InvalidInput, match=reason):
        _failover(ops, service, target)
    svc = _fresh(service)
    assert (svc.replication_status, svc.frozen) == (_R.ENABLED, False)
    assert notifier.events[-1][:2] == ('replication.failover.error',
                                       'refused')


def test_without_replication_targets_failover_is_refused(
        database, driver, notifier, coordinator):
    svc = objects.Service.get_or_create(HOST, 'volume-worker')
    failover.settle_replication_status(svc, driver.get_volume_stats())
    assert _fresh(svc).replication_status == _R.DISABLED
    ops = helpers.make_ops(driver, notifier, coordinator)
    with pytest.raises(exception.InvalidStatus, match='disabled'):
        _failover(ops, svc, 'site2')


def test_freeze_refuses_changes_but_not_reads_or_attachments(
        ops, service):
    volume = helpers.available_volume(ops)
    helpers.run(ops, failover.FREEZE, service=service.id)
    assert ops.frozen and _fresh(service).frozen
    with pytest.raises(exception.BackendFrozen, match='frozen'):
        helpers.run_create(ops, helpers.new_volume())
    with pytest.raises(exception.BackendFrozen):
        helpers.run_delete(ops, volume.id)
    helpers.attach(ops, volume.id)  # the consumer's path still works
    helpers.run(ops, failover.THAW, service=service.id)
    assert not ops.frozen and not _fresh(service).frozen
    helpers.run_create(ops, helpers.new_volume())


def test_a_failover_keeps_a_backend_frozen_before_it_frozen(ops, service):
    helpers.run(ops, failover.FREEZE, service=service.id)
    _failover(ops, service, 'site2')
    assert _fresh(service).frozen and ops.frozen


def test_driver_failure_ends_failover_error_and_frozen(
        ops, driver, notifier, service, monkeypatch):
    def broken(*args, **kwargs):
        raise fake.exception.UnableToFailOver(reason='array unreachable')
    monkeypatch.setattr(driver, 'failover_host', broken)
    with pytest.raises(Exception, match='array unreachable'):
        _failover(ops, service, 'site2')
    svc = _fresh(service)
    assert (svc.replication_status, svc.frozen, svc.active_backend_id) == (
        _R.FAILOVER_ERROR, True, None)
    assert ops.frozen
    assert notifier.events[-1] == ('replication.failover.error',
                                   _R.FAILOVER_ERROR)
    # The operator may try again, to the same target.
    monkeypatch.undo()
    _failover(ops, service, 'site2')
    assert _fresh(service).replication_status == _R.FAILED_OVER


def test_crash_inside_the_driver_step_ends_failover_error_on_restart(
        ops, driver, notifier, coordinator, service, monkeypatch):
    helpers.crash_in(monkeypatch, failover.FailoverOnBackend)
    with pytest.raises(helpers._Crash):
        _failover(ops, service, 'site2')
    assert _fresh(service).replication_status == _R.FAILING_OVER
    monkeypatch.undo()
    assert helpers.resume_all(driver, notifier, coordinator) == [
        'FailoverFailed']
    svc = _fresh(service)
    assert (svc.replication_status, svc.frozen) == (_R.FAILOVER_ERROR, True)
    assert helpers.journal_rows() == []


def test_crash_after_the_driver_step_finishes_on_restart(
        ops, driver, notifier, coordinator, service, monkeypatch):
    helpers.crash_in(monkeypatch, failover.ApplyVolumeUpdates)
    with pytest.raises(helpers._Crash):
        _failover(ops, service, 'site2')
    # Recorded at once: a restarted worker builds its driver with it.
    assert _fresh(service).active_backend_id == 'site2'
    monkeypatch.undo()
    assert helpers.resume_all(driver, notifier, coordinator) == ['done']
    svc = _fresh(service)
    assert (svc.replication_status, svc.frozen) == (_R.FAILED_OVER, False)


def test_clustered_driver_uses_failover_and_failover_completed(
        ops, driver, service, monkeypatch):
    calls = []
    driver.cluster_name = 'cluster@fake1'
    monkeypatch.setattr(driver, 'failover', lambda ctx, volumes,
                        secondary_id=None, groups=None: calls.append(
                            ('failover', secondary_id)) or (
                            secondary_id, [], []), raising=False)
    monkeypatch.setattr(driver, 'failover_completed', lambda ctx, active:
                        calls.append(('completed', active)), raising=False)
    result = _failover(ops, service, 'site3')
    assert calls == [('failover', 'site3'), ('completed', 'site3')]
    assert result['failover_result']['clustered'] is True


def test_malformed_driver_answers_fail_clearly():
    with pytest.raises(exception.FailoverFailed, match='not'):
        failover.normalize_result('site2')
    with pytest.raises(exception.FailoverFailed, match='volume_id'):
        failover.normalize_result(('site2', [{'updates': {}}]))
    assert failover.normalize_result(('default', [], []))[
        'active_backend_id'] is None


class _Endpoints(failover_endpoints.ReplicationEndpoints):
    """The replication endpoints on a backend of a cluster."""

    def __init__(self, ops, driver, peers):
        self.backend = self.member = HOST
        self.operations = ops
        self.driver = driver
        ops.peers = peers


class _Peers:
    def __init__(self):
        self.sent = []

    def failover_completed(self, context, *args, **kwargs):
        self.sent.append((args, kwargs))


def test_cluster_failover_tells_the_peers_which_follow(
        ops, driver, service, monkeypatch):
    db.service_update(service.id, {'cluster_name': 'cl@fake1'})
    followed = []
    driver.cluster_name = 'cl@fake1'
    monkeypatch.setattr(driver, 'failover', lambda ctx, volumes,
                        secondary_id=None, groups=None: (
                            secondary_id, [], []), raising=False)
    monkeypatch.setattr(driver, 'failover_completed', lambda ctx, active:
                        followed.append(active), raising=False)
    peers = _Peers()
    endpoints = _Endpoints(ops, driver, peers)
    endpoints.failover_host(None, secondary_backend_id='site2')
    assert peers.sent == [(('cl@fake1', 'site2', _R.FAILED_OVER),
                           {'origin': HOST})]
    # The fanout reaches the sender too, and workers of other clusters.
    endpoints.failover_completed(None, cluster_name='cl@fake1',
                                 active_backend_id='site2',
                                 replication_status='failed-over',
                                 origin=HOST)
    endpoints.failover_completed(None, cluster_name='other@fake1',
                                 active_backend_id='site3',
                                 replication_status='failed-over',
                                 origin='peer@fake1')
    assert followed == ['site2']
    # A peer's failover: this worker follows it.
    endpoints.failover_completed(None, cluster_name='cl@fake1',
                                 active_backend_id='site3',
                                 replication_status='failed-over',
                                 origin='peer@fake1')
    assert followed == ['site2', 'site3']
    assert _fresh(service).active_backend_id == 'site3'


def test_failover_waits_for_operations_already_running(
        database, notifier, coordinator, service):
    import threading
    drv = helpers.make_driver(fake_fault_delay={'create_volume': '1'})
    _replicated(drv, 'site2')
    ops = helpers.make_ops(drv, notifier, coordinator)
    volume = helpers.new_volume()
    create = threading.Thread(target=helpers.run_create, args=(ops, volume))
    create.start()
    try:
        from volume_worker.testing import state
        state.wait_until(helpers.journal_rows, 10, 'the create running')
        _failover(ops, service, 'site2')
    finally:
        create.join()
    got = objects.Volume.get_by_id(volume.id)
    assert (got.status, got.replication_status) == ('available',
                                                    'failed-over')


def test_one_frozen_worker_freezes_its_cluster_and_a_thaw_thaws_all(
        database, notifier, coordinator, monkeypatch):
    from volume_worker import operations
    monkeypatch.setattr(operations, 'CLUSTER_FROZEN_TTL', 0)
    workers = []
    for host in (HOST, 'other@fake1'):
        svc = objects.Service.get_or_create(host, 'volume-worker',
                                            cluster_name='cl@fake1')
        drv = helpers.make_driver()
        drv.cluster_name = 'cl@fake1'
        ops = helpers.make_ops(drv, notifier, coordinator)
        ops.backend = host
        workers.append((svc, ops))
    (svc_a, ops_a), (svc_b, ops_b) = workers
    helpers.run(ops_a, failover.FREEZE, service=svc_a.id)
    with pytest.raises(exception.BackendFrozen):
        helpers.run_create(ops_b, helpers.new_volume())
    helpers.run(ops_b, failover.THAW, service=svc_b.id)
    assert not _fresh(svc_a).frozen
    assert not ops_a.is_frozen() and not ops_b.is_frozen()


def test_a_service_left_failing_over_without_a_journal_is_reset(
        ops, service):
    from volume_worker import recovery
    db.service_update(service.id, {'replication_status': _R.FAILING_OVER})
    summary = recovery.recover(ops, None)
    assert summary['reset'] == 1
    assert _fresh(service).replication_status == _R.FAILOVER_ERROR


def test_without_a_target_the_first_spare_one_is_chosen(ops, service):
    for expected in ('site2', 'site3', 'site2'):
        _failover(ops, service, None)
        assert _fresh(service).active_backend_id == expected
    assert _fresh(service).replication_status == _R.FAILED_OVER
