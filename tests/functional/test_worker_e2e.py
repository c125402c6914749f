"""The foundation end to end: a worker process, the real broker, a real database.

Runs in both executor modes and on SQLite and PostgreSQL.
"""

import os
import subprocess
import sys

import pytest

from tests.functional.conftest import fake_backend
from tests.functional.conftest import fake_backend_volumes
from tests.functional.conftest import start_harness
from volume_worker import exception


@pytest.fixture(scope='module')
def harness(tmp_path_factory, executor, database_url):
    # One worker per (executor, database) serves every test of the module;
    # each test works on volumes of its own.
    tmp_path = tmp_path_factory.mktemp('e2e')
    state_dir = str(tmp_path / 'state')
    backends = {
        'fake1': fake_backend('fake1', state_dir),
        # Creates fail at the export step, after the backend volume exists:
        # the revert must remove it again.
        'faulty': fake_backend('faulty', state_dir,
                               fake_fault_raise='create_export'),
    }
    h = start_harness(tmp_path, executor=executor, database=database_url,
                      backends=backends)
    yield h
    h.close()
    h.worker.stop()


def test_create_and_delete(harness):
    h = harness
    volume = h.new_volume(size=2, display_name='data')
    h.api.create_volume(h.ctx, h.backend(), volume)
    start = h.wait_notification('volume.create.start', volume.id)
    end = h.wait_notification('volume.create.end', volume.id)
    assert start['payload']['status'] == 'creating'
    assert end['payload']['status'] == 'available'
    assert end['payload']['size'] == 2
    got = h.api.get_volume(h.ctx, h.backend(), volume.id)
    assert got.status == 'available' and got.display_name == 'data'
    assert got.host.startswith(h.backend() + '#')
    assert volume.id in fake_backend_volumes(h.state_dir, 'fake1')
    listed = h.api.list_volumes(h.ctx, h.backend())
    assert volume.id in [v.id for v in listed]

    h.api.delete_volume(h.ctx, h.backend(), volume.id)
    h.wait_notification('volume.delete.end', volume.id)
    with pytest.raises(exception.VolumeNotFound):
        h.api.get_volume(h.ctx, h.backend(), volume.id)
    assert volume.id not in fake_backend_volumes(h.state_dir, 'fake1')
    # Deleting again is a harmless no-op.
    h.api.delete_volume(h.ctx, h.backend(), volume.id)
    h.worker.wait_for_log('Volume %s is already deleted' % volume.id, 20)
    # Its lock file went with it (ids are never reused).
    locks = os.listdir(os.path.join(h.state_dir, 'locks'))
    assert not [n for n in locks if volume.id in n]


def test_repeated_create_cast_is_harmless(harness):
    h = harness
    volume = h.new_volume()
    h.api.create_volume(h.ctx, h.backend(), volume)
    h.wait_notification('volume.create.start', volume.id)
    h.wait_notification('volume.create.end', volume.id)
    h.api.create_volume(h.ctx, h.backend(), volume)
    h.api.create_volume(h.ctx, h.backend(), volume)
    listed = h.api.list_volumes(h.ctx, h.backend(), filters={'id': volume.id})
    assert [v.status for v in listed] == ['available']
    h.seen.extend(h.events.poll(0.5))
    assert not [e for e in h.seen
                if e.get('event_type') == 'volume.create.start' and
                e['payload']['volume_id'] == volume.id]


def test_driver_failure_reverts_to_error_with_notification(harness):
    h = harness
    faulty = h.backend(1)
    volume = h.new_volume(backend=faulty)
    h.api.create_volume(h.ctx, faulty, volume)
    error = h.wait_notification('volume.create.error', volume.id)
    assert 'create_export' in error['payload']['reason']
    got = h.wait_status(volume.id, ['error'], backend=faulty)
    assert got.status == 'error'
    assert fake_backend_volumes(h.state_dir, 'faulty') == set()
    # The failed volume can be deleted.
    h.api.delete_volume(h.ctx, faulty, volume.id)
    h.wait_notification('volume.delete.end', volume.id)


def test_capability_report_reaches_the_scheduler_topic(harness):
    h = harness
    interval = 2  # backend_stats_polling_interval of the test config
    report = h.wait_event(lambda e: e['kind'] == 'capabilities' and
                          e['host'] == h.backend(), timeout=2 * interval + 1)
    caps = report['capabilities']
    for key in ('volume_backend_name', 'vendor_name', 'driver_version',
                'storage_protocol', 'total_capacity_gb', 'free_capacity_gb',
                'reserved_percentage', 'pools', 'allocated_capacity_gb'):
        assert key in caps, key
    assert caps['volume_backend_name'] == 'fake1'
    assert caps['pools'][0]['allocated_capacity_gb'] >= 0
    called = h.api.get_capabilities(h.ctx, h.backend(), discover=True)
    assert called['volume_backend_name'] == 'fake1'


def test_bad_requests_get_clear_errors_and_the_worker_goes_on(harness):
    h = harness
    import oslo_messaging as messaging
    backend = h.api.client.prepare(server=h.backend())
    with pytest.raises(messaging.RemoteError) as err:
        backend.call(h.ctx, 'no_such_method')
    assert err.value.exc_type == 'NoSuchMethod'
    assert 'no_such_method' in str(err.value)
    with pytest.raises(exception.InvalidInput) as err:
        backend.call(h.ctx, 'get_volume', volume_id='x', bogus=1)
    assert 'bogus' in str(err.value)
    with pytest.raises(exception.InvalidInput) as err:
        h.api.get_volume(h.ctx, h.backend(), '../../etc/passwd')
    assert 'not a UUID' in str(err.value)
    # Casts cannot answer: the worker logs them and changes nothing.
    bad = h.new_volume(size=-1)
    h.api.create_volume(h.ctx, h.backend(), bad)
    backend.cast(h.ctx, 'create_volume', volume='not an object')
    backend.cast(h.ctx, 'delete_volume')
    good = h.new_volume()
    h.api.create_volume(h.ctx, h.backend(), good)
    assert h.wait_status(good.id, ['available']).status == 'available'
    with pytest.raises(exception.VolumeNotFound):
        h.api.get_volume(h.ctx, h.backend(), bad.id)
    log = h.worker.log_text()
    assert 'size must be at least 1 GiB' in log
    assert 'volume must be a Volume object' in log
    assert 'delete_volume(): missing a required argument' in log


def test_client_cli_create_wait_delete(harness):
    h = harness
    cli = os.path.join(os.path.dirname(sys.executable), 'volume-worker-client')
    conf = h.worker.config_path

    def run(*args):
        return subprocess.run([cli, '--config-file', conf, *args],
                              capture_output=True, text=True, timeout=60)
    import json
    out = run('create', '--size', '1', '--name', 'cli', '--wait')
    assert out.returncode == 0, out.stderr
    volume = json.loads(out.stdout)
    assert volume['status'] == 'available' and volume['display_name'] == 'cli'
    shown = json.loads(run('show', volume['id']).stdout)
    assert shown['id'] == volume['id']
    assert volume['id'] in [v['id'] for v in json.loads(run('list').stdout)]
    caps = json.loads(run('capabilities').stdout)
    assert caps['volume_backend_name'] == 'fake1'
    out = run('delete', volume['id'], '--wait')
    assert out.returncode == 0 and json.loads(out.stdout)['status'] == 'deleted'
    out = run('create', '--size', '1', '--wait', '--backend', h.backend(1))
    assert out.returncode == 1
    assert json.loads(out.stdout)['status'] == 'error'
    out = run('create', '--size', '0')
    assert out.returncode != 0 and 'size' in out.stderr


