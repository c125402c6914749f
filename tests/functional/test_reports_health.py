"""Capability reports and health through the real broker: fresh, debounced, honest.

A report follows a change within about a second although periodic reports
come every 60 s; a burst of creates sends a handful; a backend whose
``get_volume_stats`` hangs (natively, in both executors) keeps its heartbeat
and its neighbour's, reports ``backend_state: down`` with the reason, and
comes back by itself.
"""

import datetime
import os
import time

import pytest

from tests.functional.conftest import fake_backend
from tests.functional.conftest import start_harness
from volume_worker.testing import state


def _db(h):
    return state.WorkerDB('sqlite:///%s/volume-worker.sqlite' % h.state_dir)


def _reports(h, seconds, backend=None):
    """Capability reports of ``backend`` seen within ``seconds``."""
    deadline = time.monotonic() + seconds
    found = []
    while time.monotonic() < deadline:
        for event in h.events.poll(0.2):
            if event['kind'] == 'capabilities' and \
                    event['host'] == (backend or h.backend()):
                event['seen_at'] = time.monotonic()
                found.append(event)
            elif event['kind'] != 'capabilities':
                h.seen.append(event)
    return found


def test_a_report_follows_a_create_within_1_5_s(tmp_path):
    backends = {'fake1': fake_backend(
        'fake1', str(tmp_path / 'state'), fake_pools='p1,p2',
        filter_function='"capabilities.total_volumes < 100"',
        extra_capabilities='{"site": "north", "tier": 2}')}
    h = start_harness(tmp_path, backends=backends, extra_default={
        'backend_stats_polling_interval': 60,
        'goodness_function': '"50"'})
    try:
        _reports(h, 1.5)  # whatever the start-up sent
        volume = h.new_volume(size=3, backend=h.backend() + '#p2')
        sent = time.monotonic()
        h.api.create_volume(h.ctx, h.backend(), volume)
        report = None
        for event in _reports(h, 5):
            pools = {p['pool_name']: p
                     for p in event['capabilities']['pools']}
            if pools['p2']['total_volumes'] == 1:
                report = event
                break
        assert report is not None, 'no report with the new volume'
        assert report['seen_at'] - sent <= 1.5
        caps = report['capabilities']
        p1, p2 = caps['pools']
        assert (p2['allocated_capacity_gb'], p2['provisioned_capacity_gb'],
                p2['total_volumes']) == (3, 3, 1)
        assert (p1['allocated_capacity_gb'], p1['total_volumes']) == (0, 0)
        assert caps['allocated_capacity_gb'] == 3
        for pool in (p1, p2):
            assert pool['site'] == 'north' and pool['tier'] == 2
            assert pool['filter_function'] == \
                'capabilities.total_volumes < 100'
            assert pool['goodness_function'] == '50'  # from [DEFAULT]
            assert pool['backend_state'] == 'up'
        assert caps['backend_state'] == 'up'
        assert 'backend_state_reason' not in caps
        assert caps['replication_enabled'] is False
        assert caps['site'] == 'north'
        stamp = datetime.datetime.fromisoformat(
            caps['timestamp'].replace('Z', '+00:00'))
        assert stamp.tzinfo is not None
        assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp)
                   .total_seconds()) < 10
        # A snapshot provisions space too, but allocates none.
        from volume_worker import objects
        import uuid
        h.wait_status(volume.id, ['available'])
        snapshot = objects.Snapshot(id=str(uuid.uuid4()),
                                    volume_id=volume.id)
        h.api.create_snapshot(h.ctx, h.backend(), snapshot)
        for event in _reports(h, 5):
            p2 = event['capabilities']['pools'][1]
            if p2['provisioned_capacity_gb'] == 6:
                assert p2['allocated_capacity_gb'] == 3
                break
        else:
            raise AssertionError('no report with the snapshot provisioned')
        # get_capabilities: init_capabilities' properties, same usage keys.
        caps = h.api.get_capabilities(h.ctx, h.backend(), discover=True)
        assert 'thin_provisioning' in caps['properties']
        assert caps['allocated_capacity_gb'] == 3
        assert caps['backend_state'] == 'up'
    finally:
        h.close()
        h.worker.stop()


def test_a_burst_of_100_creates_sends_a_handful_of_reports(tmp_path):
    h = start_harness(tmp_path, extra_default={
        'backend_stats_polling_interval': 60})
    try:
        _reports(h, 1.5)
        volumes = [h.new_volume() for _ in range(100)]
        started = time.monotonic()
        for volume in volumes:
            h.api.create_volume(h.ctx, h.backend(), volume)
        db = _db(h)
        state.wait_until(
            lambda: all(db.status(v.id) == 'available' for v in volumes),
            60, '100 creates served')
        served = time.monotonic() - started
        reports = _reports(h, 2.5)
        assert reports, 'no report after the burst'
        assert reports[-1]['capabilities']['total_volumes'] == 100
        # At most one a second while changes come, plus the last one.
        assert len(reports) <= served + 3, (len(reports), served)
        assert len(reports) < 15
    finally:
        h.close()
        h.worker.stop()


def _hanging_stats(tmp_path, executor):
    state_dir = str(tmp_path / 'state')
    # The first two calls (init_capabilities at start-up, then the first
    # report) block natively for HANG seconds; later calls answer at once.
    backends = {
        'fine': fake_backend('fine', state_dir),
        'hung': fake_backend('hung', state_dir,
                             fake_fault_delay='get_volume_stats:%d' % HANG,
                             fake_fault_count='get_volume_stats:2'),
    }
    return start_harness(tmp_path, executor=executor, backends=backends,
                         extra_default={'backend_stats_timeout': 1,
                                        'report_interval': 1,
                                        'backend_stats_polling_interval': 1})


HANG = 8


def _check_hanging_stats(h):
    fine, hung = h.backend(0), h.backend(1)
    db = _db(h)

    def beats():
        return {row['host']: (row['updated_at'], row['backend_state'],
                              row['backend_state_reason'])
                for row in db.services()}
    before = beats()
    down = [e for e in _reports(h, 3, hung)
            if e['capabilities']['backend_state'] == 'down']
    assert down, 'no down report while get_volume_stats hangs'
    reason = down[-1]['capabilities']['backend_state_reason']
    assert 'get_volume_stats has not returned for' in reason
    # Both heartbeats went on meanwhile, the hung backend's saying why.
    after = beats()
    for backend in (fine, hung):
        assert after[backend][0] > before[backend][0], backend
    assert after[hung][1] == 'down' and 'get_volume_stats' in after[hung][2]
    assert after[fine][1] == 'up'
    # The healthy neighbour serves and reports as usual meanwhile.
    volume = h.new_volume(backend=fine)
    h.api.create_volume(h.ctx, fine, volume)
    assert h.wait_status(volume.id, ['available'], backend=fine,
                         timeout=5).status == 'available'
    # Once the call returns, the backend is up again by itself.
    up = [e for e in _reports(h, HANG + 4, hung)
          if e['capabilities']['backend_state'] == 'up']
    assert up, 'the backend did not come back up'
    assert 'backend_state_reason' not in up[-1]['capabilities']
    state.wait_until(lambda: beats()[hung][1] == 'up', 5, 'heartbeat up')
    log = h.worker.log_text()
    assert 'Heartbeat of' not in log and 'Traceback' not in log


def test_hanging_stats_eventlet(tmp_path):
    h = _hanging_stats(tmp_path, 'eventlet')
    try:
        _check_hanging_stats(h)
    finally:
        h.close()
        h.worker.stop()


def test_hanging_stats_threading(tmp_path):
    h = _hanging_stats(tmp_path, 'threading')
    try:
        _check_hanging_stats(h)
    finally:
        h.close()
        h.worker.stop()


def test_no_scheduler_listening_means_no_errors(tmp_path):
    """Reports for an absent fanout exchange are skipped quietly; an
    unsupported driver is served, with a warning at start-up."""
    state_dir = str(tmp_path / 'state')
    legacy = fake_backend('legacy', state_dir, volume_driver=(
        'volume_worker.testing.drivers.UnsupportedFakeDriver'))
    h = start_harness(tmp_path, backends={
        'fake1': fake_backend('fake1', state_dir), 'legacy': legacy},
        extra_default={'backend_stats_polling_interval': 1})
    try:
        h.events.close()  # the only listener goes: the exchange with it
        for _ in range(3):
            h.api.create_volume(h.ctx, h.backend(), h.new_volume())
        time.sleep(3.5)  # several periodic reports' worth
        log = h.worker.log_text()
        assert ' ERROR ' not in log, log[-3000:]
        assert 'NOT_FOUND' not in log
        assert 'Reconnected to AMQP' not in log  # no reconnect either
        assert log.count('is marked unsupported') == 1
        assert 'Driver UnsupportedFakeDriver of backend %s is marked ' \
            'unsupported' % h.backend(1) in log
    finally:
        h.worker.stop()


def test_setup_failing_5_times_then_serving_what_was_sent_meanwhile(tmp_path):
    state_dir = str(tmp_path / 'state')
    backends = {
        'fine': fake_backend('fine', state_dir),
        'flaky': fake_backend('flaky', state_dir, fake_fault_raise='do_setup',
                              fake_fault_count='do_setup:5'),
    }
    h = start_harness(tmp_path, backends=backends, extra_default={
        'driver_setup_max_interval': 2, 'report_interval': 1,
        'backend_stats_polling_interval': 1})
    fine, flaky = h.backend(0), h.backend(1)
    db = _db(h)
    try:
        # Started: the healthy backend serves at once, not held back.
        assert 'listening on volume-worker as %s' % fine in \
            h.worker.log_text()
        assert '%s (down: driver set-up failed (attempt 1)' % flaky in \
            h.worker.log_text()
        waiting = [h.new_volume(backend=flaky) for _ in range(3)]
        for volume in waiting:
            h.api.create_volume(h.ctx, flaky, volume)
        volume = h.new_volume(backend=fine)
        h.api.create_volume(h.ctx, fine, volume)
        h.wait_status(volume.id, ['available'], backend=fine, timeout=5)
        # Meanwhile the flaky backend heartbeats and reports down, why.
        down = [e for e in _reports(h, 2.5, flaky)
                if e['capabilities']['backend_state'] == 'down']
        assert down and 'driver set-up failed (attempt' in \
            down[-1]['capabilities']['backend_state_reason']
        row = {r['host']: r for r in db.services()}[flaky]
        assert row['backend_state'] == 'down'
        assert 'fault injected into do_setup' in row['backend_state_reason']
        assert all(db.status(v.id) is None for v in waiting)
        # Then it sets up (attempt 6) and serves what waited in its queue.
        h.worker.wait_for_log('Backend %s listening on' % flaky, 30)
        for volume in waiting:
            assert h.wait_status(volume.id, ['available'], backend=flaky,
                                 timeout=10).status == 'available'
        log = h.worker.log_text()
        assert 'attempt 5)' in log and 'attempt 6)' not in log
        assert 'Backend %s is ready after 6 set-up attempts' % flaky in log
        up = [e for e in _reports(h, 2.5, flaky)
              if e['capabilities']['backend_state'] == 'up']
        assert up and up[-1]['capabilities']['total_volumes'] == 3
    finally:
        h.close()
        h.worker.stop()


def _client(h, *args):
    import json
    import subprocess
    from volume_worker.testing import process
    out = subprocess.run(
        [os.path.join(process.VENV_BIN, 'volume-worker-client'),
         '--config-file', h.worker.config_path] + list(args),
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cleanup_and_log_levels_through_the_client(tmp_path):
    import uuid
    import sqlalchemy as sa
    from volume_worker.db import models
    h = start_harness(tmp_path)
    try:
        # A volume left "creating" by a process that journaled nothing.
        stuck = str(uuid.uuid4())
        with _db(h).engine.begin() as conn:
            conn.execute(sa.insert(models.volumes).values(
                id=stuck, size=1, status='creating', deleted=False,
                host=h.backend() + '#pool1', metadata={},
                created_at=datetime.datetime.utcnow()))
        _client(h, 'do-cleanup', '--resource-id', stuck)
        done = h.wait_event(lambda e: e.get('event_type') ==
                            'service.cleanup.end', timeout=20)
        assert done['payload']['reset'] == 1
        assert done['payload']['resource_id'] == stuck
        assert h.api.get_volume(h.ctx, h.backend(), stuck).status == 'error'

        _client(h, 'set-log-levels', 'DEBUG', '--prefix',
                'volume_worker.flows')
        levels = state.wait_until(lambda: [
            entry for entry in _client(h, 'get-log-levels', '--prefix',
                                       'volume_worker.flows')
            if entry['level'] == 'DEBUG'], 10, 'DEBUG set')
        assert {e['prefix'] for e in levels} >= {'volume_worker.flows'}
        assert all(e['prefix'].startswith('volume_worker.flows')
                   for e in levels)
        with pytest.raises(Exception, match='level must be one of'):
            h.api.get_log_levels(h.ctx, h.backend(), {'level': 'LOUD'})
    finally:
        h.close()
        h.worker.stop()


class _TestScheduler:
    """Stands for the scheduler: records the create_volume casts it gets."""

    def __init__(self):
        import threading
        self.creates = []
        self.received = threading.Event()

    def create_volume(self, ctxt, volume, snapshot_id=None, image_id=None,
                      request_spec=None, filter_properties=None,
                      backup_id=None):
        self.creates.append({'volume': volume, 'request_spec': request_spec,
                             'filter_properties': filter_properties,
                             'snapshot_id': snapshot_id,
                             'image_id': image_id})
        self.received.set()


def test_reschedule_after_a_reschedulable_failure(tmp_path):
    import oslo_messaging as messaging
    from volume_worker import rpc
    state_dir = str(tmp_path / 'state')
    backends = {'flaky': fake_backend('flaky', state_dir,
                                      fake_fault_raise='create_volume')}
    h = start_harness(tmp_path, backends=backends,
                      extra_default={'scheduler_max_attempts': 3})
    scheduler = _TestScheduler()
    from volume_worker.testing import process
    topic = h.conf.scheduler_topic
    process.CONFIGURED['queues'].update({topic, topic + '.test-scheduler'})
    transport = rpc.get_transport(h.conf)
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=h.conf.scheduler_topic,
                                    server='test-scheduler'),
        [scheduler], serializer=rpc.get_serializer())
    server.start()
    backend = h.backend()
    try:
        volume = h.new_volume(size=2)
        retry = {'num_attempts': 1, 'backends': [backend],
                 'hosts': [backend]}
        h.api.create_volume(h.ctx, backend, volume,
                            request_spec={'volume_properties': {'size': 2}},
                            filter_properties={'retry': retry})
        assert scheduler.received.wait(20), 'no create_volume re-cast'
        [create] = scheduler.creates
        assert create['volume'].id == volume.id
        assert create['volume'].host is None
        assert create['request_spec']['volume_id'] == volume.id
        sent_retry = create['filter_properties']['retry']
        assert sent_retry['num_attempts'] == 1  # the scheduler counts
        assert sent_retry['backends'] == [backend]
        assert 'fault injected into create_volume' in ''.join(
            sent_retry['exc'])
        error = h.wait_notification('volume.create.error', volume.id)
        assert error['payload']['rescheduled'] is True
        assert error['payload']['attempt'] == 1
        with pytest.raises(Exception, match='NotFound|does not exist'):
            h.api.get_volume(h.ctx, backend, volume.id)

        # The last attempt allowed: error here, nothing sent.
        last = h.new_volume()
        retry = dict(retry, num_attempts=3)
        h.api.create_volume(h.ctx, backend, last, request_spec={},
                            filter_properties={'retry': retry})
        assert h.wait_status(last.id, ['error']).status == 'error'
        error = h.wait_notification('volume.create.error', last.id)
        assert 'rescheduled' not in error['payload']
        assert len(scheduler.creates) == 1
        assert 'not rescheduled: attempt 3 of scheduler_max_attempts 3' in \
            h.worker.log_text()
    finally:
        server.stop()
        server.wait()
        h.close()
        h.worker.stop()


def test_a_backend_slow_to_set_up_does_not_hold_the_start(tmp_path):
    state_dir = str(tmp_path / 'state')
    backends = {'fine': fake_backend('fine', state_dir),
                'slow': fake_backend('slow', state_dir,
                                     fake_fault_delay='do_setup:8')}
    h = start_harness(tmp_path, backends=backends,
                      extra_default={'backend_start_wait': 2})
    fine, slow = h.backend(0), h.backend(1)
    try:
        log = h.worker.log_text()
        # Started (and ready for systemd) while the slow one still sets up.
        assert '%s (down: driver set-up has not finished)' % slow in log
        assert 'of backend %s is ready' % slow not in log
        volume = h.new_volume(backend=fine)
        h.api.create_volume(h.ctx, fine, volume)
        h.wait_status(volume.id, ['available'], backend=fine, timeout=5)
        late = h.new_volume(backend=slow)
        h.api.create_volume(h.ctx, slow, late)  # waits in its queue
        h.worker.wait_for_log('Backend %s is ready after 1 set-up attempts'
                              % slow, 20)
        assert h.wait_status(late.id, ['available'], backend=slow,
                             timeout=10).status == 'available'
    finally:
        h.close()
        h.worker.stop()
